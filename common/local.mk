noinst_LIBRARIES += common/libjbcommon.a
common_libjbcommon_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(NETTLE_CFLAGS)
common_libjbcommon_a_SOURCES = \
	common/jb-err.c \
	common/jb-err.h \
	common/jb-json.c \
	common/jb-json.h \
	common/jb-log.c \
	common/jb-log.h \
	common/jb-mmap.c \
	common/jb-mmap.h \
	common/jb-npy.c \
	common/jb-npy.h \
	common/jb-pool.c \
	common/jb-pool.h \
	common/jb-sha256.c \
	common/jb-sha256.h \
	common/jb-stats.c \
	common/jb-stats.h \
	common/jb-time.c \
	common/jb-time.h
