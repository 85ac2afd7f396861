/* The parts of `joulebench run` that need no engine: progress display and machine facts. */
#include "config.h"

#include "harness/run-impl.h"

#include "tests/jb-test.h"

#include <stdlib.h>
#include <string.h>

/* 12 of 60 done in 24 s: 2 s per sample, 48 left -> 96 s = 1m36s; the bar is 12/60 x 20 = 4
 * cells full, the 5th is the arrow. */
Test(progress, text_has_count_eta_accuracy_and_energy) {
    char buf[256];
    harness_progress_text(buf, sizeof buf, 12, 60, 24.0, 5.0 / 12, 3.214, false, true);
    cr_assert_str_eq(buf, "[====>               ] 12/60  ETA 1m36s  acc 41.7%  3.21 J/sample");
    harness_progress_text(buf, sizeof buf, 12, 60, 24.0, 5.0 / 12, 3.214, true, false);
    cr_assert_str_eq(buf, "run: 12/60 samples, ETA 96 s, accuracy 41.7%, ~3.21 J/sample");
    harness_progress_text(buf, sizeof buf, 0, 60, 0.0, 0, 0, false, false);
    cr_assert(strstr(buf, "ETA ?"), "%s", buf);
}

/* Without a terminal: the first sample, then every 10% (11, 21, ..., 91), then the last. */
Test(progress, plain_lines_every_tenth_without_a_terminal) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct harness_progress *p = harness_progress_new(100, false, f);
    for (int i = 1; i <= 100; i++) harness_progress_update(p, i, 0.5, 1.0, false, false);
    harness_progress_free(p);
    fclose(f);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += out[i] == '\n';
    cr_assert_eq(lines, 11, "%s", out);
    cr_assert_null(strchr(out, '\r'), "no carriage returns in a log");
    cr_assert(strstr(out, "run: 100/100 samples"), "%s", out);
    free(out);
}

Test(progress, live_line_on_a_terminal_ends_with_a_newline) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct harness_progress *p = harness_progress_new(3, true, f);
    for (int i = 1; i <= 3; i++) harness_progress_update(p, i, 1.0, 2.0, false, false);
    harness_progress_free(p);
    fclose(f);
    int cr = 0;
    for (size_t i = 0; i < len; i++) cr += out[i] == '\r';
    cr_assert_eq(cr, 3);
    cr_assert_eq(out[len - 1], '\n');
    free(out);
}

Test(machine, describes_cores_memory_and_kernel) {
    json_t *m = harness_machine_json();
    cr_assert(json_integer_value(json_object_get(m, "n_cores")) > 0);
    cr_assert(json_integer_value(json_object_get(m, "memory_bytes")) > 0);
    cr_assert(!strncmp(json_string_value(json_object_get(m, "kernel")), "Linux ", 6));
    cr_assert_not_null(json_string_value(json_object_get(m, "cpu_model")));
    cr_assert_not_null(json_string_value(json_object_get(m, "gpu")));
    json_decref(m);
}

/* ---- the sample loop under SIGKILL ---- */

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "reports/reports.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_ITEMS 20

enum kill_at { KILL_NEVER, KILL_IN_EVAL, KILL_AFTER_RECORD };

struct fake {
    enum kill_at when;
    int at; /* item index */
};

/* A deterministic evaluator: sample i scores 1 unless i % 3 == 0, takes 0.1/0.2/0.3/0.4 s and
 * 1/2/3/4 J per phase. */
static int fake_eval(void *user, const struct run_item *it, struct run_answer *a,
                     struct jb_err *err) {
    (void)err;
    const struct fake *f = user;
    int i = atoi(it->id + 1);
    if (f->when == KILL_IN_EVAL && i == f->at) raise(SIGKILL);
    a->text = strdup("Answer: 7");
    a->prediction = strdup("7");
    a->score = i % 3 == 0 ? 0 : 1;
    a->n_tokens_in = 600 + i;
    a->n_tokens_out = 3;
    a->t_start_s = i;
    for (int p = 0; p < RUN_N_PHASES; p++) {
        a->time_s[p] = 0.1 * (p + 1);
        a->energy_j[p] = p + 1;
    }
    a->time_total_s = 1.0;
    a->energy_total_j = 10.0;
    return 0;
}

