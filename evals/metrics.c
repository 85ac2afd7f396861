/* The metrics of evals.md §4, each following the official scorer named there. */
#include "config.h"

#include "evals/evals-impl.h"

#include "common/jb-err.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static const char *const metric_names[EVALS_METRIC_COUNT_] = {
    "relaxed_accuracy", "anls", "vqa_accuracy", "vqa_accuracy_molmo",
    "mc_letter",        "exact_count", "pointing_f1",
};

const char *evals_metric_name(enum evals_metric m) {
    return (unsigned)m < EVALS_METRIC_COUNT_ ? metric_names[m] : NULL;
}

int evals_metric_from_name(const char *name, enum evals_metric *out, struct jb_err *err) {
    for (int i = 0; i < EVALS_METRIC_COUNT_; i++)
        if (strcmp(name, metric_names[i]) == 0) {
            *out = (enum evals_metric)i;
            return 0;
        }
    return jb_err_set(err, JB_ENOTFOUND,
                      "unknown metric '%s' (known: relaxed_accuracy, anls, vqa_accuracy, "
                      "vqa_accuracy_molmo, mc_letter, exact_count, pointing_f1)", name);
}

bool evals_metric_is_binary(enum evals_metric m) {
    return m == EVALS_METRIC_RELAXED_ACCURACY || m == EVALS_METRIC_MC_LETTER ||
           m == EVALS_METRIC_EXACT_COUNT;
}

static int is_ascii_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* ---------------------------------------------------------------------------------------------
 * UTF-8 helpers */

/* Decodes s into code points (malloc'd, *n of them); bytes that are not valid UTF-8 stand for
 * themselves (Latin-1), so no input is rejected. */
static utf8proc_int32_t *decode(const char *s, size_t *n) {
    size_t len = strlen(s);
    utf8proc_int32_t *cp = malloc((len + 1) * sizeof *cp);
    if (!cp) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(len - i), &c);
        if (r <= 0) {
            c = (unsigned char)s[i];
            r = 1;
        }
        cp[k++] = c;
        i += (size_t)r;
    }
    *n = k;
    return cp;
}

char *evals_utf8_lower(const char *s) {
    size_t n;
    utf8proc_int32_t *cp = decode(s, &n);
    if (!cp) return NULL;
    char *out = malloc(4 * n + 1);
    if (out) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            o += (size_t)utf8proc_encode_char(utf8proc_tolower(cp[i]), (utf8proc_uint8_t *)out + o);
        out[o] = '\0';
    }
    free(cp);
    return out;
}

/* Python's str.isspace() for the code points it can meet here. */
static bool py_space(utf8proc_int32_t c) {
    if (c < 128) return is_ascii_space(c) || (c >= 0x1c && c <= 0x1f);
    if (c == 0x85) return true;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
           cat == UTF8PROC_CATEGORY_ZP;
}

size_t evals_space_len(const char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c0 = (unsigned char)s[0];
    if (c0 < 0x80) return py_space(c0) ? 1 : 0;
    utf8proc_int32_t c;
    utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    return r > 0 && py_space(c) ? (size_t)r : 0;
}

