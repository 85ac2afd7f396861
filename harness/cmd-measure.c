/* cmd-measure.c: `joulebench measure -- CMD [ARGS...]`: runs CMD under the energy meter and
 * reports time, energy per domain, mean and peak power and CO2e, each labelled measured or
 * estimated, like `perf stat` (on stderr, so CMD's stdout stays its own). Exits with CMD's
 * status. */
#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "common/jb-json.h"
#include "common/jb-log.h"
#include "energy/meter.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(void) {
    printf("usage: joulebench measure [OPTIONS] -- CMD [ARGS...]\n"
           "\n"
           "Runs CMD while sampling the machine's energy counters and reports time, energy per\n"
           "domain, energy above idle, mean and peak power and CO2e, each labelled measured or\n"
           "estimated (on stderr, like perf stat). Exits with CMD's exit status.\n"
           "\n"
           "  --interval-ms N        sampler period, 10..1000 ms (default 100)\n"
           "  --meter NAME           auto (default), powercap, perf, papi, nvml or estimate\n"
           "  --idle-s N             idle baseline before CMD, seconds (default 5; 0 skips)\n"
           "  --tdp-w W              estimate: the CPU's TDP in watts (default: built-in table)\n"
           "  --region CODE          grid carbon intensity of a region (default WORLD,\n"
           "                         481 g/kWh); 'list' prints the table\n"
           "  --grid-g-per-kwh X     grid carbon intensity in g CO2e/kWh (wins over --region)\n"
           "  --pue X                power usage effectiveness, >= 1 (default 1: a local machine)\n"
           "  --embodied-g-per-h X   embodied emissions per hour of machine time (default 0: off)\n"
           "  --no-gpu               do not add NVIDIA GPUs to the automatic choice\n"
           "  --json FILE            also write the result as JSON to FILE\n"
           "  --trace FILE           write the power trace as CSV (t_s, power_w, energy_j, W per\n"
           "                         domain)\n"
           "  -h, --help             this text\n");
}

struct opts {
    struct meter_opts mo;
    const char *region, *json, *trace;
    double grid, pue, idle_s, embodied;
};

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return harness_usage_error("measure", "--%s: '%s' is not a number in %g..%g", opt, s, lo,
                                   hi);
    *out = v;
    return 0;
}

static int list_regions(void) {
    printf("%-6s %10s  %s\n", "region", "g/kWh", "source");
    for (int i = 0; i < meter_carbon_n_regions(); i++) {
        struct meter_carbon c;
        meter_carbon_region(i, &c);
        printf("%-6s %10.0f  %s\n", c.region, c.g_per_kwh, c.source);
    }
    return 0;
}

/* "12.3 J" with a unit prefix that keeps 3-4 significant digits readable. */
static void fmt_energy(char *buf, size_t len, double j) {
    if (fabs(j) >= 1e6)
        snprintf(buf, len, "%.3f MJ", j / 1e6);
    else if (fabs(j) >= 1e3)
        snprintf(buf, len, "%.3f kJ", j / 1e3);
    else
        snprintf(buf, len, "%.3f J", j);
}

static void fmt_mass(char *buf, size_t len, double g) {
    if (fabs(g) >= 1e3)
        snprintf(buf, len, "%.3f kg", g / 1e3);
    else if (fabs(g) >= 1)
        snprintf(buf, len, "%.3f g", g);
    else
        snprintf(buf, len, "%.3f mg", g * 1e3);
}

/* The power trace as CSV, written atomically (its directory created like every output's). */
static int write_trace(const struct meter *m, const char *path, struct jb_err *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    int nd = meter_n_domains(m);
    fprintf(f, "t_s,power_w,energy_j");
    for (int d = 0; d < nd; d++) fprintf(f, ",%s_w", meter_domain_get(m, d)->name);
    fprintf(f, "\n");
    struct meter_point pt[256];
    double *dw = malloc(256 * (size_t)(nd ? nd : 1) * sizeof *dw);
    if (!dw) {
        fclose(f);
        free(text);
        return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    }
    size_t from = 0, k;
    while ((k = meter_trace_read(m, from, pt, dw, 256)) > 0) {
        for (size_t i = 0; i < k; i++) {
            fprintf(f, "%.6f,%.4f,%.6f", pt[i].t_s, pt[i].power_w, pt[i].energy_j);
            for (int d = 0; d < nd; d++) fprintf(f, ",%.4f", dw[i * (size_t)nd + (size_t)d]);
            fprintf(f, "\n");
        }
        from += k;
    }
    free(dw);
    int rc = fclose(f) != 0 ? jb_err_set(err, JB_ENOMEM, "%s: out of memory", path)
                            : jb_file_write_atomic(path, text, len, err);
    free(text);
    return rc;
}

