/* kernels_act8_neon.c - AArch64 NEON matmul for ACT8 q4g/q8g tensors (int8 activations,
 * docs/quantization.md; kernels_quant_ref.c's sq_qmatmul_a8_*_ref is the specification),
 * built on the shared ACT8 drivers of kernels_quant_ref.c like kernels_act8_avx2.c.
 *
 * This file is compiled twice: as itself (plain ARMv8.0 NEON, sq_kernels_neon_act8) and,
 * through kernels_act8_neon_dotprod.c, for ARMv8.2-A with the dot-product extension
 * (sq_kernels_neon_act8_dotprod); kernels.c picks the second only when the CPU reports
 * dotprod (Linux: HWCAP_ASIMDDP), so the file runs on every AArch64 core.
 *
 * The integer part of a chunk (32 codes times 32 activation codes) is exact on both paths:
 *  - dotprod: `sdot` adds four s8 x s8 products per int32 lane. q4g codes 0-15 are valid s8;
 *    q8g codes (0-255) are not, so q8g multiplies q - 128 (-128..127) and subtracts, lane by
 *    lane, the same dot product of -128 with the activations (computed once per chunk and token,
 *    shared by the rows): each int32 lane then holds exactly its share of sum q x, as on the
 *    other variants, so the float part is theirs (folding the 128 into the float zero-point
 *    term instead would scale the rounding error with 128 * sum |x| and leave residue where
 *    the exact result is 0; test_act8's zero_weights_stay_zero).
 *  - plain: vmull_s8 / vmlal_s8 multiply 8 lanes into s16, vpaddlq_s16 / vpadalq_s16 widen
 *    pairs into int32. Per s16 lane before widening: q4g at most 4 products in the decode GEMV
 *    (4 * 15 * 127 = 7620, then a pairwise add of two chunks' lanes: 15240) and 2 in the
 *    blocks (3810); q8g (q - 128) 2 products, at most 2 * 128 * 127 = 32512 < 32767. Never
 *    saturating, never wrapping.
 * Each chunk's int32 lanes are converted to float and FMA'd with s_g * d_c into one
 * accumulator per (row, token); the zero-point term is subtracted per group at the end
 * (s_g * z_g * gz_g, as kernels_act8_avx2.c). Blocks of 4 rows x up to 2 tokens; the q4g and
 * q8g decode GEMVs (T = 1, sq_act8_gemv) read units of two chunks (32 or 64 bytes) per row and
 * add the two chunks' lanes pairwise so that one conversion and FMA cover 64 weights. The sdot
 * build also has packed q4g tiles of 8 rows from T = 32 (below); the plain one uses the
 * blocks for every T > 1.
 * The float order per y element depends only on (T, cols, group), never on r0/r1.
 * Written for, and tested under, qemu-aarch64 (make cross-check); not tuned on hardware.
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#ifdef SQ_ACT8_NEON_DOTPROD
#define ACT8_NEON_GETTER sq_kernels_neon_act8_dotprod
#else
#define ACT8_NEON_GETTER sq_kernels_neon_act8
#endif

/* the dotprod build needs gcc's target pragma (kernels_act8_neon_dotprod.c) or a -march with dotprod */
#if defined(__ARM_NEON) && defined(__aarch64__) &&                                                      \
    (!defined(SQ_ACT8_NEON_DOTPROD) || (defined(__GNUC__) && !defined(__clang__)) || defined(__ARM_FEATURE_DOTPROD))

#include <arm_neon.h>
#include <string.h>

#define NT_MAX 2 /* tokens per block: 4 rows x 2 tokens = 8 accumulators */

/* Per row: float scales sc[g] and s_g * z_g sz[g] (exact). */
static void row_consts(const uint8_t *row, const sq_qlayout *L, bool asym, int64_t ng, float *sc, float *sz) {
    int64_t g = 0;
    for (; g + 4 <= ng; g += 4) vst1q_f32(sc + g, vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(row + 2 * g))));
    for (; g < ng; g++) sc[g] = sq_qrow_scale(row, g);
    for (g = 0; g < ng; g++) sz[g] = sc[g] * (float)sq_qrow_zero(L, asym, row, g);
}

