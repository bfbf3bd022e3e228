/* store.c - the HDF5 model store (docs/model-store.md, version 1; FORMATS.md 7): root
 * attributes, /config typed attributes (+ json), /tokenizer attributes and datasets (vlen
 * UTF-8 tokens and merges), /tensors/<HF name> contiguous datasets in f32 or custom 16-bit
 * float types (half: fields 15,10,5,0,10 bias 15; bfloat16: 15,7,8,0,7 bias 127) moved as
 * raw bits (file type = memory type), /quant/<HF name> groups for group-quantized tensors
 * (codes, fp16 scales, zero points and the method's attributes; docs/quantization.md; the
 * store is then format version 2), /sparse/<HF name> pruning records (attributes only),
 * /provenance (attributes + compound sources table).
 * Deterministic (no timestamps, nothing time-dependent, contiguous uncompressed data) and
 * atomic (temp file + rename). Reading checks format/version and every dataset's rank,
 * shape and type against the config; each HDF5 failure becomes one sq_errorf line naming
 * the file, the object and HDF5's innermost reason. Call from one thread only.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "h5io.h"
#include "util.h"

#define STORE_FORMAT "squish-model"
#define STORE_VERSION 1   /* float tensors only */
#define STORE_VERSION_Q 2 /* with /quant (group-quantized tensors) */

/* ===== Errors ===== */

/* ===== 16-bit float types ===== */

static hid_t make_float16(bool bf16) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return -1;
    herr_t r = bf16 ? H5Tset_fields(t, 15, 7, 8, 0, 7) : H5Tset_fields(t, 15, 10, 5, 0, 10);
    if (r < 0 || H5Tset_precision(t, 16) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, bf16 ? 127 : 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* The sq_type of a dataset's float type, or -1 if it is none squish stores. */
static int classify_type(hid_t t) {
    if (H5Tget_class(t) != H5T_FLOAT || H5Tget_order(t) != H5T_ORDER_LE) return -1;
    size_t size = H5Tget_size(t);
    if (size == 4) return H5Tequal(t, H5T_IEEE_F32LE) > 0 ? SQ_TYPE_F32 : -1;
    if (size != 2 || H5Tget_precision(t) != 16 || H5Tget_offset(t) != 0) return -1;
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return -1;
    size_t bias = H5Tget_ebias(t);
    if (spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && bias == 15) return SQ_TYPE_F16;
    if (spos == 15 && epos == 7 && esize == 8 && mpos == 0 && msize == 7 && bias == 127) return SQ_TYPE_BF16;
    return -1;
}

static hid_t make_vstr(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static const char *rope_layout_name(sq_rope_layout l) { return l == SQ_ROPE_INTERLEAVED ? "interleaved" : "half"; }
static const char *rope_scaling_name(sq_rope_scaling s) {
    return s == SQ_ROPE_SCALING_LINEAR ? "linear" : s == SQ_ROPE_SCALING_LLAMA3 ? "llama3" : "none";
}

/* ===== Writer ===== */

typedef struct {
    const char *path;   /* final path, for messages */
    hid_t file, lcpl, gcpl, dcpl, dcpl_vl, f16, bf16, vstr; /* dcpl_vl: for variable-length data */
} wctx;

static sq_status w_group(wctx *w, const char *name, hid_t *g) {
    *g = H5Gcreate2(w->file, name, w->lcpl, w->gcpl, H5P_DEFAULT);
    return *g < 0 ? sq_h5_fail(SQ_ERR_IO, w->path, name, "cannot create group") : SQ_OK;
}

/* A contiguous dataset of rank 0 (dims NULL) or rank n, written from buf with mtype. */
static sq_status w_dataset(wctx *w, hid_t loc, const char *obj_name, const char *name, hid_t ftype, hid_t mtype,
                           int rank, const hsize_t *dims, const void *buf, hid_t *keep) {
    sq_status st = SQ_OK;
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR), d = -1;
    if (sp < 0 || (d = H5Dcreate2(loc, name, ftype, sp, w->lcpl, H5Tdetect_class(ftype, H5T_VLEN) > 0 || H5Tis_variable_str(ftype) > 0 ? w->dcpl_vl : w->dcpl, H5P_DEFAULT)) < 0)
        st = sq_h5_fail(SQ_ERR_IO, w->path, obj_name, "cannot create dataset");
    else if (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        st = sq_h5_fail(SQ_ERR_IO, w->path, obj_name, "cannot write dataset");
    if (keep && st == SQ_OK) {
        *keep = d;
        d = -1;
    }
    sq_h5_close(&d, H5Dclose);
    sq_h5_close(&sp, H5Sclose);
    return st;
}

static sq_status w_text(wctx *w, hid_t loc, const char *obj_name, const char *name, const char *text) {
    return w_dataset(w, loc, obj_name, name, w->vstr, w->vstr, 0, NULL, &text, NULL);
}

/* Bytes of the packed codes at the end of a quantized row: 32-weight chunks
 * (docs/quantization.md: the row is scales | zeros | pad | codes). */
static size_t q_code_bytes(sq_type t, int64_t cols) {
    const sq_type_traits *tr = sq_type_traits_get(t);
    return (size_t)((cols + 31) / 32) * (size_t)tr->block_bytes;
}

/* The effective group length of a quantized tensor's parameters. */
static int64_t q_group_len(sq_qparams q, int64_t cols) { return q.group >= cols ? cols : q.group; }

/* /quant/<name>: codes uint8 [rows, code_bytes], scales f16 [rows, n_groups], zeros uint8
 * [rows, n_groups] (asym), and the attributes of docs/model-store.md. */
static sq_status write_qtensor(wctx *w, hid_t qg, const sq_tensor *t, const sq_quant_info *qi) {
    char obj[SQ_MAX_NAME + 16];
    snprintf(obj, sizeof obj, "/quant/%s", t->name);
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const int64_t gl = q_group_len(t->q, cols), ng = cols ? (cols + gl - 1) / gl : 0;
    const size_t rb = sq_row_bytes(t->type, cols, t->q), cb = q_code_bytes(t->type, cols);
    sq_status st = SQ_OK;
    hid_t g = -1;
    uint8_t *codes = malloc((size_t)rows * cb + 1), *zeros = malloc((size_t)(rows * ng) + 1);
    uint16_t *scales = malloc((size_t)(rows * ng) * sizeof *scales + 2);
    float *srow = malloc((size_t)ng * sizeof *srow + 4);
    if (!codes || !zeros || !scales || !srow) {
        st = sq_errorf(SQ_ERR_OOM, "%s: %s: out of memory", w->path, obj);
        goto fail;
    }
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
        sq_qrow_unpack(t->type, t->q, cols, row, NULL, srow, zeros + r * ng);
        for (int64_t k = 0; k < ng; k++) scales[r * ng + k] = sq_f32_to_f16(srow[k]);
        memcpy(codes + (size_t)r * cb, row + rb - cb, cb);
    }
    g = H5Gcreate2(qg, t->name, w->lcpl, w->gcpl, H5P_DEFAULT);
    if (g < 0) {
        st = sq_h5_fail(SQ_ERR_IO, w->path, obj, "cannot create group");
        goto fail;
    }
    char o2[SQ_MAX_NAME + 32];
    hsize_t dc[2] = {(hsize_t)rows, (hsize_t)cb}, ds[2] = {(hsize_t)rows, (hsize_t)ng};
    snprintf(o2, sizeof o2, "%s/codes", obj);
    if ((st = w_dataset(w, g, o2, "codes", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, dc, codes, NULL))) goto fail;
    snprintf(o2, sizeof o2, "%s/scales", obj);
    if ((st = w_dataset(w, g, o2, "scales", w->f16, w->f16, 2, ds, scales, NULL))) goto fail;
    if (t->q.asym) {
        snprintf(o2, sizeof o2, "%s/zeros", obj);
        if ((st = w_dataset(w, g, o2, "zeros", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, ds, zeros, NULL))) goto fail;
    }
    const int64_t shape[2] = {rows, cols};
    sq_quant_info def = {.awq_alpha = -1.0};
    if (!qi) qi = &def;
    if ((st = sq_h5_attr_str(w->path, g, obj, "dtype", sq_type_name(t->type))) || (st = sq_h5_attr_i64s(w->path, g, obj, "shape", shape, 2)) ||
        (st = sq_h5_attr_str(w->path, g, obj, "method", qi->method)) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "bits", sq_type_bits(t->type))) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "group_size", gl >= cols ? 0 : (int32_t)gl)) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "symmetric", !t->q.asym)) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "act_order", qi->act_order)) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "static_groups", qi->static_groups)) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "mse", qi->mse)) || (st = sq_h5_attr_f64(w->path, g, obj, "damp", qi->damp)) ||
        (st = sq_h5_attr_f64(w->path, g, obj, "damp_used", qi->damp_used)) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "block_size", qi->block_size)) ||
        (st = sq_h5_attr_i32(w->path, g, obj, "true_sequential", qi->true_sequential)) ||
        (st = sq_h5_attr_f64(w->path, g, obj, "loss", qi->loss)) ||
        (st = sq_h5_attr_str(w->path, g, obj, "calib_sha256", qi->calib_sha256)))
        goto fail;
    if (qi->awq_alpha >= 0 && (st = sq_h5_attr_f64(w->path, g, obj, "awq_alpha", qi->awq_alpha))) goto fail;
    if (!t->q.asym && qi->grid[0] && (st = sq_h5_attr_str(w->path, g, obj, "grid", qi->grid))) goto fail;
