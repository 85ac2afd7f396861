/* The statistics of compare beside common/jb-stats.c (the PRNG and the accuracy intervals):
 * McNemar's exact test and quantiles. */
#include "config.h"

#include "reports/reports-impl.h"

#include <math.h>

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
