/* kld_internal.h - base-file writer and per-position math shared inside eval/. */
#ifndef SQ_KLD_INTERNAL_H
#define SQ_KLD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "eval.h"

/* log(sum(exp(x))) computed with max subtraction, summed in double. */
double sq_logsumexp(const float *x, int32_t n, float *max_out);
/* Indices of the k largest of x[0..n), largest first, ties to the lower index. */
void sq_top_k(const float *x, int32_t n, int32_t k, int32_t *idx);

size_t sq_kld_record_bytes(int32_t k);
/* Fills one base record (nll, log_rest, k x {id, log_p}) from a position's logits.
 * scratch holds k ints. */
void sq_kld_record_make(const float *logits, int32_t n_vocab, int32_t k, int32_t target, uint8_t *rec,
                        int32_t *scratch);

typedef struct {
    double kld, nll, nll_base, dp;
    int same_top1;
} sq_kld_point;
/* Compares a position's logits with its base record. */
void sq_kld_compare(const uint8_t *rec, int32_t k, const float *logits, int32_t n_vocab, int32_t target,
                    sq_kld_point *out);

typedef struct sq_kld_writer sq_kld_writer;
sq_status sq_kld_writer_open(sq_kld_writer **out, const char *path, sq_protocol protocol, int32_t ctx,
                             int32_t n_vocab, int32_t k, int32_t n_windows, uint64_t n_positions, uint64_t tok_hash,
                             const uint8_t *text_sha256, const int32_t *tokens);
sq_status sq_kld_writer_put(sq_kld_writer *w, const void *data, size_t n);
sq_status sq_kld_writer_records(sq_kld_writer *w, const uint8_t *recs, uint64_t n);
sq_status sq_kld_writer_close(sq_kld_writer *w); /* writes the checksum and commits */
void sq_kld_writer_abort(sq_kld_writer *w);      /* NULL-safe */

int32_t sq_kld_base_k(const sq_kld_base *b);
const uint8_t *sq_kld_base_record(const sq_kld_base *b, uint64_t i);

#endif
