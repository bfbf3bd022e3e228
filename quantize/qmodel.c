/* qmodel.c - the squish-quantize pipeline over a whole checkpoint (docs/quantization.md):
 *
 *   rtn   every planned tensor on its own (ALGORITHMS.md 1, the GPTQ reference grid);
 *   gptq  GPTQ (arXiv:2210.17323, ALGORITHMS.md 2). Sequential mode re-embeds the calibration
 *         windows calib.h5 recorded and runs them block by block through the runtime's
 *         forward pass: in block l the linears are quantized in the reference's "true
 *         sequential" groups {q,k,v} -> o -> {gate,up} -> down, each group's X^T X captured
 *         with the earlier groups already quantized (H factored once per group), and the
 *         quantized block produces block l+1's inputs. Non-sequential mode uses calib.h5's
 *         X^T X of the FP model;
 *   awq   AWQ (arXiv:2306.00978, ALGORITHMS.md 3, llm-awq auto_scale/auto_clip): block
 *         inputs from the FP model; per scaling group (input_layernorm -> q,k,v; v -> o when
 *         the shapes match; post_attention_layernorm -> gate,up; up -> down) a grid search
 *         of alpha whose loss runs the whole decoder block with the candidate fake-quantized
 *         weights on a subsample of the cached windows and compares the block output with
 *         the FP block output; the winning scales are folded exactly into the previous op;
 *         then the clip search (every linear but q and k) and AWQ's RTN. Non-sequential mode
 *         uses calib.h5's mean |x| and X^T X: the loss is each scaled linear's own output
 *         error tr(E H E^T)/N, and the clip search runs on pseudo-inputs R with R^T R = H/N.
 *
 * The embedding and the head, when planned, use RTN (no activation statistics exist for
 * them), except that sequential GPTQ quantizes the head (lm_head, or a tied embedding) by
 * GPTQ on the final-norm outputs of the quantized model. Everything is deterministic: windows run in order, statistics accumulate in
 * double in that order, and the algorithms in quant.h are thread-count independent.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/calib_seq.h"
#include "../core/util.h"
#include "../runtime/cli.h"
#include "linalg.h"
#include "qmodel.h"
#include "quant_internal.h"


void sq_qrun_opts_default(sq_qrun_opts *o, sq_qmethod m) {
    memset(o, 0, sizeof *o);
    o->method = m;
    o->damp = 0.01;
    o->block_size = 128;
    o->sequential = m != SQ_QMETHOD_RTN;
    o->awq_clip = true;
    o->awq_windows = 16;
    o->gptq_head = true;
    /* every method: the signed-max grid (docs/quantization.md "Symmetric grids": lower PPL and
     * KLD than the gptq grid in every measured row of both shared models) */
    o->grid = SQ_QGRID_SIGNED_MAX;
}

#define CHUNK_WINDOWS SQ_SEQ_CHUNK /* windows per parallel batch in sequential mode; X^T X gets one update per batch */

uint64_t sq_qrun_cache_bytes(const sq_config *cfg, const sq_qrun_opts *o, int64_t n_samples, int32_t seq_len) {
    if (o->method == SQ_QMETHOD_RTN || !o->sequential || n_samples <= 0 || seq_len <= 0) return 0;
    const uint64_t L = (uint64_t)seq_len, per = (uint64_t)n_samples * L * (uint64_t)cfg->dim * sizeof(float);
    const uint64_t n_scratch = (uint64_t)(o->awq_windows > CHUNK_WINDOWS ? o->awq_windows : CHUNK_WINDOWS);
    const uint64_t widths = 2 * (uint64_t)cfg->dim + (uint64_t)cfg->n_heads * (uint64_t)cfg->head_dim +
                            (uint64_t)cfg->hidden_dim;
    return 2 * per + (n_scratch * L * (uint64_t)cfg->dim + CHUNK_WINDOWS * L * widths) * sizeof(float);
}

/* ===== The run ===== */

#define N_ROLES (SQ_ROLE_LM_HEAD + 1)

typedef struct {
    sq_checkpoint *c;
    sq_model *m;
    const sq_qplan *plan;
    const sq_qrun_opts *o;
    const sq_calib *calib;
    const sq_calib_data *data;
    const char *calib_sha;
    int32_t n_layers, dim, q_dim, kv_dim, hid;
    int32_t *pidx;        /* [n_layers * N_ROLES] plan index of (layer, role), or -1 */
    sq_qweight *qw;       /* [plan->n] */
    sq_quant_info *info;  /* [plan->n] */
    bool *done;           /* [plan->n] quantized */
    bool *modified;       /* [c->n_tensors] values changed by the run (AWQ folding) */
    sq_seq seq;           /* sequential: the windows through the blocks (core/calib_seq.h) */
} run;

static int32_t tensor_index(const run *r, const char *name) {
    for (int32_t i = 0; i < r->c->n_tensors; i++)
        if (strcmp(r->c->tensors[i].name, name) == 0) return i;
    return -1;
}

static float *tensor_f32(const run *r, const char *name) {
    int32_t i = tensor_index(r, name);
    return i < 0 ? NULL : (float *)r->c->tensors[i].data;
}

static void mark_modified(run *r, const char *name) {
    int32_t i = tensor_index(r, name);
    if (i >= 0) r->modified[i] = true;
}

static sq_mat *layer_mat(sq_model *m, int32_t l, sq_role role) {
    sq_layer *y = &m->layers[l];
    switch (role) {
    case SQ_ROLE_Q: return &y->wq;
    case SQ_ROLE_K: return &y->wk;
    case SQ_ROLE_V: return &y->wv;
    case SQ_ROLE_O: return &y->wo;
    case SQ_ROLE_GATE: return &y->w_gate;
    case SQ_ROLE_UP: return &y->w_up;
    case SQ_ROLE_DOWN: return &y->w_down;
    default: return NULL;
    }
}

static int32_t width_of(const run *r, int g) { return g == 1 ? r->q_dim : g == 3 ? r->hid : r->dim; }

/* Plan index of (layer, role) when it is quantized, else -1. */
static int32_t planned(const run *r, int32_t l, sq_role role) {
    int32_t k = r->pidx[(size_t)l * N_ROLES + role];
    return k >= 0 && r->plan->e[k].quantize ? k : -1;
}

static bool group_planned(const run *r, int32_t l, int g) {
    for (int i = 0; i < SQ_SEQ_N_ROLES[g]; i++)
        if (planned(r, l, SQ_SEQ_ROLES[g][i]) >= 0) return true;
    return false;
}

