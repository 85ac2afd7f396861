/* kernels.c: the float32 building blocks of every stage: products with weights in their stored
 * dtype (OpenBLAS), LayerNorm, RMSNorm, softmax, the scratch arena. */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-pool.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Weight rows converted per tile: at least TILE_ROWS rows (so that sgemm gets a wide enough
 * product to block well: 18-row tiles of 7B-D's 3584-wide rows ran prefill at 0.18 of the f32
 * peak), and up to TILE_FLOATS floats (2 Mi floats = 8 MiB). */
#define TILE_FLOATS ((size_t)1 << 21)
#define TILE_ROWS ((size_t)256)

static size_t tile_rows(int in_dim) {
    size_t rows = TILE_FLOATS / (size_t)in_dim;
    return rows < TILE_ROWS ? TILE_ROWS : rows;
}

void *molmo_arena_alloc(struct molmo_arena *a, size_t bytes) {
    size_t at = (a->used + 63) & ~(size_t)63;  /* cache-line aligned */
    if (at > a->cap || bytes > a->cap - at) return NULL;
    a->used = at + bytes;
    if (a->used > a->high) a->high = a->used;
    return a->base + at;
}

size_t molmo_linear_scratch_floats(int in_dim) {
    return (tile_rows(in_dim) + MOLMO_BF16_X_ROWS) * (size_t)in_dim + 16;
}

void molmo_round_bf16(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)molmo_f32_to_bf16(src[i]) << 16;
        memcpy(&dst[i], &b, sizeof b);
    }
}

void molmo_tensor_rows(float *dst, const struct molmo_tensor *t, size_t r0, size_t n) {
    size_t cols = t->ndim >= 2 ? (size_t)t->shape[t->ndim - 1] : 1;
    /* Q8_0: cols is a multiple of 32 (checked at load), so rows start on whole blocks */
    const unsigned char *src = (const unsigned char *)t->data + molmo_dtype_bytes(t->dt, r0 * cols);
    molmo_convert_to_f32(dst, src, t->dt, n * cols);
}

void molmo_linear(struct molmo_arena *a, float *y, const float *x, int T,
                  const struct molmo_tensor *w, const float *b) {
    int out = (int)w->shape[0], in = (int)w->shape[1];
    if (w->dt == MOLMO_DTYPE_F32 && ((uintptr_t)w->data & (sizeof(float) - 1)) == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, in,
                    (const float *)w->data, in, 0.0f, y, out);
    } else {
        /* Stored BF16/F16 (or misaligned F32): convert a tile of rows, multiply, repeat. The
         * conversion is exact, so the result equals the float32 product of the same values. */
        size_t mark = molmo_arena_mark(a);
        size_t rows = tile_rows(in);
        if (rows > (size_t)out) rows = (size_t)out;
        float *tile = molmo_arena_alloc(a, rows * (size_t)in * sizeof(float));
        /* bf16 activations: x in chunks of MOLMO_BF16_X_ROWS rows rounded to bf16 (one chunk for
         * most products; larger prompts convert each weight tile once per chunk) */
        int round_x = a->bf16_x && w->dt == MOLMO_DTYPE_BF16;
        size_t xc = round_x && (size_t)T > MOLMO_BF16_X_ROWS ? MOLMO_BF16_X_ROWS : (size_t)T;
        float *xr = round_x ? molmo_arena_alloc(a, xc * (size_t)in * sizeof(float)) : NULL;
        /* the arena is sized at load for the largest tile: running out is our bug */
        if (!tile || (round_x && !xr)) __builtin_trap();
        for (size_t t0 = 0; t0 < (size_t)T; t0 += xc) {
            size_t nt = (size_t)T - t0 < xc ? (size_t)T - t0 : xc;
            const float *xt = x + t0 * (size_t)in;
            if (round_x) {
                molmo_round_bf16(xr, xt, nt * (size_t)in);
                xt = xr;
            }
            for (size_t r0 = 0; r0 < (size_t)out; r0 += rows) {
                size_t n = (size_t)out - r0 < rows ? (size_t)out - r0 : rows;
                molmo_tensor_rows(tile, w, r0, n);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)n, in, 1.0f, xt,
                            in, tile, in, 0.0f, y + t0 * (size_t)out + r0, out);
            }
        }
        molmo_arena_reset(a, mark);
    }
    if (b) {
        for (int t = 0; t < T; t++) {
            float *yt = y + (size_t)t * out;
            for (int o = 0; o < out; o++) yt[o] += b[o];
        }
    }
}

