/* config.c: config.json (HF-style and OLMo-style keys, molmo.md §1.1), the fixed vision
 * settings of §1.2 unless `vision_backbone` / `vit_layers` override them, and
 * generation_config.json. */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-json.h"
#include "common/jb-sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first of two spellings present; *out unchanged when neither is (and !required). */
static int get_int2(const json_t *o, const char *k1, const char *k2, int *out, bool required,
                    const char *path, struct jb_err *err) {
    long long v = 0;
    const char *key = NULL;
    const json_t *v1 = json_object_get(o, k1), *v2 = k2 ? json_object_get(o, k2) : NULL;
    if (v1 && !json_is_null(v1))
        key = k1;
    else if (v2 && !json_is_null(v2))
        key = k2;
    if (!key) {
        if (required) {
            return k2 ? jb_err_set(err, JB_ENOTFOUND, "%s: missing field '%s' (or '%s')", path,
                                   k1, k2)
                      : jb_err_set(err, JB_ENOTFOUND, "%s: missing field '%s'", path, k1);
        }
        return 0;
    }
    int rc = jb_json_get_int(o, key, &v, true, path, err);
    if (rc) return rc;
    if (v < 0 || v > (1 << 30))
        return jb_err_set(err, JB_EFORMAT, "%s: field '%s' = %lld is out of range", path, key, v);
    *out = (int)v;
    return 0;
}

static int get_float(const json_t *o, const char *key, float *out, const char *path,
                     struct jb_err *err) {
    double v = *out;
    int rc = jb_json_get_double(o, key, &v, false, path, err);
    if (rc) return rc;
    *out = (float)v;
    return 0;
}

static int positive(int v, const char *field, const char *path, struct jb_err *err) {
    if (v <= 0) return jb_err_set(err, JB_EFORMAT, "%s: field '%s' must be positive", path, field);
    return 0;
}

static int load_vision(struct molmo_config *c, const json_t *root, const char *path,
                       struct jb_err *err) {
    /* §1.2 defaults (the released dense checkpoints hard-wire these) */
    c->image_size_h = c->image_size_w = 336;
    c->patch = 14;
    c->vit_dim = 1024;
    c->vit_heads = 16;
    c->vit_head_dim = 64;
    c->vit_layers = 23;
    c->vit_mlp = 4096;
    c->vit_num_pos = 577;
    c->vit_eps = 1e-5f;
    int la = -2, lb = -9;
    int rc = 0;
    const json_t *vb = json_object_get(root, "vision_backbone");
    if (vb && !json_is_null(vb)) {
        if (!json_is_object(vb))
            return jb_err_set(err, JB_EFORMAT, "%s: field 'vision_backbone' is not an object", path);
        const json_t *sz = json_object_get(vb, "image_default_input_size");
        if (sz) {
            if (!json_is_array(sz) || json_array_size(sz) != 2 ||
                !json_is_integer(json_array_get(sz, 0)) || !json_is_integer(json_array_get(sz, 1)))
                return jb_err_set(err, JB_EFORMAT,
                                  "%s: field 'vision_backbone.image_default_input_size' must be "
                                  "two integers", path);
            c->image_size_h = (int)json_integer_value(json_array_get(sz, 0));
            c->image_size_w = (int)json_integer_value(json_array_get(sz, 1));
        }
        int kv = c->vit_heads;
        if ((rc = get_int2(vb, "image_patch_size", NULL, &c->patch, false, path, err)) ||
            (rc = get_int2(vb, "image_emb_dim", NULL, &c->vit_dim, false, path, err)) ||
            (rc = get_int2(vb, "image_num_heads", NULL, &c->vit_heads, false, path, err)) ||
            (rc = get_int2(vb, "image_num_layers", NULL, &c->vit_layers, false, path, err)) ||
            (rc = get_int2(vb, "image_mlp_dim", NULL, &c->vit_mlp, false, path, err)) ||
            (rc = get_int2(vb, "image_num_pos", NULL, &c->vit_num_pos, false, path, err)) ||
            (rc = get_float(vb, "image_norm_eps", &c->vit_eps, path, err)))
            return rc;
        kv = c->vit_heads;
        if ((rc = get_int2(vb, "image_num_key_value_heads", NULL, &kv, false, path, err))) return rc;
        if (kv != c->vit_heads)
            return jb_err_set(err, JB_EUNSUPPORTED,
                              "%s: field 'vision_backbone.image_num_key_value_heads' = %d: only "
                              "full multi-head ViT attention is supported", path, kv);
        c->vit_head_dim = c->vit_heads ? c->vit_dim / c->vit_heads : 0;
        if ((rc = get_int2(vb, "image_head_dim", NULL, &c->vit_head_dim, false, path, err)))
            return rc;
        const char *act = NULL;
        if ((rc = jb_json_get_string(vb, "image_mlp_activations", &act, false, path, err)))
            return rc;
        if (act && strcmp(act, "quick_gelu") != 0)
            return jb_err_set(err, JB_EUNSUPPORTED,
                              "%s: field 'vision_backbone.image_mlp_activations' = '%s': only "
                              "quick_gelu is supported", path, act);
    }
    if ((rc = positive(c->patch, "vision_backbone.image_patch_size", path, err)) ||
        (rc = positive(c->vit_dim, "vision_backbone.image_emb_dim", path, err)) ||
        (rc = positive(c->vit_heads, "vision_backbone.image_num_heads", path, err)) ||
        (rc = positive(c->vit_layers, "vision_backbone.image_num_layers", path, err)) ||
        (rc = positive(c->vit_mlp, "vision_backbone.image_mlp_dim", path, err)))
        return rc;
    if (c->vit_head_dim * c->vit_heads != c->vit_dim)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: field 'vision_backbone.image_head_dim' = %d: heads x head dim must "
                          "equal image_emb_dim (%d)", path, c->vit_head_dim, c->vit_dim);
    int gh = c->image_size_h / c->patch, gw = c->image_size_w / c->patch;
    if (gh * c->patch != c->image_size_h || gw * c->patch != c->image_size_w || gh % 2 ||
        gw % 2 || c->vit_num_pos != gh * gw + 1)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: field 'vision_backbone.image_num_pos' = %d does not match a %dx%d "
                          "input with %d px patches (positional interpolation is not supported)",
                          path, c->vit_num_pos, c->image_size_w, c->image_size_h, c->patch);
    const json_t *vl = json_object_get(root, "vit_layers");
    if (vl && !json_is_null(vl)) {
        if (!json_is_array(vl) || json_array_size(vl) != 2 ||
            !json_is_integer(json_array_get(vl, 0)) || !json_is_integer(json_array_get(vl, 1)))
            return jb_err_set(err, JB_EUNSUPPORTED,
                              "%s: field 'vit_layers' must be two integers (the connector takes "
                              "exactly two ViT layers)", path);
        la = (int)json_integer_value(json_array_get(vl, 0));
        lb = (int)json_integer_value(json_array_get(vl, 1));
    }
    /* negative = from the end, as Python indexes the list of block outputs */
    int n = c->vit_layers;
    c->vit_layer_a = la < 0 ? n + la : la;
    c->vit_layer_b = lb < 0 ? n + lb : lb;
    if (c->vit_layer_a < 0 || c->vit_layer_a >= n || c->vit_layer_b < 0 || c->vit_layer_b >= n)
        return jb_err_set(err, JB_EFORMAT, "%s: field 'vit_layers' = [%d, %d] is outside the %d "
                          "ViT layers", path, la, lb, n);
    return 0;
}

