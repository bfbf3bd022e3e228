/* test_sparse.c - sparse tensor types (runtime/sparse.c, kernels_sparse_*.c,
 * docs/sparse-format.md): dense -> packed -> dense is bit-exact for every type (f16/f32,
 * -0.0 kept, ragged row lengths); rows that do not fit are refused and hostile rows are
 * refused by the unpacker; the reference kernel equals the dense f32 reference on the
 * dense matrix exactly (skipping x*0 terms cannot change a float sum), every SIMD variant
 * is within sqrt(cols)-scaled rounding of it and, below its GEMM threshold, gives each
 * token the bits of a one-token call (token blocking changes nothing); from the threshold
 * (the packed GEMM) exactly the FMA chain over the columns, whatever T; hostile rows never make a kernel read
 * out of bounds (the SAN build checks); sq_matmul gives the same bits at 1 and 2 threads (T = 1, 24);
 * the exporter's choice (2:4, 4:8, bitmask, or dense when nothing is saved); a pruned
 * tiny model written with sparse types runs to the same logits as written dense
 * (reference kernels: identical bits) and imports back bit for bit; the worked hex
 * examples of docs/sparse-format.md are what sq_srow_pack writes; the bitmask streaming loops
 * on rows with empty and full 64-column mask words and varying slack below K.
 */
#include "../runtime/kernels_internal.h"
#include "../runtime/sparse_internal.h"
#include "../runtime/model.h"
#include "../runtime/sqz.h"
#include "test.h"
#include "tinymodel.h"

static const sq_type all_types[] = {SQ_TYPE_S24_F16, SQ_TYPE_S24_F32,   SQ_TYPE_S48_F16,
                                    SQ_TYPE_S48_F32, SQ_TYPE_SMASK_F16, SQ_TYPE_SMASK_F32};
#define N_TYPES 6

static int vbytes_of(sq_type t) { return sq_sparse_value_type(t) == SQ_TYPE_F16 ? 2 : 4; }

/* A random value != +0 of the value type (sometimes -0.0, which must survive as a value). */
static uint32_t rand_val(uint64_t *rng, int vb) {
    float f = sq_tiny_uniform(rng) * 2.0f - 1.0f;
    if (sq_tiny_rand(rng) % 17 == 0) f = -0.0f;
    if (vb == 2) {
        uint16_t h = sq_f32_to_f16(f);
        return h ? h : 0x3c00;
    }
    uint32_t u;
    memcpy(&u, &f, 4);
    return u ? u : 0x3f800000u;
}

static void put(void *dst, int vb, int64_t i, uint32_t v) { memcpy((char *)dst + i * vb, &v, (size_t)vb); }

/* A dense [rows, cols] matrix of the type's value type that fits `t` (N:M: at most N
 * nonzeros per group, sometimes fewer; bitmask: about `density` nonzeros, or with density
 * < 0 blocks of 64 columns that are empty, full, half or 1/20 full). Returns the
 * largest nonzero count of a row in *kmax. */
static void *make_dense(sq_type t, int64_t rows, int64_t cols, double density, uint64_t *rng, int64_t *kmax) {
    const int vb = vbytes_of(t);
    uint8_t *d = calloc((size_t)(rows * cols) + 1, (size_t)vb);
    const int n = t == SQ_TYPE_S24_F16 || t == SQ_TYPE_S24_F32 ? 2 : 4;
    const int m = t == SQ_TYPE_S24_F16 || t == SQ_TYPE_S24_F32 ? 4 : 8;
    *kmax = 0;
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = d + r * cols * vb;
        if ((!sq_type_is_sparse(t) || t == SQ_TYPE_SMASK_F16 || t == SQ_TYPE_SMASK_F32) && density < 0) {
            /* blocks of 64 columns (one mask word of the streaming loops), each empty, full,
             * half or 1/20 full at random: zero words, all-set words, and rows whose counts
             * (so the slack below K) vary a lot */
            for (int64_t c0 = 0; c0 < cols; c0 += 64) {
                const uint64_t kind = sq_tiny_rand(rng) % 4;
                const double dd = kind == 0 ? 0.0 : kind == 1 ? 1.0 : kind == 2 ? 0.5 : 0.05;
                for (int64_t c = c0; c < cols && c < c0 + 64; c++)
                    if ((sq_tiny_uniform(rng) + 1.0f) * 0.5f < dd) put(row, vb, c, rand_val(rng, vb)); /* [0, 1) */
            }
        } else if (!sq_type_is_sparse(t) || t == SQ_TYPE_SMASK_F16 || t == SQ_TYPE_SMASK_F32) {
            for (int64_t c = 0; c < cols; c++)
                if ((sq_tiny_uniform(rng) + 1.0f) * 0.5f < density) put(row, vb, c, rand_val(rng, vb)); /* [0, 1) */
        } else {
            for (int64_t g = 0; g < cols / m; g++) {
                int keep = (int)(sq_tiny_rand(rng) % 5 == 0 ? sq_tiny_rand(rng) % (uint64_t)(n + 1) : (uint64_t)n);
                for (int k = 0; k < keep; k++) put(row, vb, g * m + (int64_t)(sq_tiny_rand(rng) % (uint64_t)m), rand_val(rng, vb));
            }
        }
        int64_t nz = 0;
        for (int64_t c = 0; c < cols; c++) {
            uint32_t v = 0;
            memcpy(&v, row + c * vb, (size_t)vb);
            nz += v != 0;
        }
        if (nz > *kmax) *kmax = nz;
    }
    return d;
}

