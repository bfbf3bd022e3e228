/* test.h - the tiny test harness every tests/test_*.c uses.
 *
 *   SQ_TEST(name) { ... SQ_CHECK(cond); SQ_CHECK_CLOSE(a, b, rtol, atol); ... }
 *   int main(void) { SQ_RUN(name); ...; return sq_test_summary(); }
 *
 * A failed check prints file:line and the expression and marks the current test failed;
 * the test keeps going. sq_test_summary() prints "N passed, M failed, K skipped" and
 * returns the exit code. sq_test_shared() finds ../shared (or $SQUISH_SHARED);
 * SQ_SKIP("why") skips the rest of a test with a message.
 */
#ifndef SQ_TEST_H
#define SQ_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sq_t_pass, sq_t_fail, sq_t_skip, sq_t_cur_failed, sq_t_cur_skipped;
static const char *sq_t_name;

#define SQ_TEST(name) static void name(void)

#define SQ_RUN(name)                                                                  \
    do {                                                                              \
        sq_t_name = #name;                                                            \
        sq_t_cur_failed = 0;                                                          \
        sq_t_cur_skipped = 0;                                                         \
        name();                                                                       \
        if (sq_t_cur_failed) {                                                        \
            sq_t_fail++;                                                              \
            printf("FAIL %s\n", #name);                                               \
        } else if (sq_t_cur_skipped) {                                                \
            sq_t_skip++;                                                              \
        } else {                                                                      \
            sq_t_pass++;                                                              \
            printf("ok   %s\n", #name);                                               \
        }                                                                             \
        fflush(stdout);                                                               \
    } while (0)

#define SQ_CHECK(cond)                                                                \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__, sq_t_name, #cond); \
            sq_t_cur_failed = 1;                                                      \
        }                                                                             \
    } while (0)

/* Like SQ_CHECK but prints a formatted explanation. */
#define SQ_CHECKF(cond, ...)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("  %s:%d: %s: check failed: %s: ", __FILE__, __LINE__, sq_t_name, #cond); \
            printf(__VA_ARGS__);                                                      \
            printf("\n");                                                             \
            sq_t_cur_failed = 1;                                                      \
        }                                                                             \
    } while (0)

#define SQ_CHECK_CLOSE(a, b, rtol, atol)                                              \
    do {                                                                              \
        double sq_a_ = (double)(a), sq_b_ = (double)(b);                              \
        if (!(fabs(sq_a_ - sq_b_) <= (atol) + (rtol)*fabs(sq_b_))) {                  \
            printf("  %s:%d: %s: %s = %.9g, expected %s = %.9g (rtol %g, atol %g)\n", \
                   __FILE__, __LINE__, sq_t_name, #a, sq_a_, #b, sq_b_, (double)(rtol), (double)(atol)); \
            sq_t_cur_failed = 1;                                                      \
        }                                                                             \
    } while (0)

/* Checks an sq_status is SQ_OK, printing sq_last_error() otherwise. */
#define SQ_CHECK_OK(expr)                                                             \
    do {                                                                              \
        int sq_st_ = (int)(expr);                                                     \
        if (sq_st_ != 0) {                                                            \
            printf("  %s:%d: %s: %s failed (%d): %s\n", __FILE__, __LINE__, sq_t_name, #expr, sq_st_, sq_last_error()); \
            sq_t_cur_failed = 1;                                                      \
        }                                                                             \
    } while (0)

#define SQ_SKIP(why)                                                                  \
    do {                                                                              \
        printf("skip %s: %s\n", sq_t_name, why);                                      \
        sq_t_cur_skipped = 1;                                                         \
        return;                                                                       \
    } while (0)

static inline int sq_test_summary(void) {
    printf("%d passed, %d failed, %d skipped\n", sq_t_pass, sq_t_fail, sq_t_skip);
    return sq_t_fail ? 1 : 0;
}

/* Path of the shared folder (models, data) or NULL when it is absent. */
static inline const char *sq_test_shared(void) {
    const char *env = getenv("SQUISH_SHARED");
    static const char *const cands[] = {"../shared", "../../shared", NULL};
    if (env && *env) return access(env, R_OK) == 0 ? env : NULL;
    for (int i = 0; cands[i]; i++)
        if (access(cands[i], R_OK) == 0) return cands[i];
    return NULL;
}

/* "<shared>/<rel>" in a static buffer, or NULL if shared or the file is absent. */
static inline const char *sq_test_shared_path(const char *rel) {
    static char buf[4][1024];
    static int k;
    const char *s = sq_test_shared();
    if (!s) return NULL;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", s, rel);
    return access(b, R_OK) == 0 ? b : NULL;
}

/* True when SQUISH_TEST_QUICK=1 (sanitizer run): skip whole-text evaluations. */
static inline int sq_test_quick(void) {
    const char *q = getenv("SQUISH_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

/* A fresh temporary directory for this test binary (created once, path static). */
static inline const char *sq_test_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/squish-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

#endif
