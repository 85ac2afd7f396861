/* test-energy.c: the meter API, its backends and carbon arithmetic.
 *
 * powercap tests build a synthetic RAPL tree: libpowercap reads the compiled-in path
 * /sys/class/powercap (no override), so each such test (Criterion runs every test in its own
 * process) enters a private mount namespace, mounts a tmpfs over /sys/class and runs a writer
 * thread that rewrites each zone's energy_uj in place every millisecond as watts x elapsed time,
 * space-padded (libpowercap parses with base 0: a leading zero would mean octal). Expected
 * energies are watts x the meter's own elapsed time, so they come from the writer's rate, not
 * from the code under test. Without CAP_SYS_ADMIN the tests skip with the reason. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"
#include "tests/jb-test.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct meter_backend_status *find(const struct meter_backend_status *st, int n,
                                               const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(st[i].name, name) == 0) return &st[i];
    return NULL;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- arithmetic ----------------------------------------------------------------------------- */

Test(meter, counter_wrap_adds_max_range) {
    /* range 30,000,000 µJ: from 29,000,000 up to 30,000,000 is 1,000,000, the step from
     * 30,000,000 to 0 is 1 more, then 0 to 500,000: 1,500,001 µJ */
    cr_assert_eq(meter_counter_delta(29000000, 500000, 30000000), 1500001);
    cr_assert_eq(meter_counter_delta(100, 250, 30000000), 150);
    cr_assert_eq(meter_counter_delta(7, 7, 30000000), 0);
    /* range 0: a 64-bit counter, whose unsigned difference survives its own wrap */
    cr_assert_eq(meter_counter_delta(UINT64_MAX - 1, 3, 0), 5);
}

Test(carbon, one_kwh_at_the_world_default_is_481_g) {
    struct meter_carbon c;
    cr_assert_eq(meter_carbon_lookup(NULL, &c, NULL), 0);
    cr_assert_str_eq(c.region, "WORLD");
    cr_assert_float_eq(c.g_per_kwh, 481.0, 1e-12);
    cr_assert(strstr(c.source, "Ember") && strstr(c.source, "2023"), "%s", c.source);
    cr_assert_eq(c.year, 2023);
    /* 3.6e6 J = 1 kWh -> 481 g at PUE 1 */
    cr_assert_float_eq(meter_carbon_co2e_g(&c, 3.6e6, 0), 481.0, 1e-9);
    /* PUE 1.2: 481 x 1.2 = 577.2 g; embodied 100 g/h over 1800 s: +50 g = 627.2 g */
    c.pue = 1.2;
    c.embodied_g_per_h = 100;
    cr_assert_float_eq(meter_carbon_co2e_g(&c, 3.6e6, 1800), 627.2, 1e-9);
    /* 1800 J = 0.5 Wh = 5e-4 kWh in France (56 g/kWh): 0.028 g */
    cr_assert_eq(meter_carbon_lookup("fr", &c, NULL), 0);
    cr_assert_float_eq(meter_carbon_co2e_g(&c, 1800, 0), 0.028, 1e-12);
}

Test(carbon, unknown_region_lists_the_known_codes) {
    struct meter_carbon c;
    struct jb_err err = {0};
    cr_assert_eq(meter_carbon_lookup("XX", &c, &err), JB_ENOTFOUND);
    cr_assert(strstr(err.msg, "'XX'") && strstr(err.msg, "WORLD") &&
                  strstr(err.msg, "--grid-g-per-kwh"),
              "%s", err.msg);
}

Test(carbon, table_has_the_design_values) {
    /* energy.md 3: Ember 2023 via Our World in Data */
    static const struct {
        const char *r;
        double g;
    } want[] = {{"WORLD", 481}, {"FR", 56},  {"DE", 381}, {"NO", 30},  {"FI", 79},
                {"DK", 152},    {"AT", 111}, {"IN", 713}, {"CN", 582}, {"AU", 549},
                {"CA", 170},    {"BR", 98},  {"IE", 291}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct meter_carbon c;
        cr_assert_eq(meter_carbon_lookup(want[i].r, &c, NULL), 0, "%s", want[i].r);
        cr_assert_float_eq(c.g_per_kwh, want[i].g, 1e-12, "%s", want[i].r);
    }
    cr_assert_eq(meter_carbon_n_regions(), 13);
}

/* ---- estimate ------------------------------------------------------------------------------- */

Test(estimate, power_model_is_idle_plus_dynamic_share) {
    /* TDP 100 W, idle 0.3 x 100 = 30 W; at u = 0.5: 30 + 70 x 0.5 = 65 W */
    cr_assert_float_eq(estimate_power_w(100, 0.3, 0.5), 65.0, 1e-12);
    cr_assert_float_eq(estimate_power_w(100, 0.3, 0.0), 30.0, 1e-12);
    cr_assert_float_eq(estimate_power_w(100, 0.3, 1.0), 100.0, 1e-12);
    cr_assert_float_eq(estimate_power_w(100, 0.3, 7.0), 100.0, 1e-12); /* clamped */
}

