/* llm.c: the language model (molmo.md §7): embeddings over [embedding; new_embedding], Qwen2
 * (pre-norm, GQA, QKV bias) and OLMo (norm-after, QK-norm) blocks, half-rotation RoPE, the KV
 * cache, and the output head. One forward function serves prefill (T tokens from position 0)
 * and decode (one token at the next position). */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-pool.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define ALLOC(a, n) ((float *)molmo_arena_alloc((a), (size_t)(n) * sizeof(float)))

/* §7.3.4 half rotation: the angles of position pos (float32), then their rotation applied to
 * one head of 2 * h2 features. Every head of a position shares the angles. */
static void rope_angles(float *cs, float *sn, int h2, int pos, const float *inv_freq) {
    for (int i = 0; i < h2; i++) {
        float ang = (float)pos * inv_freq[i];
        cs[i] = cosf(ang);
        sn[i] = sinf(ang);
    }
}

static void rope_apply(float *x, int h2, const float *cs, const float *sn) {
    for (int i = 0; i < h2; i++) {
        float x1 = x[i], x2 = x[i + h2];
        x[i] = x1 * cs[i] - x2 * sn[i];
        x[i + h2] = x2 * cs[i] + x1 * sn[i];
    }
}

static float *kv_at(const struct molmo_model *m, int layer, int which, int pos) {
    size_t kvd = (size_t)m->cfg.n_kv_heads * m->cfg.head_dim;
    return m->kv + (((size_t)layer * 2 + which) * (size_t)m->max_seq + pos) * kvd;
}

static int embed(const struct molmo_model *m, float *x, const int32_t *ids, int T,
                 struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    for (int t = 0; t < T; t++) {
        int32_t id = ids[t];
        float *xt = x + (size_t)t * c->d_model;
        if (id >= 0 && id < c->embedding_size)
            molmo_tensor_rows(xt, &m->w.wte, (size_t)id, 1);
        else if (id >= c->embedding_size && id < c->embedding_size + c->n_new_embed)
            molmo_tensor_rows(xt, &m->w.wte_new, (size_t)(id - c->embedding_size), 1);
        else
            return jb_err_set(err, JB_EINVAL, "token id %d at position %d is outside the "
                              "embedding table (%d + %d rows)", id, t, c->embedding_size,
                              c->n_new_embed);
    }
    return 0;
}

/* Scratch of one forward over T tokens, from the arena. */
struct llm_scratch {
    float *xn, *qkv, *att, *tmp, *ffa, *ffh, *scores;
    int fc, qc;  /* feed-forward rows per chunk, query rows per attention chunk */
    int pool_att;  /* decode attention on the pool: scores holds [hpg, S] per thread */
    float *rope_cs, *rope_sn;  /* [hd / 2]: one position's RoPE angles */
    /* mixture of experts (§7.5), mc rows per chunk */
    float *prob;           /* [mc, X]: router probabilities */
    float *wt;             /* [mc, X]: the weight of each chosen expert, -1 for the others */
    int *rows;             /* [mc]: the rows routed to one expert */
    float *gin, *gate, *up, *down;   /* [mc, d], [mc, f], [mc, f], [mc, d] */
    int mc;
};

/* One decode step's attention for KV groups [g0, g1): the hpg query heads of group g (rows
 * g * hpg.. of q, hd apart) against the nk cached positions; each thread has its own scores
 * [hpg, nk]. */
struct decode_att_job {
    const struct molmo_kernels *kern;
    const float *q, *kc, *vc;
    float *att, *scores;
    int nk, hpg, hd, kvd;
    float scale;
};

static void decode_att_groups(void *ctx, size_t g0, size_t g1, int thread) {
    const struct decode_att_job *j = ctx;
    int nk = j->nk, hpg = j->hpg, hd = j->hd;
    float *sc = j->scores + (size_t)thread * hpg * nk;
    for (size_t g = g0; g < g1; g++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hpg, nk, hd, j->scale,
                    j->q + g * hpg * hd, hd, j->kc + g * hd, j->kvd, 0.0f, sc, nk);
        for (int i = 0; i < hpg; i++) j->kern->softmax(sc + (size_t)i * nk, nk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hpg, hd, nk, 1.0f, sc, nk,
                    j->vc + g * hd, j->kvd, 0.0f, j->att + g * hpg * hd, hd);
    }
}

