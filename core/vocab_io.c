/* vocab_io.c - readers that fill an sq_vocab from the three tokenizer files squish
 * imports: SentencePiece tokenizer.model (a protobuf ModelProto, google/sentencepiece
 * src/sentencepiece_model.proto; FORMATS.md 4.3), Hugging Face tokenizer.json plus
 * tokenizer_config.json (FORMATS.md 4.2) and llama2.c tokenizer.bin (FORMATS.md 5.3).
 *
 * Every reader treats its input as hostile: each length and count is checked against
 * the bytes left, pieces must be non-empty, NUL-free and short, and every error is one
 * line "path: what is wrong". The protobuf reader is a minimal wire-format decoder
 * (varint, fixed32, fixed64, length-delimited); it does not handle groups (never used
 * by ModelProto). SentencePiece UNIGRAM models are refused: only BPE is implemented.
 */
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../runtime/fileio.h"
#include "util.h"

/* The longest piece we accept, in bytes (sq_vocab_validate allows 2 * SQ_MAX_NAME). */
#define MAX_PIECE_BYTES (2 * SQ_MAX_NAME)
/* The largest vocabulary we accept (sq_vocab_validate's limit). */
#define MAX_TOKENS (1 << 24)

/* ===== Small helpers ===== */

/* Grows the three per-token arrays of v to hold at least n tokens. */
static sq_status vocab_reserve(sq_vocab *v, int32_t *cap, int32_t n, const char *path) {
    if (n <= *cap) return SQ_OK;
    int32_t nc = *cap ? *cap : 64;
    while (nc < n) nc = nc > MAX_TOKENS / 2 ? MAX_TOKENS : nc * 2;
    char **t = realloc(v->tokens, (size_t)nc * sizeof *t);
    if (!t) return sq_errorf(SQ_ERR_OOM, "%s: out of memory for %d tokens", path, nc);
    v->tokens = t;
    float *s = realloc(v->scores, (size_t)nc * sizeof *s);
    if (!s) return sq_errorf(SQ_ERR_OOM, "%s: out of memory for %d tokens", path, nc);
    v->scores = s;
    int32_t *ty = realloc(v->types, (size_t)nc * sizeof *ty);
    if (!ty) return sq_errorf(SQ_ERR_OOM, "%s: out of memory for %d tokens", path, nc);
    v->types = ty;
    for (int32_t i = *cap; i < nc; i++) {
        v->tokens[i] = NULL;
        v->scores[i] = 0.0f;
        v->types[i] = SQ_TOKEN_NORMAL;
    }
    *cap = nc;
    return SQ_OK;
}

/* Allocates arrays for exactly n tokens (all NULL / 0 / NORMAL). */
static sq_status vocab_alloc(sq_vocab *v, int32_t n, const char *path) {
    int32_t cap = 0;
    v->n_tokens = 0;
    v->tokens = NULL;
    v->scores = NULL;
    v->types = NULL;
    sq_status st = vocab_reserve(v, &cap, n, path);
    if (st == SQ_OK) v->n_tokens = n;
    return st;
}

/* Checks a piece of n bytes: not empty, no NUL, not absurdly long. `what` says where. */
static sq_status check_piece(const char *path, const char *what, int64_t index, const uint8_t *p, size_t n) {
    if (n == 0) return sq_errorf(SQ_ERR_FORMAT, "%s: %s %lld is empty", path, what, (long long)index);
    if (n > MAX_PIECE_BYTES)
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s %lld is %zu bytes long (limit %d)", path, what, (long long)index, n,
                         MAX_PIECE_BYTES);
    if (memchr(p, 0, n))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s %lld contains a NUL byte", path, what, (long long)index);
    return SQ_OK;
}

