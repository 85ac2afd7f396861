/* A deterministic Molmo checkpoint written from a seeded PRNG: the embedded default model of
 * `joulebench run`, and a fixture for tests. Layout and key names follow the released 7B-D
 * checkpoint (molmo.md §1.1, §2.1) with the `vision_backbone` / `vit_layers` keys the golden
 * tiny checkpoints use for their small ViT. */
#include "config.h"

#include "engine/molmo.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "common/jb-stats.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dims {
    int d, H, K, L, I, E, V; /* LLM: width, heads, KV heads, layers, fused FFN rows, rows, vocab */
    int vD, vH, vL, vF;      /* ViT: width, heads, layers, MLP width */
    int qkv_bias, qk_norm, norm_after;
    double eps, theta;
    int X, top_k; /* MolmoE: experts of width I / 2 and how many run per token; 0 = dense */
};

/* tiny = the golden molmo-tiny-qwen2 sizes; small is about 4x the compute per token. The
 * released shapes are molmo.md §1's table (ViT-L/14-336 with 23 layers, §1.2). */
static const struct dims dims_of[] = {
    [MOLMO_INIT_TINY] = {64, 4, 2, 2, 256, 264, 264, 64, 4, 10, 128, 1, 0, 0, 1e-6, 1e6},
    [MOLMO_INIT_SMALL] = {128, 8, 4, 4, 768, 264, 264, 128, 8, 12, 256, 1, 0, 0, 1e-6, 1e6},
    [MOLMO_INIT_7B_O] = {4096, 32, 32, 32, 22016, 100352, 100278, 1024, 16, 23, 4096, 0, 1, 1,
                         1e-6, 5e5},
    [MOLMO_INIT_7B_D] = {3584, 28, 4, 28, 37888, 152064, 152064, 1024, 16, 23, 4096, 1, 0, 0,
                         1e-6, 1e6},
    [MOLMO_INIT_72B] = {8192, 64, 8, 80, 59136, 152064, 152064, 1024, 16, 23, 4096, 1, 0, 0,
                        1e-5, 1e6},
    /* OLMoE-1B-7B: mlp_ratio 1, so I = d and each of the 64 experts is I / 2 = 1024 wide */
    [MOLMO_INIT_MOLMOE_1B] = {2048, 16, 16, 16, 2048, 50304, 50280, 1024, 16, 23, 4096, 0, 1, 0,
                              1e-5, 1e4, 64, 8},
};

int molmo_init_size_parse(const char *s, enum molmo_init_size *out) {
    static const char *const names[] = {"tiny", "small", "7b-o", "7b-d", "72b", "molmoe-1b"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) return *out = (enum molmo_init_size)i, 0;
    return -1;
}

/* ---- safetensors ---- */

int molmo_safetensors_write(const char *path, int n, const char *const *name, const int *ndim,
                            const int64_t (*shape)[4], const float *const *data,
                            struct jb_err *err) {
    const uint32_t one = 1;
    if (*(const unsigned char *)&one != 1)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: safetensors writing needs a little-endian "
                          "machine",
                          path);
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    size_t *bytes = malloc(sizeof(size_t) * (size_t)(n ? n : 1));
    json_t *hdr = json_object();
    char *text = NULL, *buf = NULL;
    int rc = 0;
    if (!order || !bytes || !hdr) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* Insertion sort by name: a few hundred tensors at most. */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && strcmp(name[order[j - 1]], name[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        size_t numel = 1;
        json_t *sh = json_array();
        for (int a = 0; a < ndim[i]; a++) {
            numel *= (size_t)shape[i][a];
            json_array_append_new(sh, json_integer(shape[i][a]));
        }
        bytes[i] = numel * sizeof(float);
        json_object_set_new(hdr, name[i],
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", sh,
                                      "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + bytes[i])));
        off += bytes[i];
    }
    text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* The data area starts 8-byte aligned, as the reference writer pads it. */
    size_t hl = strlen(text), padded = (8 + hl + 7) / 8 * 8 - 8;
    size_t total = 8 + padded + off;
    buf = malloc(total);
    if (!buf) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: %zu bytes: out of memory", path, total);
        goto out;
    }
    uint64_t le = padded;
    memcpy(buf, &le, 8);
    memcpy(buf + 8, text, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    size_t pos = 8 + padded;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        memcpy(buf + pos, data[i], bytes[i]);
        pos += bytes[i];
    }
    rc = jb_file_write_atomic(path, buf, total, err);
out:
    free(order);
    free(bytes);
    free(text);
    free(buf);
    json_decref(hdr);
    return rc;
}

