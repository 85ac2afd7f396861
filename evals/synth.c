/* The synthetic suites of evals.md §6: charts, documents and shapes rendered with cairo and the
 * DejaVu Sans font, written in the layouts of ChartQA, DocVQA and PixMo-Count/-Points so the
 * real loaders read them. Determinism: SplitMix64 seeded from (suite, version, seed); integers
 * only until cairo draws; no locale-dependent formatting of floats; our own PNG encoder; the
 * font file's SHA-256 checked before rendering; every file's SHA-256 in manifest.json. */
#include "config.h"

#include "evals/evals-impl.h"

#include "common/jb-err.h"
#include "common/jb-sha256.h"
#include "common/jb-mmap.h"
#include "common/jb-json.h"

#include <cairo-ft.h>
#include <cairo.h>
#include <errno.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Per suite: a change that alters a suite's bytes for the same seed bumps its version (which
 * also enters its seed). synth-count 2: the asked counts spread evenly over 2..10. */
static int synth_version(const char *suite) { return strcmp(suite, "synth-count") == 0 ? 2 : 1; }
#define DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
/* DejaVuSans.ttf of Debian 12's fonts-dejavu-core 2.37-6 */
#define DEFAULT_FONT_SHA256 "abdc775b21b1bc470d50c97e790d276f2054b7504e56e5bd3e64f48d68582322"


/* ---------------------------------------------------------------------------------------------
 * Shared state of one generation */

struct synth {
    const char *out;
    uint64_t rng;
    cairo_font_face_t *face;
    char font_sha[65];
    const char *font_path;
    json_t *files;  /* manifest: {relative path: sha256} of the current suite */
    json_t *questions; /* questions.jsonl of the current suite (evals.md §6) */
    char suite_dir[4096];
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* hash(suite, version, seed) of evals.md §6 */
static void seed_rng(struct synth *S, const char *suite, uint64_t seed) {
    uint64_t st = fnv1a(suite) ^ ((uint64_t)synth_version(suite) << 56);
    S->rng = jb_splitmix64(&st) ^ seed;
}

static int rnd(struct synth *S, int lo, int hi) { /* inclusive */
    return lo + (int)jb_rand_below(&S->rng, (uint64_t)(hi - lo + 1));
}

/* Records rel (under the suite directory) in the manifest. */
static int add_file(struct synth *S, const char *rel, struct jb_err *err) {
    char path[8192], hex[65];
    snprintf(path, sizeof path, "%s/%s", S->suite_dir, rel);
    int rc = jb_sha256_file(path, hex, err);
    if (rc == 0) json_object_set_new(S->files, rel, json_string(hex));
    return rc;
}

static int write_text(struct synth *S, const char *rel, const char *text, struct jb_err *err) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", S->suite_dir, rel);
    FILE *f = fopen(path, "wb");
    if (!f) return jb_err_errno(err, errno, "%s", path);
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    if (!ok) return jb_err_errno(err, errno, "%s: write", path);
    return add_file(S, rel, err);
}

