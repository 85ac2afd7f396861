/* joulebench init-model: a deterministic checkpoint in the released Molmo layout. */
#include "config.h"

#include "engine/molmo.h"
#include "engine/model-impl.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-mmap.h"
#include "tests/jb-test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const files[] = {
    "config.json",
    "generation_config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "preprocessor_config.json",
    "tokenizer.json",
};

static char *write_model(uint64_t seed, enum molmo_init_size size) {
    char *dir = jb_test_tmpdir();
    struct jb_err err = {0};
    struct molmo_init_opts o = {.seed = seed, .size = size};
    cr_assert_eq(molmo_init_model_write(dir, &o, &err), 0, "%s", err.msg);
    return dir;
}

static char *file_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static int same_file(const char *a_dir, const char *b_dir, const char *name) {
    char *pa = file_in(a_dir, name), *pb = file_in(b_dir, name), *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(pa, &a, &la, &err), 0, "%s", err.msg);
    cr_assert_eq(jb_file_read_all(pb, &b, &lb, &err), 0, "%s", err.msg);
    int same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    free(pa);
    free(pb);
    return same;
}

Test(init_model, same_seed_gives_the_same_bytes_and_another_seed_other_weights) {
    char *a = write_model(7, MOLMO_INIT_TINY), *b = write_model(7, MOLMO_INIT_TINY);
    char *c = write_model(8, MOLMO_INIT_TINY);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        cr_assert(same_file(a, b, files[i]), "%s differs for the same seed", files[i]);
        int weights = strstr(files[i], ".safetensors") && !strstr(files[i], "index");
        cr_assert_eq(same_file(a, c, files[i]), !weights, "%s vs another seed", files[i]);
    }
    jb_test_rmtree(a);
    jb_test_rmtree(b);
    jb_test_rmtree(c);
    free(a);
    free(b);
    free(c);
}

/* Parses one shard: the header (8-byte little-endian length, JSON, data 8-aligned) and checks
 * that the tensors tile the data area; returns the header. */
static json_t *shard_header_dt(const char *path, struct jb_mmap *map, const char *dtype,
                               size_t esize) {
    struct jb_err err = {0};
    cr_assert_eq(jb_mmap_open(map, path, &err), 0, "%s", err.msg);
    uint64_t n = 0;
    memcpy(&n, map->data, 8);
    cr_assert_eq((8 + n) % 8, 0, "data area 8-aligned");
    json_t *h = NULL;
    cr_assert_eq(jb_json_load_text((const char *)map->data + 8, n, path, &h, &err), 0, "%s",
                 err.msg);
    size_t covered = 0;
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        if (!strcmp(k, "__metadata__")) continue;
        cr_assert_str_eq(json_string_value(json_object_get(v, "dtype")), dtype);
        json_t *off = json_object_get(v, "data_offsets");
        size_t numel = 1, i;
        json_t *d;
        json_array_foreach(json_object_get(v, "shape"), i, d) numel *=
            (size_t)json_integer_value(d);
        size_t s = (size_t)json_integer_value(json_array_get(off, 0));
        size_t e = (size_t)json_integer_value(json_array_get(off, 1));
        cr_assert_eq(s, covered, "%s starts where the previous tensor ends", k);
        cr_assert_eq(e - s, numel * esize, "%s: end - begin == numel * %zu", k, esize);
        covered = e;
    }
    cr_assert_eq(8 + n + covered, map->len, "the tensors fill the file");
    return h;
}

static json_t *shard_header(const char *path, struct jb_mmap *map) {
    return shard_header_dt(path, map, "F32", 4);
}

static void shape_is(json_t *h, const char *name, long long d0, long long d1) {
    json_t *sh = json_object_get(json_object_get(h, name), "shape");
    cr_assert_not_null(sh, "%s missing", name);
    cr_assert_eq(json_integer_value(json_array_get(sh, 0)), d0, "%s dim 0", name);
    if (d1)
        cr_assert_eq(json_integer_value(json_array_get(sh, 1)), d1, "%s dim 1", name);
    else
        cr_assert_eq(json_array_size(sh), 1, "%s is a vector", name);
}

/* Shapes from molmo.md §2.1 with the tiny sizes: d 64, 4 heads of 16, 2 KV heads, fused FFN
 * 256, 264 rows; ViT D 64, MLP 128. att_proj rows = d + 2·K·hd = 64 + 64 = 128. */
