/* model-impl.h: engine-internal types shared by the checkpoint loader, the vision side, the
 * language model and generation (not part of the public API; tests include it to run one
 * stage at a time on the golden inputs). Specification: shared/design/molmo.md.
 *
 *     struct molmo_model *m;
 *     molmo_model_load(&m, "golden/molmo-tiny-qwen2", NULL, &err);
 *     molmo_vit_forward(m, patches, feats, NULL);        // one crop, §5
 *     molmo_connector_forward(m, feats, mask, pooled, image_feats);   // §6
 *     molmo_model_free(m);
 */
#ifndef MOLMO_MODEL_IMPL_H
#define MOLMO_MODEL_IMPL_H

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "engine/kernels-impl.h"
#include "engine/molmo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOLMO_MAX_DIMS 4

/* One tensor of a checkpoint, used in place: data points into a mapped shard (or, for small
 * tensors converted at load, into an owned float32 buffer with dt == F32). */
struct molmo_tensor {
    const char *name;      /* owned by the safetensors set */
    const void *data;
    enum molmo_dtype dt;
    int ndim;
    int64_t shape[MOLMO_MAX_DIMS];
    size_t numel;
};

/* ---- config (§1.1, §1.2) ---------------------------------------------------------------- */

struct molmo_config {
    /* language model */
    int d_model, n_layers, n_heads, n_kv_heads, head_dim;
    int ffn_rows;              /* fused up+gate rows I; inner width I/2 */
    bool moe;                  /* block_type "moe" (§7.5): experts of inner width I/2 */
    int n_experts, top_k;      /* moe_num_experts, moe_top_k; 0 when dense */
    int vocab_size, embedding_size, n_new_embed;
    float norm_eps, rope_theta;
    bool qkv_bias, qk_norm, norm_after;
    int max_position_embeddings;
    /* vision backbone */
    int image_size_h, image_size_w, patch;  /* 336, 336, 14 */
    int vit_dim, vit_heads, vit_head_dim, vit_layers, vit_mlp, vit_num_pos;
    float vit_eps;
    int vit_layer_a, vit_layer_b;           /* resolved 0-based blocks of vit_layers[0], [1] */
    /* generation_config.json */
    int eos_id, pad_id;                     /* -1 when absent */
    /* what the records say of the checkpoint (molmo_model_info) */
    char torch_dtype[16];                   /* "bfloat16" ..., "unknown" when absent */
    char config_sha256[65];                 /* of config.json's bytes */
};

/* Pooled tokens per crop: (grid_h / 2) x (grid_w / 2) = 144 for 336 px and 14 px patches. */
static inline int molmo_config_n_pooled(const struct molmo_config *c) {
    return (c->image_size_h / c->patch / 2) * (c->image_size_w / c->patch / 2);
}

/* Reads dir/config.json (both key spellings) and dir/generation_config.json (optional).
 * Rejects unsupported settings naming the field. */
int molmo_config_load(struct molmo_config *c, const char *dir, struct jb_err *err);

/* ---- the checkpoint: safetensors shards or a .bin (§2, engine/checkpoint.c) ------------ */

struct molmo_ckpt;   /* every shard of a checkpoint, mapped */

/* Opens dir/model.safetensors.index.json and every shard it names, validating headers,
 * offsets, sizes and that every indexed name is present in its shard. A directory without the
 * index but with pytorch_model.bin (MolmoE-1B as released) is read through engine/torchbin.c
 * instead: the same table, tensors in place in the mapped .bin. */
int molmo_ckpt_open(struct molmo_ckpt **out, const char *dir, struct jb_err *err);
/* The tensors in file order (shard by shard, header order; the pickle order of a .bin). */
size_t molmo_ckpt_count(const struct molmo_ckpt *s);
const struct molmo_tensor *molmo_ckpt_get(const struct molmo_ckpt *s, size_t i);
/* Like molmo_ckpt_find, and marks the tensor used (see molmo_ckpt_first_unused). */
const struct molmo_tensor *molmo_ckpt_use(struct molmo_ckpt *s, const char *name);
/* Reads every byte of a .bin checkpoint checking the zip CRCs (0 for safetensors, which has
 * none). */
int molmo_ckpt_verify(const struct molmo_ckpt *s, struct jb_err *err);
/* The first tensor in file order no molmo_ckpt_use asked for, or NULL. */
const char *molmo_ckpt_first_unused(const struct molmo_ckpt *s);
void molmo_ckpt_close(struct molmo_ckpt *s);
/* The tensor called name, or NULL. */
const struct molmo_tensor *molmo_ckpt_find(const struct molmo_ckpt *s, const char *name);
/* The shard file (basename) holding tensor name, for messages. */
const char *molmo_ckpt_file_of(const struct molmo_ckpt *s, const char *name);
/* Total bytes of the mapped shard files. */
size_t molmo_ckpt_bytes(const struct molmo_ckpt *s);

/* ---- weights ---------------------------------------------------------------------------- */

