/* test_tokenizer.c - tokenizer readers (core/vocab_io.c), the SPM and byte-level BPE
 * encoders/decoders (runtime/tokenizer.c) and the Unicode helpers (runtime/unicode.c).
 *
 * References: tests/fixtures/spm_goldens.txt holds ids from google/sentencepiece (and, for
 * llama2.c's tok512.bin, from an independent Python re-implementation of llama2.c's
 * encode), written by scripts/gen_tokenizer_goldens.py; REFERENCE_OUTPUTS.json and
 * PEERS.md figures are checked directly. Byte-level BPE has no shared reference, so its
 * tests use small tokenizer.json files built here, with the expected ids derived by hand
 * in the comments. Tests that need ../shared print "skip" when it is absent.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <time.h>

#include "../core/checkpoint.h"
#include "../runtime/tokenizer.h"
#include "../runtime/tokenizer_internal.h"
#include "../runtime/unicode.h"
#include "test.h"

/* ===== Helpers ===== */

static const char *fixture(const char *name) {
    static char buf[4][512];
    static int k;
    static const char *const dirs[] = {"tests/fixtures", "../tests/fixtures", "../../tests/fixtures", NULL};
    char *b = buf[k++ & 3];
    for (int i = 0; dirs[i]; i++) {
        snprintf(b, sizeof buf[0], "%s/%s", dirs[i], name);
        if (access(b, R_OK) == 0) return b;
    }
    /* run from elsewhere: <repo>/<build>/tests/test_tokenizer -> <repo>/tests/fixtures */
    char exe[400];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) return NULL;
        *slash = '\0';
    }
    snprintf(b, sizeof buf[0], "%s/tests/fixtures/%s", exe, name);
    return access(b, R_OK) == 0 ? b : NULL;
}

static char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", sq_test_tmpdir(), name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static void write_text(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

/* Reads up to max bytes of a file (max 0: all). NULL if unreadable. */
static char *read_bytes(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t n = (size_t)sz;
    if (max && n > max) n = max;
    char *b = malloc(n + 1);
    if (fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return NULL;
    }
    b[n] = '\0';
    fclose(f);
    *len = n;
    return b;
}

