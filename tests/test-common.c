#include "config.h"

#include "common/jb-err.h"
#include "common/jb-json.h"
#include "common/jb-log.h"
#include "common/jb-mmap.h"
#include "common/jb-npy.h"
#include "common/jb-stats.h"
#include "common/jb-time.h"

#include "tests/jb-test.h"

#include <criterion/redirect.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Test(err, set_returns_code_and_formats_message) {
    struct jb_err err = {0};
    int rc = jb_err_set(&err, JB_EFORMAT, "%s: tensor '%s' truncated", "a.safetensors", "wte");
    cr_assert_eq(rc, JB_EFORMAT);
    cr_assert_eq(err.code, JB_EFORMAT);
    cr_assert_str_eq(err.msg, "a.safetensors: tensor 'wte' truncated");
}

Test(err, null_err_still_returns_code) {
    cr_assert_eq(jb_err_set(NULL, JB_EIO, "x"), JB_EIO);
    cr_assert_eq(jb_err_errno(NULL, ENOENT, "x"), JB_ENOTFOUND);
}

Test(err, errno_maps_code_and_appends_strerror) {
    struct jb_err err = {0};
    cr_assert_eq(jb_err_errno(&err, EACCES, "%s", "/sys/x/energy_uj"), JB_EPERM);
    cr_assert_str_eq(err.msg, "/sys/x/energy_uj: Permission denied");
    cr_assert_eq(jb_err_errno(&err, EIO, "f"), JB_EIO);
}

Test(err, prefix_prepends_context) {
    struct jb_err err = {0};
    jb_err_set(&err, JB_EFORMAT, "bad length");
    jb_err_prefix(&err, "%s", "model-00001.safetensors");
    cr_assert_str_eq(err.msg, "model-00001.safetensors: bad length");
}

Test(err, long_message_is_truncated_not_overflowed) {
    struct jb_err err = {0};
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    jb_err_set(&err, JB_EIO, "%s", big);
    cr_assert_eq(strlen(err.msg), JB_ERR_MSG_MAX - 1);
    jb_err_prefix(&err, "ctx");
    cr_assert_eq(strlen(err.msg), JB_ERR_MSG_MAX - 1);
    cr_assert(strncmp(err.msg, "ctx: xxx", 8) == 0);
}

Test(json, syntax_error_names_file_line_and_column) {
    char *dir = jb_test_tmpdir(), *path = NULL;
    cr_assert(asprintf(&path, "%s/bad.json", dir) > 0);
    const char *text = "{\n  \"a\": 1,\n  \"b\": ]\n}\n";
    jb_test_write_file(path, text, strlen(text));
    json_t *root = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_json_load_file(path, &root, &err), JB_EFORMAT);
    cr_assert_null(root);
    char *want = NULL;
    cr_assert(asprintf(&want, "%s:3:", path) > 0);
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "got: %s", err.msg);
    free(want);
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

Test(json, missing_file_is_not_found) {
    json_t *root = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_json_load_file("/nonexistent/config.json", &root, &err), JB_ENOTFOUND);
    cr_assert(strstr(err.msg, "/nonexistent/config.json"));
}

