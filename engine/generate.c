/* generate.c: one image + question -> greedy answer (molmo.md §3.2, §8), with phase callbacks
 * and the optional --dump of every stage tensor under the golden names. The model it runs is
 * loaded by engine/load.c. */
#include "config.h"

#include "engine/image-impl.h"
#include "engine/model-impl.h"
#include "engine/molmo.h"

#include "common/jb-mmap.h"
#include "common/jb-npy.h"
#include "common/jb-time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *molmo_phase_name(enum molmo_phase p) {
    static const char *const names[] = {"preprocess", "vision", "prefill", "decode",
                                        "decode_step"};
    return (unsigned)p < MOLMO_N_PHASES ? names[p] : "?";
}

void molmo_result_free(struct molmo_result *r) {
    if (!r) return;
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

/* Phase bookkeeping: callback and seconds. */
struct phases {
    const struct molmo_gen_opts *o;
    struct molmo_result *r;
    double t0[MOLMO_N_PHASES];
};

static void phase_begin(struct phases *ph, enum molmo_phase p, int step) {
    if (ph->o->on_phase) ph->o->on_phase(ph->o->user, p, true, step);
    ph->t0[p] = jb_time_now_s();
}

static void phase_end(struct phases *ph, enum molmo_phase p, int step) {
    ph->r->phase_s[p] += jb_time_now_s() - ph->t0[p];
    if (ph->o->on_phase) ph->o->on_phase(ph->o->user, p, false, step);
}

/* Stage tensors for --dump, malloc'd only when dumping. */
struct dump {
    float *vit, *pooled, *logits_all, *decode_logits;
};

static int save(const char *dir, const char *name, enum jb_npy_dtype dt, int ndim, size_t d0,
                size_t d1, size_t d2, const void *data, struct jb_err *err) {
    char *path = jb_path_join(dir, name);
    if (!path) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
    size_t shape[3] = {d0, d1, d2};
    int rc = jb_npy_save(path, dt, ndim, shape, data, err);
    free(path);
    return rc;
}

static int write_dump(const struct molmo_model *m, const char *dir, const struct dump *d,
                      const struct molmo_preprocessed *pp, const int32_t *ids, size_t T,
                      const struct molmo_result *r, size_t n_rows, struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    size_t N = (size_t)pp->n_crops, np = (size_t)pp->n_pooled, E = (size_t)c->embedding_size;
    size_t npat = (size_t)pp->n_patches;
    int rc = jb_mkdir_p(dir, err);
    if (rc) return rc;
    if ((rc = save(dir, "input_ids.npy", JB_NPY_I32, 1, T, 0, 0, ids, err)) ||
        (rc = save(dir, "images.npy", JB_NPY_F32, 3, N, npat, (size_t)pp->patch_dim, pp->images,
                   err)) ||
        (rc = save(dir, "image_masks.npy", JB_NPY_F32, 2, N, npat, 0, pp->image_masks, err)) ||
        (rc = save(dir, "image_input_idx.npy", JB_NPY_I32, 2, N, np, 0, pp->image_input_idx,
                   err)) ||
        (rc = save(dir, "vit_features.npy", JB_NPY_F32, 3, N, npat, 2 * (size_t)c->vit_dim,
                   d->vit, err)) ||
        (rc = save(dir, "pooled.npy", JB_NPY_F32, 3, N, np, (size_t)c->vit_dim, d->pooled, err)) ||
        (rc = save(dir, "image_features.npy", JB_NPY_F32, 3, N, np, (size_t)c->d_model,
                   m->image_features, err)) ||
        (rc = save(dir, "logits_prefill.npy", JB_NPY_F32, 2, T, E, 0, d->logits_all, err)) ||
        (rc = save(dir, "generated_ids.npy", JB_NPY_I32, 1, r->n_ids, 0, 0, r->ids, err)) ||
        (rc = save(dir, "decode_logits.npy", JB_NPY_F32, 2, n_rows, E, 0, d->decode_logits, err)))
        return rc;
    return 0;
}

static int generate(struct molmo_model *m, const struct molmo_image *img, const char *prompt,
                    const struct molmo_gen_opts *o, struct molmo_result *r, struct phases *ph,
                    struct jb_err *err) {
    const struct molmo_config *c = &m->cfg;
    const struct molmo_gen_ctx *g = m->gen;
    struct molmo_preprocessed pp = {0};
    int32_t *text_ids = NULL, *ids = NULL;
    char *text = NULL;
    struct dump d = {0};
    size_t n_text = 0;
    int max_new = o->max_new_tokens > 0 ? o->max_new_tokens : 12;
    int rc;

    /* preprocessing continues the phase the caller opened around the image decode */
    if ((rc = molmo_preprocess(&pp, img, &g->pp, &g->img_ids, err))) goto out;
    if (pp.n_crops > m->max_crops) {
        rc = jb_err_set(err, JB_EUNSUPPORTED, "image needs %d crops, buffers hold %d",
                        pp.n_crops, m->max_crops);
        goto out;
    }
    /* §3.2: " User: " + question + " Assistant:", after [BOS] + image tokens */
    size_t plen = strlen(prompt);
    text = malloc(plen + 32);
    if (!text) {
        rc = jb_err_set(err, JB_ENOMEM, "prompt: out of memory");
        goto out;
    }
    int tlen = snprintf(text, plen + 32, " User: %s Assistant:", prompt);
    if ((rc = molmo_tokenizer_encode(m->tok, text, (size_t)tlen, &text_ids, &n_text, err)))
        goto out;
    size_t T = 1 + pp.n_tokens + n_text;
    if (T + (size_t)max_new > (size_t)m->max_seq) {
        rc = jb_err_set(err, JB_EINVAL, "prompt of %zu tokens + %d new ones exceeds the context "
                        "of %d", T, max_new, m->max_seq);
        goto out;
    }
    ids = malloc(T * sizeof *ids);
    r->ids = malloc((size_t)max_new * sizeof *r->ids);
    if (!ids || !r->ids) {
        rc = jb_err_set(err, JB_ENOMEM, "prompt: out of memory");
        goto out;
    }
    ids[0] = g->bos;
    memcpy(ids + 1, pp.tokens, pp.n_tokens * sizeof *ids);
    memcpy(ids + 1 + pp.n_tokens, text_ids, n_text * sizeof *ids);
    r->n_prompt_tokens = T;
    r->n_image_tokens = pp.n_tokens;
    r->n_crops = pp.n_crops;
    size_t E = (size_t)c->embedding_size, np = (size_t)pp.n_pooled, N = (size_t)pp.n_crops;
    size_t vw = (size_t)pp.n_patches * 2 * c->vit_dim;
    if (o->dump_dir) {
        d.vit = malloc(N * vw * sizeof(float));
        d.pooled = malloc(N * np * c->vit_dim * sizeof(float));
        d.logits_all = malloc(T * E * sizeof(float));
        d.decode_logits = malloc((size_t)max_new * E * sizeof(float));
        if (!d.vit || !d.pooled || !d.logits_all || !d.decode_logits) {
            rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory for the dump", o->dump_dir);
            goto out;
        }
    }
    phase_end(ph, MOLMO_PHASE_PREPROCESS, -1);

    phase_begin(ph, MOLMO_PHASE_VISION, -1);
    for (size_t k = 0; k < N; k++) {
        float *feat = d.vit ? d.vit + k * vw : m->vit_features;
        const float *crop = pp.images + k * (size_t)pp.n_patches * pp.patch_dim;
        if ((rc = molmo_vit_forward(m, crop, feat, NULL, err)) ||
            (rc = molmo_connector_forward(m, feat, pp.image_masks + k * (size_t)pp.n_patches,
                                          d.pooled ? d.pooled + k * np * c->vit_dim : NULL,
                                          m->image_features + k * np * c->d_model, err)))
            break;
    }
    phase_end(ph, MOLMO_PHASE_VISION, -1);
    if (rc) goto out_nophase;

    phase_begin(ph, MOLMO_PHASE_PREFILL, -1);
    rc = molmo_llm_prefill(m, ids, (int)T, m->image_features, pp.image_input_idx, (int)N,
                           d.logits_all, m->logits, err);
    phase_end(ph, MOLMO_PHASE_PREFILL, -1);
    if (rc) goto out_nophase;

    /* §8: greedy; the first token comes from the prefill's last logits */
    phase_begin(ph, MOLMO_PHASE_DECODE, -1);
    size_t rows = 0;
    for (int s = 0;; s++) {
        if (d.decode_logits) memcpy(d.decode_logits + rows * E, m->logits, E * sizeof(float));
        rows++;
        int32_t id = molmo_argmax(m->logits, (int)E);
        r->ids[r->n_ids++] = id;
        if (id == g->eos && !o->no_stop) {
            r->stopped_on_eos = true;
            break;
        }
        if (r->n_ids == (size_t)max_new) break;
        phase_begin(ph, MOLMO_PHASE_DECODE_STEP, s);
        rc = molmo_llm_decode(m, id, m->logits, err);
        phase_end(ph, MOLMO_PHASE_DECODE_STEP, s);
        if (rc) break;
    }
    phase_end(ph, MOLMO_PHASE_DECODE, -1);
    if (rc) goto out_nophase;

    size_t n_answer = r->stopped_on_eos ? r->n_ids - 1 : r->n_ids;
    if ((rc = molmo_tokenizer_decode(m->tok, r->ids, n_answer, true, &r->text, err)))
        goto out_nophase;
    if (o->dump_dir) rc = write_dump(m, o->dump_dir, &d, &pp, ids, T, r, rows, err);
    goto out_nophase;
out:
    phase_end(ph, MOLMO_PHASE_PREPROCESS, -1);
out_nophase:
    free(d.vit);
    free(d.pooled);
    free(d.logits_all);
    free(d.decode_logits);
    free(ids);
    free(text_ids);
    free(text);
    molmo_preprocessed_free(&pp);
    return rc;
}

static int generate_common(struct molmo_model *m, const char *path, const void *data, size_t len,
                           const char *name, const char *prompt, const struct molmo_gen_opts *o,
                           struct molmo_result *r, struct jb_err *err) {
    static const struct molmo_gen_opts defaults = {0};
    if (!o) o = &defaults;
    memset(r, 0, sizeof *r);
    if (!m->tok || !m->gen)
        return jb_err_set(err, JB_EINVAL, "%s: model loaded without its tokenizer", m->dir);
    struct phases ph = {.o = o, .r = r};
    struct molmo_image img = {0};
    phase_begin(&ph, MOLMO_PHASE_PREPROCESS, -1);
    int rc = path ? molmo_image_load(&img, path, err) : molmo_image_decode(&img, data, len, name,
                                                                           err);
    if (rc) {
        phase_end(&ph, MOLMO_PHASE_PREPROCESS, -1);
    } else {
        rc = generate(m, &img, prompt, o, r, &ph, err);
    }
    molmo_image_free(&img);
    if (rc) molmo_result_free(r);
    return rc;
}

int molmo_generate_file(struct molmo_model *m, const char *image_path, const char *prompt,
                        const struct molmo_gen_opts *o, struct molmo_result *r,
                        struct jb_err *err) {
    return generate_common(m, image_path, NULL, 0, NULL, prompt, o, r, err);
}

int molmo_generate_bytes(struct molmo_model *m, const void *image, size_t len, const char *name,
                         const char *prompt, const struct molmo_gen_opts *o,
                         struct molmo_result *r, struct jb_err *err) {
    return generate_common(m, NULL, image, len, name ? name : "image", prompt, o, r, err);
}
