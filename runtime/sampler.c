/* sampler.c - greedy, temperature, top-k and top-p (nucleus, Holtzman et al. 2019,
 * arXiv:1904.09751) sampling with splitmix64 random numbers, so a seed gives the same
 * tokens on every platform. */
#include "sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

int sq_sampler_init(sq_sampler *s, int32_t n_vocab, float temperature, float top_p, int32_t top_k, uint64_t seed) {
    s->temperature = temperature;
    s->top_p = top_p;
    s->top_k = top_k;
    s->rng = seed;
    s->n_vocab = n_vocab;
    s->probs = malloc((size_t)n_vocab * sizeof(float));
    s->idx = malloc((size_t)n_vocab * sizeof(int32_t));
    if (!s->probs || !s->idx) {
        sq_sampler_free(s);
        return -1;
    }
    return 0;
}

void sq_sampler_free(sq_sampler *s) {
    free(s->probs);
    free(s->idx);
    s->probs = NULL;
    s->idx = NULL;
}

int32_t sq_argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* splitmix64 (Steele, Lea, Flood 2014): a uniform double in [0, 1). */
static double next_uniform(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static const float *sort_probs; /* qsort context (sampling is single-threaded) */
static int cmp_desc(const void *a, const void *b) {
    float pa = sort_probs[*(const int32_t *)a], pb = sort_probs[*(const int32_t *)b];
    if (pa != pb) return pa > pb ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

int32_t sq_sampler_sample(sq_sampler *s, float *logits) {
    const int32_t n = s->n_vocab;
    if (s->temperature <= 0.0f) return sq_argmax(logits, n);
    float mx = logits[sq_argmax(logits, n)];
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        s->probs[i] = expf((logits[i] - mx) / s->temperature);
        sum += s->probs[i];
    }
    for (int32_t i = 0; i < n; i++) s->probs[i] = (float)(s->probs[i] / sum);

    int32_t m = n;
    bool truncate = (s->top_k > 0 && s->top_k < n) || (s->top_p > 0.0f && s->top_p < 1.0f);
    if (!truncate) {
        double r = next_uniform(&s->rng), cdf = 0.0;
        for (int32_t i = 0; i < n; i++) {
            cdf += s->probs[i];
            if (r < cdf) return i;
        }
        return n - 1;
    }
    for (int32_t i = 0; i < n; i++) s->idx[i] = i;
    sort_probs = s->probs;
    qsort(s->idx, (size_t)n, sizeof(int32_t), cmp_desc);
    if (s->top_k > 0 && s->top_k < m) m = s->top_k;
    double kept = 0.0;
    if (s->top_p > 0.0f && s->top_p < 1.0f) {
        int32_t cut = m;
        for (int32_t i = 0; i < m; i++) {
            kept += s->probs[s->idx[i]];
            if (kept >= s->top_p) {
                cut = i + 1;
                break;
            }
        }
        m = cut;
    }
    kept = 0.0;
    for (int32_t i = 0; i < m; i++) kept += s->probs[s->idx[i]];
    double r = next_uniform(&s->rng) * kept, cdf = 0.0;
    for (int32_t i = 0; i < m; i++) {
        cdf += s->probs[s->idx[i]];
        if (r < cdf) return s->idx[i];
    }
    return s->idx[m - 1];
}
