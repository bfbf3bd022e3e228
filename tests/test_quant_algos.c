/* test_quant_algos.c - the quantization algorithms (quantize/quant.h) against references
 * written here, not against their own output:
 *  - RTN: bit-exact against a scalar transcription of ALGORITHMS.md §1 (GPTQ reference
 *    quantizer sym/asym with and without the MSE search, AWQ's variant), ragged groups;
 *    the signed-max symmetric grid (ggml's Q4_0 rule) against its definition, its negative
 *    scales through the packed rows and every kernel variant (ACT8 included);
 *  - GPTQ: Cholesky-of-inverse against a Gauss-Jordan inverse; identity Hessian = RTN;
 *    lower output error than RTN on a correlated synthetic layer; a naive unblocked
 *    transcription of the sweep; act-order with static groups; dead inputs; damping retry;
 *    bitwise identical at 1 and 2 threads;
 *  - AWQ: scale search with a true-output-MSE loss, folding invariance, clip search never
 *    worse than no clipping.
 * Prints (does not assert) the time to GPTQ a 768x256 and a 256x768 layer.
 */
#include <float.h>
#include <stdint.h>
#include <time.h>

#include "../quantize/linalg.h"
#include "../quantize/quant.h"
#include "../runtime/kernels.h"
#include "../runtime/types.h"
#include "test.h"

/* ===== Helpers ===== */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_u01(void) { return ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static double rng_normal(void) { return sqrt(-2.0 * log(rng_u01())) * cos(6.283185307179586 * rng_u01()); }

static void fill_normal(float *a, int64_t n, double sd) {
    for (int64_t i = 0; i < n; i++) a[i] = (float)(sd * rng_normal());
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float f16r(float x) { return sq_f16_to_f32(sq_f32_to_f16(x)); }

/* XtX of x [n x cols] in double (plain loops: the test's own reference). */
static double *make_xtx(const float *x, int64_t n, int64_t cols) {
    double *h = calloc((size_t)(cols * cols), sizeof *h);
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * cols;
        for (int64_t i = 0; i < cols; i++) {
            double xi = xt[i];
            if (xi == 0.0) continue;
            for (int64_t j = 0; j < cols; j++) h[i * cols + j] += xi * (double)xt[j];
        }
    }
    return h;
}

/* sum_r (w - w_hat)_r^T XtX (w - w_hat)_r = ||(W - W_hat) X^T||^2. */
static double out_err(const float *w, const float *wh, int64_t rows, int64_t cols, const double *xtx) {
    double *d = malloc((size_t)cols * sizeof *d), tot = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < cols; j++) d[j] = (double)w[r * cols + j] - (double)wh[r * cols + j];
        for (int64_t i = 0; i < cols; i++) {
            double acc = 0.0;
            for (int64_t j = 0; j < cols; j++) acc += xtx[i * cols + j] * d[j];
            tot += d[i] * acc;
        }
    }
    free(d);
    return tot;
}

/* A correlated input: X = Z A with A = I + 0.4 * N(0,1)/sqrt(cols), plus `n_out` outlier
 * channels scaled by 8 and a per-channel spread of magnitudes. */
static float *make_x(int64_t n, int64_t cols, int n_out) {
    float *z = malloc((size_t)(n * cols) * sizeof *z), *a = malloc((size_t)(cols * cols) * sizeof *a);
    float *x = calloc((size_t)(n * cols), sizeof *x);
    fill_normal(z, n * cols, 1.0);
    fill_normal(a, cols * cols, 0.4 / sqrt((double)cols));
    for (int64_t i = 0; i < cols; i++) a[i * cols + i] += 1.0f;
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < cols; k++) {
            float zk = z[t * cols + k];
            for (int64_t j = 0; j < cols; j++) x[t * cols + j] += zk * a[k * cols + j];
        }
    for (int64_t j = 0; j < cols; j++) {
        float f = (float)(0.5 + (double)(j % 7) / 6.0);
        if (j % (cols / (n_out + 1)) == 3 && n_out > 0) f *= 8.0f;
        for (int64_t t = 0; t < n; t++) x[t * cols + j] *= f;
    }
    free(z);
    free(a);
    return x;
}

/* ===== Reference RTN: ALGORITHMS.md §1, transcribed one group at a time =====
 * Shared arithmetic choices (the library documents the same): float arithmetic for the
 * grid, scales rounded to fp16 (kept within [2^-24, 65504]) right after they are computed,
 * round-half-even, the MSE error summed in double with pow(|d|, 2.4), zero points clamped
 * to [0, qmax]. */

static float ref_f16_scale(float s) {
    float r = f16r(s);
    if (r < 0x1p-24f) r = 0x1p-24f;
    if (r > 65504.0f) r = 65504.0f;
    return r;
}

static float ref_quant(float x, float scale, float zero, float maxq) { /* quant.py quantize() */
    float q = rintf(x / scale) + zero;
    q = q < 0.0f ? 0.0f : q > maxq ? maxq : q;
    return scale * (q - zero);
}

static float ref_clampz(float z, float maxq) { return z < 0.0f ? 0.0f : z > maxq ? maxq : z; }

/* GPTQ reference quantizer find_params for one group. */
static void ref_gptq_params(const float *x, int n, int bits, bool sym, bool mse, float *scale_out, float *zero_out) {
    float maxq = (float)((1 << bits) - 1);
    float xmin = 0.0f, xmax = 0.0f; /* tmp = zeros: min(x.min, 0), max(x.max, 0) */
    for (int i = 0; i < n; i++) {
        if (x[i] < xmin) xmin = x[i];
        if (x[i] > xmax) xmax = x[i];
    }
    if (sym) {
        if (fabsf(xmin) > xmax) xmax = fabsf(xmin);
        if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) {
        xmin = -1;
        xmax = +1;
    }
    float scale = ref_f16_scale((xmax - xmin) / maxq);
    float zero = sym ? (maxq + 1) / 2 : ref_clampz(rintf(-xmin / scale), maxq);
    if (mse) {
        double best = INFINITY;
        for (int i = 0; i < 80; i++) {
            float p = (float)(1 - i / 100.0);
            float xmin1 = p * xmin, xmax1 = p * xmax;
            float scale1 = ref_f16_scale((xmax1 - xmin1) / maxq);
            float zero1 = sym ? (maxq + 1) / 2 : ref_clampz(rintf(-xmin1 / scale1), maxq);
            double err = 0;
            for (int k = 0; k < n; k++) err += pow(fabs((double)(ref_quant(x[k], scale1, zero1, maxq) - x[k])), 2.4);
            if (err < best) {
                best = err;
                scale = scale1;
                zero = zero1;
            }
        }
    }
    *scale_out = scale;
    *zero_out = zero;
}

/* llm-awq pseudo_quantize_tensor for one group. */
static void ref_awq_params(const float *w, int n, int bits, bool zero_point, float *scale_out, float *zero_out) {
    float max_val = -INFINITY, min_val = INFINITY, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        max_val = w[i] > max_val ? w[i] : max_val;
        min_val = w[i] < min_val ? w[i] : min_val;
        amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
    }
    if (zero_point) {
        float max_int = (float)((1 << bits) - 1);
        float range = max_val - min_val < 1e-5f ? 1e-5f : max_val - min_val;
        float scales = ref_f16_scale(range / max_int);
        *scale_out = scales;
        *zero_out = ref_clampz(-rintf(min_val / scales), max_int);
    } else {
        float max_int = (float)((1 << (bits - 1)) - 1);
        float scales = ref_f16_scale((amax < 1e-5f ? 1e-5f : amax) / max_int);
        *scale_out = scales;
        *zero_out = (float)(1 << (bits - 1)); /* codes = round(w/s) + 2^(b-1) */
    }
}

typedef struct {
    int kind; /* 0 gptq, 1 awq */
    bool mse;
} ref_cfg;

/* Reference RTN of a whole matrix: codes, scales, zeros (float), decoded values. */
static void ref_rtn(const float *w, int64_t rows, int64_t cols, int bits, int64_t g, bool asym, ref_cfg cfg,
                    uint8_t *codes, float *scales, float *zeros, float *wh) {
    int64_t ng = (cols + g - 1) / g;
    float maxq = (float)((1 << bits) - 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t gi = 0; gi < ng; gi++) {
            int64_t c0 = gi * g, len = c0 + g <= cols ? g : cols - c0;
            const float *x = w + r * cols + c0;
            float s, z;
            if (cfg.kind == 0)
                ref_gptq_params(x, (int)len, bits, !asym, cfg.mse, &s, &z);
            else
                ref_awq_params(x, (int)len, bits, asym, &s, &z);
            scales[r * ng + gi] = s;
            zeros[r * ng + gi] = z;
            for (int64_t j = 0; j < len; j++) {
                float q = rintf(x[j] / s) + z;
                q = q < 0.0f ? 0.0f : q > maxq ? maxq : q;
                codes[r * cols + c0 + j] = (uint8_t)q;
                wh[r * cols + c0 + j] = s * (q - z);
            }
        }
}

/* ===== Schemes ===== */

SQ_TEST(test_scheme_validate) {
    sq_qscheme s = {.bits = 4, .group = 128, .asym = true};
    SQ_CHECK_OK(sq_qscheme_validate(&s, 4096));
    SQ_CHECK(sq_qscheme_n_groups(&s, 4096) == 32);
    SQ_CHECK(sq_qscheme_n_groups(&s, 172) == 2 && sq_qscheme_group_len(&s, 172) == 128);
    s.bits = 2;
    SQ_CHECK_OK(sq_qscheme_validate(&s, 64));
    s.bits = 5;
    SQ_CHECK_OK(sq_qscheme_validate(&s, 256));
    s.bits = 6;
    SQ_CHECK_OK(sq_qscheme_validate(&s, 256));
    s.bits = 7;
    SQ_CHECK(sq_qscheme_validate(&s, 256) == SQ_ERR_ARG && strstr(sq_last_error(), "7 bits") != NULL);
    s.bits = 16;
    SQ_CHECK(sq_qscheme_validate(&s, 256) == SQ_ERR_ARG);
    s.bits = 3;
    s.group = 256; /* standard size longer than the row: one group */
    SQ_CHECK_OK(sq_qscheme_validate(&s, 172));
    SQ_CHECK(sq_qscheme_n_groups(&s, 172) == 1 && sq_qscheme_group_len(&s, 172) == 172);
    s.group = 300;
    SQ_CHECK(sq_qscheme_validate(&s, 172) == SQ_ERR_ARG && strstr(sq_last_error(), "larger than the row") != NULL);
    s.group = 100; /* ragged: 100 + 72 */
    SQ_CHECK_OK(sq_qscheme_validate(&s, 172));
    SQ_CHECK(sq_qscheme_n_groups(&s, 172) == 2);
    s.group = -8;
    SQ_CHECK(sq_qscheme_validate(&s, 172) == SQ_ERR_ARG && strstr(sq_last_error(), "negative") != NULL);
    s.group = 0;
    SQ_CHECK_OK(sq_qscheme_validate(&s, 172));
    SQ_CHECK(sq_qscheme_n_groups(&s, 172) == 1);

    sq_qweight q;
    SQ_CHECK(sq_qweight_init(&q, 4, 172, &(sq_qscheme){.bits = 7}) == SQ_ERR_ARG && q.codes == NULL);
    sq_qweight_free(&q);
    sq_qweight_free(NULL);
}

