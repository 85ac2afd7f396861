/* backend-papi.c: RAPL through PAPI 7's `powercap` component (reads the flat sysfs links
 * intel-rapl:N, µJ) or its `rapl` component (MSRs, nJ), whichever this PAPI has, detected at run
 * time. Debian's PAPI has neither compiled in: see the README for a PAPI that does. PAPI's own
 * deltas are not trusted (7.0 mishandles start == current); we read and take our own deltas. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_PAPI
#include <papi.h>
#endif

#ifndef HAVE_PAPI
int backend_papi_open(struct meter_backend **out, const struct meter_opts *o, struct jb_err *err) {
    (void)o;
    *out = NULL;
    return jb_err_set(err, JB_EUNSUPPORTED,
                      "built without PAPI: apt-get install libpapi-dev and rebuild (and see the "
                      "README for a PAPI with the powercap/rapl components)");
}
#else

struct papi {
    int es;
};

static int papi_read(struct meter_backend *b, uint64_t *raw, double t_s) {
    (void)t_s;
    struct papi *p = b->priv;
    long long v[BACKEND_MAX_DOMAINS];
    if (PAPI_read(p->es, v) != PAPI_OK) return JB_EIO;
    for (int i = 0; i < b->n; i++) raw[i] = v[i] < 0 ? 0 : (uint64_t)v[i];
    return 0;
}

static void papi_close(struct meter_backend *b) {
    if (!b) return;
    struct papi *p = b->priv;
    if (p && p->es != PAPI_NULL) {
        long long v[BACKEND_MAX_DOMAINS];
        PAPI_stop(p->es, v);
        PAPI_cleanup_eventset(p->es);
        PAPI_destroy_eventset(&p->es);
    }
    free(p);
    free(b);
    PAPI_shutdown();
}

/* The zone name from the flat sysfs link the powercap component reads; "" if unreadable. */
static void zone_name(int zone, int sub, char *buf, size_t len) {
    char path[128];
    if (sub < 0)
        snprintf(path, sizeof path, "/sys/class/powercap/intel-rapl:%d/name", zone);
    else
        snprintf(path, sizeof path, "/sys/class/powercap/intel-rapl:%d:%d/name", zone, sub);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(buf, (int)len, f)) buf[strcspn(buf, "\n ")] = '\0';
    fclose(f);
}

/* Classifies one native event name; false if it is not an energy reading we want. */
static bool classify(const char *comp, const char *ev, struct backend_domain *d) {
    int zone = -1, sub = -1;
    const char *p;
    if (strcmp(comp, "powercap") == 0) {
        /* powercap:::ENERGY_UJ:ZONE0 or powercap:::ENERGY_UJ:ZONE0_SUBZONE1 */
        if (!(p = strstr(ev, ":::ENERGY_UJ:ZONE"))) return false;
        if (sscanf(p + 17, "%d_SUBZONE%d", &zone, &sub) < 1) return false;
        char name[40];
        zone_name(zone, sub, name, sizeof name);
        if (!name[0] && sub < 0) snprintf(name, sizeof name, "package-%d", zone);
        if (!name[0]) snprintf(name, sizeof name, "subzone-%d", sub);
        d->kind = backend_kind_from_rapl_name(name);
        if (sub < 0)
            snprintf(d->name, sizeof d->name, "%s", name);
        else
            snprintf(d->name, sizeof d->name, "zone-%d/%.30s", zone, name);
        d->scale_j = 1e-6;
        return true;
    }
    /* rapl:::PACKAGE_ENERGY:PACKAGE0 (nJ, scaled); skip the raw _CNT counters */
    static const struct {
        const char *ev;
        const char *name;
        enum meter_domain_kind kind;
    } rapl[] = {
        {":::PACKAGE_ENERGY:PACKAGE", "package", METER_DOMAIN_PACKAGE},
        {":::PP0_ENERGY:PACKAGE", "core", METER_DOMAIN_CORE},
        {":::PP1_ENERGY:PACKAGE", "uncore", METER_DOMAIN_UNCORE},
        {":::DRAM_ENERGY:PACKAGE", "dram", METER_DOMAIN_DRAM},
        {":::PSYS_ENERGY:PACKAGE", "psys", METER_DOMAIN_PSYS},
    };
    for (size_t i = 0; i < sizeof rapl / sizeof rapl[0]; i++) {
        if (!(p = strstr(ev, rapl[i].ev))) continue;
        zone = atoi(p + strlen(rapl[i].ev));
        snprintf(d->name, sizeof d->name, "%s-%d", rapl[i].name, zone);
        d->kind = rapl[i].kind;
        d->scale_j = 1e-9;
        return true;
    }
    return false;
}

