/* calib_store.c - calib.h5, the calibration store (docs/quantization.md, format version 1):
 * root provenance attributes, /windows int64 [n_samples, 2] and one group per distinct
 * linear input /calib/<first linear's name>/ with xtx f64 [in, in], abs_sum and sq_sum
 * f64 [in] and the attributes n_tokens and users. Written atomically (temp file + rename)
 * and deterministically (no timestamps, contiguous data, fixed creation order); read back
 * with every attribute, shape and value checked, because quantization trusts it. Also the
 * model hash it records and llama.cpp's legacy imatrix .dat export (FORMATS.md 6.6).
 * HDF5 failures become one sq_errorf line naming the file and object. One thread only.
 */
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib.h"
#include "h5io.h"
#include "util.h"

#define CALIB_FORMAT "squish-calib"
#define CALIB_VERSION 1
#define MAX_WIDTH (1 << 20)

/* ===== Writer ===== */

typedef struct {
    const char *path; /* final path, for messages */
    hid_t file, lcpl, gcpl, dcpl;
} wctx;

static sq_status w_dset(wctx *w, hid_t loc, const char *obj_name, const char *name, hid_t ftype, hid_t mtype, int rank,
                        const hsize_t *dims, const void *buf) {
    sq_status st = SQ_OK;
    hid_t sp = H5Screate_simple(rank, dims, NULL), d = -1;
    if (sp < 0 || (d = H5Dcreate2(loc, name, ftype, sp, w->lcpl, w->dcpl, H5P_DEFAULT)) < 0)
        st = sq_h5_fail(SQ_ERR_IO, w->path, obj_name, "cannot create dataset");
    else if (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        st = sq_h5_fail(SQ_ERR_IO, w->path, obj_name, "cannot write dataset");
    sq_h5_close(&d, H5Dclose);
    sq_h5_close(&sp, H5Sclose);
    return st;
}

static sq_status write_all(wctx *w, const sq_calib *c) {
    sq_status st = SQ_OK;
    hid_t root = -1, g = -1, ge = -1;
    char tool[64];
    snprintf(tool, sizeof tool, "squish %s", sq_version());
    int64_t *win = malloc((size_t)c->n_samples * 2 * sizeof(int64_t));
    if (!win) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", w->path);
    for (int64_t i = 0; i < c->n_samples; i++) {
        win[2 * i] = c->windows[i].doc;
        win[2 * i + 1] = c->windows[i].offset;
    }

    if ((root = H5Gopen2(w->file, "/", H5P_DEFAULT)) < 0) {
        st = sq_h5_fail(SQ_ERR_IO, w->path, "/", "cannot open the root group");
        goto fail;
    }
    const char *on = "/";
    if ((st = sq_h5_attr_str(w->path, root, on, "format", CALIB_FORMAT)) || (st = sq_h5_attr_i32(w->path, root, on, "format_version", CALIB_VERSION)) ||
        (st = sq_h5_attr_str(w->path, root, on, "model_sha256", c->model_sha256)) ||
        (st = sq_h5_attr_str(w->path, root, on, "data_path", c->data_path ? c->data_path : "")) ||
        (st = sq_h5_attr_str(w->path, root, on, "data_sha256", c->data_sha256)) ||
        (st = sq_h5_attr_str(w->path, root, on, "data_format", sq_calib_format_name(c->data_format))))
        goto fail;
    if (c->data_format == SQ_CALIB_JSONL && (st = sq_h5_attr_str(w->path, root, on, "data_field", c->data_field ? c->data_field : "text")))
        goto fail;
    if ((st = sq_h5_attr_i64(w->path, root, on, "n_samples", c->n_samples)) || (st = sq_h5_attr_i32(w->path, root, on, "seq_len", c->seq_len)) ||
        (st = sq_h5_attr_u64(w->path, root, on, "seed", c->seed)) || (st = sq_h5_attr_i64(w->path, root, on, "n_tokens", c->n_tokens)) ||
        (st = sq_h5_attr_i32(w->path, root, on, "n_layers", c->n_layers)) ||
        (st = sq_h5_attr_str(w->path, root, on, "tool_version", c->tool_version ? c->tool_version : tool)) ||
        (st = sq_h5_attr_str(w->path, root, on, "command_line", c->command_line ? c->command_line : "")))
        goto fail;
    hsize_t wd[2] = {(hsize_t)c->n_samples, 2};
    if ((st = w_dset(w, root, "/windows", "windows", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, wd, win))) goto fail;

    if ((g = H5Gcreate2(w->file, "/calib", w->lcpl, w->gcpl, H5P_DEFAULT)) < 0) {
        st = sq_h5_fail(SQ_ERR_IO, w->path, "/calib", "cannot create group");
        goto fail;
    }
    for (int32_t i = 0; i < c->n_entries; i++) {
        const sq_calib_entry *e = &c->entries[i];
        char obj[SQ_MAX_NAME + 32];
        snprintf(obj, sizeof obj, "/calib/%s", e->name);
        if ((ge = H5Gcreate2(g, e->name, w->lcpl, w->gcpl, H5P_DEFAULT)) < 0) {
            st = sq_h5_fail(SQ_ERR_IO, w->path, obj, "cannot create group");
            goto fail;
        }
        hsize_t d2[2] = {(hsize_t)e->width, (hsize_t)e->width}, d1 = (hsize_t)e->width;
        if ((st = w_dset(w, ge, obj, "xtx", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, e->xtx)) ||
            (st = w_dset(w, ge, obj, "abs_sum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &d1, e->abs_sum)) ||
            (st = w_dset(w, ge, obj, "sq_sum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &d1, e->sq_sum)) ||
            (st = sq_h5_attr_i64(w->path, ge, obj, "n_tokens", e->n_tokens)) || (st = sq_h5_attr_str(w->path, ge, obj, "users", e->users)))
            goto fail;
        sq_h5_close(&ge, H5Gclose);
    }
fail:
    sq_h5_close(&ge, H5Gclose);
    sq_h5_close(&g, H5Gclose);
    sq_h5_close(&root, H5Gclose);
    free(win);
    return st;
}

sq_status sq_calib_write(const char *path, const sq_calib *c) {
    sq_status st = SQ_OK;
    hid_t fcpl = -1, fapl = -1;
    wctx w = {path, -1, -1, -1, -1};
    char *tmp = NULL;
    sq_h5_quiet();
    if (!c || c->n_samples < 1 || !c->windows || c->n_entries < 1 || !c->entries)
        return sq_errorf(SQ_ERR_ARG, "%s: nothing to write (no windows or no statistics)", path);
    if (!(tmp = sq_atomic_tmp_name(path))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    fcpl = H5Pcreate(H5P_FILE_CREATE);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    w.lcpl = H5Pcreate(H5P_LINK_CREATE);
    w.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w.dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (fcpl < 0 || fapl < 0 || w.lcpl < 0 || w.gcpl < 0 || w.dcpl < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
        H5Pset_obj_track_times(w.gcpl, 0) < 0 || H5Pset_obj_track_times(w.dcpl, 0) < 0 ||
        H5Pset_layout(w.dcpl, H5D_CONTIGUOUS) < 0 || H5Pset_fill_time(w.dcpl, H5D_FILL_TIME_NEVER) < 0) {
        st = sq_h5_fail(SQ_ERR_INTERNAL, path, "/", "cannot set up HDF5 property lists");
        goto fail;
    }
    if ((w.file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
        st = sq_h5_fail(SQ_ERR_IO, path, "/", "cannot create the file");
        goto fail;
    }
    if ((st = write_all(&w, c)) != SQ_OK) goto fail;
    herr_t r = H5Fclose(w.file);
    w.file = -1;
    if (r < 0) {
        st = sq_h5_fail(SQ_ERR_IO, path, "/", "cannot close (flush) the file");
        goto fail;
    }
    st = sq_atomic_rename(tmp, path);
fail:
    sq_h5_close(&w.file, H5Fclose);
    if (st != SQ_OK) unlink(tmp);
    sq_h5_close(&fcpl, H5Pclose);
    sq_h5_close(&fapl, H5Pclose);
    sq_h5_close(&w.lcpl, H5Pclose);
    sq_h5_close(&w.gcpl, H5Pclose);
    sq_h5_close(&w.dcpl, H5Pclose);
    free(tmp);
    return st;
}

/* ===== Reader ===== */

typedef struct {
    const char *path;
    hid_t file;
    uint64_t file_size;
} rctx;

/* Opens attribute `name` of obj, checking its class and that it holds one value; *a = -1
 * with SQ_OK when absent and not required. */
static sq_status r_attr_open(rctx *r, hid_t obj, const char *on, const char *name, H5T_class_t cls, bool required,
                             hid_t *a) {
    char what[128];
    *a = -1;
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) {
        snprintf(what, sizeof what, "cannot look up attribute '%s'", name);
        return sq_h5_fail(SQ_ERR_FORMAT, r->path, on, what);
    }
    if (!ex) return required ? sq_errorf(SQ_ERR_FORMAT, "%s: %s: missing attribute '%s'", r->path, on, name) : SQ_OK;
    sq_status st = SQ_OK;
    hid_t t = -1, sp = -1;
    if ((*a = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (t = H5Aget_type(*a)) < 0 || (sp = H5Aget_space(*a)) < 0) {
        snprintf(what, sizeof what, "cannot open attribute '%s'", name);
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, what);
    } else if (H5Tget_class(t) != cls || H5Sget_simple_extent_npoints(sp) != 1) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: attribute '%s' has the wrong type or size", r->path, on, name);
    }
    sq_h5_close(&t, H5Tclose);
    sq_h5_close(&sp, H5Sclose);
    if (st != SQ_OK) sq_h5_close(a, H5Aclose);
    return st;
}

/* An integer attribute, range-checked into [lo, hi]. */
static sq_status r_int(rctx *r, hid_t obj, const char *on, const char *name, int64_t lo, int64_t hi, int64_t *out) {
    hid_t a;
    sq_status st = r_attr_open(r, obj, on, name, H5T_INTEGER, true, &a);
    if (st != SQ_OK) return st;
    int64_t v = 0;
    if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) {
        char what[128];
        snprintf(what, sizeof what, "cannot read attribute '%s'", name);
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, what);
    } else if (v < lo || v > hi) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: attribute '%s' is %lld, outside [%lld, %lld]", r->path, on, name,
                       (long long)v, (long long)lo, (long long)hi);
    }
    H5Aclose(a);
    if (st == SQ_OK) *out = v;
    return st;
}

static sq_status r_u64(rctx *r, hid_t obj, const char *on, const char *name, uint64_t *out) {
    hid_t a;
    sq_status st = r_attr_open(r, obj, on, name, H5T_INTEGER, true, &a);
    if (st != SQ_OK) return st;
    if (H5Aread(a, H5T_NATIVE_UINT64, out) < 0) st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot read attribute 'seed'");
    H5Aclose(a);
    return st;
}

/* A string attribute (fixed or variable length) into a malloc'ed string; *out = NULL when
 * absent and not required. */
static sq_status r_str(rctx *r, hid_t obj, const char *on, const char *name, bool required, char **out) {
    hid_t a, t = -1, mt = -1;
    char *buf = NULL, *vl = NULL, what[128];
    *out = NULL;
    sq_status st = r_attr_open(r, obj, on, name, H5T_STRING, required, &a);
    if (st != SQ_OK || a < 0) return st;
    snprintf(what, sizeof what, "cannot read string attribute '%s'", name);
    if ((t = H5Aget_type(a)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, what);
    } else if (H5Tis_variable_str(t) > 0) {
        if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &vl) < 0)
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, what);
        else if (!(buf = sq_strdup(vl ? vl : "")))
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
    } else {
        size_t n = H5Tget_size(t);
        if (n == 0 || n > ((size_t)1 << 20) || (mt = H5Tcopy(t)) < 0 || !(buf = calloc(n + 1, 1)))
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: %s", r->path, on, what);
        else if (H5Aread(a, mt, buf) < 0)
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, what);
    }
    if (vl) H5free_memory(vl);
    sq_h5_close(&mt, H5Tclose);
    sq_h5_close(&t, H5Tclose);
    H5Aclose(a);
    if (st != SQ_OK) free(buf);
    else *out = buf;
    return st;
}

