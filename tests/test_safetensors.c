/* test_safetensors.c - the safetensors reader and writer (core/safetensors.c): round trips
 * of F32/F16/BF16, scalars and empty tensors, files from other writers (unsorted offsets,
 * padding), and every way a hostile header can be wrong. Also SHA-256 test vectors
 * (FIPS 180-4 examples) and the file helpers of core/util.c.
 */
#include <stdint.h>

#include "../core/safetensors.h"
#include "../core/util.h"
#include "test.h"

static char path_buf[1024];

static const char *tmp_path(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", sq_test_tmpdir(), name);
    return path_buf;
}

/* Writes: u64 header length (len_override if nonzero), header, then data_len bytes of data. */
static const char *write_raw(const char *name, const char *header, size_t data_len, uint64_t len_override) {
    const char *p = tmp_path(name);
    FILE *fp = fopen(p, "wb");
    if (!fp) abort();
    uint64_t n = len_override ? len_override : strlen(header);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n >> (8 * i));
    fwrite(le, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    for (size_t i = 0; i < data_len; i++) fputc((int)(i * 7 & 0xFF), fp);
    fclose(fp);
    return p;
}

/* Opens a file that must fail with `code` and a message containing `needle`. */
static void expect_fail(const char *path, sq_status code, const char *needle) {
    sq_safetensors *f = NULL;
    sq_status st = sq_safetensors_open(&f, path);
    SQ_CHECKF(st == code, "status %d, expected %d (%s)", st, code, sq_last_error());
    SQ_CHECKF(f == NULL, "handle not NULL on failure");
    SQ_CHECKF(strstr(sq_last_error(), needle) != NULL, "message '%s' lacks '%s'", sq_last_error(), needle);
    SQ_CHECKF(strchr(sq_last_error(), '\n') == NULL, "message is not one line");
    sq_safetensors_close(f);
}

/* ===== util.c ===== */

SQ_TEST(sha256_vectors) {
    char hex[65];
    sq_sha256_buf("abc", 3, hex);
    SQ_CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sq_sha256_buf(m448, strlen(m448), hex);
    SQ_CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    sq_sha256_buf("", 0, hex);
    SQ_CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    /* one million 'a', fed in uneven pieces to exercise the buffering */
    sq_sha256 s;
    uint8_t d[32];
    char a[1000];
    memset(a, 'a', sizeof a);
    sq_sha256_init(&s);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = step < left ? step : left;
        if (n > sizeof a) n = sizeof a;
        sq_sha256_update(&s, a, n);
        left -= n;
        step = step * 3 % 997 + 1;
    }
    sq_sha256_final(&s, d);
    sq_sha256_hex(d, hex);
    SQ_CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    /* the same through a file */
    const char *p = tmp_path("million_a");
    FILE *fp = fopen(p, "wb");
    for (int i = 0; i < 1000; i++) fwrite(a, 1, sizeof a, fp);
    fclose(fp);
    uint64_t size = 0;
    SQ_CHECK_OK(sq_sha256_file(p, hex, &size));
    SQ_CHECK(size == 1000000);
    SQ_CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    SQ_CHECK(sq_sha256_file(tmp_path("nope"), hex, NULL) == SQ_ERR_IO);
}