static int write_json(struct synth *S, const char *rel, const json_t *v, struct jb_err *err) {
    char *s = json_dumps(v, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (!s) return jb_err_set(err, JB_ENOMEM, "out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return jb_err_set(err, JB_ENOMEM, "out of memory");
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    int rc = write_text(S, rel, t, err);
    free(t);
    return rc;
}

/* A JSON Lines file: one compact line per value. */
static int write_jsonl(struct synth *S, const char *rel, const json_t *arr, struct jb_err *err) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    for (size_t i = 0; buf && i < json_array_size(arr); i++) {
        char *l = json_dumps(json_array_get(arr, i), JSON_COMPACT | JSON_PRESERVE_ORDER |
                                                         JSON_ENSURE_ASCII);
        if (!l) {
            free(buf);
            buf = NULL;
            break;
        }
        size_t n = strlen(l);
        if (len + n + 2 > cap) {
            while (len + n + 2 > cap) cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(l);
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        memcpy(buf + len, l, n);
        len += n;
        buf[len++] = '\n';
        free(l);
    }
    if (!buf) return jb_err_set(err, JB_ENOMEM, "out of memory");
    buf[len] = '\0';
    rc = write_text(S, rel, buf, err);
    free(buf);
    return rc;
}

/* One line of questions.jsonl: {id, image, question, answers, metric, meta}; takes answers and
 * meta over. The id is the one the suite's loader gives the sample. */
static void add_question(struct synth *S, const char *id, const char *image, const char *q,
                         json_t *answers, const char *metric, json_t *meta) {
    json_array_append_new(S->questions,
                          json_pack("{s:s, s:s, s:s, s:o, s:s, s:o}", "id", id, "image", image,
                                    "question", q, "answers", answers, "metric", metric, "meta",
                                    meta ? meta : json_object()));
}

/* ---------------------------------------------------------------------------------------------
 * Drawing helpers */

static cairo_t *new_canvas(struct synth *S, cairo_surface_t **surf, int w, int h, int r, int g,
                           int b) {
    *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(*surf);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
    cairo_set_font_face(cr, S->face);
    cairo_set_source_rgb(cr, r / 255.0, g / 255.0, b / 255.0);
    cairo_paint(cr);
    return cr;
}

static void rgb(cairo_t *cr, int r, int g, int b) {
    cairo_set_source_rgb(cr, r / 255.0, g / 255.0, b / 255.0);
}

/* Text with its baseline at y; align -1 left of x, 0 centred on x, 1 right of x. */
static void text(cairo_t *cr, int x, int y, int size, int align, const char *s) {
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    double dx = align < 0 ? 0 : align == 0 ? -e.x_advance / 2 : -e.x_advance;
    cairo_move_to(cr, x + dx, y);
    cairo_show_text(cr, s);
}

static int save_png(struct synth *S, cairo_t *cr, cairo_surface_t *surf, const char *rel,
                    struct jb_err *err) {
    cairo_destroy(cr);
    cairo_surface_flush(surf);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", S->suite_dir, rel);
    int rc = cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS
                 ? jb_err_set(err, JB_EINTERNAL, "%s: cairo: %s", path,
                              cairo_status_to_string(cairo_surface_status(surf)))
                 : evals_png_write_argb32(path, cairo_image_surface_get_data(surf),
                                          cairo_image_surface_get_width(surf),
                                          cairo_image_surface_get_height(surf),
                                          cairo_image_surface_get_stride(surf), err);
    cairo_surface_destroy(surf);
    return rc ? rc : add_file(S, rel, err);
}

static void shuffle_pick(struct synth *S, int *idx, int n, int k) {
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 0; i < k; i++) {
        int j = rnd(S, i, n - 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ---------------------------------------------------------------------------------------------
 * synth-chart: ChartQA layout */

static const char *const months[] = {"January", "February", "March",     "April",
                                     "May",     "June",     "July",      "August",
                                     "September", "October", "November", "December"};
static const char *const fruits[] = {"Apple", "Banana", "Cherry", "Grape", "Mango",
                                     "Orange", "Peach",  "Pear",   "Plum",  "Lemon"};
static const char *const cities[] = {"Paris", "Tokyo",  "Lima",    "Cairo",  "Oslo",
                                     "Delhi", "Sydney", "Toronto", "Madrid", "Nairobi"};

static int synth_chart(struct synth *S, int n, int *n_q, struct jb_err *err) {
    json_t *qs = json_array();
    int rc = 0;
    for (int im = 0; im < n && rc == 0; im++) {
        int theme = rnd(S, 0, 2), bar = rnd(S, 0, 1), nc = rnd(S, 3, 7);
        const char *const *words = theme == 0 ? months : theme == 1 ? fruits : cities;
        int nwords = theme == 0 ? 12 : 10;
        int idx[12];
        if (theme == 0) { /* consecutive months */
            int start = rnd(S, 0, 12 - nc);
            for (int i = 0; i < nc; i++) idx[i] = start + i;
        } else
            shuffle_pick(S, idx, nwords, nc);
        int v[7], imax;
        for (;;) { /* a unique maximum, so "highest" has one answer */
            imax = 0;
            for (int i = 0; i < nc; i++) v[i] = rnd(S, 10, 990);
            int ties = 0;
            for (int i = 1; i < nc; i++)
                if (v[i] > v[imax]) imax = i;
            for (int i = 0; i < nc; i++) ties += v[i] == v[imax];
            if (ties == 1) break;
        }
        static const char *const xlabel[] = {"Month", "Fruit", "City"};
        static const char *const subject[] = {"Monthly sales", "Fruit harvest (tonnes)",
                                              "Visitors by city (thousands)"};
        cairo_surface_t *surf;
        cairo_t *cr = new_canvas(S, &surf, 800, 600, 255, 255, 255);
        const int x0 = 100, x1 = 760, y0 = 90, y1 = 500;
        int ymax = (v[imax] / 200 + 1) * 200;
        rgb(cr, 0, 0, 0);
        text(cr, 400, 50, 26, 0, subject[theme]);
        text(cr, (x0 + x1) / 2, 580, 18, 0, xlabel[theme]);
        cairo_save(cr);
        cairo_translate(cr, 30, (y0 + y1) / 2);
        cairo_rotate(cr, -1.5707963267948966);
        text(cr, 0, 0, 18, 0, "Value");
        cairo_restore(cr);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, x0, y0);
        cairo_line_to(cr, x0, y1);
        cairo_line_to(cr, x1, y1);
        cairo_stroke(cr);
        char buf[64];
        for (int t = 0; t <= 4; t++) {
            int val = ymax * t / 4, y = y1 - (y1 - y0) * t / 4;
            snprintf(buf, sizeof buf, "%d", val);
            rgb(cr, 0, 0, 0);
            text(cr, x0 - 8, y + 5, 14, 1, buf);
            rgb(cr, 210, 210, 210);
            cairo_set_line_width(cr, 1);
            cairo_move_to(cr, x0 + 1, y);
            cairo_line_to(cr, x1, y);
            cairo_stroke(cr);
        }
        int slot = (x1 - x0) / nc;
        int px[7], py[7];
        for (int i = 0; i < nc; i++) {
            px[i] = x0 + slot * i + slot / 2;
            py[i] = y1 - (y1 - y0) * v[i] / ymax;
        }
        static const int pal[3][3] = {{52, 101, 164}, {204, 102, 0}, {78, 154, 6}};
        const int *c = pal[rnd(S, 0, 2)];
        if (bar) {
            int bw = slot * 3 / 5;
            for (int i = 0; i < nc; i++) {
                rgb(cr, c[0], c[1], c[2]);
                cairo_rectangle(cr, px[i] - bw / 2, py[i], bw, y1 - py[i]);
                cairo_fill(cr);
            }
        } else {
            rgb(cr, c[0], c[1], c[2]);
            cairo_set_line_width(cr, 3);
            for (int i = 0; i < nc; i++)
                i ? cairo_line_to(cr, px[i], py[i]) : cairo_move_to(cr, px[i], py[i]);
            cairo_stroke(cr);
            for (int i = 0; i < nc; i++) {
                cairo_arc(cr, px[i], py[i], 5, 0, 6.283185307179586);
                cairo_fill(cr);
            }
        }
        rgb(cr, 0, 0, 0);
        for (int i = 0; i < nc; i++) {
            snprintf(buf, sizeof buf, "%d", v[i]);
            text(cr, px[i], py[i] - 10, 16, 0, buf);
            text(cr, px[i], y1 + 24, 15, 0, words[idx[i]]);
        }
        char rel[96], img[64];
        snprintf(img, sizeof img, "chart_%04d.png", im);
        snprintf(rel, sizeof rel, "test/png/%s", img);
        rc = save_png(S, cr, surf, rel, err);
        /* two of the four templates */
        int t[4];
        shuffle_pick(S, t, 4, 2);
        for (int k = 0; k < 2; k++) {
            char q[160], a[32];
            if (t[k] == 0) {
                int i = rnd(S, 0, nc - 1);
                snprintf(q, sizeof q, "What is the value of %s?", words[idx[i]]);
                snprintf(a, sizeof a, "%d", v[i]);
            } else if (t[k] == 1) {
                snprintf(q, sizeof q, "Which category has the highest value?");
                snprintf(a, sizeof a, "%s", words[idx[imax]]);
            } else if (t[k] == 2) {
                int p2[7];
                shuffle_pick(S, p2, nc, 2);
                snprintf(q, sizeof q, "What is the difference between %s and %s?",
                         words[idx[p2[0]]], words[idx[p2[1]]]);
                snprintf(a, sizeof a, "%d", abs(v[p2[0]] - v[p2[1]]));
            } else {
                int sum = 0;
                for (int i = 0; i < nc; i++) sum += v[i];
                snprintf(q, sizeof q, "What is the sum of all values?");
                snprintf(a, sizeof a, "%d", sum);
            }
            char qid[32];
            snprintf(qid, sizeof qid, "human-%zu", json_array_size(qs));
            add_question(S, qid, rel, q, json_pack("[s]", a), "relaxed_accuracy",
                         json_pack("{s:s, s:i}", "chart", bar ? "bar" : "line", "template", t[k]));
            json_array_append_new(qs, json_pack("{s:s, s:s, s:s}", "imgname", img, "query", q,
                                                "label", a));
        }
    }
    if (rc == 0) rc = write_json(S, "test/test_human.json", qs, err);
    *n_q = (int)json_array_size(qs);
    json_decref(qs);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * synth-doc: DocVQA layout */

static const char *const names[] = {"Alice Johnson", "Bob Smith",    "Carlos Diaz",
                                    "Diana Lee",     "Ethan Brown",  "Fatima Khan",
                                    "George Miller", "Hana Sato",    "Ivan Petrov",
                                    "Julia Rossi",   "Kwame Mensah", "Laura Chen"};
static const char *const items[] = {"Paper A4",  "Stapler", "Ink cartridge", "Desk lamp",
                                    "USB cable", "Notebook", "Pens (box)",   "Monitor stand"};

/* key, role (for name keys: "Who is the {role}?"), kind of value */
enum vkind { V_NUM5, V_DATE, V_MONEY, V_NAME, V_PHONE, V_CODE };
static const struct { const char *key, *role; enum vkind kind; } fields[] = {
    {"Invoice No", NULL, V_NUM5},      {"Date", NULL, V_DATE},
    {"Due Date", NULL, V_DATE},        {"Total", NULL, V_MONEY},
    {"Subtotal", NULL, V_MONEY},       {"Tax", NULL, V_MONEY},
    {"Customer", "customer", V_NAME},  {"Cashier", "cashier", V_NAME},
    {"Manager", "manager", V_NAME},    {"Inspector", "inspector", V_NAME},
    {"Phone", NULL, V_PHONE},          {"Order ID", NULL, V_CODE},
    {"Account No", NULL, V_NUM5},      {"Reference", NULL, V_CODE},
};
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

static void money(char *buf, size_t n, int cents) {
    int d = cents / 100, c = cents % 100;
    if (d >= 1000) snprintf(buf, n, "$%d,%03d.%02d", d / 1000, d % 1000, c);
    else snprintf(buf, n, "$%d.%02d", d, c);
}

static int synth_doc(struct synth *S, int n, int *n_q, struct jb_err *err) {
    json_t *data = json_array();
    int rc = 0, qid = 1;
    for (int im = 0; im < n && rc == 0; im++) {
        bool receipt = rnd(S, 0, 1);
        int nf = rnd(S, 5, 12), fi[N_FIELDS];
        shuffle_pick(S, fi, N_FIELDS, nf);
        char vals[12][48];
        for (int k = 0; k < nf; k++) {
            char *b = vals[k];
            switch (fields[fi[k]].kind) {
            case V_NUM5: snprintf(b, 48, "%d", rnd(S, 10000, 99999)); break;
            case V_DATE:
                snprintf(b, 48, "%04d-%02d-%02d", rnd(S, 2019, 2025), rnd(S, 1, 12),
                         rnd(S, 1, 28));
                break;
            case V_MONEY: money(b, 48, rnd(S, 100, 999999)); break;
            case V_NAME: snprintf(b, 48, "%s", names[rnd(S, 0, 11)]); break;
            case V_PHONE:
                snprintf(b, 48, "(%03d) %03d-%04d", rnd(S, 200, 999), rnd(S, 200, 999),
                         rnd(S, 0, 9999));
                break;
            case V_CODE:
                snprintf(b, 48, "%c%c-%04d", 'A' + rnd(S, 0, 25), 'A' + rnd(S, 0, 25),
                         rnd(S, 0, 9999));
                break;
            }
        }
        cairo_surface_t *surf;
        cairo_t *cr = new_canvas(S, &surf, 850, 1100, 255, 255, 255);
        rgb(cr, 0, 0, 0);
        static const char *const companies[] = {"Northwind Supplies", "Bluebird Office Ltd",
                                                "Acme Hardware", "Riverside Market"};
        text(cr, 425, 90, 34, 0, receipt ? "RECEIPT" : "ORDER FORM");
        text(cr, 425, 130, 20, 0, companies[rnd(S, 0, 3)]);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, 60, 160);
        cairo_line_to(cr, 790, 160);
        cairo_stroke(cr);
        int y = 210;
        for (int k = 0; k < nf; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s:", fields[fi[k]].key);
            text(cr, 80, y, 20, -1, key);
            text(cr, receipt ? 770 : 330, y, 20, receipt ? 1 : -1, vals[k]);
            if (!receipt) {
                cairo_set_line_width(cr, 1);
                cairo_move_to(cr, 325, y + 6);
                cairo_line_to(cr, 770, y + 6);
                cairo_stroke(cr);
            }
            y += 44;
        }
        /* a small table of items (not asked about) */
        y += 20;
        text(cr, 80, y, 18, -1, "Item");
        text(cr, 560, y, 18, 1, "Qty");
        text(cr, 770, y, 18, 1, "Price");
        cairo_move_to(cr, 80, y + 8);
        cairo_line_to(cr, 770, y + 8);
        cairo_stroke(cr);
        int nitems = rnd(S, 2, 5);
        for (int i = 0; i < nitems; i++) {
            char q[16], p[32];
            y += 34;
            snprintf(q, sizeof q, "%d", rnd(S, 1, 20));
            money(p, sizeof p, rnd(S, 99, 99999));
            text(cr, 80, y, 18, -1, items[rnd(S, 0, 7)]);
            text(cr, 560, y, 18, 1, q);
            text(cr, 770, y, 18, 1, p);
        }
        char rel[64];
        snprintf(rel, sizeof rel, "documents/doc_%04d.png", im);
        rc = save_png(S, cr, surf, rel, err);
        int pick[12];
        shuffle_pick(S, pick, nf, 3);
        for (int k = 0; k < 3; k++) {
            int f = fi[pick[k]];
            char q[128];
            if (fields[f].role) snprintf(q, sizeof q, "Who is the %s?", fields[f].role);
            else snprintf(q, sizeof q, "What is the %s?", fields[f].key);
            char qids[32];
            snprintf(qids, sizeof qids, "%d", qid);
            add_question(S, qids, rel, q, json_pack("[s]", vals[pick[k]]), "anls",
                         json_pack("{s:s, s:s}", "page", receipt ? "receipt" : "form", "key",
                                   fields[f].key));
            json_array_append_new(
                data, json_pack("{s:i, s:s, s:s, s:s, s:[s], s:[s]}", "questionId", qid++,
                                "question", q, "image", rel, "docId", rel + 10, "answers",
                                vals[pick[k]], "question_types", "form"));
        }
    }
    *n_q = (int)json_array_size(data);
    json_t *root = json_pack("{s:s, s:s, s:s, s:o}", "dataset_name", "synth-doc",
                             "dataset_version", "1.0", "dataset_split", "val", "data", data);
    if (rc == 0) rc = write_json(S, "val_v1.0.json", root, err);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * synth-count: PixMo-Count and PixMo-Points layouts */

static const char *const colours[] = {"red", "green", "blue", "yellow", "purple", "orange"};
static const int colour_rgb[6][3] = {{220, 30, 30}, {30, 160, 50}, {40, 80, 220},
                                     {235, 200, 20}, {140, 50, 170}, {245, 130, 20}};
static const char *const shapes[] = {"circle", "square", "triangle"};

struct shape { int kind, colour, x, y, s; }; /* bounding box x..x+s, y..y+s */

static json_t *shape_mask(const struct shape *h) {
    if (h->kind == 0)
        return json_pack("{s:[i, i, i]}", "circle", h->x + h->s / 2, h->y + h->s / 2, h->s / 2);
    if (h->kind == 1)
        return json_pack("{s:[i, i, i, i]}", "box", h->x, h->y, h->x + h->s, h->y + h->s);
    return json_pack("{s:[i, i, i, i, i, i], s:[i, i]}", "polygon", h->x + h->s / 2, h->y,
                     h->x + h->s, h->y + h->s, h->x, h->y + h->s, "point", h->x + h->s / 2,
                     h->y + h->s * 2 / 3);
}

static int synth_count(struct synth *S, int n, int *n_q, struct jb_err *err) {
    json_t *counts = json_array(), *points = json_array();
    int rc = 0;
    const int W = 640, H = 480, GAP = 8;
    for (int im = 0; im < n && rc == 0; im++) {
        /* The count asked about is drawn evenly from 2..10, the range of CountBenchQA, so no
         * answer is more likely than another; then the shapes: the pointing target (the only
         * one of its combination), that many of the asked combination, and distractors of the
         * other 16 combinations, at most 12 shapes in all. */
        struct shape sh[12];
        int want = rnd(S, 2, 10);
        int target = rnd(S, 0, 17); /* the (colour, shape) pointed at: exactly one instance */
        int asked;
        do asked = rnd(S, 0, 17);
        while (asked == target);
        int total = 1 + want + rnd(S, 0, 11 - want), placed = 0;
        int max_s = 70, fails = 0;
        while (placed < total) {
            struct shape h;
            int combo = asked;
            if (placed == 0) combo = target;
            else if (placed > want)
                do combo = rnd(S, 0, 17);
                while (combo == target || combo == asked);
            h.colour = combo / 3;
            h.kind = combo % 3;
            h.s = rnd(S, 30, max_s);
            h.x = rnd(S, 4, W - 4 - h.s);
            h.y = rnd(S, 4, H - 4 - h.s);
            bool ok = true;
            for (int j = 0; j < placed && ok; j++)
                ok = h.x + h.s + GAP <= sh[j].x || sh[j].x + sh[j].s + GAP <= h.x ||
                     h.y + h.s + GAP <= sh[j].y || sh[j].y + sh[j].s + GAP <= h.y;
            if (ok) {
                sh[placed++] = h;
                fails = 0;
            } else if (++fails % 100 == 0 && max_s > 30) {
                max_s -= 5; /* crowded: smaller shapes, so every planned one finds room */
            }
        }
        static const int bgs[3][3] = {{255, 255, 255}, {236, 236, 236}, {245, 240, 225}};
        const int *bg = bgs[rnd(S, 0, 2)];
        cairo_surface_t *surf;
        cairo_t *cr = new_canvas(S, &surf, W, H, bg[0], bg[1], bg[2]);
        for (int i = 0; i < placed; i++) {
            const struct shape *h = &sh[i];
            rgb(cr, colour_rgb[h->colour][0], colour_rgb[h->colour][1], colour_rgb[h->colour][2]);
            if (h->kind == 0)
                cairo_arc(cr, h->x + h->s / 2, h->y + h->s / 2, h->s / 2, 0, 6.283185307179586);
            else if (h->kind == 1)
                cairo_rectangle(cr, h->x, h->y, h->s, h->s);
            else {
                cairo_move_to(cr, h->x + h->s / 2, h->y);
                cairo_line_to(cr, h->x + h->s, h->y + h->s);
                cairo_line_to(cr, h->x, h->y + h->s);
                cairo_close_path(cr);
            }
            cairo_fill(cr);
        }
        char rel[64], id[32];
        snprintf(rel, sizeof rel, "images/shapes_%04d.png", im);
        rc = save_png(S, cr, surf, rel, err);
        int cc = asked / 3, ck = asked % 3, count = 0;
        json_t *xs = json_array(), *ys = json_array();
        for (int i = 0; i < placed; i++)
            if (sh[i].colour == cc && sh[i].kind == ck) {
                count++;
                json_array_append_new(xs, json_integer(sh[i].x + sh[i].s / 2));
                json_array_append_new(ys, json_integer(sh[i].y + sh[i].s / 2));
            }
        char label[64], q[128];
        snprintf(label, sizeof label, "%s %ss", colours[cc], shapes[ck]);
        snprintf(q, sizeof q, "How many %s %ss are there?", colours[cc], shapes[ck]);
        snprintf(id, sizeof id, "count-%04d", im);
        char cnt[16];
        snprintf(cnt, sizeof cnt, "%d", count);
        add_question(S, id, rel, q, json_pack("[s]", cnt), "exact_count",
                     json_pack("{s:i}", "n_shapes", placed));
        json_array_append_new(counts, json_pack("{s:s, s:s, s:s, s:i, s:{s:o, s:o}, s:s, s:i, "
                                                "s:i}", "id", id, "image", rel, "label", label,
                                                "count", count, "points", "x", xs, "y", ys,
                                                "question", q, "width", W, "height", H));
        /* pointing: the unique target, sh[0] */
        snprintf(label, sizeof label, "the %s %s", colours[sh[0].colour], shapes[sh[0].kind]);
        snprintf(q, sizeof q, "Point to the %s %s.", colours[sh[0].colour], shapes[sh[0].kind]);
        snprintf(id, sizeof id, "point-%04d", im);
        json_t *m = shape_mask(&sh[0]);
        json_t *pt = json_object_get(m, "point");
        json_t *pts = pt ? json_pack("[O]", pt)
                         : json_pack("[[i, i]]", sh[0].x + sh[0].s / 2, sh[0].y + sh[0].s / 2);
        add_question(S, id, rel, q, json_array(), "pointing_f1",
                     json_pack("{s:O, s:i, s:i}", "mask", m, "width", W, "height", H));
        json_array_append_new(points, json_pack("{s:s, s:s, s:s, s:o, s:[o], s:s, s:i, s:i}",
                                                "id", id, "image", rel, "label", label, "points",
                                                pts, "masks", m, "question", q, "width", W,
                                                "height", H));
    }
    if (rc == 0) rc = write_jsonl(S, "count.jsonl", counts, err);
    if (rc == 0) rc = write_jsonl(S, "points.jsonl", points, err);
    *n_q = (int)(json_array_size(counts) + json_array_size(points));
    json_decref(counts);
    json_decref(points);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Driver */

static const cairo_user_data_key_t ft_key;
static void ft_face_done(void *face) { FT_Done_Face((FT_Face)face); }

int evals_synth_write(const char *out_dir, const struct evals_synth_opts *o,
                      struct evals_synth_result *res, struct jb_err *err) {
    struct synth S = {.out = out_dir, .font_path = o->font_path ? o->font_path : DEFAULT_FONT};
    memset(res, 0, sizeof *res);
    FT_Library ft = NULL;
    FT_Face face = NULL;
    int rc = jb_sha256_file(S.font_path, S.font_sha, err);
    if (rc) {
        jb_err_prefix(err, "the synthetic suites need fonts-dejavu-core");
        return rc;
    }
    if (!o->font_path && strcmp(S.font_sha, DEFAULT_FONT_SHA256) != 0)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: SHA-256 %s, expected %s (Debian 12 fonts-dejavu-core 2.37): "
                          "another font version renders different bytes", S.font_path,
                          S.font_sha, DEFAULT_FONT_SHA256);
    if (FT_Init_FreeType(&ft) != 0)
        return jb_err_set(err, JB_EINTERNAL, "FreeType initialisation failed");
    if (FT_New_Face(ft, S.font_path, 0, &face) != 0) {
        FT_Done_FreeType(ft);
        return jb_err_set(err, JB_EFORMAT, "%s: FreeType cannot open this font", S.font_path);
    }
    S.face = cairo_ft_font_face_create_for_ft_face(face, 0);
    cairo_font_face_set_user_data(S.face, &ft_key, face, ft_face_done);
    int defaults[3] = {200, 150, 200};
    static const char *const suite_names[3] = {"synth-chart", "synth-doc", "synth-count"};
    int (*gen[3])(struct synth *, int, int *, struct jb_err *) = {synth_chart, synth_doc,
                                                                 synth_count};
    for (int s = 0; s < 3 && rc == 0; s++) {
        int n = o->n > 0 ? o->n : defaults[s];
        snprintf(S.suite_dir, sizeof S.suite_dir, "%s/%s", out_dir, suite_names[s]);
        static const char *const subdirs[3] = {"test/png", "documents", "images"};
        char sub[8192];
        snprintf(sub, sizeof sub, "%s/%s", S.suite_dir, subdirs[s]);
        if ((rc = jb_mkdir_p(sub, err))) break;
        seed_rng(&S, suite_names[s], o->seed);
        S.files = json_object();
        S.questions = json_array();
        rc = gen[s](&S, n, &res->n_questions[s], err);
        if (rc == 0) rc = write_jsonl(&S, "questions.jsonl", S.questions, err);
        json_decref(S.questions);
        res->n_images[s] = n;
        if (rc == 0) {
            char ver[32];
            snprintf(ver, sizeof ver, "%d.%d.%d", FREETYPE_MAJOR, FREETYPE_MINOR, FREETYPE_PATCH);
            json_t *m = json_pack(
                "{s:s, s:i, s:s, s:i, s:i, s:{s:s, s:s, s:s}, s:{s:s, s:s}, s:O}", "suite",
                suite_names[s], "version", synth_version(suite_names[s]), "seed",
                "", "n_images", n, "n_questions", res->n_questions[s], "libraries", "cairo",
                cairo_version_string(), "freetype", ver, "zlib", zlibVersion(), "font", "path",
                S.font_path, "sha256", S.font_sha, "files", S.files);
            char seed[32];
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
            json_object_set_new(m, "seed", json_string(seed));
            char path[8192];
            snprintf(path, sizeof path, "%s/manifest.json", S.suite_dir);
            rc = jb_json_write_file(path, m, err);
            json_decref(m);
        }
        json_decref(S.files);
    }
    cairo_font_face_destroy(S.face);
    /* cairo caches fonts; empty its caches so the FT_Face is released before the library */
    cairo_debug_reset_static_data();
    FT_Done_FreeType(ft);
    return rc;
}
