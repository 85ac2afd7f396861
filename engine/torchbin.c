/* torchbin.c: PyTorch zip checkpoints (`torch.save`, MolmoE-1B's `pytorch_model.bin`) read in C.
 *
 * The format (torch/serialization.py `_save`, caffe2/serialize/inline_container.cc, PyTorch 1.6
 * and later) is a zip archive whose entries all sit under one archive name ("pytorch_model/" in
 * Hugging Face files):
 *   <archive>/data.pkl     pickle (protocol 2) of the saved object, here a dict {name: tensor}
 *   <archive>/data/<key>   the raw bytes of storage <key>: numel * element size, little-endian
 *   <archive>/version, <archive>/byteorder ("little"; written since PyTorch 2.1), others: ignored
 * torch writes every entry stored (method 0), 64-byte aligned by padding the local header's extra
 * field ("FB" blocks), streamed (flag bit 3: CRC and sizes only in the central directory), and
 * adds zip64 records once a size or offset passes 4 GiB (MolmoE-1B's file is 28.9 GB).
 *
 * Why a small zip reader here instead of libzip or minizip: both hand out an entry's bytes
 * through their own read calls into a caller's buffer (zip_fread, unzReadCurrentFile) — for
 * MolmoE-1B a 28.9 GB copy — while what we need is where a stored entry's data lies in the file,
 * so that tensors are used in place from the read-only mapping (style.md, "Memory"). libzip's
 * public API has no call for that offset. Because torch.save never compresses, the whole job is
 * the end-of-central-directory record (plus the zip64 locator and record), the central
 * directory and one local header per entry: every field is bounds-checked against the mapping,
 * and the hostile archives of tests/test-engine-torchbin.c exercise the checks. A compressed or
 * encrypted entry is refused by name. zlib's crc32 checks data.pkl on open and every entry on
 * demand (molmo_torchbin_verify).
 *
 * The unpickler is a stack machine over a fixed opcode set, with a fixed list of globals that are
 * matched by name and never looked up, imported or called: REDUCE on one of them builds a plain C
 * value (an empty dict, a tensor view). Any other global or opcode is an error naming it. It
 * recurses nowhere and bounds the objects it builds, so neither a self-referencing structure nor
 * a pickle that pushes the same object millions of times can exhaust the stack or memory.
 */
#include "config.h"

#include "engine/molmo.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "torchbin.c hands out the little-endian storages as they are: it needs a little-endian host"
#endif

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOC 0x07064b50u

/* Object slots (objects + list/dict/tuple items) and stack entries one pickle may create. A
 * state dict needs about 30 slots per tensor (MolmoE-1B: ~3,100 tensors), so 16 Mi is generous
 * and still bounds memory at about a gigabyte for a hostile file. */
#define MAX_SLOTS (16u << 20)
#define MAX_STACK (8u << 20)

struct zentry {
    const unsigned char *name; /* into the mapping, not NUL-terminated */
    size_t name_len;
    uint64_t local_off, csize, usize;
    uint32_t crc;
    uint16_t method, flags;
    /* Set when data.pkl refers to the entry as a storage. */
    bool is_storage;
    enum molmo_dtype dtype;
    uint64_t numel;
    const unsigned char *data;
};

struct tb_tensor {
    struct molmo_torchbin_tensor pub; /* first member: get/find return &pub */
    void *owned;                      /* the C-order copy, or NULL when in place */
};

struct molmo_torchbin {
    char *path;
    struct jb_mmap map;
    struct zentry *entries; /* sorted by name */
    size_t n_entries;
    uint64_t cd_off; /* entry data must end before the central directory */
    char *archive;   /* the common first path component, "pytorch_model" */
    struct tb_tensor *tensors;
    size_t n_tensors;
    const struct tb_tensor **by_name; /* into tensors, sorted by name */
};

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* s (n bytes, maybe hostile) as a NUL-terminated string for a message: non-printable bytes
 * become '?', and long names are cut with "...". */
static const char *printable(char *buf, size_t cap, const void *s, size_t n) {
    const unsigned char *c = s;
    size_t k = 0;
    for (; k < n && k + 1 < cap; k++)
        buf[k] = (c[k] >= 0x20 && c[k] < 0x7f) ? (char)c[k] : '?';
    buf[k] = '\0';
    if (k < n && cap > 4) memcpy(buf + cap - 4, "...", 4);
    return buf;
}

/* ---- zip ---------------------------------------------------------------------------------- */

/* Fills the 64-bit values the zip64 extra field (id 0x0001) carries for the 32-bit fields that
 * hold 0xFFFFFFFF, in the order APPNOTE 4.5.3 fixes. Returns 0, or -1 when it is missing or short.
 */
static int zip64_extra(const unsigned char *x, size_t xl, struct zentry *z) {
    size_t i = 0;
    while (xl - i >= 4) {
        size_t id = rd16(x + i), sz = rd16(x + i + 2);
        if (sz > xl - i - 4) return -1;
        if (id == 1) {
            const unsigned char *f = x + i + 4;
            size_t left = sz;
            uint64_t *fields[3] = {&z->usize, &z->csize, &z->local_off};
            for (int j = 0; j < 3; j++) {
                if (*fields[j] != 0xffffffffu) continue;
                if (left < 8) return -1;
                *fields[j] = rd64(f);
                f += 8;
                left -= 8;
            }
            return 0;
        }
        i += 4 + sz;
    }
    return -1;
}

