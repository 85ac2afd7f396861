/* molmo.h: the Molmo (0924 family) inference engine: checkpoints, tokenizer, image
 * preprocessing, vision transformer, connector, language model and greedy generation.
 * The engine knows nothing about energy: it reports phase boundaries through a callback.
 * Specification: shared/design/molmo.md.
 *
 *     struct molmo_model *m;
 *     if (molmo_model_load(&m, "Molmo-7B-D-0924", NULL, &err) < 0) return err.code;
 *     struct molmo_gen_opts o = {.max_new_tokens = 12};
 *     struct molmo_result r = {0};
 *     if (molmo_generate_file(m, "cat.jpg", "What is this?", &o, &r, &err) == 0) puts(r.text);
 *     molmo_result_free(&r);
 *     molmo_model_free(m);
 *
 *     float f[4];
 *     molmo_convert_to_f32(f, raw, MOLMO_DTYPE_BF16, 4);   // stored dtype -> working f32
 */
#ifndef MOLMO_H
#define MOLMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jb_err;

/* Element types a checkpoint may store (safetensors tags F32, BF16, F16, Q8_0). Q8_0 is a
 * block type (README "q8_0 checkpoints"): a 2-D tensor [out, in] with in a multiple of 32,
 * stored as out * in / 32 blocks of 34 bytes (binary16 scale, 32 int8). */
enum molmo_dtype {
    MOLMO_DTYPE_F32,
    MOLMO_DTYPE_BF16,
    MOLMO_DTYPE_F16,
    MOLMO_DTYPE_Q8_0,
};

/* Parses a safetensors dtype tag; returns 0, or -1 for a tag the engine does not read. */
int molmo_dtype_parse(const char *tag, enum molmo_dtype *out);

/* The tag of a dtype ("F32", "BF16", "F16", "Q8_0") and the size of one element in bytes:
 * 0 for the block type Q8_0, whose elements have no whole size (use molmo_dtype_bytes). */
const char *molmo_dtype_name(enum molmo_dtype dt);
size_t molmo_dtype_size(enum molmo_dtype dt);
/* Bytes of n consecutive elements of dtype dt: n * size, or n / 32 * 34 for Q8_0 (n must be
 * a multiple of 32 there: whole blocks; the loader only accepts rows of whole blocks). */
size_t molmo_dtype_bytes(enum molmo_dtype dt, size_t n);

/* Converts n little-endian elements of dtype dt at src to float32 at dst. BF16 is exact
 * (f32 bits = bf16 bits << 16); F16 is exact too, subnormals, infinities and NaN included.
 * Q8_0: src is n / 32 whole blocks (n a multiple of 32), each value d * q (exact). */
void molmo_convert_to_f32(float *dst, const void *src, enum molmo_dtype dt, size_t n);

/* Rounds float32 to bfloat16 bits, to nearest even (NaN stays NaN). */
uint16_t molmo_f32_to_bf16(float x);

/* ---- model ------------------------------------------------------------------------------- */

struct molmo_model; /* opaque: config, mapped weights, tokenizer, KV cache, scratch arena */

/* The decode kernel's x for q8_0 weights (README "q8_0 checkpoints"):
 *   INT16: x quantized per 32-block to int16 (exact int32 block sums; x's rounding <= 2^-16 of
 *          the block max), the default: as exact as F32 in practice and less arithmetic;
 *   F32:   each weight widened to float32 (exact up to the float32 sums);
 *   INT8:  x quantized per 32-block to int8 (llama.cpp's Q8_0 x Q8_0: least arithmetic, but
 *          x's rounding doubles the error). */
enum molmo_q8_act {
    MOLMO_Q8_ACT_INT16,
    MOLMO_Q8_ACT_F32,
    MOLMO_Q8_ACT_INT8,
};

struct molmo_load_opts {
    int max_seq;    /* KV cache capacity in tokens; 0 = config's max_position_embeddings */
    int max_crops;  /* crops per image buffers are sized for; 0 = 13 (12 + global) */
    int n_threads;  /* threads of OpenBLAS (prefill) and of the model's pool (decode);
                     * 0 = OpenBLAS's default */
    const char *kernels;  /* decode matvec kernels: NULL or "best" = the best the CPU runs,
                           * else "scalar", "avx2", "avx512" (never above what the CPU has) */
    enum molmo_q8_act q8_x; /* q8_0 weights at decode: how x meets the int8 weights (below;
                             * 0 = MOLMO_Q8_ACT_INT16, the default) */
    const char *activations; /* NULL or "f32": products use float32 activations; "bf16": every
                              * product with BF16 weights first rounds its input activations to
                              * bf16 (nearest even), as a vdpbf16ps kernel does */
};

/* Loads a checkpoint directory as released (config.json, model.safetensors.index.json and its
 * shards memory-mapped in their stored dtype, tokenizer.json, preprocessor_config.json,
 * generation_config.json) and sizes every buffer a generation needs. opts may be NULL. Errors
 * name the file and the tensor or field. */
int molmo_model_load(struct molmo_model **out, const char *dir, const struct molmo_load_opts *opts,
                     struct jb_err *err);
void molmo_model_free(struct molmo_model *m); /* NULL is a no-op */

