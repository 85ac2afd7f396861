/* model.c: binds a checkpoint's tensors to the model by name with the shapes the config
 * implies (molmo.md §2.1), and sizes every buffer a forward pass needs once, at load. */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-pool.h"
#include "common/jb-sha256.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN 160

/* Finds name and checks its shape against the ndim sizes given (-1 = any). A missing name is
 * recorded in m->bind_missing (and *out zeroed) so that binding can go on and the error can
 * name the first checkpoint tensor nothing bound: the likely spelling of the missing one. */
static int bind(struct molmo_model *m, struct molmo_tensor *out, const char *name, int ndim,
                int64_t d0, int64_t d1, struct jb_err *err) {
    const struct molmo_tensor *t = molmo_ckpt_use(m->st, name);
    if (!t) {
        if (!m->bind_missing[0]) snprintf(m->bind_missing, sizeof m->bind_missing, "%s", name);
        memset(out, 0, sizeof *out);
        return 0;
    }
    int64_t want[2] = {d0, d1};
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || t->shape[i] == want[i];
    if (!ok) {
        char got[96] = "", exp[64] = "";
        size_t n = 0;
        for (int i = 0; i < t->ndim && n < sizeof got; i++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "",
                                  (long long)t->shape[i]);
        if (ndim == 1)
            snprintf(exp, sizeof exp, "%lld", (long long)d0);
        else
            snprintf(exp, sizeof exp, "%lld, %lld", (long long)d0, (long long)d1);
        return jb_err_set(err, JB_EFORMAT,
                          "%s/%s: tensor '%s' has shape [%s], config.json implies [%s]", m->dir,
                          molmo_ckpt_file_of(m->st, name), name, got, exp);
    }
    *out = *t;
    return 0;
}

/* Binds a small tensor (norm gains, biases, positional table) and converts it to float32 once,
 * into a buffer the model owns. */
static int bind_f32(struct molmo_model *m, const float **out, const char *name, int ndim,
                    int64_t d0, int64_t d1, struct jb_err *err) {
    struct molmo_tensor t;
    int rc = bind(m, &t, name, ndim, d0, d1, err);
    if (rc) return rc;
    if (!t.data && t.numel == 0 && t.ndim == 0) { /* missing: reported after binding */
        *out = NULL;
        return 0;
    }
    if (m->owned_used + t.numel > m->owned_cap)
        return jb_err_set(err, JB_EINTERNAL, "%s: small-tensor buffer too small at '%s'", m->dir,
                          name);
    float *dst = m->owned + m->owned_used;
    molmo_convert_to_f32(dst, t.data, t.dt, t.numel);
    m->owned_used += t.numel;
    *out = dst;
    return 0;
}

static const char *fmt_name(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt_name(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, NAME_MAX_LEN, fmt, ap);
    va_end(ap);
    return buf;
}

/* Floats of every small tensor bind_f32 converts (must match bind_weights). */
static size_t small_floats(const struct molmo_config *c) {
    size_t D = (size_t)c->vit_dim, F = (size_t)c->vit_mlp, d = (size_t)c->d_model;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t vit = (size_t)c->vit_layers * (9 * D + F) + D + (size_t)c->vit_num_pos * D + 2 * D;
    size_t conn = 4 * D + 4 * D;
    size_t llm = (size_t)c->n_layers * (2 * d + (c->qk_norm ? d + kvd : 0) +
                                        (c->qkv_bias ? d + 2 * kvd : 0)) + d;
    return vit + conn + llm;
}

