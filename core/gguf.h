/* gguf.h - the GGUF v3 container (ggml-org/ggml docs/gguf.md; FORMATS.md 6.1, 6.4): a reader
 * that treats the file as hostile and a deterministic, atomic writer. It knows the byte
 * layout, the metadata value types and the ggml tensor types with their block sizes; what
 * the keys and tensors mean for a model is core/gguf_model.c (sq_import_gguf/sq_export_gguf).
 *
 *   sq_gguf_open(&f, "m.gguf"); kv = sq_gguf_find_kv(f, "general.architecture"); sq_gguf_close(f);
 *   sq_gguf_writer_open(&w, "o.gguf"); sq_gguf_writer_add_str(w, "general.name", "x"); ...
 *   sq_gguf_writer_add_tensor(w, "token_embd.weight", SQ_GGML_F16, 2, ne, data, nbytes);
 *   sq_gguf_writer_finish(w); sq_gguf_writer_close(w);
 * Little-endian files only. Objects are not thread-safe; distinct objects are independent.
 */
#ifndef SQ_GGUF_H
#define SQ_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "../runtime/types.h"

#define SQ_GGUF_MAGIC "GGUF"
#define SQ_GGUF_VERSION 3u
#define SQ_GGUF_DEFAULT_ALIGNMENT 32u
#define SQ_GGUF_MAX_DIMS 4
#define SQ_GGUF_MAX_NAME 63     /* tensor name bytes (ggml's GGML_MAX_NAME 64 with the NUL) */
#define SQ_GGUF_MAX_KEY 65535   /* metadata key bytes */

/* Metadata value types, numbered as in the spec. */
typedef enum {
    SQ_GGUF_UINT8 = 0,
    SQ_GGUF_INT8 = 1,
    SQ_GGUF_UINT16 = 2,
    SQ_GGUF_INT16 = 3,
    SQ_GGUF_UINT32 = 4,
    SQ_GGUF_INT32 = 5,
    SQ_GGUF_FLOAT32 = 6,
    SQ_GGUF_BOOL = 7,
    SQ_GGUF_STRING = 8,
    SQ_GGUF_ARRAY = 9,
    SQ_GGUF_UINT64 = 10,
    SQ_GGUF_INT64 = 11,
    SQ_GGUF_FLOAT64 = 12
} sq_gguf_vtype;

const char *sq_gguf_vtype_name(uint32_t t); /* "uint32", ...; "?" when unknown */

/* ggml tensor type ids as stored in GGUF (ggml.h's enum: append-only upstream, retired ids
 * are never reused). Not squish's sq_type: sq_ggml_from_sq / sq_ggml_to_sq map the two. */
typedef enum {
    SQ_GGML_F32 = 0,
    SQ_GGML_F16 = 1,
    SQ_GGML_Q4_0 = 2,
    SQ_GGML_Q4_1 = 3,
    SQ_GGML_Q5_0 = 6,
    SQ_GGML_Q5_1 = 7,
    SQ_GGML_Q8_0 = 8,
    SQ_GGML_Q8_1 = 9,
    SQ_GGML_Q2_K = 10,
    SQ_GGML_Q3_K = 11,
    SQ_GGML_Q4_K = 12,
    SQ_GGML_Q5_K = 13,
    SQ_GGML_Q6_K = 14,
    SQ_GGML_Q8_K = 15,
    SQ_GGML_IQ2_XXS = 16,
    SQ_GGML_IQ2_XS = 17,
    SQ_GGML_IQ3_XXS = 18,
    SQ_GGML_IQ1_S = 19,
    SQ_GGML_IQ4_NL = 20,
    SQ_GGML_IQ3_S = 21,
    SQ_GGML_IQ2_S = 22,
    SQ_GGML_IQ4_XS = 23,
    SQ_GGML_I8 = 24,
    SQ_GGML_I16 = 25,
    SQ_GGML_I32 = 26,
    SQ_GGML_I64 = 27,
    SQ_GGML_F64 = 28,
    SQ_GGML_IQ1_M = 29,
    SQ_GGML_BF16 = 30,
    SQ_GGML_TQ1_0 = 34,
    SQ_GGML_TQ2_0 = 35,
    SQ_GGML_MXFP4 = 39
} sq_ggml_type;

