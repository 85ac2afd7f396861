/* joulebench bench: this machine's limits (--machine) and the decode kernels' and OpenBLAS's
 * speed against them (--kernels). One function per section; each prints its rows of the table
 * and adds its object to the JSON record. */
#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-pool.h"
#include "engine/molmo.h"
#include "energy/meter.h"

#include <getopt.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct bench_opts {
    int machine, kernels;
    int threads, reps;
    long bw_mib;
    enum molmo_isa isa;
    const char *json_path;
    const char *model;
    int crops, prompt_tokens, gen_tokens;
    enum molmo_q8_act q8_x; /* --q8-x int16|f32|int8 (0 = int16) */
    const char *meter; /* --meter: NULL/"auto", a backend name, or "none" */
    const char *activations; /* --activations: NULL (f32) or "bf16" */
    double tdp_w;      /* --tdp-w for the estimate; 0 = built-in table */
};

/* Limits measured by bench_machine, used by later sections for fractions (0 = not measured). */
struct machine_limits {
    double read_bytes_per_s, f32_flop_per_s, bf16_flop_per_s;
};

static void usage(void) {
    printf("usage: joulebench bench --machine [--kernels] [options]\n"
           "       joulebench bench --model DIR [--crops N] [--prompt-tokens N] [--gen-tokens N]\n"
           "                        [options]\n"
           "\n"
           "Measures this machine's limits, against which `bench` reports the engine's speed:\n"
           "streaming read bandwidth (every thread reads its share of a buffer much larger than\n"
           "the last-level cache; best of 4 x --reps), peak float32 FMA FLOP/s (independent FMA\n"
           "chains on every thread) and the peak of the bf16 dot-product instruction\n"
           "(vdpbf16ps, only where the CPU has AVX512-BF16). --kernels adds the decode\n"
           "matrix-vector kernels at Molmo-7B-D's LLM shapes (weight bytes per second and the\n"
           "fraction of the read bandwidth) and OpenBLAS sgemm at 512x3584x3584 (fraction of the\n"
           "f32 peak).\n"
           "\n"
           "  --machine        run the machine probes (--kernels and --model run them too)\n"
           "  --model DIR      the engine on a checkpoint (e.g. init-model --shape 7b-d): per\n"
           "                   rep, ViT on --crops random crops, a prefill of --prompt-tokens\n"
           "                   random ids and --gen-tokens greedy decode steps; prints ViT\n"
           "                   ms per crop, prefill and decode tokens/s (median ± half the\n"
           "                   range over --reps), peak resident memory, and each figure's\n"
           "                   fraction of the machine limits measured after it\n"
           "  --crops N        crops per rep (default 1)\n"
           "  --prompt-tokens N  prefill length (default 512)\n"
           "  --gen-tokens N   decode steps per rep (default 32)\n"
           "  --q8-x int16|f32|int8  q8_0 weights: decode with x quantized to int16 blocks\n"
           "                   (the default, as generate and run), kept float32, or\n"
           "                   quantized to int8 blocks (integer dots)\n"
           "  --kernels        also time the decode kernels and sgemm (about 1 GiB of memory)\n"
           "  --threads N      threads of the pool, the model and OpenBLAS (default: the CPUs\n"
           "                   this process may use)\n"
           "  --reps N         repetitions, best taken (default 5)\n"
           "  --bw-mib N       read-bandwidth buffer in MiB (default 512)\n"
           "  --kernel NAME    scalar, avx2+fma, avx512-bf16/vnni or best (default best; never\n"
           "                   above what the CPU supports)\n"
           "  --meter NAME     --model: the energy meter the ViT, prefill and decode phases run\n"
           "                   under: auto (default: the best available, else the labelled\n"
           "                   estimate), powercap, perf, papi, estimate, or none. Joules per\n"
           "                   crop and per token are the whole counted energy (idle included)\n"
           "                   over all reps divided by the work, and are always printed with\n"
           "                   their source: measured (backend: domains) or estimated (model)\n"
           "  --tdp-w W        the CPU's TDP for the estimate (default: built-in table)\n"
           "  --activations T  --model: f32 (default) or bf16 (products with BF16 weights\n"
           "                   round their input to bf16 first)\n"
           "  --json FILE      also write the figures as one JSON object to FILE\n"
           "  -h, --help       this text\n");
}

