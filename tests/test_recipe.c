/* test_recipe.c - the recipe parser (core/recipe.c, docs/recipes.md): a full recipe resolves
 * with its defaults; every schema error class of issue 4 (unknown key, wrong type, out of
 * range, bad regex, YAML 1.1 traps, duplicate key, tags) is one line naming
 * file:line:column and what was expected (FORMATS.md 8.3). Line and column numbers are
 * checked against a column count of the texts below (python3 str.index). */
#include <stdlib.h>
#include <string.h>

#include "../core/recipe.h"
#include "test.h"

#define HEAD "version: 1\nmodel: m.bin\n"

/* Parses text as "dir/r.yaml"; returns the error message ("" on success). */
static const char *parse_err(const char *text, sq_recipe *r) {
    sq_status st = sq_recipe_parse(text, strlen(text), "dir/r.yaml", r);
    return st == SQ_OK ? "" : sq_last_error();
}

static void expect_err(const char *text, const char *want) {
    sq_recipe r;
    const char *e = parse_err(text, &r);
    SQ_CHECKF(strstr(e, want) != NULL, "want '%s', got '%s'", want, e);
    if (!*e) sq_recipe_free(&r);
}

SQ_TEST(full_recipe_resolves) {
    const char *t = HEAD
        "name: w4\n"
        "calibration:\n  data: {path: c.jsonl, field: body}\n  samples: 16\n  seq_len: 64\n"
        "stages:\n"
        "  - quantize:\n      method: gptq\n      bits: 4\n      grid: signed-max\n      gptq: {damp: 1e-2, act_order: on}\n"
        "      ignore: ['re:model\\.layers\\.\\d+\\.mlp']\n"
        "      overrides:\n        - {match: lm_head, bits: 8}\n        - {match: 're:.*down_proj$', keep: yes}\n"
        "  - prune: {method: sparsegpt, pattern: 2:4, bits: 4, group: row}\n"
        "evaluation:\n  texts:\n    - {path: /abs/e.txt, ctx: 128, chunks: 4}\n  kld: off\n"
        "gates: {max_ppl_increase: 2%}\n";
    sq_recipe r;
    const char *e = parse_err(t, &r);
    SQ_CHECKF(!*e, "%s", e);
    if (*e) return;
    SQ_CHECK(!strcmp(r.model, "dir/m.bin"));          /* relative to the recipe */
    SQ_CHECK(!strcmp(r.calib_data, "dir/c.jsonl") && !strcmp(r.calib_format, "jsonl"));
    SQ_CHECK(r.calib_samples == 16 && r.calib_seq_len == 64 && r.calib_seed == 0);
    SQ_CHECK(r.n_stages == 2);
    SQ_CHECK(r.stages[1].kind == SQ_STAGE_PRUNE && !strcmp(r.stages[1].pattern, "2:4"));
    SQ_CHECK(r.stages[1].sparsity < 0 && r.stages[1].bits == 4 && r.stages[1].group == 0);
    SQ_CHECK(r.stages[0].damp == 0.01 && r.stages[0].act_order && r.stages[0].group == 128 && r.stages[0].sequential);
    SQ_CHECK(r.stages[0].n_ignore == 1 && r.stages[0].n_overrides == 2 && r.stages[0].overrides[1].keep);
    SQ_CHECK(r.n_texts == 1 && !strcmp(r.texts[0].path, "/abs/e.txt") && r.texts[0].ctx == 128);
    SQ_CHECK(!r.kld && r.has_max_ppl_increase && r.max_ppl_increase == 0.02);
    SQ_CHECK(r.out_runnable && r.out_store && !r.out_gguf);
    char *j = sq_recipe_to_json(&r);
    SQ_CHECK(j && strstr(j, "\"pattern\":\t\"2:4\"") && strstr(j, "\"act_order\":\ttrue"));
    SQ_CHECK(!strcmp(r.stages[0].grid, "signed-max") && j && strstr(j, "\"grid\":\t\"signed-max\""));
    free(j);
    sq_recipe_free(&r);
}

SQ_TEST(unknown_key) {
    expect_err(HEAD "stages: []\nevaluaton: {}\n", "dir/r.yaml:4:1: evaluaton: unknown key (expected one of: version,");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, groups: 64}\n",
               "dir/r.yaml:4:38: stages[0].quantize.groups: unknown key");
    expect_err(HEAD "stages:\n  - quantise: {method: rtn}\n", "dir/r.yaml:4:5: stages[0].quantise: unknown key");
}

