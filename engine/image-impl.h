/* image-impl.h: image decoding (PNG, JPEG) and the Molmo image preprocessing of molmo.md §4,
 * shared inside engine/ only.
 *
 *     struct molmo_image img = {0};
 *     if (molmo_image_load(&img, "cat.jpg", &err) < 0) return err.code;
 *     struct molmo_preprocessed pp = {0};
 *     rc = molmo_preprocess(&pp, &img, &cfg, &ids, &err);  // crops, masks, token layout
 *     molmo_preprocessed_free(&pp); molmo_image_free(&img);
 *
 * Decoding follows what the reference gets from PIL's Image.open(...).convert("RGB"): EXIF
 * orientation is ignored (the reference computes the rotated image and then uses the unrotated
 * one, molmo.md §4), alpha is dropped without compositing, palettes are expanded, gamma and
 * colour profiles are not applied.
 */
#ifndef MOLMO_IMAGE_IMPL_H
#define MOLMO_IMAGE_IMPL_H

#include "common/jb-err.h"

#include <stddef.h>
#include <stdint.h>

/* Largest accepted image: each side and the pixel count are checked right after the header is
 * read, before any pixel buffer is allocated (a 100-megapixel RGB image is 300 MB). */
#define MOLMO_IMAGE_MAX_SIDE 65535
#define MOLMO_IMAGE_MAX_PIXELS 100000000ull

struct molmo_image {                   /* decoded, 8-bit RGB, row-major, h*w*3 bytes */
    int width, height;
    uint8_t *rgb;                      /* malloc'd */
};

/* Decodes a PNG or JPEG (detected by magic bytes) from memory; `name` is used in messages.
 * Colour types: greyscale, grey+alpha, RGB, RGBA, palette (with or without tRNS), 1-16 bits
 * per sample; JPEG greyscale, YCbCr, RGB, CMYK/YCCK (inverted Adobe CMYK, converted as PIL
 * does). Alpha is dropped (PIL's convert("RGB") does not composite either). 16-bit samples keep
 * their high byte (PIL does so for 16-bit RGB/RGBA; for 16-bit greyscale PIL clips to 255
 * instead, which whitens the image, and we deliberately do not copy that). A truncated or
 * corrupt file is JB_EFORMAT naming `name` and the problem; img is left zeroed on error. */
int molmo_image_decode(struct molmo_image *img, const void *data, size_t len, const char *name,
                       struct jb_err *err);
/* Reads path and decodes it as molmo_image_decode does (messages name path). */
int molmo_image_load(struct molmo_image *img, const char *path, struct jb_err *err);
void molmo_image_free(struct molmo_image *img);          /* frees rgb, zeroes; NULL ok */

struct molmo_preproc_config {          /* preprocessor_config.json (molmo.md §1.3) */
    int base_h, base_w;                /* 336, 336 */
    int patch;                         /* 14 */
    int tokens_h, tokens_w;            /* 12, 12 (image_token_length_h/w) */
    int max_crops;                     /* 12 */
    int overlap_margins[2];            /* 4, 4 */
    float mean[3], std[3];             /* CLIP constants */
};
void molmo_preproc_config_default(struct molmo_preproc_config *c);
/* Reads preprocessor_config.json; absent keys keep the defaults; bad values name the field.
 * Settings the §4 procedure cannot honour (non-square crops, a crop not divisible into patches,
 * odd margins, a token grid that is not the 2x2-pooled patch grid, do_normalize false) are
 * JB_EUNSUPPORTED naming the field. */
int molmo_preproc_config_load(struct molmo_preproc_config *c, const char *path,
                              struct jb_err *err);

struct molmo_image_token_ids {         /* looked up by content in the tokenizer by the caller */
    int32_t im_start, im_end, im_patch, im_col;
};

struct molmo_preprocessed {
    int n_crops;                       /* N = 1 + rows*cols (crop 0 = global view) */
    int grid_rows, grid_cols;
    int n_patches, patch_dim;          /* 576, 588 */
    int n_pooled;                      /* 144 tokens per crop */
    float *images;                     /* [N, n_patches, patch_dim], molmo.md §4.2-4.5 */
    float *image_masks;                /* [N, n_patches], §4.8 (shifted, last row -1) */
    int32_t *image_input_idx;          /* [N, n_pooled]: sequence positions counting BOS at 0
                                          (i.e. image tokens start at position 1), -100 dropped */
    int32_t *tokens;                   /* the image token ids (§4.7), global block first */
    size_t n_tokens;                   /* 160 + (8r+4)(8c+5) for the default config */
};

/* Full §4 preprocessing of one image. The prompt sequence is then
 * [BOS] + tokens + text tokens, and image_input_idx already indexes into that sequence.
 * Small images: a side of 112 px or less (where §4.1 divides by zero or by a negative number)
 * is accepted and handled as the reference's float32 NumPy arithmetic does (the 1x1 grid for a
 * side < 112 px; infinite scale for a side of exactly 112 px), the crops then being up-scaled by
 * §4.2. Only an image whose resized side would be 0 px (aspect ratio beyond ~336:1, where the
 * reference fails inside torch) is rejected, JB_EUNSUPPORTED. On error *out is zeroed. */
int molmo_preprocess(struct molmo_preprocessed *out, const struct molmo_image *img,
                     const struct molmo_preproc_config *c, const struct molmo_image_token_ids *ids,
                     struct jb_err *err);
void molmo_preprocessed_free(struct molmo_preprocessed *p);   /* NULL ok */

/* The part of molmo_preprocess that depends only on the image size (width x height): grid,
 * image_masks, image_input_idx and tokens; out->images stays NULL. Used for the geometry tests
 * and by molmo_preprocess itself. */
int molmo_preprocess_layout(struct molmo_preprocessed *out, int width, int height,
                            const struct molmo_preproc_config *c,
                            const struct molmo_image_token_ids *ids, struct jb_err *err);

/* §4.1 alone: the crop grid for an image of w x h pixels. */
void molmo_crop_grid(const struct molmo_preproc_config *c, int w, int h, int *rows, int *cols);

/* §4.2 + §4.3: resizes the 8-bit RGB image (w x h) to fit th x tw keeping the aspect ratio
 * (antialiased bilinear, exact float32 rounding), clamps to [0, 1], pads with 0 (centred) and
 * normalizes with c->mean/std. out is th*tw*3 floats, interleaved RGB. *top, *left, *sh, *sw give
 * the real-pixel rectangle. JB_EUNSUPPORTED when a resized side would be 0 px, JB_ENOMEM. */
int molmo_resize_pad(float *out, const struct molmo_image *img, int th, int tw,
                     const struct molmo_preproc_config *c, int *top, int *left, int *sh, int *sw,
                     struct jb_err *err);

/* What the public model adds to the weights: tokenizer, preprocessing, special ids. */
struct molmo_gen_ctx {
    struct molmo_preproc_config pp;
    struct molmo_image_token_ids img_ids;
    int32_t bos, eos;
};

#endif /* MOLMO_IMAGE_IMPL_H */