Test(estimate, utilisation_counts_only_the_allowed_cpus) {
    const char *a = "cpu  1 1 1 1 0 0 0 0 0 0\n"
                    "cpu0 100 0 0 100 0 0 0 0 0 0\n"
                    "cpu1 100 0 0 100 0 0 0 0 0 0\n";
    /* cpu0: +50 user +10 system +30 idle +10 iowait: busy 60 of 100;
     * cpu1: +100 idle: busy 0 of 100 */
    const char *b = "cpu  9 9 9 9 0 0 0 0 0 0\n"
                    "cpu0 150 0 10 130 10 0 0 0 0 0\n"
                    "cpu1 100 0 0 200 0 0 0 0 0 0\n";
    int c0[] = {0}, c01[] = {0, 1}, c1[] = {1};
    cr_assert_float_eq(estimate_utilisation(a, b, c0, 1), 0.6, 1e-12);
    cr_assert_float_eq(estimate_utilisation(a, b, c01, 2), 0.3, 1e-12);
    cr_assert_float_eq(estimate_utilisation(a, b, c1, 1), 0.0, 1e-12);
}

Test(estimate, is_labelled_estimated_with_its_model) {
    struct meter *m = NULL;
    struct jb_err err = {0};
    struct meter_opts o = {.backend = "estimate", .tdp_w = 200, .no_gpu = true};
    cr_assert_eq(meter_open(&m, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(meter_source(m), METER_SOURCE_ESTIMATED);
    cr_assert_str_eq(meter_source_name(meter_source(m)), "estimated");
    cr_assert_not_null(meter_model(m));
    const char *model = meter_model(m);
    cr_assert(strstr(model, "estimated:tdp-util") && strstr(model, "TDP = 200 W") &&
                  strstr(model, "--tdp-w"),
              "%s", meter_model(m));
    cr_assert_eq(meter_n_domains(m), 1);
    cr_assert_eq(meter_domain_get(m, 0)->source, METER_SOURCE_ESTIMATED);
    cr_assert(meter_domain_get(m, 0)->in_total);
    meter_close(m);
}

Test(meter, estimate_is_always_available_and_labelled_estimated) {
    struct meter_backend_status st[METER_MAX_BACKENDS];
    char *dir = jb_test_tmpdir();
    int n = meter_backends_probe(st, METER_MAX_BACKENDS, dir);
    const struct meter_backend_status *e = find(st, n, "estimate");
    cr_assert_not_null(e);
    cr_assert(e->available);
    cr_assert_eq(e->source, METER_SOURCE_ESTIMATED);
    for (int i = 0; i < n; i++)
        if (strcmp(st[i].name, "estimate") != 0) cr_assert_eq(st[i].source, METER_SOURCE_MEASURED);
    jb_test_rmtree(dir);
    free(dir);
}

Test(meter, empty_sysfs_explains_why_the_perf_pmu_is_missing) {
    struct meter_backend_status st[METER_MAX_BACKENDS];
    char *dir = jb_test_tmpdir();
    int n = meter_backends_probe(st, METER_MAX_BACKENDS, dir);
    const struct meter_backend_status *perf = find(st, n, "perf");
    cr_assert_not(perf->available);
    cr_assert(strstr(perf->detail, "no 'power' PMU"), "%s", perf->detail);
    jb_test_rmtree(dir);
    free(dir);
}

Test(meter, probe_respects_the_output_capacity) {
    struct meter_backend_status st[2];
    cr_assert_eq(meter_backends_probe(st, 2, "/nonexistent"), 2);
    cr_assert_str_eq(st[0].name, "powercap");
    cr_assert_str_eq(st[1].name, "perf");
}

Test(meter, unknown_backend_is_an_error_naming_the_known_ones) {
    struct meter *m = NULL;
    struct jb_err err = {0};
    struct meter_opts o = {.backend = "rapl-magic"};
    cr_assert_eq(meter_open(&m, &o, &err), JB_EINVAL);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "rapl-magic") && strstr(err.msg, "powercap"), "%s", err.msg);
}

/* ---- NVML through an injected function table ------------------------------------------------- */

/* Two GPUs: gpu0 has the total-energy counter (mJ, set by the test), gpu1 only power (250 W). */
static unsigned long long fake_gpu0_mj;
static int fake_init(void) { return 0; }
static int fake_shutdown(void) { return 0; }
static int fake_count(unsigned *n) { *n = 2; return 0; }
static int fake_handle(unsigned i, void **dev) { *dev = (void *)(uintptr_t)(i + 1); return 0; }
static int fake_name(void *dev, char *name, unsigned len) {
    snprintf(name, len, "Fake GPU %d", (int)(uintptr_t)dev);
    return 0;
}
static int fake_energy(void *dev, unsigned long long *mj) {
    if ((uintptr_t)dev != 1) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *mj = fake_gpu0_mj;
    return 0;
}
static int fake_power(void *dev, unsigned *mw) {
    *mw = (uintptr_t)dev == 2 ? 250000 : 100000;
    return 0;
}

