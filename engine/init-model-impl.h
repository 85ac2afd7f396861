/* init-model-impl.h: writes a deterministic Molmo checkpoint in the released layout (the
 * Molmo-7B-D / Qwen2 layout of molmo.md §2.1, imitating ../shared/golden/molmo-tiny-qwen2):
 * config.json, preprocessor_config.json, generation_config.json, tokenizer.json (byte-level,
 * no merges) and two safetensors shards with their index. Weights come from a seeded PRNG, so
 * the same seed and size give the same bytes on every machine. Used by `joulebench init-model`
 * and by `joulebench run`'s embedded default.
 *
 *     struct molmo_init_opts o = {.seed = 1, .size = MOLMO_INIT_TINY};
 *     if (molmo_init_model_write("models/tiny", &o, &err) < 0) return err.code;
 */
#ifndef INIT_MODEL_IMPL_H
#define INIT_MODEL_IMPL_H

#include <stdint.h>

struct jb_err;

enum molmo_init_size {
    MOLMO_INIT_TINY,  /* the golden tiny sizes: LLM 64 wide x 2 layers, ViT 64 wide x 10 layers */
    MOLMO_INIT_SMALL, /* LLM 128 wide x 4 layers, ViT 128 wide x 12 layers */
    /* the released dense shapes (molmo.md §1), ViT-L/14-336 with 23 layers */
    MOLMO_INIT_7B_O,  /* OLMo: norm-after, QK-norm, no QKV bias */
    MOLMO_INIT_7B_D,  /* Qwen2-7B */
    MOLMO_INIT_72B,   /* Qwen2-72B */
    /* MolmoE-1B (OLMoE-1B-7B, molmo.md §2.2 names, OLMo-style config.json, lm_head.weight) */
    MOLMO_INIT_MOLMOE_1B,
};

struct molmo_init_opts {
    uint64_t seed;
    enum molmo_init_size size;
    int layers;     /* LLM blocks; 0 = the size's own */
    int vit_layers; /* ViT blocks; 0 = the size's own (vit_layers [-2, -9], or [-1, -N] below 9) */
    int bf16;       /* weights stored as BF16 (rounded to nearest even) instead of F32 */
    int experts;    /* MolmoE experts; 0 = the shape's 64 (top-k is capped at this) */
};

/* Parses "tiny", "small", "7b-o", "7b-d", "72b", "molmoe-1b"; -1 otherwise. */
int molmo_init_size_parse(const char *s, enum molmo_init_size *out);

/* Writes the checkpoint into dir (created if missing; existing files of the same names are
 * replaced atomically), streaming each shard so that no tensor is held in memory. Returns 0 or a JB_E* code with err naming the file. */
int molmo_init_model_write(const char *dir, const struct molmo_init_opts *o, struct jb_err *err);

/* Writes one safetensors file: tensors name[i] with shape shape[i][0..ndim[i]-1] of float32
 * data[i], sorted by name in the header, "__metadata__" {"format": "pt"}, the header padded
 * with spaces to a multiple of 8 bytes. */
int molmo_safetensors_write(const char *path, int n, const char *const *name, const int *ndim,
                            const int64_t (*shape)[4], const float *const *data,
                            struct jb_err *err);

#endif /* INIT_MODEL_IMPL_H */
