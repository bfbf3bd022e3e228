/* test_quant_types.c - group-quantized tensor types q8g, q6g, q5g, q4g, q3g (docs/quantization.md,
 * docs/sqz-format.md), end to end:
 *  - sizes and parameter checks; the byte layout against hand-written rows (the worked
 *    examples of docs/sqz-format.md);
 *  - pack/unpack round trips for every type, symmetric and asymmetric, groups 32..256 and
 *    per-row, ragged row lengths; dequantized values equal s * (q - z) computed here;
 *  - the reference qmatmul equals the f32 reference matmul of the dequantized matrix bit
 *    for bit, and every SIMD variant agrees with it within float rounding on random shapes
 *    (every token-count loop, row sub-ranges, ragged tails), never writing outside its
 *    rows; bitwise the same at 1 and 2 threads and across row splits;
 *  - a tiny model whose matrices are quantized runs through sq_forward to the logits of
 *    the same model holding the dequantized weights as f32 (so the kernels compute
 *    "dequantized weights x f32 activations"), and survives a .sqz file bit for bit.
 */
#include <float.h>

#include "../runtime/kernels.h"
#include "../runtime/model.h"
#include "../runtime/quant_internal.h"
#include "test.h"
#include "tinymodel.h"
#include "tinyquant.h"

static const sq_type qtypes[] = {SQ_TYPE_Q8G, SQ_TYPE_Q4G, SQ_TYPE_Q3G, SQ_TYPE_Q5G, SQ_TYPE_Q6G};
#define N_QTYPES ((int)(sizeof qtypes / sizeof qtypes[0]))

/* ===== Helpers ===== */

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng_next(void) { return sq_tiny_rand(&rng_state); }
static int64_t rng_int(int64_t n) { return (int64_t)(rng_next() % (uint64_t)n); }
static float rng_unif(void) { return sq_tiny_uniform(&rng_state); }

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* A random fp16 scale of either sign, magnitude ~ 2^-12..2^1 (some subnormal halves too). */
static float rand_scale(void) {
    if (rng_int(16) == 0) return sq_f16_to_f32((uint16_t)(1 + rng_int(0x3FF))); /* subnormal */
    float s = ldexpf(0.5f + 0.5f * fabsf(rng_unif()), (int)rng_int(14) - 12);
    if (rng_int(8) == 0) s = -s;
    return sq_f16_to_f32(sq_f32_to_f16(s));
}

/* A random quantized matrix: rows packed with sq_qrow_pack from random codes, scales and
 * zeros, plus its dequantized values computed here as s * (q - z). */
typedef struct {
    sq_type type;
    sq_qparams q;
    int64_t rows, cols;
    size_t row_bytes;
    uint8_t *data;
    float *val; /* [rows * cols] */
} qmat;

static int qmat_make(qmat *m, sq_type type, sq_qparams q, int64_t rows, int64_t cols) {
    m->type = type;
    m->q = q;
    m->rows = rows;
    m->cols = cols;
    m->row_bytes = sq_row_bytes(type, cols, q);
    m->data = malloc(m->row_bytes * (size_t)rows + 1);
    m->val = malloc(sizeof(float) * (size_t)(rows * cols) + 1);
    const int64_t ng = (cols + q.group - 1) / q.group;
    const int32_t bits = sq_type_bits(type), qmax = (1 << bits) - 1;
    uint8_t *codes = malloc((size_t)cols + 1), *zeros = malloc((size_t)ng + 1);
    float *scales = malloc(sizeof(float) * (size_t)ng + 1);
    int ok = 1;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t g = 0; g < ng; g++) {
            scales[g] = rand_scale();
            zeros[g] = (uint8_t)rng_int(qmax + 1);
        }
        for (int64_t c = 0; c < cols; c++) codes[c] = (uint8_t)rng_int(qmax + 1);
        ok &= sq_qrow_pack(type, q, cols, codes, scales, zeros, m->data + (size_t)r * m->row_bytes) == SQ_OK;
        for (int64_t c = 0; c < cols; c++) {
            int32_t z = q.asym ? zeros[c / q.group] : 1 << (bits - 1);
            m->val[r * cols + c] = scales[c / q.group] * (float)((int32_t)codes[c] - z);
        }
    }
    free(codes);
    free(zeros);
    free(scales);
    return ok;
}

static void qmat_free(qmat *m) {
    free(m->data);
    free(m->val);
}

static float *rand_vec(int64_t n) {
    float *v = malloc(sizeof(float) * (size_t)n + 1);
    for (int64_t i = 0; i < n; i++) v[i] = rng_unif();
    return v;
}

/* Rounding-error bound of a float dot product of length n (as test_kernels.c). */
static double dot_tol(const float *x, const float *w, int64_t n) {
    double nx = 0, nw = 0;
    for (int64_t i = 0; i < n; i++) {
        nx += (double)x[i] * x[i];
        nw += (double)w[i] * w[i];
    }
    return 8.0 * sqrt((double)(n > 0 ? n : 1)) * FLT_EPSILON * sqrt(nx) * sqrt(nw) + 1e-37;
}

/* Every variant usable here, reference first, NULL-terminated. */
static int variants(const sq_kernels **out, int max) {
    int n = 0;
    const char *const *names = sq_kernels_compiled();
    for (int i = 0; names[i] && n < max - 1; i++) {
        const sq_kernels *k = sq_kernels_by_name(names[i]);
        if (k) out[n++] = k;
    }
    out[n] = NULL;
    return n;
}

static const int64_t cols_list[] = {1, 17, 31, 33, 64, 100, 172, 255, 257, 768};
static const int32_t groups[] = {32, 64, 128, 256, 0 /* per row */};

