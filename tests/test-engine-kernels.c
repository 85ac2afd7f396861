/* The decode kernels against their scalar references, the q8_0 format's error bound, binary16 /
 * bfloat16 rounding, CPU dispatch, and the thread pool's parallel-for. Tolerances are float32
 * summation-order bounds derived next to each comparison; expected values are hand-derived or
 * computed in double from the definitions, never from the code under test. */
#include "engine/kernels-impl.h"

#include "common/jb-err.h"
#include "common/jb-pool.h"
#include "engine/molmo.h"
#include "tests/jb-test.h"

#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}
static float urand(void) { return (float)(rng() >> 40) * 0x1p-23f - 1.0f; } /* [-1, 1) */

static float bits_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* The ISAs this CPU can run, according to GCC's own CPUID reading (an oracle independent of
 * molmo_cpu_detect). */
static int cpu_runs(enum molmo_isa isa) {
    if (isa == MOLMO_ISA_SCALAR) return 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == MOLMO_ISA_AVX2) return avx2 && molmo_cpu_detect().f16c;
    if (isa == MOLMO_ISA_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("avx512bf16");
#endif
    return 0;
}

static const int odd_rows[] = {1, 3, 4, 5, 7, 13};
static const int odd_cols[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 257, 1031};
static const int q8_cols[] = {32, 64, 96, 160, 1056};

/* Reordering a float32 sum of n products changes it by at most 2 * gamma_n * sum |w_i x_i| with
 * gamma_n ~ n * 2^-24 (Higham, Accuracy and Stability, 3.1): each order is within gamma_n of the
 * exact sum. +1 on n covers the final horizontal adds. */
static double reorder_tol(int n, double abs_sum) { return 2.0 * (n + 8) * 0x1p-24 * abs_sum; }

Test(kernels, f32_and_bf16_matvec_match_the_scalar_reference_with_tails) {
    const struct molmo_kernels *tables[] = {&molmo_kernels_avx2, &molmo_kernels_avx512};
    int tested = 0;
    for (size_t t = 0; t < 2; t++) {
        struct molmo_kernels k;
        if (!cpu_runs(tables[t]->isa)) continue;
        cr_assert_eq(molmo_kernels_init(&k, molmo_cpu_detect(), tables[t]->isa), tables[t]->isa);
        tested++;
        for (size_t a = 0; a < sizeof odd_rows / sizeof *odd_rows; a++) {
            for (size_t b = 0; b < sizeof odd_cols / sizeof *odd_cols; b++) {
                int R = odd_rows[a], C = odd_cols[b];
                float *w = malloc((size_t)R * C * 4), *x = malloc((size_t)C * 4);
                uint16_t *wb = malloc((size_t)R * C * 2);
                float y[16], yr[16];
                for (int i = 0; i < R * C; i++) w[i] = urand(), wb[i] = (uint16_t)rng();
                for (int i = 0; i < C; i++) x[i] = urand();
                for (int i = 0; i < R * C; i++) /* keep bf16 finite: clear the top exponent bit */
                    wb[i] &= 0xbfff;
                /* y[R] stays untouched: rows outside [row0, row1) are not written */
                y[R] = yr[R] = -7.0f;
                k.matvec_f32(y, w, x, C, 0, R);
                molmo_kernels_scalar.matvec_f32(yr, w, x, C, 0, R);
                for (int r = 0; r < R; r++) {
                    double abs_sum = 0, exact = 0;
                    for (int i = 0; i < C; i++) {
                        abs_sum += fabs((double)w[r * C + i] * x[i]);
                        exact += (double)w[r * C + i] * x[i];
                    }
                    double tol = reorder_tol(C, abs_sum) + 1e-30;
                    cr_assert_leq(fabs(y[r] - yr[r]), tol, "%s f32 %dx%d row %d: %g vs %g",
                                  k.name, R, C, r, y[r], yr[r]);
                    cr_assert_leq(fabs(yr[r] - exact), tol, "scalar f32 vs double");
                }
                cr_assert_eq(y[R], -7.0f);
                k.matvec_bf16(y, wb, x, C, 0, R);
                molmo_kernels_scalar.matvec_bf16(yr, wb, x, C, 0, R);
                for (int r = 0; r < R; r++) {
                    double abs_sum = 0, exact = 0;
                    for (int i = 0; i < C; i++) {
                        double wv = bits_f32((uint32_t)wb[r * C + i] << 16);
                        abs_sum += fabs(wv * x[i]);
                        exact += wv * x[i];
                    }
                    double tol = reorder_tol(C, abs_sum) + 1e-30;
                    cr_assert_leq(fabs(y[r] - yr[r]), tol, "%s bf16 %dx%d row %d: %g vs %g",
                                  k.name, R, C, r, y[r], yr[r]);
                    cr_assert_leq(fabs(yr[r] - exact), tol, "scalar bf16 vs double");
                }
                cr_assert_eq(y[R], -7.0f);
                free(w), free(x), free(wb);
            }
        }
    }
    if (!tested) cr_skip_test("no vector kernels run on this CPU");
}

/* A random q8_0 matrix (R, C) with scales spanning several binades. */
static struct molmo_q8_0_block *random_q8(int R, int C) {
    int nb = R * C / MOLMO_Q8_0_BLOCK;
    struct molmo_q8_0_block *w = malloc((size_t)nb * sizeof *w);
    for (int b = 0; b < nb; b++) {
        w[b].d = molmo_f32_to_f16(ldexpf(1.0f + urand() * 0.5f, (int)(rng() % 12) - 10));
        for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) w[b].q[i] = (int8_t)((int)(rng() % 255) - 127);
    }
    return w;
}

