/* kernels_quant_avx512.c - AVX-512 matmul for group-quantized weights (q8g, q6g, q5g, q4g,
 * q3g) with f32 activations: y = x . dequant(W)^T, the function kernels_quant_ref.c specifies.
 *
 * Weights are dequantized in registers, 32 per chunk, to exactly s * (q - z): q4g and q3g
 * look each code up in a 16-float table s * (k - z) built per group (vpermps uses only the
 * low 4 index bits, so nibbles need no masking); q5g in a 32-float table held in two
 * registers (vpermt2ps: index = low nibble | bit 4 << 4, higher index bits ignored); q8g
 * and q6g convert codes (q6g: the nibble merged with its 2-bit plane) and apply
 * fma(q, s, -s*z) (exact: s*q and s*z are exact in float, and so is their difference). Two loops, chosen by T alone:
 *   T < QGEMM_MIN_T  streaming: 4 packed rows read once per group of up to FEW_NT tokens,
 *                    dequantized chunk by chunk and FMA'd into per-(row, token) 16-lane
 *                    accumulators; the decode GEMV (T == 1) keeps two per row (lanes of
 *                    weights 0-15 and 16-31 of each chunk) and adds them before the sum;
 *   T >= QGEMM_MIN_T a packed GEMM: 32-row x KC-column tiles are dequantized and transposed
 *                    into a per-thread scratch once and reused by every token (the same
 *                    12 x 32 broadcast-FMA micro-kernel of gemm_avx512.h).
 * Summation order per y element: streaming sums chunks in column order (ragged tail by
 * masks), then a fixed lane tree; the GEMM is one FMA chain over the columns in order.
 * Neither depends on r0/r1, so row splits and thread counts give the same bits.
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__FMA__) && defined(__F16C__)

#include "gemm_avx512.h"

enum { QT_Q8 = 0, QT_Q4 = 1, QT_Q3 = 2, QT_Q5 = 3, QT_Q6 = 4 };

/* Tuning constants, measured with bench/bench_kernels -y q4g,q8g on an AMD EPYC Zen 4 VM, cpu family 25 model 17 (one thread):
 * streaming 4 tokens per pass runs at the f16 GEMM's 130-170 GFLOP/s for any T, the GEMM
 * reaches it only from T ~ 64 (76 GFLOP/s at T = 8), and 5-6 tokens per pass spill
 * registers. The decode GEMV from DRAM is limited by memory-level parallelism, not by
 * bandwidth: prefetching each row's next line in the NEXT block of rows (a whole block
 * ahead of the sequential stream) lifts q4g 65536 x 2048, T = 1 from 28 to 42 GFLOP/s (7.3
 * -> 10.9 GB/s; 1 KiB ahead within the row reached only 28), with no loss in L3
 * (`bench_kernels -m 65536x2048x1 -y q4g -t 1`, AMD EPYC VM, 2026-11-24). */
#ifndef QGEMM_MIN_T
#define QGEMM_MIN_T 64  /* T from which the GEMM is used */
#endif
#ifndef FEW_NT
#define FEW_NT 4        /* tokens per streaming pass: 4 rows x 4 tokens = 16 accumulators */
#endif
#ifndef QPREFETCH
#define QPREFETCH 1 /* streaming: prefetch each row's next line in the next block of rows */
#endif
_Static_assert(FEW_NT >= 1 && FEW_NT <= 6, "the streaming function tables below go up to 6 tokens");
_Static_assert(KC % SQ_QCHUNK == 0, "packed column blocks must start on a 32-weight chunk");

/* ===== Dequantizing one 32-weight chunk ===== */

/* Per (row, group): q8g/q6g: a = s, b = -s*z; q4g/q3g: a = table s*(k - z), k = 0..15 (q3g:
 * k & 7); q5g: a, b = table s*(k - z) for k = 0..15 and 16..31. */
typedef struct {
    __m512 a, b;
} gconst;