static sq_qparams params(int32_t group, bool asym, int64_t cols) {
    sq_qparams q = {group ? group : (int32_t)cols, asym};
    return q;
}

/* ===== Sizes, names, parameter checks ===== */

SQ_TEST(test_sizes_and_names) {
    sq_type t;
    SQ_CHECK(sq_type_from_name("q4g", &t) == SQ_OK && t == SQ_TYPE_Q4G);
    SQ_CHECK(sq_type_from_name("Q8G", &t) == SQ_OK && t == SQ_TYPE_Q8G);
    SQ_CHECK(sq_type_from_name("q3g", &t) == SQ_OK && t == SQ_TYPE_Q3G);
    SQ_CHECK(sq_type_from_name("q5g", &t) == SQ_OK && t == SQ_TYPE_Q5G && (int)t == 12);
    SQ_CHECK(sq_type_from_name("Q6G", &t) == SQ_OK && t == SQ_TYPE_Q6G && (int)t == 13);
    SQ_CHECK(sq_type_from_name("q7g", &t) == SQ_ERR_ARG);
    SQ_CHECK(strstr(sq_last_error(), "q5g") && strstr(sq_last_error(), "q6g")); /* the list of names */
    SQ_CHECK(strcmp(sq_type_name(SQ_TYPE_Q5G), "q5g") == 0 && strcmp(sq_type_name(SQ_TYPE_Q6G), "q6g") == 0);
    SQ_CHECK(sq_type_traits_get(SQ_TYPE_Q5G)->block == 32 && sq_type_traits_get(SQ_TYPE_Q5G)->block_bytes == 20);
    SQ_CHECK(sq_type_traits_get(SQ_TYPE_Q6G)->block == 32 && sq_type_traits_get(SQ_TYPE_Q6G)->block_bytes == 24);
    SQ_CHECK(sq_type_bits(SQ_TYPE_Q5G) == 5 && sq_type_bits(SQ_TYPE_Q6G) == 6);
    SQ_CHECK(sq_type_is_quant(SQ_TYPE_Q5G) && sq_type_is_quant(SQ_TYPE_Q6G) && !sq_type_is_sparse(SQ_TYPE_Q6G));
    SQ_CHECK(sq_type_row_bytes(SQ_TYPE_Q6G, 64) == 0);
    SQ_CHECK(strcmp(sq_type_name(SQ_TYPE_Q3G), "q3g") == 0);
    SQ_CHECK(sq_type_traits_get(SQ_TYPE_Q4G)->block == 32 && sq_type_traits_get(SQ_TYPE_Q4G)->block_bytes == 16);
    SQ_CHECK(sq_type_traits_get(SQ_TYPE_Q3G)->block_bytes == 12 && sq_type_traits_get(SQ_TYPE_Q8G)->block_bytes == 32);
    SQ_CHECK(sq_type_bits(SQ_TYPE_F32) == 32 && sq_type_bits(SQ_TYPE_BF16) == 16 && sq_type_bits(SQ_TYPE_Q8G) == 8 &&
             sq_type_bits(SQ_TYPE_Q4G) == 4 && sq_type_bits(SQ_TYPE_Q3G) == 3);
    SQ_CHECK(sq_type_is_quant(SQ_TYPE_Q4G) && !sq_type_is_quant(SQ_TYPE_F16) && !sq_type_is_quant(SQ_TYPE_COUNT));
    SQ_CHECK(sq_type_row_bytes(SQ_TYPE_Q4G, 64) == 0); /* float-only helper */
    /* row bytes: header (f16 scales, u8 zeros if asym) padded to 4, then 32-weight chunks */
    const sq_qparams g128 = {128, false}, g128a = {128, true}, g32 = {32, false}, g32a = {32, true};
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, 2048, g128) == 32 + 64 * 16);      /* 16 groups: 32 B of scales */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, 2048, g128a) == 48 + 64 * 16);     /* + 16 zeros */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q8G, 5632, g128) == 88 + 176 * 32);     /* 44 groups */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q3G, 5632, g128a) == 132 + 176 * 12);   /* 88 + 44 = 132 */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, 100, g32) == 8 + 4 * 16);          /* 4 groups, 4 chunks */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, 100, g32a) == 12 + 4 * 16);        /* 8 + 4 */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q3G, 33, g32a) == 8 + 2 * 12);          /* 2 groups: 4 + 2 -> 8 */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q5G, 2048, g128) == 32 + 64 * 20);      /* 5.125 bits per weight */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q6G, 2048, g128a) == 48 + 64 * 24);     /* 6.1875 */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q5G, 33, g32a) == 8 + 2 * 20);
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q6G, 100, g32) == 8 + 4 * 24);
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q6G, 100, (sq_qparams){48, false}) == 0);
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q8G, 1, (sq_qparams){1, true}) == 4 + 32);
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q8G, 100, (sq_qparams){256, false}) == 4 + 4 * 32); /* one group */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_F16, 100, g128) == 200);                /* q ignored for floats */
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, 100, (sq_qparams){48, false}) == 0);
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, 100, (sq_qparams){0, false}) == 0);
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, -1, g32) == 0);
    SQ_CHECK(sq_row_bytes(SQ_TYPE_COUNT, 10, g32) == 0);
    const int64_t shape[2] = {3, 100}, shape1[1] = {100};
    SQ_CHECK(sq_tensor_bytes(SQ_TYPE_Q4G, g32, 2, shape) == 3 * 72);
    SQ_CHECK(sq_tensor_bytes(SQ_TYPE_Q4G, g32, 1, shape1) == 0);
    SQ_CHECK(sq_tensor_bytes(SQ_TYPE_F32, (sq_qparams){0, false}, 2, shape) == 1200);
    const int64_t huge[2] = {1 << 20, INT64_MAX / 4};
    SQ_CHECK(sq_tensor_bytes(SQ_TYPE_Q8G, (sq_qparams){32, true}, 2, huge) == 0); /* overflow */
    /* validation */
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_Q4G, g128, 100, "t") == SQ_OK);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_Q4G, (sq_qparams){100, false}, 100, "t") == SQ_OK);   /* per row */
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_Q4G, (sq_qparams){48, false}, 40, "t") == SQ_OK);     /* >= cols */
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_Q4G, (sq_qparams){48, false}, 100, "t") == SQ_ERR_FORMAT);
    SQ_CHECK(strstr(sq_last_error(), "t:") && strstr(sq_last_error(), "48"));
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_Q3G, (sq_qparams){0, true}, 100, "t") == SQ_ERR_FORMAT);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_Q3G, (sq_qparams){-32, true}, 100, "t") == SQ_ERR_FORMAT);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_F32, (sq_qparams){0, false}, 100, "t") == SQ_OK);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_F32, (sq_qparams){32, false}, 100, "t") == SQ_ERR_FORMAT);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_BF16, (sq_qparams){0, true}, 100, "t") == SQ_ERR_FORMAT);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_COUNT, g32, 100, "t") == SQ_ERR_FORMAT);
}