static void cpu_features(char *buf, size_t len, const struct molmo_cpu *c) {
    snprintf(buf, len, "avx2=%d fma=%d f16c=%d avx512f=%d avx512bw=%d avx512vl=%d avx512bf16=%d "
                       "avx512vnni=%d",
             c->avx2, c->fma, c->f16c, c->avx512f, c->avx512bw, c->avx512vl, c->avx512bf16,
             c->avx512vnni);
}

static void row(const char *probe, int threads, const char *kernel, const char *result,
                const char *frac) {
    printf("| %-36s | %7d | %-18s | %-22s | %-26s |\n", probe, threads, kernel, result, frac);
}

static int bench_machine(struct jb_pool *pool, const struct bench_opts *o,
                         struct machine_limits *lim, json_t *out, struct jb_err *err) {
    int n = jb_pool_n_threads(pool);
    struct molmo_cpu cpu = molmo_cpu_detect();
    char buf[128], what[64];
    double bw = 0.0;
    /* Passes of bandwidth and matvec take milliseconds: 4x the reps, as the best of few is
     * at the mercy of whatever else the machine runs. */
    int rc = molmo_probe_read_bw(pool, (size_t)o->bw_mib << 20, 4 * o->reps, &bw, err);
    if (rc) return rc;
    snprintf(what, sizeof what, "read bandwidth (%ld MiB)", o->bw_mib);
    snprintf(buf, sizeof buf, "%.1f GB/s", bw / 1e9);
    row(what, n, cpu.best >= MOLMO_ISA_AVX2 ? "avx2 loads" : "scalar loads", buf, "");
    lim->read_bytes_per_s = bw;
    json_object_set_new(out, "read_bytes_per_s", json_real(bw));
    json_object_set_new(out, "read_buffer_bytes", json_integer((json_int_t)o->bw_mib << 20));

    enum molmo_isa fma_isa = cpu.avx512f ? MOLMO_ISA_AVX512 : MOLMO_ISA_AVX2;
    double f32 = 0.0;
    struct jb_err e2 = {0};
    if (molmo_probe_f32_peak(pool, fma_isa, 0.2, o->reps, &f32, &e2) == 0) {
        snprintf(buf, sizeof buf, "%.1f GFLOP/s", f32 / 1e9);
        row("f32 FMA peak", n, fma_isa == MOLMO_ISA_AVX512 ? "zmm vfmadd231ps" : "ymm vfmadd231ps",
            buf, "");
        lim->f32_flop_per_s = f32;
        json_object_set_new(out, "f32_peak_flop_per_s", json_real(f32));
    } else {
        row("f32 FMA peak", n, "-", "unavailable", e2.msg);
        json_object_set_new(out, "f32_peak_flop_per_s", json_null());
    }

    double bf16 = 0.0;
    jb_err_clear(&e2);
    if (molmo_probe_bf16_peak(pool, 0.2, o->reps, &bf16, &e2) == 0) {
        snprintf(buf, sizeof buf, "%.1f GFLOP/s", bf16 / 1e9);
        row("bf16 dot peak", n, "zmm vdpbf16ps", buf, "");
        lim->bf16_flop_per_s = bf16;
        json_object_set_new(out, "bf16_peak_flop_per_s", json_real(bf16));
    } else {
        row("bf16 dot peak", n, "-", "unavailable", "no AVX512-BF16 on this CPU");
        json_object_set_new(out, "bf16_peak_flop_per_s", json_null());
    }
    cpu_features(buf, sizeof buf, &cpu);
    json_object_set_new(out, "cpu_features", json_string(buf));
    json_object_set_new(out, "best_kernel", json_string(molmo_isa_name(cpu.best)));
    json_object_set_new(out, "threads", json_integer(n));
    return 0;
}

