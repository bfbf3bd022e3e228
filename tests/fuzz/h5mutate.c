/* h5mutate.c - structural mutations of an HDF5 file for tests/fuzz/fuzz_readers.py.
 *
 *   h5mutate IN OUT SEED     copy IN to OUT and apply one mutation chosen by SEED
 *
 * Byte flips in an HDF5 file mostly exercise libhdf5's own checks; this tool instead makes
 * files that libhdf5 reads without complaint but whose content is wrong for squish: an
 * attribute or dataset removed, an attribute set to a boundary value (0, -1, INT32_MAX,
 * NaN, ...) or given another type or shape, a dataset re-created with another shape
 * (a dimension dropped, added, one more or one fewer row, swapped) or another element
 * type, two datasets' names swapped. It prints what it did on one line. Uses only the
 * HDF5 C API (https://support.hdfgroup.org/documentation/); no paper.
 */
#include <hdf5.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OBJ 4096

typedef struct {
    char path[512]; /* the object holding it */
    char name[256]; /* attribute name; "" for a dataset */
} item;

static item items[MAX_OBJ];
static int n_items;
static char dsets[MAX_OBJ][512];
static int n_dsets;

static uint64_t rng;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int pick(int n) { return n > 0 ? (int)(next() % (uint64_t)n) : 0; }

static herr_t on_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc, (void)info;
    if (n_items < MAX_OBJ) {
        snprintf(items[n_items].path, sizeof items[0].path, "%s", (const char *)data);
        snprintf(items[n_items].name, sizeof items[0].name, "%s", name);
        n_items++;
    }
    return 0;
}

static herr_t on_obj(hid_t root, const char *name, const H5O_info_t *info, void *data) {
    (void)data;
    char path[512];
    snprintf(path, sizeof path, "/%s", strcmp(name, ".") ? name : "");
    if (info->type == H5O_TYPE_DATASET && n_dsets < MAX_OBJ) snprintf(dsets[n_dsets++], sizeof dsets[0], "%s", path);
    hid_t o = H5Oopen(root, name, H5P_DEFAULT);
    if (o >= 0) {
        H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, on_attr, path);
        H5Oclose(o);
    }
    return 0;
}

static int copy_file(const char *in, const char *out) {
    FILE *a = fopen(in, "rb"), *b = fopen(out, "wb");
    if (!a || !b) return -1;
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, k, b);
    fclose(a);
    return fclose(b);
}

static const int64_t IVALS[] = {0, -1, 1, 2, 3, 7, 48, 1 << 24, (int64_t)1 << 24 | 1, INT32_MAX, INT32_MIN,
                                (int64_t)INT32_MAX + 1, INT64_MAX, INT64_MIN};
static const double FVALS[] = {0.0, -1.0, 1e30, -1e-30, 1e300};

/* Writes a scalar attribute `name` of type mt with value v (replacing any old one). */
static void put_attr(hid_t o, const char *name, hid_t ft, hid_t mt, const void *v, hsize_t n) {
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, mt, v);
        H5Aclose(a);
    }
    H5Sclose(sp);
}

static void put_str_attr(hid_t o, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    put_attr(o, name, t, t, s, 0);
    H5Tclose(t);
}