/* int32 lanes summing to w0 . x0 + w1 . x1 (32 products; each |product| <= 128 * 127), exact. */
SQ_INLINE int32x4_t dot32(int8x16_t w0, int8x16_t x0, int8x16_t w1, int8x16_t x1) {
#ifdef SQ_ACT8_NEON_DOTPROD
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
#else
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0)); /* 2 products per lane: <= 32512 */
    p0 = vmlal_high_s8(p0, w0, x0);
    int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
    p1 = vmlal_high_s8(p1, w1, x1);
    return vpadalq_s16(vpaddlq_s16(p0), p1);
#endif
}

/* sum(acc) - sz . gz over ng groups: the end of every (row, token). */
SQ_INLINE float finish(float32x4_t acc, const float *sz, const float *gz, int64_t ng) {
    float32x4_t zacc = vdupq_n_f32(0.0f);
    int64_t g = 0;
    for (; g + 4 <= ng; g += 4) zacc = vfmaq_f32(zacc, vld1q_f32(sz + g), vld1q_f32(gz + g));
    float zs = 0.0f;
    for (; g < ng; g++) zs += sz[g] * gz[g];
    return vaddvq_f32(vsubq_f32(acc, zacc)) - zs;
}

/* y[t * ldy + i] for NR rows and NT tokens from t0. */
SQ_INLINE void block(bool q4, int NR, int NT, float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0,
                     const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc0, const float *sz0, size_t lds) {
    float32x4_t acc[4][NT_MAX];
    const uint8_t *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        wr[i] = w0 + (size_t)i * rb + L->codes_off;
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) acc[i][t] = vdupq_n_f32(0.0f);
    }
    const int64_t nc = a->nc, gc = L->group_chunks;
    const uint8x16_t nib = vdupq_n_u8(0x0F), bias = vdupq_n_u8(0x80);
    int64_t g = 0, k = 0;
    for (int64_t c = 0; c < nc; c++) {
        int8x16_t x0[NT_MAX], x1[NT_MAX];
        int32x4_t xs[NT_MAX]; /* q8g: the lanes of -128 . x, subtracted from those of (q - 128) . x */
        float dv[NT_MAX];
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            const int8_t *xp = a->q + (size_t)(t0 + t) * a->ldq + (size_t)c * SQ_QCHUNK;
            x0[t] = vld1q_s8(xp);
            x1[t] = vld1q_s8(xp + 16);
            dv[t] = a->d[(t0 + t) * nc + c];
            xs[t] = q4 ? vdupq_n_s32(0) : dot32(vdupq_n_s8(-128), x0[t], vdupq_n_s8(-128), x1[t]);
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const float s = sc0[(size_t)i * lds + g];
            int8x16_t wa, wb;
            if (q4) { /* byte j: code j (low nibble), code 16 + j (high) */
                const uint8x16_t v = vld1q_u8(wr[i] + (size_t)c * 16);
                wa = vreinterpretq_s8_u8(vandq_u8(v, nib));
                wb = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
            } else { /* q - 128 */
                const uint8_t *p = wr[i] + (size_t)c * 32;
                wa = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), bias));
                wb = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 16), bias));
            }
#pragma GCC unroll 2
            for (int t = 0; t < NT; t++)
                acc[i][t] = vfmaq_n_f32(acc[i][t], vcvtq_f32_s32(vsubq_s32(dot32(wa, x0[t], wb, x1[t]), xs[t])), dv[t] * s);
        }
        if (++k == gc) k = 0, g++;
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) y[t * ldy + i] = finish(acc[i][t], sz0 + (size_t)i * lds, a->gz + (t0 + t) * a->ng, a->ng);
}

