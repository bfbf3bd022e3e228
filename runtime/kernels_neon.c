/* kernels_neon.c - AArch64 NEON kernels: matmul for f32, f16 and bf16 weights and for
 * group-quantized q8g/q6g/q5g/q4g/q3g weights (docs/sqz-format.md) with f32 activations, dot, axpy
 * and bulk half conversions.
 *
 * Deliberately simple (it is tested under emulation, not tuned on hardware): every y
 * element is one dot product with four 4-lane accumulators over 16-column chunks, whole
 * 4-column chunks of the tail into the first, the last 1-3 columns (zero-padded) into the
 * second, then (a0 + a1) + (a2 + a3) summed across lanes. Half and bfloat16 rows are
 * widened 256 columns at a time into a stack buffer, once per block of up to 8 tokens.
 * Piece boundaries fall on 16-column chunks, so the order never depends on T or rows.
 * Quantized rows are dequantized the same way, a piece of 8 code chunks at a time, to
 * exactly the reference's s * (float)(q - z) (integer subtraction, one rounding), so they
 * differ from kernels_quant_ref.c only in the summation order.
 * On 32-bit ARM or without NEON this file provides no table and the reference is used.
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#if defined(__ARM_NEON) && defined(__aarch64__)

#include <arm_neon.h>
#include <string.h>

#define PIECE 256 /* columns widened at a time (a multiple of 16) */
#define TOK 8     /* tokens sharing one widened piece */

/* ===== Dot-product accumulator ===== */

typedef struct {
    float32x4_t a0, a1, a2, a3;
} acc4;

static inline void acc_init(acc4 *s) {
    s->a0 = s->a1 = s->a2 = s->a3 = vdupq_n_f32(0.0f);
}

/* Adds x[0..n) . w[0..n) to s. n is a multiple of 16 except for the last piece of a row. */
static inline void acc_add(acc4 *s, const float *x, const float *w, int64_t n) {
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        s->a0 = vfmaq_f32(s->a0, vld1q_f32(x + c), vld1q_f32(w + c));
        s->a1 = vfmaq_f32(s->a1, vld1q_f32(x + c + 4), vld1q_f32(w + c + 4));
        s->a2 = vfmaq_f32(s->a2, vld1q_f32(x + c + 8), vld1q_f32(w + c + 8));
        s->a3 = vfmaq_f32(s->a3, vld1q_f32(x + c + 12), vld1q_f32(w + c + 12));
    }
    for (; c + 4 <= n; c += 4) s->a0 = vfmaq_f32(s->a0, vld1q_f32(x + c), vld1q_f32(w + c));
    if (c < n) {
        float xb[4] = {0}, wb[4] = {0};
        memcpy(xb, x + c, (size_t)(n - c) * sizeof(float));
        memcpy(wb, w + c, (size_t)(n - c) * sizeof(float));
        s->a1 = vfmaq_f32(s->a1, vld1q_f32(xb), vld1q_f32(wb));
    }
}

static inline float acc_sum(const acc4 *s) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(s->a0, s->a1), vaddq_f32(s->a2, s->a3)));
}

/* ===== Widening ===== */

static inline float32x4_t widen4_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline float32x4_t widen4_bf16(const uint16_t *p) {
    return vreinterpretq_f32_u32(vshlq_n_u32(vmovl_u16(vld1_u16(p)), 16));
}

static void f16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, widen4_f16(src + i));
    for (; i < n; i++) dst[i] = sq_f16_to_f32(src[i]);
}

static void bf16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, widen4_bf16(src + i));
    for (; i < n; i++) dst[i] = sq_bf16_to_f32(src[i]);
}

/* ===== Matmul ===== */

typedef void (*widen_fn)(float *dst, const uint16_t *src, int64_t n);

/* widen == NULL: f32 weights, used in place. */
static void matmul_any(widen_fn widen, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                       int64_t r0, int64_t r1, int64_t cols) {
    float buf[PIECE];
    for (int64_t r = r0; r < r1; r++) {
        const char *row = (const char *)w + (size_t)r * rb;
        for (int64_t t0 = 0; t0 < T; t0 += TOK) {
            int nt = (int)(T - t0 < TOK ? T - t0 : TOK);
            acc4 s[TOK];
            for (int t = 0; t < nt; t++) acc_init(&s[t]);
            for (int64_t c = 0; c < cols; c += PIECE) {
                int64_t n = cols - c < PIECE ? cols - c : PIECE;
                const float *wp;
                if (widen) {
                    widen(buf, (const uint16_t *)(const void *)row + c, n);
                    wp = buf;
                } else {
                    wp = (const float *)(const void *)row + c;
                }
                for (int t = 0; t < nt; t++) acc_add(&s[t], x + (t0 + t) * cols + c, wp, n);
            }
            for (int t = 0; t < nt; t++) y[(t0 + t) * ldy + r] = acc_sum(&s[t]);
        }
    }
}

