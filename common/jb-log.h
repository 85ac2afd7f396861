/* jb-log.h: leveled logging to stderr. stdout carries results only.
 *
 *     jb_log_set_level(JB_LOG_INFO);          // -v raises, -q lowers
 *     jb_log(JB_LOG_WARN, "%s: idle power differs by %.0f%%", dev, pct);
 *     // stderr: "joulebench: warning: cpu0: idle power differs by 12%"
 */
#ifndef JB_LOG_H
#define JB_LOG_H

enum jb_log_level {
    JB_LOG_ERROR = 0,
    JB_LOG_WARN = 1,
    JB_LOG_INFO = 2,
    JB_LOG_DEBUG = 3,
};

/* The level in force; messages above it are dropped. Default JB_LOG_WARN. Set once by the
 * harness before threads start; reading it from any thread is then safe. */
void jb_log_set_level(enum jb_log_level level);
enum jb_log_level jb_log_get_level(void);

/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int jb_log_level_parse(const char *s);

/* Writes "joulebench: <level>: <message>\n" to stderr in one write, if level is enabled. */
void jb_log(enum jb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* JB_LOG_H */
