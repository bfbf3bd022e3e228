/* status.c - thread-local error messages and the stderr logging hook (see status.h). */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

/* Messages are one line: names and values copied from a hostile file may hold newlines or
 * other control bytes, which become '?'. */
static void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

sq_status sq_errorf(sq_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    one_line(last_error);
    return code;
}

const char *sq_last_error(void) { return last_error; }

void sq_error_prefix(const char *prefix) {
    char tmp[sizeof last_error];
    size_t n = strlen(prefix);
    if (n > sizeof tmp / 2) n = sizeof tmp / 2;
    memcpy(tmp, prefix, n);
    memcpy(tmp + n, ": ", 2);
    size_t rest = strlen(last_error);
    if (rest > sizeof tmp - n - 3) rest = sizeof tmp - n - 3;
    memcpy(tmp + n + 2, last_error, rest);
    tmp[n + 2 + rest] = '\0';
    memcpy(last_error, tmp, sizeof last_error);
    one_line(last_error);
}

const char *sq_status_name(sq_status s) {
    switch (s) {
    case SQ_OK: return "ok";
    case SQ_ERR_IO: return "i/o error";
    case SQ_ERR_FORMAT: return "format error";
    case SQ_ERR_OOM: return "out of memory";
    case SQ_ERR_ARG: return "invalid argument";
    case SQ_ERR_UNSUPPORTED: return "unsupported";
    case SQ_ERR_CHECKSUM: return "checksum mismatch";
    case SQ_ERR_INTERNAL: return "internal error";
    case SQ_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}

/* ===== Logging ===== */

static sq_log_level log_level = SQ_LOG_INFO;
static sq_log_fn log_fn = NULL;
static void *log_user = NULL;

void sq_log_set_level(sq_log_level level) { log_level = level; }
sq_log_level sq_log_get_level(void) { return log_level; }

void sq_log_set(sq_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

void sq_log(sq_log_level level, const char *fmt, ...) {
    if (level > log_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_fn) {
        log_fn(level, msg, log_user);
        return;
    }
    static const char *const tags[] = {"error: ", "warning: ", "", ""};
    fprintf(stderr, "%s%s\n", tags[level], msg);
}

_Noreturn void sq_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, cond);
    abort();
}
