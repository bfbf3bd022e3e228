/* kernels_avx512.c - AVX-512 (F/BW/VL/DQ + F16C/FMA) kernels: matmul for f32, f16 and
 * bf16 weights with f32 activations, dot, axpy and bulk half conversions.
 *
 * Matmul has three loops, chosen by T alone (so any row split gives the same bits):
 *   T == 1       decode GEMV, memory-bound: 4 weight rows streamed at once (prefetched),
 *                widened to f32 in registers, two 16-lane accumulators per row;
 *   T < 32       a few tokens: the same row streaming, each widened weight vector reused
 *                by up to 6 tokens held in registers (4 rows x 6 tokens = 24 accumulators);
 *   T >= 32      prefill/eval GEMM, compute-bound: 32-row x 768-column weight tiles are
 *                widened and transposed once (96 KiB, L2-resident), x is packed per
 *                768-column block for up to 96 tokens (both in a per-thread scratch), and a
 *                12-token x 32-row micro-kernel of broadcast FMAs (24 zmm accumulators)
 *                runs over them, each weight tile reused by every token group.
 * Summation order per y element: the row loops sum 16-column chunks into 16-lane
 * accumulators (fixed chunk-to-accumulator map, ragged tail by masked loads) and add the
 * lanes in a fixed tree (distance 8, 4, 2, 1); the GEMM is one FMA chain over the columns
 * in ascending order, whatever the blocking. Compiled with -mavx512{f,bw,vl,dq} -mfma -mf16c.
 */
#include "kernels_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__FMA__) && defined(__F16C__)

#include "gemm_avx512.h"

enum { WT_F32 = 0, WT_F16 = 1, WT_BF16 = 2 };

/* Tuning constants (bench/bench_kernels). */
#ifndef GEMM_MIN_T
#define GEMM_MIN_T 32 /* T from which the packed GEMM beats the few-token loop */
#endif
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 1 /* the GEMV prefetches each row's line in the next block of 4 rows, into L2 */
#endif
#ifndef FEW_NT
#define FEW_NT 6     /* max tokens per block in the few-token loop: 24 accumulators */
#endif

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
            if (GEMV_PREFETCH) { /* one 64-byte line per row per step (two for f32); from DRAM, L2 prefetches
                                  * a block ahead stream 24 GB/s of f16 against 18 with L1 prefetches 512 bytes
                                  * ahead in the row (bench_kernels -m 65536x2048x1 -y f16,f32 -t 1, AMD
                                  * EPYC VM, 2026-11-25): L1 has few fill buffers, L2 many more */
                const char *pf = (const char *)wr[i] + c * (wt == WT_F32 ? 4 : 2) + 4 * rb;
                _mm_prefetch(pf, _MM_HINT_T1);
                if (wt == WT_F32) _mm_prefetch(pf + 64, _MM_HINT_T1);
            }
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

/* wp[k*NR + j] = W[r + j][k0 + k] for j < nrows (<= NR), k < kc; 0 for j >= nrows. */
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