static void mutate_attr(hid_t f, const item *it) {
    hid_t o = H5Oopen(f, it->path, H5P_DEFAULT);
    if (o < 0) return;
    hid_t a = H5Aopen(o, it->name, H5P_DEFAULT);
    H5T_class_t cls = H5T_NO_CLASS;
    hssize_t np = 0;
    if (a >= 0) {
        hid_t t = H5Aget_type(a), s = H5Aget_space(a);
        cls = H5Tget_class(t);
        np = H5Sget_simple_extent_npoints(s);
        H5Tclose(t);
        H5Sclose(s);
        H5Aclose(a);
    }
    int op = pick(6);
    if (op == 0) {
        H5Adelete(o, it->name);
        printf("attr %s@%s deleted\n", it->path, it->name);
    } else if (op == 1 || (op == 2 && cls == H5T_INTEGER)) {
        int64_t v = IVALS[pick((int)(sizeof IVALS / sizeof IVALS[0]))];
        if (cls == H5T_INTEGER && np > 1) { /* an array: change one element */
            int64_t *vals = calloc((size_t)np, sizeof *vals);
            a = H5Aopen(o, it->name, H5P_DEFAULT);
            H5Aread(a, H5T_NATIVE_INT64, vals);
            H5Aclose(a);
            int k = pick((int)np);
            vals[k] = v;
            put_attr(o, it->name, H5T_STD_I64LE, H5T_NATIVE_INT64, vals, (hsize_t)np);
            printf("attr %s@%s[%d] = %lld\n", it->path, it->name, k, (long long)v);
            free(vals);
        } else {
            hid_t ft = cls == H5T_INTEGER || pick(2) ? H5T_STD_I32LE : H5T_STD_I64LE;
            if (ft == H5T_STD_I32LE && (v > INT32_MAX || v < INT32_MIN)) v = INT32_MIN;
            put_attr(o, it->name, ft, H5T_NATIVE_INT64, &v, 0);
            printf("attr %s@%s = %lld (integer)\n", it->path, it->name, (long long)v);
        }
    } else if (op == 2) {
        double v = pick(4) == 0 ? NAN : pick(3) == 0 ? INFINITY : FVALS[pick(5)];
        put_attr(o, it->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 0);
        printf("attr %s@%s = %g (float)\n", it->path, it->name, v);
    } else if (op == 3) {
        static const char *S[] = {"", "bogus", "f32", "q4g", "none", "x\xff\xfe"};
        const char *s = S[pick(6)];
        put_str_attr(o, it->name, s);
        printf("attr %s@%s = '%s' (string)\n", it->path, it->name, s);
    } else if (op == 4) { /* the same value as a 2-element array */
        int64_t v[2] = {1, 2};
        put_attr(o, it->name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, 2);
        printf("attr %s@%s = [1, 2]\n", it->path, it->name);
    } else { /* an empty array */
        int64_t v = 0;
        hsize_t z = 0;
        if (H5Aexists(o, it->name) > 0) H5Adelete(o, it->name);
        hid_t sp = H5Screate_simple(1, &z, NULL);
        hid_t na = H5Acreate2(o, it->name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (na >= 0) {
            H5Awrite(na, H5T_NATIVE_INT64, &v);
            H5Aclose(na);
        }
        H5Sclose(sp);
        printf("attr %s@%s = [] (empty)\n", it->path, it->name);
    }
    H5Oclose(o);
}

/* Copies attribute `name` of the dataset being replaced (fixed-size types only). */
static herr_t copy_attr(hid_t from, const char *name, const H5A_info_t *info, void *to) {
    (void)info;
    hid_t a = H5Aopen(from, name, H5P_DEFAULT), t = H5Aget_type(a), s = H5Aget_space(a);
    size_t n = (size_t)H5Sget_simple_extent_npoints(s) * H5Tget_size(t);
    if (H5Tis_variable_str(t) <= 0 && H5Tget_class(t) != H5T_VLEN) {
        void *buf = calloc(n ? n : 1, 1);
        hid_t b = H5Acreate2(*(hid_t *)to, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
        if (b >= 0 && H5Aread(a, t, buf) >= 0) H5Awrite(b, t, buf);
        if (b >= 0) H5Aclose(b);
        free(buf);
    }
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return 0;
}

/* Re-creates dataset `path` with new dims (rank nd) and file type ft, filling it from the
 * old bytes (as far as they go; zeros after) and keeping its attributes. */
static void recreate(hid_t f, const char *path, int nd, const hsize_t *dims, hid_t ft, const void *old,
                     size_t old_bytes) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.h5mutate", path);
    hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
    size_t n = H5Tget_size(ft);
    for (int i = 0; i < nd; i++) n *= (size_t)dims[i];
    unsigned char *buf = calloc(n ? n : 1, 1);
    memcpy(buf, old, old_bytes < n ? old_bytes : n);
    hid_t d = H5Dcreate2(f, tmp, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        if (n) H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        hid_t o = H5Dopen2(f, path, H5P_DEFAULT);
        if (o >= 0) {
            H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, copy_attr, &d);
            H5Dclose(o);
        }
        H5Dclose(d);
        H5Ldelete(f, path, H5P_DEFAULT);
        H5Lmove(f, tmp, f, path, H5P_DEFAULT, H5P_DEFAULT);
    }
    free(buf);
    H5Sclose(sp);
}

