/* Corrupt checkpoints give a clean error naming the file and the tensor, never a crash (run
 * under ASan/UBSan by scripts/test). Each test edits a copy of the golden molmo-tiny-olmo
 * checkpoint in a temporary directory. */
#include "config.h"

#include "engine/model-impl.h"

#include "common/jb-mmap.h"
#include "tests/jb-test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARD "model-00001-of-00002.safetensors"

static const char *const files[] = {"config.json", "generation_config.json",
                                    "model.safetensors.index.json", SHARD,
                                    "model-00002-of-00002.safetensors"};

static char *src_path(const char *f) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/molmo-tiny-olmo/%s", jb_test_golden_dir(), f);
    return p;
}

static void read_file(const char *path, char **buf, size_t *len) {
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(path, buf, len, &err), 0, "%s", err.msg);
}

/* A copy of the checkpoint in a new temporary directory. */
static char *copy_ckpt(void) {
    jb_test_golden_or_skip();
    char *dir = jb_test_tmpdir();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *buf;
        size_t len;
        read_file(src_path(files[i]), &buf, &len);
        char dst[1024];
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        jb_test_write_file(dst, buf, len);
        free(buf);
    }
    return dir;
}

static void write_in(const char *dir, const char *f, const void *data, size_t len) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, f);
    jb_test_write_file(p, data, len);
}

/* Loads dir; asserts a clean failure whose message contains every non-NULL needle. */
static void expect_error(const char *dir, const char *what, const char *n1, const char *n2) {
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    int rc = molmo_model_load_weights(&m, dir, NULL, &err);
    cr_assert_lt(rc, 0, "%s: loaded", what);
    cr_assert_null(m);
    cr_assert_eq(err.code, rc);
    if (n1) cr_expect(strstr(err.msg, n1), "%s: '%s' does not name '%s'", what, err.msg, n1);
    if (n2) cr_expect(strstr(err.msg, n2), "%s: '%s' does not name '%s'", what, err.msg, n2);
}

/* The shard with `from` replaced by `to` (same length, so offsets stay) after `after`. */
static void edit_header(const char *dir, const char *after, const char *from, const char *to) {
    char *buf;
    size_t len;
    read_file(src_path(SHARD), &buf, &len);
    cr_assert_eq(strlen(from), strlen(to));
    char *at = memmem(buf, 8 + 4096 < len ? 8 + 4096 : len, after, strlen(after));
    cr_assert(at, "no '%s' in the header", after);
    char *hit = strstr(at, from);
    cr_assert(hit);
    memcpy(hit, to, strlen(to));
    write_in(dir, SHARD, buf, len);
    free(buf);
}

Test(engine_corrupt, the_unmodified_copy_loads) {
    char *dir = copy_ckpt();
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_model_load_weights(&m, dir, NULL, &err), 0, "%s", err.msg);
    molmo_model_free_weights(m);
    jb_test_rmtree(dir);
    free(dir);
}

/* Shard: 8-byte length, a 2120-byte header (data starts at 2128), 251008 bytes of data. Cuts in
 * the length, in the header, at the boundary and inside the data. */
