/* pmodel.c - whole-checkpoint pruning for squish-prune (docs/pruning.md): the block-by-block
 * pipeline of ALGORITHMS.md 0/5/6 (SparseGPT arXiv:2301.00774 and Wanda arXiv:2306.11695
 * reference scripts: all linears of a block pruned from inputs captured in one pass, then
 * the pruned block makes the next block's inputs), or the stored calib.h5 statistics with
 * --no-sequential; unstructured and N:M masks per linear, structured units (FFN channels,
 * KV-head groups) zeroed during the run and physically removed at the end with the config
 * updated; joint SparseGPT + quantization packed like squish-quantize's tensors.
 *
 * The sequential machinery (one runtime state per worker, capture hook copying a window's
 * activations, windows in fixed chunks combined in window order) is core/calib_seq.c,
 * shared with quantize/qmodel.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/calib_seq.h"
#include "../core/util.h"
#include "../quantize/quant_internal.h"
#include "../runtime/cli.h"
#include "prune.h"

#define CHUNK_WINDOWS SQ_SEQ_CHUNK
#define N_ROLES (SQ_ROLE_LM_HEAD + 1)

void sq_prune_opts_default(sq_prune_opts *o) {
    memset(o, 0, sizeof *o);
    o->method = SQ_PRUNE_MAGNITUDE;
    o->pattern.kind = SQ_PAT_UNSTRUCTURED;
    o->pattern.sparsity = 0.5;
    o->sequential = true;
    o->damp = 0.01;
    o->block_size = 128;
}

uint64_t sq_prune_cache_bytes(const sq_config *cfg, int64_t n_samples, int32_t seq_len) {
    const uint64_t per = (uint64_t)n_samples * (uint64_t)seq_len * (uint64_t)cfg->dim;
    const uint64_t q_dim = (uint64_t)cfg->n_heads * (uint64_t)cfg->head_dim;
    const uint64_t widths = 2u * (uint64_t)cfg->dim + q_dim + (uint64_t)cfg->hidden_dim;
    return (2 * per + CHUNK_WINDOWS * (uint64_t)seq_len * ((uint64_t)cfg->dim + widths)) * sizeof(float);
}

static const char *const ROLE_MOD[N_ROLES] = {
    [SQ_ROLE_Q] = "self_attn.q_proj", [SQ_ROLE_K] = "self_attn.k_proj", [SQ_ROLE_V] = "self_attn.v_proj",
    [SQ_ROLE_O] = "self_attn.o_proj", [SQ_ROLE_GATE] = "mlp.gate_proj", [SQ_ROLE_UP] = "mlp.up_proj",
    [SQ_ROLE_DOWN] = "mlp.down_proj"};

/* Statistics of one layer's four inputs. */
typedef struct {
    sq_calib_entry *e[4]; /* sparsegpt: X^T X (owned in sequential mode) */
    double *sq[4];        /* wanda: sum x^2 per column */
    bool own;
} lstats;

typedef struct {
    sq_checkpoint *c;
    sq_model *m;
    const sq_qplan *plan;
    const sq_prune_opts *o;
    const sq_calib *calib;
    const sq_calib_data *data;
    int32_t n_layers, dim, q_dim, kv_dim, hid, hd, n_heads, n_kv;
    int32_t *pidx;
    sq_qweight *qw;        /* [plan->n] (joint mode) */
    sq_quant_info *qinfo;  /* [plan->n] */
    sq_sparse_info *recs; /* [plan->n] */
    bool *pruned;          /* [plan->n] */
    uint8_t *drop;         /* structured: [n_layers * n_units] */
    int64_t n_units, n_drop;
    sq_seq seq; /* sequential: the windows through the blocks (core/calib_seq.h) */
} prun;

static int32_t width_of(const prun *r, int g) { return g == 1 ? r->q_dim : g == 3 ? r->hid : r->dim; }

static int32_t planned(const prun *r, int32_t l, sq_role role) {
    int32_t k = r->pidx[(size_t)l * N_ROLES + role];
    return k >= 0 && r->plan->e[k].quantize ? k : -1;
}

static float *tensor_f32(const prun *r, const char *name) {
    sq_tensor *t = sq_checkpoint_find(r->c, name);
    return t ? (float *)t->data : NULL;
}

static float *role_f32(const prun *r, int32_t l, sq_role role, bool bias) {
    char nm[SQ_MAX_NAME];
    snprintf(nm, sizeof nm, "model.layers.%d.%s.%s", l, ROLE_MOD[role], bias ? "bias" : "weight");
    return tensor_f32(r, nm);
}

static void stats_free(lstats *s) {
    for (int g = 0; g < 4; g++) {
        if (s->own && s->e[g]) {
            free(s->e[g]->xtx);
            free(s->e[g]->abs_sum);
            free(s->e[g]->sq_sum);
            free(s->e[g]);
        }
        free(s->sq[g]);
    }
    memset(s, 0, sizeof *s);
}

static bool layer_planned(const prun *r, int32_t l) {
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < SQ_SEQ_N_ROLES[g]; i++)
            if (planned(r, l, SQ_SEQ_ROLES[g][i]) >= 0) return true;
    return false;
}

