/* sqz.h - the runnable file (.sqz): one file with the hyperparameters, the tokenizer and
 * every tensor, 64-byte aligned so the executor mmaps it and points into it.
 * The byte layout is specified in docs/sqz-format.md; this is its only reader and writer.
 *
 * Reading treats the file as hostile: every offset, size and count is checked against the
 * file size with overflow-safe arithmetic before use, and the XXH64 checksum over the
 * whole file is verified unless the caller opts out. Writing goes to "<path>.tmp", is
 * fsync'ed, then renamed, so a crash never leaves a file that looks complete.
 */
#ifndef SQ_SQZ_H
#define SQ_SQZ_H

#include <stdbool.h>
#include <stdint.h>

#include "types.h"

#define SQ_SQZ_MAGIC "SQUISHRF"
#define SQ_SQZ_VERSION 2u     /* written; versions 1 (float tensors only) and 2 are read */
#define SQ_SQZ_MIN_VERSION 1u
#define SQ_SQZ_ALIGN 64u
#define SQ_SQZ_HEADER_BYTES 128u

typedef struct sq_sqz sq_sqz;

/* Opens and maps `path`, validates its structure and (if verify) its checksum, and
 * decodes config and vocab. The tensors' data point into the mapping. */
sq_status sq_sqz_open(sq_sqz **out, const char *path, bool verify);
void sq_sqz_close(sq_sqz *f); /* NULL-safe; unmaps */

const sq_config *sq_sqz_config(const sq_sqz *f);
const sq_vocab *sq_sqz_vocab(const sq_sqz *f);
int32_t sq_sqz_n_tensors(const sq_sqz *f);
const sq_tensor *sq_sqz_tensor(const sq_sqz *f, int32_t i);      /* data borrowed */
const sq_tensor *sq_sqz_find(const sq_sqz *f, const char *name); /* NULL if absent */
uint64_t sq_sqz_file_size(const sq_sqz *f);
uint64_t sq_sqz_checksum(const sq_sqz *f);
uint32_t sq_sqz_version(const sq_sqz *f); /* format version of the file as read */
/* Free-form string metadata (provenance): value of `key` or NULL. */
const char *sq_sqz_meta(const sq_sqz *f, const char *key);
int32_t sq_sqz_n_meta(const sq_sqz *f);
void sq_sqz_meta_at(const sq_sqz *f, int32_t i, const char **key, const char **value);

/* A key/value string pair for provenance metadata. */
typedef struct {
    const char *key;
    const char *value;
} sq_kv;

/* Writes a runnable file (version SQ_SQZ_VERSION) atomically. Tensor data must be laid
 * out as its type requires (quantized tensors: 2-D, with valid t->q, nbytes =
 * sq_tensor_bytes); tensors keep the order given. Keys of `meta` must not start with "config." or "tok."
 * (reserved for the config and vocab). */
sq_status sq_sqz_write(const char *path, const sq_config *cfg, const sq_vocab *vocab,
                       const sq_tensor *tensors, int32_t n_tensors, const sq_kv *meta,
                       int32_t n_meta);

/* ===== XXH64 (the file checksum; also used for tokenizer identity hashes) ===== */

typedef struct {
    uint64_t v[4];
    uint64_t total;
    uint8_t buf[32];
    uint32_t buf_len;
    uint64_t seed;
} sq_xxh64_state;

void sq_xxh64_init(sq_xxh64_state *h, uint64_t seed);
void sq_xxh64_update(sq_xxh64_state *h, const void *data, size_t len);
uint64_t sq_xxh64_digest(const sq_xxh64_state *h);
uint64_t sq_xxh64(const void *data, size_t len, uint64_t seed);

/* A stable 64-bit identity of a vocabulary (kind, tokens, scores, types, merges, special
 * ids and flags), printed by squish-eval so results pin the tokenizer. */
uint64_t sq_vocab_hash(const sq_vocab *v);

#endif