fail:
    sq_h5_close(&g, H5Gclose);
    free(codes);
    free(zeros);
    free(scales);
    free(srow);
    return st;
}

static sq_status write_all(wctx *w, const sq_checkpoint *c) {
    sq_status st = SQ_OK;
    hid_t g = -1, d = -1, mt = -1, ft = -1;
    char created_by[64];
    snprintf(created_by, sizeof created_by, "squish %s", sq_version());
    int32_t n_q = 0;
    for (int32_t i = 0; i < c->n_tensors; i++) n_q += sq_type_is_quant(c->tensors[i].type);

    /* / */
    hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
    if (root < 0) return sq_h5_fail(SQ_ERR_IO, w->path, "/", "cannot open the root group");
    if ((st = sq_h5_attr_str(w->path, root, "/", "format", STORE_FORMAT)) != SQ_OK ||
        (st = sq_h5_attr_i32(w->path, root, "/", "format_version", n_q ? STORE_VERSION_Q : STORE_VERSION)) != SQ_OK ||
        (st = sq_h5_attr_str(w->path, root, "/", "created_by", created_by)) != SQ_OK ||
        (st = sq_h5_attr_str(w->path, root, "/", "source_format", c->source_format ? c->source_format : "")) != SQ_OK) {
        H5Gclose(root);
        return st;
    }
    H5Gclose(root);

    /* /config */
    const sq_config *k = &c->cfg;
    const char *on = "/config";
    if ((st = w_group(w, on, &g)) != SQ_OK) goto fail;
#define I32(f) if ((st = sq_h5_attr_i32(w->path, g, on, #f, (int32_t)k->f)) != SQ_OK) goto fail;
#define F64(f) if ((st = sq_h5_attr_f64(w->path, g, on, #f, (double)k->f)) != SQ_OK) goto fail;
    if ((st = sq_h5_attr_str(w->path, g, on, "arch", k->arch)) != SQ_OK) goto fail;
    I32(dim) I32(hidden_dim) I32(n_layers) I32(n_heads) I32(n_kv_heads) I32(head_dim) I32(vocab_size)
    I32(max_seq_len) I32(rope_orig_ctx)
    F64(norm_eps) F64(rope_theta) F64(rope_factor) F64(rope_low_freq_factor) F64(rope_high_freq_factor)
    if ((st = sq_h5_attr_str(w->path, g, on, "rope_layout", rope_layout_name(k->rope_layout))) != SQ_OK) goto fail;
    if ((st = sq_h5_attr_str(w->path, g, on, "rope_scaling", rope_scaling_name(k->rope_scaling))) != SQ_OK) goto fail;
    I32(tied_embeddings) I32(attn_qkv_bias) I32(attn_o_bias) I32(mlp_bias)
#undef I32
#undef F64
    if (c->config_json && (st = w_text(w, g, "/config/json", "json", c->config_json)) != SQ_OK) goto fail;
    sq_h5_close(&g, H5Gclose);

    /* /tokenizer */
    const sq_vocab *v = &c->vocab;
    if (v->n_tokens > 0) {
        on = "/tokenizer";
        if ((st = w_group(w, on, &g)) != SQ_OK) goto fail;
        if ((st = sq_h5_attr_str(w->path, g, on, "kind", v->kind == SQ_VOCAB_BPE ? "bpe" : "spm")) != SQ_OK) goto fail;
        if ((st = sq_h5_attr_str(w->path, g, on, "pre", sq_pretok_name(v->pre))) != SQ_OK) goto fail;
#define I32(f) if ((st = sq_h5_attr_i32(w->path, g, on, #f, (int32_t)v->f)) != SQ_OK) goto fail;
        I32(bos_id) I32(eos_id) I32(unk_id) I32(pad_id) I32(add_bos) I32(add_eos) I32(add_dummy_prefix)
        I32(remove_extra_whitespaces) I32(byte_fallback)
#undef I32
        hsize_t n = (hsize_t)v->n_tokens;
        if ((st = w_dataset(w, g, "/tokenizer/tokens", "tokens", w->vstr, w->vstr, 1, &n, v->tokens, NULL)) != SQ_OK ||
            (st = w_dataset(w, g, "/tokenizer/scores", "scores", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, v->scores,
                            NULL)) != SQ_OK ||
            (st = w_dataset(w, g, "/tokenizer/token_type", "token_type", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &n,
                            v->types, NULL)) != SQ_OK)
            goto fail;
        if (v->n_merges > 0) {
            hsize_t nm = (hsize_t)v->n_merges;
            if ((st = w_dataset(w, g, "/tokenizer/merges", "merges", w->vstr, w->vstr, 1, &nm, v->merges, NULL)) !=
                SQ_OK)
                goto fail;
        }
        if (c->tokenizer_json && (st = w_text(w, g, "/tokenizer/json", "json", c->tokenizer_json)) != SQ_OK) goto fail;
        sq_h5_close(&g, H5Gclose);
    }

    /* /tensors */
    if ((st = w_group(w, "/tensors", &g)) != SQ_OK) goto fail;
    for (int32_t i = 0; i < c->n_tensors; i++) {
        const sq_tensor *t = &c->tensors[i];
        if (sq_tensor_name_ignorable(t->name)) continue;
        char obj[SQ_MAX_NAME + 16];
        snprintf(obj, sizeof obj, "/tensors/%s", t->name);
        if (strchr(t->name, '/') || strcmp(t->name, ".") == 0 || strcmp(t->name, "..") == 0) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': name cannot be stored as an HDF5 dataset", w->path, t->name);
            goto fail;
        }
        if (sq_type_is_quant(t->type)) continue; /* /quant below */
        hid_t type = t->type == SQ_TYPE_F16 ? w->f16 : t->type == SQ_TYPE_BF16 ? w->bf16 : H5T_IEEE_F32LE;
        hid_t mem = t->type == SQ_TYPE_F32 ? H5T_NATIVE_FLOAT : type; /* raw bits */
        hsize_t dims[SQ_MAX_DIMS];
        for (int32_t j = 0; j < t->n_dims; j++) dims[j] = (hsize_t)t->shape[j];
        if ((st = w_dataset(w, g, obj, t->name, type, mem, t->n_dims, dims, t->data, &d)) != SQ_OK) goto fail;
        if ((st = sq_h5_attr_str(w->path, d, obj, "dtype", sq_type_name(t->type))) != SQ_OK) goto fail;
        sq_h5_close(&d, H5Dclose);
    }
    sq_h5_close(&g, H5Gclose);

    /* /quant */
    if (n_q) {
        if ((st = w_group(w, "/quant", &g)) != SQ_OK) goto fail;
        for (int32_t i = 0; i < c->n_tensors; i++) {
            const sq_tensor *t = &c->tensors[i];
            if (!sq_type_is_quant(t->type)) continue;
            if ((st = write_qtensor(w, g, t, sq_checkpoint_quant_info(c, t->name))) != SQ_OK) goto fail;
        }
        sq_h5_close(&g, H5Gclose);
    }

    /* /sparse: pruning records (attributes only; the weights stay in /tensors or /quant),
     * written in name order, the order the reader lists them in, so store -> read -> store
     * is byte-identical */
    if (c->n_sparse > 0) {
        if ((st = w_group(w, "/sparse", &g)) != SQ_OK) goto fail;
        const sq_sparse_info *prev = NULL;
        for (int32_t i = 0; i < c->n_sparse; i++) {
            const sq_sparse_info *si = NULL; /* the smallest name after prev's (n_sparse is small) */
            for (int32_t j = 0; j < c->n_sparse; j++)
                if ((!prev || strcmp(c->sparse[j].name, prev->name) > 0) && (!si || strcmp(c->sparse[j].name, si->name) < 0))
                    si = &c->sparse[j];
            prev = si;
            char obj[SQ_MAX_NAME + 16];
            snprintf(obj, sizeof obj, "/sparse/%s", si->name);
            if (!sq_checkpoint_find(c, si->name)) {
                st = sq_errorf(SQ_ERR_ARG, "%s: pruning record for '%s', a tensor the checkpoint does not have", w->path,
                               si->name);
                goto fail;
            }
            hid_t sg = H5Gcreate2(g, si->name, w->lcpl, w->gcpl, H5P_DEFAULT);
            if (sg < 0) {
                st = sq_h5_fail(SQ_ERR_IO, w->path, obj, "cannot create group");
                goto fail;
            }
            if ((st = sq_h5_attr_str(w->path, sg, obj, "method", si->method)) || (st = sq_h5_attr_i32(w->path, sg, obj, "n", si->n)) ||
                (st = sq_h5_attr_i32(w->path, sg, obj, "m", si->m)) || (st = sq_h5_attr_f64(w->path, sg, obj, "sparsity", si->sparsity))) {
                H5Gclose(sg);
                goto fail;
            }
            H5Gclose(sg);
        }
        sq_h5_close(&g, H5Gclose);
    }

    /* /provenance */
    on = "/provenance";
    if ((st = w_group(w, on, &g)) != SQ_OK) goto fail;
    if (c->tool_version && (st = sq_h5_attr_str(w->path, g, on, "tool_version", c->tool_version)) != SQ_OK) goto fail;
    if (c->command_line && (st = sq_h5_attr_str(w->path, g, on, "command_line", c->command_line)) != SQ_OK) goto fail;
    if (c->n_sources > 0) {
        typedef struct {
            const char *path;
            const char *sha256;
            uint64_t size;
        } rec;
        rec *recs = calloc((size_t)c->n_sources, sizeof *recs);
        if (!recs) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", w->path);
            goto fail;
        }
        for (int32_t i = 0; i < c->n_sources; i++) {
            recs[i].path = c->sources[i].path ? c->sources[i].path : "";
            recs[i].sha256 = c->sources[i].sha256;
            recs[i].size = c->sources[i].size;
        }
        mt = H5Tcreate(H5T_COMPOUND, sizeof(rec));
        if (mt < 0 || H5Tinsert(mt, "path", HOFFSET(rec, path), w->vstr) < 0 ||
            H5Tinsert(mt, "sha256", HOFFSET(rec, sha256), w->vstr) < 0 ||
            H5Tinsert(mt, "size", HOFFSET(rec, size), H5T_NATIVE_UINT64) < 0 || (ft = H5Tcopy(mt)) < 0 ||
            H5Tpack(ft) < 0) {
            free(recs);
            st = sq_h5_fail(SQ_ERR_IO, w->path, "/provenance/sources", "cannot make the compound type");
            goto fail;
        }
        hsize_t n = (hsize_t)c->n_sources;
        st = w_dataset(w, g, "/provenance/sources", "sources", ft, mt, 1, &n, recs, NULL);
        free(recs);
        if (st != SQ_OK) goto fail;
    }
