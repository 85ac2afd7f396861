/* The engine's stages in isolation on the golden checkpoints (shared/golden/README.md): each
 * stage is fed the golden input of that stage and compared with the reference output, floating
 * stages within 2e-5 x max|golden| (the README's float32 threshold), ids exactly. */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-npy.h"
#include "tests/jb-test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL_TOL 2e-5

static const char *const cases[] = {"molmo-tiny-qwen2", "molmo-tiny-olmo", "molmo-tiny-olmoe"};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static struct molmo_model *load_with(const char *name, const char *kernels, int threads) {
    const char *g = jb_test_golden_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", g, name);
    struct molmo_load_opts o = {.max_seq = 1024, .kernels = kernels, .n_threads = threads};
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    int rc = molmo_model_load_weights(&m, dir, &o, &err);
    cr_assert_eq(rc, 0, "%s: %s", name, err.msg);
    return m;
}

static struct molmo_model *load(const char *name) { return load_with(name, NULL, 0); }

static void npy(struct jb_npy *a, const char *name, const char *file) {
    char path[1024];
    struct jb_err err = {0};
    snprintf(path, sizeof path, "%s/%s/%s", jb_test_golden_dir(), name, file);
    cr_assert_eq(jb_npy_load(a, path, &err), 0, "%s", err.msg);
}

/* max |got - want| / max |want| over n values */
static double rel_err(const float *got, const float *want, size_t n) {
    double md = 0, mw = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(want[i]) > mw) mw = fabs(want[i]);
    }
    return md / mw;
}

static void check(const char *c, const char *stage, double rel) {
    fprintf(stderr, "%s %s: worst relative error %.3g\n", c, stage, rel);
    cr_expect(rel <= REL_TOL, "%s %s: relative error %g > %g", c, stage, rel, REL_TOL);
}

Test(engine_stages, vit_reproduces_golden_features_from_golden_crops) {
    for (int ci = 0; ci < N_CASES; ci++) {
        struct molmo_model *m = load(cases[ci]);
        struct jb_npy img = {0}, feat = {0}, cls = {0};
        npy(&img, cases[ci], "images.npy");
        npy(&feat, cases[ci], "vit_features.npy");
        npy(&cls, cases[ci], "vit_cls.npy");
        size_t N = img.shape[0], per = feat.shape[1] * feat.shape[2], cw = cls.shape[1];
        float *got = malloc(N * per * sizeof(float)), *gcls = malloc(N * cw * sizeof(float));
        struct jb_err err = {0};
        for (size_t k = 0; k < N; k++) {
            const float *crop = (const float *)img.data + k * img.shape[1] * img.shape[2];
            cr_assert_eq(molmo_vit_forward(m, crop, got + k * per, gcls + k * cw, &err), 0, "%s",
                         err.msg);
        }
        check(cases[ci], "vit_features", rel_err(got, feat.data, N * per));
        check(cases[ci], "vit_cls", rel_err(gcls, cls.data, N * cw));
        free(got);
        free(gcls);
        jb_npy_free(&img);
        jb_npy_free(&feat);
        jb_npy_free(&cls);
        molmo_model_free_weights(m);
    }
}

Test(engine_stages, connector_reproduces_golden_pooled_and_image_features) {
    for (int ci = 0; ci < N_CASES; ci++) {
        struct molmo_model *m = load(cases[ci]);
        struct jb_npy feat = {0}, mask = {0}, pooled = {0}, imf = {0};
        npy(&feat, cases[ci], "vit_features.npy");
        npy(&mask, cases[ci], "image_masks.npy");
        npy(&pooled, cases[ci], "pooled.npy");
        npy(&imf, cases[ci], "image_features.npy");
        size_t N = feat.shape[0], np = pooled.shape[1], pw = pooled.shape[2], fw = imf.shape[2];
        float *gp = malloc(N * np * pw * sizeof(float)), *gf = malloc(N * np * fw * sizeof(float));
        struct jb_err err = {0};
        for (size_t k = 0; k < N; k++) {
            const float *f = (const float *)feat.data + k * feat.shape[1] * feat.shape[2];
            const float *mk = (const float *)mask.data + k * mask.shape[1];
            cr_assert_eq(molmo_connector_forward(m, f, mk, gp + k * np * pw, gf + k * np * fw, &err),
                         0, "%s", err.msg);
        }
        check(cases[ci], "pooled", rel_err(gp, pooled.data, N * np * pw));
        check(cases[ci], "image_features", rel_err(gf, imf.data, N * np * fw));
        free(gp);
        free(gf);
        jb_npy_free(&feat);
        jb_npy_free(&mask);
        jb_npy_free(&pooled);
        jb_npy_free(&imf);
        molmo_model_free_weights(m);
    }
}

