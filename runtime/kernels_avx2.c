/* kernels_avx2.c - AVX2 + FMA + F16C kernels (Haswell / Zen 1 and later): matmul for f32,
 * f16 and bf16 weights with f32 activations, dot, axpy and bulk half conversions.
 *
 * The same three loops as kernels_avx512.c at half the width, chosen by T alone:
 *   T == 1       GEMV: 4 weight rows streamed at once, widened in registers, two 8-lane
 *                accumulators per row;
 *   T < 32       a few tokens: each widened weight vector reused by up to 3 tokens
 *                (4 rows x 3 tokens = 12 accumulators of the 16 ymm registers);
 *   T >= 32      GEMM: 16-row x 256-column weight tiles widened and transposed once, x
 *                packed per column block (per-thread scratch), and a 6-token x 16-row
 *                micro-kernel of broadcast FMAs (12 accumulators).
 * Summation order per y element: the row loops sum 8-column chunks into 8-lane
 * accumulators (fixed chunk-to-accumulator map) and add lanes in a fixed tree (distance
 * 4, 2, 1); the GEMM is one FMA chain over the columns in ascending order. Ragged tails
 * are read with masked loads (f32) or through a zero-padded 8-element buffer (halves),
 * never past a row. Compiled with -mavx2 -mfma -mf16c.
 */
#include "kernels_internal.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include "gemm_avx2.h"
#include <string.h>

enum { WT_F32 = 0, WT_F16 = 1, WT_BF16 = 2 };

#ifndef GEMM_MIN_T
#define GEMM_MIN_T 32 /* T from which the packed GEMM beats the few-token loop */
#endif
#ifndef FEW_NT
#define FEW_NT 3     /* max tokens per block in the few-token loop: 12 accumulators */
#endif

/* ===== Loads that widen weights to f32 ===== */

SQ_INLINE __m256 widen8(int wt, __m128i h) {
    if (wt == WT_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

SQ_INLINE __m256 load_w(int wt, const void *row, int64_t c) {
    if (wt == WT_F32) return _mm256_loadu_ps((const float *)row + c);
    return widen8(wt, _mm_loadu_si128((const __m128i *)((const uint16_t *)row + c)));
}


/* The first n (< 8) weights of a row from column c; other lanes 0, nothing read past them. */
SQ_INLINE __m256 load_w_part(int wt, const void *row, int64_t c, int64_t n) {
    if (wt == WT_F32) return _mm256_maskload_ps((const float *)row + c, lane_mask(n));
    uint16_t tmp[8] = {0};
    memcpy(tmp, (const uint16_t *)row + c, (size_t)n * sizeof(uint16_t));
    return widen8(wt, _mm_loadu_si128((const __m128i *)tmp));
}

/* ===== T == 1: GEMV ===== */

/* y[i] = W[row i] . x for nr (1..4) rows. Per row: chunks at c % 16 == 0 go to a0,
 * c % 16 == 8 to a1, a last whole chunk to a0, the ragged tail to a1; then hsum8(a0 + a1). */
SQ_INLINE void gemv_rows(int wt, int nr, float *y, const float *x, const char *w0, size_t rb, int64_t cols) {
    __m256 a0[4], a1[4];
    const char *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) {
        a0[i] = _mm256_setzero_ps();
        a1[i] = _mm256_setzero_ps();
        wr[i] = w0 + (size_t)i * rb;
    }
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            /* each 64-byte line of the row once, at the same place in the next block of 4 rows, into L2
             * (as kernels_avx512.c's GEMV: L1 fill buffers are few) */
            if (wt == WT_F32 || c % 32 == 0)
                _mm_prefetch((const char *)wr[i] + c * (wt == WT_F32 ? 4 : 2) + 4 * rb, _MM_HINT_T1);
            a0[i] = _mm256_fmadd_ps(load_w(wt, wr[i], c), x0, a0[i]);
            a1[i] = _mm256_fmadd_ps(load_w(wt, wr[i], c + 8), x1, a1[i]);
        }
    }
    if (c + 8 <= cols) {
        __m256 x0 = _mm256_loadu_ps(x + c);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) a0[i] = _mm256_fmadd_ps(load_w(wt, wr[i], c), x0, a0[i]);
        c += 8;
    }
    if (c < cols) {
        __m256 x0 = _mm256_maskload_ps(x + c, lane_mask(cols - c));
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) a1[i] = _mm256_fmadd_ps(load_w_part(wt, wr[i], c, cols - c), x0, a1[i]);
    }
    if (nr == 4) {
        _mm_storeu_ps(y, hsum8x4(_mm256_add_ps(a0[0], a1[0]), _mm256_add_ps(a0[1], a1[1]), _mm256_add_ps(a0[2], a1[2]),
                                 _mm256_add_ps(a0[3], a1[3])));
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) y[i] = hsum8(_mm256_add_ps(a0[i], a1[i]));
    }
}

SQ_INLINE void gemv(int wt, float *y, const float *x, const void *w, size_t rb, int64_t r0, int64_t r1, int64_t cols) {
    const char *wb = (const char *)w;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) gemv_rows(wt, 4, y + r, x, wb + (size_t)r * rb, rb, cols);
    for (; r < r1; r++) gemv_rows(wt, 1, y + r, x, wb + (size_t)r * rb, rb, cols);
}

/* ===== 2 <= T < GEMM_MIN_T: few tokens ===== */

/* nr (1..4) rows x nt (1..FEW_NT) tokens; per element one accumulator over the 8-column
 * chunks in order, the tail last, then hsum8. The same for every nr, nt. */