SQ_TEST(wrong_type) {
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: \"4\"}\n",
               "dir/r.yaml:4:35: stages[0].quantize.bits: expected one of 8, 6, 5, 4, 3, got the quoted string \"4\"");
    expect_err(HEAD "stages: {quantize: {}}\n", "dir/r.yaml:3:9: stages: expected a list of prune:/quantize: stages, got a mapping");
    expect_err(HEAD "stages: []\noutputs: {store: maybe}\n", "dir/r.yaml:4:18: outputs.store: expected true or false, got maybe");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, targets: Linear}\n",
               "dir/r.yaml:4:47: stages[0].quantize.targets: expected a list of module patterns, got Linear");
}

SQ_TEST(out_of_range) {
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 7}\n",
               "dir/r.yaml:4:35: stages[0].quantize.bits: expected one of 8, 6, 5, 4, 3, got 7");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, group: 48}\n",
               "dir/r.yaml:4:45: stages[0].quantize.group: expected a multiple of 32 (32, 64, 128, ...) or row, got 48");
    expect_err(HEAD "stages:\n  - prune: {method: magnitude, sparsity: 1.5}\n",
               "dir/r.yaml:4:42: stages[0].prune.sparsity: expected a number from 0 to 1 (exclusive), got 1.5");
    expect_err("version: 2\nmodel: m\nstages: []\n", "dir/r.yaml:1:10: version: expected an integer from 1 to 1, got 2");
    expect_err(HEAD "stages:\n  - quantize: {method: fp8, bits: 4}\n",
               "dir/r.yaml:4:24: stages[0].quantize.method: expected one of rtn, gptq or awq, got fp8");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, grid: q4_0}\n",
               "stages[0].quantize.grid: expected one of gptq or signed-max, got q4_0");
}

SQ_TEST(bad_regex) {
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, ignore: ['re:(?:a|b)']}\n",
               "dir/r.yaml:4:47: stages[0].quantize.ignore[0]: ");
    expect_err(HEAD "stages:\n  - quantize:\n      method: rtn\n      bits: 4\n      targets: ['re:model[']\n",
               "dir/r.yaml:7:17: stages[0].quantize.targets[0]: ");
}

SQ_TEST(yaml11_traps) {
    /* 2:4 is the string it looks like where a mask is expected ... */
    sq_recipe r;
    const char *e = parse_err(HEAD "stages:\n  - prune: {method: magnitude, pattern: 2:4}\n", &r);
    SQ_CHECKF(!*e, "%s", e);
    if (!*e) {
        SQ_CHECK(!strcmp(r.stages[0].pattern, "2:4"));
        sq_recipe_free(&r);
    }
    /* ... and rejected with a hint elsewhere (YAML 1.1 would read 124) */
    expect_err(HEAD "stages:\n  - prune: {method: magnitude, sparsity: 2:4}\n",
               "dir/r.yaml:4:42: stages[0].prune.sparsity: expected a number, got 2:4 (YAML 1.1 would read this as a "
               "base-60 number");
    /* on/off/yes/no are booleans only for boolean keys */
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: on}\n",
               "dir/r.yaml:4:35: stages[0].quantize.bits: expected one of 8, 6, 5, 4, 3, got on");
    e = parse_err(HEAD "name: on\nstages: []\noutputs: {gguf: Yes, store: OFF}\n", &r);
    SQ_CHECKF(!*e, "%s", e);
    if (!*e) {
        SQ_CHECK(!strcmp(r.name, "on") && r.out_gguf && !r.out_store);
        sq_recipe_free(&r);
    }
    /* 1e-2 is a number where a number is expected; a quoted one is refused */
    expect_err(HEAD "calibration: {data: c.txt}\nstages:\n  - quantize: {method: gptq, bits: 4, gptq: {damp: '1e-2'}}\n",
               "dir/r.yaml:5:52: stages[0].quantize.gptq.damp: expected a number, got the quoted string \"1e-2\" (remove "
               "the quotes)");
    /* a sparsity disagreeing with its N:M pattern */
    expect_err(HEAD "stages:\n  - prune: {method: wanda, pattern: 4:8, sparsity: 0.25}\n",
               "stages[0].prune.sparsity: pattern 4:8 keeps 4 of 8 weights, so sparsity is 0.5; got 0.25");
}

/* More YAML 1.1 retypings: y/n are booleans where a boolean is expected; elsewhere booleans,
 * octal (010), digit separators (1_000), hex, exponents in integers and percentages in
 * fractions are rejected with a hint naming the trap. */
