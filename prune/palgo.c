/* palgo.c - the per-layer pruning algorithms of prune.h (docs/pruning.md):
 *   magnitude  one |w| threshold per matrix (locuslab/wanda prune_magnitude; N:M per row);
 *   wanda      S = |W| * sqrt(sum x_j^2), comparison group = one output row (arXiv:2306.11695,
 *              ALGORITHMS.md 6);
 *   sparsegpt  OBS sweep of IST-DASLab/sparsegpt sparsegpt.py fasterprune (arXiv:2301.00774,
 *              ALGORITHMS.md 5): U = chol(H^-1) from quantize/gptq.c's sq_gptq_hinv_init,
 *              mask chosen at the start of each 128-column block from w^2 / U_jj^2 on the
 *              current (error-updated) weights, N:M masks per M-column group at its first
 *              column, e = (w - q) / U_jj propagated in the block and by one GEMM to the
 *              right; joint quantization of the kept weights on GPTQ's grid;
 *   structured unit scores (sums of per-weight scores, OBS group saliency) and the OBS
 *              compensation of removed columns, W_R -= W_S [H^-1]_SS^-1 [H^-1]_SR.
 * Deliberate differences from the references: exact counts (the references zero every
 * weight <= the threshold at rank k, which prunes k+1 and more on ties); ties go to the
 * lower flat index; rows run in fixed chunks so results do not depend on the thread count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../quantize/linalg.h"
#include "../quantize/quant_internal.h"
#include "prune.h"

#define ROW_CHUNK 32

/* ===== Names and patterns ===== */

const char *sq_prune_method_name(sq_prune_method m) {
    return m == SQ_PRUNE_MAGNITUDE ? "magnitude" : m == SQ_PRUNE_WANDA ? "wanda" : "sparsegpt";
}

sq_status sq_prune_method_from_name(const char *name, sq_prune_method *out) {
    if (!strcmp(name, "magnitude")) *out = SQ_PRUNE_MAGNITUDE;
    else if (!strcmp(name, "wanda")) *out = SQ_PRUNE_WANDA;
    else if (!strcmp(name, "sparsegpt")) *out = SQ_PRUNE_SPARSEGPT;
    else return sq_errorf(SQ_ERR_ARG, "--method: unknown method '%s' (magnitude, wanda or sparsegpt)", name);
    return SQ_OK;
}

sq_status sq_prune_pattern_parse(sq_prune_pattern *out, const char *text, double sparsity) {
    memset(out, 0, sizeof *out);
    const bool given = sparsity >= 0;
    if (given && !(sparsity < 1.0))
        return sq_errorf(SQ_ERR_ARG, "--sparsity %g: must be below 1 (1 would remove every weight)", sparsity);
    if (!text || !strcmp(text, "unstructured") || !strcmp(text, "ffn") || !strcmp(text, "heads")) {
        out->kind = !text || !strcmp(text, "unstructured") ? SQ_PAT_UNSTRUCTURED
                    : !strcmp(text, "ffn")                 ? SQ_PAT_FFN
                                                           : SQ_PAT_HEADS;
        if (!given)
            return sq_errorf(SQ_ERR_ARG, "--pattern %s needs --sparsity F (the fraction to remove, 0 <= F < 1)",
                             text ? text : "unstructured");
        out->sparsity = sparsity;
        return SQ_OK;
    }
    const char *colon = strchr(text, ':');
    char *end1 = NULL, *end2 = NULL;
    long n = colon ? strtol(text, &end1, 10) : 0, m = colon ? strtol(colon + 1, &end2, 10) : 0;
    if (!colon || end1 != colon || end1 == text || !end2 || *end2 || end2 == colon + 1)
        return sq_errorf(SQ_ERR_ARG, "--pattern '%s': expected unstructured, ffn, heads or N:M (like 2:4 or 4:8)", text);
    if (n < 1)
        return sq_errorf(SQ_ERR_ARG, "--pattern %s: N must be at least 1 (N:M keeps N weights of every M; %ld:%ld "
                                     "would zero everything)", text, n, m);
    if (n >= m)
        return sq_errorf(SQ_ERR_ARG, "--pattern %s: N must be smaller than M (N:M keeps N weights of every M, so "
                                     "%ld:%ld prunes nothing)", text, n, m);
    if (m > 64) return sq_errorf(SQ_ERR_ARG, "--pattern %s: M must be at most 64", text);
    out->kind = SQ_PAT_NM;
    out->n = (int32_t)n;
    out->m = (int32_t)m;
    out->sparsity = 1.0 - (double)n / (double)m;
    if (given && fabs(sparsity - out->sparsity) > 1e-9)
        return sq_errorf(SQ_ERR_ARG, "--pattern %s is %g%% sparse; --sparsity %g contradicts it (leave it out)", text,
                         100.0 * out->sparsity, sparsity);
    return SQ_OK;
}

