noinst_LIBRARIES += evals/libevals.a
evals_libevals_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
evals_libevals_a_SOURCES = \
	evals/answer.c \
	evals/evals.h
EVALS_LIBS = evals/libevals.a
