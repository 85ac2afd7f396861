/* MolmoE-1B (issue 9) through the program: `generate --dump` on the released layout
 * (pytorch_model.bin, molmo-tiny-olmoe), `convert` to safetensors (bit-identical dumps in f32,
 * BF16 rounding in bf16), a missing tensor named with the checkpoint's first unmatched key, and
 * hostile .bin files refused cleanly by `generate`. The stage-by-stage and whole-path golden
 * thresholds are in test-engine-stages.c and test-engine-generate.c (molmo-tiny-olmoe case). */
#include "config.h"

#include "tests/jb-test.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "common/jb-npy.h"
#include "engine/model-impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CASE "molmo-tiny-olmoe"
#define PROMPT "Describe this image."

static char *tmp;

static void setup(void) { tmp = jb_test_tmpdir(); }

static void teardown(void) {
    jb_test_rmtree(tmp);
    free(tmp);
}

TestSuite(moe, .init = setup, .fini = teardown);

static const char *golden_case(void) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/" CASE, jb_test_golden_or_skip());
    return p;
}

static char *path2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len) {
    char *d = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(path, &d, len, &err), 0, "%s", err.msg);
    return (unsigned char *)d;
}

/* A copy of the golden checkpoint's json files in dir/name, with pytorch_model.bin = bin. */
static char *case_with_bin(const char *name, const unsigned char *bin, size_t len) {
    static const char *const files[] = {"config.json", "tokenizer.json",
                                        "preprocessor_config.json", "generation_config.json"};
    char *dir = path2(tmp, name);
    cr_assert_eq(mkdir(dir, 0755), 0, "%s", dir);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = path2(golden_case(), files[i]), *dst = path2(dir, files[i]);
        size_t n;
        unsigned char *d = slurp(src, &n);
        jb_test_write_file(dst, d, n);
        free(d);
        free(src);
        free(dst);
    }
    char *b = path2(dir, "pytorch_model.bin");
    jb_test_write_file(b, bin, len);
    free(b);
    return dir;
}

/* Runs generate on model (8 tokens, no stop) dumping into dump (may be NULL). */
static void generate(struct jb_test_proc *p, const char *model, const char *dump) {
    char *img = path2(golden_case(), "image.png");
    jb_test_run(p, "'%s' generate --model '%s' --image '%s' --prompt '" PROMPT
                "' --max-tokens 8 --no-stop%s%s%s",
                jb_test_bin(), model, img, dump ? " --dump '" : "", dump ? dump : "",
                dump ? "'" : "");
    free(img);
}

static const char *const dumps[] = {
    "input_ids.npy",  "images.npy",         "image_masks.npy",    "image_input_idx.npy",
    "vit_features.npy", "pooled.npy",       "image_features.npy", "logits_prefill.npy",
    "generated_ids.npy", "decode_logits.npy",
};

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* golden README: generated_ids exactly equal (the float stages are held to 2e-5 in
 * test-engine-generate.c); the f32 copy must reproduce every dump bit for bit. */
Test(moe, the_converted_safetensors_copy_gives_bit_identical_dumps) {
    const char *g = golden_case();
    char *d1 = path2(tmp, "dump-bin"), *d2 = path2(tmp, "dump-st"), *conv = path2(tmp, "conv");
    struct jb_test_proc p;
    generate(&p, g, d1);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' convert --model '%s' --out '%s'", jb_test_bin(), g, conv);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    char *idx = path2(conv, "model.safetensors.index.json"), *tok = path2(conv, "tokenizer.json");
    FILE *f = fopen(idx, "r"), *t = fopen(tok, "r");
    cr_assert(f && t, "index and tokenizer are written");
    fclose(f);
    fclose(t);
    generate(&p, conv, d2);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    for (size_t i = 0; i < sizeof dumps / sizeof dumps[0]; i++) {
        char *a = path2(d1, dumps[i]), *b = path2(d2, dumps[i]);
        cr_assert(same_file(a, b), "%s differs between the .bin and its converted copy", dumps[i]);
        free(a);
        free(b);
    }
    char *ga = path2(g, "generated_ids.npy"), *gb = path2(d1, "generated_ids.npy");
    struct jb_npy x = {0}, y = {0};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_load(&x, ga, &err), 0, "%s", err.msg);
    cr_assert_eq(jb_npy_load(&y, gb, &err), 0, "%s", err.msg);
    cr_assert_eq(x.numel, y.numel);
    cr_assert_eq(memcmp(x.data, y.data, x.numel * sizeof(int32_t)), 0, "generated ids differ from the golden ones");
    jb_npy_free(&x);
    jb_npy_free(&y);
    free(ga);
    free(gb);
    free(idx);
    free(tok);
    free(d1);
    free(d2);
    free(conv);
}

/* --dtype bf16: every tensor is stored BF16, each value the round-to-nearest-even of the F32
 * value in the .bin (molmo_f32_to_bf16, tested against hand-derived cases in test-engine.c),
 * and the copy loads and generates. */