SQ_TEST(yaml11_hints) {
    sq_recipe r;
    const char *e = parse_err(HEAD "stages: []\noutputs: {gguf: y, store: N}\n", &r);
    SQ_CHECKF(!*e, "%s", e);
    if (!*e) {
        SQ_CHECK(r.out_gguf && !r.out_store);
        sq_recipe_free(&r);
    }
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: on}\n",
               "stages[0].quantize.bits: expected one of 8, 6, 5, 4, 3, got on (YAML 1.1 reads y/n/yes/no/on/off as booleans");
    expect_err(HEAD "stages: []\nevaluation: {texts: [{path: e.txt, protocol: off}]}\n",
               "dir/r.yaml:4:46: evaluation.texts[0].protocol: expected one of llamacpp or gptq, got off (YAML 1.1 reads");
    expect_err(HEAD "calibration: {data: c.txt, samples: 010}\nstages: []\n",
               "dir/r.yaml:3:37: calibration.samples: expected an integer, got 010 (YAML 1.1 would read a leading 0 as "
               "octal");
    expect_err(HEAD "calibration: {data: c.txt}\nstages:\n  - quantize: {method: gptq, bits: 4, gptq: {damp: 01}}\n",
               "dir/r.yaml:5:52: stages[0].quantize.gptq.damp: expected a number, got 01 (YAML 1.1 would read a leading 0");
    expect_err(HEAD "calibration: {data: c.txt, samples: 1_000}\nstages: []\n",
               "dir/r.yaml:3:37: calibration.samples: expected an integer, got 1_000 (YAML 1.1 number syntax");
    expect_err(HEAD "calibration: {data: c.txt, seed: 0x10}\nstages: []\n",
               "dir/r.yaml:3:34: calibration.seed: expected an integer, got 0x10 (YAML 1.1 number syntax");
    expect_err(HEAD "calibration: {data: c.txt, samples: 1e3}\nstages: []\n",
               "dir/r.yaml:3:37: calibration.samples: expected an integer, got 1e3 (an integer is written with digits only");
    expect_err(HEAD "stages:\n  - prune: {method: magnitude, sparsity: 50%}\n",
               "dir/r.yaml:4:42: stages[0].prune.sparsity: expected a number, got 50% (a percentage is accepted by "
               "gates.max_ppl_increase only");
    /* an exponent with a capital E and no dot is a number too; 0 and 0.5 are not octal */
    e = parse_err(HEAD "calibration: {data: c.txt, seed: 0}\nstages:\n"
                       "  - quantize: {method: gptq, bits: 4, gptq: {damp: 1E-2}}\n"
                       "  - prune: {method: magnitude, sparsity: 0.5}\n", &r);
    SQ_CHECKF(!*e, "%s", e);
    if (!*e) {
        SQ_CHECK(r.stages[0].damp == 0.01 && r.calib_seed == 0 && r.stages[1].sparsity == 0.5);
        sq_recipe_free(&r);
    }
}

/* Overrides: keep, a float dtype (keep implied), bits/group/symmetric, never both kinds. */
SQ_TEST(overrides) {
    sq_recipe r;
    const char *e = parse_err(HEAD "stages:\n  - quantize:\n      method: rtn\n      bits: 4\n      overrides:\n"
                                   "        - {match: lm_head, dtype: bf16}\n        - {match: 're:.*o_proj$', symmetric: off}\n",
                              &r);
    SQ_CHECKF(!*e, "%s", e);
    if (!*e) {
        const sq_recipe_override *o = r.stages[0].overrides;
        SQ_CHECK(r.stages[0].n_overrides == 2 && o[0].keep && !strcmp(o[0].dtype, "bf16"));
        SQ_CHECK(!o[1].keep && o[1].symmetric == 0 && o[1].bits == 0 && o[1].group == -1);
        char *j = sq_recipe_to_json(&r);
        SQ_CHECK(j && strstr(j, "\"dtype\":\t\"bf16\""));
        free(j);
        sq_recipe_free(&r);
    }
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, overrides: [{match: lm_head, dtype: fp8}]}\n",
               "dir/r.yaml:4:74: stages[0].quantize.overrides[0].dtype: expected one of f16, bf16 or f32, got fp8");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, overrides: [{match: lm_head, dtype: f16, bits: 8}]}\n",
               "stages[0].quantize.overrides[0]: keep: true and dtype leave the tensor in float; drop bits/group/symmetric");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, overrides: [{match: lm_head}]}\n",
               "stages[0].quantize.overrides[0]: expected keep: true, a dtype or at least one of bits, group, symmetric");
}

