#include "config.h"

#include "reports/reports.h"

#include "tests/jb-test.h"

#include <stdlib.h>
#include <string.h>

static char *csv(const char *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(reports_csv_field(f, s), 0);
    fclose(f);
    return buf;
}

/* RFC 4180 §2: fields with commas, quotes or line breaks are quoted; quotes are doubled. */
Test(csv, quotes_only_when_needed) {
    char *a = csv("synth-chart");
    cr_assert_str_eq(a, "synth-chart");
    char *b = csv("chart, bar \"v2\"");
    cr_assert_str_eq(b, "\"chart, bar \"\"v2\"\"\"");
    char *c = csv("two\nlines");
    cr_assert_str_eq(c, "\"two\nlines\"");
    char *d = csv(" padded");
    cr_assert_str_eq(d, "\" padded\"");
    free(a);
    free(b);
    free(c);
    free(d);
}
