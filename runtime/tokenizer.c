/* tokenizer.c - SentencePiece BPE and byte-level BPE encoders/decoders (tokenizer.h).
 * SPM follows google/sentencepiece (identity normalizer, bpe_model.cc Encode, byte
 * fallback, Decode) and agrees with llama.cpp's SPM tokenizer and llama2.c's encode():
 * highest-scoring pair first, ties leftmost, via a priority queue over a symbol list.
 * Byte-level BPE follows HF tokenizers (added-token split, the ByteLevel/Split/Digits
 * pre-tokenizers of FORMATS.md 4.2 hand-coded like llama.cpp's unicode.cpp, and
 * Word::merge_all: lowest rank first, ties leftmost). Not done: NFKC charsmaps, UNIGRAM,
 * HF normalizers. docs/tokenizers.md says what is byte-exact and how it was checked. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"
#include "unicode.h"

/* The longest text one encode call accepts: symbol offsets are int32 and SPM
 * normalization can triple the size. */
#define MAX_TEXT_BYTES ((size_t)256 << 20)

static const char SPACE_SYM[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's space */
static const char UNK_SURFACE[] = " \xE2\x81\x87 "; /* " ⁇ ", SentencePiece's decoded <unk> */

/* ===== Growable id vector ===== */

typedef struct {
    int32_t *a;
    size_t n, cap;
} idvec;

static bool idvec_push(idvec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 256;
        int32_t *na = realloc(v->a, nc * sizeof *na);
        if (!na) return false;
        v->a = na;
        v->cap = nc;
    }
    v->a[v->n++] = id;
    return true;
}

/* ===== Hash maps ===== */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* token string -> id, open addressing; keys live in the vocab. The first of duplicate
 * strings wins. */
typedef struct {
    int32_t *slots; /* -1 = empty */
    size_t mask;
} strmap;

/* pair of token ids -> merge rank and result (byte-level BPE). */
typedef struct {
    uint64_t key; /* (a << 32) | b, UINT64_MAX = empty */
    int32_t rank;
    int32_t id;
} pair_slot;

typedef struct {
    pair_slot *slots;
    size_t mask;
} pairmap;

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static size_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

/* ===== The tokenizer ===== */

struct sq_tokenizer {
    const sq_vocab *v;
    uint32_t *tok_len; /* [n] strlen of each token */
    strmap map;
    /* decoded bytes of every token: dec + dec_off[id] .. dec_off[id + 1] */
    char *dec;
    uint32_t *dec_off;
    /* atomic pieces matched before anything else: SPM USER_DEFINED pieces, BPE added
     * tokens (CONTROL and USER_DEFINED); grouped by first byte, longest first */
    int32_t *atoms;
    int32_t atom_start[257];
    /* SPM */
    int32_t byte_id[256]; /* id of "<0xHH>", or -1 */
    bool has_unused;
    bool chunking;      /* spm_encode may cut the text before "▁" (see there) */
    uint32_t *ws_prev;  /* sorted code points that precede an inner "▁" in a piece */
    size_t n_ws_prev;
    /* byte-level BPE */
    pairmap pairs;
    int32_t byte_sym[256]; /* id of the GPT-2 char of each byte, or -1 */
    uint32_t byte_cp[256]; /* GPT-2 byte -> code point */
    int16_t cp_byte[324];  /* code point -> byte, -1 if not a GPT-2 char */
    bool ignore_merges;
};

static int32_t map_get(const sq_tokenizer *t, const char *s, size_t n) {
    size_t k = (size_t)hash_bytes(s, n) & t->map.mask;
    for (;;) {
        int32_t id = t->map.slots[k];
        if (id < 0) return -1;
        if (t->tok_len[id] == n && memcmp(t->v->tokens[id], s, n) == 0) return id;
        k = (k + 1) & t->map.mask;
    }
}

static bool pair_get(const sq_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    if (!t->pairs.slots) return false;
    uint64_t key = pair_key(a, b);
    size_t k = pair_hash(key) & t->pairs.mask;
    for (;;) {
        const pair_slot *s = &t->pairs.slots[k];
        if (s->key == UINT64_MAX) return false;
        if (s->key == key) {
            *rank = s->rank;
            *id = s->id;
            return true;
        }
        k = (k + 1) & t->pairs.mask;
    }
}

/* ===== Initialization ===== */

/* GPT-2's bytes_to_unicode(): the 188 printable bytes map to themselves, the other 68 to
 * U+0100.. in byte order. */
static void build_byte_map(sq_tokenizer *t) {
    uint32_t next = 256;
    for (int i = 0; i < 324; i++) t->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_cp[b] = printable ? (uint32_t)b : next++;
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
}

static sq_status build_map(sq_tokenizer *t) {
    const sq_vocab *v = t->v;
    size_t cap = pow2_at_least((size_t)v->n_tokens * 2);
    t->map.slots = malloc(cap * sizeof *t->map.slots);
    t->tok_len = malloc((size_t)v->n_tokens * sizeof *t->tok_len);
    if (!t->map.slots || !t->tok_len) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory");
    t->map.mask = cap - 1;
    for (size_t i = 0; i < cap; i++) t->map.slots[i] = -1;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        size_t n = strlen(v->tokens[id]);
        t->tok_len[id] = (uint32_t)n;
        size_t k = (size_t)hash_bytes(v->tokens[id], n) & t->map.mask;
        bool dup = false;
        while (t->map.slots[k] >= 0) {
            int32_t o = t->map.slots[k];
            if (t->tok_len[o] == n && memcmp(v->tokens[o], v->tokens[id], n) == 0) {
                dup = true;
                break;
            }
            k = (k + 1) & t->map.mask;
        }
        if (!dup) t->map.slots[k] = id;
    }
    return SQ_OK;
}

