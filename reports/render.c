/* What the formats share: the format list, dispatch, writing report files atomically, and the
 * `~` marking of estimated energy (energy.md §5). */
#include "config.h"

#include "reports/reports-impl.h"

#include "common/jb-err.h"
#include "common/jb-mmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int reports_formats_parse(const char *s, int *mask, struct jb_err *err) {
    *mask = 0;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 2 && !strncmp(p, "md", 2))
            *mask |= REPORTS_FMT_MD;
        else if (n == 4 && !strncmp(p, "html", 4))
            *mask |= REPORTS_FMT_HTML;
        else if (n == 3 && !strncmp(p, "csv", 3))
            *mask |= REPORTS_FMT_CSV;
        else
            return jb_err_set(err, JB_EINVAL, "unknown report format '%.*s' (md, html, csv)",
                              (int)n, p);
        p += n;
        if (*p == ',') p++;
    }
    if (!*mask) return jb_err_set(err, JB_EINVAL, "no report format given (md, html, csv)");
    return 0;
}

const char *reports_fmt_energy(char *buf, size_t len, double v, bool estimated) {
    snprintf(buf, len, "%s%.4g", estimated ? "~" : "", v);
    return buf;
}

const char *reports_carbon_source(char *buf, size_t len, const json_t *run) {
    const char *src = reports_json_str(run, "carbon.source", "unknown source");
    double year = reports_json_num(run, "carbon.year", 0);
    char y[16];
    snprintf(y, sizeof y, "%.0f", year);
    if (year > 0 && !strstr(src, y)) snprintf(buf, len, "%s, %s", src, y);
    else snprintf(buf, len, "%s", src);
    return buf;
}

int reports_render(struct reports_run *const *runs, int n, enum reports_format fmt, FILE *f,
                   struct jb_err *err) {
    int rc;
    switch (fmt) {
    case REPORTS_FMT_MD: rc = reports_render_md(runs, n, f, err); break;
    case REPORTS_FMT_HTML: rc = reports_render_html(runs, n, f, err); break;
    case REPORTS_FMT_CSV: rc = reports_render_csv(runs, n, f, err); break;
    default: return jb_err_set(err, JB_EINVAL, "unknown report format %d", (int)fmt);
    }
    if (!rc && ferror(f)) rc = jb_err_set(err, JB_EIO, "write error while rendering the report");
    return rc;
}

int reports_write(struct reports_run *const *runs, int n, int mask, const char *dir,
                  char *written[3], struct jb_err *err) {
    static const struct {
        enum reports_format fmt;
        const char *name;
    } files[] = {
        {REPORTS_FMT_MD, "report.md"},
        {REPORTS_FMT_HTML, "report.html"},
        {REPORTS_FMT_CSV, "report.csv"},
    };
    int rc = 0, k = 0;
    if (written) written[0] = written[1] = written[2] = NULL;
    for (int i = 0; i < 3 && !rc; i++) {
        if (!(mask & files[i].fmt)) continue;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) return jb_err_errno(err, errno, "open_memstream");
        rc = reports_render(runs, n, files[i].fmt, f, err);
        fclose(f);
        size_t pl = strlen(dir) + 16;
        char *path = malloc(pl);
        if (!rc && !path) rc = jb_err_set(err, JB_ENOMEM, "out of memory");
        if (!rc) {
            snprintf(path, pl, "%s/%s", dir, files[i].name);
            rc = jb_file_write_atomic(path, buf, len, err);
        }
        free(buf);
        if (!rc && written)
            written[k++] = path;
        else
            free(path);
    }
    return rc;
}
