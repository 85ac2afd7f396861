/* evals.h: benchmarks for joulebench: suites, dataset loaders, answer extraction and the
 * official metrics. Knows nothing about the engine or energy. Design: shared/design/evals.md.
 *
 *     char *ans = evals_answer_extract(" Answer: 42 Answer: x");   // "42"
 *     if (!ans) return JB_ENOMEM;
 *     score = metric(ans, refs);
 *     free(ans);
 */
#ifndef EVALS_H
#define EVALS_H

/* The answer string a metric receives from decoded model text (evals.md §3): the text between
 * the first and second "Answer:" if there is one; else, for several lines, the most frequent
 * line after collapsing whitespace (ties: the earliest; blank lines ignored); else the text with
 * whitespace runs collapsed. Always trimmed. Returns a malloc'd string, NULL when out of memory. */
char *evals_answer_extract(const char *text);

#endif /* EVALS_H */
