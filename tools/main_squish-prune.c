/* main_squish-prune.c - the squish-prune binary. */
#include "tools.h"
int main(int argc, char **argv) { return sq_prune_main(argc, argv); }