static sq_qparams params_for(sq_type t, int64_t kmax) {
    return (sq_qparams){t == SQ_TYPE_SMASK_F16 || t == SQ_TYPE_SMASK_F32 ? (int32_t)kmax : 0, false};
}

/* Packs a dense matrix row by row (fails the test if a row is refused). */
static uint8_t *pack(sq_type t, sq_qparams q, int64_t rows, int64_t cols, const void *dense) {
    const size_t rb = sq_row_bytes(t, cols, q);
    uint8_t *p = malloc(rows * rb + 1);
    for (int64_t r = 0; r < rows; r++)
        SQ_CHECK_OK(sq_srow_pack(t, q, cols, (const char *)dense + r * cols * vbytes_of(t), p + r * rb));
    return p;
}

static float *to_f32(sq_type vt, const void *d, int64_t n) {
    float *f = malloc((size_t)n * sizeof *f + 4);
    SQ_CHECK_OK(sq_convert_rows(f, SQ_TYPE_F32, d, vt, n));
    return f;
}

SQ_TEST(roundtrip) {
    uint64_t rng = 7;
    const int64_t cols_list[] = {8, 16, 24, 40, 72, 136, 1, 5, 13, 37};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const sq_type t = all_types[ti];
        const int vb = vbytes_of(t);
        for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
            const int64_t cols = cols_list[ci], rows = 3;
            const bool nm = t != SQ_TYPE_SMASK_F16 && t != SQ_TYPE_SMASK_F32;
            const int m = t == SQ_TYPE_S24_F16 || t == SQ_TYPE_S24_F32 ? 4 : 8;
            if (nm && cols % m) {
                /* N:M rows must be whole groups */
                SQ_CHECK(sq_row_bytes(t, cols, (sq_qparams){0, false}) == 0);
                SQ_CHECK(sq_qparams_validate(t, (sq_qparams){0, false}, cols, "x") == SQ_ERR_FORMAT);
                continue;
            }
            int64_t kmax;
            void *dense = make_dense(t, rows, cols, 0.4, &rng, &kmax);
            const sq_qparams q = params_for(t, kmax);
            SQ_CHECK_OK(sq_qparams_validate(t, q, cols, "x"));
            const size_t rb = sq_row_bytes(t, cols, q);
            SQ_CHECK(rb > 0 && rb % 4 == 0);
            uint8_t *p = pack(t, q, rows, cols, dense);
            uint8_t *back = calloc((size_t)(rows * cols), (size_t)vb);
            float *deq = malloc((size_t)cols * sizeof *deq);
            for (int64_t r = 0; r < rows; r++) {
                SQ_CHECK_OK(sq_srow_unpack(t, q, cols, p + r * rb, back + r * cols * vb));
                sq_srow_dequant(t, q, cols, p + r * rb, deq);
                float *ref = to_f32(sq_sparse_value_type(t), (char *)dense + r * cols * vb, cols);
                SQ_CHECK(memcmp(deq, ref, (size_t)cols * sizeof(float)) == 0);
                free(ref);
            }
            SQ_CHECKF(memcmp(back, dense, (size_t)(rows * cols * vb)) == 0, "%s cols %lld", sq_type_name(t),
                      (long long)cols);
            free(dense), free(p), free(back), free(deq);
        }
    }
}

