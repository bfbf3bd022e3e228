/* eval.c - squish-eval: perplexity (GPTQ or llama.cpp protocol) and KL divergence
 * against a base model's stored log-probabilities, for a runnable file or a model store,
 * through the runtime's forward pass. Prints one result line per measure on stdout and
 * writes everything, with the protocol, ctx, tokenizer hash and text SHA-256 pinned, to
 * --json. See docs/eval.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/checkpoint.h"
#include "../core/util.h"
#include "../runtime/cli.h"
#include "../runtime/sqz.h"
#include "../runtime/tokenizer.h"
#include "../tools/tools.h"
#include "eval.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: squish-eval MODEL --text FILE [options]\n"
            "       squish-eval MODEL --kld BASE.bin [options]\n"
            "\n"
            "Measures perplexity (and KL divergence against a base model) with the same forward pass\n"
            "squish-run uses. MODEL is a runnable file (.sqz), a model store (.h5) or any checkpoint\n"
            "squish-convert can import.\n"
            "\n"
            "options:\n"
            "      --text FILE          text to evaluate (tokenized once, BOS first)\n"
            "      --protocol P         llamacpp (default): BOS replaces each window's first token, the\n"
            "                           second half of each window is scored (llama-perplexity);\n"
            "                           gptq: every token of each window scored, no per-window BOS\n"
            "  -c, --ctx N              window length (default 512 for llamacpp, 2048 for gptq, capped at\n"
            "                           the model's trained context)\n"
            "      --chunks K           evaluate only the first K windows\n"
            "      --save-logits FILE   store the base model's top-K log-probs for later --kld runs\n"
            "      --top-k K            entries per position in --save-logits (default 32; 0 = all)\n"
            "      --kld FILE           KL divergence, top-1 agreement and PPL ratio against a base file\n"
            "                           (its stored tokens are used when --text is omitted)\n"
            "      --json FILE          write all results and settings as JSON\n"
            "  -t, --threads N          threads (default: all cores or OMP_NUM_THREADS)\n"
            "      --tokenizer PATH     tokenizer.bin for a llama2.c checkpoint\n"
            "      --no-verify          skip the runnable file's checksum check\n"
            "  -q, --quiet              no progress output\n"
            "  -h, --help               this help\n"
            "\n"
            "examples:\n"
            "  squish-eval stories.sqz --text ../shared/data/tinystories/eval.txt --ctx 256\n"
            "  squish-eval base.sqz --text eval.txt --ctx 256 --save-logits base.kld\n"
            "  squish-eval quant.sqz --kld base.kld --json quant.json\n");
}

typedef struct {
    sq_cli_common cli; /* -t, --json, --tokenizer, -q */
    const char *model, *text, *save, *kld;
    sq_eval_opts e;
    bool ctx_set, no_verify;
    int64_t top_k;
} eval_cli;