/* ---- weights ---- */

enum init_kind {
    INIT_ONES,   /* norm gains */
    INIT_ZEROS,  /* LayerNorm biases */
    INIT_SMALL,  /* embeddings and biases: uniform with sd 0.02 (config initializer_range) */
    INIT_LINEAR, /* weights [out, in]: uniform with sd 1/sqrt(in), so activations keep their
                  * scale through every layer and stay finite */
};

struct tensor {
    char name[160];
    int ndim;
    int64_t shape[4];
    enum init_kind kind;
    int shard; /* 0 = language model, 1 = vision side */
    float *data;
};

struct tlist {
    struct tensor *t;
    int n, cap;
};

static int add(struct tlist *l, int shard, enum init_kind kind, int64_t d0, int64_t d1,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int add(struct tlist *l, int shard, enum init_kind kind, int64_t d0, int64_t d1,
               const char *fmt, ...) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        struct tensor *t = realloc(l->t, sizeof *t * (size_t)cap);
        if (!t) return -1;
        l->t = t;
        l->cap = cap;
    }
    struct tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = d1 > 0 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->kind = kind;
    t->shard = shard;
    return 0;
}

/* molmo.md §2.1, dense (7B-D) names. */
static int tensor_list(struct tlist *l, const struct dims *m) {
    int rc = 0;
    const int hd = m->d / m->H, qkv = m->d + 2 * m->K * hd;
    for (int b = 0; b < m->L && m->X; b++) { /* MolmoE (§2.2): attn. and mlp. modules */
        const char *p = "model.transformer.blocks";
        rc |= add(l, 0, INIT_LINEAR, 3 * m->d, m->d, "%s.%d.attn.att_proj.weight", p, b);
        rc |= add(l, 0, INIT_ONES, m->d, 0, "%s.%d.attn.attn_norm.weight", p, b);
        rc |= add(l, 0, INIT_LINEAR, m->d, m->d, "%s.%d.attn.attn_out.weight", p, b);
        rc |= add(l, 0, INIT_ONES, m->d, 0, "%s.%d.attn.k_norm.weight", p, b);
        rc |= add(l, 0, INIT_ONES, m->d, 0, "%s.%d.attn.q_norm.weight", p, b);
        rc |= add(l, 0, INIT_ONES, m->d, 0, "%s.%d.mlp.ff_norm.weight", p, b);
        rc |= add(l, 0, INIT_LINEAR, m->X, m->d, "%s.%d.mlp.gate.weight", p, b);
        for (int e = 0; e < m->X; e++) {
            const char *q = "mlp.experts";
            int f = m->I / 2;
            rc |= add(l, 0, INIT_LINEAR, m->d, f, "%s.%d.%s.%d.down_proj.weight", p, b, q, e);
            rc |= add(l, 0, INIT_LINEAR, f, m->d, "%s.%d.%s.%d.gate_proj.weight", p, b, q, e);
            rc |= add(l, 0, INIT_LINEAR, f, m->d, "%s.%d.%s.%d.up_proj.weight", p, b, q, e);
        }
    }
    for (int b = 0; b < m->L && !m->X; b++) {
        const char *p = "model.transformer.blocks";
        if (m->qkv_bias) rc |= add(l, 0, INIT_SMALL, qkv, 0, "%s.%d.att_proj.bias", p, b);
        rc |= add(l, 0, INIT_LINEAR, qkv, m->d, "%s.%d.att_proj.weight", p, b);
        if (m->qk_norm) {
            rc |= add(l, 0, INIT_ONES, m->d, 0, "%s.%d.q_norm.weight", p, b);
            rc |= add(l, 0, INIT_ONES, m->K * hd, 0, "%s.%d.k_norm.weight", p, b);
        }
        rc |= add(l, 0, INIT_ONES, m->d, 0, "%s.%d.attn_norm.weight", p, b);
        rc |= add(l, 0, INIT_LINEAR, m->d, m->d, "%s.%d.attn_out.weight", p, b);
        rc |= add(l, 0, INIT_ONES, m->d, 0, "%s.%d.ff_norm.weight", p, b);
        rc |= add(l, 0, INIT_LINEAR, m->d, m->I / 2, "%s.%d.ff_out.weight", p, b);
        rc |= add(l, 0, INIT_LINEAR, m->I, m->d, "%s.%d.ff_proj.weight", p, b);
    }
    rc |= add(l, 0, INIT_LINEAR, m->E, m->d,
              m->X ? "lm_head.weight" : "model.transformer.ff_out.weight");
    rc |= add(l, 0, INIT_ONES, m->d, 0, "model.transformer.ln_f.weight");
    rc |= add(l, 0, INIT_SMALL, m->E, m->d, "model.transformer.wte.embedding");
    rc |= add(l, 0, INIT_SMALL, 128, m->d, "model.transformer.wte.new_embedding");

    const int D = m->vD;
    const char *v = "model.vision_backbone";
    const char *pool[] = {"wq", "wk", "wv"};
    for (int i = 0; i < 3; i++) {
        rc |= add(l, 1, INIT_SMALL, D, 0, "%s.image_pooling_2d.%s.bias", v, pool[i]);
        rc |= add(l, 1, INIT_LINEAR, D, 2 * D, "%s.image_pooling_2d.%s.weight", v, pool[i]);
    }
    rc |= add(l, 1, INIT_SMALL, D, 0, "%s.image_pooling_2d.wo.bias", v);
    rc |= add(l, 1, INIT_LINEAR, D, D, "%s.image_pooling_2d.wo.weight", v);
    rc |= add(l, 1, INIT_LINEAR, m->I / 2, D, "%s.image_projector.w1.weight", v);
    rc |= add(l, 1, INIT_LINEAR, m->d, m->I / 2, "%s.image_projector.w2.weight", v);
    rc |= add(l, 1, INIT_LINEAR, m->I / 2, D, "%s.image_projector.w3.weight", v);
    rc |= add(l, 1, INIT_SMALL, D, 0, "%s.image_vit.class_embedding", v);
    rc |= add(l, 1, INIT_LINEAR, D, 14 * 14 * 3, "%s.image_vit.patch_embedding.weight", v);
    rc |= add(l, 1, INIT_SMALL, 577, D, "%s.image_vit.positional_embedding", v);
    rc |= add(l, 1, INIT_ZEROS, D, 0, "%s.image_vit.pre_ln.bias", v);
    rc |= add(l, 1, INIT_ONES, D, 0, "%s.image_vit.pre_ln.weight", v);
    for (int n = 0; n < m->vL; n++) {
        const char *r = "image_vit.transformer.resblocks";
        const char *att[] = {"wk", "wo", "wq", "wv"};
        for (int i = 0; i < 4; i++) {
            rc |= add(l, 1, INIT_SMALL, D, 0, "%s.%s.%d.attention.%s.bias", v, r, n, att[i]);
            rc |= add(l, 1, INIT_LINEAR, D, D, "%s.%s.%d.attention.%s.weight", v, r, n, att[i]);
        }
        rc |= add(l, 1, INIT_ZEROS, D, 0, "%s.%s.%d.attention_norm.bias", v, r, n);
        rc |= add(l, 1, INIT_ONES, D, 0, "%s.%s.%d.attention_norm.weight", v, r, n);
        rc |= add(l, 1, INIT_SMALL, m->vF, 0, "%s.%s.%d.feed_forward.w1.bias", v, r, n);
        rc |= add(l, 1, INIT_LINEAR, m->vF, D, "%s.%s.%d.feed_forward.w1.weight", v, r, n);
        rc |= add(l, 1, INIT_SMALL, D, 0, "%s.%s.%d.feed_forward.w2.bias", v, r, n);
        rc |= add(l, 1, INIT_LINEAR, D, m->vF, "%s.%s.%d.feed_forward.w2.weight", v, r, n);
        rc |= add(l, 1, INIT_ZEROS, D, 0, "%s.%s.%d.ffn_norm.bias", v, r, n);
        rc |= add(l, 1, INIT_ONES, D, 0, "%s.%s.%d.ffn_norm.weight", v, r, n);
    }
    rc |= add(l, 1, INIT_SMALL, 2, 2 * D, "%s.pad_embed", v);
    return rc;
}

