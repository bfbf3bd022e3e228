/* kernels_quant_avx2.c - AVX2 + FMA + F16C matmul for group-quantized weights (q8g, q6g,
 * q5g, q4g, q3g) with f32 activations: y = x . dequant(W)^T, the function kernels_quant_ref.c
 * specifies. For CPUs without AVX-512 (Haswell, Zen 1-3).
 *
 * Weights are dequantized in registers, 8 per vector, to s * (q - z): q8g, q6g, q5g and q4g
 * convert the codes (nibbles split by and/shift; q5g/q6g or in their high bits, shifted into
 * place) and apply fma(q, s, -s*z), exact because s*q and s*z are exact in float; q3g looks the 2-bit planes up in two 8-entry tables s * (k - z)
 * and selects by the high bit (moved to the sign by a variable shift). Two loops, by T:
 *   T < QGEMM_MIN_T  streaming: 4 packed rows read once per group of up to FEW_NT tokens,
 *                    dequantized chunk by chunk, one 8-lane accumulator per (row, token);
 *   T >= QGEMM_MIN_T a packed GEMM: 16-row x 256-column tiles dequantized and transposed
 *                    into a per-thread scratch once and reused by every token (the 6 x 16
 *                    broadcast-FMA micro-kernel of gemm_avx2.h).
 * Summation order per y element: streaming sums the four 8-column vectors of each chunk in
 * column order into one accumulator (ragged tail masked), then a fixed lane tree; the
 * GEMM is one FMA chain over the columns in order. Neither depends on r0/r1.
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include "gemm_avx2.h"

enum { QT_Q8 = 0, QT_Q4 = 1, QT_Q3 = 2, QT_Q5 = 3, QT_Q6 = 4 };

/* Tuning constants, measured with bench/bench_kernels -y q4g,q8g on an AMD EPYC Zen 4 VM, cpu family 25 model 17 (one thread):
 * streaming 2 tokens per pass runs at ~55 GFLOP/s for any T; the GEMM at 46 (T = 8),
 * 61 (16), 82 (64), 97 (256). */
#ifndef QGEMM_MIN_T
#define QGEMM_MIN_T 12 /* T from which dequantizing tiles once beats re-streaming the rows */
#endif
#undef FEW_NT
#define FEW_NT 2      /* tokens per streaming pass: 4 rows x 2 tokens = 8 accumulators */
#ifndef QPREFETCH
#define QPREFETCH 1 /* streaming: prefetch each row's next line in the next block of rows */
#endif

/* ===== Dequantizing one 32-weight chunk ===== */

/* Per (row, group): q8g/q6g/q5g/q4g: a = s, b = -s*z; q3g: a, b = tables s*(k - z) for k = 0..3
 * and 4..7 (each repeated twice: vpermps reads 3 index bits, the planes give 2). */
typedef struct {
    __m256 a, b;
} gconst;

SQ_INLINE gconst group_const(int qt, const uint8_t *row, const sq_qlayout *L, bool asym, int64_t g) {
    const uint16_t h = (uint16_t)(row[2 * g] | (row[2 * g + 1] << 8));
    const float s = _cvtsh_ss(h);
    const int32_t z = asym ? row[L->zeros_off + (size_t)g] : L->zero_sym;
    gconst k;
    if (qt != QT_Q3) {
        k.a = _mm256_set1_ps(s);
        k.b = _mm256_set1_ps(-(s * (float)z));
    } else {
        const __m256 vz = _mm256_set1_ps((float)z), vs = _mm256_set1_ps(s);
        k.a = _mm256_mul_ps(_mm256_sub_ps(_mm256_setr_ps(0, 1, 2, 3, 0, 1, 2, 3), vz), vs);
        k.b = _mm256_mul_ps(_mm256_sub_ps(_mm256_setr_ps(4, 5, 6, 7, 4, 5, 6, 7), vz), vs);
    }
    return k;
}