/* ===== RTN ===== */

/* Rows with structure: random, all positive, all negative, all zero, constant, one outlier. */
static void fill_rtn_rows(float *w, int64_t rows, int64_t cols) {
    fill_normal(w, rows * cols, 0.02);
    for (int64_t c = 0; c < cols; c++) {
        w[1 * cols + c] = fabsf(w[1 * cols + c]);
        w[2 * cols + c] = -fabsf(w[2 * cols + c]);
        w[3 * cols + c] = 0.0f;
        w[4 * cols + c] = 0.015f;
    }
    w[5 * cols + 7] = 0.5f;
    w[6 * cols + 100] = -1e-9f; /* a nearly empty group */
    for (int64_t c = 0; c < 64; c++) w[6 * cols + c] = 0.0f;
}

SQ_TEST(test_rtn_reference) {
    const int64_t rows = 12, cols = 172;
    float *w = malloc(rows * cols * sizeof *w), *wh = malloc(rows * cols * sizeof *wh);
    float *rwh = malloc(rows * cols * sizeof *rwh), *deq = malloc(rows * cols * sizeof *deq);
    uint8_t *rc = malloc(rows * cols);
    float *rs = malloc(rows * cols * sizeof *rs), *rz = malloc(rows * cols * sizeof *rz);
    fill_rtn_rows(w, rows, cols);
    const int bits_list[] = {8, 4, 3, 2};
    const int32_t groups[] = {0, 64, 128, 32, 100};
    int n_cfg = 0, bad = 0, bound_bad = 0, n_clamped = 0;
    for (int kind = 0; kind < 2; kind++)
        for (int mse = 0; mse < 2; mse++)
            for (int asym = 0; asym < 2; asym++)
                for (int bi = 0; bi < 4; bi++)
                    for (int gi = 0; gi < 5; gi++) {
                        if (kind == 1 && mse) continue; /* AWQ has no MSE search in the references */
                        int bits = bits_list[bi];
                        sq_qscheme sch = {.bits = bits, .group = groups[gi], .asym = asym};
                        sq_rtn_opts ro = {.range = kind ? SQ_RTN_RANGE_AWQ : SQ_RTN_RANGE_GPTQ, .mse = mse};
                        sq_qweight q;
                        sq_status st = sq_rtn_quantize(&q, wh, w, rows, cols, &sch, &ro);
                        SQ_CHECK_OK(st);
                        if (st) continue;
                        n_cfg++;
                        int64_t g = sq_qscheme_group_len(&sch, cols), ng = q.n_groups;
                        ref_rtn(w, rows, cols, bits, g, asym, (ref_cfg){kind, mse}, rc, rs, rz, rwh);
                        SQ_CHECK_OK(sq_qweight_check(&q, "rtn"));
                        SQ_CHECK_OK(sq_qweight_dequant(&q, deq));
                        int qmax = (1 << bits) - 1;
                        for (int64_t r = 0; r < rows; r++) {
                            for (int64_t k = 0; k < ng; k++) {
                                float z = (float)sq_qweight_zero(&q, r, k);
                                if (q.scales[r * ng + k] != rs[r * ng + k] || z != rz[r * ng + k]) {
                                    if (!bad++)
                                        printf("  kind %d mse %d asym %d bits %d g %d row %lld group %lld: scale %g "
                                               "zero %g, reference %g %g\n",
                                               kind, mse, asym, bits, (int)groups[gi], (long long)r, (long long)k,
                                               (double)q.scales[r * ng + k], (double)z, (double)rs[r * ng + k],
                                               (double)rz[r * ng + k]);
                                }
                            }
                            for (int64_t c = 0; c < cols; c++) {
                                int64_t i = r * cols + c;
                                if (q.codes[i] != rc[i] || memcmp(&wh[i], &rwh[i], 4) || memcmp(&deq[i], &wh[i], 4)) {
                                    if (!bad++)
                                        printf("  kind %d mse %d asym %d bits %d g %d [%lld,%lld]: code %u ref %u\n",
                                               kind, mse, asym, bits, (int)groups[gi], (long long)r, (long long)c,
                                               q.codes[i], rc[i]);
                                }
                                /* |w - w_hat| <= s/2 except where the grid clamps */
                                float s = q.scales[r * ng + c / g];
                                if (q.codes[i] == 0 || q.codes[i] == qmax) {
                                    n_clamped++;
                                } else if (fabsf(w[i] - wh[i]) > 0.5f * s * (1.0f + 1e-5f)) {
                                    if (!bound_bad++)
                                        printf("  error bound: w %g w_hat %g s %g\n", (double)w[i], (double)wh[i],
                                               (double)s);
                                }
                            }
                        }
                        sq_qweight_free(&q);
                    }
    SQ_CHECKF(bad == 0, "%d mismatches against the reference", bad);
    SQ_CHECK(bound_bad == 0);
    SQ_CHECK(n_cfg == 3 * 2 * 4 * 5);
    SQ_CHECK(n_clamped > 0);

    /* The symmetric "lo = 0 without negatives" detail: an all-positive group gets
     * s = max/qmax and z = 2^(b-1), so its upper half clamps. */
    sq_qweight q;
    sq_qscheme sch = {.bits = 4, .group = 0, .asym = false};
    SQ_CHECK_OK(sq_rtn_quantize(&q, NULL, w + 1 * cols, 1, cols, &sch, NULL));
    float mx = 0;
    for (int64_t c = 0; c < cols; c++) mx = fmaxf(mx, w[cols + c]);
    SQ_CHECK(q.scales[0] == f16r(mx / 15.0f));
    sq_qweight_free(&q);

    free(w);
    free(wh);
    free(rwh);
    free(deq);
    free(rc);
    free(rs);
    free(rz);
}

/* The signed-max symmetric grid (ggml's Q4_0 rule at every width): for every group, the
 * scale is fp16(m / -z) with m the first element of largest |w| (so a positive m gives a
 * negative scale), m lands on code 0 whenever the scale is a normal fp16 value, every other
 * weight is within half a step unless it lies beyond the last level on the other side
 * (then it takes code 2^b - 1); the MSE search never does worse on its own norm; and the
 * decoded values go through the packed row types unchanged. */
