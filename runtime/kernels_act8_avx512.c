/* kernels_act8_avx512.c - AVX-512 VNNI matmul for ACT8 q8g/q4g tensors: int8 activations
 * times the stored codes with vpdpbusd (u8 weight codes x s8 activation codes, exact int32
 * sums), the function docs/quantization.md defines and kernels_quant_ref.c
 * (sq_qmatmul_a8_*_ref) specifies. kernels.c uses it only when the CPU has avx512_vnni.
 *
 * The activations of all T tokens are quantized once per call (sq_act8_prepare, the shared
 * quantizer). A zmm holds two 32-weight chunks: vpdpbusd gives 16 int32 lanes, 8 per chunk
 * (q8g: lanes 0-7 chunk A; q4g: lanes 0-3 and 8-11, because the nibbles unpack to [A codes
 * 0-15, B 0-15, A 16-31, B 16-31] and the activations are shuffled to match). Each lane is
 * converted to float and FMA'd with s_g * d_c of its chunk into one float accumulator per
 * (row, token); the zero-point term s_g * z_g * gz_g (gz_g = sum over the group's chunks of
 * d_c * xsum_c, sq_act8_prepare) is accumulated 16 groups per lane and subtracted lane by lane
 * before the one reduction.
 * Blocks of 4 rows x up to 4 tokens reuse each unpacked weight and each activation load.
 * Decode (T = 1) has GEMVs of its own (below, sq_act8_gemv): four q4g or two q8g chunks per
 * 64-byte load, 8 rows per block, L2 prefetches of the next block.
 * From T = ACT8_GEMM_MIN_T on, rows are instead packed 32 at a time into a layout where a
 * zmm lane is a row (sq_act8_pack_tile), so that a chunk's 8 vpdpbusd steps accumulate exactly in
 * int32 and the float work is one conversion and one FMA per chunk and (row, token).
 * The float order per y element (pairs of chunks, or the GEMVs' units, in column order, a fixed
 * lane reduction, then the zero-point dot) depends only on (T, cols, group), never on r0/r1: row splits and
 * thread counts give the same bits. It differs from the reference's order, so tests compare
 * with a tolerance; the integer sums are exact in both. (The pairing of scales with lanes
 * follows llama.cpp's int8 dot product kernels; no code is taken from them.)
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#define NT_MAX 4 /* tokens per block: 4 rows x 4 tokens = 16 accumulators */

/* Per row of a block: float scales sc[g] and s_g * z_g (exact) sz[g], padded to 16. */
SQ_INLINE void row_consts(const uint8_t *row, const sq_qlayout *L, bool asym, int64_t ng, float *sc, float *sz) {
    for (int64_t g = 0; g < ng; g += 16) {
        const int64_t n = ng - g < 16 ? ng - g : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        const __m512 s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * g));
        const __m512 z = asym ? _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, row + L->zeros_off + g)))
                              : _mm512_set1_ps((float)L->zero_sym);
        _mm512_store_ps(sc + g, s);
        _mm512_store_ps(sz + g, _mm512_mul_ps(s, z));
    }
}