/* A lowercase 64-digit hex string attribute. */
static sq_status r_hash(rctx *r, hid_t obj, const char *name, char hex[65]) {
    char *s = NULL;
    sq_status st = r_str(r, obj, "/", name, true, &s);
    if (st != SQ_OK) return st;
    bool ok = strlen(s) == 64;
    for (int i = 0; ok && i < 64; i++) ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (ok) memcpy(hex, s, 65);
    else st = sq_errorf(SQ_ERR_FORMAT, "%s: attribute '%s' is not a SHA-256 in hex ('%.80s')", r->path, name, s);
    free(s);
    return st;
}

/* Reads dataset `name` under loc of class cls and exactly the given extent into buf (with
 * mtype), after checking that its stored bytes are all in the file. */
static sq_status r_dset(rctx *r, hid_t loc, const char *on, const char *name, H5T_class_t cls, int rank,
                        const hsize_t *dims, hid_t mtype, size_t elt, void *buf) {
    sq_status st = SQ_OK;
    hid_t d = -1, t = -1, sp = -1;
    hsize_t got[2] = {0, 0};
    htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex <= 0) return ex < 0 ? sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot look up dataset")
                               : sq_errorf(SQ_ERR_FORMAT, "%s: %s: missing dataset", r->path, on);
    if ((d = H5Dopen2(loc, name, H5P_DEFAULT)) < 0 || (t = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot open dataset");
        goto fail;
    }
    if (H5Tget_class(t) != cls || H5Tget_size(t) != elt) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dataset has the wrong element type", r->path, on);
        goto fail;
    }
    if (H5Sget_simple_extent_ndims(sp) != rank || H5Sget_simple_extent_dims(sp, got, NULL) < 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dataset has rank %d, expected %d", r->path, on,
                       H5Sget_simple_extent_ndims(sp), rank);
        goto fail;
    }
    uint64_t bytes = elt;
    for (int i = 0; i < rank; i++) {
        if (got[i] != dims[i]) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dimension %d is %llu, expected %llu", r->path, on, i,
                           (unsigned long long)got[i], (unsigned long long)dims[i]);
            goto fail;
        }
        if (!sq_mul_u64(bytes, dims[i], &bytes)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dataset too large", r->path, on);
            goto fail;
        }
    }
    if (H5Dget_storage_size(d) != bytes || bytes > r->file_size) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: dataset stores %llu bytes, expected %llu (truncated or corrupt file)",
                       r->path, on, (unsigned long long)H5Dget_storage_size(d), (unsigned long long)bytes);
        goto fail;
    }
    if (H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot read dataset");
fail:
    sq_h5_close(&sp, H5Sclose);
    sq_h5_close(&t, H5Tclose);
    sq_h5_close(&d, H5Dclose);
    return st;
}

