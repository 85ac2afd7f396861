/* carbon.c: grid carbon intensity per region and the CO2e of a run (energy.md 3). The table is
 * energy/carbon-intensity.csv, turned into energy/carbon-table.h at build time, so an installed
 * binary needs no data file. */
#include "config.h"

#include "energy/meter.h"

#include "common/jb-err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *region;
    const char *name;
    double g_per_kwh;
    const char *source;
    int year;
} table[] = {
#include "energy/carbon-table.h"
};
#define N_REGIONS (int)(sizeof table / sizeof table[0])

int meter_carbon_n_regions(void) { return N_REGIONS; }

int meter_carbon_region(int i, struct meter_carbon *c) {
    if (i < 0 || i >= N_REGIONS) return JB_EINVAL;
    memset(c, 0, sizeof *c);
    snprintf(c->region, sizeof c->region, "%s", table[i].region);
    c->g_per_kwh = table[i].g_per_kwh;
    snprintf(c->source, sizeof c->source, "%s, %d", table[i].source, table[i].year);
    c->year = table[i].year;
    c->pue = 1.0;
    return 0;
}

int meter_carbon_lookup(const char *region, struct meter_carbon *c, struct jb_err *err) {
    const char *want = region && *region ? region : "WORLD";
    for (int i = 0; i < N_REGIONS; i++)
        if (strcasecmp(table[i].region, want) == 0) return meter_carbon_region(i, c);
    char known[512];
    size_t len = 0;
    for (int i = 0; i < N_REGIONS && len < sizeof known; i++)
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? " " : "",
                                table[i].region);
    return jb_err_set(err, JB_ENOTFOUND,
                      "no carbon intensity for region '%s' (known: %s); give one with "
                      "--grid-g-per-kwh", want, known);
}

double meter_carbon_co2e_g(const struct meter_carbon *c, double energy_j, double time_s) {
    double kwh = energy_j / 3.6e6;
    return kwh * c->g_per_kwh * c->pue + c->embodied_g_per_h * time_s / 3600.0;
}
