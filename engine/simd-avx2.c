/* AVX2 + FMA (+ F16C) kernels. Each function carries its own target attribute, so this file
 * builds without -mavx2 and the program still starts on older CPUs; molmo_kernels_init only
 * hands these out when molmo_cpu_detect finds the features. Vector body four rows at a time
 * (x loads shared), the scalar loop of simd-scalar.c for leftover columns and rows. */
#include "config.h"

#include "engine/kernels-impl.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The 4-row kernels read four interleaved streams that restart every four rows; with rows of a
 * few KB (n_in = 3584) the hardware prefetchers lose the ramp-up at each restart. So each step
 * also prefetches the same column of the next four rows (pf = their first row), one group
 * ahead: 15-60 KB, several microseconds of reading, far more than the memory latency. */
#define PREFETCH_NEXT_ROWS(p, row_bytes)                                                      \
    do {                                                                                      \
        _mm_prefetch((p), _MM_HINT_T0);                                                       \
        _mm_prefetch((p) + (row_bytes), _MM_HINT_T0);                                         \
        _mm_prefetch((p) + 2 * (row_bytes), _MM_HINT_T0);                                     \
        _mm_prefetch((p) + 3 * (row_bytes), _MM_HINT_T0);                                     \
    } while (0)

/* 8 bf16 at p widened to float32 (bf16 bits are the high half of the f32 bits). */
AVX2 static inline __m256 load_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* y (rows) = W (rows, n_in) . x (n_in), float32 W. */
AVX2 static void matvec_f32(float *restrict y, const float *restrict w, const float *restrict x,
                            int n_in, int row0, int row1) {
    int n8 = n_in & ~7;
    int r = row0;
    for (; r + 4 <= row1; r += 4) {
        const float *w0 = w + (size_t)r * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in,
                    *w3 = w2 + n_in;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const char *pf = (const char *)(r + 8 <= row1 ? w0 + 4 * (size_t)n_in : w0);
        size_t row_bytes = (size_t)n_in * 4;
        for (int i = 0; i < n8; i += 8) {
            if ((i & 15) == 0) PREFETCH_NEXT_ROWS(pf + (size_t)i * 4, row_bytes);
            __m256 xv = _mm256_loadu_ps(x + i);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
        }
        float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        for (int i = n8; i < n_in; i++) {
            s0 += w0[i] * x[i];
            s1 += w1[i] * x[i];
            s2 += w2[i] * x[i];
            s3 += w3[i] * x[i];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < row1; r++) {
        const float *wr = w + (size_t)r * n_in;
        __m256 a = _mm256_setzero_ps();
        for (int i = 0; i < n8; i += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(wr + i), _mm256_loadu_ps(x + i), a);
        float s = hsum(a);
        for (int i = n8; i < n_in; i++) s += wr[i] * x[i];
        y[r] = s;
    }
}

/* bf16 W, float32 x: two accumulators per row (eight FMA chains) to hide the FMA latency. */
AVX2 static void matvec_bf16(float *restrict y, const uint16_t *restrict w,
                             const float *restrict x, int n_in, int row0, int row1) {
    int n16 = n_in & ~15, n8 = n_in & ~7;
    int r = row0;
    for (; r + 4 <= row1; r += 4) {
        const uint16_t *w0 = w + (size_t)r * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in,
                       *w3 = w2 + n_in;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        /* the next four rows, same column: see PREFETCH_NEXT_ROWS */
        const char *pf = (const char *)(r + 8 <= row1 ? w0 + 4 * (size_t)n_in : w0);
        size_t row_bytes = (size_t)n_in * 2;
        int i = 0;
        for (; i < n16; i += 16) {
            PREFETCH_NEXT_ROWS(pf + (size_t)i * 2, row_bytes);
            __m256 xa = _mm256_loadu_ps(x + i), xb = _mm256_loadu_ps(x + i + 8);
            a0 = _mm256_fmadd_ps(load_bf16(w0 + i), xa, a0);
            a1 = _mm256_fmadd_ps(load_bf16(w1 + i), xa, a1);
            a2 = _mm256_fmadd_ps(load_bf16(w2 + i), xa, a2);
            a3 = _mm256_fmadd_ps(load_bf16(w3 + i), xa, a3);
            b0 = _mm256_fmadd_ps(load_bf16(w0 + i + 8), xb, b0);
            b1 = _mm256_fmadd_ps(load_bf16(w1 + i + 8), xb, b1);
            b2 = _mm256_fmadd_ps(load_bf16(w2 + i + 8), xb, b2);
            b3 = _mm256_fmadd_ps(load_bf16(w3 + i + 8), xb, b3);
        }
        for (; i < n8; i += 8) {
            __m256 xa = _mm256_loadu_ps(x + i);
            a0 = _mm256_fmadd_ps(load_bf16(w0 + i), xa, a0);
            a1 = _mm256_fmadd_ps(load_bf16(w1 + i), xa, a1);
            a2 = _mm256_fmadd_ps(load_bf16(w2 + i), xa, a2);
            a3 = _mm256_fmadd_ps(load_bf16(w3 + i), xa, a3);
        }
        float s0 = hsum(_mm256_add_ps(a0, b0)), s1 = hsum(_mm256_add_ps(a1, b1));
        float s2 = hsum(_mm256_add_ps(a2, b2)), s3 = hsum(_mm256_add_ps(a3, b3));
        for (; i < n_in; i++) {
            s0 += bf16_to_f32(w0[i]) * x[i];
            s1 += bf16_to_f32(w1[i]) * x[i];
            s2 += bf16_to_f32(w2[i]) * x[i];
            s3 += bf16_to_f32(w3[i]) * x[i];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < row1; r++) {
        const uint16_t *wr = w + (size_t)r * n_in;
        __m256 a = _mm256_setzero_ps();
        for (int i = 0; i < n8; i += 8)
            a = _mm256_fmadd_ps(load_bf16(wr + i), _mm256_loadu_ps(x + i), a);
        float s = hsum(a);
        for (int i = n8; i < n_in; i++) s += bf16_to_f32(wr[i]) * x[i];
        y[r] = s;
    }
}

/* 8 int8 at p widened to float32. */
AVX2 static inline __m256 load_i8(const int8_t *p) {
    __m128i v = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

/* sum over one block of q * x as 8 float32 lanes. */
AVX2 static inline __m256 block_dot_f32(const int8_t *q, const float *x) {
    __m256 s = _mm256_mul_ps(load_i8(q), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(load_i8(q + 8), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(load_i8(q + 16), _mm256_loadu_ps(x + 16), s);
    return _mm256_fmadd_ps(load_i8(q + 24), _mm256_loadu_ps(x + 24), s);
}

/* One block of row w against x held in x0..x3, times the row's scale d, into a. */
AVX2 static inline __m256 block_fma_f32(const int8_t *q, __m256 x0, __m256 x1, __m256 x2,
                                        __m256 x3, __m256 d, __m256 a) {
    __m256 s = _mm256_mul_ps(load_i8(q), x0);
    s = _mm256_fmadd_ps(load_i8(q + 8), x1, s);
    s = _mm256_fmadd_ps(load_i8(q + 16), x2, s);
    s = _mm256_fmadd_ps(load_i8(q + 24), x3, s);
    return _mm256_fmadd_ps(s, d, a);
}

/* q8_0 W, float32 x: each block's 32 products in float32, times the block's scale. Four rows
 * share each block of x (four loads) and one vcvtph2ps of their four scales, and the next four
 * rows are prefetched as in the other kernels: one row at a time ran at 0.4 of the read
 * bandwidth (7B-D ff_out shape, 2 threads), reloading x for every row. */
AVX2 static void matvec_q8_0_f32(float *restrict y, const struct molmo_q8_0_block *restrict w,
                                 const float *restrict x, int n_in, int row0, int row1) {
    int nb = n_in / MOLMO_Q8_0_BLOCK;
    int r = row0;
    for (; r + 4 <= row1; r += 4) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb, *w1 = w0 + nb, *w2 = w1 + nb,
                                      *w3 = w2 + nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const char *pf = (const char *)(r + 8 <= row1 ? w0 + 4 * (size_t)nb : w0);
        size_t row_bytes = (size_t)nb * sizeof *w;
        for (int k = 0; k < nb; k++) {
            PREFETCH_NEXT_ROWS(pf + (size_t)k * sizeof *w, row_bytes);
            const float *xb = x + (size_t)k * MOLMO_Q8_0_BLOCK;
            __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
            __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
            __m128i h = _mm_setr_epi16((short)w0[k].d, (short)w1[k].d, (short)w2[k].d,
                                       (short)w3[k].d, 0, 0, 0, 0);
            __m128 d4 = _mm_cvtph_ps(h);
            __m256 d8 = _mm256_set_m128(d4, d4);
            a0 = block_fma_f32(w0[k].q, x0, x1, x2, x3, _mm256_permute_ps(d8, 0x00), a0);
            a1 = block_fma_f32(w1[k].q, x0, x1, x2, x3, _mm256_permute_ps(d8, 0x55), a1);
            a2 = block_fma_f32(w2[k].q, x0, x1, x2, x3, _mm256_permute_ps(d8, 0xaa), a2);
            a3 = block_fma_f32(w3[k].q, x0, x1, x2, x3, _mm256_permute_ps(d8, 0xff), a3);
        }
        y[r] = hsum(a0), y[r + 1] = hsum(a1), y[r + 2] = hsum(a2), y[r + 3] = hsum(a3);
    }
    for (; r < row1; r++) {
        const struct molmo_q8_0_block *wr = w + (size_t)r * nb;
        __m256 a = _mm256_setzero_ps();
        for (int k = 0; k < nb; k++)
            a = _mm256_fmadd_ps(block_dot_f32(wr[k].q, x + (size_t)k * MOLMO_Q8_0_BLOCK),
                                _mm256_set1_ps(_cvtsh_ss(wr[k].d)), a);
        y[r] = hsum(a);
    }
}

/* int8 . int8 over 32 lanes as 8 int32 partial sums: maddubs needs an unsigned operand, so it
 * gets |w| and x carries w's sign (no -128 in either: q is in [-127, 127]). Pair sums
 * 2 * 127 * 127 fit int16. */
AVX2 static inline __m256i dot_i8(__m256i qw, __m256i qx) {
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* q8_0 W, q8 x: four rows share each x block load, and one vcvtph2ps turns their four scales
 * into float32 (then dw * dx, broadcast in-lane per row). */
AVX2 static void matvec_q8_0(float *restrict y, const struct molmo_q8_0_block *restrict w,
                             const struct molmo_q8_x *restrict xq, int row0, int row1) {
    int nb = xq->n_in / MOLMO_Q8_0_BLOCK;
    int r = row0;
#define DOT(wr) _mm256_cvtepi32_ps(dot_i8(_mm256_loadu_si256((const __m256i *)wr[k].q), qx))
    for (; r + 4 <= row1; r += 4) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb, *w1 = w0 + nb, *w2 = w1 + nb,
                                      *w3 = w2 + nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const char *pf = (const char *)(r + 8 <= row1 ? w0 + 4 * (size_t)nb : w0);
        size_t row_bytes = (size_t)nb * sizeof *w;
        for (int k = 0; k < nb; k++) {
            PREFETCH_NEXT_ROWS(pf + (size_t)k * sizeof *w, row_bytes);
            __m256i qx = _mm256_loadu_si256((const __m256i *)(xq->q + (size_t)k * 32));
            __m128i h = _mm_setr_epi16((short)w0[k].d, (short)w1[k].d, (short)w2[k].d,
                                       (short)w3[k].d, 0, 0, 0, 0);
            __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(h), _mm_set1_ps(xq->d[k]));
            __m256 d8 = _mm256_set_m128(d4, d4);
            a0 = _mm256_fmadd_ps(DOT(w0), _mm256_permute_ps(d8, 0x00), a0);
            a1 = _mm256_fmadd_ps(DOT(w1), _mm256_permute_ps(d8, 0x55), a1);
            a2 = _mm256_fmadd_ps(DOT(w2), _mm256_permute_ps(d8, 0xaa), a2);
            a3 = _mm256_fmadd_ps(DOT(w3), _mm256_permute_ps(d8, 0xff), a3);
        }
        y[r] = hsum(a0), y[r + 1] = hsum(a1), y[r + 2] = hsum(a2), y[r + 3] = hsum(a3);
    }
    for (; r < row1; r++) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb;
        __m256 a0 = _mm256_setzero_ps();
        for (int k = 0; k < nb; k++) {
            __m256i qx = _mm256_loadu_si256((const __m256i *)(xq->q + (size_t)k * 32));
            a0 = _mm256_fmadd_ps(DOT(w0), _mm256_set1_ps(_cvtsh_ss(w0[k].d) * xq->d[k]), a0);
        }
        y[r] = hsum(a0);
    }
#undef DOT
}

/* One 32-value block of x quantized as molmo_q8_x_quantize / molmo_q16_x_quantize do: the float32
 * max |x|, d = m / qmax, q[j] = round-to-nearest-even(x / d) as int32 in four vectors (elements
 * 8j..8j+7 in q[j]). Returns d; q is left unset when d is 0. */
AVX2 static inline float quantize_block_i32(const float *xb, float qmax, __m256i q[4]) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(xb + 8 * j);
    __m256 m8 = _mm256_max_ps(
        _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
        _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float d = _mm_cvtss_f32(m4) / qmax;
    if (d == 0.0f) return d;
    __m256 dv = _mm256_set1_ps(d);
    const int rnd = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    for (int j = 0; j < 4; j++)
        q[j] = _mm256_cvttps_epi32(_mm256_round_ps(_mm256_div_ps(v[j], dv), rnd));
    return d;
}

/* molmo_q8_x_quantize with 8 lanes: the same float32 max, m / 127, x / d and round-to-nearest-
 * even, so the result is bit-identical to the scalar one. */
AVX2 static void quantize_q8_x(struct molmo_q8_x *xq, const float *x) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < xq->n_in / MOLMO_Q8_0_BLOCK; b++) {
        __m256i v[4];
        float d = quantize_block_i32(x + (size_t)b * MOLMO_Q8_0_BLOCK, 127.0f, v);
        xq->d[b] = d;
        int8_t *q = xq->q + (size_t)b * MOLMO_Q8_0_BLOCK;
        if (d == 0.0f) {
            memset(q, 0, MOLMO_Q8_0_BLOCK);
            continue;
        }
        /* int32 -> int8 with saturation (the clamp to 127 of the scalar code; -128 cannot occur
         * as |x / d| <= 127 + rounding); the packs interleave 128-bit lanes, the permute
         * restores element order. */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]),
                                       _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(p, order));
    }
}