/* Weights 8v .. 8v+7 of the chunk at p into w[v], v = 0..3. */
SQ_INLINE void decode(int qt, const uint8_t *p, gconst k, __m256 w[4]) {
    if (qt == QT_Q8) {
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * v))));
            w[v] = _mm256_fmadd_ps(q, k.a, k.b);
        }
    } else if (qt == QT_Q4) {
        /* bytes 0-7 and 8-15 in dword lanes: low nibbles are weights 0-15, high ones 16-31 */
        const __m256i d0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        const __m256i d1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8)));
        const __m256i m = _mm256_set1_epi32(15);
        w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(d0, m)), k.a, k.b);
        w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(d1, m)), k.a, k.b);
        w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(d0, 4)), k.a, k.b);
        w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(d1, 4)), k.a, k.b);
    } else if (qt == QT_Q5 || qt == QT_Q6) {
        /* the q4g nibbles of weights 8v + i (lane i of vector v), or'ed with bits 4(-5):
         * q5g: bit 8v + i of the u32 after the nibbles, shifted to bit 0 and then to bit 4;
         * q6g: plane byte i, bits 2v..2v+1, moved to bits 4-5 */
        const __m256i d0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        const __m256i d1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8)));
        const __m256i m = _mm256_set1_epi32(15);
        __m256i nib[4];
        nib[0] = _mm256_and_si256(d0, m);
        nib[1] = _mm256_and_si256(d1, m);
        nib[2] = _mm256_srli_epi32(d0, 4);
        nib[3] = _mm256_srli_epi32(d1, 4);
        if (qt == QT_Q5) {
            uint32_t hi;
            memcpy(&hi, p + 16, 4);
            const __m256i h = _mm256_set1_epi32((int)hi), one = _mm256_set1_epi32(1);
            const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), eight = _mm256_set1_epi32(8);
            __m256i sh = iota;
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                const __m256i b = _mm256_and_si256(_mm256_srlv_epi32(h, sh), one);
                w[v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_or_si256(nib[v], _mm256_slli_epi32(b, 4))), k.a, k.b);
                sh = _mm256_add_epi32(sh, eight);
            }
        } else {
            const __m256i pl = _mm256_slli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 16))), 4);
            const __m256i m30 = _mm256_set1_epi32(0x30);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                const __m256i b = _mm256_and_si256(v == 0 ? pl : _mm256_srli_epi32(pl, 2 * v), m30);
                w[v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_or_si256(nib[v], b)), k.a, k.b);
            }
        }
    } else {
        /* lane i of vector v: plane byte i shifted right by 2v (vpermps ignores the bits
         * above 2 that the table repeats over), bit 8v + i of the high word moved to the
         * sign bit to choose between the tables of codes 0-3 and 4-7 */
        uint32_t hi;
        memcpy(&hi, p + 8, 4);
        const __m256i d = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        const __m256i h = _mm256_set1_epi32((int)hi);
        const __m256i sh0 = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
        const __m256i eight = _mm256_set1_epi32(8);
        __m256i sh = sh0;
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            const __m256i idx = v == 0 ? d : _mm256_srli_epi32(d, 2 * v);
            const __m256 sel = _mm256_castsi256_ps(_mm256_sllv_epi32(h, sh));
            w[v] = _mm256_blendv_ps(_mm256_permutevar8x32_ps(k.a, idx), _mm256_permutevar8x32_ps(k.b, idx), sel);
            sh = _mm256_sub_epi32(sh, eight);
        }
    }
}

/* ===== T < QGEMM_MIN_T: streaming ===== */