fail:
    sq_h5_close(&mt, H5Tclose);
    sq_h5_close(&ft, H5Tclose);
    sq_h5_close(&d, H5Dclose);
    sq_h5_close(&g, H5Gclose);
    return st;
}

sq_status sq_store_write(const char *path, const sq_checkpoint *c) {
    sq_status st = SQ_OK;
    hid_t fcpl = -1, fapl = -1;
    char *tmp = NULL;
    wctx w = {path, -1, -1, -1, -1, -1, -1, -1, -1};
    sq_h5_quiet();
    if ((st = sq_checkpoint_validate(c, path)) != SQ_OK) return st;
    if (!(tmp = sq_atomic_tmp_name(path))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);

    fcpl = H5Pcreate(H5P_FILE_CREATE);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    w.lcpl = H5Pcreate(H5P_LINK_CREATE);
    w.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w.dcpl = H5Pcreate(H5P_DATASET_CREATE);
    w.dcpl_vl = H5Pcreate(H5P_DATASET_CREATE);
    w.f16 = make_float16(false);
    w.bf16 = make_float16(true);
    w.vstr = make_vstr();
    if (fcpl < 0 || fapl < 0 || w.lcpl < 0 || w.gcpl < 0 || w.dcpl < 0 || w.dcpl_vl < 0 || w.f16 < 0 || w.bf16 < 0 || w.vstr < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_create_intermediate_group(w.lcpl, 1) < 0 ||
        H5Pset_obj_track_times(w.gcpl, 0) < 0 ||
        H5Pset_obj_track_times(w.dcpl, 0) < 0 || H5Pset_layout(w.dcpl, H5D_CONTIGUOUS) < 0 ||
        H5Pset_obj_track_times(w.dcpl_vl, 0) < 0 || H5Pset_layout(w.dcpl_vl, H5D_CONTIGUOUS) < 0 ||
        H5Pset_fill_time(w.dcpl, H5D_FILL_TIME_NEVER) < 0) {
        st = sq_h5_fail(SQ_ERR_INTERNAL, path, NULL, "cannot set up HDF5 property lists");
        goto fail;
    }
    /* the root group: no timestamps either (H5Fcreate takes them from the fcpl) */
    if (H5Pset_obj_track_times(fcpl, 0) < 0) {
        st = sq_h5_fail(SQ_ERR_INTERNAL, path, NULL, "cannot set up HDF5 property lists");
        goto fail;
    }
    w.file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    if (w.file < 0) {
        st = sq_h5_fail(SQ_ERR_IO, path, NULL, "cannot create the file");
        goto fail;
    }
    if ((st = write_all(&w, c)) != SQ_OK) goto fail;
    herr_t r = H5Fclose(w.file);
    w.file = -1;
    if (r < 0) {
        st = sq_h5_fail(SQ_ERR_IO, path, NULL, "cannot close (flush) the file");
        goto fail;
    }
    st = sq_atomic_rename(tmp, path);
fail:
    if (w.file >= 0) H5Fclose(w.file);
    if (st != SQ_OK) unlink(tmp);
    sq_h5_close(&fcpl, H5Pclose);
    sq_h5_close(&fapl, H5Pclose);
    sq_h5_close(&w.lcpl, H5Pclose);
    sq_h5_close(&w.gcpl, H5Pclose);
    sq_h5_close(&w.dcpl, H5Pclose);
    sq_h5_close(&w.dcpl_vl, H5Pclose);
    sq_h5_close(&w.f16, H5Tclose);
    sq_h5_close(&w.bf16, H5Tclose);
    sq_h5_close(&w.vstr, H5Tclose);
    free(tmp);
    return st;
}

/* ===== Reader ===== */

typedef struct {
    const char *path;
    hid_t file;
    hid_t vstr;
    uint64_t file_size;
} rctx;

/* Opens attribute `name` of obj and checks its class and that it holds one value.
 * *a is -1 (and SQ_OK returned) when the attribute is absent and not required. */
static sq_status r_attr_open(rctx *r, hid_t obj, const char *obj_name, const char *name, H5T_class_t cls,
                             bool required, hid_t *a) {
    char what[128];
    *a = -1;
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) {
        snprintf(what, sizeof what, "cannot look up attribute '%s'", name);
        return sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, what);
    }
    if (!ex) {
        if (!required) return SQ_OK;
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s: missing attribute '%s'", r->path, obj_name, name);
    }
    sq_status st = SQ_OK;
    hid_t t = -1, sp = -1;
    *a = H5Aopen(obj, name, H5P_DEFAULT);
    if (*a < 0 || (t = H5Aget_type(*a)) < 0 || (sp = H5Aget_space(*a)) < 0) {
        snprintf(what, sizeof what, "cannot open attribute '%s'", name);
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, what);
    } else if (H5Tget_class(t) != cls || H5Sget_simple_extent_npoints(sp) != 1) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: attribute '%s' has the wrong type or size", r->path, obj_name, name);
    }
    sq_h5_close(&t, H5Tclose);
    sq_h5_close(&sp, H5Sclose);
    if (st != SQ_OK) sq_h5_close(a, H5Aclose);
    return st;
}

