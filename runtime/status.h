/* status.h - error status codes, the thread-local error message and logging.
 *
 * Every fallible function in runtime/ and core/ returns an sq_status. On failure it
 * records a one-line, human-readable message with sq_errorf() (naming the file and
 * what is wrong) and returns the negative code. Only tools print the message and exit.
 * Logging goes to stderr through a replaceable hook; stdout is reserved for results.
 */
#ifndef SQ_STATUS_H
#define SQ_STATUS_H

#include <stdarg.h>

typedef enum {
    SQ_OK = 0,
    SQ_ERR_IO = -1,          /* open/read/write/mmap failed */
    SQ_ERR_FORMAT = -2,      /* input file is malformed or inconsistent */
    SQ_ERR_OOM = -3,         /* allocation failed */
    SQ_ERR_ARG = -4,         /* bad argument or option value */
    SQ_ERR_UNSUPPORTED = -5, /* valid input that squish does not handle (yet) */
    SQ_ERR_CHECKSUM = -6,    /* stored checksum does not match the content */
    SQ_ERR_INTERNAL = -7,    /* a bug */
    SQ_ERR_INTERRUPTED = -8  /* the user asked us to stop */
} sq_status;

/* Records a printf-style message for the current thread and returns `code`, so a
 * failing function can write `return sq_errorf(SQ_ERR_FORMAT, "%s: ...", path);`. */
sq_status sq_errorf(sq_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The message of the last error recorded on this thread ("" if none). */
const char *sq_last_error(void);

/* Prefixes the current message with "prefix: " (used to add context on the way up). */
void sq_error_prefix(const char *prefix);

/* A short name for a status code ("io error", "format error", ...). */
const char *sq_status_name(sq_status s);

/* ===== Logging ===== */

typedef enum { SQ_LOG_ERROR = 0, SQ_LOG_WARN = 1, SQ_LOG_INFO = 2, SQ_LOG_DEBUG = 3 } sq_log_level;
typedef void (*sq_log_fn)(sq_log_level level, const char *msg, void *user);

/* Messages at or below `level` are emitted (default SQ_LOG_INFO). */
void sq_log_set_level(sq_log_level level);
sq_log_level sq_log_get_level(void);
/* Replaces the sink (default: stderr). Pass NULL to restore the default. */
void sq_log_set(sq_log_fn fn, void *user);
void sq_log(sq_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Aborts with file:line and the condition. For bugs only, never for bad input. */
#define SQ_ASSERT(cond)                                                         \
    do {                                                                        \
        if (!(cond)) sq_assert_fail(#cond, __FILE__, __LINE__);                 \
    } while (0)
_Noreturn void sq_assert_fail(const char *cond, const char *file, int line);

#endif
