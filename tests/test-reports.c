#include "config.h"

#include "reports/reports.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "tests/jb-test.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *csv(const char *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(reports_csv_field(f, s), 0);
    fclose(f);
    return buf;
}

/* RFC 4180 §2: fields with commas, quotes or line breaks are quoted; quotes are doubled. */
Test(csv, quotes_only_when_needed) {
    char *a = csv("synth-chart");
    cr_assert_str_eq(a, "synth-chart");
    char *b = csv("chart, bar \"v2\"");
    cr_assert_str_eq(b, "\"chart, bar \"\"v2\"\"\"");
    char *c = csv("two\nlines");
    cr_assert_str_eq(c, "\"two\nlines\"");
    char *d = csv(" padded");
    cr_assert_str_eq(d, "\" padded\"");
    free(a);
    free(b);
    free(c);
    free(d);
}

/* ---- fixtures: run directories written through the record writer ---- */

struct fixture {
    const char *suite, *model, *energy_source;
    int n;
    double idle_w;
    double (*score)(int i);
    double energy_scale; /* every phase energy is multiplied by this */
    /* work counters; 0 = the defaults (4 tokens out, 2 CPU s, 10 GFLOP) */
    double tokens_scale, cpu_scale, flop_scale;
    const char *cpu_model; /* NULL = "Test CPU" */
    int threads;           /* run.json models[].n_threads; 0 = 1 */
    bool no_work;          /* records written before the work counters */
};

/* 3 of every 4 right: i % 4 != 1. */
static double score_3of4(int i) {
    return i % 4 == 1 ? 0.0 : 1.0;
}

/* Writes DIR with run.json, samples.jsonl and power.csv. Sample i: phases vision/prefill/decode
 * take 0.5/0.25/0.25 s and 2/1/1 J (times energy_scale), so 4 J and 1 s per sample, with an
 * attribution bound of 0.01 J. */
static void write_run(const char *dir, const struct fixture *fx) {
    struct jb_err err = {0};
    struct reports_record *w = NULL;
    cr_assert_eq(reports_record_open(&w, dir, false, &err), 0, "%s", err.msg);
    json_t *run = json_pack(
        "{s:{s:s,s:s,s:s}, s:s, s:{s:s,s:i,s:I,s:s,s:s}, s:[{s:s,s:s,s:I,s:s,s:i}],"
        " s:{s:[s],s:[s],s:i,s:s,s:f}, s:{s:s,s:f,s:s,s:i,s:f}}",
        "tool", "name", "joulebench", "version", "0.1.0", "commit", "abc123def456", "status",
        "complete", "machine", "cpu_model", fx->cpu_model ? fx->cpu_model : "Test CPU", "n_cores", 2, "memory_bytes",
        (json_int_t)8 << 30, "kernel", "6.1", "gpu", "none", "models", "name", fx->model, "path",
        "/m", "n_params", (json_int_t)1000, "dtype", "f32", "n_threads",
        fx->threads ? fx->threads : 1, "meter", "backends",
        "powercap", "domains", "package-0", "interval_ms", 100, "energy_source", fx->energy_source,
        "idle_power_w", fx->idle_w, "carbon", "region", "WORLD", "grid_g_per_kwh", 481.0, "source",
        "Ember", "year", 2023, "pue", 1.0);
    cr_assert_not_null(run);
    for (int i = 0; i < fx->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "q%03d", i);
        double k = fx->energy_scale;
        json_t *s = json_pack("{s:s,s:s,s:s,s:s,s:[s],s:f,s:i,s:i,s:f,s:{s:f,s:f,s:f},"
                              "s:{s:f,s:f,s:f},s:f,s:f,s:f,s:s}",
                              "model", fx->model, "suite", fx->suite, "id", id, "prediction", "42",
                              "references", "42", "score", fx->score(i), "n_tokens_in", 600,
                              "n_tokens_out",
                              (int)lround(4 * (fx->tokens_scale > 0 ? fx->tokens_scale : 1)),
                              "t_start_s", 1.0 * i, "time_s", "vision", 0.5,
                              "prefill", 0.25, "decode", 0.25, "energy_j", "vision", 2.0 * k,
                              "prefill", 1.0 * k, "decode", 1.0 * k, "time_total_s", 1.0,
                              "energy_total_j", 4.0 * k, "energy_bound_j", 0.01,
                              "energy_source", fx->energy_source);
        if (!fx->no_work) {
            double cpu = 2.0 * (fx->cpu_scale > 0 ? fx->cpu_scale : 1);
            double fl = 1e10 * (fx->flop_scale > 0 ? fx->flop_scale : 1);
            json_object_set_new(s, "cpu_s", json_real(cpu));
            json_object_set_new(s, "work",
                                json_pack("{s:i,s:i,s:{s:f,s:f,s:f},s:f,s:f}", "n_crops", 5,
                                          "n_image_tokens", 576, "flop", "vision", 0.6 * fl,
                                          "prefill", 0.3 * fl, "decode", 0.1 * fl, "flop_total",
                                          fl, "weight_bytes_read", 2e9));
        }
        cr_assert_eq(reports_record_sample(w, s, &err), 0, "%s", err.msg);
        json_decref(s);
        for (int t = 0; t < 10; t++)
            cr_assert_eq(reports_record_power(w, i + t / 10.0, "package-0", 4.0 * k, &err), 0);
    }
    cr_assert_eq(reports_record_summary(w, run, &err), 0, "%s", err.msg);
    cr_assert_eq(reports_record_flush(w, &err), 0);
    reports_record_close(w);
    json_decref(run);
}

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static char *slurp(const char *dir, const char *name) {
    char *p = path_in(dir, name), *buf = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(p, &buf, NULL, &err), 0, "%s", err.msg);
    free(p);
    return buf;
}

