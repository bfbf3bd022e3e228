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
#include "quant_internal.h"

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
/* ACT8 q8g/q4g (kernels_quant_ref.c): int8 activations, the specification of
 * docs/quantization.md; no allocation (activations are quantized 8 chunks at a time). */
void sq_qmatmul_a8_q8g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                           int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
void sq_qmatmul_a8_q4g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                           int64_t r0, int64_t r1, int64_t cols, sq_qparams q);

/* ===== int8 activations (kernels_quant_ref.c; docs/quantization.md) ===== */

/* The one activation quantizer: chunks [c0, c1) of a row x of `cols` floats (chunk c =
 * columns 32c..32c+31, zero past cols) to codes q[32 * (c - c0) + j] in [-127, 127], scale
 * d[c - c0] = max|x| / 127 and code sum s[c - c0]; x_j / d rounded half away from zero; codes
 * 0 when d is 0 or not finite (d kept: a NaN/inf activation gives a NaN output). */
void sq_act8_quantize(const float *x, int64_t cols, int64_t c0, int64_t c1, int8_t *q, float *d, int32_t *s);

/* T token rows quantized for the SIMD ACT8 kernels, in a per-thread scratch (sq_kernels_scratch). */
typedef struct {
    int64_t nc, ng;     /* chunks and groups per row */
    size_t ldq;         /* bytes between tokens in q: nc * 32 rounded up to 64 */
    const int8_t *q;    /* [T][ldq] codes (64-byte aligned; 64 readable bytes past the last chunk) */
    const float *d;     /* [T][nc] chunk scales */
    const int32_t *s;   /* [T][nc] code sums */
    const float *gz;    /* [T][ng] per group: sum over its chunks (in order) of d_c * s_c, in float */
    float *extra;       /* `extra_floats` floats (64-byte aligned) for the kernel's own use */
} sq_act8_rows;
/* Quantizes x[T][cols] for group layout L (false, nothing done, if memory is exhausted). */
bool sq_act8_prepare(sq_act8_rows *a, const float *x, int64_t T, int64_t cols, int64_t group_chunks,
                     size_t extra_floats);

/* What a SIMD ACT8 file provides to the shared driver: a block kernel computing y for nr (1
 * or 4) rows at w0 and nt tokens from t0, given each row's float scales sc and s_g * z_g sz
 * (lds floats apart), and the function filling those per row. */
typedef void (*sq_act8_block_fn)(float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0, const uint8_t *w0,
                                 size_t rb, const sq_qlayout *L, const float *sc, const float *sz, size_t lds);
typedef void (*sq_act8_rowc_fn)(const uint8_t *row, const sq_qlayout *L, bool asym, int64_t ng, float *sc, float *sz);
/* An optional tiled GEMM for many tokens: rows [r0, r1) in tiles of `tile_rows`, each packed
 * once (sq_act8_pack_tile) and reused by every token; micro[nt - 1] computes y[t0 .. t0 + nt)
 * for the tile's first nr rows (lanes past nr are not stored), nt <= tokens. */
typedef void (*sq_act8_micro_fn)(float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0, const uint8_t *pk,
                                 const float *sc, const float *sz, int64_t gc, int nr);
typedef struct {
    int64_t min_T;  /* used from this T on */
    int tile_rows;
    bool q4_only;   /* q8g keeps the streaming kernels */
    int tokens;     /* tokens per micro-kernel call at most */
    const sq_act8_micro_fn *micro;
} sq_act8_gemm;
/* micro_<NT>: a sq_act8_micro_fn calling the file's inline gemm_micro(NT, ...). */
#define SQ_ACT8_MICRO_FN(NT_)                                                                                     \
    static void micro_##NT_(float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0, const uint8_t *pk,        \
                            const float *sc, const float *sz, int64_t gc, int nr) {                               \
        gemm_micro(NT_, y, ldy, a, t0, pk, sc, sz, gc, nr);                                                       \
    }
/* Packs a tile's rows for the micro-kernels: 4 consecutive codes of each row side by side, per
 * 4-column step; scales and s_g * z_g as [group][row] (kernels_quant_ref.c has the layout). */
void sq_act8_pack_tile(bool q4, int tile_rows, uint8_t *pk, float *sc, float *sz, const uint8_t *w, size_t rb,
                       int64_t r, int nr, const sq_qlayout *L, bool asym);
/* block_<Q4>_<NR>_<NT>: a sq_act8_block_fn calling the file's inline block(Q4, NR, NT, ...). */
#define SQ_ACT8_BLOCK_FN(Q4, NR_, NT_)                                                                            \
    static void block_##Q4##_##NR_##_##NT_(float *y, int64_t ldy, const sq_act8_rows *a, int64_t t0,             \
                                           const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc,    \
                                           const float *sz, size_t lds) {                                         \
        block(Q4, NR_, NT_, y, ldy, a, t0, w0, rb, L, sc, sz, lds);                                               \
    }