/* Which inputs' statistics layer l needs: every group with a planned linear; for
 * structured pruning the group that scores the units. */
static bool group_needed(const prun *r, int32_t l, int g) {
    const sq_prune_kind k = r->o->pattern.kind;
    if (k == SQ_PAT_FFN) return r->o->method == SQ_PRUNE_SPARSEGPT ? g == 3 : g >= 2;
    if (k == SQ_PAT_HEADS) return r->o->method == SQ_PRUNE_SPARSEGPT ? g == 1 : g <= 1;
    for (int i = 0; i < SQ_SEQ_N_ROLES[g]; i++)
        if (planned(r, l, SQ_SEQ_ROLES[g][i]) >= 0) return true;
    return false;
}

/* One pass of block l over every window: captures the needed inputs into statistics and
 * keeps the block's (unpruned) outputs in Y. */
static sq_status seq_stats(prun *r, int32_t l, lstats *s) {
    const bool xtx = r->o->method == SQ_PRUNE_SPARSEGPT;
    s->own = true;
    double *pack = NULL;
    sq_status st = SQ_OK;
    for (int g = 0; g < 4; g++) {
        if (!group_needed(r, l, g)) continue;
        const int32_t w = width_of(r, g);
        if (xtx) {
            sq_calib_entry *e = calloc(1, sizeof *e);
            if (!e) return sq_errorf(SQ_ERR_OOM, "out of memory");
            s->e[g] = e;
            e->width = w;
            e->xtx = calloc((size_t)w * (size_t)w, sizeof(double));
            e->abs_sum = calloc((size_t)w, sizeof(double));
            e->sq_sum = calloc((size_t)w, sizeof(double));
            if (!e->xtx || !e->abs_sum || !e->sq_sum) return sq_errorf(SQ_ERR_OOM, "out of memory for X^T X");
        } else if (!(s->sq[g] = calloc((size_t)w, sizeof(double))))             return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    if (xtx) {
        int32_t maxw = r->dim > r->q_dim ? r->dim : r->q_dim;
        if (r->hid > maxw) maxw = r->hid;
        if (!(pack = malloc(sq_calib_pack_doubles(maxw, (int64_t)CHUNK_WINDOWS * r->seq.L) * sizeof(double))))
            return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    for (int64_t c0 = 0; c0 < r->seq.N && st == SQ_OK; c0 += CHUNK_WINDOWS) {
        const int64_t nc = r->seq.N - c0 < CHUNK_WINDOWS ? r->seq.N - c0 : CHUNK_WINDOWS;
        for (int64_t i = 0; i < nc; i++) {
            memset(&r->seq.jobs[i], 0, sizeof r->seq.jobs[i]);
            r->seq.jobs[i].in = sq_seq_win(&r->seq, r->seq.X, c0 + i);
            r->seq.jobs[i].out = sq_seq_win(&r->seq, r->seq.Y, c0 + i);
            for (int g = 0; g < 4; g++)
                if (s->e[g] || s->sq[g]) r->seq.jobs[i].cap[g] = r->seq.capbuf[g] + (size_t)i * (size_t)r->seq.L * width_of(r, g);
        }
        if ((st = sq_seq_run(&r->seq, l, r->seq.jobs, nc))) break;
        for (int g = 0; g < 4; g++) {
            const int64_t n = nc * r->seq.L, w = width_of(r, g);
            if (s->e[g]) sq_calib_entry_add(s->e[g], r->seq.capbuf[g], n, pack);
            if (s->sq[g])
                for (int64_t t = 0; t < n; t++)
                    for (int64_t j = 0; j < w; j++) {
                        double v = r->seq.capbuf[g][t * w + j];
                        s->sq[g][j] += v * v;
                    }
        }
    }
    free(pack);
    return st;
}

/* The stored statistics (calib.h5) of layer l. */
static sq_status stored_stats(prun *r, int32_t l, lstats *s) {
    s->own = false;
    for (int g = 0; g < 4; g++) {
        if (!group_needed(r, l, g)) continue;
        sq_calib_entry *e = sq_calib_entry_at(r->calib, l, SQ_SEQ_POINT[g]);
        if (!e || e->width != width_of(r, g))
            return sq_errorf(SQ_ERR_FORMAT, "calib.h5 has no statistics for layer %d input %d", l, g);
        if (r->o->method == SQ_PRUNE_SPARSEGPT) {
            s->e[g] = e;
        } else {
            if (!(s->sq[g] = malloc((size_t)e->width * sizeof(double)))) return sq_errorf(SQ_ERR_OOM, "out of memory");
            memcpy(s->sq[g], e->sq_sum, (size_t)e->width * sizeof(double));
        }
    }
    return SQ_OK;
}

/* ===== Per-layer pruning ===== */

static void report(prun *r, int32_t k, const float *before, const float *after, int64_t zeros, double loss,
                   double damp, double t0) {
    const sq_qplan_entry *e = &r->plan->e[k];
    const int64_t n = e->rows * e->cols;
    if (loss < 0) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = (double)before[i] - after[i];
            num += d * d;
            den += (double)before[i] * before[i];
        }
        loss = den > 0 ? num / den : num;
    }
    sq_sparse_info *rec = &r->recs[k];
    snprintf(rec->name, sizeof rec->name, "%s", e->name);
    snprintf(rec->method, sizeof rec->method, "%s", sq_prune_method_name(r->o->method));
    if (r->o->pattern.kind == SQ_PAT_NM) {
        rec->n = r->o->pattern.n;
        rec->m = r->o->pattern.m;
    }
    r->pruned[k] = true;
    if (!r->o->on_tensor) return;
    sq_prune_report rep = {.name = e->name,
                           .short_name = sq_qplan_short_name(e),
                           .layer = e->layer,
                           .n_layers = r->n_layers,
                           .numel = n,
                           .zeros = zeros,
                           .loss = loss,
                           .damp_used = damp,
                           .seconds = sq_now() - t0};
    r->o->on_tensor(r->o->user, &rep);
}

