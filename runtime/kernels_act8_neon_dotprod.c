/* kernels_act8_neon_dotprod.c - kernels_act8_neon.c compiled a second time for ARMv8.2-A
 * with the dot-product extension (`sdot`), as sq_kernels_neon_act8_dotprod. The target is set
 * for this translation unit only, so the rest of the runtime stays ARMv8.0; kernels.c uses
 * these kernels only when the CPU reports dotprod (Arm ARM: FEAT_DotProd; Linux HWCAP_ASIMDDP).
 */
#if defined(__aarch64__) && defined(__GNUC__)
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#endif
#define SQ_ACT8_NEON_DOTPROD 1 /* names the getter; selects sdot in the kernels */

#include "kernels_act8_neon.c"

#if defined(__aarch64__) && defined(__clang__)
#pragma clang attribute pop
#endif
