/* cli.h - small helpers every squish command-line tool shares: strict number parsing
 * for option values (a bad value is a usage error naming the option), a monotonic clock,
 * and JSON string escaping for machine-readable output. Dependency-free so squish-run
 * uses them too. */
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
/* Seconds on a monotonic clock. */
double sq_now(void);
/* Writes s as a JSON string literal (with quotes) to fp. */
void sq_json_string(FILE *fp, const char *s, size_t len);

#endif