/* The width of /calib/<name>/abs_sum (1-D float64), without reading it. */
static sq_status r_width(rctx *r, hid_t ge, const char *on, int32_t *width) {
    sq_status st = SQ_OK;
    hid_t d = -1, sp = -1;
    hsize_t dim = 0;
    if (H5Lexists(ge, "abs_sum", H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s/abs_sum: missing dataset", r->path, on);
    }
    if ((d = H5Dopen2(ge, "abs_sum", H5P_DEFAULT)) < 0 || (sp = H5Dget_space(d)) < 0 ||
        H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &dim, NULL) < 0)
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s/abs_sum: expected a 1-D dataset", r->path, on);
    else if (dim < 1 || dim > MAX_WIDTH)
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %s/abs_sum: width %llu is out of range", r->path, on, (unsigned long long)dim);
    else
        *width = (int32_t)dim;
    H5Eclear2(H5E_DEFAULT);
    sq_h5_close(&sp, H5Sclose);
    sq_h5_close(&d, H5Dclose);
    return st;
}

/* Values are finite, sums non-negative, diag(xtx) = sq_sum, xtx symmetric and within the
 * Cauchy-Schwarz bound |xtx[i,j]| <= sqrt(xtx[i,i] xtx[j,j]) (tolerances leave room for a
 * producer that sums in another order). */
