/* test_calibrate.c - calibration (core/calib*.c) against references written here:
 *  - X^T X, sum |x|, sum x^2 and token counts equal a naive accumulation of inputs captured
 *    by this test's own hook, to 1e-12 relative; q/k/v and gate/up share one entry; the
 *    SIMD panel kernel is bitwise the reference on ragged widths;
 *  - the window sampler: splitmix64's published first value, same windows for the same seed,
 *    others for another seed, every window inside the data (text and jsonl/GPTQ rules);
 *  - jsonl and data errors name the file and line;
 *  - calib.h5 is byte-identical at 1 and 2 threads and across runs, reads back the same
 *    numbers, refuses another model (naming both hashes) and hostile files in one line;
 *  - the legacy imatrix .dat byte layout (FORMATS.md 6.6) and the model hash.
 */
#include <hdf5.h>

#include "../core/calib.h"
#include "../runtime/tokenizer.h"
#include "test.h"
#include "tinymodel.h"

/* ===== Fixtures ===== */

static sq_model *model_of(sq_checkpoint *c) {
    sq_model *m = NULL;
    if (sq_model_from_tensors(&m, &c->cfg, &c->vocab, c->tensors, c->n_tensors, false))
        printf("  model: %s\n", sq_last_error());
    return m;
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", sq_test_tmpdir(), name);
    return b;
}

static void write_text(const char *path, const char *s) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return;
    fputs(s, fp);
    fclose(fp);
}

/* About n_words words of pseudo-English (deterministic). */
static char *pseudo_text(int n_words, uint64_t seed) {
    static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "she", "was", "happy", "to",
                                        "see", "it", "in", "the", "sun", "Tom", "ran", "home", "with", "his", "dog",
                                        "They", "played", "all", "day", "zebra", "quilt", "xylophone", "!", "."};
    const int nw = (int)(sizeof words / sizeof words[0]);
    char *s = malloc((size_t)n_words * 12 + 1), *p = s;
    for (int i = 0; i < n_words; i++) {
        const char *w = words[sq_tiny_rand(&seed) % (uint64_t)nw];
        p += sprintf(p, "%s%s", i ? " " : "", w);
    }
    return s;
}

/* A loaded tiny model with a tokenizer and calibration data from pseudo-text. */
typedef struct {
    sq_checkpoint c;
    sq_model *m;
    sq_tokenizer *tok;
    sq_calib_data d;
    char data_path[512];
} fixture;

static bool fixture_init(fixture *f, const sq_tiny_spec *sp, int n_words, const char *name) {
    memset(f, 0, sizeof *f);
    if (sq_tiny_checkpoint(sp, &f->c)) return printf("  tiny: %s\n", sq_last_error()), false;
    if (!(f->m = model_of(&f->c))) return false;
    if (sq_tokenizer_init(&f->tok, &f->c.vocab)) return printf("  tokenizer: %s\n", sq_last_error()), false;
    snprintf(f->data_path, sizeof f->data_path, "%s", tmp_path(name));
    char *text = pseudo_text(n_words, 7);
    write_text(f->data_path, text);
    free(text);
    if (sq_calib_data_load(&f->d, f->data_path, SQ_CALIB_TEXT, NULL, f->tok, true))
        return printf("  data: %s\n", sq_last_error()), false;
    return true;
}

static void fixture_free(fixture *f) {
    sq_calib_data_free(&f->d);
    sq_tokenizer_free(f->tok);
    sq_model_free(f->m);
    sq_checkpoint_free(&f->c);
}

/* Statistics for n windows of L tokens with provenance filled in (model hash "aa..a"). */
static bool calibrate(fixture *f, int64_t n, int32_t L, uint64_t seed, sq_calib *c) {
    if (sq_calib_init(c, &f->m->cfg)) return printf("  init: %s\n", sq_last_error()), false;
    memset(c->model_sha256, 'a', 64);
    memcpy(c->data_sha256, f->d.sha256, 65);
    c->data_path = sq_strdup("calib.txt");
    c->data_format = SQ_CALIB_TEXT;
    c->n_samples = n;
    c->seq_len = L;
    c->seed = seed;
    c->n_tokens = f->d.n_tokens;
    c->tool_version = sq_strdup("squish test");
    c->command_line = sq_strdup("test_calibrate");
    c->windows = malloc((size_t)n * sizeof *c->windows);
    if (sq_calib_windows_draw(&f->d, "calib.txt", n, L, seed, c->windows))
        return printf("  windows: %s\n", sq_last_error()), false;
    if (sq_calib_collect(c, f->m, &f->d, c->windows, n, L, NULL, NULL))
        return printf("  collect: %s\n", sq_last_error()), false;
    return true;
}

