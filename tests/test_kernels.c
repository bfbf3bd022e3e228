/* test_kernels.c - every compiled and supported kernel variant against the scalar
 * reference: matmul for f32/f16/bf16 weights over ragged shapes, token counts that hit
 * each loop (GEMV, few-token, packed GEMM with partial tiles) and row sub-ranges; special
 * weights (subnormal halves, signed zeros, NaN); bitwise determinism of sq_matmul across
 * thread counts and of the kernels across row splits; exhaustive half/bfloat16
 * conversion; dot, axpy and sq_mat_row_f32; run-time selection by environment.
 */
#include <float.h>
#include <stdint.h>
#include <sys/wait.h>

#include "../runtime/kernels.h"
#include "test.h"

/* ===== Helpers ===== */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unif(void) { return (float)((double)(rng_next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

static int64_t rng_int(int64_t n) { return (int64_t)(rng_next() % (uint64_t)n); }

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The float weight types the plain matmul table serves (quantized types use qmatmul). */
#define N_FLOAT_TYPES (SQ_TYPE_BF16 + 1)
static const char *type_names[N_FLOAT_TYPES] = {"f32", "f16", "bf16"};

/* The SIMD variants usable on this machine (not the reference), NULL-terminated. */
static int simd_variants(const sq_kernels **out, int max) {
    int n = 0;
    const char *const *names = sq_kernels_compiled();
    for (int i = 0; names[i] && n < max - 1; i++) {
        if (strcmp(names[i], "ref") == 0) continue;
        const sq_kernels *k = sq_kernels_by_name(names[i]);
        if (k) out[n++] = k;
    }
    out[n] = NULL;
    return n;
}

/* A weight matrix of `rows` x `cols` with row_bytes = cols*elt + pad*elt; padding is filled
 * with NaN so a kernel that reads past a row's end poisons its output. `special` mixes in
 * subnormal halves and signed zeros. Also returns the f32 value of every weight. */
typedef struct {
    sq_type type;
    int64_t rows, cols;
    size_t row_bytes;
    void *data;
    float *val; /* [rows * cols] */
} test_mat;

static void mat_make(test_mat *m, sq_type type, int64_t rows, int64_t cols, int64_t pad, int special) {
    size_t elt = type == SQ_TYPE_F32 ? 4 : 2;
    m->type = type;
    m->rows = rows;
    m->cols = cols;
    m->row_bytes = (size_t)(cols + pad) * elt;
    m->data = malloc(m->row_bytes * (size_t)rows + 1);
    m->val = malloc(sizeof(float) * (size_t)(rows * cols) + 1);
    for (int64_t r = 0; r < rows; r++) {
        char *row = (char *)m->data + (size_t)r * m->row_bytes;
        for (int64_t c = 0; c < cols + pad; c++) {
            float v = rng_unif();
            uint16_t h = 0;
            int kind = special ? (int)rng_int(8) : 7;
            if (c >= cols) kind = -1;
            switch (type) {
            case SQ_TYPE_F32:
                if (kind == 0) v = 0.0f;
                else if (kind == 1) v = -0.0f;
                else if (kind == 2) v = FLT_MIN * 0.25f * rng_unif(); /* subnormal */
                else if (kind == -1) v = NAN;
                memcpy(row + c * 4, &v, 4);
                break;
            case SQ_TYPE_F16:
                if (kind == 0) h = 0x0000;
                else if (kind == 1) h = 0x8000;
                else if (kind == 2) h = (uint16_t)(1 + rng_int(0x3FF)) | (rng_int(2) ? 0x8000 : 0); /* subnormal */
                else if (kind == -1) h = 0x7E00;
                else h = sq_f32_to_f16(v);
                memcpy(row + c * 2, &h, 2);
                v = sq_f16_to_f32(h);
                break;
            case SQ_TYPE_BF16:
                if (kind == 0) h = 0x0000;
                else if (kind == 1) h = 0x8000;
                else if (kind == 2) h = (uint16_t)(1 + rng_int(0x7F)) | (rng_int(2) ? 0x8000 : 0); /* subnormal */
                else if (kind == -1) h = 0x7FC0;
                else h = sq_f32_to_bf16(v);
                memcpy(row + c * 2, &h, 2);
                v = sq_bf16_to_f32(h);
                break;
            default: break;
            }
            if (c < cols) m->val[r * cols + c] = v;
        }
    }
}

static void mat_free(test_mat *m) {
    free(m->data);
    free(m->val);
}

static float *rand_vec(int64_t n) {
    float *v = malloc(sizeof(float) * (size_t)n + 1);
    for (int64_t i = 0; i < n; i++) v[i] = rng_unif();
    return v;
}

/* Tolerance for a dot product of length n: a float sum's rounding error grows like
 * sqrt(n)·eps·|x|·|w| for random data; 8x headroom, plus a floor for tiny sums. */
static double dot_tol(const float *x, const float *w, int64_t n) {
    double nx = 0, nw = 0;
    for (int64_t i = 0; i < n; i++) {
        nx += (double)x[i] * x[i];
        nw += (double)w[i] * w[i];
    }
    return 8.0 * sqrt((double)(n > 0 ? n : 1)) * FLT_EPSILON * sqrt(nx) * sqrt(nw) + 1e-37;
}

/* ===== Selection ===== */

SQ_TEST(test_tables) {
    const char *const *names = sq_kernels_compiled();
    SQ_CHECK(names && names[0] && strcmp(names[0], "ref") == 0);
    SQ_CHECK(sq_kernels_by_name("ref") == sq_kernels_ref());
    SQ_CHECK(sq_kernels_by_name("no-such-variant") == NULL);
    SQ_CHECK(sq_kernels_by_name(NULL) == NULL);
    const sq_kernels *k = sq_kernels_get();
    SQ_CHECK(k != NULL && k == sq_kernels_get());
    for (int i = 0; names[i]; i++) {
        const sq_kernels *v = sq_kernels_by_name(names[i]);
        printf("  variant %-7s %s\n", names[i], v ? (v == k ? "supported (selected)" : "supported") : "not supported here");
        if (!v) continue;
        SQ_CHECK(strcmp(v->name, names[i]) == 0);
        for (int t = 0; t < N_FLOAT_TYPES; t++) SQ_CHECK(v->matmul[t] != NULL);
        for (int t = N_FLOAT_TYPES; t < SQ_TYPE_COUNT; t++) SQ_CHECK(v->qmatmul[t] != NULL);
        SQ_CHECK(v->dot_f32 && v->axpy_f32 && v->f16_to_f32 && v->bf16_to_f32);
    }
}

/* Runs sq_kernels_get() in a child with `var=value` set; returns its choice's name in buf. */
static int child_choice(const char *var, const char *value, char *buf, size_t n) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fds[0]);
        setenv(var, value, 1);
        const char *name = sq_kernels_get()->name;
        ssize_t wr = write(fds[1], name, strlen(name));
        _exit(wr < 0 ? 1 : 0);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], buf, n - 1);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got < 0) return -1;
    buf[got] = '\0';
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

