/* model.c - the list of tensors a Llama-family config implies (names, roles, shapes), and
 * the binder that points a model at its weights by those names, checking every shape, from a runnable file (weights stay in the
 * mapping) or from in-memory tensors (a model store loaded by squish-eval).
 * Norm weights and biases (1-D, tiny) are converted to f32 once; matrices (float or
 * group-quantized: every linear, the embedding and the head) stay in their stored type
 * and are read by the kernels as they are.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const sq_tensor *tensors;
    int32_t n;
    bool *used;
    const char *what; /* file name for messages */
    float *pool;      /* f32 copies of 1-D tensors */
    size_t pool_used, pool_cap;
} binder;

static const sq_tensor *find(binder *b, const char *name) {
    for (int32_t i = 0; i < b->n; i++)
        if (strcmp(b->tensors[i].name, name) == 0) {
            b->used[i] = true;
            return &b->tensors[i];
        }
    return NULL;
}

static sq_status bind_mat(binder *b, sq_mat *m, const char *name, int64_t rows, int64_t cols) {
    const sq_tensor *t = find(b, name);
    if (!t) return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is missing", b->what, name);
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has shape [%lld, %lld], the config needs [%lld, %lld]", b->what,
                         name, (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0),
                         (long long)rows, (long long)cols);
    /* quantized matrices (docs/quantization.md) carry their group and zero-point mode,
     * sparse ones (docs/sparse-format.md) their capacity */
    const sq_qparams q = sq_type_is_quant(t->type) || sq_type_is_sparse(t->type) ? t->q : (sq_qparams){0};
    if (sq_qparams_validate(t->type, q, cols, name) || sq_act8_validate(t->type, t->act8, name)) {
        sq_error_prefix(b->what);
        return SQ_ERR_FORMAT;
    }
    const size_t want = sq_tensor_bytes(t->type, q, 2, t->shape);
    if ((want == 0 && rows * cols != 0) || want != t->nbytes)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' holds %zu bytes, its type %s and shape need %zu", b->what,
                         name, t->nbytes, sq_type_name(t->type), want);
    m->type = t->type;
    m->q = q;
    m->rows = rows;
    m->cols = cols;
    m->row_bytes = sq_row_bytes(t->type, cols, q);
    m->data = t->data;
    m->act8 = t->act8;
    return SQ_OK;
}

/* Binds a 1-D tensor of n floats (any float type) as an f32 copy in the pool. */
static sq_status bind_vec(binder *b, const float **out, const char *name, int64_t n) {
    *out = NULL;
    const sq_tensor *t = find(b, name);
    if (!t) return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is missing", b->what, name);
    if (t->n_dims != 1 || t->shape[0] != n)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' should be a vector of %lld values", b->what, name,
                         (long long)n);
    if (sq_type_is_quant(t->type) || sq_type_is_sparse(t->type))
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is %s; norm weights and biases must be float", b->what, name,
                         sq_type_name(t->type));
    SQ_ASSERT(b->pool_used + (size_t)n <= b->pool_cap);
    float *dst = b->pool + b->pool_used;
    sq_status st = sq_convert_rows(dst, SQ_TYPE_F32, t->data, t->type, n);
    if (st) return st;
    b->pool_used += (size_t)n;
    *out = dst;
    return SQ_OK;
}

