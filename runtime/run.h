/* run.h - entry point of squish-run, shared by its standalone binary and `squish run`. */
#ifndef SQ_RUN_H
#define SQ_RUN_H
int sq_run_main(int argc, char **argv);
#endif