SQ_TEST(test_env_selection) {
    char buf[64];
    SQ_CHECK(child_choice("SQUISH_FORCE_REF", "1", buf, sizeof buf) == 0 && strcmp(buf, "ref") == 0);
    SQ_CHECK(child_choice("SQUISH_KERNELS", "ref", buf, sizeof buf) == 0 && strcmp(buf, "ref") == 0);
    const char *const *names = sq_kernels_compiled();
    for (int i = 0; names[i]; i++) {
        if (!sq_kernels_by_name(names[i])) continue;
        SQ_CHECKF(child_choice("SQUISH_KERNELS", names[i], buf, sizeof buf) == 0 && strcmp(buf, names[i]) == 0,
                  "SQUISH_KERNELS=%s chose %s", names[i], buf);
    }
    /* an unknown name falls back to the best variant */
    SQ_CHECK(child_choice("SQUISH_KERNELS", "bogus", buf, sizeof buf) == 0 && strcmp(buf, sq_kernels_get()->name) == 0);
}

/* ===== Matmul against the reference ===== */

/* Checks variant k against the reference on one shape; y rows outside [r0, r1) and the
 * ldy padding must stay untouched. Returns the number of mismatches. */
static int check_matmul(const sq_kernels *k, sq_type type, int64_t rows, int64_t cols, int64_t T, int64_t r0,
                        int64_t r1, int special) {
    test_mat m;
    mat_make(&m, type, rows, cols, rng_int(3), special);
    float *x = rand_vec(T * cols);
    if (special && T * cols > 0) {
        x[rng_int(T * cols)] = 0.0f;
        x[rng_int(T * cols)] = -0.0f;
        x[rng_int(T * cols)] = FLT_MIN * 0.5f;
    }
    const int64_t ldy = rows + 5;
    float *yr = malloc(sizeof(float) * (size_t)(T * ldy) + 1);
    float *ys = malloc(sizeof(float) * (size_t)(T * ldy) + 1);
    for (int64_t i = 0; i < T * ldy; i++) yr[i] = ys[i] = -12345.0f;
    sq_kernels_ref()->matmul[type](yr, ldy, x, m.data, m.row_bytes, T, r0, r1, cols);
    k->matmul[type](ys, ldy, x, m.data, m.row_bytes, T, r0, r1, cols);
    int bad = 0;
    for (int64_t t = 0; t < T && bad < 5; t++) {
        for (int64_t r = 0; r < ldy; r++) {
            float a = ys[t * ldy + r], b = yr[t * ldy + r];
            int ok;
            if (r < r0 || r >= r1) ok = a == -12345.0f && b == -12345.0f;
            else ok = fabs((double)a - (double)b) <= dot_tol(x + t * cols, m.val + r * cols, cols);
            if (!ok && bad++ < 5)
                printf("  %s %s rows=%lld cols=%lld T=%lld r=[%lld,%lld): y[%lld][%lld] = %.9g, ref %.9g\n", k->name,
                       type_names[type], (long long)rows, (long long)cols, (long long)T, (long long)r0, (long long)r1,
                       (long long)t, (long long)r, a, b);
        }
    }
    free(x);
    free(yr);
    free(ys);
    mat_free(&m);
    return bad;
}

