/* kernels_sparse_ref.c - the scalar reference matmul for sparse weights (N:M and bitmask
 * rows, docs/sparse-format.md): the specification the SIMD sparse kernels are tested
 * against, and the fallback where a variant has none.
 *
 * It skips the zeros: each output is acc = 0.0f, acc += x[c] * w[c] over the stored
 * weights only, in ascending column order. Since x * 0 added to a float sum changes
 * nothing (for finite x), this equals sq_matmul_f32_ref on the dense matrix (== compare;
 * only the sign of an all-zero sum may differ). Indices are masked and bitmask rows stop
 * after their K values, so a hostile row cannot make it read outside the row or x.
 */
#include "kernels_internal.h"
#include "sparse_internal.h"

static void smatmul_ref(sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                        int64_t T, int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    const sq_slayout L = sq_slayout_of(type, q, cols);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t = 0; t < T; t++) {
            const float *xt = x + t * cols;
            float acc = 0.0f;
            if (L.m) {
                for (int64_t s = 0; s < L.n_vals; s++)
                    acc += xt[s / L.n * L.m + (sq_snm_idx(&L, row, s) & (L.m - 1))] * sq_sval(&L, row, s);
            } else {
                int64_t v = 0;
                for (int64_t b = 0; b < L.meta_bytes && v < L.n_vals; b++) {
                    unsigned mb = row[b];
                    if (8 * b + 8 > cols) mb &= (1u << (cols - 8 * b)) - 1u;
                    while (mb && v < L.n_vals) {
                        const int j = __builtin_ctz(mb);
                        mb &= mb - 1;
                        acc += xt[8 * b + j] * sq_sval(&L, row, v++);
                    }
                }
            }
            y[t * ldy + r] = acc;
        }
    }
}

#define SREF(NAME, TYPE)                                                                                           \
    void NAME(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T, int64_t r0,       \
              int64_t r1, int64_t cols, sq_qparams q) {                                                           \
        smatmul_ref(TYPE, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);                                            \
    }
SREF(sq_smatmul_s24_f16_ref, SQ_TYPE_S24_F16)
SREF(sq_smatmul_s24_f32_ref, SQ_TYPE_S24_F32)
SREF(sq_smatmul_s48_f16_ref, SQ_TYPE_S48_F16)
SREF(sq_smatmul_s48_f32_ref, SQ_TYPE_S48_F32)
SREF(sq_smatmul_smask_f16_ref, SQ_TYPE_SMASK_F16)
SREF(sq_smatmul_smask_f32_ref, SQ_TYPE_SMASK_F32)
