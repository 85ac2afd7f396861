noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS) $(PNG_CFLAGS) \
	$(JPEG_CFLAGS) $(PCRE2_CFLAGS) $(UTF8PROC_CFLAGS)
engine_libengine_a_SOURCES = \
	engine/dtype.c \
	engine/image-impl.h \
	engine/image.c \
	engine/kernels-impl.h \
	engine/kernels.c \
	engine/molmo.h \
	engine/preprocess.c \
	engine/probe.c \
	engine/simd-avx2.c \
	engine/simd-avx512.c \
	engine/simd-scalar.c \
	engine/tokenizer-impl.h \
	engine/tokenizer.c
ENGINE_LIBS = engine/libengine.a $(OPENBLAS_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(PCRE2_LIBS) \
	$(UTF8PROC_LIBS)
