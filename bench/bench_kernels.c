/* bench_kernels.c - micro-benchmark of the matmul kernels: GFLOP/s and weight GB/s of
 * sq_matmul for f32/f16/bf16 and group-quantized q8g/q6g/q5g/q4g/q3g weights (random codes and
 * fp16 scales, group -g, symmetric) at T=1 (decode GEMV) and T=64/256 (prefill and
 * evaluation GEMM), on TinyLlama-1.1B shapes (2048x2048 attention, 5632x2048 gate/up,
 * 2048x5632 down, 32000x2048 head) and small-model shapes (256x256, 768x256), for every
 * kernel variant this CPU supports, on 1 and 2 threads. GB/s counts the bytes the weights
 * occupy in their type (quantized: codes, scales and zeros).
 *
 *   make bench-kernels && build/bin/bench_kernels [-q] [-t threads,...] [-s small|big|all]
 *                         [-y f16,q4g,s24_f16,smask_f16,...] [-T 1,8,64] [-g 128] [-S 0.5]
 *
 * A type name with "+a8" (q8g+a8, q4g+a8) sets the ACT8 flag: int8 activations and integer dot
 * products (docs/quantization.md); `-y q4g,q4g+a8 -T 1,128 -t 1` compares the two paths.
 *
 * Sparse types (s24_*, s48_*, smask_*; docs/sparse-format.md) get random values with an exact
 * pattern: N of every M weights kept at random positions, or for the bitmask exactly
 * round(cols * (1 - S)) per row at random columns, S = -S SPARSITY (default 0.5).
 *
 * Each figure is the best of 5 batches of repeated calls after one warm-up call (0.2 s in
 * all, 0.05 s with -q). Weights stay hot in cache when they fit (the small shapes and 2048x2048 f16
 * fit a Zen L3); the 32000x2048 head does not, so its T=1 GB/s is DRAM bandwidth. The
 * scalar reference is timed on a subset of rows (its rate does not depend on the count).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../runtime/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
}

/* Seconds per call of sq_matmul(k, y, x, w, T): calls are timed in 5 batches of at least
 * min_time/5 seconds each, and the fastest batch counts (other processes on a small
 * machine only ever make a batch slower). */
static double time_matmul(const sq_kernels *k, float *y, const float *x, const sq_mat *w, int64_t T, double min_time) {
    sq_matmul(k, y, x, w, T); /* warm-up */
    double best = 1e30;
    for (int b = 0; b < 5; b++) {
        int n = 0;
        double t0 = now(), t;
        do {
            sq_matmul(k, y, x, w, T);
            n++;
            t = now() - t0;
        } while (t < min_time / 5);
        if (t / n < best) best = t / n;
    }
    return best;
}

