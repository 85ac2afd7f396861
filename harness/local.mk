noinst_LIBRARIES += harness/libharness.a
harness_libharness_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
# where `joulebench run` finds the default models (harness/cmd-run.c: default_models_dir)
harness_libharness_a_CPPFLAGS = $(AM_CPPFLAGS) -DJB_BINDIR='"$(bindir)"' \
	-DJB_PKGDATADIR='"$(pkgdatadir)"' -DJB_SRCDIR='"$(abs_top_srcdir)"'
harness_libharness_a_SOURCES = \
	harness/cmd-bench.c \
	harness/cmd-compare.c \
	harness/cmd-convert.c \
	harness/cmd-generate.c \
	harness/cmd-history.c \
	harness/cmd-init-model.c \
	harness/cmd-measure.c \
	harness/cmd-meters.c \
	harness/cmd-report.c \
	harness/cmd-run.c \
	harness/cmd-score.c \
	harness/cmd-suites.c \
	harness/cmd-synth.c \
	harness/cmd-tensors.c \
	harness/cmd-tokenize.c \
	harness/commands.c \
	harness/harness.h \
	harness/machine.c \
	harness/meter-notes.c \
	harness/progress.c \
	harness/run-impl.h \
	harness/run-loop.c
# The modules' libraries in dependency order (harness first), then the system libraries.
JB_ALL_LIBS = harness/libharness.a $(REPORTS_LIBS) $(EVALS_LIBS) $(ENGINE_LIBS) $(ENERGY_LIBS) \
	common/libjbcommon.a $(JANSSON_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(ZLIB_LIBS) $(PCRE2_LIBS) \
	$(UTF8PROC_LIBS) $(CAIRO_LIBS) $(SQLITE3_LIBS) $(LIBS)

bin_PROGRAMS += joulebench
joulebench_SOURCES = harness/main.c
joulebench_LDADD = $(JB_ALL_LIBS)

# The files that include jb-build-info.h need it made first, also for `make joulebench` alone
# (BUILT_SOURCES only applies to `make all` and `make check`).
$(harness_libharness_a_OBJECTS): jb-build-info.h
