/* test_gguf.c - the GGUF container (core/gguf.c) and importer/exporter (core/gguf_model.c),
 * against FORMATS.md 3 and 6 and docs/gguf.md: the bytes of a tiny file derived by hand from
 * the spec (llama.cpp is not available here); bit-exact checkpoint -> GGUF -> checkpoint round
 * trips (F32/F16/BF16, tied, GQA, head_dim, biases, RoPE scaling, BPE and padded vocabularies);
 * the HF -> Meta q/k permutation checked row by row and through the forward pass (logits to
 * 1e-5), qwen2 never permuted; llama.cpp's keys; quantized tensors (Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 blocks
 * against a reference decoder written from FORMATS.md, export -> import exact but for the
 * Q4_1/Q5_1 fp16 offsets, ragged rows as F16/F32); refusals (other quantized types, unknown
 * architecture/tokenizer/pre-tokenizer, missing keys); hostile files (hand-built defects, every
 * truncation, byte flips: one-line errors naming the file, no crash); stories260K and
 * gutenberg-7m (prompt logits vs REFERENCE_OUTPUTS.json) through GGUF when ../shared is here.
 */
#include <unistd.h>

#include "../core/gguf.h"
#include "../runtime/model.h"
#include "../runtime/tokenizer.h"
#include "test.h"
#include "tinymodel.h"
#include "tinyquant.h"

static char pbuf[8][1024];
static int pk;

/* "<tmpdir>/<name>" in a rotating static buffer. */
static const char *tp(const char *name) {
    char *b = pbuf[pk++ & 7];
    snprintf(b, sizeof pbuf[0], "%s/%s", sq_test_tmpdir(), name);
    return b;
}

static void expect_fail(sq_status st, sq_status code, const char *needle) {
    SQ_CHECKF(st == code, "status %d, expected %d: %s", st, code, sq_last_error());
    SQ_CHECKF(strstr(sq_last_error(), needle) != NULL, "message '%s' lacks '%s'", sq_last_error(), needle);
    SQ_CHECKF(strchr(sq_last_error(), '\n') == NULL, "message is not one line");
}

static uint8_t *read_all(const char *path, size_t *n) {
    char *d = NULL;
    if (sq_read_file(path, (size_t)1 << 28, &d, n) != SQ_OK) return NULL;
    return (uint8_t *)d;
}

/* Offset of the first occurrence of `s` in file bytes, or -1. */
static long find_bytes(const uint8_t *d, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(d + i, s, k) == 0) return (long)i;
    return -1;
}

/* Rewrites `path` with `len` bytes at `off` replaced. */
static void patch_file(const char *path, long off, const void *bytes, size_t len) {
    size_t n;
    uint8_t *d = read_all(path, &n);
    if (!d || off < 0 || (size_t)off + len > n) abort();
    memcpy(d + off, bytes, len);
    if (sq_tiny_write_file(path, d, n) != SQ_OK) abort();
    free(d);
}

/* Replaces the first occurrence of `from` by `to` (same length). */
static void patch_str(const char *path, const char *from, const char *to) {
    size_t n;
    uint8_t *d = read_all(path, &n);
    long at = d ? find_bytes(d, n, from) : -1;
    free(d);
    if (at < 0 || strlen(from) != strlen(to)) abort();
    patch_file(path, at, to, strlen(to));
}

/* Overwrites the uint32 value of metadata key `key` (a key string followed by its type). */
static void patch_key_u32(const char *path, const char *key, uint32_t v) {
    size_t n;
    uint8_t *d = read_all(path, &n);
    long at = d ? find_bytes(d, n, key) : -1;
    free(d);
    if (at < 0) abort();
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    patch_file(path, at + (long)strlen(key) + 4, le, 4);
}

/* Overwrites the type of tensor info `name` (name, n_dims, ne[n_dims], type). */
static void patch_tensor_type(const char *path, const char *name, uint32_t type) {
    size_t n;
    uint8_t *d = read_all(path, &n);
    long at = d ? find_bytes(d, n, name) : -1;
    if (at < 0) abort();
    long p = at + (long)strlen(name);
    uint32_t nd = d[p];
    free(d);
    uint8_t le[4] = {(uint8_t)type, (uint8_t)(type >> 8), 0, 0};
    patch_file(path, p + 4 + 8 * (long)nd, le, 4);
}

/* ===== Expected results ===== */

/* What importing the GGUF export of a must give: 1-D tensors as F32, Mistral as llama, q/k
 * rows in the GGUF architecture's RoPE layout (llama interleaved, qwen2 rotate-half). */
static sq_status expected_after_gguf(const sq_checkpoint *a, sq_checkpoint *e) {
    sq_status st;
    memset(e, 0, sizeof *e);
    e->cfg = a->cfg;
    bool qwen2 = strcmp(a->cfg.arch, "qwen2") == 0;
    if (!qwen2) snprintf(e->cfg.arch, sizeof e->cfg.arch, "llama");
    sq_rope_layout want = qwen2 ? SQ_ROPE_HALF : SQ_ROPE_INTERLEAVED;
    e->cfg.rope_layout = want;
    if ((st = sq_vocab_copy(&e->vocab, &a->vocab))) return st;
    for (int32_t i = 0; i < a->n_tensors; i++) {
        sq_tensor x;
        if ((st = sq_tiny_copy_for_layout(a, &a->tensors[i], want, &x))) return st;
        if (x.n_dims == 1 && x.type != SQ_TYPE_F32) {
            float *f = malloc((size_t)x.shape[0] * sizeof *f);
            sq_convert_rows(f, SQ_TYPE_F32, x.data, x.type, x.shape[0]);
            free(x.data);
            x.data = f;
            x.type = SQ_TYPE_F32;
            x.nbytes = (size_t)x.shape[0] * sizeof *f;
        }
        if ((st = sq_checkpoint_add(e, &x))) return st;
    }
    return SQ_OK;
}

/* Logits of a fixed token sequence (malloc'ed [n, vocab]), or NULL. */
static float *logits_of(sq_checkpoint *c, const int32_t *toks, int32_t n) {
    sq_model *m = NULL;
    sq_state *s = NULL;
    float *lg = NULL;
    if (sq_model_from_tensors(&m, &c->cfg, &c->vocab, c->tensors, c->n_tensors, false)) goto done;
    if (sq_state_init(&s, m, n, n)) goto done;
    lg = malloc((size_t)n * (size_t)c->cfg.vocab_size * sizeof *lg);
    if (sq_forward(s, toks, n, 0, lg)) {
        free(lg);
        lg = NULL;
    }
done:
    if (!lg) printf("  forward: %s\n", sq_last_error());
    sq_state_free(s);
    sq_model_free(m);
    return lg;
}

/* Both checkpoints compute the same logits on a fixed sequence (max |diff| <= tol x scale). */
static void check_same_logits(sq_checkpoint *a, sq_checkpoint *b, double tol, const char *what) {
    int32_t toks[12];
    for (int i = 0; i < 12; i++) toks[i] = (int32_t)((i * 37 + 5) % a->cfg.vocab_size);
    float *x = logits_of(a, toks, 12), *y = logits_of(b, toks, 12);
    SQ_CHECK(x && y);
    if (x && y) {
        double d = 0, s = 0;
        for (int64_t i = 0; i < 12 * (int64_t)a->cfg.vocab_size; i++) {
            d = fmax(d, fabs((double)x[i] - y[i]));
            s = fmax(s, fabs((double)x[i]));
        }
        SQ_CHECKF(d <= tol * fmax(s, 1.0), "%s: logits differ by %.3g (scale %.3g)", what, d, s);
    }
    free(x);
    free(y);
}

/* Exports spec s to <name>.gguf, imports it and compares with the expected checkpoint;
 * returns the imported checkpoint in *out when out is non-NULL. */
static void roundtrip(const sq_tiny_spec *s, const char *name, sq_checkpoint *out) {
    sq_checkpoint a, b, e;
    char why[256] = "", file[300];
    snprintf(file, sizeof file, "%s.gguf", name);
    SQ_CHECK_OK(sq_tiny_checkpoint(s, &a));
    SQ_CHECK_OK(sq_export_gguf(&a, tp(file), NULL));
    SQ_CHECK_OK(sq_import_gguf(tp(file), &b));
    SQ_CHECK_OK(expected_after_gguf(&a, &e));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&e, &b, true, why, sizeof why), "%s: %s", name, why);
    SQ_CHECK(b.source_format && strcmp(b.source_format, "gguf") == 0 && b.n_sources == 1);
    check_same_logits(&a, &b, 1e-5, name);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&e);
    if (out) *out = b;
    else sq_checkpoint_free(&b);
}

/* ===== Byte layout ===== */

SQ_TEST(byte_layout) {
    /* One string KV, one 2-element F32 tensor, written by hand from the spec (FORMATS.md
     * 6.1): little-endian, strings = u64 length + bytes, data aligned to 32 from the file
     * start, each tensor's data padded to 32. */
    static const uint8_t want[160] = {
        'G', 'G', 'U', 'F',                     /* 0: magic */
        3, 0, 0, 0,                             /* 4: version 3 */
        1, 0, 0, 0, 0, 0, 0, 0,                 /* 8: tensor_count 1 */
        1, 0, 0, 0, 0, 0, 0, 0,                 /* 16: metadata_kv_count 1 */
        20, 0, 0, 0, 0, 0, 0, 0,                /* 24: key length 20 */
        'g', 'e', 'n', 'e', 'r', 'a', 'l', '.', 'a', 'r', 'c', 'h', 'i', 't', 'e', 'c', 't', 'u', 'r', 'e',
        8, 0, 0, 0,                             /* 52: value type STRING */
        5, 0, 0, 0, 0, 0, 0, 0,                 /* 56: string length 5 */
        'l', 'l', 'a', 'm', 'a',                /* 64 */
        1, 0, 0, 0, 0, 0, 0, 0,                 /* 69: tensor name length 1 */
        'w',                                    /* 77 */
        1, 0, 0, 0,                             /* 78: n_dims 1 */
        2, 0, 0, 0, 0, 0, 0, 0,                 /* 82: ne[0] = 2 */
        0, 0, 0, 0,                             /* 90: type F32 */
        0, 0, 0, 0, 0, 0, 0, 0,                 /* 94: offset 0; header ends at 102 */
        [128] = 0x00, 0x00, 0x80, 0x3F,         /* 128: data section, 1.0f */
        0x00, 0x00, 0x00, 0xC0,                 /* 132: -2.0f; zero padding to 160 */
    };
    const float w[2] = {1.0f, -2.0f};
    const uint64_t ne[1] = {2};
    sq_gguf_writer *g = NULL;
    SQ_CHECK_OK(sq_gguf_writer_open(&g, tp("layout.gguf")));
    SQ_CHECK_OK(sq_gguf_writer_add_str(g, "general.architecture", "llama"));
    SQ_CHECK_OK(sq_gguf_writer_add_tensor(g, "w", SQ_GGML_F32, 1, ne, w, sizeof w));
    SQ_CHECK_OK(sq_gguf_writer_finish(g));
    sq_gguf_writer_close(g);
    size_t n = 0;
    uint8_t *d = read_all(tp("layout.gguf"), &n);
    SQ_CHECKF(d && n == sizeof want, "file is %zu bytes, expected %zu", n, sizeof want);
    for (size_t i = 0; d && i < n && i < sizeof want; i++)
        if (d[i] != want[i]) {
            SQ_CHECKF(d[i] == want[i], "byte %zu is 0x%02x, expected 0x%02x", i, d[i], want[i]);
            break;
        }
    free(d);

    /* and the reader sees exactly that */
    sq_gguf *f = NULL;
    SQ_CHECK_OK(sq_gguf_open(&f, tp("layout.gguf")));
    if (!f) return;
    SQ_CHECK(sq_gguf_version(f) == 3 && sq_gguf_alignment(f) == 32 && sq_gguf_data_offset(f) == 128);
    SQ_CHECK(sq_gguf_n_kv(f) == 1 && sq_gguf_n_tensors(f) == 1);
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "general.architecture"), "llama"));
    const sq_gguf_tensor *t = sq_gguf_find_tensor(f, "w");
    SQ_CHECK(t && t->n_dims == 1 && t->ne[0] == 2 && t->type == SQ_GGML_F32 && t->offset == 0 && t->nbytes == 8);
    SQ_CHECK(t && memcmp(t->data, w, 8) == 0);
    sq_gguf_close(f);
}