static json_t *result_json(const struct meter *m, const struct meter_result *r,
                           const double *dj, const double *didle, const struct meter_carbon *c,
                           double co2, int status, char **argv) {
    json_t *doms = json_array(), *cmd = json_array(), *notes = json_array();
    for (int d = 0; d < meter_n_domains(m); d++) {
        const struct meter_domain *dm = meter_domain_get(m, d);
        const struct meter_domain *parent =
            dm->parent >= 0 ? meter_domain_get(m, dm->parent) : NULL;
        json_array_append_new(
            doms, json_pack("{s:s, s:f, s:s, s:s, s:s, s:b, s:s?, s:f}", "name", dm->name,
                            "energy_j", dj[d], "kind", meter_domain_kind_name(dm->kind), "source",
                            meter_source_name(dm->source), "backend", dm->backend, "in_total",
                            dm->in_total, "inside", parent ? parent->name : NULL,
                            "idle_power_w", didle[d]));
    }
    for (int i = 0; argv[i]; i++) json_array_append_new(cmd, json_string(argv[i]));
    for (int i = 0; i < meter_n_notes(m); i++)
        json_array_append_new(notes, json_string(meter_note(m, i, NULL)));
    json_t *carbon = json_pack("{s:s, s:f, s:s, s:f, s:f, s:s}", "region", c->region, "g_per_kwh",
                               c->g_per_kwh, "source", c->source, "pue", c->pue,
                               "embodied_g_per_h", c->embodied_g_per_h, "co2e_source",
                               "estimated (grid factor)");
    const char *model = meter_model(m);
    json_t *counts = json_pack("{s:o, s:o, s:s?}", "instructions",
                               r->instructions >= 0 ? json_integer(r->instructions) : json_null(),
                               "cycles", r->cycles >= 0 ? json_integer(r->cycles) : json_null(),
                               "unavailable", meter_counters_status(m));
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:s, s:s?, s:o, s:o, s:f, s:f, s:i, "
                     "s:f, s:f, s:i, s:i, s:o, s:o, s:o}",
                     "time_s", r->time_s, "energy_j", r->energy_j, "energy_above_idle_j",
                     r->energy_above_idle_j, "power_w_mean", r->power_w_mean, "power_w_peak",
                     r->power_w_peak, "co2e_g", co2, "source", meter_source_name(r->source),
                     "backend", meter_backend_name(m), "model", model, "domains", doms, "carbon",
                     carbon, "idle_power_w", r->idle_power_w, "idle_s", r->idle_s, "interval_ms",
                     meter_interval_ms(m), "sampler_cpu_s", r->sampler_cpu_s, "sampler_overhead",
                     r->sampler_overhead, "read_errors", (int)r->n_read_errors, "exit_status",
                     status, "command", cmd, "notes", notes, "counters", counts);
}

static void line(FILE *o, bool est, const char *value, const char *label, const char *what) {
    fprintf(o, " %c%18s  %-9s  %s\n", est ? '~' : ' ', value, label, what);
}

