/* quant.c - group-quantized types q8g, q6g, q5g, q4g and q3g (docs/quantization.md): row sizes,
 * parameter checks, and the reference packer, unpacker and dequantizer of the row layout
 * specified in docs/sqz-format.md (the layout math itself is in quant_internal.h).
 *
 * These functions are the definition the kernels and the tests are checked against, so
 * they are plain byte-by-byte code: little-endian fields written explicitly, padding
 * always zero, and a packed row is a pure function of its codes, scales and zeros (the
 * model store's exporter and squish-quantize produce byte-identical files from the same
 * quantization).
 */
#include "quant_internal.h"

#include <string.h>

bool sq_type_is_quant(sq_type t) {
    return t == SQ_TYPE_Q8G || t == SQ_TYPE_Q6G || t == SQ_TYPE_Q5G || t == SQ_TYPE_Q4G || t == SQ_TYPE_Q3G;
}

int32_t sq_type_bits(sq_type t) {
    switch (t) {
    case SQ_TYPE_F32: return 32;
    case SQ_TYPE_F16:
    case SQ_TYPE_BF16: return 16;
    case SQ_TYPE_Q8G: return 8;
    case SQ_TYPE_Q6G: return 6;
    case SQ_TYPE_Q5G: return 5;
    case SQ_TYPE_Q4G: return 4;
    case SQ_TYPE_Q3G: return 3;
    default: return 0;
    }
}

/* group > 0 and a multiple of 32, or one group spanning the whole row. */
static bool qparams_ok(sq_qparams q, int64_t cols) {
    return q.group > 0 && (q.group % SQ_QCHUNK == 0 || (int64_t)q.group >= cols);
}

