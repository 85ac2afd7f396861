#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "reports/reports.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void) {
    printf("usage: joulebench compare BASE_RUN NEW_RUN [--max-accuracy-drop PTS]\n"
           "                          [--max-energy-rise PCT] [--gate-estimated]\n"
           "                          [--max-work-rise PCT] [--max-cpu-rise PCT]\n"
           "                          [--allow-different-machines] [--markdown FILE] [--seed N]\n"
           "\n"
           "Regression verdict for CI. Samples are paired by id. Accuracy: exact McNemar test\n"
           "(0/1 scores) or a paired bootstrap (partial credit); each cost: bootstrap 95%%\n"
           "interval of the ratio of its means. A regression is a drop (rise) beyond the\n"
           "tolerance that the test finds significant (p < 0.05; interval excluding no change).\n"
           "Gates, each row saying what it rests on:\n"
           "  accuracy        always;\n"
           "  energy          J/sample when both runs are measured; estimated energy only with\n"
           "                  --gate-estimated, when both are estimates of one CPU model, and\n"
           "                  then labelled estimated; without it an estimate is never gated,\n"
           "                  and given --max-energy-rise it fails;\n"
           "  work            generated tokens and FLOP per sample (counted, no meter needed);\n"
           "  CPU time        CPU seconds per sample, when both runs used one thread (on more\n"
           "                  threads their waiting makes CPU seconds noisy; --max-cpu-rise\n"
           "                  gates them anyway).\n"
           "Runs of different machines (CPU model, threads, meter) are refused for the time and\n"
           "energy gates unless --allow-different-machines. Prints the Markdown summary on\n"
           "stdout.\n"
           "\n"
           "  --max-accuracy-drop PTS    tolerated accuracy drop, percentage points (default 1)\n"
           "  --max-energy-rise PCT      tolerated rise of J/sample, percent (default 5)\n"
           "  --gate-estimated           gate estimated energy of one machine model (default off)\n"
           "  --max-work-rise PCT        tolerated rise of generated tokens and FLOP per sample,\n"
           "                             percent (default 5)\n"
           "  --max-cpu-rise PCT         tolerated rise of CPU seconds per sample, percent\n"
           "                             (default 35)\n"
           "  --allow-different-machines\n"
           "                             gate time and energy of runs of different machines\n"
           "  --markdown FILE            also write the summary to FILE (for a PR comment)\n"
           "  --seed N                   bootstrap seed (default 20241015)\n"
           "  -h, --help                 this text\n"
           "\n"
           "exit status: 0 no significant regression, 1 regression, 2 error (unreadable run,\n"
           "different suites, a time or energy gate asked for on runs of different machines)\n");
}

static int parse_num(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || v < 0)
        return harness_usage_error("compare", "%s needs a number >= 0, not '%s'", opt, s);
    *out = v;
    return 0;
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"max-accuracy-drop", required_argument, NULL, 'a'},
        {"max-energy-rise", required_argument, NULL, 'e'},
        {"gate-estimated", no_argument, NULL, 'g'},
        {"max-work-rise", required_argument, NULL, 'w'},
        {"max-cpu-rise", required_argument, NULL, 'c'},
        {"allow-different-machines", no_argument, NULL, 'A'},
        {"markdown", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct reports_compare_opts o;
    reports_compare_opts_init(&o);
    const char *mdpath = NULL;
    double seed = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (parse_num("--max-accuracy-drop", optarg, &o.max_accuracy_drop_pts)) return 2;
            break;
        case 'e':
            if (parse_num("--max-energy-rise", optarg, &o.max_energy_rise_pct)) return 2;
            o.energy_gate_required = true;
            break;
        case 'g': o.gate_estimated = true; break;
        case 'w':
            if (parse_num("--max-work-rise", optarg, &o.max_work_rise_pct)) return 2;
            break;
        case 'c':
            if (parse_num("--max-cpu-rise", optarg, &o.max_cpu_rise_pct)) return 2;
            o.cpu_gate_required = true;
            break;
        case 'A': o.allow_different_machines = true; break;
        case 'm': mdpath = optarg; break;
        case 's':
            if (parse_num("--seed", optarg, &seed)) return 2;
            o.seed = (unsigned long long)seed;
            break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("compare", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return harness_usage_error("compare", "expected BASE_RUN and NEW_RUN, got %d argument(s)",
                                   argc - optind);
    struct jb_err err = {0};
    struct reports_run *base = NULL, *nw = NULL;
    int status = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *md = open_memstream(&buf, &len);
    enum reports_verdict v = REPORTS_PASS;
    if (!md) return harness_fail("out of memory");
    if (reports_run_load(&base, argv[optind], &err) < 0 ||
        reports_run_load(&nw, argv[optind + 1], &err) < 0 ||
        reports_compare(base, nw, &o, md, &v, &err) < 0)
        status = harness_fail("%s", err.msg);
    fclose(md);
    if (!status) {
        fputs(buf, stdout);
        if (mdpath && jb_file_write_atomic(mdpath, buf, len, &err) < 0)
            status = harness_fail("%s", err.msg);
    }
    if (!status) status = v == REPORTS_REGRESSION ? 1 : 0;
    free(buf);
    reports_run_free(base);
    reports_run_free(nw);
    return status;
}

const struct harness_cmd cmd_compare = {
    .name = "compare",
    .summary = "regression verdict for CI: exit 0 pass, 1 regression, 2 error",
    .run = run,
    .usage = usage,
};
