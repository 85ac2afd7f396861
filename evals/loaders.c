/* Dataset loaders (evals.md §5, §7): each reads the files a benchmark's users download (or the
 * JSONL a Hugging Face parquet snapshot converts to, see README.md) into samples, checking every
 * record before the run starts. */
#include "config.h"

#include "evals/evals-impl.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-mmap.h"

#include <jansson.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct evals_sample {
    char *id, *image, *question, *prompt, *subset;
    char **refs;
    size_t n_refs;
    char **choices;
    size_t n_choices;
    struct evals_region *regions;
    size_t n_regions;
    int width, height, max_new_tokens;
    enum evals_metric metric;
};

struct evals_loader {
    const struct evals_suite *suite;
    struct evals_loader_opts opts;
    struct evals_sample *v;
    size_t n, cap, pos;
    char **bad;
    size_t n_bad;
    char layout[512];
    struct sha256_ctx sha; /* over every annotation file read, in order */
    char digest[65];
};

/* ---------------------------------------------------------------------------------------------
 * Small helpers */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* A dataset file's path: an absolute path in the dataset's own records is kept as it is (some
 * official files name images absolutely), else it is taken in dir. */
static char *path_join(const char *dir, const char *b) {
    return b[0] == '/' ? strdup(b) : jb_path_join(dir, b);
}

static bool readable(const char *path) { return access(path, R_OK) == 0; }

/* The first of dir/names[i] that exists (malloc'd), or NULL. */
static char *probe(const char *dir, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char *p = path_join(dir, names[i]);
        if (p && readable(p)) return p;
        free(p);
    }
    return NULL;
}

/* A JSON scalar as text: strings as they are, integers in decimal, reals in the shortest form
 * that reads back (Python's repr), booleans as true/false. NULL for other types. */
static char *scalar_text(const json_t *v) {
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (json_is_integer(v)) return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v)) {
        double d = json_real_value(v);
        for (int prec = 1; prec <= 17; prec++) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.*g", prec, d);
            if (strtod(buf, NULL) == d) return strdup(buf);
        }
    }
    if (json_is_boolean(v)) return strdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

static void free_strv(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* A string or a list of scalars as a string vector (malloc'd); false when v is neither. */
static bool strv_from_json(const json_t *v, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!v) return false;
    if (!json_is_array(v)) {
        char *s = scalar_text(v);
        if (!s) return false;
        *out = malloc(sizeof **out);
        if (!*out) {
            free(s);
            return false;
        }
        (*out)[0] = s;
        *n = 1;
        return true;
    }
    size_t k = json_array_size(v);
    *out = calloc(k ? k : 1, sizeof **out);
    if (!*out) return false;
    for (size_t i = 0; i < k; i++) {
        const json_t *e = json_array_get(v, i);
        /* VQA v2 annotations: [{answer, answer_confidence, answer_id}] */
        if (json_is_object(e)) e = json_object_get(e, "answer");
        char *s = scalar_text(e);
        if (!s) {
            free_strv(*out, i);
            *out = NULL;
            return false;
        }
        (*out)[i] = s;
    }
    *n = k;
    return true;
}

/* MMMU ships `options` as the text of a Python list ("['a', 'b']"); this reads the quoted
 * strings of such a literal (backslash escapes of ' " \ n t). */
static bool strv_from_pylist(const char *s, char ***out, size_t *n) {
    size_t cap = 8, k = 0;
    char **v = calloc(cap, sizeof *v);
    if (!v) return false;
    const char *p = s;
    while (*p == ' ') p++;
    if (*p++ != '[') goto fail;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ']') break;
        char q = *p;
        if (q != '\'' && q != '"') goto fail;
        p++;
        char *buf = malloc(strlen(p) + 1);
        if (!buf) goto fail;
        size_t o = 0;
        while (*p && *p != q) {
            if (*p == '\\' && p[1]) {
                p++;
                buf[o++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            } else
                buf[o++] = *p;
            p++;
        }
        buf[o] = '\0';
        if (*p != q) {
            free(buf);
            goto fail;
        }
        p++;
        if (k == cap) {
            char **w = realloc(v, 2 * cap * sizeof *v);
            if (!w) {
                free(buf);
                goto fail;
            }
            v = w;
            cap *= 2;
        }
        v[k++] = buf;
    }
    *out = v;
    *n = k;
    return true;
fail:
    free_strv(v, k);
    return false;
}

/* Width and height from a PNG's IHDR or a JPEG's SOF marker; false when neither. */
static bool image_dims(const char *path, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char b[32];
    bool ok = false;
    if (fread(b, 1, 24, f) == 24 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
        *w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
        *h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
        ok = true;
    } else if (b[0] == 0xff && b[1] == 0xd8) {
        long pos = 2;
        while (fseek(f, pos, SEEK_SET) == 0 && fread(b, 1, 9, f) == 9 && b[0] == 0xff) {
            int marker = b[1], len = (b[2] << 8) | b[3];
            if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 &&
                marker != 0xcc) {
                *h = (b[5] << 8) | b[6];
                *w = (b[7] << 8) | b[8];
                ok = true;
                break;
            }
            pos += 2 + len;
        }
    }
    fclose(f);
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Regions (pointing references) */

static void regions_free(struct evals_region *r, size_t n) {
    if (!r) return;
    for (size_t i = 0; i < n; i++) {
        free((void *)r[i].poly);
        free((void *)r[i].bits);
    }
    free(r);
}

static bool num_array(const json_t *a, double *out, size_t n) {
    if (!json_is_array(a) || json_array_size(a) != n) return false;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        if (!json_is_number(e)) return false;
        out[i] = json_number_value(e);
    }
    return true;
}

/* One object of a pointing reference: {"circle": [cx, cy, r]}, {"box": [x0, y0, x1, y1]},
 * {"polygon": [x0, y0, x1, y1, ...]} (each with an optional "point": [x, y]), or a mask as a
 * list of rows of 0/1 (PixMo-Points). Returns false with *why set when malformed. */
