/* joulebench run end to end: bad input, the embedded default, SIGKILL and --resume. */
#include "config.h"

#include "tests/jb-test.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The quick embedded run the tests use: 1 sample per synthetic suite, no idle wait, the
 * estimate meter (works on every machine), one thread (CI has 2 cores for two builds). */
#define QUICK "--limit 1 --idle-s 0 --meter estimate --threads 1"

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

Test(run_cli, bad_input_is_one_line_and_exit_two_before_any_work, .timeout = 60) {
    char *root = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' run --model '%s/none' --suite synth-chart --data '%s' --out '%s/o1'",
                jb_test_bin(), root, root, root);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "none: no such directory"), "%s", p.err);
    cr_assert_eq(strchr(p.err, '\n') - p.err + 1, (long)strlen(p.err), "one line: %s", p.err);
    jb_test_proc_free(&p);
    char o1[4096];
    snprintf(o1, sizeof o1, "%s/o1", root);
    struct stat st;
    cr_assert_neq(stat(o1, &st), 0, "nothing was written");

    jb_test_run(&p, "'%s' run --suite no-such-suite --out '%s/o2'", jb_test_bin(), root);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "no-such-suite: unknown suite"), "%s", p.err);
    jb_test_proc_free(&p);

    /* A real benchmark without its dataset. */
    jb_test_run(&p,
                "'%s' init-model --out '%s/m' >/dev/null && '%s' run --model '%s/m' "
                "--suite chartqa --out '%s/o3'",
                jb_test_bin(), root, jb_test_bin(), root, root);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "chartqa: needs --data"), "%s", p.err);
    jb_test_proc_free(&p);
    snprintf(o1, sizeof o1, "%s/o3", root);
    cr_assert_neq(stat(o1, &st), 0, "nothing was written");

    /* A regular file where a directory should be: cannot be created, even by root. */
    jb_test_run(&p, "touch '%s/file' && '%s' run --out '%s/file/run'", root, jb_test_bin(), root);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "--out"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_rmtree(root);
    free(root);
}

Test(run_cli, embedded_default_writes_records_and_reports, .timeout = 300) {
    char *root = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' run --out '%s/r' --history '%s/h.sqlite' " QUICK, jb_test_bin(), root,
                root);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.out, "/r/report.html\n"), "the report paths are printed: %s", p.out);
    const char *files[] = {"run.json",  "samples.jsonl", "power.csv",
                           "report.md", "report.html",   "report.csv"};
    for (int i = 0; i < 6; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/r/%s", root, files[i]);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "%s missing", files[i]);
        cr_assert_gt(st.st_size, 0, "%s empty", files[i]);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/r/samples.jsonl", root);
    cr_assert_eq(count_lines(path), 6, "1 sample x 3 suites x the 2 default models");
    snprintf(path, sizeof path, "%s/r/run.json", root);
    json_t *run = json_load_file(path, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(run, "status")), "complete");
    cr_assert_eq(json_array_size(json_object_get(run, "results")), 6);
    json_decref(run);
    jb_test_proc_free(&p);
    /* --history appended one row per suite. */
    jb_test_run(&p, "'%s' history '%s/h.sqlite' --suite synth-doc", jb_test_bin(), root);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.out, "tiny") && strstr(p.out, "small"), "%s", p.out);
    cr_assert(strstr(p.out, "synth-doc"), "%s", p.out);
    cr_assert_null(strstr(p.out, "synth-chart"), "%s", p.out);
    jb_test_proc_free(&p);
    jb_test_rmtree(root);
    free(root);
}

/* model/suite/id -> score of every line; asserts each appears once. */
static json_t *scores_by_id(const char *path) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    json_t *m = json_object();
    char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert_not_null(o, "bad line in %s", path);
        char key[768];
        snprintf(key, sizeof key, "%s/%s/%s", json_string_value(json_object_get(o, "model")),
                 json_string_value(json_object_get(o, "suite")),
                 json_string_value(json_object_get(o, "id")));
        cr_assert_null(json_object_get(m, key), "%s recorded twice", key);
        json_object_set(m, key, json_object_get(o, "score"));
        json_decref(o);
    }
    fclose(f);
    return m;
}

/* Kills the run with SIGKILL once samples.jsonl has 1, then 2, then 3 lines (three different
 * points; each resume continues the same directory), resumes it to the end, and compares the
 * final samples with an uninterrupted run's: every sample exactly once, the same scores. */
Test(run_cli, sigkill_at_three_points_then_resume_matches_an_uninterrupted_run, .timeout = 600) {
    char *root = jb_test_tmpdir();
    struct jb_test_proc p;
    const char *opts =
        "--suite synth-count --limit 4 --idle-s 0 --meter estimate --threads 1 --format md";
    jb_test_run(&p, "'%s' run --out '%s/ref' %s", jb_test_bin(), root, opts);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    char dir[4096], samples[4200];
    snprintf(dir, sizeof dir, "%s/killed", root);
    snprintf(samples, sizeof samples, "%s/samples.jsonl", dir);
    const int at[3] = {1, 2, 3};
    for (int k = 0; k < 3; k++) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            char cmd[8192];
            snprintf(cmd, sizeof cmd, "exec '%s' run --out '%s' %s %s >/dev/null 2>&1",
                     jb_test_bin(), dir, opts, k ? "--resume" : "");
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        int st = 0;
        while (count_lines(samples) < at[k]) {
            cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "the run ended before point %d", k);
            usleep(2000);
        }
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "point %d: status %d", k, st);
    }
    jb_test_run(&p, "'%s' run --out '%s' %s --resume", jb_test_bin(), dir, opts);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/ref/samples.jsonl", root);
    json_t *a = scores_by_id(ref), *b = scores_by_id(samples);
    cr_assert_eq(json_object_size(a), 8, "4 samples x the 2 default models");
    cr_assert(json_equal(a, b), "the resumed run's scores differ from the uninterrupted run's");
    json_decref(a);
    json_decref(b);
    jb_test_rmtree(root);
    free(root);
}
