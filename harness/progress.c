/* The progress of `joulebench run`: a live line on a terminal, plain lines in CI logs
 * (style.md "Logging and progress"; hyperfine's --style auto). */
#include "config.h"

#include "harness/run-impl.h"

#include "common/jb-time.h"

#include <stdlib.h>
#include <string.h>

static void eta_text(char *buf, size_t len, double s, bool compact) {
    if (!(s >= 0)) {
        snprintf(buf, len, "?");
    } else if (!compact) {
        snprintf(buf, len, "%.0f s", s);
    } else if (s >= 3600) {
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    } else {
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
    }
}

char *harness_progress_text(char *buf, size_t len, int done, int total, double elapsed_s,
                            double accuracy, double j_per_sample, bool estimated, bool bar) {
    double eta = done > 0 ? elapsed_s / done * (total - done) : -1;
    char e[32];
    eta_text(e, sizeof e, eta, bar);
    const char *t = estimated ? "~" : "";
    if (!bar) {
        snprintf(buf, len, "run: %d/%d samples, ETA %s, accuracy %.1f%%, %s%.3g J/sample", done,
                 total, e, 100 * accuracy, t, j_per_sample);
        return buf;
    }
    char b[24];
    const int w = 20;
    int fill = total > 0 ? done * w / total : 0;
    for (int i = 0; i < w; i++) b[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    if (fill >= w) b[w - 1] = '=';
    b[w] = 0;
    snprintf(buf, len, "[%s] %d/%d  ETA %s  acc %.1f%%  %s%.3g J/sample", b, done, total, e,
             100 * accuracy, t, j_per_sample);
    return buf;
}

struct harness_progress {
    int total, last_done;
    bool tty;
    FILE *f;
    double t0, last_t;
};

struct harness_progress *harness_progress_new(int total, bool tty, FILE *f) {
    struct harness_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->total = total;
    p->tty = tty;
    p->f = f;
    p->t0 = p->last_t = jb_time_now_s();
    p->last_done = -1;
    return p;
}

void harness_progress_update(struct harness_progress *p, int done, double accuracy,
                             double j_per_sample, bool estimated, bool force) {
    if (!p) return;
    double now = jb_time_now_s();
    char line[256];
    if (p->tty) {
        harness_progress_text(line, sizeof line, done, p->total, now - p->t0, accuracy,
                              j_per_sample, estimated, true);
        fprintf(p->f, "\r%s\033[K", line); /* erase what a longer previous line left */
        fflush(p->f);
        p->last_done = done;
        return;
    }
    int step = p->total >= 10 ? p->total / 10 : 1;
    bool due = force || done == p->total || p->last_done < 0 || done - p->last_done >= step ||
               now - p->last_t >= 30;
    if (!due || done == p->last_done) return;
    harness_progress_text(line, sizeof line, done, p->total, now - p->t0, accuracy, j_per_sample,
                          estimated, false);
    fprintf(p->f, "%s\n", line);
    fflush(p->f);
    p->last_done = done;
    p->last_t = now;
}

void harness_progress_free(struct harness_progress *p) {
    if (!p) return;
    if (p->tty && p->last_done >= 0) fputc('\n', p->f);
    free(p);
}