static bool region_from_json(const json_t *m, struct evals_region *r, const char **why) {
    memset(r, 0, sizeof *r);
    *why = "a mask is a {circle|box|polygon} object or a list of 0/1 rows";
    const json_t *v;
    if (json_is_array(m)) {
        size_t h = json_array_size(m), w = h ? json_array_size(json_array_get(m, 0)) : 0;
        if (!h || !w) return false;
        unsigned char *bits = calloc(w * h, 1);
        if (!bits) return false;
        double sx = 0, sy = 0, cnt = 0;
        for (size_t y = 0; y < h; y++) {
            const json_t *row = json_array_get(m, y);
            if (!json_is_array(row) || json_array_size(row) != w) {
                free(bits);
                return false;
            }
            for (size_t x = 0; x < w; x++) {
                const json_t *e = json_array_get(row, x);
                int on = json_is_true(e) || (json_is_integer(e) && json_integer_value(e));
                bits[y * w + x] = (unsigned char)on;
                if (on) sx += (double)x, sy += (double)y, cnt++;
            }
        }
        r->kind = EVALS_REGION_BITMAP;
        r->bits = bits;
        r->w = (int)w;
        r->h = (int)h;
        r->x = cnt ? sx / cnt : 0;
        r->y = cnt ? sy / cnt : 0;
        return true;
    }
    if (!json_is_object(m)) return false;
    if ((v = json_object_get(m, "circle"))) {
        if (!num_array(v, r->c, 3)) return false;
        r->kind = EVALS_REGION_CIRCLE;
        r->x = r->c[0];
        r->y = r->c[1];
    } else if ((v = json_object_get(m, "box"))) {
        if (!num_array(v, r->c, 4)) return false;
        r->kind = EVALS_REGION_BOX;
        r->x = (r->c[0] + r->c[2]) / 2;
        r->y = (r->c[1] + r->c[3]) / 2;
    } else if ((v = json_object_get(m, "polygon"))) {
        size_t n = json_array_size(v);
        if (n < 6 || n % 2) return false;
        double *p = malloc(n * sizeof *p);
        if (!p || !num_array(v, p, n)) {
            free(p);
            return false;
        }
        r->kind = EVALS_REGION_POLYGON;
        r->poly = p;
        r->n_poly = (int)(n / 2);
        for (size_t i = 0; i < n / 2; i++) r->x += p[2 * i] / (double)(n / 2),
                                            r->y += p[2 * i + 1] / (double)(n / 2);
    } else
        return false;
    double pt[2];
    if ((v = json_object_get(m, "point"))) {
        if (!num_array(v, pt, 2)) return false;
        r->x = pt[0];
        r->y = pt[1];
    }
    return true;
}

static bool regions_from_json(const json_t *a, struct evals_region **out, size_t *n,
                              const char **why) {
    *out = NULL;
    *n = 0;
    *why = "'masks' should be a list";
    if (!json_is_array(a)) return false;
    size_t k = json_array_size(a);
    struct evals_region *r = calloc(k ? k : 1, sizeof *r);
    if (!r) return false;
    for (size_t i = 0; i < k; i++)
        if (!region_from_json(json_array_get(a, i), &r[i], why)) {
            regions_free(r, i + 1);
            return false;
        }
    *out = r;
    *n = k;
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Samples */

struct sample_in {
    const char *id, *image, *question, *subset, *style;
    char **refs; /* taken over */
    size_t n_refs;
    char **choices; /* taken over */
    size_t n_choices;
    struct evals_region *regions; /* taken over */
    size_t n_regions;
    enum evals_metric metric;
    int width, height, max_new_tokens;
};

static void sample_free(struct evals_sample *x) {
    free(x->id);
    free(x->image);
    free(x->question);
    free(x->prompt);
    free(x->subset);
    free_strv(x->refs, x->n_refs);
    free_strv(x->choices, x->n_choices);
    regions_free(x->regions, x->n_regions);
}

static char *make_prompt(const char *style, const char *question, char *const *choices,
                         size_t n_choices) {
    size_t len = strlen(style) + strlen(question) + 8;
    for (size_t i = 0; i < n_choices; i++) len += strlen(choices[i]) + 8;
    char *p = malloc(len);
    if (!p) return NULL;
    size_t o = 0;
    if (style[0]) o += (size_t)sprintf(p + o, "%s: ", style);
    o += (size_t)sprintf(p + o, "%s", question);
    if (n_choices) {
        p[o++] = '\n';
        for (size_t i = 0; i < n_choices && i < 26; i++)
            o += (size_t)sprintf(p + o, "%c: %s\n", (int)('A' + i), choices[i]);
    }
    p[o] = '\0';
    return p;
}

/* Adds a sample, taking over in's vectors (freed on failure too). */
static int add_sample(struct evals_loader *l, struct sample_in *in, struct jb_err *err) {
    struct evals_sample x = {0};
    x.refs = in->refs;
    x.n_refs = in->n_refs;
    x.choices = in->choices;
    x.n_choices = in->n_choices;
    x.regions = in->regions;
    x.n_regions = in->n_regions;
    in->refs = NULL, in->choices = NULL, in->regions = NULL;
    x.metric = in->metric;
    x.width = in->width;
    x.height = in->height;
    x.max_new_tokens = in->max_new_tokens ? in->max_new_tokens : l->suite->max_new_tokens;
    const char *style = l->opts.no_style ? "" : in->style ? in->style : l->suite->style;
    x.id = strdup(in->id);
    x.image = in->image ? strdup(in->image) : NULL;
    x.question = strdup(in->question);
    x.subset = strdup(in->subset ? in->subset : "");
    x.prompt = make_prompt(style, in->question, x.choices, x.n_choices);
    if (!x.id || (in->image && !x.image) || !x.question || !x.subset || !x.prompt) goto nomem;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        struct evals_sample *v = realloc(l->v, cap * sizeof *v);
        if (!v) goto nomem;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
nomem:
    sample_free(&x);
    return jb_err_set(err, JB_ENOMEM, "out of memory loading %s", l->suite->name);
}

static void in_clear(struct sample_in *in) {
    free_strv(in->refs, in->n_refs);
    free_strv(in->choices, in->n_choices);
    regions_free(in->regions, in->n_regions);
    in->refs = NULL, in->choices = NULL, in->regions = NULL;
}

/* A bad record: with skip_bad it is listed and 1 is returned (skip it); else the error. */
static int bad(struct evals_loader *l, struct jb_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct evals_loader *l, struct jb_err *err, const char *fmt, ...) {
    char msg[JB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!l->opts.skip_bad)
        return jb_err_set(err, JB_EFORMAT, "%s (--skip-bad skips such records)", msg);
    char **b = realloc(l->bad, (l->n_bad + 1) * sizeof *b);
    if (!b) return jb_err_set(err, JB_ENOMEM, "out of memory");
    l->bad = b;
    if (!(l->bad[l->n_bad] = strdup(msg))) return jb_err_set(err, JB_ENOMEM, "out of memory");
    l->n_bad++;
    return 1;
}

static bool full(const struct evals_loader *l) { return l->opts.limit && l->n >= l->opts.limit; }

/* Parses one JSON Lines line; `where` is "file:LINE", and a syntax error reads
 * "file:LINE:COLUMN: invalid JSON: what". */
static int parse_line(const char *text, size_t len, const char *where, json_t **out,
                      struct jb_err *err) {
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (*out) return 0;
    return jb_err_set(err, JB_EFORMAT, "%s:%d: invalid JSON: %s", where, je.column, je.text);
}

/* Reads an annotation file whole, adding its bytes to the dataset digest. */
static int read_all(struct evals_loader *l, const char *path, char **buf, size_t *len,
                    struct jb_err *err) {
    size_t n = 0;
    int rc = jb_file_read_all(path, buf, &n, err);
    if (rc == 0) sha256_update(&l->sha, n, (const uint8_t *)*buf);
    if (len) *len = n;
    return rc;
}

static int load_json(struct evals_loader *l, const char *path, json_t **out, struct jb_err *err) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = read_all(l, path, &buf, &len, err);
    if (rc == 0) rc = jb_json_load_text(buf, len, path, out, err);
    free(buf);
    return rc;
}

