/* gguf_model.c - GGUF files <-> sq_checkpoint: sq_import_gguf and sq_export_gguf
 * (FORMATS.md 3 and 6.2-6.3, 6.7; docs/gguf.md). Names map by role (token_embd,
 * blk.N.attn_q, ... <-> Hugging Face names) and shapes by reversing ne[]. A llama GGUF
 * holds q/k rows in Meta's interleaved RoPE layout, a qwen2 GGUF in rotate-half: the
 * importer keeps them as stored and records rope_layout; the exporter permutes q/k weights
 * and biases (Meta[h*d + 2i + t] = HF[h*d + t*d/2 + i], q with n_heads, k with n_kv_heads)
 * when the checkpoint's layout differs from the architecture's, as llama.cpp's
 * convert_hf_to_gguf.py does. Keys, tokenizer and file_type follow that converter. Tensors:
 * F32/F16/BF16, and squish's group-quantized matrices <-> Q4_0/Q4_1/Q5_0/Q5_1/Q8_0
 * (gguf_quant.c); other quantized GGUF types are refused naming the tensor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "gguf.h"
#include "util.h"

/* llama_ftype values for general.file_type (llama.cpp include/llama.h; FORMATS.md 6.2) */
#define FTYPE_ALL_F32 0u
#define FTYPE_MOSTLY_F16 1u
#define FTYPE_MOSTLY_BF16 32u
#define FTYPE_MOSTLY_Q4_0 2u
#define FTYPE_MOSTLY_Q4_1 3u
#define FTYPE_MOSTLY_Q8_0 7u
#define FTYPE_MOSTLY_Q5_0 8u
#define FTYPE_MOSTLY_Q5_1 9u

/* ===== Names ===== */

/* The GGUF name of a tensor of the canonical list (FORMATS.md 3, 6.3). */
static void gguf_name(const sq_tensor_spec *s, char *buf, size_t cap) {
    const char *f = NULL;
    switch (s->role) {
    case SQ_ROLE_EMBED: snprintf(buf, cap, "token_embd.weight"); return;
    case SQ_ROLE_OUT_NORM: snprintf(buf, cap, "output_norm.weight"); return;
    case SQ_ROLE_LM_HEAD: snprintf(buf, cap, "output.weight"); return;
    case SQ_ROLE_ATTN_NORM: f = "attn_norm.weight"; break;
    case SQ_ROLE_Q: f = "attn_q.weight"; break;
    case SQ_ROLE_Q_BIAS: f = "attn_q.bias"; break;
    case SQ_ROLE_K: f = "attn_k.weight"; break;
    case SQ_ROLE_K_BIAS: f = "attn_k.bias"; break;
    case SQ_ROLE_V: f = "attn_v.weight"; break;
    case SQ_ROLE_V_BIAS: f = "attn_v.bias"; break;
    case SQ_ROLE_O: f = "attn_output.weight"; break;
    case SQ_ROLE_O_BIAS: f = "attn_output.bias"; break;
    case SQ_ROLE_FFN_NORM: f = "ffn_norm.weight"; break;
    case SQ_ROLE_GATE: f = "ffn_gate.weight"; break;
    case SQ_ROLE_GATE_BIAS: f = "ffn_gate.bias"; break;
    case SQ_ROLE_UP: f = "ffn_up.weight"; break;
    case SQ_ROLE_UP_BIAS: f = "ffn_up.bias"; break;
    case SQ_ROLE_DOWN: f = "ffn_down.weight"; break;
    case SQ_ROLE_DOWN_BIAS: f = "ffn_down.bias"; break;
    }
    snprintf(buf, cap, "blk.%d.%s", s->layer, f ? f : "?");
}

/* Which of a layer's q/k rows the RoPE permutation moves: heads for q/k (and their
 * biases), 0 otherwise. */
static int32_t rope_heads(const sq_config *k, sq_role r) {
    if (r == SQ_ROLE_Q || r == SQ_ROLE_Q_BIAS) return k->n_heads;
    if (r == SQ_ROLE_K || r == SQ_ROLE_K_BIAS) return k->n_kv_heads;
    return 0;
}

/* Moves whole rows between the two RoPE pairings (FORMATS.md 3):
 * HF (rotate-half) row h*d + t*(d/2) + i  ==  Meta (interleaved) row h*d + 2i + t. */
static void permute_rows(uint8_t *dst, const uint8_t *src, int32_t n_heads, int32_t d, size_t row_bytes,
                         bool to_interleaved) {
    for (int32_t h = 0; h < n_heads; h++)
        for (int32_t t = 0; t < 2; t++)
            for (int32_t i = 0; i < d / 2; i++) {
                size_t hf = (size_t)h * (size_t)d + (size_t)t * (size_t)(d / 2) + (size_t)i;
                size_t meta = (size_t)h * (size_t)d + 2 * (size_t)i + (size_t)t;
                size_t from = to_interleaved ? hf : meta, to = to_interleaved ? meta : hf;
                memcpy(dst + to * row_bytes, src + from * row_bytes, row_bytes);
            }
}

/* ===== Import: metadata helpers ===== */

typedef struct {
    const sq_gguf *f;
    const char *path;
    char arch[16];
} gctx;

static const sq_gguf_kv *arch_kv(const gctx *g, const char *suffix, char *key, size_t cap) {
    snprintf(key, cap, "%s.%s", g->arch, suffix);
    return sq_gguf_find_kv(g->f, key);
}

/* An integer key in [0, INT32_MAX]: a scalar, or a per-layer array whose values all agree
 * (feed_forward_length may be written that way). Absent: *out = def, or an error when
 * required. */
static sq_status key_i32(const gctx *g, const char *key, const sq_gguf_kv *kv, bool required, int32_t def,
                         int32_t *out) {
    *out = def;
    if (!kv) {
        if (required) return sq_errorf(SQ_ERR_FORMAT, "%s: required key %s is missing", g->path, key);
        return SQ_OK;
    }
    if (kv->elem_type == SQ_GGUF_BOOL || kv->n == 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s must be an integer", g->path, key);
    int64_t v0 = 0;
    for (uint64_t i = 0; i < kv->n; i++) {
        int64_t v;
        if (!sq_gguf_kv_int(kv, i, &v))
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s must be an integer, not %s", g->path, key,
                             sq_gguf_vtype_name(kv->elem_type));
        if (v < 0 || v > INT32_MAX)
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s = %lld is out of range", g->path, key, (long long)v);
        if (i == 0) v0 = v;
        else if (v != v0)
            return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: %s differs between layers (%lld, %lld, ...), which squish does not "
                             "support", g->path, key, (long long)v0, (long long)v);
    }
    *out = (int32_t)v0;
    return SQ_OK;
}

