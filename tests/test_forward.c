/* test_forward.c - the forward pass against references:
 *  - stories260K (llama2.c, interleaved RoPE, tied head): logits after BOS and mean NLL
 *    against REFERENCE_OUTPUTS.json (an independent fp64 re-implementation of run.c), the
 *    greedy 255-token continuation text;
 *  - gutenberg-7m (HF layout, F16 safetensors, untied): prompt logits and greedy 64 ids
 *    against REFERENCE_OUTPUTS.json (PyTorch);
 *  - tiny random models of every supported shape option against a naive double-precision
 *    forward written here from the HF LlamaForCausalLM definition (GQA, biases, tied or
 *    untied, both RoPE layouts, F16/BF16 weights, llama3/linear RoPE scaling, custom
 *    head_dim);
 *  - batched prefill equals token-by-token decode; results are bitwise identical at 1 and
 *    2 threads; a runnable file gives bitwise the same logits as the in-memory model.
 */
#include "../runtime/model.h"
#include "../runtime/sampler.h"
#include "../runtime/tokenizer.h"
#include "test.h"
#include "tinymodel.h"

/* ===== Naive double-precision reference ===== */

static double *tensor_f64(const sq_checkpoint *c, const char *name) {
    const sq_tensor *t = sq_checkpoint_find(c, name);
    if (!t) return NULL;
    int64_t n = sq_tensor_numel(t);
    float *f = malloc((size_t)n * sizeof(float));
    double *d = malloc((size_t)n * sizeof(double));
    sq_convert_rows(f, SQ_TYPE_F32, t->data, t->type, n);
    for (int64_t i = 0; i < n; i++) d[i] = f[i];
    free(f);
    return d;
}

/* y[r] = sum_c W[r,c] x[c] (+ b[r]) */
static void ref_linear(double *y, const double *W, const double *b, const double *x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        double s = b ? b[r] : 0.0;
        for (int64_t c = 0; c < cols; c++) s += W[r * cols + c] * x[c];
        y[r] = s;
    }
}

static void ref_rmsnorm(double *y, const double *x, const double *w, int64_t d, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / (double)d + eps);
    for (int64_t i = 0; i < d; i++) y[i] = x[i] * s * w[i];
}

