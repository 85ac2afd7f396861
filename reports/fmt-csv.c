#include "config.h"

#include "reports/reports-impl.h"

#include <string.h>

int reports_csv_field(FILE *f, const char *s) {
    size_t n = strlen(s);
    int quote = strpbrk(s, ",\"\r\n") != NULL || (n > 0 && (s[0] == ' ' || s[n - 1] == ' '));
    if (!quote) return fputs(s, f) < 0 ? -1 : 0;
    if (fputc('"', f) == EOF) return -1;
    for (const char *p = s; *p; p++) {
        if (*p == '"' && fputc('"', f) == EOF) return -1;
        if (fputc(*p, f) == EOF) return -1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

/* One row per run x model x suite; plain numbers (%.6g, SI units in the column names) and the
 * energy_source column saying whether they were measured or estimated. */
int reports_render_csv(struct reports_run *const *runs, int n, FILE *f, struct jb_err *err) {
    (void)err;
    fputs("run,model,suite,n_samples,accuracy,accuracy_ci95_lo,accuracy_ci95_hi,score_sum,"
          "time_total_s,energy_total_j,energy_above_idle_j,j_per_sample,j_per_sample_above_idle,"
          "score_per_kj,co2e_g,energy_bound_j",
          f);
    for (int p = 0; p < N_PHASES; p++) fprintf(f, ",time_%s_s", reports_phase_names[p]);
    for (int p = 0; p < N_PHASES; p++) fprintf(f, ",energy_%s_j", reports_phase_names[p]);
    fputs(",energy_source,grid_g_per_kwh,pue\n", f);
    for (int i = 0; i < n; i++) {
        const struct reports_run *r = runs[i];
        for (int j = 0; j < r->n_g; j++) {
            const struct reports_group *g = &r->g[j];
            reports_csv_field(f, r->label);
            fputc(',', f);
            reports_csv_field(f, g->model);
            fputc(',', f);
            reports_csv_field(f, g->suite);
            fprintf(f, ",%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g", g->n,
                    g->accuracy, g->ci_lo, g->ci_hi, g->score_sum, g->time_total_s,
                    g->energy_total_j, g->energy_above_idle_j, g->j_per_sample,
                    g->j_per_sample_above_idle, g->score_per_kj, g->co2e_g, g->energy_bound_j);
            for (int p = 0; p < N_PHASES; p++) fprintf(f, ",%.6g", g->time_s[p]);
            for (int p = 0; p < N_PHASES; p++) fprintf(f, ",%.6g", g->energy_j[p]);
            fputc(',', f);
            reports_csv_field(f, r->energy_source);
            fprintf(f, ",%.6g,%.6g\n", r->grid_g_per_kwh, r->pue);
        }
    }
    return 0;
}
