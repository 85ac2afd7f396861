/* joulebench bench --model: joules per crop and per token, always labelled with their source.
 * Runs the built program on a tiny init-model checkpoint: through the labelled estimate, with
 * no meter, and under the synthetic RAPL tree of tests/fake-powercap.sh at a known power. */
#include "config.h"

#include "tests/jb-test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes a tiny checkpoint to dir/m, runs `prefix joulebench bench --model dir/m args --json
 * dir/b.json` into p and returns the JSON. */
static json_t *bench(struct jb_test_proc *p, const char *dir, const char *prefix,
                     const char *args) {
    jb_test_run(p, "'%s' init-model --size tiny --out '%s/m' >/dev/null && %s '%s' bench "
                   "--model '%s/m' --threads 2 --bw-mib 16 %s --json '%s/b.json'",
                jb_test_bin(), dir, prefix, jb_test_bin(), dir, args, dir);
    cr_assert_eq(p->status, 0, "%s%s", p->out, p->err);
    char path[4096];
    snprintf(path, sizeof path, "%s/b.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert(j, "%s", je.text);
    return j;
}

static double num(const json_t *j, const char *k) {
    const json_t *v = json_object_get(j, k);
    cr_assert(json_is_number(v), "%s is not a number", k);
    return json_number_value(v);
}

/* The tdp-util estimate (energy.md) draws P = P_idle + (TDP - P_idle) x u with P_idle = 0.3 x
 * TDP and 0 <= u <= 1: with --tdp-w 100 every phase's mean power lies in [30, 100] W. */
Test(bench_energy, the_estimate_is_labelled_in_text_and_json_and_within_its_model) {
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    json_t *j = bench(&p, dir, "", "--meter estimate --tdp-w 100 --reps 2 --prompt-tokens 16 "
                                   "--gen-tokens 8");
    cr_assert_str_eq(json_string_value(json_object_get(j, "energy_source")), "estimated");
    cr_assert_str_eq(json_string_value(json_object_get(j, "energy_backend")), "estimate");
    const char *label = json_string_value(json_object_get(j, "energy_label"));
    cr_assert(label && strncmp(label, "estimated (", 11) == 0 && strstr(label, "TDP = 100 W"),
              "%s", label ? label : "(null)");
    /* every energy row says ESTIMATED and carries '~'; the label is printed in full */
    cr_assert(strstr(p.out, label), "%s", p.out);
    int rows = 0;
    for (const char *l = strstr(p.out, "energy"); l; l = strstr(l + 1, " energy")) {
        const char *nl = strchr(l, '\n');
        if (!nl || !strstr(l, "J/")) break;
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(nl - l), l);
        if (!strstr(buf, "J/")) continue;
        cr_assert(strstr(buf, "ESTIMATED") && strchr(buf, '~'), "unlabelled: %s", buf);
        rows++;
    }
    cr_assert_eq(rows, 3, "%s", p.out);
    const char *phase[] = {"prefill", "decode"};
    const double tokens[] = {2 * 16, 2 * 8}; /* reps x tokens */
    for (int i = 0; i < 2; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s_energy_j", phase[i]);
        double e = num(j, k);
        snprintf(k, sizeof k, "%s_metered_s", phase[i]);
        double s = num(j, k);
        snprintf(k, sizeof k, "%s_j_per_token", phase[i]);
        cr_assert_float_eq(num(j, k), e / tokens[i], 1e-9 * (e + 1));
        /* +-1 uJ per read of the estimate's integer counter */
        cr_assert(e >= 30.0 * s - 1e-4 && e <= 100.0 * s + 1e-4, "%s: %g J in %g s", phase[i], e,
                  s);
    }
    json_decref(j);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}

Test(bench_energy, meter_none_gives_no_energy_figures_and_activations_are_recorded) {
    char *dir = jb_test_tmpdir();
    struct jb_test_proc p;
    json_t *j = bench(&p, dir, "", "--meter none --reps 1 --prompt-tokens 8 --gen-tokens 2 "
                                   "--activations bf16");
    cr_assert_str_eq(json_string_value(json_object_get(j, "energy_source")), "none");
    cr_assert_str_eq(json_string_value(json_object_get(j, "activations")), "bf16");
    cr_assert(strstr(p.out, "decode tg2, bf16 x"), "%s", p.out);
    cr_assert(json_is_null(json_object_get(j, "decode_j_per_token")));
    cr_assert(json_is_null(json_object_get(j, "prefill_j_per_token")));
    cr_assert_null(strstr(p.out, "J/token"), "%s", p.out);
    json_decref(j);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}

/* fake-powercap.sh draws a constant 40 W on package-0 and rewrites the counter every ~10 ms,
 * so decode energy = 40 W x decode time, give or take one late counter update at each end of
 * the phase (allowed: 50 ms each) and 5% for the shell loop's own jitter. With one rep, decode
 * time = gen_tokens / decode_tokens_per_s, so J/token = 40 / decode_tokens_per_s. */
Test(bench_energy, a_known_synthetic_draw_gives_watts_times_seconds_per_token) {
    struct jb_test_proc p;
    jb_test_run(&p, "unshare -m --propagation private true");
    if (p.status != 0) cr_skip_test("unshare -m is not permitted here: %s", p.err);
    jb_test_proc_free(&p);
    char *dir = jb_test_tmpdir(), *prefix = NULL;
    cr_assert(asprintf(&prefix, "unshare -m --propagation private sh '%s/tests/fake-powercap.sh' "
                                "--watts 40 --",
                       getenv("JB_SRCDIR") ? getenv("JB_SRCDIR") : ".") > 0);
    const double W = 40.0, gen = 600;
    json_t *j = bench(&p, dir, prefix, "--meter powercap --reps 1 --crops 0 --prompt-tokens 32 "
                                       "--gen-tokens 600");
    cr_assert_str_eq(json_string_value(json_object_get(j, "energy_source")), "measured");
    cr_assert_str_eq(json_string_value(json_object_get(j, "energy_backend")), "powercap");
    /* package-0 is counted; its core subzone lies inside it and is not */
    cr_assert_str_eq(json_string_value(json_object_get(j, "energy_label")),
                     "measured (powercap: package-0)");
    cr_assert(strstr(p.out, "measured (powercap: package-0)"), "%s", p.out);
    cr_assert_null(strstr(p.out, "ESTIMATED"), "%s", p.out);
    double seconds = gen / num(j, "decode_tokens_per_s");
    double got = num(j, "decode_j_per_token") * gen, want = W * seconds;
    cr_assert(fabs(got - want) <= 0.05 * want + 2 * 0.05 * W,
              "decode: %.3f J/token x %g tokens = %.3f J; 40 W x %.3f s = %.3f J",
              got / gen, gen, got, seconds, want);
    double ps = num(j, "prefill_metered_s");
    double pj = num(j, "prefill_j_per_token") * 32;
    cr_assert(fabs(pj - W * ps) <= 0.05 * W * ps + 2 * 0.05 * W, "prefill %.3f J in %.3f s", pj,
              ps);
    json_decref(j);
    free(prefix);
    jb_test_proc_free(&p);
    jb_test_rmtree(dir);
    free(dir);
}
