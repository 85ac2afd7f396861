/* jb-pool.h: the one thread pool of a joulebench run: a parallel-for over index ranges (rows of a
 * matrix product). The harness opens it once and passes it in; nothing allocates per call.
 *
 *     struct jb_pool *pool;
 *     if (jb_pool_open(&pool, 2, 1, &err) < 0) return harness_fail("%s", err.msg);
 *     jb_pool_for(pool, n_rows, 4, matvec_rows, &args);   // fn(&args, begin, end, thread)
 *     jb_pool_close(pool);
 */
#ifndef JB_POOL_H
#define JB_POOL_H

#include <stddef.h>

struct jb_err;
struct jb_pool; /* opaque: worker threads, job slot, spin-then-sleep hand-off */

/* One thread's share of a parallel-for: indices [begin, end), thread in 0..n_threads-1 (0 is the
 * caller of jb_pool_for). Called at most once per thread per jb_pool_for, never with an empty
 * range. */
typedef void (*jb_pool_fn)(void *ctx, size_t begin, size_t end, int thread);

/* Starts n_threads - 1 worker threads (the caller of jb_pool_for is thread 0); n_threads >= 1.
 * With pin != 0 worker i is pinned to the i-th CPU of the process's allowed set (modulo its
 * size); a refusal (containers, cgroups) is ignored. The calling thread is not pinned, so threads
 * it creates later do not inherit a one-CPU mask. Errors: JB_EINVAL, JB_ENOMEM, JB_EIO. */
int jb_pool_open(struct jb_pool **out, int n_threads, int pin, struct jb_err *err);

/* Stops and joins the workers and frees the pool; NULL is a no-op. */
void jb_pool_close(struct jb_pool *p);

/* The number of threads, caller included; 1 for a NULL pool. */
int jb_pool_n_threads(const struct jb_pool *p);

/* Calls fn on disjoint ranges that cover [0, n) exactly once, one contiguous range per thread,
 * and returns when all have finished. Ranges start at multiples of grain (>= 1; e.g. 4 for a
 * kernel that handles four rows at a time) and differ in length by at most grain. A NULL pool
 * runs fn(ctx, 0, n, 0) on the caller. Not reentrant: fn must not call jb_pool_for, and only one
 * thread may use a pool at a time. */
void jb_pool_for(struct jb_pool *p, size_t n, size_t grain, jb_pool_fn fn, void *ctx);

/* The range jb_pool_for gives thread t of n_threads for n indices in steps of grain (exposed so
 * that tests and callers planning per-thread scratch can see the split). */
void jb_pool_split(size_t n, size_t grain, int n_threads, int t, size_t *begin, size_t *end);

#endif /* JB_POOL_H */
