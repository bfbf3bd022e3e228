/* safetensors.c - reader and writer of safetensors (huggingface/safetensors README and
 * src/tensor.rs; FORMATS.md 1): u64 LE header length, JSON header {name: {dtype, shape,
 * data_offsets}}, data buffer. The reader treats the file as hostile: header length capped
 * at 100 MB, cJSON parse plus an explicit duplicate-key check, overflow-checked sizes, and
 * tensors that must tile the buffer exactly. Tensors point into the read-only mapping
 * (maybe unaligned). Only F32/F16/BF16 are handed out; other valid dtypes are
 * SQ_ERR_UNSUPPORTED. A scalar (shape []) has n_dims = 0. The writer lays tensors out in
 * the given order after a space-padded, 8-aligned header, via temp file + rename.
 */
#include "safetensors.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "util.h"

#define HEADER_MAX 100000000ull       /* the reference reader's cap */
#define EXACT_INT_MAX 9007199254740992.0 /* 2^53: larger JSON numbers are not exact doubles */

struct sq_safetensors {
    char *path;
    sq_mapping map;
    sq_tensor *tensors; /* [n], in data-offset order, names owned, data borrowed */
    int32_t n;
    char **meta;        /* [2 * n_meta] key, value (owned) */
    int32_t n_meta;
};

/* ===== Dtypes ===== */

typedef struct {
    const char *name;
    int bits;     /* bits per element */
    int sq;       /* sq_type, or -1 if squish does not read it */
} dtype_info;

static const dtype_info dtypes[] = {
    {"F32", 32, SQ_TYPE_F32},    {"F16", 16, SQ_TYPE_F16},        {"BF16", 16, SQ_TYPE_BF16},
    {"BOOL", 8, -1},             {"U8", 8, -1},                   {"I8", 8, -1},
    {"F8_E5M2", 8, -1},          {"F8_E4M3", 8, -1},              {"F8_E8M0", 8, -1},
    {"F8_E4M3FNUZ", 8, -1},      {"F8_E5M2FNUZ", 8, -1},          {"I16", 16, -1},
    {"U16", 16, -1},             {"I32", 32, -1},                 {"U32", 32, -1},
    {"I64", 64, -1},             {"U64", 64, -1},                 {"F64", 64, -1},
    {"C64", 64, -1},             {"F4", 4, -1},                   {"F6_E2M3", 6, -1},
    {"F6_E3M2", 6, -1},
};

static const dtype_info *dtype_find(const char *s) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, s) == 0) return &dtypes[i];
    return NULL;
}

static const char *dtype_of_sq(sq_type t) {
    switch (t) {
    case SQ_TYPE_F32: return "F32";
    case SQ_TYPE_F16: return "F16";
    case SQ_TYPE_BF16: return "BF16";
    default: return NULL;
    }
}

/* ===== JSON helpers ===== */

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *sq_json_duplicate_key(const cJSON *obj, bool *oom) {
    if (!cJSON_IsObject(obj) && !cJSON_IsArray(obj)) return NULL;
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (cJSON_IsObject(obj) && n > 1) {
        const char **keys = malloc(n * sizeof *keys);
        if (!keys) {
            *oom = true;
            return NULL;
        }
        size_t k = 0;
        for (const cJSON *c = obj->child; c; c = c->next) keys[k++] = c->string ? c->string : "";
        qsort(keys, n, sizeof *keys, cmp_str_ptr);
        const char *dup = NULL;
        for (size_t i = 1; i < n && !dup; i++)
            if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
        free(keys);
        if (dup) return dup;
    }
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *d = sq_json_duplicate_key(c, oom);
        if (d || *oom) return d;
    }
    return NULL;
}

/* A JSON number that is a non-negative integer exactly representable as a double. */
static bool json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > EXACT_INT_MAX || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

/* ===== Reader ===== */

typedef struct {
    const char *name;      /* borrowed from the cJSON tree */
    const dtype_info *dt;
    int rank;
    int64_t shape[SQ_MAX_DIMS];
    uint64_t begin, end;
    int order;             /* position in the header, for stable sorting */
} entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->order - y->order;
}

