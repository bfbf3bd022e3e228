/* kernels.c - picks the kernel table for this CPU once, and runs matmuls across threads.
 *
 * Selection: SQUISH_FORCE_REF=1 forces the scalar reference; SQUISH_KERNELS=ref|avx2|
 * avx512|neon asks for one variant (ignored with a warning if it is not compiled in or
 * the CPU lacks it); otherwise the best supported variant wins (avx512 > avx2 on x86,
 * neon on ARM). CPU features come from __builtin_cpu_supports, which also checks that
 * the OS saves the wide registers.
 *
 * Quantized weights: each variant's table is its float table (kernels_<isa>.c) with
 * qmatmul[] filled from kernels_quant_<isa>.c, and the reference's quantized kernels where
 * a variant has none (merged once, on first use); sq_matmul sends q8g/q6g/q5g/q4g/q3g matrices
 * to qmatmul with their group parameters, and ACT8 q8g/q4g matrices to qmatmul_a8 (from
 * kernels_act8_<isa>.c: AVX-512 only when the CPU has avx512_vnni, else the AVX2 ones; on
 * AArch64 the `sdot` build of kernels_act8_neon.c when the CPU reports dotprod and
 * SQUISH_NO_DOTPROD is unset, else its plain NEON build; the reference's elsewhere).
 * Sparse weights (docs/sparse-format.md) use the qmatmul slots of their types the same
 * way, from kernels_sparse_<isa>.c.
 *
 * Threading: sq_matmul splits the weight rows into contiguous chunks, one OpenMP
 * `parallel for schedule(static)` iteration each, only when the matmul is big enough to
 * pay for waking threads. Every kernel computes each y element with a summation order
 * that depends only on (T, cols), never on the row range, so any split gives the same
 * bits as one call.
 */
#include "kernels_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define SQ_KERNELS_X86 1
#include <cpuid.h>
#elif defined(__aarch64__) || defined(__arm__)
#define SQ_KERNELS_ARM 1
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

/* ===== CPU features ===== */

#ifdef SQ_KERNELS_X86
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_F16C) != 0;
}

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

static int cpu_has_avx512_vnni(void) {
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
}
#endif

#ifdef SQ_KERNELS_ARM
/* The AArch64 dot product (sdot) as the kernel reports it (Linux; elsewhere 0: plain NEON). */
int sq_cpu_has_dotprod(void) {
#if defined(__aarch64__) && defined(__linux__)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return 0;
#endif
}
#endif

/* ===== Tables ===== */

static const char *const compiled_names[] = {
    "ref",
#ifdef SQ_KERNELS_X86
    "avx2", "avx512",
#endif
#ifdef SQ_KERNELS_ARM
    "neon",
#endif
    NULL};

const char *const *sq_kernels_compiled(void) { return compiled_names; }

const sq_kernels *sq_kernels_ref(void) { return &sq_kernels_ref_table; }

/* A variant's float table completed with quantized kernels: `quant` entries first, then
 * the float table's own, then the reference's. Built by the first caller; concurrent
 * first callers wait for it (a copy of a few hundred bytes). */
typedef struct {
    atomic_int state; /* 0 empty, 1 being built, 2 ready */
    sq_kernels table;
} merged_table;

static const sq_kernels *merged(merged_table *m, const sq_kernels *base, const sq_qmatmul_fn *quant,
                                const sq_qmatmul_fn *sparse, const sq_qmatmul_fn *act8) {
    if (!base) return NULL;
    if (atomic_load_explicit(&m->state, memory_order_acquire) == 2) return &m->table;
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&m->state, &expected, 1, memory_order_acq_rel, memory_order_acquire)) {
        m->table = *base;
        for (int t = 0; t < SQ_TYPE_COUNT; t++) {
            if (quant && quant[t]) m->table.qmatmul[t] = quant[t];
            else if (sparse && sparse[t]) m->table.qmatmul[t] = sparse[t];
            else if (!m->table.qmatmul[t]) m->table.qmatmul[t] = sq_kernels_ref_table.qmatmul[t];
            m->table.qmatmul_a8[t] = act8 && act8[t] ? act8[t] : sq_kernels_ref_table.qmatmul_a8[t];
        }
        atomic_store_explicit(&m->state, 2, memory_order_release);
    } else {
        while (atomic_load_explicit(&m->state, memory_order_acquire) != 2) {
        }
    }
    return &m->table;
}

static int env_true(const char *name);

