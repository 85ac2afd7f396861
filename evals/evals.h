/* evals.h: benchmarks for joulebench: the suite registry, dataset loaders, prompt formatting,
 * answer extraction, the official metrics with 95% intervals, and the synthetic suites.
 * Knows nothing about the engine or energy. Design: shared/design/evals.md.
 *
 *     const struct evals_suite *s = evals_suite_find("chartqa");
 *     struct evals_loader *l = NULL;
 *     if (evals_loader_open(&l, s, data_dir, &(struct evals_loader_opts){0}, &err) < 0) ...
 *     const struct evals_sample *x;
 *     while (evals_loader_next(l, &x) == 1) {
 *         char *text = generate(evals_sample_image_path(x), evals_sample_prompt(x),
 *                               evals_sample_max_new_tokens(x));
 *         struct evals_score sc;
 *         evals_sample_score(x, text, &sc, &err);
 *         evals_agg_add(agg, evals_sample_id(x), &sc);
 *     }
 *     evals_agg_summary(agg, &sum);   // mean, ci95_lo, ci95_hi, n_invalid ...
 *     evals_loader_close(l);
 */
#ifndef EVALS_H
#define EVALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jb_err;

/* ---------------------------------------------------------------------------------------------
 * Answer extraction (evals.md §3) */

/* The answer string a metric receives from decoded model text (evals.md §3, as Molmo's
 * evaluator does it): the text between the first and second "Answer:" if there is one; else,
 * for several lines of the trimmed text, the most frequent line after collapsing whitespace
 * (ties: the earliest; blank lines vote too, so a blank line can win); else the text with
 * whitespace runs collapsed. Whitespace is Python's (str.isspace: NBSP, em space, U+3000 ...
 * too). Always trimmed. Returns a malloc'd string, NULL when out of memory. */
char *evals_answer_extract(const char *text);

/* ---------------------------------------------------------------------------------------------
 * Metrics (evals.md §4). Each scores one generated text against one sample's references. */

enum evals_metric {
    EVALS_METRIC_RELAXED_ACCURACY, /* ChartQA: 5% relative tolerance, else case-insensitive */
    EVALS_METRIC_ANLS,             /* DocVQA, InfographicVQA: 1 - normalised Levenshtein */
    EVALS_METRIC_VQA_ACCURACY,     /* VQAv2, TextVQA: official normalisation, leave-one-out */
    EVALS_METRIC_VQA_ACCURACY_MOLMO, /* Molmo's TextVQA variant: min(1, matches / 3) */
    EVALS_METRIC_MC_LETTER,        /* multiple choice: letter or option text */
    EVALS_METRIC_EXACT_COUNT,      /* counting: integer or number word */
    EVALS_METRIC_POINTING_F1,      /* <point>/<points> against object masks */
    EVALS_METRIC_COUNT_
};

/* "relaxed_accuracy", "anls", ...; NULL for an out-of-range value. */
const char *evals_metric_name(enum evals_metric m);
/* The metric with that name; JB_ENOTFOUND listing the known names otherwise. */
int evals_metric_from_name(const char *name, enum evals_metric *out, struct jb_err *err);
/* True when every score is 0 or 1 (its interval is Wilson's, else a bootstrap). */
bool evals_metric_is_binary(enum evals_metric m);

/* An object a pointing reference names: its reference point (pixels) and its mask. A pixel
 * (px, py), integers, is inside a circle when (px-cx)^2 + (py-cy)^2 <= r^2, inside a box when
 * x0 <= px <= x1 and y0 <= py <= y1, inside a polygon by the even-odd rule on the pixel point,
 * inside a bitmap when bits[py * w + px] != 0. */
enum evals_region_kind { EVALS_REGION_CIRCLE, EVALS_REGION_BOX, EVALS_REGION_POLYGON,
                         EVALS_REGION_BITMAP };
struct evals_region {
    enum evals_region_kind kind;
    double x, y;            /* the reference point (for matching), pixels */
    double c[4];            /* circle: cx, cy, r; box: x0, y0, x1, y1 */
    const double *poly;     /* polygon: n_poly (x, y) pairs */
    int n_poly;
    const unsigned char *bits; /* bitmap: w x h bytes, row-major */
    int w, h;
};

/* What one sample scored. score is in [0, 1]; invalid: no answer could be read from the text
 * (mc_letter, exact_count, pointing_f1 with a malformed element); close: exact_count with
 * |error| <= 1; precision/recall: pointing_f1 only. */
struct evals_score {
    double score;
    bool invalid;
    bool close;
    double precision, recall;
};

/* The references one sample is scored against. refs: the reference strings (for mc_letter one
 * letter; for exact_count one integer). choices: option texts for mc_letter (NULL: every letter
 * A-Z in range, no option-text matching). regions, width, height: pointing_f1 only. */
