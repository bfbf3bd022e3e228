/* compare.c - `squish recipe compare`: one table over finished runs (bits per weight, file
 * size, PPL, ΔPPL against each run's base model, KLD, same top-1, decode tok/s, compression
 * time) in Markdown and JSON, and an accuracy-against-size plot (SVG, PNG when rsvg-convert
 * or ImageMagick is installed) marking the Pareto front (smaller and better: no other run is
 * both at most as large and at most as perplexed). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cJSON.h>

#include "../core/util.h"
#include "driver.h"

typedef struct {
    char name[128], dir[PATH_MAX];
    double bpw, bytes, ppl, dppl, kld, top1, tok_s, secs;
    bool pareto;
} row;

static double num(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static sq_status load_row(const char *dir, row *w) {
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    char *p = sq_path_join(dir, "manifest.json");
    cJSON *m = p ? sq_drv_load_json(p) : NULL;
    free(p);
    if (!m) return sq_errorf(SQ_ERR_FORMAT, "%s: cannot read manifest.json: %s", dir, sq_last_error());
    const cJSON *rr = cJSON_GetObjectItemCaseSensitive(m, "resolved_recipe");
    const cJSON *nm = rr ? cJSON_GetObjectItemCaseSensitive(rr, "name") : NULL;
    snprintf(w->name, sizeof w->name, "%.120s", cJSON_IsString(nm) ? nm->valuestring : dir);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(m, "metrics");
    const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "texts"), 0);
    w->bpw = num(ev, "bits_per_weight");
    w->bytes = num(ev, "file_bytes");
    w->ppl = num(t, "ppl");
    w->dppl = num(t, "ppl_increase");
    w->kld = num(t, "kld");
    w->top1 = num(t, "same_top1");
    w->tok_s = num(ev, "decode_tokens_per_s");
    w->secs = num(ev, "compress_seconds");
    cJSON_Delete(m);
    return SQ_OK;
}

static void cell(char *b, size_t n, const char *fmt, double v) {
    if (isfinite(v)) snprintf(b, n, fmt, v);
    else snprintf(b, n, "–");
}

static char *find_on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) return NULL;
    char *copy = sq_strdup(path), *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
        char *p = sq_path_join(d, prog);
        if (p && access(p, X_OK) == 0) {
            free(copy);
            return p;
        }
        free(p);
    }
    free(copy);
    return NULL;
}

static void xml_text(FILE *fp, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", fp);
        else if (*s == '>') fputs("&gt;", fp);
        else if (*s == '&') fputs("&amp;", fp);
        else if (*s == '"') fputs("&quot;", fp);
        else fputc(*s, fp);
    }
}

/* The plot: x = bits per weight, y = PPL (a log axis when the PPLs span more than 4x, so a
 * badly broken recipe does not flatten the others); the Pareto front as a line; labels
 * moved down until they do not overlap an earlier one. */
static char *make_svg(const row *w, int n) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) return NULL;
    const double W = 720, H = 460, L = 70, R = 200, T = 40, B = 60;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(w[i].bpw) || !isfinite(w[i].ppl)) continue;
        x0 = fmin(x0, w[i].bpw), x1 = fmax(x1, w[i].bpw), y0 = fmin(y0, w[i].ppl), y1 = fmax(y1, w[i].ppl);
    }
    if (!isfinite(x0)) x0 = 0, x1 = 1, y0 = 1, y1 = 2;
    const bool logy = y0 > 0 && y1 / y0 > 4;
#define TY(v) (logy ? log(v) : (v))
    double ty0 = TY(y0), ty1 = TY(y1);
    double dx = x1 - x0 > 0 ? x1 - x0 : 1, dy = ty1 - ty0 > 0 ? ty1 - ty0 : fmax(fabs(ty0) * 0.1, 1e-3);
    x0 -= 0.08 * dx, x1 += 0.08 * dx, ty0 -= 0.1 * dy, ty1 += 0.1 * dy;
