/* calib_seq.c - the sequential block-input capture of squish-quantize and squish-prune
 * (calib_seq.h; GPTQ arXiv:2210.17323 and SparseGPT arXiv:2301.00774 run the calibration
 * windows block by block through the model being changed). Formerly a private copy in each
 * of quantize/qmodel.c and prune/pmodel.c. */
#include "calib_seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../runtime/kernels.h"
#include "util.h"

const sq_role SQ_SEQ_ROLES[4][3] = {{SQ_ROLE_Q, SQ_ROLE_K, SQ_ROLE_V}, {SQ_ROLE_O}, {SQ_ROLE_GATE, SQ_ROLE_UP}, {SQ_ROLE_DOWN}};
const int SQ_SEQ_N_ROLES[4] = {3, 1, 2, 1};
const sq_capture_point SQ_SEQ_POINT[4] = {SQ_CAPTURE_ATTN_IN, SQ_CAPTURE_ATTN_O_IN, SQ_CAPTURE_FFN_IN,
                                          SQ_CAPTURE_FFN_DOWN_IN};

/* Where a worker's capture hook copies the activations of the window it runs. */
struct sq_seq_cap {
    int32_t layer;
    float *dst[4]; /* [L, width] per capture point, or NULL */
    int64_t off[4];
    int32_t width[4];
};

static void win_hook(void *user, int32_t layer, sq_capture_point pt, const float *x, int32_t n, int32_t width) {
    sq_seq_cap *w = user;
    if (layer != w->layer || (unsigned)pt > 3u || !w->dst[pt] || width != w->width[pt] || n <= 0) return;
    memcpy(w->dst[pt] + (size_t)w->off[pt] * (size_t)width, x, (size_t)n * (size_t)width * sizeof(float));
    w->off[pt] += n;
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

sq_status sq_seq_run(sq_seq *s, int32_t layer, const sq_seq_job *jobs, int64_t n) {
    const size_t wn = (size_t)s->L * (size_t)s->dim;
    int failed = 0;
    sq_status code = SQ_OK;
    char msg[512] = "";
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->n_wk) if (s->n_wk > 1 && n > 1)
    for (int64_t i = 0; i < n; i++) {
        int f;
#pragma omp atomic read
        f = failed;
        if (f) continue;
        const int t = thread_id();
        sq_seq_cap *wc = &s->wc[t];
        wc->layer = layer;
        for (int p = 0; p < 4; p++) {
            wc->dst[p] = jobs[i].cap[p];
            wc->off[p] = 0;
        }
        if (jobs[i].out != jobs[i].in) memcpy(jobs[i].out, jobs[i].in, wn * sizeof(float));
        sq_status st = sq_forward_block(s->ws[t], layer, jobs[i].out, s->L);
        if (st) {
#pragma omp critical(sq_seq_run)
            {
                if (!failed) {
                    snprintf(msg, sizeof msg, "%s", sq_last_error()); /* the message is per thread */
                    code = st;
#pragma omp atomic write
                    failed = 1;
                }
            }
        }
    }
    return failed ? sq_errorf(code, "%s", msg) : SQ_OK;
}

sq_status sq_seq_init(sq_seq *s, sq_model *m, const sq_calib *c, const sq_calib_data *d, int64_t n_scratch) {
    memset(s, 0, sizeof *s);
    s->N = c->n_samples;
    s->L = c->seq_len;
    s->dim = m->cfg.dim;
    s->width[0] = s->width[2] = m->cfg.dim;
    s->width[1] = m->cfg.n_heads * m->cfg.head_dim;
    s->width[3] = m->cfg.hidden_dim;
    s->n_scratch = n_scratch;
    const size_t per = (size_t)s->N * (size_t)s->L * (size_t)s->dim, wn = (size_t)s->L * (size_t)s->dim;
    s->X = malloc(per * sizeof(float));
    s->Y = malloc(per * sizeof(float));
    s->scratch = malloc((size_t)n_scratch * wn * sizeof(float));
    s->jobs = calloc((size_t)n_scratch, sizeof *s->jobs);
    bool ok = s->X && s->Y && s->scratch && s->jobs;
    for (int g = 0; g < 4 && ok; g++)
        ok = (s->capbuf[g] = malloc((size_t)SQ_SEQ_CHUNK * (size_t)s->L * (size_t)s->width[g] * sizeof(float))) != NULL;
    if (!ok)
        return sq_errorf(SQ_ERR_OOM, "out of memory caching %lld windows x %d tokens of activations (%.1f MiB)",
                         (long long)s->N, s->L, 2.0 * (double)per * 4 / 1048576.0);
    s->n_wk = sq_num_threads();
    s->ws = calloc((size_t)s->n_wk, sizeof *s->ws);
    s->wc = calloc((size_t)s->n_wk, sizeof *s->wc);
    if (!s->ws || !s->wc) return sq_errorf(SQ_ERR_OOM, "out of memory");
    sq_status st;
    for (int t = 0; t < s->n_wk; t++) {
        if ((st = sq_state_init(&s->ws[t], m, s->L, s->L))) return st;
        for (int g = 0; g < 4; g++) s->wc[t].width[g] = s->width[g];
        sq_state_set_capture(s->ws[t], win_hook, &s->wc[t]);
    }
    for (int64_t i = 0; i < s->N; i++) {
        const int32_t *tok = sq_calib_window_tokens(d, c->windows[i], s->L);
        if (!tok) return sq_errorf(SQ_ERR_FORMAT, "calibration window %lld lies outside the data", (long long)i);
        if ((st = sq_forward_embed(s->ws[0], tok, s->L, s->X + i * (int64_t)wn))) return st;
    }
    return SQ_OK;
}

