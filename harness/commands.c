#include "config.h"

#include "harness/harness.h"

#include "jb-build-info.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct harness_cmd *const harness_cmds[] = {
    &cmd_bench,
    &cmd_run,
    &cmd_generate,
    &cmd_meters,
    &cmd_measure,
    &cmd_suites,
    &cmd_score,
    &cmd_synth,
    &cmd_report,
    &cmd_compare,
    &cmd_history,
    &cmd_init_model,
    &cmd_convert,
    &cmd_tokenize,
    &cmd_tensors,
    NULL,
};

const struct harness_cmd *harness_cmd_find(const char *name) {
    for (int i = 0; harness_cmds[i]; i++)
        if (strcmp(harness_cmds[i]->name, name) == 0) return harness_cmds[i];
    return NULL;
}

int harness_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "joulebench %s: %s (see 'joulebench %s --help')\n", cmd, msg, cmd);
    return 2;
}

int harness_fail(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "joulebench: %s\n", msg);
    return 2;
}

const char *harness_version_string(void) {
    return PACKAGE_NAME " " PACKAGE_VERSION " (commit " JB_GIT_COMMIT ")";
}

int harness_parse_json_only(const char *cmd, int argc, char **argv, void (*usage)(void),
                            int *json) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int c, saved_opterr = opterr;
    *json = 0;
    optind = 1;
    opterr = 0; /* one message, ours, not getopt's as well */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': *json = 1; break;
        case 'h': opterr = saved_opterr; usage(); return 0;
        default:
            opterr = saved_opterr;
            return harness_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    opterr = saved_opterr;
    if (optind < argc) return harness_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}
