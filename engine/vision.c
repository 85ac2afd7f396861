/* vision.c: the vision encoder (molmo.md §5) and the connector (§6), one crop at a time. */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-pool.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define ALLOC(a, n) ((float *)molmo_arena_alloc((a), (size_t)(n) * sizeof(float)))

/* Multi-head attention over P rows: q, k, v (P, ld) with H heads of hd features each,
 * contiguous per head; out (P, ld). Non-causal, softmax in float32. Heads are split over the
 * pool, each thread with its own scores (P, P) and a single-threaded sgemm. */
struct attend_job {
    const struct molmo_kernels *kern;
    float *out, *scores;
    const float *q, *k, *v;
    atomic_int next;  /* the next head nobody has taken (see engine/parallel.c's tiles) */
    int ld, P, H, hd;
};

static void attend_heads(void *ctx, size_t begin, size_t end, int thread) {
    struct attend_job *j = ctx;
    (void)begin, (void)end;  /* one index per thread: heads are taken from j->next */
    int P = j->P, hd = j->hd, ld = j->ld, h;
    float *scores = j->scores + (size_t)thread * P * P;
    float scale = 1.0f / sqrtf((float)hd);
    while ((h = atomic_fetch_add(&j->next, 1)) < j->H) {
        /* scores (P, P) = q_h · k_hᵀ · scale */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, P, hd, scale, j->q + h * hd, ld,
                    j->k + h * hd, ld, 0.0f, scores, P);
        for (int i = 0; i < P; i++) j->kern->softmax(scores + (size_t)i * P, P);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, hd, P, 1.0f, scores, P,
                    j->v + h * hd, ld, 0.0f, j->out + h * hd, ld);
    }
}

int molmo_vit_forward(struct molmo_model *m, const float *patches, float *features, float *cls,
                      struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    const struct molmo_weights *w = &m->w;
    struct molmo_arena *a = &m->arena;
    int P = c->vit_num_pos, Np = P - 1, D = c->vit_dim, F = c->vit_mlp;
    int pdim = c->patch * c->patch * 3;
    size_t mark = molmo_arena_mark(a);
    float *x = ALLOC(a, (size_t)P * D), *y = ALLOC(a, (size_t)P * D);
    float *q = ALLOC(a, (size_t)P * D), *k = ALLOC(a, (size_t)P * D);
    float *v = ALLOC(a, (size_t)P * D), *o = ALLOC(a, (size_t)P * D);
    float *hid = ALLOC(a, (size_t)P * F);
    float *scores = ALLOC(a, (size_t)jb_pool_n_threads(m->pool) * P * P);
    if (!x || !y || !q || !k || !v || !o || !hid || !scores) {
        molmo_arena_reset(a, mark);
        return jb_err_set(err, JB_EINTERNAL, "vision encoder: scratch arena too small");
    }
    /* §5.6: a crop of nothing but -1 (batch padding) has all-zero features */
    bool padding = true;
    for (size_t i = 0; padding && i < (size_t)Np * pdim; i++) padding = patches[i] == -1.0f;
    if (padding) {
        memset(features, 0, (size_t)Np * 2 * D * sizeof(float));
        if (cls) memset(cls, 0, (size_t)2 * D * sizeof(float));
        molmo_arena_reset(a, mark);
        return 0;
    }
    /* §5.1-5.3: patch embedding, CLS, positions, pre-LN */
    memcpy(x, w->class_embed, (size_t)D * sizeof(float));
    molmo_linear_pool(m, x + D, patches, Np, &w->patch_embed, NULL, MOLMO_ACT_NONE);
    molmo_add_pool(m, x, w->pos_embed, (size_t)P * D);
    molmo_layernorm_pool(m, x, x, w->pre_ln_w, w->pre_ln_b, P, D, c->vit_eps);
    int last = c->vit_layer_a > c->vit_layer_b ? c->vit_layer_a : c->vit_layer_b;
    struct attend_job aj = {.kern = &m->kern, .out = o, .scores = scores, .q = q, .k = k, .v = v,
                            .ld = D, .P = P, .H = c->vit_heads, .hd = c->vit_head_dim};
    /* §5.4; blocks after the last one the connector reads are never used (§5.5) */
    for (int n = 0; n <= last; n++) {
        const struct molmo_vit_block *b = &w->vit[n];
        molmo_layernorm_pool(m, y, x, b->ln1_w, b->ln1_b, P, D, c->vit_eps);
        molmo_linear_pool(m, q, y, P, &b->wq, b->bq, MOLMO_ACT_NONE);
        molmo_linear_pool(m, k, y, P, &b->wk, b->bk, MOLMO_ACT_NONE);
        molmo_linear_pool(m, v, y, P, &b->wv, b->bv, MOLMO_ACT_NONE);
        atomic_store(&aj.next, 0);
        molmo_blas_threads(m, 1);
        jb_pool_for(m->pool, (size_t)jb_pool_n_threads(m->pool), 1, attend_heads, &aj);
        molmo_blas_threads(m, 0);
        molmo_linear_pool(m, y, o, P, &b->wo, b->bo, MOLMO_ACT_NONE);
        molmo_add_pool(m, x, y, (size_t)P * D);
        molmo_layernorm_pool(m, y, x, b->ln2_w, b->ln2_b, P, D, c->vit_eps);
        molmo_linear_pool(m, hid, y, P, &b->w1, b->b1, MOLMO_ACT_QUICK_GELU);
        molmo_linear_pool(m, y, hid, P, &b->w2, b->b2, MOLMO_ACT_NONE);
        molmo_add_pool(m, x, y, (size_t)P * D);
        /* §5.5: features = [h[vit_layers[0]], h[vit_layers[1]]], CLS row apart */
        for (int half = 0; half < 2; half++) {
            if (n != (half ? c->vit_layer_b : c->vit_layer_a)) continue;
            for (int p = 0; p < Np; p++)
                memcpy(features + (size_t)p * 2 * D + half * D, x + (size_t)(p + 1) * D,
                       (size_t)D * sizeof(float));
            if (cls) memcpy(cls + half * D, x, (size_t)D * sizeof(float));
        }
    }
    molmo_arena_reset(a, mark);
    return 0;
}

