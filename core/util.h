/* util.h - small toolchain helpers: SHA-256 (FIPS 180-4), whole-file reading, path
 * helpers and overflow-checked arithmetic. (mmap and atomic writes: runtime/fileio.h) */
#ifndef SQ_UTIL_H
#define SQ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/fileio.h"
#include "../runtime/status.h"
#include "../runtime/types.h"

/* ===== SHA-256 ===== */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    uint32_t buf_len;
} sq_sha256;

void sq_sha256_init(sq_sha256 *s);
void sq_sha256_update(sq_sha256 *s, const void *data, size_t len);
void sq_sha256_final(sq_sha256 *s, uint8_t out[32]);
void sq_sha256_hex(const uint8_t digest[32], char hex[65]);
/* Hashes a whole file; writes lowercase hex and (if size) its size. */
sq_status sq_sha256_file(const char *path, char hex[65], uint64_t *size);
void sq_sha256_buf(const void *data, size_t len, char hex[65]);

/* ===== Files ===== */
bool sq_file_exists(const char *path);
bool sq_is_dir(const char *path);
/* "<dir>/<name>" into a malloc'ed string (NULL on OOM). */
char *sq_path_join(const char *dir, const char *name);
/* Directory part of a path ("." if none), malloc'ed. */
char *sq_path_dirname(const char *path);
bool sq_str_ends_with(const char *s, const char *suffix);
char *sq_strdup(const char *s); /* NULL-safe, NULL on OOM */

/* ===== Tool helpers ===== */
/* SQ_OK if `path` can be created: not a directory, and its directory exists and is
 * writable. `what` names the option in the message ("output", "--json"). Tools call it
 * before any long work. */
sq_status sq_check_out_path(const char *path, const char *what);
/* "tool arg1 'arg 2' ..." (malloc'ed, NULL on OOM): argv[1..] joined with spaces, shell-
 * quoted where needed, without -t/--threads N, so files recording it do not depend on
 * the thread count. */
char *sq_command_line(const char *tool, int argc, char **argv);

/* The runnable group-quantized type of a bit width: q8g, q6g, q5g, q4g, q3g for 8, 6, 5, 4,
 * 3; SQ_TYPE_COUNT for any other width (the one place tools map bits to a type). */
sq_type sq_qtype_of_bits(int32_t bits);

/* ===== Little-endian integers in file bytes (any alignment) ===== */
static inline uint16_t sq_rd_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t sq_rd_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void sq_wr_le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* ===== Overflow-checked arithmetic: return false on overflow ===== */
static inline bool sq_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool sq_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Version string of the toolchain, e.g. "0.1.0". */
const char *sq_version(void);

#endif