static int64_t count_zeros(const float *w, int64_t n) {
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += w[i] == 0.0f;
    return z;
}

static void hinv_opts(const prun *r, sq_gptq_opts *go) {
    sq_gptq_opts_default(go);
    go->percdamp = r->o->damp;
    go->block_size = r->o->block_size;
    go->act_order = false;
}

/* Unstructured / N:M: every planned linear of layer l. */
static sq_status prune_layer_masks(prun *r, int32_t l, const lstats *s) {
    sq_status st = SQ_OK;
    for (int g = 0; g < 4 && st == SQ_OK; g++) {
        sq_gptq_hinv h;
        memset(&h, 0, sizeof h);
        bool have_h = false;
        for (int i = 0; i < SQ_SEQ_N_ROLES[g] && st == SQ_OK; i++) {
            const int32_t k = planned(r, l, SQ_SEQ_ROLES[g][i]);
            if (k < 0) continue;
            const sq_qplan_entry *e = &r->plan->e[k];
            const double t0 = sq_now();
            float *w = tensor_f32(r, e->name);
            const int64_t n = e->rows * e->cols;
            float *before = malloc((size_t)n * sizeof *before + 4);
            if (!w || !before) {
                free(before);
                st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", e->name);
                break;
            }
            memcpy(before, w, (size_t)n * sizeof *w);
            double loss = -1.0, damp = 0.0;
            int64_t zeros = 0;
            if (r->o->method == SQ_PRUNE_MAGNITUDE) {
                st = sq_prune_magnitude(w, e->rows, e->cols, &r->o->pattern);
            } else if (r->o->method == SQ_PRUNE_WANDA) {
                st = sq_prune_wanda(w, e->rows, e->cols, s->sq[g], &r->o->pattern);
            } else {
                if (!have_h) {
                    sq_gptq_opts go;
                    hinv_opts(r, &go);
                    if ((st = sq_gptq_hinv_init(&h, s->e[g]->xtx, e->cols, s->e[g]->n_tokens, &go)) == SQ_OK)
                        have_h = true;
                }
                sq_sparsegpt_opts so;
                sq_sparsegpt_opts_default(&so);
                so.percdamp = r->o->damp;
                so.block_size = r->o->block_size;
                so.quant = r->o->quant ? &e->scheme : NULL;
                sq_sparsegpt_result res;
                if (st == SQ_OK && (st = sq_sparsegpt(w, r->o->quant ? &r->qw[k] : NULL, &res, e->rows, &h,
                                                      &r->o->pattern, &so)) == SQ_OK) {
                    loss = res.loss;
                    damp = res.percdamp;
                    zeros = res.zeros;
                    if (r->o->quant) {
                        sq_quant_info *qi = &r->qinfo[k];
                        memset(qi, 0, sizeof *qi);
                        snprintf(qi->name, sizeof qi->name, "%s", e->name);
                        snprintf(qi->method, sizeof qi->method, "sgpt");
                        qi->bits = e->scheme.bits;
                        qi->group_size = e->scheme.group;
                        qi->symmetric = !e->scheme.asym;
                        qi->static_groups = e->scheme.group == 0;
                        qi->true_sequential = false;
                        qi->damp = r->o->damp;
                        qi->damp_used = res.percdamp;
                        qi->block_size = r->o->block_size;
                        qi->loss = res.loss;
                        qi->awq_alpha = -1.0;
                    }
                }
            }
            if (st) {
                sq_error_prefix(e->name);
                free(before);
                break;
            }
            if (r->o->method != SQ_PRUNE_SPARSEGPT) zeros = count_zeros(w, n);
            report(r, k, before, w, zeros, loss, damp, t0);
            free(before);
        }
        sq_gptq_hinv_free(&h);
    }
    return st;
}

/* Structured: chooses the units of layer l, zeroes them (sparsegpt: OBS-compensates the
 * column part) and records them in r->drop. */
