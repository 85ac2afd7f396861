/* jb-json.h: JSON through jansson, with errors that name the file, line and field.
 *
 *     json_t *cfg = NULL;
 *     if (jb_json_load_file(path, &cfg, &err) < 0) return err.code;   // "x.json:3:14: ..."
 *     long long layers = 0;
 *     if (jb_json_get_int(cfg, "num_hidden_layers", &layers, true, path, &err) < 0) goto out;
 *     json_decref(cfg);
 */
#ifndef JB_JSON_H
#define JB_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct jb_err;

/* Parses a whole file. On a syntax error the message is "path:line:column: what". */
int jb_json_load_file(const char *path, json_t **out, struct jb_err *err);

/* Parses text (length len); `where` names its origin in messages ("samples.jsonl:12"). */
int jb_json_load_text(const char *text, size_t len, const char *where, json_t **out,
                      struct jb_err *err);

/* Typed field getters. A missing or JSON-null field: with required, JB_ENOTFOUND and
 * "where: missing field 'key'"; without, 0 and *out left unchanged (the caller's default).
 * A field of the wrong type: JB_EFORMAT naming the field and the type found. */
int jb_json_get_int(const json_t *obj, const char *key, long long *out, bool required,
                    const char *where, struct jb_err *err);
int jb_json_get_double(const json_t *obj, const char *key, double *out, bool required,
                       const char *where, struct jb_err *err);
int jb_json_get_bool(const json_t *obj, const char *key, bool *out, bool required,
                     const char *where, struct jb_err *err);
/* *out points into obj; it lives as long as obj. */
int jb_json_get_string(const json_t *obj, const char *key, const char **out, bool required,
                       const char *where, struct jb_err *err);

/* Writes root to path atomically (jb_file_write_atomic), indented by 2, keys in insertion order,
 * with a trailing newline. */
int jb_json_write_file(const char *path, const json_t *root, struct jb_err *err);

/* The name of a JSON value's type, for messages ("string", "integer", ...). */
const char *jb_json_type_name(const json_t *v);

#endif /* JB_JSON_H */
