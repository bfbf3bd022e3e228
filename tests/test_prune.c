/* test_prune.c - the pruning library (prune/prune.h, docs/pruning.md) against references:
 *   patterns     N:M = N kept of M (ALGORITHMS.md 7); 3:2, 0:4, 4:4, sparsity >= 1 refused;
 *   counts       magnitude: floor(p * numel) zeros per matrix, all with |w| <= every kept |w|;
 *                Wanda: floor(p * cols) per row, lowest |w| * sqrt(sum x^2) (arXiv:2306.11695);
 *                SparseGPT: floor(p * rows * 128) per 128-column block; N:M: exactly N nonzero
 *                in every group of every row, for all three methods;
 *   SparseGPT    with a diagonal Hessian the OBS updates vanish (U is diagonal), so SparseGPT
 *                must equal per-block magnitude selection with the kept weights untouched;
 *   paper claim  on a layer whose inputs have outlier channels, Wanda and SparseGPT leave a
 *                smaller output error ||(W - W')X^T|| than magnitude at 50% and 2:4, and
 *                SparseGPT (which updates weights) the smallest (arXiv:2301.00774, 2306.11695);
 *   joint        pruned weights of joint SparseGPT + 4-bit decode to exactly 0;
 *   structured   the shrunk model's logits equal those of the dense model with the same
 *                units zeroed, the units chosen by the documented magnitude score (a
 *                transcription), and the config is updated;
 *   threads      identical bits at 1 and 2 threads;
 *   export       pruned, exported as sparse types (docs/sparse-format.md) and decoded from
 *                the .sqz, the weights are exactly the original ones times the mask.
 */
#include "../prune/prune.h"
#include "../runtime/sqz.h"
#include "test.h"
#include "tinymodel.h"

static void fill(float *w, int64_t n, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) w[i] = 2.0f * sq_tiny_uniform(&s) - 1.0f;
}

/* x [n x cols] with a few outlier channels (x20), as LLM activations have (Wanda 3.1). */
static float *inputs(int64_t n, int64_t cols, uint64_t seed) {
    float *x = malloc((size_t)(n * cols) * sizeof *x);
    fill(x, n * cols, seed);
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < cols; c += 17) x[t * cols + c] *= 20.0f;
    return x;
}

static double *xtx_of(const float *x, int64_t n, int64_t cols) {
    double *a = calloc((size_t)(cols * cols), sizeof *a);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < cols; i++)
            for (int64_t j = 0; j < cols; j++) a[i * cols + j] += (double)x[t * cols + i] * x[t * cols + j];
    return a;
}

/* ||(W - W') X^T||^2 */
static double out_err(const float *w, const float *wp, const float *x, int64_t rows, int64_t cols, int64_t n) {
    double e = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t t = 0; t < n; t++) {
            double s = 0;
            for (int64_t c = 0; c < cols; c++) s += ((double)w[r * cols + c] - wp[r * cols + c]) * x[t * cols + c];
            e += s * s;
        }
    return e;
}

static int64_t zeros_in(const float *w, int64_t n) {
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += w[i] == 0.0f;
    return z;
}

static bool nm_exact(const float *w, int64_t rows, int64_t cols, int n, int m) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c0 = 0; c0 < cols; c0 += m) {
            int nz = 0;
            for (int j = 0; j < m; j++) nz += w[r * cols + c0 + j] != 0.0f;
            if (nz != n) return false;
        }
    return true;
}

static sq_prune_pattern pat(const char *text, double sp) {
    sq_prune_pattern p;
    if (sq_prune_pattern_parse(&p, text, sp)) printf("  pattern %s: %s\n", text, sq_last_error());
    return p;
}