static sq_status r_attr_num(rctx *r, hid_t obj, const char *obj_name, const char *name, H5T_class_t cls, hid_t mtype,
                            void *out, bool required) {
    hid_t a;
    sq_status st = r_attr_open(r, obj, obj_name, name, cls, required, &a);
    if (st != SQ_OK || a < 0) return st;
    if (H5Aread(a, mtype, out) < 0) {
        char what[128];
        snprintf(what, sizeof what, "cannot read attribute '%s'", name);
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, what);
    }
    H5Aclose(a);
    return st;
}

static sq_status r_attr_i32(rctx *r, hid_t obj, const char *obj_name, const char *name, int32_t *out) {
    return r_attr_num(r, obj, obj_name, name, H5T_INTEGER, H5T_NATIVE_INT32, out, true);
}

static sq_status r_attr_bool(rctx *r, hid_t obj, const char *obj_name, const char *name, bool *out) {
    int32_t v;
    sq_status st = r_attr_i32(r, obj, obj_name, name, &v);
    if (st == SQ_OK && v != 0 && v != 1)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s: attribute '%s' is %d, not 0 or 1", r->path, obj_name, name, v);
    if (st == SQ_OK) *out = v != 0;
    return st;
}

static sq_status r_attr_f32(rctx *r, hid_t obj, const char *obj_name, const char *name, float *out) {
    double v;
    sq_status st = r_attr_num(r, obj, obj_name, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, &v, true);
    if (st == SQ_OK) *out = (float)v;
    return st;
}

/* A string attribute (fixed-length or variable-length) into a malloc'ed string; *out is
 * NULL when the attribute is absent and not required. */
static sq_status r_attr_str(rctx *r, hid_t obj, const char *obj_name, const char *name, bool required, char **out) {
    hid_t a, t = -1, mt = -1;
    char *buf = NULL, *vl = NULL;
    *out = NULL;
    sq_status st = r_attr_open(r, obj, obj_name, name, H5T_STRING, required, &a);
    if (st != SQ_OK || a < 0) return st;
    char what[128];
    snprintf(what, sizeof what, "cannot read string attribute '%s'", name);
    if ((t = H5Aget_type(a)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, what);
        goto fail;
    }
    if (H5Tis_variable_str(t) > 0) {
        if (H5Aread(a, r->vstr, &vl) < 0) {
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, what);
            goto fail;
        }
        buf = sq_strdup(vl ? vl : "");
    } else {
        size_t n = H5Tget_size(t);
        if (n == 0 || n > ((size_t)1 << 24) || (mt = H5Tcopy(t)) < 0 || !(buf = calloc(n + 1, 1))) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: %s", r->path, obj_name, what);
            goto fail;
        }
        if (H5Aread(a, mt, buf) < 0) {
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, what);
            goto fail;
        }
    }
    if (!buf) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
        goto fail;
    }
    *out = buf;
    buf = NULL;
fail:
    if (vl) H5free_memory(vl);
    free(buf);
    sq_h5_close(&mt, H5Tclose);
    sq_h5_close(&t, H5Tclose);
    H5Aclose(a);
    return st;
}

/* Opens dataset `name` under loc, checking class and rank. *d = -1 with SQ_OK when it is
 * absent and not required. dims gets the extent. */
static sq_status r_dset_open(rctx *r, hid_t loc, const char *obj_name, const char *name, H5T_class_t cls, int rank,
                             bool required, hid_t *d, hsize_t *dims) {
    *d = -1;
    htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot look up dataset");
    if (!ex) {
        if (!required) return SQ_OK;
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s: missing dataset", r->path, obj_name);
    }
    sq_status st = SQ_OK;
    hid_t t = -1, sp = -1;
    *d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (*d < 0 || (t = H5Dget_type(*d)) < 0 || (sp = H5Dget_space(*d)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot open dataset");
    } else if (H5Tget_class(t) != cls) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dataset has the wrong element type", r->path, obj_name);
    } else if (H5Sget_simple_extent_ndims(sp) != rank) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dataset has rank %d, expected %d", r->path, obj_name,
                       H5Sget_simple_extent_ndims(sp), rank);
    } else if (rank > 0 && H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot read the dataset's extent");
    }
    sq_h5_close(&t, H5Tclose);
    sq_h5_close(&sp, H5Sclose);
    if (st != SQ_OK) sq_h5_close(d, H5Dclose);
    return st;
}

/* A scalar variable-length string dataset (json text); *out NULL when absent. */
static sq_status r_text(rctx *r, hid_t loc, const char *obj_name, const char *name, char **out) {
    hid_t d;
    char *vl = NULL;
    *out = NULL;
    sq_status st = r_dset_open(r, loc, obj_name, name, H5T_STRING, 0, false, &d, NULL);
    if (st != SQ_OK || d < 0) return st;
    hid_t t = H5Dget_type(d);
    if (t < 0 || H5Tis_variable_str(t) <= 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: expected a variable-length string", r->path, obj_name);
    } else if (H5Dread(d, r->vstr, H5S_ALL, H5S_ALL, H5P_DEFAULT, &vl) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot read dataset");
    } else if (!(*out = sq_strdup(vl ? vl : ""))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
    }
    if (vl) H5free_memory(vl);
    sq_h5_close(&t, H5Tclose);
    H5Dclose(d);
    return st;
}

/* A 1-D variable-length string dataset of exactly n entries (n < 0: any, returned in *n_out)
 * into owned strings. */
static sq_status r_strings(rctx *r, hid_t loc, const char *obj_name, const char *name, int64_t n, bool required,
                           char ***out, int32_t *n_out) {
    hid_t d, t = -1, sp = -1;
    hsize_t dims[1] = {0};
    char **vl = NULL, **res = NULL;
    *out = NULL;
    if (n_out) *n_out = 0;
    sq_status st = r_dset_open(r, loc, obj_name, name, H5T_STRING, 1, required, &d, dims);
    if (st != SQ_OK || d < 0) return st;
    if ((n >= 0 && dims[0] != (hsize_t)n) || dims[0] > (hsize_t)(1 << 24)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: %llu entries, expected %lld", r->path, obj_name,
                       (unsigned long long)dims[0], (long long)n);
        goto fail;
    }
    size_t cnt = (size_t)dims[0];
    if ((t = H5Dget_type(d)) < 0 || H5Tis_variable_str(t) <= 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: expected variable-length strings", r->path, obj_name);
        goto fail;
    }
    vl = calloc(cnt ? cnt : 1, sizeof *vl);
    res = calloc(cnt ? cnt : 1, sizeof *res);
    if (!vl || !res) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
        goto fail;
    }
    if (cnt && H5Dread(d, r->vstr, H5S_ALL, H5S_ALL, H5P_DEFAULT, vl) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot read dataset");
        goto fail;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (!(res[i] = sq_strdup(vl[i] ? vl[i] : ""))) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
            break;
        }
    }
    if (cnt && (sp = H5Dget_space(d)) >= 0) H5Dvlen_reclaim(r->vstr, sp, H5P_DEFAULT, vl);
    if (st != SQ_OK) goto fail;
    *out = res;
    res = NULL;
    if (n_out) *n_out = (int32_t)cnt;
fail:
    if (res)
        for (size_t i = 0; i < cnt; i++) free(res[i]);
    free(res);
    free(vl);
    sq_h5_close(&sp, H5Sclose);
    sq_h5_close(&t, H5Tclose);
    H5Dclose(d);
    return st;
}

/* A 1-D numeric dataset of exactly n entries, converted to mtype. */
static sq_status r_numbers(rctx *r, hid_t loc, const char *obj_name, const char *name, H5T_class_t cls, hid_t mtype,
                           int64_t n, void *out) {
    hid_t d;
    hsize_t dims[1] = {0};
    sq_status st = r_dset_open(r, loc, obj_name, name, cls, 1, true, &d, dims);
    if (st != SQ_OK) return st;
    if (dims[0] != (hsize_t)n)
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: %llu entries, expected %lld", r->path, obj_name,
                       (unsigned long long)dims[0], (long long)n);
    else if (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot read dataset");
    H5Dclose(d);
    return st;
}