static size_t hex_decode(const char *hex, char *out) {
    size_t n = 0;
    for (; hex[0] && hex[1] && hex[0] != ' ' && hex[0] != '\n'; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

/* Compares two id lists; prints the first difference. */
static int same_ids(const int32_t *got, int32_t n, const int32_t *exp, int32_t m, const char *what) {
    int32_t k = 0;
    while (k < n && k < m && got[k] == exp[k]) k++;
    if (k == n && k == m) return 1;
    printf("  %s: %d ids, expected %d; first difference at %d: got %d, expected %d\n", what, n, m, k,
           k < n ? got[k] : -1, k < m ? exp[k] : -1);
    return 0;
}

static sq_status encode(const sq_tokenizer *t, const char *s, size_t n, bool bos, int32_t **ids, int32_t *nids) {
    return sq_tokenizer_encode(t, s, n, bos, false, ids, nids);
}

/* Whether decodes_to also compares streaming decode_piece output. sentencepiece's
 * whole-sequence rule for remove_extra_whitespaces models (strip "▁" from every piece
 * until text appears) has no streaming equivalent, so the nobf goldens turn it off. */
static bool check_streaming = true;

/* decode(ids) equals the bytes exp[0..n), and streaming decode_piece gives the same. */
static int decodes_to(const sq_tokenizer *t, const int32_t *ids, int32_t n, const char *exp, size_t len,
                      const char *what) {
    char *s = NULL;
    size_t sl = 0;
    int ok = 1;
    if (sq_tokenizer_decode(t, ids, n, &s, &sl) != SQ_OK) {
        printf("  %s: decode failed: %s\n", what, sq_last_error());
        return 0;
    }
    if (sl != len || memcmp(s, exp, len) != 0) {
        size_t k = 0;
        while (k < sl && k < len && s[k] == exp[k]) k++;
        printf("  %s: decode gives %zu bytes, expected %zu; first difference at byte %zu\n", what, sl, len, k);
        ok = 0;
    }
    /* streaming: concatenated pieces equal the whole decode */
    char piece[SQ_TOKEN_MAX_BYTES];
    size_t o = 0;
    bool same = true;
    for (int32_t i = 0; i < n && same; i++) {
        int r = sq_tokenizer_decode_piece(t, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
        same = r >= 0 && o + (size_t)r <= sl && memcmp(s + o, piece, (size_t)r) == 0;
        o += r > 0 ? (size_t)r : 0;
    }
    if (check_streaming && (!same || o != sl)) {
        printf("  %s: streaming decode_piece differs from decode\n", what);
        ok = 0;
    }
    free(s);
    return ok;
}

/* A shared tokenizer: "gutenberg", "llama2" (tokenizer.model), "llama2c" (tokenizer.bin),
 * "tok512"; or the committed fixture "nobf". Returns 0 if the file is absent. */
static int load_vocab(const char *key, sq_vocab *v) {
    const char *p;
    if (strcmp(key, "nobf") == 0) {
        p = fixture("spm_nobf.model");
        if (!p) return 0;
        return sq_vocab_read_spm(p, v) == SQ_OK ? 1 : -1;
    }
    if (strcmp(key, "gutenberg") == 0 && (p = sq_test_shared_path("models/gutenberg-7m/tokenizer.model")))
        return sq_vocab_read_spm(p, v) == SQ_OK ? 1 : -1;
    if (strcmp(key, "llama2") == 0 && (p = sq_test_shared_path("models/llama2-tokenizer/tokenizer.model")))
        return sq_vocab_read_spm(p, v) == SQ_OK ? 1 : -1;
    if (strcmp(key, "llama2c") == 0 && (p = sq_test_shared_path("models/llama2-tokenizer/tokenizer.bin")))
        return sq_vocab_read_llama2c(p, 32000, v) == SQ_OK ? 1 : -1;
    if (strcmp(key, "tok512") == 0 && (p = sq_test_shared_path("models/stories260K/tok512.bin")))
        return sq_vocab_read_llama2c(p, 512, v) == SQ_OK ? 1 : -1;
    return 0;
}

typedef struct {
    sq_vocab v;
    sq_tokenizer *t;
} tok_pair;

/* 1 loaded, 0 absent (skip), -1 failed (check failed already reported). */
static int open_tok(const char *key, tok_pair *p) {
    memset(p, 0, sizeof *p);
    int r = load_vocab(key, &p->v);
    if (r < 0) printf("  loading %s: %s\n", key, sq_last_error());
    if (r <= 0) return r;
    if (sq_tokenizer_init(&p->t, &p->v) != SQ_OK) {
        printf("  tokenizer %s: %s\n", key, sq_last_error());
        sq_vocab_free(&p->v);
        return -1;
    }
    return 1;
}

static void close_tok(tok_pair *p) {
    sq_tokenizer_free(p->t);
    sq_vocab_free(&p->v);
}

/* ===== Unicode ===== */

SQ_TEST(test_utf8) {
    uint32_t cp;
    SQ_CHECK(sq_utf8_decode("A", 1, &cp) == 1 && cp == 'A');
    SQ_CHECK(sq_utf8_decode("\xC3\xA9", 2, &cp) == 2 && cp == 0xE9);
    SQ_CHECK(sq_utf8_decode("\xE2\x96\x81", 3, &cp) == 3 && cp == 0x2581);
    SQ_CHECK(sq_utf8_decode("\xF0\x9F\x98\x80", 4, &cp) == 4 && cp == 0x1F600);
    /* invalid: stray continuation, overlong, surrogate, > U+10FFFF, truncated, F5 */
    static const char *const bad[] = {"\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                      "\xF5\x80\x80\x80", "\xFF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        SQ_CHECKF(sq_utf8_decode(bad[i], strlen(bad[i]), &cp) == 1 && cp == SQ_UTF8_INVALID, "case %zu", i);
    SQ_CHECK(sq_utf8_decode("\xE2\x96", 2, &cp) == 1 && cp == SQ_UTF8_INVALID);
    SQ_CHECK(sq_utf8_decode("\xE2\x96\x81", 2, &cp) == 1 && cp == SQ_UTF8_INVALID); /* len cuts it */
    char b[4];
    SQ_CHECK(sq_utf8_encode(0x1F600, b) == 4 && memcmp(b, "\xF0\x9F\x98\x80", 4) == 0);
    SQ_CHECK(sq_utf8_encode(0x120, b) == 2 && memcmp(b, "\xC4\xA0", 2) == 0);
    SQ_CHECK(sq_utf8_encode(0xD800, b) == 0 && sq_utf8_encode(0x110000, b) == 0);
    for (uint32_t c = 0; c < 0x110000; c += 7) { /* round trip through both */
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        int n = sq_utf8_encode(c, b);
        uint32_t d;
        if (sq_utf8_decode(b, (size_t)n, &d) != n || d != c) {
            SQ_CHECKF(0, "U+%04X does not round-trip", (unsigned)c);
            break;
        }
    }
}

SQ_TEST(test_unicode_categories) {
    SQ_CHECK(sq_unicode_is_letter('a') && sq_unicode_is_letter(0xE9) && sq_unicode_is_letter(0x416)); /* é Ж */
    SQ_CHECK(sq_unicode_is_letter(0x4E2D) && sq_unicode_is_letter(0xD55C) && sq_unicode_is_letter(0x3042));
    SQ_CHECK(sq_unicode_is_letter(0x2C6)); /* ˆ modifier letter (Lm) */
    SQ_CHECK(!sq_unicode_is_letter(0x301) && !sq_unicode_is_letter('1') && !sq_unicode_is_letter(0x1F600));
    SQ_CHECK(sq_unicode_is_number('7') && sq_unicode_is_number(0x663) && sq_unicode_is_number(0xBD)); /* ٣ ½ */
    SQ_CHECK(sq_unicode_is_number(0x216B) && sq_unicode_is_number(0xFF19)); /* Ⅻ (Nl), full-width 9 */
    SQ_CHECK(!sq_unicode_is_number('x') && !sq_unicode_is_number(0x2581));
    SQ_CHECK(sq_unicode_is_space(' ') && sq_unicode_is_space('\t') && sq_unicode_is_space('\n'));
    SQ_CHECK(sq_unicode_is_space('\r') && sq_unicode_is_space(0xA0) && sq_unicode_is_space(0x3000));
    SQ_CHECK(sq_unicode_is_space(0x85) && sq_unicode_is_space(0x2028));
    SQ_CHECK(!sq_unicode_is_space(0x200B) && !sq_unicode_is_space(0x1C) && !sq_unicode_is_space('x'));
    SQ_CHECK(sq_unicode_flags(SQ_UTF8_INVALID) == 0);
    SQ_CHECK(strlen(sq_unicode_version()) >= 4);
}

/* ===== Readers on the shared models ===== */

SQ_TEST(test_read_spm_gutenberg) {
    const char *p = sq_test_shared_path("models/gutenberg-7m/tokenizer.model");
    if (!p) SQ_SKIP("shared gutenberg-7m absent");
    sq_vocab v;
    SQ_CHECK_OK(sq_vocab_read_spm(p, &v));
    SQ_CHECK(v.kind == SQ_VOCAB_SPM && v.n_tokens == 4096);
    SQ_CHECK(v.unk_id == 0 && v.bos_id == 1 && v.eos_id == 2 && v.pad_id == -1);
    SQ_CHECK(v.byte_fallback && v.add_dummy_prefix && !v.remove_extra_whitespaces && v.add_bos && !v.add_eos);
    SQ_CHECK(strcmp(v.tokens[1], "<s>") == 0 && v.types[1] == SQ_TOKEN_CONTROL && v.types[0] == SQ_TOKEN_UNKNOWN);
    SQ_CHECK(strcmp(v.tokens[3], "<0x00>") == 0 && v.types[3] == SQ_TOKEN_BYTE && v.types[258] == SQ_TOKEN_BYTE);
    SQ_CHECK_OK(sq_vocab_validate(&v, "gutenberg"));
    const char *cfg = sq_test_shared_path("models/gutenberg-7m/tokenizer_config.json");
    if (cfg) {
        v.add_bos = false;
        v.add_eos = true;
        SQ_CHECK_OK(sq_vocab_apply_tokenizer_config(&v, cfg));
        SQ_CHECK(v.add_bos && !v.add_eos); /* add_bos_token true, add_eos_token false */
    }
    sq_vocab_free(&v);
}

SQ_TEST(test_read_llama2c_matches_model) {
    sq_vocab a, b;
    int ra = load_vocab("llama2", &a);
    if (ra == 0) SQ_SKIP("shared llama2-tokenizer absent");
    int rb = load_vocab("llama2c", &b);
    SQ_CHECK(ra == 1 && rb == 1);
    if (ra != 1 || rb != 1) return;
    /* tokenizer.bin converted back to SentencePiece form is the tokenizer.model vocabulary */
    SQ_CHECK(a.n_tokens == b.n_tokens);
    int32_t diff_tok = 0, diff_score = 0, diff_type = 0;
    for (int32_t i = 0; i < a.n_tokens && i < b.n_tokens; i++) {
        diff_tok += strcmp(a.tokens[i], b.tokens[i]) != 0;
        diff_score += a.scores[i] != b.scores[i];
        diff_type += a.types[i] != b.types[i];
    }
    SQ_CHECKF(diff_tok == 0 && diff_score == 0 && diff_type == 0, "%d pieces, %d scores, %d types differ", diff_tok,
              diff_score, diff_type);
    SQ_CHECK(b.bos_id == 1 && b.eos_id == 2 && b.unk_id == 0 && b.add_bos && b.add_dummy_prefix && b.byte_fallback);
    sq_vocab_free(&a);
    sq_vocab_free(&b);
}

/* ===== SentencePiece goldens (tests/fixtures/spm_goldens.txt) ===== */

/* Runs every case of the fixture for `model` on tokenizer t (and alt, which must give
 * the same ids, when non-NULL). Checks ids, decode against sentencepiece's decode, and
 * for whole-file cases decode(encode(text)) == text. */
static void run_goldens(const char *model, const sq_tokenizer *t, const sq_tokenizer *alt, bool roundtrip_all) {
    const char *fx = fixture("spm_goldens.txt");
    SQ_CHECK(fx != NULL);
    if (!fx) return;
    FILE *f = fopen(fx, "r");
    char *line = NULL;
    size_t cap = 0;
    char name[128] = "";
    char *text = malloc(1 << 20);
    size_t tlen = 0;
    bool have_text = false;
    int32_t *gold = malloc(sizeof(int32_t) << 20);
    int32_t ngold = 0;
    int cases = 0, failures = 0;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "text ", 5) == 0) {
            char *sp = strchr(line + 5, ' ');
            snprintf(name, sizeof name, "%.*s", (int)(sp ? sp - line - 5 : 0), line + 5);
            tlen = sp ? hex_decode(sp + 1, text) : 0;
            have_text = true;
        } else if (strncmp(line, "file ", 5) == 0) {
            char rel[256];
            size_t nbytes = 0;
            sscanf(line + 5, "%127s %255s %zu", name, rel, &nbytes);
            size_t n = 0;
            const char *p = sq_test_shared_path(rel);
            char *b = p ? read_bytes(p, nbytes, &n) : NULL;
            have_text = b && n == nbytes;
            if (have_text) memcpy(text, b, n);
            tlen = n;
            free(b);
            if (!p) printf("  (case %s skipped: shared %s absent)\n", name, rel);
        } else if (strncmp(line, "ids ", 4) == 0 && have_text) {
            char m[32];
            int used = 0;
            if (sscanf(line + 4, "%31s %d%n", m, &ngold, &used) != 2) continue;
            if (strcmp(m, model) != 0) continue;
            const char *q = line + 4 + used;
            for (int32_t i = 0; i < ngold; i++) {
                int k = 0;
                sscanf(q, "%d%n", &gold[i], &k);
                q += k;
            }
            cases++;
            int32_t *ids = NULL, n = 0;
            char what[192];
            snprintf(what, sizeof what, "%s/%s", model, name);
            SQ_CHECK_OK(encode(t, text, tlen, false, &ids, &n));
            if (!same_ids(ids, n, gold, ngold, what)) failures++;
            if (alt) {
                int32_t *ids2 = NULL, n2 = 0;
                snprintf(what, sizeof what, "%s/%s via llama2.c tokenizer.bin", model, name);
                SQ_CHECK_OK(encode(alt, text, tlen, false, &ids2, &n2));
                if (!same_ids(ids2, n2, gold, ngold, what)) failures++;
                free(ids2);
            }
            if (roundtrip_all) {
                snprintf(what, sizeof what, "%s/%s round trip", model, name);
                if (!decodes_to(t, ids, n, text, tlen, what)) failures++;
            }
            free(ids);
        } else if (strncmp(line, "dec ", 4) == 0 && have_text) {
            char m[32];
            int used = 0;
            if (sscanf(line + 4, "%31s%n", m, &used) != 1 || strcmp(m, model) != 0) continue;
            char *exp = malloc(strlen(line) / 2 + 1);
            const char *h = line + 4 + used;
            while (*h == ' ') h++;
            size_t elen = hex_decode(h, exp);
            char what[192];
            snprintf(what, sizeof what, "%s/%s decode vs sentencepiece", model, name);
            if (!decodes_to(t, gold, ngold, exp, elen, what)) failures++;
            /* with BOS in front the text is the same (the dummy-prefix space goes too) */
            int32_t *wb = malloc(((size_t)ngold + 1) * sizeof *wb);
            wb[0] = 1;
            memcpy(wb + 1, gold, (size_t)ngold * sizeof *wb);
            snprintf(what, sizeof what, "%s/%s decode after BOS", model, name);
            if (!decodes_to(t, wb, ngold + 1, exp, elen, what)) failures++;
            if (strncmp(name, "gutenberg_eval", 14) == 0) {
                snprintf(what, sizeof what, "%s/%s round trip", model, name);
                if (!decodes_to(t, gold, ngold, text, tlen, what)) failures++;
            }
            free(wb);
            free(exp);
        }
    }
    SQ_CHECKF(failures == 0, "%d of %d %s cases failed", failures, cases, model);
    SQ_CHECKF(cases >= 30, "only %d %s cases in the fixture", cases, model);
    free(line);
    free(text);
    free(gold);
    fclose(f);
}

SQ_TEST(test_spm_gutenberg_prompt) {
    tok_pair g;
    int r = open_tok("gutenberg", &g);
    if (r == 0) SQ_SKIP("shared gutenberg-7m absent");
    SQ_CHECK(r == 1);
    if (r != 1) return;
    /* models/gutenberg-7m/REFERENCE_OUTPUTS.json prompt_ids */
    static const int32_t exp[] = {1, 3559, 680, 261, 584};
    int32_t *ids, n;
    SQ_CHECK_OK(encode(g.t, "Once upon a time", 16, true, &ids, &n));
    SQ_CHECK(same_ids(ids, n, exp, 5, "prompt"));
    SQ_CHECK(decodes_to(g.t, ids, n, "Once upon a time", 16, "prompt"));
    free(ids);
    SQ_CHECK(sq_tokenizer_find(g.t, "<s>") == 1 && sq_tokenizer_find(g.t, "no such piece") == -1);
    char buf[8];
    SQ_CHECK(sq_tokenizer_decode_piece(g.t, -1, 4096, buf, sizeof buf) == -1);
    SQ_CHECK(sq_tokenizer_decode_piece(g.t, -1, 1, buf, sizeof buf) == 0); /* BOS decodes to nothing */
    SQ_CHECK(sq_tokenizer_decode_piece(g.t, -1, 3 + 'A', buf, sizeof buf) == 1 && buf[0] == 'A');
    int32_t bad = 5000;
    char *s;
    size_t sl;
    SQ_CHECK(sq_tokenizer_decode(g.t, &bad, 1, &s, &sl) == SQ_ERR_ARG);
    close_tok(&g);
}

SQ_TEST(test_spm_goldens_gutenberg) {
    tok_pair g;
    int r = open_tok("gutenberg", &g);
    if (r == 0) SQ_SKIP("shared gutenberg-7m absent");
    SQ_CHECK(r == 1);
    if (r == 1) run_goldens("gutenberg", g.t, NULL, false);
    if (r == 1) close_tok(&g);
}

SQ_TEST(test_spm_goldens_llama2) {
    tok_pair a, b;
    int r = open_tok("llama2", &a);
    if (r == 0) SQ_SKIP("shared llama2-tokenizer absent");
    int rb = open_tok("llama2c", &b);
    SQ_CHECK(r == 1 && rb == 1);
    if (r == 1 && rb == 1) run_goldens("llama2", a.t, b.t, false);
    if (r == 1) close_tok(&a);
    if (rb == 1) close_tok(&b);
}

SQ_TEST(test_spm_goldens_nobf) {
    /* committed fixture: no byte fallback, remove_extra_whitespaces, user-defined pieces */
    tok_pair t;
    int r = open_tok("nobf", &t);
    SQ_CHECK(r == 1);
    if (r != 1) return;
    SQ_CHECK(!t.v.byte_fallback && t.v.remove_extra_whitespaces && t.v.add_dummy_prefix);
    int32_t tag = sq_tokenizer_find(t.t, "<tag>");
    SQ_CHECK(tag >= 0 && t.v.types[tag] == SQ_TOKEN_USER_DEFINED);
    check_streaming = false;
    run_goldens("nobf", t.t, NULL, false);
    check_streaming = true;
    close_tok(&t);
}

SQ_TEST(test_spm_goldens_tok512) {
    tok_pair t;
    int r = open_tok("tok512", &t);
    if (r == 0) SQ_SKIP("shared stories260K absent");
    SQ_CHECK(r == 1);
    if (r == 1) run_goldens("tok512", t.t, NULL, true);
    if (r == 1) close_tok(&t);
}

/* ===== stories260K tok512.bin on TinyStories ===== */

SQ_TEST(test_tok512_tinystories_prefix) {
    const char *p = sq_test_shared_path("data/tinystories/tinystories_val.txt");
    tok_pair t;
    int r = p ? open_tok("tok512", &t) : 0;
    if (r == 0) SQ_SKIP("shared stories260K or tinystories absent");
    SQ_CHECK(r == 1);
    if (r != 1) return;
    size_t n = 0;
    char *text = read_bytes(p, 64 << 10, &n);
    /* the first 4000 characters (code points), as REFERENCE_OUTPUTS.json says */
    size_t bytes = 0, chars = 0;
    while (bytes < n && chars < 4000) {
        uint32_t cp;
        bytes += (size_t)sq_utf8_decode(text + bytes, n - bytes, &cp);
        chars++;
    }
    /* stories260K REFERENCE_OUTPUTS.json tinystories_val_prefix.first_tokens (BOS first) */
    static const int32_t exp[] = {1, 301, 427, 309, 426, 301, 427, 309, 394, 265, 262, 415, 271, 422, 280, 295};
    int32_t *ids, nids;
    SQ_CHECK_OK(encode(t.t, text, bytes, true, &ids, &nids));
    SQ_CHECK(nids >= 512); /* the reference truncates at 512 tokens incl. BOS */
    SQ_CHECK(same_ids(ids, 16, exp, 16, "tinystories_val prefix"));
    SQ_CHECK(decodes_to(t.t, ids, nids, text, bytes, "tinystories_val round trip"));
    free(ids);
    free(text);
    close_tok(&t);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

SQ_TEST(test_tok512_tinystories_eval_count) {
    const char *p = sq_test_shared_path("data/tinystories/eval.txt");
    tok_pair t;
    int r = p ? open_tok("tok512", &t) : 0;
    if (r == 0) SQ_SKIP("shared stories260K or tinystories absent");
    SQ_CHECK(r == 1);
    if (r != 1) return;
    size_t n = 0;
    char *text = read_bytes(p, 0, &n);
    int32_t *ids, nids;
    double t0 = now_s();
    SQ_CHECK_OK(encode(t.t, text, n, true, &ids, &nids));
    double dt = now_s() - t0;
    /* docs/PEERS.md: "the text is 314,319 tokens with tok512", from llama-perplexity, which
     * tokenizes the whole file in one call with BOS (add_special) and the dummy prefix
     * once at the start. The count INCLUDES that BOS: 314,318 text tokens + 1. */
    SQ_CHECKF(nids == 314319, "%d tokens", nids);
    SQ_CHECK(ids[0] == 1);
    printf("  tinystories eval.txt: %zu bytes -> %d tokens (incl. BOS) in %.3f s\n", n, nids, dt);
    SQ_CHECK(decodes_to(t.t, ids, nids, text, n, "tinystories eval round trip"));
    free(ids);
    free(text);
    close_tok(&t);
}

SQ_TEST(test_spm_whole_eval_texts) {
    if (sq_test_quick()) SQ_SKIP("quick run (whole-text encodes done by the normal run)");
    const char *p = sq_test_shared_path("data/gutenberg/eval.txt");
    if (!p) SQ_SKIP("shared gutenberg data absent");
    size_t n = 0;
    char *text = read_bytes(p, 0, &n);
    static const char *const keys[] = {"gutenberg", "llama2"};
    for (int k = 0; k < 2; k++) {
        tok_pair t;
        int r = open_tok(keys[k], &t);
        if (r != 1) continue;
        int32_t *ids, nids;
        double t0 = now_s();
        SQ_CHECK_OK(encode(t.t, text, n, true, &ids, &nids));
        double dt = now_s() - t0;
        printf("  %s: gutenberg eval.txt %zu bytes -> %d tokens in %.3f s\n", keys[k], n, nids, dt);
        SQ_CHECKF(dt < 2.0, "encoding took %.2f s", dt);
        SQ_CHECK(decodes_to(t.t, ids, nids, text, n, "gutenberg eval round trip"));
        free(ids);
        close_tok(&t);
    }
    free(text);
}

SQ_TEST(test_spm_chunking_exact) {
    /* spm_encode cuts the text before "▁" where no piece can span the cut; the ids must
     * equal one priority queue over the whole text (chunking off) */
    if (sq_test_quick()) SQ_SKIP("quick run");
    static const char *const keys[] = {"gutenberg", "llama2", "tok512", "nobf"};
    static const char *const texts[] = {"data/gutenberg/eval.txt", "data/wikitext-2-raw/wiki.test.raw",
                                        "data/tinystories/eval.txt"};
    int compared = 0;
    for (int k = 0; k < 4; k++) {
        tok_pair t;
        if (open_tok(keys[k], &t) != 1) continue;
        for (int x = 0; x < 3; x++) {
            const char *p = sq_test_shared_path(texts[x]);
            size_t n = 0;
            char *text = p ? read_bytes(p, 300000, &n) : NULL;
            if (!text) continue;
            int32_t *a, na, *b, nb;
            SQ_CHECK_OK(encode(t.t, text, n, true, &a, &na));
            sq_tokenizer_set_chunking(t.t, false);
            SQ_CHECK_OK(encode(t.t, text, n, true, &b, &nb));
            sq_tokenizer_set_chunking(t.t, true);
            char what[128];
            snprintf(what, sizeof what, "%s on %s", keys[k], texts[x]);
            SQ_CHECK(same_ids(a, na, b, nb, what));
            compared++;
            free(a);
            free(b);
            free(text);
        }
        close_tok(&t);
    }
    if (compared == 0) SQ_SKIP("shared texts absent");
}

/* ===== Synthetic SentencePiece vocabularies (no shared files) ===== */

/* <unk> <s> </s>, the 256 byte pieces, then the given pieces with their scores. */
static void synth_spm(sq_vocab *v, const char *const *pieces, const float *scores, int n, bool byte_fallback) {
    memset(v, 0, sizeof *v);
    int32_t total = 3 + 256 + n;
    v->n_tokens = total;
    v->tokens = calloc((size_t)total, sizeof(char *));
    v->scores = calloc((size_t)total, sizeof(float));
    v->types = calloc((size_t)total, sizeof(int32_t));
    static const char *const sp[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        v->tokens[i] = strdup(sp[i]);
        v->types[i] = i == 0 ? SQ_TOKEN_UNKNOWN : SQ_TOKEN_CONTROL;
    }
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        v->tokens[3 + b] = strdup(s);
        v->types[3 + b] = SQ_TOKEN_BYTE;
    }
    for (int i = 0; i < n; i++) {
        v->tokens[259 + i] = strdup(pieces[i]);
        v->scores[259 + i] = scores[i];
        v->types[259 + i] = SQ_TOKEN_NORMAL;
    }
    v->kind = SQ_VOCAB_SPM;
    v->unk_id = 0;
    v->bos_id = 1;
    v->eos_id = 2;
    v->pad_id = -1;
    v->add_bos = true;
    v->add_dummy_prefix = true;
    v->byte_fallback = byte_fallback;
}

#define SP "\xE2\x96\x81"
/* ids 259.. */
static const char *const SYN[] = {SP, "a", "b", "c", "aa", "ab", "bc", SP "a", SP "b", "<t>", SP "x"};
static const float SYN_SC[] = {-1, -2, -3, -4, -10, -20, -5, -30, -30, -1, -1};
enum { S_SP = 259, S_A, S_B, S_C, S_AA, S_AB, S_BC, S_SPA, S_SPB, S_TAG, S_SPX };

static void expect_enc(const sq_tokenizer *t, const char *text, size_t len, const int32_t *exp, int32_t n,
                       const char *what) {
    int32_t *ids = NULL, nids = 0;
    SQ_CHECK_OK(encode(t, text, len, false, &ids, &nids));
    SQ_CHECKF(same_ids(ids, nids, exp, n, what), "%s", what);
    free(ids);
}

SQ_TEST(test_spm_merge_order) {
    sq_vocab v;
    synth_spm(&v, SYN, SYN_SC, 11, true);
    sq_tokenizer *t;
    SQ_CHECK_OK(sq_tokenizer_init(&t, &v));
    /* "aaa" -> "▁aaa": pairs (▁,a) -30, (a,a)@1 -10, (a,a)@2 -10: the tie goes to the
     * leftmost, giving [▁, aa, a]; "▁aa" and "aaa" are not pieces, so that is final. */
    static const int32_t e1[] = {S_SP, S_AA, S_A};
    expect_enc(t, "aaa", 3, e1, 3, "tie to the left");
    /* "abc" -> "▁abc": (b,c) -5 beats (a,b) -20 and (▁,a) -30: [▁, a, bc], then (▁,a): [▁a, bc].
     * Merging by rank/leftmost instead would give [▁a, b, c] or [▁, ab, c]. */
    static const int32_t e2[] = {S_SPA, S_BC};
    expect_enc(t, "abc", 3, e2, 2, "highest score first");
    /* byte fallback: 'z' is no piece -> <0x7A> = 3 + 0x7A; invalid bytes likewise */
    static const int32_t e3[] = {S_SPA, 3 + 'z', 3 + 0xFF, S_B};
    expect_enc(t, "az\xff" "b", 4, e3, 4, "byte fallback");
    /* spaces: "a b" -> "▁a▁b"; " a" -> "▁▁a" (no removal of extra spaces) */
    static const int32_t e4[] = {S_SPA, S_SPB};
    expect_enc(t, "a b", 3, e4, 2, "spaces");
    static const int32_t e5[] = {S_SP, S_SPA};
    expect_enc(t, " a", 2, e5, 2, "leading space");
    expect_enc(t, "", 0, NULL, 0, "empty");
    /* BOS/EOS */
    int32_t *ids, n;
    SQ_CHECK_OK(sq_tokenizer_encode(t, "a", 1, true, true, &ids, &n));
    static const int32_t e6[] = {1, S_SPA, 2};
    SQ_CHECK(same_ids(ids, n, e6, 3, "bos/eos"));
    SQ_CHECK(decodes_to(t, ids, n, "a", 1, "bos/eos decode"));
    free(ids);
    SQ_CHECK_OK(sq_tokenizer_encode(t, "", 0, true, false, &ids, &n));
    SQ_CHECK(n == 1 && ids[0] == 1);
    free(ids);
    sq_tokenizer_free(t);

    /* remove_extra_whitespaces: "  a   b  " -> "▁a▁b" */
    v.remove_extra_whitespaces = true;
    SQ_CHECK_OK(sq_tokenizer_init(&t, &v));
    expect_enc(t, "  a   b  ", 9, e4, 2, "remove extra whitespace");
    expect_enc(t, "   ", 3, NULL, 0, "only spaces");
    sq_tokenizer_free(t);
    v.remove_extra_whitespaces = false;

    /* user-defined "<t>" is atomic: "x<t>" -> ▁x, <t>; without it '<' 't' '>' are bytes */
    v.types[S_TAG] = SQ_TOKEN_USER_DEFINED;
    SQ_CHECK_OK(sq_tokenizer_init(&t, &v));
    static const int32_t e7[] = {S_SPX, S_TAG, S_A};
    expect_enc(t, "x<t>a", 5, e7, 3, "user-defined piece");
    sq_tokenizer_free(t);

    /* UNUSED pieces are merged through, then split back (sentencepiece resegment):
     * with "ab" unused, "ab" -> "▁ab": (▁,a) -30 vs (a,b) -20: [▁, ab] -> ab is unused ->
     * [▁, a, b]. */
    v.types[S_TAG] = SQ_TOKEN_NORMAL;
    v.types[S_AB] = SQ_TOKEN_UNUSED;
    SQ_CHECK_OK(sq_tokenizer_init(&t, &v));
    static const int32_t e8[] = {S_SP, S_A, S_B};
    expect_enc(t, "ab", 2, e8, 3, "unused piece resegmented");
    sq_tokenizer_free(t);
    v.types[S_AB] = SQ_TOKEN_NORMAL;

    /* no byte fallback: unknown characters become <unk>, a run of them one <unk> */
    v.byte_fallback = false;
    SQ_CHECK_OK(sq_tokenizer_init(&t, &v));
    static const int32_t e9[] = {S_SPA, 0, S_B};
    expect_enc(t, "a\xE2\x82\xAC\xE2\x82\xACz" "b", 9, e9, 3, "unk run");
    sq_tokenizer_free(t);
    sq_vocab_free(&v);
}

/* Deterministic pseudo-random bytes. */
static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

SQ_TEST(test_spm_invalid_utf8_roundtrip) {
    sq_vocab v;
    synth_spm(&v, SYN, SYN_SC, 11, true);
    sq_tokenizer *t;
    SQ_CHECK_OK(sq_tokenizer_init(&t, &v));
    static const char *const cases[] = {"\xff\xfe", "abc\x80" "def", "\xe2\x96", "\xc0\xaf", "\xed\xa0\x80 x",
                                        "a \xf0\x9f\x98", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids, n;
        SQ_CHECK_OK(encode(t, cases[i], strlen(cases[i]), true, &ids, &n));
        SQ_CHECKF(decodes_to(t, ids, n, cases[i], strlen(cases[i]), "invalid utf-8"), "case %zu", i);
        free(ids);
    }
    /* random byte strings round-trip (0xE2 excluded: "▁" in the input decodes as ' ') */
    uint32_t seed = 12345;
    char buf[300];
    int bad = 0;
    for (int r = 0; r < 300; r++) {
        size_t n = lcg(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint8_t b = (uint8_t)lcg(&seed);
            buf[i] = (char)(b == 0xE2 ? 'a' : b);
        }
        int32_t *ids, nids;
        if (encode(t, buf, n, r & 1, &ids, &nids) != SQ_OK) {
            bad++;
            continue;
        }
        bad += !decodes_to(t, ids, nids, buf, n, "random bytes");
        free(ids);
    }
    SQ_CHECKF(bad == 0, "%d random strings failed", bad);
    sq_tokenizer_free(t);
    sq_vocab_free(&v);

    tok_pair g;
    if (open_tok("gutenberg", &g) == 1) { /* the real model too */
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int32_t *ids, n;
            SQ_CHECK_OK(encode(g.t, cases[i], strlen(cases[i]), true, &ids, &n));
            SQ_CHECKF(decodes_to(g.t, ids, n, cases[i], strlen(cases[i]), "gutenberg invalid utf-8"), "case %zu", i);
            free(ids);
        }
        close_tok(&g);
    }
}

