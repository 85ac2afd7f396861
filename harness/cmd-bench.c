/* joulebench bench: this machine's limits (--machine) and the decode kernels' and OpenBLAS's
 * speed against them (--kernels). One function per section; each prints its rows of the table
 * and adds its object to the JSON record. */
#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-pool.h"
/* The probes and kernel tables are engine-internal (kernels-impl.h); bench is their one user
 * outside engine/ until molmo.h exports a bench entry point. */
#include "engine/kernels-impl.h"

#include <getopt.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench_opts {
    int machine, kernels;
    int threads, reps;
    long bw_mib;
    enum molmo_isa isa;
    const char *json_path;
};

/* Limits measured by bench_machine, used by later sections for fractions (0 = not measured). */
struct machine_limits {
    double read_bytes_per_s, f32_flop_per_s, bf16_flop_per_s;
};

static void usage(void) {
    printf("usage: joulebench bench --machine [--kernels] [options]\n"
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
           "  --machine        run the machine probes (needed for now: the model benchmark is\n"
           "                   not there yet)\n"
           "  --kernels        also time the decode kernels and sgemm (about 1 GiB of memory)\n"
           "  --threads N      threads of the pool (default: the CPUs this process may use)\n"
           "  --reps N         repetitions, best taken (default 5)\n"
           "  --bw-mib N       read-bandwidth buffer in MiB (default 512)\n"
           "  --kernel NAME    scalar, avx2+fma, avx512-bf16/vnni or best (default best; never\n"
           "                   above what the CPU supports)\n"
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
    printf("| %-36s | %7d | %-18s | %-14s | %-26s |\n", probe, threads, kernel, result, frac);
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
    };
    /* Molmo-7B-D LLM: ff_proj's up (or gate) half [18944, 3584] and ff_out [3584, 18944]. */
    static const int shapes[][2] = {{18944, 3584}, {3584, 18944}};
    int n = jb_pool_n_threads(pool);
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), o->isa);
    json_object_set_new(out, "kernel", json_string(k.name));
    json_t *mv = json_array();
    json_object_set_new(out, "matvec", mv);
    char what[64], buf[64], frac[64];
    enum { N_SHAPES = 2, N_TYPES = sizeof types / sizeof types[0] };
    double bps_all[N_SHAPES][N_TYPES];
    for (size_t s = 0; s < N_SHAPES; s++) {
        for (size_t t = 0; t < N_TYPES; t++) {
            int rc = molmo_probe_matvec(pool, &k, types[t].type, shapes[s][0], shapes[s][1],
                                        4 * o->reps, &bps_all[s][t], err);
            if (rc) return rc;
        }
    }
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
            row(what, n, k.name, buf, frac);
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

static int default_threads(void) {
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) == 0 && CPU_COUNT(&s) > 0) return CPU_COUNT(&s);
    return 1;
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"machine", no_argument, NULL, 'm'}, {"kernels", no_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 't'}, {"reps", required_argument, NULL, 'r'},
        {"bw-mib", required_argument, NULL, 'b'}, {"kernel", required_argument, NULL, 'K'},
        {"json", required_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct bench_opts o = {.threads = default_threads(), .reps = 5, .bw_mib = 512,
                           .isa = MOLMO_ISA_BEST};
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.machine = 1; break;
        case 'k': o.kernels = 1; break;
        case 't':
            o.threads = (int)strtol(optarg, &end, 10);
            if (*end || o.threads < 1 || o.threads > 1024)
                return harness_usage_error("bench", "--threads wants 1..1024, not '%s'", optarg);
            break;
        case 'r':
            o.reps = (int)strtol(optarg, &end, 10);
            if (*end || o.reps < 1 || o.reps > 1000)
                return harness_usage_error("bench", "--reps wants 1..1000, not '%s'", optarg);
            break;
        case 'b':
            o.bw_mib = strtol(optarg, &end, 10);
            if (*end || o.bw_mib < 1 || o.bw_mib > (1L << 20))
                return harness_usage_error("bench", "--bw-mib wants 1..1048576, not '%s'", optarg);
            break;
        case 'K':
            if (molmo_isa_parse(optarg, &o.isa))
                return harness_usage_error("bench", "--kernel: unknown kernel '%s'", optarg);
            break;
        case 'j': o.json_path = optarg; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("bench", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (!o.machine && !o.kernels)
        return harness_usage_error("bench", "say what to measure: --machine and/or --kernels");

    struct jb_err err = {0};
    struct jb_pool *pool = NULL;
    json_t *root = json_object(), *mach = json_object();
    struct machine_limits lim = {0};
    int rc = jb_pool_open(&pool, o.threads, 1, &err);
    if (rc) goto out;

    struct molmo_cpu cpu = molmo_cpu_detect();
    struct molmo_kernels k;
    molmo_kernels_init(&k, cpu, o.isa);
    char feat[128];
    cpu_features(feat, sizeof feat, &cpu);
    printf("cpu: %s\nkernel: %s (best this CPU runs: %s)\n\n", feat, k.name,
           molmo_isa_name(cpu.best));
    printf("| %-36s | %7s | %-18s | %-14s | %-26s |\n", "probe", "threads", "kernel", "result",
           "fraction of limit");
    printf("| %.36s | %.7s | %.18s | %.14s | %.26s |\n", "------------------------------------",
           "------:", "------------------", "--------------", "--------------------------");
    /* The kernels' fractions need the limits, so --kernels measures them too. */
    rc = bench_machine(pool, &o, &lim, mach, &err);
    if (rc) goto out;
    json_object_set_new(root, "machine", mach);
    mach = NULL;
    if (o.kernels) {
        json_t *kern = json_object();
        json_object_set_new(root, "kernels", kern);
        rc = bench_kernels(pool, &o, &lim, kern, &err);
        if (rc) goto out;
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
