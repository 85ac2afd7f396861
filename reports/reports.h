/* reports.h: joulebench's result records (run.json, samples.jsonl, power.csv): writing them
 * crash-safely during a run, reading them back, and rendering them as Markdown, HTML (with plots)
 * and CSV, comparing two runs for CI, and a SQLite history of runs. Reads and writes result files
 * only: nothing here knows the engine, the meter or the benchmarks. The record schema is in
 * README.md ("Result records") and in the comments of reports/record.c.
 *
 *     struct reports_run *r = NULL;
 *     if (reports_run_load(&r, "results/run-1", &err) < 0) return err.code;
 *     reports_write(&r, 1, REPORTS_FMT_MD | REPORTS_FMT_HTML, "results/run-1", &err);
 *     reports_run_free(r);
 */
#ifndef REPORTS_H
#define REPORTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct jb_err;

/* The schema_version written into run.json and checked by the reader. Bump it when a key
 * changes meaning; the reader refuses newer versions. */
#define REPORTS_SCHEMA_VERSION 1

/* ---- writing a run directory (used by harness/ while it runs) ---- */

struct reports_record; /* an open run directory: samples.jsonl (O_APPEND) and power.csv */

/* Opens (creating) dir and its samples.jsonl and power.csv for appending. With resume, keeps
 * what is there: a samples.jsonl line cut short by a crash is dropped (the file is truncated
 * to its last complete line) and the ids of the complete lines are remembered for
 * reports_record_has(). Without resume, an existing non-empty samples.jsonl is an error
 * (JB_EINVAL, "use --resume"). */
int reports_record_open(struct reports_record **out, const char *dir, bool resume,
                        struct jb_err *err);

/* Whether a sample with this model, suite and id is already in samples.jsonl (resume). */
bool reports_record_has(const struct reports_record *w, const char *model, const char *suite,
                        const char *id);

/* How many complete sample lines samples.jsonl holds. */
int reports_record_n_samples(const struct reports_record *w);

/* The largest t_s already in power.csv (0 for a new run): a resumed run adds it to its own
 * clock so that the trace's time axis keeps increasing. */
double reports_record_power_t_end(const struct reports_record *w);

/* Appends one sample object as one line of samples.jsonl, then fsync: when it returns 0 the
 * sample survives a crash. The object must carry "model", "suite" and "id". */
int reports_record_sample(struct reports_record *w, const json_t *sample, struct jb_err *err);

/* Appends one row "t_s,domain,watts" to power.csv (buffered; flushed to the OS every second of
 * trace and by reports_record_flush). */
int reports_record_power(struct reports_record *w, double t_s, const char *domain, double watts,
                         struct jb_err *err);

/* Flushes power.csv and fsyncs it. */
int reports_record_flush(struct reports_record *w, struct jb_err *err);

/* Rewrites run.json atomically (temporary file, fsync, rename) from run, after adding
 * "schema_version" and, computed from samples.jsonl as it is now, "results" (one object per
 * model x suite, see reports_results_json). run is not modified. */
int reports_record_summary(struct reports_record *w, const json_t *run, struct jb_err *err);

/* Flushes and closes; NULL is a no-op. */
void reports_record_close(struct reports_record *w);

/* ---- reading a run directory ---- */

struct reports_run; /* run.json + samples.jsonl + power.csv of one run directory */

/* Reads dir/run.json (required), dir/samples.jsonl (required; a last line cut short by a crash
 * is ignored) and dir/power.csv (optional) and computes the per model x suite summaries. */
int reports_run_load(struct reports_run **out, const char *dir, struct jb_err *err);
void reports_run_free(struct reports_run *r);

/* The "results" array of run.json computed from the samples of r: a new reference. */
json_t *reports_results_json(const struct reports_run *r);

/* ---- rendering ---- */

enum reports_format {
    REPORTS_FMT_MD = 1,
    REPORTS_FMT_HTML = 2,
    REPORTS_FMT_CSV = 4,
};

/* Parses "md,html,csv" (any subset, comma separated) into a mask of reports_format. */
int reports_formats_parse(const char *s, int *mask, struct jb_err *err);

