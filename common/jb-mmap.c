#include "config.h"

#include "common/jb-mmap.h"

#include "common/jb-err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int jb_mmap_open(struct jb_mmap *map, const char *path, struct jb_err *err) {
    map->data = NULL;
    map->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return jb_err_errno(err, errno, "%s", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = jb_err_errno(err, errno, "%s: stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = jb_err_set(err, JB_EIO, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size == 0) goto out;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        rc = jb_err_errno(err, errno, "%s: mmap of %lld bytes", path, (long long)st.st_size);
        goto out;
    }
    map->data = p;
    map->len = (size_t)st.st_size;
out:
    close(fd);
    return rc;
}

void jb_mmap_close(struct jb_mmap *map) {
    if (!map) return;
    if (map->data) munmap((void *)map->data, map->len);
    map->data = NULL;
    map->len = 0;
}

int jb_file_read_all(const char *path, char **out, size_t *len_out, struct jb_err *err) {
    *out = NULL;
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return jb_err_errno(err, errno, "%s", path);
    size_t cap = 4096, len = 0;
    buf = malloc(cap);
    if (!buf) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory at %zu bytes", path, cap);
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        rc = jb_err_errno(err, errno ? errno : EIO, "%s: read", path);
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    if (len_out) *len_out = len;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

char *jb_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int jb_mkdir_p(const char *dir, struct jb_err *err) {
    char *p = strdup(dir);
    if (!p) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                rc = jb_err_errno(err, errno, "%s: cannot create the directory", p);
                break;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return rc;
}

static int fsync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int jb_file_write_atomic(const char *path, const void *data, size_t len, struct jb_err *err) {
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int rc = 0;
    int fd = mkstemp(tmp);
    if (fd < 0 && errno == ENOENT) {
        /* the directory does not exist yet: made as `run --out` makes its own */
        char *dir = strdup(path);
        if (!dir) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        rc = jb_mkdir_p(dirname(dir), err);
        free(dir);
        if (rc) goto out;
        snprintf(tmp, n, "%s.tmp.XXXXXX", path);
        fd = mkstemp(tmp);
    }
    if (fd < 0) {
        rc = jb_err_errno(err, errno, "%s: cannot create a temporary file", path);
        goto out;
    }
    const unsigned char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            rc = jb_err_errno(err, errno, "%s: write", tmp);
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!rc && fchmod(fd, 0644) != 0) rc = jb_err_errno(err, errno, "%s: chmod", tmp);
    if (!rc && fsync(fd) != 0) rc = jb_err_errno(err, errno, "%s: fsync", tmp);
    if (close(fd) != 0 && !rc) rc = jb_err_errno(err, errno, "%s: close", tmp);
    if (!rc && rename(tmp, path) != 0) rc = jb_err_errno(err, errno, "%s: rename", path);
    if (rc) unlink(tmp);
    else fsync_dir_of(path); /* best effort: the rename itself is already atomic */
out:
    free(tmp);
    return rc;
}