/* y[t * ldy + i] for NR rows (wr[i], constants sc/sz + i * lds) and NT tokens from t0. */
SQ_INLINE void block(bool q4, int NR, int NT, float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0,
                     const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc0, const float *sz0, size_t lds) {
    __m512 acc[4][NT_MAX];
    const uint8_t *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        wr[i] = w0 + (size_t)i * rb + L->codes_off;
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[i][t] = _mm512_setzero_ps();
    }
    const int64_t nc = a->nc, gc = L->group_chunks;
    const __mmask16 mb = q4 ? 0xF0F0 : 0xFF00; /* lanes of the second chunk */
    const size_t pf_ahead = (size_t)NR * rb;
    const __m512i nib = _mm512_set1_epi8(0x0F);
    int64_t c = 0, g = 0, k = 0; /* chunk, its group, its place in the group */
    for (; c + 1 < nc; c += 2) {
        const int64_t g2 = k + 1 < gc ? g : g + 1;
        __m512i xq[NT_MAX];
        __m512 dv[NT_MAX];
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const int8_t *xp = a->q + (size_t)(t0 + t) * a->ldq + (size_t)c * SQ_QCHUNK;
            const float *dp = a->d + (t0 + t) * nc + c;
            __m512i v = _mm512_loadu_si512(xp);
            xq[t] = q4 ? _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0)) : v;
            dv[t] = _mm512_mask_blend_ps(mb, _mm512_set1_ps(dp[0]), _mm512_set1_ps(dp[1]));
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const float *sc = sc0 + (size_t)i * lds;
            const __m512 sv = _mm512_mask_blend_ps(mb, _mm512_set1_ps(sc[g]), _mm512_set1_ps(sc[g2]));
            __m512i wv;
            /* the same line of the next block of rows, once per 64 bytes (as kernels_quant_avx512.c:
             * decode from DRAM is limited by memory-level parallelism); into L2 for q8g (45 against 25
             * GFLOP/s into L1 at 65536 x 2048, T = 1, measured before T = 1 had the decode GEMV below),
             * into L1 for q4g (84 against 67 at T = 2) */
            if (q4 ? c % 4 == 0 : 1) {
                const char *pf = (const char *)wr[i] + (size_t)c * (q4 ? 16 : 32) + pf_ahead;
                if (q4) _mm_prefetch(pf, _MM_HINT_T0);
                else _mm_prefetch(pf, _MM_HINT_T1);
            }
            if (q4) {
                const __m256i p = _mm256_loadu_si256((const __m256i *)(wr[i] + (size_t)c * 16));
                const __m512i pz = _mm512_inserti64x4(_mm512_castsi256_si512(p), _mm256_srli_epi16(p, 4), 1);
                wv = _mm512_and_si512(pz, nib);
            } else {
                wv = _mm512_loadu_si512(wr[i] + (size_t)c * 32);
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const __m512i iv = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xq[t]);
                acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iv), _mm512_mul_ps(dv[t], sv), acc[i][t]);
            }
        }
        k += 2;
        while (k >= gc) k -= gc, g++;
    }
    if (c < nc) { /* the last chunk alone: the upper half of the weights is zero */
        __m512i xq[NT_MAX];
        __m512 dv[NT_MAX];
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            xq[t] = _mm512_loadu_si512(a->q + (size_t)(t0 + t) * a->ldq + (size_t)c * SQ_QCHUNK);
            dv[t] = _mm512_set1_ps(a->d[(t0 + t) * nc + c]);
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const __m512 sv = _mm512_set1_ps(sc0[(size_t)i * lds + g]);
            __m256i wv;
            if (q4) {
                const __m128i p = _mm_loadu_si128((const __m128i *)(wr[i] + (size_t)c * 16));
                wv = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(p), _mm_srli_epi16(p, 4), 1),
                                      _mm256_set1_epi8(0x0F));
            } else {
                wv = _mm256_loadu_si256((const __m256i *)(wr[i] + (size_t)c * 32));
            }
            const __m512i wz = _mm512_zextsi256_si512(wv);
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const __m512i iv = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wz, xq[t]);
                acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iv), _mm512_mul_ps(dv[t], sv), acc[i][t]);
            }
        }
    }
    /* minus sum_g s_g z_g gz_g, 16 groups at a time */
    const int64_t ng = a->ng;
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const float *sz = sz0 + (size_t)i * lds;
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const float *gz = a->gz + (t0 + t) * ng;
            __m512 zacc = _mm512_setzero_ps();
            for (int64_t gg = 0; gg < ng; gg += 16) {
                const int64_t n = ng - gg < 16 ? ng - gg : 16;
                const __mmask16 m = (__mmask16)((1u << n) - 1u);
                zacc = _mm512_fmadd_ps(_mm512_load_ps(sz + gg), _mm512_maskz_loadu_ps(m, gz + gg), zacc);
            }
            y[t * ldy + i] = _mm512_reduce_add_ps(_mm512_sub_ps(acc[i][t], zacc));
        }
    }
}

