/* kernels_neon.c - AArch64 NEON kernels: matmul for f32, f16 and bf16 weights with f32
 * activations, dot, axpy and bulk half conversions.
 *
 * Deliberately simple (it is tested under emulation, not tuned on hardware): every y
 * element is one dot product with four 4-lane accumulators over 16-column chunks, whole
 * 4-column chunks of the tail into the first, the last 1-3 columns (zero-padded) into the
 * second, then (a0 + a1) + (a2 + a3) summed across lanes. Half and bfloat16 rows are
 * widened 256 columns at a time into a stack buffer, once per block of up to 8 tokens.
 * Piece boundaries fall on 16-column chunks, so the order never depends on T or rows.
 * On 32-bit ARM or without NEON this file provides no table and the reference is used.
 */
#include "kernels_internal.h"

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

#endif