static sq_status key_f32(const gctx *g, const char *key, const sq_gguf_kv *kv, bool required, float def, float *out) {
    *out = def;
    if (!kv) {
        if (required) return sq_errorf(SQ_ERR_FORMAT, "%s: required key %s is missing", g->path, key);
        return SQ_OK;
    }
    double v;
    if (kv->type == SQ_GGUF_ARRAY || !sq_gguf_kv_float(kv, 0, &v))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s must be a number, not %s", g->path, key, sq_gguf_vtype_name(kv->type));
    if (!isfinite((float)v)) return sq_errorf(SQ_ERR_FORMAT, "%s: %s = %g is not a finite float", g->path, key, v);
    *out = (float)v;
    return SQ_OK;
}

static sq_status key_bool(const gctx *g, const char *key, bool def, bool *out) {
    const sq_gguf_kv *kv = sq_gguf_find_kv(g->f, key);
    *out = def;
    if (!kv) return SQ_OK;
    if (kv->type != SQ_GGUF_BOOL) return sq_errorf(SQ_ERR_FORMAT, "%s: %s must be a bool, not %s", g->path, key,
                                                   sq_gguf_vtype_name(kv->type));
    *out = kv->data[0] != 0;
    return SQ_OK;
}

/* A scalar identifier string (no control bytes) as a malloc'ed NUL-terminated copy; *out
 * NULL when absent. */
static sq_status key_str(const gctx *g, const char *key, const sq_gguf_kv *kv, bool required, char **out) {
    *out = NULL;
    const char *s;
    uint64_t n;
    if (!kv) {
        if (required) return sq_errorf(SQ_ERR_FORMAT, "%s: required key %s is missing", g->path, key);
        return SQ_OK;
    }
    if (kv->type != SQ_GGUF_STRING || !sq_gguf_kv_str(kv, 0, &s, &n))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s must be a string, not %s", g->path, key, sq_gguf_vtype_name(kv->type));
    for (uint64_t i = 0; i < n; i++) /* identifiers only: they may be echoed in one-line messages */
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s contains control byte 0x%02x", g->path, key, (unsigned char)s[i]);
    if (!(*out = malloc((size_t)n + 1))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", g->path);
    memcpy(*out, s, (size_t)n);
    (*out)[n] = '\0';
    return SQ_OK;
}

/* ===== Import: configuration ===== */

/* Llama-3 frequency scaling lives in the rope_freqs.weight tensor, whose divisors do not
 * determine the parameters; squish exports them as squish.rope.scaling.* keys too. */
static sq_status read_rope_scaling(const gctx *g, sq_config *k, bool *uses_rope_freqs) {
    sq_status st;
    char key[96], *type = NULL;
    *uses_rope_freqs = false;
    k->rope_scaling = SQ_ROPE_SCALING_NONE;
    k->rope_factor = 1.0f;
    const sq_gguf_tensor *rf = sq_gguf_find_tensor(g->f, "rope_freqs.weight");
    if (rf) {
        const sq_gguf_kv *t = sq_gguf_find_kv(g->f, "squish.rope.scaling.type");
        if (!sq_gguf_kv_str_eq(t, "llama3"))
            return sq_errorf(SQ_ERR_UNSUPPORTED,
                             "%s: per-frequency RoPE scaling (rope_freqs.weight, Llama-3) without squish.rope.scaling.* "
                             "parameters is not supported yet",
                             g->path);
        if (rf->type != SQ_GGML_F32 || rf->n_dims != 1 || rf->ne[0] != (uint64_t)(k->head_dim / 2))
            return sq_errorf(SQ_ERR_FORMAT, "%s: rope_freqs.weight must be a 1-D F32 tensor of head_dim / 2 = %d values",
                             g->path, k->head_dim / 2);
        int32_t orig;
#define P(name, field)                                                                                      \
    if ((st = key_f32(g, "squish.rope.scaling." name, sq_gguf_find_kv(g->f, "squish.rope.scaling." name), true, \
                      0.0f, &k->field)))                                                                    \
        return st;
        P("factor", rope_factor)
        P("low_freq_factor", rope_low_freq_factor)
        P("high_freq_factor", rope_high_freq_factor)
#undef P
        if ((st = key_i32(g, "squish.rope.scaling.original_context_length",
                          sq_gguf_find_kv(g->f, "squish.rope.scaling.original_context_length"), true, 0, &orig)))
            return st;
        k->rope_orig_ctx = orig;
        k->rope_scaling = SQ_ROPE_SCALING_LLAMA3;
        *uses_rope_freqs = true;
        return SQ_OK;
    }
    const sq_gguf_kv *tk = arch_kv(g, "rope.scaling.type", key, sizeof key);
    if ((st = key_str(g, key, tk, false, &type))) return st;
    if (!type || strcmp(type, "none") == 0) {
        free(type);
        return SQ_OK;
    }
    if (strcmp(type, "linear") == 0) {
        free(type);
        k->rope_scaling = SQ_ROPE_SCALING_LINEAR;
        return key_f32(g, key, arch_kv(g, "rope.scaling.factor", key, sizeof key), true, 1.0f, &k->rope_factor);
    }
    st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: RoPE scaling type '%.32s' is not supported (squish handles none and linear)",
                   g->path, type);
    free(type);
    return st;
}

