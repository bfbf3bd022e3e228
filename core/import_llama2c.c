/* import_llama2c.c - imports karpathy/llama2.c checkpoints (FORMATS.md 5): the legacy "v0"
 * file run.c reads (7 x int32 header, fp32 body, freq_cis tables skipped, a negative vocab
 * size meaning an untied classifier at the end), and export.py's "v1" (fp32) and "v2"
 * (Q8_0: int8 codes + one f32 scale per group, dequantized here to f32 exactly as
 * export.py's own dequantization: code * scale in fp32). Every byte of the file must be
 * accounted for. Names are mapped to Hugging Face names (wq -> q_proj, w1 -> gate_proj,
 * w2 -> down_proj, w3 -> up_proj, ...); q/k rows are NOT permuted: the checkpoint is
 * recorded as SQ_ROPE_INTERLEAVED and the runtime implements both layouts. run.c's fixed
 * hyperparameters apply: RoPE theta 10000, RMSNorm eps 1e-5.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "util.h"

#define L2C_MAGIC 0x616b3432u
#define L2C_HEADER_V12 256u

static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = sq_rd_le32(p);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

typedef struct {
    int version; /* 0, 1, 2 */
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    bool shared;
    int32_t group_size; /* v2 */
    uint64_t header_bytes;
} l2c_header;

static sq_status parse_header(const char *path, const sq_mapping *m, l2c_header *h) {
    memset(h, 0, sizeof *h);
    if (m->size < 28)
        return sq_errorf(SQ_ERR_FORMAT, "%s: file is %llu bytes, too short for a llama2.c header", path,
                         (unsigned long long)m->size);
    const uint8_t *p = m->data;
    const uint8_t *ints;
    if ((uint32_t)rd_i32(p) == L2C_MAGIC) {
        if (m->size < L2C_HEADER_V12)
            return sq_errorf(SQ_ERR_FORMAT, "%s: file is %llu bytes, too short for the 256-byte llama2.c v1/v2 header",
                             path, (unsigned long long)m->size);
        h->version = rd_i32(p + 4);
        if (h->version != 1 && h->version != 2)
            return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: llama2.c format version %d is not supported (1 or 2 expected)",
                             path, h->version);
        ints = p + 8;
        h->shared = p[36] != 0;
        if (p[36] > 1) return sq_errorf(SQ_ERR_FORMAT, "%s: shared_classifier byte is %d, not 0 or 1", path, p[36]);
        if (h->version == 2) h->group_size = rd_i32(p + 37);
        h->header_bytes = L2C_HEADER_V12;
    } else {
        h->version = 0;
        ints = p;
        h->header_bytes = 28;
    }
    h->dim = rd_i32(ints);
    h->hidden = rd_i32(ints + 4);
    h->n_layers = rd_i32(ints + 8);
    h->n_heads = rd_i32(ints + 12);
    h->n_kv_heads = rd_i32(ints + 16);
    h->vocab = rd_i32(ints + 20);
    h->seq_len = rd_i32(ints + 24);
    if (h->version == 0) {
        h->shared = h->vocab > 0;
        if (h->vocab < 0 && h->vocab != INT32_MIN) h->vocab = -h->vocab;
    }
    const int32_t big = 1 << 24;
