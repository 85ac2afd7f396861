/* joulebench run end to end: bad input, the embedded default, SIGKILL and --resume. */
#include "config.h"

#include "tests/jb-test.h"

#include <jansson.h>
#include <math.h>
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

/* ---- compare on real runs: injected regressions (README "compare") ---- */

typedef void (*sample_edit_fn)(json_t *sample, int index);

/* cp -r src dst, then rewrites dst/samples.jsonl with fn applied to every sample. */
static void copy_run_edited(const char *src, const char *dst, sample_edit_fn fn) {
    struct jb_test_proc p;
    jb_test_run(&p, "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    char in[4200], out[4200];
    snprintf(in, sizeof in, "%s/samples.jsonl", src);
    snprintf(out, sizeof out, "%s/samples.jsonl", dst);
    FILE *f = fopen(in, "r"), *g = fopen(out, "w");
    cr_assert(f && g);
    char line[1 << 16];
    int i = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert_not_null(o);
        if (fn) fn(o, i);
        i++;
        char *s = json_dumps(o, JSON_COMPACT);
        fprintf(g, "%s\n", s);
        free(s);
        json_decref(o);
    }
    fclose(f);
    cr_assert_eq(fclose(g), 0);
}

static void scale_key(json_t *o, const char *key, double k) {
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "no number '%s'", key);
    if (json_is_integer(v))
        json_object_set_new(o, key, json_integer((json_int_t)llround(json_integer_value(v) * k)));
    else
        json_object_set_new(o, key, json_real(json_number_value(v) * k));
}

static void tokens_up_50(json_t *o, int i) {
    (void)i;
    scale_key(o, "n_tokens_out", 1.5);
}
static void cpu_up_50(json_t *o, int i) {
    (void)i;
    scale_key(o, "cpu_s", 1.5);
}
static void energy_up_50(json_t *o, int i) {
    (void)i;
    scale_key(o, "energy_total_j", 1.5);
    json_t *e = json_object_get(o, "energy_j");
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v) json_object_set_new(e, k, json_real(json_number_value(v) * 1.5));
}
/* The first 13 of the 42 samples (2 default models x 3 suites x 7: 31 points) right in the
 * base copy, wrong in the new one, whatever the models answered: a drop the exact McNemar test
 * finds (p = 2 x 0.5^13 = 2.4e-4). */
static void right_first_13(json_t *o, int i) {
    if (i < 13) json_object_set_new(o, "score", json_real(1.0));
}
static void wrong_first_13(json_t *o, int i) {
    if (i < 13) json_object_set_new(o, "score", json_real(0.0));
}

static int compare_runs(const char *base, const char *nw, const char *opts, char **out) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' compare '%s' '%s' %s", jb_test_bin(), base, nw, opts);
    size_t l = strlen(p.out) + strlen(p.err) + 1;
    *out = malloc(l);
    snprintf(*out, l, "%s%s", p.out, p.err);
    int st = p.status;
    jb_test_proc_free(&p);
    return st;
}

/* The row of gate name in a compare summary, for the messages. */
static const char *row_of(const char *md, const char *name) {
    const char *r = strstr(md, name);
    cr_assert_not_null(r, "no row '%s' in %s", name, md);
    return r;
}

/* Two real runs of the embedded default under the estimate meter (no counters, as on a CI
 * runner). A copy compared with itself passes; each injected regression — +50% generated
 * tokens, +50% CPU seconds, +50% estimated J (with --gate-estimated), -31 points accuracy —
 * is caught by its own gate with exit 1; the two real runs agree on the work exactly. */