static bool same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = !sq_read_file(a, (size_t)1 << 30, &x, &nx) && !sq_read_file(b, (size_t)1 << 30, &y, &ny) && nx == ny &&
                !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* ===== The naive reference ===== */

typedef struct {
    int32_t n_layers;
    int32_t width[64][SQ_CALIB_POINTS];
    long double *xtx[64][SQ_CALIB_POINTS]; /* plain running sums over every token */
    long double *abs_sum[64][SQ_CALIB_POINTS], *sq_sum[64][SQ_CALIB_POINTS];
    int64_t n_tokens[64][SQ_CALIB_POINTS];
    int64_t calls[64][SQ_CALIB_POINTS];
} naive;

static void naive_hook(void *user, int32_t layer, sq_capture_point pt, const float *x, int32_t n, int32_t w) {
    naive *r = user;
    const int p = (int)pt;
    if (!r->xtx[layer][p]) {
        r->width[layer][p] = w;
        r->xtx[layer][p] = calloc((size_t)w * w, sizeof(long double));
        r->abs_sum[layer][p] = calloc((size_t)w, sizeof(long double));
        r->sq_sum[layer][p] = calloc((size_t)w, sizeof(long double));
    }
    for (int32_t t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * w;
        for (int32_t i = 0; i < w; i++) {
            r->abs_sum[layer][p][i] += fabsl((long double)xr[i]);
            r->sq_sum[layer][p][i] += (long double)xr[i] * xr[i];
            for (int32_t j = 0; j < w; j++) r->xtx[layer][p][(size_t)i * w + j] += (long double)xr[i] * xr[j];
        }
    }
    r->n_tokens[layer][p] += n;
    r->calls[layer][p]++;
}

static void naive_free(naive *r) {
    for (int l = 0; l < 64; l++)
        for (int p = 0; p < SQ_CALIB_POINTS; p++) {
            free(r->xtx[l][p]);
            free(r->abs_sum[l][p]);
            free(r->sq_sum[l][p]);
        }
}

/* ===== Statistics ===== */

SQ_TEST(stats_match_naive_capture) {
    sq_tiny_spec sp = sq_tiny_spec_default();
    sp.hidden_dim = 90; /* ragged: 22.5 panels */
    sp.qkv_bias = true;
    fixture f;
    if (!fixture_init(&f, &sp, 3000, "naive.txt")) {
        fixture_free(&f);
        return;
    }
    const int64_t N = 5;
    const int32_t L = 48;
    sq_calib c;
    if (!calibrate(&f, N, L, 11, &c)) {
        sq_calib_free(&c);
        fixture_free(&f);
        return;
    }
    SQ_CHECK(c.n_layers == sp.n_layers && c.n_entries == 4 * sp.n_layers);

    /* the same windows through this test's own hook */
    naive *r = calloc(1, sizeof *r);
    sq_state *s = NULL;
    SQ_CHECK_OK(sq_state_init(&s, f.m, L, L));
    sq_state_set_capture(s, naive_hook, r);
    for (int64_t i = 0; i < N; i++) {
        sq_state_reset(s);
        const int32_t *toks = f.d.tokens + c.windows[i].offset;
        SQ_CHECK_OK(sq_forward(s, toks, L, L, NULL));
    }
    sq_state_free(s);

    double worst = 0;
    for (int32_t l = 0; l < sp.n_layers; l++) {
        for (int p = 0; p < SQ_CALIB_POINTS; p++) {
            const sq_calib_entry *e = sq_calib_entry_at(&c, l, (sq_capture_point)p);
            SQ_CHECK(r->calls[l][p] == N); /* one capture per window: q/k/v (gate/up) read one input */
            SQ_CHECK(e->width == r->width[l][p]);
            SQ_CHECK(e->n_tokens == N * L && r->n_tokens[l][p] == N * L);
            const int32_t w = e->width;
            for (int32_t i = 0; i < w; i++) {
                SQ_CHECK_CLOSE(e->abs_sum[i], (double)r->abs_sum[l][p][i], 1e-12, 0);
                SQ_CHECK_CLOSE(e->sq_sum[i], (double)r->sq_sum[l][p][i], 1e-12, 0);
                SQ_CHECK(e->sq_sum[i] == e->xtx[(size_t)i * w + i]); /* bitwise diag */
                for (int32_t j = 0; j < w; j++) {
                    const double got = e->xtx[(size_t)i * w + j], want = (double)r->xtx[l][p][(size_t)i * w + j];
                    /* relative to the entry's scale: off-diagonal sums may cancel to ~0 */
                    const double scale = sqrt((double)r->sq_sum[l][p][i] * (double)r->sq_sum[l][p][j]);
                    const double err = fabs(got - want) / scale;
                    if (err > worst) worst = err;
                    SQ_CHECK(got == e->xtx[(size_t)j * w + i]); /* symmetric */
                }
            }
        }
    }
    SQ_CHECKF(worst <= 1e-12, "worst relative difference %.3g", worst);
    printf("  naive reference: worst relative difference %.2g over %d inputs\n", worst, c.n_entries);

    /* q/k/v share one entry, gate/up share one; o and down have their own */
    char nm[128];
    for (int32_t l = 0; l < sp.n_layers; l++) {
        const sq_calib_entry *q = sq_calib_entry_at(&c, l, SQ_CAPTURE_ATTN_IN);
#define FOR(suffix) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix), sq_calib_entry_for(&c, nm))
        SQ_CHECK(FOR("self_attn.q_proj.weight") == q && FOR("self_attn.k_proj.weight") == q && FOR("self_attn.v_proj") == q);
        SQ_CHECK(!strcmp(q->users, "q_proj,k_proj,v_proj"));
        const sq_calib_entry *g = FOR("mlp.gate_proj.weight");
        SQ_CHECK(g && g == FOR("mlp.up_proj.weight") && g->point == SQ_CAPTURE_FFN_IN && g != q);
        SQ_CHECK(FOR("self_attn.o_proj.weight")->point == SQ_CAPTURE_ATTN_O_IN);
        SQ_CHECK(FOR("mlp.down_proj.weight")->width == sp.hidden_dim);
#undef FOR
    }
    SQ_CHECK(!sq_calib_entry_for(&c, "model.layers.9.self_attn.q_proj") && !sq_calib_entry_for(&c, "lm_head.weight"));
    naive_free(r);
    free(r);
    sq_calib_free(&c);
    fixture_free(&f);
}

