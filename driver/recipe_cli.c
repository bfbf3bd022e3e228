/* recipe_cli.c - `squish recipe run|compare|check` (docs/recipes.md): option parsing and
 * exit codes (0 ok, 1 bad recipe or usage, 2 runtime failure, 3 a quality gate failed,
 * 130 interrupted); the work is in run.c, compare.c and check.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "../tools/tools.h"
#include "driver.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: squish recipe run RECIPE [-o DIR] [--cache DIR] [-t N] [-q]\n"
            "       squish recipe compare R1 R2 ... [-o REPORT] [--cache DIR] [-t N] [-q]\n"
            "       squish recipe check RECIPE --baseline EVAL.json [--run DIR] [--max-ppl-increase P]\n"
            "                           [--max-kld X] [--json OUT.json] [--junit OUT.xml] [-t N] [-q]\n"
            "       squish recipe validate RECIPE       (parse and print the resolved recipe)\n"
            "\n"
            "A recipe (YAML, docs/recipes.md) names a model, calibration data, prune/quantize stages,\n"
            "the evaluation and quality gates. run executes it with the squish tools beside this\n"
            "binary and writes DIR (default runs/<name>): model.h5, model.sqz, eval.json, report.md\n"
            "and manifest.json (written last: hashes, commands, wall time and peak memory per step).\n"
            "An interrupted run resumes after its last finished step when rerun. Exit status: 0 ok,\n"
            "1 bad recipe or usage, 2 a tool failed, 3 a quality gate failed, 130 interrupted.\n"
            "\n"
            "options:\n"
            "  -o, --output DIR     run directory (run) or report prefix (compare; default compare)\n"
            "      --cache DIR      cache for converted stores, calib.h5 and base evaluations\n"
            "                       (default DIR/.cache; compare/check default runs/.cache)\n"
            "  -t, --threads N      threads for every tool (outputs do not depend on it)\n"
            "      --run DIR        (check) the run directory (default runs/<name>; run if missing)\n"
            "      --baseline FILE  (check) an eval.json of an earlier run, or a squish-eval --json\n"
            "      --max-ppl-increase P  (check) e.g. 1%% (default: the recipe's gates)\n"
            "      --max-kld X      (check) maximum mean KLD against the base model\n"
            "      --json FILE      (check) gate results as JSON\n"
            "      --junit FILE     (check) gate results as JUnit XML\n"
            "  -q, --quiet          no progress output\n"
            "  -h, --help           this help\n"
            "\n"
            "examples:\n"
            "  squish recipe run recipes/w4-gptq-g128.yaml -o runs/w4\n"
            "  squish recipe compare recipes/w8-rtn.yaml recipes/w4-gptq-g128.yaml -o cmp\n"
            "  squish recipe check recipes/w4-gptq-g128.yaml --baseline runs/w4/eval.json --max-ppl-increase 1%%\n");
}

static int status_exit(sq_status st) {
    if (st == SQ_ERR_INTERRUPTED) return 130;
    return st == SQ_ERR_ARG || st == SQ_ERR_FORMAT ? 1 : 2;
}

/* Shared option parsing: fills opts and the positional list. */
typedef struct {
    sq_run_opts run;
    const char *pos[64];
    int n_pos;
    const char *baseline, *run_dir, *json, *junit, *max_ppl, *max_kld;
} cli;

static int parse(int argc, char **argv, cli *c, const char *sub) {
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c->run.quiet = true;
            continue;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) dst = &c->run.out_dir;
        else if (!strcmp(a, "--cache")) dst = &c->run.cache_dir;
        else if (!strcmp(a, "--baseline")) dst = &c->baseline;
        else if (!strcmp(a, "--run")) dst = &c->run_dir;
        else if (!strcmp(a, "--json")) dst = &c->json;
        else if (!strcmp(a, "--junit")) dst = &c->junit;
        else if (!strcmp(a, "--max-ppl-increase")) dst = &c->max_ppl;
        else if (!strcmp(a, "--max-kld")) dst = &c->max_kld;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            char *end;
            if (i + 1 >= argc || (c->run.threads = (int)strtol(argv[i + 1], &end, 10)) < 1 || *end) {
                fprintf(stderr, "squish recipe %s: -t needs a positive number\n", sub);
                return 1;
            }
            i++;
            continue;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "squish recipe %s: unknown option '%s' (see squish recipe --help)\n", sub, a);
            return 1;
        } else {
            if (c->n_pos >= 64) {
                fprintf(stderr, "squish recipe %s: too many arguments\n", sub);
                return 1;
            }
            c->pos[c->n_pos++] = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "squish recipe %s: %s needs a value\n", sub, a);
            return 1;
        }
        *dst = argv[++i];
    }
    return 0;
}