SQ_TEST(test_rtn_signed_max) {
    const int64_t rows = 12, cols = 172;
    float *w = malloc(rows * cols * sizeof *w), *wh = malloc(rows * cols * sizeof *wh);
    float *wm = malloc(rows * cols * sizeof *wm), *deq = malloc(rows * cols * sizeof *deq);
    fill_rtn_rows(w, rows, cols);
    w[7 * cols + 3] = 0.25f; /* positive extremes in one group each */
    w[8 * cols + 150] = 0.125f;
    const int bits_list[] = {8, 6, 5, 4, 3};
    const int32_t groups[] = {0, 32, 64, 100};
    static const sq_type types[] = {SQ_TYPE_Q8G, SQ_TYPE_Q6G, SQ_TYPE_Q5G, SQ_TYPE_Q4G, SQ_TYPE_Q3G};
    int bad_scale = 0, bad_code0 = 0, bad_bound = 0, bad_mse = 0, bad_pack = 0, n_neg = 0, n_pos = 0, n_clamp = 0;
    for (int bi = 0; bi < 5; bi++)
        for (int gi = 0; gi < 4; gi++) {
            const int bits = bits_list[bi], z = 1 << (bits - 1), qmax = (1 << bits) - 1;
            sq_qscheme sch = {.bits = bits, .group = groups[gi]};
            sq_rtn_opts ro = {.grid = SQ_QGRID_SIGNED_MAX}, rm = {.grid = SQ_QGRID_SIGNED_MAX, .mse = true};
            sq_qweight q, qm;
            SQ_CHECK_OK(sq_rtn_quantize(&q, wh, w, rows, cols, &sch, &ro));
            SQ_CHECK_OK(sq_rtn_quantize(&qm, wm, w, rows, cols, &sch, &rm));
            if (!q.codes || !qm.codes) continue;
            SQ_CHECK_OK(sq_qweight_check(&q, "signed-max"));
            SQ_CHECK_OK(sq_qweight_check(&qm, "signed-max mse"));
            SQ_CHECK_OK(sq_qweight_dequant(&q, deq));
            SQ_CHECK(memcmp(deq, wh, rows * cols * sizeof *wh) == 0);
            const int64_t g = sq_qscheme_group_len(&sch, cols), ng = q.n_groups;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t k = 0; k < ng; k++) {
                    const int64_t c0 = k * g, c1 = c0 + g < cols ? c0 + g : cols;
                    int64_t im = c0;
                    for (int64_t c = c0; c < c1; c++)
                        if (fabsf(w[r * cols + c]) > fabsf(w[r * cols + im])) im = c;
                    const float m = w[r * cols + im], s = q.scales[r * ng + k];
                    const float want = m != 0.0f ? f16r(m / (float)-z) : f16r(1.0f / (float)z);
                    if (fabsf(want) >= 0x1p-24f && s != want && bad_scale++ < 3)
                        printf("  bits %d g %d row %lld group %lld: scale %g, want %g\n", bits, (int)groups[gi],
                               (long long)r, (long long)k, (double)s, (double)want);
                    n_neg += s < 0, n_pos += s > 0;
                    if (fabsf(s) >= 0x1p-14f && m != 0.0f && q.codes[r * cols + im] != 0 && bad_code0++ < 3)
                        printf("  bits %d row %lld group %lld: the extreme %g has code %u\n", bits, (long long)r,
                               (long long)k, (double)m, q.codes[r * cols + im]);
                    double e1 = 0, e2 = 0;
                    for (int64_t c = c0; c < c1; c++) {
                        const int64_t i = r * cols + c;
                        const float t = w[i] / s, err = fabsf(w[i] - wh[i]);
                        if (t > (float)(z - 1) + 0.5f) { /* beyond the last level: clamped */
                            n_clamp++;
                            if ((q.codes[i] != qmax || err > fabsf(s) * 1.0001f) && bad_bound++ < 3)
                                printf("  clamped w %g: code %u error %g step %g\n", (double)w[i], q.codes[i],
                                       (double)err, (double)s);
                        } else if (err > 0.5f * fabsf(s) * (1.0f + 1e-5f) && bad_bound++ < 3) {
                            printf("  bits %d w %g decoded %g step %g\n", bits, (double)w[i], (double)wh[i], (double)s);
                        }
                        e1 += pow(fabs((double)w[i] - wh[i]), 2.4);
                        e2 += pow(fabs((double)w[i] - wm[i]), 2.4);
                    }
                    if (e2 > e1 * (1.0 + 1e-9) && bad_mse++ < 3)
                        printf("  mse search: %g above the plain grid's %g\n", e2, e1);
                    if (qm.scales[r * ng + k] * m > 0.0f) bad_mse++; /* the shrunk scale keeps the sign rule */
                }
            /* packed rows decode to the same values (a negative fp16 scale is stored as is);
             * the packed types take groups of a multiple of 32 or the whole row */
            const sq_qparams qp = {.group = (int32_t)g};
            const size_t rb = g % 32 == 0 || g >= cols ? sq_row_bytes(types[bi], cols, qp) : 0;
            uint8_t *row = malloc(rb + 1);
            float *dr = malloc(cols * sizeof *dr);
            for (int64_t r = 0; r < rows && rb; r++) {
                SQ_CHECK_OK(sq_qrow_pack(types[bi], qp, cols, q.codes + r * cols, q.scales + r * ng, NULL, row));
                sq_qrow_dequant(types[bi], qp, cols, row, dr);
                bad_pack += memcmp(dr, wh + r * cols, cols * sizeof *dr) != 0;
            }
            free(row);
            free(dr);
            sq_qweight_free(&q);
            sq_qweight_free(&qm);
        }
    SQ_CHECKF(bad_scale == 0 && bad_code0 == 0 && bad_bound == 0, "scale %d code0 %d bound %d", bad_scale, bad_code0,
              bad_bound);
    SQ_CHECK(bad_mse == 0 && bad_pack == 0);
    SQ_CHECK(n_neg > 0 && n_pos > 0 && n_clamp > 0);
    /* an all-positive row: every scale negative, the maximum on code 0 */
    sq_qweight q;
    sq_qscheme sch = {.bits = 4, .group = 0};
    sq_rtn_opts ro = {.grid = SQ_QGRID_SIGNED_MAX};
    SQ_CHECK_OK(sq_rtn_quantize(&q, NULL, w + 1 * cols, 1, cols, &sch, &ro));
    float mx = 0;
    for (int64_t c = 0; c < cols; c++) mx = fmaxf(mx, w[cols + c]);
    SQ_CHECK(q.scales[0] == f16r(mx / -8.0f) && q.scales[0] < 0);
    sq_qweight_free(&q);
    /* asymmetric schemes ignore the grid */
    sq_qweight a, b;
    sq_qscheme as = {.bits = 4, .group = 32, .asym = true};
    SQ_CHECK_OK(sq_rtn_quantize(&a, NULL, w, rows, cols, &as, &ro));
    SQ_CHECK_OK(sq_rtn_quantize(&b, NULL, w, rows, cols, &as, NULL));
    SQ_CHECK(a.codes && b.codes && !memcmp(a.codes, b.codes, rows * cols) &&
             !memcmp(a.scales, b.scales, rows * a.n_groups * sizeof(float)));
    sq_qweight_free(&a);
    sq_qweight_free(&b);
    /* names */
    sq_qgrid gr = SQ_QGRID_GPTQ;
    SQ_CHECK_OK(sq_qgrid_parse("signed-max", "--grid", &gr));
    SQ_CHECK(gr == SQ_QGRID_SIGNED_MAX && !strcmp(sq_qgrid_name(gr), "signed-max"));
    SQ_CHECK_OK(sq_qgrid_parse("gptq", "--grid", &gr));
    SQ_CHECK(gr == SQ_QGRID_GPTQ);
    SQ_CHECK(sq_qgrid_parse("q4_0", "--grid", &gr) == SQ_ERR_ARG && strstr(sq_last_error(), "--grid") &&
             strstr(sq_last_error(), "'q4_0'") && strstr(sq_last_error(), "signed-max"));
    free(w), free(wh), free(wm), free(deq);
}

/* Negative scales through every kernel variant: qmatmul against the float matmul of the
 * decoded rows, and for the ACT8 types (q8g, q4g) rows whose scales are all negated give
 * exactly the negated outputs (the same integer dot products times a negated scale),
 * with signed-max rows mixing both signs checked against the reference kernel. */
SQ_TEST(test_negative_scales_kernels) {
    const int64_t rows = 24, cols = 300, T = 5;
    float *w = malloc(rows * cols * sizeof *w), *x = malloc(T * cols * sizeof *x);
    float *wf = malloc(rows * cols * sizeof *wf), *neg = malloc(rows * 10 * sizeof *neg);
    float *y = malloc(T * rows * sizeof *y), *y2 = malloc(T * rows * sizeof *y2), *yr = malloc(T * rows * sizeof *yr);
    fill_normal(w, rows * cols, 0.05);
    fill_normal(x, T * cols, 1.0);
    const sq_kernels *vs[8];
    int nv = 0;
    const char *const *names = sq_kernels_compiled();
    for (int i = 0; names[i] && nv < 8; i++)
        if ((vs[nv] = sq_kernels_by_name(names[i]))) nv++;
    static const sq_type types[] = {SQ_TYPE_Q8G, SQ_TYPE_Q6G, SQ_TYPE_Q5G, SQ_TYPE_Q4G, SQ_TYPE_Q3G};
    int bad = 0, n_neg = 0;
    for (int ti = 0; ti < 5; ti++) {
        const sq_qscheme sch = {.bits = sq_type_bits(types[ti]), .group = 64};
        const sq_qparams qp = {.group = 64};
        sq_rtn_opts ro = {.grid = SQ_QGRID_SIGNED_MAX};
        sq_qweight q;
        SQ_CHECK_OK(sq_rtn_quantize(&q, wf, w, rows, cols, &sch, &ro));
        if (!q.codes) continue;
        const size_t rb = sq_row_bytes(types[ti], cols, qp);
        uint8_t *pk = malloc(rb * rows), *pn = malloc(rb * rows);
        for (int64_t r = 0; r < rows; r++) {
            for (int k = 0; k < q.n_groups; k++) {
                neg[r * q.n_groups + k] = -q.scales[r * q.n_groups + k];
                n_neg += q.scales[r * q.n_groups + k] < 0;
            }
            SQ_CHECK_OK(sq_qrow_pack(types[ti], qp, cols, q.codes + r * cols, q.scales + r * q.n_groups, NULL,
                                     pk + r * rb));
            SQ_CHECK_OK(sq_qrow_pack(types[ti], qp, cols, q.codes + r * cols, neg + r * q.n_groups, NULL, pn + r * rb));
        }
        sq_kernels_ref()->matmul[SQ_TYPE_F32](yr, rows, x, wf, (size_t)cols * 4, T, 0, rows, cols);
        const bool a8 = sq_type_supports_act8(types[ti]);
        float *ya = malloc(T * rows * sizeof *ya);
        if (a8) sq_kernels_ref()->qmatmul_a8[types[ti]](ya, rows, x, pk, rb, T, 0, rows, cols, qp);
        for (int v = 0; v < nv; v++) {
            vs[v]->qmatmul[types[ti]](y, rows, x, pk, rb, T, 0, rows, cols, qp);
            for (int64_t i = 0; i < T * rows; i++) {
                double mag = 0;
                for (int64_t c = 0; c < cols; c++)
                    mag += fabs((double)x[(i / rows) * cols + c] * wf[(i % rows) * cols + c]);
                if (!(fabs((double)y[i] - yr[i]) <= 1e-5 * mag + 1e-30) && bad++ < 3)
                    printf("  %s %s y[%lld] = %g, float %g\n", vs[v]->name, sq_type_name(types[ti]), (long long)i,
                           (double)y[i], (double)yr[i]);
            }
            if (!a8) continue;
            vs[v]->qmatmul_a8[types[ti]](y, rows, x, pk, rb, T, 0, rows, cols, qp);
            vs[v]->qmatmul_a8[types[ti]](y2, rows, x, pn, rb, T, 0, rows, cols, qp);
            for (int64_t i = 0; i < T * rows; i++) {
                if (y2[i] != -y[i] && bad++ < 3)
                    printf("  %s %s act8: y[%lld] = %g with negated scales, %g\n", vs[v]->name, sq_type_name(types[ti]),
                           (long long)i, (double)y2[i], (double)y[i]);
                /* int8 activations: within 2 % of the output's magnitude of the float result */
                double mag = 0;
                for (int64_t c = 0; c < cols; c++)
                    mag += fabs((double)x[(i / rows) * cols + c] * wf[(i % rows) * cols + c]);
                if ((!(fabs((double)y[i] - ya[i]) <= 1e-4 * mag) || !(fabs((double)y[i] - yr[i]) <= 0.02 * mag)) &&
                    bad++ < 3)
                    printf("  %s %s act8: y[%lld] = %g, reference %g, float %g\n", vs[v]->name,
                           sq_type_name(types[ti]), (long long)i, (double)y[i], (double)ya[i], (double)yr[i]);
            }
        }
        free(ya);
        free(pk);
        free(pn);
        sq_qweight_free(&q);
    }
    SQ_CHECK(bad == 0 && nv >= 1 && n_neg > 0);
    free(w), free(x), free(wf), free(neg), free(y), free(y2), free(yr);
}

