/* One PRNG and one interval per score type (jb-stats.h). */
#include "config.h"

#include "common/jb-stats.h"

#include <math.h>
#include <stdlib.h>

uint64_t jb_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t jb_rand_below(uint64_t *state, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = jb_splitmix64(state);
    while (r >= limit);
    return r % n;
}

/* Wilson (1927): centre (p + z²/2n) / (1 + z²/n), half-width z / (1 + z²/n) ·
 * sqrt(p(1-p)/n + z²/4n²). */
void jb_wilson95(double p, size_t n, double *lo, double *hi) {
    if (n == 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    const double z = 1.959963984540054, dn = (double)n;
    double z2n = z * z / dn;
    double centre = (p + z2n / 2.0) / (1.0 + z2n);
    double half = z / (1.0 + z2n) * sqrt(p * (1.0 - p) / dn + z2n / (4.0 * dn));
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void jb_ci95(const double *scores, size_t n, bool binary, double *lo, double *hi,
             const char **method) {
    if (method) *method = binary ? "wilson" : "bootstrap";
    *lo = *hi = 0.0;
    if (n == 0) return;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += scores[i];
    double p = sum / (double)n;
    if (binary) {
        jb_wilson95(p, n, lo, hi);
        return;
    }
    double *means = malloc(JB_CI95_RESAMPLES * sizeof *means);
    if (!means) { /* no interval rather than a wrong one */
        *lo = *hi = p;
        return;
    }
    uint64_t st = JB_CI95_SEED;
    for (int b = 0; b < JB_CI95_RESAMPLES; b++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += scores[jb_rand_below(&st, n)];
        means[b] = s / (double)n;
    }
    qsort(means, JB_CI95_RESAMPLES, sizeof *means, cmp_double);
    *lo = means[(int)(0.025 * JB_CI95_RESAMPLES)];
    *hi = means[(int)(0.975 * JB_CI95_RESAMPLES) - 1];
    free(means);
}