static int atom_order(const void *a, const void *b, const sq_tokenizer *t) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint8_t fx = (uint8_t)t->v->tokens[x][0], fy = (uint8_t)t->v->tokens[y][0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (t->tok_len[x] != t->tok_len[y]) return t->tok_len[x] > t->tok_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Insertion sort keeps this dependency-free of a qsort context argument; added-token
 * lists are a few hundred entries at most. */
static void sort_atoms(sq_tokenizer *t, int32_t n) {
    for (int32_t i = 1; i < n; i++) {
        int32_t x = t->atoms[i], j = i - 1;
        while (j >= 0 && atom_order(&t->atoms[j], &x, t) > 0) {
            t->atoms[j + 1] = t->atoms[j];
            j--;
        }
        t->atoms[j + 1] = x;
    }
}

static sq_status build_atoms(sq_tokenizer *t) {
    const sq_vocab *v = t->v;
    int32_t n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        int32_t ty = v->types[id];
        bool atom = ty == SQ_TOKEN_USER_DEFINED || (v->kind == SQ_VOCAB_BPE && ty == SQ_TOKEN_CONTROL);
        if (atom && map_get(t, v->tokens[id], t->tok_len[id]) == id) n++;
    }
    t->atoms = malloc((size_t)(n ? n : 1) * sizeof *t->atoms);
    if (!t->atoms) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory");
    n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        int32_t ty = v->types[id];
        bool atom = ty == SQ_TOKEN_USER_DEFINED || (v->kind == SQ_VOCAB_BPE && ty == SQ_TOKEN_CONTROL);
        if (atom && map_get(t, v->tokens[id], t->tok_len[id]) == id) t->atoms[n++] = id;
    }
    sort_atoms(t, n);
    int32_t k = 0;
    for (int b = 0; b < 256; b++) {
        t->atom_start[b] = k;
        while (k < n && (uint8_t)v->tokens[t->atoms[k]][0] == b) k++;
    }
    t->atom_start[256] = n;
    return SQ_OK;
}

static sq_status build_pairs(sq_tokenizer *t) {
    const sq_vocab *v = t->v;
    if (v->n_merges > (1 << 24))
        return sq_errorf(SQ_ERR_FORMAT, "tokenizer: %d merges is more than the %d supported", v->n_merges, 1 << 24);
    size_t cap = pow2_at_least((size_t)v->n_merges * 2 + 2);
    t->pairs.slots = malloc(cap * sizeof *t->pairs.slots);
    if (!t->pairs.slots) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory for %d merges", v->n_merges);
    t->pairs.mask = cap - 1;
    for (size_t i = 0; i < cap; i++) t->pairs.slots[i].key = UINT64_MAX;
    char buf[2 * SQ_TOKEN_MAX_BYTES + 2];
    for (int32_t r = 0; r < v->n_merges; r++) {
        const char *m = v->merges[r];
        const char *sp = strchr(m, ' ');
        size_t la = sp ? (size_t)(sp - m) : 0, lb = sp ? strlen(sp + 1) : 0;
        if (!sp || strchr(sp + 1, ' ') || la == 0 || lb == 0 || la + lb > sizeof buf - 1)
            return sq_errorf(SQ_ERR_FORMAT, "tokenizer: merge %d is not two tokens separated by one space", r);
        int32_t a = map_get(t, m, la), b = map_get(t, sp + 1, lb);
        memcpy(buf, m, la);
        memcpy(buf + la, sp + 1, lb);
        int32_t c = map_get(t, buf, la + lb);
        if (a < 0 || b < 0 || c < 0)
            return sq_errorf(SQ_ERR_FORMAT, "tokenizer: merge %d: its %s is not in the vocabulary", r,
                             a < 0 ? "left token" : b < 0 ? "right token" : "result");
        /* a repeated pair takes its last rank, as HF tokenizers' merge map does */
        uint64_t key = pair_key(a, b);
        size_t k = pair_hash(key) & t->pairs.mask;
        while (t->pairs.slots[k].key != UINT64_MAX && t->pairs.slots[k].key != key) k = (k + 1) & t->pairs.mask;
        t->pairs.slots[k].key = key;
        t->pairs.slots[k].rank = r;
        t->pairs.slots[k].id = c;
    }
    return SQ_OK;
}

/* Bytes token `id` decodes to, ignoring context (the dummy-prefix rule is applied by
 * the callers): SPM: U+2581 -> ' ', byte pieces -> the byte, control -> "", unknown ->
 * " ⁇ "; BPE: GPT-2 chars -> bytes (a token with any other char is kept as is, like HF's
 * ByteLevel decoder), control -> "". Returns the length written to out (>= the token's
 * own length in bytes + 5). */