void sq_prune_pattern_str(char *buf, size_t cap, const sq_prune_pattern *p) {
    switch (p->kind) {
    case SQ_PAT_NM: snprintf(buf, cap, "%d:%d", p->n, p->m); break;
    case SQ_PAT_FFN: snprintf(buf, cap, "ffn %g%%", 100.0 * p->sparsity); break;
    case SQ_PAT_HEADS: snprintf(buf, cap, "heads %g%%", 100.0 * p->sparsity); break;
    default: snprintf(buf, cap, "unstructured %g%%", 100.0 * p->sparsity); break;
    }
}

/* ===== Selection with a total order ===== */

typedef struct {
    double s;
    int64_t i;
} skey;

static int cmp_skey(const void *a, const void *b) {
    const skey *x = a, *y = b;
    if (x->s < y->s) return -1;
    if (x->s > y->s) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Marks (mask[key.i] = 1) the k lowest of keys[0..n) (reorders keys). */
static void mark_lowest(skey *keys, int64_t n, int64_t k, uint8_t *mask) {
    if (k <= 0) return;
    qsort(keys, (size_t)n, sizeof *keys, cmp_skey);
    for (int64_t j = 0; j < k && j < n; j++) mask[keys[j].i] = 1;
}

sq_status sq_prune_select_lowest(uint8_t *drop, const double *scores, int64_t n_units, int64_t k) {
    skey *keys = malloc(((size_t)n_units + 1) * sizeof *keys);
    if (!keys) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", __func__);
    for (int64_t u = 0; u < n_units; u++) keys[u] = (skey){scores[u], u};
    memset(drop, 0, (size_t)n_units);
    mark_lowest(keys, n_units, k, drop);
    free(keys);
    return SQ_OK;
}

static sq_status check_pattern(const char *fn, int64_t rows, int64_t cols, const sq_prune_pattern *p) {
    if (!p || rows < 1 || cols < 1) return sq_errorf(SQ_ERR_ARG, "%s: empty layer or no pattern", fn);
    if (p->kind == SQ_PAT_NM && cols % p->m)
        return sq_errorf(SQ_ERR_ARG, "%d:%d needs the row length to be a multiple of %d, but it is %lld", p->n, p->m,
                         p->m, (long long)cols);
    if (p->kind != SQ_PAT_NM && p->kind != SQ_PAT_UNSTRUCTURED)
        return sq_errorf(SQ_ERR_ARG, "%s: structured patterns are applied per unit, not per matrix", fn);
    if (!(p->sparsity >= 0 && p->sparsity < 1)) return sq_errorf(SQ_ERR_ARG, "%s: sparsity %g out of [0, 1)", fn,
                                                                 p->sparsity);
    return SQ_OK;
}

/* Row-wise selection by score: unstructured floor(p * cols) per row, or N:M. Scores come
 * from score(w, extra, c). Parallel over rows (independent). */
static sq_status prune_rows(float *w, int64_t rows, int64_t cols, const double *colw, const sq_prune_pattern *p) {
    const int nt = quant_threads(0);
    skey *keys = malloc((size_t)nt * ((size_t)cols + 1) * sizeof *keys);
    uint8_t *masks = malloc((size_t)nt * ((size_t)cols + 1));
    if (!keys || !masks) {
        free(keys);
        free(masks);
        return sq_errorf(SQ_ERR_OOM, "out of memory for rows of %lld", (long long)cols);
    }
    const int64_t k = (int64_t)floor(p->sparsity * (double)cols);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
        const int t = quant_thread_id();
        skey *kr = keys + (size_t)t * ((size_t)cols + 1);
        uint8_t *mr = masks + (size_t)t * ((size_t)cols + 1);
        float *wr = w + r * cols;
        memset(mr, 0, (size_t)cols);
        for (int64_t c = 0; c < cols; c++) kr[c] = (skey){fabs((double)wr[c]) * (colw ? colw[c] : 1.0), c};
        if (p->kind == SQ_PAT_NM) {
            for (int64_t c0 = 0; c0 < cols; c0 += p->m) mark_lowest(kr + c0, p->m, p->m - p->n, mr);
        } else {
            mark_lowest(kr, cols, k, mr);
        }
        for (int64_t c = 0; c < cols; c++)
            if (mr[c]) wr[c] = 0.0f;
    }
    free(keys);
    free(masks);
    return SQ_OK;
}

