/* awq.c - AWQ (arXiv:2306.00978) building blocks, following mit-han-lab/llm-awq
 * auto_scale.py (_search_module_scale: 20-point alpha grid, s = max(x^a, 1e-4) normalised
 * by sqrt(max * min), first minimum wins), AutoAWQ _search_best_scale (duo scaling with the
 * per-group w_mean), auto_clip.py (auto_clip_layer: 10 shrink ratios per (row, group)
 * against the group's partial outputs) and scale.py (folding into norms, previous linears
 * and consumer columns), as specified in ALGORITHMS.md §3. The module-level comparison is
 * the caller's loss callback, so the tool decides what "the compared module" is. The clip
 * search accepts any group size (ragged last group) and any number of rows.
 */
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "quant_internal.h"

#define CLIP_CHUNK 64 /* rows per work item: fixed, so results do not depend on the threads */

void sq_awq_opts_default(sq_awq_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_grid = 20;
    o->duo_scaling = false;
    o->duo_group = 128;
}

void sq_awq_clip_opts_default(sq_awq_clip_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_grid = 20;
    o->max_shrink = 0.5;
}

int64_t sq_awq_sample_step(int64_t n_tokens, int64_t n_sample) {
    if (n_sample < 1) return 1;
    int64_t step = n_tokens / n_sample;
    return step > 1 ? step : 1;
}

/* ===== Scale search ===== */

sq_status sq_awq_w_mean(double *w_mean, const sq_awq_linear *lin, int32_t n_lin, int64_t cols, int64_t group) {
    if (!w_mean || !lin || n_lin < 1 || cols < 1)
        return sq_errorf(SQ_ERR_ARG, "%s: need at least one linear and cols >= 1", __func__);
    int64_t g = group <= 0 || group > cols ? cols : group, total = 0;
    for (int32_t k = 0; k < n_lin; k++) {
        if (!lin[k].w || lin[k].rows < 1)
            return sq_errorf(SQ_ERR_ARG, "%s: linear %d has no weights", __func__, (int)k);
        sq_status st = quant_check_finite(__func__, "w", lin[k].w, lin[k].rows, cols);
        if (st) return st;
        total += lin[k].rows;
    }
    for (int64_t j = 0; j < cols; j++) w_mean[j] = 0.0;
    for (int32_t k = 0; k < n_lin; k++) {
        for (int64_t r = 0; r < lin[k].rows; r++) {
            const float *wr = lin[k].w + r * cols;
            for (int64_t c0 = 0; c0 < cols; c0 += g) {
                int64_t c1 = c0 + g < cols ? c0 + g : cols;
                double m = 0.0;
                for (int64_t j = c0; j < c1; j++) m = fmax(m, fabs((double)wr[j]));
                for (int64_t j = c0; j < c1; j++) w_mean[j] += fabs((double)wr[j]) / (m + 1e-6);
            }
        }
    }
    for (int64_t j = 0; j < cols; j++) w_mean[j] /= (double)total;
    return SQ_OK;
}

sq_status sq_awq_scales_for_alpha(float *scales, const float *x_mean, const double *w_mean, int64_t cols,
                                  double alpha) {
    if (!scales || !x_mean || cols < 1) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    double mx = 0.0, mn = INFINITY;
    for (int64_t j = 0; j < cols; j++) {
        double v = pow((double)x_mean[j], alpha);
        if (w_mean) v /= pow(w_mean[j], 1.0 - alpha) + 1e-4;
        v = fmax(v, 1e-4);
        mx = fmax(mx, v);
        mn = fmin(mn, v);
    }
    double norm = sqrt(mx * mn);
    for (int64_t j = 0; j < cols; j++) {
        double v = pow((double)x_mean[j], alpha);
        if (w_mean) v /= pow(w_mean[j], 1.0 - alpha) + 1e-4;
        v = fmax(v, 1e-4) / norm;
        float f = (float)v;
        scales[j] = isfinite(f) && f > 0.0f ? f : 1.0f; /* AutoAWQ: inf/nan scales become 1 */
    }
    return SQ_OK;
}