static int name_cmp(const unsigned char *a, size_t al, const unsigned char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int zentry_cmp(const void *a, const void *b) {
    const struct zentry *x = a, *y = b;
    return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

static struct zentry *zip_find(const struct molmo_torchbin *tb, const char *name) {
    size_t lo = 0, hi = tb->n_entries, nl = strlen(name);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct zentry *z = &tb->entries[mid];
        int c = name_cmp(z->name, z->name_len, (const unsigned char *)name, nl);
        if (c == 0) return z;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Reads the end-of-central-directory record (zip64 when its locator precedes it) and the
 * central directory into tb->entries, sorted by name; sets tb->archive. */
static int zip_read_directory(struct molmo_torchbin *tb, struct jb_err *err) {
    const unsigned char *p = tb->map.data;
    size_t len = tb->map.len;
    const char *path = tb->path;
    char nb[200];
    if (len < 22)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: not a zip archive (%zu bytes); torch.save checkpoints are zip files",
                          path, len);
    /* The record is the last 22 bytes plus a comment of up to 65535 bytes; requiring it to end
     * exactly at the end of the file keeps a signature inside data from matching. */
    size_t eocd = SIZE_MAX, lo = len - 22 > 0xffff ? len - 22 - 0xffff : 0;
    for (size_t i = len - 22 + 1; i-- > lo;) {
        if (rd32(p + i) == SIG_EOCD && i + 22 + rd16(p + i + 20) == len) {
            eocd = i;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: no zip end-of-central-directory record at the end of the file "
                          "(truncated, or not a torch.save zip checkpoint)",
                          path);
    const unsigned char *e = p + eocd;
    uint64_t n = rd16(e + 10), n_here = rd16(e + 8), cd_size = rd32(e + 12), cd_off = rd32(e + 16);
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), cd_limit = eocd;
    if (eocd >= 20 && rd32(e - 20) == SIG_EOCD64_LOC) {
        uint64_t off64 = rd64(e - 20 + 8);
        if (off64 > eocd - 20 || eocd - 20 - off64 < 56 || rd32(p + off64) != SIG_EOCD64)
            return jb_err_set(err, JB_EFORMAT,
                              "%s: the zip64 end-of-central-directory locator points to offset "
                              "%llu, where there is no zip64 record (truncated?)",
                              path, (unsigned long long)off64);
        const unsigned char *z = p + off64;
        disk = rd32(z + 16);
        cd_disk = rd32(z + 20);
        n_here = rd64(z + 24);
        n = rd64(z + 32);
        cd_size = rd64(z + 40);
        cd_off = rd64(z + 48);
        cd_limit = off64;
    } else if (n == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        return jb_err_set(err, JB_EFORMAT,
                          "%s: zip end record defers to zip64 values but has no zip64 locator",
                          path);
    }
    if (disk != 0 || cd_disk != 0 || n_here != n)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: multi-volume zip archives are not supported",
                          path);
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: the zip central directory (%llu bytes at offset %llu) lies outside "
                          "the file (truncated?)",
                          path, (unsigned long long)cd_size, (unsigned long long)cd_off);
    if (n == 0 || n > cd_size / 46)
        return jb_err_set(err, JB_EFORMAT, "%s: zip directory claims %llu entries in %llu bytes",
                          path, (unsigned long long)n, (unsigned long long)cd_size);
    tb->cd_off = cd_off;
    tb->entries = calloc((size_t)n, sizeof *tb->entries);
    if (!tb->entries)
        return jb_err_set(err, JB_ENOMEM, "%s: %llu zip entries", path, (unsigned long long)n);
    const unsigned char *cd = p + cd_off;
    size_t pos = 0;
    for (size_t k = 0; k < n; k++) {
        const unsigned char *q = cd + pos;
        if (cd_size - pos < 46 || rd32(q) != SIG_CENTRAL)
            return jb_err_set(err, JB_EFORMAT,
                              "%s: zip central directory entry %zu (offset %llu) is malformed",
                              path, k, (unsigned long long)(cd_off + pos));
        struct zentry *z = &tb->entries[k];
        z->flags = rd16(q + 8);
        z->method = rd16(q + 10);
        z->crc = rd32(q + 16);
        z->csize = rd32(q + 20);
        z->usize = rd32(q + 24);
        size_t nl = rd16(q + 28), xl = rd16(q + 30), cl = rd16(q + 32);
        z->local_off = rd32(q + 42);
        if (cd_size - pos - 46 < nl + xl + cl)
            return jb_err_set(err, JB_EFORMAT,
                              "%s: zip central directory entry %zu runs past the directory", path,
                              k);
        z->name = q + 46;
        z->name_len = nl;
        if (nl == 0 || memchr(z->name, 0, nl))
            return jb_err_set(err, JB_EFORMAT, "%s: zip entry %zu has an empty or NUL-bearing name",
                              path, k);
        if ((z->usize == 0xffffffffu || z->csize == 0xffffffffu || z->local_off == 0xffffffffu) &&
            zip64_extra(q + 46 + nl, xl, z) < 0)
            return jb_err_set(err, JB_EFORMAT, "%s: zip entry '%s' lacks its zip64 extra field",
                              path, printable(nb, sizeof nb, z->name, nl));
        pos += 46 + nl + xl + cl;
    }
    tb->n_entries = (size_t)n;
    /* torch's reader takes the archive name from the first entry (data.pkl comes first). */
    const unsigned char *slash = memchr(tb->entries[0].name, '/', tb->entries[0].name_len);
    if (!slash)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: zip entry '%s' is not inside an archive folder, as torch.save "
                          "writes them",
                          path,
                          printable(nb, sizeof nb, tb->entries[0].name, tb->entries[0].name_len));
    size_t al = (size_t)(slash - tb->entries[0].name);
    tb->archive = malloc(al + 1);
    if (!tb->archive) return jb_err_set(err, JB_ENOMEM, "%s: archive name", path);
    memcpy(tb->archive, tb->entries[0].name, al);
    tb->archive[al] = '\0';
    qsort(tb->entries, tb->n_entries, sizeof *tb->entries, zentry_cmp);
    for (size_t k = 1; k < tb->n_entries; k++)
        if (zentry_cmp(&tb->entries[k - 1], &tb->entries[k]) == 0)
            return jb_err_set(
                err, JB_EFORMAT, "%s: zip entry '%s' appears twice", path,
                printable(nb, sizeof nb, tb->entries[k].name, tb->entries[k].name_len));
    return 0;
}

/* The data of a stored entry: checks the method, the local header (signature, same name) and
 * that the data lies before the central directory; returns a pointer into the mapping. */
static int zip_entry_data(const struct molmo_torchbin *tb, const struct zentry *z,
                          const unsigned char **out, struct jb_err *err) {
    const unsigned char *p = tb->map.data;
    size_t len = tb->map.len;
    char nb[200];
    const char *name = printable(nb, sizeof nb, z->name, z->name_len);
    if (z->flags & 1u)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: zip entry '%s' is encrypted", tb->path, name);
    if (z->method != 0)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: zip entry '%s' is compressed (method %u); torch.save stores entries "
                          "uncompressed, so re-save the checkpoint with torch.save",
                          tb->path, name, (unsigned)z->method);
    if (z->csize != z->usize)
        return jb_err_set(err, JB_EFORMAT, "%s: stored zip entry '%s' has sizes %llu and %llu",
                          tb->path, name, (unsigned long long)z->csize,
                          (unsigned long long)z->usize);
    uint64_t lo = z->local_off;
    if (lo > len || len - lo < 30 || rd32(p + lo) != SIG_LOCAL)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: zip entry '%s': no local header at offset %llu (truncated?)",
                          tb->path, name, (unsigned long long)lo);
    size_t nl = rd16(p + lo + 26), xl = rd16(p + lo + 28);
    if (len - lo - 30 < nl + xl || nl != z->name_len || memcmp(p + lo + 30, z->name, nl) != 0)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: zip entry '%s': the local header at offset %llu does not match the "
                          "central directory",
                          tb->path, name, (unsigned long long)lo);
    uint64_t off = lo + 30 + nl + xl;
    if (off > tb->cd_off || z->usize > tb->cd_off - off)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: zip entry '%s' (%llu bytes at offset %llu) runs past the start of "
                          "the central directory (truncated?)",
                          tb->path, name, (unsigned long long)z->usize, (unsigned long long)off);
    *out = p + off;
    return 0;
}

