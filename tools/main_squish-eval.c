/* main_squish-eval.c - the squish-eval binary. */
#include "tools.h"
int main(int argc, char **argv) { return sq_eval_main(argc, argv); }
