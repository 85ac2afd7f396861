/* parallel.c: forward-pass work split over the model's thread pool (m->pool): products with
 * each thread widening and multiplying its own rows of W, LayerNorm and residual adds by rows.
 * OpenBLAS runs single-threaded inside the pool jobs (molmo_blas_threads), so the two levels of
 * threading never stack. */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-pool.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

void molmo_blas_threads(const struct molmo_model *m, int single) {
    if (m->n_threads > 1) openblas_set_num_threads(single ? 1 : m->n_threads);
}

/* Weight rows per tile: the unit of work threads take in turn. Tiles at fixed row offsets make
 * every tile's sgemm the same call whichever thread runs it (results do not depend on the
 * thread count or timing), and a thread slowed by another process (2 shared cores) leaves its
 * remaining tiles to the others instead of holding up the product. 256 columns keep sgemm's
 * repacking of x per call to a few % of the work. */
#define TILE_ROWS ((size_t)256)

struct linear_job {
    const struct molmo_model *m;
    float *y, *scratch;
    const float *x, *b;
    const struct molmo_tensor *w;
    size_t tile_rows;
    atomic_size_t next;   /* first row of the next tile nobody has taken */
    int T, out, in;
    enum molmo_act act;
};

static void linear_rows(void *ctx, size_t begin, size_t end, int thread) {
    struct linear_job *j = ctx;
    (void)begin, (void)end;  /* one index per thread: tiles are taken from j->next */
    int in = j->in, out = j->out;
    int direct = j->w->dt == MOLMO_DTYPE_F32 && ((uintptr_t)j->w->data & (sizeof(float) - 1)) == 0;
    float *tile = j->scratch + (size_t)thread * j->tile_rows * in;
    size_t r0;
    while ((r0 = atomic_fetch_add(&j->next, j->tile_rows)) < (size_t)out) {
        size_t n = (size_t)out - r0 < j->tile_rows ? (size_t)out - r0 : j->tile_rows;
        const float *wr = (const float *)j->w->data + r0 * in;
        if (!direct) {
            molmo_tensor_rows(tile, j->w, r0, n);
            wr = tile;
        }
        /* with a bias, y starts as the bias and sgemm adds the product to it (beta = 1): no
         * zeroing pass for beta = 0 and no bias pass after; the bias joins the sum at sgemm's
         * first block of k instead of last (float32 rounding order only) */
        float beta = 0.0f;
        if (j->b) {
            for (int t = 0; t < j->T; t++)
                memcpy(j->y + (size_t)t * out + r0, j->b + r0, n * sizeof(float));
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, (int)n, in, 1.0f, j->x, in, wr,
                    in, beta, j->y + r0, out);
        if (j->act == MOLMO_ACT_QUICK_GELU)
            for (int t = 0; t < j->T; t++) j->m->kern.quick_gelu(j->y + (size_t)t * out + r0, n);
    }
}

struct round_job {
    float *dst;
    const float *src;
};

static void round_rows(void *ctx, size_t begin, size_t end, int thread) {
    const struct round_job *j = ctx;
    (void)thread;
    molmo_round_bf16(j->dst + begin, j->src + begin, end - begin);
}

void molmo_linear_pool(struct molmo_model *m, float *y, const float *x, int T,
                       const struct molmo_tensor *w, const float *b, enum molmo_act act) {
    struct molmo_arena *a = &m->arena;
    int out = (int)w->shape[0], in = (int)w->shape[1];
    int nt = jb_pool_n_threads(m->pool);
    size_t mark = molmo_arena_mark(a);
    struct linear_job j = {.m = m, .b = b, .w = w, .out = out, .in = in, .act = act};
    j.tile_rows = TILE_ROWS;
    j.scratch = molmo_arena_alloc(a, (size_t)nt * j.tile_rows * in * sizeof(float));
    int round_x = a->bf16_x && w->dt == MOLMO_DTYPE_BF16;
    size_t xc = round_x && (size_t)T > MOLMO_BF16_X_ROWS ? MOLMO_BF16_X_ROWS : (size_t)T;
    float *xr = round_x ? molmo_arena_alloc(a, xc * (size_t)in * sizeof(float)) : NULL;
    /* the arena is sized at load for a tile per thread: running out is our bug */
    if (!j.scratch || (round_x && !xr)) __builtin_trap();
    for (size_t t0 = 0; t0 < (size_t)T; t0 += xc) {
        size_t n = (size_t)T - t0 < xc ? (size_t)T - t0 : xc;
        j.x = x + t0 * (size_t)in;
        j.y = y + t0 * (size_t)out;
        j.T = (int)n;
        if (round_x) {
            struct round_job rj = {.dst = xr, .src = j.x};
            jb_pool_for(m->pool, n * (size_t)in, 64, round_rows, &rj);
            j.x = xr;
        }
        atomic_store(&j.next, 0);
        molmo_blas_threads(m, 1);
        jb_pool_for(m->pool, (size_t)nt, 1, linear_rows, &j);
        molmo_blas_threads(m, 0);
    }
    molmo_arena_reset(a, mark);
}

struct rows_job {
    float *y;
    const float *x, *g, *b;
    int D;
    float eps;
};

static void layernorm_rows(void *ctx, size_t begin, size_t end, int thread) {
    const struct rows_job *j = ctx;
    (void)thread;
    molmo_layernorm(j->y + begin * j->D, j->x + begin * j->D, j->g, j->b, (int)(end - begin),
                    j->D, j->eps);
}

void molmo_layernorm_pool(struct molmo_model *m, float *y, const float *x, const float *g,
                          const float *b, int T, int D, float eps) {
    struct rows_job j = {.y = y, .x = x, .g = g, .b = b, .D = D, .eps = eps};
    jb_pool_for(m->pool, (size_t)T, 1, layernorm_rows, &j);
}

static void add_rows(void *ctx, size_t begin, size_t end, int thread) {
    const struct rows_job *j = ctx;
    (void)thread;
    for (size_t i = begin; i < end; i++) j->y[i] += j->x[i];
}

void molmo_add_pool(struct molmo_model *m, float *y, const float *x, size_t n) {
    struct rows_job j = {.y = y, .x = x};
    jb_pool_for(m->pool, n, 64, add_rows, &j);
}
