/* Machine probes for `joulebench bench --machine`: what this machine can do at best (streaming
 * read bandwidth, peak FMA / bf16-dot FLOP/s), and what the decode kernels and OpenBLAS reach,
 * so that the engine's speed can be reported as a fraction of limits measured in the same run. */
#include "config.h"

#include "engine/kernels-impl.h"

#include "common/jb-err.h"
#include "common/jb-pool.h"
#include "common/jb-time.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* ---- streaming read ------------------------------------------------------------------------ */

struct read_job {
    unsigned char *buf;
    int use_avx2;
    int touch;           /* first pass: write the pages from the thread that will read them */
    uint64_t sink[1024]; /* one per thread, so the reads are not optimized away */
};

/* The buffer in 256-byte units: [begin, end) units. */
static void read_share(void *ctx, size_t begin, size_t end, int thread) {
    struct read_job *j = ctx;
    unsigned char *p = j->buf + begin * 256;
    size_t n = (end - begin) * 256;
    if (j->touch) {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = (uint64_t)(i * 0x9e3779b97f4a7c15ull);
            memcpy(p + i, &v, 8);
        }
        return;
    }
    if (j->use_avx2) {
        j->sink[thread] ^= molmo_probe_read_avx2(p, n);
    } else {
        uint64_t a = 0, b = 0, v, w;
        for (size_t i = 0; i < n; i += 16) {
            memcpy(&v, p + i, 8);
            memcpy(&w, p + i + 8, 8);
            a ^= v, b ^= w;
        }
        j->sink[thread] ^= a ^ b;
    }
}

int molmo_probe_read_bw(struct jb_pool *pool, size_t bytes, int reps, double *bytes_per_s,
                        struct jb_err *err) {
    bytes &= ~(size_t)255;
    if (bytes == 0 || reps < 1 || jb_pool_n_threads(pool) > 1024)
        return jb_err_set(err, JB_EINVAL, "read-bandwidth probe: bad size or reps");
    struct read_job *j = calloc(1, sizeof *j);
    unsigned char *buf = aligned_alloc(64, bytes);
    if (!j || !buf) {
        free(j);
        free(buf);
        return jb_err_set(err, JB_ENOMEM, "read-bandwidth probe: cannot allocate %zu MiB",
                          bytes >> 20);
    }
    j->buf = buf;
    j->use_avx2 = molmo_cpu_detect().best >= MOLMO_ISA_AVX2;
    j->touch = 1;
    jb_pool_for(pool, bytes / 256, 1, read_share, j);
    j->touch = 0;
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = jb_time_now_s();
        jb_pool_for(pool, bytes / 256, 1, read_share, j);
        double t = jb_time_now_s() - t0;
        if (t > 0 && (double)bytes / t > best) best = (double)bytes / t;
    }
    *bytes_per_s = best;
    free(buf);
    free(j);
    return 0;
}

/* ---- peak arithmetic ----------------------------------------------------------------------- */

enum peak_kind { PEAK_FMA_AVX2, PEAK_FMA_AVX512, PEAK_DPBF16_AVX512 };

struct peak_job {
    enum peak_kind kind;
    long iters;
    float sink[1024];
};

static float peak_loop(enum peak_kind kind, long iters) {
    switch (kind) {
    case PEAK_FMA_AVX2: return molmo_probe_fma_avx2(iters);
    case PEAK_FMA_AVX512: return molmo_probe_fma_avx512(iters);
    case PEAK_DPBF16_AVX512: return molmo_probe_dpbf16_avx512(iters);
    }
    return 0.0f;
}

static void peak_share(void *ctx, size_t begin, size_t end, int thread) {
    struct peak_job *j = ctx;
    (void)begin, (void)end;
    j->sink[thread] += peak_loop(j->kind, j->iters);
}

static int peak(struct jb_pool *pool, enum peak_kind kind, double flop_per_iter,
                double seconds_per_rep, int reps, double *flop_per_s) {
    /* Calibrate on this thread: grow iters until one run takes 20 ms, then scale. */
    long iters = 1000;
    double t = 0.0;
    for (;;) {
        double t0 = jb_time_now_s();
        volatile float s = peak_loop(kind, iters);
        (void)s;
        t = jb_time_now_s() - t0;
        if (t >= 0.02 || iters > (1L << 40)) break;
        iters *= 4;
    }
    struct peak_job j = {.kind = kind};
    j.iters = (long)((double)iters * seconds_per_rep / t) + 1;
    int n = jb_pool_n_threads(pool);
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = jb_time_now_s();
        jb_pool_for(pool, (size_t)n, 1, peak_share, &j);
        double dt = jb_time_now_s() - t0;
        double f = flop_per_iter * (double)j.iters * n / dt;
        if (dt > 0 && f > best) best = f;
    }
    *flop_per_s = best;
    return 0;
}

