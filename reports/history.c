/* `--history FILE.sqlite`: one row per run x model x suite, so a CI job can show the trend of
 * accuracy, J/sample and work per sample across commits, as text or as an HTML trend page. */
#include "config.h"

#include "reports/reports-impl.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "common/jb-time.h"

#include <libgen.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS runs ("
    " id INTEGER PRIMARY KEY,"
    " recorded_at TEXT NOT NULL," /* ISO 8601 UTC, when the row was appended */
    " git_commit TEXT NOT NULL,"  /* run.json tool.commit */
    " run_dir TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " suite TEXT NOT NULL,"
    " n_samples INTEGER NOT NULL,"
    " accuracy REAL NOT NULL," /* 0..1 */
    " j_per_sample REAL NOT NULL,"
    " co2e_g REAL NOT NULL,"
    " energy_source TEXT NOT NULL)";

static int db_err(sqlite3 *db, const char *path, const char *what, struct jb_err *err) {
    return jb_err_set(err, JB_EIO, "%s: %s: %s", path, what, db ? sqlite3_errmsg(db) : "?");
}

static int db_open(const char *path, int flags, sqlite3 **db, struct jb_err *err) {
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        int rc = db_err(*db, path, "cannot open the history", err);
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}

/* Columns added after the first schema: NULL in rows written before them. */
static const char *const added_columns[][2] = {
    {"tokens_out_per_sample", "REAL"}, /* generated tokens */
    {"flop_per_sample", "REAL"},       /* counted from the shapes */
    {"cpu_s_per_sample", "REAL"},      /* user + system CPU seconds */
    {"cpu_model", "TEXT"},             /* run.json machine.cpu_model */
};
enum { N_ADDED = sizeof added_columns / sizeof *added_columns };

/* The directory of path, created when missing (as `run --out` creates its own). */
static int mkdir_parent(const char *path, struct jb_err *err) {
    char *copy = strdup(path);
    if (!copy) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    int rc = jb_mkdir_p(dirname(copy), err);
    free(copy);
    return rc;
}

/* Whether the table runs has column name. */
static bool has_column(sqlite3 *db, const char *name) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('runs') WHERE name = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    bool have = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return have;
}

/* Adds the columns a history written by an older joulebench lacks. */
static int migrate(sqlite3 *db) {
    for (int i = 0; i < N_ADDED; i++) {
        if (has_column(db, added_columns[i][0])) continue;
        char sql[256];
        snprintf(sql, sizeof sql, "ALTER TABLE runs ADD COLUMN %s %s", added_columns[i][0],
                 added_columns[i][1]);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) return -1;
    }
    return 0;
}

