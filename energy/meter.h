/* meter.h: energy meters for joulebench. Reads the machine's energy counters (RAPL through
 * libpowercap, PAPI or the perf power PMU; NVIDIA GPUs through NVML) or, where there are none,
 * a labelled estimate. Knows nothing about Molmo. Design: shared/design/energy.md.
 *
 *     struct meter_backend_status st[METER_MAX_BACKENDS];
 *     int n = meter_backends_probe(st, METER_MAX_BACKENDS, NULL);
 *     for (int i = 0; i < n; i++)
 *         printf("%-9s %s  %s\n", st[i].name, st[i].available ? "yes" : "no ", st[i].detail);
 */
#ifndef METER_H
#define METER_H

#include <stdbool.h>

#define METER_MAX_BACKENDS 8

/* Where a figure comes from. An estimate is never presented as a measurement. */
enum meter_source {
    METER_SOURCE_MEASURED,
    METER_SOURCE_ESTIMATED,
};

struct meter_backend_status {
    const char *name;         /* "powercap", "perf", "papi", "nvml", "estimate" */
    enum meter_source source; /* what its figures would be */
    bool available;
    char detail[1024];        /* the domains it found, or why it is unavailable and what to do */
};

/* Probes every backend in preference order and fills out[0..max-1]; returns how many were
 * written. sysfs_root (NULL = "/sys") lets tests point at a fake tree. Never fails: an
 * unavailable backend is a status, not an error. */
int meter_backends_probe(struct meter_backend_status *out, int max, const char *sysfs_root);

/* "measured" or "estimated". */
const char *meter_source_name(enum meter_source s);

#endif /* METER_H */