Test(nvml, energy_counter_and_integrated_power_through_an_injected_table) {
    struct nvml_api api = {fake_init, fake_shutdown, fake_count, fake_handle,
                           fake_name, fake_energy,   fake_power};
    struct meter_backend *b = NULL;
    struct jb_err err = {0};
    fake_gpu0_mj = 1000000;
    cr_assert_eq(backend_nvml_open_api(&b, &api, &err), 0, "%s", err.msg);
    cr_assert_eq(b->n, 2);
    cr_assert_str_eq(b->dom[0].name, "gpu0");
    cr_assert_eq(b->dom[0].kind, METER_DOMAIN_GPU);
    cr_assert_float_eq(b->dom[0].scale_j, 1e-3, 1e-15); /* mJ */
    cr_assert_float_eq(b->dom[1].scale_j, 1e-6, 1e-15); /* integrated µJ */
    cr_assert(strstr(b->model, "nvml-power-integrated"), "%s", b->model);
    uint64_t raw0[2], raw1[2];
    double t0 = mono_s();
    cr_assert_eq(b->read(b, raw0, t0), 0);
    fake_gpu0_mj += 1234;
    cr_assert_eq(b->read(b, raw1, t0 + 0.5), 0); /* the meter's clock says 0.5 s later */
    cr_assert_eq(raw1[0] - raw0[0], 1234); /* mJ, straight from the counter */
    /* constant 250 W over 0.5 s by trapezoid: 125 J = 125,000,000 µJ (+-1 for truncation) */
    long long uj = (long long)(raw1[1] - raw0[1]);
    cr_assert(llabs(uj - 125000000LL) <= 1, "%lld µJ", uj);
    b->close(b);
}

static int fake_count0(unsigned *n) { *n = 0; return 0; }

Test(nvml, no_gpu_is_unavailable_with_a_reason) {
    struct nvml_api api = {fake_init, fake_shutdown, fake_count0, fake_handle,
                           fake_name, fake_energy,   fake_power};
    struct meter_backend *b = NULL;
    struct jb_err err = {0};
    cr_assert_eq(backend_nvml_open_api(&b, &api, &err), JB_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "no NVIDIA GPU"), "%s", err.msg);
}

/* ---- the synthetic powercap tree ------------------------------------------------------------ */

#define PC "/sys/class/powercap"
#define MAX_ZONES 8

struct zone {
    char dir[160];
    long long range_uj;
    double base_uj;  /* energy at seg_t */
    double seg_t;    /* when the current rate began (CLOCK_MONOTONIC s) */
    double watts;    /* the current rate */
    int fd;
};

struct fake {
    struct zone z[MAX_ZONES];
    int n;
    pthread_t writer;
    pthread_mutex_t mu; /* one writer at a time, so energy_uj only ever grows */
    atomic_bool stop;
};

/* Writes the zone's energy at time now: base + watts x (now - seg_t), exactly the schedule. */
static void write_uj(struct zone *z, double now) {
    long long v = (long long)(z->base_uj + z->watts * (now - z->seg_t) * 1e6);
    if (z->range_uj) v %= z->range_uj + 1; /* the counter runs 0..range, then back to 0 */
    char buf[24];
    snprintf(buf, sizeof buf, "%-20lld\n", v); /* no leading zeros: libpowercap parses base 0 */
    cr_assert_eq(pwrite(z->fd, buf, 21, 0), 21);
}

/* Brings every energy_uj up to now. The writer thread does this every millisecond; a test does
 * it just before a mark, so that the mark reads the schedule's value, not one a late writer
 * tick left behind. */
static void fake_sync(struct fake *f) {
    pthread_mutex_lock(&f->mu);
    double now = mono_s();
    for (int i = 0; i < f->n; i++) write_uj(&f->z[i], now);
    pthread_mutex_unlock(&f->mu);
}

/* From now on, z advances at watts. */
static void fake_rate(struct fake *f, struct zone *z, double watts) {
    pthread_mutex_lock(&f->mu);
    double now = mono_s();
    z->base_uj += z->watts * (now - z->seg_t) * 1e6;
    z->seg_t = now;
    z->watts = watts;
    pthread_mutex_unlock(&f->mu);
}

static void *writer_main(void *arg) {
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
        fake_sync(f);
    }
    return NULL;
}

static void put(const char *dir, const char *file, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    jb_test_write_file(path, text, strlen(text));
}

/* Enters a private mount namespace with a tmpfs over /sys/class; skips the test when that is not
 * permitted. */
