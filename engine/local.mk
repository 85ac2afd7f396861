noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS) $(PNG_CFLAGS) \
	$(JPEG_CFLAGS) $(PCRE2_CFLAGS) $(UTF8PROC_CFLAGS) $(ZLIB_CFLAGS)
engine_libengine_a_SOURCES = \
	engine/bench.c \
	engine/config.c \
	engine/costs.c \
	engine/convert.c \
	engine/dispatch.c \
	engine/dtype.c \
	engine/generate.c \
	engine/image-impl.h \
	engine/image.c \
	engine/init-model.c \
	engine/kernels-impl.h \
	engine/load.c \
	engine/kernels.c \
	engine/llm.c \
	engine/model-impl.h \
	engine/model.c \
	engine/molmo.h \
	engine/parallel.c \
	engine/preprocess.c \
	engine/probe.c \
	engine/checkpoint.c \
	engine/simd-avx2.c \
	engine/simd-avx512.c \
	engine/simd-scalar.c \
	engine/tokenizer.c \
	engine/torchbin.c \
	engine/vision.c
ENGINE_LIBS = engine/libengine.a $(OPENBLAS_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(PCRE2_LIBS) \
	$(UTF8PROC_LIBS) $(ZLIB_LIBS)