/* §7.3 on u [T, d] at positions pos0..: appends post-RoPE k and v to layer l's cache and
 * writes the sub-layer output (before any norm-after) to out [T, d]. */
static void attention(struct molmo_model *m, int l, const float *u, float *out, int T, int pos0,
                      const struct llm_scratch *s) {
    const struct molmo_config *c = &m->cfg;
    const struct molmo_llm_block *b = &m->w.blocks[l];
    int d = c->d_model, H = c->n_heads, K = c->n_kv_heads, hd = c->head_dim;
    int kvd = K * hd, qkvw = d + 2 * kvd;
    float *qkv = s->qkv;
    molmo_model_linear(m, qkv, u, T, &b->att_proj, b->qkv_b);
    for (int t = 0; t < T; t++) {
        float *qt = qkv + (size_t)t * qkvw, *kt = qt + d, *vt = kt + kvd;
        if (c->qk_norm) { /* over the whole projection, not per head */
            molmo_rmsnorm(qt, qt, b->q_norm, 1, d, c->norm_eps);
            molmo_rmsnorm(kt, kt, b->k_norm, 1, kvd, c->norm_eps);
        }
        rope_angles(s->rope_cs, s->rope_sn, hd / 2, pos0 + t, m->rope_inv_freq);
        for (int h = 0; h < H; h++) rope_apply(qt + h * hd, hd / 2, s->rope_cs, s->rope_sn);
        for (int h = 0; h < K; h++) rope_apply(kt + h * hd, hd / 2, s->rope_cs, s->rope_sn);
        memcpy(kv_at(m, l, 0, pos0 + t), kt, (size_t)kvd * sizeof(float));
        memcpy(kv_at(m, l, 1, pos0 + t), vt, (size_t)kvd * sizeof(float));
    }
    const float *kc = kv_at(m, l, 0, 0), *vc = kv_at(m, l, 1, 0);
    float scale = 1.0f / sqrtf((float)hd);
    int hpg = H / K;
    if (T == 1 && s->pool_att) {
        /* decode: the hpg query heads of each KV group at once (one read of that group's
         * cache), groups split over the pool */
        struct decode_att_job j = {.kern = &m->kern, .q = qkv, .kc = kc, .vc = vc, .att = s->att,
                                   .scores = s->scores, .nk = pos0 + 1, .hpg = hpg, .hd = hd,
                                   .kvd = kvd, .scale = scale};
        molmo_blas_threads(m, 1);
        jb_pool_for(m->pool, (size_t)K, 1, decode_att_groups, &j);
        molmo_blas_threads(m, 0);
    } else {
        for (int h = 0; h < H; h++) {
            int g = h / hpg;  /* GQA: query head h reads KV head h // (H/K) */
            for (int t0 = 0; t0 < T; t0 += s->qc) {
                int nq = T - t0 < s->qc ? T - t0 : s->qc;
                int nk = pos0 + t0 + nq;  /* causal: later queries see more keys */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale,
                            qkv + (size_t)t0 * qkvw + h * hd, qkvw, kc + g * hd, kvd, 0.0f,
                            s->scores, nk);
                for (int i = 0; i < nq; i++) {
                    float *row = s->scores + (size_t)i * nk;
                    int vis = pos0 + t0 + i + 1;
                    m->kern.softmax(row, vis);
                    for (int j = vis; j < nk; j++) row[j] = 0.0f;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f,
                            s->scores, nk, vc + g * hd, kvd, 0.0f, s->att + (size_t)t0 * d + h * hd,
                            d);
            }
        }
    }
    molmo_model_linear(m, out, s->att, T, &b->attn_out, NULL);
}