/* The SIMD panel kernel (when this CPU has one) is bitwise the reference, on ragged widths
 * and at 1 and 2 threads. */
SQ_TEST(panel_kernel_bitwise) {
    const int32_t widths[] = {1, 3, 4, 5, 8, 13, 30, 37, 64, 250};
    const int64_t n = 67;
    uint64_t rng = 5;
    for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
        const int32_t w = widths[k];
        float *x = malloc((size_t)n * w * sizeof(float));
        for (int64_t i = 0; i < n * w; i++) x[i] = sq_tiny_uniform(&rng) * (i % 7 == 0 ? 10.0f : 1.0f);
        double *pack = malloc(sq_calib_pack_doubles(w, n) * sizeof(double));
        sq_calib_entry e[3];
        for (int v = 0; v < 3; v++) {
            memset(&e[v], 0, sizeof e[v]);
            e[v].width = w;
            e[v].xtx = calloc((size_t)w * w, sizeof(double));
            e[v].abs_sum = calloc((size_t)w, sizeof(double));
            e[v].sq_sum = calloc((size_t)w, sizeof(double));
            if (v == 0) setenv("SQUISH_FORCE_REF", "1", 1);
            sq_set_num_threads(v == 2 ? 2 : 1);
            for (int rep = 0; rep < 2; rep++) sq_calib_entry_add(&e[v], x, n - rep, pack);
            unsetenv("SQUISH_FORCE_REF");
        }
        sq_set_num_threads(0);
        SQ_CHECKF(!memcmp(e[0].xtx, e[1].xtx, (size_t)w * w * sizeof(double)), "width %d: simd differs", w);
        SQ_CHECKF(!memcmp(e[1].xtx, e[2].xtx, (size_t)w * w * sizeof(double)), "width %d: threads differ", w);
        /* and against a direct double sum: per call, the rows in order */
        for (int32_t i = 0; i < w; i++)
            for (int32_t j = 0; j < w; j++) {
                double tot = 0;
                for (int rep = 0; rep < 2; rep++) {
                    double s = 0;
                    for (int64_t t = 0; t < n - rep; t++) s += (double)x[t * w + i] * (double)x[t * w + j];
                    tot += s;
                }
                if (tot != e[0].xtx[(size_t)i * w + j]) {
                    SQ_CHECKF(0, "width %d: xtx[%d,%d] = %.17g, direct %.17g", w, i, j, e[0].xtx[(size_t)i * w + j], tot);
                    i = j = w;
                }
            }
        SQ_CHECK(e[0].n_tokens == 2 * n - 1);
        for (int v = 0; v < 3; v++) free(e[v].xtx), free(e[v].abs_sum), free(e[v].sq_sum);
        free(pack);
        free(x);
    }
}

/* ===== Windows ===== */