static void info_base(run *r, int32_t k, sq_qmethod method) {
    const sq_qplan_entry *e = &r->plan->e[k];
    sq_quant_info *qi = &r->info[k];
    memset(qi, 0, sizeof *qi);
    snprintf(qi->name, sizeof qi->name, "%s", e->name);
    snprintf(qi->method, sizeof qi->method, "%s", sq_qmethod_name(method));
    qi->bits = e->scheme.bits;
    qi->group_size = e->scheme.group;
    qi->symmetric = !e->scheme.asym;
    qi->mse = r->o->mse;
    if (!e->scheme.asym) snprintf(qi->grid, sizeof qi->grid, "%s", sq_qgrid_name(r->o->grid));
    qi->awq_alpha = -1.0;
    qi->static_groups = e->scheme.group == 0; /* per-row grids are fitted on the unmodified W */
    if (method != SQ_QMETHOD_RTN && r->calib_sha) snprintf(qi->calib_sha256, sizeof qi->calib_sha256, "%s", r->calib_sha);
}

static void report(run *r, int32_t k, double seconds) {
    const sq_qplan_entry *e = &r->plan->e[k];
    const sq_quant_info *qi = &r->info[k];
    r->done[k] = true;
    if (!r->o->on_tensor) return;
    sq_qreport rep = {.name = e->name,
                      .short_name = sq_qplan_short_name(e),
                      .layer = e->layer,
                      .n_layers = r->n_layers,
                      .scheme = e->scheme,
                      .method = !strcmp(qi->method, "gptq") ? SQ_QMETHOD_GPTQ
                                : !strcmp(qi->method, "awq") ? SQ_QMETHOD_AWQ
                                                             : SQ_QMETHOD_RTN,
                      .loss = qi->loss,
                      .damp_used = qi->damp_used,
                      .alpha = qi->awq_alpha,
                      .seconds = seconds};
    r->o->on_tensor(r->o->user, &rep);
}

/* sum (w - w_hat)^2 / sum w^2 */
static double rel_weight_err(const float *w, const float *w_hat, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)w[i] - w_hat[i];
        num += d * d;
        den += (double)w[i] * w[i];
    }
    return den > 0 ? num / den : num;
}

/* RTN of plan entry k on the tensor's current values with the given range rule; the
 * tensor receives the decoded weights. info[k] is started afresh unless `keep_info`;
 * loss < 0: the relative weight error is recorded. */
static sq_status rtn_entry(run *r, int32_t k, sq_rtn_range range, sq_qmethod method, bool keep_info, double loss,
                           double t0) {
    const sq_qplan_entry *e = &r->plan->e[k];
    float *w = tensor_f32(r, e->name);
    const int64_t n = e->rows * e->cols;
    float *w_hat = malloc((size_t)n * sizeof *w_hat + 4);
    if (!w || !w_hat) {
        free(w_hat);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory", e->name);
    }
    sq_rtn_opts ro = {.range = range, .mse = r->o->mse, .grid = r->o->grid};
    sq_status st = sq_rtn_quantize(&r->qw[k], w_hat, w, e->rows, e->cols, &e->scheme, &ro);
    if (st == SQ_OK) {
        if (!keep_info) info_base(r, k, method);
        r->info[k].loss = loss >= 0 ? loss : rel_weight_err(w, w_hat, n);
        memcpy(w, w_hat, (size_t)n * sizeof *w);
        report(r, k, sq_now() - t0);
    } else {
        sq_error_prefix(e->name);
    }
    free(w_hat);
    return st;
}

/* ===== Sequential building blocks =====
 * core/calib_seq.c runs the windows in parallel, one runtime state per thread; each window is
 * computed by one thread with the kernels' fixed summation order, and everything derived from
 * several windows is combined afterwards in window order, so nothing depends on the thread
 * count. */

/* The windows through the blocks, with scratch for the AWQ search's windows. */
static sq_status seq_init(run *r) {
    const int64_t N = r->calib->n_samples;
    int64_t n_scratch = r->o->awq_windows > CHUNK_WINDOWS ? r->o->awq_windows : CHUNK_WINDOWS;
    if (n_scratch > N) n_scratch = N > CHUNK_WINDOWS ? N : CHUNK_WINDOWS;
    return sq_seq_init(&r->seq, r->m, r->calib, r->data, n_scratch);
}

static sq_calib_entry *entry_new(int32_t width) {
    sq_calib_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->width = width;
    e->xtx = calloc((size_t)width * width, sizeof(double));
    e->abs_sum = calloc((size_t)width, sizeof(double));
    e->sq_sum = calloc((size_t)width, sizeof(double));
    if (!e->xtx || !e->abs_sum || !e->sq_sum) {
        free(e->xtx);
        free(e->abs_sum);
        free(e->sq_sum);
        free(e);
        return NULL;
    }
    return e;
}

static void entry_free(sq_calib_entry *e) {
    if (!e) return;
    free(e->xtx);
    free(e->abs_sum);
    free(e->sq_sum);
    free(e);
}

/* ===== GPTQ ===== */

static void gptq_opts_for(const run *r, const sq_qplan_entry *e, sq_gptq_opts *go) {
    sq_gptq_opts_default(go);
    go->scheme = e->scheme;
    go->rtn.range = SQ_RTN_RANGE_GPTQ;
    go->rtn.mse = r->o->mse;
    go->rtn.grid = r->o->grid;
    go->percdamp = r->o->damp;
    go->block_size = r->o->block_size;
    go->act_order = r->o->act_order;
    go->static_groups = false;
}

/* Quantizes plan entries ks[0..n) (k < 0: skipped), which share one input, with X^T X of
 * that input (H factored once). */
static sq_status gptq_entries(run *r, const int32_t *ks, int n, const double *xtx, int64_t n_tokens) {
    sq_status st = SQ_OK;
    sq_gptq_hinv h;
    memset(&h, 0, sizeof h);
    bool have_h = false;
    double t_factor = 0;
    for (int i = 0; i < n && st == SQ_OK; i++) {
        const int32_t k = ks[i];
        if (k < 0) continue;
        const sq_qplan_entry *e = &r->plan->e[k];
        sq_gptq_opts go;
        gptq_opts_for(r, e, &go);
        double t0 = sq_now();
        if (!have_h) {
            if ((st = sq_gptq_hinv_init(&h, xtx, e->cols, n_tokens, &go))) {
                sq_error_prefix(e->name);
                break;
            }
            have_h = true;
            t_factor = sq_now() - t0;
            t0 = sq_now();
        }
        float *w = tensor_f32(r, e->name);
        float *w_hat = malloc((size_t)(e->rows * e->cols) * sizeof *w_hat + 4);
        if (!w || !w_hat) {
            free(w_hat);
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", e->name);
            break;
        }
        sq_gptq_result res;
        if ((st = sq_gptq_quantize(&r->qw[k], w_hat, &res, w, e->rows, &h, &go))) {
            sq_error_prefix(e->name);
            free(w_hat);
            break;
        }
        int64_t n_rescaled = 0;
        if (r->o->rescale && (st = sq_qweight_rescale_rows(&r->qw[k], w_hat, w, xtx, &n_rescaled))) {
            sq_error_prefix(e->name);
            free(w_hat);
            break;
        }
        memcpy(w, w_hat, (size_t)(e->rows * e->cols) * sizeof *w); /* later runs see the quantized layer */
        free(w_hat);
        info_base(r, k, SQ_QMETHOD_GPTQ);
        sq_quant_info *qi = &r->info[k];
        qi->act_order = r->o->act_order;
        qi->static_groups = r->o->act_order || e->scheme.group == 0;
        qi->damp = r->o->damp;
        qi->damp_used = res.percdamp;
        qi->block_size = (int32_t)res.block_size;
        qi->true_sequential = r->o->sequential;
        qi->loss = res.loss;
        report(r, k, sq_now() - t0 + t_factor);
        t_factor = 0;
    }
    sq_gptq_hinv_free(&h);
    return st;
}

