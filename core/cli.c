/* cli.c - front-end code the toolchain's tools share (core/cli.h): the options, input
 * checks, progress lines, JSON pieces and store provenance that squish-quantize and
 * squish-prune (and, for the provenance, squish-convert) had each written for themselves.
 * No paper behind it; the messages and bytes are the ones the tools' CLI tests check.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calib_seq.h"
#include "util.h"

/* ===== Options ===== */

sq_status sq_qscheme_check_cli(int32_t bits, int32_t group, const char *what) {
    if (sq_qtype_of_bits(bits) == SQ_TYPE_COUNT)
        return sq_errorf(SQ_ERR_ARG, "%s: %d-bit quantization is not supported (use 8, 6, 5, 4 or 3)", what, bits);
    if (group < 0 || (group > 0 && group % 32 != 0))
        return sq_errorf(SQ_ERR_ARG,
                         "%s: group size %d is not possible: groups are a multiple of 32 weights (32, 64, 128, ...) or "
                         "'row' (one group per row)",
                         what, group);
    return SQ_OK;
}

void sq_wtool_opts_init(sq_wtool_opts *o) {
    memset(o, 0, sizeof *o);
    o->group = 128;
}

sq_status sq_cli_add_pattern(const char **list, int32_t *n, const char *opt, const char *v) {
    if (*n >= SQ_CLI_MAX_PATTERNS) return sq_errorf(SQ_ERR_ARG, "%s: more than %d patterns", opt, SQ_CLI_MAX_PATTERNS);
    if (!*v) return sq_errorf(SQ_ERR_ARG, "%s: empty pattern", opt);
    list[(*n)++] = v;
    return SQ_OK;
}

sq_status sq_wtool_opt(int argc, char **argv, int *i, sq_wtool_opts *o, const char *tool) {
    const char *a = argv[*i], *v;
    int64_t x;
    double f;
    sq_status st = SQ_OK;
#define VAL() \
    if (!(v = sq_cli_value(argc, argv, i))) return SQ_ERR_ARG;
    if (sq_cli_is(a, "-o", "--output")) {
        VAL();
        o->out = v;
    } else if (sq_cli_is(a, NULL, "--calib")) {
        VAL();
        o->calib = v;
    } else if (sq_cli_is(a, NULL, "--calib-data")) {
        VAL();
        o->calib_data = v;
    } else if (sq_cli_is(a, NULL, "--targets") || sq_cli_is(a, NULL, "--target")) {
        VAL();
        st = sq_cli_add_pattern(o->targets, &o->n_targets, "--targets", v);
    } else if (sq_cli_is(a, NULL, "--ignore")) {
        VAL();
        st = sq_cli_add_pattern(o->ignore, &o->n_ignore, "--ignore", v);
    } else if (sq_cli_is(a, NULL, "--no-sequential")) {
        o->no_seq = true;
    } else if (sq_cli_is(a, NULL, "--damp")) {
        VAL();
        if ((st = sq_cli_float(a, v, 0.0, 10.0, &f)) == SQ_OK) o->damp = f;
        o->set_damp = true;
    } else if (sq_cli_is(a, NULL, "--block-size")) {
        VAL();
        if ((st = sq_cli_int(a, v, 1, 1 << 20, &x)) == SQ_OK) o->block_size = (int32_t)x;
        o->set_block = true;
    } else if (sq_cli_is(a, NULL, "--bits")) {
        VAL();
        if ((st = sq_cli_int(a, v, 1, 64, &x)) == SQ_OK) {
            o->bits = (int32_t)x;
            st = sq_qscheme_check_cli(o->bits, 0, "--bits");
        }
    } else if (sq_cli_is(a, NULL, "--group")) {
        VAL();
        o->set_group = true;
        if (!strcmp(v, "row")) {
            o->group = 0;
        } else if ((st = sq_cli_int(a, v, 1, 1 << 30, &x)) == SQ_OK) {
            o->group = (int32_t)x;
            st = sq_qscheme_check_cli(8, o->group, "--group");
        }
    } else if (sq_cli_is(a, NULL, "--asym") || sq_cli_is(a, NULL, "--sym")) {
        o->asym = !strcmp(a, "--asym");
        o->set_asym = true;
    } else if (!sq_cli_common_opt(argc, argv, i, SQ_CLI_THREADS | SQ_CLI_JSON | SQ_CLI_TOKENIZER | SQ_CLI_QUIET,
                                  &o->cli, &st)) {
        st = sq_cli_positional(a, &o->model, tool, " (one model at a time)");
    }
#undef VAL
    return st;
}

