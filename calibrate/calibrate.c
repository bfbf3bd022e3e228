/* calibrate.c - squish-calibrate: runs calibration windows through the runtime's forward
 * pass and stores, per distinct linear input, X^T X in double, sum |x|, sum x^2 and the
 * token count in calib.h5 (docs/quantization.md) for squish-quantize; optionally exports
 * llama.cpp's legacy imatrix .dat (FORMATS.md 6.6). Windows follow ALGORITHMS.md 9: text
 * is tokenized once, jsonl documents alone (GPTQ's C4 loader), windows drawn with
 * splitmix64 from --seed and recorded. The file is byte-identical at any -t (the thread
 * count is left out of the recorded command line). The work is in core/calib*.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/calib.h"
#include "../core/util.h"
#include "../core/cli.h"
#include "../runtime/sqz.h"
#include "../tools/tools.h"

#define DEFAULT_SAMPLES 128
#define DEFAULT_SEQ_LEN 2048

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: squish-calibrate MODEL --data FILE -o CALIB.h5 [options]\n"
            "       squish-calibrate imatrix CALIB.h5 -o IMATRIX.dat\n"
            "       squish-calibrate info CALIB.h5 [--json]\n"
            "\n"
            "Runs calibration windows through the forward pass squish-run uses and stores, for every\n"
            "distinct linear input (q/k/v share one, gate/up share one, o, down), X^T X in double, sum |x|,\n"
            "sum x^2 and the token count, for squish-quantize. MODEL is a model store (.h5), a runnable\n"
            "file (.sqz) or any checkpoint squish-convert can import; its SHA-256 is recorded and\n"
            "squish-quantize refuses a calibration made for another model.\n"
            "\n"
            "options:\n"
            "      --data FILE          calibration data: plain text, or jsonl (one JSON object per line)\n"
            "      --format F           text (default; the file is tokenized once, BOS first) or jsonl (each\n"
            "                           line's --field is tokenized alone, BOS first); default jsonl when\n"
            "                           FILE ends in .jsonl\n"
            "      --field NAME         jsonl member holding the text (default \"text\")\n"
            "      --samples N          number of windows (default %d)\n"
            "      --seq-len L          tokens per window (default %d, or the model's context if shorter)\n"
            "      --seed S             seed of the window sampler (default 0)\n"
            "  -o, --output FILE        calib.h5 to write (atomically)\n"
            "      --imatrix-out FILE   also write llama.cpp's legacy imatrix .dat (llama-quantize --imatrix)\n"
            "      --json FILE          write a summary as JSON (info: print JSON)\n"
            "  -t, --threads N          threads (default: all cores or OMP_NUM_THREADS; the result does not\n"
            "                           depend on it)\n"
            "      --tokenizer PATH     tokenizer.bin for a llama2.c checkpoint\n"
            "  -q, --quiet              no progress output\n"
            "  -h, --help               this help\n"
            "\n"
            "examples:\n"
            "  squish-calibrate stories.h5 --data ../shared/data/tinystories/calib.txt --samples 16 \\\n"
            "      --seq-len 256 --seed 0 -o stories-calib.h5\n"
            "  squish-calibrate model.h5 --data c4.jsonl --samples 128 --seq-len 2048 -o calib.h5 \\\n"
            "      --imatrix-out imatrix.dat\n"
            "  squish-calibrate imatrix calib.h5 -o imatrix.dat\n"
            "  squish-calibrate info calib.h5\n",
            DEFAULT_SAMPLES, DEFAULT_SEQ_LEN);
}

typedef struct {
    const char *cmd; /* NULL (calibrate), "imatrix", "info" */
    sq_cli_common cli; /* -t, --json FILE, --tokenizer, -q */
    const char *model, *data, *field, *out, *imatrix;
    bool format_set, seq_len_set, json_flag;
    sq_calib_format format;
    int64_t samples, seq_len;
    uint64_t seed;
} cal_cli;

static sq_status parse_seed(const char *opt, const char *s, uint64_t *out) {
    char *end;
    if (!*s || *s == '-') return sq_errorf(SQ_ERR_ARG, "%s: expected an integer from 0 to 2^64-1, got '%s'", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || (v == ~0ull && strcmp(s, "18446744073709551615") != 0))
        return sq_errorf(SQ_ERR_ARG, "%s: expected an integer from 0 to 2^64-1, got '%s'", opt, s);
    *out = v;
    return SQ_OK;
}

