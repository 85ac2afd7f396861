#include "config.h"

#include "evals/evals.h"

#include "common/jb-err.h"

#include "tests/jb-test.h"

#include <stdlib.h>

static void check(const char *text, const char *want) {
    char *got = evals_answer_extract(text);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, want, "extract(\"%s\")", text);
    free(got);
}

/* Worked by hand from evals.md §3. */
Test(answer, text_between_first_and_second_answer_tag) {
    check("Let me think. Answer: 42 Answer: 17", "42");
    check("Answer:  Paris  ", "Paris");
    check("x Answer:\n  two\twords\n", "two words");
}

Test(answer, most_frequent_line_wins_ties_go_to_the_earliest) {
    check("cat\ndog\ndog\ncat\n  dog  ", "dog");
    check("blue\nred", "blue");
    check("a  b\n\n\na b\nc", "a b");
}

Test(answer, single_line_collapses_whitespace) {
    check("  The   answer\tis 5  ", "The answer is 5");
    check("", "");
}

/* ---------------------------------------------------------------------------------------------
 * Metrics. Every expected value below is worked by hand from the rules in evals.md §4; the
 * comment beside each case is the derivation. */

#include <math.h>
#include <string.h>

#define REFS(...) ((const char *const[]){__VA_ARGS__}), \
    (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

#define NEAR(got, want) cr_assert(fabs((got) - (want)) < 1e-9, "got %.12f, want %.12f", \
                                  (double)(got), (double)(want))

Test(relaxed_accuracy, numbers_within_five_percent_are_correct) {
    NEAR(evals_relaxed_accuracy("12", REFS("12")), 1.0);     /* equal */
    NEAR(evals_relaxed_accuracy("12.6", REFS("12")), 1.0);   /* 0.6/12 = 0.05 <= 0.05 */
    NEAR(evals_relaxed_accuracy("12.7", REFS("12")), 0.0);   /* 0.7/12 = 0.058 > 0.05 */
    NEAR(evals_relaxed_accuracy("-3", REFS("3")), 0.0);      /* |-6|/3 = 2 */
    NEAR(evals_relaxed_accuracy("1e2", REFS("100")), 1.0);   /* float("1e2") = 100 */
    NEAR(evals_relaxed_accuracy(" 7 ", REFS("7")), 1.0);     /* float() strips whitespace */
}

Test(relaxed_accuracy, percent_signs_divide_by_one_hundred) {
    NEAR(evals_relaxed_accuracy("5%", REFS("5")), 0.0);      /* 0.05 vs 5: |4.95|/5 = 0.99 */
    NEAR(evals_relaxed_accuracy("5", REFS("5%")), 0.0);      /* 5 vs 0.05: 99 */
    NEAR(evals_relaxed_accuracy("5%", REFS("5%")), 1.0);     /* 0.05 vs 0.05 */
    NEAR(evals_relaxed_accuracy("20.5%", REFS("0.2")), 1.0); /* 0.205 vs 0.2: 0.025 */
    NEAR(evals_relaxed_accuracy("50%%", REFS("0.5")), 1.0);  /* all trailing % dropped: 0.5 */
}

Test(relaxed_accuracy, thousands_separators_and_currency_are_not_numbers) {
    NEAR(evals_relaxed_accuracy("1,000", REFS("1000")), 0.0); /* no parse: "1,000" != "1000" */
    NEAR(evals_relaxed_accuracy("1_000", REFS("1000")), 1.0); /* float("1_000") = 1000 */
    NEAR(evals_relaxed_accuracy("1__000", REFS("1000")), 0.0);/* one _ only: strings differ */
    NEAR(evals_relaxed_accuracy("$5", REFS("5")), 0.0);       /* no parse: "$5" != "5" */
    NEAR(evals_relaxed_accuracy("0x10", REFS("16")), 0.0);    /* no hex: strings differ */
}

