/* eval.h - perplexity protocols and KL divergence against stored base log-probabilities
 * (docs/eval.md). Library entry points of squish-eval, also used by the recipe driver. */
#ifndef SQ_EVAL_H
#define SQ_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../runtime/model.h"

typedef enum { SQ_PROTOCOL_GPTQ = 0, SQ_PROTOCOL_LLAMACPP = 1 } sq_protocol;

typedef struct {
    sq_protocol protocol;
    int32_t ctx;
    int64_t max_windows;   /* 0 = all */
    bool progress;         /* progress line with ETA on stderr */
} sq_eval_opts;

/* Per-position KLD statistics (filled when a base is given). */
typedef struct {
    double mean, err, median, p90, p99, p999, max;
    double same_top1;      /* fraction */
    double ppl_base, ln_ppl_ratio, rms_dp;
} sq_kld_stats;

typedef struct {
    int64_t n_windows, n_scored, n_tokens_text;
    double nll_sum, nll2_sum;
    double ppl, ppl_err;
    double seconds, tokens_per_s; /* tokens run through the model per second */
    bool has_kld;
    sq_kld_stats kld;
} sq_eval_result;

/* ===== Base log-prob file (docs/eval.md) ===== */

typedef struct sq_kld_base sq_kld_base;

/* Opens and fully validates a base file (checksum included). */
sq_status sq_kld_base_open(sq_kld_base **out, const char *path);
void sq_kld_base_close(sq_kld_base *b);
const char *sq_kld_base_path(const sq_kld_base *b); /* as opened, for messages */
sq_protocol sq_kld_base_protocol(const sq_kld_base *b);
int32_t sq_kld_base_ctx(const sq_kld_base *b);
int32_t sq_kld_base_vocab(const sq_kld_base *b);
int32_t sq_kld_base_windows(const sq_kld_base *b);
const int32_t *sq_kld_base_tokens(const sq_kld_base *b); /* [windows * ctx] */
uint64_t sq_kld_base_tokenizer_hash(const sq_kld_base *b);

/* Runs the protocol over tokens[0..n_tokens) (the whole tokenized text). When base_in is
 * given, computes KLD against it (its windows must be these tokens); when save_path is
 * given, writes a base file with top_k entries per position (0 = full vocabulary).
 * text_sha256 (32 raw bytes or NULL) and the vocab hash are recorded in the base file. */
sq_status sq_eval_perplexity(const sq_model *m, const int32_t *tokens, int64_t n_tokens, const sq_eval_opts *o,
                             const sq_kld_base *base_in, const char *save_path, int32_t top_k,
                             const uint8_t *text_sha256, sq_eval_result *r);

#endif
