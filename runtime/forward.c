/* forward.c - the one transformer forward pass of squish (Llama family), batched over
 * tokens at consecutive positions; single-token decode is the batch of one.
 *
 * Follows HF transformers' LlamaForCausalLM (and llama2.c's run.c for the interleaved
 * RoPE pairing): pre-norm RMSNorm, RoPE, causal grouped-query attention with a KV cache,
 * SwiGLU MLP, final RMSNorm, linear head. Matmuls go through sq_matmul (threaded over
 * output rows); attention is threaded over (token, head) pairs. Every output element is
 * computed by one thread in a fixed order, so results do not depend on the thread count.
 * Norm sums and softmax denominators accumulate in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "model.h"

/* Queries per attention work unit. */
#define QBLOCK 16

struct sq_state {
    const sq_model *m;
    const sq_kernels *k;
    int32_t ctx, max_batch, pos;
    int32_t q_dim, kv_dim;
    float *k_cache;           /* [n_layers][n_kv_heads][ctx][head_dim]: rows are positions */
    float *v_cache;           /* [n_layers][n_kv_heads][head_dim][ctx]: transposed */
    float *kbuf, *vbuf;       /* [B, kv_dim] new keys/values before they enter the cache */
    float *x;                 /* [B, dim] residual stream */
    float *xn;                /* [B, dim] normalized */
    float *q;                 /* [B, q_dim] */
    float *att;               /* [B, q_dim] attention output */
    float *tmp;               /* [B, dim] o / down projection output */
    float *h1, *h3;           /* [B, hidden] */
    float *rope_cos, *rope_sin; /* [B, head_dim / 2] */
    double *inv_freq;         /* [head_dim / 2] */
    float *scratch;           /* per thread: Q block, scores, output block (attention) */
    size_t scratch_per_thread;
    int32_t n_threads;
    sq_capture_fn capture;
    void *capture_user;
};

/* ===== RoPE frequencies ===== */

/* Base frequencies theta^(-2i/d), with linear or llama3 scaling (FORMATS.md 2). */
static void rope_init(const sq_config *c, double *inv_freq) {
    const int32_t half = c->head_dim / 2;
    for (int32_t i = 0; i < half; i++) {
        double f = pow((double)c->rope_theta, -2.0 * i / (double)c->head_dim);
        if (c->rope_scaling == SQ_ROPE_SCALING_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_scaling == SQ_ROPE_SCALING_LLAMA3) {
            const double orig = c->rope_orig_ctx, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
            const double wavelen = 2.0 * M_PI / f;
            if (wavelen > orig / lo) {
                f /= c->rope_factor;
            } else if (wavelen >= orig / hi) {
                double smooth = (orig / wavelen - lo) / (hi - lo);
                f = f * ((1.0 - smooth) / c->rope_factor + smooth);
            }
        }
        inv_freq[i] = f;
    }
}

/* Rotates one head vector in place. HALF pairs (i, i + d/2) (HF rotate_half); INTERLEAVED
 * pairs (2i, 2i + 1) (Meta / llama2.c). */
static void rope_apply(float *v, int32_t hd, sq_rope_layout layout, const float *cs, const float *sn) {
    const int32_t half = hd / 2;
    if (layout == SQ_ROPE_HALF) {
        for (int32_t i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = b * cs[i] + a * sn[i];
        }
    } else {
        for (int32_t i = 0; i < half; i++) {
            float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * cs[i] - b * sn[i];
            v[2 * i + 1] = b * cs[i] + a * sn[i];
        }
    }
}

/* ===== State ===== */

