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
 *
 * ACT8 q8g/q4g tensors (int8 activations, docs/quantization.md "f32 activations by default")
 * have their own reference here, sq_qmatmul_a8_*_ref, and the one activation quantizer
 * every ACT8 kernel uses (sq_act8_quantize, and sq_act8_prepare for the SIMD kernels), with the
 * SIMD files' shared drivers (sq_act8_drive for blocks and tiles, sq_act8_gemv_drive for decode).
 */
#include "kernels_internal.h"
#include "quant_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

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

/* ===== int8 activations (ACT8) ===== */

void sq_act8_quantize(const float *x, int64_t cols, int64_t c0, int64_t c1, int8_t *q, float *d, int32_t *s) {
    for (int64_t c = c0; c < c1; c++) {
        const int64_t left = cols - c * SQ_QCHUNK;
        const size_t n = left < SQ_QCHUNK ? (size_t)left : SQ_QCHUNK;
        /* a zero-padded copy: fixed-length loops, which the compiler vectorizes */
        float xc[SQ_QCHUNK] = {0};
        memcpy(xc, x + c * SQ_QCHUNK, n * sizeof(float));
        int8_t *qc = q + (c - c0) * SQ_QCHUNK;
        float amax = 0.0f;
        int nan = 0;
        for (int j = 0; j < SQ_QCHUNK; j++) {
            const float a = fabsf(xc[j]);
            amax = a > amax ? a : amax;
            nan |= a != a;
        }
        const float dc = nan ? NAN : amax / 127.0f; /* a NaN gives d = NaN */
        int32_t sum = 0;
        if (dc > 0.0f && dc <= FLT_MAX) {
            for (int j = 0; j < SQ_QCHUNK; j++) {
                /* round half away from zero without roundf: v - trunc(v) is exact here */
                const float v = xc[j] / dc;
                int32_t i = (int32_t)v;
                const float f = v - (float)i;
                i += (f >= 0.5f) - (f <= -0.5f);
                i = i > 127 ? 127 : i < -127 ? -127 : i;
                qc[j] = (int8_t)i;
                sum += i;
            }
        } else {
            memset(qc, 0, SQ_QCHUNK);
        }
        d[c - c0] = dc;
        s[c - c0] = sum;
    }
}

/* Floats from p rounded up to 64 bytes. */
static size_t up16(size_t n) { return (n + 15) / 16 * 16; }

bool sq_act8_prepare(sq_act8_rows *a, const float *x, int64_t T, int64_t cols, int64_t group_chunks,
                     size_t extra_floats) {
    const int64_t nc = (cols + SQ_QCHUNK - 1) / SQ_QCHUNK;
    const int64_t ng = (nc + group_chunks - 1) / group_chunks;
    const size_t ldq = ((size_t)nc * SQ_QCHUNK + 63) / 64 * 64;
    const size_t fq = up16(((size_t)T * ldq + 64) / 4), fd = up16((size_t)T * (size_t)nc),
                 fg = up16((size_t)T * (size_t)ng);
    float *buf = sq_kernels_scratch(fq + 2 * fd + fg + extra_floats);
    if (!buf) return false;
    int8_t *q = (int8_t *)buf;
    float *d = buf + fq;
    int32_t *s = (int32_t *)(buf + fq + fd);
    float *gz = buf + fq + 2 * fd;
    memset(q + (size_t)T * ldq, 0, 64);
    for (int64_t t = 0; t < T; t++) {
        sq_act8_quantize(x + t * cols, cols, 0, nc, q + (size_t)t * ldq, d + t * nc, s + t * nc);
        for (size_t k = (size_t)nc * SQ_QCHUNK; k < ldq; k++) q[(size_t)t * ldq + k] = 0;
        for (int64_t g = 0; g < ng; g++) {
            const int64_t ce = (g + 1) * group_chunks < nc ? (g + 1) * group_chunks : nc;
            float acc = 0.0f;
            for (int64_t c = g * group_chunks; c < ce; c++) acc += d[t * nc + c] * (float)s[t * nc + c];
            gz[t * ng + g] = acc;
        }
    }
    *a = (sq_act8_rows){.nc = nc, .ng = ng, .ldq = ldq, .q = q, .d = d, .s = s, .gz = gz,
                        .extra = buf + fq + 2 * fd + fg};
    return true;
}

/* Packs rows [r, r + nr) (nr <= tile_rows) for a tiled ACT8 GEMM: pk[((c * 8 + j) * tile_rows +
 * i) * 4 + b] = code of row r + i, column 32c + 4j + b (0 for rows past nr and columns past the
 * row), sc[g * tile_rows + i] = s_g and sz[g * tile_rows + i] = s_g * z_g of that row (0 past nr). */
