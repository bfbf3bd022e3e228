/* sqz.c - reader and writer of the runnable file, versions 1 and 2 (docs/sqz-format.md;
 * version 2 adds each tensor's quantization group and flags to the index).
 *
 * The reader maps the file, checks the header, every section boundary, every metadata
 * length and every tensor's offset/size against the file size with overflow-safe
 * arithmetic, verifies the XXH64 checksum (optional), and decodes the config and vocab.
 * Tensor data is never copied: sq_tensor.data points into the mapping.
 * The writer lays out header, metadata, index and 64-byte-aligned data, hashing as it
 * writes, and commits atomically (temp file, fsync, rename).
 */
#include "sqz.h"

#include <stdlib.h>
#include <string.h>

#include "fileio.h"

/* ===== Little-endian helpers ===== */

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint16_t rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static void wr_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

enum { KIND_I64 = 1, KIND_F64 = 2, KIND_STR = 3, KIND_I32S = 4, KIND_F32S = 5, KIND_STRS = 6 };

/* ===== Reader ===== */

typedef struct {
    char *key;
    int kind;
    const uint8_t *val; /* points at the value in the mapping */
    uint64_t n;         /* string length or array count */
    char *str;          /* KIND_STR: NUL-terminated copy */
} meta_entry;

struct sq_sqz {
    char *path;
    uint32_t version;
    sq_mapping map;
    uint64_t checksum;
    sq_config cfg;
    sq_vocab vocab;
    meta_entry *meta;
    int32_t n_meta;
    sq_tensor *tensors;
    int32_t n_tensors;
};

/* A bounds-checked cursor over [p, p + n). */
typedef struct {
    const uint8_t *p;
    uint64_t n, off;
    const char *path;
    const char *section;
    sq_status st;
} cursor;

static bool cur_need(cursor *c, uint64_t k) {
    if (c->st != SQ_OK) return false;
    if (k > c->n - c->off) {
        c->st = sq_errorf(SQ_ERR_FORMAT, "%s: %s is truncated (need %llu bytes at offset %llu of %llu)", c->path,
                          c->section, (unsigned long long)k, (unsigned long long)c->off, (unsigned long long)c->n);
        return false;
    }
    return true;
}
static uint64_t cur_u64(cursor *c) {
    if (!cur_need(c, 8)) return 0;
    uint64_t v = rd_u64(c->p + c->off);
    c->off += 8;
    return v;
}
static uint32_t cur_u32(cursor *c) {
    if (!cur_need(c, 4)) return 0;
    uint32_t v = rd_u32(c->p + c->off);
    c->off += 4;
    return v;
}
static uint16_t cur_u16(cursor *c) {
    if (!cur_need(c, 2)) return 0;
    uint16_t v = rd_u16(c->p + c->off);
    c->off += 2;
    return v;
}
static uint8_t cur_u8(cursor *c) {
    if (!cur_need(c, 1)) return 0;
    return c->p[c->off++];
}
static const uint8_t *cur_bytes(cursor *c, uint64_t k) {
    if (!cur_need(c, k)) return NULL;
    const uint8_t *r = c->p + c->off;
    c->off += k;
    return r;
}
/* Skips an array of `count` elements of `elt` bytes, checking for overflow. */
static const uint8_t *cur_array(cursor *c, uint64_t count, uint64_t elt) {
    uint64_t bytes;
    if (__builtin_mul_overflow(count, elt, &bytes)) {
        if (c->st == SQ_OK)
            c->st = sq_errorf(SQ_ERR_FORMAT, "%s: %s has an impossible array length %llu", c->path, c->section,
                              (unsigned long long)count);
        return NULL;
    }
    return cur_bytes(c, bytes);
}

