/* The sample loop of `joulebench run`: evaluate, record, fsync, summarise, resume. It reaches
 * the engine, the metric and the meter only through struct run_ops, so the crash-safety can be
 * tested with a fake evaluator (tests/test-run.c). */
#include "config.h"

#include "harness/run-impl.h"

#include "common/jb-err.h"
#include "reports/reports.h"

#include <stdlib.h>

static const char *const phase_names[RUN_N_PHASES] = {"preprocess", "vision", "prefill", "decode"};

/* The samples.jsonl record (reports/record.c lists the keys). */
static json_t *sample_json(const struct run_item *it, const struct run_answer *a,
                           const char *energy_source) {
    json_t *refs = json_array(), *t = json_object(), *e = json_object(), *fl = json_object();
    for (size_t i = 0; i < it->n_refs; i++) json_array_append_new(refs, json_string(it->refs[i]));
    double flop_total = 0;
    for (int p = 0; p < RUN_N_PHASES; p++) {
        json_object_set_new(t, phase_names[p], json_real(a->time_s[p]));
        json_object_set_new(e, phase_names[p], json_real(a->energy_j[p]));
        if (p != RUN_PHASE_PREPROCESS) json_object_set_new(fl, phase_names[p], json_real(a->flop[p]));
        flop_total += a->flop[p];
    }
    json_t *work = json_pack("{s:i, s:I, s:o, s:f, s:f}", "n_crops", a->n_crops, "n_image_tokens",
                             (json_int_t)a->n_image_tokens, "flop", fl, "flop_total", flop_total,
                             "weight_bytes_read", a->weight_bytes_read);
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(it->model));
    json_object_set_new(o, "suite", json_string(it->suite));
    json_object_set_new(o, "id", json_string(it->id));
    json_object_set_new(o, "prompt", json_string(it->prompt ? it->prompt : ""));
    json_object_set_new(o, "text", json_string(a->text ? a->text : ""));
    json_object_set_new(o, "prediction", json_string(a->prediction ? a->prediction : ""));
    json_object_set_new(o, "references", refs);
    json_object_set_new(o, "score", json_real(a->score));
    json_object_set_new(o, "invalid", json_boolean(a->invalid));
    json_object_set_new(o, "n_tokens_in", json_integer(a->n_tokens_in));
    json_object_set_new(o, "n_tokens_out", json_integer(a->n_tokens_out));
    json_object_set_new(o, "t_start_s", json_real(a->t_start_s));
    json_object_set_new(o, "time_s", t);
    json_object_set_new(o, "energy_j", e);
    json_object_set_new(o, "time_total_s", json_real(a->time_total_s));
    json_object_set_new(o, "energy_total_j", json_real(a->energy_total_j));
    json_object_set_new(o, "energy_bound_j", json_real(a->energy_bound_j));
    json_object_set_new(o, "energy_source", json_string(energy_source));
    json_object_set_new(o, "cpu_s", json_real(a->cpu_s));
    json_object_set_new(o, "work", work);
    return o;
}

int harness_run_loop(struct reports_record *w, const json_t *run, const struct run_item *items,
                     int n, const struct run_ops *ops, const struct run_loop_opts *o,
                     struct harness_progress *p, int *done, struct jb_err *err) {
    int every = o && o->summary_every > 0 ? o->summary_every : 10;
    int base = o ? o->progress_base : 0;
    int rc = 0, since = 0, n_new = 0;
    double score_sum = 0, energy_sum = 0;
    bool estimated = ops->estimated;
    *done = 0;
    for (int i = 0; i < n && !rc; i++) {
        const struct run_item *it = &items[i];
        if (reports_record_has(w, it->model, it->suite, it->id)) {
            (*done)++;
            continue;
        }
        struct run_answer a = {0};
        rc = ops->eval(ops->user, it, &a, err);
        if (!rc) {
            json_t *s = sample_json(it, &a, ops->energy_source ? ops->energy_source : "unknown");
            rc = s ? reports_record_sample(w, s, err) : jb_err_set(err, JB_ENOMEM, "out of memory");
            json_decref(s);
        }
        free(a.text);
        free(a.prediction);
        if (rc) break;
        (*done)++;
        n_new++;
        score_sum += a.score;
        energy_sum += a.energy_total_j;
        if (ops->drain_power && (rc = ops->drain_power(ops->user, w, err))) break;
        if (++since >= every) {
            since = 0;
            if ((rc = reports_record_flush(w, err)) || (rc = reports_record_summary(w, run, err)))
                break;
        }
        harness_progress_update(p, base + *done, score_sum / n_new, energy_sum / n_new, estimated,
                                false);
    }
    if (!rc && ops->drain_power) rc = ops->drain_power(ops->user, w, err);
    if (!rc) rc = reports_record_flush(w, err);
    if (!rc) rc = reports_record_summary(w, run, err);
    if (!rc && n_new)
        harness_progress_update(p, base + *done, score_sum / n_new, energy_sum / n_new, estimated,
                                true);
    return rc;
}
