/* xxhash.c - XXH64, streaming and one-shot, and sq_vocab_hash built on it.
 *
 * XXH64 is Yann Collet's non-cryptographic 64-bit hash; this is written from its published
 * specification (xxHash repository, doc/xxhash_spec.md): four 64-bit lanes consume 32-byte
 * stripes, converge, absorb the length and the last <32 bytes, then avalanche. Input is
 * read as little-endian regardless of the host, so digests match the reference everywhere.
 * It checksums runnable files (docs/sqz-format.md) and identifies tokenizers; it is not a
 * defence against deliberate tampering.
 */
#include <string.h>

#include "sqz.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

/* ===== XXH64 ===== */

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t read64(const uint8_t *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
           (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint32_t read32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t round64(uint64_t acc, uint64_t lane) {
    acc += lane * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t merge64(uint64_t acc, uint64_t v) {
    acc ^= round64(0, v);
    return acc * P1 + P4;
}

/* Consumes whole 32-byte stripes from p; returns the number of bytes used. */
static size_t consume_stripes(uint64_t v[4], const uint8_t *p, size_t len) {
    uint64_t v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
    size_t done = 0;
    for (; done + 32 <= len; done += 32, p += 32) {
        v0 = round64(v0, read64(p));
        v1 = round64(v1, read64(p + 8));
        v2 = round64(v2, read64(p + 16));
        v3 = round64(v3, read64(p + 24));
    }
    v[0] = v0, v[1] = v1, v[2] = v2, v[3] = v3;
    return done;
}

void sq_xxh64_init(sq_xxh64_state *h, uint64_t seed) {
    memset(h, 0, sizeof *h);
    h->seed = seed;
    h->v[0] = seed + P1 + P2;
    h->v[1] = seed + P2;
    h->v[2] = seed;
    h->v[3] = seed - P1;
}

void sq_xxh64_update(sq_xxh64_state *h, const void *data, size_t len) {
    if (len == 0) return;
    const uint8_t *p = data;
    h->total += len;
    if (h->buf_len + len < 32) {
        memcpy(h->buf + h->buf_len, p, len);
        h->buf_len += (uint32_t)len;
        return;
    }
    if (h->buf_len) { /* complete the buffered stripe */
        size_t fill = 32 - h->buf_len;
        memcpy(h->buf + h->buf_len, p, fill);
        consume_stripes(h->v, h->buf, 32);
        p += fill;
        len -= fill;
        h->buf_len = 0;
    }
    size_t used = consume_stripes(h->v, p, len);
    memcpy(h->buf, p + used, len - used);
    h->buf_len = (uint32_t)(len - used);
}

uint64_t sq_xxh64_digest(const sq_xxh64_state *h) {
    uint64_t acc;
    if (h->total >= 32) {
        acc = rotl64(h->v[0], 1) + rotl64(h->v[1], 7) + rotl64(h->v[2], 12) + rotl64(h->v[3], 18);
        for (int i = 0; i < 4; i++) acc = merge64(acc, h->v[i]);
    } else {
        acc = h->seed + P5;
    }
    acc += h->total;
    const uint8_t *p = h->buf;
    size_t len = h->buf_len;
    for (; len >= 8; p += 8, len -= 8) {
        acc ^= round64(0, read64(p));
        acc = rotl64(acc, 27) * P1 + P4;
    }
    if (len >= 4) {
        acc ^= (uint64_t)read32(p) * P1;
        acc = rotl64(acc, 23) * P2 + P3;
        p += 4;
        len -= 4;
    }
    for (; len > 0; p++, len--) {
        acc ^= (uint64_t)*p * P5;
        acc = rotl64(acc, 11) * P1;
    }
    acc ^= acc >> 33;
    acc *= P2;
    acc ^= acc >> 29;
    acc *= P3;
    acc ^= acc >> 32;
    return acc;
}

uint64_t sq_xxh64(const void *data, size_t len, uint64_t seed) {
    sq_xxh64_state h;
    sq_xxh64_init(&h, seed);
    sq_xxh64_update(&h, data, len);
    return sq_xxh64_digest(&h);
}

/* ===== Vocabulary identity ===== */

static void put_u32(sq_xxh64_state *h, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sq_xxh64_update(h, b, 4);
}

static void put_str(sq_xxh64_state *h, const char *s) {
    if (!s) { /* distinct from "" */
        put_u32(h, 0xFFFFFFFFu);
        return;
    }
    size_t n = strlen(s);
    put_u32(h, (uint32_t)n);
    sq_xxh64_update(h, s, n);
}

/* Canonical little-endian serialization, versioned by its leading tag:
 *   "sq_vocab/1", kind, pre, n_tokens, tokens (u32 length + bytes), scores (f32 bit
 *   patterns), types (i32), n_merges, merges, bos, eos, unk, pad, then the five flags as one
 *   u32 bit set. Absent score/type arrays hash as zeros, which is what sq_vocab_copy makes
 *   of them, so a copy always has its original's identity. */
uint64_t sq_vocab_hash(const sq_vocab *v) {
    static const char tag[] = "sq_vocab/1";
    sq_xxh64_state h;
    sq_xxh64_init(&h, 0);
    sq_xxh64_update(&h, tag, sizeof tag - 1);
    if (!v) return sq_xxh64_digest(&h);
    int32_t n = v->n_tokens > 0 ? v->n_tokens : 0;
    put_u32(&h, (uint32_t)v->kind);
    put_u32(&h, (uint32_t)v->pre);
    put_u32(&h, (uint32_t)n);
    for (int32_t i = 0; i < n; i++) put_str(&h, v->tokens ? v->tokens[i] : NULL);
    for (int32_t i = 0; i < n; i++) {
        uint32_t bits = 0;
        if (v->scores) memcpy(&bits, &v->scores[i], 4);
        put_u32(&h, bits);
    }
    for (int32_t i = 0; i < n; i++) put_u32(&h, v->types ? (uint32_t)v->types[i] : 0u);
    int32_t nm = v->n_merges > 0 && v->merges ? v->n_merges : 0;
    put_u32(&h, (uint32_t)nm);
    for (int32_t i = 0; i < nm; i++) put_str(&h, v->merges[i]);
    put_u32(&h, (uint32_t)v->bos_id);
    put_u32(&h, (uint32_t)v->eos_id);
    put_u32(&h, (uint32_t)v->unk_id);
    put_u32(&h, (uint32_t)v->pad_id);
    put_u32(&h, (uint32_t)v->add_bos | (uint32_t)v->add_eos << 1 | (uint32_t)v->add_dummy_prefix << 2 |
                    (uint32_t)v->remove_extra_whitespaces << 3 | (uint32_t)v->byte_fallback << 4);
    return sq_xxh64_digest(&h);
}