static sq_status check_entry(rctx *r, const sq_calib_entry *e, const char *on) {
    const int32_t w = e->width;
    double *root = malloc((size_t)w * sizeof(double));
    if (!root) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
    sq_status st = SQ_OK;
    for (int32_t i = 0; i < w && st == SQ_OK; i++) {
        const double a = e->abs_sum[i], s = e->sq_sum[i], d = e->xtx[(size_t)i * (size_t)w + (size_t)i];
        root[i] = sqrt(s);
        if (!isfinite(a) || !isfinite(s) || a < 0 || s < 0)
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: abs_sum/sq_sum[%d] = %g/%g is not a finite non-negative sum",
                           r->path, on, i, a, s);
        else if (!(fabs(d - s) <= 1e-9 * s))
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: xtx[%d,%d] = %.17g differs from sq_sum[%d] = %.17g", r->path, on, i,
                           i, d, i, s);
    }
    for (int32_t i = 0; i < w && st == SQ_OK; i++)
        for (int32_t j = i + 1; j < w; j++) {
            const double a = e->xtx[(size_t)i * (size_t)w + (size_t)j], b = e->xtx[(size_t)j * (size_t)w + (size_t)i];
            const double scale = root[i] * root[j];
            if (!(fabs(a - b) <= 1e-9 * scale) || !(fabs(a) <= scale * (1 + 1e-6))) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: xtx[%d,%d] = %g, xtx[%d,%d] = %g: not a symmetric sum of outer "
                                              "products", r->path, on, i, j, a, j, i, b);
                break;
            }
        }
    free(root);
    return st;
}

