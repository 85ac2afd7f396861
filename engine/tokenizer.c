/* tokenizer.c: byte-level BPE from a Hugging Face tokenizer.json, reproducing
 * `tokenizer.encode(text, add_special_tokens=False)` of the `tokenizers` library for the files
 * Molmo ships (molmo.md §3.1; ../shared/golden/tokenizer/README.md):
 *
 *   1. added tokens with "normalized": false are split out of the raw text (leftmost-longest);
 *   2. every other piece is normalized (NFC ... via utf8proc) and the "normalized": true added
 *      tokens are split out of it;
 *   3. the pre-tokenizer cuts the rest into words: Split (the file's regex, PCRE2 in UTF + UCP
 *      mode, with its behavior and invert), then ByteLevel (the GPT-2 regex when use_regex);
 *   4. each word's bytes start as the ids of their GPT-2 byte-alphabet characters and are merged
 *      pairwise, lowest merge rank first, leftmost on ties (the order of tokenizers' BPE heap).
 *
 * Decoding maps every token's characters back through the byte alphabet (a token with a character
 * outside it, such as an added "   ", is taken as its raw UTF-8, as tokenizers' ByteLevel decoder
 * does) and repairs invalid UTF-8 with U+FFFD like Rust's String::from_utf8_lossy.
 *
 * Known limits: character properties (\p{L}, \p{N}, White_Space) come from PCRE2's Unicode
 * tables (Unicode 14 in PCRE2 10.42), so a character assigned later (e.g. CJK Extension H,
 * Unicode 15) is unassigned here; added tokens with lstrip/rstrip/single_word true are refused.
 */
#include "config.h"

#include "engine/molmo.h"

#include "common/jb-err.h"

#include "common/jb-json.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <stdlib.h>
#include <string.h>

/* The GPT-2 pre-tokenizer regex that ByteLevel applies when use_regex is true (tokenizers'
 * pre_tokenizers/byte_level.rs). */
static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum { F_VOCAB = 1, F_ADDED = 2, F_SPECIAL = 4 };
enum norm_kind { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD };
enum stage_kind { STAGE_SPLIT, STAGE_BYTELEVEL };
enum split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT,
                      SPLIT_CONTIGUOUS };

#define MAX_NORM 8
#define MAX_STAGES 8
#define MAX_ID (1 << 28)

struct stage {
    enum stage_kind kind;
    pcre2_code *re;                 /* Split's pattern; ByteLevel's GPT-2 regex when use_regex */
    enum split_behavior behavior;
    bool invert;
    bool add_prefix_space, use_regex;
};

struct added_token {
    uint32_t off, len;              /* content in tok->strs */
    uint32_t moff, mlen;            /* the form matched in text: the content, normalized when
                                       "normalized" (tokenizers normalizes it for its trie) */
    int32_t id;
    bool normalized, special;
};

/* Added tokens grouped by first byte, longest first within a group: the first one that matches
 * at a position is the leftmost-longest match there. */
struct matcher {
    uint32_t *order;                /* indices into tok->added */
    uint32_t n;
    uint32_t start[257];            /* order[start[b] .. start[b+1]) begin with byte b */
};

struct merge_slot {
    uint64_t key;                   /* left id << 32 | right id; UINT64_MAX = empty */
    int32_t rank, id;               /* merge rank (line in model.merges), merged token's id */
};

struct molmo_tokenizer {
    char *strs;                     /* every vocab string and added content */
    size_t strs_len, strs_cap;
    size_t n_ids;
    uint32_t *str_off, *str_len;    /* per id: the model.vocab string */
    uint8_t *flags;                 /* per id: F_* */
    int32_t *added_of;              /* per id: index into added, or -1 */
    int32_t *vocab_slots;           /* open addressing over vocab strings: ids, -1 empty */
    size_t vocab_mask;
    struct added_token *added;
    size_t n_added;
    struct matcher m_raw, m_norm;   /* "normalized": false / true added tokens */
    struct merge_slot *merges;
    size_t merge_mask;
    int32_t byte_id[256];           /* id of each byte's alphabet character */
    uint32_t byte_cp[256];          /* each byte's alphabet character */
    int16_t cp_byte[256 + 68];      /* the inverse: an alphabet character's byte, or -1 */
    enum norm_kind norm[MAX_NORM];
    int n_norm;
    struct stage stages[MAX_STAGES];
    int n_stages;
    bool ignore_merges;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;                 /* FNV-1a, 64 bit */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;                           /* murmur3 finalizer */
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    return k ^ (k >> 33);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* The GPT-2 byte alphabet (bytes_to_unicode): printable Latin-1 bytes stand for themselves, the
 * other 68 bytes for U+0100.. in byte order. */
static uint32_t byte_char(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return (uint32_t)b;
    int n = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174)) n++;
    return 256u + (uint32_t)n;
}

static int put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or -(bytes of its maximal valid prefix,
 * at least 1) when it is invalid: the unit Rust's from_utf8_lossy replaces by one U+FFFD. */
static int utf8_seq(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;                        /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;                        /* <= U+10FFFF */
    } else
        return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return -i;
        unsigned char c = s[i];
        if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return -i;
    }
    return need + 1;
}

/* Offset of the first invalid UTF-8 byte, or n. */
static size_t utf8_valid_prefix(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_seq(s + i, n - i);
        if (k < 0) return i;
        i += (size_t)k;
    }
    return n;
}

/* ---- the tables ----------------------------------------------------------------------------- */

static int strs_add(struct molmo_tokenizer *tok, const char *s, size_t n, uint32_t *off) {
    if (tok->strs_len + n + 1 > tok->strs_cap) {
        size_t cap = tok->strs_cap ? tok->strs_cap : 1 << 16;
        while (cap < tok->strs_len + n + 1) cap *= 2;
        char *p = realloc(tok->strs, cap);
        if (!p) return -1;
        tok->strs = p;
        tok->strs_cap = cap;
    }
    memcpy(tok->strs + tok->strs_len, s, n);
    tok->strs[tok->strs_len + n] = '\0';
    *off = (uint32_t)tok->strs_len;
    tok->strs_len += n + 1;
    return 0;
}

static int32_t vocab_find(const struct molmo_tokenizer *tok, const char *s, size_t n) {
    if (!tok->vocab_slots) return -1;
    size_t i = (size_t)hash_bytes(s, n) & tok->vocab_mask;
    for (;;) {
        int32_t id = tok->vocab_slots[i];
        if (id < 0) return -1;
        if (tok->str_len[id] == n && memcmp(tok->strs + tok->str_off[id], s, n) == 0) return id;
        i = (i + 1) & tok->vocab_mask;
    }
}

static const struct merge_slot *merge_find(const struct molmo_tokenizer *tok, int32_t a,
                                           int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = (size_t)hash_u64(key) & tok->merge_mask;
    for (;;) {
        const struct merge_slot *m = &tok->merges[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
        i = (i + 1) & tok->merge_mask;
    }
}

/* ---- loading -------------------------------------------------------------------------------- */

/* Every key of obj must be in known (NULL-terminated): an unknown key might change the output. */
static int check_keys(const json_t *obj, const char *const *known, const char *path,
                      const char *where, struct jb_err *err) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = strcmp(k, known[i]) == 0;
        if (!ok)
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: %s.%s: field not supported", path, where,
                              k);
    }
    return 0;
}

