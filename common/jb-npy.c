#include "config.h"

#include "common/jb-npy.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    enum jb_npy_dtype dtype;
    const char *descr;
    size_t size;
} dtypes[] = {
    {JB_NPY_F32, "<f4", 4}, {JB_NPY_F64, "<f8", 8}, {JB_NPY_F16, "<f2", 2},
    {JB_NPY_I32, "<i4", 4}, {JB_NPY_I64, "<i8", 8}, {JB_NPY_U8, "|u1", 1},
    {JB_NPY_BOOL, "|b1", 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

size_t jb_npy_dtype_size(enum jb_npy_dtype dtype) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == dtype) return dtypes[i].size;
    return 0;
}

const char *jb_npy_dtype_descr(enum jb_npy_dtype dtype) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == dtype) return dtypes[i].descr;
    return "?";
}

/* Finds the value text after 'key': in the header dict; NULL if absent. */
static const char *dict_value(const char *hdr, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int parse_header(struct jb_npy *a, const char *hdr, const char *path, struct jb_err *err) {
    const char *d = dict_value(hdr, "descr");
    if (!d || (*d != '\'' && *d != '"'))
        return jb_err_set(err, JB_EFORMAT, "%s: npy header has no 'descr'", path);
    char q = *d++;
    const char *e = strchr(d, q);
    if (!e || e - d >= 16) return jb_err_set(err, JB_EFORMAT, "%s: npy header: bad 'descr'", path);
    char descr[16];
    memcpy(descr, d, (size_t)(e - d));
    descr[e - d] = '\0';
    /* '=' and '<' are the same on a little-endian host; '|' is byte-sized. */
    if (descr[0] == '=') descr[0] = '<';
    if (descr[0] == '<' && (descr[1] == 'u' || descr[1] == 'b') && descr[2] == '1') descr[0] = '|';
    size_t i;
    for (i = 0; i < N_DTYPES; i++)
        if (strcmp(dtypes[i].descr, descr) == 0) break;
    if (i == N_DTYPES)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: unsupported npy dtype '%s'", path, descr);
    a->dtype = dtypes[i].dtype;

    const char *f = dict_value(hdr, "fortran_order");
    if (!f) return jb_err_set(err, JB_EFORMAT, "%s: npy header has no 'fortran_order'", path);
    if (strncmp(f, "False", 5) != 0)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: Fortran-order npy arrays are not supported",
                          path);

    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(') return jb_err_set(err, JB_EFORMAT, "%s: npy header has no 'shape'", path);
    s++;
    a->ndim = 0;
    a->numel = 1;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (!isdigit((unsigned char)*s))
            return jb_err_set(err, JB_EFORMAT, "%s: npy header: bad 'shape'", path);
        if (a->ndim == JB_NPY_MAX_DIMS)
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: more than %d dimensions", path,
                              JB_NPY_MAX_DIMS);
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s) return jb_err_set(err, JB_EFORMAT, "%s: npy header: bad 'shape'", path);
        if (v != 0 && a->numel > SIZE_MAX / 16 / v)
            return jb_err_set(err, JB_EFORMAT, "%s: npy shape too large", path);
        a->shape[a->ndim++] = (size_t)v;
        a->numel *= (size_t)v;
        s = end;
    }
    return 0;
}

int jb_npy_load(struct jb_npy *a, const char *path, struct jb_err *err) {
    memset(a, 0, sizeof *a);
    struct jb_mmap map = {0};
    int rc = jb_mmap_open(&map, path, err);
    if (rc) return rc;
    const unsigned char *p = map.data;
    size_t hlen, hstart;
    char *hdr = NULL;
    if (map.len < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    if (p[6] == 1) {
        hlen = (size_t)p[8] | (size_t)p[9] << 8;
        hstart = 10;
    } else if (p[6] == 2 || p[6] == 3) {
        if (map.len < 12) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: truncated .npy header", path);
            goto out;
        }
        hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        hstart = 12;
    } else {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: .npy format version %d.%d", path, p[6], p[7]);
        goto out;
    }
    if (hlen > map.len - hstart) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: truncated .npy header (%zu bytes announced)", path,
                        hlen);
        goto out;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    memcpy(hdr, p + hstart, hlen);
    hdr[hlen] = '\0';
    rc = parse_header(a, hdr, path, err);
    if (rc) goto out;
    size_t nbytes = a->numel * jb_npy_dtype_size(a->dtype);
    size_t have = map.len - hstart - hlen;
    if (have != nbytes) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: data is %zu bytes, header says %zu", path, have,
                        nbytes);
        goto out;
    }
    a->data = malloc(nbytes ? nbytes : 1);
    if (!a->data) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory for %zu bytes", path, nbytes);
        goto out;
    }
    memcpy(a->data, p + hstart + hlen, nbytes);
out:
    free(hdr);
    jb_mmap_close(&map);
    if (rc) jb_npy_free(a);
    return rc;
}

void jb_npy_free(struct jb_npy *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int jb_npy_save(const char *path, enum jb_npy_dtype dtype, int ndim, const size_t *shape,
                const void *data, struct jb_err *err) {
    if (ndim < 0 || ndim > JB_NPY_MAX_DIMS)
        return jb_err_set(err, JB_EINVAL, "%s: %d dimensions", path, ndim);
    char dict[512];
    size_t numel = 1;
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     jb_npy_dtype_descr(dtype));
    for (int i = 0; i < ndim; i++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%zu%s", shape[i],
                      ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        numel *= shape[i];
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* magic(6) + version(2) + len(2) + dict + spaces + '\n', total a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    size_t nbytes = numel * jb_npy_dtype_size(dtype);
    unsigned char *buf = malloc(padded + nbytes);
    if (!buf) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', padded - 10 - (size_t)n - 1);
    buf[padded - 1] = '\n';
    if (nbytes) memcpy(buf + padded, data, nbytes);
    int rc = jb_file_write_atomic(path, buf, padded + nbytes, err);
    free(buf);
    return rc;
}
