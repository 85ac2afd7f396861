#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-mmap.h"
#include "evals/evals.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: joulebench score --metric NAME --predictions FILE.jsonl [--json OUT]\n"
           "                        [--skip-bad]\n"
           "       joulebench score --suite NAME --data DIR --predictions FILE.jsonl [--json OUT]\n"
           "                        [--skip-bad]\n"
           "\n"
           "Scores model outputs with a benchmark's official metric and prints the mean with\n"
           "its 95%% interval (Wilson for 0/1 scores, else a bootstrap with a fixed seed).\n"
           "\n"
           "  --metric NAME        relaxed_accuracy, anls, vqa_accuracy, vqa_accuracy_molmo,\n"
           "                       mc_letter, exact_count or pointing_f1; each line of FILE is\n"
           "                       {\"id\", \"prediction\", \"references\": [...],\n"
           "                       \"choices\": [...]}\n"
           "                       (choices optional: without them every letter A-Z is in range;\n"
           "                       pointing_f1: references are mask objects, plus width, height)\n"
           "  --suite NAME         take the references from the suite's dataset instead (see\n"
           "                       `joulebench suites`); each line is {\"id\", \"prediction\"}\n"
           "  --data DIR           the dataset directory (with --suite)\n"
           "  --predictions FILE   the JSONL file of predictions\n"
           "  --json OUT           also write {metric, n, mean, ci95, scores: [{id, score}]}\n"
           "                       to OUT\n"
           "  --skip-bad           count, list and skip malformed lines and dataset records\n"
           "                       instead of stopping at the first one\n"
           "  -h, --help           this text\n");
}

#define MAX_BAD_LISTED 10

struct bad_list {
    size_t n;
    char *msgs[MAX_BAD_LISTED];
};

static void bad_add(struct bad_list *b, const char *msg) {
    if (b->n < MAX_BAD_LISTED) b->msgs[b->n] = strdup(msg);
    b->n++;
}

/* One metric (and subset) aggregate of the run. */
struct group {
    enum evals_metric metric;
    char subset[32];
    struct evals_agg *agg;
};

static json_t *summary_json(const struct group *g, bool with_scores) {
    struct evals_summary s;
    evals_agg_summary(g->agg, &s);
    json_t *o = json_pack("{s:s, s:I, s:f, s:[f, f], s:I}", "metric", evals_metric_name(g->metric),
                          "n", (json_int_t)s.n, "mean", s.mean, "ci95", s.ci95_lo, s.ci95_hi,
                          "n_invalid", (json_int_t)s.n_invalid);
    if (g->subset[0]) json_object_set_new(o, "subset", json_string(g->subset));
    if (g->metric == EVALS_METRIC_EXACT_COUNT)
        json_object_set_new(o, "close", json_real(s.close_rate));
    if (g->metric == EVALS_METRIC_POINTING_F1) {
        json_object_set_new(o, "precision", json_real(s.precision));
        json_object_set_new(o, "recall", json_real(s.recall));
    }
    if (with_scores) {
        json_t *arr = json_array();
        for (size_t i = 0; i < s.n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:f}", "id", evals_agg_id(g->agg, i),
                                                 "score", evals_agg_score(g->agg, i)));
        json_object_set_new(o, "scores", arr);
    }
    return o;
}

static void print_group(const struct group *g) {
    struct evals_summary s;
    evals_agg_summary(g->agg, &s);
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", evals_metric_name(g->metric), g->subset[0] ? "/" : "",
             g->subset);
    printf("%-28s %6zu  %.4f  [%.4f, %.4f]  %zu invalid", name, s.n, s.mean, s.ci95_lo,
           s.ci95_hi, s.n_invalid);
    if (g->metric == EVALS_METRIC_EXACT_COUNT) printf("  close %.4f", s.close_rate);
    if (g->metric == EVALS_METRIC_POINTING_F1)
        printf("  P %.4f  R %.4f", s.precision, s.recall);
    printf("\n");
}

static struct group *group_for(struct group *gs, size_t *n, enum evals_metric m,
                               const char *subset) {
    for (size_t i = 0; i < *n; i++)
        if (gs[i].metric == m && strcmp(gs[i].subset, subset) == 0) return &gs[i];
    struct group *g = &gs[(*n)++];
    g->metric = m;
    snprintf(g->subset, sizeof g->subset, "%s", subset);
    g->agg = evals_agg_new(m);
    return g;
}

