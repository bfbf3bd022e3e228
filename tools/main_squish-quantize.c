/* main_squish-quantize.c - the squish-quantize binary. */
#include "tools.h"
int main(int argc, char **argv) { return sq_quantize_main(argc, argv); }