static int parse(int argc, char **argv, cal_cli *o) {
    memset(o, 0, sizeof *o);
    o->samples = DEFAULT_SAMPLES;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        sq_status st = SQ_OK;
        if (sq_cli_help(a, usage)) return -1;
        if (sq_cli_is(a, NULL, "--data")) {
            SQ_CLI_VALUE(v);
            o->data = v;
        } else if (sq_cli_is(a, NULL, "--format")) {
            SQ_CLI_VALUE(v);
            st = sq_calib_format_from_name(v, &o->format);
            o->format_set = true;
        } else if (sq_cli_is(a, NULL, "--field")) {
            SQ_CLI_VALUE(v);
            if (!*v) st = sq_errorf(SQ_ERR_ARG, "--field: empty member name");
            o->field = v;
        } else if (sq_cli_is(a, NULL, "--samples")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 1, 1 << 24, &o->samples);
        } else if (sq_cli_is(a, NULL, "--seq-len")) {
            SQ_CLI_VALUE(v);
            st = sq_cli_int(a, v, 1, 1 << 24, &o->seq_len);
            o->seq_len_set = true;
        } else if (sq_cli_is(a, NULL, "--seed")) {
            SQ_CLI_VALUE(v);
            st = parse_seed(a, v, &o->seed);
        } else if (sq_cli_is(a, "-o", "--output")) {
            SQ_CLI_VALUE(v);
            o->out = v;
        } else if (sq_cli_is(a, NULL, "--imatrix-out")) {
            SQ_CLI_VALUE(v);
            o->imatrix = v;
        } else if (sq_cli_is(a, NULL, "--json")) {
            /* info --json prints JSON; otherwise --json FILE */
            if (o->cmd && !strcmp(o->cmd, "info") && !strchr(a, '=')) {
                o->json_flag = true;
            } else {
                SQ_CLI_VALUE(v);
                o->cli.json = v;
            }
        } else if (!o->cmd && !o->model && (!strcmp(a, "imatrix") || !strcmp(a, "info"))) {
            o->cmd = a;
        } else if (!sq_cli_common_opt(argc, argv, &i, SQ_CLI_THREADS | SQ_CLI_TOKENIZER | SQ_CLI_QUIET, &o->cli, &st)) {
            st = sq_cli_positional(a, &o->model, "squish-calibrate", "");
        }
        if (st) return 1;
    }
    if (o->cmd) {
        if (!o->model) return sq_errorf(SQ_ERR_ARG, "%s: give a calib.h5 (see squish-calibrate --help)", o->cmd), 1;
        if (!strcmp(o->cmd, "imatrix") && !o->out)
            return sq_errorf(SQ_ERR_ARG, "imatrix: give the output file with -o IMATRIX.dat"), 1;
        return 0;
    }
    if (!o->model) return sq_errorf(SQ_ERR_ARG, "no model given (see squish-calibrate --help)"), 1;
    if (!o->data) return sq_errorf(SQ_ERR_ARG, "no calibration data: add --data FILE"), 1;
    if (!o->out) return sq_errorf(SQ_ERR_ARG, "no output given: add -o CALIB.h5"), 1;
    if (!o->format_set) o->format = sq_str_ends_with(o->data, ".jsonl") ? SQ_CALIB_JSONL : SQ_CALIB_TEXT;
    if (o->field && o->format != SQ_CALIB_JSONL) return sq_errorf(SQ_ERR_ARG, "--field only applies to --format jsonl"), 1;
    return 0;
}

/* ===== Progress ===== */

typedef struct {
    bool quiet, tty;
    double t0;
    int32_t seq_len;
    const sq_calib_window *w;
} progress_ctx;