static int bench_kernels(struct jb_pool *pool, const struct bench_opts *o,
                         struct machine_limits *lim, json_t *out, struct jb_err *err) {
    static const struct {
        const char *label, *key;
        enum molmo_weight_type type;
    } types[] = {
        {"f32", "f32", MOLMO_WEIGHT_F32},
        {"bf16", "bf16", MOLMO_WEIGHT_BF16},
        {"q8_0 (x as q8)", "q8_0", MOLMO_WEIGHT_Q8_0},
        {"q8_0 (x as f32)", "q8_0_f32", MOLMO_WEIGHT_Q8_0_F32},
        {"q8_0 (x as int16)", "q8_0_x16", MOLMO_WEIGHT_Q8_0_X16},
    };
    /* Molmo-7B-D LLM: ff_proj's up (or gate) half [18944, 3584] and ff_out [3584, 18944]. */
    static const int shapes[][2] = {{18944, 3584}, {3584, 18944}};
    int n = jb_pool_n_threads(pool);
    const char *kname = molmo_isa_name(o->isa);
    json_t *mv = json_array();
    json_object_set_new(out, "matvec", mv);
    char what[112], buf[64], frac[64];
    enum { N_SHAPES = 2, N_TYPES = sizeof types / sizeof types[0] };
    double bps_all[N_SHAPES][N_TYPES];
    for (size_t s = 0; s < N_SHAPES; s++) {
        for (size_t t = 0; t < N_TYPES; t++) {
            int rc = molmo_probe_matvec_isa(pool, o->isa, types[t].type, shapes[s][0],
                                            shapes[s][1], 4 * o->reps, &bps_all[s][t], &kname,
                                            err);
            if (rc) return rc;
        }
    }
    json_object_set_new(out, "kernel", json_string(kname));
    /* Shared machines swing by tens of percent within seconds: measure the bandwidth again
     * after the kernels and keep the higher figure, so no fraction rides on a slow moment. */
    double bw2 = 0.0;
    int rc = molmo_probe_read_bw(pool, (size_t)o->bw_mib << 20, 4 * o->reps, &bw2, err);
    if (rc) return rc;
    if (bw2 > lim->read_bytes_per_s) lim->read_bytes_per_s = bw2;
    snprintf(buf, sizeof buf, "%.1f GB/s", lim->read_bytes_per_s / 1e9);
    row("read bandwidth, max of before/after", n,
        molmo_cpu_detect().best >= MOLMO_ISA_AVX2 ? "avx2 loads" : "scalar loads", buf, "");
    json_object_set_new(out, "read_bytes_per_s_max", json_real(lim->read_bytes_per_s));
    for (size_t s = 0; s < N_SHAPES; s++) {
        for (size_t t = 0; t < N_TYPES; t++) {
            double bps = bps_all[s][t];
            snprintf(what, sizeof what, "matvec %s %dx%d", types[t].label, shapes[s][0],
                     shapes[s][1]);
            snprintf(buf, sizeof buf, "%.1f GB/s", bps / 1e9);
            frac[0] = 0;
            if (lim->read_bytes_per_s > 0)
                snprintf(frac, sizeof frac, "%.2f of read bandwidth", bps / lim->read_bytes_per_s);
            row(what, n, kname, buf, frac);
            json_array_append_new(
                mv, json_pack("{s:s, s:i, s:i, s:f, s:f}", "weights", types[t].key, "n_out",
                              shapes[s][0], "n_in", shapes[s][1], "weight_bytes_per_s", bps,
                              "bandwidth_frac",
                              lim->read_bytes_per_s > 0 ? bps / lim->read_bytes_per_s : 0.0));
        }
    }
    /* Prefill: OpenBLAS on float32 weights, and on bf16 weights widened per call. */
    for (int from_bf16 = 0; from_bf16 <= 1; from_bf16++) {
        double gemm = 0.0;
        rc = molmo_probe_sgemm(512, 3584, 3584, from_bf16, n, o->reps, &gemm, err);
        if (rc) return rc;
        snprintf(buf, sizeof buf, "%.1f GFLOP/s", gemm / 1e9);
        frac[0] = 0;
        if (lim->f32_flop_per_s > 0)
            snprintf(frac, sizeof frac, "%.2f of f32 peak", gemm / lim->f32_flop_per_s);
        row(from_bf16 ? "sgemm 512x3584x3584, bf16 W widened" : "OpenBLAS sgemm 512x3584x3584",
            n, "cblas_sgemm", buf, frac);
        json_object_set_new(out, from_bf16 ? "sgemm_bf16_512x3584x3584_flop_per_s"
                                           : "sgemm_512x3584x3584_flop_per_s",
                            json_real(gemm));
        json_object_set_new(out, from_bf16 ? "sgemm_bf16_peak_frac" : "sgemm_peak_frac",
                            lim->f32_flop_per_s > 0 ? json_real(gemm / lim->f32_flop_per_s)
                                                    : json_null());
    }
    return 0;
}

