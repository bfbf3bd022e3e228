/* linalg.c - LAPACKE/CBLAS wrappers for the quantizers (see linalg.h).
 *
 * The Cholesky-of-the-inverse step follows GPTQ (arXiv:2210.17323, IST-DASLab/gptq
 * gptq.py: cholesky -> cholesky_inverse -> cholesky(upper=True)) with the row-major/uplo
 * rule of ALGORITHMS.md §2.5: on a row-major buffer every call uses uplo 'L'. Dimensions
 * are checked against the BLAS integer width; no allocation happens here.
 */
#include <limits.h>
#include <pthread.h>

#include <cblas.h>
#include <lapacke.h>

#include "linalg.h"

/* Nesting depth and the setting to restore, shared by every thread of the process: the
 * first caller makes OpenBLAS single-threaded, the last one restores it. */
static pthread_mutex_t serial_lock = PTHREAD_MUTEX_INITIALIZER;
static int serial_depth, serial_saved;

void sq_linalg_serial_begin(void) {
    pthread_mutex_lock(&serial_lock);
    if (serial_depth++ == 0) {
        serial_saved = openblas_get_num_threads();
        if (serial_saved != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&serial_lock);
}

void sq_linalg_serial_end(void) {
    pthread_mutex_lock(&serial_lock);
    if (serial_depth > 0 && --serial_depth == 0 && serial_saved > 1) openblas_set_num_threads(serial_saved);
    pthread_mutex_unlock(&serial_lock);
}

static sq_status check_dim(const char *fn, int64_t n) {
    if (n < 1 || n > INT_MAX) return sq_errorf(SQ_ERR_ARG, "%s: matrix order %lld out of range", fn, (long long)n);
    return SQ_OK;
}

static void zero_lower(double *a, int64_t n) {
    for (int64_t i = 1; i < n; i++)
        for (int64_t j = 0; j < i; j++) a[i * n + j] = 0.0;
}

/* LAPACK potrf with uplo 'L' on the column-major view of our row-major buffer: reads and
 * writes our upper triangle. Returns LAPACK's info. */
static lapack_int potrf_upper(double *a, int64_t n) {
    return LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
}

sq_status sq_linalg_chol_upper(double *a, int64_t n, int64_t *minor) {
    if (minor) *minor = 0;
    sq_status st = check_dim(__func__, n);
    if (st) return st;
    sq_linalg_serial_begin();
    lapack_int info = potrf_upper(a, n);
    sq_linalg_serial_end();
    if (info < 0) return sq_errorf(SQ_ERR_INTERNAL, "%s: dpotrf argument %d invalid", __func__, (int)-info);
    if (info > 0) {
        if (minor) *minor = info;
        return sq_errorf(SQ_ERR_ARG, "%s: matrix is not positive definite (leading minor %d)", __func__, (int)info);
    }
    zero_lower(a, n);
    return SQ_OK;
}

sq_status sq_linalg_inv_chol_upper(double *a, int64_t n, int64_t *minor) {
    if (minor) *minor = 0;
    sq_status st = check_dim(__func__, n);
    if (st) return st;
    sq_linalg_serial_begin();
    const char *step = "dpotrf(A)";
    lapack_int info = potrf_upper(a, n);
    if (info == 0) {
        step = "dpotri";
        info = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
    }
    if (info == 0) {
        step = "dpotrf(A^-1)";
        info = potrf_upper(a, n);
    }
    sq_linalg_serial_end();
    if (info < 0) return sq_errorf(SQ_ERR_INTERNAL, "%s: %s argument %d invalid", __func__, step, (int)-info);
    if (info > 0) {
        if (minor) *minor = info;
        return sq_errorf(SQ_ERR_ARG, "%s: %s: matrix is not positive definite (leading minor %d)", __func__, step,
                         (int)info);
    }
    zero_lower(a, n);
    return SQ_OK;
}

void sq_linalg_sgemm_sub(float *c, int64_t ldc, const float *a, int64_t lda, const float *b, int64_t ldb,
                         int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    SQ_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, -1.0f, a,
                (blasint)lda, b, (blasint)ldb, 1.0f, c, (blasint)ldc);
}

void sq_linalg_dgemm_nt(double *c, int64_t ldc, const double *a, int64_t lda, const double *b, int64_t ldb,
                        int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0) return;
    SQ_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = 0.0;
        return;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)n, (blasint)k, 1.0, a, (blasint)lda, b,
                (blasint)ldb, 0.0, c, (blasint)ldc);
}