/* ===== Protobuf builder for synthetic tokenizer.model files ===== */

typedef struct {
    uint8_t b[8192];
    size_t n;
} pbuf;

static void pb_varint(pbuf *p, uint64_t v) {
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        p->b[p->n++] = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
}
static void pb_key(pbuf *p, unsigned field, unsigned wire) { pb_varint(p, (uint64_t)field << 3 | wire); }
static void pb_bytes(pbuf *p, unsigned field, const void *d, size_t n) {
    pb_key(p, field, 2);
    pb_varint(p, n);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void pb_float(pbuf *p, unsigned field, float f) {
    pb_key(p, field, 5);
    memcpy(p->b + p->n, &f, 4);
    p->n += 4;
}
static void pb_int(pbuf *p, unsigned field, int64_t v) {
    pb_key(p, field, 0);
    pb_varint(p, (uint64_t)v);
}

static void pb_piece(pbuf *m, const char *s, size_t n, float score, int type) {
    pbuf e = {.n = 0};
    pb_bytes(&e, 1, s, n);
    pb_float(&e, 2, score);
    pb_int(&e, 3, type);
    pb_bytes(m, 1, e.b, e.n);
}

/* A small valid BPE ModelProto; model_type and normalizer name are parameters. */
static void synth_model(pbuf *m, int model_type, const char *norm_name, bool charsmap) {
    m->n = 0;
    pb_piece(m, "<unk>", 5, 0, 2);
    pb_piece(m, "<s>", 3, 0, 3);
    pb_piece(m, "</s>", 4, 0, 3);
    pb_piece(m, SP, 3, -1, 1);
    pb_piece(m, "a", 1, -2, 1);
    pb_piece(m, SP "a", 4, -3, 1);
    pbuf t = {.n = 0};
    pb_int(&t, 3, model_type);
    pb_int(&t, 4, 6);
    pb_int(&t, 40, 0);
    pb_int(&t, 41, 1);
    pb_int(&t, 42, 2);
    pb_int(&t, 43, -1); /* ten-byte negative varint */
    pb_bytes(m, 2, t.b, t.n);
    pbuf nz = {.n = 0};
    pb_bytes(&nz, 1, norm_name, strlen(norm_name));
    if (charsmap) pb_bytes(&nz, 2, "\x01\x02\x03\x04", 4);
    pb_int(&nz, 3, 1);
    pb_int(&nz, 4, 0);
    pb_bytes(m, 3, nz.b, nz.n);
}

static int warn_count;
static char warn_msg[512];
static void count_warn(sq_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == SQ_LOG_WARN) {
        warn_count++;
        snprintf(warn_msg, sizeof warn_msg, "%s", msg);
    }
}