static int bind_weights(struct molmo_model *m, struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    struct molmo_weights *w = &m->w;
    char nb[NAME_MAX_LEN];
    int64_t D = c->vit_dim, F = c->vit_mlp, d = c->d_model, E = c->embedding_size;
    int64_t kvd = (int64_t)c->n_kv_heads * c->head_dim, FF = c->ffn_rows;
    int64_t pdim = (int64_t)c->patch * c->patch * 3;
    int rc;
    const char *vit = "model.vision_backbone.image_vit";
    if ((rc = bind(m, &w->patch_embed, fmt_name(nb, "%s.patch_embedding.weight", vit), 2, D, pdim,
                   err)) ||
        (rc = bind_f32(m, &w->class_embed, fmt_name(nb, "%s.class_embedding", vit), 1, D, 0, err)) ||
        (rc = bind_f32(m, &w->pos_embed, fmt_name(nb, "%s.positional_embedding", vit), 2,
                       c->vit_num_pos, D, err)) ||
        (rc = bind_f32(m, &w->pre_ln_w, fmt_name(nb, "%s.pre_ln.weight", vit), 1, D, 0, err)) ||
        (rc = bind_f32(m, &w->pre_ln_b, fmt_name(nb, "%s.pre_ln.bias", vit), 1, D, 0, err)))
        return rc;
    for (int n = 0; n < c->vit_layers; n++) {
        struct molmo_vit_block *b = &w->vit[n];
        const char *p = "model.vision_backbone.image_vit.transformer.resblocks";
        if ((rc = bind_f32(m, &b->ln1_w, fmt_name(nb, "%s.%d.attention_norm.weight", p, n), 1, D,
                           0, err)) ||
            (rc = bind_f32(m, &b->ln1_b, fmt_name(nb, "%s.%d.attention_norm.bias", p, n), 1, D, 0,
                           err)) ||
            (rc = bind_f32(m, &b->ln2_w, fmt_name(nb, "%s.%d.ffn_norm.weight", p, n), 1, D, 0,
                           err)) ||
            (rc = bind_f32(m, &b->ln2_b, fmt_name(nb, "%s.%d.ffn_norm.bias", p, n), 1, D, 0,
                           err)) ||
            (rc = bind(m, &b->wq, fmt_name(nb, "%s.%d.attention.wq.weight", p, n), 2, D, D, err)) ||
            (rc = bind(m, &b->wk, fmt_name(nb, "%s.%d.attention.wk.weight", p, n), 2, D, D, err)) ||
            (rc = bind(m, &b->wv, fmt_name(nb, "%s.%d.attention.wv.weight", p, n), 2, D, D, err)) ||
            (rc = bind(m, &b->wo, fmt_name(nb, "%s.%d.attention.wo.weight", p, n), 2, D, D, err)) ||
            (rc = bind_f32(m, &b->bq, fmt_name(nb, "%s.%d.attention.wq.bias", p, n), 1, D, 0,
                           err)) ||
            (rc = bind_f32(m, &b->bk, fmt_name(nb, "%s.%d.attention.wk.bias", p, n), 1, D, 0,
                           err)) ||
            (rc = bind_f32(m, &b->bv, fmt_name(nb, "%s.%d.attention.wv.bias", p, n), 1, D, 0,
                           err)) ||
            (rc = bind_f32(m, &b->bo, fmt_name(nb, "%s.%d.attention.wo.bias", p, n), 1, D, 0,
                           err)) ||
            (rc = bind(m, &b->w1, fmt_name(nb, "%s.%d.feed_forward.w1.weight", p, n), 2, F, D,
                       err)) ||
            (rc = bind(m, &b->w2, fmt_name(nb, "%s.%d.feed_forward.w2.weight", p, n), 2, D, F,
                       err)) ||
            (rc = bind_f32(m, &b->b1, fmt_name(nb, "%s.%d.feed_forward.w1.bias", p, n), 1, F, 0,
                           err)) ||
            (rc = bind_f32(m, &b->b2, fmt_name(nb, "%s.%d.feed_forward.w2.bias", p, n), 1, D, 0,
                           err)))
            return rc;
    }
    const char *vb = "model.vision_backbone";
    if ((rc = bind_f32(m, &w->pad_embed, fmt_name(nb, "%s.pad_embed", vb), 2, 2, 2 * D, err)) ||
        (rc = bind(m, &w->pool_wq, fmt_name(nb, "%s.image_pooling_2d.wq.weight", vb), 2, D, 2 * D,
                   err)) ||
        (rc = bind(m, &w->pool_wk, fmt_name(nb, "%s.image_pooling_2d.wk.weight", vb), 2, D, 2 * D,
                   err)) ||
        (rc = bind(m, &w->pool_wv, fmt_name(nb, "%s.image_pooling_2d.wv.weight", vb), 2, D, 2 * D,
                   err)) ||
        (rc = bind(m, &w->pool_wo, fmt_name(nb, "%s.image_pooling_2d.wo.weight", vb), 2, D, D,
                   err)) ||
        (rc = bind_f32(m, &w->pool_bq, fmt_name(nb, "%s.image_pooling_2d.wq.bias", vb), 1, D, 0,
                       err)) ||
        (rc = bind_f32(m, &w->pool_bk, fmt_name(nb, "%s.image_pooling_2d.wk.bias", vb), 1, D, 0,
                       err)) ||
        (rc = bind_f32(m, &w->pool_bv, fmt_name(nb, "%s.image_pooling_2d.wv.bias", vb), 1, D, 0,
                       err)) ||
        (rc = bind_f32(m, &w->pool_bo, fmt_name(nb, "%s.image_pooling_2d.wo.bias", vb), 1, D, 0,
                       err)) ||
        (rc = bind(m, &w->proj_w1, fmt_name(nb, "%s.image_projector.w1.weight", vb), 2, FF / 2, D,
                   err)) ||
        (rc = bind(m, &w->proj_w3, fmt_name(nb, "%s.image_projector.w3.weight", vb), 2, FF / 2, D,
                   err)) ||
        (rc = bind(m, &w->proj_w2, fmt_name(nb, "%s.image_projector.w2.weight", vb), 2, d, FF / 2,
                   err)))
        return rc;
    const char *tr = "model.transformer";
    if ((rc = bind(m, &w->wte, fmt_name(nb, "%s.wte.embedding", tr), 2, E, d, err)) ||
        (rc = bind(m, &w->wte_new, fmt_name(nb, "%s.wte.new_embedding", tr), 2, c->n_new_embed, d,
                   err)) ||
        (rc = bind_f32(m, &w->ln_f, fmt_name(nb, "%s.ln_f.weight", tr), 1, d, 0, err)) ||
        (rc = bind(m, &w->lm_head,
                   c->moe ? "lm_head.weight" : fmt_name(nb, "%s.ff_out.weight", tr), 2, E, d,
                   err)))
        return rc;
    /* dense (§2.1): blocks.{l}.att_proj; MolmoE (§2.2): blocks.{l}.attn.att_proj, .mlp.ff_norm */
    const char *at = c->moe ? "attn." : "", *ml = c->moe ? "mlp." : "";
    for (int l = 0; l < c->n_layers; l++) {
        struct molmo_llm_block *b = &w->blocks[l];
        const char *p = "model.transformer.blocks";
        if ((rc = bind_f32(m, &b->attn_norm, fmt_name(nb, "%s.%d.%sattn_norm.weight", p, l, at), 1,
                           d, 0, err)) ||
            (rc = bind_f32(m, &b->ff_norm, fmt_name(nb, "%s.%d.%sff_norm.weight", p, l, ml), 1, d,
                           0, err)) ||
            (rc = bind(m, &b->att_proj, fmt_name(nb, "%s.%d.%satt_proj.weight", p, l, at), 2,
                       d + 2 * kvd, d, err)) ||
            (rc = bind(m, &b->attn_out, fmt_name(nb, "%s.%d.%sattn_out.weight", p, l, at), 2, d, d,
                       err)))
            return rc;
        if (c->moe) {
            int64_t f = FF / 2;
            b->experts = w->experts + (size_t)l * c->n_experts;
            if ((rc = bind(m, &b->router, fmt_name(nb, "%s.%d.mlp.gate.weight", p, l), 2,
                           c->n_experts, d, err)))
                return rc;
            for (int e = 0; e < c->n_experts; e++) {
                struct molmo_expert *x = &b->experts[e];
                const char *q = "mlp.experts";
                if ((rc = bind(m, &x->gate_proj,
                               fmt_name(nb, "%s.%d.%s.%d.gate_proj.weight", p, l, q, e), 2, f, d,
                               err)) ||
                    (rc = bind(m, &x->up_proj,
                               fmt_name(nb, "%s.%d.%s.%d.up_proj.weight", p, l, q, e), 2, f, d,
                               err)) ||
                    (rc = bind(m, &x->down_proj,
                               fmt_name(nb, "%s.%d.%s.%d.down_proj.weight", p, l, q, e), 2, d, f,
                               err)))
                    return rc;
            }
        } else if ((rc = bind(m, &b->ff_proj, fmt_name(nb, "%s.%d.ff_proj.weight", p, l), 2, FF, d,
                              err)) ||
                   (rc = bind(m, &b->ff_out, fmt_name(nb, "%s.%d.ff_out.weight", p, l), 2, d,
                              FF / 2, err))) {
            return rc;
        }
        if (c->qk_norm &&
            ((rc = bind_f32(m, &b->q_norm, fmt_name(nb, "%s.%d.%sq_norm.weight", p, l, at), 1, d,
                            0, err)) ||
             (rc = bind_f32(m, &b->k_norm, fmt_name(nb, "%s.%d.%sk_norm.weight", p, l, at), 1, kvd,
                            0, err))))
            return rc;
        if (c->qkv_bias &&
            (rc = bind_f32(m, &b->qkv_b, fmt_name(nb, "%s.%d.%satt_proj.bias", p, l, at), 1,
                           d + 2 * kvd, 0, err)))
            return rc;
    }
    if (m->bind_missing[0]) {
        const char *un = molmo_ckpt_first_unused(m->st);
        if (un)
            return jb_err_set(err, JB_ENOTFOUND, "%s: tensor '%s' is missing from the checkpoint "
                              "(the first checkpoint tensor not matched is '%s')", m->dir,
                              m->bind_missing, un);
        return jb_err_set(err, JB_ENOTFOUND, "%s: tensor '%s' is missing from the checkpoint",
                          m->dir, m->bind_missing);
    }
    return 0;
}