/* ---- --model: the engine on a checkpoint ------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and half the range (max - min) / 2 of n values (sorted in place). */
static void median_spread(double *v, int n, double *med, double *spread) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    *spread = 0.5 * (v[n - 1] - v[0]);
}

static long peak_rss_bytes(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss * 1024L : -1;
}

struct model_figures {
    double vit_ms_per_crop, vit_flop_per_crop;
    double prefill_tps, prefill_spread, prefill_flop_per_token;
    double decode_tps, decode_spread, decode_bytes_per_token;
    long peak_rss;
    double weight_bytes, kv_bytes;
    char kernel[32];
    char weights[40]; /* the LLM weights' dtype, and for Q8_0 the decode x */
    int threads;
    /* energy (--meter): over all reps; has_energy = 0 with --meter none */
    int has_energy;
    enum meter_source energy_source;
    char energy_backend[64], energy_label[1024];
    double vit_j, prefill_j, decode_j, prefill_s, decode_s;
};

/* "measured (powercap: package-0, dram-0)" or "estimated (<the model in words>)": where the
 * joules come from, printed beside every energy figure. */
static void energy_label(const struct meter *mt, char *buf, size_t len) {
    enum meter_source src = meter_source(mt);
    if (src == METER_SOURCE_ESTIMATED) {
        snprintf(buf, len, "estimated (%s)", meter_model(mt) ? meter_model(mt) : "model unknown");
        return;
    }
    size_t at = (size_t)snprintf(buf, len, "measured (%s:", meter_backend_name(mt));
    const char *sep = " ";
    for (int d = 0; d < meter_n_domains(mt) && at < len; d++) {
        const struct meter_domain *dm = meter_domain_get(mt, d);
        if (!dm->in_total) continue;
        at += (size_t)snprintf(buf + at, len - at, "%s%s", sep, dm->name);
        sep = ", ";
    }
    if (at < len) snprintf(buf + at, len - at, ")");
}

/* meter_mark with 0 on success (it returns the phase index). */
static int mark(struct meter *mt, const char *label, long rep, struct jb_err *err) {
    int rc = meter_mark(mt, label, rep, err);
    return rc < 0 ? rc : 0;
}

/* Energy and time of the closed phases named label, summed. */
static void phase_sum(const struct meter *mt, const char *label, double *j, double *s) {
    *j = *s = 0;
    for (int i = 0; i < meter_n_phases(mt); i++) {
        struct meter_phase ph;
        if (meter_phase_get(mt, i, &ph, NULL) == 0 && !strcmp(ph.label, label)) {
            *j += ph.energy_j;
            *s += ph.t_end_s - ph.t_start_s;
        }
    }
}

/* Loads --model, then per rep: --crops ViT passes on random patches, a prefill of
 * --prompt-tokens random ids, --gen-tokens greedy decode steps. */
/* Meter marks from the engine's bench phases: each rep's vision, prefill and decode open a
 * phase of that name; the end of decode closes it. */
struct bench_marks {
    struct meter *mt;
    struct jb_err err;
};

static void bench_on_phase(void *user, enum molmo_phase phase, bool begin, int rep) {
    struct bench_marks *bm = user;
    if (bm->err.code) return;
    const char *label = !begin ? "" : molmo_phase_name(phase);
    mark(bm->mt, label, rep, &bm->err);
}

