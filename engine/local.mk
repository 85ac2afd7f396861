noinst_LIBRARIES += engine/libengine.a
engine_libengine_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS)
engine_libengine_a_SOURCES = \
	engine/dtype.c \
	engine/init-model-impl.h \
	engine/init-model.c \
	engine/molmo.h
ENGINE_LIBS = engine/libengine.a $(OPENBLAS_LIBS)