static sq_status prune_layer_units(prun *r, int32_t l, const lstats *s) {
    const bool ffn = r->o->pattern.kind == SQ_PAT_FFN;
    const int64_t nu = r->n_units;
    const int64_t rep = r->n_heads / r->n_kv, qspan = rep * r->hd;
    double *scores = malloc((size_t)nu * sizeof *scores);
    uint8_t *drop = r->drop + (size_t)l * (size_t)nu;
    uint8_t *cols = NULL;
    sq_gptq_hinv h;
    memset(&h, 0, sizeof h);
    sq_status st = SQ_OK;
    const double t0 = sq_now();
    if (!scores) return sq_errorf(SQ_ERR_OOM, "out of memory");
    /* the matrices of a unit: rows of the first ones, columns of the last */
    sq_role rows_roles[3];
    int n_rows_roles;
    sq_role col_role;
    int64_t row_span[3], col_span;
    int g_rows, g_col;
    if (ffn) {
        rows_roles[0] = SQ_ROLE_GATE;
        rows_roles[1] = SQ_ROLE_UP;
        n_rows_roles = 2;
        row_span[0] = row_span[1] = 1;
        col_role = SQ_ROLE_DOWN;
        col_span = 1;
        g_rows = 2;
        g_col = 3;
    } else {
        rows_roles[0] = SQ_ROLE_Q;
        rows_roles[1] = SQ_ROLE_K;
        rows_roles[2] = SQ_ROLE_V;
        n_rows_roles = 3;
        row_span[0] = qspan;
        row_span[1] = row_span[2] = r->hd;
        col_role = SQ_ROLE_O;
        col_span = qspan;
        g_rows = 0;
        g_col = 1;
    }
    float *wc = role_f32(r, l, col_role, false);
    const int64_t wc_rows = r->dim, wc_cols = ffn ? r->hid : r->q_dim;
    if (r->o->method == SQ_PRUNE_SPARSEGPT) {
        sq_gptq_opts go;
        hinv_opts(r, &go);
        if ((st = sq_gptq_hinv_init(&h, s->e[g_col]->xtx, wc_cols, s->e[g_col]->n_tokens, &go)) == SQ_OK)
            st = sq_prune_obs_scores(scores, nu, col_span, wc, wc_rows, &h);
    } else {
        sq_prune_part parts[4];
        int np = 0;
        for (int i = 0; i < n_rows_roles; i++)
            parts[np++] = (sq_prune_part){.w = role_f32(r, l, rows_roles[i], false),
                                          .rows = row_span[i] * nu,
                                          .cols = r->dim,
                                          .sq_sum = s->sq[g_rows],
                                          .by_rows = true,
                                          .span = row_span[i]};
        parts[np++] = (sq_prune_part){.w = wc, .rows = wc_rows, .cols = wc_cols, .sq_sum = s->sq[g_col],
                                      .by_rows = false, .span = col_span};
        st = sq_prune_unit_scores(scores, nu, parts, np, r->o->method);
    }
    if (st == SQ_OK) st = sq_prune_select_lowest(drop, scores, nu, r->n_drop);
    if (st == SQ_OK && !(cols = calloc((size_t)wc_cols, 1))) st = sq_errorf(SQ_ERR_OOM, "out of memory");
    if (st == SQ_OK) {
        for (int64_t u = 0; u < nu; u++)
            if (drop[u]) memset(cols + u * col_span, 1, (size_t)col_span);
        /* rows (and their biases) of the row parts */
        for (int i = 0; i < n_rows_roles; i++) {
            float *w = role_f32(r, l, rows_roles[i], false), *b = role_f32(r, l, rows_roles[i], true);
            for (int64_t u = 0; u < nu; u++) {
                if (!drop[u]) continue;
                memset(w + (size_t)(u * row_span[i]) * (size_t)r->dim, 0, (size_t)(row_span[i] * r->dim) * sizeof(float));
                if (b) memset(b + u * row_span[i], 0, (size_t)row_span[i] * sizeof(float));
            }
        }
        if (r->o->method == SQ_PRUNE_SPARSEGPT) {
            st = sq_prune_obs_remove_cols(wc, wc_rows, &h, cols);
        } else {
            for (int64_t rr = 0; rr < wc_rows; rr++)
                for (int64_t j = 0; j < wc_cols; j++)
                    if (cols[j]) wc[rr * wc_cols + j] = 0.0f;
        }
    }
    if (st == SQ_OK) {
        const sq_role all[4] = {rows_roles[0], rows_roles[1], n_rows_roles == 3 ? rows_roles[2] : col_role, col_role};
        const int n_all = n_rows_roles + 1;
        for (int i = 0; i < n_all; i++) {
            const int32_t k = planned(r, l, all[i]);
            const sq_qplan_entry *e = &r->plan->e[k];
            const int64_t removed = (all[i] == col_role ? wc_rows : r->dim) * (r->n_drop * (all[i] == col_role
                                                                                                 ? col_span
                                                                                                 : row_span[i]));
            sq_sparse_info *rec = &r->recs[k];
            snprintf(rec->name, sizeof rec->name, "%s", e->name);
            snprintf(rec->method, sizeof rec->method, "%s", sq_prune_method_name(r->o->method));
            r->pruned[k] = true;
            if (r->o->on_tensor) {
                sq_prune_report rp = {.name = e->name,
                                      .short_name = sq_qplan_short_name(e),
                                      .layer = l,
                                      .n_layers = r->n_layers,
                                      .numel = e->rows * e->cols,
                                      .zeros = removed,
                                      .loss = 0.0,
                                      .damp_used = r->o->method == SQ_PRUNE_SPARSEGPT ? h.percdamp : 0.0,
                                      .seconds = i == 0 ? sq_now() - t0 : 0.0};
                r->o->on_tensor(r->o->user, &rp);
            }
        }
    }
    sq_gptq_hinv_free(&h);
    free(scores);
    free(cols);
    return st;
}

