/* `compare`: is NEW worse than BASE? Samples are paired by id, so each sample is its own
 * control: accuracy by exact McNemar (0/1 scores) or a paired bootstrap (partial credit); the
 * costs (J, generated tokens, FLOP, CPU seconds per sample) by a bootstrap interval of the ratio
 * of their means. Each gate says what it rests on (README "compare"): measured or estimated
 * energy, work counted from the shapes, CPU time of one machine. Fixed seed: the same two runs
 * always get the same verdict. */
#include "config.h"

#include "reports/reports-impl.h"

#include "common/jb-err.h"
#include "common/jb-stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void reports_compare_opts_init(struct reports_compare_opts *o) {
    *o = (struct reports_compare_opts){
        .max_accuracy_drop_pts = 1.0,
        .max_energy_rise_pct = 5.0,
        .energy_gate_required = false,
        .gate_estimated = false,
        .max_work_rise_pct = 5.0,
        .max_cpu_rise_pct = 35.0,
        .cpu_gate_required = false,
        .allow_different_machines = false,
        .seed = 20241015,
        .n_boot = 2000,
    };
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool has_suite(const struct reports_run *r, const char *suite) {
    for (int j = 0; j < r->n_g; j++)
        if (!strcmp(r->g[j].suite, suite)) return true;
    return false;
}

/* "a, b, c": the suites of r in order of appearance, without repeats. */
static void suite_list(const struct reports_run *r, char *buf, size_t len) {
    buf[0] = 0;
    for (int j = 0; j < r->n_g; j++) {
        bool seen = false;
        for (int k = 0; k < j; k++) seen |= !strcmp(r->g[k].suite, r->g[j].suite);
        if (seen) continue;
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s", l ? ", " : "", r->g[j].suite);
    }
}

static int n_models(const struct reports_run *r) {
    int n = 0;
    for (int j = 0; j < r->n_g; j++) {
        bool seen = false;
        for (int k = 0; k < j; k++) seen |= !strcmp(r->g[k].model, r->g[j].model);
        n += !seen;
    }
    return n;
}

static char *pair_key(const struct reports_sample *s, bool with_model) {
    size_t n = strlen(s->suite) + strlen(s->id) + strlen(s->model) + 3;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s\037%s\037%s", with_model ? s->model : "", s->suite, s->id);
    return k;
}


/* The paired costs, each gated on the ratio of its means. */
enum { C_ENERGY, C_TOKENS, C_FLOP, C_CPU, N_COST };

static const char *const cost_row[N_COST] = {"J/sample", "generated tokens/sample",
                                             "GFLOP/sample", "CPU s/sample"};

static double cost_of(const struct reports_sample *s, int c) {
    switch (c) {
    case C_ENERGY: return s->energy_total_j;
    case C_TOKENS: return (double)s->n_tokens_out;
    case C_FLOP: return s->flop_total / 1e9;
    default: return s->cpu_s;
    }
}

/* The distinct n_threads of run.json's models, "2" or "1,4"; "?" when absent. */
static void threads_of(const struct reports_run *r, char *buf, size_t len) {
    buf[0] = 0;
    const json_t *models = json_object_get(r->run, "models");
    size_t i;
    const json_t *m;
    json_array_foreach(models, i, m) {
        const json_t *t = json_object_get(m, "n_threads");
        if (!json_is_integer(t)) continue;
        char one[32];
        snprintf(one, sizeof one, "%lld", (long long)json_integer_value(t));
        bool seen = false;
        for (const char *p = buf; *p && !seen; p += strcspn(p, ",") + (p[strcspn(p, ",")] != 0))
            seen = strncmp(p, one, strlen(one)) == 0 &&
                   (p[strlen(one)] == ',' || p[strlen(one)] == 0);
        if (seen) continue;
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s", l ? "," : "", one);
    }
    if (!buf[0]) snprintf(buf, len, "?");
}

/* Whether both runs used one thread (every model of each: run.json models[].n_threads). */
static bool single_threaded(const struct reports_run *b, const struct reports_run *n) {
    char tb[128], tn[128];
    threads_of(b, tb, sizeof tb);
    threads_of(n, tn, sizeof tn);
    return !strcmp(tb, "1") && !strcmp(tn, "1");
}