SQ_TEST(splitmix64_and_sampler) {
    uint64_t st = 0;
    SQ_CHECK(sq_splitmix64(&st) == 0xE220A8397B1DCDAFull); /* the generator's published first output */
    st = 1;
    for (int i = 0; i < 1000; i++) SQ_CHECK(sq_splitmix64_below(&st, 7) < 7);

    sq_calib_data d = {0};
    d.format = SQ_CALIB_TEXT;
    d.n_docs = 1;
    d.n_tokens = 1000;
    d.tokens = calloc(1000, sizeof(int32_t));
    d.doc_start = malloc(2 * sizeof(int64_t));
    d.doc_start[0] = 0, d.doc_start[1] = 1000;
    const int64_t N = 200;
    const int32_t L = 100;
    sq_calib_window a[200], b[200], c[200];
    SQ_CHECK_OK(sq_calib_windows_draw(&d, "t", N, L, 0, a));
    SQ_CHECK_OK(sq_calib_windows_draw(&d, "t", N, L, 0, b));
    SQ_CHECK_OK(sq_calib_windows_draw(&d, "t", N, L, 1, c));
    SQ_CHECK(!memcmp(a, b, sizeof a));
    SQ_CHECK(memcmp(a, c, sizeof a) != 0);
    bool lo = false, hi = false;
    for (int64_t i = 0; i < N; i++) {
        SQ_CHECK(a[i].doc == 0 && a[i].offset >= 0 && a[i].offset <= 1000 - L);
        SQ_CHECK(sq_calib_window_tokens(&d, a[i], L) == d.tokens + a[i].offset);
        lo |= a[i].offset < 100, hi |= a[i].offset > 800;
    }
    SQ_CHECK(lo && hi); /* spread over the whole range */
    /* exactly one window fits: always offset 0 */
    SQ_CHECK_OK(sq_calib_windows_draw(&d, "t", 3, 1000, 9, c));
    SQ_CHECK(c[0].offset == 0 && c[2].offset == 0);
    SQ_CHECK(sq_calib_windows_draw(&d, "short.txt", 3, 1001, 9, c) == SQ_ERR_ARG);
    SQ_CHECK(strstr(sq_last_error(), "short.txt") && strstr(sq_last_error(), "1000 tokens"));
    SQ_CHECK(!sq_calib_window_tokens(&d, (sq_calib_window){0, 901}, L));
    SQ_CHECK(!sq_calib_window_tokens(&d, (sq_calib_window){1, 0}, L));

    /* jsonl: documents of 50, 150, 101, 100 tokens; only docs 1 and 2 are longer than 100 */
    d.format = SQ_CALIB_JSONL;
    d.n_docs = 4;
    free(d.doc_start);
    d.doc_start = malloc(5 * sizeof(int64_t));
    const int64_t starts[5] = {0, 50, 200, 301, 401};
    memcpy(d.doc_start, starts, sizeof starts);
    d.n_tokens = 401;
    SQ_CHECK_OK(sq_calib_windows_draw(&d, "t", N, L, 3, a));
    SQ_CHECK_OK(sq_calib_windows_draw(&d, "t", N, L, 3, b));
    SQ_CHECK(!memcmp(a, b, sizeof a));
    bool saw1 = false, saw2 = false;
    for (int64_t i = 0; i < N; i++) {
        const int64_t len = d.doc_start[a[i].doc + 1] - d.doc_start[a[i].doc];
        SQ_CHECK(a[i].doc == 1 || a[i].doc == 2);
        SQ_CHECK(a[i].offset >= 0 && a[i].offset <= len - L - 1); /* GPTQ: randint(0, len - L - 1) */
        saw1 |= a[i].doc == 1, saw2 |= a[i].doc == 2;
        if (a[i].doc == 2) SQ_CHECK(a[i].offset == 0);
    }
    SQ_CHECK(saw1 && saw2);
    SQ_CHECK(sq_calib_windows_draw(&d, "c4.jsonl", 2, 150, 0, a) == SQ_ERR_ARG);
    SQ_CHECK(strstr(sq_last_error(), "c4.jsonl") && strstr(sq_last_error(), "more than 150 tokens"));
    sq_calib_data_free(&d);
}

/* ===== Data files ===== */

