/* qplan.c - which tensors squish-quantize quantizes, and how: llm-compressor's targets /
 * ignore vocabulary (FORMATS.md 8.1: exact module name, "re:<pattern>" with Python
 * re.match semantics, the "Linear" class) over module names (tensor names without
 * ".weight"), Python patterns translated to POSIX ERE for glibc regcomp (FORMATS.md 8.3:
 * \d \w \s become bracket expressions; (?...), lookaround, backreferences and lazy
 * quantifiers are refused), and per-tensor overrides "PATTERN=bits:8,group:128,asym" /
 * "PATTERN=keep". Group sizes follow the runnable format (docs/quantization.md): a
 * multiple of 32, or one group per row.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "qmodel.h"

const char *sq_qmethod_name(sq_qmethod m) { return m == SQ_QMETHOD_GPTQ ? "gptq" : m == SQ_QMETHOD_AWQ ? "awq" : "rtn"; }

/* ===== Python re -> POSIX ERE ===== */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static bool sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}
static bool sb_str(sbuf *b, const char *s) { return sb_put(b, s, strlen(s)); }
static bool sb_chr(sbuf *b, char c) { return sb_put(b, &c, 1); }

#define ERE_SPECIAL ".[]()*+?{}|^$\\"

/* A Python escape that stands for one literal character (n, t, punctuation), or -1. */
static int escape_literal(char e) {
    switch (e) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    default: return ispunct((unsigned char)e) || e == ' ' ? e : -1;
    }
}

static sq_status bad(const char *py, const char *why) {
    return sq_errorf(SQ_ERR_ARG, "regular expression '%s': %s", py, why);
}

/* A bracket expression starting after '[' at py[*i]; appends its POSIX form. */
static sq_status translate_set(const char *py, size_t *i, sbuf *out) {
    sbuf body = {0};
    bool neg = false, rb = false, dash = false, caret = false, lb = false, first = true, ok = true;
    size_t k = *i;
    if (py[k] == '^') {
        neg = true;
        k++;
    }
    for (;;) {
        char c = py[k];
        if (!c) {
            free(body.p);
            return bad(py, "unterminated [...] set");
        }
        if (c == ']' && !first) break;
        first = false;
        int lit = -1; /* a literal character, or a class appended directly */
        if (c == '\\') {
            char e = py[k + 1];
            k += 2;
            if (e == 'd') ok = ok && sb_str(&body, "0-9");
            else if (e == 'w') ok = ok && sb_str(&body, "A-Za-z0-9_");
            else if (e == 's') ok = ok && sb_str(&body, "[:space:]");
            else if (e == 'D' || e == 'W' || e == 'S') {
                free(body.p);
                return bad(py, "negated classes (\\D \\W \\S) inside [...] cannot be translated to POSIX");
            } else if ((lit = escape_literal(e)) < 0) {
                free(body.p);
                return bad(py, e ? "unsupported escape inside [...]" : "trailing backslash");
            }
        } else {
            lit = (unsigned char)c;
            k++;
        }
        if (lit < 0) continue;
        /* a range a-b (not when '-' is the last character of the set) */
        if (py[k] == '-' && py[k + 1] && py[k + 1] != ']') {
            int hi = (unsigned char)py[k + 1];
            size_t adv = 2;
            if (hi == '\\') {
                hi = escape_literal(py[k + 2]);
                adv = 3;
            }
            if (hi < 0 || hi < lit || strchr("]^-[", lit) || strchr("]^-[", hi)) {
                free(body.p);
                return bad(py, "unsupported range inside [...]");
            }
            char r[3] = {(char)lit, '-', (char)hi};
            ok = ok && sb_put(&body, r, 3);
            k += adv;
            continue;
        }
        if (lit == ']') rb = true;
        else if (lit == '-') dash = true;
        else if (lit == '^') caret = true;
        else if (lit == '[') lb = true;
        else ok = ok && sb_chr(&body, (char)lit);
    }
    *i = k + 1;
    if (!neg && !rb && !dash && !lb && body.n == 0 && caret) { /* "[\^]": one literal caret */
        ok = ok && sb_str(out, "\\^");
    } else {
        /* POSIX: ']' first, '[' after the body (never followed by ':' '.' '='), '^' not
         * first, '-' last */
        ok = ok && sb_chr(out, '[') && (!neg || sb_chr(out, '^')) && (!rb || sb_chr(out, ']')) &&
             (!body.n || sb_str(out, body.p)) && (!lb || sb_chr(out, '[')) && (!caret || sb_chr(out, '^')) &&
             (!dash || sb_chr(out, '-')) && sb_chr(out, ']');
    }
    free(body.p);
    return ok ? SQ_OK : sq_errorf(SQ_ERR_OOM, "out of memory");
}