/* The error message is one line that starts with the path. */
static int one_line_about(const char *path) {
    const char *e = sq_last_error();
    return strncmp(e, path, strlen(path)) == 0 && !strchr(e, '\n');
}

SQ_TEST(test_read_spm_synthetic) {
    pbuf m;
    const char *p = tmp_path("synth.model");
    sq_vocab v;
    synth_model(&m, 2, "identity", false);
    write_bytes(p, m.b, m.n);
    SQ_CHECK_OK(sq_vocab_read_spm(p, &v));
    SQ_CHECK(v.n_tokens == 6 && v.pad_id == -1 && v.add_dummy_prefix && !v.remove_extra_whitespaces &&
             !v.byte_fallback);
    SQ_CHECK(v.scores[5] == -3.0f && v.types[1] == SQ_TOKEN_CONTROL && strcmp(v.tokens[5], SP "a") == 0);
    sq_vocab_free(&v);

    /* an NFKC charsmap is not applied: a warning says so */
    synth_model(&m, 2, "nmt_nfkc", true);
    write_bytes(p, m.b, m.n);
    warn_count = 0;
    sq_log_set(count_warn, NULL);
    SQ_CHECK_OK(sq_vocab_read_spm(p, &v));
    sq_log_set(NULL, NULL);
    SQ_CHECKF(warn_count == 1 && strstr(warn_msg, "NFKC"), "%d warnings: %s", warn_count, warn_msg);
    sq_vocab_free(&v);

    /* UNIGRAM is refused clearly */
    synth_model(&m, 1, "identity", false);
    write_bytes(p, m.b, m.n);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_UNSUPPORTED);
    SQ_CHECKF(strstr(sq_last_error(), "UNIGRAM") && one_line_about(p), "%s", sq_last_error());
}