/* The worked examples of docs/sqz-format.md, byte by byte. */
SQ_TEST(test_layout_examples) {
    /* q4g, 40 weights, group 32, symmetric: code i = i % 16; scales 0.5 and 2 */
    uint8_t codes[40], row[64];
    for (int i = 0; i < 40; i++) codes[i] = (uint8_t)(i % 16);
    const float sc[2] = {0.5f, 2.0f};
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q4G, 40, (sq_qparams){32, false}) == 36);
    memset(row, 0xAA, sizeof row);
    SQ_CHECK_OK(sq_qrow_pack(SQ_TYPE_Q4G, (sq_qparams){32, false}, 40, codes, sc, NULL, row));
    static const uint8_t want_q4[36] = {
        0x00, 0x38, 0x00, 0x40,                                                                         /* scales */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, /* chunk 0 */
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* chunk 1 */
    };
    SQ_CHECK(memcmp(row, want_q4, 36) == 0);
    SQ_CHECK(row[36] == 0xAA); /* nothing past the row */
    float w[40];
    sq_qrow_dequant(SQ_TYPE_Q4G, (sq_qparams){32, false}, 40, row, w);
    SQ_CHECK(w[0] == -4.0f && w[15] == 3.5f && w[32] == 2.0f * (0 - 8) && w[39] == 2.0f * (7 - 8));

    /* q3g, 32 weights, asymmetric group 32: code i = i % 8, zero point 3, scale 1 */
    uint8_t c3[32], z3 = 3, r3[32];
    for (int i = 0; i < 32; i++) c3[i] = (uint8_t)(i % 8);
    const float one = 1.0f;
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q3G, 32, (sq_qparams){32, true}) == 16);
    SQ_CHECK_OK(sq_qrow_pack(SQ_TYPE_Q3G, (sq_qparams){32, true}, 32, c3, &one, &z3, r3));
    /* byte j of the planes: low 2 bits of codes j, j+8, j+16, j+24 (all equal to j % 4 here) */
    static const uint8_t want_q3[16] = {0x00, 0x3C, 0x03, 0x00,                         /* scale 1.0, zero 3, pad */
                                        0x00, 0x55, 0xAA, 0xFF, 0x00, 0x55, 0xAA, 0xFF, /* 2-bit planes */
                                        0xF0, 0xF0, 0xF0, 0xF0};                        /* bit 2: codes 4..7 of 8 */
    SQ_CHECK(memcmp(r3, want_q3, 16) == 0);
    float w3[32];
    sq_qrow_dequant(SQ_TYPE_Q3G, (sq_qparams){32, true}, 32, r3, w3);
    for (int i = 0; i < 32; i++) SQ_CHECK(w3[i] == (float)(i % 8 - 3));

    /* q5g, 32 weights, asymmetric group 32, scale 0.5, zero 16: low 4 bits i (columns 0-15)
     * and 31 - i (16-31); bit 4 in the odd columns below 16 and in every column from 16 */
    uint8_t c5[32], z5 = 16, r5[32];
    for (int i = 0; i < 32; i++) c5[i] = (uint8_t)((i < 16 ? i : 31 - i) | (i >= 16 || i % 2 ? 16 : 0));
    SQ_CHECK(c5[1] == 17 && c5[15] == 31 && c5[16] == 31 && c5[31] == 16);
    const float half = 0.5f;
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q5G, 32, (sq_qparams){32, true}) == 24);
    memset(r5, 0xAA, sizeof r5);
    SQ_CHECK_OK(sq_qrow_pack(SQ_TYPE_Q5G, (sq_qparams){32, true}, 32, c5, &half, &z5, r5));
    static const uint8_t want_q5[24] = {0x00, 0x38, 0x10, 0x00, /* scale 0.5, zero 16, pad */
                                        0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87, /* low nibbles: j | (15 - j) << 4 */
                                        0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F,
                                        0xAA, 0xAA, 0xFF, 0xFF}; /* u32 0xFFFFAAAA: bit 4 of each code */
    SQ_CHECK(memcmp(r5, want_q5, 24) == 0);
    SQ_CHECK(r5[24] == 0xAA);
    float w5[32];
    sq_qrow_dequant(SQ_TYPE_Q5G, (sq_qparams){32, true}, 32, r5, w5);
    SQ_CHECK(w5[0] == -8.0f && w5[1] == 0.5f && w5[16] == 7.5f && w5[31] == 0.0f);
    for (int i = 0; i < 32; i++) SQ_CHECK(w5[i] == 0.5f * (float)(c5[i] - 16));

    /* q6g, 32 weights, symmetric group 32 (z = 32), scale 2: low 4 bits as above, bits 4-5 of
     * column i = (i / 8 + i % 2) % 4 */
    uint8_t c6[32], r6[32];
    for (int i = 0; i < 32; i++) c6[i] = (uint8_t)((i < 16 ? i : 31 - i) | (((i / 8 + i % 2) % 4) << 4));
    SQ_CHECK(c6[1] == 17 && c6[8] == 24 && c6[9] == 41 && c6[16] == 47 && c6[24] == 55 && c6[25] == 6 && c6[31] == 0);
    const float two = 2.0f;
    SQ_CHECK(sq_row_bytes(SQ_TYPE_Q6G, 32, (sq_qparams){32, false}) == 28);
    memset(r6, 0xAA, sizeof r6);
    SQ_CHECK_OK(sq_qrow_pack(SQ_TYPE_Q6G, (sq_qparams){32, false}, 32, c6, &two, NULL, r6));
    static const uint8_t want_q6[28] = {0x00, 0x40, 0x00, 0x00, /* scale 2.0, pad */
                                        0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87, /* low nibbles: j | (15 - j) << 4 */
                                        0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F,
                                        0xE4, 0x39, 0xE4, 0x39, 0xE4, 0x39, 0xE4, 0x39}; /* 2-bit planes of bits 4-5 */
    SQ_CHECK(memcmp(r6, want_q6, 28) == 0);
    SQ_CHECK(r6[28] == 0xAA);
    float w6[32];
    sq_qrow_dequant(SQ_TYPE_Q6G, (sq_qparams){32, false}, 32, r6, w6);
    SQ_CHECK(w6[0] == -64.0f && w6[9] == 18.0f && w6[16] == 30.0f && w6[25] == -52.0f);
    for (int i = 0; i < 32; i++) SQ_CHECK(w6[i] == 2.0f * (float)(c6[i] - 32));
    /* and back: the unpacker reads the spec's bytes as the same codes */
    {
        uint8_t back[32];
        sq_qrow_unpack(SQ_TYPE_Q5G, (sq_qparams){32, true}, 32, want_q5, back, NULL, NULL);
        SQ_CHECK(memcmp(back, c5, 32) == 0);
        sq_qrow_unpack(SQ_TYPE_Q6G, (sq_qparams){32, false}, 32, want_q6, back, NULL, NULL);
        SQ_CHECK(memcmp(back, c6, 32) == 0);
    }

    /* q8g, 3 weights, per-row group, asymmetric */
    uint8_t c8[3] = {0, 128, 255}, z8 = 128, r8[40];
    const float s8 = -0.25f;
    SQ_CHECK_OK(sq_qrow_pack(SQ_TYPE_Q8G, (sq_qparams){3, true}, 3, c8, &s8, &z8, r8));
    SQ_CHECK(r8[0] == 0x00 && r8[1] == 0xB4 && r8[2] == 128 && r8[3] == 0 && r8[4] == 0 && r8[5] == 128 &&
             r8[6] == 255 && r8[7] == 0 && r8[35] == 0);
}

