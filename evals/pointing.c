/* pointing_f1 (evals.md §4): Molmo's point output parsed, matched to the reference objects by
 * the Hungarian algorithm, a hit when the predicted pixel lies in the matched object's mask. */
#include "config.h"

#include "evals/evals-impl.h"

#include "common/jb-err.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* [0-9]+(\.[0-9]+)? at s; returns the length (0: none) and the value. */
static size_t number_at(const char *s, double *v) {
    size_t i = 0;
    while (is_digit(s[i])) i++;
    if (i == 0) return 0;
    if (s[i] == '.' && is_digit(s[i + 1])) {
        i++;
        while (is_digit(s[i])) i++;
    }
    char buf[64];
    if (i >= sizeof buf) return 0;
    memcpy(buf, s, i);
    buf[i] = '\0';
    /* digits and one '.', nothing locale-dependent can change: integer and fraction by hand */
    double ip = 0, fp = 0, scale = 1;
    size_t k = 0;
    for (; is_digit(buf[k]); k++) ip = ip * 10 + (buf[k] - '0');
    if (buf[k] == '.')
        for (k++; is_digit(buf[k]); k++) {
            scale /= 10;
            fp += (buf[k] - '0') * scale;
        }
    *v = ip + fp;
    return i;
}

/* x\d*="\s*NUM" \s+ y\d*="\s*NUM" at s (s points at 'x'); returns the length or 0. */
static size_t xy_attr_at(const char *s, double *x, double *y) {
    size_t i = 0;
    if (s[i++] != 'x') return 0;
    size_t ds = i;
    while (is_digit(s[i])) i++;
    size_t dn = i - ds;
    if (s[i++] != '=' || s[i++] != '"') return 0;
    while (s[i] == ' ') i++;
    size_t l = number_at(s + i, x);
    if (!l) return 0;
    i += l;
    if (s[i++] != '"') return 0;
    size_t sp = i;
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') i++;
    if (i == sp || s[i++] != 'y') return 0;
    if (strncmp(s + i, s + ds, dn) != 0 || is_digit(s[i + dn])) return 0;
    i += dn;
    if (s[i++] != '=' || s[i++] != '"') return 0;
    while (s[i] == ' ') i++;
    l = number_at(s + i, y);
    if (!l) return 0;
    i += l;
    if (s[i++] != '"') return 0;
    return i;
}

/* (NUM.D, ?NUM.D) at s; returns the length or 0. */
static size_t paren_pair_at(const char *s, double *x, double *y) {
    size_t i = 0;
    if (s[i++] != '(') return 0;
    size_t l = number_at(s + i, x);
    if (!l || s[i + l - 2] != '.') return 0; /* exactly one decimal */
    i += l;
    if (s[i++] != ',') return 0;
    if (s[i] == ' ') i++;
    l = number_at(s + i, y);
    if (!l || s[i + l - 2] != '.') return 0;
    i += l;
    if (s[i++] != ')') return 0;
    return i;
}

int evals_points_parse(const char *text, double **pts, size_t *n, int *n_elements) {
    size_t cap = 16, k = 0;
    double *p = malloc(cap * 2 * sizeof *p);
    if (!p) return JB_ENOMEM;
    int elements = 0;
    for (const char *s = text; *s; s++) {
        if (strncmp(s, "<point", 6) == 0) {
            bool plural = s[6] == 's';
            char after = s[6 + plural];
            if (after == ' ' || after == '>')
                elements += strstr(s, plural ? "</points>" : "</point>") ? 1 : 100;
        }
        double x, y;
        size_t l = 0;
        if (*s == 'x' && (s == text || s[-1] == ' ' || s[-1] == '\t' || s[-1] == '\n'))
            l = xy_attr_at(s, &x, &y);
        if (!l && *s == '(') l = paren_pair_at(s, &x, &y);
        if (!l) continue;
        if (x <= 100.0 && y <= 100.0) {
            if (k == cap) {
                double *q = realloc(p, cap * 4 * sizeof *p);
                if (!q) {
                    free(p);
                    return JB_ENOMEM;
                }
                p = q;
                cap *= 2;
            }
            p[2 * k] = x;
            p[2 * k + 1] = y;
            k++;
        }
        s += l - 1;
    }
    *pts = p;
    *n = k;
    *n_elements = elements;
    return 0;
}