/* §7.4 dense feed-forward on u [T, d] -> out [T, d], in chunks of fc rows:
 * a = u·ff_projᵀ; silu(a[I/2:]) ⊙ a[:I/2] -> ff_out. (ffn_moe is the §7.5 counterpart.) */
static void ffn_dense(struct molmo_model *m, const struct molmo_llm_block *b, const float *u,
                      float *out, int T, const struct llm_scratch *s) {
    int d = m->cfg.d_model, FF = m->cfg.ffn_rows, FFh = FF / 2;
    for (int t0 = 0; t0 < T; t0 += s->fc) {
        int n = T - t0 < s->fc ? T - t0 : s->fc;
        molmo_model_linear(m, s->ffa, u + (size_t)t0 * d, n, &b->ff_proj, NULL);
        for (int t = 0; t < n; t++) {
            const float *up = s->ffa + (size_t)t * FF, *gate = up + FFh;
            float *h = s->ffh + (size_t)t * FFh;
            m->kern.silu_mul(h, gate, up, (size_t)FFh);
        }
        molmo_model_linear(m, out + (size_t)t0 * d, s->ffh, n, &b->ff_out, NULL);
    }
}

/* §7.5 mixture-of-experts feed-forward on u [T, d] -> out [T, d]:
 * p = softmax(u·gateᵀ) over all X experts (float32); each row keeps its top_k probabilities,
 * not renormalized; out = Σ_e p_e · down_e(silu(gate_proj_e·u) ⊙ up_proj_e·u).
 * Rows are grouped by expert so each expert's weights are read once per chunk of mc rows: the
 * rows routed to expert e are gathered, multiplied by its three matrices (one product each),
 * and scattered back with their weights. Experts run in index order and each row's sum starts
 * from zero, so every row adds its experts' terms in expert-index order, exactly as the
 * reference (modeling_molmoe.py: zeros, then index_add_ per expert in order) rounds them. */
static void ffn_moe(struct molmo_model *m, const struct molmo_llm_block *b, const float *u,
                    float *out, int T, const struct llm_scratch *s) {
    const struct molmo_config *c = &m->cfg;
    int d = c->d_model, f = c->ffn_rows / 2, X = c->n_experts, K = c->top_k;
    memset(out, 0, (size_t)T * d * sizeof(float));
    for (int t0 = 0; t0 < T; t0 += s->mc) {
        int n = T - t0 < s->mc ? T - t0 : s->mc;
        const float *uc = u + (size_t)t0 * d;
        float *oc = out + (size_t)t0 * d;
        /* router: logits, softmax over all experts, keep the top K (ties: the lower index) */
        molmo_model_linear(m, s->prob, uc, n, &b->router, NULL);
        for (int t = 0; t < n; t++) {
            float *p = s->prob + (size_t)t * X;
            molmo_softmax(p, X);
            float *w = s->wt + (size_t)t * X;
            for (int e = 0; e < X; e++) w[e] = -1.0f;
            for (int k = 0; k < K; k++) {  /* the K largest; ties go to the lower index */
                int best = -1;
                for (int e = 0; e < X; e++)
                    if (w[e] < 0.0f && (best < 0 || p[e] > p[best])) best = e;
                w[best] = p[best];
            }
        }
        for (int e = 0; e < X; e++) {
            int r = 0;
            for (int t = 0; t < n; t++)
                if (s->wt[(size_t)t * X + e] >= 0.0f) s->rows[r++] = t;
            if (r == 0) continue;
            for (int i = 0; i < r; i++)
                memcpy(s->gin + (size_t)i * d, uc + (size_t)s->rows[i] * d,
                       (size_t)d * sizeof(float));
            const struct molmo_expert *x = &b->experts[e];
            molmo_model_linear(m, s->gate, s->gin, r, &x->gate_proj, NULL);
            molmo_model_linear(m, s->up, s->gin, r, &x->up_proj, NULL);
            m->kern.silu_mul(s->gate, s->gate, s->up, (size_t)r * f);  /* silu(gate) ⊙ up */
            molmo_model_linear(m, s->down, s->gate, r, &x->down_proj, NULL);
            for (int i = 0; i < r; i++) {
                int t = s->rows[i];
                float w = s->wt[(size_t)t * X + e];
                const float *y = s->down + (size_t)i * d;
                float *o = oc + (size_t)t * d;
                for (int j = 0; j < d; j++) o[j] += y[j] * w;
            }
        }
    }
}

