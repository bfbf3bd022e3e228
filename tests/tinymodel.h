/* tinymodel.h - header-only helpers that synthesize tiny random-weight Llama-family
 * checkpoints for tests, and put them on disk in every format squish imports.
 *
 *   sq_tiny_spec s = sq_tiny_spec_default();        // 2 layers, dim 64, GQA 4/2, vocab 512
 *   s.type = SQ_TYPE_BF16; s.tied = true;           // ... adjust (s.bpe: byte-level vocab)
 *   sq_checkpoint c;
 *   sq_tiny_checkpoint(&s, &c);                     // config + tiny vocab + random weights
 *   sq_tiny_write_hf(&c, dir, 0);                   // config.json, model.safetensors (or
 *                                                   // n shards + index), tokenizer.model or
 *                                                   // tokenizer.json, tokenizer_config.json
 *   sq_tiny_write_llama2c(&c, "dir/m.bin", 2);      // llama2.c v0/v1/v2 + dir/tokenizer.bin
 *   sq_tiny_checkpoint_equal(&c, &imported, true, why, sizeof why);
 *   sq_checkpoint_free(&c);
 *
 * Everything is deterministic in spec.seed. The default vocabulary is SentencePiece-style
 * BPE built in code: <unk> <s> </s>, the 256 <0xHH> byte pieces, "▁", printable ASCII,
 * common English merges, then "▁tokN" fillers up to the size asked for; with spec.bpe it
 * is byte-level BPE (GPT-2 byte map, ~30 merges, "<|endoftext|>" last). Each vocabulary
 * equals what squish's readers return for the file written from it. Writers produce files
 * that are *semantically* the checkpoint: HF q/k rows are written rotate-half and llama2.c
 * rows interleaved, permuted (FORMATS.md 3) when the checkpoint's rope_layout differs, so
 * a forward pass of any import computes the same function. Functions return sq_status
 * with a message, like the library; all are static inline (no unused-function warnings).
 */
#ifndef SQ_TINYMODEL_H
#define SQ_TINYMODEL_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/checkpoint.h"
#include "../core/safetensors.h"
#include "../core/util.h"

/* ===== Spec ===== */

typedef struct {
    const char *arch;      /* "llama" | "mistral" | "qwen2" */
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads;
    int32_t head_dim;      /* 0: dim / n_heads */
    int32_t vocab_size;    /* embedding rows */
    int32_t n_tokens;      /* tokenizer size, <= vocab_size; 0: vocab_size */
    int32_t max_seq_len;
    sq_type type;          /* storage type of every tensor: F32, F16 or BF16 */
    bool tied;             /* no lm_head: the embedding is the output matrix */
    bool qkv_bias, o_bias, mlp_bias;
    sq_rope_layout rope_layout;
    float rope_theta, norm_eps;
    bool bpe;              /* byte-level BPE vocabulary (tokenizer.json) instead of SentencePiece */
    uint64_t seed;
} sq_tiny_spec;

static inline sq_tiny_spec sq_tiny_spec_default(void) {
    sq_tiny_spec s;
    memset(&s, 0, sizeof s);
    s.arch = "llama";
    s.dim = 64;
    s.hidden_dim = 96;
    s.n_layers = 2;
    s.n_heads = 4;
    s.n_kv_heads = 2;
    s.vocab_size = 512;
    s.max_seq_len = 128;
    s.type = SQ_TYPE_F32;
    s.rope_layout = SQ_ROPE_HALF;
    s.rope_theta = 10000.0f;
    s.norm_eps = 1e-5f;
    s.seed = 42;
    return s;
}

/* ===== Random numbers (splitmix64) ===== */

