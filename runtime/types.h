/* types.h - tensor element types, their traits, half/bfloat16 conversion and the
 * in-memory tensor, model-config and vocabulary structs shared by every stage.
 *
 * Conventions (docs/architecture.md): a 2-D weight is [out rows x in cols], row-major,
 * the safetensors convention. Tensor names are Hugging Face names everywhere
 * ("model.layers.0.self_attn.q_proj.weight"). sq_type is append-only: its numeric values
 * are written into runnable files.
 */
#ifndef SQ_TYPES_H
#define SQ_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* ===== Element types ===== */

typedef enum {
    SQ_TYPE_F32 = 0,
    SQ_TYPE_F16 = 1,
    SQ_TYPE_BF16 = 2,
    /* Group-quantized types (docs/quantization.md): w = s * (q - z) per group of `group`
     * weights along a row, fp16 scales, u8 zero points when asymmetric. Rows are
     * self-contained: f16 scales[n_groups], u8 zeros[n_groups] (asym), pad to 4 bytes,
     * then codes in 32-weight chunks (q8g: 32 bytes, q4g: 16, q3g: 12 per chunk; q5g: 20
     * and q6g: 24, appended below). */
    SQ_TYPE_Q8G = 3,
    SQ_TYPE_Q4G = 4,
    SQ_TYPE_Q3G = 5,
    /* Sparse types (docs/sparse-format.md, runtime/sparse_internal.h): only the stored
     * weights of each row, with their positions; 2-D only. s24/s48: exactly N:M (2 of
     * every 4, 4 of every 8 consecutive weights of a row; cols a multiple of M), packed
     * 4-bit in-group indices then the values. smask: unstructured, a bit per weight then
     * up to K = q.group values per row (q.group is the per-row capacity). */
    SQ_TYPE_S24_F16 = 6,
    SQ_TYPE_S24_F32 = 7,
    SQ_TYPE_S48_F16 = 8,
    SQ_TYPE_S48_F32 = 9,
    SQ_TYPE_SMASK_F16 = 10,
    SQ_TYPE_SMASK_F32 = 11,
    /* More group-quantized types (same row layout as q8g/q4g/q3g): q5g chunks are 20 bytes
     * (a q4g chunk of the low 4 bits, then a u32 of bit 4), q6g chunks 24 bytes (a q4g
     * chunk of the low 4 bits, then q3g-style 2-bit planes of bits 4-5). */
    SQ_TYPE_Q5G = 12,
    SQ_TYPE_Q6G = 13,
    /* append only */
    SQ_TYPE_COUNT
} sq_type;

/* Parameters of a group-quantized tensor; all zero for float types. `group` is a
 * multiple of 32, or the row length (one group per row); the last group of a row may be
 * shorter. For the bitmask sparse types `group` is the values per row (0..cols). */
typedef struct {
    int32_t group;
    bool asym;
} sq_qparams;

typedef struct {
    const char *name;   /* "f32", "f16", "bf16", "q8g", "q4g", "q3g", "s24_f16", ..., "q5g", "q6g" */
    int32_t block;      /* weights per block (1 for plain floats and sparse types, 32: a code chunk) */
    int32_t block_bytes;/* bytes per block (codes only for quantized types, a value for sparse ones) */
} sq_type_traits;

const sq_type_traits *sq_type_traits_get(sq_type t); /* NULL if t is not a valid type */
const char *sq_type_name(sq_type t);                 /* "?" if invalid */
/* Parses a type name ("f32", "f16", "bf16", "q8g", "q6g", "q5g", "q4g", "q3g", the sparse
 * names; case-insensitive). SQ_ERR_ARG if unknown. */
sq_status sq_type_from_name(const char *name, sq_type *out);
/* Bytes needed for one row of `cols` elements of a float type t. Returns 0 for an invalid
 * type and for quantized types (use sq_row_bytes). */
size_t sq_type_row_bytes(sq_type t, int64_t cols);
/* Bytes of one row of any type (q is ignored for float types); 0 if t, cols or q are
 * invalid. */
size_t sq_row_bytes(sq_type t, int64_t cols, sq_qparams q);
bool sq_type_is_quant(sq_type t);
int32_t sq_type_bits(sq_type t); /* 32, 16, 16, 8, 4, 3, 5, 6 (0 for sparse/invalid) */
/* Checks q for a quantized type and row length (group multiple of 32 or >= cols);
 * `what` names the tensor in the message. */
sq_status sq_qparams_validate(sq_type t, sq_qparams q, int64_t cols, const char *what);
/* The ACT8 flag (int8 activations, docs/quantization.md) is allowed on q8g and q4g only;
 * `what` names the tensor in the message. */
bool sq_type_supports_act8(sq_type t);
sq_status sq_act8_validate(sq_type t, bool act8, const char *what);

/* ===== Group-quantized rows (runtime/quant.c) =====
 * The reference packer, unpacker and dequantizer of the row layout above; kernels and
 * the model store's exporter use these, tests compare everything against them. codes
 * has cols entries (each < 2^bits), scales and zeros n_groups = ceil(cols / group)
 * entries; scales must be fp16 values (they are stored as fp16 bit-exactly). */