SQ_TEST(refused_rows) {
    /* a 2:4 group with 3 nonzeros, a bitmask row above its capacity */
    float d[8] = {1, 2, 3, 0, 0, 0, 0, 0}, row[16];
    uint8_t out[64];
    memset(out, 0xAB, sizeof out);
    SQ_CHECK(sq_srow_pack(SQ_TYPE_S24_F32, (sq_qparams){0, false}, 8, d, out) == SQ_ERR_ARG);
    SQ_CHECK(out[0] == 0xAB); /* nothing written */
    SQ_CHECK(sq_srow_pack(SQ_TYPE_S48_F32, (sq_qparams){0, false}, 8, d, out) == SQ_OK);
    SQ_CHECK(sq_srow_pack(SQ_TYPE_SMASK_F32, (sq_qparams){2, false}, 8, d, out) == SQ_ERR_ARG);
    SQ_CHECK(sq_srow_pack(SQ_TYPE_SMASK_F32, (sq_qparams){3, false}, 8, d, out) == SQ_OK);
    /* bad parameters */
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_SMASK_F16, (sq_qparams){9, false}, 8, "x") == SQ_ERR_FORMAT);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_SMASK_F16, (sq_qparams){-1, false}, 8, "x") == SQ_ERR_FORMAT);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_S24_F16, (sq_qparams){4, false}, 8, "x") == SQ_ERR_FORMAT);
    SQ_CHECK(sq_qparams_validate(SQ_TYPE_S24_F16, (sq_qparams){0, true}, 8, "x") == SQ_ERR_FORMAT);
    /* hostile rows: the unpacker refuses what the packer never writes */
    const sq_qparams q3 = {3, false};
    const size_t rb = sq_row_bytes(SQ_TYPE_SMASK_F32, 8, q3); /* mask 1 + pad 3 + 3 values */
    SQ_CHECK(rb == 16);
    uint8_t good[16];
    SQ_CHECK_OK(sq_srow_pack(SQ_TYPE_SMASK_F32, q3, 8, d, good));
    uint8_t bad[16];
    memcpy(bad, good, 16);
    bad[0] |= 0x80; /* four marked weights, three values */
    SQ_CHECK(sq_srow_unpack(SQ_TYPE_SMASK_F32, q3, 8, bad, row) == SQ_ERR_FORMAT);
    memcpy(bad, good, 16);
    bad[1] = 1; /* nonzero padding */
    SQ_CHECK(sq_srow_unpack(SQ_TYPE_SMASK_F32, q3, 8, bad, row) == SQ_ERR_FORMAT);
    SQ_CHECK(sq_srow_pack(SQ_TYPE_SMASK_F32, (sq_qparams){3, false}, 5, d, good) == SQ_OK);
    good[0] |= 0x40; /* a bit past the 5 columns */
    SQ_CHECK(sq_srow_unpack(SQ_TYPE_SMASK_F32, (sq_qparams){3, false}, 5, good, row) == SQ_ERR_FORMAT);
    float e[8] = {0, 5, 0, 6, 7, 0, 0, 0};
    uint8_t nm[32];
    SQ_CHECK_OK(sq_srow_pack(SQ_TYPE_S24_F32, (sq_qparams){0, false}, 8, e, nm));
    /* group 0 keeps columns 1 and 3, group 1 column 4 (index 0) and the lowest zero (index 1) */
    SQ_CHECK(nm[0] == (1 | 3 << 2 | 0 << 4 | 1 << 6));
    nm[0] = 3 | 1 << 2; /* indices out of order */
    SQ_CHECK(sq_srow_unpack(SQ_TYPE_S24_F32, (sq_qparams){0, false}, 8, nm, row) == SQ_ERR_FORMAT);
}

/* The worked examples of docs/sparse-format.md, byte for byte: the page is a tested
 * reference. Each dense row is packed, compared with the hex printed there, unpacked back
 * and multiplied by the reference kernel; the row sizes of its TinyLlama table too. */
typedef struct {
    sq_type t;
    int32_t k;        /* bitmask capacity */
    int64_t cols;
    float dense[12];
    uint8_t hex[12];  /* every example is 12 bytes */
} worked_example;

