#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "engine/molmo.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: joulebench init-model --out DIR [--seed N] [--size tiny|small]\n"
           "       joulebench init-model --out DIR --shape molmoe-1b|7b-o|7b-d|72b\n"
           "                             [--layers N] [--vit-layers N] [--experts N]\n"
           "                             [--dtype f32|bf16] [--seed N]\n"
           "\n"
           "Writes a Molmo checkpoint in the released layout (Molmo-7B-D / Qwen2 names; for\n"
           "molmoe-1b the MolmoE names and OLMo-style config.json) with\n"
           "deterministic random weights: config.json, preprocessor_config.json,\n"
           "generation_config.json, tokenizer.json (byte-level, no merges),\n"
           "model.safetensors.index.json and two safetensors shards. The same seed and size\n"
           "give the same bytes. Nothing is downloaded; the answers are meaningless, the cost\n"
           "of computing them is real.\n"
           "\n"
           "  --out DIR      the checkpoint directory (created)\n"
           "  --seed N       PRNG seed (default 0)\n"
           "  --size SIZE    tiny (LLM 64 x 2 layers, ViT 64 x 10; 2.3 MB, the default) or\n"
           "                 small (LLM 128 x 4 layers, ViT 128 x 12)\n"
           "  --shape SHAPE  a released shape (molmo.md section 1): molmoe-1b, 7b-o, 7b-d or\n"
           "                 72b, with ViT-L/14-336 (23 layers); to measure speed without\n"
           "                 downloading. molmoe-1b is written as safetensors (the released\n"
           "                 MolmoE-1B is a pytorch_model.bin; the engine reads both)\n"
           "  --layers N     LLM blocks instead of the shape's own\n"
           "  --vit-layers N ViT blocks instead of the shape's own\n"
           "  --experts N    molmoe-1b: N experts of the released width instead of 64\n"
           "                 (top-k stays 8, or N if smaller)\n"
           "  --dtype DTYPE  f32 (default) or bf16 weights, written shard by shard as\n"
           "                 they are generated (nothing is held in memory)\n"
           "  -h, --help     this text\n");
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"size", required_argument, NULL, 'z'},
        {"shape", required_argument, NULL, 'S'},
        {"layers", required_argument, NULL, 'l'},
        {"vit-layers", required_argument, NULL, 'v'},
        {"dtype", required_argument, NULL, 'd'},
        {"experts", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct molmo_init_opts o = {.seed = 0, .size = MOLMO_INIT_TINY};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg || optarg[0] == '-')
                return harness_usage_error("init-model", "--seed needs an integer >= 0, not '%s'",
                                           optarg);
            o.seed = v;
            break;
        }
        case 'z':
            if (molmo_init_size_parse(optarg, &o.size) < 0)
                return harness_usage_error("init-model", "--size is tiny or small, not '%s'",
                                           optarg);
            break;
        case 'S':
            if (molmo_init_size_parse(optarg, &o.size) < 0 || o.size < MOLMO_INIT_7B_O)
                return harness_usage_error("init-model",
                                           "--shape is molmoe-1b, 7b-o, 7b-d or 72b, not '%s'",
                                           optarg);
            break;
        case 'l':
        case 'v':
        case 'x': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 1000)
                return harness_usage_error(
                    "init-model", "--%s wants an integer in 1..1000, not '%s'",
                    c == 'l' ? "layers" : c == 'v' ? "vit-layers" : "experts", optarg);
            *(c == 'l' ? &o.layers : c == 'v' ? &o.vit_layers : &o.experts) = (int)v;
            break;
        }
        case 'd':
            if (!strcmp(optarg, "bf16"))
                o.bf16 = 1;
            else if (!strcmp(optarg, "f32"))
                o.bf16 = 0;
            else
                return harness_usage_error("init-model", "--dtype is f32 or bf16, not '%s'",
                                           optarg);
            break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("init-model", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("init-model", "unexpected argument '%s'", argv[optind]);
    if (!out) return harness_usage_error("init-model", "--out DIR is required");
    if (o.experts && o.size != MOLMO_INIT_MOLMOE_1B)
        return harness_usage_error("init-model", "--experts needs --shape molmoe-1b");
    struct jb_err err = {0};
    if (molmo_init_model_write(out, &o, &err) < 0) return harness_fail("%s", err.msg);
    printf("%s\n", out);
    return 0;
}

const struct harness_cmd cmd_init_model = {
    .name = "init-model",
    .summary = "write a deterministic Molmo checkpoint (the embedded default model)",
    .run = run,
    .usage = usage,
};