SQ_TEST(test_read_spm_hostile) {
    const char *p = tmp_path("bad.model");
    sq_vocab v;
    pbuf m;
    /* length running past the end */
    m.n = 0;
    pb_key(&m, 1, 2);
    pb_varint(&m, 1000);
    memcpy(m.b + m.n, "abc", 3);
    m.n += 3;
    write_bytes(p, m.b, m.n);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT && one_line_about(p));
    /* an eleven-byte varint */
    m.n = 0;
    pb_key(&m, 2, 0);
    memset(m.b + m.n, 0xFF, 11);
    m.n += 11;
    write_bytes(p, m.b, m.n);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT && one_line_about(p));
    /* a NUL inside a piece */
    synth_model(&m, 2, "identity", false);
    pbuf m2 = {.n = 0};
    pb_piece(&m2, "a\0b", 3, 0, 1);
    memcpy(m.b + m.n, m2.b, m2.n);
    m.n += m2.n;
    write_bytes(p, m.b, m.n);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "NUL"));
    /* bos_id outside the vocabulary */
    synth_model(&m, 2, "identity", false);
    pbuf t = {.n = 0};
    pb_int(&t, 3, 2);
    pb_int(&t, 41, 99);
    pb_bytes(&m, 2, t.b, t.n);
    write_bytes(p, m.b, m.n);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "bos_id"));
    /* a group wire type, an empty file, a missing file, random junk */
    m.n = 0;
    pb_key(&m, 1, 3);
    write_bytes(p, m.b, m.n);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT);
    write_bytes(p, "", 0);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT && one_line_about(p));
    SQ_CHECK(sq_vocab_read_spm(tmp_path("missing.model"), &v) == SQ_ERR_IO);
    write_text(p, "{\"this is\": \"json\"}");
    SQ_CHECK(sq_vocab_read_spm(p, &v) != SQ_OK && one_line_about(p));
    /* duplicate pieces */
    synth_model(&m, 2, "identity", false);
    pb_piece(&m, "a", 1, 0, 1);
    write_bytes(p, m.b, m.n);
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "repeats"));

    /* every prefix and many corruptions of a real model: an error or a valid vocab, never
     * a crash (AddressSanitizer checks the reads) */
    const char *src = fixture("spm_nobf.model");
    SQ_CHECK(src != NULL);
    if (!src) return;
    size_t n = 0;
    char *orig = read_bytes(src, 0, &n);
    char *buf = malloc(n);
    int ok = 0, err = 0, bad = 0;
    for (size_t cut = 0; cut < n; cut += cut < 400 ? 1 : 13) {
        write_bytes(p, orig, cut);
        if (sq_vocab_read_spm(p, &v) == SQ_OK) {
            ok++;
            bad += sq_vocab_validate(&v, "cut") != SQ_OK;
            sq_vocab_free(&v);
        } else {
            err++;
            bad += !one_line_about(p);
        }
    }
    SQ_CHECKF(bad == 0 && err > ok, "prefixes: %d ok, %d errors, %d bad", ok, err, bad);
    uint32_t seed = 99;
    bad = 0;
    for (int r = 0; r < 400; r++) {
        memcpy(buf, orig, n);
        int flips = 1 + (int)(lcg(&seed) % 4);
        for (int f = 0; f < flips; f++) buf[lcg(&seed) % n] = (char)lcg(&seed);
        write_bytes(p, buf, n);
        if (sq_vocab_read_spm(p, &v) == SQ_OK) {
            sq_tokenizer *tk;
            if (sq_tokenizer_init(&tk, &v) == SQ_OK) {
                int32_t *ids, nids;
                if (encode(tk, "Once upon a time <tag> x", 24, true, &ids, &nids) == SQ_OK) free(ids);
                sq_tokenizer_free(tk);
            }
            sq_vocab_free(&v);
        } else {
            bad += !one_line_about(p);
        }
    }
    SQ_CHECKF(bad == 0, "%d corrupt files gave a badly formed error", bad);
    free(buf);
    free(orig);
}

/* ===== llama2.c tokenizer.bin ===== */

typedef struct {
    uint8_t b[4096];
    size_t n;
} bbuf;

static void bb_u32(bbuf *b, uint32_t v) {
    memcpy(b->b + b->n, &v, 4);
    b->n += 4;
}
static void bb_tok(bbuf *b, float score, const char *s, int32_t len) {
    memcpy(b->b + b->n, &score, 4);
    b->n += 4;
    bb_u32(b, (uint32_t)len);
    size_t copy = len > 0 && len <= 64 ? (size_t)len : 0; /* lengths beyond that are lies */
    memcpy(b->b + b->n, s, copy);
    b->n += copy;
}

static void synth_l2c(bbuf *b) {
    b->n = 0;
    bb_u32(b, 6);
    bb_tok(b, 0, "<unk>", 5);
    bb_tok(b, 0, "\n<s>\n", 5);
    bb_tok(b, 0, "\n</s>\n", 6);
    bb_tok(b, 0, "<0x41>", 6);
    bb_tok(b, -1, " ", 1);
    bb_tok(b, -2, "b", 1);
    bb_tok(b, -3, " b", 2);
}

SQ_TEST(test_read_llama2c_synthetic) {
    const char *p = tmp_path("tok.bin");
    bbuf b;
    sq_vocab v;
    synth_l2c(&b);
    write_bytes(p, b.b, b.n);
    SQ_CHECK_OK(sq_vocab_read_llama2c(p, 7, &v));
    SQ_CHECK(v.n_tokens == 7 && strcmp(v.tokens[1], "<s>") == 0 && strcmp(v.tokens[2], "</s>") == 0);
    SQ_CHECK(strcmp(v.tokens[4], SP) == 0 && strcmp(v.tokens[6], SP "b") == 0 && v.scores[6] == -3.0f);
    SQ_CHECK(v.types[0] == SQ_TOKEN_UNKNOWN && v.types[1] == SQ_TOKEN_CONTROL && v.types[3] == SQ_TOKEN_BYTE &&
             v.types[5] == SQ_TOKEN_NORMAL);
    SQ_CHECK(v.bos_id == 1 && v.eos_id == 2 && v.unk_id == 0 && v.add_bos && v.add_dummy_prefix && v.byte_fallback);
    sq_tokenizer *t;
    SQ_CHECK_OK(sq_tokenizer_init(&t, &v));
    static const int32_t e[] = {6, 3};
    expect_enc(t, "bA", 2, e, 2, "llama2c synthetic"); /* "▁bA": ▁b, then 'A' as <0x41> */
    sq_tokenizer_free(t);
    sq_vocab_free(&v);
    /* fewer tokens than the model asks for, trailing bytes (a warning), bad counts */
    SQ_CHECK(sq_vocab_read_llama2c(p, 8, &v) == SQ_ERR_FORMAT && one_line_about(p));
    warn_count = 0;
    sq_log_set(count_warn, NULL);
    SQ_CHECK_OK(sq_vocab_read_llama2c(p, 5, &v));
    sq_log_set(NULL, NULL);
    SQ_CHECK(warn_count == 1);
    sq_vocab_free(&v);
    SQ_CHECK(sq_vocab_read_llama2c(p, 0, &v) == SQ_ERR_FORMAT);
    SQ_CHECK(sq_vocab_read_llama2c(p, -5, &v) == SQ_ERR_FORMAT);
}

SQ_TEST(test_read_llama2c_hostile) {
    const char *p = tmp_path("bad.bin");
    bbuf b;
    sq_vocab v;
    /* a length past the end */
    synth_l2c(&b);
    b.n -= 1; /* cut the last token's text short */
    write_bytes(p, b.b, b.n);
    SQ_CHECK(sq_vocab_read_llama2c(p, 7, &v) == SQ_ERR_FORMAT);
    SQ_CHECKF(strstr(sq_last_error(), "length") && one_line_about(p), "%s", sq_last_error());
    /* a huge and a negative length */
    b.n = 0;
    bb_u32(&b, 6);
    bb_tok(&b, 0, "<unk>", 5);
    bb_tok(&b, 0, "x", 0x7fffffff);
    write_bytes(p, b.b, b.n);
    SQ_CHECK(sq_vocab_read_llama2c(p, 3, &v) == SQ_ERR_FORMAT && one_line_about(p));
    b.n = 0;
    bb_u32(&b, 6);
    bb_tok(&b, 0, "x", -4);
    write_bytes(p, b.b, b.n);
    SQ_CHECK(sq_vocab_read_llama2c(p, 3, &v) == SQ_ERR_FORMAT && one_line_about(p));
    /* NUL inside a piece; an empty piece; longer than max_token_length; short header */
    b.n = 0;
    bb_u32(&b, 6);
    bb_tok(&b, 0, "<unk>", 5);
    bb_tok(&b, 0, "a\0b", 3);
    bb_tok(&b, 0, "c", 1);
    write_bytes(p, b.b, b.n);
    SQ_CHECK(sq_vocab_read_llama2c(p, 3, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "NUL"));
    b.n = 0;
    bb_u32(&b, 6);
    bb_tok(&b, 0, "<unk>", 5);
    bb_tok(&b, 0, "", 0);
    bb_tok(&b, 0, "c", 1);
    write_bytes(p, b.b, b.n);
    SQ_CHECK(sq_vocab_read_llama2c(p, 3, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "empty"));
    b.n = 0;
    bb_u32(&b, 2);
    bb_tok(&b, 0, "<unk>", 5);
    write_bytes(p, b.b, b.n);
    SQ_CHECK(sq_vocab_read_llama2c(p, 3, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "max_token_length"));
    write_bytes(p, "\x01\x00", 2);
    SQ_CHECK(sq_vocab_read_llama2c(p, 3, &v) == SQ_ERR_FORMAT && one_line_about(p));
    /* every prefix of a valid file fails cleanly */
    synth_l2c(&b);
    int bad = 0;
    for (size_t cut = 0; cut < b.n; cut++) {
        write_bytes(p, b.b, cut);
        if (sq_vocab_read_llama2c(p, 7, &v) == SQ_OK) {
            bad++;
            sq_vocab_free(&v);
        } else {
            bad += !one_line_about(p);
        }
    }
    SQ_CHECK(bad == 0);
}

SQ_TEST(test_tokenizer_config) {
    sq_vocab v;
    synth_spm(&v, SYN, SYN_SC, 11, true);
    const char *p = tmp_path("tokenizer_config.json");
    write_text(p, "{\"add_bos_token\": false, \"add_eos_token\": true, \"bos_token\": \"<s>\"}");
    SQ_CHECK_OK(sq_vocab_apply_tokenizer_config(&v, p));
    SQ_CHECK(!v.add_bos && v.add_eos);
    write_text(p, "{\"add_bos_token\": null}"); /* null and absent keys change nothing */
    SQ_CHECK_OK(sq_vocab_apply_tokenizer_config(&v, p));
    SQ_CHECK(!v.add_bos && v.add_eos);
    SQ_CHECK_OK(sq_vocab_apply_tokenizer_config(&v, tmp_path("no_such_config.json")));
    SQ_CHECK_OK(sq_vocab_apply_tokenizer_config(&v, NULL));
    write_text(p, "{\"add_bos_token\": \"yes\"}");
    SQ_CHECK(sq_vocab_apply_tokenizer_config(&v, p) == SQ_ERR_FORMAT && one_line_about(p));
    write_text(p, "{\"add_bos_token\": tru");
    SQ_CHECK(sq_vocab_apply_tokenizer_config(&v, p) == SQ_ERR_FORMAT && one_line_about(p));
    write_text(p, "[1, 2]");
    SQ_CHECK(sq_vocab_apply_tokenizer_config(&v, p) == SQ_ERR_FORMAT && one_line_about(p));
    sq_vocab_free(&v);
}

