/* meter.h: energy meters for joulebench. Reads the machine's energy counters (RAPL through
 * libpowercap, PAPI or the perf power PMU; NVIDIA GPUs through NVML) or, where there are none,
 * a labelled estimate; attributes energy to phases; turns joules into CO2e. Knows nothing about
 * Molmo. Design: shared/design/energy.md.
 *
 *     struct meter *m; struct meter_opts o = {0};        // best backend, 100 ms sampler
 *     if (meter_open(&m, &o, &err) < 0) return err.code;
 *     meter_idle_measure(m, 5.0, &err);                  // idle baseline before the run
 *     meter_start(m, &err); meter_mark(m, "prefill", 7, &err); ...; meter_stop(m, &err);
 *     struct meter_result r; meter_result_get(m, &r, NULL); meter_close(m);
 */
#ifndef METER_H
#define METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jb_err;
struct meter; /* opaque: backends, domains, sampler thread, trace, marks */

#define METER_MAX_BACKENDS 8
#define METER_MAX_DOMAINS 64

/* Where a figure comes from. An estimate is never presented as a measurement. */
enum meter_source {
    METER_SOURCE_MEASURED,
    METER_SOURCE_ESTIMATED,
};

/* "measured" or "estimated". */
const char *meter_source_name(enum meter_source s);

struct meter;
/* The label every record carries (energy.md §5): "measured:<backends>" ("measured:powercap",
 * "measured:powercap+nvml") or "estimated:tdp-util"; written into buf (64 bytes do), returned. */
const char *meter_energy_label(const struct meter *m, char *buf, size_t len);
/* Whether a label of meter_energy_label says measured (anything else is not a measurement). */
bool meter_label_is_measured(const char *label);

enum meter_domain_kind {
    METER_DOMAIN_PACKAGE, /* a CPU package (socket) */
    METER_DOMAIN_CORE,    /* the cores of a package: inside PACKAGE */
    METER_DOMAIN_UNCORE,  /* the integrated GPU / uncore of a package: inside PACKAGE */
    METER_DOMAIN_DRAM,    /* memory attached to a package: beside PACKAGE, not inside it */
    METER_DOMAIN_PSYS,    /* the whole SoC / platform: contains every PACKAGE */
    METER_DOMAIN_GPU,     /* a discrete GPU (NVML) */
    METER_DOMAIN_OTHER,   /* anything else a backend exposes: breakdown only */
};

/* "package", "core", "uncore", "dram", "psys", "gpu", "other". */
const char *meter_domain_kind_name(enum meter_domain_kind k);

/* ---- probing (joulebench meters) ------------------------------------------------------------- */

struct meter_backend_status {
    const char *name;         /* "powercap", "perf", "papi", "nvml", "estimate" */
    enum meter_source source; /* what its figures would be */
    bool available;
    char detail[1024];        /* the domains it found, or why it is unavailable and what to do */
};

/* Opens and closes every backend in preference order and fills out[0..max-1]; returns how many
 * were written. sysfs_root (NULL = "/sys") is used by the perf PMU backend (libpowercap always
 * reads /sys/class/powercap). Never fails: an unavailable backend is a status, not an error. */
int meter_backends_probe(struct meter_backend_status *out, int max, const char *sysfs_root);

/* ---- opening -------------------------------------------------------------------------------- */

struct meter_opts {
    const char *backend;    /* NULL or "auto": the best available; else "powercap", "perf",
                               "papi", "nvml" or "estimate" (only that one, or an error) */
    int interval_ms;        /* sampler period; 0 = 100; 10..1000; shortened where a counter
                               could wrap twice between reads at 500 W (see meter_note) */
    const char *sysfs_root; /* NULL = "/sys" (perf PMU) */
    const char *proc_root;  /* NULL = "/proc" (estimate: /proc/stat, /proc/cpuinfo) */
    double tdp_w;           /* estimate: the CPU's TDP; 0 = from the built-in table */
    bool no_gpu;            /* auto: do not add NVIDIA GPUs */
};

/* Opens the backends: with opts->backend NULL/"auto", the first CPU backend that yields a
 * domain (powercap, perf, papi, estimate) plus NVML GPUs when present; why each better backend
 * was passed over is in meter_note(). A forced backend that is unavailable is JB_EUNSUPPORTED
 * (or JB_EPERM) with the reason and the fix in err. *out is owned by the caller: meter_close. */
int meter_open(struct meter **out, const struct meter_opts *opts, struct jb_err *err);

/* Stops the sampler if it runs and releases everything. NULL is a no-op. */
void meter_close(struct meter *m);

/* The backends in use, e.g. "powercap" or "powercap+nvml"; their overall source (estimated as
 * soon as one counted domain is estimated); the estimate's model in words, or NULL. */
const char *meter_backend_name(const struct meter *m);
enum meter_source meter_source(const struct meter *m);
const char *meter_model(const struct meter *m);
int meter_interval_ms(const struct meter *m);

/* Why each backend preferred to the one in use was passed over ("powercap: ... EACCES fix"),
 * and interval changes, for stderr. code (may be NULL) gets the JB_E* code: JB_EPERM = fixable
 * permissions, JB_EINVAL = the sampler period was shortened so no counter wrap is missed. */
int meter_n_notes(const struct meter *m);
const char *meter_note(const struct meter *m, int i, int *code);

struct meter_domain {
    const char *name;         /* "package-0", "package-0/core", "psys", "gpu0" ... */
    enum meter_domain_kind kind;
    int parent;               /* index of the enclosing domain, or -1 */
    bool in_total;            /* counted in totals: psys if any, else packages + dram; + GPUs */
    enum meter_source source;
    const char *backend;      /* "powercap", "nvml" ... */
    double resolution_s;      /* counter update granularity, for attribution bounds */
};