Test(relaxed_accuracy, zero_references_and_words_compare_as_strings) {
    NEAR(evals_relaxed_accuracy("0", REFS("0")), 1.0);        /* ref 0: string "0" == "0" */
    NEAR(evals_relaxed_accuracy("0.0", REFS("0")), 0.0);      /* ref 0: "0.0" != "0" */
    NEAR(evals_relaxed_accuracy("Yes", REFS("yes")), 1.0);    /* lower() equal */
    NEAR(evals_relaxed_accuracy("ÄPFEL", REFS("äpfel")), 1.0);/* Unicode lower() */
    NEAR(evals_relaxed_accuracy("Paris", REFS("London", "paris")), 1.0); /* max over refs */
    NEAR(evals_relaxed_accuracy("inf", REFS("inf")), 0.0);    /* |inf-inf|/inf = nan: not <= */
}

Test(python_float, accepts_exactly_the_python_grammar) {
    double v;
    cr_assert(evals_parse_pyfloat("  -1_0.5e-1 ", &v));
    NEAR(v, -1.05);
    cr_assert(evals_parse_pyfloat(".5", &v) && v == 0.5);
    cr_assert(evals_parse_pyfloat("5.", &v) && v == 5.0);
    cr_assert(evals_parse_pyfloat("-Infinity", &v) && isinf(v) && v < 0);
    cr_assert(evals_parse_pyfloat("NaN", &v) && isnan(v));
    cr_assert_not(evals_parse_pyfloat(".", &v));
    cr_assert_not(evals_parse_pyfloat("_1", &v));
    cr_assert_not(evals_parse_pyfloat("1_", &v));
    cr_assert_not(evals_parse_pyfloat("1e", &v));
    cr_assert_not(evals_parse_pyfloat("0x1p3", &v));
    cr_assert_not(evals_parse_pyfloat("1,5", &v));
    cr_assert_not(evals_parse_pyfloat("", &v));
}

Test(anls, identical_after_trim_and_lowercase_scores_one) {
    NEAR(evals_anls("hello", REFS("hello")), 1.0);
    NEAR(evals_anls("  Hello ", REFS("hello")), 1.0);
    NEAR(evals_anls("CAFÉ", REFS("café")), 1.0);     /* Unicode lowercase */
    NEAR(evals_anls(" ÉTÉ ", REFS("été")), 1.0);
    NEAR(evals_anls("", REFS("")), 1.0);             /* both empty: NL = 0 */
}

Test(anls, just_above_and_below_the_half_threshold) {
    NEAR(evals_anls("abcd", REFS("abce")), 0.75);         /* lev 1 / 4 = .25 */
    NEAR(evals_anls("ab", REFS("abcd")), 0.0);            /* 2/4 = .5 exactly: 0 */
    NEAR(evals_anls("abc", REFS("abcdef")), 0.0);         /* 3/6 = .5 exactly: 0 */
    NEAR(evals_anls("abcd", REFS("abcdefg")), 4.0 / 7);   /* 3/7 = .43 < .5: 1 - 3/7 */
    NEAR(evals_anls("abc", REFS("abcdefg")), 0.0);        /* 4/7 = .57 >= .5 */
    NEAR(evals_anls("kitten", REFS("sitting")), 4.0 / 7); /* lev 3 (k->s, e->i, +g) / 7 */
    NEAR(evals_anls("ab", REFS("ba")), 0.0);              /* no transposition: lev 2 / 2 */
    NEAR(evals_anls("", REFS("abc")), 0.0);               /* 3/3 */
}

Test(anls, distance_counts_code_points_and_takes_the_best_reference) {
    NEAR(evals_anls("café", REFS("cafe")), 0.75);          /* 4 code points, 1 edit (bytes: .6) */
    NEAR(evals_anls("日本語", REFS("日本")), 2.0 / 3);      /* 1 deletion / 3 */
    NEAR(evals_anls("abcd", REFS("xyz", "abcx")), 0.75);   /* max(0, .75) */
    NEAR(evals_anls("abcdefghij", REFS("abcdefghi")), 0.9);/* 1/10 */
    NEAR(evals_anls("12345678901", REFS("1234567890")), 10.0 / 11);
}

/* 10 human answers: k copies of `yes`, the rest `other`. */
static double vqa10(double (*f)(const char *, const char *const *, size_t), const char *pred,
                    const char *yes, int k, const char *other) {
    const char *refs[10];
    for (int i = 0; i < 10; i++) refs[i] = i < k ? yes : other;
    return f(pred, refs, 10);
}