/* ===== Byte-level BPE: pre-tokenizer splitters ===== */

/* Splits text with pre and compares against the NULL-terminated expected pieces. */
static void expect_split(sq_pretok pre, const char *text, const char *const *exp) {
    int32_t *ends = NULL, n = 0;
    SQ_CHECK_OK(sq_pretok_split(pre, text, strlen(text), &ends, &n));
    int32_t k = 0, start = 0;
    int ok = 1;
    for (; exp[k]; k++) {
        size_t el = strlen(exp[k]);
        if (k >= n || (size_t)(ends[k] - start) != el || memcmp(text + start, exp[k], el) != 0) {
            ok = 0;
            break;
        }
        start = ends[k];
    }
    if (!ok || k != n) {
        printf("  %s split of \"%s\": got", sq_pretok_name(pre), text);
        start = 0;
        for (int32_t i = 0; i < n; i++) {
            printf(" [%.*s]", (int)(ends[i] - start), text + start);
            start = ends[i];
        }
        printf("\n");
        SQ_CHECKF(0, "split mismatch (%s)", sq_pretok_name(pre));
    }
    free(ends);
}

#define SPLIT(pre, text, ...)                                     \
    do {                                                          \
        static const char *const e_[] = {__VA_ARGS__, NULL};      \
        expect_split(pre, text, e_);                              \
    } while (0)

SQ_TEST(test_pretok_gpt2) {
    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    SPLIT(SQ_PRE_GPT2, "Hello world", "Hello", " world");
    SPLIT(SQ_PRE_GPT2, "I'm can't they'll we've", "I", "'m", " can", "'t", " they", "'ll", " we", "'ve");
    /* case-sensitive: 'S is punctuation then a letter */
    SPLIT(SQ_PRE_GPT2, "IT'S", "IT", "'", "S");
    /* two spaces: the run minus its last space, then " b" */
    SPLIT(SQ_PRE_GPT2, "a  b", "a", " ", " b");
    /* " \n " before y: \s+(?!\S) takes " \n" and leaves " y" */
    SPLIT(SQ_PRE_GPT2, "x \n y", "x", " \n", " y");
    /* a newline pair before a word: "\n" (run minus last), then "\n" alone (\s+) */
    SPLIT(SQ_PRE_GPT2, "a\n\nb", "a", "\n", "\n", "b");
    SPLIT(SQ_PRE_GPT2, "a\r\nb", "a", "\r", "\n", "b");
    SPLIT(SQ_PRE_GPT2, "end  ", "end", "  "); /* trailing whitespace stays one piece */
    SPLIT(SQ_PRE_GPT2, "123456 abc", "123456", " abc"); /* N+ has no length limit */
    SPLIT(SQ_PRE_GPT2, "3.14", "3", ".", "14");
    SPLIT(SQ_PRE_GPT2, "hello!!! world", "hello", "!!!", " world");
    SPLIT(SQ_PRE_GPT2, " !?", " !?");
    SPLIT(SQ_PRE_GPT2, "na\xC3\xAFve caf\xC3\xA9", "na\xC3\xAFve", " caf\xC3\xA9");
    SPLIT(SQ_PRE_GPT2, "\xD9\xA3\xD9\xA4x", "\xD9\xA3\xD9\xA4", "x"); /* Arabic-Indic digits are N */
    SPLIT(SQ_PRE_GPT2, "!hello", "!", "hello");
    SPLIT(SQ_PRE_GPT2, "\tword", "\t", "word"); /* only ' ' attaches to the next word */
    /* a combining accent (Mn) is neither L nor N: "e" then the mark */
    SPLIT(SQ_PRE_GPT2, "e\xCC\x81t", "e", "\xCC\x81", "t");
    SPLIT(SQ_PRE_GPT2, "x\xFFy", "x", "\xFF", "y"); /* a stray byte counts as punctuation */
}

SQ_TEST(test_pretok_smollm) {
    /* Digits(individual_digits) first, then the GPT-2 regex on each fragment alone: the
     * space before "1" cannot join it, so it is a piece of its own */
    SPLIT(SQ_PRE_SMOLLM, "abc 123 d", "abc", " ", "1", "2", "3", " d");
    SPLIT(SQ_PRE_SMOLLM, "x1y", "x", "1", "y");
    SPLIT(SQ_PRE_SMOLLM, "I'm 2", "I", "'m", " ", "2");
    SPLIT(SQ_PRE_SMOLLM, "\xD9\xA3\xD9\xA4", "\xD9\xA3", "\xD9\xA4");
}

SQ_TEST(test_pretok_qwen2_llama3) {
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
     * \s*[\r\n]+|\s+(?!\S)|\s+   (Llama-3: \p{N}{1,3}) */
    SPLIT(SQ_PRE_QWEN2, "I'M HERE'S", "I", "'M", " HERE", "'S"); /* case-insensitive */
    /* " " before a digit: not a letter prefix, not punctuation -> \s+ alone; digits one by one */
    SPLIT(SQ_PRE_QWEN2, "abc 12345", "abc", " ", "1", "2", "3", "4", "5");
    SPLIT(SQ_PRE_LLAMA3, "abc 12345", "abc", " ", "123", "45");
    SPLIT(SQ_PRE_LLAMA3, "1234567", "123", "456", "7");
    SPLIT(SQ_PRE_LLAMA3, "abc123def", "abc", "123", "def");
    SPLIT(SQ_PRE_LLAMA3, "x\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4", "x", "\xD9\xA1\xD9\xA2\xD9\xA3", "\xD9\xA4");
    /* one non-letter char (not CR/LF) joins the word after it */
    SPLIT(SQ_PRE_QWEN2, "!hello", "!hello");
    SPLIT(SQ_PRE_QWEN2, "\tword", "\tword");
    SPLIT(SQ_PRE_QWEN2, "(hi)", "(hi", ")");
    /* \s*[\r\n]+ ends after the run's last newline */
    SPLIT(SQ_PRE_QWEN2, "hi\n\nthere", "hi", "\n\n", "there");
    SPLIT(SQ_PRE_QWEN2, "a  \n\n  b", "a", "  \n\n", " ", " b");
    SPLIT(SQ_PRE_QWEN2, "a\r\nb", "a", "\r\n", "b"); /* CRLF stays together */
    /* punctuation takes the newlines that follow it */
    SPLIT(SQ_PRE_QWEN2, "...\n\nx", "...\n\n", "x");
    SPLIT(SQ_PRE_LLAMA3, "end.\r\n", "end", ".\r\n");
    SPLIT(SQ_PRE_QWEN2, "x  ", "x", "  ");
    SPLIT(SQ_PRE_QWEN2, "x \xF0\x9F\x98\x80\xF0\x9F\x98\x80 y", "x", " \xF0\x9F\x98\x80\xF0\x9F\x98\x80", " y");
    SPLIT(SQ_PRE_QWEN2, "\xD0\x9F\xD1\x80\xD0\xB8 \xD0\xBC\xD0\xB8\xD1\x80", "\xD0\x9F\xD1\x80\xD0\xB8",
          " \xD0\xBC\xD0\xB8\xD1\x80");
    SPLIT(SQ_PRE_LLAMA3, "don't", "don", "'t");
    SPLIT(SQ_PRE_LLAMA3, "x'LL", "x", "'LL");
}

/* ===== Byte-level BPE: encoding through tokenizer.json ===== */

static const char PAT_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                 "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The GPT-2 char of byte b, as UTF-8. */
static void gpt2_char(int b, char *out) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    uint32_t cp = (uint32_t)b;
    if (!printable) {
        cp = 256;
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) cp++;
    }
    int n = sq_utf8_encode(cp, out);
    out[n] = '\0';
}

/* The test vocabulary: ids 0..255 are the GPT-2 chars of bytes 0..255, then
 *   rank 0 "Ġ t"->Ġt 256   1 "h e"->he 257   2 "Ġt he"->Ġthe 258   3 "i n"->in 259
 *   4 "Ġ a"->Ġa 260   5 "1 2"->12 261   6 "12 3"->123 262   7 "Ċ Ċ"->ĊĊ 263
 *   8 "e r"->er 264   9 "h er"->her 265   10 "t h"->th 266   11 "t t"->tt 267
 * "Ġxyz" 268 (no merge makes it), added "<|endoftext|>" 269 (special) and "<|user|>" 270.
 * `pre` is the pre_tokenizer JSON; pair_merges picks the [["a","b"]] merge form. */