static char *dup_bytes(const void *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* A printable, shortened copy of untrusted text for one-line error messages: control
 * bytes become \xHH and the copy stops near cap. Returns buf. */
static const char *esc(const char *s, char *buf, size_t cap) {
    size_t o = 0;
    for (; *s && o + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
        else
            buf[o++] = (char)c;
    }
    if (*s && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* True if s is exactly "<0xHH>" with uppercase hex digits (SentencePiece byte piece). */
static bool is_byte_piece(const char *s) {
    if (strlen(s) != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return false;
    for (int i = 3; i < 5; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F'))) return false;
    return true;
}

/* ===== Token string -> id map (FNV-1a, open addressing over v->tokens) ===== */

typedef struct {
    int32_t *slots; /* -1 = empty */
    size_t mask;
} tokmap;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Builds the map of the first n tokens (NULL tokens are skipped). With dup_a/dup_b
 * non-NULL, stops at the first repeated string and reports both ids (else -1). */
static sq_status tokmap_build(tokmap *m, const sq_vocab *v, int32_t n, const char *path, int32_t *dup_a,
                              int32_t *dup_b) {
    if (dup_a) *dup_a = *dup_b = -1;
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    m->mask = cap - 1;
    if (!m->slots) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    for (size_t i = 0; i < cap; i++) m->slots[i] = -1;
    for (int32_t i = 0; i < n; i++) {
        if (!v->tokens[i]) continue;
        size_t k = (size_t)hash_str(v->tokens[i]) & m->mask;
        bool dup = false;
        while (m->slots[k] >= 0) {
            if (strcmp(v->tokens[m->slots[k]], v->tokens[i]) == 0) {
                if (dup_a) {
                    *dup_a = m->slots[k];
                    *dup_b = i;
                    return SQ_OK;
                }
                dup = true;
                break;
            }
            k = (k + 1) & m->mask;
        }
        if (!dup) m->slots[k] = i;
    }
    return SQ_OK;
}

static int32_t tokmap_get(const tokmap *m, const sq_vocab *v, const char *s) {
    size_t k = (size_t)hash_str(s) & m->mask;
    while (m->slots[k] >= 0) {
        if (strcmp(v->tokens[m->slots[k]], s) == 0) return m->slots[k];
        k = (k + 1) & m->mask;
    }
    return -1;
}

static sq_status reject_duplicates(const sq_vocab *v, const char *path) {
    tokmap m = {0};
    int32_t a, b;
    sq_status st = tokmap_build(&m, v, v->n_tokens, path, &a, &b);
    free(m.slots);
    if (st != SQ_OK) return st;
    if (a >= 0) {
        char e[80];
        return sq_errorf(SQ_ERR_FORMAT, "%s: token %d repeats token %d ('%s')", path, b, a,
                         esc(v->tokens[a], e, sizeof e));
    }
    return SQ_OK;
}

/* ===== Protobuf wire format ===== */

typedef struct {
    const uint8_t *p, *end;
} pb_reader;

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

/* Reads a base-128 varint of at most 10 bytes. Returns false if truncated or too long. */
static bool pb_varint(pb_reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* One field: its number, wire type and value (varint / fixed as integer, LEN as a
 * sub-range). Returns 1 on success, 0 at the end of the message, -1 on malformed data
 * (with *why set). */
typedef struct {
    uint32_t field;
    int wire;
    uint64_t u;     /* varint or fixed value */
    pb_reader sub;  /* LEN payload */
} pb_field;

static int pb_next(pb_reader *r, pb_field *f, const char **why) {
    if (r->p >= r->end) return 0;
    uint64_t key;
    if (!pb_varint(r, &key)) {
        *why = "truncated field key";
        return -1;
    }
    f->field = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    if (f->field == 0 || (key >> 3) > 0x1fffffff) {
        *why = "invalid field number";
        return -1;
    }
    switch (f->wire) {
    case PB_VARINT:
        if (!pb_varint(r, &f->u)) {
            *why = "truncated varint";
            return -1;
        }
        return 1;
    case PB_FIXED64:
        if (r->end - r->p < 8) {
            *why = "truncated 64-bit value";
            return -1;
        }
        f->u = 0;
        for (int i = 7; i >= 0; i--) f->u = (f->u << 8) | r->p[i];
        r->p += 8;
        return 1;
    case PB_FIXED32:
        if (r->end - r->p < 4) {
            *why = "truncated 32-bit value";
            return -1;
        }
        f->u = (uint64_t)r->p[0] | (uint64_t)r->p[1] << 8 | (uint64_t)r->p[2] << 16 | (uint64_t)r->p[3] << 24;
        r->p += 4;
        return 1;
    case PB_LEN: {
        uint64_t n;
        if (!pb_varint(r, &n)) {
            *why = "truncated length";
            return -1;
        }
        if (n > (uint64_t)(r->end - r->p)) {
            *why = "length runs past the end of the data";
            return -1;
        }
        f->sub.p = r->p;
        f->sub.end = r->p + n;
        r->p += n;
        return 1;
    }
    default:
        *why = "unsupported wire type (groups are not used by ModelProto)";
        return -1;
    }
}

static float pb_float(uint64_t u) {
    uint32_t b = (uint32_t)u;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* ===== SentencePiece tokenizer.model ===== */

typedef struct {
    int64_t model_type; /* 1 UNIGRAM (the proto default), 2 BPE, 3 WORD, 4 CHAR */
    bool byte_fallback;
    int64_t unk_id, bos_id, eos_id, pad_id;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    char name[64];
    uint64_t charsmap_bytes;
} spm_specs;

/* Checks the field has the expected wire type. */
#define PB_EXPECT(f, w, msgname)                                                                         \
    do {                                                                                                 \
        if ((f).wire != (w)) {                                                                           \
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s field %u has wire type %d, expected %d", path, msgname, \
                           (f).field, (f).wire, (w));                                                    \
            goto fail;                                                                                   \
        }                                                                                                \
    } while (0)

static sq_status spm_piece(const char *path, pb_reader r, int64_t index, sq_vocab *v) {
    sq_status st = SQ_OK;
    pb_field f;
    const char *why = NULL;
    int rc;
    const uint8_t *piece = NULL;
    size_t piece_len = 0;
    bool have_piece = false;
    float score = 0.0f;
    int64_t type = SQ_TOKEN_NORMAL;
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if (f.field == 1) {
            PB_EXPECT(f, PB_LEN, "SentencePiece");
            piece = f.sub.p;
            piece_len = (size_t)(f.sub.end - f.sub.p);
            have_piece = true;
        } else if (f.field == 2) {
            PB_EXPECT(f, PB_FIXED32, "SentencePiece");
            score = pb_float(f.u);
        } else if (f.field == 3) {
            PB_EXPECT(f, PB_VARINT, "SentencePiece");
            type = (int64_t)f.u;
        }
    }
    if (rc < 0) return sq_errorf(SQ_ERR_FORMAT, "%s: piece %lld: %s", path, (long long)index, why);
    if (!have_piece) return sq_errorf(SQ_ERR_FORMAT, "%s: piece %lld has no text", path, (long long)index);
    if ((st = check_piece(path, "piece", index, piece, piece_len)) != SQ_OK) return st;
    if (type < SQ_TOKEN_NORMAL || type > SQ_TOKEN_BYTE)
        return sq_errorf(SQ_ERR_FORMAT, "%s: piece %lld has unknown type %lld", path, (long long)index,
                         (long long)type);
    if (score != score) return sq_errorf(SQ_ERR_FORMAT, "%s: piece %lld has a NaN score", path, (long long)index);
    int32_t i = v->n_tokens;
    if (!(v->tokens[i] = dup_bytes(piece, piece_len))) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    v->scores[i] = score;
    v->types[i] = (int32_t)type;
    v->n_tokens++;
    return SQ_OK;
fail:
    return st;
}

/* An int32 proto field is a varint holding the two's-complement value sign-extended to
 * 64 bits (negative ids take ten bytes). */
static int64_t pb_int32(uint64_t u) { return (int64_t)(int32_t)(uint32_t)u; }

static sq_status spm_trainer(const char *path, pb_reader r, spm_specs *s) {
    sq_status st = SQ_OK;
    pb_field f;
    const char *why = NULL;
    int rc;
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        switch (f.field) {
        case 3: PB_EXPECT(f, PB_VARINT, "TrainerSpec"); s->model_type = pb_int32(f.u); break;
        case 35: PB_EXPECT(f, PB_VARINT, "TrainerSpec"); s->byte_fallback = f.u != 0; break;
        case 40: PB_EXPECT(f, PB_VARINT, "TrainerSpec"); s->unk_id = pb_int32(f.u); break;
        case 41: PB_EXPECT(f, PB_VARINT, "TrainerSpec"); s->bos_id = pb_int32(f.u); break;
        case 42: PB_EXPECT(f, PB_VARINT, "TrainerSpec"); s->eos_id = pb_int32(f.u); break;
        case 43: PB_EXPECT(f, PB_VARINT, "TrainerSpec"); s->pad_id = pb_int32(f.u); break;
        default: break;
        }
    }
    if (rc < 0) return sq_errorf(SQ_ERR_FORMAT, "%s: trainer_spec: %s", path, why);
    return SQ_OK;
fail:
    return st;
}

static sq_status spm_normalizer(const char *path, pb_reader r, spm_specs *s) {
    sq_status st = SQ_OK;
    pb_field f;
    const char *why = NULL;
    int rc;
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        switch (f.field) {
        case 1: {
            PB_EXPECT(f, PB_LEN, "NormalizerSpec");
            size_t n = (size_t)(f.sub.end - f.sub.p);
            if (n >= sizeof s->name) n = sizeof s->name - 1;
            memcpy(s->name, f.sub.p, n);
            s->name[n] = '\0';
            if (memchr(s->name, 0, n)) s->name[0] = '?', s->name[1] = '\0';
            break;
        }
        case 2: PB_EXPECT(f, PB_LEN, "NormalizerSpec"); s->charsmap_bytes = (uint64_t)(f.sub.end - f.sub.p); break;
        case 3: PB_EXPECT(f, PB_VARINT, "NormalizerSpec"); s->add_dummy_prefix = f.u != 0; break;
        case 4: PB_EXPECT(f, PB_VARINT, "NormalizerSpec"); s->remove_extra_whitespaces = f.u != 0; break;
        case 5: PB_EXPECT(f, PB_VARINT, "NormalizerSpec"); s->escape_whitespaces = f.u != 0; break;
        default: break;
        }
    }
    if (rc < 0) return sq_errorf(SQ_ERR_FORMAT, "%s: normalizer_spec: %s", path, why);
    return SQ_OK;
fail:
    return st;
}

static const char *spm_model_type_name(int64_t t) {
    switch (t) {
    case 1: return "UNIGRAM";
    case 2: return "BPE";
    case 3: return "WORD";
    case 4: return "CHAR";
    default: return "unknown";
    }
}

sq_status sq_vocab_read_spm(const char *path, sq_vocab *out) {
    memset(out, 0, sizeof *out);
    sq_mapping m = {0};
    sq_status st = sq_map_file(path, &m);
    if (st != SQ_OK) return st;
    sq_vocab v = {0};
    int32_t cap = 0;
    spm_specs s = {.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2, .pad_id = -1,
                   .add_dummy_prefix = true, .remove_extra_whitespaces = true, .escape_whitespaces = true};
    bool have_trainer = false;
    pb_reader r = {m.data, m.data + m.size};
    pb_field f;
    const char *why = NULL;
    int rc;
    if (m.size == 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: empty file, not a SentencePiece model", path);
        goto fail;
    }
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if (f.field == 1) {
            PB_EXPECT(f, PB_LEN, "ModelProto");
            if (v.n_tokens >= MAX_TOKENS) {
                st = sq_errorf(SQ_ERR_FORMAT, "%s: more than %d pieces", path, MAX_TOKENS);
                goto fail;
            }
            if ((st = vocab_reserve(&v, &cap, v.n_tokens + 1, path)) != SQ_OK) goto fail;
            if ((st = spm_piece(path, f.sub, v.n_tokens, &v)) != SQ_OK) goto fail;
        } else if (f.field == 2) {
            PB_EXPECT(f, PB_LEN, "ModelProto");
            have_trainer = true;
            if ((st = spm_trainer(path, f.sub, &s)) != SQ_OK) goto fail;
        } else if (f.field == 3) {
            PB_EXPECT(f, PB_LEN, "ModelProto");
            if ((st = spm_normalizer(path, f.sub, &s)) != SQ_OK) goto fail;
        }
    }
    if (rc < 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: not a valid SentencePiece model (%s at byte %lld)", path, why,
                       (long long)(r.p - m.data));
        goto fail;
    }
    if (v.n_tokens == 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: no pieces: not a SentencePiece model", path);
        goto fail;
    }
    if (!have_trainer || s.model_type != 2) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED,
                       "%s: SentencePiece model type is %s%s; squish implements only BPE (Llama-2, Mistral, "
                       "TinyLlama)",
                       path, spm_model_type_name(s.model_type), have_trainer ? "" : " (no trainer_spec)");
        goto fail;
    }
    if (!s.escape_whitespaces) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: escape_whitespaces = false is not supported", path);
        goto fail;
    }
    const int64_t ids[4] = {s.unk_id, s.bos_id, s.eos_id, s.pad_id};
    static const char *const names[4] = {"unk_id", "bos_id", "eos_id", "pad_id"};
    for (int k = 0; k < 4; k++) {
        if (ids[k] < -1 || ids[k] >= v.n_tokens) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: %s %lld is outside the %d pieces", path, names[k], (long long)ids[k],
                           v.n_tokens);
            goto fail;
        }
    }
    if ((st = reject_duplicates(&v, path)) != SQ_OK) goto fail;
    if (strcmp(s.name, "identity") != 0 && s.name[0] && s.charsmap_bytes > 0)
        sq_log(SQ_LOG_WARN,
               "%s: normalizer '%s' has a precompiled charsmap (%llu bytes); squish does not apply it (no NFKC "
               "normalization), so text that it would change tokenizes differently",
               path, s.name, (unsigned long long)s.charsmap_bytes);
    v.kind = SQ_VOCAB_SPM;
    v.pre = SQ_PRE_DEFAULT;
    v.unk_id = (int32_t)s.unk_id;
    v.bos_id = (int32_t)s.bos_id;
    v.eos_id = (int32_t)s.eos_id;
    v.pad_id = (int32_t)s.pad_id;
    v.add_bos = v.bos_id >= 0; /* the Llama convention; tokenizer_config.json may override */
    v.add_eos = false;
    v.add_dummy_prefix = s.add_dummy_prefix;
    v.remove_extra_whitespaces = s.remove_extra_whitespaces;
    v.byte_fallback = s.byte_fallback;
    sq_unmap_file(&m);
    *out = v;
    return SQ_OK;