struct molmo_vit_block {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;       /* [D], converted at load */
    const float *bq, *bk, *bv, *bo, *b1, *b2;
    struct molmo_tensor wq, wk, wv, wo, w1, w2;       /* stored dtype */
};

/* One expert of a mixture-of-experts block (§7.5): f = ffn_rows / 2. */
struct molmo_expert {
    struct molmo_tensor gate_proj, up_proj;   /* [f, d] */
    struct molmo_tensor down_proj;            /* [d, f] */
};

struct molmo_llm_block {
    const float *attn_norm, *ff_norm, *q_norm, *k_norm, *qkv_b;   /* q_norm/k_norm/qkv_b NULL
                                                                      when absent */
    struct molmo_tensor att_proj, attn_out, ff_proj, ff_out;   /* ff_* absent for MoE */
    struct molmo_tensor router;                                 /* MoE: gate [X, d] */
    struct molmo_expert *experts;                               /* MoE: [X], else NULL */
};

struct molmo_weights {
    /* vision */
    struct molmo_tensor patch_embed;      /* [D, 588] */
    const float *class_embed;             /* [D] */
    const float *pos_embed;               /* [num_pos, D] */
    const float *pre_ln_w, *pre_ln_b;
    struct molmo_vit_block *vit;          /* [vit_layers] */
    const float *pad_embed;               /* [2, 2D] */
    struct molmo_tensor pool_wq, pool_wk, pool_wv, pool_wo;
    const float *pool_bq, *pool_bk, *pool_bv, *pool_bo;
    struct molmo_tensor proj_w1, proj_w2, proj_w3;
    /* language model */
    struct molmo_tensor wte, wte_new;     /* [E, d], [128, d] */
    struct molmo_llm_block *blocks;       /* [n_layers] */
    const float *ln_f;
    struct molmo_tensor lm_head;          /* ff_out [E, d] (MolmoE: lm_head.weight) */
    struct molmo_expert *experts;         /* [n_layers * n_experts], owned; NULL when dense */
};

/* A bump allocator over one block allocated at load; reset per stage, never freed in the
 * forward pass. */
struct molmo_arena {
    char *base;
    size_t cap, used, high;
    /* load option activations = "bf16": products with BF16 weights (molmo_linear,
     * molmo_model_linear) round their input rows to bf16 first, into scratch taken here */
    bool bf16_x;
};

struct molmo_tokenizer;
struct molmo_gen_ctx;

struct molmo_model {
    char *dir;
    struct molmo_config cfg;
    struct molmo_ckpt *st;
    struct molmo_weights w;
    float *owned;                 /* small tensors converted to f32 at load */
    size_t owned_used, owned_cap;
    int max_seq;                  /* KV cache capacity in positions */
    int max_crops;
    /* persistent buffers */
    float *kv;                    /* [n_layers][2][max_seq][K*hd] */
    int n_cached;                 /* positions in the KV cache */
    float *rope_inv_freq;         /* [hd/2] */
    float *image_features;        /* [max_crops, n_pooled, d] */
    float *vit_features;          /* [n_patches, 2D]: one crop between ViT and connector */
    float *logits;                /* [E] */
    struct molmo_arena arena;     /* persistent buffers above, then per-stage scratch */
    size_t arena_base_mark;       /* where the per-stage scratch starts */
    int n_threads;
    struct jb_pool *pool;         /* n_threads threads, pinned: the decode matvecs */
    struct molmo_kernels kern;    /* chosen at load (CPUID, opts->kernels) */
    enum molmo_q8_act q8_x;       /* q8_0 decode kernel's x (opts->q8_x) */
    float *q8x_d;                 /* [q8x_cap / 32]: decode x quantized for q8_0 weights */
    void *q8x_q;                  /* [q8x_cap] int16 (or int8 for MOLMO_Q8_ACT_INT8) */
    int q8x_cap;
    struct molmo_tokenizer *tok;  /* NULL when loaded by molmo_model_load_weights alone */
    struct molmo_gen_ctx *gen;    /* preprocessing config, special ids (engine/generate.c) */
    char bind_missing[160];       /* the first tensor name loading looked for and missed */
};

/* Prefill rows per feed-forward chunk, query rows per attention chunk (bound the scratch). */
#define MOLMO_FFN_CHUNK 256
/* Prefill rows per mixture-of-experts chunk: each expert's weights are read once per chunk. */
#define MOLMO_MOE_CHUNK 1024
#define MOLMO_ATT_CHUNK 128

/* A checkpoint directory holding this file (sha256sum format) has every file it lists checked
 * at load; a mismatch is an error naming the file (the shipped default models have one). */
#define MOLMO_SHA256_MANIFEST "SHA256SUMS"

void molmo_model_free_weights(struct molmo_model *m);

/* ---- stages (one call each, on float32 activations) -------------------------------------- */

/* §5 on one crop: patches [576, 588] -> features [576, 2D] (h[vit_layers[0]] then
 * h[vit_layers[1]], CLS dropped); cls [2D] receives the CLS row when not NULL. */
