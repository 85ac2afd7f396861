/* Tests of engine/torchbin.c: PyTorch zip checkpoints read without Python, and refused safely.
 *
 * The golden molmo-tiny-olmoe/pytorch_model.bin is checked against facts derived without our
 * reader: shapes from molmo.md §2.1/§2.2 and the case's config.json, storage offsets from a scan
 * of the zip local headers written here in a few lines, values read with stdio at those offsets.
 * The hostile archives are built here byte by byte (zip records per APPNOTE 6.3, pickle opcodes
 * per Lib/pickle.py, laid out as torch.save writes them: see pickletools.dis of the golden
 * data.pkl) with zlib's crc32, so every check of the reader is reached with an intact CRC. */
#include "config.h"

#include "engine/molmo.h"

#include "common/jb-err.h"

#include "tests/jb-test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- byte buffers ---- */

struct buf {
    unsigned char *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put1(struct buf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put16(struct buf *b, unsigned v) {
    put1(b, v & 0xff);
    put1(b, (v >> 8) & 0xff);
}

static void put32(struct buf *b, uint32_t v) {
    put16(b, v & 0xffff);
    put16(b, v >> 16);
}

static void put64(struct buf *b, uint64_t v) {
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

/* ---- zip writer: stored entries, optionally zip64 records, optionally torch's alignment ---- */

struct tz_entry {
    const char *name;
    const void *data;
    size_t len;
    uint16_t method; /* 0 stored; anything else only to be refused */
};

struct tz_opts {
    bool zip64;        /* central sizes/offset as 0xFFFFFFFF + zip64 extra; zip64 end records */
    bool unaligned;    /* no padding: data at an odd offset */
    uint64_t gap;      /* a hole of this many bytes before entry gap_before (see write_sparse) */
    size_t gap_before;
};

/* Appends the archive to z. With o.gap, the offsets written assume gap bytes (a hole) before
 * entry o.gap_before, which starts at z->p + *split in the buffer. */
static void build_zip_split(struct buf *z, const struct tz_entry *e, size_t n, struct tz_opts o,
                            size_t *split) {
    uint64_t *off = calloc(n, sizeof *off), shift = 0;
    for (size_t i = 0; i < n; i++) {
        if (o.gap && i == o.gap_before) {
            *split = z->n;
            shift = o.gap;
        }
        off[i] = z->n + shift;
        size_t nl = strlen(e[i].name);
        /* torch pads the extra field with an "FB" block so that data starts on 64 bytes. */
        uint64_t base = z->n + shift + 30 + nl, xl;
        if (o.unaligned) xl = base % 2 ? 0 : 5; /* data at an odd offset */
        else xl = 4 + (64 - (base + 4) % 64) % 64;
        uint32_t crc = (uint32_t)crc32(0L, e[i].data, (uInt)e[i].len);
        put32(z, 0x04034b50u);
        put16(z, 20);
        put16(z, 0);
        put16(z, e[i].method);
        put32(z, 0);
        put32(z, crc);
        put32(z, (uint32_t)e[i].len);
        put32(z, (uint32_t)e[i].len);
        put16(z, (unsigned)nl);
        put16(z, (unsigned)xl);
        put(z, e[i].name, nl);
        if (xl) {
            put16(z, 0x4246); /* "FB" */
            put16(z, (unsigned)(xl - 4));
            for (size_t k = 4; k < xl; k++) put1(z, 'Z');
        }
        put(z, e[i].data, e[i].len);
    }
    uint64_t cd = z->n + shift;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        put32(z, 0x02014b50u);
        put16(z, o.zip64 ? 45 : 20);
        put16(z, o.zip64 ? 45 : 20);
        put16(z, 0);
        put16(z, e[i].method);
        put32(z, 0);
        put32(z, (uint32_t)crc32(0L, e[i].data, (uInt)e[i].len));
        put32(z, o.zip64 ? 0xffffffffu : (uint32_t)e[i].len);
        put32(z, o.zip64 ? 0xffffffffu : (uint32_t)e[i].len);
        put16(z, (unsigned)nl);
        put16(z, o.zip64 ? 28 : 0);
        put16(z, 0);
        put16(z, 0);
        put16(z, 0);
        put32(z, 0);
        put32(z, o.zip64 ? 0xffffffffu : (uint32_t)off[i]);
        put(z, e[i].name, nl);
        if (o.zip64) { /* APPNOTE 4.5.3: uncompressed size, compressed size, local offset */
            put16(z, 1);
            put16(z, 24);
            put64(z, e[i].len);
            put64(z, e[i].len);
            put64(z, off[i]);
        }
    }
    uint64_t cd_size = z->n + shift - cd;
    if (o.zip64) {
        uint64_t rec = z->n + shift;
        put32(z, 0x06064b50u);
        put64(z, 44);
        put16(z, 45);
        put16(z, 45);
        put32(z, 0);
        put32(z, 0);
        put64(z, n);
        put64(z, n);
        put64(z, cd_size);
        put64(z, cd);
        put32(z, 0x07064b50u);
        put32(z, 0);
        put64(z, rec);
        put32(z, 1);
    }
    put32(z, 0x06054b50u);
    put16(z, 0);
    put16(z, 0);
    put16(z, o.zip64 ? 0xffff : (unsigned)n);
    put16(z, o.zip64 ? 0xffff : (unsigned)n);
    put32(z, o.zip64 ? 0xffffffffu : (uint32_t)cd_size);
    put32(z, o.zip64 ? 0xffffffffu : (uint32_t)cd);
    put16(z, 0);
    free(off);
}

static void build_zip(struct buf *z, const struct tz_entry *e, size_t n, struct tz_opts o) {
    build_zip_split(z, e, n, o, NULL);
}

/* ---- pickle writer: the opcodes torch.save (protocol 2) emits ---- */

static void pk_str(struct buf *b, const char *s) {
    put1(b, 'X'); /* BINUNICODE */
    put32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static void pk_global(struct buf *b, const char *mod, const char *name) {
    put1(b, 'c');
    put(b, mod, strlen(mod));
    put1(b, '\n');
    put(b, name, strlen(name));
    put1(b, '\n');
}

static void pk_int(struct buf *b, int64_t v) {
    if (v >= 0 && v < 256) {
        put1(b, 'K');
        put1(b, (unsigned)v);
    } else if (v >= 0 && v < 65536) {
        put1(b, 'M');
        put16(b, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put1(b, 'J');
        put32(b, (uint32_t)v);
    } else {
        put1(b, 0x8a); /* LONG1, 8 bytes two's complement */
        put1(b, 8);
        put64(b, (uint64_t)v);
    }
}

static void pk_ints(struct buf *b, const int64_t *v, int n) {
    if (n == 0) {
        put1(b, ')');
        return;
    }
    if (n > 3) put1(b, '(');
    for (int i = 0; i < n; i++) pk_int(b, v[i]);
    put1(b, n > 3 ? 't' : 0x84 + n); /* TUPLE or TUPLE1..3 */
}

struct tz_tensor {
    const char *name;
    const char *storage_cls; /* "FloatStorage" ... */
    const char *key;
    int64_t numel, offset;
    int ndim;
    int64_t shape[4], stride[4];
};

/* name, _rebuild_tensor_v2((persistent id), offset, size, stride, False, OrderedDict()) */
static void pk_tensor(struct buf *b, const struct tz_tensor *t) {
    pk_str(b, t->name);
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    put1(b, '(');
    put1(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", t->storage_cls);
    pk_str(b, t->key);
    pk_str(b, "cpu");
    pk_int(b, t->numel);
    put1(b, 't');
    put1(b, 'Q'); /* BINPERSID */
    pk_int(b, t->offset);
    pk_ints(b, t->shape, t->ndim);
    pk_ints(b, t->stride, t->ndim);
    put1(b, 0x89); /* NEWFALSE */
    pk_global(b, "collections", "OrderedDict");
    put1(b, ')');
    put1(b, 'R');
    put1(b, 't');
    put1(b, 'R');
}

static void pk_state_dict(struct buf *b, const struct tz_tensor *t, size_t n) {
    put1(b, 0x80);
    put1(b, 2);
    put1(b, '}');
    put1(b, '(');
    for (size_t i = 0; i < n; i++) pk_tensor(b, &t[i]);
    put1(b, 'u'); /* SETITEMS */
    put1(b, '.');
}

/* ---- fixtures ---- */

static char *tmp;

static void setup(void) { tmp = jb_test_tmpdir(); }

static void teardown(void) {
    jb_test_rmtree(tmp);
    free(tmp);
}

TestSuite(torchbin, .init = setup, .fini = teardown);

/* Storage "0": 6 floats 0..5; storage "1": 4 bfloat16 values 1.0, -2.0, 0.5, 3.0. */
static const float s0[6] = {0, 1, 2, 3, 4, 5};
static const unsigned char s1_bf16[8] = {0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x40, 0x40};

/* A torch-like state dict: "a" = s0 as [2,3]; "b" = s0 viewed transposed ([3,2], stride [1,3]);
 * "c" = s0[2:6] as [2,2] (offset 2); "h" = the bf16 storage as [4]. */
static const struct tz_tensor good_tensors[] = {
    {"a", "FloatStorage", "0", 6, 0, 2, {2, 3}, {3, 1}},
    {"b", "FloatStorage", "0", 6, 0, 2, {3, 2}, {1, 3}},
    {"c", "FloatStorage", "0", 6, 2, 2, {2, 2}, {2, 1}},
    {"h", "BFloat16Storage", "1", 4, 0, 1, {4}, {1}},
};

static char *write_file(const char *name, const struct buf *b) {
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/%s", tmp, name) > 0);
    jb_test_write_file(path, b->p, b->n);
    return path;
}

/* Writes archive/data.pkl = pkl plus the given storage entries (and byteorder when given). */
static char *write_checkpoint(const char *file, const struct buf *pkl, const char *byteorder,
                              bool with_s1, struct tz_opts o) {
    struct tz_entry e[5];
    size_t n = 0;
    e[n++] = (struct tz_entry){"archive/data.pkl", pkl->p, pkl->n, 0};
    if (byteorder) e[n++] = (struct tz_entry){"archive/byteorder", byteorder, strlen(byteorder), 0};
    e[n++] = (struct tz_entry){"archive/data/0", s0, sizeof s0, 0};
    if (with_s1) e[n++] = (struct tz_entry){"archive/data/1", s1_bf16, sizeof s1_bf16, 0};
    e[n++] = (struct tz_entry){"archive/version", "3\n", 2, 0};
    struct buf z = {0};
    build_zip(&z, e, n, o);
    char *path = write_file(file, &z);
    free(z.p);
    return path;
}

static char *good_checkpoint(struct tz_opts o) {
    struct buf pkl = {0};
    pk_state_dict(&pkl, good_tensors, 4);
    char *path = write_checkpoint("good.bin", &pkl, "little", true, o);
    free(pkl.p);
    return path;
}

/* Opens path expecting failure with code and a message containing every needle. */
static void expect_error(const char *path, int code, const char *needle1, const char *needle2) {
    struct molmo_torchbin *tb = (struct molmo_torchbin *)1;
    struct jb_err err = {0};
    int rc = molmo_torchbin_open(&tb, path, &err);
    cr_assert_eq(rc, code, "rc %d (want %d): %s", rc, code, err.msg);
    cr_assert_null(tb);
    cr_assert_eq(err.code, code);
    if (needle1) cr_assert(strstr(err.msg, needle1), "'%s' not in: %s", needle1, err.msg);
    if (needle2) cr_assert(strstr(err.msg, needle2), "'%s' not in: %s", needle2, err.msg);
    cr_assert(strstr(err.msg, path), "message does not start with the path: %s", err.msg);
}

static void check_good(const char *path, bool expect_mapped) {
    struct molmo_torchbin *tb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_torchbin_open(&tb, path, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_torchbin_count(tb), 4);
    /* state-dict order is kept */
    const char *order[] = {"a", "b", "c", "h"};
    for (size_t i = 0; i < 4; i++) cr_assert_str_eq(molmo_torchbin_get(tb, i)->name, order[i]);
    cr_assert_null(molmo_torchbin_get(tb, 4));
    cr_assert_null(molmo_torchbin_find(tb, "nope"));

    const struct molmo_torchbin_tensor *a = molmo_torchbin_find(tb, "a");
    cr_assert_eq(a->dtype, MOLMO_DTYPE_F32);
    cr_assert_eq(a->ndim, 2);
    cr_assert(a->shape[0] == 2 && a->shape[1] == 3);
    cr_assert_eq(a->nbytes, 24);
    cr_assert_eq(memcmp(a->data, s0, 24), 0);
    cr_assert_eq(molmo_torchbin_file_offset(tb, a) >= 0, expect_mapped);

    /* b = a transposed: b[i][j] = s0[i + 3j] -> rows (0,3), (1,4), (2,5), copied in C order */
    const struct molmo_torchbin_tensor *b = molmo_torchbin_find(tb, "b");
    const float bt[6] = {0, 3, 1, 4, 2, 5};
    cr_assert(b->shape[0] == 3 && b->shape[1] == 2);
    cr_assert_eq(memcmp(b->data, bt, 24), 0);
    cr_assert_eq(molmo_torchbin_file_offset(tb, b), -1, "a strided view is an owned copy");

    /* c = s0[2..5] as [2,2]: contiguous with a storage offset, so in place when aligned */
    const struct molmo_torchbin_tensor *c = molmo_torchbin_find(tb, "c");
    cr_assert_eq(memcmp(c->data, s0 + 2, 16), 0);
    cr_assert_eq(molmo_torchbin_file_offset(tb, c) >= 0, expect_mapped);
    if (expect_mapped)
        cr_assert_eq(molmo_torchbin_file_offset(tb, c), molmo_torchbin_file_offset(tb, a) + 8);

    const struct molmo_torchbin_tensor *h = molmo_torchbin_find(tb, "h");
    cr_assert_eq(h->dtype, MOLMO_DTYPE_BF16);
    cr_assert_eq(h->nbytes, 8);
    float hf[4];
    molmo_convert_to_f32(hf, h->data, h->dtype, 4);
    cr_assert(hf[0] == 1.0f && hf[1] == -2.0f && hf[2] == 0.5f && hf[3] == 3.0f);
    cr_assert_eq(molmo_torchbin_verify(tb, &err), 0, "%s", err.msg);
    molmo_torchbin_close(tb);
}

Test(torchbin, a_torch_style_archive_reads_views_offsets_and_bf16) {
    char *path = good_checkpoint((struct tz_opts){0});
    check_good(path, true);
    free(path);
}

Test(torchbin, zip64_records_give_the_same_tensors) {
    char *path = good_checkpoint((struct tz_opts){.zip64 = true});
    check_good(path, true);
    free(path);
}

/* MolmoE-1B's file is 28.9 GB: storages past 4 GiB are reached through zip64 fields. A sparse
 * file (a 5 GiB hole before the storage entry) keeps this instant and diskless. */
Test(torchbin, storages_past_4_gib_are_found_through_zip64) {
    struct buf pkl = {0};
    pk_state_dict(&pkl, good_tensors, 1);
    struct tz_entry e[] = {
        {"archive/data.pkl", pkl.p, pkl.n, 0},
        {"archive/data/0", s0, sizeof s0, 0},
    };
    const uint64_t gap = (uint64_t)5 << 30;
    struct buf z = {0};
    size_t split = 0;
    build_zip_split(&z, e, 2, (struct tz_opts){.zip64 = true, .gap = gap, .gap_before = 1},
                    &split);
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/big.bin", tmp) > 0);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(z.p, 1, split, f), split);
    cr_assert_eq(fseeko(f, (off_t)(split + gap), SEEK_SET), 0);
    cr_assert_eq(fwrite(z.p + split, 1, z.n - split, f), z.n - split);
    cr_assert_eq(fclose(f), 0);

    struct molmo_torchbin *tb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_torchbin_open(&tb, path, &err), 0, "%s", err.msg);
    const struct molmo_torchbin_tensor *a = molmo_torchbin_find(tb, "a");
    cr_assert(a);
    /* local header at split + gap, 30 bytes, the 14-byte name, torch's padding to 64 */
    uint64_t want = split + gap + 30 + strlen(e[1].name);
    want = (want + 4 + 63) / 64 * 64;
    cr_assert_eq((uint64_t)molmo_torchbin_file_offset(tb, a), want);
    cr_assert_gt(want, (uint64_t)UINT32_MAX);
    cr_log_info("storage data at file offset %llu", (unsigned long long)want);
    cr_assert_eq(memcmp(a->data, s0, sizeof s0), 0);
    molmo_torchbin_close(tb);
    free(z.p);
    free(pkl.p);
    free(path);
}

Test(torchbin, misaligned_data_is_copied_not_used_in_place) {
    char *path = good_checkpoint((struct tz_opts){.unaligned = true});
    check_good(path, false);
    free(path);
}

Test(torchbin, close_accepts_null) { molmo_torchbin_close(NULL); }

/* An OrderedDict state dict carrying _metadata through BUILD, as model.state_dict() pickles. */
Test(torchbin, ordered_dict_with_metadata_build_is_accepted) {
    struct buf p = {0};
    put1(&p, 0x80);
    put1(&p, 2);
    pk_global(&p, "collections", "OrderedDict");
    put1(&p, ')');
    put1(&p, 'R');
    put1(&p, 'q');
    put1(&p, 0);
    put1(&p, '(');
    pk_tensor(&p, &good_tensors[0]);
    put1(&p, 'u');
    put1(&p, '}'); /* state {'_metadata': OrderedDict()} */
    pk_str(&p, "_metadata");
    put1(&p, 'h'); /* BINGET 0: any dict will do as the value */
    put1(&p, 0);
    put1(&p, 's');
    put1(&p, 'b'); /* BUILD */
    put1(&p, '.');
    char *path = write_checkpoint("od.bin", &p, NULL, false, (struct tz_opts){0});
    struct molmo_torchbin *tb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_torchbin_open(&tb, path, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_torchbin_count(tb), 1);
    cr_assert_str_eq(molmo_torchbin_get(tb, 0)->name, "a");
    molmo_torchbin_close(tb);
    free(p.p);
    free(path);
}

/* Protocol 4 framing (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL), the 4-argument
 * _rebuild_tensor of old torch, and a 7th _rebuild_tensor_v2 argument (metadata dict) holding
 * a list of a float, None and True: the remaining opcodes of the allowed set. */
Test(torchbin, protocol_4_opcodes_and_old_rebuilds_are_read) {
    struct buf p = {0};
    put1(&p, 0x80);
    put1(&p, 4);
    put1(&p, 0x95); /* FRAME with a length hint */
    put64(&p, 0);
    put1(&p, '}');
    put1(&p, 0x94); /* MEMOIZE -> memo 0 */
    put1(&p, '(');
    const char *sk[] = {"a", "torch._utils", "_rebuild_tensor", "storage", "torch", "FloatStorage",
                        "0", "cpu"};
    for (int i = 0; i < 3; i++) {
        put1(&p, 0x8c);
        put1(&p, (unsigned)strlen(sk[i]));
        put(&p, sk[i], strlen(sk[i]));
    }
    put1(&p, 0x93); /* STACK_GLOBAL torch._utils._rebuild_tensor */
    put1(&p, '(');
    put1(&p, '(');
    for (int i = 3; i < 6; i++) {
        put1(&p, 0x8c);
        put1(&p, (unsigned)strlen(sk[i]));
        put(&p, sk[i], strlen(sk[i]));
    }
    put1(&p, 0x93); /* STACK_GLOBAL torch.FloatStorage: ("storage", cls, ...) */
    pk_str(&p, sk[6]);
    pk_str(&p, sk[7]);
    pk_int(&p, 6);
    put1(&p, 't');
    put1(&p, 'Q');
    pk_int(&p, 3); /* offset 3, shape [3], stride [1]: s0[3..5] */
    pk_ints(&p, (const int64_t[]){3}, 1);
    pk_ints(&p, (const int64_t[]){1}, 1);
    put1(&p, 't');
    put1(&p, 'R');
    pk_str(&p, "b"); /* b = _rebuild_tensor_v2(..., False, {}, {'m': [1.5, None, True]}) */
    pk_global(&p, "torch._utils", "_rebuild_tensor_v2");
    put1(&p, '(');
    put1(&p, '(');
    pk_str(&p, "storage");
    pk_global(&p, "torch", "FloatStorage");
    pk_str(&p, "0");
    pk_str(&p, "cpu");
    put1(&p, 0x8a); /* LONG1 numel 6 in one byte */
    put1(&p, 1);
    put1(&p, 6);
    put1(&p, 't');
    put1(&p, 'Q');
    pk_int(&p, 0);
    pk_ints(&p, (const int64_t[]){6}, 1);
    pk_ints(&p, (const int64_t[]){1}, 1);
    put1(&p, 0x89);
    put1(&p, '}');
    put1(&p, '}');
    pk_str(&p, "m");
    put1(&p, ']');
    put1(&p, '(');
    put1(&p, 'G'); /* BINFLOAT 1.5 = 0x3FF8000000000000, big-endian */
    put(&p, "\x3f\xf8\0\0\0\0\0\0", 8);
    put1(&p, 'N');
    put1(&p, 'e'); /* APPENDS */
    put1(&p, 0x88);
    put1(&p, 'a'); /* APPEND True */
    put1(&p, 's');
    put1(&p, 't');
    put1(&p, 'R');
    put1(&p, 'u');
    put1(&p, '.');
    char *path = write_checkpoint("p4.bin", &p, NULL, false, (struct tz_opts){0});
    struct molmo_torchbin *tb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_torchbin_open(&tb, path, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_torchbin_count(tb), 2);
    const struct molmo_torchbin_tensor *a = molmo_torchbin_get(tb, 0);
    const struct molmo_torchbin_tensor *b = molmo_torchbin_get(tb, 1);
    cr_assert_str_eq(a->name, "a");
    cr_assert(a->ndim == 1 && a->shape[0] == 3 && a->nbytes == 12);
    cr_assert_eq(memcmp(a->data, s0 + 3, 12), 0);
    cr_assert_str_eq(b->name, "b");
    cr_assert(b->ndim == 1 && b->shape[0] == 6);
    cr_assert_eq(memcmp(b->data, s0, 24), 0);
    molmo_torchbin_close(tb);
    free(p.p);
    free(path);
}

/* ---- hostile inputs ---- */

/* The classic exploit: GLOBAL 'posix system', ('echo pwned',), REDUCE. */
Test(torchbin, a_posix_system_global_is_refused_by_name) {
    struct buf p = {0};
    put1(&p, 0x80);
    put1(&p, 2);
    pk_global(&p, "posix", "system");
    pk_str(&p, "touch pwned");
    put1(&p, 0x85);
    put1(&p, 'R');
    put1(&p, '.');
    char *path = write_checkpoint("evil.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EUNSUPPORTED, "global posix.system is not allowed", "(GLOBAL)");
    free(p.p);
    free(path);
}

/* Hidden inside a tensor's rebuild, after a valid first entry; also via STACK_GLOBAL. */
Test(torchbin, foreign_globals_anywhere_are_refused_by_name) {
    const char *cases[][2] = {
        {"os", "system"},
        {"builtins", "eval"},
        {"torch", "load"},
        {"torch._utils", "_rebuild_parameter"},
    };
    for (size_t k = 0; k < 4; k++) {
        struct buf p = {0};
        put1(&p, 0x80);
        put1(&p, 2);
        put1(&p, '}');
        put1(&p, '(');
        pk_tensor(&p, &good_tensors[0]);
        pk_str(&p, "x");
        if (k % 2) {
            pk_global(&p, cases[k][0], cases[k][1]);
        } else {
            pk_str(&p, cases[k][0]);
            pk_str(&p, cases[k][1]);
            put1(&p, 0x93); /* STACK_GLOBAL */
        }
        pk_str(&p, "1+1");
        put1(&p, 0x85);
        put1(&p, 'R');
        put1(&p, 'u');
        put1(&p, '.');
        char *path = write_checkpoint("evil.bin", &p, NULL, false, (struct tz_opts){0});
        char want[100];
        snprintf(want, sizeof want, "global %s.%s is not allowed", cases[k][0], cases[k][1]);
        expect_error(path, JB_EUNSUPPORTED, want, k % 2 ? "(GLOBAL)" : "(STACK_GLOBAL)");
        free(p.p);
        free(path);
    }
}

Test(torchbin, calling_a_storage_class_is_refused) {
    struct buf p = {0};
    put1(&p, 0x80);
    put1(&p, 2);
    pk_global(&p, "torch", "FloatStorage");
    pk_int(&p, 1000);
    put1(&p, 0x85);
    put1(&p, 'R');
    put1(&p, '.');
    char *path = write_checkpoint("evil.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EUNSUPPORTED, "torch.FloatStorage may only name a storage type", NULL);
    free(p.p);
    free(path);
}

Test(torchbin, an_unsupported_storage_dtype_is_named) {
    struct tz_tensor t = good_tensors[0];
    t.storage_cls = "LongStorage";
    struct buf p = {0};
    pk_state_dict(&p, &t, 1);
    char *path = write_checkpoint("long.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EUNSUPPORTED, "torch.LongStorage", NULL);
    free(p.p);
    free(path);
}

/* INST and OBJ are the protocol-0/1 ways to call a class; 0xff is no opcode at all. */
Test(torchbin, bad_opcodes_are_refused_by_name) {
    static const struct {
        unsigned char op;
        int code;
        const char *want;
    } cases[] = {
        {'i', JB_EUNSUPPORTED, "pickle opcode INST (0x69) is not allowed"},
        {'o', JB_EUNSUPPORTED, "pickle opcode OBJ (0x6f) is not allowed"},
        {0x81, JB_EUNSUPPORTED, "pickle opcode NEWOBJ (0x81) is not allowed"},
        {0xff, JB_EFORMAT, "unknown pickle opcode 0xff"},
    };
    for (size_t k = 0; k < 4; k++) {
        struct buf p = {0};
        put1(&p, 0x80);
        put1(&p, 2);
        put1(&p, '}');
        put1(&p, cases[k].op);
        put(&p, "os\nsystem\n", 10);
        put1(&p, '.');
        char *path = write_checkpoint("op.bin", &p, NULL, false, (struct tz_opts){0});
        expect_error(path, cases[k].code, cases[k].want, "at byte 3");
        free(p.p);
        free(path);
    }
}

Test(torchbin, a_missing_storage_entry_names_the_key) {
    struct buf p = {0};
    pk_state_dict(&p, good_tensors, 4); /* "h" needs storage "1", which is not written */
    char *path = write_checkpoint("missing.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_ENOTFOUND, "storage '1'", "no entry 'archive/data/1'");
    free(p.p);
    free(path);
}

/* [3,3] needs 9 elements; storage "0" has 6. With offset 4, [2] needs elements 4..5: fits. */
Test(torchbin, a_storage_shorter_than_the_tensor_is_an_error) {
    struct tz_tensor t = {"big", "FloatStorage", "0", 6, 0, 2, {3, 3}, {3, 1}};
    struct buf p = {0};
    pk_state_dict(&p, &t, 1);
    char *path = write_checkpoint("short.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EFORMAT, "reaches element 8 of storage 'archive/data/0'", "6 elements");
    free(p.p);
    free(path);

    /* offset 5 + [2] stride 1 reaches element 6: one past the end */
    t = (struct tz_tensor){"off", "FloatStorage", "0", 6, 5, 1, {2}, {1}};
    p = (struct buf){0};
    pk_state_dict(&p, &t, 1);
    path = write_checkpoint("short.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EFORMAT, "reaches element 6", NULL);
    free(p.p);
    free(path);

    /* 3 * INT64_MAX does not fit in 64 bits: must not wrap around to a small index */
    t = (struct tz_tensor){"wrap", "FloatStorage", "0", 6, 0, 2, {4, 2}, {INT64_MAX, 1}};
    p = (struct buf){0};
    pk_state_dict(&p, &t, 1);
    path = write_checkpoint("wrap.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EFORMAT, "overflowing offset, size or stride", NULL);
    free(p.p);
    free(path);

    /* torch has no negative strides */
    t = (struct tz_tensor){"neg", "FloatStorage", "0", 6, 5, 1, {2}, {-1}};
    p = (struct buf){0};
    pk_state_dict(&p, &t, 1);
    path = write_checkpoint("neg.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EFORMAT, "negative", NULL);
    free(p.p);
    free(path);
}

Test(torchbin, a_storage_entry_of_the_wrong_size_is_an_error) {
    struct tz_tensor t = good_tensors[0];
    t.numel = 7; /* the entry holds 6 floats = 24 bytes */
    struct buf p = {0};
    pk_state_dict(&p, &t, 1);
    char *path = write_checkpoint("size.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EFORMAT, "holds 24 bytes", "7 F32 elements");
    free(p.p);
    free(path);

    /* a larger entry than the persistent id says is as suspect as a smaller one */
    t.numel = 5;
    t.shape[1] = 2;
    t.stride[0] = 2;
    p = (struct buf){0};
    pk_state_dict(&p, &t, 1);
    path = write_checkpoint("size.bin", &p, NULL, false, (struct tz_opts){0});
    expect_error(path, JB_EFORMAT, "holds 24 bytes", "5 F32 elements");
    free(p.p);
    free(path);
}

Test(torchbin, a_big_endian_checkpoint_is_refused) {
    struct buf p = {0};
    pk_state_dict(&p, good_tensors, 1);
    char *path = write_checkpoint("be.bin", &p, "big", false, (struct tz_opts){0});
    expect_error(path, JB_EUNSUPPORTED, "big-endian", NULL);
    free(p.p);
    free(path);
}

Test(torchbin, a_compressed_entry_is_refused_by_name) {
    struct buf p = {0};
    pk_state_dict(&p, good_tensors, 1);
    struct tz_entry e[] = {
        {"archive/data.pkl", p.p, p.n, 0},
        {"archive/data/0", s0, sizeof s0, 8},
    };
    struct buf z = {0};
    build_zip(&z, e, 2, (struct tz_opts){0});
    char *path = write_file("deflated.bin", &z);
    expect_error(path, JB_EUNSUPPORTED, "'archive/data/0' is compressed (method 8)", NULL);
    free(z.p);
    free(p.p);
    free(path);
}

Test(torchbin, a_corrupt_pickle_fails_its_crc) {
    struct buf p = {0};
    pk_state_dict(&p, good_tensors, 1);
    struct tz_entry e[] = {{"archive/data.pkl", p.p, p.n, 0}};
    struct buf z = {0};
    build_zip(&z, e, 1, (struct tz_opts){0});
    /* the pickle is the only entry: its last byte (STOP) sits just before the central
     * directory, whose offset is at byte 16 of the 22-byte end record */
    const unsigned char *e16 = z.p + z.n - 22 + 16;
    size_t cd = e16[0] | e16[1] << 8 | e16[2] << 16 | (size_t)e16[3] << 24;
    cr_assert_eq(z.p[cd - 1], '.');
    z.p[cd - 1] = ',';
    char *path = write_file("crc.bin", &z);
    expect_error(path, JB_EFORMAT, "CRC-32", "archive/data.pkl");
    free(z.p);
    free(p.p);
    free(path);
}

/* Structural pickle errors: each is an error message, never a crash. */
Test(torchbin, malformed_pickles_are_clean_errors) {
    static const struct {
        const char *bytes;
        size_t n;
        const char *want;
    } cases[] = {
        {"\x80\x02}", 3, "ends without STOP"},
        {"\x80\x02.", 3, "stack underflow"},
        {"\x80\x02t.", 4, "no MARK"},
        {"\x80\x02(u.", 5, "stack underflow"}, /* SETITEMS with no dict below the MARK */
        {"\x80\x02h\x05.", 5, "memo index 5 was never stored"},
        {"\x80\x02}r\xff\xff\xff\x7f.", 9, "memo index 2147483647 is out of range"},
        {"\x80\x02X\xff\xff\xff\xff", 8, "truncated"},
        {"\x80\x02" "ctorch\nFloat", 14, "no newline"},
        {"\x80\x02K\x01.", 5, "holds a int, not a state dict"},
        {"\x80\x02}K\x01K\x02s.", 9, "key 0 is a int"},
        {"\x80\x02}X\x01\x00\x00\x00kK\x02s.", 13, "entry 'k' is a int, not a tensor"},
        {"\x80\x02)Q.", 5, "persistent id is not"},
        {"\x80\x09}.", 4, "protocol 9"},
        {"\x80\x02]}b.", 6, "BUILD sets the state of a list"},
        {"\x80\x02}K\x01" "a.", 7, "appends to a dict"},
        {"\x80\x02\x8a\x09", 5, "9-byte integer"},
        {"\x80\x02X\x02\x00\x00\x00" "a\x00.", 10, "holds a NUL"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct buf p = {0};
        put(&p, cases[k].bytes, cases[k].n);
        char *path = write_checkpoint("bad.bin", &p, NULL, false, (struct tz_opts){0});
        struct molmo_torchbin *tb = NULL;
        struct jb_err err = {0};
        int rc = molmo_torchbin_open(&tb, path, &err);
        cr_assert_lt(rc, 0, "case %zu opened", k);
        cr_assert_null(tb);
        cr_assert(strstr(err.msg, cases[k].want), "case %zu: '%s' not in: %s", k, cases[k].want,
                  err.msg);
        free(p.p);
        free(path);
    }
}

/* Every prefix of a valid archive (all of them: it is ~1 KB) is refused cleanly. */
Test(torchbin, every_truncation_of_a_small_archive_is_a_clean_error) {
    struct buf pkl = {0};
    pk_state_dict(&pkl, good_tensors, 4);
    char *good = write_checkpoint("whole.bin", &pkl, "little", true, (struct tz_opts){0});
    FILE *f = fopen(good, "rb");
    cr_assert(f);
    unsigned char whole[4096];
    size_t len = fread(whole, 1, sizeof whole, f);
    fclose(f);
    cr_assert(len > 100 && len < sizeof whole);
    for (size_t cut = 0; cut < len; cut++) {
        struct buf b = {.p = whole, .n = cut};
        char *path = write_file("cut.bin", &b);
        struct molmo_torchbin *tb = NULL;
        struct jb_err err = {0};
        int rc = molmo_torchbin_open(&tb, path, &err);
        cr_assert_lt(rc, 0, "cut at %zu opened", cut);
        cr_assert_null(tb);
        cr_assert(err.msg[0] != '\0');
        if (cut >= 22)
            cr_assert(strstr(err.msg, "no zip end-of-central-directory record"), "cut %zu: %s",
                      cut, err.msg);
        free(path);
    }
    free(pkl.p);
    free(good);
}

/* Central-directory and local-header fields pointing outside the file. */
Test(torchbin, zip_offsets_out_of_range_are_clean_errors) {
    struct buf pkl = {0};
    pk_state_dict(&pkl, good_tensors, 1);
    struct tz_entry e[] = {
        {"archive/data.pkl", pkl.p, pkl.n, 0},
        {"archive/data/0", s0, sizeof s0, 0},
    };
    struct buf z = {0};
    build_zip(&z, e, 2, (struct tz_opts){0});
    size_t eocd = z.n - 22;
    uint32_t cd = (uint32_t)(z.p[eocd + 16] | z.p[eocd + 17] << 8 | z.p[eocd + 18] << 16 |
                             (uint32_t)z.p[eocd + 19] << 24);
    static const struct {
        int where; /* 0: EOCD cd offset; 1: second central entry's local offset; 2: its size */
        uint32_t value;
        int code;
        const char *want;
    } cases[] = {
        {0, 0x7fffffffu, JB_EFORMAT, "central directory"},
        {1, 0x7fffffffu, JB_EFORMAT, "no local header at offset 2147483647"},
        {1, 0, JB_EFORMAT, "does not match the central directory"},
        {2, 0x10000, JB_EFORMAT, "runs past the start of the central directory"},
    };
    for (size_t k = 0; k < 4; k++) {
        struct buf c = {0};
        put(&c, z.p, z.n);
        size_t second = cd + 46 + strlen(e[0].name); /* no extra, no comment in the central dir */
        size_t at = cases[k].where == 0   ? eocd + 16
                    : cases[k].where == 1 ? second + 42
                                          : second + 20;
        for (int i = 0; i < 4; i++)
            c.p[at + (size_t)i] = (unsigned char)(cases[k].value >> (8 * i));
        if (cases[k].where == 2)
            for (int i = 0; i < 4; i++) c.p[at + 4 + (size_t)i] = c.p[at + (size_t)i];
        char *path = write_file("off.bin", &c);
        expect_error(path, cases[k].code, cases[k].want, NULL);
        free(c.p);
        free(path);
    }
    free(z.p);
    free(pkl.p);
}

/* Every single-byte change of a valid pickle (three per position), archived with a correct CRC
 * so that the unpickler sees it: each opens or fails cleanly; under ASan/UBSan, without a
 * report. */
Test(torchbin, mutated_pickles_open_or_fail_cleanly) {
    struct buf pkl = {0};
    pk_state_dict(&pkl, good_tensors, 4);
    size_t opened = 0, refused = 0;
    for (size_t i = 0; i < pkl.n; i++) {
        const unsigned char orig = pkl.p[i];
        const unsigned char repl[3] = {(unsigned char)(orig ^ 0x01), 0x00, 0xff};
        for (int r = 0; r < 3; r++) {
            pkl.p[i] = repl[r];
            char *path = write_checkpoint("mut.bin", &pkl, NULL, true, (struct tz_opts){0});
            struct molmo_torchbin *tb = NULL;
            struct jb_err err = {0};
            if (molmo_torchbin_open(&tb, path, &err) == 0) {
                opened++;
                for (size_t k = 0; k < molmo_torchbin_count(tb); k++) {
                    const struct molmo_torchbin_tensor *t = molmo_torchbin_get(tb, k);
                    volatile unsigned char sink = 0;
                    const unsigned char *d = t->data;
                    for (size_t j = 0; j < t->nbytes; j++) sink ^= d[j];
                    (void)sink;
                }
                molmo_torchbin_close(tb);
            } else {
                refused++;
                cr_assert_null(tb);
                cr_assert(err.msg[0] != '\0');
            }
            free(path);
        }
        pkl.p[i] = orig;
    }
    cr_assert_gt(refused, pkl.n, "most mutations should be refused (%zu)", refused);
    cr_log_info("mutated pickles: %zu opened, %zu refused", opened, refused);
    free(pkl.p);
}

/* ---- the golden MolmoE-layout checkpoint ---- */

TestSuite(torchbin_golden, .init = setup, .fini = teardown);

static char *golden_bin(void) {
    const char *g = jb_test_golden_or_skip();
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/molmo-tiny-olmoe/pytorch_model.bin", g) > 0);
    return path;
}

static unsigned char *slurp_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_gt(n, 0);
    rewind(f);
    unsigned char *d = malloc((size_t)n);
    cr_assert_eq(fread(d, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return d;
}

/* Independent of the reader: walks the local headers from the start of the file (APPNOTE
 * 4.3.7: signature, 22 bytes, name length at 26, extra length at 28, name, extra, data) to the
 * entry named name and returns its data offset; the sizes come from the central directory,
 * because torch writes local headers with flag bit 3 (sizes 0), so this walk reads each
 * entry's size from the matching central record. */
static int64_t local_data_offset(const unsigned char *f, size_t len, const char *name) {
    /* central directory: offset at byte 16 of the end record (no comment, no zip64 here) */
    const unsigned char *e = f + len - 22;
    size_t cd = e[16] | e[17] << 8 | e[18] << 16 | (size_t)e[19] << 24;
    size_t nentries = e[10] | e[11] << 8;
    for (size_t i = 0, q = cd; i < nentries; i++) {
        size_t nl = f[q + 28] | f[q + 29] << 8, xl = f[q + 30] | f[q + 31] << 8;
        size_t cl = f[q + 32] | f[q + 33] << 8;
        size_t lo = f[q + 42] | f[q + 43] << 8 | f[q + 44] << 16 | (size_t)f[q + 45] << 24;
        if (nl == strlen(name) && memcmp(f + q + 46, name, nl) == 0) {
            size_t lnl = f[lo + 26] | f[lo + 27] << 8, lxl = f[lo + 28] | f[lo + 29] << 8;
            return (int64_t)(lo + 30 + lnl + lxl);
        }
        q += 46 + nl + xl + cl;
    }
    return -1;
}

/* molmo.md §2.1 and §2.2 with the sizes of molmo-tiny-olmoe/config.json: d_model 64, 2 layers,
 * 8 experts of width d/2 = 32 (mlp_ratio 1), embedding_size 264, additional_vocab 128; ViT
 * width 64, MLP 128, 9 layers, 577 positions, 14x14x3 = 588 patch values; projector inner
 * width d/2 = 32. 66 language + 161 vision tensors = 227. */
struct want {
    char name[100];
    int ndim;
    int64_t shape[2];
};

static size_t expected_tensors(struct want *w) {
    size_t n = 0;
#define W(nd, a, b, ...) \
    (snprintf(w[n].name, sizeof w[n].name, __VA_ARGS__), w[n].ndim = nd, w[n].shape[0] = a, \
     w[n].shape[1] = b, n++)
    const int d = 64, f = 32, X = 8, E = 264, D = 64, F = 128;
    W(2, E, d, "model.transformer.wte.embedding");
    W(2, 128, d, "model.transformer.wte.new_embedding");
    W(1, d, 0, "model.transformer.ln_f.weight");
    W(2, E, d, "lm_head.weight");
    for (int l = 0; l < 2; l++) {
        const char *b = "model.transformer.blocks";
        W(2, 3 * d, d, "%s.%d.attn.att_proj.weight", b, l);
        W(1, d, 0, "%s.%d.attn.attn_norm.weight", b, l);
        W(1, d, 0, "%s.%d.attn.q_norm.weight", b, l);
        W(1, d, 0, "%s.%d.attn.k_norm.weight", b, l);
        W(2, d, d, "%s.%d.attn.attn_out.weight", b, l);
        W(1, d, 0, "%s.%d.mlp.ff_norm.weight", b, l);
        W(2, X, d, "%s.%d.mlp.gate.weight", b, l);
        for (int e = 0; e < X; e++) {
            W(2, f, d, "%s.%d.mlp.experts.%d.gate_proj.weight", b, l, e);
            W(2, f, d, "%s.%d.mlp.experts.%d.up_proj.weight", b, l, e);
            W(2, d, f, "%s.%d.mlp.experts.%d.down_proj.weight", b, l, e);
        }
    }
    const char *v = "model.vision_backbone";
    W(2, D, 588, "%s.image_vit.patch_embedding.weight", v);
    W(1, D, 0, "%s.image_vit.class_embedding", v);
    W(2, 577, D, "%s.image_vit.positional_embedding", v);
    W(1, D, 0, "%s.image_vit.pre_ln.weight", v);
    W(1, D, 0, "%s.image_vit.pre_ln.bias", v);
    for (int r = 0; r < 9; r++) {
        const char *b = "model.vision_backbone.image_vit.transformer.resblocks";
        const char *wn[] = {"wq", "wk", "wv", "wo"};
        for (int k = 0; k < 4; k++) {
            W(2, D, D, "%s.%d.attention.%s.weight", b, r, wn[k]);
            W(1, D, 0, "%s.%d.attention.%s.bias", b, r, wn[k]);
        }
        W(1, D, 0, "%s.%d.attention_norm.weight", b, r);
        W(1, D, 0, "%s.%d.attention_norm.bias", b, r);
        W(1, D, 0, "%s.%d.ffn_norm.weight", b, r);
        W(1, D, 0, "%s.%d.ffn_norm.bias", b, r);
        W(2, F, D, "%s.%d.feed_forward.w1.weight", b, r);
        W(1, F, 0, "%s.%d.feed_forward.w1.bias", b, r);
        W(2, D, F, "%s.%d.feed_forward.w2.weight", b, r);
        W(1, D, 0, "%s.%d.feed_forward.w2.bias", b, r);
    }
    W(2, 2, 2 * D, "%s.pad_embed", v);
    const char *pn[] = {"wq", "wk", "wv"};
    for (int k = 0; k < 3; k++) {
        W(2, D, 2 * D, "%s.image_pooling_2d.%s.weight", v, pn[k]);
        W(1, D, 0, "%s.image_pooling_2d.%s.bias", v, pn[k]);
    }
    W(2, D, D, "%s.image_pooling_2d.wo.weight", v);
    W(1, D, 0, "%s.image_pooling_2d.wo.bias", v);
    W(2, d / 2, D, "%s.image_projector.w1.weight", v);
    W(2, d / 2, D, "%s.image_projector.w3.weight", v);
    W(2, d, d / 2, "%s.image_projector.w2.weight", v);
#undef W
    return n;
}

Test(torchbin_golden, molmoe_layout_has_every_tensor_with_its_shape) {
    char *path = golden_bin();
    struct molmo_torchbin *tb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_torchbin_open(&tb, path, &err), 0, "%s", err.msg);
    static struct want w[300];
    size_t n = expected_tensors(w);
    cr_assert_eq(n, 227);
    cr_assert_eq(molmo_torchbin_count(tb), 227);
    for (size_t i = 0; i < n; i++) {
        const struct molmo_torchbin_tensor *t = molmo_torchbin_find(tb, w[i].name);
        cr_assert(t, "missing %s", w[i].name);
        cr_assert_eq(t->dtype, MOLMO_DTYPE_F32, "%s", w[i].name);
        cr_assert_eq(t->ndim, w[i].ndim, "%s ndim %d", w[i].name, t->ndim);
        for (int k = 0; k < w[i].ndim; k++)
            cr_assert_eq(t->shape[k], w[i].shape[k], "%s dim %d: %lld", w[i].name, k,
                         (long long)t->shape[k]);
        size_t numel = (size_t)w[i].shape[0] * (w[i].ndim == 2 ? (size_t)w[i].shape[1] : 1);
        cr_assert_eq(t->nbytes, numel * 4, "%s", w[i].name);
        cr_assert_geq(molmo_torchbin_file_offset(tb, t), 0, "%s is not in place", w[i].name);
    }
    /* the first three keys, in the order of the pickle (pickletools.dis of data.pkl) */
    cr_assert_str_eq(molmo_torchbin_get(tb, 0)->name, "model.transformer.wte.embedding");
    cr_assert_str_eq(molmo_torchbin_get(tb, 1)->name, "model.transformer.wte.new_embedding");
    cr_assert_str_eq(molmo_torchbin_get(tb, 2)->name, "model.transformer.ln_f.weight");
    cr_assert_eq(molmo_torchbin_verify(tb, &err), 0, "%s", err.msg);
    molmo_torchbin_close(tb);
    free(path);
}

/* Storage keys per pickletools.dis of data.pkl (persistent ids ('storage', FloatStorage, key,
 * 'cpu', numel)); first and last values read from the storage entries with Python's zipfile
 * and struct '<f' (an independent reader), written as the float32 they are. */
Test(torchbin_golden, tensors_lie_in_place_at_the_local_header_data_offsets) {
    char *path = golden_bin();
    size_t len;
    unsigned char *file = slurp_file(path, &len);
    struct molmo_torchbin *tb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_torchbin_open(&tb, path, &err), 0, "%s", err.msg);
    static const struct {
        const char *name, *key;
        float first, last;
    } cases[] = {
        {"model.transformer.wte.embedding", "0", -1.0408011674880981f, -2.489579200744629f},
        {"lm_head.weight", "226", -0.1905006468296051f, -0.6389177441596985f},
        {"model.transformer.blocks.0.mlp.experts.0.gate_proj.weight", "9", -0.017665700986981392f,
         -0.04385065287351608f},
        {"model.transformer.blocks.1.mlp.experts.7.down_proj.weight", "63", 0.014221575111150742f,
         0.15473045408725739f},
        {"model.transformer.blocks.0.attn.att_proj.weight", "5", 0.08933287113904953f,
         0.012518356554210186f},
        {"model.vision_backbone.image_vit.positional_embedding", "78", 0.12099413573741913f,
         -0.3834463059902191f},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct molmo_torchbin_tensor *t = molmo_torchbin_find(tb, cases[k].name);
        cr_assert(t, "%s", cases[k].name);
        char entry[64];
        snprintf(entry, sizeof entry, "pytorch_model/data/%s", cases[k].key);
        int64_t off = local_data_offset(file, len, entry);
        cr_assert_gt(off, 0, "%s", entry);
        cr_assert_eq(molmo_torchbin_file_offset(tb, t), off, "%s", cases[k].name);
        cr_assert_eq(off % 64, 0, "torch aligns storages to 64 bytes");
        cr_assert_eq(memcmp(t->data, file + off, t->nbytes), 0, "%s", cases[k].name);
        const float *v = t->data;
        cr_assert_eq(v[0], cases[k].first, "%s[0] = %.9g", cases[k].name, v[0]);
        cr_assert_eq(v[t->nbytes / 4 - 1], cases[k].last, "%s[-1]", cases[k].name);
    }
    molmo_torchbin_close(tb);
    free(file);
    free(path);
}

/* Cut the real file inside its pickle, a storage, the central directory and the end record. */
Test(torchbin_golden, truncated_copies_of_the_real_file_are_clean_errors) {
    char *src = golden_bin();
    size_t len;
    unsigned char *file = slurp_file(src, &len);
    const size_t cuts[] = {0, 21, 100, 33000, 1313300, len / 2, len - 5000, len - 23, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        struct buf b = {.p = file, .n = cuts[k]};
        char *path = write_file("cut.bin", &b);
        struct molmo_torchbin *tb = NULL;
        struct jb_err err = {0};
        cr_assert_lt(molmo_torchbin_open(&tb, path, &err), 0, "cut %zu opened", cuts[k]);
        cr_assert_null(tb);
        cr_assert(strstr(err.msg, cuts[k] < 22 ? "not a zip archive"
                                               : "no zip end-of-central-directory record"),
                  "cut %zu: %s", cuts[k], err.msg);
        free(path);
    }
    free(file);
    free(src);
}

/* ---- joulebench tensors ---- */

Test(torchbin_golden, tensors_command_lists_every_tensor) {
    char *path = golden_bin();
    static struct want w[300];
    size_t n = expected_tensors(w), bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += 4 * (size_t)w[i].shape[0] * (w[i].ndim == 2 ? (size_t)w[i].shape[1] : 1);
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' tensors --verify '%s'", jb_test_bin(), path);
    cr_assert_eq(p.status, 0, "%s", p.err);
    char want[100];
    snprintf(want, sizeof want, "\n%zu tensors, %zu bytes, CRC-32 of every entry ok\n", n, bytes);
    cr_assert(strstr(p.out, want), "'%s' not in the output", want);
    /* wte.embedding's storage "0" starts at 33600 (Python zipfile: header_offset 33518 + 30 +
     * 20-byte name + 32-byte extra) */
    const char *line = strstr(p.out, "\nmodel.transformer.wte.embedding ");
    cr_assert(line);
    cr_assert(strstr(line, "F32    [264, 64]         33600\n") == strchr(line, 'F'), "%.200s",
              line);
    jb_test_proc_free(&p);
    free(path);
}

Test(torchbin, tensors_command_names_a_foreign_global_and_exits_2) {
    struct buf p = {0};
    put1(&p, 0x80);
    put1(&p, 2);
    pk_global(&p, "posix", "system");
    pk_str(&p, "touch pwned");
    put1(&p, 0x85);
    put1(&p, 'R');
    put1(&p, '.');
    char *path = write_checkpoint("evil.bin", &p, NULL, false, (struct tz_opts){0});
    struct jb_test_proc r;
    jb_test_run(&r, "cd '%s' && '%s' tensors '%s'", tmp, jb_test_bin(), path);
    cr_assert_eq(r.status, 2);
    cr_assert_str_empty(r.out);
    cr_assert(strstr(r.err, "joulebench: ") == r.err, "%s", r.err);
    cr_assert(strstr(r.err, "global posix.system is not allowed"), "%s", r.err);
    char *pwned = NULL;
    cr_assert(asprintf(&pwned, "%s/pwned", tmp) > 0);
    cr_assert(access(pwned, F_OK) != 0, "the pickle ran a command");
    free(pwned);
    jb_test_proc_free(&r);
    jb_test_run(&r, "'%s' tensors", jb_test_bin());
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "FILE.bin is required"), "%s", r.err);
    jb_test_proc_free(&r);
    free(p.p);
    free(path);
}
