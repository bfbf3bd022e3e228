/* recipe.c - parses and validates squish recipes (schema v1, docs/recipes.md) with libyaml's
 * node API. Types come from the schema, not from YAML 1.1 resolution (FORMATS.md 8.3):
 * scalars are read with their style, explicit tags are refused (checked on the event
 * stream, where libyaml still tells an explicit tag from an implied one), duplicate keys
 * and unknown keys are errors, and module patterns compile with squish-quantize's pattern
 * code (quantize/qmodel.h). Errors: "FILE:LINE:COL: key.path: expected ..., got ...". */
#include "recipe.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>
#include <cJSON.h>

#include "../quantize/qmodel.h"
#include "util.h"

#define RECIPE_MAX_BYTES (1u << 20)

typedef struct {
    const char *file;
    char *dir; /* the recipe's directory */
    yaml_document_t *doc;
} rctx;

/* ----- messages ----- */

static sq_status err_mark(const rctx *c, yaml_mark_t m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static sq_status err_mark(const rctx *c, yaml_mark_t m, const char *key, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (key && *key)
        return sq_errorf(SQ_ERR_ARG, "%s:%d:%d: %s: %s", c->file, (int)m.line + 1, (int)m.column + 1, key, msg);
    return sq_errorf(SQ_ERR_ARG, "%s:%d:%d: %s", c->file, (int)m.line + 1, (int)m.column + 1, msg);
}
#define ERR(c, n, key, ...) err_mark(c, (n)->start_mark, key, __VA_ARGS__)

static bool is_plain(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}
static const char *sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* What the user wrote, for "got ...". */
static void describe(const yaml_node_t *n, char *buf, size_t size) {
    if (n->type == YAML_MAPPING_NODE) snprintf(buf, size, "a mapping");
    else if (n->type == YAML_SEQUENCE_NODE) snprintf(buf, size, "a list");
    else if (is_plain(n) && !*sval(n)) snprintf(buf, size, "nothing");
    else if (is_plain(n)) snprintf(buf, size, "%.80s", sval(n));
    else snprintf(buf, size, "the quoted string \"%.80s\"", sval(n));
}

/* YAML 1.1 base-60 integers: 2:4, 1:30:00. */
static bool looks_sexagesimal(const char *s) {
    if (!isdigit((unsigned char)*s)) return false;
    bool colon = false;
    for (; *s; s++) {
        if (*s == ':') colon = true;
        else if (!isdigit((unsigned char)*s)) return false;
    }
    return colon;
}

/* The words YAML 1.1 resolves to booleans (any case here). */
static bool yaml11_bool_word(const char *s) {
    static const char *const w[] = {"y", "n", "yes", "no", "on", "off", "true", "false", NULL};
    for (int i = 0; w[i]; i++)
        if (!strcasecmp(s, w[i])) return true;
    return false;
}

/* An integer with a leading zero (010, -07): octal in YAML 1.1, decimal in YAML 1.2. */
static bool looks_octal(const char *s) {
    if (*s == '-' || *s == '+') s++;
    if (s[0] != '0' || !s[1]) return false;
    if (s[1] == 'o' || s[1] == 'O') return s[2] != 0;
    for (s++; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

/* Digits with _ separators (1_000), hex (0x10) or binary (0b101): numbers in YAML 1.1 only. */
static bool looks_yaml11_number(const char *s) {
    if (*s == '-' || *s == '+') s++;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X' || s[1] == 'b' || s[1] == 'B') && isxdigit((unsigned char)s[2]))
        return true;
    bool digit = false, under = false;
    for (; *s; s++) {
        if (isdigit((unsigned char)*s)) digit = true;
        else if (*s == '_') under = true;
        else if (*s != '.') return false;
    }
    return digit && under;
}

/* A hint for a value YAML 1.1 would have retyped (FORMATS.md 8.3), given what was expected. */
static const char *yaml11_hint(const yaml_node_t *n, const char *what) {
    if (n->type != YAML_SCALAR_NODE) return "";
    const char *s = sval(n);
    if (!is_plain(n)) return strcmp(what, "a string") != 0 ? " (remove the quotes)" : "";
    if (looks_sexagesimal(s))
        return " (YAML 1.1 would read this as a base-60 number; squish reads it as the string it is, which is only "
               "meaningful as a prune pattern)";
    if (yaml11_bool_word(s) && strcmp(what, "true or false") != 0)
        return " (YAML 1.1 reads y/n/yes/no/on/off as booleans; squish takes them as booleans only where true or false "
               "is expected)";
    if (looks_octal(s))
        return " (YAML 1.1 would read a leading 0 as octal; write the decimal number without it)";
    if (looks_yaml11_number(s)) return " (YAML 1.1 number syntax; write plain decimal digits, without _ or 0x/0b)";
    size_t len = strlen(s);
    if (len > 1 && s[len - 1] == '%' && strstr(what, "number"))
        return " (a percentage is accepted by gates.max_ppl_increase only; write a fraction: 50% is 0.5)";
    if (strstr(what, "integer") && strpbrk(s, ".eE") && (isdigit((unsigned char)*s) || *s == '-' || *s == '.')) {
        char *end;
        (void)strtod(s, &end);
        if (!*end) return " (an integer is written with digits only, like 1000)";
    }
    return "";
}

static sq_status expected(const rctx *c, const yaml_node_t *n, const char *key, const char *what) {
    char got[128];
    describe(n, got, sizeof got);
    return ERR(c, n, key, "expected %s, got %s%s", what, got, yaml11_hint(n, what));
}

/* snprintf into a key buffer; long keys are cut (they only label messages) */
static void kfmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void kfmt(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}
/* ----- node access ----- */

static yaml_node_t *node(const rctx *c, int id) { return yaml_document_get_node(c->doc, id); }

/* Checks that n is a mapping whose keys are plain-or-quoted scalars from `allowed` (NULL
 * terminated), each at most once. */
static sq_status check_map(const rctx *c, const yaml_node_t *n, const char *key, const char *const *allowed) {
    if (n->type != YAML_MAPPING_NODE) return expected(c, n, key, "a mapping");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        char path[256];
        if (!k || k->type != YAML_SCALAR_NODE) return ERR(c, k ? k : n, key, "keys must be plain names");
        kfmt(path, sizeof path, "%s%s%s", key && *key ? key : "", key && *key ? "." : "", sval(k));
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, sval(k))) ok = true;
        if (!ok) {
            char list[512] = "";
            for (const char *const *a = allowed; *a; a++) {
                if (a != allowed) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, *a, sizeof list - strlen(list) - 1);
            }
            return ERR(c, k, path, "unknown key (expected one of: %s)", list);
        }
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = node(c, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE && !strcmp(sval(k2), sval(k)))
                return ERR(c, k, path, "duplicate key (first given at line %d)", (int)k2->start_mark.line + 1);
        }
    }
    return SQ_OK;
}