static sq_status prune_layer(prun *r, int32_t l, const lstats *s) {
    if (r->o->pattern.kind == SQ_PAT_FFN || r->o->pattern.kind == SQ_PAT_HEADS) return prune_layer_units(r, l, s);
    return prune_layer_masks(r, l, s);
}

/* ===== Drivers ===== */

static sq_status run_sequential(prun *r) {
    sq_status st = SQ_OK;
    const size_t wn = (size_t)r->seq.L * (size_t)r->dim;
    for (int32_t l = 0; l < r->n_layers && st == SQ_OK; l++) {
        const double t_layer = sq_now();
        const bool work = layer_planned(r, l);
        if (work) {
            lstats s;
            memset(&s, 0, sizeof s);
            if ((st = seq_stats(r, l, &s)) == SQ_OK) st = prune_layer(r, l, &s);
            stats_free(&s);
            if (st) break;
        }
        /* the pruned block makes the next block's inputs */
        double err = 0, upd = 0;
        for (int64_t c0 = 0; c0 < r->seq.N && st == SQ_OK; c0 += CHUNK_WINDOWS) {
            const int64_t nc = r->seq.N - c0 < CHUNK_WINDOWS ? r->seq.N - c0 : CHUNK_WINDOWS;
            for (int64_t i = 0; i < nc; i++) {
                memset(&r->seq.jobs[i], 0, sizeof r->seq.jobs[i]);
                memcpy(r->seq.scratch + (size_t)i * wn, sq_seq_win(&r->seq, r->seq.X, c0 + i), wn * sizeof(float));
                r->seq.jobs[i].in = r->seq.scratch + (size_t)i * wn;
                r->seq.jobs[i].out = sq_seq_win(&r->seq, r->seq.X, c0 + i);
            }
            if ((st = sq_seq_run(&r->seq, l, r->seq.jobs, nc)) || !work) continue;
            for (int64_t i = 0; i < nc; i++) {
                err += sq_seq_sq_diff(sq_seq_win(&r->seq, r->seq.X, c0 + i), sq_seq_win(&r->seq, r->seq.Y, c0 + i), wn);
                upd += sq_seq_sq_diff(sq_seq_win(&r->seq, r->seq.Y, c0 + i), r->seq.scratch + (size_t)i * wn, wn);
            }
        }
        if (st == SQ_OK && work && r->o->on_layer) {
            const double nt = (double)r->seq.N * (double)wn;
            sq_prune_layer_report lr = {l, r->n_layers, err / nt, upd > 0 ? err / upd : 0, r->seq.N * r->seq.L,
                                        sq_now() - t_layer};
            r->o->on_layer(r->o->user, &lr);
        }
    }
    return st;
}

static sq_status run_stored(prun *r) {
    sq_status st = SQ_OK;
    for (int32_t l = 0; l < r->n_layers && st == SQ_OK; l++) {
        if (!layer_planned(r, l)) continue;
        lstats s;
        memset(&s, 0, sizeof s);
        if (r->o->method == SQ_PRUNE_MAGNITUDE || (st = stored_stats(r, l, &s)) == SQ_OK) st = prune_layer(r, l, &s);
        stats_free(&s);
    }
    return st;
}

/* ===== Structured shrinking ===== */

/* Keeps the rows (by_rows) or columns of a 2-D f32 tensor, or the entries of a 1-D one,
 * whose unit (index / span) is not dropped. */
static sq_status shrink(sq_tensor *t, const uint8_t *drop, int64_t span, bool by_rows, int64_t n_left) {
    const int64_t rows = t->shape[0], cols = t->n_dims == 2 ? t->shape[1] : 1;
    const int64_t nr = by_rows ? n_left * span : rows, nc = by_rows ? cols : n_left * span;
    float *src = t->data, *dst = malloc((size_t)(nr * nc) * sizeof(float) + 4);
    if (!dst) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", t->name);
    int64_t o = 0;
    for (int64_t i = 0; i < rows; i++) {
        if (by_rows && drop[i / span]) continue;
        for (int64_t j = 0; j < cols; j++)
            if (by_rows || !drop[j / span]) dst[o++] = src[i * cols + j];
    }
    if (t->owns_data) free(t->data);
    t->data = dst;
    t->owns_data = true;
    if (by_rows) t->shape[0] = nr;
    else t->shape[1] = nc;
    t->nbytes = (size_t)(nr * nc) * sizeof(float);
    return SQ_OK;
}

