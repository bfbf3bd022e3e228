/* kernels_avx512.c - AVX-512 (F/BW/VL/DQ + F16C/FMA) kernels: matmul for f32, f16 and
 * bf16 weights with f32 activations, dot, axpy and bulk half conversions.
 *
 * Matmul has three loops, chosen by T alone (so any row split gives the same bits):
 *   T == 1       decode GEMV, memory-bound: 4 weight rows streamed at once (prefetched),
 *                widened to f32 in registers, two 16-lane accumulators per row;
 *   T < 16       a few tokens: the same row streaming, each widened weight vector reused
 *                by up to 6 tokens held in registers (4 rows x 6 tokens = 24 accumulators);
 *   T >= 16      prefill/eval GEMM, compute-bound: 32-row x 256-column weight tiles are
 *                widened and transposed once into an L1-resident tile, x is packed per
 *                256-column block (both in a per-thread scratch), and a 12-token x 32-row
 *                micro-kernel of broadcast FMAs (24 zmm accumulators) runs over them.
 * Summation order per y element: the row loops sum 16-column chunks into 16-lane
 * accumulators (fixed chunk-to-accumulator map, ragged tail by masked loads) and add the
 * lanes in a fixed tree (distance 8, 4, 2, 1); the GEMM is one FMA chain over the columns
 * in ascending order, whatever the blocking. Compiled with -mavx512{f,bw,vl,dq} -mfma -mf16c.
 */
#include "kernels_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

enum { WT_F32 = 0, WT_F16 = 1, WT_BF16 = 2 };

/* Tuning constants (bench/bench_kernels). */
#ifndef GEMM_MIN_T
#define GEMM_MIN_T 16 /* T at which the packed GEMM beats the few-token loop */
#endif
#define NR 32        /* weight rows per packed tile: two zmm of outputs */
#define MT 12        /* tokens per micro-kernel: 24 accumulators of 32 registers */
#define KC 256       /* columns per packed tile: 32 x 256 floats = 32 KiB, fits L1 */
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 512 /* bytes ahead in each weight row the GEMV prefetches */
#endif
#ifndef FEW_NT
#define FEW_NT 6     /* max tokens per block in the few-token loop: 24 accumulators */
#endif
#define TB 264       /* tokens per packed x block (22 groups of MT): 264 x 256 floats = 264 KiB, in L2 */

/* ===== Loads that widen weights to f32 ===== */

SQ_INLINE __m512 widen16(int wt, __m256i h) {
    if (wt == WT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* 16 weights of a row starting at column c, as f32. */
SQ_INLINE __m512 load_w(int wt, const void *row, int64_t c) {
    if (wt == WT_F32) return _mm512_loadu_ps((const float *)row + c);
    return widen16(wt, _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
}

/* The lanes of m only; the others are 0 and their memory is not touched. */
SQ_INLINE __m512 load_w_mask(int wt, const void *row, int64_t c, __mmask16 m) {
    if (wt == WT_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    return widen16(wt, _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c));
}

SQ_INLINE __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1u); }

/* Sum of 16 lanes in a fixed tree: halves at distance 8, then 4, 2, 1. */
SQ_INLINE float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
    return _mm_cvtss_f32(d);
}

/* hsum16 of four vectors at once, as [hsum16(a), hsum16(b), hsum16(c), hsum16(d)]: the same
 * additions in the same tree (float addition is commutative), in fewer shuffles. */
SQ_INLINE __m128 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d) {
    /* distance 8: [a.lo8 + a.hi8 | b.lo8 + b.hi8], same for c, d */
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    /* distance 4: 128-bit lanes [a, b, c, d] */
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
    /* distance 2, then 1, within each 128-bit lane: lane 0 holds the sum */
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xB1));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), s));
}

/* ===== T == 1: GEMV ===== */

/* y[i] = W[row i] . x for nr (1..4) rows starting at w0. Per row: chunks at c % 32 == 0
 * go to a0, c % 32 == 16 to a1, a last whole chunk to a0, the ragged tail to a1; then
 * hsum16(a0 + a1). The same for every nr. */