/* ===== A hand-built file for the reader ===== */

static void put_u8(sq_tiny_buf *b, uint8_t v) { sq_tiny_put(b, &v, 1); }
static void put_u32(sq_tiny_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sq_tiny_put(b, x, 4);
}
static void put_u64(sq_tiny_buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(sq_tiny_buf *b, const char *s) {
    put_u64(b, strlen(s));
    sq_tiny_put(b, s, strlen(s));
}
static void put_hdr(sq_tiny_buf *b, uint64_t n_tensors, uint64_t n_kv) {
    sq_tiny_put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}
static void put_kv_u32(sq_tiny_buf *b, const char *key, uint32_t v) {
    put_str(b, key);
    put_u32(b, SQ_GGUF_UINT32);
    put_u32(b, v);
}
static void put_tinfo(sq_tiny_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t off) {
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) put_u64(b, ne[d]);
    put_u32(b, type);
    put_u64(b, off);
}
static void put_pad(sq_tiny_buf *b, size_t a) {
    while (b->n % a) put_u8(b, 0);
}
static void put_zeros(sq_tiny_buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) put_u8(b, 0);
}

/* Writes b to tmp/<name> and opens it: the status, with the file closed again. */
static sq_status open_buf(const char *name, sq_tiny_buf *b) {
    const char *p = tp(name);
    if (sq_tiny_write_file(p, b->p, b->n)) abort();
    free(b->p);
    memset(b, 0, sizeof *b);
    sq_gguf *f = NULL;
    sq_status st = sq_gguf_open(&f, p);
    sq_gguf_close(f);
    if (st) SQ_CHECKF(strstr(sq_last_error(), name) != NULL, "message '%s' does not name the file", sq_last_error());
    return st;
}

SQ_TEST(reader_value_types) {
    sq_tiny_buf b = {0};
    put_hdr(&b, 1, 15);
    put_str(&b, "u8"), put_u32(&b, SQ_GGUF_UINT8), put_u8(&b, 200);
    put_str(&b, "i8"), put_u32(&b, SQ_GGUF_INT8), put_u8(&b, 0xFE);
    put_str(&b, "u16"), put_u32(&b, SQ_GGUF_UINT16), put_u8(&b, 0x34), put_u8(&b, 0x12);
    put_str(&b, "i16"), put_u32(&b, SQ_GGUF_INT16), put_u8(&b, 0xFF), put_u8(&b, 0xFF);
    put_kv_u32(&b, "u32", 4000000000u);
    put_str(&b, "i32"), put_u32(&b, SQ_GGUF_INT32), put_u32(&b, (uint32_t)-7);
    float f = 0.25f;
    uint32_t fu;
    memcpy(&fu, &f, 4);
    put_str(&b, "f32"), put_u32(&b, SQ_GGUF_FLOAT32), put_u32(&b, fu);
    put_str(&b, "bool"), put_u32(&b, SQ_GGUF_BOOL), put_u8(&b, 1);
    put_str(&b, "str"), put_u32(&b, SQ_GGUF_STRING), put_str(&b, "h\xC3\xA9llo");
    put_str(&b, "u64"), put_u32(&b, SQ_GGUF_UINT64), put_u64(&b, (uint64_t)1 << 40);
    put_str(&b, "u64big"), put_u32(&b, SQ_GGUF_UINT64), put_u64(&b, UINT64_MAX);
    put_str(&b, "i64"), put_u32(&b, SQ_GGUF_INT64), put_u64(&b, (uint64_t)-5);
    double g = -1.5;
    uint64_t gu;
    memcpy(&gu, &g, 8);
    put_str(&b, "f64"), put_u32(&b, SQ_GGUF_FLOAT64), put_u64(&b, gu);
    put_str(&b, "astr"), put_u32(&b, SQ_GGUF_ARRAY), put_u32(&b, SQ_GGUF_STRING), put_u64(&b, 3);
    put_str(&b, "a"), put_str(&b, ""), put_str(&b, "ccc");
    put_str(&b, "ai16"), put_u32(&b, SQ_GGUF_ARRAY), put_u32(&b, SQ_GGUF_INT16), put_u64(&b, 2);
    put_u8(&b, 3), put_u8(&b, 0), put_u8(&b, 0xFD), put_u8(&b, 0xFF);
    const uint64_t ne[2] = {32, 2};
    put_tinfo(&b, "q", 2, ne, SQ_GGML_Q8_0, 0);
    put_pad(&b, 32);
    put_zeros(&b, 68); /* 2 rows of one 34-byte Q8_0 block */
    const char *p = tp("types.gguf");
    SQ_CHECK_OK(sq_tiny_write_file(p, b.p, b.n));
    free(b.p);
    memset(&b, 0, sizeof b);
    sq_gguf *r = NULL;
    SQ_CHECK_OK(sq_gguf_open(&r, p));
    if (!r) return;
    int64_t v;
    double d;
    const char *s;
    uint64_t len;
#define INT(key, val) SQ_CHECK(sq_gguf_kv_int(sq_gguf_find_kv(r, key), 0, &v) && v == (val))
    INT("u8", 200);
    INT("i8", -2);
    INT("u16", 0x1234);
    INT("i16", -1);
    INT("u32", 4000000000ll);
    INT("i32", -7);
    INT("bool", 1);
    INT("u64", 1ll << 40);
    INT("i64", -5);
#undef INT
    SQ_CHECK(!sq_gguf_kv_int(sq_gguf_find_kv(r, "u64big"), 0, &v));
    SQ_CHECK(sq_gguf_kv_float(sq_gguf_find_kv(r, "f32"), 0, &d) && d == 0.25);
    SQ_CHECK(sq_gguf_kv_float(sq_gguf_find_kv(r, "f64"), 0, &d) && d == -1.5);
    SQ_CHECK(sq_gguf_kv_float(sq_gguf_find_kv(r, "u16"), 0, &d) && d == 0x1234);
    SQ_CHECK(!sq_gguf_kv_float(sq_gguf_find_kv(r, "str"), 0, &d));
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(r, "str"), "h\xC3\xA9llo"));
    SQ_CHECK(!sq_gguf_kv_str(sq_gguf_find_kv(r, "u8"), 0, &s, &len));
    const sq_gguf_kv *a = sq_gguf_find_kv(r, "astr");
    SQ_CHECK(a && a->type == SQ_GGUF_ARRAY && a->elem_type == SQ_GGUF_STRING && a->n == 3);
    SQ_CHECK(sq_gguf_kv_str(a, 2, &s, &len) && len == 3 && memcmp(s, "ccc", 3) == 0);
    SQ_CHECK(sq_gguf_kv_str(a, 1, &s, &len) && len == 0);
    SQ_CHECK(!sq_gguf_kv_str(a, 3, &s, &len));
    SQ_CHECK(!sq_gguf_kv_str_eq(a, "a"));
    a = sq_gguf_find_kv(r, "ai16");
    SQ_CHECK(sq_gguf_kv_int(a, 0, &v) && v == 3 && sq_gguf_kv_int(a, 1, &v) && v == -3);
    SQ_CHECK(sq_gguf_find_kv(r, "absent") == NULL && sq_gguf_kv_at(r, 15) == NULL);
    SQ_CHECK(strcmp(sq_gguf_kv_at(r, 0)->key, "u8") == 0);
    const sq_gguf_tensor *t = sq_gguf_tensor_at(r, 0);
    SQ_CHECK(t && t->type == SQ_GGML_Q8_0 && t->nbytes == 68 && t->ne[1] == 2 && t->ne[2] == 1);
    SQ_CHECK(strcmp(sq_ggml_type_name(SQ_GGML_Q4_K), "Q4_K") == 0 && strcmp(sq_ggml_type_name(4), "type 4") == 0);
    SQ_CHECK(sq_ggml_type_info_get(SQ_GGML_Q2_K)->block_bytes == 84 && sq_ggml_type_info_get(SQ_GGML_BF16)->block == 1);
    sq_gguf_close(r);

    /* general.alignment 64: data starts at the next multiple of 64 */
    put_hdr(&b, 1, 1);
    put_kv_u32(&b, "general.alignment", 64);
    const uint64_t ne1[1] = {4};
    put_tinfo(&b, "t", 1, ne1, SQ_GGML_F32, 0);
    put_pad(&b, 64);
    size_t data_at = b.n;
    put_zeros(&b, 16);
    p = tp("align64.gguf");
    SQ_CHECK_OK(sq_tiny_write_file(p, b.p, b.n));
    free(b.p);
    memset(&b, 0, sizeof b);
    SQ_CHECK_OK(sq_gguf_open(&r, p));
    if (r) SQ_CHECK(sq_gguf_alignment(r) == 64 && sq_gguf_data_offset(r) == data_at && data_at % 64 == 0);
    sq_gguf_close(r);
}

/* ===== Hostile files ===== */