typedef struct {
    sq_role role;
    bool bias, by_rows;
    int64_t span;
} shrink_item;

static sq_status shrink_all(prun *r) {
    const bool ffn = r->o->pattern.kind == SQ_PAT_FFN;
    const int64_t left = r->n_units - r->n_drop, rep = r->n_heads / r->n_kv;
    sq_status st = SQ_OK;
    for (int32_t l = 0; l < r->n_layers && st == SQ_OK; l++) {
        const uint8_t *drop = r->drop + (size_t)l * (size_t)r->n_units;
        char nm[SQ_MAX_NAME];
        shrink_item items[8];
        int n = 0;
        if (ffn) {
            items[n++] = (shrink_item){SQ_ROLE_GATE, false, true, 1};
            items[n++] = (shrink_item){SQ_ROLE_GATE, true, true, 1};
            items[n++] = (shrink_item){SQ_ROLE_UP, false, true, 1};
            items[n++] = (shrink_item){SQ_ROLE_UP, true, true, 1};
            items[n++] = (shrink_item){SQ_ROLE_DOWN, false, false, 1};
        } else {
            items[n++] = (shrink_item){SQ_ROLE_Q, false, true, rep * r->hd};
            items[n++] = (shrink_item){SQ_ROLE_Q, true, true, rep * r->hd};
            items[n++] = (shrink_item){SQ_ROLE_K, false, true, r->hd};
            items[n++] = (shrink_item){SQ_ROLE_K, true, true, r->hd};
            items[n++] = (shrink_item){SQ_ROLE_V, false, true, r->hd};
            items[n++] = (shrink_item){SQ_ROLE_V, true, true, r->hd};
            items[n++] = (shrink_item){SQ_ROLE_O, false, false, rep * r->hd};
        }
        for (int i = 0; i < n && st == SQ_OK; i++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s.%s", l, ROLE_MOD[items[i].role], items[i].bias ? "bias" : "weight");
            sq_tensor *t = sq_checkpoint_find(r->c, nm);
            if (!t) continue; /* no bias */
            st = shrink(t, drop, items[i].span, items[i].by_rows, left);
        }
    }
    if (st) return st;
    if (ffn) {
        r->c->cfg.hidden_dim = (int32_t)left;
    } else {
        r->c->cfg.n_kv_heads = (int32_t)left;
        r->c->cfg.n_heads = (int32_t)(left * rep);
    }
    /* config.json no longer describes the shapes: the store's config is the truth */
    free(r->c->config_json);
    r->c->config_json = NULL;
    return sq_config_validate(&r->c->cfg, "pruned model");
}

/* --embed-bits / --head-bits: RTN of the embedding or the head (there are no activation
 * statistics for them; squish-quantize does the same for an override that quantizes them),
 * with the group and zero-point mode of `base`; a group at least as long as the row is one
 * group per row. The tensor is f32 here; its /quant record gets the relative weight error. */
static sq_status quantize_extra(sq_checkpoint *c, const char *name, int32_t bits, const sq_qscheme *base) {
    sq_tensor *t = sq_checkpoint_find(c, name);
    if (!bits || !t) return SQ_OK;
    if (t->type != SQ_TYPE_F32 || t->n_dims != 2) return sq_errorf(SQ_ERR_ARG, "%s: not a float matrix", name);
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const sq_qscheme s = {.bits = bits, .group = base->group >= cols ? 0 : base->group, .asym = base->asym};
    sq_qweight q;
    memset(&q, 0, sizeof q);
    float *wh = malloc((size_t)rows * (size_t)cols * sizeof *wh + 4);
    if (!wh) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", name);
    sq_status st = sq_rtn_quantize(&q, wh, (const float *)t->data, rows, cols, &s, NULL); /* initialises q */
    if (st == SQ_OK) {
        const float *w = t->data;
        double num = 0, den = 0;
        for (int64_t i = 0; i < rows * cols; i++) {
            const double d = (double)w[i] - (double)wh[i];
            num += d * d;
            den += (double)w[i] * (double)w[i];
        }
        sq_quant_info qi;
        memset(&qi, 0, sizeof qi);
        snprintf(qi.name, sizeof qi.name, "%s", name);
        memcpy(qi.method, "rtn", 4);
        qi.bits = bits;
        qi.group_size = s.group;
        qi.symmetric = !s.asym;
        qi.loss = den > 0 ? num / den : 0.0;
        qi.awq_alpha = -1.0;
        if ((st = sq_qweight_pack_tensor(t, &q)) == SQ_OK) st = sq_checkpoint_set_quant_info(c, &qi);
    } else {
        sq_error_prefix(name);
    }
    sq_qweight_free(&q);
    free(wh);
    return st;
}

/* ===== Entry point ===== */