#define BLOCK_FNS(Q4)                                                                                    \
    SQ_ACT8_BLOCK_FN(Q4, 1, 1) SQ_ACT8_BLOCK_FN(Q4, 1, 2) SQ_ACT8_BLOCK_FN(Q4, 4, 1) SQ_ACT8_BLOCK_FN(Q4, 4, 2)  \
    static const sq_act8_block_fn blocks_##Q4[2][NT_MAX] = {{block_##Q4##_1_1, block_##Q4##_1_2},                \
                                                            {block_##Q4##_4_1, block_##Q4##_4_2}};
BLOCK_FNS(0)
BLOCK_FNS(1)


#ifdef SQ_ACT8_NEON_DOTPROD
/* ===== q4g, many tokens (sdot only): packed tiles of 8 rows ===== */

/* Rows packed 8 at a time (sq_act8_pack_tile: per 4 columns, the 4 codes of each row side by
 * side) so that an int32 lane is a row: `sdot` by element multiplies 4 rows' 4 codes by the
 * token's 4 activation codes of the same columns (lane j of its chunk) and adds them into the
 * row's lane, 8 steps per chunk, exact in int32; then one conversion and FMA with s_g * d_c
 * per chunk and (4 rows, token), and the zero-point term per group at the end. The plain
 * path has no s8 multiply by element into 32 bits and keeps the blocks. */
#define GR 8 /* rows per tile: two vectors of lanes */
#define GT 4 /* tokens per micro-kernel call */
#ifndef ACT8_GEMM_MIN_T
#define ACT8_GEMM_MIN_T 32 /* T from which the tiles are used (as the x86 files) */
#endif

SQ_INLINE void gemm_micro(int NT, float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0, const uint8_t *pk,
                          const float *sc, const float *sz, int64_t gc, int nr) {
    float32x4_t f0[GT], f1[GT];
    const int8_t *xq[GT];
    const float *dq[GT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        f0[t] = f1[t] = vdupq_n_f32(0.0f);
        xq[t] = a->q + (size_t)(t0 + t) * a->ldq;
        dq[t] = a->d + (t0 + t) * a->nc;
    }
    const int64_t nc = a->nc, ng = a->ng;
    for (int64_t g = 0; g < ng; g++) {
        const float32x4_t s0 = vld1q_f32(sc + g * GR), s1 = vld1q_f32(sc + g * GR + 4);
        const int64_t ce = (g + 1) * gc < nc ? (g + 1) * gc : nc;
        for (int64_t c = g * gc; c < ce; c++) {
            int32x4_t h0[GT], h1[GT];
            int8x16_t xa[GT], xb[GT];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                h0[t] = h1[t] = vdupq_n_s32(0);
                xa[t] = vld1q_s8(xq[t] + c * SQ_QCHUNK);
                xb[t] = vld1q_s8(xq[t] + c * SQ_QCHUNK + 16);
            }
            const int8_t *pc = (const int8_t *)pk + (size_t)c * 32 * GR;
/* columns 4J..4J+3 of the chunk: lane LANE of the token's X (xa: columns 0-15, xb: 16-31) */
#define STEP(J, X, LANE)                                                                                     \
    {                                                                                                        \
        const int8x16_t w0 = vld1q_s8(pc + (J) * 4 * GR), w1 = vld1q_s8(pc + (J) * 4 * GR + 16);            \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                               \
            h0[t] = vdotq_laneq_s32(h0[t], w0, X[t], LANE);                                                  \
            h1[t] = vdotq_laneq_s32(h1[t], w1, X[t], LANE);                                                  \
        }                                                                                                    \
    }
            STEP(0, xa, 0) STEP(1, xa, 1) STEP(2, xa, 2) STEP(3, xa, 3)
            STEP(4, xb, 0) STEP(5, xb, 1) STEP(6, xb, 2) STEP(7, xb, 3)
#undef STEP
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                f0[t] = vfmaq_f32(f0[t], vcvtq_f32_s32(h0[t]), vmulq_n_f32(s0, dq[t][c]));
                f1[t] = vfmaq_f32(f1[t], vcvtq_f32_s32(h1[t]), vmulq_n_f32(s1, dq[t][c]));
            }
        }
    }
    for (int64_t g = 0; g < ng; g++) { /* minus s_g z_g gz_g */
        const float32x4_t z0 = vld1q_f32(sz + g * GR), z1 = vld1q_f32(sz + g * GR + 4);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const float gz = a->gz[(t0 + t) * ng + g];
            f0[t] = vfmsq_n_f32(f0[t], z0, gz);
            f1[t] = vfmsq_n_f32(f1[t], z1, gz);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        float *yt = y + (t0 + t) * ldy;
        if (nr == GR) {
            vst1q_f32(yt, f0[t]);
            vst1q_f32(yt + 4, f1[t]);
        } else { /* the last tile: its rows only */
            float v[GR];
            vst1q_f32(v, f0[t]);
            vst1q_f32(v + 4, f1[t]);
            memcpy(yt, v, sizeof(float) * (size_t)nr);
        }
    }
}