static size_t decode_token(const sq_tokenizer *t, int32_t id, char *out) {
    const sq_vocab *v = t->v;
    const char *s = v->tokens[id];
    size_t n = t->tok_len[id];
    int32_t ty = v->types[id];
    if (ty == SQ_TOKEN_CONTROL) return 0;
    if (v->kind == SQ_VOCAB_SPM) {
        if (ty == SQ_TOKEN_UNKNOWN) {
            memcpy(out, UNK_SURFACE, sizeof UNK_SURFACE - 1);
            return sizeof UNK_SURFACE - 1;
        }
        if (ty == SQ_TOKEN_BYTE && n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>') {
            int hv = 0;
            bool ok = true;
            for (int i = 3; i < 5; i++) {
                char c = s[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                                             : -1;
                if (d < 0) ok = false;
                hv = hv * 16 + (d < 0 ? 0 : d);
            }
            if (ok) {
                out[0] = (char)hv;
                return 1;
            }
        }
        size_t o = 0;
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, SPACE_SYM, 3) == 0) {
                out[o++] = ' ';
                i += 3;
            } else {
                out[o++] = s[i++];
            }
        }
        return o;
    }
    /* byte-level */
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = sq_utf8_decode(s + i, n - i, &cp);
        if (cp == SQ_UTF8_INVALID || cp >= 324 || t->cp_byte[cp] < 0) {
            memcpy(out, s, n);
            return n;
        }
        out[o++] = (char)t->cp_byte[cp];
        i += (size_t)l;
    }
    return o;
}

static sq_status build_decoded(sq_tokenizer *t) {
    const sq_vocab *v = t->v;
    size_t total = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) total += t->tok_len[id] + sizeof UNK_SURFACE;
    if (total > UINT32_MAX) return sq_errorf(SQ_ERR_FORMAT, "tokenizer: vocabulary strings are too large");
    t->dec = malloc(total ? total : 1);
    t->dec_off = malloc(((size_t)v->n_tokens + 1) * sizeof *t->dec_off);
    if (!t->dec || !t->dec_off) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory");
    size_t o = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        t->dec_off[id] = (uint32_t)o;
        o += decode_token(t, id, t->dec + o);
    }
    t->dec_off[v->n_tokens] = (uint32_t)o;
    return SQ_OK;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Collects the code points that appear right before a "▁" inside a mergeable piece
 * (NORMAL, USER_DEFINED, UNUSED). A stray byte is recorded as 0x110000 + byte. */
static sq_status build_ws_prev(sq_tokenizer *t) {
    const sq_vocab *v = t->v;
    size_t n = 0, cap = 16;
    uint32_t *a = malloc(cap * sizeof *a);
    if (!a) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory");
    for (int32_t id = 0; id < v->n_tokens; id++) {
        int32_t ty = v->types[id];
        if (ty != SQ_TOKEN_NORMAL && ty != SQ_TOKEN_USER_DEFINED && ty != SQ_TOKEN_UNUSED) continue;
        const char *s = v->tokens[id];
        size_t len = t->tok_len[id];
        uint32_t prev = UINT32_MAX;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int l = sq_utf8_decode(s + i, len - i, &cp);
            if (cp == SQ_UTF8_INVALID) cp = 0x110000u + (uint8_t)s[i];
            if (cp == 0x2581 && prev != UINT32_MAX) {
                if (n == cap) {
                    uint32_t *na = realloc(a, 2 * cap * sizeof *a);
                    if (!na) {
                        free(a);
                        return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory");
                    }
                    a = na;
                    cap *= 2;
                }
                a[n++] = prev;
            }
            prev = cp;
            i += (size_t)l;
        }
    }
    qsort(a, n, sizeof *a, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || a[u - 1] != a[i]) a[u++] = a[i];
    t->ws_prev = a;
    t->n_ws_prev = u;
    return SQ_OK;
}

sq_status sq_tokenizer_init(sq_tokenizer **out, const sq_vocab *v) {
    *out = NULL;
    sq_status st = sq_vocab_validate(v, "tokenizer");
    if (st != SQ_OK) return st;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->tokens[id][0] == '\0') return sq_errorf(SQ_ERR_FORMAT, "tokenizer: token %d is empty", id);
    sq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory");
    t->v = v;
    build_byte_map(t);
    if ((st = build_map(t)) != SQ_OK) goto fail;
    if ((st = build_atoms(t)) != SQ_OK) goto fail;
    if ((st = build_decoded(t)) != SQ_OK) goto fail;
    if (v->kind == SQ_VOCAB_SPM) {
        for (int b = 0; b < 256; b++) {
            char p[7];
            static const char hex[] = "0123456789ABCDEF";
            memcpy(p, "<0x", 3);
            p[3] = hex[b >> 4];
            p[4] = hex[b & 15];
            p[5] = '>';
            t->byte_id[b] = map_get(t, p, 6);
        }
        for (int32_t id = 0; id < v->n_tokens; id++)
            if (v->types[id] == SQ_TOKEN_UNUSED) t->has_unused = true;
        if ((st = build_ws_prev(t)) != SQ_OK) goto fail;
        /* sentencepiece resegments UNUSED pieces with one map for the whole text; keep
         * that exact by not cutting when there are any */
        t->chunking = !t->has_unused;
    } else {
        if ((st = build_pairs(t)) != SQ_OK) goto fail;
        for (int b = 0; b < 256; b++) {
            char p[4];
            int l = sq_utf8_encode(t->byte_cp[b], p);
            t->byte_sym[b] = map_get(t, p, (size_t)l);
        }
        t->ignore_merges = v->pre == SQ_PRE_LLAMA3;
    }
    *out = t;
    return SQ_OK;
fail:
    sq_tokenizer_free(t);
    return st;
}

void sq_tokenizer_free(sq_tokenizer *t) {
    if (!t) return;
    free(t->tok_len);
    free(t->map.slots);
    free(t->dec);
    free(t->dec_off);
    free(t->atoms);
    free(t->pairs.slots);
    free(t->ws_prev);
    free(t);
}

