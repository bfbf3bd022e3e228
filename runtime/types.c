/* types.c - element-type traits, exact half/bfloat16 conversions (IEEE 754-2008 binary16;
 * bfloat16 = upper half of binary32), tensors, config validation and vocab helpers. */
#include "types.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ===== Type traits ===== */

/* Code chunks of the group-quantized types (docs/sqz-format.md; scales and zeros live in
 * the row header, so a block here is the 32 codes alone). */
typedef struct { uint8_t qs[32]; } q8g_chunk;                   /* one byte per code */
typedef struct { uint8_t qs[16]; } q4g_chunk;                   /* byte j: code j | code j+16 << 4 */
typedef struct { uint8_t lo[8]; uint8_t hi[4]; } q3g_chunk;     /* 2-bit planes, then bit 2 of each code */
typedef struct { uint8_t lo[16]; uint8_t hi[4]; } q5g_chunk;    /* a q4g chunk of bits 0-3, then bit 4 of each code */
typedef struct { uint8_t lo[16]; uint8_t hi[8]; } q6g_chunk;    /* a q4g chunk of bits 0-3, then 2-bit planes of bits 4-5 */
_Static_assert(sizeof(q8g_chunk) == 32, "q8g chunk is 32 bytes");
_Static_assert(sizeof(q4g_chunk) == 16, "q4g chunk is 16 bytes");
_Static_assert(sizeof(q3g_chunk) == 12, "q3g chunk is 12 bytes");
_Static_assert(sizeof(q5g_chunk) == 20, "q5g chunk is 20 bytes");
_Static_assert(sizeof(q6g_chunk) == 24, "q6g chunk is 24 bytes");

static const sq_type_traits traits[SQ_TYPE_COUNT] = {
    [SQ_TYPE_F32] = {.name = "f32", .block = 1, .block_bytes = 4},
    [SQ_TYPE_F16] = {.name = "f16", .block = 1, .block_bytes = 2},
    [SQ_TYPE_BF16] = {.name = "bf16", .block = 1, .block_bytes = 2},
    [SQ_TYPE_Q8G] = {.name = "q8g", .block = 32, .block_bytes = sizeof(q8g_chunk)},
    [SQ_TYPE_Q4G] = {.name = "q4g", .block = 32, .block_bytes = sizeof(q4g_chunk)},
    [SQ_TYPE_Q3G] = {.name = "q3g", .block = 32, .block_bytes = sizeof(q3g_chunk)},
    [SQ_TYPE_S24_F16] = {.name = "s24_f16", .block = 1, .block_bytes = 2},
    [SQ_TYPE_S24_F32] = {.name = "s24_f32", .block = 1, .block_bytes = 4},
    [SQ_TYPE_S48_F16] = {.name = "s48_f16", .block = 1, .block_bytes = 2},
    [SQ_TYPE_S48_F32] = {.name = "s48_f32", .block = 1, .block_bytes = 4},
    [SQ_TYPE_SMASK_F16] = {.name = "smask_f16", .block = 1, .block_bytes = 2},
    [SQ_TYPE_SMASK_F32] = {.name = "smask_f32", .block = 1, .block_bytes = 4},
    [SQ_TYPE_Q5G] = {.name = "q5g", .block = 32, .block_bytes = sizeof(q5g_chunk)},
    [SQ_TYPE_Q6G] = {.name = "q6g", .block = 32, .block_bytes = sizeof(q6g_chunk)},
};

