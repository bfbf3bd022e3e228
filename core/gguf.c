/* gguf.c - reader and writer of the GGUF v3 container (ggml-org/ggml docs/gguf.md and
 * src/gguf.cpp, FORMATS.md 6.1/6.4): "GGUF", u32 version, u64 tensor and metadata counts,
 * metadata (string key, u32 value type, value), tensor infos (name, n_dims, ne[], type,
 * offset), zero padding to the alignment, tensor data. The reader mmaps the file and checks
 * every length, count and offset against the file size with overflow-safe arithmetic
 * before using it (the gguf.cpp reader is the model; gguf-tools trusts lengths and is not).
 * It accepts v2 (same little-endian layout) and v3, refuses v1 and big-endian files with a
 * message saying so, and allows holes between tensors but not overlaps. The writer is
 * deterministic and atomic, with alignment 32 and zero padding after every tensor. Type
 * sizes are ggml-common.h's asserted block structs.
 */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ===== Types ===== */

static const sq_ggml_type_info ggml_types[] = {
    [SQ_GGML_F32] = {"F32", 1, 4},           [SQ_GGML_F16] = {"F16", 1, 2},
    [SQ_GGML_Q4_0] = {"Q4_0", 32, 18},       [SQ_GGML_Q4_1] = {"Q4_1", 32, 20},
    [SQ_GGML_Q5_0] = {"Q5_0", 32, 22},       [SQ_GGML_Q5_1] = {"Q5_1", 32, 24},
    [SQ_GGML_Q8_0] = {"Q8_0", 32, 34},       [SQ_GGML_Q8_1] = {"Q8_1", 32, 36},
    [SQ_GGML_Q2_K] = {"Q2_K", 256, 84},      [SQ_GGML_Q3_K] = {"Q3_K", 256, 110},
    [SQ_GGML_Q4_K] = {"Q4_K", 256, 144},     [SQ_GGML_Q5_K] = {"Q5_K", 256, 176},
    [SQ_GGML_Q6_K] = {"Q6_K", 256, 210},     [SQ_GGML_Q8_K] = {"Q8_K", 256, 292},
    [SQ_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [SQ_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [SQ_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [SQ_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [SQ_GGML_IQ4_NL] = {"IQ4_NL", 32, 18},   [SQ_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [SQ_GGML_IQ2_S] = {"IQ2_S", 256, 82},    [SQ_GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [SQ_GGML_I8] = {"I8", 1, 1},             [SQ_GGML_I16] = {"I16", 1, 2},
    [SQ_GGML_I32] = {"I32", 1, 4},           [SQ_GGML_I64] = {"I64", 1, 8},
    [SQ_GGML_F64] = {"F64", 1, 8},           [SQ_GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [SQ_GGML_BF16] = {"BF16", 1, 2},         [SQ_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [SQ_GGML_TQ2_0] = {"TQ2_0", 256, 66},    [SQ_GGML_MXFP4] = {"MXFP4", 32, 17},
};

const sq_ggml_type_info *sq_ggml_type_info_get(uint32_t type) {
    if (type >= sizeof ggml_types / sizeof ggml_types[0] || !ggml_types[type].name) return NULL;
    return &ggml_types[type];
}

const char *sq_ggml_type_name(uint32_t type) {
    static _Thread_local char buf[24];
    const sq_ggml_type_info *ti = sq_ggml_type_info_get(type);
    if (ti) return ti->name;
    snprintf(buf, sizeof buf, "type %u", type);
    return buf;
}

bool sq_ggml_to_sq(uint32_t ggml_type, sq_type *out) {
    switch (ggml_type) {
    case SQ_GGML_F32: *out = SQ_TYPE_F32; return true;
    case SQ_GGML_F16: *out = SQ_TYPE_F16; return true;
    case SQ_GGML_BF16: *out = SQ_TYPE_BF16; return true;
    default: return false;
    }
}

bool sq_ggml_from_sq(sq_type t, uint32_t *out) {
    switch (t) {
    case SQ_TYPE_F32: *out = SQ_GGML_F32; return true;
    case SQ_TYPE_F16: *out = SQ_GGML_F16; return true;
    case SQ_TYPE_BF16: *out = SQ_GGML_BF16; return true;
    default: return false;
    }
}

static const char *const vtype_names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32", "float32",
                                          "bool",  "string", "array",  "uint64", "int64",  "float64"};

const char *sq_gguf_vtype_name(uint32_t t) {
    return t < sizeof vtype_names / sizeof vtype_names[0] ? vtype_names[t] : "?";
}

/* Bytes of one value of a fixed-size type; 0 for string, array and unknown types. */
static uint64_t vtype_size(uint32_t t) {
    switch (t) {
    case SQ_GGUF_UINT8: case SQ_GGUF_INT8: case SQ_GGUF_BOOL: return 1;
    case SQ_GGUF_UINT16: case SQ_GGUF_INT16: return 2;
    case SQ_GGUF_UINT32: case SQ_GGUF_INT32: case SQ_GGUF_FLOAT32: return 4;
    case SQ_GGUF_UINT64: case SQ_GGUF_INT64: case SQ_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* ===== Little-endian decoding ===== */

static uint64_t rd64(const uint8_t *p) { return (uint64_t)sq_rd_le32(p) | (uint64_t)sq_rd_le32(p + 4) << 32; }
static uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }
static uint64_t bswap64(uint64_t v) { return __builtin_bswap64(v); }

/* ===== Reader ===== */

struct sq_gguf {
    char *path;
    sq_mapping map;
    uint32_t version, alignment;
    uint64_t data_offset;
    sq_gguf_kv *kvs;
    int64_t n_kv;
    sq_gguf_tensor *tensors;
    int64_t n_tensors;
};

typedef struct {
    const char *path;
    const uint8_t *base;
    uint64_t size, pos;
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

/* Reads n bytes' worth of header field `what`, or fails with the position. */
static sq_status need(const cursor *c, uint64_t n, const char *what) {
    if (n <= left(c)) return SQ_OK;
    return sq_errorf(SQ_ERR_FORMAT, "%s: truncated: %s at byte %llu needs %llu bytes but the %llu-byte file has %llu left",
                     c->path, what, (unsigned long long)c->pos, (unsigned long long)n, (unsigned long long)c->size,
                     (unsigned long long)left(c));
}

static sq_status get_u32(cursor *c, const char *what, uint32_t *v) {
    sq_status st = need(c, 4, what);
    if (st) return st;
    *v = sq_rd_le32(c->base + c->pos);
    c->pos += 4;
    return SQ_OK;
}

static sq_status get_u64(cursor *c, const char *what, uint64_t *v) {
    sq_status st = need(c, 8, what);
    if (st) return st;
    *v = rd64(c->base + c->pos);
    c->pos += 8;
    return SQ_OK;
}

/* A string (u64 length + bytes) that must fit in the file; *s points into the mapping. */
static sq_status get_str(cursor *c, const char *what, const uint8_t **s, uint64_t *len) {
    sq_status st = get_u64(c, what, len);
    if (st) return st;
    if (*len > left(c))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s at byte %llu has length %llu, past the end of the %llu-byte file",
                         c->path, what, (unsigned long long)(c->pos - 8), (unsigned long long)*len,
                         (unsigned long long)c->size);
    *s = c->base + c->pos;
    c->pos += *len;
    return SQ_OK;
}

/* A NUL-terminated copy of a name (s, len: just read), refusing empty names and control
 * bytes, NUL included: names are echoed in one-line messages. */
static sq_status dup_name(const cursor *c, const char *what, const uint8_t *s, uint64_t len, uint64_t max,
                          char **out) {
    uint64_t at = c->pos - len - 8;
    if (len == 0) return sq_errorf(SQ_ERR_FORMAT, "%s: %s at byte %llu is empty", c->path, what, (unsigned long long)at);
    for (uint64_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] == 0x7F)
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s at byte %llu contains control byte 0x%02x", c->path, what,
                             (unsigned long long)at, s[i]);
    if (len > max)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s '%.40s...' is %llu bytes (at most %llu)", c->path, what, (const char *)s,
                         (unsigned long long)len, (unsigned long long)max);
    char *p = malloc((size_t)len + 1);
    if (!p) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", c->path);
    memcpy(p, s, (size_t)len);
    p[len] = '\0';
    *out = p;
    return SQ_OK;
}

void sq_gguf_close(sq_gguf *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n_kv; i++) {
        free((char *)f->kvs[i].key);
        free((uint64_t *)f->kvs[i].str_off);
    }
    free(f->kvs);
    for (int64_t i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    sq_unmap_file(&f->map);
    free(f->path);
    free(f);
}

/* The value of metadata entry kv (its key already read): scalars, strings, arrays. */
static sq_status read_value(cursor *c, sq_gguf_kv *kv, uint32_t type) {
    sq_status st;
    const char *k = kv->key;
    if (type > SQ_GGUF_FLOAT64)
        return sq_errorf(SQ_ERR_FORMAT, "%s: key '%.200s' has unknown value type %u (at byte %llu)", c->path, k, type,
                         (unsigned long long)(c->pos - 4));
    kv->type = (sq_gguf_vtype)type;
    kv->elem_type = (sq_gguf_vtype)type;
    kv->n = 1;
    uint32_t et = type;
    uint64_t n = 1;
    if (type == SQ_GGUF_ARRAY) {
        if ((st = get_u32(c, "array element type", &et))) return st;
        if ((st = get_u64(c, "array length", &n))) return st;
        if (et == SQ_GGUF_ARRAY)
            return sq_errorf(SQ_ERR_FORMAT, "%s: key '%.200s' is an array of arrays, which GGUF readers do not support",
                             c->path, k);
        if (et > SQ_GGUF_FLOAT64)
            return sq_errorf(SQ_ERR_FORMAT, "%s: key '%.200s' is an array of unknown value type %u", c->path, k, et);
        kv->elem_type = (sq_gguf_vtype)et;
        kv->n = n;
    }
    kv->data = c->base + c->pos;
    if (et == SQ_GGUF_STRING) {
        /* every string needs at least its 8-byte length: bounds n before allocating */
        if (n > left(c) / 8)
            return sq_errorf(SQ_ERR_FORMAT, "%s: key '%.200s': %llu strings cannot fit in the %llu bytes left of the file",
                             c->path, k, (unsigned long long)n, (unsigned long long)left(c));
        uint64_t *off = NULL;
        if (type == SQ_GGUF_ARRAY) {
            off = malloc((size_t)(n ? n : 1) * sizeof *off);
            if (!off) return sq_errorf(SQ_ERR_OOM, "%s: out of memory reading key '%.200s'", c->path, k);
            kv->str_off = off;
        }
        uint64_t start = c->pos;
        for (uint64_t i = 0; i < n; i++) {
            if (off) off[i] = c->pos - start;
            uint64_t len = left(c) >= 8 ? rd64(c->base + c->pos) : 0;
            if (left(c) < 8 || len > left(c) - 8)
                return sq_errorf(SQ_ERR_FORMAT,
                                 "%s: key '%.200s': string %llu (at byte %llu) runs past the end of the %llu-byte file",
                                 c->path, k, (unsigned long long)i, (unsigned long long)c->pos,
                                 (unsigned long long)c->size);
            c->pos += 8 + len;
        }
        return SQ_OK;
    }
    uint64_t es = vtype_size(et);
    if (n > left(c) / es)
        return sq_errorf(SQ_ERR_FORMAT, "%s: key '%.200s': %llu values of type %s (at byte %llu) run past the end of the "
                         "%llu-byte file",
                         c->path, k, (unsigned long long)n, sq_gguf_vtype_name(et), (unsigned long long)c->pos,
                         (unsigned long long)c->size);
    if (et == SQ_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (c->base[c->pos + i] > 1)
                return sq_errorf(SQ_ERR_FORMAT, "%s: key '%.200s': bool value %u is neither 0 nor 1", c->path, k,
                                 c->base[c->pos + i]);
    c->pos += n * es;
    return SQ_OK;
}

static int cmp_kv_key(const void *a, const void *b) {
    return strcmp((*(const sq_gguf_kv *const *)a)->key, (*(const sq_gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const sq_gguf_tensor *const *)a)->name, (*(const sq_gguf_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const sq_gguf_tensor *x = *(const sq_gguf_tensor *const *)a, *y = *(const sq_gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Header: magic, version, counts, with the big-endian diagnosis. */
static sq_status read_header(cursor *c, sq_gguf *f, uint64_t *n_tensors, uint64_t *n_kv) {
    if (c->size < 4 || memcmp(c->base, SQ_GGUF_MAGIC, 4) != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: not a GGUF file (bad magic)", c->path);
    if (c->size < 24)
        return sq_errorf(SQ_ERR_FORMAT, "%s: truncated: %llu bytes is too short for a GGUF header (24)", c->path,
                         (unsigned long long)c->size);
    uint32_t v = sq_rd_le32(c->base + 4);
    *n_tensors = rd64(c->base + 8);
    *n_kv = rd64(c->base + 16);
    c->pos = 24;
    if (v != 2 && v != 3) {
        uint32_t sw = bswap32(v);
        if (sw >= 1 && sw <= 3)
            return sq_errorf(SQ_ERR_UNSUPPORTED,
                             "%s: GGUF version field reads %u (%u byte-swapped): a big-endian GGUF file; squish reads "
                             "little-endian files only",
                             c->path, v, sw);
        if (v == 1)
            return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: GGUF v1 is not supported (re-convert with a llama.cpp from after "
                             "August 2023 to get v3)", c->path);
        return sq_errorf(SQ_ERR_FORMAT, "%s: unknown GGUF version %u (squish reads v2 and v3)", c->path, v);
    }
    f->version = v;
    /* each metadata entry takes at least 8 + 1 + 4 + 1 bytes, each tensor info 8 + 1 + 4 + 8 + 4 + 8 */
    uint64_t room = c->size - 24;
    bool bad_kv = *n_kv > room / 14, bad_t = *n_tensors > room / 33;
    if (bad_kv || bad_t) {
        uint64_t skv = bswap64(*n_kv), st = bswap64(*n_tensors);
        if (skv <= room / 14 && st <= room / 33)
            return sq_errorf(SQ_ERR_UNSUPPORTED,
                             "%s: %s count %llu is implausible for a %llu-byte file but plausible byte-swapped: a "
                             "big-endian GGUF file? squish reads little-endian files only",
                             c->path, bad_t ? "tensor" : "metadata", (unsigned long long)(bad_t ? *n_tensors : *n_kv),
                             (unsigned long long)c->size);
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s count %llu is implausible for a %llu-byte file", c->path,
                         bad_t ? "tensor" : "metadata", (unsigned long long)(bad_t ? *n_tensors : *n_kv),
                         (unsigned long long)c->size);
    }
    return SQ_OK;
}

static sq_status read_alignment(const cursor *c, sq_gguf *f) {
    f->alignment = SQ_GGUF_DEFAULT_ALIGNMENT;
    const sq_gguf_kv *a = sq_gguf_find_kv(f, "general.alignment");
    if (!a) return SQ_OK;
    if (a->type != SQ_GGUF_UINT32)
        return sq_errorf(SQ_ERR_FORMAT, "%s: general.alignment is of type %s, not uint32", c->path,
                         sq_gguf_vtype_name(a->type));
    uint32_t v = sq_rd_le32(a->data);
    if (v == 0 || (v & (v - 1)) != 0 || v % 8 != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: general.alignment %u is not a power of two and a multiple of 8", c->path,
                         v);
    f->alignment = v;
    return SQ_OK;
}

/* One tensor info: name, dims, type, offset; sizes checked, data located later. */
static sq_status read_tensor_info(cursor *c, const sq_gguf *f, sq_gguf_tensor *t) {
    sq_status st;
    const uint8_t *s;
    uint64_t len;
    char *name = NULL;
    if ((st = get_str(c, "tensor name", &s, &len))) return st;
    if ((st = dup_name(c, "tensor name", s, len, SQ_GGUF_MAX_NAME, &name))) return st;
    t->name = name;
    uint32_t nd;
    if ((st = get_u32(c, "tensor n_dims", &nd))) return st;
    if (nd < 1 || nd > SQ_GGUF_MAX_DIMS)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (GGUF allows 1 to %d)", c->path, name, nd,
                         SQ_GGUF_MAX_DIMS);
    t->n_dims = nd;
    uint64_t numel = 1;
    for (int d = 0; d < SQ_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if ((st = get_u64(c, "tensor dimension", &t->ne[d]))) return st;
        if (t->ne[d] > (uint64_t)INT64_MAX || !sq_mul_u64(numel, t->ne[d], &numel) || numel > (uint64_t)INT64_MAX)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s': the element count overflows 63 bits", c->path, name);
    }
    if ((st = get_u32(c, "tensor type", &t->type))) return st;
    const sq_ggml_type_info *ti = sq_ggml_type_info_get(t->type);
    if (!ti)
        return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown ggml type id %u (a newer ggml type?)", c->path,
                         name, t->type);
    if (t->ne[0] % (uint64_t)ti->block != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s': ne[0] = %llu is not a multiple of the %s block size %d",
                         c->path, name, (unsigned long long)t->ne[0], ti->name, ti->block);
    if (!sq_mul_u64(numel / (uint64_t)ti->block, (uint64_t)ti->block_bytes, &t->nbytes))
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s': byte size overflows 64 bits", c->path, name);
    if ((st = get_u64(c, "tensor offset", &t->offset))) return st;
    if (t->offset % f->alignment != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s': offset %llu is not a multiple of the alignment %u", c->path,
                         name, (unsigned long long)t->offset, f->alignment);
    return SQ_OK;
}

/* Data section: start, bounds, overlaps. */
static sq_status place_tensors(const cursor *c, sq_gguf *f) {
    uint64_t a = f->alignment, pad = (a - c->pos % a) % a;
    f->data_offset = c->pos + pad; /* c->pos <= size, pad < 2^32: cannot overflow */
    if (f->n_tensors == 0) return SQ_OK;
    if (f->data_offset > c->size)
        return sq_errorf(SQ_ERR_FORMAT, "%s: truncated: the data section would start at byte %llu of a %llu-byte file",
                         c->path, (unsigned long long)f->data_offset, (unsigned long long)c->size);
    uint64_t room = c->size - f->data_offset;
    const sq_gguf_tensor **by_off = malloc((size_t)f->n_tensors * sizeof *by_off);
    if (!by_off) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", c->path);
    sq_status st = SQ_OK;
    for (int64_t i = 0; i < f->n_tensors && !st; i++) {
        sq_gguf_tensor *t = &f->tensors[i];
        by_off[i] = t;
        if (t->offset > room || t->nbytes > room - t->offset)
            st = sq_errorf(SQ_ERR_FORMAT,
                           "%s: tensor '%s': data [%llu, +%llu) runs past the end of the file (the data section has "
                           "%llu bytes)",
                           c->path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                           (unsigned long long)room);
        else
            t->data = c->base + f->data_offset + t->offset;
    }
    if (!st) {
        qsort(by_off, (size_t)f->n_tensors, sizeof *by_off, cmp_tensor_offset);
        const sq_gguf_tensor *prev = NULL;
        for (int64_t i = 0; i < f->n_tensors && !st; i++) {
            const sq_gguf_tensor *t = by_off[i];
            if (t->nbytes == 0) continue;
            if (prev && prev->offset + prev->nbytes > t->offset)
                st = sq_errorf(SQ_ERR_FORMAT,
                               "%s: tensor '%s' (data at %llu) overlaps tensor '%s' (data at %llu, %llu bytes)", c->path, t->name, (unsigned long long)t->offset, prev->name,
                               (unsigned long long)prev->offset, (unsigned long long)prev->nbytes);
            prev = t;
        }
    }
    free(by_off);
    return st;
}

sq_status sq_gguf_open(sq_gguf **out, const char *path) {
    sq_status st;
    *out = NULL;
    sq_gguf *f = calloc(1, sizeof *f);
    const void **sorted = NULL;
    if (!f || !(f->path = sq_strdup(path))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    if ((st = sq_map_file(path, &f->map))) goto fail;
    cursor c = {path, f->map.data, f->map.size, 0};
    uint64_t n_tensors = 0, n_kv = 0;
    if ((st = read_header(&c, f, &n_tensors, &n_kv))) goto fail;

    /* metadata */
    f->kvs = calloc((size_t)(n_kv ? n_kv : 1), sizeof *f->kvs);
    if (!f->kvs) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        sq_gguf_kv *kv = &f->kvs[i];
        const uint8_t *s;
        uint64_t len;
        uint32_t type;
        char *key = NULL;
        if ((st = get_str(&c, "metadata key", &s, &len))) goto fail;
        if ((st = dup_name(&c, "metadata key", s, len, SQ_GGUF_MAX_KEY, &key))) goto fail;
        kv->key = key;
        f->n_kv = (int64_t)i + 1;
        if ((st = get_u32(&c, "metadata value type", &type))) goto fail;
        if ((st = read_value(&c, kv, type))) goto fail;
    }
    if (n_kv > 1) {
        sorted = malloc((size_t)n_kv * sizeof *sorted);
        if (!sorted) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
            goto fail;
        }
        for (uint64_t i = 0; i < n_kv; i++) sorted[i] = &f->kvs[i];
        qsort(sorted, (size_t)n_kv, sizeof *sorted, cmp_kv_key);
        for (uint64_t i = 1; i < n_kv; i++)
            if (strcmp(((const sq_gguf_kv *)sorted[i - 1])->key, ((const sq_gguf_kv *)sorted[i])->key) == 0) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: metadata key '%.200s' appears more than once", path,
                               ((const sq_gguf_kv *)sorted[i])->key);
                goto fail;
            }
        free(sorted);
        sorted = NULL;
    }
    if ((st = read_alignment(&c, f))) goto fail;

    /* tensor infos */
    f->tensors = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *f->tensors);
    if (!f->tensors) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        f->n_tensors = (int64_t)i + 1;
        if ((st = read_tensor_info(&c, f, &f->tensors[i]))) goto fail;
    }
    if (n_tensors > 1) {
        sorted = malloc((size_t)n_tensors * sizeof *sorted);
        if (!sorted) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
            goto fail;
        }
        for (uint64_t i = 0; i < n_tensors; i++) sorted[i] = &f->tensors[i];
        qsort(sorted, (size_t)n_tensors, sizeof *sorted, cmp_tensor_name);
        for (uint64_t i = 1; i < n_tensors; i++)
            if (strcmp(((const sq_gguf_tensor *)sorted[i - 1])->name, ((const sq_gguf_tensor *)sorted[i])->name) == 0) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' appears more than once", path,
                               ((const sq_gguf_tensor *)sorted[i])->name);
                goto fail;
            }
        free(sorted);
        sorted = NULL;
    }
    if ((st = place_tensors(&c, f))) goto fail;
    *out = f;
    return SQ_OK;
fail:
    free(sorted);
    sq_gguf_close(f);
    return st;
}

const char *sq_gguf_path(const sq_gguf *f) { return f->path; }
uint32_t sq_gguf_version(const sq_gguf *f) { return f->version; }
uint32_t sq_gguf_alignment(const sq_gguf *f) { return f->alignment; }
uint64_t sq_gguf_data_offset(const sq_gguf *f) { return f->data_offset; }
uint64_t sq_gguf_file_size(const sq_gguf *f) { return f->map.size; }
int64_t sq_gguf_n_kv(const sq_gguf *f) { return f ? f->n_kv : 0; }
int64_t sq_gguf_n_tensors(const sq_gguf *f) { return f ? f->n_tensors : 0; }

const sq_gguf_kv *sq_gguf_kv_at(const sq_gguf *f, int64_t i) {
    return f && i >= 0 && i < f->n_kv ? &f->kvs[i] : NULL;
}

const sq_gguf_kv *sq_gguf_find_kv(const sq_gguf *f, const char *key) {
    if (!f || !key) return NULL;
    for (int64_t i = 0; i < f->n_kv; i++)
        if (strcmp(f->kvs[i].key, key) == 0) return &f->kvs[i];
    return NULL;
}

const sq_gguf_tensor *sq_gguf_tensor_at(const sq_gguf *f, int64_t i) {
    return f && i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const sq_gguf_tensor *sq_gguf_find_tensor(const sq_gguf *f, const char *name) {
    if (!f || !name) return NULL;
    for (int64_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

bool sq_gguf_kv_int(const sq_gguf_kv *kv, uint64_t i, int64_t *out) {
    if (!kv || i >= kv->n) return false;
    uint64_t es = vtype_size(kv->elem_type);
    const uint8_t *p = kv->data + i * es;
    switch (kv->elem_type) {
    case SQ_GGUF_UINT8: case SQ_GGUF_BOOL: *out = p[0]; return true;
    case SQ_GGUF_INT8: *out = (int8_t)p[0]; return true;
    case SQ_GGUF_UINT16: *out = sq_rd_le16(p); return true;
    case SQ_GGUF_INT16: *out = (int16_t)sq_rd_le16(p); return true;
    case SQ_GGUF_UINT32: *out = sq_rd_le32(p); return true;
    case SQ_GGUF_INT32: *out = (int32_t)sq_rd_le32(p); return true;
    case SQ_GGUF_INT64: *out = (int64_t)rd64(p); return true;
    case SQ_GGUF_UINT64:
        if (rd64(p) > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)rd64(p);
        return true;
    default: return false;
    }
}

bool sq_gguf_kv_float(const sq_gguf_kv *kv, uint64_t i, double *out) {
    if (!kv || i >= kv->n) return false;
    if (kv->elem_type == SQ_GGUF_FLOAT32) {
        uint32_t u = sq_rd_le32(kv->data + i * 4);
        float v;
        memcpy(&v, &u, 4);
        *out = v;
        return true;
    }
    if (kv->elem_type == SQ_GGUF_FLOAT64) {
        uint64_t u = rd64(kv->data + i * 8);
        memcpy(out, &u, 8);
        return true;
    }
    int64_t v;
    if (kv->elem_type == SQ_GGUF_BOOL || !sq_gguf_kv_int(kv, i, &v)) return false;
    *out = (double)v;
    return true;
}

bool sq_gguf_kv_str(const sq_gguf_kv *kv, uint64_t i, const char **s, uint64_t *len) {
    if (!kv || i >= kv->n || kv->elem_type != SQ_GGUF_STRING) return false;
    const uint8_t *p = kv->data + (kv->str_off ? kv->str_off[i] : 0);
    *len = rd64(p);
    *s = (const char *)p + 8;
    return true;
}

bool sq_gguf_kv_str_eq(const sq_gguf_kv *kv, const char *s) {
    const char *v;
    uint64_t n;
    if (!kv || kv->type != SQ_GGUF_STRING || !sq_gguf_kv_str(kv, 0, &v, &n)) return false;
    return n == strlen(s) && memcmp(v, s, (size_t)n) == 0;
}

/* ===== Writer ===== */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} bytebuf;

static void bb_put(bytebuf *b, const void *d, size_t n) {
    if (b->oom || n == 0) return;
    if (n > SIZE_MAX / 2 - b->n) {
        b->oom = true;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void bb_u32(bytebuf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bb_put(b, x, 4);
}

static void bb_u64(bytebuf *b, uint64_t v) {
    bb_u32(b, (uint32_t)v);
    bb_u32(b, (uint32_t)(v >> 32));
}

static void bb_str(bytebuf *b, const char *s) {
    size_t n = strlen(s);
    bb_u64(b, n);
    bb_put(b, s, n);
}

typedef struct {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[SQ_GGUF_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
} wtensor;

struct sq_gguf_writer {
    char *path;
    bytebuf kv;
    uint64_t n_kv;
    char **keys;
    size_t n_keys, cap_keys;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    bool finished;
};

sq_status sq_gguf_writer_open(sq_gguf_writer **w, const char *path) {
    *w = calloc(1, sizeof **w);
    if (!*w || !((*w)->path = sq_strdup(path))) {
        free(*w);
        *w = NULL;
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    }
    return SQ_OK;
}

void sq_gguf_writer_close(sq_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_keys; i++) free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv.p);
    free(w->path);
    free(w);
}

/* Checks and records a new key, then writes it and the value type. */
static sq_status begin_kv(sq_gguf_writer *w, const char *key, sq_gguf_vtype type) {
    if (w->finished) return sq_errorf(SQ_ERR_ARG, "%s: the GGUF writer has already written the file", w->path);
    size_t len = key ? strlen(key) : 0;
    if (len == 0 || len > SQ_GGUF_MAX_KEY)
        return sq_errorf(SQ_ERR_ARG, "%s: metadata key must have 1 to %d bytes", w->path, SQ_GGUF_MAX_KEY);
    if (strcmp(key, "general.alignment") == 0)
        return sq_errorf(SQ_ERR_ARG, "%s: general.alignment cannot be set (the writer always aligns to %u)", w->path,
                         SQ_GGUF_DEFAULT_ALIGNMENT);
    for (size_t i = 0; i < w->n_keys; i++)
        if (strcmp(w->keys[i], key) == 0)
            return sq_errorf(SQ_ERR_ARG, "%s: metadata key '%.200s' added twice", w->path, key);
    if (w->n_keys == w->cap_keys) {
        size_t cap = w->cap_keys ? 2 * w->cap_keys : 64;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (!k) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", w->path);
        w->keys = k;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_keys] = sq_strdup(key))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", w->path);
    w->n_keys++;
    w->n_kv++;
    bb_str(&w->kv, key);
    bb_u32(&w->kv, type);
    return SQ_OK;
}

static sq_status end_kv(sq_gguf_writer *w) {
    return w->kv.oom ? sq_errorf(SQ_ERR_OOM, "%s: out of memory building the metadata", w->path) : SQ_OK;
}

sq_status sq_gguf_writer_add_u32(sq_gguf_writer *w, const char *key, uint32_t v) {
    sq_status st = begin_kv(w, key, SQ_GGUF_UINT32);
    if (st) return st;
    bb_u32(&w->kv, v);
    return end_kv(w);
}

sq_status sq_gguf_writer_add_f32(sq_gguf_writer *w, const char *key, float v) {
    sq_status st = begin_kv(w, key, SQ_GGUF_FLOAT32);
    if (st) return st;
    uint32_t u;
    memcpy(&u, &v, 4);
    bb_u32(&w->kv, u);
    return end_kv(w);
}

sq_status sq_gguf_writer_add_bool(sq_gguf_writer *w, const char *key, bool v) {
    sq_status st = begin_kv(w, key, SQ_GGUF_BOOL);
    if (st) return st;
    uint8_t b = v ? 1 : 0;
    bb_put(&w->kv, &b, 1);
    return end_kv(w);
}

sq_status sq_gguf_writer_add_str(sq_gguf_writer *w, const char *key, const char *v) {
    if (!v) return sq_errorf(SQ_ERR_ARG, "%s: metadata key '%.200s' has a NULL string", w->path, key ? key : "");
    sq_status st = begin_kv(w, key, SQ_GGUF_STRING);
    if (st) return st;
    bb_str(&w->kv, v);
    return end_kv(w);
}

sq_status sq_gguf_writer_add_arr_str(sq_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (!v[i]) return sq_errorf(SQ_ERR_ARG, "%s: metadata key '%.200s': element %llu is NULL", w->path,
                                    key ? key : "", (unsigned long long)i);
    sq_status st = begin_kv(w, key, SQ_GGUF_ARRAY);
    if (st) return st;
    bb_u32(&w->kv, SQ_GGUF_STRING);
    bb_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) bb_str(&w->kv, v[i]);
    return end_kv(w);
}

sq_status sq_gguf_writer_add_arr_f32(sq_gguf_writer *w, const char *key, const float *v, uint64_t n) {
    sq_status st = begin_kv(w, key, SQ_GGUF_ARRAY);
    if (st) return st;
    bb_u32(&w->kv, SQ_GGUF_FLOAT32);
    bb_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        bb_u32(&w->kv, u);
    }
    return end_kv(w);
}

sq_status sq_gguf_writer_add_arr_i32(sq_gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    sq_status st = begin_kv(w, key, SQ_GGUF_ARRAY);
    if (st) return st;
    bb_u32(&w->kv, SQ_GGUF_INT32);
    bb_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) bb_u32(&w->kv, (uint32_t)v[i]);
    return end_kv(w);
}