/* Bytes of weight files mapped, and of scratch (KV cache and activations) reserved at load. */
size_t molmo_model_file_bytes(const struct molmo_model *m);
size_t molmo_model_scratch_bytes(const struct molmo_model *m);

/* The number of threads the matrix products run on (the load option, or OpenBLAS's own
 * default when it was 0), for the records. */
int molmo_model_n_threads(const struct molmo_model *m);

/* The decode matvec kernels chosen at load from CPUID ("scalar", "avx2+fma",
 * "avx512-bf16/vnni"): T = 1 products on F32 and BF16 weights run on them. */
const char *molmo_model_kernel_name(const struct molmo_model *m);

/* The LLM weights' dtype as the decode products read them: "F32", "BF16", "F16", or for
 * q8_0 checkpoints "Q8_0 x int16" (the default), "Q8_0 x f32" or "Q8_0 x int8" (load option
 * q8_x). */
const char *molmo_model_weights_name(const struct molmo_model *m);

/* ---- generation --------------------------------------------------------------------------- */

enum molmo_phase {
    MOLMO_PHASE_PREPROCESS,  /* image decode, crops, tokenization */
    MOLMO_PHASE_VISION,      /* ViT + connector over every crop */
    MOLMO_PHASE_PREFILL,     /* the LLM over the whole prompt */
    MOLMO_PHASE_DECODE,      /* all decode steps */
    MOLMO_PHASE_DECODE_STEP, /* one decode step; step = its index from 0 */
};
#define MOLMO_N_PHASES 5

/* Called at the beginning (begin = true) and the end of each phase, on the calling thread.
 * step is the decode step index for MOLMO_PHASE_DECODE_STEP, else -1. */
typedef void (*molmo_phase_fn)(void *user, enum molmo_phase phase, bool begin, int step);

struct molmo_gen_opts {
    int max_new_tokens;      /* token budget; 0 = 12 */
    bool no_stop;            /* ignore EOS: always generate max_new_tokens */
    molmo_phase_fn on_phase; /* may be NULL */
    void *user;
    const char *dump_dir;    /* when set, stage tensors are written there as .npy with the
                                golden names (input_ids, images, ..., decode_logits) */
};

struct molmo_result {
    char *text;               /* the answer, special tokens skipped (malloc'd) */
    int32_t *ids;             /* generated ids, EOS included when it stopped there (malloc'd) */
    size_t n_ids;
    size_t n_prompt_tokens;   /* BOS + image + text tokens */
    size_t n_image_tokens;
    int n_crops;
    bool stopped_on_eos;
    double phase_s[MOLMO_N_PHASES]; /* seconds per phase (DECODE_STEP: the sum of steps) */
};

/* Answers prompt about an image given as a file path, or as encoded PNG/JPEG bytes (name is
 * used in messages). The prompt becomes " User: " + prompt + " Assistant:" after the image
 * tokens (molmo.md §3.2); greedy decoding stops on EOS or the token budget. The model is
 * reusable: call again for the next sample. r must be zeroed or freed before the call. */
int molmo_generate_file(struct molmo_model *m, const char *image_path, const char *prompt,
                        const struct molmo_gen_opts *o, struct molmo_result *r,
                        struct jb_err *err);
int molmo_generate_bytes(struct molmo_model *m, const void *image, size_t len, const char *name,
                         const char *prompt, const struct molmo_gen_opts *o,
                         struct molmo_result *r, struct jb_err *err);
void molmo_result_free(struct molmo_result *r); /* frees and zeroes; NULL is a no-op */

/* The phase's name ("preprocess", "vision", "prefill", "decode", "decode_step"). */
const char *molmo_phase_name(enum molmo_phase p);

/* ---- work counted from the shapes (engine/costs.c, README "Work counters") ---------------- */

/* What one crop, one token and one position cost, from the loaded checkpoint's shapes. A
 * multiply-add is 2 FLOP; bytes are of the weights as stored (BF16 2, Q8_0 34 per 32). */
struct molmo_costs {
    double vit_flop_per_crop;          /* patch embedding + the ViT blocks that run */
    double connector_flop_per_crop;    /* attention pooling + projector over the windows */
    double vision_weight_bytes_per_crop; /* ViT blocks that run + connector weights */
    double llm_macs_per_token;         /* every LLM product but the output head (MoE: top_k) */
    double head_macs, head_bytes;      /* the output head, per position it runs on */
    double llm_weight_bytes_per_token; /* LLM products one decode step reads (MoE: top_k) */
    double llm_weight_bytes_all;       /* every LLM product's weights (MoE: all experts) */
    double attn_macs_per_position;     /* q.k + p.v per token per context position, all layers */
};
void molmo_model_costs(const struct molmo_model *m, struct molmo_costs *out);

/* The work of one generation r (its crops, prompt and generated tokens): FLOP per phase and
 * the bytes of weights read (vision once per crop; prefill every LLM weight once plus the head;
 * each decode step the LLM products of one token plus the head). Deterministic. */
struct molmo_work {
    double vision_flop, prefill_flop, decode_flop;
    double vision_weight_bytes, prefill_weight_bytes, decode_weight_bytes;
};
void molmo_work_count(const struct molmo_model *m, const struct molmo_result *r,
                      struct molmo_work *out);

#endif /* MOLMO_H */