/* A boolean field: absent or null gives def. */
static int get_bool(const json_t *obj, const char *key, bool def, bool *out, const char *path,
                    const char *where, struct jb_err *err) {
    const json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return jb_err_set(err, JB_EFORMAT, "%s: %s.%s: expected a boolean, found %s", path, where,
                          key, jb_json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int get_type(const json_t *obj, const char **out, const char *path, const char *where,
                    struct jb_err *err) {
    if (!json_is_object(obj))
        return jb_err_set(err, JB_EFORMAT, "%s: %s: expected an object, found %s", path, where,
                          jb_json_type_name(obj));
    const json_t *t = json_object_get(obj, "type");
    if (!json_is_string(t))
        return jb_err_set(err, JB_EFORMAT, "%s: %s.type: expected a string, found %s", path,
                          where, jb_json_type_name(t));
    *out = json_string_value(t);
    return 0;
}

/* s[0..*n) through the file's normalizers: a malloc'd buffer and its length in *n, or NULL with
 * a utf8proc error code in *errc (JB_ENOMEM-like failures included). */
static unsigned char *normalize_chain(const struct molmo_tokenizer *tok, const char *s,
                                      size_t *n, utf8proc_ssize_t *errc) {
    static const int opts[] = {
        [NORM_NFC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE,
        [NORM_NFD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
        [NORM_NFKC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
        [NORM_NFKD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT,
    };
    unsigned char *cur = NULL;
    for (int i = 0; i < tok->n_norm; i++) {
        unsigned char *next = NULL;
        utf8proc_ssize_t m = utf8proc_map(cur ? cur : (const unsigned char *)s,
                                          (utf8proc_ssize_t)*n, &next,
                                          (utf8proc_option_t)opts[tok->norm[i]]);
        free(cur);
        if (m < 0) {
            free(next);
            *errc = m;
            return NULL;
        }
        cur = next;
        *n = (size_t)m;
    }
    return cur;
}

static int parse_normalizer(struct molmo_tokenizer *tok, const json_t *n, const char *path,
                            const char *where, struct jb_err *err) {
    if (!n || json_is_null(n)) return 0;
    const char *type;
    int rc = get_type(n, &type, path, where, err);
    if (rc) return rc;
    if (strcmp(type, "Sequence") == 0) {
        static const char *const known[] = {"type", "normalizers", NULL};
        if ((rc = check_keys(n, known, path, where, err))) return rc;
        const json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list))
            return jb_err_set(err, JB_EFORMAT, "%s: %s.normalizers: expected an array", path,
                              where);
        for (size_t i = 0; i < json_array_size(list); i++) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", where, i);
            if ((rc = parse_normalizer(tok, json_array_get(list, i), path, sub, err))) return rc;
        }
        return 0;
    }
    static const char *const names[] = {"NFC", "NFD", "NFKC", "NFKD"};
    for (int k = 0; k < 4; k++) {
        if (strcmp(type, names[k]) != 0) continue;
        static const char *const known[] = {"type", NULL};
        if ((rc = check_keys(n, known, path, where, err))) return rc;
        if (tok->n_norm == MAX_NORM)
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: %s: more than %d normalizers", path,
                              where, MAX_NORM);
        tok->norm[tok->n_norm++] = (enum norm_kind)k;
        return 0;
    }
    return jb_err_set(err, JB_EUNSUPPORTED,
                      "%s: %s.type: normalizer '%s' not supported (NFC, NFD, NFKC, NFKD, Sequence)",
                      path, where, type);
}

/* tokenizers matches with Oniguruma, whose Unicode escapes differ from PCRE2's in UCP mode:
 * Onig's \s is White_Space (PCRE2 adds U+180E through \h), Onig's \w is L|M|N|Pc (PCRE2 10.42:
 * L|N|_), and Onig's \h is a hex digit (PCRE2: horizontal space). Those are rewritten to
 * explicit classes; the few with no exact rewrite here are rejected. *out is malloc'd. */
static int onig_to_pcre2(const char *pat, size_t len, char **out, size_t *out_len,
                         const char *path, const char *where, struct jb_err *err) {
    static const char word[] = "\\p{L}\\p{M}\\p{N}\\p{Pc}", hex[] = "0-9a-fA-F";
    char *o = malloc(32 * len + 1);
    size_t n = 0;
    bool in_class = false;
    if (!o) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
#define PUT(str) (memcpy(o + n, (str), strlen(str)), n += strlen(str))
    for (size_t i = 0; i < len; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < len) {
            char d = pat[++i];
            const char *bad = NULL;
            if (d == 's') PUT("\\p{White_Space}");
            else if (d == 'S') PUT("\\P{White_Space}");
            else if (d == 'w' || d == 'h') {
                if (!in_class) PUT("[");
                PUT(d == 'w' ? word : hex);
                if (!in_class) PUT("]");
            } else if (d == 'W' || d == 'H') {
                if (in_class) bad = d == 'W' ? "\\W inside [...]" : "\\H inside [...]";
                else {
                    PUT("[^");
                    PUT(d == 'W' ? word : hex);
                    PUT("]");
                }
            } else if ((d == 'b' && !in_class) || d == 'B') bad = "word boundaries (\\b, \\B)";
            else if (d == 'Q') bad = "\\Q...\\E";
            else {
                o[n++] = c;
                o[n++] = d;
            }
            if (bad) {
                free(o);
                return jb_err_set(err, JB_EUNSUPPORTED,
                                  "%s: %s: %s not supported (Oniguruma semantics)", path, where,
                                  bad);
            }
            continue;
        }
        if (in_class && c == '[' && i + 1 < len && pat[i + 1] == ':') {
            free(o);
            return jb_err_set(err, JB_EUNSUPPORTED,
                              "%s: %s: POSIX bracket classes not supported (Oniguruma semantics)",
                              path, where);
        }
        o[n++] = c;
        if (!in_class && c == '[') {
            in_class = true;
            if (i + 1 < len && pat[i + 1] == '^') o[n++] = pat[++i];
            if (i + 1 < len && pat[i + 1] == ']') o[n++] = pat[++i];   /* a literal ']' */
        } else if (in_class && c == ']') {
            in_class = false;
        }
    }
#undef PUT
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return 0;
}

static int compile_re(pcre2_code **out, const char *pat, size_t len, bool literal,
                      const char *path, const char *where, struct jb_err *err) {
    int ec;
    PCRE2_SIZE eo;
    char *conv = NULL;
    size_t conv_len = len;
    if (!literal) {
        int rc = onig_to_pcre2(pat, len, &conv, &conv_len, path, where, err);
        if (rc) return rc;
    }
    /* UCP: \p, \d and case folding by Unicode properties, as Oniguruma in tokenizers */
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    *out = pcre2_compile((PCRE2_SPTR)(conv ? conv : pat), conv_len, opts, &ec, &eo, NULL);
    free(conv);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return jb_err_set(err, JB_EFORMAT, "%s: %s: bad regex (%s)", path, where,
                          (const char *)msg);
    }
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);        /* falls back to the interpreter */
    return 0;
}

