/* run.c - `squish recipe run`: executes a recipe (docs/recipes.md) as a chain of tool
 * invocations, each a fork/exec of the sibling binary with argv built from the recipe:
 * convert -> (calibrate ->) quantize/prune per stage -> export -> base and model evaluation
 * -> decode speed. What a later run can reuse (the converted store, calib.h5 per input model
 * + data + settings, the base model's evaluation and KLD file) lives in a cache named by
 * hashes. Every finished step is recorded in DIR/.state.json (atomically) with a key over
 * its command and its inputs' SHA-256, so a rerun resumes after the last finished step;
 * tools write their outputs under temporary names and rename them, and the manifest (the
 * mark of a complete run) is written last. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cJSON.h>

#include "../core/util.h"
#include "driver.h"

typedef struct {
    const sq_recipe *r;
    const sq_run_opts *o;
    char dir[PATH_MAX];   /* the run directory (as given, made absolute) */
    char cache[PATH_MAX]; /* the cache as children see it (relative to dir, or absolute) */
    char tstr[16];
    cJSON *old_state, *state, *steps, *inputs;
    cJSON *tools;         /* sha256 of each tool binary used: the exact build, for drift checks */
    char **args;          /* argv under construction */
    int n_args, cap_args;
    int t_at;             /* index of "-t" in args (-1: none); left out of the step key */
    bool key_threads;     /* keep -t in the key (steps whose output is a timing) */
} run_ctx;

/* ----- small helpers ----- */

static char *dpath(const run_ctx *c, const char *rel) {
    return rel[0] == '/' ? sq_strdup(rel) : sq_path_join(c->dir, rel);
}

void *sq_drv_load_json(const char *path) {
    char *text = NULL;
    size_t len = 0;
    if (sq_read_file(path, 64u << 20, &text, &len) != SQ_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) sq_errorf(SQ_ERR_FORMAT, "%s: not valid JSON", path);
    return j;
}

sq_status sq_drv_write_text(const char *path, const char *text) {
    sq_atomic_file f;
    sq_status st = sq_atomic_open(&f, path);
    if (st) return st;
    if ((st = sq_atomic_write(&f, text, strlen(text))) || (st = sq_atomic_commit(&f))) sq_atomic_abort(&f);
    return st;
}

static sq_status write_json(const char *path, const cJSON *j) {
    char *t = cJSON_Print(j);
    if (!t) return sq_errorf(SQ_ERR_OOM, "out of memory");
    size_t n = strlen(t);
    char *t2 = realloc(t, n + 2);
    if (!t2) {
        free(t);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    t2[n] = '\n';
    t2[n + 1] = 0;
    sq_status st = sq_drv_write_text(path, t2);
    free(t2);
    return st;
}

static void sha_str(const char *s, char hex[65]) { sq_sha256_buf(s, strlen(s), hex); }

/* SHA-256 of a file, or of a directory's regular files (name and hash of each, sorted). */
static sq_status hash_input(const char *path, char hex[65]) {
    if (!sq_is_dir(path)) return sq_sha256_file(path, hex, NULL);
    struct dirent **list = NULL;
    int n = scandir(path, &list, NULL, alphasort);
    if (n < 0) return sq_errorf(SQ_ERR_IO, "%s: cannot list: %s", path, strerror(errno));
    sq_sha256 s;
    sq_sha256_init(&s);
    sq_status st = SQ_OK;
    for (int i = 0; i < n; i++) {
        char *p = sq_path_join(path, list[i]->d_name);
        char h[65];
        struct stat sb;
        if (!st && p && list[i]->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (!(st = sq_sha256_file(p, h, NULL))) {
                sq_sha256_update(&s, list[i]->d_name, strlen(list[i]->d_name) + 1);
                sq_sha256_update(&s, h, 64);
            }
        }
        free(p);
        free(list[i]);
    }
    free(list);
    uint8_t d[32];
    sq_sha256_final(&s, d);
    sq_sha256_hex(d, hex);
    return st;
}

static sq_status add_input(run_ctx *c, const char *role, const char *path, char hex[65]) {
    sq_status st = hash_input(path, hex);
    if (st) return st;
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "role", role);
    cJSON_AddStringToObject(x, "path", path);
    cJSON_AddStringToObject(x, "sha256", hex);
    cJSON_AddItemToArray(c->inputs, x);
    return SQ_OK;
}