/* Runs T tokens at positions pos0.. through every block (§7.6), appending to the KV cache;
 * leaves the final residual stream in x [T, d]. */
static void blocks_forward(struct molmo_model *m, float *x, int T, int pos0) {
    const struct molmo_config *c = &m->cfg;
    struct molmo_arena *a = &m->arena;
    int d = c->d_model, kvd = c->n_kv_heads * c->head_dim, FF = c->ffn_rows;
    size_t mark = molmo_arena_mark(a);
    struct llm_scratch s = {
        .fc = T < MOLMO_FFN_CHUNK ? T : MOLMO_FFN_CHUNK,
        .qc = T < MOLMO_ATT_CHUNK ? T : MOLMO_ATT_CHUNK,
    };
    s.xn = ALLOC(a, (size_t)T * d);
    s.qkv = ALLOC(a, (size_t)T * (d + 2 * kvd));
    s.att = ALLOC(a, (size_t)T * d);
    s.tmp = ALLOC(a, (size_t)T * d);
    s.ffa = ALLOC(a, (size_t)s.fc * FF);
    s.ffh = ALLOC(a, (size_t)s.fc * (FF / 2));
    /* decode: a [heads per KV group, S] block of scores per pool thread when that fits in the
     * [MOLMO_ATT_CHUNK, S] the arena is sized for */
    size_t att_rows = (size_t)jb_pool_n_threads(m->pool) * (c->n_heads / c->n_kv_heads);
    s.pool_att = T == 1 && att_rows <= MOLMO_ATT_CHUNK;
    s.scores = ALLOC(a, (s.pool_att ? att_rows : (size_t)s.qc) * (pos0 + T));
    s.rope_cs = ALLOC(a, (size_t)c->head_dim / 2);
    s.rope_sn = ALLOC(a, (size_t)c->head_dim / 2);
    if (c->moe) {
        int f = FF / 2;
        s.mc = T < MOLMO_MOE_CHUNK ? T : MOLMO_MOE_CHUNK;
        s.prob = ALLOC(a, (size_t)s.mc * c->n_experts);
        s.wt = ALLOC(a, (size_t)s.mc * c->n_experts);
        s.rows = (int *)molmo_arena_alloc(a, (size_t)s.mc * sizeof(int));
        s.gin = ALLOC(a, (size_t)s.mc * d);
        s.gate = ALLOC(a, (size_t)s.mc * f);
        s.up = ALLOC(a, (size_t)s.mc * f);
        s.down = ALLOC(a, (size_t)s.mc * d);
        if (!s.prob || !s.wt || !s.rows || !s.gin || !s.gate || !s.up || !s.down) __builtin_trap();
    }
    /* the arena is sized at load for max_seq tokens and T + pos0 <= max_seq was checked */
    if (!s.xn || !s.qkv || !s.att || !s.tmp || !s.ffa || !s.ffh || !s.scores || !s.rope_cs ||
        !s.rope_sn)
        __builtin_trap();
    for (int l = 0; l < c->n_layers; l++) {
        const struct molmo_llm_block *b = &m->w.blocks[l];
        /* pre-norm: x += f(RMS(x)); norm-after: x += RMS(f(x)) */
        const float *u = x;
        if (!c->norm_after) {
            molmo_rmsnorm(s.xn, x, b->attn_norm, T, d, c->norm_eps);
            u = s.xn;
        }
        attention(m, l, u, s.tmp, T, pos0, &s);
        if (c->norm_after) molmo_rmsnorm(s.tmp, s.tmp, b->attn_norm, T, d, c->norm_eps);
        for (size_t i = 0; i < (size_t)T * d; i++) x[i] += s.tmp[i];

        u = x;
        if (!c->norm_after) {
            molmo_rmsnorm(s.xn, x, b->ff_norm, T, d, c->norm_eps);
            u = s.xn;
        }
        if (c->moe)
            ffn_moe(m, b, u, s.tmp, T, &s);
        else
            ffn_dense(m, b, u, s.tmp, T, &s);
        if (c->norm_after) molmo_rmsnorm(s.tmp, s.tmp, b->ff_norm, T, d, c->norm_eps);
        for (size_t i = 0; i < (size_t)T * d; i++) x[i] += s.tmp[i];
    }
    molmo_arena_reset(a, mark);
}

