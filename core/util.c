/* util.c - small toolchain helpers declared in core/util.h: SHA-256 written from FIPS 180-4
 * (section 6.2: message schedule, 64 rounds, big-endian length padding), whole-file
 * reading with a size cap, path and string helpers, and the toolchain version.
 * Hashing streams the file in 1 MiB pieces, so it works on files larger than memory.
 * Not here: mmap and atomic writes (runtime/fileio.c).
 */
#include "util.h"

#include "../runtime/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ===== SHA-256 (FIPS 180-4) ===== */

static const uint32_t K256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static inline uint32_t rotr32(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

/* One 512-bit block (FIPS 180-4 6.2.2). */
static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 |
               (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr32(w[t - 15], 7) ^ rotr32(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr32(w[t - 2], 17) ^ rotr32(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t S1 = rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K256[t] + w[t];
        uint32_t S0 = rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void sq_sha256_init(sq_sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->buf_len = 0;
}

void sq_sha256_update(sq_sha256 *s, const void *data, size_t len) {
    const uint8_t *p = data;
    s->len += (uint64_t)len;
    if (s->buf_len) {
        size_t take = 64 - s->buf_len;
        if (take > len) take = len;
        memcpy(s->buf + s->buf_len, p, take);
        s->buf_len += (uint32_t)take;
        p += take;
        len -= take;
        if (s->buf_len < 64) return;
        sha256_block(s->h, s->buf);
        s->buf_len = 0;
    }
    while (len >= 64) {
        sha256_block(s->h, p);
        p += 64;
        len -= 64;
    }
    if (len) {
        memcpy(s->buf, p, len);
        s->buf_len = (uint32_t)len;
    }
}

void sq_sha256_final(sq_sha256 *s, uint8_t out[32]) {
    /* Padding (5.1.1): a 1 bit, zeros up to 56 mod 64, then the bit length big-endian. */
    uint64_t bits = s->len * 8u;
    uint8_t pad[72] = {0x80};
    size_t npad = (s->buf_len < 56) ? 56 - s->buf_len : 120 - s->buf_len;
    for (int i = 0; i < 8; i++) pad[npad + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t keep = s->len;
    sq_sha256_update(s, pad, npad + 8);
    s->len = keep;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sq_sha256_hex(const uint8_t digest[32], char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
}

void sq_sha256_buf(const void *data, size_t len, char hex[65]) {
    sq_sha256 s;
    uint8_t d[32];
    sq_sha256_init(&s);
    sq_sha256_update(&s, data, len);
    sq_sha256_final(&s, d);
    sq_sha256_hex(d, hex);
}

sq_status sq_sha256_file(const char *path, char hex[65], uint64_t *size) {
    sq_status st = SQ_OK;
    uint8_t *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sq_errorf(SQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const size_t chunk = (size_t)1 << 20;
    buf = malloc(chunk);
    if (!buf) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory hashing the file", path);
        goto fail;
    }
    sq_sha256 s;
    sq_sha256_init(&s);
    size_t n;
    while ((n = fread(buf, 1, chunk, fp)) > 0) sq_sha256_update(&s, buf, n);
    if (ferror(fp)) {
        st = sq_errorf(SQ_ERR_IO, "%s: read failed while hashing", path);
        goto fail;
    }
    uint8_t d[32];
    if (size) *size = s.len;
    sq_sha256_final(&s, d);
    sq_sha256_hex(d, hex);
fail:
    free(buf);
    fclose(fp);
    return st;
}

/* ===== Files ===== */


bool sq_file_exists(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

bool sq_is_dir(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

char *sq_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

char *sq_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return sq_strdup(".");
    if (slash == path) return sq_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

bool sq_str_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char *sq_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

const char *sq_version(void) { return "0.1.0"; }

/* ===== Tool helpers ===== */

sq_status sq_check_out_path(const char *path, const char *what) {
    if (sq_is_dir(path)) return sq_errorf(SQ_ERR_ARG, "%s '%s' is a directory; give a file name", what, path);
    char *dir = sq_path_dirname(path);
    if (!dir) return sq_errorf(SQ_ERR_OOM, "out of memory");
    bool ok = sq_is_dir(dir) && access(dir, W_OK) == 0;
    sq_status st = ok ? SQ_OK
                      : sq_errorf(SQ_ERR_ARG, "%s '%s': the directory '%s' does not exist or is not writable", what,
                                  path, dir);
    free(dir);
    return st;
}

char *sq_command_line(const char *tool, int argc, char **argv) {
    size_t n = strlen(tool) + 1;
    for (int i = 1; i < argc; i++) n += strlen(argv[i]) * 4 + 3;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    p += sprintf(p, "%s", tool);
    for (int i = 1; i < argc; i++) {
        if (sq_cli_is(argv[i], "-t", "--threads")) {
            if (!strchr(argv[i], '=')) i++;
            continue;
        }
        bool q = !argv[i][0] || strpbrk(argv[i], " \t\"'\\$`*?;&|<>()[]{}") != NULL;
        *p++ = ' ';
        if (q) *p++ = '\'';
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'' && q) {
                memcpy(p, "'\\''", 4);
                p += 4;
            } else {
                *p++ = *c;
            }
        }
        if (q) *p++ = '\'';
    }
    *p = '\0';
    return s;
}

sq_type sq_qtype_of_bits(int32_t bits) {
    switch (bits) {
    case 8: return SQ_TYPE_Q8G;
    case 6: return SQ_TYPE_Q6G;
    case 5: return SQ_TYPE_Q5G;
    case 4: return SQ_TYPE_Q4G;
    case 3: return SQ_TYPE_Q3G;
    default: return SQ_TYPE_COUNT;
    }
}