fail:
    sq_unmap_file(&m);
    sq_vocab_free(&v);
    return st;
}

/* ===== llama2.c tokenizer.bin ===== */


/* llama2.c's tokenizer.py wrote ' ' for U+2581 and "\n<s>\n" / "\n</s>\n" for BOS/EOS.
 * Converts a raw piece back to SentencePiece form (malloc'ed). */
static char *llama2c_piece(const uint8_t *p, size_t n) {
    if (n == 5 && memcmp(p, "\n<s>\n", 5) == 0) return dup_bytes("<s>", 3);
    if (n == 6 && memcmp(p, "\n</s>\n", 6) == 0) return dup_bytes("</s>", 4);
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++) spaces += p[i] == ' ';
    char *s = malloc(n + 2 * spaces + 1), *o = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ') {
            *o++ = (char)0xE2;
            *o++ = (char)0x96;
            *o++ = (char)0x81;
        } else {
            *o++ = (char)p[i];
        }
    }
    *o = '\0';
    return s;
}

sq_status sq_vocab_read_llama2c(const char *path, int32_t n_tokens, sq_vocab *out) {
    memset(out, 0, sizeof *out);
    if (n_tokens < 3 || n_tokens > MAX_TOKENS)
        return sq_errorf(SQ_ERR_FORMAT, "%s: a vocabulary of %d tokens is not plausible (need 3..%d)", path,
                         n_tokens, MAX_TOKENS);
    sq_mapping m = {0};
    sq_status st = sq_map_file(path, &m);
    if (st != SQ_OK) return st;
    sq_vocab v = {0};
    const uint8_t *p = m.data, *end = m.data + m.size;
    if (m.size < 4) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %llu bytes is too short for a llama2.c tokenizer", path,
                       (unsigned long long)m.size);
        goto fail;
    }
    uint32_t max_len = sq_rd_le32(p);
    p += 4;
    if (max_len == 0 || max_len > MAX_PIECE_BYTES) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: max_token_length %u is not plausible: not a llama2.c tokenizer.bin", path,
                       max_len);
        goto fail;
    }
    if ((st = vocab_alloc(&v, n_tokens, path)) != SQ_OK) goto fail;
    for (int32_t i = 0; i < n_tokens; i++) {
        if (end - p < 8) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: truncated at token %d of %d (the model expects %d tokens)", path, i,
                           n_tokens, n_tokens);
            goto fail;
        }
        uint32_t sb = sq_rd_le32(p), lb = sq_rd_le32(p + 4);
        p += 8;
        float score;
        memcpy(&score, &sb, sizeof score);
        int32_t len = (int32_t)lb;
        if (len < 0 || (uint64_t)len > (uint64_t)(end - p)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: token %d has length %d but only %lld bytes are left", path, i, len,
                           (long long)(end - p));
            goto fail;
        }
        if ((uint32_t)len > max_len) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: token %d is %d bytes, longer than max_token_length %u", path, i, len,
                           max_len);
            goto fail;
        }
        if ((st = check_piece(path, "token", i, p, (size_t)len)) != SQ_OK) goto fail;
        if (score != score) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: token %d has a NaN score", path, i);
            goto fail;
        }
        if (!(v.tokens[i] = llama2c_piece(p, (size_t)len))) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
            goto fail;
        }
        p += len;
        v.scores[i] = score;
        v.types[i] = i == 0 ? SQ_TOKEN_UNKNOWN
                     : (i == 1 || i == 2) ? SQ_TOKEN_CONTROL
                     : is_byte_piece(v.tokens[i]) ? SQ_TOKEN_BYTE
                                                  : SQ_TOKEN_NORMAL;
    }
    if (p != end)
        sq_log(SQ_LOG_WARN, "%s: %lld bytes after the %d tokens the model uses are ignored", path,
               (long long)(end - p), n_tokens);
    if ((st = reject_duplicates(&v, path)) != SQ_OK) goto fail;
    v.kind = SQ_VOCAB_SPM;
    v.pre = SQ_PRE_DEFAULT;
    v.unk_id = 0;
    v.bos_id = 1;
    v.eos_id = 2;
    v.pad_id = -1;
    v.add_bos = true;
    v.add_eos = false;
    v.add_dummy_prefix = true;
    v.remove_extra_whitespaces = false;
    v.byte_fallback = true;
    sq_unmap_file(&m);
    *out = v;
    return SQ_OK;