Test(json, getters_check_types_and_defaults) {
    json_t *o = NULL;
    struct jb_err err = {0};
    const char *t = "{\"n\": 28, \"eps\": 1e-06, \"r\": 3.0, \"s\": \"rms\", \"b\": true, "
                    "\"kv\": null}";
    cr_assert_eq(jb_json_load_text(t, strlen(t), "config.json", &o, &err), 0);
    long long n = 0, kv = 7;
    double eps = 0;
    bool b = false;
    const char *s = NULL;
    cr_assert_eq(jb_json_get_int(o, "n", &n, true, "config.json", &err), 0);
    cr_assert_eq(n, 28);
    cr_assert_eq(jb_json_get_int(o, "r", &n, true, "config.json", &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(jb_json_get_double(o, "eps", &eps, true, "config.json", &err), 0);
    cr_assert_float_eq(eps, 1e-6, 1e-18);
    cr_assert_eq(jb_json_get_string(o, "s", &s, true, "config.json", &err), 0);
    cr_assert_str_eq(s, "rms");
    cr_assert_eq(jb_json_get_bool(o, "b", &b, true, "config.json", &err), 0);
    cr_assert(b);
    /* null and absent leave the default when optional */
    cr_assert_eq(jb_json_get_int(o, "kv", &kv, false, "config.json", &err), 0);
    cr_assert_eq(kv, 7);
    cr_assert_eq(jb_json_get_int(o, "zz", &kv, true, "config.json", &err), JB_ENOTFOUND);
    cr_assert_str_eq(err.msg, "config.json: missing field 'zz'");
    cr_assert_eq(jb_json_get_int(o, "eps", &n, true, "config.json", &err), JB_EFORMAT);
    cr_assert_str_eq(err.msg, "config.json: field 'eps' should be an integer, found number");
    cr_assert_eq(jb_json_get_bool(o, "s", &b, true, "config.json", &err), JB_EFORMAT);
    json_decref(o);
}

Test(json, write_file_round_trips) {
    char *dir = jb_test_tmpdir(), *path = NULL;
    cr_assert(asprintf(&path, "%s/run.json", dir) > 0);
    json_t *o = json_pack("{s:s, s:f}", "source", "measured", "energy_j", 12.5);
    struct jb_err err = {0};
    cr_assert_eq(jb_json_write_file(path, o, &err), 0, "%s", err.msg);
    json_t *back = NULL;
    cr_assert_eq(jb_json_load_file(path, &back, &err), 0, "%s", err.msg);
    cr_assert(json_equal(o, back));
    json_decref(o);
    json_decref(back);
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

Test(npy, reads_golden_input_ids) {
    const char *g = jb_test_golden_or_skip();
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/molmo-tiny-qwen2/input_ids.npy", g) > 0);
    struct jb_npy a = {0};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_load(&a, path, &err), 0, "%s", err.msg);
    /* golden/README.md: int32 [619]; manifest.json: BOS 256 first, image block starts 264 */
    cr_assert_eq(a.dtype, JB_NPY_I32);
    cr_assert_eq(a.ndim, 1);
    cr_assert_eq(a.shape[0], 619);
    const int32_t *ids = a.data;
    cr_assert_eq(ids[0], 256);
    cr_assert_eq(ids[1], 264);
    jb_npy_free(&a);
    free(path);
}

Test(npy, reads_golden_images_shape) {
    const char *g = jb_test_golden_or_skip();
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/molmo-tiny-qwen2/images.npy", g) > 0);
    struct jb_npy a = {0};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_load(&a, path, &err), 0, "%s", err.msg);
    cr_assert_eq(a.dtype, JB_NPY_F32);
    cr_assert_eq(a.ndim, 3);
    cr_assert_eq(a.shape[0], 5);
    cr_assert_eq(a.shape[1], 576);
    cr_assert_eq(a.shape[2], 588);
    cr_assert_eq(a.numel, (size_t)5 * 576 * 588);
    jb_npy_free(&a);
    free(path);
}

/* The exact bytes NumPy 1.x writes for np.save(f, np.array([[1,2,3],[4,5,6]], dtype='<f4')):
 * magic, version 1.0, header length 118, dict padded with spaces to 128 bytes total. */
Test(npy, save_matches_numpy_byte_layout) {
    char *dir = jb_test_tmpdir(), *path = NULL;
    cr_assert(asprintf(&path, "%s/a.npy", dir) > 0);
    float v[6] = {1, 2, 3, 4, 5, 6};
    size_t shape[2] = {2, 3};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_save(path, JB_NPY_F32, 2, shape, v, &err), 0, "%s", err.msg);
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(jb_file_read_all(path, &buf, &len, &err), 0);
    cr_assert_eq(len, 128 + 24);
    cr_assert(memcmp(buf, "\x93NUMPY\x01\x00\x76\x00", 10) == 0);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    cr_assert(memcmp(buf + 10, dict, strlen(dict)) == 0);
    cr_assert_eq(buf[127], '\n');
    cr_assert_eq(buf[126], ' ');
    float back[6];
    memcpy(back, buf + 128, sizeof back);
    cr_assert(memcmp(back, v, sizeof v) == 0);
    free(buf);

    /* and a 1-d shape is written "(5,)" as Python prints a 1-tuple */
    int32_t ids[5] = {1, 2, 3, 4, 5};
    size_t s1 = 5;
    cr_assert_eq(jb_npy_save(path, JB_NPY_I32, 1, &s1, ids, &err), 0);
    struct jb_npy a = {0};
    cr_assert_eq(jb_npy_load(&a, path, &err), 0, "%s", err.msg);
    cr_assert_eq(a.ndim, 1);
    cr_assert_eq(a.shape[0], 5);
    cr_assert(memcmp(a.data, ids, sizeof ids) == 0);
    jb_npy_free(&a);
    cr_assert_eq(jb_file_read_all(path, &buf, &len, &err), 0);
    cr_assert(strstr(buf + 10, "'shape': (5,), }"));
    free(buf);
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

Test(npy, truncated_data_is_a_format_error) {
    char *dir = jb_test_tmpdir(), *path = NULL;
    cr_assert(asprintf(&path, "%s/t.npy", dir) > 0);
    float v[4] = {0};
    size_t shape[1] = {4};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_save(path, JB_NPY_F32, 1, shape, v, &err), 0);
    cr_assert_eq(truncate(path, 128 + 8), 0); /* header of 128 bytes, 2 of 4 floats */
    struct jb_npy a = {0};
    cr_assert_eq(jb_npy_load(&a, path, &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, "t.npy: data is 8 bytes, header says 16"), "%s", err.msg);
    cr_assert_null(a.data);
    jb_test_write_file(path, "hello", 5);
    cr_assert_eq(jb_npy_load(&a, path, &err), JB_EFORMAT);
    cr_assert(strstr(err.msg, "not a .npy file"));
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

Test(npy, fortran_order_is_refused) {
    char *dir = jb_test_tmpdir(), *path = NULL;
    cr_assert(asprintf(&path, "%s/f.npy", dir) > 0);
    char file[64 + 4];
    const char *dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }";
    memset(file, ' ', 64);
    memcpy(file, "\x93NUMPY\x01\x00\x36\x00", 10);
    memcpy(file + 10, dict, strlen(dict));
    file[63] = '\n';
    memset(file + 64, 0, 4);
    jb_test_write_file(path, file, sizeof file);
    struct jb_npy a = {0};
    struct jb_err err = {0};
    cr_assert_eq(jb_npy_load(&a, path, &err), JB_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "Fortran"));
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