SQ_TEST(test_rtn_fakequant) {
    const int64_t rows = 9, cols = 172;
    float *w = malloc(rows * cols * sizeof *w), *ws = malloc(rows * cols * sizeof *ws);
    float *fq = malloc(rows * cols * sizeof *fq), *wh = malloc(rows * cols * sizeof *wh);
    float *s = malloc(cols * sizeof *s);
    fill_normal(w, rows * cols, 1.0);
    for (int64_t c = 0; c < cols; c++) s[c] = (float)(0.25 + 3.0 * rng_u01());
    sq_qscheme sch = {.bits = 4, .group = 64, .asym = true};
    sq_rtn_opts ro = {.range = SQ_RTN_RANGE_AWQ};
    for (int64_t i = 0; i < rows * cols; i++) ws[i] = w[i] * s[i % cols];
    sq_qweight q;
    SQ_CHECK_OK(sq_rtn_quantize(&q, wh, ws, rows, cols, &sch, &ro));
    SQ_CHECK_OK(sq_rtn_fakequant(fq, w, rows, cols, s, &sch, &ro));
    int bad = 0;
    for (int64_t i = 0; i < rows * cols; i++) bad += fq[i] != wh[i] / s[i % cols];
    SQ_CHECK(bad == 0);
    /* no column scale = plain Q(w), in place */
    memcpy(fq, w, rows * cols * sizeof *fq);
    SQ_CHECK_OK(sq_rtn_fakequant(fq, fq, rows, cols, NULL, &sch, &ro));
    sq_qweight_free(&q);
    SQ_CHECK_OK(sq_rtn_quantize(&q, wh, w, rows, cols, &sch, &ro));
    SQ_CHECK(memcmp(fq, wh, rows * cols * sizeof *fq) == 0);
    s[3] = 0.0f;
    SQ_CHECK(sq_rtn_fakequant(fq, w, rows, cols, s, &sch, &ro) == SQ_ERR_ARG);
    w[5] = NAN;
    SQ_CHECK(sq_rtn_fakequant(fq, w, rows, cols, NULL, &sch, &ro) == SQ_ERR_ARG);
    sq_qweight_free(&q);
    SQ_CHECK(sq_rtn_quantize(&q, NULL, w, rows, cols, &sch, &ro) == SQ_ERR_ARG &&
             strstr(sq_last_error(), "not finite") != NULL && q.codes == NULL);
    free(w);
    free(ws);
    free(fq);
    free(wh);
    free(s);
}

SQ_TEST(test_qweight_check) {
    float w[2 * 40];
    fill_normal(w, 80, 1.0);
    sq_qweight q;
    sq_qscheme sch = {.bits = 3, .group = 32, .asym = true};
    SQ_CHECK_OK(sq_rtn_quantize(&q, NULL, w, 2, 40, &sch, NULL));
    SQ_CHECK(q.n_groups == 2);
    SQ_CHECK_OK(sq_qweight_check(&q, "t"));
    q.codes[5] = 8;
    SQ_CHECK(sq_qweight_check(&q, "t") == SQ_ERR_FORMAT);
    q.codes[5] = 7;
    float s = q.scales[1];
    q.scales[1] = 0.1f; /* not an fp16 value */
    SQ_CHECK(sq_qweight_check(&q, "t") == SQ_ERR_FORMAT && strstr(sq_last_error(), "fp16") != NULL);
    q.scales[1] = s;
    q.zeros[2] = 9;
    SQ_CHECK(sq_qweight_check(&q, "t") == SQ_ERR_FORMAT);
    sq_qweight_free(&q);
}

/* ===== GPTQ: the factorisation ===== */

/* Gauss-Jordan inverse with partial pivoting (double), the test's independent reference. */
static void gj_inverse(const double *a_in, double *inv, int64_t n) {
    double *a = malloc((size_t)(n * n) * sizeof *a);
    memcpy(a, a_in, (size_t)(n * n) * sizeof *a);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) inv[i * n + j] = i == j;
    for (int64_t k = 0; k < n; k++) {
        int64_t p = k;
        for (int64_t i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > fabs(a[p * n + k])) p = i;
        for (int64_t j = 0; j < n; j++) {
            double t = a[k * n + j];
            a[k * n + j] = a[p * n + j];
            a[p * n + j] = t;
            t = inv[k * n + j];
            inv[k * n + j] = inv[p * n + j];
            inv[p * n + j] = t;
        }
        double d = a[k * n + k];
        for (int64_t j = 0; j < n; j++) {
            a[k * n + j] /= d;
            inv[k * n + j] /= d;
        }
        for (int64_t i = 0; i < n; i++) {
            if (i == k) continue;
            double f = a[i * n + k];
            if (f == 0.0) continue;
            for (int64_t j = 0; j < n; j++) {
                a[i * n + j] -= f * a[k * n + j];
                inv[i * n + j] -= f * inv[k * n + j];
            }
        }
    }
    free(a);
}

/* A well-conditioned random SPD matrix: B B^T / n + 0.5 I with B [n x n]. */
static double *make_spd(int64_t n) {
    float *b = malloc((size_t)(n * n) * sizeof *b);
    fill_normal(b, n * n, 1.0);
    double *h = calloc((size_t)(n * n), sizeof *h);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t k = 0; k < n; k++) acc += (double)b[i * n + k] * b[j * n + k];
            h[i * n + j] = acc / (double)n + (i == j ? 0.5 : 0.0);
        }
    free(b);
    return h;
}

SQ_TEST(test_chol_inverse) {
    const int64_t n = 61;
    double *h = make_spd(n), *a = malloc(n * n * sizeof *a), *inv = malloc(n * n * sizeof *inv);
    gj_inverse(h, inv, n);
    double inv_max = 0;
    for (int64_t i = 0; i < n * n; i++) inv_max = fmax(inv_max, fabs(inv[i]));

    /* Poison the lower triangle: only the upper one may be read. */
    memcpy(a, h, n * n * sizeof *a);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) a[i * n + j] = NAN;
    SQ_CHECK_OK(sq_linalg_inv_chol_upper(a, n, NULL));
    double e_utu = 0, e_uut = 0;
    int lower_nonzero = 0, diag_bad = 0;
    for (int64_t i = 0; i < n; i++) {
        diag_bad += !(a[i * n + i] > 0);
        for (int64_t j = 0; j < n; j++) {
            if (j < i) lower_nonzero += a[i * n + j] != 0.0;
            double utu = 0, uut = 0;
            for (int64_t k = 0; k < n; k++) {
                utu += a[k * n + i] * a[k * n + j]; /* (U^T U)_ij */
                uut += a[i * n + k] * a[j * n + k]; /* (U U^T)_ij */
            }
            e_utu = fmax(e_utu, fabs(utu - inv[i * n + j]));
            e_uut = fmax(e_uut, fabs(uut - inv[i * n + j]));
        }
    }
    SQ_CHECK(lower_nonzero == 0 && diag_bad == 0);
    SQ_CHECKF(e_utu <= 1e-9 * inv_max, "max |U^T U - H^-1| = %g (|H^-1| max %g)", e_utu, inv_max);
    SQ_CHECKF(e_uut > 1e-3 * inv_max, "U U^T should differ from H^-1 (got %g)", e_uut); /* the test discriminates */

    /* chol_upper: R^T R = H */
    memcpy(a, h, n * n * sizeof *a);
    SQ_CHECK_OK(sq_linalg_chol_upper(a, n, NULL));
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t k = 0; k < n; k++) acc += a[k * n + i] * a[k * n + j];
            e = fmax(e, fabs(acc - h[i * n + j]));
        }
    SQ_CHECK(e < 1e-12 * n);
    /* not positive definite */
    memcpy(a, h, n * n * sizeof *a);
    a[5 * n + 5] = -1.0;
    int64_t minor = 0;
    SQ_CHECK(sq_linalg_inv_chol_upper(a, n, &minor) == SQ_ERR_ARG && minor == 6);

    /* Through sq_gptq_hinv_init: H = 2 XtX / N, lambda = 0.01 mean(diag H), act-order
     * permutation, float U. */
    for (int ao = 0; ao < 2; ao++) {
        sq_gptq_opts o;
        sq_gptq_opts_default(&o);
        o.act_order = ao;
        sq_gptq_hinv hv;
        SQ_CHECK_OK(sq_gptq_hinv_init(&hv, h, n, 2, &o)); /* 2/N = 1: H = h */
        double md = 0;
        for (int64_t i = 0; i < n; i++) md += h[i * n + i];
        md /= (double)n;
        SQ_CHECK_CLOSE(hv.lambda, 0.01 * md, 1e-12, 0);
        SQ_CHECK(hv.percdamp == 0.01 && hv.n_retries == 0 && hv.n_dead == 0);
        int sorted = 1;
        for (int64_t i = 0; i + 1 < n; i++) {
            double d0 = h[hv.perm[i] * n + hv.perm[i]], d1 = h[hv.perm[i + 1] * n + hv.perm[i + 1]];
            if (ao ? d0 < d1 : hv.perm[i] != i) sorted = 0;
        }
        SQ_CHECK(sorted);
        /* reference: inverse of the permuted, damped H */
        double *hp = malloc(n * n * sizeof *hp);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                hp[i * n + j] = h[hv.perm[i] * n + hv.perm[j]] + (i == j ? hv.lambda : 0.0);
        gj_inverse(hp, inv, n);
        double ef = 0, im = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t k = 0; k <= (i < j ? i : j); k++) acc += (double)hv.u[k * n + i] * hv.u[k * n + j];
                ef = fmax(ef, fabs(acc - inv[i * n + j]));
                im = fmax(im, fabs(inv[i * n + j]));
            }
        SQ_CHECKF(ef < 1e-5 * im, "act_order %d: float U^T U vs inverse: %g", ao, ef);
        free(hp);
        sq_gptq_hinv_free(&hv);
    }
    free(h);
    free(a);
    free(inv);
}

/* ===== GPTQ: behaviour ===== */

static sq_gptq_opts gopts(int bits, int32_t group, bool asym, bool act_order) {
    sq_gptq_opts o;
    sq_gptq_opts_default(&o);
    o.scheme = (sq_qscheme){.bits = bits, .group = group, .asym = asym};
    o.act_order = act_order;
    return o;
}

/* One-shot GPTQ: hinv + quantize. */
static sq_status gptq_run(sq_qweight *q, float *wh, sq_gptq_result *res, const float *w, int64_t rows, int64_t cols,
                          const double *xtx, int64_t n, const sq_gptq_opts *o, sq_gptq_hinv *keep) {
    sq_gptq_hinv h;
    sq_status st = sq_gptq_hinv_init(&h, xtx, cols, n, o);
    if (st) return st;
    st = sq_gptq_quantize(q, wh, res, w, rows, &h, o);
    if (keep)
        *keep = h;
    else
        sq_gptq_hinv_free(&h);
    return st;
}

