/* meter.c: opening the backends, the sampler thread, phase marks, the trace and the results.
 * Every reading goes through read_locked(): raw counters, wrap-safe deltas, joules accumulated
 * per domain. Points (ticks, marks, start, stop) keep the accumulated joules, so any energy is a
 * difference of two points. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BACKENDS 4
#define MAX_NOTES 8

enum point_kind { POINT_TICK, POINT_MARK };

struct mark {
    char *label;
    long sample_id;
    size_t point;         /* index of its trace point */
    long long counts[2];  /* instructions, cycles; -1 = not counted */
};

struct note {
    int code;
    char msg[JB_ERR_MSG_MAX];
};

struct meter {
    pthread_mutex_t mu;
    struct meter_backend *be[MAX_BACKENDS];
    int n_be;
    int n_dom;
    struct meter_domain dom[METER_MAX_DOMAINS];
    int dom_be[METER_MAX_DOMAINS];  /* which backend */
    int dom_idx[METER_MAX_DOMAINS]; /* which of its domains */
    char backend_name[64];
    char model[512];
    enum meter_source source;
    struct note notes[MAX_NOTES];
    int n_notes;
    int interval_ms;

    /* counters, under mu */
    uint64_t raw[METER_MAX_DOMAINS];
    double acc_j[METER_MAX_DOMAINS];
    long n_read_errors;

    /* trace, under mu: n_pts points of t_ns[] and acc[] (n_dom doubles each) */
    uint64_t t0_ns;
    size_t n_pts, cap_pts;
    uint64_t *pt_t_ns;
    unsigned char *pt_kind;
    double *pt_acc;

    /* marks, under mu; after meter_stop the last one is the stop */
    struct mark *marks;
    int n_marks, cap_marks;

    bool running, stopped;
    atomic_bool stop_flag;
    pthread_t thread;
    double sampler_cpu_s;

    struct counters *counters; /* NULL: not counted, for the reason in counters_why */
    char counters_why[JB_ERR_MSG_MAX];

    double idle_w, idle_s;
    double idle_dom_w[METER_MAX_DOMAINS];
};

const char *meter_source_name(enum meter_source s) {
    return s == METER_SOURCE_MEASURED ? "measured" : "estimated";
}

/* energy.md §5: measured:<backends>, or estimated:tdp-util for the estimate (the name of its
 * model rather than of the backend). */
const char *meter_energy_label(const struct meter *m, char *buf, size_t len) {
    const char *bk = meter_backend_name(m);
    snprintf(buf, len, "%s:%s", meter_source_name(meter_source(m)),
             !strcmp(bk, "estimate") ? "tdp-util" : bk);
    return buf;
}

bool meter_label_is_measured(const char *label) {
    return label && !strncmp(label, "measured:", 9);
}

