/* test_act8.c - the ACT8 path (int8 activations for q8g/q4g, docs/quantization.md): the one
 * activation quantizer against the formula, the reference kernel against a double-precision
 * evaluation of the specification (its integer part exactly), every compiled SIMD variant
 * against the reference on random shapes with ragged tails, groups 32/64/128/row, symmetric
 * and asymmetric, T = 1, 2, 5, 64, 100, and bitwise determinism over row splits and thread
 * counts. On AArch64 both builds of kernels_act8_neon.c (plain NEON, and sdot when the CPU has
 * dotprod) are checked, whichever the neon table selected, and the selection itself.
 */
#include <float.h>
#include <stdint.h>

#include "../runtime/kernels_internal.h"
#include "../runtime/quant_internal.h"
#include "test.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float rnd_f(void) { return (float)rnd_u32() / 4294967296.0f * 2.0f - 1.0f; }

/* A random quantized matrix: codes, fp16 scales, zeros (asym), packed. */
typedef struct {
    sq_type type;
    sq_qparams q;
    int64_t rows, cols, ng;
    size_t rb;
    uint8_t *data, *codes, *zeros;
    float *scales;
} qmat;

static void qmat_make(qmat *m, sq_type type, sq_qparams q, int64_t rows, int64_t cols) {
    m->type = type, m->q = q, m->rows = rows, m->cols = cols;
    m->ng = (cols + q.group - 1) / q.group;
    m->rb = sq_row_bytes(type, cols, q);
    m->data = malloc(m->rb * (size_t)rows);
    m->codes = malloc((size_t)(rows * cols));
    m->zeros = malloc((size_t)(rows * m->ng));
    m->scales = malloc(sizeof(float) * (size_t)(rows * m->ng));
    const uint32_t qmax = (1u << sq_type_bits(type)) - 1u;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) m->codes[r * cols + c] = (uint8_t)(rnd_u32() % (qmax + 1));
        for (int64_t g = 0; g < m->ng; g++) {
            m->scales[r * m->ng + g] = sq_f16_to_f32(sq_f32_to_f16(0.01f + 0.02f * (rnd_f() + 1.0f)));
            m->zeros[r * m->ng + g] = (uint8_t)(rnd_u32() % (qmax + 1));
        }
        sq_status st = sq_qrow_pack(type, q, cols, m->codes + r * cols, m->scales + r * m->ng,
                                    q.asym ? m->zeros + r * m->ng : NULL, m->data + (size_t)r * m->rb);
        SQ_CHECK(st == SQ_OK);
        if (!q.asym)
            for (int64_t g = 0; g < m->ng; g++) m->zeros[r * m->ng + g] = (uint8_t)(1u << (sq_type_bits(type) - 1));
    }
}

static void qmat_free(qmat *m) {
    free(m->data);
    free(m->codes);
    free(m->zeros);
    free(m->scales);
}

/* Activations with a spread of magnitudes per chunk, some all-zero chunks. */
static float *rand_x(int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        const int64_t c = i / 32;
        x[i] = c % 7 == 3 ? 0.0f : rnd_f() * (float)(1 + c % 5) * (c % 2 ? 0.01f : 3.0f);
    }
    return x;
}

/* The quantizer against its definition, written independently: d = amax / 127, codes
 * roundf(x / d) clamped, sums, zero padding; and |x - d * xq| <= d / 2 (plus rounding). */