SQ_TEST(patterns_parse_and_refuse) {
    sq_prune_pattern p;
    SQ_CHECK_OK(sq_prune_pattern_parse(&p, "2:4", -1));
    SQ_CHECK(p.kind == SQ_PAT_NM && p.n == 2 && p.m == 4 && p.sparsity == 0.5);
    SQ_CHECK_OK(sq_prune_pattern_parse(&p, "4:8", 0.5));
    SQ_CHECK_OK(sq_prune_pattern_parse(&p, "1:4", -1));
    SQ_CHECK(p.sparsity == 0.75);
    SQ_CHECK_OK(sq_prune_pattern_parse(&p, "unstructured", 0.0));
    SQ_CHECK_OK(sq_prune_pattern_parse(&p, NULL, 0.7));
    SQ_CHECK(p.kind == SQ_PAT_UNSTRUCTURED && p.sparsity == 0.7);
    SQ_CHECK_OK(sq_prune_pattern_parse(&p, "ffn", 0.25));
    SQ_CHECK(p.kind == SQ_PAT_FFN);
    SQ_CHECK(sq_prune_pattern_parse(&p, "3:2", -1) == SQ_ERR_ARG && strstr(sq_last_error(), "smaller than M"));
    SQ_CHECK(sq_prune_pattern_parse(&p, "4:4", -1) == SQ_ERR_ARG && strstr(sq_last_error(), "prunes nothing"));
    SQ_CHECK(sq_prune_pattern_parse(&p, "0:4", -1) == SQ_ERR_ARG && strstr(sq_last_error(), "at least 1"));
    SQ_CHECK(sq_prune_pattern_parse(&p, "2:4", 0.3) == SQ_ERR_ARG && strstr(sq_last_error(), "contradicts"));
    SQ_CHECK(sq_prune_pattern_parse(&p, "2:", -1) == SQ_ERR_ARG);
    SQ_CHECK(sq_prune_pattern_parse(&p, "a:b", -1) == SQ_ERR_ARG);
    SQ_CHECK(sq_prune_pattern_parse(&p, "2:128", -1) == SQ_ERR_ARG);
    SQ_CHECK(sq_prune_pattern_parse(&p, "unstructured", 1.0) == SQ_ERR_ARG && strstr(sq_last_error(), "below 1"));
    SQ_CHECK(sq_prune_pattern_parse(&p, "unstructured", -1) == SQ_ERR_ARG && strstr(sq_last_error(), "--sparsity"));
    /* a row length M does not divide */
    float w[2 * 6];
    fill(w, 12, 1);
    p = pat("2:4", -1);
    SQ_CHECK(sq_prune_magnitude(w, 2, 6, &p) == SQ_ERR_ARG && strstr(sq_last_error(), "multiple of 4"));
}

SQ_TEST(magnitude_and_wanda_counts) {
    const int64_t rows = 24, cols = 40, n = rows * cols;
    float *w = malloc(n * sizeof *w), *w0 = malloc(n * sizeof *w0);
    double sq[40];
    for (int c = 0; c < cols; c++) sq[c] = 1.0 + (c % 7) * 3.0;
    for (int k = 0; k < 3; k++) {
        const double p = k == 0 ? 0.5 : k == 1 ? 0.3 : 0.77;
        sq_prune_pattern pt = pat("unstructured", p);
        fill(w0, n, 10 + k);
        memcpy(w, w0, n * sizeof *w);
        SQ_CHECK_OK(sq_prune_magnitude(w, rows, cols, &pt));
        SQ_CHECK(zeros_in(w, n) == (int64_t)floor(p * n));
        float max_pruned = 0, min_kept = 1e30f;
        for (int64_t i = 0; i < n; i++) {
            if (w[i] == 0.0f) max_pruned = fmaxf(max_pruned, fabsf(w0[i]));
            else {
                min_kept = fminf(min_kept, fabsf(w0[i]));
                SQ_CHECK(w[i] == w0[i]);
            }
        }
        SQ_CHECK(max_pruned <= min_kept);
        memcpy(w, w0, n * sizeof *w);
        SQ_CHECK_OK(sq_prune_wanda(w, rows, cols, sq, &pt));
        for (int64_t r = 0; r < rows; r++) {
            SQ_CHECK(zeros_in(w + r * cols, cols) == (int64_t)floor(p * cols));
            double mp = 0, mk = 1e300;
            for (int64_t c = 0; c < cols; c++) {
                double s = fabs(w0[r * cols + c]) * sqrt(sq[c]);
                if (w[r * cols + c] == 0.0f) mp = fmax(mp, s);
                else mk = fmin(mk, s);
            }
            SQ_CHECK(mp <= mk);
        }
    }
    for (int k = 0; k < 2; k++) {
        const char *t = k ? "4:8" : "2:4";
        sq_prune_pattern pt = pat(t, -1);
        fill(w, n, 20 + k);
        SQ_CHECK_OK(sq_prune_magnitude(w, rows, cols, &pt));
        SQ_CHECK(nm_exact(w, rows, cols, pt.n, pt.m));
        fill(w, n, 20 + k);
        SQ_CHECK_OK(sq_prune_wanda(w, rows, cols, sq, &pt));
        SQ_CHECK(nm_exact(w, rows, cols, pt.n, pt.m));
    }
    free(w);
    free(w0);
}

