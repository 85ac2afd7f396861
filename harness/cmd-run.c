/* joulebench run: evaluate one or more checkpoints on one or more suites under the meter and
 * write a run directory (samples.jsonl, power.csv, run.json) and its reports. The sample loop
 * itself is harness/run-loop.c; this file checks the input, opens the suites, the meter and
 * each model, and connects them to the loop. */
#include "config.h"

#include "harness/harness.h"
#include "harness/run-impl.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "common/jb-log.h"
#include "common/jb-sha256.h"
#include "common/jb-time.h"
#include "energy/meter.h"
#include "engine/molmo.h"
#include "evals/evals.h"
#include "reports/reports.h"

#include "jb-build-info.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MODELS 16
#define MAX_SUITES 16
#define MAX_DATA 16
/* The embedded default: the two shipped checkpoints (models/, trained on the synthetic
 * suites by scripts/train-default.py) on the three synthetic suites, this many samples each,
 * so that ./scripts/quickstart stays well inside its 5 minutes on 2 cores. */
#define DEFAULT_SUITES "synth-chart,synth-doc,synth-count"
#define DEFAULT_LIMIT 10
static const char *const default_models[] = {"tiny", "small"};

static void usage(void) {
    printf(
        "usage: joulebench run [--model DIR]... [--suite NAME[,NAME...]] [--data [NAME=]DIR]...\n"
        "                      [--limit N] [--out DIR] [--resume] [--meter NAME]\n"
        "                      [--region CODE] [--threads N] [--max-tokens N] [--idle-s S]\n"
        "                      [--history FILE.sqlite] [--format md,html,csv]\n"
        "\n"
        "Evaluates each model on each suite under the energy meter and writes DIR/run.json,\n"
        "DIR/samples.jsonl (one line per sample, fsynced), DIR/power.csv and the reports.\n"
        "Several --model options run one after the other under the same meter and idle\n"
        "baseline. With no --model and no --data: the embedded default, the shipped\n"
        "checkpoints 'tiny' and 'small' (trained on the synthetic suites; their SHA256SUMS\n"
        "checked; JOULEBENCH_MODELS=DIR to use other copies) on the synthetic suites\n"
        "(" DEFAULT_SUITES ") written into DIR/data, %d samples each.\n"
        "\n"
        "  --model DIR        a Molmo checkpoint directory (repeatable)\n"
        "  --suite LIST       suites, comma separated ('joulebench suites' lists them)\n"
        "  --data [NAME=]DIR  dataset directory: DIR/<suite> when it exists, else DIR;\n"
        "                     NAME=DIR for one suite (repeatable)\n"
        "  --limit N          at most N samples per suite (default: all; %d embedded)\n"
        "  --out DIR          the run directory (default results/run-YYYYMMDD-HHMMSS)\n"
        "  --resume           continue DIR: recorded samples are not recomputed\n"
        "  --meter NAME       auto (default), powercap, perf, papi, nvml or estimate\n"
        "  --region CODE      grid carbon intensity of this region (default WORLD)\n"
        "  --threads N        OpenBLAS threads (default: all cores)\n"
        "  --max-tokens N     cap on generated tokens per sample (default: the suite's)\n"
        "  --idle-s S         idle baseline before the run, seconds (default 5; 0 = none)\n"
        "  --history FILE     append the run's summary to this SQLite history\n"
        "  --format LIST      reports to write (default md,html,csv)\n"
        "  -h, --help         this text\n"
        "\n"
        "exit status: 0 done, 2 error (bad input is reported before any work starts)\n",
        DEFAULT_LIMIT, DEFAULT_LIMIT);
}

struct opts {
    const char *models[MAX_MODELS];
    int n_models;
    char *suites[MAX_SUITES];
    int n_suites;
    const char *data[MAX_DATA];
    int n_data;
    long limit;
    const char *out, *meter, *region, *history, *formats;
    bool resume;
    int threads, max_tokens;
    double idle_s;
};

/* ---- checks done before any work ---- */

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return harness_usage_error("run", "%s needs an integer in %ld..%ld, not '%s'", opt, lo, hi,
                                   s);
    *out = v;
    return 0;
}