SQ_TEST(quantizer_matches_formula) {
    const int64_t cols_list[] = {1, 31, 32, 33, 172, 256};
    for (size_t k = 0; k < sizeof cols_list / sizeof *cols_list; k++) {
        const int64_t cols = cols_list[k], nc = (cols + 31) / 32;
        float *x = rand_x(cols);
        int8_t *q = malloc((size_t)nc * 32);
        float *d = malloc(sizeof(float) * (size_t)nc);
        int32_t *s = malloc(sizeof(int32_t) * (size_t)nc);
        sq_act8_quantize(x, cols, 0, nc, q, d, s);
        for (int64_t c = 0; c < nc; c++) {
            float amax = 0;
            const int64_t n = cols - 32 * c < 32 ? cols - 32 * c : 32;
            for (int64_t j = 0; j < n; j++) amax = fabsf(x[32 * c + j]) > amax ? fabsf(x[32 * c + j]) : amax;
            const float dc = amax / 127.0f;
            SQ_CHECK(d[c] == dc);
            int32_t sum = 0;
            for (int64_t j = 0; j < 32; j++) {
                int32_t want = 0;
                if (j < n && dc > 0) {
                    float v = roundf(x[32 * c + j] / dc);
                    want = v > 127 ? 127 : v < -127 ? -127 : (int32_t)v;
                    SQ_CHECK(fabsf(x[32 * c + j] - dc * (float)q[32 * c + j]) <= 0.5f * dc * 1.0001f);
                }
                SQ_CHECKF(q[32 * c + j] == want, "cols %lld chunk %lld j %lld: %d, want %d", (long long)cols,
                          (long long)c, (long long)j, q[32 * c + j], want);
                sum += want;
            }
            SQ_CHECK(s[c] == sum);
            if (dc > 0) {
                int hit = 0; /* the largest magnitude maps to +-127 */
                for (int64_t j = 0; j < n; j++) hit |= q[32 * c + j] == 127 || q[32 * c + j] == -127;
                SQ_CHECK(hit);
            }
        }
        free(x), free(q), free(d), free(s);
    }
    /* exact halves round away from zero; NaN and inf keep d and give codes 0 */
    float x[32] = {0};
    x[0] = 127.0f, x[1] = 0.5f, x[2] = -0.5f, x[3] = 1.5f, x[4] = -2.5f;
    int8_t q[32];
    float d;
    int32_t s;
    sq_act8_quantize(x, 32, 0, 1, q, &d, &s);
    SQ_CHECK(d == 1.0f && q[0] == 127 && q[1] == 1 && q[2] == -1 && q[3] == 2 && q[4] == -3 && s == 126);
    x[5] = NAN;
    sq_act8_quantize(x, 32, 0, 1, q, &d, &s);
    SQ_CHECK(isnan(d) && q[0] == 0 && s == 0);
    x[5] = -INFINITY;
    sq_act8_quantize(x, 32, 0, 1, q, &d, &s);
    SQ_CHECK(isinf(d) && q[0] == 0 && s == 0);
}

/* Sum over chunks of |s d| (sum_j q_j |xq_j| + z |xsum|): the scale of the float rounding. */
typedef struct {
    double y, mag;
} spec_val;

/* The specification in double: quantize (the shared quantizer, checked above), exact
 * integer dot products per chunk, double sums. */
static spec_val spec_dot(const qmat *m, int64_t r, const float *x) {
    const int64_t nc = (m->cols + 31) / 32, gc = m->ng == 1 ? nc : m->q.group / 32;
    int8_t *q = malloc((size_t)nc * 32);
    float *d = malloc(sizeof(float) * (size_t)nc);
    int32_t *s = malloc(sizeof(int32_t) * (size_t)nc);
    sq_act8_quantize(x, m->cols, 0, nc, q, d, s);
    spec_val v = {0, 0};
    for (int64_t c = 0; c < nc; c++) {
        const int64_t g = c / gc;
        const double sc = m->scales[r * m->ng + g], z = m->zeros[r * m->ng + g];
        int64_t dot = 0, absdot = 0;
        for (int64_t j = 0; j < 32 && 32 * c + j < m->cols; j++) {
            dot += (int64_t)m->codes[r * m->cols + 32 * c + j] * q[32 * c + j];
            absdot += (int64_t)m->codes[r * m->cols + 32 * c + j] * llabs(q[32 * c + j]);
        }
        const double sd = sc * (double)d[c];
        v.y += sd * (double)(dot - (int64_t)z * s[c]);
        v.mag += fabs(sd) * ((double)absdot + z * fabs((double)s[c]));
    }
    free(q), free(d), free(s);
    return v;
}