SQ_INLINE void few_block(int wt, int nr, int nt, float *y, int64_t ldy, const float *x, int64_t cols,
                         const char *w0, size_t rb) {
    __m256 acc[4][FEW_NT];
    const char *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) {
        wr[i] = w0 + (size_t)i * rb;
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) acc[i][t] = _mm256_setzero_ps();
    }
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 xv[FEW_NT];
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) xv[t] = _mm256_loadu_ps(x + t * cols + c);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            __m256 wv = load_w(wt, wr[i], c);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) acc[i][t] = _mm256_fmadd_ps(wv, xv[t], acc[i][t]);
        }
    }
    if (c < cols) {
        __m256i m = lane_mask(cols - c);
        __m256 xv[FEW_NT];
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) xv[t] = _mm256_maskload_ps(x + t * cols + c, m);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            __m256 wv = load_w_part(wt, wr[i], c, cols - c);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) acc[i][t] = _mm256_fmadd_ps(wv, xv[t], acc[i][t]);
        }
    }
    if (nr == 4) {
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) _mm_storeu_ps(y + t * ldy, hsum8x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++)
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) y[t * ldy + i] = hsum8(acc[i][t]);
    }
}

#define FEW_CASES(WT, NR_)                                                                       \
    switch (nt) {                                                                                \
    case 1: few_block(WT, NR_, 1, y, ldy, x, cols, w0, rb); break;                               \
    case 2: few_block(WT, NR_, 2 < FEW_NT ? 2 : FEW_NT, y, ldy, x, cols, w0, rb); break;         \
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
    /* tokens in ceil(T / FEW_NT) groups of nearly equal size */
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

/* wp[k*NR + j] = W[r + j][k0 + k] for j < nrows (<= NR), k < kc; 0 for j >= nrows. */
SQ_INLINE void pack_tile(int wt, float *wp, const char *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc) {
    for (int part = 0; part < NR / 8; part++) {
        int nh = nrows - part * 8;
        nh = nh < 0 ? 0 : nh > 8 ? 8 : nh;
        const char *base = w + (size_t)(r + part * 8) * rb;
        for (int kk = 0; kk < kc; kk += 8) {
            int kn = kc - kk < 8 ? kc - kk : 8;
            float *dst = wp + (size_t)kk * NR + part * 8;
            __m256 v[8];
            if (nh == 8 && kn == 8) {
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) v[j] = load_w(wt, base + (size_t)j * rb, k0 + kk);
            } else {
                for (int j = 0; j < 8; j++)
                    v[j] = j < nh ? load_w_part(wt, base + (size_t)j * rb, k0 + kk, kn) : _mm256_setzero_ps();
            }
            transpose8(v);
            for (int k = 0; k < kn; k++) _mm256_store_ps(dst + k * NR, v[k]);
        }
    }
}

static void pack_f32(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    (void)ctx;
    pack_tile(WT_F32, wp, (const char *)w, rb, r, nrows, k0, kc);
}
static void pack_f16(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    (void)ctx;
    pack_tile(WT_F16, wp, (const char *)w, rb, r, nrows, k0, kc);
}
static void pack_bf16(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    (void)ctx;
    pack_tile(WT_BF16, wp, (const char *)w, rb, r, nrows, k0, kc);
}

/* ===== Matmul entry points ===== */

SQ_INLINE void matmul(int wt, gemm_pack_fn pack, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                      int64_t r0, int64_t r1, int64_t cols) {
    if (T <= 0 || r1 <= r0) return;
    if (cols <= 0) {
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = r0; r < r1; r++) y[t * ldy + r] = 0.0f;
        return;
    }
    if (T == 1) gemv(wt, y, x, w, rb, r0, r1, cols);
    else if (T < GEMM_MIN_T) few(wt, y, ldy, x, w, rb, T, r0, r1, cols);
    else gemm(pack, NULL, y, ldy, x, w, rb, T, r0, r1, cols);
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
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    if (i < n) {
        __m256i m = lane_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

static void axpy_f32(float *y, float a, const float *x, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i m = lane_mask(n - i);
        __m256 r = _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m));
        _mm256_maskstore_ps(y + i, m, r);
    }
}

SQ_INLINE void widen(int wt, float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = widen8(wt, _mm_loadu_si128((const __m128i *)(src + i)));
        __m256 b = widen8(wt, _mm_loadu_si128((const __m128i *)(src + i + 8)));
        _mm256_storeu_ps(dst + i, a);
        _mm256_storeu_ps(dst + i + 8, b);
    }
    for (; i < n; i += 8) {
        int64_t k = n - i >= 8 ? 8 : n - i;
        __m256 v = k == 8 ? load_w(wt, src, i) : load_w_part(wt, src, i, k);
        _mm256_maskstore_ps(dst + i, lane_mask(k), v);
    }
}

static void f16_to_f32(float *dst, const uint16_t *src, int64_t n) { widen(WT_F16, dst, src, n); }
static void bf16_to_f32(float *dst, const uint16_t *src, int64_t n) { widen(WT_BF16, dst, src, n); }

static const sq_kernels table = {
    .name = "avx2",
    .matmul = {[SQ_TYPE_F32] = matmul_f32, [SQ_TYPE_F16] = matmul_f16, [SQ_TYPE_BF16] = matmul_bf16},
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .f16_to_f32 = f16_to_f32,
    .bf16_to_f32 = bf16_to_f32,
};

const sq_kernels *sq_kernels_avx2_table(void) { return &table; }

#else

const sq_kernels *sq_kernels_avx2_table(void) { return NULL; }

#endif
