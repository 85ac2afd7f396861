#include "config.h"

#include "common/jb-json.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"

#include <stdlib.h>
#include <string.h>

static int from_jansson(const json_error_t *je, const char *where, struct jb_err *err) {
    if (je->line > 0)
        return jb_err_set(err, JB_EFORMAT, "%s:%d:%d: invalid JSON: %s", where, je->line,
                          je->column, je->text);
    return jb_err_set(err, JB_EFORMAT, "%s: invalid JSON: %s", where, je->text);
}

int jb_json_load_text(const char *text, size_t len, const char *where, json_t **out,
                      struct jb_err *err) {
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!*out) return from_jansson(&je, where, err);
    return 0;
}

int jb_json_load_file(const char *path, json_t **out, struct jb_err *err) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = jb_file_read_all(path, &buf, &len, err);
    if (rc) return rc;
    rc = jb_json_load_text(buf, len, path, out, err);
    free(buf);
    return rc;
}

const char *jb_json_type_name(const json_t *v) {
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* Looks up key; returns 1 if present and not null, 0 if absent (error set when required). */
static int lookup(const json_t *obj, const char *key, bool required, const char *where,
                  const json_t **v, int *rc, struct jb_err *err) {
    *rc = 0;
    *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (*v && !json_is_null(*v)) return 1;
    if (required) *rc = jb_err_set(err, JB_ENOTFOUND, "%s: missing field '%s'", where, key);
    return 0;
}

static int wrong_type(const json_t *v, const char *key, const char *want, const char *where,
                      struct jb_err *err) {
    return jb_err_set(err, JB_EFORMAT, "%s: field '%s' should be %s, found %s", where, key, want,
                      jb_json_type_name(v));
}

int jb_json_get_int(const json_t *obj, const char *key, long long *out, bool required,
                    const char *where, struct jb_err *err) {
    const json_t *v;
    int rc;
    if (!lookup(obj, key, required, where, &v, &rc, err)) return rc;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    /* 1e5 or 3.0 written by a Python tool is still an integer value */
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* in range first: casting 1e30 (or NaN) to long long is undefined behaviour */
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
            d == (double)(long long)d) {
            *out = (long long)d;
            return 0;
        }
    }
    return wrong_type(v, key, "an integer", where, err);
}

int jb_json_get_double(const json_t *obj, const char *key, double *out, bool required,
                       const char *where, struct jb_err *err) {
    const json_t *v;
    int rc;
    if (!lookup(obj, key, required, where, &v, &rc, err)) return rc;
    if (!json_is_number(v)) return wrong_type(v, key, "a number", where, err);
    *out = json_number_value(v);
    return 0;
}

int jb_json_get_bool(const json_t *obj, const char *key, bool *out, bool required,
                     const char *where, struct jb_err *err) {
    const json_t *v;
    int rc;
    if (!lookup(obj, key, required, where, &v, &rc, err)) return rc;
    if (!json_is_boolean(v)) return wrong_type(v, key, "true or false", where, err);
    *out = json_is_true(v);
    return 0;
}

int jb_json_get_string(const json_t *obj, const char *key, const char **out, bool required,
                       const char *where, struct jb_err *err) {
    const json_t *v;
    int rc;
    if (!lookup(obj, key, required, where, &v, &rc, err)) return rc;
    if (!json_is_string(v)) return wrong_type(v, key, "a string", where, err);
    *out = json_string_value(v);
    return 0;
}

int jb_json_write_file(const char *path, const json_t *root, struct jb_err *err) {
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!text) return jb_err_set(err, JB_ENOMEM, "%s: cannot serialise JSON", path);
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (!withnl) {
        free(text);
        return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    }
    withnl[len] = '\n';
    withnl[len + 1] = '\0';
    int rc = jb_file_write_atomic(path, withnl, len + 1, err);
    free(withnl);
    return rc;
}