static void matmul_f32(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                       int64_t r1, int64_t cols) {
    matmul_any(NULL, y, ldy, x, w, rb, T, r0, r1, cols);
}
static void matmul_f16(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                       int64_t r1, int64_t cols) {
    matmul_any(f16_to_f32, y, ldy, x, w, rb, T, r0, r1, cols);
}
static void matmul_bf16(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols) {
    matmul_any(bf16_to_f32, y, ldy, x, w, rb, T, r0, r1, cols);
}

/* ===== Group-quantized weights ===== */

_Static_assert(PIECE % SQ_QCHUNK == 0, "a piece holds whole code chunks");

/* 16 codes c -> 16 floats s * (c - z) at dst. */
static inline void dequant16(uint8x16_t c, int16x8_t z, float32x4_t s, float *dst) {
    const int16x8_t lo = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(c))), z);
    const int16x8_t hi = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(c))), z);
    vst1q_f32(dst, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), s));
    vst1q_f32(dst + 4, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), s));
    vst1q_f32(dst + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), s));
    vst1q_f32(dst + 12, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), s));
}

/* Chunks [c0, c1) of a quantized row as floats at dst (32 per chunk; the codes past cols
 * in the last chunk decode too, and the caller never reads them). */
static void dequant_chunks(sq_type type, const sq_qlayout *L, bool asym, const uint8_t *row, int64_t c0, int64_t c1,
                           float *dst) {
    for (int64_t c = c0; c < c1; c++, dst += SQ_QCHUNK) {
        const uint8_t *p = row + L->codes_off + (size_t)c * L->chunk_bytes;
        const int64_t g = c / L->group_chunks;
        const float32x4_t s = vdupq_n_f32(sq_qrow_scale(row, g));
        const int16x8_t z = vdupq_n_s16((int16_t)sq_qrow_zero(L, asym, row, g));
        uint8x16_t a, b;
        if (type == SQ_TYPE_Q8G) {
            a = vld1q_u8(p);
            b = vld1q_u8(p + 16);
        } else if (type == SQ_TYPE_Q4G) {
            const uint8x16_t v = vld1q_u8(p);
            a = vandq_u8(v, vdupq_n_u8(0x0F));
            b = vshrq_n_u8(v, 4);
        } else {
            uint8_t codes[SQ_QCHUNK];
            sq_qchunk_decode(type, p, codes);
            a = vld1q_u8(codes);
            b = vld1q_u8(codes + 16);
        }
        dequant16(a, z, s, dst);
        dequant16(b, z, s, dst + 16);
    }
}

static void qmatmul_any(sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    const sq_qlayout L = sq_qlayout_of(type, q, cols);
    float buf[PIECE];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * rb;
        for (int64_t t0 = 0; t0 < T; t0 += TOK) {
            int nt = (int)(T - t0 < TOK ? T - t0 : TOK);
            acc4 s[TOK];
            for (int t = 0; t < nt; t++) acc_init(&s[t]);
            for (int64_t c = 0; c < cols; c += PIECE) {
                const int64_t n = cols - c < PIECE ? cols - c : PIECE;
                const int64_t ch0 = c / SQ_QCHUNK;
                dequant_chunks(type, &L, q.asym, row, ch0, ch0 + (n + SQ_QCHUNK - 1) / SQ_QCHUNK, buf);
                for (int t = 0; t < nt; t++) acc_add(&s[t], x + (t0 + t) * cols + c, buf, n);
            }
            for (int t = 0; t < nt; t++) y[(t0 + t) * ldy + r] = acc_sum(&s[t]);
        }
    }
}

static void qmatmul_q8g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_any(SQ_TYPE_Q8G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q4g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_any(SQ_TYPE_Q4G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q3g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_any(SQ_TYPE_Q3G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}

static void qmatmul_q5g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_any(SQ_TYPE_Q5G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q6g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_any(SQ_TYPE_Q6G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}

static const sq_qmatmul_fn quant_table[SQ_TYPE_COUNT] = {
    [SQ_TYPE_Q8G] = qmatmul_q8g, [SQ_TYPE_Q4G] = qmatmul_q4g, [SQ_TYPE_Q3G] = qmatmul_q3g,
    [SQ_TYPE_Q5G] = qmatmul_q5g, [SQ_TYPE_Q6G] = qmatmul_q6g};

const sq_qmatmul_fn *sq_kernels_neon_quant(void) { return quant_table; }

/* ===== Vector helpers ===== */

static float dot_f32(const float *a, const float *b, int64_t n) {
    acc4 s;
    acc_init(&s);
    acc_add(&s, a, b, n);
    return acc_sum(&s);
}

static void axpy_f32(float *y, float a, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static const sq_kernels table = {
    .name = "neon",
    .matmul = {[SQ_TYPE_F32] = matmul_f32, [SQ_TYPE_F16] = matmul_f16, [SQ_TYPE_BF16] = matmul_bf16},
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .f16_to_f32 = f16_to_f32,
    .bf16_to_f32 = bf16_to_f32,
};

const sq_kernels *sq_kernels_neon_table(void) { return &table; }

#else

const sq_kernels *sq_kernels_neon_table(void) { return NULL; }
const sq_qmatmul_fn *sq_kernels_neon_quant(void) { return NULL; }

#endif
