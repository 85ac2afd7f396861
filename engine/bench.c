/* The engine's half of `joulebench bench`: the decode kernels at a named ISA, and the forward
 * pass on a loaded model with random inputs, timed per rep. The harness meters and reports;
 * nothing here knows the meter (phase marks go through the callback). */
#include "config.h"

#include "engine/kernels-impl.h"
#include "engine/model-impl.h"

#include "common/jb-err.h"
#include "common/jb-time.h"

#include <stdlib.h>

int molmo_probe_matvec_isa(struct jb_pool *pool, enum molmo_isa want, enum molmo_weight_type type,
                           int n_out, int n_in, int reps, double *bytes_per_s,
                           const char **kernel, struct jb_err *err) {
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), want);
    if (kernel) *kernel = k.name;
    return molmo_probe_matvec(pool, &k, type, n_out, n_in, reps, bytes_per_s, err);
}

const char *molmo_kernels_name(enum molmo_isa want) {
    struct molmo_kernels k;
    molmo_kernels_init(&k, molmo_cpu_detect(), want);
    return k.name;
}

/* xorshift64: the bench's inputs only need to be arbitrary and the same every time. */
static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void mark(const struct molmo_bench_opts *o, enum molmo_phase p, bool begin, int rep) {
    if (o->on_phase) o->on_phase(o->user, p, begin, rep);
}

int molmo_bench_model(struct molmo_model *m, const struct molmo_bench_opts *o,
                      struct molmo_bench_reps *out, struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    int np = (c->image_size_h / c->patch) * (c->image_size_w / c->patch);
    int pdim = c->patch * c->patch * 3, E = c->embedding_size;
    if (o->prompt_tokens < 1 || o->reps < 1 || o->crops < 0 || o->gen_tokens < 0)
        return jb_err_set(err, JB_EINVAL, "bench: needs a prompt token and a rep");
    float *patches = malloc((size_t)np * pdim * sizeof(float));
    float *feats = malloc((size_t)np * 2 * c->vit_dim * sizeof(float));
    float *logits = malloc((size_t)E * sizeof(float));
    int32_t *ids = malloc((size_t)o->prompt_tokens * sizeof(int32_t));
    int rc = 0;
    if (!patches || !feats || !logits || !ids) {
        rc = jb_err_set(err, JB_ENOMEM, "bench: out of memory");
        goto out;
    }
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < (size_t)np * pdim; i++)
        patches[i] = (float)(xorshift(&s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    for (int i = 0; i < o->prompt_tokens; i++)
        ids[i] = (int32_t)(xorshift(&s) % (uint64_t)c->vocab_size);
    for (int r = 0; r < o->reps && !rc; r++) {
        mark(o, MOLMO_PHASE_VISION, true, r);
        double t0 = jb_time_now_s();
        for (int k = 0; k < o->crops && !rc; k++) rc = molmo_vit_forward(m, patches, feats, NULL, err);
        if (rc) break;
        double t1 = jb_time_now_s();
        mark(o, MOLMO_PHASE_PREFILL, true, r);
        if ((rc = molmo_llm_prefill(m, ids, o->prompt_tokens, NULL, NULL, 0, NULL, logits, err)))
            break;
        double t2 = jb_time_now_s();
        mark(o, MOLMO_PHASE_DECODE, true, r);
        for (int g = 0; g < o->gen_tokens && !rc; g++)
            rc = molmo_llm_decode(m, molmo_argmax(logits, E), logits, err);
        if (rc) break;
        double t3 = jb_time_now_s();
        mark(o, MOLMO_PHASE_DECODE, false, r);
        out->vit_ms_per_crop[r] = o->crops > 0 ? (t1 - t0) / o->crops * 1e3 : 0.0;
        out->prefill_tps[r] = o->prompt_tokens / (t2 - t1);
        out->decode_tps[r] = o->gen_tokens > 0 ? o->gen_tokens / (t3 - t2) : 0.0;
    }
out:
    free(patches);
    free(feats);
    free(logits);
    free(ids);
    return rc;
}
