/* 95% intervals and the per-metric aggregate. */
#include "config.h"

#include "evals/evals-impl.h"

#include "common/jb-err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BOOTSTRAP_RESAMPLES 2000
/* Fixed so that two runs over the same scores report the same interval. */
#define AGG_BOOTSTRAP_SEED 0x6a6f756c6562ULL /* "jouleb" */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void evals_ci95(const double *scores, size_t n, bool binary, uint64_t seed, double *lo,
                double *hi) {
    *lo = *hi = 0.0;
    if (n == 0) return;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += scores[i];
    double p = sum / (double)n;
    if (binary) {
        /* Wilson score interval (Wilson 1927), z = the 97.5% normal quantile */
        const double z = 1.959963984540054;
        double z2n = z * z / (double)n;
        double centre = (p + z2n / 2.0) / (1.0 + z2n);
        double half = z / (1.0 + z2n) * sqrt(p * (1.0 - p) / (double)n + z2n / (4.0 * (double)n));
        *lo = centre - half < 0.0 ? 0.0 : centre - half;
        *hi = centre + half > 1.0 ? 1.0 : centre + half;
        return;
    }
    /* percentile bootstrap over samples */
    double *means = malloc(BOOTSTRAP_RESAMPLES * sizeof *means);
    if (!means) {
        *lo = *hi = p;
        return;
    }
    uint64_t st = seed;
    for (int b = 0; b < BOOTSTRAP_RESAMPLES; b++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += scores[evals_rand_below(&st, n)];
        means[b] = s / (double)n;
    }
    qsort(means, BOOTSTRAP_RESAMPLES, sizeof *means, cmp_double);
    *lo = means[(int)(0.025 * BOOTSTRAP_RESAMPLES)];
    *hi = means[(int)(0.975 * BOOTSTRAP_RESAMPLES) - 1];
    free(means);
}

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
    evals_ci95(a->scores, a->n, evals_metric_is_binary(a->metric), AGG_BOOTSTRAP_SEED,
               &out->ci95_lo, &out->ci95_hi);
    out->close_rate = (double)a->n_close / (double)a->n;
    out->precision = a->sum_p / (double)a->n;
    out->recall = a->sum_r / (double)a->n;
}

const char *evals_agg_id(const struct evals_agg *a, size_t i) { return a->ids[i]; }
double evals_agg_score(const struct evals_agg *a, size_t i) { return a->scores[i]; }