static void fake_namespace_or_skip(void) {
    if (unshare(CLONE_NEWNS) != 0)
        cr_skip_test("cannot build the synthetic powercap tree: unshare(CLONE_NEWNS): %s (needs "
                     "root or CAP_SYS_ADMIN)", strerror(errno));
    cr_assert_eq(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
    if (mount("jbfake", "/sys/class", "tmpfs", 0, "size=1m") != 0)
        cr_skip_test("cannot mount a tmpfs over /sys/class: %s", strerror(errno));
    cr_assert_eq(mkdir(PC, 0755), 0);
    cr_assert_eq(mkdir(PC "/intel-rapl", 0755), 0);
    put(PC "/intel-rapl", "enabled", "1\n");
}

/* Adds zone intel-rapl:pkg (sub < 0) or intel-rapl:pkg:sub named name, advancing at watts. */
static struct zone *fake_zone(struct fake *f, int pkg, int sub, const char *name, double watts,
                              long long range_uj) {
    struct zone *z = &f->z[f->n++];
    if (sub < 0)
        snprintf(z->dir, sizeof z->dir, PC "/intel-rapl/intel-rapl:%d", pkg);
    else
        snprintf(z->dir, sizeof z->dir, PC "/intel-rapl/intel-rapl:%d/intel-rapl:%d:%d", pkg, pkg,
                 sub);
    cr_assert_eq(mkdir(z->dir, 0755), 0, "%s", z->dir);
    char text[64];
    snprintf(text, sizeof text, "%s\n", name);
    put(z->dir, "name", text);
    snprintf(text, sizeof text, "%lld\n", range_uj);
    put(z->dir, "max_energy_range_uj", text);
    put(z->dir, "enabled", "1\n");
    char path[200];
    snprintf(path, sizeof path, "%s/energy_uj", z->dir);
    z->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0444);
    cr_assert(z->fd >= 0);
    z->watts = watts;
    z->range_uj = range_uj;
    /* start mid-range so that a small range wraps early */
    z->base_uj = range_uj ? (double)range_uj * 0.6 : 123456789.0;
    z->seg_t = mono_s();
    write_uj(z, z->seg_t);
    return z;
}

static void fake_start(struct fake *f) {
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->stop, false);
    cr_assert_eq(pthread_create(&f->writer, NULL, writer_main, f), 0);
    /* real-time priority (we are root here) keeps the writer on time on a busy machine; if it
     * is refused, the writer is merely a little later */
    struct sched_param sp = {.sched_priority = 1};
    pthread_setschedparam(f->writer, SCHED_FIFO, &sp);
}

static void fake_stop(struct fake *f) {
    atomic_store(&f->stop, true);
    pthread_join(f->writer, NULL);
    for (int i = 0; i < f->n; i++) close(f->z[i].fd);
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#define RANGE_UJ 262143328850LL /* a typical max_energy_range_uj */

/* Runs `joulebench measure ... -- sleep 2` in the namespace; returns its JSON. */
static json_t *measure_json(const char *extra) {
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' measure --idle-s 0 --no-gpu %s --json '%s/m.json' -- sleep 2",
                jb_test_bin(), extra, dir);
    cr_assert_eq(p.status, 0, "status %d\n%s%s", p.status, p.out, p.err);
    char path[256];
    snprintf(path, sizeof path, "%s/m.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert_not_null(j, "%s: %s", path, je.text);
    cr_assert(strstr(p.err, "measured") && strstr(p.err, "sampler overhead"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
    return j;
}

static double jnum(const json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_number(v), "field %s", k);
    return json_number_value(v);
}

Test(powercap, measure_sleep_2_reports_the_known_energy_within_1_percent) {
    struct fake f = {0};
    fake_namespace_or_skip();
    fake_zone(&f, 0, -1, "package-0", 25.0, RANGE_UJ);
    fake_zone(&f, 0, 0, "core", 15.0, RANGE_UJ);
    fake_start(&f);
    json_t *j = measure_json("");
    fake_stop(&f);
    double t = jnum(j, "time_s"), e = jnum(j, "energy_j");
    /* the writer adds 25 W to package-0: 25 J per second of the meter's own clock; core is
     * inside package-0 and must not be added */
    double want = 25.0 * t;
    cr_assert(fabs(e - want) <= 0.01 * want, "energy %.4f J, want %.4f J (25 W x %.4f s)", e,
              want, t);
    cr_assert(t >= 2.0 && t < 3.0, "time %.3f s", t);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "measured");
    cr_assert_str_eq(json_string_value(json_object_get(j, "backend")), "powercap");
    json_t *d = json_object_get(j, "domains");
    cr_assert_eq(json_array_size(d), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "name")), "package-0");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 1), "name")),
                     "package-0/core");
    double core = jnum(json_array_get(d, 1), "energy_j");
    cr_assert(fabs(core - 15.0 * t) <= 0.01 * 15.0 * t, "core %.4f J", core);
    cr_assert(!json_is_true(json_object_get(json_array_get(d, 1), "in_total")));
    /* co2e: energy_j / 3.6e6 x 481 g */
    cr_assert_float_eq(jnum(j, "co2e_g"), e / 3.6e6 * 481.0, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "carbon"), "region")),
                     "WORLD");
    double ov = jnum(j, "sampler_overhead");
    cr_assert(ov >= 0 && ov < 0.005, "sampler overhead %.5f", ov);
    fprintf(stderr, "measure -- sleep 2: %.4f J over %.4f s, want %.4f J: error %+.3f%%, "
                    "sampler overhead %.4f%%\n",
            e, t, want, 100 * (e - want) / want, 100 * ov);
    json_decref(j);
}

