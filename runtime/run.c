/* run.c - squish-run: generate text from a runnable file (.sqz) with the runtime alone.
 *
 * Encodes the prompt (BOS first when the tokenizer adds one), runs it through the
 * forward pass in one batch, then decodes one token at a time with the KV cache,
 * streaming text to stdout as it is produced. Prompt and generation speeds go to stderr
 * (and to --json). Greedy with --temp 0. Stops at EOS, after -n tokens or when the
 * context is full.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run.h"
#include "cli.h"
#include "fileio.h"
#include "kernels.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: squish-run MODEL.sqz [options]\n"
            "\n"
            "Generates text with a squish runnable file.\n"
            "\n"
            "options:\n"
            "  -p, --prompt TEXT     prompt (default: empty, i.e. start from BOS)\n"
            "  -f, --file PATH       read the prompt from a file\n"
            "  -n, --n-predict N     tokens to generate (default 256)\n"
            "      --temp T          temperature; 0 = greedy (default 0.8)\n"
            "      --top-p P         nucleus sampling threshold (default 0.9; 1 = off)\n"
            "      --top-k K         keep the K most likely tokens (default 0 = off)\n"
            "      --seed S          random seed (default: from the clock, printed on stderr)\n"
            "  -t, --threads N       threads (default: all cores or OMP_NUM_THREADS)\n"
            "  -c, --ctx N           context length (default: the model's trained context)\n"
            "      --no-bos          do not prepend BOS to the prompt\n"
            "      --ignore-eos      keep generating after EOS (for speed measurements)\n"
            "      --no-verify       skip the file checksum check at load\n"
            "      --ids             print token ids instead of text\n"
            "      --json PATH       write a JSON summary (text, ids, speeds) to PATH\n"
            "  -q, --quiet           no speed report on stderr\n"
            "  -h, --help            this help\n"
            "\n"
            "examples:\n"
            "  squish-run stories.sqz -p \"Once upon a time\" -n 256\n"
            "  squish-run stories.sqz --temp 0 -n 100          # greedy from BOS\n"
            "  squish-run model.sqz -f prompt.txt --temp 0.7 --top-p 0.95 --seed 1 -t 2\n");
}

typedef struct {
    sq_cli_common cli; /* -t, --json, -q */
    const char *model, *prompt, *prompt_file;
    int64_t n_predict, top_k, ctx;
    double temp, top_p;
    uint64_t seed;
    bool seed_set, no_bos, no_verify, ids, ignore_eos;
} run_opts;

static int parse(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 256;
    o->temp = 0.8;
    o->top_p = 0.9;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t iv;
        double dv;
        sq_status st = SQ_OK;
        if (sq_cli_help(a, usage)) return -1;
        if (sq_cli_is(a, "-p", "--prompt")) {
            SQ_CLI_VALUE(v);
            o->prompt = v;
        } else if (sq_cli_is(a, "-f", "--file")) {
            SQ_CLI_VALUE(v);
            o->prompt_file = v;
        } else if (sq_cli_is(a, "-n", "--n-predict")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 0, 1 << 30, &o->n_predict);
        } else if (sq_cli_is(a, NULL, "--temp")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_float(a, v, 0, 100, &o->temp);
        } else if (sq_cli_is(a, NULL, "--top-p")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_float(a, v, 0, 1, &o->top_p);
        } else if (sq_cli_is(a, NULL, "--top-k")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 0, 1 << 30, &o->top_k);
        } else if (sq_cli_is(a, NULL, "--seed")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 0, INT64_MAX, &iv);
            o->seed = (uint64_t)iv;
            o->seed_set = true;
        } else if (sq_cli_is(a, "-c", "--ctx")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 1, 1 << 24, &o->ctx);
        } else if (sq_cli_is(a, NULL, "--no-bos")) {
            o->no_bos = true;
        } else if (sq_cli_is(a, NULL, "--ignore-eos")) {
            o->ignore_eos = true;
        } else if (sq_cli_is(a, NULL, "--no-verify")) {
            o->no_verify = true;
        } else if (sq_cli_is(a, NULL, "--ids")) {
            o->ids = true;
        } else if (!sq_cli_common_opt(argc, argv, &i, SQ_CLI_THREADS | SQ_CLI_JSON | SQ_CLI_QUIET, &o->cli, &st)) {
            st = sq_cli_positional(a, &o->model, "squish-run", " (one model file only)");
        }
        (void)dv;
        if (st) return 1;
    }
    if (!o->model) {
        sq_errorf(SQ_ERR_ARG, "no model given (usage: squish-run MODEL.sqz -p \"prompt\" -n 256; see --help)");
        return 1;
    }
    if (o->prompt && o->prompt_file) {
        sq_errorf(SQ_ERR_ARG, "give either --prompt or --file, not both");
        return 1;
    }
    return 0;
}