SQ_TEST(reader_hostile) {
    sq_tiny_buf b = {0};
    const uint64_t ne4[1] = {4}, ne2x[2] = {(uint64_t)1 << 40, (uint64_t)1 << 40};
    /* magic, version, counts */
    sq_tiny_put(&b, "GGUX", 4), put_zeros(&b, 20);
    expect_fail(open_buf("magic.gguf", &b), SQ_ERR_FORMAT, "not a GGUF file");
    sq_tiny_put(&b, "GGUF", 4), put_u32(&b, 3);
    expect_fail(open_buf("short.gguf", &b), SQ_ERR_FORMAT, "too short for a GGUF header");
    sq_tiny_put(&b, "GGUF", 4), put_u32(&b, 1), put_zeros(&b, 16);
    expect_fail(open_buf("v1.gguf", &b), SQ_ERR_UNSUPPORTED, "GGUF v1 is not supported");
    sq_tiny_put(&b, "GGUF", 4), put_u32(&b, 0x03000000u), put_zeros(&b, 16);
    expect_fail(open_buf("be.gguf", &b), SQ_ERR_UNSUPPORTED, "big-endian");
    sq_tiny_put(&b, "GGUF", 4), put_u32(&b, 77), put_zeros(&b, 16);
    expect_fail(open_buf("v77.gguf", &b), SQ_ERR_FORMAT, "unknown GGUF version 77");
    put_hdr(&b, 0, (uint64_t)1 << 40), put_zeros(&b, 64);
    expect_fail(open_buf("nkv.gguf", &b), SQ_ERR_FORMAT, "metadata count 1099511627776 is implausible");
    sq_tiny_put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, (uint64_t)1 << 56), put_u64(&b, (uint64_t)1 << 56);
    put_zeros(&b, 64);
    expect_fail(open_buf("becount.gguf", &b), SQ_ERR_UNSUPPORTED, "big-endian GGUF file?");

    /* strings, arrays, value types */
    put_hdr(&b, 0, 1), put_u64(&b, 1000), sq_tiny_put(&b, "key", 3), put_zeros(&b, 16);
    expect_fail(open_buf("keylen.gguf", &b), SQ_ERR_FORMAT, "past the end of the");
    put_hdr(&b, 0, 1), put_u64(&b, 0), put_u32(&b, SQ_GGUF_UINT8), put_u8(&b, 0), put_zeros(&b, 8);
    expect_fail(open_buf("emptykey.gguf", &b), SQ_ERR_FORMAT, "metadata key at byte 24 is empty");
    put_hdr(&b, 0, 1), put_u64(&b, 3), sq_tiny_put(&b, "k\0x", 3), put_u32(&b, SQ_GGUF_UINT8), put_u8(&b, 0);
    expect_fail(open_buf("nulkey.gguf", &b), SQ_ERR_FORMAT, "metadata key at byte 24 contains control byte 0x00");
    put_hdr(&b, 0, 1), put_str(&b, "a\nb"), put_u32(&b, SQ_GGUF_UINT8), put_u8(&b, 0), put_zeros(&b, 8);
    expect_fail(open_buf("nlkey.gguf", &b), SQ_ERR_FORMAT, "contains control byte 0x0a");
    put_hdr(&b, 0, 1), put_str(&b, "s"), put_u32(&b, SQ_GGUF_STRING), put_u64(&b, UINT64_MAX), put_zeros(&b, 8);
    expect_fail(open_buf("strlen.gguf", &b), SQ_ERR_FORMAT, "past the end of the");
    put_hdr(&b, 0, 1), put_str(&b, "a"), put_u32(&b, SQ_GGUF_ARRAY), put_u32(&b, SQ_GGUF_UINT32);
    put_u64(&b, (uint64_t)1 << 62), put_zeros(&b, 16);
    expect_fail(open_buf("arrcount.gguf", &b), SQ_ERR_FORMAT, "values of type uint32");
    put_hdr(&b, 0, 1), put_str(&b, "a"), put_u32(&b, SQ_GGUF_ARRAY), put_u32(&b, SQ_GGUF_STRING);
    put_u64(&b, UINT64_MAX / 2), put_zeros(&b, 16);
    expect_fail(open_buf("arrstr.gguf", &b), SQ_ERR_FORMAT, "strings cannot fit");
    put_hdr(&b, 0, 1), put_str(&b, "a"), put_u32(&b, SQ_GGUF_ARRAY), put_u32(&b, SQ_GGUF_STRING);
    put_u64(&b, 2), put_str(&b, "x"), put_u64(&b, 5), put_zeros(&b, 2);
    expect_fail(open_buf("arrstr2.gguf", &b), SQ_ERR_FORMAT, "string 1 (at byte");
    put_hdr(&b, 0, 1), put_str(&b, "a"), put_u32(&b, SQ_GGUF_ARRAY), put_u32(&b, SQ_GGUF_ARRAY), put_u64(&b, 0);
    expect_fail(open_buf("nested.gguf", &b), SQ_ERR_FORMAT, "array of arrays");
    put_hdr(&b, 0, 1), put_str(&b, "x"), put_u32(&b, 13), put_zeros(&b, 8);
    expect_fail(open_buf("vtype.gguf", &b), SQ_ERR_FORMAT, "key 'x' has unknown value type 13");
    put_hdr(&b, 0, 1), put_str(&b, "a"), put_u32(&b, SQ_GGUF_ARRAY), put_u32(&b, 99), put_u64(&b, 0);
    expect_fail(open_buf("atype.gguf", &b), SQ_ERR_FORMAT, "unknown value type 99");
    put_hdr(&b, 0, 1), put_str(&b, "b"), put_u32(&b, SQ_GGUF_BOOL), put_u8(&b, 2);
    expect_fail(open_buf("bool.gguf", &b), SQ_ERR_FORMAT, "bool value 2");
    put_hdr(&b, 0, 2), put_kv_u32(&b, "dup", 1), put_kv_u32(&b, "dup", 2);
    expect_fail(open_buf("dupkey.gguf", &b), SQ_ERR_FORMAT, "metadata key 'dup' appears more than once");
    put_hdr(&b, 0, 1), put_kv_u32(&b, "general.alignment", 24);
    expect_fail(open_buf("align24.gguf", &b), SQ_ERR_FORMAT, "general.alignment 24 is not a power of two");
    put_hdr(&b, 0, 1), put_kv_u32(&b, "general.alignment", 4);
    expect_fail(open_buf("align4.gguf", &b), SQ_ERR_FORMAT, "multiple of 8");
    put_hdr(&b, 0, 1), put_str(&b, "general.alignment"), put_u32(&b, SQ_GGUF_UINT64), put_u64(&b, 32);
    expect_fail(open_buf("align64t.gguf", &b), SQ_ERR_FORMAT, "general.alignment is of type uint64");

    /* tensor infos */
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 5, (const uint64_t[5]){1, 1, 1, 1, 1}, 0, 0);
    expect_fail(open_buf("ndims5.gguf", &b), SQ_ERR_FORMAT, "tensor 't' has 5 dimensions");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 0, ne4, 0, 0), put_zeros(&b, 40);
    expect_fail(open_buf("ndims0.gguf", &b), SQ_ERR_FORMAT, "has 0 dimensions");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 2, ne2x, 0, 0);
    expect_fail(open_buf("neover.gguf", &b), SQ_ERR_FORMAT, "element count overflows");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 2, (const uint64_t[2]){(uint64_t)1 << 62, 1}, 0, 0);
    expect_fail(open_buf("bytesover.gguf", &b), SQ_ERR_FORMAT, "byte size overflows");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 1, (const uint64_t[1]){33}, SQ_GGML_Q4_0, 0);
    expect_fail(open_buf("block.gguf", &b), SQ_ERR_FORMAT, "ne[0] = 33 is not a multiple of the Q4_0 block size 32");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 1, ne4, 99, 0);
    expect_fail(open_buf("ttype.gguf", &b), SQ_ERR_UNSUPPORTED, "tensor 't' has unknown ggml type id 99");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 1, ne4, 4, 0);
    expect_fail(open_buf("retired.gguf", &b), SQ_ERR_UNSUPPORTED, "unknown ggml type id 4");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 1, ne4, 0, 4), put_pad(&b, 32), put_zeros(&b, 64);
    expect_fail(open_buf("misalign.gguf", &b), SQ_ERR_FORMAT, "offset 4 is not a multiple of the alignment 32");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 1, ne4, 0, 32), put_pad(&b, 32), put_zeros(&b, 40);
    expect_fail(open_buf("pastend.gguf", &b), SQ_ERR_FORMAT, "tensor 't': data [32, +16) runs past the end");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 1, ne4, 0, UINT64_MAX - 31), put_pad(&b, 32), put_zeros(&b, 40);
    expect_fail(open_buf("offover.gguf", &b), SQ_ERR_FORMAT, "runs past the end");
    put_hdr(&b, 2, 0), put_tinfo(&b, "a", 1, (const uint64_t[1]){16}, 0, 0), put_tinfo(&b, "b", 1, ne4, 0, 32);
    put_pad(&b, 32), put_zeros(&b, 96);
    expect_fail(open_buf("overlap.gguf", &b), SQ_ERR_FORMAT, "tensor 'b' (data at 32) overlaps tensor 'a'");
    put_hdr(&b, 2, 0), put_tinfo(&b, "a", 1, ne4, 0, 0), put_tinfo(&b, "a", 1, ne4, 0, 32);
    put_pad(&b, 32), put_zeros(&b, 64);
    expect_fail(open_buf("duptensor.gguf", &b), SQ_ERR_FORMAT, "tensor 'a' appears more than once");
    char longname[70];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    put_hdr(&b, 1, 0), put_tinfo(&b, longname, 1, ne4, 0, 0), put_pad(&b, 32), put_zeros(&b, 32);
    expect_fail(open_buf("longname.gguf", &b), SQ_ERR_FORMAT, "is 64 bytes (at most 63)");
    put_hdr(&b, 1, 0), put_tinfo(&b, "t", 1, ne4, 0, 0);
    expect_fail(open_buf("nodata.gguf", &b), SQ_ERR_FORMAT, "truncated: the data section would start at byte 64");
    put_hdr(&b, 1, 0), put_str(&b, "t"), put_u32(&b, 4), put_u64(&b, 4), put_u64(&b, 1), put_u64(&b, 1);
    expect_fail(open_buf("tinfotrunc.gguf", &b), SQ_ERR_FORMAT, "truncated: tensor dimension at byte 61");
    /* holes between tensors and zero-sized tensors are fine */
    put_hdr(&b, 2, 0), put_tinfo(&b, "a", 1, ne4, 0, 64), put_tinfo(&b, "z", 1, (const uint64_t[1]){0}, 0, 0);
    put_pad(&b, 32), put_zeros(&b, 96);
    SQ_CHECK_OK(open_buf("hole.gguf", &b));
}

/* A small exported model for truncation and fuzzing. */
static sq_tiny_spec micro_spec(void) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.dim = 16, s.hidden_dim = 32, s.n_layers = 1, s.n_heads = 2, s.n_kv_heads = 1, s.vocab_size = 40;
    s.max_seq_len = 32;
    return s;
}

SQ_TEST(truncated_everywhere) {
    sq_tiny_spec s = micro_spec();
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    const char *full = tp("micro.gguf"), *cut = tp("micro-cut.gguf");
    SQ_CHECK_OK(sq_export_gguf(&a, full, NULL));
    sq_checkpoint_free(&a);
    size_t n;
    uint8_t *d = read_all(full, &n);
    sq_gguf *f = NULL;
    SQ_CHECK(d != NULL);
    SQ_CHECK_OK(sq_gguf_open(&f, full));
    if (!d || !f) return;
    /* the file is valid up to the end of the last tensor's data (not its padding) */
    uint64_t need = 0;
    for (int64_t i = 0; i < sq_gguf_n_tensors(f); i++) {
        const sq_gguf_tensor *t = sq_gguf_tensor_at(f, i);
        if (sq_gguf_data_offset(f) + t->offset + t->nbytes > need) need = sq_gguf_data_offset(f) + t->offset + t->nbytes;
    }
    SQ_CHECK(n % 32 == 0 && need <= n && n - need < 32);
    sq_gguf_close(f);
    int bad = 0, calls = 0;
    for (size_t len = 0; len < n; len++) {
        if (sq_tiny_write_file(cut, d, len)) abort();
        sq_gguf *g = NULL;
        sq_status st = sq_gguf_open(&g, cut);
        sq_gguf_close(g);
        calls++;
        bool want_ok = len >= need;
        if ((st == SQ_OK) != want_ok || (st && (!strstr(sq_last_error(), "micro-cut.gguf") ||
                                                strchr(sq_last_error(), '\n')))) {
            if (bad++ < 3) printf("  cut at %zu: status %d: %s\n", len, st, sq_last_error());
        }
        /* the importer too, at a sample of offsets */
        if (len % 97 == 0 || len + 1 == n) {
            sq_checkpoint c;
            st = sq_import_gguf(cut, &c);
            if ((st == SQ_OK) != want_ok) {
                if (bad++ < 3) printf("  import cut at %zu: status %d: %s\n", len, st, sq_last_error());
            }
            sq_checkpoint_free(&c);
        }
    }
    SQ_CHECKF(bad == 0, "%d of %d truncations misbehaved", bad, calls);
    free(d);
}

