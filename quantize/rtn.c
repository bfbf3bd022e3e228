/* rtn.c - quantization schemes, unpacked quantized weights and round-to-nearest (RTN).
 *
 * The grid rules are ALGORITHMS.md §1: the GPTQ reference quantizer (arXiv:2210.17323,
 * IST-DASLab/gptq quant.py: range forced to contain 0, symmetric keeps lo = 0 when a group
 * has no negative value, optional 80-step MSE shrink with norm 2.4) and AWQ's variant
 * (arXiv:2306.00978, mit-han-lab/llm-awq pseudo_quantize_tensor: true min/max, 1e-5 floor).
 * The symmetric signed-max grid follows ggml's Q4_0 rule (llama.cpp ggml-quants.c
 * quantize_row_q4_0_ref: d = the signed element of largest magnitude / -8) at every width.
 * One deliberate difference from all references: every scale is rounded to fp16 before
 * the zero point and the codes are computed, so decoding with the stored fp16 scale gives
 * exactly the values the algorithm used (also inside the MSE search).
 */
#include <stdlib.h>
#include <string.h>

#include "../runtime/types.h"
#include "quant_internal.h"

/* ===== Schemes ===== */

const char *sq_qgrid_name(sq_qgrid g) { return g == SQ_QGRID_SIGNED_MAX ? "signed-max" : "gptq"; }

sq_status sq_qgrid_parse(const char *name, const char *what, sq_qgrid *out) {
    if (name && !strcmp(name, "gptq")) *out = SQ_QGRID_GPTQ;
    else if (name && !strcmp(name, "signed-max")) *out = SQ_QGRID_SIGNED_MAX;
    else
        return sq_errorf(SQ_ERR_ARG, "%s: unknown grid '%.40s' (gptq or signed-max)", what ? what : "grid",
                         name ? name : "");
    return SQ_OK;
}

sq_status sq_qscheme_validate(const sq_qscheme *s, int64_t cols) {
    if (!s) return sq_errorf(SQ_ERR_ARG, "quantization scheme: missing");
    if (s->bits < 2 || s->bits > 8 || s->bits == 7)
        return sq_errorf(SQ_ERR_ARG, "quantization scheme: %d bits is not supported (use 8, 6, 5, 4, 3 or 2)", (int)s->bits);
    if (s->group < 0)
        return sq_errorf(SQ_ERR_ARG, "quantization scheme: group size %d is negative (use 0 for one group per row)",
                         (int)s->group);
    bool standard = s->group == 32 || s->group == 64 || s->group == 128 || s->group == 256;
    if (cols > 0 && s->group > 0 && !standard && s->group > cols)
        return sq_errorf(SQ_ERR_ARG,
                         "quantization scheme: group size %d is larger than the row (%lld weights); use 0 for one "
                         "group per row",
                         (int)s->group, (long long)cols);
    if (cols > 0 && sq_qscheme_n_groups(s, cols) > INT32_MAX)
        return sq_errorf(SQ_ERR_ARG, "quantization scheme: %lld groups per row is too many",
                         (long long)sq_qscheme_n_groups(s, cols));
    return SQ_OK;
}

int64_t sq_qscheme_group_len(const sq_qscheme *s, int64_t cols) {
    if (s->group <= 0 || s->group >= cols) return cols;
    return s->group;
}

int64_t sq_qscheme_n_groups(const sq_qscheme *s, int64_t cols) {
    if (cols <= 0) return 0;
    int64_t g = sq_qscheme_group_len(s, cols);
    return (cols + g - 1) / g;
}

/* ===== Quantized weights ===== */

sq_status sq_qweight_init(sq_qweight *q, int64_t rows, int64_t cols, const sq_qscheme *s) {
    memset(q, 0, sizeof *q);
    if (rows < 1 || cols < 1 || rows > INT64_MAX / cols)
        return sq_errorf(SQ_ERR_ARG, "%s: bad shape %lld x %lld", __func__, (long long)rows, (long long)cols);
    sq_status st = sq_qscheme_validate(s, cols);
    if (st) return st;
    int64_t ng = sq_qscheme_n_groups(s, cols);
    size_t n = (size_t)(rows * cols), ngr = (size_t)(rows * ng);
    q->rows = rows;
    q->cols = cols;
    q->n_groups = (int32_t)ng;
    q->scheme = *s;
    q->codes = calloc(n, 1);
    q->scales = calloc(ngr, sizeof(float));
    if (s->asym) q->zeros = calloc(ngr, 1);
    if (!q->codes || !q->scales || (s->asym && !q->zeros)) {
        sq_qweight_free(q);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory for a %lld x %lld quantized weight", __func__, (long long)rows,
                         (long long)cols);
    }
    return SQ_OK;
}