SQ_TEST(worked_examples) {
    static const worked_example ex[] = {
        {SQ_TYPE_S24_F16, 0, 8, {0, 1.0f, 0, -2.0f, 0.5f, 0, 0, 0},
         {0x4D, 0, 0, 0, 0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x00, 0x00}},
        {SQ_TYPE_S48_F16, 0, 8, {0, 0, 3.0f, 0, 0, 0.25f, 0, -1.5f},
         {0x20, 0x75, 0, 0, 0x00, 0x00, 0x00, 0x42, 0x00, 0x34, 0x00, 0xBE}},
        {SQ_TYPE_SMASK_F16, 4, 12, {0, 1.0f, 0, 0, 0, 0, -0.5f, 0, 0, 2.0f, 0, 0},
         {0x42, 0x02, 0, 0, 0x00, 0x3C, 0x00, 0xB8, 0x00, 0x40, 0x00, 0x00}},
        {SQ_TYPE_S24_F32, 0, 4, {0, 0, 0, 1.0f},
         {0x0C, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x80, 0x3F}},
    };
    for (size_t e = 0; e < sizeof ex / sizeof ex[0]; e++) {
        const worked_example *w = &ex[e];
        const sq_qparams q = {w->k, false};
        const sq_type vt = sq_sparse_value_type(w->t);
        const int vb = vbytes_of(w->t);
        uint8_t dense[48], packed[16], back[48];
        SQ_CHECK_OK(sq_convert_rows(dense, vt, w->dense, SQ_TYPE_F32, w->cols));
        SQ_CHECKF(sq_row_bytes(w->t, w->cols, q) == 12, "example %zu: row_bytes %zu", e + 1,
                  sq_row_bytes(w->t, w->cols, q));
        memset(packed, 0xEE, sizeof packed);
        SQ_CHECK_OK(sq_srow_pack(w->t, q, w->cols, dense, packed));
        char got[64] = "", *g = got;
        for (int i = 0; i < 12; i++) g += sprintf(g, "%02X", packed[i]);
        SQ_CHECKF(memcmp(packed, w->hex, 12) == 0, "example %zu (%s): packed %s", e + 1, sq_type_name(w->t), got);
        SQ_CHECK_OK(sq_srow_unpack(w->t, q, w->cols, w->hex, back));
        SQ_CHECK(memcmp(back, dense, (size_t)w->cols * (size_t)vb) == 0);
        /* the reference kernel on the documented bytes: x = 1, 2, 3, ... */
        float x[12], y = 0, want = 0;
        for (int i = 0; i < 12; i++) x[i] = (float)(i + 1);
        for (int64_t c = 0; c < w->cols; c++) want += x[c] * w->dense[c];
        sq_kernels_by_name("ref")->qmatmul[w->t](&y, 1, x, w->hex, 12, 1, 0, 1, w->cols, q);
        SQ_CHECKF(y == want, "example %zu: ref kernel %g, want %g", e + 1, y, want);
    }
    /* the sizes table (f16 values; 50% bitmask = exactly half of each row) */
    const int64_t cols[2] = {2048, 5632};
    const size_t s24[2] = {2304, 6336}, s48[2] = {2560, 7040};
    for (int i = 0; i < 2; i++) {
        SQ_CHECK(sq_row_bytes(SQ_TYPE_S24_F16, cols[i], (sq_qparams){0, false}) == s24[i]);
        SQ_CHECK(sq_row_bytes(SQ_TYPE_S48_F16, cols[i], (sq_qparams){0, false}) == s48[i]);
        SQ_CHECK(sq_row_bytes(SQ_TYPE_SMASK_F16, cols[i], (sq_qparams){(int32_t)(cols[i] / 2), false}) == s24[i]);
    }
}

/* The T from which variant k runs its packed GEMM for type t (0: it has none). */
static int64_t gemm_min_t(const sq_kernels *k, sq_type t) {
    if (strcmp(k->name, "avx512") == 0) return SQ_SGEMM_MIN_T_AVX512;
    if (strcmp(k->name, "avx2") == 0)
        return t == SQ_TYPE_SMASK_F16 || t == SQ_TYPE_SMASK_F32 ? SQ_SGEMM_MIN_T_AVX2_MASK : SQ_SGEMM_MIN_T_AVX2;
    return 0;
}

/* Kernel of variant k on a packed matrix vs the dense f32 reference. From T >= gemm_min_t
 * the SIMD kernels run the packed GEMM, which must give exactly the FMA chain over the
 * columns in ascending order (the zeros add nothing), computed here with fmaf. */
