/* ppl.c - perplexity over fixed windows with the runtime's forward pass, in the GPTQ
 * protocol (IST-DASLab/gptq datautils/llama_eval: non-overlapping windows, every token
 * scored, no per-window BOS) or llama.cpp's llama-perplexity protocol (BOS replaces each
 * window's first token, only the second half is scored, PPL ± its standard error).
 * See docs/eval.md and FORMATS.md §9. Optionally writes or compares against a base file
 * for KL divergence (kld.c). Per-position work is threaded over positions and reduced in
 * position order, so results do not depend on the thread count.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../runtime/cli.h"
#include "../runtime/sqz.h"
#include "kld_internal.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(const double *sorted, int64_t n, double q) {
    if (n <= 0) return 0.0;
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)pos;
    if (i >= n - 1) return sorted[n - 1];
    double f = pos - (double)i;
    return sorted[i] * (1.0 - f) + sorted[i + 1] * f;
}

static void progress(const sq_eval_opts *o, int64_t w, int64_t n, double nll, int64_t cnt, double t0, int32_t ctx) {
    if (!o->progress) return;
    static int tty = -1;
    if (tty < 0) tty = isatty(2);
    double el = sq_now() - t0, eta = w ? el / (double)w * (double)(n - w) : 0;
    bool last = w == n;
    if (tty) {
        fprintf(stderr, "\r[%lld/%lld] ppl %.4f  %.0f tok/s  ETA %.0f s   %s", (long long)w, (long long)n,
                cnt ? exp(nll / (double)cnt) : 0.0, el > 0 ? (double)w * ctx / el : 0.0, eta, last ? "\n" : "");
    } else if (last || (w % (n / 10 > 0 ? n / 10 : 1)) == 0) {
        fprintf(stderr, "[%lld/%lld] ppl %.4f  %.0f tok/s  ETA %.0f s\n", (long long)w, (long long)n,
                cnt ? exp(nll / (double)cnt) : 0.0, el > 0 ? (double)w * ctx / el : 0.0, eta);
    }
}

sq_status sq_eval_perplexity(const sq_model *m, const int32_t *tokens, int64_t n_tokens, const sq_eval_opts *o,
                             const sq_kld_base *base, const char *save_path, int32_t top_k,
                             const uint8_t *text_sha256, sq_eval_result *r) {
    memset(r, 0, sizeof *r);
    const int32_t ctx = o->ctx, vocab = m->cfg.vocab_size;
    if (ctx < 4) return sq_errorf(SQ_ERR_ARG, "--ctx %d is too small (at least 4)", ctx);
    int64_t n_windows = n_tokens / ctx;
    if (o->max_windows > 0 && n_windows > o->max_windows) n_windows = o->max_windows;
    if (n_windows < 1)
        return sq_errorf(SQ_ERR_ARG, "the text has %lld tokens, fewer than one window of %d", (long long)n_tokens,
                         ctx);
    const int32_t first = o->protocol == SQ_PROTOCOL_LLAMACPP ? ctx / 2 : 0;
    const int32_t n_score = ctx - 1 - first;
    const int32_t bos = m->vocab->bos_id;
    const bool replace_bos = o->protocol == SQ_PROTOCOL_LLAMACPP && bos >= 0 && m->vocab->add_bos;
    int32_t k = top_k <= 0 || top_k > vocab ? vocab : top_k;
    uint64_t tok_hash = sq_vocab_hash(m->vocab);

    if (base) {
        const char *bp = sq_kld_base_path(base);
        if (sq_kld_base_protocol(base) != o->protocol || sq_kld_base_ctx(base) != ctx)
            return sq_errorf(SQ_ERR_ARG, "%s: the base file was made with protocol %s, ctx %d; this run uses %s, ctx %d",
                             bp, sq_kld_base_protocol(base) == SQ_PROTOCOL_GPTQ ? "gptq" : "llamacpp",
                             sq_kld_base_ctx(base), o->protocol == SQ_PROTOCOL_GPTQ ? "gptq" : "llamacpp", ctx);
        if (sq_kld_base_vocab(base) != vocab)
            return sq_errorf(SQ_ERR_ARG, "%s: the base file has a vocabulary of %d, this model %d", bp,
                             sq_kld_base_vocab(base), vocab);
        if (sq_kld_base_tokenizer_hash(base) != tok_hash)
            return sq_errorf(SQ_ERR_ARG, "%s: the base file was made with a different tokenizer (hash %016llx, this "
                             "model %016llx)", bp, (unsigned long long)sq_kld_base_tokenizer_hash(base),
                             (unsigned long long)tok_hash);
        if (n_windows > sq_kld_base_windows(base)) n_windows = sq_kld_base_windows(base);
        if (memcmp(tokens, sq_kld_base_tokens(base), (size_t)n_windows * ctx * sizeof(int32_t)) != 0)
            return sq_errorf(SQ_ERR_ARG, "%s: the text's tokens differ from the tokens stored in the base file", bp);
    }

    sq_status st = SQ_OK;
    sq_state *s = NULL;
    sq_kld_writer *w = NULL;
    float *logits = NULL;
    int32_t *win = NULL, *scratch = NULL;
    double *nll = NULL, *kld = NULL, *dp = NULL, *nll_b = NULL;
    int *top1 = NULL;
    uint8_t *recs = NULL;
    const int64_t n_pos = n_windows * n_score;
    const int nth = sq_num_threads();

    if ((st = sq_state_init(&s, m, ctx, ctx))) goto done;
    logits = malloc((size_t)(ctx - first) * (size_t)vocab * sizeof(float));
    win = malloc((size_t)ctx * sizeof(int32_t));
    nll = malloc((size_t)n_score * sizeof(double));
    if (!logits || !win || !nll) goto oom;
    if (save_path) {
        recs = malloc((size_t)n_score * sq_kld_record_bytes(k));
        scratch = malloc((size_t)nth * (size_t)k * sizeof(int32_t));
        if (!recs || !scratch) goto oom;
        if ((st = sq_kld_writer_open(&w, save_path, o->protocol, ctx, vocab, k, (int32_t)n_windows, (uint64_t)n_pos,
                                     tok_hash, text_sha256, tokens)))
            goto done;
    }
    if (base) {
        kld = malloc((size_t)n_pos * sizeof(double));
        dp = malloc((size_t)n_pos * sizeof(double));
        nll_b = malloc((size_t)n_pos * sizeof(double));
        top1 = malloc((size_t)n_pos * sizeof(int));
        if (!kld || !dp || !nll_b || !top1) goto oom;
    }

    double t0 = sq_now();
    for (int64_t wi = 0; wi < n_windows; wi++) {
        memcpy(win, tokens + wi * ctx, (size_t)ctx * sizeof(int32_t));
        if (replace_bos) win[0] = bos;
        sq_state_reset(s);
        if ((st = sq_forward(s, win, ctx, first, logits))) goto done;
        const int32_t bk = base ? sq_kld_base_k(base) : 0;
#pragma omp parallel for schedule(static) num_threads(nth)
        for (int32_t j = 0; j < n_score; j++) {
            const float *lg = logits + (size_t)j * vocab;
            const int32_t target = win[first + j + 1];
            if (base) {
                sq_kld_point pt;
                int64_t gi = wi * n_score + j;
                sq_kld_compare(sq_kld_base_record(base, (uint64_t)gi), bk, lg, vocab, target, &pt);
                nll[j] = pt.nll;
                kld[gi] = pt.kld;
                dp[gi] = pt.dp;
                nll_b[gi] = pt.nll_base;
                top1[gi] = pt.same_top1;
            } else {
                nll[j] = sq_logsumexp(lg, vocab, NULL) - lg[target];
            }
            if (recs) {
#ifdef _OPENMP
                int tid = omp_get_thread_num();
#else
                int tid = 0;
#endif
                sq_kld_record_make(lg, vocab, k, target, recs + (size_t)j * sq_kld_record_bytes(k),
                                   scratch + (size_t)tid * k);
            }
        }
        for (int32_t j = 0; j < n_score; j++) {
            r->nll_sum += nll[j];
            r->nll2_sum += nll[j] * nll[j];
        }
        r->n_scored += n_score;
        if (w && (st = sq_kld_writer_records(w, recs, (uint64_t)n_score))) goto done;
        progress(o, wi + 1, n_windows, r->nll_sum, r->n_scored, t0, ctx);
    }
    r->seconds = sq_now() - t0;
    r->n_windows = n_windows;
    r->n_tokens_text = n_tokens;
    r->tokens_per_s = r->seconds > 0 ? (double)(n_windows * ctx) / r->seconds : 0;
    double mean = r->nll_sum / (double)r->n_scored, mean2 = r->nll2_sum / (double)r->n_scored;
    r->ppl = exp(mean);
    r->ppl_err = r->n_scored > 1 ? r->ppl * sqrt(fmax(mean2 - mean * mean, 0.0) / (double)(r->n_scored - 1)) : 0;

    if (base) {
        sq_kld_stats *ks = &r->kld;
        double ksum = 0, ksum2 = 0, nb = 0, dp2 = 0, same = 0;
        for (int64_t i = 0; i < n_pos; i++) {
            ksum += kld[i];
            ksum2 += kld[i] * kld[i];
            nb += nll_b[i];
            dp2 += dp[i] * dp[i];
            same += top1[i];
        }
        ks->mean = ksum / (double)n_pos;
        ks->err = n_pos > 1 ? sqrt(fmax(ksum2 / (double)n_pos - ks->mean * ks->mean, 0.0) / (double)(n_pos - 1)) : 0;
        ks->same_top1 = same / (double)n_pos;
        ks->ppl_base = exp(nb / (double)n_pos);
        ks->ln_ppl_ratio = mean - nb / (double)n_pos;
        ks->rms_dp = sqrt(dp2 / (double)n_pos);
        qsort(kld, (size_t)n_pos, sizeof(double), cmp_double);
        ks->median = quantile(kld, n_pos, 0.5);
        ks->p90 = quantile(kld, n_pos, 0.90);
        ks->p99 = quantile(kld, n_pos, 0.99);
        ks->p999 = quantile(kld, n_pos, 0.999);
        ks->max = kld[n_pos - 1];
        r->has_kld = true;
    }
    if (w) {
        st = sq_kld_writer_close(w);
        w = NULL;
    }
    goto done;
oom:
    st = sq_errorf(SQ_ERR_OOM, "out of memory for evaluation buffers (vocab %d, ctx %d)", vocab, ctx);
done:
    sq_kld_writer_abort(w);
    sq_state_free(s);
    free(logits);
    free(win);
    free(nll);
    free(kld);
    free(dp);
    free(nll_b);
    free(top1);
    free(recs);
    free(scratch);
    return st;
}
