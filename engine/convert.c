/* convert.c: any loadable checkpoint -> a safetensors checkpoint directory (`joulebench
 * convert`). Shards are streamed tensor by tensor through a fixed buffer, so a 29 GB .bin needs
 * no more memory than its mapping. */
#include "config.h"

#include "engine/molmo.h"
#include "engine/model-impl.h"

#include "common/jb-json.h"
#include "common/jb-mmap.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Elements converted per step (4 MiB of float32). */
#define STEP_ELEMS ((size_t)1 << 20)

int molmo_convert_dtype_parse(const char *s, enum molmo_convert_dtype *out) {
    if (strcmp(s, "f32") == 0) *out = MOLMO_CONVERT_F32;
    else if (strcmp(s, "bf16") == 0) *out = MOLMO_CONVERT_BF16;
    else if (strcmp(s, "q8_0") == 0) *out = MOLMO_CONVERT_Q8_0;
    else return -1;
    return 0;
}

/* Elements [i0, i0+n) of t as dtype `to` into out; f32 is scratch of n floats. Q8_0: i0 and n
 * are multiples of 32 and t's rows are whole blocks, so each block lies within one row. */
static int convert_rows(void *out, const struct molmo_tensor *t, size_t i0, size_t n,
                        enum molmo_dtype to, float *f32, struct jb_err *err) {
    const unsigned char *src = (const unsigned char *)t->data + molmo_dtype_bytes(t->dt, i0);
    switch (to) {
    case MOLMO_DTYPE_F32:
        molmo_convert_to_f32(out, src, t->dt, n); /* F32: a plain copy */
        break;
    case MOLMO_DTYPE_Q8_0:
        if (t->dt == MOLMO_DTYPE_Q8_0) {
            memcpy(out, src, molmo_dtype_bytes(to, n));
        } else {
            molmo_convert_to_f32(f32, src, t->dt, n);
            struct jb_err e = {0};
            if (molmo_q8_0_quantize_row(out, f32, (int)n, &e) < 0)
                return jb_err_set(err, e.code, "tensor '%s', elements from %zu: %s", t->name, i0,
                                  e.msg);
        }
        break;
    case MOLMO_DTYPE_F16: /* never a target */
    case MOLMO_DTYPE_BF16:
        if (t->dt == MOLMO_DTYPE_BF16) {
            memcpy(out, src, n * 2);
        } else {
            unsigned char *o = out;
            molmo_convert_to_f32(f32, src, t->dt, n);
            for (size_t i = 0; i < n; i++) {
                uint16_t b = molmo_f32_to_bf16(f32[i]);
                o[2 * i] = (unsigned char)(b & 0xff);
                o[2 * i + 1] = (unsigned char)(b >> 8);
            }
        }
        break;
    }
    return 0;
}

/* The dtype tensor i of s is written as. Q8_0 quantizes the 2-D weight matrices of the linear
 * layers and the token embedding (those the model's forward multiplies by or looks rows up in,
 * in[1] a multiple of 32: lin, sorted) and leaves every other tensor in its stored dtype. */
static enum molmo_dtype target_of(const struct molmo_tensor *t, enum molmo_convert_dtype to,
                                  const void *const *lin, size_t n_lin) {
    switch (to) {
    case MOLMO_CONVERT_F32: return MOLMO_DTYPE_F32;
    case MOLMO_CONVERT_BF16: return MOLMO_DTYPE_BF16;
    case MOLMO_CONVERT_Q8_0: break;
    }
    bool q = t->ndim == 2 && t->shape[1] > 0 && t->shape[1] % MOLMO_Q8_0_BLOCK == 0 &&
             t->numel > 0;
    for (size_t lo = 0, hi = n_lin; q && lo < hi;) { /* binary search on the data address */
        size_t mid = lo + (hi - lo) / 2;
        if (lin[mid] == t->data) return MOLMO_DTYPE_Q8_0;
        if ((uintptr_t)lin[mid] < (uintptr_t)t->data) lo = mid + 1;
        else hi = mid;
    }
    return t->dt;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return (x > y) - (x < y);
}

