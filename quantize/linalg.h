/* linalg.h - thin checked wrappers over LAPACKE/CBLAS (OpenBLAS) for the quantizers.
 *
 * Matrices are row-major. Determinism: OpenBLAS splits work differently at different
 * thread counts, so every caller brackets its BLAS/LAPACK use with
 * sq_linalg_serial_begin()/_end() and parallelises over independent rows itself, in
 * chunks that do not depend on the thread count. The GEMM wrappers are meant for such
 * chunks (called from inside the caller's parallel region).
 */
#ifndef SQ_QUANT_LINALG_H
#define SQ_QUANT_LINALG_H

#include <stdint.h>

#include "../runtime/status.h"

/* Makes BLAS/LAPACK single-threaded until the matching _end(). Nestable and safe to call
 * from several threads (the first begin saves the setting, the last end restores it); call
 * outside OpenMP parallel regions. */
void sq_linalg_serial_begin(void);
void sq_linalg_serial_end(void);

/* In place: the upper triangle (row <= col) of the symmetric a [n x n] is replaced by the
 * upper Cholesky factor R with A = R^T R; the strictly lower part is set to 0.
 * SQ_ERR_ARG when A is not positive definite (*minor, if given, = order of the failing
 * leading minor, else 0). */
sq_status sq_linalg_chol_upper(double *a, int64_t n, int64_t *minor);

/* In place: a [n x n] symmetric positive definite (upper triangle read) is replaced by
 * U, the upper Cholesky factor of A^-1 (A^-1 = U^T U), strictly lower part 0. This is
 * GPTQ's step dpotrf -> dpotri -> dpotrf, all with LAPACK uplo 'L' on the row-major buffer
 * (LAPACK sees the transpose, so its lower triangle is our upper one; mixing uplo between
 * the calls would read the triangle dpotri did not write). SQ_ERR_ARG when A, or its
 * computed inverse, is not positive definite (*minor as above). */
sq_status sq_linalg_inv_chol_upper(double *a, int64_t n, int64_t *minor);

/* C[m x n] -= A[m x k] * B[k x n] (float; lda/ldb/ldc are row strides). */
void sq_linalg_sgemm_sub(float *c, int64_t ldc, const float *a, int64_t lda, const float *b, int64_t ldb,
                         int64_t m, int64_t n, int64_t k);

/* C[m x n] = A[m x k] * B[n x k]^T (double). */
void sq_linalg_dgemm_nt(double *c, int64_t ldc, const double *a, int64_t lda, const double *b, int64_t ldb,
                        int64_t m, int64_t n, int64_t k);

#endif