static bool hinv_for(sq_gptq_hinv *h, const double *xtx, int64_t cols, int64_t n) {
    sq_gptq_opts go;
    sq_gptq_opts_default(&go);
    go.act_order = false;
    return sq_gptq_hinv_init(h, xtx, cols, n, &go) == SQ_OK;
}

SQ_TEST(sparsegpt_counts_and_nm) {
    const int64_t rows = 20, cols = 320, n = 400; /* 3 blocks: 128, 128, 64 */
    float *x = inputs(n, cols, 5);
    double *xtx = xtx_of(x, n, cols);
    sq_gptq_hinv h;
    SQ_CHECK(hinv_for(&h, xtx, cols, n));
    float *w = malloc(rows * cols * sizeof *w);
    const double ps[2] = {0.5, 0.6};
    for (int k = 0; k < 2; k++) {
        fill(w, rows * cols, 30 + k);
        sq_prune_pattern pt = pat("unstructured", ps[k]);
        sq_sparsegpt_result res;
        SQ_CHECK_OK(sq_sparsegpt(w, NULL, &res, rows, &h, &pt, NULL));
        int64_t total = 0;
        for (int64_t b = 0; b < cols; b += 128) {
            const int64_t kb = b + 128 < cols ? 128 : cols - b;
            int64_t z = 0;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < kb; j++) z += w[r * cols + b + j] == 0.0f;
            SQ_CHECK(z == (int64_t)floor(ps[k] * (double)(rows * kb)));
            total += (int64_t)floor(ps[k] * (double)(rows * kb));
        }
        SQ_CHECK(res.zeros == total);
    }
    for (int k = 0; k < 2; k++) {
        sq_prune_pattern pt = pat(k ? "4:8" : "2:4", -1);
        fill(w, rows * cols, 40 + k);
        SQ_CHECK_OK(sq_sparsegpt(w, NULL, NULL, rows, &h, &pt, NULL));
        SQ_CHECK(nm_exact(w, rows, cols, pt.n, pt.m));
    }
    sq_gptq_hinv_free(&h);
    free(w);
    free(xtx);
    free(x);
}

/* H diagonal: U = diag(1/sqrt(H_jj + lambda)) has no off-diagonal terms, so there are no
 * updates and the saliency is w^2 (H_jj + lambda): per block, the lowest of those go. */
SQ_TEST(sparsegpt_diagonal_hessian_is_block_magnitude) {
    const int64_t rows = 16, cols = 256, N = 100;
    double *xtx = calloc(cols * cols, sizeof *xtx);
    for (int64_t j = 0; j < cols; j++) xtx[j * cols + j] = 50.0 * (1 + j % 5);
    sq_gptq_hinv h;
    SQ_CHECK(hinv_for(&h, xtx, cols, N));
    float *w = malloc(rows * cols * sizeof *w), *w0 = malloc(rows * cols * sizeof *w0);
    fill(w0, rows * cols, 77);
    memcpy(w, w0, rows * cols * sizeof *w);
    sq_prune_pattern pt = pat("unstructured", 0.5);
    SQ_CHECK_OK(sq_sparsegpt(w, NULL, NULL, rows, &h, &pt, NULL));
    const double lambda = h.lambda;
    for (int64_t b = 0; b < cols; b += 128) {
        double mp = 0, mk = 1e300;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = b; j < b + 128; j++) {
                const double hj = 2.0 * xtx[j * cols + j] / N + lambda;
                const double s = (double)w0[r * cols + j] * w0[r * cols + j] * hj;
                if (w[r * cols + j] == 0.0f) mp = fmax(mp, s);
                else {
                    mk = fmin(mk, s);
                    SQ_CHECK(w[r * cols + j] == w0[r * cols + j]);
                }
            }
        SQ_CHECK(mp <= mk * (1 + 1e-6));
    }
    sq_gptq_hinv_free(&h);
    free(w);
    free(w0);
    free(xtx);
}

