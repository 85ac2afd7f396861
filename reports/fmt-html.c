/* HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched) with
 * the Markdown report's tables and three plots drawn here as SVG: accuracy against J/sample
 * across models (the Pareto view of model sizes), each run's power trace with its phase bands,
 * and energy split by phase. */
#include "config.h"

#include "reports/reports-impl.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct point {
    double x, y;
    const char *label, *suite;
    int colour;
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int by_x(const void *a, const void *b) {
    const struct point *p = a, *q = b;
    return (p->x > q->x) - (p->x < q->x);
}

/* Accuracy vs J/sample: one point per run x model x suite, coloured by suite, with each suite's
 * Pareto frontier (no other point is both cheaper and more accurate) as a dashed line. */
static void plot_pareto(struct reports_run *const *runs, int n, FILE *f) {
    int np = 0;
    for (int i = 0; i < n; i++) np += runs[i]->n_g;
    struct point *pt = calloc(np ? (size_t)np : 1, sizeof *pt);
    char(*labels)[256] = calloc(np ? (size_t)np : 1, sizeof *labels);
    if (!pt || !labels) goto out;
    const char *suites[8];
    int ns = 0, k = 0;
    double xmax = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < runs[i]->n_g; j++) {
            const struct reports_group *g = &runs[i]->g[j];
            int c = 0;
            while (c < ns && strcmp(suites[c], g->suite)) c++;
            if (c == ns && ns < 8) suites[ns++] = g->suite;
            snprintf(labels[k], sizeof labels[k], "%s%s%s", n > 1 ? runs[i]->label : "",
                     n > 1 ? "/" : "", g->model);
            pt[k] = (struct point){g->j_per_sample, 100 * g->accuracy, labels[k], g->suite, c % 8};
            if (pt[k].x > xmax) xmax = pt[k].x;
            k++;
        }
    qsort(pt, (size_t)np, sizeof *pt, by_x);
    struct reports_frame p = {640, 380, 60, 20, 20, 46, 0, xmax > 0 ? xmax * 1.15 : 1, 0, 100};
    fprintf(f,
            "<figure><svg id=\"plot-pareto\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n",
            p.W, p.H, p.W, p.H);
    reports_svg_axes(f, &p, "energy per sample (J)", "accuracy (%)");
    for (int c = 0; c < ns; c++) {
        fputs("<polyline fill=\"none\" stroke-dasharray=\"5,4\" stroke=\"", f);
        fputs(reports_palette[c % 8], f);
        fputs("\" points=\"", f);
        double best = -1;
        for (int i = 0; i < np; i++)
            if (!strcmp(pt[i].suite, suites[c]) && pt[i].y > best) {
                best = pt[i].y;
                fprintf(f, "%.1f,%.1f ", reports_svg_x(&p, pt[i].x), reports_svg_y(&p, pt[i].y));
            }
        fputs("\"/>\n", f);
        fprintf(f,
                "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"5\" fill=\"%s\"/><text x=\"%.0f\" "
                "y=\"%.0f\">",
                p.l + 12, p.t + 14 + 16.0 * c, reports_palette[c % 8], p.l + 22, p.t + 18 + 16.0 * c);
        reports_html_esc(f, suites[c]);
        fputs("</text>\n", f);
    }
    for (int i = 0; i < np; i++) {
        fprintf(f, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"><title>",
                reports_svg_x(&p, pt[i].x), reports_svg_y(&p, pt[i].y), reports_palette[pt[i].colour]);
        reports_html_esc(f, pt[i].label);
        fprintf(f, " on ");
        reports_html_esc(f, pt[i].suite);
        fprintf(f,
                ": %.1f%%, %.4g J/sample</title></circle><text x=\"%.1f\" y=\"%.1f\" "
                "font-size=\"11\">",
                pt[i].y, pt[i].x, reports_svg_x(&p, pt[i].x) + 7, reports_svg_y(&p, pt[i].y) - 6);
        reports_html_esc(f, pt[i].label);
        fputs("</text>\n", f);
    }
    fputs("</svg><figcaption>Accuracy against energy per sample, one point per model and suite; "
          "dashed: each suite's Pareto frontier (cheaper and more accurate is up and left)."
          "</figcaption></figure>\n",
          f);
out:
    free(pt);
    free(labels);
}

/* The power trace of one run, one line per meter domain, over coloured bands for the phases
 * of every sample (from t_start_s and the phase durations, which run back to back). */
