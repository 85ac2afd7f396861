#include "config.h"

#include "engine/molmo.h"

#include "common/jb-err.h"

#include "tests/jb-test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- helpers ---------------------------------------------------------------------------------
 * Criterion runs every Test in its own process, so each test loads the tokenizer it needs once. */

static struct molmo_tokenizer *load_golden(const char *rel) {
    const char *g = jb_test_golden_or_skip();
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g, rel);
    struct molmo_tokenizer *tok = NULL;
    struct jb_err err = {0};
    int rc = molmo_tokenizer_load(&tok, path, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return tok;
}

static void assert_encodes(const struct molmo_tokenizer *tok, const char *text, size_t len,
                           const int32_t *want, size_t n_want, const char *what) {
    int32_t *ids = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    cr_assert_eq(molmo_tokenizer_encode(tok, text, len, &ids, &n, &err), 0, "%s: %s", what,
                 err.msg);
    bool same = n == n_want;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        char got[2048] = "", exp[2048] = "";
        for (size_t i = 0; i < n && strlen(got) < 2000; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %d", (int)ids[i]);
        for (size_t i = 0; i < n_want && strlen(exp) < 2000; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %d", (int)want[i]);
        free(ids);
        cr_assert_fail("%s: got [%s ] want [%s ]", what, got, exp);
    }
    free(ids);
}

#define ENCODES(tok, text, ...)                                                                \
    do {                                                                                       \
        const int32_t want_[] = {__VA_ARGS__};                                                 \
        assert_encodes(tok, text, strlen(text), want_, sizeof want_ / sizeof want_[0], text);  \
    } while (0)

/* Every line of a {"text": ..., "ids": [...]} file encodes to its ids, and its ids decode back
 * to the text (NFC-normalized when the tokenizer normalizes so). */
static void check_jsonl(const struct molmo_tokenizer *tok, const char *path, size_t want_lines,
                        bool nfc) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *line = NULL;
    size_t cap = 0, n_lines = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        n_lines++;
        json_error_t je;
        json_t *obj = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &je);
        cr_assert_not_null(obj, "%s:%zu: %s", path, n_lines, je.text);
        const json_t *text = json_object_get(obj, "text");
        const json_t *ids = json_object_get(obj, "ids");
        size_t nw = json_array_size(ids);
        int32_t *want = malloc((nw + 1) * sizeof *want);
        for (size_t i = 0; i < nw; i++)
            want[i] = (int32_t)json_integer_value(json_array_get(ids, i));
        char what[4200];
        snprintf(what, sizeof what, "%s:%zu", path, n_lines);
        const char *t = json_string_value(text);
        size_t tl = json_string_length(text);
        assert_encodes(tok, t, tl, want, nw, what);
        char *back = NULL;
        size_t bl = 0;
        struct jb_err err = {0};
        cr_assert_eq(molmo_tokenizer_decode_bytes(tok, want, nw, false, &back, &bl, &err), 0,
                     "%s: %s", what, err.msg);
        utf8proc_uint8_t *norm = NULL;
        if (nfc) {
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)t, (utf8proc_ssize_t)tl,
                                              &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            cr_assert_geq(m, 0);
            t = (const char *)norm;
            tl = (size_t)m;
        }
        cr_assert(bl == tl && memcmp(back, t, tl) == 0, "%s: the ids do not decode to the text",
                  what);
        free(norm);
        free(back);
        free(want);
        json_decref(obj);
    }
    free(line);
    fclose(f);
    cr_assert_eq(n_lines, want_lines, "%s: %zu lines", path, n_lines);
}

/* The golden cases.jsonl (ids from Hugging Face tokenizers, README there) and 300 random strings
 * with the ids of an independent encoder (tests/data/tokenizer-fuzz/README). Qwen and MolmoE
 * declare the NFC normalizer, dolma2 none. */