sq_status sq_qregex_translate(const char *py, char **outp) {
    sbuf out = {0};
    sq_status st = SQ_OK;
    bool ok = sb_str(&out, "^(");
    *outp = NULL;
    for (size_t i = 0; py[i] && ok && st == SQ_OK;) {
        char c = py[i];
        if (c == '(') {
            if (py[i + 1] == '?') {
                st = bad(py, "(?...) groups, flags and lookaround are not supported (POSIX ERE); use plain (...)");
                break;
            }
            ok = sb_chr(&out, '(');
            i++;
        } else if (c == '\\') {
            char e = py[i + 1];
            int lit;
            i += 2;
            if (e == 'd') ok = sb_str(&out, "[0-9]");
            else if (e == 'D') ok = sb_str(&out, "[^0-9]");
            else if (e == 'w') ok = sb_str(&out, "[A-Za-z0-9_]");
            else if (e == 'W') ok = sb_str(&out, "[^A-Za-z0-9_]");
            else if (e == 's') ok = sb_str(&out, "[[:space:]]");
            else if (e == 'S') ok = sb_str(&out, "[^[:space:]]");
            else if (e == 'A') ok = sb_chr(&out, '^');
            else if (e == 'Z' || e == 'z') ok = sb_chr(&out, '$');
            else if (e >= '0' && e <= '9') st = bad(py, "backreferences (\\1 ...) are not supported");
            else if (e == 'b' || e == 'B') st = bad(py, "word boundaries (\\b, \\B) are not supported");
            else if (!e) st = bad(py, "trailing backslash");
            else if ((lit = escape_literal(e)) < 0) st = bad(py, "unsupported escape sequence");
            else if (strchr(ERE_SPECIAL, lit)) ok = sb_chr(&out, '\\') && sb_chr(&out, (char)lit);
            else ok = sb_chr(&out, (char)lit);
        } else if (c == '[') {
            i++;
            st = translate_set(py, &i, &out);
        } else {
            ok = sb_chr(&out, c);
            i++;
            if (c == '*' || c == '+' || c == '?' || c == '}') {
                if (py[i] == '?') st = bad(py, "lazy quantifiers (*? +? ?? {m,n}?) are not supported (POSIX ERE)");
                else if (py[i] == '+') st = bad(py, "possessive quantifiers (*+ ++ ?+) are not supported (POSIX ERE)");
            }
        }
    }
    ok = ok && sb_chr(&out, ')');
    if (st == SQ_OK && !ok) st = sq_errorf(SQ_ERR_OOM, "out of memory");
    if (st != SQ_OK) {
        free(out.p);
        return st;
    }
    *outp = out.p;
    return SQ_OK;
}

/* ===== Patterns ===== */

sq_status sq_qpattern_compile(sq_qpattern *p, const char *text) {
    memset(p, 0, sizeof *p);
    if (!text || !*text) return sq_errorf(SQ_ERR_ARG, "empty pattern (give a module name, re:<pattern> or Linear)");
    if (!(p->text = sq_strdup(text))) return sq_errorf(SQ_ERR_OOM, "out of memory");
    if (strcmp(text, "Linear") == 0) {
        p->kind = SQ_QPAT_LINEAR;
        return SQ_OK;
    }
    if (strncmp(text, "re:", 3) != 0) {
        p->kind = SQ_QPAT_EXACT;
        return SQ_OK;
    }
    p->kind = SQ_QPAT_REGEX;
    if (!text[3]) {
        sq_qpattern_free(p);
        return sq_errorf(SQ_ERR_ARG, "'re:' without a pattern");
    }
    sq_status st = sq_qregex_translate(text + 3, &p->posix);
    if (st) {
        sq_qpattern_free(p);
        return st;
    }
    int rc = regcomp(&p->re, p->posix, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[160];
        regerror(rc, &p->re, msg, sizeof msg);
        st = sq_errorf(SQ_ERR_ARG, "regular expression '%s' (POSIX '%s'): %s", text + 3, p->posix, msg);
        sq_qpattern_free(p);
        return st;
    }
    p->compiled = true;
    return SQ_OK;
}