/* Why base and new are not runs of one machine (CPU model, threads, meter), or "" when they
 * are: time and energy figures of different machines are not comparable. */
static void machine_diff(const struct reports_run *b, const struct reports_run *n, char *buf,
                         size_t len) {
    buf[0] = 0;
    const char *cb = reports_json_str(b->run, "machine.cpu_model", "unknown");
    const char *cn = reports_json_str(n->run, "machine.cpu_model", "unknown");
    char tb[128], tn[128];
    threads_of(b, tb, sizeof tb);
    threads_of(n, tn, sizeof tn);
    size_t l = 0;
    if (strcmp(cb, cn) != 0) l += (size_t)snprintf(buf + l, len - l, "CPU '%s' vs '%s'", cb, cn);
    if (l < len && strcmp(tb, tn) != 0)
        l += (size_t)snprintf(buf + l, len - l, "%sthreads %s vs %s", l ? "; " : "", tb, tn);
    if (l < len && strcmp(b->energy_source, n->energy_source) != 0)
        snprintf(buf + l, len - l, "%smeter %s vs %s", l ? "; " : "", b->energy_source,
                 n->energy_source);
}

/* One row of the verdict table. */
struct gate {
    bool shown, gated, regression, estimated;
    double vb, vn, ratio, lo, hi; /* means per sample and the ratio new / base with its CI */
    char rests_on[512], verdict[512];
};

/* The samples of both runs paired by key: the scores and the costs of each pair. */
struct pairs {
    int n, unpaired, b, c; /* b: right -> wrong, c: wrong -> right (0/1 scores) */
    bool binary, with_model, have[N_COST];
    double *acc_b, *acc_n, *cb[N_COST], *cn[N_COST]; /* one block, owned by acc_b */
};

/* What the comparison found: the accuracy test and one row per cost. */
struct verdicts {
    double mb, mn, diff_pts, d_lo, d_hi, p_acc;
    int n_boot;
    bool acc_reg;
    struct gate g[N_COST];
};

/* A ratio gate: a rise beyond tol_pct that the interval finds (lower bound above 1). */
static void ratio_verdict(struct gate *g, double tol_pct) {
    g->gated = true;
    g->regression = isfinite(g->ratio) && g->ratio - 1 > tol_pct / 100 && g->lo > 1;
    snprintf(g->verdict, sizeof g->verdict, "%s (tolerance +%.3g%%)",
             g->regression ? "REGRESSION" : "pass", tol_pct);
}

static void not_gated(struct gate *g, const char *fmt, const char *arg) {
    g->gated = false;
    snprintf(g->verdict, sizeof g->verdict, fmt, arg);
}

/* Both runs cover the same suites, or JB_EINVAL naming them. */
static int check_suites(const struct reports_run *base, const struct reports_run *nw, char *sb,
                        size_t len, struct jb_err *err) {
    char sn[1024];
    suite_list(base, sb, len);
    suite_list(nw, sn, sizeof sn);
    for (int j = 0; j < base->n_g; j++)
        if (!has_suite(nw, base->g[j].suite))
            return jb_err_set(err, JB_EINVAL, "%s and %s cover different suites (%s vs %s)",
                              base->dir, nw->dir, sb, sn);
    for (int j = 0; j < nw->n_g; j++)
        if (!has_suite(base, nw->g[j].suite))
            return jb_err_set(err, JB_EINVAL, "%s and %s cover different suites (%s vs %s)",
                              base->dir, nw->dir, sb, sn);
    return 0;
}

