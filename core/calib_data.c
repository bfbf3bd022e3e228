/* calib_data.c - calibration data for squish-calibrate and squish-quantize's sequential
 * mode (docs/quantization.md, ALGORITHMS.md 9): read a text file (tokenized once, BOS
 * first) or a jsonl file (one JSON object per non-empty line, a string member tokenized
 * alone with BOS, as the GPTQ C4 loader does), and draw reproducible windows from one
 * splitmix64 generator. Python's random cannot be matched from C, so squish records the
 * chosen windows (document, offset) instead of promising the reference's exact windows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "calib.h"
#include "util.h"

#define MAX_TEXT_BYTES ((size_t)256 << 20)  /* the tokenizer's limit for one call */
#define MAX_JSONL_BYTES ((size_t)4 << 30)

/* ===== splitmix64 ===== */

uint64_t sq_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t sq_splitmix64_below(uint64_t *state, uint64_t n) {
    /* reject the lowest (2^64 mod n) values so every residue is equally likely */
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t r = sq_splitmix64(state);
        if (r >= threshold) return r % n;
    }
}

/* ===== Formats ===== */

const char *sq_calib_format_name(sq_calib_format f) { return f == SQ_CALIB_JSONL ? "jsonl" : "text"; }

sq_status sq_calib_format_from_name(const char *name, sq_calib_format *out) {
    if (!strcmp(name, "text")) *out = SQ_CALIB_TEXT;
    else if (!strcmp(name, "jsonl")) *out = SQ_CALIB_JSONL;
    else return sq_errorf(SQ_ERR_ARG, "--format: expected text or jsonl, got '%s'", name);
    return SQ_OK;
}

void sq_calib_data_free(sq_calib_data *d) {
    if (!d) return;
    free(d->doc_start);
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

/* ===== Loading ===== */

typedef struct {
    const char *text; /* the document's bytes (inside the file buffer or a cJSON string) */
    size_t len;
    int64_t line;     /* 1-based line number (jsonl) */
} doc_ref;

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* Parses every non-empty line of buf (NUL bytes at line ends are written into buf) into
 * docs; the cJSON trees that own the strings go to roots. */
static sq_status parse_jsonl(const char *path, char *buf, size_t len, const char *field, doc_ref **docs_out,
                             cJSON ***roots_out, int64_t *n_out) {
    sq_status st = SQ_OK;
    int64_t cap = 0, n = 0, line = 0;
    doc_ref *docs = NULL;
    cJSON **roots = NULL;
    size_t pos = 0;
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        pos = 3; /* UTF-8 byte order mark */
    while (pos < len) {
        line++;
        char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
        size_t n_line = nl ? (size_t)(nl - s) : len - pos;
        pos += n_line + (nl ? 1 : 0);
        if (is_blank(s, n_line)) continue;
        s[n_line] = '\0'; /* the '\n' (or the buffer's terminating NUL) */
        if (n == cap) {
            int64_t nc = cap ? 2 * cap : 1024;
            doc_ref *nd = realloc(docs, (size_t)nc * sizeof *nd);
            if (nd) docs = nd;
            cJSON **nr = nd ? realloc(roots, (size_t)nc * sizeof *nr) : NULL;
            if (nr) roots = nr;
            if (!nd || !nr) {
                st = sq_errorf(SQ_ERR_OOM, "%s: out of memory at line %lld", path, (long long)line);
                goto fail;
            }
            cap = nc;
        }
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithOpts(s, &end, 0);
        if (!root) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s:%lld: not valid JSON (near byte %lld of the line)", path,
                           (long long)line, (long long)((cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : s) - s) + 1);
            goto fail;
        }
        roots[n] = root;
        n++; /* owned by roots from here on */
        if (!is_blank(end, strlen(end))) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s:%lld: more than one JSON value on the line", path, (long long)line);
            goto fail;
        }
        if (!cJSON_IsObject(root)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s:%lld: expected a JSON object with a string member \"%s\"", path,
                           (long long)line, field);
            goto fail;
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
        if (!v) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s:%lld: no member \"%s\" (choose the member with --field)", path,
                           (long long)line, field);
            goto fail;
        }
        if (!cJSON_IsString(v) || !v->valuestring) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s:%lld: member \"%s\" is not a string", path, (long long)line, field);
            goto fail;
        }
        docs[n - 1].text = v->valuestring;
        docs[n - 1].len = strlen(v->valuestring);
        docs[n - 1].line = line;
        if (docs[n - 1].len > MAX_TEXT_BYTES) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s:%lld: the document is %zu bytes, more than the %zu supported", path,
                           (long long)line, docs[n - 1].len, MAX_TEXT_BYTES);
            goto fail;
        }
    }
    if (n == 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: no documents (the file has no non-empty lines)", path);
        goto fail;
    }
    *docs_out = docs;
    *roots_out = roots;
    *n_out = n;
    return SQ_OK;
