/* kld.c - the base log-probability file of squish-eval (docs/eval.md): a top-K summary
 * of the base model's next-token distribution at every scored position, written
 * atomically with an XXH64 trailer and read back with every size checked.
 * Also the per-position math shared by the writer and the comparison: log-softmax
 * normaliser, top-K selection and the merged-tail KL divergence.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/fileio.h"
#include "../runtime/sqz.h"
#include "kld_internal.h"

#define MAGIC "SQKLDv1"
#define HEADER_BYTES 80u

static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd_u64(const uint8_t *p) { return (uint64_t)rd_u32(p) | ((uint64_t)rd_u32(p + 4) << 32); }
static void wr_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr_u64(uint8_t *p, uint64_t v) {
    wr_u32(p, (uint32_t)v);
    wr_u32(p + 4, (uint32_t)(v >> 32));
}

/* ===== Per-position math ===== */

double sq_logsumexp(const float *x, int32_t n, float *max_out) {
    float mx = x[0];
    for (int32_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double s = 0.0;
    for (int32_t i = 0; i < n; i++) s += expf(x[i] - mx);
    if (max_out) *max_out = mx;
    return (double)mx + log(s);
}

/* Indices of the k largest values, largest first (ties: lower index first).
 * A min-heap of the k best seen so far (root = the worst of them), then heap-sort
 * extraction: O(n log k), so the full distribution (k = n, --top-k 0) is cheap too. */
static int topk_better(const float *x, int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); }

static void topk_sift_down(const float *x, int32_t *h, int32_t m, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < m && topk_better(x, h[w], h[l])) w = l;
        if (r < m && topk_better(x, h[w], h[r])) w = r;
        if (w == i) return;
        int32_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