static sq_status read_config(const gctx *g, sq_config *k, bool *uses_rope_freqs) {
    sq_status st;
    char key[96];
    memset(k, 0, sizeof *k);
    snprintf(k->arch, sizeof k->arch, "%s", g->arch);
#define I32(suffix, req, def, field) \
    if ((st = key_i32(g, key, arch_kv(g, suffix, key, sizeof key), req, def, &k->field))) return st;
    I32("block_count", true, 0, n_layers)
    I32("embedding_length", true, 0, dim)
    I32("context_length", true, 0, max_seq_len)
    I32("attention.head_count", true, 0, n_heads)
    I32("attention.head_count_kv", false, k->n_heads, n_kv_heads)
    I32("feed_forward_length", false, -1, hidden_dim)
#undef I32
    if (k->hidden_dim < 0) { /* older files: the FFN width is the shape of the first gate */
        const sq_gguf_tensor *t = sq_gguf_find_tensor(g->f, "blk.0.ffn_up.weight");
        if (!t || t->n_dims != 2 || t->ne[1] > INT32_MAX)
            return sq_errorf(SQ_ERR_FORMAT, "%s: required key %s.feed_forward_length is missing", g->path, g->arch);
        k->hidden_dim = (int32_t)t->ne[1];
    }
    if (k->n_heads <= 0) return sq_errorf(SQ_ERR_FORMAT, "%s: %s.attention.head_count is 0", g->path, g->arch);
    int32_t key_len, val_len, rot;
    if ((st = key_i32(g, key, arch_kv(g, "attention.key_length", key, sizeof key), false, -1, &key_len))) return st;
    if ((st = key_i32(g, key, arch_kv(g, "attention.value_length", key, sizeof key), false, -1, &val_len))) return st;
    if ((st = key_i32(g, key, arch_kv(g, "rope.dimension_count", key, sizeof key), false, -1, &rot))) return st;
    if (key_len < 0 && k->dim % k->n_heads != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: embedding_length %d is not a multiple of %d heads and no key_length is given",
                         g->path, k->dim, k->n_heads);
    k->head_dim = key_len >= 0 ? key_len : k->dim / k->n_heads;
    if (val_len >= 0 && val_len != k->head_dim)
        return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: value_length %d differs from key_length %d", g->path, val_len,
                         k->head_dim);
    if (rot >= 0 && rot != k->head_dim)
        return sq_errorf(SQ_ERR_UNSUPPORTED,
                         "%s: rope.dimension_count %d differs from the head size %d (partial RoPE is not supported)",
                         g->path, rot, k->head_dim);
    if ((st = key_f32(g, key, arch_kv(g, "attention.layer_norm_rms_epsilon", key, sizeof key), true, 0.0f,
                      &k->norm_eps)))
        return st;
    if ((st = key_f32(g, key, arch_kv(g, "rope.freq_base", key, sizeof key), false, 10000.0f, &k->rope_theta)))
        return st;
    if ((st = read_rope_scaling(g, k, uses_rope_freqs))) return st;
    k->rope_layout = strcmp(g->arch, "qwen2") == 0 ? SQ_ROPE_HALF : SQ_ROPE_INTERLEAVED;

    const sq_gguf_tensor *emb = sq_gguf_find_tensor(g->f, "token_embd.weight");
    if (!emb) return sq_errorf(SQ_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", g->path);
    if (emb->n_dims != 2 || emb->ne[1] > INT32_MAX)
        return sq_errorf(SQ_ERR_FORMAT, "%s: token_embd.weight is not a [dim, vocab] matrix", g->path);
    k->vocab_size = (int32_t)emb->ne[1];
    int32_t vs;
    if ((st = key_i32(g, key, arch_kv(g, "vocab_size", key, sizeof key), false, -1, &vs))) return st;
    if (vs >= 0 && vs != k->vocab_size)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s.vocab_size = %d but token_embd.weight has %d rows", g->path, g->arch, vs,
                         k->vocab_size);
    k->tied_embeddings = sq_gguf_find_tensor(g->f, "output.weight") == NULL;
    k->attn_qkv_bias = sq_gguf_find_tensor(g->f, "blk.0.attn_q.bias") != NULL;
    k->attn_o_bias = sq_gguf_find_tensor(g->f, "blk.0.attn_output.bias") != NULL;
    k->mlp_bias = sq_gguf_find_tensor(g->f, "blk.0.ffn_gate.bias") || sq_gguf_find_tensor(g->f, "blk.0.ffn_up.bias") ||
                  sq_gguf_find_tensor(g->f, "blk.0.ffn_down.bias");
    return sq_config_validate(k, g->path);
}

/* ===== Import: tensors ===== */

static sq_status read_tensors(const gctx *g, sq_checkpoint *c, bool uses_rope_freqs) {
    sq_status st = SQ_OK;
    sq_tensor_spec *spec = NULL;
    int32_t n_spec = 0;
    int64_t nt = sq_gguf_n_tensors(g->f);
    bool *used = calloc((size_t)nt + 1, sizeof *used);
    if (!used) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", g->path);
    if ((st = sq_config_tensors(&c->cfg, &spec, &n_spec))) {
        sq_error_prefix(g->path);
        goto fail;
    }
    for (int32_t k = 0; k < n_spec; k++) {
        const sq_tensor_spec *s = &spec[k];
        char name[96], want[64];
        gguf_name(s, name, sizeof name);
        int64_t idx = -1;
        for (int64_t i = 0; i < nt && idx < 0; i++)
            if (strcmp(sq_gguf_tensor_at(g->f, i)->name, name) == 0) idx = i;
        uint64_t ne0 = (uint64_t)(s->n_dims == 2 ? s->shape[1] : s->shape[0]);
        uint64_t ne1 = s->n_dims == 2 ? (uint64_t)s->shape[0] : 1;
        if (s->n_dims == 2) snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)ne0, (unsigned long long)ne1);
        else snprintf(want, sizeof want, "[%llu]", (unsigned long long)ne0);
        if (idx < 0) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: missing tensor '%s' (ne %s)", g->path, name, want);
            goto fail;
        }
        const sq_gguf_tensor *t = sq_gguf_tensor_at(g->f, idx);
        used[idx] = true;
        bool ok = t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1;
        if (!ok) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%s' has ne [%llu, %llu, %llu, %llu] but the config implies %s",
                           g->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                           (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], want);
            goto fail;
        }
        sq_tensor x = {0};
        x.n_dims = s->n_dims;
        x.shape[0] = s->shape[0];
        x.shape[1] = s->n_dims == 2 ? s->shape[1] : 0;
        x.owns_data = true;
        x.name = sq_strdup(s->name);
        if (!x.name) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", g->path);
            goto fail;
        }
        if (!sq_ggml_to_sq(t->type, &x.type)) { /* quantized: checked by sq_import_gguf */
            if (s->n_dims != 2) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: 1-D tensor '%s' is %s; squish needs F32, F16 or BF16 there",
                               g->path, name, sq_ggml_type_name(t->type));
            } else {
                st = sq_gguf_decode_qtensor(g->path, name, t->type, t->data, s->shape[0], s->shape[1], &x);
            }
            if (st) {
                sq_tensor_release(&x);
                goto fail;
            }
        } else {
            x.nbytes = (size_t)t->nbytes;
            x.data = sq_alloc_aligned(x.nbytes);
            if (!x.data) {
                sq_tensor_release(&x);
                st = sq_errorf(SQ_ERR_OOM, "%s: out of memory copying tensor '%s' (%zu bytes)", g->path, name,
                               x.nbytes);
                goto fail;
            }
            if (x.nbytes) memcpy(x.data, t->data, x.nbytes);
        }
        if ((st = sq_checkpoint_add(c, &x))) {
            sq_tensor_release(&x);
            goto fail;
        }
    }
    for (int64_t i = 0; i < nt; i++) {
        const sq_gguf_tensor *t = sq_gguf_tensor_at(g->f, i);
        if (used[i] || (uses_rope_freqs && strcmp(t->name, "rope_freqs.weight") == 0)) continue;
        st = sq_errorf(SQ_ERR_FORMAT, "%s: unexpected tensor '%s' that this %s model does not use", g->path, t->name,
                       g->arch);
        goto fail;
    }