int main(int argc, char **argv) {
    int quick = 0;
    const char *set = "all";
    int threads[4] = {1, 2}, n_threads = 2;
    long long custom_rows = 0, custom_cols = 0, custom_T = 0;
    const char *type_list = "f32,f16,bf16,q8g,q4g,q3g";
    int64_t T_opt[8];
    int n_T_opt = 0;
    int group = 128;
    double sparsity = 0.5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0) quick = 1;
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) set = argv[++i];
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc &&
                 sscanf(argv[++i], "%lldx%lldx%lld", &custom_rows, &custom_cols, &custom_T) >= 2) set = "custom";
        else if (strcmp(argv[i], "-y") == 0 && i + 1 < argc) type_list = argv[++i];
        else if (strcmp(argv[i], "-g") == 0 && i + 1 < argc) group = atoi(argv[++i]);
        else if (strcmp(argv[i], "-S") == 0 && i + 1 < argc) {
            sparsity = atof(argv[++i]);
            if (!(sparsity >= 0.0 && sparsity < 1.0)) {
                fprintf(stderr, "%s: -S wants a sparsity in [0, 1)\n", argv[0]);
                return 1;
            }
        }
        else if (strcmp(argv[i], "-T") == 0 && i + 1 < argc) {
            for (char *p = argv[++i]; *p && n_T_opt < 8;) {
                T_opt[n_T_opt++] = strtol(p, &p, 10);
                if (*p == ',') p++;
                else break;
            }
        } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            n_threads = 0;
            for (char *p = argv[++i]; *p && n_threads < 4;) {
                threads[n_threads++] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
                else break;
            }
        } else {
            fprintf(stderr, "usage: %s [-q] [-s small|big|all] [-m ROWSxCOLS[xT]] [-t 1,2] [-y f16,q4g,...] "
                            "[-T 1,64] [-g GROUP] [-S SPARSITY]\n"
                            "  a type q8g+a8 or q4g+a8 sets ACT8 (int8 activations)\n"
                            "example: %s -s big -y f16,q4g,q4g+a8 -T 1,64 -t 1\n", argv[0], argv[0]);
            return 1;
        }
    }
    struct {
        int64_t rows, cols;
        const char *what;
        int big;
    } shapes[] = {
        {2048, 2048, "tinyllama q/o", 1}, {5632, 2048, "tinyllama gate/up", 1}, {2048, 5632, "tinyllama down", 1},
        {32000, 2048, "tinyllama head", 1}, {256, 256, "dim-256 q/o", 0},      {768, 256, "dim-256 gate/up", 0},
    };
    int64_t Ts[] = {1, 64, 256};
    size_t n_Ts = sizeof Ts / sizeof *Ts, n_shapes = sizeof shapes / sizeof *shapes;
    if (custom_rows > 0 && custom_cols > 0) {
        shapes[0].rows = custom_rows;
        shapes[0].cols = custom_cols;
        shapes[0].what = "custom";
        n_shapes = 1;
        if (custom_T > 0) {
            Ts[0] = custom_T;
            n_Ts = 1;
        }
    }
    if (n_T_opt > 0) {
        for (int i = 0; i < n_T_opt && i < 3; i++) Ts[i] = T_opt[i];
        n_Ts = (size_t)(n_T_opt < 3 ? n_T_opt : 3);
    }
    sq_type types[2 * SQ_TYPE_COUNT];
    bool act8[2 * SQ_TYPE_COUNT];
    size_t n_types = 0;
    char list[128], *save = NULL;
    snprintf(list, sizeof list, "%s", type_list);
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *plus = strstr(tok, "+a8");
        const bool a8 = plus && !plus[3];
        if (a8) *plus = 0;
        if (n_types == 2 * SQ_TYPE_COUNT || sq_type_from_name(tok, &types[n_types]) ||
            (a8 && !sq_type_supports_act8(types[n_types]))) {
            fprintf(stderr, "%s: unknown type '%s'\n", argv[0], tok);
            return 1;
        }
        act8[n_types++] = a8;
    }

    const sq_kernels *vars[8];
    int n_vars = 0;
    const char *const *names = sq_kernels_compiled();
    for (int i = 0; names[i] && n_vars < 8; i++) {
        const sq_kernels *k = sq_kernels_by_name(names[i]);
        if (k) vars[n_vars++] = k;
    }
    const double min_time = quick ? 0.05 : 0.2;

    printf("# sq_matmul: GFLOP/s per variant (2*rows*cols*T / time), and weight GB/s of the best variant\n");
    printf("%-18s %-11s %-9s %4s %3s", "shape", "rows x cols", "type", "T", "thr");
    for (int v = 0; v < n_vars; v++) printf(" %9s", vars[v]->name);
    printf(" %9s %8s\n", "GB/s", "x ref");

    for (size_t s = 0; s < n_shapes; s++) {
        if (strcmp(set, "small") == 0 && shapes[s].big) continue;
        if (strcmp(set, "big") == 0 && !shapes[s].big) continue;
        const int64_t rows = shapes[s].rows, cols = shapes[s].cols;
        int64_t max_T = 0;
        for (size_t tj = 0; tj < n_Ts; tj++) max_T = Ts[tj] > max_T ? Ts[tj] : max_T;
        float *x = malloc(sizeof(float) * (size_t)(max_T * cols));
        float *y = malloc(sizeof(float) * (size_t)(max_T * rows));
        for (int64_t i = 0; i < max_T * cols; i++) x[i] = rnd();
        for (size_t ti = 0; ti < n_types; ti++) {
            sq_type type = types[ti];
            const bool sparse = sq_type_is_sparse(type), smask = type == SQ_TYPE_SMASK_F16 || type == SQ_TYPE_SMASK_F32;
            const int64_t keep = (int64_t)((double)cols * (1.0 - sparsity) + 0.5); /* bitmask: values per row */
            const sq_qparams q = {sq_type_is_quant(type) ? (group < cols ? group : (int32_t)cols)
                                  : smask                ? (int32_t)keep
                                                         : 0,
                                  false};
            size_t rb = sq_row_bytes(type, cols, q);
            if (!rb) {
                fprintf(stderr, "%s: %s cannot hold rows of %lld columns\n", argv[0], sq_type_name(type), (long long)cols);
                return 1;
            }
            void *data = malloc(rb * (size_t)rows);
            uint8_t *codes = malloc((size_t)cols);
            float *scales = malloc(sizeof(float) * (size_t)cols);
            float *dense = malloc(sizeof(float) * (size_t)cols); /* sparse: the dense row, in the value type */
            int64_t *perm = malloc(sizeof(int64_t) * (size_t)cols);
            for (int64_t r = 0; r < rows; r++) {
                char *row = (char *)data + (size_t)r * rb;
                if (sparse) {
                    const bool f16 = sq_sparse_value_type(type) == SQ_TYPE_F16;
                    const int n = type == SQ_TYPE_S24_F16 || type == SQ_TYPE_S24_F32 ? 2 : 4, m = 2 * n;
                    memset(dense, 0, sizeof(float) * (size_t)cols);
                    /* kept columns: a random N of each M, or `keep` of the row (partial Fisher-Yates) */
                    const int64_t span = smask ? cols : m, pick = smask ? keep : n;
                    for (int64_t g0 = 0; g0 < cols; g0 += span) {
                        for (int64_t j = 0; j < span; j++) perm[j] = g0 + j;
                        for (int64_t j = 0; j < pick; j++) {
                            rnd();
                            const int64_t o = j + (int64_t)((rng >> 20) % (uint64_t)(span - j));
                            const int64_t c = perm[o];
                            perm[o] = perm[j];
                            float v = rnd();
                            if (v == 0.0f) v = 0.25f;
                            if (f16) {
                                uint16_t h = sq_f32_to_f16(v);
                                memcpy((char *)dense + 2 * c, &h, 2);
                            } else {
                                memcpy((char *)dense + 4 * c, &v, 4);
                            }
                        }
                    }
                    if (sq_srow_pack(type, q, cols, dense, row)) {
                        fprintf(stderr, "%s\n", sq_last_error());
                        return 2;
                    }
                    continue;
                }
                if (sq_type_is_quant(type)) { /* random codes, fp16 scales ~ 0.01 */
                    for (int64_t c = 0; c < cols; c++) {
                        rnd();
                        codes[c] = (uint8_t)((rng >> 40) & ((1u << sq_type_bits(type)) - 1u));
                    }
                    for (int64_t g = 0; g * q.group < cols; g++) scales[g] = sq_f16_to_f32(sq_f32_to_f16(0.01f + 0.001f * rnd()));
                    if (sq_qrow_pack(type, q, cols, codes, scales, NULL, row)) {
                        fprintf(stderr, "%s\n", sq_last_error());
                        return 2;
                    }
                    continue;
                }
                for (int64_t c = 0; c < cols; c++) {
                    float v = rnd();
                    if (type == SQ_TYPE_F32) memcpy(row + 4 * c, &v, 4);
                    else {
                        uint16_t h = type == SQ_TYPE_F16 ? sq_f32_to_f16(v) : sq_f32_to_bf16(v);
                        memcpy(row + 2 * c, &h, 2);
                    }
                }
            }
            free(codes);
            free(scales);
            free(dense);
            free(perm);
            sq_mat w = {.type = type, .q = q, .rows = rows, .cols = cols, .row_bytes = rb, .data = data, .act8 = act8[ti]};
            for (size_t tj = 0; tj < n_Ts; tj++) {
                const int64_t T = Ts[tj];
                for (int th = 0; th < n_threads; th++) {
                    sq_set_num_threads(threads[th]);
                    double gf[8], best = 0, best_sec = 0, ref_gf = 0;
                    for (int v = 0; v < n_vars; v++) {
                        sq_mat wv = w;
                        if (strcmp(vars[v]->name, "ref") == 0) {
                            /* the reference runs ~1 GFLOP/s: time it on enough rows for ~50 ms */
                            int64_t sub = (int64_t)(5e7 / (2.0 * (double)cols * (double)T));
                            sub = sub < 64 ? 64 : sub > rows ? rows : sub;
                            wv.rows = sub;
                        }
                        double sec = time_matmul(vars[v], y, x, &wv, T, min_time);
                        gf[v] = 2.0 * (double)wv.rows * (double)cols * (double)T / sec * 1e-9;
                        if (strcmp(vars[v]->name, "ref") == 0) ref_gf = gf[v];
                        else if (gf[v] > best) {
                            best = gf[v];
                            best_sec = sec;
                        }
                    }
                    char shape[32];
                    snprintf(shape, sizeof shape, "%lldx%lld", (long long)rows, (long long)cols);
                    char tname[16];
                    snprintf(tname, sizeof tname, "%s%s", sq_type_name(type), act8[ti] ? "+a8" : "");
                    printf("%-18s %-11s %-9s %4lld %3d", shapes[s].what, shape, tname, (long long)T, threads[th]);
                    for (int v = 0; v < n_vars; v++) printf(" %9.2f", gf[v]);
                    double gbs = best_sec > 0 ? (double)rb * (double)rows / best_sec * 1e-9 : 0;
                    printf(" %9.2f %8.1f\n", gbs, ref_gf > 0 ? best / ref_gf : 0.0);
                    fflush(stdout);
                }
            }
            free(data);
        }
        free(x);
        free(y);
    }
    return 0;
}
