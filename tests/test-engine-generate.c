/* The whole path on the golden checkpoints: image file + question -> answer through the public
 * API (molmo.h), every stage dumped under its golden name and compared with the reference with
 * the golden README's thresholds; the phase callback; reuse across samples; `joulebench
 * generate` on good and bad input. */
#include "config.h"

#include "engine/molmo.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"
#include "common/jb-npy.h"
#include "tests/jb-test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cases[] = {"molmo-tiny-qwen2", "molmo-tiny-olmo", "molmo-tiny-olmoe"};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static char *case_path(const char *cas, const char *file) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s", jb_test_golden_dir(), cas, file);
    return p;
}

static struct molmo_model *load(const char *cas) {
    jb_test_golden_or_skip();
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", jb_test_golden_dir(), cas);
    struct molmo_load_opts o = {.max_seq = 1024};
    cr_assert_eq(molmo_model_load(&m, dir, &o, &err), 0, "%s", err.msg);
    return m;
}

/* Compares dump/file with golden/file: exact (tol < 0), max abs (abs), or relative to the
 * golden's largest magnitude. Returns the measured error. */
static double compare(const char *cas, const char *dump, const char *file, double tol, bool abs_tol) {
    struct jb_npy g = {0}, d = {0};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_load(&g, case_path(cas, file), &err), 0, "%s", err.msg);
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dump, file);
    cr_assert_eq(jb_npy_load(&d, p, &err), 0, "%s", err.msg);
    cr_assert_eq(d.dtype, g.dtype, "%s %s: dtype", cas, file);
    cr_assert_eq(d.ndim, g.ndim, "%s %s: ndim", cas, file);
    for (int i = 0; i < g.ndim; i++) cr_assert_eq(d.shape[i], g.shape[i], "%s %s: shape", cas, file);
    double e = 0;
    if (tol < 0) {
        cr_expect_eq(memcmp(d.data, g.data, g.numel * jb_npy_dtype_size(g.dtype)), 0,
                     "%s %s: not exactly equal", cas, file);
    } else {
        const float *x = d.data, *y = g.data;
        double md = 0, mg = 0;
        for (size_t i = 0; i < g.numel; i++) {
            double diff = fabs((double)x[i] - y[i]);
            if (!(diff <= md)) md = diff;
            if (fabs(y[i]) > mg) mg = fabs(y[i]);
        }
        e = abs_tol ? md : md / mg;
        fprintf(stderr, "%s whole path %s: %s error %.3g\n", cas, file,
                abs_tol ? "max abs" : "relative", e);
        cr_expect(e <= tol, "%s %s: error %g > %g", cas, file, e, tol);
    }
    jb_npy_free(&g);
    jb_npy_free(&d);
    return e;
}

/* golden README: ids and masks exact, crops <= 1e-6 absolute, floating stages <= 2e-5 x max
 * |golden|, the 8 greedy ids exact (generated with --no-stop, 8 tokens). */
Test(engine_generate, the_whole_path_meets_every_golden_threshold) {
    for (int ci = 0; ci < N_CASES; ci++) {
        struct molmo_model *m = load(cases[ci]);
        char *dump = jb_test_tmpdir();
        struct molmo_gen_opts o = {.max_new_tokens = 8, .no_stop = true, .dump_dir = dump};
        struct molmo_result r = {0};
        struct jb_err err = {0};
        cr_assert_eq(molmo_generate_file(m, case_path(cases[ci], "image.png"),
                                         "Describe this image.", &o, &r, &err),
                     0, "%s", err.msg);
        cr_assert_eq(r.n_ids, 8);
        compare(cases[ci], dump, "input_ids.npy", -1, false);
        compare(cases[ci], dump, "image_masks.npy", -1, false);
        compare(cases[ci], dump, "image_input_idx.npy", -1, false);
        compare(cases[ci], dump, "generated_ids.npy", -1, false);
        compare(cases[ci], dump, "images.npy", 1e-6, true);
        static const char *const fl[] = {"vit_features.npy", "pooled.npy", "image_features.npy",
                                         "logits_prefill.npy", "decode_logits.npy"};
        for (int i = 0; i < 5; i++) compare(cases[ci], dump, fl[i], 2e-5, false);
        molmo_result_free(&r);
        jb_test_rmtree(dump);
        free(dump);
        molmo_model_free(m);
    }
}

struct trace {
    char log[2048];
    size_t n;
};

static void on_phase(void *user, enum molmo_phase p, bool begin, int step) {
    struct trace *t = user;
    t->n += (size_t)snprintf(t->log + t->n, sizeof t->log - t->n, "%s%s%s",
                             begin ? "+" : "-", molmo_phase_name(p),
                             p == MOLMO_PHASE_DECODE_STEP ? (step == 0 ? "0 " : "n ") : " ");
}

