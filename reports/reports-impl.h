/* reports-impl.h: what the files of reports/ share (the loaded run, its summaries, statistics).
 * No other module includes it. */
#ifndef REPORTS_IMPL_H
#define REPORTS_IMPL_H

#include "reports/reports.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Engine phases in the order they run for one sample (molmo.h's enum molmo_phase without the
 * per-step marks): image decoding and tokenization, ViT + connector, prompt, answer. */
enum { PHASE_PREPROCESS, PHASE_VISION, PHASE_PREFILL, PHASE_DECODE, N_PHASES };
extern const char *const reports_phase_names[N_PHASES];

struct reports_sample {
    const char *id, *model, *suite; /* point into the run's samples json */
    double score;                   /* 0..1 */
    double time_s[N_PHASES], energy_j[N_PHASES];
    double time_total_s, energy_total_j;
    double energy_bound_j; /* +- attribution uncertainty; 0 when absent */
    double t_start_s; /* on the power.csv clock; NAN when absent */
    long long n_tokens_in, n_tokens_out;
    /* work counters (README "Work counters"); NAN / -1 in records written before them */
    double cpu_s, flop_total, weight_bytes_read;
    long long n_crops, n_image_tokens;
};

/* Means per sample of the work counters of a group (NAN when its samples have none). */
struct reports_work {
    double n_tokens_in, n_tokens_out, n_crops, n_image_tokens, flop, weight_bytes_read, cpu_s;
    double wall_s;
};

/* One model x suite: everything a report row shows. */
struct reports_group {
    const char *model, *suite;
    int n;
    bool binary; /* every score is 0 or 1 */
    double score_sum, accuracy, ci_lo, ci_hi; /* accuracy and its 95% interval, 0..1 */
    const char *ci_method;                    /* "wilson" or "bootstrap" (jb_ci95) */
    double time_s[N_PHASES], energy_j[N_PHASES];
    double time_total_s, energy_total_j, energy_above_idle_j, energy_bound_j;
    double j_per_sample, j_per_sample_above_idle, score_per_kj, co2e_g;
    struct reports_work work; /* per sample */
};

struct reports_power_point {
    double t_s;
    int domain; /* index into run->domains */
    double watts;
};

struct reports_run {
    char *dir;
    json_t *run;     /* run.json */
    json_t *samples; /* array of the samples.jsonl objects */
    struct reports_sample *s;
    int n_s;
    struct reports_group *g;
    int n_g;
    struct reports_power_point *power;
    size_t n_power;
    char **domains;
    int n_domains;
    /* from run.json, with defaults */
    const char *label;         /* the run directory's last path component */
    const char *energy_source; /* "measured:powercap", "estimated:tdp-util", ... */
    bool estimated;
    double idle_power_w, grid_g_per_kwh, pue;
};

/* Reads samples.jsonl into a json array; a last line without its newline (cut short by a
 * crash) is dropped and, when good_len is not NULL, the length of the complete part is set. */
int reports_samples_read(const char *path, json_t **out, long long *good_len, struct jb_err *err);

/* Fills the per-sample view of r->samples (r->s) and the groups (r->g). */
int reports_run_summarize(struct reports_run *r, struct jb_err *err);

/* ---- statistics (stats.c) ---- */

/* Two-sided exact McNemar p-value: binomial test of b successes in b + c trials, p = 1/2. */
double reports_mcnemar_p(int b, int c);
/* The q-quantile (0..1) of sorted v[0..n-1], linear interpolation between order statistics. */
double reports_quantile(const double *sorted, int n, double q);

/* ---- formatting helpers shared by the formats (fmt-common.c) ---- */

/* "12.3" or "~12.3" when estimated; buf of at least 48 bytes. */
const char *reports_fmt_energy(char *buf, size_t len, double v, bool estimated);
/* A run.json string at a dotted path ("machine.cpu_model"), or dflt. */
const char *reports_json_str(const json_t *root, const char *path, const char *dflt);
/* "source, year" of the carbon factor in run.json (the year left out when the source already
 * names it); buf of at least 256 bytes. */
const char *reports_carbon_source(char *buf, size_t len, const json_t *run);
/* A run.json number at a dotted path, or dflt. */
double reports_json_num(const json_t *root, const char *path, double dflt);

/* ---- HTML and SVG (svg.c) ---- */

extern const char *const reports_palette[8];
extern const char *const reports_phase_colour[N_PHASES];
/* Writes s with <, >, & and " escaped. */
void reports_html_esc(FILE *f, const char *s);
/* Plot frame: W x H pixels with margins l, r, t, b; data [x0,x1] x [y0,y1] in the inner box. */
struct reports_frame {
    double W, H, l, r, t, b, x0, x1, y0, y1;
};
double reports_svg_x(const struct reports_frame *p, double x);
double reports_svg_y(const struct reports_frame *p, double y);
/* The box, grid, numbered ticks and axis titles. */
void reports_svg_axes(FILE *f, const struct reports_frame *p, const char *xlabel,
                      const char *ylabel);
/* The same without x ticks: the caller writes its own x labels (commits, say). */
void reports_svg_axes_labelled(FILE *f, const struct reports_frame *p, const char *xlabel,
                               const char *ylabel);

int reports_render_md(struct reports_run *const *runs, int n, FILE *f, struct jb_err *err);
int reports_render_html(struct reports_run *const *runs, int n, FILE *f, struct jb_err *err);
int reports_render_csv(struct reports_run *const *runs, int n, FILE *f, struct jb_err *err);

#endif /* REPORTS_IMPL_H */