fail:
    for (int64_t i = 0; i < n; i++) cJSON_Delete(roots[i]);
    free(roots);
    free(docs);
    return st;
}

sq_status sq_calib_data_load(sq_calib_data *out, const char *path, sq_calib_format format, const char *field,
                             const sq_tokenizer *tok, bool add_bos) {
    sq_status st = SQ_OK;
    char *buf = NULL;
    size_t len = 0;
    doc_ref *docs = NULL, one;
    cJSON **roots = NULL;
    int64_t n_docs = 0;
    int32_t **ids = NULL;
    int32_t *n_ids = NULL;
    sq_status *doc_st = NULL;
    memset(out, 0, sizeof *out);
    if (!field) field = "text";

    if ((st = sq_read_file(path, format == SQ_CALIB_TEXT ? MAX_TEXT_BYTES : MAX_JSONL_BYTES, &buf, &len)) != SQ_OK)
        return st;
    uint8_t digest[32];
    sq_sha256 h;
    sq_sha256_init(&h);
    sq_sha256_update(&h, buf, len);
    sq_sha256_final(&h, digest);
    sq_sha256_hex(digest, out->sha256);
    out->n_bytes = len;
    out->format = format;

    if (format == SQ_CALIB_TEXT) {
        one.text = buf;
        one.len = len;
        one.line = 0;
        docs = &one;
        n_docs = 1;
    } else if ((st = parse_jsonl(path, buf, len, field, &docs, &roots, &n_docs)) != SQ_OK) {
        goto fail;
    }

    ids = calloc((size_t)n_docs, sizeof *ids);
    n_ids = calloc((size_t)n_docs, sizeof *n_ids);
    doc_st = calloc((size_t)n_docs, sizeof *doc_st);
    out->doc_start = malloc(((size_t)n_docs + 1) * sizeof *out->doc_start);
    if (!ids || !n_ids || !doc_st || !out->doc_start) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
        goto fail;
    }
    /* Documents are independent and the tokenizer is read-only: any thread may encode any
     * document, the results land in their own slots. */
    const int nt = n_docs > 1 ? sq_num_threads() : 1;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
#endif
    for (int64_t d = 0; d < n_docs; d++)
        doc_st[d] = sq_tokenizer_encode(tok, docs[d].text, docs[d].len, add_bos, false, &ids[d], &n_ids[d]);
    int64_t total = 0;
    for (int64_t d = 0; d < n_docs; d++) {
        if (doc_st[d] != SQ_OK) {
            /* messages are per thread: encode again here to get this document's */
            int32_t *again = NULL, n_again = 0;
            st = sq_tokenizer_encode(tok, docs[d].text, docs[d].len, add_bos, false, &again, &n_again);
            free(again);
            if (st == SQ_OK) st = sq_errorf(doc_st[d], "tokenizer failed");
            char pre[1100];
            if (format == SQ_CALIB_JSONL) snprintf(pre, sizeof pre, "%s:%lld", path, (long long)docs[d].line);
            else snprintf(pre, sizeof pre, "%s", path);
            sq_error_prefix(pre);
            goto fail;
        }
        out->doc_start[d] = total;
        total += n_ids[d];
    }
    out->doc_start[n_docs] = total;
    if (!(out->tokens = malloc((size_t)(total ? total : 1) * sizeof *out->tokens))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory for %lld tokens", path, (long long)total);
        goto fail;
    }
    for (int64_t d = 0; d < n_docs; d++)
        if (n_ids[d]) memcpy(out->tokens + out->doc_start[d], ids[d], (size_t)n_ids[d] * sizeof(int32_t));
    out->n_docs = n_docs;
    out->n_tokens = total;

