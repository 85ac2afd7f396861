/* run-impl.h: the pieces of `joulebench run` that do not need the engine, the meter or the
 * suites: the machine description for run.json and the progress display. Internal to harness/.
 *
 *     json_t *machine = harness_machine_json();        // {cpu_model, n_cores, ...}
 *     struct harness_progress *p = harness_progress_new(120, isatty(2));
 *     harness_progress_update(p, done, accuracy, j_per_sample, false);
 *     harness_progress_free(p);
 */
#ifndef HARNESS_RUN_IMPL_H
#define HARNESS_RUN_IMPL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct jb_err;
struct reports_record;

/* {cpu_model, n_cores, memory_bytes, kernel, gpu} from /proc/cpuinfo, sysconf and uname; a
 * value that cannot be read is "unknown" (or 0). gpu is "none" unless /proc/driver/nvidia
 * lists one. A new reference. */
json_t *harness_machine_json(void);

/* One progress text: with bar, "[=====>    ] 12/60  ETA 1m20s  acc 41.7%  3.21 J/sample";
 * without, "run: 12/60 samples, ETA 80 s, accuracy 41.7%, 3.21 J/sample". ETA is estimated
 * from elapsed_s over the done samples; "ETA ?" before the first. Returns buf. */
char *harness_progress_text(char *buf, size_t len, int done, int total, double elapsed_s,
                            double accuracy, double j_per_sample, bool estimated, bool bar);

struct harness_progress;

/* total: samples planned; tty: draw a live line with '\r' (stderr is a terminal), else print a
 * plain line every 10% of the samples or every 30 s, whichever comes first. Writes to f (stderr
 * in the program, a memstream in tests). NULL when out of memory. */
struct harness_progress *harness_progress_new(int total, bool tty, FILE *f);
/* done samples so far (those skipped by --resume included); force prints regardless of the
 * plain-line schedule. */
void harness_progress_update(struct harness_progress *p, int done, double accuracy,
                             double j_per_sample, bool estimated, bool force);
/* Ends the live line with a newline; NULL is a no-op. */
void harness_progress_free(struct harness_progress *p);

/* ---- the sample loop ---- */

/* One sample to evaluate, as the suite loader gives it. */
struct run_item {
    const char *model, *suite, *id;
    const char *prompt;
    const char *image_path;
    const char *const *refs;
    size_t n_refs;
    int max_new_tokens;
    const void *handle; /* the loader's own sample, for eval() */
};

/* Phases in samples.jsonl order (reports/record.c). */
enum { RUN_PHASE_PREPROCESS, RUN_PHASE_VISION, RUN_PHASE_PREFILL, RUN_PHASE_DECODE, RUN_N_PHASES };

/* What eval() reports for one sample. */
struct run_answer {
    char *text;       /* decoded text (malloc'd, freed by the loop) */
    char *prediction; /* what the metric read: the extracted answer, or for counting and
                       * pointing the trimmed text (malloc'd, freed by the loop) */
    double score;     /* 0..1 */
    bool invalid;     /* no answer could be read */
    long long n_tokens_in, n_tokens_out;
    double t_start_s; /* on the power.csv clock */
    double time_s[RUN_N_PHASES], energy_j[RUN_N_PHASES];
    double time_total_s, energy_total_j;
    double energy_bound_j; /* attribution uncertainty of energy_total_j, +- (energy.md §5) */
    /* Work counters (README "Work counters"): recorded whatever the meter. */
    int n_crops;
    long long n_image_tokens;
    double flop[RUN_N_PHASES];  /* counted from the shapes (engine/costs.c); preprocess 0 */
    double weight_bytes_read;   /* bytes of weights the products read, from the shapes */
    double cpu_s;               /* the process's user + system CPU seconds during the sample */
};

/* How the loop reaches the engine, the metric and the meter (cmd-run.c) or a fake (tests). */
struct run_ops {
    void *user;
    /* Generates, scores and measures one sample. */
    int (*eval)(void *user, const struct run_item *it, struct run_answer *a, struct jb_err *err);
    /* Appends the power trace gathered since the last call to power.csv; may be NULL. */
    int (*drain_power)(void *user, struct reports_record *w, struct jb_err *err);
    const char *energy_source; /* the records' label: meter_energy_label() */
    bool estimated;            /* the figures are an estimate (the progress line marks them ~) */
};

struct run_loop_opts {
    int summary_every; /* rewrite run.json every N samples (0 = 10) */
    int progress_base; /* samples done before this call (earlier models), for the progress */
};

/* Evaluates items[0..n-1] in order, skipping those already in w (--resume): each finished
 * sample is one fsynced line of samples.jsonl; run.json (run plus the results so far) is
 * rewritten atomically every summary_every samples and at the end. *done counts the items that
 * are in w when the loop returns (skipped ones included). Stops at the first error. */
int harness_run_loop(struct reports_record *w, const json_t *run, const struct run_item *items,
                     int n, const struct run_ops *ops, const struct run_loop_opts *o,
                     struct harness_progress *p, int *done, struct jb_err *err);

#endif /* HARNESS_RUN_IMPL_H */
