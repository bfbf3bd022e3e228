/* calib.h - calibration shared by squish-calibrate and squish-quantize (docs/quantization.md,
 * ALGORITHMS.md 0 and 9):
 *
 *   data    tokenize a text file (one document, BOS first) or a jsonl file (one document
 *           per line, each tokenized alone) and draw reproducible windows of seq_len
 *           tokens with splitmix64 (core/calib_data.c);
 *   stats   per distinct linear input (q/k/v share one, gate/up share one, o, down):
 *           X^T X in double, sum |x|, sum x^2 and the token count, accumulated from the
 *           forward pass's capture hooks, bitwise identical at any thread count
 *           (core/calib_stats.c);
 *   store   calib.h5: write (atomic, deterministic bytes), read with full validation, the
 *           model-hash check, and llama.cpp's legacy imatrix .dat export
 *           (core/calib_store.c).
 *
 * All functions return an sq_status with a one-line message naming the file. The HDF5
 * functions must be called from one thread at a time.
 *
 *   sq_calib_data d;  sq_calib_data_load(&d, "calib.txt", SQ_CALIB_TEXT, NULL, tok, true);
 *   sq_calib c;  sq_calib_init(&c, &model->cfg);  ... fill provenance, c.windows = malloc ...
 *   sq_calib_windows_draw(&d, "calib.txt", n, L, seed, c.windows);
 *   sq_calib_collect(&c, model, &d, c.windows, n, L, NULL, NULL);
 *   sq_calib_write("calib.h5", &c);  sq_calib_free(&c);  sq_calib_data_free(&d);
 */
#ifndef SQ_CALIB_H
#define SQ_CALIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/model.h"
#include "../runtime/tokenizer.h"
#include "checkpoint.h"

/* ===== Random numbers ===== */

/* splitmix64 (Steele, Lea, Flood 2014): the next 64-bit value of the generator *state. */
uint64_t sq_splitmix64(uint64_t *state);
/* Uniform in [0, n) without modulo bias (rejection); n > 0. */
uint64_t sq_splitmix64_below(uint64_t *state, uint64_t n);

/* ===== Calibration data (core/calib_data.c) ===== */

typedef enum { SQ_CALIB_TEXT = 0, SQ_CALIB_JSONL = 1 } sq_calib_format;

const char *sq_calib_format_name(sq_calib_format f); /* "text" | "jsonl" */
sq_status sq_calib_format_from_name(const char *name, sq_calib_format *out);

/* Tokenized calibration data: documents stored back to back. A text file is one document;
 * a jsonl file has one document per non-empty line (document d is the d-th non-empty
 * line, counting from 0). */
typedef struct {
    sq_calib_format format;
    int64_t n_docs;
    int64_t *doc_start;   /* [n_docs + 1]: document d is tokens[doc_start[d] .. doc_start[d + 1]) */
    int32_t *tokens;      /* [n_tokens] */
    int64_t n_tokens;
    char sha256[65];      /* of the file's bytes, lowercase hex */
    uint64_t n_bytes;     /* file size */
} sq_calib_data;

/* Reads and tokenizes `path`. text: the whole file in one call; jsonl: every non-empty line
 * must be a JSON object whose member `field` (NULL: "text") is a string, tokenized alone.
 * Each document starts with BOS when add_bos (and the vocabulary has one). Errors name the
 * file and, for jsonl, the 1-based line number. jsonl documents are tokenized in parallel
 * (the tokenizer is read-only), with the same result at any thread count. The caller frees
 * *out with sq_calib_data_free. */
sq_status sq_calib_data_load(sq_calib_data *out, const char *path, sq_calib_format format, const char *field,
                             const sq_tokenizer *tok, bool add_bos);
void sq_calib_data_free(sq_calib_data *d); /* NULL-safe; zeroes the struct */

/* One calibration window: seq_len tokens of document `doc` starting at token `offset`. */
typedef struct {
    int64_t doc;
    int64_t offset;
} sq_calib_window;

/* Draws n windows of seq_len tokens from one splitmix64 generator seeded with `seed`, in
 * order (docs/quantization.md):
 *   text  - start uniform in [0, n_tokens - seq_len];
 *   jsonl - draw a document uniformly until one has more than seq_len tokens, then a start
 *           uniform in [0, len - seq_len - 1] (the GPTQ/SparseGPT/Wanda C4 loader).
 * Fails with SQ_ERR_ARG when the data is shorter than one window (text) or no document is
 * longer than seq_len tokens (jsonl); `what` (the file name) prefixes the message. */
sq_status sq_calib_windows_draw(const sq_calib_data *d, const char *what, int64_t n, int32_t seq_len, uint64_t seed,
                                sq_calib_window *out);

/* The first token of window w (seq_len tokens follow), or NULL when w does not lie inside
 * the data. */
const int32_t *sq_calib_window_tokens(const sq_calib_data *d, sq_calib_window w, int32_t seq_len);

/* ===== Statistics (core/calib_stats.c) ===== */

#define SQ_CALIB_POINTS 4 /* capture points per layer: sq_capture_point */

/* The statistics of one distinct linear input. */
typedef struct {
    char name[SQ_MAX_NAME]; /* the first linear that reads it: "model.layers.3.self_attn.q_proj" */
    char users[64];         /* "q_proj,k_proj,v_proj" | "o_proj" | "gate_proj,up_proj" | "down_proj" */
    int32_t layer;
    sq_capture_point point;
    int32_t width;          /* input features ("in") */
    double *xtx;            /* [width, width], symmetric: sum_t x_t x_t^T (not divided by anything) */
    double *abs_sum;        /* [width] sum_t |x_t| */
    double *sq_sum;         /* [width] sum_t x_t^2 (bitwise equal to diag(xtx)) */
    int64_t n_tokens;
} sq_calib_entry;