SQ_INLINE void gemv_rows(int wt, int nr, float *y, const float *x, const char *w0, size_t rb, int64_t cols) {
    __m512 a0[4], a1[4];
    const char *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) {
        a0[i] = _mm512_setzero_ps();
        a1[i] = _mm512_setzero_ps();
        wr[i] = w0 + (size_t)i * rb;
    }
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            _mm_prefetch((const char *)wr[i] + c * (wt == WT_F32 ? 4 : 2) + GEMV_PREFETCH, _MM_HINT_T0);
            a0[i] = _mm512_fmadd_ps(load_w(wt, wr[i], c), x0, a0[i]);
            a1[i] = _mm512_fmadd_ps(load_w(wt, wr[i], c + 16), x1, a1[i]);
        }
    }
    if (c + 16 <= cols) {
        __m512 x0 = _mm512_loadu_ps(x + c);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) a0[i] = _mm512_fmadd_ps(load_w(wt, wr[i], c), x0, a0[i]);
        c += 16;
    }
    if (c < cols) {
        __mmask16 m = tail_mask(cols - c);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + c);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) a1[i] = _mm512_fmadd_ps(load_w_mask(wt, wr[i], c, m), x0, a1[i]);
    }
    if (nr == 4) {
        _mm_storeu_ps(y, hsum16x4(_mm512_add_ps(a0[0], a1[0]), _mm512_add_ps(a0[1], a1[1]), _mm512_add_ps(a0[2], a1[2]),
                                  _mm512_add_ps(a0[3], a1[3])));
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) y[i] = hsum16(_mm512_add_ps(a0[i], a1[i]));
    }
}

SQ_INLINE void gemv(int wt, float *y, const float *x, const void *w, size_t rb, int64_t r0, int64_t r1, int64_t cols) {
    const char *wb = (const char *)w;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) gemv_rows(wt, 4, y + r, x, wb + (size_t)r * rb, rb, cols);
    for (; r < r1; r++) gemv_rows(wt, 1, y + r, x, wb + (size_t)r * rb, rb, cols);
}

/* ===== 2 <= T < GEMM_MIN_T: few tokens ===== */

/* nr (1..4) rows x nt (1..FEW_NT) tokens. Per element: one accumulator over the 16-column
 * chunks in order, the ragged tail last, then hsum16. The same for every nr, nt. */
SQ_INLINE void few_block(int wt, int nr, int nt, float *y, int64_t ldy, const float *x, int64_t cols,
                         const char *w0, size_t rb) {
    __m512 acc[4][FEW_NT];
    const char *wr[4];
#pragma GCC unroll 8
    for (int i = 0; i < nr; i++) {
        wr[i] = w0 + (size_t)i * rb;
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) acc[i][t] = _mm512_setzero_ps();
    }
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m512 xv[FEW_NT];
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) xv[t] = _mm512_loadu_ps(x + t * cols + c);
#pragma GCC unroll 8
        for (int i = 0; i < nr; i++) {
            __m512 wv = load_w(wt, wr[i], c);
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) acc[i][t] = _mm512_fmadd_ps(wv, xv[t], acc[i][t]);
        }
    }
    if (c < cols) {
        __mmask16 m = tail_mask(cols - c);
        __m512 xv[FEW_NT];
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) xv[t] = _mm512_maskz_loadu_ps(m, x + t * cols + c);
#pragma GCC unroll 8
        for (int i = 0; i < nr; i++) {
            __m512 wv = load_w_mask(wt, wr[i], c, m);
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) acc[i][t] = _mm512_fmadd_ps(wv, xv[t], acc[i][t]);
        }
    }
    if (nr == 4) {
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) _mm_storeu_ps(y + t * ldy, hsum16x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
    } else {
#pragma GCC unroll 8
        for (int i = 0; i < nr; i++)
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) y[t * ldy + i] = hsum16(acc[i][t]);
    }
}

#define FEW_CASES(WT, NR_)                                                                       \
    switch (nt) {                                                                                \
    case 1: few_block(WT, NR_, 1, y, ldy, x, cols, w0, rb); break;                               \
    case 2: few_block(WT, NR_, 2 < FEW_NT ? 2 : FEW_NT, y, ldy, x, cols, w0, rb); break;         \
    case 3: few_block(WT, NR_, 3 < FEW_NT ? 3 : FEW_NT, y, ldy, x, cols, w0, rb); break;         \
    case 4: few_block(WT, NR_, 4 < FEW_NT ? 4 : FEW_NT, y, ldy, x, cols, w0, rb); break;         \
    case 5: few_block(WT, NR_, 5 < FEW_NT ? 5 : FEW_NT, y, ldy, x, cols, w0, rb); break;         \
    default: few_block(WT, NR_, FEW_NT, y, ldy, x, cols, w0, rb); break;                         \
    }

