/* jb-stats.h: the statistics every module shares: one PRNG, and one 95% interval per kind of
 * score, so that `score`, `run`, `report` and `compare` give the same predictions the same
 * interval.
 *
 *     uint64_t st = 42;
 *     size_t i = jb_rand_below(&st, n);                // uniform in [0, n)
 *     jb_ci95(scores, n, binary, &lo, &hi);            // Wilson, or the fixed-seed bootstrap
 */
#ifndef JB_STATS_H
#define JB_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SplitMix64 (Steele, Lea, Flood 2014): the project's one PRNG (bootstraps, synthetic data,
 * random checkpoints). */
uint64_t jb_splitmix64(uint64_t *state);
/* Uniform integer in [0, n) (n > 0), by rejection so that every value is equally likely. */
uint64_t jb_rand_below(uint64_t *state, uint64_t n);

/* Wilson score interval (Wilson 1927) at 95% (z = 1.959963984540054) for a mean p of n 0/1
 * scores, clamped to [0, 1]; n == 0 gives [0, 1]. */
void jb_wilson95(double p, size_t n, double *lo, double *hi);

/* The resamples and the seed of jb_ci95's bootstrap: fixed, so the same scores always get the
 * same interval, whichever command computes it. */
#define JB_CI95_RESAMPLES 2000
#define JB_CI95_SEED 0x6a6f756c6562ULL /* "jouleb" */

/* The 95% interval of the mean of scores[0..n): Wilson when every score is 0 or 1 (binary),
 * else a percentile bootstrap of the mean (JB_CI95_RESAMPLES resamples, SplitMix64 seeded with
 * JB_CI95_SEED; the 2.5th and 97.5th percentiles of the sorted means). n == 0 gives [0, 0].
 * The name of the method, "wilson" or "bootstrap", through *method when not NULL. */
void jb_ci95(const double *scores, size_t n, bool binary, double *lo, double *hi,
             const char **method);

#endif /* JB_STATS_H */
