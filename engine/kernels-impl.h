/* kernels-impl.h: the engine's decode matrix-vector kernels (F32, BF16 and q8_0 weights), the
 * q8_0 format, CPU feature detection with run-time kernel choice, and the machine probes that
 * `joulebench bench --machine` reports. Internal to engine/ (tests and the bench command read it).
 *
 *     struct molmo_kernels k;
 *     molmo_kernels_init(&k, molmo_cpu_detect(), MOLMO_ISA_BEST);  // best the CPU can run
 *     fprintf(stderr, "kernel: %s\n", k.name);                      // "avx2+fma"
 *     k.matvec_bf16(y, w, x, n_in, row0, row1);                     // y[r] = W[r,:] . x
 *     molmo_matvec(pool, &k, MOLMO_WEIGHT_BF16, y, w, x, &xq, n_out, n_in);  // rows on the pool
 *
 * Every kernel has a scalar reference (simd-scalar.c) with the same signature; the vector
 * kernels are in simd-avx2.c and simd-avx512.c, each function compiled with its own
 * __attribute__((target(...))) so the binary runs on any x86-64 and on other architectures.
 */
#ifndef MOLMO_KERNELS_IMPL_H
#define MOLMO_KERNELS_IMPL_H

#include "engine/molmo.h"

#include <stddef.h>
#include <stdint.h>

struct jb_err;
struct jb_pool;

/* ------------------------------------------------------------------------------------------- */
/* Formats                                                                                     */

/* q8_0 weights (the llama.cpp Q8_0 block, byte for byte): a row of n_in values (n_in a multiple
 * of 32) is n_in/32 consecutive 34-byte blocks, each `d` = the scale as IEEE binary16 (little
 * endian) and 32 int8 `q` in [-127, 127]; value i of the block is d * q[i]. No padding, so
 * blocks are only 2-byte aligned. Quantizing a block x[0..31] with m = max|x[i]|:
 *   d = the smallest binary16 >= m / 127 (rounded up, so |x[i] / d| <= 127 and nothing clips),
 *   q[i] = round-to-nearest-even(x[i] / d)    (d = 0 -> all q = 0)
 * hence per element |x[i] - d * q[i]| <= d / 2, with d / 2 <= (m / 254) * (1 + 2^-10) when
 * m >= 127 * 2^-14 (d a normal binary16) and d / 2 <= m / 254 + 2^-25 below that. d * q[i] is
 * exact in float32 (11 + 8 significant bits). m must be finite and <= 127 * 65504. */
#define MOLMO_Q8_0_BLOCK 32
struct molmo_q8_0_block {
    uint16_t d;
    int8_t q[MOLMO_Q8_0_BLOCK];
};
_Static_assert(sizeof(struct molmo_q8_0_block) == 34, "q8_0 block is 34 bytes");

/* The activation side of the integer q8_0 kernel: x quantized per 32-block like the weights but
 * with a float32 scale (it lives one call, and a float scale costs nothing to decode). Quantized
 * by molmo_q8_x_quantize with the same rule (d = m / 127 in float32, q = rint(x / d)), so its
 * error is <= d / 2 per element too. The product W.x then costs one int8 dot per block; the
 * f32-dequant kernel (matvec_q8_0_f32) keeps x in float32 instead and is exact up to the
 * float32 sums. */
struct molmo_q8_x {
    float *d;      /* n_in / 32 scales */
    int8_t *q;     /* n_in values */
    int n_in;
};

/* The activation side of the int16-x q8_0 kernel (the default for q8_0 decode): x quantized per
 * 32-block to int16 with a float32 scale by molmo_q16_x_quantize:
 *   m = max|x[i]| (float32), d = m / 32767 (float32 division), q[i] = rint(x[i] / d) clamped
 *   to [-32767, 32767] (d = 0 -> all q = 0).
 * |x[i] / d| <= 32767 * (1 + 2^-24)^2 < 32767.5, so rounding never passes 32767 (the clamp is
 * for safety only); per element |x[i] - d * q[i]| <= d / 2 + |x[i]| * 2^-24 (the division's
 * rounding) <= m * (1 / 65534 + 2^-23): about 2^-16 of the block's max, 258 times finer than
 * int8 x.
 * The product per block is an exact int32 sum (|sum| <= 32 * 127 * 32767 < 2^27) times dw * dx,
 * so the error against the f32-x kernel is that of x's rounding, well below float32 sum noise
 * at the sizes of the LLM (measured in tests/test-engine-q8.c). */