static const sq_kernels *variants[8];
static int n_variants;
#if defined(__aarch64__)
/* The neon table with the ACT8 kernels of one of kernels_act8_neon.c's two builds, so that
 * both run here whichever the CPU selects (the dotprod one only on a CPU that has it). */
static sq_kernels neon_act8[2];
static const sq_kernels *neon_with_act8(int dp) {
    const sq_kernels *k = sq_kernels_by_name("neon");
    if (!k || (dp && !sq_cpu_has_dotprod())) return NULL;
    const sq_qmatmul_fn *a8 = dp ? sq_kernels_neon_act8_dotprod() : sq_kernels_neon_act8();
    if (!a8) return NULL;
    neon_act8[dp] = *k;
    neon_act8[dp].name = dp ? "neon-sdot" : "neon-plain";
    for (int t = 0; t < SQ_TYPE_COUNT; t++)
        if (a8[t]) neon_act8[dp].qmatmul_a8[t] = a8[t];
    return &neon_act8[dp];
}
#endif
static void find_variants(void) {
    if (n_variants) return;
    const char *const *names = sq_kernels_compiled();
    for (int i = 0; names[i] && n_variants < 8; i++) {
        const sq_kernels *k = sq_kernels_by_name(names[i]);
        if (k && strcmp(names[i], "ref") != 0) variants[n_variants++] = k;
    }
#if defined(__aarch64__)
    for (int dp = 0; dp < 2; dp++)
        if (neon_with_act8(dp)) variants[n_variants++] = neon_act8 + dp;
    printf("  neon ACT8 kernels: plain NEON%s\n", neon_act8[1].name ? " and sdot" : " (sdot: not built, or no dotprod on this CPU)");
#endif
}

/* One shape: the reference against the double specification, each variant against the
 * reference, y outside [r0, r1) and the ldy padding untouched. */
static void check_shape(sq_type type, sq_qparams q, int64_t rows, int64_t cols, int64_t T, int64_t r0, int64_t r1) {
    qmat m;
    qmat_make(&m, type, q, rows, cols);
    float *x = rand_x(T * cols);
    const int64_t ldy = rows + 3;
    const size_t ny = (size_t)(T * ldy);
    float *yr = malloc(sizeof(float) * ny), *ys = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < ny; i++) yr[i] = -12345.0f;
    sq_kernels_ref()->qmatmul_a8[type](yr, ldy, x, m.data, m.rb, T, r0, r1, cols, q);
    int bad = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = r0; r < r1; r++) {
            const spec_val v = spec_dot(&m, r, x + t * cols);
            const double tol = 1e-5 * v.mag + 1e-30;
            if (!(fabs((double)yr[t * ldy + r] - v.y) <= tol) && bad++ < 3)
                printf("  %s g%d%s %lldx%lld T=%lld: ref y[%lld,%lld] = %.9g, spec %.9g\n", sq_type_name(type),
                       q.group, q.asym ? "a" : "", (long long)rows, (long long)cols, (long long)T, (long long)t,
                       (long long)r, (double)yr[t * ldy + r], v.y);
        }
    for (int vi = 0; vi < n_variants; vi++) {
        for (size_t i = 0; i < ny; i++) ys[i] = -12345.0f;
        variants[vi]->qmatmul_a8[type](ys, ldy, x, m.data, m.rb, T, r0, r1, cols, q);
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = 0; r < ldy; r++) {
                const size_t i = (size_t)(t * ldy + r);
                int ok;
                if (r < r0 || r >= r1) ok = ys[i] == -12345.0f && yr[i] == -12345.0f;
                else {
                    const spec_val v = spec_dot(&m, r, x + t * cols);
                    ok = fabs((double)ys[i] - (double)yr[i]) <= 2e-5 * v.mag + 1e-30;
                }
                if (!ok && bad++ < 3)
                    printf("  %s %s g%d%s %lldx%lld T=%lld rows [%lld,%lld): y[%lld,%lld] = %.9g, ref %.9g\n",
                           variants[vi]->name, sq_type_name(type), q.group, q.asym ? "a" : "", (long long)rows,
                           (long long)cols, (long long)T, (long long)r0, (long long)r1, (long long)t, (long long)r,
                           (double)ys[i], (double)yr[i]);
            }
    }
    SQ_CHECK(bad == 0);
    free(x), free(yr), free(ys);
    qmat_free(&m);
}