static double ref_inv_freq(const sq_config *c, int32_t i) {
    double f = 1.0 / pow(c->rope_theta, 2.0 * i / c->head_dim);
    if (c->rope_scaling == SQ_ROPE_SCALING_LINEAR) return f / c->rope_factor;
    if (c->rope_scaling == SQ_ROPE_SCALING_LLAMA3) { /* FORMATS.md 2, as llama.cpp's converter */
        double lam = 2 * M_PI / f, orig = c->rope_orig_ctx;
        if (lam < orig / c->rope_high_freq_factor) return f;
        if (lam > orig / c->rope_low_freq_factor) return f / c->rope_factor;
        double sm = (orig / lam - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
        return f * ((1 - sm) / c->rope_factor + sm);
    }
    return f;
}

static void ref_rope(double *v, const sq_config *c, int32_t pos) {
    int32_t d = c->head_dim;
    for (int32_t i = 0; i < d / 2; i++) {
        double a = pos * ref_inv_freq(c, i), cs = cos(a), sn = sin(a);
        int32_t i0 = c->rope_layout == SQ_ROPE_HALF ? i : 2 * i, i1 = c->rope_layout == SQ_ROPE_HALF ? i + d / 2 : 2 * i + 1;
        double x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * cs - x1 * sn;
        v[i1] = x1 * cs + x0 * sn;
    }
}

/* Logits [n, vocab] for tokens[0..n) from position 0. */
static double *ref_forward(const sq_checkpoint *ck, const int32_t *tokens, int32_t n) {
    const sq_config *c = &ck->cfg;
    const int64_t D = c->dim, H = c->hidden_dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    double *emb = tensor_f64(ck, "model.embed_tokens.weight");
    double *x = calloc((size_t)(n * D), sizeof(double)), *xn = malloc((size_t)D * sizeof(double));
    double *K = malloc((size_t)(n * kvd) * sizeof(double)), *V = malloc((size_t)(n * kvd) * sizeof(double));
    double *q = malloc((size_t)(n * qd) * sizeof(double)), *att = malloc((size_t)qd * sizeof(double));
    double *tmp = malloc((size_t)D * sizeof(double)), *g = malloc((size_t)H * sizeof(double)),
           *u = malloc((size_t)H * sizeof(double)), *sc = malloc((size_t)n * sizeof(double));
    for (int32_t t = 0; t < n; t++) memcpy(x + t * D, emb + (int64_t)tokens[t] * D, (size_t)D * sizeof(double));
    char nm[256];
    for (int32_t l = 0; l < c->n_layers; l++) {
#define W(s) (snprintf(nm, sizeof nm, "model.layers.%d." s, l), tensor_f64(ck, nm))
        double *an = W("input_layernorm.weight"), *wq = W("self_attn.q_proj.weight"), *wk = W("self_attn.k_proj.weight"),
               *wv = W("self_attn.v_proj.weight"), *wo = W("self_attn.o_proj.weight"), *bq = W("self_attn.q_proj.bias"),
               *bk = W("self_attn.k_proj.bias"), *bv = W("self_attn.v_proj.bias"), *bo = W("self_attn.o_proj.bias"),
               *fn = W("post_attention_layernorm.weight"), *wg = W("mlp.gate_proj.weight"),
               *wu = W("mlp.up_proj.weight"), *wd = W("mlp.down_proj.weight"), *bg = W("mlp.gate_proj.bias"),
               *bu = W("mlp.up_proj.bias"), *bd = W("mlp.down_proj.bias");
#undef W
        for (int32_t t = 0; t < n; t++) {
            ref_rmsnorm(xn, x + t * D, an, D, c->norm_eps);
            ref_linear(q + t * qd, wq, bq, xn, qd, D);
            ref_linear(K + t * kvd, wk, bk, xn, kvd, D);
            ref_linear(V + t * kvd, wv, bv, xn, kvd, D);
            for (int32_t h = 0; h < c->n_heads; h++) ref_rope(q + t * qd + h * hd, c, t);
            for (int32_t h = 0; h < c->n_kv_heads; h++) ref_rope(K + t * kvd + h * hd, c, t);
        }
        for (int32_t t = 0; t < n; t++) {
            for (int32_t h = 0; h < c->n_heads; h++) {
                int32_t kh = h / (c->n_heads / c->n_kv_heads);
                double mx = -1e300, sum = 0;
                for (int32_t j = 0; j <= t; j++) {
                    double s = 0;
                    for (int64_t i = 0; i < hd; i++) s += q[t * qd + h * hd + i] * K[j * kvd + kh * hd + i];
                    sc[j] = s / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int32_t j = 0; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double a = 0;
                    for (int32_t j = 0; j <= t; j++) a += sc[j] / sum * V[j * kvd + kh * hd + i];
                    att[h * hd + i] = a;
                }
            }
            ref_linear(tmp, wo, bo, att, D, qd);
            for (int64_t i = 0; i < D; i++) x[t * D + i] += tmp[i];
        }
        for (int32_t t = 0; t < n; t++) {
            ref_rmsnorm(xn, x + t * D, fn, D, c->norm_eps);
            ref_linear(g, wg, bg, xn, H, D);
            ref_linear(u, wu, bu, xn, H, D);
            for (int64_t i = 0; i < H; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_linear(tmp, wd, bd, g, D, H);
            for (int64_t i = 0; i < D; i++) x[t * D + i] += tmp[i];
        }
        free(an), free(wq), free(wk), free(wv), free(wo), free(bq), free(bk), free(bv), free(bo), free(fn), free(wg),
            free(wu), free(wd), free(bg), free(bu), free(bd);
    }
    double *on = tensor_f64(ck, "model.norm.weight");
    double *head = c->tied_embeddings ? emb : tensor_f64(ck, "lm_head.weight");
    double *logits = malloc((size_t)n * c->vocab_size * sizeof(double));
    for (int32_t t = 0; t < n; t++) {
        ref_rmsnorm(xn, x + t * D, on, D, c->norm_eps);
        ref_linear(logits + (int64_t)t * c->vocab_size, head, NULL, xn, c->vocab_size, D);
    }
    if (head != emb) free(head);
    free(on), free(emb), free(x), free(xn), free(K), free(V), free(q), free(att), free(tmp), free(g), free(u), free(sc);
    return logits;
}

/* ===== Helpers ===== */

/* A model that borrows the checkpoint's tensors and vocab. */
static sq_model *model_of(sq_checkpoint *c) {
    sq_model *m = NULL;
    sq_status st = sq_model_from_tensors(&m, &c->cfg, &c->vocab, c->tensors, c->n_tensors, false);
    if (st) printf("  model: %s\n", sq_last_error());
    return m;
}

/* Logits of all n tokens (fed in batches of `batch`), malloc'ed. */
static float *run_logits(sq_model *m, const int32_t *tokens, int32_t n, int32_t batch) {
    sq_state *s = NULL;
    if (sq_state_init(&s, m, n, batch)) return NULL;
    float *lg = malloc((size_t)n * m->cfg.vocab_size * sizeof(float));
    if (sq_forward(s, tokens, n, 0, lg)) {
        free(lg);
        lg = NULL;
    }
    sq_state_free(s);
    return lg;
}

static double max_abs_diff_fd(const float *a, const double *b, int64_t n, double *scale) {
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    *scale = s;
    return m;
}

/* ===== Tiny models against the naive reference ===== */

static void check_spec(const char *what, sq_tiny_spec s, double tol) {
    sq_checkpoint c;
    if (sq_tiny_checkpoint(&s, &c)) {
        printf("  %s: %s\n", what, sq_last_error());
        SQ_CHECK(0);
        return;
    }
    if (!strcmp(what, "llama3-scaling")) {
        c.cfg.rope_scaling = SQ_ROPE_SCALING_LLAMA3;
        c.cfg.rope_factor = 8;
        c.cfg.rope_low_freq_factor = 1;
        c.cfg.rope_high_freq_factor = 4;
        c.cfg.rope_orig_ctx = 16;
    } else if (!strcmp(what, "linear-scaling")) {
        c.cfg.rope_scaling = SQ_ROPE_SCALING_LINEAR;
        c.cfg.rope_factor = 4;
    }
    int32_t n = 21, toks[21];
    uint64_t r = 7;
    for (int32_t i = 0; i < n; i++) toks[i] = (int32_t)(sq_tiny_rand(&r) % (uint64_t)c.cfg.vocab_size);
    sq_model *m = model_of(&c);
    SQ_CHECK(m != NULL);
    if (m) {
        double *ref = ref_forward(&c, toks, n);
        float *got = run_logits(m, toks, n, 8);
        SQ_CHECK(got != NULL);
        if (got) {
            double scale, d = max_abs_diff_fd(got, ref, (int64_t)n * c.cfg.vocab_size, &scale);
            SQ_CHECKF(d <= tol * fmax(scale, 1.0), "%s: max |diff| %.3g (logit scale %.3g)", what, d, scale);
        }
        free(ref);
        free(got);
        sq_model_free(m);
    }
    sq_checkpoint_free(&c);
}

SQ_TEST(tiny_models_match_reference) {
    sq_tiny_spec s = sq_tiny_spec_default();
    check_spec("default-gqa", s, 1e-5);
    s = sq_tiny_spec_default(), s.rope_layout = SQ_ROPE_INTERLEAVED;
    check_spec("interleaved", s, 1e-5);
    s = sq_tiny_spec_default(), s.tied = true;
    check_spec("tied", s, 1e-5);
    s = sq_tiny_spec_default(), s.qkv_bias = true, s.arch = "qwen2", s.rope_theta = 1e6f, s.norm_eps = 1e-6f;
    check_spec("qwen2-bias", s, 1e-5);
    s = sq_tiny_spec_default(), s.o_bias = true, s.mlp_bias = true;
    check_spec("o-mlp-bias", s, 1e-5);
    s = sq_tiny_spec_default(), s.n_heads = 4, s.n_kv_heads = 4;
    check_spec("mha", s, 1e-5);
    s = sq_tiny_spec_default(), s.n_heads = 4, s.n_kv_heads = 1, s.head_dim = 24;
    check_spec("mqa-head-dim", s, 1e-5);
    s = sq_tiny_spec_default(), s.type = SQ_TYPE_F16;
    check_spec("f16", s, 1e-5);
    s = sq_tiny_spec_default(), s.type = SQ_TYPE_BF16;
    check_spec("bf16", s, 1e-5);
    s = sq_tiny_spec_default();
    check_spec("llama3-scaling", s, 1e-5);
    s = sq_tiny_spec_default(), s.rope_layout = SQ_ROPE_INTERLEAVED;
    check_spec("linear-scaling", s, 1e-5);
    s = sq_tiny_spec_default(), s.dim = 88, s.hidden_dim = 172, s.n_heads = 4, s.n_kv_heads = 2; /* head_dim 22 */
    check_spec("ragged-widths", s, 1e-5);
}

/* The same function stored in either RoPE layout gives the same logits (FORMATS.md 3). */
SQ_TEST(rope_layouts_equivalent) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint c, d = {0};
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    d.cfg = c.cfg;
    d.cfg.rope_layout = SQ_ROPE_INTERLEAVED;
    SQ_CHECK_OK(sq_vocab_copy(&d.vocab, &c.vocab));
    for (int32_t i = 0; i < c.n_tensors; i++) {
        sq_tensor t;
        SQ_CHECK_OK(sq_tiny_copy_for_layout(&c, &c.tensors[i], SQ_ROPE_INTERLEAVED, &t));
        SQ_CHECK_OK(sq_checkpoint_add(&d, &t));
    }
    int32_t toks[17];
    for (int32_t i = 0; i < 17; i++) toks[i] = (i * 37 + 5) % c.cfg.vocab_size;
    sq_model *a = model_of(&c), *b = model_of(&d);
    SQ_CHECK(a && b);
    if (a && b) {
        float *la = run_logits(a, toks, 17, 17), *lb = run_logits(b, toks, 17, 17);
        double m = 0;
        for (int64_t i = 0; i < 17LL * c.cfg.vocab_size; i++) m = fmax(m, fabs(la[i] - lb[i]));
        SQ_CHECKF(m < 1e-4, "max diff %g", m);
        free(la);
        free(lb);
    }
    sq_model_free(a);
    sq_model_free(b);
    sq_checkpoint_free(&c);
    sq_checkpoint_free(&d);
}

/* Prefill in one batch, in uneven batches and one token at a time agree; 1 and 2 threads
 * agree bitwise; the runnable file gives bitwise the same logits as the memory model. */
SQ_TEST(batching_threads_and_file) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.type = SQ_TYPE_F16;
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    int32_t n = 40, toks[40];
    for (int32_t i = 0; i < n; i++) toks[i] = (i * 53 + 11) % c.cfg.vocab_size;
    sq_model *m = model_of(&c);
    SQ_CHECK(m != NULL);
    if (!m) return;
    const int64_t nl = (int64_t)n * c.cfg.vocab_size;
    float *all = run_logits(m, toks, n, 64), *b7 = run_logits(m, toks, n, 7), *b1 = run_logits(m, toks, n, 1);
    double d7 = 0, d1 = 0;
    for (int64_t i = 0; i < nl; i++) {
        d7 = fmax(d7, fabs(all[i] - b7[i]));
        d1 = fmax(d1, fabs(all[i] - b1[i]));
    }
    SQ_CHECKF(d7 < 1e-4 && d1 < 1e-4, "batch 7: %g, batch 1: %g", d7, d1);

    sq_set_num_threads(1);
    float *t1 = run_logits(m, toks, n, 64);
    sq_set_num_threads(2);
    float *t2 = run_logits(m, toks, n, 64);
    SQ_CHECK(memcmp(t1, t2, (size_t)nl * sizeof(float)) == 0);

    char path[512];
    snprintf(path, sizeof path, "%s/fwd.sqz", sq_test_tmpdir());
    SQ_CHECK_OK(sq_sqz_write(path, &c.cfg, &c.vocab, c.tensors, c.n_tensors, NULL, 0));
    sq_model *f = NULL;
    SQ_CHECK_OK(sq_model_open(&f, path, true));
    if (f) {
        float *lf = run_logits(f, toks, n, 64);
        SQ_CHECK(lf && memcmp(lf, t2, (size_t)nl * sizeof(float)) == 0);
        free(lf);
        sq_model_free(f);
    }
    /* only some logits: first_logit in the middle of the second batch */
    sq_state *st = NULL;
    SQ_CHECK_OK(sq_state_init(&st, m, n, 16));
    float *part = malloc((size_t)(n - 20) * c.cfg.vocab_size * sizeof(float));
    SQ_CHECK_OK(sq_forward(st, toks, n, 20, part));
    double dp = 0;
    for (int64_t i = 0; i < (int64_t)(n - 20) * c.cfg.vocab_size; i++)
        dp = fmax(dp, fabs(part[i] - all[20LL * c.cfg.vocab_size + i]));
    SQ_CHECKF(dp < 1e-4, "partial logits differ by %g", dp);
    /* overflow and bad ids are errors, not crashes */
    SQ_CHECK(sq_forward(st, toks, 1, 0, part) == SQ_ERR_ARG);
    sq_state_reset(st);
    int32_t bad = c.cfg.vocab_size;
    SQ_CHECK(sq_forward(st, &bad, 1, 0, part) == SQ_ERR_ARG);
    sq_state_free(st);
    free(part);
    free(all), free(b7), free(b1), free(t1), free(t2);
    sq_model_free(m);
    sq_checkpoint_free(&c);
}