int molmo_probe_f32_peak(struct jb_pool *pool, enum molmo_isa isa, double seconds_per_rep,
                         int reps, double *flop_per_s, struct jb_err *err) {
    struct molmo_cpu cpu = molmo_cpu_detect();
    if (jb_pool_n_threads(pool) > 1024 || reps < 1)
        return jb_err_set(err, JB_EINVAL, "peak probe: bad thread count or reps");
    if (isa == MOLMO_ISA_AVX512 && cpu.avx512f)
        return peak(pool, PEAK_FMA_AVX512, MOLMO_PROBE_FMA_AVX512_FLOP, seconds_per_rep, reps,
                    flop_per_s);
    if (isa == MOLMO_ISA_AVX2 && cpu.best >= MOLMO_ISA_AVX2)
        return peak(pool, PEAK_FMA_AVX2, MOLMO_PROBE_FMA_AVX2_FLOP, seconds_per_rep, reps,
                    flop_per_s);
    return jb_err_set(err, JB_EUNSUPPORTED, "this CPU has no %s FMA", molmo_isa_name(isa));
}

int molmo_probe_bf16_peak(struct jb_pool *pool, double seconds_per_rep, int reps,
                          double *flop_per_s, struct jb_err *err) {
    if (jb_pool_n_threads(pool) > 1024 || reps < 1)
        return jb_err_set(err, JB_EINVAL, "peak probe: bad thread count or reps");
    if (!molmo_cpu_detect().avx512bf16)
        return jb_err_set(err, JB_EUNSUPPORTED, "this CPU has no AVX512-BF16 (vdpbf16ps)");
    return peak(pool, PEAK_DPBF16_AVX512, MOLMO_PROBE_DPBF16_AVX512_FLOP, seconds_per_rep, reps,
                flop_per_s);
}

/* ---- OpenBLAS and the decode kernels ------------------------------------------------------- */

/* xorshift64*: reproducible filler, quality irrelevant. */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}
static float rng_f32(uint64_t *s) { /* uniform in [-1, 1) */
    return (float)(rng_next(s) >> 40) * 0x1p-23f - 1.0f;
}

int molmo_probe_sgemm(int m, int n, int k, int from_bf16, int threads, int reps,
                      double *flop_per_s, struct jb_err *err) {
    if (m < 1 || n < 1 || k < 1 || threads < 1 || reps < 1)
        return jb_err_set(err, JB_EINVAL, "sgemm probe: bad shape %dx%dx%d", m, n, k);
    size_t nk = (size_t)n * k;
    float *a = malloc((size_t)m * k * sizeof *a), *b = malloc(nk * sizeof *b);
    float *c = malloc((size_t)m * n * sizeof *c);
    uint16_t *b16 = from_bf16 ? malloc(nk * sizeof *b16) : NULL;
    int rc = 0;
    if (!a || !b || !c || (from_bf16 && !b16)) {
        rc = jb_err_set(err, JB_ENOMEM, "sgemm probe: out of memory");
        goto out;
    }
    uint64_t s = 42;
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = rng_f32(&s);
    for (size_t i = 0; i < nk; i++) b[i] = rng_f32(&s);
    for (size_t i = 0; b16 && i < nk; i++) b16[i] = (uint16_t)(0x3f00u | (rng_next(&s) & 0x80ffu));
    openblas_set_num_threads(threads);
    double best = 0.0;
    for (int r = 0; r <= reps; r++) { /* r = 0 warms up OpenBLAS's threads and buffers */
        double t0 = jb_time_now_s();
        for (size_t i = 0; b16 && i < nk; i++) {
            uint32_t bits = (uint32_t)b16[i] << 16;
            memcpy(&b[i], &bits, sizeof bits);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c,
                    n);
        double t = jb_time_now_s() - t0;
        double f = 2.0 * m * n * (double)k / t;
        if (r > 0 && t > 0 && f > best) best = f;
    }
    *flop_per_s = best;
out:
    free(a);
    free(b);
    free(c);
    free(b16);
    return rc;
}

