/* qmodel.h - whole-model quantization for squish-quantize, on top of the per-layer
 * algorithms of quant.h: which tensors get which scheme (llm-compressor's targets/ignore
 * vocabulary, FORMATS.md 8.1 and 8.3), and the pipeline that runs RTN, GPTQ
 * (arXiv:2210.17323, "true sequential") or AWQ (arXiv:2306.00978) over a checkpoint,
 * block by block through the runtime's forward pass (ALGORITHMS.md 0-3, 9), and leaves
 * packed group-quantized tensors (docs/quantization.md) plus their method parameters
 * (sq_quant_info) in the checkpoint.
 *
 *   sq_qplan plan;  sq_qplan_build(&plan, &ckpt.cfg, &spec);      // resolve targets
 *   sq_qrun_opts o; sq_qrun_opts_default(&o, SQ_QMETHOD_GPTQ);
 *   sq_quantize_checkpoint(&ckpt, &plan, &o, &calib, &data, calib_sha256);
 *   sq_store_write("out.h5", &ckpt);
 *
 * Library code: never prints; failures return an sq_status with a one-line message.
 */
#ifndef SQ_QMODEL_H
#define SQ_QMODEL_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/calib.h"
#include "../core/checkpoint.h"
#include "../core/calib_seq.h"
#include "../core/cli.h"
#include "../runtime/model.h"
#include "quant.h"

/* ===== Module patterns (FORMATS.md 8.1, 8.3) =====
 * A pattern names modules (tensor names without ".weight"):
 *   "Linear"         the class of the seven block linears (q, k, v, o, gate, up, down);
 *   "re:<python re>" Python re.match semantics: anchored at the start only. Translated to
 *                    POSIX ERE: \d \w \s (and \D \W \S) become bracket expressions, other
 *                    escapes become literals; (?...) groups, lookaround, backreferences,
 *                    \b, and lazy or possessive quantifiers are refused with a message;
 *   anything else    an exact module name (the tensor name with ".weight" also matches). */

typedef enum { SQ_QPAT_EXACT = 0, SQ_QPAT_REGEX = 1, SQ_QPAT_LINEAR = 2 } sq_qpat_kind;

typedef struct {
    char *text;      /* as given (owned) */
    sq_qpat_kind kind;
    char *posix;     /* the translated ERE, "^(...)" (regex only; owned) */
    regex_t re;
    bool compiled;
} sq_qpattern;

/* Translates a Python re pattern (without "re:") into an anchored POSIX ERE "^(...)". The
 * caller frees *out. SQ_ERR_ARG naming the pattern and the construct that cannot be
 * translated. */
sq_status sq_qregex_translate(const char *py, char **out);
/* Parses and compiles a pattern; *p must be zeroed or freed. Errors name the pattern. */
sq_status sq_qpattern_compile(sq_qpattern *p, const char *text);
/* True when the pattern names `module`; block_linear tells whether it is one of the
 * seven block linears (for "Linear"). */
bool sq_qpattern_match(const sq_qpattern *p, const char *module, bool block_linear);
void sq_qpattern_free(sq_qpattern *p); /* NULL-safe; zeroes the struct */

/* ===== The plan: which tensor gets which scheme ===== */

typedef enum { SQ_QMETHOD_RTN = 0, SQ_QMETHOD_GPTQ = 1, SQ_QMETHOD_AWQ = 2 } sq_qmethod;
const char *sq_qmethod_name(sq_qmethod m); /* "rtn" | "gptq" | "awq" */

/* A per-tensor override, "PATTERN=keep", "PATTERN=f16|bf16|f32" (kept in float, stored in
 * that type) or "PATTERN=item,item..." with items bits:8|6|5|4|3, group:N|row, sym, asym (the
 * pattern is everything before the last '='). */
typedef struct {
    sq_qpattern pat;
    bool keep;
    int32_t keep_type;   /* with keep: the float type to store (sq_type), or -1 = as it is */
    bool has_bits, has_group, has_asym;
    int32_t bits, group; /* group 0 = one group per row */
    bool asym;
} sq_qoverride;

sq_status sq_qoverride_parse(sq_qoverride *o, const char *spec); /* *o zeroed or freed */
void sq_qoverride_free(sq_qoverride *o);                         /* NULL-safe */

/* sq_qscheme_check_cli (bit width and group size of an option): core/cli.h */

typedef struct {
    const char *const *targets; /* NULL or n_targets == 0: {"Linear"} */
    int32_t n_targets;
    const char *const *ignore;
    int32_t n_ignore;
    const char *const *overrides; /* override specs (sq_qoverride_parse) */
    int32_t n_overrides;
    sq_qscheme scheme;            /* the default scheme (group 0 = per row) */
} sq_qplan_spec;

typedef struct {
    char name[SQ_MAX_NAME];   /* tensor name ("model.layers.0.self_attn.q_proj.weight") */
    sq_role role;
    int32_t layer;            /* -1 for the embedding and the head */
    int64_t rows, cols;
    bool quantize;
    sq_qscheme scheme;        /* effective: group 0 when one group spans the row */
    int32_t target;           /* index of the target that selected it, or -1 */
    int32_t ignored_by;       /* index of the ignore pattern that removed it, or -1 */
    int32_t override_idx;     /* index of the last override that applied, or -1 */
    int32_t keep_type;        /* not quantized: the float type to store it in (sq_type), or -1 = as it is */
} sq_qplan_entry;

