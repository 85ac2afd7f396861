/* q8_0 checkpoints end to end: the Q8_0 safetensors dtype (README "q8_0 checkpoints"), its
 * validation, `joulebench convert --dtype q8_0` (which tensors, within which bound), and the
 * golden checkpoints converted to q8_0 keeping issue 8's parity criterion (tests/jb-parity.h)
 * on both decode kernels (x quantized to int8, x kept float32). */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-mmap.h"
#include "tests/jb-parity.h"
#include "tests/jb-test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cases[] = {"molmo-tiny-qwen2", "molmo-tiny-olmo", "molmo-tiny-olmoe"};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static char *tmp;

static void setup(void) { tmp = jb_test_tmpdir(); }

static void teardown(void) {
    jb_test_rmtree(tmp);
    free(tmp);
}

TestSuite(engine_q8, .init = setup, .fini = teardown);

static char *path2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* `joulebench convert --dtype q8_0` of golden case cas into tmp/cas; malloc'd path. */
static char *convert_q8(const char *cas) {
    const char *g = jb_test_golden_or_skip();
    char *src = path2(g, cas), *dst = path2(tmp, cas);
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' convert --model '%s' --out '%s' --dtype q8_0", jb_test_bin(), src, dst);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    free(src);
    return dst;
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* The README's list, by name: the linear layers' weight matrices and the token embedding
 * (every one of them has rows of 64 values in the tiny checkpoints); not the patch embedding
 * (588 wide), the positional and pad embeddings, the new-token embedding, norms, biases or the
 * MoE router (mlp.gate). */
static bool should_quantize(const char *name) {
    static const char *const q[] = {
        ".attention.wq.weight", ".attention.wk.weight", ".attention.wv.weight",
        ".attention.wo.weight", ".feed_forward.w1.weight", ".feed_forward.w2.weight",
        "image_pooling_2d.wq.weight", "image_pooling_2d.wk.weight", "image_pooling_2d.wv.weight",
        "image_pooling_2d.wo.weight", "image_projector.w1.weight", "image_projector.w2.weight",
        "image_projector.w3.weight", "wte.embedding", "att_proj.weight", "attn_out.weight",
        "ff_proj.weight", "ff_out.weight", "gate_proj.weight", "up_proj.weight",
        "down_proj.weight", "lm_head.weight"};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (ends_with(name, q[i])) return true;
    return false;
}

/* kernels-impl.h / README: per element |x - d q| <= d / 2 with d / 2 <= m / 254 (1 + 2^-10)
 * for a normal binary16 d (m >= 127 x 2^-14), else <= m / 254 + 2^-25; m = the block's
 * max |x|. */
static double bound(double m) {
    return m >= 127.0 * 0x1p-14 ? m / 254.0 * (1.0 + 0x1p-10) : m / 254.0 + 0x1p-25;
}

/* Every tensor of the golden qwen2 (F32, random weights) converted: the listed matrices are
 * Q8_0 and read back (loader + dequantization) within the bound of every 32-block, at least
 * one element per tensor is not exact (so the test sees quantization at all); every other
 * tensor is its source, byte for byte. */
Test(engine_q8, convert_quantizes_the_linear_weights_within_the_readme_bound) {
    const char *g = jb_test_golden_or_skip();
    char *dst = convert_q8("molmo-tiny-qwen2"), *src = path2(g, "molmo-tiny-qwen2");
    struct molmo_ckpt *a = NULL, *b = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_ckpt_open(&a, src, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_ckpt_open(&b, dst, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_ckpt_count(a), molmo_ckpt_count(b));
    size_t n_q = 0;
    for (size_t i = 0; i < molmo_ckpt_count(a); i++) {
        const struct molmo_tensor *s = molmo_ckpt_get(a, i);
        const struct molmo_tensor *t = molmo_ckpt_find(b, s->name);
        cr_assert(t, "%s is missing from the copy", s->name);
        cr_assert_eq(s->dt, MOLMO_DTYPE_F32);
        cr_assert_eq(t->numel, s->numel, "%s", s->name);
        cr_assert_eq((uintptr_t)t->data % 64, (uintptr_t)molmo_ckpt_get(b, 0)->data % 64,
                     "%s: tensors start 64-byte aligned in the data area", s->name);
        if (!should_quantize(s->name)) {
            cr_assert_eq(t->dt, MOLMO_DTYPE_F32, "%s should stay as stored", s->name);
            cr_assert_eq(memcmp(t->data, s->data, s->numel * 4), 0, "%s changed", s->name);
            continue;
        }
        cr_assert_eq(t->dt, MOLMO_DTYPE_Q8_0, "%s should be Q8_0", s->name);
        n_q++;
        size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1];
        float *y = malloc(rows * cols * sizeof(float));
        molmo_tensor_rows(y, t, 0, rows);
        const float *x = s->data;
        size_t inexact = 0;
        for (size_t k0 = 0; k0 < s->numel; k0 += 32) {
            double m = 0;
            for (size_t k = k0; k < k0 + 32; k++) m = fmax(m, fabs((double)x[k]));
            for (size_t k = k0; k < k0 + 32; k++) {
                double e = fabs((double)x[k] - y[k]);
                inexact += e > 0;
                cr_assert_leq(e, bound(m), "%s[%zu]: %g vs %g, block max %g", s->name, k, x[k],
                              y[k], m);
            }
        }
        cr_expect_gt(inexact, 0, "%s: quantization changed nothing", s->name);
        /* rows read from the middle agree with the whole (row offsets in whole blocks) */
        if (rows > 2) {
            float *r = malloc(cols * sizeof(float));
            molmo_tensor_rows(r, t, rows / 2, 1);
            cr_assert_eq(memcmp(r, y + rows / 2 * cols, cols * sizeof(float)), 0, "%s", s->name);
            free(r);
        }
        free(y);
    }
    /* 2 ViT layers x 6 + 7 connector + wte + lm_head + 2 LLM layers x 4 (golden README) */
    cr_expect_geq(n_q, 20, "only %zu tensors quantized", n_q);
    molmo_ckpt_close(a);
    molmo_ckpt_close(b);
    free(src);
    free(dst);
}

/* Runs generate (8 tokens, no stop) on dir with the stage dumps in tmp/name; returns the dump
 * directory (malloc'd). */
static char *generate_dump(const char *dir, const char *cas, enum molmo_q8_act q8_x,
                           const char *name) {
    char *dump = path2(tmp, name);
    jb_test_rmtree(dump);
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    struct molmo_load_opts lo = {.max_seq = 1024, .q8_x = q8_x};
    cr_assert_eq(molmo_model_load(&m, dir, &lo, &err), 0, "%s", err.msg);
    char img[1024];
    snprintf(img, sizeof img, "%s/%s/image.png", jb_test_golden_dir(), cas);
    struct molmo_gen_opts o = {.max_new_tokens = 8, .no_stop = true, .dump_dir = dump};
    struct molmo_result r = {0};
    cr_assert_eq(molmo_generate_file(m, img, "Describe this image.", &o, &r, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(r.n_ids, 8);
    molmo_result_free(&r);
    molmo_model_free(m);
    return dump;
}

/* Issue 8's criterion (tests/jb-parity.h) of dump/file against ref/file at rel_tol; prints the
 * figures; returns 0 when it holds. */
static int parity(const char *what, const char *dump, const char *ref, const char *file,
                  double rel_tol, bool quiet) {
    char got[1024], want[1024];
    snprintf(got, sizeof got, "%s/%s", dump, file);
    snprintf(want, sizeof want, "%s/%s", ref, file);
    struct jb_parity p;
    int rc = jb_parity_check_npy(got, want, rel_tol, &p);
    fprintf(stderr, "%s %s: max error %.3g of %.3g (%.2g relative; criterion %g: %s), greedy "
            "token binding in %zu of %zu rows\n", what, file, p.max_err, p.max_golden,
            p.max_golden > 0 ? p.max_err / p.max_golden : 0.0, rel_tol, rc ? "fails" : "holds",
            p.tokens_checked, p.rows);
    if (!quiet) cr_expect_eq(rc, 0, "%s %s: %s", what, file, p.msg);
    return rc;
}

/* The golden checkpoints converted to q8_0 run through the engine as their dequantized twin
 * (the q8_0 copy converted back to F32: exactly the quantized values) runs through the f32
 * path, which meets every golden threshold:
 *   - x kept float32 (q8_0-f32 decode kernel; prefill and ViT on tiles dequantized into the
 *     arena, the same values sgemm multiplies in the twin): every stage within 1e-5 x max,
 *     float32 summation order only;
 *   - x quantized to int16 (the default decode kernel): ViT, connector and prefill as above;
 *     decode logits within X16_TOL = 2e-4 x max: x's rounding is <= 2^-16 of each block's
 *     max (kernels-impl.h), 258 times finer than int8's, and measured 5.4e-5 (qwen2), 6.5e-5
 *     (olmo), 4.0e-5 (olmoe), so 2e-4 leaves a 3x margin;
 *   - x quantized to int8 (the integer decode kernel, opts.q8_x = INT8): ViT and connector as
 *     above; prefill (MoE experts that get one row run on the matvec) and decode logits within
 *     issue 8's criterion (the reference's greedy token wherever its top-2 gap exceeds twice
 *     the measured error) at 5e-2 x max |reference|, not 1e-2: x's rounding has the weights'
 *     per-element bound, so it costs about what quantizing the weights costs, which on these
 *     checkpoints is the 2e-2..2e-1 the "vs golden" lines show (measured 2.0e-2 on qwen2,
 *     1.7e-2 on olmo: why the engine's default is not the int8-x kernel).
 * Against the golden logits themselves the same criterion is printed, not asserted: these
 * tiny random-weight checkpoints amplify any weight rounding ~20x (rounding the F32 qwen2 to
 * BF16 alone moves its prefill logits 2e-2 x max and flips a decode token), so 8-bit weights
 * land at 5e-2..2e-1 (README "q8_0 checkpoints"). */
#define X16_TOL 2e-4
Test(engine_q8, golden_checkpoints_in_q8_0_compute_what_their_dequantized_twin_computes,
     .timeout = 120) {
    static const char *const stages[] = {"vit_features.npy", "pooled.npy", "image_features.npy",
                                         "logits_prefill.npy", "decode_logits.npy"};
    for (int ci = 0; ci < N_CASES; ci++) {
        char *dir = convert_q8(cases[ci]);
        char *twin = path2(tmp, "twin");
        jb_test_rmtree(twin);
        struct jb_test_proc p;
        jb_test_run(&p, "'%s' convert --model '%s' --out '%s' --dtype f32", jb_test_bin(), dir,
                    twin);
        cr_assert_eq(p.status, 0, "%s", p.err);
        jb_test_proc_free(&p);
        char *ref = generate_dump(twin, cases[ci], MOLMO_Q8_ACT_F32, "dump-twin");
        char *golden = path2(jb_test_golden_dir(), cases[ci]);
        static const struct {
            enum molmo_q8_act kind;
            const char *name;
            double llm_tol; /* prefill and decode logits vs the twin */
        } xs[] = {{MOLMO_Q8_ACT_F32, "f32", 1e-5},
                  {MOLMO_Q8_ACT_INT16, "int16", X16_TOL},
                  {MOLMO_Q8_ACT_INT8, "int8", 5e-2}};
        for (size_t xi = 0; xi < sizeof xs / sizeof *xs; xi++) {
            char *dump = generate_dump(dir, cases[ci], xs[xi].kind, "dump-q8");
            char what[128];
            snprintf(what, sizeof what, "%s q8_0 (x %s) vs its twin", cases[ci], xs[xi].name);
            for (int k = 0; k < 5; k++)
                parity(what, dump, ref, stages[k], k < 3 ? 1e-5 : xs[xi].llm_tol, false);
            snprintf(what, sizeof what, "%s q8_0 (x %s) vs golden", cases[ci], xs[xi].name);
            for (int k = 3; k < 5; k++) parity(what, dump, golden, stages[k], 1e-2, true);
            jb_test_rmtree(dump);
            free(dump);
        }
        jb_test_rmtree(ref);
        jb_test_rmtree(twin);
        free(ref);
        free(twin);
        free(golden);
        free(dir);
    }
}

/* The shared criterion itself, on hand-made logits, 2 rows of 4: max |golden| = 10, so
 * rel_tol 1e-2 allows errors up to 0.1. Row 0 has top-2 gap 9, row 1 gap 0.05. */
Test(engine_q8, the_parity_criterion_bounds_the_error_and_lets_only_close_rows_flip) {
    const float golden[8] = {10.0f, 1.0f, 0.0f, -1.0f, 2.00f, 1.95f, 0.0f, 0.0f};
    struct jb_parity p;
    float x[8];
    /* row 1's token flips (1.95 -> 2.04 > 2.00) with error 0.09 <= 0.1: its gap 0.05 is below
     * 2 x 0.09, so only row 0's token binds */
    memcpy(x, golden, sizeof x);
    x[5] = 2.04f;
    cr_expect_eq(jb_parity_check_logits(x, golden, 2, 4, 1e-2, &p), 0, "%s", p.msg);
    cr_expect_eq(p.tokens_checked, 1);
    cr_expect_float_eq(p.max_err, 0.09, 1e-6);
    cr_expect_float_eq(p.tol, 0.1, 1e-9);
    /* an error of 0.2 > 0.1 in row 0 */
    memcpy(x, golden, sizeof x);
    x[2] = 0.2f;
    cr_expect_eq(jb_parity_check_logits(x, golden, 2, 4, 1e-2, &p), -1);
    cr_expect(strstr(p.msg, "row 0"), "%s", p.msg);
    /* a NaN is an error larger than any */
    memcpy(x, golden, sizeof x);
    x[7] = NAN;
    cr_expect_eq(jb_parity_check_logits(x, golden, 2, 4, 1e-2, &p), -1);
    cr_expect(strstr(p.msg, "row 1"), "%s", p.msg);
}

/* ---- the Q8_0 dtype in safetensors ------------------------------------------------------ */

/* A one-tensor checkpoint shard: dir/model.safetensors.index.json naming w, and dir/s.st with
 * the header `entry` (the JSON of w) and len data bytes. */
static void write_one(const char *dir, const char *entry, const void *data, size_t len) {
    char *ipath = path2(dir, "model.safetensors.index.json"), *spath = path2(dir, "s.st");
    const char *idx = "{\"weight_map\": {\"w\": \"s.st\"}}";
    jb_test_write_file(ipath, idx, strlen(idx));
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr, "{\"w\": %s}", entry);
    while (hl % 8) hdr[hl++] = ' ';
    size_t total = 8 + (size_t)hl + len;
    unsigned char *f = malloc(total);
    for (int i = 0; i < 8; i++) f[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(f + 8, hdr, (size_t)hl);
    memcpy(f + 8 + hl, data, len);
    jb_test_write_file(spath, f, total);
    free(f);
    free(ipath);
    free(spath);
}

/* Two rows of 64 (4 blocks of 34 bytes = 136 bytes): block k has d = 2^-k (binary16 0x3c00
 * minus k exponent steps, 0x0400 each) and q[i] = i - 16, so value i of block k is
 * (i - 16) 2^-k, exactly. */
static void blocks(unsigned char *b) {
    for (int k = 0; k < 4; k++) {
        uint16_t d = (uint16_t)(0x3c00 - 0x0400 * k);
        b[34 * k] = (unsigned char)(d & 0xff);
        b[34 * k + 1] = (unsigned char)(d >> 8);
        for (int i = 0; i < 32; i++) b[34 * k + 2 + i] = (unsigned char)(int8_t)(i - 16);
    }
}

Test(engine_q8, a_q8_0_tensor_reads_as_its_blocks_values) {
    unsigned char b[136];
    blocks(b);
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [2, 64], \"data_offsets\": [0, 136]}", b,
              sizeof b);
    struct molmo_ckpt *s = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_ckpt_open(&s, tmp, &err), 0, "%s", err.msg);
    const struct molmo_tensor *t = molmo_ckpt_find(s, "w");
    cr_assert_eq(t->dt, MOLMO_DTYPE_Q8_0);
    cr_assert_eq(t->numel, 128);
    float y[128];
    molmo_tensor_rows(y, t, 0, 2);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 32; i++)
            cr_assert_eq(y[32 * k + i], ldexpf((float)(i - 16), -k), "block %d value %d", k, i);
    molmo_tensor_rows(y, t, 1, 1); /* row 1 = blocks 2 and 3 */
    cr_assert_eq(y[0], -16.0f / 4.0f);
    cr_assert_eq(y[63], 15.0f / 8.0f);
    cr_assert_eq(molmo_dtype_bytes(MOLMO_DTYPE_Q8_0, 128), 136);
    cr_assert_str_eq(molmo_dtype_name(MOLMO_DTYPE_Q8_0), "Q8_0");
    molmo_ckpt_close(s);
}