SQ_TEST(util_files) {
    SQ_CHECK(strcmp(sq_version(), "0.1.0") == 0);
    char *j = sq_path_join("a/b", "c.json");
    SQ_CHECK(j && strcmp(j, "a/b/c.json") == 0);
    free(j);
    j = sq_path_join("a/", "c");
    SQ_CHECK(j && strcmp(j, "a/c") == 0);
    free(j);
    char *d = sq_path_dirname("x/y/z.bin");
    SQ_CHECK(d && strcmp(d, "x/y") == 0);
    free(d);
    d = sq_path_dirname("z.bin");
    SQ_CHECK(d && strcmp(d, ".") == 0);
    free(d);
    d = sq_path_dirname("/z.bin");
    SQ_CHECK(d && strcmp(d, "/") == 0);
    free(d);
    SQ_CHECK(sq_str_ends_with("model.safetensors", ".safetensors"));
    SQ_CHECK(!sq_str_ends_with("st", ".safetensors"));
    SQ_CHECK(sq_strdup(NULL) == NULL);
    const char *p = write_raw("util.txt", "hello", 0, 0);
    char *data = NULL;
    size_t len = 0;
    SQ_CHECK_OK(sq_read_file(p, 1000, &data, &len));
    SQ_CHECK(len == 13 && data && data[13] == '\0' && memcmp(data + 8, "hello", 5) == 0);
    free(data);
    SQ_CHECK(sq_read_file(p, 4, &data, &len) == SQ_ERR_FORMAT && data == NULL);
    SQ_CHECK(sq_file_exists(p) && !sq_is_dir(p) && sq_is_dir(sq_test_tmpdir()) && !sq_file_exists(sq_test_tmpdir()));
}

/* ===== Round trips ===== */

SQ_TEST(roundtrip_types) {
    float f32[6] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-20f};
    uint16_t f16[4] = {0x3C00, 0xC000, 0x0001, 0x7C00};
    uint16_t bf16[3] = {0x3F80, 0xFF80, 0x7FC0};
    float scalar = 42.0f;
    sq_tensor ts[5] = {
        {.name = "a.f32", .type = SQ_TYPE_F32, .n_dims = 2, .shape = {2, 3}, .data = f32, .nbytes = sizeof f32},
        {.name = "b.f16", .type = SQ_TYPE_F16, .n_dims = 1, .shape = {4}, .data = f16, .nbytes = sizeof f16},
        {.name = "c.bf16", .type = SQ_TYPE_BF16, .n_dims = 3, .shape = {1, 3, 1}, .data = bf16, .nbytes = sizeof bf16},
        {.name = "d.scalar", .type = SQ_TYPE_F32, .n_dims = 0, .data = &scalar, .nbytes = 4},
        {.name = "e.empty", .type = SQ_TYPE_F16, .n_dims = 2, .shape = {0, 5}, .data = NULL, .nbytes = 0},
    };
    const char *meta[] = {"format", "pt", "note", "quote\" and \\ and \n", NULL};
    const char *p = tmp_path("rt.safetensors");
    SQ_CHECK_OK(sq_safetensors_write(p, ts, 5, meta));
    sq_safetensors *f = NULL;
    SQ_CHECK_OK(sq_safetensors_open(&f, p));
    if (!f) return;
    SQ_CHECK(sq_safetensors_count(f) == 5);
    for (int i = 0; i < 5; i++) {
        const sq_tensor *t = sq_safetensors_find(f, ts[i].name);
        SQ_CHECKF(t != NULL, "%s missing", ts[i].name);
        if (!t) continue;
        SQ_CHECK(t->type == ts[i].type && t->n_dims == ts[i].n_dims && t->nbytes == ts[i].nbytes);
        for (int d = 0; d < t->n_dims; d++) SQ_CHECK(t->shape[d] == ts[i].shape[d]);
        SQ_CHECK(t->nbytes == 0 || memcmp(t->data, ts[i].data, t->nbytes) == 0);
        SQ_CHECK(!t->owns_data);
    }
    /* file order: the writer lays tensors out in the given order */
    SQ_CHECK(strcmp(sq_safetensors_get(f, 0)->name, "a.f32") == 0);
    SQ_CHECK(sq_safetensors_get(f, 5) == NULL && sq_safetensors_get(f, -1) == NULL);
    SQ_CHECK(sq_safetensors_find(f, "nope") == NULL);
    SQ_CHECK(sq_safetensors_meta(f, "format") && strcmp(sq_safetensors_meta(f, "format"), "pt") == 0);
    SQ_CHECK(sq_safetensors_meta(f, "note") && strcmp(sq_safetensors_meta(f, "note"), meta[3]) == 0);
    SQ_CHECK(sq_safetensors_meta(f, "absent") == NULL);
    sq_safetensors_close(f);
    /* header is padded so the data starts 8-aligned */
    FILE *fp = fopen(p, "rb");
    uint8_t le[8];
    SQ_CHECK(fread(le, 1, 8, fp) == 8);
    fclose(fp);
    SQ_CHECK(le[0] % 8 == 0);
    /* the writer refuses bad input and leaves no file */
    sq_tensor bad = ts[0];
    bad.nbytes = 20;
    SQ_CHECK(sq_safetensors_write(tmp_path("bad.safetensors"), &bad, 1, NULL) == SQ_ERR_ARG);
    SQ_CHECK(!sq_file_exists(tmp_path("bad.safetensors")));
    sq_tensor dup[2] = {ts[0], ts[0]};
    SQ_CHECK(sq_safetensors_write(tmp_path("bad.safetensors"), dup, 2, NULL) == SQ_ERR_ARG);
    SQ_CHECK(sq_safetensors_write("/nonexistent-dir/x.safetensors", ts, 1, NULL) == SQ_ERR_IO);
    sq_safetensors_close(NULL);
}

