noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS) $(PCRE2_CFLAGS) \
	$(UTF8PROC_CFLAGS)
engine_libengine_a_SOURCES = \
	engine/dtype.c \
	engine/molmo.h \
	engine/tokenizer-impl.h \
	engine/tokenizer.c
ENGINE_LIBS = engine/libengine.a $(OPENBLAS_LIBS) $(PCRE2_LIBS) $(UTF8PROC_LIBS)
