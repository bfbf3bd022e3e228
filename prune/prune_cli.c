/* prune_cli.c - squish-prune: a model store (or anything squish-convert imports) in, a pruned
 * model store out (docs/pruning.md; the CLI contract of the pruning issue): magnitude,
 * Wanda (arXiv:2306.11695) and SparseGPT (arXiv:2301.00774) at unstructured sparsity, N:M
 * (N kept of M) or structured (FFN channels, KV-head groups, physically removed), optional
 * joint SparseGPT + 8/4/3-bit quantization. Options, checks, progress lines and the JSON
 * report follow squish-quantize (quantize/quantize.c); the work is in prune/pmodel.c. The
 * output is byte-identical at any -t (the thread count is left out of the recorded command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/util.h"
#include "../runtime/cli.h"
#include "../runtime/fileio.h"
#include "../tools/tools.h"
#include "prune.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: squish-prune MODEL -o OUT.h5 --method magnitude|wanda|sparsegpt [options]\n"
            "\n"
            "Prunes the linears of a model (a model store .h5, or anything squish-convert imports) and\n"
            "writes a model store in which pruned weights are exactly 0 (structured patterns remove\n"
            "whole FFN channels or KV-head groups and shrink the matrices and the config);\n"
            "'squish-convert export OUT.h5 -o OUT.sqz' makes it runnable. wanda and sparsegpt need\n"
            "calibration statistics from squish-calibrate made on the same model (--calib).\n"
            "\n"
            "what to remove:\n"
            "      --method M           magnitude (|w|, one threshold per matrix), wanda (|w| x ||x_j||,\n"
            "                           per output row) or sparsegpt (OBS reconstruction, 128-column\n"
            "                           blocks, 1%% damping)\n"
            "      --sparsity F         fraction removed, 0 <= F < 1: of the weights (unstructured), of\n"
            "                           the FFN channels (ffn) or of the KV-head groups (heads)\n"
            "      --pattern P          unstructured (default), N:M = keep N of every M consecutive\n"
            "                           weights of a row (2:4, 4:8; 1 <= N < M <= 64; M must divide the\n"
            "                           row length; implies F = 1 - N/M), ffn (whole channels: gate/up\n"
            "                           rows + down columns) or heads (a KV head with its query heads:\n"
            "                           q/k/v rows + o columns); structured patterns remove the same\n"
            "                           number from every layer so the result is a plain Llama config\n"
            "which tensors (module names are tensor names without .weight):\n"
            "      --targets P          prune what P names (default: Linear); repeatable\n"
            "      --ignore P           but not what P names; repeatable\n"
            "                           P is an exact module name, re:<regex> (Python re.match) or\n"
            "                           Linear (q k v o gate up down), as in squish-quantize\n"
            "calibration (wanda, sparsegpt):\n"
            "      --calib FILE         calib.h5 (squish-calibrate) made on MODEL\n"
            "      --no-sequential      use calib.h5's statistics directly instead of re-running its\n"
            "                           windows through the blocks already pruned (sequential mode\n"
            "                           caches 2 x samples x seq_len x dim x 4 bytes of activations)\n"
            "      --data FILE          where calib.h5's data file is now (also --calib-data)\n"
            "sparsegpt:\n"
            "      --damp F             damping, fraction of mean(diag H) (default 0.01)\n"
            "      --block-size N       lazy block and mask block (default 128)\n"
            "      --bits B             8, 6, 5, 4 or 3: quantize the kept weights in the same sweep\n"
            "                           (packed q8g..q3g; pruned weights decode to exactly 0);\n"
            "                           unstructured or N:M only\n"
            "      --group G|row        weights per scale with --bits (default 128)\n"
            "      --asym               per-group zero points with --bits (default symmetric)\n"
            "      --embed-bits B       also round the embedding to this grid (RTN, --group/--asym)\n"
            "      --head-bits B        the same for lm_head (a tied head is the embedding); with\n"
            "                           --bits this makes the whole model quantized, not only the\n"
            "                           pruned linears (any method and pattern)\n");
    fprintf(fp,
            "output:\n"
            "  -o, --output FILE        model store to write (.h5, atomically)\n"
            "      --json FILE          per-tensor sparsity, losses, pruning records and timings as JSON\n"
            "  -t, --threads N          threads (the output does not depend on it)\n"
            "      --seed S             accepted for the recipe driver; every method is deterministic\n"
            "  -q, --quiet              no progress output\n"
            "      --tokenizer PATH     tokenizer.bin for a llama2.c checkpoint\n"
            "  -h, --help               this help\n"
            "\n"
            "examples:\n"
            "  squish-calibrate model.h5 --data calib.txt --samples 128 --seq-len 256 -o calib.h5\n"
            "  squish-prune model.h5 -o m-mag50.h5 --method magnitude --sparsity 0.5\n"
            "  squish-prune model.h5 -o m-wanda24.h5 --method wanda --pattern 2:4 --calib calib.h5\n"
            "  squish-prune model.h5 -o m-sgpt50.h5 --method sparsegpt --sparsity 0.5 --calib calib.h5\n"
            "  squish-prune model.h5 -o m-24w4.h5 --method sparsegpt --pattern 2:4 --bits 4 --group 128 \\\n"
            "      --embed-bits 4 --head-bits 8 --calib calib.h5\n"
            "  squish-prune model.h5 -o m-ffn25.h5 --method wanda --pattern ffn --sparsity 0.25 --calib calib.h5\n"
            "  squish-prune model.h5 -o m.h5 --method sparsegpt --pattern 4:8 --calib calib.h5 \\\n"
            "      --ignore 're:model\\.layers\\.0\\.' --json m.json\n"
            "  squish-convert export m-sgpt50.h5 -o m-sgpt50.sqz\n");
}

#define MAX_PATTERNS 256

typedef struct {
    const char *model, *out, *calib, *data, *json, *tokenizer, *pattern;
    const char *targets[MAX_PATTERNS], *ignore[MAX_PATTERNS];
    int32_t n_targets, n_ignore;
    bool has_method, quiet, set_seq, set_damp, set_block, set_group, set_asym;
    double sparsity;
    int32_t bits, group, embed_bits, head_bits;
    bool asym;
    sq_prune_opts run;
    int64_t threads, seed;
} pr_cli;

static sq_status add_pattern(const char **list, int32_t *n, const char *opt, const char *v) {
    if (*n >= MAX_PATTERNS) return sq_errorf(SQ_ERR_ARG, "%s: more than %d patterns", opt, MAX_PATTERNS);
    if (!*v) return sq_errorf(SQ_ERR_ARG, "%s: empty pattern", opt);
    list[(*n)++] = v;
    return SQ_OK;
}

static int parse(int argc, char **argv, pr_cli *o) {
    memset(o, 0, sizeof *o);
    o->group = 128;
    o->sparsity = -1.0;
    sq_prune_opts_default(&o->run);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t x;
        double f;
        sq_status st = SQ_OK;
#define VAL() \
    if (!(v = sq_cli_value(argc, argv, &i))) return 1;
        if (sq_cli_is(a, "-h", "--help")) {
            usage(stdout);
            return -1;
        } else if (sq_cli_is(a, "-o", "--output")) {
            VAL();
            o->out = v;
        } else if (sq_cli_is(a, NULL, "--method")) {
            VAL();
            o->has_method = true;
            st = sq_prune_method_from_name(v, &o->run.method);
        } else if (sq_cli_is(a, NULL, "--sparsity")) {
            VAL();
            /* range checked with the pattern, for one message */
            if ((st = sq_cli_float(a, v, -1e9, 1e9, &f)) == SQ_OK) {
                if (f < 0) st = sq_errorf(SQ_ERR_ARG, "--sparsity %s: must be at least 0", v);
                else if (f >= 1) st = sq_errorf(SQ_ERR_ARG, "--sparsity %s: must be below 1 (1 would remove every weight)", v);
                o->sparsity = f;
            }
        } else if (sq_cli_is(a, NULL, "--pattern")) {
            VAL();
            o->pattern = v;
        } else if (sq_cli_is(a, NULL, "--calib")) {
            VAL();
            o->calib = v;
        } else if (sq_cli_is(a, NULL, "--data") || sq_cli_is(a, NULL, "--calib-data")) {
            VAL();
            o->data = v;
        } else if (sq_cli_is(a, NULL, "--targets") || sq_cli_is(a, NULL, "--target")) {
            VAL();
            st = add_pattern(o->targets, &o->n_targets, "--targets", v);
        } else if (sq_cli_is(a, NULL, "--ignore")) {
            VAL();
            st = add_pattern(o->ignore, &o->n_ignore, "--ignore", v);
        } else if (sq_cli_is(a, NULL, "--no-sequential")) {
            o->set_seq = true;
        } else if (sq_cli_is(a, NULL, "--damp")) {
            VAL();
            if ((st = sq_cli_float(a, v, 0.0, 10.0, &f)) == SQ_OK) o->run.damp = f;
            o->set_damp = true;
        } else if (sq_cli_is(a, NULL, "--block-size")) {
            VAL();
            if ((st = sq_cli_int(a, v, 1, 1 << 20, &x)) == SQ_OK) o->run.block_size = (int32_t)x;
            o->set_block = true;
        } else if (sq_cli_is(a, NULL, "--bits")) {
            VAL();
            if ((st = sq_cli_int(a, v, 1, 64, &x)) == SQ_OK) {
                o->bits = (int32_t)x;
                st = sq_qscheme_check_cli(o->bits, 0, "--bits");
            }
        } else if (sq_cli_is(a, NULL, "--embed-bits") || sq_cli_is(a, NULL, "--head-bits")) {
            VAL();
            if ((st = sq_cli_int(a, v, 1, 64, &x)) == SQ_OK && (st = sq_qscheme_check_cli((int32_t)x, 0, a)) == SQ_OK)
                *(strcmp(a, "--head-bits") ? &o->embed_bits : &o->head_bits) = (int32_t)x;
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
        } else if (sq_cli_is(a, NULL, "--json")) {
            VAL();
            o->json = v;
        } else if (sq_cli_is(a, "-t", "--threads")) {
            VAL();
            st = sq_cli_int(a, v, 1, 1024, &o->threads);
        } else if (sq_cli_is(a, NULL, "--seed")) {
            VAL();
            st = sq_cli_int(a, v, 0, INT64_MAX, &o->seed);
        } else if (sq_cli_is(a, NULL, "--tokenizer")) {
            VAL();
            o->tokenizer = v;
        } else if (sq_cli_is(a, "-q", "--quiet")) {
            o->quiet = true;
        } else if (a[0] == '-' && a[1]) {
            st = sq_errorf(SQ_ERR_ARG, "unknown option '%s' (see squish-prune --help)", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            st = sq_errorf(SQ_ERR_ARG, "unexpected argument '%s' (one model at a time)", a);
        }
        if (st) return 1;
#undef VAL
    }
    if (!o->model) return sq_errorf(SQ_ERR_ARG, "no model given (see squish-prune --help)"), 1;
    if (!o->out) return sq_errorf(SQ_ERR_ARG, "no output given: add -o OUT.h5"), 1;
    if (!sq_str_ends_with(o->out, ".h5") && !sq_str_ends_with(o->out, ".hdf5"))
        return sq_errorf(SQ_ERR_ARG, "the output is a model store: '%s' should end in .h5 (then squish-convert export "
                                     "it)", o->out), 1;
    if (!o->has_method) return sq_errorf(SQ_ERR_ARG, "no method given: add --method magnitude, wanda or sparsegpt"), 1;
    if (sq_prune_pattern_parse(&o->run.pattern, o->pattern, o->sparsity)) return 1;
    const sq_prune_method m = o->run.method;
    const char *mn = sq_prune_method_name(m);
    if (m != SQ_PRUNE_SPARSEGPT && (o->set_damp || o->set_block || o->bits))
        return sq_errorf(SQ_ERR_ARG, "--damp, --block-size and --bits apply to --method sparsegpt, not %s", mn), 1;
    if (!o->bits && !o->embed_bits && !o->head_bits && (o->set_group || o->set_asym))
        return sq_errorf(SQ_ERR_ARG, "--group and --asym/--sym describe the quantization grid: give --bits too"), 1;
    if (o->bits && o->run.pattern.kind != SQ_PAT_UNSTRUCTURED && o->run.pattern.kind != SQ_PAT_NM)
        return sq_errorf(SQ_ERR_ARG, "--bits (joint pruning + quantization) works with unstructured or N:M patterns"), 1;
    if (m == SQ_PRUNE_MAGNITUDE && (o->set_seq || o->calib || o->data))
        return sq_errorf(SQ_ERR_ARG, "--method magnitude uses no calibration (--calib, --data, --no-sequential)"), 1;
    if (m != SQ_PRUNE_MAGNITUDE && !o->calib)
        return sq_errorf(SQ_ERR_ARG, "--method %s needs calibration statistics: add --calib calib.h5 (made by "
                                     "squish-calibrate on this model)", mn), 1;
    if (o->set_seq && o->data)
        return sq_errorf(SQ_ERR_ARG, "--data is for sequential mode; --no-sequential does not read the data"), 1;
    o->run.sequential = m != SQ_PRUNE_MAGNITUDE && !o->set_seq;
    o->run.quant = o->bits > 0;
    o->run.scheme = (sq_qscheme){.bits = o->bits ? o->bits : 8, .group = o->group, .asym = o->asym};
    o->run.embed_bits = o->embed_bits;
    o->run.head_bits = o->head_bits;
    return 0;
}