/* FNV-1a 64: each tensor's stream depends on the seed and its name only, not on list order. */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

/* A tensor's values, produced in pieces (the stream of one tensor never sits in memory). */
struct gen {
    enum init_kind kind;
    float a;
    uint64_t s;
};

/* Uniform on [-a, a) with a = sd * sqrt(3): 24 random bits scaled by powers of two, then one
 * float multiply, so no libm call and the same bits everywhere. */
static void gen_start(struct gen *g, const struct tensor *t, uint64_t seed) {
    g->kind = t->kind;
    g->a = 0;
    g->s = 0;
    if (t->kind == INIT_ONES || t->kind == INIT_ZEROS) return;
    /* sqrt(3) = 1.7320508; 1/sqrt(in) for the fan-ins used here, in double then rounded once. */
    double sd = t->kind == INIT_SMALL ? 0.02 : 1.0;
    if (t->kind == INIT_LINEAR) {
        double in = (double)t->shape[1], r = 1.0;
        for (int k = 0; k < 60; k++) r = 0.5 * (r + in / r); /* Newton: sqrt(in) */
        sd = 1.0 / r;
    }
    g->a = (float)(sd * 1.7320508075688772);
    g->s = seed ^ fnv1a(t->name);
}

static void gen_next(struct gen *g, float *out, size_t n) {
    if (g->kind == INIT_ONES || g->kind == INIT_ZEROS) {
        for (size_t i = 0; i < n; i++) out[i] = g->kind == INIT_ONES ? 1.0f : 0.0f;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t u = jb_splitmix64(&g->s) >> 40;            /* 24 bits */
        float v = (float)u * (1.0f / 8388608.0f) - 1.0f; /* [-1, 1), exact */
        out[i] = v * g->a;
    }
}