int molmo_connector_forward(struct molmo_model *m, const float *features, const float *mask,
                            float *pooled, float *image_features, struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    const struct molmo_weights *w = &m->w;
    struct molmo_arena *a = &m->arena;
    int D = c->vit_dim, D2 = 2 * D, Ih = c->ffn_rows / 2;
    int gh = c->image_size_h / c->patch, gw = c->image_size_w / c->patch;
    int Np = gh * gw, ph = gh / 2, pw = gw / 2, np = ph * pw;
    size_t mark = molmo_arena_mark(a);
    float *fx = ALLOC(a, (size_t)Np * D2), *xw = ALLOC(a, (size_t)Np * D2);
    float *mean = ALLOC(a, (size_t)np * D2), *k = ALLOC(a, (size_t)Np * D);
    float *v = ALLOC(a, (size_t)Np * D), *q = ALLOC(a, (size_t)np * D);
    float *att = ALLOC(a, (size_t)np * D);
    float *pool = pooled ? pooled : ALLOC(a, (size_t)np * D);
    float *h1 = ALLOC(a, (size_t)np * Ih), *h3 = ALLOC(a, (size_t)np * Ih);
    if (!fx || !xw || !mean || !k || !v || !q || !att || !pool || !h1 || !h3) {
        molmo_arena_reset(a, mark);
        return jb_err_set(err, JB_EINTERNAL, "connector: scratch arena too small");
    }
    /* §6.1 pad embeddings: mask 0 -> row 0; 0 < mask < 1 or -1 (any non-zero below 1) -> row 1 */
    for (int p = 0; p < Np; p++) {
        const float *src = features + (size_t)p * D2;
        float *dst = fx + (size_t)p * D2;
        const float *pe = mask[p] == 0.0f ? w->pad_embed : mask[p] < 1.0f ? w->pad_embed + D2 : NULL;
        for (int i = 0; i < D2; i++) dst[i] = pe ? src[i] + pe[i] : src[i];
    }
    /* §6.2: window (a, b) = patches (2a,2b), (2a,2b+1), (2a+1,2b), (2a+1,2b+1); query = mean */
    for (int wa = 0; wa < ph; wa++) {
        for (int wb = 0; wb < pw; wb++) {
            int win = wa * pw + wb;
            const float *r[4];
            for (int j = 0; j < 4; j++) {
                r[j] = fx + (size_t)((2 * wa + j / 2) * gw + 2 * wb + j % 2) * D2;
                memcpy(xw + ((size_t)win * 4 + j) * D2, r[j], (size_t)D2 * sizeof(float));
            }
            float *mw = mean + (size_t)win * D2;
            for (int i = 0; i < D2; i++) mw[i] = (((r[0][i] + r[1][i]) + r[2][i]) + r[3][i]) / 4.0f;
        }
    }
    /* §6.3 attention pooling: per window, 1 query over its 4 keys */
    molmo_linear_pool(m, q, mean, np, &w->pool_wq, w->pool_bq, MOLMO_ACT_NONE);
    molmo_linear_pool(m, k, xw, Np, &w->pool_wk, w->pool_bk, MOLMO_ACT_NONE);
    molmo_linear_pool(m, v, xw, Np, &w->pool_wv, w->pool_bv, MOLMO_ACT_NONE);
    int H = c->vit_heads, hd = D / H;
    float scale = 1.0f / sqrtf((float)hd);
    for (int win = 0; win < np; win++) {
        for (int h = 0; h < H; h++) {
            const float *qh = q + (size_t)win * D + h * hd;
            float s[4];
            for (int j = 0; j < 4; j++) {
                const float *kh = k + ((size_t)win * 4 + j) * D + h * hd;
                float dot = 0.0f;
                for (int i = 0; i < hd; i++) dot += qh[i] * kh[i];
                s[j] = dot * scale;
            }
            molmo_softmax(s, 4);
            float *oh = att + (size_t)win * D + h * hd;
            for (int i = 0; i < hd; i++) {
                float acc = 0.0f;
                for (int j = 0; j < 4; j++) acc += s[j] * v[((size_t)win * 4 + j) * D + h * hd + i];
                oh[i] = acc;
            }
        }
    }
    molmo_linear_pool(m, pool, att, np, &w->pool_wo, w->pool_bo, MOLMO_ACT_NONE);
    /* §6.4 projector: w2 · (silu(w1 u) ⊙ w3 u) */
    molmo_linear_pool(m, h1, pool, np, &w->proj_w1, NULL, MOLMO_ACT_NONE);
    molmo_linear_pool(m, h3, pool, np, &w->proj_w3, NULL, MOLMO_ACT_NONE);
    m->kern.silu_mul(h1, h1, h3, (size_t)np * Ih);
    molmo_linear_pool(m, image_features, h1, np, &w->proj_w2, NULL, MOLMO_ACT_NONE);
    molmo_arena_reset(a, mark);
    return 0;
}