static void print_human(const struct meter *m, const struct meter_result *r, const double *dj,
                        const struct meter_carbon *c, double co2, int status, char **argv) {
    FILE *o = stderr;
    bool est = r->source == METER_SOURCE_ESTIMATED;
    const char *tl = meter_source_name(r->source);
    char v[64], w[512];
    fprintf(o, "\n Energy stats for '");
    for (int i = 0; argv[i]; i++) fprintf(o, "%s%s", i ? " " : "", argv[i]);
    fprintf(o, "' (exit status %d):\n\n", status);
    if (est)
        fprintf(o, " *** ESTIMATED: no energy counter was read for the totals; the figures marked\n"
                   " *** 'estimated' and '~' come from a model, not a measurement:\n"
                   " *** %s\n\n",
                   meter_model(m) ? meter_model(m) : "(model unknown)");
    snprintf(v, sizeof v, "%.3f s", r->time_s);
    line(o, false, v, "measured", "time elapsed");
    for (int d = 0; d < meter_n_domains(m); d++) {
        const struct meter_domain *dm = meter_domain_get(m, d);
        fmt_energy(v, sizeof v, dj[d]);
        snprintf(w, sizeof w, "%s [%s%s%s]", dm->name, meter_domain_kind_name(dm->kind),
                 dm->parent >= 0 ? ", inside " : "",
                 dm->parent >= 0 ? meter_domain_get(m, dm->parent)->name : "");
        line(o, dm->source == METER_SOURCE_ESTIMATED, v, meter_source_name(dm->source), w);
    }
    fmt_energy(v, sizeof v, r->energy_j);
    line(o, est, v, tl, "energy, total of the counted domains");
    fmt_energy(v, sizeof v, r->energy_above_idle_j);
    if (r->idle_s > 0)
        snprintf(w, sizeof w, "energy above idle (idle %.3f W, median over %.1f s)",
                 r->idle_power_w, r->idle_s);
    else
        snprintf(w, sizeof w, "energy above idle (no idle baseline: --idle-s 0)");
    line(o, est, v, tl, w);
    snprintf(v, sizeof v, "%.3f W", r->power_w_mean);
    line(o, est, v, tl, "mean power");
    snprintf(v, sizeof v, "%.3f W", r->power_w_peak);
    snprintf(w, sizeof w, "peak power (%d ms windows)", meter_interval_ms(m));
    line(o, est, v, tl, w);
    fmt_mass(v, sizeof v, co2);
    snprintf(w, sizeof w, "CO2e: grid factor %s %.0f g/kWh (%s), PUE %.2f%s", c->region,
             c->g_per_kwh, c->source, c->pue,
             c->embodied_g_per_h > 0 ? ", with embodied emissions" : "");
    line(o, true, v, "estimated", w);
    snprintf(v, sizeof v, "%.4f %%", 100.0 * r->sampler_overhead);
    snprintf(w, sizeof w,
             "sampler overhead (thread CPU %.3f ms / wall time; every %d ms, %ld points)",
             r->sampler_cpu_s * 1e3, meter_interval_ms(m), r->n_points);
    line(o, false, v, "measured", w);
    if (r->instructions >= 0) {
        snprintf(v, sizeof v, "%lld", r->instructions);
        line(o, false, v, "measured", "instructions (PAPI perf_event)");
        snprintf(v, sizeof v, "%lld", r->cycles);
        snprintf(w, sizeof w, "cycles (%.2f instructions per cycle)",
                 r->cycles > 0 ? (double)r->instructions / (double)r->cycles : 0.0);
        line(o, false, v, "measured", w);
    }
    fprintf(o, "\n backend: %s (%s)\n", meter_backend_name(m), tl);
    if (r->n_read_errors)
        fprintf(o, " warning: %ld counter reads failed; their energy moved to the next read\n",
                r->n_read_errors);
    fprintf(o, "\n");
}

/* The options into op; *cmd_at the index of the command. Returns -1 to go on, else the exit
 * status (0 after --help or the region list, 2 on a usage error). */