static size_t numel(const struct tensor *t) {
    return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
}

/* One shard, streamed: the header (names sorted, as molmo_safetensors_write does), then each
 * tensor generated and converted piece by piece, into path.tmp renamed into place. */
static int write_shard(const char *path, struct tensor *const *ts, int n, int bf16,
                       uint64_t seed, struct jb_err *err) {
    json_t *hdr = json_object();
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t es = bf16 ? 2 : 4, off = 0;
    for (int i = 0; i < n; i++) {
        json_t *sh = json_array();
        for (int a = 0; a < ts[i]->ndim; a++) json_array_append_new(sh, json_integer(ts[i]->shape[a]));
        size_t b = numel(ts[i]) * es;
        json_object_set_new(hdr, ts[i]->name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", bf16 ? "BF16" : "F32",
                                      "shape", sh, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + b)));
        off += b;
    }
    char *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    size_t pl = strlen(path) + 8;
    char *tmp = malloc(pl);
    enum { CHUNK = 1 << 18 };
    float *buf = malloc(CHUNK * sizeof(float));
    uint16_t *hb = malloc(CHUNK * sizeof(uint16_t));
    FILE *fp = NULL;
    int rc = 0;
    if (!text || !tmp || !buf || !hb) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    snprintf(tmp, pl, "%s.tmp", path);
    if (!(fp = fopen(tmp, "wb"))) {
        rc = jb_err_errno(err, errno, "%s: cannot create", tmp);
        goto out;
    }
    size_t hl = strlen(text), padded = (8 + hl + 7) / 8 * 8 - 8;
    uint64_t le = padded;
    int bad = fwrite(&le, 1, 8, fp) != 8 || fwrite(text, 1, hl, fp) != hl;
    for (size_t i = hl; i < padded && !bad; i++) bad = fputc(' ', fp) == EOF;
    for (int i = 0; i < n && !bad; i++) {
        struct gen g;
        gen_start(&g, ts[i], seed);
        for (size_t done = 0, total = numel(ts[i]); done < total && !bad;) {
            size_t k = total - done < CHUNK ? total - done : CHUNK;
            gen_next(&g, buf, k);
            if (bf16) {
                for (size_t j = 0; j < k; j++) hb[j] = molmo_f32_to_bf16(buf[j]);
                bad = fwrite(hb, 2, k, fp) != k;
            } else {
                bad = fwrite(buf, 4, k, fp) != k;
            }
            done += k;
        }
    }
    if (fclose(fp) != 0) bad = 1;
    fp = NULL;
    if (bad) {
        rc = jb_err_errno(err, errno ? errno : EIO, "%s: write failed", tmp);
        remove(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) rc = jb_err_errno(err, errno, "%s: cannot rename to %s", tmp, path);
out:
    if (fp) fclose(fp);
    free(text);
    free(tmp);
    free(buf);
    free(hb);
    return rc;
}