/* Pairs the samples by (model,) suite and id. */
static int pairs_build(const struct reports_run *base, const struct reports_run *nw,
                       struct pairs *p, struct jb_err *err) {
    *p = (struct pairs){.binary = true, .have = {true, true, true, true}};
    p->with_model = n_models(base) > 1 || n_models(nw) > 1;
    size_t cap = (size_t)nw->n_s + 1;
    json_t *index = json_object();
    p->acc_b = malloc(sizeof(double) * cap * (2 + 2 * N_COST));
    if (!index || !p->acc_b) {
        json_decref(index);
        return jb_err_set(err, JB_ENOMEM, "out of memory");
    }
    p->acc_n = p->acc_b + cap;
    for (int k = 0; k < N_COST; k++) {
        p->cb[k] = p->acc_b + (2 + 2 * (size_t)k) * cap;
        p->cn[k] = p->acc_b + (3 + 2 * (size_t)k) * cap;
    }
    int rc = 0;
    for (int i = 0; i < base->n_s && !rc; i++) {
        char *k = pair_key(&base->s[i], p->with_model);
        if (!k) rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        else json_object_set_new(index, k, json_integer(i));
        free(k);
    }
    for (int i = 0; i < nw->n_s && !rc; i++) {
        char *k = pair_key(&nw->s[i], p->with_model);
        if (!k) {
            rc = jb_err_set(err, JB_ENOMEM, "out of memory");
            break;
        }
        json_t *v = json_object_get(index, k);
        free(k);
        if (!v) {
            p->unpaired++;
            continue;
        }
        const struct reports_sample *x = &base->s[json_integer_value(v)], *y = &nw->s[i];
        int n = p->n++;
        p->acc_b[n] = x->score;
        p->acc_n[n] = y->score;
        for (int m = 0; m < N_COST; m++) {
            p->cb[m][n] = cost_of(x, m);
            p->cn[m][n] = cost_of(y, m);
            p->have[m] &= isfinite(p->cb[m][n]) && isfinite(p->cn[m][n]);
        }
        if ((x->score != 0 && x->score != 1) || (y->score != 0 && y->score != 1)) p->binary = false;
        p->b += x->score == 1 && y->score == 0;
        p->c += x->score == 0 && y->score == 1;
    }
    json_decref(index);
    p->unpaired += base->n_s - p->n;
    if (!rc && p->n == 0)
        rc = jb_err_set(err, JB_EINVAL, "%s and %s have no sample ids in common", base->dir,
                        nw->dir);
    return rc;
}

/* Point estimates, then the paired bootstrap: resampled pair indices give the accuracy
 * difference and every cost ratio from the same resamples. */
static int tests_run(const struct pairs *p, const struct reports_compare_opts *o,
                     struct verdicts *v, struct jb_err *err) {
    int np = p->n, B = o->n_boot > 0 ? o->n_boot : 2000;
    double sum_b[N_COST] = {0}, sum_n[N_COST] = {0};
    v->mb = v->mn = 0;
    for (int i = 0; i < np; i++) {
        v->mb += p->acc_b[i];
        v->mn += p->acc_n[i];
        for (int m = 0; m < N_COST; m++) {
            sum_b[m] += p->cb[m][i];
            sum_n[m] += p->cn[m][i];
        }
    }
    v->diff_pts = 100 * (v->mn - v->mb) / np;
    v->n_boot = B;
    double *d = malloc(sizeof(double) * (size_t)B * (1 + N_COST));
    if (!d) return jb_err_set(err, JB_ENOMEM, "out of memory");
    uint64_t st = o->seed;
    int le0 = 0, ge0 = 0;
    for (int k = 0; k < B; k++) {
        double sa = 0, sn = 0, xb[N_COST] = {0}, xn[N_COST] = {0};
        for (int i = 0; i < np; i++) {
            int j = (int)jb_rand_below(&st, (uint64_t)np);
            sa += p->acc_b[j];
            sn += p->acc_n[j];
            for (int m = 0; m < N_COST; m++) {
                xb[m] += p->cb[m][j];
                xn[m] += p->cn[m][j];
            }
        }
        d[k] = 100 * (sn - sa) / np;
        for (int m = 0; m < N_COST; m++)
            d[(size_t)(1 + m) * B + k] = xb[m] > 0 ? xn[m] / xb[m] : xn[m] > 0 ? INFINITY : 1;
        le0 += d[k] <= 0;
        ge0 += d[k] >= 0;
    }
    for (int m = 0; m <= N_COST; m++) qsort(d + (size_t)m * B, (size_t)B, sizeof *d, cmp_double);
    v->d_lo = reports_quantile(d, B, 0.025);
    v->d_hi = reports_quantile(d, B, 0.975);
    v->p_acc = p->binary ? reports_mcnemar_p(p->b, p->c)
                         : fmin(1.0, 2.0 * fmin((double)le0, (double)ge0) / B);
    v->acc_reg = v->diff_pts < -o->max_accuracy_drop_pts && v->p_acc < 0.05;
    for (int m = 0; m < N_COST; m++) {
        struct gate *g = &v->g[m];
        g->shown = p->have[m] || m == C_ENERGY;
        g->vb = sum_b[m] / np;
        g->vn = sum_n[m] / np;
        g->ratio = sum_b[m] > 0 ? sum_n[m] / sum_b[m] : sum_n[m] > 0 ? INFINITY : 1;
        g->lo = reports_quantile(d + (size_t)(1 + m) * B, B, 0.025);
        g->hi = reports_quantile(d + (size_t)(1 + m) * B, B, 0.975);
    }
    free(d);
    return 0;
}