/* Checks the image and adds the sample, or reports the record as bad. 0, 1 (skipped) or < 0. */
static int finish(struct evals_loader *l, struct sample_in *in, const char *where,
                  struct jb_err *err) {
    if (in->image && !readable(in->image)) {
        in_clear(in);
        return bad(l, err, "%s: image '%s' not found", where, in->image);
    }
    if (in->metric == EVALS_METRIC_POINTING_F1 && in->n_regions &&
        (in->width <= 0 || in->height <= 0) &&
        !(in->image && image_dims(in->image, &in->width, &in->height))) {
        in_clear(in);
        return bad(l, err, "%s: image size unknown (no width/height, image not PNG/JPEG)", where);
    }
    return add_sample(l, in, err);
}

/* A required string field, or bad(). */
#define REQ_STR(obj, key, var)                                                             \
    do {                                                                                   \
        const json_t *v_ = json_object_get(obj, key);                                      \
        if (!json_is_string(v_)) {                                                         \
            rc = bad(l, err, "%s: %s field '%s'", where, v_ ? "non-string" : "missing", key); \
            goto next;                                                                     \
        }                                                                                  \
        var = json_string_value(v_);                                                       \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * ChartQA: test/test_human.json and test/test_augmented.json, images test/png/ */

int evals_load_chartqa(struct evals_loader *l, const char *dir, struct jb_err *err) {
    static const char *const bases[] = {"test", ".", "synth-chart/test"};
    char *base = NULL;
    for (size_t i = 0; i < 3 && !base; i++) {
        char *b = path_join(dir, bases[i]), *f = b ? path_join(b, "test_human.json") : NULL;
        if (f && readable(f)) base = b;
        else free(b);
        free(f);
    }
    if (!base)
        return jb_err_set(err, JB_ENOTFOUND, "%s: no ChartQA files: expected %s", dir,
                          l->suite->layout);
    int rc = 0;
    static const char *const subsets[] = {"human", "augmented"};
    snprintf(l->layout, sizeof l->layout, "ChartQA JSON (%s/test_*.json)", base);
    for (int s = 0; s < 2 && !full(l); s++) {
        char *file = xasprintf("%s/test_%s.json", base, subsets[s]);
        json_t *root = NULL;
        if (!file) {
            rc = jb_err_set(err, JB_ENOMEM, "out of memory");
            break;
        }
        if (s == 1 && !readable(file)) { /* the synthetic suite has only the human part */
            free(file);
            break;
        }
        rc = load_json(l, file, &root, err);
        if (rc == 0 && !json_is_array(root))
            rc = jb_err_set(err, JB_EFORMAT, "%s: should be a list of {imgname, query, label}",
                            file);
        for (size_t i = 0; rc == 0 && i < json_array_size(root) && !full(l); i++) {
            const json_t *r = json_array_get(root, i);
            char where[600], id[64];
            snprintf(where, sizeof where, "%s: record %zu", file, i);
            snprintf(id, sizeof id, "%s-%zu", subsets[s], i);
            const char *img, *q;
            struct sample_in in = {.id = id, .subset = subsets[s],
                                   .metric = EVALS_METRIC_RELAXED_ACCURACY};
            REQ_STR(r, "imgname", img);
            REQ_STR(r, "query", q);
            if (!strv_from_json(json_object_get(r, "label"), &in.refs, &in.n_refs) ||
                !in.n_refs) {
                rc = bad(l, err, "%s: missing or non-text field 'label'", where);
                goto next;
            }
            char pngdir[600];
            snprintf(pngdir, sizeof pngdir, "%s/png", base);
            char *image = path_join(pngdir, img);
            in.image = image;
            in.question = q;
            rc = image ? finish(l, &in, where, err) : jb_err_set(err, JB_ENOMEM, "out of memory");
            free(image);
        next:
            if (rc > 0) rc = 0;
        }
        json_decref(root);
        free(file);
    }
    free(base);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * DocVQA and InfographicVQA: {data: [...]} */

static int load_rrc(struct evals_loader *l, const char *dir, const char *const *files,
                    size_t n_files, const char *image_key, const char *const *image_dirs,
                    size_t n_image_dirs, struct jb_err *err) {
    char *file = probe(dir, files, n_files);
    char *sub = NULL;
    if (!file && l->suite->synthetic) {
        sub = path_join(dir, l->suite->name);
        if (sub) file = probe(sub, files, n_files), dir = sub;
    }
    if (!file) {
        free(sub);
        return jb_err_set(err, JB_ENOTFOUND, "%s: no %s files: expected %s", dir, l->suite->name,
                          l->suite->layout);
    }
    snprintf(l->layout, sizeof l->layout, "RRC JSON (%s)", file);
    json_t *root = NULL;
    int rc = load_json(l, file, &root, err);
    const json_t *data = rc ? NULL : json_object_get(root, "data");
    if (rc == 0 && !json_is_array(data))
        rc = jb_err_set(err, JB_EFORMAT, "%s: no 'data' list", file);
    for (size_t i = 0; rc == 0 && i < json_array_size(data) && !full(l); i++) {
        const json_t *r = json_array_get(data, i);
        char where[600];
        snprintf(where, sizeof where, "%s: data[%zu]", file, i);
        struct sample_in in = {.metric = EVALS_METRIC_ANLS};
        const char *q, *img;
        char *id = scalar_text(json_object_get(r, "questionId")), *image = NULL;
        if (!id) {
            rc = bad(l, err, "%s: missing field 'questionId'", where);
            goto next;
        }
        REQ_STR(r, "question", q);
        REQ_STR(r, image_key, img);
        if (!strv_from_json(json_object_get(r, "answers"), &in.refs, &in.n_refs) || !in.n_refs) {
            rc = bad(l, err, "%s: no 'answers' (a test split is scored by the server)", where);
            goto next;
        }
        for (size_t d = 0; d < n_image_dirs && !image; d++) {
            char *b = path_join(dir, image_dirs[d]), *p = b ? path_join(b, img) : NULL;
            if (p && (readable(p) || d + 1 == n_image_dirs)) image = p;
            else free(p);
            free(b);
        }
        in.id = id;
        in.question = q;
        in.image = image;
        rc = image ? finish(l, &in, where, err) : jb_err_set(err, JB_ENOMEM, "out of memory");
    next:
        in_clear(&in);
        free(id);
        free(image);
        if (rc > 0) rc = 0;
    }
    json_decref(root);
    free(file);
    free(sub);
    return rc;
}

int evals_load_docvqa(struct evals_loader *l, const char *dir, struct jb_err *err) {
    static const char *const files[] = {"val_v1.0_withQT.json", "val_v1.0.json",
                                        "val/val_v1.0_withQT.json", "val/val_v1.0.json"};
    static const char *const dirs[] = {"."};
    return load_rrc(l, dir, files, 4, "image", dirs, 1, err);
}

int evals_load_infovqa(struct evals_loader *l, const char *dir, struct jb_err *err) {
    static const char *const files[] = {"infographicsVQA_val_v1.0_withQT.json",
                                        "infographicVQA_val_v1.0_withQT.json",
                                        "infographicsVQA_val_v1.0.json"};
    static const char *const dirs[] = {"infographicsvqa_images", "images", "."};
    return load_rrc(l, dir, files, 3, "image_local_name", dirs, 3, err);
}

/* ---------------------------------------------------------------------------------------------
 * TextVQA */

int evals_load_textvqa(struct evals_loader *l, const char *dir, struct jb_err *err) {
    static const char *const files[] = {"TextVQA_0.5.1_val.json"};
    char *file = probe(dir, files, 1);
    if (!file)
        return jb_err_set(err, JB_ENOTFOUND, "%s: no TextVQA files: expected %s", dir,
                          l->suite->layout);
    snprintf(l->layout, sizeof l->layout, "TextVQA JSON (%s)", file);
    json_t *root = NULL;
    int rc = load_json(l, file, &root, err);
    const json_t *data = rc ? NULL : json_object_get(root, "data");
    if (rc == 0 && !json_is_array(data))
        rc = jb_err_set(err, JB_EFORMAT, "%s: no 'data' list", file);
    for (size_t i = 0; rc == 0 && i < json_array_size(data) && !full(l); i++) {
        const json_t *r = json_array_get(data, i);
        char where[600];
        snprintf(where, sizeof where, "%s: data[%zu]", file, i);
        struct sample_in in = {.metric = EVALS_METRIC_VQA_ACCURACY};
        const char *q, *img;
        char *id = scalar_text(json_object_get(r, "question_id")), *image = NULL;
        if (!id) {
            rc = bad(l, err, "%s: missing field 'question_id'", where);
            goto next;
        }
        REQ_STR(r, "question", q);
        REQ_STR(r, "image_id", img);
        if (!strv_from_json(json_object_get(r, "answers"), &in.refs, &in.n_refs) || !in.n_refs) {
            rc = bad(l, err, "%s: no 'answers'", where);
            goto next;
        }
        image = xasprintf("%s/train_images/%s.jpg", dir, img);
        in.id = id;
        in.question = q;
        in.image = image;
        rc = image ? finish(l, &in, where, err) : jb_err_set(err, JB_ENOMEM, "out of memory");
    next:
        in_clear(&in);
        free(id);
        free(image);
        if (rc > 0) rc = 0;
    }
    json_decref(root);
    free(file);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * VQA v2: questions + annotations joined on question_id */

struct qa { long long qid; size_t i; };
static int cmp_qa(const void *a, const void *b) {
    long long x = ((const struct qa *)a)->qid, y = ((const struct qa *)b)->qid;
    return (x > y) - (x < y);
}

int evals_load_vqav2(struct evals_loader *l, const char *dir, struct jb_err *err) {
    char *qf = path_join(dir, "v2_OpenEnded_mscoco_val2014_questions.json");
    char *af = path_join(dir, "v2_mscoco_val2014_annotations.json");
    json_t *qroot = NULL, *aroot = NULL;
    struct qa *idx = NULL;
    int rc = 0;
    if (!qf || !af) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    if (!readable(qf) || !readable(af)) {
        rc = jb_err_set(err, JB_ENOTFOUND, "%s: no VQA v2 files: expected %s", dir,
                        l->suite->layout);
        goto out;
    }
    snprintf(l->layout, sizeof l->layout, "VQA v2 JSON (%s)", dir);
    if ((rc = load_json(l, qf, &qroot, err)) || (rc = load_json(l, af, &aroot, err)))
        goto out;
    const json_t *qs = json_object_get(qroot, "questions");
    const json_t *as = json_object_get(aroot, "annotations");
    if (!json_is_array(qs) || !json_is_array(as)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: no 'questions' list, or %s no 'annotations' list",
                        qf, af);
        goto out;
    }
    size_t na = json_array_size(as);
    idx = malloc((na ? na : 1) * sizeof *idx);
    if (!idx) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < na; i++) {
        idx[i].qid = json_integer_value(json_object_get(json_array_get(as, i), "question_id"));
        idx[i].i = i;
    }
    qsort(idx, na, sizeof *idx, cmp_qa);
    for (size_t i = 0; rc == 0 && i < json_array_size(qs) && !full(l); i++) {
        const json_t *r = json_array_get(qs, i);
        char where[600];
        snprintf(where, sizeof where, "%s: questions[%zu]", qf, i);
        struct sample_in in = {.metric = EVALS_METRIC_VQA_ACCURACY};
        const char *q;
        char *id = NULL, *image = NULL;
        const json_t *qid = json_object_get(r, "question_id");
        const json_t *iid = json_object_get(r, "image_id");
        if (!json_is_integer(qid) || !json_is_integer(iid)) {
            rc = bad(l, err, "%s: missing integer 'question_id' or 'image_id'", where);
            goto next;
        }
        REQ_STR(r, "question", q);
        struct qa key = {.qid = json_integer_value(qid)};
        struct qa *hit = bsearch(&key, idx, na, sizeof *idx, cmp_qa);
        if (!hit || !strv_from_json(json_object_get(json_array_get(as, hit->i), "answers"),
                                    &in.refs, &in.n_refs) || !in.n_refs) {
            rc = bad(l, err, "%s: no annotation with answers for question_id %lld in %s", where,
                     key.qid, af);
            goto next;
        }
        id = xasprintf("%lld", key.qid);
        image = xasprintf("%s/val2014/COCO_val2014_%012lld.jpg", dir,
                          (long long)json_integer_value(iid));
        in.id = id;
        in.question = q;
        in.image = image;
        rc = id && image ? finish(l, &in, where, err) : jb_err_set(err, JB_ENOMEM, "out of memory");
    next:
        in_clear(&in);
        free(id);
        free(image);
        if (rc > 0) rc = 0;
    }
out:
    free(idx);
    json_decref(qroot);
    json_decref(aroot);
    free(qf);
    free(af);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * AI2D: test ids, one question file per diagram */

int evals_load_ai2d(struct evals_loader *l, const char *dir, struct jb_err *err) {
    static const char *const bases[] = {".", "ai2d"};
    char *base = NULL, *ids_file = NULL;
    for (size_t i = 0; i < 2 && !base; i++) {
        char *b = path_join(dir, bases[i]), *q = b ? path_join(b, "questions") : NULL;
        if (q && readable(q)) base = b;
        else free(b);
        free(q);
    }
    static const char *const id_names[] = {"ai2d_test_ids.csv", "ai2d/ai2d_test_ids.csv"};
    ids_file = probe(dir, id_names, 2);
    if (!base || !ids_file) {
        free(base);
        free(ids_file);
        return jb_err_set(err, JB_ENOTFOUND, "%s: no AI2D files: expected %s", dir,
                          l->suite->layout);
    }
    snprintf(l->layout, sizeof l->layout, "AI2D release (%s, %s)", base, ids_file);
    char *ids = NULL;
    int rc = read_all(l, ids_file, &ids, NULL, err);
    char *save = NULL;
    size_t line = 0;
    for (char *t = rc ? NULL : strtok_r(ids, "\r\n", &save); t && rc == 0 && !full(l);
         t = strtok_r(NULL, "\r\n", &save)) {
        line++;
        while (*t == ' ') t++;
        if (!*t) continue;
        char *qfile = xasprintf("%s/questions/%s.png.json", base, t);
        char *image = xasprintf("%s/images/%s.png", base, t);
        json_t *root = NULL;
        if (!qfile || !image) {
            rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        } else if (!readable(qfile)) {
            rc = bad(l, err, "%s:%zu: question file %s not found", ids_file, line, qfile);
        } else if ((rc = load_json(l, qfile, &root, err)) == 0) {
            const json_t *qs = json_object_get(root, "questions");
            const char *text;
            const json_t *qv;
            if (!json_is_object(qs)) rc = bad(l, err, "%s: no 'questions' object", qfile);
            json_object_foreach((json_t *)qs, text, qv) {
                if (rc || full(l)) break;
                char where[700];
                snprintf(where, sizeof where, "%s: question '%s'", qfile, text);
                struct sample_in in = {.metric = EVALS_METRIC_MC_LETTER, .question = text,
                                       .image = image};
                char *id = scalar_text(json_object_get(qv, "questionId"));
                const json_t *ca = json_object_get(qv, "correctAnswer");
                char *cas = scalar_text(ca);
                long long k = cas ? strtoll(cas, NULL, 10) : -1;
                if (!id || !strv_from_json(json_object_get(qv, "answerTexts"), &in.choices,
                                           &in.n_choices) ||
                    !cas || k < 0 || (size_t)k >= in.n_choices) {
                    rc = bad(l, err, "%s: needs questionId, answerTexts and correctAnswer", where);
                } else {
                    char letter[2] = {(char)('A' + k), 0};
                    in.refs = malloc(sizeof *in.refs);
                    if (in.refs && (in.refs[0] = strdup(letter))) in.n_refs = 1;
                    in.id = id;
                    rc = in.n_refs ? finish(l, &in, where, err)
                                   : jb_err_set(err, JB_ENOMEM, "out of memory");
                }
                in_clear(&in);
                free(id);
                free(cas);
                if (rc > 0) rc = 0;
            }
        }
        if (rc > 0) rc = 0;
        json_decref(root);
        free(qfile);
        free(image);
    }
    free(ids);
    free(ids_file);
    free(base);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * JSONL records (Hugging Face parquet snapshots converted as README.md says, and the PixMo
 * layouts the synthetic counting suite is written in) */

enum rec_kind { REC_COUNTBENCH, REC_PIXMO_COUNT, REC_PIXMO_POINTS, REC_REALWORLDQA, REC_MMMU,
                REC_MATHVISTA };

static bool single_letter(const char *s) { return s[0] >= 'A' && s[0] <= 'Z' && !s[1]; }

/* One record; 0, 1 (skipped) or < 0. */
static int jsonl_record(struct evals_loader *l, enum rec_kind kind, const json_t *r,
                        const char *base, const char *where, size_t line,
                        struct jb_err *err) {
    struct sample_in in = {.metric = l->suite->metric};
    int rc = 0;
    char *id = NULL, *image = NULL, *question = NULL, *ref = NULL;
    const char *img = NULL, *q = NULL;
    const json_t *v;
    static const char *const id_keys[] = {"id", "pid", "questionId", "question_id"};
    for (int i = 0; i < 4 && !id; i++) id = scalar_text(json_object_get(r, id_keys[i]));
    if (!id && !(id = xasprintf("%zu", line))) goto nomem;
    const char *img_key = kind == REC_MMMU ? "image_1" : "image";
    v = json_object_get(r, img_key);
    if (json_is_string(v)) img = json_string_value(v);
    else if (kind != REC_MMMU) {
        rc = bad(l, err, "%s: %s field '%s' (a path relative to the file)", where,
                 v ? "non-string" : "missing", img_key);
        goto out;
    }
    if (img && !(image = path_join(base, img))) goto nomem;
    q = json_string_value(json_object_get(r, "question"));
    switch (kind) {
    case REC_COUNTBENCH:
    case REC_PIXMO_COUNT: {
        in.metric = EVALS_METRIC_EXACT_COUNT;
        in.style = "point_count";
        const char *label = json_string_value(json_object_get(r, "label"));
        if (!q && label && !(question = xasprintf("How many %s are there?", label))) goto nomem;
        v = json_object_get(r, kind == REC_COUNTBENCH ? "number" : "count");
        if (!json_is_integer(v) || (!q && !question)) {
            rc = bad(l, err, "%s: needs an integer '%s' and a 'question'%s", where,
                     kind == REC_COUNTBENCH ? "number" : "count",
                     kind == REC_COUNTBENCH ? "" : " or 'label'");
            goto out;
        }
        ref = scalar_text(v);
        break;
    }
    case REC_PIXMO_POINTS: {
        in.metric = EVALS_METRIC_POINTING_F1;
        in.style = "pointing";
        const char *label = json_string_value(json_object_get(r, "label"));
        if (!q && label && !(question = xasprintf("Point to %s", label))) goto nomem;
        const char *why;
        if (!q && !question) {
            rc = bad(l, err, "%s: needs a 'question' or 'label'", where);
            goto out;
        }
        if (!regions_from_json(json_object_get(r, "masks"), &in.regions, &in.n_regions, &why)) {
            rc = bad(l, err, "%s: %s", where, why);
            goto out;
        }
        long long w = 0, h = 0;
        jb_json_get_int(r, "width", &w, false, where, NULL);
        jb_json_get_int(r, "height", &h, false, where, NULL);
        in.width = (int)w;
        in.height = (int)h;
        break;
    }
    case REC_REALWORLDQA:
    case REC_MMMU:
    case REC_MATHVISTA: {
        if (!q) {
            rc = bad(l, err, "%s: missing string field 'question'", where);
            goto out;
        }
        ref = scalar_text(json_object_get(r, "answer"));
        if (!ref) {
            rc = bad(l, err, "%s: missing field 'answer'", where);
            goto out;
        }
        const json_t *opts = json_object_get(r, kind == REC_MMMU ? "options" : "choices");
        bool ok = true;
        if (json_is_string(opts)) ok = strv_from_pylist(json_string_value(opts), &in.choices,
                                                        &in.n_choices);
        else if (json_is_array(opts)) ok = strv_from_json(opts, &in.choices, &in.n_choices);
        if (!ok) {
            rc = bad(l, err, "%s: options/choices should be a list of strings", where);
            goto out;
        }
        if (kind == REC_MMMU) {
            /* evals.md §5: options that are images themselves cannot be sent; such items go
             * without an image and are tagged degraded */
            size_t n_img = 0;
            for (size_t i = 0; i < in.n_choices; i++)
                n_img += strstr(in.choices[i], "<image") != NULL;
            if (n_img > 1) {
                free(image);
                image = NULL;
                in.subset = "degraded";
            }
        }
        const char *qt = json_string_value(json_object_get(r, "question_type"));
        bool mc;
        if (kind == REC_REALWORLDQA) mc = single_letter(ref); /* options are in the question */
        else mc = in.n_choices > 0 && !(qt && strstr(qt, "open")) && !(qt && strstr(qt, "free"));
        if (mc && kind == REC_MATHVISTA && !single_letter(ref)) {
            /* MathVista's answer is the option text: its letter */
            size_t k = 0;
            while (k < in.n_choices && strcmp(in.choices[k], ref) != 0) k++;
            if (k == in.n_choices) {
                rc = bad(l, err, "%s: answer '%s' is none of the choices", where, ref);
                goto out;
            }
            free(ref);
            if (!(ref = xasprintf("%c", (int)('A' + k)))) goto nomem;
        }
        if (mc) {
            in.metric = EVALS_METRIC_MC_LETTER;
            in.style = "a_okvqa_mc";
        } else {
            in.metric = EVALS_METRIC_RELAXED_ACCURACY;
            in.style = "vqa2";
            free_strv(in.choices, in.n_choices);
            in.choices = NULL;
            in.n_choices = 0;
        }
        break;
    }
    }
    if (ref) {
        if (!(in.refs = malloc(sizeof *in.refs))) goto nomem;
        in.refs[0] = ref;
        in.n_refs = 1;
        ref = NULL;
    }
    in.id = id;
    in.image = image;
    in.question = q ? q : question;
    rc = finish(l, &in, where, err);
    goto out;
nomem:
    rc = jb_err_set(err, JB_ENOMEM, "out of memory");
out:
    in_clear(&in);
    free(id);
    free(image);
    free(question);
    free(ref);
    return rc;
}

static int jsonl_file(struct evals_loader *l, const char *file, enum rec_kind kind,
                      struct jb_err *err) {
    char *buf = NULL, *base = NULL;
    size_t len = 0;
    int rc = read_all(l, file, &buf, &len, err);
    if (rc) return rc;
    const char *slash = strrchr(file, '/');
    base = slash ? strndup(file, (size_t)(slash - file)) : strdup(".");
    size_t line = 0;
    for (char *p = buf; rc == 0 && p < buf + len && !full(l);) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = e ? (size_t)(e - p) : (size_t)(buf + len - p);
        line++;
        char where[600];
        snprintf(where, sizeof where, "%s:%zu", file, line);
        size_t k = 0;
        while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k < n) {
            json_t *r = NULL;
            struct jb_err jerr = {0};
            if (parse_line(p, n, where, &r, &jerr) < 0)
                rc = bad(l, err, "%s", jerr.msg);
            else if (!json_is_object(r))
                rc = bad(l, err, "%s: a line should be one JSON object", where);
            else
                rc = jsonl_record(l, kind, r, base, where, line, err);
            json_decref(r);
            if (rc > 0) rc = 0;
        }
        p += n + 1;
    }
    free(buf);
    free(base);
    return rc;
}

int evals_load_jsonl(struct evals_loader *l, const char *dir, struct jb_err *err) {
    static const struct { const char *suite; enum rec_kind kind; } kinds[] = {
        {"countbenchqa", REC_COUNTBENCH}, {"pixmo-count", REC_PIXMO_COUNT},
        {"pixmo-points", REC_PIXMO_POINTS}, {"realworldqa", REC_REALWORLDQA},
        {"mmmu", REC_MMMU}, {"mathvista", REC_MATHVISTA},
    };
    size_t k = 0;
    while (k < 6 && strcmp(kinds[k].suite, l->suite->name) != 0) k++;
    if (k == 6) return jb_err_set(err, JB_EINTERNAL, "no JSONL reader for %s", l->suite->name);
    char name[64];
    snprintf(name, sizeof name, "%s.jsonl", l->suite->split);
    const char *const names[] = {name, "data.jsonl", "test.jsonl"};
    char *file = probe(dir, names, 3);
    if (!file)
        return jb_err_set(err, JB_ENOTFOUND, "%s: no %s files: expected %s", dir, l->suite->name,
                          l->suite->layout);
    snprintf(l->layout, sizeof l->layout, "JSONL (%s)", file);
    int rc = jsonl_file(l, file, kinds[k].kind, err);
    free(file);
    return rc;
}

int evals_load_synth_count(struct evals_loader *l, const char *dir, struct jb_err *err) {
    static const char *const bases[] = {".", "synth-count"};
    for (int b = 0; b < 2; b++) {
        char *count = xasprintf("%s/%s/count.jsonl", dir, bases[b]);
        char *points = xasprintf("%s/%s/points.jsonl", dir, bases[b]);
        int rc = 1;
        if (!count || !points) rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        else if (readable(count) && readable(points)) {
            snprintf(l->layout, sizeof l->layout, "PixMo-Count + PixMo-Points JSONL (%s/%s)",
                     dir, bases[b]);
            rc = jsonl_file(l, count, REC_PIXMO_COUNT, err);
            if (rc == 0) rc = jsonl_file(l, points, REC_PIXMO_POINTS, err);
        }
        free(count);
        free(points);
        if (rc <= 0) return rc;
    }
    return jb_err_set(err, JB_ENOTFOUND, "%s: no synth-count files: expected %s", dir,
                      l->suite->layout);
}

/* ---------------------------------------------------------------------------------------------
 * The loader */

int evals_loader_open(struct evals_loader **out, const struct evals_suite *s, const char *dir,
                      const struct evals_loader_opts *o, struct jb_err *err) {
    *out = NULL;
    struct evals_loader *l = calloc(1, sizeof *l);
    if (!l) return jb_err_set(err, JB_ENOMEM, "out of memory");
    l->suite = s;
    if (o) l->opts = *o;
    sha256_init(&l->sha);
    int rc = s->load(l, dir, err);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&l->sha, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(l->digest + 2 * i, 3, "%02x", d[i]);
    if (rc == 0 && l->n == 0)
        rc = jb_err_set(err, JB_EFORMAT, "%s: no usable %s samples (%zu bad)", dir, s->name,
                        l->n_bad);
    if (rc) {
        evals_loader_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

void evals_loader_close(struct evals_loader *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) sample_free(&l->v[i]);
    free(l->v);
    free_strv(l->bad, l->n_bad);
    free(l);
}

int evals_loader_next(struct evals_loader *l, const struct evals_sample **out) {
    if (l->pos >= l->n) return 0;
    *out = &l->v[l->pos++];
    return 1;
}

void evals_loader_rewind(struct evals_loader *l) { l->pos = 0; }
size_t evals_loader_n_samples(const struct evals_loader *l) { return l->n; }
const char *evals_loader_layout(const struct evals_loader *l) { return l->layout; }
size_t evals_loader_n_bad(const struct evals_loader *l) { return l->n_bad; }
const char *evals_loader_digest(const struct evals_loader *l) { return l->digest; }
const char *evals_loader_bad(const struct evals_loader *l, size_t i) {
    return i < l->n_bad ? l->bad[i] : NULL;
}

const struct evals_sample *evals_loader_find(const struct evals_loader *l, const char *id) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].id, id) == 0) return &l->v[i];
    return NULL;
}