/* ---- JSON files ---- */

static int write_json(const char *dir, const char *name, json_t *root, struct jb_err *err) {
    /* %.9g keeps every float32 value (1e-06, 0.48145466) as it is spelled in the released
     * files; JSON_PRESERVE_ORDER keeps their key order. */
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text) return jb_err_set(err, JB_ENOMEM, "%s/%s: out of memory", dir, name);
    size_t pl = strlen(dir) + strlen(name) + 2;
    char *path = malloc(pl);
    int rc;
    if (!path) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
    } else {
        snprintf(path, pl, "%s/%s", dir, name);
        size_t len = strlen(text);
        text[len] = '\n'; /* the NUL is not written */
        rc = jb_file_write_atomic(path, text, len + 1, err);
    }
    free(path);
    free(text);
    return rc;
}

/* molmo.md §1.1 with the golden checkpoints' key set. */
static json_t *config_json(const struct dims *m, int bf16) {
    int vl0 = m->vL >= 9 ? -2 : -1, vl1 = m->vL >= 9 ? -9 : -m->vL;
    json_t *vb = json_pack(
        "{s:[i,i], s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:f}",
        "image_default_input_size", 336, 336, "image_patch_size", 14, "image_pos_patch_size", 14,
        "image_emb_dim", m->vD, "image_num_heads", m->vH, "image_num_key_value_heads", m->vH,
        "image_num_layers", m->vL, "image_head_dim", m->vD / m->vH, "image_mlp_dim", m->vF,
        "image_mlp_activations", "quick_gelu", "image_num_pos", 577, "image_norm_eps", 1e-05);
    return json_pack(
        "{s:[s], s:b, s:{s:s, s:s}, s:n, s:i, s:i, s:f, s:i, s:f, s:s, s:i, s:s, s:b, s:i, s:i,"
        " s:i, s:b, s:f, s:b, s:s, s:b, s:b, s:o, s:[i,i], s:i, s:b}",
        "architectures", "MolmoForCausalLM", "attention_layer_norm", m->qk_norm, "auto_map", "AutoConfig",
        "config_molmo.MolmoConfig", "AutoModelForCausalLM", "modeling_molmo.MolmoForCausalLM",
        "clip_qkv", "embedding_size", m->E, "hidden_size", m->d, "initializer_range", 0.02,
        "intermediate_size", m->I, "layer_norm_eps", m->eps, "layer_norm_type", "rms",
        "max_position_embeddings", 4096, "model_type", "molmo", "norm_after", m->norm_after,
        "num_attention_heads", m->H, "num_hidden_layers", m->L, "num_key_value_heads", m->K,
        "qkv_bias", m->qkv_bias, "rope_theta", m->theta, "tie_word_embeddings", 0, "torch_dtype",
        bf16 ? "bfloat16" : "float32", "use_cache", 1, "use_position_ids", 1, "vision_backbone",
        vb, "vit_layers", vl0, vl1,
        "vocab_size", m->V, "weight_tying", 0);
}

/* MolmoE-1B's OLMo-style config.json (molmo.md §1.1): the key set and fixed values of the
 * released file as the golden molmo-tiny-olmoe copies it; the sizes are set below. */