struct molmo_q16_x {
    float *d;      /* n_in / 32 scales */
    int16_t *q;    /* n_in values */
    int n_in;
};

/* Rounds float32 to binary16 bits, to nearest even (overflow -> inf, NaN -> quiet NaN), and the
 * exact way back. */
uint16_t molmo_f32_to_f16(float x);
float molmo_f16_to_f32(uint16_t h);

/* Quantizes one row x[0..n_in) into n_in/32 q8_0 blocks as defined above. Errors (JB_EINVAL):
 * n_in not a multiple of 32; a non-finite value or a block whose scale overflows binary16. */
int molmo_q8_0_quantize_row(struct molmo_q8_0_block *out, const float *x, int n_in,
                            struct jb_err *err);
/* out[0..n_in) = d * q for each block (exact). */
void molmo_q8_0_dequantize_row(float *out, const struct molmo_q8_0_block *b, int n_in);

/* Quantizes activations x[0..xq->n_in) into xq (whose arrays the caller owns). x must be finite;
 * n_in a multiple of 32. */
void molmo_q8_x_quantize(struct molmo_q8_x *xq, const float *x);
/* Same for the int16 side (struct molmo_q16_x above). */
void molmo_q16_x_quantize(struct molmo_q16_x *xq, const float *x);

/* ------------------------------------------------------------------------------------------- */
/* Kernels                                                                                     */

/* All matvec kernels: for r in [row0, row1): y[r] = sum_i W[r, i] * x[i], W row-major with n_in
 * columns (rows contiguous, row r at W + r * n_in elements, or r * n_in / 32 q8_0 blocks). Only
 * y[row0..row1) is written, so threads may split rows. Sums are float32 in an order that depends
 * on the kernel (vector lanes, unrolling): results differ from the scalar reference by float32
 * rounding only (the tests bound it). */
typedef void (*molmo_matvec_f32_fn)(float *restrict y, const float *restrict w,
                                    const float *restrict x, int n_in, int row0, int row1);
typedef void (*molmo_matvec_bf16_fn)(float *restrict y, const uint16_t *restrict w,
                                     const float *restrict x, int n_in, int row0, int row1);
/* q8_0 weights, float32 x (each weight widened to float32; n_in a multiple of 32). */
typedef void (*molmo_matvec_q8_0_f32_fn)(float *restrict y,
                                         const struct molmo_q8_0_block *restrict w,
                                         const float *restrict x, int n_in, int row0, int row1);
/* q8_0 weights, q8 x: integer dot per block, y[r] = sum_b dw_b * dx_b * sum_i qw_i * qx_i. */
typedef void (*molmo_matvec_q8_0_fn)(float *restrict y, const struct molmo_q8_0_block *restrict w,
                                     const struct molmo_q8_x *restrict xq, int row0, int row1);
/* q8_0 weights, int16 x: y[r] = sum_b (dw_b * dx_b) * (exact int32 sum_i qw_i * qx_i). */
typedef void (*molmo_matvec_q8_0_x16_fn)(float *restrict y,
                                         const struct molmo_q8_0_block *restrict w,
                                         const struct molmo_q16_x *restrict xq, int row0,
                                         int row1);


/* The kernels of one instruction set. A plain struct the caller owns (no global state). */
struct molmo_kernels {
    enum molmo_isa isa;
    const char *name;
    molmo_matvec_f32_fn matvec_f32;
    molmo_matvec_bf16_fn matvec_bf16;
    molmo_matvec_q8_0_f32_fn matvec_q8_0_f32;
    molmo_matvec_q8_0_fn matvec_q8_0;
    /* molmo_q8_x_quantize, vectorized: bit-identical results (same division and rounding). */
    void (*quantize_q8_x)(struct molmo_q8_x *xq, const float *x);
    molmo_matvec_q8_0_x16_fn matvec_q8_0_x16;
    /* molmo_q16_x_quantize, vectorized: bit-identical results. */
    void (*quantize_q16_x)(struct molmo_q16_x *xq, const float *x);
    /* Element-wise float32 functions of the forward pass. The scalar ones call libm's expf; the
     * vector ones a polynomial exp within MOLMO_EXP_MAX_ULP of expf over the whole float range
     * (overflow to +inf above ~88.72, subnormal results down to ~-103.97 then +0, NaN -> NaN).
     * exp_f32: y[i] = e^x[i] (y may equal x). */
    void (*exp_f32)(float *y, const float *x, size_t n);
    /* In place: x[i] = e^(x[i] - max) / sum, the sum in double (as molmo_softmax). */
    void (*softmax)(float *x, int n);
    /* In place quick-GELU (CLIP): x[i] = x[i] * (1 / (1 + e^(-1.702 x[i]))). */
    void (*quick_gelu)(float *x, size_t n);
    /* h[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i] (h may equal g or u). */
    void (*silu_mul)(float *h, const float *g, const float *u, size_t n);
};