const char *evals_sample_id(const struct evals_sample *x) { return x->id; }
const char *evals_sample_image_path(const struct evals_sample *x) { return x->image; }
const char *evals_sample_question(const struct evals_sample *x) { return x->question; }
const char *evals_sample_prompt(const struct evals_sample *x) { return x->prompt; }
int evals_sample_max_new_tokens(const struct evals_sample *x) { return x->max_new_tokens; }
enum evals_metric evals_sample_metric(const struct evals_sample *x) { return x->metric; }
size_t evals_sample_n_refs(const struct evals_sample *x) { return x->n_refs; }
const char *evals_sample_ref(const struct evals_sample *x, size_t i) {
    return i < x->n_refs ? x->refs[i] : NULL;
}
size_t evals_sample_n_choices(const struct evals_sample *x) { return x->n_choices; }
const char *evals_sample_choice(const struct evals_sample *x, size_t i) {
    return i < x->n_choices ? x->choices[i] : NULL;
}
int evals_sample_width(const struct evals_sample *x) { return x->width; }
int evals_sample_height(const struct evals_sample *x) { return x->height; }
const char *evals_sample_subset(const struct evals_sample *x) { return x->subset; }

char *evals_sample_prediction(const struct evals_sample *x, const char *generated) {
    return evals_metric_input(x->metric, generated);
}