SQ_TEST(data_text_and_jsonl) {
    sq_tiny_spec sp = sq_tiny_spec_default();
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&sp, &c));
    sq_tokenizer *tok = NULL;
    SQ_CHECK_OK(sq_tokenizer_init(&tok, &c.vocab));
    if (!tok) {
        sq_checkpoint_free(&c);
        return;
    }

    /* text: one document, BOS first, the same ids as one encode call */
    const char *txt = tmp_path("d.txt");
    write_text(txt, "the cat sat on the mat\nand she was happy\n");
    sq_calib_data d;
    SQ_CHECK_OK(sq_calib_data_load(&d, txt, SQ_CALIB_TEXT, NULL, tok, true));
    int32_t *ids = NULL, n_ids = 0;
    const char *body = "the cat sat on the mat\nand she was happy\n";
    SQ_CHECK_OK(sq_tokenizer_encode(tok, body, strlen(body), true, false, &ids, &n_ids));
    SQ_CHECK(d.n_docs == 1 && d.n_tokens == n_ids && !memcmp(d.tokens, ids, (size_t)n_ids * 4));
    SQ_CHECK(d.tokens[0] == c.vocab.bos_id);
    char hex[65];
    SQ_CHECK_OK(sq_sha256_file(txt, hex, NULL));
    SQ_CHECK(!strcmp(hex, d.sha256));
    free(ids);
    sq_calib_data_free(&d);

    /* jsonl: blank lines skipped, CRLF accepted, each document alone with BOS */
    const char *jl = tmp_path("d.jsonl");
    write_text(jl, "{\"text\": \"the cat\", \"id\": 1}\r\n\n  \n{\"text\": \"sat on\", \"body\": \"x\"}\n{\"text\": \"\"}");
    SQ_CHECK_OK(sq_calib_data_load(&d, jl, SQ_CALIB_JSONL, NULL, tok, true));
    SQ_CHECK(d.n_docs == 3);
    if (d.n_docs == 3) {
        SQ_CHECK_OK(sq_tokenizer_encode(tok, "sat on", 6, true, false, &ids, &n_ids));
        SQ_CHECK(d.doc_start[2] - d.doc_start[1] == n_ids && !memcmp(d.tokens + d.doc_start[1], ids, (size_t)n_ids * 4));
        SQ_CHECK(d.tokens[d.doc_start[0]] == c.vocab.bos_id && d.tokens[d.doc_start[1]] == c.vocab.bos_id);
        SQ_CHECK(d.doc_start[3] - d.doc_start[2] == 1); /* "" is BOS alone */
        free(ids);
    }
    sq_calib_data_free(&d);

    /* errors name the file and the line */
    struct {
        const char *content, *field, *want;
    } bad[] = {
        {"{\"text\": \"a\"}\n{\"text\": \"b\"\n", NULL, "bad.jsonl:2: not valid JSON"},
        {"{\"text\": \"a\"}\n\n{\"body\": \"b\"}\n", NULL, "bad.jsonl:3: no member \"text\""},
        {"{\"text\": \"a\"}\n", "body", "bad.jsonl:1: no member \"body\""},
        {"{\"text\": 5}\n", NULL, "bad.jsonl:1: member \"text\" is not a string"},
        {"[\"text\"]\n", NULL, "bad.jsonl:1: expected a JSON object"},
        {"{\"text\": \"a\"} {\"text\": \"b\"}\n", NULL, "bad.jsonl:1: more than one JSON value"},
        {"\n\n", NULL, "bad.jsonl: no documents"},
    };
    const char *bp = tmp_path("bad.jsonl");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(bp, bad[i].content);
        sq_status st = sq_calib_data_load(&d, bp, SQ_CALIB_JSONL, bad[i].field, tok, true);
        SQ_CHECKF(st == SQ_ERR_FORMAT && strstr(sq_last_error(), bad[i].want), "case %zu: '%s'", i, sq_last_error());
        SQ_CHECK(!strchr(sq_last_error(), '\n') && d.tokens == NULL);
    }
    SQ_CHECK(sq_calib_data_load(&d, tmp_path("nope.txt"), SQ_CALIB_TEXT, NULL, tok, true) == SQ_ERR_IO);
    SQ_CHECK(strstr(sq_last_error(), "nope.txt") != NULL);
    sq_tokenizer_free(tok);
    sq_checkpoint_free(&c);
}

/* ===== calib.h5 ===== */

static void check_same_calib(const sq_calib *a, const sq_calib *b) {
    SQ_CHECK(!strcmp(a->model_sha256, b->model_sha256) && !strcmp(a->data_sha256, b->data_sha256));
    SQ_CHECK(!strcmp(a->data_path, b->data_path) && a->data_format == b->data_format);
    SQ_CHECK(a->n_samples == b->n_samples && a->seq_len == b->seq_len && a->seed == b->seed);
    SQ_CHECK(a->n_tokens == b->n_tokens && a->n_layers == b->n_layers && a->n_entries == b->n_entries);
    SQ_CHECK(!strcmp(a->tool_version, b->tool_version) && !strcmp(a->command_line, b->command_line));
    SQ_CHECK(!memcmp(a->windows, b->windows, (size_t)a->n_samples * sizeof *a->windows));
    for (int32_t i = 0; i < a->n_entries && i < b->n_entries; i++) {
        const sq_calib_entry *x = &a->entries[i], *y = &b->entries[i];
        const size_t w = (size_t)x->width;
        SQ_CHECK(!strcmp(x->name, y->name) && !strcmp(x->users, y->users) && x->width == y->width);
        SQ_CHECK(x->layer == y->layer && x->point == y->point && x->n_tokens == y->n_tokens);
        if (x->width != y->width) continue;
        SQ_CHECK(!memcmp(x->xtx, y->xtx, w * w * 8) && !memcmp(x->abs_sum, y->abs_sum, w * 8) &&
                 !memcmp(x->sq_sum, y->sq_sum, w * 8));
    }
}