fail:
    sq_unmap_file(&m);
    sq_vocab_free(&v);
    return st;
}

/* ===== JSON helpers ===== */

/* Parses a whole JSON file. *root is freed by the caller with cJSON_Delete. */
static sq_status read_json(const char *path, cJSON **root) {
    *root = NULL;
    sq_mapping m = {0};
    sq_status st = sq_map_file(path, &m);
    if (st != SQ_OK) return st;
    if (m.size == 0) {
        sq_unmap_file(&m);
        return sq_errorf(SQ_ERR_FORMAT, "%s: empty file, expected JSON", path);
    }
    const char *err_at = NULL;
    *root = cJSON_ParseWithLengthOpts((const char *)m.data, (size_t)m.size, &err_at, 0);
    if (!*root) {
        long long off = err_at ? (long long)(err_at - (const char *)m.data) : -1;
        sq_unmap_file(&m);
        return sq_errorf(SQ_ERR_FORMAT, "%s: invalid JSON near byte %lld", path, off);
    }
    sq_unmap_file(&m);
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return sq_errorf(SQ_ERR_FORMAT, "%s: expected a JSON object at the top level", path);
    }
    return SQ_OK;
}

static const cJSON *jget(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* The string at o[key], or NULL if absent or not a string. */
static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *s = jget(o, key);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* o[key] as a bool, def if absent or null. */
static bool jbool(const cJSON *o, const char *key, bool def) {
    const cJSON *b = jget(o, key);
    return cJSON_IsBool(b) ? cJSON_IsTrue(b) : def;
}

/* tokenizer_config.json names special tokens either as a string or as a serialized
 * AddedToken object {"content": ...}. */
static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *t = jget(cfg, key);
    if (cJSON_IsString(t)) return t->valuestring;
    return jstr(t, "content");
}

