/* kernels_internal.h - what the kernel files share and nobody else needs: the scalar
 * reference kernels one by one (SIMD tables fall back to them for entries they do not
 * accelerate), the reference table, and one getter per SIMD variant.
 *
 * A SIMD getter returns NULL when its file was compiled without the ISA flags it needs
 * (e.g. someone builds kernels_avx2.c with plain -O2), so a misconfigured build degrades
 * to the reference instead of failing to link or executing illegal instructions.
 * Whether the running CPU supports a variant is decided in kernels.c, not here.
 */
#ifndef SQ_KERNELS_INTERNAL_H
#define SQ_KERNELS_INTERNAL_H

#include "kernels.h"

/* ===== Reference kernels (kernels_ref.c) ===== */

void sq_matmul_f32_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                       int64_t T, int64_t r0, int64_t r1, int64_t cols);
void sq_matmul_f16_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                       int64_t T, int64_t r0, int64_t r1, int64_t cols);
void sq_matmul_bf16_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                        int64_t T, int64_t r0, int64_t r1, int64_t cols);
/* Group-quantized weights (kernels_quant_ref.c): dequantize, then the f32 reference order. */
void sq_qmatmul_q8g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
void sq_qmatmul_q4g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
void sq_qmatmul_q3g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
void sq_qmatmul_q5g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
void sq_qmatmul_q6g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
/* Sparse weights (kernels_sparse_ref.c): the stored weights only, ascending columns. */
#define SQ_SMATMUL_DECL(NAME)                                                                                    \
    void NAME(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T, int64_t r0,     \
              int64_t r1, int64_t cols, sq_qparams q);
SQ_SMATMUL_DECL(sq_smatmul_s24_f16_ref)
SQ_SMATMUL_DECL(sq_smatmul_s24_f32_ref)
SQ_SMATMUL_DECL(sq_smatmul_s48_f16_ref)
SQ_SMATMUL_DECL(sq_smatmul_s48_f32_ref)
SQ_SMATMUL_DECL(sq_smatmul_smask_f16_ref)
SQ_SMATMUL_DECL(sq_smatmul_smask_f32_ref)
float sq_dot_f32_ref(const float *a, const float *b, int64_t n);
void sq_axpy_f32_ref(float *y, float a, const float *x, int64_t n);
void sq_f16_to_f32_ref(float *dst, const uint16_t *src, int64_t n);
void sq_bf16_to_f32_ref(float *dst, const uint16_t *src, int64_t n);

extern const sq_kernels sq_kernels_ref_table;

/* ===== SIMD variants (NULL when compiled without their flags) ===== */

const sq_kernels *sq_kernels_avx2_table(void);   /* kernels_avx2.c   (x86 only) */
const sq_kernels *sq_kernels_avx512_table(void); /* kernels_avx512.c (x86 only) */
const sq_kernels *sq_kernels_neon_table(void);   /* kernels_neon.c   (ARM only) */

/* Quantized matmuls of a SIMD variant, indexed by sq_type (NULL entries: the reference is
 * used). kernels.c merges them into the variant's table. NULL when compiled without flags. */
const sq_qmatmul_fn *sq_kernels_avx2_quant(void);   /* kernels_quant_avx2.c   (x86 only) */
const sq_qmatmul_fn *sq_kernels_avx512_quant(void); /* kernels_quant_avx512.c (x86 only) */
const sq_qmatmul_fn *sq_kernels_neon_quant(void);   /* kernels_neon.c         (ARM only) */
/* Sparse matmuls of a SIMD variant, the same way (kernels_sparse_<isa>.c). */
const sq_qmatmul_fn *sq_kernels_avx2_sparse(void);   /* kernels_sparse_avx2.c   (x86 only) */
const sq_qmatmul_fn *sq_kernels_avx512_sparse(void); /* kernels_sparse_avx512.c (x86 only) */

/* A 64-byte-aligned scratch buffer of at least n floats, private to the calling thread
 * (kernels.c). It is kept and reused by later calls on the same thread, so a kernel
 * allocates at most once per thread, never in its loops; it is released only when it
 * has to grow. Returns NULL if memory is exhausted. One kernel call uses it at a time. */
float *sq_kernels_scratch(size_t n);

/* Shared by the variants so they agree on inlining. */
#if defined(__GNUC__)
#define SQ_INLINE static inline __attribute__((always_inline))
#else
#define SQ_INLINE static inline
#endif

#endif