void sq_qweight_free(sq_qweight *q) {
    if (!q) return;
    free(q->codes);
    free(q->scales);
    free(q->zeros);
    memset(q, 0, sizeof *q);
}

sq_status sq_qweight_dequant(const sq_qweight *q, float *w) {
    if (!q || !q->codes || !q->scales || !w) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    int64_t g = sq_qscheme_group_len(&q->scheme, q->cols);
    for (int64_t r = 0; r < q->rows; r++) {
        const uint8_t *cr = q->codes + r * q->cols;
        float *wr = w + r * q->cols;
        for (int64_t c0 = 0, gi = 0; c0 < q->cols; c0 += g, gi++) {
            float s = q->scales[r * q->n_groups + gi];
            int32_t z = sq_qweight_zero(q, r, gi);
            int64_t c1 = c0 + g < q->cols ? c0 + g : q->cols;
            for (int64_t c = c0; c < c1; c++) wr[c] = sq_qdecode(cr[c], s, z);
        }
    }
    return SQ_OK;
}

sq_status sq_qweight_check(const sq_qweight *q, const char *what) {
    if (!what) what = "quantized weight";
    if (!q || !q->codes || !q->scales) return sq_errorf(SQ_ERR_ARG, "%s: missing arrays", what);
    if (q->rows < 1 || q->cols < 1 || q->rows > INT64_MAX / q->cols)
        return sq_errorf(SQ_ERR_FORMAT, "%s: bad shape %lld x %lld", what, (long long)q->rows, (long long)q->cols);
    sq_status st = sq_qscheme_validate(&q->scheme, q->cols);
    if (st) {
        sq_error_prefix(what);
        return SQ_ERR_FORMAT;
    }
    if (q->n_groups != sq_qscheme_n_groups(&q->scheme, q->cols))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %d groups per row, expected %lld", what, (int)q->n_groups,
                         (long long)sq_qscheme_n_groups(&q->scheme, q->cols));
    if (q->scheme.asym != (q->zeros != NULL))
        return sq_errorf(SQ_ERR_FORMAT, "%s: zero points %s for a %s scheme", what, q->zeros ? "present" : "missing",
                         q->scheme.asym ? "asymmetric" : "symmetric");
    int32_t qmax = (1 << q->scheme.bits) - 1;
    for (int64_t i = 0; i < q->rows * q->cols; i++)
        if (q->codes[i] > qmax)
            return sq_errorf(SQ_ERR_FORMAT, "%s: code %u at row %lld col %lld exceeds %d", what, q->codes[i],
                             (long long)(i / q->cols), (long long)(i % q->cols), (int)qmax);
    for (int64_t i = 0; i < q->rows * q->n_groups; i++) {
        float s = q->scales[i];
        if (!(q->zeros ? s > 0.0f : s != 0.0f) || !isfinite(s) || sq_f16_to_f32(sq_f32_to_f16(s)) != s)
            return sq_errorf(SQ_ERR_FORMAT, "%s: scale %g of row %lld group %lld is not a %s fp16 value", what,
                             (double)s, (long long)(i / q->n_groups), (long long)(i % q->n_groups),
                             q->zeros ? "positive" : "non-zero");
        if (q->zeros && q->zeros[i] > qmax)
            return sq_errorf(SQ_ERR_FORMAT, "%s: zero point %u of row %lld group %lld exceeds %d", what, q->zeros[i],
                             (long long)(i / q->n_groups), (long long)(i % q->n_groups), (int)qmax);
    }
    return SQ_OK;
}

/* ===== Shared helpers ===== */

sq_status quant_check_finite(const char *fn, const char *what, const float *a, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (!isfinite(a[r * cols + c]))
                return sq_errorf(SQ_ERR_ARG, "%s: %s[%lld, %lld] is not finite (%g)", fn, what, (long long)r,
                                 (long long)c, (double)a[r * cols + c]);
    return SQ_OK;
}

float quant_scale_round(float s) {
    float r = sq_f16_to_f32(sq_f32_to_f16(fabsf(s)));
    if (!(r >= 0x1p-24f)) r = 0x1p-24f; /* underflow to 0 (or a NaN slipped through) */
    if (r > 65504.0f) r = 65504.0f;     /* overflow to inf */
    return s < 0.0f ? -r : r;
}

