/* kernels_sparse_avx512.c - AVX-512 (F, BW, VL) matmuls for sparse weights (docs/sparse-
 * format.md; the reference is kernels_sparse_ref.c). Compiled with the flags of
 * kernels_avx512.c; NULL table without them.
 *
 * N:M rows (2:4, 4:8): 16 stored slots at a time. For both patterns they cover exactly 32
 * columns (8 groups of 4 or 4 groups of 8), so x there is loaded as two 16-float vectors and
 * each slot's input picked by its column within the 32 ((slot / N) * M + idx, rebuilt from
 * the 2- or 4-bit indices) with one two-source permute (vpermt2ps; an earlier version used
 * a 16-lane gather, which the permute replaces at the same results), then multiplied by the
 * 16 values: N/M of a dense row's multiply-adds and weight bytes (+ 1/8 byte of index per
 * value). Bitmask
 * rows: per 16-weight mask word, exactly popcount values are loaded (masked load, so
 * nothing past them is touched) and spread to their lanes with vexpandps, then one FMA
 * with x; all-zero words are skipped. Tails and the last values of a row run the scalar
 * reference loop. With several tokens (prompts, evaluation) a row's indices, mask words and
 * values are decoded once for 4 tokens at a time. Two 16-lane accumulators per token summed
 * in a fixed order: results depend only on (cols, row), never on T, the row range or the
 * thread count.
 */
#include "kernels_internal.h"
#include "sparse_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

/* The first `n` (<= 16) values at p as floats, nothing past them read. */
SQ_INLINE __m512 loadn(const uint8_t *p, int vb, __mmask16 n_mask) {
    if (vb == 2) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(n_mask, p));
    return _mm512_maskz_loadu_ps(n_mask, p);
}

/* The 16 slots from slot s (a multiple of 16): their columns relative to c0 = s / N * M in
 * *c (0..31: 16 slots cover 32 columns for 2:4 and 4:8) and their values in *v. The caller
 * guarantees s + 16 <= S, so c0 + 32 <= cols. */
SQ_INLINE void nm16_slots(const sq_slayout *L, const uint8_t *row, int64_t s, __m512i off, __m512i shifts,
                          __m512i mmask, __m512i *c, __m512 *v) {
    uint32_t nib[2] = {0, 0}; /* 16 slots' indices: 2 x 16 bits (2:4) or 2 x 32 (4:8) */
    if (L->ibits == 2) {
        uint16_t h[2];
        memcpy(h, row + (s >> 2), 4);
        nib[0] = h[0], nib[1] = h[1];
    } else {
        memcpy(nib, row + (s >> 1), 8);
    }
    __m512i nv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)nib[0])), _mm256_set1_epi32((int)nib[1]), 1);
    *c = _mm512_add_epi32(off, _mm512_and_si512(_mm512_srlv_epi32(nv, shifts), mmask));
    *v = loadn(row + L->vals_off + (size_t)s * (size_t)L->vbytes, L->vbytes, 0xFFFF);
}

/* x at the 16 slots' columns: the 32 floats from xs, picked by c with one two-source permute. */
SQ_INLINE __m512 pick32(const float *xs, __m512i c) {
    return _mm512_permutex2var_ps(_mm512_loadu_ps(xs), c, _mm512_loadu_ps(xs + 16));
}

/* Software prefetch distance in bytes ahead of the values being read (one prefetch per 64
 * bytes). Rows are contiguous, so near a row's end it reaches into the next row's indices
 * or mask. Measured on this machine's AVX-512 CPU (docs/pruning-results.md): without it a
 * T = 1 row waits on memory and 2:4 decodes slower than dense f16. */
#ifndef SQ_SPREFETCH
#define SQ_SPREFETCH 1024
#endif

/* out[t] = row . x_t for nt tokens x_t = x + t * cols (nt is 1 or TB, a constant after
 * inlining, so the per-token accumulators live in registers). The weights' metadata is
 * decoded once per block of tokens. Each token's arithmetic is the same whatever nt is, so
 * results depend only on (cols, row), never on T or the row range. */