fail:
    free(spec);
    free(used);
    return st;
}

/* ===== Import: tokenizer ===== */

/* token == "[PAD<num>]" */
static bool is_pad(const char *token, int64_t num) {
    char buf[40];
    snprintf(buf, sizeof buf, "[PAD%lld]", (long long)num);
    return strcmp(token, buf) == 0;
}

/* llama.cpp's converter pads a vocabulary shorter than the embedding with UNUSED tokens:
 * "[PAD<id>]" (byte-level BPE) or "[PAD1]", "[PAD2]", ... (SentencePiece). squish keeps
 * vocabularies unpadded, so the trailing run is dropped (unless a special id points into
 * it). Returns the number of tokens to keep. */
static int32_t unpadded_count(const sq_vocab *v) {
    int32_t n = v->n_tokens, m = n;
    while (m > 1 && v->types[m - 1] == SQ_TOKEN_UNUSED && is_pad(v->tokens[m - 1], m - 1)) m--;
    if (m == n) {
        long long k = 0;
        char tail;
        if (v->types[n - 1] == SQ_TOKEN_UNUSED && sscanf(v->tokens[n - 1], "[PAD%lld]%c", &k, &tail) == 1 && k >= 1 &&
            k < n) {
            m = n - (int32_t)k;
            for (int32_t j = m; j < n && m < n; j++)
                if (v->types[j] != SQ_TOKEN_UNUSED || !is_pad(v->tokens[j], j - m + 1)) m = n;
        }
    }
    const int32_t ids[4] = {v->bos_id, v->eos_id, v->unk_id, v->pad_id};
    for (int i = 0; i < 4; i++)
        if (ids[i] >= m) return n;
    return m;
}

/* A string array key of n elements into malloc'ed NUL-terminated copies. */
static sq_status str_array(const gctx *g, const char *key, const sq_gguf_kv *kv, char ***out, int32_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (kv->type != SQ_GGUF_ARRAY || kv->elem_type != SQ_GGUF_STRING)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s must be an array of strings", g->path, key);
    if (kv->n > (1u << 24)) return sq_errorf(SQ_ERR_FORMAT, "%s: %s has %llu entries (at most %d)", g->path, key,
                                             (unsigned long long)kv->n, 1 << 24);
    char **a = calloc((size_t)(kv->n ? kv->n : 1), sizeof *a);
    if (!a) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < kv->n; i++) {
        const char *s;
        uint64_t len;
        sq_gguf_kv_str(kv, i, &s, &len);
        if (memchr(s, 0, (size_t)len)) {
            for (uint64_t j = 0; j < i; j++) free(a[j]);
            free(a);
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s entry %llu contains a NUL byte", g->path, key, (unsigned long long)i);
        }
        if (!(a[i] = malloc((size_t)len + 1))) {
            for (uint64_t j = 0; j < i; j++) free(a[j]);
            free(a);
            return sq_errorf(SQ_ERR_OOM, "%s: out of memory", g->path);
        }
        memcpy(a[i], s, (size_t)len);
        a[i][len] = '\0';
    }
    *out = a;
    *n_out = (int32_t)kv->n;
    return SQ_OK;
}

static sq_status special_id(const gctx *g, const char *key, int32_t n, int32_t def, int32_t *out) {
    const sq_gguf_kv *kv = sq_gguf_find_kv(g->f, key);
    int64_t v;
    *out = def < n ? def : -1;
    if (!kv) return SQ_OK;
    if (kv->type == SQ_GGUF_ARRAY || kv->type == SQ_GGUF_BOOL || !sq_gguf_kv_int(kv, 0, &v))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s must be an integer", g->path, key);
    if (v < 0 || v >= n)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s = %lld is outside the vocabulary of %d tokens", g->path, key,
                         (long long)v, n);
    *out = (int32_t)v;
    return SQ_OK;
}

