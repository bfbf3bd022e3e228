/* test_sqz.c - the runnable file (docs/sqz-format.md): written and read back, every tensor,
 * config field and vocabulary entry is bit-identical (float and group-quantized tensors,
 * whose group and zero-point mode survive too); the layout facts the spec promises hold
 * (magic, version, 64-byte aligned tensors, checksum over everything but itself); version
 * 1 files stay readable; and every check the reader makes rejects a file that breaks it,
 * hostile quantization parameters included, with a one-line message naming the file,
 * never a crash (also under AddressSanitizer).
 */
#include "../runtime/sqz.h"
#include "test.h"
#include "tinymodel.h"
#include "tinyquant.h"

static char path_buf[512];
static const char *tmp_path(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", sq_test_tmpdir(), name);
    return path_buf;
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Recomputes the checksum of an edited file image, so structural checks are reached. */
static void reseal(uint8_t *d, size_t n) {
    sq_xxh64_state h;
    sq_xxh64_init(&h, 0);
    sq_xxh64_update(&h, d, 120);
    sq_xxh64_update(&h, d + 128, n - 128);
    wr64(d + 120, sq_xxh64_digest(&h));
}

/* Opening `img` must fail with `want`, naming the file. */
static void expect_reject(const char *what, const uint8_t *img, size_t n, sq_status want) {
    const char *p = tmp_path("bad.sqz");
    sq_tiny_write_file(p, img, n);
    sq_sqz *f = NULL;
    sq_status st = sq_sqz_open(&f, p, true);
    SQ_CHECKF(st == want, "%s: got status %d (%s), want %d", what, (int)st, sq_last_error(), (int)want);
    SQ_CHECKF(strstr(sq_last_error(), "bad.sqz") != NULL && !strchr(sq_last_error(), '\n'),
              "%s: message '%s'", what, sq_last_error());
    sq_sqz_close(f);
}

SQ_TEST(round_trip_bit_exact) {
    const sq_type types[3] = {SQ_TYPE_F32, SQ_TYPE_F16, SQ_TYPE_BF16};
    for (int k = 0; k < 3; k++) {
        sq_tiny_spec s = sq_tiny_spec_default();
        s.type = types[k];
        s.qkv_bias = k == 1;
        s.tied = k == 2;
        s.rope_layout = k == 2 ? SQ_ROPE_INTERLEAVED : SQ_ROPE_HALF;
        sq_checkpoint c;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
        c.cfg.rope_scaling = SQ_ROPE_SCALING_LLAMA3;
        c.cfg.rope_factor = 8, c.cfg.rope_low_freq_factor = 1, c.cfg.rope_high_freq_factor = 4, c.cfg.rope_orig_ctx = 64;
        sq_kv meta[2] = {{"provenance.tool", "test"}, {"provenance.note", "ünïcode ✓"}};
        const char *p = tmp_path("rt.sqz");
        SQ_CHECK_OK(sq_sqz_write(p, &c.cfg, &c.vocab, c.tensors, c.n_tensors, meta, 2));
        sq_sqz *f = NULL;
        SQ_CHECK_OK(sq_sqz_open(&f, p, true));
        if (!f) continue;
        char why[256] = "";
        SQ_CHECKF(sq_tiny_config_equal(sq_sqz_config(f), &c.cfg, why, sizeof why), "%s", why);
        SQ_CHECKF(sq_tiny_vocab_equal(sq_sqz_vocab(f), &c.vocab, why, sizeof why), "%s", why);
        SQ_CHECK(sq_vocab_hash(sq_sqz_vocab(f)) == sq_vocab_hash(&c.vocab));
        SQ_CHECK(sq_sqz_n_tensors(f) == c.n_tensors);
        for (int32_t i = 0; i < c.n_tensors; i++) {
            const sq_tensor *t = sq_sqz_find(f, c.tensors[i].name);
            SQ_CHECK(t != NULL);
            if (!t) continue;
            SQ_CHECK(t->type == c.tensors[i].type && t->n_dims == c.tensors[i].n_dims);
            SQ_CHECK(memcmp(t->shape, c.tensors[i].shape, sizeof t->shape[0] * (size_t)t->n_dims) == 0);
            SQ_CHECK(t->nbytes == c.tensors[i].nbytes && memcmp(t->data, c.tensors[i].data, t->nbytes) == 0);
            SQ_CHECK(((uintptr_t)t->data % SQ_SQZ_ALIGN) == 0);
        }
        SQ_CHECK(strcmp(sq_sqz_meta(f, "provenance.note"), "ünïcode ✓") == 0);
        SQ_CHECK(sq_sqz_meta(f, "provenance.absent") == NULL);
        SQ_CHECK(sq_sqz_n_meta(f) == 2);
        sq_sqz_close(f);

        /* the same input gives the same bytes */
        char *a, *b;
        size_t na, nb;
        SQ_CHECK_OK(sq_read_file(p, 1 << 26, &a, &na));
        SQ_CHECK_OK(sq_sqz_write(tmp_path("rt2.sqz"), &c.cfg, &c.vocab, c.tensors, c.n_tensors, meta, 2));
        SQ_CHECK_OK(sq_read_file(tmp_path("rt2.sqz"), 1 << 26, &b, &nb));
        SQ_CHECK(na == nb && memcmp(a, b, na) == 0);
        /* layout promised by the spec */
        const uint8_t *d = (const uint8_t *)a;
        SQ_CHECK(memcmp(d, "SQUISHRF", 8) == 0);
        SQ_CHECK(rd64(d + 16) == na);
        SQ_CHECK(rd64(d + 24) == 128 && rd64(d + 56) % 64 == 0);
        SQ_CHECK(rd64(d + 120) == (reseal((uint8_t *)a, na), rd64(d + 120)));
        free(a);
        free(b);
        sq_checkpoint_free(&c);
    }
}

SQ_TEST(hostile_files_rejected) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    const char *p = tmp_path("good.sqz");
    SQ_CHECK_OK(sq_sqz_write(p, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0));
    char *raw;
    size_t n;
    SQ_CHECK_OK(sq_read_file(p, 1 << 26, &raw, &n));
    uint8_t *img = malloc(n), *d = (uint8_t *)raw;
    const uint64_t meta_size = rd64(d + 32), index_off = rd64(d + 40), data_off = rd64(d + 56);

#define EDIT(what, want, stmt)                                                                                   \
    do {                                                                                                         \
        memcpy(img, d, n);                                                                                       \
        stmt;                                                                                                    \
        expect_reject(what, img, n, want);                                                                       \
    } while (0)
#define EDIT_SEALED(what, want, stmt) EDIT(what, want, stmt; reseal(img, n))

    EDIT("flipped data byte", SQ_ERR_CHECKSUM, img[n - 3] ^= 1);
    EDIT("flipped header byte", SQ_ERR_CHECKSUM, img[13] ^= 1);
    EDIT("bad magic", SQ_ERR_FORMAT, img[0] = 'X');
    EDIT("future version", SQ_ERR_UNSUPPORTED, img[8] = 99);
    EDIT_SEALED("file size mismatch", SQ_ERR_FORMAT, wr64(img + 16, n + 64));
    EDIT_SEALED("meta past end", SQ_ERR_FORMAT, wr64(img + 32, n));
    EDIT_SEALED("index offset inconsistent", SQ_ERR_FORMAT, wr64(img + 40, index_off + 8));
    EDIT_SEALED("data offset unaligned", SQ_ERR_FORMAT, wr64(img + 56, data_off + 4));
    EDIT_SEALED("reserved byte set", SQ_ERR_FORMAT, img[80] = 1);
    EDIT_SEALED("huge metadata count", SQ_ERR_FORMAT, wr64(img + 128, 0xFFFFFFFFull));
    EDIT_SEALED("huge tensor count", SQ_ERR_FORMAT, img[12] = 0xFF; img[13] = 0xFF; img[14] = 0xFF);
    /* first index entry: u16 name_len, name, u32 type, u32 group, u32 flags, u32 n_dims, u64 dims[],
     * u64 offset, u64 nbytes */
    uint8_t *e = img + index_off;
    const uint16_t nl = (uint16_t)(d[index_off] | (d[index_off + 1] << 8));
    const size_t type_at = index_off + 2 + nl, group_at = type_at + 4, flags_at = type_at + 8;
    const size_t nd_at = type_at + 12, dims_at = nd_at + 4;
    const uint32_t nd = (uint32_t)d[nd_at];
    const size_t off_at = dims_at + 8 * nd, nb_at = off_at + 8;
    (void)e;
    EDIT_SEALED("unknown tensor type", SQ_ERR_FORMAT, img[type_at] = 77);
    EDIT_SEALED("group size on a float tensor", SQ_ERR_FORMAT, img[group_at] = 32);
    EDIT_SEALED("asymmetric float tensor", SQ_ERR_FORMAT, img[flags_at] = 1);
    EDIT_SEALED("ACT8 float tensor", SQ_ERR_FORMAT, img[flags_at] = 2);
    EDIT_SEALED("unknown flags", SQ_ERR_FORMAT, img[flags_at + 3] = 0x80);
    EDIT_SEALED("zero dims", SQ_ERR_FORMAT, img[nd_at] = 0);
    EDIT_SEALED("five dims", SQ_ERR_FORMAT, img[nd_at] = 5);
    EDIT_SEALED("shape disagrees with size", SQ_ERR_FORMAT, wr64(img + dims_at, rd64(d + dims_at) + 1));
    EDIT_SEALED("overflowing shape", SQ_ERR_FORMAT, wr64(img + dims_at, 1ull << 62));
    /* found by tests/fuzz/fuzz_readers.py (sqzq-run): two dimensions that each pass the
     * per-dimension bound but whose product overflows int64 (UBSan: signed overflow in
     * sq_tensor_numel while deciding whether a zero byte size is an empty tensor) */
    EDIT_SEALED("shape product overflows int64", SQ_ERR_FORMAT,
                wr64(img + dims_at, 1ull << 61); wr64(img + dims_at + 8, 1ull << 61));
    EDIT_SEALED("offset past end", SQ_ERR_FORMAT, wr64(img + off_at, n));
    EDIT_SEALED("offset unaligned", SQ_ERR_FORMAT, wr64(img + off_at, 8));
    EDIT_SEALED("nbytes too large", SQ_ERR_FORMAT, wr64(img + nb_at, ~0ull));
    EDIT_SEALED("name with NUL", SQ_ERR_FORMAT, img[index_off + 3] = 0);
    /* the second tensor made to overlap the first */
    {
        const size_t second = nb_at + 8;
        const uint16_t nl2 = (uint16_t)(d[second] | (d[second + 1] << 8));
        const size_t nd2 = second + 2 + nl2 + 12;
        const size_t off2 = nd2 + 4 + 8 * (size_t)d[nd2];
        EDIT_SEALED("overlapping tensors", SQ_ERR_FORMAT, wr64(img + off2, rd64(d + off_at)));
        /* duplicate name: copy the first name over the second (same length needed) */
        if (nl2 == nl)
            EDIT_SEALED("duplicate tensor name", SQ_ERR_FORMAT, memcpy(img + second + 2, d + index_off + 2, nl));
    }
    /* metadata: first entry is config.arch (string); change its kind */
    {
        const size_t kind_at = 128 + 4 + 2 + strlen("config.arch");
        EDIT_SEALED("unknown metadata kind", SQ_ERR_FORMAT, img[kind_at] = 42);
        /* found by tests/fuzz/fuzz_readers.py (sqz-eval): a key holding a newline was echoed
         * into the error, which then spanned two lines */
        EDIT_SEALED("key with a newline in an error", SQ_ERR_FORMAT, img[kind_at] = 42; img[kind_at - 3] = '\n');
        EDIT_SEALED("string longer than section", SQ_ERR_FORMAT, wr64(img + kind_at + 1, 0xFFFFFFFF));
    }
    (void)meta_size;
    /* truncation at every section boundary and in the middle of each */
    const size_t cuts[] = {0, 7, 64, 127, 128, 129, (size_t)index_off, (size_t)index_off + 3, (size_t)data_off,
                           (size_t)data_off + 1, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) expect_reject("truncated", d, cuts[i], SQ_ERR_FORMAT);
    /* a directory and a missing file */
    sq_sqz *f = NULL;
    SQ_CHECK(sq_sqz_open(&f, sq_test_tmpdir(), true) == SQ_ERR_IO);
    SQ_CHECK(sq_sqz_open(&f, tmp_path("missing.sqz"), true) == SQ_ERR_IO);
    /* random garbage of many sizes never crashes */
    uint64_t r = 5;
    for (int i = 0; i < 200; i++) {
        memcpy(img, d, n);
        for (int k = 0; k < 4; k++) img[sq_tiny_rand(&r) % n] = (uint8_t)sq_tiny_rand(&r);
        reseal(img, n);
        const char *bp = tmp_path("fuzz.sqz");
        sq_tiny_write_file(bp, img, n);
        if (sq_sqz_open(&f, bp, true) == SQ_OK) sq_sqz_close(f);
    }
    free(img);
    free(raw);
    sq_checkpoint_free(&c);
}

