#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "reports/reports.h"

#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

static void usage(void) {
    printf("usage: joulebench history FILE.sqlite [--model M] [--suite S] [--add RUN_DIR]\n"
           "\n"
           "Prints the trend of accuracy, J/sample and g CO2e recorded in FILE (by\n"
           "'joulebench run --history FILE' or --add), oldest first per model and suite, with\n"
           "the change against the previous row. Estimated energy is marked '~'.\n"
           "\n"
           "  --model M       only this model\n"
           "  --suite S       only this suite\n"
           "  --add RUN_DIR   first append the summary of RUN_DIR to FILE\n"
           "  -h, --help      this text\n");
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"suite", required_argument, NULL, 's'},
        {"add", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *suite = NULL, *add = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': suite = optarg; break;
        case 'a': add = optarg; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("history", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return harness_usage_error("history", "expected one FILE.sqlite");
    const char *path = argv[optind];
    struct jb_err err = {0};
    if (add) {
        struct reports_run *r = NULL;
        int rc = reports_run_load(&r, add, &err);
        if (!rc) rc = reports_history_append(path, r, &err);
        reports_run_free(r);
        if (rc) return harness_fail("%s", err.msg);
    } else if (access(path, R_OK) != 0) {
        return harness_fail("%s: no such history file", path);
    }
    if (reports_history_print(path, model, suite, stdout, &err) < 0)
        return harness_fail("%s", err.msg);
    return 0;
}

const struct harness_cmd cmd_history = {
    .name = "history",
    .summary = "the trend of accuracy and J/sample recorded with --history",
    .run = run,
    .usage = usage,
};