bool sq_qpattern_match(const sq_qpattern *p, const char *module, bool block_linear) {
    switch (p->kind) {
    case SQ_QPAT_LINEAR: return block_linear;
    case SQ_QPAT_REGEX: return p->compiled && regexec(&p->re, module, 0, NULL, 0) == 0;
    default: {
        if (strcmp(p->text, module) == 0) return true;
        size_t n = strlen(module);
        return strncmp(p->text, module, n) == 0 && strcmp(p->text + n, ".weight") == 0;
    }
    }
}

void sq_qpattern_free(sq_qpattern *p) {
    if (!p) return;
    if (p->compiled) regfree(&p->re);
    free(p->text);
    free(p->posix);
    memset(p, 0, sizeof *p);
}

/* ===== Schemes and overrides ===== */

/* "8" -> 8 within [lo, hi]; false on anything else. */
static bool parse_int(const char *s, int32_t lo, int32_t hi, int32_t *out) {
    char *end;
    if (!*s || !(isdigit((unsigned char)*s))) return false;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

sq_status sq_qoverride_parse(sq_qoverride *o, const char *spec) {
    memset(o, 0, sizeof *o);
    o->keep_type = -1;
    const char *eq = strrchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
        return sq_errorf(SQ_ERR_ARG,
                         "--override '%s': expected PATTERN=keep, PATTERN=f16|bf16|f32 or "
                         "PATTERN=bits:N,group:N|row,sym|asym", spec);
    char *pat = malloc((size_t)(eq - spec) + 1), *items = sq_strdup(eq + 1);
    sq_status st = SQ_OK;
    if (!pat || !items) {
        free(pat);
        free(items);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    memcpy(pat, spec, (size_t)(eq - spec));
    pat[eq - spec] = '\0';
    if ((st = sq_qpattern_compile(&o->pat, pat))) {
        sq_error_prefix("--override");
        goto done;
    }
    char what[256];
    snprintf(what, sizeof what, "--override '%.200s'", spec);
    char *save = NULL;
    for (char *it = strtok_r(items, ",", &save); it && st == SQ_OK; it = strtok_r(NULL, ",", &save)) {
        if (strcmp(it, "keep") == 0) {
            o->keep = true;
        } else if (strcmp(it, "f16") == 0 || strcmp(it, "bf16") == 0 || strcmp(it, "f32") == 0) {
            o->keep = true;
            o->keep_type = it[0] == 'b' ? SQ_TYPE_BF16 : it[1] == '1' ? SQ_TYPE_F16 : SQ_TYPE_F32;
        } else if (strcmp(it, "sym") == 0 || strcmp(it, "asym") == 0) {
            o->has_asym = true;
            o->asym = it[0] == 'a';
        } else if (strncmp(it, "bits:", 5) == 0) {
            o->has_bits = true;
            if (!parse_int(it + 5, 1, 64, &o->bits))
                st = sq_errorf(SQ_ERR_ARG, "--override '%s': '%s' is not a bit width", spec, it);
            else
                st = sq_qscheme_check_cli(o->bits, 0, what);
        } else if (strncmp(it, "group:", 6) == 0) {
            o->has_group = true;
            if (strcmp(it + 6, "row") == 0) o->group = 0;
            else if (!parse_int(it + 6, 1, 1 << 30, &o->group))
                st = sq_errorf(SQ_ERR_ARG, "--override '%s': '%s' is not a group size (N or row)", spec, it);
            if (st == SQ_OK) st = sq_qscheme_check_cli(8, o->group, what);
        } else {
            st = sq_errorf(SQ_ERR_ARG,
                           "--override '%s': unknown item '%s' (keep, f16, bf16, f32, bits:N, group:N|row, sym, asym)",
                           spec, it);
        }
    }
    if (st == SQ_OK && o->keep && (o->has_bits || o->has_group || o->has_asym))
        st = sq_errorf(SQ_ERR_ARG, "--override '%s': keep/f16/bf16/f32 cannot be combined with other items", spec);
    if (st == SQ_OK && !o->keep && !o->has_bits && !o->has_group && !o->has_asym)
        st = sq_errorf(SQ_ERR_ARG, "--override '%s': nothing to override", spec);
done:
    free(pat);
    free(items);
    if (st) sq_qoverride_free(o);
    return st;
}

void sq_qoverride_free(sq_qoverride *o) {
    if (!o) return;
    sq_qpattern_free(&o->pat);
    memset(o, 0, sizeof *o);
}

/* ===== Plan ===== */

static bool is_block_linear(sq_role r) {
    return r == SQ_ROLE_Q || r == SQ_ROLE_K || r == SQ_ROLE_V || r == SQ_ROLE_O || r == SQ_ROLE_GATE ||
           r == SQ_ROLE_UP || r == SQ_ROLE_DOWN;
}

/* The module name of a tensor name: without ".weight". */
static void module_of(const char *tensor, char *out, size_t cap) {
    snprintf(out, cap, "%s", tensor);
    size_t n = strlen(out);
    if (n > 7 && strcmp(out + n - 7, ".weight") == 0) out[n - 7] = '\0';
}

const char *sq_qplan_short_name(const sq_qplan_entry *e) {
    static const char *const names[] = {
        [SQ_ROLE_EMBED] = "embed_tokens", [SQ_ROLE_Q] = "q_proj",       [SQ_ROLE_K] = "k_proj",
        [SQ_ROLE_V] = "v_proj",           [SQ_ROLE_O] = "o_proj",       [SQ_ROLE_GATE] = "gate_proj",
        [SQ_ROLE_UP] = "up_proj",         [SQ_ROLE_DOWN] = "down_proj", [SQ_ROLE_LM_HEAD] = "lm_head",
    };
    return (size_t)e->role < sizeof names / sizeof names[0] && names[e->role] ? names[e->role] : e->name;
}

const sq_qplan_entry *sq_qplan_find(const sq_qplan *plan, const char *name) {
    for (int32_t i = 0; plan && i < plan->n; i++)
        if (strcmp(plan->e[i].name, name) == 0) return &plan->e[i];
    return NULL;
}

void sq_qplan_free(sq_qplan *plan) {
    if (!plan) return;
    free(plan->e);
    memset(plan, 0, sizeof *plan);
}

/* "pattern 're:...'" for messages about option `opt`. */
static sq_status matches_nothing(const char *opt, const char *text, const sq_config *cfg) {
    if (cfg->tied_embeddings && strstr(text, "lm_head"))
        return sq_errorf(SQ_ERR_ARG, "%s '%s': this model has no lm_head (the output matrix is tied to "
                                     "model.embed_tokens)", opt, text);
    return sq_errorf(SQ_ERR_ARG, "%s '%s' matches no tensor of the model (module names look like "
                                 "model.layers.0.self_attn.q_proj, model.embed_tokens, lm_head)", opt, text);
}

sq_status sq_qplan_build(sq_qplan *plan, const sq_config *cfg, const sq_qplan_spec *spec) {
    static const char *const default_targets[] = {"Linear"};
    const char *const *targets = spec->n_targets > 0 ? spec->targets : default_targets;
    const int32_t n_t = spec->n_targets > 0 ? spec->n_targets : 1;
    const int32_t n_i = spec->n_ignore, n_o = spec->n_overrides;
    sq_tensor_spec *ts = NULL;
    int32_t n_ts = 0;
    sq_qpattern *tp = calloc((size_t)n_t + 1, sizeof *tp), *ip = calloc((size_t)n_i + 1, sizeof *ip);
    sq_qoverride *ov = calloc((size_t)n_o + 1, sizeof *ov);
    int32_t *hits = calloc((size_t)(n_t + n_o) + 1, sizeof *hits);
    sq_status st = SQ_OK;
    memset(plan, 0, sizeof *plan);
    if (!tp || !ip || !ov || !hits) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    if ((st = sq_qscheme_check_cli(spec->scheme.bits, spec->scheme.group, "quantization scheme"))) goto done;
    for (int32_t i = 0; i < n_t; i++)
        if ((st = sq_qpattern_compile(&tp[i], targets[i]))) {
            sq_error_prefix("--targets");
            goto done;
        }
    for (int32_t i = 0; i < n_i; i++)
        if ((st = sq_qpattern_compile(&ip[i], spec->ignore[i]))) {
            sq_error_prefix("--ignore");
            goto done;
        }
    for (int32_t i = 0; i < n_o; i++)
        if ((st = sq_qoverride_parse(&ov[i], spec->overrides[i]))) goto done;
    if ((st = sq_config_tensors(cfg, &ts, &n_ts))) goto done;
    if (!(plan->e = calloc((size_t)n_ts + 1, sizeof *plan->e))) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto done;
    }
    for (int32_t k = 0; k < n_ts; k++) {
        const sq_tensor_spec *t = &ts[k];
        if (t->n_dims != 2) continue;
        sq_qplan_entry *e = &plan->e[plan->n++];
        char mod[SQ_MAX_NAME];
        module_of(t->name, mod, sizeof mod);
        const bool lin = is_block_linear(t->role);
        snprintf(e->name, sizeof e->name, "%s", t->name);
        e->role = t->role;
        e->layer = t->layer;
        e->rows = t->shape[0];
        e->cols = t->shape[1];
        e->target = e->ignored_by = e->override_idx = e->keep_type = -1;
        e->scheme = spec->scheme;
        for (int32_t i = 0; i < n_t; i++)
            if (sq_qpattern_match(&tp[i], mod, lin)) {
                if (e->target < 0) e->target = i;
                hits[i]++;
            }
        for (int32_t i = 0; i < n_i && e->target >= 0; i++)
            if (sq_qpattern_match(&ip[i], mod, lin)) {
                e->ignored_by = i;
                break;
            }
        e->quantize = e->target >= 0 && e->ignored_by < 0;
        for (int32_t i = 0; i < n_o; i++) {
            if (!sq_qpattern_match(&ov[i].pat, mod, lin)) continue;
            hits[n_t + i]++;
            e->override_idx = i;
            if (ov[i].keep) {
                e->quantize = false;
                e->keep_type = ov[i].keep_type;
                continue;
            }
            e->quantize = true;
            e->keep_type = -1;
            if (ov[i].has_bits) e->scheme.bits = ov[i].bits;
            if (ov[i].has_group) e->scheme.group = ov[i].group;
            if (ov[i].has_asym) e->scheme.asym = ov[i].asym;
        }
        if (e->scheme.group >= e->cols) e->scheme.group = 0; /* one group spans the row */
        if (!e->quantize) continue;
        plan->n_quant++;
        sq_type ty = sq_qtype_of_bits(e->scheme.bits);
        sq_qparams qp = {.group = e->scheme.group ? e->scheme.group : (int32_t)e->cols, .asym = e->scheme.asym};
        if ((st = sq_qscheme_validate(&e->scheme, e->cols)) ||
            (st = sq_qparams_validate(ty, qp, e->cols, e->name))) {
            sq_error_prefix(e->name);
            goto done;
        }
    }
    for (int32_t i = 0; i < n_t; i++)
        if (!hits[i]) {
            st = matches_nothing("--targets", targets[i], cfg);
            goto done;
        }
    for (int32_t i = 0; i < n_o; i++)
        if (!hits[n_t + i]) {
            st = matches_nothing("--override", ov[i].pat.text, cfg);
            goto done;
        }
done:
    for (int32_t i = 0; tp && i < n_t; i++) sq_qpattern_free(&tp[i]);
    for (int32_t i = 0; ip && i < n_i; i++) sq_qpattern_free(&ip[i]);
    for (int32_t i = 0; ov && i < n_o; i++) sq_qoverride_free(&ov[i]);
    free(tp);
    free(ip);
    free(ov);
    free(hits);
    free(ts);
    if (st) sq_qplan_free(plan);
    return st;
}