sq_status sq_wtool_check(const sq_wtool_opts *o, const char *tool) {
    if (!o->model) return sq_errorf(SQ_ERR_ARG, "no model given (see %s --help)", tool);
    if (!o->out) return sq_errorf(SQ_ERR_ARG, "no output given: add -o OUT.h5");
    if (!sq_str_ends_with(o->out, ".h5") && !sq_str_ends_with(o->out, ".hdf5"))
        return sq_errorf(SQ_ERR_ARG, "the output is a model store: '%s' should end in .h5 (then squish-convert export "
                                     "it)", o->out);
    return SQ_OK;
}

/* ===== Inputs ===== */

sq_status sq_wtool_load(const sq_wtool_opts *o, const char *advice, sq_wtool_run *w) {
    sq_checkpoint *c = &w->c;
    sq_status st;
    if ((st = sq_check_out_path(o->out, "output")) || (o->cli.json && (st = sq_check_out_path(o->cli.json, "--json"))))
        return st;
    if (!sq_file_exists(o->model)) return sq_errorf(SQ_ERR_IO, "%s: no such file or directory", o->model);
    if (o->calib && (!sq_file_exists(o->calib) || sq_is_dir(o->calib)))
        return sq_errorf(SQ_ERR_IO, "%s: no such file (--calib)", o->calib);
    if ((st = sq_import_any(o->model, o->cli.tokenizer, c))) return st;
    for (int32_t i = 0; i < c->n_tensors; i++)
        if (sq_type_is_quant(c->tensors[i].type))
            return sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' is already %s; %s", o->model, c->tensors[i].name,
                             sq_type_name(c->tensors[i].type), advice);
    return SQ_OK;
}

sq_status sq_wtool_calib(const sq_wtool_opts *o, sq_wtool_run *w) {
    sq_status st;
    if ((st = sq_calib_model_sha256(o->model, &w->c, w->model_sha)) || !o->calib) return st;
    if ((st = sq_calib_read(o->calib, &w->cal))) return st;
    if ((st = sq_calib_check_model(&w->cal, w->model_sha))) {
        sq_error_prefix(o->calib);
        return st;
    }
    if ((st = sq_calib_check_config(&w->cal, &w->c.cfg))) return st;
    return sq_sha256_file(o->calib, w->calib_sha, NULL);
}

sq_status sq_wtool_data(const sq_wtool_opts *o, sq_wtool_run *w) {
    sq_status st = sq_tokenizer_init(&w->tok, &w->c.vocab);
    if (st) return st;
    const bool add_bos = w->c.vocab.add_bos && w->c.vocab.bos_id >= 0;
    return sq_calib_data_reload(&w->cal, o->calib, o->calib_data, w->tok, add_bos, &w->data);
}

void sq_wtool_run_free(sq_wtool_run *w) {
    sq_progress_free(&w->prog);
    sq_tokenizer_free(w->tok);
    w->tok = NULL;
    sq_calib_data_free(&w->data);
    sq_calib_free(&w->cal);
    sq_checkpoint_free(&w->c);
}

/* Records an input file whose SHA-256 is already known. */
static sq_status add_source(sq_checkpoint *c, const char *path, const char *sha) {
    sq_source_file *p = realloc(c->sources, ((size_t)c->n_sources + 1) * sizeof *p);
    if (!p) return sq_errorf(SQ_ERR_OOM, "out of memory");
    c->sources = p;
    sq_source_file *f = &c->sources[c->n_sources];
    memset(f, 0, sizeof *f);
    if (!(f->path = sq_strdup(path))) return sq_errorf(SQ_ERR_OOM, "out of memory");
    snprintf(f->sha256, sizeof f->sha256, "%s", sha);
    f->size = sq_file_bytes(path);
    c->n_sources++;
    return SQ_OK;
}

