/* preprocess.c: Molmo image preprocessing, molmo.md §4 (the reference's
 * image_preprocessing_molmo.py with resize_method "torch-bilinear"), bit for bit.
 *
 * Geometry (grid, masks, token layout, image_input_idx) depends on the image size only and is
 * computed in molmo_preprocess_layout; the pixels go through resize_pad (§4.2, §4.3) twice, once
 * for the global 336 x 336 view and once for the high-resolution canvas the crops are cut from. */
#include "config.h"

#include "engine/image-impl.h"

#include "common/jb-json.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DROPPED_IDX (-100) /* image_input_idx of a pooled cell that is not used */

void molmo_preproc_config_default(struct molmo_preproc_config *c) {
    *c = (struct molmo_preproc_config){
        .base_h = 336,
        .base_w = 336,
        .patch = 14,
        .tokens_h = 12,
        .tokens_w = 12,
        .max_crops = 12,
        .overlap_margins = {4, 4},
        /* OpenAI CLIP constants, as in every released preprocessor_config.json */
        .mean = {0.48145466f, 0.4578275f, 0.40821073f},
        .std = {0.26862954f, 0.26130258f, 0.27577711f},
    };
}

/* The settings §4 is written for: square crops made of whole patches, even margins (2x2 pooling
 * must not split a margin), a pooled grid of ceil(patches / 2) per side. `where` names the file
 * (or "preprocessor config") in messages. */
static int check_config(const struct molmo_preproc_config *c, const char *where,
                        struct jb_err *err) {
    if (c->patch < 1 || c->patch > 64)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: image_patch_size %d out of range", where,
                          c->patch);
    if (c->base_h != c->base_w || c->base_h < c->patch || c->base_h > 4096 ||
        c->base_h % c->patch)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: base_image_input_size [%d, %d] must be square and a multiple of "
                          "image_patch_size %d",
                          where, c->base_h, c->base_w, c->patch);
    int P = c->base_h / c->patch, ml = c->overlap_margins[0], mr = c->overlap_margins[1];
    if (ml < 0 || mr < 0 || ml % 2 || mr % 2 || P - ml - mr < 2 || (P - ml - mr) % 2)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: overlap_margins [%d, %d] must be even and leave an even window "
                          "of %d patches",
                          where, ml, mr, P);
    if (c->tokens_h != (P + 1) / 2 || c->tokens_w != (P + 1) / 2)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: image_token_length_h/w %d/%d must be %d (2x2 pooling of %d "
                          "patches)",
                          where, c->tokens_h, c->tokens_w, (P + 1) / 2, P);
    if (c->max_crops < 1 || c->max_crops > 1024)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: max_crops %d out of range 1..1024", where,
                          c->max_crops);
    for (int i = 0; i < 3; i++)
        if (!(c->std[i] != 0.0f) || !isfinite(c->std[i]) || !isfinite(c->mean[i]))
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: image_mean/image_std[%d] unusable",
                              where, i);
    return 0;
}

/* Reads an array of n numbers; integral says each must be a whole number fitting in int. */
static int get_num_array(const json_t *obj, const char *key, int n, bool integral, int *iout,
                         float *fout, const char *path, struct jb_err *err) {
    const json_t *a = json_object_get(obj, key);
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a) || (int)json_array_size(a) != n)
        return jb_err_set(err, JB_EFORMAT, "%s: field '%s' must be an array of %d numbers", path,
                          key, n);
    for (int i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_number(v))
            return jb_err_set(err, JB_EFORMAT, "%s: field '%s'[%d] is %s, not a number", path,
                              key, i, jb_json_type_name(v));
        double d = json_number_value(v);
        if (integral) {
            if (d != floor(d) || d < -1e6 || d > 1e6)
                return jb_err_set(err, JB_EFORMAT, "%s: field '%s'[%d] = %g is not an integer",
                                  path, key, i, d);
            iout[i] = (int)d;
        } else {
            fout[i] = (float)d;
        }
    }
    return 0;
}