static int parse_args(struct opts *op, int argc, char **argv, int *cmd_at) {
    static const struct option lopts[] = {
        {"interval-ms", required_argument, NULL, 'i'},
        {"meter", required_argument, NULL, 'm'},
        {"region", required_argument, NULL, 'r'},
        {"grid-g-per-kwh", required_argument, NULL, 'g'},
        {"pue", required_argument, NULL, 'p'},
        {"idle-s", required_argument, NULL, 'I'},
        {"tdp-w", required_argument, NULL, 't'},
        {"embodied-g-per-h", required_argument, NULL, 'e'},
        {"no-gpu", no_argument, NULL, 'G'},
        {"json", required_argument, NULL, 'j'},
        {"trace", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    double v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (parse_double("interval-ms", optarg, 10, 1000, &v)) return 2;
            op->mo.interval_ms = (int)v;
            break;
        case 'm': op->mo.backend = optarg; break;
        case 'r': op->region = optarg; break;
        case 'g':
            if (parse_double("grid-g-per-kwh", optarg, 0, 5000, &op->grid)) return 2;
            break;
        case 'p':
            if (parse_double("pue", optarg, 1, 10, &op->pue)) return 2;
            break;
        case 'I':
            if (parse_double("idle-s", optarg, 0, 3600, &op->idle_s)) return 2;
            break;
        case 't':
            if (parse_double("tdp-w", optarg, 1, 5000, &op->mo.tdp_w)) return 2;
            break;
        case 'e':
            if (parse_double("embodied-g-per-h", optarg, 0, 1e6, &op->embodied)) return 2;
            break;
        case 'G': op->mo.no_gpu = true; break;
        case 'j': op->json = optarg; break;
        case 'T': op->trace = optarg; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("measure", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (op->region && strcmp(op->region, "list") == 0) return list_regions();
    if (optind >= argc)
        return harness_usage_error("measure", "no command to run: joulebench measure -- CMD");
    *cmd_at = optind;
    return -1;
}

/* The grid factor: --grid-g-per-kwh, else the region's (or the world's) from the table. */
static int carbon_of(const struct opts *op, struct meter_carbon *carbon, struct jb_err *err) {
    if (op->grid >= 0) {
        memset(carbon, 0, sizeof *carbon);
        snprintf(carbon->region, sizeof carbon->region, "%s", op->region ? op->region : "custom");
        carbon->g_per_kwh = op->grid;
        snprintf(carbon->source, sizeof carbon->source, "--grid-g-per-kwh, given by the user");
    } else if (meter_carbon_lookup(op->region, carbon, err) < 0) {
        return err->code;
    }
    carbon->pue = op->pue;
    carbon->embodied_g_per_h = op->embodied;
    return 0;
}

/* Runs cmd under the started meter, like time(1): the child gets ^C, we wait for it and still
 * report. Returns its exit status (128 + signal when killed), or -1 when it cannot fork. */
static int run_child(char **cmd, int *fork_errno) {
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    pid_t pid = fork();
    *fork_errno = pid < 0 ? errno : 0;
    if (pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        execvp(cmd[0], cmd);
        int e = errno;
        dprintf(2, "joulebench measure: cannot run '%s': %s\n", cmd[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    int ws = 0;
    if (pid > 0)
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    if (pid < 0) return -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* The figures: on stderr as perf stat does, then --json and --trace. Returns the child's
 * status, or 2 when a file could not be written. */
static int report(struct meter *m, const struct opts *op, const struct meter_carbon *carbon,
                  int status, char **cmd) {
    struct jb_err err = {0};
    struct meter_result r;
    double dj[METER_MAX_DOMAINS], didle[METER_MAX_DOMAINS];
    meter_result_get(m, &r, dj, didle);
    double co2 = meter_carbon_co2e_g(carbon, r.energy_j, r.time_s);
    print_human(m, &r, dj, carbon, co2, status, cmd);
    int rc = status;
    if (op->json) {
        json_t *j = result_json(m, &r, dj, didle, carbon, co2, status, cmd);
        int wr = j ? jb_json_write_file(op->json, j, &err) : jb_err_set(&err, JB_ENOMEM, "json");
        json_decref(j);
        if (wr < 0) rc = harness_fail("%s", err.msg);
    }
    if (op->trace && write_trace(m, op->trace, &err) < 0) rc = harness_fail("%s", err.msg);
    return rc;
}

static int run(int argc, char **argv) {
    struct opts op = {.pue = 1.0, .idle_s = 5.0, .grid = -1};
    int cmd_at = 0, rc = parse_args(&op, argc, argv, &cmd_at);
    if (rc >= 0) return rc;
    char **cmd = argv + cmd_at;
    struct jb_err err = {0};
    struct meter_carbon carbon;
    if (carbon_of(&op, &carbon, &err)) return harness_fail("%s", err.msg);
    struct meter *m = NULL;
    if (meter_open(&m, &op.mo, &err) < 0) return harness_fail("%s", err.msg);
    harness_log_meter_notes(m);
    if (meter_source(m) == METER_SOURCE_ESTIMATED)
        jb_log(JB_LOG_WARN, "no energy counter is readable here: figures are ESTIMATED "
                            "('joulebench meters' says why each backend is unavailable)");
    if (op.idle_s > 0) jb_log(JB_LOG_INFO, "measuring idle power for %.1f s", op.idle_s);
    if ((op.idle_s > 0 && meter_idle_measure(m, op.idle_s, &err) < 0) ||
        meter_start(m, &err) < 0) {
        rc = harness_fail("%s", err.msg);
    } else {
        int fork_errno = 0, status = run_child(cmd, &fork_errno);
        meter_stop(m, NULL);
        if (status < 0) {
            rc = harness_fail("cannot fork: %s", strerror(fork_errno));
        } else {
            if (meter_counters_status(m))
                jb_log(JB_LOG_INFO, "instructions and cycles not counted: %s",
                       meter_counters_status(m));
            rc = report(m, &op, &carbon, status, cmd);
        }
    }
    meter_close(m);
    return rc;
}

const struct harness_cmd cmd_measure = {
    .name = "measure",
    .summary = "run a command and report its energy, power and CO2e (like perf stat)",
    .run = run,
    .usage = usage,
};