#define DEFINE_FEW(NAME, WT)                                                                     \
    static void NAME(int nr, int nt, float *y, int64_t ldy, const float *x, int64_t cols,        \
                     const char *w0, size_t rb) {                                                \
        if (nr == 4) {                                                                           \
            FEW_CASES(WT, 4)                                                                     \
        } else {                                                                                 \
            FEW_CASES(WT, 1)                                                                     \
        }                                                                                        \
    }
DEFINE_FEW(few_f32, WT_F32)
DEFINE_FEW(few_f16, WT_F16)
DEFINE_FEW(few_bf16, WT_BF16)

SQ_INLINE void few(int wt, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                   int64_t r0, int64_t r1, int64_t cols) {
    const char *wb = (const char *)w;
    /* tokens in ceil(T / FEW_NT) groups of nearly equal size (7 = 4 + 3, not 4 + ... ) */
    const int64_t ng = (T + FEW_NT - 1) / FEW_NT;
    for (int64_t g = 0, t = 0; g < ng; g++) {
        int nt = (int)(T / ng + (g < T % ng));
        for (int64_t r = r0; r < r1;) {
            int nr = r + 4 <= r1 ? 4 : 1;
            float *yb = y + t * ldy + r;
            const float *xb = x + t * cols;
            const char *w0 = wb + (size_t)r * rb;
            if (wt == WT_F32) few_f32(nr, nt, yb, ldy, xb, cols, w0, rb);
            else if (wt == WT_F16) few_f16(nr, nt, yb, ldy, xb, cols, w0, rb);
            else few_bf16(nr, nt, yb, ldy, xb, cols, w0, rb);
            r += nr;
        }
        t += nt;
    }
}

/* ===== T >= GEMM_MIN_T: packed GEMM ===== */

/* In-register transpose of a 16x16 float block: r[i][j] -> r[j][i]. */
SQ_INLINE void transpose16(__m512 r[16]) {
    __m512 s[16], u[16];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
        s[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        s[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    /* u[4q+e], 128-bit lane L = column 4L+e of rows 4q..4q+3 */
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        __m512d a = _mm512_castps_pd(s[4 * q]), b = _mm512_castps_pd(s[4 * q + 1]);
        __m512d c = _mm512_castps_pd(s[4 * q + 2]), d = _mm512_castps_pd(s[4 * q + 3]);
        u[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* 4x4 transpose of 128-bit lanes among u[e], u[4+e], u[8+e], u[12+e] */
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x44);
        __m512 v1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x44);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xEE);
        r[e] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + e] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + e] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

/* wp[k*NR + j] = W[r + j][k0 + k] for j < nrows (<= NR), k < kc (<= KC); 0 for j >= nrows. */
SQ_INLINE void pack_tile(int wt, float *wp, const char *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc) {
    for (int half = 0; half < NR / 16; half++) {
        int nh = nrows - half * 16;
        nh = nh < 0 ? 0 : nh > 16 ? 16 : nh;
        const char *base = w + (size_t)(r + half * 16) * rb;
        for (int kk = 0; kk < kc; kk += 16) {
            int kn = kc - kk < 16 ? kc - kk : 16;
            float *dst = wp + (size_t)kk * NR + half * 16;
            if (nh == 0) {
                for (int k = 0; k < kn; k++) _mm512_store_ps(dst + k * NR, _mm512_setzero_ps());
                continue;
            }
            __m512 v[16];
            if (nh == 16 && kn == 16) {
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++) v[j] = load_w(wt, base + (size_t)j * rb, k0 + kk);
                transpose16(v);
#pragma GCC unroll 16
                for (int k = 0; k < 16; k++) _mm512_store_ps(dst + k * NR, v[k]);
            } else {
                __mmask16 m = tail_mask(kn);
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++)
                    v[j] = j < nh ? load_w_mask(wt, base + (size_t)j * rb, k0 + kk, m) : _mm512_setzero_ps();
                transpose16(v);
                for (int k = 0; k < kn; k++) _mm512_store_ps(dst + k * NR, v[k]);
            }
        }
    }
}

static void pack_f32(float *wp, const char *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc) {
    pack_tile(WT_F32, wp, w, rb, r, nrows, k0, kc);
}
static void pack_f16(float *wp, const char *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc) {
    pack_tile(WT_F16, wp, w, rb, r, nrows, k0, kc);
}
static void pack_bf16(float *wp, const char *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc) {
    pack_tile(WT_BF16, wp, w, rb, r, nrows, k0, kc);
}

