/* calib_stats.c - calibration statistics per distinct linear input (docs/quantization.md,
 * ALGORITHMS.md 0): X^T X in double (not divided by the token count), sum |x|, sum x^2 and
 * the token count, fed by the runtime forward pass's capture hooks.
 *
 * Determinism: each window's contribution is computed on its own - every element of its
 * X^T X, sum |x| and sum x^2 is one sum over the window's tokens in token order, starting
 * from zero - and then added to the running totals, window after window. OpenMP splits the
 * upper triangle of X^T X into 4x4 blocks owned by one thread each, so the bits do not
 * depend on the thread count. Products of two floats are exact in double, so the only
 * rounding is in the sums. Does not divide by N or add damping: that is the quantizer's job.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "util.h"

#define PANEL 4 /* columns of X per packed panel = rows/cols of a register block of X^T X */

/* ===== Entries ===== */

static const struct {
    const char *fmt, *users;
} point_info[SQ_CALIB_POINTS] = {
    [SQ_CAPTURE_ATTN_IN] = {"model.layers.%d.self_attn.q_proj", "q_proj,k_proj,v_proj"},
    [SQ_CAPTURE_ATTN_O_IN] = {"model.layers.%d.self_attn.o_proj", "o_proj"},
    [SQ_CAPTURE_FFN_IN] = {"model.layers.%d.mlp.gate_proj", "gate_proj,up_proj"},
    [SQ_CAPTURE_FFN_DOWN_IN] = {"model.layers.%d.mlp.down_proj", "down_proj"},
};

static int32_t point_width(const sq_config *cfg, int p) {
    switch (p) {
    case SQ_CAPTURE_ATTN_O_IN: return cfg->n_heads * cfg->head_dim;
    case SQ_CAPTURE_FFN_DOWN_IN: return cfg->hidden_dim;
    default: return cfg->dim;
    }
}

void sq_calib_free(sq_calib *c) {
    if (!c) return;
    for (int32_t i = 0; i < c->n_entries; i++) {
        free(c->entries[i].xtx);
        free(c->entries[i].abs_sum);
        free(c->entries[i].sq_sum);
    }
    free(c->entries);
    free(c->data_path);
    free(c->data_field);
    free(c->windows);
    free(c->tool_version);
    free(c->command_line);
    free(c->pack);
    memset(c, 0, sizeof *c);
}

sq_status sq_calib_init(sq_calib *c, const sq_config *cfg) {
    memset(c, 0, sizeof *c);
    if (cfg->n_layers < 1 || cfg->n_layers > 100000) return sq_errorf(SQ_ERR_ARG, "calibration: %d layers", cfg->n_layers);
    double bytes = 0;
    for (int p = 0; p < SQ_CALIB_POINTS; p++) {
        double w = point_width(cfg, p);
        bytes += (double)cfg->n_layers * (w * w + 2 * w) * sizeof(double);
    }
    c->n_layers = cfg->n_layers;
    c->n_entries = cfg->n_layers * SQ_CALIB_POINTS;
    if (!(c->entries = calloc((size_t)c->n_entries, sizeof *c->entries))) goto oom;
    for (int32_t l = 0; l < cfg->n_layers; l++) {
        for (int p = 0; p < SQ_CALIB_POINTS; p++) {
            sq_calib_entry *e = &c->entries[l * SQ_CALIB_POINTS + p];
            snprintf(e->name, sizeof e->name, point_info[p].fmt, l);
            snprintf(e->users, sizeof e->users, "%s", point_info[p].users);
            e->layer = l;
            e->point = (sq_capture_point)p;
            e->width = point_width(cfg, p);
            if (e->width < 1) {
                sq_calib_free(c);
                return sq_errorf(SQ_ERR_ARG, "calibration: %s has width %d", e->name, e->width);
            }
            const size_t w = (size_t)e->width;
            e->xtx = calloc(w * w, sizeof(double));
            e->abs_sum = calloc(w, sizeof(double));
            e->sq_sum = calloc(w, sizeof(double));
            if (!e->xtx || !e->abs_sum || !e->sq_sum) goto oom;
        }
    }
    return SQ_OK;
oom:
    sq_calib_free(c);
    return sq_errorf(SQ_ERR_OOM, "calibration: out of memory for the statistics (%.1f MiB of X^T X in double)",
                     bytes / 1048576.0);
}

