/* convert.c - squish-convert: checkpoints in, model stores and runnable files out.
 *
 *   import SRC -o model.h5     Hugging Face dir / safetensors / llama2.c .bin / GGUF -> HDF5 store
 *   export model.h5 -o m.sqz   store (or any importable source) -> runnable file
 *   export model.h5 -o m.gguf  store (or any importable source) -> GGUF for llama.cpp
 *   SRC -o m.sqz|m.gguf        both steps at once (no store written)
 *   info FILE                  what a store or runnable file holds (--json for machines)
 *
 * Formats: docs/model-store.md, docs/sqz-format.md and docs/gguf.md. Everything is written
 * atomically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/checkpoint.h"
#include "../core/gguf.h"
#include "../core/cli.h"
#include "../core/util.h"
#include "../runtime/cli.h"
#include "../runtime/sqz.h"
#include "../tools/tools.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: squish-convert import SRC -o MODEL.h5 [--dtype f32|f16|bf16] [--tokenizer PATH]\n"
            "       squish-convert export MODEL.h5 -o MODEL.sqz|MODEL.gguf [--dtype f32|f16|bf16] [--dense]\n"
            "                                [--act-int8]\n"
            "       squish-convert SRC -o MODEL.sqz|MODEL.gguf|MODEL.h5 [--dtype ...] [--tokenizer PATH]\n"
            "       squish-convert info FILE [--json]\n"
            "\n"
            "SRC is a Hugging Face model directory (config.json, model.safetensors or a sharded\n"
            "model.safetensors.index.json, tokenizer.model or tokenizer.json), a .safetensors file in\n"
            "such a directory, a llama2.c checkpoint (.bin, v0/v1/v2; its tokenizer.bin is looked for\n"
            "beside it, or give --tokenizer), a GGUF file (llama/qwen2; F32/F16/BF16, Q4_0/Q5_0/Q8_0\n"
            "kept quantized, Q4_1/Q5_1/Q4_K/Q5_K/Q6_K decoded to f32), or a squish model store (.h5).\n"
            "A .gguf output is written as llama.cpp's converter would (docs/gguf.md); a quantized store's\n"
            "matrices become Q4_0/Q4_1 (4-bit sym/asym), Q5_0/Q5_1 (5-bit), Q8_0 (3-, 6-, 8-bit) blocks\n"
            "with the same weights (Q4_1/Q5_1: offsets rounded to fp16); rows that are not a multiple of\n"
            "32 wide become F16/F32.\n"
            "\n"
            "options:\n"
            "  -o, --output PATH     output file (.h5 model store, .sqz runnable file or .gguf)\n"
            "      --dtype T         f32 converts every tensor; f16/bf16 convert the matrices and keep\n"
            "                        1-D norms/biases as they are (default: keep the source types)\n"
            "      --tokenizer PATH  tokenizer.bin for a llama2.c checkpoint\n"
            "      --dense           (.sqz) keep pruned matrices dense; by default a matrix whose zeros\n"
            "                        form a 2:4 or 4:8 pattern, or that is sparse enough to save 1/8 of\n"
            "                        its bytes, is written as a sparse type (docs/sparse-format.md)\n"
            "      --act-int8        (.sqz) flag every q8g/q4g matrix ACT8: squish-run and squish-eval then\n"
            "                        quantize its input activations to int8 per 32 columns and use integer\n"
            "                        dot products (faster prompts, a small extra error; docs/quantization.md)\n"
            "      --json            (info) machine-readable output\n"
            "  -v, --verbose         more progress output\n"
            "  -h, --help            this help\n"
            "\n"
            "examples:\n"
            "  squish-convert import ../shared/models/gutenberg-7m -o gutenberg.h5\n"
            "  squish-convert export gutenberg.h5 -o gutenberg.sqz\n"
            "  squish-convert export gutenberg.h5 -o gutenberg-f16.gguf --dtype f16\n"
            "  squish-convert export gutenberg-w4.h5 -o gutenberg-w4.gguf    # squish-quantize output -> Q4_0\n"
            "  squish-convert export gutenberg-q4.h5 -o gutenberg-q4-a8.sqz --act-int8\n"
            "  squish-convert ../shared/models/stories260K/stories260K.bin -o stories.sqz\n"
            "  squish-convert info gutenberg.sqz\n");
}

typedef struct {
    const char *cmd, *src, *out, *tokenizer;
    bool has_dtype, json, dense, act8;
    sq_type dtype;
} conv_opts;

static int parse(int argc, char **argv, conv_opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (sq_cli_help(a, usage)) return -1;
        if (sq_cli_is(a, "-o", "--output")) {
            SQ_CLI_VALUE(v);
            o->out = v;
        } else if (sq_cli_is(a, NULL, "--tokenizer")) {
            SQ_CLI_VALUE(v);
            o->tokenizer = v;
        } else if (sq_cli_is(a, NULL, "--dtype")) {
            SQ_CLI_VALUE(v);
            if (sq_type_from_name(v, &o->dtype)) {
                sq_errorf(SQ_ERR_ARG, "--dtype: expected f32, f16 or bf16, got '%s'", v);
                return 1;
            }
            o->has_dtype = true;
        } else if (sq_cli_is(a, NULL, "--json")) {
            o->json = true;
        } else if (sq_cli_is(a, NULL, "--dense")) {
            o->dense = true;
        } else if (sq_cli_is(a, NULL, "--act-int8")) {
            o->act8 = true;
        } else if (sq_cli_is(a, "-v", "--verbose")) {
            sq_log_set_level(SQ_LOG_DEBUG);
        } else if (!o->cmd && !o->src && (!strcmp(a, "import") || !strcmp(a, "export") || !strcmp(a, "info"))) {
            o->cmd = a;
        } else if (sq_cli_positional(a, &o->src, "squish-convert", "")) {
            return 1;
        }
    }
    if (!o->src) {
        sq_errorf(SQ_ERR_ARG, "no input given (see squish-convert --help)");
        return 1;
    }
    if (o->cmd && !strcmp(o->cmd, "info")) return 0;
    if (!o->out) {
        sq_errorf(SQ_ERR_ARG, "no output given: add -o MODEL.h5, -o MODEL.sqz or -o MODEL.gguf");
        return 1;
    }
    bool to_h5 = sq_str_ends_with(o->out, ".h5") || sq_str_ends_with(o->out, ".hdf5");
    bool to_sqz = sq_str_ends_with(o->out, ".sqz"), to_gguf = sq_str_ends_with(o->out, ".gguf");
    if (o->cmd && !strcmp(o->cmd, "import") && !to_h5) {
        sq_errorf(SQ_ERR_ARG, "import writes a model store: the output should end in .h5, not '%s'", o->out);
        return 1;
    }
    if (o->cmd && !strcmp(o->cmd, "export") && !to_sqz && !to_gguf) {
        sq_errorf(SQ_ERR_ARG, "export writes a runnable file or GGUF: the output should end in .sqz or .gguf, not '%s'",
                  o->out);
        return 1;
    }
    if (o->act8 && !to_sqz) {
        sq_errorf(SQ_ERR_ARG, "--act-int8 is a property of runnable files: the output should end in .sqz, not '%s'",
                  o->out);
        return 1;
    }
    if (!to_h5 && !to_sqz && !to_gguf) {
        sq_errorf(SQ_ERR_ARG, "output '%s' should end in .h5 (model store), .sqz (runnable file) or .gguf", o->out);
        return 1;
    }
    return 0;
}

/* ===== info ===== */

