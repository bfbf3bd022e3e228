/* tokenizer.h - text <-> token ids for the two tokenizer families squish supports.
 *
 * SentencePiece BPE (Llama-2, Mistral, TinyLlama, llama2.c models): normalize (optional
 * collapse of extra whitespace, spaces -> U+2581, dummy-prefix "▁"), split into UTF-8
 * characters, repeatedly merge the adjacent pair whose concatenation is a piece with the
 * highest score (ties: leftmost), then emit unknown characters as <0xHH> byte pieces
 * (byte fallback) or <unk>. Byte-exact with google/sentencepiece and llama.cpp.
 *
 * Byte-level BPE (GPT-2 lineage: SmolLM, Qwen2, Llama-3): split on added tokens, split
 * with the model's pre-tokenizer (FORMATS.md 4.2), map bytes through the GPT-2
 * byte-to-unicode table, merge by rank, look up ids. Byte-exact with HF tokenizers.
 *
 * A tokenizer borrows the sq_vocab it was built from: the vocab must outlive it.
 * Encoding and decoding are thread-safe (the tokenizer is read-only after init).
 */
#ifndef SQ_TOKENIZER_H
#define SQ_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

typedef struct sq_tokenizer sq_tokenizer;

sq_status sq_tokenizer_init(sq_tokenizer **out, const sq_vocab *v);
void sq_tokenizer_free(sq_tokenizer *t); /* NULL-safe */

/* Encodes len bytes of UTF-8 text (invalid UTF-8 is handled, never rejected). Prepends
 * BOS when add_bos (and the vocab has one), appends EOS when add_eos. *ids is malloc'ed
 * and owned by the caller. Runs in O(n log n) so whole evaluation texts can be encoded
 * in one call. */
sq_status sq_tokenizer_encode(const sq_tokenizer *t, const char *text, size_t len, bool add_bos,
                              bool add_eos, int32_t **ids, int32_t *n_ids);

/* The bytes token `id` contributes to the output when it follows token `prev` (prev < 0
 * at the start of a stream). Control tokens give "", SPM byte pieces give their byte,
 * and the dummy-prefix space of the first piece after BOS or at the start is dropped.
 * Writes at most cap bytes to buf (not NUL-terminated) and returns the number of bytes,
 * or -1 if id is out of range. A piece is at most SQ_TOKEN_MAX_BYTES bytes. */
#define SQ_TOKEN_MAX_BYTES 512
int sq_tokenizer_decode_piece(const sq_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap);

/* Decodes a whole sequence (as the reference libraries do). *text is malloc'ed and
 * NUL-terminated; *len excludes the NUL. */
sq_status sq_tokenizer_decode(const sq_tokenizer *t, const int32_t *ids, int32_t n, char **text,
                              size_t *len);

/* Token id of a piece string, or -1. */
int32_t sq_tokenizer_find(const sq_tokenizer *t, const char *piece);

#endif