/* The run directory must be creatable and writable: a probe file is created and removed. */
static int check_out(const char *out) {
    struct jb_err err = {0};
    if (jb_mkdir_p(out, &err) != 0) return harness_fail("--out %s", err.msg);
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/.joulebench-write-test", out);
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return harness_fail("--out %s: not writable: %s", out, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

/* Where the shipped default models are: $JOULEBENCH_MODELS; else, for the installed binary,
 * $(pkgdatadir)/models; else (a binary in the build tree) the source tree's models/. */
static void default_models_dir(char *buf, size_t cap) {
    const char *env = getenv("JOULEBENCH_MODELS");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return;
    }
    char self[PATH_MAX], inst[PATH_MAX];
    bool installed = realpath("/proc/self/exe", self) && realpath(JB_BINDIR "/joulebench", inst) &&
                     strcmp(self, inst) == 0;
    snprintf(buf, cap, "%s/models", installed ? JB_PKGDATADIR : JB_SRCDIR);
}

static int check_model_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return harness_fail("--model %s: no such directory", dir);
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (access(cfg, R_OK) != 0)
        return harness_fail("--model %s: not a checkpoint (no readable config.json)", dir);
    return 0;
}

/* The model's name in the records: the directory's last component. */
static const char *model_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    const char *s = dir + n;
    while (s > dir && s[-1] != '/') s--;
    static char names[MAX_MODELS][256];
    static int k;
    char *out = names[k++ % MAX_MODELS];
    snprintf(out, 256, "%.*s", (int)(dir + n - s), s);
    return out;
}

/* The dataset directory of a suite: NAME=DIR wins, else DIR/<suite> when it is a directory,
 * else the single plain DIR. */
static const char *data_dir_for(const struct opts *o, const char *suite, char *buf, size_t len) {
    const char *plain = NULL;
    size_t sl = strlen(suite);
    for (int i = 0; i < o->n_data; i++) {
        const char *eq = strchr(o->data[i], '=');
        if (eq && (size_t)(eq - o->data[i]) == sl && !strncmp(o->data[i], suite, sl)) return eq + 1;
        if (!eq) plain = o->data[i];
    }
    if (!plain) return NULL;
    struct stat st;
    snprintf(buf, len, "%s/%s", plain, suite);
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return buf;
    return plain;
}

/* ---- the run's connections to the engine, the metric and the meter ---- */

struct env {
    struct meter *meter;
    struct meter_carbon carbon;
    char energy_source[96];
    double t_offset_s; /* power.csv clock: a resumed run continues after the last row */
    size_t trace_from;
    struct molmo_model *model;
    struct evals_loader *loaders[MAX_SUITES];
    const struct evals_suite *suites[MAX_SUITES];
    int n_suites;
    int max_tokens;
    long next_id; /* meter sample ids */
    long cur_id;
    struct jb_err mark_err;
};

static const char *phase_label(enum molmo_phase p) {
    switch (p) {
    case MOLMO_PHASE_PREPROCESS: return "preprocess";
    case MOLMO_PHASE_VISION: return "vision";
    case MOLMO_PHASE_PREFILL: return "prefill";
    case MOLMO_PHASE_DECODE: return "decode";
    default: return NULL;
    }
}

/* Engine phase boundaries become meter marks: each phase's begin opens a phase labelled with its
 * name for this sample; the end of decode closes it (unattributed from then on). */
static void on_phase(void *user, enum molmo_phase phase, bool begin, int step) {
    (void)step;
    struct env *e = user;
    const char *label = phase_label(phase);
    if (!label || e->mark_err.code) return;
    if (begin)
        meter_mark(e->meter, label, e->cur_id, &e->mark_err);
    else if (phase == MOLMO_PHASE_DECODE)
        meter_mark(e->meter, "", -1, &e->mark_err);
}