static bool region_contains(const struct evals_region *r, long px, long py) {
    switch (r->kind) {
    case EVALS_REGION_CIRCLE: {
        double dx = (double)px - r->c[0], dy = (double)py - r->c[1];
        return dx * dx + dy * dy <= r->c[2] * r->c[2];
    }
    case EVALS_REGION_BOX:
        return px >= r->c[0] && px <= r->c[2] && py >= r->c[1] && py <= r->c[3];
    case EVALS_REGION_POLYGON: {
        bool in = false;
        for (int i = 0, j = r->n_poly - 1; i < r->n_poly; j = i++) {
            double xi = r->poly[2 * i], yi = r->poly[2 * i + 1];
            double xj = r->poly[2 * j], yj = r->poly[2 * j + 1];
            if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
        }
        return in;
    }
    case EVALS_REGION_BITMAP:
        return px >= 0 && py >= 0 && px < r->w && py < r->h && r->bits[py * r->w + px];
    }
    return false;
}

/* Minimum-cost assignment of the rows of cost (n x m, n <= m) to distinct columns: the
 * Hungarian algorithm with potentials (Kuhn-Munkres, O(n^2 m)). row_of_col[j] = row or -1. */
static int hungarian(const double *cost, int n, int m, int *col_of_row) {
    double *u = calloc((size_t)n + 1, sizeof *u), *v = calloc((size_t)m + 1, sizeof *v);
    double *minv = malloc(((size_t)m + 1) * sizeof *minv);
    int *p = calloc((size_t)m + 1, sizeof *p), *way = calloc((size_t)m + 1, sizeof *way);
    bool *used = malloc(((size_t)m + 1) * sizeof *used);
    int rc = JB_ENOMEM;
    if (!u || !v || !minv || !p || !way || !used) goto out;
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; j++) {
            minv[j] = DBL_MAX;
            used[j] = false;
        }
        do {
            used[j0] = true;
            int i0 = p[j0], j1 = 0;
            double delta = DBL_MAX;
            for (int j = 1; j <= m; j++) {
                if (used[j]) continue;
                double cur = cost[(size_t)(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= m; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else
                    minv[j] -= delta;
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (int j = 1; j <= m; j++)
        if (p[j]) col_of_row[p[j] - 1] = j - 1;
    rc = 0;
out:
    free(u);
    free(v);
    free(minv);
    free(p);
    free(way);
    free(used);
    return rc;
}

void evals_pointing_score(const char *text, const struct evals_region *regions, size_t n_regions,
                          int width, int height, struct evals_score *out) {
    double *pts = NULL;
    size_t n_pred = 0;
    int n_el = 0;
    out->score = out->precision = out->recall = 0.0;
    if (evals_points_parse(text, &pts, &n_pred, &n_el) < 0) return;
    if (n_regions == 0) {
        double v = n_pred == 0 ? 1.0 : 0.0;
        out->score = out->precision = out->recall = v;
        goto out;
    }
    if (n_el != 1 || n_pred == 0) {
        out->invalid = n_el != 1;
        goto out;
    }
    /* pixels */
    for (size_t i = 0; i < n_pred; i++) {
        pts[2 * i] = pts[2 * i] / 100.0 * width;
        pts[2 * i + 1] = pts[2 * i + 1] / 100.0 * height;
    }
    bool pred_rows = n_pred <= n_regions;
    int n = (int)(pred_rows ? n_pred : n_regions), m = (int)(pred_rows ? n_regions : n_pred);
    double *cost = malloc((size_t)n * m * sizeof *cost);
    int *match = malloc((size_t)n * sizeof *match);
    if (cost && match) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) {
                size_t pi = pred_rows ? (size_t)i : (size_t)j;
                size_t ri = pred_rows ? (size_t)j : (size_t)i;
                cost[(size_t)i * m + j] =
                    hypot(pts[2 * pi] - regions[ri].x, pts[2 * pi + 1] - regions[ri].y);
            }
        if (hungarian(cost, n, m, match) == 0) {
            size_t hits = 0;
            for (int i = 0; i < n; i++) {
                size_t pi = pred_rows ? (size_t)i : (size_t)match[i];
                size_t ri = pred_rows ? (size_t)match[i] : (size_t)i;
                /* rint: round half to even in the default rounding mode */
                long px = (long)rint(pts[2 * pi]), py = (long)rint(pts[2 * pi + 1]);
                hits += region_contains(&regions[ri], px, py);
            }
            double P = (double)hits / (double)n_pred, R = (double)hits / (double)n_regions;
            out->precision = P;
            out->recall = R;
            out->score = P > 0 && R > 0 ? 2 * P * R / (P + R) : 0.0;
        }
    }
    free(cost);
    free(match);
out:
    free(pts);
}
