/* reports.h: renders joulebench result records (run.json, samples.jsonl, power.csv) as JSON,
 * CSV, Markdown and HTML, and compares runs. Reads result files only.
 *
 *     FILE *f = fopen("summary.csv", "w");
 *     reports_csv_field(f, "chart, bar \"v2\"");   // writes "chart, bar ""v2"""
 *     fputc('\n', f);
 */
#ifndef REPORTS_H
#define REPORTS_H

#include <stdio.h>

/* Writes s as one RFC 4180 CSV field: quoted (with quotes doubled) when it holds a comma,
 * quote, CR or LF, or starts or ends with a space; as is otherwise. Returns 0 or -1 on a write
 * error. */
int reports_csv_field(FILE *f, const char *s);

#endif /* REPORTS_H */
