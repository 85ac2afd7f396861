/* `compare`: is NEW worse than BASE? Samples are paired by id, so each sample is its own
 * control: accuracy by exact McNemar (0/1 scores) or a paired bootstrap (partial credit),
 * energy by a bootstrap interval of the ratio of mean J/sample. Fixed seed: the same two runs
 * always get the same verdict. */
#include "config.h"

#include "reports/reports-impl.h"

#include "common/jb-err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void reports_compare_opts_init(struct reports_compare_opts *o) {
    *o = (struct reports_compare_opts){
        .max_accuracy_drop_pts = 1.0,
        .max_energy_rise_pct = 5.0,
        .energy_gate_required = false,
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

int reports_compare(const struct reports_run *base, const struct reports_run *nw,
                    const struct reports_compare_opts *o, FILE *md, enum reports_verdict *verdict,
                    struct jb_err *err) {
    char sb[1024], sn[1024];
    suite_list(base, sb, sizeof sb);
    suite_list(nw, sn, sizeof sn);
    for (int j = 0; j < base->n_g; j++)
        if (!has_suite(nw, base->g[j].suite))
            return jb_err_set(err, JB_EINVAL, "%s and %s cover different suites (%s vs %s)",
                              base->dir, nw->dir, sb, sn);
    for (int j = 0; j < nw->n_g; j++)
        if (!has_suite(base, nw->g[j].suite))
            return jb_err_set(err, JB_EINVAL, "%s and %s cover different suites (%s vs %s)",
                              base->dir, nw->dir, sb, sn);

    bool with_model = n_models(base) > 1 || n_models(nw) > 1;
    json_t *index = json_object();
    int np = 0, rc = 0, unpaired = 0;
    double *a = malloc(sizeof(double) * (size_t)(nw->n_s + 1) * 4), *d = NULL;
    if (!index || !a) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    double *acc_b = a, *acc_n = a + nw->n_s + 1, *e_b = a + 2 * (nw->n_s + 1),
           *e_n = a + 3 * (nw->n_s + 1);
    for (int i = 0; i < base->n_s; i++) {
        char *k = pair_key(&base->s[i], with_model);
        if (!k) {
            rc = jb_err_set(err, JB_ENOMEM, "out of memory");
            goto out;
        }
        json_object_set_new(index, k, json_integer(i));
        free(k);
    }
    int b = 0, c = 0;
    bool binary = true;
    for (int i = 0; i < nw->n_s; i++) {
        char *k = pair_key(&nw->s[i], with_model);
        if (!k) {
            rc = jb_err_set(err, JB_ENOMEM, "out of memory");
            goto out;
        }
        json_t *v = json_object_get(index, k);
        free(k);
        if (!v) {
            unpaired++;
            continue;
        }
        const struct reports_sample *x = &base->s[json_integer_value(v)], *y = &nw->s[i];
        acc_b[np] = x->score;
        acc_n[np] = y->score;
        e_b[np] = x->energy_total_j;
        e_n[np] = y->energy_total_j;
        if ((x->score != 0 && x->score != 1) || (y->score != 0 && y->score != 1)) binary = false;
        b += x->score == 1 && y->score == 0;
        c += x->score == 0 && y->score == 1;
        np++;
    }
    unpaired += base->n_s - np;
    if (np == 0) {
        rc = jb_err_set(err, JB_EINVAL, "%s and %s have no sample ids in common", base->dir,
                        nw->dir);
        goto out;
    }

    /* Point estimates. */
    double mb = 0, mn = 0, eb = 0, en = 0;
    for (int i = 0; i < np; i++) {
        mb += acc_b[i];
        mn += acc_n[i];
        eb += e_b[i];
        en += e_n[i];
    }
    double diff_pts = 100 * (mn - mb) / np;
    double ratio = eb > 0 ? en / eb : NAN;

    /* Paired bootstrap: resample pair indices; the same resamples give the accuracy difference
     * and the energy ratio. */
    int B = o->n_boot > 0 ? o->n_boot : 2000;
    d = malloc(sizeof(double) * (size_t)B * 2);
    if (!d) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    double *dr = d + B;
    uint64_t st = o->seed;
    int le0 = 0, ge0 = 0;
    for (int k = 0; k < B; k++) {
        double sa = 0, sn2 = 0, xb = 0, xn = 0;
        for (int i = 0; i < np; i++) {
            int j = (int)reports_rng_below(&st, (uint64_t)np);
            sa += acc_b[j];
            sn2 += acc_n[j];
            xb += e_b[j];
            xn += e_n[j];
        }
        d[k] = 100 * (sn2 - sa) / np;
        dr[k] = xb > 0 ? xn / xb : NAN;
        le0 += d[k] <= 0;
        ge0 += d[k] >= 0;
    }
    qsort(d, (size_t)B, sizeof *d, cmp_double);
    qsort(dr, (size_t)B, sizeof *dr, cmp_double);
    double d_lo = reports_quantile(d, B, 0.025), d_hi = reports_quantile(d, B, 0.975);
    double r_lo = reports_quantile(dr, B, 0.025), r_hi = reports_quantile(dr, B, 0.975);
    double p_acc =
        binary ? reports_mcnemar_p(b, c) : fmin(1.0, 2.0 * fmin((double)le0, (double)ge0) / B);

    bool acc_reg = diff_pts < -o->max_accuracy_drop_pts && p_acc < 0.05;
    bool estimated = base->estimated || nw->estimated;
    bool energy_reg = false;
    const char *energy_text;
    char etext[256];
    if (estimated) {
        energy_reg = o->energy_gate_required;
        energy_text = o->energy_gate_required
                          ? "REGRESSION: estimated energy can never pass an energy gate"
                          : "not gated: estimated energy can never pass an energy gate "
                            "(figures for information only)";
    } else {
        /* A rise larger than the tolerance, and an interval that excludes no change. */
        energy_reg = isfinite(ratio) && ratio - 1 > o->max_energy_rise_pct / 100 && r_lo > 1;
        snprintf(etext, sizeof etext, "%s (tolerance +%.3g%%)", energy_reg ? "REGRESSION" : "pass",
                 o->max_energy_rise_pct);
        energy_text = etext;
    }
    *verdict = acc_reg || energy_reg ? REPORTS_REGRESSION : REPORTS_PASS;

    if (md) {
        char mark_b = base->estimated ? '~' : ' ', mark_n = nw->estimated ? '~' : ' ';
        fprintf(md, "## joulebench compare: %s\n\n",
                *verdict == REPORTS_PASS ? "no significant regression" : "REGRESSION");
        if (estimated)
            fprintf(md, "> **ESTIMATED** energy in %s%s%s: not measured, marked `~`.\n\n",
                    base->estimated ? "base" : "", base->estimated && nw->estimated ? " and " : "",
                    nw->estimated ? "new" : "");
        fprintf(md, "Base `%s` (commit %s) vs new `%s` (commit %s): %d paired samples", base->label,
                reports_json_str(base->run, "tool.commit", "?"), nw->label,
                reports_json_str(nw->run, "tool.commit", "?"), np);
        if (unpaired) fprintf(md, ", %d without a partner (left out)", unpaired);
        fprintf(md, "; suites: %s.\n\n", sb);
        fprintf(md, "| metric | base | new | change (95%% CI) | test | verdict |\n");
        fprintf(md, "|---|---:|---:|---:|---|---|\n");
        if (binary)
            fprintf(md,
                    "| accuracy %% | %.2f | %.2f | %+.2f pts (%+.2f, %+.2f) | exact McNemar: "
                    "%d right→wrong, %d wrong→right, p = %.3g | %s (tolerance −%.3g pts) |\n",
                    100 * mb / np, 100 * mn / np, diff_pts, d_lo, d_hi, b, c, p_acc,
                    acc_reg ? "REGRESSION" : "pass", o->max_accuracy_drop_pts);
        else
            fprintf(md,
                    "| accuracy %% | %.2f | %.2f | %+.2f pts (%+.2f, %+.2f) | paired bootstrap, "
                    "%d resamples, seed %llu: p = %.3g | %s (tolerance −%.3g pts) |\n",
                    100 * mb / np, 100 * mn / np, diff_pts, d_lo, d_hi, B, o->seed, p_acc,
                    acc_reg ? "REGRESSION" : "pass", o->max_accuracy_drop_pts);
        fprintf(md,
                "| J/sample | %c%.4g | %c%.4g | %+.2f%% (%+.2f%%, %+.2f%%) | bootstrap of the "
                "ratio, %d resamples, seed %llu | %s |\n",
                mark_b, eb / np, mark_n, en / np, 100 * (ratio - 1), 100 * (r_lo - 1),
                100 * (r_hi - 1), B, o->seed, energy_text);
        fprintf(md, "\n<details><summary>per suite</summary>\n\n"
                    "| model | suite | base acc %% | new acc %% | base J/sample | new J/sample |\n"
                    "|---|---|---:|---:|---:|---:|\n");
        for (int j = 0; j < nw->n_g; j++) {
            const struct reports_group *gn = &nw->g[j], *gb = NULL;
            for (int k = 0; k < base->n_g && !gb; k++)
                if (!strcmp(base->g[k].suite, gn->suite) &&
                    (!with_model || !strcmp(base->g[k].model, gn->model)))
                    gb = &base->g[k];
            if (!gb) continue;
            fprintf(md, "| %s | %s | %.2f | %.2f | %c%.4g | %c%.4g |\n", gn->model, gn->suite,
                    100 * gb->accuracy, 100 * gn->accuracy, mark_b, gb->j_per_sample, mark_n,
                    gn->j_per_sample);
        }
        fprintf(md, "\n</details>\n");
    }
out:
    json_decref(index);
    free(a);
    free(d);
    return rc;
}