SQ_INLINE gconst group_const(int qt, const uint8_t *row, const sq_qlayout *L, bool asym, int64_t g) {
    const uint16_t h = (uint16_t)(row[2 * g] | (row[2 * g + 1] << 8));
    const float s = _cvtsh_ss(h);
    const int32_t z = asym ? row[L->zeros_off + (size_t)g] : L->zero_sym;
    gconst k;
    if (qt == QT_Q8 || qt == QT_Q6) {
        k.a = _mm512_set1_ps(s);
        k.b = _mm512_set1_ps(-(s * (float)z));
    } else if (qt == QT_Q5) {
        const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        const __m512 vs = _mm512_set1_ps(s);
        k.a = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps((float)z)), vs);
        k.b = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps((float)(z - 16))), vs);
    } else {
        const __m512 iota = qt == QT_Q4 ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                                        : _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
        k.a = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps((float)z)), _mm512_set1_ps(s));
        k.b = k.a;
    }
    return k;
}

/* Weights 0-15 of the chunk at p into *w0, 16-31 into *w1. */
SQ_INLINE void decode(int qt, const uint8_t *p, gconst k, __m512 *w0, __m512 *w1) {
    if (qt == QT_Q8) {
        __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
        __m512 b = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 16))));
        *w0 = _mm512_fmadd_ps(a, k.a, k.b);
        *w1 = _mm512_fmadd_ps(b, k.a, k.b);
    } else if (qt == QT_Q4) {
        /* byte j in lane j: its low nibble is weight j, its high nibble weight j + 16 */
        __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
        *w0 = _mm512_permutexvar_ps(d, k.a);
        *w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(d, 4), k.a);
    } else if (qt == QT_Q5) {
        /* the q4g nibbles, with bit j of the high word rotated to index bit 4 (0xE4: 15 ? d : h);
         * index bits above 4 are ignored by vpermt2ps */
        uint32_t hi;
        memcpy(&hi, p + 16, 4);
        const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
        const __m512i h = _mm512_set1_epi32((int)hi);
        const __m512i fifteen = _mm512_set1_epi32(15);
        const __m512i r0 = _mm512_setr_epi32(28, 29, 30, 31, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
        const __m512i r1 = _mm512_setr_epi32(12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);
        __m512i i0 = _mm512_ternarylogic_epi32(d, _mm512_rorv_epi32(h, r0), fifteen, 0xE4);
        __m512i i1 = _mm512_ternarylogic_epi32(_mm512_srli_epi32(d, 4), _mm512_rorv_epi32(h, r1), fifteen, 0xE4);
        *w0 = _mm512_permutex2var_ps(k.a, i0, k.b);
        *w1 = _mm512_permutex2var_ps(k.a, i1, k.b);
    } else if (qt == QT_Q6) {
        /* codes as int32: the nibble in bits 0-3, the plane bits (plane byte i & 7, bits
         * 2 * (i >> 3) for weights 0-15, 4 + 2 * (i >> 3) for 16-31) moved to bits 4-5 */
        uint64_t pl;
        memcpy(&pl, p + 16, 8);
        const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
        const __m512i P = _mm512_cvtepu8_epi32(_mm_set1_epi64x((long long)pl));
        const __m512i l0 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2);
        const __m512i r1 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
        /* 0xE4: C ? A : B; 0xD8: C ? B : A */
        const __m512i c0 = _mm512_and_epi32(
            _mm512_ternarylogic_epi32(d, _mm512_sllv_epi32(P, l0), _mm512_set1_epi32(15), 0xE4), _mm512_set1_epi32(63));
        const __m512i c1 =
            _mm512_ternarylogic_epi32(_mm512_srli_epi32(d, 4), _mm512_srlv_epi32(P, r1), _mm512_set1_epi32(0x30), 0xD8);
        *w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c0), k.a, k.b);
        *w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c1), k.a, k.b);
    } else {
        /* lane i of weights 0-15: plane byte i & 7 shifted by 2 * (i >> 3), and bit i of the
         * high word rotated to bit 2; weights 16-31 the same with shifts 4/6 and bits 16+i.
         * Index bit 3 is garbage: the table repeats after 8 entries. */
        uint64_t lo;
        uint32_t hi;
        memcpy(&lo, p, 8);
        memcpy(&hi, p + 8, 4);
        const __m512i d = _mm512_cvtepu8_epi32(_mm_set1_epi64x((long long)lo));
        const __m512i h = _mm512_set1_epi32((int)hi);
        const __m512i three = _mm512_set1_epi32(3);
        const __m512i s0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
        const __m512i s1 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6);
        const __m512i r0 = _mm512_setr_epi32(30, 31, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13);
        const __m512i r1 = _mm512_setr_epi32(14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29);
        /* 0xE4: three ? lo : hi, bit by bit */
        __m512i i0 = _mm512_ternarylogic_epi32(_mm512_srlv_epi32(d, s0), _mm512_rorv_epi32(h, r0), three, 0xE4);
        __m512i i1 = _mm512_ternarylogic_epi32(_mm512_srlv_epi32(d, s1), _mm512_rorv_epi32(h, r1), three, 0xE4);
        *w0 = _mm512_permutexvar_ps(i0, k.a);
        *w1 = _mm512_permutexvar_ps(i1, k.a);
    }
}

