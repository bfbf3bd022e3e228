/* make_bench_model.c - writes a random-weight runnable file of a given Llama shape, for
 * speed measurements (speed does not depend on the weight values). Uses the runtime
 * only. The vocabulary is synthetic: <unk> <s> </s>, 256 byte pieces, then pieces made of
 * letters, so the file is a well-formed model that squish-run and squish-eval accept.
 *
 *   make_bench_model --shape tinyllama|gutenberg|stories --dtype f16 -o bench.sqz [--seed S]
 *   make_bench_model --shape tinyllama --dtype q4g [--group 128] [--asym] [--act8] -o bench-q4g.sqz
 * (--act8: the q8g/q4g matrices carry the ACT8 flag, int8 activations; docs/quantization.md)
 *   make_bench_model --shape tinyllama --dtype f16 --sparse 2:4|4:8|0.5 [--ffn-prune 0.25] -o s.sqz
 *
 * With a quantized dtype (q8g, q4g, q3g) every matrix (linears, embedding, head) holds
 * random codes with one fp16 scale per group (symmetric unless --asym), scaled like the
 * float weights; norms stay f32.
 *
 * Pruned shapes (docs/pruning.md, docs/sparse-format.md), for the speed of pruned models:
 * --sparse N:M zeroes M - N random weights of every group of M in each row of the seven
 * block linears (exactly the pattern squish-prune makes), --sparse F (0 < F < 1) exactly
 * round(F * cols) random weights of each row (Wanda's per-row count); the embedding and the
 * head stay dense, as squish-prune leaves them. Float matrices are then stored the way
 * `squish-convert export` stores them (sq_tensor_sparsify: s24 for 2:4, a bitmask for 50%
 * unstructured and for 4:8); quantized ones stay dense with the pruned weights' codes set to
 * the zero point (a pruned weight decodes to 0), as squish-prune --bits writes 2:4 + 4-bit.
 * --ffn-prune F removes floor(F * hidden_dim) FFN channels (structured pruning: a smaller
 * hidden_dim in the config and smaller gate/up/down).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/cli.h"
#include "../runtime/sqz.h"

typedef struct {
    const char *name;
    int32_t dim, hidden, layers, heads, kv_heads, vocab, ctx;
    bool tied;
} shape;

static const shape shapes[] = {
    /* TinyLlama-1.1B (config of TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T) */
    {"tinyllama", 2048, 5632, 22, 32, 4, 32000, 2048, false},
    {"gutenberg", 256, 768, 6, 4, 2, 4096, 256, false},
    {"stories", 64, 172, 5, 8, 4, 512, 512, true},
};

static uint64_t rng_state;
static float frand(void) { /* splitmix64 -> uniform in [-1, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static uint64_t urand(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static sq_qparams qparams; /* group and asym of quantized dtypes */
static bool act8;          /* --act8 */

/* --sparse: N:M (sp_m > 0) or an unstructured fraction sp_frac of each row (sp_m == 0). */
static int32_t sp_n, sp_m;
static double sp_frac;

/* keep[c] = 0 for the weights of one row that the --sparse pattern prunes, 1 otherwise. */
static void prune_mask(uint8_t *keep, int64_t cols, int64_t *perm) {
    memset(keep, 1, (size_t)cols);
    if (sp_m > 0) {
        for (int64_t g = 0; g + sp_m <= cols; g += sp_m) {
            int32_t idx[64];
            for (int32_t j = 0; j < sp_m; j++) idx[j] = j;
            for (int32_t j = 0; j < sp_m - sp_n; j++) { /* partial Fisher-Yates: the first M - N go */
                int32_t k = j + (int32_t)(urand() % (uint64_t)(sp_m - j)), tmp = idx[j];
                idx[j] = idx[k], idx[k] = tmp;
                keep[g + idx[j]] = 0;
            }
        }
    } else if (sp_frac > 0) {
        const int64_t nz = (int64_t)(sp_frac * (double)cols + 0.5);
        for (int64_t c = 0; c < cols; c++) perm[c] = c;
        for (int64_t j = 0; j < nz; j++) {
            int64_t k = j + (int64_t)(urand() % (uint64_t)(cols - j)), tmp = perm[j];
            perm[j] = perm[k], perm[k] = tmp;
            keep[perm[j]] = 0;
        }
    }
}

/* Random codes and per-group fp16 scales, rows of w ~ U(-scale, scale) (offset ignored). */
static int fill_quant(sq_tensor *t, float scale, bool prune) {
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const int32_t bits = sq_type_bits(t->type), z = 1 << (bits - 1);
    const int64_t ng = (cols + t->q.group - 1) / t->q.group;
    const size_t rb = sq_row_bytes(t->type, cols, t->q);
    uint8_t *codes = malloc((size_t)cols), *zeros = malloc((size_t)ng), *keep = malloc((size_t)cols);
    float *scales = malloc(sizeof(float) * (size_t)ng);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)cols);
    int err = !codes || !zeros || !scales || !keep || !perm;
    for (int64_t r = 0; r < rows && !err; r++) {
        for (int64_t g = 0; g < ng; g++) {
            scales[g] = sq_f16_to_f32(sq_f32_to_f16(scale / (float)z * (1.0f + 0.25f * frand())));
            zeros[g] = (uint8_t)z;
        }
        for (int64_t c = 0; c < cols; c++) {
            int32_t q = (int32_t)((frand() + 1.0f) * (float)z);
            codes[c] = (uint8_t)(q > 2 * z - 1 ? 2 * z - 1 : q);
        }
        if (prune) {
            prune_mask(keep, cols, perm);
            for (int64_t c = 0; c < cols; c++)
                if (!keep[c]) codes[c] = (uint8_t)z; /* the zero point: decodes to exactly 0 */
        }
        err = sq_qrow_pack(t->type, t->q, cols, codes, scales, zeros, (char *)t->data + (size_t)r * rb) != SQ_OK;
    }
    free(codes);
    free(zeros);
    free(scales);
    free(keep);
    free(perm);
    return err ? -1 : 0;
}