Test(init_model, tiny_shards_have_the_released_names_and_shapes) {
    char *dir = write_model(0, MOLMO_INIT_TINY);
    char *p1 = file_in(dir, files[2]), *p2 = file_in(dir, files[3]);
    struct jb_mmap m1 = {0}, m2 = {0};
    json_t *h1 = shard_header(p1, &m1), *h2 = shard_header(p2, &m2);
    shape_is(h1, "model.transformer.blocks.1.att_proj.weight", 128, 64);
    shape_is(h1, "model.transformer.blocks.1.att_proj.bias", 128, 0);
    shape_is(h1, "model.transformer.blocks.0.ff_proj.weight", 256, 64);
    shape_is(h1, "model.transformer.blocks.0.ff_out.weight", 64, 128);
    shape_is(h1, "model.transformer.wte.embedding", 264, 64);
    shape_is(h1, "model.transformer.wte.new_embedding", 128, 64);
    shape_is(h1, "model.transformer.ff_out.weight", 264, 64);
    shape_is(h2, "model.vision_backbone.image_vit.patch_embedding.weight", 64, 588);
    shape_is(h2, "model.vision_backbone.image_vit.positional_embedding", 577, 64);
    shape_is(h2, "model.vision_backbone.image_vit.transformer.resblocks.9.feed_forward.w1.weight",
             128, 64);
    shape_is(h2, "model.vision_backbone.image_pooling_2d.wq.weight", 64, 128);
    shape_is(h2, "model.vision_backbone.image_projector.w2.weight", 64, 128);
    shape_is(h2, "model.vision_backbone.pad_embed", 2, 128);
    cr_assert_null(json_object_get(h2, "model.vision_backbone.image_vit.transformer.resblocks.10."
                                       "attention.wq.weight"));
    /* Norm gains are 1; a linear weight stays within sqrt(3)/sqrt(fan_in) = 0.2165 (fan_in 64);
     * everything is finite. */
    json_t *g = json_object_get(h1, "model.transformer.ln_f.weight");
    size_t off = (size_t)json_integer_value(json_array_get(json_object_get(g, "data_offsets"), 0));
    uint64_t hn;
    memcpy(&hn, m1.data, 8);
    const float *gain = (const float *)(m1.data + 8 + hn + off);
    for (int i = 0; i < 64; i++) cr_assert_eq(gain[i], 1.0f);
    json_t *w = json_object_get(h1, "model.transformer.blocks.0.att_proj.weight");
    off = (size_t)json_integer_value(json_array_get(json_object_get(w, "data_offsets"), 0));
    const float *wt = (const float *)(m1.data + 8 + hn + off);
    float mx = 0;
    for (int i = 0; i < 128 * 64; i++) {
        cr_assert(isfinite(wt[i]));
        mx = fmaxf(mx, fabsf(wt[i]));
    }
    cr_assert(mx > 0.15f && mx <= 0.2166f, "max |w| %g", mx);
    /* The index names every tensor of both shards, with the byte total. */
    char *pi = file_in(dir, files[4]);
    json_t *idx = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_json_load_file(pi, &idx, &err), 0, "%s", err.msg);
    json_t *wm = json_object_get(idx, "weight_map");
    cr_assert_eq(json_object_size(wm), json_object_size(h1) - 1 + json_object_size(h2) - 1);
    uint64_t h2n;
    memcpy(&h2n, m2.data, 8);
    json_int_t total = (json_int_t)(m1.len - 8 - hn + m2.len - 8 - h2n);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(idx, "metadata"), "total_size")), total);
    json_decref(idx);
    json_decref(h1);
    json_decref(h2);
    jb_mmap_close(&m1);
    jb_mmap_close(&m2);
    free(p1);
    free(p2);
    free(pi);
    jb_test_rmtree(dir);
    free(dir);
}

/* The golden tiny checkpoint is the model to imitate: same config, tokenizer, preprocessor and
 * generation files (as JSON values) and the same tensor names in the index. */
