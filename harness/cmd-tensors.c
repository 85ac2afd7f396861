#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "engine/molmo.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: joulebench tensors [--json] [--verify] FILE.bin\n"
           "\n"
           "Lists the tensors of a PyTorch checkpoint (torch.save zip, e.g. MolmoE-1B's\n"
           "pytorch_model.bin): name, dtype, shape and the byte offset of its data in the file\n"
           "('copy' for a view copied into C order), in the file's order. The pickle is read by\n"
           "a restricted unpickler: a checkpoint that names any other global or opcode is an\n"
           "error naming it, and nothing in it is ever run.\n"
           "\n"
           "  --json       one JSON object on stdout instead of the table\n"
           "  --verify     also check the CRC-32 of every zip entry (reads the whole file)\n"
           "  -h, --help   this text\n");
}

static void shape_str(char *buf, size_t cap, const struct molmo_torchbin_tensor *t) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static int print_table(const struct molmo_torchbin *tb, int verified) {
    size_t n = molmo_torchbin_count(tb), width = 4, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(molmo_torchbin_get(tb, i)->name);
        if (l > width) width = l;
    }
    printf("%-*s  %-5s  %-16s  %s\n", (int)width, "name", "dtype", "shape", "offset");
    for (size_t i = 0; i < n; i++) {
        const struct molmo_torchbin_tensor *t = molmo_torchbin_get(tb, i);
        char shape[200];
        shape_str(shape, sizeof shape, t);
        int64_t off = molmo_torchbin_file_offset(tb, t);
        char offs[32];
        if (off >= 0) snprintf(offs, sizeof offs, "%lld", (long long)off);
        else snprintf(offs, sizeof offs, "%s", t->nbytes ? "copy" : "-");
        printf("%-*s  %-5s  %-16s  %s\n", (int)width, t->name, molmo_dtype_name(t->dtype), shape,
               offs);
        bytes += t->nbytes;
    }
    printf("%zu tensors, %zu bytes%s\n", n, bytes, verified ? ", CRC-32 of every entry ok" : "");
    return 0;
}

static int print_json(const char *path, const struct molmo_torchbin *tb, int verified) {
    json_t *arr = json_array();
    size_t n = molmo_torchbin_count(tb), bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const struct molmo_torchbin_tensor *t = molmo_torchbin_get(tb, i);
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        int64_t off = molmo_torchbin_file_offset(tb, t);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:I, s:o}", "name", t->name, "dtype",
                                             molmo_dtype_name(t->dtype), "shape", shape, "bytes",
                                             (json_int_t)t->nbytes, "offset",
                                             off >= 0 ? json_integer(off) : json_null()));
        bytes += t->nbytes;
    }
    json_t *root = json_pack("{s:s, s:I, s:I, s:o, s:o}", "file", path, "count", (json_int_t)n,
                             "bytes", (json_int_t)bytes, "crc_verified", json_boolean(verified),
                             "tensors", arr);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) return harness_fail("out of memory");
    puts(s);
    free(s);
    return 0;
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"verify", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0, verify = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'v': verify = 1; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("tensors", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return harness_usage_error("tensors", "a checkpoint FILE.bin is required");
    if (optind + 1 < argc)
        return harness_usage_error("tensors", "unexpected argument '%s'", argv[optind + 1]);
    const char *path = argv[optind];
    struct jb_err err = {0};
    struct molmo_torchbin *tb = NULL;
    if (molmo_torchbin_open(&tb, path, &err) < 0) return harness_fail("%s", err.msg);
    int rc = 0;
    if (verify && molmo_torchbin_verify(tb, &err) < 0) rc = harness_fail("%s", err.msg);
    if (rc == 0) rc = json ? print_json(path, tb, verify) : print_table(tb, verify);
    if (rc == 0 && fflush(stdout) != 0) rc = harness_fail("writing stdout failed");
    molmo_torchbin_close(tb);
    return rc;
}

const struct harness_cmd cmd_tensors = {
    .name = "tensors",
    .summary = "list the tensors of a PyTorch .bin checkpoint, read without running any of it",
    .run = run,
    .usage = usage,
};