static json_t *olmo_config_json(const struct dims *m) {
    static const char tmpl[] =
        "{\"auto_map\": {\"AutoConfig\": \"config_molmoe.MolmoConfig\", \"AutoModelForCausalLM\":"
        " \"modeling_molmoe.MolmoForCausalLM\"}, \"activation_type\": \"swiglu\","
        " \"additional_vocab_size\": 128, \"alibi\": false, \"alibi_bias_max\": 8.0,"
        " \"always_start_with_space\": true, \"architectures\": [\"OLMoForCausalLM\"],"
        " \"attention_dropout\": 0.0, \"attention_layer_norm\": true,"
        " \"attention_layer_norm_with_affine\": true, \"attention_type\": \"sdpa\","
        " \"attn_logit_softcapping\": null, \"bias_for_layer_norm\": false,"
        " \"block_group_size\": 1, \"block_type\": \"moe\", \"clip_qkv\": null,"
        " \"crop_mode\": \"overlap-and-resize-c2\", \"d_model\": 0, \"default_inference_len\": 65,"
        " \"do_random_scale\": false, \"embedding_dropout\": 0.0, \"embedding_size\": 0,"
        " \"final_logit_softcapping\": null, \"fix_image_input_idx\": 2,"
        " \"float32_attention\": true, \"gin_bindings\": null, \"head_dim\": null,"
        " \"image_feature_dropout\": 0.0, \"image_padding_embed\": \"pad_and_partial_pad\","
        " \"image_pooling_2d\": \"attention-meanq\", \"image_pooling_h\": 2,"
        " \"image_pooling_w\": 2, \"image_projector\": \"mlp\", \"include_bias\": false,"
        " \"init_cutoff_factor\": 3.0, \"init_device\": \"meta\", \"init_fn\": \"normal\","
        " \"init_std\": 0.02, \"initializer_range\": 0.02, \"layer_norm_eps\": 1e-05,"
        " \"layer_norm_type\": \"rms\", \"layer_norm_with_affine\": true,"
        " \"llm_load_path\": null, \"loss_token_weighting\": \"root_subsegments\","
        " \"low_cpu_fsdp\": true, \"max_crops\": 12, \"max_position_embeddings\": 32768,"
        " \"max_sequence_length\": 4096, \"message_formatting\": \"role\","
        " \"mlp_hidden_size\": null, \"mlp_ratio\": 1, \"model_type\": \"molmo\","
        " \"moe_capacity_factor\": 1.25, \"moe_dropless\": true, \"moe_interleave\": false,"
        " \"moe_lbl_in_fp32\": false, \"moe_log_expert_assignment\": false,"
        " \"moe_loss_weight\": 0.0, \"moe_mlp_impl\": \"sparse\", \"moe_num_experts\": 0,"
        " \"moe_shared_expert\": false, \"moe_top_k\": 0, \"moe_zloss_weight\": 0.0,"
        " \"multi_query_attention\": null, \"n_heads\": 0, \"n_kv_heads\": null, \"n_layers\": 0,"
        " \"new_embedding_init_range\": 0.02, \"norm_after\": false,"
        " \"normalize_input_embeds\": false, \"overlap_margins\": [4, 4], \"pad_to\": null,"
        " \"pad_token_id\": 1, \"pad_tokenizer\": false, \"precision\": \"amp_bf16\","
        " \"prompt_override\": null, \"prompt_type\": \"uber_model\", \"qkv_bias\": false,"
        " \"query_pre_attn_scalar\": 224, \"residual_dropout\": 0.1,"
        " \"response_attention_dropout\": 0.0, \"response_residual_dropout\": 0.0,"
        " \"rope\": true, \"rope_full_precision\": true, \"rope_impl\": \"llama\","
        " \"rope_theta\": 10000.0, \"scale_logits\": false,"
        " \"system_prompt_kind\": \"demo_or_style\", \"transformers_version\": \"4.45.0.dev0\","
        " \"unconditioned\": false, \"use_cache\": true, \"use_cls_feature\": false,"
        " \"use_col_tokens\": true, \"use_position_ids\": true, \"vision_backbone\": {"
        " \"attention_dropout\": 0.0, \"fsdp_wrap\": false, \"image_default_input_size\":"
        " [336, 336], \"image_dropout_rate\": 0.0, \"image_emb_dim\": 0, \"image_head_dim\": 0,"
        " \"image_mlp_activations\": \"quick_gelu\", \"image_mlp_dim\": 0,"
        " \"image_model_type\": \"openai\", \"image_norm_eps\": 1e-05, \"image_num_heads\": 0,"
        " \"image_num_key_value_heads\": 0, \"image_num_layers\": 0, \"image_num_pos\": 577,"
        " \"image_patch_size\": 14, \"image_pos_patch_size\": 14, \"initializer_range\": 0.02,"
        " \"residual_dropout\": 0.0, \"resize_mode\": \"default\"}, \"vit_layers\": [-2, -9],"
        " \"vit_load_path\": null, \"vocab_size\": 0, \"weight_tying\": false}";
    json_t *c = json_loads(tmpl, 0, NULL);
    if (!c) return NULL;
    json_t *vb = json_object_get(c, "vision_backbone");
    const struct {
        json_t *o;
        const char *k;
        int v;
    } set[] = {
        {c, "d_model", m->d},
        {c, "embedding_size", m->E},
        {c, "moe_num_experts", m->X},
        {c, "moe_top_k", m->top_k},
        {c, "n_heads", m->H},
        {c, "n_layers", m->L},
        {c, "vocab_size", m->V},
        {vb, "image_emb_dim", m->vD},
        {vb, "image_head_dim", m->vD / m->vH},
        {vb, "image_mlp_dim", m->vF},
        {vb, "image_num_heads", m->vH},
        {vb, "image_num_key_value_heads", m->vH},
        {vb, "image_num_layers", m->vL},
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        json_object_set_new(set[i].o, set[i].k, json_integer(set[i].v));
    if (m->vL < 9) json_object_set_new(c, "vit_layers", json_pack("[i,i]", -1, -m->vL));
    return c;
}

/* molmo.md §1.3: identical for all released checkpoints. */
static json_t *preprocessor_json(void) {
    return json_pack("{s:[i,i], s:b, s:[f,f,f], s:b, s:i, s:s, s:[f,f,f], s:i, s:i, s:i, "
                     "s:[i,i], s:s}",
                     "base_image_input_size", 336, 336, "do_normalize", 1, "image_mean", 0.48145466,
                     0.4578275, 0.40821073, "image_padding_mask", 1, "image_patch_size", 14,
                     "image_processor_type", "MolmoImageProcessor", "image_std", 0.26862954,
                     0.26130258, 0.27577711, "image_token_length_h", 12, "image_token_length_w", 12,
                     "max_crops", 12, "overlap_margins", 4, 4, "processor_class", "MolmoProcessor");
}

/* GPT-2's byte alphabet: id i is the i-th symbol, the 188 printable bytes (! .. ~, ¡ .. ¬,
 * ® .. ÿ) as themselves first, then the other 68 bytes as U+0100.. in byte order. */
static unsigned byte_symbol(int i) {
    static int printable[188];
    int np = 0;
    for (int b = '!'; b <= '~'; b++) printable[np++] = b;
    for (int b = 0xA1; b <= 0xAC; b++) printable[np++] = b;
    for (int b = 0xAE; b <= 0xFF; b++) printable[np++] = b;
    return i < np ? (unsigned)printable[i] : 256u + (unsigned)(i - np);
}

static json_t *added(int id, const char *content) {
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1);
}

