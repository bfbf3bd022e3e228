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

#include "../core/cli.h"
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
            "      --grid G             symmetric grid: signed-max (default; s = m / -2^(B-1), m the group's\n"
            "                           largest-magnitude weight with its sign, which lands on code 0:\n"
            "                           ggml's Q4_0 rule; scales can be negative) or gptq (the GPTQ\n"
            "                           reference's s = 2 max|w| / (2^B - 1), one level unused); asymmetric\n"
            "                           groups ignore it\n"
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

typedef struct {
    sq_wtool_opts c; /* the options squish-prune shares (core/cli.h) */
    const char *overrides[SQ_CLI_MAX_PATTERNS];
    int32_t n_overrides;
    bool has_method, verbose, set_grid;
    bool set_act, set_duo, set_clip, set_windows, set_head_rtn, set_rescale;
    sq_qmethod method;
    sq_qrun_opts run;
} qz_cli;

static int parse(int argc, char **argv, qz_cli *o) {
    memset(o, 0, sizeof *o);
    sq_wtool_opts_init(&o->c);
    sq_qrun_opts_default(&o->run, SQ_QMETHOD_RTN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t x;
        sq_status st = SQ_OK;
        if (sq_cli_help(a, usage)) return -1;
        if (sq_cli_is(a, NULL, "--method")) {
            SQ_CLI_VALUE(v);
            o->has_method = true;
            if (!strcmp(v, "rtn")) o->method = SQ_QMETHOD_RTN;
            else if (!strcmp(v, "gptq")) o->method = SQ_QMETHOD_GPTQ;
            else if (!strcmp(v, "awq")) o->method = SQ_QMETHOD_AWQ;
            else st = sq_errorf(SQ_ERR_ARG, "--method: unknown method '%s' (rtn, gptq or awq)", v);
        } else if (sq_cli_is(a, NULL, "--mse")) {
            o->run.mse = true;
        } else if (sq_cli_is(a, NULL, "--grid")) {
            SQ_CLI_VALUE(v);
            st = sq_qgrid_parse(v, "--grid", &o->run.grid);
            o->set_grid = true;
        } else if (sq_cli_is(a, NULL, "--override")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_add_pattern(o->overrides, &o->n_overrides, "--override", v);
        } else if (sq_cli_is(a, NULL, "--act-order")) {
            o->run.act_order = o->set_act = true;
        } else if (sq_cli_is(a, NULL, "--rescale")) {
            o->run.rescale = o->set_rescale = true;
        } else if (sq_cli_is(a, NULL, "--head-rtn")) {
            o->set_head_rtn = true;
        } else if (sq_cli_is(a, NULL, "--awq-duo")) {
            o->run.awq_duo = o->set_duo = true;
        } else if (sq_cli_is(a, NULL, "--no-awq-clip")) {
            o->set_clip = true;
        } else if (sq_cli_is(a, NULL, "--awq-windows")) {
            SQ_CLI_VALUE(v);
            if ((st = sq_cli_int(a, v, 1, 1 << 24, &x)) == SQ_OK) o->run.awq_windows = (int32_t)x;
            o->set_windows = true;
        } else if (sq_cli_is(a, "-v", "--verbose")) {
            o->verbose = true;
        } else {
            st = sq_wtool_opt(argc, argv, &i, &o->c, "squish-quantize");
        }
        if (st) return 1;
    }
    if (sq_wtool_check(&o->c, "squish-quantize")) return 1;
    if (!o->has_method) return sq_errorf(SQ_ERR_ARG, "no method given: add --method rtn, gptq or awq"), 1;
    if (!o->c.bits) return sq_errorf(SQ_ERR_ARG, "no bit width given: add --bits 8, 6, 5, 4 or 3"), 1;
    const char *m = sq_qmethod_name(o->method);
    if (o->method != SQ_QMETHOD_GPTQ && (o->c.set_damp || o->c.set_block || o->set_act || o->set_head_rtn || o->set_rescale))
        return sq_errorf(SQ_ERR_ARG, "--damp, --block-size, --act-order, --head-rtn and --rescale apply to --method gptq, not %s",
                         m), 1;
    if (o->method != SQ_QMETHOD_AWQ && (o->set_duo || o->set_clip || o->set_windows))
        return sq_errorf(SQ_ERR_ARG, "--awq-duo, --no-awq-clip and --awq-windows apply to --method awq, not %s", m), 1;
    if (o->method == SQ_QMETHOD_RTN && (o->c.no_seq || o->c.calib || o->c.calib_data))
        return sq_errorf(SQ_ERR_ARG, "--method rtn uses no calibration (--calib, --calib-data, --no-sequential)"), 1;
    if (o->method != SQ_QMETHOD_RTN && !o->c.calib)
        return sq_errorf(SQ_ERR_ARG, "--method %s needs calibration statistics: add --calib calib.h5 (made by "
                                     "squish-calibrate on this model)", m), 1;
    if (o->c.no_seq && o->c.calib_data)
        return sq_errorf(SQ_ERR_ARG, "--calib-data is for sequential mode; --no-sequential does not read the data"), 1;
    sq_qrun_opts r = o->run;
    sq_qrun_opts_default(&o->run, o->method);
    o->run.mse = r.mse;
    if (o->set_grid) o->run.grid = r.grid;
    if (o->c.set_damp) o->run.damp = o->c.damp;
    if (o->c.set_block) o->run.block_size = o->c.block_size;
    o->run.act_order = r.act_order;
    o->run.rescale = r.rescale;
    o->run.awq_duo = r.awq_duo;
    o->run.awq_windows = r.awq_windows;
    o->run.awq_clip = !o->set_clip;
    o->run.gptq_head = !o->set_head_rtn;
    o->run.sequential = o->method != SQ_QMETHOD_RTN && !o->c.no_seq;
    return 0;
}