SQ_TEST(fuzzed_bytes) {
    sq_tiny_spec s = micro_spec();
    s.bpe = false;
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    const char *full = tp("fuzz.gguf"), *mut = tp("fuzz-mut.gguf");
    SQ_CHECK_OK(sq_export_gguf(&a, full, NULL));
    sq_checkpoint_free(&a);
    size_t n;
    uint8_t *d = read_all(full, &n);
    sq_gguf *f = NULL;
    SQ_CHECK_OK(sq_gguf_open(&f, full));
    if (!d || !f) return;
    size_t header = (size_t)sq_gguf_data_offset(f);
    sq_gguf_close(f);
    uint8_t *m = malloc(n);
    uint64_t rng = 12345;
    int bad = 0, ok = 0;
    const char *env = getenv("SQUISH_GGUF_FUZZ"); /* more iterations on demand */
    const int iters = env && atoi(env) > 0 ? atoi(env) : sq_test_quick() ? 600 : 2000;
    for (int it = 0; it < iters; it++) {
        memcpy(m, d, n);
        int flips = 1 + (int)(sq_tiny_rand(&rng) % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(sq_tiny_rand(&rng) % (it % 4 ? header : n));
            uint64_t r = sq_tiny_rand(&rng);
            m[at] = (r & 0x100) ? (uint8_t)r : (uint8_t)(m[at] ^ (1u << (r % 8))); /* random byte or one bit */
        }
        if (sq_tiny_write_file(mut, m, n)) abort();
        sq_checkpoint c;
        sq_status st = sq_import_gguf(mut, &c);
        if (st == SQ_OK) ok++;
        else if (!strstr(sq_last_error(), "fuzz-mut.gguf") || strchr(sq_last_error(), '\n'))
            if (bad++ < 3) printf("  iteration %d: message '%s'\n", it, sq_last_error());
        sq_checkpoint_free(&c);
    }
    SQ_CHECKF(bad == 0, "%d messages did not name the file on one line (%d of %d imports succeeded)", bad, ok, iters);
    if (env) printf("  %d of %d mutated files imported\n", ok, iters);
    free(m);
    free(d);
}

/* ===== Round trips ===== */

SQ_TEST(roundtrip_types) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.rope_layout = SQ_ROPE_INTERLEAVED; /* the GGUF llama layout: bit-exact, no permutation */
    roundtrip(&s, "rt_f32", NULL);
    s.type = SQ_TYPE_F16, s.seed = 2;
    roundtrip(&s, "rt_f16", NULL);
    s.type = SQ_TYPE_BF16, s.seed = 3;
    roundtrip(&s, "rt_bf16", NULL);
    sq_tiny_spec h = s; /* rotate-half 16-bit matrices: rows of 2-byte elements permuted */
    h.rope_layout = SQ_ROPE_HALF, h.qkv_bias = true, h.seed = 4;
    roundtrip(&h, "rt_bf16_half", NULL);
    h.type = SQ_TYPE_F16;
    roundtrip(&h, "rt_f16_half", NULL);
    /* the file's types: matrices as given, 1-D as F32, general.file_type per llama_ftype */
    static const struct {
        sq_type t;
        uint32_t mat, ftype;
    } cases[] = {{SQ_TYPE_F32, SQ_GGML_F32, 0}, {SQ_TYPE_F16, SQ_GGML_F16, 1}, {SQ_TYPE_BF16, SQ_GGML_BF16, 32}};
    for (int k = 0; k < 3; k++) {
        sq_checkpoint a;
        s.type = cases[k].t;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
        SQ_CHECK_OK(sq_export_gguf(&a, tp("types-check.gguf"), NULL));
        sq_gguf *f = NULL;
        SQ_CHECK_OK(sq_gguf_open(&f, tp("types-check.gguf")));
        int64_t v;
        SQ_CHECK(f && sq_gguf_kv_int(sq_gguf_find_kv(f, "general.file_type"), 0, &v) && v == cases[k].ftype);
        for (int64_t i = 0; f && i < sq_gguf_n_tensors(f); i++) {
            const sq_gguf_tensor *t = sq_gguf_tensor_at(f, i);
            SQ_CHECKF(t->type == (t->n_dims == 1 ? (uint32_t)SQ_GGML_F32 : cases[k].mat), "%s is %s", t->name,
                      sq_ggml_type_name(t->type));
        }
        sq_gguf_close(f);
        sq_checkpoint_free(&a);
    }
}

SQ_TEST(roundtrip_shapes) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.rope_layout = SQ_ROPE_INTERLEAVED;
    s.tied = true;
    roundtrip(&s, "rt_tied", NULL);
    s.tied = false, s.n_kv_heads = 4, s.seed = 5; /* MHA */
    roundtrip(&s, "rt_mha", NULL);
    s.n_kv_heads = 1, s.head_dim = 24, s.seed = 6; /* MQA, head_dim != dim / heads: key_length */
    roundtrip(&s, "rt_headdim", NULL);
    s = sq_tiny_spec_default(), s.rope_layout = SQ_ROPE_INTERLEAVED, s.o_bias = true, s.mlp_bias = true;
    s.qkv_bias = true, s.rope_theta = 5e5f, s.norm_eps = 1e-6f, s.max_seq_len = 300, s.seed = 7;
    roundtrip(&s, "rt_llama_biases", NULL);
    /* a tokenizer shorter than the embedding: padded with llama.cpp's [PADn] in the file */
    s = sq_tiny_spec_default(), s.n_tokens = 400, s.seed = 8;
    roundtrip(&s, "rt_padded", NULL);
    sq_gguf *f = NULL;
    SQ_CHECK_OK(sq_gguf_open(&f, tp("rt_padded.gguf")));
    const sq_gguf_kv *tok = sq_gguf_find_kv(f, "tokenizer.ggml.tokens");
    const char *p;
    uint64_t len;
    SQ_CHECK(tok && tok->n == 512 && sq_gguf_kv_str(tok, 400, &p, &len) && len == 6 && memcmp(p, "[PAD1]", 6) == 0);
    SQ_CHECK(sq_gguf_kv_str(tok, 511, &p, &len) && len == 8 && memcmp(p, "[PAD112]", 8) == 0);
    sq_gguf_close(f);
    /* byte-level BPE vocabulary (merges, pre-tokenizer), also padded */
    s = sq_tiny_spec_default(), s.bpe = true, s.n_tokens = 300, s.tied = true, s.seed = 9;
    roundtrip(&s, "rt_bpe", NULL);
    SQ_CHECK_OK(sq_gguf_open(&f, tp("rt_bpe.gguf")));
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "tokenizer.ggml.model"), "gpt2"));
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "tokenizer.ggml.pre"), "gpt-2"));
    SQ_CHECK(sq_gguf_find_kv(f, "tokenizer.ggml.scores") == NULL);
    tok = sq_gguf_find_kv(f, "tokenizer.ggml.tokens");
    SQ_CHECK(tok && tok->n == 512 && sq_gguf_kv_str(tok, 300, &p, &len) && len == 8 && memcmp(p, "[PAD300]", 8) == 0);
    const sq_gguf_kv *mg = sq_gguf_find_kv(f, "tokenizer.ggml.merges");
    SQ_CHECK(mg && mg->n == 31 && sq_gguf_kv_str(mg, 0, &p, &len) && len == 4 && memcmp(p, "\xC4\xA0 t", 4) == 0);
    sq_gguf_close(f);
    /* RoPE scaling: linear as llama.cpp's keys, llama3 as rope_freqs.weight + squish keys */
    s = sq_tiny_spec_default(), s.rope_layout = SQ_ROPE_INTERLEAVED, s.seed = 10;
    sq_checkpoint a, b, e;
    char why[256] = "";
    for (int kind = 0; kind < 2; kind++) {
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
        if (kind == 0) {
            a.cfg.rope_scaling = SQ_ROPE_SCALING_LINEAR, a.cfg.rope_factor = 4.0f;
        } else {
            a.cfg.rope_scaling = SQ_ROPE_SCALING_LLAMA3, a.cfg.rope_factor = 8.0f;
            a.cfg.rope_low_freq_factor = 1.0f, a.cfg.rope_high_freq_factor = 4.0f, a.cfg.rope_orig_ctx = 64;
        }
        SQ_CHECK_OK(sq_export_gguf(&a, tp("rt_scaling.gguf"), NULL));
        SQ_CHECK_OK(sq_import_gguf(tp("rt_scaling.gguf"), &b));
        SQ_CHECK_OK(expected_after_gguf(&a, &e));
        SQ_CHECKF(sq_tiny_checkpoint_equal(&e, &b, true, why, sizeof why), "scaling %d: %s", kind, why);
        check_same_logits(&a, &b, 1e-5, "scaling");
        SQ_CHECK_OK(sq_gguf_open(&f, tp("rt_scaling.gguf")));
        const sq_gguf_tensor *rf = sq_gguf_find_tensor(f, "rope_freqs.weight");
        if (kind == 0) {
            SQ_CHECK(rf == NULL && sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "llama.rope.scaling.type"), "linear"));
        } else {
            /* divisors: 1 at high frequencies (short wavelengths), the factor at low ones */
            float d0, dl;
            SQ_CHECK(rf && rf->type == SQ_GGML_F32 && rf->ne[0] == 8);
            if (rf) memcpy(&d0, rf->data, 4), memcpy(&dl, rf->data + 28, 4);
            SQ_CHECK(rf && d0 == 1.0f && dl == 8.0f);
        }
        sq_gguf_close(f);
        if (kind == 1) {
            patch_str(tp("rt_scaling.gguf"), "squish.rope.scaling.type", "squish.rope.scaling.typx");
            sq_checkpoint_free(&b);
            expect_fail(sq_import_gguf(tp("rt_scaling.gguf"), &b), SQ_ERR_UNSUPPORTED, "rope_freqs.weight");
        }
        sq_checkpoint_free(&a), sq_checkpoint_free(&b), sq_checkpoint_free(&e);
    }
}

/* ===== The RoPE permutation ===== */

