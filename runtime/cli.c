/* cli.c - option-value parsing, a monotonic clock and JSON string escaping (cli.h). */
#include "cli.h"

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