const sq_type_traits *sq_type_traits_get(sq_type t) {
    if ((int)t < 0 || t >= SQ_TYPE_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

const char *sq_type_name(sq_type t) {
    const sq_type_traits *tr = sq_type_traits_get(t);
    return tr ? tr->name : "?";
}

sq_status sq_type_from_name(const char *name, sq_type *out) {
    for (int t = 0; t < SQ_TYPE_COUNT; t++) {
        if (traits[t].name && strcasecmp(name, traits[t].name) == 0) {
            *out = (sq_type)t;
            return SQ_OK;
        }
    }
    return sq_errorf(SQ_ERR_ARG, "unknown tensor type '%s' (expected f32, f16, bf16, q8g, q6g, q5g, q4g, q3g, s24_f16, s24_f32, s48_f16, s48_f32, smask_f16 or smask_f32)", name);
}

size_t sq_type_row_bytes(sq_type t, int64_t cols) {
    const sq_type_traits *tr = sq_type_traits_get(t);
    if (!tr || cols < 0 || sq_type_is_quant(t) || sq_type_is_sparse(t)) return 0; /* those rows: sq_row_bytes */
    uint64_t blocks = ((uint64_t)cols + (uint64_t)tr->block - 1) / (uint64_t)tr->block;
    uint64_t bytes;
    if (__builtin_mul_overflow(blocks, (uint64_t)tr->block_bytes, &bytes) || bytes > SIZE_MAX) return 0;
    return (size_t)bytes;
}

/* ===== Half precision ===== */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float sq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7F800000u | (man << 13)); /* inf / NaN */
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t sq_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) { /* inf or NaN */
        if (absx > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((absx >> 13) & 0x3FFu));
        return (uint16_t)(sign | 0x7C00u);
    }
    if (absx >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {                                  /* below 2^-14: subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;          /* < 2^-25 rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent, round mantissa 23 -> 10 bits to nearest even */
    uint32_t r = absx - 0x38000000u; /* exponent bias 127 -> 15 */
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

float sq_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t sq_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7FFFu + lsb;
    return (uint16_t)(x >> 16);
}

sq_status sq_convert_rows(void *dst, sq_type to, const void *src, sq_type from, int64_t n) {
    if (from == to) {
        size_t b = sq_type_row_bytes(from, n);
        if (!b && n) return sq_errorf(SQ_ERR_ARG, "sq_convert_rows: invalid type %d", (int)from);
        memcpy(dst, src, b);
        return SQ_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        float v;
        switch (from) {
        case SQ_TYPE_F32: memcpy(&v, (const char *)src + 4 * i, 4); break;
        case SQ_TYPE_F16: {
            uint16_t h;
            memcpy(&h, (const char *)src + 2 * i, 2);
            v = sq_f16_to_f32(h);
            break;
        }
        case SQ_TYPE_BF16: {
            uint16_t h;
            memcpy(&h, (const char *)src + 2 * i, 2);
            v = sq_bf16_to_f32(h);
            break;
        }
        default: return sq_errorf(SQ_ERR_ARG, "cannot convert from type %s", sq_type_name(from));
        }
        switch (to) {
        case SQ_TYPE_F32: memcpy((char *)dst + 4 * i, &v, 4); break;
        case SQ_TYPE_F16: {
            uint16_t h = sq_f32_to_f16(v);
            memcpy((char *)dst + 2 * i, &h, 2);
            break;
        }
        case SQ_TYPE_BF16: {
            uint16_t h = sq_f32_to_bf16(v);
            memcpy((char *)dst + 2 * i, &h, 2);
            break;
        }
        default: return sq_errorf(SQ_ERR_ARG, "cannot convert to type %s", sq_type_name(to));
        }
    }
    return SQ_OK;
}

/* ===== Tensors ===== */

int64_t sq_tensor_numel(const sq_tensor *t) {
    int64_t n = 1;
    bool bad = false;
    for (int32_t i = 0; i < t->n_dims; i++) {
        if (t->shape[i] == 0) return 0;
        if (t->shape[i] < 0 || __builtin_mul_overflow(n, t->shape[i], &n)) bad = true;
    }
    return bad ? -1 : n;
}

size_t sq_tensor_expected_bytes(sq_type t, int32_t n_dims, const int64_t *shape) {
    if (n_dims < 1 || n_dims > SQ_MAX_DIMS) return 0;
    uint64_t rows = 1;
    for (int32_t i = 0; i < n_dims - 1; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(rows, (uint64_t)shape[i], &rows)) return 0;
    }
    if (shape[n_dims - 1] < 0) return 0;
    size_t rb = sq_type_row_bytes(t, shape[n_dims - 1]);
    if (!rb && shape[n_dims - 1] > 0) return 0;
    uint64_t total;
    if (__builtin_mul_overflow(rows, (uint64_t)rb, &total) || total > SIZE_MAX) return 0;
    return (size_t)total;
}