int32_t sq_tokenizer_find(const sq_tokenizer *t, const char *piece) {
    if (!t || !piece) return -1;
    return map_get(t, piece, strlen(piece));
}

/* Longest atomic piece (user-defined / added token) starting at s, or -1. */
static int32_t match_atom(const sq_tokenizer *t, const char *s, size_t n) {
    uint8_t b = (uint8_t)s[0];
    for (int32_t k = t->atom_start[b]; k < t->atom_start[b + 1]; k++) {
        int32_t id = t->atoms[k];
        size_t l = t->tok_len[id];
        if (l <= n && memcmp(s, t->v->tokens[id], l) == 0) return id; /* sorted longest first */
    }
    return -1;
}

/* ===== Symbols and the merge queue (shared by both BPE flavours) ===== */

typedef struct {
    int32_t start; /* byte offset of the symbol's text */
    int32_t len;   /* bytes; 0 = merged away */
    int32_t prev, next;
    int32_t id;    /* BPE: token id; SPM: 1 if frozen (user-defined piece) */
} symbol;

typedef struct {
    float score; /* SPM piece score, or -rank for byte-level BPE */
    int32_t left, right;
    int32_t aux; /* SPM: byte size of the merged piece; BPE: id of the result */
} cand;

typedef struct {
    cand *a;
    size_t n, cap;
} heap;

/* Higher score first; equal scores: the leftmost pair. */
static bool cand_before(const cand *x, const cand *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static bool heap_push(heap *h, cand c) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        cand *na = realloc(h->a, nc * sizeof *na);
        if (!na) return false;
        h->a = na;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = c;
    return true;
}

static cand heap_pop(heap *h) {
    cand top = h->a[0];
    cand last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < h->n && cand_before(&h->a[l], best)) {
            m = l;
            best = &h->a[l];
        }
        if (r < h->n && cand_before(&h->a[r], best)) m = r;
        if (m == i) break;
        h->a[i] = h->a[m];
        i = m;
    }
    if (h->n > 0) h->a[i] = last;
    return top;
}

/* ===== SentencePiece BPE ===== */

typedef struct {
    const sq_tokenizer *t;
    const char *text; /* normalized */
    symbol *sym;
    heap h;
    int32_t *rev;     /* [n_tokens] split point of UNUSED pieces (resegmentation), or NULL */
    idvec *out;
    bool prev_unk;
} spm_ctx;

static bool spm_mergeable(int32_t type) {
    return type == SQ_TOKEN_NORMAL || type == SQ_TOKEN_USER_DEFINED || type == SQ_TOKEN_UNUSED;
}

static bool spm_try_add(spm_ctx *c, int32_t left, int32_t right) {
    if (left < 0 || right < 0 || c->sym[left].id || c->sym[right].id) return true;
    int32_t size = c->sym[left].len + c->sym[right].len;
    int32_t id = map_get(c->t, c->text + c->sym[left].start, (size_t)size);
    if (id < 0 || !spm_mergeable(c->t->v->types[id])) return true;
    if (c->rev && c->t->v->types[id] == SQ_TOKEN_UNUSED) c->rev[id] = c->sym[left].len;
    cand k = {c->t->v->scores[id], left, right, size};
    return heap_push(&c->h, k);
}

/* Emits the piece text[start, start+len): its id, or (unknown) byte pieces / <unk>. */
static bool spm_emit(spm_ctx *c, int32_t start, int32_t len, int depth) {
    const sq_tokenizer *t = c->t;
    const sq_vocab *v = t->v;
    int32_t id = map_get(t, c->text + start, (size_t)len);
    if (id >= 0 && v->types[id] == SQ_TOKEN_UNUSED && c->rev && c->rev[id] > 0 && c->rev[id] < len && depth < 64) {
        int32_t l = c->rev[id];
        return spm_emit(c, start, l, depth + 1) && spm_emit(c, start + l, len - l, depth + 1);
    }
    if (id >= 0 && v->types[id] != SQ_TOKEN_UNKNOWN) {
        c->prev_unk = false;
        return idvec_push(c->out, id);
    }
    if (v->byte_fallback) {
        for (int32_t i = 0; i < len; i++) {
            int32_t b = t->byte_id[(uint8_t)c->text[start + i]];
            if (b < 0) b = v->unk_id;
            if (b >= 0 && !idvec_push(c->out, b)) return false;
        }
        c->prev_unk = false;
        return true;
    }
    /* sentencepiece merges a run of unknown pieces into one <unk> */
    if (c->prev_unk || v->unk_id < 0) return true;
    c->prev_unk = true;
    return idvec_push(c->out, v->unk_id);
}

/* SentencePiece's identity normalizer: optional removal of leading, trailing and
 * repeated spaces, the dummy-prefix "▁", every ' ' -> "▁". Returns the length. */
static size_t spm_normalize(const sq_vocab *v, const char *in, size_t len, char *out) {
    size_t i = 0, o = 0;
    if (v->remove_extra_whitespaces)
        while (i < len && in[i] == ' ') i++;
    if (i == len) return 0;
    if (v->add_dummy_prefix) {
        memcpy(out, SPACE_SYM, 3);
        o = 3;
    }
    bool prev_space = v->remove_extra_whitespaces;
    for (; i < len; i++) {
        if (in[i] == ' ') {
            if (!prev_space) {
                memcpy(out + o, SPACE_SYM, 3);
                o += 3;
            }
            prev_space = v->remove_extra_whitespaces;
        } else {
            out[o++] = in[i];
            prev_space = false;
        }
    }
    if (v->remove_extra_whitespaces)
        while (o >= 3 && memcmp(out + o - 3, SPACE_SYM, 3) == 0) o -= 3;
    return o;
}