static int bench_model(const struct bench_opts *o, struct model_figures *f, struct jb_err *err) {
    struct molmo_model *m = NULL;
    struct bench_marks bm = {0};
    struct molmo_load_opts lo = {.max_seq = o->prompt_tokens + o->gen_tokens + 1,
                                 .max_crops = 1,
                                 .n_threads = o->threads,
                                 .kernels = molmo_isa_name(o->isa),
                                 .activations = o->activations,
                                 .q8_x = o->q8_x};
    int rc = molmo_model_load_weights(&m, o->model, &lo, err);
    if (rc) return rc;
    double *tv = calloc((size_t)o->reps, sizeof(double)), *tp = calloc((size_t)o->reps, sizeof(double));
    double *td = calloc((size_t)o->reps, sizeof(double));
    if (!tv || !tp || !td) {
        rc = jb_err_set(err, JB_ENOMEM, "bench: out of memory");
        goto out;
    }
    /* The meter opens after the load, so the phases hold only the work they name. */
    if (!o->meter || strcmp(o->meter, "none") != 0) {
        struct meter_opts mo = {.backend = o->meter, .tdp_w = o->tdp_w, .no_gpu = true};
        if ((rc = meter_open(&bm.mt, &mo, err)) || (rc = meter_start(bm.mt, err))) goto out;
        harness_log_meter_notes(bm.mt);
    }
    struct molmo_bench_opts bo = {o->crops, o->prompt_tokens, o->gen_tokens, o->reps,
                                  bm.mt ? bench_on_phase : NULL, &bm};
    struct molmo_bench_reps reps = {tv, tp, td};
    if ((rc = molmo_bench_model(m, &bo, &reps, err))) goto out;
    if (bm.err.code) {
        *err = bm.err;
        rc = bm.err.code;
        goto out;
    }
    if (bm.mt) {
        if ((rc = meter_stop(bm.mt, err))) goto out;
        double s;
        f->has_energy = 1;
        f->energy_source = meter_source(bm.mt);
        snprintf(f->energy_backend, sizeof f->energy_backend, "%s", meter_backend_name(bm.mt));
        energy_label(bm.mt, f->energy_label, sizeof f->energy_label);
        phase_sum(bm.mt, "vision", &f->vit_j, &s);
        phase_sum(bm.mt, "prefill", &f->prefill_j, &f->prefill_s);
        phase_sum(bm.mt, "decode", &f->decode_j, &f->decode_s);
    }
    double spread;
    median_spread(tv, o->reps, &f->vit_ms_per_crop, &spread);
    median_spread(tp, o->reps, &f->prefill_tps, &f->prefill_spread);
    median_spread(td, o->reps, &f->decode_tps, &f->decode_spread);
    f->peak_rss = peak_rss_bytes();
    /* engine/costs.c counts from the shapes: the LLM products of one token (the decode MACs
     * count the output head per token; a prefill runs it on the last prompt position only),
     * attention's q.k and p.v over on average T/2 causal positions, and the ViT blocks that
     * run per crop */
    struct molmo_costs k;
    molmo_model_costs(m, &k);
    f->decode_bytes_per_token = k.llm_weight_bytes_per_token + k.head_bytes;
    f->prefill_flop_per_token = 2.0 * k.llm_macs_per_token + 2.0 * k.head_macs / o->prompt_tokens +
                                2.0 * k.attn_macs_per_position * (o->prompt_tokens / 2.0);
    f->vit_flop_per_crop = k.vit_flop_per_crop;
    f->weight_bytes = (double)molmo_model_file_bytes(m);
    f->kv_bytes = k.kv_bytes_per_position * (o->prompt_tokens + o->gen_tokens);
    snprintf(f->kernel, sizeof f->kernel, "%s", molmo_model_kernel_name(m));
    snprintf(f->weights, sizeof f->weights, "%s", molmo_model_weights_name(m));
    f->threads = molmo_model_n_threads(m);
out:
    free(tv);
    free(tp);
    free(td);
    meter_close(bm.mt);
    molmo_model_free(m);
    return rc;
}

