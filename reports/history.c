/* `--history FILE.sqlite`: one row per run x model x suite, so a CI job can show the trend of
 * accuracy and J/sample across commits. */
#include "config.h"

#include "reports/reports-impl.h"

#include "common/jb-err.h"
#include "common/jb-time.h"

#include <math.h>
#include <sqlite3.h>
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

int reports_history_append(const char *path, const struct reports_run *r, struct jb_err *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = db_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, err);
    if (rc) return rc;
    char now[64];
    jb_time_iso8601(now, sizeof now);
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_err(db, path, "cannot create the table", err);
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs (recorded_at, git_commit, run_dir, model, suite, "
                           "n_samples, accuracy, j_per_sample, co2e_g, energy_source) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?)",
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