Test(moe, a_bf16_conversion_rounds_every_tensor_and_still_generates) {
    const char *g = golden_case();
    char *conv = path2(tmp, "bf16");
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' convert --model '%s' --out '%s' --dtype bf16", jb_test_bin(), g, conv);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    struct molmo_ckpt *a = NULL, *b = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_ckpt_open(&a, g, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_ckpt_open(&b, conv, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_ckpt_count(a), 227); /* golden README */
    cr_assert_eq(molmo_ckpt_count(b), 227);
    for (size_t i = 0; i < molmo_ckpt_count(a); i++) {
        const struct molmo_tensor *s = molmo_ckpt_get(a, i);
        const struct molmo_tensor *t = molmo_ckpt_find(b, s->name);
        cr_assert(t, "%s is missing from the copy", s->name);
        cr_assert_eq(s->dt, MOLMO_DTYPE_F32);
        cr_assert_eq(t->dt, MOLMO_DTYPE_BF16, "%s", s->name);
        cr_assert_eq(t->numel, s->numel);
        const float *src = s->data;
        const unsigned char *dst = t->data;
        for (size_t k = 0; k < s->numel; k++) {
            uint16_t want = molmo_f32_to_bf16(src[k]);
            cr_assert_eq(dst[2 * k] | dst[2 * k + 1] << 8, want, "%s[%zu]", s->name, k);
        }
    }
    molmo_ckpt_close(a);
    molmo_ckpt_close(b);
    generate(&p, conv, NULL);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.out, "8 generated"), "%s", p.out);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' convert --model '%s' --out '%s' --dtype q4", jb_test_bin(), g, conv);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "--dtype"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' convert --model '%s' --out '%s'", jb_test_bin(), conv, conv);
    cr_assert_neq(p.status, 0);
    cr_assert(strstr(p.err, "model directory"), "%s", p.err);
    jb_test_proc_free(&p);
    free(conv);
}

/* molmo.md §2.2: a name the engine looks for and does not find is reported with the first key
 * of the checkpoint nothing matched (here the renamed one). */
Test(moe, a_missing_tensor_names_the_first_unmatched_key) {
    char *conv = path2(tmp, "renamed");
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' convert --model '%s' --out '%s'", jb_test_bin(), golden_case(), conv);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    /* same length, so every offset stays valid */
    const char *files[] = {"model-00001-of-00001.safetensors", "model.safetensors.index.json"};
    for (int i = 0; i < 2; i++) {
        char *f = path2(conv, files[i]);
        size_t n;
        unsigned char *d = slurp(f, &n);
        const char *key = "\"model.transformer.blocks.1.mlp.experts.3.up_proj.weight\"";
        unsigned char *at = memmem(d, n, key, strlen(key));
        cr_assert(at, "%s holds the name", files[i]);
        memcpy(at + strlen(key) - strlen("p_proj.weight\""), "q", 1);  /* up_proj -> uq_proj */
        jb_test_write_file(f, d, n);
        free(d);
        free(f);
    }
    generate(&p, conv, NULL);
    cr_assert_eq(p.status, 2, "%s", p.err);
    cr_assert(strstr(p.err, "'model.transformer.blocks.1.mlp.experts.3.up_proj.weight' is missing"),
              "%s", p.err);
    cr_assert(strstr(p.err, "'model.transformer.blocks.1.mlp.experts.3.uq_proj.weight'"), "%s",
              p.err);
    jb_test_proc_free(&p);
    free(conv);
}

/* Recomputes the CRC-32 of the stored zip entry `name` after its data changed (same size):
 * torch.save streams entries, so the CRC is in the central directory and in the data
 * descriptor after the data; the local header holds 0 (flag bit 3). */
static void fix_crc(unsigned char *z, size_t n, const char *name) {
    size_t nl = strlen(name);
    unsigned char *loc = NULL, *cen = NULL;
    for (unsigned char *at = z; (at = memmem(at, n - (size_t)(at - z), name, nl)); at += nl) {
        size_t off = (size_t)(at - z);
        if (off >= 30 && memcmp(at - 30, "PK\3\4", 4) == 0) loc = at - 30;
        if (off >= 46 && memcmp(at - 46, "PK\1\2", 4) == 0) cen = at - 46;
    }
    cr_assert(loc && cen, "local header and central directory of %s", name);
    size_t size = cen[20] | cen[21] << 8 | (size_t)cen[22] << 16 | (size_t)cen[23] << 24;
    size_t xl = loc[28] | loc[29] << 8;
    unsigned char *data = loc + 30 + nl + xl;
    uint32_t crc = (uint32_t)crc32(0L, data, (uInt)size);
    unsigned char *dd = data + size;
    if (memcmp(dd, "PK\7\10", 4) == 0) dd += 4;
    unsigned char *at[3] = {cen + 16, (loc[6] & 8) ? dd : NULL, (loc[6] & 8) ? NULL : loc + 14};
    for (int k = 0; k < 3; k++)
        for (int i = 0; at[k] && i < 4; i++) at[k][i] = (unsigned char)(crc >> (8 * i));
}

