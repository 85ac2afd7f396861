/* The default models of `joulebench run` (models/tiny, models/small): the engine agrees with
 * the trainer (scripts/train-default.py) on 5 held-out samples per synthetic suite, and the
 * SHA256SUMS manifest is checked at load.
 *
 * Fixtures (tests/data/default-models, written by `scripts/train-default.py fixtures`): the 15
 * images (synth seed 77, never used in training), fixtures.json (suite, id, image, prompt), and
 * per model answers.json (the trainer's greedy ids) and logits-K.npy (the trainer's PyTorch
 * logits at every answer position, teacher-forced on those ids). */
#include "config.h"

#include "common/jb-err.h"
#include "common/jb-npy.h"
#include "common/jb-sha256.h"
#include "engine/molmo.h"
#include "tests/jb-test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *models_dir(void) {
    static char d[4096];
    const char *src = getenv("JB_SRCDIR");
    snprintf(d, sizeof d, "%s/models", src ? src : ".");
    return d;
}

static json_t *load_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert_not_null(j, "%s: %s", path, je.text);
    return j;
}

/* The engine's greedy answer and decode logits (the rows that chose each token: the prefill's
 * last, then each decode step's) against the trainer's. */
static void check_parity(const char *name) {
    char path[8192], mdir[4096 + 64];
    snprintf(mdir, sizeof mdir, "%s/%s", models_dir(), name);
    struct jb_err err = {0};
    struct molmo_model *m = NULL;
    struct molmo_load_opts lo = {.n_threads = 1};
    cr_assert_eq(molmo_model_load(&m, mdir, &lo, &err), 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/default-models/images/fixtures.json", jb_test_data_dir());
    json_t *fx = load_json(path);
    snprintf(path, sizeof path, "%s/default-models/%s/answers.json", jb_test_data_dir(), name);
    json_t *ans = load_json(path);
    cr_assert_eq(json_array_size(fx), 15, "5 samples per suite");
    cr_assert_eq(json_array_size(ans), 15);
    char *tmp = jb_test_tmpdir();
    double worst = 0.0;
    for (size_t k = 0; k < json_array_size(fx); k++) {
        const json_t *s = json_array_get(fx, k);
        const json_t *want = json_object_get(json_array_get(ans, k), "ids");
        snprintf(path, sizeof path, "%s/default-models/images/%s", jb_test_data_dir(),
                 json_string_value(json_object_get(s, "image")));
        struct molmo_gen_opts go = {.max_new_tokens = 64, .dump_dir = tmp};
        struct molmo_result r = {0};
        cr_assert_eq(molmo_generate_file(m, path, json_string_value(json_object_get(s, "prompt")),
                                         &go, &r, &err),
                     0, "%s", err.msg);
        const char *id = json_string_value(json_object_get(s, "id"));
        /* the same greedy answer, token for token */
        cr_assert_eq(r.n_ids, json_array_size(want), "%s %s: %zu ids, trainer %zu ('%s')", name,
                     id, r.n_ids, json_array_size(want), r.text);
        for (size_t i = 0; i < r.n_ids; i++)
            cr_assert_eq(r.ids[i], json_integer_value(json_array_get(want, i)),
                         "%s %s: token %zu differs ('%s')", name, id, i, r.text);
        /* the logits of every step within 1e-4 of the largest trainer logit */
        struct jb_npy e = {0}, t = {0};
        snprintf(path, sizeof path, "%s/decode_logits.npy", tmp);
        cr_assert_eq(jb_npy_load(&e, path, &err), 0, "%s", err.msg);
        snprintf(path, sizeof path, "%s/default-models/%s/logits-%zu.npy", jb_test_data_dir(),
                 name, k);
        cr_assert_eq(jb_npy_load(&t, path, &err), 0, "%s", err.msg);
        cr_assert(e.ndim == 2 && t.ndim == 2 && e.shape[0] == t.shape[0] &&
                      e.shape[1] == t.shape[1],
                  "%s %s: engine logits [%zu, %zu], trainer [%zu, %zu]", name, id, e.shape[0],
                  e.shape[1], t.shape[0], t.shape[1]);
        const float *a = e.data, *b = t.data;
        double maxabs = 0.0, maxdiff = 0.0;
        for (size_t i = 0; i < t.numel; i++) {
            if (fabs(b[i]) > maxabs) maxabs = fabs(b[i]);
            if (fabs((double)a[i] - b[i]) > maxdiff) maxdiff = fabs((double)a[i] - b[i]);
        }
        cr_assert_gt(maxabs, 0.0);
        double rel = maxdiff / maxabs;
        if (rel > worst) worst = rel;
        cr_assert_leq(rel, 1e-4, "%s %s: logits differ by %.3g of their largest magnitude",
                      name, id, rel);
        jb_npy_free(&e);
        jb_npy_free(&t);
        molmo_result_free(&r);
    }
    cr_log_info("%s: worst relative logit difference %.3g over 15 samples", name, worst);
    json_decref(fx);
    json_decref(ans);
    molmo_model_free(m);
    jb_test_rmtree(tmp);
    free(tmp);
}

Test(default_models, tiny_engine_matches_the_trainer_on_15_held_out_samples, .timeout = 300) {
    check_parity("tiny");
}

Test(default_models, small_engine_matches_the_trainer_on_15_held_out_samples, .timeout = 300) {
    check_parity("small");
}

/* The shipped manifests list every file of the model (nothing unchecked). */
Test(default_models, sha256sums_list_every_file_and_match) {
    static const char *const names[] = {"tiny", "small"};
    for (int i = 0; i < 2; i++) {
        char dir[4096 + 64];
        snprintf(dir, sizeof dir, "%s/%s", models_dir(), names[i]);
        struct jb_err err = {0};
        int n = 0;
        cr_assert_eq(jb_sha256_manifest_check(dir, "SHA256SUMS", &n, &err), 0, "%s", err.msg);
        /* config, preprocessor, generation, tokenizer, index, 2 shards, TRAINED.json */
        cr_assert_eq(n, 8, "%s: %d files listed", names[i], n);
    }
}

static void copy_model(const char *name, const char *to) {
    struct jb_test_proc p;
    jb_test_run(&p, "cp -r '%s/%s' '%s'", models_dir(), name, to);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
}

Test(default_models, a_changed_weight_file_is_refused_at_load_naming_it) {
    char *tmp = jb_test_tmpdir();
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    copy_model("tiny", dir);
    /* one byte of the second shard, past its header */
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, -100, SEEK_END);
    int c = fgetc(f);
    fseek(f, -100, SEEK_END);
    fputc(c ^ 1, f);
    fclose(f);
    struct jb_err err = {0};
    struct molmo_model *m = NULL;
    struct molmo_load_opts lo = {.n_threads = 1};
    cr_assert_eq(molmo_model_load(&m, dir, &lo, &err), JB_EFORMAT);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "model-00002-of-00002.safetensors: SHA-256") &&
                  strstr(err.msg, "SHA256SUMS:") && strstr(err.msg, "damaged or was changed"),
              "%s", err.msg);
    /* `joulebench run` refuses the default models the same way, before any work */
    struct jb_test_proc p;
    jb_test_run(&p, "cp -r '%s/small' '%s/small' && JOULEBENCH_MODELS='%s' '%s' run --out '%s/r' "
                    "--limit 1 --idle-s 0 --meter estimate --threads 1",
                models_dir(), tmp, tmp, jb_test_bin(), tmp);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "default model 'tiny'") && strstr(p.err, "damaged"), "%s", p.err);
    jb_test_proc_free(&p);
    snprintf(path, sizeof path, "%s/r/samples.jsonl", tmp);
    cr_assert_neq(access(path, F_OK), 0, "no records were started");
    jb_test_rmtree(tmp);
    free(tmp);
}

