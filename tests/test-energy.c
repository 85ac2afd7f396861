#include "config.h"

#include "energy/meter.h"

#include "tests/jb-test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct meter_backend_status *find(const struct meter_backend_status *st, int n,
                                               const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(st[i].name, name) == 0) return &st[i];
    return NULL;
}

Test(meter, estimate_is_always_available_and_labelled_estimated) {
    struct meter_backend_status st[METER_MAX_BACKENDS];
    char *dir = jb_test_tmpdir();
    int n = meter_backends_probe(st, METER_MAX_BACKENDS, dir);
    const struct meter_backend_status *e = find(st, n, "estimate");
    cr_assert_not_null(e);
    cr_assert(e->available);
    cr_assert_eq(e->source, METER_SOURCE_ESTIMATED);
    cr_assert_str_eq(meter_source_name(e->source), "estimated");
    /* and every real backend says measured */
    for (int i = 0; i < n; i++)
        if (strcmp(st[i].name, "estimate") != 0) cr_assert_eq(st[i].source, METER_SOURCE_MEASURED);
    jb_test_rmtree(dir);
    free(dir);
}

Test(meter, empty_sysfs_explains_why_rapl_is_missing) {
    struct meter_backend_status st[METER_MAX_BACKENDS];
    char *dir = jb_test_tmpdir();
    int n = meter_backends_probe(st, METER_MAX_BACKENDS, dir);
    const struct meter_backend_status *p = find(st, n, "powercap");
    const struct meter_backend_status *perf = find(st, n, "perf");
    cr_assert_not_null(p);
    cr_assert_not(p->available);
#ifdef HAVE_POWERCAP
    cr_assert(strstr(p->detail, "does not expose RAPL"), "%s", p->detail);
#else
    cr_assert(strstr(p->detail, "built without libpowercap"), "%s", p->detail);
#endif
    cr_assert_not(perf->available);
    cr_assert(strstr(perf->detail, "power' PMU"), "%s", perf->detail);
    jb_test_rmtree(dir);
    free(dir);
}

#ifdef HAVE_POWERCAP
Test(meter, fake_powercap_zone_is_found) {
    char *dir = jb_test_tmpdir(), *cmd = NULL;
    cr_assert(asprintf(&cmd, "mkdir -p '%s/class/powercap/intel-rapl:0' && echo 0 > "
                             "'%s/class/powercap/intel-rapl:0/energy_uj'", dir, dir) > 0);
    cr_assert_eq(system(cmd), 0);
    struct meter_backend_status st[METER_MAX_BACKENDS];
    int n = meter_backends_probe(st, METER_MAX_BACKENDS, dir);
    cr_assert(find(st, n, "powercap")->available);
    free(cmd);
    jb_test_rmtree(dir);
    free(dir);
}
#endif

Test(meter, probe_respects_the_output_capacity) {
    struct meter_backend_status st[2];
    cr_assert_eq(meter_backends_probe(st, 2, "/nonexistent"), 2);
    cr_assert_str_eq(st[0].name, "powercap");
}