/* Embedding, every block, then the head, one stage at a time, give sq_forward's logits
 * bit for bit (sequential quantization relies on this). */
SQ_TEST(blockwise_equals_forward) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.qkv_bias = true;
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    sq_model *m = model_of(&c);
    if (!m) return;
    const int32_t n = 40, V = c.cfg.vocab_size, D = c.cfg.dim;
    int32_t toks[40];
    for (int32_t i = 0; i < n; i++) toks[i] = (i * 29 + 3) % V;
    float *want = run_logits(m, toks, n, 16);
    sq_state *st = NULL;
    SQ_CHECK_OK(sq_state_init(&st, m, n, 16));
    float *x = malloc((size_t)n * D * sizeof(float)), *got = malloc((size_t)n * V * sizeof(float));
    SQ_CHECK_OK(sq_forward_embed(st, toks, n, x));
    for (int32_t l = 0; l < c.cfg.n_layers; l++) SQ_CHECK_OK(sq_forward_block(st, l, x, n));
    SQ_CHECK_OK(sq_forward_head(st, x, n, got));
    SQ_CHECK(memcmp(got, want, (size_t)n * V * sizeof(float)) == 0);
    SQ_CHECK(sq_forward_block(st, c.cfg.n_layers, x, n) == SQ_ERR_ARG);
    free(x), free(got), free(want);
    sq_state_free(st);
    sq_model_free(m);
    sq_checkpoint_free(&c);
}