Test(kernels, q8_0_matvecs_match_the_scalar_reference) {
    const struct molmo_kernels *tables[] = {&molmo_kernels_avx2, &molmo_kernels_avx512};
    int tested = 0;
    for (size_t t = 0; t < 2; t++) {
        struct molmo_kernels k;
        if (!cpu_runs(tables[t]->isa)) continue;
        molmo_kernels_init(&k, molmo_cpu_detect(), tables[t]->isa);
        tested++;
        for (size_t a = 0; a < sizeof odd_rows / sizeof *odd_rows; a++) {
            for (size_t b = 0; b < sizeof q8_cols / sizeof *q8_cols; b++) {
                int R = odd_rows[a], C = q8_cols[b], nb = C / MOLMO_Q8_0_BLOCK;
                struct molmo_q8_0_block *w = random_q8(R, C);
                float *x = malloc((size_t)C * 4), *wd = malloc((size_t)C * 4), y[16], yr[16];
                struct molmo_q8_x xq = {malloc((size_t)nb * 4), malloc((size_t)C), C};
                for (int i = 0; i < C; i++) x[i] = urand() * 4.0f;
                molmo_q8_x_quantize(&xq, x);
                k.matvec_q8_0_f32(y, w, x, C, 0, R);
                molmo_kernels_scalar.matvec_q8_0_f32(yr, w, x, C, 0, R);
                for (int r = 0; r < R; r++) {
                    molmo_q8_0_dequantize_row(wd, w + (size_t)r * nb, C);
                    double abs_sum = 0, exact = 0;
                    for (int i = 0; i < C; i++) {
                        abs_sum += fabs((double)wd[i] * x[i]);
                        exact += (double)wd[i] * x[i];
                    }
                    /* per block: 32-term sum, then one scale product: n + 2 roundings deep */
                    double tol = reorder_tol(C + 2 * nb, abs_sum) + 1e-30;
                    cr_assert_leq(fabs(y[r] - yr[r]), tol, "%s q8_0_f32 %dx%d row %d", k.name, R,
                                  C, r);
                    cr_assert_leq(fabs(yr[r] - exact), tol, "scalar q8_0_f32 vs double");
                }
                k.matvec_q8_0(y, w, &xq, 0, R);
                molmo_kernels_scalar.matvec_q8_0(yr, w, &xq, 0, R);
                for (int r = 0; r < R; r++) {
                    const struct molmo_q8_0_block *wr = w + (size_t)r * nb;
                    double abs_sum = 0, exact = 0;
                    for (int bk = 0; bk < nb; bk++) {
                        long isum = 0, iabs = 0;
                        for (int i = 0; i < 32; i++) {
                            isum += (long)wr[bk].q[i] * xq.q[bk * 32 + i];
                            iabs += labs((long)wr[bk].q[i] * xq.q[bk * 32 + i]);
                        }
                        double scale = (double)molmo_f16_to_f32(wr[bk].d) * xq.d[bk];
                        abs_sum += fabs(scale) * (double)iabs;
                        exact += scale * (double)isum;
                    }
                    /* Integer partial sums (of any grouping: lanes, blocks) are exact; the float
                     * sum adds at most C scaled partial sums, each bounded by the elementwise
                     * absolute sum, and each scaled by one rounded product (+3 roundings). */
                    double tol = reorder_tol(C + 3, abs_sum) + 1e-30;
                    cr_assert_leq(fabs(y[r] - yr[r]), tol, "%s q8_0 %dx%d row %d: %g vs %g",
                                  k.name, R, C, r, y[r], yr[r]);
                    cr_assert_leq(fabs(yr[r] - exact), tol, "scalar q8_0 vs double");
                }
                free(w), free(x), free(wd), free(xq.d), free(xq.q);
            }
        }
    }
    if (!tested) cr_skip_test("no vector kernels run on this CPU");
}

Test(kernels, bf16_weights_are_widened_exactly) {
    /* One nonzero weight per row: y = w * x exactly (x = 1.0 or a power of two). Hand-decoded
     * bf16: 0x3f80 = 1.0, 0xc040 = -3.0, 0x3f81 = 1 + 2^-7, 0x0001 = 2^-133 (subnormal). */
    static const uint16_t bits[] = {0x3f80, 0xc040, 0x3f81, 0x0001};
    static const float want[] = {1.0f, -3.0f, 1.0078125f, 0x1p-133f};
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), MOLMO_ISA_BEST);
    uint16_t w[4 * 19] = {0};
    float x[19], y[4];
    for (int i = 0; i < 19; i++) x[i] = 1.0f;
    for (int r = 0; r < 4; r++) w[r * 19 + (r * 5) % 19] = bits[r];
    k.matvec_bf16(y, w, x, 19, 0, 4);
    for (int r = 0; r < 4; r++) cr_assert_eq(y[r], want[r], "row %d: %a", r, (double)y[r]);
}