static void check_kernels_on(const sq_kernels *k, sq_type t, int64_t rows, int64_t cols, int64_t T, uint64_t *rng,
                             double density) {
    int64_t kmax;
    void *dense = make_dense(t, rows, cols, density, rng, &kmax);
    const sq_qparams q = params_for(t, kmax);
    const size_t rb = sq_row_bytes(t, cols, q);
    uint8_t *p = pack(t, q, rows, cols, dense);
    float *wf = to_f32(sq_sparse_value_type(t), dense, rows * cols);
    float *x = malloc((size_t)(T * cols) * sizeof *x), *y = malloc((size_t)(T * rows) * sizeof *y),
          *yr = malloc((size_t)(T * rows) * sizeof *yr);
    for (int64_t i = 0; i < T * cols; i++) x[i] = sq_tiny_uniform(rng) * 2.0f - 1.0f;
    sq_matmul_f32_ref(yr, rows, x, wf, (size_t)cols * 4, T, 0, rows, cols);
    for (int64_t i = 0; i < T * rows; i++) y[i] = NAN;
    k->qmatmul[t](y, rows, x, p, rb, T, 0, rows, cols, q);
    double worst = 0;
    for (int64_t tt = 0; tt < T; tt++)
        for (int64_t r = 0; r < rows; r++) {
            double mag = 0;
            for (int64_t c = 0; c < cols; c++) mag += fabs((double)x[tt * cols + c] * wf[r * cols + c]);
            const double d = fabs((double)y[tt * rows + r] - yr[tt * rows + r]);
            const double tol = strcmp(k->name, "ref") == 0 ? 0.0 : 4.0 * sqrt((double)cols + 1) * 1.2e-7 * mag + 1e-30;
            if (!(d <= tol)) worst = fmax(worst, isnan(d) ? INFINITY : d / fmax(tol, 1e-30));
        }
    SQ_CHECKF(worst == 0, "%s %s rows %lld cols %lld T %lld: off by %g x the tolerance", k->name, sq_type_name(t),
              (long long)rows, (long long)cols, (long long)T, worst);
    const int64_t gmin = gemm_min_t(k, t);
    if (gmin > 0 && T >= gmin) {
        /* the GEMM: the FMA chain exactly, and the same bits for the last gmin tokens alone */
        int64_t bad = 0;
        for (int64_t tt = 0; tt < T; tt++)
            for (int64_t r = 0; r < rows; r++) {
                float acc = 0.0f;
                for (int64_t c = 0; c < cols; c++) acc = fmaf(wf[r * cols + c], x[tt * cols + c], acc);
                bad += !(y[tt * rows + r] == acc);
            }
        SQ_CHECKF(bad == 0, "%s %s rows %lld cols %lld T %lld: %lld outputs differ from the FMA chain", k->name,
                  sq_type_name(t), (long long)rows, (long long)cols, (long long)T, (long long)bad);
        float *yl = malloc((size_t)(gmin * rows) * sizeof *yl);
        k->qmatmul[t](yl, rows, x + (T - gmin) * cols, p, rb, gmin, 0, rows, cols, q);
        SQ_CHECKF(memcmp(yl, y + (T - gmin) * rows, (size_t)(gmin * rows) * sizeof *yl) == 0,
                  "%s %s cols %lld T %lld: the last %lld tokens alone differ", k->name, sq_type_name(t), (long long)cols,
                  (long long)T, (long long)gmin);
        free(yl);
    } else if (T > 1) {
        /* each token alone gives the same bits as the T-token call (kernels may block tokens) */
        float *y1 = malloc((size_t)rows * sizeof *y1);
        int64_t diff = 0;
        for (int64_t tt = 0; tt < T; tt++) {
            k->qmatmul[t](y1, rows, x + tt * cols, p, rb, 1, 0, rows, cols, q);
            diff += memcmp(y1, y + tt * rows, (size_t)rows * sizeof *y1) != 0;
        }
        SQ_CHECKF(diff == 0, "%s %s cols %lld T %lld: %lld tokens differ from the one-token call", k->name,
                  sq_type_name(t), (long long)cols, (long long)T, (long long)diff);
        free(y1);
    }
    /* a row range gives the same bits as the whole call */
    if (rows > 2) {
        float *y2 = malloc((size_t)(T * rows) * sizeof *y2);
        memcpy(y2, y, (size_t)(T * rows) * sizeof *y2);
        k->qmatmul[t](y2, rows, x, p, rb, T, 1, rows - 1, cols, q);
        SQ_CHECK(memcmp(y2, y, (size_t)(T * rows) * sizeof *y2) == 0);
        free(y2);
    }
    free(dense), free(p), free(wf), free(x), free(y), free(yr);
}