/* ===== Progress ===== */

typedef struct {
    sq_prune_report r;
    char name[SQ_MAX_NAME], short_name[32];
} tensor_rec;

typedef struct {
    bool quiet;
    tensor_rec *t;
    int32_t n_t, cap_t;
    sq_prune_layer_report *l;
    int32_t n_l, cap_l;
    bool oom;
} progress;

static void on_tensor(void *user, const sq_prune_report *r) {
    progress *p = user;
    if (p->n_t == p->cap_t) {
        int32_t cap = p->cap_t ? p->cap_t * 2 : 64;
        tensor_rec *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t) {
            p->oom = true;
            return;
        }
        p->t = t;
        p->cap_t = cap;
    }
    tensor_rec *rec = &p->t[p->n_t++];
    rec->r = *r;
    snprintf(rec->name, sizeof rec->name, "%s", r->name);
    snprintf(rec->short_name, sizeof rec->short_name, "%s", r->short_name);
    rec->r.name = rec->name;
    rec->r.short_name = rec->short_name;
    if (p->quiet) return;
    char extra[48] = "";
    if (r->damp_used > 0) snprintf(extra, sizeof extra, " (damp %.3f)", r->damp_used);
    fprintf(stderr, "[layer %d/%d] %s: %.2f%% zero (%lld of %lld), %s %.2e%s %.2f s\n", r->layer + 1, r->n_layers,
            r->short_name, r->numel ? 100.0 * (double)r->zeros / (double)r->numel : 0.0, (long long)r->zeros,
            (long long)r->numel, r->damp_used > 0 ? "loss" : "relative change", r->loss, extra, r->seconds);
}

