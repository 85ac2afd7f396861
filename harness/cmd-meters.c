#include "config.h"

#include "harness/harness.h"

#include "energy/meter.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void) {
    printf("usage: joulebench meters [--json]\n"
           "\n"
           "Lists every energy backend joulebench knows, whether this machine has it, the\n"
           "domains it reads, and for each one that is unavailable, why and what to do.\n"
           "\n"
           "  --json       one JSON object on stdout instead of the table\n"
           "  -h, --help   this text\n");
}

static int run(int argc, char **argv) {
    int json = 0;
    int status = harness_parse_json_only("meters", argc, argv, usage, &json);
    if (status >= 0) return status;

    struct meter_backend_status st[METER_MAX_BACKENDS];
    int n = meter_backends_probe(st, METER_MAX_BACKENDS, NULL);
    if (json) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:s}", "name", st[i].name,
                                                 "source", meter_source_name(st[i].source),
                                                 "available", st[i].available, "detail",
                                                 st[i].detail));
        json_t *root = json_pack("{s:o}", "backends", arr);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        json_decref(root);
        return 0;
    }
    printf("%-9s %-10s %-9s %s\n", "backend", "available", "figures", "details");
    for (int i = 0; i < n; i++)
        printf("%-9s %-10s %-9s %s\n", st[i].name, st[i].available ? "yes" : "no",
               meter_source_name(st[i].source), st[i].detail);
    return 0;
}

const struct harness_cmd cmd_meters = {
    .name = "meters",
    .summary = "which energy backends and domains this machine has, and why others are not",
    .run = run,
    .usage = usage,
};
