/* calib_seq.h - the sequential block-input capture squish-quantize and squish-prune share
 * (the "sequential" mode of GPTQ arXiv:2210.17323 and SparseGPT arXiv:2301.00774, ALGORITHMS.md
 * 0): the calibration windows calib.h5 records are embedded once, then run block by block
 * through the runtime's forward pass, one runtime state per worker thread, each window by one
 * thread; a capture hook copies the inputs of a block's linears (attention in, o in, FFN in,
 * down in) of the window a worker runs. The caller changes a block's weights between passes,
 * so block l+1 sees the inputs the changed block l makes. Everything derived from several
 * windows is combined by the caller in window order, so nothing depends on the thread count.
 * Also here: reloading the calibration data calib.h5 names, which the windows index. */
#ifndef SQ_CALIB_SEQ_H
#define SQ_CALIB_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/model.h"
#include "../runtime/tokenizer.h"
#include "calib.h"

#define SQ_SEQ_CHUNK 8 /* windows per parallel batch (the capture buffers hold this many) */

/* The four groups of linears that share an input (capture point g), in block order. */
extern const sq_role SQ_SEQ_ROLES[4][3];
extern const int SQ_SEQ_N_ROLES[4];
extern const sq_capture_point SQ_SEQ_POINT[4];

/* One window: block `layer` on `in` into `out` (in place when equal); the activations at the
 * capture points with cap[p] set ([L, width[p]]) are copied there. */
typedef struct {
    const float *in;
    float *out;
    float *cap[4];
} sq_seq_job;

typedef struct sq_seq_cap sq_seq_cap; /* a worker's capture target (calib_seq.c) */

typedef struct {
    int64_t N;            /* windows */
    int32_t L, dim;       /* tokens per window, model width */
    int32_t width[4];     /* per capture point: dim, n_heads * head_dim, dim, hidden_dim */
    float *X, *Y;         /* [N * L * dim]: the current block's inputs, outputs */
    float *scratch;       /* [n_scratch * L * dim] */
    int64_t n_scratch;
    float *capbuf[4];     /* [SQ_SEQ_CHUNK * L * width[p]] per capture point */
    sq_seq_job *jobs;     /* [n_scratch] */
    int n_wk;             /* worker threads, one runtime state each */
    sq_state **ws;
    sq_seq_cap *wc;
} sq_seq;

/* Allocates the caches for the windows of `c` (n_scratch >= SQ_SEQ_CHUNK windows of scratch
 * and jobs), one runtime state of `m` per thread, and embeds every window into X. Free with
 * sq_seq_free (also on failure), before the model. */
sq_status sq_seq_init(sq_seq *s, sq_model *m, const sq_calib *c, const sq_calib_data *d, int64_t n_scratch);
/* Runs block `layer` on the n jobs in parallel; the first failure's message is kept. */
sq_status sq_seq_run(sq_seq *s, int32_t layer, const sq_seq_job *jobs, int64_t n);
/* Window i of a [N * L * dim] cache. */
float *sq_seq_win(const sq_seq *s, float *base, int64_t i);
void sq_seq_free(sq_seq *s);
/* Reloads the calibration data calib.h5 recorded (`data_path`, or `override_path` when
 * non-NULL; a relative recorded path is also looked up beside calib.h5), checks its
 * SHA-256 and that every window lies inside it, and tokenizes it as squish-calibrate did.
 * Errors name both hashes or the missing file. */
sq_status sq_calib_data_reload(const sq_calib *c, const char *calib_path, const char *override_path,
                               const sq_tokenizer *tok, bool add_bos, sq_calib_data *out);
/* sum over n of (a - b)^2 in double */
double sq_seq_sq_diff(const float *a, const float *b, size_t n);

#endif
