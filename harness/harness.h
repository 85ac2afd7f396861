/* harness.h: the `joulebench` command's subcommand table (internal to harness/).
 * One subcommand per file, harness/cmd-<name>.c, each exporting one struct harness_cmd.
 *
 *     const struct harness_cmd *c = harness_cmd_find("meters");
 *     if (c) return c->run(argc, argv);         // argv[0] is the subcommand's name
 */
#ifndef HARNESS_H
#define HARNESS_H

struct harness_cmd {
    const char *name;
    const char *summary;            /* one line for `joulebench help` */
    int (*run)(int argc, char **argv);
    void (*usage)(void);            /* prints `joulebench NAME --help` to stdout */
};

/* NULL-terminated, in the order `joulebench help` lists them. */
extern const struct harness_cmd *const harness_cmds[];

const struct harness_cmd *harness_cmd_find(const char *name);

/* Prints "joulebench CMD: <message> (see 'joulebench CMD --help')" to stderr; returns 2. */
int harness_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses the options of a command whose only option is --json (and --help). Returns -1 when
 * the command should go on (*json set), else the exit status: 0 after --help, 2 on a usage
 * error (already reported). */
int harness_parse_json_only(const char *cmd, int argc, char **argv, void (*usage)(void),
                            int *json);

/* Prints "joulebench: <message>" to stderr; returns 2 (the exit status for errors). */
int harness_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct meter;

/* Logs what the meter noted while choosing its backend: problems the user can fix (counters
 * readable by root only, a shortened sampling period) as warnings, the rest at info level. */
void harness_log_meter_notes(const struct meter *m);

/* The version line: "joulebench 0.1.0 (commit 1a2b3c4d5e6f)". */
const char *harness_version_string(void);

extern const struct harness_cmd cmd_bench;
extern const struct harness_cmd cmd_compare;
extern const struct harness_cmd cmd_convert;
extern const struct harness_cmd cmd_generate;
extern const struct harness_cmd cmd_history;
extern const struct harness_cmd cmd_init_model;
extern const struct harness_cmd cmd_measure;
extern const struct harness_cmd cmd_meters;
extern const struct harness_cmd cmd_report;
extern const struct harness_cmd cmd_run;
extern const struct harness_cmd cmd_score;
extern const struct harness_cmd cmd_suites;
extern const struct harness_cmd cmd_synth;
extern const struct harness_cmd cmd_tokenize;
extern const struct harness_cmd cmd_tensors;

#endif /* HARNESS_H */