/* §7.7: logits (n, E) = RMS_f(x) · ff_outᵀ for n rows of x (overwritten). */
static void head(struct molmo_model *m, float *logits, float *x, int n) {
    const struct molmo_config *c = &m->cfg;
    molmo_rmsnorm(x, x, m->w.ln_f, n, c->d_model, c->norm_eps);
    molmo_model_linear(m, logits, x, n, &m->w.lm_head, NULL);
}

int molmo_llm_prefill(struct molmo_model *m, const int32_t *ids, int T, const float *image_features,
                      const int32_t *image_input_idx, int n_crops, float *logits_all,
                      float *logits_last, struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    int d = c->d_model, np = molmo_config_n_pooled(c);
    if (T <= 0 || T > m->max_seq)
        return jb_err_set(err, JB_EINVAL, "prompt of %d tokens does not fit the context of %d", T,
                          m->max_seq);
    struct molmo_arena *a = &m->arena;
    size_t mark = molmo_arena_mark(a);
    float *x = ALLOC(a, (size_t)T * d);
    int rc = 0;
    if (!x) {
        rc = jb_err_set(err, JB_EINTERNAL, "prefill: scratch arena too small");
        goto out;
    }
    m->n_cached = 0;
    if ((rc = embed(m, x, ids, T, err))) goto out;
    /* §7.1: image features are added to the <im_patch> embeddings at image_input_idx */
    for (int k = 0; k < n_crops; k++) {
        for (int t = 0; t < np; t++) {
            int32_t p = image_input_idx[(size_t)k * np + t];
            if (p < 0) continue;
            if (p >= T) {
                rc = jb_err_set(err, JB_EINVAL, "image_input_idx[%d][%d] = %d is past the prompt "
                                "(%d tokens)", k, t, p, T);
                goto out;
            }
            const float *f = image_features + ((size_t)k * np + t) * d;
            float *xp = x + (size_t)p * d;
            for (int i = 0; i < d; i++) xp[i] += f[i];
        }
    }
    blocks_forward(m, x, T, 0);
    m->n_cached = T;
    if (logits_all) {
        head(m, logits_all, x, T);
        if (logits_last)
            memcpy(logits_last, logits_all + (size_t)(T - 1) * c->embedding_size,
                   (size_t)c->embedding_size * sizeof(float));
    } else if (logits_last) {
        head(m, logits_last, x + (size_t)(T - 1) * d, 1);
    }
out:
    molmo_arena_reset(a, mark);
    return rc;
}

int molmo_llm_decode(struct molmo_model *m, int32_t id, float *logits, struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    if (m->n_cached <= 0)
        return jb_err_set(err, JB_EINVAL, "decode step without a prefill");
    if (m->n_cached >= m->max_seq)
        return jb_err_set(err, JB_EINVAL, "context full (%d tokens)", m->max_seq);
    struct molmo_arena *a = &m->arena;
    size_t mark = molmo_arena_mark(a);
    float *x = ALLOC(a, (size_t)c->d_model);
    int rc = 0;
    if (!x) {
        rc = jb_err_set(err, JB_EINTERNAL, "decode: scratch arena too small");
        goto out;
    }
    if ((rc = embed(m, x, &id, 1, err))) goto out;
    blocks_forward(m, x, 1, m->n_cached);
    m->n_cached++;
    head(m, logits, x, 1);
out:
    molmo_arena_reset(a, mark);
    return rc;
}