void sq_act8_pack_tile(bool q4, int tile_rows, uint8_t *pk, float *sc, float *sz, const uint8_t *w, size_t rb,
                       int64_t r, int nr, const sq_qlayout *L, bool asym) {
    const int64_t nc = L->n_chunks, ng = L->n_groups, tr = tile_rows;
    if (nr < tile_rows) {
        memset(pk, 0, (size_t)(nc * 32 * tr));
        memset(sc, 0, sizeof(float) * (size_t)(ng * tr));
        memset(sz, 0, sizeof(float) * (size_t)(ng * tr));
    }
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = w + (size_t)(r + i) * rb, *codes = row + L->codes_off;
        for (int64_t c = 0; c < nc; c++) {
            const uint8_t *p = codes + (size_t)c * L->chunk_bytes;
            uint8_t *dst = pk + (size_t)(c * 32 * tr) + 4 * (size_t)i;
            for (int j = 0; j < 8; j++) {
                uint32_t v;
                if (q4) {
                    memcpy(&v, p + 4 * (j & 3), 4);
                    v = (j < 4 ? v : v >> 4) & 0x0F0F0F0Fu; /* low nibbles: columns 0-15, high: 16-31 */
                } else {
                    memcpy(&v, p + 4 * j, 4);
                }
                memcpy(dst + (size_t)(j * 4 * tr), &v, 4);
            }
        }
        for (int64_t g = 0; g < ng; g++) {
            const float s = sq_qrow_scale(row, g);
            sc[g * tr + i] = s;
            sz[g * tr + i] = s * (float)sq_qrow_zero(L, asym, row, g);
        }
    }
}

void sq_act8_drive(sq_type type, const sq_act8_block_fn *blocks, int nt_max, sq_act8_rowc_fn rowc,
                   const sq_act8_gemm *gemm, const sq_act8_gemv *gemv, float *y, int64_t ldy, const float *x,
                   const void *w, size_t rb, int64_t T, int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    if (gemv && sq_act8_gemv_drive(gemv, y, x, w, rb, T, r0, r1, cols, q)) return;
    const sq_qlayout L = sq_qlayout_of(type, q, cols); /* cols 0: no chunks, y = 0 */
    const size_t lds = up16((size_t)L.n_groups);
    const bool tiled = gemm && T >= gemm->min_T && L.n_chunks > 0 && (type == SQ_TYPE_Q4G || !gemm->q4_only);
    /* tiled: packed codes (tile_rows bytes per column) and two floats per (group, row) */
    const size_t extra = tiled ? (size_t)gemm->tile_rows * ((size_t)L.n_chunks * 8 + 2 * (size_t)L.n_groups) : 8 * lds;
    sq_act8_rows a;
    if (!sq_act8_prepare(&a, x, T, cols, L.group_chunks, extra)) {
        /* out of memory for the scratch: the reference needs none */
        (type == SQ_TYPE_Q4G ? sq_qmatmul_a8_q4g_ref : sq_qmatmul_a8_q8g_ref)(y, ldy, x, w, rb, T, r0, r1, cols, q);
        return;
    }
    if (tiled) {
        const int64_t gr = gemm->tile_rows;
        uint8_t *pk = (uint8_t *)a.extra;
        float *tsc = a.extra + (size_t)(L.n_chunks * 8 * gr), *tsz = tsc + (size_t)(L.n_groups * gr);
        for (int64_t r = r0; r < r1; r += gr) {
            const int nr = r1 - r < gr ? (int)(r1 - r) : (int)gr;
            sq_act8_pack_tile(type == SQ_TYPE_Q4G, (int)gr, pk, tsc, tsz, (const uint8_t *)w, rb, r, nr, &L, q.asym);
            for (int64_t t = 0; t < T;) {
                const int nt = T - t < gemm->tokens ? (int)(T - t) : gemm->tokens;
                gemm->micro[nt - 1](y + r, ldy, &a, t, pk, tsc, tsz, L.group_chunks, nr);
                t += nt;
            }
        }
        return;
    }
    float *sc = a.extra, *sz = a.extra + 4 * lds;
    const int64_t nb = (T + nt_max - 1) / nt_max;
    for (int64_t r = r0; r < r1;) {
        const int four = r + 4 <= r1;
        const int nr = four ? 4 : 1;
        for (int i = 0; i < nr; i++)
            rowc((const uint8_t *)w + (size_t)(r + i) * rb, &L, q.asym, L.n_groups, sc + (size_t)i * lds,
                 sz + (size_t)i * lds);
        for (int64_t b = 0, t = 0; b < nb; b++) {
            const int nt = (int)(T / nb + (b < T % nb));
            blocks[four * nt_max + nt - 1](y + t * ldy + r, ldy, &a, t, (const uint8_t *)w + (size_t)r * rb, rb, &L,
                                           sc, sz, lds);
            t += nt;
        }
        r += nr;
    }
}

