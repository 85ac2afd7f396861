noinst_LIBRARIES += evals/libevals.a
evals_libevals_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(UTF8PROC_CFLAGS) $(CAIRO_CFLAGS) \
	$(NETTLE_CFLAGS) $(ZLIB_CFLAGS)
evals_libevals_a_SOURCES = \
	evals/answer.c \
	evals/evals-impl.h \
	evals/evals.h \
	evals/loaders.c \
	evals/metrics.c \
	evals/png.c \
	evals/pointing.c \
	evals/registry.c \
	evals/stats.c \
	evals/synth.c \
	evals/vqa-contractions.c
EVALS_LIBS = evals/libevals.a $(UTF8PROC_LIBS) $(CAIRO_LIBS) $(NETTLE_LIBS) $(ZLIB_LIBS) -lm