/* Prefill over the golden prompt (ids + image features), then 8 cached greedy steps. */
/* Prefill runs on OpenBLAS; every decode step's products (T = 1) on the model's matvec
 * kernels over its pool, which are held to the same golden threshold. */
static void llm_parity(const char *kernels, int threads) {
    for (int ci = 0; ci < N_CASES; ci++) {
        struct molmo_model *m = load_with(cases[ci], kernels, threads);
        fprintf(stderr, "%s: decode kernel %s, %d threads\n", cases[ci],
                molmo_model_kernel_name(m), molmo_model_n_threads(m));
        struct jb_npy ids = {0}, imf = {0}, idx = {0}, lp = {0}, gen = {0}, dl = {0};
        npy(&ids, cases[ci], "input_ids.npy");
        npy(&imf, cases[ci], "image_features.npy");
        npy(&idx, cases[ci], "image_input_idx.npy");
        npy(&lp, cases[ci], "logits_prefill.npy");
        npy(&gen, cases[ci], "generated_ids.npy");
        npy(&dl, cases[ci], "decode_logits.npy");
        int T = (int)ids.shape[0], E = (int)lp.shape[1], n_gen = (int)gen.shape[0];
        float *all = malloc((size_t)T * E * sizeof(float));
        float *steps = malloc((size_t)n_gen * E * sizeof(float));
        struct jb_err err = {0};
        cr_assert_eq(molmo_llm_prefill(m, ids.data, T, imf.data, idx.data, (int)idx.shape[0], all,
                                       steps, &err),
                     0, "%s", err.msg);
        check(cases[ci], "logits_prefill", rel_err(all, lp.data, (size_t)T * E));
        const int32_t *want = gen.data;
        for (int s = 0; s < n_gen; s++) {
            int32_t id = molmo_argmax(steps + (size_t)s * E, E);
            cr_expect_eq(id, want[s], "%s step %d: id %d, golden %d", cases[ci], s, id, want[s]);
            if (s + 1 < n_gen)
                cr_assert_eq(molmo_llm_decode(m, id, steps + (size_t)(s + 1) * E, &err), 0, "%s",
                             err.msg);
        }
        check(cases[ci], "decode_logits", rel_err(steps, dl.data, (size_t)n_gen * E));
        free(all);
        free(steps);
        jb_npy_free(&ids);
        jb_npy_free(&imf);
        jb_npy_free(&idx);
        jb_npy_free(&lp);
        jb_npy_free(&gen);
        jb_npy_free(&dl);
        molmo_model_free_weights(m);
    }
}

Test(engine_stages, llm_reproduces_prefill_logits_and_greedy_decoding) { llm_parity(NULL, 0); }

Test(engine_stages, decoding_on_the_scalar_reference_kernels_meets_the_same_threshold) {
    llm_parity("scalar", 1);
}

/* Two threads split every decode product's rows (in steps of 4) over the pool. */
Test(engine_stages, decoding_on_two_pool_threads_meets_the_same_threshold) {
    llm_parity("best", 2);
}

Test(engine_stages, the_decode_kernels_are_chosen_at_load_and_named) {
    struct molmo_model *m = load_with(cases[0], "scalar", 1);
    cr_expect_str_eq(molmo_model_kernel_name(m), "scalar");
    molmo_model_free_weights(m);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", jb_test_golden_dir(), cases[0]);
    struct molmo_load_opts o = {.max_seq = 64, .kernels = "sse9"};
    struct jb_err err = {0};
    cr_expect_lt(molmo_model_load_weights(&m, dir, &o, &err), 0);
    cr_expect(strstr(err.msg, "sse9") != NULL, "%s", err.msg);
}

/* Buffers are sized at load for max_seq positions: a prompt of exactly max_seq tokens runs (the
 * scratch arena must hold it), one more token is a clean error, as is a longer prompt. */