Test(run_cli, injected_regressions_on_real_runs_are_caught_by_their_gates, .timeout = 900) {
    char *root = jb_test_tmpdir();
    char a[4096], b[4096], x[4096], y[4096];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    snprintf(x, sizeof x, "%s/x", root);
    snprintf(y, sizeof y, "%s/y", root);
    struct jb_test_proc p;
    for (int k = 0; k < 2; k++) {
        jb_test_run(&p,
                    "'%s' run --out '%s' --limit 7 --idle-s 0 --meter estimate --threads 1 "
                    "--format md",
                    jb_test_bin(), k ? b : a);
        cr_assert_eq(p.status, 0, "%s", p.err);
        jb_test_proc_free(&p);
    }
    char *out = NULL;
    /* the work counters are in the records */
    char path[4200];
    snprintf(path, sizeof path, "%s/samples.jsonl", b);
    FILE *f = fopen(path, "r");
    char line[1 << 16];
    cr_assert(f && fgets(line, sizeof line, f));
    fclose(f);
    json_t *s = json_loads(line, 0, NULL);
    json_t *w = json_object_get(s, "work");
    cr_assert_gt(json_integer_value(json_object_get(w, "n_crops")), 0, "%s", line);
    json_t *fl = json_object_get(w, "flop");
    double phases = json_number_value(json_object_get(fl, "vision")) +
                    json_number_value(json_object_get(fl, "prefill")) +
                    json_number_value(json_object_get(fl, "decode"));
    cr_assert_gt(json_number_value(json_object_get(fl, "vision")), 0, "%s", line);
    cr_assert_float_eq(json_number_value(json_object_get(w, "flop_total")), phases,
                       1e-9 * phases, "%s", line);
    cr_assert_gt(json_number_value(json_object_get(w, "weight_bytes_read")), 0, "%s", line);
    cr_assert_gt(json_number_value(json_object_get(s, "cpu_s")), 0, "%s", line);
    json_decref(s);

    copy_run_edited(b, x, NULL);
    cr_assert_eq(compare_runs(b, x, "", &out), 0, "a copy against itself: %s", out);
    free(out);
    /* two real runs of one commit: the same work to the token and the FLOP */
    compare_runs(a, b, "", &out);
    cr_assert(strstr(row_of(out, "| generated tokens/sample |"), "+0.00% (+0.00%, +0.00%)"), "%s",
              out);
    cr_assert(strstr(row_of(out, "| GFLOP/sample |"), "+0.00% (+0.00%, +0.00%)"), "%s", out);
    free(out);

    copy_run_edited(b, x, tokens_up_50);
    cr_assert_eq(compare_runs(b, x, "", &out), 1, "%s", out);
    cr_assert(strstr(row_of(out, "| generated tokens/sample |"), "| REGRESSION"), "%s", out);
    free(out);

    copy_run_edited(b, x, cpu_up_50);
    cr_assert_eq(compare_runs(b, x, "", &out), 1, "%s", out);
    cr_assert(strstr(row_of(out, "| CPU s/sample |"), "| REGRESSION"), "%s", out);
    free(out);

    copy_run_edited(b, x, energy_up_50);
    cr_assert_eq(compare_runs(b, x, "", &out), 0, "not gated without --gate-estimated: %s", out);
    free(out);
    cr_assert_eq(compare_runs(b, x, "--gate-estimated", &out), 1, "%s", out);
    cr_assert(strstr(row_of(out, "| J/sample |"), "| REGRESSION, estimated"), "%s", out);
    free(out);

    copy_run_edited(b, x, right_first_13);
    copy_run_edited(b, y, wrong_first_13);
    cr_assert_eq(compare_runs(x, y, "", &out), 1, "%s", out);
    cr_assert(strstr(row_of(out, "| accuracy % |"), "13 right→wrong, 0 wrong→right"), "%s", out);
    cr_assert(strstr(row_of(out, "| accuracy % |"), "| REGRESSION"), "%s", out);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

/* ---- docs/ci/joulebench-gate.sh, the CI recipe's steps, run as a CI job would ---- */

/* With the built binary standing in for both commits' builds: base and head runs, compare,
 * the PR comment, the history and its trend page; then a head whose answers are longer (the
 * base capped at 2 tokens) fails the gate with exit 1, and the history holds both head runs. */
Test(ci_recipe, gate_script_passes_a_rerun_and_fails_an_injected_regression, .timeout = 900) {
    char *root = jb_test_tmpdir();
    const char *src = getenv("JB_SRCDIR");
    char env[8192];
    /* A rerun of 6 samples that take milliseconds each, on a CI machine running two test
     * binaries at once, moves CPU seconds by tens of percent: the CPU-time gate is loosened
     * here (its own tests are in tests/test-reports.c); every other gate keeps its default. */
    snprintf(env, sizeof env,
             "JB_BASE_BIN='%s' JB_HEAD_BIN='%s' JB_RUN_ARGS='--limit 1' "
             "JB_RUN_EXTRA='--idle-s 0 --meter estimate --threads 1' "
             "JB_COMPARE_OPTS='--max-cpu-rise 400' JB_HISTORY='%s/keep/history.sqlite'",
             jb_test_bin(), jb_test_bin(), root);
    struct jb_test_proc p;
    jb_test_run(&p, "%s bash '%s/docs/ci/joulebench-gate.sh' base head '%s/w'", env,
                src ? src : ".", root);
    cr_assert_eq(p.status, 0, "%s%s", p.out, p.err);
    cr_assert(strstr(p.out, "joulebench-gate: no significant regression"), "%s", p.out);
    jb_test_proc_free(&p);
    const char *files[] = {"w/base/samples.jsonl", "w/head/samples.jsonl", "w/comment.md",
                           "w/trend.html", "keep/history.sqlite"};
    for (int i = 0; i < 5; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "%s missing", files[i]);
        cr_assert_gt(st.st_size, 0, "%s empty", files[i]);
    }
    jb_test_run(&p, "grep -c 'joulebench compare: no significant regression' '%s/w/comment.md'",
                root);
    cr_assert_eq(p.status, 0, "%s", p.out);
    jb_test_proc_free(&p);

    jb_test_run(&p, "%s JB_BASE_RUN_OPTS='--max-tokens 2' bash '%s/docs/ci/joulebench-gate.sh' "
                "base head '%s/w'",
                env, src ? src : ".", root);
    cr_assert_eq(p.status, 1, "%s%s", p.out, p.err);
    cr_assert(strstr(p.out, "joulebench-gate: REGRESSION"), "%s", p.out);
    jb_test_proc_free(&p);
    jb_test_run(&p, "grep -F '| generated tokens/sample |  2 |' '%s/w/comment.md'", root);
    cr_assert_eq(p.status, 0, "the tokens row: %s", p.out);
    cr_assert(strstr(p.out, "| REGRESSION (tolerance +5%)"), "%s", p.out);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' history '%s/keep/history.sqlite' --suite synth-count --model tiny",
                jb_test_bin(), root);
    cr_assert_eq(p.status, 0, "%s", p.err);
    int rows = 0;
    for (char *l = p.out; (l = strstr(l, " synth-count ")); l++) rows++;
    cr_assert_eq(rows, 2, "two head runs in the history: %s", p.out);
    jb_test_proc_free(&p);
    /* bad usage is exit 2 with the usage text */
    jb_test_run(&p, "bash '%s/docs/ci/joulebench-gate.sh' onlyone", src ? src : ".");
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "BASE_REF HEAD_REF"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_rmtree(root);
    free(root);
}