static void print_config(const sq_config *c, const sq_vocab *v) {
    printf("architecture   %s\n", c->arch);
    printf("dim            %d\nhidden_dim     %d\nlayers         %d\nheads          %d (kv %d, head_dim %d)\n", c->dim,
           c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    printf("vocab_size     %d\nmax_seq_len    %d\nnorm_eps       %g\nrope           theta %g, %s layout", c->vocab_size,
           c->max_seq_len, (double)c->norm_eps, (double)c->rope_theta,
           c->rope_layout == SQ_ROPE_HALF ? "half (HF)" : "interleaved (Meta)");
    if (c->rope_scaling == SQ_ROPE_SCALING_LINEAR) printf(", linear scaling x%g", (double)c->rope_factor);
    if (c->rope_scaling == SQ_ROPE_SCALING_LLAMA3) printf(", llama3 scaling x%g", (double)c->rope_factor);
    printf("\nhead           %s\nbiases         qkv %s, o %s, mlp %s\n", c->tied_embeddings ? "tied" : "untied",
           c->attn_qkv_bias ? "yes" : "no", c->attn_o_bias ? "yes" : "no", c->mlp_bias ? "yes" : "no");
    printf("tokenizer      %s%s%s, %d tokens, bos %d, eos %d, add_bos %s, hash %016llx\n",
           v->kind == SQ_VOCAB_SPM ? "sentencepiece-bpe" : "byte-level-bpe", v->kind == SQ_VOCAB_BPE ? " pre " : "",
           v->kind == SQ_VOCAB_BPE ? sq_pretok_name(v->pre) : "", v->n_tokens, v->bos_id, v->eos_id,
           v->add_bos ? "yes" : "no", (unsigned long long)sq_vocab_hash(v));
}

static void print_tensors_text(const sq_tensor *ts, int32_t n) {
    int64_t weights = 0, bytes = 0;
    printf("\n%-52s %-6s %s\n", "tensor", "type", "shape");
    for (int32_t i = 0; i < n; i++) {
        const sq_tensor *t = &ts[i];
        char tname[16];
        snprintf(tname, sizeof tname, "%s%s", sq_type_name(t->type), t->act8 ? "+a8" : "");
        printf("%-52s %-6s [", t->name, tname);
        for (int32_t d = 0; d < t->n_dims; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("]\n");
        weights += sq_tensor_numel(t);
        bytes += (int64_t)t->nbytes;
    }
    printf("\n%d tensors, %lld weights, %lld bytes of tensor data, %.3f bits per weight\n", n, (long long)weights,
           (long long)bytes, weights ? 8.0 * (double)bytes / (double)weights : 0.0);
}

static void print_info_json(const char *path, const char *kind, const sq_config *c, const sq_vocab *v,
                            const sq_tensor *ts, int32_t n) {
    int64_t weights = 0, bytes = 0;
    printf("{\n  \"file\": ");
    sq_json_string(stdout, path, strlen(path));
    printf(",\n  \"kind\": \"%s\",\n  \"config\": {\"arch\": \"%s\", \"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, "
           "\"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, \"vocab_size\": %d, \"max_seq_len\": %d, "
           "\"norm_eps\": %g, \"rope_theta\": %g, \"rope_layout\": \"%s\", \"tied_embeddings\": %s},\n",
           kind, c->arch, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
           c->max_seq_len, (double)c->norm_eps, (double)c->rope_theta,
           c->rope_layout == SQ_ROPE_HALF ? "half" : "interleaved", c->tied_embeddings ? "true" : "false");
    printf("  \"tokenizer\": {\"kind\": \"%s\", \"n_tokens\": %d, \"bos_id\": %d, \"eos_id\": %d, \"hash\": "
           "\"%016llx\"},\n  \"tensors\": [\n",
           v->kind == SQ_VOCAB_SPM ? "spm" : "bpe", v->n_tokens, v->bos_id, v->eos_id,
           (unsigned long long)sq_vocab_hash(v));
    for (int32_t i = 0; i < n; i++) {
        const sq_tensor *t = &ts[i];
        printf("    {\"name\": \"%s\", \"type\": \"%s\", \"shape\": [", t->name, sq_type_name(t->type));
        for (int32_t d = 0; d < t->n_dims; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("], \"bytes\": %zu%s}%s\n", t->nbytes, t->act8 ? ", \"act8\": true" : "", i + 1 < n ? "," : "");
        weights += sq_tensor_numel(t);
        bytes += (int64_t)t->nbytes;
    }
    printf("  ],\n  \"n_weights\": %lld,\n  \"tensor_bytes\": %lld,\n  \"bits_per_weight\": %.6f\n}\n",
           (long long)weights, (long long)bytes, weights ? 8.0 * (double)bytes / (double)weights : 0.0);
}

static int cmd_info(const conv_opts *o) {
    sq_status st;
    if (sq_str_ends_with(o->src, ".sqz")) {
        sq_sqz *f;
        if ((st = sq_sqz_open(&f, o->src, true))) return 1;
        int32_t n = sq_sqz_n_tensors(f);
        const sq_tensor *ts = n ? sq_sqz_tensor(f, 0) : NULL;
        if (o->json) {
            print_info_json(o->src, "runnable", sq_sqz_config(f), sq_sqz_vocab(f), ts, n);
        } else {
            printf("%s: squish runnable file v%u, %llu bytes, checksum %016llx (verified)\n\n", o->src,
                   SQ_SQZ_VERSION, (unsigned long long)sq_sqz_file_size(f), (unsigned long long)sq_sqz_checksum(f));
            print_config(sq_sqz_config(f), sq_sqz_vocab(f));
            for (int32_t i = 0; i < sq_sqz_n_meta(f); i++) {
                const char *k, *v;
                sq_sqz_meta_at(f, i, &k, &v);
                printf("%-14s %s\n", k, v);
            }
            print_tensors_text(ts, n);
        }
        sq_sqz_close(f);
        return 0;
    }
    sq_checkpoint c = {0};
    if ((st = sq_import_any(o->src, o->tokenizer, &c))) return 1;
    if (o->json) {
        print_info_json(o->src, sq_store_is_hdf5(o->src) ? "store" : "checkpoint", &c.cfg, &c.vocab, c.tensors,
                        c.n_tensors);
    } else {
        printf("%s: %s\n\n", o->src, c.source_format ? c.source_format : "checkpoint");
        print_config(&c.cfg, &c.vocab);
        for (int32_t i = 0; i < c.n_sources; i++)
            printf("source         %s (%llu bytes, sha256 %s)\n", c.sources[i].path,
                   (unsigned long long)c.sources[i].size, c.sources[i].sha256);
        if (c.command_line) printf("made by        %s\n", c.command_line);
        print_tensors_text(c.tensors, c.n_tensors);
    }
    sq_checkpoint_free(&c);
    return 0;
}

/* ===== import / export ===== */

/* A runnable file or GGUF needs a vocabulary; a model store may lack one (a hostile or
 * damaged store without /tokenizer): say so about the source, not the output. */
static sq_status need_tokenizer(const sq_checkpoint *c, const char *src) {
    if (c->vocab.n_tokens > 0) return SQ_OK;
    return sq_errorf(SQ_ERR_FORMAT, "%s: has no tokenizer, which a runnable file needs", src);
}

static sq_status export_sqz(const sq_checkpoint *c, const char *src, const char *out) {
    char store_hash[65] = "";
    sq_status st0 = need_tokenizer(c, src);
    if (st0) return st0;
    char *sources = NULL;
    size_t cap = 1;
    for (int32_t i = 0; i < c->n_sources; i++) cap += strlen(c->sources[i].path) + 100;
    sources = calloc(cap, 1);
    if (!sources) return sq_errorf(SQ_ERR_OOM, "out of memory");
    for (int32_t i = 0; i < c->n_sources; i++) {
        size_t l = strlen(sources);
        snprintf(sources + l, cap - l, "%s%s sha256:%s", i ? "; " : "", c->sources[i].path, c->sources[i].sha256);
    }
    sq_kv meta[6];
    int32_t n = 0;
    char tool[64];
    snprintf(tool, sizeof tool, "squish-convert %s", sq_version());
    meta[n++] = (sq_kv){"provenance.tool", tool};
    meta[n++] = (sq_kv){"provenance.source_format", c->source_format ? c->source_format : "unknown"};
    if (c->n_sources) meta[n++] = (sq_kv){"provenance.sources", sources};
    if (sq_store_is_hdf5(src)) {
        sq_status st = sq_sha256_file(src, store_hash, NULL);
        if (st) {
            free(sources);
            return st;
        }
        meta[n++] = (sq_kv){"provenance.store", src};
        meta[n++] = (sq_kv){"provenance.store_sha256", store_hash};
    }
    sq_status st = sq_sqz_write(out, &c->cfg, &c->vocab, c->tensors, c->n_tensors, meta, n);
    free(sources);
    return st;
}

/* Replaces every pruned f16/f32 matrix by its sparse encoding when that is smaller
 * (sq_tensor_sparsify: exact 2:4 / 4:8 zeros, or a bitmask saving >= 1/8 of the bytes). */
static sq_status sparsify_all(sq_checkpoint *c) {
    int32_t n = 0;
    for (int32_t i = 0; i < c->n_tensors; i++) {
        sq_tensor s;
        bool changed = false;
        sq_status st = sq_tensor_sparsify(&c->tensors[i], &s, &changed);
        if (st) return st;
        if (!changed) continue;
        sq_log(SQ_LOG_DEBUG, "squish-convert: %s: %s -> %s (%zu -> %zu bytes)", s.name,
               sq_type_name(c->tensors[i].type), sq_type_name(s.type), c->tensors[i].nbytes, s.nbytes);
        sq_tensor_release(&c->tensors[i]);
        c->tensors[i] = s;
        n++;
    }
    if (n) sq_log(SQ_LOG_INFO, "squish-convert: %d sparse matrices (--dense keeps them dense)", n);
    return SQ_OK;
}

/* general.name for a GGUF: the source's directory or file name without its extension. */
static char *model_name(const char *src) {
    char *s = sq_strdup(src);
    if (!s) return NULL;
    size_t n = strlen(s);
    bool dir = sq_is_dir(src);
    while (n > 1 && s[n - 1] == '/') s[--n] = '\0';
    if (sq_str_ends_with(s, ".safetensors")) { /* a file inside an HF directory: name the directory */
        char *slash = strrchr(s, '/');
        if (slash) *slash = '\0';
        else s[0] = '\0';
        dir = true;
    }
    char *base = strrchr(s, '/');
    base = base ? base + 1 : s;
    char *dot = strrchr(base, '.');
    if (dot && dot != base && !dir) *dot = '\0';
    memmove(s, base, strlen(base) + 1);
    if (!s[0] || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        free(s);
        return sq_strdup("model");
    }
    return s;
}

static sq_status export_gguf(const sq_checkpoint *c, const char *src, const char *out, sq_gguf_export_stats *stats) {
    char store_hash[65] = "";
    sq_status st0 = need_tokenizer(c, src);
    if (st0) return st0;
    sq_gguf_export_opts opts = {.stats = stats};
    char *name = model_name(src);
    if (!name) return sq_errorf(SQ_ERR_OOM, "out of memory");
    opts.name = name;
    if (sq_store_is_hdf5(src)) {
        sq_status st = sq_sha256_file(src, store_hash, NULL);
        if (st) {
            free(name);
            return st;
        }
        opts.store_path = src;
        opts.store_sha256 = store_hash;
    }
    sq_status st = sq_export_gguf(c, out, &opts);
    free(name);
    return st;
}

static int cmd_convert(const conv_opts *o, int argc, char **argv) {
    sq_checkpoint c = {0};
    sq_status st;
    double t0 = sq_now();
    sq_log(SQ_LOG_DEBUG, "squish-convert: reading %s", o->src);
    if ((st = sq_import_any(o->src, o->tokenizer, &c))) {
        sq_checkpoint_free(&c);
        return 1;
    }
    if (o->has_dtype && (st = sq_checkpoint_convert(&c, o->dtype))) goto fail;
    bool to_gguf = sq_str_ends_with(o->out, ".gguf");
    sq_gguf_export_stats gstats = {0};
    bool to_h5 = !sq_str_ends_with(o->out, ".sqz") && !to_gguf;
    if (to_gguf) {
        sq_log(SQ_LOG_DEBUG, "squish-convert: writing GGUF %s", o->out);
        if ((st = export_gguf(&c, o->src, o->out, &gstats))) goto fail;
    } else if (to_h5) {
        char tool[64];
        snprintf(tool, sizeof tool, "squish-convert %s", sq_version());
        if ((st = sq_checkpoint_set_made_by(&c, tool, "squish-convert", argc, argv))) goto fail;
        sq_log(SQ_LOG_DEBUG, "squish-convert: writing model store %s", o->out);
        if ((st = sq_store_write(o->out, &c))) goto fail;
    } else {
        sq_log(SQ_LOG_DEBUG, "squish-convert: writing runnable file %s", o->out);
        if (!o->dense && (st = sparsify_all(&c))) goto fail;
        if (o->act8) {
            int32_t n8 = 0;
            for (int32_t i = 0; i < c.n_tensors; i++)
                if (sq_type_supports_act8(c.tensors[i].type)) c.tensors[i].act8 = true, n8++;
            if (!n8) {
                st = sq_errorf(SQ_ERR_ARG, "--act-int8: %s has no q8g or q4g matrices", o->src);
                goto fail;
            }
            sq_log(SQ_LOG_INFO, "squish-convert: %d q8g/q4g matrices flagged ACT8 (int8 activations)", n8);
        }
        if ((st = export_sqz(&c, o->src, o->out))) goto fail;
    }
    int64_t weights = 0, bytes = 0;
    for (int32_t i = 0; i < c.n_tensors; i++) {
        weights += sq_tensor_numel(&c.tensors[i]);
        bytes += (int64_t)c.tensors[i].nbytes;
    }
    if (to_gguf) bytes = gstats.tensor_bytes; /* the GGUF's own tensor data */
    printf("%s: %d tensors, %lld weights, %.2f MiB of tensor data (%.3f bpw), %s, %.2f s\n", o->out, c.n_tensors,
           (long long)weights, (double)bytes / 1048576.0, weights ? 8.0 * (double)bytes / (double)weights : 0.0,
           c.cfg.arch, sq_now() - t0);
    if (to_gguf && gstats.n_from_quant > 0) {
        char list[256] = "";
        size_t n = 0;
        for (uint32_t gt = 0; gt < sizeof gstats.matrices / sizeof gstats.matrices[0]; gt++)
            if (gstats.matrices[gt] && n < sizeof list)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%lld %s", n ? ", " : "",
                                      (long long)gstats.matrices[gt], sq_ggml_type_name(gt));
        if (gstats.max_abs_err > 0)
            printf("%s: matrices: %s; %d were squish-quantized, largest weight change %.3g (Q4_1/Q5_1 offsets are "
                   "fp16)\n",
                   o->out, list, gstats.n_from_quant, gstats.max_abs_err);
        else
            printf("%s: matrices: %s; %d were squish-quantized, every weight exact\n", o->out, list,
                   gstats.n_from_quant);
    }
    sq_checkpoint_free(&c);
    return 0;
fail:
    sq_checkpoint_free(&c);
    return st == SQ_ERR_OOM || st == SQ_ERR_INTERNAL ? 2 : 1;
}

int sq_convert_main(int argc, char **argv) {
    conv_opts o;
    int rc = parse(argc, argv, &o);
    if (rc < 0) return 0;
    if (rc == 0) {
        rc = (o.cmd && !strcmp(o.cmd, "info")) ? cmd_info(&o) : cmd_convert(&o, argc, argv);
        if (rc == 0) return 0;
    }
    fprintf(stderr, "squish-convert: %s\n", sq_last_error());
    return rc;
}
