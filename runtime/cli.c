/* cli.c - option-value parsing, the options and start every tool shares, a monotonic clock
 * and JSON string escaping (cli.h). */
#include "cli.h"

#include "kernels.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

sq_status sq_cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return sq_errorf(SQ_ERR_ARG, "%s: expected an integer from %lld to %lld, got '%s'", opt, (long long)lo,
                         (long long)hi, s);
    *out = v;
    return SQ_OK;
}

sq_status sq_cli_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return sq_errorf(SQ_ERR_ARG, "%s: expected a number from %g to %g, got '%s'", opt, lo, hi, s);
    *out = v;
    return SQ_OK;
}

bool sq_cli_is(const char *arg, const char *a, const char *b) {
    size_t n;
    if (a) {
        n = strlen(a);
        if (strncmp(arg, a, n) == 0 && (arg[n] == '\0' || (arg[n] == '=' && a[1] == '-'))) return true;
    }
    if (b) {
        n = strlen(b);
        if (strncmp(arg, b, n) == 0 && (arg[n] == '\0' || (arg[n] == '=' && b[1] == '-'))) return true;
    }
    return false;
}

const char *sq_cli_value(int argc, char **argv, int *i) {
    const char *eq = strchr(argv[*i], '=');
    if (eq && argv[*i][0] == '-' && argv[*i][1] == '-') return eq + 1;
    if (*i + 1 >= argc) {
        sq_errorf(SQ_ERR_ARG, "%s: missing value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool sq_cli_help(const char *arg, void (*usage)(FILE *)) {
    if (!sq_cli_is(arg, "-h", "--help")) return false;
    usage(stdout);
    return true;
}

bool sq_cli_common_opt(int argc, char **argv, int *i, unsigned which, sq_cli_common *c, sq_status *st) {
    const char *a = argv[*i], *v = NULL;
    const bool threads = (which & SQ_CLI_THREADS) && sq_cli_is(a, "-t", "--threads");
    const bool json = (which & SQ_CLI_JSON) && sq_cli_is(a, NULL, "--json");
    const bool tokenizer = (which & SQ_CLI_TOKENIZER) && sq_cli_is(a, NULL, "--tokenizer");
    const bool quiet = (which & SQ_CLI_QUIET) && sq_cli_is(a, "-q", "--quiet");
    *st = SQ_OK;
    if (!threads && !json && !tokenizer && !quiet) return false;
    if (!quiet && !(v = sq_cli_value(argc, argv, i))) {
        *st = SQ_ERR_ARG;
        return true;
    }
    if (threads) *st = sq_cli_int(a, v, 1, 1024, &c->threads);
    else if (json) c->json = v;
    else if (tokenizer) c->tokenizer = v;
    else c->quiet = true;
    return true;
}

sq_status sq_cli_positional(const char *a, const char **slot, const char *tool, const char *extra) {
    if (a[0] == '-' && a[1]) return sq_errorf(SQ_ERR_ARG, "unknown option '%s' (see %s --help)", a, tool);
    if (*slot) return sq_errorf(SQ_ERR_ARG, "unexpected argument '%s'%s", a, extra);
    *slot = a;
    return SQ_OK;
}

int sq_cli_begin(const char *tool, int rc, int64_t threads) {
    if (rc < 0) return 0;
    if (rc > 0) {
        fprintf(stderr, "%s: %s\n", tool, sq_last_error());
        return 1;
    }
    if (threads) sq_set_num_threads((int)threads);
    return -1;
}

int sq_cli_fail(const char *tool, sq_status st, int code) {
    fprintf(stderr, "%s: %s\n", tool, sq_last_error());
    return st == SQ_ERR_OOM || st == SQ_ERR_INTERNAL ? 2 : code;
}

double sq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sq_json_string(FILE *fp, const char *s, size_t len) {
    fputc('"', fp);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", fp); break;
        case '\\': fputs("\\\\", fp); break;
        case '\n': fputs("\\n", fp); break;
        case '\r': fputs("\\r", fp); break;
        case '\t': fputs("\\t", fp); break;
        default:
            if (c < 0x20) fprintf(fp, "\\u%04x", c);
            else fputc(c, fp);
        }
    }
    fputc('"', fp);
}