SQ_TEST(writer_refuses_bad_input_and_leaves_nothing) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    sq_kv bad = {"config.dim", "1"};
    SQ_CHECK(sq_sqz_write(tmp_path("w.sqz"), &c.cfg, &c.vocab, c.tensors, c.n_tensors, &bad, 1) == SQ_ERR_ARG);
    c.tensors[1].nbytes -= 1;
    SQ_CHECK(sq_sqz_write(tmp_path("w.sqz"), &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0) == SQ_ERR_ARG);
    c.tensors[1].nbytes += 1;
    SQ_CHECK(access(tmp_path("w.sqz"), F_OK) != 0);
    SQ_CHECK(sq_sqz_write("/nonexistent-dir/x.sqz", &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0) == SQ_ERR_IO);
    sq_checkpoint_free(&c);
}

/* Index entry i of a version-2 image: where its fields are. */
typedef struct {
    size_t start, type_at, group_at, flags_at, nd_at, dims_at, off_at, nb_at, end;
} entry_pos;

static entry_pos entry_at(const uint8_t *d, size_t at) {
    entry_pos e;
    e.start = at;
    e.type_at = at + 2 + (size_t)(d[at] | (d[at + 1] << 8));
    e.group_at = e.type_at + 4;
    e.flags_at = e.type_at + 8;
    e.nd_at = e.type_at + 12;
    e.dims_at = e.nd_at + 4;
    e.off_at = e.dims_at + 8 * (size_t)d[e.nd_at];
    e.nb_at = e.off_at + 8;
    e.end = e.nb_at + 8;
    return e;
}

