#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "engine/molmo.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: joulebench tokenize --tokenizer FILE.json [--jsonl] < TEXT\n"
           "\n"
           "Encodes standard input with a Hugging Face tokenizer.json (byte-level BPE) as\n"
           "tokenizer.encode(text, add_special_tokens=False) does, and prints the ids.\n"
           "\n"
           "  --tokenizer FILE  the tokenizer.json (e.g. a checkpoint's)\n"
           "  --jsonl           read one JSON object per line and encode its \"text\" field;\n"
           "                    print {\"text\": ..., \"ids\": [...]} per line (empty lines are\n"
           "                    skipped)\n"
           "  -h, --help        this text\n"
           "\n"
           "Without --jsonl, the whole input (newlines included) is one text and the ids go\n"
           "on one line, separated by spaces. Exit status 2 on an error (the message names\n"
           "the input line with --jsonl).\n");
}

static int read_stdin(char **out, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                return -1;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The ids space-separated on one line (hand-formatted: printf would dominate the time). */
static int print_ids(const int32_t *ids, size_t n) {
    char buf[1 << 14];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char tmp[16];
        int k = 0;
        uint32_t v = (uint32_t)ids[i];               /* ids are >= 0 */
        do tmp[k++] = (char)('0' + v % 10); while ((v /= 10) > 0);
        if (len + (size_t)k + 2 > sizeof buf) {
            if (fwrite(buf, 1, len, stdout) != len) return -1;
            len = 0;
        }
        if (i) buf[len++] = ' ';
        while (k > 0) buf[len++] = tmp[--k];
    }
    buf[len++] = '\n';
    return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
}

static int encode_jsonl(const struct molmo_tokenizer *tok, const char *buf, size_t len) {
    struct jb_err err = {0};
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line_no++;
        size_t blank = 0;
        while (blank < ll && strchr(" \t\r", line[blank])) blank++;
        if (blank == ll) continue;
        char where[64];
        snprintf(where, sizeof where, "stdin:%zu", line_no);
        json_t *obj = NULL;
        if (jb_json_load_text(line, ll, where, &obj, &err) < 0) return harness_fail("%s", err.msg);
        const json_t *text = json_object_get(obj, "text");
        if (!json_is_string(text)) {
            json_decref(obj);
            return harness_fail("%s: expected a string field \"text\"", where);
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (molmo_tokenizer_encode(tok, json_string_value(text), json_string_length(text), &ids,
                                   &n, &err) < 0) {
            json_decref(obj);
            return harness_fail("%s: %s", where, err.msg);
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
        free(ids);
        json_t *res = json_object();
        json_object_set(res, "text", (json_t *)text);
        json_object_set_new(res, "ids", arr);
        char *s = json_dumps(res, JSON_PRESERVE_ORDER);
        json_decref(res);
        json_decref(obj);
        if (!s) return harness_fail("%s: out of memory", where);
        int bad = puts(s) == EOF;
        free(s);
        if (bad) return harness_fail("writing stdout failed");
    }
    return 0;
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"tokenizer", required_argument, NULL, 't'},
        {"jsonl", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL;
    int jsonl = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': path = optarg; break;
        case 'j': jsonl = 1; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("tokenize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!path) return harness_usage_error("tokenize", "--tokenizer FILE.json is required");

    struct jb_err err = {0};
    struct molmo_tokenizer *tok = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (molmo_tokenizer_load(&tok, path, &err) < 0) return harness_fail("%s", err.msg);
    if (read_stdin(&buf, &len) < 0) {
        rc = harness_fail("reading stdin failed");
        goto out;
    }
    if (jsonl) {
        rc = encode_jsonl(tok, buf, len);
    } else {
        int32_t *ids = NULL;
        size_t n = 0;
        if (molmo_tokenizer_encode(tok, buf, len, &ids, &n, &err) < 0) {
            rc = harness_fail("stdin: %s", err.msg);
            goto out;
        }
        if (print_ids(ids, n) < 0) rc = harness_fail("writing stdout failed");
        free(ids);
    }
    if (rc == 0 && fflush(stdout) != 0) rc = harness_fail("writing stdout failed");
out:
    free(buf);
    molmo_tokenizer_free(tok);
    return rc;
}

const struct harness_cmd cmd_tokenize = {
    .name = "tokenize",
    .summary = "encode text with a checkpoint's tokenizer.json and print the token ids",
    .run = run,
    .usage = usage,
};