static int eval(void *user, const struct run_item *it, struct run_answer *a, struct jb_err *err) {
    struct env *e = user;
    const struct evals_sample *x = it->handle;
    e->cur_id = e->next_id++;
    jb_err_clear(&e->mark_err);
    int first_phase = meter_n_phases(e->meter);
    struct molmo_gen_opts go = {
        .max_new_tokens = e->max_tokens > 0 && e->max_tokens < it->max_new_tokens
                              ? e->max_tokens
                              : it->max_new_tokens,
        .on_phase = on_phase,
        .user = e,
    };
    struct molmo_result r = {0};
    double c0 = jb_time_process_cpu_s(), t0 = jb_time_now_s();
    int rc = molmo_generate_file(e->model, it->image_path, it->prompt, &go, &r, err);
    double t1 = jb_time_now_s(), c1 = jb_time_process_cpu_s();
    if (!rc && e->mark_err.code) {
        *err = e->mark_err;
        rc = e->mark_err.code;
    }
    if (rc) {
        jb_err_prefix(err, "%s %s", it->suite, it->id);
        goto out;
    }
    struct evals_score sc;
    if ((rc = evals_sample_score(x, r.text ? r.text : "", &sc, err))) goto out;
    a->text = strdup(r.text ? r.text : "");
    a->prediction = evals_sample_prediction(x, r.text ? r.text : "");
    a->score = sc.score;
    a->invalid = sc.invalid;
    a->n_tokens_in = (long long)r.n_prompt_tokens;
    a->n_tokens_out = (long long)r.n_ids;
    a->time_s[RUN_PHASE_PREPROCESS] = r.phase_s[MOLMO_PHASE_PREPROCESS];
    a->time_s[RUN_PHASE_VISION] = r.phase_s[MOLMO_PHASE_VISION];
    a->time_s[RUN_PHASE_PREFILL] = r.phase_s[MOLMO_PHASE_PREFILL];
    a->time_s[RUN_PHASE_DECODE] = r.phase_s[MOLMO_PHASE_DECODE];
    a->time_total_s = t1 - t0;
    a->cpu_s = c1 - c0;
    struct molmo_work wk;
    molmo_work_count(e->model, &r, &wk);
    a->n_crops = r.n_crops;
    a->n_image_tokens = (long long)r.n_image_tokens;
    a->flop[RUN_PHASE_VISION] = wk.vision_flop;
    a->flop[RUN_PHASE_PREFILL] = wk.prefill_flop;
    a->flop[RUN_PHASE_DECODE] = wk.decode_flop;
    a->weight_bytes_read = wk.vision_weight_bytes + wk.prefill_weight_bytes + wk.decode_weight_bytes;
    /* The closed phases of this sample (the "" mark after decode closed the last one). */
    a->t_start_s = -1;
    int n = meter_n_phases(e->meter);
    for (int i = first_phase; i < n; i++) {
        struct meter_phase ph;
        if (meter_phase_get(e->meter, i, &ph, NULL) != 0 || ph.sample_id != e->cur_id) continue;
        if (a->t_start_s < 0) a->t_start_s = e->t_offset_s + ph.t_start_s;
        a->energy_bound_j += ph.bound_j;
        a->energy_total_j += ph.energy_j; /* the sample's phases tile its marks */
        for (int p = 0; p < RUN_N_PHASES; p++)
            if (!strcmp(ph.label, phase_label((enum molmo_phase)(MOLMO_PHASE_PREPROCESS + p))))
                a->energy_j[p] += ph.energy_j;
    }
    if (!a->text || !a->prediction) rc = jb_err_set(err, JB_ENOMEM, "out of memory");
out:
    molmo_result_free(&r);
    return rc;
}

/* power.csv gets, per trace point, each domain and, when there are several, the counted total
 * ("total": the domains energy.md §2 sums, without double counting). */
static int drain_power(void *user, struct reports_record *w, struct jb_err *err) {
    struct env *e = user;
    enum { CHUNK = 256 };
    int nd = meter_n_domains(e->meter);
    struct meter_point pts[CHUNK];
    double *dw = malloc(sizeof(double) * CHUNK * (size_t)(nd > 0 ? nd : 1));
    if (!dw) return jb_err_set(err, JB_ENOMEM, "out of memory");
    int rc = 0;
    size_t got;
    while (!rc && (got = meter_trace_read(e->meter, e->trace_from, pts, dw, CHUNK)) > 0) {
        for (size_t i = 0; i < got && !rc; i++) {
            double t = e->t_offset_s + pts[i].t_s;
            if (nd != 1) rc = reports_record_power(w, t, "total", pts[i].power_w, err);
            for (int d = 0; d < nd && !rc; d++)
                rc = reports_record_power(w, t, meter_domain_get(e->meter, d)->name,
                                          dw[i * (size_t)nd + (size_t)d], err);
        }
        e->trace_from += got;
    }
    free(dw);
    return rc;
}

