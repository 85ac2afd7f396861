/* The scalar reference of every kernel in kernels-impl.h, the q8_0 format's quantizer, and the
 * binary16 conversions. The vector kernels (simd-avx2.c, simd-avx512.c) are tested against
 * these. */
#include "config.h"

#include "engine/kernels-impl.h"
#include "engine/model-impl.h"

#include "common/jb-err.h"
#include "engine/molmo.h"

#include <math.h>
#include <string.h>

uint16_t molmo_f32_to_f16(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {
        /* below 2^-14: a binary16 subnormal m * 2^-24; v * 2^24 is exact in float32 */
        float v;
        memcpy(&v, &a, sizeof v);
        return (uint16_t)(sign | (uint16_t)nearbyintf(v * 0x1p24f)); /* m = 1024 is 2^-14 */
    }
    uint32_t r = a - (112u << 23);       /* exponent bias 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);      /* round the 13 dropped bits to nearest even */
    return (uint16_t)(sign | (r >> 13)); /* a carry into the exponent is the right result */
}

float molmo_f16_to_f32(uint16_t h) {
    unsigned char le[2] = {(unsigned char)(h & 0xff), (unsigned char)(h >> 8)};
    float f;
    molmo_convert_to_f32(&f, le, MOLMO_DTYPE_F16, 1);
    return f;
}

int molmo_q8_0_quantize_row(struct molmo_q8_0_block *out, const float *x, int n_in,
                            struct jb_err *err) {
    if (n_in % MOLMO_Q8_0_BLOCK != 0)
        return jb_err_set(err, JB_EINVAL, "q8_0: row of %d values is not a multiple of %d", n_in,
                          MOLMO_Q8_0_BLOCK);
    for (int b = 0; b < n_in / MOLMO_Q8_0_BLOCK; b++) {
        const float *xb = x + (size_t)b * MOLMO_Q8_0_BLOCK;
        float m = 0.0f;
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) {
            if (!isfinite(xb[i]))
                return jb_err_set(err, JB_EINVAL, "q8_0: value %d of the row is not finite",
                                  b * MOLMO_Q8_0_BLOCK + i);
            if (fabsf(xb[i]) > m) m = fabsf(xb[i]);
        }
        /* d = the smallest binary16 >= m / 127. m / 127 in double is exact enough: a binary16
         * value and m / 127 (m has 24 bits) differ by far more than 2^-53 relative unless equal. */
        double t = (double)m / 127.0;
        uint16_t h = molmo_f32_to_f16((float)t);
        if ((double)molmo_f16_to_f32(h) < t) h++;
        if ((h & 0x7c00u) == 0x7c00u)
            return jb_err_set(err, JB_EINVAL,
                              "q8_0: block %d has max |x| = %g, beyond the binary16 scale range",
                              b, (double)m);
        double d = molmo_f16_to_f32(h);
        out[b].d = h;
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) {
            /* x / d in double is correctly rounded far below the .5 spacing, so this is the
             * round-to-nearest-even of the exact quotient; |x / d| <= 127 by the choice of d. */
            double q = d > 0.0 ? nearbyint((double)xb[i] / d) : 0.0;
            if (q > 127.0) q = 127.0;
            if (q < -127.0) q = -127.0;
            out[b].q[i] = (int8_t)q;
        }
    }
    return 0;
}

void molmo_q8_0_dequantize_row(float *out, const struct molmo_q8_0_block *b, int n_in) {
    for (int k = 0; k < n_in / MOLMO_Q8_0_BLOCK; k++) {
        float d = molmo_f16_to_f32(b[k].d);
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++)
            out[(size_t)k * MOLMO_Q8_0_BLOCK + i] = d * (float)b[k].q[i];
    }
}

void molmo_q8_x_quantize(struct molmo_q8_x *xq, const float *x) {
    for (int b = 0; b < xq->n_in / MOLMO_Q8_0_BLOCK; b++) {
        const float *xb = x + (size_t)b * MOLMO_Q8_0_BLOCK;
        float m = 0.0f;
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++)
            if (fabsf(xb[i]) > m) m = fabsf(xb[i]);
        float d = m / 127.0f;
        xq->d[b] = d;
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) {
            float q = d > 0.0f ? nearbyintf(xb[i] / d) : 0.0f;
            q = q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q;
            xq->q[(size_t)b * MOLMO_Q8_0_BLOCK + i] = (int8_t)q;
        }
    }
}

