/* gptq.c - GPTQ (arXiv:2210.17323; OBC, arXiv:2208.11580) after IST-DASLab/gptq gptq.py
 * fasterquant, as ALGORITHMS.md §2 specifies: H = 2 XtX / N, dead inputs, relative damping
 * with retry, U = chol(H^-1) upper in double (dpotrf -> dpotri -> dpotrf), the lazy-batch
 * sweep in float (in-block updates with the runtime's SIMD axpy, one sgemm per chunk for the
 * trailing update), act-order with static groups kept in original column order.
 * Deliberate differences: dynamic groups are fitted on the *current* weights (blocks are
 * aligned to groups; the reference fits a group starting inside a block on the block's
 * starting values), act-order ties go by column index, the loss sums in double. Rows run in
 * fixed chunks of 64, so results do not depend on the thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "quant_internal.h"

#define ROW_CHUNK 64 /* rows per work item: fixed, so results do not depend on the threads */

void sq_gptq_opts_default(sq_gptq_opts *o) {
    memset(o, 0, sizeof *o);
    o->scheme = (sq_qscheme){.bits = 4, .group = 128, .asym = true};
    o->rtn = (sq_rtn_opts){.range = SQ_RTN_RANGE_GPTQ, .mse = false};
    o->percdamp = 0.01;
    o->damp_retries = 4;
    o->block_size = 128;
}

void sq_gptq_hinv_free(sq_gptq_hinv *h) {
    if (!h) return;
    free(h->u);
    free(h->perm);
    free(h->dead);
    memset(h, 0, sizeof *h);
}

/* ===== Inverse Hessian ===== */

typedef struct {
    double d;
    int64_t i;
} diag_key;

/* Decreasing diagonal, ties by increasing column index (a total order: the result does not
 * depend on the sort algorithm). */
