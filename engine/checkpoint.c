/* checkpoint.c: the checkpoint opener: model.safetensors.index.json + shards, memory-mapped and validated (molmo.md
 * §2), or a released pytorch_model.bin through engine/torchbin.c. Tensors are used in place;
 * nothing here copies weight data. */
#include "config.h"

#include "engine/model-impl.h"

#include "engine/molmo.h"

#include "common/jb-json.h"
#include "common/jb-mmap.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_file {
    char *name;   /* basename, as in the index */
    char *path;
    struct jb_mmap map;
};

struct st_entry {
    struct molmo_tensor t;
    int file;
    size_t begin, end;  /* data-area offsets, for the overlap check */
    size_t order;       /* position in file order */
    bool used;          /* asked for by molmo_ckpt_use */
};

struct molmo_ckpt {
    struct st_file *files;
    int n_files;
    struct st_entry *e;  /* sorted by name */
    size_t n_e, cap_e;
    size_t *by_order;    /* entry index of the i-th tensor in file order */
    size_t bytes;
    struct molmo_torchbin *tb;  /* set when read from pytorch_model.bin */
};

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const struct st_entry *)a)->t.name, ((const struct st_entry *)b)->t.name);
}

static int cmp_range(const void *a, const void *b) {
    const struct st_entry *x = *(const struct st_entry *const *)a;
    const struct st_entry *y = *(const struct st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static const struct st_entry *find_entry(const struct molmo_ckpt *s, const char *name) {
    struct st_entry key = {.t = {.name = name}};
    return s->n_e ? bsearch(&key, s->e, s->n_e, sizeof *s->e, cmp_entry) : NULL;
}

const struct molmo_tensor *molmo_ckpt_find(const struct molmo_ckpt *s, const char *name) {
    const struct st_entry *e = find_entry(s, name);
    return e ? &e->t : NULL;
}

const char *molmo_ckpt_file_of(const struct molmo_ckpt *s, const char *name) {
    const struct st_entry *e = find_entry(s, name);
    return e ? s->files[e->file].name : "?";
}

size_t molmo_ckpt_bytes(const struct molmo_ckpt *s) { return s->bytes; }

size_t molmo_ckpt_count(const struct molmo_ckpt *s) { return s->n_e; }

int molmo_ckpt_verify(const struct molmo_ckpt *s, struct jb_err *err) {
    return s->tb ? molmo_torchbin_verify(s->tb, err) : 0;
}

const struct molmo_tensor *molmo_ckpt_get(const struct molmo_ckpt *s, size_t i) {
    return i < s->n_e ? &s->e[s->by_order[i]].t : NULL;
}

const struct molmo_tensor *molmo_ckpt_use(struct molmo_ckpt *s, const char *name) {
    struct st_entry *e = (struct st_entry *)find_entry(s, name);
    if (!e) return NULL;
    e->used = true;
    return &e->t;
}

const char *molmo_ckpt_first_unused(const struct molmo_ckpt *s) {
    for (size_t i = 0; i < s->n_e; i++)
        if (!s->e[s->by_order[i]].used) return s->e[s->by_order[i]].t.name;
    return NULL;
}

/* Sorts the entries by name (for lookups) and records the file order. */
static int index_entries(struct molmo_ckpt *s, const char *path, struct jb_err *err) {
    for (size_t i = 0; i < s->n_e; i++) s->e[i].order = i;
    if (s->n_e) qsort(s->e, s->n_e, sizeof *s->e, cmp_entry);
    s->by_order = malloc((s->n_e ? s->n_e : 1) * sizeof *s->by_order);
    if (!s->by_order) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < s->n_e; i++) s->by_order[s->e[i].order] = i;
    return 0;
}

/* Grows the entry table by one zeroed entry. */
static struct st_entry *new_entry(struct molmo_ckpt *s, const char *path, struct jb_err *err) {
    if (s->n_e == s->cap_e) {
        size_t cap = s->cap_e ? 2 * s->cap_e : 256;
        struct st_entry *ne = realloc(s->e, cap * sizeof *ne);
        if (!ne) {
            jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
            return NULL;
        }
        s->e = ne;
        s->cap_e = cap;
    }
    struct st_entry *e = &s->e[s->n_e];
    memset(e, 0, sizeof *e);
    return e;
}

/* Parses one tensor's header entry into e (name already set). */
static int parse_entry(struct st_entry *e, const json_t *v, size_t data_len, const char *path,
                       struct jb_err *err) {
    const char *name = e->t.name;
    if (!json_is_object(v))
        return jb_err_set(err, JB_EFORMAT, "%s: tensor '%s': entry is not an object", path, name);
    const json_t *dt = json_object_get(v, "dtype");
    if (!json_is_string(dt))
        return jb_err_set(err, JB_EFORMAT, "%s: tensor '%s': missing dtype", path, name);
    if (molmo_dtype_parse(json_string_value(dt), &e->t.dt) < 0)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: tensor '%s': unsupported dtype '%s' (F32, BF16, F16 and Q8_0 are "
                          "read)",
                          path, name, json_string_value(dt));
    const json_t *shape = json_object_get(v, "shape");
    if (!json_is_array(shape) || json_array_size(shape) > MOLMO_MAX_DIMS)
        return jb_err_set(err, JB_EFORMAT, "%s: tensor '%s': bad shape (an array of at most %d "
                          "sizes)", path, name, MOLMO_MAX_DIMS);
    e->t.ndim = (int)json_array_size(shape);
    size_t numel = 1;
    for (int i = 0; i < e->t.ndim; i++) {
        const json_t *d = json_array_get(shape, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return jb_err_set(err, JB_EFORMAT, "%s: tensor '%s': bad shape entry %d", path, name, i);
        json_int_t n = json_integer_value(d);
        e->t.shape[i] = n;
        if (n && numel > SIZE_MAX / 8 / (size_t)n)
            return jb_err_set(err, JB_EFORMAT, "%s: tensor '%s': shape overflows", path, name);
        numel *= (size_t)n;
    }
    e->t.numel = numel;
    const json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !json_is_integer(json_array_get(off, 0)) || !json_is_integer(json_array_get(off, 1)))
        return jb_err_set(err, JB_EFORMAT, "%s: tensor '%s': bad data_offsets", path, name);
    json_int_t b = json_integer_value(json_array_get(off, 0));
    json_int_t en = json_integer_value(json_array_get(off, 1));
    if (b < 0 || en < b || (unsigned long long)en > data_len)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: tensor '%s': data_offsets [%lld, %lld] outside the data area "
                          "(%zu bytes; file truncated?)", path, name, (long long)b, (long long)en,
                          data_len);
    if (e->t.dt == MOLMO_DTYPE_Q8_0 &&
        (e->t.ndim != 2 || e->t.shape[1] == 0 || e->t.shape[1] % MOLMO_Q8_0_BLOCK != 0))
        return jb_err_set(err, JB_EFORMAT,
                          "%s: tensor '%s': Q8_0 needs a 2-D shape [out, in] with in a positive "
                          "multiple of %d (rows of whole 32-value blocks)", path, name,
                          MOLMO_Q8_0_BLOCK);
    size_t want = molmo_dtype_bytes(e->t.dt, numel);
    if ((size_t)(en - b) != want)
        return jb_err_set(err, JB_EFORMAT,
                          "%s: tensor '%s': %lld bytes of data for %zu elements of %s (%zu bytes)",
                          path, name, (long long)(en - b), numel, molmo_dtype_name(e->t.dt), want);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return 0;
}