static void mutate_dset(hid_t f, const char *path) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t dims[8] = {0};
    if (nd > 0 && nd <= 6) H5Sget_simple_extent_dims(s, dims, NULL);
    bool var = H5Tis_variable_str(t) > 0 || H5Tget_class(t) == H5T_VLEN;
    size_t bytes = (size_t)H5Sget_simple_extent_npoints(s) * H5Tget_size(t);
    unsigned char *data = NULL;
    if (!var && nd >= 0 && nd <= 6) {
        data = malloc(bytes ? bytes : 1);
        if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) bytes = 0;
    }
    hid_t ft = H5Tcopy(t);
    H5Sclose(s);
    H5Dclose(d);
    int op = pick(8);
    if (op == 0 || var || !data || nd > 6) {
        H5Ldelete(f, path, H5P_DEFAULT);
        printf("dataset %s deleted\n", path);
    } else if (op == 1 && nd >= 1) { /* drop the last dimension */
        recreate(f, path, nd - 1, dims, ft, data, bytes);
        printf("dataset %s rank %d -> %d\n", path, nd, nd - 1);
    } else if (op == 2 && nd < 6) { /* add a dimension of 1 or 2 */
        dims[nd] = 1 + (hsize_t)pick(2);
        recreate(f, path, nd + 1, dims, ft, data, bytes);
        printf("dataset %s rank %d -> %d (last %llu)\n", path, nd, nd + 1, (unsigned long long)dims[nd]);
    } else if ((op == 3 || op == 4) && nd >= 1) { /* one dimension one more or one fewer (or 0) */
        int k = pick(nd);
        hsize_t old = dims[k];
        dims[k] = op == 3 ? dims[k] + 1 : dims[k] > 0 && pick(3) ? dims[k] - 1 : 0;
        recreate(f, path, nd, dims, ft, data, bytes);
        printf("dataset %s dim %d: %llu -> %llu\n", path, k, (unsigned long long)old, (unsigned long long)dims[k]);
    } else if (op == 5 && nd >= 2) { /* swap two dimensions */
        hsize_t x = dims[0];
        dims[0] = dims[nd - 1];
        dims[nd - 1] = x;
        recreate(f, path, nd, dims, ft, data, bytes);
        printf("dataset %s first and last dims swapped\n", path);
    } else if (op == 6) { /* another element type */
        static const hid_t *T[] = {&H5T_STD_I8LE_g, &H5T_STD_U8LE_g, &H5T_STD_I32LE_g, &H5T_IEEE_F32LE_g,
                                   &H5T_IEEE_F64LE_g, &H5T_STD_U16LE_g, &H5T_STD_I64LE_g};
        hid_t nt = *T[pick(7)];
        recreate(f, path, nd, dims, nt, data, bytes);
        printf("dataset %s element type changed (%zu -> %zu bytes)\n", path, H5Tget_size(ft), H5Tget_size(nt));
    } else if (n_dsets >= 2) { /* swap names with another dataset */
        const char *other = dsets[pick(n_dsets)];
        if (strcmp(other, path)) {
            char tmp[600];
            snprintf(tmp, sizeof tmp, "%s.h5mutate", path);
            H5Lmove(f, path, f, tmp, H5P_DEFAULT, H5P_DEFAULT);
            H5Lmove(f, other, f, path, H5P_DEFAULT, H5P_DEFAULT);
            H5Lmove(f, tmp, f, other, H5P_DEFAULT, H5P_DEFAULT);
        }
        printf("datasets %s and %s swapped\n", path, other);
    } else {
        H5Ldelete(f, path, H5P_DEFAULT);
        printf("dataset %s deleted\n", path);
    }
    H5Tclose(ft);
    free(data);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: h5mutate IN OUT SEED\n");
        return 2;
    }
    rng = strtoull(argv[3], NULL, 10) * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < 4; i++) next();
    if (copy_file(argv[1], argv[2])) {
        fprintf(stderr, "h5mutate: cannot copy %s to %s\n", argv[1], argv[2]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(argv[2], H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "h5mutate: cannot open %s\n", argv[2]);
        return 2;
    }
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, on_obj, NULL, H5O_INFO_BASIC);
    /* tensors outnumber everything else: half of the time mutate an attribute */
    if ((pick(2) && n_items) || !n_dsets) mutate_attr(f, &items[pick(n_items)]);
    else mutate_dset(f, dsets[pick(n_dsets)]);
    H5Fclose(f);
    return 0;
}
