#include "config.h"

#include "tests/jb-test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *jb_test_golden_dir(void) {
    const char *g = getenv("JB_GOLDEN_DIR");
    struct stat st;
    if (!g || stat(g, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return g;
}

const char *jb_test_data_dir(void) {
    const char *d = getenv("JB_TEST_DATA");
    return d ? d : "tests/data";
}

const char *jb_test_bin(void) {
    const char *b = getenv("JB_BIN");
    return b ? b : "./joulebench";
}

char *jb_test_tmpdir(void) {
    const char *t = getenv("TMPDIR");
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/jbtest.XXXXXX", t && *t ? t : "/tmp") > 0);
    cr_assert(mkdtemp(path) != NULL, "mkdtemp %s", path);
    return path;
}

void jb_test_rmtree(const char *path) {
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", path) > 0) {
        int r = system(cmd);
        (void)r;
    }
    free(cmd);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

void jb_test_run(struct jb_test_proc *p, const char *fmt, ...) {
    char *cmd = NULL, *full = NULL, *dir = jb_test_tmpdir();
    va_list ap;
    va_start(ap, fmt);
    cr_assert(vasprintf(&cmd, fmt, ap) > 0);
    va_end(ap);
    cr_assert(asprintf(&full, "(%s) >'%s/out' 2>'%s/err' </dev/null", cmd, dir, dir) > 0);
    int st = system(full);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/out", dir) > 0);
    p->out = slurp(path);
    free(path);
    cr_assert(asprintf(&path, "%s/err", dir) > 0);
    p->err = slurp(path);
    free(path);
    jb_test_rmtree(dir);
    free(dir);
    free(cmd);
    free(full);
}

void jb_test_proc_free(struct jb_test_proc *p) {
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

void jb_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "create %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}
