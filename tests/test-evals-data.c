/* Loaders on small files in each released format (written here, no network), the synthetic
 * suites (determinism, read back through the same loaders) and the score/suites/synth
 * commands. */
#include "config.h"

#include "evals/evals.h"

#include "common/jb-sha256.h"

#include "common/jb-err.h"
#include "tests/jb-test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *tmp;

static void setup(void) { tmp = jb_test_tmpdir(); }
static void teardown(void) {
    jb_test_rmtree(tmp);
    free(tmp);
}

/* Writes text to tmp/rel, creating the directories on the way. */
static void put(const char *rel, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    for (char *p = path + strlen(tmp) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    jb_test_write_file(path, text, strlen(text));
}

static struct evals_loader *open_ok(const char *suite, bool skip_bad) {
    struct jb_err err = {0};
    struct evals_loader *l = NULL;
    struct evals_loader_opts o = {.skip_bad = skip_bad};
    int rc = evals_loader_open(&l, evals_suite_find(suite), tmp, &o, &err);
    cr_assert_eq(rc, 0, "%s: %s", suite, err.msg);
    return l;
}

static void open_fails(const char *suite, const char *want1, const char *want2) {
    struct jb_err err = {0};
    struct evals_loader *l = NULL;
    cr_assert_lt(evals_loader_open(&l, evals_suite_find(suite), tmp, NULL, &err), 0);
    cr_assert_null(l);
    cr_assert(strstr(err.msg, want1) && strstr(err.msg, want2), "message: %s", err.msg);
}

static const struct evals_sample *nth(struct evals_loader *l, size_t n) {
    const struct evals_sample *x = NULL;
    evals_loader_rewind(l);
    for (size_t i = 0; i <= n; i++) cr_assert_eq(evals_loader_next(l, &x), 1);
    return x;
}

TestSuite(loaders, .init = setup, .fini = teardown);

Test(loaders, chartqa_reads_human_and_augmented_json) {
    put("test/test_human.json",
        "[{\"imgname\": \"a.png\", \"query\": \"What is the max?\", \"label\": \"42\"},\n"
        " {\"imgname\": \"b.png\", \"query\": \"Which year?\", \"label\": \"2019\"}]");
    put("test/test_augmented.json", "[{\"imgname\": \"a.png\", \"query\": \"Q3\", \"label\": 7}]");
    put("test/png/a.png", "x");
    put("test/png/b.png", "x");
    struct evals_loader *l = open_ok("chartqa", false);
    cr_assert_eq(evals_loader_n_samples(l), 3);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_str_eq(evals_sample_prompt(x), "chart_qa: What is the max?");
    cr_assert_str_eq(evals_sample_ref(x, 0), "42");
    cr_assert_str_eq(evals_sample_subset(x), "human");
    cr_assert_eq(evals_sample_max_new_tokens(x), 12);
    cr_assert(strstr(evals_sample_image_path(x), "test/png/a.png"));
    x = nth(l, 2);
    cr_assert_str_eq(evals_sample_subset(x), "augmented");
    cr_assert_str_eq(evals_sample_ref(x, 0), "7"); /* a number label becomes its text */
    struct evals_score sc;
    cr_assert_eq(evals_sample_score(x, "7.2", &sc, NULL), 0);
    cr_assert_eq(sc.score, 1.0); /* 0.2/7 = 0.029 */
    evals_loader_close(l);
}

Test(loaders, missing_image_names_file_and_record_and_skip_bad_counts_it) {
    put("test/test_human.json",
        "[{\"imgname\": \"a.png\", \"query\": \"q\", \"label\": \"1\"},\n"
        " {\"imgname\": \"gone.png\", \"query\": \"q\", \"label\": \"2\"},\n"
        " {\"imgname\": \"a.png\", \"label\": \"3\"}]");
    put("test/png/a.png", "x");
    open_fails("chartqa", "test_human.json: record 1", "gone.png");
    struct evals_loader *l = open_ok("chartqa", true);
    cr_assert_eq(evals_loader_n_samples(l), 1);
    cr_assert_eq(evals_loader_n_bad(l), 2);
    cr_assert(strstr(evals_loader_bad(l, 1), "record 2: missing field 'query'"), "%s",
              evals_loader_bad(l, 1));
    evals_loader_close(l);
}

Test(loaders, json_syntax_errors_give_file_line_and_column) {
    put("test/test_human.json", "[{\"imgname\": \"a.png\",\n \"query\" \"q\"}]");
    open_fails("chartqa", "test_human.json:2:", "invalid JSON");
}

Test(loaders, docvqa_reads_the_rrc_json) {
    put("val_v1.0.json", "{\"dataset_split\": \"val\", \"data\": [{\"questionId\": 57349, "
                         "\"question\": \"What is the date?\", \"image\": \"documents/x.png\", "
                         "\"docId\": 1, \"answers\": [\"1/2/90\", \"Jan 2, 1990\"]}]}");
    put("documents/x.png", "x");
    struct evals_loader *l = open_ok("docvqa", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_str_eq(evals_sample_id(x), "57349");
    cr_assert_str_eq(evals_sample_prompt(x), "doc_qa: What is the date?");
    cr_assert_eq(evals_sample_n_refs(x), 2);
    cr_assert_str_eq(evals_sample_ref(x, 1), "Jan 2, 1990");
    cr_assert_eq(evals_sample_metric(x), EVALS_METRIC_ANLS);
    evals_loader_close(l);
}

Test(loaders, docvqa_test_split_without_answers_is_an_error) {
    put("val_v1.0.json", "{\"data\": [{\"questionId\": 1, \"question\": \"q\", "
                         "\"image\": \"documents/x.png\"}]}");
    put("documents/x.png", "x");
    open_fails("docvqa", "data[0]", "no 'answers'");
}

Test(loaders, infovqa_finds_images_by_local_name) {
    put("infographicsVQA_val_v1.0_withQT.json",
        "{\"data\": [{\"questionId\": 98, \"question\": \"How many?\", "
        "\"image_local_name\": \"38.jpeg\", \"answers\": [\"5\"], \"answer_type\": []}]}");
    put("infographicsvqa_images/38.jpeg", "x");
    struct evals_loader *l = open_ok("infovqa", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert(strstr(evals_sample_image_path(x), "infographicsvqa_images/38.jpeg"));
    cr_assert_str_eq(evals_sample_prompt(x), "info_qa: How many?");
    evals_loader_close(l);
}

Test(loaders, textvqa_reads_ten_answers) {
    put("TextVQA_0.5.1_val.json",
        "{\"data\": [{\"question_id\": 34602, \"question\": \"what brand?\", "
        "\"image_id\": \"003a8ae2ef43b901\", \"image_width\": 1024, \"image_height\": 664, "
        "\"answers\": [\"nous les gosses\", \"dakota\", \"clos culombu\", \"dakota\", \"dakota\","
        " \"dakota\", \"dakota\", \"dakota\", \"dakota\", \"dakota\"]}]}");
    put("train_images/003a8ae2ef43b901.jpg", "x");
    struct evals_loader *l = open_ok("textvqa", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_eq(evals_sample_n_refs(x), 10);
    cr_assert_str_eq(evals_sample_prompt(x), "text_vqa: what brand?");
    struct evals_score sc;
    /* "Dakota" -> "dakota": 8 matches -> 1 */
    cr_assert_eq(evals_sample_score(x, "Dakota", &sc, NULL), 0);
    cr_assert_eq(sc.score, 1.0);
    evals_loader_close(l);
}

Test(loaders, vqav2_joins_questions_and_annotations) {
    put("v2_OpenEnded_mscoco_val2014_questions.json",
        "{\"questions\": [{\"question_id\": 262148000, \"image_id\": 262148, "
        "\"question\": \"Where is he looking?\"}]}");
    put("v2_mscoco_val2014_annotations.json",
        "{\"annotations\": [{\"question_id\": 262148000, \"answer_type\": \"other\", "
        "\"multiple_choice_answer\": \"down\", \"answers\": ["
        "{\"answer\": \"down\", \"answer_confidence\": \"yes\", \"answer_id\": 1},"
        "{\"answer\": \"at table\", \"answer_confidence\": \"yes\", \"answer_id\": 2}]}]}");
    put("val2014/COCO_val2014_000000262148.jpg", "x");
    struct evals_loader *l = open_ok("vqav2", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_str_eq(evals_sample_id(x), "262148000");
    cr_assert_eq(evals_sample_n_refs(x), 2);
    cr_assert_str_eq(evals_sample_ref(x, 1), "at table");
    cr_assert_str_eq(evals_sample_prompt(x), "vqa2: Where is he looking?");
    evals_loader_close(l);
}

Test(loaders, ai2d_formats_the_options_and_the_letter) {
    put("ai2d_test_ids.csv", "4\n");
    put("questions/4.png.json",
        "{\"imageName\": \"4.png\", \"questions\": {\"Which is the sun?\": {\"abcLabel\": false,"
        " \"answerTexts\": [\"A\", \"moon\", \"sun\", \"earth\"], \"correctAnswer\": 2, "
        "\"questionId\": \"4.png-0\"}}}");
    put("images/4.png", "x");
    struct evals_loader *l = open_ok("ai2d", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_str_eq(evals_sample_prompt(x),
                     "ai2_diagram: Which is the sun?\nA: A\nB: moon\nC: sun\nD: earth\n");
    cr_assert_str_eq(evals_sample_ref(x, 0), "C");
    struct evals_score sc;
    cr_assert_eq(evals_sample_score(x, "sun", &sc, NULL), 0); /* option text -> C */
    cr_assert_eq(sc.score, 1.0);
    evals_loader_close(l);
}

Test(loaders, jsonl_malformed_line_is_named_and_skip_bad_counts_it) {
    put("test.jsonl", "{\"image\": \"i/1.jpg\", \"label\": \"dogs\", \"count\": 3}\n"
                      "\n"
                      "{\"image\": \"i/1.jpg\", \"label\": \"cats\", \"count\": \n"
                      "{\"image\": \"i/2.jpg\", \"label\": \"cats\", \"count\": 2}\n");
    put("i/1.jpg", "x");
    open_fails("pixmo-count", "test.jsonl:3", "invalid JSON");
    struct evals_loader *l = open_ok("pixmo-count", true);
    cr_assert_eq(evals_loader_n_samples(l), 1); /* line 4's image is missing too */
    cr_assert_eq(evals_loader_n_bad(l), 2);
    cr_assert(strstr(evals_loader_bad(l, 1), "test.jsonl:4: image"), "%s", evals_loader_bad(l, 1));
    const struct evals_sample *x = nth(l, 0);
    cr_assert_str_eq(evals_sample_prompt(x), "point_count: How many dogs are there?");
    cr_assert_eq(evals_sample_max_new_tokens(x), 192);
    evals_loader_close(l);
}

Test(loaders, mmmu_options_as_a_python_list_and_open_questions) {
    put("validation.jsonl",
        "{\"id\": \"validation_Art_1\", \"question\": \"Which one? <image 1>\", "
        "\"options\": \"['Tom\\\\'s', \\\"x\\\"]\", \"answer\": \"B\", "
        "\"question_type\": \"multiple-choice\", \"image_1\": \"img/1.png\"}\n"
        "{\"id\": \"validation_Math_2\", \"question\": \"Solve x\", \"options\": \"[]\", "
        "\"answer\": \"4.5\", \"question_type\": \"open\", \"image_1\": null}\n");
    put("img/1.png", "x");
    struct evals_loader *l = open_ok("mmmu", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_str_eq(evals_sample_prompt(x), "a_okvqa_mc: Which one? <image 1>\nA: Tom's\nB: x\n");
    cr_assert_eq(evals_sample_metric(x), EVALS_METRIC_MC_LETTER);
    x = nth(l, 1);
    cr_assert_null(evals_sample_image_path(x));
    cr_assert_str_eq(evals_sample_prompt(x), "vqa2: Solve x");
    cr_assert_eq(evals_sample_metric(x), EVALS_METRIC_RELAXED_ACCURACY);
    evals_loader_close(l);
}

Test(loaders, mathvista_answer_text_becomes_its_letter) {
    put("testmini.jsonl", "{\"pid\": \"1\", \"question\": \"Which is larger?\", \"image\": "
                          "\"images/1.jpg\", \"choices\": [\"3\", \"5\"], \"answer\": \"5\", "
                          "\"question_type\": \"multi_choice\"}\n");
    put("images/1.jpg", "x");
    struct evals_loader *l = open_ok("mathvista", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_str_eq(evals_sample_ref(x, 0), "B");
    cr_assert_not(evals_suite_comparable(evals_suite_find("mathvista")));
    evals_loader_close(l);
}

Test(loaders, pixmo_points_bitmap_masks_and_size_from_the_png_header) {
    /* a PNG signature and IHDR of a 4 x 2 image: enough for the size */
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                        'I',  'H', 'D', 'R', 0, 0, 0, 4, 0, 0, 0, 2};
    char path[4096];
    put("test.jsonl", "{\"image\": \"p.png\", \"label\": \"the dot\", "
                      "\"masks\": [[[0, 0, 0, 0], [0, 0, 1, 0]]]}\n");
    snprintf(path, sizeof path, "%s/p.png", tmp);
    jb_test_write_file(path, png, sizeof png);
    struct evals_loader *l = open_ok("pixmo-points", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_eq(evals_sample_width(x), 4);
    cr_assert_eq(evals_sample_height(x), 2);
    cr_assert_str_eq(evals_sample_prompt(x), "pointing: Point to the dot");
    struct evals_score sc;
    /* x: 50% of 4 = 2, y: 50% of 2 = 1: pixel (2, 1), the one set in the mask */
    cr_assert_eq(evals_sample_score(x, "<point x=\"50.0\" y=\"50.0\" alt=\"d\">d</point>", &sc,
                                    NULL), 0);
    cr_assert_eq(sc.score, 1.0);
    evals_loader_close(l);
}

Test(loaders, realworldqa_letter_answers_are_multiple_choice) {
    put("test.jsonl", "{\"image\": \"a.webp\", \"question\": \"Which way?\\nA. left\\nB. right\\n"
                      "Please answer directly with only the letter.\", \"answer\": \"B\"}\n"
                      "{\"image\": \"a.webp\", \"question\": \"How many cars?\", "
                      "\"answer\": \"3\"}\n");
    put("a.webp", "x");
    struct evals_loader *l = open_ok("realworldqa", false);
    cr_assert_eq(evals_sample_metric(nth(l, 0)), EVALS_METRIC_MC_LETTER);
    cr_assert_eq(evals_sample_metric(nth(l, 1)), EVALS_METRIC_RELAXED_ACCURACY);
    cr_assert_str_eq(evals_sample_prompt(nth(l, 1)), "vqa2: How many cars?");
    evals_loader_close(l);
}

Test(loaders, a_missing_dataset_names_the_expected_files) {
    open_fails("textvqa", "TextVQA_0.5.1_val.json", "train_images");
    cr_assert_not_null(evals_suite_find("synth-image")); /* evals.md's name for synth-count */
    cr_assert_null(evals_suite_find("nope"));
}

/* ---------------------------------------------------------------------------------------------
 * Synthetic suites */

TestSuite(synth, .init = setup, .fini = teardown);

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void gen(const char *sub, uint64_t seed, int n) {
    char out[4096];
    snprintf(out, sizeof out, "%s/%s", tmp, sub);
    struct evals_synth_opts o = {.seed = seed, .n = n};
    struct evals_synth_result r;
    struct jb_err err = {0};
    cr_assert_eq(evals_synth_write(out, &o, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n_images[0], n);
    cr_assert_eq(r.n_questions[0], 2 * n);
    cr_assert_eq(r.n_questions[1], 3 * n);
    cr_assert_eq(r.n_questions[2], 2 * n);
}

static char *manifest(const char *sub, const char *suite) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/%s/manifest.json", tmp, sub, suite);
    return slurp(p);
}

Test(synth, same_seed_gives_identical_digests_another_seed_different_files) {
    gen("a", 7, 3);
    gen("b", 7, 3);
    gen("c", 8, 3);
    static const char *const suites[] = {"synth-chart", "synth-doc", "synth-count"};
    for (int i = 0; i < 3; i++) {
        char *a = manifest("a", suites[i]), *b = manifest("b", suites[i]),
             *c = manifest("c", suites[i]);
        cr_assert_str_eq(a, b, "%s differs between two runs with seed 7", suites[i]);
        /* the file digests, past the seed line, differ for seed 8 */
        cr_assert_str_neq(strstr(a, "\"files\""), strstr(c, "\"files\""), "%s", suites[i]);
        free(a);
        free(b);
        free(c);
    }
    /* the manifest's digest is the file's SHA-256 */
    char path[4096], hex[65];
    snprintf(path, sizeof path, "%s/a/synth-doc/val_v1.0.json", tmp);
    cr_assert_eq(jb_sha256_file(path, hex, NULL), 0);
    char *m = manifest("a", "synth-doc");
    cr_assert(strstr(m, hex), "digest %s not in the manifest", hex);
    free(m);
}

Test(synth, sha256_matches_the_fips_180_2_vector) {
    char path[4096], hex[65];
    snprintf(path, sizeof path, "%s/abc", tmp);
    jb_test_write_file(path, "abc", 3);
    cr_assert_eq(jb_sha256_file(path, hex, NULL), 0);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(synth, suites_load_through_the_real_format_loaders_and_score_their_references) {
    gen("s", 3, 4);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/s", tmp);
    struct jb_err err = {0};
    static const struct { const char *suite; size_t n; } want[] = {
        {"synth-chart", 8}, {"synth-doc", 12}, {"synth-count", 8}};
    for (int i = 0; i < 3; i++) {
        struct evals_loader *l = NULL;
        cr_assert_eq(evals_loader_open(&l, evals_suite_find(want[i].suite), dir, NULL, &err), 0,
                     "%s", err.msg);
        cr_assert_eq(evals_loader_n_samples(l), want[i].n, "%s", want[i].suite);
        const struct evals_sample *x;
        while (evals_loader_next(l, &x) == 1) {
            struct evals_score sc;
            char answer[256];
            if (evals_sample_metric(x) == EVALS_METRIC_POINTING_F1) {
                /* no reference strings; a miss scores 0 */
                cr_assert_eq(evals_sample_score(x, "There are none.", &sc, NULL), 0);
                cr_assert_eq(sc.score, 0.0);
                continue;
            }
            /* the reference itself, as a model would say it, scores 1 */
            snprintf(answer, sizeof answer, "%s", evals_sample_ref(x, 0));
            cr_assert_eq(evals_sample_score(x, answer, &sc, &err), 0, "%s", err.msg);
            cr_assert_eq(sc.score, 1.0, "%s: %s", evals_sample_id(x), answer);
        }
        evals_loader_close(l);
    }
}

/* synth-count asks counts spread evenly over 2..10 (CountBenchQA's range): a model that always
 * gives one answer cannot score more than about 1 in 9 without looking. */
Test(synth, count_questions_ask_every_count_from_2_to_10_about_equally_often) {
    enum { N = 180 };
    gen("e", 11, N);
    char path[4096];
    snprintf(path, sizeof path, "%s/e/synth-count/count.jsonl", tmp);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    int hist[16] = {0}, lines = 0;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        cr_assert_not_null(o, "%s:%d: %s", path, lines + 1, je.text);
        json_int_t c = json_integer_value(json_object_get(o, "count"));
        size_t npts = json_array_size(json_object_get(json_object_get(o, "points"), "x"));
        /* the reference count is the number of instances drawn (their centres are listed) */
        cr_assert_eq((size_t)c, npts, "line %d: count %lld, %zu points", lines + 1,
                     (long long)c, npts);
        cr_assert(c >= 2 && c <= 10, "line %d: count %lld outside 2..10", lines + 1,
                  (long long)c);
        hist[c]++;
        lines++;
        json_decref(o);
    }
    fclose(f);
    cr_assert_eq(lines, N);
    /* expected N/9 = 20 each; a binomial(180, 1/9) lies in 8..32 with probability > 0.998 */
    for (int c = 2; c <= 10; c++)
        cr_assert(hist[c] >= 8 && hist[c] <= 32, "count %d asked %d times of %d", c, hist[c],
                  N);
}

/* ---------------------------------------------------------------------------------------------
 * Commands */

TestSuite(cli, .init = setup, .fini = teardown);

Test(cli, score_stops_at_a_malformed_line_and_skip_bad_counts_it) {
    put("p.jsonl", "{\"id\": 1, \"prediction\": \"5%\", \"references\": [\"5%\"]}\n"
                   "{\"id\": 2, \"prediction\": \n"
                   "{\"id\": 3, \"prediction\": \"B\", \"references\": [\"A\"]}\n");
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' score --metric relaxed_accuracy --predictions '%s/p.jsonl'",
                jb_test_bin(), tmp);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "p.jsonl:2"), "stderr: %s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' score --metric relaxed_accuracy --predictions '%s/p.jsonl' "
                    "--skip-bad --json '%s/o.json'", jb_test_bin(), tmp, tmp);
    cr_assert_eq(p.status, 0, "stderr: %s", p.err);
    cr_assert(strstr(p.err, "skipped 1"), "stderr: %s", p.err);
    jb_test_proc_free(&p);
    char path[4096];
    snprintf(path, sizeof path, "%s/o.json", tmp);
    char *o = slurp(path);
    /* 1 of 2 correct: mean .5; Wilson [.0945, .9055] */
    cr_assert(strstr(o, "\"metric\": \"relaxed_accuracy\"") && strstr(o, "\"n\": 2") &&
              strstr(o, "\"mean\": 0.5") && strstr(o, "0.0945") && strstr(o, "\"id\": \"3\""),
              "%s", o);
    free(o);
}

Test(cli, score_takes_references_from_a_suite) {
    put("val_v1.0.json", "{\"data\": [{\"questionId\": 5, \"question\": \"q\", \"image\": "
                         "\"x.png\", \"answers\": [\"abcd\"]}]}");
    put("x.png", "x");
    put("p.jsonl", "{\"id\": \"5\", \"prediction\": \"abce\"}\n");
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' score --suite docvqa --data '%s' --predictions '%s/p.jsonl' "
                    "--json '%s/o.json'", jb_test_bin(), tmp, tmp, tmp);
    cr_assert_eq(p.status, 0, "stderr: %s", p.err);
    cr_assert(strstr(p.out, "0.7500"), "stdout: %s", p.out); /* lev 1 / 4 */
    jb_test_proc_free(&p);
    put("q.jsonl", "{\"id\": \"6\", \"prediction\": \"abce\"}\n");
    jb_test_run(&p, "'%s' score --suite docvqa --data '%s' --predictions '%s/q.jsonl'",
                jb_test_bin(), tmp, tmp);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "q.jsonl:1: id '6' is not in docvqa"), "stderr: %s", p.err);
    jb_test_proc_free(&p);
}

Test(cli, suites_lists_every_benchmark_with_its_metric) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' suites --json", jb_test_bin());
    cr_assert_eq(p.status, 0);
    static const char *const names[] = {
        "chartqa", "docvqa", "infovqa", "textvqa", "vqav2", "ai2d", "countbenchqa",
        "pixmo-count", "pixmo-points", "realworldqa", "mmmu", "mathvista", "synth-chart",
        "synth-doc", "synth-count"};
    for (int i = 0; i < 15; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"name\": \"%s\"", names[i]);
        cr_assert(strstr(p.out, key), "%s missing", names[i]);
    }
    cr_assert(strstr(p.out, "\"metric\": \"vqa_accuracy\""));
    jb_test_proc_free(&p);
}