int molmo_vit_forward(struct molmo_model *m, const float *patches, float *features, float *cls,
                      struct jb_err *err);

/* §6 on one crop: features [576, 2D] + mask row [576] -> pooled [144, D] (may be NULL) and
 * image features [144, d]. */
int molmo_connector_forward(struct molmo_model *m, const float *features, const float *mask,
                            float *pooled, float *image_features, struct jb_err *err);

/* §7 over a whole prompt from position 0: embeds ids [T], adds image_features [n_crops, 144, d]
 * at image_input_idx [n_crops, 144] (n_crops may be 0), fills the KV cache for positions
 * 0..T-1, and writes the logits of every position to logits_all [T, E] when not NULL and of the
 * last one to logits_last [E]. */
int molmo_llm_prefill(struct molmo_model *m, const int32_t *ids, int T, const float *image_features,
                      const int32_t *image_input_idx, int n_crops, float *logits_all,
                      float *logits_last, struct jb_err *err);

/* One cached decode step: token id at the next position (m->n_cached) -> logits [E]. */
int molmo_llm_decode(struct molmo_model *m, int32_t id, float *logits, struct jb_err *err);

/* Greedy choice over n logits: the largest, the lowest id on ties. */
int32_t molmo_argmax(const float *logits, int n);

/* ---- kernels (engine/kernels.c) ---------------------------------------------------------- */

void *molmo_arena_alloc(struct molmo_arena *a, size_t bytes);
static inline size_t molmo_arena_mark(const struct molmo_arena *a) { return a->used; }
static inline void molmo_arena_reset(struct molmo_arena *a, size_t mark) { a->used = mark; }

/* y [T, out] = x [T, in] · Wᵀ (+ b) with W [out, in] in its stored dtype; F16/BF16/Q8_0 rows
 * are converted tile by tile into scratch from the arena (exact conversion). ldy = out. */
void molmo_linear(struct molmo_arena *a, float *y, const float *x, int T,
                  const struct molmo_tensor *w, const float *b);
/* molmo_linear on the model's pool: a single row (T == 1, a decode step) with F32, BF16 or
 * Q8_0 weights runs on the matvec kernels, reading the weights in place (Q8_0: x quantized to
 * int16 blocks by default, kept float32 or quantized to int8 per opts->q8_x); anything else on
 * molmo_linear_pool. */
void molmo_model_linear(struct molmo_model *m, float *y, const float *x, int T,
                        const struct molmo_tensor *w, const float *b);
/* The float32 value of rows [r0, r0+n) of a 2-D tensor into dst [n, cols]. */
void molmo_tensor_rows(float *dst, const struct molmo_tensor *t, size_t r0, size_t n);
void molmo_layernorm(float *y, const float *x, const float *g, const float *b, int T, int D,
                     float eps);
void molmo_rmsnorm(float *y, const float *x, const float *g, int T, int D, float eps);
void molmo_softmax(float *x, int n);

/* Floats a weight-tile conversion can need at most (sizes the arena). */
size_t molmo_linear_scratch_floats(int in_dim);

/* dst[i] = src[i] rounded to the nearest bf16 (ties to even; NaN stays NaN), as float32. dst
 * may equal src. */
void molmo_round_bf16(float *dst, const float *src, size_t n);

/* ---- on the model's pool (engine/parallel.c) ---------------------------------------------- */

/* An activation fused into molmo_linear_pool. */
/* Input rows rounded to bf16 at a time under bf16 activations (arena.bf16_x): the x of one
 * sgemm, in molmo_linear and molmo_linear_pool alike (molmo_linear_scratch_floats counts it). */
#define MOLMO_BF16_X_ROWS ((size_t)1024)

enum molmo_act { MOLMO_ACT_NONE, MOLMO_ACT_QUICK_GELU };

/* OpenBLAS on one thread (single != 0, for sgemm inside pool jobs) or on m->n_threads. */
void molmo_blas_threads(const struct molmo_model *m, int single);
/* molmo_linear, then act, with the rows of W (the columns of y) split over m->pool: each thread
 * widens its tiles of W into its own scratch (arena: molmo_linear_scratch_floats(in) floats per
 * thread) and multiplies them on a single-threaded sgemm; bias and act on its own columns.
 * With arena.bf16_x and BF16 weights, x is rounded to bf16 first, as in molmo_linear. Values
 * as molmo_linear's plus act, up to how sgemm blocks the sums. */
void molmo_linear_pool(struct molmo_model *m, float *y, const float *x, int T,
                       const struct molmo_tensor *w, const float *b, enum molmo_act act);
/* molmo_layernorm with the T rows split over the pool (same results). y must not alias x in
 * another thread's rows (y == x is fine). */
void molmo_layernorm_pool(struct molmo_model *m, float *y, const float *x, const float *g,
                          const float *b, int T, int D, float eps);
/* y[i] += x[i] for i < n, split over the pool. */
void molmo_add_pool(struct molmo_model *m, float *y, const float *x, size_t n);

#endif /* MOLMO_MODEL_IMPL_H */