SQ_TEST(kernels_vs_dense_reference) {
    const char *const *names = sq_kernels_compiled();
    uint64_t rng = 11;
    const int64_t shapes[][3] = {{1, 8, 1}, {5, 24, 1}, {7, 40, 3}, {33, 136, 1}, {17, 264, 2}, {9, 1000, 1},
                                 {3, 13, 2}, {4, 37, 1}, {70, 512, 1}, {2, 4104, 1}, {9, 264, 5}, {5, 520, 8},
                                 {3, 40, 4}, {6, 1032, 11},
                                 /* T at and above the GEMM thresholds: partial row tiles and token groups,
                                  * ragged last chunks (cols % 32 != 0), several column blocks (> 768) */
                                 {37, 136, 16}, {33, 264, 17}, {5, 8, 20}, {17, 1000, 25}, {40, 2056, 24},
                                 {9, 264, 100}, {3, 1560, 13}, {48, 776, 40}};
    for (int v = 0; names[v]; v++) {
        const sq_kernels *k = sq_kernels_by_name(names[v]);
        if (!k) continue;
        for (int ti = 0; ti < N_TYPES; ti++) {
            const sq_type t = all_types[ti];
            const int m = t == SQ_TYPE_S24_F16 || t == SQ_TYPE_S24_F32 ? 4 : t == SQ_TYPE_SMASK_F16 || t == SQ_TYPE_SMASK_F32 ? 1 : 8;
            SQ_CHECK(k->qmatmul[t] != NULL);
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                if (shapes[s][1] % m) continue;
                check_kernels_on(k, t, shapes[s][0], shapes[s][1], shapes[s][2], &rng, 0.3);
                if (m == 1) check_kernels_on(k, t, shapes[s][0], shapes[s][1], shapes[s][2], &rng, 0.9);
            }
        }
    }
}

/* The bitmask streaming loops (below the GEMM thresholds) read a 64-column mask word at a
 * time and compute the value offsets of its bytes / 16-bit words at once, fall back to a
 * byte (AVX2) or 16-column (AVX-512) loop near the row's last values and finish with the
 * reference loop: rows with empty and full mask words, varying slack below K, and column
 * counts around word boundaries must still match the reference (a wrong value cursor in
 * any of the loops or at a hand-over between them gives wrong outputs). */
SQ_TEST(mask_streaming_words) {
    const char *const *names = sq_kernels_compiled();
    uint64_t rng = 23;
    const int64_t shapes[][3] = {{16, 64, 1}, {16, 72, 1}, {9, 128, 2}, {12, 200, 1}, {8, 520, 3}, {6, 1000, 5},
                                 {5, 2056, 1}, {4, 4104, 4}, {7, 192, 20}};
    const sq_type types[] = {SQ_TYPE_SMASK_F16, SQ_TYPE_SMASK_F32};
    for (int v = 0; names[v]; v++) {
        const sq_kernels *k = sq_kernels_by_name(names[v]);
        if (!k) continue;
        for (int ti = 0; ti < 2; ti++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                check_kernels_on(k, types[ti], shapes[s][0], shapes[s][1], shapes[s][2], &rng, -1.0);
                check_kernels_on(k, types[ti], shapes[s][0], shapes[s][1], shapes[s][2], &rng, -1.0);
            }
    }
}

/* Random bytes as rows: results are garbage, but no kernel may read outside the row or x
 * (the sanitizer build fails if one does). Each row is its own allocation. */
SQ_TEST(hostile_rows) {
    const char *const *names = sq_kernels_compiled();
    uint64_t rng = 5;
    for (int ti = 0; ti < N_TYPES; ti++) {
        const sq_type t = all_types[ti];
        const bool mask = t == SQ_TYPE_SMASK_F16 || t == SQ_TYPE_SMASK_F32;
        for (int64_t cols = 8; cols <= 264; cols += 64) {
            for (int32_t kcap = 0; kcap <= (mask ? (int32_t)cols : 0); kcap += mask ? 17 : 1) {
                const sq_qparams q = {kcap, false};
                const size_t rb = sq_row_bytes(t, cols, q);
                uint8_t *w = malloc(rb);
                for (size_t i = 0; i < rb; i++) w[i] = (uint8_t)(sq_tiny_rand(&rng) | 0x11); /* dense masks */
                float *x = malloc((size_t)(20 * cols) * sizeof *x), y[20] = {0};
                for (int64_t i = 0; i < 20 * cols; i++) x[i] = 1.0f;
                for (int v = 0; names[v]; v++) {
                    const sq_kernels *k = sq_kernels_by_name(names[v]);
                    if (k) k->qmatmul[t](y, 1, x, w, rb, 1, 0, 1, cols, q);
                    if (k) k->qmatmul[t](y, 1, x, w, rb, 5, 0, 1, cols, q); /* token-blocked path */
                    if (k) k->qmatmul[t](y, 1, x, w, rb, 20, 0, 1, cols, q); /* packed GEMM */
                }
                float row[300];
                sq_srow_dequant(t, q, cols, w, row);
                free(w), free(x);
            }
        }
    }
}