/* The version-1 image of a version-2 file image (same data offset: the index shrinks by
 * 8 bytes per tensor and the gap before the data is zero). Quantized entries are written
 * too, so a v1 file claiming a quantized type can be made. Returns the new image (malloc). */
static uint8_t *to_v1(const uint8_t *d, size_t n) {
    uint8_t *v1 = malloc(n);
    memcpy(v1, d, n);
    const uint64_t index_off = rd64(d + 40), data_off = rd64(d + 56);
    const uint32_t count = (uint32_t)(d[12] | (d[13] << 8) | (d[14] << 16) | ((uint32_t)d[15] << 24));
    size_t at = (size_t)index_off, out = (size_t)index_off;
    for (uint32_t i = 0; i < count; i++) {
        entry_pos e = entry_at(d, at);
        memmove(v1 + out, d + e.start, e.group_at - e.start);        /* name_len, name, type */
        out += e.group_at - e.start;
        memmove(v1 + out, d + e.nd_at, e.end - e.nd_at);             /* n_dims, dims, offset, nbytes */
        out += e.end - e.nd_at;
        at = e.end;
    }
    memset(v1 + out, 0, (size_t)data_off - out);
    v1[8] = 1;
    wr64(v1 + 48, out - (size_t)index_off);
    reseal(v1, n);
    return v1;
}