/* The plan against the checkpoint and the pattern (before any work); r->pidx filled. */
static sq_status check_plan(prun *r) {
    const sq_prune_opts *o = r->o;
    const sq_prune_pattern *p = &o->pattern;
    for (int32_t k = 0; k < r->plan->n; k++) {
        const sq_qplan_entry *e = &r->plan->e[k];
        if (!sq_checkpoint_find(r->c, e->name))
            return sq_errorf(SQ_ERR_ARG, "the plan names tensor '%s', which the checkpoint does not have", e->name);
        if (!e->quantize) continue;
        if (e->layer < 0 || e->role >= N_ROLES || !ROLE_MOD[e->role])
            return sq_errorf(SQ_ERR_ARG, "%s: only the block linears (q k v o gate up down) can be pruned; --ignore it",
                             e->name);
        if (p->kind == SQ_PAT_NM && e->cols % p->m)
            return sq_errorf(SQ_ERR_ARG, "%s: rows of %lld weights are not a multiple of M = %d for %d:%d; --ignore it",
                             e->name, (long long)e->cols, p->m, p->n, p->m);
    }
    if (p->kind != SQ_PAT_FFN && p->kind != SQ_PAT_HEADS) return SQ_OK;
    const bool ffn = p->kind == SQ_PAT_FFN;
    r->n_units = ffn ? r->hid : r->n_kv;
    r->n_drop = (int64_t)floor(p->sparsity * (double)r->n_units);
    if (p->sparsity > 0 && r->n_drop == 0)
        return sq_errorf(SQ_ERR_ARG, "--sparsity %g of %lld %s removes none (each layer loses floor(F x %lld))",
                         p->sparsity, (long long)r->n_units, ffn ? "FFN channels" : "KV-head groups",
                         (long long)r->n_units);
    if (r->n_drop >= r->n_units) return sq_errorf(SQ_ERR_ARG, "--sparsity %g would remove every unit", p->sparsity);
    static const sq_role FR[3] = {SQ_ROLE_GATE, SQ_ROLE_UP, SQ_ROLE_DOWN};
    static const sq_role HR[4] = {SQ_ROLE_Q, SQ_ROLE_K, SQ_ROLE_V, SQ_ROLE_O};
    for (int32_t l = 0; l < r->n_layers; l++)
        for (int i = 0; i < (ffn ? 3 : 4); i++)
            if (planned(r, l, ffn ? FR[i] : HR[i]) < 0)
                return sq_errorf(SQ_ERR_ARG, "--pattern %s removes the same units from every layer (so the config "
                                             "stays a Llama config): model.layers.%d.%s must be targeted and not "
                                             "ignored", ffn ? "ffn" : "heads", l, ROLE_MOD[ffn ? FR[i] : HR[i]]);
    return SQ_OK;
}

/* The fields of r that check_plan reads. */
static sq_status run_init(prun *r, sq_checkpoint *c, const sq_qplan *plan, const sq_prune_opts *o) {
    r->c = c;
    r->plan = plan;
    r->o = o;
    r->n_layers = c->cfg.n_layers;
    r->dim = c->cfg.dim;
    r->hd = c->cfg.head_dim;
    r->n_heads = c->cfg.n_heads;
    r->n_kv = c->cfg.n_kv_heads;
    r->q_dim = r->n_heads * r->hd;
    r->kv_dim = r->n_kv * r->hd;
    r->hid = c->cfg.hidden_dim;
    if (!(r->pidx = malloc(((size_t)r->n_layers * N_ROLES + 1) * sizeof *r->pidx)))
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int32_t i = 0; i < r->n_layers * N_ROLES; i++) r->pidx[i] = -1;
    for (int32_t k = 0; k < plan->n; k++) {
        const sq_qplan_entry *e = &plan->e[k];
        if (e->layer >= 0 && e->layer < r->n_layers && e->role < N_ROLES) r->pidx[(size_t)e->layer * N_ROLES + e->role] = k;
    }
    return SQ_OK;
}

sq_status sq_prune_check(const sq_checkpoint *c, const sq_qplan *plan, const sq_prune_opts *o) {
    prun R;
    memset(&R, 0, sizeof R);
    sq_status st = run_init(&R, (sq_checkpoint *)c, plan, o);
    if (st == SQ_OK) st = check_plan(&R);
    free(R.pidx);
    return st;
}