/* y[t*ldy + i] = x[t] . W[row i] for nr (1 or 4) rows at w0 and nt (1..FEW_NT) tokens. */
SQ_INLINE void stream_block(int qt, int nr, int nt, float *y, int64_t ldy, const float *x, int64_t cols,
                            const uint8_t *w0, size_t rb, const sq_qlayout *L, bool asym) {
    __m256 acc[4][FEW_NT];
    const uint8_t *wr[4];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) {
        wr[i] = w0 + (size_t)i * rb;
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) acc[i][t] = _mm256_setzero_ps();
    }
    const size_t cb = L->chunk_bytes, co = L->codes_off;
    const int64_t full = cols / SQ_QCHUNK;
    const int64_t pf_every = qt == QT_Q8 ? 2 : qt == QT_Q6 ? 2 : qt == QT_Q5 ? 3 : qt == QT_Q4 ? 4 : 5; /* chunks per line */
    const size_t pf_ahead = (size_t)nr * rb; /* the same position in the next block of rows */
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) { /* and each next row's first and last line, which those can miss */
        _mm_prefetch((const char *)wr[i] + pf_ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)wr[i] + pf_ahead + rb - 1, _MM_HINT_T0);
    }
    for (int64_t g = 0; g < L->n_groups; g++) {
        gconst k[4];
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) k[i] = group_const(qt, wr[i], L, asym, g);
        int64_t c = g * L->group_chunks;
        const int64_t ce = c + L->group_chunks < L->n_chunks ? c + L->group_chunks : L->n_chunks;
        const int64_t cf = ce < full ? ce : full;
        for (; c < cf; c++) {
#pragma GCC unroll 4
            for (int i = 0; i < nr; i++) {
                const uint8_t *p = wr[i] + co + (size_t)c * cb;
                if (QPREFETCH > 0 && c % pf_every == 0) _mm_prefetch((const char *)p + pf_ahead, _MM_HINT_T0);
                __m256 w[4];
                decode(qt, p, k[i], w);
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++)
#pragma GCC unroll 4
                    for (int t = 0; t < nt; t++)
                        acc[i][t] = _mm256_fmadd_ps(w[v], _mm256_loadu_ps(x + t * cols + c * SQ_QCHUNK + 8 * v), acc[i][t]);
            }
        }
        if (c < ce) { /* the ragged last chunk: lanes past cols are zero in x and w */
            const int64_t n = cols - c * SQ_QCHUNK;
            __m256i m[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) m[v] = lane_mask(n - 8 * v);
#pragma GCC unroll 4
            for (int i = 0; i < nr; i++) {
                __m256 w[4];
                decode(qt, wr[i] + co + (size_t)c * cb, k[i], w);
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++) {
                    const __m256 wv = _mm256_and_ps(w[v], _mm256_castsi256_ps(m[v]));
#pragma GCC unroll 4
                    for (int t = 0; t < nt; t++)
                        acc[i][t] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + t * cols + c * SQ_QCHUNK + 8 * v, m[v]),
                                                    acc[i][t]);
                }
            }
        }
    }
    if (nr == 4) {
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) _mm_storeu_ps(y + t * ldy, hsum8x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
    } else {
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) y[t * ldy] = hsum8(acc[0][t]);
    }
}

typedef void (*stream_fn)(float *y, int64_t ldy, const float *x, int64_t cols, const uint8_t *w0, size_t rb,
                          const sq_qlayout *L, bool asym);

#define STREAM_FN(QT, NR_, NT_)                                                                                      \
    static void stream_##QT##_##NR_##_##NT_(float *y, int64_t ldy, const float *x, int64_t cols, const uint8_t *w0, \
                                            size_t rb, const sq_qlayout *L, bool asym) {                             \
        stream_block(QT, NR_, NT_, y, ldy, x, cols, w0, rb, L, asym);                                                \
    }
