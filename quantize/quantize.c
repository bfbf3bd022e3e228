/* quantize.c - squish-quantize: a model store (or any checkpoint squish imports) in, a model
 * store with group-quantized linears out (docs/quantization.md): RTN (ALGORITHMS.md 1),
 * GPTQ (arXiv:2210.17323, ALGORITHMS.md 2) and AWQ (arXiv:2306.00978, ALGORITHMS.md 3) at 8,
 * 4 or 3 bits, with calib.h5 from squish-calibrate; targets/ignore/overrides in
 * llm-compressor's vocabulary (FORMATS.md 8.1, 8.3). The work is in quantize/qplan.c and
 * quantize/qmodel.c; this file parses options, checks the inputs, prints progress and writes
 * the store. The output is byte-identical at any -t (the thread count is left out of the
 * recorded command line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/util.h"
#include "../runtime/cli.h"
#include "../tools/tools.h"
#include "qmodel.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: squish-quantize MODEL -o OUT.h5 --method rtn|gptq|awq --bits 8|6|5|4|3 [options]\n"
            "\n"
            "Quantizes the linears of a model (a model store .h5, or anything squish-convert imports) to\n"
            "group-quantized weights (w = s * (q - z), fp16 scales per group) and writes a model store;\n"
            "'squish-convert export OUT.h5 -o OUT.sqz' makes it runnable. gptq and awq need calibration\n"
            "statistics from squish-calibrate made on the same model (--calib); rtn needs none.\n"
            "\n"
            "scheme:\n"
            "      --method M           rtn (round to nearest), gptq or awq\n"
            "      --bits B             8, 6, 5, 4 or 3\n"
            "      --group G            weights per scale: 32, 64, 128 (default), any multiple of 32, or\n"
            "                           'row' (one group per row); rows the group does not divide end with\n"
            "                           a shorter group\n"
            "      --sym | --asym       symmetric (default; zero point 2^(B-1)) or per-group u8 zero points\n"
            "      --mse                fit each group's range by GPTQ's MSE search (80 shrink steps)\n"
            "which tensors (module names are tensor names without .weight):\n"
            "      --targets P          quantize what P names (default: Linear); repeatable\n"
            "      --ignore P           but not what P names; repeatable\n"
            "      --override 'P=SPEC'  per-tensor scheme, SPEC = keep | f16 | bf16 | f32 (kept in float, in\n"
            "                           that type) | bits:8,group:128|row,sym|asym\n"
            "                           (applies to every tensor P names, targeted or not; later wins)\n"
            "                           P is an exact module name (lm_head, model.layers.0.mlp.down_proj),\n"
            "                           re:<regex> (Python re.match: anchored at the start only; \\d \\w \\s\n"
            "                           work, (?...) and lazy quantifiers do not), or Linear (the seven\n"
            "                           block linears: q k v o gate up down). The embedding and lm_head are\n"
            "                           not Linear; an override quantizes them (with RTN).\n");
    fprintf(fp,
            "calibration:\n"
            "      --calib FILE         calib.h5 (squish-calibrate) made on MODEL; required for gptq, awq\n"
            "      --no-sequential      use calib.h5's X^T X / sum|x| directly instead of re-running its\n"
            "                           windows block by block through the quantized model (gptq) or the\n"
            "                           FP model (awq). Sequential mode (default) caches the activations\n"
            "                           of every window: 2 x samples x seq_len x dim x 4 bytes, and reloads\n"
            "                           the data file calib.h5 names (checked by SHA-256)\n"
            "      --calib-data FILE    where that data file is now (default: the recorded path, then\n"
            "                           beside calib.h5)\n"
            "gptq:\n"
            "      --damp F             damping, fraction of mean(diag H) (default 0.01; raised x10 on\n"
            "                           Cholesky failure, the value used is recorded)\n"
            "      --block-size N       lazy-batch block (default 128)\n"
            "      --act-order          columns by decreasing diag(H), static groups\n"
            "      --head-rtn           the head (lm_head, or a tied embedding), when an override\n"
            "                           quantizes it, by RTN; default in sequential mode: GPTQ on\n"
            "                           the final-norm outputs of the quantized model\n"
            "      --rescale            then multiply each row's scales by the factor that minimises\n"
            "                           the row's output error on X^T X (kept only where it helps)\n"
            "awq:\n"
            "      --awq-duo            AutoAWQ duo scaling\n"
            "      --no-awq-clip        skip the clip search\n"
            "      --awq-windows N      windows the scale search runs (default 16)\n"
            "output:\n"
            "  -o, --output FILE        model store to write (.h5, atomically)\n"
            "      --json FILE          plan, per-tensor losses, damping used and timings as JSON\n"
            "  -t, --threads N          threads (default: all cores or OMP_NUM_THREADS; the output does not\n"
            "                           depend on it)\n"
            "  -v, --verbose            print the resolved plan (which tensor gets which scheme)\n"
            "  -q, --quiet              no progress output\n"
            "      --tokenizer PATH     tokenizer.bin for a llama2.c checkpoint\n"
            "  -h, --help               this help\n"
            "\n"
            "examples:\n"
            "  squish-calibrate model.h5 --data calib.txt --samples 128 --seq-len 256 -o calib.h5\n"
            "  squish-quantize model.h5 -o model-w4.h5 --method gptq --bits 4 --group 128 --calib calib.h5\n"
            "  squish-quantize model.h5 -o model-w3.h5 --method awq --bits 3 --group 64 --asym --calib calib.h5\n"
            "  squish-quantize model.h5 -o model-w8.h5 --method rtn --bits 8 --group row \\\n"
            "      --override 're:lm_head=bits:8' --override 'model.embed_tokens=bits:8'\n"
            "  squish-quantize model.h5 -o m.h5 --method gptq --bits 4 --calib calib.h5 \\\n"
            "      --ignore 're:model\\.layers\\.0\\.' --override 're:.*down_proj=bits:8' -v\n"
            "  squish-convert export model-w4.h5 -o model-w4.sqz\n");
}

#define MAX_PATTERNS 256

typedef struct {
    const char *model, *out, *calib, *calib_data, *json, *tokenizer;
    const char *targets[MAX_PATTERNS], *ignore[MAX_PATTERNS], *overrides[MAX_PATTERNS];
    int32_t n_targets, n_ignore, n_overrides;
    bool has_method, has_bits, verbose, quiet;
    bool set_damp, set_block, set_act, set_seq, set_duo, set_clip, set_windows, set_group, set_sym, set_head_rtn, set_rescale;
    sq_qmethod method;
    int32_t bits, group;
    bool asym;
    sq_qrun_opts run;
    int64_t threads;
} qz_cli;

static sq_status add_pattern(const char **list, int32_t *n, const char *opt, const char *v) {
    if (*n >= MAX_PATTERNS) return sq_errorf(SQ_ERR_ARG, "%s: more than %d patterns", opt, MAX_PATTERNS);
    if (!*v) return sq_errorf(SQ_ERR_ARG, "%s: empty pattern", opt);
    list[(*n)++] = v;
    return SQ_OK;
}

static int parse(int argc, char **argv, qz_cli *o) {
    memset(o, 0, sizeof *o);
    o->group = 128;
    sq_qrun_opts_default(&o->run, SQ_QMETHOD_RTN);
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
            if (!strcmp(v, "rtn")) o->method = SQ_QMETHOD_RTN;
            else if (!strcmp(v, "gptq")) o->method = SQ_QMETHOD_GPTQ;
            else if (!strcmp(v, "awq")) o->method = SQ_QMETHOD_AWQ;
            else st = sq_errorf(SQ_ERR_ARG, "--method: unknown method '%s' (rtn, gptq or awq)", v);
        } else if (sq_cli_is(a, NULL, "--bits")) {
            VAL();
            if ((st = sq_cli_int(a, v, 1, 64, &x)) == SQ_OK) {
                o->bits = (int32_t)x;
                o->has_bits = true;
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
        } else if (sq_cli_is(a, NULL, "--sym") || sq_cli_is(a, NULL, "--asym")) {
            o->asym = !strcmp(a, "--asym");
            o->set_sym = true;
        } else if (sq_cli_is(a, NULL, "--mse")) {
            o->run.mse = true;
        } else if (sq_cli_is(a, NULL, "--calib")) {
            VAL();
            o->calib = v;
        } else if (sq_cli_is(a, NULL, "--calib-data")) {
            VAL();
            o->calib_data = v;
        } else if (sq_cli_is(a, NULL, "--targets") || sq_cli_is(a, NULL, "--target")) {
            VAL();
            st = add_pattern(o->targets, &o->n_targets, "--targets", v);
        } else if (sq_cli_is(a, NULL, "--ignore")) {
            VAL();
            st = add_pattern(o->ignore, &o->n_ignore, "--ignore", v);
        } else if (sq_cli_is(a, NULL, "--override")) {
            VAL();
            st = add_pattern(o->overrides, &o->n_overrides, "--override", v);
        } else if (sq_cli_is(a, NULL, "--damp")) {
            VAL();
            if ((st = sq_cli_float(a, v, 0.0, 10.0, &f)) == SQ_OK) o->run.damp = f;
            o->set_damp = true;
        } else if (sq_cli_is(a, NULL, "--block-size")) {
            VAL();
            if ((st = sq_cli_int(a, v, 1, 1 << 20, &x)) == SQ_OK) o->run.block_size = (int32_t)x;
            o->set_block = true;
        } else if (sq_cli_is(a, NULL, "--act-order")) {
            o->run.act_order = o->set_act = true;
        } else if (sq_cli_is(a, NULL, "--rescale")) {
            o->run.rescale = o->set_rescale = true;
        } else if (sq_cli_is(a, NULL, "--head-rtn")) {
            o->set_head_rtn = true;
        } else if (sq_cli_is(a, NULL, "--no-sequential")) {
            o->set_seq = true;
        } else if (sq_cli_is(a, NULL, "--awq-duo")) {
            o->run.awq_duo = o->set_duo = true;
        } else if (sq_cli_is(a, NULL, "--no-awq-clip")) {
            o->set_clip = true;
        } else if (sq_cli_is(a, NULL, "--awq-windows")) {
            VAL();
            if ((st = sq_cli_int(a, v, 1, 1 << 24, &x)) == SQ_OK) o->run.awq_windows = (int32_t)x;
            o->set_windows = true;
        } else if (sq_cli_is(a, NULL, "--json")) {
            VAL();
            o->json = v;
        } else if (sq_cli_is(a, "-t", "--threads")) {
            VAL();
            st = sq_cli_int(a, v, 1, 1024, &o->threads);
        } else if (sq_cli_is(a, NULL, "--tokenizer")) {
            VAL();
            o->tokenizer = v;
        } else if (sq_cli_is(a, "-v", "--verbose")) {
            o->verbose = true;
        } else if (sq_cli_is(a, "-q", "--quiet")) {
            o->quiet = true;
        } else if (a[0] == '-' && a[1]) {
            st = sq_errorf(SQ_ERR_ARG, "unknown option '%s' (see squish-quantize --help)", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            st = sq_errorf(SQ_ERR_ARG, "unexpected argument '%s' (one model at a time)", a);
        }
        if (st) return 1;
#undef VAL
    }
    if (!o->model) return sq_errorf(SQ_ERR_ARG, "no model given (see squish-quantize --help)"), 1;
    if (!o->out) return sq_errorf(SQ_ERR_ARG, "no output given: add -o OUT.h5"), 1;
    if (!sq_str_ends_with(o->out, ".h5") && !sq_str_ends_with(o->out, ".hdf5"))
        return sq_errorf(SQ_ERR_ARG, "the output is a model store: '%s' should end in .h5 (then squish-convert export "
                                     "it)", o->out), 1;
    if (!o->has_method) return sq_errorf(SQ_ERR_ARG, "no method given: add --method rtn, gptq or awq"), 1;
    if (!o->has_bits) return sq_errorf(SQ_ERR_ARG, "no bit width given: add --bits 8, 6, 5, 4 or 3"), 1;
    const char *m = sq_qmethod_name(o->method);
    if (o->method != SQ_QMETHOD_GPTQ && (o->set_damp || o->set_block || o->set_act || o->set_head_rtn || o->set_rescale))
        return sq_errorf(SQ_ERR_ARG, "--damp, --block-size, --act-order, --head-rtn and --rescale apply to --method gptq, not %s",
                         m), 1;
    if (o->method != SQ_QMETHOD_AWQ && (o->set_duo || o->set_clip || o->set_windows))
        return sq_errorf(SQ_ERR_ARG, "--awq-duo, --no-awq-clip and --awq-windows apply to --method awq, not %s", m), 1;
    if (o->method == SQ_QMETHOD_RTN && (o->set_seq || o->calib || o->calib_data))
        return sq_errorf(SQ_ERR_ARG, "--method rtn uses no calibration (--calib, --calib-data, --no-sequential)"), 1;
    if (o->method != SQ_QMETHOD_RTN && !o->calib)
        return sq_errorf(SQ_ERR_ARG, "--method %s needs calibration statistics: add --calib calib.h5 (made by "
                                     "squish-calibrate on this model)", m), 1;
    if (o->set_seq && o->calib_data)
        return sq_errorf(SQ_ERR_ARG, "--calib-data is for sequential mode; --no-sequential does not read the data"), 1;
    sq_qrun_opts r = o->run;
    sq_qrun_opts_default(&o->run, o->method);
    o->run.mse = r.mse;
    o->run.damp = r.damp;
    o->run.block_size = r.block_size;
    o->run.act_order = r.act_order;
    o->run.rescale = r.rescale;
    o->run.awq_duo = r.awq_duo;
    o->run.awq_windows = r.awq_windows;
    o->run.awq_clip = !o->set_clip;
    o->run.gptq_head = !o->set_head_rtn;
    o->run.sequential = o->method != SQ_QMETHOD_RTN && !o->set_seq;
    return 0;
}

/* ===== Progress and results ===== */