SQ_TEST(foreign_layout) {
    /* offsets not in header order, whitespace padding, __metadata__ anywhere */
    const char *h = "{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}, "
                    "\"__metadata__\":{\"format\":\"pt\"}, "
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"z\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[12,12]}}      ";
    const char *p = write_raw("foreign.safetensors", h, 12, 0);
    sq_safetensors *f = NULL;
    SQ_CHECK_OK(sq_safetensors_open(&f, p));
    if (!f) return;
    SQ_CHECK(sq_safetensors_count(f) == 3);
    SQ_CHECK(strcmp(sq_safetensors_get(f, 0)->name, "a") == 0); /* data order */
    SQ_CHECK(strcmp(sq_safetensors_get(f, 1)->name, "b") == 0);
    const sq_tensor *b = sq_safetensors_find(f, "b");
    SQ_CHECK(b && b->type == SQ_TYPE_F16 && b->nbytes == 4);
    SQ_CHECK(b && ((const uint8_t *)b->data)[0] == (uint8_t)(8 * 7));
    sq_safetensors_close(f);
    /* an empty tensor list is a valid (empty) file */
    p = write_raw("empty.safetensors", "{}", 0, 0);
    SQ_CHECK_OK(sq_safetensors_open(&f, p));
    SQ_CHECK(sq_safetensors_count(f) == 0);
    sq_safetensors_close(f);
}

/* ===== Hostile input ===== */

#define ENT(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

SQ_TEST(bad_lengths) {
    const char *p = tmp_path("short.safetensors");
    FILE *fp = fopen(p, "wb");
    fwrite("\x10\0\0\0", 1, 5, fp);
    fclose(fp);
    expect_fail(p, SQ_ERR_FORMAT, "too short");
    expect_fail(write_raw("past.safetensors", "{}", 0, 1000), SQ_ERR_FORMAT, "past the end");
    expect_fail(write_raw("huge.safetensors", "{}", 0, (uint64_t)1 << 40), SQ_ERR_FORMAT, "limit");
    expect_fail(write_raw("huge2.safetensors", "{}", 0, UINT64_MAX), SQ_ERR_FORMAT, "limit");
    expect_fail(write_raw("zero.safetensors", "", 16, 0), SQ_ERR_FORMAT, "'{'");
    expect_fail(tmp_path("missing.safetensors"), SQ_ERR_IO, "missing.safetensors");
}