/* Joules per crop and per token, each labelled with its source; nulls with --meter none. */
static void report_energy(const struct bench_opts *o, const struct model_figures *f, json_t *out) {
    double crops = (double)o->crops * o->reps, pt = (double)o->prompt_tokens * o->reps;
    double gt = (double)o->gen_tokens * o->reps;
    double vit = f->has_energy && crops > 0 ? f->vit_j / crops : 0;
    double pre = f->has_energy ? f->prefill_j / pt : 0;
    double dec = f->has_energy && gt > 0 ? f->decode_j / gt : 0;
    if (f->has_energy) {
        int est = f->energy_source == METER_SOURCE_ESTIMATED;
        const char *tag = est ? "ESTIMATED" : "measured";
        const char *t = est ? "~" : "";
        char what[64], buf[64];
        snprintf(buf, sizeof buf, "%s%.4g J/crop", t, vit);
        if (crops > 0) row("vit energy", f->threads, f->energy_backend, buf, tag);
        snprintf(what, sizeof what, "prefill energy pp%d", o->prompt_tokens);
        snprintf(buf, sizeof buf, "%s%.4g J/token", t, pre);
        row(what, f->threads, f->energy_backend, buf, tag);
        snprintf(what, sizeof what, "decode energy tg%d", o->gen_tokens);
        snprintf(buf, sizeof buf, "%s%.4g J/token", t, dec);
        row(what, f->threads, f->energy_backend, buf, tag);
        printf("\nenergy: %s; all counted energy, idle included, over %d rep(s)\n",
               f->energy_label, o->reps);
    }
    json_t *nul = json_null();
    json_object_set_new(out, "vit_j_per_crop", f->has_energy && crops > 0 ? json_real(vit) : nul);
    json_object_set_new(out, "prefill_j_per_token", f->has_energy ? json_real(pre) : nul);
    json_object_set_new(out, "decode_j_per_token", f->has_energy && gt > 0 ? json_real(dec) : nul);
    json_object_set_new(out, "prefill_energy_j", f->has_energy ? json_real(f->prefill_j) : nul);
    json_object_set_new(out, "decode_energy_j", f->has_energy ? json_real(f->decode_j) : nul);
    json_object_set_new(out, "prefill_metered_s", f->has_energy ? json_real(f->prefill_s) : nul);
    json_object_set_new(out, "decode_metered_s", f->has_energy ? json_real(f->decode_s) : nul);
    json_object_set_new(out, "energy_source",
                        json_string(f->has_energy ? meter_source_name(f->energy_source) : "none"));
    json_object_set_new(out, "energy_backend",
                        f->has_energy ? json_string(f->energy_backend) : nul);
    json_object_set_new(out, "energy_label", f->has_energy ? json_string(f->energy_label) : nul);
}

static void report_model(const struct bench_opts *o, const struct model_figures *f,
                         const struct machine_limits *lim, json_t *out) {
    char what[112], buf[64], frac[64];
    int n = f->threads;
    double vit_fps = f->vit_ms_per_crop > 0 ? f->vit_flop_per_crop / (f->vit_ms_per_crop * 1e-3) : 0;
    double pre_fps = f->prefill_tps * f->prefill_flop_per_token;
    double dec_bps = f->decode_tps * f->decode_bytes_per_token;
    /* prefill runs float32 sgemm, so its limit is the f32 peak (the bf16 peak where the CPU has
     * vdpbf16ps, the target the issue sets for bf16 weights) */
    double peak = lim->bf16_flop_per_s > 0 ? lim->bf16_flop_per_s : lim->f32_flop_per_s;
    const char *peak_name = lim->bf16_flop_per_s > 0 ? "bf16 peak" : "f32 peak";
    double vit_frac = lim->f32_flop_per_s > 0 ? vit_fps / lim->f32_flop_per_s : 0;
    double pre_frac = peak > 0 ? pre_fps / peak : 0;
    double dec_frac = lim->read_bytes_per_s > 0 ? dec_bps / lim->read_bytes_per_s : 0;
    snprintf(what, sizeof what, "vit, %d crop(s)", o->crops);
    snprintf(buf, sizeof buf, "%.1f ms/crop", f->vit_ms_per_crop);
    snprintf(frac, sizeof frac, "%.2f of f32 peak", vit_frac);
    row(what, n, "cblas_sgemm", buf, frac);
    const char *xs = o->activations && !strcmp(o->activations, "bf16") ? ", bf16 x" : "";
    snprintf(what, sizeof what, "prefill pp%d%s", o->prompt_tokens, xs);
    snprintf(buf, sizeof buf, "%.1f +- %.1f t/s", f->prefill_tps, f->prefill_spread);
    snprintf(frac, sizeof frac, "%.2f of %s", pre_frac, peak_name);
    row(what, n, "cblas_sgemm", buf, frac);
    snprintf(what, sizeof what, "decode tg%d%s, %s weights", o->gen_tokens, xs, f->weights);
    snprintf(buf, sizeof buf, "%.2f +- %.2f t/s", f->decode_tps, f->decode_spread);
    snprintf(frac, sizeof frac, "%.2f of read bandwidth", dec_frac);
    row(what, n, f->kernel, buf, frac);
    snprintf(buf, sizeof buf, "%.2f GB", f->peak_rss / 1e9);
    snprintf(frac, sizeof frac, "%.3f of weights + KV", f->peak_rss / (f->weight_bytes + f->kv_bytes));
    row("peak resident memory", n, "-", buf, frac);
    json_object_set_new(out, "model", json_string(o->model));
    json_object_set_new(out, "kernel", json_string(f->kernel));
    json_object_set_new(out, "weights", json_string(f->weights));
    json_object_set_new(out, "activations", json_string(o->activations ? o->activations : "f32"));
    json_object_set_new(out, "threads", json_integer(n));
    json_object_set_new(out, "crops", json_integer(o->crops));
    json_object_set_new(out, "prompt_tokens", json_integer(o->prompt_tokens));
    json_object_set_new(out, "gen_tokens", json_integer(o->gen_tokens));
    json_object_set_new(out, "reps", json_integer(o->reps));
    json_object_set_new(out, "vit_ms_per_crop", json_real(f->vit_ms_per_crop));
    json_object_set_new(out, "vit_peak_frac", json_real(vit_frac));
    json_object_set_new(out, "prefill_tokens_per_s", json_real(f->prefill_tps));
    json_object_set_new(out, "prefill_tokens_per_s_spread", json_real(f->prefill_spread));
    json_object_set_new(out, "prefill_flop_per_s", json_real(pre_fps));
    json_object_set_new(out, "prefill_peak_frac", json_real(pre_frac));
    json_object_set_new(out, "prefill_peak", json_string(peak_name));
    json_object_set_new(out, "decode_tokens_per_s", json_real(f->decode_tps));
    json_object_set_new(out, "decode_tokens_per_s_spread", json_real(f->decode_spread));
    json_object_set_new(out, "decode_bytes_per_token", json_real(f->decode_bytes_per_token));
    json_object_set_new(out, "decode_bandwidth_frac", json_real(dec_frac));
    json_object_set_new(out, "peak_rss_bytes", json_integer((json_int_t)f->peak_rss));
    json_object_set_new(out, "weight_bytes", json_real(f->weight_bytes));
    json_object_set_new(out, "kv_cache_bytes", json_real(f->kv_bytes));
    report_energy(o, f, out);
}

