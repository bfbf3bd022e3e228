/* quant_internal.h - helpers shared by rtn.c, gptq.c and awq.c (not part of the API). */
#ifndef SQ_QUANT_INTERNAL_H
#define SQ_QUANT_INTERNAL_H

#include <math.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../runtime/kernels.h"
#include "quant.h"

/* Thread count for a call: the request, else sq_num_threads(). */
static inline int quant_threads(int32_t requested) {
    int n = requested > 0 ? (int)requested : sq_num_threads();
    return n > 0 ? n : 1;
}

static inline int quant_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* SQ_ERR_ARG naming the first non-finite element of a [rows x cols] float matrix. */
sq_status quant_check_finite(const char *fn, const char *what, const float *a, int64_t rows, int64_t cols);

/* Rounds a scale to the nearest fp16 value, its magnitude kept within [2^-24, 65504] and
 * its sign kept (NaN becomes 2^-24). */
float quant_scale_round(float s);

#endif