/* Quantizes the planned linears of group g of layer l with X^T X of their input. */
static sq_status gptq_group(run *r, int32_t l, int g, const double *xtx, int64_t n_tokens) {
    int32_t ks[3];
    for (int i = 0; i < SQ_SEQ_N_ROLES[g]; i++) ks[i] = planned(r, l, SQ_SEQ_ROLES[g][i]);
    return gptq_entries(r, ks, SQ_SEQ_N_ROLES[g], xtx, n_tokens);
}

/* The head (lm_head, or the embedding of a tied model, which is the output matrix) by
 * GPTQ: its input is the final RMSNorm of the quantized model's last hidden states, which
 * r->seq.X holds for every window after the last block. Skipped when the head is not planned. */
static sq_status gptq_head(run *r) {
    const sq_config *cfg = &r->m->cfg;
    const sq_role want = cfg->tied_embeddings ? SQ_ROLE_EMBED : SQ_ROLE_LM_HEAD;
    int32_t k = -1;
    for (int32_t i = 0; i < r->plan->n; i++)
        if (r->plan->e[i].quantize && r->plan->e[i].role == want) k = i;
    if (k < 0) return SQ_OK;
    const int32_t d = r->dim;
    sq_calib_entry *e = entry_new(d);
    double *pack = malloc(sq_calib_pack_doubles(d, (int64_t)CHUNK_WINDOWS * r->seq.L) * sizeof(double));
    if (!e || !pack) {
        entry_free(e);
        free(pack);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    const float *gamma = r->m->out_norm;
    for (int64_t c0 = 0; c0 < r->seq.N; c0 += CHUNK_WINDOWS) {
        const int64_t nc = r->seq.N - c0 < CHUNK_WINDOWS ? r->seq.N - c0 : CHUNK_WINDOWS, nt = nc * r->seq.L;
        const float *x = sq_seq_win(&r->seq, r->seq.X, c0);
        float *y = r->seq.capbuf[0]; /* width dim, CHUNK_WINDOWS * L rows */
        for (int64_t t = 0; t < nt; t++) {
            double ss = 0;
            for (int32_t j = 0; j < d; j++) ss += (double)x[t * d + j] * x[t * d + j];
            const float inv = (float)(1.0 / sqrt(ss / d + (double)cfg->norm_eps));
            for (int32_t j = 0; j < d; j++) y[t * d + j] = x[t * d + j] * inv * gamma[j];
        }
        sq_calib_entry_add(e, y, nt, pack);
    }
    free(pack);
    sq_status st = gptq_entries(r, &k, 1, e->xtx, e->n_tokens);
    entry_free(e);
    return st;
}

static sq_status gptq_sequential(run *r) {
    sq_status st = SQ_OK;
    const size_t wn = (size_t)r->seq.L * (size_t)r->dim;
    int32_t maxw = r->dim > r->q_dim ? r->dim : r->q_dim;
    if (r->hid > maxw) maxw = r->hid;
    double *pack = malloc(sq_calib_pack_doubles(maxw, (int64_t)CHUNK_WINDOWS * r->seq.L) * sizeof(double));
    if (!pack) return sq_errorf(SQ_ERR_OOM, "out of memory");
    sq_seq_job *jobs = r->seq.jobs;
    for (int32_t l = 0; l < r->n_layers && st == SQ_OK; l++) {
        const double t_layer = sq_now();
        bool first = true;
        for (int g = 0; g < 4 && st == SQ_OK; g++) {
            if (!group_planned(r, l, g)) continue;
            const int32_t w = width_of(r, g);
            sq_calib_entry *e = entry_new(w);
            if (!e) {
                st = sq_errorf(SQ_ERR_OOM, "out of memory");
                break;
            }
            /* the first pass of a layer runs the FP block: keep its output for the report */
            for (int64_t c0 = 0; c0 < r->seq.N && st == SQ_OK; c0 += CHUNK_WINDOWS) {
                const int64_t nc = r->seq.N - c0 < CHUNK_WINDOWS ? r->seq.N - c0 : CHUNK_WINDOWS;
                for (int64_t i = 0; i < nc; i++) {
                    memset(&jobs[i], 0, sizeof jobs[i]);
                    jobs[i].in = sq_seq_win(&r->seq, r->seq.X, c0 + i);
                    jobs[i].out = first ? sq_seq_win(&r->seq, r->seq.Y, c0 + i) : r->seq.scratch + (size_t)i * wn;
                    jobs[i].cap[g] = r->seq.capbuf[g] + (size_t)i * (size_t)r->seq.L * (size_t)w;
                }
                if ((st = sq_seq_run(&r->seq, l, jobs, nc)) == SQ_OK) sq_calib_entry_add(e, r->seq.capbuf[g], nc * r->seq.L, pack);
            }
            first = false;
            if (st == SQ_OK) st = gptq_group(r, l, g, e->xtx, e->n_tokens);
            entry_free(e);
        }
        if (st) break;
        /* the quantized block makes the next block's inputs */
        double err = 0, upd = 0;
        for (int64_t c0 = 0; c0 < r->seq.N && st == SQ_OK; c0 += CHUNK_WINDOWS) {
            const int64_t nc = r->seq.N - c0 < CHUNK_WINDOWS ? r->seq.N - c0 : CHUNK_WINDOWS;
            for (int64_t i = 0; i < nc; i++) {
                memset(&jobs[i], 0, sizeof jobs[i]);
                memcpy(r->seq.scratch + (size_t)i * wn, sq_seq_win(&r->seq, r->seq.X, c0 + i), wn * sizeof(float));
                jobs[i].in = r->seq.scratch + (size_t)i * wn;
                jobs[i].out = sq_seq_win(&r->seq, r->seq.X, c0 + i);
            }
            if ((st = sq_seq_run(&r->seq, l, jobs, nc)) || first) continue;
            for (int64_t i = 0; i < nc; i++) {
                err += sq_seq_sq_diff(sq_seq_win(&r->seq, r->seq.X, c0 + i), sq_seq_win(&r->seq, r->seq.Y, c0 + i), wn);
                upd += sq_seq_sq_diff(sq_seq_win(&r->seq, r->seq.Y, c0 + i), r->seq.scratch + (size_t)i * wn, wn);
            }
        }
        if (st == SQ_OK && !first && r->o->on_layer) {
            const double nt = (double)r->seq.N * (double)wn;
            sq_qlayer_report lr = {l, r->n_layers, err / nt, upd > 0 ? err / upd : 0, r->seq.N * r->seq.L, sq_now() - t_layer};
            r->o->on_layer(r->o->user, &lr);
        }
    }
    free(pack);
    if (st == SQ_OK && r->o->gptq_head) st = gptq_head(r);
    return st;
}

static sq_status gptq_stored(run *r) {
    sq_status st = SQ_OK;
    for (int32_t l = 0; l < r->n_layers && st == SQ_OK; l++)
        for (int g = 0; g < 4 && st == SQ_OK; g++) {
            if (!group_planned(r, l, g)) continue;
            const sq_calib_entry *e = sq_calib_entry_at(r->calib, l, SQ_SEQ_POINT[g]);
            if (!e || e->width != width_of(r, g))
                return sq_errorf(SQ_ERR_FORMAT, "calib.h5 has no statistics for layer %d input %d", l, g);
            st = gptq_group(r, l, g, e->xtx, e->n_tokens);
        }
    return st;
}

/* ===== AWQ ===== */

/* The grid AWQ quantizes with (ALGORITHMS.md 3 step 6: any quantizer may run on the scaled
 * weights). Asymmetric: llm-awq's variant (true min/max). Symmetric: llm-awq's
 * s = max|w| / (2^(b-1) - 1) never uses the code -2^(b-1) (7 of the 8 levels at 3 bits, a
 * 14 % coarser step than needed), so symmetric schemes use 1's symmetric grid, the one
 * RTN and GPTQ use. */
static sq_rtn_range awq_range(const sq_qscheme *s) { return s->asym ? SQ_RTN_RANGE_AWQ : SQ_RTN_RANGE_GPTQ; }

/* The scaling groups of ALGORITHMS.md 3, in block order. */
typedef struct {
    int g;                /* input group (0..3): members and capture point */
    const char *prev;     /* the op that absorbs 1/s, under model.layers.N. */
    bool prev_linear;     /* rows of a linear (and its bias) absorb 1/s; else a norm weight */
} awq_group;

static const awq_group AWQ_GROUPS[4] = {
    {0, "input_layernorm", false},
    {1, "self_attn.v_proj", true},
    {2, "post_attention_layernorm", false},
    {3, "mlp.up_proj", true},
};

static void awq_prev_names(const awq_group *ag, int32_t l, char *w, char *b, size_t cap) {
    snprintf(w, cap, "model.layers.%d.%s.weight", l, ag->prev);
    if (ag->prev_linear) snprintf(b, cap, "model.layers.%d.%s.bias", l, ag->prev);
    else b[0] = '\0';
}

static const char *role_tensor(char *buf, size_t cap, int32_t l, sq_role role) {
    static const char *const part[] = {[SQ_ROLE_Q] = "self_attn.q_proj", [SQ_ROLE_K] = "self_attn.k_proj",
                                       [SQ_ROLE_V] = "self_attn.v_proj", [SQ_ROLE_O] = "self_attn.o_proj",
                                       [SQ_ROLE_GATE] = "mlp.gate_proj",  [SQ_ROLE_UP] = "mlp.up_proj",
                                       [SQ_ROLE_DOWN] = "mlp.down_proj"};
    snprintf(buf, cap, "model.layers.%d.%s.weight", l, part[role]);
    return buf;
}

/* v -> o is only possible when v's output rows are o's input columns one to one (llm-awq
 * compares the two weight shapes, which also skips GQA). */
static bool awq_group_applies(const run *r, int g) {
    return g != 1 || (r->kv_dim == r->q_dim && r->q_dim == r->dim);
}

/* Block l with its current weights on windows wins[0..n) (n <= n_scratch): the summed
 * squared difference from the FP outputs Y; *upd (optional) gets the summed squared FP
 * update Y - X of those windows. */
static double block_error(run *r, int32_t l, const int64_t *wins, int64_t n, sq_status *st, double *upd) {
    const size_t wn = (size_t)r->seq.L * (size_t)r->dim;
    sq_seq_job *jobs = r->seq.jobs;
    double err = 0;
    for (int64_t k = 0; k < n; k++) {
        memset(&jobs[k], 0, sizeof jobs[k]);
        jobs[k].in = sq_seq_win(&r->seq, r->seq.X, wins[k]);
        jobs[k].out = r->seq.scratch + (size_t)k * wn;
    }
    if ((*st = sq_seq_run(&r->seq, l, jobs, n))) return 0;
    if (upd) *upd = 0;
    for (int64_t k = 0; k < n; k++) {
        err += sq_seq_sq_diff(r->seq.scratch + (size_t)k * wn, sq_seq_win(&r->seq, r->seq.Y, wins[k]), wn);
        if (upd) *upd += sq_seq_sq_diff(sq_seq_win(&r->seq, r->seq.Y, wins[k]), sq_seq_win(&r->seq, r->seq.X, wins[k]), wn);
    }
    return err;
}

typedef struct {
    run *r;
    int32_t l;
    int g;
    float *buf[3];          /* fake-quantized candidates of the planned members */
    /* sequential: the block on a subsample of windows vs the FP block output */
    const int64_t *wins;
    int64_t n_wins;
    /* stored: each member's output error through H (double [cols x cols], full) */
    const double *H;
    int64_t n_tokens;
} awq_loss_ctx;

/* sum over rows of e_r H e_r^T for E = W - W_hat [rows x cols], in fixed 32-row chunks. */
static double quad_form(const float *w, const float *w_hat, int64_t rows, int64_t cols, const double *H) {
    const int64_t CH = 32, n_ch = (rows + CH - 1) / CH;
    double *per = calloc((size_t)rows + 1, sizeof *per);
    if (!per) return NAN;
    int fail = 0;
    sq_linalg_serial_begin();
#pragma omp parallel for schedule(dynamic, 1) num_threads(sq_num_threads()) reduction(| : fail)
    for (int64_t ch = 0; ch < n_ch; ch++) {
        const int64_t r0 = ch * CH, nr = rows - r0 < CH ? rows - r0 : CH;
        double *e = malloc((size_t)(nr * cols) * sizeof *e), *eh = malloc((size_t)(nr * cols) * sizeof *eh);
        if (!e || !eh) {
            fail = 1;
        } else {
            for (int64_t i = 0; i < nr * cols; i++) e[i] = (double)w[r0 * cols + i] - w_hat[r0 * cols + i];
            sq_linalg_dgemm_nt(eh, cols, e, cols, H, cols, nr, cols, cols);
            for (int64_t i = 0; i < nr; i++) {
                double s = 0;
                for (int64_t j = 0; j < cols; j++) s += eh[i * cols + j] * e[i * cols + j];
                per[r0 + i] = s;
            }
        }
        free(e);
        free(eh);
    }
    sq_linalg_serial_end();
    double s = 0;
    for (int64_t i = 0; i < rows; i++) s += per[i];
    free(per);
    return fail ? NAN : s;
}

static sq_status awq_loss(void *user, const float *scales, double *loss) {
    awq_loss_ctx *a = user;
    run *r = a->r;
    sq_status st = SQ_OK;
    sq_rtn_opts ro = {.range = SQ_RTN_RANGE_AWQ, .mse = r->o->mse, .grid = r->o->grid};
    double total = 0, count = 0;
    for (int i = 0; i < SQ_SEQ_N_ROLES[a->g] && st == SQ_OK; i++) {
        int32_t k = planned(r, a->l, SQ_SEQ_ROLES[a->g][i]);
        if (k < 0) continue;
        const sq_qplan_entry *e = &r->plan->e[k];
        const float *w = tensor_f32(r, e->name);
        ro.range = awq_range(&e->scheme);
        if ((st = sq_rtn_fakequant(a->buf[i], w, e->rows, e->cols, scales, &e->scheme, &ro))) break;
        if (a->H) {
            double q = quad_form(w, a->buf[i], e->rows, e->cols, a->H);
            if (isnan(q)) st = sq_errorf(SQ_ERR_OOM, "out of memory");
            total += q;
            count += (double)e->rows * (double)a->n_tokens;
        } else {
            layer_mat(r->m, a->l, e->role)->data = a->buf[i];
        }
    }
    if (st == SQ_OK && !a->H) {
        const size_t wn = (size_t)r->seq.L * (size_t)r->dim;
        total = block_error(r, a->l, a->wins, a->n_wins, &st, NULL);
        count = (double)a->n_wins * (double)wn;
    }
    for (int i = 0; i < SQ_SEQ_N_ROLES[a->g]; i++) { /* restore the FP weights */
        char nm[SQ_MAX_NAME];
        layer_mat(r->m, a->l, SQ_SEQ_ROLES[a->g][i])->data = tensor_f32(r, role_tensor(nm, sizeof nm, a->l, SQ_SEQ_ROLES[a->g][i]));
    }
    *loss = count > 0 ? total / count : 0;
    return st;
}

/* Pseudo-inputs for the clip search from H (stored mode): R upper with R^T R = H' / n,
 * H' = diag(1/s) H diag(1/s) (s may be NULL), a tiny ridge for dead inputs. x gets R as
 * float [cols x cols]. */
static sq_status pseudo_inputs(const double *H, int64_t cols, int64_t n, const float *s, float *x) {
    double *a = malloc((size_t)(cols * cols) * sizeof *a);
    if (!a) return sq_errorf(SQ_ERR_OOM, "out of memory");
    double md = 0;
    for (int64_t i = 0; i < cols; i++) md += H[i * cols + i];
    md = md / (double)cols / (double)n;
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = 0; j < cols; j++)
            a[i * cols + j] = H[i * cols + j] / (double)n / (s ? (double)s[i] * (double)s[j] : 1.0);
    sq_status st = SQ_ERR_ARG;
    for (int attempt = 0; attempt < 6 && st != SQ_OK; attempt++) {
        double ridge = (md > 0 ? md : 1.0) * 1e-6 * pow(10.0, attempt);
        double *b = malloc((size_t)(cols * cols) * sizeof *b);
        if (!b) {
            free(a);
            return sq_errorf(SQ_ERR_OOM, "out of memory");
        }
        memcpy(b, a, (size_t)(cols * cols) * sizeof *b);
        for (int64_t i = 0; i < cols; i++) b[i * cols + i] += ridge;
        sq_linalg_serial_begin();
        st = sq_linalg_chol_upper(b, cols, NULL);
        sq_linalg_serial_end();
        if (st == SQ_OK)
            for (int64_t i = 0; i < cols * cols; i++) x[i] = (float)b[i];
        free(b);
    }
    free(a);
    return st == SQ_OK ? SQ_OK : sq_errorf(SQ_ERR_ARG, "the clip search's X^T X is not positive definite");
}

