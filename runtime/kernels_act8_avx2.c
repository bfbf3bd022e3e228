/* kernels_act8_avx2.c - AVX2 matmul for ACT8 q8g/q4g tensors (int8 activations,
 * docs/quantization.md; kernels_quant_ref.c's sq_qmatmul_a8_*_ref is the specification).
 * Also used by the AVX-512 table when the CPU lacks avx512_vnni.
 *
 * The activations of all T tokens are quantized once per call (sq_act8_prepare). A ymm
 * holds one 32-weight chunk. q4g: vpmaddubsw multiplies the u8 codes (<= 15) by the s8
 * activations and adds pairs into s16 without saturating (|2 * 15 * 127| < 2^15), then
 * vpmaddwd by 1 widens to 8 int32 lanes. q8g codes reach 255, where vpmaddubsw would
 * saturate, so codes and activations are widened to s16 and multiplied with vpmaddwd. The
 * 8 int32 lanes are converted to float and FMA'd with s_g * d_c into one accumulator per
 * (row, token); the zero-point term is subtracted per group at the end (s_g * z_g * gz_g,
 * as in kernels_act8_avx512.c). Blocks of 4 rows x up to 2 tokens; q4g from T = 32 in packed
 * tiles of 8 rows, and at T = 1 a decode GEMV of two chunks per 32-byte load (below). The float order per y
 * element depends only on (T, cols, group), never on r0/r1.
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#define NT_MAX 2 /* tokens per block: 4 rows x 2 tokens = 8 accumulators */

/* Per row of a block: float scales sc[g] and s_g * z_g (exact) sz[g]. */
static void row_consts(const uint8_t *row, const sq_qlayout *L, bool asym, int64_t ng, float *sc, float *sz) {
    int64_t g = 0;
    for (; g + 8 <= ng; g += 8) _mm256_storeu_ps(sc + g, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * g))));
    for (; g < ng; g++) sc[g] = sq_qrow_scale(row, g);
    for (g = 0; g < ng; g++) sz[g] = sc[g] * (float)sq_qrow_zero(L, asym, row, g);
}

SQ_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* y[t * ldy + i] for NR rows and NT tokens from t0. */
SQ_INLINE void block(bool q4, int NR, int NT, float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0,
                     const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc0, const float *sz0, size_t lds) {
    __m256 acc[4][NT_MAX];
    const uint8_t *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        wr[i] = w0 + (size_t)i * rb + L->codes_off;
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) acc[i][t] = _mm256_setzero_ps();
    }
    const int64_t nc = a->nc, gc = L->group_chunks;
    const __m256i nib = _mm256_set1_epi8(0x0F), one16 = _mm256_set1_epi16(1);
    int64_t g = 0, k = 0;
    for (int64_t c = 0; c < nc; c++) {
        __m256i xq[NT_MAX], xl[NT_MAX], xh[NT_MAX];
        __m256 dv[NT_MAX];
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            const int8_t *xp = a->q + (size_t)(t0 + t) * a->ldq + (size_t)c * SQ_QCHUNK;
            if (q4) {
                xq[t] = _mm256_loadu_si256((const __m256i *)xp);
            } else {
                xl[t] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)xp));
                xh[t] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xp + 16)));
            }
            dv[t] = _mm256_set1_ps(a->d[(t0 + t) * nc + c]);
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const __m256 sv = _mm256_set1_ps(sc0[(size_t)i * lds + g]);
            __m256i wv, wl, wh;
            if (q4) {
                const __m128i p = _mm_loadu_si128((const __m128i *)(wr[i] + (size_t)c * 16));
                wv = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(p), _mm_srli_epi16(p, 4), 1), nib);
                wl = wh = wv;
            } else {
                const uint8_t *p = wr[i] + (size_t)c * 32;
                wl = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
                wh = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + 16)));
                wv = wl;
            }
#pragma GCC unroll 2
            for (int t = 0; t < NT; t++) {
                const __m256i iv = q4 ? _mm256_madd_epi16(_mm256_maddubs_epi16(wv, xq[t]), one16)
                                      : _mm256_add_epi32(_mm256_madd_epi16(wl, xl[t]), _mm256_madd_epi16(wh, xh[t]));
                acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iv), _mm256_mul_ps(dv[t], sv), acc[i][t]);
            }
        }
        if (++k == gc) k = 0, g++;
    }
    const int64_t ng = a->ng;
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const float *sz = sz0 + (size_t)i * lds;
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            const float *gz = a->gz + (t0 + t) * ng;
            __m256 zacc = _mm256_setzero_ps();
            int64_t gg = 0;
            for (; gg + 8 <= ng; gg += 8) zacc = _mm256_fmadd_ps(_mm256_loadu_ps(sz + gg), _mm256_loadu_ps(gz + gg), zacc);
            float zs = 0.0f;
            for (; gg < ng; gg++) zs += sz[gg] * gz[gg];
            y[t * ldy + i] = hsum8(_mm256_sub_ps(acc[i][t], zacc)) - zs;
        }
    }
}