/* Packing rejects codes, zeros and scales the format cannot hold. */
SQ_TEST(test_pack_rejects) {
    uint8_t codes[64] = {0}, zeros[2] = {0, 0}, row[256];
    float sc[2] = {1.0f, 1.0f};
    SQ_CHECK_OK(sq_qrow_pack(SQ_TYPE_Q4G, (sq_qparams){32, true}, 64, codes, sc, zeros, row));
    codes[5] = 16;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q4G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_ERR_ARG);
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q8G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_OK);
    codes[5] = 8;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q3G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_ERR_ARG);
    codes[5] = 0;
    zeros[1] = 8;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q3G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_ERR_ARG);
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q3G, (sq_qparams){32, false}, 64, codes, sc, zeros, row) == SQ_OK); /* unused */
    zeros[1] = 31;
    codes[7] = 31;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q5G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_OK);
    codes[7] = 32;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q5G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_ERR_ARG);
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q6G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_OK);
    codes[7] = 64;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q6G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_ERR_ARG);
    codes[7] = 63;
    zeros[0] = 64;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q6G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_ERR_ARG);
    zeros[0] = 32;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q5G, (sq_qparams){32, true}, 64, codes, sc, zeros, row) == SQ_ERR_ARG);
    codes[7] = 0;
    zeros[0] = zeros[1] = 0;
    sc[1] = 0.1f; /* not an fp16 value */
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q4G, (sq_qparams){32, false}, 64, codes, sc, NULL, row) == SQ_ERR_ARG);
    SQ_CHECK(strstr(sq_last_error(), "fp16") != NULL);
    sc[1] = 1.0f;
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q4G, (sq_qparams){48, false}, 64, codes, sc, NULL, row) == SQ_ERR_ARG);
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_F16, (sq_qparams){32, false}, 64, codes, sc, NULL, row) == SQ_ERR_ARG);
    SQ_CHECK(sq_qrow_pack(SQ_TYPE_Q8G, (sq_qparams){32, true}, 64, codes, sc, NULL, row) == SQ_ERR_ARG);
}

/* ===== Round trips ===== */

