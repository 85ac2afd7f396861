/* convert-impl.h: rewrites any checkpoint the engine loads (safetensors shards, or the
 * pytorch_model.bin MolmoE-1B ships) as a safetensors checkpoint directory: shards, their index,
 * and every non-weight file of the source (configs, tokenizer) copied. Used by `joulebench
 * convert`. A .bin is read once here (CRC-checked) so later loads just map the shards.
 *
 *     struct molmo_convert_opts o = {.dtype = MOLMO_CONVERT_BF16};
 *     if (molmo_convert(src, dst, &o, &err) < 0) return err.code;
 */
#ifndef CONVERT_IMPL_H
#define CONVERT_IMPL_H

#include <stddef.h>
#include <stdint.h>

struct jb_err;

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

#endif /* CONVERT_IMPL_H */