/* Packs tokens [0, nt) (nt <= TB) x columns [0, kc) of x (row stride ldx) for the
 * micro-kernel: group g of MT tokens becomes xp[g*kc*MT + k*MT + i] = x[(g*MT + i)*ldx + k].
 * Contiguous broadcasts instead of MT strided rows, which for power-of-two widths all
 * fall in one L1 set. Slots of a partial last group are zero. */
static void pack_x(float *xp, const float *x, int64_t ldx, int nt, int kc) {
    for (int g = 0; g < nt; g += MT) {
        int mt = nt - g < MT ? nt - g : MT;
        float *dst = xp + (size_t)g * kc;
        for (int kk = 0; kk < kc; kk += 16) {
            int kn = kc - kk < 16 ? kc - kk : 16;
            __mmask16 m = kn == 16 ? 0xFFFF : tail_mask(kn);
            __m512 v[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = i < mt ? _mm512_maskz_loadu_ps(m, x + (int64_t)(g + i) * ldx + kk) : _mm512_setzero_ps();
            transpose16(v);
            for (int k = 0; k < kn; k++) _mm512_mask_storeu_ps(dst + (size_t)(kk + k) * MT, (1u << MT) - 1u, v[k]);
        }
    }
}

/* y[t*ldy + j] (+)= sum_k xp[k*MT + t] * wp[k*NR + j] for t < mt, j in masks m0|m1, as one
 * FMA chain per element; `first` starts the chain from 0 instead of y. */
SQ_INLINE void micro(int mt, const float *wp, const float *xp, int kc, float *y, int64_t ldy, int first, __mmask16 m0,
                     __mmask16 m1) {
    __m512 c0[MT], c1[MT];
#pragma GCC unroll 12
    for (int t = 0; t < mt; t++) {
        if (first) {
            c0[t] = _mm512_setzero_ps();
            c1[t] = _mm512_setzero_ps();
        } else {
            c0[t] = _mm512_maskz_loadu_ps(m0, y + t * ldy);
            c1[t] = _mm512_maskz_loadu_ps(m1, y + t * ldy + 16);
        }
    }
    for (int k = 0; k < kc; k++) {
        __m512 w0 = _mm512_load_ps(wp + k * NR), w1 = _mm512_load_ps(wp + k * NR + 16);
#pragma GCC unroll 12
        for (int t = 0; t < mt; t++) {
            __m512 xb = _mm512_set1_ps(xp[k * MT + t]);
            c0[t] = _mm512_fmadd_ps(w0, xb, c0[t]);
            c1[t] = _mm512_fmadd_ps(w1, xb, c1[t]);
        }
    }
#pragma GCC unroll 12
    for (int t = 0; t < mt; t++) {
        _mm512_mask_storeu_ps(y + t * ldy, m0, c0[t]);
        _mm512_mask_storeu_ps(y + t * ldy + 16, m1, c1[t]);
    }
}

static void micro_any(int mt, const float *wp, const float *xp, int kc, float *y, int64_t ldy, int first, __mmask16 m0,
                      __mmask16 m1) {
    switch (mt) {
#define MICRO_CASE(N) \
    case N: micro(N, wp, xp, kc, y, ldy, first, m0, m1); break;
        MICRO_CASE(1) MICRO_CASE(2) MICRO_CASE(3) MICRO_CASE(4) MICRO_CASE(5) MICRO_CASE(6)
        MICRO_CASE(7) MICRO_CASE(8) MICRO_CASE(9) MICRO_CASE(10) MICRO_CASE(11)
    default: micro(MT, wp, xp, kc, y, ldy, first, m0, m1); break;
#undef MICRO_CASE
    }
}

typedef void (*pack_fn)(float *wp, const char *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc);

/* Loop nest: column blocks of KC (the x block of up to tb tokens is packed once per block
 * and stays in L2) > row tiles of NR (packed once, stay in L1) > token groups of MT.
 * buf holds NR*KC + tb*KC floats; tb is a multiple of MT. */
static void gemm_buf(pack_fn pack, float *buf, int64_t tb, float *y, int64_t ldy, const float *x, const void *w,
                     size_t rb, int64_t T, int64_t r0, int64_t r1, int64_t cols) {
    float *wp = buf, *xp = buf + NR * KC;
    for (int64_t k0 = 0; k0 < cols; k0 += KC) {
        int kc = (int)(cols - k0 < KC ? cols - k0 : KC);
        for (int64_t t0 = 0; t0 < T; t0 += tb) {
            int nt = (int)(T - t0 < tb ? T - t0 : tb);
            pack_x(xp, x + t0 * cols + k0, cols, nt, kc);
            for (int64_t r = r0; r < r1; r += NR) {
                int nrows = (int)(r1 - r < NR ? r1 - r : NR);
                pack(wp, (const char *)w, rb, r, nrows, k0, kc);
                __mmask16 m0 = nrows >= 16 ? 0xFFFF : tail_mask(nrows);
                __mmask16 m1 = nrows >= 32 ? 0xFFFF : nrows > 16 ? tail_mask(nrows - 16) : 0;
                for (int g = 0; g < nt; g += MT) {
                    int mt = nt - g < MT ? nt - g : MT;
                    micro_any(mt, wp, xp + (size_t)g * kc, kc, y + (t0 + g) * ldy + r, ldy, k0 == 0, m0, m1);
                }
            }
        }
    }
}

/* Out of memory for the scratch: the same computation with one token group at a time
 * in a stack buffer (slower, same bits). */
static void gemm_stack(pack_fn pack, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                       int64_t r0, int64_t r1, int64_t cols) {
    _Alignas(64) float buf[NR * KC + MT * KC];
    gemm_buf(pack, buf, MT, y, ldy, x, w, rb, T, r0, r1, cols);
}

static void gemm(pack_fn pack, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                 int64_t r1, int64_t cols) {
    int64_t tb = T < TB ? (T + MT - 1) / MT * MT : TB;
    float *buf = sq_kernels_scratch((size_t)(NR * KC + tb * KC));
    if (buf) gemm_buf(pack, buf, tb, y, ldy, x, w, rb, T, r0, r1, cols);
    else gemm_stack(pack, y, ldy, x, w, rb, T, r0, r1, cols);
}

/* ===== Matmul entry points ===== */

SQ_INLINE void matmul(int wt, pack_fn pack, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                      int64_t r0, int64_t r1, int64_t cols) {
    if (T <= 0 || r1 <= r0) return;
    if (cols <= 0) {
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = r0; r < r1; r++) y[t * ldy + r] = 0.0f;
        return;
    }
    if (T == 1) gemv(wt, y, x, w, rb, r0, r1, cols);
    else if (T < GEMM_MIN_T) few(wt, y, ldy, x, w, rb, T, r0, r1, cols);
    else gemm(pack, y, ldy, x, w, rb, T, r0, r1, cols);
}