struct evals_refs {
    const char *const *refs;
    size_t n_refs;
    const char *const *choices;
    size_t n_choices;
    const struct evals_region *regions;
    size_t n_regions;
    int width, height;
};

/* What metric m reads of generated text: the extracted answer (§3), or for exact_count and
 * pointing_f1 the raw text trimmed. The record's "prediction". malloc'd; NULL when out of
 * memory. */
char *evals_metric_input(enum evals_metric m, const char *generated);

/* Scores the generated text: extracts the answer (§3, or the trimmed raw text for counting and
 * pointing) and applies metric m. Fails only for out-of-memory or unusable references
 * (JB_EINVAL naming the problem); an unreadable answer is a valid score with invalid set. */
int evals_score_text(enum evals_metric m, const char *generated, const struct evals_refs *r,
                     struct evals_score *out, struct jb_err *err);

/* The single metrics on an already extracted answer (exposed for tests and the score command).
 * Strings are UTF-8. */
double evals_relaxed_accuracy(const char *pred, const char *const *refs, size_t n_refs);
double evals_anls(const char *pred, const char *const *refs, size_t n_refs);
double evals_vqa_accuracy(const char *pred, const char *const *refs, size_t n_refs);
double evals_vqa_accuracy_molmo(const char *pred, const char *const *refs, size_t n_refs);
/* The letter index (0 = A) read from an answer, or -1 (invalid). n_choices 0: A-Z in range. */
int evals_mc_letter(const char *answer, const char *const *choices, size_t n_choices);
/* The count read from text into *count; false when there is none. */
bool evals_count_parse(const char *text, long long *count);

/* Python float() on s (evals.md §4): true and *out set when s parses. */
bool evals_parse_pyfloat(const char *s, double *out);
/* The official VQA normalisation: punctuation step, then digits/articles/contractions.
 * malloc'd; NULL when out of memory. */
char *evals_vqa_punctuation(const char *s);
char *evals_vqa_digits_articles(const char *s);

/* ---------------------------------------------------------------------------------------------
 * Aggregation and intervals */

struct evals_agg;
struct evals_summary {
    size_t n;               /* scores added */
    size_t n_invalid;       /* of which no answer could be read */
    double mean, ci95_lo, ci95_hi;
    double close_rate;      /* exact_count: share with |error| <= 1 */
    double precision, recall; /* pointing_f1: macro means */
};
/* A growing list of (id, score) for one metric. NULL when out of memory. */
struct evals_agg *evals_agg_new(enum evals_metric m);
void evals_agg_free(struct evals_agg *a);
int evals_agg_add(struct evals_agg *a, const char *id, const struct evals_score *s);
void evals_agg_summary(const struct evals_agg *a, struct evals_summary *out);
/* The i-th added id and score (i < n). */
const char *evals_agg_id(const struct evals_agg *a, size_t i);
double evals_agg_score(const struct evals_agg *a, size_t i);

/* ---------------------------------------------------------------------------------------------
 * Suites and loaders */

enum evals_domain { EVALS_DOMAIN_CHART, EVALS_DOMAIN_DOC, EVALS_DOMAIN_IMAGE };
struct evals_suite; /* a static registry row */

/* The n-th suite (NULL past the end), or the one with that name (aliases included). */
const struct evals_suite *evals_suite_at(size_t i);
const struct evals_suite *evals_suite_find(const char *name);
const char *evals_suite_name(const struct evals_suite *s);
enum evals_domain evals_suite_domain(const struct evals_suite *s);
const char *evals_domain_name(enum evals_domain d);
/* The suite's main metric (a suite may score some samples with another: mixed MC/open sets). */
enum evals_metric evals_suite_metric(const struct evals_suite *s);
const char *evals_suite_style(const struct evals_suite *s); /* Molmo style tag, "vqa2" ... */
const char *evals_suite_split(const struct evals_suite *s);
size_t evals_suite_n_expected(const struct evals_suite *s);
bool evals_suite_comparable(const struct evals_suite *s); /* false: not comparable to paper */
const char *evals_suite_layout(const struct evals_suite *s); /* the files --data DIR holds */
bool evals_suite_is_synthetic(const struct evals_suite *s);

struct evals_loader;
struct evals_sample;

struct evals_loader_opts {
    bool skip_bad;          /* count and list bad records instead of failing */
    size_t limit;           /* 0: all samples */
    bool no_style;          /* send the question without the "style: " tag */
};