Test(vqa_accuracy, leave_one_out_gives_0_3_6_9_and_1_for_0_to_4_matches) {
    /* k matches: mean over 10 of min(1, matches among the other 9 / 3):
     * k=1: (1*0 + 9*1/3)/10 = .3; k=2: (2*1/3 + 8*2/3)/10 = .6; k=3: (3*2/3 + 7*1)/10 = .9 */
    NEAR(vqa10(evals_vqa_accuracy, "cat", "cat", 0, "dog"), 0.0);
    NEAR(vqa10(evals_vqa_accuracy, "cat", "cat", 1, "dog"), 0.3);
    NEAR(vqa10(evals_vqa_accuracy, "cat", "cat", 2, "dog"), 0.6);
    NEAR(vqa10(evals_vqa_accuracy, "cat", "cat", 3, "dog"), 0.9);
    NEAR(vqa10(evals_vqa_accuracy, "cat", "cat", 4, "dog"), 1.0);
}

Test(vqa_accuracy, prediction_number_words_articles_and_punctuation_are_normalised) {
    NEAR(vqa10(evals_vqa_accuracy, "two", "2", 10, "2"), 1.0);     /* two -> 2 */
    NEAR(vqa10(evals_vqa_accuracy, "none", "0", 2, "1"), 0.6);     /* none -> 0, k=2 */
    NEAR(vqa10(evals_vqa_accuracy, "a dog", "dog", 1, "cat"), 0.3);/* article dropped, k=1 */
    /* "The dog." -> '.' not before a digit deleted -> "the dog" -> "dog"; k=2 */
    NEAR(vqa10(evals_vqa_accuracy, "The dog.", "dog", 2, "cat"), 0.6);
    /* '!' with no space beside it and no digit,digit: replaced by a space, then split */
    NEAR(vqa10(evals_vqa_accuracy, "yes!", "yes", 10, "yes"), 1.0);
    /* "3.5": the period before a digit survives; k=3 */
    NEAR(vqa10(evals_vqa_accuracy, "3.5", "3.5", 3, "4"), 0.9);
    /* "a.m." -> "am" (periods not before digits go); "am" is not an article */
    NEAR(vqa10(evals_vqa_accuracy, "a.m.", "am", 10, "am"), 1.0);
}

Test(vqa_accuracy, commas_between_digits_delete_every_punctuation_mark) {
    /* digit,digit anywhere: every ',' deleted: "1,000" -> "1000"; k=3 */
    NEAR(vqa10(evals_vqa_accuracy, "1,000", "1000", 3, "100"), 0.9);
    /* ", " (followed by a space): deleted -> "red white"; k=4 */
    NEAR(vqa10(evals_vqa_accuracy, "red, white", "red white", 4, "blue"), 1.0);
    /* "red,white": no space beside, no digits: replaced by a space -> "red white"; k=4 */
    NEAR(vqa10(evals_vqa_accuracy, "red,white", "red white", 4, "blue"), 1.0);
}

Test(vqa_accuracy, contractions_follow_the_official_table) {
    NEAR(vqa10(evals_vqa_accuracy, "dont", "don't", 4, "do"), 1.0);       /* dont -> don't */
    NEAR(vqa10(evals_vqa_accuracy, "whats", "what's", 3, "what"), 0.9);   /* whats -> what's */
    /* the table's odd entry: somebody'd -> somebodyd; k=1 */
    NEAR(vqa10(evals_vqa_accuracy, "somebody'd", "somebodyd", 1, "x"), 0.3);
    /* key "Im" is capitalised, the word is lowercased first: "im" stays "im" != "i'm" */
    NEAR(vqa10(evals_vqa_accuracy, "Im", "i'm", 10, "i'm"), 0.0);
    /* two-level form: couldnt've -> couldn't've; k=2 */
    NEAR(vqa10(evals_vqa_accuracy, "couldnt've", "couldn't've", 2, "no"), 0.6);
}

