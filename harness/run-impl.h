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

#endif /* HARNESS_RUN_IMPL_H */
