/* gguf_quant.c - squish's group-quantized rows <-> ggml's legacy 32-weight blocks (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0) for GGUF export and import, and the import of the K-quant
 * super-blocks Q4_K, Q5_K, Q6_K as floats (docs/gguf.md "Quantized tensors").
 * Block layouts: FORMATS.md 6.4 and the structs of ggml-common.h (d, [m,] [qh,] qs; fp16
 * little-endian; Q4/Q5 low nibbles hold weights 0-15 of the block, high nibbles 16-31; Q5
 * qh bit j is bit 4 of weight j). Rows go through sq_qrow_unpack / sq_qrow_pack, so this
 * file never depends on squish's own chunk bit layout.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "gguf.h"
#include "util.h"

enum { BLK = 32 };

size_t sq_gguf_qrow_bytes(uint32_t gtype, int64_t cols) { /* float types: block 1 */
    const sq_ggml_type_info *ti = sq_ggml_type_info_get(gtype);
    if (!ti || cols < 0 || cols % ti->block) return 0;
    return (size_t)(cols / ti->block) * (size_t)ti->block_bytes;
}

/* ===== Export ===== */

/* Row scratch: codes, scales, zeros and floats of one row. */
typedef struct {
    uint8_t *codes, *zeros;
    float *scales, *w;
} rowbuf;

static void rowbuf_free(rowbuf *b) {
    free(b->codes);
    free(b->zeros);
    free(b->scales);
    free(b->w);
}

static sq_status rowbuf_alloc(rowbuf *b, int64_t cols) {
    memset(b, 0, sizeof *b);
    b->codes = malloc((size_t)cols + 1);
    b->zeros = malloc((size_t)cols + 1);
    b->scales = malloc(((size_t)cols + 1) * sizeof(float));
    b->w = malloc(((size_t)cols + 1) * sizeof(float));
    if (b->codes && b->zeros && b->scales && b->w) return SQ_OK;
    rowbuf_free(b);
    return sq_errorf(SQ_ERR_OOM, "out of memory");
}

static int64_t group_of(const sq_tensor *t) {
    int64_t cols = t->shape[1];
    return t->q.group <= 0 || t->q.group >= cols ? cols : t->q.group;
}

sq_status sq_gguf_qtype_for(const sq_tensor *t, uint32_t *out) {
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const size_t rb = sq_row_bytes(t->type, cols, t->q);
    bool fits_block = cols % BLK == 0;
    if (fits_block) {
        switch (t->type) {
        case SQ_TYPE_Q4G: *out = t->q.asym ? SQ_GGML_Q4_1 : SQ_GGML_Q4_0; return SQ_OK;
        case SQ_TYPE_Q5G: *out = t->q.asym ? SQ_GGML_Q5_1 : SQ_GGML_Q5_0; return SQ_OK;
        case SQ_TYPE_Q3G:
        case SQ_TYPE_Q6G: *out = SQ_GGML_Q8_0; return SQ_OK;
        default: break;
        }
    }
    rowbuf b;
    sq_status st = rowbuf_alloc(&b, cols);
    if (st) return st;
    /* q8g: Q8_0 when every q - z fits in int8 (always when symmetric); otherwise, and for
     * rows that are not whole blocks, F16 when every weight is an fp16 value, else F32 */
    bool q8_ok = fits_block && t->type == SQ_TYPE_Q8G, f16_ok = true;
    const int64_t G = group_of(t);
    for (int64_t r = 0; r < rows && (q8_ok || f16_ok); r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
        sq_qrow_unpack(t->type, t->q, cols, row, b.codes, b.scales, b.zeros);
        for (int64_t j = 0; q8_ok && j < cols; j++) {
            int d = (int)b.codes[j] - (int)b.zeros[j / G];
            q8_ok = d >= -128 && d <= 127;
        }
        if (q8_ok) continue;
        sq_qrow_dequant(t->type, t->q, cols, row, b.w);
        for (int64_t j = 0; f16_ok && j < cols; j++) {
            float back = sq_f16_to_f32(sq_f32_to_f16(b.w[j]));
            f16_ok = memcmp(&back, &b.w[j], sizeof back) == 0;
        }
    }
    rowbuf_free(&b);
    *out = q8_ok ? SQ_GGML_Q8_0 : f16_ok ? SQ_GGML_F16 : SQ_GGML_F32;
    return SQ_OK;
}