Test(vqa_accuracy, references_get_punctuation_only_and_only_when_they_differ) {
    /* refs never get digits/articles: "two" -> "2" != "two" */
    NEAR(vqa10(evals_vqa_accuracy, "two", "two", 10, "two"), 0.0);
    NEAR(vqa10(evals_vqa_accuracy, "the cat", "the cat", 10, "the cat"), 0.0);
    /* identical refs untouched: "t-shirt" stays, the prediction becomes "t shirt" */
    NEAR(vqa10(evals_vqa_accuracy, "t-shirt", "t-shirt", 10, "t-shirt"), 0.0);
    /* refs differ: punctuation on each, 9 x "t shirt" match */
    NEAR(vqa10(evals_vqa_accuracy, "t-shirt", "t-shirt", 9, "shirt"), 1.0);
    /* newlines and tabs become spaces, then trim: "\tcat\n" -> "cat" */
    NEAR(vqa10(evals_vqa_accuracy, "\tcat\n", "cat", 1, "dog"), 0.3);
}

Test(vqa_accuracy, normalisation_steps_match_the_official_kit) {
    char *s = evals_vqa_punctuation("a (b) c");
    cr_assert_str_eq(s, "a b c"); /* "( " / " (" present: every '(' and ')' deleted */
    free(s);
    s = evals_vqa_digits_articles("The  Three   cats");
    cr_assert_str_eq(s, "3 cats");
    free(s);
}

Test(vqa_accuracy_molmo, both_sides_normalised_without_leave_one_out) {
    NEAR(vqa10(evals_vqa_accuracy_molmo, "two", "two", 10, "two"), 1.0);      /* 2 == 2 */
    NEAR(vqa10(evals_vqa_accuracy_molmo, "the cat", "cat", 1, "dog"), 1.0 / 3);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "cat", "the cat", 2, "dog"), 2.0 / 3);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "cat", "cat", 3, "dog"), 1.0);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "cat", "cat", 0, "dog"), 0.0);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "t-shirt", "t-shirt", 10, "x"), 1.0);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "dont", "don't", 1, "do"), 1.0 / 3);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "Three", "3", 2, "4"), 2.0 / 3);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "a.m.", "am", 4, "pm"), 1.0);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "1,000", "1000", 1, "100"), 1.0 / 3);
    NEAR(vqa10(evals_vqa_accuracy_molmo, "yes", "Yes!", 3, "no"), 1.0);  /* "yes " -> "yes" */
    NEAR(vqa10(evals_vqa_accuracy_molmo, "none", "zero", 2, "one"), 2.0 / 3); /* 0 == 0 */
    NEAR(vqa10(evals_vqa_accuracy_molmo, "an apple", "apple", 5, "pear"), 1.0);
    NEAR(evals_vqa_accuracy_molmo("two", REFS("2")), 1.0 / 3);      /* one reference */
    NEAR(evals_vqa_accuracy_molmo("red", REFS("blue")), 0.0);
}

Test(mc_letter, bare_bracketed_and_punctuated_letters) {
    cr_assert_eq(evals_mc_letter("B", NULL, 0), 1);
    cr_assert_eq(evals_mc_letter("b", NULL, 0), 1);       /* any case */
    cr_assert_eq(evals_mc_letter("(B)", NULL, 0), 1);
    cr_assert_eq(evals_mc_letter("B.", NULL, 0), 1);
    cr_assert_eq(evals_mc_letter("B:", NULL, 0), 1);
    cr_assert_eq(evals_mc_letter("B)", NULL, 0), 1);
    cr_assert_eq(evals_mc_letter("Z", NULL, 0), 25);      /* no choices: A-Z in range */
    cr_assert_eq(evals_mc_letter("B. Paris", NULL, 0), 1);/* rule 2 */
}

Test(mc_letter, answer_phrases_and_single_parenthesised_letters) {
    cr_assert_eq(evals_mc_letter("The answer is B", NULL, 0), 1);
    cr_assert_eq(evals_mc_letter("the answer is B.", NULL, 0), 1);       /* '.' not a letter */
    cr_assert_eq(evals_mc_letter("Answer: (C)", NULL, 0), 2);
    cr_assert_eq(evals_mc_letter("answer is A, no, the answer is C", NULL, 0), 2); /* last */
    cr_assert_eq(evals_mc_letter("The answer is Blue", NULL, 0), -1);    /* B followed by l */
    cr_assert_eq(evals_mc_letter("I think (D) is right", NULL, 0), 3);   /* rule 4 */
    cr_assert_eq(evals_mc_letter("(A) or (B)", NULL, 0), -1);            /* two: none */
}