Test(default_models, a_missing_file_or_a_malformed_manifest_line_is_an_error) {
    char *tmp = jb_test_tmpdir();
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    copy_model("tiny", dir);
    snprintf(path, sizeof path, "%s/TRAINED.json", dir);
    cr_assert_eq(remove(path), 0);
    struct jb_err err = {0};
    cr_assert_eq(jb_sha256_manifest_check(dir, "SHA256SUMS", NULL, &err), JB_ENOTFOUND);
    cr_assert(strstr(err.msg, "TRAINED.json") && strstr(err.msg, "SHA256SUMS lists it"), "%s",
              err.msg);
    snprintf(path, sizeof path, "%s/SHA256SUMS", dir);
    jb_test_write_file(path, "abc  config.json\n", 17);
    cr_assert_eq(jb_sha256_manifest_check(dir, "SHA256SUMS", NULL, &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, "SHA256SUMS:1:"), "%s", err.msg);
    /* a path leaving the directory is malformed too */
    static const char up[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                             "  ../x\n";
    jb_test_write_file(path, up, strlen(up));
    cr_assert_eq(jb_sha256_manifest_check(dir, "SHA256SUMS", NULL, &err), JB_EFORMAT);
    /* the FIPS 180-2 "abc" vector, as sha256sum writes it */
    snprintf(path, sizeof path, "%s/abc", dir);
    jb_test_write_file(path, "abc", 3);
    snprintf(path, sizeof path, "%s/SHA256SUMS", dir);
    static const char ok[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                             "  abc\n";
    jb_test_write_file(path, ok, strlen(ok));
    int n = 0;
    cr_assert_eq(jb_sha256_manifest_check(dir, "SHA256SUMS", &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    jb_test_rmtree(tmp);
    free(tmp);
}