/* Maps one shard and appends its tensors to s. */
static int open_shard(struct molmo_ckpt *s, int fi, struct jb_err *err) {
    struct st_file *f = &s->files[fi];
    const char *path = f->path;
    int rc = jb_mmap_open(&f->map, path, err);
    if (rc) return rc;
    s->bytes += f->map.len;
    json_t *hdr = NULL;
    struct st_entry **ranges = NULL;
    if (f->map.len < 8) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: %zu bytes, too short for a safetensors header",
                        path, f->map.len);
        goto out;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f->map.data[i];
    if (n < 2 || n > f->map.len - 8) {
        rc = jb_err_set(err, JB_EFORMAT,
                        "%s: header length %llu does not fit in the file (%zu bytes)", path,
                        (unsigned long long)n, f->map.len);
        goto out;
    }
    rc = jb_json_load_text((const char *)f->map.data + 8, (size_t)n, path, &hdr, err);
    if (rc) goto out;
    if (!json_is_object(hdr)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: header is not a JSON object", path);
        goto out;
    }
    const unsigned char *data = f->map.data + 8 + n;
    size_t data_len = f->map.len - 8 - (size_t)n;
    size_t first = s->n_e;
    const char *key;
    json_t *v;
    json_object_foreach(hdr, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        struct st_entry *e = new_entry(s, path, err);
        if (!e) {
            rc = JB_ENOMEM;
            goto out;
        }
        e->t.name = strdup(key);
        if (!e->t.name) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        s->n_e++;
        e->file = fi;
        rc = parse_entry(e, v, data_len, path, err);
        if (rc) goto out;
        e->t.data = data + e->begin;
    }
    /* non-overlapping data ranges */
    size_t cnt = s->n_e - first;
    if (cnt > 1) {
        ranges = malloc(cnt * sizeof *ranges);
        if (!ranges) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        for (size_t i = 0; i < cnt; i++) ranges[i] = &s->e[first + i];
        qsort(ranges, cnt, sizeof *ranges, cmp_range);
        for (size_t i = 1; i < cnt; i++) {
            if (ranges[i]->begin < ranges[i - 1]->end && ranges[i]->end > ranges[i]->begin) {
                rc = jb_err_set(err, JB_EFORMAT, "%s: tensor '%s' overlaps tensor '%s'", path,
                                ranges[i]->t.name, ranges[i - 1]->t.name);
                goto out;
            }
        }
    }
out:
    free(ranges);
    json_decref(hdr);
    return rc;
}