int reports_history_append(const char *path, const struct reports_run *r, struct jb_err *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = mkdir_parent(path, err);
    if (!rc) rc = db_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, err);
    if (rc) return rc;
    char now[64];
    jb_time_iso8601(now, sizeof now);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK || migrate(db) != 0) {
        rc = db_err(db, path, "cannot create the table", err);
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs (recorded_at, git_commit, run_dir, model, suite, "
                           "n_samples, accuracy, j_per_sample, co2e_g, energy_source, "
                           "tokens_out_per_sample, flop_per_sample, cpu_s_per_sample, cpu_model) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(db, path, "prepare", err);
        goto out;
    }
    for (int j = 0; j < r->n_g; j++) {
        const struct reports_group *g = &r->g[j];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, reports_json_str(r->run, "tool.commit", "unknown"), -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, r->dir, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, g->model, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, g->suite, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 6, g->n);
        sqlite3_bind_double(st, 7, g->accuracy);
        sqlite3_bind_double(st, 8, g->j_per_sample);
        sqlite3_bind_double(st, 9, g->co2e_g);
        sqlite3_bind_text(st, 10, r->energy_source, -1, SQLITE_TRANSIENT);
        const double work[3] = {g->work.n_tokens_out, g->work.flop, g->work.cpu_s};
        for (int k = 0; k < 3; k++)
            if (isfinite(work[k])) sqlite3_bind_double(st, 11 + k, work[k]);
            else sqlite3_bind_null(st, 11 + k);
        sqlite3_bind_text(st, 14, reports_json_str(r->run, "machine.cpu_model", "unknown"), -1,
                          SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_err(db, path, "insert", err);
            goto out;
        }
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_err(db, path, "commit", err);
out:
    sqlite3_finalize(st);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

int reports_history_print(const char *path, const char *model, const char *suite, FILE *f,
                          struct jb_err *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = db_open(path, SQLITE_OPEN_READONLY, &db, err);
    if (rc) return rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT recorded_at, git_commit, model, suite, n_samples, accuracy, "
                           "j_per_sample, co2e_g, energy_source FROM runs "
                           "WHERE (?1 IS NULL OR model = ?1) AND (?2 IS NULL OR suite = ?2) "
                           "ORDER BY model, suite, id",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(db, path, "not a joulebench history", err);
        goto out;
    }
    if (model) sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
    if (suite) sqlite3_bind_text(st, 2, suite, -1, SQLITE_TRANSIENT);
    fprintf(f, "%-20s %-14s %-16s %-14s %6s %9s %8s %11s %8s %9s %s\n", "recorded_at", "commit",
            "model", "suite", "n", "accuracy%", "change", "J/sample", "change%", "g_CO2e",
            "energy");
    char prev_key[512] = "";
    double prev_acc = NAN, prev_j = NAN;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 2);
        const char *su = (const char *)sqlite3_column_text(st, 3);
        char key[512];
        snprintf(key, sizeof key, "%s\037%s", m, su);
        double acc = sqlite3_column_double(st, 5), jps = sqlite3_column_double(st, 6);
        const char *src = (const char *)sqlite3_column_text(st, 8);
        bool est = strncmp(src, "measured", 8) != 0;
        char dacc[32] = "", dj[32] = "";
        if (!strcmp(key, prev_key)) {
            snprintf(dacc, sizeof dacc, "%+.2f", 100 * (acc - prev_acc));
            if (prev_j > 0) snprintf(dj, sizeof dj, "%+.1f", 100 * (jps / prev_j - 1));
        }
        fprintf(f, "%-20.20s %-14.14s %-16s %-14s %6d %9.2f %8s %s%10.4g %8s %s%8.4g %s\n",
                (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                m, su, sqlite3_column_int(st, 4), 100 * acc, dacc, est ? "~" : " ", jps, dj,
                est ? "~" : " ", sqlite3_column_double(st, 7), src);
        snprintf(prev_key, sizeof prev_key, "%s", key);
        prev_acc = acc;
        prev_j = jps;
    }
    if (s != SQLITE_DONE) rc = db_err(db, path, "read", err);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* ---- the HTML trend page ---- */

enum { H_ACC, H_J_MEASURED, H_J_ESTIMATED, H_TOKENS, H_FLOP, H_CPU, N_H };

struct hrow {
    char *commit, *run, *when, *series; /* series: "model / suite" */
    int x, colour;                      /* the run's position; the series' colour */
    double v[N_H];                      /* NAN where the row has no such figure */
};

struct hplot {
    const char *id, *title, *ylabel;
    bool rise_is_worse;
    double tol; /* points (accuracy) or percent (the rest) */
    const char *unit;
};

static const struct hplot hplots[N_H] = {
    {"plot-accuracy", "Accuracy", "accuracy (%)", false, 1.0, "pts"},
    {"plot-energy-measured", "Energy per sample, measured", "J/sample (measured)", true, 5.0, "%"},
    {"plot-energy-estimated", "Energy per sample, ESTIMATED (not measured)",
     "~J/sample (ESTIMATED)", true, 5.0, "%"},
    {"plot-tokens", "Generated tokens per sample (work)", "tokens/sample", true, 5.0, "%"},
    {"plot-flop", "GFLOP per sample (work, counted from the shapes)", "GFLOP/sample", true, 5.0,
     "%"},
    {"plot-cpu", "CPU seconds per sample", "CPU s/sample", true, 35.0, "%"},
};