/* 3 tokens: the first from the prefill, then decode steps 0 and 1. */
Test(engine_generate, phases_are_reported_in_order_with_decode_steps) {
    struct molmo_model *m = load("molmo-tiny-olmo");
    struct trace t = {0};
    struct molmo_gen_opts o = {.max_new_tokens = 3, .no_stop = true, .on_phase = on_phase,
                               .user = &t};
    struct molmo_result r = {0};
    struct jb_err err = {0};
    cr_assert_eq(molmo_generate_file(m, case_path("molmo-tiny-olmo", "image.png"), "Hi", &o, &r,
                                     &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(t.log, "+preprocess -preprocess +vision -vision +prefill -prefill +decode "
                            "+decode_step0 -decode_step0 +decode_stepn -decode_stepn -decode ");
    cr_assert_eq(r.n_ids, 3);
    for (int p = 0; p < MOLMO_N_PHASES; p++) cr_assert_geq(r.phase_s[p], 0.0);
    cr_assert_eq(r.n_prompt_tokens, 1 + r.n_image_tokens + 20); /* " User: Hi Assistant:" has 20
                                                                  bytes; no merges -> 20 ids */
    molmo_result_free(&r);
    molmo_model_free(m);
}

/* The harness calls generate once per sample on one loaded model, with images in memory. */
Test(engine_generate, a_loaded_model_is_reusable_and_bytes_equal_the_file) {
    struct molmo_model *m = load("molmo-tiny-qwen2");
    char *path = strdup(case_path("molmo-tiny-qwen2", "image.png"));
    struct molmo_gen_opts o = {.max_new_tokens = 8, .no_stop = true};
    struct molmo_result a = {0}, b = {0}, c = {0};
    struct jb_err err = {0};
    cr_assert_eq(molmo_generate_file(m, path, "Describe this image.", &o, &a, &err), 0, "%s",
                 err.msg);
    /* a different sample in between */
    cr_assert_eq(molmo_generate_file(m, case_path("molmo-tiny-olmo", "image.png"), "Hi", &o, &c,
                                     &err),
                 0, "%s", err.msg);
    char *buf;
    size_t len;
    cr_assert_eq(jb_file_read_all(path, &buf, &len, &err), 0);
    cr_assert_eq(molmo_generate_bytes(m, buf, len, "image.png", "Describe this image.", &o, &b,
                                      &err),
                 0, "%s", err.msg);
    cr_assert_eq(a.n_ids, b.n_ids);
    cr_assert_eq(memcmp(a.ids, b.ids, a.n_ids * sizeof *a.ids), 0);
    cr_assert_str_eq(a.text, b.text);
    /* and the golden ids, as the first run had them */
    struct jb_npy g = {0};
    cr_assert_eq(jb_npy_load(&g, case_path("molmo-tiny-qwen2", "generated_ids.npy"), &err), 0);
    cr_assert_eq(memcmp(b.ids, g.data, 8 * sizeof(int32_t)), 0);
    jb_npy_free(&g);
    free(buf);
    free(path);
    molmo_result_free(&a);
    molmo_result_free(&b);
    molmo_result_free(&c);
    molmo_model_free(m);
}

/* Golden qwen2 generation stops: its generated ids contain EOS (256) or not; whichever, with
 * stopping on, the answer ends at the first EOS and is never longer than the budget. */
Test(engine_generate, stopping_ends_at_eos_or_the_budget) {
    struct molmo_model *m = load("molmo-tiny-qwen2");
    struct jb_npy g = {0};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_load(&g, case_path("molmo-tiny-qwen2", "generated_ids.npy"), &err), 0);
    const int32_t *gid = g.data;
    size_t want = 8;
    for (size_t i = 0; i < 8; i++)
        if (gid[i] == 256) { /* manifest eos_id */
            want = i + 1;
            break;
        }
    struct molmo_gen_opts o = {.max_new_tokens = 8};
    struct molmo_result r = {0};
    cr_assert_eq(molmo_generate_file(m, case_path("molmo-tiny-qwen2", "image.png"),
                                     "Describe this image.", &o, &r, &err),
                 0, "%s", err.msg);
    cr_assert_eq(r.n_ids, want);
    cr_assert_eq(r.stopped_on_eos, want < 8 || gid[7] == 256);
    molmo_result_free(&r);
    jb_npy_free(&g);
    molmo_model_free(m);
}

Test(engine_generate, the_cli_prints_the_answer_and_phase_times) {
    jb_test_golden_or_skip();
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' generate --model '%s/molmo-tiny-olmo' --image '%s' --prompt Hi "
                "--max-tokens 2 --threads 1", jb_test_bin(), jb_test_golden_dir(),
                case_path("molmo-tiny-olmo", "image.png"));
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strstr(p.out, "prefill"), "%s", p.out);
    cr_assert(strstr(p.out, "vision"), "%s", p.out);
    cr_assert(strstr(p.out, "decode"), "%s", p.out);
    jb_test_proc_free(&p);
}

Test(engine_generate, the_cli_fails_cleanly_on_bad_input) {
    jb_test_golden_or_skip();
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    /* a PNG cut in half */
    char *buf;
    size_t len;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(case_path("molmo-tiny-olmo", "image.png"), &buf, &len, &err), 0);
    char img[1024];
    snprintf(img, sizeof img, "%s/half.png", dir);
    jb_test_write_file(img, buf, len / 2);
    free(buf);
    jb_test_run(&p, "'%s' generate --model '%s/molmo-tiny-olmo' --image '%s' --prompt Hi",
                jb_test_bin(), jb_test_golden_dir(), img);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "half.png"), "%s", p.err);
    jb_test_proc_free(&p);
    /* a directory without a checkpoint */
    jb_test_run(&p, "'%s' generate --model '%s' --image '%s' --prompt Hi", jb_test_bin(), dir,
                img);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "config.json"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' generate --image x.png", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "--model"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}
