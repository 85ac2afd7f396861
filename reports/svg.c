/* What the HTML pages of reports/ share: escaping, the palette and the SVG plot frame with its
 * axes (the run report, fmt-html.c, and the history trend page, history.c). */
#include "config.h"

#include "reports/reports-impl.h"

#include <math.h>

const char *const reports_palette[8] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                        "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
const char *const reports_phase_colour[N_PHASES] = {"#9d9d9d", "#4c78a8", "#f58518", "#54a24b"};

void reports_html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A "nice" tick step (1, 2 or 5 x 10^k) giving about n ticks over [0, hi]. */
static double tick_step(double hi, int n) {
    if (!(hi > 0)) return 1;
    double raw = hi / n, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

double reports_svg_x(const struct reports_frame *p, double x) {
    return p->l + (x - p->x0) / (p->x1 - p->x0) * (p->W - p->l - p->r);
}
double reports_svg_y(const struct reports_frame *p, double y) {
    return p->H - p->b - (y - p->y0) / (p->y1 - p->y0) * (p->H - p->t - p->b);
}

/* The y grid and ticks, the box and the axis titles; the x ticks are numbers unless
 * x_ticks is false (the caller labels them). */
static void frame_draw(FILE *f, const struct reports_frame *p, const char *xlabel,
                       const char *ylabel, bool x_ticks) {
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            p->l, p->t, p->W - p->l - p->r, p->H - p->t - p->b);
    double sx = tick_step(p->x1 - p->x0, 6), sy = tick_step(p->y1 - p->y0, 5);
    for (double x = ceil(p->x0 / sx) * sx; x_ticks && x <= p->x1 + 1e-9 * sx; x += sx)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                reports_svg_x(p, x), p->t, reports_svg_x(p, x), p->H - p->b,
                reports_svg_x(p, x), p->H - p->b + 14, x);
    for (double y = ceil(p->y0 / sy) * sy; y <= p->y1 + 1e-9 * sy; y += sy)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                p->l, reports_svg_y(p, y), p->W - p->r, reports_svg_y(p, y), p->l - 4,
                reports_svg_y(p, y) + 4, y);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (p->l + p->W - p->r) / 2,
            p->H - 6);
    reports_html_esc(f, xlabel);
    fprintf(f,
            "</text><text transform=\"translate(14,%.1f) rotate(-90)\" "
            "text-anchor=\"middle\">",
            (p->t + p->H - p->b) / 2);
    reports_html_esc(f, ylabel);
    fputs("</text>\n", f);
}

void reports_svg_axes(FILE *f, const struct reports_frame *p, const char *xlabel,
                      const char *ylabel) {
    frame_draw(f, p, xlabel, ylabel, true);
}

void reports_svg_axes_labelled(FILE *f, const struct reports_frame *p, const char *xlabel,
                               const char *ylabel) {
    frame_draw(f, p, xlabel, ylabel, false);
}
