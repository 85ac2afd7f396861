/* Reading a run directory back: run.json, samples.jsonl, power.csv, and the per model x suite
 * summaries every report shows. The schema is described in README.md ("Result records"). */
#include "config.h"

#include "reports/reports-impl.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-mmap.h"
#include "common/jb-stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const reports_phase_names[N_PHASES] = {"preprocess", "vision", "prefill", "decode"};

int reports_samples_read(const char *path, json_t **out, long long *good_len, struct jb_err *err) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = jb_file_read_all(path, &buf, &len, err);
    if (rc) return rc;
    json_t *arr = json_array();
    size_t start = 0, good = 0;
    int line = 0;
    while (start < len) {
        char *nl = memchr(buf + start, '\n', len - start);
        if (!nl) break; /* a line cut short by a crash: not a record */
        size_t end = (size_t)(nl - buf);
        line++;
        size_t k = start;
        while (k < end && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r')) k++;
        if (k < end) {
            char where[1100];
            snprintf(where, sizeof where, "%s:%d", path, line);
            json_t *o = NULL;
            rc = jb_json_load_text(buf + start, end - start, where, &o, err);
            if (rc) goto out;
            if (!json_is_object(o)) {
                json_decref(o);
                rc = jb_err_set(err, JB_EFORMAT, "%s: a sample must be a JSON object", where);
                goto out;
            }
            json_array_append_new(arr, o);
        }
        start = end + 1;
        good = start;
    }
    if (good_len) *good_len = (long long)good;
out:
    free(buf);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

/* The value at a dotted path ("machine.cpu_model"), or NULL. */
static const json_t *json_at(const json_t *root, const char *path) {
    char key[128];
    const json_t *v = root;
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof key) return NULL;
        memcpy(key, p, n);
        key[n] = 0;
        v = json_object_get(v, key);
        p += n + (dot ? 1 : 0);
    }
    return v;
}

