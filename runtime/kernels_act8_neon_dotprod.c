/* kernels_act8_neon_dotprod.c - kernels_act8_neon.c compiled a second time for ARMv8.2-A
 * with the dot-product extension (`sdot`), as sq_kernels_neon_act8_dotprod. The target is set
 * for this translation unit only (a gcc pragma), so the rest of the runtime stays ARMv8.0;
 * kernels.c uses these kernels only when the CPU reports dotprod (Arm ARM: FEAT_DotProd;
 * Linux HWCAP_ASIMDDP). clang's arm_neon.h (14) declares `sdot` only when the whole file is
 * built for it (-march=armv8.2-a+dotprod); otherwise the getter returns NULL and the plain
 * NEON kernels are used.
 */
#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#define SQ_ACT8_NEON_DOTPROD 1 /* names the getter; selects sdot in the kernels */

#include "kernels_act8_neon.c"
