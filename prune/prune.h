/* prune.h - weight pruning for squish-prune (docs/pruning.md): magnitude (arXiv:1506.02626,
 * as locuslab/wanda prune_magnitude), Wanda (arXiv:2306.11695, |W| * ||X_j||_2 per output
 * row) and SparseGPT (arXiv:2301.00774, OBS reconstruction with lazy 128-column blocks,
 * adaptive masks, optional joint quantization), for unstructured, N:M and structured
 * (whole FFN channels, whole KV-head groups) patterns, on one layer at a time and over a
 * whole checkpoint (sequential: each block's inputs come from the already-pruned blocks;
 * ALGORITHMS.md 0, 5, 6, 7).
 *
 * N:M means N weights KEPT of every M consecutive input columns of a row (ALGORITHMS.md 7,
 * "recommended: N kept of M"); 2:4 and 4:8 are 50% sparse under both readings.
 *
 * Library code: never prints; failures return an sq_status with a one-line message.
 * Deterministic: the same inputs give the same bits at any thread count.
 */
#ifndef SQ_PRUNE_H
#define SQ_PRUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/calib.h"
#include "../core/checkpoint.h"
#include "../quantize/qmodel.h"
#include "../quantize/quant.h"

/* ===== Methods and patterns ===== */

typedef enum { SQ_PRUNE_MAGNITUDE = 0, SQ_PRUNE_WANDA = 1, SQ_PRUNE_SPARSEGPT = 2 } sq_prune_method;
const char *sq_prune_method_name(sq_prune_method m); /* "magnitude" | "wanda" | "sparsegpt" */
sq_status sq_prune_method_from_name(const char *name, sq_prune_method *out);

typedef enum {
    SQ_PAT_UNSTRUCTURED = 0, /* any fraction of each comparison group */
    SQ_PAT_NM = 1,           /* N kept of every M consecutive columns of a row */
    SQ_PAT_FFN = 2,          /* whole FFN channels: gate/up rows + down columns */
    SQ_PAT_HEADS = 3         /* whole KV groups: the kv head, its query heads, their o columns */
} sq_prune_kind;

typedef struct {
    sq_prune_kind kind;
    int32_t n, m;      /* N:M only: 1 <= n < m <= 64 */
    double sparsity;   /* fraction pruned: of weights, of channels (ffn) or of KV groups (heads) */
} sq_prune_pattern;

/* Parses --pattern (unstructured | N:M | ffn | heads) with --sparsity. `sparsity` < 0 means
 * "not given" (required for unstructured/ffn/heads; for N:M it is implied as 1 - N/M and
 * may only be given equal to that). Rejects 3:2, 0:4, 4:4, M > 64, sparsity outside [0, 1). */
sq_status sq_prune_pattern_parse(sq_prune_pattern *out, const char *text, double sparsity);
/* "unstructured 50%", "2:4", "ffn 25%" (buf of >= 32 bytes). */
void sq_prune_pattern_str(char *buf, size_t cap, const sq_prune_pattern *p);

/* ===== One layer: w [rows x cols] row-major, pruned in place =====
 * Unstructured counts are exact: magnitude zeroes floor(p * rows * cols) weights of the
 * matrix, Wanda floor(p * cols) of every row, SparseGPT floor(p * rows * B) of every block
 * of B columns; ties go to the lower flat index. N:M: every row keeps exactly N of every M
 * columns (cols % M must be 0). */

sq_status sq_prune_magnitude(float *w, int64_t rows, int64_t cols, const sq_prune_pattern *p);
/* sq_sum [cols]: sum over the calibration tokens of x_j^2 (calib.h5's sq_sum). */
sq_status sq_prune_wanda(float *w, int64_t rows, int64_t cols, const double *sq_sum, const sq_prune_pattern *p);

typedef struct {
    double percdamp;         /* damping fraction of mean(diag H); default 0.01 */
    int32_t block_size;      /* lazy block and unstructured mask block B; default 128 */
    const sq_qscheme *quant; /* NULL: prune only; else quantize the kept weights in the same sweep */
    int32_t n_threads;       /* 0: sq_num_threads() */
} sq_sparsegpt_opts;

void sq_sparsegpt_opts_default(sq_sparsegpt_opts *o);

typedef struct {
    double loss;      /* sum (w - q)^2 / U_jj^2 / 2, the reference's error */
    double percdamp;  /* damping used (after retries) */
    int64_t n_dead;   /* inputs with H_jj = 0 (their columns are zeroed) */
    int64_t zeros;    /* weights set to 0 by the mask (not counting dead columns) */
} sq_sparsegpt_result;

/* SparseGPT on w [rows x h->cols] with the factored inverse Hessian h (sq_gptq_hinv_init,
 * act_order false). w receives the reconstructed (and, with o->quant, dequantized)
 * weights; with o->quant, *q receives the codes (pruned weights have the code of 0, which
 * decodes to exactly 0.0). q and res may be NULL. */
sq_status sq_sparsegpt(float *w, sq_qweight *q, sq_sparsegpt_result *res, int64_t rows, const sq_gptq_hinv *h,
                       const sq_prune_pattern *p, const sq_sparsegpt_opts *o);

