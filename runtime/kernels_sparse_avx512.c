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
 * rows: 64 columns per step from one 64-bit mask load, the value offsets of its four 16-bit
 * words computed at once (SWAR popcounts and prefix sums by a multiply), so the words do
 * not wait on each other; each word's 16 values are loaded from its offset and spread to
 * their lanes with vexpandps, then one FMA with x. Near the row's last values a 16-column
 * loop with masked loads (nothing past the K values is touched), then the scalar reference
 * loop. With a few tokens a row's indices, mask words and values are decoded once
 * for 4 tokens at a time; two (N:M) or four (bitmask) 16-lane accumulators per token summed in a fixed order, so
 * results depend only on (cols, row), never on T (below the threshold), the row range or the
 * thread count. From T = SQ_SGEMM_MIN_T_AVX512 tokens (prompts, evaluation) a packed GEMM:
 * 32-row x KC-column tiles are expanded to dense f32 (the same vexpandps, on the occupancy
 * of each 32 columns for N:M) and reused by every token through gemm_avx512.h's
 * micro-kernel; each output is one FMA chain over the columns in order.
 */
#include "kernels_internal.h"
#include "sparse_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__FMA__) && defined(__F16C__)

#include "gemm_avx512.h"

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
#define STB 4 /* tokens per streaming pass */
SQ_INLINE void srow_dots(const sq_slayout *L, const int nm, const int vb, const uint8_t *row, const float *x, int64_t cols, const int nt,
                         __m512i off, __m512i shifts, __m512i mmask, float *out) {
    __m512 a0[STB], a1[STB], a2[STB], a3[STB];
    float tail[STB];
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        a0[t] = _mm512_setzero_ps();
        a1[t] = _mm512_setzero_ps();
        a2[t] = _mm512_setzero_ps();
        a3[t] = _mm512_setzero_ps();
        tail[t] = 0.0f;
    }
    if (nm) { /* nm and vb are constants after inlining: each type's function holds one loop */
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
        int64_t v = 0, b = 0; /* b: mask byte */
        const uint8_t *vals = row + L->vals_off;
        /* 64 columns per step: one 64-bit mask load, the value offsets of its four 16-bit
         * words at once (SWAR popcounts, prefix sums by a multiply), so the four words are
         * independent; word i into a_i. Full 16-value loads while 16 values past the
         * step's last one are readable, then the loop below. */
        for (; 8 * b + 64 <= cols; b += 8) {
            uint64_t m;
            memcpy(&m, row + b, 8);
            if (!m) continue;
            const int64_t tot = __builtin_popcountll(m);
            if (v + tot + 16 > L->n_vals) break;
            uint64_t c = m - ((m >> 1) & 0x5555555555555555ull);
            c = (c & 0x3333333333333333ull) + ((c >> 2) & 0x3333333333333333ull);
            c = (c + (c >> 4)) & 0x0f0f0f0f0f0f0f0full; /* byte popcounts */
            const uint8_t *vp = vals + (size_t)v * (size_t)vb;
            const float *xp = x + 8 * b;
            if (SQ_SPREFETCH > 0) _mm_prefetch((const char *)vp + SQ_SPREFETCH, _MM_HINT_T0);
            c = (c + (c >> 8)) & 0x00ff00ff00ff00ffull;            /* 16-bit word popcounts */
            const uint64_t ex = (c * 0x0001000100010001ull) << 16; /* word i: values of words 0 .. i-1 */
            const __m512 e0 = _mm512_maskz_expand_ps((__mmask16)m, loadn(vp, vb, 0xFFFF));
            const __m512 e1 = _mm512_maskz_expand_ps((__mmask16)(m >> 16), loadn(vp + (size_t)((ex >> 16) & 0xFFFF) * (size_t)vb, vb, 0xFFFF));
            const __m512 e2 = _mm512_maskz_expand_ps((__mmask16)(m >> 32), loadn(vp + (size_t)((ex >> 32) & 0xFFFF) * (size_t)vb, vb, 0xFFFF));
            const __m512 e3 = _mm512_maskz_expand_ps((__mmask16)(m >> 48), loadn(vp + (size_t)(ex >> 48) * (size_t)vb, vb, 0xFFFF));
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                a0[t] = _mm512_fmadd_ps(e0, _mm512_loadu_ps(xp + t * cols), a0[t]);
                a1[t] = _mm512_fmadd_ps(e1, _mm512_loadu_ps(xp + t * cols + 16), a1[t]);
                a2[t] = _mm512_fmadd_ps(e2, _mm512_loadu_ps(xp + t * cols + 32), a2[t]);
                a3[t] = _mm512_fmadd_ps(e3, _mm512_loadu_ps(xp + t * cols + 48), a3[t]);
            }
            v += tot;
        }
        for (; 8 * b + 16 <= cols; b += 2) {
            const unsigned mw = (unsigned)row[b] | ((unsigned)row[b + 1] << 8);
            if (!mw) continue;
            const int pc = __builtin_popcount(mw);
            if (v + pc > L->n_vals) break;
            if (SQ_SPREFETCH > 0 && (b & 3) == 0) /* every 32 columns: <= 64 value bytes */
                _mm_prefetch((const char *)vals + (size_t)v * (size_t)vb + SQ_SPREFETCH, _MM_HINT_T0);
            __m512 vv = loadn(vals + (size_t)v * (size_t)vb, vb, (__mmask16)((1u << pc) - 1u));
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
    for (int t = 0; t < nt; t++)
        out[t] = nm ? _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t])) + tail[t]
                      : _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0[t], a1[t]), _mm512_add_ps(a2[t], a3[t]))) + tail[t];
}