const sq_kernels *sq_kernels_by_name(const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "ref") == 0) return &sq_kernels_ref_table;
#ifdef SQ_KERNELS_X86
    static merged_table avx2, avx512;
    if (strcmp(name, "avx2") == 0)
        return cpu_has_avx2() ? merged(&avx2, sq_kernels_avx2_table(), sq_kernels_avx2_quant(), sq_kernels_avx2_sparse(),
                                       sq_kernels_avx2_act8())
                              : NULL;
    if (strcmp(name, "avx512") == 0)
        return cpu_has_avx512() ? merged(&avx512, sq_kernels_avx512_table(), sq_kernels_avx512_quant(),
                                         sq_kernels_avx512_sparse(),
                                         cpu_has_avx512_vnni() ? sq_kernels_avx512_act8() : sq_kernels_avx2_act8())
                                : NULL;
#endif
#ifdef SQ_KERNELS_ARM
    static merged_table neon;
    if (strcmp(name, "neon") == 0) {
        /* ACT8: the sdot kernels when the CPU has them, unless SQUISH_NO_DOTPROD=1 */
        const sq_qmatmul_fn *dp =
            sq_cpu_has_dotprod() && !env_true("SQUISH_NO_DOTPROD") ? sq_kernels_neon_act8_dotprod() : NULL;
        return merged(&neon, sq_kernels_neon_table(), sq_kernels_neon_quant(), NULL, dp ? dp : sq_kernels_neon_act8());
    }
#endif
    return NULL;
}

