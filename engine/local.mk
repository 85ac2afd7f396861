noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS) $(ZLIB_CFLAGS)
engine_libengine_a_SOURCES = \
	engine/dtype.c \
	engine/molmo.h \
	engine/torchbin-impl.h \
	engine/torchbin.c
ENGINE_LIBS = engine/libengine.a $(OPENBLAS_LIBS) $(ZLIB_LIBS)
