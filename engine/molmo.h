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

/* What the records say of a loaded checkpoint: config.json's digest and torch_dtype, the
 * parameters (elements of every tensor in the checkpoint, counted from their shapes), the bytes
 * of its weight files, the threads. */
struct molmo_model_info {
    char config_sha256[65];
    const char *torch_dtype; /* "bfloat16", "float32" ..., "unknown" when config.json has none */
    double n_params;
    size_t file_bytes;
    int n_threads;
};
void molmo_model_info(const struct molmo_model *m, struct molmo_model_info *out);

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
    double kv_bytes_per_position;      /* the KV cache (float32 K and V, every layer) */
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

/* ---- tokenizer.json: byte-level BPE (engine/tokenizer.c) --------------------------------- */

/* byte-level BPE tokenizers as Hugging Face `tokenizers` reads them from a
 * tokenizer.json (molmo.md §3.1). Qwen2, dolma2 (cl100k) and GPT-NeoX style
 * files: added tokens, NFC, Split/ByteLevel pre-tokenizers, merges by rank, byte alphabet.
 *
 *     struct molmo_tokenizer *tok = NULL;
 *     if (molmo_tokenizer_load(&tok, "dir/tokenizer.json", &err) < 0) return err.code;
 *     int32_t *ids; size_t n;
 *     if (molmo_tokenizer_encode(tok, " User: Hi Assistant:", 20, &ids, &n, &err) == 0) ...
 *     free(ids); molmo_tokenizer_free(tok);
 *
 * A loaded tokenizer is immutable: encode, decode and token_id may run on several threads at
 * once (each encode call keeps its own scratch and word cache).
 */

struct molmo_tokenizer; /* opaque */

/* Loads a Hugging Face tokenizer.json (byte-level BPE). A feature of the file this
 * implementation does not reproduce exactly (another model type, normalizer, pre-tokenizer,
 * decoder, truncation, ...) is a JB_EUNSUPPORTED error naming the file and the field; a
 * malformed file is JB_EFORMAT naming the file (and line:column for JSON syntax). */
int molmo_tokenizer_load(struct molmo_tokenizer **out, const char *path, struct jb_err *err);
void molmo_tokenizer_free(struct molmo_tokenizer *tok); /* NULL is a no-op */

/* Encodes UTF-8 text of len bytes as tokenizer.encode(text, add_special_tokens=False) does:
 * added tokens matched inside the text, normalizer, pre-tokenizer, BPE. *ids is malloc'd (NULL
 * with *n_ids = 0 for empty output). Invalid UTF-8 is JB_EINVAL naming the byte offset. */
int molmo_tokenizer_encode(const struct molmo_tokenizer *tok, const char *text, size_t len,
                           int32_t **ids, size_t *n_ids, struct jb_err *err);

/* Decodes ids to UTF-8 (malloc'd, NUL-terminated). skip_special drops added tokens marked
 * special. An id outside the vocabulary is an error naming it. As `tokenizers` does, bytes
 * that do not form valid UTF-8 (a multi-byte character cut between ids) become U+FFFD. */
int molmo_tokenizer_decode(const struct molmo_tokenizer *tok, const int32_t *ids, size_t n,
                           bool skip_special, char **text, struct jb_err *err);

/* Like molmo_tokenizer_decode but the raw bytes, without the U+FFFD repair (for streaming
 * output token by token); *len_out gets the length, the buffer is still NUL-terminated. */
int molmo_tokenizer_decode_bytes(const struct molmo_tokenizer *tok, const int32_t *ids, size_t n,
                                 bool skip_special, char **bytes, size_t *len_out,
                                 struct jb_err *err);

/* The id of a token looked up by content ("<im_patch>", "<|endoftext|>"), in added_tokens
 * first, then the vocabulary (byte-level form, "Ġthe"); -1 if absent. */
int32_t molmo_tokenizer_token_id(const struct molmo_tokenizer *tok, const char *content);

/* Number of ids the tokenizer knows (max id + 1 over vocab and added tokens). */
size_t molmo_tokenizer_n_ids(const struct molmo_tokenizer *tok);

/* Whether id is an added token marked "special" (false for other or unknown ids). */
bool molmo_tokenizer_is_special(const struct molmo_tokenizer *tok, int32_t id);

/* ---- PyTorch .bin checkpoints, read without running them (engine/torchbin.c) ------------- */

