#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "reports/reports.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void) {
    printf("usage: joulebench report RUN_DIR... [--format md,html,csv] [--out DIR]\n"
           "\n"
           "Renders the result records of one run (run.json, samples.jsonl, power.csv) as\n"
           "report.md, report.html (self-contained, with plots) and report.csv; several runs\n"
           "give one comparison (e.g. model sizes). Prints the paths written.\n"
           "\n"
           "  --format LIST  any of md, html, csv, comma separated (default md,html,csv)\n"
           "  --out DIR      where to write (default: the first RUN_DIR)\n"
           "  -h, --help     this text\n");
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *formats = "md,html,csv", *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': formats = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("report", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return harness_usage_error("report", "no RUN_DIR given");
    struct jb_err err = {0};
    int mask = 0;
    if (reports_formats_parse(formats, &mask, &err) < 0)
        return harness_usage_error("report", "--format: %s", err.msg);
    int n = argc - optind, status = 0;
    struct reports_run **runs = calloc((size_t)n, sizeof *runs);
    if (!runs) return harness_fail("out of memory");
    for (int i = 0; i < n && !status; i++)
        if (reports_run_load(&runs[i], argv[optind + i], &err) < 0)
            status = harness_fail("%s", err.msg);
    char *written[3] = {NULL, NULL, NULL};
    if (!status && reports_write(runs, n, mask, out ? out : argv[optind], written, &err) < 0)
        status = harness_fail("%s", err.msg);
    for (int i = 0; i < 3; i++) {
        if (written[i] && !status) printf("%s\n", written[i]);
        free(written[i]);
    }
    for (int i = 0; i < n; i++) reports_run_free(runs[i]);
    free(runs);
    return status;
}

const struct harness_cmd cmd_report = {
    .name = "report",
    .summary = "render run results as Markdown, HTML with plots and CSV",
    .run = run,
    .usage = usage,
};