static yaml_node_t *get(const rctx *c, const yaml_node_t *map, const char *name) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp(sval(k), name)) return node(c, p->value);
    }
    return NULL;
}

static void keypath(char *buf, size_t size, const char *parent, const char *name) {
    kfmt(buf, size, "%s%s%s", parent && *parent ? parent : "", parent && *parent ? "." : "", name);
}

static sq_status get_int(const rctx *c, const yaml_node_t *n, const char *key, int64_t lo, int64_t hi, int32_t *out) {
    if (!is_plain(n)) return expected(c, n, key, "an integer");
    const char *s = sval(n);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || !(isdigit((unsigned char)*s) || *s == '-' || *s == '+') || looks_octal(s))
        return expected(c, n, key, "an integer");
    if (v < lo || v > hi) return ERR(c, n, key, "expected an integer from %lld to %lld, got %s", (long long)lo, (long long)hi, s);
    *out = (int32_t)v;
    return SQ_OK;
}

static sq_status get_num(const rctx *c, const yaml_node_t *n, const char *key, double lo, double hi, bool hi_open,
                         double *out) {
    if (!is_plain(n)) return expected(c, n, key, "a number");
    const char *s = sval(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* strtod also takes hex, inf and nan: a number here is decimal digits with an optional
     * fraction and exponent (1e-2 included, which YAML 1.1 would leave a string) */
    bool shape = *s && !*end && !errno && isfinite(v) && !strpbrk(s, "xXnN") && !looks_octal(s);
    if (!shape) return expected(c, n, key, "a number");
    if (v < lo || v > hi || (hi_open && v >= hi))
        return ERR(c, n, key, "expected a number from %g to %g%s, got %s", lo, hi, hi_open ? " (exclusive)" : "", s);
    *out = v;
    return SQ_OK;
}

static sq_status get_bool(const rctx *c, const yaml_node_t *n, const char *key, bool *out) {
    /* YAML 1.1's spellings, any case: what a user writing them means */
    static const char *const yes[] = {"true", "yes", "on", "y", NULL}, *const no[] = {"false", "no", "off", "n", NULL};
    if (is_plain(n)) {
        for (int i = 0; yes[i]; i++)
            if (!strcasecmp(sval(n), yes[i])) return *out = true, SQ_OK;
        for (int i = 0; no[i]; i++)
            if (!strcasecmp(sval(n), no[i])) return *out = false, SQ_OK;
    }
    return expected(c, n, key, "true or false");
}

static sq_status get_str(const rctx *c, const yaml_node_t *n, const char *key, const char **out) {
    if (n->type != YAML_SCALAR_NODE || (is_plain(n) && !*sval(n))) return expected(c, n, key, "a string");
    if (is_plain(n) && (!strcmp(sval(n), "~") || !strcasecmp(sval(n), "null")))
        return expected(c, n, key, "a string");
    *out = sval(n);
    return SQ_OK;
}

static sq_status get_enum(const rctx *c, const yaml_node_t *n, const char *key, const char *const *opts, char *out,
                          size_t size) {
    const char *s;
    char list[256] = "";
    for (const char *const *o = opts; *o; o++) {
        if (o != opts) strncat(list, o[1] ? ", " : " or ", sizeof list - strlen(list) - 1);
        strncat(list, *o, sizeof list - strlen(list) - 1);
    }
    char what[300];
    snprintf(what, sizeof what, "one of %s", list);
    if (n->type != YAML_SCALAR_NODE) return expected(c, n, key, what);
    s = sval(n);
    for (const char *const *o = opts; *o; o++)
        if (!strcmp(s, *o)) {
            snprintf(out, size, "%s", s);
            return SQ_OK;
        }
    return expected(c, n, key, what);
}

/* ----- paths: ${VAR} / ${VAR:-default}, then relative to the recipe ----- */

static sq_status resolve_path(const rctx *c, const yaml_node_t *n, const char *key, char **out) {
    const char *s;
    sq_status st = get_str(c, n, key, &s);
    if (st) return st;
    size_t cap = strlen(s) + 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return sq_errorf(SQ_ERR_OOM, "out of memory");
    bool from_env_first = false;
    for (const char *p = s; *p;) {
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p, '}');
            if (!close) {
                free(buf);
                return ERR(c, n, key, "unterminated ${ in '%s'", s);
            }
            char var[128] = "", def[1024] = "";
            const char *colon = strstr(p, ":-");
            bool has_def = colon && colon < close;
            size_t vlen = (size_t)((has_def ? colon : close) - (p + 2));
            if (vlen == 0 || vlen >= sizeof var) {
                free(buf);
                return ERR(c, n, key, "bad variable in '%s'", s);
            }
            memcpy(var, p + 2, vlen);
            for (size_t i = 0; i < vlen; i++)
                if (!(isalnum((unsigned char)var[i]) || var[i] == '_')) {
                    free(buf);
                    return ERR(c, n, key, "bad variable name '%s' in '%s'", var, s);
                }
            if (has_def) {
                size_t dl = (size_t)(close - (colon + 2));
                if (dl >= sizeof def) dl = sizeof def - 1;
                memcpy(def, colon + 2, dl);
                def[dl] = 0;
            }
            const char *env = getenv(var);
            const char *v = env && *env ? env : has_def ? def : NULL;
            if (!v) {
                free(buf);
                return ERR(c, n, key, "${%s} is not set and has no default (write ${%s:-DEFAULT})", var, var);
            }
            if (p == s && env && *env && env[0] != '/') from_env_first = true;
            size_t vl = strlen(v);
            if (len + vl + 1 > cap) {
                free(buf);
                return ERR(c, n, key, "path too long");
            }
            memcpy(buf + len, v, vl);
            len += vl;
            p = close + 1;
        } else {
            if (len + 2 > cap) {
                free(buf);
                return ERR(c, n, key, "path too long");
            }
            buf[len++] = *p++;
        }
    }
    buf[len] = 0;
    if (buf[0] == '/') {
        *out = buf;
        return SQ_OK;
    }
    /* an environment variable's relative value means the current directory, as in a shell;
     * everything else is relative to the recipe file */
    char cwd[4096];
    const char *base = c->dir;
    if (from_env_first) base = getcwd(cwd, sizeof cwd) ? cwd : ".";
    *out = strcmp(base, ".") ? sq_path_join(base, buf) : sq_strdup(buf);
    free(buf);
    return *out ? SQ_OK : sq_errorf(SQ_ERR_OOM, "out of memory");
}

