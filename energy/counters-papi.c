/* counters-papi.c: instructions and cycles per phase through PAPI's perf_event component, where
 * it works (virtual machines often expose no hardware counters). Optional: reported beside the
 * energy, never required. Counted for the thread that calls meter_start and, inherited, the
 * threads and processes it starts afterwards; read by that same thread at each mark. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <stdlib.h>
#include <string.h>

#ifdef HAVE_PAPI
#include <papi.h>
#endif

#ifndef HAVE_PAPI
int counters_open(struct counters **out, struct jb_err *err) {
    *out = NULL;
    return jb_err_set(err, JB_EUNSUPPORTED, "built without PAPI: no instruction counts");
}
int counters_read(struct counters *c, long long v[2]) {
    (void)c;
    v[0] = v[1] = -1;
    return JB_EUNSUPPORTED;
}
void counters_close(struct counters *c) { (void)c; }
#else

struct counters {
    int es;
};

int counters_open(struct counters **out, struct jb_err *err) {
    *out = NULL;
    if (PAPI_is_initialized() == PAPI_NOT_INITED &&
        PAPI_library_init(PAPI_VER_CURRENT) != PAPI_VER_CURRENT)
        return jb_err_set(err, JB_EUNSUPPORTED, "PAPI failed to initialise: no instruction counts");
    struct counters *c = calloc(1, sizeof *c);
    if (!c) return jb_err_set(err, JB_ENOMEM, "out of memory");
    c->es = PAPI_NULL;
    int rc = 0, e;
    if ((e = PAPI_create_eventset(&c->es)) != PAPI_OK ||
        (e = PAPI_assign_eventset_component(c->es, 0)) != PAPI_OK) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "PAPI perf_event: %s", PAPI_strerror(e));
        goto out;
    }
    PAPI_option_t opt;
    memset(&opt, 0, sizeof opt);
    opt.inherit.eventset = c->es;
    opt.inherit.inherit = PAPI_INHERIT_ALL;
    PAPI_set_opt(PAPI_INHERIT, &opt); /* without it, only the calling thread is counted */
    if ((e = PAPI_add_event(c->es, PAPI_TOT_INS)) != PAPI_OK ||
        (e = PAPI_add_event(c->es, PAPI_TOT_CYC)) != PAPI_OK) {
        rc = jb_err_set(err, JB_EUNSUPPORTED,
                        "PAPI's perf_event component cannot count instructions and cycles here "
                        "(%s): the CPU or virtual machine exposes no hardware counters (check "
                        "'perf stat -e instructions true')", PAPI_strerror(e));
        goto out;
    }
    if ((e = PAPI_start(c->es)) != PAPI_OK) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "PAPI perf_event: cannot start counting: %s",
                        PAPI_strerror(e));
        goto out;
    }
out:
    if (rc < 0) {
        counters_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int counters_read(struct counters *c, long long v[2]) {
    if (!c || PAPI_read(c->es, v) != PAPI_OK) {
        v[0] = v[1] = -1;
        return JB_EIO;
    }
    return 0;
}

void counters_close(struct counters *c) {
    if (!c) return;
    if (c->es != PAPI_NULL) {
        long long v[2];
        PAPI_stop(c->es, v);
        PAPI_cleanup_eventset(c->es);
        PAPI_destroy_eventset(&c->es);
    }
    free(c);
    PAPI_shutdown();
}
#endif