SQ_TEST(duplicate_key_and_tags) {
    expect_err(HEAD "stages: []\nmodel: other.bin\n", "dir/r.yaml:4:1: model: duplicate key (first given at line 2)");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: !!int 4}\n",
               "dir/r.yaml:4:35: YAML tags (tag:yaml.org,2002:int) are not allowed");
    expect_err(HEAD "stages: [\n", "dir/r.yaml:");
    /* anchors and aliases are fine */
    sq_recipe r;
    const char *e = parse_err(HEAD "x_common: &c {method: rtn, bits: 8}\nstages: []\n", &r);
    SQ_CHECK(strstr(e, "x_common: unknown key") != NULL);
    e = parse_err(HEAD "stages:\n  - quantize: &q {method: rtn, bits: 8}\n  - quantize: *q\n", &r);
    SQ_CHECKF(!*e, "%s", e);
    if (!*e) {
        SQ_CHECK(r.n_stages == 2 && r.stages[1].bits == 8);
        sq_recipe_free(&r);
    }
}

SQ_TEST(semantic_errors) {
    expect_err(HEAD "stages:\n  - quantize: {method: gptq, bits: 4}\n",
               "dir/r.yaml:4:15: stages[0].quantize: method gptq needs calibration data: add a calibration: section");
    expect_err(HEAD "stages:\n  - quantize: {method: rtn, bits: 4, gptq: {damp: 0.1}}\n",
               "stages[0].quantize.gptq: gptq options given for method rtn");
    expect_err(HEAD "stages:\n  - prune: {method: wanda, sparsity: 0.5, bits: 4}\n",
               "stages[0].prune.bits: joint quantization (bits) needs method sparsegpt, got wanda");
    expect_err("version: 1\nstages: []\n", "dir/r.yaml:1:1: model: missing");
    /* GPTQ would refill an unstructured or N:M prune's zeros; after a structured prune it is fine */
    expect_err(HEAD "calibration: {data: c.txt}\nstages:\n  - prune: {method: magnitude, pattern: 2:4}\n"
                    "  - quantize: {method: gptq, bits: 4}\n",
               "dir/r.yaml:6:15: stages[1].quantize: gptq after the 2:4 prune of stages[0] would fill the pruned weights");
    sq_recipe r;
    const char *e = parse_err(HEAD "calibration: {data: c.txt}\nstages:\n  - prune: {method: wanda, pattern: ffn, sparsity: 0.25}\n"
                                   "  - quantize: {method: gptq, bits: 4}\n  - quantize: {method: rtn, bits: 8}\n", &r);
    SQ_CHECKF(!*e, "%s", e);
    if (!*e) {
        SQ_CHECK(r.n_stages == 3 && r.stages[0].kind == SQ_STAGE_PRUNE && r.stages[1].kind == SQ_STAGE_QUANTIZE);
        sq_recipe_free(&r);
    }
    expect_err(HEAD "stages: []\ngates: {max_kld: 0.1}\n", "gates: gates need evaluation.texts");
    expect_err("version: 1\nmodel: ${SQUISH_TEST_UNSET_VAR}/m.bin\nstages: []\n",
               "dir/r.yaml:2:8: model: ${SQUISH_TEST_UNSET_VAR} is not set and has no default");
}

SQ_TEST(variables) {
    sq_recipe r;
    setenv("SQUISH_TEST_ABS", "/opt/shared", 1);
    const char *e = parse_err("version: 1\nmodel: ${SQUISH_TEST_ABS}/m.bin\ncalibration: {data: '${SQUISH_TEST_NO:-../s}/c.txt'}\n"
                              "stages: []\n", &r);
    SQ_CHECKF(!*e, "%s", e);
    if (*e) return;
    SQ_CHECK(!strcmp(r.model, "/opt/shared/m.bin"));
    SQ_CHECK(!strcmp(r.calib_data, "dir/../s/c.txt"));
    sq_recipe_free(&r);
}

int main(void) {
    SQ_RUN(full_recipe_resolves);
    SQ_RUN(unknown_key);
    SQ_RUN(wrong_type);
    SQ_RUN(out_of_range);
    SQ_RUN(bad_regex);
    SQ_RUN(yaml11_traps);
    SQ_RUN(yaml11_hints);
    SQ_RUN(overrides);
    SQ_RUN(duplicate_key_and_tags);
    SQ_RUN(semantic_errors);
    SQ_RUN(variables);
    return sq_test_summary();
}
