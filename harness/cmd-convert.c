#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "engine/molmo.h"

#include <getopt.h>
#include <stdio.h>

static void usage(void) {
    printf("usage: joulebench convert --model DIR --out DIR [--dtype f32|bf16|q8_0]\n"
           "\n"
           "Rewrites a checkpoint the engine loads (safetensors shards, or the\n"
           "pytorch_model.bin MolmoE-1B is released as) as a safetensors checkpoint:\n"
           "model-0000K-of-0000N.safetensors, model.safetensors.index.json, and copies of\n"
           "the other files (config.json, tokenizer.json, ...). A .bin is read once,\n"
           "CRC-checked; the copy then loads by mapping its shards.\n"
           "\n"
           "  --model DIR    the checkpoint to read\n"
           "  --out DIR      the directory to write (created; not the model directory)\n"
           "  --dtype T      f32 (the default: exact, an F32 source is copied bit for bit),\n"
           "                 bf16 (half the size, rounded to nearest even) or q8_0 (the\n"
           "                 linear layers' weights and the token embedding in blocks of 32\n"
           "                 int8 with a binary16 scale, 1.06 bytes a value; norms, biases,\n"
           "                 positional and patch embeddings and the MoE router as stored;\n"
           "                 see the README)\n"
           "  -h, --help     this text\n");
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"out", required_argument, NULL, 'o'},
        {"dtype", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct molmo_convert_opts o = {.dtype = MOLMO_CONVERT_F32};
    const char *model = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'd':
            if (molmo_convert_dtype_parse(optarg, &o.dtype) < 0)
                return harness_usage_error("convert", "--dtype is f32, bf16 or q8_0, not '%s'",
                                           optarg);
            break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("convert", "unexpected argument '%s'", argv[optind]);
    if (!model) return harness_usage_error("convert", "--model DIR is required");
    if (!out) return harness_usage_error("convert", "--out DIR is required");
    struct jb_err err = {0};
    if (molmo_convert(model, out, &o, &err) < 0) return harness_fail("%s", err.msg);
    printf("%s\n", out);
    return 0;
}

const struct harness_cmd cmd_convert = {
    .name = "convert",
    .summary = "rewrite a checkpoint (e.g. MolmoE's pytorch_model.bin) as safetensors",
    .run = run,
    .usage = usage,
};
