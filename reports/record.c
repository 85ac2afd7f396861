/* Writing a run directory while the run goes on, so that a crash loses at most the sample in
 * flight.
 *
 * Result records, schema_version 1 (README.md "Result records" has the full key list):
 *   samples.jsonl  one JSON object per line and per sample, appended with O_APPEND and fsynced
 *                  before the next sample starts. Keys: model, suite, id (together unique),
 *                  prompt, prediction, references, score (0..1), n_tokens_in, n_tokens_out,
 *                  t_start_s (on the power.csv clock), time_s {preprocess, vision, prefill,
 *                  decode}, energy_j {the same phases}, time_total_s, energy_total_j,
 *                  energy_bound_j (+- attribution uncertainty), energy_source.
 *   power.csv      "t_s,domain,watts": seconds since the run started, the meter domain, the mean
 *                  power over the sampler interval ending at t_s. Streamed, flushed every second.
 *   run.json       rewritten atomically (temporary file + fsync + rename) whenever the harness
 *                  calls reports_record_summary: a killed run keeps a valid summary of the
 *                  samples that finished. "results" is always recomputed from samples.jsonl.
 */
#include "config.h"

#include "reports/reports-impl.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-mmap.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Ten significant digits: below what any counter or clock resolves, and no "0.30000000000000004"
 * in the records. */
#define REPORTS_JSON_PRECISION JSON_REAL_PRECISION(10)

struct reports_record {
    char *dir;
    int lock_fd; /* DIR/.joulebench.lock, flock'ed while the run directory is open */
    int samples_fd;
    FILE *power;
    double power_t_end, power_flushed_t;
    json_t *samples; /* every complete sample, for the summary */
    json_t *done;    /* "model\037suite\037id" -> true */
};

/* One writer per run directory: an exclusive flock on DIR/.joulebench.lock, held until close,
 * with the holder's pid in the file for the message. The kernel drops the lock when its
 * process dies, so the lock of a killed run is simply taken over. */
static int lock_dir(struct reports_record *w, struct jb_err *err) {
    char *path = jb_path_join(w->dir, ".joulebench.lock");
    if (!path) return jb_err_set(err, JB_ENOMEM, "out of memory");
    int rc = 0;
    w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lock_fd < 0) {
        rc = jb_err_errno(err, errno, "%s: cannot create the lock", path);
    } else if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(w->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        rc = e == EWOULDBLOCK
                 ? jb_err_set(err, JB_EINVAL,
                              "%s: another joulebench (pid %s) is writing this run directory; "
                              "wait for it to finish, or choose another --out",
                              w->dir, pid[0] ? pid : "?")
                 : jb_err_errno(err, e, "%s: cannot lock", path);
    } else {
        char pid[32];
        int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(w->lock_fd, 0) != 0 || pwrite(w->lock_fd, pid, (size_t)len, 0) != len)
            rc = jb_err_errno(err, errno, "%s: write", path);
    }
    free(path);
    return rc;
}

static char *sample_key(const char *model, const char *suite, const char *id) {
    size_t n = strlen(model) + strlen(suite) + strlen(id) + 3;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s\037%s\037%s", model, suite, id);
    return k;
}

/* Opens power.csv for appending: a new file gets the header; with resume, a last row cut
 * short is cut off and the largest t_s is remembered. */
static int power_open(struct reports_record *w, bool resume, struct jb_err *err) {
    char *path = jb_path_join(w->dir, "power.csv");
    if (!path) return jb_err_set(err, JB_ENOMEM, "out of memory");
    int rc = 0;
    long good = 0;
    FILE *in = resume ? fopen(path, "r") : NULL;
    if (in) {
        char line[512];
        long pos = 0;
        while (fgets(line, sizeof line, in)) {
            size_t l = strlen(line);
            /* a line cut short, or one that starts with a NUL byte (strlen 0: no line[-1]) */
            if (l == 0 || line[l - 1] != '\n') break;
            pos += (long)l;
            good = pos;
            double t;
            if (sscanf(line, "%lf,", &t) == 1 && t > w->power_t_end) w->power_t_end = t;
        }
        fclose(in);
        if (truncate(path, good) != 0) rc = jb_err_errno(err, errno, "%s: truncate", path);
    }
    if (!rc && !(w->power = fopen(path, resume ? "a" : "w")))
        rc = jb_err_errno(err, errno, "%s: cannot open for writing", path);
    if (!rc && good == 0 && fputs("t_s,domain,watts\n", w->power) < 0)
        rc = jb_err_errno(err, errno, "%s: write", path);
    free(path);
    return rc;
}

int reports_record_open(struct reports_record **out, const char *dir, bool resume,
                        struct jb_err *err) {
    *out = NULL;
    struct reports_record *w = calloc(1, sizeof *w);
    if (!w) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    w->samples_fd = -1;
    w->lock_fd = -1;
    w->dir = strdup(dir);
    w->samples = json_array();
    w->done = json_object();
    char *path = NULL;
    int rc = 0;
    if (!w->dir || !w->samples || !w->done) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    if ((rc = jb_mkdir_p(dir, err)) || (rc = lock_dir(w, err))) goto out;
    path = jb_path_join(dir, "samples.jsonl");
    if (!path) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0) {
        if (!resume) {
            rc = jb_err_set(err, JB_EINVAL,
                            "%s: this run directory already has samples; use --resume to continue "
                            "it or choose another --out",
                            dir);
            goto out;
        }
        long long good = 0;
        json_decref(w->samples);
        w->samples = NULL;
        if ((rc = reports_samples_read(path, &w->samples, &good, err))) goto out;
        if (good < (long long)st.st_size && truncate(path, (off_t)good) != 0) {
            rc = jb_err_errno(err, errno, "%s: cannot drop the unfinished last line", path);
            goto out;
        }
        size_t i;
        json_t *o;
        json_array_foreach(w->samples, i, o) {
            const char *m = json_string_value(json_object_get(o, "model"));
            const char *s = json_string_value(json_object_get(o, "suite"));
            const char *id = json_string_value(json_object_get(o, "id"));
            if (!m || !s || !id) {
                rc = jb_err_set(err, JB_EFORMAT, "%s:%zu: sample without model, suite or id", path,
                                i + 1);
                goto out;
            }
            char *k = sample_key(m, s, id);
            if (!k) {
                rc = jb_err_set(err, JB_ENOMEM, "out of memory");
                goto out;
            }
            json_object_set_new(w->done, k, json_true());
            free(k);
        }
    }
    w->samples_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w->samples_fd < 0) {
        rc = jb_err_errno(err, errno, "%s: cannot open for writing", path);
        goto out;
    }
    rc = power_open(w, resume, err);