Test(mc_letter, option_text_range_and_invalid_answers) {
    const char *ch[] = {"London", "Paris", "Rome", "Berlin"};
    cr_assert_eq(evals_mc_letter("Paris.", ch, 4), 1);  /* rule 5, trailing '.' removed */
    cr_assert_eq(evals_mc_letter("rome", ch, 4), 2);    /* case-insensitive */
    cr_assert_eq(evals_mc_letter("E", ch, 4), -1);      /* outside A-D */
    cr_assert_eq(evals_mc_letter("A cat", NULL, 0), -1);/* not letter A */
    cr_assert_eq(evals_mc_letter("", NULL, 0), -1);
    struct evals_score sc;
    struct evals_refs r = {.refs = (const char *[]){"B"}, .n_refs = 1, .choices = ch,
                           .n_choices = 4};
    cr_assert_eq(evals_score_text(EVALS_METRIC_MC_LETTER, "(B)", &r, &sc, NULL), 0);
    cr_assert(sc.score == 1.0 && !sc.invalid);
    cr_assert_eq(evals_score_text(EVALS_METRIC_MC_LETTER, "A cat", &r, &sc, NULL), 0);
    cr_assert(sc.score == 0.0 && sc.invalid);
}

static long long count_of(const char *s) {
    long long c = -999;
    return evals_count_parse(s, &c) ? c : -999;
}

Test(exact_count, integers_and_number_words_as_the_last_token) {
    cr_assert_eq(count_of("3"), 3);
    cr_assert_eq(count_of("three"), 3);
    cr_assert_eq(count_of("There are three."), 3);      /* '.' dropped, last token */
    cr_assert_eq(count_of("  Eight  "), 8);              /* lowercased, trimmed */
    cr_assert_eq(count_of("twelve"), 12);
    cr_assert_eq(count_of("twenty"), 20);
    cr_assert_eq(count_of("-1"), -1);                    /* optional sign */
    cr_assert_eq(count_of("5..."), 5);                   /* all trailing '.' */
    cr_assert_eq(count_of("Counting the <points x1=\"1.0\" y1=\"2.0\" x2=\"3.0\" y2=\"4.0\" "
                          "alt=\"cars\">cars</points> shows a total of 2."), 2);
}

Test(exact_count, a_total_of_in_the_first_line_then_none) {
    cr_assert_eq(count_of("a total of 7 dogs are here"), 7);          /* rule 3 */
    cr_assert_eq(count_of("a total of 3 and a total of 6 things"), 6);/* the last */
    cr_assert_eq(count_of("a total of 4 here\nthen a total of 9 more"), 4); /* first line */
    cr_assert_eq(count_of("There are none."), 0);                     /* rule 4 */
    cr_assert_eq(count_of("nonexistent"), -999);                      /* not the word none */
    cr_assert_eq(count_of("twenty-one"), -999);                       /* not in the list */
    cr_assert_eq(count_of("I see 5 dogs"), -999);                     /* last token "dogs" */
}

Test(exact_count, score_close_and_invalid) {
    struct evals_score sc;
    struct evals_refs r = {.refs = (const char *[]){"3"}, .n_refs = 1};
    cr_assert_eq(evals_score_text(EVALS_METRIC_EXACT_COUNT, "three", &r, &sc, NULL), 0);
    cr_assert(sc.score == 1.0 && sc.close && !sc.invalid);
    cr_assert_eq(evals_score_text(EVALS_METRIC_EXACT_COUNT, "4", &r, &sc, NULL), 0);
    cr_assert(sc.score == 0.0 && sc.close);
    cr_assert_eq(evals_score_text(EVALS_METRIC_EXACT_COUNT, "many", &r, &sc, NULL), 0);
    cr_assert(sc.score == 0.0 && sc.invalid && !sc.close);
}