SQ_TEST(test_matmul_vs_ref) {
    const sq_kernels *vs[8];
    if (!simd_variants(vs, 8)) SQ_SKIP("no SIMD variant on this machine");
    static const int64_t cols_list[] = {1, 3, 15, 17, 31, 33, 64, 172, 255, 257, 1000};
    static const int64_t T_list[] = {1, 2, 3, 4, 5, 7, 8, 17, 64};
    int runs = 0, bad = 0;
    for (int v = 0; vs[v]; v++)
        for (int type = 0; type < N_FLOAT_TYPES; type++)
            for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++)
                for (size_t ti = 0; ti < sizeof T_list / sizeof *T_list; ti++) {
                    int64_t cols = cols_list[ci], T = T_list[ti];
                    int64_t rows = 1 + rng_int(cols * T > 20000 ? 40 : 75);
                    int64_t r0 = rng_int(3) == 0 ? 0 : rng_int(rows);
                    int64_t r1 = rng_int(3) == 0 ? rows : r0 + 1 + rng_int(rows - r0);
                    bad += check_matmul(vs[v], (sq_type)type, rows, cols, T, r0, r1, (int)(ti + ci) % 2);
                    runs++;
                }
    SQ_CHECKF(bad == 0, "%d mismatches in %d runs", bad, runs);
}

