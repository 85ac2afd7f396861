#include "config.h"

#include "evals/evals.h"

#include <stdlib.h>
#include <string.h>

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Copies s[0..n) into a new string with whitespace runs collapsed to one space and trimmed. */
static char *collapse(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_space(s[i])) {
            pending_space = o > 0;
            continue;
        }
        if (pending_space) out[o++] = ' ';
        pending_space = 0;
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

static char *most_frequent_line(const char *text) {
    size_t n_lines = 1;
    for (const char *p = text; *p; p++) n_lines += *p == '\n';
    char **lines = calloc(n_lines, sizeof *lines);
    if (!lines) return NULL;
    size_t k = 0;
    char *best = NULL;
    for (const char *p = text;;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *l = collapse(p, len);
        if (!l) goto out;
        lines[k++] = l;
        if (!e) break;
        p = e + 1;
    }
    size_t best_count = 0, best_i = 0;
    for (size_t i = 0; i < k; i++) {
        if (!lines[i][0]) continue;
        size_t c = 0;
        for (size_t j = 0; j < k; j++) c += strcmp(lines[i], lines[j]) == 0;
        if (c > best_count) { /* strictly greater: ties keep the earliest line */
            best_count = c;
            best_i = i;
        }
    }
    best = strdup(best_count ? lines[best_i] : "");
out:
    for (size_t i = 0; i < k; i++) free(lines[i]);
    free(lines);
    return best;
}

char *evals_answer_extract(const char *text) {
    const char *tag = "Answer:";
    const char *a = strstr(text, tag);
    if (a) {
        a += strlen(tag);
        const char *b = strstr(a, tag);
        return collapse(a, b ? (size_t)(b - a) : strlen(a));
    }
    if (strchr(text, '\n')) return most_frequent_line(text);
    return collapse(text, strlen(text));
}