/* pointing: 200 x 100 image, so x% * 2 = px and y% = py. */
static struct evals_score point(const char *text, const struct evals_region *reg, size_t n,
                                int w, int h) {
    struct evals_score sc;
    struct evals_refs r = {.regions = reg, .n_regions = n, .width = w, .height = h};
    cr_assert_eq(evals_score_text(EVALS_METRIC_POINTING_F1, text, &r, &sc, NULL), 0);
    return sc;
}

static const struct evals_region two_circles[] = {
    {.kind = EVALS_REGION_CIRCLE, .x = 50, .y = 50, .c = {50, 50, 10}},
    {.kind = EVALS_REGION_CIRCLE, .x = 150, .y = 50, .c = {150, 50, 10}},
};

Test(pointing_f1, no_reference_points) {
    NEAR(point("There are none.", NULL, 0, 200, 100).score, 1.0);
    NEAR(point("<point x=\"10.0\" y=\"10.0\" alt=\"a\">a</point>", NULL, 0, 200, 100).score, 0);
    NEAR(point("(25.0, 50.0)", NULL, 0, 200, 100).score, 0.0); /* a (x, y) pair is a point */
    NEAR(point("There are none.", two_circles, 2, 200, 100).score, 0.0); /* R = 0 */
}

Test(pointing_f1, hits_inside_the_mask) {
    /* (25%, 50%) -> (50, 50): centre of circle 1 */
    NEAR(point("<point x=\"25.0\" y=\"50.0\" alt=\"a\">a</point>", two_circles, 1, 200, 100)
             .score, 1.0);
    /* (35%, 50%) -> (70, 50): 20 px from the centre, r = 10: miss */
    NEAR(point("<point x=\"35.0\" y=\"50.0\" alt=\"a\">a</point>", two_circles, 1, 200, 100)
             .score, 0.0);
    /* two points, two hits */
    NEAR(point("<points x1=\"25.0\" y1=\"50.0\" x2=\"75.0\" y2=\"50.0\" alt=\"a\">a</points>",
               two_circles, 2, 200, 100).score, 1.0);
    /* one point, two objects: P = 1, R = 1/2, F1 = 2 * .5 / 1.5 = 2/3 */
    struct evals_score s = point("<point x=\"25.0\" y=\"50.0\" alt=\"a\">a</point>",
                                 two_circles, 2, 200, 100);
    NEAR(s.score, 2.0 / 3);
    NEAR(s.precision, 1.0);
    NEAR(s.recall, 0.5);
    /* three points, two objects, the third unmatched: P = 2/3, R = 1, F1 = .8 */
    NEAR(point("<points x1=\"25.0\" y1=\"50.0\" x2=\"75.0\" y2=\"50.0\" x3=\"50.0\" y3=\"50.0\" "
               "alt=\"a\">a</points>", two_circles, 2, 200, 100).score, 0.8);
    /* x2 = 150 > 100 is dropped: one point left, one hit */
    NEAR(point("<points x1=\"25.0\" y1=\"50.0\" x2=\"150.0\" y2=\"50.0\" alt=\"a\">a</points>",
               two_circles, 1, 200, 100).score, 1.0);
    /* two points for one object: P = 1/2, R = 1, F1 = 2/3 */
    NEAR(point("<points x1=\"25.0\" y1=\"50.0\" x2=\"25.5\" y2=\"50.0\" alt=\"a\">a</points>",
               two_circles, 1, 200, 100).score, 2.0 / 3);
}

Test(pointing_f1, malformed_output_scores_zero) {
    /* two elements */
    NEAR(point("<point x=\"25.0\" y=\"50.0\" alt=\"a\">a</point> <point x=\"75.0\" y=\"50.0\" "
               "alt=\"a\">a</point>", two_circles, 2, 200, 100).score, 0.0);
    /* unclosed */
    struct evals_score s = point("<point x=\"25.0\" y=\"50.0\" alt=\"a\">a", two_circles, 1,
                                 200, 100);
    cr_assert(s.score == 0.0 && s.invalid);
}