static int env_true(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static const sq_kernels *select_table(void) {
    if (env_true("SQUISH_FORCE_REF")) return &sq_kernels_ref_table;
    const char *want = getenv("SQUISH_KERNELS");
    if (want && *want) {
        const sq_kernels *k = sq_kernels_by_name(want);
        if (k) return k;
        sq_log(SQ_LOG_WARN, "SQUISH_KERNELS=%s: not compiled in or not supported by this CPU; using the best available", want);
    }
    static const char *const preference[] = {"avx512", "avx2", "neon", NULL};
    for (int i = 0; preference[i]; i++) {
        const sq_kernels *k = sq_kernels_by_name(preference[i]);
        if (k) return k;
    }
    return &sq_kernels_ref_table;
}

const sq_kernels *sq_kernels_get(void) {
    static _Atomic(const sq_kernels *) chosen;
    const sq_kernels *k = atomic_load_explicit(&chosen, memory_order_acquire);
    if (!k) {
        /* Racing first callers compute the same answer; the store is idempotent. */
        k = select_table();
        atomic_store_explicit(&chosen, k, memory_order_release);
    }
    return k;
}

/* ===== Per-thread scratch ===== */

/* Kept for the life of the thread: the GEMM packs its operands here on every call, and
 * allocating per call would cost page faults each time for buffers this size (~300 KiB). */
static _Thread_local float *scratch_buf;
static _Thread_local size_t scratch_cap;

float *sq_kernels_scratch(size_t n) {
    if (n <= scratch_cap) return scratch_buf;
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(scratch_buf);
    scratch_buf = p;
    scratch_cap = bytes / sizeof(float);
    return p;
}

/* ===== Threads ===== */

static atomic_int requested_threads;

void sq_set_num_threads(int n) { atomic_store_explicit(&requested_threads, n > 0 ? n : 0, memory_order_relaxed); }

int sq_num_threads(void) {
#ifdef _OPENMP
    int n = atomic_load_explicit(&requested_threads, memory_order_relaxed);
    if (n > 0) return n;
    /* omp_get_max_threads() is OMP_NUM_THREADS when set, else the available cores. */
    n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

/* ===== Matmul ===== */

/* Below this many multiply-adds a matmul runs on the calling thread. In isolation
 * (bench/bench_kernels) waking a second thread costs about as much as a 256x256 GEMV, but
 * inside the forward pass the team is already awake between regions: on gutenberg-7m
 * (dim 256, FFN 768) decode at -t 2 goes from ~2,500 to ~3,500 tok/s (F16) and from ~950
 * to ~1,600 tok/s (F32) when the threshold drops from 512K to 64K MACs, so that every
 * block matmul is split (median of 4 alternating runs of `squish-run gutenberg_f*.sqz -n
 * 256 --temp 0 -t 2 --ignore-eos`, 2026-11-24; 16K and 32K were no better). */
#ifndef SQ_MATMUL_PAR_MIN_MACS
#define SQ_MATMUL_PAR_MIN_MACS (1 << 16)
#endif
/* Row chunks are multiples of this, so SIMD variants see whole row tiles. */
#define SQ_MATMUL_ROW_ALIGN 32

/* Types whose rows need their parameters: group-quantized and sparse (qmatmul). */
static inline bool has_params(sq_type t) { return sq_type_is_quant(t) || sq_type_is_sparse(t); }

/* One kernel call on rows [r0, r1): float, quantized or sparse. */
static inline void call_kernel(const sq_kernels *k, const sq_mat *w, float *y, const float *x, int64_t T, int64_t r0,
                               int64_t r1) {
    if (w->act8)
        k->qmatmul_a8[w->type](y, w->rows, x, w->data, w->row_bytes, T, r0, r1, w->cols, w->q);
    else if (has_params(w->type))
        k->qmatmul[w->type](y, w->rows, x, w->data, w->row_bytes, T, r0, r1, w->cols, w->q);
    else
        k->matmul[w->type](y, w->rows, x, w->data, w->row_bytes, T, r0, r1, w->cols);
}

void sq_matmul(const sq_kernels *k, float *y, const float *x, const sq_mat *w, int64_t T) {
    SQ_ASSERT(k && w && (int)w->type >= 0 && w->type < SQ_TYPE_COUNT);
    SQ_ASSERT(w->act8 ? k->qmatmul_a8[w->type] != NULL
                        : has_params(w->type) ? k->qmatmul[w->type] != NULL : k->matmul[w->type] != NULL);
    /* quantized/sparse rows: the parameters must describe the rows (the binder checked them) */
    SQ_ASSERT(!has_params(w->type) || w->cols <= 0 ||
              (sq_row_bytes(w->type, w->cols, w->q) && w->row_bytes >= sq_row_bytes(w->type, w->cols, w->q)));
    const int64_t rows = w->rows, cols = w->cols;
    if (rows <= 0 || T <= 0) return;
    int nt = sq_num_threads();
    double macs = (double)rows * (double)cols * (double)T;
#ifdef _OPENMP
    if (omp_in_parallel()) nt = 1; /* one level of parallelism only */
#endif
    if (nt <= 1 || macs < (double)SQ_MATMUL_PAR_MIN_MACS || rows < 2 * SQ_MATMUL_ROW_ALIGN) {
        call_kernel(k, w, y, x, T, 0, rows);
        return;
    }
    /* One contiguous chunk per thread (rounded to whole row tiles): the chunking only
     * changes who computes a row, never how. */
    int64_t chunk = (rows + nt - 1) / nt;
    chunk = (chunk + SQ_MATMUL_ROW_ALIGN - 1) / SQ_MATMUL_ROW_ALIGN * SQ_MATMUL_ROW_ALIGN;
    const int64_t n_chunks = (rows + chunk - 1) / chunk;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t r0 = c * chunk;
        int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
        call_kernel(k, w, y, x, T, r0, r1);
    }
}

void sq_mat_row_f32(const sq_kernels *k, float *dst, const sq_mat *w, int64_t r) {
    SQ_ASSERT(k && w && r >= 0 && r < w->rows);
    const void *row = (const char *)w->data + (size_t)r * w->row_bytes;
    switch (w->type) {
    case SQ_TYPE_F32: memcpy(dst, row, (size_t)w->cols * sizeof(float)); break;
    case SQ_TYPE_F16: k->f16_to_f32(dst, (const uint16_t *)row, w->cols); break;
    case SQ_TYPE_BF16: k->bf16_to_f32(dst, (const uint16_t *)row, w->cols); break;
    case SQ_TYPE_Q8G:
    case SQ_TYPE_Q6G:
    case SQ_TYPE_Q5G:
    case SQ_TYPE_Q4G:
    case SQ_TYPE_Q3G: sq_qrow_dequant(w->type, w->q, w->cols, row, dst); break; /* embedding lookup: one row */
    case SQ_TYPE_S24_F16:
    case SQ_TYPE_S24_F32:
    case SQ_TYPE_S48_F16:
    case SQ_TYPE_S48_F32:
    case SQ_TYPE_SMASK_F16:
    case SQ_TYPE_SMASK_F32: sq_srow_dequant(w->type, w->q, w->cols, row, dst); break;
    default: SQ_ASSERT(!"sq_mat_row_f32: unsupported type");
    }
}
