/* probe.c: `joulebench meters`: opens and closes every backend, so what it reports is what
 * meter_open would get. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <stdio.h>
#include <string.h>

int meter_backends_probe(struct meter_backend_status *out, int max, const char *sysfs_root) {
    static const struct {
        const char *name;
        enum meter_source source;
        int (*open)(struct meter_backend **, const struct meter_opts *, struct jb_err *);
    } all[] = {
        {"powercap", METER_SOURCE_MEASURED, backend_powercap_open},
        {"perf", METER_SOURCE_MEASURED, backend_perf_open},
        {"papi", METER_SOURCE_MEASURED, backend_papi_open},
        {"nvml", METER_SOURCE_MEASURED, backend_nvml_open},
        {"estimate", METER_SOURCE_ESTIMATED, backend_estimate_open},
    };
    struct meter_opts o = {.sysfs_root = sysfs_root};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0] && n < max; i++, n++) {
        struct meter_backend_status *st = &out[n];
        struct meter_backend *b = NULL;
        struct jb_err e = {0};
        st->name = all[i].name;
        st->source = all[i].source;
        st->available = all[i].open(&b, &o, &e) == 0;
        if (!st->available) {
            snprintf(st->detail, sizeof st->detail, "%s", e.msg);
            continue;
        }
        size_t len = 0;
        st->detail[0] = '\0';
        for (int d = 0; d < b->n && len < sizeof st->detail; d++)
            len += (size_t)snprintf(st->detail + len, sizeof st->detail - len, "%s%s (%s)",
                                    d ? ", " : "", b->dom[d].name,
                                    meter_domain_kind_name(b->dom[d].kind));
        if (b->model[0] && len < sizeof st->detail)
            snprintf(st->detail + len, sizeof st->detail - len, "; %s", b->model);
        b->close(b);
    }
    return n;
}