/* Folds scales s of scaling group ag of layer l: the previous op absorbs 1/s, every member
 * (planned or not) is multiplied by s column-wise. */
static sq_status awq_fold(run *r, int32_t l, const awq_group *ag, const float *s) {
    char pw[SQ_MAX_NAME], pb[SQ_MAX_NAME], nm[SQ_MAX_NAME];
    awq_prev_names(ag, l, pw, pb, sizeof pw);
    const int64_t cols = width_of(r, ag->g);
    sq_status st;
    float *prev = tensor_f32(r, pw);
    if (!prev) return sq_errorf(SQ_ERR_INTERNAL, "AWQ: tensor %s is missing", pw);
    if (ag->prev_linear) {
        int32_t i = tensor_index(r, pw);
        if ((st = sq_awq_fold_rows(prev, cols, r->c->tensors[i].shape[1], s))) return st;
        float *b = pb[0] ? tensor_f32(r, pb) : NULL;
        if (b && (st = sq_awq_fold_vec(b, cols, s))) return st;
        if (b) mark_modified(r, pb);
    } else if ((st = sq_awq_fold_vec(prev, cols, s))) {
        return st;
    }
    mark_modified(r, pw);
    for (int i = 0; i < SQ_SEQ_N_ROLES[ag->g]; i++) {
        role_tensor(nm, sizeof nm, l, SQ_SEQ_ROLES[ag->g][i]);
        int32_t ti = tensor_index(r, nm);
        if ((st = sq_awq_scale_cols((float *)r->c->tensors[ti].data, r->c->tensors[ti].shape[0], cols, s))) return st;
        r->modified[ti] = true;
    }
    return SQ_OK;
}