#define BLOCK_FNS(Q4)                                                                                    \
    SQ_ACT8_BLOCK_FN(Q4, 1, 1) SQ_ACT8_BLOCK_FN(Q4, 1, 2) SQ_ACT8_BLOCK_FN(Q4, 1, 3) SQ_ACT8_BLOCK_FN(Q4, 1, 4)  \
    SQ_ACT8_BLOCK_FN(Q4, 4, 1) SQ_ACT8_BLOCK_FN(Q4, 4, 2) SQ_ACT8_BLOCK_FN(Q4, 4, 3) SQ_ACT8_BLOCK_FN(Q4, 4, 4)  \
    static const sq_act8_block_fn blocks_##Q4[2][NT_MAX] = {                                                     \
        {block_##Q4##_1_1, block_##Q4##_1_2, block_##Q4##_1_3, block_##Q4##_1_4},                                \
        {block_##Q4##_4_1, block_##Q4##_4_2, block_##Q4##_4_3, block_##Q4##_4_4}};
BLOCK_FNS(0)
BLOCK_FNS(1)


/* ===== Many tokens: packed tiles of 32 rows ===== */

/* A tile's codes are repacked so that two zmm hold 4 consecutive codes of each of 32 rows: pk[((c * 8 + j) * GR + i) * 4 + b] = code of row i, column 32c + 4j + b. Then
 * vpdpbusd with the token's 4 activation codes broadcast gives each lane (a row) its 4-column
 * dot product, and the 8 steps of a chunk accumulate exactly in int32: per chunk and (row,
 * token) one conversion and one FMA with s_g * d_c, against one per 8 columns in the
 * streaming kernel. sc/sz hold s_g and s_g * z_g as [group][row]. */
#define GR 32 /* rows per tile: two zmm of lanes */
#define GT 4  /* tokens per micro-kernel call */
#ifndef ACT8_GEMM_MIN_T
#define ACT8_GEMM_MIN_T 32 /* T from which the tiles are used (bench_kernels -m 2048x2048 -T 8,16,32: at 16 the
                              * packing costs more than the tiles save) */
#endif

SQ_INLINE void gemm_micro(int NT, float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0, const uint8_t *pk,
                          const float *sc, const float *sz, int64_t gc, int nr) {
    __m512 f0[GT], f1[GT];
    const int8_t *xq[GT];
    const float *dq[GT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        f0[t] = f1[t] = _mm512_setzero_ps();
        xq[t] = a->q + (size_t)(t0 + t) * a->ldq;
        dq[t] = a->d + (t0 + t) * a->nc;
    }
    const int64_t nc = a->nc, ng = a->ng;
    for (int64_t g = 0; g < ng; g++) {
        const __m512 s0 = _mm512_load_ps(sc + g * GR), s1 = _mm512_load_ps(sc + g * GR + 16);
        const int64_t ce = (g + 1) * gc < nc ? (g + 1) * gc : nc;
        for (int64_t c = g * gc; c < ce; c++) {
            __m512i i0[GT], i1[GT];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) i0[t] = i1[t] = _mm512_setzero_si512();
            const uint8_t *pc = pk + (size_t)c * 32 * GR;
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m512i w0 = _mm512_load_si512(pc + j * 4 * GR), w1 = _mm512_load_si512(pc + j * 4 * GR + 64);
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    int32_t v;
                    memcpy(&v, xq[t] + c * SQ_QCHUNK + 4 * j, 4);
                    const __m512i xb = _mm512_set1_epi32(v);
                    i0[t] = _mm512_dpbusd_epi32(i0[t], w0, xb);
                    i1[t] = _mm512_dpbusd_epi32(i1[t], w1, xb);
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const __m512 dt = _mm512_set1_ps(dq[t][c]);
                f0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[t]), _mm512_mul_ps(s0, dt), f0[t]);
                f1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[t]), _mm512_mul_ps(s1, dt), f1[t]);
            }
        }
    }
    for (int64_t g = 0; g < ng; g++) { /* minus s_g z_g gz_g */
        const __m512 z0 = _mm512_load_ps(sz + g * GR), z1 = _mm512_load_ps(sz + g * GR + 16);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512 gz = _mm512_set1_ps(a->gz[(t0 + t) * ng + g]);
            f0[t] = _mm512_fnmadd_ps(z0, gz, f0[t]);
            f1[t] = _mm512_fnmadd_ps(z1, gz, f1[t]);
        }
    }
    const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        _mm512_mask_storeu_ps(y + (t0 + t) * ldy, m0, f0[t]);
        _mm512_mask_storeu_ps(y + (t0 + t) * ldy + 16, m1, f1[t]);
    }
}