static void progress(void *user, int64_t done, int64_t total) {
    progress_ctx *p = user;
    if (p->quiet) return;
    const double el = sq_now() - p->t0, eta = el / (double)done * (double)(total - done);
    const double tps = el > 0 ? (double)done * p->seq_len / el : 0;
    if (p->tty)
        fprintf(stderr, "\r[%lld/%lld] %.0f tok/s  ETA %.0f s   %s", (long long)done, (long long)total, tps, eta,
                done == total ? "\n" : "");
    else
        fprintf(stderr, "[%lld/%lld] window (doc %lld, offset %lld)  %.0f tok/s  ETA %.0f s\n", (long long)done,
                (long long)total, (long long)p->w[done - 1].doc, (long long)p->w[done - 1].offset, tps, eta);
}

/* ===== Loading the model ===== */

static sq_status load_model(const cal_cli *o, sq_model **m, char hex[65]) {
    if (sq_str_ends_with(o->model, ".sqz")) {
        sq_status st = sq_model_open(m, o->model, true);
        return st ? st : sq_calib_model_sha256(o->model, NULL, hex);
    }
    sq_checkpoint c = {0};
    sq_status st = sq_import_any(o->model, o->cli.tokenizer, &c);
    if (st) return st;
    if ((st = sq_calib_model_sha256(o->model, &c, hex)) == SQ_OK) {
        st = sq_model_from_tensors(m, &c.cfg, &c.vocab, c.tensors, c.n_tensors, true);
        c.tensors = NULL; /* owned by the model now (also on failure) */
        c.n_tensors = 0;
    }
    sq_checkpoint_free(&c);
    return st;
}

/* ===== Subcommands: info, imatrix ===== */

static int run_info(const cal_cli *o) {
    sq_calib c;
    if (sq_calib_read(o->model, &c)) {
        fprintf(stderr, "squish-calibrate: %s\n", sq_last_error());
        return 1;
    }
    if (o->json_flag) {
        printf("{\n  \"file\": ");
        sq_json_string(stdout, o->model, strlen(o->model));
        printf(",\n  \"model_sha256\": \"%s\",\n  \"data_path\": ", c.model_sha256);
        sq_json_string(stdout, c.data_path, strlen(c.data_path));
        printf(",\n  \"data_sha256\": \"%s\",\n  \"data_format\": \"%s\",\n  \"n_samples\": %lld,\n  \"seq_len\": %d,\n"
               "  \"seed\": %llu,\n  \"n_tokens\": %lld,\n  \"n_layers\": %d,\n  \"entries\": [",
               c.data_sha256, sq_calib_format_name(c.data_format), (long long)c.n_samples, c.seq_len,
               (unsigned long long)c.seed, (long long)c.n_tokens, c.n_layers);
        for (int32_t i = 0; i < c.n_entries; i++) {
            const sq_calib_entry *e = &c.entries[i];
            double tr = 0;
            for (int32_t j = 0; j < e->width; j++) tr += e->sq_sum[j];
            printf("%s\n    {\"name\": \"%s\", \"users\": \"%s\", \"width\": %d, \"n_tokens\": %lld, "
                   "\"mean_sq\": %.9g}", i ? "," : "", e->name, e->users, e->width, (long long)e->n_tokens,
                   tr / (double)e->width / (double)e->n_tokens);
        }
        printf("\n  ]\n}\n");
    } else {
        printf("model_sha256   %s\ndata           %s (%s, sha256 %s)\n", c.model_sha256, c.data_path,
               sq_calib_format_name(c.data_format), c.data_sha256);
        printf("windows        %lld x %d tokens, seed %llu (data: %lld tokens)\n", (long long)c.n_samples, c.seq_len,
               (unsigned long long)c.seed, (long long)c.n_tokens);
        printf("made by        %s: %s\n", c.tool_version ? c.tool_version : "?", c.command_line ? c.command_line : "?");
        printf("%-40s %-22s %7s %12s %12s\n", "input", "read by", "width", "tokens", "mean x^2");
        for (int32_t i = 0; i < c.n_entries; i++) {
            const sq_calib_entry *e = &c.entries[i];
            double tr = 0;
            for (int32_t j = 0; j < e->width; j++) tr += e->sq_sum[j];
            printf("%-40s %-22s %7d %12lld %12.6g\n", e->name, e->users, e->width, (long long)e->n_tokens,
                   tr / (double)e->width / (double)e->n_tokens);
        }
    }
    sq_calib_free(&c);
    return 0;
}

