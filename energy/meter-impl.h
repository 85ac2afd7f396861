/* meter-impl.h: what energy/ shares between its files: the backend interface and the pieces of
 * the backends the tests exercise directly. No other module includes it. */
#ifndef METER_IMPL_H
#define METER_IMPL_H

#include "energy/meter.h"

#include <stdint.h>

struct jb_err;

#define BACKEND_MAX_DOMAINS 32

struct backend_domain {
    char name[48];
    enum meter_domain_kind kind;
    int parent;          /* index within the backend, or -1 */
    double scale_j;      /* joules per raw count */
    uint64_t range;      /* the raw counter wraps to 0 after this value; 0 = never */
    double resolution_s; /* how often the counter moves */
};

/* One opened backend: its domains and how to read them. Allocated by the backend's open,
 * released by its close. */
struct meter_backend {
    const char *name;            /* "powercap" ... */
    enum meter_source source;
    char model[512];             /* estimate: the formula and its inputs; else "" */
    int n;
    struct backend_domain dom[BACKEND_MAX_DOMAINS];
    /* Reads every domain's raw counter into raw[0..n-1]. t_s is the meter's timestamp of this
     * reading (CLOCK_MONOTONIC seconds): backends that integrate power use it, so that their
     * energy spans exactly the meter's intervals. Called with the meter's mutex held, from the
     * sampler thread or the caller of meter_mark. Returns 0 or a JB_E* code. */
    int (*read)(struct meter_backend *b, uint64_t *raw, double t_s);
    void (*close)(struct meter_backend *b);
    void *priv;
};

/* Each backend's open: 0 and *out, or a JB_E* code with the reason a user can act on in err
 * (JB_EPERM for permissions, JB_EUNSUPPORTED for "this machine has none"). */
/* The backends in order of preference: the one table of their names (meter.c, probe.c). cpu:
 * it meters the CPU (auto takes the first CPU backend that opens, then every GPU one). */
typedef int (*meter_open_fn)(struct meter_backend **, const struct meter_opts *, struct jb_err *);
struct meter_backend_entry {
    const char *name;
    enum meter_source source;
    meter_open_fn open;
    bool cpu;
};
extern const struct meter_backend_entry meter_backend_table[];
extern const int meter_n_backends;

int backend_powercap_open(struct meter_backend **out, const struct meter_opts *o,
                          struct jb_err *err);
int backend_perf_open(struct meter_backend **out, const struct meter_opts *o, struct jb_err *err);
int backend_papi_open(struct meter_backend **out, const struct meter_opts *o, struct jb_err *err);
int backend_nvml_open(struct meter_backend **out, const struct meter_opts *o, struct jb_err *err);
int backend_estimate_open(struct meter_backend **out, const struct meter_opts *o,
                          struct jb_err *err);

/* Classifies a RAPL zone by its name file ("package-0", "core", "dram", "psys" ...). */
enum meter_domain_kind backend_kind_from_rapl_name(const char *name);

/* ---- NVML, with the library's functions injectable for tests ------------------------------- */

/* The NVML entry points joulebench uses, with NVML's own signatures (handles as void *). Return
 * values are nvmlReturn_t: 0 = success. */
struct nvml_api {
    int (*init)(void);
    int (*shutdown)(void);
    int (*device_count)(unsigned *n);
    int (*device_handle)(unsigned i, void **dev);
    int (*device_name)(void *dev, char *name, unsigned len);
    int (*total_energy_mj)(void *dev, unsigned long long *mj);
    int (*power_mw)(void *dev, unsigned *mw);
};

/* Opens the NVML backend over api (the library's table, or a test's fake). GPUs with the total
 * energy counter read it (mJ); the others integrate power (mW) over the reads by trapezoid. */
int backend_nvml_open_api(struct meter_backend **out, const struct nvml_api *api,
                          struct jb_err *err);

/* ---- instructions and cycles (PAPI perf_event), optional ---------------------------------- */

struct counters;
/* Starts counting instructions and cycles for the calling thread and what it starts later; a
 * JB_E* code with the reason where PAPI's perf_event component cannot. */
int counters_open(struct counters **out, struct jb_err *err);
/* v[0] = instructions, v[1] = cycles since counters_open; -1 each on failure. */
int counters_read(struct counters *c, long long v[2]);
void counters_close(struct counters *c); /* NULL is a no-op */

/* ---- estimate ------------------------------------------------------------------------------ */

/* P = P_idle + (TDP - P_idle) x u with P_idle = idle_frac x TDP (energy.md 1e). */
double estimate_power_w(double tdp_w, double idle_frac, double u);

/* Busy fraction of the CPUs in cpus[0..n-1] between two /proc/stat texts: 1 - (idle + iowait)
 * deltas / total deltas over those CPUs' "cpuN" lines. 0 when nothing moved. */
double estimate_utilisation(const char *stat_before, const char *stat_after, const int *cpus,
                            int n);

/* The TDP of a CPU model name from the built-in table, or 0. */
double estimate_tdp_lookup(const char *model_name);

#endif /* METER_IMPL_H */
