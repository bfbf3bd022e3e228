/* kernels.h - the numeric kernels of the executor, as a table chosen once at run time.
 *
 * Every kernel has an always-compiled scalar reference (kernels_ref.c): it is the test
 * oracle and the fallback. SIMD variants (kernels_avx2.c, kernels_avx512.c,
 * kernels_neon.c) are compiled with per-file flags and picked by CPU detection;
 * SQUISH_FORCE_REF=1 (or SQUISH_KERNELS=ref|avx2|avx512|neon) overrides the choice.
 *
 * Matmul layout: y[t, r] = sum_c x[t, c] * W[r, c] for tokens t in [0, T) and weight rows
 * r in [r0, r1); x is [T, cols] row-major, W is [rows, cols] row-major with row_bytes bytes
 * per row, y is [T, ldy] row-major. Each y element is computed by exactly one call with a
 * fixed summation order that does not depend on r0/r1, so splitting rows across threads
 * gives bitwise-identical results at any thread count.
 */
#ifndef SQ_KERNELS_H
#define SQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

typedef void (*sq_matmul_fn)(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                             int64_t T, int64_t r0, int64_t r1, int64_t cols);
/* The same for group-quantized weights, whose rows also depend on the group and zero points. */
typedef void (*sq_qmatmul_fn)(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                              int64_t T, int64_t r0, int64_t r1, int64_t cols, sq_qparams q);

typedef struct {
    const char *name;                    /* "ref", "avx2", "avx512", "neon" */
    sq_matmul_fn matmul[SQ_TYPE_COUNT];  /* float weight types, indexed by sq_type */
    sq_qmatmul_fn qmatmul[SQ_TYPE_COUNT];/* quantized and sparse weight types, indexed by sq_type */
    /* q8g and q4g tensors with the ACT8 flag (q.act8): int8 activations, the function
     * docs/quantization.md defines (sq_matmul sends sq_mat.act8 ones here); NULL for other types. */
    sq_qmatmul_fn qmatmul_a8[SQ_TYPE_COUNT];
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n); /* y += a*x */
    void (*f16_to_f32)(float *dst, const uint16_t *src, int64_t n);
    void (*bf16_to_f32)(float *dst, const uint16_t *src, int64_t n);
} sq_kernels;

/* The table for this CPU (selected on first call; thread-safe after that). */
const sq_kernels *sq_kernels_get(void);
/* The scalar reference table. */
const sq_kernels *sq_kernels_ref(void);
/* A named table if it is compiled in and this CPU supports it, else NULL. Tests use this
 * to compare every available variant with the reference. */
const sq_kernels *sq_kernels_by_name(const char *name);
/* Names of all variants compiled into this binary, NULL-terminated. */
const char *const *sq_kernels_compiled(void);

/* ===== Matrices and the threaded matmul ===== */

/* A borrowed view of a 2-D weight. */
typedef struct {
    sq_type type;
    sq_qparams q;
    int64_t rows, cols;
    size_t row_bytes;
    const void *data;
    bool act8; /* q8g/q4g with the ACT8 flag: int8 activations (qmatmul_a8) */
} sq_mat;

/* y[T, w->rows] = x[T, w->cols] . W^T, rows split across threads (OpenMP) when the work
 * is large enough. Deterministic at any thread count. */
void sq_matmul(const sq_kernels *k, float *y, const float *x, const sq_mat *w, int64_t T);

/* Copies row r of w into dst as floats (dst has w->cols entries). */
void sq_mat_row_f32(const sq_kernels *k, float *dst, const sq_mat *w, int64_t r);

/* ===== Threads ===== */

/* Number of threads used by sq_matmul and the forward pass: set by sq_set_num_threads
 * (e.g. from -t N), else OMP_NUM_THREADS, else the number of cores. 1 without OpenMP. */
int sq_num_threads(void);
void sq_set_num_threads(int n);

#endif