/* Hostile files (issue 9): each makes `generate` fail with exit status 2 and a message naming
 * the problem; under the sanitizer build no report may appear. */
Test(moe, hostile_bin_files_are_clean_errors_through_generate) {
    char *bin = path2(golden_case(), "pytorch_model.bin");
    size_t n;
    unsigned char *orig = slurp(bin, &n), *d = malloc(n);
    struct jb_test_proc p;

    /* 1. a foreign global: the OrderedDict the pickle builds becomes subprocess.check_output
     * (same length), the CRC recomputed so only the unpickler can object */
    memcpy(d, orig, n);
    unsigned char *g = memmem(d, n, "collections\nOrderedDict", 23);
    cr_assert(g);
    memcpy(g, "subprocess\ncheck_output", 23);
    fix_crc(d, n, "pytorch_model/data.pkl");
    char *dir = case_with_bin("foreign", d, n);
    generate(&p, dir, NULL);
    cr_assert_eq(p.status, 2, "%s", p.err);
    cr_assert(strstr(p.err, "subprocess"), "%s", p.err);
    cr_assert(!strstr(p.err, "Sanitizer"), "%s", p.err);
    jb_test_proc_free(&p);
    free(dir);

    /* 2. a truncated archive (the central directory is gone) */
    dir = case_with_bin("truncated", orig, n / 2);
    generate(&p, dir, NULL);
    cr_assert_eq(p.status, 2, "%s", p.err);
    cr_assert(strstr(p.err, "pytorch_model.bin"), "%s", p.err);
    cr_assert(!strstr(p.err, "Sanitizer"), "%s", p.err);
    jb_test_proc_free(&p);
    free(dir);

    /* 3. a missing storage entry: storage "226" renamed "zzz" in both zip directories */
    memcpy(d, orig, n);
    int renamed = 0;
    for (unsigned char *at = d; (at = memmem(at, n - (size_t)(at - d), "pytorch_model/data/226",
                                             22)); at += 22) {
        memcpy(at + 19, "zzz", 3);
        renamed++;
    }
    cr_assert_eq(renamed, 2);
    dir = case_with_bin("no-storage", d, n);
    generate(&p, dir, NULL);
    cr_assert_eq(p.status, 2, "%s", p.err);
    cr_assert(strstr(p.err, "226"), "%s", p.err);
    cr_assert(!strstr(p.err, "Sanitizer"), "%s", p.err);
    jb_test_proc_free(&p);
    free(dir);

    free(orig);
    free(d);
    free(bin);
}

/* Grouping rows by expert must not change what each row computes: a prefill of 1100 text
 * tokens (two chunks of the 1024-row MoE grouping, experts seeing uneven row counts) gives at
 * its last position the logits that one token of prefill plus 1099 cached decode steps give
 * (each step a single row through each of its top-k experts). Only float32 rounding of the
 * differently blocked products may differ: 1e-5 of the largest logit. */
Test(moe, prefill_grouped_by_expert_matches_token_by_token_decoding) {
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    struct molmo_load_opts o = {.max_seq = 1200, .max_crops = 1};
    cr_assert_eq(molmo_model_load_weights(&m, golden_case(), &o, &err), 0, "%s", err.msg);
    cr_assert(m->cfg.moe && 1100 > MOLMO_MOE_CHUNK);
    enum { T = 1100 };
    int E = m->cfg.embedding_size;
    int32_t *ids = malloc(T * sizeof *ids);
    for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 37 + 11) % 256); /* byte tokens */
    float *a = malloc((size_t)E * sizeof *a), *b = malloc((size_t)E * sizeof *b);
    cr_assert_eq(molmo_llm_prefill(m, ids, T, NULL, NULL, 0, NULL, a, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_llm_prefill(m, ids, 1, NULL, NULL, 0, NULL, b, &err), 0, "%s", err.msg);
    for (int t = 1; t < T; t++)
        cr_assert_eq(molmo_llm_decode(m, ids[t], b, &err), 0, "%s", err.msg);
    float mx = 0, diff = 0;
    for (int i = 0; i < E; i++) {
        mx = fabsf(a[i]) > mx ? fabsf(a[i]) : mx;
        diff = fabsf(a[i] - b[i]) > diff ? fabsf(a[i] - b[i]) : diff;
    }
    cr_log_info("prefill vs decode: max diff %g, max |logit| %g", diff, mx);
    cr_assert(mx > 0 && diff <= 1e-5f * mx, "max diff %g vs max |logit| %g", diff, mx);
    free(ids);
    free(a);
    free(b);
    molmo_model_free_weights(m);
}