static char *bpe_json(const char *pre_json, bool pair_merges, const char *post_json) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    static const char *const adds[2] = {"<|endoftext|>", "<|user|>"};
    for (int i = 0; i < 2; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", 269 + i);
        cJSON_AddStringToObject(a, "content", adds[i]);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", i == 0);
        cJSON_AddItemToArray(added, a);
    }
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre_json));
    cJSON_AddItemToObject(root, "post_processor", post_json ? cJSON_Parse(post_json) : cJSON_CreateNull());
    cJSON_AddItemToObject(root, "decoder",
                          cJSON_Parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
                                      "\"use_regex\":true}"));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", strstr(pre_json, "{1,3}") != NULL); /* Llama-3 */
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0; b < 256; b++) {
        char c[5];
        gpt2_char(b, c);
        cJSON_AddNumberToObject(vocab, c, b);
    }
    static const char *const merges[][2] = {{"Ġ", "t"},  {"h", "e"}, {"Ġt", "he"}, {"i", "n"},
                                            {"Ġ", "a"},  {"1", "2"}, {"12", "3"},  {"Ċ", "Ċ"},
                                            {"e", "r"},  {"h", "er"}, {"t", "h"},  {"t", "t"}};
    cJSON *ml = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < 12; i++) {
        char cat[16];
        snprintf(cat, sizeof cat, "%s%s", merges[i][0], merges[i][1]);
        cJSON_AddNumberToObject(vocab, cat, 256 + i);
        if (pair_merges) {
            cJSON *pr = cJSON_CreateArray();
            cJSON_AddItemToArray(pr, cJSON_CreateString(merges[i][0]));
            cJSON_AddItemToArray(pr, cJSON_CreateString(merges[i][1]));
            cJSON_AddItemToArray(ml, pr);
        } else {
            char s[16];
            snprintf(s, sizeof s, "%s %s", merges[i][0], merges[i][1]);
            cJSON_AddItemToArray(ml, cJSON_CreateString(s));
        }
    }
    cJSON_AddNumberToObject(vocab, "Ġxyz", 268);
    cJSON_AddNumberToObject(vocab, "<|endoftext|>", 269);
    cJSON_AddNumberToObject(vocab, "<|user|>", 270);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static char *split_pre(const char *pattern) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "Sequence");
    cJSON *arr = cJSON_AddArrayToObject(o, "pretokenizers");
    cJSON *sp = cJSON_CreateObject();
    cJSON_AddStringToObject(sp, "type", "Split");
    cJSON *pat = cJSON_AddObjectToObject(sp, "pattern");
    cJSON_AddStringToObject(pat, "Regex", pattern);
    cJSON_AddStringToObject(sp, "behavior", "Isolated");
    cJSON_AddBoolToObject(sp, "invert", 0);
    cJSON_AddItemToArray(arr, sp);
    cJSON_AddItemToArray(arr, cJSON_Parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
                                          "\"use_regex\":false}"));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char PRE_GPT2[] = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
                               "\"use_regex\":true}";
static const char PRE_SMOLLM[] = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\","
                                 "\"individual_digits\":true},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                                 "\"trim_offsets\":true,\"use_regex\":true}]}";

/* Writes the JSON, reads it back and builds a tokenizer. */
static int open_json(const char *json, const char *name, tok_pair *p) {
    memset(p, 0, sizeof *p);
    const char *path = tmp_path(name);
    write_text(path, json);
    if (sq_vocab_read_hf_json(path, NULL, &p->v) != SQ_OK) {
        printf("  %s: %s\n", name, sq_last_error());
        return 0;
    }
    if (sq_tokenizer_init(&p->t, &p->v) != SQ_OK) {
        printf("  %s: %s\n", name, sq_last_error());
        sq_vocab_free(&p->v);
        return 0;
    }
    return 1;
}

SQ_TEST(test_bpe_gpt2_encode) {
    char *json = bpe_json(PRE_GPT2, false, NULL);
    tok_pair t;
    int r = open_json(json, "gpt2.json", &t);
    free(json);
    SQ_CHECK(r);
    if (!r) return;
    SQ_CHECK(t.v.kind == SQ_VOCAB_BPE && t.v.pre == SQ_PRE_GPT2 && t.v.n_tokens == 271 && t.v.n_merges == 12);
    SQ_CHECK(t.v.types[269] == SQ_TOKEN_CONTROL && t.v.types[270] == SQ_TOKEN_USER_DEFINED);
    SQ_CHECK(!t.v.add_bos && t.v.bos_id == -1 && t.v.eos_id == 269); /* "<|endoftext|>" by name */
    /* "the other" -> "the" + " other".
     * "the": (t,h) rank 10, (h,e) rank 1 -> [t, he]; "t he" is no merge -> [116, 257].
     * " other": Ġ o t h e r: (h,e) 1 first -> Ġ o t he r; (e,r) 8 is stale (e is gone),
     * (t,h) 10 now sees (t,he): no merge -> [32, 111, 116, 257, 114]. */
    static const int32_t e1[] = {116, 257, 32, 111, 116, 257, 114};
    expect_enc(t.t, "the other", 9, e1, 7, "the other");
    /* "her": (h,e) rank 1 beats (e,r) rank 8, so "her" (h + er) never forms: [he, r] */
    static const int32_t e2[] = {257, 114};
    expect_enc(t.t, "her", 3, e2, 2, "rank order");
    /* "ttt": (t,t) at 0 and 1 have the same rank: the leftmost merges -> [tt, t] */
    static const int32_t e3[] = {267, 116};
    expect_enc(t.t, "ttt", 3, e3, 2, "leftmost tie");
    /* " a the 123" -> " a" | " the" | " 123".  " the": (Ġ,t) 0 -> Ġt h e; (h,e) 1 -> Ġt he;
     * (Ġt,he) 2 -> Ġthe.  " 123": (1,2) 5 -> Ġ 12 3; (12,3) 6 -> Ġ 123. */
    static const int32_t e4[] = {260, 258, 32, 262};
    expect_enc(t.t, " a the 123", 10, e4, 4, "words and digits");
    /* "a\n\nb": "\n" and "\n" are separate pieces (see test_pretok_gpt2): no ĊĊ;
     * at the end of the text "\n\n" is one piece: ĊĊ = 263 */
    static const int32_t e5[] = {97, 10, 10, 98};
    expect_enc(t.t, "a\n\nb", 4, e5, 4, "newlines before a word");
    static const int32_t e6[] = {97, 263};
    expect_enc(t.t, "a\n\n", 3, e6, 2, "newlines at the end");
    /* added tokens split the text first, special or not:
     * "hi" | <|endoftext|> | "there" | <|user|>; "there": (h,e) -> t he r e; "t he" and
     * "he r" are no merges, (e,r) is stale -> [116, 257, 114, 101] */
    static const int32_t e7[] = {104, 105, 269, 116, 257, 114, 101, 270};
    expect_enc(t.t, "hi<|endoftext|>there<|user|>", 28, e7, 8, "added tokens");
    /* bytes: "é" = C3 A9 -> the chars Ã (195) and © (169); a stray 0xFF byte -> ÿ (255) */
    static const int32_t e8[] = {195, 169, 255};
    expect_enc(t.t, "\xC3\xA9\xFF", 3, e8, 3, "bytes");
    /* no ignore_merges for gpt-2: " xyz" is merged (nothing applies) -> Ġ x y z */
    static const int32_t e9[] = {32, 120, 121, 122};
    expect_enc(t.t, " xyz", 4, e9, 4, "no ignore_merges");
    /* decoding reverses the byte map; control tokens give nothing, user-defined their text */
    static const int32_t d1[] = {116, 257, 32, 111, 116, 257, 114, 269, 270, 195, 169, 255, 10};
    static const char d1_text[] = "the other<|user|>\xC3\xA9\xFF\n";
    SQ_CHECK(decodes_to(t.t, d1, 13, d1_text, sizeof d1_text - 1, "bpe decode"));
    /* round trips of mixed text, including invalid UTF-8 */
    static const char *const rt[] = {"Hello, world! It's 2024.\n\n", "  spaces   and\ttabs\r\n",
                                     "na\xC3\xAFve \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87",
                                     "bad \xFF\xC0 utf8 \xE2\x96",
                                     "<|user|> hi <|endoftext|>"};
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        int32_t *ids, n;
        SQ_CHECK_OK(encode(t.t, rt[i], strlen(rt[i]), false, &ids, &n));
        const char *exp = rt[i];
        if (i == 4) exp = "<|user|> hi "; /* the special token decodes to nothing */
        SQ_CHECKF(decodes_to(t.t, ids, n, exp, strlen(exp), "bpe round trip"), "case %zu", i);
        free(ids);
    }
    close_tok(&t);
}

SQ_TEST(test_bpe_variants_encode) {
    /* "abc 12345" (see test_pretok_qwen2_llama3):
     *   gpt-2:  "abc" " 12345" -> [a b c] [Ġ 1 2 3 4 5 -> (1,2) -> (12,3)] = 97 98 99 32 262 52 53
     *   qwen2:  "abc" " " "1" "2" "3" "4" "5"                         = 97 98 99 32 49 50 51 52 53
     *   llama3: "abc" " " "123" "45": "123" -> (1,2) then (12,3) = 262 = 97 98 99 32 262 52 53
     *   smollm: like qwen2 (each digit alone)                         = 97 98 99 32 49 50 51 52 53 */
    static const int32_t eg[] = {97, 98, 99, 32, 262, 52, 53};
    static const int32_t eq[] = {97, 98, 99, 32, 49, 50, 51, 52, 53};
    char *pq = split_pre(PAT_QWEN2), *pl = split_pre(PAT_LLAMA3);
    const char *pres[4] = {PRE_GPT2, pq, pl, PRE_SMOLLM};
    const sq_pretok ids[4] = {SQ_PRE_GPT2, SQ_PRE_QWEN2, SQ_PRE_LLAMA3, SQ_PRE_SMOLLM};
    const int32_t *exp[4] = {eg, eq, eg, eq};
    const int32_t nexp[4] = {7, 9, 7, 9};
    for (int k = 0; k < 4; k++) {
        char *json = bpe_json(pres[k], k & 1, NULL); /* both merge forms */
        tok_pair t;
        int r = open_json(json, "variant.json", &t);
        free(json);
        SQ_CHECK(r);
        if (!r) continue;
        SQ_CHECKF(t.v.pre == ids[k], "pre %d, expected %d", (int)t.v.pre, (int)ids[k]);
        expect_enc(t.t, "abc 12345", 9, exp[k], nexp[k], sq_pretok_name(ids[k]));
        /* ignore_merges (llama-bpe only): " xyz" is one pre-token that is in the vocab -> 268 */
        static const int32_t ex_ign[] = {268}, ex_no[] = {32, 120, 121, 122};
        if (ids[k] == SQ_PRE_LLAMA3)
            expect_enc(t.t, " xyz", 4, ex_ign, 1, "ignore_merges");
        else
            expect_enc(t.t, " xyz", 4, ex_no, 4, "merges only");
        close_tok(&t);
    }
    free(pq);
    free(pl);

    /* the post-processor decides BOS: TemplateProcessing with <|endoftext|> first */
    const char *post = "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|endoftext|>\","
                 "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{}}";
    char *json = bpe_json(PRE_GPT2, false, post);
    tok_pair t;
    if (open_json(json, "bos.json", &t)) {
        SQ_CHECK(t.v.add_bos && t.v.bos_id == 269 && !t.v.add_eos);
        int32_t *x, n;
        SQ_CHECK_OK(sq_tokenizer_encode(t.t, "in", 2, t.v.add_bos, t.v.add_eos, &x, &n));
        static const int32_t eb[] = {269, 259};
        SQ_CHECK(same_ids(x, n, eb, 2, "bos from template"));
        free(x);
        /* tokenizer_config.json overrides */
        const char *cfg = tmp_path("bos_config.json");
        write_text(cfg, "{\"add_bos_token\": false, \"eos_token\": \"<|user|>\"}");
        sq_vocab v2;
        SQ_CHECK_OK(sq_vocab_read_hf_json(tmp_path("bos.json"), cfg, &v2));
        SQ_CHECK(!v2.add_bos && v2.bos_id == 269 && v2.eos_id == 270);
        sq_vocab_free(&v2);
        close_tok(&t);
    } else {
        SQ_CHECK(0);
    }
    free(json);
}