/* Opens tmp; asserts a clean failure naming the shard, the tensor and every non-NULL needle. */
static void expect_bad(const char *what, const char *n1) {
    struct molmo_ckpt *s = NULL;
    struct jb_err err = {0};
    int rc = molmo_ckpt_open(&s, tmp, &err);
    cr_assert_lt(rc, 0, "%s: opened", what);
    cr_assert_null(s);
    cr_expect(strstr(err.msg, "s.st"), "%s: '%s' does not name the file", what, err.msg);
    cr_expect(strstr(err.msg, "'w'"), "%s: '%s' does not name the tensor", what, err.msg);
    if (n1) cr_expect(strstr(err.msg, n1), "%s: '%s' does not say '%s'", what, err.msg, n1);
}

Test(engine_q8, a_q8_0_tensor_of_the_wrong_byte_length_is_a_clean_error) {
    unsigned char b[170] = {0};
    blocks(b);
    /* 2 x 64 values are 136 bytes; 128 (the F8 size) and 170 (one block more) are wrong */
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [2, 64], \"data_offsets\": [0, 128]}", b, 128);
    expect_bad("128 bytes", "136");
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [2, 64], \"data_offsets\": [0, 170]}", b, 170);
    expect_bad("170 bytes", "136");
    /* 256 = 2 x 64 x 2: the BF16 size of the shape */
    unsigned char big[256] = {0};
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [2, 64], \"data_offsets\": [0, 256]}", big,
              256);
    expect_bad("256 bytes", "Q8_0");
}