const char *reports_json_str(const json_t *root, const char *path, const char *dflt) {
    const json_t *v = json_at(root, path);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

double reports_json_num(const json_t *root, const char *path, double dflt) {
    const json_t *v = json_at(root, path);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* The number at obj[key], or dflt when absent; a non-number is a format error. */
static int num_field(const json_t *obj, const char *key, double *out, bool required,
                     const char *where, struct jb_err *err) {
    return jb_json_get_double(obj, key, out, required, where, err);
}

static int sample_parse(struct reports_sample *s, const json_t *o, const char *where,
                        struct jb_err *err) {
    int rc;
    if ((rc = jb_json_get_string(o, "model", &s->model, true, where, err))) return rc;
    if ((rc = jb_json_get_string(o, "suite", &s->suite, true, where, err))) return rc;
    if ((rc = jb_json_get_string(o, "id", &s->id, true, where, err))) return rc;
    if ((rc = num_field(o, "score", &s->score, true, where, err))) return rc;
    if (!(s->score >= 0 && s->score <= 1))
        return jb_err_set(err, JB_EFORMAT, "%s: score %g is outside 0..1", where, s->score);
    const json_t *t = json_object_get(o, "time_s"), *e = json_object_get(o, "energy_j");
    double tsum = 0, esum = 0;
    for (int p = 0; p < N_PHASES; p++) {
        s->time_s[p] = s->energy_j[p] = 0;
        if (t && (rc = num_field(t, reports_phase_names[p], &s->time_s[p], false, where, err)))
            return rc;
        if (e && (rc = num_field(e, reports_phase_names[p], &s->energy_j[p], false, where, err)))
            return rc;
        tsum += s->time_s[p];
        esum += s->energy_j[p];
    }
    /* The totals include what fell between the phase marks; without them, the phases' sum. */
    s->time_total_s = tsum;
    s->energy_total_j = esum;
    if ((rc = num_field(o, "time_total_s", &s->time_total_s, false, where, err))) return rc;
    if ((rc = num_field(o, "energy_total_j", &s->energy_total_j, false, where, err))) return rc;
    s->energy_bound_j = 0;
    if ((rc = num_field(o, "energy_bound_j", &s->energy_bound_j, false, where, err))) return rc;
    s->t_start_s = NAN;
    if ((rc = num_field(o, "t_start_s", &s->t_start_s, false, where, err))) return rc;
    s->n_tokens_in = s->n_tokens_out = 0;
    if ((rc = jb_json_get_int(o, "n_tokens_in", &s->n_tokens_in, false, where, err))) return rc;
    if ((rc = jb_json_get_int(o, "n_tokens_out", &s->n_tokens_out, false, where, err))) return rc;
    s->cpu_s = s->flop_total = s->weight_bytes_read = NAN;
    s->n_crops = s->n_image_tokens = -1;
    if ((rc = num_field(o, "cpu_s", &s->cpu_s, false, where, err))) return rc;
    const json_t *w = json_object_get(o, "work");
    if (w) {
        if ((rc = num_field(w, "flop_total", &s->flop_total, false, where, err)) ||
            (rc = num_field(w, "weight_bytes_read", &s->weight_bytes_read, false, where, err)) ||
            (rc = jb_json_get_int(w, "n_crops", &s->n_crops, false, where, err)) ||
            (rc = jb_json_get_int(w, "n_image_tokens", &s->n_image_tokens, false, where, err)))
            return rc;
    }
    return 0;
}

int reports_run_summarize(struct reports_run *r, struct jb_err *err) {
    int n = (int)json_array_size(r->samples);
    free(r->s);
    free(r->g);
    r->s = calloc(n ? (size_t)n : 1, sizeof *r->s);
    r->g = calloc(n ? (size_t)n : 1, sizeof *r->g);
    r->n_s = r->n_g = 0;
    if (!r->s || !r->g) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", r->dir);
    for (int i = 0; i < n; i++) {
        char where[1100];
        snprintf(where, sizeof where, "%s/samples.jsonl: sample %d", r->dir, i + 1);
        int rc = sample_parse(&r->s[i], json_array_get(r->samples, (size_t)i), where, err);
        if (rc) return rc;
        r->n_s++;
    }
    /* Groups in order of first appearance; sums first, then the derived figures. */
    for (int i = 0; i < r->n_s; i++) {
        const struct reports_sample *s = &r->s[i];
        struct reports_group *g = NULL;
        for (int j = 0; j < r->n_g && !g; j++)
            if (!strcmp(r->g[j].model, s->model) && !strcmp(r->g[j].suite, s->suite)) g = &r->g[j];
        if (!g) {
            g = &r->g[r->n_g++];
            g->model = s->model;
            g->suite = s->suite;
            g->binary = true;
        }
        g->n++;
        g->score_sum += s->score;
        if (s->score != 0 && s->score != 1) g->binary = false;
        for (int p = 0; p < N_PHASES; p++) {
            g->time_s[p] += s->time_s[p];
            g->energy_j[p] += s->energy_j[p];
        }
        g->time_total_s += s->time_total_s;
        g->energy_total_j += s->energy_total_j;
        g->energy_bound_j += s->energy_bound_j;
        struct reports_work *w = &g->work; /* sums here, means below */
        w->n_tokens_in += (double)s->n_tokens_in;
        w->n_tokens_out += (double)s->n_tokens_out;
        w->n_crops += (double)s->n_crops;
        w->n_image_tokens += (double)s->n_image_tokens;
        w->flop += s->flop_total;
        w->weight_bytes_read += s->weight_bytes_read;
        w->cpu_s += s->cpu_s;
        w->wall_s += s->time_total_s;
    }
    for (int j = 0; j < r->n_g; j++) {
        struct reports_group *g = &r->g[j];
        struct reports_work *w = &g->work;
        double *sums[] = {&w->n_tokens_in, &w->n_tokens_out, &w->n_crops, &w->n_image_tokens,
                          &w->flop, &w->weight_bytes_read, &w->cpu_s, &w->wall_s};
        for (size_t k = 0; k < sizeof sums / sizeof *sums; k++) *sums[k] /= g->n;
        /* a counter absent from any sample (older records) is absent from the group */
        if (w->n_crops < 0) w->n_crops = NAN;
        if (w->n_image_tokens < 0) w->n_image_tokens = NAN;
        g->accuracy = g->score_sum / g->n;
        /* the interval `score` gives the same scores (common/jb-stats.c): Wilson for 0/1
         * scores, else the fixed-seed bootstrap */
        double *sc = malloc((size_t)g->n * sizeof *sc);
        if (!sc) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", r->dir);
        size_t k = 0;
        for (int i = 0; i < r->n_s; i++)
            if (!strcmp(r->s[i].model, g->model) && !strcmp(r->s[i].suite, g->suite))
                sc[k++] = r->s[i].score;
        jb_ci95(sc, k, g->binary, &g->ci_lo, &g->ci_hi, &g->ci_method);
        free(sc);
        /* energy.md §2: above idle = total - P_idle * duration, never below zero. */
        g->energy_above_idle_j = fmax(0, g->energy_total_j - r->idle_power_w * g->time_total_s);
        g->j_per_sample = g->energy_total_j / g->n;
        g->j_per_sample_above_idle = g->energy_above_idle_j / g->n;
        g->score_per_kj = g->energy_total_j > 0 ? g->score_sum / (g->energy_total_j / 1000) : 0;
        /* energy.md §3: g = kWh x grid g/kWh x PUE, kWh = J / 3.6e6. */
        g->co2e_g = g->energy_total_j / 3.6e6 * r->grid_g_per_kwh * r->pue;
    }
    return 0;
}

static int domain_index(struct reports_run *r, const char *name) {
    for (int i = 0; i < r->n_domains; i++)
        if (!strcmp(r->domains[i], name)) return i;
    char **d = realloc(r->domains, (size_t)(r->n_domains + 1) * sizeof *d);
    if (!d) return -1;
    r->domains = d;
    if (!(d[r->n_domains] = strdup(name))) return -1;
    return r->n_domains++;
}

/* power.csv: header "t_s,domain,watts", then one row per domain per sampler tick. */
static int power_read(struct reports_run *r, const char *path, struct jb_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : jb_err_errno(err, errno, "%s: cannot open", path);
    char line[512];
    int rc = 0, ln = 0;
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t l = strlen(line);
        if (l == 0 || line[l - 1] != '\n') break; /* cut short by a crash */
        line[--l] = 0;
        if (ln == 1) {
            if (strcmp(line, "t_s,domain,watts") != 0) {
                rc = jb_err_set(err, JB_EFORMAT,
                                "%s:1: header is '%s', expected 't_s,domain,watts'", path, line);
                break;
            }
            continue;
        }
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2) {
            rc = jb_err_set(err, JB_EFORMAT, "%s:%d: expected 3 fields", path, ln);
            break;
        }
        *c1 = *c2 = 0;
        char *e1, *e2;
        double t = strtod(line, &e1), w = strtod(c2 + 1, &e2);
        if (*e1 || *e2 || e1 == line || e2 == c2 + 1) {
            rc = jb_err_set(err, JB_EFORMAT, "%s:%d: not a number", path, ln);
            break;
        }
        if (r->n_power == cap) {
            cap = cap ? cap * 2 : 1024;
            void *p = realloc(r->power, cap * sizeof *r->power);
            if (!p) {
                rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
                break;
            }
            r->power = p;
        }
        int d = domain_index(r, c1 + 1);
        if (d < 0) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
            break;
        }
        r->power[r->n_power++] = (struct reports_power_point){t, d, w};
    }
    fclose(f);
    return rc;
}