/* The data addresses of every matrix q8_0 may quantize (see target_of), sorted; *n set. */
static const void **linear_weights(const struct molmo_model *m, size_t *n) {
    const struct molmo_config *c = &m->cfg;
    const struct molmo_weights *w = &m->w;
    size_t cap = (size_t)c->vit_layers * 6 + 7 + 2 + (size_t)c->n_layers * 4 +
                 (size_t)c->n_layers * (c->moe ? (size_t)c->n_experts * 3 : 0);
    const void **p = malloc(cap * sizeof *p);
    if (!p) return NULL;
    size_t k = 0;
    for (int l = 0; l < c->vit_layers; l++) {
        const struct molmo_vit_block *b = &w->vit[l];
        p[k++] = b->wq.data, p[k++] = b->wk.data, p[k++] = b->wv.data;
        p[k++] = b->wo.data, p[k++] = b->w1.data, p[k++] = b->w2.data;
    }
    p[k++] = w->pool_wq.data, p[k++] = w->pool_wk.data, p[k++] = w->pool_wv.data;
    p[k++] = w->pool_wo.data, p[k++] = w->proj_w1.data, p[k++] = w->proj_w2.data;
    p[k++] = w->proj_w3.data;
    p[k++] = w->wte.data, p[k++] = w->lm_head.data;
    for (int l = 0; l < c->n_layers; l++) {
        const struct molmo_llm_block *b = &w->blocks[l];
        p[k++] = b->att_proj.data, p[k++] = b->attn_out.data;
        if (!c->moe) {
            p[k++] = b->ff_proj.data, p[k++] = b->ff_out.data;
            continue;
        }
        for (int e = 0; e < c->n_experts; e++) { /* the router (b->router) stays as stored */
            p[k++] = b->experts[e].gate_proj.data;
            p[k++] = b->experts[e].up_proj.data;
            p[k++] = b->experts[e].down_proj.data;
        }
    }
    qsort(p, k, sizeof *p, cmp_ptr);
    *n = k;
    return p;
}

/* Writes shard `path` holding tensors [a, b) of s in file order. */
static int write_shard(const struct molmo_ckpt *s, size_t a, size_t b, const char *path,
                       const enum molmo_dtype *to, size_t align, void *buf, float *f32,
                       struct jb_err *err) {
    json_t *hdr = json_object();
    char *text = NULL, *tmp = malloc(strlen(path) + 5);
    FILE *fp = NULL;
    int rc = 0;
    if (!hdr || !tmp) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    snprintf(tmp, strlen(path) + 5, "%s.tmp", path);
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (size_t i = a; i < b; i++) {
        const struct molmo_tensor *t = molmo_ckpt_get(s, i);
        json_t *sh = json_array();
        for (int k = 0; k < t->ndim; k++) json_array_append_new(sh, json_integer(t->shape[k]));
        off = (off + align - 1) / align * align;
        size_t bytes = molmo_dtype_bytes(to[i], t->numel);
        json_object_set_new(hdr, t->name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", molmo_dtype_name(to[i]),
                                      "shape", sh, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + bytes)));
        off += bytes;
    }
    text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* the data area starts 8-byte aligned: pad the header with spaces */
    size_t hl = strlen(text), padded = (hl + 7) / 8 * 8;
    fp = fopen(tmp, "wb");
    if (!fp) {
        rc = jb_err_errno(err, errno, "%s: cannot create", tmp);
        goto out;
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int bad = fwrite(le, 1, 8, fp) != 8 || fwrite(text, 1, hl, fp) != hl;
    for (size_t i = hl; i < padded && !bad; i++) bad = fputc(' ', fp) == EOF;
    size_t at = 0; /* data bytes written so far */
    for (size_t i = a; i < b && !bad && !rc; i++) {
        const struct molmo_tensor *t = molmo_ckpt_get(s, i);
        for (; at % align && !bad; at++) bad = fputc(0, fp) == EOF; /* alignment gap */
        for (size_t e0 = 0; e0 < t->numel && !bad; e0 += STEP_ELEMS) {
            size_t n = t->numel - e0 < STEP_ELEMS ? t->numel - e0 : STEP_ELEMS;
            size_t bytes = molmo_dtype_bytes(to[i], n);
            if ((rc = convert_rows(buf, t, e0, n, to[i], f32, err))) break;
            bad = fwrite(buf, 1, bytes, fp) != bytes;
            at += bytes;
        }
    }
    if (rc) goto out;
    if (bad || fflush(fp) != 0) {
        rc = jb_err_errno(err, errno ? errno : EIO, "%s: write failed", tmp);
        goto out;
    }
    int fe = fclose(fp);
    fp = NULL;
    if (fe != 0) {
        rc = jb_err_errno(err, errno, "%s: write failed", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) rc = jb_err_errno(err, errno, "%s: cannot rename to %s", tmp, path);
out:
    if (fp) fclose(fp);
    if (rc && tmp) remove(tmp);
    free(tmp);
    free(text);
    json_decref(hdr);
    return rc;
}

/* Weight files are not copied: they are what the shards replace. */
static int is_weight_file(const char *name) {
    static const char *const ext[] = {".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".tmp"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (n >= k && strcmp(name + n - k, ext[i]) == 0) return 1;
    }
    return strcmp(name, "model.safetensors.index.json") == 0 ||
           strcmp(name, "pytorch_model.bin.index.json") == 0;
}

static int copy_other_files(const char *src, const char *dst, struct jb_err *err) {
    DIR *d = opendir(src);
    if (!d) return jb_err_errno(err, errno, "%s: cannot list the directory", src);
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.' || is_weight_file(de->d_name)) continue;
        char *from = jb_path_join(src, de->d_name), *to = jb_path_join(dst, de->d_name);
        struct stat st;
        char *data = NULL;
        size_t len = 0;
        if (!from || !to) rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", src);
        else if (stat(from, &st) != 0 || !S_ISREG(st.st_mode)) {
            /* subdirectories and special files are not part of a checkpoint */
        } else if (!(rc = jb_file_read_all(from, &data, &len, err))) {
            rc = jb_file_write_atomic(to, data, len, err);
        }
        free(data);
        free(from);
        free(to);
    }
    closedir(d);
    return rc;
}

