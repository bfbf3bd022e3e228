/* checkpoint.h - a whole model in memory (config, vocabulary, named tensors, provenance)
 * and the functions that move it between formats:
 *
 *   Hugging Face dir / llama2.c .bin / .gguf  --import-->  sq_checkpoint  --store_write-->  model.h5
 *   model.h5  --store_read-->  sq_checkpoint  --sq_sqz_write-->  model.sqz (runtime/sqz.h)
 *                                        \--sq_export_gguf-->  model.gguf (docs/gguf.md)
 *
 * Tensors carry Hugging Face names and [out, in] shapes; q/k rows stay in the layout of
 * the source, recorded in cfg.rope_layout (FORMATS.md 3), so a round trip is bit-exact.
 * All functions return an sq_status with a one-line message naming the file.
 */
#ifndef SQ_CHECKPOINT_H
#define SQ_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "../runtime/types.h"

typedef struct {
    char *path;      /* file name as given (relative names kept relative) */
    char sha256[65]; /* lowercase hex */
    uint64_t size;
} sq_source_file;

/* How one quantized tensor was made: the method parameters the model store keeps as
 * attributes of /quant/<name> (docs/model-store.md, docs/quantization.md). Plain data. */
typedef struct {
    char name[SQ_MAX_NAME];   /* tensor name */
    char method[8];           /* "rtn" | "gptq" | "awq" ("" when unknown) */
    int32_t bits;             /* 8 | 4 | 3 */
    int32_t group_size;       /* weights per group; 0 = one group per row */
    bool symmetric, act_order, static_groups, true_sequential, mse;
    char grid[12];            /* symmetric: "gptq" | "signed-max" (quantize/quant.h); "" when unknown */
    double damp, damp_used;   /* gptq: requested and used damping fraction (else 0) */
    int32_t block_size;       /* gptq: lazy-batch block (else 0) */
    double loss;              /* gptq proxy loss; awq: scaling-group loss; rtn: relative weight error */
    double awq_alpha;         /* awq: the scale exponent; < 0 when the tensor was not scaled */
    char calib_sha256[65];    /* SHA-256 of the calib.h5 used ("" without calibration) */
} sq_quant_info;

/* How one tensor was pruned: kept by the model store as attributes of /sparse/<name>
 * (docs/model-store.md, docs/pruning.md). Filled by squish-prune. Plain data. */
typedef struct {
    char name[SQ_MAX_NAME];   /* tensor name */
    char method[16];          /* "magnitude" | "wanda" | "sparsegpt" ("" when unknown) */
    int32_t n, m;             /* N:M: n weights kept of every m consecutive in a row; 0,0 = unstructured */
    double sparsity;          /* fraction of the tensor's weights that are zero, in [0, 1] */
} sq_sparse_info;

typedef struct {
    sq_config cfg;
    sq_vocab vocab;
    sq_tensor *tensors;       /* [n_tensors], owned, in model order */
    int32_t n_tensors;
    char *source_format;      /* "hf-safetensors", "llama2c-v0", ... (owned) */
    sq_source_file *sources;  /* [n_sources] input files with hashes (owned) */
    int32_t n_sources;
    char *config_json;        /* original config.json text, or NULL (owned) */
    char *tokenizer_json;     /* original tokenizer.json text, or NULL (owned) */
    char *tool_version;       /* "squish 0.1.0" (owned, may be NULL) */
    char *command_line;       /* the command that made it (owned, may be NULL) */
    sq_quant_info *quant;     /* [n_quant] method parameters of quantized tensors (owned) */
    int32_t n_quant;
    sq_sparse_info *sparse;   /* [n_sparse] pruning records of pruned tensors (owned) */
    int32_t n_sparse;
} sq_checkpoint;

void sq_checkpoint_free(sq_checkpoint *c); /* NULL-safe; zeroes the struct */
/* Adds a copy of *qi, replacing the entry of the same tensor name if there is one. */
sq_status sq_checkpoint_set_quant_info(sq_checkpoint *c, const sq_quant_info *qi);
/* The entry of a tensor, or NULL. */
const sq_quant_info *sq_checkpoint_quant_info(const sq_checkpoint *c, const char *name);
/* Adds a copy of *si, replacing the entry of the same tensor name if there is one. */
sq_status sq_checkpoint_set_sparse_info(sq_checkpoint *c, const sq_sparse_info *si);
/* The pruning record of a tensor, or NULL. */
const sq_sparse_info *sq_checkpoint_sparse_info(const sq_checkpoint *c, const char *name);
/* The tensor with this name, or NULL. */
sq_tensor *sq_checkpoint_find(const sq_checkpoint *c, const char *name);
/* Appends a tensor (takes ownership of t's name and data; t is zeroed). */
sq_status sq_checkpoint_add(sq_checkpoint *c, sq_tensor *t);
/* Appends an input file, hashing it. */
sq_status sq_checkpoint_add_source(sq_checkpoint *c, const char *path);

/* Checks that every tensor the config implies is present with the right shape and no
 * unknown tensor is left over; `what` names the source in messages. */