Test(mmap, maps_a_file_and_reports_missing_ones) {
    char *dir = jb_test_tmpdir(), *path = NULL;
    cr_assert(asprintf(&path, "%s/w.bin", dir) > 0);
    jb_test_write_file(path, "abcdef", 6);
    struct jb_mmap m = {0};
    struct jb_err err = {0};
    cr_assert_eq(jb_mmap_open(&m, path, &err), 0);
    cr_assert_eq(m.len, 6);
    cr_assert(memcmp(m.data, "abcdef", 6) == 0);
    jb_mmap_close(&m);
    cr_assert_null(m.data);
    jb_mmap_close(NULL);
    cr_assert_eq(jb_mmap_open(&m, dir, &err), JB_EIO); /* a directory */
    cr_assert_eq(jb_mmap_open(&m, "/nonexistent/x", &err), JB_ENOTFOUND);
    cr_assert(strstr(err.msg, "/nonexistent/x: No such file or directory"));
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

Test(log, level_names_parse) {
    cr_assert_eq(jb_log_level_parse("debug"), JB_LOG_DEBUG);
    cr_assert_eq(jb_log_level_parse("WARN"), JB_LOG_WARN);
    cr_assert_eq(jb_log_level_parse("warning"), JB_LOG_WARN);
    cr_assert_eq(jb_log_level_parse("error"), JB_LOG_ERROR);
    cr_assert_eq(jb_log_level_parse("loud"), -1);
    jb_log_set_level(JB_LOG_INFO);
    cr_assert_eq(jb_log_get_level(), JB_LOG_INFO);
}

Test(log, writes_one_prefixed_line_to_stderr, .init = cr_redirect_stderr) {
    jb_log_set_level(JB_LOG_WARN);
    jb_log(JB_LOG_INFO, "hidden %d", 1);
    jb_log(JB_LOG_WARN, "idle power differs by %d%%", 12);
    fflush(stderr);
    cr_assert_stderr_eq_str("joulebench: warning: idle power differs by 12%\n");
}

Test(time, monotonic_clock_advances_over_a_sleep) {
    double t0 = jb_time_now_s();
    jb_time_sleep_s(0.02);
    double dt = jb_time_now_s() - t0;
    cr_assert_geq(dt, 0.02);
    char iso[32];
    jb_time_iso8601(iso, sizeof iso);
    cr_assert_eq(strlen(iso), 20);
    cr_assert_eq(iso[10], 'T');
    cr_assert_eq(iso[19], 'Z');
}

Test(mmap, mkdir_p_creates_parents_and_names_the_failing_component) {
    char *dir = jb_test_tmpdir(), *deep = NULL, *blocked = NULL;
    cr_assert(asprintf(&deep, "%s/a/b/c", dir) > 0);
    struct jb_err err = {0};
    cr_assert_eq(jb_mkdir_p(deep, &err), 0, "%s", err.msg);
    struct stat st;
    cr_assert(stat(deep, &st) == 0 && S_ISDIR(st.st_mode));
    cr_assert_eq(jb_mkdir_p(deep, &err), 0); /* existing: fine */
    /* a regular file where a directory should be */
    cr_assert(asprintf(&blocked, "%s/file/sub", dir) > 0);
    char *file = NULL;
    cr_assert(asprintf(&file, "%s/file", dir) > 0);
    jb_test_write_file(file, "x", 1);
    cr_assert_neq(jb_mkdir_p(blocked, &err), 0);
    cr_assert(strstr(err.msg, "/file/sub: cannot create the directory"), "%s", err.msg);
    free(file);
    free(deep);
    free(blocked);
    jb_test_rmtree(dir);
    free(dir);
}

/* ---- jb-stats: the one interval per score type ---- */

Test(stats, wilson_matches_the_textbook_values) {
    /* 5/10: centre .5, half = 1.96/1.38415 * sqrt(.025 + .38415/40) = .26341 */
    double s10[10] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, lo, hi;
    jb_ci95(s10, 10, true, &lo, &hi, NULL);
    cr_assert(fabs(lo - 0.23659) < 1e-4 && fabs(hi - 0.76341) < 1e-4, "[%f, %f]", lo, hi);
    /* 20/20: lower bound (1 + z^2/40)/(1 + z^2/20) - 1.96/1.19207 * .049 = .83887 */
    double s20[20];
    for (int i = 0; i < 20; i++) s20[i] = 1;
    jb_ci95(s20, 20, true, &lo, &hi, NULL);
    cr_assert(fabs(lo - 0.83887) < 1e-4 && hi <= 1.0 && hi > 0.9999, "[%f, %f]", lo, hi);
}

Test(stats, bootstrap_is_seeded_and_brackets_the_mean) {
    double s[50], lo1, hi1, lo2, hi2, lo3, hi3;
    for (int i = 0; i < 50; i++) s[i] = (i % 7) / 6.0;
    const char *m1 = NULL;
    jb_ci95(s, 50, false, &lo1, &hi1, &m1);
    jb_ci95(s, 50, false, &lo2, &hi2, NULL);
    cr_assert_str_eq(m1, "bootstrap");
    cr_assert(lo1 == lo2 && hi1 == hi2);
    double mean = 0;
    for (int i = 0; i < 50; i++) mean += s[i] / 50;
    cr_assert(lo1 < mean && mean < hi1 && lo1 > 0.3 && hi1 < 0.7, "[%f %f] %f", lo1, hi1, mean);
    double c[5] = {.4, .4, .4, .4, .4};
    jb_ci95(c, 5, false, &lo3, &hi3, NULL);
    cr_assert_float_eq(lo3, 0.4, 1e-12);
    cr_assert_float_eq(hi3, 0.4, 1e-12);
}


/* Found by libFuzzer (issue 19): "width": 1e30 was cast to long long before its range was
 * checked (undefined behaviour). Now every real outside the range, or not whole, is "not an
 * integer". */
Test(json, reals_outside_the_integer_range_are_not_integers) {
    const char *t = "{\"big\": 1e30, \"neg\": -1e30, \"edge\": 9223372036854775808.0, "
                    "\"half\": 2.5, \"ok\": -9.0e18}";
    json_t *o = NULL;
    struct jb_err err = {0};
    cr_assert_eq(jb_json_load_text(t, strlen(t), "preds.jsonl:1", &o, &err), 0);
    long long n = 0;
    const char *bad[] = {"big", "neg", "edge", "half"};
    for (int i = 0; i < 4; i++) {
        cr_assert_neq(jb_json_get_int(o, bad[i], &n, true, "preds.jsonl:1", &err), 0, "%s",
                      bad[i]);
        cr_assert(strstr(err.msg, "an integer"), "%s", err.msg);
    }
    cr_assert_eq(jb_json_get_int(o, "ok", &n, true, "preds.jsonl:1", &err), 0);
    cr_assert_eq(n, -9000000000000000000LL);
    json_decref(o);
}