static sq_status read_entries(rctx *r, sq_calib *c) {
    sq_status st = SQ_OK;
    hid_t g = -1, ge = -1;
    H5G_info_t info;
    if (H5Lexists(r->file, "/calib", H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return sq_errorf(SQ_ERR_FORMAT, "%s: /calib: missing group", r->path);
    }
    if ((g = H5Gopen2(r->file, "/calib", H5P_DEFAULT)) < 0 || H5Gget_info(g, &info) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, r->path, "/calib", "cannot open group");
        goto fail;
    }
    if (info.nlinks != (hsize_t)c->n_layers * SQ_CALIB_POINTS) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: /calib: %llu entries, expected %d (4 for each of %d layers)", r->path,
                       (unsigned long long)info.nlinks, c->n_layers * SQ_CALIB_POINTS, c->n_layers);
        goto fail;
    }
    c->n_entries = c->n_layers * SQ_CALIB_POINTS;
    if (!(c->entries = calloc((size_t)c->n_entries, sizeof *c->entries))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", r->path);
        goto fail;
    }
    /* names, users and widths are what a config implies; the widths come from layer 0 */
    int32_t w_dim = 0, w_o = 0, w_down = 0;
    for (int32_t i = 0; i < c->n_entries; i++) {
        sq_calib_entry *e = &c->entries[i];
        const int32_t l = i / SQ_CALIB_POINTS, p = i % SQ_CALIB_POINTS;
        static const char *const fmts[SQ_CALIB_POINTS] = {"model.layers.%d.self_attn.q_proj",
                                                          "model.layers.%d.self_attn.o_proj",
                                                          "model.layers.%d.mlp.gate_proj", "model.layers.%d.mlp.down_proj"};
        static const char *const users[SQ_CALIB_POINTS] = {"q_proj,k_proj,v_proj", "o_proj", "gate_proj,up_proj",
                                                           "down_proj"};
        char on[SQ_MAX_NAME + 32];
        snprintf(e->name, sizeof e->name, fmts[p], l);
        snprintf(e->users, sizeof e->users, "%s", users[p]);
        snprintf(on, sizeof on, "/calib/%s", e->name);
        e->layer = l;
        e->point = (sq_capture_point)p;
        if (H5Lexists(g, e->name, H5P_DEFAULT) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: missing group", r->path, on);
            goto fail;
        }
        if ((ge = H5Gopen2(g, e->name, H5P_DEFAULT)) < 0) {
            st = sq_h5_fail(SQ_ERR_FORMAT, r->path, on, "cannot open group");
            goto fail;
        }
        char *u = NULL;
        if ((st = r_str(r, ge, on, "users", true, &u))) goto fail;
        bool same = !strcmp(u, e->users);
        free(u);
        if (!same) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: attribute 'users' is not '%s'", r->path, on, e->users);
            goto fail;
        }
        int64_t nt;
        if ((st = r_int(r, ge, on, "n_tokens", 0, INT64_MAX, &nt))) goto fail;
        if (nt != c->n_samples * (int64_t)c->seq_len) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: n_tokens is %lld, expected n_samples x seq_len = %lld", r->path, on,
                           (long long)nt, (long long)(c->n_samples * (int64_t)c->seq_len));
            goto fail;
        }
        e->n_tokens = nt;
        if ((st = r_width(r, ge, on, &e->width))) goto fail;
        /* q/k/v and gate/up read the residual stream (one width), o and down their own */
        int32_t *want = p == SQ_CAPTURE_ATTN_O_IN ? &w_o : p == SQ_CAPTURE_FFN_DOWN_IN ? &w_down : &w_dim;
        if (l == 0 && p != SQ_CAPTURE_FFN_IN) *want = e->width;
        if (*want != e->width) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: width %d differs from the other layers' %d", r->path, on, e->width,
                           *want);
            goto fail;
        }
        const size_t w = (size_t)e->width;
        if ((uint64_t)w * w * 8 > r->file_size) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s: a %zu x %zu xtx does not fit in the file (truncated or corrupt)",
                           r->path, on, w, w);
            goto fail;
        }
        e->xtx = malloc(w * w * sizeof(double));
        e->abs_sum = malloc(w * sizeof(double));
        e->sq_sum = malloc(w * sizeof(double));
        if (!e->xtx || !e->abs_sum || !e->sq_sum) {
            st = sq_errorf(SQ_ERR_OOM, "%s: %s: out of memory", r->path, on);
            goto fail;
        }
        char xon[SQ_MAX_NAME + 48], aon[SQ_MAX_NAME + 48], son[SQ_MAX_NAME + 48];
        snprintf(xon, sizeof xon, "%s/xtx", on);
        snprintf(aon, sizeof aon, "%s/abs_sum", on);
        snprintf(son, sizeof son, "%s/sq_sum", on);
        hsize_t d2[2] = {w, w}, d1 = w;
        if ((st = r_dset(r, ge, xon, "xtx", H5T_FLOAT, 2, d2, H5T_NATIVE_DOUBLE, 8, e->xtx)) ||
            (st = r_dset(r, ge, aon, "abs_sum", H5T_FLOAT, 1, &d1, H5T_NATIVE_DOUBLE, 8, e->abs_sum)) ||
            (st = r_dset(r, ge, son, "sq_sum", H5T_FLOAT, 1, &d1, H5T_NATIVE_DOUBLE, 8, e->sq_sum)) ||
            (st = check_entry(r, e, on)))
            goto fail;
        sq_h5_close(&ge, H5Gclose);
    }
