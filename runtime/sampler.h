/* sampler.h - next-token selection: greedy (temperature 0), temperature, top-k and
 * nucleus (top-p) sampling with a seeded, portable random generator (splitmix64), so the
 * same seed gives the same text on every machine. */
#ifndef SQ_SAMPLER_H
#define SQ_SAMPLER_H

#include <stdint.h>

typedef struct {
    float temperature; /* 0 = greedy */
    float top_p;       /* 1 = off */
    int32_t top_k;     /* 0 = off */
    uint64_t rng;      /* state; seed it with sq_sampler_init */
    int32_t n_vocab;
    float *probs;      /* scratch [n_vocab] */
    int32_t *idx;      /* scratch [n_vocab] */
} sq_sampler;

/* Returns 0 on success, -1 if out of memory. */
int sq_sampler_init(sq_sampler *s, int32_t n_vocab, float temperature, float top_p, int32_t top_k,
                    uint64_t seed);
void sq_sampler_free(sq_sampler *s);
/* Picks a token from logits[n_vocab] (logits may be modified). */
int32_t sq_sampler_sample(sq_sampler *s, float *logits);
/* Index of the largest logit (lowest index on ties). */
int32_t sq_argmax(const float *x, int32_t n);

#endif