/* Bigger shapes: several packed tiles, partial last tile, multiple column blocks. */
SQ_TEST(test_matmul_tiles) {
    const sq_kernels *vs[8];
    if (!simd_variants(vs, 8)) SQ_SKIP("no SIMD variant on this machine");
    static const int64_t shapes[][3] = {{70, 600, 13}, {96, 256, 24}, {33, 513, 40}, {130, 300, 9}, {64, 64, 100},
                                        {37, 70, 530} /* more tokens than one packed x block */};
    int bad = 0;
    for (int v = 0; vs[v]; v++)
        for (int type = 0; type < N_FLOAT_TYPES; type++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                int64_t rows = shapes[s][0], cols = shapes[s][1], T = shapes[s][2];
                bad += check_matmul(vs[v], (sq_type)type, rows, cols, T, 0, rows, 1);
                bad += check_matmul(vs[v], (sq_type)type, rows, cols, T, 5, rows - 3, 0);
            }
    SQ_CHECK(bad == 0);
}

/* A NaN weight or activation reaches the output in every loop of every variant. */
SQ_TEST(test_matmul_nan) {
    const sq_kernels *vs[8];
    int n = simd_variants(vs, 7);
    vs[n++] = sq_kernels_ref();
    vs[n] = NULL;
    static const int64_t T_list[] = {1, 3, 17};
    for (int v = 0; vs[v]; v++)
        for (int type = 0; type < N_FLOAT_TYPES; type++)
            for (int ti = 0; ti < 3; ti++) {
                int64_t rows = 40, cols = 100, T = T_list[ti];
                test_mat m;
                mat_make(&m, (sq_type)type, rows, cols, 0, 0);
                char *row7 = (char *)m.data + 7 * m.row_bytes;
                if (type == SQ_TYPE_F32) {
                    float nan = NAN;
                    memcpy(row7 + 4 * 33, &nan, 4);
                } else {
                    uint16_t h = type == SQ_TYPE_F16 ? 0x7E00 : 0x7FC0;
                    memcpy(row7 + 2 * 33, &h, 2);
                }
                float *x = rand_vec(T * cols);
                x[(T - 1) * cols + 5] = NAN; /* last token: every row NaN */
                float *y = malloc(sizeof(float) * (size_t)(T * rows));
                vs[v]->matmul[type](y, rows, x, m.data, m.row_bytes, T, 0, rows, cols);
                for (int64_t t = 0; t < T; t++)
                    for (int64_t r = 0; r < rows; r++) {
                        int want_nan = r == 7 || t == T - 1;
                        SQ_CHECKF((isnan(y[t * rows + r]) != 0) == want_nan, "%s %s T=%lld y[%lld][%lld]=%g", vs[v]->name,
                                  type_names[type], (long long)T, (long long)t, (long long)r, y[t * rows + r]);
                    }
                free(x);
                free(y);
                mat_free(&m);
            }
}

/* cols == 0 gives zeros; T == 0 and empty row ranges write nothing. */
SQ_TEST(test_matmul_degenerate) {
    const sq_kernels *vs[8];
    int n = simd_variants(vs, 7);
    vs[n++] = sq_kernels_ref();
    vs[n] = NULL;
    for (int v = 0; vs[v]; v++)
        for (int type = 0; type < N_FLOAT_TYPES; type++) {
            float x[4] = {1, 2, 3, 4}, y[12];
            uint32_t w[4] = {0};
            for (int i = 0; i < 12; i++) y[i] = 7.0f;
            vs[v]->matmul[type](y, 3, x, w, 0, 4, 0, 3, 0);
            for (int i = 0; i < 12; i++) SQ_CHECK(y[i] == 0.0f);
            for (int i = 0; i < 12; i++) y[i] = 7.0f;
            vs[v]->matmul[type](y, 3, x, w, 8, 0, 0, 3, 2);
            vs[v]->matmul[type](y, 3, x, w, 8, 4, 2, 2, 2);
            for (int i = 0; i < 12; i++) SQ_CHECK(y[i] == 7.0f);
        }
}

/* ===== Determinism ===== */

/* The kernels give the same bits whatever the row split, and sq_matmul gives the same
 * bits on 1 and 2 threads (with the shape large enough to really use two). */