static sq_status read_vocab(const gctx *g, sq_vocab *v) {
    sq_status st;
    char *model = NULL, *pre = NULL;
    const char *mk = "tokenizer.ggml.model";
    memset(v, 0, sizeof *v);
    if ((st = key_str(g, mk, sq_gguf_find_kv(g->f, mk), true, &model))) goto fail;
    if (strcmp(model, "llama") == 0) {
        v->kind = SQ_VOCAB_SPM;
    } else if (strcmp(model, "gpt2") == 0) {
        v->kind = SQ_VOCAB_BPE;
    } else {
        st = sq_errorf(SQ_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.model '%.32s' is not supported (squish reads llama (SentencePiece) and gpt2 "
                       "(byte-level BPE))",
                       g->path, model);
        goto fail;
    }
    const sq_gguf_kv *tk = sq_gguf_find_kv(g->f, "tokenizer.ggml.tokens");
    if (!tk) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: required key tokenizer.ggml.tokens is missing", g->path);
        goto fail;
    }
    if ((st = str_array(g, "tokenizer.ggml.tokens", tk, &v->tokens, &v->n_tokens))) goto fail;
    int32_t n = v->n_tokens;
    if (n < 1) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: tokenizer.ggml.tokens is empty", g->path);
        goto fail;
    }
    v->scores = calloc((size_t)n, sizeof *v->scores);
    v->types = malloc((size_t)n * sizeof *v->types);
    if (!v->scores || !v->types) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", g->path);
        goto fail;
    }
    const sq_gguf_kv *sc = sq_gguf_find_kv(g->f, "tokenizer.ggml.scores");
    const sq_gguf_kv *ty = sq_gguf_find_kv(g->f, "tokenizer.ggml.token_type");
    if (sc && (sc->type != SQ_GGUF_ARRAY || sc->n != (uint64_t)n)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: tokenizer.ggml.scores must be an array of %d numbers", g->path, n);
        goto fail;
    }
    if (ty && (ty->type != SQ_GGUF_ARRAY || ty->n != (uint64_t)n)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be an array of %d integers", g->path, n);
        goto fail;
    }
    for (int32_t i = 0; i < n; i++) {
        double s = 0.0;
        int64_t t = SQ_TOKEN_NORMAL;
        if (sc && v->kind == SQ_VOCAB_SPM && !sq_gguf_kv_float(sc, (uint64_t)i, &s)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tokenizer.ggml.scores holds %s, not numbers", g->path,
                           sq_gguf_vtype_name(sc->elem_type));
            goto fail;
        }
        if (ty && (ty->elem_type == SQ_GGUF_BOOL || !sq_gguf_kv_int(ty, (uint64_t)i, &t))) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tokenizer.ggml.token_type holds %s, not integers", g->path,
                           sq_gguf_vtype_name(ty->elem_type));
            goto fail;
        }
        if (t == 0) t = SQ_TOKEN_NORMAL; /* llama.cpp's LLAMA_TOKEN_TYPE_UNDEFINED */
        if (t < SQ_TOKEN_NORMAL || t > SQ_TOKEN_BYTE) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: token %d has unknown token type %lld", g->path, i, (long long)t);
            goto fail;
        }
        v->scores[i] = (float)s;
        v->types[i] = (int32_t)t;
    }
    if (v->kind == SQ_VOCAB_BPE) {
        const sq_gguf_kv *mg = sq_gguf_find_kv(g->f, "tokenizer.ggml.merges");
        if (!mg) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: a gpt2 tokenizer needs tokenizer.ggml.merges", g->path);
            goto fail;
        }
        if ((st = str_array(g, "tokenizer.ggml.merges", mg, &v->merges, &v->n_merges))) goto fail;
        const char *pk = "tokenizer.ggml.pre";
        if ((st = key_str(g, pk, sq_gguf_find_kv(g->f, pk), false, &pre))) goto fail;
        static const struct {
            const char *name;
            sq_pretok pre;
        } pres[] = {{"gpt-2", SQ_PRE_GPT2},  {"llama-bpe", SQ_PRE_LLAMA3}, {"llama3", SQ_PRE_LLAMA3},
                    {"llama-v3", SQ_PRE_LLAMA3}, {"qwen2", SQ_PRE_QWEN2}, {"deepseek-r1-qwen", SQ_PRE_QWEN2},
                    {"smollm", SQ_PRE_SMOLLM}};
        size_t k = 0, np = sizeof pres / sizeof pres[0];
        while (pre && k < np && strcmp(pre, pres[k].name) != 0) k++;
        if (!pre || k == np) {
            st = sq_errorf(SQ_ERR_UNSUPPORTED,
                           "%s: tokenizer.ggml.pre '%.32s' is not a pre-tokenizer squish implements (gpt-2, llama-bpe, "
                           "qwen2, smollm): tokenization would silently differ",
                           g->path, pre ? pre : "(missing)");
            goto fail;
        }
        v->pre = pres[k].pre;
    } else {
        v->pre = SQ_PRE_DEFAULT;
    }
    bool spm = v->kind == SQ_VOCAB_SPM;
    /* llama.cpp's defaults when a key is absent: SentencePiece bos 1, eos 2, unk 0 */
    if ((st = special_id(g, "tokenizer.ggml.bos_token_id", n, spm ? 1 : -1, &v->bos_id))) goto fail;
    if ((st = special_id(g, "tokenizer.ggml.eos_token_id", n, spm ? 2 : -1, &v->eos_id))) goto fail;
    if ((st = special_id(g, "tokenizer.ggml.unknown_token_id", n, spm ? 0 : -1, &v->unk_id))) goto fail;
    if ((st = special_id(g, "tokenizer.ggml.padding_token_id", n, -1, &v->pad_id))) goto fail;
    if ((st = key_bool(g, "tokenizer.ggml.add_bos_token", spm, &v->add_bos))) goto fail;
    if ((st = key_bool(g, "tokenizer.ggml.add_eos_token", false, &v->add_eos))) goto fail;
    if (spm) {
        if ((st = key_bool(g, "tokenizer.ggml.add_space_prefix", true, &v->add_dummy_prefix))) goto fail;
        if ((st = key_bool(g, "tokenizer.ggml.remove_extra_whitespaces", false, &v->remove_extra_whitespaces)))
            goto fail;
        for (int32_t i = 0; i < n && !v->byte_fallback; i++) v->byte_fallback = v->types[i] == SQ_TOKEN_BYTE;
    }
    int32_t keep = unpadded_count(v);
    for (int32_t i = keep; i < n; i++) free(v->tokens[i]);
    v->n_tokens = keep;
    if ((st = sq_vocab_validate(v, g->path))) goto fail;
    free(model);
    free(pre);
    return SQ_OK;
fail:
    free(model);
    free(pre);
    sq_vocab_free(v);
    return st;
}

/* ===== Import ===== */