/* ---- run.json blocks ---- */

static json_t *meter_json(const struct env *e, const struct opts *o) {
    json_t *domains = json_array();
    for (int d = 0; d < meter_n_domains(e->meter); d++) {
        const struct meter_domain *md = meter_domain_get(e->meter, d);
        json_array_append_new(domains,
                              json_pack("{s:s, s:s, s:b, s:s}", "name", md->name, "kind",
                                        meter_domain_kind_name(md->kind), "in_total", md->in_total,
                                        "source", meter_source_name(md->source)));
    }
    struct meter_result mr;
    double idle_w = 0, overhead = 0;
    if (meter_result_get(e->meter, &mr, NULL, NULL) == 0) {
        idle_w = mr.idle_power_w;
        overhead = mr.sampler_overhead;
    }
    const char *model = meter_model(e->meter);
    return json_pack("{s:s, s:o, s:i, s:s, s:s?, s:f, s:f, s:f}", "backends",
                     meter_backend_name(e->meter), "domains", domains, "interval_ms",
                     meter_interval_ms(e->meter), "energy_source", e->energy_source,
                     "estimate_model", model, "idle_power_w", idle_w, "idle_s", o->idle_s,
                     "sampler_overhead_frac", overhead);
}

static json_t *carbon_json(const struct meter_carbon *c) {
    return json_pack("{s:s, s:f, s:s, s:i, s:f}", "region", c->region, "grid_g_per_kwh",
                     c->g_per_kwh, "source", c->source, "year", c->year, "pue", c->pue);
}

static json_t *suites_json(const struct env *e) {
    json_t *a = json_array();
    for (int i = 0; i < e->n_suites; i++)
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:I, s:b}", "name", evals_suite_name(e->suites[i]), "metric",
                         evals_metric_name(evals_suite_metric(e->suites[i])), "n_samples",
                         (json_int_t)evals_loader_n_samples(e->loaders[i]), "comparable",
                         evals_suite_comparable(e->suites[i])));
    return a;
}

/* The model block of run.json: what identifies the checkpoint (digest of config.json), its
 * size, stored dtype (config torch_dtype) and parameter count (every tensor's elements), as
 * the engine read them at load. */
static json_t *model_json(const char *name, const char *dir, const struct molmo_model *m) {
    struct molmo_model_info mi;
    molmo_model_info(m, &mi);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:I}", "name", name, "path", dir,
                     "config_sha256", mi.config_sha256, "dtype", mi.torch_dtype, "file_bytes",
                     (json_int_t)mi.file_bytes, "n_threads", mi.n_threads, "n_params",
                     (json_int_t)mi.n_params);
}

/* ---- the command ---- */

/* What one `run` holds besides its options, from the checks to the reports. */
struct run_state {
    struct env e;
    struct reports_record *w;
    json_t *runj, *models;
    struct run_item *items;
    size_t n_items;
    struct harness_progress *prog;
    char *sdup; /* --suite's list, cut into o->suites */
    int mask;   /* --format */
    bool embedded, need_synth;
    char default_out[64];
};

