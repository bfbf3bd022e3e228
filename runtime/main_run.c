/* main_run.c - the squish-run binary. */
#include "run.h"
int main(int argc, char **argv) { return sq_run_main(argc, argv); }