sq_status sq_config_tensors(const sq_config *cfg, sq_tensor_spec **out, int32_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (cfg->n_layers <= 0 || cfg->n_layers > 4096)
        return sq_errorf(SQ_ERR_ARG, "config has %d layers", cfg->n_layers);
    const int32_t per_layer = 9 + (cfg->attn_qkv_bias ? 3 : 0) + (cfg->attn_o_bias ? 1 : 0) + (cfg->mlp_bias ? 3 : 0);
    const int32_t cap = 3 + cfg->n_layers * per_layer;
    sq_tensor_spec *e = calloc((size_t)cap, sizeof *e);
    if (!e) return sq_errorf(SQ_ERR_OOM, "out of memory listing tensors");
    const int64_t dim = cfg->dim, hid = cfg->hidden_dim, vocab = cfg->vocab_size;
    const int64_t q_out = (int64_t)cfg->n_heads * cfg->head_dim, kv_out = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    int32_t n = 0;
#define ADD(rl, ly, r, c, ...)                                                                    \
    do {                                                                                          \
        snprintf(e[n].name, SQ_MAX_NAME, __VA_ARGS__);                                            \
        e[n].role = (rl);                                                                         \
        e[n].layer = (ly);                                                                        \
        e[n].n_dims = (c) ? 2 : 1;                                                                \
        e[n].shape[0] = (r);                                                                      \
        e[n].shape[1] = (c);                                                                      \
        n++;                                                                                      \
    } while (0)
    ADD(SQ_ROLE_EMBED, -1, vocab, dim, "model.embed_tokens.weight");
    for (int32_t l = 0; l < cfg->n_layers; l++) {
        const char *p = "model.layers";
        ADD(SQ_ROLE_ATTN_NORM, l, dim, 0, "%s.%d.input_layernorm.weight", p, l);
        ADD(SQ_ROLE_Q, l, q_out, dim, "%s.%d.self_attn.q_proj.weight", p, l);
        if (cfg->attn_qkv_bias) ADD(SQ_ROLE_Q_BIAS, l, q_out, 0, "%s.%d.self_attn.q_proj.bias", p, l);
        ADD(SQ_ROLE_K, l, kv_out, dim, "%s.%d.self_attn.k_proj.weight", p, l);
        if (cfg->attn_qkv_bias) ADD(SQ_ROLE_K_BIAS, l, kv_out, 0, "%s.%d.self_attn.k_proj.bias", p, l);
        ADD(SQ_ROLE_V, l, kv_out, dim, "%s.%d.self_attn.v_proj.weight", p, l);
        if (cfg->attn_qkv_bias) ADD(SQ_ROLE_V_BIAS, l, kv_out, 0, "%s.%d.self_attn.v_proj.bias", p, l);
        ADD(SQ_ROLE_O, l, dim, q_out, "%s.%d.self_attn.o_proj.weight", p, l);
        if (cfg->attn_o_bias) ADD(SQ_ROLE_O_BIAS, l, dim, 0, "%s.%d.self_attn.o_proj.bias", p, l);
        ADD(SQ_ROLE_FFN_NORM, l, dim, 0, "%s.%d.post_attention_layernorm.weight", p, l);
        ADD(SQ_ROLE_GATE, l, hid, dim, "%s.%d.mlp.gate_proj.weight", p, l);
        if (cfg->mlp_bias) ADD(SQ_ROLE_GATE_BIAS, l, hid, 0, "%s.%d.mlp.gate_proj.bias", p, l);
        ADD(SQ_ROLE_UP, l, hid, dim, "%s.%d.mlp.up_proj.weight", p, l);
        if (cfg->mlp_bias) ADD(SQ_ROLE_UP_BIAS, l, hid, 0, "%s.%d.mlp.up_proj.bias", p, l);
        ADD(SQ_ROLE_DOWN, l, dim, hid, "%s.%d.mlp.down_proj.weight", p, l);
        if (cfg->mlp_bias) ADD(SQ_ROLE_DOWN_BIAS, l, dim, 0, "%s.%d.mlp.down_proj.bias", p, l);
    }
    ADD(SQ_ROLE_OUT_NORM, -1, dim, 0, "model.norm.weight");
    if (!cfg->tied_embeddings) ADD(SQ_ROLE_LM_HEAD, -1, vocab, dim, "lm_head.weight");
#undef ADD
    SQ_ASSERT(n <= cap);
    *out = e;
    *n_out = n;
    return SQ_OK;
}

/* Points the model's fields at the tensors the config's spec list names. */
static sq_status bind_all(sq_model *m, binder *b) {
    const sq_config *c = &m->cfg;
    sq_status st;
    sq_tensor_spec *spec = NULL;
    int32_t n_spec = 0;
    if ((st = sq_config_tensors(c, &spec, &n_spec))) return st;
    b->pool_cap = 0;
    for (int32_t i = 0; i < n_spec; i++)
        if (spec[i].n_dims == 1) b->pool_cap += (size_t)spec[i].shape[0];
    b->pool = malloc((b->pool_cap ? b->pool_cap : 1) * sizeof(float));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->f32_pool = b->pool;
    if (!b->pool || !m->layers) {
        free(spec);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory", b->what);
    }
    for (int32_t i = 0; i < n_spec && !st; i++) {
        const sq_tensor_spec *e = &spec[i];
        sq_layer *L = e->layer >= 0 ? &m->layers[e->layer] : NULL;
        const float **vec = NULL;
        sq_mat *mat = NULL;
        switch (e->role) {
        case SQ_ROLE_EMBED: mat = &m->tok_embd; break;
        case SQ_ROLE_ATTN_NORM: vec = &L->attn_norm; break;
        case SQ_ROLE_Q: mat = &L->wq; break;
        case SQ_ROLE_Q_BIAS: vec = &L->bq; break;
        case SQ_ROLE_K: mat = &L->wk; break;
        case SQ_ROLE_K_BIAS: vec = &L->bk; break;
        case SQ_ROLE_V: mat = &L->wv; break;
        case SQ_ROLE_V_BIAS: vec = &L->bv; break;
        case SQ_ROLE_O: mat = &L->wo; break;
        case SQ_ROLE_O_BIAS: vec = &L->bo; break;
        case SQ_ROLE_FFN_NORM: vec = &L->ffn_norm; break;
        case SQ_ROLE_GATE: mat = &L->w_gate; break;
        case SQ_ROLE_GATE_BIAS: vec = &L->b_gate; break;
        case SQ_ROLE_UP: mat = &L->w_up; break;
        case SQ_ROLE_UP_BIAS: vec = &L->b_up; break;
        case SQ_ROLE_DOWN: mat = &L->w_down; break;
        case SQ_ROLE_DOWN_BIAS: vec = &L->b_down; break;
        case SQ_ROLE_OUT_NORM: vec = &m->out_norm; break;
        case SQ_ROLE_LM_HEAD: mat = &m->lm_head; break;
        }
        st = mat ? bind_mat(b, mat, e->name, e->shape[0], e->shape[1]) : bind_vec(b, vec, e->name, e->shape[0]);
    }
    free(spec);
    if (st) return st;
    if (c->tied_embeddings) {
        if (find(b, "lm_head.weight"))
            return sq_errorf(SQ_ERR_FORMAT, "%s: the config says the head is tied but 'lm_head.weight' is present",
                             b->what);
        m->lm_head = m->tok_embd;
    }
    for (int32_t i = 0; i < b->n; i++)
        if (!b->used[i])
            return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is not used by this %s configuration", b->what,
                             b->tensors[i].name, c->arch);
    return SQ_OK;
}

