/* image.c: PNG (libpng) and JPEG (libjpeg-turbo) decoding to 8-bit RGB, matching what the
 * reference gets from PIL's Image.open(f).convert("RGB"). See image-impl.h for the colour rules.
 *
 * EXIF orientation is ignored on purpose: the reference computes the EXIF-rotated image and then
 * preprocesses the unrotated one (molmo.md §4), so the weights have only seen raw pixel order.
 * Both libraries report fatal errors through a longjmp out of their error callbacks; every
 * resource the decoder owns is reachable from a context struct (not a local), so it is released
 * on that path too and nothing is printed (libpng warnings and libjpeg messages are silenced). */
#include "config.h"

#include "engine/image-impl.h"

#include "common/jb-mmap.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

void molmo_image_free(struct molmo_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* Rejects sizes that are zero or absurd, before any pixel buffer is allocated. */
static int check_dims(unsigned long w, unsigned long h, const char *name, const char *kind,
                      struct jb_err *err) {
    if (w == 0 || h == 0)
        return jb_err_set(err, JB_EFORMAT, "%s: %s image has no pixels (%lu x %lu)", name, kind,
                          w, h);
    if (w > MOLMO_IMAGE_MAX_SIDE || h > MOLMO_IMAGE_MAX_SIDE ||
        (unsigned long long)w * h > MOLMO_IMAGE_MAX_PIXELS)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: %s image of %lu x %lu pixels is too large (limit %d px a side, "
                          "%llu pixels)",
                          name, kind, w, h, MOLMO_IMAGE_MAX_SIDE, MOLMO_IMAGE_MAX_PIXELS);
    return 0;
}

/* ---- PNG ------------------------------------------------------------------------------------ */

struct png_ctx {
    const unsigned char *data;
    size_t len, pos;
    jmp_buf jmp;
    char msg[200];
    png_structp png;
    png_infop info;
    uint8_t *rgb;
    png_bytep *rows;
    png_uint_32 w, h;
    int depth, ctype;
};

static void png_on_error(png_structp png, png_const_charp msg) {
    struct png_ctx *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    longjmp(s->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png; /* ancillary-chunk problems: PIL ignores them too */
    (void)msg;
}

static void png_on_read(png_structp png, png_bytep out, size_t n) {
    struct png_ctx *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "file is truncated");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static int decode_png(struct molmo_image *img, const unsigned char *data, size_t len,
                      const char *name, struct jb_err *err) {
    struct png_ctx *s = calloc(1, sizeof *s);
    if (!s) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", name);
    int rc = 0;
    s->data = data;
    s->len = len;
    s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, png_on_error, png_on_warning);
    if (s->png) s->info = png_create_info_struct(s->png);
    if (!s->png || !s->info) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory for the PNG decoder", name);
        goto out;
    }
    if (setjmp(s->jmp)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: corrupt or truncated PNG: %s", name, s->msg);
        goto out;
    }
    png_set_read_fn(s->png, s, png_on_read);
    png_set_user_limits(s->png, MOLMO_IMAGE_MAX_SIDE, MOLMO_IMAGE_MAX_SIDE);
    png_read_info(s->png, s->info);
    png_get_IHDR(s->png, s->info, &s->w, &s->h, &s->depth, &s->ctype, NULL, NULL, NULL);
    if ((rc = check_dims(s->w, s->h, name, "PNG", err))) goto out;

    /* To 8-bit RGB, as convert("RGB"): high byte of 16-bit samples, palette looked up (tRNS
     * not turned into alpha), alpha dropped without compositing, grey replicated. */
    if (s->depth == 16) png_set_strip_16(s->png);
    if (s->ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
    if (s->ctype == PNG_COLOR_TYPE_GRAY && s->depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
    /* (png_set_palette_to_rgb also turns tRNS into alpha, so strip that too) */
    if ((s->ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(s->png, s->info, PNG_INFO_tRNS))
        png_set_strip_alpha(s->png);
    if (s->ctype == PNG_COLOR_TYPE_GRAY || s->ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    if (png_get_channels(s->png, s->info) != 3 || png_get_bit_depth(s->png, s->info) != 8 ||
        png_get_rowbytes(s->png, s->info) != (size_t)s->w * 3) {
        rc = jb_err_set(err, JB_EINTERNAL, "%s: PNG colour type %d, depth %d not converted to RGB",
                        name, s->ctype, s->depth);
        goto out;
    }
    s->rgb = malloc((size_t)s->w * s->h * 3);
    s->rows = malloc(sizeof *s->rows * s->h);
    if (!s->rgb || !s->rows) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory for %u x %u pixels", name,
                        (unsigned)s->w, (unsigned)s->h);
        goto out;
    }
    for (png_uint_32 y = 0; y < s->h; y++) s->rows[y] = s->rgb + (size_t)y * s->w * 3;
    png_read_image(s->png, s->rows);
    /* No png_read_end: like PIL, chunks after the image data are not needed for the pixels. */
    img->width = (int)s->w;
    img->height = (int)s->h;
    img->rgb = s->rgb;
    s->rgb = NULL;
out:
    png_destroy_read_struct(s->png ? &s->png : NULL, s->info ? &s->info : NULL, NULL);
    free(s->rows);
    free(s->rgb);
    free(s);
    return rc;
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

struct jpeg_ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    int created;
    uint8_t *rgb;
    uint8_t *cmyk_row;
};

static void jpeg_on_error(j_common_ptr cinfo) {
    struct jpeg_ctx *s = (struct jpeg_ctx *)cinfo->client_data;
    cinfo->err->format_message(cinfo, s->msg);
    longjmp(s->jmp, 1);
}

/* libjpeg treats running out of data as a warning and pads the image with grey; PIL raises
 * "image file is truncated" instead, and so do we. Other warnings (extraneous bytes, ...) are
 * ignored as PIL ignores them. Nothing is printed. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) cinfo->err->error_exit(cinfo);
}

/* PIL reads CMYK JPEGs as inverted Adobe CMYK ("CMYK;I") and converts to RGB with
 * nk = 255 - k', r = nk - muldiv255(c', nk), where c' = 255 - stored c (Pillow's cmyk2rgb).
 * With stored (inverted) values that is r = k - muldiv255(255 - c, k). */
static void cmyk_to_rgb(uint8_t *out, const uint8_t *in, size_t n) {
    for (size_t x = 0; x < n; x++, in += 4, out += 3) {
        int nk = in[3];
        for (int ch = 0; ch < 3; ch++) {
            int t = (255 - in[ch]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static int decode_jpeg(struct molmo_image *img, const unsigned char *data, size_t len,
                       const char *name, struct jb_err *err) {
    struct jpeg_ctx *s = calloc(1, sizeof *s);
    if (!s) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", name);
    int rc = 0;
    s->cinfo.err = jpeg_std_error(&s->jerr);
    s->cinfo.client_data = s; /* kept by jpeg_create_decompress */
    s->jerr.error_exit = jpeg_on_error;
    s->jerr.emit_message = jpeg_on_message;
    if (setjmp(s->jmp)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: corrupt or truncated JPEG: %s", name, s->msg);
        goto out;
    }
    jpeg_create_decompress(&s->cinfo);
    s->created = 1;
    jpeg_mem_src(&s->cinfo, data, (unsigned long)len);
    jpeg_read_header(&s->cinfo, TRUE);
    if ((rc = check_dims(s->cinfo.image_width, s->cinfo.image_height, name, "JPEG", err)))
        goto out;
    /* Default decoder settings (islow DCT, fancy upsampling) are PIL's too. */
    int cmyk = s->cinfo.jpeg_color_space == JCS_CMYK || s->cinfo.jpeg_color_space == JCS_YCCK;
    s->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&s->cinfo);
    size_t w = s->cinfo.output_width, h = s->cinfo.output_height;
    if (s->cinfo.output_components != (cmyk ? 4 : 3)) {
        rc = jb_err_set(err, JB_EINTERNAL, "%s: JPEG decoded to %d components", name,
                        s->cinfo.output_components);
        goto out;
    }
    s->rgb = malloc(w * h * 3);
    if (cmyk) s->cmyk_row = malloc(w * 4);
    if (!s->rgb || (cmyk && !s->cmyk_row)) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory for %zu x %zu pixels", name, w, h);
        goto out;
    }
    while (s->cinfo.output_scanline < h) {
        uint8_t *row = s->rgb + (size_t)s->cinfo.output_scanline * w * 3;
        JSAMPROW dst = cmyk ? s->cmyk_row : row;
        if (jpeg_read_scanlines(&s->cinfo, &dst, 1) != 1) {
            rc = jb_err_set(err, JB_EFORMAT, "%s: corrupt JPEG: no scanline %u", name,
                            (unsigned)s->cinfo.output_scanline);
            goto out;
        }
        if (cmyk) cmyk_to_rgb(row, s->cmyk_row, w);
    }
    jpeg_finish_decompress(&s->cinfo);
    img->width = (int)w;
    img->height = (int)h;
    img->rgb = s->rgb;
    s->rgb = NULL;
out:
    if (s->created) jpeg_destroy_decompress(&s->cinfo);
    free(s->cmyk_row);
    free(s->rgb);
    free(s);
    return rc;
}

/* ---- entry points --------------------------------------------------------------------------- */

int molmo_image_decode(struct molmo_image *img, const void *data, size_t len, const char *name,
                       struct jb_err *err) {
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const unsigned char *p = data;
    memset(img, 0, sizeof *img);
    if (!name) name = "(image)";
    if (len == 0 || !p) return jb_err_set(err, JB_EFORMAT, "%s: empty file, not an image", name);
    if (len >= 8 && memcmp(p, png_magic, 8) == 0) return decode_png(img, p, len, name, err);
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return decode_jpeg(img, p, len, name, err);
    const char *kind = NULL;
    if (len >= 4 && memcmp(p, "GIF8", 4) == 0) kind = "GIF";
    else if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        kind = "WebP";
    else if (len >= 2 && memcmp(p, "BM", 2) == 0) kind = "BMP";
    else if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
        kind = "TIFF";
    if (kind)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: %s images are not supported (PNG or JPEG)",
                          name, kind);
    return jb_err_set(err, JB_EFORMAT, "%s: not a PNG or JPEG image (unknown magic bytes)", name);
}

int molmo_image_load(struct molmo_image *img, const char *path, struct jb_err *err) {
    struct jb_mmap map = {0};
    memset(img, 0, sizeof *img);
    int rc = jb_mmap_open(&map, path, err);
    if (rc) return rc;
    rc = molmo_image_decode(img, map.data, map.len, path, err);
    jb_mmap_close(&map);
    return rc;
}