/* Energy: measured against measured; estimates only when asked and only of one machine model
 * under one estimate model, and then labelled as such. */
static void energy_gate(const struct reports_run *base, const struct reports_run *nw,
                        const struct reports_compare_opts *o, const char *other_machine,
                        struct gate *ge) {
    ge->estimated = base->estimated || nw->estimated;
    const char *em_b = reports_json_str(base->run, "meter.estimate_model", "?");
    const char *em_n = reports_json_str(nw->run, "meter.estimate_model", "?");
    bool both_est = base->estimated && nw->estimated;
    if (other_machine) {
        snprintf(ge->rests_on, sizeof ge->rests_on, "runs of different machines (%s)",
                 other_machine);
        not_gated(ge, "%s", "refused: different machines (pass --allow-different-machines)");
    } else if (!ge->estimated) {
        snprintf(ge->rests_on, sizeof ge->rests_on, "measured (%s) in both runs",
                 nw->energy_source);
        ratio_verdict(ge, o->max_energy_rise_pct);
    } else if (o->gate_estimated && both_est && !strcmp(em_b, em_n)) {
        snprintf(ge->rests_on, sizeof ge->rests_on,
                 "ESTIMATED (%s, the same estimate model) in both runs on '%s': not a "
                 "measurement",
                 nw->energy_source, reports_json_str(nw->run, "machine.cpu_model", "unknown"));
        ratio_verdict(ge, o->max_energy_rise_pct);
        snprintf(ge->verdict, sizeof ge->verdict, "%s, estimated (tolerance +%.3g%%)",
                 ge->regression ? "REGRESSION" : "pass", o->max_energy_rise_pct);
    } else {
        snprintf(ge->rests_on, sizeof ge->rests_on, "%s in base, %s in new", base->energy_source,
                 nw->energy_source);
        if (o->gate_estimated && both_est)
            not_gated(ge, "%s", "not gated: the runs' estimate models differ");
        else if (o->gate_estimated)
            not_gated(ge, "%s", "not gated: one run measured, the other estimated");
        else if (o->energy_gate_required) {
            ge->gated = ge->regression = true;
            snprintf(ge->verdict, sizeof ge->verdict,
                     "REGRESSION: estimated energy can never pass an energy gate "
                     "(--gate-estimated gates estimates of one machine)");
        } else
            not_gated(ge, "%s",
                      "not gated: estimated energy can never pass an energy gate (figures for "
                      "information only; --gate-estimated gates estimates of one machine)");
    }
}

/* Work (counted: no meter and no machine needed) and CPU time (one machine; by default only
 * single-threaded runs: on more threads the CPU seconds include the thread pool's and
 * OpenBLAS's waiting, which moved by up to 87% between reruns of one commit, README). */