sq_status sq_qparams_validate(sq_type t, sq_qparams q, int64_t cols, const char *what) {
    if (!sq_type_traits_get(t)) return sq_errorf(SQ_ERR_FORMAT, "%s: invalid tensor type %d", what, (int)t);
    if (sq_type_is_sparse(t)) return sq_sparse_validate(t, q, cols, what);
    if (!sq_type_is_quant(t)) {
        if (q.group != 0 || q.asym)
            return sq_errorf(SQ_ERR_FORMAT, "%s: a %s tensor cannot have quantization parameters (group %d%s)", what,
                             sq_type_name(t), q.group, q.asym ? ", asymmetric" : "");
        return SQ_OK;
    }
    if (cols < 0) return sq_errorf(SQ_ERR_FORMAT, "%s: %lld columns", what, (long long)cols);
    if (!qparams_ok(q, cols))
        return sq_errorf(SQ_ERR_FORMAT,
                         "%s: %s group size %d is invalid for rows of %lld (it must be a multiple of 32, or the whole "
                         "row)",
                         what, sq_type_name(t), q.group, (long long)cols);
    if (sq_qlayout_of(t, q, cols).row_bytes == 0 && cols > 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: rows of %lld weights are too large", what, (long long)cols);
    return SQ_OK;
}

bool sq_type_supports_act8(sq_type t) { return t == SQ_TYPE_Q8G || t == SQ_TYPE_Q4G; }

sq_status sq_act8_validate(sq_type t, bool act8, const char *what) {
    if (act8 && !sq_type_supports_act8(t))
        return sq_errorf(SQ_ERR_FORMAT, "%s: the ACT8 flag (int8 activations) is for q8g and q4g tensors, not %s", what,
                         sq_type_name(t));
    return SQ_OK;
}

size_t sq_row_bytes(sq_type t, int64_t cols, sq_qparams q) {
    if (sq_type_is_sparse(t)) return sq_sparse_row_bytes(t, cols, q);
    if (!sq_type_is_quant(t)) return sq_type_row_bytes(t, cols);
    if (cols < 0 || !qparams_ok(q, cols)) return 0;
    return sq_qlayout_of(t, q, cols).row_bytes;
}

size_t sq_tensor_bytes(sq_type t, sq_qparams q, int32_t n_dims, const int64_t *shape) {
    if (!sq_type_is_quant(t) && !sq_type_is_sparse(t)) return sq_tensor_expected_bytes(t, n_dims, shape);
    if (n_dims != 2 || shape[0] < 0 || shape[1] < 0) return 0;
    size_t rb = sq_row_bytes(t, shape[1], q);
    uint64_t total;
    if (__builtin_mul_overflow((uint64_t)shape[0], (uint64_t)rb, &total) || total > SIZE_MAX) return 0;
    return (size_t)total;
}

/* ===== Packing ===== */

static void chunk_encode(sq_type t, const uint8_t c[SQ_QCHUNK], uint8_t *p) {
    if (t == SQ_TYPE_Q8G) {
        memcpy(p, c, SQ_QCHUNK);
    } else if (t == SQ_TYPE_Q4G || t == SQ_TYPE_Q5G || t == SQ_TYPE_Q6G) {
        /* bits 0-3 exactly as q4g; q5g: bit 4 in a u32 after them; q6g: bits 4-5 in q3g-style planes */
        for (int j = 0; j < 16; j++) p[j] = (uint8_t)((c[j] & 15) | ((c[j + 16] & 15) << 4));
        if (t == SQ_TYPE_Q5G) {
            uint32_t hi = 0;
            for (int j = 0; j < SQ_QCHUNK; j++) hi |= (uint32_t)((c[j] >> 4) & 1) << j;
            for (int k = 0; k < 4; k++) p[16 + k] = (uint8_t)(hi >> (8 * k));
        } else if (t == SQ_TYPE_Q6G) {
            for (int j = 0; j < 8; j++)
                p[16 + j] = (uint8_t)(((c[j] >> 4) & 3) | (((c[j + 8] >> 4) & 3) << 2) | (((c[j + 16] >> 4) & 3) << 4) |
                                      (((c[j + 24] >> 4) & 3) << 6));
        }
    } else {
        uint32_t hi = 0;
        for (int j = 0; j < 8; j++)
            p[j] = (uint8_t)((c[j] & 3) | ((c[j + 8] & 3) << 2) | ((c[j + 16] & 3) << 4) | ((c[j + 24] & 3) << 6));
        for (int j = 0; j < SQ_QCHUNK; j++) hi |= (uint32_t)((c[j] >> 2) & 1) << j;
        for (int k = 0; k < 4; k++) p[8 + k] = (uint8_t)(hi >> (8 * k));
    }
}

/* Writes exactly sq_row_bytes(t, cols, q) bytes at dst, padding zero; zeros is read only
 * for asymmetric rows (may be NULL otherwise). Nothing is written when an input is refused. */
sq_status sq_qrow_pack(sq_type t, sq_qparams q, int64_t cols, const uint8_t *codes, const float *scales,
                       const uint8_t *zeros, void *dst) {
    sq_status st;
    if (!sq_type_is_quant(t)) return sq_errorf(SQ_ERR_ARG, "sq_qrow_pack: %s is not a quantized type", sq_type_name(t));
    if ((st = sq_qparams_validate(t, q, cols, "sq_qrow_pack"))) return SQ_ERR_ARG;
    if (q.asym && !zeros) return sq_errorf(SQ_ERR_ARG, "sq_qrow_pack: an asymmetric row needs zero points");
    const sq_qlayout L = sq_qlayout_of(t, q, cols);
    const int32_t qmax = (1 << L.bits) - 1;
    for (int64_t i = 0; i < cols; i++)
        if (codes[i] > qmax)
            return sq_errorf(SQ_ERR_ARG, "sq_qrow_pack: code %d at column %lld does not fit in %d bits", codes[i],
                             (long long)i, L.bits);
    for (int64_t g = 0; g < L.n_groups; g++) {
        uint16_t h = sq_f32_to_f16(scales[g]);
        float back = sq_f16_to_f32(h);
        if (memcmp(&back, &scales[g], sizeof back) != 0)
            return sq_errorf(SQ_ERR_ARG, "sq_qrow_pack: scale %g of group %lld is not an fp16 value", (double)scales[g],
                             (long long)g);
        if (q.asym && zeros[g] > qmax)
            return sq_errorf(SQ_ERR_ARG, "sq_qrow_pack: zero point %d of group %lld does not fit in %d bits", zeros[g],
                             (long long)g, L.bits);
    }
    uint8_t *row = dst;
    memset(row, 0, L.row_bytes);
    for (int64_t g = 0; g < L.n_groups; g++) {
        uint16_t h = sq_f32_to_f16(scales[g]);
        row[2 * g] = (uint8_t)h;
        row[2 * g + 1] = (uint8_t)(h >> 8);
        if (q.asym) row[L.zeros_off + (size_t)g] = zeros[g];
    }
    for (int64_t c = 0; c < L.n_chunks; c++) {
        uint8_t chunk[SQ_QCHUNK] = {0};
        int64_t n = cols - c * SQ_QCHUNK < SQ_QCHUNK ? cols - c * SQ_QCHUNK : SQ_QCHUNK;
        memcpy(chunk, codes + c * SQ_QCHUNK, (size_t)n);
        chunk_encode(t, chunk, row + L.codes_off + (size_t)c * L.chunk_bytes);
    }
    return SQ_OK;
}

/* Any of codes, scales, zeros may be NULL (not wanted). For symmetric rows zeros[] receives
 * the implied zero point 2^(bits-1). */
void sq_qrow_unpack(sq_type t, sq_qparams q, int64_t cols, const void *src, uint8_t *codes, float *scales,
                    uint8_t *zeros) {
    SQ_ASSERT(sq_type_is_quant(t) && qparams_ok(q, cols));
    const sq_qlayout L = sq_qlayout_of(t, q, cols);
    const uint8_t *row = src;
    for (int64_t g = 0; g < L.n_groups; g++) {
        if (scales) scales[g] = sq_qrow_scale(row, g);
        if (zeros) zeros[g] = (uint8_t)sq_qrow_zero(&L, q.asym, row, g);
    }
    if (!codes) return;
    for (int64_t c = 0; c < L.n_chunks; c++) {
        uint8_t chunk[SQ_QCHUNK];
        sq_qchunk_decode(t, row + L.codes_off + (size_t)c * L.chunk_bytes, chunk);
        int64_t n = cols - c * SQ_QCHUNK < SQ_QCHUNK ? cols - c * SQ_QCHUNK : SQ_QCHUNK;
        memcpy(codes + c * SQ_QCHUNK, chunk, (size_t)n);
    }
}

void sq_qrow_dequant(sq_type t, sq_qparams q, int64_t cols, const void *src, float *dst) {
    SQ_ASSERT(sq_type_is_quant(t) && qparams_ok(q, cols));
    const sq_qlayout L = sq_qlayout_of(t, q, cols);
    sq_qrow_dequant_chunks(t, q, &L, cols, src, 0, L.n_chunks, dst);
}
