/* quant.h - the weight-quantization algorithms of squish-quantize, as a library:
 * RTN (round-to-nearest), GPTQ and AWQ on one linear layer at a time, producing
 * *unpacked* group-quantized weights (one code byte per weight). Model-store I/O,
 * calibration and packing into the runnable format live elsewhere.
 *
 * Semantics (docs/quantization.md, ALGORITHMS.md §1): a row of `cols` weights is cut into
 * groups of `g` consecutive columns (the last one may be shorter: "ragged"); each
 * (row, group) has a scale s, exactly representable in fp16, and an integer zero point z
 * (stored as u8 when asymmetric, z = 2^(bits-1) when symmetric). Code q in [0, 2^bits-1]
 * decodes to  w = s * (float)(q - z)  in float arithmetic. Scales are rounded to fp16
 * *before* the codes are computed, so decoding reproduces exactly what the algorithms used.
 *
 * Typical use:
 *     sq_qscheme sch = {.bits = 4, .group = 128, .asym = true};
 *     sq_gptq_opts o; sq_gptq_opts_default(&o); o.scheme = sch; o.act_order = true;
 *     sq_gptq_hinv h;  sq_gptq_hinv_init(&h, xtx, cols, n_tokens, &o);   // once per input
 *     sq_qweight q;    sq_gptq_quantize(&q, NULL, &res, w, rows, &h, &o); // per linear
 *     ... sq_qweight_free(&q); sq_gptq_hinv_free(&h);
 *
 * All functions are reentrant; they use OpenMP over independent rows in fixed-size chunks,
 * so results are bitwise identical at any thread count. They never print; failures return
 * an sq_status with a one-line message (sq_last_error()).
 */
#ifndef SQ_QUANT_H
#define SQ_QUANT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "../runtime/status.h"

/* ===== Schemes and quantized weights ===== */

typedef struct {
    int32_t bits;  /* 8, 6, 5, 4, 3 (and 2) */
    int32_t group; /* weights per group along the input dimension; 0 = one group per row */
    bool asym;     /* per-group u8 zero point; false: z = 2^(bits-1) */
} sq_qscheme;

/* Checks bits and group size for rows of `cols` weights (cols <= 0: bits/sign only).
 * Allowed groups: 0, the standard sizes 32/64/128/256 (a standard size larger than the row
 * becomes one group), or any positive size <= cols (a size that does not divide cols
 * leaves a shorter last group). SQ_ERR_ARG with a message otherwise. */
sq_status sq_qscheme_validate(const sq_qscheme *s, int64_t cols);
/* The effective group length for rows of `cols` (cols when group is 0 or larger). */
int64_t sq_qscheme_group_len(const sq_qscheme *s, int64_t cols);
/* ceil(cols / group_len). */
int64_t sq_qscheme_n_groups(const sq_qscheme *s, int64_t cols);

typedef struct {
    int64_t rows, cols;
    int32_t n_groups;  /* per row */
    sq_qscheme scheme;
    uint8_t *codes;    /* [rows * cols], one code per weight, in [0, 2^bits - 1] */
    float *scales;     /* [rows * n_groups], each exactly representable in fp16; > 0 when
                          asymmetric, != 0 when symmetric (signed-max grids can be negative) */
    uint8_t *zeros;    /* [rows * n_groups] when scheme.asym, else NULL (z = 2^(bits-1)) */
} sq_qweight;

/* Allocates a zero-filled quantized weight for the scheme (validated). The caller owns it
 * and releases it with sq_qweight_free(). */
sq_status sq_qweight_init(sq_qweight *q, int64_t rows, int64_t cols, const sq_qscheme *s);
/* Frees the arrays and zeroes the struct; NULL-safe. */
void sq_qweight_free(sq_qweight *q);
/* w[r, c] = s * (q - z) for every weight; w is [rows * cols]. */
sq_status sq_qweight_dequant(const sq_qweight *q, float *w);
/* Checks a quantized weight read from elsewhere: shape/groups consistent with the scheme,
 * codes and zeros in range, scales finite, fp16-representable and positive (symmetric
 * schemes: non-zero). */
sq_status sq_qweight_check(const sq_qweight *q, const char *what);

