/* probe.c: `joulebench meters`: opens and closes every backend, so what it reports is what
 * meter_open would get. */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <stdio.h>
#include <string.h>

int meter_backends_probe(struct meter_backend_status *out, int max, const char *sysfs_root) {
    struct meter_opts o = {.sysfs_root = sysfs_root};
    int n = 0;
    const struct meter_backend_entry *all = meter_backend_table;
    for (int i = 0; i < meter_n_backends && n < max; i++, n++) {
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