fail:
    sq_h5_close(&ge, H5Gclose);
    sq_h5_close(&g, H5Gclose);
    return st;
}

sq_status sq_calib_read(const char *path, sq_calib *out) {
    sq_status st = SQ_OK;
    rctx r = {path, -1, 0};
    hid_t fapl = -1, root = -1;
    char *s = NULL;
    int64_t *win = NULL;
    memset(out, 0, sizeof *out);
    sq_h5_quiet();
    if (!sq_file_exists(path)) return sq_errorf(SQ_ERR_IO, "%s: no such file", path);
    if (!sq_store_is_hdf5(path))
        return sq_errorf(SQ_ERR_FORMAT, "%s: not a calibration file (no HDF5 signature; truncated or not calib.h5)", path);
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        st = sq_h5_fail(SQ_ERR_INTERNAL, path, "/", "cannot set up HDF5");
        goto fail;
    }
    if ((r.file = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, path, "/", "cannot open as HDF5 (truncated or corrupt file)");
        goto fail;
    }
    hsize_t fsize = 0;
    if (H5Fget_filesize(r.file, &fsize) < 0 || (root = H5Gopen2(r.file, "/", H5P_DEFAULT)) < 0) {
        st = sq_h5_fail(SQ_ERR_FORMAT, path, "/", "cannot open the root group");
        goto fail;
    }
    r.file_size = fsize;
    if ((st = r_str(&r, root, "/", "format", false, &s))) goto fail;
    if (!s || strcmp(s, CALIB_FORMAT) != 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: not a squish calibration file (root attribute format is '%.32s', expected '%s')",
                       path, s ? s : "(absent)", CALIB_FORMAT);
        goto fail;
    }
    int64_t v;
    if ((st = r_int(&r, root, "/", "format_version", 0, INT32_MAX, &v))) goto fail;
    if (v != CALIB_VERSION) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: calibration format_version %lld (this squish reads version %d)", path,
                       (long long)v, CALIB_VERSION);
        goto fail;
    }
    free(s);
    s = NULL;
    if ((st = r_hash(&r, root, "model_sha256", out->model_sha256)) ||
        (st = r_hash(&r, root, "data_sha256", out->data_sha256)) ||
        (st = r_str(&r, root, "/", "data_path", true, &out->data_path)) ||
        (st = r_str(&r, root, "/", "data_format", true, &s)))
        goto fail;
    if (sq_calib_format_from_name(s, &out->data_format) != SQ_OK) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: attribute 'data_format' is '%.32s', not text or jsonl", path, s);
        goto fail;
    }
    if (out->data_format == SQ_CALIB_JSONL && (st = r_str(&r, root, "/", "data_field", true, &out->data_field)))
        goto fail;
    int64_t n_layers, seq_len;
    if ((st = r_int(&r, root, "/", "n_samples", 1, INT64_MAX / 16, &out->n_samples)) ||
        (st = r_int(&r, root, "/", "seq_len", 1, INT32_MAX, &seq_len)) || (st = r_u64(&r, root, "/", "seed", &out->seed)) ||
        (st = r_int(&r, root, "/", "n_tokens", 1, INT64_MAX, &out->n_tokens)) ||
        (st = r_int(&r, root, "/", "n_layers", 1, 100000, &n_layers)) ||
        (st = r_str(&r, root, "/", "tool_version", false, &out->tool_version)) ||
        (st = r_str(&r, root, "/", "command_line", false, &out->command_line)))
        goto fail;
    out->seq_len = (int32_t)seq_len;
    out->n_layers = (int32_t)n_layers;
    if (out->n_samples > INT64_MAX / seq_len) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: n_samples x seq_len overflows", path);
        goto fail;
    }
    if ((uint64_t)out->n_samples * 16 > r.file_size) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %lld windows do not fit in the file (truncated or corrupt)", path,
                       (long long)out->n_samples);
        goto fail;
    }
    win = malloc((size_t)out->n_samples * 2 * sizeof(int64_t));
    out->windows = malloc((size_t)out->n_samples * sizeof *out->windows);
    if (!win || !out->windows) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    hsize_t wd[2] = {(hsize_t)out->n_samples, 2};
    if ((st = r_dset(&r, root, "/windows", "windows", H5T_INTEGER, 2, wd, H5T_NATIVE_INT64, 8, win))) goto fail;
    for (int64_t i = 0; i < out->n_samples; i++) {
        out->windows[i].doc = win[2 * i];
        out->windows[i].offset = win[2 * i + 1];
        if (win[2 * i] < 0 || win[2 * i + 1] < 0 || (out->data_format == SQ_CALIB_TEXT && win[2 * i] != 0) ||
            (out->data_format == SQ_CALIB_TEXT && win[2 * i + 1] > out->n_tokens - out->seq_len)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: /windows[%lld] = (%lld, %lld) is not a window of the data", path,
                           (long long)i, (long long)win[2 * i], (long long)win[2 * i + 1]);
            goto fail;
        }
    }
    st = read_entries(&r, out);
