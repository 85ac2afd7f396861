/* backend-estimate.c: the `estimate` backend, for machines without energy counters. A stated
 * model, always labelled estimated (energy.md 1e):
 *     P = P_idle + (TDP - P_idle) x u,  P_idle = 0.3 x TDP,
 * u = busy fraction from /proc/stat over the CPUs this process may run on (sched affinity), TDP
 * from --tdp-w or a small table of CPU models. Integrated over the reads into a µJ counter. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_FRAC 0.3
#define ASSUMED_TDP_W 100.0

/* Vendor-published TDP / processor base power (W) of common server and desktop CPUs, matched as
 * a substring of /proc/cpuinfo's "model name". Small on purpose: anything else needs --tdp-w. */
static const struct {
    const char *model;
    double tdp_w;
} tdp_table[] = {
    {"AMD EPYC 7742", 225},     {"AMD EPYC 7763", 280},     {"AMD EPYC 9654", 360},
    {"AMD Ryzen 9 7950X", 170}, {"Intel(R) Xeon(R) Platinum 8380", 270},
    {"Intel(R) Xeon(R) Platinum 8480+", 350},
    {"Intel(R) Core(TM) i9-13900K", 125},
    {"Intel(R) Core(TM) i7-12700K", 125},
};

double estimate_tdp_lookup(const char *model_name) {
    for (size_t i = 0; i < sizeof tdp_table / sizeof tdp_table[0]; i++)
        if (strstr(model_name, tdp_table[i].model)) return tdp_table[i].tdp_w;
    return 0;
}

double estimate_power_w(double tdp_w, double idle_frac, double u) {
    if (u < 0) u = 0;
    if (u > 1) u = 1;
    double idle = idle_frac * tdp_w;
    return idle + (tdp_w - idle) * u;
}

/* Finds "cpuN " in a /proc/stat text and reads busy and total jiffies; false if absent. */
static bool cpu_jiffies(const char *stat, int cpu, unsigned long long *busy,
                        unsigned long long *total) {
    char key[24];
    int klen = snprintf(key, sizeof key, "cpu%d ", cpu);
    for (const char *l = stat; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, key, (size_t)klen) != 0) continue;
        unsigned long long v[8] = {0};
        /* user nice system idle iowait irq softirq steal (guest is inside user already) */
        if (sscanf(l + klen, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
            return false;
        *total = 0;
        for (int i = 0; i < 8; i++) *total += v[i];
        *busy = *total - v[3] - v[4];
        return true;
    }
    return false;
}

double estimate_utilisation(const char *before, const char *after, const int *cpus, int n) {
    unsigned long long busy = 0, total = 0;
    for (int i = 0; i < n; i++) {
        unsigned long long b0, t0, b1, t1;
        if (!cpu_jiffies(before, cpus[i], &b0, &t0) || !cpu_jiffies(after, cpus[i], &b1, &t1))
            continue;
        if (t1 < t0 || b1 < b0) continue; /* a CPU went offline and back */
        busy += b1 - b0;
        total += t1 - t0;
    }
    return total ? (double)busy / (double)total : 0;
}

struct est {
    char stat_path[256];
    char *prev;      /* the previous /proc/stat text */
    double prev_t;
    double acc_uj;
    double tdp_w;
    int cpus[CPU_SETSIZE];
    int n_cpus;
};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The whole file (proc files report size 0, so read until EOF); NULL on failure. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 16384, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

static int est_read(struct meter_backend *b, uint64_t *raw, double t_s) {
    struct est *e = b->priv;
    char *cur = slurp(e->stat_path);
    if (!cur) return JB_EIO;
    double t = t_s;
    double u = estimate_utilisation(e->prev, cur, e->cpus, e->n_cpus);
    e->acc_uj += estimate_power_w(e->tdp_w, IDLE_FRAC, u) * (t - e->prev_t) * 1e6;
    free(e->prev);
    e->prev = cur;
    e->prev_t = t;
    raw[0] = (uint64_t)e->acc_uj;
    return 0;
}

static void est_close(struct meter_backend *b) {
    if (!b) return;
    struct est *e = b->priv;
    if (e) free(e->prev);
    free(e);
    free(b);
}

int backend_estimate_open(struct meter_backend **out, const struct meter_opts *o,
                          struct jb_err *err) {
    const char *proc = o->proc_root ? o->proc_root : "/proc";
    *out = NULL;
    struct meter_backend *b = calloc(1, sizeof *b);
    struct est *e = calloc(1, sizeof *e);
    if (!b || !e) {
        free(b);
        free(e);
        return jb_err_set(err, JB_ENOMEM, "out of memory");
    }
    b->name = "estimate";
    b->source = METER_SOURCE_ESTIMATED;
    b->read = est_read;
    b->close = est_close;
    b->priv = e;
    snprintf(e->stat_path, sizeof e->stat_path, "%.240s/stat", proc);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) e->cpus[e->n_cpus++] = c;
    }
    if (e->n_cpus == 0) e->cpus[e->n_cpus++] = 0;

    char model[128] = "unknown CPU", path[256], line[512];
    snprintf(path, sizeof path, "%.240s/cpuinfo", proc);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f) fclose(f);
    const char *tdp_from;
    if (o->tdp_w > 0) {
        e->tdp_w = o->tdp_w;
        tdp_from = "--tdp-w";
    } else if ((e->tdp_w = estimate_tdp_lookup(model)) > 0) {
        tdp_from = "built-in table";
    } else {
        e->tdp_w = ASSUMED_TDP_W;
        tdp_from = "ASSUMED: CPU model not in the table, pass --tdp-w";
    }
    char cpus[64];
    size_t len = 0;
    for (int i = 0; i < e->n_cpus && len < sizeof cpus - 8; i++)
        len += (size_t)snprintf(cpus + len, sizeof cpus - len, "%s%d", i ? "," : "", e->cpus[i]);
    if (len >= sizeof cpus - 8) snprintf(cpus + len, sizeof cpus - len, ",...");
    snprintf(b->model, sizeof b->model,
             "estimated:tdp-util: P = P_idle + (TDP - P_idle) x u; TDP = %.0f W (%s; %s), "
             "P_idle = %.1f x TDP, u = busy share of CPUs {%s} from /proc/stat; +-30%%",
             e->tdp_w, model, tdp_from, IDLE_FRAC, cpus);

    e->prev = slurp(e->stat_path);
    e->prev_t = mono_s();
    if (!e->prev) {
        int rc = jb_err_set(err, JB_EIO, "%s: cannot read CPU utilisation", e->stat_path);
        est_close(b);
        return rc;
    }
    struct backend_domain *d = &b->dom[0];
    snprintf(d->name, sizeof d->name, "cpu");
    d->kind = METER_DOMAIN_PACKAGE;
    d->parent = -1;
    d->scale_j = 1e-6;
    d->range = 0;
    d->resolution_s = (o->interval_ms ? o->interval_ms : 100) * 1e-3;
    b->n = 1;
    *out = b;
    return 0;
}