float *sq_seq_win(const sq_seq *s, float *base, int64_t i) { return base + (size_t)i * (size_t)s->L * (size_t)s->dim; }

void sq_seq_free(sq_seq *s) {
    for (int t = 0; s->ws && t < s->n_wk; t++) sq_state_free(s->ws[t]);
    free(s->ws);
    free(s->wc);
    free(s->X);
    free(s->Y);
    free(s->scratch);
    free(s->jobs);
    for (int g = 0; g < 4; g++) free(s->capbuf[g]);
    memset(s, 0, sizeof *s);
}

double sq_seq_sq_diff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* ===== The calibration data, reloaded ===== */

sq_status sq_calib_data_reload(const sq_calib *c, const char *calib_path, const char *override_path,
                               const sq_tokenizer *tok, bool add_bos, sq_calib_data *out) {
    memset(out, 0, sizeof *out);
    const char *rec = c->data_path ? c->data_path : "";
    char *beside = NULL;
    const char *path = override_path;
    if (!path) {
        if (sq_file_exists(rec) && !sq_is_dir(rec)) {
            path = rec;
        } else if (rec[0] && rec[0] != '/' && calib_path) {
            char *dir = sq_path_dirname(calib_path);
            beside = dir ? sq_path_join(dir, rec) : NULL;
            free(dir);
            if (!beside) return sq_errorf(SQ_ERR_OOM, "out of memory");
            if (sq_file_exists(beside) && !sq_is_dir(beside)) path = beside;
        }
    }
    if (!path || !sq_file_exists(path) || sq_is_dir(path)) {
        sq_status st = override_path
                           ? sq_errorf(SQ_ERR_IO, "%s: no such file (--calib-data)", override_path)
                           : sq_errorf(SQ_ERR_IO,
                                       "%s: the calibration data '%s' it was made from is not found (sequential mode "
                                       "re-runs its windows); give its location with --calib-data FILE, or use "
                                       "--no-sequential", calib_path ? calib_path : "calib.h5", rec);
        free(beside);
        return st;
    }
    sq_status st = sq_calib_data_load(out, path, c->data_format, c->data_field, tok, add_bos);
    if (st == SQ_OK && strcmp(out->sha256, c->data_sha256) != 0)
        st = sq_errorf(SQ_ERR_ARG, "%s: data sha256 %s, but %s was made from data with sha256 %s (the file changed "
                                   "since calibration)", path, out->sha256, calib_path ? calib_path : "calib.h5",
                       c->data_sha256);
    if (st == SQ_OK && out->n_tokens != c->n_tokens)
        st = sq_errorf(SQ_ERR_ARG, "%s: tokenizes to %lld tokens, %s recorded %lld (another tokenizer?)", path,
                       (long long)out->n_tokens, calib_path ? calib_path : "calib.h5", (long long)c->n_tokens);
    for (int64_t i = 0; st == SQ_OK && i < c->n_samples; i++)
        if (!sq_calib_window_tokens(out, c->windows[i], c->seq_len))
            st = sq_errorf(SQ_ERR_FORMAT, "%s: window %lld (document %lld, offset %lld) lies outside the data", path,
                           (long long)i, (long long)c->windows[i].doc, (long long)c->windows[i].offset);
    free(beside);
    if (st) sq_calib_data_free(out);
    return st;
}