static inline uint64_t sq_tiny_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float sq_tiny_uniform(uint64_t *state) {
    return (float)((double)(sq_tiny_rand(state) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* ===== Vocabulary ===== */

static const char *const sq_tiny_merges[] = {
    "▁t", "he", "▁a", "in", "er", "an", "▁s", "▁w", "on", "▁the", "nd", "re", "at", "ou", "ed", "▁h", "en", "it",
    "▁b", "is", "▁o", "▁f", "▁c", "▁and", "ing", "▁m", "or", "▁p", "es", "▁l", "▁d", "ll", "ar", "as", "▁to",
    "▁was", "▁he", "▁in", "om", "ay", "▁T", "▁I", "ow", "ut", "▁of", "▁it", "ion", "▁she", "▁S", "id",
};

/* Fills v with n_tokens pieces (n_tokens >= 3). The caller frees it with sq_vocab_free. */
static inline sq_status sq_tiny_vocab(sq_vocab *v, int32_t n_tokens) {
    memset(v, 0, sizeof *v);
    if (n_tokens < 3) return sq_errorf(SQ_ERR_ARG, "tiny vocab: %d tokens is too few", n_tokens);
    v->tokens = calloc((size_t)n_tokens, sizeof *v->tokens);
    v->scores = calloc((size_t)n_tokens, sizeof *v->scores);
    v->types = calloc((size_t)n_tokens, sizeof *v->types);
    if (!v->tokens || !v->scores || !v->types) goto oom;
    v->n_tokens = n_tokens;
    for (int32_t i = 0; i < n_tokens; i++) {
        char buf[64];
        int32_t type = SQ_TOKEN_NORMAL, k = i;
        float score = 0.0f;
        if (k < 3) {
            static const char *const sp[3] = {"<unk>", "<s>", "</s>"};
            snprintf(buf, sizeof buf, "%s", sp[k]);
            type = k == 0 ? SQ_TOKEN_UNKNOWN : SQ_TOKEN_CONTROL;
        } else if ((k -= 3) < 256) {
            snprintf(buf, sizeof buf, "<0x%02X>", k);
            type = SQ_TOKEN_BYTE;
        } else if ((k -= 256) < 1 + 94) {
            if (k == 0) snprintf(buf, sizeof buf, "\xE2\x96\x81"); /* "▁" */
            else snprintf(buf, sizeof buf, "%c", (char)(0x20 + k)); /* '!'..'~' */
            score = -1000.0f - (float)k;                            /* single characters merge last */
        } else if ((k -= 95) < (int32_t)(sizeof sq_tiny_merges / sizeof sq_tiny_merges[0])) {
            snprintf(buf, sizeof buf, "%s", sq_tiny_merges[k]);
            score = -(float)k;
        } else {
            snprintf(buf, sizeof buf, "\xE2\x96\x81tok%d", i);
            score = -100.0f - (float)k;
        }
        if (!(v->tokens[i] = sq_strdup(buf))) goto oom;
        v->scores[i] = score;
        v->types[i] = type;
    }
    v->kind = SQ_VOCAB_SPM;
    v->pre = SQ_PRE_DEFAULT;
    v->unk_id = 0;
    v->bos_id = 1;
    v->eos_id = 2;
    v->pad_id = -1;
    v->add_bos = true;
    v->add_eos = false;
    v->add_dummy_prefix = true;
    v->remove_extra_whitespaces = false;
    v->byte_fallback = true;
    return SQ_OK;
oom:
    sq_vocab_free(v);
    return sq_errorf(SQ_ERR_OOM, "tiny vocab: out of memory");
}


/* GPT-2's byte-to-unicode map (FORMATS.md 4.2): printable bytes map to themselves, the
 * other 68 in byte order to U+0100, U+0101, ... Writes the UTF-8 form into out[3]. */
static inline void sq_tiny_byte_char(int b, char out[3]) {
#define SQ_TINY_PRINTABLE(x) (((x) >= 0x21 && (x) <= 0x7E) || ((x) >= 0xA1 && (x) <= 0xAC) || ((x) >= 0xAE && (x) <= 0xFF))
    uint32_t cp = (uint32_t)b;
    if (!SQ_TINY_PRINTABLE(b)) {
        cp = 256;
        for (int x = 0; x < b; x++) cp += !SQ_TINY_PRINTABLE(x);
    }
#undef SQ_TINY_PRINTABLE
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = '\0';
    }
}

/* Merges of the tiny byte-level vocabulary, in rank order ("Ġ" is a space). */
static const char *const sq_tiny_bpe_merges[][2] = {
    {"Ġ", "t"}, {"h", "e"},   {"Ġt", "he"}, {"i", "n"},  {"e", "r"},  {"a", "n"},   {"Ġ", "a"},  {"o", "n"},
    {"r", "e"}, {"Ġ", "s"},   {"n", "d"},   {"Ġa", "nd"}, {"Ġ", "w"}, {"a", "s"},   {"Ġw", "as"}, {"o", "u"},
    {"Ġ", "h"}, {"Ġh", "e"},  {"i", "t"},   {"Ġ", "i"},  {"Ġi", "t"}, {"Ġi", "n"},  {"e", "d"},  {"Ġ", "o"},
    {"Ġo", "n"}, {"Ġ", "b"}, {"Ġ", "c"},    {"Ġ", "m"},  {"n", "g"},  {"in", "g"},  {"Ġ", "d"},
};

/* A byte-level BPE vocabulary of n_tokens tokens, as sq_vocab_read_hf_json reads the file
 * sq_tiny_write_tokenizer_json writes: the 256 byte characters, one token per merge,
 * "Ġtok<i>" fillers, and "<|endoftext|>" (the last id) as BOS and EOS, not added. */
static inline sq_status sq_tiny_bpe_vocab(sq_vocab *v, int32_t n_tokens) {
    const int32_t nm = (int32_t)(sizeof sq_tiny_bpe_merges / sizeof sq_tiny_bpe_merges[0]);
    memset(v, 0, sizeof *v);
    if (n_tokens < 256 + nm + 1) return sq_errorf(SQ_ERR_ARG, "tiny BPE vocab needs >= %d tokens", 256 + nm + 1);
    v->tokens = calloc((size_t)n_tokens, sizeof *v->tokens);
    v->scores = calloc((size_t)n_tokens, sizeof *v->scores);
    v->types = calloc((size_t)n_tokens, sizeof *v->types);
    v->merges = calloc((size_t)nm, sizeof *v->merges);
    if (!v->tokens || !v->scores || !v->types || !v->merges) goto oom;
    v->n_tokens = n_tokens;
    v->n_merges = nm;
    for (int32_t i = 0; i < n_tokens; i++) {
        char buf[64];
        if (i < 256) sq_tiny_byte_char(i, buf);
        else if (i < 256 + nm) snprintf(buf, sizeof buf, "%s%s", sq_tiny_bpe_merges[i - 256][0], sq_tiny_bpe_merges[i - 256][1]);
        else if (i < n_tokens - 1) snprintf(buf, sizeof buf, "\xC4\xA0tok%d", i);
        else snprintf(buf, sizeof buf, "<|endoftext|>");
        if (!(v->tokens[i] = sq_strdup(buf))) goto oom;
        v->types[i] = i == n_tokens - 1 ? SQ_TOKEN_CONTROL : SQ_TOKEN_NORMAL;
    }
    for (int32_t r = 0; r < nm; r++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s %s", sq_tiny_bpe_merges[r][0], sq_tiny_bpe_merges[r][1]);
        if (!(v->merges[r] = sq_strdup(buf))) goto oom;
    }
    v->kind = SQ_VOCAB_BPE;
    v->pre = SQ_PRE_GPT2;
    v->unk_id = v->pad_id = -1;
    v->bos_id = v->eos_id = n_tokens - 1;
    return SQ_OK;
oom:
    sq_vocab_free(v);
    return sq_errorf(SQ_ERR_OOM, "tiny BPE vocab: out of memory");
}

/* ===== Checkpoint ===== */

/* Adds one tensor with random values: norms near 1, biases small, matrices ~ U(-1,1)/sqrt(in). */
static inline sq_status sq_tiny_add_tensor(sq_checkpoint *c, const char *name, int32_t n_dims, int64_t rows,
                                           int64_t cols, sq_type type, int kind, uint64_t *rng) {
    sq_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.n_dims = n_dims;
    t.shape[0] = rows;
    t.shape[1] = n_dims == 2 ? cols : 0;
    int64_t n = n_dims == 2 ? rows * cols : rows;
    t.nbytes = sq_tensor_expected_bytes(type, n_dims, t.shape);
    t.name = sq_strdup(name);
    t.data = malloc(t.nbytes ? t.nbytes : 1);
    float *tmp = malloc((size_t)n * sizeof(float));
    t.owns_data = true;
    if (!t.name || !t.data || !tmp) {
        free(tmp);
        sq_tensor_release(&t);
        return sq_errorf(SQ_ERR_OOM, "tiny model: out of memory");
    }
    float scale = kind == 2 ? 1.0f / sqrtf((float)cols) : 0.1f;
    for (int64_t i = 0; i < n; i++) tmp[i] = (kind == 0 ? 1.0f : 0.0f) + scale * sq_tiny_uniform(rng);
    sq_status st = sq_convert_rows(t.data, type, tmp, SQ_TYPE_F32, n);
    free(tmp);
    if (st == SQ_OK) st = sq_checkpoint_add(c, &t);
    if (st != SQ_OK) sq_tensor_release(&t);
    return st;
}

/* The config a spec describes. */
static inline sq_config sq_tiny_config(const sq_tiny_spec *s) {
    sq_config k;
    memset(&k, 0, sizeof k);
    snprintf(k.arch, sizeof k.arch, "%s", s->arch ? s->arch : "llama");
    k.dim = s->dim;
    k.hidden_dim = s->hidden_dim;
    k.n_layers = s->n_layers;
    k.n_heads = s->n_heads;
    k.n_kv_heads = s->n_kv_heads;
    k.head_dim = s->head_dim ? s->head_dim : s->dim / s->n_heads;
    k.vocab_size = s->vocab_size;
    k.max_seq_len = s->max_seq_len;
    k.norm_eps = s->norm_eps;
    k.rope_theta = s->rope_theta;
    k.rope_layout = s->rope_layout;
    k.rope_scaling = SQ_ROPE_SCALING_NONE;
    k.rope_factor = 1.0f;
    k.tied_embeddings = s->tied;
    k.attn_qkv_bias = s->qkv_bias;
    k.attn_o_bias = s->o_bias;
    k.mlp_bias = s->mlp_bias;
    return k;
}

/* A complete checkpoint (config, vocab, tensors in canonical order). Free with
 * sq_checkpoint_free. */
static inline sq_status sq_tiny_checkpoint(const sq_tiny_spec *s, sq_checkpoint *c) {
    sq_status st;
    char name[SQ_MAX_NAME];
    uint64_t rng = s->seed;
    memset(c, 0, sizeof *c);
    c->cfg = sq_tiny_config(s);
    if ((st = sq_config_validate(&c->cfg, "tiny model")) != SQ_OK) return st;
    int32_t n_tok = s->n_tokens ? s->n_tokens : s->vocab_size;
    if ((st = s->bpe ? sq_tiny_bpe_vocab(&c->vocab, n_tok) : sq_tiny_vocab(&c->vocab, n_tok)) != SQ_OK) goto fail;
    if (!(c->source_format = sq_strdup("tiny"))) {
        st = sq_errorf(SQ_ERR_OOM, "tiny model: out of memory");
        goto fail;
    }
    const sq_config *k = &c->cfg;
    int64_t q = (int64_t)k->n_heads * k->head_dim, kv = (int64_t)k->n_kv_heads * k->head_dim;
    sq_type ty = s->type;
#define T2(r, cl, kind, ...) snprintf(name, sizeof name, __VA_ARGS__); \
    if ((st = sq_tiny_add_tensor(c, name, 2, r, cl, ty, kind, &rng)) != SQ_OK) goto fail;
#define T1(r, kind, ...) snprintf(name, sizeof name, __VA_ARGS__); \
    if ((st = sq_tiny_add_tensor(c, name, 1, r, 0, ty, kind, &rng)) != SQ_OK) goto fail;
    T2(k->vocab_size, k->dim, 2, "model.embed_tokens.weight")
    for (int32_t l = 0; l < k->n_layers; l++) {
        T1(k->dim, 0, "model.layers.%d.input_layernorm.weight", l)
        T2(q, k->dim, 2, "model.layers.%d.self_attn.q_proj.weight", l)
        if (k->attn_qkv_bias) { T1(q, 1, "model.layers.%d.self_attn.q_proj.bias", l) }
        T2(kv, k->dim, 2, "model.layers.%d.self_attn.k_proj.weight", l)
        if (k->attn_qkv_bias) { T1(kv, 1, "model.layers.%d.self_attn.k_proj.bias", l) }
        T2(kv, k->dim, 2, "model.layers.%d.self_attn.v_proj.weight", l)
        if (k->attn_qkv_bias) { T1(kv, 1, "model.layers.%d.self_attn.v_proj.bias", l) }
        T2(k->dim, q, 2, "model.layers.%d.self_attn.o_proj.weight", l)
        if (k->attn_o_bias) { T1(k->dim, 1, "model.layers.%d.self_attn.o_proj.bias", l) }
        T1(k->dim, 0, "model.layers.%d.post_attention_layernorm.weight", l)
        T2(k->hidden_dim, k->dim, 2, "model.layers.%d.mlp.gate_proj.weight", l)
        if (k->mlp_bias) { T1(k->hidden_dim, 1, "model.layers.%d.mlp.gate_proj.bias", l) }
        T2(k->hidden_dim, k->dim, 2, "model.layers.%d.mlp.up_proj.weight", l)
        if (k->mlp_bias) { T1(k->hidden_dim, 1, "model.layers.%d.mlp.up_proj.bias", l) }
        T2(k->dim, k->hidden_dim, 2, "model.layers.%d.mlp.down_proj.weight", l)
        if (k->mlp_bias) { T1(k->dim, 1, "model.layers.%d.mlp.down_proj.bias", l) }
    }
    T1(k->dim, 0, "model.norm.weight")
    if (!k->tied_embeddings) { T2(k->vocab_size, k->dim, 2, "lm_head.weight") }
#undef T1
#undef T2
    return SQ_OK;
fail:
    sq_checkpoint_free(c);
    return st;
}

/* ===== RoPE row permutation (FORMATS.md 3) =====
 * HF row h*d + t*(d/2) + i  ==  Meta row h*d + 2i + t. Moves whole rows of row_bytes. */
static inline void sq_tiny_permute_rows(void *dst, const void *src, int32_t n_heads, int32_t head_dim,
                                        size_t row_bytes, bool to_interleaved) {
    for (int32_t h = 0; h < n_heads; h++)
        for (int32_t t = 0; t < 2; t++)
            for (int32_t i = 0; i < head_dim / 2; i++) {
                size_t hf = (size_t)h * (size_t)head_dim + (size_t)t * (size_t)(head_dim / 2) + (size_t)i;
                size_t meta = (size_t)h * (size_t)head_dim + 2u * (size_t)i + (size_t)t;
                size_t from = to_interleaved ? hf : meta, to = to_interleaved ? meta : hf;
                memcpy((char *)dst + to * row_bytes, (const char *)src + from * row_bytes, row_bytes);
            }
}

/* Copy of tensor t (owned data) with q/k rows permuted when name is a q/k weight or bias
 * and the layouts differ; otherwise a plain copy. */
static inline sq_status sq_tiny_copy_for_layout(const sq_checkpoint *c, const sq_tensor *t, sq_rope_layout want,
                                                sq_tensor *out) {
    *out = *t;
    out->name = sq_strdup(t->name);
    out->data = malloc(t->nbytes ? t->nbytes : 1);
    out->owns_data = true;
    if (!out->name || !out->data) {
        sq_tensor_release(out);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    bool is_q = strstr(t->name, ".q_proj.") != NULL, is_k = strstr(t->name, ".k_proj.") != NULL;
    if ((is_q || is_k) && c->cfg.rope_layout != want) {
        int32_t heads = is_q ? c->cfg.n_heads : c->cfg.n_kv_heads;
        size_t row = t->nbytes / (size_t)t->shape[0];
        sq_tiny_permute_rows(out->data, t->data, heads, c->cfg.head_dim, row, want == SQ_ROPE_INTERLEAVED);
    } else {
        memcpy(out->data, t->data, t->nbytes);
    }
    return SQ_OK;
}

/* ===== Small file helpers ===== */

static inline sq_status sq_tiny_write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return sq_errorf(SQ_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(data, 1, n, fp) == n;
    ok = fclose(fp) == 0 && ok;
    return ok ? SQ_OK : sq_errorf(SQ_ERR_IO, "%s: write failed", path);
}

static inline sq_status sq_tiny_mkdir(const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return sq_errorf(SQ_ERR_IO, "%s: mkdir: %s", dir, strerror(errno));
    return SQ_OK;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} sq_tiny_buf;

static inline void sq_tiny_put(sq_tiny_buf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

static inline void sq_tiny_printf(sq_tiny_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sq_tiny_printf(sq_tiny_buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sq_tiny_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ===== SentencePiece tokenizer.model (protobuf ModelProto, FORMATS.md 4.3) ===== */

static inline void sq_tiny_varint(sq_tiny_buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    sq_tiny_put(b, tmp, n);
}

static inline void sq_tiny_pb_key(sq_tiny_buf *b, uint32_t field, uint32_t wire) {
    sq_tiny_varint(b, (uint64_t)field << 3 | wire);
}

static inline void sq_tiny_pb_bytes(sq_tiny_buf *b, uint32_t field, const void *d, size_t n) {
    sq_tiny_pb_key(b, field, 2);
    sq_tiny_varint(b, n);
    sq_tiny_put(b, d, n);
}

/* int32 fields: negative values are sign-extended to 64 bits (ten bytes). */
static inline void sq_tiny_pb_int(sq_tiny_buf *b, uint32_t field, int64_t v) {
    sq_tiny_pb_key(b, field, 0);
    sq_tiny_varint(b, (uint64_t)v);
}

/* Writes v as a BPE SentencePiece model (byte fallback, identity normalizer). */
static inline sq_status sq_tiny_write_spm(const sq_vocab *v, const char *path) {
    sq_tiny_buf out = {0}, msg = {0};
    for (int32_t i = 0; i < v->n_tokens; i++) {
        msg.n = 0;
        sq_tiny_pb_bytes(&msg, 1, v->tokens[i], strlen(v->tokens[i]));
        sq_tiny_pb_key(&msg, 2, 5);
        uint32_t u;
        memcpy(&u, &v->scores[i], 4);
        uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        sq_tiny_put(&msg, le, 4);
        sq_tiny_pb_int(&msg, 3, v->types[i]);
        sq_tiny_pb_bytes(&out, 1, msg.p, msg.n);
    }
    msg.n = 0; /* trainer_spec */
    sq_tiny_pb_int(&msg, 3, 2); /* BPE */
    sq_tiny_pb_int(&msg, 4, v->n_tokens);
    sq_tiny_pb_int(&msg, 35, v->byte_fallback);
    sq_tiny_pb_int(&msg, 40, v->unk_id);
    sq_tiny_pb_int(&msg, 41, v->bos_id);
    sq_tiny_pb_int(&msg, 42, v->eos_id);
    sq_tiny_pb_int(&msg, 43, v->pad_id);
    sq_tiny_pb_bytes(&out, 2, msg.p, msg.n);
    msg.n = 0; /* normalizer_spec */
    sq_tiny_pb_bytes(&msg, 1, "identity", 8);
    sq_tiny_pb_int(&msg, 3, v->add_dummy_prefix);
    sq_tiny_pb_int(&msg, 4, v->remove_extra_whitespaces);
    sq_tiny_pb_int(&msg, 5, 1);
    sq_tiny_pb_bytes(&out, 3, msg.p, msg.n);
    sq_status st = out.oom || msg.oom ? sq_errorf(SQ_ERR_OOM, "%s: out of memory", path)
                                      : sq_tiny_write_file(path, out.p, out.n);
    free(out.p);
    free(msg.p);
    return st;
}


/* ===== Hugging Face tokenizer.json (byte-level BPE, GPT-2 pre-tokenizer) ===== */

static inline void sq_tiny_json_str(sq_tiny_buf *b, const char *s) {
    sq_tiny_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            char e[2] = {'\\', *s};
            sq_tiny_put(b, e, 2);
        } else if ((unsigned char)*s < 0x20) {
            sq_tiny_printf(b, "\\u%04x", (unsigned char)*s);
        } else {
            sq_tiny_put(b, s, 1);
        }
    }
    sq_tiny_put(b, "\"", 1);
}

/* Writes a BPE vocabulary (kind SQ_VOCAB_BPE, merges "a b") as tokenizer.json with a
 * ByteLevel pre-tokenizer and decoder; control tokens become special added tokens. */
static inline sq_status sq_tiny_write_tokenizer_json(const sq_vocab *v, const char *path) {
    sq_tiny_buf b = {0};
    sq_tiny_printf(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    bool first = true;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (v->types[i] != SQ_TOKEN_CONTROL) continue;
        sq_tiny_printf(&b, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", i);
        sq_tiny_json_str(&b, v->tokens[i]);
        sq_tiny_printf(&b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
                           "\"special\": true}");
        first = false;
    }
    sq_tiny_printf(&b, "\n  ],\n  \"normalizer\": null,\n"
                       "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
                       "true, \"use_regex\": true},\n"
                       "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": "
                       "false, \"use_regex\": true},\n"
                       "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, "
                       "\"use_regex\": true},\n"
                       "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
                       "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, "
                       "\"byte_fallback\": false,\n    \"vocab\": {");
    for (int32_t i = 0; i < v->n_tokens; i++) {
        sq_tiny_printf(&b, "%s\n      ", i ? "," : "");
        sq_tiny_json_str(&b, v->tokens[i]);
        sq_tiny_printf(&b, ": %d", i);
    }
    sq_tiny_printf(&b, "\n    },\n    \"merges\": [");
    for (int32_t r = 0; r < v->n_merges; r++) {
        sq_tiny_printf(&b, "%s\n      ", r ? "," : "");
        sq_tiny_json_str(&b, v->merges[r]);
    }
    sq_tiny_printf(&b, "\n    ]\n  }\n}\n");
    sq_status st = b.oom ? sq_errorf(SQ_ERR_OOM, "%s: out of memory", path) : sq_tiny_write_file(path, b.p, b.n);
    free(b.p);
    return st;
}

/* ===== Hugging Face directory ===== */

/* config.json text for cfg (malloc'ed, NULL on OOM). head_dim is written only when it
 * differs from dim / n_heads; attention_bias (Llama/Mistral) = q/k/v or o bias. */
static inline char *sq_tiny_config_json(const sq_config *k) {
    sq_tiny_buf b = {0};
    const char *cls = strcmp(k->arch, "qwen2") == 0     ? "Qwen2ForCausalLM"
                      : strcmp(k->arch, "mistral") == 0 ? "MistralForCausalLM"
                                                        : "LlamaForCausalLM";
    sq_tiny_printf(&b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", cls, k->arch);
    sq_tiny_printf(&b, "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n", k->dim,
                   k->hidden_dim, k->n_layers);
    sq_tiny_printf(&b, "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n", k->n_heads, k->n_kv_heads);
    if (k->head_dim * k->n_heads != k->dim) sq_tiny_printf(&b, "  \"head_dim\": %d,\n", k->head_dim);
    sq_tiny_printf(&b, "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n", k->vocab_size, k->max_seq_len);
    sq_tiny_printf(&b, "  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n  \"hidden_act\": \"silu\",\n",
                   (double)k->norm_eps, (double)k->rope_theta);
    if (k->rope_scaling == SQ_ROPE_SCALING_LINEAR)
        sq_tiny_printf(&b, "  \"rope_scaling\": {\"type\": \"linear\", \"factor\": %.9g},\n", (double)k->rope_factor);
    else if (k->rope_scaling == SQ_ROPE_SCALING_LLAMA3)
        sq_tiny_printf(&b,
                       "  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %.9g, \"low_freq_factor\": %.9g, "
                       "\"high_freq_factor\": %.9g, \"original_max_position_embeddings\": %d},\n",
                       (double)k->rope_factor, (double)k->rope_low_freq_factor, (double)k->rope_high_freq_factor,
                       k->rope_orig_ctx);
    else
        sq_tiny_printf(&b, "  \"rope_scaling\": null,\n");
    if (strcmp(k->arch, "qwen2") != 0)
        sq_tiny_printf(&b, "  \"attention_bias\": %s,\n", k->attn_qkv_bias || k->attn_o_bias ? "true" : "false");
    sq_tiny_printf(&b, "  \"mlp_bias\": %s,\n", k->mlp_bias ? "true" : "false");
    sq_tiny_printf(&b, "  \"tie_word_embeddings\": %s,\n", k->tied_embeddings ? "true" : "false");
    sq_tiny_printf(&b, "  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n  \"torch_dtype\": \"float32\"\n}\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return (char *)b.p;
}

static inline int sq_tiny_cmp_name(const void *a, const void *b) {
    return strcmp(((const sq_tensor *)a)->name, ((const sq_tensor *)b)->name);
}

/* Writes c as a Hugging Face directory (created if missing): config.json, tokenizer.model
 * (SPM vocab; tokenizer_config.json with add_bos_token true) or tokenizer.json (BPE vocab;
 * tokenizer_config.json naming BOS/EOS), and the weights sorted by name (as the
 * reference writer orders them) in model.safetensors, or, with n_shards > 1, in
 * model-0000i-of-0000n.safetensors plus model.safetensors.index.json. q/k rows are
 * written in rotate-half layout. */
static inline sq_status sq_tiny_write_hf(const sq_checkpoint *c, const char *dir, int n_shards) {
    sq_status st;
    sq_tensor *ts = NULL;
    char *cfg = NULL, path[1024];
    sq_tiny_buf idx = {0};
    int32_t n = c->n_tensors;
    if ((st = sq_tiny_mkdir(dir)) != SQ_OK) return st;
    if (!(cfg = sq_tiny_config_json(&c->cfg))) return sq_errorf(SQ_ERR_OOM, "out of memory");
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((st = sq_tiny_write_file(path, cfg, strlen(cfg))) != SQ_OK) goto fail;
    bool bpe = c->vocab.kind == SQ_VOCAB_BPE;
    snprintf(path, sizeof path, "%s/%s", dir, bpe ? "tokenizer.json" : "tokenizer.model");
    if ((st = bpe ? sq_tiny_write_tokenizer_json(&c->vocab, path) : sq_tiny_write_spm(&c->vocab, path)) != SQ_OK)
        goto fail;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    static const char tcfg_spm[] = "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n"
                                   "  \"tokenizer_class\": \"LlamaTokenizer\"\n}\n";
    static const char tcfg_bpe[] = "{\n  \"add_bos_token\": false,\n  \"add_eos_token\": false,\n"
                                   "  \"bos_token\": \"<|endoftext|>\",\n  \"eos_token\": \"<|endoftext|>\",\n"
                                   "  \"tokenizer_class\": \"GPT2Tokenizer\"\n}\n";
    if ((st = sq_tiny_write_file(path, bpe ? tcfg_bpe : tcfg_spm, strlen(bpe ? tcfg_bpe : tcfg_spm))) != SQ_OK)
        goto fail;
    ts = calloc((size_t)n + 1, sizeof *ts);
    if (!ts) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < n; i++)
        if ((st = sq_tiny_copy_for_layout(c, &c->tensors[i], SQ_ROPE_HALF, &ts[i])) != SQ_OK) goto fail;
    qsort(ts, (size_t)n, sizeof *ts, sq_tiny_cmp_name);
    static const char *const meta[] = {"format", "pt", NULL};
    if (n_shards <= 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = sq_safetensors_write(path, ts, n, meta);
        goto fail;
    }
    sq_tiny_printf(&idx, "{\n  \"metadata\": {\"total_size\": 0},\n  \"weight_map\": {\n");
    int32_t per = (n + n_shards - 1) / n_shards;
    for (int s = 0; s < n_shards; s++) {
        int32_t lo = s * per, hi = lo + per < n ? lo + per : n;
        char fname[64];
        snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        snprintf(path, sizeof path, "%s/%s", dir, fname);
        if ((st = sq_safetensors_write(path, ts + lo, hi > lo ? hi - lo : 0, meta)) != SQ_OK) goto fail;
        for (int32_t i = lo; i < hi; i++)
            sq_tiny_printf(&idx, "    \"%s\": \"%s\"%s\n", ts[i].name, fname, i + 1 < n ? "," : "");
    }
    sq_tiny_printf(&idx, "  }\n}\n");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    st = idx.oom ? sq_errorf(SQ_ERR_OOM, "out of memory") : sq_tiny_write_file(path, idx.p, idx.n);
fail:
    if (ts)
        for (int32_t i = 0; i < n; i++) sq_tensor_release(&ts[i]);
    free(ts);
    free(cfg);
    free(idx.p);
    return st;
}

/* ===== llama2.c (FORMATS.md 5) ===== */

/* export.py's Q8_0 group size: 64, halved until it divides dim. */
static inline int32_t sq_tiny_llama2c_group_size(int32_t dim) {
    int32_t gs = 64;
    while (dim % gs != 0) gs /= 2;
    return gs;
}

/* Quantizes w[n] to int8 codes q and one scale per group as export.py does
 * (scale = max|w| / 127, q = round(w / scale)). */
static inline void sq_tiny_q80(const float *w, int64_t n, int32_t gs, int8_t *q, float *scales) {
    for (int64_t g = 0; g < n / gs; g++) {
        float wmax = 0.0f;
        for (int32_t j = 0; j < gs; j++) wmax = fmaxf(wmax, fabsf(w[g * gs + j]));
        float scale = wmax / 127.0f;
        scales[g] = scale;
        for (int32_t j = 0; j < gs; j++) q[g * gs + j] = (int8_t)(scale > 0.0f ? roundf(w[g * gs + j] / scale) : 0.0f);
    }
}

/* Replaces w[n] by what a v2 file stores for it: code * scale in fp32. */
static inline void sq_tiny_q80_roundtrip(float *w, int64_t n, int32_t gs) {
    int8_t *q = malloc((size_t)n);
    float *s = malloc((size_t)(n / gs + 1) * sizeof(float));
    if (!q || !s) abort();
    sq_tiny_q80(w, n, gs, q, s);
    for (int64_t i = 0; i < n; i++) w[i] = (float)q[i] * s[i / gs];
    free(q);
    free(s);
}

/* Writes v as llama2.c tokenizer.bin (tokenizer.py conventions: "▁" -> ' ', BOS/EOS as
 * "\n<s>\n" / "\n</s>\n"). */
static inline sq_status sq_tiny_write_tokenizer_bin(const sq_vocab *v, const char *path) {
    sq_tiny_buf b = {0};
    uint32_t maxlen = 0;
    char **pieces = calloc((size_t)v->n_tokens, sizeof *pieces);
    if (!pieces) return sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int32_t i = 0; i < v->n_tokens; i++) {
        const char *s = v->tokens[i];
        sq_tiny_buf p = {0};
        if (i == v->bos_id) sq_tiny_put(&p, "\n<s>\n", 5);
        else if (i == v->eos_id) sq_tiny_put(&p, "\n</s>\n", 6);
        else
            for (; *s; s++) {
                if (strncmp(s, "\xE2\x96\x81", 3) == 0) {
                    sq_tiny_put(&p, " ", 1);
                    s += 2;
                } else {
                    sq_tiny_put(&p, s, 1);
                }
            }
        if (!p.p) sq_tiny_put(&p, "", 0);
        pieces[i] = (char *)p.p;
        if (p.n > maxlen) maxlen = (uint32_t)p.n;
    }
    sq_tiny_put(&b, &maxlen, 4);
    for (int32_t i = 0; i < v->n_tokens; i++) {
        int32_t len = pieces[i] ? (int32_t)strlen(pieces[i]) : 0;
        sq_tiny_put(&b, &v->scores[i], 4);
        sq_tiny_put(&b, &len, 4);
        sq_tiny_put(&b, pieces[i], (size_t)len);
        free(pieces[i]);
    }
    free(pieces);
    sq_status st = b.oom ? sq_errorf(SQ_ERR_OOM, "out of memory") : sq_tiny_write_file(path, b.p, b.n);
    free(b.p);
    return st;
}

/* Appends tensor `name` of c as f32 in interleaved layout (v2: Q8_0 when quantize). */
static inline void sq_tiny_l2c_tensor(sq_tiny_buf *b, const sq_checkpoint *c, const char *name, int32_t gs) {
    sq_tensor *t = sq_checkpoint_find(c, name), p;
    if (!t || sq_tiny_copy_for_layout(c, t, SQ_ROPE_INTERLEAVED, &p) != SQ_OK) {
        b->oom = true;
        return;
    }
    int64_t n = sq_tensor_numel(&p);
    float *f = malloc((size_t)n * sizeof(float));
    if (!f || sq_convert_rows(f, SQ_TYPE_F32, p.data, p.type, n) != SQ_OK) {
        b->oom = true;
    } else if (gs > 0) {
        int8_t *q = malloc((size_t)n);
        float *s = malloc((size_t)(n / gs + 1) * sizeof(float));
        if (!q || !s) b->oom = true;
        else {
            sq_tiny_q80(f, n, gs, q, s);
            sq_tiny_put(b, q, (size_t)n);
            sq_tiny_put(b, s, (size_t)(n / gs) * sizeof(float));
        }
        free(q);
        free(s);
    } else {
        sq_tiny_put(b, f, (size_t)n * sizeof(float));
    }
    free(f);
    sq_tensor_release(&p);
}

/* Writes c as a llama2.c checkpoint of `version` 0, 1 or 2 at path, and the vocabulary as
 * tokenizer.bin in the same directory. The checkpoint must have no biases, head_dim =
 * dim / n_heads and as many tokens as vocab_size rows. Values are converted to f32 (v2:
 * Q8_0 with export.py's group size); q/k rows are written interleaved. */
static inline sq_status sq_tiny_write_llama2c(const sq_checkpoint *c, const char *path, int version) {
    const sq_config *k = &c->cfg;
    if (k->attn_qkv_bias || k->attn_o_bias || k->mlp_bias || k->head_dim * k->n_heads != k->dim)
        return sq_errorf(SQ_ERR_ARG, "%s: llama2.c cannot hold biases or a custom head_dim", path);
    if (c->vocab.n_tokens != k->vocab_size)
        return sq_errorf(SQ_ERR_ARG, "%s: llama2.c needs as many tokens (%d) as vocab rows (%d)", path,
                         c->vocab.n_tokens, k->vocab_size);
    sq_tiny_buf b = {0};
    char name[SQ_MAX_NAME];
    int32_t L = k->n_layers, gs = version == 2 ? sq_tiny_llama2c_group_size(k->dim) : 0;
    int32_t hdr[7] = {k->dim, k->hidden_dim, k->n_layers, k->n_heads, k->n_kv_heads, k->vocab_size, k->max_seq_len};
    if (version == 0) {
        if (!k->tied_embeddings) hdr[5] = -hdr[5];
        sq_tiny_put(&b, hdr, sizeof hdr);
    } else {
        uint8_t h[256] = {0};
        uint32_t magic = 0x616b3432u;
        int32_t ver = version;
        memcpy(h, &magic, 4);
        memcpy(h + 4, &ver, 4);
        memcpy(h + 8, hdr, sizeof hdr);
        h[36] = k->tied_embeddings ? 1 : 0;
        memcpy(h + 37, &gs, 4);
        sq_tiny_put(&b, h, sizeof h);
    }
#define LAYERS(fmt, q) for (int32_t l = 0; l < L; l++) { \
        snprintf(name, sizeof name, fmt, l);             \
        sq_tiny_l2c_tensor(&b, c, name, (q) ? gs : 0);    \
    }
    if (version == 0) {
        sq_tiny_l2c_tensor(&b, c, "model.embed_tokens.weight", 0);
        LAYERS("model.layers.%d.input_layernorm.weight", 0)
        LAYERS("model.layers.%d.self_attn.q_proj.weight", 0)
        LAYERS("model.layers.%d.self_attn.k_proj.weight", 0)
        LAYERS("model.layers.%d.self_attn.v_proj.weight", 0)
        LAYERS("model.layers.%d.self_attn.o_proj.weight", 0)
        LAYERS("model.layers.%d.post_attention_layernorm.weight", 0)
        LAYERS("model.layers.%d.mlp.gate_proj.weight", 0)
        LAYERS("model.layers.%d.mlp.down_proj.weight", 0)
        LAYERS("model.layers.%d.mlp.up_proj.weight", 0)
        sq_tiny_l2c_tensor(&b, c, "model.norm.weight", 0);
        int32_t hs = k->head_dim;
        for (int part = 0; part < 2; part++) /* freq_cis_real, freq_cis_imag [seq_len, hs/2] */
            for (int32_t pos = 0; pos < k->max_seq_len; pos++)
                for (int32_t i = 0; i < hs / 2; i++) {
                    float f = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hs), a = (float)pos * f;
                    float v = part ? sinf(a) : cosf(a);
                    sq_tiny_put(&b, &v, 4);
                }
        if (!k->tied_embeddings) sq_tiny_l2c_tensor(&b, c, "lm_head.weight", 0);
    } else {
        LAYERS("model.layers.%d.input_layernorm.weight", 0)
        LAYERS("model.layers.%d.post_attention_layernorm.weight", 0)
        sq_tiny_l2c_tensor(&b, c, "model.norm.weight", 0);
        sq_tiny_l2c_tensor(&b, c, "model.embed_tokens.weight", gs);
        LAYERS("model.layers.%d.self_attn.q_proj.weight", 1)
        LAYERS("model.layers.%d.self_attn.k_proj.weight", 1)
        LAYERS("model.layers.%d.self_attn.v_proj.weight", 1)
        LAYERS("model.layers.%d.self_attn.o_proj.weight", 1)
        LAYERS("model.layers.%d.mlp.gate_proj.weight", 1)
        LAYERS("model.layers.%d.mlp.down_proj.weight", 1)
        LAYERS("model.layers.%d.mlp.up_proj.weight", 1)
        if (!k->tied_embeddings) sq_tiny_l2c_tensor(&b, c, "lm_head.weight", gs);
    }
#undef LAYERS
    sq_status st = b.oom ? sq_errorf(SQ_ERR_OOM, "%s: cannot build the file", path) : sq_tiny_write_file(path, b.p, b.n);
    free(b.p);
    if (st != SQ_OK) return st;
    char *dir = sq_path_dirname(path), *tok = dir ? sq_path_join(dir, "tokenizer.bin") : NULL;
    st = tok ? sq_tiny_write_tokenizer_bin(&c->vocab, tok) : sq_errorf(SQ_ERR_OOM, "out of memory");
    free(dir);
    free(tok);
    return st;
}

/* ===== Comparison ===== */

/* True if a and b have the same name, type, shape and bytes; else explains in why. */
static inline bool sq_tiny_tensor_equal(const sq_tensor *a, const sq_tensor *b, char *why, size_t cap) {
    if (strcmp(a->name, b->name) != 0) {
        snprintf(why, cap, "name '%s' vs '%s'", a->name, b->name);
        return false;
    }
    if (a->type != b->type || a->n_dims != b->n_dims || a->nbytes != b->nbytes) {
        snprintf(why, cap, "'%s': type/rank/size %s/%d/%zu vs %s/%d/%zu", a->name, sq_type_name(a->type), a->n_dims,
                 a->nbytes, sq_type_name(b->type), b->n_dims, b->nbytes);
        return false;
    }
    for (int32_t d = 0; d < a->n_dims; d++)
        if (a->shape[d] != b->shape[d]) {
            snprintf(why, cap, "'%s': dim %d is %lld vs %lld", a->name, d, (long long)a->shape[d],
                     (long long)b->shape[d]);
            return false;
        }
    if (a->nbytes && memcmp(a->data, b->data, a->nbytes) != 0) {
        snprintf(why, cap, "'%s': data differs", a->name);
        return false;
    }
    return true;
}

static inline bool sq_tiny_config_equal(const sq_config *a, const sq_config *b, char *why, size_t cap) {
#define F(f)                                                                                   \
    if (a->f != b->f) {                                                                        \
        snprintf(why, cap, "config %s: %g vs %g", #f, (double)a->f, (double)b->f);             \
        return false;                                                                          \
    }
    if (strcmp(a->arch, b->arch) != 0) {
        snprintf(why, cap, "config arch '%s' vs '%s'", a->arch, b->arch);
        return false;
    }
    F(dim) F(hidden_dim) F(n_layers) F(n_heads) F(n_kv_heads) F(head_dim) F(vocab_size) F(max_seq_len)
    F(norm_eps) F(rope_theta) F(rope_layout) F(rope_scaling) F(rope_factor) F(rope_low_freq_factor)
    F(rope_high_freq_factor) F(rope_orig_ctx) F(tied_embeddings) F(attn_qkv_bias) F(attn_o_bias) F(mlp_bias)
#undef F
    return true;
}

static inline bool sq_tiny_vocab_equal(const sq_vocab *a, const sq_vocab *b, char *why, size_t cap) {
#define F(f)                                                                                   \
    if (a->f != b->f) {                                                                        \
        snprintf(why, cap, "vocab %s: %d vs %d", #f, (int)a->f, (int)b->f);                    \
        return false;                                                                          \
    }
    F(kind) F(pre) F(n_tokens) F(n_merges) F(bos_id) F(eos_id) F(unk_id) F(pad_id) F(add_bos) F(add_eos)
    F(add_dummy_prefix) F(remove_extra_whitespaces) F(byte_fallback)
#undef F
    for (int32_t i = 0; i < a->n_tokens; i++) {
        if (strcmp(a->tokens[i], b->tokens[i]) != 0 || a->types[i] != b->types[i] ||
            memcmp(&a->scores[i], &b->scores[i], sizeof(float)) != 0) {
            snprintf(why, cap, "vocab token %d: '%s'/%d/%g vs '%s'/%d/%g", i, a->tokens[i], a->types[i],
                     (double)a->scores[i], b->tokens[i], b->types[i], (double)b->scores[i]);
            return false;
        }
    }
    for (int32_t i = 0; i < a->n_merges; i++)
        if (strcmp(a->merges[i], b->merges[i]) != 0) {
            snprintf(why, cap, "vocab merge %d: '%s' vs '%s'", i, a->merges[i], b->merges[i]);
            return false;
        }
    return true;
}

/* Same config, same tensors in the same order, bit for bit (and the same vocabulary when
 * with_vocab). */
static inline bool sq_tiny_checkpoint_equal(const sq_checkpoint *a, const sq_checkpoint *b, bool with_vocab,
                                            char *why, size_t cap) {
    if (!sq_tiny_config_equal(&a->cfg, &b->cfg, why, cap)) return false;
    if (a->n_tensors != b->n_tensors) {
        snprintf(why, cap, "%d tensors vs %d", a->n_tensors, b->n_tensors);
        return false;
    }
    for (int32_t i = 0; i < a->n_tensors; i++)
        if (!sq_tiny_tensor_equal(&a->tensors[i], &b->tensors[i], why, cap)) return false;
    return !with_vocab || sq_tiny_vocab_equal(&a->vocab, &b->vocab, why, cap);
}

#endif