SQ_TEST(threads_same_bits) {
    uint64_t rng = 3;
    const sq_kernels *k = sq_kernels_get();
    for (int ti = 0; ti < N_TYPES; ti++) {
        const sq_type t = all_types[ti];
        const int64_t rows = 256, cols = 2048; /* 512K multiply-adds: above the threading threshold */
        int64_t kmax;
        void *dense = make_dense(t, rows, cols, 0.5, &rng, &kmax);
        const sq_qparams q = params_for(t, kmax);
        uint8_t *p = pack(t, q, rows, cols, dense);
        const int64_t NT = 24; /* T = 1 (decode) and T = 24 (the packed GEMM of the SIMD variants) */
        float *x = malloc((size_t)(NT * cols) * sizeof *x), *y1 = malloc((size_t)(NT * rows) * 4),
              *y2 = malloc((size_t)(NT * rows) * 4);
        for (int64_t i = 0; i < NT * cols; i++) x[i] = sq_tiny_uniform(&rng) - 0.5f;
        sq_mat w = {t, q, rows, cols, sq_row_bytes(t, cols, q), p, false};
        for (int64_t T = 1; T <= NT; T += NT - 1) {
            sq_set_num_threads(1);
            sq_matmul(k, y1, x, &w, T);
            sq_set_num_threads(2);
            sq_matmul(k, y2, x, &w, T);
            SQ_CHECKF(memcmp(y1, y2, (size_t)(T * rows) * 4) == 0, "%s T %lld", sq_type_name(t), (long long)T);
        }
        sq_set_num_threads(0);
        free(dense), free(p), free(x), free(y1), free(y2);
    }
}

/* Zeroes weights of a dense f32/f16 matrix: pattern 4 = 2:4, 8 = 4:8 (the lowest-index
 * ones are kept... any fixed choice does), 0 = every weight with (r * 7 + c * 3) % 10 < 7. */
static void prune_tensor(sq_tensor *t, int pattern) {
    const int vb = t->type == SQ_TYPE_F16 ? 2 : 4;
    for (int64_t r = 0; r < t->shape[0]; r++)
        for (int64_t c = 0; c < t->shape[1]; c++) {
            bool zero = pattern == 4 ? (c % 4) >= 2 : pattern == 8 ? ((c * 5 + r) % 8) >= 4 : (r * 7 + c * 3) % 10 < 7;
            if (zero) memset((char *)t->data + (r * t->shape[1] + c) * vb, 0, (size_t)vb);
        }
}

SQ_TEST(export_choice) {
    uint64_t rng = 9;
    sq_tensor d = {0};
    d.name = sq_strdup("w");
    d.type = SQ_TYPE_F16;
    d.n_dims = 2;
    d.shape[0] = 16;
    d.shape[1] = 64;
    d.nbytes = 16 * 64 * 2;
    d.data = malloc(d.nbytes);
    d.owns_data = true;
    const int patterns[] = {4, 8, 0, -1};
    /* 4:8 zeros: 4-bit indices cost 2 bits per weight, a bitmask 1, so the bitmask wins */
    const sq_type want[] = {SQ_TYPE_S24_F16, SQ_TYPE_SMASK_F16, SQ_TYPE_SMASK_F16, SQ_TYPE_F16};
    for (int i = 0; i < 4; i++) {
        for (int64_t j = 0; j < 16 * 64; j++) put(d.data, 2, j, rand_val(&rng, 2));
        if (patterns[i] >= 0) prune_tensor(&d, patterns[i]);
        sq_tensor s = {0}, back = {0};
        bool changed = true;
        SQ_CHECK_OK(sq_tensor_sparsify(&d, &s, &changed));
        SQ_CHECKF(changed == (want[i] != SQ_TYPE_F16), "pattern %d", patterns[i]);
        if (!changed) continue;
        SQ_CHECKF(s.type == want[i], "pattern %d: %s", patterns[i], sq_type_name(s.type));
        SQ_CHECK(s.nbytes < d.nbytes - d.nbytes / 8);
        SQ_CHECK(strcmp(s.name, "w") == 0 && s.shape[0] == 16 && s.shape[1] == 64);
        SQ_CHECK_OK(sq_tensor_densify(&s, &back));
        SQ_CHECK(back.type == SQ_TYPE_F16 && back.nbytes == d.nbytes && memcmp(back.data, d.data, d.nbytes) == 0);
        if (patterns[i] == 0) SQ_CHECK(s.q.group > 0 && s.q.group <= 64 * 3 / 10 + 2); /* K = max kept per row */
        if (patterns[i] == 8) SQ_CHECK(s.q.group == 32);
        sq_tensor_release(&s);
        sq_tensor_release(&back);
    }
    sq_tensor_release(&d);
}