sq_status sq_state_init(sq_state **out, const sq_model *m, int32_t ctx, int32_t max_batch) {
    *out = NULL;
    const sq_config *c = &m->cfg;
    if (ctx <= 0 || max_batch <= 0)
        return sq_errorf(SQ_ERR_ARG, "context (%d) and batch (%d) must be positive", ctx, max_batch);
    if (max_batch > ctx) max_batch = ctx;
    sq_state *s = calloc(1, sizeof *s);
    if (!s) return sq_errorf(SQ_ERR_OOM, "out of memory allocating the inference state");
    s->m = m;
    s->k = sq_kernels_get();
    s->ctx = ctx;
    s->max_batch = max_batch;
    s->q_dim = c->n_heads * c->head_dim;
    s->kv_dim = c->n_kv_heads * c->head_dim;
    const size_t B = (size_t)max_batch, half = (size_t)c->head_dim / 2;
    const size_t cache = (size_t)c->n_layers * (size_t)ctx * (size_t)s->kv_dim;
    s->n_threads = sq_num_threads();
    s->scratch_per_thread = (size_t)QBLOCK * (2 * (size_t)c->head_dim + (size_t)ctx);
    s->k_cache = malloc(cache * sizeof(float));
    s->v_cache = malloc(cache * sizeof(float));
    s->x = malloc(B * (size_t)c->dim * sizeof(float));
    s->xn = malloc(B * (size_t)c->dim * sizeof(float));
    s->tmp = malloc(B * (size_t)c->dim * sizeof(float));
    s->q = malloc(B * (size_t)s->q_dim * sizeof(float));
    s->att = malloc(B * (size_t)s->q_dim * sizeof(float));
    s->h1 = malloc(B * (size_t)c->hidden_dim * sizeof(float));
    s->h3 = malloc(B * (size_t)c->hidden_dim * sizeof(float));
    s->rope_cos = malloc(B * half * sizeof(float));
    s->rope_sin = malloc(B * half * sizeof(float));
    s->inv_freq = malloc(half * sizeof(double));
    s->kbuf = malloc(B * (size_t)s->kv_dim * sizeof(float));
    s->vbuf = malloc(B * (size_t)s->kv_dim * sizeof(float));
    s->scratch = malloc((size_t)s->n_threads * s->scratch_per_thread * sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->x || !s->xn || !s->tmp || !s->q || !s->att || !s->h1 || !s->h3 ||
        !s->rope_cos || !s->rope_sin || !s->inv_freq || !s->kbuf || !s->vbuf || !s->scratch) {
        sq_state_free(s);
        return sq_errorf(SQ_ERR_OOM, "out of memory allocating a %d-token KV cache (%.1f MiB)", ctx,
                         2.0 * (double)cache * 4 / 1048576.0);
    }
    rope_init(c, s->inv_freq);
    *out = s;
    return SQ_OK;
}

void sq_state_free(sq_state *s) {
    if (!s) return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->x);
    free(s->xn);
    free(s->tmp);
    free(s->q);
    free(s->att);
    free(s->h1);
    free(s->h3);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->inv_freq);
    free(s->kbuf);
    free(s->vbuf);
    free(s->scratch);
    free(s);
}

void sq_state_reset(sq_state *s) { s->pos = 0; }
int32_t sq_state_pos(const sq_state *s) { return s->pos; }
void sq_state_set_capture(sq_state *s, sq_capture_fn fn, void *user) {
    s->capture = fn;
    s->capture_user = user;
}

/* ===== Building blocks ===== */

/* Token-parallel loops (each row by one thread, in the same order whatever the count) are
 * worth a team only for batches of enough work (n rows of width w): decode and tiny models
 * keep them on the calling thread. */
#define ROWS_PAR(n, w) ((int64_t)(n) >= 16 && (int64_t)(n) * (int64_t)(w) >= 32768)

/* out[t] = x[t] / rms(x[t]) * w, for n rows of width d. */
static void rmsnorm(float *out, const float *x, const float *w, int32_t n, int32_t d, float eps, int nt) {
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (ROWS_PAR(n, d)) num_threads(nt)
#endif
    for (int32_t t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * d;
        float *o = out + (size_t)t * d;
        double ss = 0.0;
        for (int32_t i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / d + (double)eps));
        for (int32_t i = 0; i < d; i++) o[i] = w[i] * (xr[i] * scale);
    }
}

static void add_bias(float *y, const float *b, int32_t n, int32_t d) {
    if (!b) return;
    for (int32_t t = 0; t < n; t++)
        for (int32_t i = 0; i < d; i++) y[(size_t)t * d + i] += b[i];
}

static void capture(sq_state *s, int32_t layer, sq_capture_point pt, const float *x, int32_t n, int32_t w) {
    if (s->capture) s->capture(s->capture_user, layer, pt, x, n, w);
}

/* Causal attention for n tokens at positions pos0.. of layer l, as two small matrix
 * products per (query block, head) on the head-major cache, so the matmul kernels do the
 * work: S = Q K^T over the keys the block can see, a masked softmax per row, then
 * O = S V with V stored transposed. Units are independent and each is computed by one
 * thread, so the result does not depend on the thread count. */