Test(kernels, f32_to_bf16_and_f16_round_to_nearest_even) {
    /* bf16 keeps 8 significant bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> even (1.0);
     * 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6 -> even (1 + 2^-6 = 0x3f82). */
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    /* binary16: 11 significant bits, max 65504, subnormal step 2^-24. */
    cr_assert_eq(molmo_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(molmo_f32_to_f16(-2.0f), 0xc000);
    cr_assert_eq(molmo_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie -> even */
    cr_assert_eq(molmo_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie -> even */
    cr_assert_eq(molmo_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(molmo_f32_to_f16(65519.0f), 0x7bff);
    cr_assert_eq(molmo_f32_to_f16(65520.0f), 0x7c00); /* tie between 65504 and 2^16 -> inf */
    cr_assert_eq(molmo_f32_to_f16(0x1p-24f), 0x0001);
    cr_assert_eq(molmo_f32_to_f16(0x1p-25f), 0x0000);     /* tie -> even (0) */
    cr_assert_eq(molmo_f32_to_f16(3 * 0x1p-25f), 0x0002); /* tie -> even (2) */
    cr_assert_eq(molmo_f32_to_f16(0x1p-14f - 0x1p-30f), 0x0400); /* rounds up to the min normal */
    cr_assert_eq(molmo_f16_to_f32(0x0001), 0x1p-24f);
    cr_assert_eq(molmo_f16_to_f32(0x3555), 0x1.554p-2f);
    uint16_t nan = molmo_f32_to_f16(NAN);
    cr_assert((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
}

Test(q8_0, quantizes_a_hand_worked_block) {
    /* m = 127 -> d = 1.0 exactly (0x3c00). q = rint(x): 127, -63.5 -> -64 (even), 0.5 -> 0
     * (even), 2.5 -> 2 (even), -0.75 -> -1; the rest 0. */
    float x[32] = {127.0f, -63.5f, 0.5f, 2.5f, -0.75f};
    struct molmo_q8_0_block b;
    cr_assert_eq(molmo_q8_0_quantize_row(&b, x, 32, NULL), 0);
    cr_assert_eq(b.d, 0x3c00);
    static const int8_t want[5] = {127, -64, 0, 2, -1};
    for (int i = 0; i < 5; i++) cr_assert_eq(b.q[i], want[i], "q[%d] = %d", i, b.q[i]);
    for (int i = 5; i < 32; i++) cr_assert_eq(b.q[i], 0);
    /* m = 1: m / 127 = 0.007874015..., binary16 neighbours 0x2008 = 0.0078735 (< m/127) and
     * 0x2009 = 0.0078773; rounding up picks 0x2009, and 1 / 0.0078773 = 126.95 -> q = 127. */
    float y[32] = {1.0f};
    cr_assert_eq(molmo_q8_0_quantize_row(&b, y, 32, NULL), 0);
    cr_assert_eq(b.d, 0x2009);
    cr_assert_eq(b.q[0], 127);
}

Test(q8_0, round_trip_error_is_within_the_stated_bound) {
    /* Random matrices whose blocks span magnitudes from 1e-9 (binary16 subnormal scales) to 1e5,
     * plus an all-zero block. Bound (kernels-impl.h, README): |x - d q| <= d / 2, and
     * d / 2 <= (m / 254)(1 + 2^-10) for normal d, <= m / 254 + 2^-25 for subnormal d. */
    enum { R = 37, C = 4096 };
    float *x = malloc((size_t)R * C * 4), *xd = malloc((size_t)C * 4);
    struct molmo_q8_0_block *q = malloc((size_t)C / 32 * sizeof *q);
    double worst = 0.0;
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < C; i++) {
            float scale = ldexpf(1.0f, (int)((i / 32 * 7 + r) % 47) - 30); /* 2^-30 .. 2^16 */
            x[(size_t)r * C + i] = (i / 32 == 5) ? 0.0f : urand() * scale;
        }
        const float *xr = x + (size_t)r * C;
        cr_assert_eq(molmo_q8_0_quantize_row(q, xr, C, NULL), 0);
        molmo_q8_0_dequantize_row(xd, q, C);
        for (int b = 0; b < C / 32; b++) {
            double m = 0.0;
            for (int i = 0; i < 32; i++) m = fmax(m, fabs(xr[b * 32 + i]));
            double d = molmo_f16_to_f32(q[b].d);
            cr_assert_geq(d, m / 127.0, "d below m/127");                /* no clipping */
            if (q[b].d > 0) cr_assert_lt(molmo_f16_to_f32((uint16_t)(q[b].d - 1)), m / 127.0);
            double bound = d >= 0x1p-14 ? m / 254.0 * (1 + 0x1p-10) : m / 254.0 + 0x1p-25;
            cr_assert_leq(d / 2, bound);
            for (int i = 0; i < 32; i++) {
                double e = fabs((double)xr[b * 32 + i] - xd[b * 32 + i]);
                cr_assert_leq(e, d / 2, "row %d block %d elem %d: err %g > d/2 %g", r, b, i, e,
                              d / 2);
                cr_assert_leq(e, bound);
                if (d >= 0x1p-14) worst = fmax(worst, e / (m / 254.0));
            }
        }
    }
    cr_assert_leq(worst, 1.0 + 0x1p-10); /* over the blocks with a normal scale */
    cr_assert_gt(worst, 0.9, "the bound is nearly reached, so it is the right one to state");
    free(x), free(xd), free(q);
}

Test(q8_0, rejects_rows_it_cannot_represent) {
    float x[64] = {0};
    struct molmo_q8_0_block b[2];
    struct jb_err err = {0};
    cr_assert_eq(molmo_q8_0_quantize_row(b, x, 33, &err), JB_EINVAL);
    x[3] = NAN;
    cr_assert_eq(molmo_q8_0_quantize_row(b, x, 32, &err), JB_EINVAL);
    x[3] = 1e7f; /* 1e7 / 127 = 78740 > 65504, the largest binary16 */
    cr_assert_eq(molmo_q8_0_quantize_row(b, x, 32, &err), JB_EINVAL);
    cr_assert(strstr(err.msg, "binary16") != NULL, "%s", err.msg);
}

Test(q8_0, integer_kernel_error_is_bounded_by_the_activation_rounding) {
    /* Against the f32-dequant product, the q8 x kernel differs by the rounding of x to q8:
     * |sum_i w_i (x_i - dx q_i)| <= sum_b dx_b / 2 * sum_i |w_i| (plus float32 sum rounding). */
    enum { R = 9, C = 3584 };
    struct molmo_q8_0_block *w = random_q8(R, C);
    float x[C], wd[C], y[R], yf[R];
    float dxs[C / 32];
    int8_t qs[C];
    struct molmo_q8_x xq = {dxs, qs, C};
    for (int i = 0; i < C; i++) x[i] = urand();
    molmo_q8_x_quantize(&xq, x);
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), MOLMO_ISA_BEST);
    k.matvec_q8_0(y, w, &xq, 0, R);
    k.matvec_q8_0_f32(yf, w, x, C, 0, R);
    for (int r = 0; r < R; r++) {
        molmo_q8_0_dequantize_row(wd, w + (size_t)r * (C / 32), C);
        double bound = 0, abs_sum = 0;
        for (int i = 0; i < C; i++) {
            bound += fabs(wd[i]) * dxs[i / 32] / 2;
            abs_sum += fabs((double)wd[i] * x[i]);
        }
        cr_assert_leq(fabs(y[r] - yf[r]), bound + 2 * reorder_tol(C, abs_sum + bound));
        cr_assert_gt(fabs(y[r] - yf[r]), 0.0, "x was really quantized"); /* not vacuous */
    }
    free(w);
}

Test(q8_0, vector_activation_quantizer_is_bit_identical_to_the_scalar_one) {
    /* Both divide in float32 and round to nearest even; blocks include ties (x / d = k + 0.5
     * for x = 63.5 with m = 127), zeros, and an all-zero block. */
    enum { C = 32 * 7 };
    float x[C], d1[C / 32], d2[C / 32];
    int8_t q1[C], q2[C];
    for (int i = 0; i < C; i++) x[i] = urand() * ldexpf(1.0f, i / 32 * 3 - 9);
    for (int i = 64; i < 96; i++) x[i] = 0.0f;
    x[0] = 127.0f, x[1] = 63.5f, x[2] = -0.5f, x[3] = 2.5f, x[4] = -127.0f;
    struct molmo_q8_x a = {d1, q1, C}, b = {d2, q2, C};
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), MOLMO_ISA_BEST);
    molmo_q8_x_quantize(&a, x);
    k.quantize_q8_x(&b, x);
    cr_assert_arr_eq(d1, d2, sizeof d1);
    cr_assert_arr_eq(q1, q2, sizeof q1);
    /* hand-derived: d = 1, so q = rint(x): 127, 64 (63.5 ties to even), 0, 2, -127 */
    static const int8_t want[5] = {127, 64, 0, 2, -127};
    cr_assert_arr_eq(q2, want, sizeof want);
}