sq_status sq_gguf_encode_qtensor(const sq_tensor *t, uint32_t gtype, void *dst, double *max_err) {
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const size_t rb = sq_row_bytes(t->type, cols, t->q);
    const int64_t G = group_of(t);
    const size_t orb = sq_gguf_qrow_bytes(gtype, cols);
    if (!sq_type_is_quant(t->type) || t->n_dims != 2 || orb == 0)
        return sq_errorf(SQ_ERR_ARG, "tensor '%s' (%s, %lld columns) cannot be written as %s", t->name,
                         sq_type_name(t->type), (long long)cols, sq_ggml_type_name(gtype));
    rowbuf b;
    sq_status st = rowbuf_alloc(&b, cols);
    if (st) return st;
    double err = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
        uint8_t *o = (uint8_t *)dst + (size_t)r * orb;
        if (gtype == SQ_GGML_F32 || gtype == SQ_GGML_F16) {
            sq_qrow_dequant(t->type, t->q, cols, row, b.w);
            if (gtype == SQ_GGML_F32) memcpy(o, b.w, (size_t)cols * 4);
            else
                for (int64_t j = 0; j < cols; j++) sq_wr_le16(o + 2 * j, sq_f32_to_f16(b.w[j]));
            continue;
        }
        sq_qrow_unpack(t->type, t->q, cols, row, b.codes, b.scales, b.zeros);
        for (int64_t c0 = 0; c0 < cols; c0 += BLK) {
            const int64_t g = c0 / G;
            const float s = b.scales[g];
            const int z = b.zeros[g];
            const uint8_t *q = b.codes + c0;
            uint8_t *p = o;
            sq_wr_le16(p, sq_f32_to_f16(s)); /* exact: s is an fp16 value */
            p += 2;
            if (gtype == SQ_GGML_Q4_1 || gtype == SQ_GGML_Q5_1) {
                const uint16_t mh = sq_f32_to_f16(-(s * (float)z));
                const float m = sq_f16_to_f32(mh); /* d = s: s is an fp16 value */
                for (int j = 0; j < BLK; j++) {
                    float ours = s * (float)((int)q[j] - z), theirs = (float)q[j] * s + m;
                    err = fmax(err, fabs((double)theirs - (double)ours));
                }
                sq_wr_le16(p, mh);
                p += 2;
            }
            if (gtype == SQ_GGML_Q5_0 || gtype == SQ_GGML_Q5_1) {
                uint32_t qh = 0;
                for (int j = 0; j < BLK; j++) qh |= (uint32_t)((q[j] >> 4) & 1) << j;
                for (int k = 0; k < 4; k++) p[k] = (uint8_t)(qh >> (8 * k));
                p += 4;
            }
            if (gtype == SQ_GGML_Q8_0) {
                for (int j = 0; j < BLK; j++) p[j] = (uint8_t)(int8_t)((int)q[j] - z);
                p += BLK;
            } else {
                for (int j = 0; j < BLK / 2; j++) p[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
                p += BLK / 2;
            }
            o = p;
        }
    }
    rowbuf_free(&b);
    if (max_err) *max_err = err;
    return SQ_OK;
}

/* ===== Import ===== */

static bool is_kquant(uint32_t gtype) {
    return gtype == SQ_GGML_Q4_K || gtype == SQ_GGML_Q5_K || gtype == SQ_GGML_Q6_K;
}

bool sq_gguf_qtype_importable(uint32_t gtype) {
    return gtype == SQ_GGML_Q4_0 || gtype == SQ_GGML_Q4_1 || gtype == SQ_GGML_Q5_0 || gtype == SQ_GGML_Q5_1 ||
           gtype == SQ_GGML_Q8_0 || is_kquant(gtype);
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (FORMATS.md 6.4). */
static void kscale_min(const uint8_t *sc, int j, int *scale, int *min) {
    if (j < 4) {
        *scale = sc[j] & 63;
        *min = sc[j + 4] & 63;
    } else {
        *scale = (sc[j + 4] & 15) | (sc[j - 4] >> 6) << 4;
        *min = (sc[j + 4] >> 4) | (sc[j] >> 6) << 4;
    }
}

/* One row of 256-weight super-blocks into floats, in ggml's operation order (a product of
 * the super-block scale and the sub-block scale, times the code, minus the min's product).
 * Q4_K: d, dmin, scales[12], qs[128]; Q5_K: d, dmin, scales[12], qh[32], qs[128]; Q6_K:
 * ql[128], qh[64], int8 scales[16], d. false when a d/dmin is not finite. */
static bool kquant_row(uint32_t gtype, const uint8_t *p, int64_t cols, float *y) {
    const size_t bb = (size_t)sq_ggml_type_info_get(gtype)->block_bytes;
    for (int64_t b0 = 0; b0 < cols; b0 += 256, p += bb) {
        float *o = y + b0;
        if (gtype == SQ_GGML_Q6_K) {
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *sc = (const int8_t *)(p + 192);
            const float d = sq_f16_to_f32(sq_rd_le16(p + 208));
            if (!isfinite(d)) return false;
            for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, o += 128)
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    const int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                    const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                    const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                    o[l] = d * (float)sc[is] * (float)q1;
                    o[l + 32] = d * (float)sc[is + 2] * (float)q2;
                    o[l + 64] = d * (float)sc[is + 4] * (float)q3;
                    o[l + 96] = d * (float)sc[is + 6] * (float)q4;
                }
            continue;
        }
        const float d = sq_f16_to_f32(sq_rd_le16(p)), dmin = sq_f16_to_f32(sq_rd_le16(p + 2));
        if (!isfinite(d) || !isfinite(dmin)) return false;
        const uint8_t *sc = p + 4, *qh = p + 16, *qs = p + (gtype == SQ_GGML_Q5_K ? 48 : 16);
        for (int c = 0; c < 4; c++, qs += 32, o += 64) { /* 64 weights: sub-blocks 2c and 2c + 1 */
            int s1, m1, s2, m2;
            kscale_min(sc, 2 * c, &s1, &m1);
            kscale_min(sc, 2 * c + 1, &s2, &m2);
            const float d1 = d * (float)s1, mm1 = dmin * (float)m1, d2 = d * (float)s2, mm2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) {
                int lo = qs[l] & 15, hi = qs[l] >> 4;
                if (gtype == SQ_GGML_Q5_K) {
                    lo += (qh[l] >> (2 * c) & 1) << 4;
                    hi += (qh[l] >> (2 * c + 1) & 1) << 4;
                }
                o[l] = d1 * (float)lo - mm1;
                o[l + 32] = d2 * (float)hi - mm2;
            }
        }
    }
    return true;
}