SQ_TEST(bad_json) {
    expect_fail(write_raw("nj.safetensors", "{not json}", 0, 0), SQ_ERR_FORMAT, "not valid JSON");
    expect_fail(write_raw("arr.safetensors", "[1,2]", 0, 0), SQ_ERR_FORMAT, "'{'");
    expect_fail(write_raw("trail.safetensors", "{} x", 0, 0), SQ_ERR_FORMAT, "after the JSON");
    expect_fail(write_raw("trunc.safetensors", "{\"a\":{\"dtype\":\"F32\"", 0, 0), SQ_ERR_FORMAT, "not valid JSON");
    expect_fail(write_raw("dup.safetensors", "{" ENT("w", "F32", "[1]", 0, 4) "," ENT("w", "F32", "[1]", 4, 8) "}", 8, 0),
                SQ_ERR_FORMAT, "'w' appears more than once");
    expect_fail(write_raw("dup2.safetensors",
                          "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0),
                SQ_ERR_FORMAT, "'dtype' appears more than once");
    expect_fail(write_raw("meta.safetensors", "{\"__metadata__\":{\"k\":1}}", 0, 0), SQ_ERR_FORMAT, "'k'");
    expect_fail(write_raw("notobj.safetensors", "{\"w\":[1]}", 0, 0), SQ_ERR_FORMAT, "tensor 'w'");
    expect_fail(write_raw("nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0),
                SQ_ERR_FORMAT, "tensor 'w': missing or non-string \"dtype\"");
    expect_fail(write_raw("offs3.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
                          0),
                SQ_ERR_FORMAT, "tensor 'w'");
}

SQ_TEST(bad_dtypes) {
    expect_fail(write_raw("dt.safetensors", "{" ENT("w", "F13", "[1]", 0, 4) "}", 4, 0), SQ_ERR_FORMAT,
                "tensor 'w': unknown dtype 'F13'");
    expect_fail(write_raw("i32.safetensors", "{" ENT("ok", "F32", "[1]", 0, 4) "," ENT("q", "I32", "[2]", 4, 12) "}", 12,
                          0),
                SQ_ERR_UNSUPPORTED, "tensor 'q': dtype I32 is not supported");
    expect_fail(write_raw("f64.safetensors", "{" ENT("d", "F64", "[1]", 0, 8) "}", 8, 0), SQ_ERR_UNSUPPORTED,
                "tensor 'd': dtype F64");
    expect_fail(write_raw("f8.safetensors", "{" ENT("e", "F8_E4M3", "[3]", 0, 3) "}", 3, 0), SQ_ERR_UNSUPPORTED,
                "tensor 'e': dtype F8_E4M3");
    /* F4 needs an even count to end on a byte boundary */
    expect_fail(write_raw("f4.safetensors", "{" ENT("h", "F4", "[3]", 0, 2) "}", 2, 0), SQ_ERR_FORMAT, "byte boundary");
    expect_fail(write_raw("f4b.safetensors", "{" ENT("h", "F4", "[4]", 0, 2) "}", 2, 0), SQ_ERR_UNSUPPORTED,
                "dtype F4");
    /* a malformed file is reported as such even if it also holds an unsupported dtype */
    expect_fail(write_raw("mix.safetensors", "{" ENT("q", "I32", "[1]", 0, 4) "," ENT("w", "F32", "[1]", 8, 12) "}", 12,
                          0),
                SQ_ERR_FORMAT, "hole");
    expect_fail(write_raw("rank5.safetensors", "{" ENT("r", "F32", "[1,1,1,1,1]", 0, 4) "}", 4, 0), SQ_ERR_UNSUPPORTED,
                "tensor 'r': 5 dimensions");
}

SQ_TEST(bad_offsets) {
    expect_fail(write_raw("past2.safetensors", "{" ENT("w", "F32", "[4]", 0, 16) "}", 8, 0), SQ_ERR_FORMAT,
                "tensor 'w': data_offsets [0, 16] run past the end of the 8-byte data buffer");
    expect_fail(write_raw("rev.safetensors", "{" ENT("w", "F32", "[1]", 8, 4) "}", 8, 0), SQ_ERR_FORMAT,
                "end before they begin");
    expect_fail(write_raw("hole.safetensors", "{" ENT("a", "F32", "[1]", 0, 4) "," ENT("b", "F32", "[1]", 8, 12) "}", 12,
                          0),
                SQ_ERR_FORMAT, "tensor 'b': data starts at 8, leaving a hole of 4 bytes");
    expect_fail(write_raw("hole0.safetensors", "{" ENT("a", "F32", "[1]", 4, 8) "}", 8, 0), SQ_ERR_FORMAT,
                "tensor 'a': data starts at 4");
    expect_fail(write_raw("tail.safetensors", "{" ENT("a", "F32", "[1]", 0, 4) "}", 12, 0), SQ_ERR_FORMAT,
                "8 bytes at the end of the data buffer belong to no tensor");
    expect_fail(write_raw("ovl.safetensors", "{" ENT("a", "F32", "[2]", 0, 8) "," ENT("b", "F32", "[2]", 4, 12) "}", 12,
                          0),
                SQ_ERR_FORMAT, "tensor 'b': data [4, 12) overlaps");
    expect_fail(write_raw("same.safetensors", "{" ENT("a", "F32", "[1]", 0, 4) "," ENT("b", "F32", "[1]", 0, 4) "}", 4,
                          0),
                SQ_ERR_FORMAT, "overlaps");
    /* a zero-size tensor inside another one is an overlap too */
    expect_fail(write_raw("zin.safetensors", "{" ENT("a", "F32", "[2]", 0, 8) "," ENT("z", "F32", "[0]", 4, 4) "}", 8,
                          0),
                SQ_ERR_FORMAT, "tensor 'z'");
    expect_fail(write_raw("mism.safetensors", "{" ENT("w", "F16", "[3]", 0, 8) "}", 8, 0), SQ_ERR_FORMAT,
                "tensor 'w': data_offsets span 8 bytes but shape and dtype F16 need 6");
    expect_fail(write_raw("neg.safetensors", "{" ENT("w", "F32", "[1]", -4, 4) "}", 8, 0), SQ_ERR_FORMAT,
                "not non-negative integers");
    expect_fail(write_raw("frac.safetensors", "{" ENT("w", "F32", "[1]", 0.5, 4) "}", 8, 0), SQ_ERR_FORMAT,
                "not non-negative integers");
    expect_fail(write_raw("big.safetensors", "{" ENT("w", "F32", "[1]", 0, 1e300) "}", 8, 0), SQ_ERR_FORMAT,
                "not non-negative integers");
    expect_fail(write_raw("strs.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                          0),
                SQ_ERR_FORMAT, "tensor 'w': shape entry 0");
}

SQ_TEST(huge_shapes) {
    expect_fail(write_raw("ovf.safetensors", "{" ENT("w", "F32", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, 0),
                SQ_ERR_FORMAT, "tensor 'w': shape overflows");
    /* numel fits in 64 bits but numel x 4 bytes does not */
    expect_fail(write_raw("ovf2.safetensors", "{" ENT("w", "F32", "[4294967296,1073741824]", 0, 4) "}", 4, 0),
                SQ_ERR_FORMAT, "tensor 'w'");
    expect_fail(write_raw("ovf3.safetensors", "{" ENT("w", "F32", "[9007199254740993]", 0, 4) "}", 4, 0),
                SQ_ERR_FORMAT, "tensor 'w'");
    /* a huge shape with offsets that claim a matching size cannot fit either */
    expect_fail(write_raw("ovf4.safetensors", "{" ENT("w", "F32", "[1048576,1048576]", 0, 4398046511104) "}", 4, 0),
                SQ_ERR_FORMAT, "run past the end");
}

int main(void) {
    SQ_RUN(sha256_vectors);
    SQ_RUN(util_files);
    SQ_RUN(roundtrip_types);
    SQ_RUN(foreign_layout);
    SQ_RUN(bad_lengths);
    SQ_RUN(bad_json);
    SQ_RUN(bad_dtypes);
    SQ_RUN(bad_offsets);
    SQ_RUN(huge_shapes);
    return sq_test_summary();
}
