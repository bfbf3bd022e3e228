/* h5io.c - HDF5 plumbing shared by the model store and the calibration store (h5io.h):
 * error lines, handle closing and attribute writers. Follows the HDF5 1.10+ C API
 * (H5Acreate2/H5Ewalk2); nothing here depends on what the stores contain. */
#include "h5io.h"

#include <stdio.h>
#include <string.h>

static int innermost(unsigned n, const H5E_error2_t *e, void *data) {
    char *buf = data;
    if (n == 0 && e->desc && e->desc[0]) snprintf(buf, 160, "%s", e->desc);
    return 0;
}

sq_status sq_h5_fail(sq_status code, const char *path, const char *obj, const char *what) {
    char reason[160] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, reason);
    H5Eclear2(H5E_DEFAULT);
    return sq_errorf(code, "%s%s%s: %s%s%s%s", path, obj ? ": " : "", obj ? obj : "", what, reason[0] ? " (hdf5: " : "",
                     reason, reason[0] ? ")" : "");
}

void sq_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void sq_h5_close(hid_t *id, herr_t (*fn)(hid_t)) {
    if (*id >= 0) fn(*id);
    *id = -1;
}

/* Attribute of the given dataspace; sp is consumed. */
static sq_status write_attr(const char *path, hid_t obj, const char *obj_name, const char *name, hid_t sp, hid_t ftype,
                            hid_t mtype, const void *val) {
    sq_status st = SQ_OK;
    hid_t a = -1;
    if (sp < 0 || (a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 || H5Awrite(a, mtype, val) < 0) {
        char what[96];
        snprintf(what, sizeof what, "cannot write attribute '%s'", name);
        st = sq_h5_fail(SQ_ERR_IO, path, obj_name, what);
    }
    sq_h5_close(&a, H5Aclose);
    sq_h5_close(&sp, H5Sclose);
    return st;
}

sq_status sq_h5_attr(const char *path, hid_t obj, const char *obj_name, const char *name, hid_t ftype, hid_t mtype,
                     const void *val) {
    return write_attr(path, obj, obj_name, name, H5Screate(H5S_SCALAR), ftype, mtype, val);
}

sq_status sq_h5_attr_i32(const char *path, hid_t obj, const char *obj_name, const char *name, int32_t v) {
    return sq_h5_attr(path, obj, obj_name, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v);
}
sq_status sq_h5_attr_i64(const char *path, hid_t obj, const char *obj_name, const char *name, int64_t v) {
    return sq_h5_attr(path, obj, obj_name, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}
sq_status sq_h5_attr_u64(const char *path, hid_t obj, const char *obj_name, const char *name, uint64_t v) {
    return sq_h5_attr(path, obj, obj_name, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}
sq_status sq_h5_attr_f64(const char *path, hid_t obj, const char *obj_name, const char *name, double v) {
    return sq_h5_attr(path, obj, obj_name, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

sq_status sq_h5_attr_str(const char *path, hid_t obj, const char *obj_name, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    sq_status st;
    if (t < 0 || H5Tset_size(t, strlen(v) + 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(t, H5T_CSET_UTF8) < 0)
        st = sq_h5_fail(SQ_ERR_IO, path, obj_name, "cannot make a string type");
    else
        st = sq_h5_attr(path, obj, obj_name, name, t, t, v);
    sq_h5_close(&t, H5Tclose);
    return st;
}

sq_status sq_h5_attr_i64s(const char *path, hid_t obj, const char *obj_name, const char *name, const int64_t *v,
                          hsize_t n) {
    return write_attr(path, obj, obj_name, name, H5Screate_simple(1, &n, NULL), H5T_STD_I64LE, H5T_NATIVE_INT64, v);
}