/* One option into o (and *suite_arg); 2 after a usage error, 0 else. */
static int parse_opt(struct opts *o, int c, const char **suite_arg) {
    long v;
    switch (c) {
    case 'm':
        if (o->n_models == MAX_MODELS)
            return harness_usage_error("run", "at most %d --model options", MAX_MODELS);
        o->models[o->n_models++] = optarg;
        break;
    case 's': *suite_arg = optarg; break;
    case 'd':
        if (o->n_data == MAX_DATA)
            return harness_usage_error("run", "at most %d --data options", MAX_DATA);
        o->data[o->n_data++] = optarg;
        break;
    case 'l':
        if (parse_long("--limit", optarg, 1, LONG_MAX, &v)) return 2;
        o->limit = v;
        break;
    case 'o': o->out = optarg; break;
    case 'r': o->resume = true; break;
    case 'M': o->meter = optarg; break;
    case 'R': o->region = optarg; break;
    case 't':
        if (parse_long("--threads", optarg, 1, 1024, &v)) return 2;
        o->threads = (int)v;
        break;
    case 'x':
        if (parse_long("--max-tokens", optarg, 1, 4096, &v)) return 2;
        o->max_tokens = (int)v;
        break;
    case 'i': {
        char *end;
        o->idle_s = strtod(optarg, &end);
        if (*end || end == optarg || !(o->idle_s >= 0 && o->idle_s <= 600))
            return harness_usage_error("run", "--idle-s needs seconds in 0..600, not '%s'",
                                       optarg);
        break;
    }
    case 'H': o->history = optarg; break;
    case 'f': o->formats = optarg; break;
    default: return harness_usage_error("run", "unknown option -%c", c);
    }
    return 0;
}

