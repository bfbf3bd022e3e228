/* gemm_avx512.h - the AVX-512 building blocks shared by kernels_avx512.c (float weights)
 * and kernels_quant_avx512.c (group-quantized weights): lane masks, fixed-tree horizontal
 * sums, the 16x16 transpose, and the packed GEMM frame (x packing, the 12-token x 32-row
 * broadcast-FMA micro-kernel and the blocking loop nest). Each includer supplies the weight
 * packing (widening or dequantizing a 32-row tile to f32) as a gemm_pack_fn. The summation
 * order per output is one FMA chain over the columns in ascending order, whatever the
 * blocking, so any row split or thread count gives the same bits. Include only from files
 * compiled with the AVX-512 flags (runtime/sources.mk); everything here is static.
 */
#ifndef SQ_GEMM_AVX512_H
#define SQ_GEMM_AVX512_H

#include <immintrin.h>

#include "kernels_internal.h"

#define NR 32 /* weight rows per packed tile: two zmm of outputs */
#define MT 12 /* tokens per micro-kernel: 24 accumulators of 32 registers */
#ifndef KC
#define KC 768 /* columns per packed block (a multiple of 32): a 32 x 768 tile is 96 KiB, in L2 */
#endif
#ifndef TB
#define TB 96 /* tokens per packed x block (8 groups of MT): 96 x 768 floats = 288 KiB, in L2 */
#endif

/* The first n lanes (n clamped to 0..16). */
SQ_INLINE __mmask16 tail_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

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


/* Packs tokens [0, nt) (nt <= TB) x columns [0, kc) of x (row stride ldx) for the
 * micro-kernel: group g of MT tokens becomes xp[g*kc*MT + k*MT + i] = x[(g*MT + i)*ldx + k].
 * Contiguous broadcasts instead of MT strided rows, which for power-of-two widths all
 * fall in one L1 set. Slots of a partial last group are zero. */
static void pack_x(float *xp, const float *x, int64_t ldx, int nt, int kc) {
    for (int g = 0; g < nt; g += MT) {
        int mt = nt - g < MT ? nt - g : MT;
        float *dst = xp + (size_t)g * (size_t)kc;
        for (int kk = 0; kk < kc; kk += 16) {
            int kn = kc - kk < 16 ? kc - kk : 16;
            __mmask16 m = tail_mask(kn);
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
                __mmask16 m0 = tail_mask(nrows), m1 = tail_mask(nrows - 16);
                for (int g = 0; g < nt; g += MT) {
                    int mt = nt - g < MT ? nt - g : MT;
                    micro_any(mt, wp, xp + (size_t)g * (size_t)kc, kc, y + (t0 + g) * ldy + r, ldy, k0 == 0, m0, m1);
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
