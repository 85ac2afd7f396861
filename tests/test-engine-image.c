/* Image decoding and molmo.md §4 preprocessing: the 12 golden geometry cases, the golden crops of
 * two checkpoints, hand-derived resize values, PNG/JPEG colour types written here with libpng
 * and libjpeg, and truncated or corrupt files. */
#include "config.h"

#include "engine/image-impl.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-mmap.h"
#include "common/jb-npy.h"

#include "tests/jb-test.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h> /* before jpeglib.h */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static void load_npy(struct jb_npy *a, const char *dir, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_load(a, path, &err), 0, "%s", err.msg);
}

/* Token ids of the tiny checkpoints, read from a manifest's or cases.json's special_token_ids. */
static struct molmo_image_token_ids ids_from_json(const json_t *root) {
    const json_t *s = json_object_get(root, "special_token_ids");
    cr_assert(json_is_object(s));
    struct molmo_image_token_ids ids = {
        .im_start = (int32_t)json_integer_value(json_object_get(s, "<im_start>")),
        .im_end = (int32_t)json_integer_value(json_object_get(s, "<im_end>")),
        .im_patch = (int32_t)json_integer_value(json_object_get(s, "<im_patch>")),
        .im_col = (int32_t)json_integer_value(json_object_get(s, "<im_col>")),
    };
    cr_assert(ids.im_start > 0 && ids.im_end > 0 && ids.im_patch > 0 && ids.im_col > 0);
    return ids;
}

/* Compares our layout with a golden directory's image_input_idx / image_masks (exact) and the
 * image-token span of input_ids (positions 1..n_tokens; position 0 is BOS). */
static void check_layout(const struct molmo_preprocessed *pp, const char *dir, int32_t bos) {
    struct jb_npy idx = {0}, masks = {0}, ids = {0};
    load_npy(&idx, dir, "image_input_idx.npy");
    load_npy(&masks, dir, "image_masks.npy");
    load_npy(&ids, dir, "input_ids.npy");
    size_t N = (size_t)pp->n_crops;
    cr_assert_eq(idx.dtype, JB_NPY_I32);
    cr_assert_eq(idx.ndim, 2);
    cr_assert_eq(idx.shape[0], N, "%s: %zu crops in golden, %zu here", dir, idx.shape[0], N);
    cr_assert_eq(idx.shape[1], (size_t)pp->n_pooled);
    const int32_t *gi = idx.data;
    for (size_t k = 0; k < idx.numel; k++)
        cr_assert_eq(pp->image_input_idx[k], gi[k], "%s: image_input_idx[%zu][%zu] = %d, want %d",
                     dir, k / pp->n_pooled, k % pp->n_pooled, pp->image_input_idx[k], gi[k]);
    cr_assert_eq(masks.dtype, JB_NPY_F32);
    cr_assert_eq(masks.shape[0], N);
    cr_assert_eq(masks.shape[1], (size_t)pp->n_patches);
    const float *gm = masks.data;
    for (size_t k = 0; k < masks.numel; k++)
        cr_assert(memcmp(&pp->image_masks[k], &gm[k], sizeof(float)) == 0,
                  "%s: image_masks[%zu][%zu] = %.9g, want %.9g", dir, k / pp->n_patches,
                  k % pp->n_patches, pp->image_masks[k], gm[k]);
    cr_assert_eq(ids.dtype, JB_NPY_I32);
    const int32_t *gt = ids.data;
    cr_assert_gt(ids.numel, pp->n_tokens);
    cr_assert_eq(gt[0], bos);
    for (size_t k = 0; k < pp->n_tokens; k++)
        cr_assert_eq(pp->tokens[k], gt[k + 1], "%s: image token %zu = %d, want %d", dir, k,
                     pp->tokens[k], gt[k + 1]);
    jb_npy_free(&idx);
    jb_npy_free(&masks);
    jb_npy_free(&ids);
}

/* ---- §4.1 - §4.8 geometry: the 12 golden cases ---------------------------------------------- */

/* cases.json lists the grid, crop count and image-token count; the directories hold the
 * reference's input_ids / image_input_idx / image_masks for a uniform grey image of that size.
 * Images up to 2 megapixels go through the full molmo_preprocess on a grey image built here (so
 * the entry point is covered); the 12-megapixel 4000 x 3000 case only through the layout, whose
 * output depends on the size alone (keeps the test quick under ASan). */