/* One q8_0 weight block (32 int8, sign-extended to int16 in two halves) . one int16 x block:
 * vpmaddwd pairs (|2 * 127 * 32767| < 2^31) and one add give 8 exact int32 partial sums. */
AVX2 static inline __m256 dot_x16(const int8_t *qw, __m256i x0, __m256i x1) {
    __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)qw));
    __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(qw + 16)));
    return _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_madd_epi16(w0, x0), _mm256_madd_epi16(w1, x1)));
}

/* q8_0 W, int16 x: as matvec_q8_0 (several rows per x block load, one vcvtph2ps for their
 * scales, the next rows prefetched), with the integer dot of dot_x16. Eight rows at a time, then
 * four: on the 7B-D checkpoint (8 layers, 2 threads) decode ran at 11.9 t/s with eight against
 * 10.9 with four (mean of 4 alternating runs; eight was ahead in each pair). */
AVX2 static void matvec_q8_0_x16(float *restrict y, const struct molmo_q8_0_block *restrict w,
                                 const struct molmo_q16_x *restrict xq, int row0, int row1) {
    int nb = xq->n_in / MOLMO_Q8_0_BLOCK;
    int r = row0;
    for (; r + 8 <= row1; r += 8) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb;
        size_t row_bytes = (size_t)nb * sizeof *w;
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
        const char *pf = (const char *)(r + 16 <= row1 ? w0 + 8 * (size_t)nb : w0);
        for (int k = 0; k < nb; k++) {
            PREFETCH_NEXT_ROWS(pf + (size_t)k * sizeof *w, row_bytes);
            PREFETCH_NEXT_ROWS(pf + (size_t)k * sizeof *w + 4 * row_bytes, row_bytes);
            const int16_t *xb = xq->q + (size_t)k * MOLMO_Q8_0_BLOCK;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)xb);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + 16));
            __m128i h = _mm_setr_epi16((short)w0[k].d, (short)w0[nb + k].d,
                                       (short)w0[2 * nb + k].d, (short)w0[3 * nb + k].d,
                                       (short)w0[4 * nb + k].d, (short)w0[5 * nb + k].d,
                                       (short)w0[6 * nb + k].d, (short)w0[7 * nb + k].d);
            __m256 d8 = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(xq->d[k]));
            __m256 dlo = _mm256_permute2f128_ps(d8, d8, 0x00);
            __m256 dhi = _mm256_permute2f128_ps(d8, d8, 0x11);
            a[0] = _mm256_fmadd_ps(dot_x16(w0[k].q, x0, x1), _mm256_permute_ps(dlo, 0x00), a[0]);
            a[1] = _mm256_fmadd_ps(dot_x16(w0[nb + k].q, x0, x1), _mm256_permute_ps(dlo, 0x55),
                                   a[1]);
            a[2] = _mm256_fmadd_ps(dot_x16(w0[2 * nb + k].q, x0, x1),
                                   _mm256_permute_ps(dlo, 0xaa), a[2]);
            a[3] = _mm256_fmadd_ps(dot_x16(w0[3 * nb + k].q, x0, x1),
                                   _mm256_permute_ps(dlo, 0xff), a[3]);
            a[4] = _mm256_fmadd_ps(dot_x16(w0[4 * nb + k].q, x0, x1),
                                   _mm256_permute_ps(dhi, 0x00), a[4]);
            a[5] = _mm256_fmadd_ps(dot_x16(w0[5 * nb + k].q, x0, x1),
                                   _mm256_permute_ps(dhi, 0x55), a[5]);
            a[6] = _mm256_fmadd_ps(dot_x16(w0[6 * nb + k].q, x0, x1),
                                   _mm256_permute_ps(dhi, 0xaa), a[6]);
            a[7] = _mm256_fmadd_ps(dot_x16(w0[7 * nb + k].q, x0, x1),
                                   _mm256_permute_ps(dhi, 0xff), a[7]);
        }
        for (int j = 0; j < 8; j++) y[r + j] = hsum(a[j]);
    }
    for (; r + 4 <= row1; r += 4) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb, *w1 = w0 + nb, *w2 = w1 + nb,
                                      *w3 = w2 + nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const char *pf = (const char *)(r + 8 <= row1 ? w0 + 4 * (size_t)nb : w0);
        size_t row_bytes = (size_t)nb * sizeof *w;
        for (int k = 0; k < nb; k++) {
            PREFETCH_NEXT_ROWS(pf + (size_t)k * sizeof *w, row_bytes);
            const int16_t *xb = xq->q + (size_t)k * MOLMO_Q8_0_BLOCK;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)xb);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + 16));
            __m128i h = _mm_setr_epi16((short)w0[k].d, (short)w1[k].d, (short)w2[k].d,
                                       (short)w3[k].d, 0, 0, 0, 0);
            __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(h), _mm_set1_ps(xq->d[k]));
            __m256 d8 = _mm256_set_m128(d4, d4);
            a0 = _mm256_fmadd_ps(dot_x16(w0[k].q, x0, x1), _mm256_permute_ps(d8, 0x00), a0);
            a1 = _mm256_fmadd_ps(dot_x16(w1[k].q, x0, x1), _mm256_permute_ps(d8, 0x55), a1);
            a2 = _mm256_fmadd_ps(dot_x16(w2[k].q, x0, x1), _mm256_permute_ps(d8, 0xaa), a2);
            a3 = _mm256_fmadd_ps(dot_x16(w3[k].q, x0, x1), _mm256_permute_ps(d8, 0xff), a3);
        }
        y[r] = hsum(a0), y[r + 1] = hsum(a1), y[r + 2] = hsum(a2), y[r + 3] = hsum(a3);
    }
    for (; r < row1; r++) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb;
        __m256 a0 = _mm256_setzero_ps();
        for (int k = 0; k < nb; k++) {
            const int16_t *xb = xq->q + (size_t)k * MOLMO_Q8_0_BLOCK;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)xb);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + 16));
            a0 = _mm256_fmadd_ps(dot_x16(w0[k].q, x0, x1),
                                 _mm256_set1_ps(_cvtsh_ss(w0[k].d) * xq->d[k]), a0);
        }
        y[r] = hsum(a0);
    }
}