void molmo_q16_x_quantize(struct molmo_q16_x *xq, const float *x) {
    for (int b = 0; b < xq->n_in / MOLMO_Q8_0_BLOCK; b++) {
        const float *xb = x + (size_t)b * MOLMO_Q8_0_BLOCK;
        float m = 0.0f;
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++)
            if (fabsf(xb[i]) > m) m = fabsf(xb[i]);
        float d = m / 32767.0f;
        xq->d[b] = d;
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) {
            float q = d > 0.0f ? nearbyintf(xb[i] / d) : 0.0f;
            q = q > 32767.0f ? 32767.0f : q < -32767.0f ? -32767.0f : q;
            xq->q[(size_t)b * MOLMO_Q8_0_BLOCK + i] = (int16_t)q;
        }
    }
}

static float bf16_to_f32(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* y (rows) = W (rows, n_in) . x (n_in); one float32 sum per row, left to right. */
static void matvec_f32(float *restrict y, const float *restrict w, const float *restrict x,
                       int n_in, int row0, int row1) {
    for (int r = row0; r < row1; r++) {
        const float *wr = w + (size_t)r * n_in;
        float s = 0.0f;
        for (int i = 0; i < n_in; i++) s += wr[i] * x[i];
        y[r] = s;
    }
}

static void matvec_bf16(float *restrict y, const uint16_t *restrict w, const float *restrict x,
                        int n_in, int row0, int row1) {
    for (int r = row0; r < row1; r++) {
        const uint16_t *wr = w + (size_t)r * n_in;
        float s = 0.0f;
        for (int i = 0; i < n_in; i++) s += bf16_to_f32(wr[i]) * x[i];
        y[r] = s;
    }
}

/* Per block: d * (sum of q * x), the grouping the vector kernels use too. */
static void matvec_q8_0_f32(float *restrict y, const struct molmo_q8_0_block *restrict w,
                            const float *restrict x, int n_in, int row0, int row1) {
    int nb = n_in / MOLMO_Q8_0_BLOCK;
    for (int r = row0; r < row1; r++) {
        const struct molmo_q8_0_block *wr = w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)b * MOLMO_Q8_0_BLOCK;
            float sb = 0.0f;
            for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) sb += (float)wr[b].q[i] * xb[i];
            s += molmo_f16_to_f32(wr[b].d) * sb;
        }
        y[r] = s;
    }
}

/* Per block an exact int32 dot (|sum| <= 32 * 127 * 127), scaled by dw * dx. */
static void matvec_q8_0(float *restrict y, const struct molmo_q8_0_block *restrict w,
                        const struct molmo_q8_x *restrict xq, int row0, int row1) {
    int nb = xq->n_in / MOLMO_Q8_0_BLOCK;
    for (int r = row0; r < row1; r++) {
        const struct molmo_q8_0_block *wr = w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            const int8_t *qx = xq->q + (size_t)b * MOLMO_Q8_0_BLOCK;
            int32_t sb = 0;
            for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) sb += (int32_t)wr[b].q[i] * qx[i];
            s += molmo_f16_to_f32(wr[b].d) * xq->d[b] * (float)sb;
        }
        y[r] = s;
    }
}

/* Per block an exact int32 dot (|sum| <= 32 * 127 * 32767 < 2^27), scaled by dw * dx (one
 * float32 product, as the vector kernels form it). */
static void matvec_q8_0_x16(float *restrict y, const struct molmo_q8_0_block *restrict w,
                            const struct molmo_q16_x *restrict xq, int row0, int row1) {
    int nb = xq->n_in / MOLMO_Q8_0_BLOCK;
    for (int r = row0; r < row1; r++) {
        const struct molmo_q8_0_block *wr = w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            const int16_t *qx = xq->q + (size_t)b * MOLMO_Q8_0_BLOCK;
            int32_t sb = 0;
            for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) sb += (int32_t)wr[b].q[i] * qx[i];
            s += molmo_f16_to_f32(wr[b].d) * xq->d[b] * (float)sb;
        }
        y[r] = s;
    }
}

static void exp_f32(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

static void quick_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] * (1.0f / (1.0f + expf(-1.702f * x[i])));
}

static void silu_mul(float *h, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

const struct molmo_kernels molmo_kernels_scalar = {
    .isa = MOLMO_ISA_SCALAR,
    .name = "scalar",
    .matvec_f32 = matvec_f32,
    .matvec_bf16 = matvec_bf16,
    .matvec_q8_0_f32 = matvec_q8_0_f32,
    .matvec_q8_0 = matvec_q8_0,
    .quantize_q8_x = molmo_q8_x_quantize,
    .matvec_q8_0_x16 = matvec_q8_0_x16,
    .quantize_q16_x = molmo_q16_x_quantize,
    .exp_f32 = exp_f32,
    .softmax = molmo_softmax, /* engine/kernels.c */
    .quick_gelu = quick_gelu,
    .silu_mul = silu_mul,
};