static int cmp_diag_desc(const void *a, const void *b) {
    const diag_key *x = a, *y = b;
    if (x->d > y->d) return -1;
    if (x->d < y->d) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

sq_status sq_gptq_hinv_init(sq_gptq_hinv *h, const double *xtx, int64_t cols, int64_t n_tokens,
                            const sq_gptq_opts *o) {
    memset(h, 0, sizeof *h);
    sq_gptq_opts def;
    if (!o) {
        sq_gptq_opts_default(&def);
        o = &def;
    }
    if (!xtx) return sq_errorf(SQ_ERR_ARG, "%s: missing XtX", __func__);
    if (cols < 1 || cols > INT32_MAX || (uint64_t)cols > SIZE_MAX / sizeof(double) / (uint64_t)cols)
        return sq_errorf(SQ_ERR_ARG, "%s: %lld input columns out of range", __func__, (long long)cols);
    if (n_tokens < 1) return sq_errorf(SQ_ERR_ARG, "%s: no calibration tokens (n_tokens = %lld)", __func__,
                                       (long long)n_tokens);
    if (!(o->percdamp >= 0.0) || !isfinite(o->percdamp))
        return sq_errorf(SQ_ERR_ARG, "%s: damping fraction %g must be finite and >= 0", __func__, o->percdamp);
    if (o->damp_retries < 0 || o->damp_retries > 20)
        return sq_errorf(SQ_ERR_ARG, "%s: %d damping retries out of range [0, 20]", __func__, (int)o->damp_retries);
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = i; j < cols; j++)
            if (!isfinite(xtx[i * cols + j]))
                return sq_errorf(SQ_ERR_ARG, "%s: XtX[%lld, %lld] is not finite (%g): the calibration statistics are "
                                 "corrupt", __func__, (long long)i, (long long)j, xtx[i * cols + j]);

    sq_status st = SQ_OK;
    size_t n = (size_t)cols;
    double *diag = malloc(n * sizeof *diag), *a = NULL;
    diag_key *keys = NULL;
    h->perm = malloc(n * sizeof *h->perm);
    h->dead = calloc(n, 1);
    if (!diag || !h->perm || !h->dead) goto oom;

    /* H = 2 XtX / N; dead inputs get H_jj = 1 (their W columns are zeroed in the sweep). */
    double scale = 2.0 / (double)n_tokens, sum = 0.0;
    for (int64_t j = 0; j < cols; j++) {
        double d = xtx[j * cols + j] * scale;
        if (d < 0.0) {
            st = sq_errorf(SQ_ERR_ARG, "%s: XtX[%lld, %lld] = %g is negative: not a Gram matrix", __func__,
                           (long long)j, (long long)j, xtx[j * cols + j]);
            goto fail;
        }
        if (d == 0.0) {
            d = 1.0;
            h->dead[j] = 1;
            h->n_dead++;
        }
        diag[j] = d;
        sum += d;
    }
    h->mean_diag = sum / (double)cols;

    /* Act-order: process columns by decreasing diag(H) (after the dead-input fix). */
    if (o->act_order) {
        keys = malloc(n * sizeof *keys);
        if (!keys) goto oom;
        for (int64_t j = 0; j < cols; j++) keys[j] = (diag_key){diag[j], j};
        qsort(keys, n, sizeof *keys, cmp_diag_desc);
        for (int64_t j = 0; j < cols; j++) h->perm[j] = keys[j].i;
        free(keys);
        keys = NULL;
    } else {
        for (int64_t j = 0; j < cols; j++) h->perm[j] = j;
    }
    h->act_order = o->act_order;

    a = malloc(n * n * sizeof *a);
    if (!a) goto oom;
    double percdamp = o->percdamp;
    for (int32_t attempt = 0;; attempt++) {
        double lambda = percdamp * h->mean_diag;
        /* Permuted H, upper triangle only (row-major; all LAPACK calls read that one). */
        for (int64_t i = 0; i < cols; i++) {
            int64_t pi = h->perm[i];
            double *ai = a + i * cols;
            for (int64_t j = 0; j < i; j++) ai[j] = 0.0;
            for (int64_t j = i; j < cols; j++) {
                int64_t pj = h->perm[j], lo = pi < pj ? pi : pj, hi = pi < pj ? pj : pi;
                ai[j] = j == i ? diag[pi] + lambda : xtx[lo * cols + hi] * scale;
            }
        }
        int64_t minor = 0;
        st = sq_linalg_inv_chol_upper(a, cols, &minor);
        if (st == SQ_OK) {
            h->percdamp = percdamp;
            h->lambda = lambda;
            h->n_retries = attempt;
            break;
        }
        if (st != SQ_ERR_ARG) goto fail;
        if (attempt >= o->damp_retries) {
            st = sq_errorf(SQ_ERR_ARG, "%s: H + %g * mean(diag H) * I is not positive definite (leading minor %lld) "
                           "after %d damping retries; the calibration statistics are degenerate", __func__, percdamp,
                           (long long)minor, (int)attempt);
            goto fail;
        }
        sq_log(SQ_LOG_DEBUG, "%s: Cholesky failed at leading minor %lld with percdamp %g; retrying with %g", __func__,
               (long long)minor, percdamp, percdamp > 0.0 ? percdamp * 10.0 : 0.01);
        percdamp = percdamp > 0.0 ? percdamp * 10.0 : 0.01;
    }

    h->u = malloc(n * n * sizeof *h->u);
    if (!h->u) goto oom;
    for (size_t i = 0; i < n * n; i++) h->u[i] = (float)a[i];
    h->cols = cols;
    free(a);
    free(diag);
    return SQ_OK;

oom:
    st = sq_errorf(SQ_ERR_OOM, "%s: out of memory for %lld input columns", __func__, (long long)cols);
fail:
    free(keys);
    free(a);
    free(diag);
    sq_gptq_hinv_free(h);
    return st;
}

/* ===== The sweep ===== */

typedef struct {
    const sq_gptq_hinv *h;
    const sq_gptq_opts *o;
    const float *w;   /* [rows x cols] original order */
    float *wp;        /* [rows x cols] working copy, processing order */
    float *w_hat;     /* optional, original order */
    double *rowloss;  /* [rows] */
    sq_qweight *out;
    const sq_kernels *kt; /* the runtime's SIMD axpy for the in-block rank-1 updates */
    int64_t cols, g, block;
    bool static_groups;
} sweep_ctx;