static void check_cases(const char *name, bool nfc) {
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/%s/tokenizer.json", name);
    struct molmo_tokenizer *tok = load_golden(rel);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/%s/cases.jsonl", jb_test_golden_dir(), name);
    check_jsonl(tok, path, 193, nfc);
    snprintf(path, sizeof path, "%s/tokenizer-fuzz/%s.jsonl", jb_test_data_dir(), name);
    check_jsonl(tok, path, 300, nfc);
    molmo_tokenizer_free(tok);
}

/* ---- the released tokenizers ---------------------------------------------------------------- */

Test(tokenizer, qwen_cases_and_random_strings_match_the_reference_ids_both_ways) {
    check_cases("qwen", true);
}

Test(tokenizer, dolma2_cases_and_random_strings_match_the_reference_ids_both_ways) {
    check_cases("dolma2", false);
}

Test(tokenizer, molmoe_cases_and_random_strings_match_the_reference_ids_both_ways) {
    check_cases("molmoe-1b", true);
}

/* The image tokens are added tokens in MolmoE-1B's file (README table, molmo.md §3.1: 50280
 * <im_start>, 50281 <im_end>, 50282 <im_patch>, 50283 <im_col>, 50279 <|endoftext|>), matched
 * inside text; "User" etc. are ordinary GPT-NeoX words around them. */
Test(tokenizer, molmoe_matches_image_tokens_inside_text) {
    struct molmo_tokenizer *tok = load_golden("tokenizer/molmoe-1b/tokenizer.json");
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<im_start>"), 50280);
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<im_end>"), 50281);
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<im_patch>"), 50282);
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<im_col>"), 50283);
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<|endoftext|>"), 50279);
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<|padding|>"), 1);
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<no such token>"), -1);
    cr_assert_eq(molmo_tokenizer_n_ids(tok), 50285);
    ENCODES(tok, "<im_patch><im_patch><im_col>", 50282, 50282, 50283);
    ENCODES(tok, "<im_start><im_end><|endoftext|>", 50280, 50281, 50279);
    /* "<im_patch" without '>' is plain text: no id of an added token may appear */
    int32_t *ids = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    cr_assert_eq(molmo_tokenizer_encode(tok, "x<im_patch", 10, &ids, &n, &err), 0);
    for (size_t i = 0; i < n; i++) cr_assert_lt(ids[i], 50254, "id %d", (int)ids[i]);
    free(ids);
    molmo_tokenizer_free(tok);
}

/* <|endoftext|> is 151643 in the Qwen vocabulary (README, molmo.md §3.1), found between words;
 * Molmo's <im_patch> is not in this file, so it is plain text (no id >= 151643). */
Test(tokenizer, qwen_matches_endoftext_inside_text_and_keeps_im_patch_as_text) {
    struct molmo_tokenizer *tok = load_golden("tokenizer/qwen/tokenizer.json");
    int32_t *ids = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    const char *t = "a<|endoftext|>b";
    cr_assert_eq(molmo_tokenizer_encode(tok, t, strlen(t), &ids, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(ids[0], molmo_tokenizer_token_id(tok, "a"));
    cr_assert_eq(ids[1], 151643);
    cr_assert_eq(ids[2], molmo_tokenizer_token_id(tok, "b"));
    free(ids);
    t = "<im_start><im_patch>";
    cr_assert_eq(molmo_tokenizer_encode(tok, t, strlen(t), &ids, &n, &err), 0, "%s", err.msg);
    cr_assert_gt(n, 2);
    for (size_t i = 0; i < n; i++) cr_assert_lt(ids[i], 151643, "id %d", (int)ids[i]);
    free(ids);
    cr_assert_eq(molmo_tokenizer_token_id(tok, "<im_patch>"), -1);
    cr_assert_eq(molmo_tokenizer_n_ids(tok), 151669);
    molmo_tokenizer_free(tok);
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* A seeded generator of valid UTF-8: ASCII, whitespace runs, Latin-1, Greek, Cyrillic, Arabic,
 * Devanagari, CJK, Hangul, emoji with ZWJ and skin tones, combining marks, any scalar value. */
static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng_state >> 33) % n);
}

