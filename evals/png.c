/* A minimal PNG encoder (8-bit RGB, filter None, one IDAT, zlib level 6, no time or text
 * chunks): the synthetic suites' bytes then depend on cairo, FreeType and zlib only, never on
 * the libpng version. Format: PNG specification (ISO/IEC 15948), chunks IHDR, IDAT, IEND. */
#include "config.h"

#include "evals/evals-impl.h"

#include "common/jb-err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int chunk(FILE *f, const char *type, const unsigned char *data, uint32_t len) {
    unsigned char hdr[8], crcb[4];
    put32(hdr, len);
    memcpy(hdr + 4, type, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)type, 4);
    if (len) crc = crc32(crc, data, len);
    put32(crcb, (uint32_t)crc);
    return fwrite(hdr, 1, 8, f) == 8 && (len == 0 || fwrite(data, 1, len, f) == len) &&
                   fwrite(crcb, 1, 4, f) == 4
               ? 0
               : -1;
}

int evals_png_write_argb32(const char *path, const unsigned char *px, int w, int h, int stride,
                           struct jb_err *err) {
    size_t raw_len = (size_t)h * (1 + 3 * (size_t)w);
    unsigned char *raw = malloc(raw_len);
    uLongf zlen = compressBound((uLong)raw_len);
    unsigned char *z = malloc(zlen);
    FILE *f = NULL;
    int rc = 0;
    if (!raw || !z) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory encoding PNG", path);
        goto out;
    }
    unsigned char *o = raw;
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(px + (size_t)y * stride);
        *o++ = 0; /* filter: None */
        for (int x = 0; x < w; x++) {
            uint32_t p = row[x]; /* opaque ARGB32: not premultiplied in effect */
            *o++ = (unsigned char)(p >> 16);
            *o++ = (unsigned char)(p >> 8);
            *o++ = (unsigned char)p;
        }
    }
    if (compress2(z, &zlen, raw, (uLong)raw_len, 6) != Z_OK) {
        rc = jb_err_set(err, JB_EINTERNAL, "%s: zlib compress2 failed", path);
        goto out;
    }
    if (!(f = fopen(path, "wb"))) {
        rc = jb_err_errno(err, errno, "%s", path);
        goto out;
    }
    unsigned char ihdr[13];
    put32(ihdr, (uint32_t)w);
    put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering */
    ihdr[12] = 0; /* no interlace */
    if (fwrite("\x89PNG\r\n\x1a\n", 1, 8, f) != 8 || chunk(f, "IHDR", ihdr, 13) ||
        chunk(f, "IDAT", z, (uint32_t)zlen) || chunk(f, "IEND", NULL, 0))
        rc = jb_err_errno(err, errno, "%s: write", path);
out:
    if (f && fclose(f) != 0 && rc == 0) rc = jb_err_errno(err, errno, "%s: close", path);
    free(raw);
    free(z);
    return rc;
}