SQ_TEST(test_pack_round_trip) {
    int runs = 0, bad = 0;
    for (int ti = 0; ti < N_QTYPES; ti++)
        for (int asym = 0; asym < 2; asym++)
            for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++)
                for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++) {
                    const sq_type type = qtypes[ti];
                    const int64_t cols = cols_list[ci];
                    const sq_qparams q = params(groups[gi], asym, cols);
                    const int32_t bits = sq_type_bits(type), qmax = (1 << bits) - 1;
                    const int64_t ng = (cols + q.group - 1) / q.group, nch = (cols + 31) / 32;
                    const size_t rb = sq_row_bytes(type, cols, q);
                    const size_t hdr = ((size_t)ng * (asym ? 3 : 2) + 3) / 4 * 4;
                    const size_t chunk = type == SQ_TYPE_Q8G   ? 32
                                         : type == SQ_TYPE_Q6G ? 24
                                         : type == SQ_TYPE_Q5G ? 20
                                         : type == SQ_TYPE_Q4G ? 16
                                                               : 12;
                    if (rb != hdr + (size_t)nch * chunk) {
                        bad++;
                        continue;
                    }
                    uint8_t *codes = malloc((size_t)cols), *codes2 = malloc((size_t)cols);
                    uint8_t *zeros = malloc((size_t)ng), *zeros2 = malloc((size_t)ng);
                    float *scales = malloc(sizeof(float) * (size_t)ng), *scales2 = malloc(sizeof(float) * (size_t)ng);
                    float *w = malloc(sizeof(float) * (size_t)cols);
                    uint8_t *row = malloc(rb + 8), *row2 = malloc(rb + 8);
                    for (int64_t g = 0; g < ng; g++) {
                        scales[g] = rand_scale();
                        zeros[g] = (uint8_t)rng_int(qmax + 1);
                    }
                    for (int64_t c = 0; c < cols; c++) codes[c] = (uint8_t)rng_int(qmax + 1);
                    if (ci % 3 == 0) { /* extremes */
                        for (int64_t c = 0; c < cols; c++) codes[c] = c % 2 ? (uint8_t)qmax : 0;
                    }
                    memset(row, 0x5A, rb + 8);
                    memset(row2, 0xA5, rb + 8);
                    bad += sq_qrow_pack(type, q, cols, codes, scales, asym ? zeros : NULL, row) != SQ_OK;
                    bad += sq_qrow_pack(type, q, cols, codes, scales, asym ? zeros : NULL, row2) != SQ_OK;
                    bad += memcmp(row, row2, rb) != 0;                   /* padding is deterministic */
                    bad += row[rb] != 0x5A;                               /* nothing written past the row */
                    for (size_t b = (size_t)ng * (asym ? 3 : 2); b < hdr; b++) bad += row[b] != 0; /* header pad */
                    sq_qrow_unpack(type, q, cols, row, codes2, scales2, zeros2);
                    bad += memcmp(codes, codes2, (size_t)cols) != 0;
                    for (int64_t g = 0; g < ng; g++) {
                        bad += f32_bits(scales[g]) != f32_bits(scales2[g]);
                        bad += zeros2[g] != (asym ? zeros[g] : (uint8_t)(1 << (bits - 1)));
                    }
                    /* the zero-padded tail of the last chunk decodes to code 0 */
                    {
                        uint8_t full[32];
                        const int64_t last = nch - 1;
                        sq_qchunk_decode(type, row + hdr + (size_t)last * chunk, full);
                        for (int64_t k = cols - last * 32; k < 32; k++) bad += full[k] != 0;
                    }
                    /* dequant = s * (q - z) from the codes */
                    sq_qrow_dequant(type, q, cols, row, w);
                    for (int64_t c = 0; c < cols; c++) {
                        const int64_t g = c / q.group;
                        const int32_t z = asym ? zeros[g] : 1 << (bits - 1);
                        const float want = scales[g] * (float)((int32_t)codes[c] - z);
                        bad += f32_bits(w[c]) != f32_bits(want);
                    }
                    runs++;
                    free(codes), free(codes2), free(zeros), free(zeros2), free(scales), free(scales2), free(w);
                    free(row), free(row2);
                }
    SQ_CHECKF(bad == 0, "%d mismatches in %d round trips", bad, runs);
}

/* ===== Kernels ===== */

/* Variant k against the reference on one shape; y outside rows [r0, r1) and the ldy
 * padding must stay untouched. The reference itself must equal the f32 reference matmul
 * of the dequantized matrix bit for bit. Returns the number of mismatches. */
static int check_qmatmul(const sq_kernels *k, sq_type type, sq_qparams q, int64_t rows, int64_t cols, int64_t T,
                         int64_t r0, int64_t r1) {
    qmat m;
    int bad = !qmat_make(&m, type, q, rows, cols);
    float *x = rand_vec(T * cols);
    const int64_t ldy = rows + 3;
    const size_t ny = (size_t)(T * ldy);
    float *yr = malloc(sizeof(float) * ny + 4), *ys = malloc(sizeof(float) * ny + 4), *yf = malloc(sizeof(float) * ny + 4);
    for (size_t i = 0; i < ny; i++) yr[i] = ys[i] = yf[i] = -12345.0f;
    const sq_kernels *ref = sq_kernels_ref();
    ref->qmatmul[type](yr, ldy, x, m.data, m.row_bytes, T, r0, r1, cols, q);
    ref->matmul[SQ_TYPE_F32](yf, ldy, x, m.val, (size_t)cols * sizeof(float), T, r0, r1, cols);
    k->qmatmul[type](ys, ldy, x, m.data, m.row_bytes, T, r0, r1, cols, q);
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < ldy; r++) {
            const size_t i = (size_t)(t * ldy + r);
            int ok;
            if (r < r0 || r >= r1) ok = ys[i] == -12345.0f && yr[i] == -12345.0f;
            else
                ok = f32_bits(yr[i]) == f32_bits(yf[i]) &&
                     fabs((double)ys[i] - (double)yr[i]) <= dot_tol(x + t * cols, m.val + r * cols, cols);
            if (!ok && bad++ < 3)
                printf("  %s %s g%d%s rows=%lld cols=%lld T=%lld r=[%lld,%lld): y[%lld][%lld] = %.9g, ref %.9g, f32 "
                       "%.9g\n",
                       k->name, sq_type_name(type), q.group, q.asym ? "a" : "s", (long long)rows, (long long)cols,
                       (long long)T, (long long)r0, (long long)r1, (long long)t, (long long)r, ys[i], yr[i], yf[i]);
        }
    free(x), free(yr), free(ys), free(yf);
    qmat_free(&m);
    return bad;
}