SQ_TEST(variants_match_reference) {
    find_variants();
    const sq_type types[2] = {SQ_TYPE_Q4G, SQ_TYPE_Q8G};
    const int64_t Ts[] = {1, 2, 5, 64, 100};
    const struct {
        int64_t rows, cols;
        int32_t group; /* 0: the whole row */
    } shapes[] = {{9, 172, 32}, {13, 172, 64}, {6, 300, 128}, {5, 256, 0}, {7, 172, 0}, {4, 96, 96},
                  {11, 33, 32}, {3, 512, 128}, {8, 64, 32},  {2, 1, 0},   {5, 200, 64}};
    for (int ti = 0; ti < 2; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            for (int asym = 0; asym < 2; asym++) {
                const int64_t rows = shapes[si].rows, cols = shapes[si].cols;
                const sq_qparams q = {shapes[si].group ? shapes[si].group : (int32_t)cols, asym != 0};
                const int64_t T = Ts[(si + (size_t)asym + (size_t)ti) % 5];
                check_shape(types[ti], q, rows, cols, T, 0, rows);
                if (rows > 2) check_shape(types[ti], q, rows, cols, T == 100 ? 2 : T + 1, 1, rows - 1);
            }
    /* every T on one ragged shape per type */
    for (int ti = 0; ti < 2; ti++)
        for (size_t k = 0; k < sizeof Ts / sizeof *Ts; k++) check_shape(types[ti], (sq_qparams){64, true}, 6, 172, Ts[k], 0, 6);
}

/* The decode GEMVs (T = 1; sq_act8_gemv: AVX-512 q4g four chunks per load, q8g two, AVX2 q4g two;
 * 8 or 4 rows per block) on blocks of rows and their remainders, ragged units (chunks % 4 = 1, 2,
 * 3), every group mode (32, 64, 128, one per row) and a group they leave to the shared driver (96). */
SQ_TEST(decode_gemv_matches_reference) {
    find_variants();
    const int64_t cols_list[] = {32, 33, 96, 160, 172, 300, 520};
    const int32_t groups[] = {32, 64, 128, 96, 0};
    for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++)
        for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++) {
            const int64_t cols = cols_list[ci];
            const sq_qparams q = {groups[gi] ? groups[gi] : (int32_t)cols, (ci + gi) % 2 == 1};
            if (!(q.group % 32 == 0 || q.group >= cols)) continue;
            for (int ti = 0; ti < 2; ti++) {
                const sq_type type = ti ? SQ_TYPE_Q8G : SQ_TYPE_Q4G;
                check_shape(type, q, 19, cols, 1, 0, 19);
                check_shape(type, q, 19, cols, 1, 2, 17);
            }
        }
}

/* Zero weights written as codes equal to their group's zero point (asymmetric): the exact result
 * is 0, and each variant must stay within the same relative bound as check_shape's, 2e-5 of the
 * spec's magnitude sum s d (sum q |x| + z |xsum|). On even rows every zero point is 0, so that
 * bound is 0 and the result must be exactly 0: a variant that shifts codes (q8g as q - 128 for
 * a signed dot product) must add the shift back in the integer sum, not in float. T = 1 runs
 * the decode GEMVs, T = 3 the blocks. */
