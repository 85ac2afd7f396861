/* jb-test.h: helpers shared by the Criterion tests (paths, temporary directories, running the
 * built program).
 *
 *     const char *g = jb_test_golden_or_skip();     // ../shared/golden, or the test is skipped
 *     char *dir = jb_test_tmpdir();                  // removed by jb_test_rmtree(dir)
 *     struct jb_test_proc p;
 *     jb_test_run(&p, "'%s' --version", jb_test_bin());
 */
#ifndef JB_TEST_H
#define JB_TEST_H

#include <criterion/criterion.h>

/* The golden directory (JB_GOLDEN_DIR, set by `make check` to ../shared/golden), or NULL with
 * nothing printed when it does not exist. */
const char *jb_test_golden_dir(void);

/* Skips the calling test with a printed reason when there is no golden directory. */
#define jb_test_golden_or_skip()                                                            \
    ({                                                                                      \
        const char *g_ = jb_test_golden_dir();                                              \
        if (!g_)                                                                            \
            cr_skip_test("no golden tensors at '%s' (../shared/golden beside the checkout)", \
                         getenv("JB_GOLDEN_DIR") ? getenv("JB_GOLDEN_DIR") : "(unset)");    \
        g_;                                                                                 \
    })

/* tests/data in the source tree. */
const char *jb_test_data_dir(void);

/* The joulebench binary under test. */
const char *jb_test_bin(void);

/* A new empty directory under $TMPDIR (or /tmp); malloc'd path. */
char *jb_test_tmpdir(void);

/* rm -rf path; frees nothing. */
void jb_test_rmtree(const char *path);

/* A command's outcome: exit status (or 128+signal) and its captured stdout and stderr. */
struct jb_test_proc {
    int status;
    char *out;
    char *err;
};

/* Runs a printf-formatted shell command, capturing stdout and stderr. */
void jb_test_run(struct jb_test_proc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_test_proc_free(struct jb_test_proc *p);

/* Writes len bytes to path (creating it); asserts on failure. */
void jb_test_write_file(const char *path, const void *data, size_t len);

#endif /* JB_TEST_H */