/* GPTQ on rows [r0, r1); e is [(r1 - r0) x block], rowbuf [cols]. */
static void sweep_chunk(const sweep_ctx *x, int64_t r0, int64_t r1, float *e, float *rowbuf) {
    const sq_gptq_hinv *h = x->h;
    sq_qweight *q = x->out;
    const float *u = h->u;
    const int64_t cols = x->cols, g = x->g, ng = q->n_groups;
    const int32_t bits = q->scheme.bits, qmax = (1 << bits) - 1;
    const bool asym = q->scheme.asym;

    for (int64_t r = r0; r < r1; r++) {
        const float *wr = x->w + r * cols;
        float *pr = x->wp + r * cols;
        for (int64_t i = 0; i < cols; i++) {
            int64_t c = h->perm[i];
            pr[i] = h->dead[c] ? 0.0f : wr[c];
        }
        if (!x->static_groups) continue;
        /* Static groups: fitted on the unmodified W (dead inputs zeroed), original order. */
        for (int64_t c = 0; c < cols; c++) rowbuf[c] = h->dead[c] ? 0.0f : wr[c];
        for (int64_t c0 = 0, gi = 0; c0 < cols; c0 += g, gi++) {
            float s;
            int32_t z;
            sq_qgroup_fit(rowbuf + c0, c0 + g < cols ? g : cols - c0, bits, asym, &x->o->rtn, &s, &z);
            q->scales[r * ng + gi] = s;
            if (q->zeros) q->zeros[r * ng + gi] = (uint8_t)z;
        }
    }

    for (int64_t b = 0; b < cols; b += x->block) {
        int64_t i2 = b + x->block < cols ? b + x->block : cols, kb = i2 - b;
        for (int64_t r = r0; r < r1; r++) {
            float *pr = x->wp + r * cols, *er = e + (r - r0) * kb;
            double loss = 0.0;
            for (int64_t i = b; i < i2; i++) {
                int64_t c = h->perm[i], gi = c / g;
                if (!x->static_groups && i % g == 0) {
                    /* Dynamic group: fitted on the current weights, which have received every
                     * update from the columns before it (the block is aligned to groups). */
                    float s;
                    int32_t z;
                    sq_qgroup_fit(pr + i, i + g < cols ? g : cols - i, bits, asym, &x->o->rtn, &s, &z);
                    q->scales[r * ng + gi] = s;
                    if (q->zeros) q->zeros[r * ng + gi] = (uint8_t)z;
                }
                float s = q->scales[r * ng + gi];
                int32_t z = sq_qweight_zero(q, r, gi);
                float wv = pr[i];
                uint8_t code = sq_qcode(wv, s, z, qmax);
                float qv = sq_qdecode(code, s, z);
                q->codes[r * cols + c] = code;
                if (x->w_hat) x->w_hat[r * cols + c] = qv;
                const float *ui = u + i * cols;
                float d = ui[i], diff = wv - qv, err = diff / d;
                loss += (double)diff * (double)diff / ((double)d * (double)d);
                if (i + 1 < i2) x->kt->axpy_f32(pr + i + 1, -err, ui + i + 1, i2 - i - 1);
                er[i - b] = err;
            }
            x->rowloss[r] += loss / 2.0;
        }
        /* Everything right of the block: W[:, i2:] -= E U[b:i2, i2:]. */
        if (i2 < cols)
            sq_linalg_sgemm_sub(x->wp + r0 * cols + i2, cols, e, kb, u + b * cols + i2, cols, r1 - r0, cols - i2, kb);
    }
}

sq_status sq_gptq_quantize(sq_qweight *out, float *w_hat, sq_gptq_result *res, const float *w, int64_t rows,
                           const sq_gptq_hinv *h, const sq_gptq_opts *o) {
    memset(out, 0, sizeof *out);
    if (res) memset(res, 0, sizeof *res);
    if (!w || !h || !h->u || !o) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    if (o->act_order != h->act_order)
        return sq_errorf(SQ_ERR_ARG, "%s: act_order (%d) differs from the inverse Hessian's (%d)", __func__,
                         (int)o->act_order, (int)h->act_order);
    if (o->block_size < 1) return sq_errorf(SQ_ERR_ARG, "%s: block size %d must be >= 1", __func__,
                                            (int)o->block_size);
    int64_t cols = h->cols;
    sq_status st = sq_qweight_init(out, rows, cols, &o->scheme);
    if (st) return st;
    if ((st = quant_check_finite(__func__, "w", w, rows, cols))) goto fail;

    sweep_ctx x = {.h = h, .o = o, .w = w, .w_hat = w_hat, .out = out, .cols = cols, .kt = sq_kernels_get()};
    x.g = sq_qscheme_group_len(&o->scheme, cols);
    x.static_groups = o->act_order || o->static_groups || x.g >= cols;
    x.block = o->block_size;
    if (!x.static_groups) x.block = x.g <= x.block ? x.block / x.g * x.g : x.g;
    if (x.block > cols) x.block = cols;

    int nt = quant_threads(o->n_threads);
    size_t per_thread = (size_t)ROW_CHUNK * (size_t)x.block + (size_t)cols;
    x.wp = malloc((size_t)rows * (size_t)cols * sizeof(float));
    x.rowloss = calloc((size_t)rows, sizeof(double));
    float *work = malloc((size_t)nt * per_thread * sizeof(float));
    if (!x.wp || !x.rowloss || !work) {
        free(x.wp);
        free(x.rowloss);
        free(work);
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory for a %lld x %lld layer", __func__, (long long)rows,
                       (long long)cols);
        goto fail;
    }

    sq_linalg_serial_begin();
    int64_t n_chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK, done = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        float *e = work + (size_t)quant_thread_id() * per_thread;
        int64_t r0 = ch * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
        sweep_chunk(&x, r0, r1, e, e + (size_t)ROW_CHUNK * (size_t)x.block);
        if (o->progress) {
#pragma omp critical(sq_gptq_progress)
            {
                done += r1 - r0;
                o->progress(o->progress_user, done, rows);
            }
        }
    }
    sq_linalg_serial_end();

    double loss = 0.0;
    for (int64_t r = 0; r < rows; r++) loss += x.rowloss[r];
    free(x.wp);
    free(x.rowloss);
    free(work);
    if (res) {
        res->loss = loss;
        res->percdamp = h->percdamp;
        res->n_dead = h->n_dead;
        res->block_size = x.block;
    }
    sq_log(SQ_LOG_DEBUG, "%s: %lld x %lld, %d-bit g%d%s%s: loss %.6g, percdamp %g, %lld dead", __func__,
           (long long)rows, (long long)cols, (int)o->scheme.bits, (int)o->scheme.group, o->scheme.asym ? " asym" : "",
           o->act_order ? " act-order" : "", loss, h->percdamp, (long long)h->n_dead);
    return SQ_OK;