static int get_int(const json_t *obj, const char *key, int *out, const char *path,
                   struct jb_err *err) {
    long long v = *out;
    int rc = jb_json_get_int(obj, key, &v, false, path, err);
    if (rc) return rc;
    if (v < -1000000 || v > 1000000)
        return jb_err_set(err, JB_EFORMAT, "%s: field '%s' = %lld out of range", path, key, v);
    *out = (int)v;
    return 0;
}

int molmo_preproc_config_load(struct molmo_preproc_config *c, const char *path,
                              struct jb_err *err) {
    json_t *root = NULL;
    molmo_preproc_config_default(c);
    int rc = jb_json_load_file(path, &root, err);
    if (rc) return rc;
    if (!json_is_object(root)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: not a JSON object", path);
        goto out;
    }
    int base[2] = {c->base_h, c->base_w};
    bool normalize = true;
    if ((rc = get_num_array(root, "base_image_input_size", 2, true, base, NULL, path, err)) ||
        (rc = get_int(root, "image_patch_size", &c->patch, path, err)) ||
        (rc = get_int(root, "image_token_length_h", &c->tokens_h, path, err)) ||
        (rc = get_int(root, "image_token_length_w", &c->tokens_w, path, err)) ||
        (rc = get_int(root, "max_crops", &c->max_crops, path, err)) ||
        (rc = get_num_array(root, "overlap_margins", 2, true, c->overlap_margins, NULL, path,
                            err)) ||
        (rc = get_num_array(root, "image_mean", 3, false, NULL, c->mean, path, err)) ||
        (rc = get_num_array(root, "image_std", 3, false, NULL, c->std, path, err)) ||
        (rc = jb_json_get_bool(root, "do_normalize", &normalize, false, path, err)))
        goto out;
    c->base_h = base[0];
    c->base_w = base[1];
    if (!normalize) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: field 'do_normalize' false is not supported "
                        "(every released checkpoint normalizes)", path);
        goto out;
    }
    rc = check_config(c, path, err);
out:
    json_decref(root);
    return rc;
}

void molmo_preprocessed_free(struct molmo_preprocessed *p) {
    if (!p) return;
    free(p->images);
    free(p->image_masks);
    free(p->image_input_idx);
    free(p->tokens);
    memset(p, 0, sizeof *p);
}

/* ---- §4.1 crop grid ------------------------------------------------------------------------- */

/* float32 a / b where b may be 0: NumPy gives +inf for a positive a (a > 0 here), which C would
 * too under IEEE 754, but spelling it out keeps UBSan's float-divide-by-zero quiet. */
static float div_or_inf(float a, float b) { return b == 0.0f ? INFINITY : a / b; }

void molmo_crop_grid(const struct molmo_preproc_config *c, int w, int h, int *rows, int *cols) {
    int P = c->base_h / c->patch, m = c->overlap_margins[0] + c->overlap_margins[1];
    int window_px = (P - m) * c->patch;         /* 224 */
    int margin_px = m * c->patch;               /* 112 */
    float dh = (float)(h - margin_px), dw = (float)(w - margin_px);
    /* Candidates in (r*c, r) order; s < 1 everywhere: the largest s; else the smallest s >= 1;
     * strict comparisons keep the first of equals (np.argmax / np.argmin). */
    int best_r = 1, best_c = 1;
    float best_down = -INFINITY, best_up = INFINITY;
    bool any_up = false;
    int down_r = 1, down_c = 1;
    for (int n = 1; n <= c->max_crops; n++) {
        for (int r = 1; r <= n; r++) {
            if (n % r) continue;
            int cc = n / r;
            float sr = div_or_inf((float)(window_px * r), dh);
            float sc = div_or_inf((float)(window_px * cc), dw);
            float s = sr < sc ? sr : sc;
            if (s >= 1.0f) {
                if (!any_up || s < best_up) {
                    best_up = s;
                    best_r = r;
                    best_c = cc;
                }
                any_up = true;
            } else if (s > best_down) {
                best_down = s;
                down_r = r;
                down_c = cc;
            }
        }
    }
    *rows = any_up ? best_r : down_r;
    *cols = any_up ? best_c : down_c;
}

/* ---- §4.2 resize-and-pad geometry ---------------------------------------------------------- */

struct fit {
    int sh, sw, top, left;
};