Test(pointing_f1, pixels_round_half_to_even) {
    /* 4 x 4 image: 12.5% -> 0.5 px -> 0 (half to even; half up would give 1) */
    struct evals_region box_at_1 = {.kind = EVALS_REGION_BOX, .x = 2, .y = 0, .c = {1, 0, 3, 3}};
    struct evals_region box_at_0 = {.kind = EVALS_REGION_BOX, .x = 0, .y = 0, .c = {0, 0, 0, 3}};
    const char *p = "<point x=\"12.5\" y=\"12.5\" alt=\"a\">a</point>";
    NEAR(point(p, &box_at_1, 1, 4, 4).score, 0.0);
    NEAR(point(p, &box_at_0, 1, 4, 4).score, 1.0);
    /* 37.5% -> 1.5 px -> 2 */
    NEAR(point("<point x=\"37.5\" y=\"12.5\" alt=\"a\">a</point>", &box_at_1, 1, 4, 4).score, 1);
}

Test(pointing_f1, matching_minimises_total_distance_not_greedily) {
    /* 100 x 100. R1 at 10 (mask x 5..14), R2 at 20 (mask x 15..25); P1 at 14, P2 at 4.
     * Greedy takes P1-R1 (4) then P2-R2 (16): total 20, one hit. Optimal: P1-R2 (6) + P2-R1 (6)
     * = 12, and neither P1 = 14 in 15..25 nor P2 = 4 in 5..14: no hit, F1 = 0. */
    struct evals_region r[] = {
        {.kind = EVALS_REGION_BOX, .x = 10, .y = 50, .c = {5, 0, 14, 100}},
        {.kind = EVALS_REGION_BOX, .x = 20, .y = 50, .c = {15, 0, 25, 100}},
    };
    NEAR(point("<points x1=\"14.0\" y1=\"50.0\" x2=\"4.0\" y2=\"50.0\" alt=\"a\">a</points>", r,
               2, 100, 100).score, 0.0);
}

Test(pointing_f1, polygon_and_bitmap_masks) {
    static const double tri[] = {0, 0, 100, 0, 0, 100};
    struct evals_region t = {.kind = EVALS_REGION_POLYGON, .x = 30, .y = 30, .poly = tri,
                             .n_poly = 3};
    NEAR(point("<point x=\"10.0\" y=\"10.0\" alt=\"a\">a</point>", &t, 1, 100, 100).score, 1.0);
    NEAR(point("<point x=\"60.0\" y=\"60.0\" alt=\"a\">a</point>", &t, 1, 100, 100).score, 0.0);
    static const unsigned char bits[16] = {[1 * 4 + 2] = 1}; /* only pixel (2, 1) */
    struct evals_region b = {.kind = EVALS_REGION_BITMAP, .x = 2, .y = 1, .bits = bits, .w = 4,
                             .h = 4};
    /* 50% of 4 = 2, 25% of 4 = 1 */
    NEAR(point("<point x=\"50.0\" y=\"25.0\" alt=\"a\">a</point>", &b, 1, 4, 4).score, 1.0);
    NEAR(point("<point x=\"25.0\" y=\"25.0\" alt=\"a\">a</point>", &b, 1, 4, 4).score, 0.0);
}

/* ---------------------------------------------------------------------------------------------
 * Fidelity to Molmo's evaluator and the peers' Python (issue: one truth per number). Each case
 * is worked by hand from the rule it names. */

/* The score of generated text against one reference, through the whole path (extraction and
 * metric). */
static double evals_score_simple(enum evals_metric m, const char *generated, const char *ref) {
    struct evals_refs r = {.refs = (const char *const[]){ref}, .n_refs = 1};
    struct evals_score sc;
    struct jb_err err = {0};
    cr_assert_eq(evals_score_text(m, generated, &r, &sc, &err), 0, "%s", err.msg);
    return sc.score;
}

/* Molmo's evaluator votes with every line, blank ones too: in
 * '14\n\nBecause the chart shows 14.\n\nSo 14' the blank line appears twice, "14" once, so the
 * answer is "" and the question scores 0 (joulebench used to skip blank lines and answer 14). */