int reports_run_load(struct reports_run **out, const char *dir, struct jb_err *err) {
    *out = NULL;
    struct reports_run *r = calloc(1, sizeof *r);
    if (!r) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    r->dir = strndup(dir, dl);
    char *path = malloc(dl + 32);
    int rc = 0;
    if (!r->dir || !path) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    const char *slash = strrchr(r->dir, '/');
    r->label = slash && slash[1] ? slash + 1 : r->dir;

    snprintf(path, dl + 32, "%s/run.json", r->dir);
    if ((rc = jb_json_load_file(path, &r->run, err))) goto out;
    long long ver = 0;
    if ((rc = jb_json_get_int(r->run, "schema_version", &ver, true, path, err))) goto out;
    if (ver < 1 || ver > REPORTS_SCHEMA_VERSION) {
        rc =
            jb_err_set(err, JB_EUNSUPPORTED, "%s: schema_version %lld; this joulebench reads 1..%d",
                       path, ver, REPORTS_SCHEMA_VERSION);
        goto out;
    }
    r->energy_source = reports_json_str(r->run, "meter.energy_source", "estimated:unknown");
    r->estimated = strncmp(r->energy_source, "measured", 8) != 0;
    r->idle_power_w = reports_json_num(r->run, "meter.idle_power_w", 0);
    r->grid_g_per_kwh = reports_json_num(r->run, "carbon.grid_g_per_kwh", 481);
    r->pue = reports_json_num(r->run, "carbon.pue", 1.0);

    snprintf(path, dl + 32, "%s/samples.jsonl", r->dir);
    if ((rc = reports_samples_read(path, &r->samples, NULL, err))) goto out;
    if ((rc = reports_run_summarize(r, err))) goto out;
    snprintf(path, dl + 32, "%s/power.csv", r->dir);
    rc = power_read(r, path, err);
out:
    free(path);
    if (rc)
        reports_run_free(r);
    else
        *out = r;
    return rc;
}