static int run_imatrix(const cal_cli *o) {
    sq_calib c;
    sq_status st;
    if ((st = sq_check_out_path(o->out, "output")) || (st = sq_calib_read(o->model, &c))) {
        fprintf(stderr, "squish-calibrate: %s\n", sq_last_error());
        return 1;
    }
    st = sq_calib_write_imatrix(o->out, &c);
    if (st == SQ_OK)
        printf("%s: imatrix for %d tensors (%lld windows x %d tokens) from %s\n", o->out, c.n_layers * 7,
               (long long)c.n_samples, c.seq_len, o->model);
    else
        fprintf(stderr, "squish-calibrate: %s\n", sq_last_error());
    sq_calib_free(&c);
    return st ? 2 : 0;
}

/* ===== Calibration ===== */

static sq_status write_json(const cal_cli *o, const sq_calib *c, const sq_calib_data *d, double seconds) {
    sq_atomic_file f;
    sq_status st = sq_atomic_open(&f, o->cli.json);
    if (st) return st;
    FILE *fp = f.fp;
    fprintf(fp, "{\n  \"tool\": \"squish-calibrate %s\",\n  \"output\": ", sq_version());
    sq_json_string(fp, o->out, strlen(o->out));
    fprintf(fp, ",\n  \"model\": ");
    sq_json_string(fp, o->model, strlen(o->model));
    fprintf(fp, ",\n  \"model_sha256\": \"%s\",\n  \"data\": ", c->model_sha256);
    sq_json_string(fp, o->data, strlen(o->data));
    fprintf(fp, ",\n  \"data_sha256\": \"%s\",\n  \"data_format\": \"%s\",\n  \"data_documents\": %lld,\n"
                "  \"data_tokens\": %lld,\n  \"n_samples\": %lld,\n  \"seq_len\": %d,\n  \"seed\": %llu,\n"
                "  \"calibration_tokens\": %lld,\n  \"n_layers\": %d,\n  \"n_inputs\": %d,\n  \"seconds\": %.3f,\n"
                "  \"tokens_per_s\": %.1f,\n  \"threads\": %d",
            c->data_sha256, sq_calib_format_name(c->data_format), (long long)d->n_docs, (long long)d->n_tokens,
            (long long)c->n_samples, c->seq_len, (unsigned long long)c->seed, (long long)(c->n_samples * c->seq_len),
            c->n_layers, c->n_entries, seconds, seconds > 0 ? (double)(c->n_samples * c->seq_len) / seconds : 0.0,
            sq_num_threads());
    if (o->imatrix) {
        fprintf(fp, ",\n  \"imatrix\": ");
        sq_json_string(fp, o->imatrix, strlen(o->imatrix));
    }
    fprintf(fp, "\n}\n");
    return sq_json_finish(&f, o->cli.json);
}