void sq_safetensors_close(sq_safetensors *f) {
    if (!f) return;
    for (int32_t i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int32_t i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->meta);
    sq_unmap_file(&f->map);
    free(f->path);
    free(f);
}

/* Parses one tensor entry {dtype, shape, data_offsets}; checks sizes against buf_size. */
static sq_status parse_entry(const char *path, const cJSON *item, uint64_t buf_size, entry *e) {
    const char *name = item->string;
#define BAD(...) return sq_errorf(SQ_ERR_FORMAT, __VA_ARGS__)
    if (!name[0]) BAD("%s: a tensor has an empty name", path);
    if (strlen(name) >= SQ_MAX_NAME) BAD("%s: tensor '%.64s...': name is longer than %d bytes", path, name, SQ_MAX_NAME - 1);
    if (!cJSON_IsObject(item)) BAD("%s: tensor '%s': entry is not a JSON object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype)) BAD("%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (!cJSON_IsArray(shape)) BAD("%s: tensor '%s': missing or non-array \"shape\"", path, name);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        BAD("%s: tensor '%s': \"data_offsets\" must be an array [BEGIN, END]", path, name);
    e->name = name;
    e->dt = dtype_find(dtype->valuestring);
    if (!e->dt) BAD("%s: tensor '%s': unknown dtype '%.32s'", path, name, dtype->valuestring);
    /* numel, overflow-checked; ranks above SQ_MAX_DIMS are still measured (and refused later) */
    uint64_t numel = 1;
    int rank = 0;
    for (const cJSON *d = shape->child; d; d = d->next, rank++) {
        uint64_t v;
        if (!json_u64(d, &v)) BAD("%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, rank);
        if (rank < SQ_MAX_DIMS) e->shape[rank] = (int64_t)v;
        if (!sq_mul_u64(numel, v, &numel) || numel > (uint64_t)INT64_MAX)
            BAD("%s: tensor '%s': shape overflows 64 bits", path, name);
    }
    e->rank = rank;
    uint64_t bits, nbytes;
    if (!sq_mul_u64(numel, (uint64_t)e->dt->bits, &bits))
        BAD("%s: tensor '%s': size of shape overflows 64 bits", path, name);
    if (bits % 8) BAD("%s: tensor '%s': %s data does not end on a byte boundary", path, name, e->dt->name);
    nbytes = bits / 8;
    if (!json_u64(cJSON_GetArrayItem(offs, 0), &e->begin) || !json_u64(cJSON_GetArrayItem(offs, 1), &e->end))
        BAD("%s: tensor '%s': data_offsets are not non-negative integers", path, name);
    if (e->begin > e->end)
        BAD("%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", path, name,
            (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > buf_size)
        BAD("%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the %llu-byte data buffer", path, name,
            (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)buf_size);
    if (e->end - e->begin != nbytes)
        BAD("%s: tensor '%s': data_offsets span %llu bytes but shape and dtype %s need %llu", path, name,
            (unsigned long long)(e->end - e->begin), e->dt->name, (unsigned long long)nbytes);
#undef BAD
    return SQ_OK;
}

sq_status sq_safetensors_open(sq_safetensors **out, const char *path) {
    sq_status st = SQ_OK;
    cJSON *root = NULL;
    entry *ents = NULL;
    *out = NULL;
    sq_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = sq_strdup(path))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    if ((st = sq_map_file(path, &f->map)) != SQ_OK) goto fail;
    const uint8_t *base = f->map.data;
    uint64_t size = f->map.size;
    if (size < 8) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: file is %llu bytes, too short for a safetensors header length", path,
                       (unsigned long long)size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)base[i] << (8 * i);
    if (hlen > HEADER_MAX) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: header length %llu exceeds the %llu-byte limit (not a safetensors file?)",
                       path, (unsigned long long)hlen, HEADER_MAX);
        goto fail;
    }
    if (hlen > size - 8) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: header length %llu runs past the end of the %llu-byte file", path,
                       (unsigned long long)hlen, (unsigned long long)size);
        goto fail;
    }
    const char *hdr = (const char *)base + 8;
    if (hlen < 2 || hdr[0] != '{') {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: header does not start with '{'", path);
        goto fail;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        long pos = end ? (long)(end - hdr) : -1;
        st = sq_errorf(SQ_ERR_FORMAT, "%s: header is not valid JSON (error near byte %ld of %llu)", path, pos,
                       (unsigned long long)hlen);
        goto fail;
    }
    for (const char *p = end; p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: unexpected bytes after the JSON header (at byte %ld)", path,
                           (long)(p - hdr));
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto fail;
    }
    bool oom = false;
    const char *dup = sq_json_duplicate_key(root, &oom);
    if (oom) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory checking the header", path);
        goto fail;
    }
    if (dup) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: key '%.200s' appears more than once in the header", path, dup);
        goto fail;
    }

    uint64_t buf_size = size - 8 - hlen;
    int n_items = cJSON_GetArraySize(root);
    ents = calloc((size_t)(n_items ? n_items : 1), sizeof *ents);
    if (!ents) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    int n = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(item)) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: \"__metadata__\" is not an object", path);
                goto fail;
            }
            int nm = cJSON_GetArraySize(item);
            f->meta = calloc((size_t)(2 * nm + 1), sizeof *f->meta);
            if (!f->meta) {
                st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
                goto fail;
            }
            for (const cJSON *m = item->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    st = sq_errorf(SQ_ERR_FORMAT, "%s: __metadata__ '%.200s' is not a string", path, m->string);
                    goto fail;
                }
                f->meta[2 * f->n_meta] = sq_strdup(m->string);
                f->meta[2 * f->n_meta + 1] = sq_strdup(m->valuestring);
                f->n_meta++;
                if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1]) {
                    st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
                    goto fail;
                }
            }
            continue;
        }
        if ((st = parse_entry(path, item, buf_size, &ents[n])) != SQ_OK) goto fail;
        ents[n].order = n;
        n++;
    }

    /* The intervals must tile [0, buf_size) exactly. */
    qsort(ents, (size_t)n, sizeof *ents, cmp_entry);
    uint64_t cursor = 0;
    for (int i = 0; i < n; i++) {
        if (ents[i].begin > cursor) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s': data starts at %llu, leaving a hole of %llu bytes after %llu",
                           path, ents[i].name, (unsigned long long)ents[i].begin,
                           (unsigned long long)(ents[i].begin - cursor), (unsigned long long)cursor);
            goto fail;
        }
        if (ents[i].begin < cursor) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s': data [%llu, %llu) overlaps the tensor before it (ending at %llu)",
                           path, ents[i].name, (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end,
                           (unsigned long long)cursor);
            goto fail;
        }
        cursor = ents[i].end;
    }
    if (cursor != buf_size) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %llu bytes at the end of the data buffer belong to no tensor", path,
                       (unsigned long long)(buf_size - cursor));
        goto fail;
    }

    /* Structure is sound: now refuse what squish cannot represent, in header order. */
    const entry *bad = NULL;
    for (int i = 0; i < n; i++)
        if ((ents[i].dt->sq < 0 || ents[i].rank > SQ_MAX_DIMS) && (!bad || ents[i].order < bad->order)) bad = &ents[i];
    if (bad && bad->dt->sq < 0) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported (squish reads F32, F16 and BF16)",
                       path, bad->name, bad->dt->name);
        goto fail;
    }
    if (bad) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions (squish handles at most %d)", path,
                       bad->name, bad->rank, SQ_MAX_DIMS);
        goto fail;
    }

    f->tensors = calloc((size_t)(n ? n : 1), sizeof *f->tensors);
    if (!f->tensors) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    const uint8_t *data = base + 8 + hlen;
    for (int i = 0; i < n; i++) {
        sq_tensor *t = &f->tensors[i];
        if (!(t->name = sq_strdup(ents[i].name))) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
            goto fail;
        }
        f->n = i + 1;
        t->type = (sq_type)ents[i].dt->sq;
        t->n_dims = ents[i].rank;
        for (int d = 0; d < ents[i].rank; d++) t->shape[d] = ents[i].shape[d];
        t->data = (void *)(data + ents[i].begin);
        t->nbytes = (size_t)(ents[i].end - ents[i].begin);
        t->owns_data = false;
    }
    cJSON_Delete(root);
    free(ents);
    *out = f;
    return SQ_OK;