/* The options and their defaults; -1 to go on, else the exit status (0 after --help). */
static int parse_args(struct opts *o, int argc, char **argv, const char **suite_arg,
                      struct run_state *st) {
    static const struct option lopts[] = {
        {"model", required_argument, NULL, 'm'},   {"suite", required_argument, NULL, 's'},
        {"data", required_argument, NULL, 'd'},    {"limit", required_argument, NULL, 'l'},
        {"out", required_argument, NULL, 'o'},     {"resume", no_argument, NULL, 'r'},
        {"meter", required_argument, NULL, 'M'},   {"region", required_argument, NULL, 'R'},
        {"threads", required_argument, NULL, 't'}, {"max-tokens", required_argument, NULL, 'x'},
        {"idle-s", required_argument, NULL, 'i'},  {"history", required_argument, NULL, 'H'},
        {"format", required_argument, NULL, 'f'},  {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        if (c == 'h') {
            usage();
            return 0;
        }
        if (c == '?') return harness_usage_error("run", "unknown option '%s'", argv[optind - 1]);
        if (parse_opt(o, c, suite_arg)) return 2;
    }
    if (optind < argc) return harness_usage_error("run", "unexpected argument '%s'", argv[optind]);
    st->embedded = o->n_models == 0;
    if (st->embedded && o->n_data > 0)
        return harness_usage_error("run", "--data needs at least one --model");
    if (!*suite_arg) {
        if (o->n_data > 0) return harness_usage_error("run", "--suite is required with --data");
        *suite_arg = DEFAULT_SUITES;
    }
    if (st->embedded && !o->limit) o->limit = DEFAULT_LIMIT;
    if (!o->out) {
        char ts[32];
        jb_time_iso8601(ts, sizeof ts); /* 2026-11-23T12:50:12Z -> run-20261123-125012 */
        snprintf(st->default_out, sizeof st->default_out,
                 "results/run-%.4s%.2s%.2s-%.2s%.2s%.2s", ts, ts + 5, ts + 8, ts + 11, ts + 14,
                 ts + 17);
        o->out = st->default_out;
    }
    struct jb_err err = {0};
    if (reports_formats_parse(o->formats, &st->mask, &err) < 0)
        return harness_usage_error("run", "--format: %s", err.msg);
    return -1;
}

/* Bad input, before any work: model directories, suite names, datasets, the output
 * directory. A synthetic suite without --data is written into the run directory. */
static int check_inputs(struct opts *o, const char *suite_arg, struct run_state *st) {
    for (int i = 0; i < o->n_models; i++)
        if (check_model_dir(o->models[i])) return 2;
    if (!(st->sdup = strdup(suite_arg))) return harness_fail("out of memory");
    for (char *tok = strtok(st->sdup, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_suites == MAX_SUITES)
            return harness_usage_error("run", "at most %d suites", MAX_SUITES);
        if (!evals_suite_find(tok))
            return harness_fail("--suite %s: unknown suite (see 'joulebench suites')", tok);
        o->suites[o->n_suites++] = tok;
    }
    if (o->n_suites == 0) return harness_usage_error("run", "--suite names no suite");
    for (int s = 0; s < o->n_suites; s++) {
        char tmp[PATH_MAX];
        if (data_dir_for(o, o->suites[s], tmp, sizeof tmp)) continue;
        if (!evals_suite_is_synthetic(evals_suite_find(o->suites[s])))
            return harness_fail("--suite %s: needs --data DIR (the files it holds: 'joulebench "
                                "suites')",
                                o->suites[s]);
        st->need_synth = true;
    }
    return check_out(o->out);
}

/* The embedded default: the shipped checkpoints, their SHA256SUMS checked now (the engine
 * checks again at load). */
static int add_default_models(struct opts *o) {
    static char embedded_models[2][PATH_MAX];
    char mdir[PATH_MAX - 64], path[PATH_MAX + 64];
    struct jb_err err = {0};
    default_models_dir(mdir, sizeof mdir);
    for (size_t i = 0; i < sizeof default_models / sizeof *default_models; i++) {
        snprintf(embedded_models[i], sizeof embedded_models[i], "%.*s/%s", (int)sizeof mdir - 1,
                 mdir, default_models[i]);
        snprintf(path, sizeof path, "%.*s/config.json", PATH_MAX - 1, embedded_models[i]);
        if (access(path, R_OK) != 0)
            return harness_fail("the default model '%s' is missing: %s (the source tree's "
                                "models/, installed by 'make install'; JOULEBENCH_MODELS names "
                                "another directory)",
                                default_models[i], path);
        if (jb_sha256_manifest_check(embedded_models[i], "SHA256SUMS", NULL, &err) < 0)
            return harness_fail("default model '%s': %s", default_models[i], err.msg);
        o->models[o->n_models++] = embedded_models[i];
    }
    return 0;
}

/* The synthetic suites, written into the run directory (kept there, so --resume finds them). */
static int add_synth_data(struct opts *o) {
    static char embedded_data[PATH_MAX], synth_dirs[MAX_SUITES][PATH_MAX + 64];
    char path[PATH_MAX + 64];
    struct jb_err err = {0};
    snprintf(embedded_data, sizeof embedded_data, "%s/data", o->out);
    struct evals_synth_opts so = {.seed = 0, .n = (int)o->limit};
    struct evals_synth_result sr;
    snprintf(path, sizeof path, "%s/data/synth-count/manifest.json", o->out);
    if (access(path, F_OK) != 0 && evals_synth_write(embedded_data, &so, &sr, &err) < 0)
        return harness_fail("%s", err.msg);
    for (int s = 0; s < o->n_suites && o->n_data < MAX_DATA; s++) {
        if (!evals_suite_is_synthetic(evals_suite_find(o->suites[s]))) continue;
        snprintf(synth_dirs[s], sizeof synth_dirs[s], "%s=%s/%s", o->suites[s], embedded_data,
                 evals_suite_name(evals_suite_find(o->suites[s])));
        o->data[o->n_data++] = synth_dirs[s];
    }
    return 0;
}

/* Every suite's records are read and checked now, so a bad dataset stops the run here. */
static int open_suites(const struct opts *o, struct run_state *st) {
    struct env *e = &st->e;
    struct jb_err err = {0};
    char buf[PATH_MAX];
    for (int s = 0; s < o->n_suites; s++) {
        const char *dir = data_dir_for(o, o->suites[s], buf, sizeof buf);
        if (!dir) return harness_fail("--suite %s: no --data directory for it", o->suites[s]);
        e->suites[s] = evals_suite_find(o->suites[s]);
        struct evals_loader_opts lo = {.limit = (size_t)o->limit};
        if (evals_loader_open(&e->loaders[s], e->suites[s], dir, &lo, &err) < 0)
            return harness_fail("%s", err.msg);
        e->n_suites++;
        st->n_items += evals_loader_n_samples(e->loaders[s]);
    }
    return 0;
}

/* The meter, the carbon factor, the records' energy label, the idle baseline; then sampling
 * starts. */
static int open_meter(const struct opts *o, struct run_state *st) {
    struct env *e = &st->e;
    struct jb_err err = {0};
    struct meter_opts mo = {.backend = o->meter};
    if (meter_open(&e->meter, &mo, &err) < 0) return harness_fail("--meter: %s", err.msg);
    harness_log_meter_notes(e->meter);
    if (meter_carbon_lookup(o->region, &e->carbon, &err) < 0)
        return harness_fail("--region: %s", err.msg);
    meter_energy_label(e->meter, e->energy_source, sizeof e->energy_source);
    if (meter_source(e->meter) != METER_SOURCE_MEASURED)
        fprintf(stderr, "joulebench run: ESTIMATED energy: this machine has no readable energy "
                        "counters (see 'joulebench meters'); figures are marked '~'\n");
    e->t_offset_s = reports_record_power_t_end(st->w);
    if (e->t_offset_s > 0) e->t_offset_s += 1; /* a visible gap where the run was interrupted */
    if (o->idle_s > 0) {
        fprintf(stderr, "joulebench run: measuring the idle baseline (%.0f s)\n", o->idle_s);
        if (meter_idle_measure(e->meter, o->idle_s, &err) < 0) return harness_fail("%s", err.msg);
    }
    if (meter_start(e->meter, &err) < 0) return harness_fail("%s", err.msg);
    return 0;
}

/* run.json's blocks as they stand at the start, the sample table and the progress line. */
static int start_records(const struct opts *o, struct run_state *st) {
    char now[32];
    jb_time_iso8601(now, sizeof now);
    st->runj = json_pack("{s:{s:s, s:s, s:s}, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "tool", "name",
                         PACKAGE_NAME, "version", PACKAGE_VERSION, "commit", JB_GIT_COMMIT,
                         "status", "running", "started_at", now, "machine",
                         harness_machine_json(), "models", json_incref(st->models), "suites",
                         suites_json(&st->e), "meter", meter_json(&st->e, o), "carbon",
                         carbon_json(&st->e.carbon));
    st->items = calloc(st->n_items ? st->n_items : 1, sizeof *st->items);
    if (!st->runj || !st->items) return harness_fail("out of memory");
    st->prog = harness_progress_new((int)st->n_items * o->n_models, isatty(2), stderr);
    return 0;
}

/* The items of every suite for the model called name, with up to 8 references each as
 * strings for samples.jsonl (in refs, k * 8 of them). Returns the number of items. */
static size_t fill_items(struct run_state *st, const char *name, const char **refs) {
    const struct env *e = &st->e;
    size_t k = 0;
    for (int s = 0; s < e->n_suites; s++) {
        evals_loader_rewind(e->loaders[s]);
        const struct evals_sample *x;
        while (k < st->n_items && evals_loader_next(e->loaders[s], &x) == 1) {
            size_t nr = evals_sample_n_refs(x);
            if (nr > 8) nr = 8;
            for (size_t r = 0; r < nr; r++) refs[k * 8 + r] = evals_sample_ref(x, r);
            st->items[k] = (struct run_item){
                .model = name,
                .suite = evals_suite_name(e->suites[s]),
                .id = evals_sample_id(x),
                .prompt = evals_sample_prompt(x),
                .image_path = evals_sample_image_path(x),
                .refs = refs + k * 8,
                .n_refs = nr,
                .max_new_tokens = evals_sample_max_new_tokens(x),
                .handle = x,
            };
            k++;
        }
    }
    return k;
}

/* One model: loaded (its block added to run.json), every item through the sample loop, freed.
 * *done_before counts the samples done so far, for the progress. */
static int run_model(const struct opts *o, struct run_state *st, int mi, int *done_before) {
    struct env *e = &st->e;
    struct jb_err err = {0};
    const char *name = model_name(o->models[mi]);
    struct molmo_load_opts lo = {.n_threads = o->threads};
    meter_mark(e->meter, "", -1, NULL);
    if (molmo_model_load(&e->model, o->models[mi], &lo, &err) < 0)
        return harness_fail("%s", err.msg);
    json_array_append_new(st->models, model_json(name, o->models[mi], e->model));
    const char **refs = calloc(st->n_items * 8 + 1, sizeof *refs);
    int status = 0;
    if (!refs) {
        status = harness_fail("out of memory");
    } else {
        size_t k = fill_items(st, name, refs);
        struct run_ops ops = {e, eval, drain_power, e->energy_source,
                              meter_source(e->meter) == METER_SOURCE_ESTIMATED};
        struct run_loop_opts lopt = {.summary_every = 10, .progress_base = *done_before};
        int done = 0;
        if (harness_run_loop(st->w, st->runj, st->items, (int)k, &ops, &lopt, st->prog, &done,
                             &err) < 0)
            status = harness_fail("%s", err.msg);
        *done_before += done;
    }
    free(refs);
    molmo_model_free(e->model);
    e->model = NULL;
    return status;
}

/* The end: the meter's totals, the final run.json, the reports and the history; prints the
 * run directory and the reports' paths. */
static int finish(const struct opts *o, struct run_state *st) {
    struct env *e = &st->e;
    struct jb_err err = {0};
    if (meter_stop(e->meter, &err) < 0 || drain_power(e, st->w, &err) < 0)
        return harness_fail("%s", err.msg);
    char now[32];
    jb_time_iso8601(now, sizeof now);
    json_object_set_new(st->runj, "status", json_string("complete"));
    json_object_set_new(st->runj, "finished_at", json_string(now));
    json_object_set_new(st->runj, "meter", meter_json(e, o));
    if (reports_record_flush(st->w, &err) < 0 || reports_record_summary(st->w, st->runj, &err) < 0)
        return harness_fail("%s", err.msg);
    struct reports_run *rr = NULL;
    char *written[3] = {NULL, NULL, NULL};
    int status = 0;
    if (reports_run_load(&rr, o->out, &err) < 0 ||
        reports_write(&rr, 1, st->mask, o->out, written, &err) < 0 ||
        (o->history && reports_history_append(o->history, rr, &err) < 0))
        status = harness_fail("%s", err.msg);
    reports_run_free(rr);
    printf("%s\n", o->out);
    for (int i = 0; i < 3; i++) {
        if (written[i] && !status) printf("%s\n", written[i]);
        free(written[i]);
    }
    return status;
}

static void state_free(struct run_state *st) {
    harness_progress_free(st->prog);
    reports_record_close(st->w);
    for (int s = 0; s < st->e.n_suites; s++) evals_loader_close(st->e.loaders[s]);
    molmo_model_free(st->e.model);
    meter_close(st->e.meter);
    json_decref(st->runj);
    json_decref(st->models);
    free(st->items);
    free(st->sdup);
}

static int run(int argc, char **argv) {
    struct opts o = {.idle_s = 5, .formats = "md,html,csv"};
    struct run_state st = {.e = {.max_tokens = 0}};
    const char *suite_arg = NULL;
    int status = parse_args(&o, argc, argv, &suite_arg, &st);
    if (status >= 0) return status;
    st.e.max_tokens = o.max_tokens;
    st.models = json_array();
    struct jb_err err = {0};
    /* The default models are checked before anything is written; without --resume a run
     * directory that already has samples is refused when it opens. */
    status = check_inputs(&o, suite_arg, &st);
    if (!status && st.embedded) status = add_default_models(&o);
    if (!status && reports_record_open(&st.w, o.out, o.resume, &err) < 0)
        status = harness_fail("%s", err.msg);
    if (!status && st.need_synth) status = add_synth_data(&o);
    if (!status) status = open_suites(&o, &st);
    if (!status) status = open_meter(&o, &st);
    if (!status) status = start_records(&o, &st);
    int done_before = 0;
    for (int mi = 0; mi < o.n_models && !status; mi++)
        status = run_model(&o, &st, mi, &done_before);
    harness_progress_free(st.prog);
    st.prog = NULL;
    if (!status) status = finish(&o, &st);
    state_free(&st);
    return status;
}

const struct harness_cmd cmd_run = {
    .name = "run",
    .summary = "evaluate models on suites under the meter; write results and reports",
    .run = run,
    .usage = usage,
};