SQ_TEST(permutation_llama) {
    /* a rotate-half (HF) Llama with q/k biases, GQA 4/2: the file holds Meta rows
     * Meta[h*d + 2i + t] = HF[h*d + t*d/2 + i]; the import is interleaved and computes the
     * same logits */
    sq_tiny_spec s = sq_tiny_spec_default();
    s.qkv_bias = true;
    s.arch = "mistral"; /* exported as llama */
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    roundtrip(&s, "perm", &b); /* bit-exact against the permuted expectation, same logits */
    SQ_CHECK(b.cfg.rope_layout == SQ_ROPE_INTERLEAVED && strcmp(b.cfg.arch, "llama") == 0);
    sq_gguf *f = NULL;
    SQ_CHECK_OK(sq_gguf_open(&f, tp("perm.gguf")));
    if (!f) return;
    static const char *const names[4][2] = {
        {"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight"},
        {"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"},
        {"model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias"},
        {"model.layers.0.self_attn.k_proj.bias", "blk.0.attn_k.bias"},
    };
    int32_t d = a.cfg.head_dim;
    for (int k = 0; k < 4; k++) {
        const sq_tensor *hf = sq_checkpoint_find(&a, names[k][0]);
        const sq_gguf_tensor *g = sq_gguf_find_tensor(f, names[k][1]);
        SQ_CHECK(hf && g);
        if (!hf || !g) continue;
        int32_t heads = (int32_t)(hf->shape[0] / d);
        SQ_CHECK(heads == (k % 2 ? a.cfg.n_kv_heads : a.cfg.n_heads));
        size_t row = hf->nbytes / (size_t)hf->shape[0];
        int moved = 0;
        for (int32_t h = 0; h < heads; h++)
            for (int32_t t = 0; t < 2; t++)
                for (int32_t i = 0; i < d / 2; i++) {
                    size_t meta = (size_t)(h * d + 2 * i + t), hfr = (size_t)(h * d + t * d / 2 + i);
                    SQ_CHECK(memcmp(g->data + meta * row, (const uint8_t *)hf->data + hfr * row, row) == 0);
                    moved += meta != hfr;
                }
        SQ_CHECK(moved > 0);
    }
    /* v and o are never permuted */
    const sq_tensor *v = sq_checkpoint_find(&a, "model.layers.0.self_attn.v_proj.weight");
    const sq_gguf_tensor *gv = sq_gguf_find_tensor(f, "blk.0.attn_v.weight");
    SQ_CHECK(v && gv && memcmp(v->data, gv->data, v->nbytes) == 0);
    sq_gguf_close(f);
    /* exporting the interleaved import again gives the same file bytes (no second permutation) */
    SQ_CHECK_OK(sq_export_gguf(&b, tp("perm2.gguf"), &(sq_gguf_export_opts){.name = "perm"}));
    size_t n1, n2;
    uint8_t *d1 = read_all(tp("perm.gguf"), &n1), *d2 = read_all(tp("perm2.gguf"), &n2);
    SQ_CHECK(d1 && d2);
    if (d1 && d2) {
        /* only squish.source_format / squish.source.* differ: compare the tensor data */
        sq_gguf *f1 = NULL, *f2 = NULL;
        SQ_CHECK_OK(sq_gguf_open(&f1, tp("perm.gguf")));
        SQ_CHECK_OK(sq_gguf_open(&f2, tp("perm2.gguf")));
        for (int64_t i = 0; f1 && f2 && i < sq_gguf_n_tensors(f1); i++) {
            const sq_gguf_tensor *x = sq_gguf_tensor_at(f1, i), *y = sq_gguf_tensor_at(f2, i);
            SQ_CHECK(y && strcmp(x->name, y->name) == 0 && x->nbytes == y->nbytes &&
                     memcmp(x->data, y->data, x->nbytes) == 0);
        }
        sq_gguf_close(f1);
        sq_gguf_close(f2);
    }
    free(d1);
    free(d2);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

SQ_TEST(permutation_qwen2) {
    /* qwen2 uses rotate-half RoPE: an HF checkpoint is written as is (bit-exact, biases
     * included) ... */
    sq_tiny_spec s = sq_tiny_spec_default();
    s.arch = "qwen2", s.qkv_bias = true, s.rope_theta = 1e6f, s.norm_eps = 1e-6f, s.tied = true;
    sq_checkpoint a, b;
    char why[256] = "";
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    SQ_CHECK_OK(sq_export_gguf(&a, tp("qwen2.gguf"), NULL));
    SQ_CHECK_OK(sq_import_gguf(tp("qwen2.gguf"), &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "qwen2: %s", why);
    SQ_CHECK(b.cfg.rope_layout == SQ_ROPE_HALF && b.cfg.attn_qkv_bias && b.cfg.tied_embeddings);
    sq_gguf *f = NULL;
    SQ_CHECK_OK(sq_gguf_open(&f, tp("qwen2.gguf")));
    SQ_CHECK(f && sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "general.architecture"), "qwen2"));
    SQ_CHECK(f && sq_gguf_find_kv(f, "qwen2.rope.dimension_count") == NULL);
    SQ_CHECK(f && sq_gguf_find_tensor(f, "output.weight") == NULL);
    SQ_CHECK(f && sq_gguf_find_tensor(f, "blk.1.attn_v.bias") && sq_gguf_find_tensor(f, "blk.1.attn_v.bias")->type == 0);
    sq_gguf_close(f);
    sq_checkpoint_free(&b);
    sq_checkpoint_free(&a);
    /* ... and an interleaved qwen2 checkpoint is permuted the other way, to rotate-half */
    s.rope_layout = SQ_ROPE_INTERLEAVED, s.seed = 11;
    roundtrip(&s, "qwen2_from_interleaved", NULL);
    /* llama.cpp's qwen2 needs q/k/v biases */
    s.qkv_bias = false;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    expect_fail(sq_export_gguf(&a, tp("qwen2-nobias.gguf"), NULL), SQ_ERR_UNSUPPORTED, "needs q/k/v biases");
    SQ_CHECK(access(tp("qwen2-nobias.gguf"), F_OK) != 0);
    sq_checkpoint_free(&a);
}

/* ===== What the exporter writes ===== */

SQ_TEST(export_keys) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.type = SQ_TYPE_F16;
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    SQ_CHECK_OK(sq_checkpoint_add_source(&a, tp("rt_f32.gguf")));
    SQ_CHECK_OK(sq_export_gguf(&a, tp("keys.gguf"), NULL));
    sq_gguf *f = NULL;
    SQ_CHECK_OK(sq_gguf_open(&f, tp("keys.gguf")));
    if (!f) return;
    int64_t v;
    double x;
#define KV(key, ty) const sq_gguf_kv *kv_ = sq_gguf_find_kv(f, key); SQ_CHECKF(kv_ && kv_->type == (ty), "%s", key)
#define U32(key, val) do { KV(key, SQ_GGUF_UINT32); SQ_CHECK(sq_gguf_kv_int(kv_, 0, &v) && v == (val)); } while (0)
#define F32(key, val) do { KV(key, SQ_GGUF_FLOAT32); SQ_CHECK(sq_gguf_kv_float(kv_, 0, &x) && x == (double)(val)); } while (0)
#define BOOL(key, val) do { KV(key, SQ_GGUF_BOOL); SQ_CHECK(sq_gguf_kv_int(kv_, 0, &v) && v == (val)); } while (0)
    SQ_CHECK(strcmp(sq_gguf_kv_at(f, 0)->key, "general.architecture") == 0);
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_kv_at(f, 0), "llama"));
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "general.name"), "keys"));
    U32("general.file_type", 1);
    SQ_CHECK(sq_gguf_find_kv(f, "general.quantization_version") == NULL);
    SQ_CHECK(sq_gguf_find_kv(f, "general.alignment") == NULL && sq_gguf_alignment(f) == 32);
    U32("llama.block_count", 2);
    U32("llama.context_length", 128);
    U32("llama.embedding_length", 64);
    U32("llama.feed_forward_length", 96);
    U32("llama.attention.head_count", 4);
    U32("llama.attention.head_count_kv", 2);
    U32("llama.rope.dimension_count", 16);
    U32("llama.vocab_size", 512);
    F32("llama.rope.freq_base", 10000.0f);
    F32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    SQ_CHECK(sq_gguf_find_kv(f, "llama.attention.key_length") == NULL);
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "tokenizer.ggml.model"), "llama"));
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "tokenizer.ggml.pre"), "default"));
    const sq_gguf_kv *t = sq_gguf_find_kv(f, "tokenizer.ggml.tokens"), *sc = sq_gguf_find_kv(f, "tokenizer.ggml.scores"),
                     *ty = sq_gguf_find_kv(f, "tokenizer.ggml.token_type");
    SQ_CHECK(t && t->elem_type == SQ_GGUF_STRING && t->n == 512);
    SQ_CHECK(sc && sc->elem_type == SQ_GGUF_FLOAT32 && sc->n == 512);
    SQ_CHECK(ty && ty->elem_type == SQ_GGUF_INT32 && ty->n == 512 && sq_gguf_kv_int(ty, 3, &v) && v == 6); /* <0x00> */
    const char *p;
    uint64_t len;
    SQ_CHECK(sq_gguf_kv_str(t, 259, &p, &len) && len == 3 && memcmp(p, "\xE2\x96\x81", 3) == 0); /* "▁" */
    SQ_CHECK(sq_gguf_find_kv(f, "tokenizer.ggml.merges") == NULL);
    U32("tokenizer.ggml.bos_token_id", 1);
    U32("tokenizer.ggml.eos_token_id", 2);
    U32("tokenizer.ggml.unknown_token_id", 0);
    SQ_CHECK(sq_gguf_find_kv(f, "tokenizer.ggml.padding_token_id") == NULL);
    BOOL("tokenizer.ggml.add_bos_token", 1);
    BOOL("tokenizer.ggml.add_eos_token", 0);
    BOOL("tokenizer.ggml.add_space_prefix", 1);
    BOOL("tokenizer.ggml.remove_extra_whitespaces", 0);
    char tool[64];
    snprintf(tool, sizeof tool, "squish %s", sq_version());
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "squish.tool_version"), tool));
    SQ_CHECK(sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "squish.source_format"), "tiny"));
    const sq_gguf_kv *h = sq_gguf_find_kv(f, "squish.source.sha256");
    SQ_CHECK(h && h->n == 1 && sq_gguf_kv_str(h, 0, &p, &len) && len == 64 && memcmp(p, a.sources[0].sha256, 64) == 0);
    SQ_CHECK(sq_gguf_find_kv(f, "squish.source.files") && sq_gguf_find_kv(f, "squish.source.files")->n == 1);
