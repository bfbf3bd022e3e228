/* kernels_sparse_avx512.c - AVX-512 (F, BW, VL) matmuls for sparse weights (docs/sparse-
 * format.md; the reference is kernels_sparse_ref.c). Compiled with the flags of
 * kernels_avx512.c; NULL table without them.
 *
 * N:M rows (2:4, 4:8): 16 stored slots at a time, their columns (s / N) * M + idx rebuilt
 * from the 2- or 4-bit indices, x gathered there and multiplied by the 16 values: N/M of a
 * dense row's multiply-adds and weight bytes (+ 1/8 byte of index per value). Bitmask
 * rows: per 16-weight mask word, exactly popcount values are loaded (masked load, so
 * nothing past them is touched) and spread to their lanes with vexpandps, then one FMA
 * with x; all-zero words are skipped. Tails and the last values of a row run the scalar
 * reference loop. Two 16-lane accumulators summed in a fixed order: results depend only
 * on (cols, row), never on the row range or thread count.
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

/* 16 slots from slot s (a multiple of 16). */
SQ_INLINE __m512 nm16(const sq_slayout *L, const uint8_t *row, const float *xt, int64_t s, __m512i off, __m512i shifts,
                      __m512i mmask, __m512 acc) {
    uint32_t nib[2] = {0, 0}; /* 16 slots' indices: 2 x 16 bits (2:4) or 2 x 32 (4:8) */
    if (L->ibits == 2) {
        uint16_t h[2];
        memcpy(h, row + (s >> 2), 4);
        nib[0] = h[0], nib[1] = h[1];
    } else {
        memcpy(nib, row + (s >> 1), 8);
    }
    __m512i nv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)nib[0])), _mm256_set1_epi32((int)nib[1]), 1);
    __m512i idx = _mm512_and_si512(_mm512_srlv_epi32(nv, shifts), mmask);
    __m512 xv = _mm512_i32gather_ps(_mm512_add_epi32(off, idx), xt + s / L->n * L->m, 4);
    __m512 v = loadn(row + L->vals_off + (size_t)s * (size_t)L->vbytes, L->vbytes, 0xFFFF);
    return _mm512_fmadd_ps(v, xv, acc);
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
        for (int64_t t = 0; t < T; t++) {
            const float *xt = x + t * cols;
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            float tail = 0.0f;
            if (L.m) {
                int64_t s = 0;
                for (; s + 32 <= L.n_vals; s += 32) {
                    a0 = nm16(&L, row, xt, s, off, shifts, mmask, a0);
                    a1 = nm16(&L, row, xt, s + 16, off, shifts, mmask, a1);
                }
                if (s + 16 <= L.n_vals) {
                    a0 = nm16(&L, row, xt, s, off, shifts, mmask, a0);
                    s += 16;
                }
                for (; s < L.n_vals; s++) tail += xt[s / L.n * L.m + (sq_snm_idx(&L, row, s) & (L.m - 1))] * sq_sval(&L, row, s);
            } else {
                int64_t v = 0, b = 0; /* b: mask byte, two per step */
                const uint8_t *vals = row + L.vals_off;
                for (; 8 * b + 16 <= cols; b += 2) {
                    const unsigned mw = (unsigned)row[b] | ((unsigned)row[b + 1] << 8);
                    if (!mw) continue;
                    const int pc = __builtin_popcount(mw);
                    if (v + pc > L.n_vals) break;
                    __m512 vv = loadn(vals + (size_t)v * (size_t)L.vbytes, L.vbytes, (__mmask16)((1u << pc) - 1u));
                    __m512 ve = _mm512_maskz_expand_ps((__mmask16)mw, vv);
                    if (b & 2) a1 = _mm512_fmadd_ps(ve, _mm512_loadu_ps(xt + 8 * b), a1);
                    else a0 = _mm512_fmadd_ps(ve, _mm512_loadu_ps(xt + 8 * b), a0);
                    v += pc;
                }
                for (; b < L.meta_bytes && v < L.n_vals; b++) {
                    unsigned mb = row[b];
                    if (8 * b + 8 > cols) mb &= (1u << (cols - 8 * b)) - 1u;
                    while (mb && v < L.n_vals) {
                        const int j = __builtin_ctz(mb);
                        mb &= mb - 1;
                        tail += xt[8 * b + j] * sq_sval(&L, row, v++);
                    }
                }
            }
            y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + tail;
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