Test(cli, synth_writes_three_suites) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' synth --out '%s/o' --seed 5 --n 2", jb_test_bin(), tmp);
    cr_assert_eq(p.status, 0, "stderr: %s", p.err);
    cr_assert(strstr(p.out, "synth-doc") && strstr(p.out, "6 questions"), "%s", p.out);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' synth --out '%s/o' --n 0", jb_test_bin(), tmp);
    cr_assert_eq(p.status, 2);
    jb_test_proc_free(&p);
}



/* evals.md §6: regenerate and compare with the digests recorded in tests/data. This is a
 * reproducibility check against an earlier run (not a correctness oracle): with the recorded
 * cairo/FreeType/zlib versions a mismatch is an error; with others it is only reported. */
Test(synth, digests_match_the_recorded_run_for_the_same_library_versions) {
    char path[4096];
    snprintf(path, sizeof path, "%s/synth-seed0-n2.json", jb_test_data_dir());
    json_error_t je;
    json_t *want = json_load_file(path, 0, &je);
    cr_assert_not_null(want, "%s: %s", path, je.text);
    gen("g", 0, 2);
    snprintf(path, sizeof path, "%s/g/synth-chart/manifest.json", tmp);
    json_t *m = json_load_file(path, 0, &je);
    cr_assert_not_null(m);
    bool same_libs =
        json_equal(json_object_get(m, "libraries"), json_object_get(want, "libraries"));
    const char *suite;
    json_t *digest;
    json_object_foreach(json_object_get(want, "manifests"), suite, digest) {
        char hex[65];
        snprintf(path, sizeof path, "%s/g/%s/manifest.json", tmp, suite);
        cr_assert_eq(jb_sha256_file(path, hex, NULL), 0);
        if (strcmp(hex, json_string_value(digest)) == 0) continue;
        if (same_libs)
            cr_assert_fail("%s: manifest digest %s, recorded %s with the same cairo, FreeType "
                           "and zlib: the output is not deterministic", suite, hex,
                           json_string_value(digest));
        cr_log_warn("%s: digests differ from the recorded run, made with other library "
                    "versions (see manifest.json 'libraries')", suite);
    }
    json_decref(m);
    json_decref(want);
}