/* The golden tiny tokenizer's construction: byte-level BPE, 256 byte symbols, no merges, the
 * Qwen2 specials, filler up to the vocabulary size, then the image tokens at vocab_size + 0..4
 * (rows of new_embedding, molmo.md §3.1). */
static json_t *tokenizer_json(const struct dims *m) {
    json_t *at = json_array();
    json_array_append_new(at, added(256, "<|endoftext|>"));
    json_array_append_new(at, added(257, "<|im_start|>"));
    json_array_append_new(at, added(258, "<|im_end|>"));
    for (int id = 259; id < m->V; id++) {
        char s[40];
        snprintf(s, sizeof s, "|<EXTRA_TOKENS_%d>|", id - 259);
        json_array_append_new(at, added(id, s));
    }
    const char *img[] = {"<im_start>", "<im_end>", "<im_patch>", "<im_col>", "<|image|>"};
    for (int k = 0; k < 5; k++) json_array_append_new(at, added(m->V + k, img[k]));
    json_t *vocab = json_object();
    for (int i = 0; i < 256; i++) {
        unsigned c = byte_symbol(i);
        char u[4];
        if (c < 0x80) {
            u[0] = (char)c;
            u[1] = 0;
        } else {
            u[0] = (char)(0xC0 | (c >> 6));
            u[1] = (char)(0x80 | (c & 0x3F));
            u[2] = 0;
        }
        json_object_set_new(vocab, u, json_integer(i));
    }
    const char *split = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json_t *bl = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                           "trim_offsets", 0, "use_regex", 0);
    /* bl appears three times: "O" takes a reference each time, ours is dropped below. */
    json_t *t = json_pack(
        "{s:s, s:n, s:n, s:o, s:{s:s}, s:{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, O]}, s:O, s:O,"
        " s:{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:o, s:[]}}",
        "version", "1.0", "truncation", "padding", "added_tokens", at, "normalizer", "type", "NFC",
        "pre_tokenizer", "type", "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
        split, "behavior", "Isolated", "invert", 0, bl, "post_processor", bl, "decoder", bl,
        "model", "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix", "",
        "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0, "vocab", vocab, "merges");
    json_decref(bl);
    return t;
}

