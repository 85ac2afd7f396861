/* tokenizer-impl.h: byte-level BPE tokenizers as Hugging Face `tokenizers` reads them from a
 * tokenizer.json (engine-internal; molmo.md §3.1). Qwen2, dolma2 (cl100k) and GPT-NeoX style
 * files: added tokens, NFC, Split/ByteLevel pre-tokenizers, merges by rank, byte alphabet.
 *
 *     struct molmo_tokenizer *tok = NULL;
 *     if (molmo_tokenizer_load(&tok, "dir/tokenizer.json", &err) < 0) return err.code;
 *     int32_t *ids; size_t n;
 *     if (molmo_tokenizer_encode(tok, " User: Hi Assistant:", 20, &ids, &n, &err) == 0) ...
 *     free(ids); molmo_tokenizer_free(tok);
 *
 * A loaded tokenizer is immutable: encode, decode and token_id may run on several threads at
 * once (each encode call keeps its own scratch and word cache).
 */
#ifndef MOLMO_TOKENIZER_IMPL_H
#define MOLMO_TOKENIZER_IMPL_H

#include "common/jb-err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct molmo_tokenizer; /* opaque */

/* Loads a Hugging Face tokenizer.json (byte-level BPE). A feature of the file this
 * implementation does not reproduce exactly (another model type, normalizer, pre-tokenizer,
 * decoder, truncation, ...) is a JB_EUNSUPPORTED error naming the file and the field; a
 * malformed file is JB_EFORMAT naming the file (and line:column for JSON syntax). */
int molmo_tokenizer_load(struct molmo_tokenizer **out, const char *path, struct jb_err *err);
void molmo_tokenizer_free(struct molmo_tokenizer *tok); /* NULL is a no-op */

/* Encodes UTF-8 text of len bytes as tokenizer.encode(text, add_special_tokens=False) does:
 * added tokens matched inside the text, normalizer, pre-tokenizer, BPE. *ids is malloc'd (NULL
 * with *n_ids = 0 for empty output). Invalid UTF-8 is JB_EINVAL naming the byte offset. */
int molmo_tokenizer_encode(const struct molmo_tokenizer *tok, const char *text, size_t len,
                           int32_t **ids, size_t *n_ids, struct jb_err *err);

/* Decodes ids to UTF-8 (malloc'd, NUL-terminated). skip_special drops added tokens marked
 * special. An id outside the vocabulary is an error naming it. As `tokenizers` does, bytes
 * that do not form valid UTF-8 (a multi-byte character cut between ids) become U+FFFD. */
int molmo_tokenizer_decode(const struct molmo_tokenizer *tok, const int32_t *ids, size_t n,
                           bool skip_special, char **text, struct jb_err *err);

/* Like molmo_tokenizer_decode but the raw bytes, without the U+FFFD repair (for streaming
 * output token by token); *len_out gets the length, the buffer is still NUL-terminated. */
int molmo_tokenizer_decode_bytes(const struct molmo_tokenizer *tok, const int32_t *ids, size_t n,
                                 bool skip_special, char **bytes, size_t *len_out,
                                 struct jb_err *err);

/* The id of a token looked up by content ("<im_patch>", "<|endoftext|>"), in added_tokens
 * first, then the vocabulary (byte-level form, "Ġthe"); -1 if absent. */
int32_t molmo_tokenizer_token_id(const struct molmo_tokenizer *tok, const char *content);

/* Number of ids the tokenizer knows (max id + 1 over vocab and added tokens). */
size_t molmo_tokenizer_n_ids(const struct molmo_tokenizer *tok);

/* Whether id is an added token marked "special" (false for other or unknown ids). */
bool molmo_tokenizer_is_special(const struct molmo_tokenizer *tok, int32_t id);

#endif /* MOLMO_TOKENIZER_IMPL_H */
