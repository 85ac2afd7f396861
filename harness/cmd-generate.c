#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "engine/molmo.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: joulebench generate --model DIR --image FILE --prompt TEXT [options]\n"
           "\n"
           "Answers a question about an image with a Molmo checkpoint (greedy decoding) and\n"
           "prints the answer, then the time of each phase.\n"
           "\n"
           "  --model DIR        checkpoint directory as released (config.json, safetensors)\n"
           "  --image FILE       PNG or JPEG\n"
           "  --prompt TEXT      the question; sent as \" User: TEXT Assistant:\"\n"
           "  --max-tokens N     token budget for the answer (default 12)\n"
           "  --threads N        threads of prefill (OpenBLAS) and decode (default: OpenBLAS's)\n"
           "  --kernels ISA      decode kernels: best (default), scalar, avx2, avx512\n"
           "  --activations T    f32 (default) or bf16: every product with BF16 weights\n"
           "                     rounds its input to bf16 first (as vdpbf16ps does)\n"
           "  --no-stop          ignore the end-of-text token: always generate N tokens\n"
           "  --dump DIR         write every stage tensor to DIR as .npy, with the golden\n"
           "                     names (input_ids, images, ..., decode_logits)\n"
           "  -h, --help         this text\n");
}

static int parse_int(const char *opt, const char *s, int lo, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > INT_MAX)
        return harness_usage_error("generate", "%s wants an integer >= %d, not '%s'", opt, lo, s);
    *out = (int)v;
    return 0;
}

static int run(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"image", required_argument, NULL, 'i'},
        {"prompt", required_argument, NULL, 'p'},
        {"max-tokens", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"kernels", required_argument, NULL, 'k'},
        {"activations", required_argument, NULL, 'a'},
        {"no-stop", no_argument, NULL, 's'},
        {"dump", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *image = NULL, *prompt = NULL;
    struct molmo_gen_opts go = {.max_new_tokens = 12};
    struct molmo_load_opts lo = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': image = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n':
            if (parse_int("--max-tokens", optarg, 1, &go.max_new_tokens)) return 2;
            break;
        case 't':
            if (parse_int("--threads", optarg, 1, &lo.n_threads)) return 2;
            break;
        case 'k': lo.kernels = optarg; break;
        case 'a':
            if (strcmp(optarg, "f32") != 0 && strcmp(optarg, "bf16") != 0)
                return harness_usage_error("generate", "--activations is f32 or bf16, not '%s'",
                                           optarg);
            lo.activations = optarg;
            break;
        case 's': go.no_stop = true; break;
        case 'd': go.dump_dir = optarg; break;
        case 'h': usage(); return 0;
        default: return harness_usage_error("generate", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return harness_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!model || !image || !prompt)
        return harness_usage_error("generate", "--model, --image and --prompt are required");

    struct jb_err err = {0};
    struct molmo_model *m = NULL;
    if (molmo_model_load(&m, model, &lo, &err) < 0) return harness_fail("%s", err.msg);
    struct molmo_result r = {0};
    int rc = molmo_generate_file(m, image, prompt, &go, &r, &err);
    if (rc < 0) {
        molmo_model_free(m);
        return harness_fail("%s", err.msg);
    }
    printf("%s\n\n", r.text);
    printf("%-12s %10s\n", "phase", "time_s");
    for (int p = 0; p < MOLMO_N_PHASES; p++) {
        if (p == MOLMO_PHASE_DECODE_STEP) continue; /* its sum is inside decode */
        printf("%-12s %10.4f\n", molmo_phase_name((enum molmo_phase)p), r.phase_s[p]);
    }
    printf("tokens: %zu prompt (%zu image, %d crops), %zu generated%s\n", r.n_prompt_tokens,
           r.n_image_tokens, r.n_crops, r.n_ids, r.stopped_on_eos ? " (stopped at EOS)" : "");
    printf("decode kernel: %s, %d threads\n", molmo_model_kernel_name(m), molmo_model_n_threads(m));
    if (lo.activations) printf("activations: %s\n", lo.activations);
    molmo_result_free(&r);
    molmo_model_free(m);
    return 0;
}

const struct harness_cmd cmd_generate = {
    .name = "generate",
    .summary = "answer a question about an image with a Molmo checkpoint",
    .run = run,
    .usage = usage,
};