SQ_TEST(test_gptq_identity) {
    /* H = I: every update is zero, so GPTQ is RTN with the same grid (codes and scales). */
    const int64_t rows = 20, cols = 172, n = 10;
    float *w = malloc(rows * cols * sizeof *w), *wh = malloc(rows * cols * sizeof *wh);
    float *rwh = malloc(rows * cols * sizeof *rwh);
    fill_rtn_rows(w, rows, cols);
    double *xtx = calloc(cols * cols, sizeof *xtx);
    for (int64_t i = 0; i < cols; i++) xtx[i * cols + i] = (double)n / 2.0; /* H = 2 XtX / n = I */
    const int32_t groups[] = {0, 64, 128, 32, 100};
    int bad = 0, cfgs = 0;
    for (int bits = 2; bits <= 8; bits = bits == 4 ? 8 : bits + 1)
        for (int gi = 0; gi < 5; gi++)
            for (int asym = 0; asym < 2; asym++)
                for (int ao = 0; ao < 2; ao++)
                    for (int mse = 0; mse < 2; mse++) {
                        if (mse && gi != 1 && (gi != 4 || sq_test_quick())) continue; /* pow() is slow under ASan */
                        sq_gptq_opts o = gopts(bits, groups[gi], asym, ao);
                        o.rtn.mse = mse;
                        o.block_size = gi == 3 ? 48 : 128; /* a block that is not a multiple of g */
                        sq_qweight q, r;
                        sq_gptq_result res;
                        SQ_CHECK_OK(gptq_run(&q, wh, &res, w, rows, cols, xtx, n, &o, NULL));
                        SQ_CHECK_OK(sq_rtn_quantize(&r, rwh, w, rows, cols, &o.scheme, &o.rtn));
                        cfgs++;
                        if (!q.codes || !r.codes) continue;
                        size_t ns = (size_t)(rows * q.n_groups);
                        if (memcmp(q.codes, r.codes, (size_t)(rows * cols)) ||
                            memcmp(q.scales, r.scales, ns * sizeof(float)) ||
                            (asym && memcmp(q.zeros, r.zeros, ns)) || memcmp(wh, rwh, rows * cols * sizeof *wh)) {
                            if (!bad++) printf("  bits %d g %d asym %d act_order %d mse %d differs from RTN\n", bits,
                                               (int)groups[gi], asym, ao, mse);
                        }
                        /* the proxy loss: sum (w - q)^2 / d^2 / 2 with d^2 = 1 / 1.01 */
                        double l = 0;
                        for (int64_t i = 0; i < rows * cols; i++) l += ((double)w[i] - rwh[i]) * ((double)w[i] - rwh[i]);
                        if (fabs(res.loss - l * 1.01 / 2) > 1e-5 * l + 1e-30) {
                            if (!bad++) printf("  loss %.9g, expected %.9g\n", res.loss, l * 1.01 / 2);
                        }
                        sq_qweight_free(&q);
                        sq_qweight_free(&r);
                    }
    SQ_CHECKF(bad == 0, "%d of %d configurations differ", bad, cfgs);
    free(w);
    free(wh);
    free(rwh);
    free(xtx);
}

/* The sweep written the obvious way (no lazy batches, no GEMM): for each row and column,
 * fit the group on the current row at group starts, quantize, and push the error onto every
 * later column through row i of U. */
static void naive_gptq(const float *w, int64_t rows, int64_t cols, const float *u, const sq_qscheme *sch,
                       uint8_t *codes, float *wh) {
    int64_t g = sq_qscheme_group_len(sch, cols);
    int32_t qmax = (1 << sch->bits) - 1;
    float *row = malloc(cols * sizeof *row);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(row, w + r * cols, cols * sizeof *row);
        float s = 0;
        int32_t z = 0;
        for (int64_t i = 0; i < cols; i++) {
            if (i % g == 0) {
                float zf;
                ref_gptq_params(row + i, (int)(i + g < cols ? g : cols - i), sch->bits, !sch->asym, false, &s, &zf);
                z = (int32_t)zf;
            }
            float qf = rintf(row[i] / s) + (float)z;
            qf = qf < 0 ? 0 : qf > (float)qmax ? (float)qmax : qf;
            float qv = s * (qf - (float)z);
            codes[r * cols + i] = (uint8_t)qf;
            wh[r * cols + i] = qv;
            float e = (row[i] - qv) / u[i * cols + i];
            for (int64_t j = i + 1; j < cols; j++) row[j] -= e * u[i * cols + j];
        }
    }
    free(row);
}

SQ_TEST(test_gptq_vs_rtn) {
    const int64_t rows = 96, cols = 256, n = sq_test_quick() ? 384 : 768;
    float *w = malloc(rows * cols * sizeof *w), *wh = malloc(rows * cols * sizeof *wh);
    float *rwh = malloc(rows * cols * sizeof *rwh), *deq = malloc(rows * cols * sizeof *deq);
    float *nwh = malloc(rows * cols * sizeof *nwh);
    uint8_t *ncodes = malloc(rows * cols);
    fill_normal(w, rows * cols, 0.05);
    float *x = make_x(n, cols, 4);
    double *xtx = make_xtx(x, n, cols);
    int fails = 0;
    printf("  %-28s %12s %12s %7s %10s\n", "scheme", "RTN err", "GPTQ err", "ratio", "loss");
    for (int bits = 3; bits <= 4; bits++)
        for (int asym = 0; asym < 2; asym++)
            for (int32_t group = 0; group <= 64; group += 64)
                for (int ao = 0; ao < 2; ao++) {
                    sq_gptq_opts o = gopts(bits, group, asym, ao);
                    sq_qweight q, r;
                    sq_gptq_result res;
                    sq_gptq_hinv h;
                    SQ_CHECK_OK(gptq_run(&q, wh, &res, w, rows, cols, xtx, n, &o, &h));
                    SQ_CHECK_OK(sq_rtn_quantize(&r, rwh, w, rows, cols, &o.scheme, &o.rtn));
                    if (!q.codes || !r.codes) {
                        fails++;
                        continue;
                    }
                    SQ_CHECK_OK(sq_qweight_check(&q, "gptq"));
                    SQ_CHECK_OK(sq_qweight_dequant(&q, deq));
                    SQ_CHECK(memcmp(deq, wh, rows * cols * sizeof *wh) == 0);
                    double eg = out_err(w, wh, rows, cols, xtx), er = out_err(w, rwh, rows, cols, xtx);
                    char name[64];
                    snprintf(name, sizeof name, "%d-bit %s %s%s", bits, asym ? "asym" : "sym",
                             group ? "g64" : "per-row", ao ? " act-order" : "");
                    printf("  %-28s %12.5g %12.5g %7.3f %10.5g\n", name, er, eg, eg / er, res.loss);
                    SQ_CHECKF(eg < er, "%s: GPTQ %g not below RTN %g", name, eg, er);
                    SQ_CHECK(res.loss > 0 && res.percdamp == 0.01);
                    if (!ao) {
                        /* the naive unblocked sweep (same U): nearly the same codes and error */
                        naive_gptq(w, rows, cols, h.u, &o.scheme, ncodes, nwh);
                        int64_t same = 0;
                        for (int64_t i = 0; i < rows * cols; i++) same += ncodes[i] == q.codes[i];
                        double en = out_err(w, nwh, rows, cols, xtx);
                        SQ_CHECKF((double)same >= 0.97 * (double)(rows * cols), "%s: only %lld of %lld codes match "
                                  "the naive sweep", name, (long long)same, (long long)(rows * cols));
                        SQ_CHECKF(fabs(en - eg) <= 0.03 * en, "%s: naive error %g vs %g", name, en, eg);
                        printf("  %-28s naive sweep: %.2f%% same codes, error %.5g\n", "", 100.0 * (double)same /
                               (double)(rows * cols), en);
                    }
                    sq_gptq_hinv_free(&h);
                    sq_qweight_free(&q);
                    sq_qweight_free(&r);
                }
    SQ_CHECK(fails == 0);
    /* dynamic groups that do not divide the block (g32 with B = 48 -> aligned block 32) and
     * a ragged group (g100 on 256 = 100 + 100 + 56) against the naive sweep */
    const int32_t gs[] = {32, 100};
    const int32_t bs[] = {48, 128};
    for (int k = 0; k < 2; k++) {
        sq_gptq_opts o = gopts(4, gs[k], true, false);
        o.block_size = bs[k];
        sq_qweight q;
        sq_gptq_result res;
        sq_gptq_hinv h;
        SQ_CHECK_OK(gptq_run(&q, wh, &res, w, rows, cols, xtx, n, &o, &h));
        if (!q.codes) continue;
        SQ_CHECK(res.block_size == (k ? 100 : 32));
        naive_gptq(w, rows, cols, h.u, &o.scheme, ncodes, nwh);
        int64_t same = 0;
        for (int64_t i = 0; i < rows * cols; i++) same += ncodes[i] == q.codes[i];
        double eg = out_err(w, wh, rows, cols, xtx), en = out_err(w, nwh, rows, cols, xtx);
        printf("  4-bit asym g%d B%d: %.2f%% codes as the naive sweep, error %.5g vs %.5g\n", (int)gs[k], (int)bs[k],
               100.0 * (double)same / (double)(rows * cols), eg, en);
        SQ_CHECK((double)same >= 0.97 * (double)(rows * cols) && fabs(en - eg) <= 0.03 * en);
        sq_gptq_hinv_free(&h);
        sq_qweight_free(&q);
    }
    /* the signed-max grid inside GPTQ (dynamic and static groups): negative scales appear,
     * the decode matches the sweep, and the output error stays below RTN's on that grid */
    for (int ao = 0; ao < 2; ao++) {
        sq_gptq_opts o = gopts(4, 64, false, ao);
        o.rtn.grid = SQ_QGRID_SIGNED_MAX;
        sq_qweight q, r;
        sq_gptq_result res;
        SQ_CHECK_OK(gptq_run(&q, wh, &res, w, rows, cols, xtx, n, &o, NULL));
        SQ_CHECK_OK(sq_rtn_quantize(&r, rwh, w, rows, cols, &o.scheme, &o.rtn));
        if (!q.codes || !r.codes) continue;
        SQ_CHECK_OK(sq_qweight_check(&q, "gptq signed-max"));
        SQ_CHECK_OK(sq_qweight_dequant(&q, deq));
        SQ_CHECK(memcmp(deq, wh, rows * cols * sizeof *wh) == 0);
        int64_t n_neg = 0;
        for (int64_t i = 0; i < rows * q.n_groups; i++) n_neg += q.scales[i] < 0;
        double eg = out_err(w, wh, rows, cols, xtx), er = out_err(w, rwh, rows, cols, xtx);
        printf("  4-bit sym g64 signed-max%s: RTN %.5g GPTQ %.5g, %lld of %lld scales negative\n",
               ao ? " act-order" : "", er, eg, (long long)n_neg, (long long)(rows * q.n_groups));
        SQ_CHECK(eg < er && n_neg > 0 && n_neg < rows * q.n_groups);
        sq_qweight_free(&q);
        sq_qweight_free(&r);
    }
    free(w);
    free(wh);
    free(rwh);
    free(deq);
    free(nwh);
    free(ncodes);
    free(x);
    free(xtx);
}