/* ---- the restricted unpickler ------------------------------------------------------------- */

enum pk_kind {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_FLOAT,
    PK_STR,
    PK_TUPLE,
    PK_LIST,
    PK_DICT, /* dict and collections.OrderedDict: items are key, value, key, value, ... */
    PK_GLOBAL,
    PK_STORAGE,
    PK_TENSOR,
};

static const char *const kind_names[] = {
    "None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor",
};

/* The only globals a checkpoint may name. */
enum pk_global {
    G_ORDERED_DICT,
    G_REBUILD_TENSOR_V2,
    G_REBUILD_TENSOR,
    G_STORAGE_F32,
    G_STORAGE_BF16,
    G_STORAGE_F16,
};

static const struct {
    const char *module, *name;
} allowed_globals[] = {
    [G_ORDERED_DICT] = {"collections", "OrderedDict"},
    [G_REBUILD_TENSOR_V2] = {"torch._utils", "_rebuild_tensor_v2"},
    [G_REBUILD_TENSOR] = {"torch._utils", "_rebuild_tensor"}, /* torch.save before 1.0 */
    [G_STORAGE_F32] = {"torch", "FloatStorage"},
    [G_STORAGE_BF16] = {"torch", "BFloat16Storage"},
    [G_STORAGE_F16] = {"torch", "HalfStorage"},
};

struct pk_tensor {
    struct zentry *storage;
    int64_t offset; /* in elements */
    int ndim;
    int64_t shape[MOLMO_TORCHBIN_MAX_DIMS], stride[MOLMO_TORCHBIN_MAX_DIMS];
};

struct pk_obj {
    enum pk_kind kind;
    struct pk_obj *next; /* every object, for freeing without walking the (maybe cyclic) graph */
    union {
        int64_t i; /* BOOL, INT; GLOBAL: enum pk_global */
        double f;
        struct {
            char *s; /* NUL-terminated */
            size_t len;
        } str;
        struct {
            struct pk_obj **items;
            size_t n, cap;
        } seq;
        struct zentry *storage;
        struct pk_tensor *t;
    } u;
};

struct up {
    struct molmo_torchbin *tb;
    const unsigned char *p;
    size_t len, pos, op_at;
    unsigned char op;
    struct pk_obj **stack;
    size_t n_stack, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    struct pk_obj **memo;
    size_t cap_memo, n_memo;
    struct pk_obj *all;
    size_t n_slots;
    struct jb_err *err;
};