/* ---- q8_0 weights x int16 activations ------------------------------------------------- */

Test(kernels, q8_0_x16_matvec_matches_the_scalar_reference) {
    const struct molmo_kernels *tables[] = {&molmo_kernels_avx2, &molmo_kernels_avx512};
    int tested = 0;
    for (size_t t = 0; t < 2; t++) {
        struct molmo_kernels k;
        if (!cpu_runs(tables[t]->isa)) continue;
        molmo_kernels_init(&k, molmo_cpu_detect(), tables[t]->isa);
        tested++;
        for (size_t a = 0; a < sizeof odd_rows / sizeof *odd_rows; a++) {
            for (size_t b = 0; b < sizeof q8_cols / sizeof *q8_cols; b++) {
                int R = odd_rows[a], C = q8_cols[b], nb = C / MOLMO_Q8_0_BLOCK;
                struct molmo_q8_0_block *w = random_q8(R, C);
                float *x = malloc((size_t)C * 4), y[16], yr[16];
                struct molmo_q16_x xq = {malloc((size_t)nb * 4), malloc((size_t)C * 2), C};
                for (int i = 0; i < C; i++) x[i] = urand() * 4.0f;
                molmo_q16_x_quantize(&xq, x);
                /* rows [1, R) only: y[0] must stay untouched (row splitting) */
                y[0] = yr[0] = 12345.0f;
                k.matvec_q8_0_x16(y, w, &xq, 1, R);
                molmo_kernels_scalar.matvec_q8_0_x16(yr, w, &xq, 1, R);
                cr_assert_eq(y[0], 12345.0f, "%s wrote outside [row0, row1)", k.name);
                for (int r = 1; r < R; r++) {
                    const struct molmo_q8_0_block *wr = w + (size_t)r * nb;
                    double abs_sum = 0, exact = 0;
                    for (int bk = 0; bk < nb; bk++) {
                        long isum = 0, iabs = 0;
                        for (int i = 0; i < 32; i++) {
                            isum += (long)wr[bk].q[i] * xq.q[bk * 32 + i];
                            iabs += labs((long)wr[bk].q[i] * xq.q[bk * 32 + i]);
                        }
                        double scale = (double)molmo_f16_to_f32(wr[bk].d) * xq.d[bk];
                        abs_sum += fabs(scale) * (double)iabs;
                        exact += scale * (double)isum;
                    }
                    /* as for the int8 kernel: exact integer block sums, then nb scaled
                     * float32 terms, each scale one rounded product (+3 roundings) */
                    double tol = reorder_tol(nb + 3, abs_sum) + 1e-30;
                    cr_assert_leq(fabs(y[r] - yr[r]), tol, "%s q8_0_x16 %dx%d row %d: %g vs %g",
                                  k.name, R, C, r, y[r], yr[r]);
                    cr_assert_leq(fabs(yr[r] - exact), tol, "scalar q8_0_x16 vs double");
                }
                free(w), free(x), free(xq.d), free(xq.q);
            }
        }
    }
    if (!tested) cr_skip_test("no vector kernels run on this CPU");
}