/* A tiny model whose matrices (embedding included) are group-quantized, written and read
 * back: types, groups, zero-point modes and bytes survive, bit for bit. */
SQ_TEST(round_trip_quantized) {
    static const struct {
        sq_type type;
        int32_t group;
        bool asym;
    } cases[] = {{SQ_TYPE_Q4G, 32, false}, {SQ_TYPE_Q8G, 64, true}, {SQ_TYPE_Q3G, 32, true}, {SQ_TYPE_Q4G, 128, true},
                 {SQ_TYPE_Q5G, 32, true},  {SQ_TYPE_Q6G, 64, false}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sq_tiny_spec s = sq_tiny_spec_default();
        s.hidden_dim = 172; /* ragged: down_proj rows of 172 = 5 chunks, the last one partial */
        sq_checkpoint c;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
        SQ_CHECK_OK(sq_tinyq_checkpoint(&c, cases[k].type, (sq_qparams){cases[k].group, cases[k].asym}, k % 2 == 0));
        const char *p = tmp_path("q.sqz");
        SQ_CHECK_OK(sq_sqz_write(p, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0));
        sq_sqz *f = NULL;
        SQ_CHECK_OK(sq_sqz_open(&f, p, true));
        if (!f) {
            sq_checkpoint_free(&c);
            continue;
        }
        SQ_CHECK(sq_sqz_version(f) == SQ_SQZ_VERSION);
        int n_quant = 0;
        for (int32_t i = 0; i < c.n_tensors; i++) {
            const sq_tensor *a = &c.tensors[i], *b = sq_sqz_find(f, a->name);
            SQ_CHECK(b != NULL);
            if (!b) continue;
            char why[256] = "";
            SQ_CHECKF(sq_tiny_tensor_equal(a, b, why, sizeof why), "%s", why);
            SQ_CHECK(b->q.group == (sq_type_is_quant(a->type) ? a->q.group : 0));
            SQ_CHECK(b->q.asym == (sq_type_is_quant(a->type) && a->q.asym));
            n_quant += sq_type_is_quant(b->type);
        }
        SQ_CHECK(n_quant == 7 * s.n_layers + 1 + (k % 2 == 0)); /* 7 linears per layer, head, embedding */
        sq_sqz_close(f);
        sq_checkpoint_free(&c);
    }
}