Test(preprocess, all_twelve_golden_geometry_cases_match_exactly) {
    const char *g = jb_test_golden_or_skip();
    char dir[4096], path[4096];
    snprintf(path, sizeof path, "%s/preprocessing/cases.json", g);
    json_t *root = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_json_load_file(path, &root, &err), 0, "%s", err.msg);
    struct molmo_image_token_ids ids = ids_from_json(root);
    int32_t bos = (int32_t)json_integer_value(
        json_object_get(json_object_get(root, "special_token_ids"), "<|endoftext|>"));
    cr_assert_eq(bos, 256);
    struct molmo_preproc_config cfg;
    molmo_preproc_config_default(&cfg);
    const json_t *cases = json_object_get(root, "cases");
    cr_assert_eq(json_array_size(cases), 12);
    size_t i;
    const json_t *cs;
    json_array_foreach(cases, i, cs) {
        int w = (int)json_integer_value(json_object_get(cs, "width"));
        int h = (int)json_integer_value(json_object_get(cs, "height"));
        snprintf(dir, sizeof dir, "%s/preprocessing/%s", g,
                 json_string_value(json_object_get(cs, "dir")));
        int r, c;
        molmo_crop_grid(&cfg, w, h, &r, &c);
        cr_assert_eq(r, json_integer_value(json_object_get(cs, "grid_rows")), "%dx%d rows", w, h);
        cr_assert_eq(c, json_integer_value(json_object_get(cs, "grid_cols")), "%dx%d cols", w, h);
        struct molmo_preprocessed pp = {0};
        if ((long long)w * h <= 2000000) {
            struct molmo_image img = {.width = w, .height = h, .rgb = malloc((size_t)w * h * 3)};
            cr_assert_not_null(img.rgb);
            memset(img.rgb, 128, (size_t)w * h * 3);
            cr_assert_eq(molmo_preprocess(&pp, &img, &cfg, &ids, &err), 0, "%s", err.msg);
            cr_assert_not_null(pp.images);
            molmo_image_free(&img);
        } else {
            cr_assert_eq(molmo_preprocess_layout(&pp, w, h, &cfg, &ids, &err), 0, "%s", err.msg);
        }
        cr_assert_eq(pp.grid_rows, r);
        cr_assert_eq(pp.grid_cols, c);
        cr_assert_eq(pp.n_crops, json_integer_value(json_object_get(cs, "n_crops")));
        cr_assert_eq((long long)pp.n_tokens,
                     json_integer_value(json_object_get(cs, "image_tokens")), "%dx%d", w, h);
        /* molmo.md §4.7: 160 + (8r+4)(8c+5) */
        cr_assert_eq(pp.n_tokens, (size_t)(160 + (8 * r + 4) * (8 * c + 5)));
        check_layout(&pp, dir, bos);
        molmo_preprocessed_free(&pp);
    }
    json_decref(root);
}

/* molmo.md §4.1's own examples. */
Test(preprocess, crop_grid_follows_the_spec_examples) {
    struct molmo_preproc_config cfg;
    molmo_preproc_config_default(&cfg);
    int r, c;
    molmo_crop_grid(&cfg, 500, 380, &r, &c);
    cr_assert(r == 2 && c == 2);
    molmo_crop_grid(&cfg, 260, 420, &r, &c);
    cr_assert(r == 2 && c == 1);
}

/* Small images, by hand with the reference's float32 NumPy arithmetic (molmo.md §4.1):
 * - 50 x 80: h-112 and w-112 are negative, every s is negative, the largest is (1,1)'s.
 * - 500 x 112 (w x h): h-112 = 0, so the row term is +inf and s = 224c / 388: c = 1 gives 0.577,
 *   c = 2 gives 1.155, the smallest s >= 1; the first candidate with c = 2 is (1, 2).
 * - 1 x 1 upscales into a 1x1 grid; 1 x 400 would be resized to 0 x 336 and is rejected. */
Test(preprocess, images_of_112_px_or_less_follow_numpy_and_are_upscaled) {
    struct molmo_preproc_config cfg;
    molmo_preproc_config_default(&cfg);
    int r, c;
    molmo_crop_grid(&cfg, 50, 80, &r, &c);
    cr_assert(r == 1 && c == 1);
    molmo_crop_grid(&cfg, 500, 112, &r, &c);
    cr_assert(r == 1 && c == 2, "got %dx%d", r, c);
    molmo_crop_grid(&cfg, 112, 112, &r, &c);
    cr_assert(r == 1 && c == 1);

    struct molmo_image_token_ids ids = {1, 2, 3, 4};
    uint8_t px[3] = {255, 0, 128};
    struct molmo_image one = {.width = 1, .height = 1, .rgb = px};
    struct molmo_preprocessed pp = {0};
    struct jb_err err = {0};
    cr_assert_eq(molmo_preprocess(&pp, &one, &cfg, &ids, &err), 0, "%s", err.msg);
    cr_assert_eq(pp.n_crops, 2);
    /* The single pixel fills the whole 336 x 336 view: red channel (1 - mean) / std. */
    cr_assert_eq(pp.images[0], (1.0f - cfg.mean[0]) / cfg.std[0]);
    cr_assert_eq(pp.images[(size_t)575 * 588 + 587], (128.0f / 255.0f - cfg.mean[2]) / cfg.std[2]);
    molmo_preprocessed_free(&pp);

    uint8_t line[400 * 3] = {0};
    struct molmo_image thin = {.width = 1, .height = 400, .rgb = line};
    cr_assert_eq(molmo_preprocess(&pp, &thin, &cfg, &ids, &err), JB_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "1 x 400"), "%s", err.msg);
    cr_assert_null(pp.images);
    cr_assert_null(pp.tokens);
}

/* ---- §4.3 resize by hand -------------------------------------------------------------------- */

/* 4 x 2 -> 2 x 1 (th 1, tw 2: scale min(1/2, 2/4) = 0.5). Width 4 -> 2: scale 2, support 2,
 * inv 0.5; output 0 has centre 1, taps 0..2 with t = 0.25, 0.25, 0.75 -> weights .75 .75 .25 /
 * 1.75 = 3/7 3/7 1/7; output 1 has centre 3, taps 1..3 -> 1/7 3/7 3/7. Height 2 -> 1: taps 0, 1
 * with weights .75 .75 -> 1/2 1/2. Rows [255 255 0 0] and [0 0 255 255] (red channel), mean 0,
 * std 1: out = (6/7 + 1/7) / 2 = 1/2 and (1/7 + 6/7) / 2 = 1/2; green = row 0 only:
 * 6/7 / 2 and 1/7 / 2. */
