#include "config.h"

#include "engine/model-impl.h"
#include "engine/molmo.h"

#include <jansson.h>

#include "tests/jb-test.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(dtype, safetensors_tags_parse) {
    enum molmo_dtype dt;
    cr_assert_eq(molmo_dtype_parse("F32", &dt), 0);
    cr_assert_eq(dt, MOLMO_DTYPE_F32);
    cr_assert_eq(molmo_dtype_parse("BF16", &dt), 0);
    cr_assert_eq(dt, MOLMO_DTYPE_BF16);
    cr_assert_eq(molmo_dtype_parse("F16", &dt), 0);
    cr_assert_eq(molmo_dtype_size(dt), 2);
    cr_assert_eq(molmo_dtype_parse("F64", &dt), -1);
    cr_assert_eq(molmo_dtype_parse("bf16", &dt), -1);
    cr_assert_str_eq(molmo_dtype_name(MOLMO_DTYPE_BF16), "BF16");
}

/* bfloat16 is the top half of a float32: 0x3F80 = 1.0, 0xC040 = -3.0, 0x3E20 = 0.15625,
 * 0x7F80 = +inf (IEEE 754 bit layouts, worked by hand). Stored little-endian. */
Test(dtype, bf16_to_f32_is_a_shift) {
    const unsigned char raw[] = {0x80, 0x3F, 0x40, 0xC0, 0x20, 0x3E, 0x80, 0x7F};
    float f[4];
    molmo_convert_to_f32(f, raw, MOLMO_DTYPE_BF16, 4);
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[1], -3.0f);
    cr_assert_eq(f[2], 0.15625f);
    cr_assert(isinf(f[3]) && f[3] > 0);
}

/* binary16: 0x3C00 = 1.0, 0xC500 = -5.0, 0x0001 = 2^-24 (smallest subnormal), 0x7BFF = 65504
 * (largest normal), 0xFC00 = -inf, 0x7E00 = NaN. */
Test(dtype, f16_to_f32_covers_subnormals_and_specials) {
    const uint16_t h[] = {0x3C00, 0xC500, 0x0001, 0x7BFF, 0xFC00, 0x7E00, 0x8000};
    unsigned char raw[sizeof h];
    for (size_t i = 0; i < 7; i++) {
        raw[2 * i] = (unsigned char)(h[i] & 0xff);
        raw[2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    float f[7];
    molmo_convert_to_f32(f, raw, MOLMO_DTYPE_F16, 7);
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[1], -5.0f);
    cr_assert_eq(f[2], 0x1p-24f);
    cr_assert_eq(f[3], 65504.0f);
    cr_assert(isinf(f[4]) && f[4] < 0);
    cr_assert(isnan(f[5]));
    cr_assert(f[6] == 0.0f && signbit(f[6]));
}

/* Round to nearest even: 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3F80) and the next
 * value 1 + 2^-7 (0x3F81); the even one is 0x3F80. 1 + 3*2^-8 is halfway between 0x3F81 and
 * 0x3F82 and goes to 0x3F82. */
Test(dtype, f32_to_bf16_rounds_to_nearest_even) {
    cr_assert_eq(molmo_f32_to_bf16(1.0f), 0x3F80);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 0x1p-7f + 0x1p-9f), 0x3F81);
    cr_assert_eq(molmo_f32_to_bf16(-2.0f), 0xC000);
    uint16_t n = molmo_f32_to_bf16(NAN);
    cr_assert_eq(n & 0x7F80, 0x7F80);
    cr_assert_neq(n & 0x7F, 0);
}

/* ---- config.json (molmo.md §1.1, §1.2) ---------------------------------------------------- */

/* Writes the golden case's config.json, edited by fn, into a new temporary directory. */
static char *config_dir(const char *cas, void (*fn)(json_t *)) {
    const char *g = jb_test_golden_or_skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/config.json", g, cas);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    cr_assert(c, "%s: %s", path, je.text);
    if (fn) fn(c);
    char *dir = jb_test_tmpdir();
    snprintf(path, sizeof path, "%s/config.json", dir);
    cr_assert_eq(json_dump_file(c, path, 0), 0);
    json_decref(c);
    return dir;
}

static void drop_vision(json_t *c) {
    json_object_del(c, "vision_backbone");
    json_object_del(c, "vit_layers");
}

static void dense_olmo_style(json_t *c) { json_object_set_new(c, "block_type", json_string("sequential")); }

/* molmo-tiny-qwen2: HF-style keys, hidden 64, 4/2 heads, I 256, vocab = embedding = 264,
 * eps 1e-6, theta 1e6, QKV bias; ViT 64 wide, 10 layers, so vit_layers [-2, -9] are blocks 8
 * and 1 (golden README). */