typedef struct {
    sq_qplan_entry *e; /* every 2-D weight of the model, in model order */
    int32_t n;
    int32_t n_quant;
} sq_qplan;

/* Resolves targets, ignores and overrides over the matrices cfg implies: a tensor is
 * quantized with the default scheme when a target names it and no ignore pattern does;
 * overrides then apply in order to every tensor they name (keep: left in float; otherwise
 * quantized with the given fields over the default scheme). A target or override that
 * names no tensor is an error (an ignore pattern is not: "lm_head" on a tied model). Every
 * planned scheme is checked against its row length. */
sq_status sq_qplan_build(sq_qplan *plan, const sq_config *cfg, const sq_qplan_spec *spec);
void sq_qplan_free(sq_qplan *plan); /* NULL-safe */
/* The entry of a tensor, or NULL. */
const sq_qplan_entry *sq_qplan_find(const sq_qplan *plan, const char *name);
/* "q_proj", "lm_head", "embed_tokens", ... (the last path component of the module). */
const char *sq_qplan_short_name(const sq_qplan_entry *e);

/* ===== The pipeline ===== */

typedef struct {
    const char *name;      /* tensor */
    const char *short_name;
    int32_t layer;         /* -1 outside the blocks */
    int32_t n_layers;
    sq_qscheme scheme;
    sq_qmethod method;     /* the algorithm actually used (embedding/head: rtn) */
    double loss;           /* gptq: proxy loss; awq: scaling-group loss; rtn: relative weight error */
    double damp_used;      /* gptq */
    double alpha;          /* awq: -1 when the tensor was not scaled */
    double seconds;
} sq_qreport;

/* A block after quantization: mse of its output vs the FP block on the same inputs (core/cli.h) */
typedef sq_block_report sq_qlayer_report;

typedef struct {
    sq_qmethod method;
    bool mse;               /* RTN grid: GPTQ's MSE range search */
    sq_qgrid grid;          /* symmetric grid of every method (quant.h); default per method */
    double damp;            /* gptq: fraction of mean(diag H) (default 0.01) */
    int32_t block_size;     /* gptq: lazy-batch block (default 128) */
    bool act_order;         /* gptq: act-order with static groups */
    bool sequential;        /* gptq/awq: activations through the forward pass (default); else calib.h5 */
    bool awq_duo;           /* awq: AutoAWQ duo scaling */
    bool awq_clip;          /* awq: clip search (default on) */
    int32_t awq_windows;    /* awq sequential: windows the scale search runs (default 16) */
    bool awq_fold_only;     /* awq: stop after folding the scales (the FP function; tests) */
    bool gptq_head;         /* gptq sequential: the head (lm_head or a tied embedding), when planned, by GPTQ
                               on the final-norm outputs of the quantized model (default on); else RTN */
    bool rescale;           /* gptq: per-row least-squares rescaling of the scales on X^T X afterwards */
    void (*on_tensor)(void *user, const sq_qreport *r);
    void (*on_layer)(void *user, const sq_qlayer_report *r);
    void *user;
} sq_qrun_opts;

void sq_qrun_opts_default(sq_qrun_opts *o, sq_qmethod m);

/* Bytes of activations the run caches: in sequential mode 2 x N x L x dim floats (a block's
 * inputs and outputs for every window) plus per-batch scratch (8 windows of every capture
 * width, the AWQ search's windows); otherwise 0. */
uint64_t sq_qrun_cache_bytes(const sq_config *cfg, const sq_qrun_opts *o, int64_t n_samples, int32_t seq_len);

/* Replaces a float tensor's data by the packed runnable rows (q8g..q3g) of its quantized
 * weights (squish-quantize and squish-prune's joint mode). */
sq_status sq_qweight_pack_tensor(sq_tensor *t, const sq_qweight *q);

/* Converts an f32 tensor's data to `want` (a float type), as the tools' runs end. */
sq_status sq_tensor_from_f32(sq_tensor *t, sq_type want);

/* Reloading calib.h5's data for the sequential mode: sq_calib_data_reload (core/calib_seq.h) */

/* Quantizes the planned tensors of c in place. c's float tensors are converted to f32 for
 * the run; afterwards every planned tensor is a packed q8g/q4g/q3g tensor (sq_qrow_pack),
 * tensors the run modified (AWQ-folded norms and rows) stay f32 and the others get their
 * original type back, bit for bit. c->quant receives one sq_quant_info per quantized
 * tensor. `calib` is needed for gptq and awq, `data` for their sequential mode;
 * calib_sha256 (may be NULL) is recorded. With awq_fold_only nothing is quantized and all
 * tensors stay f32. Deterministic: the same inputs give the same bytes at any thread count. */
sq_status sq_quantize_checkpoint(sq_checkpoint *c, const sq_qplan *plan, const sq_qrun_opts *o,
                                 const sq_calib *calib, const sq_calib_data *data, const char *calib_sha256);

#endif