size_t evals_space_before(const char *s, size_t n) {
    if (n == 0) return 0;
    size_t start = n - 1; /* back over at most 3 continuation bytes to the lead byte */
    while (start > 0 && n - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
    return evals_space_len(s + start, n - start) == n - start ? n - start : 0;
}

void evals_trim(const char *s, size_t *a, size_t *b) {
    size_t k;
    while (*a < *b && (k = evals_space_len(s + *a, *b - *a)) > 0) *a += k;
    while (*b > *a && (k = evals_space_before(s + *a, *b - *a)) > 0) *b -= k;
}

/* ---------------------------------------------------------------------------------------------
 * relaxed_accuracy */

bool evals_parse_pyfloat(const char *s, double *out) {
    size_t a = 0, b = strlen(s);
    while (a < b && is_ascii_space((unsigned char)s[a])) a++;
    while (b > a && is_ascii_space((unsigned char)s[b - 1])) b--;
    char *buf = malloc(b - a + 2);
    if (!buf) return false;
    size_t o = 0, i = a;
    bool ok = false;
    if (i < b && (s[i] == '+' || s[i] == '-')) buf[o++] = s[i++];
    /* inf, infinity, nan in any case */
    static const char *const words[] = {"infinity", "inf", "nan"};
    for (int w = 0; w < 3; w++) {
        size_t wl = strlen(words[w]);
        if (b - i == wl && strncasecmp(s + i, words[w], wl) == 0) {
            double v = w == 2 ? NAN : INFINITY;
            *out = buf[0] == '-' ? -v : v;
            free(buf);
            return true;
        }
    }
    /* digitpart: digit (["_"] digit)*; copies the digits, returns how many */
#define DIGITPART()                                                                  \
    ({                                                                               \
        size_t nd_ = 0;                                                              \
        while (i < b) {                                                              \
            if (is_digit(s[i])) {                                                    \
                buf[o++] = s[i++];                                                   \
                nd_++;                                                               \
            } else if (s[i] == '_' && nd_ > 0 && i + 1 < b && is_digit(s[i + 1])) { \
                i++;                                                                 \
            } else                                                                   \
                break;                                                               \
        }                                                                            \
        nd_;                                                                         \
    })
    size_t int_digits = DIGITPART();
    size_t frac_digits = 0;
    if (i < b && s[i] == '.') {
        buf[o++] = s[i++];
        frac_digits = DIGITPART();
    }
    if (int_digits + frac_digits == 0) goto out;
    if (i < b && (s[i] == 'e' || s[i] == 'E')) {
        buf[o++] = s[i++];
        if (i < b && (s[i] == '+' || s[i] == '-')) buf[o++] = s[i++];
        if (DIGITPART() == 0) goto out;
    }
#undef DIGITPART
    if (i != b) goto out;
    buf[o] = '\0';
    /* The grammar is checked; the conversion must not depend on the process locale. */
    locale_t c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_loc) goto out;
    *out = strtod_l(buf, NULL, c_loc);
    freelocale(c_loc);
    ok = true;
out:
    free(buf);
    return ok;
}

/* num(s) of evals.md §4: Python float() with trailing '%' dropped and the value divided by 100. */
static bool relaxed_num(const char *s, double *v) {
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '%') {
        while (n > 0 && s[n - 1] == '%') n--;
        char *t = strndup(s, n);
        if (!t) return false;
        bool ok = evals_parse_pyfloat(t, v);
        free(t);
        if (ok) *v /= 100.0;
        return ok;
    }
    return evals_parse_pyfloat(s, v);
}

static bool lower_equal(const char *a, const char *b) {
    char *la = evals_utf8_lower(a), *lb = evals_utf8_lower(b);
    bool eq = la && lb && strcmp(la, lb) == 0;
    free(la);
    free(lb);
    return eq;
}

double evals_relaxed_accuracy(const char *pred, const char *const *refs, size_t n_refs) {
    double p, r;
    bool p_ok = relaxed_num(pred, &p);
    for (size_t i = 0; i < n_refs; i++) {
        bool correct;
        if (p_ok && relaxed_num(refs[i], &r) && r != 0.0)
            correct = fabs(p - r) / fabs(r) <= 0.05;
        else
            correct = lower_equal(pred, refs[i]);
        if (correct) return 1.0;
    }
    return 0.0;
}

/* ---------------------------------------------------------------------------------------------
 * anls */

/* trim(lower(s)) as code points. */
static utf8proc_int32_t *anls_norm(const char *s, size_t *n) {
    utf8proc_int32_t *cp = decode(s, n);
    if (!cp) return NULL;
    size_t a = 0, b = *n;
    while (a < b && py_space(cp[a])) a++;
    while (b > a && py_space(cp[b - 1])) b--;
    for (size_t i = a; i < b; i++) cp[i - a] = utf8proc_tolower(cp[i]);
    *n = b - a;
    return cp;
}