static int parse(int argc, char **argv, eval_cli *o) {
    memset(o, 0, sizeof *o);
    o->e.protocol = SQ_PROTOCOL_LLAMACPP;
    o->e.progress = true;
    o->top_k = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t x;
        sq_status st = SQ_OK;
        if (sq_cli_help(a, usage)) return -1;
        if (sq_cli_is(a, NULL, "--text")) {
            SQ_CLI_VALUE(v);
            o->text = v;
        } else if (sq_cli_is(a, NULL, "--protocol")) {
            SQ_CLI_VALUE(v);
            if (!strcmp(v, "gptq")) o->e.protocol = SQ_PROTOCOL_GPTQ;
            else if (!strcmp(v, "llamacpp")) o->e.protocol = SQ_PROTOCOL_LLAMACPP;
            else st = sq_errorf(SQ_ERR_ARG, "--protocol: expected gptq or llamacpp, got '%s'", v);
        } else if (sq_cli_is(a, "-c", "--ctx")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 4, 1 << 20, &x);
            o->e.ctx = (int32_t)x;
            o->ctx_set = true;
        } else if (sq_cli_is(a, NULL, "--chunks")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 1, INT64_MAX, &o->e.max_windows);
        } else if (sq_cli_is(a, NULL, "--save-logits")) {
            SQ_CLI_VALUE(v);
            o->save = v;
        } else if (sq_cli_is(a, NULL, "--top-k")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 0, 1 << 24, &o->top_k);
        } else if (sq_cli_is(a, NULL, "--kld")) {
            SQ_CLI_VALUE(v);
            o->kld = v;
        } else if (sq_cli_is(a, NULL, "--no-verify")) {
            o->no_verify = true;
        } else if (!sq_cli_common_opt(argc, argv, &i, SQ_CLI_THREADS | SQ_CLI_JSON | SQ_CLI_TOKENIZER | SQ_CLI_QUIET,
                                      &o->cli, &st)) {
            st = sq_cli_positional(a, &o->model, "squish-eval", "");
        }
        if (st) return 1;
    }
    if (o->cli.quiet) o->e.progress = false;
    if (!o->model) return sq_errorf(SQ_ERR_ARG, "no model given (see squish-eval --help)"), 1;
    if (!o->text && !o->kld) return sq_errorf(SQ_ERR_ARG, "give --text FILE (or --kld BASE to reuse its tokens)"), 1;
    if (o->save && o->kld) return sq_errorf(SQ_ERR_ARG, "--save-logits and --kld cannot be combined"), 1;
    return 0;
}

/* Loads a runnable file, or imports anything else into an in-memory model. */
static sq_status load_model(const eval_cli *o, sq_model **m, char *kind, size_t kind_len) {
    if (sq_str_ends_with(o->model, ".sqz")) {
        snprintf(kind, kind_len, "runnable");
        return sq_model_open(m, o->model, !o->no_verify);
    }
    sq_checkpoint c = {0};
    sq_status st = sq_import_any(o->model, o->cli.tokenizer, &c);
    if (st) return st;
    snprintf(kind, kind_len, "%s", sq_store_is_hdf5(o->model) ? "store" : (c.source_format ? c.source_format : "?"));
    st = sq_model_from_tensors(m, &c.cfg, &c.vocab, c.tensors, c.n_tensors, true);
    c.tensors = NULL; /* owned by the model now (also on failure) */
    c.n_tensors = 0;
    sq_checkpoint_free(&c);
    return st;
}

static const char *proto_name(sq_protocol p) { return p == SQ_PROTOCOL_GPTQ ? "gptq" : "llamacpp"; }