/* Whether cur is a regression against prev on plot k (the defaults of `compare`). */
static bool h_regressed(int k, double prev, double cur) {
    if (!isfinite(prev) || !isfinite(cur)) return false;
    if (!hplots[k].rise_is_worse) return 100 * (prev - cur) > hplots[k].tol;
    return prev > 0 && 100 * (cur / prev - 1) > hplots[k].tol;
}

static void h_plot(FILE *f, int k, const struct hrow *rows, int n, int n_x, char **xlabels,
                   char **series, int n_series) {
    const struct hplot *hp = &hplots[k];
    double ymax = 0;
    int npts = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(rows[i].v[k])) {
            ymax = fmax(ymax, rows[i].v[k]);
            npts++;
        }
    fprintf(f, "<h2>%s</h2>\n", hp->title);
    if (npts == 0) {
        fprintf(f, "<p class=\"none\">No run in this history has this figure.</p>\n");
        return;
    }
    if (k == H_ACC) ymax = 100;
    struct reports_frame p = {760, 350, 64, 20, 20, 100, -0.5, n_x - 0.5, 0,
                              ymax > 0 ? ymax * 1.15 : 1};
    fprintf(f,
            "<figure><svg id=\"%s\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n",
            hp->id, p.W, p.H, p.W, p.H);
    reports_svg_axes_labelled(f, &p, "run (commit), oldest first", hp->ylabel);
    int step = n_x > 24 ? (n_x + 23) / 24 : 1;
    for (int x = 0; x < n_x; x += step) {
        double px = reports_svg_x(&p, x);
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
                "transform=\"rotate(-40 %.1f %.1f)\">",
                px, p.H - p.b + 14, px, p.H - p.b + 14);
        reports_html_esc(f, xlabels[x]);
        fputs("</text>\n", f);
    }
    bool estimated = k == H_J_ESTIMATED;
    for (int s = 0; s < n_series; s++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\"%s points=\"", reports_palette[s % 8],
                estimated ? " stroke-dasharray=\"5,4\"" : "");
        for (int i = 0; i < n; i++)
            if (rows[i].colour == s && isfinite(rows[i].v[k]))
                fprintf(f, "%.1f,%.1f ", reports_svg_x(&p, rows[i].x),
                        reports_svg_y(&p, rows[i].v[k]));
        fputs("\"/>\n", f);
        fprintf(f,
                "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"5\" fill=\"%s\"/><text x=\"%.0f\" "
                "y=\"%.0f\" font-size=\"11\">",
                p.l + 12, p.t + 14 + 15.0 * s, reports_palette[s % 8], p.l + 22,
                p.t + 18 + 15.0 * s);
        reports_html_esc(f, series[s]);
        fputs("</text>\n", f);
    }
    for (int i = 0; i < n; i++) {
        if (!isfinite(rows[i].v[k])) continue;
        double prev = NAN;
        for (int j = i - 1; j >= 0 && !isfinite(prev); j--)
            if (rows[j].colour == rows[i].colour) prev = rows[j].v[k];
        bool reg = h_regressed(k, prev, rows[i].v[k]);
        const char *col = reports_palette[rows[i].colour % 8];
        fprintf(f,
                "<circle class=\"point%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" "
                "stroke=\"%s\" stroke-width=\"%d\"><title>",
                reg ? " regression" : "", reports_svg_x(&p, rows[i].x),
                reports_svg_y(&p, rows[i].v[k]), reg ? 7 : 4, estimated ? "#fff" : col,
                reg ? "#d00" : col, reg ? 3 : 2);
        reports_html_esc(f, rows[i].series);
        fputs(" at ", f);
        reports_html_esc(f, rows[i].commit);
        fprintf(f, ": %s%.4g%s</title></circle>\n", estimated ? "~" : "", rows[i].v[k],
                reg ? " (REGRESSION)" : "");
    }
    fprintf(f,
            "</svg><figcaption>One line per model and suite, a point per run; a red ring marks "
            "a regression against the previous run of the same line (%s %.3g %s).%s"
            "</figcaption></figure>\n",
            hp->rise_is_worse ? "a rise beyond" : "a drop beyond", hp->tol, hp->unit,
            estimated ? " Estimated from a model of the machine, not measured: hollow points, "
                        "dashed lines."
                      : "");
}