static int add_tensor(sq_tensor *ts, int32_t *n, const char *name, sq_type type, int64_t rows, int64_t cols,
                      float scale, float offset, bool prune) {
    sq_tensor *t = &ts[(*n)++];
    memset(t, 0, sizeof *t);
    t->name = malloc(strlen(name) + 1);
    strcpy(t->name, name);
    t->type = cols ? type : SQ_TYPE_F32;
    t->n_dims = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    if (sq_type_is_quant(t->type)) {
        t->q = qparams;
        t->act8 = act8;
        if (t->q.group > cols) t->q.group = (int32_t)cols;
    }
    int64_t numel = rows * (cols ? cols : 1);
    t->nbytes = sq_tensor_bytes(t->type, t->q, t->n_dims, t->shape);
    t->data = malloc(t->nbytes);
    t->owns_data = true;
    if (!t->name || !t->data) return -1;
    prune = prune && (sp_m > 0 || sp_frac > 0);
    if (sq_type_is_quant(t->type)) return fill_quant(t, scale, prune);
    float *tmp = malloc(65536 * sizeof(float));
    if (!tmp) return -1;
    for (int64_t i = 0; i < numel; i += 65536) {
        int64_t m = numel - i < 65536 ? numel - i : 65536;
        for (int64_t j = 0; j < m; j++) tmp[j] = offset + scale * frand();
        size_t es = t->type == SQ_TYPE_F32 ? 4 : 2;
        sq_convert_rows((char *)t->data + (size_t)i * es, t->type, tmp, SQ_TYPE_F32, m);
    }
    free(tmp);
    if (!prune) return 0;
    /* zero the pruned weights row by row, then store the matrix as the exporter would */
    const size_t es = t->type == SQ_TYPE_F32 ? 4 : 2;
    uint8_t *keep = malloc((size_t)cols);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)cols);
    if (!keep || !perm) {
        free(keep);
        free(perm);
        return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        prune_mask(keep, cols, perm);
        for (int64_t c = 0; c < cols; c++)
            if (!keep[c]) memset((char *)t->data + ((size_t)r * (size_t)cols + (size_t)c) * es, 0, es);
    }
    free(keep);
    free(perm);
    sq_tensor z;
    bool changed = false;
    if (sq_tensor_sparsify(t, &z, &changed)) return -1;
    if (changed) {
        sq_tensor_release(t);
        *t = z;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *shape_name = "tinyllama", *out = NULL;
    sq_type type = SQ_TYPE_F16;
    int64_t seed = 1;
    int32_t group = 128;
    bool asym = false;
    double ffn_prune = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (sq_cli_is(argv[i], NULL, "--shape")) {
            if (!(v = sq_cli_value(argc, argv, &i))) goto usage;
            shape_name = v;
        } else if (sq_cli_is(argv[i], NULL, "--dtype")) {
            if (!(v = sq_cli_value(argc, argv, &i)) || sq_type_from_name(v, &type)) goto usage;
        } else if (sq_cli_is(argv[i], "-o", "--output")) {
            if (!(v = sq_cli_value(argc, argv, &i))) goto usage;
            out = v;
        } else if (sq_cli_is(argv[i], NULL, "--group")) {
            int64_t g;
            if (!(v = sq_cli_value(argc, argv, &i)) || sq_cli_int("--group", v, 1, INT32_MAX, &g)) goto usage;
            group = (int32_t)g;
        } else if (sq_cli_is(argv[i], NULL, "--asym")) {
            asym = true;
        } else if (sq_cli_is(argv[i], NULL, "--act8")) {
            act8 = true;
        } else if (sq_cli_is(argv[i], NULL, "--sparse")) {
            if (!(v = sq_cli_value(argc, argv, &i))) goto usage;
            char *end;
            if (strchr(v, ':')) {
                long n = strtol(v, &end, 10), m = *end == ':' ? strtol(end + 1, &end, 10) : 0;
                if (*end || n < 1 || m > 64 || n >= m) {
                    fprintf(stderr, "make_bench_model: --sparse %s: expected N:M with 1 <= N < M <= 64\n", v);
                    return 1;
                }
                sp_n = (int32_t)n, sp_m = (int32_t)m;
            } else {
                sp_frac = strtod(v, &end);
                if (*end || !(sp_frac > 0 && sp_frac < 1)) {
                    fprintf(stderr, "make_bench_model: --sparse %s: expected N:M or a fraction in (0, 1)\n", v);
                    return 1;
                }
            }
        } else if (sq_cli_is(argv[i], NULL, "--ffn-prune")) {
            char *end;
            if (!(v = sq_cli_value(argc, argv, &i))) goto usage;
            ffn_prune = strtod(v, &end);
            if (*end || !(ffn_prune >= 0 && ffn_prune < 1)) {
                fprintf(stderr, "make_bench_model: --ffn-prune %s: expected a fraction in [0, 1)\n", v);
                return 1;
            }
        } else if (sq_cli_is(argv[i], NULL, "--seed")) {
            if (!(v = sq_cli_value(argc, argv, &i)) || sq_cli_int("--seed", v, 0, INT64_MAX, &seed)) goto usage;
        } else {
            goto usage;
        }
    }
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, shape_name)) sh = &shapes[i];
    if (!sh || !out) goto usage;
    rng_state = (uint64_t)seed;
    qparams = (sq_qparams){group, asym};
    const int32_t hidden = sh->hidden - (int32_t)(ffn_prune * sh->hidden);
    if (sq_act8_validate(type, act8, "--act8")) {
        fprintf(stderr, "make_bench_model: %s\n", sq_last_error());
        return 1;
    }
    if (sq_type_is_quant(type) && (sq_qparams_validate(type, qparams, sh->dim, "--group") ||
                                   sq_qparams_validate(type, qparams, hidden, "--group"))) {
        fprintf(stderr, "make_bench_model: %s\n", sq_last_error());
        return 1;
    }
    if (sp_m > 0 && (sh->dim % sp_m || hidden % sp_m)) {
        fprintf(stderr, "make_bench_model: --sparse %d:%d: M must divide dim %d and hidden_dim %d\n", sp_n, sp_m,
                sh->dim, hidden);
        return 1;
    }
    if ((sp_m > 0 || sp_frac > 0) && type != SQ_TYPE_F16 && type != SQ_TYPE_F32 && !sq_type_is_quant(type)) {
        fprintf(stderr, "make_bench_model: --sparse needs --dtype f16, f32 or a quantized type\n");
        return 1;
    }

    sq_config c = {0};
    strcpy(c.arch, "llama");
    c.dim = sh->dim;
    c.hidden_dim = hidden;
    c.n_layers = sh->layers;
    c.n_heads = sh->heads;
    c.n_kv_heads = sh->kv_heads;
    c.head_dim = sh->dim / sh->heads;
    c.vocab_size = sh->vocab;
    c.max_seq_len = sh->ctx;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.rope_layout = SQ_ROPE_HALF;
    c.tied_embeddings = sh->tied;

    sq_vocab v = {0};
    v.kind = SQ_VOCAB_SPM;
    v.n_tokens = sh->vocab;
    v.tokens = calloc((size_t)sh->vocab, sizeof(char *));
    v.scores = calloc((size_t)sh->vocab, sizeof(float));
    v.types = calloc((size_t)sh->vocab, sizeof(int32_t));
    for (int32_t i = 0; i < sh->vocab; i++) {
        char buf[32];
        v.types[i] = SQ_TOKEN_NORMAL;
        if (i == 0) snprintf(buf, sizeof buf, "<unk>"), v.types[i] = SQ_TOKEN_UNKNOWN;
        else if (i == 1) snprintf(buf, sizeof buf, "<s>"), v.types[i] = SQ_TOKEN_CONTROL;
        else if (i == 2) snprintf(buf, sizeof buf, "</s>"), v.types[i] = SQ_TOKEN_CONTROL;
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3), v.types[i] = SQ_TOKEN_BYTE;
        else { /* distinct letter strings: base-26 numerals */
            int32_t x = i - 259, k = 0;
            char tmp[16];
            do {
                tmp[k++] = (char)('a' + x % 26);
                x /= 26;
            } while (x && k < 15);
            for (int32_t j = 0; j < k; j++) buf[j] = tmp[k - 1 - j];
            buf[k] = '\0';
        }
        v.tokens[i] = malloc(strlen(buf) + 1);
        strcpy(v.tokens[i], buf);
        v.scores[i] = -(float)i;
    }
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
    v.pad_id = -1;
    v.add_bos = true;
    v.add_dummy_prefix = true;
    v.byte_fallback = true;

    int32_t cap = 3 + 9 * sh->layers, n = 0;
    sq_tensor *ts = calloc((size_t)cap, sizeof *ts);
    char name[256];
    const int64_t qd = (int64_t)c.n_heads * c.head_dim, kvd = (int64_t)c.n_kv_heads * c.head_dim;
    const float ws = 0.02f;
    int err = add_tensor(ts, &n, "model.embed_tokens.weight", type, c.vocab_size, c.dim, 1.0f, 0.0f, false);
    for (int32_t l = 0; l < c.n_layers && !err; l++) {
#define T(fmt, r, cc, s, o) \
    (snprintf(name, sizeof name, "model.layers.%d." fmt, (int)l), add_tensor(ts, &n, name, type, r, cc, s, o, cc > 0))
        err |= T("input_layernorm.weight", c.dim, 0, 0.1f, 1.0f);
        err |= T("self_attn.q_proj.weight", qd, c.dim, ws, 0.0f);
        err |= T("self_attn.k_proj.weight", kvd, c.dim, ws, 0.0f);
        err |= T("self_attn.v_proj.weight", kvd, c.dim, ws, 0.0f);
        err |= T("self_attn.o_proj.weight", c.dim, qd, ws, 0.0f);
        err |= T("post_attention_layernorm.weight", c.dim, 0, 0.1f, 1.0f);
        err |= T("mlp.gate_proj.weight", c.hidden_dim, c.dim, ws, 0.0f);
        err |= T("mlp.up_proj.weight", c.hidden_dim, c.dim, ws, 0.0f);
        err |= T("mlp.down_proj.weight", c.dim, c.hidden_dim, ws, 0.0f);
#undef T
    }
    err |= add_tensor(ts, &n, "model.norm.weight", type, c.dim, 0, 0.1f, 1.0f, false);
    if (!c.tied_embeddings) err |= add_tensor(ts, &n, "lm_head.weight", type, c.vocab_size, c.dim, ws, 0.0f, false);
    if (err) {
        fprintf(stderr, "make_bench_model: out of memory\n");
        return 2;
    }
    sq_kv meta[] = {{"provenance.tool", "make_bench_model (random weights, for speed only)"}};
    if (sq_sqz_write(out, &c, &v, ts, n, meta, 1)) {
        fprintf(stderr, "make_bench_model: %s\n", sq_last_error());
        return 2;
    }
    for (int32_t i = 0; i < n; i++) sq_tensor_release(&ts[i]);
    free(ts);
    sq_vocab_free(&v);
    return 0;
usage:
    fprintf(stderr, "usage: make_bench_model --shape tinyllama|gutenberg|stories [--dtype f32|f16|bf16|q8g|q4g|q3g] "
                    "[--group 128] [--asym] [--act8] [--sparse N:M|F] [--ffn-prune F] [--seed S] -o OUT.sqz\n");
    return 1;
}