static int parse_pretok(struct molmo_tokenizer *tok, const json_t *p, const char *path,
                        const char *where, struct jb_err *err) {
    const char *type;
    int rc = get_type(p, &type, path, where, err);
    if (rc) return rc;
    if (strcmp(type, "Sequence") == 0) {
        static const char *const known[] = {"type", "pretokenizers", NULL};
        if ((rc = check_keys(p, known, path, where, err))) return rc;
        const json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list))
            return jb_err_set(err, JB_EFORMAT, "%s: %s.pretokenizers: expected an array", path,
                              where);
        for (size_t i = 0; i < json_array_size(list); i++) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", where, i);
            if ((rc = parse_pretok(tok, json_array_get(list, i), path, sub, err))) return rc;
        }
        return 0;
    }
    if (tok->n_stages == MAX_STAGES)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: %s: more than %d pre-tokenizers", path, where,
                          MAX_STAGES);
    if (tok->n_stages > 0 && tok->stages[tok->n_stages - 1].kind == STAGE_BYTELEVEL)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: %s: a pre-tokenizer after ByteLevel is not supported", path, where);
    struct stage *st = &tok->stages[tok->n_stages];
    memset(st, 0, sizeof *st);
    if (strcmp(type, "ByteLevel") == 0) {
        static const char *const known[] = {"type", "add_prefix_space", "trim_offsets",
                                            "use_regex", NULL};
        bool trim;
        st->kind = STAGE_BYTELEVEL;
        if ((rc = check_keys(p, known, path, where, err)) ||
            (rc = get_bool(p, "add_prefix_space", true, &st->add_prefix_space, path, where,
                           err)) ||
            (rc = get_bool(p, "use_regex", true, &st->use_regex, path, where, err)) ||
            (rc = get_bool(p, "trim_offsets", true, &trim, path, where, err)))  /* offsets only */
            return rc;
        if (st->use_regex &&
            (rc = compile_re(&st->re, gpt2_regex, sizeof gpt2_regex - 1, false, path, where, err)))
            return rc;
        tok->n_stages++;
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        static const char *const known[] = {"type", "pattern", "behavior", "invert", NULL};
        static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious",
                                                "MergedWithNext", "Contiguous"};
        st->kind = STAGE_SPLIT;
        if ((rc = check_keys(p, known, path, where, err)) ||
            (rc = get_bool(p, "invert", false, &st->invert, path, where, err)))
            return rc;
        const json_t *b = json_object_get(p, "behavior");
        const char *bs = json_string_value(b);
        int k = 0;
        while (bs && k < 5 && strcmp(bs, behaviors[k]) != 0) k++;
        if (!bs || k == 5)
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: %s.behavior: '%s' not supported", path,
                              where, bs ? bs : jb_json_type_name(b));
        st->behavior = (enum split_behavior)k;
        const json_t *pat = json_object_get(p, "pattern");
        const json_t *re = json_object_get(pat, "Regex");
        const json_t *lit = json_object_get(pat, "String");
        const json_t *s = re ? re : lit;
        if (!json_is_object(pat) || json_object_size(pat) != 1 || !json_is_string(s))
            return jb_err_set(err, JB_EFORMAT,
                              "%s: %s.pattern: expected {\"Regex\": ...} or {\"String\": ...}",
                              path, where);
        char sub[160];
        snprintf(sub, sizeof sub, "%s.pattern", where);
        if ((rc = compile_re(&st->re, json_string_value(s), json_string_length(s), s == lit, path,
                             sub, err)))
            return rc;
        tok->n_stages++;
        return 0;
    }
    return jb_err_set(err, JB_EUNSUPPORTED,
                      "%s: %s.type: pre-tokenizer '%s' not supported (ByteLevel, Split, Sequence)",
                      path, where, type);
}

/* Merge line i ("a b", or ["a", "b"] in newer files) as the ids of a, b and of the merged
 * token ab; all three must be in the vocabulary (tokenizers refuses the file otherwise). */
static int parse_merge(const struct molmo_tokenizer *tok, const json_t *m, size_t i,
                       int32_t *a, int32_t *b, int32_t *ab, const char *path,
                       struct jb_err *err) {
    const char *l, *r;
    size_t ll, rl;
    char *tmp = NULL;
    if (json_is_string(m)) {                          /* "a b" */
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return jb_err_set(err, JB_EFORMAT,
                              "%s: model.merges[%zu]: '%s' is not two tokens split by a space",
                              path, i, s);
        l = s;
        ll = (size_t)(sp - s);
        r = sp + 1;
        rl = strlen(r);
    } else if (json_is_array(m) && json_array_size(m) == 2 &&
               json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
        l = json_string_value(json_array_get(m, 0));    /* ["a", "b"] */
        ll = json_string_length(json_array_get(m, 0));
        r = json_string_value(json_array_get(m, 1));
        rl = json_string_length(json_array_get(m, 1));
    } else {
        return jb_err_set(err, JB_EFORMAT,
                          "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"], found %s",
                          path, i, jb_json_type_name(m));
    }
    *a = vocab_find(tok, l, ll);
    *b = vocab_find(tok, r, rl);
    tmp = malloc(ll + rl + 1);
    if (!tmp) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, l, ll);
    memcpy(tmp + ll, r, rl);
    tmp[ll + rl] = '\0';
    *ab = vocab_find(tok, tmp, ll + rl);
    int rc = 0;
    if (*a < 0 || *b < 0 || *ab < 0)
        rc = jb_err_set(err, JB_EFORMAT, "%s: model.merges[%zu]: '%.*s' + '%.*s': '%s' is not in "
                        "model.vocab", path, i, (int)ll, l, (int)rl, r,
                        *a < 0 ? "left token" : *b < 0 ? "right token" : tmp);
    free(tmp);
    return rc;
}