static void plot_power(const struct reports_run *r, int idx, FILE *f) {
    if (r->n_power == 0) {
        fprintf(f, "<p>Run <code>");
        reports_html_esc(f, r->label);
        fprintf(f, "</code> has no power trace (power.csv is empty or absent).</p>\n");
        return;
    }
    /* The power axis ends at the 99.5th percentile: a point over a few milliseconds between two
     * marks can read ten times the sustained power and would flatten the rest; it is clipped. */
    double t0 = INFINITY, t1 = -INFINITY, wmax = 0;
    double *w = malloc(r->n_power * sizeof *w);
    for (size_t i = 0; i < r->n_power; i++) {
        t0 = fmin(t0, r->power[i].t_s);
        t1 = fmax(t1, r->power[i].t_s);
        if (w) w[i] = r->power[i].watts;
        else wmax = fmax(wmax, r->power[i].watts);
    }
    if (w) {
        qsort(w, r->n_power, sizeof *w, cmp_double);
        wmax = reports_quantile(w, (int)r->n_power, 0.995);
        free(w);
    }
    if (!(t1 > t0)) t1 = t0 + 1;
    struct reports_frame p = {760, 310, 60, 20, 30, 46, t0, t1, 0, wmax > 0 ? wmax * 1.15 : 1};
    fprintf(f,
            "<figure><svg id=\"plot-power-%d\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n",
            idx, p.W, p.H, p.W, p.H);
    /* Phase bands per pixel column: each column takes the colour of the phase that occupies
     * most of its time, and equal neighbours merge into one rectangle. This stays exact to a
     * pixel for a few samples and small for thousands. */
    int ncol = (int)(p.W - p.l - p.r);
    double(*occ)[N_PHASES] = calloc((size_t)ncol, sizeof *occ);
    if (occ) {
        for (int i = 0; i < r->n_s; i++) {
            const struct reports_sample *s = &r->s[i];
            if (!isfinite(s->t_start_s)) continue;
            double t = s->t_start_s;
            for (int ph = 0; ph < N_PHASES; ph++) {
                double a = reports_svg_x(&p, fmax(t, t0)) - p.l, b = reports_svg_x(&p, fmin(t + s->time_s[ph], t1)) - p.l;
                for (int c = (int)fmax(0, floor(a)); c < ncol && c < b; c++)
                    occ[c][ph] += fmin(b, c + 1) - fmax(a, c);
                t += s->time_s[ph];
            }
        }
        int start = 0, cur = -1;
        for (int c = 0; c <= ncol; c++) {
            int best = -1;
            double most = 0;
            for (int ph = 0; c < ncol && ph < N_PHASES; ph++)
                if (occ[c][ph] > most) {
                    most = occ[c][ph];
                    best = ph;
                }
            if (c < ncol && best == cur) continue;
            if (cur >= 0)
                fprintf(f,
                        "<rect class=\"band\" x=\"%.0f\" y=\"%.1f\" width=\"%d\" "
                        "height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.22\"/>\n",
                        p.l + start, p.t, c - start, p.H - p.t - p.b, reports_phase_colour[cur]);
            start = c;
            cur = best;
        }
        free(occ);
    }
    reports_svg_axes(f, &p, "time since the run started (s)", "power (W)");
    for (int d = 0; d < r->n_domains; d++) {
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"%s\" points=\"",
                reports_palette[d % 8]);
        /* A long trace has more points than the plot has pixels: average the points that fall
         * in the same pixel column, so an hour at 100 ms stays a few kB of SVG. */
        int col = -1, k = 0;
        double sum_w = 0, sum_t = 0;
        for (size_t i = 0; i <= r->n_power; i++) {
            int c = i < r->n_power ? (int)reports_svg_x(&p, r->power[i].t_s) : INT_MAX;
            if (i < r->n_power && r->power[i].domain != d) continue;
            if (c != col && k > 0) {
                fprintf(f, "%.1f,%.1f ", reports_svg_x(&p, sum_t / k), reports_svg_y(&p, fmin(sum_w / k, p.y1)));
                k = 0;
                sum_w = sum_t = 0;
            }
            if (i == r->n_power) break;
            col = c;
            sum_t += r->power[i].t_s;
            sum_w += r->power[i].watts;
            k++;
        }
        fprintf(f, "\"/><text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">", p.l + 90.0 * d, 16.0,
                reports_palette[d % 8]);
        reports_html_esc(f, r->domains[d]);
        fputs("</text>\n", f);
    }
    for (int ph = 0; ph < N_PHASES; ph++)
        fprintf(f,
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"10\" fill=\"%s\" "
                "fill-opacity=\"0.5\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                p.W - p.r - 330 + 85.0 * ph, 7.0, reports_phase_colour[ph], p.W - p.r - 314 + 85.0 * ph,
                16.0, reports_phase_names[ph]);
    fprintf(f, "</svg><figcaption>Power trace of run <code>");
    reports_html_esc(f, r->label);
    fprintf(f, "</code>%s, with each sample's phases as bands.</figcaption></figure>\n",
            r->estimated ? " (ESTIMATED)" : "");
}

