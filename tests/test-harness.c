#include "config.h"

#include "tests/jb-test.h"

#include <ctype.h>
#include <stdbool.h>
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

/* ---- the manual page (doc/joulebench.1) says what --help says ---- */

/* The long options ("--name") a text mentions, each once, sorted, one per line; roff's "\-"
 * is read as "-". */
static char *long_options(const char *text) {
    char *flat = strdup(text);
    cr_assert_not_null(flat);
    char *w = flat;
    for (const char *r = text; *r; r++) {
        if (r[0] == '\\' && r[1] == '-') continue; /* roff: \- is a hyphen */
        *w++ = *r;
    }
    *w = 0;
    char *names[512];
    int n = 0;
    for (char *p = flat; (p = strstr(p, "--")); p += 2) {
        if (p > flat && (isalnum((unsigned char)p[-1]) || p[-1] == '-')) continue;
        int len = 0;
        while (isalnum((unsigned char)p[2 + len]) || p[2 + len] == '-') len++;
        if (len == 0 || !isalpha((unsigned char)p[2])) continue;
        char *name = strndup(p, (size_t)len + 2);
        bool seen = false;
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(names[i], name);
        if (seen || n == 512) free(name);
        else names[n++] = name;
    }
    free(flat);
    for (int i = 1; i < n; i++) /* insertion sort: a few dozen names */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    size_t cap = 1;
    for (int i = 0; i < n; i++) cap += strlen(names[i]) + 1;
    char *out = calloc(1, cap);
    for (int i = 0; i < n; i++) {
        strcat(out, names[i]);
        strcat(out, "\n");
        free(names[i]);
    }
    return out;
}

static char *man_page(void) {
    const char *src = getenv("JB_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/doc/joulebench.1", src ? src : ".");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: the manual page is missing", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    rewind(f);
    char *text = malloc((size_t)len + 1);
    cr_assert(text && fread(text, 1, (size_t)len, f) == (size_t)len);
    text[len] = 0;
    fclose(f);
    return text;
}

/* Every command of `joulebench --help` has its section in the page, the page has no other,
 * and each section names exactly the long options of that command's --help: a new option, a
 * renamed one or a removed one fails here until scripts/gen-man.py is run again. */
Test(man, every_command_and_option_of_help_is_in_the_page_and_no_other) {
    char *page = man_page();
    struct jb_test_proc top;
    jb_test_run(&top, "'%s' --help", jb_test_bin());
    cr_assert_eq(top.status, 0);
    int n_cmds = 0;
    char *cmds_end = strstr(top.out, "global options:");
    cr_assert_not_null(cmds_end);
    for (char *line = strstr(top.out, "commands:\n"); line && line < cmds_end;
         line = strchr(line, '\n')) {
        line++;
        char name[64];
        if (strncmp(line, "  ", 2) != 0 || line[2] == ' ' || sscanf(line + 2, "%63[a-z-]", name) != 1)
            continue;
        n_cmds++;
        char head[128];
        snprintf(head, sizeof head, ".SS \"joulebench %s\"\n", name);
        char *sec = strstr(page, head);
        cr_assert_not_null(sec, "the manual page has no section for '%s'", name);
        sec += strlen(head);
        char *end = strstr(sec, "\n.S");
        char *body = strndup(sec, end ? (size_t)(end - sec) : strlen(sec));
        struct jb_test_proc h;
        jb_test_run(&h, "'%s' %s --help", jb_test_bin(), name);
        cr_assert_eq(h.status, 0);
        char *want = long_options(h.out), *got = long_options(body);
        cr_assert_str_eq(got, want, "joulebench %s: the page's options differ from --help", name);
        free(want);
        free(got);
        free(body);
        jb_test_proc_free(&h);
    }
    cr_assert_gt(n_cmds, 10, "%s", top.out);
    int n_sections = 0;
    for (char *p = page; (p = strstr(p, ".SS \"joulebench ")); p++) n_sections++;
    cr_assert_eq(n_sections, n_cmds, "the page has sections for commands --help does not list");
    /* global options */
    char *glob = strstr(page, ".SH GLOBAL OPTIONS");
    cr_assert_not_null(glob);
    char *gend = strstr(glob, ".SH COMMANDS");
    char *gbody = strndup(glob, (size_t)(gend - glob));
    char *gend_help = strstr(cmds_end, "\n\n");
    char *ghelp = strndup(cmds_end, gend_help ? (size_t)(gend_help - cmds_end) : strlen(cmds_end));
    char *want = long_options(ghelp), *got = long_options(gbody);
    free(ghelp);
    cr_assert_str_eq(got, want);
    free(want);
    free(got);
    free(gbody);
    jb_test_proc_free(&top);
    free(page);
}

/* groff reads it without a warning (-ww: all of them), where groff is installed. */
Test(man, the_page_renders_without_warnings) {
    struct jb_test_proc p;
    jb_test_run(&p, "command -v groff");
    int have = p.status == 0;
    jb_test_proc_free(&p);
    if (!have) cr_skip_test("groff is not installed (apt-get install groff-base)");
    const char *src = getenv("JB_SRCDIR");
    jb_test_run(&p, "groff -man -Tutf8 -ww -z '%s/doc/joulebench.1'", src ? src : ".");
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert_str_eq(p.err, "", "groff warnings: %s", p.err);
    jb_test_proc_free(&p);
}

/* A full disk under `> file`: the command fails with exit 2 and says so. */
Test(cli, a_failed_write_of_stdout_is_exit_two_with_the_reason) {
    struct jb_test_proc p;
    jb_test_run(&p, "'%s' --help > /dev/full", jb_test_bin());
    cr_assert_eq(p.status, 2, "%s", p.err);
    cr_assert(strstr(p.err, "cannot write the standard output: No space left on device"), "%s",
              p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' suites --json > /dev/full", jb_test_bin());
    cr_assert_eq(p.status, 2, "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' suites > /dev/null", jb_test_bin());
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
}

/* Every command that writes files creates their directories, as `run --out` does. */
Test(cli, writers_create_the_directories_they_write_into, .timeout = 60) {
    char *root = jb_test_tmpdir();
    struct jb_test_proc p;
    jb_test_run(&p,
                "'%s' measure --meter estimate --idle-s 0 --json '%s/a/b/m.json' --trace "
                "'%s/c/d/t.csv' -- true && '%s' synth --out '%s/e/f' --n 1 >/dev/null && "
                "test -s '%s/a/b/m.json' && test -s '%s/c/d/t.csv' && test -d '%s/e/f'",
                jb_test_bin(), root, root, jb_test_bin(), root, root, root, root);
    cr_assert_eq(p.status, 0, "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_rmtree(root);
    free(root);
}
