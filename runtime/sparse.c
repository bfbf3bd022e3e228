/* sparse.c - sparse tensor types (docs/sparse-format.md): row sizes, parameter checks,
 * the reference packer and unpacker of the row layouts in sparse_internal.h, and the
 * exporter's choice of encoding for a tensor of pruned weights.
 *
 * N:M semi-structured sparsity follows NVIDIA's 2:4 format (Mishra et al. 2021,
 * "Accelerating Sparse Deep Neural Networks": N values + their in-group indices per group
 * of M); the unstructured type is a bitmap-compressed row (a bit per weight + the
 * nonzeros in order), as in e.g. SparseRT / the bitmask formats of DeepSparse. Plain
 * byte-by-byte code: it is what the kernels and the tests are checked against.
 */
#include "sparse_internal.h"

#include <stdlib.h>

bool sq_type_is_sparse(sq_type t) { return t >= SQ_TYPE_S24_F16 && t <= SQ_TYPE_SMASK_F32; }

sq_type sq_sparse_value_type(sq_type t) {
    return t == SQ_TYPE_S24_F16 || t == SQ_TYPE_S48_F16 || t == SQ_TYPE_SMASK_F16 ? SQ_TYPE_F16 : SQ_TYPE_F32;
}

size_t sq_sparse_row_bytes(sq_type t, int64_t cols, sq_qparams q) {
    if (!sq_type_is_sparse(t)) return 0;
    return sq_slayout_of(t, q, cols).row_bytes;
}

sq_status sq_sparse_validate(sq_type t, sq_qparams q, int64_t cols, const char *what) {
    if (!sq_type_is_sparse(t)) return sq_errorf(SQ_ERR_FORMAT, "%s: %s is not a sparse type", what, sq_type_name(t));
    const sq_slayout L = sq_slayout_of(t, q, cols);
    if (L.row_bytes) return SQ_OK;
    if (q.asym) return sq_errorf(SQ_ERR_FORMAT, "%s: a %s tensor cannot be asymmetric", what, sq_type_name(t));
    if (L.m && cols % L.m != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s needs rows of a multiple of %d weights, not %lld", what,
                         sq_type_name(t), L.m, (long long)cols);
    if (L.m && q.group != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: a %s tensor cannot have a group parameter (%d)", what, sq_type_name(t),
                         q.group);
    if (!L.m && (q.group < 0 || q.group > cols))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s capacity %d is outside 0..%lld (the row length)", what,
                         sq_type_name(t), q.group, (long long)cols);
    return sq_errorf(SQ_ERR_FORMAT, "%s: rows of %lld weights are too large", what, (long long)cols);
}

