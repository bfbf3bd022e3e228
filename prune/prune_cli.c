/* prune_cli.c - squish-prune: a model store (or anything squish-convert imports) in, a pruned
 * model store out (docs/pruning.md; the CLI contract of the pruning issue): magnitude,
 * Wanda (arXiv:2306.11695) and SparseGPT (arXiv:2301.00774) at unstructured sparsity, N:M
 * (N kept of M) or structured (FFN channels, KV-head groups, physically removed), optional
 * joint SparseGPT + 8/4/3-bit quantization. The options, checks, progress lines and JSON
 * pieces it shares with squish-quantize are in core/cli.c; the work is in prune/pmodel.c. The
 * output is byte-identical at any -t (the thread count is left out of the recorded command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/cli.h"
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

typedef struct {
    sq_wtool_opts c; /* the options squish-quantize shares (core/cli.h) */
    const char *pattern;
    bool has_method;
    double sparsity;
    int32_t embed_bits, head_bits;
    sq_prune_opts run;
    int64_t seed;
} pr_cli;

static int parse(int argc, char **argv, pr_cli *o) {
    memset(o, 0, sizeof *o);
    sq_wtool_opts_init(&o->c);
    o->sparsity = -1.0;
    sq_prune_opts_default(&o->run);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t x;
        double f;
        sq_status st = SQ_OK;
        if (sq_cli_help(a, usage)) return -1;
        if (sq_cli_is(a, NULL, "--method")) {
            SQ_CLI_VALUE(v);
            o->has_method = true;
            st = sq_prune_method_from_name(v, &o->run.method);
        } else if (sq_cli_is(a, NULL, "--sparsity")) {
            SQ_CLI_VALUE(v);
            /* range checked with the pattern, for one message */
            if ((st = sq_cli_float(a, v, -1e9, 1e9, &f)) == SQ_OK) {
                if (f < 0) st = sq_errorf(SQ_ERR_ARG, "--sparsity %s: must be at least 0", v);
                else if (f >= 1) st = sq_errorf(SQ_ERR_ARG, "--sparsity %s: must be below 1 (1 would remove every weight)", v);
                o->sparsity = f;
            }
        } else if (sq_cli_is(a, NULL, "--pattern")) {
            SQ_CLI_VALUE(v);
            o->pattern = v;
        } else if (sq_cli_is(a, NULL, "--data")) {
            SQ_CLI_VALUE(v);
            o->c.calib_data = v; /* --calib-data too */
        } else if (sq_cli_is(a, NULL, "--embed-bits") || sq_cli_is(a, NULL, "--head-bits")) {
            SQ_CLI_VALUE(v);
            if ((st = sq_cli_int(a, v, 1, 64, &x)) == SQ_OK && (st = sq_qscheme_check_cli((int32_t)x, 0, a)) == SQ_OK)
                *(strcmp(a, "--head-bits") ? &o->embed_bits : &o->head_bits) = (int32_t)x;
        } else if (sq_cli_is(a, NULL, "--seed")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 0, INT64_MAX, &o->seed);
        } else {
            st = sq_wtool_opt(argc, argv, &i, &o->c, "squish-prune");
        }
        if (st) return 1;
    }
    if (sq_wtool_check(&o->c, "squish-prune")) return 1;
    if (!o->has_method) return sq_errorf(SQ_ERR_ARG, "no method given: add --method magnitude, wanda or sparsegpt"), 1;
    if (sq_prune_pattern_parse(&o->run.pattern, o->pattern, o->sparsity)) return 1;
    const sq_prune_method m = o->run.method;
    const char *mn = sq_prune_method_name(m);
    if (m != SQ_PRUNE_SPARSEGPT && (o->c.set_damp || o->c.set_block || o->c.bits))
        return sq_errorf(SQ_ERR_ARG, "--damp, --block-size and --bits apply to --method sparsegpt, not %s", mn), 1;
    if (!o->c.bits && !o->embed_bits && !o->head_bits && (o->c.set_group || o->c.set_asym))
        return sq_errorf(SQ_ERR_ARG, "--group and --asym/--sym describe the quantization grid: give --bits too"), 1;
    if (o->c.bits && o->run.pattern.kind != SQ_PAT_UNSTRUCTURED && o->run.pattern.kind != SQ_PAT_NM)
        return sq_errorf(SQ_ERR_ARG, "--bits (joint pruning + quantization) works with unstructured or N:M patterns"), 1;
    if (m == SQ_PRUNE_MAGNITUDE && (o->c.no_seq || o->c.calib || o->c.calib_data))
        return sq_errorf(SQ_ERR_ARG, "--method magnitude uses no calibration (--calib, --data, --no-sequential)"), 1;
    if (m != SQ_PRUNE_MAGNITUDE && !o->c.calib)
        return sq_errorf(SQ_ERR_ARG, "--method %s needs calibration statistics: add --calib calib.h5 (made by "
                                     "squish-calibrate on this model)", mn), 1;
    if (o->c.no_seq && o->c.calib_data)
        return sq_errorf(SQ_ERR_ARG, "--data is for sequential mode; --no-sequential does not read the data"), 1;
    if (o->c.set_damp) o->run.damp = o->c.damp;
    if (o->c.set_block) o->run.block_size = o->c.block_size;
    o->run.sequential = m != SQ_PRUNE_MAGNITUDE && !o->c.no_seq;
    o->run.quant = o->c.bits > 0;
    o->run.scheme = (sq_qscheme){.bits = o->c.bits ? o->c.bits : 8, .group = o->c.group, .asym = o->c.asym};
    o->run.embed_bits = o->embed_bits;
    o->run.head_bits = o->head_bits;
    return 0;
}