SQ_ACT8_MICRO_FN(1) SQ_ACT8_MICRO_FN(2) SQ_ACT8_MICRO_FN(3) SQ_ACT8_MICRO_FN(4)
static const sq_act8_micro_fn micros[GT] = {micro_1, micro_2, micro_3, micro_4};
static const sq_act8_gemm tiles = {ACT8_GEMM_MIN_T, GR, true, GT, micros};
#define ACT8_TILES (&tiles)
#else
#define ACT8_TILES NULL
#endif


/* ===== Decode (T = 1): units of two chunks ===== */

#ifndef SQ_ACT8_NEON_DOTPROD
/* s16 lanes summing to l . x0 + h . x1 for q4g codes: 4 products per lane, at most 7620. */
SQ_INLINE int16x8_t mul4_q4(int8x16_t l, int8x16_t h, int8x16_t x0, int8x16_t x1) {
    int16x8_t p = vmull_s8(vget_low_s8(l), vget_low_s8(x0));
    p = vmlal_high_s8(p, l, x0);
    p = vmlal_s8(p, vget_low_s8(h), vget_low_s8(x1));
    return vmlal_high_s8(p, h, x1);
}
#endif

/* q4g: lanes 0-1 chunk A (codes lo . xa0 + hi . xa1), lanes 2-3 chunk B, exact. */
SQ_INLINE int32x4_t dot_unit(uint8x16_t va, uint8x16_t vb, int8x16_t xa0, int8x16_t xa1, int8x16_t xb0, int8x16_t xb1) {
    const uint8x16_t nib = vdupq_n_u8(0x0F);
    const int8x16_t la = vreinterpretq_s8_u8(vandq_u8(va, nib)), ha = vreinterpretq_s8_u8(vshrq_n_u8(va, 4));
    const int8x16_t lb = vreinterpretq_s8_u8(vandq_u8(vb, nib)), hb = vreinterpretq_s8_u8(vshrq_n_u8(vb, 4));
#ifdef SQ_ACT8_NEON_DOTPROD
    return vpaddq_s32(dot32(la, xa0, ha, xa1), dot32(lb, xb0, hb, xb1));
#else
    /* a pairwise add of the two chunks' s16 lanes (<= 2 * 7620 = 15240), then widened */
    return vpaddlq_s16(vpaddq_s16(mul4_q4(la, ha, xa0, xa1), mul4_q4(lb, hb, xb0, xb1)));
#endif
}

#define GV_ROWS 4 /* rows per block */

/* y[i] for NR rows from w0; m = 0: the unit lies in one group, 1: one group per chunk.
 * x, d: the token as sq_act8_gemv_drive lays it out. q4g: x[64u + 16k + j] = code j of chunk 2u
 * + k, x[64u + 32 + 16k + j] = code 16 + j, d[4c + .] = d_c; q8g: x[32c + j] = code j of chunk c,
 * d[8c + .] = d_c. Both units give lanes 0-1 of chunk A and 2-3 of chunk B, converted and FMA'd
 * with s_g * d_c per lane. */