/* molmo_q16_x_quantize with 8 lanes: the same float32 max, m / 32767, x / d and round-to-
 * nearest-even, so the result is bit-identical to the scalar one. */
AVX2 static void quantize_q16_x(struct molmo_q16_x *xq, const float *x) {
    for (int b = 0; b < xq->n_in / MOLMO_Q8_0_BLOCK; b++) {
        __m256i v[4];
        float d = quantize_block_i32(x + (size_t)b * MOLMO_Q8_0_BLOCK, 32767.0f, v);
        xq->d[b] = d;
        int16_t *q = xq->q + (size_t)b * MOLMO_Q8_0_BLOCK;
        if (d == 0.0f) {
            memset(q, 0, MOLMO_Q8_0_BLOCK * sizeof *q);
            continue;
        }
        /* int32 -> int16 with saturation (the scalar clamp; -32768 cannot occur); packs
         * interleaves 128-bit lanes, the 64-bit permute (0, 2, 1, 3) restores the order. */
        __m256i p0 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xd8);
        __m256i p1 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[2], v[3]), 0xd8);
        _mm256_storeu_si256((__m256i *)q, p0);
        _mm256_storeu_si256((__m256i *)(q + 16), p1);
    }
}

/* Peak probe: 12 independent FMA chains (Zen and Intel: 2 FMA ports x 4 cycles latency = 8
 * needed; 12 leaves slack). m is 1.0 but unknown to the compiler (it would turn a constant 1.0
 * into an add); the values grow by c per step, so no denormals or overflow. */