/* Every pickle opcode (Lib/pickle.py), to name a refused one. */
static const char *const opcode_names[256] = {
    ['('] = "MARK", ['.'] = "STOP", ['0'] = "POP", ['1'] = "POP_MARK", ['2'] = "DUP",
    ['F'] = "FLOAT", ['I'] = "INT", ['J'] = "BININT", ['K'] = "BININT1", ['L'] = "LONG",
    ['M'] = "BININT2", ['N'] = "NONE", ['P'] = "PERSID", ['Q'] = "BINPERSID", ['R'] = "REDUCE",
    ['S'] = "STRING", ['T'] = "BINSTRING", ['U'] = "SHORT_BINSTRING", ['V'] = "UNICODE",
    ['X'] = "BINUNICODE", ['a'] = "APPEND", ['b'] = "BUILD", ['c'] = "GLOBAL", ['d'] = "DICT",
    ['}'] = "EMPTY_DICT", ['e'] = "APPENDS", ['g'] = "GET", ['h'] = "BINGET", ['i'] = "INST",
    ['j'] = "LONG_BINGET", ['l'] = "LIST", [']'] = "EMPTY_LIST", ['o'] = "OBJ", ['p'] = "PUT",
    ['q'] = "BINPUT", ['r'] = "LONG_BINPUT", ['s'] = "SETITEM", ['t'] = "TUPLE",
    [')'] = "EMPTY_TUPLE", ['u'] = "SETITEMS", ['G'] = "BINFLOAT", [0x80] = "PROTO",
    [0x81] = "NEWOBJ", [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4", [0x85] = "TUPLE1",
    [0x86] = "TUPLE2", [0x87] = "TUPLE3", [0x88] = "NEWTRUE", [0x89] = "NEWFALSE", [0x8a] = "LONG1",
    [0x8b] = "LONG4", ['B'] = "BINBYTES", ['C'] = "SHORT_BINBYTES", [0x8c] = "SHORT_BINUNICODE",
    [0x8d] = "BINUNICODE8", [0x8e] = "BINBYTES8", [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS",
    [0x91] = "FROZENSET", [0x92] = "NEWOBJ_EX", [0x93] = "STACK_GLOBAL", [0x94] = "MEMOIZE",
    [0x95] = "FRAME", [0x96] = "BYTEARRAY8", [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
};

static const char *opcode_name(unsigned char op) { return opcode_names[op]; }

/* Sets the error as "PATH: ARCHIVE/data.pkl at byte N (OPCODE): message"; returns code. */
static int up_fail(struct up *u, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int up_fail(struct up *u, int code, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *op = opcode_name(u->op);
    return jb_err_set(u->err, code, "%s: %s/data.pkl at byte %zu (%s): %s", u->tb->path,
                      u->tb->archive, u->op_at, op ? op : "?", msg);
}

static int budget(struct up *u, size_t slots) {
    if (slots > MAX_SLOTS - u->n_slots)
        return up_fail(u, JB_EUNSUPPORTED,
                       "the pickle builds more than %u objects; a state dict needs about 30 per "
                       "tensor",
                       MAX_SLOTS);
    u->n_slots += slots;
    return 0;
}

static int obj_new(struct up *u, enum pk_kind kind, struct pk_obj **out) {
    int rc = budget(u, 1);
    if (rc) return rc;
    struct pk_obj *o = calloc(1, sizeof *o);
    if (!o) return up_fail(u, JB_ENOMEM, "out of memory");
    o->kind = kind;
    o->next = u->all;
    u->all = o;
    *out = o;
    return 0;
}

static void objs_free(struct up *u) {
    for (struct pk_obj *o = u->all, *next; o; o = next) {
        next = o->next;
        if (o->kind == PK_STR) free(o->u.str.s);
        if (o->kind == PK_TUPLE || o->kind == PK_LIST || o->kind == PK_DICT) free(o->u.seq.items);
        if (o->kind == PK_TENSOR) free(o->u.t);
        free(o);
    }
    u->all = NULL;
    free(u->stack);
    free(u->marks);
    free(u->memo);
}

static int seq_append(struct up *u, struct pk_obj *seq, struct pk_obj *item) {
    int rc = budget(u, 1);
    if (rc) return rc;
    if (seq->u.seq.n == seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? 2 * seq->u.seq.cap : 4;
        struct pk_obj **items = realloc(seq->u.seq.items, cap * sizeof *items);
        if (!items) return up_fail(u, JB_ENOMEM, "out of memory");
        seq->u.seq.items = items;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.items[seq->u.seq.n++] = item;
    return 0;
}

static int push(struct up *u, struct pk_obj *o) {
    if (u->n_stack == u->cap_stack) {
        if (u->cap_stack >= MAX_STACK)
            return up_fail(u, JB_EUNSUPPORTED, "the pickle stack grows past %u entries", MAX_STACK);
        size_t cap = u->cap_stack ? 2 * u->cap_stack : 64;
        struct pk_obj **s = realloc(u->stack, cap * sizeof *s);
        if (!s) return up_fail(u, JB_ENOMEM, "out of memory");
        u->stack = s;
        u->cap_stack = cap;
    }
    u->stack[u->n_stack++] = o;
    return 0;
}

static int push_new(struct up *u, enum pk_kind kind, struct pk_obj **out) {
    struct pk_obj *o = NULL;
    int rc = obj_new(u, kind, &o);
    if (!rc) rc = push(u, o);
    if (!rc && out) *out = o;
    return rc;
}

/* The stack position below which the current opcode may not reach: the innermost MARK. */
static size_t fence(const struct up *u) { return u->n_marks ? u->marks[u->n_marks - 1] : 0; }

/* Fails unless the stack holds n objects above the innermost MARK. */
static int need(struct up *u, size_t n) {
    if (u->n_stack - fence(u) < n) return up_fail(u, JB_EFORMAT, "stack underflow");
    return 0;
}

/* Pops the innermost MARK: the objects above it are stack[*first .. n_stack). */
static int pop_mark(struct up *u, size_t *first) {
    if (u->n_marks == 0) return up_fail(u, JB_EFORMAT, "no MARK on the stack");
    *first = u->marks[--u->n_marks];
    return 0;
}

static int take(struct up *u, size_t n, const unsigned char **out) {
    if (u->len - u->pos < n)
        return up_fail(u, JB_EFORMAT, "truncated: needs %zu bytes, %zu left", n, u->len - u->pos);
    *out = u->p + u->pos;
    u->pos += n;
    return 0;
}

static int push_tuple(struct up *u, size_t first) {
    size_t n = u->n_stack - first;
    struct pk_obj *t = NULL;
    int rc = obj_new(u, PK_TUPLE, &t);
    if (rc) return rc;
    if ((rc = budget(u, n))) return rc;
    if (n) {
        t->u.seq.items = malloc(n * sizeof *t->u.seq.items);
        if (!t->u.seq.items) return up_fail(u, JB_ENOMEM, "out of memory");
        memcpy(t->u.seq.items, u->stack + first, n * sizeof *t->u.seq.items);
    }
    t->u.seq.n = t->u.seq.cap = n;
    u->n_stack = first;
    return push(u, t);
}

static int push_int(struct up *u, int64_t v) {
    struct pk_obj *o = NULL;
    int rc = push_new(u, PK_INT, &o);
    if (!rc) o->u.i = v;
    return rc;
}

static int push_str(struct up *u, const unsigned char *s, size_t n) {
    struct pk_obj *o = NULL;
    int rc = push_new(u, PK_STR, &o);
    if (rc) return rc;
    o->u.str.s = malloc(n + 1);
    if (!o->u.str.s) return up_fail(u, JB_ENOMEM, "out of memory for a %zu-byte string", n);
    memcpy(o->u.str.s, s, n);
    o->u.str.s[n] = '\0';
    o->u.str.len = n;
    return 0;
}

static int memo_put(struct up *u, uint64_t idx) {
    int rc = need(u, 1);
    if (rc) return rc;
    if (idx >= MAX_SLOTS || idx > u->len) /* pickle numbers its memo 0, 1, 2, ... */
        return up_fail(u, JB_EFORMAT, "memo index %llu is out of range", (unsigned long long)idx);
    if (idx >= u->cap_memo) {
        size_t cap = u->cap_memo ? u->cap_memo : 256;
        while (cap <= idx)
            cap *= 2;
        struct pk_obj **m = realloc(u->memo, cap * sizeof *m);
        if (!m) return up_fail(u, JB_ENOMEM, "out of memory");
        memset(m + u->cap_memo, 0, (cap - u->cap_memo) * sizeof *m);
        u->memo = m;
        u->cap_memo = cap;
    }
    if (!u->memo[idx]) u->n_memo++;
    u->memo[idx] = u->stack[u->n_stack - 1];
    return 0;
}

static int memo_get(struct up *u, uint64_t idx) {
    if (idx >= u->cap_memo || !u->memo[idx])
        return up_fail(u, JB_EFORMAT, "memo index %llu was never stored", (unsigned long long)idx);
    return push(u, u->memo[idx]);
}

/* GLOBAL/STACK_GLOBAL: matches module and name against the allow-list. Nothing is resolved. */
static int push_global(struct up *u, const unsigned char *mod, size_t ml, const unsigned char *name,
                       size_t nl) {
    for (size_t g = 0; g < sizeof allowed_globals / sizeof allowed_globals[0]; g++) {
        if (strlen(allowed_globals[g].module) == ml && strlen(allowed_globals[g].name) == nl &&
            memcmp(allowed_globals[g].module, mod, ml) == 0 &&
            memcmp(allowed_globals[g].name, name, nl) == 0) {
            struct pk_obj *o = NULL;
            int rc = push_new(u, PK_GLOBAL, &o);
            if (!rc) o->u.i = (int64_t)g;
            return rc;
        }
    }
    char mb[100], nb[100];
    printable(mb, sizeof mb, mod, ml);
    printable(nb, sizeof nb, name, nl);
    if (strcmp(mb, "torch") == 0 && nl > 7 && memcmp(name + nl - 7, "Storage", 7) == 0)
        return up_fail(u, JB_EUNSUPPORTED,
                       "global torch.%s: only float32, bfloat16 and float16 storages are "
                       "supported",
                       nb);
    return up_fail(u, JB_EUNSUPPORTED,
                   "global %s.%s is not allowed: a checkpoint may only rebuild tensors "
                   "(collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
                   "torch.FloatStorage/BFloat16Storage/HalfStorage); nothing is ever called",
                   mb, nb);
}

/* GLOBAL's argument: two lines, "module\nname\n". */
static int op_global(struct up *u) {
    const unsigned char *line[2];
    size_t n[2];
    for (int k = 0; k < 2; k++) {
        const unsigned char *s = u->p + u->pos;
        const unsigned char *nl = memchr(s, '\n', u->len - u->pos);
        if (!nl) return up_fail(u, JB_EFORMAT, "truncated: no newline after the global's name");
        line[k] = s;
        n[k] = (size_t)(nl - s);
        u->pos += n[k] + 1;
    }
    return push_global(u, line[0], n[0], line[1], n[1]);
}

static enum molmo_dtype storage_dtype(int64_t g) {
    return g == G_STORAGE_BF16  ? MOLMO_DTYPE_BF16
           : g == G_STORAGE_F16 ? MOLMO_DTYPE_F16
                                : MOLMO_DTYPE_F32;
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel) -> the entry <archive>/data/key,
 * checked to hold exactly numel elements. The location ("cpu", "cuda:0") does not matter. */
static int op_persid(struct up *u) {
    int rc = need(u, 1);
    if (rc) return rc;
    struct pk_obj *pid = u->stack[--u->n_stack];
    struct pk_obj **it = pid->kind == PK_TUPLE && pid->u.seq.n == 5 ? pid->u.seq.items : NULL;
    if (!it || it[0]->kind != PK_STR ||
        strcmp(it[0]->u.str.s, "storage") != 0 || it[1]->kind != PK_GLOBAL ||
        it[1]->u.i < G_STORAGE_F32 || it[2]->kind != PK_STR || it[3]->kind != PK_STR ||
        it[4]->kind != PK_INT || it[4]->u.i < 0)
        return up_fail(u, JB_EFORMAT,
                       "persistent id is not ('storage', storage type, key, location, numel)");
    enum molmo_dtype dt = storage_dtype(it[1]->u.i);
    const char *key = it[2]->u.str.s;
    char kb[100];
    printable(kb, sizeof kb, key, it[2]->u.str.len);
    uint64_t numel = (uint64_t)it[4]->u.i;
    size_t el = molmo_dtype_size(dt);
    size_t al = strlen(u->tb->archive), kl = it[2]->u.str.len;
    char *name = malloc(al + 6 + kl + 1);
    if (!name) return up_fail(u, JB_ENOMEM, "out of memory");
    memcpy(name, u->tb->archive, al);
    memcpy(name + al, "/data/", 6);
    memcpy(name + al + 6, key, kl + 1);
    struct zentry *z = kl == strlen(key) ? zip_find(u->tb, name) : NULL;
    char nb[200];
    printable(nb, sizeof nb, name, al + 6 + kl);
    free(name);
    if (!z) return up_fail(u, JB_ENOTFOUND, "storage '%s': the archive has no entry '%s'", kb, nb);
    if (z->is_storage) {
        if (z->dtype != dt || z->numel != numel)
            return up_fail(u, JB_EFORMAT,
                           "storage '%s' is named again with another type or size (%llu %s, was "
                           "%llu %s)",
                           kb, (unsigned long long)numel, molmo_dtype_name(dt),
                           (unsigned long long)z->numel, molmo_dtype_name(z->dtype));
    } else {
        const unsigned char *data = NULL;
        if ((rc = zip_entry_data(u->tb, z, &data, u->err))) return rc;
        if (numel > UINT64_MAX / el || z->usize != numel * el)
            return up_fail(u, JB_EFORMAT,
                           "storage '%s' ('%s') holds %llu bytes, its persistent id says %llu %s "
                           "elements",
                           kb, nb, (unsigned long long)z->usize, (unsigned long long)numel,
                           molmo_dtype_name(dt));
        z->is_storage = true;
        z->dtype = dt;
        z->numel = numel;
        z->data = data;
    }
    struct pk_obj *o = NULL;
    if ((rc = push_new(u, PK_STORAGE, &o))) return rc;
    o->u.storage = z;
    return 0;
}

/* Reads a tuple of ints (a size or a stride) into v; returns its length or -1. */
static int int_tuple(const struct pk_obj *o, int64_t *v) {
    if (o->kind != PK_TUPLE || o->u.seq.n > MOLMO_TORCHBIN_MAX_DIMS) return -1;
    for (size_t i = 0; i < o->u.seq.n; i++) {
        if (o->u.seq.items[i]->kind != PK_INT) return -1;
        v[i] = o->u.seq.items[i]->u.i;
    }
    return (int)o->u.seq.n;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
 * [, metadata]) or _rebuild_tensor(storage, storage_offset, size, stride): a strided view of a
 * storage, checked to lie inside it. */
static int rebuild_tensor(struct up *u, int64_t g, struct pk_obj *args) {
    size_t n = args->u.seq.n;
    struct pk_obj **a = args->u.seq.items;
    const char *fn = allowed_globals[g].name;
    bool ok = g == G_REBUILD_TENSOR_V2 ? (n == 6 || n == 7) : n == 4;
    if (ok && g == G_REBUILD_TENSOR_V2)
        ok = a[4]->kind == PK_BOOL && a[5]->kind == PK_DICT &&
             (n == 6 || a[6]->kind == PK_NONE || a[6]->kind == PK_DICT);
    if (!ok || a[0]->kind != PK_STORAGE || a[1]->kind != PK_INT)
        return up_fail(u, JB_EFORMAT, "%s called with arguments torch.save does not write", fn);
    struct pk_tensor t = {.storage = a[0]->u.storage, .offset = a[1]->u.i};
    int64_t stride[MOLMO_TORCHBIN_MAX_DIMS];
    int nd = int_tuple(a[2], t.shape), ns = int_tuple(a[3], stride);
    if (nd < 0 || ns != nd)
        return up_fail(u, JB_EFORMAT,
                       "%s: size and stride must be tuples of at most %d ints of one length", fn,
                       MOLMO_TORCHBIN_MAX_DIMS);
    t.ndim = nd;
    memcpy(t.stride, stride, sizeof stride);
    /* The highest element index the view touches must lie inside the storage. */
    uint64_t numel = 1, last = (uint64_t)t.offset;
    bool overflow = t.offset < 0;
    for (int d = 0; d < nd && !overflow; d++) {
        if (t.shape[d] < 0 || t.stride[d] < 0) {
            overflow = true;
            break;
        }
        overflow |= __builtin_mul_overflow(numel, (uint64_t)t.shape[d], &numel);
        uint64_t span;
        if (t.shape[d] > 0) {
            overflow |=
                __builtin_mul_overflow((uint64_t)(t.shape[d] - 1), (uint64_t)t.stride[d], &span);
            overflow |= __builtin_add_overflow(last, span, &last);
        }
    }
    char kb[200];
    printable(kb, sizeof kb, t.storage->name, t.storage->name_len);
    if (overflow || numel > (uint64_t)INT64_MAX)
        return up_fail(u, JB_EFORMAT,
                       "%s: negative or overflowing offset, size or stride (storage '%s')", fn, kb);
    if (numel > 0 && last >= t.storage->numel)
        return up_fail(u, JB_EFORMAT,
                       "%s: the tensor reaches element %llu of storage '%s', which has %llu "
                       "elements (offset %lld)",
                       fn, (unsigned long long)last, kb, (unsigned long long)t.storage->numel,
                       (long long)t.offset);
    struct pk_obj *o = NULL;
    int rc = push_new(u, PK_TENSOR, &o);
    if (rc) return rc;
    o->u.t = malloc(sizeof t);
    if (!o->u.t) return up_fail(u, JB_ENOMEM, "out of memory");
    *o->u.t = t;
    return 0;
}

static int op_reduce(struct up *u) {
    int rc = need(u, 2);
    if (rc) return rc;
    struct pk_obj *args = u->stack[--u->n_stack];
    struct pk_obj *fn = u->stack[--u->n_stack];
    if (fn->kind != PK_GLOBAL)
        return up_fail(u, JB_EUNSUPPORTED, "REDUCE calls a %s, not an allowed global",
                       kind_names[fn->kind]);
    if (args->kind != PK_TUPLE)
        return up_fail(u, JB_EFORMAT, "REDUCE arguments are a %s, not a tuple",
                       kind_names[args->kind]);
    switch ((enum pk_global)fn->u.i) {
    case G_ORDERED_DICT:
        if (args->u.seq.n != 0)
            return up_fail(u, JB_EFORMAT, "collections.OrderedDict called with arguments");
        return push_new(u, PK_DICT, NULL);
    case G_REBUILD_TENSOR_V2:
    case G_REBUILD_TENSOR: return rebuild_tensor(u, fn->u.i, args);
    case G_STORAGE_F32:
    case G_STORAGE_BF16:
    case G_STORAGE_F16: break;
    }
    return up_fail(u, JB_EUNSUPPORTED, "torch.%s may only name a storage type, not be called",
                   allowed_globals[fn->u.i].name);
}

static int op_setitems(struct up *u, bool one) {
    size_t first = 0;
    int rc;
    if (one) {
        if ((rc = need(u, 3))) return rc;
        first = u->n_stack - 2;
    } else {
        if ((rc = pop_mark(u, &first))) return rc;
        if (first <= fence(u)) return up_fail(u, JB_EFORMAT, "stack underflow"); /* the dict */
    }
    struct pk_obj *d = u->stack[first - 1];
    if (d->kind != PK_DICT)
        return up_fail(u, JB_EFORMAT, "sets items on a %s", kind_names[d->kind]);
    if ((u->n_stack - first) % 2)
        return up_fail(u, JB_EFORMAT, "odd number of objects for key/value pairs");
    for (size_t i = first; i < u->n_stack; i++)
        if ((rc = seq_append(u, d, u->stack[i]))) return rc;
    u->n_stack = first;
    return 0;
}

static int op_appends(struct up *u, bool one) {
    size_t first = 0;
    int rc;
    if (one) {
        if ((rc = need(u, 2))) return rc;
        first = u->n_stack - 1;
    } else {
        if ((rc = pop_mark(u, &first))) return rc;
        if (first <= fence(u)) return up_fail(u, JB_EFORMAT, "stack underflow"); /* the list */
    }
    struct pk_obj *l = u->stack[first - 1];
    if (l->kind != PK_LIST) return up_fail(u, JB_EFORMAT, "appends to a %s", kind_names[l->kind]);
    for (size_t i = first; i < u->n_stack; i++)
        if ((rc = seq_append(u, l, u->stack[i]))) return rc;
    u->n_stack = first;
    return 0;
}

/* Runs the pickle to its STOP; *result is the object on top of the stack then. */
static int unpickle(struct up *u, struct pk_obj **result) {
    for (;;) {
        int rc = 0;
        const unsigned char *b = NULL;
        u->op_at = u->pos;
        u->op = 0;
        if (u->pos >= u->len) return up_fail(u, JB_EFORMAT, "the pickle ends without STOP");
        unsigned char op = u->p[u->pos++];
        u->op = op;
        switch (op) {
        case 0x80: /* PROTO */
            if ((rc = take(u, 1, &b))) return rc;
            if (b[0] < 2 || b[0] > 5)
                return up_fail(u, JB_EUNSUPPORTED, "pickle protocol %u is not supported", b[0]);
            break;
        case 0x95: /* FRAME: a length hint for protocol 4 readers; the opcodes follow inline */
            rc = take(u, 8, &b);
            break;
        case '(': /* MARK */
            if (u->n_marks == u->cap_marks) {
                size_t cap = u->cap_marks ? 2 * u->cap_marks : 16;
                if (cap > MAX_STACK) return up_fail(u, JB_EUNSUPPORTED, "too many open MARKs");
                size_t *m = realloc(u->marks, cap * sizeof *m);
                if (!m) return up_fail(u, JB_ENOMEM, "out of memory");
                u->marks = m;
                u->cap_marks = cap;
            }
            u->marks[u->n_marks++] = u->n_stack;
            break;
        case '}': rc = push_new(u, PK_DICT, NULL); break;  /* EMPTY_DICT */
        case ']': rc = push_new(u, PK_LIST, NULL); break;  /* EMPTY_LIST */
        case ')': rc = push_new(u, PK_TUPLE, NULL); break; /* EMPTY_TUPLE */
        case 'N': rc = push_new(u, PK_NONE, NULL); break;  /* NONE */
        case 0x88:                                         /* NEWTRUE */
        case 0x89: {                                       /* NEWFALSE */
            struct pk_obj *o = NULL;
            if (!(rc = push_new(u, PK_BOOL, &o))) o->u.i = op == 0x88;
            break;
        }
        case 't': { /* TUPLE */
            size_t first = 0;
            if (!(rc = pop_mark(u, &first))) rc = push_tuple(u, first);
            break;
        }
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            if (!(rc = need(u, op - 0x84u))) rc = push_tuple(u, u->n_stack - (op - 0x84u));
            break;
        case 'J': /* BININT: int32 little-endian */
            if (!(rc = take(u, 4, &b))) rc = push_int(u, (int32_t)rd32(b));
            break;
        case 'K': /* BININT1 */
            if (!(rc = take(u, 1, &b))) rc = push_int(u, b[0]);
            break;
        case 'M': /* BININT2 */
            if (!(rc = take(u, 2, &b))) rc = push_int(u, rd16(b));
            break;
        case 0x8a: { /* LONG1: n bytes, two's complement, little-endian */
            if ((rc = take(u, 1, &b))) break;
            size_t n = b[0];
            if (n > 8) return up_fail(u, JB_EUNSUPPORTED, "a %zu-byte integer is too large", n);
            if ((rc = take(u, n, &b))) break;
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++)
                v |= (uint64_t)b[i] << (8 * i);
            if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
            rc = push_int(u, (int64_t)v);
            break;
        }
        case 'G': { /* BINFLOAT: float64 big-endian */
            if ((rc = take(u, 8, &b))) break;
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++)
                bits = bits << 8 | b[i];
            struct pk_obj *o = NULL;
            if (!(rc = push_new(u, PK_FLOAT, &o))) memcpy(&o->u.f, &bits, sizeof bits);
            break;
        }
        case 'X':    /* BINUNICODE: uint32 length, UTF-8 */
        case 0x8c: { /* SHORT_BINUNICODE: uint8 length */
            size_t n;
            if (op == 'X') {
                if ((rc = take(u, 4, &b))) break;
                n = rd32(b);
            } else {
                if ((rc = take(u, 1, &b))) break;
                n = b[0];
            }
            if ((rc = take(u, n, &b))) break;
            if (memchr(b, 0, n)) return up_fail(u, JB_EFORMAT, "a string holds a NUL byte");
            rc = push_str(u, b, n);
            break;
        }
        case 'q': /* BINPUT */
            if (!(rc = take(u, 1, &b))) rc = memo_put(u, b[0]);
            break;
        case 'r': /* LONG_BINPUT */
            if (!(rc = take(u, 4, &b))) rc = memo_put(u, rd32(b));
            break;
        case 0x94: /* MEMOIZE */ rc = memo_put(u, u->n_memo); break;
        case 'h': /* BINGET */
            if (!(rc = take(u, 1, &b))) rc = memo_get(u, b[0]);
            break;
        case 'j': /* LONG_BINGET */
            if (!(rc = take(u, 4, &b))) rc = memo_get(u, rd32(b));
            break;
        case 'c': rc = op_global(u); break; /* GLOBAL */
        case 0x93: {                        /* STACK_GLOBAL: module and name from the stack */
            if ((rc = need(u, 2))) break;
            struct pk_obj *name = u->stack[--u->n_stack], *mod = u->stack[--u->n_stack];
            if (mod->kind != PK_STR || name->kind != PK_STR)
                return up_fail(u, JB_EFORMAT, "STACK_GLOBAL needs two strings");
            rc = push_global(u, (const unsigned char *)mod->u.str.s, mod->u.str.len,
                             (const unsigned char *)name->u.str.s, name->u.str.len);
            break;
        }
        case 'Q': rc = op_persid(u); break; /* BINPERSID */
        case 'R': rc = op_reduce(u); break; /* REDUCE */
        case 'b': { /* BUILD: only an OrderedDict's instance dict (state_dict()._metadata) */
            if ((rc = need(u, 2))) break;
            struct pk_obj *state = u->stack[--u->n_stack];
            struct pk_obj *target = u->stack[u->n_stack - 1];
            if (target->kind != PK_DICT || state->kind != PK_DICT)
                return up_fail(u, JB_EUNSUPPORTED, "BUILD sets the state of a %s from a %s",
                               kind_names[target->kind], kind_names[state->kind]);
            break; /* the attributes (layer versions) do not matter to us */
        }
        case 's': rc = op_setitems(u, true); break;  /* SETITEM */
        case 'u': rc = op_setitems(u, false); break; /* SETITEMS */
        case 'a': rc = op_appends(u, true); break;   /* APPEND */
        case 'e': rc = op_appends(u, false); break;  /* APPENDS */
        case '.':                                    /* STOP */
            if ((rc = need(u, 1))) return rc;
            *result = u->stack[u->n_stack - 1];
            return 0;
        default: {
            const char *name = opcode_name(op);
            if (name)
                return up_fail(u, JB_EUNSUPPORTED,
                               "pickle opcode %s (0x%02x) is not allowed in a checkpoint", name,
                               op);
            return up_fail(u, JB_EFORMAT, "unknown pickle opcode 0x%02x", op);
        }
        }
        if (rc) return rc;
    }
}

/* ---- the tensor table --------------------------------------------------------------------- */

/* C order, ignoring the strides of size-1 dimensions as torch's is_contiguous does. */
static bool is_c_contiguous(const struct pk_tensor *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (t->stride[d] != expect) return false;
        expect *= t->shape[d];
    }
    return true;
}

/* Copies the strided view t into dst in C order (numel elements of el bytes). */
static void gather(unsigned char *dst, const struct pk_tensor *t, size_t numel, size_t el) {
    const unsigned char *base = t->storage->data;
    int64_t idx[MOLMO_TORCHBIN_MAX_DIMS] = {0};
    size_t src = (size_t)t->offset;
    for (size_t i = 0; i < numel; i++) {
        memcpy(dst + i * el, base + src * el, el);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) {
                src += (size_t)t->stride[d];
                break;
            }
            src -= (size_t)(t->stride[d] * (t->shape[d] - 1));
            idx[d] = 0;
        }
    }
}