/* ===== T < QGEMM_MIN_T: streaming ===== */

/* y[t*ldy + i] = x[t] . W[row i] for nr (1 or 4) rows at w0 and nt (1..FEW_NT) tokens. */
SQ_INLINE void stream_block(int qt, int nr, int nt, float *y, int64_t ldy, const float *x, int64_t cols,
                            const uint8_t *w0, size_t rb, const sq_qlayout *L, bool asym) {
    __m512 acc[4][6], acc1[4];
    const uint8_t *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) {
        wr[i] = w0 + (size_t)i * rb;
        acc1[i] = _mm512_setzero_ps();
#pragma GCC unroll 6
        for (int t = 0; t < nt; t++) acc[i][t] = _mm512_setzero_ps();
    }
    const size_t cb = L->chunk_bytes, co = L->codes_off;
    const int64_t full = cols / SQ_QCHUNK;
    const int64_t pf_every = qt == QT_Q8 ? 2 : qt == QT_Q6 ? 2 : qt == QT_Q5 ? 3 : qt == QT_Q4 ? 4 : 5; /* chunks per line */
    const size_t pf_ahead = (size_t)nr * rb; /* the same position in the next block of rows */
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) { /* and each next row's first and last line, which those can miss */
        _mm_prefetch((const char *)wr[i] + pf_ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)wr[i] + pf_ahead + rb - 1, _MM_HINT_T0);
    }
    for (int64_t g = 0; g < L->n_groups; g++) {
        gconst k[4];
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) k[i] = group_const(qt, wr[i], L, asym, g);
        int64_t c = g * L->group_chunks;
        const int64_t ce = c + L->group_chunks < L->n_chunks ? c + L->group_chunks : L->n_chunks;
        const int64_t cf = ce < full ? ce : full;
        for (; c < cf; c++) {
            __m512 x0[6], x1[6];
#pragma GCC unroll 6
            for (int t = 0; t < nt; t++) {
                x0[t] = _mm512_loadu_ps(x + t * cols + c * SQ_QCHUNK);
                x1[t] = _mm512_loadu_ps(x + t * cols + c * SQ_QCHUNK + 16);
            }
#pragma GCC unroll 4
            for (int i = 0; i < nr; i++) {
                __m512 a, b;
                const uint8_t *p = wr[i] + co + (size_t)c * cb;
                if (QPREFETCH > 0 && c % pf_every == 0) _mm_prefetch((const char *)p + pf_ahead, _MM_HINT_T0);
                decode(qt, p, k[i], &a, &b);
                if (nt == 1) {
                    acc[i][0] = _mm512_fmadd_ps(a, x0[0], acc[i][0]);
                    acc1[i] = _mm512_fmadd_ps(b, x1[0], acc1[i]);
                } else {
#pragma GCC unroll 6
                    for (int t = 0; t < nt; t++) {
                        acc[i][t] = _mm512_fmadd_ps(a, x0[t], acc[i][t]);
                        acc[i][t] = _mm512_fmadd_ps(b, x1[t], acc[i][t]);
                    }
                }
            }
        }
        if (c < ce) { /* the ragged last chunk: lanes past cols are zero in x and w */
            const int64_t n = cols - c * SQ_QCHUNK;
            const __mmask16 m0 = tail_mask(n), m1 = tail_mask(n - 16);
            __m512 x0[6], x1[6];
#pragma GCC unroll 6
            for (int t = 0; t < nt; t++) {
                x0[t] = _mm512_maskz_loadu_ps(m0, x + t * cols + c * SQ_QCHUNK);
                x1[t] = _mm512_maskz_loadu_ps(m1, x + t * cols + c * SQ_QCHUNK + 16);
            }
#pragma GCC unroll 4
            for (int i = 0; i < nr; i++) {
                __m512 a, b;
                decode(qt, wr[i] + co + (size_t)c * cb, k[i], &a, &b);
                a = _mm512_maskz_mov_ps(m0, a);
                b = _mm512_maskz_mov_ps(m1, b);
                if (nt == 1) {
                    acc[i][0] = _mm512_fmadd_ps(a, x0[0], acc[i][0]);
                    acc1[i] = _mm512_fmadd_ps(b, x1[0], acc1[i]);
                } else {
#pragma GCC unroll 6
                    for (int t = 0; t < nt; t++) {
                        acc[i][t] = _mm512_fmadd_ps(a, x0[t], acc[i][t]);
                        acc[i][t] = _mm512_fmadd_ps(b, x1[t], acc[i][t]);
                    }
                }
            }
        }
    }
    if (nt == 1) {
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) acc[i][0] = _mm512_add_ps(acc[i][0], acc1[i]);
    }
    if (nr == 4) {
#pragma GCC unroll 6
        for (int t = 0; t < nt; t++) _mm_storeu_ps(y + t * ldy, hsum16x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
    } else {
#pragma GCC unroll 6
        for (int t = 0; t < nt; t++) y[t * ldy] = hsum16(acc[0][t]);
    }
}

