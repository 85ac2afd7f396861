/* jb-sha256.h: SHA-256 of files (nettle) and checks against a manifest in the format of
 * coreutils' sha256sum ("<64 hex digits>  <relative path>" per line), so `sha256sum -c` reads
 * the same file. */
#ifndef JB_SHA256_H
#define JB_SHA256_H

#include "common/jb-err.h"

/* hex receives 64 lowercase hex digits and a NUL. Errors name path. */
int jb_sha256_file(const char *path, char hex[65], struct jb_err *err);

/* Checks every file listed in dir/manifest against its digest. Paths are relative to dir and
 * may not be absolute or contain "..". Errors name the file and the problem: the manifest
 * missing or unreadable (JB_ENOTFOUND / JB_EIO), a malformed line (JB_EFORMAT, "manifest:LINE"),
 * a listed file missing (JB_ENOTFOUND), a digest mismatch (JB_EFORMAT, with both digests), an
 * empty manifest (JB_EFORMAT). *n_files (may be NULL) gets the number of files checked. */
int jb_sha256_manifest_check(const char *dir, const char *manifest, int *n_files,
                             struct jb_err *err);

#endif /* JB_SHA256_H */
