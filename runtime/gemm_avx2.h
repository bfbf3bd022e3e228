/* gemm_avx2.h - the AVX2 building blocks shared by kernels_avx2.c (float weights) and
 * kernels_quant_avx2.c (group-quantized weights): lane masks, fixed-tree horizontal sums,
 * the 8x8 transpose, and the packed GEMM frame (x packing, the 6-token x 16-row
 * broadcast-FMA micro-kernel and the blocking loop nest). Each includer supplies the weight
 * packing (widening or dequantizing a 16-row tile to f32) as a gemm_pack_fn. The summation
 * order per output is one FMA chain over the columns in ascending order, whatever the
 * blocking, so any row split or thread count gives the same bits. Include only from files
 * compiled with the AVX2 flags (runtime/sources.mk); everything here is static.
 */
#ifndef SQ_GEMM_AVX2_H
#define SQ_GEMM_AVX2_H

#include <immintrin.h>

#include "kernels_internal.h"

#define NR 16 /* weight rows per packed tile: two ymm of outputs */
#define MT 6  /* tokens per micro-kernel: 12 accumulators */
#ifndef KC
#define KC 256 /* columns per packed block (a multiple of 32): a 16 x 256 weight tile is 16 KiB */
#endif
#ifndef TB
#define TB 264 /* tokens per packed x block (44 groups of MT): 264 x 256 floats, in L2 */
#endif

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lane mask selecting the first n lanes (n clamped to 0..8). */
SQ_INLINE __m256i lane_mask(int64_t n) {
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - n));
}

/* Sum of 8 lanes in a fixed tree: distance 4, then 2, then 1. */
SQ_INLINE float hsum8(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
    return _mm_cvtss_f32(d);
}

/* hsum8 of four vectors at once, as [hsum8(a), hsum8(b), hsum8(c), hsum8(d)]: the same
 * additions in the same tree (float addition is commutative), in fewer shuffles. */
SQ_INLINE __m128 hsum8x4(__m256 a, __m256 b, __m256 c, __m256 d) {
    /* distance 4: [a.lo + a.hi | b.lo + b.hi], [c.. | d..] */
    __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(c, d, 0x20), _mm256_permute2f128_ps(c, d, 0x31));
    /* distance 2: [a0+a2, a1+a3, c0+c2, c1+c3 | b.., d..] */
    __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
    __m256 s = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)), _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
    /* distance 1: sums in lanes 0 (a), 2 (c), 4 (b), 6 (d) */
    s = _mm256_add_ps(s, _mm256_permute_ps(s, 0xB1));
    return _mm256_castps256_ps128(_mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 2, 6, 0, 0, 0, 0)));
}

/* In-register transpose of an 8x8 float block: r[i][j] -> r[j][i]. */
SQ_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) {
        t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    /* s[4h+e], 128-bit lane L = column 4L+e of rows 4h..4h+3 */
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) {
        r[e] = _mm256_permute2f128_ps(s[e], s[4 + e], 0x20);
        r[4 + e] = _mm256_permute2f128_ps(s[e], s[4 + e], 0x31);
    }
}

/* Packs tokens [0, nt) x columns [0, kc) of x (row stride ldx) for the micro-kernel:
 * group g of MT tokens becomes xp[g*kc*MT + k*MT + i] = x[(g*MT + i)*ldx + k], so the
 * broadcasts are contiguous instead of MT strided rows that may share a cache set. */
