/* backend-perf.c: RAPL through the perf "power" PMU (perf_event_open), as `perf stat -e
 * power/energy-pkg/ -a` does. Type, event configs, scale and unit come from sysfs; one fd per
 * event per package (the PMU's cpumask lists one CPU per package); counts are 64-bit. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct perf {
    int fd[BACKEND_MAX_DOMAINS];
};

static int read_text(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
    return 0;
}

static int perf_read(struct meter_backend *b, uint64_t *raw, double t_s) {
    (void)t_s;
    struct perf *p = b->priv;
    for (int i = 0; i < b->n; i++)
        if (pread(p->fd[i], &raw[i], sizeof raw[i], 0) != (ssize_t)sizeof raw[i]) return JB_EIO;
    return 0;
}

static void perf_close(struct meter_backend *b) {
    if (!b) return;
    struct perf *p = b->priv;
    for (int i = 0; i < b->n; i++) close(p->fd[i]);
    free(p);
    free(b);
}

static const struct {
    const char *event;
    const char *name;
    enum meter_domain_kind kind;
} events[] = {
    {"energy-pkg", "package", METER_DOMAIN_PACKAGE},
    {"energy-cores", "core", METER_DOMAIN_CORE},
    {"energy-gpu", "uncore", METER_DOMAIN_UNCORE},
    {"energy-ram", "dram", METER_DOMAIN_DRAM},
    {"energy-psys", "psys", METER_DOMAIN_PSYS},
};

int backend_perf_open(struct meter_backend **out, const struct meter_opts *o, struct jb_err *err) {
    const char *sys = o->sysfs_root ? o->sysfs_root : "/sys";
    char dir[256], path[512], buf[256];
    *out = NULL;
    snprintf(dir, sizeof dir, "%.200s/bus/event_source/devices/power", sys);
    snprintf(path, sizeof path, "%s/type", dir);
    if (read_text(path, buf, sizeof buf) < 0)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "no 'power' PMU in %.200s/bus/event_source/devices: the CPU, kernel or "
                          "virtual machine exposes no RAPL perf events",
                          sys);
    unsigned type = (unsigned)strtoul(buf, NULL, 0);
    int cpus[16], n_cpus = 0;
    snprintf(path, sizeof path, "%s/cpumask", dir);
    if (read_text(path, buf, sizeof buf) == 0) {
        /* "0" or "0,48" or "0-1": the first CPU of each range is enough */
        for (char *s = buf; *s && n_cpus < 16;) {
            cpus[n_cpus++] = (int)strtol(s, &s, 10);
            while (*s && *s != ',') s++;
            if (*s == ',') s++;
        }
    }
    if (n_cpus == 0) cpus[n_cpus++] = 0;

    struct meter_backend *b = calloc(1, sizeof *b);
    struct perf *p = calloc(1, sizeof *p);
    if (!b || !p) {
        free(b);
        free(p);
        return jb_err_set(err, JB_ENOMEM, "out of memory");
    }
    b->name = "perf";
    b->source = METER_SOURCE_MEASURED;
    b->read = perf_read;
    b->close = perf_close;
    b->priv = p;
    int rc = 0, first_errno = 0;
    for (int c = 0; c < n_cpus; c++) {
        int pkg_dom = -1;
        for (size_t e = 0; e < sizeof events / sizeof events[0]; e++) {
            if (b->n == BACKEND_MAX_DOMAINS) break;
            snprintf(path, sizeof path, "%s/events/%s", dir, events[e].event);
            if (read_text(path, buf, sizeof buf) < 0) continue;
            const char *cfg = strstr(buf, "event=");
            if (!cfg) continue;
            struct perf_event_attr a = {.size = sizeof a, .type = type,
                                        .config = strtoull(cfg + 6, NULL, 0)};
            double scale = 2.3283064365386962890625e-10; /* 2^-32 J, the kernel's usual scale */
            snprintf(path, sizeof path, "%s/events/%s.scale", dir, events[e].event);
            if (read_text(path, buf, sizeof buf) == 0) scale = strtod(buf, NULL);
            snprintf(path, sizeof path, "%s/events/%s.unit", dir, events[e].event);
            if (read_text(path, buf, sizeof buf) == 0 && strcmp(buf, "Joules") != 0) continue;
            int fd = (int)syscall(SYS_perf_event_open, &a, -1, cpus[c], -1, 0);
            if (fd < 0) {
                if (!first_errno) first_errno = errno;
                continue;
            }
            struct backend_domain *d = &b->dom[b->n];
            p->fd[b->n] = fd;
            snprintf(d->name, sizeof d->name, "%s-%d", events[e].name, c);
            if (events[e].kind == METER_DOMAIN_CORE || events[e].kind == METER_DOMAIN_UNCORE)
                snprintf(d->name, sizeof d->name, "package-%d/%s", c, events[e].name);
            d->kind = events[e].kind;
            bool inside = d->kind == METER_DOMAIN_CORE || d->kind == METER_DOMAIN_UNCORE;
            d->parent = inside ? pkg_dom : -1;
            d->scale_j = scale;
            d->range = 0;
            d->resolution_s = 1e-3;
            if (d->kind == METER_DOMAIN_PACKAGE) {
                pkg_dom = b->n;
                snprintf(d->name, sizeof d->name, "package-%d", c);
            }
            b->n++;
        }
    }
    if (b->n == 0) {
        if (first_errno == EACCES || first_errno == EPERM)
            rc = jb_err_set(err, JB_EPERM,
                            "perf_event_open on the power PMU was refused: run as root, grant "
                            "CAP_PERFMON, or 'sudo sysctl kernel.perf_event_paranoid=0'");
        else
            rc = jb_err_set(err, JB_EUNSUPPORTED,
                            "the power PMU in %s has no usable energy events%s%s", dir,
                            first_errno ? ": " : "", first_errno ? strerror(first_errno) : "");
        perf_close(b);
        return rc;
    }
    *out = b;
    return 0;
}