#define SX(v) (L + ((v) - x0) / (x1 - x0) * (W - L - R))
#define SY(v) (H - B - (TY(v) - ty0) / (ty1 - ty0) * (H - T - B))
    fprintf(fp,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(fp, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">Perplexity against size (Pareto front in red)</text>\n", L);
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L, T, L, H - B);
    for (int k = 0; k <= 4; k++) {
        double xv = x0 + (x1 - x0) * k / 4, tv = ty0 + (ty1 - ty0) * k / 4, yv = logy ? exp(tv) : tv;
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f</text>\n", SX(xv), H - B + 18, xv);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n", L - 6, SY(yv) + 4, yv);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, SY(yv), W - R, SY(yv));
    }
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">bits per weight (runnable file)</text>\n",
            (L + W - R) / 2, H - 18);
    fprintf(fp, "<text x=\"18\" y=\"%.1f\" transform=\"rotate(-90 18 %.1f)\" text-anchor=\"middle\">PPL%s</text>\n",
            (T + H - B) / 2, (T + H - B) / 2, logy ? " (log scale)" : "");
    /* the front, by size */
    int idx[256], m = 0;
    for (int i = 0; i < n && m < 256; i++)
        if (w[i].pareto) idx[m++] = i;
    for (int a = 0; a < m; a++)
        for (int b = a + 1; b < m; b++)
            if (w[idx[b]].bpw < w[idx[a]].bpw) {
                int t = idx[a];
                idx[a] = idx[b];
                idx[b] = t;
            }
    if (m > 1) {
        fprintf(fp, "<polyline fill=\"none\" stroke=\"#c00\" stroke-width=\"1.5\" points=\"");
        for (int a = 0; a < m; a++) fprintf(fp, "%.1f,%.1f ", SX(w[idx[a]].bpw), SY(w[idx[a]].ppl));
        fprintf(fp, "\"/>\n");
    }
    /* points top to bottom, each label at the first free line at or below its point */
    int ord[256], k = 0;
    for (int i = 0; i < n && k < 256; i++)
        if (isfinite(w[i].bpw) && isfinite(w[i].ppl)) ord[k++] = i;
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (w[ord[b]].ppl > w[ord[a]].ppl) {
                int t = ord[a];
                ord[a] = ord[b];
                ord[b] = t;
            }
    double lx[256], ly[256];
    for (int a = 0; a < k; a++) {
        const row *p = &w[ord[a]];
        double x = SX(p->bpw) + 7, y = SY(p->ppl) - 6;
        for (bool moved = true; moved;) {
            moved = false;
            for (int b = 0; b < a; b++)
                if (fabs(ly[b] - y) < 13 && fabs(lx[b] - x) < 7.0 * (double)strlen(p->name)) {
                    y = ly[b] + 13;
                    moved = true;
                }
        }
        lx[a] = x, ly[a] = y;
        fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\"/>\n", SX(p->bpw), SY(p->ppl),
                p->pareto ? "#c00" : "#36c");
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">", x, y);
        xml_text(fp, p->name);
        fprintf(fp, "</text>\n");
    }
#undef SX
#undef SY
#undef TY
    fprintf(fp, "</svg>\n");
    fclose(fp);
    return buf;
}

/* True when path starts with the PNG signature (a converter that exits 0 without writing a
 * PNG, like a stand-in script, does not count). */
static bool is_png(const char *path) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    FILE *fp = fopen(path, "rb");
    bool ok = fp && fread(b, 1, 8, fp) == 8 && !memcmp(b, sig, 8);
    if (fp) fclose(fp);
    return ok;
}

/* PREFIX.png from PREFIX.svg with the first converter that works (rsvg-convert, ImageMagick 7's
 * magick, ImageMagick 6's convert), written under a temporary name and renamed when it is a
 * PNG, so a failed conversion leaves nothing. The plot is optional: failures are reported,
 * not fatal. */
static void make_png(const char *svg, const char *pre, bool quiet) {
    char png[PATH_MAX + 8], tmp[PATH_MAX + 40], logp[PATH_MAX + 40], why[400] = "";
    int a = snprintf(png, sizeof png, "%s.png", pre);
    int b = snprintf(tmp, sizeof tmp, "%s.png.tmp.%ld", pre, (long)getpid());
    int l = snprintf(logp, sizeof logp, "%s.png.log.tmp.%ld", pre, (long)getpid());
    if (a < 0 || (size_t)a >= sizeof png || b < 0 || (size_t)b >= sizeof tmp || l < 0 || (size_t)l >= sizeof logp) return;
    static const char *const progs[] = {"rsvg-convert", "magick", "convert"};
    bool tried = false;
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        char *conv = find_on_path(progs[i]);
        if (!conv) continue;
        tried = true;
        char out[PATH_MAX + 48];
        int o = snprintf(out, sizeof out, "png:%s", tmp);
        if (o < 0 || (size_t)o >= sizeof out) {
            free(conv);
            return;
        }
        char *argv_r[] = {conv, "-f", "png", "-o", tmp, (char *)svg, NULL};
        char *argv_m[] = {conv, (char *)svg, out, NULL};
        sq_proc pr;
        unlink(logp);
        sq_status st = sq_drv_exec(NULL, i == 0 ? argv_r : argv_m, logp, &pr);
        bool ok = st == SQ_OK && pr.exit_code == 0 && is_png(tmp) && rename(tmp, png) == 0;
        if (!ok) {
            char tail[300];
            sq_drv_log_tail(logp, tail, sizeof tail);
            snprintf(why, sizeof why, "%s: %s", progs[i], st ? sq_last_error() : *tail ? tail : "no PNG written");
            unlink(tmp);
        }
        unlink(logp);
        free(conv);
        if (ok) {
            if (!quiet) fprintf(stderr, "plot: %s and %s\n", svg, png);
            return;
        }
        if (st == SQ_ERR_INTERRUPTED) break;
    }
    if (quiet) return;
    if (tried) fprintf(stderr, "plot: %s (no PNG: %s)\n", svg, why);
    else fprintf(stderr, "plot: %s (no PNG: install rsvg-convert or ImageMagick)\n", svg);
}