sq_status sq_import_gguf(const char *path, sq_checkpoint *out) {
    sq_status st;
    sq_gguf *f = NULL;
    char *arch = NULL;
    memset(out, 0, sizeof *out);
    if ((st = sq_gguf_open(&f, path))) return st;
    gctx g = {f, path, ""};
    const char *ak = "general.architecture";
    if ((st = key_str(&g, ak, sq_gguf_find_kv(f, ak), true, &arch))) goto fail;
    if (strcmp(arch, "llama") != 0 && strcmp(arch, "qwen2") != 0) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: architecture '%.32s' is not supported (squish imports llama and qwen2)",
                       path, arch);
        goto fail;
    }
    snprintf(g.arch, sizeof g.arch, "%s", arch);
    for (int64_t i = 0; i < sq_gguf_n_tensors(f); i++) {
        const sq_gguf_tensor *t = sq_gguf_tensor_at(f, i);
        sq_type ty;
        if (!sq_ggml_to_sq(t->type, &ty) && !sq_gguf_qtype_importable(t->type)) {
            st = sq_errorf(SQ_ERR_UNSUPPORTED,
                           "%s: tensor '%s' is %s; squish imports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K "
                           "and Q6_K GGUF tensors",
                           path, t->name, sq_ggml_type_name(t->type));
            goto fail;
        }
    }
    bool uses_rope_freqs = false;
    if ((st = read_config(&g, &out->cfg, &uses_rope_freqs))) goto fail;
    if ((st = read_tensors(&g, out, uses_rope_freqs))) goto fail;
    if ((st = read_vocab(&g, &out->vocab))) goto fail;
    if (!(out->source_format = sq_strdup("gguf"))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    if ((st = sq_checkpoint_add_source(out, path))) goto fail;
    st = sq_checkpoint_validate(out, path);
fail:
    free(arch);
    sq_gguf_close(f);
    if (st) sq_checkpoint_free(out);
    return st;
}

/* ===== Export ===== */

/* Buffers the exporter allocates and frees once the file is written. */
typedef struct {
    void **p;
    size_t n, cap;
} pool;

static void *pool_alloc(pool *pl, size_t bytes) {
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? 2 * pl->cap : 64;
        void **p = realloc(pl->p, cap * sizeof *p);
        if (!p) return NULL;
        pl->p = p;
        pl->cap = cap;
    }
    void *b = sq_alloc_aligned(bytes);
    if (b) pl->p[pl->n++] = b;
    return b;
}

static void pool_free(pool *pl) {
    for (size_t i = 0; i < pl->n; i++) free(pl->p[i]);
    free(pl->p);
}

/* general.file_type: the GGUF type holding the most matrix weights. */
_Static_assert(SQ_GGML_MXFP4 < SQ_GGML_TYPE_SLOTS, "every ggml type id has a slot");

static uint32_t file_type_of(const int64_t *weights /* per ggml type id */) {
    static const struct {
        uint32_t gtype, ftype;
    } map[] = {{SQ_GGML_F32, FTYPE_ALL_F32},     {SQ_GGML_F16, FTYPE_MOSTLY_F16},   {SQ_GGML_BF16, FTYPE_MOSTLY_BF16},
               {SQ_GGML_Q4_0, FTYPE_MOSTLY_Q4_0}, {SQ_GGML_Q4_1, FTYPE_MOSTLY_Q4_1}, {SQ_GGML_Q5_0, FTYPE_MOSTLY_Q5_0},
               {SQ_GGML_Q5_1, FTYPE_MOSTLY_Q5_1}, {SQ_GGML_Q8_0, FTYPE_MOSTLY_Q8_0}};
    uint32_t best = FTYPE_ALL_F32;
    int64_t most = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (weights[map[i].gtype] > most) {
            most = weights[map[i].gtype];
            best = map[i].ftype;
        }
    return best;
}

/* Llama-3 per-frequency divisors (FORMATS.md 2, as llama.cpp's converter computes them). */
static void llama3_divisors(const sq_config *k, float *out) {
    double orig = k->rope_orig_ctx, lo = k->rope_low_freq_factor, hi = k->rope_high_freq_factor;
    for (int32_t i = 0; i < k->head_dim / 2; i++) {
        double f = 1.0 / pow((double)k->rope_theta, 2.0 * i / k->head_dim), lam = 2.0 * M_PI / f, d;
        if (lam < orig / hi) d = 1.0;
        else if (lam > orig / lo) d = k->rope_factor;
        else {
            double smooth = (orig / lam - lo) / (hi - lo);
            d = 1.0 / ((1.0 - smooth) / k->rope_factor + smooth);
        }
        out[i] = (float)d;
    }
}