Test(engine_q8, a_q8_0_tensor_whose_rows_are_not_whole_blocks_is_a_clean_error) {
    unsigned char b[272] = {0};
    /* 4 x 48 = 192 values = 6 blocks = 204 bytes, but rows of 48 cut blocks */
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [4, 48], \"data_offsets\": [0, 204]}", b, 204);
    expect_bad("rows of 48", "multiple of 32");
    /* 1-D and 3-D shapes: no [out, in] */
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [64], \"data_offsets\": [0, 68]}", b, 68);
    expect_bad("1-D", "2-D");
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [2, 2, 32], \"data_offsets\": [0, 136]}", b,
              136);
    expect_bad("3-D", "2-D");
    write_one(tmp, "{\"dtype\": \"Q8_0\", \"shape\": [2, 0], \"data_offsets\": [0, 0]}", b, 0);
    expect_bad("empty rows", "multiple of 32");
}

/* The CLI on a converted checkpoint: generate runs, bench --model names the weights and the
 * decode kernel, and convert names q8_0 among its dtypes. */
Test(engine_q8, generate_and_bench_run_on_a_q8_0_checkpoint) {
    char *dir = convert_q8("molmo-tiny-olmo");
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' generate --model '%s' --image '%s/molmo-tiny-olmo/image.png' "
                "--prompt Hi --max-tokens 3 --no-stop --threads 1", jb_test_bin(), dir,
                jb_test_golden_dir());
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.out, "3 generated"), "%s", p.out);
    cr_assert(strstr(p.out, "Q8_0 x int16 weights"), "%s", p.out); /* the default */
    jb_test_proc_free(&p);
    static const char *const xs[] = {"int16", "f32", "int8"};
    for (int i = 0; i < 3; i++) {
        jb_test_run(&p, "'%s' bench --model '%s' --threads 1 --reps 1 --bw-mib 16 "
                    "--prompt-tokens 4 --gen-tokens 2 --crops 0 --q8-x %s", jb_test_bin(), dir,
                    xs[i]);
        cr_assert_eq(p.status, 0, "%s", p.err);
        char want[64];
        snprintf(want, sizeof want, "Q8_0 x %s weights", xs[i]);
        cr_assert(strstr(p.out, want), "%s", p.out);
        jb_test_proc_free(&p);
    }
    jb_test_run(&p, "'%s' bench --model '%s' --q8-x int4", jb_test_bin(), dir);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "--q8-x"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' convert --help", jb_test_bin());
    cr_assert(strstr(p.out, "q8_0"), "%s", p.out);
    jb_test_proc_free(&p);
    free(dir);
}