/* ===== RTN ===== */

#define MSE_GRID 100     /* shrink step 1/100 */
#define MSE_STEPS 80     /* maxshrink 0.8 */
#define MSE_NORM 2.4

static int32_t clamp_zero(float v, int32_t qmax) {
    if (!(v > 0.0f)) return 0;
    if (v > (float)qmax) return qmax;
    return (int32_t)v;
}

/* (scale, zero) of the grid spanning [lo, hi] under the range rule. */
static void grid_from_range(sq_rtn_range kind, bool asym, int32_t bits, float lo, float hi, float *scale,
                            int32_t *zero) {
    int32_t qmax = (1 << bits) - 1, half = 1 << (bits - 1);
    float s;
    if (kind == SQ_RTN_RANGE_AWQ) {
        if (asym) {
            s = quant_scale_round(fmaxf(hi - lo, 1e-5f) / (float)qmax);
            *zero = clamp_zero(-rintf(lo / s), qmax);
        } else {
            s = quant_scale_round(fmaxf(hi, 1e-5f) / (float)(half - 1));
            *zero = half;
        }
    } else {
        s = quant_scale_round((hi - lo) / (float)qmax);
        *zero = asym ? clamp_zero(rintf(-lo / s), qmax) : half;
    }
    *scale = s;
}

/* The signed-max grid's scale for the extreme m: m / -z rounded to fp16 (an all-zero
 * group, m = 0, gets 1 / z: every weight is then code z). */
static float signed_max_scale(float m, int32_t half) {
    return quant_scale_round(m != 0.0f ? m / (float)-half : 1.0f / (float)half);
}

/* Sum of |decoded - w|^2.4 over a group on the grid (s, z): the MSE search's norm. */
static double grid_err(const float *w, int64_t n, float s, int32_t z, int32_t qmax) {
    double err = 0.0;
    for (int64_t j = 0; j < n; j++) {
        float d = sq_qdecode(sq_qcode(w[j], s, z, qmax), s, z) - w[j];
        err += pow(fabs((double)d), MSE_NORM);
    }
    return err;
}

/* Symmetric signed-max grid: m is the first element of largest |w| (with its sign); the
 * MSE search shrinks m as the GPTQ search shrinks the range. */
static void signed_max_fit(const float *w, int64_t n, int32_t bits, bool mse, float *scale, int32_t *zero) {
    int32_t half = 1 << (bits - 1), qmax = (1 << bits) - 1;
    float m = w[0];
    for (int64_t i = 1; i < n; i++)
        if (fabsf(w[i]) > fabsf(m)) m = w[i];
    *zero = half;
    *scale = signed_max_scale(m, half);
    if (!mse) return;
    double best = INFINITY;
    for (int i = 0; i < MSE_STEPS; i++) {
        float p = (float)(1.0 - (double)i / MSE_GRID), s1 = signed_max_scale(p * m, half);
        double err = grid_err(w, n, s1, half, qmax);
        if (err < best) {
            best = err;
            *scale = s1;
        }
    }
}

void sq_qgroup_fit(const float *w, int64_t n, int32_t bits, bool asym, const sq_rtn_opts *o, float *scale,
                   int32_t *zero) {
    if (!asym && o && o->grid == SQ_QGRID_SIGNED_MAX) {
        signed_max_fit(w, n, bits, o->mse, scale, zero);
        return;
    }
    sq_rtn_range kind = o ? o->range : SQ_RTN_RANGE_GPTQ;
    float mn = w[0], mx = w[0];
    for (int64_t i = 1; i < n; i++) {
        mn = fminf(mn, w[i]);
        mx = fmaxf(mx, w[i]);
    }
    float lo, hi;
    if (kind == SQ_RTN_RANGE_AWQ) {
        if (asym) {
            lo = mn;
            hi = mx;
        } else {
            hi = fmaxf(fabsf(mn), fabsf(mx));
            lo = -hi;
        }
    } else {
        lo = fminf(mn, 0.0f);
        hi = fmaxf(mx, 0.0f);
        if (!asym) {
            hi = fmaxf(fabsf(lo), hi);
            if (lo < 0.0f) lo = -hi; /* the reference leaves lo = 0 without negatives */
        }
        if (lo == 0.0f && hi == 0.0f) {
            lo = -1.0f;
            hi = 1.0f;
        }
    }
    grid_from_range(kind, asym, bits, lo, hi, scale, zero);
    if (!o || !o->mse) return;

    int32_t qmax = (1 << bits) - 1;
    double best = INFINITY;
    for (int i = 0; i < MSE_STEPS; i++) {
        float p = (float)(1.0 - (double)i / MSE_GRID);
        float s1;
        int32_t z1;
        grid_from_range(kind, asym, bits, p * lo, p * hi, &s1, &z1);
        double err = grid_err(w, n, s1, z1, qmax);
        if (err < best) {
            best = err;
            *scale = s1;
            *zero = z1;
        }
    }
}