/* argv building */
static void arg_reset(run_ctx *c) {
    for (int i = 0; i < c->n_args; i++) free(c->args[i]);
    c->n_args = 0;
    c->t_at = -1;
    c->key_threads = false;
}
static void arg(run_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(run_ctx *c, const char *fmt, ...) {
    if (c->n_args + 2 > c->cap_args) {
        int nc = c->cap_args ? 2 * c->cap_args : 64;
        char **na = realloc(c->args, (size_t)nc * sizeof *na);
        if (!na) return;
        c->args = na;
        c->cap_args = nc;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->args[c->n_args++] = s;
    c->args[c->n_args] = NULL;
}
static void arg_threads(run_ctx *c) {
    if (c->tstr[0]) {
        c->t_at = c->n_args;
        arg(c, "-t");
        arg(c, "%s", c->tstr);
    }
}

/* snprintf whose cut output is caught by the path length checks of the tools */
static void pf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pf(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static void fmt_group(char *buf, size_t n, int32_t g) {
    if (g == 0) snprintf(buf, n, "row");
    else snprintf(buf, n, "%d", g);
}

static void say(const run_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const run_ctx *c, const char *fmt, ...) {
    if (c->o->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ----- one step ----- */

/* "<cached output>.step.json": the wall time and peak memory of the step that made it. */
static char *side_path(const run_ctx *c, const char *out) {
    char *p = dpath(c, out);
    char *s = p ? malloc(strlen(p) + 16) : NULL;
    if (s) sprintf(s, "%s.step.json", p);
    free(p);
    return s;
}

/* Runs the command in c->args unless a finished run of the same command on the same inputs
 * (key) left its outputs: cached outputs (named by their key) count when they exist,
 * run-directory outputs when .state.json recorded them with the same SHA-256. */
static sq_status step(run_ctx *c, const char *name, const char *label, const char *const outs[], const char *inputs_key,
                      bool cached) {
    char *cmd = sq_drv_cmdline(NULL, c->args);
    if (!cmd) return sq_errorf(SQ_ERR_OOM, "out of memory");
    /* the key leaves out -t N: every tool writes the same bytes at any thread count, so a
     * rerun with another -t resumes too (timings keep it: c->key_threads) */
    char *kcmd = NULL;
    if (c->t_at >= 0 && !c->key_threads && c->t_at + 1 < c->n_args) {
        char **kv = malloc(((size_t)c->n_args + 1) * sizeof *kv);
        int m = 0;
        for (int i = 0; kv && i < c->n_args; i++)
            if (i != c->t_at && i != c->t_at + 1) kv[m++] = c->args[i];
        if (kv) {
            kv[m] = NULL;
            kcmd = sq_drv_cmdline(NULL, kv);
        }
        free(kv);
    } else {
        kcmd = sq_strdup(cmd);
    }
    if (!kcmd) {
        free(cmd);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    char *keysrc = malloc(strlen(kcmd) + (inputs_key ? strlen(inputs_key) : 0) + 2), key[65];
    if (!keysrc) {
        free(kcmd);
        free(cmd);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    sprintf(keysrc, "%s\n%s", kcmd, inputs_key ? inputs_key : "");
    sha_str(keysrc, key);
    free(keysrc);
    free(kcmd);
    if (!cJSON_GetObjectItemCaseSensitive(c->tools, c->args[0])) {
        char *tp = sq_path_join(sq_drv_bindir(), c->args[0]);
        char th[65];
        if (tp && !sq_sha256_file(tp, th, NULL)) cJSON_AddStringToObject(c->tools, c->args[0], th);
        free(tp);
    }
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "step", name);
    cJSON_AddStringToObject(rec, "what", label);
    char *full = sq_drv_cmdline(c->dir, c->args);
    cJSON_AddStringToObject(rec, "command", full ? full : cmd);
    free(full);
    cJSON_AddItemToArray(c->steps, rec);

    bool have = true;
    for (int i = 0; outs[i]; i++) {
        char *p = dpath(c, outs[i]);
        if (!p || !sq_file_exists(p)) have = false;
        free(p);
    }
    bool skip = false;
    if (have && cached) {
        skip = true;
    } else if (have && c->old_state) {
        cJSON *old = cJSON_GetObjectItemCaseSensitive(c->old_state, name);
        cJSON *ok = old ? cJSON_GetObjectItemCaseSensitive(old, "key") : NULL;
        cJSON *oo = old ? cJSON_GetObjectItemCaseSensitive(old, "outputs") : NULL;
        if (cJSON_IsString(ok) && !strcmp(ok->valuestring, key) && oo) {
            skip = true;
            for (int i = 0; outs[i] && skip; i++) {
                cJSON *h = cJSON_GetObjectItemCaseSensitive(oo, outs[i]);
                char *p = dpath(c, outs[i]);
                char hex[65];
                if (!p || !cJSON_IsString(h) || sq_sha256_file(p, hex, NULL) || strcmp(hex, h->valuestring)) skip = false;
                free(p);
            }
        }
    }
    sq_status st = SQ_OK;
    if (skip) {
        cJSON_AddStringToObject(rec, "status", cached ? "cached" : "resumed");
        say(c, "  %-26s %s (%s)", name, cached ? "cached" : "done earlier", label);
        cJSON *old = c->old_state ? cJSON_GetObjectItemCaseSensitive(c->old_state, name) : NULL;
        if (old) cJSON_AddItemToObject(c->state, name, cJSON_Duplicate(old, true));
    } else {
        say(c, "  %-26s %s ...", name, label);
        char logrel[PATH_MAX];
        snprintf(logrel, sizeof logrel, "logs/%s.log", name);
        char *logp = dpath(c, logrel);
        if (logp) unlink(logp);
        FILE *lf = logp ? fopen(logp, "w") : NULL;
        if (lf) {
            fprintf(lf, "$ %s\n", cmd);
            fclose(lf);
        }
        sq_proc pr;
        st = sq_drv_exec(c->dir, c->args, logp, &pr);
        if (!st && (pr.exit_code != 0)) {
            char tail[600];
            sq_drv_log_tail(logp, tail, sizeof tail);
            if (pr.exit_code < 0)
                st = sq_errorf(SQ_ERR_INTERNAL, "%s (%s) was killed by signal %d; log: %s", name, label, pr.signal, logp);
            else
                st = sq_errorf(pr.exit_code == 1 ? SQ_ERR_ARG : SQ_ERR_INTERNAL, "%s (%s) failed (exit %d): %s [log: %s]", name,
                               label, pr.exit_code, tail, logp);
        }
        free(logp);
        if (!st) {
            cJSON_AddStringToObject(rec, "status", "ran");
            cJSON_AddNumberToObject(rec, "wall_s", round(pr.wall_s * 1000) / 1000);
            cJSON_AddNumberToObject(rec, "peak_rss_kib", (double)pr.peak_rss_kb);
            cJSON *s = cJSON_CreateObject(), *oo = cJSON_AddObjectToObject(s, "outputs");
            cJSON_AddStringToObject(s, "key", key);
            cJSON_AddNumberToObject(s, "wall_s", round(pr.wall_s * 1000) / 1000);
            cJSON_AddNumberToObject(s, "peak_rss_kib", (double)pr.peak_rss_kb);
            for (int i = 0; outs[i] && !st; i++) {
                char *p = dpath(c, outs[i]);
                char hex[65];
                if (!p) st = sq_errorf(SQ_ERR_OOM, "out of memory");
                else if (!sq_file_exists(p)) st = sq_errorf(SQ_ERR_INTERNAL, "%s: %s did not write %s", name, c->args[0], p);
                else if (!(st = sq_sha256_file(p, hex, NULL))) cJSON_AddStringToObject(oo, outs[i], hex);
                free(p);
            }
            cJSON_AddItemToObject(c->state, name, s);
            say(c, "  %-26s done in %.2f s, peak %.1f MiB", name, pr.wall_s, (double)pr.peak_rss_kb / 1024.0);
            if (!st && cached) { /* what the cached output cost, for runs that reuse it */
                char *sp = side_path(c, outs[0]);
                cJSON *sd = cJSON_CreateObject();
                cJSON_AddStringToObject(sd, "step", name);
                cJSON_AddNumberToObject(sd, "wall_s", round(pr.wall_s * 1000) / 1000);
                cJSON_AddNumberToObject(sd, "peak_rss_kib", (double)pr.peak_rss_kb);
                st = sp ? write_json(sp, sd) : sq_errorf(SQ_ERR_OOM, "out of memory");
                cJSON_Delete(sd);
                free(sp);
            }
            if (!st) {
                char *sp = dpath(c, ".state.json");
                st = sp ? write_json(sp, c->state) : sq_errorf(SQ_ERR_OOM, "out of memory");
                free(sp);
            }
        }
    }
    if (skip) {
        /* the time and memory of the run that made the outputs: this run's state, else the
         * cache's record of it */
        cJSON *old = cJSON_GetObjectItemCaseSensitive(c->state, name), *side = NULL;
        if (!old && cached) {
            char *sp = side_path(c, outs[0]);
            side = sp && sq_file_exists(sp) ? sq_drv_load_json(sp) : NULL;
            free(sp);
            old = side;
        }
        cJSON *w = old ? cJSON_GetObjectItemCaseSensitive(old, "wall_s") : NULL;
        cJSON *m = old ? cJSON_GetObjectItemCaseSensitive(old, "peak_rss_kib") : NULL;
        if (cJSON_IsNumber(w)) cJSON_AddNumberToObject(rec, "wall_s", w->valuedouble);
        if (cJSON_IsNumber(m)) cJSON_AddNumberToObject(rec, "peak_rss_kib", m->valuedouble);
        cJSON_Delete(side);
    }
    free(cmd);
    arg_reset(c);
    return st;
}

/* Removes "<name>.tmp.<pid>" leftovers of killed tools in dir. */
static void clean_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t) continue;
        bool digits = t[5] != 0;
        for (const char *p = t + 5; *p; p++)
            if (!isdigit((unsigned char)*p)) digits = false;
        if (!digits) continue;
        char *p = sq_path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
}

sq_status sq_drv_mkdirs(const char *path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return sq_errorf(SQ_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return sq_errorf(SQ_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
    return SQ_OK;
}

char *sq_recipe_default_dir(const sq_recipe *r) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "runs/%s", r->name);
    return sq_strdup(buf);
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

/* ----- the report ----- */

static char *make_report(const sq_recipe *r, const cJSON *ev, const cJSON *steps) {
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
#define P(...) (len += (size_t)snprintf(b + len, len < cap ? cap - len : 0, __VA_ARGS__))
    P("# %s\n\nRecipe `%s`, model `%s`.\n\n", r->name, r->file, r->model);
    P("| | value |\n|---|---|\n");
    P("| runnable file | %.0f bytes |\n| bits per weight | %.3f |\n", jnum(ev, "file_bytes"), jnum(ev, "bits_per_weight"));
    double tok = jnum(ev, "decode_tokens_per_s");
    if (isfinite(tok)) P("| decode (greedy, %d tokens) | %.1f tok/s |\n", r->decode_tokens, tok);
    P("\n");
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(ev, "texts"), *t;
    if (cJSON_GetArraySize(texts) > 0) {
        P("| text | protocol | ctx | PPL | base PPL | ΔPPL | KLD | same top-1 |\n|---|---|---|---|---|---|---|---|\n");
        cJSON_ArrayForEach(t, texts) {
            const cJSON *pth = cJSON_GetObjectItemCaseSensitive(t, "path");
            const char *nm = cJSON_IsString(pth) ? strrchr(pth->valuestring, '/') : NULL;
            nm = nm ? nm + 1 : cJSON_IsString(pth) ? pth->valuestring : "?";
            const cJSON *pr = cJSON_GetObjectItemCaseSensitive(t, "protocol");
            P("| %s | %s | %.0f | %.4f ± %.4f | %.4f | %+.2f %% | ", nm, cJSON_IsString(pr) ? pr->valuestring : "?",
              jnum(t, "ctx"), jnum(t, "ppl"), jnum(t, "ppl_err"), jnum(t, "base_ppl"), 100 * jnum(t, "ppl_increase"));
            if (isfinite(jnum(t, "kld"))) P("%.6f | %.2f %% |\n", jnum(t, "kld"), 100 * jnum(t, "same_top1"));
            else P("– | – |\n");
        }
        P("\n");
    }
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(ev, "gates"), *x;
    if (cJSON_GetArraySize(g) > 0) {
        P("Gates:\n\n");
        cJSON_ArrayForEach(x, g) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(x, "message");
            P("- %s\n", cJSON_IsString(m) ? m->valuestring : "?");
        }
        P("\n");
    }
    P("| step | what | status | wall s | peak MiB |\n|---|---|---|---|---|\n");
    cJSON_ArrayForEach(x, steps) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(x, "step"), *w = cJSON_GetObjectItemCaseSensitive(x, "what"),
                    *stt = cJSON_GetObjectItemCaseSensitive(x, "status");
        P("| %s | %s | %s | %.2f | %.1f |\n", s->valuestring, w->valuestring, cJSON_IsString(stt) ? stt->valuestring : "?",
          jnum(x, "wall_s"), jnum(x, "peak_rss_kib") / 1024.0);
    }
    P("\nEvery command is in manifest.json (`steps[].command`) and can be replayed by hand.\n");
#undef P
    if (len >= cap) b[cap - 1] = 0;
    return b;
}

/* Gate results against the base model on the first text; *ok false when one fails. */
static cJSON *eval_gates(const sq_recipe *r, const cJSON *texts, bool *ok) {
    cJSON *g = cJSON_CreateArray();
    *ok = true;
    const cJSON *t = cJSON_GetArrayItem(texts, 0);
    char msg[256];
    if (r->has_max_ppl_increase && t) {
        double inc = jnum(t, "ppl_increase");
        bool pass = isfinite(inc) && inc <= r->max_ppl_increase;
        snprintf(msg, sizeof msg, "%s: PPL %.4f vs base %.4f: %+.3f %% (limit +%.3f %%)", pass ? "pass" : "FAIL", jnum(t, "ppl"),
                 jnum(t, "base_ppl"), 100 * inc, 100 * r->max_ppl_increase);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "gate", "max_ppl_increase");
        add_num(x, "value", inc);
        cJSON_AddNumberToObject(x, "limit", r->max_ppl_increase);
        cJSON_AddBoolToObject(x, "pass", pass);
        cJSON_AddStringToObject(x, "message", msg);
        cJSON_AddItemToArray(g, x);
        *ok = *ok && pass;
    }
    if (r->has_max_kld && t) {
        double k = jnum(t, "kld");
        bool pass = isfinite(k) && k <= r->max_kld;
        snprintf(msg, sizeof msg, "%s: KLD %.6f (limit %.6f)", pass ? "pass" : "FAIL", k, r->max_kld);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "gate", "max_kld");
        add_num(x, "value", k);
        cJSON_AddNumberToObject(x, "limit", r->max_kld);
        cJSON_AddBoolToObject(x, "pass", pass);
        cJSON_AddStringToObject(x, "message", msg);
        cJSON_AddItemToArray(g, x);
        *ok = *ok && pass;
    }
    return g;
}

/* ----- the run ----- */

static sq_status link_or_copy(const char *from, const char *to) {
    char *tmp = sq_atomic_tmp_name(to);
    if (!tmp) return sq_errorf(SQ_ERR_OOM, "out of memory");
    unlink(tmp);
    sq_status st = SQ_OK;
    if (link(from, tmp) != 0) {
        char *data = NULL;
        size_t len = 0;
        st = sq_read_file(from, SIZE_MAX, &data, &len);
        if (!st) {
            sq_atomic_file f;
            if (!(st = sq_atomic_open(&f, to)) && (st = sq_atomic_write(&f, data, len)) == SQ_OK) st = sq_atomic_commit(&f);
            else sq_atomic_abort(&f);
        }
        free(data);
        free(tmp);
        return st;
    }
    if (rename(tmp, to) != 0) {
        st = sq_errorf(SQ_ERR_IO, "%s: cannot rename: %s", to, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return st;
}

static sq_status run_all(run_ctx *c, bool *gates_ok) {
    const sq_recipe *r = c->r;
    sq_status st;
    char model_sha[65], h[65], key[65], buf[8192];
    char base[PATH_MAX], cur[PATH_MAX], calib[PATH_MAX], out[PATH_MAX], js[PATH_MAX], g[16];
    char model_abs[PATH_MAX];
    if (!realpath(r->model, model_abs)) return sq_errorf(SQ_ERR_IO, "%s: model not found: %s", r->model, strerror(errno));
    if ((st = add_input(c, "model", model_abs, model_sha))) return st;

    /* 1. the converted base store (cached by the model's hash and the tool version) */
    snprintf(buf, sizeof buf, "convert\n%s\n%s", sq_version(), model_sha);
    sha_str(buf, key);
    pf(base, sizeof base, "%s/base-%.16s.h5", c->cache, key);
    arg(c, "squish-convert");
    arg(c, "import");
    arg(c, "%s", model_abs);
    arg(c, "-o");
    arg(c, "%s", base);
    if ((st = step(c, "convert", "import the model into a store", (const char *const[]){base, NULL}, model_sha, true)))
        return st;
    char *bp = dpath(c, base);
    st = bp ? sq_sha256_file(bp, h, NULL) : sq_errorf(SQ_ERR_OOM, "out of memory");
    free(bp);
    if (st) return st;
    char cur_sha[65];
    snprintf(cur, sizeof cur, "%s", base);
    snprintf(cur_sha, sizeof cur_sha, "%s", h);
    char base_sha[65];
    snprintf(base_sha, sizeof base_sha, "%s", h);

    char data_abs[PATH_MAX] = "", data_sha[65] = "";
    if (r->has_calib) {
        bool needed = false;
        for (int32_t i = 0; i < r->n_stages; i++) needed = needed || sq_recipe_stage_needs_calib(&r->stages[i]);
        if (needed) {
            if (!realpath(r->calib_data, data_abs))
                return sq_errorf(SQ_ERR_IO, "%s: calibration data not found: %s", r->calib_data, strerror(errno));
            if ((st = add_input(c, "calibration data", data_abs, data_sha))) return st;
        }
    }

    /* 2. the stages */
    for (int32_t i = 0; i < r->n_stages; i++) {
        const sq_recipe_stage *s = &r->stages[i];
        const char *kind = s->kind == SQ_STAGE_QUANTIZE ? "quantize" : "prune";
        char name[64], label[256];
        calib[0] = 0;
        if (sq_recipe_stage_needs_calib(s)) {
            snprintf(buf, sizeof buf, "calibrate\n%s\n%s\n%s\n%s\n%s\n%d\n%d\n%d", sq_version(), cur_sha, data_sha,
                     r->calib_format, r->calib_field ? r->calib_field : "", r->calib_samples, r->calib_seq_len, r->calib_seed);
            sha_str(buf, key);
            pf(calib, sizeof calib, "%s/calib-%.16s.h5", c->cache, key);
            arg(c, "squish-calibrate");
            arg(c, "%s", cur);
            arg(c, "--data");
            arg(c, "%s", data_abs);
            arg(c, "--format");
            arg(c, "%s", r->calib_format);
            if (r->calib_field) {
                arg(c, "--field");
                arg(c, "%s", r->calib_field);
            }
            arg(c, "--samples");
            arg(c, "%d", r->calib_samples);
            if (r->calib_seq_len) {
                arg(c, "--seq-len");
                arg(c, "%d", r->calib_seq_len);
            }
            arg(c, "--seed");
            arg(c, "%d", r->calib_seed);
            arg(c, "-o");
            arg(c, "%s", calib);
            arg(c, "-q");
            arg_threads(c);
            snprintf(name, sizeof name, "stage%d-calibrate", i + 1);
            snprintf(label, sizeof label, "calibration statistics, %d x %d tokens", r->calib_samples, r->calib_seq_len);
            snprintf(buf, sizeof buf, "%s\n%s", cur_sha, data_sha);
            if ((st = step(c, name, label, (const char *const[]){calib, NULL}, buf, true))) return st;
        }
        snprintf(out, sizeof out, "stage%d-%s.h5", i + 1, kind);
        snprintf(js, sizeof js, "stage%d-%s.json", i + 1, kind);
        fmt_group(g, sizeof g, s->group);
        arg(c, s->kind == SQ_STAGE_QUANTIZE ? "squish-quantize" : "squish-prune");
        arg(c, "%s", cur);
        arg(c, "-o");
        arg(c, "%s", out);
        arg(c, "--method");
        arg(c, "%s", s->method);
        if (s->kind == SQ_STAGE_QUANTIZE) {
            arg(c, "--bits");
            arg(c, "%d", s->bits);
            arg(c, "--group");
            arg(c, "%s", g);
            arg(c, s->symmetric ? "--sym" : "--asym");
            if (s->mse) arg(c, "--mse");
            if (s->grid[0]) {
                arg(c, "--grid");
                arg(c, "%s", s->grid);
            }
            if (!strcmp(s->method, "gptq")) {
                arg(c, "--damp");
                arg(c, "%.17g", s->damp);
                arg(c, "--block-size");
                arg(c, "%d", s->block_size);
                if (s->act_order) arg(c, "--act-order");
            } else if (!strcmp(s->method, "awq")) {
                if (s->awq_duo) arg(c, "--awq-duo");
                if (!s->awq_clip) arg(c, "--no-awq-clip");
                arg(c, "--awq-windows");
                arg(c, "%d", s->awq_windows);
            }
            for (int32_t k = 0; k < s->n_overrides; k++) {
                const sq_recipe_override *o = &s->overrides[k];
                char spec[1024], og[16];
                if (o->keep) {
                    snprintf(spec, sizeof spec, "%s=%s", o->match, o->dtype[0] ? o->dtype : "keep");
                } else {
                    size_t n = (size_t)snprintf(spec, sizeof spec, "%s=", o->match);
                    const char *sep = "";
                    if (o->bits && n < sizeof spec) n += (size_t)snprintf(spec + n, sizeof spec - n, "bits:%d", o->bits), sep = ",";
                    if (o->group >= 0 && n < sizeof spec) {
                        fmt_group(og, sizeof og, o->group);
                        n += (size_t)snprintf(spec + n, sizeof spec - n, "%sgroup:%s", sep, og);
                        sep = ",";
                    }
                    if (o->symmetric >= 0 && n < sizeof spec)
                        snprintf(spec + n, sizeof spec - n, "%s%s", sep, o->symmetric ? "sym" : "asym");
                }
                arg(c, "--override");
                arg(c, "%s", spec);
            }
            snprintf(label, sizeof label, "%s %d-bit %s%s %s", s->method, s->bits, s->group == 0 ? "" : "g", g,
                     s->symmetric ? "sym" : "asym");
        } else {
            if (s->sparsity >= 0) {
                arg(c, "--sparsity");
                arg(c, "%.17g", s->sparsity);
            }
            arg(c, "--pattern");
            arg(c, "%s", s->pattern);
            if (!strcmp(s->method, "sparsegpt")) {
                arg(c, "--damp");
                arg(c, "%.17g", s->damp);
                arg(c, "--block-size");
                arg(c, "%d", s->block_size);
            }
            if (s->bits) {
                arg(c, "--bits");
                arg(c, "%d", s->bits);
                arg(c, "--group");
                arg(c, "%s", g);
                if (!s->symmetric) arg(c, "--asym");
            }
            arg(c, "--seed");
            arg(c, "%d", r->calib_seed);
            if (s->sparsity >= 0)
                snprintf(label, sizeof label, "%s %s %.3g%s", s->method, s->pattern, s->sparsity, s->bits ? " + quantize" : "");
            else snprintf(label, sizeof label, "%s %s%s", s->method, s->pattern, s->bits ? " + quantize" : "");
        }
        if (calib[0]) {
            arg(c, "--calib");
            arg(c, "%s", calib);
            if (!s->sequential) arg(c, "--no-sequential");
        }
        for (int32_t k = 0; k < s->n_targets; k++) {
            arg(c, "--targets");
            arg(c, "%s", s->targets[k]);
        }
        for (int32_t k = 0; k < s->n_ignore; k++) {
            arg(c, "--ignore");
            arg(c, "%s", s->ignore[k]);
        }
        arg(c, "--json");
        arg(c, "%s", js);
        arg(c, "-q");
        arg_threads(c);
        snprintf(name, sizeof name, "stage%d-%s", i + 1, kind);
        char lab2[400];
        snprintf(lab2, sizeof lab2, "%s (%s:%d:%d)", label, r->file, s->line, s->col);
        snprintf(buf, sizeof buf, "%s\n%s", cur_sha, data_sha);
        if ((st = step(c, name, lab2, (const char *const[]){out, js, NULL}, buf, false))) return st;
        snprintf(cur, sizeof cur, "%s", out);
        char *p = dpath(c, out);
        st = p ? sq_sha256_file(p, cur_sha, NULL) : sq_errorf(SQ_ERR_OOM, "out of memory");
        free(p);
        if (st) return st;
    }

    /* 3. the outputs */
    cJSON *outputs = cJSON_CreateArray();
    cJSON *ev = cJSON_CreateObject();
    cJSON *texts = cJSON_AddArrayToObject(ev, "texts");
    cJSON_AddStringToObject(ev, "recipe", r->name);
    bool need_sqz = r->out_runnable || r->n_texts > 0 || r->decode_tokens > 0;
    /* what model.sqz computes: the final store, and int8 activations or not */
    char sqz_key[80];
    snprintf(sqz_key, sizeof sqz_key, "%s%s", cur_sha, r->out_act_int8 ? "\nact-int8" : "");
    if (r->out_store) {
        char *from = dpath(c, cur), *to = dpath(c, "model.h5");
        st = from && to ? link_or_copy(from, to) : sq_errorf(SQ_ERR_OOM, "out of memory");
        free(from);
        free(to);
        if (st) goto done;
    }
    if (need_sqz) {
        arg(c, "squish-convert");
        arg(c, "export");
        arg(c, "%s", cur);
        arg(c, "-o");
        arg(c, "model.sqz");
        if (r->out_act_int8) arg(c, "--act-int8");
        if ((st = step(c, "export", "runnable file", (const char *const[]){"model.sqz", NULL}, sqz_key, false))) goto done;
        char *p = dpath(c, "model.sqz");
        uint64_t size = 0;
        char hx[65];
        if (p && !sq_sha256_file(p, hx, &size)) {
            cJSON_AddNumberToObject(ev, "file_bytes", (double)size);
            cJSON_AddStringToObject(ev, "model_sqz_sha256", hx);
        }
        free(p);
    }
    if (r->out_gguf) {
        arg(c, "squish-convert");
        arg(c, "export");
        arg(c, "%s", cur);
        arg(c, "-o");
        arg(c, "model.gguf");
        if ((st = step(c, "export-gguf", "GGUF file", (const char *const[]){"model.gguf", NULL}, cur_sha, false))) goto done;
    }

    /* 4. evaluation: the base model once per text (cached), then the result */
    char base_sqz[PATH_MAX];
    pf(base_sqz, sizeof base_sqz, "%s/base-%.16s.sqz", c->cache, base_sha);
    if (r->n_texts > 0) {
        arg(c, "squish-convert");
        arg(c, "export");
        arg(c, "%s", base);
        arg(c, "-o");
        arg(c, "%s", base_sqz);
        if ((st = step(c, "base-export", "runnable file of the base model", (const char *const[]){base_sqz, NULL}, base_sha,
                       true)))
            goto done;
    }
    for (int32_t i = 0; i < r->n_texts; i++) {
        const sq_recipe_text *t = &r->texts[i];
        char text_abs[PATH_MAX], text_sha[65], bkld[PATH_MAX], bjs[PATH_MAX], name[64], ejs[64];
        if (!realpath(t->path, text_abs)) {
            st = sq_errorf(SQ_ERR_IO, "%s: evaluation text not found: %s", t->path, strerror(errno));
            goto done;
        }
        if ((st = add_input(c, "evaluation text", text_abs, text_sha))) goto done;
        snprintf(buf, sizeof buf, "eval\n%s\n%s\n%s\n%s\n%d\n%d\n%d", sq_version(), base_sha, text_sha, t->protocol, t->ctx,
                 t->chunks, r->kld);
        sha_str(buf, key);
        pf(bkld, sizeof bkld, "%s/base-%.16s.kld", c->cache, key);
        pf(bjs, sizeof bjs, "%s/base-%.16s.json", c->cache, key);
        for (int pass = 0; pass < 2; pass++) {
            const char *m = pass == 0 ? base_sqz : "model.sqz";
            snprintf(ejs, sizeof ejs, "eval-%d.json", i + 1);
            arg(c, "squish-eval");
            arg(c, "%s", m);
            arg(c, "--text");
            arg(c, "%s", text_abs);
            arg(c, "--protocol");
            arg(c, "%s", t->protocol);
            if (t->ctx) {
                arg(c, "--ctx");
                arg(c, "%d", t->ctx);
            }
            if (t->chunks) {
                arg(c, "--chunks");
                arg(c, "%d", t->chunks);
            }
            if (r->kld) {
                arg(c, pass == 0 ? "--save-logits" : "--kld");
                arg(c, "%s", bkld);
            }
            arg(c, "--json");
            arg(c, "%s", pass == 0 ? bjs : ejs);
            arg(c, "-q");
            arg_threads(c);
            snprintf(name, sizeof name, "%s-%d", pass == 0 ? "base-eval" : "eval", i + 1);
            const char *o1[] = {bjs, r->kld ? bkld : NULL, NULL};
            const char *o2[] = {ejs, NULL};
            snprintf(buf, sizeof buf, "%s\n%s\n%s", pass == 0 ? base_sha : sqz_key, text_sha, base_sha);
            if ((st = step(c, name, pass == 0 ? "evaluate the base model" : "evaluate the result", pass == 0 ? o1 : o2, buf,
                           pass == 0)))
                goto done;
        }
        char *pb = dpath(c, bjs), *pe = dpath(c, ejs);
        cJSON *jb = pb ? sq_drv_load_json(pb) : NULL, *je = pe ? sq_drv_load_json(pe) : NULL;
        free(pb);
        free(pe);
        if (!jb || !je) {
            cJSON_Delete(jb);
            cJSON_Delete(je);
            st = sq_errorf(SQ_ERR_FORMAT, "cannot read the evaluation JSON of text %d: %s", i + 1, sq_last_error());
            goto done;
        }
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "path", text_abs);
        cJSON_AddStringToObject(x, "text_sha256", text_sha);
        cJSON_AddStringToObject(x, "protocol", t->protocol);
        add_num(x, "ctx", jnum(je, "ctx"));
        add_num(x, "windows", jnum(je, "windows"));
        add_num(x, "scored_tokens", jnum(je, "scored_tokens"));
        add_num(x, "ppl", jnum(je, "ppl"));
        add_num(x, "ppl_err", jnum(je, "ppl_err"));
        add_num(x, "base_ppl", jnum(jb, "ppl"));
        add_num(x, "ppl_increase", jnum(je, "ppl") / jnum(jb, "ppl") - 1.0);
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(je, "kld");
        if (k) {
            add_num(x, "kld", jnum(k, "mean"));
            add_num(x, "kld_err", jnum(k, "err"));
            add_num(x, "same_top1", jnum(k, "same_top1"));
        }
        cJSON_AddItemToArray(texts, x);
        if (i == 0) {
            add_num(ev, "bits_per_weight", jnum(je, "bits_per_weight"));
            add_num(ev, "n_weights", jnum(je, "n_weights"));
        }
        cJSON_Delete(jb);
        cJSON_Delete(je);
    }
    /* 5. decode speed (a short greedy generation; a timing, not an artifact) */
    if (r->decode_tokens > 0) {
        arg(c, "squish-run");
        arg(c, "model.sqz");
        arg(c, "-n");
        arg(c, "%d", r->decode_tokens);
        arg(c, "--temp");
        arg(c, "0");
        arg(c, "--seed");
        arg(c, "0");
        arg(c, "--ignore-eos");
        arg(c, "--json");
        arg(c, "decode.json");
        arg(c, "-q");
        arg_threads(c);
        c->key_threads = true; /* a timing: measured again at another thread count */
        if ((st = step(c, "decode", "decode speed", (const char *const[]){"decode.json", NULL}, sqz_key, false))) goto done;
        char *p = dpath(c, "decode.json");
        cJSON *d = p ? sq_drv_load_json(p) : NULL;
        free(p);
        add_num(ev, "decode_tokens_per_s", jnum(d, "generation_tokens_per_s"));
        cJSON_Delete(d);
    }
    double qtime = 0;
    const cJSON *sx;
    cJSON_ArrayForEach(sx, c->steps) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(sx, "step");
        if (cJSON_IsString(nm) && !strncmp(nm->valuestring, "stage", 5) && isfinite(jnum(sx, "wall_s")))
            qtime += jnum(sx, "wall_s");
    }
    cJSON_AddNumberToObject(ev, "compress_seconds", round(qtime * 1000) / 1000);
    cJSON_AddItemToObject(ev, "gates", eval_gates(r, texts, gates_ok));

    /* 6. eval.json, report.md, then the manifest last */
    {
        char *p = dpath(c, "eval.json");
        st = p ? write_json(p, ev) : sq_errorf(SQ_ERR_OOM, "out of memory");
        free(p);
        if (st) goto done;
        char *rep = make_report(r, ev, c->steps);
        p = dpath(c, "report.md");
        st = rep && p ? sq_drv_write_text(p, rep) : sq_errorf(SQ_ERR_OOM, "out of memory");
        free(p);
        if (!st && !c->o->quiet && !c->o->no_report) fputs(rep, stdout);
        free(rep);
        if (st) goto done;
    }
    static const char *const ARTS[] = {"model.h5", "model.sqz", "model.gguf", "eval.json", "report.md", NULL};
    for (int i = 0; i < 5 + 2 * r->n_stages; i++) {
        /* the artifacts, then each stage's store and report */
        char nm[64];
        if (i < 5) snprintf(nm, sizeof nm, "%s", ARTS[i]);
        else snprintf(nm, sizeof nm, "stage%d-%s.%s", (i - 5) / 2 + 1,
                      r->stages[(i - 5) / 2].kind == SQ_STAGE_QUANTIZE ? "quantize" : "prune", (i - 5) % 2 ? "json" : "h5");
        char *p = dpath(c, nm);
        uint64_t size = 0;
        char hx[65];
        if (p && sq_file_exists(p) && !sq_sha256_file(p, hx, &size)) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "path", nm);
            cJSON_AddStringToObject(x, "sha256", hx);
            cJSON_AddNumberToObject(x, "bytes", (double)size);
            cJSON_AddItemToArray(outputs, x);
        }
        free(p);
    }
    {
        cJSON *m = cJSON_CreateObject();
        char tool[64];
        snprintf(tool, sizeof tool, "squish %s", sq_version());
        cJSON_AddStringToObject(m, "tool", tool);
        cJSON_AddItemToObject(m, "tool_binaries", c->tools);
        c->tools = NULL;
        cJSON_AddStringToObject(m, "recipe", r->file);
        char rs[65];
        if (!hash_input(r->file, rs)) cJSON_AddStringToObject(m, "recipe_sha256", rs);
        char *rj = sq_recipe_to_json(r);
        cJSON *rp = rj ? cJSON_Parse(rj) : NULL;
        free(rj);
        if (rp) cJSON_AddItemToObject(m, "resolved_recipe", rp);
        if (c->tstr[0]) cJSON_AddNumberToObject(m, "threads", atoi(c->tstr));
        else cJSON_AddStringToObject(m, "threads", "tool default");
        cJSON_AddStringToObject(m, "cache", c->cache);
        cJSON_AddItemToObject(m, "inputs", cJSON_Duplicate(c->inputs, true));
        cJSON_AddItemToObject(m, "steps", cJSON_Duplicate(c->steps, true));
        double wall = 0, peak = 0;
        const cJSON *sy;
        cJSON_ArrayForEach(sy, c->steps) {
            const cJSON *ss = cJSON_GetObjectItemCaseSensitive(sy, "status");
            if (cJSON_IsString(ss) && !strcmp(ss->valuestring, "ran") && isfinite(jnum(sy, "wall_s"))) wall += jnum(sy, "wall_s");
            if (isfinite(jnum(sy, "peak_rss_kib"))) peak = fmax(peak, jnum(sy, "peak_rss_kib"));
        }
        cJSON_AddNumberToObject(m, "wall_s_this_run", round(wall * 1000) / 1000);
        cJSON_AddNumberToObject(m, "peak_rss_kib_max", peak);
        cJSON_AddItemToObject(m, "outputs", outputs);
        outputs = NULL;
        cJSON_AddItemToObject(m, "metrics", cJSON_Duplicate(ev, true));
        cJSON_AddBoolToObject(m, "gates_pass", *gates_ok);
        char *p = dpath(c, "manifest.json");
        st = p ? write_json(p, m) : sq_errorf(SQ_ERR_OOM, "out of memory");
        free(p);
        cJSON_Delete(m);
    }