Test(preprocess, downscale_weights_match_a_hand_derivation) {
    struct molmo_preproc_config cfg;
    molmo_preproc_config_default(&cfg);
    for (int i = 0; i < 3; i++) cfg.mean[i] = 0.0f, cfg.std[i] = 1.0f;
    uint8_t rgb[2][4][3] = {
        {{255, 255, 0}, {255, 255, 0}, {0, 0, 0}, {0, 0, 0}},
        {{0, 0, 0}, {0, 0, 0}, {255, 0, 0}, {255, 0, 0}},
    };
    struct molmo_image img = {.width = 4, .height = 2, .rgb = &rgb[0][0][0]};
    float out[2 * 3];
    int top, left, sh, sw;
    struct jb_err err = {0};
    cr_assert_eq(molmo_resize_pad(out, &img, 1, 2, &cfg, &top, &left, &sh, &sw, &err), 0, "%s",
                 err.msg);
    cr_assert(top == 0 && left == 0 && sh == 1 && sw == 2);
    const float want[6] = {0.5f, 3.0f / 7, 0, 0.5f, 0.5f / 7, 0};
    for (int k = 0; k < 6; k++)
        cr_assert_float_eq(out[k], want[k], 1e-6, "out[%d] = %.9g, want %.9g", k, out[k], want[k]);
}

/* 2 x 1 -> 4 x 2 (th 2, tw 4: scale 2 both ways). Width 2 -> 4: scale 0.5, support 1, inv 1;
 * centres .25 .75 1.25 1.75 give [a, .75a + .25b, .25a + .75b, b] (the edge outputs have a
 * single tap, renormalized to 1). Height 1 -> 2 replicates. a = 0, b = 255 -> 0 .25 .75 1. */
Test(preprocess, upscale_is_half_pixel_bilinear_with_clamped_edges) {
    struct molmo_preproc_config cfg;
    molmo_preproc_config_default(&cfg);
    for (int i = 0; i < 3; i++) cfg.mean[i] = 0.0f, cfg.std[i] = 1.0f;
    uint8_t rgb[2][3] = {{0, 0, 0}, {255, 255, 255}};
    struct molmo_image img = {.width = 2, .height = 1, .rgb = &rgb[0][0]};
    float out[2 * 4 * 3];
    struct jb_err err = {0};
    cr_assert_eq(molmo_resize_pad(out, &img, 2, 4, &cfg, NULL, NULL, NULL, NULL, &err), 0);
    const float want[4] = {0.0f, 0.25f, 0.75f, 1.0f};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++)
            cr_assert_eq(out[(y * 4 + x) * 3 + 1], want[x], "(%d,%d) = %.9g", y, x,
                         out[(y * 4 + x) * 3 + 1]);
}

/* §4.2 step 5: padding is normalized too, to -mean/std; a 4 x 2 image in a 4 x 4 target sits in
 * rows 1..2 (top = (4 - 2) // 2). */
Test(preprocess, padding_is_normalized_to_minus_mean_over_std) {
    struct molmo_preproc_config cfg;
    molmo_preproc_config_default(&cfg);
    uint8_t rgb[2 * 4 * 3];
    memset(rgb, 255, sizeof rgb);
    struct molmo_image img = {.width = 4, .height = 2, .rgb = rgb};
    float out[4 * 4 * 3];
    int top, left, sh, sw;
    struct jb_err err = {0};
    cr_assert_eq(molmo_resize_pad(out, &img, 4, 4, &cfg, &top, &left, &sh, &sw, &err), 0);
    cr_assert(top == 1 && left == 0 && sh == 2 && sw == 4);
    cr_assert_float_eq(out[0], -1.7923, 1e-4); /* molmo.md §4.2: about -1.7923 -1.7521 -1.4802 */
    cr_assert_float_eq(out[1], -1.7521, 1e-4);
    cr_assert_float_eq(out[2], -1.4802, 1e-4);
    for (int ch = 0; ch < 3; ch++) {
        cr_assert_eq(out[ch], (0.0f - cfg.mean[ch]) / cfg.std[ch]);
        cr_assert_eq(out[(3 * 4 + 3) * 3 + ch], (0.0f - cfg.mean[ch]) / cfg.std[ch]);
        cr_assert_eq(out[(1 * 4 + 2) * 3 + ch], (1.0f - cfg.mean[ch]) / cfg.std[ch]);
    }
}

/* ---- golden images -------------------------------------------------------------------------- */