typedef struct {
    const char *name;   /* "F32", "Q4_K", ... as ggml prints them */
    int32_t block;      /* weights per block */
    int32_t block_bytes;/* bytes per block (ggml-common.h's asserted struct sizes) */
} sq_ggml_type_info;

/* Traits of a ggml type id, or NULL for an unknown or retired id. */
const sq_ggml_type_info *sq_ggml_type_info_get(uint32_t type);
/* "Q4_K", or "type <id>" for an unknown id (in a static buffer per thread: copy it). */
const char *sq_ggml_type_name(uint32_t type);
/* F32/F16/BF16 <-> sq_type; false when the type has no counterpart. */
bool sq_ggml_to_sq(uint32_t ggml_type, sq_type *out);
bool sq_ggml_from_sq(sq_type t, uint32_t *out);

/* ===== Quantized tensors (gguf_quant.c; docs/gguf.md "Quantized tensors") ===== */

/* Bytes of one row of `cols` weights of ggml type gtype; 0 when cols is not a whole number
 * of the type's blocks or the type is unknown. */
size_t sq_gguf_qrow_bytes(uint32_t gtype, int64_t cols);
/* The GGUF type a 2-D squish group-quantized tensor is written as: Q4_0/Q4_1 (q4g sym/asym),
 * Q5_0/Q5_1 (q5g), Q8_0 (q3g, q6g, q8g when every q - z fits in int8), else F16 when every
 * weight is an fp16 value, else F32 (rows that are not whole 32-weight blocks too). */
sq_status sq_gguf_qtype_for(const sq_tensor *t, uint32_t *out);
/* Writes t (rows x cols, quantized) as gtype (from sq_gguf_qtype_for) into dst, rows x the
 * type's row bytes. *max_err (may be NULL): the largest |weight difference| (only Q4_1/Q5_1,
 * whose fp16 offset m = fp16(-s*z) rounds, are not exact). */
sq_status sq_gguf_encode_qtensor(const sq_tensor *t, uint32_t gtype, void *dst, double *max_err);
/* Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K */
bool sq_gguf_qtype_importable(uint32_t gtype);
/* Decodes a rows x cols GGUF matrix of an importable type into x's type, q, data and nbytes
 * (x owns the data, also on failure): Q4_0/Q5_0/Q8_0 -> q4g/q5g/q8g symmetric, groups of 32,
 * exactly; Q4_1/Q5_1 (q*d + m) and the K-quants -> F32 as ggml decodes them. A non-finite
 * scale or offset: SQ_ERR_FORMAT naming the tensor. */
sq_status sq_gguf_decode_qtensor(const char *path, const char *name, uint32_t gtype, const uint8_t *src,
                                 int64_t rows, int64_t cols, sq_tensor *x);

/* ===== Reader ===== */

/* One metadata entry. A scalar is treated as an array of one element, so the element
 * accessors below work on both. Pointers go into the read-only mapping and live as long
 * as the sq_gguf. */
typedef struct {
    const char *key;          /* NUL-terminated copy (owned by the sq_gguf) */
    sq_gguf_vtype type;       /* SQ_GGUF_ARRAY for arrays */
    sq_gguf_vtype elem_type;  /* element type: = type for scalars, the array's for arrays */
    uint64_t n;               /* element count (1 for scalars) */
    const uint8_t *data;      /* first element in the mapping (strings: their length prefix) */
    const uint64_t *str_off;  /* string elements: offset of element i's length prefix from data */
} sq_gguf_kv;

typedef struct {
    const char *name;         /* NUL-terminated copy, at most SQ_GGUF_MAX_NAME bytes */
    uint32_t n_dims;          /* 1..4 */
    uint64_t ne[SQ_GGUF_MAX_DIMS]; /* elements per dimension, ne[0] contiguous; unused = 1 */
    uint32_t type;            /* ggml type id (known: sq_ggml_type_info_get is non-NULL) */
    uint64_t offset;          /* from the start of the data section, a multiple of the alignment */
    uint64_t nbytes;
    const uint8_t *data;      /* in the mapping */
} sq_gguf_tensor;

typedef struct sq_gguf sq_gguf;