#define TB 4
SQ_INLINE void srow_dots(const sq_slayout *L, const uint8_t *row, const float *x, int64_t cols, const int nt,
                         __m512i off, __m512i shifts, __m512i mmask, float *out) {
    __m512 a0[TB], a1[TB];
    float tail[TB];
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        a0[t] = _mm512_setzero_ps();
        a1[t] = _mm512_setzero_ps();
        tail[t] = 0.0f;
    }
    if (L->m) {
        int64_t s = 0;
        for (; s + 16 <= L->n_vals; s += 16) { /* even chunks of 16 slots into a0, odd ones into a1 */
            __m512i c;
            __m512 v;
            if (SQ_SPREFETCH > 0 && ((s * L->vbytes) & 63) == 0)
                _mm_prefetch((const char *)row + L->vals_off + (size_t)s * (size_t)L->vbytes + SQ_SPREFETCH, _MM_HINT_T0);
            nm16_slots(L, row, s, off, shifts, mmask, &c, &v);
            const float *xs = x + s / L->n * L->m;
            if (s & 16) {
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) a1[t] = _mm512_fmadd_ps(v, pick32(xs + t * cols, c), a1[t]);
            } else {
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) a0[t] = _mm512_fmadd_ps(v, pick32(xs + t * cols, c), a0[t]);
            }
        }
        for (; s < L->n_vals; s++) {
            const int64_t col = s / L->n * L->m + (sq_snm_idx(L, row, s) & (L->m - 1));
            const float w = sq_sval(L, row, s);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) tail[t] += x[t * cols + col] * w;
        }
    } else {
        int64_t v = 0, b = 0; /* b: mask byte, two per step */
        const uint8_t *vals = row + L->vals_off;
        for (; 8 * b + 16 <= cols; b += 2) {
            const unsigned mw = (unsigned)row[b] | ((unsigned)row[b + 1] << 8);
            if (!mw) continue;
            const int pc = __builtin_popcount(mw);
            if (v + pc > L->n_vals) break;
            if (SQ_SPREFETCH > 0 && (b & 3) == 0) /* every 32 columns: <= 64 value bytes */
                _mm_prefetch((const char *)vals + (size_t)v * (size_t)L->vbytes + SQ_SPREFETCH, _MM_HINT_T0);
            __m512 vv = loadn(vals + (size_t)v * (size_t)L->vbytes, L->vbytes, (__mmask16)((1u << pc) - 1u));
            __m512 ve = _mm512_maskz_expand_ps((__mmask16)mw, vv);
            if (b & 2) {
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) a1[t] = _mm512_fmadd_ps(ve, _mm512_loadu_ps(x + t * cols + 8 * b), a1[t]);
            } else {
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) a0[t] = _mm512_fmadd_ps(ve, _mm512_loadu_ps(x + t * cols + 8 * b), a0[t]);
            }
            v += pc;
        }
        for (; b < L->meta_bytes && v < L->n_vals; b++) {
            unsigned mb = row[b];
            if (8 * b + 8 > cols) mb &= (1u << (cols - 8 * b)) - 1u;
            while (mb && v < L->n_vals) {
                const int j = __builtin_ctz(mb);
                mb &= mb - 1;
                const float w = sq_sval(L, row, v++);
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) tail[t] += x[t * cols + 8 * b + j] * w;
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t])) + tail[t];
}

SQ_INLINE void smatmul(sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                       int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    const sq_slayout L = sq_slayout_of(type, q, cols);
    const __m512i shifts = L.ibits == 2 ? _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14)
                                        : _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    __m512i off = _mm512_setzero_si512(), mmask = _mm512_set1_epi32(L.m ? L.m - 1 : 0);
    if (L.m) {
        int32_t o[16];
        for (int j = 0; j < 16; j++) o[j] = j / L.n * L.m;
        off = _mm512_loadu_si512(o);
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        float out[TB];
        int64_t t = 0;
        for (; t + TB <= T; t += TB) { /* prompts and evaluation: TB tokens per pass over the row */
            srow_dots(&L, row, x + t * cols, cols, TB, off, shifts, mmask, out);
            for (int k = 0; k < TB; k++) y[(t + k) * ldy + r] = out[k];
        }
        for (; t < T; t++) { /* decoding (T = 1) and the last tokens */
            srow_dots(&L, row, x + t * cols, cols, 1, off, shifts, mmask, out);
            y[t * ldy + r] = out[0];
        }
    }
}

#define SK(NAME, TYPE)                                                                                             \
    static void NAME(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,      \
                     int64_t r1, int64_t cols, sq_qparams q) {                                                    \
        smatmul(TYPE, y, ldy, x, w, rb, T, r0, r1, cols, q);                                                       \
    }
SK(s24_f16, SQ_TYPE_S24_F16)
SK(s24_f32, SQ_TYPE_S24_F32)
SK(s48_f16, SQ_TYPE_S48_F16)
SK(s48_f32, SQ_TYPE_S48_F32)
SK(smask_f16, SQ_TYPE_SMASK_F16)
SK(smask_f32, SQ_TYPE_SMASK_F32)

static const sq_qmatmul_fn sparse_table[SQ_TYPE_COUNT] = {
    [SQ_TYPE_S24_F16] = s24_f16,     [SQ_TYPE_S24_F32] = s24_f32,     [SQ_TYPE_S48_F16] = s48_f16,
    [SQ_TYPE_S48_F32] = s48_f32,     [SQ_TYPE_SMASK_F16] = smask_f16, [SQ_TYPE_SMASK_F32] = smask_f32,
};

const sq_qmatmul_fn *sq_kernels_avx512_sparse(void) { return sparse_table; }

#else

const sq_qmatmul_fn *sq_kernels_avx512_sparse(void) { return NULL; }

#endif