static const struct fixture base4 = {.suite = "synth-chart", .model = "tiny",
                                     .energy_source = "measured:powercap", .n = 4, .idle_w = 1.5,
                                     .score = score_3of4, .energy_scale = 1.0};

/* run.json carries schema_version and results computed from the samples:
 * 4 samples, 3 right -> accuracy 0.75; 4 x 4 J = 16 J; 16 - 1.5 W x 4 s = 10 J above idle. */
Test(record, run_json_summary_matches_hand_computed_values) {
    char *dir = jb_test_tmpdir();
    write_run(dir, &base4);
    char *p = path_in(dir, "run.json");
    json_t *run = json_load_file(p, 0, NULL);
    cr_assert_not_null(run);
    cr_assert_eq(json_integer_value(json_object_get(run, "schema_version")), 1);
    json_t *r0 = json_array_get(json_object_get(run, "results"), 0);
    cr_assert_not_null(r0);
    cr_assert_eq(json_integer_value(json_object_get(r0, "n_samples")), 4);
    cr_assert_float_eq(json_real_value(json_object_get(r0, "accuracy")), 0.75, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(r0, "energy_total_j")), 16.0, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(r0, "energy_above_idle_j")), 10.0, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(r0, "j_per_sample")), 4.0, 1e-12);
    /* 3 / (16 J / 1000) = 187.5 per kJ; 16 J / 3.6e6 x 481 g/kWh = 0.0021378 g. */
    cr_assert_float_eq(json_real_value(json_object_get(r0, "score_per_kj")), 187.5, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(r0, "co2e_g")), 16 / 3.6e6 * 481, 1e-12);
    /* Wilson 95% interval for 3/4: 0.3006 .. 0.9544 (Newcombe 1998 method 3; recomputed from
     * the formula: 0.3006418, 0.9544127). */
    json_t *ci = json_object_get(r0, "accuracy_ci95");
    cr_assert_float_eq(json_real_value(json_array_get(ci, 0)), 0.3006, 1e-4);
    cr_assert_float_eq(json_real_value(json_array_get(ci, 1)), 0.9544, 1e-4);
    json_decref(run);
    free(p);
    jb_test_rmtree(dir);
    free(dir);
}

/* A crash mid-line leaves a partial last line: resume drops it and knows the finished ids. */
Test(record, resume_drops_a_partial_line_and_knows_finished_ids) {
    char *dir = jb_test_tmpdir();
    write_run(dir, &base4);
    char *p = path_in(dir, "samples.jsonl");
    FILE *f = fopen(p, "a");
    fputs("{\"model\":\"tiny\",\"suite\":\"synth-chart\",\"id\":\"q0", f);
    fclose(f);
    struct jb_err err = {0};
    struct reports_record *w = NULL;
    cr_assert_neq(reports_record_open(&w, dir, false, &err), 0, "needs --resume");
    cr_assert(strstr(err.msg, "--resume"), "%s", err.msg);
    cr_assert_eq(reports_record_open(&w, dir, true, &err), 0, "%s", err.msg);
    cr_assert_eq(reports_record_n_samples(w), 4);
    cr_assert(reports_record_has(w, "tiny", "synth-chart", "q003"));
    cr_assert_not(reports_record_has(w, "tiny", "synth-chart", "q004"));
    cr_assert_float_eq(reports_record_power_t_end(w), 3.9, 1e-9);
    reports_record_close(w);
    char *text = slurp(dir, "samples.jsonl");
    size_t len = strlen(text);
    cr_assert_eq(text[len - 1], '\n', "the partial line is gone");
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    cr_assert_eq(lines, 4);
    free(text);
    free(p);
    jb_test_rmtree(dir);
    free(dir);
}

/* Every format from one run, checked against the hand-computed figures above. */
Test(report, markdown_csv_and_html_carry_the_hand_computed_figures) {
    char *root = jb_test_tmpdir();
    char *dir = path_in(root, "base");
    write_run(dir, &base4);
    struct jb_test_proc pr;
    jb_test_run(&pr, "'%s' report '%s'", jb_test_bin(), dir);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    cr_assert(strstr(pr.out, "report.html"), "%s", pr.out);
    jb_test_proc_free(&pr);

    char *md = slurp(dir, "report.md");
    /* 75.0 [30.1, 95.4]; J/sample 4; above idle 10 J / 4 = 2.5; 187.5 per kJ; 4 s; 16 J;
     * 0.002138 g. */
    cr_assert(strstr(md, "| base | tiny | synth-chart | 4 | 75.0 [30.1, 95.4] | 4 | 2.5 | 187.5 "
                         "| 4 | 16 | 0.002138 | measured |"),
              "%s", md);
    /* vision 2 of 4 J = 50%. */
    cr_assert(strstr(md, "| base | tiny | synth-chart | vision | 2 | 8 | 50.0 |"), "%s", md);
    cr_assert(strstr(md, "481 g CO2e/kWh, PUE 1.00; CO2e is estimated (grid factor Ember, 2023)"),
              "%s", md);
    cr_assert_null(strstr(md, "ESTIMATED"));
    /* 4 samples x 0.01 J attribution bound. */
    cr_assert(strstr(md, "attribution uncertainty tiny/synth-chart: ±0.04 J of 16 J"), "%s", md);
    free(md);

    char *c = slurp(dir, "report.csv");
    cr_assert(strstr(c, "\nbase,tiny,synth-chart,4,0.75,0.300642,0.954413,3,4,16,10,4,2.5,187.5,"
                        "0.00213778,0.04,0,2,1,1,0,8,4,4,measured:powercap,481,1\n"),
              "%s", c);
    free(c);

    char *h = slurp(dir, "report.html");
    cr_assert(strstr(h, "<svg id=\"plot-pareto\""));
    cr_assert(strstr(h, "<svg id=\"plot-power-0\""));
    cr_assert(strstr(h, "<svg id=\"plot-phases\""));
    cr_assert(strstr(h, "class=\"band\""), "phase bands drawn");
    cr_assert_null(strstr(h, "<script"), "self-contained, no script");
    free(h);
    free(dir);
    jb_test_rmtree(root);
    free(root);
}