void sq_top_k(const float *x, int32_t n, int32_t k, int32_t *idx) {
    int32_t m = 0;
    if (k > n) k = n;
    if (k <= 0) return;
    for (int32_t i = 0; i < n; i++) {
        if (m < k) { /* push, sift up */
            int32_t j = m++;
            while (j > 0 && topk_better(x, idx[(j - 1) / 2], i)) {
                idx[j] = idx[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            idx[j] = i;
        } else if (topk_better(x, i, idx[0])) {
            idx[0] = i;
            topk_sift_down(x, idx, m, 0);
        }
    }
    for (int32_t end = m - 1; end > 0; end--) { /* worst to the back: best-first order */
        int32_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        topk_sift_down(x, idx, end, 0);
    }
}

void sq_kld_record_make(const float *logits, int32_t n_vocab, int32_t k, int32_t target, uint8_t *rec,
                        int32_t *scratch) {
    float mx;
    double all = exp(sq_logsumexp(logits, n_vocab, &mx) - mx); /* sum of exp(l - mx) */
    double lz = mx + log(all);
    float nll = (float)(lz - logits[target]);
    sq_top_k(logits, n_vocab, k, scratch);
    float log_rest = -1e30f;
    if (k < n_vocab) {
        double in_s = 0.0;
        for (int32_t i = 0; i < k; i++) in_s += expf(logits[scratch[i]] - mx);
        double rest = all - in_s;
        if (rest > 0) log_rest = (float)(log(rest / all));
    }
    uint32_t u;
    memcpy(&u, &nll, 4);
    wr_u32(rec, u);
    memcpy(&u, &log_rest, 4);
    wr_u32(rec + 4, u);
    for (int32_t i = 0; i < k; i++) {
        float lp = (float)((double)logits[scratch[i]] - lz);
        wr_u32(rec + 8 + 8 * (size_t)i, (uint32_t)scratch[i]);
        memcpy(&u, &lp, 4);
        wr_u32(rec + 12 + 8 * (size_t)i, u);
    }
}

void sq_kld_compare(const uint8_t *rec, int32_t k, const float *logits, int32_t n_vocab, int32_t target,
                    sq_kld_point *out) {
    float mx;
    double lz = sq_logsumexp(logits, n_vocab, &mx);
    double all = exp(lz - mx);
    float f;
    uint32_t u = rd_u32(rec);
    memcpy(&f, &u, 4);
    double nll_base = f;
    u = rd_u32(rec + 4);
    memcpy(&f, &u, 4);
    double log_rest = f;
    double kl = 0.0, q_s = 0.0;
    for (int32_t i = 0; i < k; i++) {
        int32_t id = (int32_t)rd_u32(rec + 8 + 8 * (size_t)i);
        u = rd_u32(rec + 12 + 8 * (size_t)i);
        memcpy(&f, &u, 4);
        double lp = f, lq = (double)logits[id] - lz;
        kl += exp(lp) * (lp - lq);
        q_s += expf(logits[id] - mx);
    }
    if (log_rest > -1e29) {
        double q_rest = (all - q_s) / all;
        if (q_rest < 1e-300) q_rest = 1e-300;
        kl += exp(log_rest) * (log_rest - log(q_rest));
    }
    int32_t top_q = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[top_q]) top_q = i;
    out->kld = kl;
    out->nll = lz - logits[target];
    out->nll_base = nll_base;
    out->same_top1 = top_q == (int32_t)rd_u32(rec + 8);
    out->dp = exp(-out->nll) - exp(-nll_base);
}

/* ===== Writer ===== */

struct sq_kld_writer {
    sq_atomic_file af;
    sq_xxh64_state h;
    uint64_t n_positions, written;
    size_t rec_bytes;
};

size_t sq_kld_record_bytes(int32_t k) { return 8 + 8 * (size_t)k; }

sq_status sq_kld_writer_open(sq_kld_writer **out, const char *path, sq_protocol protocol, int32_t ctx,
                             int32_t n_vocab, int32_t k, int32_t n_windows, uint64_t n_positions, uint64_t tok_hash,
                             const uint8_t *text_sha256, const int32_t *tokens) {
    *out = NULL;
    sq_kld_writer *w = calloc(1, sizeof *w);
    if (!w) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    sq_status st = sq_atomic_open(&w->af, path);
    if (st) {
        free(w);
        return st;
    }
    sq_xxh64_init(&w->h, 0);
    uint8_t hdr[HEADER_BYTES] = {0};
    memcpy(hdr, MAGIC, 8);
    wr_u32(hdr + 8, (uint32_t)protocol);
    wr_u32(hdr + 12, (uint32_t)ctx);
    wr_u32(hdr + 16, (uint32_t)n_vocab);
    wr_u32(hdr + 20, (uint32_t)k);
    wr_u32(hdr + 24, (uint32_t)n_windows);
    wr_u64(hdr + 32, n_positions);
    wr_u64(hdr + 40, tok_hash);
    if (text_sha256) memcpy(hdr + 48, text_sha256, 32);
    w->n_positions = n_positions;
    w->rec_bytes = sq_kld_record_bytes(k);
    if ((st = sq_kld_writer_put(w, hdr, sizeof hdr))) goto fail;
    size_t nt = (size_t)n_windows * (size_t)ctx;
    uint8_t buf[4096];
    for (size_t i = 0; i < nt;) {
        size_t m = 0;
        for (; i < nt && m + 4 <= sizeof buf; i++, m += 4) wr_u32(buf + m, (uint32_t)tokens[i]);
        if ((st = sq_kld_writer_put(w, buf, m))) goto fail;
    }
    *out = w;
    return SQ_OK;
fail:
    sq_kld_writer_abort(w);
    return st;
}

sq_status sq_kld_writer_put(sq_kld_writer *w, const void *data, size_t n) {
    sq_xxh64_update(&w->h, data, n);
    return sq_atomic_write(&w->af, data, n);
}

sq_status sq_kld_writer_records(sq_kld_writer *w, const uint8_t *recs, uint64_t n) {
    w->written += n;
    return sq_kld_writer_put(w, recs, (size_t)n * w->rec_bytes);
}

sq_status sq_kld_writer_close(sq_kld_writer *w) {
    if (w->written != w->n_positions) {
        sq_status st = sq_errorf(SQ_ERR_INTERNAL, "base file: %llu of %llu positions written",
                                 (unsigned long long)w->written, (unsigned long long)w->n_positions);
        sq_kld_writer_abort(w);
        return st;
    }
    uint8_t sum[8];
    wr_u64(sum, sq_xxh64_digest(&w->h));
    sq_status st = sq_atomic_write(&w->af, sum, 8);
    if (st == SQ_OK) st = sq_atomic_commit(&w->af);
    else sq_atomic_abort(&w->af);
    free(w);
    return st;
}

void sq_kld_writer_abort(sq_kld_writer *w) {
    if (!w) return;
    sq_atomic_abort(&w->af);
    free(w);
}

/* ===== Reader ===== */

struct sq_kld_base {
    char *path; /* for messages */
    sq_mapping map;
    sq_protocol protocol;
    int32_t ctx, n_vocab, k, n_windows;
    uint64_t n_positions, tok_hash;
    int32_t *tokens;
    const uint8_t *recs;
    size_t rec_bytes;
};

sq_status sq_kld_base_open(sq_kld_base **out, const char *path) {
    *out = NULL;
    sq_kld_base *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) {
        free(b);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    }
    sq_status st = sq_map_file(path, &b->map);
    if (st) goto fail;
    const uint8_t *p = b->map.data;
    uint64_t size = b->map.size;
    if (size < HEADER_BYTES + 8 || memcmp(p, MAGIC, 8) != 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: not a squish-eval base file (bad magic)", path);
        goto fail;
    }
    uint32_t proto = rd_u32(p + 8), ctx = rd_u32(p + 12), nv = rd_u32(p + 16), k = rd_u32(p + 20),
             nw = rd_u32(p + 24);
    b->n_positions = rd_u64(p + 32);
    b->tok_hash = rd_u64(p + 40);
    if (proto > 1 || ctx < 2 || ctx > (1u << 24) || nv == 0 || nv > (1u << 24) || k == 0 || k > nv ||
        nw > (1u << 30) || rd_u32(p + 28) != 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: header fields are out of range", path);
        goto fail;
    }
    uint32_t first = proto == SQ_PROTOCOL_LLAMACPP ? ctx / 2 : 0;
    uint64_t per_window = (uint64_t)ctx - 1 - first;
    b->rec_bytes = sq_kld_record_bytes((int32_t)k);
    uint64_t tok_bytes = (uint64_t)nw * ctx * 4, rec_total, expect;
    if (b->n_positions != per_window * nw || __builtin_mul_overflow(b->n_positions, b->rec_bytes, &rec_total) ||
        __builtin_add_overflow(rec_total, (uint64_t)HEADER_BYTES + 8 + tok_bytes, &expect)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: position count does not match %u windows of %u", path, nw, ctx);
        goto fail;
    }
    if (expect != size) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: file is %llu bytes, its header implies %llu (truncated?)", path,
                       (unsigned long long)size, (unsigned long long)expect);
        goto fail;
    }
    if (sq_xxh64(p, (size_t)(size - 8), 0) != rd_u64(p + size - 8)) {
        st = sq_errorf(SQ_ERR_CHECKSUM, "%s: checksum mismatch: the base file is corrupt", path);
        goto fail;
    }
    b->protocol = (sq_protocol)proto;
    b->ctx = (int32_t)ctx;
    b->n_vocab = (int32_t)nv;
    b->k = (int32_t)k;
    b->n_windows = (int32_t)nw;
    b->tokens = malloc((size_t)(tok_bytes ? tok_bytes : 4));
    if (!b->tokens) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < (uint64_t)nw * ctx; i++) {
        uint32_t t = rd_u32(p + HEADER_BYTES + 4 * i);
        if (t >= nv) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: stored token %u is outside the vocabulary", path, t);
            goto fail;
        }
        b->tokens[i] = (int32_t)t;
    }
    b->recs = p + HEADER_BYTES + tok_bytes;
    for (uint64_t i = 0; i < b->n_positions; i++)
        for (uint32_t j = 0; j < k; j++)
            if (rd_u32(b->recs + i * b->rec_bytes + 8 + 8 * j) >= nv) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: record %llu holds a token id outside the vocabulary", path,
                               (unsigned long long)i);
                goto fail;
            }
    *out = b;
    return SQ_OK;
fail:
    sq_kld_base_close(b);
    return st;
}

void sq_kld_base_close(sq_kld_base *b) {
    if (!b) return;
    sq_unmap_file(&b->map);
    free(b->tokens);
    free(b->path);
    free(b);
}

const char *sq_kld_base_path(const sq_kld_base *b) { return b->path; }
sq_protocol sq_kld_base_protocol(const sq_kld_base *b) { return b->protocol; }
int32_t sq_kld_base_ctx(const sq_kld_base *b) { return b->ctx; }
int32_t sq_kld_base_vocab(const sq_kld_base *b) { return b->n_vocab; }
int32_t sq_kld_base_windows(const sq_kld_base *b) { return b->n_windows; }
const int32_t *sq_kld_base_tokens(const sq_kld_base *b) { return b->tokens; }
uint64_t sq_kld_base_tokenizer_hash(const sq_kld_base *b) { return b->tok_hash; }
int32_t sq_kld_base_k(const sq_kld_base *b) { return b->k; }
const uint8_t *sq_kld_base_record(const sq_kld_base *b, uint64_t i) { return b->recs + i * b->rec_bytes; }