fail:
    if (ids)
        for (int64_t d = 0; d < n_docs; d++) free(ids[d]);
    free(ids);
    free(n_ids);
    free(doc_st);
    if (roots)
        for (int64_t d = 0; d < n_docs; d++) cJSON_Delete(roots[d]);
    free(roots);
    if (docs != &one) free(docs);
    free(buf);
    if (st != SQ_OK) sq_calib_data_free(out);
    return st;
}

/* ===== Windows ===== */

static int64_t doc_len(const sq_calib_data *d, int64_t i) { return d->doc_start[i + 1] - d->doc_start[i]; }

sq_status sq_calib_windows_draw(const sq_calib_data *d, const char *what, int64_t n, int32_t seq_len, uint64_t seed,
                                sq_calib_window *out) {
    if (n < 1 || seq_len < 1)
        return sq_errorf(SQ_ERR_ARG, "%s: need at least one window of at least one token (got %lld x %d)", what,
                         (long long)n, seq_len);
    if (!d || d->n_docs < 1) return sq_errorf(SQ_ERR_ARG, "%s: no calibration data", what);
    uint64_t rng = seed;
    if (d->format == SQ_CALIB_TEXT) {
        const int64_t len = doc_len(d, 0);
        if (len < seq_len)
            return sq_errorf(SQ_ERR_ARG,
                             "%s: the data has %lld tokens, fewer than one window of %d (use more text or a smaller "
                             "--seq-len)",
                             what, (long long)len, seq_len);
        for (int64_t i = 0; i < n; i++) {
            out[i].doc = 0;
            out[i].offset = (int64_t)sq_splitmix64_below(&rng, (uint64_t)(len - seq_len) + 1);
        }
        return SQ_OK;
    }
    /* jsonl: the GPTQ loader draws documents until one is longer than seq_len */
    int64_t n_long = 0, longest = 0;
    for (int64_t i = 0; i < d->n_docs; i++) {
        if (doc_len(d, i) > seq_len) n_long++;
        if (doc_len(d, i) > longest) longest = doc_len(d, i);
    }
    if (n_long == 0)
        return sq_errorf(SQ_ERR_ARG,
                         "%s: no document has more than %d tokens (the longest of %lld has %lld; use a smaller "
                         "--seq-len or longer documents)",
                         what, seq_len, (long long)d->n_docs, (long long)longest);
    for (int64_t i = 0; i < n; i++) {
        int64_t doc, len;
        do {
            doc = (int64_t)sq_splitmix64_below(&rng, (uint64_t)d->n_docs);
            len = doc_len(d, doc);
        } while (len <= seq_len);
        out[i].doc = doc;
        out[i].offset = (int64_t)sq_splitmix64_below(&rng, (uint64_t)(len - seq_len)); /* [0, len - L - 1] */
    }
    return SQ_OK;
}

const int32_t *sq_calib_window_tokens(const sq_calib_data *d, sq_calib_window w, int32_t seq_len) {
    if (!d || w.doc < 0 || w.doc >= d->n_docs || w.offset < 0 || seq_len < 1) return NULL;
    if (w.offset > doc_len(d, w.doc) - seq_len) return NULL;
    return d->tokens + d->doc_start[w.doc] + w.offset;
}
