/* test_xxhash.c - XXH64 against published vectors (the xxHash sanity check's buffer with
 * seeds 0 and 2654435761, and well-known strings, all also confirmed with the reference
 * xxhsum), streaming in every chunking against one-shot, and sq_vocab_hash: stable, and
 * sensitive to every field it promises to cover.
 */
#include <stdint.h>

#include "../runtime/sqz.h"
#include "test.h"

#define PRIME32 2654435761u

/* The sanity buffer of xxHash's xxhsum: byte i is the top byte of a 32-bit generator
 * that starts at PRIME32 and is squared at each step. */
static void sanity_buffer(uint8_t *buf, size_t n) {
    uint32_t gen = PRIME32;
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)(gen >> 24);
        gen *= gen;
    }
}

/* One-shot, one update, and byte-by-byte streaming all give `want`. */
static int check_all_ways(const void *data, size_t len, uint64_t seed, uint64_t want) {
    int ok = sq_xxh64(data, len, seed) == want;
    sq_xxh64_state h;
    sq_xxh64_init(&h, seed);
    sq_xxh64_update(&h, data, len);
    ok &= sq_xxh64_digest(&h) == want;
    sq_xxh64_init(&h, seed);
    for (size_t i = 0; i < len; i++) sq_xxh64_update(&h, (const uint8_t *)data + i, 1);
    ok &= sq_xxh64_digest(&h) == want;
    if (!ok) printf("  len %zu seed %llu: got 0x%016llx, want 0x%016llx\n", len, (unsigned long long)seed,
                    (unsigned long long)sq_xxh64(data, len, seed), (unsigned long long)want);
    return ok;
}

SQ_TEST(test_published_vectors) {
    uint8_t buf[101];
    sanity_buffer(buf, sizeof buf);
    SQ_CHECK(check_all_ways(NULL, 0, 0, 0xEF46DB3751D8E999ull));
    SQ_CHECK(check_all_ways(NULL, 0, PRIME32, 0xAC75FDA2929B17EFull));
    SQ_CHECK(check_all_ways(buf, 1, 0, 0x4FCE394CC88952D8ull));
    SQ_CHECK(check_all_ways(buf, 1, PRIME32, 0x739840CB819FA723ull));
    SQ_CHECK(check_all_ways(buf, 14, 0, 0xCFFA8DB881BC3A3Dull));
    SQ_CHECK(check_all_ways(buf, 14, PRIME32, 0x5B9611585EFCC9CBull));
    SQ_CHECK(check_all_ways(buf, 101, 0, 0x0EAB543384F878ADull));
    SQ_CHECK(check_all_ways(buf, 101, PRIME32, 0xCAA65939306F1E21ull));
    SQ_CHECK(check_all_ways("a", 1, 0, 0xD24EC4F1A98C6E5Bull));
    SQ_CHECK(check_all_ways("abc", 3, 0, 0x44BC2CF5AD770999ull));
    const char *nobody = "Nobody inspects the spammish repetition";
    SQ_CHECK(check_all_ways(nobody, strlen(nobody), 0, 0xFBCEA83C8A378BF1ull));
}

/* Every way of cutting a message into updates gives the one-shot digest. */
SQ_TEST(test_streaming_chunks) {
    static uint8_t data[1000];
    uint64_t s = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        data[i] = (uint8_t)(s >> 56);
    }
    static const size_t chunks[] = {1, 2, 3, 5, 7, 8, 13, 31, 32, 33, 63, 64, 65, 200};
    int bad = 0;
    for (size_t len = 0; len <= sizeof data; len += len < 100 ? 1 : 97) {
        for (uint64_t seed = 0; seed < 3; seed++) {
            uint64_t want = sq_xxh64(data, len, seed * 0x9E3779B97F4A7C15ull);
            for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++) {
                sq_xxh64_state h;
                sq_xxh64_init(&h, seed * 0x9E3779B97F4A7C15ull);
                for (size_t off = 0; off < len; off += chunks[ci]) {
                    size_t n = len - off < chunks[ci] ? len - off : chunks[ci];
                    sq_xxh64_update(&h, data + off, n);
                }
                bad += sq_xxh64_digest(&h) != want;
            }
            /* irregular chunks: 0, 1, 2, ... bytes */
            sq_xxh64_state h;
            sq_xxh64_init(&h, seed * 0x9E3779B97F4A7C15ull);
            for (size_t off = 0, n = 0; off < len; off += n, n++) {
                if (n > len - off) n = len - off;
                sq_xxh64_update(&h, data + off, n);
            }
            bad += sq_xxh64_digest(&h) != want;
        }
    }
    SQ_CHECKF(bad == 0, "%d chunkings disagree with one-shot", bad);
}

/* Digest does not consume the state: digest, keep updating, digest again. */
SQ_TEST(test_digest_is_pure) {
    const char *msg = "The quick brown fox jumps over the lazy dog, twice over the lazy dog";
    size_t n = strlen(msg);
    sq_xxh64_state h;
    sq_xxh64_init(&h, 7);
    sq_xxh64_update(&h, msg, 20);
    uint64_t d1 = sq_xxh64_digest(&h);
    SQ_CHECK(d1 == sq_xxh64_digest(&h));
    SQ_CHECK(d1 == sq_xxh64(msg, 20, 7));
    sq_xxh64_update(&h, msg + 20, n - 20);
    SQ_CHECK(sq_xxh64_digest(&h) == sq_xxh64(msg, n, 7));
    SQ_CHECK(sq_xxh64(msg, n, 7) != sq_xxh64(msg, n, 8));
}

