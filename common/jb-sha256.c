/* jb-sha256.c: file digests with nettle and sha256sum-format manifests. */
#include "config.h"

#include "common/jb-sha256.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jb_sha256_file(const char *path, char hex[65], struct jb_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return jb_err_errno(err, errno, "%s", path);
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&ctx, n, buf);
    int rc = ferror(f) ? jb_err_errno(err, errno, "%s: read", path) : 0;
    fclose(f);
    if (rc) return rc;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

static bool is_hex64(const char *s) {
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* A relative path inside the directory: not absolute, no ".." component. */
static bool safe_rel(const char *p) {
    if (!*p || *p == '/') return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return false;
        if (!e) break;
        s = e + 1;
    }
    return true;
}

int jb_sha256_manifest_check(const char *dir, const char *manifest, int *n_files,
                             struct jb_err *err) {
    char mpath[4096];
    if (snprintf(mpath, sizeof mpath, "%s/%s", dir, manifest) >= (int)sizeof mpath)
        return jb_err_set(err, JB_EINVAL, "%s: path too long", dir);
    FILE *f = fopen(mpath, "r");
    if (!f) return jb_err_errno(err, errno, "%s", mpath);
    char line[8192];
    int lineno = 0, n = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        else if (!feof(f)) {
            rc = jb_err_set(err, JB_EFORMAT, "%s:%d: line too long", mpath, lineno);
            break;
        }
        if (len == 0) continue;
        /* "<hex>  <path>" (text mode) or "<hex> *<path>" (binary mode) */
        if (len < 67 || !is_hex64(line) || line[64] != ' ' ||
            (line[65] != ' ' && line[65] != '*') || !safe_rel(line + 66)) {
            rc = jb_err_set(err, JB_EFORMAT,
                            "%s:%d: not '<64 lowercase hex digits>  <relative path>'", mpath,
                            lineno);
            break;
        }
        const char *rel = line + 66;
        char fpath[8192 + 4096], hex[65];
        snprintf(fpath, sizeof fpath, "%s/%s", dir, rel);
        if ((rc = jb_sha256_file(fpath, hex, err))) {
            jb_err_prefix(err, "%s lists it", mpath);
            break;
        }
        if (memcmp(hex, line, 64) != 0) {
            rc = jb_err_set(err, JB_EFORMAT,
                            "%s: SHA-256 %s, but %s:%d says %.64s: the file is damaged or was "
                            "changed",
                            fpath, hex, mpath, lineno, line);
            break;
        }
        n++;
    }
    if (rc == 0 && ferror(f)) rc = jb_err_errno(err, errno, "%s: read", mpath);
    fclose(f);
    if (rc == 0 && n == 0) rc = jb_err_set(err, JB_EFORMAT, "%s: lists no files", mpath);
    if (rc == 0 && n_files) *n_files = n;
    return rc;
}