Test(powercap, wraparound_during_the_run_is_counted) {
    struct fake f = {0};
    fake_namespace_or_skip();
    /* range 30 J, starting at 18 J: 2 s at 25 W = 50 J wraps at least once */
    fake_zone(&f, 0, -1, "package-0", 25.0, 30000000LL);
    fake_start(&f);
    json_t *j = measure_json("--meter powercap");
    fake_stop(&f);
    double t = jnum(j, "time_s"), e = jnum(j, "energy_j"), want = 25.0 * t;
    cr_assert(e > 30.0, "%.3f J cannot exceed the 30 J range without counting the wrap", e);
    /* the period is shortened so that no wrap can be missed up to 500 W: 30 J / (2 x 500 W) */
    cr_assert_eq(jnum(j, "interval_ms"), 30);
    cr_assert(fabs(e - want) <= 0.01 * want, "energy %.4f J, want %.4f J", e, want);
    fprintf(stderr, "wrap: %.4f J over %.4f s across a 30 J range, want %.4f J: error %+.3f%%\n",
            e, t, want, 100 * (e - want) / want);
    json_decref(j);
}

Test(powercap, unreadable_energy_uj_gives_the_fix) {
    struct fake f = {0};
    fake_namespace_or_skip();
    struct zone *z = fake_zone(&f, 0, -1, "package-0", 25.0, RANGE_UJ);
    char path[200];
    snprintf(path, sizeof path, "%s/energy_uj", z->dir);
    cr_assert_eq(chmod(path, 0400), 0); /* as the kernel sets it since CVE-2020-8694 */
    cr_assert_eq(chown(path, 1, 1), 0); /* owned by another user ... */
    struct jb_test_proc p;
    jb_test_run(&p, "command -v setpriv");
    if (p.status != 0) cr_skip_test("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE");
    jb_test_proc_free(&p);
    /* ... and root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH cannot read it: setpriv
     * drops them from the bounding set, so the exec'd joulebench never has them */
    const char *drop = "setpriv --bounding-set -dac_override,-dac_read_search";
    jb_test_run(&p, "%s '%s' meters", drop, jb_test_bin());
    cr_assert_eq(p.status, 0);
    cr_assert(strstr(p.out, "readable by root only") && strstr(p.out, "chmod a+r") &&
                  strstr(p.out, "udev"),
              "%s", p.out);
    jb_test_proc_free(&p);
    /* forced: an error with the fix, exit status 2 */
    jb_test_run(&p, "%s '%s' measure --meter powercap --idle-s 0 -- true", drop, jb_test_bin());
    cr_assert_eq(p.status, 2, "%s", p.err);
    cr_assert(strstr(p.err, "readable by root only") && strstr(p.err, "chmod a+r"), "%s", p.err);
    jb_test_proc_free(&p);
    /* automatic: the fix as a warning, then the next backend, labelled */
    jb_test_run(&p, "%s '%s' measure --idle-s 0 --no-gpu -- true", drop, jb_test_bin());
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.err, "warning: powercap:") && strstr(p.err, "readable by root only"), "%s",
              p.err);
    cr_assert(strstr(p.err, "ESTIMATED"), "%s", p.err);
    jb_test_proc_free(&p);
    close(z->fd);
}

/* The meter's total over its counted domains against the writer's rates. */
static void check_total(struct fake *f, double total_w, const char *what) {
    struct meter *m = NULL;
    struct jb_err err = {0};
    struct meter_opts o = {.backend = "powercap"};
    fake_start(f);
    cr_assert_eq(meter_open(&m, &o, &err), 0, "%s", err.msg);
    fake_sync(f); /* start and stop read the writer's schedule, not a late tick */
    cr_assert_eq(meter_start(m, &err), 0, "%s", err.msg);
    sleep_s(0.5);
    fake_sync(f);
    cr_assert_eq(meter_stop(m, &err), 0, "%s", err.msg);
    fake_stop(f);
    struct meter_result r;
    meter_result_get(m, &r, NULL, NULL);
    double want = total_w * r.time_s;
    cr_assert(fabs(r.energy_j - want) <= 0.01 * want, "%s: %.4f J, want %.4f J", what, r.energy_j,
              want);
    cr_assert_eq(r.source, METER_SOURCE_MEASURED);
    meter_close(m);
}

Test(powercap, nested_domains_are_not_added_twice) {
    struct fake f = {0};
    fake_namespace_or_skip();
    fake_zone(&f, 0, -1, "package-0", 20.0, RANGE_UJ);
    fake_zone(&f, 0, 0, "core", 12.0, RANGE_UJ);   /* inside package-0 */
    fake_zone(&f, 0, 1, "uncore", 3.0, RANGE_UJ);  /* inside package-0 */
    fake_zone(&f, 0, 2, "dram", 5.0, RANGE_UJ);    /* beside it */
    fake_zone(&f, 1, -1, "package-1", 10.0, RANGE_UJ);
    /* packages + dram: 20 + 5 + 10 = 35 W */
    check_total(&f, 35.0, "packages + dram");
}