/* Unit-cost Levenshtein distance, two rows. */
static size_t levenshtein(const utf8proc_int32_t *a, size_t na, const utf8proc_int32_t *b,
                          size_t nb, size_t *row) {
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

double evals_anls(const char *pred, const char *const *refs, size_t n_refs) {
    size_t nb;
    utf8proc_int32_t *b = anls_norm(pred, &nb);
    if (!b) return 0.0;
    double best = 0.0;
    for (size_t i = 0; i < n_refs; i++) {
        size_t na;
        utf8proc_int32_t *a = anls_norm(refs[i], &na);
        size_t *row = malloc((nb + 1) * sizeof *row);
        if (a && row) {
            size_t mx = na > nb ? na : nb;
            double nl = mx == 0 ? 0.0 : (double)levenshtein(a, na, b, nb, row) / (double)mx;
            double s = nl < 0.5 ? 1.0 - nl : 0.0;
            if (s > best) best = s;
        }
        free(a);
        free(row);
    }
    free(b);
    return best;
}

/* ---------------------------------------------------------------------------------------------
 * vqa_accuracy */

static const char vqa_punct[] = ";/[]\"{}()=+\\_->"
                                "<@`,?!";

char *evals_vqa_punctuation(const char *in) {
    size_t n = strlen(in);
    char *out = malloc(n + 1), *tmp = malloc(n + 1);
    if (!out || !tmp) {
        free(out);
        free(tmp);
        return NULL;
    }
    memcpy(out, in, n + 1);
    bool comma = false; /* (\d)(\,)(\d) anywhere in the input */
    for (size_t i = 0; i + 2 < n; i++)
        if (is_digit(in[i]) && in[i + 1] == ',' && is_digit(in[i + 2])) comma = true;
    for (const char *p = vqa_punct; *p; p++) {
        bool near_space = false;
        for (size_t i = 0; i + 1 < n; i++)
            if ((in[i] == *p && in[i + 1] == ' ') || (in[i] == ' ' && in[i + 1] == *p))
                near_space = true;
        size_t o = 0;
        for (size_t i = 0; out[i]; i++) {
            if (out[i] != *p)
                tmp[o++] = out[i];
            else if (!(near_space || comma))
                tmp[o++] = ' ';
        }
        tmp[o] = '\0';
        memcpy(out, tmp, o + 1);
    }
    /* periodStrip.sub("", s, re.UNICODE): re.UNICODE (32) lands in `count`, so at most the
     * first 32 periods not followed by a digit go. */
    size_t o = 0;
    int removed = 0;
    for (size_t i = 0; out[i]; i++) {
        if (out[i] == '.' && !is_digit(out[i + 1]) && removed < 32) {
            removed++;
            continue;
        }
        tmp[o++] = out[i];
    }
    tmp[o] = '\0';
    free(out);
    return tmp;
}

static const char *const number_words[] = {"zero", "one", "two", "three", "four", "five",
                                           "six",  "seven", "eight", "nine", "ten"};

char *evals_vqa_digits_articles(const char *s) {
    char *low = evals_utf8_lower(s);
    if (!low) return NULL;
    size_t n = strlen(low);
    /* the longest replacement ("'ow's'at" for 7 bytes, "somebody'd've" for 12) never more than
     * doubles a word, digits shrink words */
    char *out = malloc(2 * n + 2);
    if (!out) {
        free(low);
        return NULL;
    }
    size_t o = 0;
    /* str.split(): runs of (Unicode) whitespace separate the words */
    for (size_t i = 0; i < n;) {
        size_t k = evals_space_len(low + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        size_t e = i, sep = 0;
        while (e < n && !(sep = evals_space_len(low + e, n - e))) e++;
        low[e] = '\0'; /* the separator's first byte (or the end) ends the word */
        const char *word = low + i;
        i = e + sep;
        static const char *const digits[] = {"0", "1", "2", "3", "4", "5",
                                             "6", "7", "8", "9", "10"};
        if (strcmp(word, "none") == 0) word = "0";
        for (int i = 0; i < 11; i++)
            if (strcmp(word, number_words[i]) == 0) word = digits[i];
        if (strcmp(word, "a") == 0 || strcmp(word, "an") == 0 || strcmp(word, "the") == 0)
            continue;
        for (int i = 0; i < evals_vqa_n_contractions; i++)
            if (strcmp(word, evals_vqa_contractions[i][0]) == 0) {
                word = evals_vqa_contractions[i][1];
                break;
            }
        size_t wl = strlen(word);
        if (o) out[o++] = ' ';
        memcpy(out + o, word, wl);
        o += wl;
    }
    out[o] = '\0';
    free(low);
    return out;
}

/* s with \n and \t made spaces, then trimmed of whitespace (str.strip(): Unicode too). */
static char *vqa_clean(const char *s) {
    size_t a = 0, b = strlen(s);
    evals_trim(s, &a, &b);
    char *t = strndup(s + a, b - a);
    if (t)
        for (char *p = t; *p; p++)
            if (*p == '\n' || *p == '\t') *p = ' ';
    return t;
}

static char *vqa_norm_pred(const char *pred) {
    char *c = vqa_clean(pred);
    char *p = c ? evals_vqa_punctuation(c) : NULL;
    char *d = p ? evals_vqa_digits_articles(p) : NULL;
    free(c);
    free(p);
    return d;
}

double evals_vqa_accuracy(const char *pred, const char *const *refs, size_t n_refs) {
    if (n_refs == 0) return 0.0;
    char *res = vqa_norm_pred(pred);
    char **gt = calloc(n_refs, sizeof *gt);
    double acc = 0.0;
    if (!res || !gt) goto out;
    bool all_same = true;
    for (size_t i = 0; i < n_refs; i++) {
        if (!(gt[i] = vqa_clean(refs[i]))) goto out;
        if (i && strcmp(gt[i], gt[0]) != 0) all_same = false;
    }
    if (!all_same)
        for (size_t i = 0; i < n_refs; i++) {
            char *p = evals_vqa_punctuation(gt[i]);
            if (!p) goto out;
            free(gt[i]);
            gt[i] = p;
        }
    size_t k = 0;
    for (size_t i = 0; i < n_refs; i++) k += strcmp(gt[i], res) == 0;
    /* leave-one-out: a matching reference left out leaves k - 1 matches, another leaves k */
    double sum = 0.0;
    for (size_t i = 0; i < n_refs; i++) {
        size_t m = k - (strcmp(gt[i], res) == 0);
        double a = (double)m / 3.0;
        sum += a < 1.0 ? a : 1.0;
    }
    acc = sum / (double)n_refs;
out:
    if (gt)
        for (size_t i = 0; i < n_refs; i++) free(gt[i]);
    free(gt);
    free(res);
    return acc;
}

double evals_vqa_accuracy_molmo(const char *pred, const char *const *refs, size_t n_refs) {
    char *res = vqa_norm_pred(pred);
    if (!res) return 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n_refs; i++) {
        char *g = vqa_norm_pred(refs[i]);
        if (g && strcmp(g, res) == 0) k++;
        free(g);
    }
    free(res);
    double a = (double)k / 3.0;
    return a < 1.0 ? a : 1.0;
}

/* ---------------------------------------------------------------------------------------------
 * mc_letter */

static int is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static int is_alpha(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

/* The letter index from rules (1)-(4), or -1 when none fires. */
static int mc_rules(const char *s) {
    size_t n = strlen(s);
    /* (1) the whole string is a letter, optionally bracketed, optionally followed by . or : */
    size_t i = 0;
    if (i < n && (s[i] == '(' || s[i] == '[')) i++;
    if (i < n && is_alpha(s[i])) {
        int letter = s[i] & ~0x20;
        i++;
        if (i < n && (s[i] == ')' || s[i] == ']')) i++;
        if (i < n && (s[i] == '.' || s[i] == ':')) i++;
        if (i == n) return letter - 'A';
    }
    /* (2) "B. Paris", "B) Paris", "B: Paris" */
    if (n >= 3 && is_upper(s[0]) && (s[1] == '.' || s[1] == ')' || s[1] == ':') && s[2] == ' ')
        return s[0] - 'A';
    /* (3) the last "answer is X", "answer: X" or "answer: (X)" */
    int last = -1;
    for (size_t k = 0; k + 6 <= n; k++) {
        if (strncasecmp(s + k, "answer", 6) != 0) continue;
        size_t j = k + 6, w;
        size_t sp = j;
        while (j < n && (w = evals_space_len(s + j, n - j))) j += w;
        /* "is" in any case, as "answer" ("ANSWER IS C") */
        if (j + 2 <= n && (s[j] | 0x20) == 'i' && (s[j + 1] | 0x20) == 's' && j > sp) {
            j += 2;
            size_t sp2 = j;
            while (j < n && (w = evals_space_len(s + j, n - j))) j += w;
            if (j == sp2) continue;
        } else if (j < n && s[j] == ':') {
            j++;
            while (j < n && (w = evals_space_len(s + j, n - j))) j += w;
            if (j < n && s[j] == '(') {
                if (!(j + 2 < n + 0 && is_upper(s[j + 1]) && s[j + 2] == ')')) continue;
                j++;
            }
        } else
            continue;
        if (j < n && is_upper(s[j]) && !(j + 1 < n && is_alpha(s[j + 1]))) last = s[j] - 'A';
    }
    if (last >= 0) return last;
    /* (4) exactly one "(X)" */
    int found = -1, count = 0;
    for (size_t k = 0; k + 3 <= n; k++)
        if (s[k] == '(' && is_upper(s[k + 1]) && s[k + 2] == ')') {
            found = s[k + 1] - 'A';
            count++;
        }
    return count == 1 ? found : -1;
}

static char *strip_trailing_dots_lower(const char *s) {
    char *l = evals_utf8_lower(s);
    if (!l) return NULL;
    size_t n = strlen(l);
    while (n > 0 && l[n - 1] == '.') l[--n] = '\0';
    return l;
}

int evals_mc_letter(const char *answer, const char *const *choices, size_t n_choices) {
    size_t range = n_choices ? n_choices : 26;
    int letter = mc_rules(answer);
    if (letter < 0 && n_choices) {
        /* (5) the answer is one option's text */
        char *a = strip_trailing_dots_lower(answer);
        for (size_t i = 0; a && i < n_choices; i++) {
            char *c = strip_trailing_dots_lower(choices[i]);
            bool eq = c && strcmp(a, c) == 0;
            free(c);
            if (eq) {
                letter = (int)i;
                break;
            }
        }
        free(a);
    }
    return letter >= 0 && (size_t)letter < range ? letter : -1;
}

/* ---------------------------------------------------------------------------------------------
 * exact_count */

static const char *const count_words[] = {
    "zero",   "one",     "two",     "three",     "four",     "five",    "six",
    "seven",  "eight",   "nine",    "ten",       "eleven",   "twelve",  "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};

/* s[0..n) as an optionally signed decimal integer. */
static bool parse_int(const char *s, size_t n, long long *v) {
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n) return false;
    long long x = 0;
    for (; i < n; i++) {
        if (!is_digit(s[i])) return false;
        if (x > (INT64_MAX - 9) / 10) return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = neg ? -x : x;
    return true;
}

bool evals_count_parse(const char *text, long long *count) {
    char *t = evals_utf8_lower(text);
    if (!t) return false;
    bool ok = false;
    size_t a = 0, b = strlen(t);
    evals_trim(t, &a, &b);
    while (b > a && t[b - 1] == '.') b--;
    evals_trim(t, &a, &b);
    /* (1), (2): the last whitespace-separated token (Unicode whitespace, as str.split()) */
    size_t ts = b;
    while (ts > a && !evals_space_before(t + a, ts - a)) ts--;
    if (b > ts) {
        if (parse_int(t + ts, b - ts, count)) {
            ok = true;
            goto out;
        }
        for (int i = 0; i <= 20; i++)
            if (strlen(count_words[i]) == b - ts && strncmp(t + ts, count_words[i], b - ts) == 0) {
                *count = i;
                ok = true;
                goto out;
            }
    }
    /* (3) the last "a total of N" in the first line */
    size_t line_end = a;
    while (line_end < b && t[line_end] != '\n') line_end++;
    const char *key = "a total of ";
    size_t kl = strlen(key);
    for (size_t k = a; k + kl <= line_end; k++) {
        if (strncmp(t + k, key, kl) != 0) continue;
        size_t j = k + kl, e = j;
        while (e < line_end && is_digit(t[e])) e++;
        if (e > j && parse_int(t + j, e - j, count)) ok = true;
    }
    if (ok) goto out;
    /* (4) the whole word "none" */
    for (size_t k = a; k + 4 <= b; k++)
        if (strncmp(t + k, "none", 4) == 0 && (k == a || !is_alpha(t[k - 1])) &&
            !(k + 4 < b && (is_alpha(t[k + 4]) || is_digit(t[k + 4])))) {
            *count = 0;
            ok = true;
            break;
        }
out:
    free(t);
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch */

static char *trimmed(const char *s) {
    size_t a = 0, b = strlen(s);
    evals_trim(s, &a, &b);
    return strndup(s + a, b - a);
}

char *evals_metric_input(enum evals_metric m, const char *generated) {
    bool raw = m == EVALS_METRIC_EXACT_COUNT || m == EVALS_METRIC_POINTING_F1;
    return raw ? trimmed(generated) : evals_answer_extract(generated);
}

int evals_score_text(enum evals_metric m, const char *generated, const struct evals_refs *r,
                     struct evals_score *out, struct jb_err *err) {
    memset(out, 0, sizeof *out);
    if (m != EVALS_METRIC_POINTING_F1 && r->n_refs == 0)
        return jb_err_set(err, JB_EINVAL, "%s: no reference to score against",
                          evals_metric_name(m));
    char *ans = evals_metric_input(m, generated);
    if (!ans) return jb_err_set(err, JB_ENOMEM, "out of memory scoring an answer");
    int rc = 0;
    switch (m) {
    case EVALS_METRIC_RELAXED_ACCURACY:
        out->score = evals_relaxed_accuracy(ans, r->refs, r->n_refs);
        break;
    case EVALS_METRIC_ANLS: out->score = evals_anls(ans, r->refs, r->n_refs); break;
    case EVALS_METRIC_VQA_ACCURACY: out->score = evals_vqa_accuracy(ans, r->refs, r->n_refs); break;
    case EVALS_METRIC_VQA_ACCURACY_MOLMO:
        out->score = evals_vqa_accuracy_molmo(ans, r->refs, r->n_refs);
        break;
    case EVALS_METRIC_MC_LETTER: {
        size_t range = r->n_choices ? r->n_choices : 26;
        int want = evals_mc_letter(r->refs[0], r->choices, r->n_choices);
        if (want < 0 || (size_t)want >= range) {
            rc = jb_err_set(err, JB_EINVAL, "mc_letter: reference '%s' is not a letter in range",
                            r->refs[0]);
            break;
        }
        int got = evals_mc_letter(ans, r->choices, r->n_choices);
        out->invalid = got < 0;
        out->score = got == want;
        break;
    }
    case EVALS_METRIC_EXACT_COUNT: {
        long long want, got;
        if (!evals_count_parse(r->refs[0], &want)) {
            rc = jb_err_set(err, JB_EINVAL, "exact_count: reference '%s' is not a count",
                            r->refs[0]);
            break;
        }
        out->invalid = !evals_count_parse(ans, &got);
        if (!out->invalid) {
            out->score = got == want;
            out->close = llabs(got - want) <= 1;
        }
        break;
    }
    case EVALS_METRIC_POINTING_F1:
        if (r->n_regions && (r->width <= 0 || r->height <= 0)) {
            rc = jb_err_set(err, JB_EINVAL, "pointing_f1: image width and height are needed");
            break;
        }
        evals_pointing_score(ans, r->regions, r->n_regions, r->width, r->height, out);
        break;
    default: rc = jb_err_set(err, JB_EINVAL, "unknown metric %d", (int)m);
    }
    free(ans);
    return rc;
}
