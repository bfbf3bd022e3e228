/* checkpoint.c - the in-memory checkpoint (core/checkpoint.h): ownership helpers, the
 * tensor list a config implies (Hugging Face names and [out, in] shapes, FORMATS.md 2-3),
 * validation of a checkpoint against its config, and element-type conversion.
 * Validation names the tensor and both shapes in every message; it tolerates only the
 * buffers importers drop anyway ("*.rotary_emb.inv_freq").
 */
#include "checkpoint_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ===== Helpers shared with the importers and the store ===== */

void *sq_alloc_aligned(size_t nbytes) {
    if (nbytes > SIZE_MAX - 64) return NULL;
    size_t n = (nbytes + 63) & ~(size_t)63;
    return aligned_alloc(64, n ? n : 64);
}

bool sq_tensor_name_ignorable(const char *name) { return sq_str_ends_with(name, ".rotary_emb.inv_freq"); }

const char *sq_shape_str(char *buf, size_t cap, int32_t n_dims, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (int32_t d = 0; d < n_dims && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ===== Ownership ===== */

void sq_checkpoint_free(sq_checkpoint *c) {
    if (!c) return;
    for (int32_t i = 0; i < c->n_tensors; i++) sq_tensor_release(&c->tensors[i]);
    free(c->tensors);
    sq_vocab_free(&c->vocab);
    free(c->source_format);
    for (int32_t i = 0; i < c->n_sources; i++) free(c->sources[i].path);
    free(c->sources);
    free(c->config_json);
    free(c->tokenizer_json);
    free(c->tool_version);
    free(c->command_line);
    free(c->quant);
    free(c->sparse);
    memset(c, 0, sizeof *c);
}

sq_status sq_checkpoint_set_quant_info(sq_checkpoint *c, const sq_quant_info *qi) {
    for (int32_t i = 0; i < c->n_quant; i++)
        if (strcmp(c->quant[i].name, qi->name) == 0) {
            c->quant[i] = *qi;
            return SQ_OK;
        }
    sq_quant_info *p = realloc(c->quant, ((size_t)c->n_quant + 1) * sizeof *p);
    if (!p) return sq_errorf(SQ_ERR_OOM, "out of memory recording how '%s' was quantized", qi->name);
    c->quant = p;
    c->quant[c->n_quant++] = *qi;
    return SQ_OK;
}

const sq_quant_info *sq_checkpoint_quant_info(const sq_checkpoint *c, const char *name) {
    for (int32_t i = 0; c && name && i < c->n_quant; i++)
        if (strcmp(c->quant[i].name, name) == 0) return &c->quant[i];
    return NULL;
}

sq_status sq_checkpoint_set_sparse_info(sq_checkpoint *c, const sq_sparse_info *si) {
    for (int32_t i = 0; i < c->n_sparse; i++)
        if (strcmp(c->sparse[i].name, si->name) == 0) {
            c->sparse[i] = *si;
            return SQ_OK;
        }
    sq_sparse_info *p = realloc(c->sparse, ((size_t)c->n_sparse + 1) * sizeof *p);
    if (!p) return sq_errorf(SQ_ERR_OOM, "out of memory recording how '%s' was pruned", si->name);
    c->sparse = p;
    c->sparse[c->n_sparse++] = *si;
    return SQ_OK;
}

const sq_sparse_info *sq_checkpoint_sparse_info(const sq_checkpoint *c, const char *name) {
    for (int32_t i = 0; c && name && i < c->n_sparse; i++)
        if (strcmp(c->sparse[i].name, name) == 0) return &c->sparse[i];
    return NULL;
}

sq_tensor *sq_checkpoint_find(const sq_checkpoint *c, const char *name) {
    if (!c || !name) return NULL;
    for (int32_t i = 0; i < c->n_tensors; i++)
        if (c->tensors[i].name && strcmp(c->tensors[i].name, name) == 0) return &c->tensors[i];
    return NULL;
}

/* On failure the caller keeps ownership of t (it is left untouched). */
sq_status sq_checkpoint_add(sq_checkpoint *c, sq_tensor *t) {
    if (!t->name || !t->name[0]) return sq_errorf(SQ_ERR_ARG, "sq_checkpoint_add: tensor without a name");
    if (sq_checkpoint_find(c, t->name))
        return sq_errorf(SQ_ERR_FORMAT, "tensor '%s' appears twice in the checkpoint", t->name);
    if (c->n_tensors >= INT32_MAX - 1) return sq_errorf(SQ_ERR_ARG, "too many tensors");
    int32_t n = c->n_tensors;
    sq_tensor *p = realloc(c->tensors, ((size_t)n + 1) * sizeof *p); /* glibc grows in place cheaply */
    if (!p) return sq_errorf(SQ_ERR_OOM, "out of memory adding tensor '%s'", t->name);
    c->tensors = p;
    c->tensors[n] = *t;
    c->n_tensors = n + 1;
    memset(t, 0, sizeof *t);
    return SQ_OK;
}

sq_status sq_checkpoint_add_source(sq_checkpoint *c, const char *path) {
    sq_source_file sf = {0};
    sq_status st = sq_sha256_file(path, sf.sha256, &sf.size);
    if (st != SQ_OK) return st;
    if (!(sf.path = sq_strdup(path))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    sq_source_file *p = realloc(c->sources, ((size_t)c->n_sources + 1) * sizeof *p);
    if (!p) {
        free(sf.path);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    }
    c->sources = p;
    c->sources[c->n_sources++] = sf;
    return SQ_OK;
}

/* ===== Validation ===== */

sq_status sq_checkpoint_validate(const sq_checkpoint *c, const char *what) {
    sq_status st = SQ_OK;
    sq_tensor_spec *exp = NULL;
    bool *used = NULL;
    int32_t n_exp = 0;
    char s1[96], s2[96];
    if (!what) what = "checkpoint";
    if ((st = sq_config_validate(&c->cfg, what)) != SQ_OK) goto fail;
    if ((st = sq_config_tensors(&c->cfg, &exp, &n_exp)) != SQ_OK) {
        sq_error_prefix(what);
        goto fail;
    }
    used = calloc((size_t)c->n_tensors + 1, sizeof *used);
    if (!used) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", what);
        goto fail;
    }
    for (int32_t i = 0; i < c->n_tensors; i++)
        for (int32_t j = 0; j < i; j++)
            if (strcmp(c->tensors[i].name, c->tensors[j].name) == 0) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' appears twice", what, c->tensors[i].name);
                goto fail;
            }
    for (int32_t k = 0; k < n_exp; k++) {
        const sq_tensor_spec *e = &exp[k];
        const sq_tensor *t = NULL;
        for (int32_t i = 0; i < c->n_tensors && !t; i++)
            if (strcmp(c->tensors[i].name, e->name) == 0) {
                t = &c->tensors[i];
                used[i] = true;
            }
        if (!t) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: missing tensor '%s' (expected shape %s)", what, e->name,
                           sq_shape_str(s1, sizeof s1, e->n_dims, e->shape));
            goto fail;
        }
        bool same = t->n_dims == e->n_dims;
        for (int32_t d = 0; same && d < e->n_dims; d++) same = t->shape[d] == e->shape[d];
        if (!same) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has shape %s but the config implies %s", what, e->name,
                           sq_shape_str(s1, sizeof s1, t->n_dims, t->shape),
                           sq_shape_str(s2, sizeof s2, e->n_dims, e->shape));
            goto fail;
        }
        if (!sq_type_traits_get(t->type)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has invalid type %d", what, e->name, (int)t->type);
            goto fail;
        }
        if (sq_type_is_quant(t->type) && t->n_dims != 2) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' is %s but not a matrix", what, e->name,
                           sq_type_name(t->type));
            goto fail;
        }
        if (sq_qparams_validate(t->type, t->q, t->shape[t->n_dims - 1], e->name)) {
            st = SQ_ERR_FORMAT;
            sq_error_prefix(what);
            goto fail;
        }
        size_t nb = sq_tensor_bytes(t->type, t->q, t->n_dims, t->shape);
        if (nb != t->nbytes || (nb && !t->data)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' holds %zu bytes, %s %s needs %zu", what, e->name, t->nbytes,
                           sq_type_name(t->type), sq_shape_str(s1, sizeof s1, t->n_dims, t->shape), nb);
            goto fail;
        }
    }
    for (int32_t i = 0; i < c->n_tensors; i++) {
        const sq_tensor *t = &c->tensors[i];
        if (used[i] || sq_tensor_name_ignorable(t->name)) continue;
        if (c->cfg.tied_embeddings && strcmp(t->name, "lm_head.weight") == 0)
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor 'lm_head.weight' is present but the embeddings are tied", what);
        else
            st = sq_errorf(SQ_ERR_FORMAT, "%s: unexpected tensor '%s' (shape %s) that the config does not use", what,
                           t->name, sq_shape_str(s1, sizeof s1, t->n_dims, t->shape));
        goto fail;
    }
    if (c->vocab.n_tokens > 0) {
        if ((st = sq_vocab_validate(&c->vocab, what)) != SQ_OK) goto fail;
        if (c->vocab.n_tokens > c->cfg.vocab_size) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: the tokenizer has %d tokens but the embedding only %d rows", what,
                           c->vocab.n_tokens, c->cfg.vocab_size);
            goto fail;
        }
    }