Test(powercap, psys_replaces_the_packages_in_the_total) {
    struct fake f = {0};
    fake_namespace_or_skip();
    fake_zone(&f, 0, -1, "package-0", 20.0, RANGE_UJ);
    fake_zone(&f, 0, 0, "core", 12.0, RANGE_UJ);
    fake_zone(&f, 0, 1, "dram", 5.0, RANGE_UJ);
    fake_zone(&f, 1, -1, "psys", 40.0, RANGE_UJ); /* contains package-0 and dram */
    check_total(&f, 40.0, "psys");
}

Test(powercap, phases_marked_at_known_times_get_their_shares) {
    struct fake f = {0};
    struct meter *m = NULL;
    struct jb_err err = {0};
    fake_namespace_or_skip();
    struct zone *z = fake_zone(&f, 0, -1, "package-0", 10.0, RANGE_UJ);
    fake_start(&f);
    struct meter_opts o = {.backend = "powercap"};
    cr_assert_eq(meter_open(&m, &o, &err), 0, "%s", err.msg);
    fake_sync(&f);
    cr_assert_eq(meter_start(m, &err), 0, "%s", err.msg);
    /* vision at 10 W for 0.5 s, prefill at 40 W for 0.5 s, decode at 20 W for 1.0 s: 5 + 20 +
     * 20 J, shares 1/9, 4/9, 4/9 of the marked energy */
    static const struct {
        const char *label;
        double w, s;
    } ph[] = {{"vision", 10, 0.5}, {"prefill", 40, 0.5}, {"decode", 20, 1.0}};
    for (int i = 0; i < 3; i++) {
        fake_rate(&f, z, ph[i].w);
        fake_sync(&f);
        cr_assert_eq(meter_mark(m, ph[i].label, 7, &err), i + 1, "%s", err.msg);
        sleep_s(ph[i].s);
    }
    fake_sync(&f);
    cr_assert_eq(meter_mark(m, NULL, -1, &err), 4);
    cr_assert_eq(meter_n_phases(m), 4); /* readable before stop */
    /* the trace streams: what is there now, then the rest after stop, without a gap */
    static struct meter_point pt[256];
    size_t n1 = meter_trace_read(m, 0, pt, NULL, 256);
    cr_assert(n1 >= 20, "%zu points after 2 s at 100 ms", n1); /* 5 marks + ~20 ticks */
    fake_sync(&f);
    cr_assert_eq(meter_stop(m, &err), 0, "%s", err.msg);
    fake_stop(&f);
    cr_assert_eq(meter_n_phases(m), 5);
    size_t n2 = meter_trace_read(m, n1, pt + n1, NULL, 256 - n1);
    cr_assert(n2 >= 1);
    for (size_t i = 1; i < n1 + n2; i++) {
        cr_assert(pt[i].t_s >= pt[i - 1].t_s);
        cr_assert(pt[i].energy_j >= pt[i - 1].energy_j);
    }
    double e[3], sum = 0, dur[3], wsum = 0;
    for (int i = 0; i < 3; i++) {
        struct meter_phase p;
        cr_assert_eq(meter_phase_get(m, i + 1, &p, NULL), 0);
        cr_assert_str_eq(p.label, ph[i].label);
        cr_assert_eq(p.sample_id, 7);
        /* attribution bound: 1 ms RAPL granularity at each end x the phase's power */
        cr_assert(fabs(p.bound_j - 2 * 1e-3 * ph[i].w) <= 0.05 * 2 * 1e-3 * ph[i].w, "%s: %.5f J",
                  ph[i].label, p.bound_j);
        e[i] = p.energy_j;
        sum += e[i];
        dur[i] = p.t_end_s - p.t_start_s;
        wsum += ph[i].w * dur[i];
    }
    /* the known share of each phase: its rate x the time it lasted, over the sum of those */
    for (int i = 0; i < 3; i++) {
        double want = ph[i].w * dur[i] / wsum, got = e[i] / sum;
        cr_assert(fabs(got - want) <= 0.02 * want, "%s: share %.4f, want %.4f", ph[i].label, got,
                  want);
        fprintf(stderr, "phase %-7s %.3f s: %.4f J, share %.4f (want %.4f, nominal %.4f)\n",
                ph[i].label, dur[i], e[i], got, want, ph[i].w * ph[i].s / 45.0);
    }
    cr_assert_float_eq(meter_sample_energy_j(m, 7), sum, 1e-9);
    /* phases tile the run: their sum is the total */
    struct meter_result r;
    meter_result_get(m, &r, NULL, NULL);
    double all = 0;
    for (int i = 0; i < meter_n_phases(m); i++) {
        struct meter_phase p;
        meter_phase_get(m, i, &p, NULL);
        all += p.energy_j;
    }
    cr_assert_float_eq(all, r.energy_j, 1e-9 * r.energy_j);
    meter_close(m);
}