SQ_TEST(test_gptq_act_order_static) {
    /* act-order + static groups on a ragged row (172 = 64 + 64 + 44) with dead inputs:
     * groups are contiguous in original order and fitted on the unmodified W (dead columns
     * zeroed), i.e. exactly RTN's grids; decoding with the stored grids gives the sweep's
     * W_hat; dead columns decode to 0. */
    const int64_t rows = 40, cols = 172, n = 400;
    float *w = malloc(rows * cols * sizeof *w), *w0 = malloc(rows * cols * sizeof *w0);
    float *wh = malloc(rows * cols * sizeof *wh), *deq = malloc(rows * cols * sizeof *deq);
    fill_normal(w, rows * cols, 0.05);
    float *x = make_x(n, cols, 3);
    const int64_t dead[] = {0, 17, 130, 171};
    for (int k = 0; k < 4; k++)
        for (int64_t t = 0; t < n; t++) x[t * cols + dead[k]] = 0.0f;
    double *xtx = make_xtx(x, n, cols);
    memcpy(w0, w, rows * cols * sizeof *w);
    for (int64_t r = 0; r < rows; r++)
        for (int k = 0; k < 4; k++) w0[r * cols + dead[k]] = 0.0f;
    for (int asym = 0; asym < 2; asym++)
        for (int32_t group = 64; group >= 0; group -= 64) {
            sq_gptq_opts o = gopts(4, group, asym, true);
            sq_qweight q, r;
            sq_gptq_result res;
            sq_gptq_hinv h;
            SQ_CHECK_OK(gptq_run(&q, wh, &res, w, rows, cols, xtx, n, &o, &h));
            SQ_CHECK_OK(sq_rtn_quantize(&r, NULL, w0, rows, cols, &o.scheme, &o.rtn));
            if (!q.codes || !r.codes) continue;
            SQ_CHECK(h.n_dead == 4 && res.n_dead == 4 && h.dead[17] && !h.dead[18]);
            size_t ns = (size_t)(rows * q.n_groups);
            SQ_CHECK(q.n_groups == (group ? 3 : 1));
            SQ_CHECK(memcmp(q.scales, r.scales, ns * sizeof(float)) == 0);
            SQ_CHECK(!asym || memcmp(q.zeros, r.zeros, ns) == 0);
            SQ_CHECK_OK(sq_qweight_dequant(&q, deq));
            SQ_CHECK(memcmp(deq, wh, rows * cols * sizeof *wh) == 0);
            int dead_bad = 0, perm_bad = 0, moved = 0;
            for (int64_t rr = 0; rr < rows; rr++)
                for (int k = 0; k < 4; k++) dead_bad += wh[rr * cols + dead[k]] != 0.0f;
            SQ_CHECK(dead_bad == 0);
            /* perm: a permutation, by decreasing diag(H) (dead inputs count as H_jj = 1) */
            uint8_t *seen = calloc(cols, 1);
            for (int64_t i = 0; i < cols; i++) {
                int64_t c = h.perm[i];
                if (c < 0 || c >= cols || seen[c]++) perm_bad++;
                moved += c != i;
                if (i + 1 < cols) {
                    double d0 = h.dead[c] ? 1.0 : 2 * xtx[c * cols + c] / n;
                    double d1 = h.dead[h.perm[i + 1]] ? 1.0 : 2 * xtx[h.perm[i + 1] * (cols + 1)] / n;
                    perm_bad += d0 < d1;
                }
            }
            free(seen);
            SQ_CHECK(perm_bad == 0 && moved > 0);
            /* and GPTQ still beats RTN here */
            float *rwh = malloc(rows * cols * sizeof *rwh);
            sq_qweight_dequant(&r, rwh);
            SQ_CHECK(out_err(w0, wh, rows, cols, xtx) < out_err(w0, rwh, rows, cols, xtx));
            free(rwh);
            sq_gptq_hinv_free(&h);
            sq_qweight_free(&q);
            sq_qweight_free(&r);
        }
    /* static groups without act-order: same grids as RTN too */
    sq_gptq_opts o = gopts(3, 64, true, false);
    o.static_groups = true;
    sq_qweight q, r;
    SQ_CHECK_OK(gptq_run(&q, wh, NULL, w, rows, cols, xtx, n, &o, NULL));
    SQ_CHECK_OK(sq_rtn_quantize(&r, NULL, w0, rows, cols, &o.scheme, &o.rtn));
    if (q.scales && r.scales) SQ_CHECK(memcmp(q.scales, r.scales, rows * q.n_groups * sizeof(float)) == 0);
    sq_qweight_free(&q);
    sq_qweight_free(&r);
    free(w);
    free(w0);
    free(wh);
    free(deq);
    free(x);
    free(xtx);
}

SQ_TEST(test_gptq_threads) {
    const int64_t rows = 200, cols = 192, n = 300; /* 4 row chunks of 64, the last one ragged */
    float *w = malloc(rows * cols * sizeof *w);
    float *wh1 = malloc(rows * cols * sizeof *wh1), *wh2 = malloc(rows * cols * sizeof *wh2);
    fill_normal(w, rows * cols, 0.05);
    float *x = make_x(n, cols, 2);
    double *xtx = make_xtx(x, n, cols);
    for (int cfg = 0; cfg < 3; cfg++) {
        sq_gptq_opts o = gopts(cfg == 2 ? 3 : 4, cfg == 1 ? 0 : 64, cfg != 0, cfg == 0);
        o.block_size = cfg == 2 ? 40 : 128;
        sq_qweight q1, q2;
        sq_gptq_result r1, r2;
        o.n_threads = 1;
        SQ_CHECK_OK(gptq_run(&q1, wh1, &r1, w, rows, cols, xtx, n, &o, NULL));
        o.n_threads = 2;
        SQ_CHECK_OK(gptq_run(&q2, wh2, &r2, w, rows, cols, xtx, n, &o, NULL));
        if (!q1.codes || !q2.codes) continue;
        size_t ns = (size_t)(rows * q1.n_groups);
        SQ_CHECK(memcmp(q1.codes, q2.codes, (size_t)(rows * cols)) == 0);
        SQ_CHECK(memcmp(q1.scales, q2.scales, ns * sizeof(float)) == 0);
        SQ_CHECK(!q1.zeros || memcmp(q1.zeros, q2.zeros, ns) == 0);
        SQ_CHECK(memcmp(wh1, wh2, rows * cols * sizeof *wh1) == 0);
        SQ_CHECK(memcmp(&r1.loss, &r2.loss, sizeof r1.loss) == 0);
        sq_qweight_free(&q1);
        sq_qweight_free(&q2);
    }
    /* the clip search too */
    float *c1 = malloc(rows * cols * sizeof *c1), *c2 = malloc(rows * cols * sizeof *c2);
    memcpy(c1, w, rows * cols * sizeof *c1);
    memcpy(c2, w, rows * cols * sizeof *c2);
    sq_awq_clip_opts co;
    sq_awq_clip_opts_default(&co);
    sq_qscheme sch = {.bits = 4, .group = 64, .asym = true};
    co.n_threads = 1;
    SQ_CHECK_OK(sq_awq_clip(c1, rows, cols, x, n, &sch, NULL, &co, NULL));
    co.n_threads = 2;
    SQ_CHECK_OK(sq_awq_clip(c2, rows, cols, x, n, &sch, NULL, &co, NULL));
    SQ_CHECK(memcmp(c1, c2, rows * cols * sizeof *c1) == 0);
    free(c1);
    free(c2);
    free(w);
    free(wh1);
    free(wh2);
    free(x);
    free(xtx);
}

/* Per-row rescaling: never raises a row's output error; on RTN weights whose scales were
 * shrunk by 10 % it recovers most of the loss (the optimum is close to the original scale),
 * and the result is a valid weight that decodes to what it returns. */
SQ_TEST(test_rescale_rows) {
    const int64_t rows = 40, cols = 160, n = 512; /* 160 = g64 + g64 + a ragged 32 */
    float *w = malloc(rows * cols * sizeof *w), *wh = malloc(rows * cols * sizeof *wh);
    float *wh2 = malloc(rows * cols * sizeof *wh2), *deq = malloc(rows * cols * sizeof *deq);
    fill_normal(w, rows * cols, 0.05);
    float *x = make_x(n, cols, 3);
    double *xtx = make_xtx(x, n, cols);
    sq_qscheme sch = {.bits = 4, .group = 64, .asym = true};
    sq_rtn_opts ro = {.range = SQ_RTN_RANGE_GPTQ};
    sq_qweight q;
    SQ_CHECK_OK(sq_rtn_quantize(&q, wh, w, rows, cols, &sch, &ro));
    const double e0 = out_err(w, wh, rows, cols, xtx);
    int64_t changed = -1;
    SQ_CHECK_OK(sq_qweight_rescale_rows(&q, wh2, w, xtx, &changed));
    const double e1 = out_err(w, wh2, rows, cols, xtx);
    SQ_CHECKF(e1 <= e0 && changed >= 0 && changed <= rows, "plain RTN: %g -> %g (%lld rows)", e0, e1, (long long)changed);
    SQ_CHECK_OK(sq_qweight_check(&q, "rescaled"));
    SQ_CHECK_OK(sq_qweight_dequant(&q, deq));
    SQ_CHECK(memcmp(deq, wh2, rows * cols * sizeof *deq) == 0);
    for (int64_t i = 0; i < rows * q.n_groups; i++) q.scales[i] = f16r(q.scales[i] * 0.9f);
    SQ_CHECK_OK(sq_qweight_dequant(&q, wh));
    const double e2 = out_err(w, wh, rows, cols, xtx);
    SQ_CHECK_OK(sq_qweight_rescale_rows(&q, wh2, w, xtx, &changed));
    const double e3 = out_err(w, wh2, rows, cols, xtx);
    printf("  RTN error %.5g, after rescaling %.5g; shrunk scales %.5g, rescaled %.5g (%lld rows)\n", e0, e1, e2, e3,
           (long long)changed);
    SQ_CHECKF(changed == rows && e3 < e2 && e3 - e1 < 0.25 * (e2 - e1), "shrunk: %g -> %g (best %g)", e2, e3, e1);
    sq_qweight_free(&q);
    free(w);
    free(wh);
    free(wh2);
    free(deq);
    free(x);
    free(xtx);
}