SQ_ACT8_MICRO_FN(1) SQ_ACT8_MICRO_FN(2) SQ_ACT8_MICRO_FN(3) SQ_ACT8_MICRO_FN(4)
static const sq_act8_micro_fn micros[GT] = {micro_1, micro_2, micro_3, micro_4};

static const sq_act8_gemm tiles = {ACT8_GEMM_MIN_T, GR, false, GT, micros};


/* ===== Decode (T = 1), q4g: four chunks per load ===== */

/* One 64-byte load holds four 16-byte q4g chunks (a "quad"); and-ing and shifting its nibbles
 * gives codes 0-15 and 16-31 of the four chunks, which two vpdpbusd against the token's codes
 * regrouped the same way (per call) sum into 16 int32 lanes, lanes 4k..4k+3 partial sums of
 * chunk k. Each lane is converted and FMA'd with d_c * s_g of its chunk into one float
 * accumulator per row: against the streaming block above, half the loads, conversions and
 * FMAs per weight. Float order per y element: lanes accumulate quads in column order, then
 * the zero-point dot lane by lane, then one fixed reduction; it depends on (cols, group) only. */
#define GV_ROWS 8 /* rows per block: 8 load streams */
/* Each row's line at the same place in the next block of rows is prefetched into L2, not L1:
 * from DRAM, L1 prefetches are capped by the core's few L1 fill buffers (about 10 GB/s here)
 * while L2 keeps many more misses in flight. bench_kernels -m 65536x2048x1 -y q4g+a8 -t 1
 * (AMD EPYC VM, 2026-11-25): 37-39 GFLOP/s with _MM_HINT_T0, 77-80 with _MM_HINT_T1; two or
 * four blocks ahead, or 1 KiB ahead within the row, no better. */
#define GV_HINT _MM_HINT_T1

/* The scales of one unit's chunks, read from the row's fp16 scales (row + 2g), for m = 1 (two
 * groups: lanes 0-7 and 8-15; q4g group 64, q8g group 32) and m = 2 (four: q4g group 32, 4 lanes
 * each); groups past ng are masked to 0 (the bytes after the scales are not scales). */
SQ_INLINE __m512 gv_scales(int m, const uint8_t *row, int64_t u, int64_t ng) {
    const int64_t g = (m == 1 ? 2 : 4) * u, left = ng - g, n = left < (m == 1 ? 2 : 4) ? left : (m == 1 ? 2 : 4);
    const __m128 s = _mm_cvtph_ps(_mm_maskz_loadu_epi16((__mmask8)((1u << n) - 1u), row + 2 * g));
    const __m512i e = m == 1 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                             : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(e, _mm512_castps128_ps512(s));
}

/* Group g's scale of a row in every lane. */
SQ_INLINE __m512 gv_scale1(const uint8_t *row, int64_t g) {
    uint16_t h;
    memcpy(&h, row + 2 * g, 2);
    return _mm512_cvtph_ps(_mm256_set1_epi16((short)h));
}

/* y[i] for NR rows from w0, the token regrouped per unit in x/d (sq_act8_gemv): q4g four 16-byte
 * chunks per 64-byte load, nibbles split and two vpdpbusd; q8g two 32-byte chunks, one vpdpbusd.
 * The scales and zeros come from the rows themselves (no rowc pass: reading them in a separate
 * pass before the block stalled on their cache misses, 9 % of decode time in perf). */