Test(init_model, tiny_matches_the_golden_tiny_checkpoint_files) {
    const char *g = jb_test_golden_or_skip();
    char *dir = write_model(0, MOLMO_INIT_TINY);
    const char *names[] = {"config.json", "generation_config.json", "preprocessor_config.json",
                           "tokenizer.json"};
    struct jb_err err = {0};
    for (int i = 0; i < 4; i++) {
        char *gp = malloc(strlen(g) + 64), *mp = file_in(dir, names[i]);
        sprintf(gp, "%s/molmo-tiny-qwen2/%s", g, names[i]);
        json_t *a = NULL, *b = NULL;
        cr_assert_eq(jb_json_load_file(gp, &a, &err), 0, "%s", err.msg);
        cr_assert_eq(jb_json_load_file(mp, &b, &err), 0, "%s", err.msg);
        cr_assert(json_equal(a, b), "%s differs from the golden one", names[i]);
        json_decref(a);
        json_decref(b);
        free(gp);
        free(mp);
    }
    char *gp = malloc(strlen(g) + 64), *mp = file_in(dir, files[4]);
    sprintf(gp, "%s/molmo-tiny-qwen2/%s", g, files[4]);
    json_t *a = NULL, *b = NULL;
    cr_assert_eq(jb_json_load_file(gp, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(jb_json_load_file(mp, &b, &err), 0, "%s", err.msg);
    cr_assert(json_equal(a, b),
              "the index (names, shards, total size) differs from the golden one");
    json_decref(a);
    json_decref(b);
    free(gp);
    free(mp);
    jb_test_rmtree(dir);
    free(dir);
}

/* GPT-2 byte alphabet: id 0 is '!', id 187 is 'ÿ', id 188 is U+0100 (byte 0), id 255 is
 * U+0143; image tokens follow the vocabulary: <im_patch> = 264 + 2. */
Test(init_model, tokenizer_has_the_byte_alphabet_and_image_tokens) {
    char *dir = write_model(0, MOLMO_INIT_SMALL);
    char *p = file_in(dir, "tokenizer.json");
    json_t *t = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_json_load_file(p, &t, &err), 0, "%s", err.msg);
    json_t *vocab = json_object_get(json_object_get(t, "model"), "vocab");
    cr_assert_eq(json_object_size(vocab), 256);
    cr_assert_eq(json_integer_value(json_object_get(vocab, "!")), 0);
    cr_assert_eq(json_integer_value(json_object_get(vocab, "\xC3\xBF")), 187);
    cr_assert_eq(json_integer_value(json_object_get(vocab, "\xC4\x80")), 188);
    cr_assert_eq(json_integer_value(json_object_get(vocab, "\xC5\x83")), 255);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(t, "model"), "merges")), 0);
    size_t i;
    json_t *a;
    int found = 0;
    json_array_foreach(json_object_get(t, "added_tokens"), i, a) {
        if (!strcmp(json_string_value(json_object_get(a, "content")), "<im_patch>")) {
            cr_assert_eq(json_integer_value(json_object_get(a, "id")), 266);
            found = 1;
        }
    }
    cr_assert(found);
    json_decref(t);
    free(p);
    jb_test_rmtree(dir);
    free(dir);
}

/* --layers / --vit-layers / --dtype bf16 on the tiny sizes (the released shapes write GBs, too
 * much for make check): the engine loads it with those layer counts, every weight is BF16 and
 * equals the F32 checkpoint of the same seed rounded to nearest even (SplitMix64 streams per
 * tensor name, so the layer count does not change a tensor's values). */