SQ_TEST(wanda_and_sparsegpt_beat_magnitude) {
    const int64_t rows = 32, cols = 128, n = 512;
    float *x = inputs(n, cols, 9);
    double *xtx = xtx_of(x, n, cols), sq[128];
    for (int64_t c = 0; c < cols; c++) sq[c] = xtx[c * cols + c];
    sq_gptq_hinv h;
    SQ_CHECK(hinv_for(&h, xtx, cols, n));
    float *w0 = malloc(rows * cols * sizeof *w0), *w = malloc(rows * cols * sizeof *w);
    fill(w0, rows * cols, 3);
    for (int k = 0; k < 2; k++) {
        sq_prune_pattern pt = k ? pat("2:4", -1) : pat("unstructured", 0.5);
        double e[3];
        memcpy(w, w0, rows * cols * sizeof *w);
        SQ_CHECK_OK(sq_prune_magnitude(w, rows, cols, &pt));
        e[0] = out_err(w0, w, x, rows, cols, n);
        memcpy(w, w0, rows * cols * sizeof *w);
        SQ_CHECK_OK(sq_prune_wanda(w, rows, cols, sq, &pt));
        e[1] = out_err(w0, w, x, rows, cols, n);
        memcpy(w, w0, rows * cols * sizeof *w);
        SQ_CHECK_OK(sq_sparsegpt(w, NULL, NULL, rows, &h, &pt, NULL));
        e[2] = out_err(w0, w, x, rows, cols, n);
        printf("  %s: output error magnitude %.4g, wanda %.4g, sparsegpt %.4g\n", k ? "2:4" : "50%", e[0], e[1], e[2]);
        SQ_CHECK(e[1] < e[0]);
        SQ_CHECK(e[2] < e[0]);
        SQ_CHECK(e[2] < e[1]);
    }
    sq_gptq_hinv_free(&h);
    free(w0);
    free(w);
    free(xtx);
    free(x);
}

SQ_TEST(joint_quantization_zeros_exact) {
    const int64_t rows = 16, cols = 256, n = 300;
    float *x = inputs(n, cols, 12);
    double *xtx = xtx_of(x, n, cols);
    sq_gptq_hinv h;
    SQ_CHECK(hinv_for(&h, xtx, cols, n));
    float *w = malloc(rows * cols * sizeof *w), *wd = malloc(rows * cols * sizeof *wd),
          *wp = malloc(rows * cols * sizeof *wp);
    for (int k = 0; k < 3; k++) {
        sq_qscheme qs = {.bits = k == 2 ? 3 : 4, .group = k == 1 ? 0 : 64, .asym = k != 0};
        sq_sparsegpt_opts so;
        sq_sparsegpt_opts_default(&so);
        so.quant = &qs;
        sq_prune_pattern pt = pat("2:4", -1);
        fill(w, rows * cols, 50 + k);
        memcpy(wp, w, rows * cols * sizeof *w);
        SQ_CHECK_OK(sq_sparsegpt(wp, NULL, NULL, rows, &h, &pt, NULL)); /* the mask alone, for the count */
        sq_qweight q;
        SQ_CHECK_OK(sq_sparsegpt(w, &q, NULL, rows, &h, &pt, &so));
        SQ_CHECK_OK(sq_qweight_dequant(&q, wd));
        SQ_CHECK(memcmp(w, wd, rows * cols * sizeof *w) == 0); /* w holds what the codes decode to */
        /* every group of 4 has at least 2 exact zeros, and they are the grid's zero code */
        bool ok = true;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c0 = 0; c0 < cols; c0 += 4) {
                int z = 0;
                for (int j = 0; j < 4; j++) {
                    const int64_t i = r * cols + c0 + j;
                    if (wd[i] == 0.0f) {
                        z++;
                        const int64_t g = q.scheme.group ? (c0 + j) / q.scheme.group : 0;
                        ok &= q.codes[i] == sq_qweight_zero(&q, r, g);
                    }
                }
                ok &= z >= 2;
            }
        SQ_CHECK(ok);
        sq_qweight_free(&q);
    }
    sq_gptq_hinv_free(&h);
    free(w);
    free(wd);
    free(wp);
    free(xtx);
    free(x);
}

SQ_TEST(threads_identical) {
    const int64_t rows = 70, cols = 256, n = 300;
    float *x = inputs(n, cols, 14);
    double *xtx = xtx_of(x, n, cols), sq[256];
    for (int64_t c = 0; c < cols; c++) sq[c] = xtx[c * cols + c];
    sq_gptq_hinv h;
    SQ_CHECK(hinv_for(&h, xtx, cols, n));
    float *a = malloc(rows * cols * sizeof *a), *b = malloc(rows * cols * sizeof *b);
    const char *pats[2] = {"unstructured", "2:4"};
    for (int k = 0; k < 4; k++) {
        sq_prune_pattern pt = pat(pats[k % 2], k % 2 ? -1 : 0.55);
        float *out[2] = {a, b};
        for (int t = 0; t < 2; t++) {
            sq_set_num_threads(t + 1);
            fill(out[t], rows * cols, 60);
            if (k < 2) SQ_CHECK_OK(sq_sparsegpt(out[t], NULL, NULL, rows, &h, &pt, NULL));
            else SQ_CHECK_OK(sq_prune_wanda(out[t], rows, cols, sq, &pt));
        }
        SQ_CHECK(memcmp(a, b, rows * cols * sizeof *a) == 0);
    }
    sq_set_num_threads(0);
    sq_gptq_hinv_free(&h);
    free(a);
    free(b);
    free(xtx);
    free(x);
}