/* A model wide enough that X^T X of the FFN input goes through the threaded path. */
static sq_tiny_spec wide_spec(void) {
    sq_tiny_spec sp = sq_tiny_spec_default();
    sp.dim = 128;
    sp.hidden_dim = 346; /* 86.5 panels: an odd, ragged last one */
    sp.n_layers = 1;
    sp.max_seq_len = 256;
    return sp;
}

SQ_TEST(store_deterministic_and_roundtrip) {
    sq_tiny_spec sp = wide_spec();
    fixture f;
    if (!fixture_init(&f, &sp, 4000, "wide.txt")) {
        fixture_free(&f);
        return;
    }
    const int32_t L = 256;
    const char *p1 = tmp_path("t1.h5"), *p2 = tmp_path("t2.h5"), *p3 = tmp_path("t3.h5");
    sq_calib c1 = {0}, c2 = {0}, c3 = {0}, rd = {0};
    sq_set_num_threads(1);
    bool ok = calibrate(&f, 3, L, 5, &c1);
    sq_set_num_threads(2);
    ok = ok && calibrate(&f, 3, L, 5, &c2);
    ok = ok && calibrate(&f, 3, L, 5, &c3);
    sq_set_num_threads(0);
    if (ok) {
        SQ_CHECK_OK(sq_calib_write(p1, &c1));
        SQ_CHECK_OK(sq_calib_write(p2, &c2));
        SQ_CHECK_OK(sq_calib_write(p3, &c3));
        SQ_CHECK(same_file(p1, p2)); /* 1 vs 2 threads */
        SQ_CHECK(same_file(p2, p3)); /* two runs */
        SQ_CHECK(access(p1, F_OK) == 0);
        SQ_CHECK_OK(sq_calib_read(p1, &rd));
        check_same_calib(&c1, &rd);
        SQ_CHECK_OK(sq_calib_check_config(&rd, &f.m->cfg));
        SQ_CHECK_OK(sq_calib_check_model(&rd, c1.model_sha256));
        char other[65];
        memset(other, 'b', 64), other[64] = '\0';
        SQ_CHECK(sq_calib_check_model(&rd, other) == SQ_ERR_ARG);
        SQ_CHECK(strstr(sq_last_error(), other) && strstr(sq_last_error(), c1.model_sha256));
        sq_config cfg = f.m->cfg;
        cfg.hidden_dim += 2;
        SQ_CHECK(sq_calib_check_config(&rd, &cfg) == SQ_ERR_ARG);
        /* rewriting what was read gives the same bytes */
        SQ_CHECK_OK(sq_calib_write(p3, &rd));
        SQ_CHECK(same_file(p1, p3));
        /* jsonl provenance (data_field) round-trips too */
        rd.data_format = SQ_CALIB_JSONL;
        rd.data_field = sq_strdup("content");
        SQ_CHECK_OK(sq_calib_write(p3, &rd));
        sq_calib back;
        SQ_CHECK_OK(sq_calib_read(p3, &back));
        SQ_CHECK(back.data_format == SQ_CALIB_JSONL && back.data_field && !strcmp(back.data_field, "content"));
        sq_calib_free(&back);
    }
    sq_calib_free(&c1), sq_calib_free(&c2), sq_calib_free(&c3), sq_calib_free(&rd);
    fixture_free(&f);
}

/* Sets attribute `name` of `obj` in an existing file to an int32. */
static void poke_attr_i32(const char *path, const char *obj, const char *name, int32_t v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), o = H5Oopen(f, obj, H5P_DEFAULT);
    H5Adelete(o, name);
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(o, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT32, &v);
    H5Aclose(a), H5Sclose(sp), H5Oclose(o), H5Fclose(f);
}

/* Overwrites element (i, j) of /calib/<entry>/xtx. */
static void poke_xtx(const char *path, const char *entry, int32_t w, int32_t i, int32_t j, double v) {
    char name[256];
    snprintf(name, sizeof name, "/calib/%s/xtx", entry);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, name, H5P_DEFAULT);
    double *buf = malloc((size_t)w * w * sizeof(double));
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    buf[(size_t)i * w + j] = v;
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    free(buf);
    H5Dclose(d), H5Fclose(f);
}