/* Searches the scales of scaling group ag of layer l and folds them; *alpha is the chosen
 * exponent and s [cols] the scales, or *alpha = -1 when the group has nothing planned or
 * does not apply (v -> o with other shapes). */
static sq_status awq_scale_group(run *r, int32_t l, const awq_group *ag, const double *abs_sum, int64_t n_tokens,
                                 awq_loss_ctx *lc, float *s, double *alpha, double *loss) {
    const int g = ag->g;
    const int64_t cols = width_of(r, g);
    sq_status st = SQ_OK;
    *alpha = -1;
    *loss = 0;
    if (!group_planned(r, l, g) || !awq_group_applies(r, g)) return SQ_OK;
    float *x_mean = malloc((size_t)cols * sizeof *x_mean);
    sq_awq_linear lin[3];
    int n_lin = 0;
    for (int i = 0; i < 3; i++) lin[i].w = NULL;
    if (!x_mean) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    for (int64_t j = 0; j < cols; j++) x_mean[j] = (float)(abs_sum[j] / (double)n_tokens);
    int64_t duo_group = 0;
    for (int i = 0; i < SQ_SEQ_N_ROLES[g]; i++) {
        char nm[SQ_MAX_NAME];
        role_tensor(nm, sizeof nm, l, SQ_SEQ_ROLES[g][i]);
        int32_t ti = tensor_index(r, nm);
        lin[n_lin].w = (const float *)r->c->tensors[ti].data;
        lin[n_lin++].rows = r->c->tensors[ti].shape[0];
        int32_t k = planned(r, l, SQ_SEQ_ROLES[g][i]);
        if (k >= 0 && !duo_group) duo_group = sq_qscheme_group_len(&r->plan->e[k].scheme, cols);
        if (k >= 0 && !(lc->buf[i] = malloc((size_t)(r->plan->e[k].rows * cols) * sizeof(float)))) {
            st = sq_errorf(SQ_ERR_OOM, "out of memory");
            goto done;
        }
    }
    sq_awq_opts ao;
    sq_awq_opts_default(&ao);
    ao.duo_scaling = r->o->awq_duo;
    ao.duo_group = (int32_t)duo_group;
    sq_awq_result res;
    lc->r = r;
    lc->l = l;
    lc->g = g;
    if ((st = sq_awq_search(s, &res, x_mean, cols, lin, n_lin, &ao, awq_loss, lc))) goto done;
    if ((st = awq_fold(r, l, ag, s))) goto done;
    *alpha = res.alpha;
    *loss = res.loss;
done:
    for (int i = 0; i < 3; i++) {
        free(lc->buf[i]);
        lc->buf[i] = NULL;
    }
    free(x_mean);
    return st;
}