/* Merges the symbols sym[0..ns) (one chunk, linked as a list) and emits their ids. */
static bool spm_chunk(spm_ctx *c, int32_t ns) {
    c->h.n = 0;
    for (int32_t i = 0; i + 1 < ns; i++)
        if (!spm_try_add(c, i, i + 1)) return false;
    while (c->h.n > 0) {
        cand k = heap_pop(&c->h);
        symbol *L = &c->sym[k.left], *R = &c->sym[k.right];
        if (L->len == 0 || R->len == 0 || L->len + R->len != k.aux || L->next != k.right) continue; /* stale */
        L->len += R->len;
        L->next = R->next;
        if (R->next >= 0) c->sym[R->next].prev = k.left;
        R->len = 0;
        if (!spm_try_add(c, L->prev, k.left) || !spm_try_add(c, k.left, L->next)) return false;
    }
    for (int32_t i = 0; i >= 0; i = c->sym[i].next)
        if (!spm_emit(c, c->sym[i].start, c->sym[i].len, 0)) return false;
    return true;
}

/* Whether some mergeable piece has the char cp right before an inner "▁". */
static bool ws_prev_has(const sq_tokenizer *t, uint32_t cp) {
    size_t lo = 0, hi = t->n_ws_prev;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->ws_prev[mid] < cp)
            lo = mid + 1;
        else if (t->ws_prev[mid] > cp)
            hi = mid;
        else
            return true;
    }
    return false;
}

/* SentencePiece BPE over the whole text. The text is cut into chunks before a "▁" when
 * no piece could span the cut (no mergeable piece contains the char before it followed
 * by "▁"): merges never cross such a cut, so each chunk can be merged on its own with
 * the same result as one queue over the whole text, and the queue stays small. */
static sq_status spm_encode(const sq_tokenizer *t, const char *text, size_t len, idvec *out) {
    const sq_vocab *v = t->v;
    sq_status st = SQ_OK;
    spm_ctx c = {.t = t, .out = out};
    char *norm = malloc(3 * len + 4);
    if (!norm) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory for %zu bytes of text", len);
    size_t n = spm_normalize(v, text, len, norm);
    c.text = norm;
    size_t cap = 0;
    if (n == 0) goto done;
    if (t->has_unused) {
        c.rev = calloc((size_t)v->n_tokens, sizeof *c.rev);
        if (!c.rev) goto oom;
    }
    /* split into characters; user-defined pieces are single frozen symbols */
    int32_t ns = 0;
    uint32_t prev_cp = 0;
    bool prev_atom = false;
    for (size_t p = 0; p < n;) {
        int32_t atom = t->atom_start[256] > 0 ? match_atom(t, norm + p, n - p) : -1;
        size_t l;
        uint32_t cp = 0;
        if (atom >= 0)
            l = t->tok_len[atom];
        else
            l = (size_t)sq_utf8_decode(norm + p, n - p, &cp);
        if (cp == SQ_UTF8_INVALID) cp = 0x110000u + (uint8_t)norm[p]; /* as build_ws_prev */
        if (atom < 0 && cp == 0x2581 && ns > 0 && t->chunking && (prev_atom || !ws_prev_has(t, prev_cp))) {
            c.sym[ns - 1].next = -1;
            if (!spm_chunk(&c, ns)) goto oom;
            ns = 0;
        }
        if ((size_t)ns == cap) {
            size_t nc = cap ? cap * 2 : 256;
            symbol *nsym = realloc(c.sym, nc * sizeof *nsym);
            if (!nsym) goto oom;
            c.sym = nsym;
            cap = nc;
        }
        c.sym[ns] = (symbol){(int32_t)p, (int32_t)l, ns - 1, ns + 1, atom >= 0};
        ns++;
        p += l;
        prev_cp = cp;
        prev_atom = atom >= 0;
    }
    c.sym[ns - 1].next = -1;
    if (!spm_chunk(&c, ns)) goto oom;
    goto done;
oom:
    st = sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory encoding %zu bytes", len);
done:
    free(norm);
    free(c.sym);
    free(c.h.a);
    free(c.rev);
    return st;
}

/* ===== Byte-level BPE: pre-tokenizers (FORMATS.md 4.2) ===== */

enum { F_L = 1, F_N = 2, F_WS = 4, F_CRLF = 8 };

typedef struct {
    uint32_t *cp;  /* [n] code points (SQ_UTF8_INVALID for a stray byte) */
    uint8_t *fl;   /* [n] F_* flags */
    int32_t *off;  /* [n + 1] byte offsets */
    size_t n;
} chars;

static uint8_t char_flags(uint32_t cp) {
    unsigned f = sq_unicode_flags(cp);
    uint8_t r = 0;
    if (f & SQ_UNI_LETTER) r |= F_L;
    if (f & SQ_UNI_NUMBER) r |= F_N;
    if (f & SQ_UNI_SPACE) r |= F_WS;
    if (cp == '\r' || cp == '\n') r |= F_CRLF;
    return r;
}