/* ===== Progress ===== */

typedef struct {
    sq_prune_report r;
    char name[SQ_MAX_NAME], short_name[32];
} tensor_rec;

static void on_tensor(void *user, const sq_prune_report *r) {
    sq_progress *p = user;
    tensor_rec *rec = sq_progress_next(p, sizeof *rec);
    if (!rec) return;
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

static sq_status write_json(const pr_cli *o, const sq_progress *p, const sq_checkpoint *c, const sq_sparse_info *recs,
                            int32_t n_recs, const char *model_sha, const char *calib_sha, double seconds,
                            uint64_t file_bytes) {
    sq_atomic_file f;
    sq_status st = sq_atomic_open(&f, o->c.cli.json);
    if (st) return st;
    FILE *fp = f.fp;
    char pat[48];
    sq_prune_pattern_str(pat, sizeof pat, &o->run.pattern);
    sq_json_tool_head(fp, "squish-prune", o->c.model, model_sha, o->c.out);
    fprintf(fp, ",\n  \"method\": \"%s\",\n  \"pattern\": \"%s\",\n  \"n\": %d,\n  \"m\": %d,\n  \"sparsity\": %.9g,\n"
                "  \"sequential\": %s,\n  \"bits\": %d,\n  \"group_size\": %d,\n  \"symmetric\": %s,\n  \"calib\": ",
            sq_prune_method_name(o->run.method), pat, o->run.pattern.n, o->run.pattern.m, o->run.pattern.sparsity,
            o->run.sequential ? "true" : "false", o->c.bits, o->c.bits ? o->c.group : 0, o->c.asym ? "false" : "true");
    sq_json_string_or_null(fp, o->c.calib);
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
        const sq_prune_report *r = &((const tensor_rec *)p->t)[i].r;
        fprintf(fp, "%s\n    {\"name\": \"%s\", \"layer\": %d, \"weights\": %lld, \"zeros\": %lld, \"loss\": %.9g, "
                    "\"damp_used\": %.6g, \"seconds\": %.4f}",
                i ? "," : "", r->name, r->layer, (long long)r->numel, (long long)r->zeros, r->loss, r->damp_used,
                r->seconds);
    }
    fprintf(fp, "\n  ],\n");
    sq_json_blocks(fp, p);
    fprintf(fp, "  \"file_bytes\": %llu,\n  \"seconds\": %.3f\n}\n", (unsigned long long)file_bytes, seconds);
    return sq_json_finish(&f, o->c.cli.json);
}

