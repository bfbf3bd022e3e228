/* recipe.h - squish recipes (schema version 1, docs/recipes.md): a YAML file describing one
 * compression run (model, calibration, ordered prune/quantize stages, evaluation, outputs,
 * quality gates), parsed with libyaml's node API and typed by the schema, never by YAML 1.1
 * resolution (FORMATS.md 8.3): `2:4` stays a string where a mask is expected, on/off/yes/no
 * are booleans only for boolean keys, `1e-2` is a number where a number is expected.
 * Every error is one line "FILE:LINE:COL: key.path: expected ..., got ...".
 *
 *   sq_recipe r;
 *   if (sq_recipe_load("recipes/w4-gptq-g128.yaml", &r) != SQ_OK) puts(sq_last_error());
 *   char *json = sq_recipe_to_json(&r);   // the resolved recipe, canonical JSON
 *   sq_recipe_free(&r);
 *
 * Library code: never prints.
 */
#ifndef SQ_RECIPE_H
#define SQ_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/status.h"

#define SQ_RECIPE_VERSION 1

typedef enum { SQ_STAGE_QUANTIZE = 0, SQ_STAGE_PRUNE = 1 } sq_stage_kind;

typedef struct {
    char *match;     /* module pattern (sq_qpattern syntax) */
    bool keep;       /* leave in float */
    char dtype[8];   /* "" or f16 | bf16 | f32: leave in float, stored as this type (implies keep) */
    int32_t bits;    /* 0 = not given */
    int32_t group;   /* -1 = not given, 0 = row */
    int symmetric;   /* -1 = not given, else 0/1 */
} sq_recipe_override;

typedef struct {
    sq_stage_kind kind;
    int line, col;           /* where the stage starts (1-based) */
    char method[16];         /* quantize: rtn|gptq|awq; prune: magnitude|wanda|sparsegpt */
    char **targets, **ignore;
    int32_t n_targets, n_ignore;
    bool sequential;         /* calibrated methods: re-run windows block by block */
    /* quantize (and prune's joint mode when bits > 0) */
    int32_t bits;            /* prune: 0 = no joint quantization */
    int32_t group;           /* 0 = row */
    bool symmetric;
    bool mse;
    char grid[16];           /* quantize: symmetric grid "gptq" | "signed-max"; "" = the method's default */
    double damp;             /* gptq / sparsegpt */
    int32_t block_size;
    bool act_order;
    bool awq_duo, awq_clip;
    int32_t awq_windows;
    sq_recipe_override *overrides;
    int32_t n_overrides;
    /* prune */
    double sparsity;         /* < 0: implied by an N:M pattern */
    char pattern[16];        /* unstructured | N:M | ffn | heads */
} sq_recipe_stage;

typedef struct {
    char *path;
    char protocol[16];       /* llamacpp | gptq */
    int32_t ctx;             /* 0 = the tool's default */
    int32_t chunks;          /* 0 = all */
} sq_recipe_text;

typedef struct {
    char *file;              /* the recipe file as given */
    char *name;
    int32_t version;
    char *model;             /* resolved path (variables expanded, relative to the recipe file) */
    /* calibration (has_calib false: no section) */
    bool has_calib;
    char *calib_data;
    char calib_format[8];    /* text | jsonl */
    char *calib_field;       /* jsonl member, NULL = tool default */
    int32_t calib_samples, calib_seq_len, calib_seed; /* seq_len 0 = the tool's default */
    sq_recipe_stage *stages;
    int32_t n_stages;
    sq_recipe_text *texts;
    int32_t n_texts;
    bool kld;
    int32_t decode_tokens;   /* greedy tokens for the decode-speed figure, 0 = off */
    bool out_runnable, out_store, out_gguf;
    bool out_act_int8; /* model.sqz with int8 activations on q8g/q4g (squish-convert export --act-int8) */
    bool has_max_ppl_increase, has_max_kld;
    double max_ppl_increase; /* fraction: 0.02 = 2 % */
    double max_kld;
} sq_recipe;

/* Parses and validates RECIPE; paths are resolved relative to the recipe's directory after
 * ${VAR} / ${VAR:-default} expansion. On failure *r is freed and the message is
 * "FILE:LINE:COL: key: ...". */
sq_status sq_recipe_load(const char *path, sq_recipe *r);
/* The same from memory; `file` names it in messages and its directory anchors paths. */
sq_status sq_recipe_parse(const char *text, size_t len, const char *file, sq_recipe *r);
void sq_recipe_free(sq_recipe *r); /* NULL-safe; zeroes */

/* True when the stage needs calibration statistics (gptq, awq, wanda, sparsegpt). */
bool sq_recipe_stage_needs_calib(const sq_recipe_stage *s);

/* The resolved recipe as canonical JSON (every default filled in; malloc'ed, NULL on OOM). */
char *sq_recipe_to_json(const sq_recipe *r);

/* "2%" -> 0.02, "0.5%" -> 0.005, "0.01" -> 0.01; false if not a non-negative finite value. */
bool sq_parse_fraction(const char *s, double *out);

#endif