sq_status sq_awq_search(float *scales, sq_awq_result *res, const float *x_mean, int64_t cols,
                        const sq_awq_linear *lin, int32_t n_lin, const sq_awq_opts *o, sq_awq_loss_fn loss,
                        void *user) {
    sq_awq_opts def;
    if (!o) {
        sq_awq_opts_default(&def);
        o = &def;
    }
    if (res) memset(res, 0, sizeof *res);
    if (!scales || !x_mean || !loss || cols < 1) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    if (o->n_grid < 1 || o->n_grid > 10000)
        return sq_errorf(SQ_ERR_ARG, "%s: grid of %d points out of range", __func__, (int)o->n_grid);
    for (int64_t j = 0; j < cols; j++)
        if (!(x_mean[j] >= 0.0f) || !isfinite(x_mean[j]))
            return sq_errorf(SQ_ERR_ARG, "%s: mean |x| of channel %lld is %g (must be finite and >= 0)", __func__,
                             (long long)j, (double)x_mean[j]);

    sq_status st = SQ_OK;
    double *w_mean = NULL;
    float *cand = malloc((size_t)cols * sizeof *cand);
    if (!cand) goto oom;
    if (o->duo_scaling) {
        w_mean = malloc((size_t)cols * sizeof *w_mean);
        if (!w_mean) goto oom;
        if ((st = sq_awq_w_mean(w_mean, lin, n_lin, cols, o->duo_group))) goto fail;
    }

    double best = INFINITY, loss0 = 0.0;
    int32_t best_k = -1;
    for (int32_t k = 0; k < o->n_grid; k++) {
        double alpha = (double)k / (double)o->n_grid, l = 0.0;
        if ((st = sq_awq_scales_for_alpha(cand, x_mean, w_mean, cols, alpha))) goto fail;
        if ((st = loss(user, cand, &l))) {
            sq_error_prefix("AWQ loss callback");
            goto fail;
        }
        if (!isfinite(l) || l < 0.0) {
            st = sq_errorf(SQ_ERR_ARG, "%s: loss callback returned %g at alpha %g", __func__, l, alpha);
            goto fail;
        }
        sq_log(SQ_LOG_DEBUG, "%s: alpha %.2f loss %.9g", __func__, alpha, l);
        if (k == 0) loss0 = l;
        if (l < best) {
            best = l;
            best_k = k;
            memcpy(scales, cand, (size_t)cols * sizeof *scales);
        }
    }
    if (res) {
        res->best_index = best_k;
        res->alpha = (double)best_k / (double)o->n_grid;
        res->loss = best;
        res->loss_alpha0 = loss0;
    }
    free(cand);
    free(w_mean);
    return SQ_OK;

oom:
    st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", __func__);
fail:
    free(cand);
    free(w_mean);
    return st;
}

/* ===== Clip search ===== */

typedef struct {
    float *w;
    const double *xd; /* [n_tok x cols] */
    int64_t rows, cols, n_tok, g, ng;
    int32_t bits, steps, n_grid;
    bool asym;
    const sq_rtn_opts *ro;
    float *max_val;
} clip_ctx;

/* Rows [r0, r1): d [CLIP_CHUNK x g], c [CLIP_CHUNK x n_tok], tmp [g], then 3 x CLIP_CHUNK
 * of per-row state. */
static void clip_chunk(const clip_ctx *x, int64_t r0, int64_t r1, double *d, double *c, float *tmp,
                       double *best_err, float *best_m, float *org_max) {
    const int64_t cols = x->cols, m = r1 - r0;
    const int32_t qmax = (1 << x->bits) - 1;
    for (int64_t c0 = 0, gi = 0; c0 < cols; c0 += x->g, gi++) {
        int64_t len = c0 + x->g < cols ? x->g : cols - c0;
        for (int64_t r = r0; r < r1; r++) {
            const float *wr = x->w + r * cols + c0;
            float mx = 0.0f;
            for (int64_t j = 0; j < len; j++) mx = fmaxf(mx, fabsf(wr[j]));
            org_max[r - r0] = mx;
            best_m[r - r0] = mx;
            best_err[r - r0] = INFINITY;
        }
        for (int32_t i = 0; i < x->steps; i++) {
            float ratio = (float)(1.0 - (double)i / (double)x->n_grid);
            for (int64_t r = r0; r < r1; r++) {
                const float *wr = x->w + r * cols + c0;
                float mv = org_max[r - r0] * ratio;
                for (int64_t j = 0; j < len; j++) tmp[j] = fminf(fmaxf(wr[j], -mv), mv);
                float s;
                int32_t z;
                sq_qgroup_fit(tmp, len, x->bits, x->asym, x->ro, &s, &z);
                double *dr = d + (r - r0) * len;
                for (int64_t j = 0; j < len; j++)
                    dr[j] = (double)sq_qdecode(sq_qcode(tmp[j], s, z, qmax), s, z) - (double)wr[j];
            }
            /* Partial-output errors of all rows at once: C = D X_g^T. */
            sq_linalg_dgemm_nt(c, x->n_tok, d, len, x->xd + c0, cols, m, x->n_tok, len);
            for (int64_t r = 0; r < m; r++) {
                const double *cr = c + r * x->n_tok;
                double err = 0.0;
                for (int64_t t = 0; t < x->n_tok; t++) err += cr[t] * cr[t];
                err /= (double)x->n_tok;
                if (err < best_err[r]) {
                    best_err[r] = err;
                    best_m[r] = org_max[r] * ratio;
                }
            }
        }
        for (int64_t r = r0; r < r1; r++) {
            float *wr = x->w + r * cols + c0, mv = best_m[r - r0];
            for (int64_t j = 0; j < len; j++) wr[j] = fminf(fmaxf(wr[j], -mv), mv);
            if (x->max_val) x->max_val[r * x->ng + gi] = mv;
        }
    }
}