static uint32_t random_cp(void) {
    static const uint32_t ranges[][2] = {
        {0x20, 0x7E},    {0x20, 0x7E},    {0x61, 0x7A},      {0x30, 0x39},   {0x09, 0x0D},
        {0xA0, 0xFF},    {0x370, 0x3FF},  {0x400, 0x4FF},    {0x600, 0x6FF}, {0x900, 0x97F},
        {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F300, 0x1F64F}, {0x1F3FB, 0x1F3FF},
        {0x300, 0x36F},  {0x200B, 0x200D}, {0x3000, 0x3000},  {0x01, 0x1F},  {0x1, 0x10FFFF},
    };
    const uint32_t *r = ranges[rnd(sizeof ranges / sizeof ranges[0])];
    for (;;) {
        uint32_t cp = r[0] + rnd(r[1] - r[0] + 1);
        if (cp < 0xD800 || cp > 0xDFFF) return cp;  /* (no U+0000: decode's result is a C string) */
    }
}

static size_t random_utf8(char *out, size_t max_chars) {
    size_t n = 0, k = 1 + rnd((uint32_t)max_chars);
    for (size_t i = 0; i < k; i++) {
        uint32_t cp = random_cp();
        if (rnd(8) == 0) cp = ' ';
        n += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out + n);
    }
    out[n] = '\0';
    return n;
}

/* decode(encode(s)) gives back s, or its NFC form where the tokenizer declares NFC (the
 * normalizer is the only lossy step of byte-level BPE). */
static void check_roundtrip(const char *rel, bool nfc, uint64_t seed, int count) {
    struct molmo_tokenizer *tok = load_golden(rel);
    rng_state = seed;
    char s[64 * 4 + 1];
    for (int t = 0; t < count; t++) {
        size_t n = random_utf8(s, 64);
        int32_t *ids = NULL;
        size_t n_ids = 0;
        char *back = NULL;
        struct jb_err err = {0};
        cr_assert_eq(molmo_tokenizer_encode(tok, s, n, &ids, &n_ids, &err), 0, "%s", err.msg);
        cr_assert_eq(molmo_tokenizer_decode(tok, ids, n_ids, false, &back, &err), 0, "%s",
                     err.msg);
        char *want = s;
        utf8proc_uint8_t *norm = NULL;
        if (nfc) {
            /* utf8proc_map, not utf8proc_NFC: the text may hold U+0000 */
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                              &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            cr_assert_geq(m, 0);
            want = (char *)norm;
            n = (size_t)m;
        }
        cr_assert(strlen(back) == n && memcmp(back, want, n) == 0,
                  "%s: string %d (seed %llu) does not come back", rel, t,
                  (unsigned long long)seed);
        free(norm);
        free(back);
        free(ids);
    }
    molmo_tokenizer_free(tok);
}

Test(tokenizer, qwen_decode_inverts_encode_up_to_nfc) {
    check_roundtrip("tokenizer/qwen/tokenizer.json", true, 1, 2000);
}

Test(tokenizer, dolma2_decode_inverts_encode_exactly) {
    check_roundtrip("tokenizer/dolma2/tokenizer.json", false, 2, 2000);
}

Test(tokenizer, molmoe_decode_inverts_encode_up_to_nfc) {
    check_roundtrip("tokenizer/molmoe-1b/tokenizer.json", true, 3, 2000);
}

/* ---- a hand-made tokenizer ----------------------------------------------------------------- */

/* Writes a byte-level BPE tokenizer.json: the 256 GPT-2 byte-alphabet characters (ids 0..255 in
 * byte order), then `extra` tokens from id 256, the merges in rank order, an <|endoftext|>
 * special added token after them, and the given pre_tokenizer / normalizer JSON. */