/* Raw value bits of element i (vbytes 2 or 4). */
static inline uint32_t raw_at(const void *src, int32_t vbytes, int64_t i) {
    const uint8_t *p = (const uint8_t *)src + (size_t)i * (size_t)vbytes;
    return vbytes == 2 ? (uint32_t)(p[0] | (p[1] << 8))
                       : (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void raw_put(void *dst, int32_t vbytes, int64_t i, uint32_t v) {
    uint8_t *p = (uint8_t *)dst + (size_t)i * (size_t)vbytes;
    for (int32_t k = 0; k < vbytes; k++) p[k] = (uint8_t)(v >> (8 * k));
}

/* ===== Packing ===== */

sq_status sq_srow_pack(sq_type t, sq_qparams q, int64_t cols, const void *src, void *dst) {
    if (!sq_type_is_sparse(t)) return sq_errorf(SQ_ERR_ARG, "sq_srow_pack: %s is not a sparse type", sq_type_name(t));
    if (sq_sparse_validate(t, q, cols, "sq_srow_pack")) return SQ_ERR_ARG;
    const sq_slayout L = sq_slayout_of(t, q, cols);
    /* check first, so nothing is written for a row that does not fit */
    if (L.m) {
        for (int64_t g = 0; g < cols / L.m; g++) {
            int32_t nz = 0;
            for (int32_t j = 0; j < L.m; j++) nz += raw_at(src, L.vbytes, g * L.m + j) != 0;
            if (nz > L.n)
                return sq_errorf(SQ_ERR_ARG, "sq_srow_pack: %d nonzeros in columns %lld..%lld, more than %d:%d allows",
                                 nz, (long long)(g * L.m), (long long)(g * L.m + L.m - 1), L.n, L.m);
        }
    } else {
        int64_t nz = 0;
        for (int64_t c = 0; c < cols; c++) nz += raw_at(src, L.vbytes, c) != 0;
        if (nz > L.n_vals)
            return sq_errorf(SQ_ERR_ARG, "sq_srow_pack: %lld nonzeros, more than the capacity %lld", (long long)nz,
                             (long long)L.n_vals);
    }
    uint8_t *row = dst;
    memset(row, 0, L.row_bytes);
    if (L.m) {
        /* each group: its nonzeros' positions, then the lowest zero positions up to N, ascending */
        for (int64_t g = 0; g < cols / L.m; g++) {
            int32_t pos[8], k = 0;
            int32_t nz = 0;
            for (int32_t j = 0; j < L.m; j++) nz += raw_at(src, L.vbytes, g * L.m + j) != 0;
            int32_t zeros_needed = L.n - nz;
            for (int32_t j = 0; j < L.m; j++) {
                bool keep = raw_at(src, L.vbytes, g * L.m + j) != 0;
                if (!keep && zeros_needed > 0) {
                    keep = true;
                    zeros_needed--;
                }
                if (keep) pos[k++] = j;
            }
            for (int32_t i = 0; i < L.n; i++) {
                const int64_t s = g * L.n + i;
                row[(s * L.ibits) >> 3] |= (uint8_t)(pos[i] << ((s * L.ibits) & 7));
                raw_put(row + L.vals_off, L.vbytes, s, raw_at(src, L.vbytes, g * L.m + pos[i]));
            }
        }
    } else {
        int64_t v = 0;
        for (int64_t c = 0; c < cols; c++) {
            uint32_t x = raw_at(src, L.vbytes, c);
            if (!x) continue;
            row[c >> 3] |= (uint8_t)(1u << (c & 7));
            raw_put(row + L.vals_off, L.vbytes, v++, x);
        }
    }
    return SQ_OK;
}

sq_status sq_srow_unpack(sq_type t, sq_qparams q, int64_t cols, const void *src, void *dst) {
    if (!sq_type_is_sparse(t) || sq_sparse_validate(t, q, cols, "sq_srow_unpack"))
        return sq_errorf(SQ_ERR_ARG, "sq_srow_unpack: bad type or parameters");
    const sq_slayout L = sq_slayout_of(t, q, cols);
    const uint8_t *row = src;
    memset(dst, 0, (size_t)cols * (size_t)L.vbytes);
    /* padding is zero */
    for (size_t b = (size_t)L.meta_bytes; b < L.vals_off; b++)
        if (row[b]) return sq_errorf(SQ_ERR_FORMAT, "nonzero padding after the row's %s", L.m ? "indices" : "mask");
    for (size_t b = L.vals_off + (size_t)L.n_vals * (size_t)L.vbytes; b < L.row_bytes; b++)
        if (row[b]) return sq_errorf(SQ_ERR_FORMAT, "nonzero padding after the row's values");
    if (L.m) {
        if ((L.n_vals * L.ibits) & 7 && row[(L.n_vals * L.ibits) >> 3] >> ((L.n_vals * L.ibits) & 7))
            return sq_errorf(SQ_ERR_FORMAT, "nonzero padding after the row's indices");
        for (int64_t g = 0; g < cols / L.m; g++) {
            int32_t prev = -1;
            for (int32_t i = 0; i < L.n; i++) {
                const int64_t s = g * L.n + i;
                const int32_t j = sq_snm_idx(&L, row, s);
                if (j <= prev || j >= L.m)
                    return sq_errorf(SQ_ERR_FORMAT, "%d:%d group %lld: in-group index %d out of order or range", L.n,
                                     L.m, (long long)g, j);
                prev = j;
                raw_put(dst, L.vbytes, g * L.m + j, raw_at(row + L.vals_off, L.vbytes, s));
            }
        }
    } else {
        int64_t v = 0;
        for (int64_t c = 0; c < cols; c++) {
            if (!((row[c >> 3] >> (c & 7)) & 1)) continue;
            if (v >= L.n_vals)
                return sq_errorf(SQ_ERR_FORMAT, "bitmask row marks more weights than its %lld values", (long long)L.n_vals);
            const uint32_t x = raw_at(row + L.vals_off, L.vbytes, v++);
            if (!x) return sq_errorf(SQ_ERR_FORMAT, "bitmask row stores a zero at column %lld", (long long)c);
            raw_put(dst, L.vbytes, c, x);
        }
        if (cols & 7 && row[cols >> 3] >> (cols & 7)) return sq_errorf(SQ_ERR_FORMAT, "bitmask row marks columns past its end");
        for (; v < L.n_vals; v++)
            if (raw_at(row + L.vals_off, L.vbytes, v))
                return sq_errorf(SQ_ERR_FORMAT, "bitmask row has a value past its marked weights");
    }
    return SQ_OK;
}

void sq_srow_dequant(sq_type t, sq_qparams q, int64_t cols, const void *src, float *dst) {
    const sq_slayout L = sq_slayout_of(t, q, cols);
    SQ_ASSERT(L.row_bytes || cols == 0);
    const uint8_t *row = src;
    for (int64_t c = 0; c < cols; c++) dst[c] = 0.0f;
    if (L.m) {
        for (int64_t s = 0; s < L.n_vals; s++) dst[s / L.n * L.m + (sq_snm_idx(&L, row, s) & (L.m - 1))] = sq_sval(&L, row, s);
    } else {
        int64_t v = 0;
        for (int64_t c = 0; c < cols && v < L.n_vals; c++)
            if ((row[c >> 3] >> (c & 7)) & 1) dst[c] = sq_sval(&L, row, v++);
    }
}

/* ===== Tensors ===== */

/* 2-D tensors of a value type with rows of `cols`: writes each row packed as `t`. */
static sq_status pack_tensor(const sq_tensor *in, sq_type t, sq_qparams q, sq_tensor *out) {
    const int64_t rows = in->shape[0], cols = in->shape[1];
    const size_t rb = sq_row_bytes(t, cols, q), in_rb = (size_t)cols * (size_t)(in->type == SQ_TYPE_F16 ? 2 : 4);
    memset(out, 0, sizeof *out);
    out->nbytes = (size_t)rows * rb;
    out->data = aligned_alloc(64, (out->nbytes + 63) / 64 * 64 + 64);
    size_t nl = strlen(in->name) + 1;
    out->name = malloc(nl);
    if (!out->data || !out->name) {
        free(out->data);
        free(out->name);
        memset(out, 0, sizeof *out);
        return sq_errorf(SQ_ERR_OOM, "out of memory packing '%s'", in->name);
    }
    memcpy(out->name, in->name, nl);
    out->owns_data = true;
    out->type = t;
    out->q = q;
    out->n_dims = 2;
    out->shape[0] = rows;
    out->shape[1] = cols;
    for (int64_t r = 0; r < rows; r++) {
        sq_status st = sq_srow_pack(t, q, cols, (const uint8_t *)in->data + (size_t)r * in_rb, (uint8_t *)out->data + (size_t)r * rb);
        if (st) {
            sq_tensor_release(out);
            return st;
        }
    }
    return SQ_OK;
}

sq_status sq_tensor_sparsify(const sq_tensor *in, sq_tensor *out, bool *changed) {
    *changed = false;
    if (in->n_dims != 2 || (in->type != SQ_TYPE_F16 && in->type != SQ_TYPE_F32) || in->shape[0] <= 0 ||
        in->shape[1] <= 0)
        return SQ_OK;
    const bool h = in->type == SQ_TYPE_F16;
    const int32_t vb = h ? 2 : 4;
    const int64_t rows = in->shape[0], cols = in->shape[1];
    bool ok24 = cols % 4 == 0, ok48 = cols % 8 == 0;
    int64_t kmax = 0;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)in->data + (size_t)r * (size_t)cols * (size_t)vb;
        int64_t nz = 0, g4 = 0, g8 = 0;
        for (int64_t c = 0; c < cols; c++) {
            const int nzc = raw_at(row, vb, c) != 0;
            nz += nzc;
            g4 += nzc;
            g8 += nzc;
            if ((c & 3) == 3) {
                if (g4 > 2) ok24 = false;
                g4 = 0;
            }
            if ((c & 7) == 7) {
                if (g8 > 4) ok48 = false;
                g8 = 0;
            }
        }
        if (nz > kmax) kmax = nz;
    }
    if (kmax > INT32_MAX) return SQ_OK;
    const size_t dense = (size_t)cols * (size_t)vb;
    struct {
        sq_type t;
        sq_qparams q;
        bool ok;
    } cand[3] = {
        {h ? SQ_TYPE_S24_F16 : SQ_TYPE_S24_F32, {0, false}, ok24},
        {h ? SQ_TYPE_S48_F16 : SQ_TYPE_S48_F32, {0, false}, ok48},
        {h ? SQ_TYPE_SMASK_F16 : SQ_TYPE_SMASK_F32, {(int32_t)kmax, false}, true},
    };
    int best = -1;
    size_t best_rb = dense - dense / 8; /* must save at least 1/8 of the bytes */
    for (int i = 0; i < 3; i++) {
        if (!cand[i].ok) continue;
        size_t rb = sq_row_bytes(cand[i].t, cols, cand[i].q);
        if (rb && rb <= best_rb && (best < 0 || rb < best_rb)) {
            best = i;
            best_rb = rb;
        }
    }
    if (best < 0) return SQ_OK;
    sq_status st = pack_tensor(in, cand[best].t, cand[best].q, out);
    if (st == SQ_OK) *changed = true;
    return st;
}

