/* unicode.h - the little Unicode the tokenizers need: strict UTF-8 decoding (invalid
 * bytes are reported, one at a time, never rejected), UTF-8 encoding and a category
 * lookup (letter \p{L}, number \p{N}, White_Space \s) over generated range tables
 * (runtime/unicode_tables.h, scripts/gen_unicode_tables.py; Unicode version in
 * SQ_UNICODE_VERSION). Pure functions, thread-safe. */
#ifndef SQ_UNICODE_H
#define SQ_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What sq_utf8_decode reports for a byte that does not start a valid UTF-8 sequence. */
#define SQ_UTF8_INVALID 0xFFFFFFFFu

/* Decodes the UTF-8 sequence at s (len > 0 bytes available). Returns its length (1..4)
 * and the code point in *cp. Overlong forms, surrogates, values above U+10FFFF, stray
 * continuation bytes and truncated sequences give *cp = SQ_UTF8_INVALID and length 1,
 * so a caller can treat that byte alone and carry on. */
int sq_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Writes the UTF-8 form of cp (<= U+10FFFF, not a surrogate) to out; returns 1..4, or 0
 * for an invalid code point. */
int sq_utf8_encode(uint32_t cp, char out[4]);

/* Category flags of a code point (0 for SQ_UTF8_INVALID). */
enum {
    SQ_UNI_LETTER = 1, /* general category L* */
    SQ_UNI_NUMBER = 2, /* general category N* */
    SQ_UNI_SPACE = 4   /* White_Space property */
};
unsigned sq_unicode_flags(uint32_t cp);

static inline bool sq_unicode_is_letter(uint32_t cp) { return (sq_unicode_flags(cp) & SQ_UNI_LETTER) != 0; }
static inline bool sq_unicode_is_number(uint32_t cp) { return (sq_unicode_flags(cp) & SQ_UNI_NUMBER) != 0; }
static inline bool sq_unicode_is_space(uint32_t cp) { return (sq_unicode_flags(cp) & SQ_UNI_SPACE) != 0; }

/* The Unicode version of the tables, e.g. "14.0.0". */
const char *sq_unicode_version(void);

#endif