/* energy.md §5: estimated energy prints with ~ and an ESTIMATED banner. */
Test(report, estimated_energy_is_marked_with_tilde_and_banner) {
    char *root = jb_test_tmpdir();
    char *dir = path_in(root, "est");
    struct fixture fx = base4;
    fx.energy_source = "estimated:tdp-util";
    write_run(dir, &fx);
    struct jb_test_proc pr;
    jb_test_run(&pr, "'%s' report '%s' --format md,html", jb_test_bin(), dir);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    jb_test_proc_free(&pr);
    char *md = slurp(dir, "report.md");
    cr_assert(strstr(md, "> **ESTIMATED**"), "%s", md);
    cr_assert(strstr(md, "| ~4 | ~2.5 | ~187.5 | 4 | ~16 | ~0.002138 | ESTIMATED |"), "%s", md);
    free(md);
    char *h = slurp(dir, "report.html");
    cr_assert(strstr(h, "class=\"estimated\">ESTIMATED"));
    free(h);
    char *csvp = path_in(dir, "report.csv");
    cr_assert_neq(access(csvp, F_OK), 0, "csv not asked for");
    free(csvp);
    free(dir);
    jb_test_rmtree(root);
    free(root);
}

Test(report, several_runs_make_one_comparison_and_bad_input_exits_two) {
    char *root = jb_test_tmpdir();
    char *a = path_in(root, "small"), *b = path_in(root, "large"), *out = path_in(root, "cmp");
    write_run(a, &base4);
    struct fixture fx = base4;
    fx.model = "large";
    fx.energy_scale = 3;
    write_run(b, &fx);
    struct jb_test_proc pr;
    jb_test_run(&pr, "mkdir '%s' && '%s' report '%s' '%s' --out '%s' --format md", out,
                jb_test_bin(), a, b, out);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    jb_test_proc_free(&pr);
    char *md = slurp(out, "report.md");
    cr_assert(strstr(md, "| small | tiny | synth-chart |"), "%s", md);
    cr_assert(strstr(md, "| large | large | synth-chart | 4 | 75.0 [30.1, 95.4] | 12 |"), "%s", md);
    free(md);
    jb_test_run(&pr, "'%s' report '%s/nope'", jb_test_bin(), root);
    cr_assert_eq(pr.status, 2);
    cr_assert(strstr(pr.err, "nope/run.json"), "%s", pr.err);
    jb_test_proc_free(&pr);
    jb_test_run(&pr, "'%s' report '%s' --format pdf", jb_test_bin(), a);
    cr_assert_eq(pr.status, 2);
    cr_assert(strstr(pr.err, "pdf"), "%s", pr.err);
    jb_test_proc_free(&pr);
    free(a);
    free(b);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

/* ---- compare ---- */

/* 100 samples, 80 right (i % 5 != 0). */
static double score_80(int i) {
    return i % 5 == 0 ? 0.0 : 1.0;
}
/* The same with 30 of the right ones (i % 5 != 0 and i < 38: 30 of them) now wrong. */
static double score_80_lowered(int i) {
    return i % 5 == 0 || i < 38 ? 0.0 : 1.0;
}
/* Partial credit: 0.9 everywhere; lowered copy: 0.6 on 30 samples. */
static double score_partial(int i) {
    (void)i;
    return 0.9;
}
static double score_partial_lowered(int i) {
    return i % 10 < 3 ? 0.6 : 0.9;
}

static const struct fixture cmp_base = {.suite = "synth-chart", .model = "tiny",
                                        .energy_source = "measured:powercap", .n = 100,
                                        .idle_w = 1.0, .score = score_80, .energy_scale = 1.0};

static int compare_status(const char *root, const struct fixture *b, const struct fixture *n,
                          const char *opts, char **out) {
    char *pb = path_in(root, "base"), *pn = path_in(root, "new");
    jb_test_rmtree(pb);
    jb_test_rmtree(pn);
    write_run(pb, b);
    write_run(pn, n);
    struct jb_test_proc pr;
    jb_test_run(&pr, "'%s' compare '%s' '%s' %s", jb_test_bin(), pb, pn, opts);
    int st = pr.status;
    if (out) {
        size_t l = strlen(pr.out) + strlen(pr.err) + 1;
        *out = malloc(l);
        snprintf(*out, l, "%s%s", pr.out, pr.err);
    }
    jb_test_proc_free(&pr);
    free(pb);
    free(pn);
    return st;
}

Test(compare, a_run_against_itself_passes) {
    char *root = jb_test_tmpdir(), *out = NULL;
    cr_assert_eq(compare_status(root, &cmp_base, &cmp_base, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "no significant regression"), "%s", out);
    cr_assert(strstr(out, "exact McNemar: 0 right→wrong, 0 wrong→right, p = 1"), "%s", out);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

/* b = 30 discordant pairs one way, c = 0: exact McNemar p = 2 x 0.5^30 = 1.86e-09. */
Test(compare, scores_lowered_on_30_percent_is_a_regression) {
    char *root = jb_test_tmpdir(), *out = NULL;
    struct fixture low = cmp_base;
    low.score = score_80_lowered;
    cr_assert_eq(compare_status(root, &cmp_base, &low, "", &out), 1, "%s", out);
    cr_assert(strstr(out, "30 right→wrong, 0 wrong→right, p = 1.86e-09"), "%s", out);
    cr_assert(strstr(out, "| accuracy % | 80.00 | 50.00 | -30.00 pts"), "%s", out);
    free(out);
    struct fixture pb = cmp_base, pn = cmp_base;
    pb.score = score_partial;
    pn.score = score_partial_lowered;
    cr_assert_eq(compare_status(root, &pb, &pn, "--markdown x.md", &out), 1, "%s", out);
    cr_assert(strstr(out, "paired bootstrap"), "%s", out);
    free(out);
    /* Within a generous tolerance the same drop passes: 30 pts < 40 pts. */
    cr_assert_eq(compare_status(root, &cmp_base, &low, "--max-accuracy-drop 40", &out), 0, "%s",
                 out);
    free(out);
    unlink("x.md");
    jb_test_rmtree(root);
    free(root);
}

Test(compare, a_run_of_another_suite_is_an_error) {
    char *root = jb_test_tmpdir(), *out = NULL;
    struct fixture other = cmp_base;
    other.suite = "synth-doc";
    cr_assert_eq(compare_status(root, &cmp_base, &other, "", &out), 2, "%s", out);
    cr_assert(strstr(out, "different suites (synth-chart vs synth-doc)"), "%s", out);
    free(out);
    struct jb_test_proc pr;
    jb_test_run(&pr, "'%s' compare '%s/none' '%s/none'", jb_test_bin(), root, root);
    cr_assert_eq(pr.status, 2);
    jb_test_proc_free(&pr);
    jb_test_rmtree(root);
    free(root);
}

/* Every sample costs 20% more: the ratio is 1.2 with a degenerate interval [1.2, 1.2]. */
Test(compare, energy_rise_beyond_tolerance_is_a_regression) {
    char *root = jb_test_tmpdir(), *out = NULL;
    struct fixture hot = cmp_base;
    hot.energy_scale = 1.2;
    cr_assert_eq(compare_status(root, &cmp_base, &hot, "", &out), 1, "%s", out);
    cr_assert(strstr(out, "+20.00% (+20.00%, +20.00%)"), "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &cmp_base, &hot, "--max-energy-rise 25", &out), 0, "%s", out);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

Test(compare, estimated_energy_never_passes_an_energy_gate) {
    char *root = jb_test_tmpdir(), *out = NULL;
    struct fixture est = cmp_base;
    est.energy_source = "estimated:tdp-util";
    cr_assert_eq(compare_status(root, &est, &est, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "not gated: estimated energy can never pass an energy gate"), "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &est, &est, "--max-energy-rise 50", &out), 1, "%s", out);
    cr_assert(strstr(out, "REGRESSION: estimated energy can never pass an energy gate"), "%s", out);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

/* The work and CPU-time gates need no energy counter: each +50% is caught (ratio 1.5 with a
 * degenerate interval), and a rise within the tolerance passes. */
Test(compare, work_and_cpu_rises_are_caught_without_a_meter) {
    char *root = jb_test_tmpdir(), *out = NULL;
    struct fixture est = cmp_base;
    est.energy_source = "estimated:tdp-util";
    struct fixture tok = est, flop = est, cpu = est;
    tok.tokens_scale = 1.5;
    flop.flop_scale = 1.5;
    cpu.cpu_scale = 1.5;
    cr_assert_eq(compare_status(root, &est, &tok, "", &out), 1, "%s", out);
    cr_assert(strstr(out, "| generated tokens/sample |  4 |  6 | +50.00% (+50.00%, +50.00%) | "
                          "work: tokens generated (deterministic, no meter) | REGRESSION"),
              "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &est, &flop, "", &out), 1, "%s", out);
    cr_assert(strstr(out, "| GFLOP/sample |  10 |  15 | +50.00%"), "%s", out);
    cr_assert(strstr(out, "FLOP counted from the shapes (deterministic, no meter) | REGRESSION"),
              "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &est, &cpu, "", &out), 1, "%s", out);
    cr_assert(strstr(out, "| CPU s/sample |  2 |  3 | +50.00% (+50.00%, +50.00%) | CPU seconds "
                          "(user + system) of the process, one machine | REGRESSION"),
              "%s", out);
    free(out);
    /* Runs on two threads: their CPU seconds are not gated unless asked for by name. */
    struct fixture est2 = est, cpu2 = cpu;
    est2.threads = cpu2.threads = 2;
    cr_assert_eq(compare_status(root, &est2, &cpu2, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "| CPU s/sample |  2 |  3 | +50.00% (+50.00%, +50.00%) | CPU seconds of "
                          "runs on 2 threads: they include the threads' waiting | not gated: "
                          "multi-threaded CPU seconds are too noisy"),
              "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &est2, &cpu2, "--max-cpu-rise 35", &out), 1, "%s", out);
    free(out);
    /* Within the tolerances: 50% < 60%. */
    cr_assert_eq(compare_status(root, &est, &tok, "--max-work-rise 60", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &est, &cpu, "--max-cpu-rise 60", &out), 0, "%s", out);
    free(out);
    /* Records from before the work counters: those gates say why they are not applied. */
    struct fixture old = est;
    old.no_work = true;
    cr_assert_eq(compare_status(root, &old, &cpu, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "not gated: a run without CPU seconds (older records)"), "%s", out);
    cr_assert(strstr(out, "not gated: a run without work counters (older records)"), "%s", out);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

/* Estimated energy is gated only with --gate-estimated, and then says it is an estimate. */
Test(compare, estimated_energy_is_gated_only_when_asked_and_labelled) {
    char *root = jb_test_tmpdir(), *out = NULL;
    struct fixture est = cmp_base, hot;
    est.energy_source = "estimated:tdp-util";
    hot = est;
    hot.energy_scale = 1.5;
    cr_assert_eq(compare_status(root, &est, &hot, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "not gated: estimated energy can never pass"), "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &est, &hot, "--gate-estimated", &out), 1, "%s", out);
    cr_assert(strstr(out, "| J/sample | ~4 | ~6 | +50.00% (+50.00%, +50.00%) | ESTIMATED "
                          "(estimated:tdp-util, the same estimate model) in both runs on 'Test "
                          "CPU': not a measurement | REGRESSION, estimated"),
              "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &est, &est, "--gate-estimated", &out), 0, "%s", out);
    cr_assert(strstr(out, "pass, estimated (tolerance +5%)"), "%s", out);
    free(out);
    /* One measured, one estimated: nothing to compare, even when asked. */
    cr_assert_eq(compare_status(root, &cmp_base, &hot, "--gate-estimated", &out), 2, "%s", out);
    cr_assert(strstr(out, "different machines (meter measured:powercap vs estimated:tdp-util)"),
              "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &cmp_base, &hot,
                                "--gate-estimated --allow-different-machines", &out),
                 0, "%s", out);
    cr_assert(strstr(out, "not gated: one run measured, the other estimated"), "%s", out);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

/* Runs of different CPUs: the time and energy gates are refused (and say why), the work and
 * accuracy gates still apply; asked for by name, a time gate is an error. */
Test(compare, runs_of_different_machines_are_refused_for_time_and_energy) {
    char *root = jb_test_tmpdir(), *out = NULL;
    struct fixture other = cmp_base;
    other.cpu_model = "Other CPU";
    other.cpu_scale = 1.5;
    other.energy_scale = 1.5;
    cr_assert_eq(compare_status(root, &cmp_base, &other, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "**Different machines** (CPU 'Test CPU' vs 'Other CPU')"), "%s", out);
    cr_assert(strstr(out, "| CPU s/sample |  2 |  3 | +50.00% (+50.00%, +50.00%) | runs of "
                          "different machines (CPU 'Test CPU' vs 'Other CPU') | refused: different "
                          "machines (pass --allow-different-machines) |"),
              "%s", out);
    cr_assert(strstr(out, "| J/sample |  4 |  6 | +50.00% (+50.00%, +50.00%) | runs of "
                          "different machines"),
              "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &cmp_base, &other, "--allow-different-machines", &out), 1,
                 "%s", out);
    cr_assert(strstr(out, "applied anyway (--allow-different-machines)"), "%s", out);
    free(out);
    cr_assert_eq(compare_status(root, &cmp_base, &other, "--max-cpu-rise 10", &out), 2, "%s", out);
    cr_assert(strstr(out, "ran on different machines (CPU 'Test CPU' vs 'Other CPU'): time and "
                          "energy gates compare runs of one machine; pass "
                          "--allow-different-machines"),
              "%s", out);
    free(out);
    /* The work gate needs no machine: a token rise on another CPU is still caught. */
    other.cpu_scale = other.energy_scale = 1;
    other.tokens_scale = 1.5;
    cr_assert_eq(compare_status(root, &cmp_base, &other, "", &out), 1, "%s", out);
    free(out);
    jb_test_rmtree(root);
    free(root);
}

/* ---- history ---- */

static double score_half(int i) {
    return i % 2 ? 1.0 : 0.0;
}

Test(history, appended_runs_print_as_a_trend) {
    char *root = jb_test_tmpdir();
    char *a = path_in(root, "r1"), *b = path_in(root, "r2"), *db = path_in(root, "h.sqlite");
    write_run(a, &base4);
    struct fixture fx = base4;
    fx.score = score_half;
    fx.energy_scale = 1.25;
    write_run(b, &fx);
    struct jb_err err = {0};
    struct reports_run *r = NULL;
    cr_assert_eq(reports_run_load(&r, a, &err), 0, "%s", err.msg);
    cr_assert_eq(reports_history_append(db, r, &err), 0, "%s", err.msg);
    reports_run_free(r);
    struct jb_test_proc pr;
    jb_test_run(&pr, "'%s' history '%s' --add '%s' --model tiny", jb_test_bin(), db, b);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    /* r1: 75% at 4 J; r2: 50% at 5 J -> -25.00 pts, +25.0 %. */
    cr_assert(strstr(pr.out, "abc123def456"), "%s", pr.out);
    cr_assert(strstr(pr.out, "75.00"), "%s", pr.out);
    cr_assert(strstr(pr.out, "50.00   -25.00           5    +25.0"), "%s", pr.out);
    jb_test_proc_free(&pr);
    jb_test_run(&pr, "'%s' history '%s' --suite other", jb_test_bin(), db);
    cr_assert_eq(pr.status, 0);
    cr_assert_null(strstr(pr.out, "tiny"), "%s", pr.out);
    jb_test_proc_free(&pr);
    jb_test_run(&pr, "'%s' history '%s/missing.sqlite'", jb_test_bin(), root);
    cr_assert_eq(pr.status, 2);
    jb_test_proc_free(&pr);
    free(a);
    free(b);
    free(db);
    jb_test_rmtree(root);
    free(root);
}

/* ---- the HTML report in a real browser ---- */

/* Opens a copy of the page at html_path, with a probe script added at the top of <head> that
 * records script errors and, after load, the rendered size of every plot, in headless Chromium;
 * every console message Chromium logs (failed loads, errors) counts as a failure, since the
 * pages themselves have no script and load nothing. Asserts that each plot of ids[] (prefixes
 * "plot-x=") is drawn at a real size (more than the 2 px its CSS border alone would give a
 * zero-size SVG) with shapes in it. Skips without chromium. */
static void chromium_check_plots(const char *root, const char *html_path, const char *const *ids,
                                 int n_ids) {
    struct jb_test_proc pr;
    jb_test_run(&pr, "command -v chromium");
    int have = pr.status == 0;
    jb_test_proc_free(&pr);
    if (!have) cr_skip_test("chromium is not installed (apt-get install chromium)");
    char *html = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(html_path, &html, NULL, &err), 0, "%s", err.msg);
    char *head = strstr(html, "<head>");
    cr_assert_not_null(head);
    static const char probe[] =
        "<script>(function(){var errs=[];function note(m){errs.push(String(m));}"
        "window.addEventListener('error',function(e){note(e.message||('failed to load '+"
        "((e.target&&(e.target.src||e.target.href))||'?')));},true);"
        "['error','warn'].forEach(function(k){var f=console[k];console[k]=function(){"
        "note(k+': '+Array.prototype.join.call(arguments,' '));return "
        "f.apply(console,arguments);};});"
        "window.addEventListener('load',function(){var o=[];"
        "document.querySelectorAll('svg.plot').forEach(function(s){var r=s.getBoundingClientRect();"
        "o.push(s.id+'='+Math.round(r.width)+'x'+Math.round(r.height)+':'+"
        "s.querySelectorAll('circle,rect,polyline').length);});"
        "var d=document.createElement('pre');d.id='jb-check';d.textContent='['+o.join(' ')+']';"
        "document.body.appendChild(d);if(errs.length){var e=document.createElement('pre');"
        "e.id='jb-error';e.textContent=errs.join('\\n');document.body.appendChild(e);}});})();"
        "</script>";
    char *probed = path_in(root, "probed.html");
    FILE *f = fopen(probed, "w");
    cr_assert_not_null(f);
    fwrite(html, 1, (size_t)(head + 6 - html), f);
    fputs(probe, f);
    fputs(head + 6, f);
    fclose(f);
    jb_test_run(&pr,
                "timeout 90 chromium --headless --no-sandbox --disable-gpu "
                "--disable-background-networking --no-first-run --user-data-dir='%s/profile' "
                "--enable-logging=stderr --v=0 --virtual-time-budget=3000 --dump-dom "
                "'file://%s'",
                root, probed);
    cr_assert_eq(pr.status, 0, "chromium failed: %s", pr.err);
    cr_assert_null(strstr(pr.err, ":CONSOLE"), "console messages: %s", pr.err);
    cr_assert_null(strstr(pr.out, "<pre id=\"jb-error\">"), "script error: %s", pr.out);
    char *check = strstr(pr.out, "<pre id=\"jb-check\">[");
    cr_assert_not_null(check, "the probe did not run: %.2000s", pr.out);
    for (int i = 0; i < n_ids; i++) {
        char *p = strstr(check, ids[i]);
        cr_assert_not_null(p, "%s missing in %.300s", ids[i], check);
        int w = 0, h = 0, shapes = 0;
        cr_assert_eq(sscanf(p + strlen(ids[i]), "%dx%d:%d", &w, &h, &shapes), 3, "%.300s", check);
        cr_assert(w > 16 && h > 16 && shapes > 0, "%s %dx%d, %d shapes", ids[i], w, h, shapes);
    }
    jb_test_proc_free(&pr);
    free(html);
    free(probed);
}

Test(html, renders_in_chromium_with_plots_and_no_console_errors, .timeout = 120) {
    char *root = jb_test_tmpdir();
    char *dir = path_in(root, "base");
    write_run(dir, &base4);
    struct jb_test_proc pr;
    jb_test_run(&pr, "'%s' report '%s' --format html", jb_test_bin(), dir);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    jb_test_proc_free(&pr);
    char *html = path_in(dir, "report.html");
    /* Three plots (Pareto, one power trace, phase split). */
    const char *const ids[] = {"plot-pareto=", "plot-power-0=", "plot-phases="};
    chromium_check_plots(root, html, ids, 3);
    free(html);
    free(dir);
    jb_test_rmtree(root);
    free(root);
}

/* ---- the history trend page ---- */

/* Four runs appended to one history: the third raises generated tokens by 50% and drops
 * accuracy by 25 points, the fourth is estimated. The page has every plot, rings the
 * regressions, lists them, keeps measured and estimated energy in plots of their own, and
 * renders in a browser without console errors. */
Test(history, trend_page_marks_regressions_and_renders_in_chromium, .timeout = 120) {
    char *root = jb_test_tmpdir();
    char *db = path_in(root, "hist/h.sqlite"), *html = path_in(root, "pages/trend.html");
    struct fixture fx[4] = {base4, base4, base4, base4};
    fx[2].tokens_scale = 1.5;
    fx[2].score = score_half;
    fx[3].energy_source = "estimated:tdp-util";
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        char *dir = path_in(root, name);
        write_run(dir, &fx[i]);
        struct jb_test_proc pr;
        /* --add creates hist/ and the file; --html creates pages/ */
        jb_test_run(&pr, "'%s' history '%s' --add '%s' --html '%s'", jb_test_bin(), db, dir,
                    html);
        cr_assert_eq(pr.status, 0, "%s", pr.err);
        jb_test_proc_free(&pr);
        free(dir);
    }
    char *page = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(html, &page, NULL, &err), 0, "%s", err.msg);
    cr_assert(strstr(page, "4 rows over 4 runs, 1 model × suite line."), "%.400s", page);
    /* Regressions: tokens 4 -> 6 (+50.0%) and accuracy 75 -> 50 (-25.00 pts), both r1 -> r2. */
    cr_assert(strstr(page, "<h2 class=\"bad\">Regressions</h2>"), "%.2000s", page);
    cr_assert(strstr(page, "<td>tokens/sample</td><td>abc123def456 → abc123def456</td><td>4"
                           "</td><td>6</td><td class=\"bad\">+50.0%</td>"),
              "%.3000s", page);
    cr_assert(strstr(page, "<td>accuracy (%)</td><td>abc123def456 → abc123def456</td><td>75"
                           "</td><td>50</td><td class=\"bad\">-25.00 pts</td>"),
              "%.3000s", page);
    /* two regressions ringed (accuracy, tokens) and one recovery is no regression */
    int rings = 0;
    for (const char *p = page; (p = strstr(p, "class=\"point regression\"")); p++) rings++;
    cr_assert_eq(rings, 2, "%d rings", rings);
    /* the estimated run's J/sample sits in the estimated plot only */
    cr_assert(strstr(page, "tiny / synth-chart at abc123def456: ~4</title>"), "%.200s", page);
    free(page);
    const char *const ids[] = {"plot-accuracy=", "plot-energy-measured=",
                               "plot-energy-estimated=", "plot-tokens=", "plot-flop=",
                               "plot-cpu="};
    chromium_check_plots(root, html, ids, 6);
    free(db);
    free(html);
    jb_test_rmtree(root);
    free(root);
}

/* A history written before the work counters gets its new columns on the next append; its old
 * rows have no work figures and the page says so rather than plotting zeros. */
Test(history, an_older_history_is_migrated_in_place) {
    char *root = jb_test_tmpdir();
    char *db = path_in(root, "old.sqlite"), *dir = path_in(root, "r");
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h,
                              "CREATE TABLE runs (id INTEGER PRIMARY KEY, recorded_at TEXT NOT "
                              "NULL, git_commit TEXT NOT NULL, run_dir TEXT NOT NULL, model TEXT "
                              "NOT NULL, suite TEXT NOT NULL, n_samples INTEGER NOT NULL, "
                              "accuracy REAL NOT NULL, j_per_sample REAL NOT NULL, co2e_g REAL "
                              "NOT NULL, energy_source TEXT NOT NULL);"
                              "INSERT INTO runs VALUES (1, '2026-01-01T00:00:00Z', 'old1', '/r', "
                              "'tiny', 'synth-chart', 4, 0.5, 3.0, 0.1, 'measured:powercap');",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(h);
    struct jb_test_proc pr;
    char *html = path_in(root, "t.html");
    jb_test_run(&pr, "'%s' history '%s' --html '%s'", jb_test_bin(), db, html);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    jb_test_proc_free(&pr);
    char *page = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(html, &page, NULL, &err), 0, "%s", err.msg);
    cr_assert(strstr(page, "<h2>Generated tokens per sample (work)</h2>\n<p class=\"none\">"),
              "%s", page);
    free(page);
    write_run(dir, &base4);
    jb_test_run(&pr, "'%s' history '%s' --add '%s'", jb_test_bin(), db, dir);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    jb_test_proc_free(&pr);
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(h,
                                    "SELECT git_commit, tokens_out_per_sample, cpu_s_per_sample, "
                                    "cpu_model FROM runs ORDER BY id",
                                    -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "old1");
    cr_assert_eq(sqlite3_column_type(st, 1), SQLITE_NULL);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_float_eq(sqlite3_column_double(st, 1), 4.0, 1e-12);
    cr_assert_float_eq(sqlite3_column_double(st, 2), 2.0, 1e-12);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 3), "Test CPU");
    sqlite3_finalize(st);
    sqlite3_close(h);
    free(html);
    free(db);
    free(dir);
    jb_test_rmtree(root);
    free(root);
}

/* ---- commands create the directories they write into ---- */

Test(outputs, report_compare_and_history_create_missing_directories) {
    char *root = jb_test_tmpdir();
    char *dir = path_in(root, "run");
    write_run(dir, &base4);
    struct jb_test_proc pr;
    jb_test_run(&pr,
                "'%s' report '%s' --out '%s/new/reports' && '%s' compare '%s' '%s' --markdown "
                "'%s/md/deep/c.md' >/dev/null",
                jb_test_bin(), dir, root, jb_test_bin(), dir, dir, root);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    jb_test_proc_free(&pr);
    const char *made[] = {"new/reports/report.md", "new/reports/report.html",
                          "new/reports/report.csv", "md/deep/c.md"};
    for (int i = 0; i < 4; i++) {
        char *p = path_in(root, made[i]);
        cr_assert_eq(access(p, R_OK), 0, "%s was not written", made[i]);
        free(p);
    }
    /* A directory that cannot be made is still a clear error naming it. */
    jb_test_run(&pr, "touch '%s/file' && '%s' report '%s' --out '%s/file/sub'", root,
                jb_test_bin(), dir, root);
    cr_assert_eq(pr.status, 2, "%s", pr.err);
    cr_assert(strstr(pr.err, "file/sub/report.md: cannot create a temporary file: Not a directory"),
              "%s", pr.err);
    jb_test_proc_free(&pr);
    free(dir);
    jb_test_rmtree(root);
    free(root);
}

/* ---- one interval per score type: `score` and `run`/`report` agree ---- */

static double score_anls_mix(int i) {
    return i % 3 == 0 ? 0.75 : 1.0; /* "abcd" vs "abce": lev 1 of 4 */
}

/* The same partial-credit scores get the same 95% interval from `score` (a predictions file)
 * and from the run's records (run.json results, which `report` shows): the fixed-seed
 * bootstrap of common/jb-stats.c, not a normal interval in one and a bootstrap in the other. */
Test(intervals, score_and_run_records_give_partial_credit_the_same_interval) {
    char *root = jb_test_tmpdir();
    char *dir = path_in(root, "run"), *preds = path_in(root, "p.jsonl");
    struct fixture fx = base4;
    fx.n = 30;
    fx.score = score_anls_mix;
    write_run(dir, &fx);
    FILE *f = fopen(preds, "w");
    for (int i = 0; i < 30; i++)
        fprintf(f, "{\"id\": \"q%03d\", \"prediction\": \"%s\", \"references\": [\"abce\"]}\n", i,
                i % 3 == 0 ? "abcd" : "abce");
    fclose(f);
    struct jb_test_proc pr;
    jb_test_run(&pr, "'%s' score --metric anls --predictions '%s' --json '%s/s.json'",
                jb_test_bin(), preds, root);
    cr_assert_eq(pr.status, 0, "%s", pr.err);
    jb_test_proc_free(&pr);
    char *sj = path_in(root, "s.json"), *rj = path_in(dir, "run.json");
    json_t *s = json_load_file(sj, 0, NULL), *r = json_load_file(rj, 0, NULL);
    cr_assert(s && r);
    json_t *res = json_array_get(json_object_get(r, "results"), 0);
    double slo = json_number_value(json_array_get(json_object_get(s, "ci95"), 0));
    double shi = json_number_value(json_array_get(json_object_get(s, "ci95"), 1));
    double rlo = json_number_value(json_array_get(json_object_get(res, "accuracy_ci95"), 0));
    double rhi = json_number_value(json_array_get(json_object_get(res, "accuracy_ci95"), 1));
    cr_assert_float_eq(json_number_value(json_object_get(s, "mean")),
                       json_number_value(json_object_get(res, "accuracy")), 1e-12);
    cr_assert(slo < shi && slo > 0.8 && shi < 1.0, "score: [%f, %f]", slo, shi);
    cr_assert_float_eq(rlo, slo, 1e-12, "run.json %f vs score %f", rlo, slo);
    cr_assert_float_eq(rhi, shi, 1e-12, "run.json %f vs score %f", rhi, shi);
    cr_assert_str_eq(json_string_value(json_object_get(res, "accuracy_ci95_method")), "bootstrap");
    json_decref(s);
    json_decref(r);
    free(sj);
    free(rj);
    free(dir);
    free(preds);
    jb_test_rmtree(root);
    free(root);
}

/* Found by libFuzzer (issue 19): a power.csv line that starts with a NUL byte made strlen 0 and
 * `run --resume` read line[-1]. Such a line is damage: the file is cut before it, like a line
 * cut short by a crash, and the run goes on. */
Test(record, resume_cuts_power_csv_at_a_line_starting_with_nul) {
    char *dir = jb_test_tmpdir();
    char *p = path_in(dir, "power.csv");
    static const char text[] = "t_s,domain,watts\n1.5,package-0,10\n\0junk\n2.5,package-0,11\n";
    jb_test_write_file(p, text, sizeof text - 1);
    struct reports_record *w = NULL;
    struct jb_err err = {0};
    cr_assert_eq(reports_record_open(&w, dir, true, &err), 0, "%s", err.msg);
    cr_assert_float_eq(reports_record_power_t_end(w), 1.5, 1e-12);
    reports_record_close(w);
    char *back = slurp(dir, "power.csv");
    cr_assert_str_eq(back, "t_s,domain,watts\n1.5,package-0,10\n");
    free(back);
    free(p);
    jb_test_rmtree(dir);
    free(dir);
}
