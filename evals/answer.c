/* Answer extraction (evals.md §3) as Molmo's evaluator does it: blank lines are lines of the
 * most-frequent-line vote, and whitespace is Python's (NBSP, em space ... included). */
#include "config.h"

#include "evals/evals-impl.h"

#include <stdlib.h>
#include <string.h>

/* Copies s[0..n) into a new string with whitespace runs collapsed to one space and trimmed. */
static char *collapse(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n;) {
        size_t k = evals_space_len(s + i, n - i);
        if (k) {
            pending_space = o > 0;
            i += k;
            continue;
        }
        if (pending_space) out[o++] = ' ';
        pending_space = 0;
        out[o++] = s[i++];
    }
    out[o] = '\0';
    return out;
}

/* The most frequent line of text[0..n) (whitespace collapsed in each), ties to the earliest. */
static char *most_frequent_line(const char *text, size_t n) {
    size_t n_lines = 1;
    for (size_t i = 0; i < n; i++) n_lines += text[i] == '\n';
    char **lines = calloc(n_lines, sizeof *lines);
    if (!lines) return NULL;
    size_t k = 0;
    char *best = NULL;
    for (const char *p = text, *end = text + n;;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
        char *l = collapse(p, len);
        if (!l) goto out;
        lines[k++] = l;
        if (!e) break;
        p = e + 1;
    }
    /* every line votes, blank ones too: "14\n\nWhy.\n\nSo 14" answers "" (blank twice) */
    size_t best_count = 0, best_i = 0;
    for (size_t i = 0; i < k; i++) {
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
    /* the decoded text is trimmed first: a leading or trailing newline makes no blank line */
    size_t s = 0, e = strlen(text);
    evals_trim(text, &s, &e);
    if (memchr(text + s, '\n', e - s)) return most_frequent_line(text + s, e - s);
    return collapse(text + s, e - s);
}