/* Zero point of group g of row r (2^(bits-1) for symmetric schemes). */
static inline int32_t sq_qweight_zero(const sq_qweight *q, int64_t r, int64_t g) {
    return q->zeros ? (int32_t)q->zeros[r * q->n_groups + g] : (int32_t)1 << (q->scheme.bits - 1);
}

/* ===== RTN: one uniform grid per group (ALGORITHMS.md §1) ===== */

typedef enum {
    SQ_RTN_RANGE_GPTQ = 0, /* IST-DASLab/gptq quant.py: range forced to contain 0, [-1, 1] if all 0 */
    SQ_RTN_RANGE_AWQ = 1   /* llm-awq pseudo_quantize_tensor: true min/max, range floor 1e-5 */
} sq_rtn_range;

/* The symmetric grid (schemes without zero points; asymmetric schemes ignore it):
 *   gptq:       s = 2 max|w| / (2^b - 1), the extreme at +-(2^b - 1)/2 steps, so one of the
 *               2^b levels (code 0, -z steps) is never used (the GPTQ reference quantizer);
 *   signed-max: s = m / -z with m the group's element of largest |w| taken with its sign,
 *               so m lands on code 0 (q - z = -z) and all 2^b levels are in use; s is negative
 *               when m is positive (ggml's Q4_0/Q5_0/Q8_0 rule, generalised to every width). */
typedef enum {
    SQ_QGRID_GPTQ = 0,
    SQ_QGRID_SIGNED_MAX = 1
} sq_qgrid;
const char *sq_qgrid_name(sq_qgrid g); /* "gptq" | "signed-max" */
/* Parses a grid name; SQ_ERR_ARG with a message naming `what` and the valid names. */
sq_status sq_qgrid_parse(const char *name, const char *what, sq_qgrid *out);

typedef struct {
    sq_rtn_range range;
    bool mse; /* GPTQ quantizer mse=True: 80 shrink steps of 1%, keep the min of sum |w-q|^2.4 */
    sq_qgrid grid; /* symmetric schemes only (default 0 = gptq) */
} sq_rtn_opts;

/* Fits (scale, zero) for one group of n weights (all finite). The scale is rounded to
 * fp16 (its magnitude kept within [2^-24, 65504]) before the zero point is computed. `o`
 * may be NULL (GPTQ range and grid, no MSE search). Only the signed-max grid gives
 * negative scales. */
void sq_qgroup_fit(const float *w, int64_t n, int32_t bits, bool asym, const sq_rtn_opts *o,
                   float *scale, int32_t *zero);

/* The code of w on the grid (s, z): clamp(rint(w / s) + z, 0, 2^bits - 1). */
static inline uint8_t sq_qcode(float w, float s, int32_t z, int32_t qmax) {
    float q = rintf(w / s) + (float)z;
    if (!(q >= 0.0f)) q = 0.0f; /* also catches NaN, which callers exclude beforehand */
    if (q > (float)qmax) q = (float)qmax;
    return (uint8_t)q;
}
/* The decoded value s * (q - z). */
static inline float sq_qdecode(uint8_t q, float s, int32_t z) { return s * (float)((int32_t)q - z); }

/* Quantizes every (row, group) of w [rows x cols] independently. `w_hat` (optional,
 * [rows x cols]) receives the decoded weights. */
sq_status sq_rtn_quantize(sq_qweight *out, float *w_hat, const float *w, int64_t rows, int64_t cols,
                          const sq_qscheme *s, const sq_rtn_opts *o);

/* Fake quantization with per-column pre-scaling (AWQ): dst = Q(w * diag(col_scale)) /
 * diag(col_scale), with Q the RTN of the scheme per (row, group). col_scale may be NULL
 * (plain Q(w)). dst may equal w. */
sq_status sq_rtn_fakequant(float *dst, const float *w, int64_t rows, int64_t cols, const float *col_scale,
                           const sq_qscheme *s, const sq_rtn_opts *o);

/* ===== GPTQ (ALGORITHMS.md §2, arXiv:2210.17323) ===== */

/* Progress: called after each finished chunk of rows with (rows done, rows total). Calls
 * come from worker threads but never concurrently. */
typedef void (*sq_progress_fn)(void *user, int64_t done, int64_t total);

