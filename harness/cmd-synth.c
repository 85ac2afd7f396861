#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-time.h"
#include "evals/evals.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void) {
    printf("usage: joulebench synth --out DIR [--seed N] [--n N]\n"
           "\n"
           "Renders the three synthetic suites offline with cairo and DejaVu Sans:\n"
           "  DIR/synth-chart  bar and line charts, ChartQA layout, relaxed_accuracy\n"
           "  DIR/synth-doc    receipts and forms, DocVQA layout, anls\n"
           "  DIR/synth-count  coloured shapes, PixMo-Count/-Points layout, exact_count and\n"
           "                   pointing_f1\n"
           "each with a manifest.json of SHA-256 digests. The same seed gives the same bytes.\n"
           "Score them with `joulebench score --suite synth-chart --data DIR ...`.\n"
           "\n"
           "  --out DIR    where to write (created)\n"
           "  --seed N     the seed (default 0)\n"
           "  --n N        images per suite (default 200 charts, 150 documents, 200 shapes)\n"
           "  -h, --help   this text\n");
}

static int parse_u64(const char *s, unsigned long long *v) {
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return errno || end == s || *end || s[0] == '-' ? -1 : 0;
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"n", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *out = NULL;
    unsigned long long seed = 0, n = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (parse_u64(optarg, &seed) < 0)
                return harness_usage_error("synth", "--seed wants a non-negative integer, not '%s'",
                                           optarg);
            break;
        case 'n':
            if (parse_u64(optarg, &n) < 0 || n < 1 || n > 100000)
                return harness_usage_error("synth", "--n wants an integer 1..100000, not '%s'",
                                           optarg);
            break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("synth", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("synth", "unexpected argument '%s'", argv[optind]);
    if (!out) return harness_usage_error("synth", "--out DIR is required");
    struct jb_err err = {0};
    struct evals_synth_opts o = {.seed = seed, .n = (int)n};
    struct evals_synth_result r;
    double t0 = jb_time_now_s();
    if (evals_synth_write(out, &o, &r, &err) < 0) return harness_fail("synth: %s", err.msg);
    double dt = jb_time_now_s() - t0;
    static const char *const names[3] = {"synth-chart", "synth-doc", "synth-count"};
    for (int i = 0; i < 3; i++)
        printf("%-12s %5d images %5d questions  %s/%s\n", names[i], r.n_images[i],
               r.n_questions[i], out, names[i]);
    fprintf(stderr, "joulebench synth: %.1f s\n", dt);
    return 0;
}

const struct harness_cmd cmd_synth = {
    .name = "synth",
    .summary = "render the synthetic chart, document and counting suites (deterministic)",
    .run = run,
    .usage = usage,
};