static void on_layer(void *user, const sq_prune_layer_report *r) {
    progress *p = user;
    if (p->n_l == p->cap_l) {
        int32_t cap = p->cap_l ? p->cap_l * 2 : 16;
        sq_prune_layer_report *l = realloc(p->l, (size_t)cap * sizeof *l);
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

static sq_status write_json(const pr_cli *o, const progress *p, const sq_checkpoint *c, const sq_sparse_info *recs,
                            int32_t n_recs, const char *model_sha, const char *calib_sha, double seconds,
                            uint64_t file_bytes) {
    sq_atomic_file f;
    sq_status st = sq_atomic_open(&f, o->json);
    if (st) return st;
    FILE *fp = f.fp;
    char pat[48];
    sq_prune_pattern_str(pat, sizeof pat, &o->run.pattern);
    fprintf(fp, "{\n  \"tool\": \"squish-prune %s\",\n  \"model\": ", sq_version());
    sq_json_string(fp, o->model, strlen(o->model));
    fprintf(fp, ",\n  \"model_sha256\": \"%s\",\n  \"output\": ", model_sha);
    sq_json_string(fp, o->out, strlen(o->out));
    fprintf(fp, ",\n  \"method\": \"%s\",\n  \"pattern\": \"%s\",\n  \"n\": %d,\n  \"m\": %d,\n  \"sparsity\": %.9g,\n"
                "  \"sequential\": %s,\n  \"bits\": %d,\n  \"group_size\": %d,\n  \"symmetric\": %s,\n  \"calib\": ",
            sq_prune_method_name(o->run.method), pat, o->run.pattern.n, o->run.pattern.m, o->run.pattern.sparsity,
            o->run.sequential ? "true" : "false", o->bits, o->bits ? o->group : 0, o->asym ? "false" : "true");
    if (o->calib) sq_json_string(fp, o->calib, strlen(o->calib));
    else fprintf(fp, "null");
    fprintf(fp, ",\n  \"calib_sha256\": \"%s\",\n  \"damp\": %g,\n  \"block_size\": %d,\n  \"threads\": %d,\n",
            calib_sha ? calib_sha : "", o->run.damp, o->run.block_size, sq_num_threads());
    fprintf(fp, "  \"config\": {\"hidden_dim\": %d, \"n_heads\": %d, \"n_kv_heads\": %d},\n", c->cfg.hidden_dim,
            c->cfg.n_heads, c->cfg.n_kv_heads);
    fprintf(fp, "  \"records\": [");
    for (int32_t i = 0; i < n_recs; i++) {
        const sq_tensor *t = sq_checkpoint_find(c, recs[i].name);
        fprintf(fp, "%s\n    {\"name\": \"%s\", \"method\": \"%s\", \"n\": %d, \"m\": %d, \"sparsity\": %.9g, "
                    "\"type\": \"%s\", \"shape\": [%lld, %lld], \"bytes\": %zu}",
                i ? "," : "", recs[i].name, recs[i].method, recs[i].n, recs[i].m, recs[i].sparsity,
                t ? sq_type_name(t->type) : "?", t ? (long long)t->shape[0] : 0LL,
                t && t->n_dims > 1 ? (long long)t->shape[1] : 0LL, t ? t->nbytes : (size_t)0);
    }
    fprintf(fp, "\n  ],\n  \"tensors\": [");
    for (int32_t i = 0; i < p->n_t; i++) {
        const sq_prune_report *r = &p->t[i].r;
        fprintf(fp, "%s\n    {\"name\": \"%s\", \"layer\": %d, \"weights\": %lld, \"zeros\": %lld, \"loss\": %.9g, "
                    "\"damp_used\": %.6g, \"seconds\": %.4f}",
                i ? "," : "", r->name, r->layer, (long long)r->numel, (long long)r->zeros, r->loss, r->damp_used,
                r->seconds);
    }
    fprintf(fp, "\n  ],\n  \"layers\": [");
    for (int32_t i = 0; i < p->n_l; i++)
        fprintf(fp, "%s\n    {\"layer\": %d, \"output_mse\": %.9g, \"relative_error\": %.9g, \"tokens\": %lld, "
                    "\"seconds\": %.4f}",
                i ? "," : "", p->l[i].layer, p->l[i].mse, p->l[i].rel, (long long)p->l[i].n_tokens, p->l[i].seconds);
    fprintf(fp, "\n  ],\n  \"file_bytes\": %llu,\n  \"seconds\": %.3f\n}\n", (unsigned long long)file_bytes, seconds);
    if (ferror(fp)) {
        sq_atomic_abort(&f);
        return sq_errorf(SQ_ERR_IO, "%s: write failed", o->json);
    }
    return sq_atomic_commit(&f);
}

/* Records an input file whose SHA-256 is already known. */
static sq_status add_source(sq_checkpoint *c, const char *path, const char *sha) {
    struct stat sb;
    sq_source_file *p = realloc(c->sources, ((size_t)c->n_sources + 1) * sizeof *p);
    if (!p) return sq_errorf(SQ_ERR_OOM, "out of memory");
    c->sources = p;
    sq_source_file *f = &c->sources[c->n_sources];
    memset(f, 0, sizeof *f);
    if (!(f->path = sq_strdup(path))) return sq_errorf(SQ_ERR_OOM, "out of memory");
    snprintf(f->sha256, sizeof f->sha256, "%s", sha);
    f->size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    c->n_sources++;
    return SQ_OK;
}

int sq_prune_main(int argc, char **argv) {
    pr_cli o;
    int rc = parse(argc, argv, &o);
    if (rc < 0) return 0;
    if (rc > 0) {
        fprintf(stderr, "squish-prune: %s\n", sq_last_error());
        return 1;
    }
    if (o.threads) sq_set_num_threads((int)o.threads);
    int code = 1;
    sq_checkpoint c = {0};
    sq_qplan plan = {0};
    sq_calib cal = {0};
    sq_calib_data data = {0};
    sq_tokenizer *tok = NULL;
    sq_sparse_info *recs = NULL;
    int32_t n_recs = 0;
    progress prog = {.quiet = o.quiet};
    char model_sha[65] = "", calib_sha[65] = "";
    sq_status st;
    const double t_start = sq_now();

    if ((st = sq_check_out_path(o.out, "output")) || (o.json && (st = sq_check_out_path(o.json, "--json")))) goto fail;
    if (!sq_file_exists(o.model)) {
        st = sq_errorf(SQ_ERR_IO, "%s: no such file or directory", o.model);
        goto fail;
    }
    if (o.calib && (!sq_file_exists(o.calib) || sq_is_dir(o.calib))) {
        st = sq_errorf(SQ_ERR_IO, "%s: no such file (--calib)", o.calib);
        goto fail;
    }
    if ((st = sq_import_any(o.model, o.tokenizer, &c))) goto fail;
    for (int32_t i = 0; i < c.n_tensors; i++)
        if (sq_type_is_quant(c.tensors[i].type)) {
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' is already %s; prune the float model", o.model,
                           c.tensors[i].name, sq_type_name(c.tensors[i].type));
            goto fail;
        }
    sq_qplan_spec spec = {.targets = o.targets,
                          .n_targets = o.n_targets,
                          .ignore = o.ignore,
                          .n_ignore = o.n_ignore,
                          .scheme = o.run.scheme};
    if ((st = sq_qplan_build(&plan, &c.cfg, &spec))) goto fail;
    if (plan.n_quant == 0) {
        st = sq_errorf(SQ_ERR_ARG, "nothing to prune: every targeted tensor is ignored");
        goto fail;
    }
    if ((st = sq_prune_check(&c, &plan, &o.run))) goto fail;
    if ((st = sq_calib_model_sha256(o.model, &c, model_sha))) goto fail;
    if (o.calib) {
        if ((st = sq_calib_read(o.calib, &cal))) goto fail;
        if ((st = sq_calib_check_model(&cal, model_sha))) {
            sq_error_prefix(o.calib);
            goto fail;
        }
        if ((st = sq_calib_check_config(&cal, &c.cfg))) goto fail;
        if ((st = sq_sha256_file(o.calib, calib_sha, NULL))) goto fail;
    }
    if (o.run.sequential) {
        if ((st = sq_tokenizer_init(&tok, &c.vocab))) goto fail;
        const bool add_bos = c.vocab.add_bos && c.vocab.bos_id >= 0;
        if ((st = sq_qcalib_data_load(&cal, o.calib, o.data, tok, add_bos, &data))) goto fail;
        if (!o.quiet)
            fprintf(stderr, "squish-prune: %s sequential: %lld windows x %d tokens from %s (%.1f MiB of activations)\n",
                    sq_prune_method_name(o.run.method), (long long)cal.n_samples, cal.seq_len, cal.data_path,
                    (double)sq_prune_cache_bytes(&c.cfg, cal.n_samples, cal.seq_len) / 1048576.0);
    }
    char pat[48];
    sq_prune_pattern_str(pat, sizeof pat, &o.run.pattern);
    if (!o.quiet)
        fprintf(stderr, "squish-prune: %s %s%s, %d of %d matrices, %d threads\n", sq_prune_method_name(o.run.method),
                pat, o.run.quant ? " + joint quantization" : "", plan.n_quant, plan.n, sq_num_threads());

    code = 2;
    o.run.on_tensor = on_tensor;
    o.run.on_layer = on_layer;
    o.run.user = &prog;
    const double t0 = sq_now();
    if ((st = sq_prune_checkpoint(&c, &plan, &o.run, o.calib ? &cal : NULL, o.run.sequential ? &data : NULL, &recs,
                                  &n_recs))) {
        if (st == SQ_ERR_ARG) code = 1;
        goto fail;
    }
    const double t_prune = sq_now() - t0;
    if (prog.oom) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    free(c.tool_version);
    free(c.command_line);
    char tool[64];
    snprintf(tool, sizeof tool, "squish %s", sq_version());
    c.tool_version = sq_strdup(tool);
    c.command_line = sq_command_line("squish-prune", argc, argv);
    if (!c.tool_version || !c.command_line) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    if (!sq_is_dir(o.model) && sq_store_is_hdf5(o.model) && (st = add_source(&c, o.model, model_sha))) goto fail;
    if (o.calib && (st = add_source(&c, o.calib, calib_sha))) goto fail;
    if ((st = sq_store_write(o.out, &c))) goto fail;
    struct stat sb;
    const uint64_t file_bytes = stat(o.out, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    int64_t n_w = 0, n_z = 0;
    for (int32_t i = 0; i < n_recs; i++) {
        const sq_tensor *t = sq_checkpoint_find(&c, recs[i].name);
        if (!t) continue;
        n_w += sq_tensor_numel(t);
        n_z += (int64_t)(recs[i].sparsity * (double)sq_tensor_numel(t) + 0.5);
    }
    if (o.json &&
        (st = write_json(&o, &prog, &c, recs, n_recs, model_sha, calib_sha, sq_now() - t_start, file_bytes)))
        goto fail;
    if (o.run.pattern.kind == SQ_PAT_FFN || o.run.pattern.kind == SQ_PAT_HEADS)
        printf("%s: %s %s%s, %d matrices shrunk (hidden_dim %d, heads %d, kv heads %d); file %llu bytes; %.2f s "
               "(pruning %.2f s, %d threads)\n",
               o.out, sq_prune_method_name(o.run.method), pat, o.run.sequential ? " sequential" : "", n_recs,
               c.cfg.hidden_dim, c.cfg.n_heads, c.cfg.n_kv_heads, (unsigned long long)file_bytes, sq_now() - t_start,
               t_prune, sq_num_threads());
    else
        printf("%s: %s %s%s%s, %d matrices pruned, %.2f%% of their weights zero; file %llu bytes; %.2f s (pruning "
               "%.2f s, %d threads)\n",
               o.out, sq_prune_method_name(o.run.method), pat, o.run.quant ? " + joint quantization" : "",
               o.run.sequential ? " sequential" : "", n_recs, n_w ? 100.0 * (double)n_z / (double)n_w : 0.0,
               (unsigned long long)file_bytes, sq_now() - t_start, t_prune, sq_num_threads());
    code = 0;
    goto done;
fail:
    if (st == SQ_ERR_OOM || st == SQ_ERR_INTERNAL) code = 2;
    fprintf(stderr, "squish-prune: %s\n", sq_last_error());
done:
    free(prog.t);
    free(prog.l);
    free(recs);
    sq_tokenizer_free(tok);
    sq_calib_data_free(&data);
    sq_calib_free(&cal);
    sq_qplan_free(&plan);
    sq_checkpoint_free(&c);
    return code;
}