static int parse_model(struct molmo_tokenizer *tok, const json_t *model, const json_t *added,
                       const char *path, struct jb_err *err) {
    static const char *const known[] = {"type", "dropout", "unk_token",
                                        "continuing_subword_prefix", "end_of_word_suffix",
                                        "fuse_unk", "byte_fallback", "ignore_merges", "vocab",
                                        "merges", NULL};
    int rc;
    if (!json_is_object(model))
        return jb_err_set(err, JB_EFORMAT, "%s: model: expected an object, found %s", path,
                          jb_json_type_name(model));
    if ((rc = check_keys(model, known, path, "model", err))) return rc;
    const json_t *t = json_object_get(model, "type");
    if (t && !(json_is_string(t) && strcmp(json_string_value(t), "BPE") == 0))
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: model.type: '%s' not supported (BPE only)",
                          path, json_is_string(t) ? json_string_value(t) : jb_json_type_name(t));
    const json_t *d = json_object_get(model, "dropout");
    if (d && !json_is_null(d) && !(json_is_number(d) && json_number_value(d) == 0.0))
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: model.dropout: BPE dropout not supported",
                          path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(model, affixes[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: model.%s: not supported (must be empty)",
                              path, affixes[k]);
    }
    bool fallback;
    if ((rc = get_bool(model, "byte_fallback", false, &fallback, path, "model", err)) ||
        (rc = get_bool(model, "ignore_merges", false, &tok->ignore_merges, path, "model", err)))
        return rc;
    if (fallback)
        return jb_err_set(err, JB_EUNSUPPORTED, "%s: model.byte_fallback: not supported", path);
    /* unk_token and fuse_unk never act: every byte's alphabet character is in the vocabulary
     * (checked below), so no symbol is ever unknown. */

    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab))
        return jb_err_set(err, JB_EFORMAT, "%s: model.vocab: expected an object, found %s", path,
                          jb_json_type_name(vocab));
    if (!json_is_array(merges))
        return jb_err_set(err, JB_EFORMAT, "%s: model.merges: expected an array, found %s", path,
                          jb_json_type_name(merges));

    /* n_ids over the vocabulary and the added tokens */
    long long max_id = -1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= MAX_ID)
            return jb_err_set(err, JB_EFORMAT, "%s: model.vocab['%s']: bad id (%s)", path, k,
                              jb_json_type_name(v));
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *id = json_object_get(json_array_get(added, i), "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MAX_ID)
            return jb_err_set(err, JB_EFORMAT, "%s: added_tokens[%zu].id: bad id (%s)", path, i,
                              jb_json_type_name(id));
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    tok->n_ids = (size_t)(max_id + 1);
    size_t nv = json_object_size(vocab);
    tok->vocab_mask = pow2_at_least(2 * nv + 1) - 1;
    tok->str_off = calloc(tok->n_ids + 1, sizeof *tok->str_off);
    tok->str_len = calloc(tok->n_ids + 1, sizeof *tok->str_len);
    tok->flags = calloc(tok->n_ids + 1, 1);
    tok->added_of = malloc((tok->n_ids + 1) * sizeof *tok->added_of);
    tok->vocab_slots = malloc((tok->vocab_mask + 1) * sizeof *tok->vocab_slots);
    if (!tok->str_off || !tok->str_len || !tok->flags || !tok->added_of || !tok->vocab_slots)
        return jb_err_set(err, JB_ENOMEM, "%s: out of memory for %zu ids", path, tok->n_ids);
    for (size_t i = 0; i <= tok->n_ids; i++) tok->added_of[i] = -1;
    memset(tok->vocab_slots, 0xff, (tok->vocab_mask + 1) * sizeof *tok->vocab_slots);
    json_object_foreach((json_t *)vocab, k, v) {
        int32_t id = (int32_t)json_integer_value(v);
        size_t len = strlen(k);   /* JSON_REJECT_DUPLICATES: keys unique; NUL-free (see below) */
        if (tok->flags[id] & F_VOCAB)
            return jb_err_set(err, JB_EFORMAT, "%s: model.vocab: id %d given twice ('%s')", path,
                              (int)id, k);
        if (strs_add(tok, k, len, &tok->str_off[id]) < 0)
            return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        tok->str_len[id] = (uint32_t)len;
        tok->flags[id] |= F_VOCAB;
        size_t s = (size_t)hash_bytes(k, len) & tok->vocab_mask;
        while (tok->vocab_slots[s] >= 0) s = (s + 1) & tok->vocab_mask;
        tok->vocab_slots[s] = id;
    }

    for (int c = 0; c < 256 + 68; c++) tok->cp_byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        tok->byte_cp[b] = byte_char(b);
        tok->cp_byte[tok->byte_cp[b]] = (int16_t)b;
    }
    for (int b = 0; b < 256; b++) {
        char c[4];
        int n = put_utf8(c, tok->byte_cp[b]);
        tok->byte_id[b] = vocab_find(tok, c, (size_t)n);
        /* Bytes that never occur in UTF-8 (C0, C1, F5..FF) may be missing (GPT-NeoX's vocabulary
         * lacks them); the text is validated before encoding, so they are never looked up. */
        bool in_utf8 = b != 0xC0 && b != 0xC1 && b < 0xF5;
        if (tok->byte_id[b] < 0 && in_utf8)
            return jb_err_set(err, JB_EUNSUPPORTED,
                              "%s: model.vocab: no entry for byte 0x%02X ('%.*s'): not a "
                              "byte-level BPE vocabulary", path, b, n, c);
    }

    size_t nm = json_array_size(merges);
    tok->merge_mask = pow2_at_least(2 * nm + 1) - 1;
    tok->merges = malloc((tok->merge_mask + 1) * sizeof *tok->merges);
    if (!tok->merges) return jb_err_set(err, JB_ENOMEM, "%s: out of memory for merges", path);
    for (size_t i = 0; i <= tok->merge_mask; i++) tok->merges[i].key = UINT64_MAX;
    for (size_t i = 0; i < nm; i++) {
        int32_t a = -1, b = -1, ab = -1;
        if ((rc = parse_merge(tok, json_array_get(merges, i), i, &a, &b, &ab, path, err)))
            return rc;
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
        size_t s = (size_t)hash_u64(key) & tok->merge_mask;
        while (tok->merges[s].key != UINT64_MAX && tok->merges[s].key != key)
            s = (s + 1) & tok->merge_mask;
        tok->merges[s].key = key;             /* a repeated pair: the later rank wins, as in the
                                                 HashMap tokenizers builds */
        tok->merges[s].rank = (int32_t)i;
        tok->merges[s].id = ab;
    }
    return 0;
}

static int cmp_matcher(const void *x, const void *y, void *ctx) {
    const struct molmo_tokenizer *tok = ctx;
    const struct added_token *a = &tok->added[*(const uint32_t *)x];
    const struct added_token *b = &tok->added[*(const uint32_t *)y];
    unsigned char fa = (unsigned char)tok->strs[a->moff], fb = (unsigned char)tok->strs[b->moff];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->mlen != b->mlen) return a->mlen > b->mlen ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int build_matcher(struct molmo_tokenizer *tok, struct matcher *m, bool normalized) {
    m->order = malloc((tok->n_added + 1) * sizeof *m->order);
    if (!m->order) return -1;
    m->n = 0;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].normalized == normalized) m->order[m->n++] = (uint32_t)i;
    qsort_r(m->order, m->n, sizeof *m->order, cmp_matcher, tok);
    uint32_t j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < m->n && (unsigned char)tok->strs[tok->added[m->order[j]].moff] < b) j++;
        m->start[b] = j;
    }
    m->start[256] = m->n;
    return 0;
}