Test(engine_corrupt, a_shard_cut_at_ten_offsets_is_a_clean_error) {
    char *dir = copy_ckpt();
    char *buf;
    size_t len;
    read_file(src_path(SHARD), &buf, &len);
    const size_t cuts[] = {0, 5, 8, 9, 1064, 2127, 2128, 2200, 126000, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_in(dir, SHARD, buf, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "cut at %zu", cuts[i]);
        /* past the header, the first tensor whose data is missing is named */
        expect_error(dir, what, SHARD, cuts[i] >= 2128 ? "tensor '" : NULL);
    }
    free(buf);
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, a_header_length_past_the_file_is_a_clean_error) {
    char *dir = copy_ckpt();
    char *buf;
    size_t len;
    read_file(src_path(SHARD), &buf, &len);
    const uint64_t bad[] = {len, UINT64_MAX, 0, 100};  /* too long, huge, empty, cuts the JSON */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int b = 0; b < 8; b++) buf[b] = (char)(bad[i] >> (8 * b) & 0xff);
        write_in(dir, SHARD, buf, len);
        expect_error(dir, "bad header length", SHARD, NULL);
    }
    free(buf);
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, a_tensor_missing_from_its_shard_is_named) {
    char *dir = copy_ckpt();
    /* the shard calls it ln_g, the index still says ln_f */
    edit_header(dir, "model.transformer.ln_f.weight", "ln_f", "ln_g");
    expect_error(dir, "missing tensor", SHARD, "model.transformer.ln_f.weight");
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, a_tensor_missing_from_the_checkpoint_is_named) {
    char *dir = copy_ckpt();
    char *idx;
    size_t len;
    read_file(src_path("model.safetensors.index.json"), &idx, &len);
    /* renamed consistently in the index and the shard: the model still needs ln_f */
    char *at = strstr(idx, "model.transformer.ln_f.weight");
    cr_assert(at);
    memcpy(strstr(at, "ln_f"), "ln_g", 4);
    write_in(dir, "model.safetensors.index.json", idx, len);
    edit_header(dir, "model.transformer.ln_f.weight", "ln_f", "ln_g");
    expect_error(dir, "tensor absent", "model.transformer.ln_f.weight", NULL);
    free(idx);
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, a_wrong_shape_names_the_file_and_tensor) {
    char *dir = copy_ckpt();
    /* ff_out is [d, I/2] = [64, 128]; transposed it has the same byte size */
    edit_header(dir, "model.transformer.blocks.0.ff_out.weight", "[64,128]", "[128,64]");
    expect_error(dir, "wrong shape", SHARD, "model.transformer.blocks.0.ff_out.weight");
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, a_size_that_disagrees_with_the_shape_is_named) {
    char *dir = copy_ckpt();
    edit_header(dir, "model.transformer.blocks.0.ff_out.weight", "[64,128]", "[64,129]");
    expect_error(dir, "size", SHARD, "model.transformer.blocks.0.ff_out.weight");
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, an_unknown_dtype_is_named) {
    char *dir = copy_ckpt();
    edit_header(dir, "model.transformer.blocks.0.attn_out.weight", "BF16", "Q4_0");
    expect_error(dir, "dtype", SHARD, "model.transformer.blocks.0.attn_out.weight");
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, overlapping_tensors_are_named) {
    char *dir = copy_ckpt();
    /* attn_norm [24576, 24704] moved into att_proj's bytes [0, 24576] (same size) */
    edit_header(dir, "model.transformer.blocks.0.attn_norm.weight", "[24576,24704]",
                "[24000,24128]");
    expect_error(dir, "overlap", SHARD, "overlaps");
    jb_test_rmtree(dir);
    free(dir);
}

Test(engine_corrupt, unsupported_config_settings_name_the_field) {
    static const struct {
        const char *from, *to, *field;
    } cases[] = {
        {"\"layer_norm_type\": \"rms\"", "\"layer_norm_type\": \"ln \"", "layer_norm_type"},
        {"\"clip_qkv\": null", "\"clip_qkv\": 8.0 ", "clip_qkv"},
        {"\"weight_tying\": false", "\"weight_tying\": true ", "weight_tying"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = copy_ckpt();
        char *cfg;
        size_t len;
        read_file(src_path("config.json"), &cfg, &len);
        char *at = strstr(cfg, cases[i].from);
        cr_assert(at, "%s", cases[i].from);
        memcpy(at, cases[i].to, strlen(cases[i].to));
        write_in(dir, "config.json", cfg, len);
        expect_error(dir, cases[i].field, "config.json", cases[i].field);
        free(cfg);
        jb_test_rmtree(dir);
        free(dir);
    }
}