sq_calib_entry *sq_calib_entry_at(const sq_calib *c, int32_t layer, sq_capture_point point) {
    if (!c || layer < 0 || layer >= c->n_layers || (int)point < 0 || (int)point >= SQ_CALIB_POINTS) return NULL;
    return &c->entries[layer * SQ_CALIB_POINTS + (int)point];
}

sq_calib_entry *sq_calib_entry_for(const sq_calib *c, const char *linear_name) {
    static const struct {
        const char *suffix;
        sq_capture_point point;
    } map[] = {
        {"self_attn.q_proj", SQ_CAPTURE_ATTN_IN},  {"self_attn.k_proj", SQ_CAPTURE_ATTN_IN},
        {"self_attn.v_proj", SQ_CAPTURE_ATTN_IN},  {"self_attn.o_proj", SQ_CAPTURE_ATTN_O_IN},
        {"mlp.gate_proj", SQ_CAPTURE_FFN_IN},      {"mlp.up_proj", SQ_CAPTURE_FFN_IN},
        {"mlp.down_proj", SQ_CAPTURE_FFN_DOWN_IN},
    };
    const char *pre = "model.layers.";
    if (!c || !linear_name || strncmp(linear_name, pre, strlen(pre)) != 0) return NULL;
    const char *s = linear_name + strlen(pre);
    char *end;
    long layer = strtol(s, &end, 10);
    if (end == s || *end != '.' || layer < 0 || layer >= c->n_layers) return NULL;
    s = end + 1;
    size_t n = strlen(s);
    if (n > 7 && !strcmp(s + n - 7, ".weight")) n -= 7;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i].suffix) == n && !strncmp(s, map[i].suffix, n))
            return sq_calib_entry_at(c, (int32_t)layer, map[i].point);
    return NULL;
}

/* ===== Accumulation ===== */

/* The packed panels plus two partial sums. */
size_t sq_calib_pack_doubles(int32_t width, int64_t n) {
    return (size_t)((width + PANEL - 1) / PANEL) * PANEL * (size_t)n + 2 * (size_t)width;
}

/* x [n, w] floats -> panels p[w / 4][n][4] doubles (the last panel zero-padded), and the
 * window's sum |x| and sum x^2 per column in token order. */
static void pack_panels(double *p, double *abs_part, double *sq_part, const float *x, int64_t n, int32_t w) {
    const int32_t np = (w + PANEL - 1) / PANEL;
    for (int32_t j = 0; j < w; j++) abs_part[j] = sq_part[j] = 0.0;
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * (size_t)w;
        for (int32_t j = 0; j < np * PANEL; j++) {
            const double v = j < w ? (double)xr[j] : 0.0;
            p[((size_t)(j / PANEL) * (size_t)n + (size_t)t) * PANEL + (size_t)(j % PANEL)] = v;
            if (j < w) {
                abs_part[j] += fabs(v);
                sq_part[j] += v * v;
            }
        }
    }
}

/* Adds a rows x cols block of one window's sums s (row stride ld), whose top-left element
 * is xtx[r0, c0], to the upper triangle of xtx, clipped to the matrix (padded panels). */
static void add_block(double *xtx, int32_t w, int32_t r0, int32_t c0, const double *s, int32_t rows, int32_t cols,
                      int32_t ld) {
    const int32_t ni = w - r0 < rows ? w - r0 : rows, nj = w - c0 < cols ? w - c0 : cols;
    for (int32_t i = 0; i < ni; i++)
        for (int32_t j = 0; j < nj; j++)
            if (c0 + j >= r0 + i) xtx[(size_t)(r0 + i) * (size_t)w + (size_t)(c0 + j)] += s[i * ld + j];
}

/* The reference: sum_t a_t b_t^T for two packed panels (rows r0.., cols c0..) in
 * registers, every element one sum over t in order, then added to xtx. */
