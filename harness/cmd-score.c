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

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"metric", required_argument, NULL, 'm'}, {"suite", required_argument, NULL, 's'},
        {"data", required_argument, NULL, 'd'},   {"predictions", required_argument, NULL, 'p'},
        {"json", required_argument, NULL, 'j'},   {"skip-bad", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},         {0, 0, 0, 0},
    };
    const char *metric_name = NULL, *suite_name = NULL, *data = NULL, *preds = NULL,
               *json_out = NULL;
    bool skip_bad = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': metric_name = optarg; break;
        case 's': suite_name = optarg; break;
        case 'd': data = optarg; break;
        case 'p': preds = optarg; break;
        case 'j': json_out = optarg; break;
        case 'b': skip_bad = true; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("score", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("score", "unexpected argument '%s'", argv[optind]);
    if (!preds) return harness_usage_error("score", "--predictions FILE is required");
    if (!metric_name == !suite_name)
        return harness_usage_error("score", "give exactly one of --metric and --suite");
    if (suite_name && !data) return harness_usage_error("score", "--suite needs --data DIR");

    struct jb_err err = {0};
    enum evals_metric metric = EVALS_METRIC_RELAXED_ACCURACY;
    const struct evals_suite *suite = NULL;
    if (metric_name && evals_metric_from_name(metric_name, &metric, &err) < 0)
        return harness_usage_error("score", "%s", err.msg);
    if (suite_name && !(suite = evals_suite_find(suite_name)))
        return harness_usage_error("score", "unknown suite '%s' (see 'joulebench suites')",
                                   suite_name);

    int status = 2;
    struct evals_loader *loader = NULL;
    char *buf = NULL;
    size_t len = 0, n_preds = 0;
    struct evals_prediction **pv = NULL;
    char **where_v = NULL;
    struct bad_list badl = {0};
    struct group groups[2 * EVALS_METRIC_COUNT_ + 2];
    size_t n_groups = 0;
    json_t *root = NULL;

    if (suite) {
        struct evals_loader_opts lo = {.skip_bad = skip_bad};
        if (evals_loader_open(&loader, suite, data, &lo, &err) < 0) {
            harness_fail("%s", err.msg);
            goto out;
        }
        for (size_t i = 0; i < evals_loader_n_bad(loader); i++)
            bad_add(&badl, evals_loader_bad(loader, i));
        metric = evals_suite_metric(suite);
    }
    if (jb_file_read_all(preds, &buf, &len, &err) < 0) {
        harness_fail("%s", err.msg);
        goto out;
    }
    /* Every line is read and checked before anything is scored. */
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += buf[i] == '\n';
    pv = calloc(cap, sizeof *pv);
    if (!pv) {
        harness_fail("out of memory");
        goto out;
    }
    size_t line = 0;
    for (char *p = buf; p < buf + len;) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = e ? (size_t)(e - p) : (size_t)(buf + len - p);
        line++;
        size_t k = 0;
        while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k < n) {
            char where[1100];
            snprintf(where, sizeof where, "%s:%zu", preds, line);
            struct evals_prediction *pr = NULL;
            int rc = evals_prediction_parse(&pr, p, n, where, suite == NULL, metric, &err);
            if (rc == 0 && suite && !evals_loader_find(loader, evals_prediction_id(pr)))
                rc = jb_err_set(&err, JB_ENOTFOUND, "%s: id '%s' is not in %s at %s", where,
                                evals_prediction_id(pr), suite_name, data);
            if (rc < 0) {
                evals_prediction_free(pr);
                if (!skip_bad) {
                    harness_fail("%s (--skip-bad skips such lines)", err.msg);
                    goto out;
                }
                bad_add(&badl, err.msg);
            } else
                pv[n_preds++] = pr;
        }
        p += n + 1;
    }

    for (size_t i = 0; i < n_preds; i++) {
        struct evals_score sc;
        const char *id = evals_prediction_id(pv[i]);
        enum evals_metric m = metric;
        const char *subset = "";
        int rc;
        if (suite) {
            const struct evals_sample *x = evals_loader_find(loader, id);
            m = evals_sample_metric(x);
            subset = evals_sample_subset(x);
            rc = evals_sample_score(x, evals_prediction_text(pv[i]), &sc, &err);
        } else
            rc = evals_prediction_score(pv[i], m, &sc, &err);
        if (rc < 0) {
            if (!skip_bad) {
                harness_fail("%s: id '%s': %s", preds, id, err.msg);
                goto out;
            }
            char msg[1200];
            snprintf(msg, sizeof msg, "%s: id '%s': %s", preds, id, err.msg);
            bad_add(&badl, msg);
            continue;
        }
        evals_agg_add(group_for(groups, &n_groups, m, "")->agg, id, &sc);
        if (subset[0]) evals_agg_add(group_for(groups, &n_groups, m, subset)->agg, id, &sc);
    }
    if (n_groups == 0) {
        harness_fail("%s: nothing to score", preds);
        goto out;
    }
    /* the suite's main metric over all its samples leads (synth-count also has pointing) */
    for (size_t i = 1; i < n_groups; i++)
        if (groups[i].metric == metric && !groups[i].subset[0] &&
            !(groups[0].metric == metric && !groups[0].subset[0])) {
            struct group t = groups[0];
            groups[0] = groups[i];
            groups[i] = t;
        }

    printf("%-28s %6s  %-6s  %-16s\n", "metric", "n", "mean", "95% interval");
    for (size_t i = 0; i < n_groups; i++) print_group(&groups[i]);
    if (badl.n) {
        fprintf(stderr, "joulebench score: skipped %zu bad line(s)/record(s):\n", badl.n);
        for (size_t i = 0; i < badl.n && i < MAX_BAD_LISTED; i++)
            fprintf(stderr, "  %s\n", badl.msgs[i]);
        if (badl.n > MAX_BAD_LISTED)
            fprintf(stderr, "  ... and %zu more\n", badl.n - MAX_BAD_LISTED);
    }
    if (json_out) {
        root = summary_json(&groups[0], true);
        if (suite) {
            json_object_set_new(root, "suite", json_string(suite_name));
            json_object_set_new(root, "layout", json_string(evals_loader_layout(loader)));
        }
        if (n_groups > 1) {
            json_t *arr = json_array();
            for (size_t i = 1; i < n_groups; i++)
                json_array_append_new(arr, summary_json(&groups[i], false));
            json_object_set_new(root, "groups", arr);
        }
        json_t *sk = json_array();
        for (size_t i = 0; i < badl.n && i < MAX_BAD_LISTED; i++)
            json_array_append_new(sk, json_string(badl.msgs[i]));
        json_object_set_new(root, "skipped", json_pack("{s:I, s:o}", "n", (json_int_t)badl.n,
                                                       "examples", sk));
        if (jb_json_write_file(json_out, root, &err) < 0) {
            harness_fail("%s", err.msg);
            goto out;
        }
    }
    status = 0;
out:
    json_decref(root);
    for (size_t i = 0; i < n_groups; i++) evals_agg_free(groups[i].agg);
    for (size_t i = 0; i < badl.n && i < MAX_BAD_LISTED; i++) free(badl.msgs[i]);
    for (size_t i = 0; i < n_preds; i++) evals_prediction_free(pv[i]);
    free(pv);
    free(where_v);
    free(buf);
    evals_loader_close(loader);
    return status;
}

const struct harness_cmd cmd_score = {
    .name = "score",
    .summary = "score predictions with a benchmark's official metric (mean and 95% interval)",
    .run = run,
    .usage = usage,
};