Test(loaders, options_limit_no_style_and_the_dataset_digest) {
    put("test.jsonl", "{\"image\": \"a.jpg\", \"question\": \"How many?\", \"number\": 2}\n"
                      "{\"image\": \"a.jpg\", \"question\": \"And now?\", \"number\": 3}\n");
    put("a.jpg", "x");
    struct jb_err err = {0};
    struct evals_loader *l = NULL;
    struct evals_loader_opts o = {.limit = 1, .no_style = true};
    cr_assert_eq(evals_loader_open(&l, evals_suite_find("countbenchqa"), tmp, &o, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(evals_loader_n_samples(l), 1);
    cr_assert_str_eq(evals_sample_prompt(nth(l, 0)), "How many?");
    char d1[65];
    snprintf(d1, sizeof d1, "%s", evals_loader_digest(l));
    evals_loader_close(l);
    /* SHA-256 of the annotation file's bytes (FIPS 180-2 over the text written above) */
    char path[4096], hex[65];
    snprintf(path, sizeof path, "%s/test.jsonl", tmp);
    /* with a limit the whole file was still read: the digest is the file's */
    jb_sha256_file(path, hex, NULL);
    cr_assert_str_eq(d1, hex);
}

Test(loaders, mmmu_items_with_image_options_go_without_an_image) {
    put("validation.jsonl",
        "{\"id\": \"v_1\", \"question\": \"Which? <image 1>\", \"options\": "
        "[\"<image 2>\", \"<image 3>\"], \"answer\": \"A\", \"question_type\": "
        "\"multiple-choice\", \"image_1\": \"1.png\"}\n");
    put("1.png", "x");
    struct evals_loader *l = open_ok("mmmu", false);
    const struct evals_sample *x = nth(l, 0);
    cr_assert_null(evals_sample_image_path(x));
    cr_assert_str_eq(evals_sample_subset(x), "degraded");
    evals_loader_close(l);
}