sq_status sq_gguf_writer_add_tensor(sq_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const uint64_t *ne, const void *data, uint64_t nbytes) {
    if (w->finished) return sq_errorf(SQ_ERR_ARG, "%s: the GGUF writer has already written the file", w->path);
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > SQ_GGUF_MAX_NAME)
        return sq_errorf(SQ_ERR_ARG, "%s: tensor name '%.80s' must have 1 to %d bytes", w->path, name ? name : "",
                         SQ_GGUF_MAX_NAME);
    const sq_ggml_type_info *ti = sq_ggml_type_info_get(type);
    if (!ti) return sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': unknown ggml type %u", w->path, name, type);
    if (n_dims < 1 || n_dims > SQ_GGUF_MAX_DIMS)
        return sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': %u dimensions", w->path, name, n_dims);
    uint64_t numel = 1, need = 0;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] > (uint64_t)INT64_MAX || !sq_mul_u64(numel, ne[d], &numel) || numel > (uint64_t)INT64_MAX)
            return sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': shape overflows", w->path, name);
    if (ne[0] % (uint64_t)ti->block != 0)
        return sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': ne[0] = %llu is not a multiple of the %s block size %d", w->path,
                         name, (unsigned long long)ne[0], ti->name, ti->block);
    if (!sq_mul_u64(numel / (uint64_t)ti->block, (uint64_t)ti->block_bytes, &need) || need != nbytes ||
        (nbytes && !data))
        return sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': %llu bytes given, the %s shape needs %llu", w->path, name,
                         (unsigned long long)nbytes, ti->name, (unsigned long long)need);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' added twice", w->path, name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", w->path);
        w->tensors = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = sq_strdup(name))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", w->path);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims; d++) t->ne[d] = ne[d];
    t->data = data;
    t->nbytes = nbytes;
    w->n_tensors++;
    return SQ_OK;
}

