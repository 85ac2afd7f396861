/* backend-powercap.c: RAPL through Linux powercap sysfs, read with libpowercap 0.6: every zone
 * intel-rapl:N and subzone intel-rapl:N:M (AMD uses the same names). energy_uj files stay open
 * and are read with pread by libpowercap; wraps go through max_energy_range_uj. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_POWERCAP
#include <powercap-sysfs.h>
#include <powercap.h>
#endif

enum meter_domain_kind backend_kind_from_rapl_name(const char *name) {
    if (strncmp(name, "package", 7) == 0) return METER_DOMAIN_PACKAGE;
    if (strncmp(name, "core", 4) == 0) return METER_DOMAIN_CORE;
    if (strncmp(name, "uncore", 6) == 0) return METER_DOMAIN_UNCORE;
    if (strncmp(name, "dram", 4) == 0) return METER_DOMAIN_DRAM;
    if (strncmp(name, "psys", 4) == 0) return METER_DOMAIN_PSYS;
    return METER_DOMAIN_OTHER;
}

#ifndef HAVE_POWERCAP
int backend_powercap_open(struct meter_backend **out, const struct meter_opts *o,
                          struct jb_err *err) {
    (void)o;
    *out = NULL;
    return jb_err_set(err, JB_EUNSUPPORTED,
                      "built without libpowercap: apt-get install libpowercap-dev and rebuild");
}
#else

#define CT "intel-rapl"

struct pc {
    powercap_zone zone[BACKEND_MAX_DOMAINS];
};

static int pc_read(struct meter_backend *b, uint64_t *raw, double t_s) {
    (void)t_s;
    struct pc *pc = b->priv;
    for (int i = 0; i < b->n; i++)
        if (powercap_zone_get_energy_uj(&pc->zone[i], &raw[i]) < 0) return JB_EIO;
    return 0;
}

static void pc_close(struct meter_backend *b) {
    if (!b) return;
    struct pc *pc = b->priv;
    for (int i = 0; i < b->n; i++)
        if (pc->zone[i].energy_uj > 0) close(pc->zone[i].energy_uj);
    free(pc);
    free(b);
}

static void strip(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = '\0';
}

/* The permission message: what happened and the exact fix (energy.md 1a). */
static int eacces(struct jb_err *err, const uint32_t *z, uint32_t depth) {
    char path[128];
    if (depth == 1)
        snprintf(path, sizeof path, "/sys/class/powercap/" CT "/" CT ":%u/energy_uj", z[0]);
    else
        snprintf(path, sizeof path, "/sys/class/powercap/" CT "/" CT ":%u/" CT ":%u:%u/energy_uj",
                 z[0], z[0], z[1]);
    return jb_err_set(err, JB_EPERM,
                      "%s is readable by root only (kernels since the 2020 RAPL side-channel fix, "
                      "CVE-2020-8694, make energy_uj mode 0400): run as root, or grant read access "
                      "until reboot with 'sudo chmod a+r "
                      "/sys/class/powercap/intel-rapl:*/energy_uj "
                      "/sys/class/powercap/intel-rapl:*:*/energy_uj', or for good with the udev "
                      "rule in the README (section 'Reading RAPL as a user')",
                      path);
}

/* Adds zone z (depth 1 or 2) as domain; 0, or JB_EPERM / JB_EIO. */
static int add_zone(struct meter_backend *b, struct pc *pc, const uint32_t *z, uint32_t depth,
                    int parent, struct jb_err *err) {
    if (b->n == BACKEND_MAX_DOMAINS) return 0;
    struct backend_domain *d = &b->dom[b->n];
    char name[40] = "";
    if (powercap_sysfs_zone_get_name(CT, z, depth, name, sizeof name) < 0)
        snprintf(name, sizeof name, "zone-%u", z[depth - 1]);
    strip(name);
    if (depth == 1)
        snprintf(d->name, sizeof d->name, "%s", name);
    else {
        char pname[24];
        snprintf(pname, sizeof pname, "%s", b->dom[parent].name);
        snprintf(d->name, sizeof d->name, "%s/%.22s", pname, name);
    }
    d->kind = backend_kind_from_rapl_name(name);
    d->parent = parent;
    d->scale_j = 1e-6;
    d->resolution_s = 1e-3; /* RAPL updates about every millisecond */
    if (powercap_sysfs_zone_get_max_energy_range_uj(CT, z, depth, &d->range) < 0) d->range = 0;
    errno = 0;
    int fd = powercap_zone_file_open(&pc->zone[b->n], POWERCAP_ZONE_FILE_ENERGY_UJ, CT, z, depth,
                                     O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pc->zone[b->n].energy_uj = 0;
        if (errno == EACCES || errno == EPERM) return eacces(err, z, depth);
        return jb_err_errno(err, errno ? errno : EIO, "%s: cannot open energy_uj", d->name);
    }
    uint64_t v;
    errno = 0;
    if (powercap_zone_get_energy_uj(&pc->zone[b->n], &v) < 0) {
        int e = errno ? errno : EIO;
        close(fd);
        pc->zone[b->n].energy_uj = 0;
        if (e == EACCES || e == EPERM) return eacces(err, z, depth);
        return jb_err_errno(err, e, "%s: cannot read energy_uj", d->name);
    }
    b->n++;
    return 0;
}

int backend_powercap_open(struct meter_backend **out, const struct meter_opts *o,
                          struct jb_err *err) {
    (void)o;
    *out = NULL;
    if (powercap_sysfs_control_type_exists(CT) < 0)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "no RAPL zones in /sys/class/powercap/" CT ": this kernel, CPU or "
                          "virtual machine does not expose RAPL (hypervisors usually hide it; on "
                          "bare metal load the intel_rapl_common module)");
    struct meter_backend *b = calloc(1, sizeof *b);
    struct pc *pc = calloc(1, sizeof *pc);
    if (!b || !pc) {
        free(b);
        free(pc);
        return jb_err_set(err, JB_ENOMEM, "out of memory");
    }
    b->name = "powercap";
    b->source = METER_SOURCE_MEASURED;
    b->read = pc_read;
    b->close = pc_close;
    b->priv = pc;
    int rc = 0;
    uint32_t z[2];
    for (z[0] = 0; powercap_sysfs_zone_exists(CT, z, 1) == 0; z[0]++) {
        int parent = b->n;
        if ((rc = add_zone(b, pc, z, 1, -1, err)) < 0) goto out;
        for (z[1] = 0; powercap_sysfs_zone_exists(CT, z, 2) == 0; z[1]++)
            if ((rc = add_zone(b, pc, z, 2, parent, err)) < 0) goto out;
    }
    if (b->n == 0)
        rc = jb_err_set(err, JB_EUNSUPPORTED,
                        "/sys/class/powercap/" CT " has no zones: RAPL is not exposed here");
out:
    if (rc < 0) {
        pc_close(b);
        return rc;
    }
    *out = b;
    return 0;
}
#endif