int evals_sample_score(const struct evals_sample *x, const char *generated,
                       struct evals_score *out, struct jb_err *err) {
    struct evals_refs r = {
        .refs = (const char *const *)x->refs, .n_refs = x->n_refs,
        .choices = (const char *const *)x->choices, .n_choices = x->n_choices,
        .regions = x->regions, .n_regions = x->n_regions,
        .width = x->width, .height = x->height,
    };
    return evals_score_text(x->metric, generated, &r, out, err);
}

/* ---------------------------------------------------------------------------------------------
 * Predictions files (joulebench score --metric) */

struct evals_prediction {
    char *id, *text;
    char **refs;
    size_t n_refs;
    char **choices;
    size_t n_choices;
    struct evals_region *regions;
    size_t n_regions;
    int width, height;
};

void evals_prediction_free(struct evals_prediction *p) {
    if (!p) return;
    free(p->id);
    free(p->text);
    free_strv(p->refs, p->n_refs);
    free_strv(p->choices, p->n_choices);
    regions_free(p->regions, p->n_regions);
    free(p);
}

int evals_prediction_parse(struct evals_prediction **out, const char *line, size_t len,
                           const char *where, bool need_refs, enum evals_metric m,
                           struct jb_err *err) {
    *out = NULL;
    json_t *r = NULL;
    int rc = parse_line(line, len, where, &r, err);
    if (rc) return rc;
    struct evals_prediction *p = calloc(1, sizeof *p);
    const char *text = NULL, *why = NULL;
    if (!p) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    if (!json_is_object(r)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: a line should be one JSON object", where);
        goto out;
    }
    if (!(p->id = scalar_text(json_object_get(r, "id")))) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: missing field 'id'", where);
        goto out;
    }
    if ((rc = jb_json_get_string(r, "prediction", &text, true, where, err))) goto out;
    if (!(p->text = strdup(text))) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    if (!need_refs) goto out;
    const json_t *refs = json_object_get(r, "references");
    if (m == EVALS_METRIC_POINTING_F1) {
        long long w = 0, h = 0;
        if (!regions_from_json(refs, &p->regions, &p->n_regions, &why)) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: 'references': %s", where, why);
            goto out;
        }
        if ((rc = jb_json_get_int(r, "width", &w, p->n_regions > 0, where, err)) ||
            (rc = jb_json_get_int(r, "height", &h, p->n_regions > 0, where, err)))
            goto out;
        p->width = (int)w;
        p->height = (int)h;
    } else if (!strv_from_json(refs, &p->refs, &p->n_refs) || p->n_refs == 0) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: 'references' should be a non-empty list of strings",
                        where);
        goto out;
    }
    const json_t *ch = json_object_get(r, "choices");
    if (ch && !json_is_null(ch) && (!json_is_array(ch) ||
                                    !strv_from_json(ch, &p->choices, &p->n_choices)))
        rc = jb_err_set(err, JB_EFORMAT, "%s: 'choices' should be a list of strings", where);
out:
    json_decref(r);
    if (rc) evals_prediction_free(p);
    else *out = p;
    return rc;
}

const char *evals_prediction_id(const struct evals_prediction *p) { return p->id; }
const char *evals_prediction_text(const struct evals_prediction *p) { return p->text; }

int evals_prediction_score(const struct evals_prediction *p, enum evals_metric m,
                           struct evals_score *out, struct jb_err *err) {
    struct evals_refs r = {
        .refs = (const char *const *)p->refs, .n_refs = p->n_refs,
        .choices = (const char *const *)p->choices, .n_choices = p->n_choices,
        .regions = p->regions, .n_regions = p->n_regions,
        .width = p->width, .height = p->height,
    };
    return evals_score_text(m, p->text, &r, out, err);
}