SQ_TEST(test_qmatmul_vs_ref) {
    const sq_kernels *vs[8];
    variants(vs, 8);
    static const int64_t T_list[] = {1, 2, 3, 4, 5, 8, 17, 64};
    int runs = 0, bad = 0;
    for (int v = 0; vs[v]; v++)
        for (int ti = 0; ti < N_QTYPES; ti++)
            for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++)
                for (size_t tj = 0; tj < sizeof T_list / sizeof *T_list; tj++) {
                    const int64_t cols = cols_list[ci], T = T_list[tj];
                    const sq_qparams q = params(groups[(ci + tj) % 5], (ci + tj + (size_t)ti) % 2, cols);
                    const int64_t rows = 1 + rng_int(cols * T > 20000 ? 40 : 75);
                    const int64_t r0 = rng_int(3) == 0 ? 0 : rng_int(rows);
                    const int64_t r1 = rng_int(3) == 0 ? rows : r0 + 1 + rng_int(rows - r0);
                    bad += check_qmatmul(vs[v], qtypes[ti], q, rows, cols, T, r0, r1);
                    runs++;
                }
    SQ_CHECKF(bad == 0, "%d mismatches in %d runs", bad, runs);
}

/* Bigger shapes: several GEMM tiles and column blocks, partial last tiles, many groups. */
SQ_TEST(test_qmatmul_tiles) {
    const sq_kernels *vs[8];
    variants(vs, 8);
    static const int64_t shapes[][3] = {{70, 800, 13}, {96, 256, 24}, {33, 1100, 40}, {130, 300, 9},
                                        {64, 64, 100}, {37, 70, 300}, {45, 2048, 33}};
    int bad = 0;
    for (int v = 1; vs[v]; v++) /* SIMD variants only: the reference is the oracle */
        for (int ti = 0; ti < N_QTYPES; ti++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                const int64_t rows = shapes[s][0], cols = shapes[s][1], T = shapes[s][2];
                bad += check_qmatmul(vs[v], qtypes[ti], params(groups[s % 5], s % 2, cols), rows, cols, T, 0, rows);
                bad += check_qmatmul(vs[v], qtypes[ti], params(groups[(s + 2) % 5], 1 - s % 2, cols), rows, cols, T,
                                     5, rows - 3);
            }
    SQ_CHECK(bad == 0);
}

/* A NaN activation reaches every output of its token, in every loop of every variant. */
SQ_TEST(test_qmatmul_nan) {
    const sq_kernels *vs[8];
    variants(vs, 8);
    static const int64_t T_list[] = {1, 3, 40};
    for (int v = 0; vs[v]; v++)
        for (int ti = 0; ti < N_QTYPES; ti++)
            for (int tj = 0; tj < 3; tj++) {
                const int64_t rows = 40, cols = 100, T = T_list[tj];
                qmat m;
                qmat_make(&m, qtypes[ti], (sq_qparams){32, true}, rows, cols);
                float *x = rand_vec(T * cols), *y = malloc(sizeof(float) * (size_t)(T * rows));
                x[(T - 1) * cols + 99] = NAN; /* in the ragged last chunk */
                vs[v]->qmatmul[qtypes[ti]](y, rows, x, m.data, m.row_bytes, T, 0, rows, cols, m.q);
                int wrong = 0;
                for (int64_t t = 0; t < T; t++)
                    for (int64_t r = 0; r < rows; r++) wrong += (isnan(y[t * rows + r]) != 0) != (t == T - 1);
                SQ_CHECKF(wrong == 0, "%s %s T=%lld: %d outputs wrong", vs[v]->name, sq_type_name(qtypes[ti]),
                          (long long)T, wrong);
                free(x), free(y);
                qmat_free(&m);
            }
}

/* sq_matmul: the same bits on 1 and 2 threads, and across odd row splits of the kernel. */
SQ_TEST(test_qmatmul_deterministic) {
    const sq_kernels *vs[8];
    variants(vs, 8);
    static const int64_t T_list[] = {1, 3, 17, 64};
    const int saved = sq_num_threads();
    for (int v = 0; vs[v]; v++)
        for (int ti = 0; ti < N_QTYPES; ti++)
            for (int tj = 0; tj < 4; tj++) {
                const int64_t T = T_list[tj], cols = T > 8 ? 520 : 2100;
                const int64_t rows = vs[v] == sq_kernels_ref() && T > 8 ? 97 : 301;
                qmat m;
                qmat_make(&m, qtypes[ti], (sq_qparams){tj % 2 ? 128 : 64, tj < 2}, rows, cols);
                float *x = rand_vec(T * cols);
                const size_t ny = (size_t)(T * rows);
                float *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny), *y3 = malloc(sizeof(float) * ny);
                sq_mat mat = {.type = qtypes[ti], .q = m.q, .rows = rows, .cols = cols, .row_bytes = m.row_bytes,
                              .data = m.data};
                sq_set_num_threads(1);
                sq_matmul(vs[v], y1, x, &mat, T);
                sq_set_num_threads(2);
                sq_matmul(vs[v], y2, x, &mat, T);
                static const int64_t cuts[] = {0, 5, 38, 39, 200, 301};
                for (int c = 0; c < 5; c++) {
                    int64_t a = cuts[c] < rows ? cuts[c] : rows, b = cuts[c + 1] < rows ? cuts[c + 1] : rows;
                    vs[v]->qmatmul[qtypes[ti]](y3, rows, x, m.data, m.row_bytes, T, a, b, cols, m.q);
                }
                int d12 = 0, d13 = 0;
                for (size_t i = 0; i < ny; i++) {
                    d12 += f32_bits(y1[i]) != f32_bits(y2[i]);
                    d13 += f32_bits(y1[i]) != f32_bits(y3[i]);
                }
                SQ_CHECKF(d12 == 0 && d13 == 0, "%s %s T=%lld: %d differ 1 vs 2 threads, %d across splits",
                          vs[v]->name, sq_type_name(qtypes[ti]), (long long)T, d12, d13);
                free(x), free(y1), free(y2), free(y3);
                qmat_free(&m);
            }
    sq_set_num_threads(saved);
}