Test(kernels, q8_0_x16_block_sums_are_exact_integers) {
    /* Hand-made blocks, dw = 1.0 (binary16 0x3c00), dx = 1.0; P = 127 * 32767 = 4161409.
     * x: q_x = +32767 (i < 15), -32767 (15 <= i < 30), 1 (i = 30), 0 (i = 31).
     * Row 0: q_w = 127 (i < 30), 1 (i = 30): the exact sum is 15 P - 15 P + 1 = 1, while a
     * float32 running sum loses the last bit at 15 P = 62421135 (odd, above 2^24).
     * Rows 1 and 2: q_w = +127 and -127 everywhere: 127 (15 - 15) 32767 + 127 = +-127.
     * Row 3 = row 0, row 4 = 0 (five rows: no multiple of 4, the kernels' tail).
     * Then x = 32767 everywhere: row 1 gives the largest block sum, 32 P = 133165088
     * (= 2^5 * 4161409, exact in float32), row 2 its negative. */
    enum { R = 5 };
    struct molmo_q8_0_block w[R];
    memset(w, 0, sizeof w);
    for (int r = 0; r < R; r++) w[r].d = 0x3c00;
    for (int i = 0; i < 30; i++) w[0].q[i] = w[3].q[i] = 127;
    w[0].q[30] = w[3].q[30] = 1;
    for (int i = 0; i < 32; i++) w[1].q[i] = 127, w[2].q[i] = -127;
    float dx = 1.0f;
    int16_t qa[32], qb[32];
    for (int i = 0; i < 32; i++) {
        qa[i] = (int16_t)(i < 15 ? 32767 : i < 30 ? -32767 : i == 30 ? 1 : 0);
        qb[i] = 32767;
    }
    struct molmo_q16_x xa = {&dx, qa, 32}, xb = {&dx, qb, 32};
    static const float want_a[R] = {1.0f, 127.0f, -127.0f, 1.0f, 0.0f};
    const struct molmo_kernels *tables[] = {&molmo_kernels_scalar, &molmo_kernels_avx2,
                                            &molmo_kernels_avx512};
    for (size_t t = 0; t < 3; t++) {
        struct molmo_kernels k;
        if (!cpu_runs(tables[t]->isa)) continue;
        molmo_kernels_init(&k, molmo_cpu_detect(), tables[t]->isa);
        float y[R];
        k.matvec_q8_0_x16(y, w, &xa, 0, R);
        for (int r = 0; r < R; r++)
            cr_assert_eq(y[r], want_a[r], "%s row %d: %.9g", k.name, r, (double)y[r]);
        k.matvec_q8_0_x16(y, w, &xb, 0, R);
        cr_assert_eq(y[1], 133165088.0f, "%s: %.9g", k.name, (double)y[1]);
        cr_assert_eq(y[2], -133165088.0f, "%s: %.9g", k.name, (double)y[2]);
    }
}

Test(q8_0, int16_activation_quantization_error_is_within_its_derived_bound) {
    /* kernels-impl.h: d = m / 32767, |x - d q| <= d / 2 + |x| 2^-24 <= m (1 / 65534 + 2^-23),
     * q in [-32767, 32767] and the block max lands on +-32767. Blocks span magnitudes 2^-20 to
     * 2^20 and include an all-zero block. */
    enum { C = 32 * 16 };
    float x[C], d[C / 32];
    int16_t q[C];
    for (int i = 0; i < C; i++) x[i] = urand() * ldexpf(1.0f, (i / 32) * 3 - 20);
    for (int i = 96; i < 128; i++) x[i] = 0.0f;
    struct molmo_q16_x xq = {d, q, C};
    molmo_q16_x_quantize(&xq, x);
    for (int b = 0; b < C / 32; b++) {
        float m = 0;
        for (int i = 0; i < 32; i++) m = fmaxf(m, fabsf(x[b * 32 + i]));
        cr_assert_eq(d[b], m / 32767.0f, "block %d scale", b);
        int hit_max = 0;
        for (int i = 0; i < 32; i++) {
            int j = b * 32 + i;
            double err = fabs((double)x[j] - (double)d[b] * q[j]);
            cr_assert_leq(err, (double)m * (1.0 / 65534 + 0x1p-23), "block %d elem %d", b, i);
            cr_assert(q[j] >= -32767 && q[j] <= 32767);
            if (fabsf(x[j]) == m && m > 0) hit_max |= abs(q[j]) == 32767;
        }
        cr_assert(m == 0 || hit_max, "block %d: the max does not map to 32767", b);
        if (m == 0)
            for (int i = 0; i < 32; i++) cr_assert_eq(q[b * 32 + i], 0);
    }
}

Test(q8_0, vector_int16_activation_quantizer_is_bit_identical_to_the_scalar_one) {
    /* ties: with m = 32767 (d = 1) x = 2.5 -> 2, 3.5 -> 4, -0.5 -> 0 (nearest even) */
    enum { C = 32 * 7 };
    float x[C], d1[C / 32], d2[C / 32];
    int16_t q1[C], q2[C];
    for (int i = 0; i < C; i++) x[i] = urand() * ldexpf(1.0f, i / 32 * 3 - 9);
    for (int i = 64; i < 96; i++) x[i] = 0.0f;
    x[0] = 32767.0f, x[1] = 2.5f, x[2] = -0.5f, x[3] = 3.5f, x[4] = -32767.0f;
    const struct molmo_kernels *tables[] = {&molmo_kernels_avx2, &molmo_kernels_avx512};
    int tested = 0;
    for (size_t t = 0; t < 2; t++) {
        struct molmo_kernels k;
        if (!cpu_runs(tables[t]->isa)) continue;
        molmo_kernels_init(&k, molmo_cpu_detect(), tables[t]->isa);
        tested++;
        struct molmo_q16_x a = {d1, q1, C}, b = {d2, q2, C};
        memset(q2, 0x55, sizeof q2);
        molmo_q16_x_quantize(&a, x);
        k.quantize_q16_x(&b, x);
        cr_assert_arr_eq(d1, d2, sizeof d1, "%s", k.name);
        cr_assert_arr_eq(q1, q2, sizeof q1, "%s", k.name);
        static const int16_t want[5] = {32767, 2, 0, 4, -32767};
        cr_assert_arr_eq(q2, want, sizeof want, "%s", k.name);
    }
    if (!tested) cr_skip_test("no vector kernels run on this CPU");
}

