/* The parts of `joulebench run` that need no engine: progress display and machine facts. */
#include "config.h"

#include "harness/run-impl.h"

#include "tests/jb-test.h"

#include <stdlib.h>
#include <string.h>

/* 12 of 60 done in 24 s: 2 s per sample, 48 left -> 96 s = 1m36s; the bar is 12/60 x 20 = 4
 * cells full, the 5th is the arrow. */
Test(progress, text_has_count_eta_accuracy_and_energy) {
    char buf[256];
    harness_progress_text(buf, sizeof buf, 12, 60, 24.0, 5.0 / 12, 3.214, false, true);
    cr_assert_str_eq(buf, "[====>               ] 12/60  ETA 1m36s  acc 41.7%  3.21 J/sample");
    harness_progress_text(buf, sizeof buf, 12, 60, 24.0, 5.0 / 12, 3.214, true, false);
    cr_assert_str_eq(buf, "run: 12/60 samples, ETA 96 s, accuracy 41.7%, ~3.21 J/sample");
    harness_progress_text(buf, sizeof buf, 0, 60, 0.0, 0, 0, false, false);
    cr_assert(strstr(buf, "ETA ?"), "%s", buf);
}

/* Without a terminal: the first sample, then every 10% (11, 21, ..., 91), then the last. */
Test(progress, plain_lines_every_tenth_without_a_terminal) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct harness_progress *p = harness_progress_new(100, false, f);
    for (int i = 1; i <= 100; i++) harness_progress_update(p, i, 0.5, 1.0, false, false);
    harness_progress_free(p);
    fclose(f);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += out[i] == '\n';
    cr_assert_eq(lines, 11, "%s", out);
    cr_assert_null(strchr(out, '\r'), "no carriage returns in a log");
    cr_assert(strstr(out, "run: 100/100 samples"), "%s", out);
    free(out);
}

Test(progress, live_line_on_a_terminal_ends_with_a_newline) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct harness_progress *p = harness_progress_new(3, true, f);
    for (int i = 1; i <= 3; i++) harness_progress_update(p, i, 1.0, 2.0, false, false);
    harness_progress_free(p);
    fclose(f);
    int cr = 0;
    for (size_t i = 0; i < len; i++) cr += out[i] == '\r';
    cr_assert_eq(cr, 3);
    cr_assert_eq(out[len - 1], '\n');
    free(out);
}

Test(machine, describes_cores_memory_and_kernel) {
    json_t *m = harness_machine_json();
    cr_assert(json_integer_value(json_object_get(m, "n_cores")) > 0);
    cr_assert(json_integer_value(json_object_get(m, "memory_bytes")) > 0);
    cr_assert(!strncmp(json_string_value(json_object_get(m, "kernel")), "Linux ", 6));
    cr_assert_not_null(json_string_value(json_object_get(m, "cpu_model")));
    cr_assert_not_null(json_string_value(json_object_get(m, "gpu")));
    json_decref(m);
}