typedef struct {
    sq_qreport r;
    char name[SQ_MAX_NAME];
} tensor_rec;

typedef struct {
    bool quiet;
    tensor_rec *t;
    int32_t n_t, cap_t;
    sq_qlayer_report *l;
    int32_t n_l, cap_l;
    bool oom;
} progress;

static void scheme_str(char *buf, size_t cap, const sq_qscheme *s) {
    char g[24];
    if (s->group) snprintf(g, sizeof g, "g%d", s->group);
    else snprintf(g, sizeof g, "row");
    snprintf(buf, cap, "%d-bit %s %s", s->bits, g, s->asym ? "asym" : "sym");
}

static void on_tensor(void *user, const sq_qreport *r) {
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
    rec->r.name = rec->name;
    if (p->quiet) return;
    char where[32], sch[48], extra[48];
    if (r->layer >= 0) snprintf(where, sizeof where, "[layer %d/%d]", r->layer + 1, r->n_layers);
    else snprintf(where, sizeof where, "[%s]", strcmp(r->short_name, "lm_head") ? "embed" : "head");
    scheme_str(sch, sizeof sch, &r->scheme);
    if (r->method == SQ_QMETHOD_GPTQ) snprintf(extra, sizeof extra, "(damp %.3f)", r->damp_used);
    else if (r->method == SQ_QMETHOD_AWQ && r->alpha >= 0) snprintf(extra, sizeof extra, "(alpha %.2f)", r->alpha);
    else if (r->method == SQ_QMETHOD_AWQ) snprintf(extra, sizeof extra, "(not scaled; weight)");
    else snprintf(extra, sizeof extra, "(weight)");
    fprintf(stderr, "%s %s %s %s: loss %.2e %s %.2f s\n", where, r->short_name, sch, sq_qmethod_name(r->method), r->loss,
            extra, r->seconds);
}

