/* kernels_quant_ref.c - the scalar reference matmul for group-quantized weights (q8g,
 * q6g, q5g, q4g, q3g): the specification the SIMD quantized kernels are tested against, and the
 * fallback where a variant has none (NEON, plain builds).
 *
 * It computes exactly "dequantized weights x f32 activations": every weight is decoded to
 * w = s * (float)(q - z) (sq_qrow_dequant's value; exact in float, as s has 11 significant
 * bits and q - z at most 9), then accumulated like kernels_ref.c: acc = 0.0f, acc +=
 * x[c] * w[c] for c = 0..cols-1 in ascending order. So a quantized matmul gives the same
 * bits as sq_matmul_f32_ref on the dequantized matrix. Rows are decoded 256 columns at a
 * time into a stack buffer and each segment is used by every token (the running sums wait
 * in y), so the reference allocates nothing and decodes each weight once per call.
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#define SEG_CHUNKS 8 /* 256 columns per decoded segment */

static void qmatmul_ref(sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                        int64_t T, int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    const sq_qlayout L = sq_qlayout_of(type, q, cols);
    float seg[SEG_CHUNKS * SQ_QCHUNK];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t = 0; t < T; t++) y[t * ldy + r] = 0.0f;
        for (int64_t c0 = 0; c0 < L.n_chunks; c0 += SEG_CHUNKS) {
            const int64_t c1 = c0 + SEG_CHUNKS < L.n_chunks ? c0 + SEG_CHUNKS : L.n_chunks;
            const int64_t k0 = c0 * SQ_QCHUNK, k1 = c1 * SQ_QCHUNK < cols ? c1 * SQ_QCHUNK : cols;
            sq_qrow_dequant_chunks(type, q, &L, cols, row, c0, c1, seg);
            for (int64_t t = 0; t < T; t++) {
                const float *xt = x + t * cols;
                float acc = y[t * ldy + r];
                for (int64_t c = k0; c < k1; c++) acc += xt[c] * seg[c - k0];
                y[t * ldy + r] = acc;
            }
        }
    }
}

void sq_qmatmul_q8g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_ref(SQ_TYPE_Q8G, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);
}
void sq_qmatmul_q4g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_ref(SQ_TYPE_Q4G, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);
}
void sq_qmatmul_q3g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_ref(SQ_TYPE_Q3G, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);
}
void sq_qmatmul_q5g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_ref(SQ_TYPE_Q5G, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);
}
void sq_qmatmul_q6g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_ref(SQ_TYPE_Q6G, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);
}