int molmo_probe_matvec(struct jb_pool *pool, const struct molmo_kernels *k,
                       enum molmo_weight_type type, int n_out, int n_in, int reps,
                       double *bytes_per_s, struct jb_err *err) {
    int q8 = type == MOLMO_WEIGHT_Q8_0 || type == MOLMO_WEIGHT_Q8_0_F32 ||
             type == MOLMO_WEIGHT_Q8_0_X16;
    if (n_out < 1 || n_in < 1 || reps < 1 || (q8 && n_in % MOLMO_Q8_0_BLOCK))
        return jb_err_set(err, JB_EINVAL, "matvec probe: bad shape %dx%d", n_out, n_in);
    size_t n = (size_t)n_out * n_in;
    size_t q8_bytes = n / MOLMO_Q8_0_BLOCK * sizeof(struct molmo_q8_0_block);
    size_t wbytes = type == MOLMO_WEIGHT_F32 ? n * 4 : type == MOLMO_WEIGHT_BF16 ? n * 2 : q8_bytes;
    /* Enough copies that every call reads from memory, as decode does (the weights of all
     * layers are far larger than the last-level cache): at least 512 MiB in all. */
    size_t copies = ((size_t)512 << 20) / wbytes + 1;
    unsigned char *w = malloc(copies * wbytes);
    float *x = malloc((size_t)n_in * sizeof *x), *y = malloc((size_t)n_out * sizeof *y);
    struct molmo_q8_x xq = {malloc((size_t)n_in / MOLMO_Q8_0_BLOCK * sizeof(float)),
                            malloc((size_t)n_in), n_in};
    struct molmo_q16_x xq16 = {malloc((size_t)n_in / MOLMO_Q8_0_BLOCK * sizeof(float)),
                               malloc((size_t)n_in * sizeof(int16_t)), n_in};
    int rc = 0;
    if (!w || !x || !y || !xq.d || !xq.q || !xq16.d || !xq16.q) {
        rc = jb_err_set(err, JB_ENOMEM, "matvec probe: cannot allocate %zu MiB", wbytes >> 20);
        goto out;
    }
    uint64_t s = 7;
    for (int i = 0; i < n_in; i++) x[i] = rng_f32(&s);
    if (type == MOLMO_WEIGHT_F32) {
        float *wf = (float *)w;
        for (size_t i = 0; i < n; i++) wf[i] = rng_f32(&s);
    } else if (type == MOLMO_WEIGHT_BF16) {
        uint16_t *wb = (uint16_t *)w; /* random sign and mantissa bits, magnitude in [0.5, 1) */
        for (size_t i = 0; i < n; i++) wb[i] = (uint16_t)(0x3f00u | (rng_next(&s) & 0x80ffu));
    } else {
        struct molmo_q8_0_block *wq = (struct molmo_q8_0_block *)w;
        uint16_t d = molmo_f32_to_f16(1.0f / 127.0f);
        for (size_t b = 0; b < n / MOLMO_Q8_0_BLOCK; b++) {
            wq[b].d = d;
            for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++)
                wq[b].q[i] = (int8_t)((int)(rng_next(&s) % 255) - 127);
        }
    }
    for (size_t c = 1; c < copies; c++) memcpy(w + c * wbytes, w, wbytes);
    double best = 0.0;
    for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
        const unsigned char *wc = w + (size_t)r % copies * wbytes;
        double t0 = jb_time_now_s();
        const void *xqp = NULL; /* quantizing x is part of each call */
        if (type == MOLMO_WEIGHT_Q8_0) k->quantize_q8_x(&xq, x), xqp = &xq;
        if (type == MOLMO_WEIGHT_Q8_0_X16) k->quantize_q16_x(&xq16, x), xqp = &xq16;
        molmo_matvec(pool, k, type, y, wc, x, xqp, n_out, n_in);
        double t = jb_time_now_s() - t0;
        if (r > 0 && t > 0 && (double)wbytes / t > best) best = (double)wbytes / t;
    }
    *bytes_per_s = best;
out:
    free(w);
    free(x);
    free(y);
    free(xq.d);
    free(xq.q);
    free(xq16.d);
    free(xq16.q);
    return rc;
}
