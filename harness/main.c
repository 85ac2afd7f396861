/* joulebench: how much accuracy a vision-language model buys per joule, and at what CO2. */
#include "config.h"

#include "harness/harness.h"

#include "common/jb-log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void usage(void) {
    printf("usage: joulebench [-v|-q] COMMAND [OPTIONS]\n"
           "       joulebench --version | help [COMMAND]\n"
           "\n"
           "commands:\n");
    for (int i = 0; harness_cmds[i]; i++)
        printf("  %-10s %s\n", harness_cmds[i]->name, harness_cmds[i]->summary);
    printf("\n"
           "global options:\n"
           "  -v, --verbose   more messages on stderr (repeat for debug)\n"
           "  -q, --quiet     errors only\n"
           "  --version       print the version and the git commit it was built from\n"
           "\n"
           "'joulebench COMMAND --help' describes each command. Exit status: 0 success,\n"
           "1 a negative verdict (compare found a regression), 2 error.\n");
}

/* The global options, then the command. */
static int dispatch(int argc, char **argv) {
    int level = JB_LOG_WARN, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("%s\n", harness_version_string());
            return 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            if (level < JB_LOG_DEBUG) level++;
        } else if (strcmp(a, "-vv") == 0) {
            level = JB_LOG_DEBUG;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            level = JB_LOG_ERROR;
        } else {
            fprintf(stderr, "joulebench: unknown option '%s' (see 'joulebench --help')\n", a);
            return 2;
        }
    }
    jb_log_set_level((enum jb_log_level)level);
    if (i >= argc) {
        usage();
        return 2;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 < argc) {
            const struct harness_cmd *c = harness_cmd_find(argv[i + 1]);
            if (!c) {
                fprintf(stderr, "joulebench: unknown command '%s' (see 'joulebench help')\n",
                        argv[i + 1]);
                return 2;
            }
            c->usage();
            return 0;
        }
        usage();
        return 0;
    }
    if (strcmp(name, "version") == 0) {
        printf("%s\n", harness_version_string());
        return 0;
    }
    const struct harness_cmd *c = harness_cmd_find(name);
    if (!c) {
        fprintf(stderr, "joulebench: unknown command '%s' (see 'joulebench help')\n", name);
        return 2;
    }
    return c->run(argc - i, argv + i);
}

/* Every command's output reaches its file, or the command fails: a full disk under
 * `joulebench report ... > file` is exit 2 with the reason, never a silent short file. */
int main(int argc, char **argv) {
    int rc = dispatch(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "joulebench: cannot write the standard output: %s\n",
                strerror(errno ? errno : EIO));
        return 2;
    }
    return rc;
}