static int parse_added(struct molmo_tokenizer *tok, const json_t *added, const char *path,
                       struct jb_err *err) {
    static const char *const known[] = {"id", "content", "single_word", "lstrip", "rstrip",
                                        "normalized", "special", NULL};
    int rc;
    size_t n = json_array_size(added);
    tok->added = calloc(n + 1, sizeof *tok->added);
    if (!tok->added) return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(added, i);
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (!json_is_object(a))
            return jb_err_set(err, JB_EFORMAT, "%s: %s: expected an object, found %s", path,
                              where, jb_json_type_name(a));
        if ((rc = check_keys(a, known, path, where, err))) return rc;
        const json_t *c = json_object_get(a, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            return jb_err_set(err, JB_EFORMAT, "%s: %s.content: expected a non-empty string",
                              path, where);
        const char *cs = json_string_value(c);
        size_t cl = json_string_length(c);
        if (memchr(cs, '\0', cl))
            return jb_err_set(err, JB_EUNSUPPORTED, "%s: %s.content: NUL not supported", path,
                              where);
        bool special, normalized, flag;
        if ((rc = get_bool(a, "special", false, &special, path, where, err)) ||
            (rc = get_bool(a, "normalized", !special, &normalized, path, where, err)))
            return rc;
        static const char *const flags[] = {"single_word", "lstrip", "rstrip"};
        for (int k = 0; k < 3; k++) {
            if ((rc = get_bool(a, flags[k], false, &flag, path, where, err))) return rc;
            if (flag)
                return jb_err_set(err, JB_EUNSUPPORTED, "%s: %s.%s: true is not supported ('%s')",
                                  path, where, flags[k], cs);
        }
        int32_t id = (int32_t)json_integer_value(json_object_get(a, "id"));   /* checked */
        if (tok->flags[id] & F_ADDED)
            return jb_err_set(err, JB_EFORMAT, "%s: %s.id: %d given twice", path, where, (int)id);
        struct added_token *t = &tok->added[tok->n_added];
        if (strs_add(tok, cs, cl, &t->off) < 0)
            return jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        t->len = (uint32_t)cl;
        t->moff = t->off;
        t->mlen = t->len;
        t->id = id;
        t->normalized = normalized;
        t->special = special;
        tok->flags[id] |= F_ADDED | (special ? F_SPECIAL : 0);
        tok->added_of[id] = (int32_t)tok->n_added++;
    }
    return 0;
}

/* post_processor: with add_special_tokens=False none of these adds a token (TemplateProcessing,
 * Roberta/Bert only add their special tokens; ByteLevel only trims offsets). */
static int check_post(const json_t *p, const char *path, struct jb_err *err) {
    if (!p || json_is_null(p)) return 0;
    const char *type;
    int rc = get_type(p, &type, path, "post_processor", err);
    if (rc) return rc;
    static const char *const ok[] = {"ByteLevel", "TemplateProcessing", "RobertaProcessing",
                                     "BertProcessing", NULL};
    for (int i = 0; ok[i]; i++)
        if (strcmp(type, ok[i]) == 0) return 0;
    return jb_err_set(err, JB_EUNSUPPORTED, "%s: post_processor.type: '%s' not supported", path,
                      type);
}

static int check_decoder(const json_t *d, const char *path, struct jb_err *err) {
    const char *type;
    int rc = get_type(d, &type, path, "decoder", err);
    if (rc) return rc;
    if (strcmp(type, "ByteLevel") != 0)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "%s: decoder.type: '%s' not supported (ByteLevel only)", path, type);
    return 0;
}

