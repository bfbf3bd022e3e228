/* model.c - binds a Llama-family config to its weights by Hugging Face tensor name,
 * checking every shape against the config, from a runnable file (weights stay in the
 * mapping) or from in-memory tensors (a model store loaded by squish-eval).
 * Norm weights and biases (1-D, tiny) are converted to f32 once; matrices stay in their
 * stored type and are read by the kernels as they are.
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
    m->type = t->type;
    m->rows = rows;
    m->cols = cols;
    m->row_bytes = sq_type_row_bytes(t->type, cols);
    m->data = t->data;
    return SQ_OK;
}

/* Binds a 1-D tensor of n floats (any float type) as an f32 copy in the pool. */
static sq_status bind_vec(binder *b, const float **out, const char *name, int64_t n, bool required) {
    *out = NULL;
    const sq_tensor *t = find(b, name);
    if (!t) {
        if (!required) return SQ_OK;
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is missing", b->what, name);
    }
    if (t->n_dims != 1 || t->shape[0] != n)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' should be a vector of %lld values", b->what, name,
                         (long long)n);
    SQ_ASSERT(b->pool_used + (size_t)n <= b->pool_cap);
    float *dst = b->pool + b->pool_used;
    sq_status st = sq_convert_rows(dst, SQ_TYPE_F32, t->data, t->type, n);
    if (st) return st;
    b->pool_used += (size_t)n;
    *out = dst;
    return SQ_OK;
}

static sq_status bind_all(sq_model *m, binder *b) {
    const sq_config *c = &m->cfg;
    sq_status st;
    char name[SQ_MAX_NAME];
    const int64_t dim = c->dim, hid = c->hidden_dim, qd = (int64_t)c->n_heads * c->head_dim,
                  kvd = (int64_t)c->n_kv_heads * c->head_dim;

    /* pool: 2 norms per layer + biases + final norm */
    b->pool_cap = (size_t)c->n_layers * (size_t)(2 * dim + qd + 2 * kvd + dim + 2 * hid + dim) + (size_t)dim;
    b->pool = malloc(b->pool_cap * sizeof(float));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!b->pool || !m->layers) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", b->what);
    m->f32_pool = b->pool;

    if ((st = bind_mat(b, &m->tok_embd, "model.embed_tokens.weight", c->vocab_size, dim))) return st;
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer *L = &m->layers[l];
#define NAME(fmt) (snprintf(name, sizeof name, "model.layers.%d." fmt, (int)l), name)
        if ((st = bind_vec(b, &L->attn_norm, NAME("input_layernorm.weight"), dim, true))) return st;
        if ((st = bind_mat(b, &L->wq, NAME("self_attn.q_proj.weight"), qd, dim))) return st;
        if ((st = bind_mat(b, &L->wk, NAME("self_attn.k_proj.weight"), kvd, dim))) return st;
        if ((st = bind_mat(b, &L->wv, NAME("self_attn.v_proj.weight"), kvd, dim))) return st;
        if ((st = bind_mat(b, &L->wo, NAME("self_attn.o_proj.weight"), dim, qd))) return st;
        if ((st = bind_vec(b, &L->bq, NAME("self_attn.q_proj.bias"), qd, c->attn_qkv_bias))) return st;
        if ((st = bind_vec(b, &L->bk, NAME("self_attn.k_proj.bias"), kvd, c->attn_qkv_bias))) return st;
        if ((st = bind_vec(b, &L->bv, NAME("self_attn.v_proj.bias"), kvd, c->attn_qkv_bias))) return st;
        if ((st = bind_vec(b, &L->bo, NAME("self_attn.o_proj.bias"), dim, c->attn_o_bias))) return st;
        if ((st = bind_vec(b, &L->ffn_norm, NAME("post_attention_layernorm.weight"), dim, true))) return st;
        if ((st = bind_mat(b, &L->w_gate, NAME("mlp.gate_proj.weight"), hid, dim))) return st;
        if ((st = bind_mat(b, &L->w_up, NAME("mlp.up_proj.weight"), hid, dim))) return st;
        if ((st = bind_mat(b, &L->w_down, NAME("mlp.down_proj.weight"), dim, hid))) return st;
        if ((st = bind_vec(b, &L->b_gate, NAME("mlp.gate_proj.bias"), hid, c->mlp_bias))) return st;
        if ((st = bind_vec(b, &L->b_up, NAME("mlp.up_proj.bias"), hid, c->mlp_bias))) return st;
        if ((st = bind_vec(b, &L->b_down, NAME("mlp.down_proj.bias"), dim, c->mlp_bias))) return st;
#undef NAME
    }
    if ((st = bind_vec(b, &m->out_norm, "model.norm.weight", dim, true))) return st;
    if (c->tied_embeddings) {
        if (find(b, "lm_head.weight"))
            return sq_errorf(SQ_ERR_FORMAT, "%s: the config says the head is tied but 'lm_head.weight' is present",
                             b->what);
        m->lm_head = m->tok_embd;
    } else if ((st = bind_mat(b, &m->lm_head, "lm_head.weight", c->vocab_size, dim))) {
        return st;
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