sq_status sq_gguf_decode_qtensor(const char *path, const char *name, uint32_t gtype, const uint8_t *src,
                                 int64_t rows, int64_t cols, sq_tensor *x) {
    const size_t irb = sq_gguf_qrow_bytes(gtype, cols);
    if (!sq_gguf_qtype_importable(gtype) || irb == 0 || rows < 1)
        return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: tensor '%s' is %s with %lld columns; squish imports Q4_0, Q4_1, "
                         "Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K matrices of whole blocks", path, name,
                         sq_ggml_type_name(gtype), (long long)cols);
    const bool to_f32 = gtype == SQ_GGML_Q4_1 || gtype == SQ_GGML_Q5_1 || is_kquant(gtype);
    x->type = to_f32 ? SQ_TYPE_F32 : gtype == SQ_GGML_Q4_0 ? SQ_TYPE_Q4G : gtype == SQ_GGML_Q5_0 ? SQ_TYPE_Q5G
                                                                                                   : SQ_TYPE_Q8G;
    x->q = to_f32 ? (sq_qparams){0} : (sq_qparams){.group = BLK, .asym = false};
    const size_t orb = sq_row_bytes(x->type, cols, x->q);
    if (orb == 0 || (size_t)rows > SIZE_MAX / orb)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s': %lld x %lld is too large", path, name, (long long)rows,
                         (long long)cols);
    x->nbytes = (size_t)rows * orb;
    x->data = sq_alloc_aligned(x->nbytes);
    x->owns_data = true; /* the caller releases x, on failure too */
    rowbuf b;
    sq_status st = x->data ? rowbuf_alloc(&b, cols) : sq_errorf(SQ_ERR_OOM, "out of memory");
    if (st) return sq_errorf(st, "%s: out of memory decoding tensor '%s'", path, name);
    const bool int8_codes = gtype == SQ_GGML_Q8_0;
    for (int64_t r = 0; r < rows && !st; r++) {
        const uint8_t *p = src + (size_t)r * irb;
        float *w = to_f32 ? (float *)((uint8_t *)x->data + (size_t)r * orb) : NULL;
        if (is_kquant(gtype)) {
            if (!kquant_row(gtype, p, cols, w))
                st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' row %lld: a super-block scale is not finite", path,
                               name, (long long)r);
            continue;
        }
        for (int64_t c0 = 0; c0 < cols && !st; c0 += BLK) {
            const float d = sq_f16_to_f32(sq_rd_le16(p));
            float m = 0.0f;
            p += 2;
            if (to_f32) {
                m = sq_f16_to_f32(sq_rd_le16(p));
                p += 2;
            }
            if (!isfinite(d) || !isfinite(m)) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' row %lld block %lld: scale %g / offset %g is not finite",
                               path, name, (long long)r, (long long)(c0 / BLK), (double)d, (double)m);
                break;
            }
            uint8_t *q = b.codes + c0;
            uint32_t qh = 0;
            if (gtype == SQ_GGML_Q5_0 || gtype == SQ_GGML_Q5_1) {
                qh = sq_rd_le32(p);
                p += 4;
            }
            if (int8_codes) {
                for (int j = 0; j < BLK; j++) q[j] = (uint8_t)((int)(int8_t)p[j] + 128);
                p += BLK;
            } else {
                for (int j = 0; j < BLK / 2; j++) {
                    q[j] = (uint8_t)((p[j] & 15) | ((qh >> j) & 1) << 4);
                    q[j + 16] = (uint8_t)((p[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
                }
                p += BLK / 2;
            }
            if (to_f32) {
                for (int j = 0; j < BLK; j++) {
                    float y = (float)q[j] * d; /* ggml: x*d + m, two roundings */
                    w[c0 + j] = y + m;
                }
            } else {
                b.scales[c0 / BLK] = d;
            }
        }
        if (!st && !to_f32 &&
            sq_qrow_pack(x->type, x->q, cols, b.codes, b.scales, NULL, (uint8_t *)x->data + (size_t)r * orb))
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' row %lld cannot be stored as %s", path, name, (long long)r,
                           sq_type_name(x->type));
    }
    rowbuf_free(&b);
    return st;
}