SQ_TEST(zero_weights_stay_zero) {
    find_variants();
    for (int ti = 0; ti < 2; ti++)
        for (int gi = 0; gi < 3; gi++) {
            const sq_type type = ti ? SQ_TYPE_Q8G : SQ_TYPE_Q4G;
            const int64_t rows = 37, cols = 200;
            const sq_qparams q = {gi == 0 ? 32 : gi == 1 ? 64 : (int32_t)cols, true};
            qmat m;
            qmat_make(&m, type, q, rows, cols);
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t g = 0; g < m.ng; g++)
                    if (r % 2 == 0) m.zeros[r * m.ng + g] = 0;
                for (int64_t c = 0; c < cols; c++) m.codes[r * cols + c] = m.zeros[r * m.ng + c / q.group];
                SQ_CHECK(sq_qrow_pack(type, q, cols, m.codes + r * cols, m.scales + r * m.ng, m.zeros + r * m.ng,
                                      m.data + (size_t)r * m.rb) == SQ_OK);
            }
            for (int64_t T = 1; T <= 3; T += 2) {
                float *x = rand_x(T * cols), *y = malloc(sizeof(float) * (size_t)(T * rows));
                for (int vi = -1; vi < n_variants; vi++) {
                    const sq_kernels *k = vi < 0 ? sq_kernels_ref() : variants[vi];
                    k->qmatmul_a8[type](y, rows, x, m.data, m.rb, T, 0, rows, cols, q);
                    int bad = 0;
                    for (int64_t t = 0; t < T; t++)
                        for (int64_t r = 0; r < rows; r++) {
                            const spec_val v = spec_dot(&m, r, x + t * cols);
                            bad += !(fabs((double)y[t * rows + r]) <= 2e-5 * v.mag) || v.y != 0.0;
                        }
                    SQ_CHECKF(bad == 0, "%s %s g%d T=%lld: %d of %lld outputs not 0 within the bound", k->name,
                              sq_type_name(type), q.group, (long long)T, bad, (long long)(T * rows));
                }
                free(x), free(y);
            }
            qmat_free(&m);
        }
}

/* sq_matmul at -t 1 and -t 2, and a kernel called on split row ranges, give the same bits. */
SQ_TEST(deterministic_over_threads_and_splits) {
    const sq_type types[2] = {SQ_TYPE_Q4G, SQ_TYPE_Q8G};
    const int saved = sq_num_threads();
    for (int ti = 0; ti < 6; ti++) { /* T = 7: streaming kernels; T = 40: AVX-512's packed tiles; T = 1: decode */
        /* at T = 1, 400 columns: 80,000 multiply-adds, enough for sq_matmul to split rows over threads */
        const int64_t rows = 200, T = ti < 2 ? 7 : ti < 4 ? 40 : 1, cols = T == 1 ? 400 : 300;
        qmat m;
        qmat_make(&m, types[ti % 2], (sq_qparams){64, ti % 2 == 1}, rows, cols);
        const sq_mat w = {.type = types[ti % 2], .q = m.q, .rows = rows, .cols = cols, .row_bytes = m.rb, .data = m.data,
                          .act8 = true};
        float *x = rand_x(T * cols);
        float *y1 = malloc(sizeof(float) * (size_t)(T * rows)), *y2 = malloc(sizeof(float) * (size_t)(T * rows)),
              *y3 = malloc(sizeof(float) * (size_t)(T * rows));
        const sq_kernels *ks[9] = {sq_kernels_ref()};
        int nk = 1;
        find_variants();
        for (int i = 0; i < n_variants; i++) ks[nk++] = variants[i];
        for (int k = 0; k < nk; k++) {
            sq_set_num_threads(1);
            sq_matmul(ks[k], y1, x, &w, T);
            sq_set_num_threads(2);
            sq_matmul(ks[k], y2, x, &w, T);
            ks[k]->qmatmul_a8[types[ti % 2]](y3, rows, x, m.data, m.rb, T, 0, 37, cols, m.q);
            ks[k]->qmatmul_a8[types[ti % 2]](y3, rows, x, m.data, m.rb, T, 37, 101, cols, m.q);
            ks[k]->qmatmul_a8[types[ti % 2]](y3, rows, x, m.data, m.rb, T, 101, rows, cols, m.q);
            SQ_CHECKF(memcmp(y1, y2, sizeof(float) * (size_t)(T * rows)) == 0, "%s %s T %lld: -t 1 and -t 2 differ",
                      ks[k]->name, sq_type_name(types[ti % 2]), (long long)T);
            SQ_CHECKF(memcmp(y1, y3, sizeof(float) * (size_t)(T * rows)) == 0, "%s %s T %lld: row splits differ",
                      ks[k]->name, sq_type_name(types[ti % 2]), (long long)T);
        }
        /* the ACT8 matmul is a different function from the f32 one, and close to it */
        sq_mat wf = w;
        wf.act8 = false;
        sq_matmul(sq_kernels_ref(), y2, x, &wf, T);
        double num = 0, den = 0;
        for (int64_t i = 0; i < T * rows; i++) {
            num += ((double)y1[i] - y2[i]) * ((double)y1[i] - y2[i]);
            den += (double)y2[i] * y2[i];
        }
        SQ_CHECKF(num > 0 && num < 1e-3 * den, "%s: relative squared error of int8 activations %g",
                  sq_type_name(types[ti % 2]), num / den);
        free(x), free(y1), free(y2), free(y3);
        qmat_free(&m);
    }
    sq_set_num_threads(saved);
}

