/* tinyquant.h - header-only helpers that turn the float matrices of a tiny test model
 * (tinymodel.h) into group-quantized tensors (q8g/q4g/q3g), for the runnable-file and
 * quantized-kernel tests. The quantizer is a plain round-to-nearest written here, not the
 * library's (quantize/rtn.c), so these tests depend only on the row layout:
 *
 *   symmetric:  s = max|w| / (2^(b-1) - 1), z = 2^(b-1)
 *   asymmetric: s = (max - min) / (2^b - 1), z = round(-min / s)
 *   q = clamp(round(w / s) + z, 0, 2^b - 1), s rounded to fp16 first (as the format stores it)
 *
 *   sq_tensor qt;  sq_tinyq_tensor(&f32_or_half_tensor, SQ_TYPE_Q4G, (sq_qparams){128, false}, &qt);
 *   sq_tinyq_checkpoint(&c, SQ_TYPE_Q4G, q, true);   // every matrix of c, in place
 *   sq_tinyq_checkpoint_dequant(&c);                  // quantized matrices -> their f32 values
 */
#ifndef SQ_TINYQUANT_H
#define SQ_TINYQUANT_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/checkpoint.h"
#include "../core/util.h"

/* RTN codes, scales and zeros of one row of n weights (groups of q.group, last ragged). */
static inline void sq_tinyq_rtn_row(const float *w, int64_t n, int32_t bits, sq_qparams q, uint8_t *codes,
                                    float *scales, uint8_t *zeros) {
    const int32_t qmax = (1 << bits) - 1;
    for (int64_t g0 = 0, g = 0; g0 < n; g0 += q.group, g++) {
        const int64_t g1 = g0 + q.group < n ? g0 + q.group : n;
        float lo = 0.0f, hi = 0.0f, amax = 0.0f;
        for (int64_t i = g0; i < g1; i++) {
            lo = fminf(lo, w[i]);
            hi = fmaxf(hi, w[i]);
            amax = fmaxf(amax, fabsf(w[i]));
        }
        float s;
        int32_t z;
        if (q.asym) {
            s = (hi - lo) / (float)qmax;
            if (!(s > 0.0f)) s = 1.0f;
            s = sq_f16_to_f32(sq_f32_to_f16(s));
            z = (int32_t)lrintf(-lo / s);
            z = z < 0 ? 0 : z > qmax ? qmax : z;
        } else {
            s = amax / (float)((1 << (bits - 1)) - 1);
            if (!(s > 0.0f)) s = 1.0f;
            s = sq_f16_to_f32(sq_f32_to_f16(s));
            z = 1 << (bits - 1);
        }
        scales[g] = s;
        if (zeros) zeros[g] = (uint8_t)z;
        for (int64_t i = g0; i < g1; i++) {
            int32_t c = (int32_t)lrintf(w[i] / s) + z;
            codes[i] = (uint8_t)(c < 0 ? 0 : c > qmax ? qmax : c);
        }
    }
}

/* Quantizes the 2-D float tensor src into *dst (a new owned tensor of the same name). */
static inline sq_status sq_tinyq_tensor(const sq_tensor *src, sq_type type, sq_qparams q, sq_tensor *dst) {
    memset(dst, 0, sizeof *dst);
    if (src->n_dims != 2) return sq_errorf(SQ_ERR_ARG, "tinyquant: '%s' is not a matrix", src->name);
    const int64_t rows = src->shape[0], cols = src->shape[1];
    if (q.group > cols) q.group = (int32_t)cols; /* one group per row: stored as the row length */
    sq_status st = sq_qparams_validate(type, q, cols, src->name);
    if (st) return st;
    dst->type = type;
    dst->q = q;
    dst->n_dims = 2;
    dst->shape[0] = rows;
    dst->shape[1] = cols;
    dst->nbytes = sq_tensor_bytes(type, q, 2, dst->shape);
    dst->name = sq_strdup(src->name);
    dst->data = malloc(dst->nbytes ? dst->nbytes : 1);
    dst->owns_data = true;
    const int64_t ng = (cols + q.group - 1) / q.group;
    float *row = malloc(sizeof(float) * (size_t)(cols + 1)), *scales = malloc(sizeof(float) * (size_t)(ng + 1));
    uint8_t *codes = malloc((size_t)cols + 1), *zeros = malloc((size_t)ng + 1);
    const size_t rb = sq_row_bytes(type, cols, q), src_rb = src->nbytes / (size_t)(rows ? rows : 1);
    if (!dst->name || !dst->data || !row || !scales || !codes || !zeros) st = sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int64_t r = 0; r < rows && !st; r++) {
        st = sq_convert_rows(row, SQ_TYPE_F32, (const char *)src->data + (size_t)r * src_rb, src->type, cols);
        if (st) break;
        sq_tinyq_rtn_row(row, cols, sq_type_bits(type), q, codes, scales, zeros);
        st = sq_qrow_pack(type, q, cols, codes, scales, q.asym ? zeros : NULL, (char *)dst->data + (size_t)r * rb);
    }
    free(row);
    free(scales);
    free(codes);
    free(zeros);
    if (st) sq_tensor_release(dst);
    return st;
}

/* The f32 tensor of a quantized tensor's dequantized values (w = s * (q - z)). */
static inline sq_status sq_tinyq_dequant_tensor(const sq_tensor *src, sq_tensor *dst) {
    memset(dst, 0, sizeof *dst);
    const int64_t rows = src->shape[0], cols = src->shape[1];
    dst->type = SQ_TYPE_F32;
    dst->n_dims = 2;
    dst->shape[0] = rows;
    dst->shape[1] = cols;
    dst->nbytes = (size_t)(rows * cols) * sizeof(float);
    dst->name = sq_strdup(src->name);
    dst->data = malloc(dst->nbytes ? dst->nbytes : 1);
    dst->owns_data = true;
    if (!dst->name || !dst->data) {
        sq_tensor_release(dst);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    const size_t rb = sq_row_bytes(src->type, cols, src->q);
    for (int64_t r = 0; r < rows; r++)
        sq_qrow_dequant(src->type, src->q, cols, (const char *)src->data + (size_t)r * rb,
                        (float *)dst->data + r * cols);
    return SQ_OK;
}

/* Replaces every matrix of c (the linears, the head, and the embedding when with_embed)
 * by its quantized version, in place. */
static inline sq_status sq_tinyq_checkpoint(sq_checkpoint *c, sq_type type, sq_qparams q, bool with_embed) {
    for (int32_t i = 0; i < c->n_tensors; i++) {
        sq_tensor *t = &c->tensors[i];
        if (t->n_dims != 2 || (!with_embed && strcmp(t->name, "model.embed_tokens.weight") == 0)) continue;
        sq_tensor qt;
        sq_status st = sq_tinyq_tensor(t, type, q, &qt);
        if (st) return st;
        sq_tensor_release(t);
        *t = qt;
    }
    return SQ_OK;
}

/* Replaces every quantized tensor of c by its dequantized f32 values, in place. */
static inline sq_status sq_tinyq_checkpoint_dequant(sq_checkpoint *c) {
    for (int32_t i = 0; i < c->n_tensors; i++) {
        sq_tensor *t = &c->tensors[i];
        if (!sq_type_is_quant(t->type)) continue;
        sq_tensor ft;
        sq_status st = sq_tinyq_dequant_tensor(t, &ft);
        if (st) return st;
        sq_tensor_release(t);
        *t = ft;
    }
    return SQ_OK;
}

#endif