static void attention(sq_state *s, int32_t l, int32_t n, int32_t pos0) {
    const sq_config *c = &s->m->cfg;
    const int32_t hd = c->head_dim, n_heads = c->n_heads, rep = c->n_heads / c->n_kv_heads, ctx = s->ctx;
    const int32_t q_dim = s->q_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    const sq_matmul_fn mm = s->k->matmul[SQ_TYPE_F32];
    const int32_t n_blocks = (n + QBLOCK - 1) / QBLOCK;
    const int64_t units = (int64_t)n_blocks * n_heads;
    const int64_t work = (int64_t)n * n_heads * (pos0 + n) * hd;
    (void)work;
#pragma omp parallel for schedule(static) if (work > 32768) num_threads(s->n_threads)
    for (int64_t u = 0; u < units; u++) {
        const int32_t b = (int32_t)(u / n_heads), h = (int32_t)(u % n_heads), kvh = h / rep;
        const int32_t t0 = b * QBLOCK, tb = n - t0 < QBLOCK ? n - t0 : QBLOCK;
        const int32_t P = pos0 + t0 + tb; /* keys visible to the last query of the block */
#ifdef _OPENMP
        float *qb = s->scratch + (size_t)omp_get_thread_num() * s->scratch_per_thread;
#else
        float *qb = s->scratch;
#endif
        float *ob = qb + (size_t)QBLOCK * hd, *sc = ob + (size_t)QBLOCK * hd;
        const float *K = s->k_cache + ((size_t)l * c->n_kv_heads + (size_t)kvh) * (size_t)ctx * hd;
        const float *Vt = s->v_cache + ((size_t)l * c->n_kv_heads + (size_t)kvh) * (size_t)hd * ctx;
        for (int32_t i = 0; i < tb; i++)
            memcpy(qb + (size_t)i * hd, s->q + (size_t)(t0 + i) * q_dim + (size_t)h * hd, (size_t)hd * sizeof(float));
        mm(sc, P, qb, K, (size_t)hd * sizeof(float), tb, 0, P, hd); /* sc[i, j] = q_i . k_j */
        for (int32_t i = 0; i < tb; i++) {
            float *row = sc + (size_t)i * P;
            const int32_t last = pos0 + t0 + i; /* causal: keys 0..last */
            float mx = -INFINITY;
            for (int32_t j = 0; j <= last; j++) {
                row[j] *= scale;
                if (row[j] > mx) mx = row[j];
            }
            double sum = 0.0;
            for (int32_t j = 0; j <= last; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            const float inv = (float)(1.0 / sum);
            for (int32_t j = 0; j <= last; j++) row[j] *= inv;
            for (int32_t j = last + 1; j < P; j++) row[j] = 0.0f;
        }
        mm(ob, hd, sc, Vt, (size_t)ctx * sizeof(float), tb, 0, hd, P); /* o_i = sum_j p_ij v_j */
        for (int32_t i = 0; i < tb; i++)
            memcpy(s->att + (size_t)(t0 + i) * q_dim + (size_t)h * hd, ob + (size_t)i * hd, (size_t)hd * sizeof(float));
    }
}

/* Appends n new keys/values (rows of kbuf/vbuf) at positions pos0.. of layer l. */
static void cache_store(sq_state *s, int32_t l, int32_t n, int32_t pos0) {
    const sq_config *c = &s->m->cfg;
    const int32_t hd = c->head_dim, ctx = s->ctx, kv_dim = s->kv_dim;
    for (int32_t kvh = 0; kvh < c->n_kv_heads; kvh++) {
        float *K = s->k_cache + ((size_t)l * c->n_kv_heads + (size_t)kvh) * (size_t)ctx * hd;
        float *Vt = s->v_cache + ((size_t)l * c->n_kv_heads + (size_t)kvh) * (size_t)hd * ctx;
        for (int32_t t = 0; t < n; t++) {
            const float *kr = s->kbuf + (size_t)t * kv_dim + (size_t)kvh * hd;
            const float *vr = s->vbuf + (size_t)t * kv_dim + (size_t)kvh * hd;
            memcpy(K + (size_t)(pos0 + t) * hd, kr, (size_t)hd * sizeof(float));
            for (int32_t i = 0; i < hd; i++) Vt[(size_t)i * ctx + (size_t)(pos0 + t)] = vr[i];
        }
    }
}

/* RoPE angles of positions pos0..pos0+n-1. */
static void rope_prepare(sq_state *s, int32_t n, int32_t pos0) {
    const int32_t half = s->m->cfg.head_dim / 2;
    for (int32_t t = 0; t < n; t++) {
        for (int32_t i = 0; i < half; i++) {
            double a = (double)(pos0 + t) * s->inv_freq[i];
            s->rope_cos[(size_t)t * half + i] = (float)cos(a);
            s->rope_sin[(size_t)t * half + i] = (float)sin(a);
        }
    }
}

/* Decoder block l on the residual stream s->x [n, dim] of tokens at pos0.. (in place);
 * rope_prepare must have run for the same n and pos0. */
static void layer_forward(sq_state *s, int32_t l, int32_t n, int32_t pos0) {
    const sq_model *m = s->m;
    const sq_config *c = &m->cfg;
    const sq_kernels *k = s->k;
    const int32_t dim = c->dim, hid = c->hidden_dim, hd = c->head_dim, half = hd / 2;
    const int32_t kv_dim = s->kv_dim, q_dim = s->q_dim;
    const sq_layer *L = &m->layers[l];
    float *kc = s->kbuf, *vc = s->vbuf;

    /* attention block */
    rmsnorm(s->xn, s->x, L->attn_norm, n, dim, c->norm_eps, s->n_threads);
    capture(s, l, SQ_CAPTURE_ATTN_IN, s->xn, n, dim);
    sq_matmul(k, s->q, s->xn, &L->wq, n);
    sq_matmul(k, kc, s->xn, &L->wk, n);
    sq_matmul(k, vc, s->xn, &L->wv, n);
    add_bias(s->q, L->bq, n, q_dim);
    add_bias(kc, L->bk, n, kv_dim);
    add_bias(vc, L->bv, n, kv_dim);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (ROWS_PAR(n, q_dim + kv_dim)) num_threads(s->n_threads)
#endif
    for (int32_t t = 0; t < n; t++) {
        const float *cs = s->rope_cos + (size_t)t * half, *sn = s->rope_sin + (size_t)t * half;
        for (int32_t h = 0; h < c->n_heads; h++)
            rope_apply(s->q + (size_t)t * q_dim + (size_t)h * hd, hd, c->rope_layout, cs, sn);
        for (int32_t h = 0; h < c->n_kv_heads; h++)
            rope_apply(kc + (size_t)t * kv_dim + (size_t)h * hd, hd, c->rope_layout, cs, sn);
    }
    cache_store(s, l, n, pos0);
    attention(s, l, n, pos0);
    capture(s, l, SQ_CAPTURE_ATTN_O_IN, s->att, n, q_dim);
    sq_matmul(k, s->tmp, s->att, &L->wo, n);
    add_bias(s->tmp, L->bo, n, dim);
    for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->tmp[i];

    /* MLP block */
    rmsnorm(s->xn, s->x, L->ffn_norm, n, dim, c->norm_eps, s->n_threads);
    capture(s, l, SQ_CAPTURE_FFN_IN, s->xn, n, dim);
    sq_matmul(k, s->h1, s->xn, &L->w_gate, n);
    sq_matmul(k, s->h3, s->xn, &L->w_up, n);
    add_bias(s->h1, L->b_gate, n, hid);
    add_bias(s->h3, L->b_up, n, hid);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (ROWS_PAR(n, hid)) num_threads(s->n_threads)
#endif
    for (int32_t t = 0; t < n; t++) {
        float *h1 = s->h1 + (size_t)t * hid;
        const float *h3 = s->h3 + (size_t)t * hid;
        for (int32_t i = 0; i < hid; i++) h1[i] = h1[i] / (1.0f + expf(-h1[i])) * h3[i];
    }
    capture(s, l, SQ_CAPTURE_FFN_DOWN_IN, s->h1, n, hid);
    sq_matmul(k, s->tmp, s->h1, &L->w_down, n);
    add_bias(s->tmp, L->b_down, n, dim);
    for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->tmp[i];
}

/* One batch of n <= max_batch tokens. */
static void forward_batch(sq_state *s, const int32_t *tokens, int32_t n, int32_t first_logit, float *logits) {
    const sq_model *m = s->m;
    const sq_config *c = &m->cfg;
    const int32_t dim = c->dim, pos0 = s->pos;

    for (int32_t t = 0; t < n; t++) sq_mat_row_f32(s->k, s->x + (size_t)t * dim, &m->tok_embd, tokens[t]);
    rope_prepare(s, n, pos0);
    for (int32_t l = 0; l < c->n_layers; l++) layer_forward(s, l, n, pos0);
    if (first_logit < n) {
        const int32_t nl = n - first_logit;
        rmsnorm(s->xn, s->x + (size_t)first_logit * dim, m->out_norm, nl, dim, c->norm_eps, s->n_threads);
        sq_matmul(s->k, logits, s->xn, &m->lm_head, nl);
    }
    s->pos += n;
}

static sq_status check_tokens(const sq_config *c, const int32_t *tokens, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return sq_errorf(SQ_ERR_ARG, "token id %d at index %d is outside the vocabulary of %d", tokens[i], i,
                             c->vocab_size);
    return SQ_OK;
}

sq_status sq_forward_embed(sq_state *s, const int32_t *tokens, int32_t n, float *x) {
    const sq_config *c = &s->m->cfg;
    sq_status st = check_tokens(c, tokens, n);
    if (st) return st;
    for (int32_t t = 0; t < n; t++) sq_mat_row_f32(s->k, x + (size_t)t * c->dim, &s->m->tok_embd, tokens[t]);
    return SQ_OK;
}

sq_status sq_forward_head(sq_state *s, const float *x, int32_t n, float *logits) {
    const sq_config *c = &s->m->cfg;
    const size_t dim = (size_t)c->dim;
    for (int32_t done = 0; done < n;) {
        int32_t b = n - done < s->max_batch ? n - done : s->max_batch;
        rmsnorm(s->xn, x + (size_t)done * dim, s->m->out_norm, b, c->dim, c->norm_eps, s->n_threads);
        sq_matmul(s->k, logits + (size_t)done * (size_t)c->vocab_size, s->xn, &s->m->lm_head, b);
        done += b;
    }
    return SQ_OK;
}

sq_status sq_forward_block(sq_state *s, int32_t layer, float *x, int32_t n) {
    const sq_config *c = &s->m->cfg;
    if (layer < 0 || layer >= c->n_layers) return sq_errorf(SQ_ERR_ARG, "layer %d does not exist", layer);
    if (n <= 0 || n > s->ctx)
        return sq_errorf(SQ_ERR_ARG, "%d tokens do not fit the state's context of %d", n, s->ctx);
    const size_t dim = (size_t)c->dim;
    for (int32_t done = 0; done < n;) {
        int32_t b = n - done < s->max_batch ? n - done : s->max_batch;
        memcpy(s->x, x + (size_t)done * dim, (size_t)b * dim * sizeof(float));
        rope_prepare(s, b, done);
        layer_forward(s, layer, b, done);
        memcpy(x + (size_t)done * dim, s->x, (size_t)b * dim * sizeof(float));
        done += b;
    }
    return SQ_OK;
}

sq_status sq_forward(sq_state *s, const int32_t *tokens, int32_t n, int32_t first_logit, float *logits) {
    const sq_config *c = &s->m->cfg;
    if (n < 0 || first_logit < 0 || first_logit > n) return sq_errorf(SQ_ERR_ARG, "sq_forward: bad token range");
    if (n > s->ctx - s->pos)
        return sq_errorf(SQ_ERR_ARG, "context overflow: %d cached + %d new tokens exceed the context of %d", s->pos, n,
                         s->ctx);
    if (first_logit < n && !logits) return sq_errorf(SQ_ERR_ARG, "sq_forward: logits requested without a buffer");
    sq_status st = check_tokens(c, tokens, n);
    if (st) return st;
    for (int32_t done = 0; done < n;) {
        int32_t b = n - done < s->max_batch ? n - done : s->max_batch;
        /* logits wanted for tokens [first_logit, n) of the whole request */
        int32_t fl = first_logit > done ? first_logit - done : 0;
        if (fl > b) fl = b;
        float *lg = NULL;
        if (fl < b) lg = logits + (size_t)(done + fl - first_logit) * (size_t)c->vocab_size;
        forward_batch(s, tokens + done, b, fl, lg);
        done += b;
    }
    return SQ_OK;
}