static int cmd_run(int argc, char **argv) {
    cli c;
    int rc = parse(argc, argv, &c, "run");
    if (rc) return rc < 0 ? 0 : rc;
    if (c.n_pos != 1) {
        fprintf(stderr, "squish recipe run: expected one RECIPE (see squish recipe --help)\n");
        return 1;
    }
    sq_recipe r;
    sq_status st = sq_recipe_load(c.pos[0], &r);
    if (st) {
        fprintf(stderr, "squish recipe run: %s\n", sq_last_error());
        return status_exit(st);
    }
    bool ok = true;
    sq_drv_install_signals();
    st = sq_recipe_run(&r, &c.run, &ok);
    sq_recipe_free(&r);
    if (st) {
        fprintf(stderr, "squish recipe run: %s\n", sq_last_error());
        return status_exit(st);
    }
    return ok ? 0 : SQ_EXIT_GATE;
}

static int cmd_validate(int argc, char **argv) {
    cli c;
    int rc = parse(argc, argv, &c, "validate");
    if (rc) return rc < 0 ? 0 : rc;
    if (c.n_pos != 1) {
        fprintf(stderr, "squish recipe validate: expected one RECIPE\n");
        return 1;
    }
    sq_recipe r;
    sq_status st = sq_recipe_load(c.pos[0], &r);
    if (st) {
        fprintf(stderr, "squish recipe validate: %s\n", sq_last_error());
        return status_exit(st);
    }
    char *j = sq_recipe_to_json(&r);
    if (j) puts(j);
    free(j);
    sq_recipe_free(&r);
    return 0;
}

static int cmd_compare(int argc, char **argv) {
    cli c;
    int rc = parse(argc, argv, &c, "compare");
    if (rc) return rc < 0 ? 0 : rc;
    if (c.n_pos < 1) {
        fprintf(stderr, "squish recipe compare: expected recipes or run directories (see squish recipe --help)\n");
        return 1;
    }
    const char *prefix = c.run.out_dir;
    c.run.out_dir = NULL;
    sq_drv_install_signals();
    sq_status st = sq_recipe_compare(c.pos, c.n_pos, &c.run, prefix);
    if (st) {
        fprintf(stderr, "squish recipe compare: %s\n", sq_last_error());
        return status_exit(st);
    }
    return 0;
}

static int cmd_check(int argc, char **argv) {
    cli c;
    int rc = parse(argc, argv, &c, "check");
    if (rc) return rc < 0 ? 0 : rc;
    if (c.n_pos != 1 || !c.baseline) {
        fprintf(stderr, "squish recipe check: expected RECIPE --baseline EVAL.json (see squish recipe --help)\n");
        return 1;
    }
    sq_check_opts co = {.baseline = c.baseline, .json = c.json, .junit = c.junit};
    if (c.max_ppl) {
        if (!sq_parse_fraction(c.max_ppl, &co.max_ppl_increase)) {
            fprintf(stderr, "squish recipe check: --max-ppl-increase '%s': expected a percentage like 1%% or a fraction\n",
                    c.max_ppl);
            return 1;
        }
        co.has_max_ppl_increase = true;
    }
    if (c.max_kld) {
        if (!sq_parse_fraction(c.max_kld, &co.max_kld) || strchr(c.max_kld, '%')) {
            fprintf(stderr, "squish recipe check: --max-kld '%s': expected a non-negative number\n", c.max_kld);
            return 1;
        }
        co.has_max_kld = true;
    }
    sq_recipe r;
    sq_status st = sq_recipe_load(c.pos[0], &r);
    if (st) {
        fprintf(stderr, "squish recipe check: %s\n", sq_last_error());
        return status_exit(st);
    }
    char *def = c.run_dir ? NULL : sq_recipe_default_dir(&r);
    const char *dir = c.run_dir ? c.run_dir : def;
    char *m = dir ? sq_path_join(dir, "manifest.json") : NULL;
    sq_drv_install_signals();
    if (!m) st = sq_errorf(SQ_ERR_OOM, "out of memory");
    else if (!sq_file_exists(m)) {
        sq_run_opts o = c.run;
        o.out_dir = dir;
        bool ok;
        st = sq_recipe_run(&r, &o, &ok);
    }
    bool pass = false;
    if (!st) st = sq_recipe_check(&r, dir, &co, c.run.quiet, &pass);
    free(m);
    free(def);
    sq_recipe_free(&r);
    if (st) {
        fprintf(stderr, "squish recipe check: %s\n", sq_last_error());
        return status_exit(st);
    }
    return pass ? 0 : SQ_EXIT_GATE;
}

int sq_recipe_main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "validate")) return cmd_validate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "compare")) return cmd_compare(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check")) return cmd_check(argc - 1, argv + 1);
    fprintf(stderr, "squish recipe: unknown command '%s' (run, compare, check, validate)\n", argv[1]);
    return 1;
}