/* ===== Progress and results ===== */

typedef struct {
    sq_qreport r;
    char name[SQ_MAX_NAME];
} tensor_rec;

static void scheme_str(char *buf, size_t cap, const sq_qscheme *s) {
    char g[24];
    if (s->group) snprintf(g, sizeof g, "g%d", s->group);
    else snprintf(g, sizeof g, "row");
    snprintf(buf, cap, "%d-bit %s %s", s->bits, g, s->asym ? "asym" : "sym");
}

static void on_tensor(void *user, const sq_qreport *r) {
    sq_progress *p = user;
    tensor_rec *rec = sq_progress_next(p, sizeof *rec);
    if (!rec) return;
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

/* Why a tensor is (not) quantized, for -v and --json. */
static void reason(char *buf, size_t cap, const qz_cli *o, const sq_qplan_entry *e) {
    if (e->override_idx >= 0) snprintf(buf, cap, "override '%s'", o->overrides[e->override_idx]);
    else if (e->ignored_by >= 0) snprintf(buf, cap, "ignored by '%s'", o->c.ignore[e->ignored_by]);
    else if (e->target >= 0) snprintf(buf, cap, "target '%s'", o->c.n_targets ? o->c.targets[e->target] : "Linear");
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

static sq_status write_json(const qz_cli *o, const sq_qplan *plan, const sq_progress *p, const sq_checkpoint *c,
                            const char *model_sha, const char *calib_sha, const timings *tm, int64_t n_w, int64_t n_b,
                            uint64_t file_bytes) {
    sq_atomic_file f;
    sq_status st = sq_atomic_open(&f, o->c.cli.json);
    if (st) return st;
    FILE *fp = f.fp;
    sq_json_tool_head(fp, "squish-quantize", o->c.model, model_sha, o->c.out);
    fprintf(fp, ",\n  \"method\": \"%s\",\n  \"bits\": %d,\n  \"group_size\": %d,\n  \"symmetric\": %s,\n"
                "  \"sequential\": %s,\n  \"calib\": ",
            sq_qmethod_name(o->method), o->c.bits, o->c.group, o->c.asym ? "false" : "true",
            o->run.sequential ? "true" : "false");
    sq_json_string_or_null(fp, o->c.calib);
    fprintf(fp, ",\n  \"calib_sha256\": \"%s\",\n  \"options\": {\"mse\": %s, \"grid\": \"%s\", \"damp\": %g, \"block_size\": %d, "
                "\"act_order\": %s, \"rescale\": %s, \"gptq_head\": %s, \"awq_duo\": %s, \"awq_clip\": %s, \"awq_windows\": %d},\n"
                "  \"threads\": %d,\n",
            calib_sha ? calib_sha : "", o->run.mse ? "true" : "false", sq_qgrid_name(o->run.grid), o->run.damp, o->run.block_size,
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
        const sq_qreport *r = &((const tensor_rec *)p->t)[i].r;
        const sq_tensor *t = sq_checkpoint_find(c, r->name);
        fprintf(fp, "%s\n    {\"name\": \"%s\", \"method\": \"%s\", \"type\": \"%s\", \"loss\": %.9g, \"damp_used\": "
                    "%.6g, \"awq_alpha\": %.4g, \"bytes\": %zu, \"seconds\": %.4f}",
                i ? "," : "", r->name, sq_qmethod_name(r->method), t ? sq_type_name(t->type) : "?", r->loss,
                r->damp_used, r->alpha, t ? t->nbytes : 0, r->seconds);
    }
    fprintf(fp, "\n  ],\n");
    sq_json_blocks(fp, p);
    fprintf(fp, "  \"n_weights\": %lld,\n  \"tensor_bytes\": %lld,\n  \"bits_per_weight\": %.6f,\n"
                "  \"file_bytes\": %llu,\n  \"seconds\": {\"load\": %.3f, \"calibration_data\": %.3f, "
                "\"quantize\": %.3f, \"write\": %.3f, \"total\": %.3f}\n}\n",
            (long long)n_w, (long long)n_b, n_w ? 8.0 * (double)n_b / (double)n_w : 0.0, (unsigned long long)file_bytes,
            tm->load, tm->data, tm->quantize, tm->write, tm->total);
    return sq_json_finish(&f, o->c.cli.json);
}

/* Physical memory in bytes (0 when unknown). */
static uint64_t phys_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

int sq_quantize_main(int argc, char **argv) {
    qz_cli o;
    int rc = parse(argc, argv, &o);
    if ((rc = sq_cli_begin("squish-quantize", rc, o.c.cli.threads)) >= 0) return rc;
    int code = 1; /* input errors until the quantization starts, then runtime failures */
    sq_qplan plan = {0};
    sq_wtool_run w = {.prog = {.quiet = o.c.cli.quiet}};
    timings tm = {0};
    sq_status st;
    const double t_start = sq_now();

    if ((st = sq_wtool_load(&o.c, "quantize from the float model", &w))) goto fail;
    sq_qplan_spec spec = {.targets = o.c.targets,
                          .n_targets = o.c.n_targets,
                          .ignore = o.c.ignore,
                          .n_ignore = o.c.n_ignore,
                          .overrides = o.overrides,
                          .n_overrides = o.n_overrides,
                          .scheme = {.bits = o.c.bits, .group = o.c.group, .asym = o.c.asym}};
    if ((st = sq_qplan_build(&plan, &w.c.cfg, &spec))) goto fail;
    if (o.verbose) print_plan(&o, &plan, &w.c);
    if (plan.n_quant == 0) {
        st = sq_errorf(SQ_ERR_ARG, "nothing to quantize: every targeted tensor is ignored or kept");
        goto fail;
    }
    if ((st = sq_wtool_calib(&o.c, &w))) goto fail;
    tm.load = sq_now() - t_start;
    if (o.run.sequential) {
        const double t0 = sq_now();
        uint64_t need = sq_qrun_cache_bytes(&w.c.cfg, &o.run, w.cal.n_samples, w.cal.seq_len), have = phys_bytes();
        int64_t model_bytes = 0;
        for (int32_t i = 0; i < w.c.n_tensors; i++) model_bytes += sq_tensor_numel(&w.c.tensors[i]) * 4;
        if (have && (double)(need + (uint64_t)model_bytes) > 0.85 * (double)have) {
            st = sq_errorf(SQ_ERR_ARG,
                           "sequential mode caches %lld windows x %d tokens x dim %d activations twice plus scratch "
                           "(%.2f GiB) and the f32 model (%.2f GiB), more than this machine's %.2f GiB of memory "
                           "allows; "
                           "calibrate with fewer --samples or a shorter --seq-len, or use --no-sequential",
                           (long long)w.cal.n_samples, w.cal.seq_len, w.c.cfg.dim, (double)need / 1073741824.0,
                           (double)model_bytes / 1073741824.0, (double)have / 1073741824.0);
            goto fail;
        }
        if ((st = sq_wtool_data(&o.c, &w))) goto fail;
        tm.data = sq_now() - t0;
        if (!o.c.cli.quiet)
            fprintf(stderr, "squish-quantize: %s sequential: %lld windows x %d tokens from %s (%.1f MiB of activations)\n",
                    sq_qmethod_name(o.method), (long long)w.cal.n_samples, w.cal.seq_len, w.cal.data_path,
                    (double)need / 1048576.0);
    }
    if (!o.c.cli.quiet) {
        char sch0[48];
        sq_qscheme ds0 = {.bits = o.c.bits, .group = o.c.group, .asym = o.c.asym};
        scheme_str(sch0, sizeof sch0, &ds0);
        fprintf(stderr, "squish-quantize: %s %s, %d of %d matrices, %d threads\n", sq_qmethod_name(o.method), sch0,
                plan.n_quant, plan.n, sq_num_threads());
    }

    code = 2;
    o.run.on_tensor = on_tensor;
    o.run.on_layer = sq_progress_block;
    o.run.user = &w.prog;
    double t0 = sq_now();
    if ((st = sq_quantize_checkpoint(&w.c, &plan, &o.run, o.c.calib ? &w.cal : NULL, o.run.sequential ? &w.data : NULL,
                                     o.c.calib ? w.calib_sha : NULL)))
        goto fail;
    tm.quantize = sq_now() - t0;
    if (w.prog.oom) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    /* provenance: the inputs and the command */
    if ((st = sq_wtool_provenance(&w, &o.c, "squish-quantize", argc, argv))) goto fail;
    t0 = sq_now();
    if ((st = sq_store_write(o.c.out, &w.c))) goto fail;
    tm.write = sq_now() - t0;
    tm.total = sq_now() - t_start;

    int64_t n_w = 0, n_b = 0;
    for (int32_t i = 0; i < w.c.n_tensors; i++) {
        n_w += sq_tensor_numel(&w.c.tensors[i]);
        n_b += (int64_t)w.c.tensors[i].nbytes;
    }
    const uint64_t file_bytes = sq_file_bytes(o.c.out);
    if (o.c.cli.json && (st = write_json(&o, &plan, &w.prog, &w.c, w.model_sha, w.calib_sha, &tm, n_w, n_b, file_bytes))) goto fail;
    char sch[48];
    sq_qscheme ds = {.bits = o.c.bits, .group = o.c.group, .asym = o.c.asym};
    scheme_str(sch, sizeof sch, &ds);
    printf("%s: %s %s%s, %d of %d matrices quantized; %.3f bits per weight (%lld bytes of tensor data for %lld "
           "weights, file %llu bytes); %.2f s (quantization %.2f s, %d threads)\n",
           o.c.out, sq_qmethod_name(o.method), sch, o.run.sequential ? " sequential" : "", plan.n_quant, plan.n,
           n_w ? 8.0 * (double)n_b / (double)n_w : 0.0, (long long)n_b, (long long)n_w,
           (unsigned long long)file_bytes, tm.total, tm.quantize, sq_num_threads());
    code = 0;
    goto done;
fail:
    code = sq_cli_fail("squish-quantize", st, code);
done:
    sq_qplan_free(&plan);
    sq_wtool_run_free(&w);
    return code;
}