/* ===== sq_vocab_hash ===== */

static char *dupstr(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static void make_vocab(sq_vocab *v) {
    static const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", ""};
    memset(v, 0, sizeof *v);
    v->kind = SQ_VOCAB_BPE;
    v->pre = SQ_PRE_GPT2;
    v->n_tokens = 6;
    v->tokens = malloc(sizeof(char *) * 6);
    v->scores = malloc(sizeof(float) * 6);
    v->types = malloc(sizeof(int32_t) * 6);
    for (int i = 0; i < 6; i++) {
        v->tokens[i] = dupstr(toks[i]);
        v->scores[i] = 0.25f * (float)i;
        v->types[i] = i < 3 ? SQ_TOKEN_CONTROL : SQ_TOKEN_NORMAL;
    }
    v->n_merges = 2;
    v->merges = malloc(sizeof(char *) * 2);
    v->merges[0] = dupstr("t h");
    v->merges[1] = dupstr("th e");
    v->bos_id = 1;
    v->eos_id = 2;
    v->unk_id = 0;
    v->pad_id = -1;
    v->add_bos = true;
}

SQ_TEST(test_vocab_hash) {
    sq_vocab v, c;
    make_vocab(&v);
    const uint64_t base = sq_vocab_hash(&v);
    SQ_CHECK(base == sq_vocab_hash(&v));
    SQ_CHECK(sq_vocab_hash(NULL) == sq_vocab_hash(NULL) && sq_vocab_hash(NULL) != base);
    SQ_CHECK_OK(sq_vocab_copy(&c, &v));
    SQ_CHECK(sq_vocab_hash(&c) == base); /* identity is the content, not the pointers */
    sq_vocab_free(&c);

    int changed = 0, tried = 0;
#define MUTATE(stmt, undo)                          \
    do {                                            \
        stmt;                                       \
        changed += sq_vocab_hash(&v) != base;       \
        tried++;                                    \
        undo;                                       \
        SQ_CHECK(sq_vocab_hash(&v) == base);        \
    } while (0)
    MUTATE(v.kind = SQ_VOCAB_SPM, v.kind = SQ_VOCAB_BPE);
    MUTATE(v.pre = SQ_PRE_LLAMA3, v.pre = SQ_PRE_GPT2);
    MUTATE(v.n_tokens = 5, v.n_tokens = 6);
    MUTATE(v.tokens[4][0] = 'b', v.tokens[4][0] = 'a');
    char *saved = v.tokens[5];
    MUTATE(v.tokens[5] = NULL, v.tokens[5] = saved); /* NULL differs from "" */
    MUTATE(v.scores[3] = 5.0f, v.scores[3] = 0.75f);
    MUTATE(v.scores[0] = -0.0f, v.scores[0] = 0.0f); /* bit patterns, not values */
    MUTATE(v.types[4] = SQ_TOKEN_BYTE, v.types[4] = SQ_TOKEN_NORMAL);
    MUTATE(v.merges[1][0] = 'x', v.merges[1][0] = 't');
    MUTATE(v.n_merges = 1, v.n_merges = 2);
    MUTATE(v.bos_id = 0, v.bos_id = 1);
    MUTATE(v.eos_id = 5, v.eos_id = 2);
    MUTATE(v.unk_id = -1, v.unk_id = 0);
    MUTATE(v.pad_id = 3, v.pad_id = -1);
    MUTATE(v.add_bos = false, v.add_bos = true);
    MUTATE(v.add_eos = true, v.add_eos = false);
    MUTATE(v.add_dummy_prefix = true, v.add_dummy_prefix = false);
    MUTATE(v.remove_extra_whitespaces = true, v.remove_extra_whitespaces = false);
    MUTATE(v.byte_fallback = true, v.byte_fallback = false);
#undef MUTATE
    SQ_CHECKF(changed == tried, "%d of %d field changes altered the hash", changed, tried);
    /* moving a byte between adjacent tokens changes the hash (lengths are hashed) */
    char *t3 = v.tokens[3], *t4 = v.tokens[4];
    v.tokens[3] = dupstr("\xe2\x96\x81th");
    v.tokens[4] = dupstr("ea");
    SQ_CHECK(sq_vocab_hash(&v) != base);
    free(v.tokens[3]);
    free(v.tokens[4]);
    v.tokens[3] = t3;
    v.tokens[4] = t4;
    SQ_CHECK(sq_vocab_hash(&v) == base);
    /* absent scores hash like all-zero scores (what sq_vocab_copy makes of them) */
    for (int i = 0; i < v.n_tokens; i++) v.scores[i] = 0.0f;
    uint64_t zeros = sq_vocab_hash(&v);
    float *sc = v.scores;
    v.scores = NULL;
    SQ_CHECK(sq_vocab_hash(&v) == zeros);
    v.scores = sc;
    SQ_CHECK(zeros != base);
    sq_vocab_free(&v);
}

int main(void) {
    SQ_RUN(test_published_vectors);
    SQ_RUN(test_streaming_chunks);
    SQ_RUN(test_digest_is_pure);
    SQ_RUN(test_vocab_hash);
    return sq_test_summary();
}