static int by_name_cmp(const void *a, const void *b) {
    const struct tb_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->pub.name, (*y)->pub.name);
}

/* One table entry per key of the top-level dict, in its order. */
static int build_table(struct molmo_torchbin *tb, const struct pk_obj *top, struct jb_err *err) {
    char kb[200];
    if (top->kind != PK_DICT)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: %s/data.pkl holds a %s, not a state dict of tensors", tb->path,
                          tb->archive, kind_names[top->kind]);
    size_t n = top->u.seq.n / 2;
    tb->tensors = calloc(n ? n : 1, sizeof *tb->tensors);
    tb->by_name = calloc(n ? n : 1, sizeof *tb->by_name);
    if (!tb->tensors || !tb->by_name)
        return jb_err_set(err, JB_ENOMEM, "%s: tensor table", tb->path);
    for (size_t i = 0; i < n; i++) {
        const struct pk_obj *k = top->u.seq.items[2 * i], *v = top->u.seq.items[2 * i + 1];
        if (k->kind != PK_STR)
            return jb_err_set(err, JB_EFORMAT, "%s: state dict key %zu is a %s, not a str",
                              tb->path, i, kind_names[k->kind]);
        printable(kb, sizeof kb, k->u.str.s, k->u.str.len);
        if (v->kind != PK_TENSOR)
            return jb_err_set(err, JB_EFORMAT, "%s: state dict entry '%s' is a %s, not a tensor",
                              tb->path, kb, kind_names[v->kind]);
        const struct pk_tensor *t = v->u.t;
        struct tb_tensor *out = &tb->tensors[tb->n_tensors];
        out->pub.name = strdup(k->u.str.s);
        if (!out->pub.name) return jb_err_set(err, JB_ENOMEM, "%s: tensor names", tb->path);
        tb->by_name[tb->n_tensors] = out;
        tb->n_tensors++;
        out->pub.dtype = t->storage->dtype;
        out->pub.ndim = t->ndim;
        size_t numel = 1, el = molmo_dtype_size(t->storage->dtype);
        for (int d = 0; d < t->ndim; d++) {
            out->pub.shape[d] = t->shape[d];
            numel *= (size_t)t->shape[d]; /* bounded by the storage: checked at REDUCE */
        }
        out->pub.nbytes = numel * el;
        if (numel == 0) continue;
        const unsigned char *first = t->storage->data + (size_t)t->offset * el;
        if (is_c_contiguous(t) && (uintptr_t)first % el == 0) {
            out->pub.data = first;
            continue;
        }
        /* Non-contiguous views (a transposed or sliced weight) and misaligned data are copied
         * into C order once, here; torch.save of a state dict writes neither. */
        out->owned = malloc(out->pub.nbytes);
        if (!out->owned)
            return jb_err_set(err, JB_ENOMEM, "%s: copy of tensor '%s' (%zu bytes)", tb->path, kb,
                              out->pub.nbytes);
        gather(out->owned, t, numel, el);
        out->pub.data = out->owned;
    }
    qsort(tb->by_name, tb->n_tensors, sizeof *tb->by_name, by_name_cmp);
    for (size_t i = 1; i < tb->n_tensors; i++) {
        const char *a = tb->by_name[i - 1]->pub.name;
        if (strcmp(a, tb->by_name[i]->pub.name) == 0)
            return jb_err_set(err, JB_EFORMAT, "%s: state dict key '%s' appears twice", tb->path,
                              printable(kb, sizeof kb, a, strlen(a)));
    }
    return 0;
}