int backend_papi_open(struct meter_backend **out, const struct meter_opts *o, struct jb_err *err) {
    (void)o;
    *out = NULL;
    if (PAPI_is_initialized() == PAPI_NOT_INITED &&
        PAPI_library_init(PAPI_VER_CURRENT) != PAPI_VER_CURRENT)
        return jb_err_set(err, JB_EUNSUPPORTED, "PAPI failed to initialise");
    int cid = -1;
    char why[PAPI_HUGE_STR_LEN + 256] = "";
    for (int c = 0; c < PAPI_num_components(); c++) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(c);
        if (!ci || (strcmp(ci->name, "powercap") != 0 && strcmp(ci->name, "rapl") != 0)) continue;
        if (ci->disabled) {
            snprintf(why, sizeof why, "PAPI's %.32s component is disabled: %s", ci->name,
                     ci->disabled_reason);
            continue;
        }
        if (cid < 0 || strcmp(ci->name, "powercap") == 0) cid = c;
    }
    if (cid < 0) {
        PAPI_shutdown();
        if (why[0]) return jb_err_set(err, JB_EUNSUPPORTED, "%s", why);
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "this PAPI was built without its powercap and rapl components (Debian's "
                          "is): build PAPI from source with ./configure "
                          "--with-components=\"powercap rapl\" (see the README)");
    }
    const char *comp = PAPI_get_component_info(cid)->name;
    struct meter_backend *b = calloc(1, sizeof *b);
    struct papi *p = calloc(1, sizeof *p);
    if (!b || !p) {
        free(b);
        free(p);
        PAPI_shutdown();
        return jb_err_set(err, JB_ENOMEM, "out of memory");
    }
    p->es = PAPI_NULL;
    b->name = "papi";
    b->source = METER_SOURCE_MEASURED;
    b->read = papi_read;
    b->close = papi_close;
    b->priv = p;
    int rc = 0;
    if (PAPI_create_eventset(&p->es) != PAPI_OK) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "PAPI_create_eventset failed");
        goto out;
    }
    int code = PAPI_NATIVE_MASK;
    int more = PAPI_enum_cmp_event(&code, PAPI_ENUM_FIRST, cid);
    while (more == PAPI_OK && b->n < BACKEND_MAX_DOMAINS) {
        char ev[PAPI_MAX_STR_LEN];
        struct backend_domain *d = &b->dom[b->n];
        if (PAPI_event_code_to_name(code, ev) == PAPI_OK && classify(comp, ev, d) &&
            PAPI_add_event(p->es, code) == PAPI_OK) {
            d->parent = -1;
            d->range = 0;
            d->resolution_s = 1e-3;
            b->n++;
        }
        more = PAPI_enum_cmp_event(&code, PAPI_ENUM_EVENTS, cid);
    }
    /* subzones belong to the package before them */
    for (int i = 0, pkg = -1; i < b->n; i++) {
        if (b->dom[i].kind == METER_DOMAIN_PACKAGE) pkg = i;
        if (b->dom[i].kind == METER_DOMAIN_CORE || b->dom[i].kind == METER_DOMAIN_UNCORE)
            b->dom[i].parent = pkg;
    }
    if (b->n == 0) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "PAPI's %s component lists no energy events", comp);
        goto out;
    }
    if (PAPI_start(p->es) != PAPI_OK) {
        rc = jb_err_set(err, JB_EPERM,
                        "PAPI's %s component cannot start its events (it needs read access to "
                        "RAPL: see powercap's message)", comp);
        goto out;
    }
out:
    if (rc < 0) {
        papi_close(b);
        return rc;
    }
    *out = b;
    return 0;
}
#endif