#undef U32
#undef F32
#undef BOOL
#undef KV
    /* tensors: canonical order, GGUF names, reversed shapes, aligned offsets */
    const sq_gguf_tensor *e = sq_gguf_tensor_at(f, 0), *q = sq_gguf_find_tensor(f, "blk.0.attn_q.weight");
    SQ_CHECK(e && strcmp(e->name, "token_embd.weight") == 0 && e->ne[0] == 64 && e->ne[1] == 512 && e->type == 1);
    SQ_CHECK(q && q->n_dims == 2 && q->ne[0] == 64 && q->ne[1] == 64);
    const sq_gguf_tensor *k = sq_gguf_find_tensor(f, "blk.1.attn_k.weight");
    SQ_CHECK(k && k->ne[0] == 64 && k->ne[1] == 32);
    const sq_gguf_tensor *dn = sq_gguf_find_tensor(f, "blk.1.ffn_down.weight");
    SQ_CHECK(dn && dn->ne[0] == 96 && dn->ne[1] == 64);
    SQ_CHECK(strcmp(sq_gguf_tensor_at(f, sq_gguf_n_tensors(f) - 1)->name, "output.weight") == 0);
    SQ_CHECK(sq_gguf_n_tensors(f) == 2 + 2 * 9 + 1);
    for (int64_t i = 0; i < sq_gguf_n_tensors(f); i++) SQ_CHECK(sq_gguf_tensor_at(f, i)->offset % 32 == 0);
    SQ_CHECK(sq_gguf_file_size(f) % 32 == 0);
    sq_gguf_close(f);

    /* deterministic: the same checkpoint gives the same bytes */
    SQ_CHECK_OK(sq_export_gguf(&a, tp("keys2.gguf"), &(sq_gguf_export_opts){.name = "keys"}));
    size_t n1, n2;
    uint8_t *d1 = read_all(tp("keys.gguf"), &n1), *d2 = read_all(tp("keys2.gguf"), &n2);
    SQ_CHECK(d1 && d2 && n1 == n2 && memcmp(d1, d2, n1) == 0);
    free(d1);
    free(d2);
    /* store provenance, when given */
    SQ_CHECK_OK(sq_export_gguf(&a, tp("keys3.gguf"),
                               &(sq_gguf_export_opts){.store_path = "m.h5", .store_sha256 = "abc"}));
    SQ_CHECK_OK(sq_gguf_open(&f, tp("keys3.gguf")));
    SQ_CHECK(f && sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "squish.store"), "m.h5"));
    SQ_CHECK(f && sq_gguf_kv_str_eq(sq_gguf_find_kv(f, "squish.store_sha256"), "abc"));
    sq_gguf_close(f);
    sq_checkpoint_free(&a);
}

/* ===== Writer argument checks ===== */

SQ_TEST(writer_errors) {
    sq_gguf_writer *w = NULL;
    const uint64_t ne[2] = {32, 2};
    uint8_t buf[128] = {0};
    SQ_CHECK_OK(sq_gguf_writer_open(&w, tp("werr.gguf")));
    SQ_CHECK_OK(sq_gguf_writer_add_u32(w, "a", 1));
    expect_fail(sq_gguf_writer_add_u32(w, "a", 2), SQ_ERR_ARG, "metadata key 'a' added twice");
    expect_fail(sq_gguf_writer_add_u32(w, "", 2), SQ_ERR_ARG, "metadata key must have");
    expect_fail(sq_gguf_writer_add_u32(w, "general.alignment", 64), SQ_ERR_ARG, "general.alignment cannot be set");
    expect_fail(sq_gguf_writer_add_tensor(w, "t", SQ_GGML_Q8_0, 2, ne, buf, 60), SQ_ERR_ARG, "the Q8_0 shape needs 68");
    expect_fail(sq_gguf_writer_add_tensor(w, "t", SQ_GGML_Q4_K, 2, ne, buf, 60), SQ_ERR_ARG, "block size 256");
    expect_fail(sq_gguf_writer_add_tensor(w, "t", 4, 2, ne, buf, 60), SQ_ERR_ARG, "unknown ggml type 4");
    expect_fail(sq_gguf_writer_add_tensor(w, "t", 0, 5, ne, buf, 60), SQ_ERR_ARG, "5 dimensions");
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    expect_fail(sq_gguf_writer_add_tensor(w, longname, 0, 1, ne, buf, 128), SQ_ERR_ARG, "must have 1 to 63 bytes");
    SQ_CHECK_OK(sq_gguf_writer_add_tensor(w, "t", SQ_GGML_Q8_0, 2, ne, buf, 68));
    expect_fail(sq_gguf_writer_add_tensor(w, "t", SQ_GGML_Q8_0, 2, ne, buf, 68), SQ_ERR_ARG, "tensor 't' added twice");
    SQ_CHECK_OK(sq_gguf_writer_finish(w));
    expect_fail(sq_gguf_writer_finish(w), SQ_ERR_ARG, "already written");
    sq_gguf_writer_close(w);
    sq_gguf_writer_close(NULL);
    sq_gguf_close(NULL);
    /* a quantized tensor reads back with its block size */
    sq_gguf *f = NULL;
    SQ_CHECK_OK(sq_gguf_open(&f, tp("werr.gguf")));
    SQ_CHECK(f && sq_gguf_find_tensor(f, "t") && sq_gguf_find_tensor(f, "t")->nbytes == 68);
    sq_gguf_close(f);
    /* nothing is left behind when a write fails */
    SQ_CHECK_OK(sq_gguf_writer_open(&w, "/nonexistent-dir/x.gguf"));
    expect_fail(sq_gguf_writer_finish(w), SQ_ERR_IO, "/nonexistent-dir/x.gguf");
    sq_gguf_writer_close(w);
}

/* ===== Refusals ===== */

SQ_TEST(import_refusals) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    const char *p = tp("refuse.gguf");
#define FRESH() SQ_CHECK_OK(sq_export_gguf(&a, p, NULL))
    FRESH();
    patch_tensor_type(p, "blk.0.ffn_down.weight", SQ_GGML_IQ4_NL);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "refuse.gguf: tensor 'blk.0.ffn_down.weight' is IQ4_NL");
    SQ_CHECK(b.n_tensors == 0 && b.tensors == NULL);
    FRESH();
    patch_tensor_type(p, "token_embd.weight", SQ_GGML_Q8_1);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "tensor 'token_embd.weight' is Q8_1");
    /* an importable block type where squish needs floats: a 1-D tensor */
    FRESH();
    patch_tensor_type(p, "blk.0.attn_norm.weight", SQ_GGML_Q8_0);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "1-D tensor 'blk.0.attn_norm.weight' is Q8_0");
    FRESH();
    patch_tensor_type(p, "output.weight", SQ_GGML_I32);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "is I32");
    FRESH();
    patch_str(p, "llama", "gemma"); /* the first "llama" is general.architecture's value */
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "architecture 'gemma' is not supported");
    FRESH();
    patch_str(p, "general.architecture", "general.architecturx");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "required key general.architecture is missing");
    FRESH();
    patch_str(p, "llama.block_count", "llama.blockxcount");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "required key llama.block_count is missing");
    FRESH();
    patch_str(p, "layer_norm_rms_epsilon", "layer_norm_rms_epsilox");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "llama.attention.layer_norm_rms_epsilon is missing");
    FRESH();
    patch_key_u32(p, "llama.rope.dimension_count", 8);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "partial RoPE");
    FRESH();
    patch_key_u32(p, "llama.feed_forward_length", 97);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT,
                "tensor 'blk.0.ffn_gate.weight' has ne [64, 96, 1, 1] but the config implies [64, 97]");
    FRESH();
    patch_key_u32(p, "llama.vocab_size", 500);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "llama.vocab_size = 500 but token_embd.weight has 512 rows");
    FRESH();
    patch_key_u32(p, "llama.attention.head_count_kv", 3);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "not a multiple of 3 KV heads");
    FRESH();
    patch_str(p, "blk.1.attn_v.weight", "blk.1.attn_x.weight");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "missing tensor 'blk.1.attn_v.weight' (ne [64, 32])");
    FRESH();
    patch_key_u32(p, "tokenizer.ggml.eos_token_id", 600);
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "tokenizer.ggml.eos_token_id = 600 is outside the vocabulary");
    FRESH();
    patch_str(p, "tokenizer.ggml.tokens", "tokenizer.ggml.tokenz");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "required key tokenizer.ggml.tokens is missing");
    /* the tokenizer model: the value after the key "tokenizer.ggml.model" */
    FRESH();
    {
        size_t n;
        uint8_t *d = read_all(p, &n);
        long at = find_bytes(d, n, "tokenizer.ggml.model");
        free(d);
        patch_file(p, at + 20 + 4 + 8, "bert!", 5);
    }
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "tokenizer.ggml.model 'bert!' is not supported");
    sq_checkpoint_free(&a);
    /* a byte-level BPE with a pre-tokenizer squish does not implement */
    s.bpe = true;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    FRESH();
    patch_str(p, "gpt-2", "falcn");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "tokenizer.ggml.pre 'falcn' is not a pre-tokenizer");
    FRESH();
    patch_str(p, "tokenizer.ggml.pre", "tokenizer.ggml.prx");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_UNSUPPORTED, "'(missing)'");
    FRESH();
    patch_str(p, "tokenizer.ggml.merges", "tokenizer.ggml.mergex");
    expect_fail(sq_import_gguf(p, &b), SQ_ERR_FORMAT, "needs tokenizer.ggml.merges");
#undef FRESH
    sq_checkpoint_free(&a);
    /* an architecture squish cannot export */
    s = sq_tiny_spec_default();
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    snprintf(a.cfg.arch, sizeof a.cfg.arch, "gpt2");
    expect_fail(sq_export_gguf(&a, tp("gpt2.gguf"), NULL), SQ_ERR_UNSUPPORTED, "architecture 'gpt2' cannot be exported");
    sq_checkpoint_free(&a);
    /* sq_import_any: by extension, and by magic under another name */
    SQ_CHECK_OK(sq_import_any(tp("rt_f32.gguf"), NULL, &b));
    SQ_CHECK(b.source_format && strcmp(b.source_format, "gguf") == 0);
    sq_checkpoint_free(&b);
    SQ_CHECK(link(tp("rt_f32.gguf"), tp("renamed.bin")) == 0);
    SQ_CHECK_OK(sq_import_any(tp("renamed.bin"), NULL, &b));
    SQ_CHECK(b.source_format && strcmp(b.source_format, "gguf") == 0);
    sq_checkpoint_free(&b);
    expect_fail(sq_import_any(tp("missing.gguf"), NULL, &b), SQ_ERR_IO, "missing.gguf");
}

/* ===== Real models ===== */

/* Numbers of a JSON array under "key" (first occurrence). */
static int json_array(const char *json, const char *key, double *out, int max) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p || !(p = strchr(p, '['))) return -1;
    int n = 0;
    p++;
    while (n < max) {
        char *end;
        double v = strtod(p, &end);
        if (end == p) break;
        out[n++] = v;
        p = end;
        while (*p == ',' || *p == ' ' || *p == '\n') p++;
    }
    return n;
}

SQ_TEST(shared_stories260k) {
    const char *bin = sq_test_shared_path("models/stories260K/stories260K.bin");
    const char *refp = sq_test_shared_path("models/stories260K/REFERENCE_OUTPUTS.json");
    if (!bin || !refp) SQ_SKIP("../shared/models/stories260K not found");
    sq_checkpoint c, r;
    char why[256] = "";
    SQ_CHECK_OK(sq_import_any(bin, NULL, &c));
    SQ_CHECK_OK(sq_export_gguf(&c, tp("stories260K.gguf"), NULL));
    SQ_CHECK_OK(sq_import_gguf(tp("stories260K.gguf"), &r));
    /* llama2.c is interleaved and F32 already: everything comes back bit for bit */
    SQ_CHECKF(sq_tiny_checkpoint_equal(&c, &r, true, why, sizeof why), "%s", why);
    char *json = NULL;
    size_t jl;
    double ref8[8];
    SQ_CHECK_OK(sq_read_file(refp, 1 << 20, &json, &jl));
    SQ_CHECK(json && json_array(json, "logits_after_BOS_first8", ref8, 8) == 8);
    int32_t bos = 1;
    float *lg = logits_of(&r, &bos, 1);
    for (int i = 0; lg && i < 8; i++) SQ_CHECK_CLOSE(lg[i], ref8[i], 0, 1e-4);
    free(lg);
    free(json);
    sq_checkpoint_free(&r);
    sq_checkpoint_free(&c);
}