int sq_calibrate_main(int argc, char **argv) {
    cal_cli o;
    int rc = parse(argc, argv, &o);
    if ((rc = sq_cli_begin("squish-calibrate", rc, o.cli.threads)) >= 0) return rc;
    if (o.cmd && !strcmp(o.cmd, "info")) return run_info(&o);
    if (o.cmd) return run_imatrix(&o);

    int code = 1; /* input errors until the data is loaded, then runtime failures */
    sq_model *m = NULL;
    sq_tokenizer *tok = NULL;
    sq_calib_data d = {0};
    sq_calib c = {0};
    char model_hex[65];
    sq_status st;

    if ((st = sq_check_out_path(o.out, "output")) || (o.imatrix && (st = sq_check_out_path(o.imatrix, "--imatrix-out"))) ||
        (o.cli.json && (st = sq_check_out_path(o.cli.json, "--json"))))
        goto fail;
    if (!sq_file_exists(o.data) || sq_is_dir(o.data)) {
        st = sq_errorf(SQ_ERR_IO, "%s: no such file (--data)", o.data);
        goto fail;
    }
    double t_load = sq_now();
    if ((st = load_model(&o, &m, model_hex))) goto fail;
    const int32_t max_ctx = m->cfg.max_seq_len;
    if (!o.seq_len_set) {
        o.seq_len = DEFAULT_SEQ_LEN < max_ctx ? DEFAULT_SEQ_LEN : max_ctx;
    } else if (o.seq_len > max_ctx) {
        st = sq_errorf(SQ_ERR_ARG, "--seq-len %lld is longer than the model's context of %d tokens (use --seq-len %d "
                                   "or less)", (long long)o.seq_len, max_ctx, max_ctx);
        goto fail;
    }
    const int32_t L = (int32_t)o.seq_len;
    if ((st = sq_tokenizer_init(&tok, m->vocab))) goto fail;
    const bool add_bos = m->vocab->add_bos && m->vocab->bos_id >= 0;
    if ((st = sq_calib_data_load(&d, o.data, o.format, o.field, tok, add_bos))) goto fail;
    if (!o.cli.quiet)
        fprintf(stderr, "squish-calibrate: %s: %llu bytes -> %lld documents, %lld tokens (model and data loaded in %.2f s)\n",
                o.data, (unsigned long long)d.n_bytes, (long long)d.n_docs, (long long)d.n_tokens, sq_now() - t_load);

    if ((st = sq_calib_init(&c, &m->cfg))) {
        code = 2;
        goto fail;
    }
    memcpy(c.model_sha256, model_hex, sizeof model_hex);
    memcpy(c.data_sha256, d.sha256, sizeof d.sha256);
    c.data_format = o.format;
    c.n_samples = o.samples;
    c.seq_len = L;
    c.seed = o.seed;
    c.n_tokens = d.n_tokens;
    char tool[64];
    snprintf(tool, sizeof tool, "squish %s", sq_version());
    c.data_path = sq_strdup(o.data);
    c.data_field = o.format == SQ_CALIB_JSONL ? sq_strdup(o.field ? o.field : "text") : NULL;
    c.tool_version = sq_strdup(tool);
    c.command_line = sq_command_line("squish-calibrate", argc, argv);
    c.windows = malloc((size_t)o.samples * sizeof *c.windows);
    if (!c.data_path || (o.format == SQ_CALIB_JSONL && !c.data_field) || !c.tool_version || !c.command_line ||
        !c.windows) {
        st = sq_errorf(SQ_ERR_OOM, "out of memory");
        code = 2;
        goto fail;
    }
    if ((st = sq_calib_windows_draw(&d, o.data, o.samples, L, o.seed, c.windows))) goto fail;

    code = 2;
    progress_ctx pc = {o.cli.quiet, isatty(2) != 0, sq_now(), L, c.windows};
    if (!o.cli.quiet)
        fprintf(stderr, "squish-calibrate: %lld windows x %d tokens, %d layers, %d threads\n", (long long)o.samples, L,
                m->cfg.n_layers, sq_num_threads());
    if ((st = sq_calib_collect(&c, m, &d, c.windows, o.samples, L, progress, &pc))) goto fail;
    const double seconds = sq_now() - pc.t0;
    if ((st = sq_calib_write(o.out, &c))) goto fail;
    if (o.imatrix && (st = sq_calib_write_imatrix(o.imatrix, &c))) goto fail;
    if (o.cli.json && (st = write_json(&o, &c, &d, seconds))) goto fail;

    const long long n_tok = (long long)o.samples * L;
    printf("%s: %lld windows x %d tokens = %lld tokens from %s (%s, %lld tokens, seed %llu); %d inputs in %d layers; "
           "%.2f s (%.0f tok/s, %d threads); model_sha256=%s%s%s\n",
           o.out, (long long)o.samples, L, n_tok, o.data, sq_calib_format_name(o.format), (long long)d.n_tokens,
           (unsigned long long)o.seed, c.n_entries, c.n_layers, seconds, seconds > 0 ? (double)n_tok / seconds : 0.0,
           sq_num_threads(), model_hex, o.imatrix ? "; imatrix " : "", o.imatrix ? o.imatrix : "");
    code = 0;
    goto done;
fail:
    code = sq_cli_fail("squish-calibrate", st, code);
done:
    sq_calib_free(&c);
    sq_calib_data_free(&d);
    sq_tokenizer_free(tok);
    sq_model_free(m);
    return code;
}