/* ===== Structured scores and OBS compensation =====
 * A structured unit u owns whole rows of some matrices ("row parts") and whole columns of
 * others ("column parts"). Its score is the sum of the per-weight scores of its weights:
 * magnitude |w|; wanda |w| * sqrt(sq_sum of the weight's input column); sparsegpt the OBS
 * saliency of removing the unit's columns of the column-part matrix jointly,
 * tr(W_S [H^-1]_SS^-1 W_S^T). Units with the lowest scores go (ties: lower index). */

typedef struct {
    const float *w;        /* [rows x cols] */
    int64_t rows, cols;
    const double *sq_sum;  /* [cols] wanda: input statistics; else NULL */
    bool by_rows;          /* true: unit u owns rows [u*span, (u+1)*span); false: those columns */
    int64_t span;
} sq_prune_part;

/* scores [n_units] for magnitude or wanda (sums over every part). */
sq_status sq_prune_unit_scores(double *scores, int64_t n_units, const sq_prune_part *parts, int32_t n_parts,
                               sq_prune_method m);
/* scores [n_units] for sparsegpt: OBS saliency of removing columns [u*span, (u+1)*span) of
 * w [rows x h->cols] (unit by unit). */
sq_status sq_prune_obs_scores(double *scores, int64_t n_units, int64_t span, const float *w, int64_t rows,
                              const sq_gptq_hinv *h);
/* OBS removal of the columns in `drop` [cols] (1 = removed) of w [rows x h->cols]: the kept
 * columns get W_R -= W_S [H^-1]_SS^-1 [H^-1]_SR (the optimal compensation), W_S = 0. */
sq_status sq_prune_obs_remove_cols(float *w, int64_t rows, const sq_gptq_hinv *h, const uint8_t *drop);
/* The k lowest-scoring units (ties: lower index) get drop[u] = 1, the others 0. */
sq_status sq_prune_select_lowest(uint8_t *drop, const double *scores, int64_t n_units, int64_t k);

/* ===== Whole checkpoint ===== */

typedef struct {
    const char *name;
    const char *short_name; /* "q_proj", ... */
    int32_t layer, n_layers;
    int64_t numel, zeros;   /* after pruning (structured: removed weights of the original) */
    double loss;            /* sparsegpt: OBS loss; else relative weight change sum (w-w')^2 / sum w^2 */
    double damp_used;       /* sparsegpt */
    double seconds;
} sq_prune_report;

/* A block after pruning: mse of its output vs the unpruned block's (core/cli.h) */
typedef sq_block_report sq_prune_layer_report;

typedef struct {
    sq_prune_method method;
    sq_prune_pattern pattern;
    bool sequential;        /* default true (wanda, sparsegpt) */
    double damp;            /* sparsegpt: 0.01 */
    int32_t block_size;     /* sparsegpt: 128 */
    bool quant;             /* sparsegpt: joint quantization with `scheme` */
    sq_qscheme scheme;
    int32_t embed_bits;     /* > 0: RTN-quantize the embedding after pruning (group, asym of `scheme`) */
    int32_t head_bits;      /* > 0: the same for lm_head (a tied head is the embedding) */
    void (*on_tensor)(void *user, const sq_prune_report *r);
    void (*on_layer)(void *user, const sq_prune_layer_report *r);
    void *user;
} sq_prune_opts;

void sq_prune_opts_default(sq_prune_opts *o);

/* Bytes of activations the sequential mode caches (2 x N x L x dim floats + scratch). */
uint64_t sq_prune_cache_bytes(const sq_config *cfg, int64_t n_samples, int32_t seq_len);

/* Checks the plan against the checkpoint and the pattern without doing any work: only
 * block linears, M divides every row for N:M, structured units complete in every layer and
 * at least one (but not every) unit removed. sq_prune_checkpoint runs it too. */
sq_status sq_prune_check(const sq_checkpoint *c, const sq_qplan *plan, const sq_prune_opts *o);

/* Prunes the tensors the plan marks (plan->e[k].quantize: targeted, not ignored; block
 * linears only) in place. Unstructured/N:M: pruned weights become exactly 0.0 and the
 * tensor keeps its type (with o->quant: packed q8g/q4g/q3g, c->quant records). ffn/heads:
 * each layer loses the same number of units, chosen per layer; matrices and biases are
 * physically shrunk and c->cfg (hidden_dim / n_heads, n_kv_heads) updated; every layer's
 * units must be targeted. `calib` is needed for wanda and sparsegpt, `data` for their
 * sequential mode. Every pruned tensor gets an sq_sparse_info in c->sparse (core/checkpoint.h;
 * sparsity = the zero fraction of the stored tensor, n:m for N:M, 0:0 otherwise); *recs
 * (caller frees) receives a copy of those records in plan order. */
sq_status sq_prune_checkpoint(sq_checkpoint *c, const sq_qplan *plan, const sq_prune_opts *o, const sq_calib *calib,
                              const sq_calib_data *data, sq_sparse_info **recs, int32_t *n_recs);

#endif