static sq_status bind(sq_model *m, const sq_tensor *tensors, int32_t n, const char *what) {
    binder b = {.tensors = tensors, .n = n, .what = what};
    b.used = calloc((size_t)(n > 0 ? n : 1), sizeof(bool));
    if (!b.used) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", what);
    sq_status st = sq_config_validate(&m->cfg, what);
    if (!st) st = bind_all(m, &b);
    if (!st && m->vocab->n_tokens > m->cfg.vocab_size)
        st = sq_errorf(SQ_ERR_FORMAT, "%s: the tokenizer has %d tokens but the model only %d embedding rows", what,
                       m->vocab->n_tokens, m->cfg.vocab_size);
    free(b.used);
    return st;
}

sq_status sq_model_open(sq_model **out, const char *path, bool verify) {
    *out = NULL;
    sq_model *m = calloc(1, sizeof *m);
    if (!m) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    sq_status st = sq_sqz_open(&m->file, path, verify);
    if (st) goto fail;
    m->cfg = *sq_sqz_config(m->file);
    m->vocab = sq_sqz_vocab(m->file);
    int32_t n = sq_sqz_n_tensors(m->file);
    /* the index is contiguous in the reader: tensor 0 is the array start */
    st = bind(m, n > 0 ? sq_sqz_tensor(m->file, 0) : NULL, n, path);
    if (st) goto fail;
    *out = m;
    return SQ_OK;
fail:
    sq_model_free(m);
    return st;
}

sq_status sq_model_from_tensors(sq_model **out, const sq_config *cfg, sq_vocab *vocab, sq_tensor *tensors,
                                int32_t n_tensors, bool take) {
    *out = NULL;
    sq_model *m = calloc(1, sizeof *m);
    if (!m) return sq_errorf(SQ_ERR_OOM, "out of memory");
    m->cfg = *cfg;
    if (take) {
        m->owned_vocab = *vocab;
        memset(vocab, 0, sizeof *vocab);
        m->vocab = &m->owned_vocab;
        m->owns_tensors = true;
    } else {
        m->vocab = vocab;
    }
    m->tensors = tensors;
    m->n_tensors = n_tensors;
    sq_status st = bind(m, tensors, n_tensors, "model");
    if (st) {
        sq_model_free(m);
        return st;
    }
    *out = m;
    return SQ_OK;
}

void sq_model_free(sq_model *m) {
    if (!m) return;
    free(m->layers);
    free(m->f32_pool);
    if (m->tensors && m->owns_tensors) {
        for (int32_t i = 0; i < m->n_tensors; i++) sq_tensor_release(&m->tensors[i]);
        free(m->tensors);
    }
    sq_vocab_free(&m->owned_vocab);
    sq_sqz_close(m->file);
    free(m);
}

void sq_model_size(const sq_model *m, int64_t *n_weights, int64_t *n_bytes) {
    int64_t w = 0, b = 0;
    if (m->file) {
        for (int32_t i = 0; i < sq_sqz_n_tensors(m->file); i++) {
            const sq_tensor *t = sq_sqz_tensor(m->file, i);
            w += sq_tensor_numel(t);
            b += (int64_t)t->nbytes;
        }
    } else {
        for (int32_t i = 0; i < m->n_tensors; i++) {
            w += sq_tensor_numel(&m->tensors[i]);
            b += (int64_t)m->tensors[i].nbytes;
        }
    }
    *n_weights = w;
    *n_bytes = b;
}