/* <archive>/byteorder, when present (PyTorch 2.1+), must say "little". */
static int check_byteorder(struct molmo_torchbin *tb, struct jb_err *err) {
    size_t al = strlen(tb->archive);
    char *name = malloc(al + sizeof "/byteorder");
    if (!name) return jb_err_set(err, JB_ENOMEM, "%s: byteorder", tb->path);
    memcpy(name, tb->archive, al);
    memcpy(name + al, "/byteorder", sizeof "/byteorder");
    const struct zentry *z = zip_find(tb, name);
    int rc = 0;
    const unsigned char *d = NULL;
    if (!z || (rc = zip_entry_data(tb, z, &d, err))) goto out;
    if (z->usize == 3 && memcmp(d, "big", 3) == 0)
        rc = jb_err_set(err, JB_EUNSUPPORTED,
                        "%s: big-endian checkpoint (%s says \"big\"); re-save it on a "
                        "little-endian machine",
                        tb->path, name);
    else if (z->usize != 6 || memcmp(d, "little", 6) != 0)
        rc =
            jb_err_set(err, JB_EFORMAT, "%s: %s is neither \"little\" nor \"big\"", tb->path, name);
out:
    free(name);
    return rc;
}

static uint32_t crc32_of(const unsigned char *d, uint64_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, d, chunk);
        d += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