static int default_threads(void) {
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) == 0 && CPU_COUNT(&s) > 0) return CPU_COUNT(&s);
    return 1;
}

/* A whole number in lo..hi from optarg, or -1 after a usage error naming opt. */
static long opt_long(const char *opt, const char *arg, long lo, long hi) {
    char *end;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || v < lo || v > hi) {
        harness_usage_error("bench", "--%s wants %ld..%ld, not '%s'", opt, lo, hi, arg);
        return -1;
    }
    return v;
}

/* One option into o; 2 after a usage error, 0 else. */
static int parse_opt(struct bench_opts *o, int c) {
    char *end;
    switch (c) {
    case 'm': o->machine = 1; break;
    case 'k': o->kernels = 1; break;
    case 't': return (o->threads = (int)opt_long("threads", optarg, 1, 1024)) < 0 ? 2 : 0;
    case 'r': return (o->reps = (int)opt_long("reps", optarg, 1, 1000)) < 0 ? 2 : 0;
    case 'b': return (o->bw_mib = opt_long("bw-mib", optarg, 1, 1L << 20)) < 0 ? 2 : 0;
    case 'c': return (o->crops = (int)opt_long("crops", optarg, 0, 1000000)) < 0 ? 2 : 0;
    case 'p':
        return (o->prompt_tokens = (int)opt_long("prompt-tokens", optarg, 1, 1000000)) < 0 ? 2 : 0;
    case 'g': return (o->gen_tokens = (int)opt_long("gen-tokens", optarg, 0, 1000000)) < 0 ? 2 : 0;
    case 'K':
        if (molmo_isa_parse(optarg, &o->isa))
            return harness_usage_error("bench", "--kernel: unknown kernel '%s'", optarg);
        break;
    case 'j': o->json_path = optarg; break;
    case 'Q':
        if (strcmp(optarg, "int16") == 0) o->q8_x = MOLMO_Q8_ACT_INT16;
        else if (strcmp(optarg, "f32") == 0) o->q8_x = MOLMO_Q8_ACT_F32;
        else if (strcmp(optarg, "int8") == 0) o->q8_x = MOLMO_Q8_ACT_INT8;
        else return harness_usage_error("bench", "--q8-x is int16, f32 or int8, not '%s'", optarg);
        break;
    case 'E': o->meter = optarg; break;
    case 'A':
        if (strcmp(optarg, "f32") != 0 && strcmp(optarg, "bf16") != 0)
            return harness_usage_error("bench", "--activations is f32 or bf16, not '%s'", optarg);
        o->activations = optarg;
        break;
    case 'W':
        o->tdp_w = strtod(optarg, &end);
        if (*end || !(o->tdp_w > 0 && o->tdp_w < 1e5))
            return harness_usage_error("bench", "--tdp-w wants watts > 0, not '%s'", optarg);
        break;
    case 'M': o->model = optarg; break;
    default: return harness_usage_error("bench", "unknown option -%c", c);
    }
    return 0;
}