/* One writer per run directory (issue 19): while a run writes DIR, a second `run --out DIR`
 * (with or without --resume) is refused naming the holder's pid, and nothing of DIR changes;
 * once the holder is killed (SIGKILL: its lock goes with it), --resume takes over and
 * completes the run, every sample once. */
Test(run_cli, a_second_writer_is_refused_while_the_first_holds_the_directory, .timeout = 600) {
    char *root = jb_test_tmpdir();
    const char *opts =
        "--suite synth-count --limit 4 --idle-s 0 --meter estimate --threads 1 --format md";
    char dir[4096], samples[4200];
    snprintf(dir, sizeof dir, "%s/r", root);
    snprintf(samples, sizeof samples, "%s/samples.jsonl", dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "exec '%s' run --out '%s' %s >/dev/null 2>&1", jb_test_bin(),
                 dir, opts);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (count_lines(samples) < 1) {
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "the first run ended too soon");
        usleep(2000);
    }
    struct jb_test_proc p;
    for (int k = 0; k < 2; k++) {
        int before = count_lines(samples);
        jb_test_run(&p, "'%s' run --out '%s' %s %s", jb_test_bin(), dir, opts,
                    k ? "--resume" : "");
        cr_assert_eq(p.status, 2, "%s", p.err);
        char want[64];
        snprintf(want, sizeof want, "another joulebench (pid %d) is writing", (int)pid);
        cr_assert(strstr(p.err, want), "%s", p.err);
        jb_test_proc_free(&p);
        cr_assert_geq(count_lines(samples), before, "the refused run wrote nothing");
    }
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    jb_test_run(&p, "'%s' run --out '%s' %s --resume", jb_test_bin(), dir, opts);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    json_t *m = scores_by_id(samples);
    cr_assert_eq(json_object_size(m), 4 * 2, "4 samples x 2 default models, each once");
    json_decref(m);
    jb_test_rmtree(root);
    free(root);
}