static void check_golden_image(const char *name, int want_w, int want_h) {
    const char *g = jb_test_golden_or_skip();
    char dir[2048], path[4096];
    snprintf(dir, sizeof dir, "%s/%s", g, name);
    struct jb_err err = {0};
    json_t *man = NULL;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cr_assert_eq(jb_json_load_file(path, &man, &err), 0, "%s", err.msg);
    struct molmo_image_token_ids ids = ids_from_json(man);
    int32_t bos = (int32_t)json_integer_value(json_object_get(man, "bos_id_prepended"));
    struct molmo_preproc_config cfg;
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    cr_assert_eq(molmo_preproc_config_load(&cfg, path, &err), 0, "%s", err.msg);
    struct molmo_image img = {0};
    snprintf(path, sizeof path, "%s/image.png", dir);
    cr_assert_eq(molmo_image_load(&img, path, &err), 0, "%s", err.msg);
    cr_assert(img.width == want_w && img.height == want_h);
    struct molmo_preprocessed pp = {0};
    cr_assert_eq(molmo_preprocess(&pp, &img, &cfg, &ids, &err), 0, "%s", err.msg);

    struct jb_npy crops = {0};
    load_npy(&crops, dir, "images.npy");
    cr_assert_eq(crops.ndim, 3);
    cr_assert(crops.shape[0] == (size_t)pp.n_crops && crops.shape[1] == (size_t)pp.n_patches &&
              crops.shape[2] == (size_t)pp.patch_dim);
    const float *gc = crops.data;
    double max_abs = 0.0;
    size_t n_diff = 0;
    for (size_t k = 0; k < crops.numel; k++) {
        double d = fabs((double)pp.images[k] - gc[k]);
        if (d > max_abs) max_abs = d;
        if (memcmp(&pp.images[k], &gc[k], sizeof(float))) n_diff++;
    }
    cr_log_info("%s: images.npy max abs diff %.3g, %zu of %zu values not bit-identical", name,
                max_abs, n_diff, crops.numel);
    fprintf(stderr, "%s: images.npy max abs diff %.3g, %zu of %zu values not bit-identical\n",
            name, max_abs, n_diff, crops.numel);
    /* golden README threshold; bit-exact is expected with fmaf (molmo.md §4.3) */
    cr_assert_leq(max_abs, 1e-6, "%s: images.npy max abs diff %g", name, max_abs);
    /* molmo.md §4.3: with one fused multiply-add per tap the crops are bit-exact; plain
     * multiply-then-add stays under 1e-6 but not exact, so this is the sharper check */
    cr_assert_eq(n_diff, 0, "%s: %zu crop values differ from the reference's bits", name, n_diff);
    check_layout(&pp, dir, bos);
    jb_npy_free(&crops);
    molmo_preprocessed_free(&pp);
    molmo_image_free(&img);
    json_decref(man);
}

Test(preprocess, golden_qwen2_image_gives_the_reference_crops) {
    check_golden_image("molmo-tiny-qwen2", 500, 380);
}

Test(preprocess, golden_olmo_image_gives_the_reference_crops) {
    check_golden_image("molmo-tiny-olmo", 260, 420);
}

/* ---- preprocessor_config.json --------------------------------------------------------------- */

static int load_config_text(struct molmo_preproc_config *c, const char *text, struct jb_err *err,
                            char **dir_out) {
    char *dir = jb_test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    jb_test_write_file(path, text, strlen(text));
    int rc = molmo_preproc_config_load(c, path, err);
    *dir_out = dir;
    return rc;
}

Test(preproc_config, absent_keys_keep_the_released_defaults) {
    struct molmo_preproc_config c;
    struct jb_err err = {0};
    char *dir;
    cr_assert_eq(load_config_text(&c, "{\"max_crops\": 6}", &err, &dir), 0, "%s", err.msg);
    cr_assert_eq(c.max_crops, 6);
    cr_assert(c.base_h == 336 && c.base_w == 336 && c.patch == 14);
    cr_assert(c.tokens_h == 12 && c.tokens_w == 12);
    cr_assert(c.overlap_margins[0] == 4 && c.overlap_margins[1] == 4);
    cr_assert_eq(c.mean[0], 0.48145466f);
    cr_assert_eq(c.std[2], 0.27577711f);
    jb_test_rmtree(dir);
    free(dir);
}

