/* dispatch.c: CPU feature detection, the run-time choice of kernels (kernels-impl.h), and the
 * row-split matvec on the pool. */
#include "config.h"

#include "engine/kernels-impl.h"

#include "common/jb-pool.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

/* XCR0: which register states the OS saves (bits 1-2 SSE/AVX, 5-7 opmask and ZMM). */
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

struct molmo_cpu molmo_cpu_detect(void) {
    struct molmo_cpu c = {0};
    c.best = MOLMO_ISA_SCALAR;
#if defined(__x86_64__)
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
    int osxsave = (cx >> 27) & 1, avx = (cx >> 28) & 1;
    c.fma = (cx >> 12) & 1;
    c.f16c = (cx >> 29) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
    if (!avx || !os_avx) {
        c.fma = c.f16c = 0;
        return c;
    }
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
        c.avx2 = (b >> 5) & 1;
        if (os_avx512) {
            c.avx512f = (b >> 16) & 1;
            c.avx512bw = (b >> 30) & 1;
            c.avx512vl = (b >> 31) & 1;
            c.avx512vnni = (cx >> 11) & 1;
            unsigned max_sub = a;
            if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &cx, &d))
                c.avx512bf16 = (a >> 5) & 1;
        }
    }
    if (c.avx2 && c.fma && c.f16c) c.best = MOLMO_ISA_AVX2;
    if (c.best == MOLMO_ISA_AVX2 && c.avx512f && c.avx512bw && c.avx512vl && c.avx512bf16 &&
        c.avx512vnni)
        c.best = MOLMO_ISA_AVX512;
#endif
    return c;
}

static const char *const isa_names[] = {
    [MOLMO_ISA_SCALAR] = "scalar",
    [MOLMO_ISA_AVX2] = "avx2+fma",
    [MOLMO_ISA_AVX512] = "avx512-bf16/vnni",
    [MOLMO_ISA_BEST] = "best",
};

const char *molmo_isa_name(enum molmo_isa isa) {
    return isa <= MOLMO_ISA_BEST ? isa_names[isa] : "?";
}

int molmo_isa_parse(const char *name, enum molmo_isa *out) {
    for (int i = 0; i <= MOLMO_ISA_BEST; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (enum molmo_isa)i;
            return 0;
        }
    }
    if (strcmp(name, "avx2") == 0) return *out = MOLMO_ISA_AVX2, 0;
    if (strcmp(name, "avx512") == 0) return *out = MOLMO_ISA_AVX512, 0;
    return -1;
}

enum molmo_isa molmo_kernels_init(struct molmo_kernels *k, struct molmo_cpu cpu,
                                  enum molmo_isa want) {
    enum molmo_isa isa = want >= MOLMO_ISA_BEST || want > cpu.best ? cpu.best : want;
    static const struct molmo_kernels *const tables[] = {
        &molmo_kernels_scalar, &molmo_kernels_avx2, &molmo_kernels_avx512};
    *k = *tables[isa];
    /* Fill gaps from the lower tables; the scalar one is complete. */
    for (int i = (int)isa - 1; i >= 0; i--) {
        if (!k->matvec_f32) k->matvec_f32 = tables[i]->matvec_f32;
        if (!k->matvec_bf16) k->matvec_bf16 = tables[i]->matvec_bf16;
        if (!k->matvec_q8_0_f32) k->matvec_q8_0_f32 = tables[i]->matvec_q8_0_f32;
        if (!k->matvec_q8_0) k->matvec_q8_0 = tables[i]->matvec_q8_0;
        if (!k->quantize_q8_x) k->quantize_q8_x = tables[i]->quantize_q8_x;
        if (!k->matvec_q8_0_x16) k->matvec_q8_0_x16 = tables[i]->matvec_q8_0_x16;
        if (!k->quantize_q16_x) k->quantize_q16_x = tables[i]->quantize_q16_x;
        if (!k->exp_f32) k->exp_f32 = tables[i]->exp_f32;
        if (!k->softmax) k->softmax = tables[i]->softmax;
        if (!k->quick_gelu) k->quick_gelu = tables[i]->quick_gelu;
        if (!k->silu_mul) k->silu_mul = tables[i]->silu_mul;
    }
    return isa;
}

struct matvec_job {
    const struct molmo_kernels *k;
    enum molmo_weight_type type;
    float *y;
    const void *w;
    const float *x;
    const void *xq;
    int n_in;
};

static void matvec_rows(void *ctx, size_t begin, size_t end, int thread) {
    const struct matvec_job *j = ctx;
    (void)thread;
    int r0 = (int)begin, r1 = (int)end;
    switch (j->type) {
    case MOLMO_WEIGHT_F32: j->k->matvec_f32(j->y, j->w, j->x, j->n_in, r0, r1); break;
    case MOLMO_WEIGHT_BF16: j->k->matvec_bf16(j->y, j->w, j->x, j->n_in, r0, r1); break;
    case MOLMO_WEIGHT_Q8_0: j->k->matvec_q8_0(j->y, j->w, j->xq, r0, r1); break;
    case MOLMO_WEIGHT_Q8_0_F32: j->k->matvec_q8_0_f32(j->y, j->w, j->x, j->n_in, r0, r1); break;
    case MOLMO_WEIGHT_Q8_0_X16: j->k->matvec_q8_0_x16(j->y, j->w, j->xq, r0, r1); break;
    }
}

void molmo_matvec(struct jb_pool *pool, const struct molmo_kernels *k,
                  enum molmo_weight_type type, float *y, const void *w, const float *x,
                  const void *xq, int n_out, int n_in) {
    struct matvec_job j = {k, type, y, w, x, xq, n_in};
    jb_pool_for(pool, (size_t)n_out, 4, matvec_rows, &j);
}