static void copy_file(const char *from, const char *to, size_t max) {
    char *buf = NULL;
    size_t n = 0;
    if (sq_read_file(from, (size_t)1 << 30, &buf, &n)) return;
    FILE *fp = fopen(to, "wb");
    fwrite(buf, 1, n < max ? n : max, fp);
    fclose(fp);
    free(buf);
}

SQ_TEST(hostile_files_refused) {
    sq_tiny_spec sp = sq_tiny_spec_default();
    fixture f;
    if (!fixture_init(&f, &sp, 1500, "hostile.txt")) {
        fixture_free(&f);
        return;
    }
    sq_calib c;
    if (!calibrate(&f, 2, 32, 1, &c)) {
        sq_calib_free(&c);
        fixture_free(&f);
        return;
    }
    const char *good = tmp_path("good.h5"), *bad = tmp_path("bad.h5");
    SQ_CHECK_OK(sq_calib_write(good, &c));
    char *bytes = NULL;
    size_t size = 0;
    SQ_CHECK_OK(sq_read_file(good, (size_t)1 << 30, &bytes, &size));
    free(bytes);
    sq_calib r;
    const size_t cuts[] = {0, 7, 512, size / 3, size / 2, size - 8};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        copy_file(good, bad, cuts[k]);
        sq_status st = sq_calib_read(bad, &r);
        SQ_CHECKF(st != SQ_OK, "truncated to %zu bytes was accepted", cuts[k]);
        SQ_CHECKF(strstr(sq_last_error(), "bad.h5") && !strchr(sq_last_error(), '\n'), "cut %zu: '%s'", cuts[k],
                  sq_last_error());
        SQ_CHECK(r.entries == NULL && r.windows == NULL);
    }
    /* not a calibration file: a text file, a model store */
    SQ_CHECK(sq_calib_read(f.data_path, &r) == SQ_ERR_FORMAT);
    const char *store = tmp_path("model.h5");
    SQ_CHECK_OK(sq_store_write(store, &f.c));
    SQ_CHECK(sq_calib_read(store, &r) == SQ_ERR_FORMAT && strstr(sq_last_error(), "not a squish calibration file"));
    /* edited attributes and values */
    copy_file(good, bad, SIZE_MAX);
    poke_attr_i32(bad, "/", "format_version", 2);
    SQ_CHECK(sq_calib_read(bad, &r) == SQ_ERR_UNSUPPORTED && strstr(sq_last_error(), "format_version 2"));
    copy_file(good, bad, SIZE_MAX);
    poke_attr_i32(bad, "/calib/model.layers.1.mlp.down_proj", "n_tokens", 5);
    SQ_CHECK(sq_calib_read(bad, &r) == SQ_ERR_FORMAT && strstr(sq_last_error(), "n_tokens is 5"));
    copy_file(good, bad, SIZE_MAX);
    poke_attr_i32(bad, "/", "seq_len", 100000);
    SQ_CHECK(sq_calib_read(bad, &r) == SQ_ERR_FORMAT);
    copy_file(good, bad, SIZE_MAX);
    poke_xtx(bad, "model.layers.0.mlp.gate_proj", sp.dim, 1, 2, 1e30);
    SQ_CHECK(sq_calib_read(bad, &r) == SQ_ERR_FORMAT && strstr(sq_last_error(), "xtx[1,2]"));
    copy_file(good, bad, SIZE_MAX);
    poke_xtx(bad, "model.layers.0.self_attn.o_proj", sp.dim, 3, 3, NAN);
    SQ_CHECK(sq_calib_read(bad, &r) == SQ_ERR_FORMAT);
    SQ_CHECK(sq_calib_read(tmp_path("absent.h5"), &r) == SQ_ERR_IO);
    /* a missing output directory leaves nothing behind */
    SQ_CHECK(sq_calib_write(tmp_path("no/such/dir/c.h5"), &c) != SQ_OK);
    SQ_CHECK(strstr(sq_last_error(), "c.h5") != NULL);
    sq_calib_free(&c);
    fixture_free(&f);
}

/* ===== imatrix and the model hash ===== */

static int32_t rd_i32(const uint8_t **p) {
    int32_t v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}