fail:
    free(exp);
    free(used);
    return st;
}

/* ===== Type conversion ===== */

sq_status sq_checkpoint_convert(sq_checkpoint *c, sq_type type) {
    if (type != SQ_TYPE_F32 && type != SQ_TYPE_F16 && type != SQ_TYPE_BF16)
        return sq_errorf(SQ_ERR_ARG, "cannot convert a checkpoint to %s", sq_type_name(type));
    for (int32_t i = 0; i < c->n_tensors; i++) {
        sq_tensor *t = &c->tensors[i];
        if (t->type == type || sq_type_is_quant(t->type)) continue;
        if (type != SQ_TYPE_F32 && t->n_dims != 2) continue; /* norms and biases keep their precision */
        size_t nb = sq_tensor_expected_bytes(type, t->n_dims, t->shape);
        int64_t numel = sq_tensor_numel(t);
        if (!nb && numel) return sq_errorf(SQ_ERR_ARG, "tensor '%s': size overflows", t->name);
        void *buf = sq_alloc_aligned(nb);
        if (!buf) return sq_errorf(SQ_ERR_OOM, "out of memory converting tensor '%s' to %s", t->name, sq_type_name(type));
        sq_status st = sq_convert_rows(buf, type, t->data, t->type, numel);
        if (st != SQ_OK) {
            free(buf);
            sq_error_prefix(t->name);
            return st;
        }
        if (t->owns_data) free(t->data);
        t->data = buf;
        t->nbytes = nb;
        t->type = type;
        t->owns_data = true;
    }
    return SQ_OK;
}