static float *logits_of(sq_model *m, const int32_t *toks, int32_t n) {
    sq_state *s = NULL;
    if (sq_state_init(&s, m, n, 8)) return NULL;
    float *lg = malloc((size_t)n * m->cfg.vocab_size * sizeof(float));
    if (sq_forward(s, toks, n, 0, lg)) {
        free(lg);
        lg = NULL;
    }
    sq_state_free(s);
    return lg;
}

/* A pruned tiny model: the .sqz with sparse types runs to the dense file's logits and
 * sq_import_sqz restores the dense tensors bit for bit. */
SQ_TEST(model_end_to_end) {
    for (int ty = 0; ty < 2; ty++) {
        sq_tiny_spec s = sq_tiny_spec_default();
        s.type = ty ? SQ_TYPE_F16 : SQ_TYPE_F32;
        sq_checkpoint c, sp, back;
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
        SQ_CHECK_OK(sq_tiny_checkpoint(&s, &sp));
        int n_sparse = 0;
        for (int32_t i = 0; i < c.n_tensors; i++) {
            sq_tensor *t = &c.tensors[i];
            if (t->n_dims != 2) continue;
            prune_tensor(t, i % 3 == 0 ? 4 : i % 3 == 1 ? 8 : 0);
            sq_tensor *u = &sp.tensors[i], z;
            memcpy(u->data, t->data, t->nbytes);
            bool changed;
            SQ_CHECK_OK(sq_tensor_sparsify(u, &z, &changed));
            if (changed) {
                sq_tensor_release(u);
                *u = z;
                n_sparse++;
            }
        }
        SQ_CHECK(n_sparse >= 8);
        char pd[600], ps[600];
        snprintf(pd, sizeof pd, "%s/dense%d.sqz", sq_test_tmpdir(), ty);
        snprintf(ps, sizeof ps, "%s/sparse%d.sqz", sq_test_tmpdir(), ty);
        SQ_CHECK_OK(sq_sqz_write(pd, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0));
        SQ_CHECK_OK(sq_sqz_write(ps, &sp.cfg, &sp.vocab, sp.tensors, sp.n_tensors, NULL, 0));
        sq_model *md = NULL, *ms = NULL;
        SQ_CHECK_OK(sq_model_open(&md, pd, true));
        SQ_CHECK_OK(sq_model_open(&ms, ps, true));
        const int32_t toks[12] = {1, 5, 9, 2, 7, 3, 11, 4, 6, 8, 10, 12};
        if (md && ms) {
            float *a = logits_of(md, toks, 12), *b = logits_of(ms, toks, 12);
            SQ_CHECK(a && b);
            double d = 0, mag = 0;
            for (int64_t i = 0; a && b && i < 12LL * c.cfg.vocab_size; i++) {
                d = fmax(d, fabs(a[i] - b[i]));
                mag = fmax(mag, fabs(a[i]));
            }
            SQ_CHECKF(d <= 1e-4 * fmax(mag, 1.0), "logits differ by %g (scale %g)", d, mag);
            free(a), free(b);
        }
        sq_model_free(md);
        sq_model_free(ms);
        SQ_CHECK_OK(sq_import_sqz(ps, &back));
        SQ_CHECK(back.n_tensors == c.n_tensors);
        for (int32_t i = 0; i < back.n_tensors && i < c.n_tensors; i++) {
            const sq_tensor *o = sq_checkpoint_find(&back, c.tensors[i].name);
            SQ_CHECK(o && o->type == c.tensors[i].type && o->nbytes == c.tensors[i].nbytes &&
                     memcmp(o->data, c.tensors[i].data, o->nbytes) == 0);
        }
        sq_checkpoint_free(&back);
        sq_checkpoint_free(&c);
        sq_checkpoint_free(&sp);
    }
}

int main(void) {
    SQ_RUN(roundtrip);
    SQ_RUN(refused_rows);
    SQ_RUN(worked_examples);
    SQ_RUN(kernels_vs_dense_reference);
    SQ_RUN(mask_streaming_words);
    SQ_RUN(hostile_rows);
    SQ_RUN(threads_same_bits);
    SQ_RUN(export_choice);
    SQ_RUN(model_end_to_end);
    return sq_test_summary();
}