Test(init_model, layers_and_bf16_options_give_a_rounded_twin_the_engine_loads) {
    char *f32 = jb_test_tmpdir(), *bf = jb_test_tmpdir();
    struct jb_err err = {0};
    struct molmo_init_opts o = {.seed = 7, .size = MOLMO_INIT_TINY, .layers = 3, .vit_layers = 4};
    cr_assert_eq(molmo_init_model_write(f32, &o, &err), 0, "%s", err.msg);
    o.bf16 = 1;
    cr_assert_eq(molmo_init_model_write(bf, &o, &err), 0, "%s", err.msg);
    struct molmo_model *a = NULL, *b = NULL;
    struct molmo_load_opts lo = {.max_seq = 64};
    cr_assert_eq(molmo_model_load_weights(&a, f32, &lo, &err), 0, "%s", err.msg);
    cr_assert_eq(molmo_model_load_weights(&b, bf, &lo, &err), 0, "%s", err.msg);
    cr_expect_eq(b->cfg.n_layers, 3);
    cr_expect_eq(b->cfg.vit_layers, 4);
    /* vit_layers [-1, -4] below 9 blocks: 0-based blocks 3 and 0 */
    cr_expect_eq(b->cfg.vit_layer_a, 3);
    cr_expect_eq(b->cfg.vit_layer_b, 0);
    const struct molmo_tensor *ta = &a->w.blocks[2].ff_proj, *tb = &b->w.blocks[2].ff_proj;
    cr_assert_eq(ta->dt, MOLMO_DTYPE_F32);
    cr_assert_eq(tb->dt, MOLMO_DTYPE_BF16);
    cr_assert_eq(ta->numel, tb->numel);
    size_t bad = 0;
    for (size_t i = 0; i < ta->numel; i++)
        bad += molmo_f32_to_bf16(((const float *)ta->data)[i]) != ((const uint16_t *)tb->data)[i];
    cr_expect_eq(bad, 0, "%zu of %zu values are not the rounded f32 ones", bad, ta->numel);
    molmo_model_free_weights(a);
    molmo_model_free_weights(b);
    jb_test_rmtree(f32);
    jb_test_rmtree(bf);
    free(f32);
    free(bf);
}

Test(init_model, the_cli_rejects_an_unknown_shape_and_bad_layer_counts) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' init-model --shape 13b --out /nonexistent/x", jb_test_bin());
    cr_expect_eq(p.status, 2, "%s", p.err);
    cr_expect(strstr(p.err, "13b") != NULL, "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' init-model --shape 7b-d --layers 0 --out /nonexistent/x", jb_test_bin());
    cr_expect_eq(p.status, 2, "%s", p.err);
    jb_test_proc_free(&p);
    /* --experts only means something for the mixture-of-experts shape */
    jb_test_run(&p, "'%s' init-model --shape 7b-d --experts 2 --out /nonexistent/x", jb_test_bin());
    cr_expect_eq(p.status, 2, "%s", p.err);
    cr_expect(strstr(p.err, "--experts needs --shape molmoe-1b") != NULL, "%s", p.err);
    jb_test_proc_free(&p);
}

/* MolmoE-1B at its released shapes. Expected values are the released allenai/MolmoE-1B-0924
 * config.json (d_model 2048, n_heads 16, n_kv_heads null, mlp_ratio 1 so each expert is
 * 2048 / 2 = 1024 wide, vocab_size 50280, embedding_size 50304, additional_vocab_size 128,
 * layer_norm_eps 1e-5, rope_theta 10000, attention_layer_norm true, ViT-L 1024 wide, MLP
 * 4096) and its modelling file's tensor names, as transcribed in molmo.md §1 and §2.2. One LLM
 * block with 2 experts and one ViT block keep the file at 0.5 GB instead of 14 GB; every
 * tensor keeps its released shape. */
static char *big_dir; /* removed by .fini even when an assertion stops the test: 0.5 GB */
static void remove_big_dir(void) {
    if (big_dir) jb_test_rmtree(big_dir);
    free(big_dir);
    big_dir = NULL;
}

