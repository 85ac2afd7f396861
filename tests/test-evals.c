#include "config.h"

#include "evals/evals.h"

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