AVX2 float molmo_probe_fma_avx2(long iters) {
    __m256 m = _mm256_set1_ps(1.0f + (float)(iters < 0)), c = _mm256_set1_ps(1e-3f);
    __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f);
    __m256 a3 = _mm256_set1_ps(3.f), a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f);
    __m256 a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f), a8 = _mm256_set1_ps(8.f);
    __m256 a9 = _mm256_set1_ps(9.f), a10 = _mm256_set1_ps(10.f), a11 = _mm256_set1_ps(11.f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c), a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c), a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c), a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c), a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c), a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c), a11 = _mm256_fmadd_ps(a11, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    return hsum(s);
}

/* Streaming read: eight streams (the eighths of the range; see kernels-impl.h), XOR
 * of one vector per stream per step (integer ops, never the bottleneck). One sequential stream
 * per core stays well below what the memory system gives several. */
AVX2 uint64_t molmo_probe_read_avx2(const void *p, size_t n) {
    size_t q = n / 256; /* vectors of 32 bytes per stream */
    const __m256i *v = p;
    __m256i a[8];
    for (int s = 0; s < 8; s++) a[s] = _mm256_setzero_si256();
    for (size_t i = 0; i < q; i++) {
        a[0] = _mm256_xor_si256(a[0], _mm256_load_si256(v + i));
        a[1] = _mm256_xor_si256(a[1], _mm256_load_si256(v + q + i));
        a[2] = _mm256_xor_si256(a[2], _mm256_load_si256(v + 2 * q + i));
        a[3] = _mm256_xor_si256(a[3], _mm256_load_si256(v + 3 * q + i));
        a[4] = _mm256_xor_si256(a[4], _mm256_load_si256(v + 4 * q + i));
        a[5] = _mm256_xor_si256(a[5], _mm256_load_si256(v + 5 * q + i));
        a[6] = _mm256_xor_si256(a[6], _mm256_load_si256(v + 6 * q + i));
        a[7] = _mm256_xor_si256(a[7], _mm256_load_si256(v + 7 * q + i));
    }
    for (int s = 1; s < 8; s++) a[0] = _mm256_xor_si256(a[0], a[s]);
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a[0]);
    return out[0] ^ out[1] ^ out[2] ^ out[3];
}