/* ---- the checkpoint ---- */

int molmo_init_model_write(const char *dir, const struct molmo_init_opts *o, struct jb_err *err) {
    if ((unsigned)o->size > MOLMO_INIT_MOLMOE_1B)
        return jb_err_set(err, JB_EINVAL, "init-model: unknown size %d", (int)o->size);
    struct dims dm = dims_of[o->size];
    if (o->layers > 0) dm.L = o->layers;
    if (o->vit_layers > 0) dm.vL = o->vit_layers;
    if (o->experts > 0 && dm.X) {
        dm.X = o->experts;
        if (dm.top_k > dm.X) dm.top_k = dm.X;
    }
    const struct dims *m = &dm;
    static const char *const shard_name[2] = {"model-00001-of-00002.safetensors",
                                              "model-00002-of-00002.safetensors"};
    struct tlist l = {0};
    struct tensor **sel = NULL;
    char *path = NULL;
    int rc = jb_mkdir_p(dir, err);
    if (rc) return rc;
    if (tensor_list(&l, m) != 0) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    sel = calloc((size_t)l.n, sizeof *sel);
    path = malloc(strlen(dir) + 64);
    if (!sel || !path) {
        rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        goto out;
    }
    int64_t total = 0;
    for (int i = 0; i < l.n; i++) total += (int64_t)(numel(&l.t[i]) * (o->bf16 ? 2 : 4));
    json_t *wmap = json_object();
    for (int s = 0; s < 2 && !rc; s++) {
        int k = 0;
        for (int i = 0; i < l.n; i++) { /* insertion sort by name */
            if (l.t[i].shard != s) continue;
            int j = k++;
            while (j > 0 && strcmp(sel[j - 1]->name, l.t[i].name) > 0) {
                sel[j] = sel[j - 1];
                j--;
            }
            sel[j] = &l.t[i];
            json_object_set_new(wmap, l.t[i].name, json_string(shard_name[s]));
        }
        sprintf(path, "%s/%s", dir, shard_name[s]);
        rc = write_shard(path, sel, k, o->bf16, o->seed, err);
    }
    if (rc) {
        json_decref(wmap);
        goto out;
    }
    /* The index lists names sorted, as the released indexes do. */
    json_t *sorted = json_object();
    const char **keys = calloc((size_t)l.n, sizeof *keys);
    int nk = 0;
    const char *key;
    json_t *val;
    json_object_foreach(wmap, key, val) {
        int j = nk++;
        while (j > 0 && strcmp(keys[j - 1], key) > 0) {
            keys[j] = keys[j - 1];
            j--;
        }
        keys[j] = key;
    }
    for (int i = 0; i < nk; i++) json_object_set(sorted, keys[i], json_object_get(wmap, keys[i]));
    free(keys);
    json_decref(wmap);
    rc = write_json(dir, "model.safetensors.index.json",
                    json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total,
                              "weight_map", sorted),
                    err);
    if (!rc)
        rc = write_json(dir, "config.json", m->X ? olmo_config_json(m) : config_json(m, o->bf16),
                        err);
    if (!rc) rc = write_json(dir, "preprocessor_config.json", preprocessor_json(), err);
    if (!rc)
        rc = write_json(dir, "generation_config.json",
                        json_pack("{s:i, s:i}", "eos_token_id", 256, "pad_token_id", 256), err);
    if (!rc) rc = write_json(dir, "tokenizer.json", tokenizer_json(m), err);
out:
    free(l.t);
    free(sel);
    free(path);
    return rc;
}
