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

static void block_type_parallel(json_t *c) {
    json_object_set_new(c, "block_type", json_string("parallel"));
}

static void top_k_above_experts(json_t *c) { json_object_set_new(c, "moe_top_k", json_integer(9)); }

static void no_top_k(json_t *c) { json_object_del(c, "moe_top_k"); }

/* molmo-tiny-olmoe spells everything OLMo-style: d_model 64, n_layers 2, n_heads 4, n_kv_heads
 * null, mlp_hidden_size null + mlp_ratio 1 -> 64 rows (experts 32 wide), additional_vocab_size
 * 128, block_type "moe" with 8 experts, top 2, 9 ViT layers so vit_layers [-2, -9] are blocks
 * 7 and 0 (golden README). A block type no model uses and a top-k the experts cannot fill are
 * rejected by name. */
Test(config, olmo_style_keys_and_the_moe_block_are_read) {
    struct molmo_config c;
    struct jb_err err = {0};
    void (*bad[])(json_t *) = {block_type_parallel, top_k_above_experts, no_top_k};
    const char *field[] = {"block_type", "moe_top_k", "moe_top_k"};
    for (int i = 0; i < 3; i++) {
        char *bd = config_dir("molmo-tiny-olmoe", bad[i]);
        cr_assert_neq(molmo_config_load(&c, bd, &err), 0);
        cr_assert(strstr(err.msg, field[i]), "%s", err.msg);
        jb_test_rmtree(bd);
        free(bd);
    }
    char *dir = config_dir("molmo-tiny-olmoe", dense_olmo_style);
    cr_assert_eq(molmo_config_load(&c, dir, &err), 0, "%s", err.msg);
    cr_assert(!c.moe);
    jb_test_rmtree(dir);
    free(dir);
    dir = config_dir("molmo-tiny-olmoe", NULL);
    cr_assert_eq(molmo_config_load(&c, dir, &err), 0, "%s", err.msg);
    cr_assert(c.moe);
    cr_assert_eq(c.n_experts, 8);
    cr_assert_eq(c.top_k, 2);
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

/* ---- products with stored-dtype weights (engine/kernels.c) -------------------------------- */

/* W[o][i] = ((o + i) % 5 - 2) / 2 and x[t][i] = (t + 1) * (i % 3 - 1) are exact in F32, BF16
 * and F16, so y = x·Wᵀ + b must be the same for the three dtypes and equal the sum computed
 * here in double (all partial sums are small integers / 2, exact in float32 too). 40 rows of
 * 4096 inputs need several 64 Ki-float tiles in the converting path; the F32 copy at an odd
 * address takes that path too. */
Test(kernels, linear_gives_the_same_exact_product_for_every_stored_dtype) {
    enum { OUT = 40, IN = 4096, T = 3 };
    float *wf = malloc(sizeof(float) * OUT * IN);
    unsigned char *wb = malloc(2 * OUT * IN), *wh = malloc(2 * OUT * IN);
    unsigned char *wmis = malloc(4 * OUT * IN + 1);
    float *x = malloc(sizeof(float) * T * IN), *y = malloc(sizeof(float) * T * OUT);
    float b[OUT];
    for (int o = 0; o < OUT; o++) {
        b[o] = (float)o;
        for (int i = 0; i < IN; i++) {
            float v = (float)((o + i) % 5 - 2) / 2.0f;
            wf[o * IN + i] = v;
            uint16_t bf = molmo_f32_to_bf16(v);
            /* binary16 of -1, -0.5, 0, 0.5, 1 (sign, exponent 15 - k, no mantissa) */
            uint16_t h = v == 0.0f ? 0 : (uint16_t)((v < 0 ? 0x8000 : 0) | (fabsf(v) == 1.0f ? 0x3C00 : 0x3800));
            wb[2 * (o * IN + i)] = (unsigned char)(bf & 0xff);
            wb[2 * (o * IN + i) + 1] = (unsigned char)(bf >> 8);
            wh[2 * (o * IN + i)] = (unsigned char)(h & 0xff);
            wh[2 * (o * IN + i) + 1] = (unsigned char)(h >> 8);
        }
    }
    memcpy(wmis + 1, wf, sizeof(float) * OUT * IN);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < IN; i++) x[t * IN + i] = (float)((t + 1) * (i % 3 - 1));
    struct molmo_arena a = {.cap = 1 << 20};
    a.base = malloc(a.cap);
    const struct {
        const void *data;
        enum molmo_dtype dt;
    } w[] = {{wf, MOLMO_DTYPE_F32}, {wb, MOLMO_DTYPE_BF16}, {wh, MOLMO_DTYPE_F16},
             {wmis + 1, MOLMO_DTYPE_F32}};
    for (size_t k = 0; k < 4; k++) {
        struct molmo_tensor tw = {.name = "w", .data = w[k].data, .dt = w[k].dt, .ndim = 2,
                                  .shape = {OUT, IN}, .numel = OUT * IN};
        molmo_linear(&a, y, x, T, &tw, b);
        cr_assert_eq(a.used, 0, "scratch released");
        for (int t = 0; t < T; t++) {
            for (int o = 0; o < OUT; o++) {
                double s = o;
                for (int i = 0; i < IN; i++)
                    s += (double)((t + 1) * (i % 3 - 1)) * ((o + i) % 5 - 2) / 2.0;
                cr_assert_eq(y[t * OUT + o], (float)s, "%s (case %zu) y[%d][%d] = %g, want %g",
                             molmo_dtype_name(w[k].dt), k, t, o, y[t * OUT + o], s);
            }
        }
    }
    free(a.base);
    free(wf);
    free(wb);
    free(wh);
    free(wmis);
    free(x);
    free(y);
}

