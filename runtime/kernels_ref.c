/* kernels_ref.c - the scalar reference kernels: the specification every SIMD variant is
 * tested against, and the fallback on CPUs without one.
 *
 * Deliberately plain: one output element at a time, accumulated in float in ascending
 * column order (acc += x[c] * w[c], c = 0..cols-1, starting from 0.0f), with half and
 * bfloat16 weights widened by the exact converters of types.c. Accumulating in float
 * (not double) keeps the reference honest about what float kernels can achieve; the
 * tests bound SIMD-vs-reference differences by sqrt(cols)·eps·|x|·|w|. Whether the
 * compiler fuses the multiply-add is left to it (GCC in ISO C mode does not).
 */
#include "kernels_internal.h"


/* ===== Matmul ===== */

/* y[t*ldy + r] = sum_c x[t*cols + c] * W[r][c], for t < T, r0 <= r < r1. */
#define REF_MATMUL(NAME, ELT, CONVERT)                                                          \
    void NAME(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T, \
              int64_t r0, int64_t r1, int64_t cols) {                                           \
        for (int64_t r = r0; r < r1; r++) {                                                     \
            const ELT *wr = (const ELT *)(const void *)((const char *)w + (size_t)r * row_bytes); \
            for (int64_t t = 0; t < T; t++) {                                                   \
                const float *xt = x + t * cols;                                                 \
                float acc = 0.0f;                                                               \
                for (int64_t c = 0; c < cols; c++) acc += xt[c] * CONVERT(wr[c]);               \
                y[t * ldy + r] = acc;                                                           \
            }                                                                                   \
        }                                                                                       \
    }

#define IDENTITY(v) (v)
REF_MATMUL(sq_matmul_f32_ref, float, IDENTITY)
REF_MATMUL(sq_matmul_f16_ref, uint16_t, sq_f16_to_f32)
REF_MATMUL(sq_matmul_bf16_ref, uint16_t, sq_bf16_to_f32)

/* ===== Vector helpers ===== */

float sq_dot_f32_ref(const float *a, const float *b, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

void sq_axpy_f32_ref(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void sq_f16_to_f32_ref(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = sq_f16_to_f32(src[i]);
}

void sq_bf16_to_f32_ref(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = sq_bf16_to_f32(src[i]);
}

const sq_kernels sq_kernels_ref_table = {
    .name = "ref",
    .matmul = {[SQ_TYPE_F32] = sq_matmul_f32_ref,
               [SQ_TYPE_F16] = sq_matmul_f16_ref,
               [SQ_TYPE_BF16] = sq_matmul_bf16_ref},
    .qmatmul = {[SQ_TYPE_Q8G] = sq_qmatmul_q8g_ref,
                [SQ_TYPE_Q4G] = sq_qmatmul_q4g_ref,
                [SQ_TYPE_Q3G] = sq_qmatmul_q3g_ref,
                [SQ_TYPE_S24_F16] = sq_smatmul_s24_f16_ref,
                [SQ_TYPE_S24_F32] = sq_smatmul_s24_f32_ref,
                [SQ_TYPE_S48_F16] = sq_smatmul_s48_f16_ref,
                [SQ_TYPE_S48_F32] = sq_smatmul_s48_f32_ref,
                [SQ_TYPE_SMASK_F16] = sq_smatmul_smask_f16_ref,
                [SQ_TYPE_SMASK_F32] = sq_smatmul_smask_f32_ref,
                [SQ_TYPE_Q5G] = sq_qmatmul_q5g_ref,
                [SQ_TYPE_Q6G] = sq_qmatmul_q6g_ref},
    .qmatmul_a8 = {[SQ_TYPE_Q8G] = sq_qmatmul_a8_q8g_ref, [SQ_TYPE_Q4G] = sq_qmatmul_a8_q4g_ref},
    .dot_f32 = sq_dot_f32_ref,
    .axpy_f32 = sq_axpy_f32_ref,
    .f16_to_f32 = sq_f16_to_f32_ref,
    .bf16_to_f32 = sq_bf16_to_f32_ref,
};