int molmo_tokenizer_load(struct molmo_tokenizer **out, const char *path, struct jb_err *err) {
    static const char *const known[] = {"version", "truncation", "padding", "added_tokens",
                                        "normalizer", "pre_tokenizer", "post_processor", "decoder",
                                        "model", NULL};
    json_t *root = NULL;
    struct molmo_tokenizer *tok = NULL;
    *out = NULL;
    int rc = jb_json_load_file(path, &root, err);
    if (rc) goto out;
    if (!json_is_object(root)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: expected a JSON object, found %s", path,
                        jb_json_type_name(root));
        goto out;
    }
    if ((rc = check_keys(root, known, path, "(top level)", err))) goto out;
    static const char *const unsupported[] = {"truncation", "padding"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(root, unsupported[k]);
        if (v && !json_is_null(v)) {
            rc = jb_err_set(err, JB_EUNSUPPORTED, "%s: %s: not supported (must be null)", path,
                            unsupported[k]);
            goto out;
        }
    }
    const json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added) && !json_is_null(added)) {
        rc = jb_err_set(err, JB_EFORMAT, "%s: added_tokens: expected an array, found %s", path,
                        jb_json_type_name(added));
        goto out;
    }
    tok = calloc(1, sizeof *tok);
    if (!tok) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((rc = parse_model(tok, json_object_get(root, "model"), added, path, err)) ||
        (rc = parse_added(tok, added, path, err)) ||
        (rc = parse_normalizer(tok, json_object_get(root, "normalizer"), path, "normalizer",
                               err)))
        goto out;
    for (size_t i = 0; i < tok->n_added && tok->n_norm > 0; i++) {
        struct added_token *t = &tok->added[i];
        if (!t->normalized) continue;
        size_t n = t->len;
        utf8proc_ssize_t errc = 0;
        unsigned char *norm = normalize_chain(tok, tok->strs + t->off, &n, &errc);
        if (!norm || n == 0 || strs_add(tok, (const char *)norm, n, &t->moff) < 0) {
            free(norm);
            rc = jb_err_set(err, JB_EFORMAT, "%s: added_tokens[%zu].content: cannot normalize",
                            path, i);
            goto out;
        }
        free(norm);
        t->mlen = (uint32_t)n;
    }
    if (build_matcher(tok, &tok->m_raw, false) < 0 || build_matcher(tok, &tok->m_norm, true) < 0) {
        rc = jb_err_set(err, JB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    const json_t *pre = json_object_get(root, "pre_tokenizer");
    if (!pre || json_is_null(pre)) {
        rc = jb_err_set(err, JB_EUNSUPPORTED,
                        "%s: pre_tokenizer: missing (a ByteLevel pre-tokenizer is required)", path);
        goto out;
    }
    if ((rc = parse_pretok(tok, pre, path, "pre_tokenizer", err))) goto out;
    if (tok->n_stages == 0 || tok->stages[tok->n_stages - 1].kind != STAGE_BYTELEVEL) {
        rc = jb_err_set(err, JB_EUNSUPPORTED,
                        "%s: pre_tokenizer: must end with ByteLevel (byte-level BPE only)", path);
        goto out;
    }
    if ((rc = check_post(json_object_get(root, "post_processor"), path, err)) ||
        (rc = check_decoder(json_object_get(root, "decoder"), path, err)))
        goto out;
    *out = tok;
    tok = NULL;
out:
    molmo_tokenizer_free(tok);
    json_decref(root);
    return rc;
}

void molmo_tokenizer_free(struct molmo_tokenizer *tok) {
    if (!tok) return;
    for (int i = 0; i < tok->n_stages; i++) pcre2_code_free(tok->stages[i].re);
    free(tok->m_raw.order);
    free(tok->m_norm.order);
    free(tok->added);
    free(tok->merges);
    free(tok->vocab_slots);
    free(tok->added_of);
    free(tok->flags);
    free(tok->str_len);
    free(tok->str_off);
    free(tok->strs);
    free(tok);
}

/* ---- encoding ------------------------------------------------------------------------------- */

struct span {
    size_t start, end;
    bool match;
};

struct spans {
    struct span *v;
    size_t n, cap;
};

/* A per-call cache of BPE results for short words (text repeats its words), sized by the text:
 * from 256 slots for a prompt to 64 Ki for megabytes, filled to half at most. */
#define CACHE_MAX_SLOTS (1u << 16)
#define CACHE_MAX_KEY 48
struct cache_slot {
    uint64_t h;
    uint32_t koff, klen;            /* klen 0: empty */
    uint32_t voff, vn;
};

struct heap_ent {
    int32_t rank;
    uint32_t pos;                   /* the left symbol's first byte */
    int32_t left, right, merged;    /* ids */
};

struct enc {
    const struct molmo_tokenizer *tok;
    struct jb_err *err;
    int32_t *ids;
    size_t n, cap;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    struct spans spans[MAX_STAGES];
    char *pfx;                      /* ByteLevel's add_prefix_space copy */
    size_t pfx_cap;
    char *word;                     /* a word in byte-alphabet characters (ignore_merges) */
    size_t word_cap;
    /* BPE scratch */
    int32_t *sym;
    int32_t *nxt, *prv;
    size_t sym_cap;
    struct heap_ent *heap;
    size_t heap_cap;
    /* word cache */
    struct cache_slot *cache;
    uint32_t cache_used, cache_slots;
    char *ckeys;
    size_t ckeys_len, ckeys_cap;
    int32_t *cvals;
    size_t cvals_len, cvals_cap;
};

static int enc_nomem(struct enc *e) {
    return jb_err_set(e->err, JB_ENOMEM, "tokenizer: out of memory");
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int emit(struct enc *e, const int32_t *ids, size_t n) {
    if (grow((void **)&e->ids, &e->cap, e->n + n, sizeof *e->ids) < 0) return enc_nomem(e);
    memcpy(e->ids + e->n, ids, n * sizeof *ids);
    e->n += n;
    return 0;
}

static bool heap_less(const struct heap_ent *a, const struct heap_ent *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct heap_ent *h, size_t *n, struct heap_ent x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static struct heap_ent heap_pop(struct heap_ent *h, size_t *n) {
    struct heap_ent top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = x;
    return top;
}

static void push_pair(const struct molmo_tokenizer *tok, struct heap_ent *h, size_t *nh,
                      const int32_t *sym, uint32_t l, uint32_t r) {
    const struct merge_slot *m = merge_find(tok, sym[l], sym[r]);
    if (m) heap_push(h, nh, (struct heap_ent){m->rank, l, sym[l], sym[r], m->id});
}

static struct cache_slot *cache_lookup(struct enc *e, const char *s, size_t n, uint64_t h) {
    size_t mask = e->cache_slots - 1, i = (size_t)h & mask;
    for (;;) {
        struct cache_slot *c = &e->cache[i];
        if (c->klen == 0) return c;
        if (c->h == h && c->klen == n && memcmp(e->ckeys + c->koff, s, n) == 0) return c;
        i = (i + 1) & mask;
    }
}

/* One word (the bytes of one pre-token) through the merges. */
static int bpe(struct enc *e, const char *s, size_t n) {
    const struct molmo_tokenizer *tok = e->tok;
    if (n == 1) return emit(e, &tok->byte_id[(unsigned char)s[0]], 1);
    if (tok->ignore_merges) {                         /* a word in the vocabulary is kept whole */
        /* alphabet characters are below U+0800: at most 2 UTF-8 bytes per byte */
        if (grow((void **)&e->word, &e->word_cap, 2 * n, 1) < 0) return enc_nomem(e);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += (size_t)put_utf8(e->word + m, tok->byte_cp[(unsigned char)s[i]]);
        int32_t id = vocab_find(tok, e->word, m);
        if (id >= 0) return emit(e, &id, 1);
    }
    struct cache_slot *slot = NULL;
    uint64_t h = 0;
    if (n <= CACHE_MAX_KEY) {
        if (!e->cache) {
            e->cache = calloc(e->cache_slots, sizeof *e->cache);
            if (!e->cache) return enc_nomem(e);
        }
        h = hash_bytes(s, n);
        slot = cache_lookup(e, s, n, h);
        if (slot->klen) return emit(e, e->cvals + slot->voff, slot->vn);
    }
    if (n > e->sym_cap) {
        size_t cap = pow2_at_least(n);
        int32_t *p[3];
        for (int k = 0; k < 3; k++) {
            int32_t **f = k == 0 ? &e->sym : k == 1 ? &e->nxt : &e->prv;
            p[k] = realloc(*f, cap * sizeof **f);
            if (!p[k]) return enc_nomem(e);
            *f = p[k];
        }
        e->sym_cap = cap;
    }
    /* at most n - 1 initial pairs, and each merge adds at most 2 */
    if (grow((void **)&e->heap, &e->heap_cap, 3 * n, sizeof *e->heap) < 0) return enc_nomem(e);
    int32_t *sym = e->sym, *nxt = e->nxt, *prv = e->prv;
    for (size_t i = 0; i < n; i++) {
        sym[i] = tok->byte_id[(unsigned char)s[i]];
        nxt[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prv[i] = (int32_t)i - 1;
    }
    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(tok, e->heap, &nh, sym, (uint32_t)i, (uint32_t)(i + 1));
    while (nh > 0) {
        struct heap_ent x = heap_pop(e->heap, &nh);
        uint32_t l = x.pos;
        if (sym[l] < 0 || sym[l] != x.left || nxt[l] < 0 || sym[nxt[l]] != x.right)
            continue;                                 /* stale: one side was merged meanwhile */
        /* Tokens only grow, so the same (position, left, right) means the same pair. */
        int32_t r = nxt[l];
        sym[l] = x.merged;
        sym[r] = -1;
        nxt[l] = nxt[r];
        if (nxt[r] >= 0) prv[nxt[r]] = (int32_t)l;
        if (prv[l] >= 0) push_pair(tok, e->heap, &nh, sym, (uint32_t)prv[l], l);
        if (nxt[l] >= 0) push_pair(tok, e->heap, &nh, sym, l, (uint32_t)nxt[l]);
    }
    size_t first = e->n;
    for (int32_t i = 0; i >= 0; i = nxt[i]) {
        int rc = emit(e, &sym[i], 1);
        if (rc) return rc;
    }
    if (slot && e->cache_used < e->cache_slots / 2) {
        size_t vn = e->n - first;
        if (grow((void **)&e->ckeys, &e->ckeys_cap, e->ckeys_len + n, 1) < 0 ||
            grow((void **)&e->cvals, &e->cvals_cap, e->cvals_len + vn, sizeof *e->cvals) < 0)
            return enc_nomem(e);
        memcpy(e->ckeys + e->ckeys_len, s, n);
        memcpy(e->cvals + e->cvals_len, e->ids + first, vn * sizeof *e->cvals);
        *slot = (struct cache_slot){h, (uint32_t)e->ckeys_len, (uint32_t)n,
                                    (uint32_t)e->cvals_len, (uint32_t)vn};
        e->ckeys_len += n;
        e->cvals_len += vn;
        e->cache_used++;
    }
    return 0;
}

/* The next match of re in s[0..n) at or after off: 1 and [*ms, *me), 0 when none. */
static int re_next(struct enc *e, const pcre2_code *re, const char *s, size_t n, size_t off,
                   size_t *ms, size_t *me) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, e->md, e->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return jb_err_set(e->err, JB_EINTERNAL, "tokenizer: regex match failed: %s",
                          (const char *)msg);
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

/* All matches and the gaps between them, in order (tokenizers' Pattern::find_matches). */
static int find_spans(struct enc *e, const pcre2_code *re, const char *s, size_t n,
                      struct spans *out) {
    size_t off = 0, prev = 0, ms, me;
    out->n = 0;
    while (off <= n) {
        int rc = re_next(e, re, s, n, off, &ms, &me);
        if (rc < 0) return rc;
        if (rc == 0) break;
        if (grow((void **)&out->v, &out->cap, out->n + 2, sizeof *out->v) < 0) return enc_nomem(e);
        if (ms > prev) out->v[out->n++] = (struct span){prev, ms, false};
        out->v[out->n++] = (struct span){ms, me, true};
        prev = me;
        if (me > ms) {
            off = me;
        } else {                                      /* empty match: step over one character */
            if (ms >= n) break;
            int k = utf8_seq((const unsigned char *)s + ms, n - ms);
            off = ms + (size_t)(k > 0 ? k : 1);
        }
    }
    if (grow((void **)&out->v, &out->cap, out->n + 1, sizeof *out->v) < 0) return enc_nomem(e);
    if (prev < n) out->v[out->n++] = (struct span){prev, n, false};
    return 0;
}

/* tokenizers' SplitDelimiterBehavior on the spans, in place; kept pieces get match = false,
 * removed ones match = true. */
static void apply_behavior(struct spans *sp, enum split_behavior b, bool invert) {
    if (invert)
        for (size_t i = 0; i < sp->n; i++) sp->v[i].match = !sp->v[i].match;
    size_t m = 0;
    bool prev = false;
    switch (b) {
    case SPLIT_REMOVED:
        return;                                       /* the caller skips match spans */
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < sp->n; i++) sp->v[i].match = false;
        return;
    case SPLIT_MERGED_PREV:                           /* a match joins the piece before it */
        for (size_t i = 0; i < sp->n; i++) {
            struct span x = sp->v[i];
            if (x.match && !prev && m > 0) sp->v[m - 1].end = x.end;
            else sp->v[m++] = (struct span){x.start, x.end, false};
            prev = x.match;
        }
        break;
    case SPLIT_MERGED_NEXT: {                         /* a match joins the piece after it */
        size_t w = sp->n;                             /* fill from the back */
        for (size_t i = sp->n; i-- > 0;) {
            struct span x = sp->v[i];
            if (x.match && !prev && w < sp->n) sp->v[w].start = x.start;
            else sp->v[--w] = (struct span){x.start, x.end, false};
            prev = x.match;
        }
        memmove(sp->v, sp->v + w, (sp->n - w) * sizeof *sp->v);
        m = sp->n - w;
        break;
    }
    case SPLIT_CONTIGUOUS:                            /* runs of matches / of gaps merge */
        for (size_t i = 0; i < sp->n; i++) {
            struct span x = sp->v[i];
            if (x.match == prev && m > 0) sp->v[m - 1].end = x.end;
            else sp->v[m++] = (struct span){x.start, x.end, false};
            prev = x.match;
        }
        break;
    }
    sp->n = m;
}

static int pretok(struct enc *e, int k, const char *s, size_t n) {
    const struct stage *st = &e->tok->stages[k];
    int rc;
    if (n == 0) return 0;
    if (st->kind == STAGE_BYTELEVEL) {
        if (st->add_prefix_space && s[0] != ' ') {
            if (grow((void **)&e->pfx, &e->pfx_cap, n + 1, 1) < 0) return enc_nomem(e);
            e->pfx[0] = ' ';
            memmove(e->pfx + 1, s, n);
            s = e->pfx;
            n++;
        }
        if (!st->use_regex) return bpe(e, s, n);
        struct spans *sp = &e->spans[k];              /* Isolated: matches and gaps alike */
        if ((rc = find_spans(e, st->re, s, n, sp))) return rc;
        for (size_t i = 0; i < sp->n; i++)
            if (sp->v[i].end > sp->v[i].start &&
                (rc = bpe(e, s + sp->v[i].start, sp->v[i].end - sp->v[i].start)))
                return rc;
        return 0;
    }
    struct spans *sp = &e->spans[k];
    if ((rc = find_spans(e, st->re, s, n, sp))) return rc;
    apply_behavior(sp, st->behavior, st->invert);
    for (size_t i = 0; i < sp->n; i++) {
        struct span x = sp->v[i];
        if (x.match || x.end == x.start) continue;
        if ((rc = pretok(e, k + 1, s + x.start, x.end - x.start))) return rc;
    }
    return 0;
}

/* Calls fn on each piece of s: added-token matches of m (id >= 0) and the text between them
 * (id -1). Leftmost-longest, as tokenizers' Aho-Corasick with MatchKind::LeftmostLongest. */
static int split_added(struct enc *e, const struct matcher *m, const char *s, size_t n,
                       int (*fn)(struct enc *, const char *, size_t, int32_t)) {
    const struct molmo_tokenizer *tok = e->tok;
    size_t seg = 0;
    int rc;
    if (m->n > 0) {
        for (size_t i = 0; i < n;) {
            unsigned char b = (unsigned char)s[i];
            const struct added_token *hit = NULL;
            for (uint32_t j = m->start[b]; j < m->start[b + 1]; j++) {
                const struct added_token *t = &tok->added[m->order[j]];
                const char *c = tok->strs + t->moff;
                if (t->mlen <= n - i && (t->mlen == 1 || c[1] == s[i + 1]) &&
                    memcmp(c, s + i, t->mlen) == 0) {
                    hit = t;
                    break;
                }
            }
            if (!hit) {
                i++;
                continue;
            }
            if (i > seg && (rc = fn(e, s + seg, i - seg, -1))) return rc;
            if ((rc = fn(e, s + i, hit->mlen, hit->id))) return rc;
            i += hit->mlen;
            seg = i;
        }
    }
    return seg < n ? fn(e, s + seg, n - seg, -1) : 0;
}

static int on_normalized_piece(struct enc *e, const char *s, size_t n, int32_t id) {
    if (id >= 0) return emit(e, &id, 1);
    return pretok(e, 0, s, n);
}

/* Applies the normalizers to s[0..n) once, appending to out. */
static int normalize_run(struct enc *e, const char *s, size_t n, char **out, size_t *len,
                         size_t *cap) {
    utf8proc_ssize_t errc = 0;
    unsigned char *norm = normalize_chain(e->tok, s, &n, &errc);
    if (!norm)
        return jb_err_set(e->err, JB_EINVAL, "tokenizer: normalization failed: %s",
                          utf8proc_errmsg(errc));
    int rc = 0;
    if (grow((void **)out, cap, *len + n, 1) < 0) rc = enc_nomem(e);
    else memcpy(*out + *len, norm, n);
    *len += rc ? 0 : n;
    free(norm);
    return rc;
}

static int on_raw_piece(struct enc *e, const char *s, size_t n, int32_t id) {
    const struct molmo_tokenizer *tok = e->tok;
    if (id >= 0) return emit(e, &id, 1);
    if (tok->n_norm == 0) return split_added(e, &tok->m_norm, s, n, on_normalized_piece);
    /* The normalization forms leave ASCII alone, and a boundary before an ASCII character is
     * safe: it is a starter (combining class 0) that decomposes to itself and is the second
     * half of no canonical composition. So only the runs of non-ASCII characters, each with
     * the ASCII character before it (which may compose with them, e + U+0301), go through
     * utf8proc; the result equals normalizing the whole piece. */
    char *out = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    if (grow((void **)&out, &cap, n + 1, 1) < 0) return enc_nomem(e);
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        while (j < n && (unsigned char)s[j] < 0x80) j++;
        if (grow((void **)&out, &cap, len + (j - i) + 1, 1) < 0) {
            rc = enc_nomem(e);
            break;
        }
        memcpy(out + len, s + i, j - i);
        len += j - i;
        if (j == n) break;
        size_t start = j > i ? j - 1 : j;             /* j > i: an ASCII character precedes */
        if (j > i) len--;
        size_t k = j;
        while (k < n && (unsigned char)s[k] >= 0x80) k++;
        rc = normalize_run(e, s + start, k - start, &out, &len, &cap);
        i = k;
    }
    if (rc == 0) rc = split_added(e, &tok->m_norm, out, len, on_normalized_piece);
    free(out);
    return rc;
}

int molmo_tokenizer_encode(const struct molmo_tokenizer *tok, const char *text, size_t len,
                           int32_t **ids, size_t *n_ids, struct jb_err *err) {
    struct enc e = {.tok = tok, .err = err};
    e.cache_slots = (uint32_t)pow2_at_least(len / 16);
    if (e.cache_slots < 256) e.cache_slots = 256;
    if (e.cache_slots > CACHE_MAX_SLOTS) e.cache_slots = CACHE_MAX_SLOTS;
    int rc = 0;
    *ids = NULL;
    *n_ids = 0;
    size_t bad = utf8_valid_prefix(text, len);
    if (bad < len)
        return jb_err_set(err, JB_EINVAL, "tokenizer: invalid UTF-8 at byte %zu of the text",
                          bad);
    e.md = pcre2_match_data_create(1, NULL);
    e.mctx = pcre2_match_context_create(NULL);
    e.jit = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!e.md || !e.mctx || !e.jit) {
        rc = enc_nomem(&e);
        goto out;
    }
    pcre2_jit_stack_assign(e.mctx, NULL, e.jit);
    if ((rc = split_added(&e, &tok->m_raw, text, len, on_raw_piece))) goto out;
    *ids = e.ids;
    *n_ids = e.n;
    e.ids = NULL;
out:
    free(e.ids);
    pcre2_jit_stack_free(e.jit);
    pcre2_match_context_free(e.mctx);
    pcre2_match_data_free(e.md);
    for (int k = 0; k < MAX_STAGES; k++) free(e.spans[k].v);
    free(e.pfx);
    free(e.word);
    free(e.sym);
    free(e.nxt);
    free(e.prv);
    free(e.heap);
    free(e.cache);
    free(e.ckeys);
    free(e.cvals);
    return rc;
}

/* ---- decoding ------------------------------------------------------------------------------- */

int molmo_tokenizer_decode_bytes(const struct molmo_tokenizer *tok, const int32_t *ids, size_t n,
                                 bool skip_special, char **bytes, size_t *len_out,
                                 struct jb_err *err) {
    size_t cap = 1, len = 0;
    *bytes = NULL;
    if (len_out) *len_out = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_ids || !tok->flags[ids[i]])
            return jb_err_set(err, JB_EINVAL,
                              "tokenizer: token id %d (position %zu) is not in the vocabulary "
                              "(%zu ids)", (int)ids[i], i, tok->n_ids);
        int32_t a = tok->added_of[ids[i]];
        cap += a >= 0 ? tok->added[a].len : tok->str_len[ids[i]];
    }
    char *out = malloc(cap);
    if (!out) return jb_err_set(err, JB_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i], a = tok->added_of[id];
        if (skip_special && (tok->flags[id] & F_SPECIAL)) continue;
        const unsigned char *s = (const unsigned char *)tok->strs +
                                 (a >= 0 ? tok->added[a].off : tok->str_off[id]);
        size_t sl = a >= 0 ? tok->added[a].len : tok->str_len[id];
        /* Each character back to its byte; a token with a character outside the alphabet is
         * kept as its UTF-8 (tokenizers' ByteLevel decoder). */
        size_t start = len;
        bool ok = true;
        for (size_t j = 0; j < sl && ok;) {
            int k = utf8_seq(s + j, sl - j);
            uint32_t cp;
            if (k == 1) cp = s[j];
            else if (k == 2) cp = (uint32_t)(s[j] & 0x1F) << 6 | (s[j + 1] & 0x3F);
            else {
                ok = false;
                break;
            }
            int b = cp < 256 + 68 ? tok->cp_byte[cp] : -1;
            if (b < 0) ok = false;
            else out[len++] = (char)b;
            j += (size_t)k;
        }
        if (!ok) {
            len = start;
            memcpy(out + len, s, sl);
            len += sl;
        }
    }
    out[len] = '\0';
    *bytes = out;
    if (len_out) *len_out = len;
    return 0;
}