/* e^x on 8 lanes. x = n ln2 + r with n = round(x log2 e), |r| <= ln2/2 (Cody-Waite: ln2 split
 * into a 9-bit head, so n * head is exact, and a tail); e^r = 1 + r + r^2 P(r) with Cephes'
 * degree-5 minimax P; then * 2^n as 2^k1 * 2^k2 (k1 = n >> 1, k2 = n - k1), both normal
 * powers of two, so results down in the subnormals take a single rounding and results above
 * FLT_MAX overflow to +inf by themselves. x is clamped to [-110, 89] first (e^-110 rounds to
 * +0, e^89 to +inf), which also keeps n in int range; NaN lanes return the (quieted) NaN. */
AVX2 static inline __m256 exp8(__m256 x) {
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-110.0f)), _mm256_set1_ps(89.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i k1 = _mm256_srai_epi32(ni, 1), k2 = _mm256_sub_epi32(ni, k1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(y, _mm256_add_ps(x, x), nan);
}

/* The n % 8 tail of an element-wise loop goes through an 8-lane buffer padded with pad. */
#define TAIL_LOAD(buf, src, m, pad)                                                           \
    do {                                                                                      \
        for (int t_ = 0; t_ < 8; t_++) (buf)[t_] = t_ < (int)(m) ? (src)[t_] : (pad);         \
    } while (0)

AVX2 static void exp_f32(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float b[8];
        TAIL_LOAD(b, x + i, n - i, 0.0f);
        _mm256_storeu_ps(b, exp8(_mm256_loadu_ps(b)));
        memcpy(y + i, b, (n - i) * sizeof(float));
    }
}