#define STREAM_FNS(QT)                                                                                               \
    STREAM_FN(QT, 4, 1) STREAM_FN(QT, 4, 2) STREAM_FN(QT, 1, 1) STREAM_FN(QT, 1, 2)                                  \
    static const stream_fn stream_##QT[2][FEW_NT] = {{stream_##QT##_1_1, stream_##QT##_1_2},                        \
                                                     {stream_##QT##_4_1, stream_##QT##_4_2}};
_Static_assert(FEW_NT == 2, "the streaming function tables below are written for FEW_NT == 2");
_Static_assert(KC % SQ_QCHUNK == 0, "packed column blocks must start on a 32-weight chunk");
STREAM_FNS(QT_Q8)
STREAM_FNS(QT_Q4)
STREAM_FNS(QT_Q3)
STREAM_FNS(QT_Q5)
STREAM_FNS(QT_Q6)

static void stream(int qt, float *y, int64_t ldy, const float *x, const uint8_t *w, size_t rb, int64_t T, int64_t r0,
                   int64_t r1, int64_t cols, const sq_qlayout *L, bool asym) {
    const stream_fn(*fns)[FEW_NT] = qt == QT_Q8   ? stream_QT_Q8
                                    : qt == QT_Q6 ? stream_QT_Q6
                                    : qt == QT_Q5 ? stream_QT_Q5
                                    : qt == QT_Q4 ? stream_QT_Q4
                                                  : stream_QT_Q3;
    const int64_t ng = (T + FEW_NT - 1) / FEW_NT; /* token groups of nearly equal size */
    for (int64_t g = 0, t = 0; g < ng; g++) {
        const int nt = (int)(T / ng + (g < T % ng));
        for (int64_t r = r0; r < r1;) {
            const int four = r + 4 <= r1;
            fns[four][nt - 1](y + t * ldy + r, ldy, x + t * cols, cols, w + (size_t)r * rb, rb, L, asym);
            r += four ? 4 : 1;
        }
        t += nt;
    }
}

/* ===== T >= QGEMM_MIN_T: packed GEMM ===== */

typedef struct {
    const sq_qlayout *L;
    bool asym;
} qinfo;

/* wp[k*NR + j] = dequant(W)[r + j][k0 + k] for j < nrows (<= NR), k < kc; 0 for j >= nrows.
 * k0 is a multiple of 32, so the block starts on a chunk. */
SQ_INLINE void pack_tile_q(int qt, float *wp, const uint8_t *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc,
                           const qinfo *qi) {
    const sq_qlayout *L = qi->L;
    _Alignas(32) float tmp[8 * SQ_QCHUNK]; /* 8 rows x one chunk, row-major */
    for (int part = 0; part < NR / 8; part++) {
        int nh = nrows - part * 8;
        nh = nh < 0 ? 0 : nh > 8 ? 8 : nh;
        const uint8_t *base = w + (size_t)(r + part * 8) * rb;
        for (int kk = 0; kk < kc; kk += SQ_QCHUNK) {
            const int64_t c = (k0 + kk) / SQ_QCHUNK, g = c / L->group_chunks;
            const int kn = kc - kk < SQ_QCHUNK ? kc - kk : SQ_QCHUNK;
            for (int j = 0; j < 8; j++) {
                __m256 v[4];
                if (j < nh) {
                    const uint8_t *row = base + (size_t)j * rb;
                    decode(qt, row + L->codes_off + (size_t)c * L->chunk_bytes, group_const(qt, row, L, qi->asym, g), v);
                } else {
                    v[0] = v[1] = v[2] = v[3] = _mm256_setzero_ps();
                }
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) _mm256_store_ps(tmp + j * SQ_QCHUNK + 8 * q, v[q]);
            }
            for (int q = 0; q < 4 && 8 * q < kn; q++) {
                __m256 v[8];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) v[j] = _mm256_load_ps(tmp + j * SQ_QCHUNK + 8 * q);
                transpose8(v);
                float *dst = wp + (size_t)(kk + 8 * q) * NR + part * 8;
                const int n = kn - 8 * q < 8 ? kn - 8 * q : 8;
                for (int k = 0; k < n; k++) _mm256_store_ps(dst + k * NR, v[k]);
            }
        }
    }
}

static void pack_q8(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q8, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q4(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q4, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q3(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q3, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q5(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q5, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}
static void pack_q6(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) {
    pack_tile_q(QT_Q6, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const qinfo *)ctx);
}

/* ===== Entry points ===== */

static void qmatmul(int qt, sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                    int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    if (cols <= 0) {
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = r0; r < r1; r++) y[t * ldy + r] = 0.0f;
        return;
    }
    const sq_qlayout L = sq_qlayout_of(type, q, cols);
    if (T < QGEMM_MIN_T) {
        stream(qt, y, ldy, x, (const uint8_t *)w, rb, T, r0, r1, cols, &L, q.asym);
    } else {
        const qinfo qi = {&L, q.asym};
        gemm_pack_fn pack = qt == QT_Q8   ? pack_q8
                            : qt == QT_Q6 ? pack_q6
                            : qt == QT_Q5 ? pack_q5
                            : qt == QT_Q4 ? pack_q4
                                          : pack_q3;
        gemm(pack, &qi, y, ldy, x, w, rb, T, r0, r1, cols);
    }
}

static void qmatmul_q8g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q8, SQ_TYPE_Q8G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q4g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q4, SQ_TYPE_Q4G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q3g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q3, SQ_TYPE_Q3G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q5g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q5, SQ_TYPE_Q5G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}
static void qmatmul_q6g(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,
                        int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul(QT_Q6, SQ_TYPE_Q6G, y, ldy, x, w, rb, T, r0, r1, cols, q);
}

static const sq_qmatmul_fn quant_table[SQ_TYPE_COUNT] = {
    [SQ_TYPE_Q8G] = qmatmul_q8g,
    [SQ_TYPE_Q4G] = qmatmul_q4g,
    [SQ_TYPE_Q3G] = qmatmul_q3g,
    [SQ_TYPE_Q5G] = qmatmul_q5g,
    [SQ_TYPE_Q6G] = qmatmul_q6g,
};

const sq_qmatmul_fn *sq_kernels_avx2_quant(void) { return quant_table; }

#else

const sq_qmatmul_fn *sq_kernels_avx2_quant(void) { return NULL; }

#endif