static void panel_block_ref(double *xtx, int32_t w, const double *a, const double *b, int64_t n, int32_t r0,
                            int32_t c0) {
    double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
    double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
    for (int64_t t = 0; t < n; t++) {
        const double *u = a + PANEL * t, *v = b + PANEL * t;
        const double u0 = u[0], u1 = u[1], u2 = u[2], u3 = u[3];
        const double v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
        s00 += u0 * v0, s01 += u0 * v1, s02 += u0 * v2, s03 += u0 * v3;
        s10 += u1 * v0, s11 += u1 * v1, s12 += u1 * v2, s13 += u1 * v3;
        s20 += u2 * v0, s21 += u2 * v1, s22 += u2 * v2, s23 += u2 * v3;
        s30 += u3 * v0, s31 += u3 * v1, s32 += u3 * v2, s33 += u3 * v3;
    }
    const double s[PANEL * PANEL] = {s00, s01, s02, s03, s10, s11, s12, s13,
                                     s20, s21, s22, s23, s30, s31, s32, s33};
    add_block(xtx, w, r0, c0, s, PANEL, PANEL, PANEL);
}

/* Row panel rp of the upper triangle: blocks (rp, rp), (rp, rp + 1), ... */
static void row_panel_ref(double *xtx, int32_t w, const double *pack, int64_t n, int32_t np, int32_t rp) {
    const double *a = pack + (size_t)rp * (size_t)n * PANEL;
    for (int32_t cp = rp; cp < np; cp++)
        panel_block_ref(xtx, w, a, pack + (size_t)cp * (size_t)n * PANEL, n, rp * PANEL, cp * PANEL);
}

/* AVX2 + FMA: 4 x 8 blocks (eight independent accumulators hide the FMA latency). The
 * result is bitwise the reference's: a product of two floats is exact in double, so
 * fma(u, v, s) rounds exactly like s + u * v, and the order over t is the same. Kept here,
 * not in runtime/kernels*, because it is calibration's double-precision statistic; compiled
 * with a target attribute and chosen at run time, so the default build stays portable. */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_PANEL 1

__attribute__((target("avx2,fma"))) static void row_panel_avx2(double *xtx, int32_t w, const double *pack, int64_t n,
                                                              int32_t np, int32_t rp) {
    const double *a = pack + (size_t)rp * (size_t)n * PANEL;
    double s[PANEL * 2 * PANEL];
    int32_t cp = rp;
    for (; cp + 1 < np; cp += 2) {
        const double *b0 = pack + (size_t)cp * (size_t)n * PANEL, *b1 = b0 + (size_t)n * PANEL;
        __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (int64_t t = 0; t < n; t++) {
            const double *u = a + PANEL * t;
            const __m256d v0 = _mm256_loadu_pd(b0 + PANEL * t), v1 = _mm256_loadu_pd(b1 + PANEL * t);
            __m256d x = _mm256_broadcast_sd(u);
            c00 = _mm256_fmadd_pd(x, v0, c00), c01 = _mm256_fmadd_pd(x, v1, c01);
            x = _mm256_broadcast_sd(u + 1);
            c10 = _mm256_fmadd_pd(x, v0, c10), c11 = _mm256_fmadd_pd(x, v1, c11);
            x = _mm256_broadcast_sd(u + 2);
            c20 = _mm256_fmadd_pd(x, v0, c20), c21 = _mm256_fmadd_pd(x, v1, c21);
            x = _mm256_broadcast_sd(u + 3);
            c30 = _mm256_fmadd_pd(x, v0, c30), c31 = _mm256_fmadd_pd(x, v1, c31);
        }
        _mm256_storeu_pd(s, c00), _mm256_storeu_pd(s + 4, c01), _mm256_storeu_pd(s + 8, c10);
        _mm256_storeu_pd(s + 12, c11), _mm256_storeu_pd(s + 16, c20), _mm256_storeu_pd(s + 20, c21);
        _mm256_storeu_pd(s + 24, c30), _mm256_storeu_pd(s + 28, c31);
        add_block(xtx, w, rp * PANEL, cp * PANEL, s, PANEL, 2 * PANEL, 2 * PANEL);
    }
    if (cp < np) /* an odd panel left over */
        panel_block_ref(xtx, w, a, pack + (size_t)cp * (size_t)n * PANEL, n, rp * PANEL, cp * PANEL);
}
#endif

typedef void (*row_panel_fn)(double *xtx, int32_t w, const double *pack, int64_t n, int32_t np, int32_t rp);