static sq_status read_config(rctx *r, sq_config *k) {
    const char *on = "/config";
    char *s = NULL;
    sq_status st = SQ_OK;
    hid_t g = H5Gopen2(r->file, on, H5P_DEFAULT);
    if (g < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot open group");
    memset(k, 0, sizeof *k);
    if ((st = r_attr_str(r, g, on, "arch", true, &s)) != SQ_OK) goto fail;
    if (strlen(s) >= sizeof k->arch) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: /config: arch '%.32s' is too long", r->path, s);
        goto fail;
    }
    strcpy(k->arch, s);
    free(s);
    s = NULL;
#define I32(f) if ((st = r_attr_i32(r, g, on, #f, &k->f)) != SQ_OK) goto fail;
#define F32(f) if ((st = r_attr_f32(r, g, on, #f, &k->f)) != SQ_OK) goto fail;
#define BOOL(f) if ((st = r_attr_bool(r, g, on, #f, &k->f)) != SQ_OK) goto fail;
    I32(dim) I32(hidden_dim) I32(n_layers) I32(n_heads) I32(n_kv_heads) I32(head_dim) I32(vocab_size)
    I32(max_seq_len) I32(rope_orig_ctx)
    F32(norm_eps) F32(rope_theta) F32(rope_factor) F32(rope_low_freq_factor) F32(rope_high_freq_factor)
    BOOL(tied_embeddings) BOOL(attn_qkv_bias) BOOL(attn_o_bias) BOOL(mlp_bias)
#undef I32
#undef F32
#undef BOOL
    if ((st = r_attr_str(r, g, on, "rope_layout", true, &s)) != SQ_OK) goto fail;
    if (strcmp(s, "half") == 0) k->rope_layout = SQ_ROPE_HALF;
    else if (strcmp(s, "interleaved") == 0) k->rope_layout = SQ_ROPE_INTERLEAVED;
    else {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: /config: unknown rope_layout '%.32s'", r->path, s);
        goto fail;
    }
    free(s);
    s = NULL;
    if ((st = r_attr_str(r, g, on, "rope_scaling", true, &s)) != SQ_OK) goto fail;
    if (strcmp(s, "none") == 0) k->rope_scaling = SQ_ROPE_SCALING_NONE;
    else if (strcmp(s, "linear") == 0) k->rope_scaling = SQ_ROPE_SCALING_LINEAR;
    else if (strcmp(s, "llama3") == 0) k->rope_scaling = SQ_ROPE_SCALING_LLAMA3;
    else {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: /config: unknown rope_scaling '%.32s'", r->path, s);
        goto fail;
    }
    st = sq_config_validate(k, r->path);
fail:
    free(s);
    H5Gclose(g);
    return st;
}

static sq_status read_tokenizer(rctx *r, sq_vocab *v, char **json) {
    const char *on = "/tokenizer";
    char *s = NULL;
    sq_status st = SQ_OK;
    memset(v, 0, sizeof *v);
    htri_t ex = H5Lexists(r->file, on, H5P_DEFAULT);
    if (ex < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot look up group");
    if (!ex) return SQ_OK; /* a store without a tokenizer: empty vocabulary */
    hid_t g = H5Gopen2(r->file, on, H5P_DEFAULT);
    if (g < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot open group");
    if ((st = r_attr_str(r, g, on, "kind", true, &s)) != SQ_OK) goto fail;
    if (strcmp(s, "spm") == 0) v->kind = SQ_VOCAB_SPM;
    else if (strcmp(s, "bpe") == 0) v->kind = SQ_VOCAB_BPE;
    else {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: /tokenizer: unknown kind '%.32s'", r->path, s);
        goto fail;
    }
    free(s);
    s = NULL;
    if ((st = r_attr_str(r, g, on, "pre", true, &s)) != SQ_OK) goto fail;
    if ((st = sq_pretok_from_name(s, &v->pre)) != SQ_OK) {
        sq_error_prefix("/tokenizer");
        sq_error_prefix(r->path);
        goto fail;
    }
#define I32(f) if ((st = r_attr_i32(r, g, on, #f, &v->f)) != SQ_OK) goto fail;
#define BOOL(f) if ((st = r_attr_bool(r, g, on, #f, &v->f)) != SQ_OK) goto fail;
    I32(bos_id) I32(eos_id) I32(unk_id) I32(pad_id)
    BOOL(add_bos) BOOL(add_eos) BOOL(add_dummy_prefix) BOOL(remove_extra_whitespaces) BOOL(byte_fallback)
#undef I32
#undef BOOL
    if ((st = r_strings(r, g, "/tokenizer/tokens", "tokens", -1, true, &v->tokens, &v->n_tokens)) != SQ_OK) goto fail;
    v->scores = calloc((size_t)v->n_tokens + 1, sizeof *v->scores);
    v->types = calloc((size_t)v->n_tokens + 1, sizeof *v->types);
    if (!v->scores || !v->types) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
        goto fail;
    }
    if ((st = r_numbers(r, g, "/tokenizer/scores", "scores", H5T_FLOAT, H5T_NATIVE_FLOAT, v->n_tokens, v->scores)) !=
            SQ_OK ||
        (st = r_numbers(r, g, "/tokenizer/token_type", "token_type", H5T_INTEGER, H5T_NATIVE_INT32, v->n_tokens,
                        v->types)) != SQ_OK)
        goto fail;
    if ((st = r_strings(r, g, "/tokenizer/merges", "merges", -1, false, &v->merges, &v->n_merges)) != SQ_OK) goto fail;
    if ((st = r_text(r, g, "/tokenizer/json", "json", json)) != SQ_OK) goto fail;
    st = sq_vocab_validate(v, r->path);
fail:
    free(s);
    H5Gclose(g);
    return st;
}

/* Reads one tensor the config implies, checking type, rank and shape. */
static sq_status read_tensor(rctx *r, hid_t tg, const sq_tensor_spec *e, sq_tensor *t) {
    char obj[SQ_MAX_NAME + 16], s1[96], s2[96];
    snprintf(obj, sizeof obj, "/tensors/%s", e->name);
    hsize_t dims[SQ_MAX_DIMS];
    hid_t d = -1, ft = -1, sp = -1, dcpl = -1;
    char *dtype = NULL;
    sq_status st = SQ_OK;
    memset(t, 0, sizeof *t);
    htri_t ex = H5Lexists(tg, e->name, H5P_DEFAULT);
    if (ex <= 0) {
        if (ex < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, obj, "cannot look up dataset");
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s: missing tensor (the config implies shape %s)", r->path, obj,
                         sq_shape_str(s1, sizeof s1, e->n_dims, e->shape));
    }
    if ((d = H5Dopen2(tg, e->name, H5P_DEFAULT)) < 0 || (ft = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0 ||
        (dcpl = H5Dget_create_plist(d)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj, "cannot open dataset");
        goto fail;
    }
    int type = classify_type(ft);
    if (type < 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: element type is not f32, f16 or bf16", r->path, obj);
        goto fail;
    }
    if ((st = r_attr_str(r, d, obj, "dtype", true, &dtype)) != SQ_OK) goto fail;
    if (strcmp(dtype, sq_type_name((sq_type)type)) != 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dtype attribute '%.16s' disagrees with the stored %s data", r->path, obj,
                       dtype, sq_type_name((sq_type)type));
        goto fail;
    }
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank < 1 || rank > SQ_MAX_DIMS || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: has rank %d, the config implies shape %s", r->path, obj, rank,
                       sq_shape_str(s1, sizeof s1, e->n_dims, e->shape));
        goto fail;
    }
    t->n_dims = rank;
    for (int i = 0; i < rank; i++) t->shape[i] = dims[i] > (hsize_t)INT64_MAX ? -1 : (int64_t)dims[i];
    bool same = rank == e->n_dims;
    for (int i = 0; same && i < rank; i++) same = t->shape[i] == e->shape[i];
    if (!same) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: has shape %s but the config implies %s", r->path, obj,
                       sq_shape_str(s1, sizeof s1, rank, t->shape), sq_shape_str(s2, sizeof s2, e->n_dims, e->shape));
        goto fail;
    }
    t->type = (sq_type)type;
    t->nbytes = sq_tensor_expected_bytes(t->type, t->n_dims, t->shape);
    /* a contiguous dataset cannot be larger than the file: refuse before allocating */
    if (H5Pget_layout(dcpl) == H5D_CONTIGUOUS && (uint64_t)t->nbytes > r->file_size) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: %zu bytes of data cannot fit in a %llu-byte file", r->path, obj,
                       t->nbytes, (unsigned long long)r->file_size);
        goto fail;
    }
    if (!(t->name = sq_strdup(e->name)) || !(t->data = sq_alloc_aligned(t->nbytes))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: %s: out of memory (%zu bytes)", r->path, obj, t->nbytes);
        goto fail;
    }
    t->owns_data = true;
    /* raw bits: the file type itself is the memory type, so HDF5 converts nothing */
    if (H5Dread(d, type == SQ_TYPE_F32 ? H5T_NATIVE_FLOAT : ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj, "cannot read tensor data");
        goto fail;
    }
