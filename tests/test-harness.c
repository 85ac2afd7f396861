#include "config.h"

#include "tests/jb-test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(cli, version_names_version_and_commit) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' --version", jb_test_bin());
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert(strncmp(p.out, "joulebench " PACKAGE_VERSION " (commit ", 20) == 0, "%s", p.out);
    cr_assert_null(strstr(p.out, "(commit )"));
    jb_test_proc_free(&p);
}

Test(cli, help_lists_commands_and_exits_zero) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' help", jb_test_bin());
    cr_assert_eq(p.status, 0);
    cr_assert(strstr(p.out, "meters"));
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' meters --help", jb_test_bin());
    cr_assert_eq(p.status, 0);
    cr_assert(strstr(p.out, "usage: joulebench meters"));
    jb_test_proc_free(&p);
}

Test(cli, unknown_command_and_option_exit_two_with_a_message) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' frobnicate", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "unknown command 'frobnicate'"), "%s", p.err);
    cr_assert_str_eq(p.out, "");
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' meters --bogus", jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "--help"), "%s", p.err);
    jb_test_proc_free(&p);
}

Test(cli, meters_json_lists_every_backend) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' meters --json", jb_test_bin());
    cr_assert_eq(p.status, 0, "%s", p.err);
    const char *names[] = {"powercap", "perf", "papi", "nvml", "estimate"};
    for (int i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "\"name\": \"%s\"", names[i]);
        cr_assert(strstr(p.out, want), "missing %s in %s", names[i], p.out);
    }
    jb_test_proc_free(&p);
}