static char *write_tokenizer(const char *dir, const char *const *extra, const char *const *merges,
                             const char *pre, const char *normalizer) {
    json_t *vocab = json_object();
    int n = 0;
    for (int b = 0; b < 256; b++) {
        /* bytes_to_unicode: printable Latin-1 stands for itself, the others U+0100 + k */
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        uint32_t cp = keep ? (uint32_t)b : 256u + (uint32_t)n++;
        char c[5] = {0};
        utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)c);
        json_object_set_new(vocab, c, json_integer(b));
    }
    int id = 256;
    for (int i = 0; extra[i]; i++) json_object_set_new(vocab, extra[i], json_integer(id++));
    json_t *m = json_array();
    for (int i = 0; merges[i]; i++) json_array_append_new(m, json_string(merges[i]));
    json_error_t je;
    json_t *root = json_pack(
        "{s:s, s:n, s:n, s:[{s:i, s:s, s:b, s:b, s:b, s:b, s:b}], s:o, s:o, s:n, "
        "s:{s:s, s:b, s:b, s:b}, s:{s:s, s:n, s:n, s:b, s:o, s:o}}",
        "version", "1.0", "truncation", "padding", "added_tokens", "id", id, "content",
        "<|endoftext|>", "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
        1, "normalizer", normalizer ? json_loads(normalizer, 0, &je) : json_null(),
        "pre_tokenizer", json_loads(pre, 0, &je), "post_processor", "decoder", "type",
        "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 0, "model", "type",
        "BPE", "dropout", "unk_token", "fuse_unk", 0, "vocab", vocab, "merges", m);
    cr_assert_not_null(root);
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/tokenizer.json", dir);
    cr_assert_eq(json_dump_file(root, path, JSON_INDENT(1)), 0);
    json_decref(root);
    return path;
}

static const char bytelevel_plain[] =
    "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}";
static const char bytelevel_gpt2[] =
    "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";

static struct molmo_tokenizer *make(const char *dir, const char *const *extra,
                                    const char *const *merges, const char *pre) {
    char *path = write_tokenizer(dir, extra, merges, pre, NULL);
    struct molmo_tokenizer *tok = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_tokenizer_load(&tok, path, &err), 0, "%s", err.msg);
    free(path);
    return tok;
}

/* Merges apply lowest rank first, not left to right: with "b c" (rank 0) before "a b" (rank 1),
 * "abc" -> a + bc, and no merge joins a and bc. Ids: a 97, b 98, bc 256, ab 257. */
Test(tokenizer, merges_apply_lowest_rank_first) {
    char *dir = jb_test_tmpdir();
    static const char *const extra[] = {"bc", "ab", NULL};
    static const char *const merges[] = {"b c", "a b", NULL};
    struct molmo_tokenizer *tok = make(dir, extra, merges, bytelevel_plain);
    ENCODES(tok, "abc", 97, 256);
    ENCODES(tok, "abab", 257, 257);
    molmo_tokenizer_free(tok);
    jb_test_rmtree(dir);
    free(dir);
}

/* On equal ranks the leftmost pair merges first: "aaa" with "a a" -> aa + a (not a + aa);
 * then "aa a" (rank 1) is not a merge, "aaaa" -> aa + aa -> aaaa via "aa aa" (rank 1). */
Test(tokenizer, equal_ranks_merge_leftmost_first) {
    char *dir = jb_test_tmpdir();
    static const char *const extra[] = {"aa", "aaaa", NULL};
    static const char *const merges[] = {"a a", "aa aa", NULL};
    struct molmo_tokenizer *tok = make(dir, extra, merges, bytelevel_plain);
    ENCODES(tok, "aaa", 256, 97);
    ENCODES(tok, "aaaa", 257);
    ENCODES(tok, "aaaaa", 257, 97);
    molmo_tokenizer_free(tok);
    jb_test_rmtree(dir);
    free(dir);
}