#define BLOCK_FNS(Q4)                                                                                    \
    SQ_ACT8_BLOCK_FN(Q4, 1, 1) SQ_ACT8_BLOCK_FN(Q4, 1, 2) SQ_ACT8_BLOCK_FN(Q4, 4, 1) SQ_ACT8_BLOCK_FN(Q4, 4, 2)  \
    static const sq_act8_block_fn blocks_##Q4[2][NT_MAX] = {{block_##Q4##_1_1, block_##Q4##_1_2},                \
                                                            {block_##Q4##_4_1, block_##Q4##_4_2}};
BLOCK_FNS(0)
BLOCK_FNS(1)


/* ===== q4g, many tokens: packed tiles of 8 rows ===== */

/* Rows packed 8 at a time (sq_act8_pack_tile) so that a ymm lane is a row: per 4 columns,
 * vpmaddubsw of the 8 rows' codes with the token's 4 activation codes broadcast, summed in
 * 16 bits over a chunk's 8 steps (at most 8 * 2 * 15 * 127 = 30480 in magnitude: exact), then
 * one vpmaddwd, conversion and FMA per chunk and (row, token). q8g codes would overflow the
 * 16-bit sums, so q8g keeps the streaming kernels. */
#define GR 8 /* rows per tile: one ymm of lanes */
#define GT 4 /* tokens per micro-kernel call */
#ifndef ACT8_GEMM_MIN_T
#define ACT8_GEMM_MIN_T 32 /* T from which the tiles are used (as kernels_act8_avx512.c) */
#endif

SQ_INLINE void gemm_micro(int NT, float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0, const uint8_t *pk,
                          const float *sc, const float *sz, int64_t gc, int nr) {
    __m256 f[GT];
    const int8_t *xq[GT];
    const float *dq[GT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        f[t] = _mm256_setzero_ps();
        xq[t] = a->q + (size_t)(t0 + t) * a->ldq;
        dq[t] = a->d + (t0 + t) * a->nc;
    }
    const __m256i one16 = _mm256_set1_epi16(1);
    const int64_t nc = a->nc, ng = a->ng;
    for (int64_t g = 0; g < ng; g++) {
        const __m256 s = _mm256_loadu_ps(sc + g * GR);
        const int64_t ce = (g + 1) * gc < nc ? (g + 1) * gc : nc;
        for (int64_t c = g * gc; c < ce; c++) {
            __m256i h[GT];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) h[t] = _mm256_setzero_si256();
            const uint8_t *pc = pk + (size_t)c * 32 * GR;
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(pc + j * 4 * GR));
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    int32_t v;
                    memcpy(&v, xq[t] + c * SQ_QCHUNK + 4 * j, 4);
                    h[t] = _mm256_add_epi16(h[t], _mm256_maddubs_epi16(w, _mm256_set1_epi32(v)));
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++)
                f[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(h[t], one16)),
                                       _mm256_mul_ps(s, _mm256_set1_ps(dq[t][c])), f[t]);
        }
    }
    for (int64_t g = 0; g < ng; g++) { /* minus s_g z_g gz_g */
        const __m256 z = _mm256_loadu_ps(sz + g * GR);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) f[t] = _mm256_fnmadd_ps(z, _mm256_set1_ps(a->gz[(t0 + t) * ng + g]), f[t]);
    }
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) _mm256_maskstore_ps(y + (t0 + t) * ldy, m, f[t]);
}

SQ_ACT8_MICRO_FN(1) SQ_ACT8_MICRO_FN(2) SQ_ACT8_MICRO_FN(3) SQ_ACT8_MICRO_FN(4)
static const sq_act8_micro_fn micros[GT] = {micro_1, micro_2, micro_3, micro_4};

static const sq_act8_gemm tiles = {ACT8_GEMM_MIN_T, GR, true, GT, micros};


/* ===== Decode (T = 1), q4g: two chunks per load ===== */

