# One Criterion binary per module; each links its module's library only.
EXTRA_DIST += tests/data tests/fake-powercap.sh
TEST_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JANSSON_CFLAGS)
TEST_COMMON = tests/jb-test.c tests/jb-test.h
# issue 8's parity criterion for the fast paths (links common's jb-npy)
TEST_PARITY = tests/jb-parity.c tests/jb-parity.h

check_PROGRAMS += tests/test-common
tests_test_common_SOURCES = tests/test-common.c $(TEST_COMMON)
tests_test_common_CFLAGS = $(TEST_CFLAGS)
tests_test_common_LDADD = common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-engine
tests_test_engine_SOURCES = tests/test-engine.c $(TEST_COMMON)
tests_test_engine_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

# Its CLI tests run `joulebench convert`, `generate` and `bench`.
check_PROGRAMS += tests/test-engine-q8
tests_test_engine_q8_SOURCES = tests/test-engine-q8.c $(TEST_COMMON) $(TEST_PARITY)
tests_test_engine_q8_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_q8_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)
tests_test_engine_q8_DEPENDENCIES = joulebench$(EXEEXT)

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

# The torchbin tests also run `joulebench tensors`.
check_PROGRAMS += tests/test-engine-torchbin
tests_test_engine_torchbin_SOURCES = tests/test-engine-torchbin.c $(TEST_COMMON)
tests_test_engine_torchbin_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_test_engine_torchbin_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) \
	$(CRITERION_LIBS) $(LIBS)
tests_test_engine_torchbin_DEPENDENCIES = joulebench$(EXEEXT)

check_PROGRAMS += tests/test-energy
tests_test_energy_SOURCES = tests/test-energy.c $(TEST_COMMON)
tests_test_energy_CFLAGS = $(TEST_CFLAGS)
tests_test_energy_LDADD = $(ENERGY_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)
# the CLI tests of the synthetic powercap tree run the program
tests_test_energy_DEPENDENCIES = energy/libenergy.a common/libjbcommon.a joulebench$(EXEEXT)

check_PROGRAMS += tests/test-evals
tests_test_evals_SOURCES = tests/test-evals.c $(TEST_COMMON)
tests_test_evals_CFLAGS = $(TEST_CFLAGS)
tests_test_evals_LDADD = $(EVALS_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-init-model
tests_test_init_model_SOURCES = tests/test-init-model.c $(TEST_COMMON)
tests_test_init_model_CFLAGS = $(TEST_CFLAGS)
tests_test_init_model_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-run
tests_test_run_SOURCES = tests/test-run.c $(TEST_COMMON)
tests_test_run_CFLAGS = $(TEST_CFLAGS)
tests_test_run_LDADD = $(JB_ALL_LIBS) $(CRITERION_LIBS)

# joulebench run end to end (the embedded default, bad input, SIGKILL + --resume).
check_PROGRAMS += tests/test-run-cli
tests_test_run_cli_SOURCES = tests/test-run-cli.c $(TEST_COMMON)
tests_test_run_cli_CFLAGS = $(TEST_CFLAGS)
tests_test_run_cli_LDADD = $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)
tests_test_run_cli_DEPENDENCIES = joulebench$(EXEEXT)

check_PROGRAMS += tests/test-reports
tests_test_reports_SOURCES = tests/test-reports.c $(TEST_COMMON)
tests_test_reports_CFLAGS = $(TEST_CFLAGS) $(SQLITE3_CFLAGS)
tests_test_reports_LDADD = $(REPORTS_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)
# It also runs the program (report, compare, history).
tests_test_reports_DEPENDENCIES = joulebench$(EXEEXT) reports/libreports.a common/libjbcommon.a

# The CLI tests run the built program; make sure it exists first.
check_PROGRAMS += tests/test-harness
tests_test_harness_SOURCES = tests/test-harness.c $(TEST_COMMON)
tests_test_harness_CFLAGS = $(TEST_CFLAGS)
tests_test_harness_LDADD = $(CRITERION_LIBS) $(LIBS)
tests_test_harness_DEPENDENCIES = joulebench$(EXEEXT)

check_PROGRAMS += tests/test-engine-stages
tests_test_engine_stages_SOURCES = tests/test-engine-stages.c $(TEST_COMMON)
tests_test_engine_stages_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_stages_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-engine-corrupt
tests_test_engine_corrupt_SOURCES = tests/test-engine-corrupt.c $(TEST_COMMON)
tests_test_engine_corrupt_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_corrupt_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

# The whole-path tests also run `joulebench generate`.
check_PROGRAMS += tests/test-engine-generate
tests_test_engine_generate_SOURCES = tests/test-engine-generate.c $(TEST_COMMON)
tests_test_engine_generate_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_generate_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) \
	$(CRITERION_LIBS) $(LIBS)
tests_test_engine_generate_DEPENDENCIES = joulebench$(EXEEXT)

check_PROGRAMS += tests/test-engine-dtypes
tests_test_engine_dtypes_SOURCES = tests/test-engine-dtypes.c $(TEST_COMMON)
tests_test_engine_dtypes_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_dtypes_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)

check_PROGRAMS += tests/test-evals-data
tests_test_evals_data_SOURCES = tests/test-evals-data.c $(TEST_COMMON)
tests_test_evals_data_CFLAGS = $(TEST_CFLAGS)
tests_test_evals_data_LDADD = $(EVALS_LIBS) common/libjbcommon.a $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)
tests_test_evals_data_DEPENDENCIES = joulebench$(EXEEXT)

# MolmoE through the program: generate, convert, hostile .bin files.
check_PROGRAMS += tests/test-engine-moe
tests_test_engine_moe_SOURCES = tests/test-engine-moe.c $(TEST_COMMON)
tests_test_engine_moe_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_test_engine_moe_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) \
	$(CRITERION_LIBS) $(LIBS)
tests_test_engine_moe_DEPENDENCIES = joulebench$(EXEEXT)

# joulebench bench --model's joules per token: the estimate's labels, and the synthetic
# powercap tree (tests/fake-powercap.sh) at a known power.
check_PROGRAMS += tests/test-bench-energy
tests_test_bench_energy_SOURCES = tests/test-bench-energy.c $(TEST_COMMON)
tests_test_bench_energy_CFLAGS = $(TEST_CFLAGS)
tests_test_bench_energy_LDADD = $(JANSSON_LIBS) $(CRITERION_LIBS) $(LIBS)
tests_test_bench_energy_DEPENDENCIES = joulebench$(EXEEXT)

# The BF16-activation path: rounding, products, and issue 8's parity criterion on the golden
# checkpoints converted to BF16.
check_PROGRAMS += tests/test-engine-bf16act
tests_test_engine_bf16act_SOURCES = tests/test-engine-bf16act.c $(TEST_COMMON) $(TEST_PARITY)
tests_test_engine_bf16act_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_bf16act_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) \
	$(CRITERION_LIBS) $(LIBS)
# It also runs `joulebench generate` and `bench`.
EXTRA_tests_test_engine_bf16act_DEPENDENCIES = joulebench$(EXEEXT)

# The shipped default models: engine-trainer parity on committed fixtures, SHA256SUMS.
check_PROGRAMS += tests/test-default-models
tests_test_default_models_SOURCES = tests/test-default-models.c $(TEST_COMMON)
tests_test_default_models_CFLAGS = $(TEST_CFLAGS)
tests_test_default_models_LDADD = $(ENGINE_LIBS) common/libjbcommon.a $(JANSSON_LIBS) \
	$(CRITERION_LIBS) $(LIBS)
tests_test_default_models_DEPENDENCIES = joulebench$(EXEEXT)