static char *dup_bytes(const uint8_t *p, uint64_t n) {
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static const meta_entry *meta_get(const sq_sqz *f, const char *key) {
    for (int32_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return &f->meta[i];
    return NULL;
}

static sq_status parse_meta(sq_sqz *f, const uint8_t *p, uint64_t n) {
    cursor c = {.p = p, .n = n, .path = f->path, .section = "metadata section"};
    uint32_t count = cur_u32(&c);
    if (c.st) return c.st;
    if (count > n / 4) return sq_errorf(SQ_ERR_FORMAT, "%s: metadata claims %u entries in %llu bytes", f->path, count,
                                        (unsigned long long)n);
    f->meta = calloc(count ? count : 1, sizeof *f->meta);
    if (!f->meta) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
    for (uint32_t i = 0; i < count; i++) {
        meta_entry *e = &f->meta[i];
        uint16_t klen = cur_u16(&c);
        const uint8_t *kp = cur_bytes(&c, klen);
        uint8_t kind = cur_u8(&c);
        if (c.st) return c.st;
        if (klen == 0 || memchr(kp, 0, klen))
            return sq_errorf(SQ_ERR_FORMAT, "%s: metadata entry %u has an empty or invalid key", f->path, i);
        if (!(e->key = dup_bytes(kp, klen))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
        f->n_meta = (int32_t)i + 1;
        if (meta_get(f, e->key) != e)
            return sq_errorf(SQ_ERR_FORMAT, "%s: metadata key '%s' appears twice", f->path, e->key);
        e->kind = kind;
        switch (kind) {
        case KIND_I64:
        case KIND_F64:
            e->val = cur_bytes(&c, 8);
            break;
        case KIND_STR:
            e->n = cur_u32(&c);
            e->val = cur_bytes(&c, e->n);
            if (c.st) return c.st;
            if (memchr(e->val, 0, e->n))
                return sq_errorf(SQ_ERR_FORMAT, "%s: metadata '%s' holds a NUL byte", f->path, e->key);
            if (!(e->str = dup_bytes(e->val, e->n))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
            break;
        case KIND_I32S:
        case KIND_F32S:
            e->n = cur_u64(&c);
            e->val = cur_array(&c, e->n, 4);
            break;
        case KIND_STRS:
            e->n = cur_u64(&c);
            e->val = c.p + c.off;
            if (e->n > (c.n - c.off) / 4)
                return sq_errorf(SQ_ERR_FORMAT, "%s: metadata '%s' claims %llu strings", f->path, e->key,
                                 (unsigned long long)e->n);
            for (uint64_t k = 0; k < e->n && c.st == SQ_OK; k++) {
                uint32_t len = cur_u32(&c);
                cur_bytes(&c, len);
            }
            break;
        default:
            return sq_errorf(SQ_ERR_FORMAT, "%s: metadata '%s' has unknown kind %u", f->path, e->key, kind);
        }
        if (c.st) return c.st;
    }
    if (c.off != c.n)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %llu unused bytes at the end of the metadata section", f->path,
                         (unsigned long long)(c.n - c.off));
    return SQ_OK;
}

static sq_status meta_need(const sq_sqz *f, const char *key, int kind, const meta_entry **out) {
    const meta_entry *e = meta_get(f, key);
    if (!e) return sq_errorf(SQ_ERR_FORMAT, "%s: required metadata '%s' is missing", f->path, key);
    if (e->kind != kind) return sq_errorf(SQ_ERR_FORMAT, "%s: metadata '%s' has the wrong kind", f->path, key);
    *out = e;
    return SQ_OK;
}

static sq_status meta_i64(const sq_sqz *f, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    const meta_entry *e;
    sq_status st = meta_need(f, key, KIND_I64, &e);
    if (st) return st;
    int64_t v = (int64_t)rd_u64(e->val);
    if (v < lo || v > hi)
        return sq_errorf(SQ_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range", f->path, key, (long long)v);
    *out = v;
    return SQ_OK;
}

static sq_status meta_f64(const sq_sqz *f, const char *key, double *out) {
    const meta_entry *e;
    sq_status st = meta_need(f, key, KIND_F64, &e);
    if (st) return st;
    uint64_t u = rd_u64(e->val);
    memcpy(out, &u, 8);
    return SQ_OK;
}

static sq_status meta_str(const sq_sqz *f, const char *key, const char **out) {
    const meta_entry *e;
    sq_status st = meta_need(f, key, KIND_STR, &e);
    if (st) return st;
    *out = e->str;
    return SQ_OK;
}

static sq_status decode_config(sq_sqz *f) {
    sq_config *c = &f->cfg;
    sq_status st;
    const char *s;
    int64_t v;
    double d;
    memset(c, 0, sizeof *c);
    if ((st = meta_str(f, "config.arch", &s))) return st;
    if (strlen(s) >= sizeof c->arch) return sq_errorf(SQ_ERR_FORMAT, "%s: architecture name too long", f->path);
    strcpy(c->arch, s);
#define I32(field)                                                                   \
    if ((st = meta_i64(f, "config." #field, 0, INT32_MAX, &v))) return st;           \
    c->field = (int32_t)v;
    I32(dim) I32(hidden_dim) I32(n_layers) I32(n_heads) I32(n_kv_heads) I32(head_dim) I32(vocab_size)
    I32(max_seq_len) I32(rope_orig_ctx)
#undef I32
#define F32(field)                                                                   \
    if ((st = meta_f64(f, "config." #field, &d))) return st;                         \
    c->field = (float)d;
    F32(norm_eps) F32(rope_theta) F32(rope_factor) F32(rope_low_freq_factor) F32(rope_high_freq_factor)
#undef F32
#define BOOL(field)                                                                  \
    if ((st = meta_i64(f, "config." #field, 0, 1, &v))) return st;                   \
    c->field = v != 0;
    BOOL(tied_embeddings) BOOL(attn_qkv_bias) BOOL(attn_o_bias) BOOL(mlp_bias)
#undef BOOL
    if ((st = meta_str(f, "config.rope_layout", &s))) return st;
    if (strcmp(s, "half") == 0) c->rope_layout = SQ_ROPE_HALF;
    else if (strcmp(s, "interleaved") == 0) c->rope_layout = SQ_ROPE_INTERLEAVED;
    else return sq_errorf(SQ_ERR_FORMAT, "%s: unknown rope layout '%s'", f->path, s);
    if ((st = meta_str(f, "config.rope_scaling", &s))) return st;
    if (strcmp(s, "none") == 0) c->rope_scaling = SQ_ROPE_SCALING_NONE;
    else if (strcmp(s, "linear") == 0) c->rope_scaling = SQ_ROPE_SCALING_LINEAR;
    else if (strcmp(s, "llama3") == 0) c->rope_scaling = SQ_ROPE_SCALING_LLAMA3;
    else return sq_errorf(SQ_ERR_FORMAT, "%s: unknown rope scaling '%s'", f->path, s);
    return sq_config_validate(c, f->path);
}

/* Decodes a string array entry into malloc'ed strings. */
static sq_status decode_strs(const sq_sqz *f, const meta_entry *e, char ***out, int32_t *n_out) {
    if (e->n > INT32_MAX) return sq_errorf(SQ_ERR_FORMAT, "%s: '%s' is too long", f->path, e->key);
    char **v = calloc(e->n ? e->n : 1, sizeof *v);
    if (!v) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
    *out = v;
    *n_out = (int32_t)e->n;
    const uint8_t *p = e->val;
    for (uint64_t i = 0; i < e->n; i++) { /* bounds were checked by parse_meta */
        uint32_t len = rd_u32(p);
        if (memchr(p + 4, 0, len)) return sq_errorf(SQ_ERR_FORMAT, "%s: '%s'[%llu] holds a NUL byte", f->path,
                                                    e->key, (unsigned long long)i);
        if (!(v[i] = dup_bytes(p + 4, len))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
        p += 4 + len;
    }
    return SQ_OK;
}

static sq_status decode_vocab(sq_sqz *f) {
    sq_vocab *v = &f->vocab;
    sq_status st;
    const char *s;
    const meta_entry *e;
    int64_t x;
    memset(v, 0, sizeof *v);
    if ((st = meta_str(f, "tok.kind", &s))) return st;
    if (strcmp(s, "spm") == 0) v->kind = SQ_VOCAB_SPM;
    else if (strcmp(s, "bpe") == 0) v->kind = SQ_VOCAB_BPE;
    else return sq_errorf(SQ_ERR_FORMAT, "%s: unknown tokenizer kind '%s'", f->path, s);
    if ((st = meta_str(f, "tok.pre", &s))) return st;
    if ((st = sq_pretok_from_name(s, &v->pre))) {
        sq_error_prefix(f->path);
        return SQ_ERR_FORMAT;
    }
    if ((st = meta_need(f, "tok.tokens", KIND_STRS, &e))) return st;
    if ((st = decode_strs(f, e, &v->tokens, &v->n_tokens))) return st;
    if ((st = meta_need(f, "tok.scores", KIND_F32S, &e))) return st;
    if (e->n != (uint64_t)v->n_tokens)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %llu token scores for %d tokens", f->path, (unsigned long long)e->n,
                         v->n_tokens);
    v->scores = malloc((size_t)(e->n ? e->n : 1) * sizeof(float));
    if (!v->scores) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
    memcpy(v->scores, e->val, (size_t)e->n * 4);
    if ((st = meta_need(f, "tok.types", KIND_I32S, &e))) return st;
    if (e->n != (uint64_t)v->n_tokens)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %llu token types for %d tokens", f->path, (unsigned long long)e->n,
                         v->n_tokens);
    v->types = malloc((size_t)(e->n ? e->n : 1) * sizeof(int32_t));
    if (!v->types) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
    memcpy(v->types, e->val, (size_t)e->n * 4);
    if ((e = meta_get(f, "tok.merges"))) {
        if (e->kind != KIND_STRS) return sq_errorf(SQ_ERR_FORMAT, "%s: 'tok.merges' has the wrong kind", f->path);
        if ((st = decode_strs(f, e, &v->merges, &v->n_merges))) return st;
    }
#define ID(field)                                                                    \
    if ((st = meta_i64(f, "tok." #field, -1, INT32_MAX, &x))) return st;             \
    v->field = (int32_t)x;
    ID(bos_id) ID(eos_id) ID(unk_id) ID(pad_id)
#undef ID
#define BOOL(field)                                                                  \
    if ((st = meta_i64(f, "tok." #field, 0, 1, &x))) return st;                      \
    v->field = x != 0;
    BOOL(add_bos) BOOL(add_eos) BOOL(add_dummy_prefix) BOOL(remove_extra_whitespaces) BOOL(byte_fallback)
#undef BOOL
    return sq_vocab_validate(v, f->path);
}

/* Index entry flag bits (version 2). */
#define INDEX_FLAG_ASYM 1u
#define INDEX_FLAG_ACT8 2u /* int8 activations (q8g, q4g; sq_act8_validate) */
#define INDEX_FLAGS_KNOWN (INDEX_FLAG_ASYM | INDEX_FLAG_ACT8)

static sq_status parse_index(sq_sqz *f, const uint8_t *p, uint64_t n, uint32_t count, uint64_t data_size) {
    cursor c = {.p = p, .n = n, .path = f->path, .section = "tensor index"};
    if (count > n / 16)
        return sq_errorf(SQ_ERR_FORMAT, "%s: the index claims %u tensors in %llu bytes", f->path, count,
                         (unsigned long long)n);
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    if (!f->tensors) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
    for (uint32_t i = 0; i < count; i++) {
        sq_tensor *t = &f->tensors[i];
        uint16_t nlen = cur_u16(&c);
        const uint8_t *np = cur_bytes(&c, nlen);
        uint32_t type = cur_u32(&c);
        uint32_t group = f->version >= 2 ? cur_u32(&c) : 0;
        uint32_t flags = f->version >= 2 ? cur_u32(&c) : 0;
        uint32_t nd = cur_u32(&c);
        if (c.st) return c.st;
        if (nlen == 0 || nlen >= SQ_MAX_NAME || memchr(np, 0, nlen))
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor %u has an empty, overlong or invalid name", f->path, i);
        if (!(t->name = dup_bytes(np, nlen))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", f->path);
        f->n_tensors = (int32_t)i + 1;
        if (!sq_type_traits_get((sq_type)type))
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has unknown type %u", f->path, t->name, type);
        if (nd < 1 || nd > SQ_MAX_DIMS)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has %u dimensions", f->path, t->name, nd);
        if ((sq_type_is_quant((sq_type)type) || sq_type_is_sparse((sq_type)type)) && f->version < 2)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has type %s, which needs format version 2", f->path,
                             t->name, sq_type_name((sq_type)type));
        if (flags & ~INDEX_FLAGS_KNOWN)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has unknown flags 0x%x", f->path, t->name, flags);
        if (group > INT32_MAX)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has group size %u", f->path, t->name, group);
        t->type = (sq_type)type;
        t->q.group = (int32_t)group;
        t->q.asym = (flags & INDEX_FLAG_ASYM) != 0;
        t->act8 = (flags & INDEX_FLAG_ACT8) != 0;
        t->n_dims = (int32_t)nd;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t dim = cur_u64(&c);
            if (dim > (uint64_t)INT64_MAX / 2)
                return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has an impossible dimension", f->path, t->name);
            t->shape[d] = (int64_t)dim;
        }
        uint64_t off = cur_u64(&c), nbytes = cur_u64(&c);
        if (c.st) return c.st;
        if ((sq_type_is_quant(t->type) || sq_type_is_sparse(t->type)) && t->n_dims != 2)
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s tensor '%s' has %d dimensions (must be 2)", f->path,
                             sq_type_is_quant(t->type) ? "quantized" : "sparse", t->name, t->n_dims);
        if (sq_qparams_validate(t->type, t->q, t->shape[t->n_dims - 1], t->name) ||
            sq_act8_validate(t->type, t->act8, t->name)) {
            sq_error_prefix(f->path);
            return SQ_ERR_FORMAT;
        }
        size_t want = sq_tensor_bytes(t->type, t->q, t->n_dims, t->shape);
        if ((want == 0 && sq_tensor_numel(t) != 0) || nbytes != want)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' holds %llu bytes but its type and shape need %zu",
                             f->path, t->name, (unsigned long long)nbytes, want);
        if (off % SQ_SQZ_ALIGN)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is not %u-byte aligned", f->path, t->name,
                             SQ_SQZ_ALIGN);
        if (off > data_size || nbytes > data_size - off)
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' (offset %llu, %llu bytes) runs past the end of the file",
                             f->path, t->name, (unsigned long long)off, (unsigned long long)nbytes);
        t->data = (void *)(uintptr_t)off; /* resolved to a pointer by the caller */
        t->nbytes = (size_t)nbytes;
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(f->tensors[k].name, t->name) == 0)
                return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' appears twice", f->path, t->name);
    }
    if (c.off != c.n)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %llu unused bytes at the end of the tensor index", f->path,
                         (unsigned long long)(c.n - c.off));
    return SQ_OK;
}

static int cmp_offset(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

sq_status sq_sqz_open(sq_sqz **out, const char *path, bool verify) {
    *out = NULL;
    sq_status st;
    uint64_t *spans = NULL;
    sq_sqz *f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_bytes((const uint8_t *)path, strlen(path)))) {
        free(f);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    }
    if ((st = sq_map_file(path, &f->map))) goto fail;
    const uint8_t *p = f->map.data;
    uint64_t size = f->map.size;
    if (size < SQ_SQZ_HEADER_BYTES || memcmp(p, SQ_SQZ_MAGIC, 8) != 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: not a squish runnable file (bad magic; expected \"%s\")", path,
                       SQ_SQZ_MAGIC);
        goto fail;
    }
    uint32_t version = rd_u32(p + 8), n_tensors = rd_u32(p + 12);
    if (version < SQ_SQZ_MIN_VERSION || version > SQ_SQZ_VERSION) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED,
                       "%s: runnable file version %u; this squish reads versions %u to %u (re-export it)", path, version,
                       SQ_SQZ_MIN_VERSION, SQ_SQZ_VERSION);
        goto fail;
    }
    f->version = version;
    uint64_t file_size = rd_u64(p + 16), meta_off = rd_u64(p + 24), meta_size = rd_u64(p + 32);
    uint64_t index_off = rd_u64(p + 40), index_size = rd_u64(p + 48), data_off = rd_u64(p + 56);
    f->checksum = rd_u64(p + 120);
    if (file_size != size) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: the header says %llu bytes but the file has %llu (truncated or padded)",
                       path, (unsigned long long)file_size, (unsigned long long)size);
        goto fail;
    }
    if (meta_off != SQ_SQZ_HEADER_BYTES || meta_size > size - meta_off || index_off != meta_off + meta_size ||
        index_size > size - index_off || data_off < index_off + index_size || data_off > size ||
        data_off % SQ_SQZ_ALIGN) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: section offsets in the header are inconsistent with a %llu-byte file", path,
                       (unsigned long long)size);
        goto fail;
    }
    for (int i = 64; i < 120; i++)
        if (p[i]) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: reserved header bytes are not zero", path);
            goto fail;
        }
    if (verify) {
        sq_xxh64_state h;
        sq_xxh64_init(&h, 0);
        sq_xxh64_update(&h, p, 120);
        sq_xxh64_update(&h, p + SQ_SQZ_HEADER_BYTES, (size_t)(size - SQ_SQZ_HEADER_BYTES));
        uint64_t got = sq_xxh64_digest(&h);
        if (got != f->checksum) {
            st = sq_errorf(SQ_ERR_CHECKSUM,
                           "%s: checksum mismatch (stored %016llx, computed %016llx): the file is corrupt", path,
                           (unsigned long long)f->checksum, (unsigned long long)got);
            goto fail;
        }
    }
    if ((st = parse_meta(f, p + meta_off, meta_size))) goto fail;
    if ((st = parse_index(f, p + index_off, index_size, n_tensors, size - data_off))) goto fail;
    /* no two tensors may overlap */
    spans = malloc(((size_t)f->n_tensors + 1) * 2 * sizeof *spans);
    if (!spans) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    for (int32_t i = 0; i < f->n_tensors; i++) {
        spans[2 * i] = (uint64_t)(uintptr_t)f->tensors[i].data;
        spans[2 * i + 1] = f->tensors[i].nbytes;
    }
    qsort(spans, (size_t)f->n_tensors, 2 * sizeof *spans, cmp_offset);
    for (int32_t i = 1; i < f->n_tensors; i++)
        if (spans[2 * (i - 1)] + spans[2 * (i - 1) + 1] > spans[2 * i]) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: two tensors overlap at data offset %llu", path,
                           (unsigned long long)spans[2 * i]);
            goto fail;
        }
    for (int32_t i = 0; i < f->n_tensors; i++)
        f->tensors[i].data = (void *)(p + data_off + (uint64_t)(uintptr_t)f->tensors[i].data);
    if ((st = decode_config(f))) goto fail;
    if ((st = decode_vocab(f))) goto fail;
    free(spans);
    *out = f;
    return SQ_OK;
fail:
    free(spans);
    sq_sqz_close(f);
    return st;
}

void sq_sqz_close(sq_sqz *f) {
    if (!f) return;
    for (int32_t i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].str);
    }
    free(f->meta);
    for (int32_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    sq_vocab_free(&f->vocab);
    sq_unmap_file(&f->map);
    free(f->path);
    free(f);
}