sq_status sq_awq_clip(float *w, int64_t rows, int64_t cols, const float *x, int64_t n_tok, const sq_qscheme *s,
                      const sq_rtn_opts *ro, const sq_awq_clip_opts *o, float *max_val) {
    sq_awq_clip_opts def;
    if (!o) {
        sq_awq_clip_opts_default(&def);
        o = &def;
    }
    sq_rtn_opts rdef = {.range = SQ_RTN_RANGE_AWQ, .mse = false};
    if (!ro) ro = &rdef;
    if (!w || !x) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    if (rows < 1 || cols < 1 || n_tok < 1 || rows > INT64_MAX / cols || n_tok > INT64_MAX / cols)
        return sq_errorf(SQ_ERR_ARG, "%s: bad shape: %lld x %lld weights, %lld sample rows", __func__,
                         (long long)rows, (long long)cols, (long long)n_tok);
    sq_status st = sq_qscheme_validate(s, cols);
    if (st) return st;
    if (o->n_grid < 1 || !(o->max_shrink >= 0.0 && o->max_shrink < 1.0))
        return sq_errorf(SQ_ERR_ARG, "%s: grid %d / max shrink %g out of range", __func__, (int)o->n_grid,
                         o->max_shrink);
    if ((st = quant_check_finite(__func__, "w", w, rows, cols))) return st;
    if ((st = quant_check_finite(__func__, "x", x, n_tok, cols))) return st;

    clip_ctx c = {.w = w, .rows = rows, .cols = cols, .n_tok = n_tok, .bits = s->bits, .asym = s->asym, .ro = ro,
                  .max_val = max_val, .n_grid = o->n_grid};
    c.g = sq_qscheme_group_len(s, cols);
    c.ng = sq_qscheme_n_groups(s, cols);
    c.steps = (int32_t)floor(o->max_shrink * o->n_grid + 1e-9);
    if (c.steps < 1) c.steps = 1;

    int nt = quant_threads(o->n_threads);
    size_t per_thread = (size_t)CLIP_CHUNK * (size_t)c.g + (size_t)CLIP_CHUNK * (size_t)n_tok + 2 * CLIP_CHUNK;
    size_t per_thread_f = (size_t)c.g + 2 * CLIP_CHUNK;
    double *xd = malloc((size_t)n_tok * (size_t)cols * sizeof *xd);
    double *work = malloc((size_t)nt * per_thread * sizeof *work);
    float *work_f = malloc((size_t)nt * per_thread_f * sizeof *work_f);
    if (!xd || !work || !work_f) {
        free(xd);
        free(work);
        free(work_f);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory (%lld sample rows x %lld)", __func__, (long long)n_tok,
                         (long long)cols);
    }
    for (int64_t i = 0; i < n_tok * cols; i++) xd[i] = (double)x[i];
    c.xd = xd;

    sq_linalg_serial_begin();
    int64_t n_chunks = (rows + CLIP_CHUNK - 1) / CLIP_CHUNK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        int tid = quant_thread_id();
        double *d = work + (size_t)tid * per_thread, *cc = d + (size_t)CLIP_CHUNK * (size_t)c.g;
        double *best_err = cc + (size_t)CLIP_CHUNK * (size_t)n_tok;
        float *tmp = work_f + (size_t)tid * per_thread_f, *best_m = tmp + c.g, *org_max = best_m + CLIP_CHUNK;
        int64_t r0 = ch * CLIP_CHUNK, r1 = r0 + CLIP_CHUNK < rows ? r0 + CLIP_CHUNK : rows;
        clip_chunk(&c, r0, r1, d, cc, tmp, best_err, best_m, org_max);
    }
    sq_linalg_serial_end();
    free(xd);
    free(work);
    free(work_f);
    return SQ_OK;
}

/* ===== Folding ===== */

static sq_status check_scales(const char *fn, const float *s, int64_t n) {
    if (!s) return sq_errorf(SQ_ERR_ARG, "%s: missing scales", fn);
    for (int64_t j = 0; j < n; j++)
        if (!(s[j] > 0.0f) || !isfinite(s[j]))
            return sq_errorf(SQ_ERR_ARG, "%s: scale %lld is %g (must be finite and > 0)", fn, (long long)j,
                             (double)s[j]);
    return SQ_OK;
}

sq_status sq_awq_fold_vec(float *v, int64_t n, const float *s) {
    if (!v || n < 1) return sq_errorf(SQ_ERR_ARG, "%s: missing vector", __func__);
    sq_status st = check_scales(__func__, s, n);
    if (st) return st;
    for (int64_t j = 0; j < n; j++) v[j] /= s[j];
    return SQ_OK;
}

sq_status sq_awq_fold_rows(float *w, int64_t rows, int64_t cols, const float *s) {
    if (!w || rows < 1 || cols < 1) return sq_errorf(SQ_ERR_ARG, "%s: missing weights", __func__);
    sq_status st = check_scales(__func__, s, rows);
    if (st) return st;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) w[r * cols + c] /= s[r];
    return SQ_OK;
}

sq_status sq_awq_scale_cols(float *w, int64_t rows, int64_t cols, const float *s) {
    if (!w || rows < 1 || cols < 1) return sq_errorf(SQ_ERR_ARG, "%s: missing weights", __func__);
    sq_status st = check_scales(__func__, s, cols);
    if (st) return st;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) w[r * cols + c] *= s[c];
    return SQ_OK;
}