/* The released MolmoE-1B layout: one pytorch_model.bin, read by the restricted unpickler. */
static int open_torchbin(struct molmo_ckpt *s, const char *dir, struct jb_err *err) {
    char *path = jb_path_join(dir, "pytorch_model.bin");
    s->files = calloc(1, sizeof *s->files);
    if (!path || !s->files) {
        free(path);
        return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    }
    s->files[0].path = path;
    s->files[0].name = strdup("pytorch_model.bin");
    s->n_files = 1;
    if (!s->files[0].name) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    int rc = molmo_torchbin_open(&s->tb, path, err);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) == 0) s->bytes = (size_t)st.st_size;
    size_t n = molmo_torchbin_count(s->tb);
    for (size_t i = 0; i < n; i++) {
        const struct molmo_torchbin_tensor *t = molmo_torchbin_get(s->tb, i);
        if (t->ndim > MOLMO_MAX_DIMS)
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most "
                              "%d are read)", path, t->name, t->ndim, MOLMO_MAX_DIMS);
        struct st_entry *e = new_entry(s, path, err);
        if (!e) return JB_ENOMEM;
        e->t.name = strdup(t->name);
        if (!e->t.name) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        s->n_e++;
        e->t.data = t->data;
        e->t.dt = t->dtype;
        e->t.ndim = t->ndim;
        e->t.numel = 1;
        for (int k = 0; k < t->ndim; k++) {
            e->t.shape[k] = t->shape[k];
            e->t.numel *= (size_t)t->shape[k];
        }
    }
    if ((rc = index_entries(s, path, err))) return rc;
    for (size_t i = 1; i < s->n_e; i++) {
        if (strcmp(s->e[i].t.name, s->e[i - 1].t.name) == 0)
            return jb_err_set(err, JB_EFORMAT, "%s: tensor '%s' appears twice", path,
                              s->e[i].t.name);
    }
    return 0;
}

int molmo_ckpt_open(struct molmo_ckpt **out, const char *dir, struct jb_err *err) {
    *out = NULL;
    struct molmo_ckpt *s = calloc(1, sizeof *s);
    char *ipath = jb_path_join(dir, "model.safetensors.index.json");
    json_t *idx = NULL;
    int rc = 0;
    if (!s || !ipath) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    struct stat st;
    if (stat(ipath, &st) != 0) {
        char *bin = jb_path_join(dir, "pytorch_model.bin");
        bool have_bin = bin && stat(bin, &st) == 0;
        free(bin);
        if (have_bin) {
            rc = open_torchbin(s, dir, err);
            goto out;
        }
    }
    rc = jb_json_load_file(ipath, &idx, err);
    if (rc) goto out;
    json_t *wm = json_object_get(idx, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: missing or empty field 'weight_map'", ipath);
        goto out;
    }
    /* distinct shard files, in order of first mention */
    s->files = calloc(json_object_size(wm), sizeof *s->files);
    if (!s->files) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", ipath);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        if (!json_is_string(v)) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: weight_map['%s'] is not a file name", ipath, key);
            goto out;
        }
        const char *fname = json_string_value(v);
        if (strchr(fname, '/') || strcmp(fname, "..") == 0 || !fname[0]) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: weight_map['%s'] = '%s' is not a file in the "
                            "checkpoint directory", ipath, key, fname);
            goto out;
        }
        int found = 0;
        for (int i = 0; i < s->n_files; i++) found |= strcmp(s->files[i].name, fname) == 0;
        if (found) continue;
        struct st_file *f = &s->files[s->n_files];
        f->name = strdup(fname);
        f->path = jb_path_join(dir, fname);
        s->n_files++;
        if (!f->name || !f->path) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", ipath);
            goto out;
        }
    }
    for (int i = 0; i < s->n_files; i++) {
        rc = open_shard(s, i, err);
        if (rc) goto out;
    }
    if ((rc = index_entries(s, ipath, err))) goto out;
    for (size_t i = 1; i < s->n_e; i++) {
        if (strcmp(s->e[i].t.name, s->e[i - 1].t.name) == 0) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: tensor '%s' is in two shards (%s, %s)", ipath,
                            s->e[i].t.name, s->files[s->e[i - 1].file].name,
                            s->files[s->e[i].file].name);
            goto out;
        }
    }
    json_object_foreach(wm, key, v) {
        const struct st_entry *e = find_entry(s, key);
        const char *fname = json_string_value(v);
        if (!e || strcmp(s->files[e->file].name, fname) != 0) {
            rc = jb_err_set(err, JB_ENOTFOUND, "%s/%s: tensor '%s' listed in the index is missing",
                            dir, fname, key);
            goto out;
        }
    }
out:
    json_decref(idx);
    free(ipath);
    if (rc) {
        molmo_ckpt_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void molmo_ckpt_close(struct molmo_ckpt *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_e; i++) free((char *)s->e[i].t.name);
    free(s->e);
    free(s->by_order);
    molmo_torchbin_close(s->tb);
    for (int i = 0; i < s->n_files; i++) {
        jb_mmap_close(&s->files[i].map);
        free(s->files[i].name);
        free(s->files[i].path);
    }
    free(s->files);
    free(s);
}
