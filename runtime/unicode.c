/* unicode.c - strict UTF-8 decode/encode (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF) and Unicode category lookup by binary search over the generated range
 * tables in unicode_tables.h, answered inline for ASCII. Used by the byte-level BPE
 * pre-tokenizers (FORMATS.md 4.2) and the SPM splitter. */
#include "unicode.h"

#include "unicode_tables.h"

int sq_utf8_decode(const char *str, size_t len, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1Fu;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0Fu;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07u;
        min = 0x10000;
    } else {
        *cp = SQ_UTF8_INVALID; /* continuation byte, C0/C1 (always overlong) or F5..FF */
        return 1;
    }
    if ((size_t)n > len) {
        *cp = SQ_UTF8_INVALID;
        return 1;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = SQ_UTF8_INVALID;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = SQ_UTF8_INVALID;
        return 1;
    }
    *cp = v;
    return n;
}

int sq_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid][0])
            hi = mid;
        else if (cp > r[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static unsigned flags_slow(uint32_t cp) {
    unsigned f = 0;
    if (in_ranges(sq_uni_letter, COUNT(sq_uni_letter), cp)) f |= SQ_UNI_LETTER;
    if (in_ranges(sq_uni_number, COUNT(sq_uni_number), cp)) f |= SQ_UNI_NUMBER;
    if (in_ranges(sq_uni_space, COUNT(sq_uni_space), cp)) f |= SQ_UNI_SPACE;
    return f;
}

/* ASCII is answered inline; everything else searches the tables (about ten steps). */
unsigned sq_unicode_flags(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return SQ_UNI_LETTER;
        if (cp >= '0' && cp <= '9') return SQ_UNI_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return SQ_UNI_SPACE;
        return 0;
    }
    if (cp > 0x10FFFF) return 0;
    return flags_slow(cp);
}

const char *sq_unicode_version(void) { return SQ_UNICODE_VERSION; }
