/* cli.h - small helpers every squish command-line tool shares: strict number parsing
 * for option values (a bad value is a usage error naming the option), the options all
 * tools spell alike (-t, --json, --tokenizer, -q), unknown options and positional
 * arguments, the start of a tool's main, a monotonic clock, and JSON string escaping for
 * machine-readable output. Dependency-free so squish-run uses them too (the toolchain's
 * larger shared front-end code is core/cli.h). */
#ifndef SQ_CLI_H
#define SQ_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

/* Parses the whole string as an integer in [lo, hi]; the message names `opt`. */
sq_status sq_cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Parses the whole string as a finite number in [lo, hi]. */
sq_status sq_cli_float(const char *opt, const char *s, double lo, double hi, double *out);
/* True if arg equals any of the given names (NULL-terminated list). */
bool sq_cli_is(const char *arg, const char *a, const char *b);
/* The value of an option at argv[*i]: "--opt VALUE" advances *i, "--opt=VALUE" does not.
 * Returns NULL (with a message) if the value is missing. */
const char *sq_cli_value(int argc, char **argv, int *i);

/* -h, --help: prints usage(stdout) and returns true (the tool then exits 0). */
bool sq_cli_help(const char *arg, void (*usage)(FILE *));
/* In a tool's loop over argv (index i): the value of the option at argv[i] into v, or
 * return 1 from the parser (the message names the option) when it is missing. */
#define SQ_CLI_VALUE(v) \
    if (!((v) = sq_cli_value(argc, argv, &i))) return 1

/* The options tools spell alike; each tool takes those in its `which` (a mask). */
enum { SQ_CLI_THREADS = 1, SQ_CLI_JSON = 2, SQ_CLI_TOKENIZER = 4, SQ_CLI_QUIET = 8 };
typedef struct {
    int64_t threads;       /* -t, --threads N, 1..1024 (0: not given) */
    const char *json;      /* --json FILE */
    const char *tokenizer; /* --tokenizer PATH */
    bool quiet;            /* -q, --quiet */
} sq_cli_common;
/* If argv[*i] is one of the options in `which`, takes it (with its value, advancing *i)
 * and returns true, *st = SQ_OK or the error (message set); else returns false. */
bool sq_cli_common_opt(int argc, char **argv, int *i, unsigned which, sq_cli_common *c, sq_status *st);
/* An argument no option took: "-x" is an unknown option ("see <tool> --help"), the first
 * other one goes to *slot, a further one is "unexpected argument 'a'<extra>". */
sq_status sq_cli_positional(const char *a, const char **slot, const char *tool, const char *extra);
/* The start of a tool's main, after its parser returned rc: rc < 0 (help printed) gives
 * the exit status 0, rc > 0 prints "<tool>: <message>" and gives 1; otherwise the thread
 * count is set when threads > 0 and it gives -1 (go on). */
int sq_cli_begin(const char *tool, int rc, int64_t threads);
/* The end of a tool's main on failure: prints "<tool>: <message>" and gives the exit status,
 * 2 for out-of-memory and internal errors, else `code`. */
int sq_cli_fail(const char *tool, sq_status st, int code);
/* Seconds on a monotonic clock. */
double sq_now(void);
/* Writes s as a JSON string literal (with quotes) to fp. */
void sq_json_string(FILE *fp, const char *s, size_t len);

#endif