Test(init_model, molmoe_1b_has_the_released_shapes_and_loads, .fini = remove_big_dir) {
    char *dir = big_dir = jb_test_tmpdir();
    struct jb_err err = {0};
    struct molmo_init_opts o = {.seed = 3, .size = MOLMO_INIT_MOLMOE_1B, .layers = 1,
                                .vit_layers = 1, .experts = 2, .bf16 = 1};
    cr_assert_eq(molmo_init_model_write(dir, &o, &err), 0, "%s", err.msg);
    char *p1 = file_in(dir, files[2]), *p2 = file_in(dir, files[3]);
    struct jb_mmap m1 = {0}, m2 = {0};
    json_t *h1 = shard_header_dt(p1, &m1, "BF16", 2), *h2 = shard_header_dt(p2, &m2, "BF16", 2);
    const char *b = "model.transformer.blocks.0.";
    char n[160];
#define SHAPE(h, suffix, d0, d1) (snprintf(n, sizeof n, "%s%s", b, suffix), shape_is(h, n, d0, d1))
    SHAPE(h1, "attn.att_proj.weight", 3 * 2048, 2048); /* 16 heads x 128, no KV grouping */
    SHAPE(h1, "attn.attn_norm.weight", 2048, 0);
    SHAPE(h1, "attn.q_norm.weight", 2048, 0);
    SHAPE(h1, "attn.k_norm.weight", 2048, 0);
    SHAPE(h1, "attn.attn_out.weight", 2048, 2048);
    SHAPE(h1, "mlp.ff_norm.weight", 2048, 0);
    SHAPE(h1, "mlp.gate.weight", 2, 2048);
    SHAPE(h1, "mlp.experts.1.gate_proj.weight", 1024, 2048);
    SHAPE(h1, "mlp.experts.1.up_proj.weight", 1024, 2048);
    SHAPE(h1, "mlp.experts.0.down_proj.weight", 2048, 1024);
#undef SHAPE
    shape_is(h1, "model.transformer.wte.embedding", 50304, 2048);
    shape_is(h1, "model.transformer.wte.new_embedding", 128, 2048);
    shape_is(h1, "model.transformer.ln_f.weight", 2048, 0);
    shape_is(h1, "lm_head.weight", 50304, 2048);
    cr_assert_null(json_object_get(h1, "model.transformer.ff_out.weight"));
    cr_assert_null(json_object_get(h1, "model.transformer.blocks.0.att_proj.weight"));
    cr_assert_null(json_object_get(h1, "model.transformer.blocks.0.mlp.experts.2.up_proj.weight"));
    const char *v = "model.vision_backbone.";
#define VSHAPE(suffix, d0, d1) (snprintf(n, sizeof n, "%s%s", v, suffix), shape_is(h2, n, d0, d1))
    VSHAPE("image_vit.patch_embedding.weight", 1024, 588); /* 14 x 14 x 3 */
    VSHAPE("image_vit.positional_embedding", 577, 1024);
    VSHAPE("image_vit.transformer.resblocks.0.feed_forward.w1.weight", 4096, 1024);
    VSHAPE("image_vit.transformer.resblocks.0.attention.wq.weight", 1024, 1024);
    VSHAPE("image_pooling_2d.wq.weight", 1024, 2048);
    VSHAPE("image_projector.w1.weight", 1024, 1024); /* inner width d / 2 (§2.2) */
    VSHAPE("image_projector.w3.weight", 1024, 1024);
    VSHAPE("image_projector.w2.weight", 2048, 1024);
    VSHAPE("pad_embed", 2, 2048);
#undef VSHAPE
    json_decref(h1);
    json_decref(h2);
    jb_mmap_close(&m1);
    jb_mmap_close(&m2);
    /* The engine reads the OLMo-style config and binds every tensor. */
    struct molmo_model *m = NULL;
    struct molmo_load_opts lo = {.max_seq = 64};
    cr_assert_eq(molmo_model_load_weights(&m, dir, &lo, &err), 0, "%s", err.msg);
    const struct molmo_config *c = &m->cfg;
    cr_expect(c->moe);
    cr_expect_eq(c->d_model, 2048);
    cr_expect_eq(c->n_heads, 16);
    cr_expect_eq(c->n_kv_heads, 16);
    cr_expect_eq(c->head_dim, 128);
    cr_expect_eq(c->ffn_rows, 2048);
    cr_expect_eq(c->n_experts, 2);
    cr_expect_eq(c->top_k, 2); /* the released 8, capped at the 2 experts written */
    cr_expect_eq(c->n_layers, 1);
    cr_expect_eq(c->vocab_size, 50280);
    cr_expect_eq(c->embedding_size, 50304);
    cr_expect_eq(c->n_new_embed, 128);
    cr_expect(c->qk_norm && !c->qkv_bias && !c->norm_after);
    cr_expect_float_eq(c->norm_eps, 1e-5f, 1e-12);
    cr_expect_float_eq(c->rope_theta, 10000.0f, 1e-3);
    cr_expect_eq(c->vit_dim, 1024);
    cr_expect_eq(c->vit_heads, 16);
    cr_expect_eq(c->vit_mlp, 4096);
    cr_expect_eq(c->vit_layers, 1);
    cr_expect_eq(m->w.experts[1].up_proj.dt, MOLMO_DTYPE_BF16);
    molmo_model_free_weights(m);
    free(p1);
    free(p2);
}