static int fit_size(struct fit *f, int h, int w, int th, int tw, struct jb_err *err) {
    float sy = (float)th / (float)h, sx = (float)tw / (float)w;
    float scale = sx < sy ? sx : sy; /* Python min(x, y): y only when strictly smaller */
    f->sh = (int)((float)h * scale);
    f->sw = (int)((float)w * scale);
    if (f->sh < 1 || f->sw < 1 || f->sh > th || f->sw > tw)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "a %d x %d image would be resized to %d x %d pixels to fit %d x %d "
                          "(aspect ratio too extreme)",
                          w, h, f->sw, f->sh, tw, th);
    f->top = (th - f->sh) / 2;
    f->left = (tw - f->sw) / 2;
    return 0;
}

/* ---- layout (everything that depends on the size only) -------------------------------------- */

/* Rows (or columns) of the pooled 12x12 grid that crop i of n keeps: first kept index *a0, count
 * *nk (§4.6, the reference's crop_y0 and pooled_h). */
static void kept_span(int i, int n, int window_patches, int ml, int mr, int *a0, int *nk) {
    int span = window_patches + (i == 0 ? ml : 0) + (i == n - 1 ? mr : 0);
    *a0 = i == 0 ? 0 : ml / 2;
    *nk = (span + 1) / 2;
}

int molmo_preprocess_layout(struct molmo_preprocessed *out, int width, int height,
                            const struct molmo_preproc_config *c,
                            const struct molmo_image_token_ids *ids, struct jb_err *err) {
    memset(out, 0, sizeof *out);
    int rc = check_config(c, "preprocessor config", err);
    if (rc) return rc;
    if (width < 1 || height < 1)
        return jb_err_set(err, JB_EINVAL, "image of %d x %d pixels", width, height);
    int p = c->patch, P = c->base_h / p, ml = c->overlap_margins[0], mr = c->overlap_margins[1];
    int Wp = P - ml - mr;                 /* window patches per crop side (16) */
    int Th = c->tokens_h, Tw = c->tokens_w;
    int r, cc;
    molmo_crop_grid(c, width, height, &r, &cc);
    int th = r * Wp * p + (ml + mr) * p, tw = cc * Wp * p + (ml + mr) * p;
    struct fit hr, global;
    if ((rc = fit_size(&hr, height, width, th, tw, err)) ||
        (rc = fit_size(&global, height, width, c->base_h, c->base_w, err)))
        return rc;

    /* Pooled grid of the high-resolution block: R x C tokens (8r+4 x 8c+4). */
    int R = 0, C = 0, a0, nk;
    for (int i = 0; i < r; i++) kept_span(i, r, Wp, ml, mr, &a0, &nk), R += nk;
    for (int j = 0; j < cc; j++) kept_span(j, cc, Wp, ml, mr, &a0, &nk), C += nk;

    out->grid_rows = r;
    out->grid_cols = cc;
    out->n_crops = 1 + r * cc;
    out->n_patches = P * P;
    out->patch_dim = p * p * 3;
    out->n_pooled = Th * Tw;
    size_t n_global = (size_t)Th * (Tw + 1) + 2, n_hr = (size_t)R * (C + 1) + 2;
    out->n_tokens = n_global + n_hr;
    size_t N = (size_t)out->n_crops;
    out->image_masks = malloc(sizeof(float) * N * out->n_patches);
    out->image_input_idx = malloc(sizeof(int32_t) * N * out->n_pooled);
    out->tokens = malloc(sizeof(int32_t) * out->n_tokens);
    if (!out->image_masks || !out->image_input_idx || !out->tokens) {
        molmo_preprocessed_free(out);
        return jb_err_set(err, JB_ENOMEM, "out of memory for the image token layout");
    }

    /* §4.7 tokens. */
    int32_t *t = out->tokens;
    *t++ = ids->im_start;
    for (int y = 0; y < Th; y++) {
        for (int x = 0; x < Tw; x++) *t++ = ids->im_patch;
        *t++ = ids->im_col;
    }
    *t++ = ids->im_end;
    *t++ = ids->im_start;
    for (int y = 0; y < R; y++) {
        for (int x = 0; x < C; x++) *t++ = ids->im_patch;
        *t++ = ids->im_col;
    }
    *t++ = ids->im_end;

    /* §4.7 image_input_idx; position 0 is BOS, the global block's <im_start> is 1. */
    int32_t *idx = out->image_input_idx;
    for (int y = 0; y < Th; y++)
        for (int x = 0; x < Tw; x++) idx[y * Tw + x] = 2 + y * (Tw + 1) + x;
    int32_t hr_first = (int32_t)(1 + n_global + 1); /* the first <im_patch> of the hr block */
    int row_off = 0;
    for (int i = 0; i < r; i++) {
        int ra0, rn;
        kept_span(i, r, Wp, ml, mr, &ra0, &rn);
        int col_off = 0;
        for (int j = 0; j < cc; j++) {
            int ca0, cn;
            kept_span(j, cc, Wp, ml, mr, &ca0, &cn);
            int32_t *ci = idx + (size_t)(1 + i * cc + j) * out->n_pooled;
            for (int y = 0; y < Th; y++) {
                for (int x = 0; x < Tw; x++) {
                    bool kept = y >= ra0 && y < ra0 + rn && x >= ca0 && x < ca0 + cn;
                    int gy = row_off + y - ra0, gx = col_off + x - ca0;
                    ci[y * Tw + x] = kept ? hr_first + gy * (C + 1) + gx : DROPPED_IDX;
                }
            }
            col_off += cn;
        }
        row_off += rn;
    }

    /* §4.8 masks: real-pixel fraction of each patch of high-res crop k+1 (hr crops counted from
     * 0), as count / (p*p) in float32 (the reference's mean of 0/1 float32 values), in row k;
     * the last row is -1. */
    float *m = out->image_masks;
    float area = (float)(p * p);
    for (int k = 0; k < r * cc; k++) {
        int y0 = (k / cc) * Wp * p, x0 = (k % cc) * Wp * p;
        for (int py = 0; py < P; py++) {
            int ya = y0 + py * p, yb = ya + p;
            int ny = (yb < hr.top + hr.sh ? yb : hr.top + hr.sh) - (ya > hr.top ? ya : hr.top);
            if (ny < 0) ny = 0;
            for (int px = 0; px < P; px++) {
                int xa = x0 + px * p, xb = xa + p;
                int nx = (xb < hr.left + hr.sw ? xb : hr.left + hr.sw) -
                         (xa > hr.left ? xa : hr.left);
                if (nx < 0) nx = 0;
                m[(size_t)k * out->n_patches + py * P + px] = (float)(ny * nx) / area;
            }
        }
    }
    for (int i = 0; i < out->n_patches; i++)
        m[(size_t)(N - 1) * out->n_patches + i] = -1.0f;
    return 0;
}