/* ===== tokenizer_config.json ===== */

static sq_status apply_config_flags(sq_vocab *v, const cJSON *root, const char *config_path) {
    const cJSON *b = jget(root, "add_bos_token");
    const cJSON *e = jget(root, "add_eos_token");
    if (b && !cJSON_IsNull(b)) {
        if (!cJSON_IsBool(b)) return sq_errorf(SQ_ERR_FORMAT, "%s: add_bos_token is not true/false", config_path);
        v->add_bos = cJSON_IsTrue(b);
    }
    if (e && !cJSON_IsNull(e)) {
        if (!cJSON_IsBool(e)) return sq_errorf(SQ_ERR_FORMAT, "%s: add_eos_token is not true/false", config_path);
        v->add_eos = cJSON_IsTrue(e);
    }
    if (v->add_bos && v->bos_id < 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: add_bos_token is true but the vocabulary has no BOS token", config_path);
    if (v->add_eos && v->eos_id < 0)
        return sq_errorf(SQ_ERR_FORMAT, "%s: add_eos_token is true but the vocabulary has no EOS token", config_path);
    return SQ_OK;
}

sq_status sq_vocab_apply_tokenizer_config(sq_vocab *v, const char *config_path) {
    if (!config_path || access(config_path, F_OK) != 0) return SQ_OK;
    cJSON *root = NULL;
    sq_status st = read_json(config_path, &root);
    if (st != SQ_OK) return st;
    st = apply_config_flags(v, root, config_path);
    cJSON_Delete(root);
    return st;
}

/* ===== Hugging Face tokenizer.json ===== */

/* The pre-tokenizer regexes of FORMATS.md 4.2, as they appear (after JSON unescaping)
 * in Split pre-tokenizers. */
static const char PAT_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char PAT_LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                 "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Flattens a component that may be a "Sequence" (key `list`: "pretokenizers",
 * "decoders", "normalizers", "processors") into at most `cap` items. Returns the count,
 * or -1 if there are more. */
static int flatten(const cJSON *c, const char *list, const cJSON **items, int cap) {
    if (!cJSON_IsObject(c)) return 0;
    const char *type = jstr(c, "type");
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *arr = jget(c, list);
        int n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            int k = flatten(it, list, items + n, cap - n);
            if (k < 0) return -1;
            n += k;
        }
        return n;
    }
    if (cap < 1) return -1;
    items[0] = c;
    return 1;
}

static bool has_type(const cJSON *c, const char *list, const char *type) {
    const cJSON *items[32];
    int n = flatten(c, list, items, 32);
    for (int i = 0; i < n; i++) {
        const char *t = jstr(items[i], "type");
        if (t && strcmp(t, type) == 0) return true;
    }
    return false;
}

/* A short description of a pre-tokenizer for error messages: "Split+ByteLevel". */
static void describe(const cJSON *const *items, int n, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o + 1 < cap; i++) {
        const char *t = jstr(items[i], "type");
        char e[40];
        int w = snprintf(buf + o, cap - o, "%s%s", i ? "+" : "", esc(t ? t : "?", e, sizeof e));
        if (w < 0) break;
        o += (size_t)w;
    }
}

/* Which byte-level pre-tokenizer a tokenizer.json describes (FORMATS.md 4.2). */
static sq_status detect_pretok(const cJSON *pre, const char *path, sq_pretok *out) {
    const cJSON *it[8];
    int n = flatten(pre, "pretokenizers", it, 8);
    char desc[128];
    describe(it, n < 0 ? 0 : n, desc, sizeof desc);
#define TYPE_IS(i, name) (jstr(it[i], "type") && strcmp(jstr(it[i], "type"), name) == 0)
    if (n == 1 && TYPE_IS(0, "ByteLevel")) {
        if (jbool(it[0], "add_prefix_space", false))
            return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space = true is not supported", path);
        if (!jbool(it[0], "use_regex", true))
            return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: a ByteLevel pre-tokenizer without a regex is not supported",
                             path);
        *out = SQ_PRE_GPT2;
        return SQ_OK;
    }
    if (n == 2 && TYPE_IS(0, "Digits") && TYPE_IS(1, "ByteLevel")) {
        if (!jbool(it[0], "individual_digits", false) || !jbool(it[1], "use_regex", true) ||
            jbool(it[1], "add_prefix_space", false))
            return sq_errorf(SQ_ERR_UNSUPPORTED,
                             "%s: pre-tokenizer Digits+ByteLevel is supported only with individual_digits = true, "
                             "use_regex = true and add_prefix_space = false (SmolLM)",
                             path);
        *out = SQ_PRE_SMOLLM;
        return SQ_OK;
    }
    if (n == 2 && TYPE_IS(0, "Split") && TYPE_IS(1, "ByteLevel")) {
        const char *pat = jstr(jget(it[0], "pattern"), "Regex");
        const char *behavior = jstr(it[0], "behavior");
        if (!pat)
            return sq_errorf(SQ_ERR_UNSUPPORTED, "%s: the Split pre-tokenizer has no Regex pattern", path);
        if ((behavior && strcmp(behavior, "Isolated") != 0) || jbool(it[0], "invert", false) ||
            jbool(it[1], "use_regex", true) || jbool(it[1], "add_prefix_space", false))
            return sq_errorf(SQ_ERR_UNSUPPORTED,
                             "%s: Split+ByteLevel is supported only with behavior Isolated, invert false, and "
                             "ByteLevel use_regex = false, add_prefix_space = false",
                             path);
        if (strcmp(pat, PAT_LLAMA3) == 0)
            *out = SQ_PRE_LLAMA3;
        else if (strcmp(pat, PAT_QWEN2) == 0)
            *out = SQ_PRE_QWEN2;
        else if (strcmp(pat, PAT_GPT2) == 0)
            *out = SQ_PRE_GPT2;
        else {
            char e[160];
            return sq_errorf(SQ_ERR_UNSUPPORTED,
                             "%s: unknown pre-tokenizer regex '%s' (known: gpt-2, llama-bpe, qwen2, smollm)", path,
                             esc(pat, e, sizeof e));
        }
        return SQ_OK;
    }