void molmo_model_linear(struct molmo_model *m, float *y, const float *x, int T,
                        const struct molmo_tensor *w, const float *b) {
    enum molmo_weight_type type;
    if (T != 1) goto blas;
    if (w->dt == MOLMO_DTYPE_F32 && ((uintptr_t)w->data & (sizeof(float) - 1)) == 0)
        type = MOLMO_WEIGHT_F32;
    else if (w->dt == MOLMO_DTYPE_BF16 && ((uintptr_t)w->data & 1) == 0)
        type = MOLMO_WEIGHT_BF16;
    else if (w->dt == MOLMO_DTYPE_Q8_0 && ((uintptr_t)w->data & 1) == 0)
        type = m->q8_x == MOLMO_Q8_ACT_INT8  ? MOLMO_WEIGHT_Q8_0
               : m->q8_x == MOLMO_Q8_ACT_F32 ? MOLMO_WEIGHT_Q8_0_F32
                                             : MOLMO_WEIGHT_Q8_0_X16;
    else
        goto blas;
    int out = (int)w->shape[0], in = (int)w->shape[1];
    size_t mark = molmo_arena_mark(&m->arena);
    if (type == MOLMO_WEIGHT_BF16 && m->arena.bf16_x) { /* x rounded to bf16, in the scratch */
        float *xr = molmo_arena_alloc(&m->arena, (size_t)in * sizeof(float));
        if (!xr) __builtin_trap(); /* sized at load (molmo_linear_scratch_floats) */
        molmo_round_bf16(xr, x, (size_t)in);
        x = xr;
    }
    /* integer q8_0 kernels: x quantized per 32-block into the model's buffers (sized at load
     * for the widest LLM input; no allocation here) */
    struct molmo_q8_x xq = {.d = m->q8x_d, .q = m->q8x_q, .n_in = in};
    struct molmo_q16_x xq16 = {.d = m->q8x_d, .q = m->q8x_q, .n_in = in};
    const void *xqp = NULL;
    if (type == MOLMO_WEIGHT_Q8_0 || type == MOLMO_WEIGHT_Q8_0_X16) {
        if (in > m->q8x_cap) __builtin_trap(); /* sized at load: our bug */
        if (type == MOLMO_WEIGHT_Q8_0) m->kern.quantize_q8_x(&xq, x), xqp = &xq;
        else m->kern.quantize_q16_x(&xq16, x), xqp = &xq16;
    }
    molmo_matvec(m->pool, &m->kern, type, y, w->data, x, xqp, out, in);
    molmo_arena_reset(&m->arena, mark);
    if (b)
        for (int o = 0; o < out; o++) y[o] += b[o];
    return;
blas:
    molmo_linear_pool(m, y, x, T, w, b, MOLMO_ACT_NONE);
}

/* y (T,D) = (x - mean) / sqrt(var + eps) * g + b, biased variance as torch.nn.LayerNorm. */
void molmo_layernorm(float *y, const float *x, const float *g, const float *b, int T, int D,
                     float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * D;
        float *yt = y + (size_t)t * D;
        double s = 0.0;
        for (int i = 0; i < D; i++) s += xt[i];
        float mean = (float)(s / D);
        double v = 0.0;
        for (int i = 0; i < D; i++) {
            double d = (double)xt[i] - mean;
            v += d * d;
        }
        float r = 1.0f / sqrtf((float)(v / D) + eps);
        for (int i = 0; i < D; i++) yt[i] = (xt[i] - mean) * r * g[i] + b[i];
    }
}

/* y (T,D) = x / sqrt(mean(x²) + eps) * g (molmo.md §7.2). y may equal x. */
void molmo_rmsnorm(float *y, const float *x, const float *g, int T, int D, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * D;
        float *yt = y + (size_t)t * D;
        double ss = 0.0; /* double: D reaches 8192 */
        for (int i = 0; i < D; i++) ss += (double)xt[i] * xt[i];
        float r = 1.0f / sqrtf((float)(ss / D) + eps);
        for (int i = 0; i < D; i++) yt[i] = xt[i] * r * g[i];
    }
}

/* In place over n values, max-subtracted. */
void molmo_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

int32_t molmo_argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}