SQ_TEST(test_gptq_damping) {
    const int64_t cols = 24, rows = 8;
    float w[8 * 24];
    fill_normal(w, rows * cols, 0.1);
    double *xtx = calloc(cols * cols, sizeof *xtx);
    sq_gptq_opts o = gopts(4, 0, true, false);
    sq_gptq_hinv h;
    sq_qweight q;

    /* Exactly singular (a duplicated input: [[1, 1], [1, 1]] block) with no damping
     * requested: the first Cholesky fails, the retry uses 0.01. */
    for (int64_t i = 0; i < cols; i++) xtx[i * cols + i] = 1.0;
    xtx[3 * cols + 4] = xtx[4 * cols + 3] = 1.0;
    o.percdamp = 0.0;
    SQ_CHECK_OK(sq_gptq_hinv_init(&h, xtx, cols, 2, &o));
    SQ_CHECK(h.n_retries == 1 && h.percdamp == 0.01 && h.lambda > 0);
    SQ_CHECK_OK(sq_gptq_quantize(&q, NULL, NULL, w, rows, &h, &o));
    sq_qweight_free(&q);
    sq_gptq_hinv_free(&h);

    /* Indefinite beyond the default damping (eigenvalue -0.05 of a 2x2 block, mean diag 1):
     * 0.01 fails, 0.1 works and is recorded. */
    xtx[3 * cols + 4] = xtx[4 * cols + 3] = 1.05;
    o.percdamp = 0.01;
    SQ_CHECK_OK(sq_gptq_hinv_init(&h, xtx, cols, 2, &o));
    SQ_CHECK(h.n_retries == 1 && fabs(h.percdamp - 0.1) < 1e-15);
    sq_gptq_result res;
    SQ_CHECK_OK(sq_gptq_quantize(&q, NULL, &res, w, rows, &h, &o));
    SQ_CHECK(res.percdamp == h.percdamp);
    sq_qweight_free(&q);
    /* act_order of the opts must match the factorisation */
    o.act_order = true;
    SQ_CHECK(sq_gptq_quantize(&q, NULL, NULL, w, rows, &h, &o) == SQ_ERR_ARG && q.codes == NULL);
    o.act_order = false;
    sq_gptq_hinv_free(&h);
    /* out of retries */
    o.damp_retries = 0;
    SQ_CHECK(sq_gptq_hinv_init(&h, xtx, cols, 2, &o) == SQ_ERR_ARG && strstr(sq_last_error(), "positive definite"));
    SQ_CHECK(h.u == NULL);
    o.damp_retries = 4;

    /* Non-finite and non-Gram inputs are clear errors. */
    xtx[3 * cols + 4] = NAN;
    SQ_CHECK(sq_gptq_hinv_init(&h, xtx, cols, 2, &o) == SQ_ERR_ARG && strstr(sq_last_error(), "not finite"));
    xtx[3 * cols + 4] = 0.0;
    xtx[7 * cols + 7] = INFINITY;
    SQ_CHECK(sq_gptq_hinv_init(&h, xtx, cols, 2, &o) == SQ_ERR_ARG && strstr(sq_last_error(), "XtX[7, 7]"));
    xtx[7 * cols + 7] = -2.0;
    SQ_CHECK(sq_gptq_hinv_init(&h, xtx, cols, 2, &o) == SQ_ERR_ARG && strstr(sq_last_error(), "negative"));
    xtx[7 * cols + 7] = 1.0;
    SQ_CHECK(sq_gptq_hinv_init(&h, xtx, cols, 0, &o) == SQ_ERR_ARG);
    o.scheme.bits = 7;
    SQ_CHECK_OK(sq_gptq_hinv_init(&h, xtx, cols, 2, &o));
    SQ_CHECK(sq_gptq_quantize(&q, NULL, NULL, w, rows, &h, &o) == SQ_ERR_ARG && strstr(sq_last_error(), "7 bits"));
    o.scheme.bits = 4;
    w[11] = NAN;
    SQ_CHECK(sq_gptq_quantize(&q, NULL, NULL, w, rows, &h, &o) == SQ_ERR_ARG && strstr(sq_last_error(), "w[0, 11]"));
    sq_gptq_hinv_free(&h);
    sq_gptq_hinv_free(NULL);
    free(xtx);
}

/* ===== AWQ ===== */

typedef struct {
    const float *w, *x;
    int64_t rows, cols, n;
    const double *y; /* FP output [n x rows] */
    sq_qscheme sch;
    float *fq;
    int calls;
} awq_loss_ctx;

/* Mean squared output error of x (Q(W diag s) diag s^-1)^T against the FP output. */
static sq_status awq_loss(void *user, const float *scales, double *loss) {
    awq_loss_ctx *c = user;
    sq_rtn_opts ro = {.range = SQ_RTN_RANGE_AWQ};
    sq_status st = sq_rtn_fakequant(c->fq, c->w, c->rows, c->cols, scales, &c->sch, &ro);
    if (st) return st;
    double acc = 0;
    for (int64_t t = 0; t < c->n; t++)
        for (int64_t r = 0; r < c->rows; r++) {
            double y = 0;
            for (int64_t j = 0; j < c->cols; j++) y += (double)c->fq[r * c->cols + j] * c->x[t * c->cols + j];
            acc += (y - c->y[t * c->rows + r]) * (y - c->y[t * c->rows + r]);
        }
    *loss = acc / (double)(c->n * c->rows);
    c->calls++;
    return SQ_OK;
}

static sq_status failing_loss(void *user, const float *scales, double *loss) {
    (void)user;
    (void)scales;
    (void)loss;
    return sq_errorf(SQ_ERR_IO, "cannot run the module");
}

SQ_TEST(test_awq_search) {
    const int64_t rows = 48, cols = 128, n = 192;
    float *w = malloc(rows * cols * sizeof *w), *x = malloc(n * cols * sizeof *x), *xm = malloc(cols * sizeof *xm);
    float *fq = malloc(rows * cols * sizeof *fq), *s = malloc(cols * sizeof *s), *s2 = malloc(cols * sizeof *s2);
    double *y = malloc(n * rows * sizeof *y);
    fill_normal(w, rows * cols, 0.05);
    fill_normal(x, n * cols, 1.0);
    const int64_t salient[] = {5, 40, 77, 120};
    for (int k = 0; k < 4; k++)
        for (int64_t t = 0; t < n; t++) x[t * cols + salient[k]] *= 25.0f;
    for (int64_t j = 0; j < cols; j++) {
        double a = 0;
        for (int64_t t = 0; t < n; t++) a += fabs((double)x[t * cols + j]);
        xm[j] = (float)(a / (double)n);
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0;
            for (int64_t j = 0; j < cols; j++) acc += (double)w[r * cols + j] * x[t * cols + j];
            y[t * rows + r] = acc;
        }
    for (int bits = 3; bits <= 4; bits++)
        for (int duo = 0; duo < 2; duo++) {
            awq_loss_ctx c = {.w = w, .x = x, .rows = rows, .cols = cols, .n = n, .y = y, .fq = fq,
                              .sch = {.bits = bits, .group = 32, .asym = true}};
            sq_awq_opts o;
            sq_awq_opts_default(&o);
            o.duo_scaling = duo;
            o.duo_group = 32;
            sq_awq_result res;
            sq_awq_linear lin = {w, rows};
            SQ_CHECK_OK(sq_awq_search(s, &res, xm, cols, &lin, 1, &o, awq_loss, &c));
            printf("  %d-bit g32%s: alpha %.2f loss %.6g (alpha 0: %.6g)\n", bits, duo ? " duo" : "", res.alpha,
                   res.loss, res.loss_alpha0);
            SQ_CHECK(c.calls == 20);
            SQ_CHECK(res.alpha > 0 && res.loss <= res.loss_alpha0);
            SQ_CHECK(res.loss < res.loss_alpha0 * 0.95);
            /* the returned scales are the candidate of the best alpha, and score that loss */
            double *wm = NULL;
            if (duo) {
                wm = malloc(cols * sizeof *wm);
                SQ_CHECK_OK(sq_awq_w_mean(wm, &lin, 1, cols, 32));
            }
            SQ_CHECK_OK(sq_awq_scales_for_alpha(s2, xm, wm, cols, res.alpha));
            SQ_CHECK(memcmp(s, s2, cols * sizeof *s) == 0);
            double l;
            awq_loss(&c, s, &l);
            SQ_CHECK(l == res.loss);
            /* salient channels get the largest scales; normalised so max * min = 1 */
            float mx = 0, mn = INFINITY;
            int64_t arg = -1;
            for (int64_t j = 0; j < cols; j++) {
                if (s[j] > mx) {
                    mx = s[j];
                    arg = j;
                }
                mn = fminf(mn, s[j]);
            }
            SQ_CHECK_CLOSE((double)mx * mn, 1.0, 1e-5, 0);
            if (!duo) SQ_CHECK(arg == 5 || arg == 40 || arg == 77 || arg == 120);
            /* without duo scaling, alpha 0 is plain RTN: its loss is the loss of Q(W) */
            if (!duo) {
                for (int64_t j = 0; j < cols; j++) s2[j] = 1.0f;
                awq_loss(&c, s2, &l);
                SQ_CHECK(l == res.loss_alpha0);
            }
            free(wm);
        }
    /* the callback's error propagates */
    SQ_CHECK(sq_awq_search(s, NULL, xm, cols, NULL, 0, NULL, failing_loss, NULL) == SQ_ERR_IO &&
             strstr(sq_last_error(), "cannot run the module"));
    xm[3] = -1.0f;
    SQ_CHECK(sq_awq_search(s, NULL, xm, cols, NULL, 0, NULL, awq_loss, NULL) == SQ_ERR_ARG);
    free(w);
    free(x);
    free(xm);
    free(fq);
    free(s);
    free(s2);
    free(y);
}

