/* The statistics behind reports and compare: accuracy intervals, McNemar's exact test,
 * quantiles and the bootstrap's PRNG. */
#include "config.h"

#include "reports/reports-impl.h"

#include <math.h>

/* SplitMix64 (Steele, Lea, Flood 2014), the finaliser constants of the published version. */
uint64_t reports_rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t reports_rng_below(uint64_t *state, uint64_t n) {
    /* Rejection sampling so that every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = reports_rng_next(state);
    while (x >= limit);
    return x % n;
}

/* Wilson (1927): centre (p + z²/2n) / (1 + z²/n),
 * half-width z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²). */
void reports_wilson(int k, int n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    const double z = 1.959963984540054;
    double p = (double)k / n, z2 = z * z;
    double denom = 1 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / denom;
    double half = z / denom * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
}

/* Exact McNemar: under H0 the b discordant pairs of one kind are Binomial(b + c, 1/2);
 * p = min(1, 2 * P(X <= min(b, c))), summed in log space so n in the thousands is fine. */
double reports_mcnemar_p(int b, int c) {
    int n = b + c, k = b < c ? b : c;
    if (n == 0) return 1.0;
    double sum = 0;
    for (int i = 0; i <= k; i++)
        sum += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * log(2.0));
    double p = 2 * sum;
    return p > 1 ? 1 : p;
}

/* Hyndman & Fan type 7 (R's default): h = (n - 1) q, interpolate between floor and ceil. */
double reports_quantile(const double *sorted, int n, double q) {
    if (n <= 0) return NAN;
    double h = (n - 1) * q;
    int i = (int)floor(h);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]);
}