/* One 32-byte load holds two 16-byte chunks (a "pair"); and-ing and shifting its nibbles gives
 * codes 0-15 and 16-31 of both, vpmaddubsw against the token's codes regrouped the same way
 * (sq_act8_gemv) gives s16 pair sums (at most 2 * 15 * 127), the two halves are added (at most
 * 7620: exact) and vpmaddwd widens to 8 int32 lanes, lanes 0-3 chunk A and 4-7 chunk B. One
 * conversion and FMA with d_c * s_g per 64 weights and row, against one per 32 in the
 * streaming block above; L2 prefetches of the next block of rows as kernels_act8_avx512.c's.
 * Float order per y element: lanes accumulate pairs in column order, then the zero-point
 * dot, then one fixed reduction; it depends on (cols, group) only. */
#define GV_ROWS 4 /* rows per block (16 ymm registers) */

/* y[i] for NR rows from w0; m = 0: the pair lies in one group, 1: one group per chunk. */
SQ_INLINE void gv_block(bool q8, int m, int NR, float *y, const int8_t *x, const float *d, const sq_act8_rows *a,
                        const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc0, const float *sz0,
                        size_t lds) {
    (void)q8; /* q4g only: q8g codes would saturate vpmaddubsw */
    __m256 acc[GV_ROWS];
    const uint8_t *wr[GV_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        wr[i] = w0 + (size_t)i * rb + L->codes_off;
        acc[i] = _mm256_setzero_ps();
    }
    const int64_t nc = L->n_chunks, gc = L->group_chunks, np = nc / 2;
    const __m256i nib = _mm256_set1_epi8(0x0F), one16 = _mm256_set1_epi16(1);
    const size_t ahead = (size_t)NR * rb; /* the same line of the next block of rows */
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) { /* and the lines the loop's prefetches miss: each next row's scales and last bytes */
        _mm_prefetch((const char *)w0 + ahead + (size_t)i * rb, _MM_HINT_T1);
        _mm_prefetch((const char *)w0 + ahead + (size_t)(i + 1) * rb - 1, _MM_HINT_T1);
    }
    for (int64_t pi = 0; pi < (nc + 1) / 2; pi++) {
        const __m256i xl = _mm256_load_si256((const __m256i *)(x + 64 * pi));
        const __m256i xh = _mm256_load_si256((const __m256i *)(x + 64 * pi + 32));
        const __m256 dq = _mm256_load_ps(d + 8 * pi);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const uint8_t *p = wr[i] + 32 * pi;
            if (pi % 2 == 0) _mm_prefetch((const char *)p + ahead, _MM_HINT_T1);
            /* the last chunk alone: its 16 bytes only (the row may end there) */
            const __m256i v = pi < np ? _mm256_loadu_si256((const __m256i *)p)
                                      : _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)p));
            const __m256i h = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(v, nib), xl),
                                               _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), nib), xh));
            const float *sc = sc0 + (size_t)i * lds;
            const __m256 sv = m == 0 ? _mm256_set1_ps(sc[2 * pi / gc])
                                     : _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(sc + 2 * pi)),
                                                            _mm_broadcast_ss(sc + 2 * pi + 1), 1);
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(h, one16)), _mm256_mul_ps(sv, dq), acc[i]);
        }
    }
    const int64_t ng = a->ng;
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const float *sz = sz0 + (size_t)i * lds;
        __m256 zacc = _mm256_setzero_ps();
        int64_t g = 0;
        for (; g + 8 <= ng; g += 8) zacc = _mm256_fmadd_ps(_mm256_loadu_ps(sz + g), _mm256_loadu_ps(a->gz + g), zacc);
        float zs = 0.0f;
        for (; g < ng; g++) zs += sz[g] * a->gz[g];
        y[i] = hsum8(_mm256_sub_ps(acc[i], zacc)) - zs;
    }
}

SQ_ACT8_GEMV_FN(0, 0, 1) SQ_ACT8_GEMV_FN(0, 0, 4) SQ_ACT8_GEMV_FN(0, 1, 1) SQ_ACT8_GEMV_FN(0, 1, 4)
_Static_assert(GV_ROWS == 4, "the block functions above are for 4 rows");
static const sq_act8_gemv q4g_gemv = {SQ_TYPE_Q4G, 2, GV_ROWS, row_consts, {{gv_0_0_1, gv_0_0_4}, {gv_0_1_1, gv_0_1_4}, {NULL, NULL}}};

SQ_ACT8_ENTRY_POINTS(sq_kernels_avx2_act8, blocks_0, blocks_1, NT_MAX, row_consts, &tiles, NULL, &q4g_gemv)

#else

const sq_qmatmul_fn *sq_kernels_avx2_act8(void) { return NULL; }

#endif
