/* sparse_internal.h - the byte layout of a sparse row (docs/sparse-format.md), shared by
 * the packer (sparse.c) and the sparse kernels (kernels_sparse_*.c) and nothing else, so
 * the layout math lives in one place.
 *
 * Every row is self-contained and all rows of a tensor have the same size:
 *
 *   N:M types (s24_*, s48_*; N kept of every M consecutive weights, cols % M == 0):
 *     u8 idx[ceil(S * B / 8)] | zero pad to 4 | values[S] | zero pad to 4,
 *     S = cols / M * N slots, B = 2 index bits for 2:4, 4 for 4:8; slot s holds the
 *     weight at column (s / N) * M + idx(s), idx(s) = bits [s*B, s*B + B) of idx (least
 *     significant first), strictly increasing within a group of N slots.
 *   Bitmask types (smask_*; unstructured, capacity K = q.group values per row):
 *     u8 mask[ceil(cols / 8)] | zero pad to 4 | values[K] | zero pad to 4
 *     bit j of mask byte b set <=> the weight at column 8b + j is stored; the set bits'
 *     values follow in column order, then zeros up to K.
 * values are f16 (little-endian binary16) or f32 by type. Kernels never trust the
 * metadata: N:M indices are masked with M - 1 and bitmask rows stop after K values, so a
 * hostile row gives wrong numbers, never an out-of-bounds read.
 */
#ifndef SQ_SPARSE_INTERNAL_H
#define SQ_SPARSE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "types.h"

/* Token counts from which the SIMD sparse kernels switch from streaming the packed rows to
 * the packed GEMM (tiles expanded to dense f32 and reused by every token). Here, not in the
 * kernel files, so tests/test_sparse.c knows which loop it checks. Measured on this
 * machine's CPU (docs/pruning-results.md). */
#ifndef SQ_SGEMM_MIN_T_AVX512
#define SQ_SGEMM_MIN_T_AVX512 16
#endif
#ifndef SQ_SGEMM_MIN_T_AVX2
#define SQ_SGEMM_MIN_T_AVX2 8 /* N:M types */
#endif
#ifndef SQ_SGEMM_MIN_T_AVX2_MASK
#define SQ_SGEMM_MIN_T_AVX2_MASK 4 /* bitmask types: their AVX2 streaming loop is the slowest */
#endif

typedef struct {
    int32_t n, m;        /* N:M pattern; m = 0 for the bitmask types */
    int32_t ibits;       /* N:M index bits per slot: 2 (M = 4) or 4 (M = 8) */
    int32_t vbytes;      /* 2 (f16 values) or 4 (f32) */
    int64_t n_vals;      /* value slots per row: S (N:M) or K (bitmask) */
    int64_t meta_bytes;  /* index nibbles or mask bytes */
    size_t vals_off;     /* offset of the values (a multiple of 4) */
    size_t row_bytes;    /* 0 if invalid or the sizes overflow */
} sq_slayout;

/* Layout of a sparse type for rows of `cols` weights (row_bytes 0 if invalid). */
static inline sq_slayout sq_slayout_of(sq_type t, sq_qparams q, int64_t cols) {
    sq_slayout L;
    memset(&L, 0, sizeof L);
    switch (t) {
    case SQ_TYPE_S24_F16: L.n = 2, L.m = 4, L.vbytes = 2; break;
    case SQ_TYPE_S24_F32: L.n = 2, L.m = 4, L.vbytes = 4; break;
    case SQ_TYPE_S48_F16: L.n = 4, L.m = 8, L.vbytes = 2; break;
    case SQ_TYPE_S48_F32: L.n = 4, L.m = 8, L.vbytes = 4; break;
    case SQ_TYPE_SMASK_F16: L.vbytes = 2; break;
    case SQ_TYPE_SMASK_F32: L.vbytes = 4; break;
    default: return L;
    }
    if (cols < 0 || cols > ((int64_t)1 << 40) || q.asym) return L;
    if (L.m) {
        if (cols % L.m != 0 || q.group != 0) return L;
        L.ibits = L.m == 4 ? 2 : 4;
        L.n_vals = cols / L.m * L.n;
        L.meta_bytes = (L.n_vals * L.ibits + 7) / 8;
    } else {
        if (q.group < 0 || q.group > cols) return L;
        L.n_vals = q.group;
        L.meta_bytes = (cols + 7) / 8;
    }
    L.vals_off = (size_t)((L.meta_bytes + 3) / 4 * 4);
    L.row_bytes = (L.vals_off + (size_t)L.n_vals * (size_t)L.vbytes + 3) / 4 * 4;
    return L;
}

/* In-group index of slot s of an N:M row (ibits 2 or 4, never straddling a byte). */
static inline int32_t sq_snm_idx(const sq_slayout *L, const uint8_t *row, int64_t s) {
    const int64_t bit = s * L->ibits;
    return (row[bit >> 3] >> (bit & 7)) & ((1 << L->ibits) - 1);
}

/* Value v of a row as a float. */
static inline float sq_sval(const sq_slayout *L, const uint8_t *row, int64_t v) {
    const uint8_t *p = row + L->vals_off + (size_t)v * (size_t)L->vbytes;
    if (L->vbytes == 2) return sq_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* Stored values before column k0 (a multiple of 8) of a bitmask row, at most K: where the
 * packed GEMMs' tile expansion starts its value cursor. */
static inline int64_t sq_smask_prefix(const sq_slayout *L, const uint8_t *row, int64_t k0) {
    int64_t n = 0, b = 0;
    for (; 8 * b + 64 <= k0; b += 8) {
        uint64_t u;
        memcpy(&u, row + b, 8);
        n += __builtin_popcountll(u);
    }
    for (; 8 * b < k0; b++) n += __builtin_popcount(row[b]);
    return n < L->n_vals ? n : L->n_vals;
}

#endif