/* A calibration result: provenance plus one entry per (layer, capture point), in layer
 * order and, within a layer, in sq_capture_point order (q/k/v, o, gate/up, down). */
typedef struct {
    char model_sha256[65];
    char *data_path;            /* owned */
    char data_sha256[65];
    sq_calib_format data_format;
    char *data_field;           /* jsonl member name (owned; NULL for text) */
    int64_t n_samples;
    int32_t seq_len;
    uint64_t seed;
    int64_t n_tokens;           /* tokens in the whole calibration data */
    sq_calib_window *windows;   /* [n_samples] (owned) */
    char *tool_version;         /* "squish 0.1.0" (owned, may be NULL) */
    char *command_line;         /* (owned, may be NULL) */

    int32_t n_layers;
    sq_calib_entry *entries;    /* [n_layers * SQ_CALIB_POINTS] */
    int32_t n_entries;

    /* accumulation scratch; the capture hook records its first failure in `err` */
    double *pack;
    size_t pack_cap;
    sq_status err;
} sq_calib;

/* Empty statistics (all zeros) for the linear inputs cfg implies. Fails with SQ_ERR_OOM
 * naming the bytes needed. Frees nothing on entry: *c must not hold anything. */
sq_status sq_calib_init(sq_calib *c, const sq_config *cfg);
void sq_calib_free(sq_calib *c); /* NULL-safe; zeroes the struct */

/* The entry of (layer, point), or NULL. */
sq_calib_entry *sq_calib_entry_at(const sq_calib *c, int32_t layer, sq_capture_point point);
/* The entry a linear reads, by its Hugging Face name with or without ".weight"
 * ("model.layers.0.self_attn.k_proj" -> the q_proj entry), or NULL. */
sq_calib_entry *sq_calib_entry_for(const sq_calib *c, const char *linear_name);

/* Adds the contribution of n rows x [n, e->width] (one window): its X^T X, sum |x| and
 * sum x^2 are summed over the rows in order, in double, and then added to the entry, so
 * the result does not depend on the thread count (OpenMP over 4-row panels of X^T X).
 * `pack` is scratch of sq_calib_pack_doubles(width, n) doubles. */
void sq_calib_entry_add(sq_calib_entry *e, const float *x, int64_t n, double *pack);
size_t sq_calib_pack_doubles(int32_t width, int64_t n);

/* The capture hook (runtime/model.h) for sq_state_set_capture with user = sq_calib *:
 * adds x to the entry of (layer, point). Failures (out of memory, a width that does not
 * match) are recorded in c->err with a message; check it after each sq_forward. */
void sq_calib_capture(void *user, int32_t layer, sq_capture_point point, const float *x, int32_t n, int32_t width);

/* Called after each window with (done, total). */
typedef void (*sq_calib_progress_fn)(void *user, int64_t done, int64_t total);

/* Runs every window (seq_len tokens from position 0, no logits) through m's forward pass
 * with sq_calib_capture and accumulates into c, in window order. Does not touch c's
 * provenance. */
sq_status sq_calib_collect(sq_calib *c, const sq_model *m, const sq_calib_data *d, const sq_calib_window *w,
                           int64_t n, int32_t seq_len, sq_calib_progress_fn progress, void *user);

/* ===== calib.h5 (core/calib_store.c) ===== */

/* Writes calib.h5 as docs/quantization.md specifies: atomic (temp file + rename) and
 * deterministic (the same sq_calib gives the same bytes). xtx is written in full. */
sq_status sq_calib_write(const char *path, const sq_calib *c);

/* Reads and validates a calib.h5: format and version, every attribute, the windows, and
 * every entry's shapes, n_tokens (= n_samples * seq_len), users and finite values; the
 * layers must be complete and consistent. The caller frees *out with sq_calib_free. */
sq_status sq_calib_read(const char *path, sq_calib *out);

/* SQ_OK when the calibration was made on the model with this SHA-256; otherwise
 * SQ_ERR_ARG with a message naming both hashes. */
sq_status sq_calib_check_model(const sq_calib *c, const char *model_sha256);

/* SQ_OK when the entries match the shapes cfg implies (layers, dim, q_dim, hidden_dim). */
sq_status sq_calib_check_config(const sq_calib *c, const sq_config *cfg);

/* The model hash calib.h5 records (docs/quantization.md): for a file (model store .h5,
 * llama2.c .bin, runnable .sqz) the SHA-256 of its bytes; for a Hugging Face directory (or
 * a .safetensors file in one) the SHA-256 of the manifest of config.json and the weight
 * files (*.safetensors, *.safetensors.index.json), one "<sha256>  <file name>\n" line each
 * (sha256sum's format), sorted by file name. `imported` (may be NULL) is the checkpoint
 * sq_import_any made of model_path: its source hashes are reused instead of re-reading. */
sq_status sq_calib_model_sha256(const char *model_path, const sq_checkpoint *imported, char hex[65]);

/* Writes llama.cpp's legacy imatrix .dat (FORMATS.md 6.6) atomically: one entry per linear
 * with its GGUF name (blk.N.attn_q.weight, ...), ncall = n_samples, values = mean of x^2
 * over the calibration tokens times ncall (f32); trailer last_call = n_samples and the
 * data path as the dataset name. */
sq_status sq_calib_write_imatrix(const char *path, const sq_calib *c);

#endif