/* ----- lists of module patterns ----- */

static sq_status check_pattern(const rctx *c, const yaml_node_t *n, const char *key, const char *text) {
    sq_qpattern p;
    memset(&p, 0, sizeof p);
    sq_status st = sq_qpattern_compile(&p, text);
    sq_qpattern_free(&p);
    if (st) return ERR(c, n, key, "%s", sq_last_error());
    return SQ_OK;
}

static sq_status get_patterns(const rctx *c, const yaml_node_t *n, const char *key, char ***out, int32_t *count) {
    if (n->type != YAML_SEQUENCE_NODE) return expected(c, n, key, "a list of module patterns");
    int32_t k = (int32_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = calloc((size_t)k + 1, sizeof *v);
    if (!v) return sq_errorf(SQ_ERR_OOM, "out of memory");
    *out = v;
    *count = 0;
    for (int32_t i = 0; i < k; i++) {
        yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
        const char *s;
        char ik[256];
        kfmt(ik, sizeof ik, "%s[%d]", key, i);
        sq_status st = get_str(c, it, ik, &s);
        if (!st) st = check_pattern(c, it, ik, s);
        if (st) return st;
        if (!(v[i] = sq_strdup(s))) return sq_errorf(SQ_ERR_OOM, "out of memory");
        *count = i + 1;
    }
    return SQ_OK;
}

static sq_status get_group(const rctx *c, const yaml_node_t *n, const char *key, int32_t *out) {
    if (n->type == YAML_SCALAR_NODE && !strcmp(sval(n), "row")) return *out = 0, SQ_OK;
    if (!is_plain(n) || !isdigit((unsigned char)sval(n)[0])) return expected(c, n, key, "a group size (32, 64, 128, ...) or row");
    sq_status st = get_int(c, n, key, 1, 1 << 20, out);
    if (st) return st;
    if (sq_qscheme_check_cli(8, *out, "group") != SQ_OK)
        return ERR(c, n, key, "expected a multiple of 32 (32, 64, 128, ...) or row, got %s", sval(n));
    return SQ_OK;
}

static sq_status get_bits(const rctx *c, const yaml_node_t *n, const char *key, int32_t *out) {
    if (!is_plain(n)) return expected(c, n, key, "one of 8, 6, 5, 4, 3");
    int32_t b;
    if (get_int(c, n, key, INT32_MIN, INT32_MAX, &b) || sq_qtype_of_bits(b) == SQ_TYPE_COUNT)
        return expected(c, n, key, "one of 8, 6, 5, 4, 3");
    *out = b;
    return SQ_OK;
}

/* Optional keys: "if the map has NAME, read it with GETTER into OUT". */
#define OPT_FN(fn, getter, type)                                                                           \
    static sq_status fn(const rctx *c, const yaml_node_t *map, const char *parent, const char *name, type *out) { \
        yaml_node_t *v = get(c, map, name);                                                                \
        char kk[320];                                                                                      \
        if (!v) return SQ_OK;                                                                              \
        keypath(kk, sizeof kk, parent, name);                                                              \
        return getter(c, v, kk, out);                                                                      \
    }
OPT_FN(opt_bool, get_bool, bool)
OPT_FN(opt_bits, get_bits, int32_t)
OPT_FN(opt_group, get_group, int32_t)

/* ----- stages ----- */

static const char *const Q_KEYS[] = {"method", "bits", "group", "symmetric", "sequential", "mse", "grid", "gptq", "awq",
                                     "targets", "ignore", "overrides", NULL};
static const char *const P_KEYS[] = {"method", "sparsity", "pattern", "sequential", "sparsegpt", "bits", "group",
                                     "symmetric", "targets", "ignore", NULL};

static sq_status parse_overrides(const rctx *c, const yaml_node_t *n, const char *key, sq_recipe_stage *s) {
    static const char *const O_KEYS[] = {"match", "bits", "group", "symmetric", "keep", "dtype", NULL};
    static const char *const DTYPES[] = {"f16", "bf16", "f32", NULL};
    if (n->type != YAML_SEQUENCE_NODE) return expected(c, n, key, "a list of {match, bits, group, symmetric, keep}");
    int32_t k = (int32_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    s->overrides = calloc((size_t)k + 1, sizeof *s->overrides);
    if (!s->overrides) return sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int32_t i = 0; i < k; i++) {
        yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
        sq_recipe_override *o = &s->overrides[i];
        char ik[256], kk[300];
        kfmt(ik, sizeof ik, "%s[%d]", key, i);
        o->group = -1;
        o->symmetric = -1;
        s->n_overrides = i + 1;
        sq_status st = check_map(c, it, ik, O_KEYS);
        if (st) return st;
        yaml_node_t *v = get(c, it, "match");
        const char *m;
        if (!v) return ERR(c, it, ik, "expected a 'match' pattern");
        keypath(kk, sizeof kk, ik, "match");
        if ((st = get_str(c, v, kk, &m)) || (st = check_pattern(c, v, kk, m))) return st;
        if (!(o->match = sq_strdup(m))) return sq_errorf(SQ_ERR_OOM, "out of memory");
        if ((st = opt_bool(c, it, ik, "keep", &o->keep))) return st;
        if ((v = get(c, it, "dtype"))) {
            keypath(kk, sizeof kk, ik, "dtype");
            if ((st = get_enum(c, v, kk, DTYPES, o->dtype, sizeof o->dtype))) return st;
            if (get(c, it, "keep") && !o->keep)
                return ERR(c, v, kk, "dtype keeps the tensor in float; it cannot go with keep: false");
            o->keep = true;
        }
        if ((st = opt_bits(c, it, ik, "bits", &o->bits))) return st;
        if ((st = opt_group(c, it, ik, "group", &o->group))) return st;
        if ((v = get(c, it, "symmetric"))) {
            bool b;
            keypath(kk, sizeof kk, ik, "symmetric");
            if ((st = get_bool(c, v, kk, &b))) return st;
            o->symmetric = b;
        }
        if (o->keep && (o->bits || o->group >= 0 || o->symmetric >= 0))
            return ERR(c, it, ik, "keep: true and dtype leave the tensor in float; drop bits/group/symmetric");
        if (!o->keep && !o->bits && o->group < 0 && o->symmetric < 0)
            return ERR(c, it, ik, "expected keep: true, a dtype or at least one of bits, group, symmetric");
    }
    return SQ_OK;
}

static sq_status parse_common_lists(const rctx *c, const yaml_node_t *m, const char *key, sq_recipe_stage *s) {
    char kk[256];
    yaml_node_t *v;
    sq_status st;
    if ((v = get(c, m, "targets"))) {
        keypath(kk, sizeof kk, key, "targets");
        if ((st = get_patterns(c, v, kk, &s->targets, &s->n_targets))) return st;
        if (s->n_targets == 0) return ERR(c, v, kk, "expected at least one pattern (the default is [Linear])");
    }
    if ((v = get(c, m, "ignore"))) {
        keypath(kk, sizeof kk, key, "ignore");
        if ((st = get_patterns(c, v, kk, &s->ignore, &s->n_ignore))) return st;
    }
    return SQ_OK;
}

static sq_status parse_quantize(const rctx *c, const yaml_node_t *m, const char *key, sq_recipe_stage *s) {
    static const char *const METHODS[] = {"rtn", "gptq", "awq", NULL};
    char kk[256];
    yaml_node_t *v;
    sq_status st = check_map(c, m, key, Q_KEYS);
    if (st) return st;
    s->group = 128;
    s->symmetric = true;
    s->damp = 0.01;
    s->block_size = 128;
    s->awq_clip = true;
    s->awq_windows = 16;
    if (!(v = get(c, m, "method"))) return ERR(c, m, key, "expected a 'method' (rtn, gptq or awq)");
    keypath(kk, sizeof kk, key, "method");
    if ((st = get_enum(c, v, kk, METHODS, s->method, sizeof s->method))) return st;
    s->sequential = strcmp(s->method, "rtn") != 0;
    if (!(v = get(c, m, "bits"))) return ERR(c, m, key, "expected 'bits' (8, 6, 5, 4 or 3)");
    keypath(kk, sizeof kk, key, "bits");
    if ((st = get_bits(c, v, kk, &s->bits))) return st;
    if ((st = opt_group(c, m, key, "group", &s->group))) return st;
    if ((st = opt_bool(c, m, key, "symmetric", &s->symmetric))) return st;
    if ((st = opt_bool(c, m, key, "mse", &s->mse))) return st;
    if ((v = get(c, m, "grid"))) {
        static const char *const GRIDS[] = {"gptq", "signed-max", NULL};
        keypath(kk, sizeof kk, key, "grid");
        if ((st = get_enum(c, v, kk, GRIDS, s->grid, sizeof s->grid))) return st;
    }
    if ((v = get(c, m, "sequential"))) {
        keypath(kk, sizeof kk, key, "sequential");
        if ((st = get_bool(c, v, kk, &s->sequential))) return st;
        if (!strcmp(s->method, "rtn") && s->sequential)
            return ERR(c, v, kk, "rtn uses no calibration; sequential applies to gptq and awq only");
    }
    if ((v = get(c, m, "gptq"))) {
        static const char *const G_KEYS[] = {"damp", "block_size", "act_order", NULL};
        keypath(kk, sizeof kk, key, "gptq");
        if (strcmp(s->method, "gptq")) return ERR(c, v, kk, "gptq options given for method %s", s->method);
        if ((st = check_map(c, v, kk, G_KEYS))) return st;
        char k2[300];
        yaml_node_t *w;
        if ((w = get(c, v, "damp")) && (keypath(k2, sizeof k2, kk, "damp"), st = get_num(c, w, k2, 0, 1, false, &s->damp)))
            return st;
        if ((w = get(c, v, "block_size")) &&
            (keypath(k2, sizeof k2, kk, "block_size"), st = get_int(c, w, k2, 1, 65536, &s->block_size)))
            return st;
        if ((w = get(c, v, "act_order")) && (keypath(k2, sizeof k2, kk, "act_order"), st = get_bool(c, w, k2, &s->act_order)))
            return st;
    }
    if ((v = get(c, m, "awq"))) {
        static const char *const A_KEYS[] = {"duo_scaling", "clip", "windows", NULL};
        keypath(kk, sizeof kk, key, "awq");
        if (strcmp(s->method, "awq")) return ERR(c, v, kk, "awq options given for method %s", s->method);
        if ((st = check_map(c, v, kk, A_KEYS))) return st;
        char k2[300];
        yaml_node_t *w;
        if ((w = get(c, v, "duo_scaling")) &&
            (keypath(k2, sizeof k2, kk, "duo_scaling"), st = get_bool(c, w, k2, &s->awq_duo)))
            return st;
        if ((w = get(c, v, "clip")) && (keypath(k2, sizeof k2, kk, "clip"), st = get_bool(c, w, k2, &s->awq_clip)))
            return st;
        if ((w = get(c, v, "windows")) &&
            (keypath(k2, sizeof k2, kk, "windows"), st = get_int(c, w, k2, 1, 1 << 20, &s->awq_windows)))
            return st;
    }
    if ((st = parse_common_lists(c, m, key, s))) return st;
    if ((v = get(c, m, "overrides"))) {
        keypath(kk, sizeof kk, key, "overrides");
        if ((st = parse_overrides(c, v, kk, s))) return st;
    }
    return SQ_OK;
}

/* "2:4" -> n=2, m=4 (1 <= N < M <= 64). */
static bool parse_nm(const char *s, int *n, int *m) {
    char *e1, *e2;
    if (!isdigit((unsigned char)*s)) return false;
    long a = strtol(s, &e1, 10);
    if (*e1 != ':' || !isdigit((unsigned char)e1[1])) return false;
    long b = strtol(e1 + 1, &e2, 10);
    if (*e2 || a < 1 || a >= b || b > 64) return false;
    *n = (int)a;
    *m = (int)b;
    return true;
}

static sq_status parse_prune(const rctx *c, const yaml_node_t *m, const char *key, sq_recipe_stage *s) {
    static const char *const METHODS[] = {"magnitude", "wanda", "sparsegpt", NULL};
    char kk[256];
    yaml_node_t *v;
    sq_status st = check_map(c, m, key, P_KEYS);
    if (st) return st;
    s->sparsity = -1;
    s->group = 128;
    s->symmetric = true;
    s->damp = 0.01;
    s->block_size = 128;
    snprintf(s->pattern, sizeof s->pattern, "unstructured");
    if (!(v = get(c, m, "method"))) return ERR(c, m, key, "expected a 'method' (magnitude, wanda or sparsegpt)");
    keypath(kk, sizeof kk, key, "method");
    if ((st = get_enum(c, v, kk, METHODS, s->method, sizeof s->method))) return st;
    s->sequential = strcmp(s->method, "magnitude") != 0;
    int pn = 0, pm = 0;
    if ((v = get(c, m, "pattern"))) {
        keypath(kk, sizeof kk, key, "pattern");
        /* the mask is always a string: a plain 2:4 is read as written, never as base 60 */
        if (v->type != YAML_SCALAR_NODE ||
            (strcmp(sval(v), "unstructured") && strcmp(sval(v), "ffn") && strcmp(sval(v), "heads") &&
             !parse_nm(sval(v), &pn, &pm)))
            return expected(c, v, kk, "unstructured, ffn, heads or N:M with 1 <= N < M <= 64 (like 2:4)");
        snprintf(s->pattern, sizeof s->pattern, "%s", sval(v));
    }
    if ((v = get(c, m, "sparsity"))) {
        keypath(kk, sizeof kk, key, "sparsity");
        if ((st = get_num(c, v, kk, 0, 1, true, &s->sparsity))) return st;
        if (pm && fabs(s->sparsity - (1.0 - (double)pn / pm)) > 1e-9)
            return ERR(c, v, kk, "pattern %s keeps %d of %d weights, so sparsity is %g; got %s", s->pattern, pn, pm,
                       1.0 - (double)pn / pm, sval(v));
    } else if (!pm) {
        return ERR(c, m, key, "expected 'sparsity' (a fraction from 0 to 1) for pattern %s", s->pattern);
    }
    if ((v = get(c, m, "sequential"))) {
        keypath(kk, sizeof kk, key, "sequential");
        if ((st = get_bool(c, v, kk, &s->sequential))) return st;
        if (!strcmp(s->method, "magnitude") && s->sequential)
            return ERR(c, v, kk, "magnitude uses no calibration; sequential applies to wanda and sparsegpt only");
    }
    if ((v = get(c, m, "sparsegpt"))) {
        static const char *const S_KEYS[] = {"damp", "block_size", NULL};
        keypath(kk, sizeof kk, key, "sparsegpt");
        if (strcmp(s->method, "sparsegpt")) return ERR(c, v, kk, "sparsegpt options given for method %s", s->method);
        if ((st = check_map(c, v, kk, S_KEYS))) return st;
        char k2[300];
        yaml_node_t *w;
        if ((w = get(c, v, "damp")) && (keypath(k2, sizeof k2, kk, "damp"), st = get_num(c, w, k2, 0, 1, false, &s->damp)))
            return st;
        if ((w = get(c, v, "block_size")) &&
            (keypath(k2, sizeof k2, kk, "block_size"), st = get_int(c, w, k2, 1, 65536, &s->block_size)))
            return st;
    }
    if ((v = get(c, m, "bits"))) {
        keypath(kk, sizeof kk, key, "bits");
        if ((st = get_bits(c, v, kk, &s->bits))) return st;
        if (strcmp(s->method, "sparsegpt"))
            return ERR(c, v, kk, "joint quantization (bits) needs method sparsegpt, got %s", s->method);
        if (!strcmp(s->pattern, "ffn") || !strcmp(s->pattern, "heads"))
            return ERR(c, v, kk, "joint quantization (bits) works with unstructured or N:M patterns, not %s", s->pattern);
    }
    if ((v = get(c, m, "group"))) {
        keypath(kk, sizeof kk, key, "group");
        if (!s->bits) return ERR(c, v, kk, "group applies with bits (joint quantization) only");
        if ((st = get_group(c, v, kk, &s->group))) return st;
    }
    if ((v = get(c, m, "symmetric"))) {
        keypath(kk, sizeof kk, key, "symmetric");
        if (!s->bits) return ERR(c, v, kk, "symmetric applies with bits (joint quantization) only");
        if ((st = get_bool(c, v, kk, &s->symmetric))) return st;
    }
    return parse_common_lists(c, m, key, s);
}

bool sq_recipe_stage_needs_calib(const sq_recipe_stage *s) {
    return strcmp(s->method, "rtn") != 0 && strcmp(s->method, "magnitude") != 0;
}

/* ----- sections ----- */

static sq_status parse_calibration(const rctx *c, const yaml_node_t *m, sq_recipe *r) {
    static const char *const C_KEYS[] = {"data", "samples", "seq_len", "seed", NULL};
    static const char *const D_KEYS[] = {"path", "format", "field", NULL};
    sq_status st = check_map(c, m, "calibration", C_KEYS);
    if (st) return st;
    r->has_calib = true;
    r->calib_samples = 128;
    snprintf(r->calib_format, sizeof r->calib_format, "text");
    yaml_node_t *v = get(c, m, "data");
    if (!v) return ERR(c, m, "calibration", "expected 'data' (a text file, or {path, format, field})");
    if (v->type == YAML_MAPPING_NODE) {
        static const char *const FORMATS[] = {"text", "jsonl", NULL};
        if ((st = check_map(c, v, "calibration.data", D_KEYS))) return st;
        yaml_node_t *w = get(c, v, "path");
        if (!w) return ERR(c, v, "calibration.data", "expected 'path'");
        if ((st = resolve_path(c, w, "calibration.data.path", &r->calib_data))) return st;
        if (sq_str_ends_with(r->calib_data, ".jsonl")) snprintf(r->calib_format, sizeof r->calib_format, "jsonl");
        if ((w = get(c, v, "format")) &&
            (st = get_enum(c, w, "calibration.data.format", FORMATS, r->calib_format, sizeof r->calib_format)))
            return st;
        if ((w = get(c, v, "field"))) {
            const char *f;
            if ((st = get_str(c, w, "calibration.data.field", &f))) return st;
            if (strcmp(r->calib_format, "jsonl"))
                return ERR(c, w, "calibration.data.field", "field applies to format jsonl only");
            if (!(r->calib_field = sq_strdup(f))) return sq_errorf(SQ_ERR_OOM, "out of memory");
        }
    } else {
        if ((st = resolve_path(c, v, "calibration.data", &r->calib_data))) return st;
        if (sq_str_ends_with(r->calib_data, ".jsonl")) snprintf(r->calib_format, sizeof r->calib_format, "jsonl");
    }
    if ((v = get(c, m, "samples")) && (st = get_int(c, v, "calibration.samples", 1, 1 << 20, &r->calib_samples)))
        return st;
    if ((v = get(c, m, "seq_len")) && (st = get_int(c, v, "calibration.seq_len", 2, 1 << 20, &r->calib_seq_len)))
        return st;
    if ((v = get(c, m, "seed")) && (st = get_int(c, v, "calibration.seed", 0, INT32_MAX, &r->calib_seed))) return st;
    return SQ_OK;
}

static sq_status parse_evaluation(const rctx *c, const yaml_node_t *m, sq_recipe *r) {
    static const char *const E_KEYS[] = {"texts", "kld", "decode_tokens", NULL};
    static const char *const T_KEYS[] = {"path", "protocol", "ctx", "chunks", NULL};
    static const char *const PROTOS[] = {"llamacpp", "gptq", NULL};
    sq_status st = check_map(c, m, "evaluation", E_KEYS);
    if (st) return st;
    yaml_node_t *v;
    if ((v = get(c, m, "kld")) && (st = get_bool(c, v, "evaluation.kld", &r->kld))) return st;
    if ((v = get(c, m, "decode_tokens")) && (st = get_int(c, v, "evaluation.decode_tokens", 0, 1 << 16, &r->decode_tokens)))
        return st;
    if (!(v = get(c, m, "texts"))) return SQ_OK;
    if (v->type != YAML_SEQUENCE_NODE) return expected(c, v, "evaluation.texts", "a list of {path, protocol, ctx, chunks}");
    int32_t k = (int32_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    r->texts = calloc((size_t)k + 1, sizeof *r->texts);
    if (!r->texts) return sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int32_t i = 0; i < k; i++) {
        yaml_node_t *it = node(c, v->data.sequence.items.start[i]), *w;
        sq_recipe_text *t = &r->texts[i];
        char ik[64], kk[96];
        kfmt(ik, sizeof ik, "evaluation.texts[%d]", i);
        r->n_texts = i + 1;
        snprintf(t->protocol, sizeof t->protocol, "llamacpp");
        if (it->type == YAML_SCALAR_NODE) {
            if ((st = resolve_path(c, it, ik, &t->path))) return st;
            continue;
        }
        if ((st = check_map(c, it, ik, T_KEYS))) return st;
        if (!(w = get(c, it, "path"))) return ERR(c, it, ik, "expected 'path'");
        keypath(kk, sizeof kk, ik, "path");
        if ((st = resolve_path(c, w, kk, &t->path))) return st;
        keypath(kk, sizeof kk, ik, "protocol");
        if ((w = get(c, it, "protocol")) && (st = get_enum(c, w, kk, PROTOS, t->protocol, sizeof t->protocol))) return st;
        keypath(kk, sizeof kk, ik, "ctx");
        if ((w = get(c, it, "ctx")) && (st = get_int(c, w, kk, 4, 1 << 20, &t->ctx))) return st;
        keypath(kk, sizeof kk, ik, "chunks");
        if ((w = get(c, it, "chunks")) && (st = get_int(c, w, kk, 1, INT32_MAX, &t->chunks))) return st;
    }
    return SQ_OK;
}

static sq_status parse_root(rctx *c, yaml_node_t *root, sq_recipe *r) {
    static const char *const R_KEYS[] = {"version", "name", "model", "calibration", "stages", "evaluation", "outputs",
                                         "gates", NULL};
    sq_status st;
    yaml_node_t *v;
    r->kld = true;
    r->decode_tokens = 64;
    r->out_runnable = r->out_store = true;
    if (!root) return err_mark(c, (yaml_mark_t){0}, NULL, "empty recipe (expected a mapping with version: 1)");
    if ((st = check_map(c, root, "", R_KEYS))) return st;
    if (!(v = get(c, root, "version"))) return ERR(c, root, "version", "missing (expected version: 1)");
    if ((st = get_int(c, v, "version", 1, SQ_RECIPE_VERSION, &r->version))) return st;
    if ((v = get(c, root, "name"))) {
        const char *s;
        if ((st = get_str(c, v, "name", &s))) return st;
        for (const char *p = s; *p; p++)
            if (!(isalnum((unsigned char)*p) || strchr("._+-", *p)))
                return ERR(c, v, "name", "expected letters, digits and . _ + - only (it names the run directory), got %s", s);
        r->name = sq_strdup(s);
    } else {
        const char *b = strrchr(c->file, '/');
        b = b ? b + 1 : c->file;
        r->name = sq_strdup(b);
        if (r->name) {
            char *dot = strrchr(r->name, '.');
            if (dot && dot != r->name) *dot = 0;
        }
    }
    if (!r->name) return sq_errorf(SQ_ERR_OOM, "out of memory");
    if (!(v = get(c, root, "model"))) return ERR(c, root, "model", "missing (a model store, HF directory, .bin, .gguf)");
    if ((st = resolve_path(c, v, "model", &r->model))) return st;
    if ((v = get(c, root, "calibration")) && (st = parse_calibration(c, v, r))) return st;
    if (!(v = get(c, root, "stages"))) return ERR(c, root, "stages", "missing (a list of prune:/quantize: stages; [] for none)");
    if (v->type != YAML_SEQUENCE_NODE) return expected(c, v, "stages", "a list of prune:/quantize: stages");
    int32_t k = (int32_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    r->stages = calloc((size_t)k + 1, sizeof *r->stages);
    if (!r->stages) return sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int32_t i = 0; i < k; i++) {
        yaml_node_t *it = node(c, v->data.sequence.items.start[i]);
        sq_recipe_stage *s = &r->stages[i];
        char ik[64], kk[96];
        kfmt(ik, sizeof ik, "stages[%d]", i);
        r->n_stages = i + 1;
        s->line = (int)it->start_mark.line + 1;
        s->col = (int)it->start_mark.column + 1;
        if (it->type != YAML_MAPPING_NODE || it->data.mapping.pairs.top - it->data.mapping.pairs.start != 1)
            return expected(c, it, ik, "a mapping with one key, prune: or quantize:");
        static const char *const S_KEYS[] = {"quantize", "prune", NULL};
        if ((st = check_map(c, it, ik, S_KEYS))) return st;
        yaml_node_t *body;
        if ((body = get(c, it, "quantize"))) {
            s->kind = SQ_STAGE_QUANTIZE;
            keypath(kk, sizeof kk, ik, "quantize");
            st = parse_quantize(c, body, kk, s);
        } else {
            body = get(c, it, "prune");
            s->kind = SQ_STAGE_PRUNE;
            keypath(kk, sizeof kk, ik, "prune");
            st = parse_prune(c, body, kk, s);
        }
        if (st) return st;
        if (sq_recipe_stage_needs_calib(s) && !r->has_calib)
            return ERR(c, body, kk, "method %s needs calibration data: add a calibration: section", s->method);
        /* GPTQ updates the weights it has not rounded yet, pruned zeros included: after an
         * unstructured or N:M prune stage the zeros would silently come back */
        for (int32_t j = 0; j < i && s->kind == SQ_STAGE_QUANTIZE && !strcmp(s->method, "gptq"); j++) {
            const sq_recipe_stage *p = &r->stages[j];
            if (p->kind == SQ_STAGE_PRUNE && strcmp(p->pattern, "ffn") && strcmp(p->pattern, "heads"))
                return ERR(c, body, kk,
                           "gptq after the %s prune of stages[%d] would fill the pruned weights back in (GPTQ updates "
                           "the weights it has not rounded yet); quantize in the prune stage instead (method sparsegpt "
                           "with bits:), or use rtn, which rounds zeros to zeros",
                           p->pattern, j);
        }
    }
    if ((v = get(c, root, "evaluation")) && (st = parse_evaluation(c, v, r))) return st;
    if ((v = get(c, root, "outputs"))) {
        static const char *const O_KEYS[] = {"runnable", "store", "gguf", "act_int8", NULL};
        yaml_node_t *w;
        if ((st = check_map(c, v, "outputs", O_KEYS))) return st;
        if ((w = get(c, v, "runnable")) && (st = get_bool(c, w, "outputs.runnable", &r->out_runnable))) return st;
        if ((w = get(c, v, "store")) && (st = get_bool(c, w, "outputs.store", &r->out_store))) return st;
        if ((w = get(c, v, "gguf")) && (st = get_bool(c, w, "outputs.gguf", &r->out_gguf))) return st;
        if ((w = get(c, v, "act_int8")) && (st = get_bool(c, w, "outputs.act_int8", &r->out_act_int8))) return st;
        if (r->out_act_int8 && !r->out_runnable && r->n_texts == 0 && r->decode_tokens == 0)
            return ERR(c, w, "outputs.act_int8",
                       "no runnable file is made (outputs.runnable is false, nothing is evaluated or decoded)");
    }
    if ((v = get(c, root, "gates"))) {
        static const char *const G_KEYS[] = {"max_ppl_increase", "max_kld", NULL};
        yaml_node_t *w;
        if ((st = check_map(c, v, "gates", G_KEYS))) return st;
        if ((w = get(c, v, "max_ppl_increase"))) {
            if (w->type != YAML_SCALAR_NODE || !sq_parse_fraction(sval(w), &r->max_ppl_increase) ||
                (!is_plain(w) && !strchr(sval(w), '%')))
                return expected(c, w, "gates.max_ppl_increase", "a percentage like 2% or a fraction like 0.02");
            r->has_max_ppl_increase = true;
        }
        if ((w = get(c, v, "max_kld"))) {
            if ((st = get_num(c, w, "gates.max_kld", 0, 1e9, false, &r->max_kld))) return st;
            r->has_max_kld = true;
        }
        if ((r->has_max_ppl_increase || r->has_max_kld) && r->n_texts == 0)
            return ERR(c, v, "gates", "gates need evaluation.texts to measure against");
        if (r->has_max_kld && !r->kld) return ERR(c, v, "gates.max_kld", "needs evaluation.kld: true");
    }
    return SQ_OK;
}

bool sq_parse_fraction(const char *s, double *out) {
    char *end;
    if (!*s || !(isdigit((unsigned char)*s) || *s == '.')) return false;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !isfinite(v) || v < 0 || strpbrk(s, "xXnN")) return false;
    if (*end == '%' && !end[1]) v /= 100;
    else if (*end) return false;
    *out = v;
    return true;
}