sq_status sq_recipe_compare(const char *const *items, int n, const sq_run_opts *opts, const char *prefix) {
    if (n < 1) return sq_errorf(SQ_ERR_ARG, "compare: expected at least one recipe or run directory");
    row *w = calloc((size_t)n, sizeof *w);
    if (!w) return sq_errorf(SQ_ERR_OOM, "out of memory");
    const char *pre = prefix ? prefix : "compare";
    /* make the output directory before running anything, so a bad -o fails in a second, not
     * after every recipe has run */
    char *odir = sq_path_dirname(pre);
    sq_status st = odir ? sq_drv_mkdirs(odir) : sq_errorf(SQ_ERR_OOM, "out of memory");
    free(odir);
    for (int i = 0; i < n && !st; i++) {
        char dir[PATH_MAX];
        st = sq_drv_ensure_run(items[i], opts, dir, sizeof dir);
        if (!st) st = load_row(dir, &w[i]);
    }
    if (st) {
        free(w);
        return st;
    }
    for (int i = 0; i < n; i++) {
        w[i].pareto = isfinite(w[i].bpw) && isfinite(w[i].ppl);
        for (int j = 0; j < n && w[i].pareto; j++) {
            if (j == i || !isfinite(w[j].bpw) || !isfinite(w[j].ppl)) continue;
            if (w[j].bpw <= w[i].bpw && w[j].ppl <= w[i].ppl && (w[j].bpw < w[i].bpw || w[j].ppl < w[i].ppl))
                w[i].pareto = false;
        }
    }
    /* Markdown and JSON */
    char *md = NULL;
    size_t mdlen = 0;
    FILE *fp = open_memstream(&md, &mdlen);
    cJSON *j = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(j, "runs");
    if (!fp || !j) {
        if (fp) fclose(fp);
        free(md);
        cJSON_Delete(j);
        free(w);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    fprintf(fp, "| recipe | bpw | file bytes | PPL | ΔPPL | KLD | same top-1 | decode tok/s | compress s | Pareto |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        char a[32], b[32], c[32], d[32], e[32], f[32], g[32], h[32];
        cell(a, sizeof a, "%.3f", w[i].bpw);
        cell(b, sizeof b, "%.0f", w[i].bytes);
        cell(c, sizeof c, "%.4f", w[i].ppl);
        cell(d, sizeof d, "%+.2f %%", 100 * w[i].dppl);
        cell(e, sizeof e, "%.6f", w[i].kld);
        cell(f, sizeof f, "%.2f %%", 100 * w[i].top1);
        cell(g, sizeof g, "%.1f", w[i].tok_s);
        cell(h, sizeof h, "%.2f", w[i].secs);
        fprintf(fp, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w[i].name, a, b, c, d, e, f, g, h,
                w[i].pareto ? "yes" : "");
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", w[i].name);
        cJSON_AddStringToObject(x, "run", w[i].dir);
        const struct {
            const char *k;
            double v;
        } f2[] = {{"bits_per_weight", w[i].bpw}, {"file_bytes", w[i].bytes}, {"ppl", w[i].ppl},
                  {"ppl_increase", w[i].dppl},   {"kld", w[i].kld},          {"same_top1", w[i].top1},
                  {"decode_tokens_per_s", w[i].tok_s}, {"compress_seconds", w[i].secs}};
        for (size_t k = 0; k < sizeof f2 / sizeof f2[0]; k++) {
            if (isfinite(f2[k].v)) cJSON_AddNumberToObject(x, f2[k].k, f2[k].v);
            else cJSON_AddNullToObject(x, f2[k].k);
        }
        cJSON_AddBoolToObject(x, "pareto", w[i].pareto);
        cJSON_AddItemToArray(rows, x);
    }
    fprintf(fp, "\nPPL, KLD and top-1 on each recipe's first evaluation text; ΔPPL against its unquantized model; "
                "decode tok/s from a short greedy squish-run (a timing: it varies between runs).\n");
    fclose(fp);
    char *js = cJSON_Print(j);
    char *svg = make_svg(w, n);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s.md", pre);
    st = md ? sq_drv_write_text(path, md) : sq_errorf(SQ_ERR_OOM, "out of memory");
    if (!st) {
        snprintf(path, sizeof path, "%s.json", pre);
        st = js ? sq_drv_write_text(path, js) : sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    if (!st) {
        snprintf(path, sizeof path, "%s.svg", pre);
        st = svg ? sq_drv_write_text(path, svg) : sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    if (!st) make_png(path, pre, opts->quiet);
    if (!st) fputs(md, stdout);
    free(md);
    free(js);
    free(svg);
    cJSON_Delete(j);
    free(w);
    return st;
}
