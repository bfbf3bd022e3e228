/* tokenizer_internal.h - hooks into runtime/tokenizer.c for tests only (not part of the
 * public API): the byte-level BPE pre-tokenizers of FORMATS.md 4.2 on their own. */
#ifndef SQ_TOKENIZER_INTERNAL_H
#define SQ_TOKENIZER_INTERNAL_H

#include "tokenizer.h"

/* Splits len bytes of text with pre-tokenizer `pre` (not SQ_PRE_DEFAULT). *ends (malloc'ed,
 * owned by the caller) receives the byte offset where each piece ends, in order. */
sq_status sq_pretok_split(sq_pretok pre, const char *text, size_t len, int32_t **ends, int32_t *n);

/* Turns off (or back on) SentencePiece's cutting of the text into independent chunks
 * (see spm_encode), so tests can check that it changes nothing. */
void sq_tokenizer_set_chunking(sq_tokenizer *t, bool on);

#endif