sq_status sq_qrow_pack(sq_type t, sq_qparams q, int64_t cols, const uint8_t *codes, const float *scales,
                       const uint8_t *zeros, void *dst);
void sq_qrow_unpack(sq_type t, sq_qparams q, int64_t cols, const void *src, uint8_t *codes, float *scales,
                    uint8_t *zeros);
void sq_qrow_dequant(sq_type t, sq_qparams q, int64_t cols, const void *src, float *dst);

/* ===== Sparse rows (runtime/sparse.c) =====
 * Reference packer and unpacker of the sparse row layouts (docs/sparse-format.md); the
 * exporter, the importer and the tests use these. Values are raw bits of the value type
 * (f16 or f32, sq_sparse_value_type): a weight is "zero" only if all its bits are 0, so
 * dense -> sparse -> dense is bit-exact (-0.0 is kept as a value). */
bool sq_type_is_sparse(sq_type t);
sq_type sq_sparse_value_type(sq_type t); /* SQ_TYPE_F16 or SQ_TYPE_F32 (F32 for non-sparse t) */
/* Row size and parameter check of a sparse type (what sq_row_bytes/sq_qparams_validate
 * use for them). */
size_t sq_sparse_row_bytes(sq_type t, int64_t cols, sq_qparams q);
sq_status sq_sparse_validate(sq_type t, sq_qparams q, int64_t cols, const char *what);
/* Packs one dense row (cols values of the value type) into sq_row_bytes bytes at dst.
 * SQ_ERR_ARG (nothing written) if the row does not fit the type: an N:M group with more
 * than N nonzeros, or more than K nonzeros for a bitmask row. */
sq_status sq_srow_pack(sq_type t, sq_qparams q, int64_t cols, const void *src, void *dst);
/* Unpacks one row into cols values of the value type; SQ_ERR_FORMAT if the row is not in
 * the canonical form sq_srow_pack writes (indices out of order, bits past the row, a
 * nonzero past the stored values, nonzero padding): hostile input is refused. */
sq_status sq_srow_unpack(sq_type t, sq_qparams q, int64_t cols, const void *src, void *dst);
/* One row as floats (embedding lookups, the reference kernel). Never reads outside the
 * row, whatever the row holds. */
void sq_srow_dequant(sq_type t, sq_qparams q, int64_t cols, const void *src, float *dst);

/* ===== Half precision =====
 * Exact IEEE binary16 <-> binary32 conversion (subnormals, inf, NaN), round-to-nearest-
 * even on the way down. bfloat16 is the top 16 bits of a float; rounding to it is
 * round-to-nearest-even with NaN kept quiet. */
float sq_f16_to_f32(uint16_t h);
uint16_t sq_f32_to_f16(float f);
float sq_bf16_to_f32(uint16_t b);
uint16_t sq_f32_to_bf16(float f);

/* Converts n elements of type `from` at src into dst of type `to` (plain float types
 * only). src and dst may not overlap. */
sq_status sq_convert_rows(void *dst, sq_type to, const void *src, sq_type from, int64_t n);

/* ===== Tensors ===== */

#define SQ_MAX_DIMS 4
#define SQ_MAX_NAME 256

typedef struct {
    char *name;                  /* owned, NUL-terminated, < SQ_MAX_NAME bytes */
    sq_type type;
    sq_qparams q;                /* quantized types only */
    bool act8;                   /* ACT8: multiply with int8 activations (q8g/q4g; docs/quantization.md) */
    int32_t n_dims;              /* 1..SQ_MAX_DIMS */
    int64_t shape[SQ_MAX_DIMS];  /* row-major; shape[0] = rows (out), shape[1] = cols (in) */
    void *data;                  /* nbytes bytes */
    size_t nbytes;
    bool owns_data;              /* free(data) on release when true (else borrowed: mmap) */
} sq_tensor;

/* Element count; 0 when any dimension is 0, -1 when a dimension is negative or the product
 * does not fit in int64 (shapes read from a file before they are checked). */
int64_t sq_tensor_numel(const sq_tensor *t);
/* Bytes the data of this float type and shape occupies (rows x row_bytes); 0 on overflow. */
size_t sq_tensor_expected_bytes(sq_type t, int32_t n_dims, const int64_t *shape);
/* The same for any type (quantized tensors are 2-D). */
size_t sq_tensor_bytes(sq_type t, sq_qparams q, int32_t n_dims, const int64_t *shape);
void sq_tensor_release(sq_tensor *t); /* frees name and owned data; NULL-safe */

/* Sparse tensors (runtime/sparse.c). */
/* Export: the smallest sparse encoding of a 2-D f16/f32 tensor that saves at least
 * 1/8 of its bytes: N:M (2:4, then 4:8) when every group of M holds at most N nonzeros,
 * else a bitmask row with K = the largest nonzero count of a row. *out gets a new owned
 * tensor (same name) and true is returned in *changed; otherwise *changed is false and
 * *out is untouched. */