static void pack_x(float *xp, const float *x, int64_t ldx, int nt, int kc) {
    const __m256i store_mask = lane_mask(MT);
    for (int g = 0; g < nt; g += MT) {
        int mt = nt - g < MT ? nt - g : MT;
        float *dst = xp + (size_t)g * (size_t)kc;
        for (int kk = 0; kk < kc; kk += 8) {
            int kn = kc - kk < 8 ? kc - kk : 8;
            __m256i m = lane_mask(kn);
            __m256 v[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                v[i] = i < mt ? _mm256_maskload_ps(x + (int64_t)(g + i) * ldx + kk, m) : _mm256_setzero_ps();
            transpose8(v);
            for (int k = 0; k < kn; k++) _mm256_maskstore_ps(dst + (size_t)(kk + k) * MT, store_mask, v[k]);
        }
    }
}

/* y[t*ldy + j] (+)= sum_k xp[k*MT + t] * wp[k*NR + j] for t < mt and rows j whose mask
 * lane is set, one FMA chain per element; `first` starts from 0 instead of y. `full` means
 * all NR rows are valid (plain loads and stores). */
SQ_INLINE void micro(int mt, int full, const float *wp, const float *xp, int kc, float *y, int64_t ldy, int first,
                     __m256i m0, __m256i m1) {
    __m256 c0[MT], c1[MT];
#pragma GCC unroll 6
    for (int t = 0; t < mt; t++) {
        if (first) {
            c0[t] = _mm256_setzero_ps();
            c1[t] = _mm256_setzero_ps();
        } else if (full) {
            c0[t] = _mm256_loadu_ps(y + t * ldy);
            c1[t] = _mm256_loadu_ps(y + t * ldy + 8);
        } else {
            c0[t] = _mm256_maskload_ps(y + t * ldy, m0);
            c1[t] = _mm256_maskload_ps(y + t * ldy + 8, m1);
        }
    }
    for (int k = 0; k < kc; k++) {
        __m256 w0 = _mm256_load_ps(wp + k * NR), w1 = _mm256_load_ps(wp + k * NR + 8);
#pragma GCC unroll 6
        for (int t = 0; t < mt; t++) {
            __m256 xb = _mm256_broadcast_ss(xp + k * MT + t);
            c0[t] = _mm256_fmadd_ps(w0, xb, c0[t]);
            c1[t] = _mm256_fmadd_ps(w1, xb, c1[t]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < mt; t++) {
        if (full) {
            _mm256_storeu_ps(y + t * ldy, c0[t]);
            _mm256_storeu_ps(y + t * ldy + 8, c1[t]);
        } else {
            _mm256_maskstore_ps(y + t * ldy, m0, c0[t]);
            _mm256_maskstore_ps(y + t * ldy + 8, m1, c1[t]);
        }
    }
}

static void micro_any(int mt, int full, const float *wp, const float *xp, int kc, float *y, int64_t ldy, int first,
                      __m256i m0, __m256i m1) {
#define MICRO_CASE(N)                                                          \
    case N:                                                                    \
        if (full) micro(N, 1, wp, xp, kc, y, ldy, first, m0, m1);              \
        else micro(N, 0, wp, xp, kc, y, ldy, first, m0, m1);                   \
        break;
    switch (mt) {
        MICRO_CASE(1) MICRO_CASE(2) MICRO_CASE(3) MICRO_CASE(4) MICRO_CASE(5)
    default:
        if (full) micro(MT, 1, wp, xp, kc, y, ldy, first, m0, m1);
        else micro(MT, 0, wp, xp, kc, y, ldy, first, m0, m1);
        break;
    }
#undef MICRO_CASE
}

/* Packs (widens or dequantizes) rows [r, r + nrows) x columns [k0, k0 + kc) of the weights
 * into wp[k*NR + j], zero for j >= nrows; ctx is the includer's. */
typedef void (*gemm_pack_fn)(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc,
                             const void *ctx);

/* Loop nest: column blocks of kb (the x block of up to tb tokens is packed once per
 * block and stays in L2) > row tiles of NR (packed once, reused by every token group) >
 * token groups of MT. buf holds (NR + tb) * kb floats; tb is a multiple of MT. */
static void gemm_buf(gemm_pack_fn pack, const void *ctx, float *buf, int kb, int64_t tb, float *y, int64_t ldy, const float *x,
                     const void *w, size_t rb, int64_t T, int64_t r0, int64_t r1, int64_t cols) {
    float *wp = buf, *xp = buf + (size_t)NR * (size_t)kb;
    for (int64_t k0 = 0; k0 < cols; k0 += kb) {
        int kc = (int)(cols - k0 < kb ? cols - k0 : kb);
        for (int64_t t0 = 0; t0 < T; t0 += tb) {
            int nt = (int)(T - t0 < tb ? T - t0 : tb);
            pack_x(xp, x + t0 * cols + k0, cols, nt, kc);
            for (int64_t r = r0; r < r1; r += NR) {
                int nrows = (int)(r1 - r < NR ? r1 - r : NR);
                pack(wp, w, rb, r, nrows, k0, kc, ctx);
                __m256i m0 = lane_mask(nrows), m1 = lane_mask(nrows - 8);
                for (int g = 0; g < nt; g += MT) {
                    int mt = nt - g < MT ? nt - g : MT;
                    micro_any(mt, nrows == NR, wp, xp + (size_t)g * (size_t)kc, kc, y + (t0 + g) * ldy + r, ldy, k0 == 0, m0,
                              m1);
                }
            }
        }
    }
}

/* Out of memory for the scratch: narrow column blocks and one token group at a time in a
 * small stack buffer. Slower, and the same bits: the GEMM's order does not depend on the
 * blocking. */
#define KC_STACK 64
static void gemm_stack(gemm_pack_fn pack, const void *ctx, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                       int64_t r0, int64_t r1, int64_t cols) {
    _Alignas(64) float buf[(NR + MT) * KC_STACK];
    gemm_buf(pack, ctx, buf, KC_STACK, MT, y, ldy, x, w, rb, T, r0, r1, cols);
}

static void gemm(gemm_pack_fn pack, const void *ctx, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                 int64_t r1, int64_t cols) {
    int64_t tb = T < TB ? (T + MT - 1) / MT * MT : TB;
    float *buf = sq_kernels_scratch((size_t)(NR + tb) * KC);
    if (buf) gemm_buf(pack, ctx, buf, KC, tb, y, ldy, x, w, rb, T, r0, r1, cols);
    else gemm_stack(pack, ctx, y, ldy, x, w, rb, T, r0, r1, cols);
}

#endif