typedef struct {
    sq_qscheme scheme;
    sq_rtn_opts rtn;        /* grid fitting rule (default: GPTQ range, no MSE) */
    double percdamp;        /* damping as a fraction of mean(diag H); default 0.01 */
    int32_t damp_retries;   /* when Cholesky fails: percdamp *= 10 (0 -> 0.01), this many times; default 4 */
    int32_t block_size;     /* lazy-batch block B; default 128 */
    bool act_order;         /* process columns by decreasing diag(H); implies static groups */
    bool static_groups;     /* fit every group on the unmodified W before the sweep */
    int32_t n_threads;      /* 0 = sq_num_threads() */
    sq_progress_fn progress; /* optional */
    void *progress_user;
} sq_gptq_opts;

void sq_gptq_opts_default(sq_gptq_opts *o); /* 4-bit g128 asym, defaults above */

/* The factored inverse Hessian of one linear input, shareable by every linear that reads
 * that input (q/k/v, gate/up). */
typedef struct {
    int64_t cols;
    float *u;            /* [cols x cols] upper Cholesky factor of (H + lambda I)^-1 in processing
                            order, row-major, strictly lower part 0 */
    int64_t *perm;       /* [cols] processing position -> original column (identity without act-order) */
    uint8_t *dead;       /* [cols] 1 where diag(XtX) was 0 (original order): those W columns are zeroed */
    int64_t n_dead;
    bool act_order;
    double percdamp;     /* the damping fraction actually used (after retries) */
    double lambda;       /* the value added to diag(H) */
    int32_t n_retries;   /* Cholesky failures before success */
    double mean_diag;    /* mean(diag H) after the dead-input fix */
} sq_gptq_hinv;

/* H = 2 XtX / n_tokens (only the upper triangle, row <= col, of xtx [cols x cols] is read),
 * dead inputs fixed (H_jj = 1), act-order permutation, damping with automatic retry, and
 * U = chol(H^-1) upper via LAPACK dpotrf -> dpotri -> dpotrf in double. The caller owns *h
 * and releases it with sq_gptq_hinv_free(). SQ_ERR_ARG for non-finite or negative-diagonal
 * input and when H stays indefinite after all retries. */
sq_status sq_gptq_hinv_init(sq_gptq_hinv *h, const double *xtx, int64_t cols, int64_t n_tokens,
                            const sq_gptq_opts *o);
void sq_gptq_hinv_free(sq_gptq_hinv *h); /* NULL-safe */

typedef struct {
    double loss;        /* sum over rows and columns of (w - q)^2 / d^2 / 2, the reference's proxy loss */
    double percdamp;    /* copied from the hinv */
    int64_t n_dead;
    int64_t block_size; /* the block size used (aligned to the group for dynamic groups) */
} sq_gptq_result;

/* Quantizes w [rows x cols] (cols = h->cols) with the lazy-batch GPTQ sweep. Codes, scales
 * and zeros come out in the original column order with contiguous groups, also with
 * act-order (static groups: no reordering at run time). `w_hat` (optional, [rows x cols])
 * receives the decoded weights the sweep used. `res` may be NULL. o->act_order must match
 * the hinv. */
sq_status sq_gptq_quantize(sq_qweight *out, float *w_hat, sq_gptq_result *res, const float *w, int64_t rows,
                           const sq_gptq_hinv *h, const sq_gptq_opts *o);

/* Per-row output rescaling of a quantized weight: for each row r the factor
 * a = (w_r H w^_r) / (w^_r H w^_r) that minimises the row's output error
 * (w_r - a w^_r) H (w_r - a w^_r)^T on the inputs whose Gram matrix is xtx ([cols x cols],
 * upper triangle read), applied to the row's scales (s -> fp16(a s), zero points and
 * codes unchanged). A row keeps its scales when the rounded factor does not lower its
 * error. w is the FP weight [rows x cols]; w_hat (optional) receives the decoded result.
 * Deterministic (fixed row chunks). Returns the number of rescaled rows in *n_changed. */
sq_status sq_qweight_rescale_rows(sq_qweight *q, float *w_hat, const float *w, const double *xtx,
                                  int64_t *n_changed);

/* ===== AWQ (ALGORITHMS.md §3, arXiv:2306.00978) ===== */

/* Loss of the compared module when the scaled linears use the candidate per-input-channel
 * scales (the callback fake-quantizes each linear with sq_rtn_fakequant(.., scales, ..),
 * runs the module on its cached inputs and returns the mean squared output error against
 * the FP output). Return SQ_OK and *loss, or an error status (after sq_errorf) to abort. */