/* ===== Real models ===== */

/* Reads the numbers of a JSON array under "key" (first occurrence) into out. */
static int json_array(const char *json, const char *key, double *out, int max) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p || !(p = strchr(p, '['))) return -1;
    int n = 0;
    p++;
    while (n < max) {
        char *end;
        double v = strtod(p, &end);
        if (end == p) break;
        out[n++] = v;
        p = end;
        while (*p == ',' || *p == ' ' || *p == '\n') p++;
    }
    return n;
}

static char *json_string(const char *json, const char *key) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(json, pat);
    if (!p) return NULL;
    p += strlen(pat);
    char *o = malloc(strlen(p) + 1), *q = o;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\') {
            p++;
            *q++ = *p == 'n' ? '\n' : *p;
        } else {
            *q++ = *p;
        }
    }
    *q = '\0';
    return o;
}

SQ_TEST(stories260k_reference) {
    const char *bin = sq_test_shared_path("models/stories260K/stories260K.bin");
    const char *refp = sq_test_shared_path("models/stories260K/REFERENCE_OUTPUTS.json");
    if (!bin || !refp) SQ_SKIP("../shared/models/stories260K not found");
    char *json;
    size_t jl;
    SQ_CHECK_OK(sq_read_file(refp, 1 << 20, &json, &jl));
    sq_checkpoint c;
    SQ_CHECK_OK(sq_import_llama2c(bin, NULL, &c));
    sq_model *m = model_of(&c);
    SQ_CHECK(m != NULL);
    if (!m) return;
    const int32_t V = c.cfg.vocab_size;
    /* logits after BOS */
    double ref8[8];
    SQ_CHECK(json_array(json, "logits_after_BOS_first8", ref8, 8) == 8);
    int32_t bos = 1;
    float *lg = run_logits(m, &bos, 1, 1);
    for (int i = 0; i < 8; i++) SQ_CHECK_CLOSE(lg[i], ref8[i], 0, 1e-4);
    SQ_CHECK(sq_argmax(lg, V) == 403);
    free(lg);

    /* greedy 255 tokens from BOS, decoded, equals the reference text */
    sq_tokenizer *tok = NULL;
    SQ_CHECK_OK(sq_tokenizer_init(&tok, &c.vocab));
    sq_state *s = NULL;
    SQ_CHECK_OK(sq_state_init(&s, m, 256, 1));
    float *l1 = malloc((size_t)V * sizeof(float));
    int32_t ids[256];
    ids[0] = 1;
    size_t tl = 0;
    char *text = calloc(1, 65536);
    SQ_CHECK_OK(sq_forward(s, ids, 1, 0, l1));
    for (int i = 1; i < 256; i++) {
        ids[i] = sq_argmax(l1, V);
        if (ids[i] == 1 || ids[i] == 2) break;
        int k = sq_tokenizer_decode_piece(tok, ids[i - 1], ids[i], text + tl, 65536 - tl - 1);
        tl += (size_t)(k > 0 ? k : 0);
        if (i < 255) SQ_CHECK_OK(sq_forward(s, &ids[i], 1, 0, l1));
    }
    char *want = json_string(json, "greedy_from_BOS_text");
    SQ_CHECK(want != NULL);
    if (want) SQ_CHECKF(strcmp(text, want) == 0, "got:\n%s\nwant:\n%s", text, want);
    free(want);
    free(text);
    free(l1);
    sq_state_free(s);

    /* mean NLL over the 511 predictions of the tinystories prefix (4000 chars, 512 tokens) */
    const char *val = sq_test_shared_path("data/tinystories/tinystories_val.txt");
    if (val) {
        char *txt;
        size_t n;
        SQ_CHECK_OK(sq_read_file(val, 1 << 24, &txt, &n));
        int32_t *t = NULL, nt = 0;
        SQ_CHECK_OK(sq_tokenizer_encode(tok, txt, 4000, true, false, &t, &nt));
        SQ_CHECK(nt >= 512);
        if (nt >= 512) {
            float *all = run_logits(m, t, 512, 512);
            double nll = 0;
            for (int i = 0; i < 511; i++) {
                const float *r = all + (size_t)i * V;
                float mx = r[sq_argmax(r, V)];
                double z = 0;
                for (int j = 0; j < V; j++) z += exp((double)r[j] - mx);
                nll += mx + log(z) - r[t[i + 1]];
            }
            const char *sect = strstr(json, "tinystories_val_prefix");
            const char *p = sect ? strstr(sect, "\"mean_nll_nats\":") : NULL;
            SQ_CHECK(p != NULL);
            if (p) SQ_CHECK_CLOSE(nll / 511, strtod(p + 16, NULL), 0, 1e-4);
            free(all);
        }
        free(t);
        free(txt);
    }
    sq_tokenizer_free(tok);
    sq_model_free(m);
    sq_checkpoint_free(&c);
    free(json);
}