void reports_run_free(struct reports_run *r) {
    if (!r) return;
    json_decref(r->run);
    json_decref(r->samples);
    free(r->s);
    free(r->g);
    free(r->power);
    for (int i = 0; i < r->n_domains; i++) free(r->domains[i]);
    free(r->domains);
    free(r->dir);
    free(r);
}

static json_t *phases_json(const double *v) {
    json_t *o = json_object();
    for (int p = 0; p < N_PHASES; p++)
        json_object_set_new(o, reports_phase_names[p], json_real(v[p]));
    return o;
}

json_t *reports_results_json(const struct reports_run *r) {
    json_t *arr = json_array();
    for (int j = 0; j < r->n_g; j++) {
        const struct reports_group *g = &r->g[j];
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(g->model));
        json_object_set_new(o, "suite", json_string(g->suite));
        json_object_set_new(o, "n_samples", json_integer(g->n));
        json_object_set_new(o, "score_sum", json_real(g->score_sum));
        json_object_set_new(o, "accuracy", json_real(g->accuracy));
        json_object_set_new(o, "accuracy_ci95", json_pack("[f,f]", g->ci_lo, g->ci_hi));
        json_object_set_new(o, "accuracy_ci95_method",
                            json_string(g->ci_method));
        json_object_set_new(o, "time_total_s", json_real(g->time_total_s));
        json_object_set_new(o, "time_s", phases_json(g->time_s));
        json_object_set_new(o, "energy_total_j", json_real(g->energy_total_j));
        json_object_set_new(o, "energy_above_idle_j", json_real(g->energy_above_idle_j));
        json_object_set_new(o, "energy_bound_j", json_real(g->energy_bound_j));
        json_object_set_new(o, "energy_j", phases_json(g->energy_j));
        json_object_set_new(o, "j_per_sample", json_real(g->j_per_sample));
        json_object_set_new(o, "j_per_sample_above_idle", json_real(g->j_per_sample_above_idle));
        json_object_set_new(o, "score_per_kj", json_real(g->score_per_kj));
        json_object_set_new(o, "co2e_g", json_real(g->co2e_g));
        json_object_set_new(o, "energy_source", json_string(r->energy_source));
        const struct reports_work *w = &g->work;
        json_t *wj = json_object();
        const char *keys[] = {"n_tokens_in", "n_tokens_out", "n_crops", "n_image_tokens",
                              "flop", "weight_bytes_read", "cpu_s", "wall_s"};
        const double vals[] = {w->n_tokens_in, w->n_tokens_out, w->n_crops, w->n_image_tokens,
                               w->flop, w->weight_bytes_read, w->cpu_s, w->wall_s};
        for (size_t k = 0; k < sizeof vals / sizeof *vals; k++)
            if (isfinite(vals[k])) json_object_set_new(wj, keys[k], json_real(vals[k]));
        json_object_set_new(o, "work_per_sample", wj);
        json_array_append_new(arr, o);
    }
    return arr;
}