sq_status sq_prune_magnitude(float *w, int64_t rows, int64_t cols, const sq_prune_pattern *p) {
    sq_status st = check_pattern(__func__, rows, cols, p);
    if (st) return st;
    if (p->kind == SQ_PAT_NM) return prune_rows(w, rows, cols, NULL, p);
    const int64_t n = rows * cols, k = (int64_t)floor(p->sparsity * (double)n);
    skey *keys = malloc((size_t)n * sizeof *keys);
    uint8_t *mask = calloc((size_t)n, 1);
    if (!keys || !mask) {
        free(keys);
        free(mask);
        return sq_errorf(SQ_ERR_OOM, "out of memory for a %lld x %lld layer", (long long)rows, (long long)cols);
    }
    for (int64_t i = 0; i < n; i++) keys[i] = (skey){fabs((double)w[i]), i};
    mark_lowest(keys, n, k, mask);
    for (int64_t i = 0; i < n; i++)
        if (mask[i]) w[i] = 0.0f;
    free(keys);
    free(mask);
    return SQ_OK;
}

sq_status sq_prune_wanda(float *w, int64_t rows, int64_t cols, const double *sq_sum, const sq_prune_pattern *p) {
    sq_status st = check_pattern(__func__, rows, cols, p);
    if (st) return st;
    if (!sq_sum) return sq_errorf(SQ_ERR_ARG, "wanda needs the input statistics (sum x^2)");
    double *colw = malloc((size_t)cols * sizeof *colw);
    if (!colw) return sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int64_t c = 0; c < cols; c++) {
        if (!(sq_sum[c] >= 0) || !isfinite(sq_sum[c])) {
            free(colw);
            return sq_errorf(SQ_ERR_ARG, "wanda: input statistic %lld is %g (corrupt calibration)", (long long)c,
                             sq_sum[c]);
        }
        colw[c] = sqrt(sq_sum[c]);
    }
    st = prune_rows(w, rows, cols, colw, p);
    free(colw);
    return st;
}

/* ===== SparseGPT ===== */

void sq_sparsegpt_opts_default(sq_sparsegpt_opts *o) {
    memset(o, 0, sizeof *o);
    o->percdamp = 0.01;
    o->block_size = 128;
}

typedef struct {
    const sq_gptq_hinv *h;
    const sq_prune_pattern *p;
    const sq_qscheme *qs;
    const sq_rtn_opts *ro;
    sq_qweight *q;
    float *w;         /* [rows x cols] working copy: becomes the result */
    uint8_t *mask;    /* [rows x block] the current block's mask */
    double *rowloss;
    const sq_kernels *kt;
    int64_t rows, cols, g;
    bool static_groups;
} sgpt_ctx;

/* The in-block sweep of rows [r0, r1) over block [b, i2), then the trailing update. */
static void sgpt_chunk(const sgpt_ctx *x, int64_t r0, int64_t r1, int64_t b, int64_t i2, float *e, skey *keys) {
    const int64_t cols = x->cols, kb = i2 - b;
    const float *u = x->h->u;
    const sq_prune_pattern *p = x->p;
    sq_qweight *q = x->q;
    const int32_t qmax = x->qs ? (1 << x->qs->bits) - 1 : 0;
    for (int64_t r = r0; r < r1; r++) {
        float *pr = x->w + r * cols, *er = e + (r - r0) * kb;
        uint8_t *mr = x->mask + r * kb;
        double loss = 0.0;
        for (int64_t i = b; i < i2; i++) {
            if (p->kind == SQ_PAT_NM && (i - b) % p->m == 0) {
                /* N:M: at the group's first column, on the current weights */
                for (int64_t j = 0; j < p->m; j++) {
                    double d = u[(i + j) * cols + i + j];
                    keys[j] = (skey){(double)pr[i + j] * pr[i + j] / (d * d), i - b + j};
                    mr[i - b + j] = 0;
                }
                mark_lowest(keys, p->m, p->m - p->n, mr);
            }
            const float wv = pr[i];
            float qv = mr[i - b] ? 0.0f : wv;
            if (x->qs) {
                const int64_t gi = i / x->g;
                if (!x->static_groups && i % x->g == 0) {
                    /* the group is fitted on the current weights at its first column (the
                     * block is aligned to groups); the grid contains 0 */
                    float s;
                    int32_t z;
                    sq_qgroup_fit(pr + i, i + x->g < cols ? x->g : cols - i, x->qs->bits, x->qs->asym, x->ro, &s, &z);
                    q->scales[r * q->n_groups + gi] = s;
                    if (q->zeros) q->zeros[r * q->n_groups + gi] = (uint8_t)z;
                }
                const float s = q->scales[r * q->n_groups + gi];
                const int32_t z = sq_qweight_zero(q, r, gi);
                const uint8_t code = sq_qcode(qv, s, z, qmax); /* qv == 0 gives code z exactly */
                q->codes[r * cols + i] = code;
                qv = sq_qdecode(code, s, z);
            }
            const float *ui = u + i * cols;
            const float d = ui[i], diff = wv - qv, err = diff / d;
            loss += (double)diff * (double)diff / ((double)d * (double)d);
            if (i + 1 < i2) x->kt->axpy_f32(pr + i + 1, -err, ui + i + 1, i2 - i - 1);
            pr[i] = qv;
            er[i - b] = err;
        }
        x->rowloss[r] += loss / 2.0;
    }
    if (i2 < cols) sq_linalg_sgemm_sub(x->w + r0 * cols + i2, cols, e, kb, u + b * cols + i2, cols, r1 - r0, cols - i2, kb);
}

