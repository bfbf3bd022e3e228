/* main_squish-calibrate.c - the squish-calibrate binary. */
#include "tools.h"
int main(int argc, char **argv) { return sq_calibrate_main(argc, argv); }