const sq_config *sq_sqz_config(const sq_sqz *f) { return &f->cfg; }
const sq_vocab *sq_sqz_vocab(const sq_sqz *f) { return &f->vocab; }
int32_t sq_sqz_n_tensors(const sq_sqz *f) { return f->n_tensors; }
const sq_tensor *sq_sqz_tensor(const sq_sqz *f, int32_t i) {
    return (i >= 0 && i < f->n_tensors) ? &f->tensors[i] : NULL;
}
const sq_tensor *sq_sqz_find(const sq_sqz *f, const char *name) {
    for (int32_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}
uint64_t sq_sqz_file_size(const sq_sqz *f) { return f->map.size; }
uint64_t sq_sqz_checksum(const sq_sqz *f) { return f->checksum; }
uint32_t sq_sqz_version(const sq_sqz *f) { return f->version; }

const char *sq_sqz_meta(const sq_sqz *f, const char *key) {
    const meta_entry *e = meta_get(f, key);
    return (e && e->kind == KIND_STR) ? e->str : NULL;
}

/* Free-form string entries (provenance), in file order. */
int32_t sq_sqz_n_meta(const sq_sqz *f) {
    int32_t n = 0;
    for (int32_t i = 0; i < f->n_meta; i++)
        if (f->meta[i].kind == KIND_STR && strncmp(f->meta[i].key, "config.", 7) && strncmp(f->meta[i].key, "tok.", 4))
            n++;
    return n;
}

void sq_sqz_meta_at(const sq_sqz *f, int32_t i, const char **key, const char **value) {
    *key = *value = NULL;
    for (int32_t k = 0; k < f->n_meta; k++) {
        const meta_entry *e = &f->meta[k];
        if (e->kind != KIND_STR || !strncmp(e->key, "config.", 7) || !strncmp(e->key, "tok.", 4)) continue;
        if (i-- == 0) {
            *key = e->key;
            *value = e->str;
            return;
        }
    }
}

/* ===== Writer ===== */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const void *d, size_t k) {
    if (b->oom) return;
    if (b->n + k > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + k) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, k);
    b->n += k;
}
static void buf_u8(buf *b, uint8_t v) { buf_put(b, &v, 1); }
static void buf_u16(buf *b, uint16_t v) {
    uint8_t t[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_put(b, t, 2);
}
static void buf_u32(buf *b, uint32_t v) {
    uint8_t t[4];
    wr_u32(t, v);
    buf_put(b, t, 4);
}
static void buf_u64(buf *b, uint64_t v) {
    uint8_t t[8];
    wr_u64(t, v);
    buf_put(b, t, 8);
}
static void buf_key(buf *b, const char *key, uint8_t kind) {
    size_t n = strlen(key);
    buf_u16(b, (uint16_t)n);
    buf_put(b, key, n);
    buf_u8(b, kind);
}
static void kv_i64(buf *b, uint32_t *count, const char *key, int64_t v) {
    buf_key(b, key, KIND_I64);
    buf_u64(b, (uint64_t)v);
    ++*count;
}
static void kv_f64(buf *b, uint32_t *count, const char *key, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    buf_key(b, key, KIND_F64);
    buf_u64(b, u);
    ++*count;
}
static void kv_str(buf *b, uint32_t *count, const char *key, const char *v) {
    size_t n = strlen(v);
    buf_key(b, key, KIND_STR);
    buf_u32(b, (uint32_t)n);
    buf_put(b, v, n);
    ++*count;
}
static void kv_strs(buf *b, uint32_t *count, const char *key, char *const *v, int32_t n) {
    buf_key(b, key, KIND_STRS);
    buf_u64(b, (uint64_t)n);
    for (int32_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        buf_u32(b, (uint32_t)len);
        buf_put(b, v[i], len);
    }
    ++*count;
}
static void kv_arr32(buf *b, uint32_t *count, const char *key, uint8_t kind, const void *v, int32_t n) {
    buf_key(b, key, kind);
    buf_u64(b, (uint64_t)n);
    const uint8_t *p = v;
    for (int32_t i = 0; i < n; i++) { /* element by element: explicit little-endian */
        uint32_t x;
        memcpy(&x, p + 4 * (size_t)i, 4);
        buf_u32(b, x);
    }
    ++*count;
}

static void build_meta(buf *b, const sq_config *c, const sq_vocab *v, const sq_kv *meta, int32_t n_meta) {
    uint32_t count = 0;
    buf_u32(b, 0); /* patched below */
    kv_str(b, &count, "config.arch", c->arch);
    kv_i64(b, &count, "config.dim", c->dim);
    kv_i64(b, &count, "config.hidden_dim", c->hidden_dim);
    kv_i64(b, &count, "config.n_layers", c->n_layers);
    kv_i64(b, &count, "config.n_heads", c->n_heads);
    kv_i64(b, &count, "config.n_kv_heads", c->n_kv_heads);
    kv_i64(b, &count, "config.head_dim", c->head_dim);
    kv_i64(b, &count, "config.vocab_size", c->vocab_size);
    kv_i64(b, &count, "config.max_seq_len", c->max_seq_len);
    kv_i64(b, &count, "config.rope_orig_ctx", c->rope_orig_ctx);
    kv_f64(b, &count, "config.norm_eps", c->norm_eps);
    kv_f64(b, &count, "config.rope_theta", c->rope_theta);
    kv_f64(b, &count, "config.rope_factor", c->rope_factor);
    kv_f64(b, &count, "config.rope_low_freq_factor", c->rope_low_freq_factor);
    kv_f64(b, &count, "config.rope_high_freq_factor", c->rope_high_freq_factor);
    kv_str(b, &count, "config.rope_layout", c->rope_layout == SQ_ROPE_HALF ? "half" : "interleaved");
    kv_str(b, &count, "config.rope_scaling",
           c->rope_scaling == SQ_ROPE_SCALING_LLAMA3   ? "llama3"
           : c->rope_scaling == SQ_ROPE_SCALING_LINEAR ? "linear"
                                                       : "none");
    kv_i64(b, &count, "config.tied_embeddings", c->tied_embeddings);
    kv_i64(b, &count, "config.attn_qkv_bias", c->attn_qkv_bias);
    kv_i64(b, &count, "config.attn_o_bias", c->attn_o_bias);
    kv_i64(b, &count, "config.mlp_bias", c->mlp_bias);
    kv_str(b, &count, "tok.kind", v->kind == SQ_VOCAB_SPM ? "spm" : "bpe");
    kv_str(b, &count, "tok.pre", sq_pretok_name(v->pre));
    kv_strs(b, &count, "tok.tokens", v->tokens, v->n_tokens);
    kv_arr32(b, &count, "tok.scores", KIND_F32S, v->scores, v->n_tokens);
    kv_arr32(b, &count, "tok.types", KIND_I32S, v->types, v->n_tokens);
    if (v->n_merges > 0) kv_strs(b, &count, "tok.merges", v->merges, v->n_merges);
    kv_i64(b, &count, "tok.bos_id", v->bos_id);
    kv_i64(b, &count, "tok.eos_id", v->eos_id);
    kv_i64(b, &count, "tok.unk_id", v->unk_id);
    kv_i64(b, &count, "tok.pad_id", v->pad_id);
    kv_i64(b, &count, "tok.add_bos", v->add_bos);
    kv_i64(b, &count, "tok.add_eos", v->add_eos);
    kv_i64(b, &count, "tok.add_dummy_prefix", v->add_dummy_prefix);
    kv_i64(b, &count, "tok.remove_extra_whitespaces", v->remove_extra_whitespaces);
    kv_i64(b, &count, "tok.byte_fallback", v->byte_fallback);
    for (int32_t i = 0; i < n_meta; i++) kv_str(b, &count, meta[i].key, meta[i].value);
    if (!b->oom) wr_u32(b->p, count);
}

static uint64_t align_up(uint64_t x) { return (x + SQ_SQZ_ALIGN - 1) / SQ_SQZ_ALIGN * SQ_SQZ_ALIGN; }

static sq_status hashed_write(sq_atomic_file *af, sq_xxh64_state *h, const void *p, size_t n) {
    sq_xxh64_update(h, p, n);
    return sq_atomic_write(af, p, n);
}

sq_status sq_sqz_write(const char *path, const sq_config *cfg, const sq_vocab *vocab, const sq_tensor *tensors,
                       int32_t n_tensors, const sq_kv *meta, int32_t n_meta) {
    sq_status st;
    buf mb = {0}, ib = {0};
    sq_atomic_file af = {0};
    static const uint8_t zeros[SQ_SQZ_ALIGN];

    if ((st = sq_config_validate(cfg, path))) return st;
    if ((st = sq_vocab_validate(vocab, path))) return st;
    for (int32_t i = 0; i < n_meta; i++) {
        if (!strncmp(meta[i].key, "config.", 7) || !strncmp(meta[i].key, "tok.", 4) || strlen(meta[i].key) > 65535)
            return sq_errorf(SQ_ERR_ARG, "%s: metadata key '%s' is reserved or too long", path, meta[i].key);
    }
    build_meta(&mb, cfg, vocab, meta, n_meta);

    uint64_t data_size = 0;
    for (int32_t i = 0; i < n_tensors; i++) {
        const sq_tensor *t = &tensors[i];
        size_t nl = strlen(t->name);
        if (nl == 0 || nl >= SQ_MAX_NAME || t->n_dims < 1 || t->n_dims > SQ_MAX_DIMS) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' has an invalid name or shape", path, t->name);
            goto fail;
        }
        if (!sq_type_traits_get(t->type) ||
            ((sq_type_is_quant(t->type) || sq_type_is_sparse(t->type)) &&
             (t->n_dims != 2 || sq_qparams_validate(t->type, t->q, t->shape[1], t->name)))) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' has invalid type or quantization parameters", path, t->name);
            goto fail;
        }
        if (sq_act8_validate(t->type, t->act8, t->name)) {
            sq_error_prefix(path);
            st = SQ_ERR_ARG;
            goto fail;
        }
        size_t want = sq_tensor_bytes(t->type, t->q, t->n_dims, t->shape);
        if (want != t->nbytes || (want == 0 && sq_tensor_numel(t) != 0)) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' holds %zu bytes but its type and shape need %zu", path,
                           t->name, t->nbytes, want);
            goto fail;
        }
        for (int32_t k = 0; k < i; k++)
            if (strcmp(tensors[k].name, t->name) == 0) {
                st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' appears twice", path, t->name);
                goto fail;
            }
        buf_u16(&ib, (uint16_t)nl);
        buf_put(&ib, t->name, nl);
        buf_u32(&ib, (uint32_t)t->type);
        buf_u32(&ib, sq_type_is_quant(t->type) || sq_type_is_sparse(t->type) ? (uint32_t)t->q.group : 0u);
        buf_u32(&ib, sq_type_is_quant(t->type) ? (t->q.asym ? INDEX_FLAG_ASYM : 0u) | (t->act8 ? INDEX_FLAG_ACT8 : 0u)
                                               : 0u);
        buf_u32(&ib, (uint32_t)t->n_dims);
        for (int32_t d = 0; d < t->n_dims; d++) buf_u64(&ib, (uint64_t)t->shape[d]);
        buf_u64(&ib, data_size);
        buf_u64(&ib, t->nbytes);
        data_size = align_up(data_size + t->nbytes);
    }
    if (mb.oom || ib.oom) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }

    uint8_t hdr[SQ_SQZ_HEADER_BYTES] = {0};
    uint64_t meta_off = SQ_SQZ_HEADER_BYTES, index_off = meta_off + mb.n;
    uint64_t data_off = align_up(index_off + ib.n);
    memcpy(hdr, SQ_SQZ_MAGIC, 8);
    wr_u32(hdr + 8, SQ_SQZ_VERSION);
    wr_u32(hdr + 12, (uint32_t)n_tensors);
    wr_u64(hdr + 16, data_off + data_size);
    wr_u64(hdr + 24, meta_off);
    wr_u64(hdr + 32, mb.n);
    wr_u64(hdr + 40, index_off);
    wr_u64(hdr + 48, ib.n);
    wr_u64(hdr + 56, data_off);

    sq_xxh64_state h;
    sq_xxh64_init(&h, 0);
    sq_xxh64_update(&h, hdr, 120);
    if ((st = sq_atomic_open(&af, path))) goto fail;
    if ((st = sq_atomic_write(&af, hdr, sizeof hdr))) goto fail;
    if ((st = hashed_write(&af, &h, mb.p, mb.n))) goto fail;
    if ((st = hashed_write(&af, &h, ib.p, ib.n))) goto fail;
    if ((st = hashed_write(&af, &h, zeros, (size_t)(data_off - index_off - ib.n)))) goto fail;
    for (int32_t i = 0; i < n_tensors; i++) {
        const sq_tensor *t = &tensors[i];
        if ((st = hashed_write(&af, &h, t->data, t->nbytes))) goto fail;
        if ((st = hashed_write(&af, &h, zeros, (size_t)(align_up(t->nbytes) - t->nbytes)))) goto fail;
    }
    uint8_t sum[8];
    wr_u64(sum, sq_xxh64_digest(&h));
    if (fseek(af.fp, 120, SEEK_SET) != 0) {
        st = sq_errorf(SQ_ERR_IO, "%s: cannot seek in the temp file", path);
        goto fail;
    }
    if ((st = sq_atomic_write(&af, sum, 8))) goto fail;
    st = sq_atomic_commit(&af);
    free(mb.p);
    free(ib.p);
    return st;
fail:
    sq_atomic_abort(&af);
    free(mb.p);
    free(ib.p);
    return st;
}