/* ===== T >= SGEMM_MIN_T: packed GEMM =====
 * Tiles of 32 rows x KC columns are expanded to dense f32 (zeros where nothing is stored)
 * and transposed into the per-thread scratch once, then every token reuses them through the
 * micro-kernel of gemm_avx512.h, like the quantized types' GEMM (kernels_quant_avx512.c).
 * Each output is then one FMA chain over all columns in ascending order; the zeros add
 * nothing (fma(0, x, acc) == acc for finite x), so it equals the FMA chain over the stored
 * weights alone, whatever T, the row range or the thread count. */

/* Measured with `bench_kernels -m 4096x2048 -y s24_f16,s48_f16,smask_f16 -T 8,16,32 -t 1`
 * (docs/pruning-results.md): the T from which expanding tiles once beats streaming 4 tokens
 * per pass over the packed rows. */
#define SGEMM_MIN_T SQ_SGEMM_MIN_T_AVX512

typedef struct {
    const sq_slayout *L;
    int64_t cols;
    __m512i off, shifts, mmask, iota;
} sinfo;

/* The dense weights of columns [c, c + 32) of a row (c a multiple of 32), columns past cols
 * zero: lanes 0-15 in *lo, 16-31 in *hi. *v is the bitmask rows' value cursor (the number of
 * stored values before column c, at most K), advanced past the chunk. */
SQ_INLINE void expand32(int nm, int vb, const sinfo *si, const uint8_t *row, int64_t c, int64_t *v, __m512 *lo,
                        __m512 *hi) {
    const sq_slayout *L = si->L;
    const int64_t cols = si->cols;
    if (nm) {
        const int64_t s = c / L->m * L->n; /* the chunk's first slot; 16 slots cover its 32 columns */
        if (c + 32 <= cols) {
            __m512i cc;
            __m512 vv;
            nm16_slots(L, row, s, si->off, si->shifts, si->mmask, &cc, &vv);
            /* valid rows have strictly increasing columns, so the i-th set bit of the
             * occupancy takes the i-th value (a hostile row gets wrong values, in registers) */
            const uint32_t occ = (uint32_t)_mm512_reduce_or_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), cc));
            const __mmask16 m0 = (__mmask16)occ, m1 = (__mmask16)(occ >> 16);
            *lo = _mm512_maskz_expand_ps(m0, vv);
            vv = _mm512_permutexvar_ps(_mm512_add_epi32(si->iota, _mm512_set1_epi32(__builtin_popcount(m0))), vv);
            *hi = _mm512_maskz_expand_ps(m1, vv);
        } else { /* the ragged last chunk */
            _Alignas(64) float t[32] = {0};
            for (int64_t k = s; k < L->n_vals; k++) {
                const int64_t col = k / L->n * L->m + (sq_snm_idx(L, row, k) & (L->m - 1)) - c;
                if (col >= 0 && col < 32) t[col] = sq_sval(L, row, k);
            }
            *lo = _mm512_load_ps(t);
            *hi = _mm512_load_ps(t + 16);
        }
        return;
    }
    const uint8_t *vals = row + L->vals_off;
    for (int h = 0; h < 2; h++) {
        const int64_t c16 = c + 16 * h;
        unsigned mw = 0;
        if (c16 + 16 <= cols) {
            mw = (unsigned)row[c16 / 8] | ((unsigned)row[c16 / 8 + 1] << 8);
        } else if (c16 < cols) {
            mw = row[c16 / 8];
            if (c16 / 8 + 1 < L->meta_bytes) mw |= (unsigned)row[c16 / 8 + 1] << 8;
            mw &= (1u << (cols - c16)) - 1u;
        }
        int pc = __builtin_popcount(mw);
        if (*v + pc > L->n_vals) { /* past the capacity K: only the first K - v set bits have values */
            pc = (int)(L->n_vals - *v);
            while (__builtin_popcount(mw) > pc) mw &= ~(1u << (31 - __builtin_clz(mw)));
        }
        const __m512 e = _mm512_maskz_expand_ps((__mmask16)mw, loadn(vals + (size_t)*v * (size_t)vb, vb,
                                                                        (__mmask16)((1u << pc) - 1u)));
        if (h) *hi = e;
        else *lo = e;
        *v += pc;
    }
}