/* model.ignore_merges (tokenizers >= 0.19): a word that is itself in the vocabulary is one token
 * without merging. Vocabulary ab = 256, abc = 257, merge "a b" only: "abc" is ab + c normally,
 * abc with ignore_merges; "abd" (not in the vocabulary) merges as usual. */
Test(tokenizer, ignore_merges_keeps_vocabulary_words_whole) {
    char *dir = jb_test_tmpdir();
    static const char *const extra[] = {"ab", "abc", NULL};
    static const char *const merges[] = {"a b", NULL};
    struct molmo_tokenizer *tok = make(dir, extra, merges, bytelevel_plain);
    ENCODES(tok, "abc", 256, 99);
    molmo_tokenizer_free(tok);
    char *path = write_tokenizer(dir, extra, merges, bytelevel_plain, NULL);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    cr_assert_not_null(root);
    json_object_set_new(json_object_get(root, "model"), "ignore_merges", json_true());
    cr_assert_eq(json_dump_file(root, path, 0), 0);
    json_decref(root);
    struct jb_err err = {0};
    cr_assert_eq(molmo_tokenizer_load(&tok, path, &err), 0, "%s", err.msg);
    ENCODES(tok, "abc", 257);
    ENCODES(tok, "abd", 256, 100);
    molmo_tokenizer_free(tok);
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

/* An added token with "normalized": true is looked for in the normalized text, in its normalized
 * form (tokenizers normalizes the contents it puts in that trie): content "e" U+0301 "x"
 * (decomposed) with NFC matches both "\u00e9x" and "e\u0301x" in text; it decodes to its content.
 * Ids: <|endoftext|> 256, the added token 257. */
Test(tokenizer, normalized_added_tokens_match_in_normalized_form) {
    char *dir = jb_test_tmpdir();
    static const char *const none[] = {NULL};
    char *path = write_tokenizer(dir, none, none, bytelevel_plain, "{\"type\": \"NFC\"}");
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    cr_assert_not_null(root);
    json_array_append_new(json_object_get(root, "added_tokens"),
                          json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 257, "content",
                                    "e\xcc\x81x", "single_word", 0, "lstrip", 0, "rstrip", 0,
                                    "normalized", 1, "special", 0));
    cr_assert_eq(json_dump_file(root, path, 0), 0);
    json_decref(root);
    struct molmo_tokenizer *tok = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_tokenizer_load(&tok, path, &err), 0, "%s", err.msg);
    ENCODES(tok, "a\xc3\xa9x", 97, 257);
    ENCODES(tok, "ae\xcc\x81x", 97, 257);
    ENCODES(tok, "\xc3\xa9y", 0xC3, 0xA9, 121);
    int32_t id = 257;
    char *back = NULL;
    cr_assert_eq(molmo_tokenizer_decode(tok, &id, 1, true, &back, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back, "e\xcc\x81x");                 /* not special: kept */
    free(back);
    molmo_tokenizer_free(tok);
    free(path);
    jb_test_rmtree(dir);
    free(dir);
}

/* Bytes map through the GPT-2 alphabet: a space is 'Ġ' (byte 0x20 = id 32 here), 'é' is the
 * two bytes C3 A9 (ids 195, 169); the GPT-2 regex keeps " b" as one word so "Ġb" merges. */