/* |y - e^x| in units in the last place of e^x (computed in double: libm's exp is within one
 * double ulp, ~2^-29 of a float ulp). The ulp of a subnormal is 2^-149; +inf counts as 2^128,
 * so an overflow is only accepted where e^x is within the bound of 2^128. */
static double exp_ulp_error(float x, float y) {
    double ex = exp((double)x);
    if (isnan(x)) return isnan(y) ? 0.0 : INFINITY;
    double yd = isinf(y) ? 0x1p128 : (double)y;
    if (ex >= 0x1p128) return yd == 0x1p128 ? 0.0 : INFINITY; /* past the float range */
    int e;
    frexp(ex, &e);                                 /* ex = m 2^e, m in [0.5, 1) */
    double ulp = ldexp(1.0, (e - 24 < -149 ? -149 : e - 24));
    return fabs(yd - ex) / ulp;
}

Test(kernels, vector_exp_is_within_the_stated_ulp_of_e_to_the_x_over_the_float_range) {
    const struct molmo_kernels *tables[] = {&molmo_kernels_avx2, &molmo_kernels_avx512};
    /* hand-picked: zeros, infinities, NaN, the largest finite result (e^88.7228 ~ 3.4e38) and
     * the first overflow, the normal/subnormal boundary (e^-87.3365 ~ 2^-126), the smallest
     * subnormal (e^-103.279 ~ 2^-149) and the first input that rounds to +0 (e^-103.973 is
     * below half of 2^-149), subnormal inputs, huge magnitudes */
    static const float edge[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.72283f, 88.72284f,
                                 88.8f, 89.0f, 100.0f, -87.33654f, -87.3366f, -103.27893f,
                                 -103.97208f, -103.98f, -104.0f, -110.0f, -200.0f, 1e-45f,
                                 -1e-45f, 1e-38f, 0.5f, -0.5f, 0.34657359f, 1.0f, -1.0f,
                                 3.4e38f, -3.4e38f};
    enum { NE = sizeof edge / sizeof edge[0] };
    /* every 1009th float bit pattern with |x| < 112 (both signs), plus the edges: ~2.3 M */
    size_t cap = 2 * (0x42e00000u / 1009 + 1) + NE, n = 0;
    float *x = malloc(cap * sizeof(float)), *y = malloc(cap * sizeof(float));
    cr_assert(x && y);
    for (size_t i = 0; i < NE; i++) x[n++] = edge[i];
    for (uint32_t b = 0; b < 0x42e00000u; b += 1009) {
        x[n++] = bits_f32(b);
        x[n++] = bits_f32(b | 0x80000000u);
    }
    int tested = 0;
    for (size_t t = 0; t < 2; t++) {
        if (!cpu_runs(tables[t]->isa) || !tables[t]->exp_f32) continue;
        tested++;
        for (size_t len = 0; len < 20; len++) { /* lengths around the vector width: tails */
            memset(y, 0, 20 * sizeof(float));
            tables[t]->exp_f32(y, edge, len < NE ? len : NE);
            for (size_t i = 0; i < (len < NE ? len : NE); i++)
                cr_assert_leq(exp_ulp_error(edge[i], y[i]), MOLMO_EXP_MAX_ULP,
                              "%s: len %zu, e^%a gave %a", tables[t]->name, len, edge[i], y[i]);
        }
        tables[t]->exp_f32(y, x, n);
        double worst = 0.0;
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            double u = exp_ulp_error(x[i], y[i]);
            if (!(u <= worst)) worst = u, at = i;
        }
        cr_expect_leq(worst, MOLMO_EXP_MAX_ULP, "%s: e^%a = %a (exact %a): %.3f ulp",
                      tables[t]->name, x[at], y[at], exp((double)x[at]), worst);
        cr_expect(isinf(y[2]) && y[2] > 0 && y[3] == 0.0f && isnan(y[4]) && y[0] == 1.0f,
                  "%s: e^inf, e^-inf, e^nan, e^0", tables[t]->name);
    }
    /* the scalar table is libm: within a half ulp plus double rounding */
    molmo_kernels_scalar.exp_f32(y, x, n);
    for (size_t i = 0; i < n; i++) cr_assert_leq(exp_ulp_error(x[i], y[i]), 1.0, "expf(%a)", x[i]);
    if (!tested) cr_log_warn("no vector kernel runs on this CPU: only the scalar exp tested");
    free(x);
    free(y);
}

/* softmax, quick-GELU and silu(g)*u: vector against scalar. Each vector result differs from
 * the scalar one by the two exps' errors (<= MOLMO_EXP_MAX_ULP + 1/2 each way), passed through
 * 1 / (1 + e) (factor e / (1 + e) <= 1) or the normalization, plus <= 3 roundings on each side
 * (division, products): 2 * (2.5 + 3) < 12 ulp of the result; tiny absolute slack for results
 * that underflow. */