SQ_TEST(test_bpe_whole_text) {
    /* every pre-tokenizer on a whole 1 MB text in one call: fast, and byte-level BPE
     * round-trips any input exactly */
    if (sq_test_quick()) SQ_SKIP("quick run");
    const char *p = sq_test_shared_path("data/gutenberg/eval.txt");
    if (!p) SQ_SKIP("shared gutenberg data absent");
    size_t n = 0;
    char *text = read_bytes(p, 0, &n);
    char *pq = split_pre(PAT_QWEN2), *pl = split_pre(PAT_LLAMA3);
    const char *pres[4] = {PRE_GPT2, pq, pl, PRE_SMOLLM};
    for (int k = 0; k < 4; k++) {
        char *json = bpe_json(pres[k], false, NULL);
        tok_pair t;
        int r = open_json(json, "whole.json", &t);
        free(json);
        SQ_CHECK(r);
        if (!r) continue;
        int32_t *ids, nids;
        double t0 = now_s();
        SQ_CHECK_OK(encode(t.t, text, n, false, &ids, &nids));
        double dt = now_s() - t0;
        printf("  %s: %zu bytes -> %d tokens in %.3f s\n", sq_pretok_name(t.v.pre), n, nids, dt);
        SQ_CHECKF(dt < 2.0, "encoding took %.2f s", dt);
        SQ_CHECK(decodes_to(t.t, ids, nids, text, n, "byte-level round trip"));
        free(ids);
        close_tok(&t);
    }
    free(pq);
    free(pl);
    free(text);
}

SQ_TEST(test_hf_json_spm_style) {
    /* A Llama-style tokenizer.json: Prepend/Replace normalizer, byte fallback. Ranks become
     * scores (-rank): "ab" -> "▁ab": (▁,a) -0 beats (a,b) -1 -> [▁a, b] -> (▁a,b) -2 -> [▁ab]. */
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "added_tokens",
                          cJSON_Parse("[{\"id\":0,\"content\":\"<unk>\",\"special\":true},{\"id\":1,\"content\":"
                                      "\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}]"));
    cJSON_AddItemToObject(root, "normalizer",
                          cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":"
                                      "\"\xE2\x96\x81\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
                                      "\"content\":\"\xE2\x96\x81\"}]}"));
    cJSON_AddNullToObject(root, "pre_tokenizer");
    cJSON_AddItemToObject(root, "post_processor",
                          cJSON_Parse("{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\","
                                      "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}]}"));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\"},"
                                                       "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}"));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON_AddNumberToObject(vocab, "<unk>", 0);
    cJSON_AddNumberToObject(vocab, "<s>", 1);
    cJSON_AddNumberToObject(vocab, "</s>", 2);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        cJSON_AddNumberToObject(vocab, s, 3 + b);
    }
    static const char *const pieces[] = {SP, "a", "b", SP "a", "ab", SP "ab"};
    for (int i = 0; i < 6; i++) cJSON_AddNumberToObject(vocab, pieces[i], 259 + i);
    cJSON_AddItemToObject(model, "merges", cJSON_Parse("[\"\xE2\x96\x81 a\", \"a b\", \"\xE2\x96\x81" "a b\", "
                                                       "\"\xE2\x96\x81 ab\"]"));
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    tok_pair t;
    int r = open_json(json, "spm_style.json", &t);
    free(json);
    SQ_CHECK(r);
    if (!r) return;
    SQ_CHECK(t.v.kind == SQ_VOCAB_SPM && t.v.n_merges == 0 && t.v.byte_fallback && t.v.add_dummy_prefix);
    SQ_CHECK(t.v.bos_id == 1 && t.v.add_bos && t.v.eos_id == 2 && t.v.unk_id == 0);
    SQ_CHECK(t.v.types[3] == SQ_TOKEN_BYTE && t.v.types[1] == SQ_TOKEN_CONTROL);
    SQ_CHECK(t.v.scores[262] == 0.0f && t.v.scores[263] == -1.0f && t.v.scores[264] == -2.0f);
    static const int32_t e1[] = {264};
    expect_enc(t.t, "ab", 2, e1, 1, "spm-style ab");
    /* "ba" -> ▁ b a: "▁b" and "ba" are no pieces; "c" is no piece -> <0x63> = 102 */
    static const int32_t e2[] = {259, 261, 260, 259, 102};
    expect_enc(t.t, "ba c", 4, e2, 5, "spm-style ba c");
    close_tok(&t);
}

SQ_TEST(test_hf_json_hostile) {
    struct {
        const char *what, *from, *to;
        sq_status st;
        const char *needle;
    } cases[] = {
        {"merge result missing", "\"h er\"", "\"h q\"", SQ_ERR_FORMAT, "merge"},
        {"merge token missing", "\"t t\"", "\"t zz\"", SQ_ERR_FORMAT, "merge"},
        {"merge not a pair", "\"t t\"", "\"ttt\"", SQ_ERR_FORMAT, "merge"},
        {"merge wrong type", "\"t t\"", "42", SQ_ERR_FORMAT, "merge"},
        {"unknown regex", "\\\\p{N}{1,3}", "\\\\p{N}{1,4}", SQ_ERR_UNSUPPORTED, "unknown pre-tokenizer"},
        {"other model", "\"type\":\"BPE\"", "\"type\":\"WordPiece\"", SQ_ERR_UNSUPPORTED, "WordPiece"},
        {"negative id", "\"Ġxyz\":268", "\"Ġxyz\":-3", SQ_ERR_FORMAT, "id"},
        {"shared id", "\"Ġxyz\":268", "\"Ġxyz\":267", SQ_ERR_FORMAT, "id"},
        {"no byte-level", "\"decoder\":{\"type\":\"ByteLevel\"", "\"decoder\":{\"type\":\"Whatever\"",
         SQ_ERR_FORMAT, NULL},
        {"truncated", "\"merges\"", "\"merges\"", SQ_ERR_FORMAT, "JSON"},
    };
    char *pl = split_pre(PAT_LLAMA3);
    char *base = bpe_json(pl, false, NULL);
    free(pl);
    const char *path = tmp_path("hostile.json");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *at = strstr(base, cases[i].from);
        SQ_CHECKF(at != NULL, "%s: '%s' not in the base JSON", cases[i].what, cases[i].from);
        if (!at) continue;
        size_t lf = strlen(cases[i].from), lt = strlen(cases[i].to), lb = strlen(base);
        char *j = malloc(lb + lt + 1);
        memcpy(j, base, (size_t)(at - base));
        memcpy(j + (at - base), cases[i].to, lt);
        memcpy(j + (at - base) + lt, at + lf, lb - (size_t)(at - base) - lf + 1);
        if (strcmp(cases[i].what, "truncated") == 0) j[(at - base) + 20] = '\0';
        if (strcmp(cases[i].what, "no byte-level") == 0) { /* and no ByteLevel pre-tokenizer either */
            char *q = strstr(j, "\"pre_tokenizer\":");
            if (q) memcpy(q + 1, "xre", 3);
        }
        write_text(path, j);
        sq_vocab v;
        sq_status st = sq_vocab_read_hf_json(path, NULL, &v);
        if (strcmp(cases[i].what, "no byte-level") == 0) {
            SQ_CHECKF(st == SQ_ERR_UNSUPPORTED && one_line_about(path), "%s: %d %s", cases[i].what, st,
                      sq_last_error());
        } else {
            SQ_CHECKF(st == cases[i].st && one_line_about(path) &&
                          (!cases[i].needle || strstr(sq_last_error(), cases[i].needle)),
                      "%s: status %d: %s", cases[i].what, st, sq_last_error());
        }
        if (st == SQ_OK) sq_vocab_free(&v);
        free(j);
    }
    /* every prefix of a valid file: an error, never a crash */
    size_t n = strlen(base);
    int bad = 0;
    for (size_t cut = 0; cut < n; cut += 37) {
        write_bytes(path, base, cut);
        sq_vocab v;
        if (sq_vocab_read_hf_json(path, NULL, &v) == SQ_OK) {
            bad++;
            sq_vocab_free(&v);
        } else {
            bad += !one_line_about(path);
        }
    }
    SQ_CHECK(bad == 0);
    free(base);
}

int main(void) {
    SQ_RUN(test_utf8);
    SQ_RUN(test_unicode_categories);
    SQ_RUN(test_read_spm_gutenberg);
    SQ_RUN(test_read_llama2c_matches_model);
    SQ_RUN(test_spm_gutenberg_prompt);
    SQ_RUN(test_spm_goldens_gutenberg);
    SQ_RUN(test_spm_goldens_llama2);
    SQ_RUN(test_spm_goldens_nobf);
    SQ_RUN(test_spm_goldens_tok512);
    SQ_RUN(test_tok512_tinystories_prefix);
    SQ_RUN(test_tok512_tinystories_eval_count);
    SQ_RUN(test_spm_whole_eval_texts);
    SQ_RUN(test_spm_chunking_exact);
    SQ_RUN(test_spm_merge_order);
    SQ_RUN(test_spm_invalid_utf8_roundtrip);
    SQ_RUN(test_read_spm_synthetic);
    SQ_RUN(test_read_spm_hostile);
    SQ_RUN(test_read_llama2c_synthetic);
    SQ_RUN(test_read_llama2c_hostile);
    SQ_RUN(test_tokenizer_config);
    SQ_RUN(test_pretok_gpt2);
    SQ_RUN(test_pretok_smollm);
    SQ_RUN(test_pretok_qwen2_llama3);
    SQ_RUN(test_bpe_gpt2_encode);
    SQ_RUN(test_bpe_variants_encode);
    SQ_RUN(test_bpe_whole_text);
    SQ_RUN(test_hf_json_spm_style);
    SQ_RUN(test_hf_json_hostile);
    return sq_test_summary();
}