static size_t fmax3(size_t a, size_t b, size_t c) {
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* Bytes of scratch each stage needs at most (engine/vision.c and engine/llm.c allocate in the
 * same order; every allocation is rounded up to 64 bytes, hence the slack per buffer). */
static size_t scratch_bytes(const struct molmo_config *c, int max_seq, int n_threads) {
    size_t D = (size_t)c->vit_dim, F = (size_t)c->vit_mlp, P = (size_t)c->vit_num_pos;
    size_t Np = P - 1, d = (size_t)c->d_model, FF = (size_t)c->ffn_rows, FFh = FF / 2;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim, S = (size_t)max_seq;
    size_t pdim = (size_t)c->patch * c->patch * 3;
    size_t tile = molmo_linear_scratch_floats((int)fmax3(fmax3(pdim, D, F), 2 * D,
                                                         fmax3(d, FFh, FF)));
    /* per thread: attention scores and a weight tile (engine/parallel.c) */
    size_t vit = 6 * P * D + P * F + (size_t)n_threads * (P * P + tile);
    size_t np = (size_t)molmo_config_n_pooled(c);
    size_t conn = 2 * Np * 2 * D + np * 2 * D + 2 * Np * D + 3 * np * D + 2 * np * FFh +
                  (size_t)n_threads * tile;
    size_t chunk = MOLMO_FFN_CHUNK;
    size_t llm = S * (5 * d + 2 * kvd) + chunk * (FF + FFh) + MOLMO_ATT_CHUNK * S + d +
                 (size_t)n_threads * tile +
                 2 * ((size_t)c->head_dim / 2 + 16); /* RoPE angles */
    if (c->moe) { /* engine/llm.c ffn_moe: probabilities, weights, rows, gather, gate, up, down */
        size_t mc = S < MOLMO_MOE_CHUNK ? S : MOLMO_MOE_CHUNK, X = (size_t)c->n_experts;
        llm += mc * (2 * X + 1 + 2 * d + 2 * FFh) + 7 * 16;
    }
    return (fmax3(vit, conn, llm) + 64) * sizeof(float) + 64 * 64;
}

int molmo_model_load_weights(struct molmo_model **out, const char *dir,
                             const struct molmo_load_opts *opts, struct jb_err *err) {
    *out = NULL;
    struct molmo_model *m = calloc(1, sizeof *m);
    if (!m) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    int rc = 0;
    m->dir = strdup(dir);
    if (!m->dir) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    /* A checkpoint that ships a SHA256SUMS manifest (the default models of `joulebench run`)
     * has every listed file checked before anything in it is read. */
    char sums[4096];
    snprintf(sums, sizeof sums, "%s/" MOLMO_SHA256_MANIFEST, dir);
    if (access(sums, F_OK) == 0 &&
        (rc = jb_sha256_manifest_check(dir, MOLMO_SHA256_MANIFEST, NULL, err)))
        goto out;
    if ((rc = molmo_config_load(&m->cfg, dir, err))) goto out;
    const struct molmo_config *c = &m->cfg;
    if ((rc = molmo_ckpt_open(&m->st, dir, err))) goto out;
    m->owned_cap = small_floats(c);
    m->owned = malloc(m->owned_cap * sizeof(float));
    m->w.vit = calloc((size_t)c->vit_layers, sizeof *m->w.vit);
    m->w.blocks = calloc((size_t)c->n_layers, sizeof *m->w.blocks);
    if (c->moe) {
        m->w.experts = calloc((size_t)c->n_layers * c->n_experts, sizeof *m->w.experts);
        if (!m->w.experts) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
            goto out;
        }
    }
    if (!m->owned || !m->w.vit || !m->w.blocks) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    if ((rc = bind_weights(m, err))) goto out;

    m->max_seq = opts && opts->max_seq > 0 ? opts->max_seq : c->max_position_embeddings;
    m->max_crops = opts && opts->max_crops > 0 ? opts->max_crops : 13;
    m->n_threads = opts && opts->n_threads > 0 ? opts->n_threads : 0;
    if (m->n_threads > 0) openblas_set_num_threads(m->n_threads);
    else m->n_threads = openblas_get_num_threads();
    if (m->n_threads < 1) m->n_threads = 1;
    m->q8_x = opts ? opts->q8_x : MOLMO_Q8_ACT_INT16;
    if (m->q8_x != MOLMO_Q8_ACT_INT16 && m->q8_x != MOLMO_Q8_ACT_F32 &&
        m->q8_x != MOLMO_Q8_ACT_INT8) {
        rc = jb_err_set(err, JB_EINVAL, "unknown q8_0 activation kind %d", (int)m->q8_x);
        goto out;
    }
    /* the decode x of q8_0 products: the widest LLM input is d_model or the feed-forward's */
    m->q8x_cap = (c->d_model > c->ffn_rows ? c->d_model : c->ffn_rows) + MOLMO_Q8_0_BLOCK - 1;
    m->q8x_cap -= m->q8x_cap % MOLMO_Q8_0_BLOCK;
    m->q8x_d = aligned_alloc(64, ((size_t)m->q8x_cap / MOLMO_Q8_0_BLOCK * sizeof(float) + 63) /
                                     64 * 64);
    m->q8x_q = aligned_alloc(64, ((size_t)m->q8x_cap * sizeof(int16_t) + 63) / 64 * 64);
    if (!m->q8x_d || !m->q8x_q) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    {
        enum molmo_isa want = MOLMO_ISA_BEST;
        if (opts && opts->kernels && molmo_isa_parse(opts->kernels, &want) < 0) {
            rc = jb_err_set(err, JB_EINVAL, "unknown kernels '%s' (scalar, avx2, avx512, best)",
                            opts->kernels);
            goto out;
        }
        molmo_kernels_init(&m->kern, molmo_cpu_detect(), want);
    }
    if (opts && opts->activations && strcmp(opts->activations, "f32") != 0) {
        if (strcmp(opts->activations, "bf16") != 0) {
            rc = jb_err_set(err, JB_EINVAL, "unknown activations '%s' (f32, bf16)",
                            opts->activations);
            goto out;
        }
        m->arena.bf16_x = true;
    }
    /* the pool of the decode matvecs and of engine/parallel.c's jobs; OpenBLAS runs on its own
     * threads outside pool jobs, single-threaded inside them (molmo_blas_threads) */
    if ((rc = jb_pool_open(&m->pool, m->n_threads, 1, err))) goto out;
    int hd = c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * hd;
    size_t np = (size_t)c->vit_num_pos - 1;
    size_t persistent = 2 * (size_t)c->n_layers * (size_t)m->max_seq * kvd    /* KV cache */
                        + (size_t)m->max_crops * molmo_config_n_pooled(c) * (size_t)c->d_model /* image features */
                        + np * 2 * (size_t)c->vit_dim                        /* one crop's ViT */
                        + (size_t)c->embedding_size                          /* logits */
                        + (size_t)hd / 2;
    m->arena.cap = (persistent + 5 * 16) * sizeof(float) +
                   scratch_bytes(c, m->max_seq, m->n_threads);
    /* malloc: pages are only committed when a stage touches them, so an arena sized for the
     * longest sequence costs nothing resident for a short one */
    m->arena.base = malloc(m->arena.cap);
    if (!m->arena.base) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: cannot allocate %zu bytes of scratch", dir,
                        m->arena.cap);
        goto out;
    }
    m->kv = molmo_arena_alloc(&m->arena, 2 * (size_t)c->n_layers * m->max_seq * kvd * sizeof(float));
    m->image_features =
        molmo_arena_alloc(&m->arena, (size_t)m->max_crops * molmo_config_n_pooled(c) * c->d_model *
                                         sizeof(float));
    m->vit_features = molmo_arena_alloc(&m->arena, np * 2 * c->vit_dim * sizeof(float));
    m->logits = molmo_arena_alloc(&m->arena, (size_t)c->embedding_size * sizeof(float));
    m->rope_inv_freq = molmo_arena_alloc(&m->arena, (size_t)hd / 2 * sizeof(float));
    if (!m->kv || !m->image_features || !m->vit_features || !m->logits || !m->rope_inv_freq) {
        rc = jb_err_set(err, JB_EINTERNAL, "%s: arena sizing", dir);
        goto out;
    }
    /* §7.3.4: inv_freq_i = 1 / θ^(2i/hd), as the reference computes it in float32:
     * 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=float) / hd)) */
    for (int i = 0; i < hd / 2; i++)
        m->rope_inv_freq[i] = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)hd);
    m->arena_base_mark = molmo_arena_mark(&m->arena);
out:
    if (rc) {
        molmo_model_free_weights(m);
        return rc;
    }
    *out = m;
    return 0;
}

const char *molmo_model_weights_name(const struct molmo_model *m) {
    enum molmo_dtype dt = m->cfg.n_layers > 0 ? m->w.blocks[0].att_proj.dt : MOLMO_DTYPE_F32;
    if (dt == MOLMO_DTYPE_Q8_0)
        return m->q8_x == MOLMO_Q8_ACT_INT8  ? "Q8_0 x int8"
               : m->q8_x == MOLMO_Q8_ACT_F32 ? "Q8_0 x f32"
                                             : "Q8_0 x int16";
    return molmo_dtype_name(dt);
}

void molmo_model_free_weights(struct molmo_model *m) {
    if (!m) return;
    molmo_ckpt_close(m->st);
    free(m->owned);
    free(m->w.vit);
    free(m->w.blocks);
    free(m->w.experts);
    free(m->arena.base);
    free(m->q8x_d);
    free(m->q8x_q);
    jb_pool_close(m->pool);
    free(m->dir);
    free(m);
}