Test(kernels, vector_softmax_gelu_and_silu_match_the_scalar_reference) {
    const struct molmo_kernels *tables[] = {&molmo_kernels_avx2, &molmo_kernels_avx512};
    const struct molmo_kernels *s = &molmo_kernels_scalar;
    enum { N = 1031 };
    float a[N], b[N], g[N], u[N], ha[N], hb[N];
    double tol = 12 * 0x1p-24;
    for (size_t t = 0; t < 2; t++) {
        const struct molmo_kernels *k = tables[t];
        if (!cpu_runs(k->isa) || !k->softmax) continue;
        for (int n = 1; n <= N; n += (n < 40 ? 1 : 331)) {
            for (int i = 0; i < n; i++) {
                a[i] = b[i] = urand() * 30.0f;
                g[i] = urand() * 40.0f, u[i] = urand() * 3.0f;
            }
            if (n > 3) a[n / 2] = b[n / 2] = -INFINITY; /* a masked score */
            s->softmax(a, n);
            k->softmax(b, n);
            for (int i = 0; i < n; i++)
                cr_assert(fabs((double)a[i] - b[i]) <= tol * fabs(a[i]) + 0x1p-140,
                          "%s softmax n=%d [%d]: %a vs %a", k->name, n, i, a[i], b[i]);
            memcpy(ha, g, sizeof(float) * (size_t)n);
            memcpy(hb, g, sizeof(float) * (size_t)n);
            s->quick_gelu(ha, (size_t)n);
            k->quick_gelu(hb, (size_t)n);
            for (int i = 0; i < n; i++)
                cr_assert(fabs((double)ha[i] - hb[i]) <= tol * fabs(ha[i]) + 0x1p-140,
                          "%s quick_gelu(%a): %a vs %a", k->name, g[i], ha[i], hb[i]);
            s->silu_mul(ha, g, u, (size_t)n);
            k->silu_mul(hb, g, u, (size_t)n);
            for (int i = 0; i < n; i++)
                cr_assert(fabs((double)ha[i] - hb[i]) <= tol * fabs(ha[i]) + 0x1p-140,
                          "%s silu(%a)*%a: %a vs %a", k->name, g[i], u[i], ha[i], hb[i]);
        }
    }
    /* hand values: softmax of (0, ln 3) = (1/4, 3/4); quick_gelu(0) = 0; silu(0) * u = 0 */
    float p[2] = {0.0f, logf(3.0f)}, z = 0.0f, h;
    s->softmax(p, 2);
    cr_expect(fabsf(p[0] - 0.25f) < 1e-6f && fabsf(p[1] - 0.75f) < 1e-6f);
    s->quick_gelu(&z, 1);
    s->silu_mul(&h, &z, &p[1], 1);
    cr_expect(z == 0.0f && h == 0.0f);
}

Test(kernels, dispatch_picks_a_kernel_the_cpu_runs) {
    struct molmo_cpu cpu = molmo_cpu_detect();
    cr_assert(cpu_runs(cpu.best), "best = %s", molmo_isa_name(cpu.best));
    for (int isa = (int)cpu.best + 1; isa <= MOLMO_ISA_AVX512; isa++)
        cr_assert(!cpu_runs((enum molmo_isa)isa), "%s runs but was not detected",
                  molmo_isa_name((enum molmo_isa)isa));
    for (int want = MOLMO_ISA_SCALAR; want <= MOLMO_ISA_BEST; want++) {
        struct molmo_kernels k;
        enum molmo_isa got = molmo_kernels_init(&k, cpu, (enum molmo_isa)want);
        cr_assert(got <= cpu.best && cpu_runs(got));
        cr_assert(want > (int)cpu.best || got == (enum molmo_isa)want);
        cr_assert(k.matvec_f32 && k.matvec_bf16 && k.matvec_q8_0 && k.matvec_q8_0_f32 &&
                  k.quantize_q8_x);
        cr_assert_str_eq(k.name, molmo_isa_name(got));
    }
    /* A CPU without AVX2 gets the scalar kernels even when AVX-512 is asked for. */
    struct molmo_cpu none = {0};
    struct molmo_kernels k;
    cr_assert_eq(molmo_kernels_init(&k, none, MOLMO_ISA_AVX512), MOLMO_ISA_SCALAR);
    cr_assert_eq(k.matvec_bf16, molmo_kernels_scalar.matvec_bf16);
}

/* ---- thread pool ------------------------------------------------------------------------- */

struct cover {
    atomic_int *hits;
    atomic_int calls[8];
    size_t grain;
    atomic_int bad;
};

static void cover_fn(void *ctx, size_t begin, size_t end, int thread) {
    struct cover *c = ctx;
    if (begin % c->grain || begin >= end || thread < 0 || thread >= 8) atomic_store(&c->bad, 1);
    atomic_fetch_add(&c->calls[thread & 7], 1);
    for (size_t i = begin; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
}

Test(pool, parallel_for_covers_every_row_exactly_once) {
    static const size_t ns[] = {0, 1, 2, 3, 7, 64, 1001, 18944};
    static const size_t grains[] = {1, 4, 7};
    static const int threads[] = {1, 2, 3, 5};
    atomic_int *hits = calloc(18944, sizeof *hits);
    for (size_t t = 0; t < 4; t++) {
        struct jb_pool *p;
        cr_assert_eq(jb_pool_open(&p, threads[t], 1, NULL), 0);
        cr_assert_eq(jb_pool_n_threads(p), threads[t]);
        for (int rep = 0; rep < 50; rep++) {
            for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
                for (size_t g = 0; g < 3; g++) {
                    struct cover c = {.hits = hits, .grain = grains[g]};
                    for (size_t i = 0; i < ns[a]; i++) atomic_store(&hits[i], 0);
                    jb_pool_for(p, ns[a], grains[g], cover_fn, &c);
                    cr_assert(!atomic_load(&c.bad));
                    for (size_t i = 0; i < ns[a]; i++)
                        cr_assert_eq(atomic_load(&hits[i]), 1, "n %zu grain %zu threads %d: "
                                     "index %zu hit %d times", ns[a], grains[g], threads[t], i,
                                     atomic_load(&hits[i]));
                    for (int th = 0; th < 8; th++) cr_assert_leq(atomic_load(&c.calls[th]), 1);
                }
            }
        }
        jb_pool_close(p);
    }
    free(hits);
    jb_pool_close(NULL);
}

