# runtime/sources.mk - the runtime's source list, shared by the top-level Makefile and
# runtime/Makefile (which builds the runtime alone, with no toolchain dependencies).
# RT_DIR is the runtime directory relative to the including Makefile.

# SIMD variants, compiled with their own flags and chosen at run time.
# kernels_quant_<isa>.c (group-quantized weights), kernels_sparse_<isa>.c (sparse
# weights) and kernels_act8_<isa>.c (int8 activations) take the flags of kernels_<isa>.c.
RT_SRC_X86 := $(RT_DIR)/kernels_avx2.c $(RT_DIR)/kernels_avx512.c \
              $(RT_DIR)/kernels_quant_avx2.c $(RT_DIR)/kernels_quant_avx512.c \
              $(RT_DIR)/kernels_sparse_avx2.c $(RT_DIR)/kernels_sparse_avx512.c \
              $(RT_DIR)/kernels_act8_avx2.c $(RT_DIR)/kernels_act8_avx512.c
# kernels_act8_neon_dotprod.c recompiles kernels_act8_neon.c for ARMv8.2-A+dotprod by a
# pragma of its own (no flags here); kernels.c uses it only on CPUs that report dotprod.
RT_SRC_ARM := $(RT_DIR)/kernels_neon.c $(RT_DIR)/kernels_act8_neon.c $(RT_DIR)/kernels_act8_neon_dotprod.c
RT_FLAGS_AVX2 := -mavx2 -mfma -mf16c
RT_FLAGS_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mfma -mf16c

# squish-run's entry point (sq_run_main) and its three-line main.
RT_RUN_SRC := $(RT_DIR)/run.c
RT_RUN_MAIN := $(RT_DIR)/main_run.c

# Everything else in runtime/ is the library.
RT_SRC := $(filter-out $(RT_SRC_X86) $(RT_SRC_ARM) $(RT_RUN_SRC) $(RT_RUN_MAIN),$(wildcard $(RT_DIR)/*.c))