sq_status sq_checkpoint_validate(const sq_checkpoint *c, const char *what);

/* Converts tensors to `type`: with SQ_TYPE_F32 every float tensor; with F16/BF16 the 2-D
 * weights only (1-D norms and biases keep their type, so nothing is lost there).
 * Group-quantized tensors keep their type. */
sq_status sq_checkpoint_convert(sq_checkpoint *c, sq_type type);

/* ===== Importers ===== */

/* Hugging Face directory: config.json, model.safetensors or model.safetensors.index.json
 * with shards, tokenizer.model or tokenizer.json, optional tokenizer_config.json. */
sq_status sq_import_hf(const char *dir, sq_checkpoint *out);

/* llama2.c checkpoint (v0 legacy, v1 fp32, v2 Q8_0 dequantized to f32) with its
 * tokenizer.bin; tokenizer_path NULL means "tokenizer.bin or tok<N>.bin beside it". */
sq_status sq_import_llama2c(const char *bin_path, const char *tokenizer_path, sq_checkpoint *out);

/* GGUF v3 file (architectures llama and qwen2; F32/F16/BF16 tensors; docs/gguf.md). q/k
 * rows stay as stored: rope_layout is interleaved for llama, half for qwen2. Other tensor
 * types (Q4_0, Q4_K, ...) are SQ_ERR_UNSUPPORTED naming the tensor and the type. */
sq_status sq_import_gguf(const char *path, sq_checkpoint *out);

/* A squish runnable file (.sqz) back into a checkpoint (validated, checksum verified). */
sq_status sq_import_sqz(const char *path, sq_checkpoint *out);

/* Detects what `src` is (HF directory, .safetensors file inside one, llama2.c .bin, a GGUF
 * file (*.gguf or the GGUF magic), or an .h5 model store) and imports it. tokenizer_path
 * may be NULL. */
sq_status sq_import_any(const char *src, const char *tokenizer_path, sq_checkpoint *out);

/* ===== Exporters ===== */

/* What sq_export_gguf wrote, for the tool to report. */
#define SQ_GGML_TYPE_SLOTS 40 /* ggml type ids are below this (sq_ggml_type in gguf.h) */
typedef struct {
    int64_t matrices[SQ_GGML_TYPE_SLOTS]; /* 2-D tensors written, per ggml type id */
    int32_t n_from_quant;     /* of them, squish group-quantized tensors */
    double max_abs_err;       /* largest |weight change| of those (only Q4_1/Q5_1's fp16 offsets round) */
    int64_t tensor_bytes;     /* tensor data written (rope_freqs.weight included) */
} sq_gguf_export_stats;

typedef struct {
    sq_gguf_export_stats *stats; /* filled when not NULL */
    const char *name;         /* general.name; NULL: the output file name without directory and .gguf */
    const char *store_path;   /* the model store exported from, recorded with store_sha256 (both may be NULL) */
    const char *store_sha256;
} sq_gguf_export_opts;

/* Writes c as a GGUF v3 file the way llama.cpp's convert_hf_to_gguf.py would (FORMATS.md
 * 6.7; docs/gguf.md): architecture llama (Llama, Mistral, SmolLM) or qwen2, q/k rows
 * permuted into the architecture's RoPE layout when the checkpoint's differs, matrices in
 * their type (F32/F16/BF16), 1-D tensors as F32, the vocabulary padded to vocab_size with
 * llama.cpp's [PADn] tokens, squish provenance under squish.*. Atomic and deterministic.
 * opts may be NULL. */
sq_status sq_export_gguf(const sq_checkpoint *c, const char *path, const sq_gguf_export_opts *opts);

/* ===== Vocabulary readers (core/vocab_io.c) ===== */

/* SentencePiece tokenizer.model (protobuf ModelProto). */
sq_status sq_vocab_read_spm(const char *path, sq_vocab *out);
/* Hugging Face tokenizer.json (BPE model; byte-level or SentencePiece-style). If
 * config_path (tokenizer_config.json) is non-NULL and exists, add_bos/add_eos come from it. */
sq_status sq_vocab_read_hf_json(const char *path, const char *config_path, sq_vocab *out);
/* Applies add_bos_token/add_eos_token from a tokenizer_config.json (missing file: no-op). */
sq_status sq_vocab_apply_tokenizer_config(sq_vocab *v, const char *config_path);
/* llama2.c tokenizer.bin with n_tokens entries (the count comes from the model header). */
sq_status sq_vocab_read_llama2c(const char *path, int32_t n_tokens, sq_vocab *out);

/* ===== HDF5 model store (core/store.c, layout in docs/model-store.md) ===== */

/* Writes atomically (path.tmp then rename). Deterministic: the same checkpoint gives a
 * byte-identical file (no timestamps). */
sq_status sq_store_write(const char *path, const sq_checkpoint *c);
sq_status sq_store_read(const char *path, sq_checkpoint *out);
/* True if the file starts with the HDF5 signature. */
bool sq_store_is_hdf5(const char *path);

#endif
