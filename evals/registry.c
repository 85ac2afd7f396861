/* The suite registry (evals.md §7): one static row per benchmark. */
#include "config.h"

#include "evals/evals-impl.h"

#include <string.h>

#define SHORT 12  /* molmo.md §8: short answers */
#define LONG 192  /* counting and pointing */

static const struct evals_suite suites[] = {
    {"chartqa", NULL, EVALS_DOMAIN_CHART, evals_load_chartqa, EVALS_METRIC_RELAXED_ACCURACY,
     "chart_qa", "test", 2500, true, false, SHORT,
     "test/test_human.json + test/test_augmented.json ([{imgname, query, label}]), "
     "images test/png/<imgname>"},
    {"docvqa", NULL, EVALS_DOMAIN_DOC, evals_load_docvqa, EVALS_METRIC_ANLS, "doc_qa", "val",
     5349, true, false, SHORT,
     "val_v1.0_withQT.json or val_v1.0.json ({data:[{questionId, question, image, answers}]}), "
     "images relative to it (documents/x.png)"},
    {"infovqa", NULL, EVALS_DOMAIN_DOC, evals_load_infovqa, EVALS_METRIC_ANLS, "info_qa", "val",
     2801, true, false, SHORT,
     "infographicsVQA_val_v1.0_withQT.json ({data:[{questionId, question, image_local_name, "
     "answers}]}), images in infographicsvqa_images/, images/ or beside it"},
    {"textvqa", NULL, EVALS_DOMAIN_IMAGE, evals_load_textvqa, EVALS_METRIC_VQA_ACCURACY,
     "text_vqa", "val", 5000, true, false, SHORT,
     "TextVQA_0.5.1_val.json ({data:[{question_id, question, image_id, answers[10]}]}), "
     "images train_images/<image_id>.jpg"},
    {"vqav2", NULL, EVALS_DOMAIN_IMAGE, evals_load_vqav2, EVALS_METRIC_VQA_ACCURACY, "vqa2",
     "val", 214354, true, false, SHORT,
     "v2_OpenEnded_mscoco_val2014_questions.json + v2_mscoco_val2014_annotations.json, "
     "images val2014/COCO_val2014_%012d.jpg"},
    {"ai2d", NULL, EVALS_DOMAIN_CHART, evals_load_ai2d, EVALS_METRIC_MC_LETTER, "ai2_diagram",
     "test", 3088, true, false, SHORT,
     "[ai2d/]ai2d_test_ids.csv, questions/<id>.png.json ({questions:{text:{answerTexts, "
     "correctAnswer, questionId}}}), images/<id>.png"},
    {"countbenchqa", NULL, EVALS_DOMAIN_IMAGE, evals_load_jsonl, EVALS_METRIC_EXACT_COUNT,
     "point_count", "test", 490, true, false, LONG,
     "test.jsonl ({id, image, question, number}; image a path relative to DIR)"},
    {"pixmo-count", "pixmo_count", EVALS_DOMAIN_IMAGE, evals_load_jsonl,
     EVALS_METRIC_EXACT_COUNT, "point_count", "test", 540, true, false, LONG,
     "test.jsonl ({id?, image, label, count, points?, question?}; image a path relative to DIR)"},
    {"pixmo-points", "pixmo_points", EVALS_DOMAIN_IMAGE, evals_load_jsonl,
     EVALS_METRIC_POINTING_F1, "pointing", "test", 0, true, false, LONG,
     "test.jsonl ({id?, image, label, points, masks, width?, height?, question?})"},
    {"realworldqa", NULL, EVALS_DOMAIN_IMAGE, evals_load_jsonl, EVALS_METRIC_MC_LETTER,
     "a_okvqa_mc", "test", 765, true, false, SHORT,
     "test.jsonl ({id?, image, question, answer}); letter answers: mc_letter, others: "
     "relaxed_accuracy with the vqa2 style"},
    {"mmmu", NULL, EVALS_DOMAIN_DOC, evals_load_jsonl, EVALS_METRIC_MC_LETTER, "a_okvqa_mc",
     "validation", 900, true, false, SHORT,
     "validation.jsonl ({id, question, options, answer, question_type, image_1}); open "
     "questions: relaxed_accuracy with the vqa2 style"},
    {"mathvista", NULL, EVALS_DOMAIN_CHART, evals_load_jsonl, EVALS_METRIC_MC_LETTER,
     "a_okvqa_mc", "testmini", 1000, false, false, SHORT,
     "testmini.jsonl ({pid, question, image, choices, answer, question_type}); free-form: "
     "relaxed_accuracy with the vqa2 style (no GPT-4 extraction: not comparable)"},
    {"synth-chart", NULL, EVALS_DOMAIN_CHART, evals_load_chartqa, EVALS_METRIC_RELAXED_ACCURACY,
     "chart_qa", "test", 400, false, true, SHORT,
     "written by `joulebench synth` in the ChartQA layout (synth-chart/test/...)"},
    {"synth-doc", NULL, EVALS_DOMAIN_DOC, evals_load_docvqa, EVALS_METRIC_ANLS, "doc_qa", "val",
     450, false, true, SHORT,
     "written by `joulebench synth` in the DocVQA layout (synth-doc/val_v1.0.json)"},
    {"synth-count", "synth-image", EVALS_DOMAIN_IMAGE, evals_load_synth_count,
     EVALS_METRIC_EXACT_COUNT, "point_count", "test", 400, false, true, LONG,
     "written by `joulebench synth`: PixMo-Count layout count.jsonl + PixMo-Points layout "
     "points.jsonl (synth-count/)"},
};

const struct evals_suite *evals_suite_at(size_t i) {
    return i < sizeof suites / sizeof suites[0] ? &suites[i] : NULL;
}

const struct evals_suite *evals_suite_find(const char *name) {
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        if (strcmp(suites[i].name, name) == 0 ||
            (suites[i].alias && strcmp(suites[i].alias, name) == 0))
            return &suites[i];
    return NULL;
}

const char *evals_suite_name(const struct evals_suite *s) { return s->name; }
enum evals_domain evals_suite_domain(const struct evals_suite *s) { return s->domain; }
enum evals_metric evals_suite_metric(const struct evals_suite *s) { return s->metric; }
const char *evals_suite_style(const struct evals_suite *s) { return s->style; }
const char *evals_suite_split(const struct evals_suite *s) { return s->split; }
size_t evals_suite_n_expected(const struct evals_suite *s) { return s->n_expected; }
bool evals_suite_comparable(const struct evals_suite *s) { return s->comparable; }
const char *evals_suite_layout(const struct evals_suite *s) { return s->layout; }
bool evals_suite_is_synthetic(const struct evals_suite *s) { return s->synthetic; }

const char *evals_domain_name(enum evals_domain d) {
    switch (d) {
    case EVALS_DOMAIN_CHART: return "chart";
    case EVALS_DOMAIN_DOC: return "document";
    case EVALS_DOMAIN_IMAGE: return "image";
    }
    return "?";
}
