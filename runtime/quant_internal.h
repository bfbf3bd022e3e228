/* quant_internal.h - the byte layout of a group-quantized row (q8g, q6g, q5g, q4g, q3g), shared by
 * the packer (quant.c), the reference and SIMD kernels and nothing else, so the layout
 * math lives in one place. docs/sqz-format.md is the specification:
 *
 *   f16 scales[n_groups] | u8 zeros[n_groups] (asym only) | zero pad to 4 bytes | chunks
 *
 * A chunk holds 32 consecutive weights of the row (the last one zero-padded): q8g 32
 * bytes, one code each; q4g 16 bytes, byte j = code j (low nibble) | code j+16 (high
 * nibble); q3g 12 bytes, 8 bytes of 2-bit planes (byte j: low bits of codes j, j+8, j+16,
 * j+24 at bit 0, 2, 4, 6) then a little-endian u32 whose bit j is bit 2 of code j; q5g 20
 * bytes, a q4g chunk of the low 4 bits of each code then a little-endian u32 whose bit j is
 * bit 4 of code j; q6g 24 bytes, a q4g chunk of the low 4 bits then 8 bytes of 2-bit planes
 * of bits 4-5 (byte j: codes j, j+8, j+16, j+24 at bit 0, 2, 4, 6, as q3g's planes).
 */
#ifndef SQ_QUANT_INTERNAL_H
#define SQ_QUANT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "types.h"

#define SQ_QCHUNK 32 /* weights per code chunk */

/* Where things are in a row of `cols` weights. */
typedef struct {
    int64_t n_groups;     /* ceil(cols / group) */
    int64_t n_chunks;     /* ceil(cols / 32) */
    int64_t group_chunks; /* chunks per group: group / 32, or n_chunks when one group spans the row */
    size_t zeros_off;     /* offset of u8 zeros[n_groups] (asym) */
    size_t codes_off;     /* offset of chunk 0 (a multiple of 4) */
    size_t chunk_bytes;   /* 32, 24, 20, 16 or 12 */
    size_t row_bytes;     /* 0 if the sizes overflow */
    int32_t bits;         /* 8, 6, 5, 4 or 3 */
    int32_t zero_sym;     /* the zero point of symmetric tensors: 2^(bits-1) */
    bool asym;            /* zeros[] present (q.asym) */
} sq_qlayout;

/* The layout for a valid quantized type, parameters and cols >= 0 (sq_qparams_validate). */
static inline sq_qlayout sq_qlayout_of(sq_type t, sq_qparams q, int64_t cols) {
    sq_qlayout L;
    memset(&L, 0, sizeof L);
    switch (t) {
    case SQ_TYPE_Q8G: L.bits = 8, L.chunk_bytes = 32; break;
    case SQ_TYPE_Q6G: L.bits = 6, L.chunk_bytes = 24; break;
    case SQ_TYPE_Q5G: L.bits = 5, L.chunk_bytes = 20; break;
    case SQ_TYPE_Q4G: L.bits = 4, L.chunk_bytes = 16; break;
    default: L.bits = 3, L.chunk_bytes = 12; break;
    }
    L.zero_sym = 1 << (L.bits - 1);
    L.asym = q.asym;
    if (cols <= 0 || q.group <= 0) {
        L.group_chunks = 1;
        return L;
    }
    const uint64_t c = (uint64_t)cols, g = (uint64_t)q.group;
    const uint64_t ng = (c + g - 1) / g, nc = (c + SQ_QCHUNK - 1) / SQ_QCHUNK;
    L.n_groups = (int64_t)ng;
    L.n_chunks = (int64_t)nc;
    L.group_chunks = ng == 1 ? (int64_t)nc : (int64_t)(g / SQ_QCHUNK);
    uint64_t hdr, codes, total;
    if (__builtin_mul_overflow(ng, q.asym ? 3u : 2u, &hdr) || hdr > UINT64_MAX - 3 ||
        __builtin_mul_overflow(nc, (uint64_t)L.chunk_bytes, &codes) ||
        __builtin_add_overflow((hdr + 3) / 4 * 4, codes, &total) || total > SIZE_MAX)
        return L; /* row_bytes stays 0 */
    L.zeros_off = (size_t)(2 * ng);
    L.codes_off = (size_t)((hdr + 3) / 4 * 4);
    L.row_bytes = (size_t)total;
    return L;
}

/* Scale of group g (f16, little-endian) as a float. */
static inline float sq_qrow_scale(const uint8_t *row, int64_t g) {
    const uint8_t *p = row + 2 * g;
    return sq_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

/* Zero point of group g. */
static inline int32_t sq_qrow_zero(const sq_qlayout *L, bool asym, const uint8_t *row, int64_t g) {
    return asym ? (int32_t)row[L->zeros_off + (size_t)g] : L->zero_sym;
}

/* A little-endian u32 at p. */
static inline uint32_t sq_qload_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The 32 codes of one chunk. */
static inline void sq_qchunk_decode(sq_type t, const uint8_t *p, uint8_t codes[SQ_QCHUNK]) {
    if (t == SQ_TYPE_Q8G) {
        memcpy(codes, p, SQ_QCHUNK);
    } else if (t == SQ_TYPE_Q4G || t == SQ_TYPE_Q5G || t == SQ_TYPE_Q6G) {
        for (int j = 0; j < 16; j++) {
            codes[j] = p[j] & 0x0F;
            codes[j + 16] = p[j] >> 4;
        }
        if (t == SQ_TYPE_Q5G) {
            const uint32_t hi = sq_qload_u32le(p + 16);
            for (int j = 0; j < SQ_QCHUNK; j++) codes[j] = (uint8_t)(codes[j] | (((hi >> j) & 1) << 4));
        } else if (t == SQ_TYPE_Q6G) {
            for (int j = 0; j < SQ_QCHUNK; j++)
                codes[j] = (uint8_t)(codes[j] | (((p[16 + (j & 7)] >> (2 * (j >> 3))) & 3) << 4));
        }
    } else {
        const uint32_t hi = sq_qload_u32le(p + 8);
        for (int j = 0; j < SQ_QCHUNK; j++)
            codes[j] = (uint8_t)(((p[j & 7] >> (2 * (j >> 3))) & 3) | (((hi >> j) & 1) << 2));
    }
}

/* The dequantized weights of chunks [c0, c1) of a row: dst[k] = weight 32*c0 + k, for every
 * weight of those chunks below cols (w = s * (float)(q - z)). */
static inline void sq_qrow_dequant_chunks(sq_type t, sq_qparams q, const sq_qlayout *L, int64_t cols,
                                          const uint8_t *row, int64_t c0, int64_t c1, float *dst) {
    for (int64_t c = c0; c < c1; c++) {
        uint8_t codes[SQ_QCHUNK];
        sq_qchunk_decode(t, row + L->codes_off + (size_t)c * L->chunk_bytes, codes);
        const int64_t g = c / L->group_chunks;
        const float s = sq_qrow_scale(row, g);
        const int32_t z = sq_qrow_zero(L, q.asym, row, g);
        const int64_t n = cols - c * SQ_QCHUNK < SQ_QCHUNK ? cols - c * SQ_QCHUNK : SQ_QCHUNK;
        for (int64_t k = 0; k < n; k++) dst[(c - c0) * SQ_QCHUNK + k] = s * (float)((int32_t)codes[k] - z);
    }
}

#endif
