/* load.c: opening a checkpoint directory as released (molmo.md §2): the weights (model.c),
 * the tokenizer, the preprocessing config and the special ids generation needs; and what a
 * loaded model says about itself (size, threads, kernels, the records' info). */
#include "config.h"

#include "engine/image-impl.h"
#include "engine/model-impl.h"
#include "engine/molmo.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int lookup_token(const struct molmo_tokenizer *tok, const char *content, int32_t *out,
                        const char *path, struct jb_err *err) {
    *out = molmo_tokenizer_token_id(tok, content);
    if (*out < 0)
        return jb_err_set(err, JB_ENOTFOUND, "%s: no token '%s' (Molmo needs it)", path, content);
    return 0;
}

int molmo_model_load(struct molmo_model **out, const char *dir, const struct molmo_load_opts *opts,
                     struct jb_err *err) {
    *out = NULL;
    struct molmo_gen_ctx *g = calloc(1, sizeof *g);
    char *pp_path = jb_path_join(dir, "preprocessor_config.json");
    char *tok_path = jb_path_join(dir, "tokenizer.json");
    struct molmo_tokenizer *tok = NULL;
    struct molmo_model *m = NULL;
    int rc = 0;
    if (!g || !pp_path || !tok_path) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    molmo_preproc_config_default(&g->pp);
    struct stat st;
    if (stat(pp_path, &st) == 0 && (rc = molmo_preproc_config_load(&g->pp, pp_path, err)))
        goto out;
    struct molmo_load_opts o = opts ? *opts : (struct molmo_load_opts){0};
    if (o.max_crops <= 0) o.max_crops = g->pp.max_crops + 1;
    if ((rc = molmo_model_load_weights(&m, dir, &o, err))) goto out;
    const struct molmo_config *c = &m->cfg;
    if (g->pp.base_h != c->image_size_h || g->pp.base_w != c->image_size_w ||
        g->pp.patch != c->patch || g->pp.tokens_h * g->pp.tokens_w != molmo_config_n_pooled(c)) {
        rc = jb_err_set(err, JB_EUNSUPPORTED,
                        "%s: base_image_input_size %dx%d / image_patch_size %d / "
                        "image_token_length %dx%d disagree with the vision backbone in "
                        "config.json (%dx%d, patch %d)", pp_path, g->pp.base_w, g->pp.base_h,
                        g->pp.patch, g->pp.tokens_w, g->pp.tokens_h, c->image_size_w,
                        c->image_size_h, c->patch);
        goto out;
    }
    if ((rc = molmo_tokenizer_load(&tok, tok_path, err))) goto out;
    if ((rc = lookup_token(tok, "<|endoftext|>", &g->bos, tok_path, err)) ||
        (rc = lookup_token(tok, "<im_start>", &g->img_ids.im_start, tok_path, err)) ||
        (rc = lookup_token(tok, "<im_end>", &g->img_ids.im_end, tok_path, err)) ||
        (rc = lookup_token(tok, "<im_patch>", &g->img_ids.im_patch, tok_path, err)) ||
        (rc = lookup_token(tok, "<im_col>", &g->img_ids.im_col, tok_path, err)))
        goto out;
    /* EOS: generation_config.json when it names one, else <|endoftext|> (§8) */
    g->eos = c->eos_id >= 0 ? c->eos_id : g->bos;
    m->tok = tok;
    m->gen = g;
    tok = NULL;
    g = NULL;
out:
    molmo_tokenizer_free(tok);
    free(g);
    free(pp_path);
    free(tok_path);
    if (rc) {
        molmo_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void molmo_model_free(struct molmo_model *m) {
    if (!m) return;
    molmo_tokenizer_free(m->tok);
    free(m->gen);
    molmo_model_free_weights(m);
}

size_t molmo_model_file_bytes(const struct molmo_model *m) { return molmo_ckpt_bytes(m->st); }

size_t molmo_model_scratch_bytes(const struct molmo_model *m) { return m->arena.cap; }

int molmo_model_n_threads(const struct molmo_model *m) { return m->n_threads; }

void molmo_model_info(const struct molmo_model *m, struct molmo_model_info *out) {
    snprintf(out->config_sha256, sizeof out->config_sha256, "%s", m->cfg.config_sha256);
    out->torch_dtype = m->cfg.torch_dtype;
    out->n_params = 0;
    for (size_t i = 0; i < molmo_ckpt_count(m->st); i++)
        out->n_params += (double)molmo_ckpt_get(m->st, i)->numel;
    out->file_bytes = molmo_model_file_bytes(m);
    out->n_threads = m->n_threads;
}

const char *molmo_model_kernel_name(const struct molmo_model *m) { return m->kern.name; }