Test(powercap, idle_baseline_is_subtracted) {
    struct fake f = {0};
    struct meter *m = NULL;
    struct jb_err err = {0};
    fake_namespace_or_skip();
    struct zone *z = fake_zone(&f, 0, -1, "package-0", 8.0, RANGE_UJ);
    fake_start(&f);
    struct meter_opts o = {.backend = "powercap"};
    cr_assert_eq(meter_open(&m, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(meter_idle_measure(m, 0.5, &err), 0, "%s", err.msg);
    fake_rate(&f, z, 30.0);
    fake_sync(&f);
    cr_assert_eq(meter_start(m, &err), 0, "%s", err.msg);
    sleep_s(0.5);
    fake_sync(&f);
    cr_assert_eq(meter_stop(m, &err), 0, "%s", err.msg);
    fake_stop(&f);
    struct meter_result r;
    meter_result_get(m, &r, NULL, NULL);
    /* idle 8 W (median of the windows), run 30 W: above idle = (30 - 8) W x time */
    cr_assert(fabs(r.idle_power_w - 8.0) <= 0.08, "idle %.4f W", r.idle_power_w);
    double want = 22.0 * r.time_s;
    cr_assert(fabs(r.energy_above_idle_j - want) <= 0.02 * want, "above idle %.4f J, want %.4f",
              r.energy_above_idle_j, want);
    cr_assert(r.power_w_peak >= r.power_w_mean);
    /* the trace: points in time order, the last one's energy is the total */
    struct meter_point pt[64];
    size_t n = meter_trace_read(m, 0, pt, NULL, 64);
    cr_assert(n >= 3 && (long)n == r.n_points);
    for (size_t i = 1; i < n; i++) cr_assert(pt[i].t_s >= pt[i - 1].t_s);
    cr_assert_float_eq(pt[n - 1].energy_j, r.energy_j, 1e-9);
    meter_close(m);
}

Test(powercap, fake_powercap_script_feeds_meters) {
    struct jb_test_proc p;
    jb_test_run(&p, "unshare -m --propagation private true");
    if (p.status != 0) cr_skip_test("unshare -m is not permitted here: %s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "unshare -m --propagation private sh '%s/tests/fake-powercap.sh' --watts 25 "
                    "-- '%s' meters",
                getenv("JB_SRCDIR") ? getenv("JB_SRCDIR") : ".", jb_test_bin());
    cr_assert_eq(p.status, 0, "%s%s", p.out, p.err);
    cr_assert(strstr(p.out, "powercap  yes") && strstr(p.out, "package-0 (package)") &&
                  strstr(p.out, "package-0/core (core)"),
              "%s", p.out);
    jb_test_proc_free(&p);
}

/* ---- joulebench measure on this machine, through the estimate ------------------------------- */

Test(measure, estimate_is_labelled_in_text_and_json) {
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' measure --meter estimate --tdp-w 120 --idle-s 0 --json '%s/m.json' -- "
                    "sleep 1",
                jb_test_bin(), dir);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.err, "*** ESTIMATED") && strstr(p.err, "estimated:tdp-util") &&
                  strstr(p.err, "TDP = 120 W"),
              "%s", p.err);
    /* every energy and power line carries '~' and 'estimated' */
    for (const char *l = p.err; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 511 ? len : 511), l);
        if (!strstr(buf, "***") && (strstr(buf, " J ") || strstr(buf, " W ")))
            cr_assert(strchr(buf, '~') && strstr(buf, "estimated"), "unlabelled: %s", buf);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/m.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "estimated");
    cr_assert_str_eq(json_string_value(json_object_get(j, "backend")), "estimate");
    cr_assert(strstr(json_string_value(json_object_get(j, "model")), "P_idle"));
    json_t *d0 = json_array_get(json_object_get(j, "domains"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(d0, "source")), "estimated");
    /* between idle (0.3 x 120 = 36 W) and TDP (120 W) */
    double w = jnum(j, "power_w_mean");
    cr_assert(w >= 36.0 - 1e-3 && w <= 120.0 + 1e-3, "%.6f W", w); /* +-1 µJ truncation */
    json_decref(j);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}

Test(measure, returns_the_exit_status_of_the_command) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' measure --meter estimate --idle-s 0 -- sh -c 'exit 3'", jb_test_bin());
    cr_assert_eq(p.status, 3, "%s", p.err);
    cr_assert(strstr(p.err, "exit status 3"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' measure --meter estimate --idle-s 0 -- /nonexistent/cmd", jb_test_bin());
    cr_assert_eq(p.status, 127, "%s", p.err);
    cr_assert(strstr(p.err, "cannot run '/nonexistent/cmd'"), "%s", p.err);
    jb_test_proc_free(&p);
}

Test(measure, usage_errors_exit_2) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' measure", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "no command to run"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' measure --pue 0.5 -- true", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "--pue"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' measure --region XX --idle-s 0 -- true", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "'XX'"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' measure --meter nosuch --idle-s 0 -- true", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "unknown meter 'nosuch'"), "%s", p.err);
    jb_test_proc_free(&p);
}