/* wp[k*NR + j] = dense W[r + j][k0 + k] for j < nrows (<= NR), k < kc; 0 for j >= nrows.
 * k0 is a multiple of 64 (KC or KC_STACK), so chunks of 32 columns start on 16 slots. */
SQ_INLINE void pack_tile_s(int nm, int vb, float *wp, const uint8_t *w, size_t rb, int64_t r, int nrows, int64_t k0,
                           int kc, const sinfo *si) {
    _Alignas(64) float hi[16 * 16];
    for (int half = 0; half < NR / 16; half++) {
        int nh = nrows - half * 16;
        nh = nh < 0 ? 0 : nh > 16 ? 16 : nh;
        const uint8_t *base = w + (size_t)(r + half * 16) * rb;
        int64_t cur[16] = {0};
        if (!nm)
            for (int j = 0; j < nh; j++) cur[j] = sq_smask_prefix(si->L, base + (size_t)j * rb, k0);
        for (int kk = 0; kk < kc; kk += 32) {
            float *dst = wp + (size_t)kk * NR + half * 16;
            const int kn = kc - kk < 32 ? kc - kk : 32;
            __m512 v[16];
            for (int j = 0; j < 16; j++) {
                __m512 b;
                if (j < nh) {
                    expand32(nm, vb, si, base + (size_t)j * rb, k0 + kk, &cur[j], &v[j], &b);
                } else {
                    v[j] = b = _mm512_setzero_ps();
                }
                _mm512_store_ps(hi + 16 * j, b);
            }
            transpose16(v);
            const int n0 = kn < 16 ? kn : 16;
            for (int k = 0; k < n0; k++) _mm512_store_ps(dst + k * NR, v[k]);
            if (kn > 16) {
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++) v[j] = _mm512_load_ps(hi + 16 * j);
                transpose16(v);
                for (int k = 0; k < kn - 16; k++) _mm512_store_ps(dst + (16 + k) * NR, v[k]);
            }
        }
    }
}

#define SPACK(NAME, NM, VB)                                                                                        \
    static void NAME(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) { \
        pack_tile_s(NM, VB, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const sinfo *)ctx);                     \
    }
SPACK(pack_nm_f16, 1, 2)
SPACK(pack_nm_f32, 1, 4)
SPACK(pack_mask_f16, 0, 2)
SPACK(pack_mask_f32, 0, 4)
_Static_assert(KC % 64 == 0 && KC_STACK % 64 == 0, "column blocks must start on a 32-column chunk and a mask word");

static void sgemm(const sq_slayout *L, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                  int64_t r0, int64_t r1, int64_t cols) {
    sinfo si;
    si.L = L;
    si.cols = cols;
    si.shifts = L->ibits == 2 ? _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14)
                              : _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    si.mmask = _mm512_set1_epi32(L->m ? L->m - 1 : 0);
    si.iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    si.off = _mm512_setzero_si512();
    if (L->m) {
        int32_t o[16];
        for (int j = 0; j < 16; j++) o[j] = j / L->n * L->m;
        si.off = _mm512_loadu_si512(o);
    }
    gemm_pack_fn pack = L->m ? (L->vbytes == 2 ? pack_nm_f16 : pack_nm_f32) : (L->vbytes == 2 ? pack_mask_f16 : pack_mask_f32);
    gemm(pack, &si, y, ldy, x, w, rb, T, r0, r1, cols);
}

SQ_INLINE void smatmul(sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                       int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    const sq_slayout L = sq_slayout_of(type, q, cols);
    if (T >= SGEMM_MIN_T && cols > 0) {
        /* a copy: if L's own address escaped to sgemm (not inlined), the streaming loop
         * below would reload its fields and divide by L.n (measured: AVX2 2:4 decode -30 %) */
        const sq_slayout Lg = L;
        sgemm(&Lg, y, ldy, x, w, row_bytes, T, r0, r1, cols);
        return;
    }
    const __m512i shifts = L.ibits == 2 ? _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14)
                                        : _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    __m512i off = _mm512_setzero_si512(), mmask = _mm512_set1_epi32(L.m ? L.m - 1 : 0);
    if (L.m) {
        int32_t o[16];
        for (int j = 0; j < 16; j++) o[j] = j / L.n * L.m;
        off = _mm512_loadu_si512(o);
    }
    const int vb = type == SQ_TYPE_S24_F16 || type == SQ_TYPE_S48_F16 || type == SQ_TYPE_SMASK_F16 ? 2 : 4;
    const int nm = type != SQ_TYPE_SMASK_F16 && type != SQ_TYPE_SMASK_F32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        float out[STB];
        int64_t t = 0;
        for (; t + STB <= T; t += STB) { /* a few tokens: STB tokens per pass over the row */
            srow_dots(&L, nm, vb, row, x + t * cols, cols, STB, off, shifts, mmask, out);
            for (int k = 0; k < STB; k++) y[(t + k) * ldy + r] = out[k];
        }
        for (; t < T; t++) { /* decoding (T = 1) and the last tokens */
            srow_dots(&L, nm, vb, row, x + t * cols, cols, 1, off, shifts, mmask, out);
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