Test(fidelity, blank_lines_vote_in_the_most_frequent_line) {
    check("14\n\nBecause the chart shows 14.\n\nSo 14", "");
    NEAR(evals_score_simple(EVALS_METRIC_RELAXED_ACCURACY,
                            "14\n\nBecause the chart shows 14.\n\nSo 14", "14"),
         0.0);
    /* the text is trimmed first: outer newlines make no blank line */
    check("\n\n14\n", "14");
    check("7\n\n7\n\n", "7"); /* trimmed: "7", "", "7": 7 twice */
}

/* NBSP (U+00A0), the em space (U+2003) and U+3000 are whitespace to str.strip()/split():
 * '14\u00a0' vs 14 scores 1 with every peer. */
Test(fidelity, unicode_whitespace_trims_collapses_and_splits) {
    check("14\xc2\xa0", "14");
    check("\xe2\x80\x83two\xe3\x80\x80\xc2\xa0words\xe2\x80\x83", "two words");
    NEAR(evals_score_simple(EVALS_METRIC_RELAXED_ACCURACY, "14\xc2\xa0", "14"), 1.0);
    NEAR(evals_score_simple(EVALS_METRIC_ANLS, "\xc2\xa0Paris\xe2\x80\x83", "paris"), 1.0);
    /* vqa: str.split() on an em space separates "the" from "dog", then "the" is dropped */
    NEAR(evals_vqa_accuracy_molmo("the\xe2\x80\x83" "dog", REFS("dog", "dog", "dog")), 1.0);
    /* exact_count: the last token after an NBSP is the count */
    long long n = -1;
    cr_assert(evals_count_parse("a total of\xc2\xa0" "5\xc2\xa0", &n));
    cr_assert_eq(n, 5);
    /* mc_letter: "answer is" with an NBSP between the words */
    cr_assert_eq(evals_mc_letter("The answer\xc2\xa0is\xc2\xa0" "C", NULL, 0), 2);
    /* the number grammar stays ASCII: an Arabic-Indic digit is no digit */
    double v;
    cr_assert(!evals_parse_pyfloat("\xd9\xa1", &v));
    /* a lone continuation byte or invalid UTF-8 is not whitespace */
    check("a\x80" "b", "a\x80" "b");
}

/* The three mc_letter readings evals.md left open, decided in the README: a bracketed letter
 * "[C]" is that letter (as "(C)"), "answer:C" without a space is C, and "ANSWER IS C" is C
 * ("answer" and "is" in any case, as the peers' case-insensitive patterns read it). */
Test(fidelity, mc_letter_open_readings) {
    cr_assert_eq(evals_mc_letter("[C]", NULL, 0), 2);
    cr_assert_eq(evals_mc_letter("answer:C", NULL, 0), 2);
    cr_assert_eq(evals_mc_letter("ANSWER IS C", NULL, 0), 2);
    cr_assert_eq(evals_mc_letter("Answer Is C.", NULL, 0), 2);
}

/* ANLS at exactly 0.5 scores 0 (Molmo and the ANLS paper: NL < 0.5 scores 1 - NL), not 0.5 as
 * lmms-eval and VLMEvalKit have it: "ab" vs "ac" is lev 1 / 2 = 0.5. */
Test(fidelity, anls_exactly_one_half_scores_zero) {
    NEAR(evals_anls("ab", REFS("ac")), 0.0);
    NEAR(evals_anls("abcd", REFS("abxy")), 0.0); /* 2/4 */
}

/* The record's prediction is what the metric read: for counting and pointing the raw text,
 * trimmed (not the most frequent line), for the others the extracted answer. */
Test(fidelity, prediction_is_what_the_metric_read) {
    const char *text = " Counting the <points x1=\"10.0\" y1=\"20.0\" x2=\"30.0\" y2=\"40.0\" "
                       "alt=\"dots\">dots</points>\nshows a total of 2.\n";
    char *p = evals_metric_input(EVALS_METRIC_EXACT_COUNT, text);
    cr_assert_str_eq(p, "Counting the <points x1=\"10.0\" y1=\"20.0\" x2=\"30.0\" y2=\"40.0\" "
                        "alt=\"dots\">dots</points>\nshows a total of 2.");
    free(p);
    p = evals_metric_input(EVALS_METRIC_RELAXED_ACCURACY, "a\nb\nb");
    cr_assert_str_eq(p, "b");
    free(p);
}
