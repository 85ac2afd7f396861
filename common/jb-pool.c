#include "config.h"

#include "common/jb-pool.h"

#include "common/jb-err.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* How long a thread busy-waits for the next job (or for the workers to finish) before it sleeps
 * on a condition variable. Decode calls the pool ~150 times per token, 0.1-2 ms apart: a short
 * spin saves the 10-50 us futex wake-up each time, a long one would burn energy we measure. */
#define SPIN_ROUNDS 4000

struct worker {
    struct jb_pool *pool;
    pthread_t tid;
    int index;
};

struct jb_pool {
    int n_threads;
    struct worker *workers;   /* n_threads - 1 of them */
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t wake;      /* job posted or stop: workers wait here */
    pthread_cond_t done;      /* pending reached 0: the caller waits here */
    atomic_uint gen;          /* incremented (under mu) for every job */
    atomic_int pending;       /* workers still running the current job */
    atomic_int stop;

    /* The current job, written by the caller before gen moves. */
    jb_pool_fn fn;
    void *ctx;
    size_t n, grain;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void jb_pool_split(size_t n, size_t grain, int n_threads, int t, size_t *begin, size_t *end) {
    if (grain == 0) grain = 1;
    size_t units = (n + grain - 1) / grain;   /* the last unit may be short */
    size_t per = units / (size_t)n_threads, extra = units % (size_t)n_threads;
    size_t u0 = (size_t)t * per + ((size_t)t < extra ? (size_t)t : extra);
    size_t u1 = u0 + per + ((size_t)t < extra ? 1 : 0);
    *begin = u0 * grain < n ? u0 * grain : n;
    *end = u1 * grain < n ? u1 * grain : n;
}

static void run_share(struct jb_pool *p, int t) {
    size_t b, e;
    jb_pool_split(p->n, p->grain, p->n_threads, t, &b, &e);
    if (b < e) p->fn(p->ctx, b, e, t);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct jb_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->gen) == seen && !atomic_load(&p->stop);
             i++)
            cpu_relax();
        if (atomic_load(&p->gen) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load(&p->gen);
        run_share(p, w->index);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void pin_thread(pthread_t tid, int i) {
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int n = CPU_COUNT(&allowed);
    if (n <= 0) return;
    int want = i % n, k = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (k++ == want) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            (void)pthread_setaffinity_np(tid, sizeof one, &one); /* refusal is fine */
            return;
        }
    }
}

int jb_pool_open(struct jb_pool **out, int n_threads, int pin, struct jb_err *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return jb_err_set(err, JB_EINVAL, "thread pool: %d threads (want 1..1024)", n_threads);
    struct jb_pool *p = calloc(1, sizeof *p);
    if (!p) return jb_err_set(err, JB_ENOMEM, "thread pool: out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    int rc = 0;
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            rc = jb_err_set(err, JB_ENOMEM, "thread pool: out of memory");
            goto out;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker *w = &p->workers[i - 1];
        w->pool = p;
        w->index = i;
        int e = pthread_create(&w->tid, NULL, worker_main, w);
        if (e) {
            rc = jb_err_errno(err, e, "thread pool: starting thread %d of %d", i, n_threads);
            goto out;
        }
        p->n_started++;
        if (pin) pin_thread(w->tid, i);
    }
out:
    if (rc) {
        jb_pool_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

void jb_pool_close(struct jb_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i].tid, NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int jb_pool_n_threads(const struct jb_pool *p) { return p ? p->n_threads : 1; }

void jb_pool_for(struct jb_pool *p, size_t n, size_t grain, jb_pool_fn fn, void *ctx) {
    if (n == 0) return;
    if (!p || p->n_threads == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->grain = grain ? grain : 1;
    atomic_store(&p->pending, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_share(p, 0);

    for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->pending) > 0; i++) cpu_relax();
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