/* Explicit tags are refused: libyaml's node API would hide whether a tag was written, so
 * one pass over the events finds them first (and reports libyaml's own syntax errors). */
static sq_status scan_events(const rctx *c, const char *text, size_t len) {
    yaml_parser_t p;
    yaml_event_t e;
    if (!yaml_parser_initialize(&p)) return sq_errorf(SQ_ERR_OOM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    sq_status st = SQ_OK;
    int docs = 0;
    for (;;) {
        if (!yaml_parser_parse(&p, &e)) {
            st = err_mark(c, p.problem_mark, NULL, "YAML syntax error: %s%s%s", p.problem ? p.problem : "?",
                          p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        const yaml_char_t *tag = NULL;
        if (e.type == YAML_SCALAR_EVENT) tag = e.data.scalar.tag;
        else if (e.type == YAML_SEQUENCE_START_EVENT) tag = e.data.sequence_start.tag;
        else if (e.type == YAML_MAPPING_START_EVENT) tag = e.data.mapping_start.tag;
        if (e.type == YAML_DOCUMENT_START_EVENT) docs++;
        if (tag && !(e.type == YAML_SCALAR_EVENT && !strcmp((const char *)tag, "!"))) {
            st = err_mark(c, e.start_mark, NULL, "YAML tags (%s) are not allowed: squish types values by the schema",
                          (const char *)tag);
        } else if (docs > 1) {
            st = err_mark(c, e.start_mark, NULL, "more than one YAML document in a recipe");
        }
        yaml_event_type_t t = e.type;
        yaml_event_delete(&e);
        if (st || t == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&p);
    return st;
}

sq_status sq_recipe_parse(const char *text, size_t len, const char *file, sq_recipe *r) {
    memset(r, 0, sizeof *r);
    rctx c = {.file = file};
    if (!(c.dir = sq_path_dirname(file)) || !(r->file = sq_strdup(file))) {
        free(c.dir);
        sq_recipe_free(r);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    sq_status st = scan_events(&c, text, len);
    yaml_parser_t p;
    yaml_document_t doc;
    bool have_doc = false;
    if (!st) {
        if (!yaml_parser_initialize(&p)) {
            st = sq_errorf(SQ_ERR_OOM, "out of memory");
        } else {
            yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
            if (!yaml_parser_load(&p, &doc))
                st = err_mark(&c, p.problem_mark, NULL, "YAML error: %s", p.problem ? p.problem : "?");
            else
                have_doc = true;
            yaml_parser_delete(&p);
        }
    }
    if (!st) {
        c.doc = &doc;
        st = parse_root(&c, yaml_document_get_root_node(&doc), r);
    }
    if (have_doc) yaml_document_delete(&doc);
    free(c.dir);
    if (st) {
        char *msg = sq_strdup(sq_last_error());
        sq_recipe_free(r);
        sq_errorf(st, "%s", msg ? msg : "recipe error");
        free(msg);
    }
    return st;
}

sq_status sq_recipe_load(const char *path, sq_recipe *r) {
    char *text = NULL;
    size_t len = 0;
    memset(r, 0, sizeof *r);
    sq_status st = sq_read_file(path, RECIPE_MAX_BYTES, &text, &len);
    if (st) return st;
    st = sq_recipe_parse(text, len, path, r);
    free(text);
    return st;
}

static void free_list(char **v, int32_t n) {
    if (!v) return;
    for (int32_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void sq_recipe_free(sq_recipe *r) {
    if (!r) return;
    free(r->file);
    free(r->name);
    free(r->model);
    free(r->calib_data);
    free(r->calib_field);
    for (int32_t i = 0; i < r->n_stages; i++) {
        sq_recipe_stage *s = &r->stages[i];
        free_list(s->targets, s->n_targets);
        free_list(s->ignore, s->n_ignore);
        for (int32_t j = 0; j < s->n_overrides; j++) free(s->overrides[j].match);
        free(s->overrides);
    }
    free(r->stages);
    for (int32_t i = 0; i < r->n_texts; i++) free(r->texts[i].path);
    free(r->texts);
    memset(r, 0, sizeof *r);
}

/* ----- the resolved recipe ----- */

static cJSON *str_array(char **v, int32_t n, const char *dflt) {
    cJSON *a = cJSON_CreateArray();
    if (!n && dflt) cJSON_AddItemToArray(a, cJSON_CreateString(dflt));
    for (int32_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static void add_group(cJSON *o, const char *k, int32_t g) {
    if (g == 0) cJSON_AddStringToObject(o, k, "row");
    else cJSON_AddNumberToObject(o, k, g);
}

char *sq_recipe_to_json(const sq_recipe *r) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "version", r->version);
    cJSON_AddStringToObject(j, "name", r->name);
    cJSON_AddStringToObject(j, "model", r->model);
    if (r->has_calib) {
        cJSON *c = cJSON_AddObjectToObject(j, "calibration");
        cJSON *d = cJSON_AddObjectToObject(c, "data");
        cJSON_AddStringToObject(d, "path", r->calib_data);
        cJSON_AddStringToObject(d, "format", r->calib_format);
        if (r->calib_field) cJSON_AddStringToObject(d, "field", r->calib_field);
        cJSON_AddNumberToObject(c, "samples", r->calib_samples);
        if (r->calib_seq_len) cJSON_AddNumberToObject(c, "seq_len", r->calib_seq_len);
        else cJSON_AddStringToObject(c, "seq_len", "default");
        cJSON_AddNumberToObject(c, "seed", r->calib_seed);
    }
    cJSON *st = cJSON_AddArrayToObject(j, "stages");
    for (int32_t i = 0; i < r->n_stages; i++) {
        const sq_recipe_stage *s = &r->stages[i];
        cJSON *w = cJSON_CreateObject(), *b = cJSON_CreateObject();
        cJSON_AddItemToObject(w, s->kind == SQ_STAGE_QUANTIZE ? "quantize" : "prune", b);
        cJSON_AddItemToArray(st, w);
        cJSON_AddStringToObject(b, "method", s->method);
        if (s->kind == SQ_STAGE_PRUNE) {
            cJSON_AddStringToObject(b, "pattern", s->pattern);
            if (s->sparsity >= 0) cJSON_AddNumberToObject(b, "sparsity", s->sparsity);
            else cJSON_AddStringToObject(b, "sparsity", "implied by pattern");
        }
        if (s->kind == SQ_STAGE_QUANTIZE || s->bits) {
            cJSON_AddNumberToObject(b, "bits", s->bits);
            add_group(b, "group", s->group);
            cJSON_AddBoolToObject(b, "symmetric", s->symmetric);
        }
        if (s->kind == SQ_STAGE_QUANTIZE) cJSON_AddBoolToObject(b, "mse", s->mse);
        if (s->kind == SQ_STAGE_QUANTIZE && s->grid[0]) cJSON_AddStringToObject(b, "grid", s->grid);
        if (sq_recipe_stage_needs_calib(s)) cJSON_AddBoolToObject(b, "sequential", s->sequential);
        if (!strcmp(s->method, "gptq") || !strcmp(s->method, "sparsegpt")) {
            cJSON *g = cJSON_AddObjectToObject(b, s->method);
            cJSON_AddNumberToObject(g, "damp", s->damp);
            cJSON_AddNumberToObject(g, "block_size", s->block_size);
            if (!strcmp(s->method, "gptq")) cJSON_AddBoolToObject(g, "act_order", s->act_order);
        }
        if (!strcmp(s->method, "awq")) {
            cJSON *a = cJSON_AddObjectToObject(b, "awq");
            cJSON_AddBoolToObject(a, "duo_scaling", s->awq_duo);
            cJSON_AddBoolToObject(a, "clip", s->awq_clip);
            cJSON_AddNumberToObject(a, "windows", s->awq_windows);
        }
        cJSON_AddItemToObject(b, "targets", str_array(s->targets, s->n_targets, "Linear"));
        cJSON_AddItemToObject(b, "ignore", str_array(s->ignore, s->n_ignore, NULL));
        if (s->kind == SQ_STAGE_QUANTIZE) {
            cJSON *ov = cJSON_AddArrayToObject(b, "overrides");
            for (int32_t k = 0; k < s->n_overrides; k++) {
                const sq_recipe_override *o = &s->overrides[k];
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "match", o->match);
                if (o->keep) cJSON_AddBoolToObject(x, "keep", true);
                if (o->dtype[0]) cJSON_AddStringToObject(x, "dtype", o->dtype);
                if (o->bits) cJSON_AddNumberToObject(x, "bits", o->bits);
                if (o->group >= 0) add_group(x, "group", o->group);
                if (o->symmetric >= 0) cJSON_AddBoolToObject(x, "symmetric", o->symmetric);
                cJSON_AddItemToArray(ov, x);
            }
        }
    }
    cJSON *e = cJSON_AddObjectToObject(j, "evaluation");
    cJSON *t = cJSON_AddArrayToObject(e, "texts");
    for (int32_t i = 0; i < r->n_texts; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "path", r->texts[i].path);
        cJSON_AddStringToObject(x, "protocol", r->texts[i].protocol);
        if (r->texts[i].ctx) cJSON_AddNumberToObject(x, "ctx", r->texts[i].ctx);
        else cJSON_AddStringToObject(x, "ctx", "default");
        if (r->texts[i].chunks) cJSON_AddNumberToObject(x, "chunks", r->texts[i].chunks);
        else cJSON_AddStringToObject(x, "chunks", "all");
        cJSON_AddItemToArray(t, x);
    }
    cJSON_AddBoolToObject(e, "kld", r->kld);
    cJSON_AddNumberToObject(e, "decode_tokens", r->decode_tokens);
    cJSON *o = cJSON_AddObjectToObject(j, "outputs");
    cJSON_AddBoolToObject(o, "runnable", r->out_runnable);
    cJSON_AddBoolToObject(o, "store", r->out_store);
    cJSON_AddBoolToObject(o, "gguf", r->out_gguf);
    cJSON_AddBoolToObject(o, "act_int8", r->out_act_int8);
    cJSON *g = cJSON_AddObjectToObject(j, "gates");
    if (r->has_max_ppl_increase) cJSON_AddNumberToObject(g, "max_ppl_increase", r->max_ppl_increase);
    if (r->has_max_kld) cJSON_AddNumberToObject(g, "max_kld", r->max_kld);
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    return out;
}
