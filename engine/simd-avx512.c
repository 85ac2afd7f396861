/* AVX-512 kernels (F/BW/VL + BF16 + VNNI: Zen 4/5, Sapphire Rapids and later). Compiled per
 * function with a target attribute, handed out by molmo_kernels_init only when CPUID and XGETBV
 * say the CPU and OS support all of these. The matvec kernels widen bf16 to float32 exactly (the
 * decode product is bound by memory, not arithmetic, and x stays float32); q8_0 uses vpdpbusd.
 * vdpbf16ps is used by the peak probe. */
#include "config.h"

#include "engine/kernels-impl.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni,avx2,fma,f16c")))

static inline float bf16_to_f32(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

AVX512 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX512 static inline __m512 load_bf16(const uint16_t *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

AVX512 static void matvec_f32(float *restrict y, const float *restrict w, const float *restrict x,
                              int n_in, int row0, int row1) {
    int n16 = n_in & ~15;
    int r = row0;
    for (; r + 4 <= row1; r += 4) {
        const float *w0 = w + (size_t)r * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in,
                    *w3 = w2 + n_in;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < n16; i += 16) {
            __m512 xv = _mm512_loadu_ps(x + i);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i), xv, a3);
        }
        float s0 = _mm512_reduce_add_ps(a0), s1 = _mm512_reduce_add_ps(a1);
        float s2 = _mm512_reduce_add_ps(a2), s3 = _mm512_reduce_add_ps(a3);
        for (int i = n16; i < n_in; i++) {
            s0 += w0[i] * x[i];
            s1 += w1[i] * x[i];
            s2 += w2[i] * x[i];
            s3 += w3[i] * x[i];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < row1; r++) {
        const float *wr = w + (size_t)r * n_in;
        __m512 a = _mm512_setzero_ps();
        for (int i = 0; i < n16; i += 16)
            a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + i), _mm512_loadu_ps(x + i), a);
        float s = _mm512_reduce_add_ps(a);
        for (int i = n16; i < n_in; i++) s += wr[i] * x[i];
        y[r] = s;
    }
}

AVX512 static void matvec_bf16(float *restrict y, const uint16_t *restrict w,
                               const float *restrict x, int n_in, int row0, int row1) {
    int n32 = n_in & ~31, n16 = n_in & ~15;
    int r = row0;
    for (; r + 4 <= row1; r += 4) {
        const uint16_t *w0 = w + (size_t)r * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in,
                       *w3 = w2 + n_in;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int i = 0;
        for (; i < n32; i += 32) {
            __m512 xa = _mm512_loadu_ps(x + i), xb = _mm512_loadu_ps(x + i + 16);
            a0 = _mm512_fmadd_ps(load_bf16(w0 + i), xa, a0);
            a1 = _mm512_fmadd_ps(load_bf16(w1 + i), xa, a1);
            a2 = _mm512_fmadd_ps(load_bf16(w2 + i), xa, a2);
            a3 = _mm512_fmadd_ps(load_bf16(w3 + i), xa, a3);
            b0 = _mm512_fmadd_ps(load_bf16(w0 + i + 16), xb, b0);
            b1 = _mm512_fmadd_ps(load_bf16(w1 + i + 16), xb, b1);
            b2 = _mm512_fmadd_ps(load_bf16(w2 + i + 16), xb, b2);
            b3 = _mm512_fmadd_ps(load_bf16(w3 + i + 16), xb, b3);
        }
        for (; i < n16; i += 16) {
            __m512 xa = _mm512_loadu_ps(x + i);
            a0 = _mm512_fmadd_ps(load_bf16(w0 + i), xa, a0);
            a1 = _mm512_fmadd_ps(load_bf16(w1 + i), xa, a1);
            a2 = _mm512_fmadd_ps(load_bf16(w2 + i), xa, a2);
            a3 = _mm512_fmadd_ps(load_bf16(w3 + i), xa, a3);
        }
        float s0 = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
        float s1 = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
        float s2 = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
        float s3 = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
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
        __m512 a = _mm512_setzero_ps();
        for (int i = 0; i < n16; i += 16)
            a = _mm512_fmadd_ps(load_bf16(wr + i), _mm512_loadu_ps(x + i), a);
        float s = _mm512_reduce_add_ps(a);
        for (int i = n16; i < n_in; i++) s += bf16_to_f32(wr[i]) * x[i];
        y[r] = s;
    }
}

/* int8 . int8 over 32 lanes as 8 int32 sums with one vpdpbusd (unsigned x signed): |w| against
 * x carrying w's sign, as in the AVX2 kernel. */
AVX512 static inline __m256i dot_i8(__m256i qw, __m256i qx) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(qw, qw),
                               _mm256_sign_epi8(qx, qw));
}