fail:
    free(s);
    free(win);
    sq_h5_close(&root, H5Gclose);
    sq_h5_close(&r.file, H5Fclose);
    sq_h5_close(&fapl, H5Pclose);
    H5Eclear2(H5E_DEFAULT);
    if (st != SQ_OK) sq_calib_free(out);
    return st;
}

/* ===== Checks ===== */

sq_status sq_calib_check_model(const sq_calib *c, const char *model_sha256) {
    if (!model_sha256 || strcmp(c->model_sha256, model_sha256) != 0)
        return sq_errorf(SQ_ERR_ARG,
                         "the calibration was made for the model with sha256 %s, but this model's sha256 is %s "
                         "(run squish-calibrate on this model)",
                         c->model_sha256, model_sha256 ? model_sha256 : "(none)");
    return SQ_OK;
}

sq_status sq_calib_check_config(const sq_calib *c, const sq_config *cfg) {
    if (c->n_layers != cfg->n_layers || c->n_entries != cfg->n_layers * SQ_CALIB_POINTS)
        return sq_errorf(SQ_ERR_ARG, "calibration has %d layers, the model %d", c->n_layers, cfg->n_layers);
    for (int32_t i = 0; i < c->n_entries; i++) {
        const sq_calib_entry *e = &c->entries[i];
        const int32_t want = e->point == SQ_CAPTURE_ATTN_O_IN     ? cfg->n_heads * cfg->head_dim
                             : e->point == SQ_CAPTURE_FFN_DOWN_IN ? cfg->hidden_dim
                                                                  : cfg->dim;
        if (e->width != want)
            return sq_errorf(SQ_ERR_ARG, "calibration: %s has %d input features, the model %d", e->name, e->width, want);
    }
    return SQ_OK;
}

/* ===== Model hash ===== */

typedef struct {
    char *name;
    char hex[65];
} named_hash;

static int cmp_named(const void *a, const void *b) {
    return strcmp(((const named_hash *)a)->name, ((const named_hash *)b)->name);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool manifest_file(const char *name) {
    return !strcmp(name, "config.json") || sq_str_ends_with(name, ".safetensors") ||
           sq_str_ends_with(name, ".safetensors.index.json");
}

sq_status sq_calib_model_sha256(const char *model_path, const sq_checkpoint *imported, char hex[65]) {
    sq_status st = SQ_OK;
    char *dir = NULL;
    DIR *dp = NULL;
    named_hash *files = NULL;
    size_t n = 0, cap = 0;
    if (!sq_is_dir(model_path) && !sq_str_ends_with(model_path, ".safetensors")) {
        if (imported)
            for (int32_t i = 0; i < imported->n_sources; i++)
                if (imported->sources[i].path && !strcmp(imported->sources[i].path, model_path)) {
                    memcpy(hex, imported->sources[i].sha256, 65);
                    return SQ_OK;
                }
        return sq_sha256_file(model_path, hex, NULL);
    }
    /* a Hugging Face directory: the manifest of config.json and the weight files */
    dir = sq_is_dir(model_path) ? sq_strdup(model_path) : sq_path_dirname(model_path);
    if (!dir) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", model_path);
    if (!(dp = opendir(dir))) {
        st = sq_errorf(SQ_ERR_IO, "%s: cannot list the directory", dir);
        goto fail;
    }
    for (struct dirent *de; (de = readdir(dp));) {
        if (!manifest_file(de->d_name)) continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 8;
            named_hash *nf = realloc(files, nc * sizeof *nf);
            if (!nf) {
                st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
                goto fail;
            }
            files = nf;
            cap = nc;
        }
        files[n].hex[0] = '\0';
        if (!(files[n].name = sq_strdup(de->d_name))) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
            goto fail;
        }
        n++;
    }
    if (n == 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: no config.json or .safetensors files to hash", dir);
        goto fail;
    }
    qsort(files, n, sizeof *files, cmp_named);
    sq_sha256 h;
    sq_sha256_init(&h);
    for (size_t i = 0; i < n; i++) {
        if (imported)
            for (int32_t k = 0; k < imported->n_sources; k++)
                if (imported->sources[k].path && !strcmp(base_name(imported->sources[k].path), files[i].name))
                    memcpy(files[i].hex, imported->sources[k].sha256, 65);
        if (!files[i].hex[0]) {
            char *p = sq_path_join(dir, files[i].name);
            st = p ? sq_sha256_file(p, files[i].hex, NULL) : sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
            free(p);
            if (st != SQ_OK) goto fail;
        }
        sq_sha256_update(&h, files[i].hex, 64);
        sq_sha256_update(&h, "  ", 2);
        sq_sha256_update(&h, files[i].name, strlen(files[i].name));
        sq_sha256_update(&h, "\n", 1);
    }
    uint8_t digest[32];
    sq_sha256_final(&h, digest);
    sq_sha256_hex(digest, hex);