static void on_layer(void *user, const sq_qlayer_report *r) {
    progress *p = user;
    if (p->n_l == p->cap_l) {
        int32_t cap = p->cap_l ? p->cap_l * 2 : 16;
        sq_qlayer_report *l = realloc(p->l, (size_t)cap * sizeof *l);
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

/* Why a tensor is (not) quantized, for -v and --json. */
static void reason(char *buf, size_t cap, const qz_cli *o, const sq_qplan_entry *e) {
    if (e->override_idx >= 0) snprintf(buf, cap, "override '%s'", o->overrides[e->override_idx]);
    else if (e->ignored_by >= 0) snprintf(buf, cap, "ignored by '%s'", o->ignore[e->ignored_by]);
    else if (e->target >= 0) snprintf(buf, cap, "target '%s'", o->n_targets ? o->targets[e->target] : "Linear");
    else snprintf(buf, cap, "not a target");
}

static void print_plan(const qz_cli *o, const sq_qplan *plan, const sq_checkpoint *c) {
    fprintf(stderr, "squish-quantize: plan (%d of %d matrices quantized, %s):\n", plan->n_quant, plan->n,
            sq_qmethod_name(o->method));
    for (int32_t i = 0; i < plan->n; i++) {
        const sq_qplan_entry *e = &plan->e[i];
        char sch[48], why[300];
        const sq_tensor *t = sq_checkpoint_find(c, e->name);
        if (e->quantize) scheme_str(sch, sizeof sch, &e->scheme);
        else snprintf(sch, sizeof sch, "%s (kept)", e->keep_type >= 0 ? sq_type_name((sq_type)e->keep_type)
                                                    : t ? sq_type_name(t->type) : "?");
        reason(why, sizeof why, o, e);
        fprintf(stderr, "  %-48s [%5lld, %5lld]  %-20s %s\n", e->name, (long long)e->rows, (long long)e->cols, sch, why);
    }
}

typedef struct {
    double load, data, quantize, write, total;
} timings;

static sq_status write_json(const qz_cli *o, const sq_qplan *plan, const progress *p, const sq_checkpoint *c,
                            const char *model_sha, const char *calib_sha, const timings *tm, int64_t n_w, int64_t n_b,
                            uint64_t file_bytes) {
    sq_atomic_file f;
    sq_status st = sq_atomic_open(&f, o->json);
    if (st) return st;
    FILE *fp = f.fp;
    fprintf(fp, "{\n  \"tool\": \"squish-quantize %s\",\n  \"model\": ", sq_version());
    sq_json_string(fp, o->model, strlen(o->model));
    fprintf(fp, ",\n  \"model_sha256\": \"%s\",\n  \"output\": ", model_sha);
    sq_json_string(fp, o->out, strlen(o->out));
    fprintf(fp, ",\n  \"method\": \"%s\",\n  \"bits\": %d,\n  \"group_size\": %d,\n  \"symmetric\": %s,\n"
                "  \"sequential\": %s,\n  \"calib\": ",
            sq_qmethod_name(o->method), o->bits, o->group, o->asym ? "false" : "true",
            o->run.sequential ? "true" : "false");
    if (o->calib) sq_json_string(fp, o->calib, strlen(o->calib));
    else fprintf(fp, "null");
    fprintf(fp, ",\n  \"calib_sha256\": \"%s\",\n  \"options\": {\"mse\": %s, \"damp\": %g, \"block_size\": %d, "
                "\"act_order\": %s, \"rescale\": %s, \"gptq_head\": %s, \"awq_duo\": %s, \"awq_clip\": %s, \"awq_windows\": %d},\n"
                "  \"threads\": %d,\n",
            calib_sha ? calib_sha : "", o->run.mse ? "true" : "false", o->run.damp, o->run.block_size,
            o->run.act_order ? "true" : "false", o->run.rescale ? "true" : "false",
            o->method == SQ_QMETHOD_GPTQ && o->run.sequential && o->run.gptq_head ? "true" : "false",
            o->run.awq_duo ? "true" : "false", o->run.awq_clip ? "true" : "false",
            o->run.awq_windows, sq_num_threads());
    fprintf(fp, "  \"plan\": [");
    for (int32_t i = 0; i < plan->n; i++) {
        const sq_qplan_entry *e = &plan->e[i];
        char why[300];
        reason(why, sizeof why, o, e);
        fprintf(fp, "%s\n    {\"name\": \"%s\", \"shape\": [%lld, %lld], \"quantize\": %s", i ? "," : "", e->name,
                (long long)e->rows, (long long)e->cols, e->quantize ? "true" : "false");
        if (e->quantize)
            fprintf(fp, ", \"bits\": %d, \"group_size\": %d, \"symmetric\": %s", e->scheme.bits, e->scheme.group,
                    e->scheme.asym ? "false" : "true");
        fprintf(fp, ", \"reason\": ");
        sq_json_string(fp, why, strlen(why));
        fprintf(fp, "}");
    }
    fprintf(fp, "\n  ],\n  \"tensors\": [");
    for (int32_t i = 0; i < p->n_t; i++) {
        const sq_qreport *r = &p->t[i].r;
        const sq_tensor *t = sq_checkpoint_find(c, r->name);
        fprintf(fp, "%s\n    {\"name\": \"%s\", \"method\": \"%s\", \"type\": \"%s\", \"loss\": %.9g, \"damp_used\": "
                    "%.6g, \"awq_alpha\": %.4g, \"bytes\": %zu, \"seconds\": %.4f}",
                i ? "," : "", r->name, sq_qmethod_name(r->method), t ? sq_type_name(t->type) : "?", r->loss,
                r->damp_used, r->alpha, t ? t->nbytes : 0, r->seconds);
    }
    fprintf(fp, "\n  ],\n  \"layers\": [");
    for (int32_t i = 0; i < p->n_l; i++)
        fprintf(fp, "%s\n    {\"layer\": %d, \"output_mse\": %.9g, \"relative_error\": %.9g, \"tokens\": %lld, "
                    "\"seconds\": %.4f}",
                i ? "," : "", p->l[i].layer, p->l[i].mse, p->l[i].rel, (long long)p->l[i].n_tokens, p->l[i].seconds);
    fprintf(fp, "\n  ],\n  \"n_weights\": %lld,\n  \"tensor_bytes\": %lld,\n  \"bits_per_weight\": %.6f,\n"
                "  \"file_bytes\": %llu,\n  \"seconds\": {\"load\": %.3f, \"calibration_data\": %.3f, "
                "\"quantize\": %.3f, \"write\": %.3f, \"total\": %.3f}\n}\n",
            (long long)n_w, (long long)n_b, n_w ? 8.0 * (double)n_b / (double)n_w : 0.0, (unsigned long long)file_bytes,
            tm->load, tm->data, tm->quantize, tm->write, tm->total);
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

/* Physical memory in bytes (0 when unknown). */
static uint64_t phys_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

int sq_quantize_main(int argc, char **argv) {
    qz_cli o;
    int rc = parse(argc, argv, &o);
    if (rc < 0) return 0;
    if (rc > 0) {
        fprintf(stderr, "squish-quantize: %s\n", sq_last_error());
        return 1;
    }
    if (o.threads) sq_set_num_threads((int)o.threads);
    int code = 1; /* input errors until the quantization starts, then runtime failures */
    sq_checkpoint c = {0};
    sq_qplan plan = {0};
    sq_calib cal = {0};
    sq_calib_data data = {0};
    sq_tokenizer *tok = NULL;
    progress prog = {.quiet = o.quiet};
    char model_sha[65] = "", calib_sha[65] = "";
    timings tm = {0};
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
            st = sq_errorf(SQ_ERR_ARG, "%s: tensor '%s' is already %s; quantize from the float model", o.model,
                           c.tensors[i].name, sq_type_name(c.tensors[i].type));
            goto fail;
        }
    sq_qplan_spec spec = {.targets = o.targets,
                          .n_targets = o.n_targets,
                          .ignore = o.ignore,
                          .n_ignore = o.n_ignore,
                          .overrides = o.overrides,
                          .n_overrides = o.n_overrides,
                          .scheme = {.bits = o.bits, .group = o.group, .asym = o.asym}};
    if ((st = sq_qplan_build(&plan, &c.cfg, &spec))) goto fail;
    if (o.verbose) print_plan(&o, &plan, &c);
    if (plan.n_quant == 0) {
        st = sq_errorf(SQ_ERR_ARG, "nothing to quantize: every targeted tensor is ignored or kept");
        goto fail;
    }
    if (o.calib) {
        if ((st = sq_calib_model_sha256(o.model, &c, model_sha))) goto fail;
        if ((st = sq_calib_read(o.calib, &cal))) goto fail;
        if ((st = sq_calib_check_model(&cal, model_sha))) {
            sq_error_prefix(o.calib);
            goto fail;
        }
        if ((st = sq_calib_check_config(&cal, &c.cfg))) goto fail;
        if ((st = sq_sha256_file(o.calib, calib_sha, NULL))) goto fail;
    } else if ((st = sq_calib_model_sha256(o.model, &c, model_sha))) {
        goto fail;
    }
    tm.load = sq_now() - t_start;
    if (o.run.sequential) {
        const double t0 = sq_now();
        uint64_t need = sq_qrun_cache_bytes(&c.cfg, &o.run, cal.n_samples, cal.seq_len), have = phys_bytes();
        int64_t model_bytes = 0;
        for (int32_t i = 0; i < c.n_tensors; i++) model_bytes += sq_tensor_numel(&c.tensors[i]) * 4;
        if (have && (double)(need + (uint64_t)model_bytes) > 0.85 * (double)have) {
            st = sq_errorf(SQ_ERR_ARG,
                           "sequential mode caches %lld windows x %d tokens x dim %d activations twice plus scratch "
                           "(%.2f GiB) and the f32 model (%.2f GiB), more than this machine's %.2f GiB of memory "
                           "allows; "
                           "calibrate with fewer --samples or a shorter --seq-len, or use --no-sequential",
                           (long long)cal.n_samples, cal.seq_len, c.cfg.dim, (double)need / 1073741824.0,
                           (double)model_bytes / 1073741824.0, (double)have / 1073741824.0);
            goto fail;
        }
        if ((st = sq_tokenizer_init(&tok, &c.vocab))) goto fail;
        const bool add_bos = c.vocab.add_bos && c.vocab.bos_id >= 0;
        if ((st = sq_qcalib_data_load(&cal, o.calib, o.calib_data, tok, add_bos, &data))) goto fail;
        tm.data = sq_now() - t0;
        if (!o.quiet)
            fprintf(stderr, "squish-quantize: %s sequential: %lld windows x %d tokens from %s (%.1f MiB of activations)\n",
                    sq_qmethod_name(o.method), (long long)cal.n_samples, cal.seq_len, cal.data_path,
                    (double)need / 1048576.0);
    }
    if (!o.quiet) {
        char sch0[48];
        sq_qscheme ds0 = {.bits = o.bits, .group = o.group, .asym = o.asym};
        scheme_str(sch0, sizeof sch0, &ds0);
        fprintf(stderr, "squish-quantize: %s %s, %d of %d matrices, %d threads\n", sq_qmethod_name(o.method), sch0,
                plan.n_quant, plan.n, sq_num_threads());
    }

    code = 2;
    o.run.on_tensor = on_tensor;
    o.run.on_layer = on_layer;
    o.run.user = &prog;
    double t0 = sq_now();
    if ((st = sq_quantize_checkpoint(&c, &plan, &o.run, o.calib ? &cal : NULL, o.run.sequential ? &data : NULL,
                                     o.calib ? calib_sha : NULL)))
        goto fail;
    tm.quantize = sq_now() - t0;
    if (prog.oom) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    /* provenance: the inputs and the command */
    free(c.tool_version);
    free(c.command_line);
    char tool[64];
    snprintf(tool, sizeof tool, "squish %s", sq_version());
    c.tool_version = sq_strdup(tool);
    c.command_line = sq_command_line("squish-quantize", argc, argv);
    if (!c.tool_version || !c.command_line) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    if (!sq_is_dir(o.model) && sq_store_is_hdf5(o.model) && (st = add_source(&c, o.model, model_sha))) goto fail;
    if (o.calib && (st = add_source(&c, o.calib, calib_sha))) goto fail;
    t0 = sq_now();
    if ((st = sq_store_write(o.out, &c))) goto fail;
    tm.write = sq_now() - t0;
    tm.total = sq_now() - t_start;

    int64_t n_w = 0, n_b = 0;
    for (int32_t i = 0; i < c.n_tensors; i++) {
        n_w += sq_tensor_numel(&c.tensors[i]);
        n_b += (int64_t)c.tensors[i].nbytes;
    }
    struct stat sb;
    const uint64_t file_bytes = stat(o.out, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    if (o.json && (st = write_json(&o, &plan, &prog, &c, model_sha, calib_sha, &tm, n_w, n_b, file_bytes))) goto fail;
    char sch[48];
    sq_qscheme ds = {.bits = o.bits, .group = o.group, .asym = o.asym};
    scheme_str(sch, sizeof sch, &ds);
    printf("%s: %s %s%s, %d of %d matrices quantized; %.3f bits per weight (%lld bytes of tensor data for %lld "
           "weights, file %llu bytes); %.2f s (quantization %.2f s, %d threads)\n",
           o.out, sq_qmethod_name(o.method), sch, o.run.sequential ? " sequential" : "", plan.n_quant, plan.n,
           n_w ? 8.0 * (double)n_b / (double)n_w : 0.0, (long long)n_b, (long long)n_w,
           (unsigned long long)file_bytes, tm.total, tm.quantize, sq_num_threads());
    code = 0;
    goto done;
fail:
    if (st == SQ_ERR_OOM || st == SQ_ERR_INTERNAL) code = 2;
    fprintf(stderr, "squish-quantize: %s\n", sq_last_error());
done:
    free(prog.t);
    free(prog.l);
    sq_tokenizer_free(tok);
    sq_calib_data_free(&data);
    sq_calib_free(&cal);
    sq_qplan_free(&plan);
    sq_checkpoint_free(&c);
    return code;
}