SQ_TEST(test_matmul_deterministic) {
    const sq_kernels *vs[8];
    int n = simd_variants(vs, 7);
    vs[n++] = sq_kernels_ref();
    vs[n] = NULL;
    static const int64_t T_list[] = {1, 3, 6, 17, 64};
    const int saved = sq_num_threads();
    for (int v = 0; vs[v]; v++)
        for (int type = 0; type < N_FLOAT_TYPES; type++)
            for (int ti = 0; ti < 5; ti++) {
                int64_t T = T_list[ti];
                int64_t rows = 301, cols = T > 8 ? 520 : 2100;
                if (vs[v] == sq_kernels_ref() && T > 8) rows = 97;
                test_mat m;
                mat_make(&m, (sq_type)type, rows, cols, 0, 1);
                float *x = rand_vec(T * cols);
                size_t ny = (size_t)(T * rows);
                float *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny), *y3 = malloc(sizeof(float) * ny);
                sq_mat mat = {.type = (sq_type)type, .rows = rows, .cols = cols, .row_bytes = m.row_bytes, .data = m.data};
                sq_set_num_threads(1);
                sq_matmul(vs[v], y1, x, &mat, T);
                sq_set_num_threads(2);
                sq_matmul(vs[v], y2, x, &mat, T);
                /* odd split points, not aligned to any tile */
                static const int64_t cuts[] = {0, 5, 38, 39, 200, 301};
                for (int c = 0; c < 5; c++) {
                    int64_t a = cuts[c] < rows ? cuts[c] : rows, b = cuts[c + 1] < rows ? cuts[c + 1] : rows;
                    vs[v]->matmul[type](y3, rows, x, m.data, m.row_bytes, T, a, b, cols);
                }
                int diff12 = 0, diff13 = 0;
                for (size_t i = 0; i < ny; i++) {
                    diff12 += f32_bits(y1[i]) != f32_bits(y2[i]);
                    diff13 += f32_bits(y1[i]) != f32_bits(y3[i]);
                }
                SQ_CHECKF(diff12 == 0 && diff13 == 0, "%s %s T=%lld: %d differ 1 vs 2 threads, %d differ across splits",
                          vs[v]->name, type_names[type], (long long)T, diff12, diff13);
                free(x);
                free(y1);
                free(y2);
                free(y3);
                mat_free(&m);
            }
    sq_set_num_threads(saved);
}

/* ===== Conversions, dot, axpy ===== */

SQ_TEST(test_half_exhaustive) {
    const sq_kernels *vs[8];
    int n = simd_variants(vs, 7);
    vs[n++] = sq_kernels_ref();
    vs[n] = NULL;
    uint16_t *src = malloc(sizeof(uint16_t) * 65536 + 64);
    float *dst = malloc(sizeof(float) * 65536 + 64);
    for (int i = 0; i < 65536; i++) src[i] = (uint16_t)i;
    for (int v = 0; vs[v]; v++) {
        int bad_h = 0, bad_b = 0;
        vs[v]->f16_to_f32(dst, src, 65536);
        for (int i = 0; i < 65536; i++) {
            float want = sq_f16_to_f32((uint16_t)i);
            int ok = f32_bits(dst[i]) == f32_bits(want);
            /* NaN payloads may come back quieted by hardware; sign and NaN-ness must hold */
            if (isnan(want)) ok = isnan(dst[i]) && (f32_bits(dst[i]) >> 31) == (f32_bits(want) >> 31);
            if (!ok && bad_h++ < 3) printf("  %s f16 0x%04x -> 0x%08x, want 0x%08x\n", vs[v]->name, i, f32_bits(dst[i]), f32_bits(want));
        }
        vs[v]->bf16_to_f32(dst, src, 65536);
        for (int i = 0; i < 65536; i++)
            if (f32_bits(dst[i]) != f32_bits(sq_bf16_to_f32((uint16_t)i)) && bad_b++ < 3)
                printf("  %s bf16 0x%04x -> 0x%08x\n", vs[v]->name, i, f32_bits(dst[i]));
        SQ_CHECKF(bad_h == 0 && bad_b == 0, "%s: %d f16 and %d bf16 mismatches", vs[v]->name, bad_h, bad_b);
        /* short, unaligned runs: tails must be exact and must not write past n */
        for (int64_t len = 0; len <= 40; len++) {
            for (int off = 0; off < 3; off++) {
                float out[48];
                for (int i = 0; i < 48; i++) out[i] = -7.0f;
                const uint16_t *s = src + 0x3C00 + 11 * len + off; /* normal values around 1.0 */
                vs[v]->f16_to_f32(out, s, len);
                for (int64_t i = 0; i < 48; i++)
                    SQ_CHECK(i < len ? out[i] == sq_f16_to_f32(s[i]) : out[i] == -7.0f);
                vs[v]->bf16_to_f32(out, s, len);
                for (int64_t i = 0; i < 48; i++)
                    SQ_CHECK(i < len ? f32_bits(out[i]) == f32_bits(sq_bf16_to_f32(s[i])) : out[i] == -7.0f);
            }
        }
    }
    free(src);
    free(dst);
}