int molmo_torchbin_open(struct molmo_torchbin **out, const char *path, struct jb_err *err) {
    *out = NULL;
    struct up u = {.err = err};
    struct molmo_torchbin *tb = calloc(1, sizeof *tb);
    if (!tb) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    int rc = 0;
    char *pkl_name = NULL;
    tb->path = strdup(path);
    if (!tb->path) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((rc = jb_mmap_open(&tb->map, path, err))) goto out;
    if ((rc = zip_read_directory(tb, err))) goto out;
    if ((rc = check_byteorder(tb, err))) goto out;

    size_t al = strlen(tb->archive);
    pkl_name = malloc(al + sizeof "/data.pkl");
    if (!pkl_name) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    memcpy(pkl_name, tb->archive, al);
    memcpy(pkl_name + al, "/data.pkl", sizeof "/data.pkl");
    const struct zentry *pkl = zip_find(tb, pkl_name);
    if (!pkl) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: no entry '%s' (not a torch.save checkpoint)", path,
                        pkl_name);
        goto out;
    }
    const unsigned char *pd = NULL;
    if ((rc = zip_entry_data(tb, pkl, &pd, err))) goto out;
    if (crc32_of(pd, pkl->usize) != pkl->crc) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: '%s' fails its CRC-32 check (corrupt file)", path,
                        pkl_name);
        goto out;
    }
    u.tb = tb;
    u.p = pd;
    u.len = (size_t)pkl->usize;
    struct pk_obj *top = NULL;
    if ((rc = unpickle(&u, &top))) goto out;
    rc = build_table(tb, top, err);