int molmo_tokenizer_decode(const struct molmo_tokenizer *tok, const int32_t *ids, size_t n,
                           bool skip_special, char **text, struct jb_err *err) {
    char *raw;
    size_t len;
    *text = NULL;
    int rc = molmo_tokenizer_decode_bytes(tok, ids, n, skip_special, &raw, &len, err);
    if (rc) return rc;
    if (utf8_valid_prefix(raw, len) == len) {
        *text = raw;
        return 0;
    }
    char *out = malloc(3 * len + 1);                  /* each bad byte at most one U+FFFD */
    if (!out) {
        free(raw);
        return jb_err_set(err, JB_ENOMEM, "tokenizer: out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int k = utf8_seq((const unsigned char *)raw + i, len - i);
        if (k > 0) {
            memcpy(out + o, raw + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            o += (size_t)put_utf8(out + o, 0xFFFD);
            i += (size_t)-k;
        }
    }
    out[o] = '\0';
    free(raw);
    *text = out;
    return 0;
}

/* ---- lookups -------------------------------------------------------------------------------- */

int32_t molmo_tokenizer_token_id(const struct molmo_tokenizer *tok, const char *content) {
    size_t n = strlen(content);
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == n && memcmp(tok->strs + tok->added[i].off, content, n) == 0)
            return tok->added[i].id;
    return vocab_find(tok, content, n);
}

size_t molmo_tokenizer_n_ids(const struct molmo_tokenizer *tok) {
    return tok->n_ids;
}

bool molmo_tokenizer_is_special(const struct molmo_tokenizer *tok, int32_t id) {
    return id >= 0 && (size_t)id < tok->n_ids && (tok->flags[id] & F_SPECIAL);
}