/* The decode GEMV (T = 1) of a SIMD ACT8 file for one type. One load holds a "unit" of
 * unit_chunks (2 or 4) consecutive chunks of a row, and the token's codes are regrouped once per
 * call to meet them: q4g (16-byte chunks, low and high nibbles split in registers): x[32U * u +
 * 16k + j] = code j of chunk U * u + k and x[32U * u + 16U + 16k + j] = code 16 + j, 4 int32
 * lanes per chunk; q8g (32-byte chunks): x is the token's codes as they are, 8 lanes per chunk.
 * d[lanes * c + j] (j < lanes) = d of chunk c (zero past the last chunk). fn[m][b]
 * computes y for 1 (b = 0) or `rows` (b = 1) rows whose units span 1 << m groups (m = 0:
 * group_chunks a multiple of U or one group per row; 1, 2: groups of U/2, U/4 chunks); sc, sz
 * as sq_act8_block_fn's, padded with at least 16 zeros past n_groups, filled by rowc; a file
 * whose kernels read the scales from the rows themselves sets rowc NULL (sc, sz then unused). */
typedef void (*sq_act8_gemv_fn)(float *y, const int8_t *x, const float *d, const sq_act8_rows *a, const uint8_t *w0,
                                size_t rb, const sq_qlayout *L, const float *sc, const float *sz, size_t lds);
typedef struct {
    sq_type type; /* SQ_TYPE_Q4G or SQ_TYPE_Q8G */
    int unit_chunks, rows;
    sq_act8_rowc_fn rowc;
    sq_act8_gemv_fn fn[3][2];
} sq_act8_gemv;
/* Runs it for T = 1 and a layout it covers (returns false, nothing done, otherwise). */
bool sq_act8_gemv_drive(const sq_act8_gemv *gv, float *y, const float *x, const void *w, size_t rb, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
/* The shared ACT8 driver (kernels_quant_ref.c): the decode GEMV when there is one and it covers
 * (T, layout); else quantizes the T tokens once, then the GEMM when there is one and T >= its
 * min_T, else walks rows in blocks of 4 (then 1) and tokens in ceil(T / nt_max) nearly equal
 * blocks; blocks[nr4 * nt_max + nt - 1] is the kernel for 1 (nr4 = 0) or 4 (nr4 = 1) rows and nt
 * tokens. Falls back to the reference when the scratch cannot be had. Which path runs depends on
 * T and the layout only, so row splits never change the bits. */
void sq_act8_drive(sq_type type, const sq_act8_block_fn *blocks, int nt_max, sq_act8_rowc_fn rowc,
                   const sq_act8_gemm *gemm, const sq_act8_gemv *gemv, float *y, int64_t ldy, const float *x,
                   const void *w, size_t rb, int64_t T, int64_t r0, int64_t r1, int64_t cols, sq_qparams q);
/* gv_<Q8>_<M>_<NR>: a sq_act8_gemv_fn calling the file's inline gv_block(Q8, M, NR, ...). */
#define SQ_ACT8_GEMV_FN(Q8, M, NR_)                                                                              \
    static void gv_##Q8##_##M##_##NR_(float *y, const int8_t *x, const float *d, const sq_act8_rows *a,          \
                                      const uint8_t *w0, size_t rb, const sq_qlayout *L, const float *sc,          \
                                      const float *sz, size_t lds) {                                              \
        gv_block(Q8, M, NR_, y, x, d, a, w0, rb, L, sc, sz, lds);                                               \
    }
/* The q8g/q4g entry points and the table getter of a SIMD ACT8 file, from its block tables
 * (BLOCKS8, BLOCKS4: [2][NT]), row-constant function, GEMM and q8g/q4g decode GEMVs (or NULL). */
#define SQ_ACT8_ENTRY_POINTS(GETTER, BLOCKS8, BLOCKS4, NT, ROWC, GEMM, Q8G_GEMV, Q4G_GEMV)                               \
    static void qmatmul_a8_q8g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,        \
                               int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {                              \
        sq_act8_drive(SQ_TYPE_Q8G, &BLOCKS8[0][0], NT, ROWC, GEMM, Q8G_GEMV, y, ldy, x, w, rb, T, r0, r1, cols, q); \
    }                                                                                                            \
    static void qmatmul_a8_q4g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,        \
                               int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {                              \
        sq_act8_drive(SQ_TYPE_Q4G, &BLOCKS4[0][0], NT, ROWC, GEMM, Q4G_GEMV, y, ldy, x, w, rb, T, r0, r1, cols, q); \
    }                                                                                                            \
    static const sq_qmatmul_fn act8_table[SQ_TYPE_COUNT] = {[SQ_TYPE_Q8G] = qmatmul_a8_q8g,                      \
                                                            [SQ_TYPE_Q4G] = qmatmul_a8_q4g};                     \
    const sq_qmatmul_fn *GETTER(void) { return act8_table; }
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
/* ACT8 matmuls (q8g, q4g) of a SIMD variant, the same way (kernels_act8_<isa>.c); the
 * AVX-512 ones need avx512_vnni, which kernels.c checks. */
const sq_qmatmul_fn *sq_kernels_avx2_act8(void);   /* kernels_act8_avx2.c   (x86 only) */
const sq_qmatmul_fn *sq_kernels_avx512_act8(void); /* kernels_act8_avx512.c (x86 only) */
/* AArch64 (kernels_act8_neon.c): plain NEON, and the same file built with `sdot`
 * (kernels_act8_neon_dotprod.c), which only CPUs with sq_cpu_has_dotprod() may run. */
const sq_qmatmul_fn *sq_kernels_neon_act8(void);         /* (ARM only) */
const sq_qmatmul_fn *sq_kernels_neon_act8_dotprod(void); /* (ARM only) */
int sq_cpu_has_dotprod(void); /* kernels.c: 1 if the CPU has the AArch64 dot product (ARM only) */

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