/* ===== Structured: shrunk model == masked dense model ===== */

static float *tensor(sq_checkpoint *c, const char *fmt, int l) {
    char nm[SQ_MAX_NAME];
    snprintf(nm, sizeof nm, fmt, l);
    sq_tensor *t = sq_checkpoint_find(c, nm);
    return t ? (float *)t->data : NULL;
}

static bool logits_of(sq_checkpoint *c, const int32_t *tok, int32_t n, float *out) {
    sq_model *m = NULL;
    sq_state *s = NULL;
    bool ok = sq_model_from_tensors(&m, &c->cfg, &c->vocab, c->tensors, c->n_tensors, false) == SQ_OK &&
              sq_state_init(&s, m, n, n) == SQ_OK && sq_forward(s, tok, n, 0, out) == SQ_OK;
    if (!ok) printf("  forward: %s\n", sq_last_error());
    sq_state_free(s);
    sq_model_free(m);
    return ok;
}

/* The documented magnitude unit score, transcribed: FFN channel j = sum |gate[j,:]| +
 * sum |up[j,:]| + sum |down[:,j]|; KV group g = sum |q rows of its query heads| + sum |k, v
 * rows of head g| + sum |o columns of its query heads|; the k lowest go (ties: lower). */
static void zero_lowest_units(sq_checkpoint *c, bool ffn, double p) {
    const sq_config k = c->cfg;
    const int64_t rep = k.n_heads / k.n_kv_heads, hd = k.head_dim, nu = ffn ? k.hidden_dim : k.n_kv_heads;
    const int64_t ndrop = (int64_t)floor(p * (double)nu), q_dim = k.n_heads * hd;
    for (int l = 0; l < k.n_layers; l++) {
        double *s = calloc((size_t)nu, sizeof *s);
        float *rw[3], *cw;
        int64_t span[3], cspan;
        int nr;
        if (ffn) {
            rw[0] = tensor(c, "model.layers.%d.mlp.gate_proj.weight", l);
            rw[1] = tensor(c, "model.layers.%d.mlp.up_proj.weight", l);
            cw = tensor(c, "model.layers.%d.mlp.down_proj.weight", l);
            span[0] = span[1] = cspan = 1;
            nr = 2;
        } else {
            rw[0] = tensor(c, "model.layers.%d.self_attn.q_proj.weight", l);
            rw[1] = tensor(c, "model.layers.%d.self_attn.k_proj.weight", l);
            rw[2] = tensor(c, "model.layers.%d.self_attn.v_proj.weight", l);
            cw = tensor(c, "model.layers.%d.self_attn.o_proj.weight", l);
            span[0] = cspan = rep * hd;
            span[1] = span[2] = hd;
            nr = 3;
        }
        const int64_t ccols = ffn ? k.hidden_dim : q_dim;
        for (int i = 0; i < nr; i++)
            for (int64_t r = 0; r < nu * span[i]; r++)
                for (int64_t d = 0; d < k.dim; d++) s[r / span[i]] += fabsf(rw[i][r * k.dim + d]);
        for (int64_t r = 0; r < k.dim; r++)
            for (int64_t j = 0; j < ccols; j++) s[j / cspan] += fabsf(cw[r * ccols + j]);
        for (int64_t d = 0; d < ndrop; d++) {
            int64_t best = -1;
            for (int64_t u = 0; u < nu; u++)
                if (s[u] >= 0 && (best < 0 || s[u] < s[best])) best = u;
            s[best] = -1; /* dropped */
        }
        for (int64_t u = 0; u < nu; u++) {
            if (s[u] >= 0) continue;
            for (int i = 0; i < nr; i++) memset(rw[i] + u * span[i] * k.dim, 0, (size_t)(span[i] * k.dim) * sizeof(float));
            for (int64_t r = 0; r < k.dim; r++)
                for (int64_t j = u * cspan; j < (u + 1) * cspan; j++) cw[r * ccols + j] = 0.0f;
        }
        free(s);
    }
}

