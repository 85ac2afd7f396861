#include "config.h"

#include "harness/harness.h"

#include "evals/evals.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void) {
    printf("usage: joulebench suites [--json]\n"
           "\n"
           "Lists the benchmark suites joulebench can score: domain, metric, Molmo prompt style,\n"
           "split and size, and the files `--data DIR` must hold for each.\n"
           "\n"
           "  --json       one JSON object on stdout instead of the table\n"
           "  -h, --help   this text\n");
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("suites", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("suites", "unexpected argument '%s'", argv[optind]);
    const struct evals_suite *s;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; (s = evals_suite_at(i)); i++)
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:s}", "name",
                               evals_suite_name(s), "domain",
                               evals_domain_name(evals_suite_domain(s)), "metric",
                               evals_metric_name(evals_suite_metric(s)), "style",
                               evals_suite_style(s), "split", evals_suite_split(s), "n_expected",
                               (json_int_t)evals_suite_n_expected(s), "comparable",
                               evals_suite_comparable(s), "synthetic",
                               evals_suite_is_synthetic(s), "layout", evals_suite_layout(s)));
        json_t *root = json_pack("{s:o}", "suites", arr);
        char *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(out);
        free(out);
        json_decref(root);
        return 0;
    }
    printf("%-13s %-9s %-17s %-12s %-10s %6s  %s\n", "suite", "domain", "metric", "style", "split",
           "n", "data layout (--data DIR)");
    for (size_t i = 0; (s = evals_suite_at(i)); i++)
        printf("%-13s %-9s %-17s %-12s %-10s %6zu  %s%s\n", evals_suite_name(s),
               evals_domain_name(evals_suite_domain(s)), evals_metric_name(evals_suite_metric(s)),
               evals_suite_style(s), evals_suite_split(s), evals_suite_n_expected(s),
               evals_suite_comparable(s) ? "" : "[not comparable to the paper] ",
               evals_suite_layout(s));
    return 0;
}

const struct harness_cmd cmd_suites = {
    .name = "suites",
    .summary = "the benchmark suites, their metrics and the data layout each expects",
    .run = run,
    .usage = usage,
};
