#include "config.h"

#include "common/jb-log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Process-wide by nature (stderr is); written once at start-up by the harness. */
static enum jb_log_level current = JB_LOG_WARN;

void jb_log_set_level(enum jb_log_level level) { current = level; }

enum jb_log_level jb_log_get_level(void) { return current; }

int jb_log_level_parse(const char *s) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return JB_LOG_WARN;
    return -1;
}

void jb_log(enum jb_log_level level, const char *fmt, ...) {
    if (level > current) return;
    static const char *const tags[] = {"error", "warning", "info", "debug"};
    char line[2048];
    int n = snprintf(line, sizeof line, "joulebench: %s: ", tags[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    /* One write, so lines from the sampler thread and the main thread do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