/* SQUISH_FORCE_REF=1 (as for the runtime kernels) forces the reference. */
static row_panel_fn choose_row_panel(void) {
    const char *ref = getenv("SQUISH_FORCE_REF");
    if (ref && *ref && strcmp(ref, "0") != 0) return row_panel_ref;
#ifdef HAVE_AVX2_PANEL
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return row_panel_avx2;
#endif
    return row_panel_ref;
}

void sq_calib_entry_add(sq_calib_entry *e, const float *x, int64_t n, double *pack) {
    if (n <= 0) return;
    const int32_t w = e->width, np = (w + PANEL - 1) / PANEL;
    double *abs_part = pack + (size_t)np * PANEL * (size_t)n, *sq_part = abs_part + w;
    pack_panels(pack, abs_part, sq_part, x, n, w);
    for (int32_t j = 0; j < w; j++) {
        e->abs_sum[j] += abs_part[j];
        e->sq_sum[j] += sq_part[j];
    }
    /* upper triangle, by row panel; later row panels have fewer blocks, hence dynamic */
    const row_panel_fn row_panel = choose_row_panel();
    const double work = (double)n * (double)w * (double)w;
    const int nt = work > 3e7 ? sq_num_threads() : 1; /* ~2 ms: below that threads cost more */
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
#endif
    for (int32_t rp = 0; rp < np; rp++) row_panel(e->xtx, w, pack, n, np, rp);
    /* keep the matrix symmetric: the lower triangle mirrors the upper one (in 32 x 32
     * tiles, so the transposed reads stay in cache) */
    for (int32_t r0 = 0; r0 < w; r0 += 32)
        for (int32_t c0 = 0; c0 <= r0; c0 += 32)
            for (int32_t r = r0; r < r0 + 32 && r < w; r++)
                for (int32_t c = c0; c < c0 + 32 && c < r; c++)
                    e->xtx[(size_t)r * (size_t)w + (size_t)c] = e->xtx[(size_t)c * (size_t)w + (size_t)r];
    e->n_tokens += n;
}

void sq_calib_capture(void *user, int32_t layer, sq_capture_point point, const float *x, int32_t n, int32_t width) {
    sq_calib *c = user;
    if (c->err != SQ_OK || n <= 0) return;
    sq_calib_entry *e = sq_calib_entry_at(c, layer, point);
    if (!e || e->width != width) {
        c->err = sq_errorf(SQ_ERR_INTERNAL, "calibration: a capture of width %d at layer %d, point %d does not match "
                                            "the statistics", width, layer, (int)point);
        return;
    }
    const size_t need = sq_calib_pack_doubles(width, n);
    if (need > c->pack_cap) {
        double *p = realloc(c->pack, need * sizeof(double));
        if (!p) {
            c->err = sq_errorf(SQ_ERR_OOM, "calibration: out of memory for %zu doubles of scratch", need);
            return;
        }
        c->pack = p;
        c->pack_cap = need;
    }
    sq_calib_entry_add(e, x, n, c->pack);
}

/* ===== Running the windows ===== */

sq_status sq_calib_collect(sq_calib *c, const sq_model *m, const sq_calib_data *d, const sq_calib_window *w,
                           int64_t n, int32_t seq_len, sq_calib_progress_fn progress, void *user) {
    sq_status st;
    sq_state *s = NULL;
    if ((st = sq_calib_check_config(c, &m->cfg)) != SQ_OK) return st;
    if ((st = sq_state_init(&s, m, seq_len, seq_len)) != SQ_OK) return st;
    sq_state_set_capture(s, sq_calib_capture, c);
    c->err = SQ_OK;
    for (int64_t i = 0; i < n; i++) {
        const int32_t *toks = sq_calib_window_tokens(d, w[i], seq_len);
        if (!toks) {
            st = sq_errorf(SQ_ERR_ARG, "calibration: window %lld (document %lld, offset %lld, %d tokens) is not "
                                       "inside the data", (long long)i, (long long)w[i].doc, (long long)w[i].offset,
                           seq_len);
            goto fail;
        }
        sq_state_reset(s);
        if ((st = sq_forward(s, toks, seq_len, seq_len, NULL)) != SQ_OK) goto fail;
        if ((st = c->err) != SQ_OK) goto fail;
        if (progress) progress(user, i + 1, n);
    }
fail:
    sq_state_free(s);
    return st;
}