/* Clip search (not q/k) and AWQ's RTN for the planned members of group g; the tensors get
 * the decoded weights. x_rows: the members' inputs (after folding). */
static sq_status awq_quantize_group(run *r, int32_t l, int g, const float *x_rows, int64_t n_rows, double alpha,
                                    double loss) {
    sq_status st = SQ_OK;
    const int64_t cols = width_of(r, g);
    for (int i = 0; i < SQ_SEQ_N_ROLES[g] && st == SQ_OK; i++) {
        const sq_role role = SQ_SEQ_ROLES[g][i];
        int32_t k = planned(r, l, role);
        if (k < 0) continue;
        const sq_qplan_entry *e = &r->plan->e[k];
        float *w = tensor_f32(r, e->name);
        const double t0 = sq_now();
        sq_rtn_opts ro = {.range = awq_range(&e->scheme), .mse = r->o->mse, .grid = r->o->grid};
        if (r->o->awq_clip && role != SQ_ROLE_Q && role != SQ_ROLE_K && x_rows && n_rows > 0 &&
            (st = sq_awq_clip(w, e->rows, cols, x_rows, n_rows, &e->scheme, &ro, NULL, NULL))) {
            sq_error_prefix(e->name);
            break;
        }
        info_base(r, k, SQ_QMETHOD_AWQ);
        r->info[k].awq_alpha = alpha;
        st = rtn_entry(r, k, ro.range, SQ_QMETHOD_AWQ, true, alpha >= 0 ? loss : -1.0, t0);
    }
    return st;
}

static sq_status awq_sequential(run *r) {
    sq_status st = SQ_OK;
    const int64_t n_tok = r->seq.N * r->seq.L;
    const size_t wn = (size_t)r->seq.L * (size_t)r->dim;
    /* the windows the scale search runs, spread evenly */
    int64_t n_w = r->o->awq_windows > 0 && r->o->awq_windows < r->seq.N ? r->o->awq_windows : r->seq.N;
    if (n_w > r->seq.n_scratch) n_w = r->seq.n_scratch;
    const int32_t maxw = width_of(r, 0) > width_of(r, 3) ? (width_of(r, 0) > width_of(r, 1) ? width_of(r, 0) : width_of(r, 1))
                                                         : (width_of(r, 3) > width_of(r, 1) ? width_of(r, 3) : width_of(r, 1));
    int64_t *wins = malloc((size_t)n_w * sizeof *wins);
    float *sc[4] = {NULL}, *x = malloc((size_t)maxw * (size_t)maxw * sizeof *x);
    double *pack = malloc(sq_calib_pack_doubles(maxw, (int64_t)CHUNK_WINDOWS * r->seq.L) * sizeof(double));
    sq_calib_entry *ent[4] = {NULL};
    bool ok = wins && x && pack;
    for (int p = 0; p < 4 && ok; p++) ok = (sc[p] = malloc((size_t)maxw * sizeof(float))) != NULL;
    if (!ok) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    for (int64_t k = 0; k < n_w; k++) wins[k] = k * r->seq.N / n_w;
    sq_seq_job *jobs = r->seq.jobs;
    for (int32_t l = 0; l < r->n_layers && st == SQ_OK; l++) {
        const double t_layer = sq_now();
        bool any = false;
        for (int g = 0; g < 4; g++) any = any || group_planned(r, l, g);
        /* FP block: the reference output Y and the full statistics (mean |x| for the scale
         * search, X^T X for the clip search's pseudo-inputs) at every input, as calib.h5
         * stores them for the non-sequential mode */
        for (int p = 0; p < 4 && any && st == SQ_OK; p++)
            if (!(ent[p] = entry_new(width_of(r, p)))) st = sq_errorf(SQ_ERR_OOM, "out of memory");
        for (int64_t c0 = 0; c0 < r->seq.N && st == SQ_OK; c0 += CHUNK_WINDOWS) {
            const int64_t nc = r->seq.N - c0 < CHUNK_WINDOWS ? r->seq.N - c0 : CHUNK_WINDOWS;
            for (int64_t i = 0; i < nc; i++) {
                jobs[i].in = sq_seq_win(&r->seq, r->seq.X, c0 + i);
                jobs[i].out = sq_seq_win(&r->seq, r->seq.Y, c0 + i);
                for (int p = 0; p < 4; p++)
                    jobs[i].cap[p] = any ? r->seq.capbuf[p] + (size_t)i * (size_t)r->seq.L * (size_t)width_of(r, p) : NULL;
            }
            if ((st = sq_seq_run(&r->seq, l, jobs, nc)) || !any) continue;
            for (int p = 0; p < 4; p++) sq_calib_entry_add(ent[p], r->seq.capbuf[p], nc * r->seq.L, pack);
        }
        if (st || !any) goto next;
        double alpha[4], gl[4];
        for (int g = 0; g < 4 && st == SQ_OK; g++) {
            awq_loss_ctx lc = {.wins = wins, .n_wins = n_w};
            st = awq_scale_group(r, l, &AWQ_GROUPS[g], ent[g]->abs_sum, n_tok, &lc, sc[g], &alpha[g], &gl[g]);
        }
        if (st || r->o->awq_fold_only) goto next;
        for (int g = 0; g < 4 && st == SQ_OK; g++) {
            if (!group_planned(r, l, g)) continue;
            const int64_t cols = width_of(r, g);
            /* the clip search sees the scaled inputs x / s through X^T X of every token */
            if (r->o->awq_clip) st = pseudo_inputs(ent[g]->xtx, cols, ent[g]->n_tokens, alpha[g] >= 0 ? sc[g] : NULL, x);
            if (st == SQ_OK) st = awq_quantize_group(r, l, g, r->o->awq_clip ? x : NULL, cols, alpha[g], gl[g]);
        }
        if (st == SQ_OK && r->o->on_layer) { /* the quantized block on the search windows */
            double upd = 0, err = block_error(r, l, wins, n_w, &st, &upd);
            sq_qlayer_report lr = {l, r->n_layers, err / ((double)n_w * (double)wn), upd > 0 ? err / upd : 0,
                                   n_w * r->seq.L, sq_now() - t_layer};
            if (st == SQ_OK) r->o->on_layer(r->o->user, &lr);
        }
    next:; /* AWQ: the next block's inputs come from the FP block */
        for (int p = 0; p < 4; p++) {
            entry_free(ent[p]);
            ent[p] = NULL;
        }
        float *t = r->seq.X;
        r->seq.X = r->seq.Y;
        r->seq.Y = t;
    }
done:
    for (int p = 0; p < 4; p++) {
        entry_free(ent[p]);
        free(sc[p]);
    }
    free(pack);
    free(wins);
    free(x);
    return st;
}