static int last_recorded;
static int fake_drain(void *user, struct reports_record *w, struct jb_err *err) {
    const struct fake *f = user;
    if (f->when == KILL_AFTER_RECORD && reports_record_n_samples(w) == f->at + 1) raise(SIGKILL);
    last_recorded = reports_record_n_samples(w);
    return reports_record_power(w, last_recorded, "package-0", 10.0, err);
}

/* Runs the loop over the 20 items in a child process; returns its wait status. */
static int run_child(const char *dir, struct fake f) {
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        static char ids[N_ITEMS][8];
        static const char *refs[] = {"7"};
        struct run_item items[N_ITEMS];
        for (int i = 0; i < N_ITEMS; i++) {
            snprintf(ids[i], sizeof ids[i], "q%02d", i);
            items[i] = (struct run_item){
                "fake", "synth-chart", ids[i], "chart_qa: x?", NULL, refs, 1, 12, NULL};
        }
        struct jb_err err = {0};
        struct reports_record *w = NULL;
        if (reports_record_open(&w, dir, true, &err)) _exit(3);
        json_t *run = json_pack("{s:s, s:{s:s}}", "status", "running", "meter", "energy_source",
                                "measured:fake");
        struct run_ops ops = {&f, fake_eval, fake_drain, "measured:fake", false};
        struct run_loop_opts o = {.summary_every = 4};
        int done = 0;
        int rc = harness_run_loop(w, run, items, N_ITEMS, &ops, &o, NULL, &done, &err);
        reports_record_close(w);
        json_decref(run);
        _exit(rc ? 4 : done == N_ITEMS ? 0 : 5);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static char *read_text(const char *dir, const char *name) {
    char path[4096], *buf = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(path, &buf, NULL, &err), 0, "%s", err.msg);
    return buf;
}

/* Killed in a sample's evaluation, right after a sample was recorded (run.json stale), and in
 * the evaluation right after a run.json rewrite; each time run.json stays valid JSON, and the
 * resumed run ends with samples.jsonl byte-identical to an uninterrupted run's: every sample
 * once, same scores, same order. */
Test(run_loop, sigkill_at_three_points_then_resume_equals_an_uninterrupted_run) {
    char *root = jb_test_tmpdir();
    char ref[4096], dir[4096];
    snprintf(ref, sizeof ref, "%s/ref", root);
    snprintf(dir, sizeof dir, "%s/killed", root);
    int st = run_child(ref, (struct fake){KILL_NEVER, 0});
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);

    const struct fake kills[3] = {{KILL_IN_EVAL, 3}, {KILL_AFTER_RECORD, 9}, {KILL_IN_EVAL, 12}};
    const int lines_after[3] = {3, 10, 12};
    for (int k = 0; k < 3; k++) {
        st = run_child(dir, kills[k]);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "kill %d: status %d", k, st);
        char *s = read_text(dir, "samples.jsonl");
        int lines = 0;
        for (char *c = s; *c; c++) lines += *c == '\n';
        cr_assert_eq(lines, lines_after[k], "kill %d", k);
        free(s);
        if (k == 0) continue; /* killed before the first rewrite: no run.json yet */
        char path[4200];
        snprintf(path, sizeof path, "%s/run.json", dir);
        json_t *run = json_load_file(path, 0, NULL);
        cr_assert_not_null(run, "run.json is valid JSON after kill %d", k);
        long long n = json_integer_value(
            json_object_get(json_array_get(json_object_get(run, "results"), 0), "n_samples"));
        cr_assert(n > 0 && n <= lines_after[k], "kill %d: run.json counts %lld", k, n);
        json_decref(run);
    }
    st = run_child(dir, (struct fake){KILL_NEVER, 0});
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "resume: status %d", st);
    char *a = read_text(ref, "samples.jsonl"), *b = read_text(dir, "samples.jsonl");
    cr_assert_str_eq(b, a);
    free(a);
    free(b);
    a = read_text(ref, "run.json");
    b = read_text(dir, "run.json");
    cr_assert_str_eq(b, a, "the final summaries agree too");
    free(a);
    free(b);
    jb_test_rmtree(root);
    free(root);
}
