/* Markdown report: results per run x model x suite, time and energy per phase, machine, meter
 * and carbon details. Estimated energy prints with `~` under an ESTIMATED banner
 * (energy.md §5). */
#include "config.h"

#include "reports/reports-impl.h"

#include <string.h>

static void banner(struct reports_run *const *runs, int n, FILE *f) {
    for (int i = 0; i < n; i++)
        if (runs[i]->estimated)
            fprintf(f,
                    "> **ESTIMATED** — run `%s`: energy is not measured on this machine "
                    "(`%s`); figures marked `~` are estimates, not measurements.\n\n",
                    runs[i]->label, runs[i]->energy_source);
}

static void details(const struct reports_run *r, FILE *f) {
    const json_t *j = r->run;
    fprintf(f, "### Run `%s`\n\n", r->label);
    fprintf(f, "- tool: %s %s (commit %s), status %s\n",
            reports_json_str(j, "tool.name", "joulebench"),
            reports_json_str(j, "tool.version", "?"), reports_json_str(j, "tool.commit", "?"),
            reports_json_str(j, "status", "?"));
    fprintf(f, "- machine: %s, %.0f cores, %.1f GiB, kernel %s, GPU %s\n",
            reports_json_str(j, "machine.cpu_model", "?"),
            reports_json_num(j, "machine.n_cores", 0),
            reports_json_num(j, "machine.memory_bytes", 0) / (1024.0 * 1024 * 1024),
            reports_json_str(j, "machine.kernel", "?"), reports_json_str(j, "machine.gpu", "none"));
    const json_t *models = json_object_get(j, "models");
    size_t i;
    const json_t *m;
    json_array_foreach(models, i, m) {
        fprintf(f, "- model `%s`: %s, %.0f parameters, %s, %.0f threads\n",
                reports_json_str(m, "name", "?"), reports_json_str(m, "path", "?"),
                reports_json_num(m, "n_params", 0), reports_json_str(m, "dtype", "?"),
                reports_json_num(m, "n_threads", 0));
    }
    fprintf(f,
            "- meter: energy %s%s, interval %.0f ms, idle baseline %s%.2f W, sampler overhead "
            "%.3f%% of the run\n",
            r->energy_source, r->estimated ? " (**ESTIMATED**)" : "",
            reports_json_num(j, "meter.interval_ms", 0), r->estimated ? "~" : "", r->idle_power_w,
            100 * reports_json_num(j, "meter.sampler_overhead_frac", 0));
    for (int g = 0; g < r->n_g; g++)
        if (r->g[g].energy_bound_j > 0)
            fprintf(f,
                    "- attribution uncertainty %s/%s: ±%.3g J of %.4g J (counter granularity "
                    "at each phase mark)\n",
                    r->g[g].model, r->g[g].suite, r->g[g].energy_bound_j, r->g[g].energy_total_j);
    char src[512];
    reports_carbon_source(src, sizeof src, j);
    fprintf(f,
            "- carbon: region %s, %.0f g CO2e/kWh, PUE %.2f; CO2e is estimated "
            "(grid factor %s)\n\n",
            reports_json_str(j, "carbon.region", "WORLD"), r->grid_g_per_kwh, r->pue, src);
}

int reports_render_md(struct reports_run *const *runs, int n, FILE *f, struct jb_err *err) {
    (void)err;
    char b1[48], b2[48], b3[48], b4[48], b5[48];
    fprintf(f, "# joulebench report\n\n");
    banner(runs, n, f);
    fprintf(f, "## Results\n\n");
    fprintf(f,
            "| run | model | suite | samples | accuracy %% (95%% CI) | J/sample | J/sample above "
            "idle | score/kJ | time s | energy J | g CO2e | energy |\n");
    fprintf(f, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < n; i++) {
        const struct reports_run *r = runs[i];
        for (int j = 0; j < r->n_g; j++) {
            const struct reports_group *g = &r->g[j];
            fprintf(
                f,
                "| %s | %s | %s | %d | %.1f [%.1f, %.1f] | %s | %s | %s | %.4g | %s | %s | %s |\n",
                r->label, g->model, g->suite, g->n, 100 * g->accuracy, 100 * g->ci_lo,
                100 * g->ci_hi, reports_fmt_energy(b1, sizeof b1, g->j_per_sample, r->estimated),
                reports_fmt_energy(b2, sizeof b2, g->j_per_sample_above_idle, r->estimated),
                reports_fmt_energy(b3, sizeof b3, g->score_per_kj, r->estimated), g->time_total_s,
                reports_fmt_energy(b4, sizeof b4, g->energy_total_j, r->estimated),
                reports_fmt_energy(b5, sizeof b5, g->co2e_g, r->estimated),
                r->estimated ? "ESTIMATED" : "measured");
        }
    }
    fprintf(f, "\nScore per kJ is the sum of sample scores divided by the total energy in kJ; "
               "read it beside accuracy and J/sample.\n\n");
    fprintf(f, "## Time and energy per phase\n\n");
    fprintf(f, "| run | model | suite | phase | time s | energy J | share of energy %% |\n");
    fprintf(f, "|---|---|---|---|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const struct reports_run *r = runs[i];
        for (int j = 0; j < r->n_g; j++) {
            const struct reports_group *g = &r->g[j];
            for (int p = 0; p < N_PHASES; p++)
                fprintf(f, "| %s | %s | %s | %s | %.4g | %s | %.1f |\n", r->label, g->model,
                        g->suite, reports_phase_names[p], g->time_s[p],
                        reports_fmt_energy(b1, sizeof b1, g->energy_j[p], r->estimated),
                        g->energy_total_j > 0 ? 100 * g->energy_j[p] / g->energy_total_j : 0.0);
        }
    }
    fprintf(f, "\n## Machine, meter and carbon\n\n");
    for (int i = 0; i < n; i++) details(runs[i], f);
    return 0;
}