SQ_TEST(test_dot_axpy) {
    const sq_kernels *vs[8];
    int n = simd_variants(vs, 7);
    vs[n++] = sq_kernels_ref();
    vs[n] = NULL;
    const sq_kernels *ref = sq_kernels_ref();
    for (int v = 0; vs[v]; v++) {
        int bad = 0;
        for (int64_t len = 0; len <= 300; len += len < 40 ? 1 : 37) {
            float *a = rand_vec(len + 1), *b = rand_vec(len + 1);
            float d = vs[v]->dot_f32(a, b, len), dr = ref->dot_f32(a, b, len);
            if (!(fabs((double)d - (double)dr) <= dot_tol(a, b, len))) bad++;
            float *y1 = rand_vec(len + 1), *y2 = malloc(sizeof(float) * (size_t)(len + 1));
            memcpy(y2, y1, sizeof(float) * (size_t)(len + 1));
            float alpha = rng_unif() * 3.0f;
            vs[v]->axpy_f32(y1, alpha, a, len);
            ref->axpy_f32(y2, alpha, a, len);
            for (int64_t i = 0; i < len; i++)
                if (!(fabs((double)y1[i] - (double)y2[i]) <= 2.0 * FLT_EPSILON * (fabs((double)y2[i]) + fabs((double)alpha * a[i]))))
                    bad++;
            if (y1[len] != y2[len]) bad++; /* nothing written past n */
            free(a);
            free(b);
            free(y1);
            free(y2);
        }
        SQ_CHECKF(bad == 0, "%s: %d dot/axpy mismatches", vs[v]->name, bad);
    }
}

SQ_TEST(test_mat_row) {
    const sq_kernels *k = sq_kernels_get();
    for (int type = 0; type < N_FLOAT_TYPES; type++) {
        test_mat m;
        mat_make(&m, (sq_type)type, 5, 77, 3, 1);
        sq_mat mat = {.type = (sq_type)type, .rows = 5, .cols = 77, .row_bytes = m.row_bytes, .data = m.data};
        float row[78];
        row[77] = -1.0f;
        for (int64_t r = 0; r < 5; r++) {
            sq_mat_row_f32(k, row, &mat, r);
            for (int c = 0; c < 77; c++) SQ_CHECK(f32_bits(row[c]) == f32_bits(m.val[r * 77 + c]));
            SQ_CHECK(row[77] == -1.0f);
        }
        mat_free(&m);
    }
}

/* Group-quantized weights, briefly (tests/test_quant_types.c has the full suite; this one
 * also runs in cross builds): every variant's qmatmul against the f32 reference matmul of
 * the dequantized rows, in each token-count loop, with ragged row lengths (one shorter
 * than a kernel's 256-column piece, one spanning two pieces). */