sq_status sq_sparsegpt(float *w, sq_qweight *q, sq_sparsegpt_result *res, int64_t rows, const sq_gptq_hinv *h,
                       const sq_prune_pattern *p, const sq_sparsegpt_opts *o) {
    sq_sparsegpt_opts def;
    if (!o) {
        sq_sparsegpt_opts_default(&def);
        o = &def;
    }
    if (res) memset(res, 0, sizeof *res);
    if (!w || !h || !h->u) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    if (h->act_order) return sq_errorf(SQ_ERR_ARG, "%s: the inverse Hessian must be in column order", __func__);
    const int64_t cols = h->cols;
    sq_status st = check_pattern(__func__, rows, cols, p);
    if (st) return st;
    if (o->block_size < 1) return sq_errorf(SQ_ERR_ARG, "%s: block size %d", __func__, (int)o->block_size);
    if ((st = quant_check_finite(__func__, "w", w, rows, cols))) return st;
    int64_t block = o->block_size;
    if (p->kind == SQ_PAT_NM && block % p->m) block = (block / p->m + 1) * p->m;
    sq_qweight qtmp;
    memset(&qtmp, 0, sizeof qtmp);
    if (!q) q = &qtmp;
    memset(q, 0, sizeof *q);
    sq_rtn_opts ro = {.range = SQ_RTN_RANGE_GPTQ, .mse = false};
    sgpt_ctx x = {.h = h, .p = p, .qs = o->quant, .ro = &ro, .q = q, .w = w, .kt = sq_kernels_get(), .rows = rows,
                  .cols = cols};
    if (o->quant) {
        if ((st = sq_qweight_init(q, rows, cols, o->quant))) return st;
        x.g = sq_qscheme_group_len(o->quant, cols);
        x.static_groups = x.g >= cols;
        if (!x.static_groups) {
            if (x.g % (p->kind == SQ_PAT_NM ? p->m : 1))
                return sq_qweight_free(q), sq_errorf(SQ_ERR_ARG, "%s: group %lld is not a multiple of M = %d",
                                                     __func__, (long long)x.g, p->m);
            block = x.g <= block ? block / x.g * x.g : x.g;
        }
    }
    if (block > cols) block = cols;
    /* dead inputs: their columns are zeroed (ALGORITHMS.md 2 step 2) */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (h->dead[c]) w[r * cols + c] = 0.0f;
    if (o->quant && x.static_groups) /* per-row grids fitted on the unmodified W (the reference) */
        for (int64_t r = 0; r < rows; r++) {
            float s;
            int32_t z;
            sq_qgroup_fit(w + r * cols, cols, o->quant->bits, o->quant->asym, &ro, &s, &z);
            q->scales[r * q->n_groups] = s;
            if (q->zeros) q->zeros[r * q->n_groups] = (uint8_t)z;
        }
    const int nt = quant_threads(o->n_threads);
    const int64_t n_chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    const size_t per_thread_e = (size_t)ROW_CHUNK * (size_t)block;
    float *e = malloc((size_t)nt * per_thread_e * sizeof *e + 4);
    skey *keys = malloc(((size_t)nt * 64 + (size_t)rows * (size_t)block + 1) * sizeof *keys);
    x.mask = calloc((size_t)rows * (size_t)block + 1, 1);
    x.rowloss = calloc((size_t)rows + 1, sizeof *x.rowloss);
    if (!e || !keys || !x.mask || !x.rowloss) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory for a %lld x %lld layer", __func__, (long long)rows,
                       (long long)cols);
        goto done;
    }
    int64_t n_masked = 0;
    sq_linalg_serial_begin();
    for (int64_t b = 0; b < cols; b += block) {
        const int64_t i2 = b + block < cols ? b + block : cols, kb = i2 - b;
        memset(x.mask, 0, (size_t)rows * (size_t)kb);
        if (p->kind == SQ_PAT_UNSTRUCTURED) {
            /* the fraction p of the whole block (rows x kb) with the lowest w^2 / U_jj^2 */
            skey *bk = keys + (size_t)nt * 64;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < kb; j++) {
                    double d = h->u[(b + j) * cols + b + j], v = w[r * cols + b + j];
                    bk[r * kb + j] = (skey){v * v / (d * d), r * kb + j};
                }
            mark_lowest(bk, rows * kb, (int64_t)floor(p->sparsity * (double)(rows * kb)), x.mask);
        }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            const int t = quant_thread_id();
            const int64_t r0 = ch * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
            sgpt_chunk(&x, r0, r1, b, i2, e + (size_t)t * per_thread_e, keys + (size_t)t * 64);
        }
        for (int64_t i = 0; i < rows * kb; i++) n_masked += x.mask[i];
    }
    sq_linalg_serial_end();
    if (res) {
        for (int64_t r = 0; r < rows; r++) res->loss += x.rowloss[r];
        res->percdamp = h->percdamp;
        res->n_dead = h->n_dead;
        res->zeros = n_masked;
    }