sq_status sq_tensor_densify(const sq_tensor *in, sq_tensor *out) {
    if (!sq_type_is_sparse(in->type) || in->n_dims != 2 || sq_sparse_validate(in->type, in->q, in->shape[1], in->name))
        return sq_errorf(SQ_ERR_ARG, "tensor '%s' is not a valid sparse tensor", in->name);
    const int64_t rows = in->shape[0], cols = in->shape[1];
    const sq_type vt = sq_sparse_value_type(in->type);
    const size_t rb = sq_row_bytes(in->type, cols, in->q), out_rb = (size_t)cols * (vt == SQ_TYPE_F16 ? 2u : 4u);
    if (in->nbytes != (size_t)rows * rb) return sq_errorf(SQ_ERR_FORMAT, "tensor '%s' has the wrong size", in->name);
    memset(out, 0, sizeof *out);
    out->nbytes = (size_t)rows * out_rb;
    out->data = aligned_alloc(64, (out->nbytes + 63) / 64 * 64 + 64);
    size_t nl = strlen(in->name) + 1;
    out->name = malloc(nl);
    if (!out->data || !out->name) {
        free(out->data);
        free(out->name);
        memset(out, 0, sizeof *out);
        return sq_errorf(SQ_ERR_OOM, "out of memory unpacking '%s'", in->name);
    }
    memcpy(out->name, in->name, nl);
    out->owns_data = true;
    out->type = vt;
    out->n_dims = 2;
    out->shape[0] = rows;
    out->shape[1] = cols;
    for (int64_t r = 0; r < rows; r++) {
        sq_status st = sq_srow_unpack(in->type, in->q, cols, (const uint8_t *)in->data + (size_t)r * rb,
                                      (uint8_t *)out->data + (size_t)r * out_rb);
        if (st) {
            sq_error_prefix(in->name);
            sq_tensor_release(out);
            return SQ_ERR_FORMAT;
        }
    }
    return SQ_OK;
}