/* Maps and validates a whole file: magic and version (2 or 3, little-endian), every string
 * length, array count and tensor dimension against the file size with overflow-checked
 * arithmetic, value types, nested arrays (refused), duplicate keys and tensor names,
 * general.alignment (uint32, a power of two and a multiple of 8; default 32), n_dims 1..4,
 * ne[0] a multiple of the type's block, tensor offsets aligned, inside the file and not
 * overlapping. Unknown tensor types are SQ_ERR_UNSUPPORTED; everything else malformed is
 * SQ_ERR_FORMAT with a one-line message naming the file. The caller owns *out. */
sq_status sq_gguf_open(sq_gguf **out, const char *path);
void sq_gguf_close(sq_gguf *f); /* NULL-safe */

const char *sq_gguf_path(const sq_gguf *f);
uint32_t sq_gguf_version(const sq_gguf *f);
uint32_t sq_gguf_alignment(const sq_gguf *f);
uint64_t sq_gguf_data_offset(const sq_gguf *f); /* start of the data section in the file */
uint64_t sq_gguf_file_size(const sq_gguf *f);

int64_t sq_gguf_n_kv(const sq_gguf *f);
const sq_gguf_kv *sq_gguf_kv_at(const sq_gguf *f, int64_t i); /* file order; NULL if out of range */
const sq_gguf_kv *sq_gguf_find_kv(const sq_gguf *f, const char *key); /* NULL if absent */
int64_t sq_gguf_n_tensors(const sq_gguf *f);
const sq_gguf_tensor *sq_gguf_tensor_at(const sq_gguf *f, int64_t i);
const sq_gguf_tensor *sq_gguf_find_tensor(const sq_gguf *f, const char *name);

/* Element i of a metadata entry. Integers and bools read as integers (false for a uint64
 * above INT64_MAX), floats as doubles (integers convert too), strings as a pointer into
 * the mapping and a length (not NUL-terminated). Each returns false when i is out of
 * range or the element type does not fit. */
bool sq_gguf_kv_int(const sq_gguf_kv *kv, uint64_t i, int64_t *out);
bool sq_gguf_kv_float(const sq_gguf_kv *kv, uint64_t i, double *out);
bool sq_gguf_kv_str(const sq_gguf_kv *kv, uint64_t i, const char **s, uint64_t *len);
/* A scalar string that equals s exactly. */
bool sq_gguf_kv_str_eq(const sq_gguf_kv *kv, const char *s);

/* ===== Writer ===== */

typedef struct sq_gguf_writer sq_gguf_writer;

/* Collects metadata and tensor descriptions in memory; nothing touches the disk until
 * sq_gguf_writer_finish, which writes "<path>.tmp.<pid>" and renames it. The layout is the
 * spec's with alignment 32: header, metadata in the order added, tensor infos in the order
 * added, zero padding, then each tensor's data padded with zeros to a multiple of 32 (as
 * ggml and gguf-py write it). Keys must be non-empty, at most SQ_GGUF_MAX_KEY bytes and
 * unique; general.alignment cannot be set (always 32). */
sq_status sq_gguf_writer_open(sq_gguf_writer **w, const char *path);
sq_status sq_gguf_writer_add_u32(sq_gguf_writer *w, const char *key, uint32_t v);
sq_status sq_gguf_writer_add_f32(sq_gguf_writer *w, const char *key, float v);
sq_status sq_gguf_writer_add_bool(sq_gguf_writer *w, const char *key, bool v);
sq_status sq_gguf_writer_add_str(sq_gguf_writer *w, const char *key, const char *v);
sq_status sq_gguf_writer_add_arr_str(sq_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
sq_status sq_gguf_writer_add_arr_f32(sq_gguf_writer *w, const char *key, const float *v, uint64_t n);
sq_status sq_gguf_writer_add_arr_i32(sq_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* A tensor of a known ggml type with n_dims (1..4) dimensions ne[] (ne[0] contiguous, a
 * multiple of the type's block); nbytes must equal what the shape needs. data is borrowed:
 * it must stay valid until sq_gguf_writer_finish returns. Names are 1..63 bytes, unique. */
sq_status sq_gguf_writer_add_tensor(sq_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const uint64_t *ne, const void *data, uint64_t nbytes);
/* Writes the file atomically. The writer can only be closed afterwards. */
sq_status sq_gguf_writer_finish(sq_gguf_writer *w);
void sq_gguf_writer_close(sq_gguf_writer *w); /* NULL-safe; nothing is written without finish */

#endif