/* ---- §4.3 antialiased bilinear resize ------------------------------------------------------- */

/* The two resize loops are compiled twice, for CPUs with FMA (fmaf becomes one vfmadd
 * instruction) and without (a call into libm), and picked at load time. fmaf is exactly rounded
 * either way, so both give the same bits; the FMA build is ~5x faster on a 4000 x 3000 photo. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define FMA_CLONES __attribute__((target_clones("fma", "default")))
#endif
#endif
#ifndef FMA_CLONES
#define FMA_CLONES
#endif

/* Filter taps of one axis n_in -> n_out (PyTorch's _compute_indices_weights_aa for float):
 * output i reads n[i] inputs from start[i] with weights w[i * max_taps + j]. */
struct taps {
    int *start, *n;
    float *w;
    int max_taps;
};

static void taps_free(struct taps *t) {
    free(t->start);
    free(t->n);
    free(t->w);
    memset(t, 0, sizeof *t);
}

static int taps_make(struct taps *t, int n_in, int n_out) {
    memset(t, 0, sizeof *t);
    float scale = (float)n_in / (float)n_out;
    float support = scale >= 1.0f ? scale : 1.0f;
    float inv = scale >= 1.0f ? (float)(1.0 / (double)scale) : 1.0f;
    t->max_taps = (int)ceil((double)support) * 2 + 1;
    t->start = malloc(sizeof(int) * (size_t)n_out);
    t->n = malloc(sizeof(int) * (size_t)n_out);
    t->w = malloc(sizeof(float) * (size_t)n_out * (size_t)t->max_taps);
    if (!t->start || !t->n || !t->w) {
        taps_free(t);
        return JB_ENOMEM;
    }
    for (int i = 0; i < n_out; i++) {
        float center = (float)((double)scale * (i + 0.5));
        long xmin = (long)((double)(center - support) + 0.5);
        long xmax = (long)((double)(center + support) + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > n_in) xmax = n_in;
        int n = (int)(xmax - xmin);
        if (n > t->max_taps) n = t->max_taps; /* cannot happen: the span is < 2 support + 1 */
        float *w = t->w + (size_t)i * t->max_taps, total = 0.0f;
        for (int j = 0; j < n; j++) {
            float d = (float)(xmin + j) - center;
            float x = fabsf((float)(((double)d + 0.5) * (double)inv));
            w[j] = x < 1.0f ? 1.0f - x : 0.0f;
            total += w[j];
        }
        if (total != 0.0f)
            for (int j = 0; j < n; j++) w[j] /= total;
        t->start[i] = (int)xmin;
        t->n[i] = n;
    }
    return 0;
}