/* Renders runs[0..n-1] (one run, or a comparison of several) in one format to f. */
int reports_render(struct reports_run *const *runs, int n, enum reports_format fmt, FILE *f,
                   struct jb_err *err);

/* Writes report.md / report.html / report.csv (those in mask) into dir, each atomically. The
 * paths written are reported through written[] when it is not NULL (up to 3, malloc'd). */
int reports_write(struct reports_run *const *runs, int n, int mask, const char *dir,
                  char *written[3], struct jb_err *err);

/* Writes s as one RFC 4180 CSV field: quoted (with quotes doubled) when it holds a comma,
 * quote, CR or LF, or starts or ends with a space; as is otherwise. Returns 0 or -1 on a write
 * error. */
int reports_csv_field(FILE *f, const char *s);

/* ---- comparing two runs (CI gate) ---- */

struct reports_compare_opts {
    double max_accuracy_drop_pts; /* tolerated drop in accuracy, percentage points (default 1) */
    double max_energy_rise_pct;   /* tolerated rise of J/sample, percent (default 5) */
    bool energy_gate_required;    /* the user asked for the energy gate explicitly */
    bool gate_estimated;          /* gate estimated energy when both runs are estimates of one
                                   * machine model under one estimate model (default off) */
    double max_work_rise_pct;     /* tolerated rise of generated tokens and FLOP per sample,
                                   * percent (default 5) */
    double max_cpu_rise_pct;      /* tolerated rise of CPU seconds per sample (default 35);
                                   * by default gated only when both runs used one thread */
    bool cpu_gate_required;       /* the user asked for the CPU-time gate explicitly */
    bool allow_different_machines; /* gate time and energy of runs of different machines */
    unsigned long long seed;      /* bootstrap seed (default 20241015) */
    int n_boot;                   /* bootstrap resamples (default 2000) */
};

enum reports_verdict {
    REPORTS_PASS = 0,       /* no significant regression */
    REPORTS_REGRESSION = 1, /* a significant regression beyond the tolerance */
};

/* Sets the defaults above. */
void reports_compare_opts_init(struct reports_compare_opts *o);

/* Pairs the samples of base and new by (suite, id) — and model, when either run holds more
 * than one model — and tests accuracy (exact McNemar when every score is 0 or 1, else a paired
 * bootstrap of the mean difference) and each cost by a bootstrap interval of the ratio of its
 * means: energy (measured; estimated only with gate_estimated), work (generated tokens and FLOP
 * per sample) and CPU seconds per sample. Time and energy gates are refused for runs of
 * different machines (CPU model, threads, meter) unless allow_different_machines. Writes a
 * Markdown summary ready for a pull-request comment to md (may be NULL), one row per gate with
 * what it rests on, and sets *verdict. Errors (JB_EINVAL): the runs cover different suites, no
 * sample pairs, or a time or energy gate asked for by name on runs of different machines. */
int reports_compare(const struct reports_run *base, const struct reports_run *new_run,
                    const struct reports_compare_opts *o, FILE *md, enum reports_verdict *verdict,
                    struct jb_err *err);

/* ---- history (SQLite) ---- */

/* Appends one row per model x suite of r (commit, model, suite, accuracy, J/sample, g CO2e,
 * energy source, time, and the work per sample: generated tokens, FLOP, CPU seconds) to the
 * table "runs" of the SQLite file path, creating it (and its directory); a history written by
 * an older joulebench gets the new columns first. */
int reports_history_append(const char *path, const struct reports_run *r, struct jb_err *err);

/* Prints the rows of path (filtered by model and suite when not NULL) oldest first, with the
 * change of accuracy and J/sample against the previous row of the same model x suite. */
int reports_history_print(const char *path, const char *model, const char *suite, FILE *f,
                          struct jb_err *err);

/* Writes the trend page of path (filtered like reports_history_print) to f: one
 * self-contained HTML file (inline CSS and SVG, no script) with accuracy, J/sample (measured and
 * estimated in plots of their own), generated tokens, GFLOP and CPU seconds per sample over the
 * runs, one line per model x suite, a point per run, and each regression against the previous
 * run of its line (compare's default tolerances) ringed in red and listed in a table. */
int reports_history_html(const char *path, const char *model, const char *suite, FILE *f,
                         struct jb_err *err);

#endif /* REPORTS_H */