static int load_generation(struct molmo_config *c, const char *dir, struct jb_err *err) {
    c->eos_id = c->pad_id = -1;
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    snprintf(path, n, "%s/generation_config.json", dir);
    json_t *g = NULL;
    int rc = jb_json_load_file(path, &g, err);
    if (rc == JB_ENOTFOUND) { /* optional: EOS then comes from the tokenizer */
        jb_err_clear(err);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    const json_t *e = json_object_get(g, "eos_token_id");
    if (json_is_array(e)) e = json_array_get(e, 0);  /* HF allows a list; the first is used */
    if (e && !json_is_null(e)) {
        if (!json_is_integer(e) || json_integer_value(e) < 0) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: field 'eos_token_id' is not a token id", path);
            goto out;
        }
        c->eos_id = (int)json_integer_value(e);
    }
    if ((rc = get_int2(g, "pad_token_id", NULL, &c->pad_id, false, path, err))) goto out;
out:
    json_decref(g);
    free(path);
    return rc;
}

int molmo_config_load(struct molmo_config *c, const char *dir, struct jb_err *err) {
    memset(c, 0, sizeof *c);
    size_t n = strlen(dir) + 16;
    char *path = malloc(n);
    if (!path) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    snprintf(path, n, "%s/config.json", dir);
    json_t *r = NULL;
    int rc = jb_json_load_file(path, &r, err);
    if (rc) goto out;
    if (!json_is_object(r)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: not a JSON object", path);
        goto out;
    }
    const char *td = NULL;
    if ((rc = jb_json_get_string(r, "torch_dtype", &td, false, path, err)) ||
        (rc = jb_sha256_file(path, c->config_sha256, err)))
        goto out;
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", td ? td : "unknown");
    if ((rc = get_int2(r, "hidden_size", "d_model", &c->d_model, true, path, err)) ||
        (rc = get_int2(r, "num_hidden_layers", "n_layers", &c->n_layers, true, path, err)) ||
        (rc = get_int2(r, "num_attention_heads", "n_heads", &c->n_heads, true, path, err)) ||
        (rc = get_int2(r, "vocab_size", NULL, &c->vocab_size, true, path, err)))
        goto out;
    c->n_kv_heads = c->n_heads;
    if ((rc = get_int2(r, "num_key_value_heads", "n_kv_heads", &c->n_kv_heads, false, path, err)))
        goto out;
    c->ffn_rows = -1;
    if ((rc = get_int2(r, "intermediate_size", "mlp_hidden_size", &c->ffn_rows, false, path, err)))
        goto out;
    if (c->ffn_rows < 0) {
        double ratio = -1;
        if ((rc = jb_json_get_double(r, "mlp_ratio", &ratio, false, path, err))) goto out;
        if (ratio <= 0) {
            rc = jb_err_set(err, JB_ENOTFOUND, "%s: missing field 'intermediate_size' (or "
                            "'mlp_hidden_size', 'mlp_ratio')", path);
            goto out;
        }
        c->ffn_rows = (int)(ratio * c->d_model);
    }
    c->embedding_size = c->vocab_size;
    c->n_new_embed = 128;
    if ((rc = get_int2(r, "embedding_size", NULL, &c->embedding_size, false, path, err)) ||
        (rc = get_int2(r, "additional_vocab_size", NULL, &c->n_new_embed, false, path, err)))
        goto out;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    if ((rc = get_float(r, "layer_norm_eps", &c->norm_eps, path, err)) ||
        (rc = get_float(r, "rope_theta", &c->rope_theta, path, err)) ||
        (rc = jb_json_get_bool(r, "qkv_bias", &c->qkv_bias, false, path, err)) ||
        (rc = jb_json_get_bool(r, "attention_layer_norm", &c->qk_norm, false, path, err)) ||
        (rc = jb_json_get_bool(r, "norm_after", &c->norm_after, false, path, err)))
        goto out;
    c->max_position_embeddings = 4096;
    if ((rc = get_int2(r, "max_position_embeddings", "max_sequence_length",
                       &c->max_position_embeddings, false, path, err)))
        goto out;

    /* settings no released model uses: reject, naming the field */
    const char *norm = NULL;
    if ((rc = jb_json_get_string(r, "layer_norm_type", &norm, false, path, err))) goto out;
    if (norm && strcmp(norm, "rms") != 0) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: field 'layer_norm_type' = '%s': only 'rms' is "
                        "supported", path, norm);
        goto out;
    }
    const json_t *clip = json_object_get(r, "clip_qkv");
    if (clip && !json_is_null(clip)) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: field 'clip_qkv' is set: clamping q/k/v is not "
                        "supported", path);
        goto out;
    }
    bool tied = false;
    if ((rc = jb_json_get_bool(r, "weight_tying", &tied, false, path, err))) goto out;
    if (tied) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: field 'weight_tying' is true: tied output "
                        "weights are not supported", path);
        goto out;
    }
    const char *bt = NULL;
    if ((rc = jb_json_get_string(r, "block_type", &bt, false, path, err))) goto out;
    if (bt && strcmp(bt, "sequential") != 0 && strcmp(bt, "llama") != 0 &&
        strcmp(bt, "moe") != 0) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: field 'block_type' = '%s': only 'sequential', "
                        "'llama' and 'moe' blocks are supported", path, bt);
        goto out;
    }
    c->moe = bt && strcmp(bt, "moe") == 0;
    if (c->moe) { /* §7.5: OLMoE experts of width ffn_rows / 2 */
        bool shared = false;
        if ((rc = get_int2(r, "moe_num_experts", NULL, &c->n_experts, true, path, err)) ||
            (rc = get_int2(r, "moe_top_k", NULL, &c->top_k, true, path, err)) ||
            (rc = jb_json_get_bool(r, "moe_shared_expert", &shared, false, path, err)))
            goto out;
        if (c->n_experts <= 0 || c->top_k <= 0 || c->top_k > c->n_experts) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: field 'moe_top_k' = %d must be between 1 and "
                            "moe_num_experts (%d)", path, c->top_k, c->n_experts);
            goto out;
        }
        if (shared) {
            rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: field 'moe_shared_expert' is true: a shared "
                            "expert is not supported", path);
            goto out;
        }
    }
    if ((rc = positive(c->d_model, "hidden_size", path, err)) ||
        (rc = positive(c->n_layers, "num_hidden_layers", path, err)) ||
        (rc = positive(c->n_heads, "num_attention_heads", path, err)) ||
        (rc = positive(c->n_kv_heads, "num_key_value_heads", path, err)) ||
        (rc = positive(c->vocab_size, "vocab_size", path, err)) ||
        (rc = positive(c->embedding_size, "embedding_size", path, err)))
        goto out;
    if (c->d_model % c->n_heads || (c->d_model / c->n_heads) % 2) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: field 'num_attention_heads' = %d does not divide "
                        "hidden_size %d into heads of even width", path, c->n_heads, c->d_model);
        goto out;
    }
    c->head_dim = c->d_model / c->n_heads;
    if (c->n_heads % c->n_kv_heads) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: field 'num_key_value_heads' = %d does not divide "
                        "the %d query heads", path, c->n_kv_heads, c->n_heads);
        goto out;
    }
    if (c->ffn_rows <= 0 || c->ffn_rows % 2) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: field 'intermediate_size' = %d must be positive and "
                        "even (fused up and gate rows)", path, c->ffn_rows);
        goto out;
    }
    if (c->embedding_size < c->vocab_size) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: field 'embedding_size' = %d is below vocab_size %d",
                        path, c->embedding_size, c->vocab_size);
        goto out;
    }
    if ((rc = load_vision(c, r, path, err))) goto out;
    rc = load_generation(c, dir, err);
out:
    json_decref(r);
    free(path);
    return rc;
}