fail:
    sq_qweight_free(out);
    return st;
}

/* ===== Output rescaling ===== */

/* u H v^T with H symmetric given by its upper triangle (row <= col). */
static double quad_form(const double *H, int64_t n, const double *u, const double *v) {
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double ri = H[i * n + i] * v[i];
        for (int64_t j = i + 1; j < n; j++) ri += H[i * n + j] * v[j];
        double ci = 0.0;
        for (int64_t j = i + 1; j < n; j++) ci += H[i * n + j] * u[j];
        acc += u[i] * ri + ci * v[i];
    }
    return acc;
}

sq_status sq_qweight_rescale_rows(sq_qweight *q, float *w_hat, const float *w, const double *xtx,
                                  int64_t *n_changed) {
    if (!q || !q->codes || !w || !xtx) return sq_errorf(SQ_ERR_ARG, "%s: missing argument", __func__);
    const int64_t rows = q->rows, cols = q->cols, ng = q->n_groups;
    const int64_t gl = sq_qscheme_group_len(&q->scheme, cols);
    int64_t changed = 0;
    sq_status st = SQ_OK;
#pragma omp parallel for schedule(static, 1) reduction(+ : changed)
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        double *buf = malloc((size_t)(3 * cols) * sizeof *buf);
        float *nsc = malloc((size_t)ng * sizeof *nsc);
        if (!buf || !nsc) {
            free(buf);
            free(nsc);
#pragma omp critical(sq_rescale_err)
            st = SQ_ERR_OOM;
            continue;
        }
        double *wr = buf, *qr = buf + cols, *nr = buf + 2 * cols;
        const int64_t r1 = r0 + 16 < rows ? r0 + 16 : rows;
        for (int64_t r = r0; r < r1; r++) {
            float *sc = q->scales + r * ng;
            for (int64_t c = 0; c < cols; c++) {
                const int64_t g = c / gl;
                wr[c] = (double)w[r * cols + c];
                qr[c] = (double)sq_qdecode(q->codes[r * cols + c], sc[g], sq_qweight_zero(q, r, g));
            }
            const double wq = quad_form(xtx, cols, wr, qr), qq = quad_form(xtx, cols, qr, qr);
            if (!(qq > 0.0) || !isfinite(wq)) continue;
            const double a = wq / qq;
            /* error of the rounded candidate against the current one: e(x) = wHw - 2 wHx + xHx */
            if (!(a > 0.0) || !isfinite(a)) continue;
            for (int64_t g = 0; g < ng; g++) nsc[g] = quant_scale_round((float)(a * (double)sc[g]));
            for (int64_t c = 0; c < cols; c++) {
                const int64_t g = c / gl;
                nr[c] = (double)sq_qdecode(q->codes[r * cols + c], nsc[g], sq_qweight_zero(q, r, g));
            }
            const double e_old = qq - 2.0 * wq, e_new = quad_form(xtx, cols, nr, nr) - 2.0 * quad_form(xtx, cols, wr, nr);
            if (!(e_new < e_old)) continue;
            memcpy(sc, nsc, (size_t)ng * sizeof *sc);
            changed++;
        }
        free(buf);
        free(nsc);
    }
    if (st) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", __func__);
    if (w_hat) sq_qweight_dequant(q, w_hat);
    if (n_changed) *n_changed = changed;
    return SQ_OK;
}
