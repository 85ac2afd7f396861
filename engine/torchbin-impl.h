/* torchbin-impl.h: PyTorch `torch.save` checkpoints (`pytorch_model.bin`, as MolmoE-1B ships)
 * read in C, without Python and without running anything the file asks for (engine-internal).
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
#ifndef MOLMO_TORCHBIN_IMPL_H
#define MOLMO_TORCHBIN_IMPL_H

#include "engine/molmo.h"

#include <stddef.h>
#include <stdint.h>

struct jb_err;

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

#endif /* MOLMO_TORCHBIN_IMPL_H */