static void work_and_cpu_gates(const struct reports_run *base, const struct reports_run *nw,
                               const struct pairs *p, const struct reports_compare_opts *o,
                               const char *other_machine, struct gate *g) {
    for (int m = C_TOKENS; m <= C_FLOP; m++) {
        if (!g[m].shown) continue;
        snprintf(g[m].rests_on, sizeof g[m].rests_on, "%s",
                 m == C_TOKENS ? "work: tokens generated (deterministic, no meter)"
                               : "work: FLOP counted from the shapes (deterministic, no meter)");
        ratio_verdict(&g[m], o->max_work_rise_pct);
    }
    if (!g[C_FLOP].shown) {
        g[C_FLOP].shown = true;
        snprintf(g[C_FLOP].rests_on, sizeof g[C_FLOP].rests_on, "work counters");
        not_gated(&g[C_FLOP], "%s", "not gated: a run without work counters (older records)");
    }
    struct gate *gc = &g[C_CPU];
    gc->shown = true;
    if (!p->have[C_CPU]) {
        snprintf(gc->rests_on, sizeof gc->rests_on, "CPU seconds of the process");
        not_gated(gc, "%s", "not gated: a run without CPU seconds (older records)");
    } else if (other_machine) {
        snprintf(gc->rests_on, sizeof gc->rests_on, "runs of different machines (%s)",
                 other_machine);
        not_gated(gc, "%s", "refused: different machines (pass --allow-different-machines)");
    } else if (!o->cpu_gate_required && !single_threaded(base, nw)) {
        char tb[128];
        threads_of(nw, tb, sizeof tb);
        snprintf(gc->rests_on, sizeof gc->rests_on,
                 "CPU seconds of runs on %s threads: they include the threads' waiting", tb);
        not_gated(gc, "%s",
                  "not gated: multi-threaded CPU seconds are too noisy (run with --threads 1, "
                  "or pass --max-cpu-rise to gate anyway)");
    } else {
        snprintf(gc->rests_on, sizeof gc->rests_on,
                 "CPU seconds (user + system) of the process, one machine");
        ratio_verdict(gc, o->max_cpu_rise_pct);
    }
}

/* The per-suite details under the verdict table. */
static void md_per_suite(FILE *md, const struct reports_run *base, const struct reports_run *nw,
                         bool with_model) {
    char mark_b = base->estimated ? '~' : ' ', mark_n = nw->estimated ? '~' : ' ';
    fprintf(md, "\n<details><summary>per suite</summary>\n\n"
                "| model | suite | base acc %% | new acc %% | base J/sample | new J/sample | "
                "base tokens/sample | new tokens/sample | base CPU s/sample | new CPU "
                "s/sample |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int j = 0; j < nw->n_g; j++) {
        const struct reports_group *gn = &nw->g[j], *gb = NULL;
        for (int k = 0; k < base->n_g && !gb; k++)
            if (!strcmp(base->g[k].suite, gn->suite) &&
                (!with_model || !strcmp(base->g[k].model, gn->model)))
                gb = &base->g[k];
        if (!gb) continue;
        fprintf(md, "| %s | %s | %.2f | %.2f | %c%.4g | %c%.4g | %.4g | %.4g | %.4g | %.4g |\n",
                gn->model, gn->suite, 100 * gb->accuracy, 100 * gn->accuracy, mark_b,
                gb->j_per_sample, mark_n, gn->j_per_sample, gb->work.n_tokens_out,
                gn->work.n_tokens_out, gb->work.cpu_s, gn->work.cpu_s);
    }
    fprintf(md, "\n</details>\n");
}