/* Energy split by phase: one stacked bar per run x model x suite, lengths in joules. */
static void plot_split(struct reports_run *const *runs, int n, FILE *f) {
    int rows = 0;
    double emax = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < runs[i]->n_g; j++) {
            rows++;
            emax = fmax(emax, runs[i]->g[j].energy_total_j);
        }
    double W = 760, l = 220, rpad = 90, rowh = 26, H = 40 + rows * rowh + 30;
    double scale = emax > 0 ? (W - l - rpad) / emax : 0;
    fprintf(f,
            "<figure><svg id=\"plot-phases\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n",
            W, H, W, H);
    for (int ph = 0; ph < N_PHASES; ph++)
        fprintf(f,
                "<rect x=\"%.0f\" y=\"8\" width=\"12\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" "
                "y=\"17\">%s</text>\n",
                l + 100.0 * ph, reports_phase_colour[ph], l + 16 + 100.0 * ph, reports_phase_names[ph]);
    int row = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < runs[i]->n_g; j++, row++) {
            const struct reports_group *g = &runs[i]->g[j];
            double y = 30 + row * rowh, x = l;
            fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">", l - 6, y + 15);
            if (n > 1) {
                reports_html_esc(f, runs[i]->label);
                fputc('/', f);
            }
            reports_html_esc(f, g->model);
            fputc(' ', f);
            reports_html_esc(f, g->suite);
            fputs("</text>\n", f);
            for (int ph = 0; ph < N_PHASES; ph++) {
                double w = g->energy_j[ph] * scale;
                fprintf(f,
                        "<rect class=\"bar\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" "
                        "fill=\"%s\"><title>%s: %s%.4g J</title></rect>\n",
                        x, y, w, rowh - 6, reports_phase_colour[ph], reports_phase_names[ph],
                        runs[i]->estimated ? "~" : "", g->energy_j[ph]);
                x += w;
            }
            fprintf(f, "<text x=\"%.1f\" y=\"%.0f\">%s%.4g J</text>\n", x + 6, y + 15,
                    runs[i]->estimated ? "~" : "", g->energy_total_j);
        }
    fputs("</svg><figcaption>Energy of each model and suite split by phase (the remainder to "
          "the total is time between phase marks).</figcaption></figure>\n",
          f);
}

/* The Markdown tables again, as HTML. */
static void tables(struct reports_run *const *runs, int n, FILE *f) {
    char b1[48], b2[48], b3[48], b4[48], b5[48];
    fputs("<h2>Results</h2>\n<table><tr><th>run</th><th>model</th><th>suite</th><th>samples</th>"
          "<th>accuracy % (95% CI)</th><th>J/sample</th><th>J/sample above idle</th>"
          "<th>score/kJ</th><th>time s</th><th>energy J</th><th>g CO2e</th><th>energy</th></tr>\n",
          f);
    for (int i = 0; i < n; i++) {
        const struct reports_run *r = runs[i];
        for (int j = 0; j < r->n_g; j++) {
            const struct reports_group *g = &r->g[j];
            fputs("<tr><td>", f);
            reports_html_esc(f, r->label);
            fputs("</td><td>", f);
            reports_html_esc(f, g->model);
            fputs("</td><td>", f);
            reports_html_esc(f, g->suite);
            fprintf(f,
                    "</td><td>%d</td><td>%.1f [%.1f, %.1f]</td><td>%s</td><td>%s</td><td>%s</td>"
                    "<td>%.4g</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                    g->n, 100 * g->accuracy, 100 * g->ci_lo, 100 * g->ci_hi,
                    reports_fmt_energy(b1, sizeof b1, g->j_per_sample, r->estimated),
                    reports_fmt_energy(b2, sizeof b2, g->j_per_sample_above_idle, r->estimated),
                    reports_fmt_energy(b3, sizeof b3, g->score_per_kj, r->estimated),
                    g->time_total_s,
                    reports_fmt_energy(b4, sizeof b4, g->energy_total_j, r->estimated),
                    reports_fmt_energy(b5, sizeof b5, g->co2e_g, r->estimated),
                    r->estimated ? "<b>ESTIMATED</b>" : "measured");
        }
    }
    fputs("</table>\n<p>Score per kJ is the sum of sample scores divided by the total energy in "
          "kJ; read it beside accuracy and J/sample.</p>\n",
          f);
    fputs("<h2>Time and energy per phase</h2>\n<table><tr><th>run</th><th>model</th><th>suite</th>"
          "<th>phase</th><th>time s</th><th>energy J</th><th>share %</th></tr>\n",
          f);
    for (int i = 0; i < n; i++) {
        const struct reports_run *r = runs[i];
        for (int j = 0; j < r->n_g; j++) {
            const struct reports_group *g = &r->g[j];
            for (int p = 0; p < N_PHASES; p++) {
                fputs("<tr><td>", f);
                reports_html_esc(f, r->label);
                fputs("</td><td>", f);
                reports_html_esc(f, g->model);
                fputs("</td><td>", f);
                reports_html_esc(f, g->suite);
                fprintf(f, "</td><td>%s</td><td>%.4g</td><td>%s</td><td>%.1f</td></tr>\n",
                        reports_phase_names[p], g->time_s[p],
                        reports_fmt_energy(b1, sizeof b1, g->energy_j[p], r->estimated),
                        g->energy_total_j > 0 ? 100 * g->energy_j[p] / g->energy_total_j : 0.0);
            }
        }
    }
    fputs("</table>\n", f);
}