int molmo_convert(const char *src, const char *dst, const struct molmo_convert_opts *o,
                  struct jb_err *err) {
    struct molmo_load_opts lo = {.max_seq = 16, .max_crops = 1};
    struct molmo_model *m = NULL;
    void *buf = NULL;
    float *f32 = NULL;
    enum molmo_dtype *to = NULL;
    const void **lin = NULL;
    char **shard = NULL;
    json_t *wmap = NULL;
    int n_shards = 0, rc;
    char rs[PATH_MAX], rd[PATH_MAX];
    if ((rc = jb_mkdir_p(dst, err))) return rc;
    if (realpath(src, rs) && realpath(dst, rd) && strcmp(rs, rd) == 0)
        return jb_err_set(err, JB_EINVAL, "%s: the output directory is the model directory", dst);
    /* everything a load checks: config, names, shapes, storages */
    if ((rc = molmo_model_load_weights(&m, src, &lo, err))) return rc;
    const struct molmo_ckpt *s = m->st;
    if ((rc = molmo_ckpt_verify(s, err))) goto out;
    size_t limit = o->shard_bytes ? o->shard_bytes : (size_t)4 << 30;
    size_t n = molmo_ckpt_count(s), n_lin = 0;
    /* q8_0 blocks are 34 bytes: every tensor then starts on a 64-byte boundary (zero gaps)
     * so that F32 and BF16 tensors after them stay aligned */
    size_t align = o->dtype == MOLMO_CONVERT_Q8_0 ? 64 : 1;
    buf = malloc(STEP_ELEMS * 4);
    f32 = malloc(STEP_ELEMS * sizeof(float));
    to = malloc((n ? n : 1) * sizeof *to);
    lin = linear_weights(m, &n_lin);
    size_t *first = calloc(n + 2, sizeof *first);  /* first tensor of each shard, then n */
    wmap = json_object();
    if (!buf || !f32 || !to || !lin || !first || !wmap) {
        free(first);
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dst);
        goto out;
    }
    for (size_t i = 0; i < n; i++) to[i] = target_of(molmo_ckpt_get(s, i), o->dtype, lin, n_lin);
    size_t cur = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = molmo_dtype_bytes(to[i], molmo_ckpt_get(s, i)->numel);
        if (i == 0 || (cur > 0 && cur + bytes > limit)) {
            first[n_shards++] = i;
            cur = 0;
        }
        cur += bytes;
        total += bytes;
    }
    first[n_shards] = n;
    shard = calloc((size_t)n_shards + 1, sizeof *shard);
    if (!shard) {
        free(first);
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dst);
        goto out;
    }
    for (int k = 0; k < n_shards && !rc; k++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, n_shards);
        shard[k] = jb_path_join(dst, name);
        if (!shard[k]) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dst);
            break;
        }
        rc = write_shard(s, first[k], first[k + 1], shard[k], to, align, buf, f32, err);
        for (size_t i = first[k]; i < first[k + 1] && !rc; i++)
            json_object_set_new(wmap, molmo_ckpt_get(s, i)->name, json_string(name));
    }
    free(first);
    if (rc) goto out;
    if ((rc = copy_other_files(src, dst, err))) goto out;
    /* the index last: until it exists the directory does not load as a safetensors checkpoint */
    json_t *idx = json_pack("{s:{s:I}, s:O}", "metadata", "total_size", (json_int_t)total,
                            "weight_map", wmap);
    char *text = idx ? json_dumps(idx, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(idx);
    char *ipath = jb_path_join(dst, "model.safetensors.index.json");
    if (!text || !ipath)
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dst);
    else
        rc = jb_file_write_atomic(ipath, text, strlen(text), err);
    free(text);
    free(ipath);
out:
    if (shard)
        for (int k = 0; k < n_shards; k++) free(shard[k]);
    free(shard);
    json_decref(wmap);
    free(buf);
    free(f32);
    free(to);
    free(lin);
    molmo_model_free_weights(m);
    return rc;
}
