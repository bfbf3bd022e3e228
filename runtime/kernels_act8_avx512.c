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
 * The float order per y element (pairs of chunks in column order, a fixed lane reduction,
 * then the zero-point dot) depends only on (T, cols, group), never on r0/r1: row splits and
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

SQ_ACT8_ENTRY_POINTS(sq_kernels_avx512_act8, blocks_0, blocks_1, NT_MAX, row_consts)

#else

const sq_qmatmul_fn *sq_kernels_avx512_act8(void) { return NULL; }

#endif