static uint64_t pad_to(uint64_t n, uint64_t a) { return (a - n % a) % a; }

sq_status sq_gguf_writer_finish(sq_gguf_writer *w) {
    static const uint8_t zeros[SQ_GGUF_DEFAULT_ALIGNMENT];
    const uint64_t A = SQ_GGUF_DEFAULT_ALIGNMENT;
    if (w->finished) return sq_errorf(SQ_ERR_ARG, "%s: the GGUF writer has already written the file", w->path);
    sq_status st = SQ_OK;
    bytebuf head = {0};
    sq_atomic_file af = {0};
    bool opened = false;
    bb_put(&head, SQ_GGUF_MAGIC, 4);
    bb_u32(&head, SQ_GGUF_VERSION);
    bb_u64(&head, w->n_tensors);
    bb_u64(&head, w->n_kv);
    bb_put(&head, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        bb_str(&head, t->name);
        bb_u32(&head, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_u64(&head, t->ne[d]);
        bb_u32(&head, t->type);
        bb_u64(&head, off);
        if (!sq_add_u64(off, t->nbytes + pad_to(t->nbytes, A), &off)) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor data exceeds 2^64 bytes", w->path);
            goto fail;
        }
    }
    bb_put(&head, zeros, (size_t)pad_to(head.n, A));
    if (head.oom) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory building the GGUF header", w->path);
        goto fail;
    }
    if ((st = sq_atomic_open(&af, w->path))) goto fail;
    opened = true;
    if ((st = sq_atomic_write(&af, head.p, head.n))) goto fail;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if (t->nbytes && (st = sq_atomic_write(&af, t->data, (size_t)t->nbytes))) goto fail;
        if ((st = sq_atomic_write(&af, zeros, (size_t)pad_to(t->nbytes, A)))) goto fail;
    }
    opened = false;
    if ((st = sq_atomic_commit(&af))) goto fail;
    w->finished = true;
fail:
    if (opened) sq_atomic_abort(&af);
    free(head.p);
    return st;
}