sq_status sq_tensor_sparsify(const sq_tensor *in, sq_tensor *out, bool *changed);
/* Import: a sparse tensor back to its dense value type, bit-exact (new owned tensor). */
sq_status sq_tensor_densify(const sq_tensor *in, sq_tensor *out);

/* ===== Model configuration =====
 * Hyperparameters of a Llama-family decoder. Importers fill it from config.json or a
 * llama2.c header; the store and the runnable file carry it. */

typedef enum { SQ_ROPE_HALF = 0, SQ_ROPE_INTERLEAVED = 1 } sq_rope_layout;
typedef enum { SQ_ROPE_SCALING_NONE = 0, SQ_ROPE_SCALING_LINEAR = 1, SQ_ROPE_SCALING_LLAMA3 = 2 } sq_rope_scaling;

typedef struct {
    char arch[16];              /* "llama" | "mistral" | "qwen2" */
    int32_t dim;                /* hidden size */
    int32_t hidden_dim;         /* FFN width (intermediate_size) */
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t head_dim;           /* usually dim / n_heads */
    int32_t vocab_size;         /* rows of the embedding and of the head */
    int32_t max_seq_len;        /* trained context (max_position_embeddings) */
    float norm_eps;             /* RMSNorm epsilon */
    float rope_theta;
    sq_rope_layout rope_layout; /* how q/k rows pair up for RoPE in the stored weights */
    sq_rope_scaling rope_scaling;
    float rope_factor;          /* linear/llama3 factor */
    float rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int32_t rope_orig_ctx;      /* llama3 original_max_position_embeddings */
    bool tied_embeddings;       /* lm_head = embed_tokens */
    bool attn_qkv_bias;         /* q/k/v projections have biases (Qwen2) */
    bool attn_o_bias;           /* o_proj has a bias (Llama attention_bias=true) */
    bool mlp_bias;              /* gate/up/down have biases */
} sq_config;

/* Checks that the numbers are positive, consistent (heads divisible by kv heads, even
 * head_dim, ...) and within sane limits. `what` names the source in the message. */
sq_status sq_config_validate(const sq_config *c, const char *what);

/* ===== Vocabulary =====
 * Everything a tokenizer needs, in one plain struct: the importers fill it (from
 * tokenizer.model, tokenizer.json or llama2.c tokenizer.bin), the store and the runnable
 * file carry it, and runtime/tokenizer.c builds an encoder/decoder from it.
 * SPM pieces are stored in SentencePiece form: spaces are U+2581 ("▁"), byte pieces
 * are the text "<0xHH>". BPE tokens are stored in GPT-2 byte-to-unicode form ("Ġ"). */

typedef enum { SQ_VOCAB_SPM = 0, SQ_VOCAB_BPE = 1 } sq_vocab_kind;
/* Pre-tokenizers for byte-level BPE (FORMATS.md 4.2). */
typedef enum {
    SQ_PRE_DEFAULT = 0, /* SPM: none */
    SQ_PRE_GPT2 = 1,
    SQ_PRE_LLAMA3 = 2,
    SQ_PRE_QWEN2 = 3,
    SQ_PRE_SMOLLM = 4
} sq_pretok;

/* SentencePiece piece types (sentencepiece_model.proto), also used for BPE tokens. */
typedef enum {
    SQ_TOKEN_NORMAL = 1,
    SQ_TOKEN_UNKNOWN = 2,
    SQ_TOKEN_CONTROL = 3,
    SQ_TOKEN_USER_DEFINED = 4,
    SQ_TOKEN_UNUSED = 5,
    SQ_TOKEN_BYTE = 6
} sq_token_type;

typedef struct {
    sq_vocab_kind kind;
    sq_pretok pre;
    int32_t n_tokens;
    char **tokens;          /* [n_tokens] owned NUL-terminated UTF-8 strings */
    float *scores;          /* [n_tokens] (SPM merge priority; 0 for BPE) */
    int32_t *types;         /* [n_tokens] sq_token_type */
    int32_t n_merges;       /* BPE only */
    char **merges;          /* [n_merges] "left right", rank = index */
    int32_t bos_id, eos_id, unk_id, pad_id; /* -1 when absent */
    bool add_bos, add_eos;
    bool add_dummy_prefix;           /* SPM normalizer: prepend "▁" */
    bool remove_extra_whitespaces;   /* SPM normalizer */
    bool byte_fallback;              /* SPM: unknown characters become <0xHH> pieces */
} sq_vocab;

void sq_vocab_free(sq_vocab *v); /* frees the arrays, zeroes the struct; NULL-safe */
/* Deep copy. */
sq_status sq_vocab_copy(sq_vocab *dst, const sq_vocab *src);
/* Checks ids in range, no NULL strings, merges only for BPE. `what` names the source. */
sq_status sq_vocab_validate(const sq_vocab *v, const char *what);
const char *sq_pretok_name(sq_pretok p);
sq_status sq_pretok_from_name(const char *name, sq_pretok *out);

#endif