SQ_TEST(shared_gutenberg) {
    const char *dir = sq_test_shared_path("models/gutenberg-7m");
    const char *refp = sq_test_shared_path("models/gutenberg-7m/REFERENCE_OUTPUTS.json");
    if (!dir || !refp) SQ_SKIP("../shared/models/gutenberg-7m not found");
    sq_checkpoint c, r, e;
    char why[256] = "";
    SQ_CHECK_OK(sq_import_hf(dir, &c));
    SQ_CHECK_OK(sq_export_gguf(&c, tp("gutenberg-7m.gguf"), NULL));
    SQ_CHECK_OK(sq_import_gguf(tp("gutenberg-7m.gguf"), &r));
    /* HF layout in, Meta layout in the file and back: q/k permuted, norms F32 */
    SQ_CHECK_OK(expected_after_gguf(&c, &e));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&e, &r, true, why, sizeof why), "%s", why);
    SQ_CHECK(r.cfg.rope_layout == SQ_ROPE_INTERLEAVED && !r.cfg.tied_embeddings && r.cfg.n_kv_heads == 2);
    char *json = NULL;
    size_t jl;
    double pid[16], ref8[8];
    SQ_CHECK_OK(sq_read_file(refp, 1 << 20, &json, &jl));
    int np = json ? json_array(json, "prompt_ids", pid, 16) : 0;
    SQ_CHECK(np == 5 && json_array(json, "logits_after_prompt_first8", ref8, 8) == 8);
    /* the tokenizer read from GGUF gives the reference prompt ids */
    sq_tokenizer *tok = NULL;
    int32_t *ids = NULL, n = 0;
    SQ_CHECK_OK(sq_tokenizer_init(&tok, &r.vocab));
    if (tok) SQ_CHECK_OK(sq_tokenizer_encode(tok, "Once upon a time", 16, true, false, &ids, &n));
    SQ_CHECK(n == np);
    for (int i = 0; i < n && i < np; i++) SQ_CHECK(ids[i] == (int32_t)pid[i]);
    if (n == np && n > 0) {
        const int32_t V = r.cfg.vocab_size;
        float *lr = logits_of(&r, ids, n), *lc = logits_of(&c, ids, n);
        SQ_CHECK(lr && lc);
        if (lr && lc) {
            const float *last = lr + (size_t)(n - 1) * V;
            for (int i = 0; i < 8; i++) SQ_CHECK_CLOSE(last[i], ref8[i], 0, 2e-4);
            int32_t best = 0;
            for (int32_t i = 1; i < V; i++)
                if (last[i] > last[best]) best = i;
            SQ_CHECK(best == 3906);
            double d = 0, sc = 0;
            for (int64_t i = 0; i < (int64_t)n * V; i++) {
                d = fmax(d, fabs((double)lr[i] - lc[i]));
                sc = fmax(sc, fabs((double)lc[i]));
            }
            SQ_CHECKF(d <= 1e-5 * fmax(sc, 1.0), "GGUF vs HF logits differ by %.3g (scale %.3g)", d, sc);
        }
        free(lr);
        free(lc);
    }
    free(ids);
    sq_tokenizer_free(tok);
    free(json);
    sq_checkpoint_free(&e);
    sq_checkpoint_free(&r);
    sq_checkpoint_free(&c);
}

/* ===== Quantized tensors (docs/gguf.md "Quantized tensors") ===== */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* ggml's legacy blocks decoded by FORMATS.md 6.4's formulas (Q5: qh bit j = bit 4 of weight
 * j, ggml-common.h), written here independently of core/gguf_quant.c: the reference the
 * exporter's bytes are checked against. y receives 32 weights. */
static void ref_block(uint32_t gt, const uint8_t *b, float *y) {
    const float d = sq_f16_to_f32(le16(b));
    const bool has_m = gt == SQ_GGML_Q4_1 || gt == SQ_GGML_Q5_1, five = gt == SQ_GGML_Q5_0 || gt == SQ_GGML_Q5_1;
    const float m = has_m ? sq_f16_to_f32(le16(b + 2)) : 0.0f;
    const uint8_t *p = b + (has_m ? 4 : 2);
    if (gt == SQ_GGML_Q8_0) {
        for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)p[j];
        return;
    }
    uint32_t qh = 0;
    if (five) {
        qh = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        p += 4;
    }
    for (int j = 0; j < 16; j++) {
        int lo = p[j] & 15, hi = p[j] >> 4;
        if (five) {
            lo |= (int)((qh >> j) & 1) << 4;
            hi |= (int)((qh >> (j + 16)) & 1) << 4;
        }
        if (has_m) {
            float a = (float)lo * d, c = (float)hi * d; /* ggml: x*d + m */
            y[j] = a + m;
            y[j + 16] = c + m;
        } else {
            const int off = five ? 16 : 8;
            y[j] = d * (float)(lo - off);
            y[j + 16] = d * (float)(hi - off);
        }
    }
}

/* The rows x cols weights of a GGUF matrix: legacy blocks by ref_block, F16/F32 as stored. */
static float *gguf_weights(const sq_gguf_tensor *t) {
    const int64_t cols = (int64_t)t->ne[0], rows = (int64_t)t->ne[1];
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    const sq_ggml_type_info *ti = sq_ggml_type_info_get(t->type);
    if (!w || !ti) abort();
    for (int64_t i = 0; i < rows * cols; i += ti->block) {
        const uint8_t *b = t->data + (size_t)(i / ti->block) * (size_t)ti->block_bytes;
        if (t->type == SQ_GGML_F32) memcpy(&w[i], b, 4);
        else if (t->type == SQ_GGML_F16) w[i] = sq_f16_to_f32(le16(b));
        else ref_block(t->type, b, &w[i]);
    }
    return w;
}

/* The weights of a checkpoint matrix as floats (sq_qrow_dequant for quantized ones). */
static float *ck_weights(const sq_tensor *t) {
    const int64_t rows = t->shape[0], cols = t->shape[1];
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    if (!w) abort();
    const size_t rb = t->nbytes / (size_t)rows;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
        if (sq_type_is_quant(t->type)) sq_qrow_dequant(t->type, t->q, cols, row, w + r * cols);
        else if (sq_convert_rows(w + r * cols, SQ_TYPE_F32, row, t->type, cols)) abort();
    }
    return w;
}

/* Half an fp16 ulp of v: how far fp16(v) may be from v. */
static double half_ulp16(double v) {
    int e;
    frexp(fabs(v), &e);
    return ldexp(1.0, (e - 1 < -14 ? -14 : e - 1) - 10) / 2;
}

SQ_TEST(quantized_export_import) {
    static const struct {
        sq_type t;
        int32_t group; /* 0 = one group per row */
        bool asym;
        uint32_t gt, ftype;
        sq_type back; /* what the import gives */
    } cases[] = {
        {SQ_TYPE_Q4G, 128, false, SQ_GGML_Q4_0, 2, SQ_TYPE_Q4G}, {SQ_TYPE_Q4G, 32, true, SQ_GGML_Q4_1, 3, SQ_TYPE_F32},
        {SQ_TYPE_Q5G, 64, false, SQ_GGML_Q5_0, 8, SQ_TYPE_Q5G},  {SQ_TYPE_Q5G, 0, true, SQ_GGML_Q5_1, 9, SQ_TYPE_F32},
        {SQ_TYPE_Q8G, 128, false, SQ_GGML_Q8_0, 7, SQ_TYPE_Q8G}, {SQ_TYPE_Q3G, 64, true, SQ_GGML_Q8_0, 7, SQ_TYPE_Q8G},
        {SQ_TYPE_Q6G, 32, false, SQ_GGML_Q8_0, 7, SQ_TYPE_Q8G},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sq_tiny_spec s = sq_tiny_spec_default();
        s.rope_layout = SQ_ROPE_INTERLEAVED; /* no q/k permutation: rows compare one to one */
        s.seed = 40 + k;
        sq_checkpoint a, b;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
        SQ_CHECK_OK(sq_tinyq_checkpoint(&a, cases[k].t, (sq_qparams){cases[k].group ? cases[k].group : 1 << 20,
                                                                      cases[k].asym}, true));
        char name[32];
        snprintf(name, sizeof name, "q%zu.gguf", k);
        sq_gguf_export_stats st;
        SQ_CHECK_OK(sq_export_gguf(&a, tp(name), &(sq_gguf_export_opts){.stats = &st}));
        sq_gguf *f = NULL;
        SQ_CHECK_OK(sq_gguf_open(&f, tp(name)));
        if (!f) return;
        int64_t v = -1;
        SQ_CHECKF(sq_gguf_kv_int(sq_gguf_find_kv(f, "general.file_type"), 0, &v) && v == cases[k].ftype,
                  "case %zu: file_type %lld", k, (long long)v);
        SQ_CHECK(sq_gguf_kv_int(sq_gguf_find_kv(f, "general.quantization_version"), 0, &v) && v == 2);
        int32_t n_mat = 0;
        bool bound_ok = true;
        for (int64_t i = 0; i < sq_gguf_n_tensors(f); i++) {
            const sq_gguf_tensor *t = sq_gguf_tensor_at(f, i);
            if (t->n_dims != 2) continue;
            n_mat++;
            SQ_CHECKF(t->type == cases[k].gt, "case %zu: %s is %s", k, t->name, sq_ggml_type_name(t->type));
        }
        SQ_CHECK_OK(sq_import_gguf(tp(name), &b));
        SQ_CHECK(st.n_from_quant == n_mat && st.matrices[cases[k].gt] == n_mat);
        const bool exact = !cases[k].asym || (cases[k].t != SQ_TYPE_Q4G && cases[k].t != SQ_TYPE_Q5G);
        SQ_CHECKF(exact ? st.max_abs_err == 0.0 : st.max_abs_err > 0.0, "case %zu: max_abs_err %g", k, st.max_abs_err);
        for (int32_t i = 0; i < a.n_tensors; i++) {
            const sq_tensor *x = &a.tensors[i], *y = sq_checkpoint_find(&b, x->name);
            SQ_CHECK(y != NULL);
            if (!y || x->n_dims != 2) continue;
            SQ_CHECKF(y->type == cases[k].back && (y->type == SQ_TYPE_F32 || (y->q.group == 32 && !y->q.asym)),
                      "case %zu: %s imported as %s g%d", k, x->name, sq_type_name(y->type), y->q.group);
            const int64_t n = x->shape[0] * x->shape[1];
            float *wa = ck_weights(x), *wb = ck_weights(y);
            /* the GGUF bytes, decoded by the reference above, give the imported weights exactly */
            const sq_gguf_tensor *gtn = NULL;
            for (int64_t j = 0; j < sq_gguf_n_tensors(f); j++) {
                const sq_gguf_tensor *t = sq_gguf_tensor_at(f, j);
                if (t->n_dims == 2 && t->ne[0] == (uint64_t)x->shape[1] && t->ne[1] == (uint64_t)x->shape[0]) {
                    float *wg = gguf_weights(t);
                    if (memcmp(wg, wb, sizeof(float) * (size_t)n) == 0) gtn = t;
                    free(wg);
                }
            }
            SQ_CHECKF(gtn != NULL, "case %zu: %s: no GGUF tensor decodes to the imported weights", k, x->name);
            /* and squish's own weights: bit-exact, except Q4_1/Q5_1's fp16 offsets */
            const int64_t cols = x->shape[1], G = x->q.group >= cols ? cols : x->q.group;
            const size_t rb = x->nbytes / (size_t)x->shape[0];
            uint8_t *codes = malloc((size_t)cols), *zeros = malloc((size_t)cols);
            float *sc = malloc(sizeof(float) * (size_t)cols);
            for (int64_t r = 0; r < x->shape[0]; r++) {
                sq_qrow_unpack(x->type, x->q, cols, (const uint8_t *)x->data + (size_t)r * rb, codes, sc, zeros);
                for (int64_t c = 0; c < cols; c++) {
                    const int64_t g = c / G;
                    double d = fabs((double)wa[r * cols + c] - (double)wb[r * cols + c]);
                    double lim = exact ? 0.0 : half_ulp16((double)sc[g] * zeros[g]) * 1.0000001;
                    if (d > lim) bound_ok = false;
                }
            }
            free(codes);
            free(zeros);
            free(sc);
            free(wa);
            free(wb);
        }
        SQ_CHECKF(bound_ok, "case %zu: a weight moved more than half an fp16 ulp of s*z", k);
        if (k == 0 || k == 1) { /* hostile: a non-finite d (Q4_0) or m (Q4_1) is refused naming the tensor */
            long off = -1;
            for (int64_t j = 0; j < sq_gguf_n_tensors(f); j++) {
                const sq_gguf_tensor *t = sq_gguf_tensor_at(f, j);
                if (!strcmp(t->name, "blk.1.attn_k.weight"))
                    off = (long)(sq_gguf_data_offset(f) + t->offset + 34 * (k == 0 ? 18 : 20)) + 2 * (long)k;
            }
            sq_gguf_close(f);
            f = NULL;
            const uint8_t nan16[2] = {0x00, 0x7E};
            patch_file(tp(name), off, nan16, 2);
            sq_checkpoint c;
            expect_fail(sq_import_gguf(tp(name), &c), SQ_ERR_FORMAT, "tensor 'blk.1.attn_k.weight' row 17 block 0");
        }
        sq_gguf_close(f);
        sq_checkpoint_free(&a);
        sq_checkpoint_free(&b);
    }
}