/* cols == 0 gives zeros; T == 0 and empty row ranges write nothing. */
SQ_TEST(test_qmatmul_degenerate) {
    const sq_kernels *vs[8];
    variants(vs, 8);
    for (int v = 0; vs[v]; v++)
        for (int ti = 0; ti < N_QTYPES; ti++) {
            float x[4] = {1, 2, 3, 4}, y[12];
            uint8_t w[64] = {0};
            const sq_qparams q = {32, false};
            for (int i = 0; i < 12; i++) y[i] = 7.0f;
            vs[v]->qmatmul[qtypes[ti]](y, 3, x, w, 0, 4, 0, 3, 0, q);
            for (int i = 0; i < 12; i++) SQ_CHECK(y[i] == 0.0f);
            for (int i = 0; i < 12; i++) y[i] = 7.0f;
            vs[v]->qmatmul[qtypes[ti]](y, 3, x, w, 20, 0, 0, 3, 2, q);
            vs[v]->qmatmul[qtypes[ti]](y, 3, x, w, 20, 4, 2, 2, 2, q);
            for (int i = 0; i < 12; i++) SQ_CHECK(y[i] == 7.0f);
        }
}

/* sq_mat_row_f32 of a quantized matrix (an embedding lookup) is the dequantized row. */
SQ_TEST(test_mat_row) {
    for (int ti = 0; ti < N_QTYPES; ti++) {
        qmat m;
        qmat_make(&m, qtypes[ti], (sq_qparams){64, ti == 1}, 5, 100);
        sq_mat mat = {.type = qtypes[ti], .q = m.q, .rows = 5, .cols = 100, .row_bytes = m.row_bytes, .data = m.data};
        float row[101];
        row[100] = -1.0f;
        for (int64_t r = 0; r < 5; r++) {
            sq_mat_row_f32(sq_kernels_get(), row, &mat, r);
            for (int c = 0; c < 100; c++) SQ_CHECK(f32_bits(row[c]) == f32_bits(m.val[r * 100 + c]));
            SQ_CHECK(row[100] == -1.0f);
        }
        qmat_free(&m);
    }
}

/* ===== A quantized tiny model ===== */

static float *logits_of(sq_model *m, const int32_t *toks, int32_t n, int32_t batch) {
    sq_state *s = NULL;
    if (sq_state_init(&s, m, n, batch)) return NULL;
    float *lg = malloc(sizeof(float) * (size_t)n * (size_t)m->cfg.vocab_size);
    if (sq_forward(s, toks, n, 0, lg)) {
        free(lg);
        lg = NULL;
    }
    sq_state_free(s);
    return lg;
}

