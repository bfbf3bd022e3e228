/* main_squish-convert.c - the squish-convert binary. */
#include "tools.h"
int main(int argc, char **argv) { return sq_convert_main(argc, argv); }