#undef TYPE_IS
    return sq_errorf(SQ_ERR_UNSUPPORTED,
                     "%s: unknown byte-level pre-tokenizer '%s' (known: ByteLevel, Split+ByteLevel with the gpt-2, "
                     "llama-bpe or qwen2 regex, Digits+ByteLevel for smollm)",
                     path, n < 0 ? "(too long)" : desc);
}

/* The special token strings of a TemplateProcessing post-processor: the one before "A"
 * (BOS) and the one after it (EOS), or NULL. */
static void template_specials(const cJSON *post, const char **bos, const char **eos) {
    *bos = *eos = NULL;
    const cJSON *items[8];
    int n = flatten(post, "processors", items, 8);
    for (int i = 0; i < n; i++) {
        const char *t = jstr(items[i], "type");
        if (!t || strcmp(t, "TemplateProcessing") != 0) continue;
        const cJSON *single = jget(items[i], "single");
        bool seen_seq = false;
        const cJSON *el;
        cJSON_ArrayForEach(el, single) {
            const cJSON *sp = jget(el, "SpecialToken");
            if (jget(el, "Sequence")) {
                seen_seq = true;
            } else if (sp && jstr(sp, "id")) {
                if (!seen_seq && !*bos) *bos = jstr(sp, "id");
                if (seen_seq) *eos = jstr(sp, "id");
            }
        }
    }
}

/* Splits a merge entry (string "a b" or pair ["a", "b"]) into its two tokens; the
 * pointers borrow from the JSON (string form: copied into buf). */
static bool merge_parts(const cJSON *m, char *buf, size_t cap, const char **a, const char **b) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ') || sp == s || !sp[1]) return false;
        size_t n = strlen(s);
        if (n + 1 > cap) return false;
        memcpy(buf, s, n + 1);
        buf[sp - s] = '\0';
        *a = buf;
        *b = buf + (sp - s) + 1;
        return true;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2) {
        const cJSON *x = cJSON_GetArrayItem(m, 0), *y = cJSON_GetArrayItem(m, 1);
        if (!cJSON_IsString(x) || !cJSON_IsString(y) || !x->valuestring[0] || !y->valuestring[0]) return false;
        *a = x->valuestring;
        *b = y->valuestring;
        return true;
    }
    return false;
}

/* First of the names that is a token, or -1. */
static int32_t first_known(const tokmap *m, const sq_vocab *v, const char *const *names) {
    for (; *names; names++) {
        int32_t id = tokmap_get(m, v, *names);
        if (id >= 0) return id;
    }
    return -1;
}

