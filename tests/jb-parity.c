#include "config.h"

#include "tests/jb-parity.h"

#include "common/jb-err.h"
#include "common/jb-npy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The argmax (lowest index on ties) and the gap to the second largest of row[0..n). */
static size_t top2(const float *row, size_t n, double *gap) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    double second = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (i != best && row[i] > second) second = row[i];
    *gap = (double)row[best] - second;
    return best;
}

int jb_parity_check_logits(const float *got, const float *golden, size_t rows, size_t cols,
                           double rel_tol, struct jb_parity *p) {
    memset(p, 0, sizeof *p);
    p->rows = rows;
    for (size_t i = 0; i < rows * cols; i++)
        if (fabs((double)golden[i]) > p->max_golden) p->max_golden = fabs((double)golden[i]);
    p->tol = rel_tol < 0 ? INFINITY : rel_tol * p->max_golden;
    p->min_gap = INFINITY;
    int rc = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *g = golden + r * cols, *x = got + r * cols;
        double err = 0;
        size_t at = 0;
        for (size_t i = 0; i < cols; i++) {
            double d = fabs((double)x[i] - g[i]);
            if (!(d <= err)) { /* NaN counts as an error larger than any */
                err = isnan(d) ? INFINITY : d;
                at = i;
            }
        }
        if (err > p->max_err) p->max_err = err;
        if (!rc && !(err <= p->tol)) {
            snprintf(p->msg, sizeof p->msg, "row %zu, entry %zu: |%g - %g| = %g > %g x %g = %g", r,
                     at, (double)x[at], (double)g[at], err, rel_tol, p->max_golden, p->tol);
            rc = -1;
        }
        double gap, gap_x;
        size_t want = top2(g, cols, &gap), have = top2(x, cols, &gap_x);
        if (gap > 2 * err) {
            p->tokens_checked++;
            if (gap < p->min_gap) p->min_gap = gap;
            if (!rc && have != want) {
                snprintf(p->msg, sizeof p->msg, "row %zu: token %zu, golden %zu (golden top-2 gap "
                         "%g > 2 x the row's error %g)", r, have, want, gap, err);
                rc = -1;
            }
        }
    }
    return rc;
}

int jb_parity_check_npy(const char *got_path, const char *golden_path, double rel_tol,
                        struct jb_parity *p) {
    struct jb_npy a = {0}, b = {0};
    struct jb_err err = {0};
    int rc = -1;
    memset(p, 0, sizeof *p);
    if (jb_npy_load(&a, got_path, &err) < 0 || jb_npy_load(&b, golden_path, &err) < 0) {
        snprintf(p->msg, sizeof p->msg, "%.500s", err.msg);
        goto out;
    }
    int same = a.dtype == JB_NPY_F32 && b.dtype == JB_NPY_F32 && a.ndim == b.ndim &&
               a.ndim >= 1 && a.shape[a.ndim - 1] > 0;
    for (int i = 0; same && i < a.ndim; i++) same = a.shape[i] == b.shape[i];
    if (!same) {
        snprintf(p->msg, sizeof p->msg, "%.200s and %.200s: not float32 arrays of one shape",
                 got_path, golden_path);
        goto out;
    }
    size_t cols = a.shape[a.ndim - 1], rows = a.numel / cols;
    rc = jb_parity_check_logits(a.data, b.data, rows, cols, rel_tol, p);
out:
    jb_npy_free(&a);
    jb_npy_free(&b);
    return rc;
}
