/* The per-metric aggregate; its interval is common/jb-stats.c's, the one every command uses. */
#include "config.h"

#include "evals/evals-impl.h"

#include "common/jb-err.h"
#include "common/jb-stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct evals_agg {
    enum evals_metric metric;
    size_t n, cap;
    char **ids;
    double *scores;
    size_t n_invalid, n_close;
    double sum_p, sum_r;
};

struct evals_agg *evals_agg_new(enum evals_metric m) {
    struct evals_agg *a = calloc(1, sizeof *a);
    if (a) a->metric = m;
    return a;
}

void evals_agg_free(struct evals_agg *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) free(a->ids[i]);
    free(a->ids);
    free(a->scores);
    free(a);
}

int evals_agg_add(struct evals_agg *a, const char *id, const struct evals_score *s) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        char **ids = realloc(a->ids, cap * sizeof *ids);
        if (!ids) return JB_ENOMEM;
        a->ids = ids;
        double *sc = realloc(a->scores, cap * sizeof *sc);
        if (!sc) return JB_ENOMEM;
        a->scores = sc;
        a->cap = cap;
    }
    char *d = strdup(id ? id : "");
    if (!d) return JB_ENOMEM;
    a->ids[a->n] = d;
    a->scores[a->n] = s->score;
    a->n++;
    a->n_invalid += s->invalid;
    a->n_close += s->close;
    a->sum_p += s->precision;
    a->sum_r += s->recall;
    return 0;
}

void evals_agg_summary(const struct evals_agg *a, struct evals_summary *out) {
    memset(out, 0, sizeof *out);
    out->n = a->n;
    out->n_invalid = a->n_invalid;
    if (a->n == 0) return;
    double sum = 0.0;
    for (size_t i = 0; i < a->n; i++) sum += a->scores[i];
    out->mean = sum / (double)a->n;
    jb_ci95(a->scores, a->n, evals_metric_is_binary(a->metric), &out->ci95_lo, &out->ci95_hi,
            NULL);
    out->close_rate = (double)a->n_close / (double)a->n;
    out->precision = a->sum_p / (double)a->n;
    out->recall = a->sum_r / (double)a->n;
}

const char *evals_agg_id(const struct evals_agg *a, size_t i) { return a->ids[i]; }
double evals_agg_score(const struct evals_agg *a, size_t i) { return a->scores[i]; }