/* The ACT8 flag (int8 activations) survives a round trip on q8g/q4g tensors and is refused
 * on other types by the writer (no file) and the reader (one line naming the file). */
SQ_TEST(act8_flag) {
    const sq_type types[3] = {SQ_TYPE_Q4G, SQ_TYPE_Q8G, SQ_TYPE_Q3G};
    for (int k = 0; k < 3; k++) {
        sq_tiny_spec s = sq_tiny_spec_default();
        sq_checkpoint c;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
        SQ_CHECK_OK(sq_tinyq_checkpoint(&c, types[k], (sq_qparams){32, k == 1}, true));
        for (int32_t i = 0; i < c.n_tensors; i++) c.tensors[i].act8 = sq_type_is_quant(c.tensors[i].type) && i % 2 == 0;
        const char *p = tmp_path("a8.sqz");
        unlink(p);
        if (k == 2) {
            SQ_CHECK(sq_sqz_write(p, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0) == SQ_ERR_ARG);
            SQ_CHECK(strstr(sq_last_error(), "ACT8") && !strchr(sq_last_error(), '\n'));
            SQ_CHECK(access(p, F_OK) != 0); /* the reader's refusal: hostile_files_rejected */
            sq_checkpoint_free(&c);
            continue;
        }
        SQ_CHECK_OK(sq_sqz_write(p, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0));
        sq_sqz *f = NULL;
        SQ_CHECK_OK(sq_sqz_open(&f, p, true));
        int n_act8 = 0;
        for (int32_t i = 0; f && i < c.n_tensors; i++) {
            const sq_tensor *b = sq_sqz_find(f, c.tensors[i].name);
            SQ_CHECK(b && b->act8 == c.tensors[i].act8 && b->q.asym == c.tensors[i].q.asym);
            n_act8 += b && b->act8;
        }
        SQ_CHECK(n_act8 > 0);
        sq_sqz_close(f);
        sq_checkpoint_free(&c);
    }
}

/* Version-1 files (float tensors only, no group/flags fields) are still read. */
SQ_TEST(version1_readable) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.type = SQ_TYPE_F16;
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    const char *p = tmp_path("v2.sqz");
    SQ_CHECK_OK(sq_sqz_write(p, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0));
    char *raw;
    size_t n;
    SQ_CHECK_OK(sq_read_file(p, 1 << 26, &raw, &n));
    uint8_t *v1 = to_v1((const uint8_t *)raw, n);
    const char *p1 = tmp_path("v1.sqz");
    SQ_CHECK_OK(sq_tiny_write_file(p1, v1, n));
    sq_sqz *f = NULL;
    SQ_CHECK_OK(sq_sqz_open(&f, p1, true));
    if (f) {
        SQ_CHECK(sq_sqz_version(f) == 1);
        SQ_CHECK(sq_sqz_n_tensors(f) == c.n_tensors);
        for (int32_t i = 0; i < c.n_tensors; i++) {
            char why[256] = "";
            const sq_tensor *b = sq_sqz_find(f, c.tensors[i].name);
            SQ_CHECKF(b && sq_tiny_tensor_equal(&c.tensors[i], b, why, sizeof why), "%s", why);
            SQ_CHECK(b && b->q.group == 0 && !b->q.asym);
        }
        sq_sqz_close(f);
    }
    free(v1);
    free(raw);
    sq_checkpoint_free(&c);
}