sq_status sq_prune_checkpoint(sq_checkpoint *c, const sq_qplan *plan, const sq_prune_opts *o, const sq_calib *calib,
                              const sq_calib_data *data, sq_sparse_info **recs, int32_t *n_recs) {
    prun R;
    memset(&R, 0, sizeof R);
    prun *r = &R;
    sq_status st = SQ_OK;
    sq_type *orig = NULL;
    *recs = NULL;
    *n_recs = 0;
    const bool needs_calib = o->method != SQ_PRUNE_MAGNITUDE;
    const bool structured = o->pattern.kind == SQ_PAT_FFN || o->pattern.kind == SQ_PAT_HEADS;
    if (needs_calib && !calib)
        return sq_errorf(SQ_ERR_ARG, "--method %s needs calibration statistics (--calib calib.h5)",
                         sq_prune_method_name(o->method));
    if (needs_calib && o->sequential && !data)
        return sq_errorf(SQ_ERR_ARG, "sequential mode needs the calibration data (or use --no-sequential)");
    if (o->quant && (o->method != SQ_PRUNE_SPARSEGPT || structured))
        return sq_errorf(SQ_ERR_ARG, "joint quantization (--bits) needs --method sparsegpt with an unstructured or N:M "
                                     "pattern");
    if (needs_calib && (st = sq_calib_check_config(calib, &c->cfg))) return st;
    for (int32_t i = 0; i < c->n_tensors; i++)
        if (sq_type_is_quant(c->tensors[i].type))
            return sq_errorf(SQ_ERR_ARG, "tensor '%s' is already %s; prune the float model", c->tensors[i].name,
                             sq_type_name(c->tensors[i].type));
    if ((st = run_init(r, c, plan, o))) goto done;
    r->calib = calib;
    r->data = data;
    orig = malloc(((size_t)c->n_tensors + 1) * sizeof *orig);
    r->qw = calloc((size_t)plan->n + 1, sizeof *r->qw);
    r->qinfo = calloc((size_t)plan->n + 1, sizeof *r->qinfo);
    r->recs = calloc((size_t)plan->n + 1, sizeof *r->recs);
    r->pruned = calloc((size_t)plan->n + 1, sizeof *r->pruned);
    if (!orig || !r->qw || !r->qinfo || !r->recs || !r->pruned) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    if ((st = check_plan(r))) goto done;
    if (structured && !(r->drop = calloc((size_t)r->n_layers * (size_t)r->n_units + 1, 1))) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < c->n_tensors; i++) orig[i] = c->tensors[i].type;
    if ((st = sq_checkpoint_convert(c, SQ_TYPE_F32))) goto done;
    if (needs_calib && o->sequential) {
        if ((st = sq_model_from_tensors(&r->m, &c->cfg, &c->vocab, c->tensors, c->n_tensors, false))) goto done;
        for (int32_t l = 0; l < r->n_layers; l++) { /* biases: the checkpoint's own f32 data, which pruning edits */
            sq_layer *y = &r->m->layers[l];
            if (y->bq) y->bq = role_f32(r, l, SQ_ROLE_Q, true);
            if (y->bk) y->bk = role_f32(r, l, SQ_ROLE_K, true);
            if (y->bv) y->bv = role_f32(r, l, SQ_ROLE_V, true);
            if (y->b_gate) y->b_gate = role_f32(r, l, SQ_ROLE_GATE, true);
            if (y->b_up) y->b_up = role_f32(r, l, SQ_ROLE_UP, true);
        }
        if ((st = sq_seq_init(&r->seq, r->m, r->calib, r->data, CHUNK_WINDOWS)) == SQ_OK) st = run_sequential(r);
    } else {
        st = run_stored(r);
    }
    if (st) goto done;
    if (structured && (st = shrink_all(r))) goto done;
    /* records: what the stored tensors are (zeros counted on the final f32 values, which
     * with --bits are the decoded ones) */
    for (int32_t k = 0; k < plan->n && st == SQ_OK; k++) {
        if (!r->pruned[k]) continue;
        const sq_tensor *t = sq_checkpoint_find(c, plan->e[k].name);
        const int64_t n = sq_tensor_numel(t);
        r->recs[k].sparsity = n ? (double)count_zeros(t->data, n) / (double)n : 0.0;
        st = sq_checkpoint_set_sparse_info(c, &r->recs[k]);
    }
    if (st) goto done;
    for (int32_t k = 0; k < plan->n && st == SQ_OK; k++) {
        if (!r->pruned[k] || !o->quant) continue;
        sq_tensor *t = sq_checkpoint_find(c, plan->e[k].name);
        if ((st = sq_qweight_pack_tensor(t, &r->qw[k])) == SQ_OK) st = sq_checkpoint_set_quant_info(c, &r->qinfo[k]);
    }
    if (st == SQ_OK) st = quantize_extra(c, "model.embed_tokens.weight", o->embed_bits, &o->scheme);
    if (st == SQ_OK) st = quantize_extra(c, "lm_head.weight", o->head_bits, &o->scheme);
    /* float tensors go back to their original type (pruned zeros stay exact) */
    for (int32_t i = 0; i < c->n_tensors && st == SQ_OK; i++) {
        sq_tensor *t = &c->tensors[i];
        if (sq_type_is_quant(t->type) || orig[i] == SQ_TYPE_F32) continue;
        st = sq_tensor_from_f32(t, orig[i]);
    }
    if (st) goto done;
    /* records: the pruned tensors in plan order */
    int32_t nrec = 0;
    for (int32_t k = 0; k < plan->n; k++)
        if (r->pruned[k]) r->recs[nrec++] = r->recs[k];
    *recs = r->recs;
    *n_recs = nrec;
    r->recs = NULL;
done:
    sq_seq_free(&r->seq);
    sq_model_free(r->m);
    for (int32_t k = 0; r->qw && k < plan->n; k++) sq_qweight_free(&r->qw[k]);
    free(r->qw);
    free(r->qinfo);
    free(r->recs);
    free(r->pruned);
    free(r->pidx);
    free(r->drop);
    free(orig);
    return st;
}