/* The rows of the trend page, their runs (x positions, labelled by commit) and their lines. */
struct htable {
    struct hrow *rows;
    char **xlabels, **series;
    int n, cap, n_x, n_series;
};

static void htable_free(struct htable *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->rows[i].commit);
        free(t->rows[i].run);
        free(t->rows[i].when);
        free(t->rows[i].series);
    }
    for (int i = 0; i < t->n_x; i++) free(t->xlabels[i]);
    free(t->rows);
    free(t->xlabels);
    free(t->series);
}

/* Room for one more row. */
static int htable_grow(struct htable *t) {
    if (t->n < t->cap) return 0;
    int cap = t->cap ? 2 * t->cap : 64;
    void *p1 = realloc(t->rows, (size_t)cap * sizeof *t->rows);
    if (p1) t->rows = p1;
    void *p2 = p1 ? realloc(t->xlabels, (size_t)cap * sizeof *t->xlabels) : NULL;
    if (p2) t->xlabels = p2;
    void *p3 = p2 ? realloc(t->series, (size_t)cap * sizeof *t->series) : NULL;
    if (p3) t->series = p3;
    if (!p3) return -1;
    t->cap = cap;
    return 0;
}

/* One SELECTed row into the table: its figures, its run's x and its line's colour. */
static int htable_add(struct htable *t, sqlite3_stmt *st) {
    if (htable_grow(t)) return -1;
    struct hrow *r = &t->rows[t->n];
    const char *text[6];
    for (int k = 0; k < 5; k++) text[k] = (const char *)sqlite3_column_text(st, k);
    text[5] = (const char *)sqlite3_column_text(st, 7);
    const char *m = text[3] ? text[3] : "?", *su = text[4] ? text[4] : "?";
    size_t sl = strlen(m) + strlen(su) + 4;
    *r = (struct hrow){strdup(text[1] ? text[1] : "?"), strdup(text[2] ? text[2] : "?"),
                       strdup(text[0] ? text[0] : "?"), malloc(sl), 0, 0, {0}};
    t->n++;
    if (!r->commit || !r->run || !r->when || !r->series) return -1;
    snprintf(r->series, sl, "%s / %s", m, su);
    bool measured = text[5] && !strncmp(text[5], "measured", 8);
    double j = sqlite3_column_double(st, 6);
    r->v[H_ACC] = 100 * sqlite3_column_double(st, 5);
    r->v[H_J_MEASURED] = measured ? j : NAN;
    r->v[H_J_ESTIMATED] = measured ? NAN : j;
    for (int k = 0; k < 3; k++)
        r->v[H_TOKENS + k] =
            sqlite3_column_type(st, 8 + k) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 8 + k);
    if (isfinite(r->v[H_FLOP])) r->v[H_FLOP] /= 1e9;
    /* one x per run (its directory and the time it was recorded) */
    r->x = -1;
    for (int i = 0; i < t->n - 1 && r->x < 0; i++)
        if (!strcmp(t->rows[i].run, r->run) && !strcmp(t->rows[i].when, r->when))
            r->x = t->rows[i].x;
    if (r->x < 0) {
        char lab[64];
        snprintf(lab, sizeof lab, "%.10s", r->commit);
        if (!(t->xlabels[t->n_x] = strdup(lab))) return -1;
        r->x = t->n_x++;
    }
    int c = 0;
    while (c < t->n_series && strcmp(t->series[c], r->series)) c++;
    if (c == t->n_series) t->series[t->n_series++] = r->series;
    r->colour = c;
    return 0;
}

/* Reads the history's rows (filtered) in order; a history of an older joulebench has no work
 * columns: NULL stands in. */
