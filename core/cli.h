/* cli.h - the front-end code the toolchain's tools share (the dependency-free part, used by
 * squish-run too, is runtime/cli.h): the options squish-quantize and squish-prune spell the
 * same way (which tensors, the calibration file, the grid, the output), the checks and
 * loading of their inputs, the per-block progress lines and JSON, and the provenance a
 * written model store records. One place per concept: a tool keeps only what is its own. */
#ifndef SQ_CORE_CLI_H
#define SQ_CORE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../runtime/cli.h"
#include "../runtime/fileio.h"
#include "../runtime/tokenizer.h"
#include "calib.h"
#include "checkpoint.h"

#define SQ_CLI_MAX_PATTERNS 256

/* ===== Options of the weight-changing tools (squish-quantize, squish-prune) ===== */

typedef struct {
    sq_cli_common cli; /* -t, --json, --tokenizer, -q */
    const char *model, *out, *calib, *calib_data;
    const char *targets[SQ_CLI_MAX_PATTERNS], *ignore[SQ_CLI_MAX_PATTERNS];
    int32_t n_targets, n_ignore;
    bool no_seq;                                    /* --no-sequential */
    bool set_damp, set_block, set_group, set_asym;  /* given on the command line */
    double damp;                                    /* --damp (when set_damp) */
    int32_t block_size;                             /* --block-size (when set_block) */
    int32_t bits, group;                            /* --bits (0: not given), --group (default 128, 0 = row) */
    bool asym;                                      /* --asym (--sym: false) */
} sq_wtool_opts;

/* Checks a bit width (8, 6, 5, 4, 3) and a group size (0 = per row, or a positive multiple of
 * 32: the runnable format's constraint); `what` names the option in the message. */
sq_status sq_qscheme_check_cli(int32_t bits, int32_t group, const char *what);
/* Defaults: group 128, the rest 0. */
void sq_wtool_opts_init(sq_wtool_opts *o);
/* Appends a --targets/--ignore/--override pattern (`opt` names the option in messages). */
sq_status sq_cli_add_pattern(const char **list, int32_t *n, const char *opt, const char *v);
/* Takes argv[*i] if it is one of the shared options (with its value, advancing *i), an
 * unknown option (an error naming `tool --help`) or the model (the first positional
 * argument; a second one is an error). Returns SQ_OK or the error (message set). */
sq_status sq_wtool_opt(int argc, char **argv, int *i, sq_wtool_opts *o, const char *tool);
/* After the loop: a model and an -o OUT.h5 were given. */
sq_status sq_wtool_check(const sq_wtool_opts *o, const char *tool);

/* ===== Progress ===== */

/* One transformer block after its linears changed (the sequential modes). */
typedef struct {
    int32_t layer, n_layers;
    double mse;       /* mean squared difference of the block's output from the original block's */
    double rel;       /* mse relative to the mean squared update (output - input) of the original block */
    int64_t n_tokens; /* tokens it was measured on */
    double seconds;   /* the whole layer */
} sq_block_report;

/* What a tool keeps of the reports a run hands it: per-tensor records of the tool's own
 * type (`t`, `n_t` of them) and the block reports, for its JSON. */
typedef struct {
    bool quiet;
    bool oom; /* a record could not be kept */
    void *t;
    int32_t n_t, cap_t;
    sq_block_report *l;
    int32_t n_l, cap_l;
} sq_progress;

/* Room for the next per-tensor record of `size` bytes (counted in n_t), NULL (oom set) if none. */
void *sq_progress_next(sq_progress *p, size_t size);
/* on_layer callback (user = sq_progress): keeps the report and prints its line unless quiet. */
void sq_progress_block(void *user, const sq_block_report *r);
void sq_progress_free(sq_progress *p);

/* ===== Their inputs and run ===== */

/* What a run of squish-quantize or squish-prune holds (their plan aside). */
typedef struct {
    sq_checkpoint c;
    sq_calib cal;       /* --calib */
    sq_calib_data data; /* sequential mode: calib.h5's data, reloaded */
    sq_tokenizer *tok;
    sq_progress prog;
    char model_sha[65], calib_sha[65];
} sq_wtool_run;

/* The output paths can be written (-o, --json), the model and --calib exist, and the model
 * imports into w->c with no tensor quantized already ("...; <advice>"). */
sq_status sq_wtool_load(const sq_wtool_opts *o, const char *advice, sq_wtool_run *w);
/* The model's SHA-256 (sq_calib_model_sha256), and with --calib its statistics, checked
 * against the model, and the file's SHA-256. */
sq_status sq_wtool_calib(const sq_wtool_opts *o, sq_wtool_run *w);
/* Sequential mode: the model's tokenizer and calib.h5's data, reloaded (--calib-data). */
sq_status sq_wtool_data(const sq_wtool_opts *o, sq_wtool_run *w);
/* Provenance of the written store: "squish <version>", the command line (without -t) and
 * the input files (an HDF5 model store and --calib) with their known SHA-256. */
sq_status sq_wtool_provenance(sq_wtool_run *w, const sq_wtool_opts *o, const char *tool, int argc, char **argv);
void sq_wtool_run_free(sq_wtool_run *w);
/* tool_version = `label` (e.g. "squish 0.1.0"), command_line = `tool` argv[1..] (without -t),
 * replacing what the checkpoint had. */
sq_status sq_checkpoint_set_made_by(sq_checkpoint *c, const char *label, const char *tool, int argc, char **argv);
/* Size of a file in bytes, 0 if it cannot be read. */
uint64_t sq_file_bytes(const char *path);

/* ===== JSON ===== */

/* `{` and the "tool", "model", "model_sha256", "output" members (no trailing comma). */
void sq_json_tool_head(FILE *fp, const char *tool, const char *model, const char *model_sha, const char *out);
/* A JSON string, or null for NULL. */
void sq_json_string_or_null(FILE *fp, const char *s);
/* `  "layers": [...]` from the block reports, then "\n  ],\n". */
void sq_json_blocks(FILE *fp, const sq_progress *p);
/* Commits an atomically written JSON file, or on a write error drops it ("<path>: write failed"). */
sq_status sq_json_finish(sq_atomic_file *f, const char *path);

#endif