/* PyTorch `torch.save` checkpoints (`pytorch_model.bin`, as MolmoE-1B ships)
 * read in C, without Python and without running anything the file asks for.
 *
 *     struct molmo_torchbin *tb;
 *     if (molmo_torchbin_open(&tb, "pytorch_model.bin", &err) < 0) return err.code;
 *     const struct molmo_torchbin_tensor *t = molmo_torchbin_find(tb, "lm_head.weight");
 *     if (t) use(t->data, t->dtype, t->shape, t->ndim);   // valid until molmo_torchbin_close
 *     molmo_torchbin_close(tb);
 *
 * The file is a zip archive of stored (uncompressed) entries: `<archive>/data.pkl`, a pickled
 * dict {name: tensor}, and `<archive>/data/<key>`, one raw little-endian storage per key. The
 * pickle is read by a restricted unpickler that knows a fixed set of opcodes and exactly the
 * globals torch.save writes for a state dict of float tensors (collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_tensor, torch.{Float,BFloat16,Half}Storage);
 * anything else is an error naming the global or the opcode. Nothing is ever called or imported.
 * Specification: shared/design/molmo.md §2; the format notes are at the top of torchbin.c.
 */

#define MOLMO_TORCHBIN_MAX_DIMS 8

struct molmo_torchbin_tensor {
    char *name;             /* state-dict key, e.g. "model.transformer.ln_f.weight" */
    enum molmo_dtype dtype; /* F32, BF16 or F16 (from the storage class) */
    int ndim;               /* 0 (a scalar) .. MOLMO_TORCHBIN_MAX_DIMS */
    int64_t shape[MOLMO_TORCHBIN_MAX_DIMS];
    const void *data; /* C-order elements, little-endian. Points into the mapped file when
                         the tensor is contiguous and aligned to its element size (always
                         so for torch.save output), else into an owned copy in C order.
                         NULL when nbytes == 0. */
    size_t nbytes;    /* numel * dtype size */
};

struct molmo_torchbin; /* opaque: the mapping, the zip directory, the tensor table */

/* Maps path, reads the zip directory and data.pkl (CRC-checked), and builds the tensor table.
 * Every offset, size, stride and index is bounds-checked against the file; storages are not
 * read (nor CRC-checked: see molmo_torchbin_verify), so opening a 29 GB file touches only its
 * directory, its pickle and one local header per storage. Errors: JB_EIO/JB_ENOTFOUND (open),
 * JB_EFORMAT (malformed zip or pickle, a byte that is no pickle opcode, a storage too short for
 * its tensor, a value that is not a tensor), JB_EUNSUPPORTED (a global or a pickle opcode the
 * restricted unpickler refuses, a compressed entry, big-endian data, a storage dtype other than
 * F32/BF16/F16), JB_ENOTFOUND (a storage entry the pickle names is missing), JB_ENOMEM.
 * Messages start with the path and, for the pickle, give the byte offset and the opcode:
 * "F.bin: archive/data.pkl at byte 2 (GLOBAL): global posix.system is not allowed: ...".
 * On error *out is NULL. */
int molmo_torchbin_open(struct molmo_torchbin **out, const char *path, struct jb_err *err);

/* Unmaps the file and frees the table and every owned copy; NULL is a no-op. */
void molmo_torchbin_close(struct molmo_torchbin *tb);

/* The tensors in the pickle's (state-dict) order. get returns NULL for i >= count. */
size_t molmo_torchbin_count(const struct molmo_torchbin *tb);
const struct molmo_torchbin_tensor *molmo_torchbin_get(const struct molmo_torchbin *tb, size_t i);

/* The tensor with this exact name, or NULL (binary search over a sorted index). */
const struct molmo_torchbin_tensor *molmo_torchbin_find(const struct molmo_torchbin *tb,
                                                        const char *name);

/* The byte offset of t's data in the file, or -1 when t->data is an owned copy (or empty). */
int64_t molmo_torchbin_file_offset(const struct molmo_torchbin *tb,
                                   const struct molmo_torchbin_tensor *t);

/* Checks the CRC-32 of every entry of the archive against its central-directory record. It
 * reads the whole file: zlib's crc32 ran at 0.5-0.6 GB/s on the 2-core build machine, so about a
 * minute for MolmoE-1B's 28.9 GB; meant for `convert` or `joulebench tensors --verify`, not for
 * every load. Errors: JB_EFORMAT naming the first entry whose CRC differs. */
int molmo_torchbin_verify(const struct molmo_torchbin *tb, struct jb_err *err);