Test(measure, grid_factor_and_pue_are_applied_and_named) {
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' measure --meter estimate --tdp-w 100 --idle-s 0 --region DE "
                    "--grid-g-per-kwh 250 --pue 1.5 --json '%s/m.json' -- true",
                jb_test_bin(), dir);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.err, "DE 250 g/kWh (--grid-g-per-kwh"), "%s", p.err);
    char path[256];
    snprintf(path, sizeof path, "%s/m.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    cr_assert_not_null(j);
    json_t *c = json_object_get(j, "carbon");
    cr_assert_float_eq(jnum(c, "g_per_kwh"), 250.0, 1e-12);
    cr_assert_float_eq(jnum(c, "pue"), 1.5, 1e-12);
    cr_assert(strstr(json_string_value(json_object_get(c, "source")), "--grid-g-per-kwh"));
    /* g = J / 3.6e6 x 250 x 1.5 */
    cr_assert_float_eq(jnum(j, "co2e_g"), jnum(j, "energy_j") / 3.6e6 * 250 * 1.5, 1e-12);
    json_decref(j);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}

Test(meter, instructions_are_counted_or_explained) {
    struct meter *m = NULL;
    struct jb_err err = {0};
    struct meter_opts o = {.backend = "estimate", .tdp_w = 100};
    cr_assert_eq(meter_open(&m, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(meter_start(m, &err), 0, "%s", err.msg);
    cr_assert_eq(meter_mark(m, "work", 0, &err), 1);
    volatile double x = 0;
    for (int i = 0; i < 1000000; i++) x += i; /* at least a million instructions */
    cr_assert_eq(meter_stop(m, &err), 0, "%s", err.msg);
    struct meter_phase p;
    cr_assert_eq(meter_phase_get(m, 1, &p, NULL), 0);
    const char *why = meter_counters_status(m);
    if (why) {
        cr_assert_eq(p.instructions, -1);
        cr_assert_eq(p.cycles, -1);
        cr_assert(strlen(why) > 10, "%s", why);
    } else {
        cr_assert(p.instructions >= 1000000, "%lld", p.instructions);
        cr_assert(p.cycles > 0);
    }
    meter_close(m);
}

Test(perf, a_power_pmu_without_usable_events_says_so) {
    /* a fake sysfs: the PMU's type is no real PMU, so perf_event_open refuses the event */
    char *dir = jb_test_tmpdir(), path[512];
    snprintf(path, sizeof path, "mkdir -p '%s/bus/event_source/devices/power/events'", dir);
    cr_assert_eq(system(path), 0);
    const char *pmu = "/bus/event_source/devices/power";
    static const char *const files[][2] = {
        {"type", "4000000\n"},
        {"cpumask", "0\n"},
        {"events/energy-pkg", "event=0x02\n"},
        {"events/energy-pkg.scale", "2.3283064365386962890625e-10\n"},
        {"events/energy-pkg.unit", "Joules\n"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s%s/%s", dir, pmu, files[i][0]);
        jb_test_write_file(path, files[i][1], strlen(files[i][1]));
    }
    struct meter_backend *b = NULL;
    struct jb_err err = {0};
    struct meter_opts o = {.sysfs_root = dir};
    int rc = backend_perf_open(&b, &o, &err);
    cr_assert(rc == JB_EUNSUPPORTED || rc == JB_EPERM, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "no usable energy events") || strstr(err.msg, "perf_event_paranoid"),
              "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
}

/* The one label function: what run records carry and what decides "estimated". */
Test(labels, energy_label_names_source_and_backend) {
    struct meter *m = NULL;
    struct jb_err err = {0};
    struct meter_opts o = {.backend = "estimate"};
    cr_assert_eq(meter_open(&m, &o, &err), 0, "%s", err.msg);
    char buf[64];
    cr_assert_str_eq(meter_energy_label(m, buf, sizeof buf), "estimated:tdp-util");
    cr_assert(!meter_label_is_measured(buf));
    meter_close(m);
    cr_assert(meter_label_is_measured("measured:powercap"));
    cr_assert(!meter_label_is_measured("measuredX"));
    cr_assert(!meter_label_is_measured(NULL));
}

/* `meters` and meter_open read one table: every backend `meters` lists can be asked for by
 * name, and the names are those the README gives. */
Test(labels, meters_and_open_share_the_backend_names) {
    struct meter_backend_status st[METER_MAX_BACKENDS];
    int n = meter_backends_probe(st, METER_MAX_BACKENDS, NULL);
    const char *want[] = {"powercap", "perf", "papi", "nvml", "estimate"};
    cr_assert_eq(n, 5);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(st[i].name, want[i]);
        struct meter *m = NULL;
        struct jb_err err = {0};
        struct meter_opts o = {.backend = st[i].name};
        int rc = meter_open(&m, &o, &err);
        /* an unavailable backend fails for its own reason, never as an unknown name */
        cr_assert(rc == 0 || !strstr(err.msg, "unknown"), "%s: %s", st[i].name, err.msg);
        meter_close(m);
    }
}