/* The BF16 golden checkpoint stays BF16 in memory: its matrices are bound in place. */
/* The weights of the golden molmo-tiny-olmo (BF16), or the test is skipped without golden. */
static struct molmo_model *load_tiny_olmo(void) {
    const char *g = jb_test_golden_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/molmo-tiny-olmo", g);
    struct molmo_model *m = NULL;
    struct jb_err err = {0};
    struct molmo_load_opts o = {.max_seq = 64};
    cr_assert_eq(molmo_model_load_weights(&m, dir, &o, &err), 0, "%s", err.msg);
    return m;
}

Test(kernels, a_bf16_checkpoint_is_not_expanded_to_f32) {
    struct molmo_model *m = load_tiny_olmo();
    cr_assert_eq(m->w.lm_head.dt, MOLMO_DTYPE_BF16);
    cr_assert_eq(m->w.wte.dt, MOLMO_DTYPE_BF16);
    cr_assert_eq(m->w.blocks[0].ff_proj.dt, MOLMO_DTYPE_BF16);
    cr_assert_eq(m->w.vit[0].w1.dt, MOLMO_DTYPE_BF16);
    cr_assert_eq(m->w.blocks[1].ff_proj.data,
                 molmo_ckpt_find(m->st, "model.transformer.blocks.1.ff_proj.weight")->data);
    molmo_model_free_weights(m);
}

/* ---- work counted from the shapes (engine/costs.c) ---- */

/* molmo-tiny-olmo by hand from its config.json and tensor shapes: LLM d 64, 2 layers, 4 heads
 * of 16 (no GQA), fused FFN 256 rows (inner 128), output head [272, 64]; ViT D 64, MLP 128,
 * vit_layers [-2, -9] of 10 -> blocks 0..8 run (9), 24 x 24 patches of 588 + CLS; connector
 * [64, 128] q/k/v, [64, 64] out, projector 128 wide; BF16: 2 bytes per weight. A generation of
 * 2 crops, a 300-token prompt and 5 generated tokens (4 decode steps). */
Test(costs, work_of_a_generation_matches_the_hand_count) {
    struct molmo_model *m = load_tiny_olmo();

    const double d = 64, L = 2, qkv = 3 * 64, ffn = 256, inner = 128, E = 272;
    const double llm_macs = L * (qkv * d + d * d + ffn * d + d * inner); /* 81920 */
    const double head = E * d, attn = 2.0 * 4 * 16 * L;
    const double D = 64, F = 128, P = 577, np = 576, blocks = 9;
    const double vit = 2 * np * 588 * D + blocks * (2 * P * (4 * D * D + 2 * D * F) + 4 * P * P * D);
    const double win = D * 2 * D + 4 * (2 * D * 2 * D) + 8 * D + D * D + 3 * inner * D;
    const double conn = 2 * win * 144;
    struct molmo_costs k;
    molmo_model_costs(m, &k);
    cr_assert_float_eq(k.llm_macs_per_token, llm_macs, 0.5);
    cr_assert_float_eq(k.head_macs, head, 0.5);
    cr_assert_float_eq(k.attn_macs_per_position, attn, 1e-9);
    cr_assert_float_eq(k.vit_flop_per_crop, vit, 1.0);
    cr_assert_float_eq(k.connector_flop_per_crop, conn, 1.0);
    const double vbytes =
        2 * (D * 588 + blocks * (4 * D * D + 2 * D * F) + 3 * D * 2 * D + D * D + 3 * inner * D);
    cr_assert_float_eq(k.vision_weight_bytes_per_crop, vbytes, 0.5);
    cr_assert_float_eq(k.llm_weight_bytes_per_token, 2 * llm_macs, 0.5);
    cr_assert_float_eq(k.head_bytes, 2 * head, 0.5);

    struct molmo_result r = {.n_crops = 2, .n_prompt_tokens = 300, .n_ids = 5};
    struct molmo_work w;
    molmo_work_count(m, &r, &w);
    const double T = 300, S = 4;
    cr_assert_float_eq(w.vision_flop, 2 * (vit + conn), 2.0);
    cr_assert_float_eq(w.prefill_flop, 2 * (T * llm_macs + head + attn * T * (T + 1) / 2), 2.0);
    /* decode step s (0..3) feeds position T + s, attending to T + s + 1 positions */
    double dec = 0;
    for (int s = 0; s < S; s++) dec += 2 * (llm_macs + head + attn * (T + s + 1));
    cr_assert_float_eq(w.decode_flop, dec, 2.0);
    cr_assert_float_eq(w.vision_weight_bytes, 2 * vbytes, 1.0);
    cr_assert_float_eq(w.prefill_weight_bytes, 2 * llm_macs + 2 * head, 1.0);
    cr_assert_float_eq(w.decode_weight_bytes, S * (2 * llm_macs + 2 * head), 1.0);
    /* one generated token: no decode step at all */
    r.n_ids = 1;
    molmo_work_count(m, &r, &w);
    cr_assert_float_eq(w.decode_flop, 0, 1e-9);
    cr_assert_float_eq(w.decode_weight_bytes, 0, 1e-9);
    molmo_model_free_weights(m);
}
