/* jb-npy.h: NumPy .npy arrays (format 1.0 written; 1.0, 2.0 and 3.0 read), C order,
 * little-endian. Used for the golden tensors and for `generate --dump`.
 *
 *     struct jb_npy a = {0};
 *     if (jb_npy_load(&a, "golden/pooled.npy", &err) < 0) return err.code;
 *     const float *x = a.data;                 // a.shape[0] x a.shape[1] x a.shape[2]
 *     jb_npy_save("out/pooled.npy", JB_NPY_F32, a.ndim, a.shape, x, &err);
 *     jb_npy_free(&a);
 */
#ifndef JB_NPY_H
#define JB_NPY_H

#include <stddef.h>

struct jb_err;

#define JB_NPY_MAX_DIMS 8

enum jb_npy_dtype {
    JB_NPY_F32,  /* '<f4' */
    JB_NPY_F64,  /* '<f8' */
    JB_NPY_F16,  /* '<f2' */
    JB_NPY_I32,  /* '<i4' */
    JB_NPY_I64,  /* '<i8' */
    JB_NPY_U8,   /* '|u1' */
    JB_NPY_BOOL, /* '|b1' */
};

struct jb_npy {
    enum jb_npy_dtype dtype;
    int ndim;                       /* 0 for a scalar */
    size_t shape[JB_NPY_MAX_DIMS];
    size_t numel;                   /* product of shape (1 for a scalar) */
    void *data;                     /* numel * jb_npy_dtype_size(dtype) bytes, owned */
};

/* Loads path into a (owned buffer). Rejects Fortran order, big-endian and unknown dtypes, and a
 * file whose data is shorter or longer than its header says, naming the file. */
int jb_npy_load(struct jb_npy *a, const char *path, struct jb_err *err);

/* Releases a->data and zeroes a; NULL is a no-op. */
void jb_npy_free(struct jb_npy *a);

/* Writes a format 1.0 file (header padded to 64 bytes, as NumPy writes it). */
int jb_npy_save(const char *path, enum jb_npy_dtype dtype, int ndim, const size_t *shape,
                const void *data, struct jb_err *err);

size_t jb_npy_dtype_size(enum jb_npy_dtype dtype);
const char *jb_npy_dtype_descr(enum jb_npy_dtype dtype); /* "<f4", ... */

#endif /* JB_NPY_H */
