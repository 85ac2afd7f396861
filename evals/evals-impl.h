/* evals-impl.h: what the files of evals/ share and no other module includes. */
#ifndef EVALS_IMPL_H
#define EVALS_IMPL_H

#include "evals/evals.h"

#include "common/jb-stats.h"

#include <stdint.h>

extern const char *const evals_vqa_contractions[][2];
extern const int evals_vqa_n_contractions;

/* Lowercases UTF-8 s code point by code point (utf8proc simple case mapping); malloc'd. */
char *evals_utf8_lower(const char *s);

/* Whitespace as the peers' Python sees it (str.isspace(), str.strip(), str.split(), regex \s):
 * ASCII whitespace, U+001C..U+001F, U+0085 and the Unicode separators Zs, Zl, Zp (NBSP,
 * the em space, U+3000 ...). evals_space_len: the bytes of such a character at s[0..n), else
 * 0 (invalid UTF-8 is not whitespace); evals_space_before: the same for the character ending
 * at s[n]; evals_trim: narrows [*a, *b) of s past whitespace at both ends. */
size_t evals_space_len(const char *s, size_t n);
size_t evals_space_before(const char *s, size_t n);
void evals_trim(const char *s, size_t *a, size_t *b);

/* Pointing: parses the predicted points (percent coordinates) of a Molmo answer. *pts is
 * malloc'd (x, y pairs), *n their number, *n_elements the number of <point>/<points>
 * elements. Returns 0 or JB_ENOMEM. */
int evals_points_parse(const char *text, double **pts, size_t *n, int *n_elements);
/* Pointing score of predicted percent points against regions (evals.md §4). */
void evals_pointing_score(const char *text, const struct evals_region *regions, size_t n_regions,
                          int width, int height, struct evals_score *out);

/* ------------------------------------------------------------------------------------------
 * Registry and loaders */

struct jb_err;
struct evals_loader;
typedef int (*evals_load_fn)(struct evals_loader *l, const char *dir, struct jb_err *err);

struct evals_suite {
    const char *name, *alias;
    enum evals_domain domain;
    evals_load_fn load;
    enum evals_metric metric;
    const char *style;
    const char *split;
    size_t n_expected;
    bool comparable;
    bool synthetic;
    int max_new_tokens;
    const char *layout;
};

int evals_load_chartqa(struct evals_loader *l, const char *dir, struct jb_err *err);
int evals_load_docvqa(struct evals_loader *l, const char *dir, struct jb_err *err);
int evals_load_infovqa(struct evals_loader *l, const char *dir, struct jb_err *err);
int evals_load_textvqa(struct evals_loader *l, const char *dir, struct jb_err *err);
int evals_load_vqav2(struct evals_loader *l, const char *dir, struct jb_err *err);
int evals_load_ai2d(struct evals_loader *l, const char *dir, struct jb_err *err);
int evals_load_jsonl(struct evals_loader *l, const char *dir, struct jb_err *err);
int evals_load_synth_count(struct evals_loader *l, const char *dir, struct jb_err *err);

/* Writes an opaque cairo ARGB32 image (w x h, stride bytes a row) as an 8-bit RGB PNG. */
int evals_png_write_argb32(const char *path, const unsigned char *px, int w, int h, int stride,
                           struct jb_err *err);

#endif /* EVALS_IMPL_H */