int sq_eval_main(int argc, char **argv) {
    eval_cli o;
    int rc = parse(argc, argv, &o);
    if ((rc = sq_cli_begin("squish-eval", rc, o.cli.threads)) >= 0) return rc;

    int code = 1;
    sq_model *m = NULL;
    sq_tokenizer *tok = NULL;
    sq_kld_base *base = NULL;
    char *text = NULL;
    size_t text_len = 0;
    int32_t *ids = NULL;
    int32_t n_ids = 0;
    const int32_t *eval_ids = NULL;
    int64_t n_eval = 0;
    uint8_t sha_raw[32] = {0};
    char sha_hex[65] = "";
    char kind[64];
    FILE *jf = NULL;
    sq_status st;

    if ((st = load_model(&o, &m, kind, sizeof kind))) goto fail;
    if (o.kld) {
        if ((st = sq_kld_base_open(&base, o.kld))) goto fail;
        if (!o.ctx_set) o.e.ctx = sq_kld_base_ctx(base);
        if (o.e.protocol != sq_kld_base_protocol(base)) {
            bool proto_given = false;
            for (int i = 1; i < argc; i++) proto_given |= !strncmp(argv[i], "--protocol", 10);
            if (!proto_given) o.e.protocol = sq_kld_base_protocol(base);
        }
    }
    if (!o.e.ctx) {
        o.e.ctx = o.e.protocol == SQ_PROTOCOL_GPTQ ? 2048 : 512;
        if (o.e.ctx > m->cfg.max_seq_len) {
            o.e.ctx = m->cfg.max_seq_len;
            if (o.e.progress)
                fprintf(stderr, "squish-eval: ctx set to the model's trained context, %d\n", o.e.ctx);
        }
    } else if (o.e.ctx > m->cfg.max_seq_len) {
        fprintf(stderr, "squish-eval: warning: ctx %d is longer than the model's trained context %d\n", o.e.ctx,
                m->cfg.max_seq_len);
    }

    if (o.text) {
        if ((st = sq_read_file(o.text, (size_t)1 << 32, &text, &text_len))) goto fail;
        sq_sha256 h;
        sq_sha256_init(&h);
        sq_sha256_update(&h, text, text_len);
        sq_sha256_final(&h, sha_raw);
        sq_sha256_hex(sha_raw, sha_hex);
        if ((st = sq_tokenizer_init(&tok, m->vocab))) goto fail;
        double t0 = sq_now();
        bool add_bos = m->vocab->add_bos && m->vocab->bos_id >= 0;
        if ((st = sq_tokenizer_encode(tok, text, text_len, add_bos, false, &ids, &n_ids))) goto fail;
        if (o.e.progress)
            fprintf(stderr, "squish-eval: %s: %zu bytes -> %d tokens in %.2f s\n", o.text, text_len, n_ids,
                    sq_now() - t0);
        eval_ids = ids;
        n_eval = n_ids;
    } else {
        eval_ids = sq_kld_base_tokens(base);
        n_eval = (int64_t)sq_kld_base_windows(base) * sq_kld_base_ctx(base);
    }

    sq_eval_result r;
    code = 2;
    if ((st = sq_eval_perplexity(m, eval_ids, n_eval, &o.e, base, o.save, (int32_t)o.top_k,
                                 o.text ? sha_raw : NULL, &r))) {
        if (st == SQ_ERR_ARG || st == SQ_ERR_FORMAT) code = 1;
        goto fail;
    }
    int64_t n_weights, n_bytes;
    sq_model_size(m, &n_weights, &n_bytes);
    double bpw = n_weights ? 8.0 * (double)n_bytes / (double)n_weights : 0;
    uint64_t tok_hash = sq_vocab_hash(m->vocab);
    bool replace_bos = o.e.protocol == SQ_PROTOCOL_LLAMACPP && m->vocab->add_bos && m->vocab->bos_id >= 0;

    printf("ppl = %.4f ± %.4f (protocol=%s, ctx=%d, windows=%lld, scored=%lld, bos=%s, bpw=%.3f, "
           "tokens/s=%.1f, threads=%d, tokenizer=%016llx%s%s)\n",
           r.ppl, r.ppl_err, proto_name(o.e.protocol), o.e.ctx, (long long)r.n_windows, (long long)r.n_scored,
           replace_bos ? "replace-first" : (o.e.protocol == SQ_PROTOCOL_GPTQ ? "text-start" : "none"), bpw,
           r.tokens_per_s, sq_num_threads(), (unsigned long long)tok_hash, o.text ? ", text_sha256=" : "", sha_hex);
    if (r.has_kld) {
        const sq_kld_stats *k = &r.kld;
        printf("kld = %.6f ± %.6f (median %.6f, p90 %.6f, p99 %.6f, p99.9 %.6f, max %.6f), same top-1 = %.3f %%, "
               "ppl_base = %.4f, ppl_ratio = %.5f, rms_dp = %.3f %%\n",
               k->mean, k->err, k->median, k->p90, k->p99, k->p999, k->max, 100.0 * k->same_top1, k->ppl_base,
               exp(k->ln_ppl_ratio), 100.0 * k->rms_dp);
    }
    if (o.save) printf("saved base log-probs (top-%lld) to %s\n", (long long)(o.top_k ? o.top_k : m->cfg.vocab_size),
                       o.save);

    if (o.cli.json) {
        char *tmp = sq_atomic_tmp_name(o.cli.json);
        if (!tmp || !(jf = fopen(tmp, "w"))) {
            free(tmp);
            st = sq_errorf(SQ_ERR_IO, "%s: cannot write", o.cli.json);
            goto fail;
        }
        fprintf(jf, "{\n  \"tool\": \"squish-eval %s\",\n  \"model\": ", sq_version());
        sq_json_string(jf, o.model, strlen(o.model));
        fprintf(jf, ",\n  \"model_kind\": \"%s\",\n  \"n_weights\": %lld,\n  \"tensor_bytes\": %lld,\n"
                    "  \"bits_per_weight\": %.6f,\n", kind, (long long)n_weights, (long long)n_bytes, bpw);
        if (m->file) fprintf(jf, "  \"model_checksum_xxh64\": \"%016llx\",\n", (unsigned long long)sq_sqz_checksum(m->file));
        fprintf(jf, "  \"text\": ");
        if (o.text) sq_json_string(jf, o.text, strlen(o.text));
        else fprintf(jf, "null");
        fprintf(jf, ",\n  \"text_sha256\": %s%s%s,\n", o.text ? "\"" : "", o.text ? sha_hex : "null", o.text ? "\"" : "");
        fprintf(jf, "  \"tokenizer_hash\": \"%016llx\",\n  \"protocol\": \"%s\",\n  \"ctx\": %d,\n  \"bos\": \"%s\",\n",
                (unsigned long long)tok_hash, proto_name(o.e.protocol), o.e.ctx,
                replace_bos ? "replace-first" : (o.e.protocol == SQ_PROTOCOL_GPTQ ? "text-start" : "none"));
        fprintf(jf, "  \"text_tokens\": %lld,\n  \"windows\": %lld,\n  \"scored_tokens\": %lld,\n", (long long)n_eval,
                (long long)r.n_windows, (long long)r.n_scored);
        fprintf(jf, "  \"nll_sum\": %.9f,\n  \"mean_nll\": %.9f,\n  \"ppl\": %.6f,\n  \"ppl_err\": %.6f,\n", r.nll_sum,
                r.nll_sum / (double)r.n_scored, r.ppl, r.ppl_err);
        fprintf(jf, "  \"seconds\": %.3f,\n  \"tokens_per_s\": %.2f,\n  \"threads\": %d,\n  \"kernels\": \"%s\"",
                r.seconds, r.tokens_per_s, sq_num_threads(), sq_kernels_get()->name);
        if (r.has_kld) {
            const sq_kld_stats *k = &r.kld;
            fprintf(jf, ",\n  \"kld\": {\"base\": ");
            sq_json_string(jf, o.kld, strlen(o.kld));
            fprintf(jf, ", \"mean\": %.9f, \"err\": %.9f, \"median\": %.9f, \"p90\": %.9f, \"p99\": %.9f, "
                        "\"p999\": %.9f, \"max\": %.9f, \"same_top1\": %.6f, \"ppl_base\": %.6f, \"ppl_ratio\": %.6f, "
                        "\"ln_ppl_ratio\": %.9f, \"rms_dp\": %.9f}",
                    k->mean, k->err, k->median, k->p90, k->p99, k->p999, k->max, k->same_top1, k->ppl_base,
                    exp(k->ln_ppl_ratio), k->ln_ppl_ratio, k->rms_dp);
        }
        if (o.save) {
            fprintf(jf, ",\n  \"saved_logits\": ");
            sq_json_string(jf, o.save, strlen(o.save));
        }
        fprintf(jf, "\n}\n");
        int bad = fclose(jf) != 0;
        jf = NULL;
        if (bad || (st = sq_atomic_rename(tmp, o.cli.json))) {
            if (bad) st = sq_errorf(SQ_ERR_IO, "%s: write failed", o.cli.json);
            free(tmp);
            goto fail;
        }
        free(tmp);
    }
    code = 0;
    goto done;
fail:
    fprintf(stderr, "squish-eval: %s\n", sq_last_error());
done:
    if (jf) fclose(jf);
    free(text);
    free(ids);
    sq_kld_base_close(base);
    sq_tokenizer_free(tok);
    sq_model_free(m);
    return code;
}
