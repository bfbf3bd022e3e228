/* model.h - a Llama-family decoder bound to its weights, and the one forward pass.
 *
 * The same forward pass serves squish-run (generation), squish-eval (perplexity, KLD) and
 * squish-calibrate (capture hooks), so evaluation measures exactly the bytes that ship.
 * Architecture: token embedding -> L x [RMSNorm -> q/k/v (+bias) -> RoPE (rotate-half or
 * interleaved pairing, theta, optional llama3/linear scaling) -> causal GQA attention ->
 * o -> residual; RMSNorm -> down(silu(gate) * up) -> residual] -> RMSNorm -> head (tied
 * or untied). Follows HF transformers' LlamaForCausalLM / Qwen2ForCausalLM.
 */
#ifndef SQ_MODEL_H
#define SQ_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"
#include "sqz.h"
#include "types.h"

/* ===== The tensors a configuration implies ===== */

/* What a tensor is for. The order is the canonical model order. */
typedef enum {
    SQ_ROLE_EMBED = 0,
    SQ_ROLE_ATTN_NORM,
    SQ_ROLE_Q, SQ_ROLE_Q_BIAS,
    SQ_ROLE_K, SQ_ROLE_K_BIAS,
    SQ_ROLE_V, SQ_ROLE_V_BIAS,
    SQ_ROLE_O, SQ_ROLE_O_BIAS,
    SQ_ROLE_FFN_NORM,
    SQ_ROLE_GATE, SQ_ROLE_GATE_BIAS,
    SQ_ROLE_UP, SQ_ROLE_UP_BIAS,
    SQ_ROLE_DOWN, SQ_ROLE_DOWN_BIAS,
    SQ_ROLE_OUT_NORM,
    SQ_ROLE_LM_HEAD
} sq_role;

typedef struct {
    char name[SQ_MAX_NAME]; /* Hugging Face name */
    sq_role role;
    int32_t layer;          /* -1 outside the decoder blocks */
    int32_t n_dims;         /* 1 or 2 */
    int64_t shape[2];       /* [out, in] or [n] */
} sq_tensor_spec;

/* Every tensor cfg implies, in canonical order: embed; per layer input_layernorm, q (bias),
 * k (bias), v (bias), o (bias), post_attention_layernorm, gate (bias), up (bias), down
 * (bias); model.norm; lm_head unless tied. The one place that knows the names and shapes:
 * the model binder, the importers, the store and validation all use it. *out is malloc'ed. */
sq_status sq_config_tensors(const sq_config *cfg, sq_tensor_spec **out, int32_t *n);

/* ===== A model bound to its weights ===== */

typedef struct {
    const float *attn_norm, *ffn_norm;  /* [dim] */
    sq_mat wq, wk, wv, wo;              /* [q_dim, dim], [kv_dim, dim] x2, [dim, q_dim] */
    const float *bq, *bk, *bv, *bo;     /* biases or NULL */
    sq_mat w_gate, w_up, w_down;        /* [hidden, dim] x2, [dim, hidden] */
    const float *b_gate, *b_up, *b_down;/* biases or NULL */
} sq_layer;

typedef struct sq_model {
    sq_config cfg;
    const sq_vocab *vocab;   /* borrowed from the file or the owner */
    sq_mat tok_embd;         /* [vocab, dim] */
    sq_layer *layers;        /* [n_layers] */
    const float *out_norm;   /* [dim] */
    sq_mat lm_head;          /* [vocab, dim]; = tok_embd when tied */
    /* ownership */
    sq_sqz *file;            /* when opened from a runnable file */
    sq_tensor *tensors;      /* when built from tensors */
    int32_t n_tensors;
    bool owns_tensors;       /* free tensors (and owned_vocab) with the model */
    sq_vocab owned_vocab;
    float *f32_pool;         /* norms/biases converted to f32 */
} sq_model;

/* Opens a runnable file (verify: check its checksum). */
sq_status sq_model_open(sq_model **out, const char *path, bool verify);

/* Binds a model to in-memory tensors named with Hugging Face names. When `take` is true
 * the model takes ownership of the tensor array and each tensor's data (and the vocab's
 * contents; *vocab is zeroed); otherwise they must outlive the model. */
sq_status sq_model_from_tensors(sq_model **out, const sq_config *cfg, sq_vocab *vocab,
                                sq_tensor *tensors, int32_t n_tensors, bool take);
void sq_model_free(sq_model *m); /* NULL-safe */

/* Number of weights in all tensors and the bytes their data occupies. */
void sq_model_size(const sq_model *m, int64_t *n_weights, int64_t *n_bytes);

/* ===== Inference state ===== */

/* Points in a layer where the forward pass can hand activations to a capture hook
 * (calibration): the input of q/k/v, of o, of gate/up and of down. */
typedef enum {
    SQ_CAPTURE_ATTN_IN = 0,
    SQ_CAPTURE_ATTN_O_IN = 1,
    SQ_CAPTURE_FFN_IN = 2,
    SQ_CAPTURE_FFN_DOWN_IN = 3
} sq_capture_point;
/* x is [n, width] row-major, valid only during the call. Called from the forward pass's
 * thread (never concurrently). */
typedef void (*sq_capture_fn)(void *user, int32_t layer, sq_capture_point point, const float *x,
                              int32_t n, int32_t width);

typedef struct sq_state sq_state;

/* Allocates the KV cache for `ctx` positions and scratch for batches of up to max_batch
 * tokens (larger requests are split). ctx is capped by nothing but memory: callers cap
 * it at cfg.max_seq_len where the model requires. */
sq_status sq_state_init(sq_state **out, const sq_model *m, int32_t ctx, int32_t max_batch);
void sq_state_free(sq_state *s);      /* NULL-safe */
void sq_state_reset(sq_state *s);     /* forget the cache: next token is at position 0 */
int32_t sq_state_pos(const sq_state *s);
void sq_state_set_capture(sq_state *s, sq_capture_fn fn, void *user);

/* Feeds n tokens at positions pos..pos+n-1 (pos = tokens already cached) and writes the
 * logits of tokens first_logit..n-1 to logits[(i - first_logit) * vocab] (pass
 * first_logit = n and logits = NULL when no logits are needed). Fails with SQ_ERR_ARG if
 * the cache would overflow or a token id is out of range. */
sq_status sq_forward(sq_state *s, const int32_t *tokens, int32_t n, int32_t first_logit,
                     float *logits);

/* Building blocks for stage-wise work (sequential quantization, calibration): the
 * embedding rows of n tokens into x [n, dim], and decoder block `layer` applied in place
 * to hidden states x [n, dim] of tokens at positions 0..n-1 (that layer's cache is
 * overwritten; capture hooks fire). n may exceed max_batch (processed in batches of
 * max_batch, as sq_forward does, so embed + every block + head gives sq_forward's bits). */
sq_status sq_forward_embed(sq_state *s, const int32_t *tokens, int32_t n, float *x);
sq_status sq_forward_block(sq_state *s, int32_t layer, float *x, int32_t n);
/* Final norm and head: logits [n, vocab] of hidden states x [n, dim]. */
sq_status sq_forward_head(sq_state *s, const float *x, int32_t n, float *logits);

#endif