/* The options; -1 to go on, else the exit status (0 after --help). */
static int parse_args(struct bench_opts *o, int argc, char **argv) {
    static const struct option opts[] = {
        {"machine", no_argument, NULL, 'm'}, {"kernels", no_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 't'}, {"reps", required_argument, NULL, 'r'},
        {"bw-mib", required_argument, NULL, 'b'}, {"kernel", required_argument, NULL, 'K'},
        {"json", required_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {"model", required_argument, NULL, 'M'}, {"crops", required_argument, NULL, 'c'},
        {"prompt-tokens", required_argument, NULL, 'p'},
        {"gen-tokens", required_argument, NULL, 'g'},
        {"q8-x", required_argument, NULL, 'Q'},
        {"meter", required_argument, NULL, 'E'}, {"tdp-w", required_argument, NULL, 'W'},
        {"activations", required_argument, NULL, 'A'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            usage();
            return 0;
        }
        if (c == '?') return harness_usage_error("bench", "unknown option '%s'", argv[optind - 1]);
        if (parse_opt(o, c)) return 2;
    }
    if (optind < argc)
        return harness_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (!o->machine && !o->kernels && !o->model)
        return harness_usage_error("bench",
                                   "say what to measure: --machine, --kernels and/or --model DIR");
    return -1;
}

/* The table's head: the CPU, the kernels chosen, the columns. */
static void print_head(const struct bench_opts *o) {
    struct molmo_cpu cpu = molmo_cpu_detect();
    char feat[128];
    cpu_features(feat, sizeof feat, &cpu);
    printf("cpu: %s\nkernel: %s (best this CPU runs: %s)\n\n", feat, molmo_kernels_name(o->isa),
           molmo_isa_name(cpu.best));
    printf("| %-36s | %7s | %-18s | %-22s | %-26s |\n", "probe", "threads", "kernel", "result",
           "fraction of limit");
    printf("| %.36s | %.7s | %.18s | %.22s | %.26s |\n", "------------------------------------",
           "------:", "------------------", "----------------------",
           "--------------------------");
}

static int run(int argc, char **argv) {
    struct bench_opts o = {.threads = default_threads(), .reps = 5, .bw_mib = 512,
                           .isa = MOLMO_ISA_BEST, .crops = 1, .prompt_tokens = 512,
                           .gen_tokens = 32};
    int rc = parse_args(&o, argc, argv);
    if (rc >= 0) return rc;
    struct jb_err err = {0};
    struct jb_pool *pool = NULL;
    json_t *root = json_object(), *mach = json_object();
    struct machine_limits lim = {0};
    struct model_figures mf = {0};
    rc = 0;
    /* The model first, so that its peak resident memory is not the probes' buffers; its
     * pool is closed before the probes open theirs. */
    if (o.model && (rc = bench_model(&o, &mf, &err))) goto out;
    if ((rc = jb_pool_open(&pool, o.threads, 1, &err))) goto out;
    print_head(&o);
    /* The kernels' fractions need the limits, so --kernels measures them too. */
    if ((rc = bench_machine(pool, &o, &lim, mach, &err))) goto out;
    json_object_set_new(root, "machine", mach);
    mach = NULL;
    if (o.model) report_model(&o, &mf, &lim, root);
    if (o.kernels) {
        json_t *kern = json_object();
        json_object_set_new(root, "kernels", kern);
        if ((rc = bench_kernels(pool, &o, &lim, kern, &err))) goto out;
    }
    fflush(stdout);
    if (o.json_path) rc = jb_json_write_file(o.json_path, root, &err);
out:
    jb_pool_close(pool);
    json_decref(mach);
    json_decref(root);
    if (rc) return harness_fail("bench: %s", err.msg);
    return 0;
}

const struct harness_cmd cmd_bench = {
    .name = "bench",
    .summary = "this machine's bandwidth and FLOP/s limits, and the kernels' speed against them",
    .run = run,
    .usage = usage,
};