SQ_TEST(structured_shrink_equals_masked) {
    for (int k = 0; k < 2; k++) {
        const bool ffn = k == 0;
        sq_tiny_spec sp = sq_tiny_spec_default();
        sq_checkpoint a, b;
        SQ_CHECK_OK(sq_tiny_checkpoint(&sp, &a));
        SQ_CHECK_OK(sq_tiny_checkpoint(&sp, &b));
        sq_qplan plan;
        sq_qplan_spec spec = {.scheme = {.bits = 8, .group = 0}};
        SQ_CHECK_OK(sq_qplan_build(&plan, &a.cfg, &spec));
        sq_prune_opts o;
        sq_prune_opts_default(&o);
        o.method = SQ_PRUNE_MAGNITUDE;
        o.sequential = false;
        SQ_CHECK_OK(sq_prune_pattern_parse(&o.pattern, ffn ? "ffn" : "heads", ffn ? 0.25 : 0.5));
        sq_sparse_info *recs = NULL;
        int32_t nrec = 0;
        SQ_CHECK_OK(sq_prune_checkpoint(&a, &plan, &o, NULL, NULL, &recs, &nrec));
        SQ_CHECK(nrec == sp.n_layers * (ffn ? 3 : 4));
        if (ffn) SQ_CHECK(a.cfg.hidden_dim == sp.hidden_dim - sp.hidden_dim / 4);
        else SQ_CHECK(a.cfg.n_kv_heads == 1 && a.cfg.n_heads == 2);
        SQ_CHECK_OK(sq_checkpoint_validate(&a, "pruned"));
        zero_lowest_units(&b, ffn, ffn ? 0.25 : 0.5);
        int32_t tok[24];
        for (int i = 0; i < 24; i++) tok[i] = (i * 37 + 5) % sp.vocab_size;
        float *la = malloc(24 * (size_t)sp.vocab_size * sizeof *la), *lb = malloc(24 * (size_t)sp.vocab_size * sizeof *lb);
        if (logits_of(&a, tok, 24, la) && logits_of(&b, tok, 24, lb)) {
            double md = 0;
            for (int64_t i = 0; i < 24 * (int64_t)sp.vocab_size; i++) md = fmax(md, fabs((double)la[i] - lb[i]));
            printf("  %s: max |logit difference| shrunk vs masked %.3g\n", ffn ? "ffn 25%" : "heads 50%", md);
            SQ_CHECK(md < 1e-4);
        } else {
            SQ_CHECK(0);
        }
        free(la);
        free(lb);
        free(recs);
        sq_qplan_free(&plan);
        sq_checkpoint_free(&a);
        sq_checkpoint_free(&b);
    }
}

SQ_TEST(checkpoint_errors) {
    sq_tiny_spec sp = sq_tiny_spec_default();
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&sp, &a));
    sq_qplan plan;
    const char *ign[1] = {"model.layers.1.mlp.up_proj"};
    sq_qplan_spec spec = {.ignore = ign, .n_ignore = 1, .scheme = {.bits = 8, .group = 0}};
    SQ_CHECK_OK(sq_qplan_build(&plan, &a.cfg, &spec));
    sq_prune_opts o;
    sq_prune_opts_default(&o);
    sq_sparse_info *recs = NULL;
    int32_t nrec = 0;
    SQ_CHECK_OK(sq_prune_pattern_parse(&o.pattern, "ffn", 0.25));
    o.sequential = false;
    SQ_CHECK(sq_prune_checkpoint(&a, &plan, &o, NULL, NULL, &recs, &nrec) == SQ_ERR_ARG &&
             strstr(sq_last_error(), "same units"));
    o.method = SQ_PRUNE_WANDA;
    SQ_CHECK_OK(sq_prune_pattern_parse(&o.pattern, "unstructured", 0.5));
    SQ_CHECK(sq_prune_checkpoint(&a, &plan, &o, NULL, NULL, &recs, &nrec) == SQ_ERR_ARG &&
             strstr(sq_last_error(), "calib"));
    o.method = SQ_PRUNE_MAGNITUDE;
    SQ_CHECK_OK(sq_prune_pattern_parse(&o.pattern, "heads", 0.25)); /* 2 KV groups: floor(0.5) = 0 */
    SQ_CHECK(sq_prune_checkpoint(&a, &plan, &o, NULL, NULL, &recs, &nrec) == SQ_ERR_ARG);
    /* magnitude 2:4 with the layer ignored: the ignored tensor is untouched, the others exact */
    SQ_CHECK_OK(sq_prune_pattern_parse(&o.pattern, "2:4", -1));
    SQ_CHECK_OK(sq_prune_checkpoint(&a, &plan, &o, NULL, NULL, &recs, &nrec));
    SQ_CHECK(nrec == 13);
    float *up = tensor(&a, "model.layers.%d.mlp.up_proj.weight", 1), *gate = tensor(&a, "model.layers.%d.mlp.gate_proj.weight", 1);
    SQ_CHECK(zeros_in(up, 96 * 64) == 0);
    SQ_CHECK(nm_exact(gate, 96, 64, 2, 4));
    for (int32_t i = 0; i < nrec; i++) SQ_CHECK(recs[i].n == 2 && recs[i].m == 4 && recs[i].sparsity == 0.5);
    /* the same records are on the checkpoint (the store's /sparse) */
    SQ_CHECK(a.n_sparse == 13);
    const sq_sparse_info *si = sq_checkpoint_sparse_info(&a, "model.layers.1.mlp.gate_proj.weight");
    SQ_CHECK(si && si->n == 2 && si->m == 4 && si->sparsity == 0.5 && !strcmp(si->method, "magnitude"));
    SQ_CHECK(!sq_checkpoint_sparse_info(&a, "model.layers.1.mlp.up_proj.weight"));
    free(recs);
    sq_qplan_free(&plan);
    sq_checkpoint_free(&a);
}