out:
    objs_free(&u);
    free(pkl_name);
    if (rc) {
        molmo_torchbin_close(tb);
        return rc;
    }
    *out = tb;
    return 0;
}

void molmo_torchbin_close(struct molmo_torchbin *tb) {
    if (!tb) return;
    for (size_t i = 0; i < tb->n_tensors; i++) {
        free(tb->tensors[i].pub.name);
        free(tb->tensors[i].owned);
    }
    free(tb->tensors);
    free(tb->by_name);
    free(tb->entries);
    free(tb->archive);
    jb_mmap_close(&tb->map);
    free(tb->path);
    free(tb);
}

size_t molmo_torchbin_count(const struct molmo_torchbin *tb) { return tb->n_tensors; }

const struct molmo_torchbin_tensor *molmo_torchbin_get(const struct molmo_torchbin *tb, size_t i) {
    return i < tb->n_tensors ? &tb->tensors[i].pub : NULL;
}

const struct molmo_torchbin_tensor *molmo_torchbin_find(const struct molmo_torchbin *tb,
                                                        const char *name) {
    size_t lo = 0, hi = tb->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct tb_tensor *t = tb->by_name[mid];
        int c = strcmp(t->pub.name, name);
        if (c == 0) return &t->pub;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int64_t molmo_torchbin_file_offset(const struct molmo_torchbin *tb,
                                   const struct molmo_torchbin_tensor *t) {
    const struct tb_tensor *x = (const struct tb_tensor *)t;
    if (x->owned || !t->data) return -1;
    return (int64_t)((const unsigned char *)t->data - tb->map.data);
}

int molmo_torchbin_verify(const struct molmo_torchbin *tb, struct jb_err *err) {
    char nb[200];
    for (size_t i = 0; i < tb->n_entries; i++) {
        const struct zentry *z = &tb->entries[i];
        const unsigned char *d = NULL;
        int rc = zip_entry_data(tb, z, &d, err);
        if (rc) return rc;
        if (crc32_of(d, z->usize) != z->crc)
            return jb_err_set(err, JB_EFORMAT, "%s: zip entry '%s' fails its CRC-32 check",
                              tb->path, printable(nb, sizeof nb, z->name, z->name_len));
    }
    return 0;
}