/* The Markdown for a pull-request comment: the banner, one row per gate, the suites. */
static void md_write(FILE *md, const struct reports_run *base, const struct reports_run *nw,
                     const struct reports_compare_opts *o, const struct pairs *p,
                     const struct verdicts *v, const char *mdiff, bool refused, const char *sb,
                     enum reports_verdict verdict) {
    fprintf(md, "## joulebench compare: %s\n\n",
            verdict == REPORTS_PASS ? "no significant regression" : "REGRESSION");
    if (v->g[C_ENERGY].estimated)
        fprintf(md, "> **ESTIMATED** energy in %s%s%s: not measured, marked `~`.\n\n",
                base->estimated ? "base" : "", base->estimated && nw->estimated ? " and " : "",
                nw->estimated ? "new" : "");
    if (mdiff[0])
        fprintf(md,
                "> **Different machines** (%s): time and energy figures are not comparable; "
                "their gates are %s.\n\n",
                mdiff, refused ? "refused" : "applied anyway (--allow-different-machines)");
    fprintf(md, "Base `%s` (commit %s) vs new `%s` (commit %s): %d paired samples", base->label,
            reports_json_str(base->run, "tool.commit", "?"), nw->label,
            reports_json_str(nw->run, "tool.commit", "?"), p->n);
    if (p->unpaired) fprintf(md, ", %d without a partner (left out)", p->unpaired);
    fprintf(md, "; suites: %s. Bootstrap: %d resamples, seed %llu.\n\n", sb, v->n_boot, o->seed);
    fprintf(md, "| gate | base | new | change (95%% CI) | rests on | verdict |\n");
    fprintf(md, "|---|---:|---:|---:|---|---|\n");
    char test[160];
    if (p->binary)
        snprintf(test, sizeof test, "exact McNemar: %d right→wrong, %d wrong→right, p = %.3g",
                 p->b, p->c, v->p_acc);
    else
        snprintf(test, sizeof test, "paired bootstrap, %d resamples, seed %llu: p = %.3g",
                 v->n_boot, o->seed, v->p_acc);
    fprintf(md, "| accuracy %% | %.2f | %.2f | %+.2f pts (%+.2f, %+.2f) | scores; %s | %s "
                "(tolerance −%.3g pts) |\n",
            100 * v->mb / p->n, 100 * v->mn / p->n, v->diff_pts, v->d_lo, v->d_hi, test,
            v->acc_reg ? "REGRESSION" : "pass", o->max_accuracy_drop_pts);
    char mark_b = base->estimated ? '~' : ' ', mark_n = nw->estimated ? '~' : ' ';
    for (int m = 0; m < N_COST; m++) {
        const struct gate *g = &v->g[m];
        if (!g->shown) continue;
        char eb = m == C_ENERGY ? mark_b : ' ', en = m == C_ENERGY ? mark_n : ' ';
        if (isfinite(g->vb) && isfinite(g->vn))
            fprintf(md, "| %s | %c%.4g | %c%.4g | %+.2f%% (%+.2f%%, %+.2f%%) | %s | %s |\n",
                    cost_row[m], eb, g->vb, en, g->vn, 100 * (g->ratio - 1), 100 * (g->lo - 1),
                    100 * (g->hi - 1), g->rests_on, g->verdict);
        else
            fprintf(md, "| %s | – | – | – | %s | %s |\n", cost_row[m], g->rests_on, g->verdict);
    }
    md_per_suite(md, base, nw, p->with_model);
}

int reports_compare(const struct reports_run *base, const struct reports_run *nw,
                    const struct reports_compare_opts *o, FILE *md, enum reports_verdict *verdict,
                    struct jb_err *err) {
    char sb[1024], mdiff[768];
    int rc = check_suites(base, nw, sb, sizeof sb, err);
    if (rc) return rc;
    /* Time and energy gates compare one machine with itself; a gate the user asked for by
     * name cannot be quietly left out. */
    machine_diff(base, nw, mdiff, sizeof mdiff);
    bool refused = mdiff[0] && !o->allow_different_machines;
    if (refused && (o->energy_gate_required || o->gate_estimated || o->cpu_gate_required))
        return jb_err_set(err, JB_EINVAL,
                          "%s and %s ran on different machines (%s): time and energy gates "
                          "compare runs of one machine; pass --allow-different-machines to gate "
                          "them anyway",
                          base->dir, nw->dir, mdiff);
    struct pairs p;
    struct verdicts v = {0};
    if ((rc = pairs_build(base, nw, &p, err)) || (rc = tests_run(&p, o, &v, err))) goto out;
    energy_gate(base, nw, o, refused ? mdiff : NULL, &v.g[C_ENERGY]);
    work_and_cpu_gates(base, nw, &p, o, refused ? mdiff : NULL, v.g);
    bool any = v.acc_reg;
    for (int m = 0; m < N_COST; m++) any |= v.g[m].gated && v.g[m].regression;
    *verdict = any ? REPORTS_REGRESSION : REPORTS_PASS;
    if (md) md_write(md, base, nw, o, &p, &v, mdiff, refused, sb, *verdict);
out:
    free(p.acc_b);
    return rc;
}