SQ_TEST(gutenberg_reference) {
    const char *dir = sq_test_shared_path("models/gutenberg-7m");
    const char *refp = sq_test_shared_path("models/gutenberg-7m/REFERENCE_OUTPUTS.json");
    if (!dir || !refp) SQ_SKIP("../shared/models/gutenberg-7m not found");
    char *json;
    size_t jl;
    SQ_CHECK_OK(sq_read_file(refp, 1 << 20, &json, &jl));
    sq_checkpoint c;
    SQ_CHECK_OK(sq_import_hf(dir, &c));
    sq_model *m = model_of(&c);
    SQ_CHECK(m != NULL);
    if (!m) return;
    const int32_t V = c.cfg.vocab_size;
    double pid[16], ref8[8], greedy[64];
    int np = json_array(json, "prompt_ids", pid, 16);
    SQ_CHECK(np == 5);
    SQ_CHECK(json_array(json, "logits_after_prompt_first8", ref8, 8) == 8);
    SQ_CHECK(json_array(json, "greedy_64_ids", greedy, 64) == 64);
    sq_tokenizer *tok = NULL;
    SQ_CHECK_OK(sq_tokenizer_init(&tok, &c.vocab));
    int32_t *ids = NULL, n = 0;
    SQ_CHECK_OK(sq_tokenizer_encode(tok, "Once upon a time", 16, true, false, &ids, &n));
    SQ_CHECK(n == np);
    for (int i = 0; i < n && i < np; i++) SQ_CHECK(ids[i] == (int32_t)pid[i]);
    sq_state *s = NULL;
    SQ_CHECK_OK(sq_state_init(&s, m, 128, 16));
    float *lg = malloc((size_t)V * sizeof(float));
    SQ_CHECK_OK(sq_forward(s, ids, n, n - 1, lg));
    for (int i = 0; i < 8; i++) SQ_CHECK_CLOSE(lg[i], ref8[i], 0, 2e-4);
    int ok = 1;
    for (int i = 0; i < 64; i++) {
        int32_t next = sq_argmax(lg, V);
        if (next != (int32_t)greedy[i]) {
            printf("  greedy token %d: got %d, want %d\n", i, next, (int)greedy[i]);
            ok = 0;
            break;
        }
        SQ_CHECK_OK(sq_forward(s, &next, 1, 0, lg));
    }
    SQ_CHECK(ok);
    free(lg);
    free(ids);
    sq_state_free(s);
    sq_tokenizer_free(tok);
    sq_model_free(m);
    sq_checkpoint_free(&c);
    free(json);
}

int main(void) {
    SQ_RUN(tiny_models_match_reference);
    SQ_RUN(rope_layouts_equivalent);
    SQ_RUN(batching_threads_and_file);
    SQ_RUN(blockwise_equals_forward);
    SQ_RUN(stories260k_reference);
    SQ_RUN(gutenberg_reference);
    return sq_test_summary();
}