/* Quantizes one row: fits every group, writes codes/scales/zeros and optionally the
 * decoded row. */
static void rtn_row(sq_qweight *q, float *w_hat_row, const float *wr, int64_t r, const sq_rtn_opts *o) {
    int64_t cols = q->cols, g = sq_qscheme_group_len(&q->scheme, cols);
    int32_t bits = q->scheme.bits, qmax = (1 << bits) - 1;
    for (int64_t c0 = 0, gi = 0; c0 < cols; c0 += g, gi++) {
        int64_t len = c0 + g < cols ? g : cols - c0;
        float s;
        int32_t z;
        sq_qgroup_fit(wr + c0, len, bits, q->scheme.asym, o, &s, &z);
        q->scales[r * q->n_groups + gi] = s;
        if (q->zeros) q->zeros[r * q->n_groups + gi] = (uint8_t)z;
        for (int64_t c = c0; c < c0 + len; c++) {
            uint8_t code = sq_qcode(wr[c], s, z, qmax);
            q->codes[r * cols + c] = code;
            if (w_hat_row) w_hat_row[c] = sq_qdecode(code, s, z);
        }
    }
}

sq_status sq_rtn_quantize(sq_qweight *out, float *w_hat, const float *w, int64_t rows, int64_t cols,
                          const sq_qscheme *s, const sq_rtn_opts *o) {
    memset(out, 0, sizeof *out);
    if (!w) return sq_errorf(SQ_ERR_ARG, "%s: missing weights", __func__);
    sq_status st = sq_qweight_init(out, rows, cols, s);
    if (st) return st;
    st = quant_check_finite(__func__, "w", w, rows, cols);
    if (st) {
        sq_qweight_free(out);
        return st;
    }
    int nt = quant_threads(0);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) rtn_row(out, w_hat ? w_hat + r * cols : NULL, w + r * cols, r, o);
    return SQ_OK;
}

sq_status sq_rtn_fakequant(float *dst, const float *w, int64_t rows, int64_t cols, const float *col_scale,
                           const sq_qscheme *s, const sq_rtn_opts *o) {
    if (!dst || !w) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    if (rows < 1 || cols < 1 || rows > INT64_MAX / cols)
        return sq_errorf(SQ_ERR_ARG, "%s: bad shape %lld x %lld", __func__, (long long)rows, (long long)cols);
    sq_status st = sq_qscheme_validate(s, cols);
    if (st) return st;
    if ((st = quant_check_finite(__func__, "w", w, rows, cols))) return st;
    if (col_scale) {
        for (int64_t c = 0; c < cols; c++)
            if (!(col_scale[c] > 0.0f) || !isfinite(col_scale[c]))
                return sq_errorf(SQ_ERR_ARG, "%s: column scale %lld is %g (must be finite and > 0)", __func__,
                                 (long long)c, (double)col_scale[c]);
    }
    int nt = quant_threads(0);
    float *tmp = malloc((size_t)nt * (size_t)cols * sizeof(float));
    if (!tmp) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", __func__);
    int64_t g = sq_qscheme_group_len(s, cols);
    int32_t qmax = (1 << s->bits) - 1;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
        float *t = tmp + (size_t)quant_thread_id() * (size_t)cols;
        const float *wr = w + r * cols;
        float *dr = dst + r * cols;
        for (int64_t c = 0; c < cols; c++) t[c] = col_scale ? wr[c] * col_scale[c] : wr[c];
        for (int64_t c0 = 0; c0 < cols; c0 += g) {
            int64_t len = c0 + g < cols ? g : cols - c0;
            float sc;
            int32_t z;
            sq_qgroup_fit(t + c0, len, s->bits, s->asym, o, &sc, &z);
            for (int64_t c = c0; c < c0 + len; c++) {
                float v = sq_qdecode(sq_qcode(t[c], sc, z, qmax), sc, z);
                dr[c] = col_scale ? v / col_scale[c] : v;
            }
        }
    }
    free(tmp);
    return SQ_OK;
}