static sq_status write_vocab(sq_gguf_writer *w, const sq_vocab *v, int32_t vocab_size, pool *pl) {
    sq_status st;
    bool spm = v->kind == SQ_VOCAB_SPM;
    int32_t n = vocab_size > v->n_tokens ? vocab_size : v->n_tokens;
    const char **tok = pool_alloc(pl, (size_t)n * sizeof *tok);
    float *sc = pool_alloc(pl, (size_t)n * sizeof *sc);
    int32_t *ty = pool_alloc(pl, (size_t)n * sizeof *ty);
    char *pads = pool_alloc(pl, (size_t)(n - v->n_tokens) * 24 + 1);
    if (!tok || !sc || !ty || !pads) return sq_errorf(SQ_ERR_OOM, "out of memory writing the vocabulary");
    for (int32_t i = 0; i < n; i++) {
        if (i < v->n_tokens) {
            tok[i] = v->tokens[i];
            sc[i] = v->scores[i];
            ty[i] = v->types[i];
            continue;
        }
        /* llama.cpp's padding: SentencePiece [PAD1].. scored -1000, byte-level BPE [PAD<id>] */
        char *p = pads + (size_t)(i - v->n_tokens) * 24;
        snprintf(p, 24, "[PAD%d]", spm ? i - v->n_tokens + 1 : i);
        tok[i] = p;
        sc[i] = spm ? -1000.0f : 0.0f;
        ty[i] = SQ_TOKEN_UNUSED;
    }
    if ((st = sq_gguf_writer_add_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2"))) return st;
    if ((st = sq_gguf_writer_add_str(w, "tokenizer.ggml.pre", spm ? "default" : sq_pretok_name(v->pre)))) return st;
    if ((st = sq_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tok, (uint64_t)n))) return st;
    if (spm && (st = sq_gguf_writer_add_arr_f32(w, "tokenizer.ggml.scores", sc, (uint64_t)n))) return st;
    if ((st = sq_gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", ty, (uint64_t)n))) return st;
    if (!spm && (st = sq_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges,
                                                 (uint64_t)v->n_merges)))
        return st;
    static const char *const id_keys[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                           "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    const int32_t ids[4] = {v->bos_id, v->eos_id, v->unk_id, v->pad_id};
    for (int i = 0; i < 4; i++)
        if (ids[i] >= 0 && (st = sq_gguf_writer_add_u32(w, id_keys[i], (uint32_t)ids[i]))) return st;
    if ((st = sq_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos))) return st;
    if ((st = sq_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos))) return st;
    if (spm) {
        if ((st = sq_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", v->add_dummy_prefix))) return st;
        if ((st = sq_gguf_writer_add_bool(w, "tokenizer.ggml.remove_extra_whitespaces", v->remove_extra_whitespaces)))
            return st;
    }
    return SQ_OK;
}

static sq_status write_provenance(sq_gguf_writer *w, const sq_checkpoint *c, const sq_gguf_export_opts *o, pool *pl) {
    sq_status st;
    char tool[64];
    snprintf(tool, sizeof tool, "squish %s", sq_version());
    if ((st = sq_gguf_writer_add_str(w, "squish.tool_version", tool))) return st;
    if ((st = sq_gguf_writer_add_str(w, "squish.source_format", c->source_format ? c->source_format : "unknown")))
        return st;
    if (c->n_sources > 0) {
        const char **paths = pool_alloc(pl, (size_t)c->n_sources * sizeof *paths);
        const char **hashes = pool_alloc(pl, (size_t)c->n_sources * sizeof *hashes);
        if (!paths || !hashes) return sq_errorf(SQ_ERR_OOM, "out of memory");
        for (int32_t i = 0; i < c->n_sources; i++) {
            paths[i] = c->sources[i].path;
            hashes[i] = c->sources[i].sha256;
        }
        if ((st = sq_gguf_writer_add_arr_str(w, "squish.source.files", paths, (uint64_t)c->n_sources))) return st;
        if ((st = sq_gguf_writer_add_arr_str(w, "squish.source.sha256", hashes, (uint64_t)c->n_sources))) return st;
    }
    if (o && o->store_path && o->store_sha256) {
        if ((st = sq_gguf_writer_add_str(w, "squish.store", o->store_path))) return st;
        if ((st = sq_gguf_writer_add_str(w, "squish.store_sha256", o->store_sha256))) return st;
    }
    const sq_config *k = &c->cfg;
    if (k->rope_scaling == SQ_ROPE_SCALING_LLAMA3) {
        if ((st = sq_gguf_writer_add_str(w, "squish.rope.scaling.type", "llama3"))) return st;
        if ((st = sq_gguf_writer_add_f32(w, "squish.rope.scaling.factor", k->rope_factor))) return st;
        if ((st = sq_gguf_writer_add_f32(w, "squish.rope.scaling.low_freq_factor", k->rope_low_freq_factor))) return st;
        if ((st = sq_gguf_writer_add_f32(w, "squish.rope.scaling.high_freq_factor", k->rope_high_freq_factor)))
            return st;
        if ((st = sq_gguf_writer_add_u32(w, "squish.rope.scaling.original_context_length", (uint32_t)k->rope_orig_ctx)))
            return st;
    }
    return SQ_OK;
}

/* The GGUF type tensor s is written as: 1-D as F32, float matrices in their type,
 * quantized ones as sq_gguf_qtype_for says. */
static sq_status gguf_type_of(const char *path, const sq_checkpoint *c, const sq_tensor_spec *s, uint32_t *gt) {
    const sq_tensor *t = sq_checkpoint_find(c, s->name);
    if (s->n_dims == 1) {
        *gt = SQ_GGML_F32;
        return SQ_OK;
    }
    if (sq_type_is_quant(t->type)) {
        sq_status st = sq_gguf_qtype_for(t, gt);
        if (st) sq_error_prefix(path);
        return st;
    }
    if (!sq_ggml_from_sq(t->type, gt))
        return sq_errorf(SQ_ERR_UNSUPPORTED,
                         "%s: tensor '%s' is %s, which squish cannot write to GGUF (F32, F16, BF16 and the group-"
                         "quantized types; sparse tensors: export with --dense)",
                         path, s->name, sq_type_name(t->type));
    return SQ_OK;
}

/* One checkpoint tensor as GGUF type gt (gguf_type_of), q/k rows permuted when the layouts
 * differ (whole rows, so block rows too). */
static sq_status add_tensor(sq_gguf_writer *w, const char *path, const sq_checkpoint *c, const sq_tensor_spec *s,
                            uint32_t gt, bool permute, bool to_interleaved, pool *pl, sq_gguf_export_stats *stats) {
    const sq_tensor *t = sq_checkpoint_find(c, s->name);
    char name[96];
    gguf_name(s, name, sizeof name);
    const uint8_t *data = t->data;
    sq_type type = t->type;
    size_t nbytes = t->nbytes;
    if (s->n_dims == 1 && type != SQ_TYPE_F32) {
        nbytes = (size_t)s->shape[0] * sizeof(float);
        float *f = pool_alloc(pl, nbytes);
        if (!f) return sq_errorf(SQ_ERR_OOM, "%s: out of memory converting tensor '%s'", path, s->name);
        sq_status st = sq_convert_rows(f, SQ_TYPE_F32, data, type, s->shape[0]);
        if (st) {
            sq_error_prefix(path);
            return st;
        }
        data = (const uint8_t *)f;
    } else if (s->n_dims == 2 && sq_type_is_quant(type)) {
        const int64_t cols = s->shape[1];
        nbytes = sq_gguf_qrow_bytes(gt, cols) * (size_t)s->shape[0];
        uint8_t *b = pool_alloc(pl, nbytes);
        if (!b) return sq_errorf(SQ_ERR_OOM, "%s: out of memory encoding tensor '%s'", path, s->name);
        double err = 0.0;
        sq_status st = sq_gguf_encode_qtensor(t, gt, b, &err);
        if (st) {
            sq_error_prefix(path);
            return st;
        }
        data = b;
        if (stats) {
            stats->n_from_quant++;
            if (err > stats->max_abs_err) stats->max_abs_err = err;
        }
    }
    int32_t heads = rope_heads(&c->cfg, s->role);
    if (permute && heads > 0) {
        uint8_t *p = pool_alloc(pl, nbytes);
        if (!p) return sq_errorf(SQ_ERR_OOM, "%s: out of memory permuting tensor '%s'", path, s->name);
        permute_rows(p, data, heads, c->cfg.head_dim, nbytes / (size_t)s->shape[0], to_interleaved);
        data = p;
    }
    if (stats && s->n_dims == 2) stats->matrices[gt]++;
    if (stats) stats->tensor_bytes += (int64_t)nbytes;
    uint64_t ne[2] = {(uint64_t)(s->n_dims == 2 ? s->shape[1] : s->shape[0]), (uint64_t)s->shape[0]};
    return sq_gguf_writer_add_tensor(w, name, gt, (uint32_t)s->n_dims, ne, data, nbytes);
}

sq_status sq_export_gguf(const sq_checkpoint *c, const char *path, const sq_gguf_export_opts *opts) {
    sq_status st;
    sq_gguf_writer *w = NULL;
    sq_tensor_spec *spec = NULL;
    int32_t n_spec = 0;
    uint32_t *gtypes = NULL;
    pool pl = {0};
    char *name = NULL;
    const sq_config *k = &c->cfg;
    if ((st = sq_checkpoint_validate(c, path))) return st;
    bool qwen2 = strcmp(k->arch, "qwen2") == 0;
    if (!qwen2 && strcmp(k->arch, "llama") != 0 && strcmp(k->arch, "mistral") != 0)
        return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: architecture '%s' cannot be exported to GGUF", path, k->arch);
    if (qwen2 && (!k->attn_qkv_bias || k->attn_o_bias || k->mlp_bias))
        return sq_errorf(SQ_ERR_UNSUPPORTED,
                         "%s: llama.cpp's qwen2 needs q/k/v biases and no o_proj or MLP biases; this checkpoint has "
                         "qkv %s, o %s, mlp %s",
                         path, k->attn_qkv_bias ? "yes" : "no", k->attn_o_bias ? "yes" : "no", k->mlp_bias ? "yes" : "no");
    if (c->vocab.n_tokens <= 0) return sq_errorf(SQ_ERR_ARG, "%s: the checkpoint has no tokenizer", path);
    const char *arch = qwen2 ? "qwen2" : "llama";
    sq_rope_layout target = qwen2 ? SQ_ROPE_HALF : SQ_ROPE_INTERLEAVED;
    bool permute = k->rope_layout != target;

    /* general.name: given, else the output file's stem */
    if (opts && opts->name) {
        name = sq_strdup(opts->name);
    } else {
        const char *b = strrchr(path, '/');
        name = sq_strdup(b ? b + 1 : path);
        if (name && sq_str_ends_with(name, ".gguf")) name[strlen(name) - 5] = '\0';
    }
    if (!name) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    /* the GGUF type of every tensor first: general.file_type names the most common one */
    if ((st = sq_config_tensors(k, &spec, &n_spec))) {
        sq_error_prefix(path);
        goto fail;
    }
    if (!(gtypes = calloc((size_t)n_spec + 1, sizeof *gtypes))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    int64_t weights[SQ_GGML_TYPE_SLOTS] = {0};
    bool any_quant = false; /* a matrix written as a ggml block type */
    for (int32_t i = 0; i < n_spec; i++) {
        if ((st = gguf_type_of(path, c, &spec[i], &gtypes[i]))) goto fail;
        if (spec[i].n_dims != 2) continue;
        weights[gtypes[i]] += spec[i].shape[0] * spec[i].shape[1];
        if (!sq_ggml_to_sq(gtypes[i], &(sq_type){0})) any_quant = true;
    }
    if (opts && opts->stats) memset(opts->stats, 0, sizeof *opts->stats);
    if ((st = sq_gguf_writer_open(&w, path))) goto fail;
    char key[96];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
#define TRY(x) if ((st = (x))) goto fail
    TRY(sq_gguf_writer_add_str(w, "general.architecture", arch));
    TRY(sq_gguf_writer_add_str(w, "general.name", name));
    TRY(sq_gguf_writer_add_u32(w, "general.file_type", file_type_of(weights)));
    if (any_quant) TRY(sq_gguf_writer_add_u32(w, "general.quantization_version", 2));
    TRY(sq_gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)k->n_layers));
    TRY(sq_gguf_writer_add_u32(w, KEY("context_length"), (uint32_t)k->max_seq_len));
    TRY(sq_gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)k->dim));
    TRY(sq_gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)k->hidden_dim));
    TRY(sq_gguf_writer_add_u32(w, KEY("attention.head_count"), (uint32_t)k->n_heads));
    TRY(sq_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)k->n_kv_heads));
    TRY(sq_gguf_writer_add_f32(w, KEY("rope.freq_base"), k->rope_theta));
    TRY(sq_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), k->norm_eps));
    if (k->head_dim * k->n_heads != k->dim) {
        TRY(sq_gguf_writer_add_u32(w, KEY("attention.key_length"), (uint32_t)k->head_dim));
        TRY(sq_gguf_writer_add_u32(w, KEY("attention.value_length"), (uint32_t)k->head_dim));
    }
    TRY(sq_gguf_writer_add_u32(w, KEY("vocab_size"), (uint32_t)k->vocab_size));
    if (!qwen2) TRY(sq_gguf_writer_add_u32(w, KEY("rope.dimension_count"), (uint32_t)k->head_dim));
    if (k->rope_scaling == SQ_ROPE_SCALING_LINEAR) {
        TRY(sq_gguf_writer_add_str(w, KEY("rope.scaling.type"), "linear"));
        TRY(sq_gguf_writer_add_f32(w, KEY("rope.scaling.factor"), k->rope_factor));
    }
#undef KEY
    TRY(write_vocab(w, &c->vocab, k->vocab_size, &pl));
    TRY(write_provenance(w, c, opts, &pl));

    if (k->rope_scaling == SQ_ROPE_SCALING_LLAMA3) {
        float *div = pool_alloc(&pl, (size_t)(k->head_dim / 2) * sizeof(float));
        if (!div) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
            goto fail;
        }
        llama3_divisors(k, div);
        uint64_t ne = (uint64_t)(k->head_dim / 2);
        TRY(sq_gguf_writer_add_tensor(w, "rope_freqs.weight", SQ_GGML_F32, 1, &ne, div, ne * sizeof(float)));
        if (opts && opts->stats) opts->stats->tensor_bytes += (int64_t)(ne * sizeof(float));
    }
    for (int32_t i = 0; i < n_spec; i++)
        TRY(add_tensor(w, path, c, &spec[i], gtypes[i], permute, target == SQ_ROPE_INTERLEAVED, &pl,
                       opts ? opts->stats : NULL));
#undef TRY
    st = sq_gguf_writer_finish(w);
fail:
    sq_gguf_writer_close(w);
    free(spec);
    free(gtypes);
    free(name);
    pool_free(&pl);
    return st;
}
