noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS)
engine_libengine_a_SOURCES = \
	engine/config.c \
	engine/dtype.c \
	engine/kernels.c \
	engine/llm.c \
	engine/model-impl.h \
	engine/model.c \
	engine/molmo.h \
	engine/safetensors.c \
	engine/vision.c
ENGINE_LIBS = engine/libengine.a $(OPENBLAS_LIBS)
