noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS)
engine_libengine_a_SOURCES = \
	engine/dtype.c \
	engine/kernels-impl.h \
	engine/kernels.c \
	engine/molmo.h \
	engine/probe.c \
	engine/simd-avx2.c \
	engine/simd-avx512.c \
	engine/simd-scalar.c
ENGINE_LIBS = engine/libengine.a $(OPENBLAS_LIBS)