#define CHECK(f)                                                                                        \
    if (h->f <= 0 || h->f > big)                                                                        \
        return sq_errorf(SQ_ERR_FORMAT, "%s: header field %s = %d is out of range (not a llama2.c v%d file?)", path, \
                         #f, h->f, h->version);
    CHECK(dim) CHECK(hidden) CHECK(n_layers) CHECK(n_heads) CHECK(n_kv_heads) CHECK(vocab) CHECK(seq_len)
#undef CHECK
    if (h->n_layers > 4096) return sq_errorf(SQ_ERR_FORMAT, "%s: header says %d layers", path, h->n_layers);
    if (h->dim % h->n_heads != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: dim %d is not a multiple of %d heads", path, h->dim, h->n_heads);
    if (h->n_heads % h->n_kv_heads != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %d heads is not a multiple of %d KV heads", path, h->n_heads,
                         h->n_kv_heads);
    if ((h->dim / h->n_heads) % 2 != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: head size %d is odd", path, h->dim / h->n_heads);
    if (h->version == 2 && (h->group_size <= 0 || h->dim % h->group_size != 0))
        return sq_errorf(SQ_ERR_FORMAT, "%s: Q8_0 group size %d does not divide dim %d", path, h->group_size, h->dim);
    return SQ_OK;
}

/* ===== Body layout ===== */

/* The slots of the canonical tensor list (sq_config_tensors, no biases). */
enum { S_ATT_NORM, S_Q, S_K, S_V, S_O, S_FFN_NORM, S_GATE, S_UP, S_DOWN, S_PER_LAYER };

typedef struct {
    const sq_mapping *m;
    uint64_t pos;       /* read cursor */
    sq_tensor *slots;   /* canonical list, data filled as the body is read */
    int32_t n_layers;
    int32_t group_size; /* 0: fp32 body */
} reader;

static int32_t slot_layer(int kind, int32_t l) { return 1 + l * S_PER_LAYER + kind; }

/* Reads the next fp32 tensor (the whole of slot s). The size was checked up front. */
static void read_f32(reader *r, int32_t s) {
    sq_tensor *t = &r->slots[s];
    memcpy(t->data, r->m->data + r->pos, t->nbytes);
    r->pos += t->nbytes;
}

/* Reads the next Q8_0 tensor: int8 q[numel] then f32 scale[numel / group_size]. */
static void read_q8(reader *r, int32_t s) {
    sq_tensor *t = &r->slots[s];
    int64_t numel = sq_tensor_numel(t);
    const int8_t *q = (const int8_t *)(r->m->data + r->pos);
    const uint8_t *sc = r->m->data + r->pos + (uint64_t)numel;
    float *w = t->data;
    int64_t gs = r->group_size;
    for (int64_t g = 0; g < numel / gs; g++) {
        float scale;
        memcpy(&scale, sc + 4 * g, 4);
        for (int64_t j = 0; j < gs; j++) w[g * gs + j] = (float)q[g * gs + j] * scale;
    }
    r->pos += (uint64_t)numel + 4u * (uint64_t)(numel / gs);
}

static void read_matrix(reader *r, int32_t s) {
    if (r->group_size) read_q8(r, s);
    else read_f32(r, s);
}

/* For each layer, the rows of a stacked [L, ...] array. */
static void read_per_layer(reader *r, int kind, bool matrix) {
    for (int32_t l = 0; l < r->n_layers; l++) {
        int32_t s = slot_layer(kind, l);
        if (matrix) read_matrix(r, s);
        else read_f32(r, s);
    }
}

/* Bytes of one tensor in the body. */
static bool body_bytes(const sq_tensor *t, int32_t group_size, bool quantized, uint64_t *out) {
    uint64_t numel = (uint64_t)sq_tensor_numel(t), b;
    if (!quantized || !group_size) return sq_mul_u64(numel, 4, out);
    if (!sq_mul_u64(numel / (uint64_t)group_size, 4, &b)) return false;
    return sq_add_u64(numel, b, out);
}

/* ===== Import ===== */

static char *find_tokenizer(const char *bin_path, int32_t vocab) {
    char *dir = sq_path_dirname(bin_path);
    if (!dir) return NULL;
    char name[32];
    snprintf(name, sizeof name, "tok%d.bin", vocab);
    char *p = sq_path_join(dir, name);
    if (p && !sq_file_exists(p)) {
        free(p);
        p = sq_path_join(dir, "tokenizer.bin");
        if (p && !sq_file_exists(p)) {
            free(p);
            p = NULL;
        }
    }
    free(dir);
    return p;
}

sq_status sq_import_llama2c(const char *bin_path, const char *tokenizer_path, sq_checkpoint *out) {
    sq_status st = SQ_OK;
    sq_mapping m = {0};
    sq_tensor_spec *exp = NULL;
    sq_tensor *slots = NULL;
    int32_t n_exp = 0;
    char *tok = NULL;
    l2c_header h;
    memset(out, 0, sizeof *out);
    if ((st = sq_map_file(bin_path, &m)) != SQ_OK) goto fail;
    if ((st = parse_header(bin_path, &m, &h)) != SQ_OK) goto fail;

    sq_config *c = &out->cfg;
    snprintf(c->arch, sizeof c->arch, "llama");
    c->dim = h.dim;
    c->hidden_dim = h.hidden;
    c->n_layers = h.n_layers;
    c->n_heads = h.n_heads;
    c->n_kv_heads = h.n_kv_heads;
    c->head_dim = h.dim / h.n_heads;
    c->vocab_size = h.vocab;
    c->max_seq_len = h.seq_len;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_layout = SQ_ROPE_INTERLEAVED;
    c->rope_scaling = SQ_ROPE_SCALING_NONE;
    c->rope_factor = 1.0f;
    c->tied_embeddings = h.shared;
    if ((st = sq_config_validate(c, bin_path)) != SQ_OK) goto fail;
    if ((st = sq_config_tensors(c, &exp, &n_exp)) != SQ_OK) goto fail;
    SQ_ASSERT(n_exp == 2 + h.n_layers * S_PER_LAYER + (h.shared ? 0 : 1));

    /* Expected size: header + every tensor + (v0) the two freq_cis tables. */
    uint64_t expect = h.header_bytes;
    slots = calloc((size_t)n_exp, sizeof *slots);
    if (!slots) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", bin_path);
        goto fail;
    }
    bool ok = true;
    for (int32_t i = 0; i < n_exp; i++) {
        sq_tensor *t = &slots[i];
        t->type = SQ_TYPE_F32;
        t->n_dims = exp[i].n_dims;
        t->shape[0] = exp[i].shape[0];
        t->shape[1] = exp[i].shape[1];
        uint64_t b;
        ok = ok && body_bytes(t, h.group_size, t->n_dims == 2, &b) && sq_add_u64(expect, b, &expect);
    }
    uint64_t freq = (uint64_t)h.seq_len * (uint64_t)(c->head_dim / 2) * 2u * 4u;
    if (h.version == 0) ok = ok && sq_add_u64(expect, freq, &expect);
    if (!ok || expect != m.size) {
        st = sq_errorf(SQ_ERR_FORMAT,
                       "%s: file is %llu bytes but its llama2.c v%d header (dim %d, hidden %d, %d layers, %d/%d heads, "
                       "vocab %d, seq_len %d, %s classifier) implies %llu",
                       bin_path, (unsigned long long)m.size, h.version, h.dim, h.hidden, h.n_layers, h.n_heads,
                       h.n_kv_heads, h.vocab, h.seq_len, h.shared ? "shared" : "separate",
                       ok ? (unsigned long long)expect : 0ull);
        goto fail;
    }
    for (int32_t i = 0; i < n_exp; i++) {
        sq_tensor *t = &slots[i];
        t->nbytes = sq_tensor_expected_bytes(SQ_TYPE_F32, t->n_dims, t->shape);
        t->name = sq_strdup(exp[i].name);
        t->data = sq_alloc_aligned(t->nbytes);
        t->owns_data = true;
        if (!t->name || !t->data) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory for tensor '%s'", bin_path, exp[i].name);
            goto fail;
        }
    }

    reader r = {&m, h.header_bytes, slots, h.n_layers, h.version == 2 ? h.group_size : 0};
    int32_t s_norm = 1 + h.n_layers * S_PER_LAYER, s_head = s_norm + 1;
    if (h.version == 0) {
        read_f32(&r, 0);                                   /* token_embedding [vocab, dim] */
        read_per_layer(&r, S_ATT_NORM, false);             /* rms_att [L, dim] */
        read_per_layer(&r, S_Q, true);                     /* wq [L][dim, dim] */
        read_per_layer(&r, S_K, true);                     /* wk [L][kv_dim, dim] */
        read_per_layer(&r, S_V, true);                     /* wv [L][kv_dim, dim] */
        read_per_layer(&r, S_O, true);                     /* wo [L][dim, dim] */
        read_per_layer(&r, S_FFN_NORM, false);             /* rms_ffn [L, dim] */
        read_per_layer(&r, S_GATE, true);                  /* w1 [L][hidden, dim] */
        read_per_layer(&r, S_DOWN, true);                  /* w2 [L][dim, hidden] */
        read_per_layer(&r, S_UP, true);                    /* w3 [L][hidden, dim] */
        read_f32(&r, s_norm);                              /* rms_final [dim] */
        r.pos += freq;                                     /* freq_cis_real/imag: obsolete */
        if (!h.shared) read_f32(&r, s_head);               /* wcls [vocab, dim] */
    } else {
        read_per_layer(&r, S_ATT_NORM, false);
        read_per_layer(&r, S_FFN_NORM, false);
        read_f32(&r, s_norm);
        read_matrix(&r, 0);
        read_per_layer(&r, S_Q, true);
        read_per_layer(&r, S_K, true);
        read_per_layer(&r, S_V, true);
        read_per_layer(&r, S_O, true);
        read_per_layer(&r, S_GATE, true);
        read_per_layer(&r, S_DOWN, true);
        read_per_layer(&r, S_UP, true);
        if (!h.shared) read_matrix(&r, s_head);
    }
    SQ_ASSERT(r.pos == m.size);
    for (int32_t i = 0; i < n_exp; i++)
        if ((st = sq_checkpoint_add(out, &slots[i])) != SQ_OK) goto fail;

    /* tokenizer */
    tok = tokenizer_path ? sq_strdup(tokenizer_path) : find_tokenizer(bin_path, h.vocab);
    if (!tok) {
        st = sq_errorf(SQ_ERR_IO, "%s: no tokenizer (expected tok%d.bin or tokenizer.bin beside it, or pass one)",
                       bin_path, h.vocab);
        goto fail;
    }
    if ((st = sq_vocab_read_llama2c(tok, h.vocab, &out->vocab)) != SQ_OK) goto fail;

    char fmt[16];
    snprintf(fmt, sizeof fmt, "llama2c-v%d", h.version);
    if (!(out->source_format = sq_strdup(fmt))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", bin_path);
        goto fail;
    }
    if ((st = sq_checkpoint_add_source(out, bin_path)) != SQ_OK) goto fail;
    if ((st = sq_checkpoint_add_source(out, tok)) != SQ_OK) goto fail;
    if ((st = sq_checkpoint_validate(out, bin_path)) != SQ_OK) goto fail;
fail:
    sq_unmap_file(&m);
    if (slots)
        for (int32_t i = 0; i < n_exp; i++) sq_tensor_release(&slots[i]);
    free(slots);
    free(exp);
    free(tok);
    if (st != SQ_OK) sq_checkpoint_free(out);
    return st;
}
