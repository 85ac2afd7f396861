#include "config.h"

#include "common/jb-err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vset(struct jb_err *err, int code, const char *fmt, va_list ap) {
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int jb_err_set(struct jb_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

static int code_of_errno(int errnum) {
    switch (errnum) {
    case EACCES:
    case EPERM: return JB_EPERM;
    case ENOENT: return JB_ENOTFOUND;
    case ENOMEM: return JB_ENOMEM;
    default: return JB_EIO;
    }
}

int jb_err_errno(struct jb_err *err, int errnum, const char *fmt, ...) {
    int code = code_of_errno(errnum);
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    size_t n = strlen(err->msg);
    if (n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errnum));
    return code;
}

void jb_err_prefix(struct jb_err *err, const char *fmt, ...) {
    if (!err || !err->msg[0]) return;
    char head[JB_ERR_MSG_MAX], old[JB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* The message is bounded: a long context truncates the tail, never overflows. */
    size_t cap = sizeof err->msg - 1, n = 0;
    const char *parts[3] = {head, ": ", old};
    for (int i = 0; i < 3 && n < cap; i++) {
        size_t len = strlen(parts[i]);
        if (len > cap - n) len = cap - n;
        memcpy(err->msg + n, parts[i], len);
        n += len;
    }
    err->msg[n] = '\0';
}

const char *jb_err_name(int code) {
    switch (code) {
    case JB_OK: return "ok";
    case JB_EIO: return "I/O error";
    case JB_EFORMAT: return "format error";
    case JB_ENOMEM: return "out of memory";
    case JB_EINVAL: return "invalid argument";
    case JB_EUNSUPPORTED: return "unsupported";
    case JB_ENOTFOUND: return "not found";
    case JB_EPERM: return "permission denied";
    case JB_EINTERNAL: return "internal error";
    default: return "unknown error";
    }
}

void jb_err_clear(struct jb_err *err) {
    if (!err) return;
    err->code = 0;
    err->msg[0] = '\0';
}
