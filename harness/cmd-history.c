#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "reports/reports.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void usage(void) {
    printf("usage: joulebench history FILE.sqlite [--model M] [--suite S] [--add RUN_DIR]\n"
           "                          [--html OUT.html]\n"
           "\n"
           "Prints the trend of accuracy, J/sample and g CO2e recorded in FILE (by\n"
           "'joulebench run --history FILE' or --add), oldest first per model and suite, with\n"
           "the change against the previous row. Estimated energy is marked '~'. With --html,\n"
           "also writes a self-contained trend page: accuracy, J/sample (measured and estimated\n"
           "apart) and work per sample (generated tokens, GFLOP, CPU seconds) over the runs,\n"
           "one line per model and suite, regressions ringed in red.\n"
           "\n"
           "  --model M       only this model\n"
           "  --suite S       only this suite\n"
           "  --add RUN_DIR   first append the summary of RUN_DIR to FILE (created if needed)\n"
           "  --html OUT      write the trend page to OUT (its directory is created)\n"
           "  -h, --help      this text\n");
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"suite", required_argument, NULL, 's'},
        {"add", required_argument, NULL, 'a'},
        {"html", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *suite = NULL, *add = NULL, *html = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': suite = optarg; break;
        case 'a': add = optarg; break;
        case 'H': html = optarg; break;
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
    if (html) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) return harness_fail("out of memory");
        int rc = reports_history_html(path, model, suite, f, &err);
        fclose(f);
        if (!rc) rc = jb_file_write_atomic(html, buf, len, &err);
        free(buf);
        if (rc) return harness_fail("%s", err.msg);
        fprintf(stderr, "joulebench history: trend page %s\n", html);
    }
    return 0;
}

const struct harness_cmd cmd_history = {
    .name = "history",
    .summary = "the trend of accuracy and J/sample recorded with --history",
    .run = run,
    .usage = usage,
};