const char *meter_domain_kind_name(enum meter_domain_kind k) {
    static const char *const names[] = {"package", "core", "uncore", "dram",
                                        "psys",    "gpu",  "other"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "other";
}

uint64_t meter_counter_delta(uint64_t prev, uint64_t cur, uint64_t range) {
    if (cur >= prev || range == 0) return cur - prev; /* range 0: unsigned 64-bit wrap */
    /* the counter went from prev up to range, wrapped to 0, then rose to cur */
    return cur + (range - prev) + 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads every backend and adds the deltas to acc_j. A failed read keeps the previous raw
 * values (its energy shows up at the next good read). */
static void read_locked(struct meter *m, uint64_t t_ns) {
    uint64_t raw[BACKEND_MAX_DOMAINS];
    int base = 0;
    for (int b = 0; b < m->n_be; b++) {
        struct meter_backend *be = m->be[b];
        if (be->read(be, raw, (double)t_ns * 1e-9) < 0) {
            m->n_read_errors++;
        } else {
            for (int i = 0; i < be->n; i++) {
                int d = base + i;
                uint64_t delta = meter_counter_delta(m->raw[d], raw[i], be->dom[i].range);
                m->acc_j[d] += (double)delta * be->dom[i].scale_j;
                m->raw[d] = raw[i];
            }
        }
        base += be->n;
    }
}

/* Reads and appends a trace point; 0 or JB_ENOMEM. */
static int point_locked(struct meter *m, enum point_kind kind) {
    if (m->n_pts == m->cap_pts) {
        size_t cap = m->cap_pts ? 2 * m->cap_pts : 1024;
        uint64_t *t = realloc(m->pt_t_ns, cap * sizeof *t);
        if (!t) return JB_ENOMEM;
        m->pt_t_ns = t;
        unsigned char *k = realloc(m->pt_kind, cap);
        if (!k) return JB_ENOMEM;
        m->pt_kind = k;
        double *a = realloc(m->pt_acc, cap * (size_t)m->n_dom * sizeof *a);
        if (!a) return JB_ENOMEM;
        m->pt_acc = a;
        m->cap_pts = cap;
    }
    uint64_t t = now_ns();
    read_locked(m, t);
    m->pt_t_ns[m->n_pts] = t;
    m->pt_kind[m->n_pts] = (unsigned char)kind;
    memcpy(m->pt_acc + m->n_pts * (size_t)m->n_dom, m->acc_j, (size_t)m->n_dom * sizeof(double));
    m->n_pts++;
    return 0;
}

static int mark_locked(struct meter *m, const char *label, long sample_id, struct jb_err *err) {
    if (m->n_marks == m->cap_marks) {
        int cap = m->cap_marks ? 2 * m->cap_marks : 64;
        struct mark *mk = realloc(m->marks, (size_t)cap * sizeof *mk);
        if (!mk) return jb_err_set(err, JB_ENOMEM, "meter: out of memory for %d marks", cap);
        m->marks = mk;
        m->cap_marks = cap;
    }
    char *l = strdup(label ? label : "");
    if (!l) return jb_err_set(err, JB_ENOMEM, "meter: out of memory for a mark");
    if (point_locked(m, POINT_MARK) < 0) {
        free(l);
        return jb_err_set(err, JB_ENOMEM, "meter: out of memory for the trace");
    }
    m->marks[m->n_marks] = (struct mark){.label = l, .sample_id = sample_id, .point = m->n_pts - 1};
    counters_read(m->counters, m->marks[m->n_marks].counts);
    return m->n_marks++;
}

/* Σ over counted domains of acc at point p. */
static double total_at(const struct meter *m, size_t p) {
    double s = 0;
    for (int d = 0; d < m->n_dom; d++)
        if (m->dom[d].in_total) s += m->pt_acc[p * (size_t)m->n_dom + d];
    return s;
}

static double secs(const struct meter *m, size_t p) {
    return (double)(m->pt_t_ns[p] - m->t0_ns) * 1e-9;
}

static void note_add(struct meter *m, const char *backend, const struct jb_err *e) {
    if (m->n_notes == MAX_NOTES) return;
    struct note *n = &m->notes[m->n_notes++];
    n->code = e->code;
    snprintf(n->msg, sizeof n->msg, "%.16s: %.1000s", backend, e->msg);
}

static int add_backend(struct meter *m, struct meter_backend *be, struct jb_err *err) {
    if (m->n_be == MAX_BACKENDS || m->n_dom + be->n > METER_MAX_DOMAINS) {
        be->close(be);
        return jb_err_set(err, JB_EINTERNAL, "meter: too many domains");
    }
    int base = m->n_dom;
    for (int i = 0; i < be->n; i++) {
        int d = m->n_dom++;
        m->dom[d] = (struct meter_domain){
            .name = be->dom[i].name,
            .kind = be->dom[i].kind,
            .parent = be->dom[i].parent >= 0 ? base + be->dom[i].parent : -1,
            .source = be->source,
            .backend = be->name,
            .resolution_s = be->dom[i].resolution_s,
        };
        m->dom_be[d] = m->n_be;
        m->dom_idx[d] = i;
    }
    m->be[m->n_be++] = be;
    return 0;
}

const struct meter_backend_entry meter_backend_table[] = {
    {"powercap", METER_SOURCE_MEASURED, backend_powercap_open, true},
    {"perf", METER_SOURCE_MEASURED, backend_perf_open, true},
    {"papi", METER_SOURCE_MEASURED, backend_papi_open, true},
    {"nvml", METER_SOURCE_MEASURED, backend_nvml_open, false},
    {"estimate", METER_SOURCE_ESTIMATED, backend_estimate_open, true},
};
const int meter_n_backends = (int)(sizeof meter_backend_table / sizeof meter_backend_table[0]);

/* Which domains the totals count: psys if present (it contains the packages), else every
 * package and dram; GPUs always. Core, uncore and the rest are breakdown only (energy.md 2). */
static void choose_totals(struct meter *m) {
    bool psys = false;
    for (int d = 0; d < m->n_dom; d++)
        if (m->dom[d].kind == METER_DOMAIN_PSYS) psys = true;
    m->source = METER_SOURCE_MEASURED;
    for (int d = 0; d < m->n_dom; d++) {
        enum meter_domain_kind k = m->dom[d].kind;
        m->dom[d].in_total = k == METER_DOMAIN_GPU ||
                             (psys ? k == METER_DOMAIN_PSYS
                                   : (k == METER_DOMAIN_PACKAGE || k == METER_DOMAIN_DRAM));
        if (m->dom[d].in_total && m->dom[d].source == METER_SOURCE_ESTIMATED)
            m->source = METER_SOURCE_ESTIMATED;
    }
}

/* A wrap is missed when more than one counter range passes between two reads (energy.md 2):
 * keep the period under range / (2 x P_MAX_W) for every wrapping domain. */
#define P_MAX_W 500.0
static void clamp_interval(struct meter *m) {
    for (int d = 0; d < m->n_dom; d++) {
        const struct backend_domain *bd = &m->be[m->dom_be[d]]->dom[m->dom_idx[d]];
        if (!bd->range) continue;
        double safe_ms = (double)bd->range * bd->scale_j / (2 * P_MAX_W) * 1e3;
        if (safe_ms >= m->interval_ms) continue;
        int was = m->interval_ms;
        m->interval_ms = safe_ms < 10 ? 10 : (int)safe_ms;
        struct jb_err e = {0};
        jb_err_set(&e, JB_EINVAL,
                   "%s wraps after %.1f J, %.0f ms at %.0f W: sampling every %d ms instead of "
                   "%d ms%s", m->dom[d].name, (double)bd->range * bd->scale_j, 2 * safe_ms,
                   P_MAX_W, m->interval_ms, was,
                   safe_ms < 10 ? " (wraps may still be missed)" : "");
        note_add(m, "meter", &e);
    }
}

int meter_open(struct meter **out, const struct meter_opts *opts, struct jb_err *err) {
    static const struct meter_opts defaults = {0};
    const struct meter_opts *o = opts ? opts : &defaults;
    int rc = 0;
    *out = NULL;
    if (o->interval_ms && (o->interval_ms < 10 || o->interval_ms > 1000))
        return jb_err_set(err, JB_EINVAL, "meter: interval %d ms is outside 10..1000 ms",
                          o->interval_ms);
    struct meter *m = calloc(1, sizeof *m);
    if (!m) return jb_err_set(err, JB_ENOMEM, "meter: out of memory");
    pthread_mutex_init(&m->mu, NULL);
    atomic_init(&m->stop_flag, false);
    m->interval_ms = o->interval_ms ? o->interval_ms : 100;

    const char *want = o->backend && strcmp(o->backend, "auto") != 0 ? o->backend : NULL;
    struct meter_backend *be = NULL;
    if (want) {
        int i = 0;
        while (i < meter_n_backends && strcmp(meter_backend_table[i].name, want) != 0) i++;
        if (i == meter_n_backends) {
            rc = jb_err_set(err, JB_EINVAL,
                            "unknown meter '%s' (known: auto, powercap, perf, papi, nvml, "
                            "estimate)", want);
            goto out;
        }
        rc = meter_backend_table[i].open(&be, o, err);
        if (rc < 0) {
            jb_err_prefix(err, "meter %s", want);
            goto out;
        }
        if ((rc = add_backend(m, be, err)) < 0) goto out;
    } else {
        for (int i = 0; i < meter_n_backends && m->n_be == 0; i++) {
            if (!meter_backend_table[i].cpu) continue;
            struct jb_err e = {0};
            if (meter_backend_table[i].open(&be, o, &e) == 0) {
                if ((rc = add_backend(m, be, err)) < 0) goto out;
            } else {
                note_add(m, meter_backend_table[i].name, &e);
            }
        }
        if (!o->no_gpu) {
            struct jb_err e = {0};
            if (backend_nvml_open(&be, o, &e) == 0 && (rc = add_backend(m, be, err)) < 0)
                goto out;
        }
    }
    choose_totals(m);
    clamp_interval(m);
    size_t len = 0;
    for (int b = 0; b < m->n_be; b++) {
        len += (size_t)snprintf(m->backend_name + len, sizeof m->backend_name - len, "%s%s",
                                b ? "+" : "", m->be[b]->name);
        if (len >= sizeof m->backend_name) break;
        if (m->be[b]->model[0]) snprintf(m->model, sizeof m->model, "%s", m->be[b]->model);
    }
    pthread_mutex_lock(&m->mu);
    read_locked(m, now_ns()); /* primes raw[]: the first delta is from here */
    pthread_mutex_unlock(&m->mu);
out:
    if (rc < 0) {
        meter_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void meter_close(struct meter *m) {
    if (!m) return;
    if (m->running) meter_stop(m, NULL);
    counters_close(m->counters);
    for (int b = 0; b < m->n_be; b++) m->be[b]->close(m->be[b]);
    for (int i = 0; i < m->n_marks; i++) free(m->marks[i].label);
    free(m->marks);
    free(m->pt_t_ns);
    free(m->pt_kind);
    free(m->pt_acc);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const char *meter_backend_name(const struct meter *m) { return m->backend_name; }
enum meter_source meter_source(const struct meter *m) { return m->source; }
const char *meter_model(const struct meter *m) { return m->model[0] ? m->model : NULL; }
int meter_interval_ms(const struct meter *m) { return m->interval_ms; }
int meter_n_notes(const struct meter *m) { return m->n_notes; }
int meter_n_domains(const struct meter *m) { return m->n_dom; }

const char *meter_note(const struct meter *m, int i, int *code) {
    if (i < 0 || i >= m->n_notes) return NULL;
    if (code) *code = m->notes[i].code;
    return m->notes[i].msg;
}

const struct meter_domain *meter_domain_get(const struct meter *m, int i) {
    return i >= 0 && i < m->n_dom ? &m->dom[i] : NULL;
}

static void sleep_until(uint64_t t_ns) {
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u),
                          .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int meter_idle_measure(struct meter *m, double seconds, struct jb_err *err) {
    if (m->running) return jb_err_set(err, JB_EINVAL, "meter: idle baseline while running");
    m->idle_w = m->idle_s = 0;
    memset(m->idle_dom_w, 0, sizeof m->idle_dom_w);
    if (seconds <= 0) return 0;
    uint64_t step = (uint64_t)m->interval_ms * 1000000u;
    int n = (int)(seconds * 1000.0 / m->interval_ms + 0.5);
    if (n < 1) n = 1;
    double *w = malloc((size_t)n * (size_t)(m->n_dom + 1) * sizeof *w);
    if (!w) return jb_err_set(err, JB_ENOMEM, "meter: out of memory for the idle baseline");
    double prev[METER_MAX_DOMAINS];
    pthread_mutex_lock(&m->mu);
    uint64_t t_prev = now_ns(), t_begin = t_prev, next = t_prev;
    read_locked(m, t_prev);
    memcpy(prev, m->acc_j, sizeof prev);
    pthread_mutex_unlock(&m->mu);
    for (int k = 0; k < n; k++) {
        next += step;
        sleep_until(next);
        pthread_mutex_lock(&m->mu);
        uint64_t t = now_ns();
        read_locked(m, t);
        double dt = (double)(t - t_prev) * 1e-9, tot = 0;
        for (int d = 0; d < m->n_dom; d++) {
            double p = (m->acc_j[d] - prev[d]) / dt;
            w[(size_t)(d + 1) * (size_t)n + (size_t)k] = p;
            if (m->dom[d].in_total) tot += p;
            prev[d] = m->acc_j[d];
        }
        pthread_mutex_unlock(&m->mu);
        w[k] = tot;
        t_prev = t;
    }
    m->idle_w = median(w, n);
    for (int d = 0; d < m->n_dom; d++)
        m->idle_dom_w[d] = median(w + (size_t)(d + 1) * (size_t)n, n);
    m->idle_s = (double)(t_prev - t_begin) * 1e-9;
    free(w);
    return 0;
}

static void *sampler_main(void *arg) {
    struct meter *m = arg;
    uint64_t step = (uint64_t)m->interval_ms * 1000000u;
    uint64_t next = now_ns();
    for (;;) {
        next += step;
        sleep_until(next);
        pthread_mutex_lock(&m->mu);
        bool stop = atomic_load(&m->stop_flag);
        if (!stop && point_locked(m, POINT_TICK) < 0) m->n_read_errors++;
        pthread_mutex_unlock(&m->mu);
        if (stop) break;
        uint64_t now = now_ns();
        if (now > next + step) next = now - (now - next) % step; /* fell behind: rejoin the grid */
    }
    m->sampler_cpu_s = thread_cpu_s();
    return NULL;
}

int meter_start(struct meter *m, struct jb_err *err) {
    if (m->running || m->stopped)
        return jb_err_set(err, JB_EINVAL, "meter: started twice (open a new meter per run)");
    struct jb_err cerr = {0};
    if (counters_open(&m->counters, &cerr) < 0)
        snprintf(m->counters_why, sizeof m->counters_why, "%s", cerr.msg);
    pthread_mutex_lock(&m->mu);
    m->t0_ns = now_ns();
    int rc = mark_locked(m, "", -1, err);
    if (rc >= 0) m->t0_ns = m->pt_t_ns[0];
    pthread_mutex_unlock(&m->mu);
    if (rc < 0) return rc;
    atomic_store(&m->stop_flag, false);
    int e = pthread_create(&m->thread, NULL, sampler_main, m);
    if (e) return jb_err_errno(err, e, "meter: cannot start the sampler thread");
    m->running = true;
    return 0;
}

int meter_mark(struct meter *m, const char *label, long sample_id, struct jb_err *err) {
    if (!m->running) return jb_err_set(err, JB_EINVAL, "meter: mark '%s' while not running",
                                       label ? label : "");
    pthread_mutex_lock(&m->mu);
    int rc = mark_locked(m, label, sample_id, err);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int meter_stop(struct meter *m, struct jb_err *err) {
    if (!m->running) return jb_err_set(err, JB_EINVAL, "meter: stop while not running");
    pthread_mutex_lock(&m->mu);
    atomic_store(&m->stop_flag, true);
    int rc = mark_locked(m, "", -1, err);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->running = false;
    m->stopped = true;
    return rc < 0 ? rc : 0;
}

int meter_n_phases(const struct meter *m) {
    struct meter *mm = (struct meter *)m; /* the mutex, only */
    pthread_mutex_lock(&mm->mu);
    int n = m->n_marks > 0 ? m->n_marks - 1 : 0;
    pthread_mutex_unlock(&mm->mu);
    return n;
}

static void phase_locked(const struct meter *m, int i, struct meter_phase *p, double *domain_j) {
    size_t a = m->marks[i].point, b = m->marks[i + 1].point;
    double bound = 0, dt = secs(m, b) - secs(m, a);
    for (int d = 0; d < m->n_dom; d++) {
        double e = m->pt_acc[b * (size_t)m->n_dom + d] - m->pt_acc[a * (size_t)m->n_dom + d];
        if (domain_j) domain_j[d] = e;
        if (m->dom[d].in_total && dt > 0) bound += 2 * m->dom[d].resolution_s * e / dt;
    }
    p->label = m->marks[i].label;
    p->sample_id = m->marks[i].sample_id;
    p->t_start_s = secs(m, a);
    p->t_end_s = secs(m, b);
    p->energy_j = total_at(m, b) - total_at(m, a);
    p->power_w_mean = dt > 0 ? p->energy_j / dt : 0;
    p->bound_j = bound;
    bool counted = m->marks[i].counts[0] >= 0 && m->marks[i + 1].counts[0] >= 0;
    p->instructions = counted ? m->marks[i + 1].counts[0] - m->marks[i].counts[0] : -1;
    p->cycles = counted ? m->marks[i + 1].counts[1] - m->marks[i].counts[1] : -1;
}

const char *meter_counters_status(const struct meter *m) {
    return m->counters ? NULL : m->counters_why[0] ? m->counters_why : "not started";
}

int meter_phase_get(const struct meter *m, int i, struct meter_phase *p, double *domain_j) {
    struct meter *mm = (struct meter *)m;
    int rc = 0;
    pthread_mutex_lock(&mm->mu);
    if (i < 0 || i + 1 >= m->n_marks)
        rc = JB_EINVAL;
    else
        phase_locked(m, i, p, domain_j);
    pthread_mutex_unlock(&mm->mu);
    return rc;
}

double meter_sample_energy_j(const struct meter *m, long sample_id) {
    struct meter *mm = (struct meter *)m;
    double e = 0;
    pthread_mutex_lock(&mm->mu);
    for (int i = 0; i + 1 < m->n_marks; i++)
        if (m->marks[i].sample_id == sample_id && sample_id >= 0)
            e += total_at(m, m->marks[i + 1].point) - total_at(m, m->marks[i].point);
    pthread_mutex_unlock(&mm->mu);
    return e;
}

int meter_result_get(const struct meter *m, struct meter_result *r, double *domain_j,
                     double *domain_idle_w) {
    struct meter *mm = (struct meter *)m;
    memset(r, 0, sizeof *r);
    pthread_mutex_lock(&mm->mu);
    r->source = m->source;
    r->idle_power_w = m->idle_w;
    r->idle_s = m->idle_s;
    r->n_points = (long)m->n_pts;
    r->n_read_errors = m->n_read_errors;
    r->sampler_cpu_s = m->sampler_cpu_s;
    r->instructions = r->cycles = -1;
    if (m->n_marks >= 2 && m->marks[0].counts[0] >= 0 && m->marks[m->n_marks - 1].counts[0] >= 0) {
        r->instructions = m->marks[m->n_marks - 1].counts[0] - m->marks[0].counts[0];
        r->cycles = m->marks[m->n_marks - 1].counts[1] - m->marks[0].counts[1];
    }
    if (domain_idle_w) memcpy(domain_idle_w, m->idle_dom_w, (size_t)m->n_dom * sizeof(double));
    if (m->n_pts >= 2) {
        size_t last = m->n_pts - 1;
        r->time_s = secs(m, last);
        r->energy_j = total_at(m, last) - total_at(m, 0);
        r->power_w_mean = r->time_s > 0 ? r->energy_j / r->time_s : 0;
        /* peak over sampler windows (tick to tick); marks cut windows too short to mean much */
        size_t prev = 0;
        for (size_t p = 1; p < m->n_pts; p++) {
            if (m->pt_kind[p] != POINT_TICK && p != last) continue;
            double dt = secs(m, p) - secs(m, prev);
            if (dt > 0) {
                double w = (total_at(m, p) - total_at(m, prev)) / dt;
                if (w > r->power_w_peak) r->power_w_peak = w;
            }
            prev = p;
        }
        if (r->power_w_peak < r->power_w_mean) r->power_w_peak = r->power_w_mean;
        if (domain_j)
            for (int d = 0; d < m->n_dom; d++)
                domain_j[d] = m->pt_acc[last * (size_t)m->n_dom + d] - m->pt_acc[d];
        r->sampler_overhead = r->time_s > 0 ? r->sampler_cpu_s / r->time_s : 0;
    } else if (domain_j) {
        memset(domain_j, 0, (size_t)m->n_dom * sizeof(double));
    }
    r->energy_above_idle_j = r->energy_j - r->idle_power_w * r->time_s;
    if (r->energy_above_idle_j < 0) r->energy_above_idle_j = 0;
    pthread_mutex_unlock(&mm->mu);
    return 0;
}

size_t meter_trace_read(const struct meter *m, size_t from, struct meter_point *out,
                        double *domain_w, size_t max) {
    struct meter *mm = (struct meter *)m;
    size_t k = 0;
    pthread_mutex_lock(&mm->mu);
    for (size_t p = from; p < m->n_pts && k < max; p++, k++) {
        double dt = p > 0 ? secs(m, p) - secs(m, p - 1) : 0;
        out[k].t_s = secs(m, p);
        out[k].energy_j = total_at(m, p) - total_at(m, 0);
        out[k].power_w = dt > 0 ? (total_at(m, p) - total_at(m, p - 1)) / dt : 0;
        if (domain_w)
            for (int d = 0; d < m->n_dom; d++) {
                double e = p > 0 ? m->pt_acc[p * (size_t)m->n_dom + d] -
                                       m->pt_acc[(p - 1) * (size_t)m->n_dom + d]
                                 : 0;
                domain_w[k * (size_t)m->n_dom + d] = dt > 0 ? e / dt : 0;
            }
    }
    pthread_mutex_unlock(&mm->mu);
    return k;
}