/* Reads and checks every record of the suite's data under dir (probing the layouts in
 * evals.md §5 in order) before returning, so that a run stops before doing any work. A JSON
 * syntax error, a record missing a field or with a bad value, or a missing image fails with a
 * message naming the file and the line (JSONL) or record; with skip_bad such records are
 * skipped, counted and listed (evals_loader_bad). */
int evals_loader_open(struct evals_loader **out, const struct evals_suite *s, const char *dir,
                      const struct evals_loader_opts *o, struct jb_err *err);
void evals_loader_close(struct evals_loader *l);
/* Next sample: 1 and *out set, 0 at the end. *out lives as long as the loader. */
int evals_loader_next(struct evals_loader *l, const struct evals_sample **out);
void evals_loader_rewind(struct evals_loader *l);
size_t evals_loader_n_samples(const struct evals_loader *l);
const char *evals_loader_layout(const struct evals_loader *l); /* which layout was found */
size_t evals_loader_n_bad(const struct evals_loader *l);
const char *evals_loader_bad(const struct evals_loader *l, size_t i); /* "file:line: why" */
/* SHA-256 (hex) over the bytes of every annotation file read, in reading order (images are not
 * included): the dataset digest a result record carries. */
const char *evals_loader_digest(const struct evals_loader *l);
/* The sample with that id, or NULL. */
const struct evals_sample *evals_loader_find(const struct evals_loader *l, const char *id);

const char *evals_sample_id(const struct evals_sample *x);
const char *evals_sample_image_path(const struct evals_sample *x); /* NULL: no image (MMMU) */
const char *evals_sample_question(const struct evals_sample *x);  /* as in the dataset */
/* The exact user text to send: "<style>: <question>" (multiple choice: the question, a newline,
 * "A: text" per option, each on its own line, trailing newline). */
const char *evals_sample_prompt(const struct evals_sample *x);
int evals_sample_max_new_tokens(const struct evals_sample *x); /* 12 short, 192 count/point */
enum evals_metric evals_sample_metric(const struct evals_sample *x);
size_t evals_sample_n_refs(const struct evals_sample *x);
const char *evals_sample_ref(const struct evals_sample *x, size_t i);
size_t evals_sample_n_choices(const struct evals_sample *x);
const char *evals_sample_choice(const struct evals_sample *x, size_t i);
int evals_sample_width(const struct evals_sample *x);  /* 0 when unknown */
int evals_sample_height(const struct evals_sample *x);
/* "human"/"augmented" (ChartQA), "degraded" (MMMU items sent without their image), or "". */
const char *evals_sample_subset(const struct evals_sample *x);
/* What this sample's metric reads of generated text (evals_metric_input). */
char *evals_sample_prediction(const struct evals_sample *x, const char *generated);
/* Scores generated text against this sample (evals_score_text with its references). */
int evals_sample_score(const struct evals_sample *x, const char *generated,
                       struct evals_score *out, struct jb_err *err);

/* ---------------------------------------------------------------------------------------------
 * Predictions files (`joulebench score`): one JSON object a line,
 * {"id", "prediction", "references": [...], "choices": [...]?}; for pointing_f1 the references
 * are objects ({"circle": [cx, cy, r]}, {"box": [x0, y0, x1, y1]}, {"polygon": [x, y, ...]},
 * each with an optional "point": [x, y], or a list of 0/1 rows) and "width", "height" give the
 * image size in pixels. */

struct evals_prediction;
/* Parses one line (len bytes; `where` names it in messages, "preds.jsonl:7"). need_refs false:
 * only id and prediction are read (the references come from a dataset). */
int evals_prediction_parse(struct evals_prediction **out, const char *line, size_t len,
                           const char *where, bool need_refs, enum evals_metric m,
                           struct jb_err *err);
void evals_prediction_free(struct evals_prediction *p);
const char *evals_prediction_id(const struct evals_prediction *p);
const char *evals_prediction_text(const struct evals_prediction *p);
int evals_prediction_score(const struct evals_prediction *p, enum evals_metric m,
                           struct evals_score *out, struct jb_err *err);

/* ---------------------------------------------------------------------------------------------
 * Synthetic suites (evals.md §6) */

struct evals_synth_opts {
    uint64_t seed;
    int n;                  /* images per suite; 0: the defaults (200, 150, 200) */
    const char *font_path;  /* NULL: /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf */
};
struct evals_synth_result {
    int n_images[3];        /* synth-chart, synth-doc, synth-count */
    int n_questions[3];
};
/* Writes synth-chart/, synth-doc/ and synth-count/ under out_dir (created), each in a real
 * benchmark's layout with a manifest.json of SHA-256 digests. Same seed and library versions:
 * byte-identical files. */
int evals_synth_write(const char *out_dir, const struct evals_synth_opts *o,
                      struct evals_synth_result *res, struct jb_err *err);


#endif /* EVALS_H */