AVX512 static void matvec_q8_0(float *restrict y, const struct molmo_q8_0_block *restrict w,
                               const struct molmo_q8_x *restrict xq, int row0, int row1) {
    int nb = xq->n_in / MOLMO_Q8_0_BLOCK;
    int r = row0;
#define ROW(a, wr)                                                                            \
    a = _mm256_fmadd_ps(                                                                      \
        _mm256_cvtepi32_ps(dot_i8(_mm256_loadu_si256((const __m256i *)wr[k].q), qx)),       \
        _mm256_set1_ps(_cvtsh_ss(wr[k].d) * dx), a)
    for (; r + 4 <= row1; r += 4) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb, *w1 = w0 + nb, *w2 = w1 + nb,
                                      *w3 = w2 + nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < nb; k++) {
            __m256i qx = _mm256_loadu_si256((const __m256i *)(xq->q + (size_t)k * 32));
            float dx = xq->d[k];
            ROW(a0, w0);
            ROW(a1, w1);
            ROW(a2, w2);
            ROW(a3, w3);
        }
        y[r] = hsum256(a0), y[r + 1] = hsum256(a1), y[r + 2] = hsum256(a2),
        y[r + 3] = hsum256(a3);
    }
    for (; r < row1; r++) {
        const struct molmo_q8_0_block *w0 = w + (size_t)r * nb;
        __m256 a0 = _mm256_setzero_ps();
        for (int k = 0; k < nb; k++) {
            __m256i qx = _mm256_loadu_si256((const __m256i *)(xq->q + (size_t)k * 32));
            float dx = xq->d[k];
            ROW(a0, w0);
        }
        y[r] = hsum256(a0);
    }
#undef ROW
}

/* 12 independent 512-bit FMA chains; see molmo_probe_fma_avx2. */
AVX512 float molmo_probe_fma_avx512(long iters) {
    __m512 m = _mm512_set1_ps(1.0f + (float)(iters < 0)), c = _mm512_set1_ps(1e-3f);
    __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f);
    __m512 a3 = _mm512_set1_ps(3.f), a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f);
    __m512 a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f), a8 = _mm512_set1_ps(8.f);
    __m512 a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_fmadd_ps(a0, m, c), a1 = _mm512_fmadd_ps(a1, m, c);
        a2 = _mm512_fmadd_ps(a2, m, c), a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c), a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c), a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c), a9 = _mm512_fmadd_ps(a9, m, c);
        a10 = _mm512_fmadd_ps(a10, m, c), a11 = _mm512_fmadd_ps(a11, m, c);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

/* 12 independent vdpbf16ps chains: each lane adds two bf16 products (4 FLOP). */
AVX512 float molmo_probe_dpbf16_avx512(long iters) {
    __m512 one = _mm512_set1_ps(1.0f + (float)(iters < 0)), small = _mm512_set1_ps(1e-3f);
    __m512bh p = _mm512_cvtne2ps_pbh(one, one), q = _mm512_cvtne2ps_pbh(small, small);
    __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f);
    __m512 a3 = _mm512_set1_ps(3.f), a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f);
    __m512 a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f), a8 = _mm512_set1_ps(8.f);
    __m512 a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_dpbf16_ps(a0, p, q), a1 = _mm512_dpbf16_ps(a1, p, q);
        a2 = _mm512_dpbf16_ps(a2, p, q), a3 = _mm512_dpbf16_ps(a3, p, q);
        a4 = _mm512_dpbf16_ps(a4, p, q), a5 = _mm512_dpbf16_ps(a5, p, q);
        a6 = _mm512_dpbf16_ps(a6, p, q), a7 = _mm512_dpbf16_ps(a7, p, q);
        a8 = _mm512_dpbf16_ps(a8, p, q), a9 = _mm512_dpbf16_ps(a9, p, q);
        a10 = _mm512_dpbf16_ps(a10, p, q), a11 = _mm512_dpbf16_ps(a11, p, q);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

/* matvec_q8_0_f32 is left NULL: molmo_kernels_init takes the AVX2 one (bound by memory). */
const struct molmo_kernels molmo_kernels_avx512 = {
    .isa = MOLMO_ISA_AVX512,
    .name = "avx512-bf16/vnni",
    .matvec_f32 = matvec_f32,
    .matvec_bf16 = matvec_bf16,
    .matvec_q8_0 = matvec_q8_0,
};

#else

float molmo_probe_fma_avx512(long iters) { return (float)iters; }
float molmo_probe_dpbf16_avx512(long iters) { return (float)iters; }

const struct molmo_kernels molmo_kernels_avx512 = {.isa = MOLMO_ISA_AVX512,
                                                   .name = "avx512-bf16/vnni"};

#endif