/* Adds the 8 lanes of v to the two double accumulators. */
AVX2 static inline void acc_pd(__m256d *lo, __m256d *hi, __m256 v) {
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

AVX2 static void softmax(float *x, int n) {
    int n8 = n & ~7;
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n8; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float lanes[8], mx = -INFINITY;
    _mm256_storeu_ps(lanes, vm);
    for (int i = 0; i < 8; i++) mx = lanes[i] > mx ? lanes[i] : mx;
    for (int i = n8; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    __m256 m = _mm256_set1_ps(mx);
    __m256d lo = _mm256_setzero_pd(), hi = lo;
    for (int i = 0; i < n8; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        acc_pd(&lo, &hi, e);
    }
    if (n8 < n) { /* padding -inf: e^-inf = 0 adds nothing */
        float b[8];
        TAIL_LOAD(b, x + n8, n - n8, -INFINITY);
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(b), m));
        _mm256_storeu_ps(b, e);
        memcpy(x + n8, b, (size_t)(n - n8) * sizeof(float));
        acc_pd(&lo, &hi, e);
    }
    double d[4];
    _mm256_storeu_pd(d, _mm256_add_pd(lo, hi));
    __m256 inv = _mm256_set1_ps((float)(1.0 / ((d[0] + d[1]) + (d[2] + d[3]))));
    int i = 0;
    for (; i < n8; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= _mm256_cvtss_f32(inv);
}

AVX2 static inline __m256 quick_gelu8(__m256 z) {
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-1.702f), z));
    return _mm256_mul_ps(z, _mm256_div_ps(one, _mm256_add_ps(one, e)));
}

