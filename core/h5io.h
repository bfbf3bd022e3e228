/* h5io.h - the HDF5 plumbing shared by the model store (store.c) and the calibration
 * store (calib_store.c): one-line errors naming the file and object with HDF5's innermost
 * reason, handle closing, and scalar / string / int64-array attribute writers. Toolchain
 * only (the runtime never links HDF5). */
#ifndef SQ_H5IO_H
#define SQ_H5IO_H

#include <hdf5.h>
#include <stdint.h>

#include "../runtime/status.h"

/* "path: obj: what (hdf5: innermost reason)" (obj NULL: about the whole file); clears the
 * HDF5 error stack. */
sq_status sq_h5_fail(sq_status code, const char *path, const char *obj, const char *what);
/* Turns off HDF5's own printing of error stacks (squish reports them as sq_h5_fail lines). */
void sq_h5_quiet(void);
/* Closes *id with fn if it is open and sets it to -1. */
void sq_h5_close(hid_t *id, herr_t (*fn)(hid_t));

/* Scalar attribute `name` on obj (obj_name and path are for messages). */
sq_status sq_h5_attr(const char *path, hid_t obj, const char *obj_name, const char *name, hid_t ftype, hid_t mtype,
                     const void *val);
sq_status sq_h5_attr_i32(const char *path, hid_t obj, const char *obj_name, const char *name, int32_t v);
sq_status sq_h5_attr_i64(const char *path, hid_t obj, const char *obj_name, const char *name, int64_t v);
sq_status sq_h5_attr_u64(const char *path, hid_t obj, const char *obj_name, const char *name, uint64_t v);
sq_status sq_h5_attr_f64(const char *path, hid_t obj, const char *obj_name, const char *name, double v);
/* Fixed-length, NUL-terminated UTF-8 string attribute. */
sq_status sq_h5_attr_str(const char *path, hid_t obj, const char *obj_name, const char *name, const char *v);
/* 1-D int64 attribute of n values. */
sq_status sq_h5_attr_i64s(const char *path, hid_t obj, const char *obj_name, const char *name, const int64_t *v,
                          hsize_t n);

#endif