/* ---- rewriting a checkpoint (engine/convert.c) ------------------------------------------- */

/* rewrites any checkpoint the engine loads (safetensors shards, or the
 * pytorch_model.bin MolmoE-1B ships) as a safetensors checkpoint directory: shards, their index,
 * and every non-weight file of the source (configs, tokenizer) copied. Used by `joulebench
 * convert`. A .bin is read once here (CRC-checked) so later loads just map the shards.
 *
 *     struct molmo_convert_opts o = {.dtype = MOLMO_CONVERT_BF16};
 *     if (molmo_convert(src, dst, &o, &err) < 0) return err.code;
 */

/* What the tensors are written as. One case per target in engine/convert.c (convert_rows). */
enum molmo_convert_dtype {
    MOLMO_CONVERT_F32,  /* exact for every stored dtype: an F32 source is copied bit for bit */
    MOLMO_CONVERT_BF16, /* round to nearest even (a BF16 source is copied) */
    MOLMO_CONVERT_Q8_0, /* the linear layers' weight matrices and the token embedding whose rows
                         * are whole 32-blocks -> Q8_0 (kernels-impl.h, README); every other
                         * tensor in its stored dtype; tensors start 64-byte aligned */
};

struct molmo_convert_opts {
    enum molmo_convert_dtype dtype;
    size_t shard_bytes; /* tensor bytes per shard at most (a larger tensor gets its own);
                           0 = 4 GiB */
};

/* Parses "f32", "bf16" or "q8_0"; -1 otherwise. */
int molmo_convert_dtype_parse(const char *s, enum molmo_convert_dtype *out);

/* Reads the checkpoint in src (validated as a load does: config.json and every tensor) and
 * writes dst (created if missing; must not be src): model-0000K-of-0000N.safetensors with the
 * tensors in the source's file order, model.safetensors.index.json, and copies of the other
 * regular files of src (config.json, tokenizer.json, ...; weight files excepted). Each file is
 * written beside its final name and renamed into place. Returns 0 or a JB_E* code with err
 * naming the file and the tensor. */
int molmo_convert(const char *src, const char *dst, const struct molmo_convert_opts *o,
                  struct jb_err *err);

/* ---- writing a deterministic checkpoint (engine/init-model.c) ---------------------------- */

/* writes a deterministic Molmo checkpoint in the released layout (the
 * Molmo-7B-D / Qwen2 layout of molmo.md §2.1, imitating ../shared/golden/molmo-tiny-qwen2):
 * config.json, preprocessor_config.json, generation_config.json, tokenizer.json (byte-level,
 * no merges) and two safetensors shards with their index. Weights come from a seeded PRNG, so
 * the same seed and size give the same bytes on every machine. Used by `joulebench init-model`
 * and by `joulebench run`'s embedded default.
 *
 *     struct molmo_init_opts o = {.seed = 1, .size = MOLMO_INIT_TINY};
 *     if (molmo_init_model_write("models/tiny", &o, &err) < 0) return err.code;
 */

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

/* ---- the machine's limits and the engine's speed (engine/probe.c, engine/bench.c) ------- */

/* What `joulebench bench` measures: the machine (read bandwidth, peak FLOP/s), the decode
 * kernels and OpenBLAS at Molmo-7B-D's shapes, and the engine on a checkpoint. */

struct jb_pool;

/* Instruction sets, in increasing order. AVX2 means AVX2 + FMA + F16C; AVX512 means
 * AVX-512 F/BW/VL + BF16 + VNNI (Zen 4/5, Sapphire Rapids and later). */
enum molmo_isa {
    MOLMO_ISA_SCALAR,
    MOLMO_ISA_AVX2,
    MOLMO_ISA_AVX512,
    MOLMO_ISA_BEST, /* for molmo_kernels_init: the best the CPU supports */
};

/* What the CPU (and the OS, through XGETBV) supports. */
struct molmo_cpu {
    int avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512bf16, avx512vnni;
    enum molmo_isa best; /* highest enum molmo_isa fully usable */
};
struct molmo_cpu molmo_cpu_detect(void);
/* "scalar", "avx2+fma", "avx512-bf16/vnni". */
const char *molmo_isa_name(enum molmo_isa isa);
/* Parses the names above (and "best"); -1 if unknown. */
int molmo_isa_parse(const char *name, enum molmo_isa *out);

