/* driver.h - `squish recipe run|compare|check` (docs/recipes.md): runs a recipe's stages by
 * fork/exec of the sibling tool binaries (crash isolation, per-stage wall time and peak
 * memory from wait4's rusage), caches what later runs can reuse, resumes interrupted runs,
 * writes a manifest last; compares runs (table + SVG plot) and gates them for CI. */
#ifndef SQ_DRIVER_H
#define SQ_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/recipe.h"
#include "../runtime/status.h"

/* exit code of run/check when a quality gate fails (artifacts and reports are complete) */
#define SQ_EXIT_GATE 3

typedef struct {
    const char *out_dir;   /* NULL: runs/<name> */
    const char *cache_dir; /* NULL: <out_dir>/.cache */
    int threads;           /* 0: the tools' default */
    bool quiet;
    bool no_report;        /* do not print report.md on stdout (compare, check) */
} sq_run_opts;

/* ----- exec.c: child processes ----- */
typedef struct {
    int exit_code;   /* -1 when killed by a signal */
    int signal;
    double wall_s;
    long peak_rss_kb;
} sq_proc;

/* Directory of the running executable (where squish-quantize etc. sit); static storage. */
const char *sq_drv_bindir(void);
/* Runs argv[0] (a tool name resolved in sq_drv_bindir(), or a path) with cwd, stdout and
 * stderr appended to log_path. SIGINT/SIGTERM/SIGHUP received meanwhile are forwarded to
 * the child and make this return SQ_ERR_INTERRUPTED. */
sq_status sq_drv_exec(const char *cwd, char *const argv[], const char *log_path, sq_proc *res);
/* The command as one shell line ("cd DIR && tool 'arg' ..."), malloc'ed. */
char *sq_drv_cmdline(const char *cwd, char *const argv[]);
/* True after a stop signal arrived (the driver stops between steps too). */
bool sq_drv_stopped(void);
void sq_drv_install_signals(void);
/* Last non-empty line of a log file into buf ("" if none). */
void sq_drv_log_tail(const char *path, char *buf, size_t size);

/* ----- run.c ----- */
/* Runs the recipe into opts->out_dir; *gates_ok reports the recipe's gates (true if none). */
sq_status sq_recipe_run(const sq_recipe *r, const sq_run_opts *opts, bool *gates_ok);
/* The default run directory of a recipe: runs/<name> (malloc'ed). */
char *sq_recipe_default_dir(const sq_recipe *r);
/* Loads a JSON file (cJSON *, NULL with a message on failure). */
void *sq_drv_load_json(const char *path);
/* Writes text atomically. */
sq_status sq_drv_write_text(const char *path, const char *text);
/* mkdir -p PATH (0755); an error names the first directory that could not be made. */
sq_status sq_drv_mkdirs(const char *path);

/* A finished run for ITEM: a run directory with manifest.json, or a recipe whose run
 * directory (runs/<name>) is used, after running the recipe when it has no manifest yet
 * (cache: opts->cache_dir, default runs/.cache). The directory goes to dir. */
sq_status sq_drv_ensure_run(const char *item, const sq_run_opts *opts, char *dir, size_t size);

/* ----- compare.c: table (Markdown, JSON) and an accuracy-vs-size plot (SVG, PNG) ----- */
sq_status sq_recipe_compare(const char *const *items, int n, const sq_run_opts *opts, const char *prefix);

/* ----- check.c: quality gates against a baseline ----- */
typedef struct {
    const char *baseline;          /* eval.json of a run, or squish-eval --json */
    bool has_max_ppl_increase, has_max_kld;
    double max_ppl_increase, max_kld;
    const char *json, *junit;      /* optional outputs */
} sq_check_opts;
/* Compares the run in dir (recipe r) with the baseline; prints a readable diff; *pass. */
sq_status sq_recipe_check(const sq_recipe *r, const char *dir, const sq_check_opts *co, bool quiet, bool *pass);

#endif