static void details(const struct reports_run *r, FILE *f) {
    const json_t *j = r->run;
    fputs("<h3>Run <code>", f);
    reports_html_esc(f, r->label);
    fputs("</code></h3><ul>\n<li>tool: ", f);
    reports_html_esc(f, reports_json_str(j, "tool.version", "?"));
    fputs(" (commit ", f);
    reports_html_esc(f, reports_json_str(j, "tool.commit", "?"));
    fputs("), status ", f);
    reports_html_esc(f, reports_json_str(j, "status", "?"));
    fputs("</li>\n<li>machine: ", f);
    reports_html_esc(f, reports_json_str(j, "machine.cpu_model", "?"));
    fprintf(f, ", %.0f cores, %.1f GiB, kernel ", reports_json_num(j, "machine.n_cores", 0),
            reports_json_num(j, "machine.memory_bytes", 0) / (1024.0 * 1024 * 1024));
    reports_html_esc(f, reports_json_str(j, "machine.kernel", "?"));
    fputs(", GPU ", f);
    reports_html_esc(f, reports_json_str(j, "machine.gpu", "none"));
    fputs("</li>\n<li>meter: energy ", f);
    reports_html_esc(f, r->energy_source);
    fprintf(f, "%s, interval %.0f ms, idle baseline %s%.2f W</li>\n",
            r->estimated ? " (<b>ESTIMATED</b>)" : "", reports_json_num(j, "meter.interval_ms", 0),
            r->estimated ? "~" : "", r->idle_power_w);
    fputs("<li>carbon: region ", f);
    reports_html_esc(f, reports_json_str(j, "carbon.region", "WORLD"));
    char src[512];
    fprintf(f, ", %.0f g CO2e/kWh (", r->grid_g_per_kwh);
    reports_html_esc(f, reports_carbon_source(src, sizeof src, j));
    fprintf(f, "), PUE %.2f; CO2e is estimated from the grid factor</li></ul>\n", r->pue);
}

int reports_render_html(struct reports_run *const *runs, int n, FILE *f, struct jb_err *err) {
    (void)err;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<title>joulebench report</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}\n"
          "table{border-collapse:collapse;margin:1em 0;font-size:13px;display:block;"
          "overflow-x:auto}td,th{border:1px solid "
          "#bbb;padding:3px 8px;"
          "text-align:right}td:nth-child(-n+3),th{text-align:left}\n"
          ".estimated{background:#fff3cd;border:2px solid #e0a800;padding:.6em "
          "1em;font-weight:bold}\n"
          "svg.plot{font-size:12px;background:#fff;border:1px solid #ddd}\n"
          "figure{margin:1em 0}\n</style></head><body>\n<h1>joulebench report</h1>\n",
          f);
    for (int i = 0; i < n; i++)
        if (runs[i]->estimated) {
            fputs("<p class=\"estimated\">ESTIMATED — run <code>", f);
            reports_html_esc(f, runs[i]->label);
            fputs("</code>: energy is not measured on this machine (", f);
            reports_html_esc(f, runs[i]->energy_source);
            fputs("); figures marked ~ are estimates, not measurements.</p>\n", f);
        }
    tables(runs, n, f);
    fputs("<h2>Accuracy against energy</h2>\n", f);
    plot_pareto(runs, n, f);
    fputs("<h2>Power trace</h2>\n", f);
    for (int i = 0; i < n; i++) plot_power(runs[i], i, f);
    fputs("<h2>Energy by phase</h2>\n", f);
    plot_split(runs, n, f);
    fputs("<h2>Machine, meter and carbon</h2>\n", f);
    for (int i = 0; i < n; i++) details(runs[i], f);
    fputs("</body></html>\n", f);
    return 0;
}