SQ_TEST(imatrix_byte_layout) {
    sq_tiny_spec sp = sq_tiny_spec_default();
    fixture f;
    if (!fixture_init(&f, &sp, 1500, "imatrix.txt")) {
        fixture_free(&f);
        return;
    }
    sq_calib c;
    if (!calibrate(&f, 3, 40, 2, &c)) {
        sq_calib_free(&c);
        fixture_free(&f);
        return;
    }
    const char *path = tmp_path("imatrix.dat");
    SQ_CHECK_OK(sq_calib_write_imatrix(path, &c));
    char *buf = NULL;
    size_t n = 0;
    SQ_CHECK_OK(sq_read_file(path, (size_t)1 << 30, &buf, &n));
    if (!buf) {
        sq_calib_free(&c);
        fixture_free(&f);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf, *end = p + n;
    static const char *const gguf[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    static const sq_capture_point pts[7] = {SQ_CAPTURE_ATTN_IN,   SQ_CAPTURE_ATTN_IN, SQ_CAPTURE_ATTN_IN,
                                            SQ_CAPTURE_ATTN_O_IN, SQ_CAPTURE_FFN_IN,  SQ_CAPTURE_FFN_IN,
                                            SQ_CAPTURE_FFN_DOWN_IN};
    SQ_CHECK(rd_i32(&p) == 7 * sp.n_layers);
    size_t expect = 4;
    for (int32_t l = 0; l < sp.n_layers; l++)
        for (int k = 0; k < 7; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, gguf[k]);
            const sq_calib_entry *e = sq_calib_entry_at(&c, l, pts[k]);
            expect += 4 + strlen(name) + 8 + 4 * (size_t)e->width;
            if (expect > n) {
                SQ_CHECK(0);
                goto out;
            }
            int32_t len = rd_i32(&p);
            SQ_CHECK(len == (int32_t)strlen(name) && !memcmp(p, name, strlen(name)));
            p += len;
            SQ_CHECK(rd_i32(&p) == 3);        /* ncall = windows */
            SQ_CHECK(rd_i32(&p) == e->width); /* nval */
            for (int32_t j = 0; j < e->width; j++) {
                float v;
                memcpy(&v, p + 4 * j, 4);
                /* llama-quantize divides by ncall: mean of x^2 over the 120 tokens */
                SQ_CHECK_CLOSE(v / 3.0, e->sq_sum[j] / 120.0, 1e-6, 0);
            }
            p += 4 * (size_t)e->width;
        }
    SQ_CHECK(rd_i32(&p) == 3); /* last_call */
    SQ_CHECK(rd_i32(&p) == (int32_t)strlen("calib.txt"));
    SQ_CHECK(end - p == 9 && !memcmp(p, "calib.txt", 9));
out:
    free(buf);
    sq_calib_free(&c);
    fixture_free(&f);
}

SQ_TEST(model_hash) {
    sq_tiny_spec sp = sq_tiny_spec_default();
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&sp, &c));
    const char *dir = tmp_path("hf"), *store = tmp_path("hash.h5");
    SQ_CHECK_OK(sq_tiny_mkdir(dir));
    SQ_CHECK_OK(sq_tiny_write_hf(&c, dir, 2)); /* two shards + index */
    SQ_CHECK_OK(sq_store_write(store, &c));
    char a[65], b[65], want[65];
    /* a file: the SHA-256 of its bytes */
    SQ_CHECK_OK(sq_calib_model_sha256(store, NULL, a));
    SQ_CHECK_OK(sq_sha256_file(store, want, NULL));
    SQ_CHECK(!strcmp(a, want));
    /* a directory: the sha256sum-style manifest of config.json and the weight files */
    const char *names[] = {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json"};
    char manifest[1024] = "";
    for (size_t i = 0; i < 4; i++) {
        char path[600], h[65];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (sq_sha256_file(path, h, NULL)) {
            SQ_SKIP("sq_tiny_write_hf wrote other shard names");
        }
        snprintf(manifest + strlen(manifest), sizeof manifest - strlen(manifest), "%s  %s\n", h, names[i]);
    }
    sq_sha256_buf(manifest, strlen(manifest), want);
    SQ_CHECK_OK(sq_calib_model_sha256(dir, NULL, a));
    SQ_CHECK(!strcmp(a, want));
    sq_checkpoint imp;
    SQ_CHECK_OK(sq_import_any(dir, NULL, &imp));
    SQ_CHECK_OK(sq_calib_model_sha256(dir, &imp, b)); /* reusing the importer's hashes */
    SQ_CHECK(!strcmp(a, b));
    char shard[600];
    snprintf(shard, sizeof shard, "%s/%s", dir, names[1]);
    SQ_CHECK_OK(sq_calib_model_sha256(shard, NULL, b)); /* a .safetensors file stands for its directory */
    SQ_CHECK(!strcmp(a, b));
    sq_checkpoint_free(&imp);
    sq_checkpoint_free(&c);
}

int main(void) {
    SQ_RUN(stats_match_naive_capture);
    SQ_RUN(panel_kernel_bitwise);
    SQ_RUN(splitmix64_and_sampler);
    SQ_RUN(data_text_and_jsonl);
    SQ_RUN(store_deterministic_and_roundtrip);
    SQ_RUN(hostile_files_refused);
    SQ_RUN(imatrix_byte_layout);
    SQ_RUN(model_hash);
    return sq_test_summary();
}