/* Which weight layout a molmo_matvec call reads. */
enum molmo_weight_type {
    MOLMO_WEIGHT_F32,
    MOLMO_WEIGHT_BF16,
    MOLMO_WEIGHT_Q8_0,      /* integer kernel: needs xq, quantized from x by the caller */
    MOLMO_WEIGHT_Q8_0_F32,  /* f32-dequant kernel: reads x */
    MOLMO_WEIGHT_Q8_0_X16,  /* int16-x kernel: needs xq (a struct molmo_q16_x) */
};

/* Streaming read bandwidth: every pool thread sums its share of a buffer of `bytes` (allocated
 * and first touched here, freed before returning) with vector loads; best of reps passes, in
 * bytes per second. Errors: JB_ENOMEM. */
int molmo_probe_read_bw(struct jb_pool *pool, size_t bytes, int reps, double *bytes_per_s,
                        struct jb_err *err);

/* Peak arithmetic: every pool thread runs independent FMA chains (enough to cover the FMA
 * latency) for about seconds_per_rep; best of reps, in FLOP per second (an FMA lane = 2 FLOP,
 * a vdpbf16ps lane = 4 FLOP). isa picks the instructions: AVX2 = 256-bit vfmadd231ps,
 * AVX512 = 512-bit vfmadd231ps. Returns JB_EUNSUPPORTED when the CPU lacks isa. */
int molmo_probe_f32_peak(struct jb_pool *pool, enum molmo_isa isa, double seconds_per_rep,
                         int reps, double *flop_per_s, struct jb_err *err);
/* The same with 512-bit vdpbf16ps (bf16 pairs into float32); JB_EUNSUPPORTED without
 * AVX512-BF16. */
int molmo_probe_bf16_peak(struct jb_pool *pool, double seconds_per_rep, int reps,
                          double *flop_per_s, struct jb_err *err);

/* OpenBLAS sgemm at a forward-pass shape: C (m, n) = A (m, k) . B (n, k)^T, B a weight matrix;
 * random inputs, openblas_set_num_threads(threads); best of reps, FLOP/s = 2 m n k / t. With
 * from_bf16, B is stored as bf16 and each rep first widens it to float32 (exact) into a scratch
 * matrix, inside the timing: the prefill path for bf16 weights. Errors: JB_ENOMEM. */
int molmo_probe_sgemm(int m, int n, int k, int from_bf16, int threads, int reps,
                      double *flop_per_s, struct jb_err *err);

/* The name of the kernels molmo_load_opts.kernels = want picks on this CPU ("avx2+fma" ...). */
const char *molmo_kernels_name(enum molmo_isa want);

/* Decode matvec throughput of the kernels molmo_load_opts.kernels would pick for want (the best
 * the CPU runs at most) on weights of type at (n_out, n_in): weight bytes read per second, best
 * of reps. Random weights in copies totalling more than 512 MiB that successive calls cycle
 * through, so no call finds its weights in the cache. *kernel: the kernels' name. Errors:
 * JB_ENOMEM, JB_EINVAL. */
int molmo_probe_matvec_isa(struct jb_pool *pool, enum molmo_isa want, enum molmo_weight_type type,
                           int n_out, int n_in, int reps, double *bytes_per_s,
                           const char **kernel, struct jb_err *err);

/* Loads only what the forward pass needs (config.json and the weights, no tokenizer nor
 * preprocessing): for molmo_bench_model. Free with molmo_model_free. */
int molmo_model_load_weights(struct molmo_model **out, const char *dir,
                             const struct molmo_load_opts *opts, struct jb_err *err);

/* One bench of the engine on a loaded model: per rep, `crops` ViT passes over random patches,
 * a prefill of `prompt_tokens` random ids and `gen_tokens` greedy decode steps, with phase
 * marks through on_phase (VISION, PREFILL, DECODE begin with step = the rep; DECODE end). */
struct molmo_bench_opts {
    int crops, prompt_tokens, gen_tokens, reps;
    molmo_phase_fn on_phase; /* may be NULL */
    void *user;
};
/* Per rep (arrays of reps elements, the caller's): ViT milliseconds per crop, prefill and
 * decode tokens per second. */
struct molmo_bench_reps {
    double *vit_ms_per_crop, *prefill_tps, *decode_tps;
};
int molmo_bench_model(struct molmo_model *m, const struct molmo_bench_opts *o,
                      struct molmo_bench_reps *out, struct jb_err *err);

#endif /* MOLMO_H */