AVX2 static void quick_gelu(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, quick_gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float b[8];
        TAIL_LOAD(b, x + i, n - i, 0.0f);
        _mm256_storeu_ps(b, quick_gelu8(_mm256_loadu_ps(b)));
        memcpy(x + i, b, (n - i) * sizeof(float));
    }
}

AVX2 static inline __m256 silu_mul8(__m256 g, __m256 u) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

AVX2 static void silu_mul(float *h, const float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(h + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float bg[8], bu[8];
        TAIL_LOAD(bg, g + i, n - i, 0.0f);
        TAIL_LOAD(bu, u + i, n - i, 0.0f);
        _mm256_storeu_ps(bg, silu_mul8(_mm256_loadu_ps(bg), _mm256_loadu_ps(bu)));
        memcpy(h + i, bg, (n - i) * sizeof(float));
    }
}

const struct molmo_kernels molmo_kernels_avx2 = {
    .isa = MOLMO_ISA_AVX2,
    .name = "avx2+fma",
    .matvec_f32 = matvec_f32,
    .matvec_bf16 = matvec_bf16,
    .matvec_q8_0_f32 = matvec_q8_0_f32,
    .matvec_q8_0 = matvec_q8_0,
    .quantize_q8_x = quantize_q8_x,
    .matvec_q8_0_x16 = matvec_q8_0_x16,
    .quantize_q16_x = quantize_q16_x,
    .exp_f32 = exp_f32,
    .softmax = softmax,
    .quick_gelu = quick_gelu,
    .silu_mul = silu_mul,
};

#else /* not x86-64: no vector kernels; molmo_cpu_detect reports scalar */

float molmo_probe_fma_avx2(long iters) { return (float)iters; }
uint64_t molmo_probe_read_avx2(const void *p, size_t n) { return (uint64_t)(n + (p != NULL)); }

const struct molmo_kernels molmo_kernels_avx2 = {.isa = MOLMO_ISA_AVX2, .name = "avx2+fma"};

#endif