/* What one `score` call holds, from its arguments to its groups. */
struct score_ctx {
    const char *metric_name, *suite_name, *data, *preds, *json_out;
    bool skip_bad;
    enum evals_metric metric;
    const struct evals_suite *suite;
    struct evals_loader *loader;
    char *buf;
    size_t len, n_preds;
    struct evals_prediction **pv;
    struct bad_list badl;
    struct group groups[2 * EVALS_METRIC_COUNT_ + 2];
    size_t n_groups;
};

/* The options; exit status 2 (usage printed) on a bad one, -1 for --help, else 0. */
static int parse_args(struct score_ctx *x, int argc, char **argv) {
    static const struct option opts[] = {
        {"metric", required_argument, NULL, 'm'}, {"suite", required_argument, NULL, 's'},
        {"data", required_argument, NULL, 'd'},   {"predictions", required_argument, NULL, 'p'},
        {"json", required_argument, NULL, 'j'},   {"skip-bad", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},         {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': x->metric_name = optarg; break;
        case 's': x->suite_name = optarg; break;
        case 'd': x->data = optarg; break;
        case 'p': x->preds = optarg; break;
        case 'j': x->json_out = optarg; break;
        case 'b': x->skip_bad = true; break;
        case 'h': usage(); return -1;
        default: return harness_usage_error("score", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("score", "unexpected argument '%s'", argv[optind]);
    if (!x->preds) return harness_usage_error("score", "--predictions FILE is required");
    if (!x->metric_name == !x->suite_name)
        return harness_usage_error("score", "give exactly one of --metric and --suite");
    if (x->suite_name && !x->data) return harness_usage_error("score", "--suite needs --data DIR");
    struct jb_err err = {0};
    x->metric = EVALS_METRIC_RELAXED_ACCURACY;
    if (x->metric_name && evals_metric_from_name(x->metric_name, &x->metric, &err) < 0)
        return harness_usage_error("score", "%s", err.msg);
    if (x->suite_name && !(x->suite = evals_suite_find(x->suite_name)))
        return harness_usage_error("score", "unknown suite '%s' (see 'joulebench suites')",
                                   x->suite_name);
    return 0;
}

/* The dataset (with --suite) and every line of the predictions file, read and checked before
 * anything is scored; a bad line stops here unless --skip-bad. */
static int read_inputs(struct score_ctx *x) {
    struct jb_err err = {0};
    if (x->suite) {
        struct evals_loader_opts lo = {.skip_bad = x->skip_bad};
        if (evals_loader_open(&x->loader, x->suite, x->data, &lo, &err) < 0)
            return harness_fail("%s", err.msg);
        for (size_t i = 0; i < evals_loader_n_bad(x->loader); i++)
            bad_add(&x->badl, evals_loader_bad(x->loader, i));
        x->metric = evals_suite_metric(x->suite);
    }
    if (jb_file_read_all(x->preds, &x->buf, &x->len, &err) < 0)
        return harness_fail("%s", err.msg);
    size_t cap = 1, line = 0;
    for (size_t i = 0; i < x->len; i++) cap += x->buf[i] == '\n';
    if (!(x->pv = calloc(cap, sizeof *x->pv))) return harness_fail("out of memory");
    for (char *p = x->buf; p < x->buf + x->len;) {
        char *e = memchr(p, '\n', (size_t)(x->buf + x->len - p));
        size_t n = e ? (size_t)(e - p) : (size_t)(x->buf + x->len - p), k = 0;
        line++;
        while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k < n) {
            char where[1100];
            snprintf(where, sizeof where, "%s:%zu", x->preds, line);
            struct evals_prediction *pr = NULL;
            int rc = evals_prediction_parse(&pr, p, n, where, x->suite == NULL, x->metric, &err);
            if (rc == 0 && x->suite && !evals_loader_find(x->loader, evals_prediction_id(pr)))
                rc = jb_err_set(&err, JB_ENOTFOUND, "%s: id '%s' is not in %s at %s", where,
                                evals_prediction_id(pr), x->suite_name, x->data);
            if (rc >= 0) {
                x->pv[x->n_preds++] = pr;
            } else {
                evals_prediction_free(pr);
                if (!x->skip_bad) return harness_fail("%s (--skip-bad skips such lines)", err.msg);
                bad_add(&x->badl, err.msg);
            }
        }
        p += n + 1;
    }
    return 0;
}

/* Scores every prediction into its metric's group (and its subset's, e.g. ChartQA human);
 * the suite's main metric over all its samples leads. */
static int score_all(struct score_ctx *x) {
    struct jb_err err = {0};
    for (size_t i = 0; i < x->n_preds; i++) {
        struct evals_score sc;
        const char *id = evals_prediction_id(x->pv[i]), *subset = "";
        enum evals_metric m = x->metric;
        int rc;
        if (x->suite) {
            const struct evals_sample *smp = evals_loader_find(x->loader, id);
            m = evals_sample_metric(smp);
            subset = evals_sample_subset(smp);
            rc = evals_sample_score(smp, evals_prediction_text(x->pv[i]), &sc, &err);
        } else
            rc = evals_prediction_score(x->pv[i], m, &sc, &err);
        if (rc < 0) {
            if (!x->skip_bad) return harness_fail("%s: id '%s': %s", x->preds, id, err.msg);
            char msg[1200];
            snprintf(msg, sizeof msg, "%s: id '%s': %s", x->preds, id, err.msg);
            bad_add(&x->badl, msg);
            continue;
        }
        evals_agg_add(group_for(x->groups, &x->n_groups, m, "")->agg, id, &sc);
        if (subset[0]) evals_agg_add(group_for(x->groups, &x->n_groups, m, subset)->agg, id, &sc);
    }
    if (x->n_groups == 0) return harness_fail("%s: nothing to score", x->preds);
    struct group *g = x->groups;
    for (size_t i = 1; i < x->n_groups; i++)
        if (g[i].metric == x->metric && !g[i].subset[0] &&
            !(g[0].metric == x->metric && !g[0].subset[0])) {
            struct group t = g[0];
            g[0] = g[i];
            g[i] = t;
        }
    return 0;
}

/* The table on stdout, the skipped lines on stderr, and --json. */
static int report(const struct score_ctx *x) {
    printf("%-28s %6s  %-6s  %-16s\n", "metric", "n", "mean", "95% interval");
    for (size_t i = 0; i < x->n_groups; i++) print_group(&x->groups[i]);
    if (x->badl.n) {
        fprintf(stderr, "joulebench score: skipped %zu bad line(s)/record(s):\n", x->badl.n);
        for (size_t i = 0; i < x->badl.n && i < MAX_BAD_LISTED; i++)
            fprintf(stderr, "  %s\n", x->badl.msgs[i]);
        if (x->badl.n > MAX_BAD_LISTED)
            fprintf(stderr, "  ... and %zu more\n", x->badl.n - MAX_BAD_LISTED);
    }
    if (!x->json_out) return 0;
    json_t *root = summary_json(&x->groups[0], true);
    if (x->suite) {
        json_object_set_new(root, "suite", json_string(x->suite_name));
        json_object_set_new(root, "layout", json_string(evals_loader_layout(x->loader)));
    }
    if (x->n_groups > 1) {
        json_t *arr = json_array();
        for (size_t i = 1; i < x->n_groups; i++)
            json_array_append_new(arr, summary_json(&x->groups[i], false));
        json_object_set_new(root, "groups", arr);
    }
    json_t *sk = json_array();
    for (size_t i = 0; i < x->badl.n && i < MAX_BAD_LISTED; i++)
        json_array_append_new(sk, json_string(x->badl.msgs[i]));
    json_object_set_new(root, "skipped",
                        json_pack("{s:I, s:o}", "n", (json_int_t)x->badl.n, "examples", sk));
    struct jb_err err = {0};
    int rc = jb_json_write_file(x->json_out, root, &err) < 0 ? harness_fail("%s", err.msg) : 0;
    json_decref(root);
    return rc;
}

static int run(int argc, char **argv) {
    struct score_ctx x = {0};
    int status = parse_args(&x, argc, argv);
    if (status) return status < 0 ? 0 : status;
    status = read_inputs(&x);
    if (!status) status = score_all(&x);
    if (!status) status = report(&x);
    for (size_t i = 0; i < x.n_groups; i++) evals_agg_free(x.groups[i].agg);
    for (size_t i = 0; i < x.badl.n && i < MAX_BAD_LISTED; i++) free(x.badl.msgs[i]);
    for (size_t i = 0; i < x.n_preds; i++) evals_prediction_free(x.pv[i]);
    free(x.pv);
    free(x.buf);
    evals_loader_close(x.loader);
    return status;
}

const struct harness_cmd cmd_score = {
    .name = "score",
    .summary = "score predictions with a benchmark's official metric (mean and 95% interval)",
    .run = run,
    .usage = usage,
};