bool sq_act8_gemv_drive(const sq_act8_gemv *gv, float *y, const float *x, const void *w, size_t rb, int64_t T,
                        int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T != 1 || r1 <= r0) return false;
    const bool q4 = gv->type == SQ_TYPE_Q4G;
    const sq_qlayout L = sq_qlayout_of(gv->type, q, cols);
    const int64_t nc = L.n_chunks, gc = L.group_chunks, U = gv->unit_chunks, nu = (nc + U - 1) / U, lanes = q4 ? 4 : 8;
    int m; /* the unit spans 1 << m groups */
    if (nc == 0) return false;
    if (gc % U == 0 || L.n_groups == 1) m = 0;
    else if (2 * gc == U) m = 1;
    else if (4 * gc == U) m = 2;
    else return false; /* e.g. group 96: the shared driver */
    if (!gv->fn[m][0] || !gv->fn[m][1]) return false;
    const size_t lds = up16((size_t)L.n_groups + 16); /* a unit's scales may be read past n_groups */
    const size_t fx = (size_t)(nu * U * 8), fd = (size_t)(nu * U * lanes), rows = (size_t)gv->rows;
    sq_act8_rows a;
    /* sc/sz only for kernels that take their scales from rowc's pass */
    if (!sq_act8_prepare(&a, x, 1, cols, gc, fx + up16(fd) + (gv->rowc ? 2 * rows * lds : 0))) return false;
    int8_t *xu = (int8_t *)a.extra;
    float *du = a.extra + fx, *sc = gv->rowc ? du + up16(fd) : NULL, *sz = gv->rowc ? sc + rows * lds : NULL;
    for (int64_t c = 0; c < nu * U; c++) { /* the token regrouped per unit */
        const int64_t u = c / U, k = c % U;
        if (!q4) {
            if (c < nc) memcpy(xu + 32 * c, a.q + 32 * c, 32);
            else memset(xu + 32 * c, 0, 32);
        } else {
            int8_t *lo = xu + 32 * U * u + 16 * k;
            if (c < nc) {
                memcpy(lo, a.q + 32 * c, 16);
                memcpy(lo + 16 * U, a.q + 32 * c + 16, 16);
            } else {
                memset(lo, 0, 16);
                memset(lo + 16 * U, 0, 16);
            }
        }
        for (int64_t j = 0; j < lanes; j++) du[lanes * c + j] = c < nc ? a.d[c] : 0.0f;
    }
    if (gv->rowc) memset(sc, 0, sizeof(float) * 2 * rows * lds); /* the padding past n_groups stays zero */
    for (int64_t r = r0; r < r1;) {
        const int b = r + gv->rows <= r1;
        const int nr = b ? gv->rows : 1;
        for (int i = 0; i < nr && gv->rowc; i++)
            gv->rowc((const uint8_t *)w + (size_t)(r + i) * rb, &L, q.asym, L.n_groups, sc + (size_t)i * lds,
                     sz + (size_t)i * lds);
        gv->fn[m][b](y + r, xu, du, &a, (const uint8_t *)w + (size_t)r * rb, rb, &L, sc, sz, lds);
        r += nr;
    }
    return true;
}

/* y = sum over chunks c, in column order, of (s_g * d_c) * (float)(sum_j q_j xq_j - z_g xsum_c),
 * the integer part exact; tokens are quantized SEG_CHUNKS chunks at a time on the stack and
 * the running sums wait in y. */
static void qmatmul_a8_ref(sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes,
                           int64_t T, int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    const sq_qlayout L = sq_qlayout_of(type, q, cols);
    int8_t xq[SEG_CHUNKS * SQ_QCHUNK];
    float d[SEG_CHUNKS];
    int32_t xs[SEG_CHUNKS];
    for (int64_t t = 0; t < T; t++) {
        for (int64_t r = r0; r < r1; r++) y[t * ldy + r] = 0.0f;
        for (int64_t c0 = 0; c0 < L.n_chunks; c0 += SEG_CHUNKS) {
            const int64_t c1 = c0 + SEG_CHUNKS < L.n_chunks ? c0 + SEG_CHUNKS : L.n_chunks;
            sq_act8_quantize(x + t * cols, cols, c0, c1, xq, d, xs);
            for (int64_t r = r0; r < r1; r++) {
                const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
                float acc = y[t * ldy + r];
                for (int64_t c = c0; c < c1; c++) {
                    uint8_t codes[SQ_QCHUNK];
                    sq_qchunk_decode(type, row + L.codes_off + (size_t)c * L.chunk_bytes, codes);
                    const int64_t g = c / L.group_chunks;
                    int32_t i = 0;
                    for (int j = 0; j < SQ_QCHUNK; j++) i += (int32_t)codes[j] * xq[(c - c0) * SQ_QCHUNK + j];
                    i -= sq_qrow_zero(&L, q.asym, row, g) * xs[c - c0];
                    acc += (sq_qrow_scale(row, g) * d[c - c0]) * (float)i;
                }
                y[t * ldy + r] = acc;
            }
        }
    }
}

void sq_qmatmul_a8_q8g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                           int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_a8_ref(SQ_TYPE_Q8G, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);
}
void sq_qmatmul_a8_q4g_ref(float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                           int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    qmatmul_a8_ref(SQ_TYPE_Q4G, y, ldy, x, w, row_bytes, T, r0, r1, cols, q);
}