SQ_TEST(test_awq_fold) {
    /* RMSNorm -> linear, and linear -> linear: folding s leaves the FP function unchanged. */
    const int64_t cols = 96, rows = 40, k = 33, n = 16;
    float *x = malloc(n * cols * sizeof *x), *g = malloc(cols * sizeof *g), *w = malloc(rows * cols * sizeof *w);
    float *v = malloc(cols * k * sizeof *v), *u = malloc(n * k * sizeof *u), *s = malloc(cols * sizeof *s);
    float *g0 = malloc(cols * sizeof *g0), *w0 = malloc(rows * cols * sizeof *w0), *v0 = malloc(cols * k * sizeof *v0);
    fill_normal(x, n * cols, 1.0);
    fill_normal(g, cols, 1.0);
    fill_normal(w, rows * cols, 0.1);
    fill_normal(v, cols * k, 0.1);
    fill_normal(u, n * k, 1.0);
    for (int64_t j = 0; j < cols; j++) s[j] = (float)exp(1.5 * rng_normal());
    memcpy(g0, g, cols * sizeof *g);
    memcpy(w0, w, rows * cols * sizeof *w);
    memcpy(v0, v, cols * k * sizeof *v);
    SQ_CHECK_OK(sq_awq_fold_vec(g, cols, s));
    SQ_CHECK_OK(sq_awq_fold_rows(v, cols, k, s));
    SQ_CHECK_OK(sq_awq_scale_cols(w, rows, cols, s));
    double emax = 0, ymax = 0;
    float *h = malloc(cols * sizeof *h), *h0 = malloc(cols * sizeof *h0);
    for (int pass = 0; pass < 2; pass++)
        for (int64_t t = 0; t < n; t++) {
            if (pass == 0) { /* norm: h = g * x / rms(x) */
                double ms = 0;
                for (int64_t j = 0; j < cols; j++) ms += (double)x[t * cols + j] * x[t * cols + j];
                float inv = (float)(1.0 / sqrt(ms / cols + 1e-5));
                for (int64_t j = 0; j < cols; j++) {
                    h[j] = x[t * cols + j] * inv * g[j];
                    h0[j] = x[t * cols + j] * inv * g0[j];
                }
            } else { /* previous linear: h = V u */
                for (int64_t j = 0; j < cols; j++) {
                    double a = 0, a0 = 0;
                    for (int64_t i = 0; i < k; i++) {
                        a += (double)v[j * k + i] * u[t * k + i];
                        a0 += (double)v0[j * k + i] * u[t * k + i];
                    }
                    h[j] = (float)a;
                    h0[j] = (float)a0;
                }
            }
            for (int64_t r = 0; r < rows; r++) {
                double y = 0, y0 = 0;
                for (int64_t j = 0; j < cols; j++) {
                    y += (double)w[r * cols + j] * h[j];
                    y0 += (double)w0[r * cols + j] * h0[j];
                }
                emax = fmax(emax, fabs(y - y0));
                ymax = fmax(ymax, fabs(y0));
            }
        }
    SQ_CHECKF(emax <= 1e-6 * ymax, "max |y - y0| = %g (|y0| max %g)", emax, ymax);
    /* a bad scale changes nothing */
    memcpy(g0, g, cols * sizeof *g);
    s[7] = 0.0f;
    SQ_CHECK(sq_awq_fold_vec(g, cols, s) == SQ_ERR_ARG && memcmp(g, g0, cols * sizeof *g) == 0);
    s[7] = INFINITY;
    SQ_CHECK(sq_awq_scale_cols(w, rows, cols, s) == SQ_ERR_ARG);
    free(x);
    free(g);
    free(w);
    free(v);
    free(u);
    free(s);
    free(g0);
    free(w0);
    free(v0);
    free(h);
    free(h0);
}

/* Group-output MSE of w_q against w over the sample, for one (row, group), in double. */
static double group_mse(const float *w, const float *wq, const float *x, int64_t n, int64_t cols, int64_t c0,
                        int64_t len) {
    double acc = 0;
    for (int64_t t = 0; t < n; t++) {
        double d = 0;
        for (int64_t j = c0; j < c0 + len; j++) d += ((double)wq[j] - (double)w[j]) * x[t * cols + j];
        acc += d * d;
    }
    return acc / (double)n;
}

SQ_TEST(test_awq_clip) {
    const int64_t rows = 70, cols = 172, n = 256;
    float *w = malloc(rows * cols * sizeof *w), *wc = malloc(rows * cols * sizeof *wc);
    float *q0 = malloc(rows * cols * sizeof *q0), *q1 = malloc(rows * cols * sizeof *q1);
    float *x = make_x(n, cols, 2);
    fill_normal(w, rows * cols, 0.05);
    for (int64_t r = 0; r < rows; r += 3) w[r * cols + (r * 7) % cols] *= 6.0f; /* outlier weights */
    int64_t sstep = sq_awq_sample_step(4096, 512);
    SQ_CHECK(sstep == 8 && sq_awq_sample_step(700, 512) == 1 && sq_awq_sample_step(100, 512) == 1);
    for (int bits = 3; bits <= 4; bits++)
        for (int32_t group = 0; group <= 64; group += 64) {
            sq_qscheme sch = {.bits = bits, .group = group, .asym = true};
            sq_rtn_opts ro = {.range = SQ_RTN_RANGE_AWQ};
            int64_t g = sq_qscheme_group_len(&sch, cols), ng = sq_qscheme_n_groups(&sch, cols);
            float *mv = malloc(rows * ng * sizeof *mv);
            memcpy(wc, w, rows * cols * sizeof *w);
            SQ_CHECK_OK(sq_awq_clip(wc, rows, cols, x, n, &sch, &ro, NULL, mv));
            SQ_CHECK_OK(sq_rtn_fakequant(q0, w, rows, cols, NULL, &sch, &ro));
            SQ_CHECK_OK(sq_rtn_fakequant(q1, wc, rows, cols, NULL, &sch, &ro));
            int worse = 0, clamp_bad = 0, clipped = 0;
            double tot0 = 0, tot1 = 0;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t gi = 0; gi < ng; gi++) {
                    int64_t c0 = gi * g, len = c0 + g < cols ? g : cols - c0;
                    const float *wr = w + r * cols;
                    double e0 = group_mse(wr, q0 + r * cols, x, n, cols, c0, len);
                    double e1 = group_mse(wr, q1 + r * cols, x, n, cols, c0, len);
                    tot0 += e0;
                    tot1 += e1;
                    worse += e1 > e0 * (1 + 1e-9) + 1e-300;
                    float m = 0;
                    for (int64_t j = c0; j < c0 + len; j++) m = fmaxf(m, fabsf(wr[j]));
                    float bound = mv[r * ng + gi];
                    int on_grid = 0;
                    for (int i = 0; i < 10; i++) on_grid |= bound == m * (float)(1.0 - i / 20.0);
                    clamp_bad += !on_grid;
                    clipped += bound < m;
                    for (int64_t j = c0; j < c0 + len; j++)
                        clamp_bad += wc[r * cols + j] != fminf(fmaxf(wr[j], -bound), bound);
                }
            printf("  %d-bit %s: clipped %d of %lld groups, group-output MSE %.5g -> %.5g\n", bits,
                   group ? "g64" : "per-row", clipped, (long long)(rows * ng), tot0, tot1);
            SQ_CHECKF(worse == 0, "%d groups got worse", worse);
            SQ_CHECK(clamp_bad == 0);
            SQ_CHECK(clipped > 0 && tot1 < tot0);
            free(mv);
        }
    sq_qscheme bad = {.bits = 4, .group = 200, .asym = true};
    SQ_CHECK(sq_awq_clip(wc, rows, cols, x, n, &bad, NULL, NULL, NULL) == SQ_ERR_ARG);
    free(w);
    free(wc);
    free(q0);
    free(q1);
    free(x);
}

/* ===== Timing ===== */

static void time_gptq(int64_t rows, int64_t cols) {
    const int64_t n = 1024;
    float *w = malloc(rows * cols * sizeof *w);
    fill_normal(w, rows * cols, 0.05);
    float *x = malloc(n * cols * sizeof *x);
    fill_normal(x, n * cols, 1.0);
    double *xtx = calloc(cols * cols, sizeof *xtx);
    /* XtX without the test's slow loops: rank-1 sums by token blocks are fine for timing */
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < cols; i++) {
            double xi = x[t * cols + i];
            double *hi = xtx + i * cols;
            const float *xt = x + t * cols;
            for (int64_t j = i; j < cols; j++) hi[j] += xi * xt[j];
        }
    sq_gptq_opts o = gopts(4, 128, true, true);
    sq_gptq_hinv h;
    sq_qweight q;
    sq_gptq_result res;
    double t0 = now_s();
    sq_status st = sq_gptq_hinv_init(&h, xtx, cols, n, &o);
    double t1 = now_s();
    if (st == SQ_OK) st = sq_gptq_quantize(&q, NULL, &res, w, rows, &h, &o);
    double t2 = now_s();
    SQ_CHECK_OK(st);
    printf("  GPTQ %lld x %lld (4-bit g128 asym act-order, %d threads): factor %.1f ms, sweep %.1f ms\n",
           (long long)rows, (long long)cols, sq_num_threads(), 1e3 * (t1 - t0), 1e3 * (t2 - t1));
    sq_qweight_free(&q);
    sq_gptq_hinv_free(&h);
    free(w);
    free(x);
    free(xtx);
}

SQ_TEST(test_gptq_timing) {
    time_gptq(768, 256);
    time_gptq(256, 768);
}

int main(void) {
    SQ_RUN(test_scheme_validate);
    SQ_RUN(test_rtn_reference);
    SQ_RUN(test_rtn_signed_max);
    SQ_RUN(test_negative_scales_kernels);
    SQ_RUN(test_rtn_fakequant);
    SQ_RUN(test_qweight_check);
    SQ_RUN(test_chol_inverse);
    SQ_RUN(test_gptq_identity);
    SQ_RUN(test_gptq_vs_rtn);
    SQ_RUN(test_gptq_act_order_static);
    SQ_RUN(test_gptq_threads);
    SQ_RUN(test_rescale_rows);
    SQ_RUN(test_gptq_damping);
    SQ_RUN(test_awq_search);
    SQ_RUN(test_awq_fold);
    SQ_RUN(test_awq_clip);
    SQ_RUN(test_gptq_timing);
    return sq_test_summary();
}