int meter_n_domains(const struct meter *m);
const struct meter_domain *meter_domain_get(const struct meter *m, int i);

/* ---- measuring ------------------------------------------------------------------------------ */

/* Idle baseline: samples for seconds (not while started) and keeps the median power of the
 * sampler windows, in total and per domain. seconds <= 0 clears the baseline. */
int meter_idle_measure(struct meter *m, double seconds, struct jb_err *err);

/* Starts the sampler thread. Phase 0 (label "", unattributed) opens at once. */
int meter_start(struct meter *m, struct jb_err *err);

/* Reads every counter now, on the calling thread, closes the open phase and opens a new one
 * named label (free text, e.g. "vision", "prefill", "decode"; NULL or "" = unattributed) for
 * sample_id (-1 = none). Returns the index of the phase it opened (>= 1), or a JB_E* code. */
int meter_mark(struct meter *m, const char *label, long sample_id, struct jb_err *err);

/* Reads every counter, closes the open phase and stops the sampler thread. */
int meter_stop(struct meter *m, struct jb_err *err);

/* ---- results (safe to call while the sampler runs: they see what is closed so far) ---------- */

struct meter_phase {
    const char *label;     /* "" = unattributed; valid until meter_close */
    long sample_id;
    double t_start_s;      /* since meter_start */
    double t_end_s;
    double energy_j;       /* over counted domains */
    double power_w_mean;
    double bound_j;        /* attribution uncertainty: counter granularity x power, both ends */
    long long instructions; /* PAPI perf_event, where it works (meter_counters_status); else -1 */
    long long cycles;
};

/* Closed phases: those before the last mark (all of them after meter_stop). */
int meter_n_phases(const struct meter *m);

/* Phase i; domain_j (NULL, or meter_n_domains() doubles) gets the energy per domain. */
int meter_phase_get(const struct meter *m, int i, struct meter_phase *p, double *domain_j);

/* Energy (J, counted domains) of all closed phases for sample_id; 0 when there are none. */
double meter_sample_energy_j(const struct meter *m, long sample_id);

struct meter_result {
    double time_s;              /* start to stop */
    double energy_j;            /* over counted domains */
    double energy_above_idle_j; /* energy_j - idle_power_w x time_s, >= 0 */
    double idle_power_w;        /* median idle power (counted domains); 0 without baseline */
    double idle_s;              /* how long the baseline sampled; 0 = none */
    double power_w_mean;
    double power_w_peak;        /* highest sampler-window power */
    enum meter_source source;
    double sampler_cpu_s;       /* CPU time of the sampler thread */
    double sampler_overhead;    /* sampler_cpu_s / time_s */
    long n_points;              /* trace points */
    long n_read_errors;         /* counter reads that failed (the previous value was kept) */
    long long instructions;     /* start to stop, where counted; else -1 */
    long long cycles;
};

/* Instructions and cycles (optional, beside the energy): NULL when meter_start could count them
 * through PAPI's perf_event component, else why not. */
const char *meter_counters_status(const struct meter *m);

/* The whole run (after meter_stop). domain_j as in meter_phase_get; domain_idle_w likewise for
 * the per-domain idle power (either may be NULL). */
int meter_result_get(const struct meter *m, struct meter_result *r, double *domain_j,
                     double *domain_idle_w);

/* The power trace: one point per sampler tick, mark, start and stop. */
struct meter_point {
    double t_s;       /* since meter_start */
    double power_w;   /* counted domains, since the previous point; 0 at the first */
    double energy_j;  /* counted domains, since meter_start */
};

/* Copies up to max points starting at index from into out; returns how many. Stream a trace
 * while the run goes on by calling it again with from += returned. domain_w (NULL, or
 * max x meter_n_domains() doubles, row-major) gets the power per domain. */
size_t meter_trace_read(const struct meter *m, size_t from, struct meter_point *out,
                        double *domain_w, size_t max);

/* ---- arithmetic (exposed for tests) --------------------------------------------------------- */

/* Counter increase from prev to cur for a counter that wraps to 0 after reaching range
 * (max_energy_range_uj); range 0 = a 64-bit counter that does not wrap. One wrap at most. */
uint64_t meter_counter_delta(uint64_t prev, uint64_t cur, uint64_t range);

/* ---- carbon --------------------------------------------------------------------------------- */

struct meter_carbon {
    char region[16];       /* "WORLD", "FR", ... or "custom" */
    double g_per_kwh;      /* grid carbon intensity, g CO2e per kWh */
    char source[160];      /* where the figure is from, with its year */
    int year;
    double pue;            /* power usage effectiveness, >= 1; 1 for a local machine */
    double embodied_g_per_h; /* embodied emissions per hour of machine time; 0 = off */
};

/* Fills c from the built-in table (energy/carbon-intensity.csv); region NULL = "WORLD".
 * Unknown region: JB_ENOTFOUND naming the known codes. pue is set to 1, embodied to 0. */
int meter_carbon_lookup(const char *region, struct meter_carbon *c, struct jb_err *err);

/* Table access for listings: the number of regions, and row i. */
int meter_carbon_n_regions(void);
int meter_carbon_region(int i, struct meter_carbon *c);

/* g CO2e = kWh x g_per_kwh x pue + embodied_g_per_h x hours; kWh = J / 3.6e6. */
double meter_carbon_co2e_g(const struct meter_carbon *c, double energy_j, double time_s);

#endif /* METER_H */