fail:
    cJSON_Delete(root);
    free(ents);
    sq_safetensors_close(f);
    return st;
}

int32_t sq_safetensors_count(const sq_safetensors *f) { return f ? f->n : 0; }

const sq_tensor *sq_safetensors_get(const sq_safetensors *f, int32_t i) {
    if (!f || i < 0 || i >= f->n) return NULL;
    return &f->tensors[i];
}

const sq_tensor *sq_safetensors_find(const sq_safetensors *f, const char *name) {
    if (!f) return NULL;
    for (int32_t i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *sq_safetensors_meta(const sq_safetensors *f, const char *key) {
    if (!f) return NULL;
    for (int32_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

/* ===== Writer ===== */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void sb_json_str(strbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static size_t tensor_bytes(const sq_tensor *t) {
    if (t->n_dims == 0) return sq_type_row_bytes(t->type, 1);
    return sq_tensor_expected_bytes(t->type, t->n_dims, t->shape);
}

sq_status sq_safetensors_write(const char *path, const sq_tensor *tensors, int32_t n,
                               const char *const *metadata) {
    sq_status st = SQ_OK;
    strbuf b = {0};
    sq_atomic_file af = {0};
    bool opened = false;
    if (n < 0 || (n > 0 && !tensors)) {
        st = sq_errorf(SQ_ERR_ARG, "%s: bad tensor list", path);
        goto fail;
    }
    for (int32_t i = 0; i < n; i++) {
        const sq_tensor *t = &tensors[i];
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor %d has no usable name", path, i);
            goto fail;
        }
        if (!dtype_of_sq(t->type)) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': type %s cannot be written to safetensors", path, t->name,
                           sq_type_name(t->type));
            goto fail;
        }
        if (t->n_dims < 0 || t->n_dims > SQ_MAX_DIMS) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': bad rank %d", path, t->name, t->n_dims);
            goto fail;
        }
        size_t nb = tensor_bytes(t);
        bool empty = false;
        for (int d = 0; d < t->n_dims; d++) empty |= t->shape[d] == 0;
        if ((!nb && !empty) || nb != t->nbytes || (nb && !t->data)) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s': holds %zu bytes, its shape needs %zu", path, t->name,
                           t->nbytes, nb);
            goto fail;
        }
        for (int32_t j = 0; j < i; j++) {
            if (strcmp(tensors[j].name, t->name) == 0) {
                st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' is listed twice", path, t->name);
                goto fail;
            }
        }
    }

    sb_str(&b, "{");
    bool first = true;
    if (metadata && metadata[0]) {
        sb_str(&b, "\"__metadata__\":{");
        for (int i = 0; metadata[i]; i += 2) {
            if (!metadata[i + 1]) {
                st = sq_errorf(SQ_ERR_ARG, "%s: metadata key '%s' has no value", path, metadata[i]);
                goto fail;
            }
            if (i) sb_str(&b, ",");
            sb_json_str(&b, metadata[i]);
            sb_str(&b, ":");
            sb_json_str(&b, metadata[i + 1]);
        }
        sb_str(&b, "}");
        first = false;
    }
    uint64_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        const sq_tensor *t = &tensors[i];
        char num[64];
        if (!first) sb_str(&b, ",");
        first = false;
        sb_json_str(&b, t->name);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, dtype_of_sq(t->type));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < t->n_dims; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            sb_str(&b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + t->nbytes));
        sb_str(&b, num);
        off += t->nbytes;
    }
    sb_str(&b, "}");
    while ((8 + b.len) % 8) sb_str(&b, " ");
    if (b.oom) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory building the header", path);
        goto fail;
    }

    if ((st = sq_atomic_open(&af, path)) != SQ_OK) goto fail;
    opened = true;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    if ((st = sq_atomic_write(&af, len8, 8)) != SQ_OK) goto fail;
    if ((st = sq_atomic_write(&af, b.p, b.len)) != SQ_OK) goto fail;
    for (int32_t i = 0; i < n; i++)
        if ((st = sq_atomic_write(&af, tensors[i].data, tensors[i].nbytes)) != SQ_OK) goto fail;
    opened = false;
    st = sq_atomic_commit(&af);
fail:
    if (opened) sq_atomic_abort(&af);
    free(b.p);
    return st;
}