/* The vector exp's error bound against expf, in units in the last place of the float32 result
 * (for subnormal results: of the smallest subnormal), checked by tests/test-engine-kernels.c. */
#define MOLMO_EXP_MAX_ULP 2

/* Fills k with the kernels of want, or of cpu.best if want is MOLMO_ISA_BEST or above what the
 * CPU supports (never a kernel the CPU cannot run). Returns the isa chosen. */
enum molmo_isa molmo_kernels_init(struct molmo_kernels *k, struct molmo_cpu cpu,
                                  enum molmo_isa want);

/* The per-ISA tables (simd-scalar.c, simd-avx2.c, simd-avx512.c). The vector ones may only be
 * called where molmo_cpu_detect says so; an entry may be NULL (molmo_kernels_init then takes the
 * next lower ISA's kernel; the scalar table is complete). */
extern const struct molmo_kernels molmo_kernels_scalar;
extern const struct molmo_kernels molmo_kernels_avx2;
extern const struct molmo_kernels molmo_kernels_avx512;


/* y[0..n_out) = W (n_out, n_in) . x (n_in), rows split over the pool in steps of 4 rows.
 * x is used by every type except MOLMO_WEIGHT_Q8_0 and MOLMO_WEIGHT_Q8_0_X16, which read xq:
 * a struct molmo_q8_x (quantize x first with k->quantize_q8_x), resp. a struct molmo_q16_x
 * (k->quantize_q16_x). No allocation. */
void molmo_matvec(struct jb_pool *pool, const struct molmo_kernels *k,
                  enum molmo_weight_type type, float *y, const void *w, const float *x,
                  const void *xq, int n_out, int n_in);

/* ------------------------------------------------------------------------------------------- */
/* Machine probes (probe.c), for `joulebench bench --machine`                             */

/* Per-thread probe loops, in simd-avx2.c / simd-avx512.c: iterations of n_chains FMA vectors;
 * return a value that depends on every result so nothing is optimized away. */
float molmo_probe_fma_avx2(long iters);
float molmo_probe_fma_avx512(long iters);
float molmo_probe_dpbf16_avx512(long iters);
/* FLOP done by one iteration of each loop above. */
#define MOLMO_PROBE_FMA_AVX2_FLOP (12 * 8 * 2)
#define MOLMO_PROBE_FMA_AVX512_FLOP (12 * 16 * 2)
#define MOLMO_PROBE_DPBF16_AVX512_FLOP (12 * 16 * 4)
/* Sums n bytes at p (n a multiple of 256, p 64-byte aligned) with AVX2 loads, as eight
 * streams (the eighths of the range): one sequential stream per core reads far below what
 * the memory system gives several, and a 4-row matvec reads four or more. */
uint64_t molmo_probe_read_avx2(const void *p, size_t n);

/* Decode matvec throughput of one kernel at (n_out, n_in) on the pool: weight bytes read per
 * second, best of reps. Random weights, allocated here, in copies totalling more than 512 MiB
 * that successive calls cycle through, so that no call finds its weights in the cache (decode
 * reads every layer's weights once per token). Errors: JB_ENOMEM, JB_EINVAL. */
int molmo_probe_matvec(struct jb_pool *pool, const struct molmo_kernels *k,
                       enum molmo_weight_type type, int n_out, int n_in, int reps,
                       double *bytes_per_s, struct jb_err *err);

#endif /* MOLMO_KERNELS_IMPL_H */