static sq_status awq_stored(run *r) {
    sq_status st = SQ_OK;
    const int64_t maxw = r->hid > r->dim ? (r->hid > r->q_dim ? r->hid : r->q_dim) : (r->dim > r->q_dim ? r->dim : r->q_dim);
    float *sc[4] = {NULL}, *x = malloc((size_t)(maxw * maxw) * sizeof *x);
    for (int g = 0; g < 4; g++) sc[g] = malloc((size_t)maxw * sizeof(float));
    if (!x || !sc[0] || !sc[1] || !sc[2] || !sc[3]) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    for (int32_t l = 0; l < r->n_layers && st == SQ_OK; l++) {
        const sq_calib_entry *e[4];
        double alpha[4], loss[4];
        for (int g = 0; g < 4; g++) {
            e[g] = sq_calib_entry_at(r->calib, l, SQ_SEQ_POINT[g]);
            if (!e[g] || e[g]->width != width_of(r, g)) {
                st = sq_errorf(SQ_ERR_FORMAT, "calib.h5 has no statistics for layer %d input %d", l, g);
                goto done;
            }
        }
        /* every scaling group first (a fold may change a linear of an earlier group: v, up) */
        for (int g = 0; g < 4 && st == SQ_OK; g++) {
            awq_loss_ctx lc = {.H = e[g]->xtx, .n_tokens = e[g]->n_tokens};
            st = awq_scale_group(r, l, &AWQ_GROUPS[g], e[g]->abs_sum, e[g]->n_tokens, &lc, sc[g], &alpha[g], &loss[g]);
        }
        if (st || r->o->awq_fold_only) continue;
        for (int g = 0; g < 4 && st == SQ_OK; g++) {
            if (!group_planned(r, l, g)) continue;
            const int64_t cols = e[g]->width;
            if (r->o->awq_clip) st = pseudo_inputs(e[g]->xtx, cols, e[g]->n_tokens, alpha[g] >= 0 ? sc[g] : NULL, x);
            if (st == SQ_OK) st = awq_quantize_group(r, l, g, r->o->awq_clip ? x : NULL, cols, alpha[g], loss[g]);
        }
    }
done:
    free(x);
    for (int g = 0; g < 4; g++) free(sc[g]);
    return st;
}

/* ===== Packing ===== */

sq_status sq_qweight_pack_tensor(sq_tensor *t, const sq_qweight *q) {
    const sq_type ty = sq_qtype_of_bits(q->scheme.bits);
    const sq_qparams qp = {.group = (int32_t)sq_qscheme_group_len(&q->scheme, q->cols), .asym = q->scheme.asym};
    sq_status st = sq_qparams_validate(ty, qp, q->cols, t->name);
    if (st) return st;
    const size_t rb = sq_row_bytes(ty, q->cols, qp);
    uint8_t *data = malloc((size_t)q->rows * rb + 1);
    if (!data) return sq_errorf(SQ_ERR_OOM, "%s: out of memory packing", t->name);
    for (int64_t r = 0; r < q->rows && st == SQ_OK; r++)
        st = sq_qrow_pack(ty, qp, q->cols, q->codes + r * q->cols, q->scales + r * q->n_groups,
                          q->zeros ? q->zeros + r * q->n_groups : NULL, data + (size_t)r * rb);
    if (st) {
        free(data);
        sq_error_prefix(t->name);
        return st;
    }
    if (t->owns_data) free(t->data);
    t->data = data;
    t->owns_data = true;
    t->type = ty;
    t->q = qp;
    t->nbytes = (size_t)q->rows * rb;
    return SQ_OK;
}

sq_status sq_tensor_from_f32(sq_tensor *t, sq_type want) {
    const int64_t n = sq_tensor_numel(t);
    size_t nb = sq_tensor_expected_bytes(want, t->n_dims, t->shape);
    void *buf = malloc(nb + 1);
    if (!buf) return sq_errorf(SQ_ERR_OOM, "out of memory");
    sq_status st = sq_convert_rows(buf, want, t->data, SQ_TYPE_F32, n);
    if (st) {
        free(buf);
        return st;
    }
    if (t->owns_data) free(t->data);
    t->data = buf;
    t->owns_data = true;
    t->type = want;
    t->nbytes = nb;
    return SQ_OK;
}