SQ_TEST(test_qmatmul_smoke) {
    const sq_kernels *vs[8];
    int n = simd_variants(vs, 7);
    vs[n++] = sq_kernels_ref();
    vs[n] = NULL;
    static const sq_type qt[] = {SQ_TYPE_Q8G, SQ_TYPE_Q4G, SQ_TYPE_Q3G, SQ_TYPE_Q5G, SQ_TYPE_Q6G};
    static const int64_t T_list[] = {1, 3, 70};
    const int64_t rows = 37;
    for (int v = 0; vs[v]; v++)
        for (int ti = 0; ti < (int)(sizeof qt / sizeof qt[0]); ti++)
            for (int tj = 0; tj < 6; tj++) {
                const int64_t cols = tj < 3 ? 100 : 300;
                const sq_qparams q = {tj % 3 == 1 ? 64 : 32, tj % 3 != 0};
                const int32_t qmax = (1 << sq_type_bits(qt[ti])) - 1;
                const size_t rb = sq_row_bytes(qt[ti], cols, q);
                uint8_t *w = malloc(rb * (size_t)rows), codes[300], zeros[10];
                float *wf = malloc(sizeof(float) * (size_t)(rows * cols)), scales[10];
                for (int64_t r = 0; r < rows; r++) {
                    for (int g = 0; g < 10; g++) {
                        scales[g] = sq_f16_to_f32(sq_f32_to_f16(rng_unif() * 0.1f));
                        zeros[g] = (uint8_t)rng_int(qmax + 1);
                    }
                    for (int64_t c = 0; c < cols; c++) codes[c] = (uint8_t)rng_int(qmax + 1);
                    SQ_CHECK_OK(sq_qrow_pack(qt[ti], q, cols, codes, scales, zeros, w + (size_t)r * rb));
                    sq_qrow_dequant(qt[ti], q, cols, w + (size_t)r * rb, wf + r * cols);
                }
                const int64_t T = T_list[tj % 3];
                float *x = rand_vec(T * cols), *y = malloc(sizeof(float) * (size_t)(T * rows));
                float *yr = malloc(sizeof(float) * (size_t)(T * rows));
                vs[v]->qmatmul[qt[ti]](y, rows, x, w, rb, T, 0, rows, cols, q);
                sq_kernels_ref()->matmul[SQ_TYPE_F32](yr, rows, x, wf, (size_t)cols * 4, T, 0, rows, cols);
                int bad = 0;
                for (int64_t t = 0; t < T; t++)
                    for (int64_t r = 0; r < rows; r++)
                        bad += !(fabs((double)y[t * rows + r] - yr[t * rows + r]) <=
                                 dot_tol(x + t * cols, wf + r * cols, cols));
                SQ_CHECKF(bad == 0, "%s %s T=%lld: %d outputs differ", vs[v]->name, sq_type_name(qt[ti]), (long long)T,
                          bad);
                free(w), free(wf), free(x), free(y), free(yr);
            }
}

SQ_TEST(test_threads) {
    const int saved = sq_num_threads();
    SQ_CHECK(saved >= 1);
    sq_set_num_threads(3);
#ifdef _OPENMP
    SQ_CHECK(sq_num_threads() == 3);
#else
    SQ_CHECK(sq_num_threads() == 1);
#endif
    sq_set_num_threads(0); /* back to the default */
    SQ_CHECK(sq_num_threads() >= 1);
    sq_set_num_threads(saved);
}

int main(void) {
    SQ_RUN(test_env_selection); /* first: forks before OpenMP starts threads */
    SQ_RUN(test_tables);
    SQ_RUN(test_matmul_vs_ref);
    SQ_RUN(test_matmul_tiles);
    SQ_RUN(test_matmul_nan);
    SQ_RUN(test_matmul_degenerate);
    SQ_RUN(test_matmul_deterministic);
    SQ_RUN(test_half_exhaustive);
    SQ_RUN(test_dot_axpy);
    SQ_RUN(test_mat_row);
    SQ_RUN(test_qmatmul_smoke);
    SQ_RUN(test_threads);
    return sq_test_summary();
}