fail:
    if (st != SQ_OK) sq_tensor_release(t);
    free(dtype);
    sq_h5_close(&dcpl, H5Pclose);
    sq_h5_close(&sp, H5Sclose);
    sq_h5_close(&ft, H5Tclose);
    sq_h5_close(&d, H5Dclose);
    return st;
}

/* A 1-D int64 attribute of exactly n values. */
static sq_status r_attr_i64s(rctx *r, hid_t obj, const char *obj_name, const char *name, int64_t *out, int n) {
    sq_status st = SQ_OK;
    hid_t a = -1, t = -1, sp = -1;
    htri_t ex = H5Aexists(obj, name);
    if (ex <= 0)
        return ex < 0 ? sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot look up an attribute")
                      : sq_errorf(SQ_ERR_FORMAT, "%s: %s: missing attribute '%s'", r->path, obj_name, name);
    if ((a = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (t = H5Aget_type(a)) < 0 || (sp = H5Aget_space(a)) < 0)
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot open an attribute");
    else if (H5Tget_class(t) != H5T_INTEGER || H5Sget_simple_extent_npoints(sp) != n)
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: attribute '%s' should hold %d integers", r->path, obj_name, name, n);
    else if (H5Aread(a, H5T_NATIVE_INT64, out) < 0)
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj_name, "cannot read an attribute");
    sq_h5_close(&sp, H5Sclose);
    sq_h5_close(&t, H5Tclose);
    sq_h5_close(&a, H5Aclose);
    return st;
}

/* A 2-D dataset of [rows, cols] elements of one byte (uint8) or of the custom f16 type,
 * read as raw bytes into buf (rows * cols * size). */
static sq_status r_qdata(rctx *r, hid_t g, const char *obj, const char *name, bool f16, int64_t rows, int64_t cols,
                         void *buf) {
    char on[SQ_MAX_NAME + 32];
    snprintf(on, sizeof on, "%s/%s", obj, name);
    hid_t d = -1, ft = -1;
    hsize_t dims[2];
    sq_status st = r_dset_open(r, g, on, name, f16 ? H5T_FLOAT : H5T_INTEGER, 2, true, &d, dims);
    if (st != SQ_OK) return st;
    if ((ft = H5Dget_type(d)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot read the element type");
    } else if (f16 ? classify_type(ft) != SQ_TYPE_F16
                   : H5Tget_size(ft) != 1 || H5Tget_sign(ft) != H5T_SGN_NONE) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: elements should be %s", r->path, on, f16 ? "float16" : "uint8");
    } else if (dims[0] != (hsize_t)rows || dims[1] != (hsize_t)cols) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: has shape [%llu, %llu], expected [%lld, %lld]", r->path, on,
                       (unsigned long long)dims[0], (unsigned long long)dims[1], (long long)rows, (long long)cols);
    } else if ((uint64_t)rows * (uint64_t)cols * (f16 ? 2u : 1u) > r->file_size) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: more data than the file holds", r->path, on);
    } else if (rows > 0 && cols > 0 && H5Dread(d, f16 ? ft : H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot read dataset");
    }
    sq_h5_close(&ft, H5Tclose);
    sq_h5_close(&d, H5Dclose);
    return st;
}

/* Reads /quant/<name> (one tensor the config implies) into a packed q8g/q4g/q3g tensor and
 * its sq_quant_info, checking the attributes against the config, every dataset's type and
 * shape, scales (finite fp16; positive when asymmetric, non-zero when symmetric: the
 * signed-max grid stores negative ones), zero points (< 2^bits) and that the code
 * padding is zero (each row must re-pack to the same bytes). */
static sq_status read_qtensor(rctx *r, hid_t qg, const sq_tensor_spec *e, sq_tensor *t, sq_quant_info *qi) {
    char obj[SQ_MAX_NAME + 16], s1[96];
    snprintf(obj, sizeof obj, "/quant/%s", e->name);
    sq_status st = SQ_OK;
    hid_t g = -1;
    char *str = NULL;
    uint8_t *codes = NULL, *zeros = NULL, *row = NULL, *ucodes = NULL;
    uint16_t *scales = NULL;
    float *fs = NULL;
    memset(t, 0, sizeof *t);
    memset(qi, 0, sizeof *qi);
    qi->awq_alpha = -1.0;
    if ((g = H5Gopen2(qg, e->name, H5P_DEFAULT)) < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, obj, "cannot open group");
    int64_t shape[2];
    int32_t bits = 0, group = 0, i32;
    bool sym = true;
    if ((st = r_attr_i64s(r, g, obj, "shape", shape, 2)) || (st = r_attr_i32(r, g, obj, "bits", &bits)) ||
        (st = r_attr_i32(r, g, obj, "group_size", &group)) || (st = r_attr_bool(r, g, obj, "symmetric", &sym)))
        goto fail;
    if (e->n_dims != 2 || shape[0] != e->shape[0] || shape[1] != e->shape[1]) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: has shape [%lld, %lld] but the config implies %s", r->path, obj,
                       (long long)shape[0], (long long)shape[1], sq_shape_str(s1, sizeof s1, e->n_dims, e->shape));
        goto fail;
    }
    const int64_t rows = shape[0], cols = shape[1];
    t->type = sq_qtype_of_bits(bits);
    if (t->type == SQ_TYPE_COUNT) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: %d-bit tensors are not supported (8, 6, 5, 4 or 3)", r->path, obj, bits);
        goto fail;
    }
    if (group < 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: group_size %d", r->path, obj, group);
        goto fail;
    }
    t->q.group = group == 0 || group >= cols ? (int32_t)cols : group;
    t->q.asym = !sym;
    if (sq_qparams_validate(t->type, t->q, cols, obj)) {
        st = SQ_ERR_FORMAT;
        sq_error_prefix(r->path);
        goto fail;
    }
    if ((st = r_attr_str(r, g, obj, "dtype", false, &str))) goto fail;
    if (str && strcmp(str, sq_type_name(t->type)) != 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dtype '%.16s' disagrees with bits %d", r->path, obj, str, bits);
        goto fail;
    }
    const int64_t gl = q_group_len(t->q, cols), ng = (cols + gl - 1) / gl;
    const size_t rb = sq_row_bytes(t->type, cols, t->q), cb = q_code_bytes(t->type, cols);
    t->n_dims = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->nbytes = sq_tensor_bytes(t->type, t->q, 2, t->shape);
    if ((uint64_t)t->nbytes > r->file_size + (uint64_t)rows * 8) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: %zu bytes of data cannot fit in a %llu-byte file", r->path, obj,
                       t->nbytes, (unsigned long long)r->file_size);
        goto fail;
    }
    codes = malloc((size_t)rows * cb + 1);
    scales = malloc((size_t)(rows * ng) * 2 + 2);
    zeros = calloc((size_t)(rows * ng) + 1, 1);
    fs = malloc((size_t)ng * sizeof *fs + 4);
    row = malloc(rb + 1);
    ucodes = malloc((size_t)cols + 1);
    if (!(t->name = sq_strdup(e->name)) || !(t->data = sq_alloc_aligned(t->nbytes)) || !codes || !scales || !zeros ||
        !fs || !row || !ucodes) {
        st = sq_errorf(SQ_ERR_OOM, "%s: %s: out of memory (%zu bytes)", r->path, obj, t->nbytes);
        goto fail;
    }
    t->owns_data = true;
    if ((st = r_qdata(r, g, obj, "codes", false, rows, (int64_t)cb, codes)) ||
        (st = r_qdata(r, g, obj, "scales", true, rows, ng, scales)))
        goto fail;
    htri_t zx = H5Lexists(g, "zeros", H5P_DEFAULT);
    if (zx < 0 || (zx > 0) != t->q.asym) {
        st = zx < 0 ? sq_h5_fail(SQ_ERR_FORMAT, r->path, obj, "cannot look up 'zeros'")
                    : sq_errorf(SQ_ERR_FORMAT, "%s: %s: %s", r->path, obj,
                                t->q.asym ? "asymmetric but has no 'zeros'" : "symmetric but has 'zeros'");
        goto fail;
    }
    if (t->q.asym && (st = r_qdata(r, g, obj, "zeros", false, rows, ng, zeros))) goto fail;
    const int32_t qmax = (1 << bits) - 1;
    for (int64_t i = 0; i < rows && st == SQ_OK; i++) {
        uint8_t *dst = (uint8_t *)t->data + (size_t)i * rb;
        for (int64_t k = 0; k < ng; k++) {
            fs[k] = sq_f16_to_f32(scales[i * ng + k]);
            if (!(t->q.asym ? fs[k] > 0.0f : fs[k] != 0.0f) || !isfinite(fs[k])) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: %s/scales: row %lld group %lld: scale %g is not finite and %s",
                               r->path, obj, (long long)i, (long long)k, (double)fs[k],
                               t->q.asym ? "positive" : "non-zero");
                break;
            }
            if (zeros[i * ng + k] > qmax) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: %s/zeros: row %lld group %lld: zero point %d does not fit in %d bits",
                               r->path, obj, (long long)i, (long long)k, zeros[i * ng + k], bits);
                break;
            }
        }
        if (st) break;
        /* the header through the reference packer (codes 0), then the stored codes */
        memset(ucodes, 0, (size_t)cols);
        if (sq_qrow_pack(t->type, t->q, cols, ucodes, fs, t->q.asym ? zeros + i * ng : NULL, dst)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: row %lld: %s", r->path, obj, (long long)i, sq_last_error());
            break;
        }
        memcpy(dst + rb - cb, codes + (size_t)i * cb, cb);
        /* canonical: codes in range and zero padding (re-packing gives the same bytes) */
        sq_qrow_unpack(t->type, t->q, cols, dst, ucodes, NULL, NULL);
        if (sq_qrow_pack(t->type, t->q, cols, ucodes, fs, t->q.asym ? zeros + i * ng : NULL, row) ||
            memcmp(row, dst, rb) != 0) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s/codes: row %lld has bits set outside the %lld codes of %d bits",
                           r->path, obj, (long long)i, (long long)cols, bits);
            break;
        }
    }
    if (st) goto fail;
    /* the method's parameters (optional) */
    snprintf(qi->name, sizeof qi->name, "%s", e->name);
    qi->bits = bits;
    qi->group_size = gl >= cols ? 0 : (int32_t)gl;
    qi->symmetric = sym;
    free(str);
    str = NULL;
    if ((st = r_attr_str(r, g, obj, "method", false, &str))) goto fail;
    if (str) snprintf(qi->method, sizeof qi->method, "%s", str);
    free(str);
    str = NULL;
    if ((st = r_attr_str(r, g, obj, "calib_sha256", false, &str))) goto fail;
    if (str) snprintf(qi->calib_sha256, sizeof qi->calib_sha256, "%s", str);
    free(str);
    str = NULL;
    if ((st = r_attr_str(r, g, obj, "grid", false, &str))) goto fail;
    if (str && (!sym || (strcmp(str, "gptq") != 0 && strcmp(str, "signed-max") != 0))) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: grid '%.16s' %s", r->path, obj, str,
                       sym ? "is unknown (gptq or signed-max)" : "on an asymmetric tensor");
        goto fail;
    }
    if (str) snprintf(qi->grid, sizeof qi->grid, "%s", str);