/* Decodes text into c (arrays sized len + 1 by the caller); a stray byte is one char. */
static void fill_chars(chars *c, const char *text, size_t len) {
    size_t n = 0;
    for (size_t p = 0; p < len;) {
        uint32_t cp;
        int l = sq_utf8_decode(text + p, len - p, &cp);
        c->cp[n] = cp;
        c->fl[n] = cp == SQ_UTF8_INVALID ? 0 : char_flags(cp);
        c->off[n++] = (int32_t)p;
        p += (size_t)l;
    }
    c->off[n] = (int32_t)len;
    c->n = n;
}

#define IS_L(i) (c->fl[i] & F_L)
#define IS_N(i) (c->fl[i] & F_N)
#define IS_WS(i) (c->fl[i] & F_WS)
#define IS_O(i) (!(c->fl[i] & (F_L | F_N | F_WS))) /* [^\s\p{L}\p{N}] */

static uint32_t ascii_lower(uint32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; }

/* 's 't 're 've 'm 'll 'd at i (case-insensitive for Qwen2/Llama-3): length or 0. */
static size_t contraction(const chars *c, size_t i, size_t n, bool ci) {
    if (c->cp[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = ci ? ascii_lower(c->cp[i + 1]) : c->cp[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= n) return 0;
    uint32_t b = ci ? ascii_lower(c->cp[i + 2]) : c->cp[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* End of a whitespace run piece per `\s+(?!\S)|\s+` starting at whitespace char i. */
static size_t ws_tail(const chars *c, size_t i, size_t n) {
    size_t e = i;
    while (e < n && IS_WS(e)) e++;
    if (e == n) return n;         /* \s+ to the end */
    if (e - 1 > i) return e - 1;  /* leave the last space for the next word */
    return e;                     /* a single whitespace before a non-space */
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The piece starting at char i of c[0..n): returns its end (> i). */
static size_t gpt2_piece(const chars *c, size_t i, size_t n) {
    size_t k = contraction(c, i, n, false);
    if (k) return i + k;
    bool sp = c->cp[i] == ' ' && i + 1 < n;
    size_t j = sp && IS_L(i + 1) ? i + 1 : i;
    if (IS_L(j)) {
        while (j < n && IS_L(j)) j++;
        return j;
    }
    j = sp && IS_N(i + 1) ? i + 1 : i;
    if (IS_N(j)) {
        while (j < n && IS_N(j)) j++;
        return j;
    }
    j = sp && IS_O(i + 1) ? i + 1 : i;
    if (IS_O(j)) {
        while (j < n && IS_O(j)) j++;
        return j;
    }
    return ws_tail(c, i, n);
}

/* Qwen2 (max_digits 1) and Llama-3 (3):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t qwen_piece(const chars *c, size_t i, size_t n, int max_digits) {
    size_t k = contraction(c, i, n, true);
    if (k) return i + k;
    size_t j = i;
    if (!(c->fl[i] & (F_CRLF | F_L | F_N)) && i + 1 < n && IS_L(i + 1)) j = i + 1;
    if (IS_L(j)) {
        while (j < n && IS_L(j)) j++;
        return j;
    }
    if (IS_N(i)) {
        j = i + 1;
        while (j < n && (int)(j - i) < max_digits && IS_N(j)) j++;
        return j;
    }
    j = c->cp[i] == ' ' && i + 1 < n && IS_O(i + 1) ? i + 1 : i;
    if (IS_O(j)) {
        while (j < n && IS_O(j)) j++;
        while (j < n && (c->fl[j] & F_CRLF)) j++;
        return j;
    }
    /* i is whitespace: \s*[\r\n]+ ends after the run's last CR/LF */
    size_t e = i, last = SIZE_MAX;
    while (e < n && IS_WS(e)) {
        if (c->fl[e] & F_CRLF) last = e;
        e++;
    }
    if (last != SIZE_MAX) return last + 1;
    return ws_tail(c, i, n);
}

/* Calls piece(ctx, char_start, char_end) for each pre-token of c[0..n). */
typedef bool (*piece_fn)(void *ctx, size_t a, size_t b);

static bool split_range(const chars *c, size_t a, size_t b, sq_pretok pre, piece_fn fn, void *ctx) {
    for (size_t i = a; i < b;) {
        size_t e;
        if (pre == SQ_PRE_QWEN2)
            e = qwen_piece(c, i, b, 1);
        else if (pre == SQ_PRE_LLAMA3)
            e = qwen_piece(c, i, b, 3);
        else
            e = gpt2_piece(c, i, b);
        if (!fn(ctx, i, e)) return false;
        i = e;
    }
    return true;
}

static bool pretokenize(const chars *c, sq_pretok pre, piece_fn fn, void *ctx) {
    if (pre != SQ_PRE_SMOLLM) return split_range(c, 0, c->n, pre, fn, ctx);
    /* SmolLM: Digits(individual_digits) isolates every \p{N} char first; the GPT-2 regex
     * then runs on each fragment separately, so " 1" is two pieces. */
    size_t a = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!IS_N(i)) continue;
        if (i > a && !split_range(c, a, i, SQ_PRE_GPT2, fn, ctx)) return false;
        if (!fn(ctx, i, i + 1)) return false;
        a = i + 1;
    }
    return a < c->n ? split_range(c, a, c->n, SQ_PRE_GPT2, fn, ctx) : true;
}

#undef IS_L
#undef IS_N
#undef IS_WS
#undef IS_O

/* ===== Byte-level BPE: merging ===== */

typedef struct {
    const sq_tokenizer *t;
    const char *text; /* the segment being pre-tokenized */
    chars ch;
    symbol *sym;
    size_t sym_cap;
    heap h;
    char *mapped;     /* GPT-2 chars of one pre-token (ignore_merges lookup) */
    size_t mapped_cap;
    idvec *out;
    bool oom;
} bpe_ctx;

static bool bpe_try_add(bpe_ctx *c, int32_t left) {
    if (left < 0) return true;
    int32_t right = c->sym[left].next;
    if (right < 0) return true;
    int32_t rank, id;
    if (!pair_get(c->t, c->sym[left].id, c->sym[right].id, &rank, &id)) return true;
    cand k = {-(float)rank, left, right, id};
    return heap_push(&c->h, k);
}

/* BPE over the bytes text[a, b) (one pre-token), HF tokenizers' Word::merge_all. */
static bool bpe_word(bpe_ctx *c, size_t a, size_t b) {
    const sq_tokenizer *t = c->t;
    const sq_vocab *v = t->v;
    const uint8_t *s = (const uint8_t *)c->text + a;
    size_t n = b - a;
    if (t->ignore_merges) {
        if (c->mapped_cap < 2 * n) {
            char *m = realloc(c->mapped, 2 * n);
            if (!m) return false;
            c->mapped = m;
            c->mapped_cap = 2 * n;
        }
        size_t o = 0;
        for (size_t i = 0; i < n; i++) o += (size_t)sq_utf8_encode(t->byte_cp[s[i]], c->mapped + o);
        int32_t id = map_get(t, c->mapped, o);
        if (id >= 0) return idvec_push(c->out, id);
    }
    if (c->sym_cap < n) {
        symbol *ns = realloc(c->sym, n * sizeof *ns);
        if (!ns) return false;
        c->sym = ns;
        c->sym_cap = n;
    }
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_sym[s[i]];
        if (id < 0) {
            /* a byte-level vocabulary has all 256 byte chars; otherwise <unk> (fused), or
             * nothing, as HF tokenizers does without an unk token */
            if (v->unk_id < 0 || (m > 0 && c->sym[m - 1].id == v->unk_id)) continue;
            id = v->unk_id;
        }
        c->sym[m] = (symbol){(int32_t)i, 1, m - 1, -1, id};
        if (m > 0) c->sym[m - 1].next = m;
        m++;
    }
    if (m == 0) return true;
    c->h.n = 0;
    for (int32_t i = 0; i + 1 < m; i++)
        if (!bpe_try_add(c, i)) return false;
    while (c->h.n > 0) {
        cand k = heap_pop(&c->h);
        symbol *L = &c->sym[k.left];
        if (L->len == 0 || L->next < 0) continue;
        symbol *R = &c->sym[L->next];
        int32_t rank, id;
        /* expired entries: the pair now at this position must still make the same token */
        if (!pair_get(t, L->id, R->id, &rank, &id) || id != k.aux) continue;
        L->id = id;
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) c->sym[R->next].prev = k.left;
        if (!bpe_try_add(c, L->prev) || !bpe_try_add(c, k.left)) return false;
    }
    for (int32_t i = 0; i >= 0; i = c->sym[i].next)
        if (!idvec_push(c->out, c->sym[i].id)) return false;
    return true;
}