/* Horizontal pass of rows [y0, y1): u8 RGB rows of width w_in -> float RGB rows of width
 * tx's n_out, pixel values v / 255 in float32. One rounding per tap (fmaf), in tap order. */
FMA_CLONES
static void resize_rows(float *restrict out, const uint8_t *restrict in, int w_in, int w_out,
                        int y0, int y1, const struct taps *tx, const float *lut) {
    for (int y = y0; y < y1; y++) {
        const uint8_t *src = in + (size_t)y * w_in * 3;
        float *dst = out + (size_t)y * w_out * 3;
        for (int x = 0; x < w_out; x++) {
            const float *w = tx->w + (size_t)x * tx->max_taps;
            const uint8_t *s = src + (size_t)tx->start[x] * 3;
            float a0 = lut[s[0]] * w[0], a1 = lut[s[1]] * w[0], a2 = lut[s[2]] * w[0];
            for (int j = 1; j < tx->n[x]; j++) {
                a0 = fmaf(lut[s[3 * j + 0]], w[j], a0);
                a1 = fmaf(lut[s[3 * j + 1]], w[j], a1);
                a2 = fmaf(lut[s[3 * j + 2]], w[j], a2);
            }
            dst[3 * x + 0] = a0;
            dst[3 * x + 1] = a1;
            dst[3 * x + 2] = a2;
        }
    }
}

/* Vertical pass for output row y: n values (a row of the intermediate, interleaved RGB). */
FMA_CLONES
static void resize_col_row(float *restrict out, const float *restrict mid, size_t n, int y,
                           const struct taps *ty) {
    const float *w = ty->w + (size_t)y * ty->max_taps;
    const float *s = mid + (size_t)ty->start[y] * n;
    for (size_t k = 0; k < n; k++) out[k] = s[k] * w[0];
    for (int j = 1; j < ty->n[y]; j++) {
        const float *sj = s + (size_t)j * n;
        float wj = w[j];
        for (size_t k = 0; k < n; k++) out[k] = fmaf(sj[k], wj, out[k]);
    }
}