typedef sq_status (*sq_awq_loss_fn)(void *user, const float *scales, double *loss);

typedef struct {
    const float *w; /* [rows x cols] */
    int64_t rows;
} sq_awq_linear;

typedef struct {
    int32_t n_grid;     /* alpha in {0, 1/n_grid, ..., (n_grid-1)/n_grid}; default 20 */
    bool duo_scaling;   /* AutoAWQ: s = x^a / (w_mean^(1-a) + 1e-4) */
    int32_t duo_group;  /* group length for w_mean's per-group max (0 = whole row); default 128 */
} sq_awq_opts;

void sq_awq_opts_default(sq_awq_opts *o);

typedef struct {
    double alpha;       /* the best alpha */
    int32_t best_index; /* its grid index */
    double loss;        /* its loss */
    double loss_alpha0; /* loss at alpha = 0 (plain RTN) */
} sq_awq_result;

/* Grid search of the per-input-channel scales of one scaling group. x_mean [cols] is
 * mean |x| per input channel; lin[0..n_lin) are the linears sharing that input (used only
 * for duo scaling; may be NULL otherwise). scales [cols] receives the best candidate
 * (normalised by sqrt(max * min)). The first minimum wins on ties. */
sq_status sq_awq_search(float *scales, sq_awq_result *res, const float *x_mean, int64_t cols,
                        const sq_awq_linear *lin, int32_t n_lin, const sq_awq_opts *o,
                        sq_awq_loss_fn loss, void *user);

/* The candidate scales for one alpha (what sq_awq_search passes to the loss); w_mean may
 * be NULL when duo scaling is off. */
sq_status sq_awq_scales_for_alpha(float *scales, const float *x_mean, const double *w_mean, int64_t cols,
                                  double alpha);
/* Duo scaling's w_mean [cols]: the rows of all linears stacked, each weight divided by the
 * max |w| of its (row, group) (+1e-6), averaged over rows. */
sq_status sq_awq_w_mean(double *w_mean, const sq_awq_linear *lin, int32_t n_lin, int64_t cols, int64_t group);

typedef struct {
    int32_t n_grid;     /* default 20 */
    double max_shrink;  /* default 0.5: ratios 1 - i/n_grid for i < max_shrink * n_grid (10 steps) */
    int32_t n_threads;  /* 0 = sq_num_threads() */
} sq_awq_clip_opts;

void sq_awq_clip_opts_default(sq_awq_clip_opts *o);

/* Clip search (llm-awq auto_clip): for each (row, group) try max |w| * (1 - i/n_grid),
 * clamp the group to [-m, m], quantize it with the scheme, and keep the m whose partial
 * outputs sum_{j in group} q_j x_tj are closest (MSE over the n_tok sample rows of x
 * [n_tok x cols]) to the unclipped FP partial outputs. w [rows x cols] is clamped in place;
 * max_val (optional, [rows x n_groups]) receives the chosen bounds. i = 0 (no clipping) is
 * a candidate, so the group-output error never increases. */
sq_status sq_awq_clip(float *w, int64_t rows, int64_t cols, const float *x, int64_t n_tok,
                      const sq_qscheme *s, const sq_rtn_opts *ro, const sq_awq_clip_opts *o, float *max_val);

/* llm-awq's token subsampling for the clip search: every step-th row with
 * step = max(1, n_tokens / n_sample) (so up to 2 * n_sample rows are kept). */
int64_t sq_awq_sample_step(int64_t n_tokens, int64_t n_sample);

/* Folding (exact in FP):
 * sq_awq_fold_vec:   v[j] /= s[j]            (a norm weight gamma, or a bias)
 * sq_awq_fold_rows:  w[j, :] /= s[j]         (the previous linear's output rows; rows == len(s))
 * sq_awq_scale_cols: w[:, j] *= s[j]         (every consumer linear; cols == len(s))
 * SQ_ERR_ARG when a scale is not finite and positive (nothing is modified then). */
sq_status sq_awq_fold_vec(float *v, int64_t n, const float *s);
sq_status sq_awq_fold_rows(float *w, int64_t rows, int64_t cols, const float *s);
sq_status sq_awq_scale_cols(float *w, int64_t rows, int64_t cols, const float *s);

#endif