done:
    free(e);
    free(keys);
    free(x.mask);
    free(x.rowloss);
    if (st || q == &qtmp) sq_qweight_free(q);
    return st;
}

/* ===== Structured ===== */

sq_status sq_prune_unit_scores(double *scores, int64_t n_units, const sq_prune_part *parts, int32_t n_parts,
                               sq_prune_method m) {
    if (m == SQ_PRUNE_SPARSEGPT) return sq_errorf(SQ_ERR_ARG, "%s: sparsegpt scores come from OBS", __func__);
    for (int64_t u = 0; u < n_units; u++) scores[u] = 0.0;
    for (int32_t k = 0; k < n_parts; k++) {
        const sq_prune_part *pt = &parts[k];
        if (m == SQ_PRUNE_WANDA && !pt->sq_sum) return sq_errorf(SQ_ERR_ARG, "wanda needs the input statistics");
        const int64_t extent = pt->by_rows ? pt->rows : pt->cols;
        if (pt->span < 1 || extent != n_units * pt->span)
            return sq_errorf(SQ_ERR_ARG, "%s: %lld units of %lld do not cover %lld %s", __func__, (long long)n_units,
                             (long long)pt->span, (long long)extent, pt->by_rows ? "rows" : "columns");
        for (int64_t r = 0; r < pt->rows; r++)
            for (int64_t c = 0; c < pt->cols; c++) {
                double v = fabs((double)pt->w[r * pt->cols + c]);
                if (m == SQ_PRUNE_WANDA) v *= sqrt(pt->sq_sum[c] > 0 ? pt->sq_sum[c] : 0.0);
                scores[(pt->by_rows ? r : c) / pt->span] += v;
            }
    }
    return SQ_OK;
}

/* rows S of H^-1 = U^T U (U upper, float): c [k x cols], c[a, j] = sum_{t <= min(S_a, j)} U[t, S_a] U[t, j]. */
static void hinv_rows(double *c, const sq_gptq_hinv *h, const int64_t *S, int64_t k) {
    const int64_t n = h->cols;
    const float *u = h->u;
#pragma omp parallel for schedule(static) num_threads(quant_threads(0))
    for (int64_t a = 0; a < k; a++) {
        double *ca = c + a * n;
        const int64_t s = S[a];
        for (int64_t j = 0; j < n; j++) ca[j] = 0.0;
        for (int64_t t = 0; t <= s; t++) {
            const double uts = u[t * n + s];
            if (uts == 0.0) continue;
            for (int64_t j = t; j < n; j++) ca[j] += uts * (double)u[t * n + j];
        }
    }
}