#define OPT_BOOL(f)                                                                                        \
    i32 = 0;                                                                                           \
    if ((st = r_attr_num(r, g, obj, #f, H5T_INTEGER, H5T_NATIVE_INT32, &i32, false))) goto fail;       \
    qi->f = i32 != 0;
#define OPT_NUM(f, cls, mt) \
    if ((st = r_attr_num(r, g, obj, #f, cls, mt, &qi->f, false))) goto fail;
    OPT_BOOL(act_order) OPT_BOOL(static_groups) OPT_BOOL(true_sequential) OPT_BOOL(mse)
    OPT_NUM(damp, H5T_FLOAT, H5T_NATIVE_DOUBLE) OPT_NUM(damp_used, H5T_FLOAT, H5T_NATIVE_DOUBLE)
    OPT_NUM(block_size, H5T_INTEGER, H5T_NATIVE_INT32) OPT_NUM(loss, H5T_FLOAT, H5T_NATIVE_DOUBLE)
    OPT_NUM(awq_alpha, H5T_FLOAT, H5T_NATIVE_DOUBLE)
#undef OPT_BOOL
#undef OPT_NUM
fail:
    if (st != SQ_OK) sq_tensor_release(t);
    free(str);
    free(codes);
    free(scales);
    free(zeros);
    free(fs);
    free(row);
    free(ucodes);
    sq_h5_close(&g, H5Gclose);
    return st;
}

/* Fails when group `gname` holds a name the configured architecture does not use. */
static sq_status check_names(rctx *r, hid_t grp, const char *gname, const sq_tensor_spec *exp, int32_t n_exp,
                             const char *arch) {
    H5G_info_t info;
    if (H5Gget_info(grp, &info) < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, gname, "cannot list group");
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[SQ_MAX_NAME];
        ssize_t len = H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, gname, "cannot list group");
        bool known = (size_t)len < sizeof name;
        int32_t k = 0;
        while (known && k < n_exp && strcmp(exp[k].name, name) != 0) k++;
        if (!known || k == n_exp)
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s/%s: a tensor the %s architecture (as configured) does not use",
                             r->path, gname, name, arch);
    }
    return SQ_OK;
}

static sq_status read_tensors(rctx *r, sq_checkpoint *c) {
    sq_tensor_spec *exp = NULL;
    int32_t n_exp = 0;
    sq_status st = SQ_OK;
    hid_t qg = -1;
    hid_t tg = H5Gopen2(r->file, "/tensors", H5P_DEFAULT);
    if (tg < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, "/tensors", "cannot open group");
    if ((st = sq_config_tensors(&c->cfg, &exp, &n_exp)) != SQ_OK) {
        sq_error_prefix(r->path);
        goto fail;
    }
    /* anything in /tensors or /quant the architecture does not use is an error */
    if ((st = check_names(r, tg, "/tensors", exp, n_exp, c->cfg.arch))) goto fail;
    htri_t qx = H5Lexists(r->file, "/quant", H5P_DEFAULT);
    if (qx < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, "/quant", "cannot look up group");
        goto fail;
    }
    if (qx > 0) {
        if ((qg = H5Gopen2(r->file, "/quant", H5P_DEFAULT)) < 0) {
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, "/quant", "cannot open group");
            goto fail;
        }
        if ((st = check_names(r, qg, "/quant", exp, n_exp, c->cfg.arch))) goto fail;
    }
    for (int32_t k = 0; k < n_exp; k++) {
        sq_tensor t;
        htri_t in_q = qg >= 0 ? H5Lexists(qg, exp[k].name, H5P_DEFAULT) : 0;
        if (in_q < 0) {
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, "/quant", "cannot look up a tensor");
            goto fail;
        }
        if (in_q > 0) {
            if (H5Lexists(tg, exp[k].name, H5P_DEFAULT) > 0) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is stored twice, in /tensors and in /quant", r->path,
                               exp[k].name);
                goto fail;
            }
            sq_quant_info qi;
            if ((st = read_qtensor(r, qg, &exp[k], &t, &qi)) != SQ_OK) goto fail;
            if ((st = sq_checkpoint_set_quant_info(c, &qi)) != SQ_OK) {
                sq_tensor_release(&t);
                goto fail;
            }
        } else if ((st = read_tensor(r, tg, &exp[k], &t)) != SQ_OK) {
            goto fail;
        }
        if ((st = sq_checkpoint_add(c, &t)) != SQ_OK) {
            sq_tensor_release(&t);
            goto fail;
        }
    }
fail:
    free(exp);
    sq_h5_close(&qg, H5Gclose);
    H5Gclose(tg);
    return st;
}

/* /sparse/<name>: one pruning record per tensor the checkpoint has (attributes method,
 * n, m, sparsity; docs/model-store.md). Absent group: no records. */