/* ===== Entry point ===== */

sq_status sq_quantize_checkpoint(sq_checkpoint *c, const sq_qplan *plan, const sq_qrun_opts *o,
                                 const sq_calib *calib, const sq_calib_data *data, const char *calib_sha256) {
    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    sq_status st = SQ_OK;
    sq_type *orig = NULL;
    const bool needs_calib = o->method != SQ_QMETHOD_RTN;
    if (needs_calib && !calib)
        return sq_errorf(SQ_ERR_ARG, "--method %s needs calibration statistics (--calib calib.h5)",
                         sq_qmethod_name(o->method));
    if (needs_calib && o->sequential && !data)
        return sq_errorf(SQ_ERR_ARG, "sequential mode needs the calibration data (or use --no-sequential)");
    if (needs_calib && (st = sq_calib_check_config(calib, &c->cfg))) return st;
    for (int32_t i = 0; i < c->n_tensors; i++)
        if (sq_type_is_quant(c->tensors[i].type))
            return sq_errorf(SQ_ERR_ARG, "tensor '%s' is already %s; quantize from the float model", c->tensors[i].name,
                             sq_type_name(c->tensors[i].type));
    r->c = c;
    r->plan = plan;
    r->o = o;
    r->calib = calib;
    r->data = data;
    r->calib_sha = calib_sha256;
    r->n_layers = c->cfg.n_layers;
    r->dim = c->cfg.dim;
    r->q_dim = c->cfg.n_heads * c->cfg.head_dim;
    r->kv_dim = c->cfg.n_kv_heads * c->cfg.head_dim;
    r->hid = c->cfg.hidden_dim;
    orig = malloc(((size_t)c->n_tensors + 1) * sizeof *orig);
    r->modified = calloc((size_t)c->n_tensors + 1, sizeof *r->modified);
    r->pidx = malloc(((size_t)r->n_layers * N_ROLES + 1) * sizeof *r->pidx);
    r->qw = calloc((size_t)plan->n + 1, sizeof *r->qw);
    r->info = calloc((size_t)plan->n + 1, sizeof *r->info);
    r->done = calloc((size_t)plan->n + 1, sizeof *r->done);
    if (!orig || !r->modified || !r->pidx || !r->qw || !r->info || !r->done) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < r->n_layers * N_ROLES; i++) r->pidx[i] = -1;
    for (int32_t k = 0; k < plan->n; k++) {
        const sq_qplan_entry *e = &plan->e[k];
        if (!sq_checkpoint_find(c, e->name)) {
            st = sq_errorf(SQ_ERR_ARG, "the plan names tensor '%s', which the checkpoint does not have", e->name);
            goto done;
        }
        if (e->layer >= 0 && e->layer < r->n_layers) r->pidx[(size_t)e->layer * N_ROLES + e->role] = k;
    }
    /* work in f32; the binder borrows the checkpoint's tensors */
    for (int32_t i = 0; i < c->n_tensors; i++) orig[i] = c->tensors[i].type;
    if ((st = sq_checkpoint_convert(c, SQ_TYPE_F32))) goto done;
    if ((st = sq_model_from_tensors(&r->m, &c->cfg, &c->vocab, c->tensors, c->n_tensors, false))) goto done;
    for (int32_t l = 0; l < r->n_layers; l++) { /* norms and biases: the checkpoint's own f32 data */
        char nm[SQ_MAX_NAME];
        sq_layer *y = &r->m->layers[l];
#define REPOINT(field, fmt)                               \
    snprintf(nm, sizeof nm, fmt, l);                      \
    if (y->field) y->field = tensor_f32(r, nm);
        REPOINT(attn_norm, "model.layers.%d.input_layernorm.weight")
        REPOINT(ffn_norm, "model.layers.%d.post_attention_layernorm.weight")
        REPOINT(bv, "model.layers.%d.self_attn.v_proj.bias")
        REPOINT(b_up, "model.layers.%d.mlp.up_proj.bias")
#undef REPOINT
    }

    switch (o->method) {
    case SQ_QMETHOD_RTN:
        for (int32_t k = 0; k < plan->n && st == SQ_OK; k++)
            if (plan->e[k].quantize) st = rtn_entry(r, k, SQ_RTN_RANGE_GPTQ, SQ_QMETHOD_RTN, false, -1.0, sq_now());
        break;
    case SQ_QMETHOD_GPTQ:
        if (o->sequential) {
            if ((st = seq_init(r)) == SQ_OK) st = gptq_sequential(r);
        } else {
            st = gptq_stored(r);
        }
        break;
    case SQ_QMETHOD_AWQ:
        if (o->sequential) {
            if ((st = seq_init(r)) == SQ_OK) st = awq_sequential(r);
        } else {
            st = awq_stored(r);
        }
        break;
    }
    if (st) goto done;
    if (o->awq_fold_only && o->method == SQ_QMETHOD_AWQ) goto done;
    /* the embedding and the head: RTN */
    for (int32_t k = 0; k < plan->n && st == SQ_OK; k++)
        if (plan->e[k].quantize && !r->done[k])
            st = rtn_entry(r, k, o->method == SQ_QMETHOD_AWQ ? awq_range(&plan->e[k].scheme) : SQ_RTN_RANGE_GPTQ, SQ_QMETHOD_RTN,
                           false, -1.0, sq_now());
    if (st) goto done;
    /* packed tensors, method records, original float types where nothing changed */
    for (int32_t k = 0; k < plan->n && st == SQ_OK; k++) {
        if (!plan->e[k].quantize) continue;
        sq_tensor *t = sq_checkpoint_find(c, plan->e[k].name);
        if ((st = sq_qweight_pack_tensor(t, &r->qw[k])) == SQ_OK) st = sq_checkpoint_set_quant_info(c, &r->info[k]);
    }
    for (int32_t i = 0; i < c->n_tensors && st == SQ_OK; i++) {
        sq_tensor *t = &c->tensors[i];
        const sq_qplan_entry *e = sq_qplan_find(plan, t->name);
        sq_type want = e && e->keep_type >= 0 ? (sq_type)e->keep_type : r->modified[i] ? SQ_TYPE_F32 : orig[i];
        if (sq_type_is_quant(t->type) || want == SQ_TYPE_F32) continue;
        st = sq_tensor_from_f32(t, want);
    }
done:
    sq_seq_free(&r->seq);
    sq_model_free(r->m);
    for (int32_t k = 0; r->qw && k < plan->n; k++) sq_qweight_free(&r->qw[k]);
    free(r->qw);
    free(r->info);
    free(r->done);
    free(r->pidx);
    free(r->modified);
    free(orig);
    return st;
}
