/* The arithmetic and weight traffic of the forward pass, counted from the checkpoint's shapes
 * (README "Work counters"): what `bench` divides its timings by, and the per-sample work that
 * `run` records whatever the meter, so that a CI runner without energy counters can still see
 * a model or prompt change that makes answers costlier. Counted, never measured: the same
 * checkpoint, image size and token counts always give the same figures. */
#include "config.h"

#include "engine/model-impl.h"

static double tensor_bytes(const struct molmo_tensor *t) {
    return t->data ? (double)molmo_dtype_bytes(t->dt, t->numel) : 0.0;
}

static double tensor_numel(const struct molmo_tensor *t) {
    return t->data ? (double)t->numel : 0.0;
}

void molmo_model_costs(const struct molmo_model *m, struct molmo_costs *out) {
    const struct molmo_config *c = &m->cfg;
    const struct molmo_weights *w = &m->w;
    struct molmo_costs k = {0};

    /* ViT per crop (P = patches + CLS): patch embedding, the 4 D x D projections and the
     * 2 D x F MLP of each block, q.k and p.v over P positions; only the blocks up to the last
     * one the connector reads run (molmo.md §5.5: 22 of Molmo's 23). */
    double np = (double)(c->image_size_h / c->patch) * (c->image_size_w / c->patch);
    double pdim = (double)c->patch * c->patch * 3, P = np + 1, D = c->vit_dim, F = c->vit_mlp;
    int vit_run = (c->vit_layer_a > c->vit_layer_b ? c->vit_layer_a : c->vit_layer_b) + 1;
    if (vit_run > c->vit_layers) vit_run = c->vit_layers;
    k.vit_flop_per_crop =
        2.0 * np * pdim * D + vit_run * (2.0 * P * (4 * D * D + 2 * D * F) + 4.0 * P * P * D);
    double vb = tensor_bytes(&w->patch_embed);
    for (int l = 0; l < vit_run && w->vit; l++) {
        const struct molmo_vit_block *b = &w->vit[l];
        const struct molmo_tensor *ts[] = {&b->wq, &b->wk, &b->wv, &b->wo, &b->w1, &b->w2};
        for (int i = 0; i < 6; i++) vb += tensor_bytes(ts[i]);
    }

    /* Connector per crop: per 2x2 window, the query of the mean, keys and values of the 4
     * patches, 4-key attention per head (q.k and p.v: 8 D), the output and the projector. */
    double macs_win = tensor_numel(&w->pool_wq) + 4 * (tensor_numel(&w->pool_wk) +
                                                       tensor_numel(&w->pool_wv)) +
                      8 * D + tensor_numel(&w->pool_wo) + tensor_numel(&w->proj_w1) +
                      tensor_numel(&w->proj_w3) + tensor_numel(&w->proj_w2);
    k.connector_flop_per_crop = 2.0 * macs_win * molmo_config_n_pooled(c);
    const struct molmo_tensor *cs[] = {&w->pool_wq, &w->pool_wk, &w->pool_wv, &w->pool_wo,
                                       &w->proj_w1, &w->proj_w2, &w->proj_w3};
    for (int i = 0; i < 7; i++) vb += tensor_bytes(cs[i]);
    k.vision_weight_bytes_per_crop = vb;

    /* LLM: every product of a token but the output head; MoE counts top_k of n_experts per
     * token, and every expert for the prefill (a long prompt routes to nearly all of them). */
    double dense_bytes = 0, expert_bytes = 0, expert_bytes_tok = 0, macs = 0;
    for (int l = 0; l < c->n_layers && w->blocks; l++) {
        const struct molmo_llm_block *b = &w->blocks[l];
        const struct molmo_tensor *ts[] = {&b->att_proj, &b->attn_out, &b->ff_proj, &b->ff_out,
                                           &b->router};
        for (int i = 0; i < 5; i++) {
            dense_bytes += tensor_bytes(ts[i]);
            macs += tensor_numel(ts[i]);
        }
        if (c->moe && b->experts && c->n_experts > 0) {
            double eb = 0, en = 0;
            for (int x = 0; x < c->n_experts; x++) {
                const struct molmo_expert *e = &b->experts[x];
                eb += tensor_bytes(&e->gate_proj) + tensor_bytes(&e->up_proj) +
                      tensor_bytes(&e->down_proj);
                en += tensor_numel(&e->gate_proj) + tensor_numel(&e->up_proj) +
                      tensor_numel(&e->down_proj);
            }
            expert_bytes += eb;
            expert_bytes_tok += eb * c->top_k / c->n_experts;
            macs += en * c->top_k / c->n_experts;
        }
    }
    double tok_bytes = dense_bytes + expert_bytes_tok, all_bytes = dense_bytes + expert_bytes;
    k.llm_macs_per_token = macs;
    k.head_macs = tensor_numel(&w->lm_head);
    k.head_bytes = tensor_bytes(&w->lm_head);
    k.llm_weight_bytes_per_token = tok_bytes;
    k.llm_weight_bytes_all = all_bytes;
    /* q.k and p.v: n_heads x head_dim multiply-adds each per context position, per layer */
    k.attn_macs_per_position = 2.0 * c->n_heads * c->head_dim * c->n_layers;
    k.kv_bytes_per_position = 2.0 * c->n_layers * c->n_kv_heads * c->head_dim * sizeof(float);
    *out = k;
}

void molmo_work_count(const struct molmo_model *m, const struct molmo_result *r,
                      struct molmo_work *out) {
    struct molmo_costs k;
    molmo_model_costs(m, &k);
    struct molmo_work w = {0};
    double N = r->n_crops > 0 ? r->n_crops : 0, T = (double)r->n_prompt_tokens;
    w.vision_flop = N * (k.vit_flop_per_crop + k.connector_flop_per_crop);
    w.vision_weight_bytes = N * k.vision_weight_bytes_per_crop;
    if (T > 0) {
        /* causal attention: token t attends to t + 1 positions; the head on the last one */
        w.prefill_flop = 2.0 * (T * k.llm_macs_per_token + k.head_macs +
                                k.attn_macs_per_position * T * (T + 1) / 2);
        w.prefill_weight_bytes = k.llm_weight_bytes_all + k.head_bytes;
    }
    /* The first answer token comes from the prefill's logits; each later one is a step over
     * the previous token at position T + s. */
    double steps = r->n_ids > 1 ? (double)r->n_ids - 1 : 0;
    w.decode_flop = 2.0 * (steps * (k.llm_macs_per_token + k.head_macs) +
                           k.attn_macs_per_position * (steps * (T + 1) + steps * (steps - 1) / 2));
    w.decode_weight_bytes = steps * (k.llm_weight_bytes_per_token + k.head_bytes);
    *out = w;
}