static bool bpe_piece(void *ctx, size_t ca, size_t cb) {
    bpe_ctx *c = ctx;
    return bpe_word(c, (size_t)c->ch.off[ca], (size_t)c->ch.off[cb]);
}

/* Pre-tokenizes and encodes text[0, len) (no added tokens inside). */
static bool bpe_segment(bpe_ctx *c, const char *text, size_t len) {
    fill_chars(&c->ch, text, len);
    c->text = text;
    return pretokenize(&c->ch, c->t->v->pre, bpe_piece, c);
}

static sq_status bpe_encode(const sq_tokenizer *t, const char *text, size_t len, idvec *out) {
    bpe_ctx c = {.t = t, .out = out};
    sq_status st = SQ_OK;
    c.ch.cp = malloc((len + 1) * sizeof *c.ch.cp);
    c.ch.fl = malloc(len + 1);
    c.ch.off = malloc((len + 1) * sizeof *c.ch.off);
    if (!c.ch.cp || !c.ch.fl || !c.ch.off) goto oom;
    size_t seg = 0;
    for (size_t p = 0; p < len;) {
        int32_t atom = t->atom_start[256] > 0 ? match_atom(t, text + p, len - p) : -1;
        if (atom < 0) {
            p++;
            continue;
        }
        if (p > seg && !bpe_segment(&c, text + seg, p - seg)) goto oom;
        if (!idvec_push(out, atom)) goto oom;
        p += t->tok_len[atom];
        seg = p;
    }
    if (len > seg && !bpe_segment(&c, text + seg, len - seg)) goto oom;
    goto done;
oom:
    st = sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory encoding %zu bytes", len);
done:
    free(c.ch.cp);
    free(c.ch.fl);
    free(c.ch.off);
    free(c.sym);
    free(c.h.a);
    free(c.mapped);
    return st;
}

/* ===== Public encode / decode ===== */