static void matmul_f32(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                       int64_t r1, int64_t cols) {
    matmul(WT_F32, pack_f32, y, ldy, x, w, rb, T, r0, r1, cols);
}
static void matmul_f16(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                       int64_t r1, int64_t cols) {
    matmul(WT_F16, pack_f16, y, ldy, x, w, rb, T, r0, r1, cols);
}
static void matmul_bf16(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols) {
    matmul(WT_BF16, pack_bf16, y, ldy, x, w, rb, T, r0, r1, cols);
}

/* ===== Vector helpers ===== */

static float dot_f32(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return hsum16(_mm512_add_ps(s0, s1));
}

static void axpy_f32(float *y, float a, const float *x, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

SQ_INLINE void widen(int wt, float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a = widen16(wt, _mm256_loadu_si256((const __m256i *)(src + i)));
        __m512 b = widen16(wt, _mm256_loadu_si256((const __m256i *)(src + i + 16)));
        _mm512_storeu_ps(dst + i, a);
        _mm512_storeu_ps(dst + i + 16, b);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, widen16(wt, _mm256_maskz_loadu_epi16(m, src + i)));
    }
}

static void f16_to_f32(float *dst, const uint16_t *src, int64_t n) { widen(WT_F16, dst, src, n); }
static void bf16_to_f32(float *dst, const uint16_t *src, int64_t n) { widen(WT_BF16, dst, src, n); }

static const sq_kernels table = {
    .name = "avx512",
    .matmul = {[SQ_TYPE_F32] = matmul_f32, [SQ_TYPE_F16] = matmul_f16, [SQ_TYPE_BF16] = matmul_bf16},
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .f16_to_f32 = f16_to_f32,
    .bf16_to_f32 = bf16_to_f32,
};

const sq_kernels *sq_kernels_avx512_table(void) { return &table; }

#else

const sq_kernels *sq_kernels_avx512_table(void) { return NULL; }

#endif