int sq_run_main(int argc, char **argv) {
    run_opts o;
    int rc = parse(argc, argv, &o);
    if ((rc = sq_cli_begin("squish-run", rc, o.cli.threads)) >= 0) return rc;

    int code = 2;
    sq_model *m = NULL;
    sq_tokenizer *tok = NULL;
    sq_state *s = NULL;
    sq_sampler smp = {0};
    int32_t *ids = NULL, *all = NULL;
    char *prompt_buf = NULL, *out_text = NULL;
    size_t out_len = 0, out_cap = 0;
    float *logits = NULL;
    FILE *jf = NULL;
    sq_status st;

    double t0 = sq_now();
    if ((st = sq_model_open(&m, o.model, !o.no_verify))) {
        code = (st == SQ_ERR_IO || st == SQ_ERR_FORMAT || st == SQ_ERR_CHECKSUM || st == SQ_ERR_UNSUPPORTED) ? 1 : 2;
        goto fail;
    }
    if ((st = sq_tokenizer_init(&tok, m->vocab))) goto fail;
    double t_load = sq_now() - t0;

    const char *ptext = o.prompt ? o.prompt : "";
    size_t plen = strlen(ptext);
    if (o.prompt_file) {
        if ((st = sq_read_file(o.prompt_file, (size_t)1 << 30, &prompt_buf, &plen))) {
            code = 1;
            goto fail;
        }
        ptext = prompt_buf;
    }
    int32_t n_ids = 0;
    bool add_bos = !o.no_bos && m->vocab->bos_id >= 0 && (m->vocab->add_bos || m->vocab->kind == SQ_VOCAB_SPM);
    if ((st = sq_tokenizer_encode(tok, ptext, plen, add_bos, false, &ids, &n_ids))) goto fail;
    if (n_ids == 0) {
        st = sq_errorf(SQ_ERR_ARG, "the prompt is empty and the tokenizer has no BOS token to start from");
        code = 1;
        goto fail;
    }
    const int32_t vocab = m->cfg.vocab_size;
    int64_t ctx = o.ctx ? o.ctx : m->cfg.max_seq_len;
    if (n_ids >= ctx) {
        st = sq_errorf(SQ_ERR_ARG, "the prompt has %d tokens but the context is %lld (use --ctx)", n_ids,
                       (long long)ctx);
        code = 1;
        goto fail;
    }
    int64_t want = (int64_t)n_ids + o.n_predict;
    if (want > ctx) {
        if (!o.cli.quiet)
            fprintf(stderr, "squish-run: generating %lld tokens, not %lld: the context is %lld tokens\n",
                    (long long)(ctx - n_ids), (long long)o.n_predict, (long long)ctx);
        want = ctx;
    }
    if ((st = sq_state_init(&s, m, (int32_t)want, 512))) goto fail;
    if (!o.seed_set) o.seed = (uint64_t)time(NULL);
    if (sq_sampler_init(&smp, vocab, (float)o.temp, (float)o.top_p, (int32_t)o.top_k, o.seed)) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    logits = malloc((size_t)vocab * sizeof(float));
    all = malloc((size_t)want * sizeof(int32_t));
    if (!logits || !all) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        goto fail;
    }
    memcpy(all, ids, (size_t)n_ids * sizeof(int32_t));
    int32_t n_all = n_ids;

    if (o.ids) {
        for (int32_t i = 0; i < n_ids; i++) printf("%d ", ids[i]);
    } else {
        fwrite(ptext, 1, plen, stdout);
    }
    fflush(stdout);

    double tp0 = sq_now();
    if ((st = sq_forward(s, ids, n_ids, n_ids - 1, logits))) goto fail;
    double t_prompt = sq_now() - tp0;

    double tg0 = sq_now();
    int32_t n_gen = 0;
    while (n_all < want) {
        int32_t next = sq_sampler_sample(&smp, logits);
        if (!o.ignore_eos && (next == m->vocab->eos_id || (next == m->vocab->bos_id && m->vocab->bos_id >= 0))) break;
        all[n_all++] = next;
        n_gen++;
        char piece[SQ_TOKEN_MAX_BYTES];
        int len = sq_tokenizer_decode_piece(tok, all[n_all - 2], next, piece, sizeof piece);
        if (len < 0) len = 0;
        if (o.ids) {
            printf("%d ", next);
        } else {
            fwrite(piece, 1, (size_t)len, stdout);
        }
        fflush(stdout);
        if (o.cli.json) {
            if (out_len + (size_t)len + 1 > out_cap) {
                out_cap = (out_cap + (size_t)len + 1) * 2;
                char *nb = realloc(out_text, out_cap);
                if (!nb) {
                    st = sq_errorf(SQ_ERR_OOM, "out of memory");
                    goto fail;
                }
                out_text = nb;
            }
            memcpy(out_text + out_len, piece, (size_t)len);
            out_len += (size_t)len;
        }
        if (n_all >= want) break;
        if ((st = sq_forward(s, &next, 1, 0, logits))) goto fail;
    }
    double t_gen = sq_now() - tg0;
    printf("\n");
    fflush(stdout);

    double pps = t_prompt > 0 ? n_ids / t_prompt : 0, gps = t_gen > 0 ? n_gen / t_gen : 0;
    if (!o.cli.quiet)
        fprintf(stderr,
                "squish-run: load %.3f s | prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | "
                "%d threads, %s kernels, seed %llu\n",
                t_load, n_ids, pps, n_gen, gps, sq_num_threads(), sq_kernels_get()->name,
                (unsigned long long)o.seed);
    if (o.cli.json) {
        jf = fopen(o.cli.json, "w");
        if (!jf) {
            st = sq_errorf(SQ_ERR_IO, "%s: cannot write the JSON summary", o.cli.json);
            goto fail;
        }
        fprintf(jf, "{\n  \"model\": ");
        sq_json_string(jf, o.model, strlen(o.model));
        fprintf(jf, ",\n  \"prompt_tokens\": %d,\n  \"generated_tokens\": %d,\n", n_ids, n_gen);
        fprintf(jf, "  \"prompt_tokens_per_s\": %.3f,\n  \"generation_tokens_per_s\": %.3f,\n", pps, gps);
        fprintf(jf, "  \"load_s\": %.4f,\n  \"threads\": %d,\n  \"kernels\": \"%s\",\n", t_load, sq_num_threads(),
                sq_kernels_get()->name);
        fprintf(jf, "  \"temperature\": %g,\n  \"top_p\": %g,\n  \"top_k\": %lld,\n  \"seed\": %llu,\n", o.temp,
                o.top_p, (long long)o.top_k, (unsigned long long)o.seed);
        fprintf(jf, "  \"ids\": [");
        for (int32_t i = 0; i < n_all; i++) fprintf(jf, "%s%d", i ? ", " : "", all[i]);
        fprintf(jf, "],\n  \"text\": ");
        sq_json_string(jf, out_text ? out_text : "", out_len);
        fprintf(jf, "\n}\n");
        if (fclose(jf) != 0) {
            jf = NULL;
            st = sq_errorf(SQ_ERR_IO, "%s: write failed", o.cli.json);
            goto fail;
        }
        jf = NULL;
    }
    code = 0;
    goto done;
fail:
    fprintf(stderr, "squish-run: %s\n", sq_last_error());
done:
    if (jf) fclose(jf);
    free(out_text);
    free(logits);
    free(all);
    free(ids);
    free(prompt_buf);
    sq_sampler_free(&smp);
    sq_state_free(s);
    sq_tokenizer_free(tok);
    sq_model_free(m);
    return code;
}