fail:
    if (dp) closedir(dp);
    for (size_t i = 0; i < n; i++) free(files[i].name);
    free(files);
    free(dir);
    return st;
}

/* ===== llama.cpp imatrix (legacy .dat) ===== */

static sq_status put_i32(sq_atomic_file *f, int32_t v) { return sq_atomic_write(f, &v, sizeof v); }

sq_status sq_calib_write_imatrix(const char *path, const sq_calib *c) {
    static const struct {
        sq_capture_point point;
        const char *gguf;
    } linears[] = {
        {SQ_CAPTURE_ATTN_IN, "attn_q"},    {SQ_CAPTURE_ATTN_IN, "attn_k"}, {SQ_CAPTURE_ATTN_IN, "attn_v"},
        {SQ_CAPTURE_ATTN_O_IN, "attn_output"}, {SQ_CAPTURE_FFN_IN, "ffn_gate"}, {SQ_CAPTURE_FFN_IN, "ffn_up"},
        {SQ_CAPTURE_FFN_DOWN_IN, "ffn_down"},
    };
    const int n_lin = (int)(sizeof linears / sizeof linears[0]);
    if (c->n_samples < 1 || c->n_samples > INT32_MAX || c->n_layers < 1 || (int64_t)c->n_layers * n_lin > INT32_MAX)
        return sq_errorf(SQ_ERR_ARG, "%s: %lld windows / %d layers cannot be written as an imatrix", path,
                         (long long)c->n_samples, c->n_layers);
    const char *dataset = c->data_path ? c->data_path : "";
    if (strlen(dataset) > INT32_MAX) return sq_errorf(SQ_ERR_ARG, "%s: data path too long", path);
    int32_t max_w = 0;
    for (int32_t i = 0; i < c->n_entries; i++) max_w = c->entries[i].width > max_w ? c->entries[i].width : max_w;
    float *vals = malloc((size_t)(max_w ? max_w : 1) * sizeof(float));
    if (!vals) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    sq_atomic_file f;
    sq_status st = sq_atomic_open(&f, path);
    if (st != SQ_OK) {
        free(vals);
        return st;
    }
    const int32_t ncall = (int32_t)c->n_samples;
    if ((st = put_i32(&f, c->n_layers * n_lin))) goto fail;
    for (int32_t l = 0; l < c->n_layers; l++) {
        for (int k = 0; k < n_lin; k++) {
            const sq_calib_entry *e = sq_calib_entry_at(c, l, linears[k].point);
            if (!e || e->n_tokens < 1) {
                st = sq_errorf(SQ_ERR_ARG, "%s: layer %d has no statistics", path, l);
                goto fail;
            }
            char name[64];
            int len = snprintf(name, sizeof name, "blk.%d.%s.weight", l, linears[k].gguf);
            /* mean of x^2 over the tokens, times ncall: llama-quantize divides by ncall */
            for (int32_t j = 0; j < e->width; j++)
                vals[j] = (float)(e->sq_sum[j] / (double)e->n_tokens * (double)ncall);
            if ((st = put_i32(&f, len)) || (st = sq_atomic_write(&f, name, (size_t)len)) || (st = put_i32(&f, ncall)) ||
                (st = put_i32(&f, e->width)) || (st = sq_atomic_write(&f, vals, (size_t)e->width * sizeof(float))))
                goto fail;
        }
    }
    if ((st = put_i32(&f, ncall)) || (st = put_i32(&f, (int32_t)strlen(dataset))) ||
        (st = sq_atomic_write(&f, dataset, strlen(dataset))))
        goto fail;
    st = sq_atomic_commit(&f);
fail:
    if (st != SQ_OK) sq_atomic_abort(&f);
    free(vals);
    return st;
}