Test(engine_stages, the_context_limit_is_an_error_not_an_overflow) {
    const char *g = jb_test_golden_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/molmo-tiny-qwen2", g);
    struct jb_npy ids = {0}, imf = {0}, idx = {0};
    npy(&ids, cases[0], "input_ids.npy");
    npy(&imf, cases[0], "image_features.npy");
    npy(&idx, cases[0], "image_input_idx.npy");
    int T = (int)ids.shape[0];
    struct molmo_load_opts o = {.max_seq = T};
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_model_load_weights(&m, dir, &o, &err), 0, "%s", err.msg);
    float *last = malloc((size_t)m->cfg.embedding_size * sizeof(float));
    cr_assert_eq(molmo_llm_prefill(m, ids.data, T, imf.data, idx.data, (int)idx.shape[0], NULL,
                                   last, &err),
                 0, "%s", err.msg);
    cr_assert_eq(molmo_llm_decode(m, 1, last, &err), JB_EINVAL);
    cr_assert(strstr(err.msg, "context"), "%s", err.msg);
    molmo_model_free_weights(m);
    o.max_seq = T - 1;
    cr_assert_eq(molmo_model_load_weights(&m, dir, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_llm_prefill(m, ids.data, T, imf.data, idx.data, (int)idx.shape[0], NULL,
                                   last, &err),
                 JB_EINVAL);
    molmo_model_free_weights(m);
    free(last);
    jb_npy_free(&ids);
    jb_npy_free(&imf);
    jb_npy_free(&idx);
}

/* An id past [embedding; new_embedding] (264 + 128 rows for molmo-tiny-qwen2) is named. */
Test(engine_stages, an_id_outside_the_embedding_tables_is_an_error) {
    struct molmo_model *m = load(cases[0]);
    const int32_t ids[] = {256, 264 + 127, 264 + 128};
    float *last = malloc((size_t)m->cfg.embedding_size * sizeof(float));
    struct jb_err err = {0};
    cr_assert_eq(molmo_llm_prefill(m, ids, 2, NULL, NULL, 0, NULL, last, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_llm_prefill(m, ids, 3, NULL, NULL, 0, NULL, last, &err), JB_EINVAL);
    cr_assert(strstr(err.msg, "392"), "%s", err.msg);
    free(last);
    molmo_model_free_weights(m);
}

/* The ViT's products and attention run on the pool in fixed tiles and heads, each a
 * single-threaded sgemm whichever thread takes it (engine/parallel.c): 1, 2 and 3 threads
 * give the same bits. */
Test(engine_stages, vit_features_do_not_depend_on_the_thread_count) {
    struct jb_npy img = {0};
    jb_test_golden_or_skip();
    npy(&img, cases[0], "images.npy");
    size_t fw = 576 * 128;
    float *f[3], cls[3][128];
    for (int t = 0; t < 3; t++) {
        struct molmo_model *m = load_with(cases[0], NULL, t + 1);
        f[t] = malloc(fw * sizeof(float));
        cr_assert(f[t]);
        struct jb_err err = {0};
        cr_assert_eq(molmo_vit_forward(m, img.data, f[t], cls[t], &err), 0, "%s", err.msg);
        molmo_model_free_weights(m);
    }
    for (int t = 1; t < 3; t++) {
        cr_expect(memcmp(f[0], f[t], fw * sizeof(float)) == 0, "features: 1 vs %d threads", t + 1);
        cr_expect(memcmp(cls[0], cls[t], sizeof cls[0]) == 0, "cls: 1 vs %d threads", t + 1);
    }
    for (int t = 0; t < 3; t++) free(f[t]);
    jb_npy_free(&img);
}

/* §5.6: a crop of nothing but -1 (the reference's batch padding) has all-zero features. */
Test(engine_stages, a_padding_crop_has_zero_features) {
    struct molmo_model *m = load(cases[0]);
    size_t n = 576 * 588, fw = 576 * 128;
    float *crop = malloc(n * sizeof(float)), *f = malloc(fw * sizeof(float)), cls[128];
    for (size_t i = 0; i < n; i++) crop[i] = -1.0f;
    for (size_t i = 0; i < fw; i++) f[i] = 1.0f;
    struct jb_err err = {0};
    cr_assert_eq(molmo_vit_forward(m, crop, f, cls, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < fw; i++) cr_assert_eq(f[i], 0.0f);
    for (size_t i = 0; i < 128; i++) cr_assert_eq(cls[i], 0.0f);
    crop[12345] = -0.5f; /* one real value: a real crop */
    cr_assert_eq(molmo_vit_forward(m, crop, f, cls, &err), 0, "%s", err.msg);
    size_t nz = 0;
    for (size_t i = 0; i < fw; i++) nz += f[i] != 0.0f;
    cr_assert_gt(nz, fw / 2);
    free(crop);
    free(f);
    molmo_model_free_weights(m);
}