sq_status sq_tokenizer_encode(const sq_tokenizer *t, const char *text, size_t len, bool add_bos, bool add_eos,
                              int32_t **ids, int32_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!t || (!text && len > 0)) return sq_errorf(SQ_ERR_ARG, "tokenizer: encode called without a tokenizer or text");
    if (len > MAX_TEXT_BYTES)
        return sq_errorf(SQ_ERR_ARG, "tokenizer: %zu bytes of text in one call is more than the %zu supported", len,
                         MAX_TEXT_BYTES);
    const sq_vocab *v = t->v;
    idvec out = {0};
    sq_status st = SQ_OK;
    if (add_bos && v->bos_id >= 0 && !idvec_push(&out, v->bos_id)) goto oom;
    if (len > 0) {
        st = v->kind == SQ_VOCAB_SPM ? spm_encode(t, text, len, &out) : bpe_encode(t, text, len, &out);
        if (st != SQ_OK) goto fail;
    }
    if (add_eos && v->eos_id >= 0 && !idvec_push(&out, v->eos_id)) goto oom;
    if (out.n > INT32_MAX) {
        st = sq_errorf(SQ_ERR_ARG, "tokenizer: more than %d tokens", INT32_MAX);
        goto fail;
    }
    if (!out.a && !(out.a = malloc(sizeof *out.a))) goto oom;
    *ids = out.a;
    *n_ids = (int32_t)out.n;
    return SQ_OK;
oom:
    st = sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory");
fail:
    free(out.a);
    return st;
}

/* The decoded bytes of id. With strip, a leading dummy-prefix space (from "▁") is
 * dropped; *stripped reports whether one was. */
static size_t piece_bytes(const sq_tokenizer *t, int32_t id, bool strip, const char **p, bool *stripped) {
    const sq_vocab *v = t->v;
    size_t a = t->dec_off[id], b = t->dec_off[id + 1];
    *p = t->dec + a;
    *stripped = false;
    if (strip && v->kind == SQ_VOCAB_SPM && (v->add_dummy_prefix || v->remove_extra_whitespaces) &&
        v->types[id] != SQ_TOKEN_BYTE && v->types[id] != SQ_TOKEN_UNKNOWN && v->types[id] != SQ_TOKEN_CONTROL &&
        t->tok_len[id] >= 3 && memcmp(v->tokens[id], SPACE_SYM, 3) == 0) {
        (*p)++;
        *stripped = true;
        return b - a - 1;
    }
    return b - a;
}

int sq_tokenizer_decode_piece(const sq_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->v->n_tokens) return -1;
    bool strip = prev < 0 || (prev == t->v->bos_id);
    const char *p;
    bool stripped;
    size_t n = piece_bytes(t, id, strip, &p, &stripped);
    if (n > cap) n = cap;
    memcpy(buf, p, n);
    return (int)n;
}

sq_status sq_tokenizer_decode(const sq_tokenizer *t, const int32_t *ids, int32_t n, char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (!t || n < 0 || (n > 0 && !ids)) return sq_errorf(SQ_ERR_ARG, "tokenizer: decode called with bad arguments");
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->v->n_tokens)
            return sq_errorf(SQ_ERR_ARG, "tokenizer: token %d at position %d is outside the vocabulary of %d",
                             ids[i], i, t->v->n_tokens);
        total += t->dec_off[ids[i] + 1] - t->dec_off[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return sq_errorf(SQ_ERR_OOM, "tokenizer: out of memory decoding %d tokens", n);
    /* as sentencepiece's Decode: while nothing has been output, the leading "▁" of
     * non-byte pieces is dropped, once (or, with remove_extra_whitespaces, from every
     * such piece until some text appears). Control tokens output nothing. */
    bool is_bos_ws = true, seen = false;
    size_t o = 0;
    for (int32_t i = 0; i < n; i++) {
        bool is_byte = t->v->types[ids[i]] == SQ_TOKEN_BYTE;
        if (!is_byte && (seen || o > 0)) is_bos_ws = false;
        const char *p;
        bool stripped;
        size_t l = piece_bytes(t, ids[i], is_bos_ws && !is_byte, &p, &stripped);
        if (!is_byte) seen = stripped && !t->v->remove_extra_whitespaces;
        memcpy(s + o, p, l);
        o += l;
    }
    s[o] = '\0';
    *text = s;
    if (len) *len = o;
    return SQ_OK;
}

/* ===== Test hook (tokenizer_internal.h) ===== */

typedef struct {
    const chars *ch;
    idvec ends;
} split_ctx;

static bool split_collect(void *ctx, size_t a, size_t b) {
    (void)a;
    split_ctx *s = ctx;
    return idvec_push(&s->ends, s->ch->off[b]);
}

sq_status sq_pretok_split(sq_pretok pre, const char *text, size_t len, int32_t **ends, int32_t *n) {
    *ends = NULL;
    *n = 0;
    if (pre == SQ_PRE_DEFAULT || len > MAX_TEXT_BYTES) return sq_errorf(SQ_ERR_ARG, "sq_pretok_split: bad arguments");
    chars c = {0};
    split_ctx s = {&c, {0}};
    c.cp = malloc((len + 1) * sizeof *c.cp);
    c.fl = malloc(len + 1);
    c.off = malloc((len + 1) * sizeof *c.off);
    bool ok = c.cp && c.fl && c.off;
    if (ok) {
        fill_chars(&c, text, len);
        ok = pretokenize(&c, pre, split_collect, &s);
    }
    free(c.cp);
    free(c.fl);
    free(c.off);
    if (!ok) {
        free(s.ends.a);
        return sq_errorf(SQ_ERR_OOM, "sq_pretok_split: out of memory");
    }
    *ends = s.ends.a;
    *n = (int32_t)s.ends.n;
    return SQ_OK;
}

void sq_tokenizer_set_chunking(sq_tokenizer *t, bool on) { t->chunking = on && !t->has_unused; }
