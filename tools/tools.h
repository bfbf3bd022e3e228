/* tools.h - entry points of the squish tools. Each is shared by its standalone binary
 * (tools/main_squish-<tool>.c) and the multi-call `squish <tool> ...`. They return the
 * process exit code: 0 success, 1 usage or input error, 2 runtime failure. */
#ifndef SQ_TOOLS_H
#define SQ_TOOLS_H
int sq_convert_main(int argc, char **argv);
int sq_calibrate_main(int argc, char **argv);
int sq_quantize_main(int argc, char **argv);
int sq_prune_main(int argc, char **argv);
int sq_recipe_main(int argc, char **argv);
int sq_eval_main(int argc, char **argv);
int sq_run_main(int argc, char **argv);
#endif