static sq_status read_sparse(rctx *r, sq_checkpoint *c) {
    const char *gn = "/sparse";
    htri_t ex = H5Lexists(r->file, gn, H5P_DEFAULT);
    if (ex < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, gn, "cannot look up group");
    if (!ex) return SQ_OK;
    hid_t g = H5Gopen2(r->file, gn, H5P_DEFAULT), sg = -1;
    if (g < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, gn, "cannot open group");
    sq_status st = SQ_OK;
    char *method = NULL;
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, gn, "cannot list group");
        goto fail;
    }
    for (hsize_t i = 0; i < info.nlinks; i++) {
        sq_sparse_info si = {0};
        char obj[SQ_MAX_NAME + 16];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, si.name, sizeof si.name, H5P_DEFAULT);
        if (len < 0) {
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, gn, "cannot list group");
            goto fail;
        }
        if ((size_t)len >= sizeof si.name || !sq_checkpoint_find(c, si.name)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s/%.*s: a pruning record for a tensor the model does not have", r->path,
                           gn, 64, si.name);
            goto fail;
        }
        snprintf(obj, sizeof obj, "%s/%s", gn, si.name);
        if ((sg = H5Gopen2(g, si.name, H5P_DEFAULT)) < 0) {
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, obj, "cannot open group");
            goto fail;
        }
        if ((st = r_attr_str(r, sg, obj, "method", true, &method)) || (st = r_attr_i32(r, sg, obj, "n", &si.n)) ||
            (st = r_attr_i32(r, sg, obj, "m", &si.m)) ||
            (st = r_attr_num(r, sg, obj, "sparsity", H5T_FLOAT, H5T_NATIVE_DOUBLE, &si.sparsity, true)))
            goto fail;
        if (strlen(method) >= sizeof si.method) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: method name longer than %zu bytes", r->path, obj, sizeof si.method - 1);
            goto fail;
        }
        strcpy(si.method, method);
        bool unstructured = si.n == 0 && si.m == 0;
        if (!unstructured && !(si.n >= 1 && si.n < si.m && si.m <= 64)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: N:M pattern %d:%d (need 1 <= N < M <= 64, or 0:0)", r->path, obj, si.n,
                           si.m);
            goto fail;
        }
        if (!(si.sparsity >= 0.0 && si.sparsity <= 1.0)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: sparsity %g is not in [0, 1]", r->path, obj, si.sparsity);
            goto fail;
        }
        if ((st = sq_checkpoint_set_sparse_info(c, &si)) != SQ_OK) goto fail;
        free(method);
        method = NULL;
        sq_h5_close(&sg, H5Gclose);
    }
fail:
    free(method);
    sq_h5_close(&sg, H5Gclose);
    sq_h5_close(&g, H5Gclose);
    return st;
}

static sq_status read_provenance(rctx *r, sq_checkpoint *c) {
    const char *on = "/provenance";
    sq_status st = SQ_OK;
    hid_t g = -1, d = -1, mt = -1, sp = -1;
    typedef struct {
        char *path;
        char *sha256;
        uint64_t size;
    } rec;
    rec *recs = NULL;
    hsize_t dims[1] = {0};
    htri_t ex = H5Lexists(r->file, on, H5P_DEFAULT);
    if (ex < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot look up group");
    if (!ex) return SQ_OK;
    if ((g = H5Gopen2(r->file, on, H5P_DEFAULT)) < 0) return sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot open group");
    if ((st = r_attr_str(r, g, on, "tool_version", false, &c->tool_version)) != SQ_OK) goto fail;
    if ((st = r_attr_str(r, g, on, "command_line", false, &c->command_line)) != SQ_OK) goto fail;
    if ((st = r_dset_open(r, g, "/provenance/sources", "sources", H5T_COMPOUND, 1, false, &d, dims)) != SQ_OK) goto fail;
    if (d < 0 || dims[0] == 0) goto fail;
    if (dims[0] > 1u << 20) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: /provenance/sources: %llu entries", r->path, (unsigned long long)dims[0]);
        goto fail;
    }
    mt = H5Tcreate(H5T_COMPOUND, sizeof(rec));
    if (mt < 0 || H5Tinsert(mt, "path", HOFFSET(rec, path), r->vstr) < 0 ||
        H5Tinsert(mt, "sha256", HOFFSET(rec, sha256), r->vstr) < 0 ||
        H5Tinsert(mt, "size", HOFFSET(rec, size), H5T_NATIVE_UINT64) < 0) {
        st = sq_h5_fail(SQ_ERR_INTERNAL, r->path, "/provenance/sources", "cannot make the compound type");
        goto fail;
    }
    size_t n = (size_t)dims[0];
    recs = calloc(n, sizeof *recs);
    c->sources = calloc(n, sizeof *c->sources);
    if (!recs || !c->sources) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
        goto fail;
    }
    if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, "/provenance/sources", "cannot read dataset");
        goto fail;
    }
    for (size_t i = 0; i < n && st == SQ_OK; i++) {
        sq_source_file *s = &c->sources[i];
        c->n_sources = (int32_t)i + 1;
        if (!(s->path = sq_strdup(recs[i].path ? recs[i].path : "")))
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
        snprintf(s->sha256, sizeof s->sha256, "%s", recs[i].sha256 ? recs[i].sha256 : "");
        s->size = recs[i].size;
    }
    if ((sp = H5Dget_space(d)) >= 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, recs);
fail:
    free(recs);
    sq_h5_close(&sp, H5Sclose);
    sq_h5_close(&mt, H5Tclose);
    sq_h5_close(&d, H5Dclose);
    sq_h5_close(&g, H5Gclose);
    return st;
}

bool sq_store_is_hdf5(const char *path) {
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    uint8_t b[8];
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    bool ok = fread(b, 1, 8, fp) == 8 && memcmp(b, sig, 8) == 0;
    fclose(fp);
    return ok;
}

sq_status sq_store_read(const char *path, sq_checkpoint *out) {
    sq_status st = SQ_OK;
    rctx r = {path, -1, -1, 0};
    hid_t fapl = -1, root = -1;
    char *s = NULL;
    memset(out, 0, sizeof *out);
    sq_h5_quiet();
    if (!sq_file_exists(path)) return sq_errorf(SQ_ERR_IO, "%s: no such file", path);
    if (!sq_store_is_hdf5(path)) return sq_errorf(SQ_ERR_FORMAT, "%s: not an HDF5 file (no HDF5 signature)", path);
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
        (r.vstr = make_vstr()) < 0) {
        st = sq_h5_fail(SQ_ERR_INTERNAL, path, NULL, "cannot set up HDF5");
        goto fail;
    }
    if ((r.file = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, path, NULL, "cannot open as HDF5");
        goto fail;
    }
    hsize_t fsize = 0;
    if (H5Fget_filesize(r.file, &fsize) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, path, NULL, "cannot get the file size");
        goto fail;
    }
    r.file_size = fsize;
    if ((root = H5Gopen2(r.file, "/", H5P_DEFAULT)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, path, "/", "cannot open the root group");
        goto fail;
    }
    if ((st = r_attr_str(&r, root, "/", "format", false, &s)) != SQ_OK) goto fail;
    if (!s || strcmp(s, STORE_FORMAT) != 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: not a squish model store (root attribute format is '%.32s', expected '%s')",
                       path, s ? s : "(absent)", STORE_FORMAT);
        goto fail;
    }
    int32_t version = 0;
    if ((st = r_attr_i32(&r, root, "/", "format_version", &version)) != SQ_OK) goto fail;
    if (version != STORE_VERSION && version != STORE_VERSION_Q) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: model store format_version %d (this squish reads versions %d and %d)",
                       path, version, STORE_VERSION, STORE_VERSION_Q);
        goto fail;
    }
    if ((st = r_attr_str(&r, root, "/", "source_format", false, &out->source_format)) != SQ_OK) goto fail;
    if (out->source_format && !out->source_format[0]) {
        free(out->source_format);
        out->source_format = NULL;
    }
    if ((st = read_config(&r, &out->cfg)) != SQ_OK) goto fail;
    hid_t cg = H5Gopen2(r.file, "/config", H5P_DEFAULT);
    if (cg < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, path, "/config", "cannot open group");
        goto fail;
    }
    st = r_text(&r, cg, "/config/json", "json", &out->config_json);
    H5Gclose(cg);
    if (st != SQ_OK) goto fail;
    if ((st = read_tokenizer(&r, &out->vocab, &out->tokenizer_json)) != SQ_OK) goto fail;
    if ((st = read_tensors(&r, out)) != SQ_OK) goto fail;
    if ((st = read_sparse(&r, out)) != SQ_OK) goto fail;
    if ((st = read_provenance(&r, out)) != SQ_OK) goto fail;
    st = sq_checkpoint_validate(out, path);
fail:
    free(s);
    sq_h5_close(&root, H5Gclose);
    sq_h5_close(&r.file, H5Fclose);
    sq_h5_close(&r.vstr, H5Tclose);
    sq_h5_close(&fapl, H5Pclose);
    H5Eclear2(H5E_DEFAULT);
    if (st != SQ_OK) sq_checkpoint_free(out);
    return st;
}