/* Pruned, then exported: the runnable file's sparse matrices decode to exactly the masked
 * weights. Magnitude pruning (no weight update) of a tiny f32 and f16 model at 50%
 * unstructured, 2:4 and 4:8; every tensor through sq_tensor_sparsify (what
 * `squish-convert export` does) into a .sqz; each pruned matrix must be stored sparse (s24
 * for 2:4, the bitmask otherwise: docs/sparse-format.md's rule) and every row, decoded by
 * sq_srow_dequant (the executor's row decoder), must be the original weight where the
 * mask keeps it and 0 where it prunes it, the mask having the requested pattern exactly;
 * sq_import_sqz must give the pruned tensors back bit for bit. */
SQ_TEST(exported_weights_decode_to_masked) {
    const char *pats[3] = {"unstructured", "2:4", "4:8"};
    for (int ty = 0; ty < 2; ty++)
        for (int pi = 0; pi < 3; pi++) {
            sq_tiny_spec sp = sq_tiny_spec_default();
            sp.type = ty ? SQ_TYPE_F16 : SQ_TYPE_F32;
            const int vb = ty ? 2 : 4;
            sq_checkpoint orig, a;
            SQ_CHECK_OK(sq_tiny_checkpoint(&sp, &orig));
            SQ_CHECK_OK(sq_tiny_checkpoint(&sp, &a));
            sq_qplan plan;
            sq_qplan_spec spec = {.scheme = {.bits = 8, .group = 0}};
            SQ_CHECK_OK(sq_qplan_build(&plan, &a.cfg, &spec));
            sq_prune_opts o;
            sq_prune_opts_default(&o);
            o.method = SQ_PRUNE_MAGNITUDE;
            o.sequential = false;
            SQ_CHECK_OK(sq_prune_pattern_parse(&o.pattern, pats[pi], pi ? -1 : 0.5));
            sq_sparse_info *recs = NULL;
            int32_t nrec = 0;
            SQ_CHECK_OK(sq_prune_checkpoint(&a, &plan, &o, NULL, NULL, &recs, &nrec));
            SQ_CHECK(nrec == 7 * sp.n_layers);
            /* export */
            sq_tensor *out = calloc((size_t)a.n_tensors, sizeof *out);
            bool *own = calloc((size_t)a.n_tensors, sizeof *own);
            for (int32_t i = 0; i < a.n_tensors; i++) {
                SQ_CHECK_OK(sq_tensor_sparsify(&a.tensors[i], &out[i], &own[i]));
                if (!own[i]) out[i] = a.tensors[i];
            }
            char path[600];
            snprintf(path, sizeof path, "%s/pruned-%d-%d.sqz", sq_test_tmpdir(), ty, pi);
            SQ_CHECK_OK(sq_sqz_write(path, &a.cfg, &a.vocab, out, a.n_tensors, NULL, 0));
            for (int32_t i = 0; i < a.n_tensors; i++)
                if (own[i]) sq_tensor_release(&out[i]);
            free(out);
            free(own);
            /* decode every pruned matrix from the file */
            sq_sqz *f = NULL;
            SQ_CHECK_OK(sq_sqz_open(&f, path, true));
            int32_t n_checked = 0;
            for (int32_t i = 0; f && i < sq_sqz_n_tensors(f); i++) {
                const sq_tensor *t = sq_sqz_tensor(f, i);
                if (!sq_checkpoint_sparse_info(&a, t->name)) continue;
                const sq_tensor *ot = sq_checkpoint_find(&orig, t->name), *pt = sq_checkpoint_find(&a, t->name);
                const sq_type want = pi == 1 ? (ty ? SQ_TYPE_S24_F16 : SQ_TYPE_S24_F32)
                                             : (ty ? SQ_TYPE_SMASK_F16 : SQ_TYPE_SMASK_F32);
                SQ_CHECKF(t->type == want, "%s %s: stored as %s", pats[pi], t->name, sq_type_name(t->type));
                if (t->type != want || !ot || !pt) continue;
                const int64_t rows = t->shape[0], cols = t->shape[1];
                const size_t rb = sq_row_bytes(t->type, cols, t->q);
                float *w0 = malloc((size_t)cols * sizeof *w0), *w1 = malloc((size_t)cols * sizeof *w1),
                      *dec = malloc((size_t)cols * sizeof *dec);
                int64_t bad = 0, zeros = 0, bad_nm = 0;
                for (int64_t r = 0; r < rows; r++) {
                    SQ_CHECK_OK(sq_convert_rows(w0, SQ_TYPE_F32, (const char *)ot->data + r * cols * vb, sp.type, cols));
                    SQ_CHECK_OK(sq_convert_rows(w1, SQ_TYPE_F32, (const char *)pt->data + r * cols * vb, sp.type, cols));
                    sq_srow_dequant(t->type, t->q, cols, (const char *)t->data + (size_t)r * rb, dec);
                    int32_t in_group = 0;
                    for (int64_t c = 0; c < cols; c++) {
                        const bool kept = w1[c] != 0.0f;
                        zeros += !kept;
                        if (kept && w1[c] != w0[c]) bad++;                    /* magnitude changes no kept weight */
                        if (memcmp(&dec[c], kept ? &w0[c] : &(float){0.0f}, sizeof(float))) bad++;
                        in_group += kept;
                        const int m = pi == 1 ? 4 : 8;
                        if (pi && c % m == m - 1) {
                            bad_nm += in_group != m / 2;
                            in_group = 0;
                        }
                    }
                }
                SQ_CHECKF(bad == 0, "%s %s: %lld weights differ from the masked original", pats[pi], t->name,
                          (long long)bad);
                SQ_CHECKF(bad_nm == 0, "%s %s: %lld groups without exactly N kept", pats[pi], t->name, (long long)bad_nm);
                if (pi == 0) SQ_CHECK(zeros == rows * cols / 2); /* magnitude: floor(0.5 * numel) per matrix */
                free(w0), free(w1), free(dec);
                n_checked++;
            }
            SQ_CHECKF(n_checked == 7 * sp.n_layers, "%s: %d sparse matrices checked", pats[pi], n_checked);
            sq_sqz_close(f);
            /* and the importer gives the pruned tensors back bit for bit */
            sq_checkpoint back;
            SQ_CHECK_OK(sq_import_sqz(path, &back));
            for (int32_t i = 0; i < a.n_tensors; i++) {
                const sq_tensor *b = sq_checkpoint_find(&back, a.tensors[i].name);
                SQ_CHECK(b && b->type == a.tensors[i].type && b->nbytes == a.tensors[i].nbytes &&
                         memcmp(b->data, a.tensors[i].data, b->nbytes) == 0);
            }
            sq_checkpoint_free(&back);
            free(recs);
            sq_qplan_free(&plan);
            sq_checkpoint_free(&orig);
            sq_checkpoint_free(&a);
        }
}

int main(void) {
    SQ_RUN(patterns_parse_and_refuse);
    SQ_RUN(magnitude_and_wanda_counts);
    SQ_RUN(sparsegpt_counts_and_nm);
    SQ_RUN(sparsegpt_diagonal_hessian_is_block_magnitude);
    SQ_RUN(wanda_and_sparsegpt_beat_magnitude);
    SQ_RUN(joint_quantization_zeros_exact);
    SQ_RUN(threads_identical);
    SQ_RUN(structured_shrink_equals_masked);
    SQ_RUN(checkpoint_errors);
    SQ_RUN(exported_weights_decode_to_masked);
    return sq_test_summary();
}
