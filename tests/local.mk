# One Criterion binary per module; each links its module's library only.
TEST_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JANSSON_CFLAGS)
TEST_COMMON = tests/jb-test.c tests/jb-test.h

check_PROGRAMS += tests/test-common
tests_test_common_SOURCES = tests/test-common.c $(TEST_COMMON)
tests_test_common_CFLAGS = $(TEST_CFLAGS)
tests_test_common_LDADD = common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-engine
tests_test_engine_SOURCES = tests/test-engine.c $(TEST_COMMON)
tests_test_engine_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-engine-kernels
tests_test_engine_kernels_SOURCES = tests/test-engine-kernels.c $(TEST_COMMON)
tests_test_engine_kernels_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_kernels_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)
# Its CLI tests run `joulebench bench`.
EXTRA_tests_test_engine_kernels_DEPENDENCIES = joulebench$(EXEEXT)

check_PROGRAMS += tests/test-engine-image
tests_test_engine_image_SOURCES = tests/test-engine-image.c $(TEST_COMMON)
tests_test_engine_image_CFLAGS = $(TEST_CFLAGS) $(PNG_CFLAGS) $(JPEG_CFLAGS) $(ZLIB_CFLAGS)
tests_test_engine_image_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(PNG_LIBS) $(JPEG_LIBS) \
	$(ZLIB_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

# The tokenizer tests also run `joulebench tokenize`.
check_PROGRAMS += tests/test-engine-tokenizer
tests_test_engine_tokenizer_SOURCES = tests/test-engine-tokenizer.c $(TEST_COMMON)
tests_test_engine_tokenizer_CFLAGS = $(TEST_CFLAGS) $(UTF8PROC_CFLAGS)
tests_test_engine_tokenizer_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) \
	$(CRITERION_LIBS) $(LIBS)
tests_test_engine_tokenizer_DEPENDENCIES = joulebench$(EXEEXT)

check_PROGRAMS += tests/test-energy
tests_test_energy_SOURCES = tests/test-energy.c $(TEST_COMMON)
tests_test_energy_CFLAGS = $(TEST_CFLAGS)
tests_test_energy_LDADD = $(ENERGY_LIBS) common/libjbcommon.a $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-evals
tests_test_evals_SOURCES = tests/test-evals.c $(TEST_COMMON)
tests_test_evals_CFLAGS = $(TEST_CFLAGS)
tests_test_evals_LDADD = $(EVALS_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-reports
tests_test_reports_SOURCES = tests/test-reports.c $(TEST_COMMON)
tests_test_reports_CFLAGS = $(TEST_CFLAGS)
tests_test_reports_LDADD = $(REPORTS_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

# The CLI tests run the built program; make sure it exists first.
check_PROGRAMS += tests/test-harness
tests_test_harness_SOURCES = tests/test-harness.c $(TEST_COMMON)
tests_test_harness_CFLAGS = $(TEST_CFLAGS)
tests_test_harness_LDADD = $(CRITERION_LIBS) $(LIBS)
tests_test_harness_DEPENDENCIES = joulebench$(EXEEXT)

EXTRA_DIST += tests/data
