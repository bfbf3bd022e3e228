/* main_squish.c - the multi-call `squish` binary: `squish <tool> [args]` runs the same
 * entry function as the standalone `squish-<tool>` binary. */
#include <stdio.h>
#include <string.h>

#include "../core/util.h"
#include "tools.h"

static const struct {
    const char *name;
    int (*main)(int, char **);
    const char *what;
} tools[] = {
    {"convert", sq_convert_main, "import checkpoints into a model store, export runnable files"},
    {"run", sq_run_main, "generate text with a runnable file"},
    {"eval", sq_eval_main, "perplexity and KL-divergence of a model"},
    {"calibrate", sq_calibrate_main, "calibration statistics (X^T X per linear input) for quantization"},
    {"quantize", sq_quantize_main, "8/4/3-bit weight quantization (RTN, GPTQ, AWQ) into a model store"},
    {"prune", sq_prune_main, "magnitude, Wanda, SparseGPT pruning (unstructured, N:M, FFN channels, heads)"},
    {"recipe", sq_recipe_main, "run, compare and gate YAML recipes (docs/recipes.md)"},
};

static void usage(FILE *fp) {
    fprintf(fp, "usage: squish <tool> [options]   (squish <tool> --help for each tool)\n\ntools:\n");
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) fprintf(fp, "  %-9s %s\n", tools[i].name, tools[i].what);
    fprintf(fp, "\nexample:\n  squish convert import ../shared/models/stories260K/stories260K.bin -o stories.h5\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("squish %s\n", sq_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (!strcmp(argv[1], tools[i].name)) return tools[i].main(argc - 1, argv + 1);
    fprintf(stderr, "squish: unknown tool '%s'\n", argv[1]);
    usage(stderr);
    return 1;
}