int molmo_resize_pad(float *out, const struct molmo_image *img, int th, int tw,
                     const struct molmo_preproc_config *c, int *top, int *left, int *sh, int *sw,
                     struct jb_err *err) {
    struct fit f;
    int rc = fit_size(&f, img->height, img->width, th, tw, err);
    if (rc) return rc;
    int h = img->height, w = img->width;
    struct taps tx = {0}, ty = {0};
    float *mid = NULL, *row = NULL;
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    bool do_x = f.sw != w, do_y = f.sh != h;
    if ((do_x && taps_make(&tx, w, f.sw)) || (do_y && taps_make(&ty, h, f.sh))) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory for resize weights");
        goto out;
    }
    /* Width first (each row), then height; an axis whose size does not change is skipped. */
    mid = malloc(sizeof(float) * (size_t)h * f.sw * 3);
    row = malloc(sizeof(float) * (size_t)f.sw * 3);
    if (!mid || !row) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory resizing a %d x %d image", w, h);
        goto out;
    }
    if (do_x) {
        resize_rows(mid, img->rgb, w, f.sw, 0, h, &tx, lut);
    } else {
        for (size_t k = 0; k < (size_t)h * w * 3; k++) mid[k] = lut[img->rgb[k]];
    }
    /* Padding is 0 before normalization, so it becomes -mean/std. */
    float pad[3];
    for (int ch = 0; ch < 3; ch++) pad[ch] = (0.0f - c->mean[ch]) / c->std[ch];
    for (int y = 0; y < th; y++) {
        float *o = out + (size_t)y * tw * 3;
        const float *src = NULL;
        if (y >= f.top && y < f.top + f.sh) {
            int ys = y - f.top;
            if (do_y) {
                resize_col_row(row, mid, (size_t)f.sw * 3, ys, &ty);
                src = row;
            } else {
                src = mid + (size_t)ys * f.sw * 3;
            }
        }
        for (int x = 0; x < tw; x++) {
            bool real = src && x >= f.left && x < f.left + f.sw;
            for (int ch = 0; ch < 3; ch++) {
                if (!real) {
                    o[3 * x + ch] = pad[ch];
                    continue;
                }
                float v = src[3 * (x - f.left) + ch];
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; /* torch.clip(0, 1) */
                o[3 * x + ch] = (v - c->mean[ch]) / c->std[ch];
            }
        }
    }
    if (top) *top = f.top;
    if (left) *left = f.left;
    if (sh) *sh = f.sh;
    if (sw) *sw = f.sw;
out:
    taps_free(&tx);
    taps_free(&ty);
    free(mid);
    free(row);
    return rc;
}

/* ---- §4.4, §4.5 crops ----------------------------------------------------------------------- */

/* Cuts the P*P patches of the base x base window at (y0, x0) of a canvas (width cw, RGB floats)
 * into dst [P*P, p*p*3], values ordered (dy, dx, channel). */
static void patchify(float *restrict dst, const float *restrict canvas, int cw, int y0, int x0,
                     int P, int p) {
    for (int py = 0; py < P; py++)
        for (int px = 0; px < P; px++)
            for (int dy = 0; dy < p; dy++) {
                const float *s = canvas + ((size_t)(y0 + py * p + dy) * cw + x0 + px * p) * 3;
                memcpy(dst, s, sizeof(float) * (size_t)p * 3);
                dst += (size_t)p * 3;
            }
}

int molmo_preprocess(struct molmo_preprocessed *out, const struct molmo_image *img,
                     const struct molmo_preproc_config *c, const struct molmo_image_token_ids *ids,
                     struct jb_err *err) {
    int rc = molmo_preprocess_layout(out, img->width, img->height, c, ids, err);
    if (rc) return rc;
    int p = c->patch, P = c->base_h / p, ml = c->overlap_margins[0], mr = c->overlap_margins[1];
    int Wp = P - ml - mr;
    int th = out->grid_rows * Wp * p + (ml + mr) * p, tw = out->grid_cols * Wp * p + (ml + mr) * p;
    size_t crop_len = (size_t)out->n_patches * out->patch_dim;
    float *canvas = malloc(sizeof(float) * (size_t)th * tw * 3);
    out->images = malloc(sizeof(float) * crop_len * (size_t)out->n_crops);
    if (!canvas || !out->images) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory for %d image crops", out->n_crops);
        goto out;
    }
    /* Crop 0: the whole image in one base x base view (canvas reused as scratch). */
    if ((rc = molmo_resize_pad(canvas, img, c->base_h, c->base_w, c, NULL, NULL, NULL, NULL,
                               err)))
        goto out;
    patchify(out->images, canvas, c->base_w, 0, 0, P, p);
    if ((rc = molmo_resize_pad(canvas, img, th, tw, c, NULL, NULL, NULL, NULL, err))) goto out;
    for (int k = 0; k < out->grid_rows * out->grid_cols; k++) {
        int y0 = (k / out->grid_cols) * Wp * p, x0 = (k % out->grid_cols) * Wp * p;
        patchify(out->images + (size_t)(k + 1) * crop_len, canvas, tw, y0, x0, P, p);
    }
out:
    free(canvas);
    if (rc) molmo_preprocessed_free(out);
    return rc;
}
