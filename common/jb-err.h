/* jb-err.h: the error type every library function of joulebench fills in.
 *
 * Fallible functions return 0 or a negative JB_E* code and write a message that names the file
 * and the problem into a caller-owned struct jb_err. Only harness/ prints it and exits.
 *
 *     struct jb_err err = {0};
 *     if (molmo_model_load(&m, dir, &err) < 0) {
 *         fprintf(stderr, "joulebench: %s\n", err.msg);   // "dir/config.json: field ..."
 *         return 2;
 *     }
 */
#ifndef JB_ERR_H
#define JB_ERR_H

#include <stddef.h>

enum jb_errcode {
    JB_OK = 0,
    JB_EIO = -1,          /* the OS refused: open, read, write, mmap */
    JB_EFORMAT = -2,      /* the input is malformed: truncated, bad header, bad value */
    JB_ENOMEM = -3,       /* an allocation failed */
    JB_EINVAL = -4,       /* a bad argument or option value */
    JB_EUNSUPPORTED = -5, /* valid input asking for something we do not implement */
    JB_ENOTFOUND = -6,    /* a named file, tensor, field or suite does not exist */
    JB_EPERM = -7,        /* permission denied */
    JB_EINTERNAL = -8,    /* our own bug: an invariant did not hold */
};

#define JB_ERR_MSG_MAX 1024

struct jb_err {
    int code;                  /* 0 or a JB_E* value */
    char msg[JB_ERR_MSG_MAX];  /* "path: problem", NUL-terminated, truncated if longer */
};

/* Sets err (which may be NULL) to code and a printf-style message; returns code, so that
 * `return jb_err_set(err, JB_EFORMAT, "%s: ...", path);` is one line. */
int jb_err_set(struct jb_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like jb_err_set with ": <strerror(errnum)>" appended, and the code chosen from errnum
 * (EACCES/EPERM -> JB_EPERM, ENOENT -> JB_ENOTFOUND, ENOMEM -> JB_ENOMEM, else JB_EIO). */
int jb_err_errno(struct jb_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to the message already in err (no-op when err is NULL or empty). */
void jb_err_prefix(struct jb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A short constant name for a code ("format error", "I/O error", ...). */
const char *jb_err_name(int code);

/* Clears err to code 0 and an empty message. */
void jb_err_clear(struct jb_err *err);

#endif /* JB_ERR_H */