/* A rotate-half (Hugging Face) quantized model: the exporter permutes q/k block rows to
 * llama's interleaved layout, and the imported GGUF computes the same logits. */
SQ_TEST(quantized_permutation) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.rope_layout = SQ_ROPE_HALF;
    s.seed = 77;
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    SQ_CHECK_OK(sq_tinyq_checkpoint(&a, SQ_TYPE_Q4G, (sq_qparams){32, false}, true));
    SQ_CHECK_OK(sq_export_gguf(&a, tp("qperm.gguf"), NULL));
    SQ_CHECK_OK(sq_import_gguf(tp("qperm.gguf"), &b));
    SQ_CHECK(b.cfg.rope_layout == SQ_ROPE_INTERLEAVED);
    check_same_logits(&a, &b, 1e-5, "quantized permutation");
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

/* Rows that are not whole 32-weight blocks (down_proj with hidden 80) go out as F16 when every
 * weight is an fp16 value (q4g with power-of-two scales), else F32 (q8g), exactly. */
SQ_TEST(quantized_ragged_rows) {
    for (int k = 0; k < 2; k++) {
        sq_tiny_spec s = sq_tiny_spec_default();
        s.rope_layout = SQ_ROPE_INTERLEAVED;
        s.hidden_dim = 80;
        sq_checkpoint a, b;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
        SQ_CHECK_OK(sq_tinyq_checkpoint(&a, k ? SQ_TYPE_Q8G : SQ_TYPE_Q4G, (sq_qparams){32, false}, true));
        for (int32_t i = 0; k == 0 && i < a.n_tensors; i++) { /* q4g: power-of-two scales, fp16 weights */
            sq_tensor *x = &a.tensors[i];
            if (!strstr(x->name, "down_proj")) continue;
            const int64_t cols = x->shape[1];
            const size_t rb = x->nbytes / (size_t)x->shape[0];
            uint8_t codes[80];
            float sc[3] = {0.0625f, 0.125f, 0.25f};
            for (int64_t r = 0; r < x->shape[0]; r++) {
                uint8_t *row = (uint8_t *)x->data + (size_t)r * rb;
                sq_qrow_unpack(x->type, x->q, cols, row, codes, NULL, NULL);
                SQ_CHECK_OK(sq_qrow_pack(x->type, x->q, cols, codes, sc, NULL, row));
            }
        }
        SQ_CHECK_OK(sq_export_gguf(&a, tp("ragged.gguf"), NULL));
        sq_gguf *f = NULL;
        SQ_CHECK_OK(sq_gguf_open(&f, tp("ragged.gguf")));
        for (int64_t i = 0; f && i < sq_gguf_n_tensors(f); i++) {
            const sq_gguf_tensor *t = sq_gguf_tensor_at(f, i);
            if (strstr(t->name, "ffn_down"))
                SQ_CHECKF(t->type == (k ? (uint32_t)SQ_GGML_F32 : (uint32_t)SQ_GGML_F16), "%s is %s", t->name,
                          sq_ggml_type_name(t->type));
        }
        sq_gguf_close(f);
        SQ_CHECK_OK(sq_import_gguf(tp("ragged.gguf"), &b));
        for (int32_t i = 0; i < a.n_tensors; i++) {
            const sq_tensor *x = &a.tensors[i], *y = sq_checkpoint_find(&b, x->name);
            if (!y || x->n_dims != 2) continue;
            float *wa = ck_weights(x), *wb = ck_weights(y);
            SQ_CHECKF(!memcmp(wa, wb, sizeof(float) * (size_t)(x->shape[0] * x->shape[1])), "%s differs", x->name);
            free(wa);
            free(wb);
        }
        sq_checkpoint_free(&a);
        sq_checkpoint_free(&b);
    }
}

/* K-quant super-blocks decoded to floats: random blocks (finite scales) against the formulas
 * of FORMATS.md 6.4 (Q4_K) and ggml's dequantize_row_q5_K/q6_K, written out here per weight. */
static float kref(uint32_t gt, const uint8_t *b, int i) {
    if (gt == SQ_GGML_Q6_K) {
        const int half = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
        const uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
        const int8_t *sc = (const int8_t *)(b + 192) + 8 * half;
        const int lowbits = quarter == 0 ? ql[l] & 15 : quarter == 1 ? ql[l + 32] & 15 : quarter == 2 ? ql[l] >> 4
                                                                                                       : ql[l + 32] >> 4;
        const int q = (lowbits | ((qh[l] >> (2 * quarter)) & 3) << 4) - 32;
        return sq_f16_to_f32(le16(b + 208)) * (float)sc[l / 16 + 2 * quarter] * (float)q;
    }
    const int sub = i / 32, l = i % 32, c = sub / 2; /* sub-block 0..7, its 32 weights */
    const uint8_t *sc = b + 4;
    int scale, min;
    if (sub < 4) scale = sc[sub] & 63, min = sc[sub + 4] & 63;
    else scale = (sc[sub + 4] & 15) | (sc[sub - 4] >> 6) << 4, min = (sc[sub + 4] >> 4) | (sc[sub] >> 6) << 4;
    const uint8_t *qs = b + (gt == SQ_GGML_Q5_K ? 48 : 16) + 32 * c;
    int q = sub % 2 ? qs[l] >> 4 : qs[l] & 15;
    if (gt == SQ_GGML_Q5_K) q += (b[16 + l] >> sub & 1) << 4;
    const float d1 = sq_f16_to_f32(le16(b)) * (float)scale, m1 = sq_f16_to_f32(le16(b + 2)) * (float)min;
    return d1 * (float)q - m1;
}

SQ_TEST(kquant_import) {
    static const uint32_t types[3] = {SQ_GGML_Q4_K, SQ_GGML_Q5_K, SQ_GGML_Q6_K};
    uint64_t rng = 12345;
    for (int k = 0; k < 3; k++) {
        const uint32_t gt = types[k];
        const int64_t rows = 3, cols = 512;
        const size_t bb = (size_t)sq_ggml_type_info_get(gt)->block_bytes, n = (size_t)rows * 2 * bb;
        uint8_t *src = malloc(n);
        for (size_t i = 0; i < n; i++) src[i] = (uint8_t)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 56);
        for (size_t blk = 0; blk < (size_t)rows * 2; blk++) { /* finite fp16 scales in [2^-8, 2^-1) */
            uint8_t *b = src + blk * bb;
            for (int h = 0; h < 2; h++) {
                uint8_t *d = gt == SQ_GGML_Q6_K ? b + 208 : b + 2 * h;
                d[1] = (uint8_t)((d[1] & 0x83) | 0x18 | (uint8_t)(h << 2));
                if (gt == SQ_GGML_Q6_K) break;
            }
        }
        sq_tensor x = {0};
        x.n_dims = 2;
        x.shape[0] = rows;
        x.shape[1] = cols;
        SQ_CHECK_OK(sq_gguf_decode_qtensor("k.gguf", "w", gt, src, rows, cols, &x));
        SQ_CHECK(x.type == SQ_TYPE_F32 && x.nbytes == (size_t)(rows * cols) * 4);
        int bad = 0;
        for (int64_t r = 0; r < rows && x.data; r++)
            for (int64_t i = 0; i < cols; i++) {
                float want = kref(gt, src + (size_t)(r * 2 + i / 256) * bb, (int)(i % 256));
                float got = ((const float *)x.data)[r * cols + i];
                if (memcmp(&want, &got, 4)) bad++;
            }
        SQ_CHECKF(bad == 0, "%s: %d weights differ from the reference", sq_ggml_type_name(gt), bad);
        sq_tensor_release(&x);
        /* a non-finite super-block scale is refused naming the tensor */
        uint8_t *d = gt == SQ_GGML_Q6_K ? src + bb + 208 : src + bb;
        d[0] = 0x00, d[1] = 0x7C; /* +inf in row 0's second super-block */
        sq_tensor y = {0};
        expect_fail(sq_gguf_decode_qtensor("k.gguf", "w", gt, src, rows, cols, &y), SQ_ERR_FORMAT,
                    "k.gguf: tensor 'w' row 0: a super-block scale is not finite");
        sq_tensor_release(&y);
        free(src);
    }
}

int main(void) {
    SQ_RUN(byte_layout);
    SQ_RUN(reader_value_types);
    SQ_RUN(reader_hostile);
    SQ_RUN(writer_errors);
    SQ_RUN(roundtrip_types);
    SQ_RUN(roundtrip_shapes);
    SQ_RUN(permutation_llama);
    SQ_RUN(permutation_qwen2);
    SQ_RUN(export_keys);
    SQ_RUN(import_refusals);
    SQ_RUN(quantized_export_import);
    SQ_RUN(quantized_ragged_rows);
    SQ_RUN(quantized_permutation);
    SQ_RUN(kquant_import);
    SQ_RUN(truncated_everywhere);
    SQ_RUN(fuzzed_bytes);
    SQ_RUN(shared_stories260k);
    SQ_RUN(shared_gutenberg);
    return sq_test_summary();
}