SQ_TEST(test_tiny_model) {
    static const struct {
        sq_type type;
        int32_t group;
        bool asym, embed;
    } cases[] = {{SQ_TYPE_Q4G, 32, false, true}, {SQ_TYPE_Q8G, 64, true, true}, {SQ_TYPE_Q3G, 128, true, false},
                 {SQ_TYPE_Q4G, 0, true, true},   {SQ_TYPE_Q5G, 32, true, true}, {SQ_TYPE_Q6G, 64, false, true},
                 {SQ_TYPE_Q6G, 0, true, false},  {SQ_TYPE_Q5G, 128, false, false}};
    const int saved = sq_num_threads();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sq_tiny_spec s = sq_tiny_spec_default();
        s.hidden_dim = 172; /* ragged down_proj rows */
        s.type = k == 1 ? SQ_TYPE_F16 : SQ_TYPE_F32;
        s.tied = k == 0 || k == 2 || k == 4; /* k == 0, 4: the head is the quantized embedding */
        s.seed = 7 + k;
        sq_checkpoint cq, cf;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &cq));
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &cf));
        const sq_qparams q = {cases[k].group ? cases[k].group : 4096, cases[k].asym};
        SQ_CHECK_OK(sq_tinyq_checkpoint(&cq, cases[k].type, q, cases[k].embed));
        SQ_CHECK_OK(sq_tinyq_checkpoint(&cf, cases[k].type, q, cases[k].embed));
        SQ_CHECK_OK(sq_tinyq_checkpoint_dequant(&cf)); /* the same weights as f32 */
        sq_model *mq = NULL, *mf = NULL;
        SQ_CHECK_OK(sq_model_from_tensors(&mq, &cq.cfg, &cq.vocab, cq.tensors, cq.n_tensors, false));
        SQ_CHECK_OK(sq_model_from_tensors(&mf, &cf.cfg, &cf.vocab, cf.tensors, cf.n_tensors, false));
        if (!mq || !mf) {
            sq_model_free(mq), sq_model_free(mf), sq_checkpoint_free(&cq), sq_checkpoint_free(&cf);
            continue;
        }
        SQ_CHECK(sq_type_is_quant(mq->layers[0].w_down.type) && mq->layers[0].w_down.q.group > 0);
        int32_t toks[80];
        for (int i = 0; i < 80; i++) toks[i] = (int32_t)((i * 37 + 11) % s.vocab_size);
        const int32_t n = 80; /* one batch of 80 reaches every variant's GEMM loop */
        const size_t nl = (size_t)n * (size_t)s.vocab_size;
        sq_set_num_threads(1);
        float *lq = logits_of(mq, toks, n, 80);   /* one batch: the GEMM loop */
        float *lq1 = logits_of(mq, toks, n, 1);   /* token by token: the decode path */
        float *lq5 = logits_of(mq, toks, n, 5);   /* few-token batches */
        float *lf = logits_of(mf, toks, n, 80);
        sq_set_num_threads(2);
        float *lq2 = logits_of(mq, toks, n, 80);
        SQ_CHECK(lq && lq1 && lq5 && lf && lq2);
        if (lq && lq1 && lq5 && lf && lq2) {
            double dmax = 0, d1 = 0, d5 = 0, scale = 1;
            for (size_t i = 0; i < nl; i++) {
                scale = fmax(scale, fabs(lf[i]));
                dmax = fmax(dmax, fabs((double)lq[i] - lf[i]));
                d1 = fmax(d1, fabs((double)lq1[i] - lf[i]));
                d5 = fmax(d5, fabs((double)lq5[i] - lf[i]));
            }
            char what[32];
            if (cases[k].group) snprintf(what, sizeof what, "group %d", cases[k].group);
            else snprintf(what, sizeof what, "per row");
            printf("  %s %s%s%s: max |logit| %.3g, quantized vs dequantized-f32: %.2g (batch), %.2g (decode), "
                   "%.2g (batches of 5)\n",
                   sq_type_name(cases[k].type), what, q.asym ? ", asym" : "", s.tied ? ", tied" : "", scale, dmax, d1,
                   d5);
            SQ_CHECKF(dmax <= 1e-4 * scale && d1 <= 1e-4 * scale && d5 <= 1e-4 * scale, "%g %g %g", dmax, d1, d5);
            SQ_CHECK(memcmp(lq, lq2, nl * sizeof(float)) == 0); /* 1 vs 2 threads */
            /* the runnable file holds the same model: same logits, bit for bit */
            char path[512];
            snprintf(path, sizeof path, "%s/tinyq%zu.sqz", sq_test_tmpdir(), k);
            SQ_CHECK_OK(sq_sqz_write(path, &cq.cfg, &cq.vocab, cq.tensors, cq.n_tensors, NULL, 0));
            sq_model *mz = NULL;
            SQ_CHECK_OK(sq_model_open(&mz, path, true));
            if (mz) {
                float *lz = logits_of(mz, toks, n, 80);
                SQ_CHECK(lz && memcmp(lz, lq2, nl * sizeof(float)) == 0);
                int64_t nw = 0, nb = 0, nwf = 0, nbf = 0;
                sq_model_size(mz, &nw, &nb);
                sq_model_size(mf, &nwf, &nbf);
                SQ_CHECK(nw == nwf && nb < nbf);
                free(lz);
                sq_model_free(mz);
            }
        }
        free(lq), free(lq1), free(lq5), free(lf), free(lq2);
        sq_model_free(mq);
        sq_model_free(mf);
        sq_checkpoint_free(&cq);
        sq_checkpoint_free(&cf);
    }
    sq_set_num_threads(saved);
}

/* The binder refuses quantized norms and inconsistent quantized matrices. */
SQ_TEST(test_binder_checks) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    SQ_CHECK_OK(sq_tinyq_checkpoint(&c, SQ_TYPE_Q4G, (sq_qparams){32, false}, true));
    sq_model *m = NULL;
    SQ_CHECK_OK(sq_model_from_tensors(&m, &c.cfg, &c.vocab, c.tensors, c.n_tensors, false));
    sq_model_free(m);
    sq_tensor *q = sq_checkpoint_find(&c, "model.layers.0.self_attn.q_proj.weight");
    q->q.group = 48;
    SQ_CHECK(sq_model_from_tensors(&m, &c.cfg, &c.vocab, c.tensors, c.n_tensors, false) == SQ_ERR_FORMAT);
    SQ_CHECK(strstr(sq_last_error(), "q_proj") != NULL);
    q->q.group = 32;
    q->q.asym = true; /* the data is the symmetric size */
    SQ_CHECK(sq_model_from_tensors(&m, &c.cfg, &c.vocab, c.tensors, c.n_tensors, false) == SQ_ERR_FORMAT);
    q->q.asym = false;
    sq_tensor *norm = sq_checkpoint_find(&c, "model.norm.weight");
    norm->type = SQ_TYPE_Q8G;
    SQ_CHECK(sq_model_from_tensors(&m, &c.cfg, &c.vocab, c.tensors, c.n_tensors, false) == SQ_ERR_FORMAT);
    SQ_CHECK(strstr(sq_last_error(), "model.norm.weight") != NULL);
    norm->type = SQ_TYPE_F32;
    sq_checkpoint_free(&c);
}

int main(void) {
    SQ_RUN(test_sizes_and_names);
    SQ_RUN(test_layout_examples);
    SQ_RUN(test_pack_rejects);
    SQ_RUN(test_pack_round_trip);
    SQ_RUN(test_qmatmul_vs_ref);
    SQ_RUN(test_qmatmul_tiles);
    SQ_RUN(test_qmatmul_nan);
    SQ_RUN(test_qmatmul_deterministic);
    SQ_RUN(test_qmatmul_degenerate);
    SQ_RUN(test_mat_row);
    SQ_RUN(test_tiny_model);
    SQ_RUN(test_binder_checks);
    return sq_test_summary();
}