Test(pool, split_gives_ranges_within_one_grain_of_each_other) {
    /* 10 units of 4 over 3 threads: 4 + 3 + 3 units -> [0,16) [16,28) [28,38) for n = 38. */
    size_t b, e;
    jb_pool_split(38, 4, 3, 0, &b, &e);
    cr_assert(b == 0 && e == 16);
    jb_pool_split(38, 4, 3, 1, &b, &e);
    cr_assert(b == 16 && e == 28);
    jb_pool_split(38, 4, 3, 2, &b, &e);
    cr_assert(b == 28 && e == 38);
    jb_pool_split(2, 4, 3, 2, &b, &e); /* more threads than units: empty */
    cr_assert_eq(b, e);
}

Test(pool, matvec_on_the_pool_equals_one_thread_bit_for_bit) {
    /* Splitting rows does not change any row's arithmetic. */
    enum { R = 203, C = 96 };
    float *w = malloc((size_t)R * C * 4), x[C], y1[R], y2[R];
    for (int i = 0; i < R * C; i++) w[i] = urand();
    for (int i = 0; i < C; i++) x[i] = urand();
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), MOLMO_ISA_BEST);
    struct jb_pool *p;
    cr_assert_eq(jb_pool_open(&p, 3, 0, NULL), 0);
    molmo_matvec(NULL, &k, MOLMO_WEIGHT_F32, y1, w, x, NULL, R, C);
    molmo_matvec(p, &k, MOLMO_WEIGHT_F32, y2, w, x, NULL, R, C);
    cr_assert_arr_eq(y1, y2, sizeof y1);
    jb_pool_close(p);
    free(w);
}

/* ---- joulebench bench --machine ---------------------------------------------------------- */

Test(cli, bench_machine_prints_the_probes_and_writes_json) {
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' bench --machine --threads 2 --reps 1 --bw-mib 64 --json '%s/m.json'",
                jb_test_bin(), dir);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.out, "read bandwidth (64 MiB)"), "%s", p.out);
    cr_assert(strstr(p.out, "f32 FMA peak"), "%s", p.out);
    cr_assert(strstr(p.out, "bf16 dot peak"), "%s", p.out);
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), MOLMO_ISA_BEST);
    cr_assert(strstr(p.out, k.name), "the kernel that runs is named: %s", p.out);
    char path[4096], *json = NULL;
    snprintf(path, sizeof path, "%s/m.json", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    size_t cap = 1 << 16;
    json = calloc(1, cap);
    cr_assert_gt(fread(json, 1, cap - 1, f), 0);
    fclose(f);
    cr_assert(strstr(json, "\"read_bytes_per_s\""));
    cr_assert(strstr(json, "\"f32_peak_flop_per_s\""));
    cr_assert(strstr(json, "\"bf16_peak_flop_per_s\""));
    free(json);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}

Test(cli, bench_without_a_section_is_a_usage_error) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' bench", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "--machine"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' bench --help", jb_test_bin());
    cr_assert_eq(p.status, 0);
    cr_assert(strstr(p.out, "usage: joulebench bench"));
    jb_test_proc_free(&p);
}

/* ---- joulebench bench --model ------------------------------------------------------------ */

/* The tiny checkpoint (molmo.h init-model: d 64, 4 heads, 2 KV heads of 16, fused FFN 256,
 * 2 layers, 264 embedding rows) reads per decode step, in float32:
 *   att_proj 128x64 + attn_out 64x64 + ff_proj 256x64 + ff_out 64x128 = 36864 per layer,
 *   x 2 layers + lm_head 264x64 = 90624 values = 362496 bytes. */
Test(cli, bench_model_reports_speed_memory_and_fractions_of_the_limits) {
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' init-model --size tiny --out '%s/m' && '%s' bench --model '%s/m' "
                "--threads 2 --reps 2 --prompt-tokens 16 --gen-tokens 4 --bw-mib 64 "
                "--json '%s/b.json'", jb_test_bin(), dir, jb_test_bin(), dir, dir);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_expect(strstr(p.out, "prefill pp16"), "%s", p.out);
    cr_expect(strstr(p.out, "decode tg4"), "%s", p.out);
    char path[4096];
    snprintf(path, sizeof path, "%s/b.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert(j, "%s", je.text);
    static const char *const pos[] = {"decode_tokens_per_s", "prefill_tokens_per_s",
                                      "vit_ms_per_crop", "peak_rss_bytes",
                                      "decode_bandwidth_frac", "prefill_peak_frac"};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        json_t *v = json_object_get(j, pos[i]);
        cr_expect(json_is_number(v) && json_number_value(v) > 0, "%s missing or not > 0", pos[i]);
    }
    cr_expect_eq(json_number_value(json_object_get(j, "decode_bytes_per_token")), 362496.0);
    cr_expect_eq(json_integer_value(json_object_get(j, "prompt_tokens")), 16);
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), MOLMO_ISA_BEST);
    const char *kn = json_string_value(json_object_get(j, "kernel"));
    cr_expect(kn && strcmp(kn, k.name) == 0, "kernel %s, want %s", kn ? kn : "(none)", k.name);
    /* resident memory holds at least the mapped weights the passes read */
    cr_expect_geq(json_number_value(json_object_get(j, "peak_rss_bytes")),
                  json_number_value(json_object_get(j, "weight_bytes")) * 0.5);
    json_decref(j);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}