done:
    cJSON_Delete(outputs);
    cJSON_Delete(ev);
    return st;
}

sq_status sq_recipe_run(const sq_recipe *r, const sq_run_opts *opts, bool *gates_ok) {
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.t_at = -1;
    c.r = r;
    c.o = opts;
    *gates_ok = true;
    char *def = opts->out_dir ? NULL : sq_recipe_default_dir(r);
    const char *d = opts->out_dir ? opts->out_dir : def;
    sq_status st = d ? sq_drv_mkdirs(d) : sq_errorf(SQ_ERR_OOM, "out of memory");
    if (!st && !realpath(d, c.dir)) st = sq_errorf(SQ_ERR_IO, "%s: %s", d, strerror(errno));
    free(def);
    if (st) return st;
    snprintf(c.cache, sizeof c.cache, ".cache");
    if (opts->cache_dir) {
        /* the tools record their command lines in what they write, so a shared cache is
         * reached through the symbolic link DIR/.cache: the same command lines, the same
         * bytes, wherever the cache lives (an earlier run's own .cache directory is kept, and
         * the shared cache then named by its absolute path) */
        char abs[PATH_MAX];
        if ((st = sq_drv_mkdirs(opts->cache_dir))) return st;
        if (!realpath(opts->cache_dir, abs)) return sq_errorf(SQ_ERR_IO, "%s: %s", opts->cache_dir, strerror(errno));
        char *lnk = dpath(&c, ".cache");
        if (!lnk) return sq_errorf(SQ_ERR_OOM, "out of memory");
        struct stat sb;
        if (lstat(lnk, &sb) == 0 && S_ISLNK(sb.st_mode)) unlink(lnk);
        if (lstat(lnk, &sb) == 0 || symlink(abs, lnk) != 0) snprintf(c.cache, sizeof c.cache, "%s", abs);
        free(lnk);
    }
    if (opts->threads > 0) snprintf(c.tstr, sizeof c.tstr, "%d", opts->threads);
    char *cp = dpath(&c, c.cache), *lp = dpath(&c, "logs");
    st = cp && lp ? sq_drv_mkdirs(cp) : sq_errorf(SQ_ERR_OOM, "out of memory");
    if (!st) st = sq_drv_mkdirs(lp);
    if (!st) {
        clean_tmp(c.dir);
        clean_tmp(cp);
    }
    free(cp);
    free(lp);
    if (st) return st;
    /* nothing of an earlier run may look complete while this one runs */
    static const char *const FINAL[] = {"manifest.json", "report.md", "eval.json", NULL};
    for (int i = 0; FINAL[i]; i++) {
        char *p = dpath(&c, FINAL[i]);
        if (p) unlink(p);
        free(p);
    }
    char *sp = dpath(&c, ".state.json");
    c.old_state = sp && sq_file_exists(sp) ? sq_drv_load_json(sp) : NULL;
    free(sp);
    c.state = cJSON_CreateObject();
    c.steps = cJSON_CreateArray();
    c.inputs = cJSON_CreateArray();
    c.tools = cJSON_CreateObject();
    if (!c.state || !c.steps || !c.inputs || !c.tools) st = sq_errorf(SQ_ERR_OOM, "out of memory");
    say(&c, "squish recipe run %s -> %s", r->file, c.dir);
    if (!st) st = run_all(&c, gates_ok);
    if (st == SQ_OK && sq_drv_stopped()) st = sq_errorf(SQ_ERR_INTERRUPTED, "interrupted");
    arg_reset(&c);
    free(c.args);
    cJSON_Delete(c.old_state);
    cJSON_Delete(c.state);
    cJSON_Delete(c.steps);
    cJSON_Delete(c.inputs);
    cJSON_Delete(c.tools);
    return st;
}

sq_status sq_drv_ensure_run(const char *item, const sq_run_opts *opts, char *dir, size_t size) {
    char *m = sq_path_join(item, "manifest.json");
    bool is_run = m && sq_is_dir(item) && sq_file_exists(m);
    free(m);
    if (is_run) {
        snprintf(dir, size, "%s", item);
        return SQ_OK;
    }
    if (sq_is_dir(item)) return sq_errorf(SQ_ERR_ARG, "%s: not a finished run (no manifest.json)", item);
    sq_recipe r;
    sq_status st = sq_recipe_load(item, &r);
    if (st) return st;
    char *d = sq_recipe_default_dir(&r);
    if (!d) {
        sq_recipe_free(&r);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    snprintf(dir, size, "%s", d);
    m = sq_path_join(d, "manifest.json");
    if (m && !sq_file_exists(m)) {
        sq_run_opts o = *opts;
        o.out_dir = d;
        if (!o.cache_dir) o.cache_dir = "runs/.cache";
        o.no_report = true;
        bool ok;
        st = sq_recipe_run(&r, &o, &ok);
    }
    free(m);
    free(d);
    sq_recipe_free(&r);
    return st;
}