out:
    free(path);
    if (rc)
        reports_record_close(w);
    else
        *out = w;
    return rc;
}

bool reports_record_has(const struct reports_record *w, const char *model, const char *suite,
                        const char *id) {
    char *k = sample_key(model, suite, id);
    bool has = k && json_object_get(w->done, k) != NULL;
    free(k);
    return has;
}

int reports_record_n_samples(const struct reports_record *w) {
    return (int)json_array_size(w->samples);
}

double reports_record_power_t_end(const struct reports_record *w) {
    return w->power_t_end;
}

int reports_record_sample(struct reports_record *w, const json_t *sample, struct jb_err *err) {
    const char *m = json_string_value(json_object_get(sample, "model"));
    const char *s = json_string_value(json_object_get(sample, "suite"));
    const char *id = json_string_value(json_object_get(sample, "id"));
    if (!m || !s || !id)
        return jb_err_set(err, JB_EINVAL, "%s/samples.jsonl: a sample needs model, suite and id",
                          w->dir);
    /* One compact line; JSON escapes every newline inside strings, so a line is a record. */
    char *line = json_dumps(sample, JSON_COMPACT | JSON_PRESERVE_ORDER | REPORTS_JSON_PRECISION);
    char *k = sample_key(m, s, id);
    int rc = 0;
    if (!line || !k) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    size_t len = strlen(line);
    line[len++] = '\n'; /* overwrites the NUL: write() below takes the length */
    const char *p = line;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(w->samples_fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = jb_err_errno(err, errno, "%s/samples.jsonl: write", w->dir);
            goto out;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(w->samples_fd) != 0) {
        rc = jb_err_errno(err, errno, "%s/samples.jsonl: fsync", w->dir);
        goto out;
    }
    json_array_append_new(w->samples, json_deep_copy(sample));
    json_object_set_new(w->done, k, json_true());
out:
    free(line);
    free(k);
    return rc;
}

int reports_record_power(struct reports_record *w, double t_s, const char *domain, double watts,
                         struct jb_err *err) {
    if (strpbrk(domain, ",\"\r\n"))
        return jb_err_set(err, JB_EINVAL, "power.csv: domain name '%s' needs quoting", domain);
    /* %.17g of t would be exact but unreadable; microseconds and milliwatts are below what the
     * counters resolve. */
    if (fprintf(w->power, "%.6f,%s,%.3f\n", t_s, domain, watts) < 0)
        return jb_err_errno(err, errno, "%s/power.csv: write", w->dir);
    if (t_s > w->power_t_end) w->power_t_end = t_s;
    if (t_s - w->power_flushed_t >= 1.0) {
        w->power_flushed_t = t_s;
        if (fflush(w->power) != 0) return jb_err_errno(err, errno, "%s/power.csv: write", w->dir);
    }
    return 0;
}

int reports_record_flush(struct reports_record *w, struct jb_err *err) {
    if (fflush(w->power) != 0 || fsync(fileno(w->power)) != 0)
        return jb_err_errno(err, errno, "%s/power.csv: write", w->dir);
    return 0;
}

int reports_record_summary(struct reports_record *w, const json_t *run, struct jb_err *err) {
    struct reports_run r = {0};
    r.dir = w->dir;
    r.samples = w->samples;
    r.run = (json_t *)run;
    r.energy_source = reports_json_str(run, "meter.energy_source", "estimated:unknown");
    r.idle_power_w = reports_json_num(run, "meter.idle_power_w", 0);
    r.grid_g_per_kwh = reports_json_num(run, "carbon.grid_g_per_kwh", 481);
    r.pue = reports_json_num(run, "carbon.pue", 1.0);
    int rc = reports_run_summarize(&r, err);
    json_t *out = NULL;
    if (rc) goto out;
    out = json_object();
    json_object_set_new(out, "schema_version", json_integer(REPORTS_SCHEMA_VERSION));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)run, key, v) {
        if (strcmp(key, "schema_version") && strcmp(key, "results")) json_object_set(out, key, v);
    }
    json_object_set_new(out, "results", reports_results_json(&r));
    char *path = jb_path_join(w->dir, "run.json");
    char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | REPORTS_JSON_PRECISION);
    if (!path || !text) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
    } else {
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL; the length says where the file ends */
        rc = jb_file_write_atomic(path, text, len + 1, err);
    }
    free(text);
    free(path);
out:
    free(r.s);
    free(r.g);
    json_decref(out);
    return rc;
}

void reports_record_close(struct reports_record *w) {
    if (!w) return;
    if (w->samples_fd >= 0) close(w->samples_fd);
    if (w->power) fclose(w->power);
    if (w->lock_fd >= 0) close(w->lock_fd); /* releases the flock */
    json_decref(w->samples);
    json_decref(w->done);
    free(w->dir);
    free(w);
}
