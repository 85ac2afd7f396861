/* jb-mmap.h: read-only file mappings (weights are used in place, never copied).
 *
 *     struct jb_mmap map = {0};              // closing a zeroed map is a no-op
 *     if (jb_mmap_open(&map, path, &err) < 0) return err.code;
 *     parse(map.data, map.len);
 *     jb_mmap_close(&map);
 */
#ifndef JB_MMAP_H
#define JB_MMAP_H

#include <stddef.h>

struct jb_err;

struct jb_mmap {
    const unsigned char *data; /* NULL for an empty file */
    size_t len;
};

/* Maps path read-only (MAP_PRIVATE). An empty file gives data == NULL, len == 0. */
int jb_mmap_open(struct jb_mmap *map, const char *path, struct jb_err *err);

/* Unmaps and zeroes map; NULL or zeroed is a no-op. */
void jb_mmap_close(struct jb_mmap *map);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer; *len_out may be NULL. */
int jb_file_read_all(const char *path, char **out, size_t *len_out, struct jb_err *err);

/* "dir/name", malloc'd (NULL when out of memory). name is always taken as relative to dir,
 * even when it starts with '/': a file named inside a checkpoint or dataset stays inside it. */
char *jb_path_join(const char *dir, const char *name);

/* Creates dir and its missing parents (mode 0755), like `mkdir -p`; an existing directory is
 * fine. The error names the component that could not be created. */
int jb_mkdir_p(const char *dir, struct jb_err *err);

/* Writes data to path durably: a temporary file beside it, fsync, rename, fsync of the directory.
 * A reader sees the old or the new file, never a partial one. A missing directory is created
 * (with its parents), as `run --out` creates its own. */
int jb_file_write_atomic(const char *path, const void *data, size_t len, struct jb_err *err);

#endif /* JB_MMAP_H */
