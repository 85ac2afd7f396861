#include "config.h"

#include "harness/harness.h"

#include "jb-build-info.h"

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