Test(preproc_config, bad_values_name_the_field) {
    struct molmo_preproc_config c;
    struct jb_err err = {0};
    char *dir;
    cr_assert_eq(load_config_text(&c, "{\"image_patch_size\": \"14\"}", &err, &dir), JB_EFORMAT);
    cr_assert(strstr(err.msg, "image_patch_size") && strstr(err.msg, "preprocessor_config.json"),
              "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
    cr_assert_eq(load_config_text(&c, "{\"image_mean\": [0.5, 0.5]}", &err, &dir), JB_EFORMAT);
    cr_assert(strstr(err.msg, "image_mean"), "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
    cr_assert_eq(load_config_text(&c, "{\"overlap_margins\": [3, 3]}", &err, &dir),
                 JB_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "overlap_margins"), "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
    cr_assert_eq(load_config_text(&c, "{\"do_normalize\": false}", &err, &dir), JB_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "do_normalize"), "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
}

/* ---- PNG ------------------------------------------------------------------------------------ */

struct membuf {
    unsigned char *data;
    size_t len, cap;
};

static void membuf_write(png_structp png, png_bytep p, size_t n) {
    struct membuf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        cr_assert_not_null(b->data);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void membuf_flush(png_structp png) { (void)png; }

/* Writes a w x h PNG of the given type/depth from packed rows (rowbytes each); palette and tRNS
 * optional. Returns the malloc'd file in *out. */
static size_t write_png(unsigned char **out, int w, int h, int ctype, int depth, int interlace,
                        const unsigned char *rows, size_t rowbytes, const png_color *pal, int npal,
                        const png_byte *trns, int ntrns) {
    struct membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    cr_assert(png && info);
    cr_assert_eq(setjmp(png_jmpbuf(png)), 0, "libpng write failed");
    png_set_write_fn(png, &b, membuf_write, membuf_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    if (depth == 16) png_set_swap(png); /* our rows hold little-endian 16-bit samples */
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++) png_write_row(png, rows + (size_t)y * rowbytes);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = b.data;
    return b.len;
}

static void decode_ok(struct molmo_image *img, const unsigned char *data, size_t len) {
    struct jb_err err = {0};
    cr_assert_eq(molmo_image_decode(img, data, len, "mem.png", &err), 0, "%s", err.msg);
}

static void expect_rgb(const struct molmo_image *img, int x, int y, int r, int g, int b) {
    const uint8_t *p = img->rgb + ((size_t)y * img->width + x) * 3;
    cr_assert(p[0] == r && p[1] == g && p[2] == b, "pixel (%d,%d) = %d %d %d, want %d %d %d", x,
              y, p[0], p[1], p[2], r, g, b);
}

Test(decode, png_grey_and_grey_alpha_replicate_the_grey_level) {
    const unsigned char grey[2][3] = {{0, 77, 255}, {1, 128, 254}};
    unsigned char *f;
    size_t n = write_png(&f, 3, 2, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, &grey[0][0], 3,
                         NULL, 0, NULL, 0);
    struct molmo_image img;
    decode_ok(&img, f, n);
    cr_assert(img.width == 3 && img.height == 2);
    expect_rgb(&img, 1, 0, 77, 77, 77);
    expect_rgb(&img, 2, 1, 254, 254, 254);
    molmo_image_free(&img);
    free(f);
    /* grey + alpha: alpha dropped, not composited (PIL convert("RGB")) */
    const unsigned char ga[1][4] = {{200, 0, 90, 128}};
    n = write_png(&f, 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, &ga[0][0], 4, NULL,
                  0, NULL, 0);
    decode_ok(&img, f, n);
    expect_rgb(&img, 0, 0, 200, 200, 200);
    expect_rgb(&img, 1, 0, 90, 90, 90);
    molmo_image_free(&img);
    free(f);
    /* grey with a tRNS colour key: the key is ignored, the grey level kept */
    const png_color_16 key = {.gray = 77};
    struct membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    cr_assert_eq(setjmp(png_jmpbuf(png)), 0);
    png_set_write_fn(png, &b, membuf_write, membuf_flush);
    png_set_IHDR(png, info, 3, 1, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_tRNS(png, info, NULL, 0, &key);
    png_write_info(png, info);
    png_write_row(png, grey[0]);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    decode_ok(&img, b.data, b.len);
    expect_rgb(&img, 1, 0, 77, 77, 77);
    expect_rgb(&img, 2, 0, 255, 255, 255);
    molmo_image_free(&img);
    free(b.data);
}

/* 1-bit grey: 0 -> 0, 1 -> 255 (libpng scales sub-8-bit grey to the full range, as PIL's "1"
 * and "L" modes do); 16-bit: the high byte. */
Test(decode, png_low_and_high_bit_depths_become_8_bit) {
    const unsigned char bits[1] = {0xa0}; /* 1 0 1 0 */
    unsigned char *f;
    size_t n = write_png(&f, 4, 1, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, bits, 1, NULL, 0,
                         NULL, 0);
    struct molmo_image img;
    decode_ok(&img, f, n);
    expect_rgb(&img, 0, 0, 255, 255, 255);
    expect_rgb(&img, 1, 0, 0, 0, 0);
    expect_rgb(&img, 2, 0, 255, 255, 255);
    molmo_image_free(&img);
    free(f);
    /* RGB16 samples 0xABCD 0x12FF 0x0080 -> 0xAB 0x12 0x00 (little-endian in the buffer) */
    const uint16_t rgb16[3] = {0xABCD, 0x12FF, 0x0080};
    n = write_png(&f, 1, 1, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE,
                  (const unsigned char *)rgb16, 6, NULL, 0, NULL, 0);
    decode_ok(&img, f, n);
    expect_rgb(&img, 0, 0, 0xAB, 0x12, 0x00);
    molmo_image_free(&img);
    free(f);
    const uint16_t g16[2] = {0xFF00, 0x0101};
    n = write_png(&f, 2, 1, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE,
                  (const unsigned char *)g16, 4, NULL, 0, NULL, 0);
    decode_ok(&img, f, n);
    expect_rgb(&img, 0, 0, 0xFF, 0xFF, 0xFF);
    expect_rgb(&img, 1, 0, 0x01, 0x01, 0x01);
    molmo_image_free(&img);
    free(f);
}

Test(decode, png_rgba_drops_alpha_and_palette_is_looked_up) {
    const unsigned char rgba[4][4] = {
        {10, 20, 30, 0}, {40, 50, 60, 255}, {70, 80, 90, 17}, {255, 254, 253, 128}};
    unsigned char *f;
    size_t n = write_png(&f, 2, 2, PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_NONE, &rgba[0][0], 8,
                         NULL, 0, NULL, 0);
    struct molmo_image img;
    decode_ok(&img, f, n);
    expect_rgb(&img, 0, 0, 10, 20, 30); /* fully transparent: colour kept */
    expect_rgb(&img, 1, 0, 40, 50, 60);
    expect_rgb(&img, 0, 1, 70, 80, 90);
    expect_rgb(&img, 1, 1, 255, 254, 253);
    molmo_image_free(&img);
    free(f);
    /* 4-bit palette with a tRNS entry: the palette colours, transparency ignored */
    const png_color pal[3] = {{1, 2, 3}, {200, 100, 50}, {9, 8, 7}};
    const png_byte trns[1] = {0};
    const unsigned char idx[1] = {0x12}; /* pixels 1, 2 */
    n = write_png(&f, 2, 1, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, idx, 1, pal, 3, trns,
                  1);
    decode_ok(&img, f, n);
    expect_rgb(&img, 0, 0, 200, 100, 50);
    expect_rgb(&img, 1, 0, 9, 8, 7);
    molmo_image_free(&img);
    free(f);
}

/* A 37 x 23 RGB image with distinct pixels, written interlaced (Adam7) and plain. */
static unsigned char *pattern_rgb(int w, int h) {
    unsigned char *p = malloc((size_t)w * h * 3);
    cr_assert_not_null(p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *q = p + ((size_t)y * w + x) * 3;
            q[0] = (unsigned char)(x * 7 + y);
            q[1] = (unsigned char)(y * 11 + x * 3);
            q[2] = (unsigned char)((x * y) ^ 0x5a);
        }
    return p;
}

Test(decode, png_interlaced_rgb_decodes_to_the_written_pixels) {
    int w = 37, h = 23;
    unsigned char *px = pattern_rgb(w, h);
    for (int il = 0; il < 2; il++) {
        unsigned char *f;
        size_t n = write_png(&f, w, h, PNG_COLOR_TYPE_RGB, 8,
                             il ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, px, (size_t)w * 3,
                             NULL, 0, NULL, 0);
        struct molmo_image img;
        decode_ok(&img, f, n);
        cr_assert(img.width == w && img.height == h);
        cr_assert(memcmp(img.rgb, px, (size_t)w * h * 3) == 0, "interlace %d", il);
        molmo_image_free(&img);
        free(f);
    }
    free(px);
}

/* Noise compresses badly, so half of the file is well inside the image data. */
static size_t noisy_png(unsigned char **f, int w, int h) {
    unsigned char *px = malloc((size_t)w * h * 3);
    cr_assert_not_null(px);
    uint32_t s = 12345;
    for (size_t k = 0; k < (size_t)w * h * 3; k++) {
        s = s * 1103515245u + 12345u;
        px[k] = (unsigned char)(s >> 24);
    }
    size_t n = write_png(f, w, h, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, px, (size_t)w * 3,
                         NULL, 0, NULL, 0);
    free(px);
    return n;
}

Test(decode, png_cut_in_half_is_a_clean_error_naming_the_file) {
    unsigned char *f;
    size_t n = noisy_png(&f, 64, 64);
    struct molmo_image img = {0};
    struct jb_err err = {0};
    cr_assert_eq(molmo_image_decode(&img, f, n / 2, "cut.png", &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, "cut.png") && strstr(err.msg, "truncated"), "%s", err.msg);
    cr_assert_null(img.rgb);
    /* every prefix shorter than the file fails cleanly (header, IHDR, IDAT cut anywhere) */
    for (size_t cut = 0; cut < n; cut += 97) {
        cr_assert_lt(molmo_image_decode(&img, f, cut, "cut.png", &err), 0, "cut at %zu", cut);
        cr_assert_null(img.rgb);
    }
    /* the same from a file: the message names the path */
    char *dir = jb_test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/half.png", dir);
    jb_test_write_file(path, f, n / 2);
    cr_assert_eq(molmo_image_load(&img, path, &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
    free(f);
}

/* The acceptance case: the golden image.png cut in half, loaded from a file. */
Test(decode, golden_png_cut_in_half_is_a_clean_error) {
    const char *g = jb_test_golden_or_skip();
    char path[4096];
    snprintf(path, sizeof path, "%s/molmo-tiny-qwen2/image.png", g);
    char *data = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    cr_assert_eq(jb_file_read_all(path, &data, &n, &err), 0, "%s", err.msg);
    char *dir = jb_test_tmpdir();
    snprintf(path, sizeof path, "%s/image-half.png", dir);
    jb_test_write_file(path, data, n / 2);
    struct molmo_image img = {0};
    cr_assert_eq(molmo_image_load(&img, path, &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "truncated"), "%s", err.msg);
    cr_assert_null(img.rgb);
    jb_test_rmtree(dir);
    free(dir);
    free(data);
}

Test(decode, png_with_corrupt_data_or_absurd_size_is_rejected) {
    unsigned char *f;
    size_t n = noisy_png(&f, 32, 32);
    struct molmo_image img = {0};
    struct jb_err err = {0};
    /* flip bytes in the middle of IDAT: a CRC or zlib error */
    unsigned char *bad = malloc(n);
    memcpy(bad, f, n);
    for (size_t k = n / 2; k < n / 2 + 16; k++) bad[k] ^= 0xff;
    cr_assert_eq(molmo_image_decode(&img, bad, n, "bad.png", &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, "bad.png"), "%s", err.msg);
    /* IHDR claiming 60000 x 60000 (CRC fixed up): rejected before the pixels are allocated */
    memcpy(bad, f, n);
    const unsigned char dim[8] = {0, 0, 0xea, 0x60, 0, 0, 0xea, 0x60};
    memcpy(bad + 16, dim, 8);
    uint32_t crc = (uint32_t)crc32(0, bad + 12, 17);
    const unsigned char crcb[4] = {crc >> 24, crc >> 16, crc >> 8, crc};
    memcpy(bad + 29, crcb, 4);
    cr_assert_eq(molmo_image_decode(&img, bad, n, "huge.png", &err), JB_EUNSUPPORTED, "%s",
                 err.msg);
    cr_assert(strstr(err.msg, "60000 x 60000") && strstr(err.msg, "too large"), "%s", err.msg);
    cr_assert_null(img.rgb);
    free(bad);
    free(f);
}

Test(decode, non_images_and_missing_files_are_clean_errors) {
    struct molmo_image img = {0};
    struct jb_err err = {0};
    cr_assert_eq(molmo_image_decode(&img, "hello world", 11, "x.txt", &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, "x.txt") && strstr(err.msg, "not a PNG or JPEG"), "%s", err.msg);
    cr_assert_eq(molmo_image_decode(&img, "GIF89a....", 10, "a.gif", &err), JB_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "GIF"), "%s", err.msg);
    cr_assert_eq(molmo_image_decode(&img, "", 0, "empty.png", &err), JB_EFORMAT);
    cr_assert_eq(molmo_image_load(&img, "/nonexistent/dir/img.png", &err), JB_ENOTFOUND);
    cr_assert(strstr(err.msg, "/nonexistent/dir/img.png"), "%s", err.msg);
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

/* Encodes w x h samples of `comps` components (JCS_RGB, JCS_GRAYSCALE or JCS_CMYK) at quality q
 * with libjpeg's default settings. */
static size_t write_jpeg(unsigned char **out, int w, int h, int comps, J_COLOR_SPACE cs,
                         const unsigned char *px, int q) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = cs;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, q, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * w * comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *out = buf;
    return len;
}

/* A smooth image, so that quality 100 (4:2:0 chroma, libjpeg's default) stays within a few
 * levels: the tolerance of 4 covers the DCT quantization at q100 and chroma subsampling of a
 * gradient. */
Test(decode, jpeg_quality_100_decodes_within_a_few_levels) {
    int w = 64, h = 48;
    unsigned char *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            px[(y * w + x) * 3 + 0] = (unsigned char)(x * 4);
            px[(y * w + x) * 3 + 1] = (unsigned char)(y * 5);
            px[(y * w + x) * 3 + 2] = (unsigned char)(128 + (x - y));
        }
    unsigned char *f;
    size_t n = write_jpeg(&f, w, h, 3, JCS_RGB, px, 100);
    struct molmo_image img;
    decode_ok(&img, f, n);
    cr_assert(img.width == w && img.height == h);
    int max_diff = 0;
    for (size_t k = 0; k < (size_t)w * h * 3; k++) {
        int d = abs((int)img.rgb[k] - (int)px[k]);
        if (d > max_diff) max_diff = d;
    }
    cr_assert_leq(max_diff, 4, "max diff %d", max_diff);
    molmo_image_free(&img);
    free(f);
    free(px);
}

Test(decode, jpeg_greyscale_and_cmyk_become_rgb) {
    unsigned char grey[16 * 16];
    memset(grey, 90, sizeof grey);
    unsigned char *f;
    size_t n = write_jpeg(&f, 16, 16, 1, JCS_GRAYSCALE, grey, 100);
    struct molmo_image img;
    decode_ok(&img, f, n);
    expect_rgb(&img, 5, 5, 90, 90, 90);
    molmo_image_free(&img);
    free(f);
    /* Stored (Adobe-inverted) CMYK 255 0 0 255 is, in PIL's "CMYK;I" reading, c=0 m=255 y=255
     * k=0: pure red. Stored 0 0 0 0 is c=m=y=k=255: black. Uniform blocks survive q100. */
    unsigned char cmyk[16 * 16 * 4];
    for (int k = 0; k < 16 * 16; k++) {
        int red = k % 16 < 8;
        cmyk[k * 4 + 0] = red ? 255 : 0;
        cmyk[k * 4 + 1] = 0;
        cmyk[k * 4 + 2] = 0;
        cmyk[k * 4 + 3] = red ? 255 : 0;
    }
    n = write_jpeg(&f, 16, 16, 4, JCS_CMYK, cmyk, 100);
    decode_ok(&img, f, n);
    const uint8_t *p = img.rgb + (size_t)(3 * 16 + 2) * 3;
    cr_assert(p[0] >= 250 && p[1] <= 5 && p[2] <= 5, "%d %d %d", p[0], p[1], p[2]);
    p = img.rgb + (size_t)(3 * 16 + 13) * 3;
    cr_assert(p[0] <= 5 && p[1] <= 5 && p[2] <= 5, "%d %d %d", p[0], p[1], p[2]);
    molmo_image_free(&img);
    free(f);
}

Test(decode, jpeg_cut_short_or_absurd_is_a_clean_error) {
    int w = 64, h = 64;
    unsigned char *px = pattern_rgb(w, h);
    unsigned char *f;
    size_t n = write_jpeg(&f, w, h, 3, JCS_RGB, px, 90);
    struct molmo_image img = {0};
    struct jb_err err = {0};
    cr_assert_eq(molmo_image_decode(&img, f, n * 2 / 3, "short.jpg", &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, "short.jpg") && strstr(err.msg, "JPEG"), "%s", err.msg);
    cr_assert_null(img.rgb);
    for (size_t cut = 3; cut < n; cut += 61) {
        cr_assert_lt(molmo_image_decode(&img, f, cut, "short.jpg", &err), 0, "cut at %zu", cut);
        cr_assert_null(img.rgb);
    }
    /* SOF0 with 65000 x 65000: 4.2 gigapixels, refused before decoding */
    unsigned char *bad = malloc(n);
    memcpy(bad, f, n);
    size_t k = 2;
    while (k + 9 < n && !(bad[k] == 0xff && bad[k + 1] == 0xc0)) k++;
    cr_assert_lt(k + 9, n, "no SOF0 marker");
    bad[k + 5] = 0xfd, bad[k + 6] = 0xe8, bad[k + 7] = 0xfd, bad[k + 8] = 0xe8;
    cr_assert_eq(molmo_image_decode(&img, bad, n, "huge.jpg", &err), JB_EUNSUPPORTED, "%s",
                 err.msg);
    cr_assert(strstr(err.msg, "65000 x 65000"), "%s", err.msg);
    free(bad);
    free(f);
    free(px);
}

/* Random damage (1-4 bytes overwritten, deterministic seeds) never crashes the decoders or
 * trips the sanitizers: each call either succeeds with a sane image or returns an error with the
 * image zeroed. */
Test(decode, randomly_damaged_files_never_crash) {
    int w = 40, h = 30;
    unsigned char *px = pattern_rgb(w, h);
    unsigned char *files[2];
    size_t lens[2];
    lens[0] = write_png(&files[0], w, h, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, px,
                        (size_t)w * 3, NULL, 0, NULL, 0);
    lens[1] = write_jpeg(&files[1], w, h, 3, JCS_RGB, px, 85);
    uint32_t s = 99;
    int n_ok = 0, n_err = 0;
    for (int f = 0; f < 2; f++) {
        unsigned char *buf = malloc(lens[f]);
        for (int trial = 0; trial < 300; trial++) {
            memcpy(buf, files[f], lens[f]);
            int flips = 1 + trial % 4;
            for (int k = 0; k < flips; k++) {
                s = s * 1103515245u + 12345u;
                size_t at = (s >> 8) % lens[f];
                s = s * 1103515245u + 12345u;
                buf[at] = (unsigned char)(s >> 24);
            }
            struct molmo_image img;
            struct jb_err err = {0};
            int rc = molmo_image_decode(&img, buf, lens[f], "damaged", &err);
            if (rc == 0) {
                cr_assert(img.rgb && img.width > 0 && img.height > 0);
                n_ok++;
            } else {
                cr_assert_lt(rc, 0);
                cr_assert(img.rgb == NULL && img.width == 0);
                cr_assert(strstr(err.msg, "damaged"), "%s", err.msg);
                n_err++;
            }
            molmo_image_free(&img);
        }
        free(buf);
        free(files[f]);
    }
    cr_log_info("damaged files: %d decoded, %d rejected", n_ok, n_err);
    cr_assert_gt(n_err, 0);
    free(px);
}

/* The shipped default models' geometry (preprocessor_config.json of models/tiny and small):
 * 112-px crops of 8 x 8 patches, margins [2, 2], one grid cell. Expected values derived by hand
 * from molmo.md §4 for a 640 x 480 image: scale min(112/480, 112/640) = 0.175 -> 84 x 112 px,
 * top = 14, so patch rows 0 and 7 are padding; 4 x 4 pooled cells per crop, both kept whole. */
Test(preprocess, a_112_px_crop_with_one_cell_has_the_hand_derived_layout) {
    struct molmo_preproc_config c;
    struct jb_err err = {0};
    char *dir;
    cr_assert_eq(load_config_text(&c, "{\"base_image_input_size\": [112, 112], "
                                      "\"image_token_length_h\": 4, \"image_token_length_w\": 4, "
                                      "\"max_crops\": 1, \"overlap_margins\": [2, 2]}",
                                  &err, &dir),
                 0, "%s", err.msg);
    free(dir);
    struct molmo_image_token_ids ids = {.im_start = 1000, .im_end = 1001, .im_patch = 1002,
                                        .im_col = 1003};
    struct molmo_preprocessed pp = {0};
    cr_assert_eq(molmo_preprocess_layout(&pp, 640, 480, &c, &ids, &err), 0, "%s", err.msg);
    cr_assert(pp.grid_rows == 1 && pp.grid_cols == 1 && pp.n_crops == 2);
    cr_assert(pp.n_patches == 64 && pp.n_pooled == 16);
    /* two blocks of <im_start>, 4 x (4 patches, <im_col>), <im_end> */
    cr_assert_eq(pp.n_tokens, 44u);
    for (int b = 0; b < 2; b++) {
        const int32_t *t = pp.tokens + 22 * b;
        cr_assert_eq(t[0], ids.im_start);
        cr_assert_eq(t[21], ids.im_end);
        for (int r = 0; r < 4; r++) {
            for (int k = 0; k < 4; k++) cr_assert_eq(t[1 + 5 * r + k], ids.im_patch);
            cr_assert_eq(t[1 + 5 * r + 4], ids.im_col);
        }
    }
    /* positions count BOS at 0: the global block's first patch is at 2, the high-res one's 24 */
    for (int cell = 0; cell < 16; cell++) {
        int r = cell / 4, k = cell % 4;
        cr_assert_eq(pp.image_input_idx[cell], 2 + 5 * r + k, "global cell %d", cell);
        cr_assert_eq(pp.image_input_idx[16 + cell], 24 + 5 * r + k, "high-res cell %d", cell);
    }
    /* §4.8: the global crop carries the high-res crop's mask, the high-res crop -1 */
    for (int p = 0; p < 64; p++) {
        float want = p / 8 == 0 || p / 8 == 7 ? 0.0f : 1.0f;
        cr_assert_eq(pp.image_masks[p], want, "patch %d", p);
        cr_assert_eq(pp.image_masks[64 + p], -1.0f);
    }
    molmo_preprocessed_free(&pp);
}