Test(config, hf_style_keys_and_vision_backbone_are_read) {
    char *dir = config_dir("molmo-tiny-qwen2", NULL);
    struct molmo_config c;
    struct jb_err err = {0};
    cr_assert_eq(molmo_config_load(&c, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(c.d_model, 64);
    cr_assert_eq(c.n_layers, 2);
    cr_assert_eq(c.n_heads, 4);
    cr_assert_eq(c.n_kv_heads, 2);
    cr_assert_eq(c.head_dim, 16);
    cr_assert_eq(c.ffn_rows, 256);
    cr_assert_eq(c.embedding_size, 264);
    cr_assert_eq(c.n_new_embed, 128);
    cr_assert_eq(c.norm_eps, 1e-6f);
    cr_assert_eq(c.rope_theta, 1e6f);
    cr_assert(c.qkv_bias && !c.qk_norm && !c.norm_after);
    cr_assert_eq(c.vit_dim, 64);
    cr_assert_eq(c.vit_heads, 4);
    cr_assert_eq(c.vit_layers, 10);
    cr_assert_eq(c.vit_mlp, 128);
    cr_assert_eq(c.vit_layer_a, 8);
    cr_assert_eq(c.vit_layer_b, 1);
    cr_assert_eq(c.eos_id, -1); /* no generation_config.json in the temporary directory */
    jb_test_rmtree(dir);
    free(dir);
}

/* Without vision_backbone / vit_layers the released ViT-L/14-336 cut to 23 layers: D 1024, 16
 * heads of 64, MLP 4096, features from blocks 21 and 14 (§1.2, §5.5). */
Test(config, absent_vision_keys_give_the_released_defaults) {
    char *dir = config_dir("molmo-tiny-olmo", drop_vision);
    struct molmo_config c;
    struct jb_err err = {0};
    cr_assert_eq(molmo_config_load(&c, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(c.vit_dim, 1024);
    cr_assert_eq(c.vit_heads, 16);
    cr_assert_eq(c.vit_head_dim, 64);
    cr_assert_eq(c.vit_layers, 23);
    cr_assert_eq(c.vit_mlp, 4096);
    cr_assert_eq(c.vit_num_pos, 577);
    cr_assert_eq(c.vit_layer_a, 21);
    cr_assert_eq(c.vit_layer_b, 14);
    cr_assert(c.norm_after && c.qk_norm && !c.qkv_bias);
    cr_assert_eq(c.n_kv_heads, 4); /* num_key_value_heads: null = heads */
    jb_test_rmtree(dir);
    free(dir);
}

/* molmo-tiny-olmoe spells everything OLMo-style: d_model 64, n_layers 2, n_heads 4, n_kv_heads
 * null, mlp_hidden_size null + mlp_ratio 1 -> 64 rows, additional_vocab_size 128, 9 ViT layers
 * so vit_layers [-2, -9] are blocks 7 and 0 (golden README). Its MoE block is not supported. */
Test(config, olmo_style_keys_are_read_and_moe_is_rejected_by_name) {
    char *dir = config_dir("molmo-tiny-olmoe", NULL);
    struct molmo_config c;
    struct jb_err err = {0};
    cr_assert_eq(molmo_config_load(&c, dir, &err), JB_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "block_type"), "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
    dir = config_dir("molmo-tiny-olmoe", dense_olmo_style);
    cr_assert_eq(molmo_config_load(&c, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(c.d_model, 64);
    cr_assert_eq(c.n_layers, 2);
    cr_assert_eq(c.n_heads, 4);
    cr_assert_eq(c.n_kv_heads, 4);
    cr_assert_eq(c.ffn_rows, 64);
    cr_assert_eq(c.vocab_size, 258);
    cr_assert_eq(c.embedding_size, 264);
    cr_assert_eq(c.n_new_embed, 128);
    cr_assert_eq(c.norm_eps, 1e-5f);
    cr_assert_eq(c.rope_theta, 10000.0f);
    cr_assert(c.qk_norm);
    cr_assert_eq(c.vit_layers, 9);
    cr_assert_eq(c.vit_layer_a, 7);
    cr_assert_eq(c.vit_layer_b, 0);
    jb_test_rmtree(dir);
    free(dir);
}

/* Greedy choice (§8): the largest logit, the lowest id among equal ones. */
Test(generate, argmax_takes_the_lowest_id_on_ties) {
    const float l[] = {-1.0f, 3.0f, 2.0f, 3.0f, -INFINITY};
    cr_assert_eq(molmo_argmax(l, 5), 1);
    const float one[] = {0.5f};
    cr_assert_eq(molmo_argmax(one, 1), 0);
}