SQ_INLINE void gv_block(bool q8, int m, int NR, float *y, const int8_t *x, const float *d, const sq_act8_rows *a,
                        const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc0, const float *sz0,
                        size_t lds) {
    float32x4_t acc[GV_ROWS];
    const uint8_t *wr[GV_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        wr[i] = w0 + (size_t)i * rb + L->codes_off;
        acc[i] = vdupq_n_f32(0.0f);
    }
    const int64_t nc = L->n_chunks, gc = L->group_chunks, np = nc / 2;
    /* m = 0: the group of unit pi is 2 pi / gc, counted without a division (one group: 0) */
    const int64_t upg = L->n_groups == 1 ? INT64_MAX : gc / 2;
    int64_t gu = 0, ku = 0;
    for (int64_t pi = 0; pi < (nc + 1) / 2; pi++) {
        const int8_t *xp = x + 64 * pi;
        /* q4g: xa0, xb0 codes 0-15 of chunks A, B and xa1, xb1 codes 16-31; q8g: chunk A's codes in
         * xa0, xa1 and chunk B's in xb0, xb1 */
        const int8x16_t xa0 = vld1q_s8(xp), xa1 = vld1q_s8(xp + (q8 ? 16 : 32));
        const int8x16_t xb0 = vld1q_s8(xp + (q8 ? 32 : 16)), xb1 = vld1q_s8(xp + 48);
        const float32x4_t dq = vld1q_f32(d + (q8 ? 16 * pi + 6 : 8 * pi + 2)); /* d_A, d_A, d_B, d_B */
        /* q8g: the lanes of -128 . x, subtracted from those of (q - 128) . x (chunk B's x is zero
         * past the last chunk) */
        const int8x16_t m128 = vdupq_n_s8(-128);
        const int32x4_t xs = q8 ? vpaddq_s32(dot32(m128, xa0, m128, xa1), dot32(m128, xb0, m128, xb1)) : vdupq_n_s32(0);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            int32x4_t h;
            /* the last chunk alone: its bytes only (the row may end there) */
            if (q8) { /* q - 128 */
                const uint8_t *p = wr[i] + 64 * pi;
                const uint8x16_t bias = vdupq_n_u8(0x80);
                const int8x16_t wa0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), bias)),
                                wa1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 16), bias));
                const int8x16_t wb0 = pi < np ? vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 32), bias)) : vdupq_n_s8(0),
                                wb1 = pi < np ? vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 48), bias)) : vdupq_n_s8(0);
                h = vsubq_s32(vpaddq_s32(dot32(wa0, xa0, wa1, xa1), dot32(wb0, xb0, wb1, xb1)), xs);
            } else {
                const uint8_t *p = wr[i] + 32 * pi;
                const uint8x16_t va = vld1q_u8(p), vb = pi < np ? vld1q_u8(p + 16) : vdupq_n_u8(0);
                h = dot_unit(va, vb, xa0, xa1, xb0, xb1);
            }
            const float *sc = sc0 + (size_t)i * lds;
            float32x4_t sv;
            if (m == 0) {
                sv = vdupq_n_f32(sc[gu]);
            } else { /* s_A, s_A, s_B, s_B (s_B is a zero pad past the last group) */
                const float32x4_t s2 = vcombine_f32(vld1_f32(sc + 2 * pi), vld1_f32(sc + 2 * pi));
                sv = vzip1q_f32(s2, s2);
            }
            acc[i] = vfmaq_f32(acc[i], vcvtq_f32_s32(h), vmulq_f32(sv, dq));
        }
        if (m == 0 && ++ku == upg) ku = 0, gu++;
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) y[i] = finish(acc[i], sz0 + (size_t)i * lds, a->gz, a->ng);
}

#define GV_FNS(Q8) SQ_ACT8_GEMV_FN(Q8, 0, 1) SQ_ACT8_GEMV_FN(Q8, 0, 4) SQ_ACT8_GEMV_FN(Q8, 1, 1) SQ_ACT8_GEMV_FN(Q8, 1, 4)
GV_FNS(0)
GV_FNS(1)
_Static_assert(GV_ROWS == 4, "the block functions above are for 4 rows");
static const sq_act8_gemv q4g_gemv = {SQ_TYPE_Q4G, 2, GV_ROWS, row_consts,
                                      {{gv_0_0_1, gv_0_0_4}, {gv_0_1_1, gv_0_1_4}, {NULL, NULL}}};
static const sq_act8_gemv q8g_gemv = {SQ_TYPE_Q8G, 2, GV_ROWS, row_consts,
                                      {{gv_1_0_1, gv_1_0_4}, {gv_1_1_1, gv_1_1_4}, {NULL, NULL}}};

SQ_ACT8_ENTRY_POINTS(ACT8_NEON_GETTER, blocks_0, blocks_1, NT_MAX, row_consts, ACT8_TILES, &q8g_gemv, &q4g_gemv)

#else

const sq_qmatmul_fn *ACT8_NEON_GETTER(void) { return NULL; }

#endif