sq_status sq_checkpoint_set_made_by(sq_checkpoint *c, const char *label, const char *tool, int argc, char **argv) {
    free(c->tool_version);
    free(c->command_line);
    c->tool_version = sq_strdup(label);
    c->command_line = sq_command_line(tool, argc, argv);
    return c->tool_version && c->command_line ? SQ_OK : sq_errorf(SQ_ERR_OOM, "out of memory");
}

sq_status sq_wtool_provenance(sq_wtool_run *w, const sq_wtool_opts *o, const char *tool, int argc, char **argv) {
    char label[64];
    snprintf(label, sizeof label, "squish %s", sq_version());
    sq_status st = sq_checkpoint_set_made_by(&w->c, label, tool, argc, argv);
    if (!st && !sq_is_dir(o->model) && sq_store_is_hdf5(o->model)) st = add_source(&w->c, o->model, w->model_sha);
    if (!st && o->calib) st = add_source(&w->c, o->calib, w->calib_sha);
    return st;
}

uint64_t sq_file_bytes(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* ===== Progress ===== */

void *sq_progress_next(sq_progress *p, size_t size) {
    if (p->n_t == p->cap_t) {
        int32_t cap = p->cap_t ? p->cap_t * 2 : 64;
        void *t = realloc(p->t, (size_t)cap * size);
        if (!t) {
            p->oom = true;
            return NULL;
        }
        p->t = t;
        p->cap_t = cap;
    }
    return (char *)p->t + (size_t)p->n_t++ * size;
}

void sq_progress_block(void *user, const sq_block_report *r) {
    sq_progress *p = user;
    if (p->n_l == p->cap_l) {
        int32_t cap = p->cap_l ? p->cap_l * 2 : 16;
        sq_block_report *l = realloc(p->l, (size_t)cap * sizeof *l);
        if (!l) {
            p->oom = true;
            return;
        }
        p->l = l;
        p->cap_l = cap;
    }
    p->l[p->n_l++] = *r;
    if (!p->quiet)
        fprintf(stderr, "[layer %d/%d] block output error %.2e (%.2e of the block's update) on %lld tokens, %.2f s\n",
                r->layer + 1, r->n_layers, r->mse, r->rel, (long long)r->n_tokens, r->seconds);
}

void sq_progress_free(sq_progress *p) {
    free(p->t);
    free(p->l);
    p->t = NULL;
    p->l = NULL;
    p->n_t = p->cap_t = p->n_l = p->cap_l = 0;
}

/* ===== JSON ===== */

void sq_json_tool_head(FILE *fp, const char *tool, const char *model, const char *model_sha, const char *out) {
    fprintf(fp, "{\n  \"tool\": \"%s %s\",\n  \"model\": ", tool, sq_version());
    sq_json_string(fp, model, strlen(model));
    fprintf(fp, ",\n  \"model_sha256\": \"%s\",\n  \"output\": ", model_sha);
    sq_json_string(fp, out, strlen(out));
}

void sq_json_string_or_null(FILE *fp, const char *s) {
    if (s) sq_json_string(fp, s, strlen(s));
    else fprintf(fp, "null");
}

void sq_json_blocks(FILE *fp, const sq_progress *p) {
    fprintf(fp, "  \"layers\": [");
    for (int32_t i = 0; i < p->n_l; i++)
        fprintf(fp, "%s\n    {\"layer\": %d, \"output_mse\": %.9g, \"relative_error\": %.9g, \"tokens\": %lld, "
                    "\"seconds\": %.4f}",
                i ? "," : "", p->l[i].layer, p->l[i].mse, p->l[i].rel, (long long)p->l[i].n_tokens, p->l[i].seconds);
    fprintf(fp, "\n  ],\n");
}

sq_status sq_json_finish(sq_atomic_file *f, const char *path) {
    if (ferror(f->fp)) {
        sq_atomic_abort(f);
        return sq_errorf(SQ_ERR_IO, "%s: write failed", path);
    }
    return sq_atomic_commit(f);
}