void sq_tensor_release(sq_tensor *t) {
    if (!t) return;
    free(t->name);
    if (t->owns_data) free(t->data);
    memset(t, 0, sizeof *t);
}

/* ===== Config ===== */

sq_status sq_config_validate(const sq_config *c, const char *what) {
    const int32_t big = 1 << 24;
#define POS(f)                                                                                   \
    if (c->f <= 0 || c->f > big)                                                                 \
        return sq_errorf(SQ_ERR_FORMAT, "%s: config %s = %lld is out of range", what, #f, (long long)c->f);
    POS(dim) POS(hidden_dim) POS(n_layers) POS(n_heads) POS(n_kv_heads) POS(head_dim) POS(vocab_size)
    POS(max_seq_len)
#undef POS
    if (c->n_layers > 4096) return sq_errorf(SQ_ERR_FORMAT, "%s: %d layers is implausible", what, c->n_layers);
    if (c->n_heads % c->n_kv_heads != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %d attention heads is not a multiple of %d KV heads", what,
                         c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2 != 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: head_dim %d is odd (RoPE needs pairs)", what, c->head_dim);
    if ((int64_t)c->n_heads * c->head_dim > big)
        return sq_errorf(SQ_ERR_FORMAT, "%s: heads x head_dim is out of range", what);
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f))
        return sq_errorf(SQ_ERR_FORMAT, "%s: rms_norm_eps %g is out of range", what, (double)c->norm_eps);
    if (!(c->rope_theta > 0.0f))
        return sq_errorf(SQ_ERR_FORMAT, "%s: rope_theta %g must be positive", what, (double)c->rope_theta);
    if (c->rope_layout != SQ_ROPE_HALF && c->rope_layout != SQ_ROPE_INTERLEAVED)
        return sq_errorf(SQ_ERR_FORMAT, "%s: unknown rope layout %d", what, (int)c->rope_layout);
    if (c->rope_scaling != SQ_ROPE_SCALING_NONE) {
        if (!(c->rope_factor > 0.0f))
            return sq_errorf(SQ_ERR_FORMAT, "%s: rope scaling factor %g must be positive", what,
                             (double)c->rope_factor);
        if (c->rope_scaling == SQ_ROPE_SCALING_LLAMA3 &&
            (c->rope_orig_ctx <= 0 || !(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
             !(c->rope_low_freq_factor > 0.0f)))
            return sq_errorf(SQ_ERR_FORMAT, "%s: llama3 rope scaling parameters are inconsistent", what);
    }
    if (c->arch[0] == '\0') return sq_errorf(SQ_ERR_FORMAT, "%s: architecture is not set", what);
    return SQ_OK;
}

/* ===== Vocabulary ===== */

void sq_vocab_free(sq_vocab *v) {
    if (!v) return;
    if (v->tokens)
        for (int32_t i = 0; i < v->n_tokens; i++) free(v->tokens[i]);
    if (v->merges)
        for (int32_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

sq_status sq_vocab_copy(sq_vocab *dst, const sq_vocab *src) {
    *dst = *src;
    dst->tokens = NULL;
    dst->scores = NULL;
    dst->types = NULL;
    dst->merges = NULL;
    dst->n_tokens = 0;
    dst->n_merges = 0;
    size_t n = (size_t)(src->n_tokens > 0 ? src->n_tokens : 0);
    dst->tokens = calloc(n ? n : 1, sizeof(char *));
    dst->scores = calloc(n ? n : 1, sizeof(float));
    dst->types = calloc(n ? n : 1, sizeof(int32_t));
    if (!dst->tokens || !dst->scores || !dst->types) goto oom;
    dst->n_tokens = src->n_tokens;
    for (size_t i = 0; i < n; i++)
        if (!(dst->tokens[i] = dupstr(src->tokens[i]))) goto oom;
    if (src->scores) memcpy(dst->scores, src->scores, n * sizeof(float));
    if (src->types) memcpy(dst->types, src->types, n * sizeof(int32_t));
    if (src->n_merges > 0) {
        dst->merges = calloc((size_t)src->n_merges, sizeof(char *));
        if (!dst->merges) goto oom;
        dst->n_merges = src->n_merges;
        for (int32_t i = 0; i < src->n_merges; i++)
            if (!(dst->merges[i] = dupstr(src->merges[i]))) goto oom;
    }
    return SQ_OK;
oom:
    sq_vocab_free(dst);
    return sq_errorf(SQ_ERR_OOM, "out of memory copying a vocabulary");
}

sq_status sq_vocab_validate(const sq_vocab *v, const char *what) {
    if (v->kind != SQ_VOCAB_SPM && v->kind != SQ_VOCAB_BPE)
        return sq_errorf(SQ_ERR_FORMAT, "%s: unknown tokenizer kind %d", what, (int)v->kind);
    if (v->n_tokens <= 0 || v->n_tokens > (1 << 24) || !v->tokens || !v->scores || !v->types)
        return sq_errorf(SQ_ERR_FORMAT, "%s: tokenizer has %d tokens", what, v->n_tokens);
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (!v->tokens[i]) return sq_errorf(SQ_ERR_FORMAT, "%s: token %d is missing", what, i);
        if (strlen(v->tokens[i]) > SQ_MAX_NAME * 2)
            return sq_errorf(SQ_ERR_FORMAT, "%s: token %d is %zu bytes long", what, i, strlen(v->tokens[i]));
        if (v->types[i] < SQ_TOKEN_NORMAL || v->types[i] > SQ_TOKEN_BYTE)
            return sq_errorf(SQ_ERR_FORMAT, "%s: token %d has unknown type %d", what, i, v->types[i]);
    }
    const int32_t ids[4] = {v->bos_id, v->eos_id, v->unk_id, v->pad_id};
    static const char *const names[4] = {"bos", "eos", "unk", "pad"};
    for (int k = 0; k < 4; k++)
        if (ids[k] < -1 || ids[k] >= v->n_tokens)
            return sq_errorf(SQ_ERR_FORMAT, "%s: %s token id %d is outside the vocabulary of %d", what, names[k],
                             ids[k], v->n_tokens);
    if (v->n_merges < 0 || (v->n_merges > 0 && !v->merges))
        return sq_errorf(SQ_ERR_FORMAT, "%s: bad merge list", what);
    if (v->kind == SQ_VOCAB_SPM && v->n_merges > 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: a SentencePiece vocabulary has no merge list", what);
    for (int32_t i = 0; i < v->n_merges; i++)
        if (!v->merges[i] || !strchr(v->merges[i], ' '))
            return sq_errorf(SQ_ERR_FORMAT, "%s: merge %d is not of the form 'a b'", what, i);
    return SQ_OK;
}

static const char *const pretok_names[] = {
    [SQ_PRE_DEFAULT] = "default", [SQ_PRE_GPT2] = "gpt-2",  [SQ_PRE_LLAMA3] = "llama-bpe",
    [SQ_PRE_QWEN2] = "qwen2",     [SQ_PRE_SMOLLM] = "smollm",
};

const char *sq_pretok_name(sq_pretok p) {
    if ((int)p < 0 || (size_t)p >= sizeof pretok_names / sizeof pretok_names[0]) return "?";
    return pretok_names[p];
}

sq_status sq_pretok_from_name(const char *name, sq_pretok *out) {
    for (size_t i = 0; i < sizeof pretok_names / sizeof pretok_names[0]; i++) {
        if (strcmp(name, pretok_names[i]) == 0) {
            *out = (sq_pretok)i;
            return SQ_OK;
        }
    }
    return sq_errorf(SQ_ERR_UNSUPPORTED, "unknown pre-tokenizer '%s' (known: default, gpt-2, llama-bpe, qwen2, smollm)",
                     name);
}