Test(tokenizer, bytes_map_through_the_gpt2_alphabet) {
    char *dir = jb_test_tmpdir();
    static const char *const extra[] = {"\xc4\xa0" "b", NULL};  /* "Ġb" */
    static const char *const merges[] = {"\xc4\xa0 b", NULL};
    struct molmo_tokenizer *tok = make(dir, extra, merges, bytelevel_gpt2);
    ENCODES(tok, "a b", 97, 256);
    ENCODES(tok, "\xc3\xa9", 195, 169);
    ENCODES(tok, "x<|endoftext|>", 120, 257);
    int32_t ids[] = {97, 256, 257, 195, 169};
    char *s = NULL;
    struct jb_err err = {0};
    cr_assert_eq(molmo_tokenizer_decode(tok, ids, 5, false, &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s, "a b<|endoftext|>\xc3\xa9");
    free(s);
    cr_assert_eq(molmo_tokenizer_decode(tok, ids, 5, true, &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s, "a b\xc3\xa9");                     /* special token skipped */
    free(s);
    /* a lone C3 (half of 'é') decodes to U+FFFD, as from_utf8_lossy does */
    cr_assert_eq(molmo_tokenizer_decode(tok, ids + 3, 1, false, &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s, "\xef\xbf\xbd");
    free(s);
    int32_t bad[] = {97, 258};
    cr_assert_lt(molmo_tokenizer_decode(tok, bad, 2, false, &s, &err), 0);
    cr_assert(strstr(err.msg, "258"), "%s", err.msg);
    int32_t *out = NULL;
    size_t n = 0;
    cr_assert_eq(molmo_tokenizer_encode(tok, "a\xff", 2, &out, &n, &err), JB_EINVAL);
    cr_assert(strstr(err.msg, "byte 1"), "%s", err.msg);
    molmo_tokenizer_free(tok);
    jb_test_rmtree(dir);
    free(dir);
}

/* Split behaviors on "a,b" with the pattern ",": Isolated a | , | b; Removed a | b; invert +
 * Removed keeps only ","; MergedWithPrevious "a," | b; MergedWithNext a | ",b". With merges
 * "a ," (id 256) and ", b" (id 257) the pieces show in the ids. */
Test(tokenizer, split_behaviors_cut_as_tokenizers_does) {
    static const struct {
        const char *behavior;
        bool invert;
        int32_t ids[3];
        size_t n;
    } cases[] = {
        {"Isolated", false, {97, 44, 98}, 3},
        {"Removed", false, {97, 98}, 2},
        {"Removed", true, {44}, 1},
        {"MergedWithPrevious", false, {256, 98}, 2},
        {"MergedWithNext", false, {97, 257}, 2},
        {"Contiguous", false, {97, 44, 98}, 3},
    };
    static const char *const extra[] = {"a,", ",b", NULL};
    static const char *const merges[] = {"a ,", ", b", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = jb_test_tmpdir();
        char pre[512];
        snprintf(pre, sizeof pre,
                 "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                 "{\"String\": \",\"}, \"behavior\": \"%s\", \"invert\": %s}, %s]}",
                 cases[i].behavior, cases[i].invert ? "true" : "false", bytelevel_plain);
        struct molmo_tokenizer *tok = make(dir, extra, merges, pre);
        char what[64];
        snprintf(what, sizeof what, "%s invert=%d", cases[i].behavior, cases[i].invert);
        assert_encodes(tok, "a,b", 3, cases[i].ids, cases[i].n, what);
        molmo_tokenizer_free(tok);
        jb_test_rmtree(dir);
        free(dir);
    }
}

/* tokenizers matches Split patterns with Oniguruma, whose \s is 0009-000D, 0085 and the Zs, Zl,
 * Zp categories (Oniguruma's RE doc), i.e. White_Space: U+0085 (NEL) is whitespace, U+180E
 * (Mongolian vowel separator, Cf since Unicode 6.3) is not (PCRE2's own \s would take it).
 * Pattern \s removed: "a<U+180E> b" -> "a<U+180E>" | "b"; "a<U+0085>b" -> "a" | "b". Each byte
 * is its own id here (no merges). */
Test(tokenizer, split_regex_whitespace_is_onigurumas) {
    char *dir = jb_test_tmpdir();
    static const char *const none[] = {NULL};
    char pre[512];
    snprintf(pre, sizeof pre,
             "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
             "{\"Regex\": \"\\\\s\"}, \"behavior\": \"Removed\", \"invert\": false}, %s]}",
             bytelevel_plain);
    struct molmo_tokenizer *tok = make(dir, none, none, pre);
    ENCODES(tok, "a\xe1\xa0\x8e b", 97, 0xE1, 0xA0, 0x8E, 98);
    ENCODES(tok, "a\xc2\x85" "b", 97, 98);
    ENCODES(tok, "a\xe3\x80\x80" "b", 97, 98);                /* U+3000 is Zs */
    molmo_tokenizer_free(tok);
    jb_test_rmtree(dir);
    free(dir);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void expect_load_error(const char *dir, const char *json, const char *needle) {
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    jb_test_write_file(path, json, strlen(json));
    struct molmo_tokenizer *tok = NULL;
    struct jb_err err = {0};
    cr_assert_lt(molmo_tokenizer_load(&tok, path, &err), 0, "accepted: %s", json);
    cr_assert_null(tok);
    cr_assert(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "message does not name '%s': %s", needle, err.msg);
}

Test(tokenizer, malformed_or_unsupported_files_are_errors_naming_file_and_field) {
    char *dir = jb_test_tmpdir();
    expect_load_error(dir, "{\"model\": {\"type\": \"BPE\", ", "bad.json:1");
    expect_load_error(dir, "[1, 2]", "expected a JSON object");
    expect_load_error(dir, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "model.type");
    expect_load_error(dir,
                      "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                      "no entry for byte");
    expect_load_error(dir, "{\"truncation\": {\"max_length\": 5}, \"model\": {}}", "truncation");
    expect_load_error(dir, "{\"frobnicate\": 1}", "frobnicate");
    /* a full vocabulary but a merge of unknown tokens, an unsupported normalizer, a bad regex */
    static const char *const none[] = {NULL};
    static const char *const bad_merge[] = {"a zz", NULL};
    char *p = write_tokenizer(dir, none, bad_merge, bytelevel_plain, NULL);
    struct molmo_tokenizer *tok = NULL;
    struct jb_err err = {0};
    cr_assert_lt(molmo_tokenizer_load(&tok, p, &err), 0);
    cr_assert(strstr(err.msg, p) && strstr(err.msg, "model.merges[0]"), "%s", err.msg);
    p = (free(p), write_tokenizer(dir, none, none, bytelevel_plain, "{\"type\": \"Lowercase\"}"));
    cr_assert_lt(molmo_tokenizer_load(&tok, p, &err), 0);
    cr_assert(strstr(err.msg, "normalizer.type") && strstr(err.msg, "Lowercase"), "%s", err.msg);
    p = (free(p), write_tokenizer(dir, none, none,
                                  "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                                  "\"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": "
                                  "\"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\"}]}",
                                  NULL));
    cr_assert_lt(molmo_tokenizer_load(&tok, p, &err), 0);
    cr_assert(strstr(err.msg, "pre_tokenizer.pretokenizers[0].pattern"), "%s", err.msg);
    p = (free(p), write_tokenizer(dir, none, none, "{\"type\": \"Whitespace\"}", NULL));
    cr_assert_lt(molmo_tokenizer_load(&tok, p, &err), 0);
    cr_assert(strstr(err.msg, "pre_tokenizer.type") && strstr(err.msg, "Whitespace"), "%s",
              err.msg);
    free(p);
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/missing.json", dir);
    cr_assert_lt(molmo_tokenizer_load(&tok, missing, &err), 0);
    cr_assert(strstr(err.msg, "missing.json"), "%s", err.msg);
    jb_test_rmtree(dir);
    free(dir);
}

/* ---- the tiny golden checkpoints ------------------------------------------------------------ */

/* The prompt text of spec §3.2 encodes to the manifest's text_token_ids and the special tokens
 * have the manifest's ids (the tiny tokenizers have no merges: one id per byte). */
static void check_tiny(const char *name) {
    const char *g = jb_test_golden_or_skip();
    char rel[256], path[4096];
    snprintf(rel, sizeof rel, "%s/tokenizer.json", name);
    struct molmo_tokenizer *tok = load_golden(rel);
    snprintf(path, sizeof path, "%s/%s/manifest.json", g, name);
    json_error_t je;
    json_t *man = json_load_file(path, 0, &je);
    cr_assert_not_null(man, "%s: %s", path, je.text);
    const char *tmpl = json_string_value(json_object_get(man, "prompt_template"));
    const char *q = json_string_value(json_object_get(man, "prompt_text"));
    cr_assert(tmpl && q);
    cr_assert_str_eq(tmpl, " User: {prompt} Assistant:");
    char prompt[512];
    snprintf(prompt, sizeof prompt, " User: %s Assistant:", q);
    const json_t *want = json_object_get(man, "text_token_ids");
    size_t nw = json_array_size(want);
    cr_assert_gt(nw, 0);
    int32_t w[512];
    cr_assert_lt(nw, 512);
    for (size_t i = 0; i < nw; i++) w[i] = (int32_t)json_integer_value(json_array_get(want, i));
    assert_encodes(tok, prompt, strlen(prompt), w, nw, path);
    const char *k;
    json_t *v;
    size_t n_special = 0;
    json_object_foreach(json_object_get(man, "special_token_ids"), k, v) {
        cr_assert_eq(molmo_tokenizer_token_id(tok, k), (int32_t)json_integer_value(v), "%s", k);
        cr_assert(molmo_tokenizer_is_special(tok, (int32_t)json_integer_value(v)), "%s", k);
        n_special++;
    }
    cr_assert_geq(n_special, 5);
    json_decref(man);
    molmo_tokenizer_free(tok);
}

Test(tokenizer, tiny_qwen2_prompt_and_special_ids_match_manifest) {
    check_tiny("molmo-tiny-qwen2");
}

Test(tokenizer, tiny_olmo_prompt_and_special_ids_match_manifest) {
    check_tiny("molmo-tiny-olmo");
}

Test(tokenizer, tiny_olmoe_prompt_and_special_ids_match_manifest) {
    check_tiny("molmo-tiny-olmoe");
}

/* ---- joulebench tokenize ------------------------------------------------------------------- */

/* "Hello world" is 9707 1879 for Qwen (cases.jsonl line 12, from llama.cpp's qwen2 fixture). */
Test(tokenize_cmd, prints_ids_and_jsonl_and_names_bad_lines) {
    const char *g = jb_test_golden_or_skip();
    struct jb_test_proc p;
    jb_test_run(&p,
                "printf 'Hello world' | '%s' tokenize --tokenizer "
                "'%s/tokenizer/qwen/tokenizer.json'",
                jb_test_bin(), g);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert_str_eq(p.out, "9707 1879\n");
    jb_test_proc_free(&p);
    jb_test_run(&p,
                "printf '{\"text\": \"Hello world\"}\\n\\n{\"text\": \"\"}\\n' | '%s' tokenize "
                "--jsonl --tokenizer '%s/tokenizer/qwen/tokenizer.json'",
                jb_test_bin(), g);
    cr_assert_eq(p.status, 0, "%s", p.err);
    cr_assert_str_eq(p.out, "{\"text\": \"Hello world\", \"ids\": [9707, 1879]}\n"
                            "{\"text\": \"\", \"ids\": []}\n");
    jb_test_proc_free(&p);
    jb_test_run(&p,
                "printf '{\"text\": \"a\"}\\n{\"text\": \\n' | '%s' tokenize --jsonl "
                "--tokenizer '%s/tokenizer/qwen/tokenizer.json'",
                jb_test_bin(), g);
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "stdin:2"), "%s", p.err);
    jb_test_proc_free(&p);
    jb_test_run(&p, "'%s' tokenize --tokenizer /nonexistent/tokenizer.json </dev/null",
                jb_test_bin());
    cr_assert_eq(p.status, 2);
    cr_assert(strstr(p.err, "/nonexistent/tokenizer.json"), "%s", p.err);
    jb_test_proc_free(&p);
}