typedef void (*stream_fn)(float *y, int64_t ldy, const float *x, int64_t cols, const uint8_t *w0, size_t rb,
                          const sq_qlayout *L, bool asym);

#define STREAM_FN(QT, NR_, NT_)                                                                                      \
    static void stream_##QT##_##NR_##_##NT_(float *y, int64_t ldy, const float *x, int64_t cols, const uint8_t *w0, \
                                            size_t rb, const sq_qlayout *L, bool asym) {                             \
        stream_block(QT, NR_, NT_, y, ldy, x, cols, w0, rb, L, asym);                                                \
    }
#define STREAM_FNS(QT)                                                                                               \
    STREAM_FN(QT, 4, 1) STREAM_FN(QT, 4, 2) STREAM_FN(QT, 4, 3) STREAM_FN(QT, 4, 4) STREAM_FN(QT, 4, 5)              \
    STREAM_FN(QT, 4, 6) STREAM_FN(QT, 1, 1) STREAM_FN(QT, 1, 2) STREAM_FN(QT, 1, 3) STREAM_FN(QT, 1, 4)              \
    STREAM_FN(QT, 1, 5) STREAM_FN(QT, 1, 6)                                                                          \
    static const stream_fn stream_##QT[2][6] = {                                                                    \
        {stream_##QT##_1_1, stream_##QT##_1_2, stream_##QT##_1_3, stream_##QT##_1_4, stream_##QT##_1_5,              \
         stream_##QT##_1_6},                                                                                         \
        {stream_##QT##_4_1, stream_##QT##_4_2, stream_##QT##_4_3, stream_##QT##_4_4, stream_##QT##_4_5,              \
         stream_##QT##_4_6}};
STREAM_FNS(QT_Q8)
STREAM_FNS(QT_Q4)
STREAM_FNS(QT_Q3)
STREAM_FNS(QT_Q5)
STREAM_FNS(QT_Q6)

static void stream(int qt, float *y, int64_t ldy, const float *x, const uint8_t *w, size_t rb, int64_t T, int64_t r0,
                   int64_t r1, int64_t cols, const sq_qlayout *L, bool asym) {
    const stream_fn(*fns)[6] = qt == QT_Q8   ? stream_QT_Q8
                               : qt == QT_Q6 ? stream_QT_Q6
                               : qt == QT_Q5 ? stream_QT_Q5
                               : qt == QT_Q4 ? stream_QT_Q4
                                             : stream_QT_Q3;
    /* tokens in ceil(T / FEW_NT) groups of nearly equal size */
    const int64_t ng = (T + FEW_NT - 1) / FEW_NT;
    for (int64_t g = 0, t = 0; g < ng; g++) {
        const int nt = (int)(T / ng + (g < T % ng));
        for (int64_t r = r0; r < r1;) {
            const int four = r + 4 <= r1;
            fns[four][nt - 1](y + t * ldy + r, ldy, x + t * cols, cols, w + (size_t)r * rb, rb, L, asym);
            r += four ? 4 : 1;
        }
        t += nt;
    }
}

/* ===== T >= QGEMM_MIN_T: packed GEMM ===== */

typedef struct {
    int qt;
    const sq_qlayout *L;
    bool asym;
    int64_t cols;
} qinfo;

/* wp[k*NR + j] = dequant(W)[r + j][k0 + k] for j < nrows (<= NR), k < kc; 0 for j >= nrows.
 * k0 is a multiple of 32, so the block starts on a chunk. */
SQ_INLINE void pack_tile_q(int qt, float *wp, const uint8_t *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc,
                           const qinfo *qi) {
    const sq_qlayout *L = qi->L;
    _Alignas(64) float hi[16 * 16];
    for (int half = 0; half < NR / 16; half++) {
        int nh = nrows - half * 16;
        nh = nh < 0 ? 0 : nh > 16 ? 16 : nh;
        const uint8_t *base = w + (size_t)(r + half * 16) * rb;
        for (int kk = 0; kk < kc; kk += SQ_QCHUNK) {
            const int64_t c = (k0 + kk) / SQ_QCHUNK, g = c / L->group_chunks;
            float *dst = wp + (size_t)kk * NR + half * 16;
            const int kn = kc - kk < SQ_QCHUNK ? kc - kk : SQ_QCHUNK;
            __m512 v[16];
            for (int j = 0; j < 16; j++) {
                if (j < nh) {
                    const uint8_t *row = base + (size_t)j * rb;
                    __m512 b;
                    decode(qt, row + L->codes_off + (size_t)c * L->chunk_bytes, group_const(qt, row, L, qi->asym, g),
                           &v[j], &b);
                    _mm512_store_ps(hi + 16 * j, b);
                } else {
                    v[j] = _mm512_setzero_ps();
                    _mm512_store_ps(hi + 16 * j, v[j]);
                }
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

static void pack_q8(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q8, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q4(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q4, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q3(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q3, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q5(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q5, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q6(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q6, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}

/* ===== Entry points ===== */

static void qmatmul(int qt, sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                    int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    if (cols <= 0) {
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = r0; r < r1; r++) y[t * ldy + r] = 0.0f;
        return;
    }
    const sq_qlayout L = sq_qlayout_of(type, q, cols);
    if (T < QGEMM_MIN_T) {
        stream(qt, y, ldy, x, (const uint8_t *)w, rb, T, r0, r1, cols, &L, q.asym);
    } else {
        const qinfo qi = {qt, &L, q.asym, cols};
        gemm_pack_fn pack = qt == QT_Q8   ? pack_q8
                            : qt == QT_Q6 ? pack_q6
                            : qt == QT_Q5 ? pack_q5
                            : qt == QT_Q4 ? pack_q4
                                          : pack_q3;
        gemm(pack, &qi, y, ldy, x, w, rb, T, r0, r1, cols);
    }
}

static void qmatmul_q8g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q8, SQ_TYPE_Q8G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q4g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q4, SQ_TYPE_Q4G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q3g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q3, SQ_TYPE_Q3G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q5g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q5, SQ_TYPE_Q5G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q6g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q6, SQ_TYPE_Q6G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}

static const sq_qmatmul_fn quant_table[SQ_TYPE_COUNT] = {
    [SQ_TYPE_Q8G] = qmatmul_q8g,
    [SQ_TYPE_Q4G] = qmatmul_q4g,
    [SQ_TYPE_Q3G] = qmatmul_q3g,
    [SQ_TYPE_Q5G] = qmatmul_q5g,
    [SQ_TYPE_Q6G] = qmatmul_q6g,
};

const sq_qmatmul_fn *sq_kernels_avx512_quant(void) { return quant_table; }

#else

const sq_qmatmul_fn *sq_kernels_avx512_quant(void) { return NULL; }

#endif