/* Quantization parameters are checked like every other index field. */
SQ_TEST(hostile_quant_params_rejected) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    SQ_CHECK_OK(sq_tinyq_checkpoint(&c, SQ_TYPE_Q4G, (sq_qparams){32, false}, true));
    const char *p = tmp_path("goodq.sqz");
    SQ_CHECK_OK(sq_sqz_write(p, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0));
    char *raw;
    size_t n;
    SQ_CHECK_OK(sq_read_file(p, 1 << 26, &raw, &n));
    uint8_t *img = malloc(n), *d = (uint8_t *)raw;
    /* the first entry is the embedding: q4g, group 32, [512, 64] */
    const entry_pos e = entry_at(d, (size_t)rd64(d + 40));
    SQ_CHECK(d[e.type_at] == SQ_TYPE_Q4G && d[e.group_at] == 32 && d[e.flags_at] == 0);
    EDIT_SEALED("group 0", SQ_ERR_FORMAT, img[e.group_at] = 0);
    EDIT_SEALED("group 48", SQ_ERR_FORMAT, img[e.group_at] = 48);
    EDIT_SEALED("group 2^31", SQ_ERR_FORMAT, img[e.group_at + 3] = 0x80);
    EDIT_SEALED("unknown flag bit", SQ_ERR_FORMAT, img[e.flags_at] = 4);
    EDIT_SEALED("high flag bit", SQ_ERR_FORMAT, img[e.flags_at + 3] = 0x80);
    EDIT_SEALED("asym flag changes the row size", SQ_ERR_FORMAT, img[e.flags_at] = 1);
    EDIT_SEALED("nbytes too small", SQ_ERR_FORMAT, wr64(img + e.nb_at, rd64(d + e.nb_at) - 4));
    EDIT_SEALED("nbytes one row too large", SQ_ERR_FORMAT, wr64(img + e.nb_at, rd64(d + e.nb_at) + 36));
    EDIT_SEALED("type q8g with q4g bytes", SQ_ERR_FORMAT, img[e.type_at] = SQ_TYPE_Q8G);
    EDIT_SEALED("quantized as f16", SQ_ERR_FORMAT, img[e.type_at] = SQ_TYPE_F16);
    {
        uint8_t *v1 = to_v1(d, n); /* a version-1 file cannot hold quantized tensors */
        expect_reject("quantized tensor in a version-1 file", v1, n, SQ_ERR_FORMAT);
        free(v1);
    }
    /* a group of 64 for rows of 64 is one group per row: the same size, so it is accepted */
    memcpy(img, d, n);
    img[e.group_at] = 64;
    reseal(img, n);
    SQ_CHECK_OK(sq_tiny_write_file(tmp_path("g64.sqz"), img, n));
    sq_sqz *f = NULL;
    SQ_CHECK_OK(sq_sqz_open(&f, tmp_path("g64.sqz"), true));
    SQ_CHECK(f && sq_sqz_tensor(f, 0)->q.group == 64);
    sq_sqz_close(f);
    /* the writer refuses what the reader would */
    c.tensors[0].q.group = 48;
    SQ_CHECK(sq_sqz_write(tmp_path("w.sqz"), &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0) == SQ_ERR_ARG);
    c.tensors[0].q.group = 32;
    c.tensors[0].q.asym = true;
    SQ_CHECK(sq_sqz_write(tmp_path("w.sqz"), &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0) == SQ_ERR_ARG);
    SQ_CHECK(access(tmp_path("w.sqz"), F_OK) != 0);
    free(img);
    free(raw);
    sq_checkpoint_free(&c);
}

int main(void) {
    SQ_RUN(round_trip_bit_exact);
    SQ_RUN(round_trip_quantized);
    SQ_RUN(act8_flag);
    SQ_RUN(version1_readable);
    SQ_RUN(hostile_quant_params_rejected);
    SQ_RUN(hostile_files_rejected);
    SQ_RUN(writer_refuses_bad_input_and_leaves_nothing);
    return sq_test_summary();
}