SQ_INLINE void gv_block(bool q8, int m, int NR, float *y, const int8_t *x, const float *d, const sq_act8_rows *a,
                        const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc0, const float *sz0,
                        size_t lds) {
    (void)sc0, (void)sz0, (void)lds;
    __m512 acc[GV_ROWS], sv[GV_ROWS];
    const uint8_t *row[GV_ROWS];
    const int U = q8 ? 2 : 4, cb = q8 ? 32 : 16; /* chunks per unit, bytes per chunk */
    const int64_t nc = L->n_chunks, gc = L->group_chunks, ng = a->ng, nu = (nc + U - 1) / U;
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++) {
        row[i] = w0 + (size_t)i * rb;
        acc[i] = _mm512_setzero_ps();
        if (m == 0) sv[i] = gv_scale1(row[i], 0);
    }
    const __mmask64 tail = (nc % U) ? (__mmask64)((1ull << (cb * (nc % U))) - 1) : ~(__mmask64)0;
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const size_t ahead = (size_t)NR * rb; /* the same line of the next block of rows */
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++) { /* and the lines the loop's prefetches miss: each next row's scales and last bytes */
        _mm_prefetch((const char *)row[i] + ahead, GV_HINT);
        _mm_prefetch((const char *)row[i] + ahead + rb - 1, GV_HINT);
    }
    /* m = 0: the group of unit u, counted without a division (one group per row: always 0) */
    const int64_t upg = ng == 1 ? INT64_MAX : gc / U;
    int64_t gu = 0, ku = 0;
    for (int64_t u = 0; u < nu; u++) {
        if (m == 0 && ku == upg) {
            ku = 0, gu++;
#pragma GCC unroll 8
            for (int i = 0; i < NR; i++) sv[i] = gv_scale1(row[i], gu);
        }
        ku++;
        const __m512i xl = _mm512_load_si512(x + (q8 ? 64 : 128) * u);
        const __m512i xh = q8 ? xl : _mm512_load_si512(x + 128 * u + 64);
        const __m512 du = _mm512_load_ps(d + 16 * u);
        const __mmask64 lm = u + 1 < nu ? ~(__mmask64)0 : tail;
#pragma GCC unroll 8
        for (int i = 0; i < NR; i++) {
            const uint8_t *p = row[i] + L->codes_off + 64 * u;
            _mm_prefetch((const char *)p + ahead, GV_HINT);
            const __m512i v = _mm512_maskz_loadu_epi8(lm, p);
            __m512i s;
            if (q8) {
                s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v, xl);
            } else {
                s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v, nib), xl);
                s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(v, 4), nib), xh);
            }
            const __m512 ds = _mm512_mul_ps(m == 0 ? sv[i] : gv_scales(m, row[i], u, ng), du);
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), ds, acc[i]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++) { /* minus sum_g (s_g z_g) gz_g, 16 groups at a time (s_g z_g exact) */
        __m512 zacc = _mm512_setzero_ps();
        for (int64_t g = 0; g < ng; g += 16) {
            const __mmask16 zm = (__mmask16)(ng - g < 16 ? (1u << (ng - g)) - 1u : 0xFFFFu);
            const __m512 s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(zm, row[i] + 2 * g));
            const __m512 z = L->asym ? _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(zm, row[i] + L->zeros_off + g)))
                                     : _mm512_set1_ps((float)L->zero_sym);
            zacc = _mm512_fmadd_ps(_mm512_mul_ps(s, z), _mm512_maskz_loadu_ps(zm, a->gz + g), zacc);
        }
        y[i] = _mm512_reduce_add_ps(_mm512_sub_ps(acc[i], zacc));
    }
}

_Static_assert(GV_ROWS == 8, "the block functions below are for 8 rows");
SQ_ACT8_GEMV_FN(0, 0, 1) SQ_ACT8_GEMV_FN(0, 0, 8) SQ_ACT8_GEMV_FN(0, 1, 1) SQ_ACT8_GEMV_FN(0, 1, 8)
SQ_ACT8_GEMV_FN(0, 2, 1) SQ_ACT8_GEMV_FN(0, 2, 8) SQ_ACT8_GEMV_FN(1, 0, 1) SQ_ACT8_GEMV_FN(1, 0, 8)
SQ_ACT8_GEMV_FN(1, 1, 1) SQ_ACT8_GEMV_FN(1, 1, 8)
static const sq_act8_gemv q4g_gemv = {SQ_TYPE_Q4G, 4, GV_ROWS, NULL,
                                      {{gv_0_0_1, gv_0_0_8}, {gv_0_1_1, gv_0_1_8}, {gv_0_2_1, gv_0_2_8}}};
static const sq_act8_gemv q8g_gemv = {SQ_TYPE_Q8G, 2, GV_ROWS, NULL,
                                      {{gv_1_0_1, gv_1_0_8}, {gv_1_1_1, gv_1_1_8}, {NULL, NULL}}};

SQ_ACT8_ENTRY_POINTS(sq_kernels_avx512_act8, blocks_0, blocks_1, NT_MAX, row_consts, &tiles, &q8g_gemv, &q4g_gemv)

#else

const sq_qmatmul_fn *sq_kernels_avx512_act8(void) { return NULL; }

#endif