sq_status sq_vocab_read_hf_json(const char *path, const char *config_path, sq_vocab *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = NULL, *cfg = NULL;
    sq_vocab v = {0};
    tokmap map = {0};
    char *mbuf = NULL;
    sq_status st = read_json(path, &root);
    if (st != SQ_OK) return st;
    if (config_path && access(config_path, F_OK) == 0 && (st = read_json(config_path, &cfg)) != SQ_OK) goto fail;

    const cJSON *model = jget(root, "model");
    const char *mtype = jstr(model, "type");
    const cJSON *vocab = jget(model, "vocab"), *merges = jget(model, "merges");
    const cJSON *added = jget(root, "added_tokens");
    if (!cJSON_IsObject(model)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: no \"model\" object: not a tokenizer.json", path);
        goto fail;
    }
    if (mtype ? strcmp(mtype, "BPE") != 0 : !merges) {
        char e[80];
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: tokenizer model type '%s' is not supported (only BPE)", path,
                       esc(mtype ? mtype : "?", e, sizeof e));
        goto fail;
    }
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: the BPE model needs a \"vocab\" object and a \"merges\" array", path);
        goto fail;
    }
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: \"added_tokens\" is not an array", path);
        goto fail;
    }
    const char *csp = jstr(model, "continuing_subword_prefix"), *eow = jstr(model, "end_of_word_suffix");
    if ((csp && *csp) || (eow && *eow)) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: BPE with continuing_subword_prefix/end_of_word_suffix is not supported",
                       path);
        goto fail;
    }
    const cJSON *dropout = jget(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        sq_log(SQ_LOG_WARN, "%s: BPE dropout %g is ignored (squish always encodes deterministically)", path,
               dropout->valuedouble);

    /* ----- the id space: vocab plus added tokens ----- */
    int64_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= MAX_TOKENS ||
            it->valuedouble != (double)(int32_t)it->valuedouble) {
            char e[80];
            st = sq_errorf(SQ_ERR_FORMAT, "%s: vocab entry '%s' has an invalid id", path,
                           esc(it->string ? it->string : "?", e, sizeof e));
            goto fail;
        }
        if ((int64_t)it->valuedouble + 1 > n) n = (int64_t)it->valuedouble + 1;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = jget(it, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= MAX_TOKENS ||
            id->valuedouble != (double)(int32_t)id->valuedouble || !jstr(it, "content")) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: an added token has no valid id or content", path);
            goto fail;
        }
        if ((int64_t)id->valuedouble + 1 > n) n = (int64_t)id->valuedouble + 1;
    }
    if (n == 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: the vocabulary is empty", path);
        goto fail;
    }
    if ((st = vocab_alloc(&v, (int32_t)n, path)) != SQ_OK) goto fail;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = (int32_t)it->valuedouble;
        const char *s = it->string;
        if ((st = check_piece(path, "vocab token", id, (const uint8_t *)s, strlen(s))) != SQ_OK) goto fail;
        if (v.tokens[id]) {
            char e1[80], e2[80];
            st = sq_errorf(SQ_ERR_FORMAT, "%s: id %d is used by both '%s' and '%s'", path, id,
                           esc(v.tokens[id], e1, sizeof e1), esc(s, e2, sizeof e2));
            goto fail;
        }
        if (!(v.tokens[id] = dup_bytes(s, strlen(s)))) goto oom;
    }
    int n_strip = 0;
    cJSON_ArrayForEach(it, added) {
        int32_t id = (int32_t)jget(it, "id")->valuedouble;
        const char *s = jstr(it, "content");
        if ((st = check_piece(path, "added token", id, (const uint8_t *)s, strlen(s))) != SQ_OK) goto fail;
        if (v.tokens[id] && strcmp(v.tokens[id], s) != 0) {
            char e1[80], e2[80];
            st = sq_errorf(SQ_ERR_FORMAT, "%s: added token '%s' has id %d, which the vocab gives to '%s'", path,
                           esc(s, e1, sizeof e1), id, esc(v.tokens[id], e2, sizeof e2));
            goto fail;
        }
        if (!v.tokens[id] && !(v.tokens[id] = dup_bytes(s, strlen(s)))) goto oom;
        v.types[id] = jbool(it, "special", false) ? SQ_TOKEN_CONTROL : SQ_TOKEN_USER_DEFINED;
        n_strip += jbool(it, "lstrip", false) || jbool(it, "rstrip", false) || jbool(it, "single_word", false);
    }
    if (n_strip)
        sq_log(SQ_LOG_WARN, "%s: lstrip/rstrip/single_word of %d added tokens are ignored", path, n_strip);
    int32_t gaps = 0;
    for (int32_t i = 0; i < v.n_tokens; i++) {
        if (v.tokens[i]) continue;
        char name[48];
        snprintf(name, sizeof name, "<squish_unused_%d>", i);
        if (!(v.tokens[i] = dup_bytes(name, strlen(name)))) goto oom;
        v.types[i] = SQ_TOKEN_UNUSED;
        gaps++;
    }
    if (gaps) sq_log(SQ_LOG_WARN, "%s: %d ids have no token; they are filled with <squish_unused_N>", path, gaps);
    if ((st = reject_duplicates(&v, path)) != SQ_OK) goto fail;
    if ((st = tokmap_build(&map, &v, v.n_tokens, path, NULL, NULL)) != SQ_OK) goto fail;

    /* ----- byte-level or SentencePiece-style ----- */
    const cJSON *pre = jget(root, "pre_tokenizer"), *dec = jget(root, "decoder"), *norm = jget(root, "normalizer");
    bool byte_level = has_type(pre, "pretokenizers", "ByteLevel") || has_type(dec, "decoders", "ByteLevel");
    bool prepend = false, replace_ws = false, metaspace = false;
    {
        const cJSON *items[16];
        int k = flatten(norm, "normalizers", items, 16);
        for (int i = 0; i < k; i++) {
            const char *t = jstr(items[i], "type");
            if (!t) continue;
            if (strcmp(t, "Prepend") == 0 && jstr(items[i], "prepend") &&
                strcmp(jstr(items[i], "prepend"), "\xE2\x96\x81") == 0)
                prepend = true;
            if (strcmp(t, "Replace") == 0 && jstr(items[i], "content") &&
                strcmp(jstr(items[i], "content"), "\xE2\x96\x81") == 0)
                replace_ws = true;
        }
        const cJSON *mi[16];
        k = flatten(pre, "pretokenizers", mi, 16);
        for (int i = 0; i < k; i++) {
            const char *t = jstr(mi[i], "type");
            if (t && strcmp(t, "Metaspace") == 0) {
                metaspace = true;
                const char *scheme = jstr(mi[i], "prepend_scheme");
                if (scheme ? strcmp(scheme, "never") != 0 : jbool(mi[i], "add_prefix_space", true)) prepend = true;
            }
        }
    }
    bool spm_style = !byte_level && (metaspace || replace_ws || has_type(dec, "decoders", "Metaspace"));
    if (!byte_level && !spm_style) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED,
                       "%s: neither a byte-level (ByteLevel) nor a SentencePiece-style (Metaspace / Replace ' ' -> "
                       "U+2581) BPE tokenizer",
                       path);
        goto fail;
    }

    /* ----- merges: validated for both; kept (byte-level) or turned into scores (SPM) ----- */
    int32_t n_merges = cJSON_GetArraySize(merges);
    if (n_merges < 0 || n_merges > MAX_TOKENS) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: %d merges is not plausible", path, n_merges);
        goto fail;
    }
    mbuf = malloc(2 * MAX_PIECE_BYTES + 2);
    if (!mbuf) goto oom;
    if (byte_level) {
        v.merges = calloc((size_t)(n_merges ? n_merges : 1), sizeof *v.merges);
        if (!v.merges) goto oom;
    } else {
        for (int32_t i = 0; i < v.n_tokens; i++) v.scores[i] = -1e9f; /* multi-char, never merged */
    }
    bool *scored = byte_level ? NULL : calloc((size_t)v.n_tokens, sizeof *scored);
    if (!byte_level && !scored) goto oom;
    int32_t r = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        char cat[2 * MAX_PIECE_BYTES + 2];
        if (!merge_parts(it, mbuf, 2 * MAX_PIECE_BYTES + 2, &a, &b)) {
            free(scored);
            st = sq_errorf(SQ_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", path, r);
            goto fail;
        }
        size_t la = strlen(a), lb = strlen(b);
        int32_t ia = tokmap_get(&map, &v, a), ib = tokmap_get(&map, &v, b), ic = -1;
        if (la + lb < sizeof cat) {
            memcpy(cat, a, la);
            memcpy(cat + la, b, lb + 1);
            ic = tokmap_get(&map, &v, cat);
        }
        if (ia < 0 || ib < 0 || ic < 0) {
            free(scored);
            char e1[80], e2[80], e3[160];
            st = sq_errorf(SQ_ERR_FORMAT, "%s: merge %d ('%s' '%s'): '%s' is not in the vocabulary", path, r,
                           esc(a, e1, sizeof e1), esc(b, e2, sizeof e2),
                           esc(ia < 0 ? a : ib < 0 ? b : cat, e3, sizeof e3));
            goto fail;
        }
        if (byte_level) {
            if (strchr(a, ' ') || strchr(b, ' ')) {
                char e1[80], e2[80];
                st = sq_errorf(SQ_ERR_FORMAT,
                               "%s: merge %d ('%s' '%s') contains a space, which a byte-level vocabulary cannot have",
                               path, r, esc(a, e1, sizeof e1), esc(b, e2, sizeof e2));
                goto fail;
            }
            if (!(v.merges[r] = malloc(la + lb + 2))) goto oom;
            memcpy(v.merges[r], a, la);
            v.merges[r][la] = ' ';
            memcpy(v.merges[r] + la + 1, b, lb + 1);
            v.n_merges = r + 1;
        } else if (!scored[ic]) {
            /* SPM merges by score: the first (lowest-rank) merge making a piece ranks it */
            scored[ic] = true;
            v.scores[ic] = -(float)r;
        }
        r++;
    }
    free(scored);

    /* ----- kind-specific settings ----- */
    const char *unk = jstr(model, "unk_token");
    v.unk_id = unk ? tokmap_get(&map, &v, unk) : -1;
    if (unk && v.unk_id < 0) {
        char e[80];
        sq_log(SQ_LOG_WARN, "%s: unk_token '%s' is not in the vocabulary", path, esc(unk, e, sizeof e));
    }
    if (v.unk_id >= 0) v.types[v.unk_id] = SQ_TOKEN_UNKNOWN;
    if (byte_level) {
        v.kind = SQ_VOCAB_BPE;
        if ((st = detect_pretok(pre, path, &v.pre)) != SQ_OK) goto fail;
        bool ignore_merges = jbool(model, "ignore_merges", false);
        if (ignore_merges != (v.pre == SQ_PRE_LLAMA3))
            sq_log(SQ_LOG_WARN, "%s: ignore_merges = %s, but squish ties it to the llama-bpe pre-tokenizer (%s here)",
                   path, ignore_merges ? "true" : "false", sq_pretok_name(v.pre));
        const char *nt = jstr(norm, "type");
        if (nt)
            sq_log(SQ_LOG_WARN, "%s: the %s normalizer is not applied (text that it would change, e.g. not in NFC, "
                   "tokenizes differently)", path, nt);
        v.byte_fallback = false;
    } else {
        v.kind = SQ_VOCAB_SPM;
        v.pre = SQ_PRE_DEFAULT;
        v.byte_fallback = jbool(model, "byte_fallback", false);
        v.add_dummy_prefix = prepend;
        v.remove_extra_whitespaces = false;
        for (int32_t i = 0; i < v.n_tokens; i++)
            if (v.types[i] == SQ_TOKEN_NORMAL && is_byte_piece(v.tokens[i]) && v.byte_fallback)
                v.types[i] = SQ_TOKEN_BYTE;
        if (v.unk_id < 0) v.unk_id = tokmap_get(&map, &v, "<unk>");
    }

    /* ----- special tokens: the post-processor template, then tokenizer_config.json ----- */
    const char *tbos, *teos;
    template_specials(jget(root, "post_processor"), &tbos, &teos);
    v.bos_id = v.eos_id = v.pad_id = -1;
    if (tbos) v.bos_id = tokmap_get(&map, &v, tbos);
    if (teos) v.eos_id = tokmap_get(&map, &v, teos);
    v.add_bos = v.bos_id >= 0;
    v.add_eos = v.eos_id >= 0;
    const char *cb = config_token(cfg, "bos_token"), *ce = config_token(cfg, "eos_token"),
               *cp = config_token(cfg, "pad_token");
    if (v.bos_id < 0 && cb) v.bos_id = tokmap_get(&map, &v, cb);
    if (v.eos_id < 0 && ce) v.eos_id = tokmap_get(&map, &v, ce);
    if (cp) v.pad_id = tokmap_get(&map, &v, cp);
    if (!cfg || !jget(cfg, "bos_token")) {
        static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", NULL};
        if (v.bos_id < 0) v.bos_id = first_known(&map, &v, bos_names);
    }
    if (!cfg || !jget(cfg, "eos_token")) {
        static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", NULL};
        if (v.eos_id < 0) v.eos_id = first_known(&map, &v, eos_names);
    }
    if (cfg && (st = apply_config_flags(&v, cfg, config_path)) != SQ_OK) goto fail;
    if ((st = sq_vocab_validate(&v, path)) != SQ_OK) goto fail;

    free(map.slots);
    free(mbuf);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    *out = v;
    return SQ_OK;
oom:
    st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
fail:
    free(map.slots);
    free(mbuf);
    sq_vocab_free(&v);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return st;
}