#if defined(__aarch64__)
/* The neon table's ACT8 kernels are the sdot build exactly when the CPU has dotprod and
 * SQUISH_NO_DOTPROD is unset (make cross-check runs this under qemu with and without). */
SQ_TEST(neon_act8_selection) {
    const sq_kernels *k = sq_kernels_by_name("neon");
    SQ_CHECK(k != NULL && sq_kernels_neon_act8() != NULL);
    const char *no = getenv("SQUISH_NO_DOTPROD");
    const int want_dp = sq_cpu_has_dotprod() && sq_kernels_neon_act8_dotprod() && !(no && *no && strcmp(no, "0") != 0);
    const sq_qmatmul_fn *a8 = want_dp ? sq_kernels_neon_act8_dotprod() : sq_kernels_neon_act8();
    for (int t = 0; t < SQ_TYPE_COUNT; t++)
        if (a8[t]) SQ_CHECKF(k->qmatmul_a8[t] == a8[t], "%s: not the %s kernel", sq_type_name((sq_type)t),
                             want_dp ? "sdot" : "plain NEON");
    SQ_CHECK(a8[SQ_TYPE_Q4G] && a8[SQ_TYPE_Q8G]);
    printf("  cpu dotprod %d, neon table uses the %s ACT8 kernels\n", sq_cpu_has_dotprod(), want_dp ? "sdot" : "plain NEON");
}
#endif

/* Only q8g and q4g may carry the flag. */
SQ_TEST(flag_only_on_q8g_q4g) {
    for (int t = 0; t < SQ_TYPE_COUNT; t++) {
        const bool ok = t == SQ_TYPE_Q8G || t == SQ_TYPE_Q4G;
        SQ_CHECK(sq_type_supports_act8((sq_type)t) == ok);
        SQ_CHECK((sq_act8_validate((sq_type)t, true, "w") == SQ_OK) == ok);
        if (!ok) SQ_CHECK(strstr(sq_last_error(), "w: ") == sq_last_error() && !strchr(sq_last_error(), '\n'));
        SQ_CHECK(sq_act8_validate((sq_type)t, false, "w") == SQ_OK);
        SQ_CHECK((sq_kernels_ref()->qmatmul_a8[t] != NULL) == ok);
    }
}

int main(void) {
    SQ_RUN(quantizer_matches_formula);
    SQ_RUN(variants_match_reference);
    SQ_RUN(decode_gemv_matches_reference);
    SQ_RUN(zero_weights_stay_zero);
    SQ_RUN(deterministic_over_threads_and_splits);
    SQ_RUN(flag_only_on_q8g_q4g);
#if defined(__aarch64__)
    SQ_RUN(neon_act8_selection);
#endif
    return sq_test_summary();
}