int sq_prune_main(int argc, char **argv) {
    pr_cli o;
    int rc = parse(argc, argv, &o);
    if ((rc = sq_cli_begin("squish-prune", rc, o.c.cli.threads)) >= 0) return rc;
    int code = 1;
    sq_qplan plan = {0};
    sq_sparse_info *recs = NULL;
    int32_t n_recs = 0;
    sq_wtool_run w = {.prog = {.quiet = o.c.cli.quiet}};
    sq_status st;
    const double t_start = sq_now();

    if ((st = sq_wtool_load(&o.c, "prune the float model", &w))) goto fail;
    sq_qplan_spec spec = {.targets = o.c.targets,
                          .n_targets = o.c.n_targets,
                          .ignore = o.c.ignore,
                          .n_ignore = o.c.n_ignore,
                          .scheme = o.run.scheme};
    if ((st = sq_qplan_build(&plan, &w.c.cfg, &spec))) goto fail;
    if (plan.n_quant == 0) {
        st = sq_errorf(SQ_ERR_ARG, "nothing to prune: every targeted tensor is ignored");
        goto fail;
    }
    if ((st = sq_prune_check(&w.c, &plan, &o.run))) goto fail;
    if ((st = sq_wtool_calib(&o.c, &w))) goto fail;
    if (o.run.sequential) {
        if ((st = sq_wtool_data(&o.c, &w))) goto fail;
        if (!o.c.cli.quiet)
            fprintf(stderr, "squish-prune: %s sequential: %lld windows x %d tokens from %s (%.1f MiB of activations)\n",
                    sq_prune_method_name(o.run.method), (long long)w.cal.n_samples, w.cal.seq_len, w.cal.data_path,
                    (double)sq_prune_cache_bytes(&w.c.cfg, w.cal.n_samples, w.cal.seq_len) / 1048576.0);
    }
    char pat[48];
    sq_prune_pattern_str(pat, sizeof pat, &o.run.pattern);
    if (!o.c.cli.quiet)
        fprintf(stderr, "squish-prune: %s %s%s, %d of %d matrices, %d threads\n", sq_prune_method_name(o.run.method),
                pat, o.run.quant ? " + joint quantization" : "", plan.n_quant, plan.n, sq_num_threads());

    code = 2;
    o.run.on_tensor = on_tensor;
    o.run.on_layer = sq_progress_block;
    o.run.user = &w.prog;
    const double t0 = sq_now();
    if ((st = sq_prune_checkpoint(&w.c, &plan, &o.run, o.c.calib ? &w.cal : NULL, o.run.sequential ? &w.data : NULL, &recs,
                                  &n_recs))) {
        if (st == SQ_ERR_ARG) code = 1;
        goto fail;
    }
    const double t_prune = sq_now() - t0;
    if (w.prog.oom) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    if ((st = sq_wtool_provenance(&w, &o.c, "squish-prune", argc, argv))) goto fail;
    if ((st = sq_store_write(o.c.out, &w.c))) goto fail;
    const uint64_t file_bytes = sq_file_bytes(o.c.out);
    int64_t n_w = 0, n_z = 0;
    for (int32_t i = 0; i < n_recs; i++) {
        const sq_tensor *t = sq_checkpoint_find(&w.c, recs[i].name);
        if (!t) continue;
        n_w += sq_tensor_numel(t);
        n_z += (int64_t)(recs[i].sparsity * (double)sq_tensor_numel(t) + 0.5);
    }
    if (o.c.cli.json &&
        (st = write_json(&o, &w.prog, &w.c, recs, n_recs, w.model_sha, w.calib_sha, sq_now() - t_start, file_bytes)))
        goto fail;
    if (o.run.pattern.kind == SQ_PAT_FFN || o.run.pattern.kind == SQ_PAT_HEADS)
        printf("%s: %s %s%s, %d matrices shrunk (hidden_dim %d, heads %d, kv heads %d); file %llu bytes; %.2f s "
               "(pruning %.2f s, %d threads)\n",
               o.c.out, sq_prune_method_name(o.run.method), pat, o.run.sequential ? " sequential" : "", n_recs,
               w.c.cfg.hidden_dim, w.c.cfg.n_heads, w.c.cfg.n_kv_heads, (unsigned long long)file_bytes, sq_now() - t_start,
               t_prune, sq_num_threads());
    else
        printf("%s: %s %s%s%s, %d matrices pruned, %.2f%% of their weights zero; file %llu bytes; %.2f s (pruning "
               "%.2f s, %d threads)\n",
               o.c.out, sq_prune_method_name(o.run.method), pat, o.run.quant ? " + joint quantization" : "",
               o.run.sequential ? " sequential" : "", n_recs, n_w ? 100.0 * (double)n_z / (double)n_w : 0.0,
               (unsigned long long)file_bytes, sq_now() - t_start, t_prune, sq_num_threads());
    code = 0;
    goto done;
fail:
    code = sq_cli_fail("squish-prune", st, code);
done:
    free(recs);
    sq_qplan_free(&plan);
    sq_wtool_run_free(&w);
    return code;
}