static int htable_read(struct htable *t, const char *path, const char *model, const char *suite,
                       struct jb_err *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = db_open(path, SQLITE_OPEN_READONLY, &db, err);
    if (rc) return rc;
    char sql[1024];
    const char *w[3] = {"tokens_out_per_sample", "flop_per_sample", "cpu_s_per_sample"};
    snprintf(sql, sizeof sql,
             "SELECT recorded_at, git_commit, run_dir, model, suite, accuracy, j_per_sample, "
             "energy_source, %s, %s, %s FROM runs "
             "WHERE (?1 IS NULL OR model = ?1) AND (?2 IS NULL OR suite = ?2) ORDER BY id",
             has_column(db, w[0]) ? w[0] : "NULL", has_column(db, w[1]) ? w[1] : "NULL",
             has_column(db, w[2]) ? w[2] : "NULL");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(db, path, "not a joulebench history", err);
        goto out;
    }
    if (model) sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
    if (suite) sqlite3_bind_text(st, 2, suite, -1, SQLITE_TRANSIENT);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        if (htable_add(t, st)) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
            goto out;
        }
    if (s != SQLITE_DONE) rc = db_err(db, path, "read", err);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* Every regression of the page in one table: each row against the previous row of its line
 * that has the figure. */
static void h_regression_table(FILE *f, const struct htable *t) {
    const struct hrow *rows = t->rows;
    int n_reg = 0;
    for (int k = 0; k < N_H; k++)
        for (int i = 0; i < t->n; i++) {
            int pj = -1;
            for (int j = i - 1; j >= 0 && pj < 0; j--)
                if (rows[j].colour == rows[i].colour && isfinite(rows[j].v[k])) pj = j;
            double prev = pj >= 0 ? rows[pj].v[k] : NAN;
            if (!h_regressed(k, prev, rows[i].v[k])) continue;
            if (n_reg++ == 0)
                fputs("<h2 class=\"bad\">Regressions</h2>\n<table><tr><th>line</th><th>figure"
                      "</th><th>commits</th><th>then</th><th>now</th><th>change</th></tr>\n",
                      f);
            fputs("<tr><td>", f);
            reports_html_esc(f, rows[i].series);
            fprintf(f, "</td><td>%s</td><td>", hplots[k].ylabel);
            reports_html_esc(f, rows[pj].commit);
            fputs(" → ", f);
            reports_html_esc(f, rows[i].commit);
            if (k == H_ACC)
                fprintf(f, "</td><td>%.4g</td><td>%.4g</td><td class=\"bad\">%+.2f pts</td></tr>\n",
                        prev, rows[i].v[k], rows[i].v[k] - prev);
            else
                fprintf(f, "</td><td>%.4g</td><td>%.4g</td><td class=\"bad\">%+.1f%%</td></tr>\n",
                        prev, rows[i].v[k], 100 * (rows[i].v[k] / prev - 1));
        }
    if (n_reg)
        fputs("</table>\n", f);
    else
        fputs("<p>No regression between consecutive runs of any line.</p>\n", f);
}

int reports_history_html(const char *path, const char *model, const char *suite, FILE *f,
                         struct jb_err *err) {
    struct htable t = {0};
    int rc = htable_read(&t, path, model, suite, err);
    if (rc) {
        htable_free(&t);
        return rc;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<title>joulebench history</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}\n"
          "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid "
          "#ccc;padding:3px 8px;text-align:right}th:first-child,td:first-child,td:nth-child(2)"
          "{text-align:left}\n.plot{border:1px solid #ddd;max-width:100%;height:auto}\n"
          "svg text{font-family:sans-serif;font-size:12px;fill:#333}\n"
          ".warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em 1em}\n"
          ".bad{color:#b00;font-weight:bold}\nfigure{margin:1em 0}\n</style></head><body>\n"
          "<h1>joulebench history</h1>\n<p>",
          f);
    reports_html_esc(f, path);
    fprintf(f, ": %d row%s over %d run%s, %d model × suite line%s.</p>\n", t.n,
            t.n == 1 ? "" : "s", t.n_x, t.n_x == 1 ? "" : "s", t.n_series,
            t.n_series == 1 ? "" : "s");
    h_regression_table(f, &t);
    for (int k = 0; k < N_H; k++) h_plot(f, k, t.rows, t.n, t.n_x, t.xlabels, t.series, t.n_series);
    fputs("</body></html>\n", f);
    if (ferror(f)) rc = jb_err_set(err, JB_EIO, "%s: cannot write the trend page", path);
    htable_free(&t);
    return rc;
}