/* Solves R^T R y = b in place (R upper k x k). */
static void chol_solve(const double *R, int64_t k, double *y) {
    for (int64_t i = 0; i < k; i++) { /* R^T z = b */
        double s = y[i];
        for (int64_t t = 0; t < i; t++) s -= R[t * k + i] * y[t];
        y[i] = s / R[i * k + i];
    }
    for (int64_t i = k - 1; i >= 0; i--) { /* R y = z */
        double s = y[i];
        for (int64_t t = i + 1; t < k; t++) s -= R[i * k + t] * y[t];
        y[i] = s / R[i * k + i];
    }
}

sq_status sq_prune_obs_scores(double *scores, int64_t n_units, int64_t span, const float *w, int64_t rows,
                              const sq_gptq_hinv *h) {
    const int64_t n = h->cols;
    if (span < 1 || n_units * span != n)
        return sq_errorf(SQ_ERR_ARG, "%s: %lld units of %lld do not cover %lld columns", __func__, (long long)n_units,
                         (long long)span, (long long)n);
    int64_t *S = malloc((size_t)span * sizeof *S);
    double *c = malloc((size_t)span * (size_t)n * sizeof *c), *R = malloc((size_t)span * (size_t)span * sizeof *R),
           *y = malloc((size_t)span * sizeof *y);
    sq_status st = SQ_OK;
    if (!S || !c || !R || !y) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", __func__);
        goto done;
    }
    sq_linalg_serial_begin();
    for (int64_t u = 0; u < n_units && st == SQ_OK; u++) {
        for (int64_t a = 0; a < span; a++) S[a] = u * span + a;
        hinv_rows(c, h, S, span);
        for (int64_t a = 0; a < span; a++)
            for (int64_t b = 0; b < span; b++) R[a * span + b] = c[a * n + S[b]];
        if ((st = sq_linalg_chol_upper(R, span, NULL))) break;
        double s = 0.0;
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t a = 0; a < span; a++) y[a] = w[r * n + S[a]];
            /* w M^-1 w^T = |R^-T w|^2 */
            for (int64_t i = 0; i < span; i++) {
                double v = y[i];
                for (int64_t t = 0; t < i; t++) v -= R[t * span + i] * y[t];
                y[i] = v / R[i * span + i];
            }
            for (int64_t a = 0; a < span; a++) s += y[a] * y[a];
        }
        scores[u] = s;
    }
    sq_linalg_serial_end();
done:
    free(S);
    free(c);
    free(R);
    free(y);
    return st;
}

sq_status sq_prune_obs_remove_cols(float *w, int64_t rows, const sq_gptq_hinv *h, const uint8_t *drop) {
    const int64_t n = h->cols;
    int64_t k = 0;
    for (int64_t j = 0; j < n; j++) k += drop[j] != 0;
    if (k == 0) return SQ_OK;
    int64_t *S = malloc((size_t)k * sizeof *S);
    double *c = malloc((size_t)k * (size_t)n * sizeof *c), *R = malloc((size_t)k * (size_t)k * sizeof *R);
    const int nt = quant_threads(0);
    double *ys = malloc((size_t)nt * (size_t)k * sizeof *ys);
    sq_status st = SQ_OK;
    if (!S || !c || !R || !ys) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory removing %lld of %lld columns", __func__, (long long)k,
                       (long long)n);
        goto done;
    }
    for (int64_t j = 0, a = 0; j < n; j++)
        if (drop[j]) S[a++] = j;
    sq_linalg_serial_begin();
    hinv_rows(c, h, S, k);
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) R[a * k + b] = c[a * n + S[b]];
    st = sq_linalg_chol_upper(R, k, NULL);
    sq_linalg_serial_end();
    if (st) goto done;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
        double *y = ys + (size_t)quant_thread_id() * (size_t)k;
        float *wr = w + r * n;
        for (int64_t a = 0; a < k; a++) y[a] = wr[S[a]];
        chol_solve(R, k, y); /* y = [H^-1]_SS^-1 w_S */
        for (int64_t j = 0; j < n; j++) {
            if (drop[j]) continue;
            double d = 0.0;
            for (int64_t a = 0; a < k; a++) d += y[a] * c[a * n + j];
            wr[j] = (float)((double)wr[j] - d);
        }
        for (int64_t a = 0; a < k; a++) wr[S[a]] = 0.0f;
    }
done:
    free(S);
    free(c);
    free(R);
    free(ys);
    return st;
}
