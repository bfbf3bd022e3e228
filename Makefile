# squish - top-level Makefile.
#
#   make            build everything into build/ (bin/, lib/, tests/)
#   make demo       install missing Debian packages, build, run the main job
#   make test       install missing Debian packages, build, run the tests (normal build, then
#                   under AddressSanitizer + UBSan)
#   make check      run the tests of the current build flavour only
#   make bench      speed table (bench/README.md)
#   make install PREFIX=/usr/local
#   make SAN=1      sanitizer build in build-san/      make DEBUG=1   -O0 build
#   make NATIVE=1   add -march=native                  make OPENMP=0  no OpenMP
#
# runtime/ builds on its own with no dependencies: make -C runtime

.DEFAULT_GOAL := all
SHELL := /bin/bash

PREFIX ?= /usr/local
OPENMP ?= 1
SAN ?= 0
DEBUG ?= 0
NATIVE ?= 0

ifeq ($(SAN),1)
  BUILD ?= build-san
else
  BUILD ?= build
endif

ifeq ($(DEBUG),1)
  OPT := -O0
else
  OPT := -O2
endif

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror
BASE_CFLAGS := -std=c11 $(OPT) -g $(WARN) -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -MMD -MP
BASE_LDFLAGS :=
ifeq ($(OPENMP),1)
  BASE_CFLAGS += -fopenmp
  BASE_LDFLAGS += -fopenmp
else
  BASE_CFLAGS += -Wno-unknown-pragmas
endif
ifeq ($(SAN),1)
  BASE_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  BASE_LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(NATIVE),1)
  BASE_CFLAGS += -march=native
endif
# FUZZ=1: clang with libFuzzer coverage, for `make fuzz` (tests/fuzz/README.md)
FUZZ ?= 0
ifeq ($(FUZZ),1)
  CC := clang
  BASE_CFLAGS += -fsanitize=fuzzer-no-link -Wno-error
endif

MACHINE := $(shell $(CC) -dumpmachine)
RT_DIR := runtime
include runtime/sources.mk
ifneq ($(filter x86_64% amd64% i686%,$(MACHINE)),)
  RT_SRC += $(RT_SRC_X86)
else ifneq ($(filter aarch64% arm%,$(MACHINE)),)
  RT_SRC += $(RT_SRC_ARM)
endif

# ----- toolchain dependencies (pkg-config) -----
PKGS := hdf5 yaml-0.1 libcjson lapacke openblas
DEPS_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEPS_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CORE_SRC := $(wildcard core/*.c)
TOOL_SRC := $(wildcard convert/*.c eval/*.c calibrate/*.c quantize/*.c tools/*.c)
TOOL_SRC += $(wildcard prune/*.c)
TOOL_SRC += $(wildcard driver/*.c)
TOOL_SRC := $(filter-out tools/main_%.c,$(TOOL_SRC))

OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
RT_OBJ := $(call OBJ,$(RT_SRC))
CORE_OBJ := $(call OBJ,$(CORE_SRC) $(TOOL_SRC) $(RT_RUN_SRC))

RT_LIB := $(BUILD)/lib/libsquish_rt.a
CORE_LIB := $(BUILD)/lib/libsquish.a

BINS := squish-convert squish-eval squish-calibrate squish-quantize squish
BINS += squish-prune
BIN_PATHS := $(addprefix $(BUILD)/bin/,$(BINS)) $(BUILD)/bin/squish-run

TEST_SRC := $(wildcard tests/test_*.c tests/tool_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_BINS := $(BUILD)/bin/make_bench_model

.PHONY: all lib bins tests deps check-deps test check demo bench install clean runtime-only cross-check
# keep object files of the chained pattern rules (main_*.o, test_*.o) between runs
.SECONDARY:

all: bins tests

bins: $(BIN_PATHS) $(BENCH_BINS)
tests: $(TEST_BINS)

check-deps:
	@pkg-config --exists $(PKGS) || { echo "squish: missing build dependencies ($$(for p in $(PKGS); do pkg-config --exists $$p || printf '%s ' $$p; done)); run 'make deps' or: apt-get install libhdf5-dev hdf5-tools libyaml-dev libcjson-dev liblapacke-dev libopenblas-dev pkg-config" >&2; exit 1; }

deps:
	@bash scripts/install-deps.sh

# ----- compile -----
$(BUILD)/obj/runtime/kernels_avx2.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX2)
$(BUILD)/obj/runtime/kernels_avx512.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX512)
$(BUILD)/obj/runtime/kernels_quant_avx2.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX2)
$(BUILD)/obj/runtime/kernels_quant_avx512.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX512)
$(BUILD)/obj/runtime/kernels_sparse_avx2.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX2)
$(BUILD)/obj/runtime/kernels_sparse_avx512.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX512)
$(BUILD)/obj/runtime/kernels_act8_avx2.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX2)
$(BUILD)/obj/runtime/kernels_act8_avx512.o: EXTRA_CFLAGS := $(RT_FLAGS_AVX512)

$(BUILD)/obj/runtime/%.o: runtime/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(EXTRA_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(DEPS_CFLAGS) -c $< -o $@

$(RT_LIB): $(RT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

LIBS := $(CORE_LIB) $(RT_LIB) $(DEPS_LIBS) -lm

$(BUILD)/bin/squish-run: $(call OBJ,$(RT_RUN_SRC) $(RT_RUN_MAIN)) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $^ -lm -o $@

$(BUILD)/bin/%: $(BUILD)/obj/tools/main_%.o $(CORE_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $< $(LIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(CORE_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $< $(LIBS) -o $@

$(BUILD)/bin/make_bench_model: $(BUILD)/obj/bench/make_bench_model.o $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $^ -lm -o $@

# ----- bench-kernels: matmul micro-benchmark (bench/bench_kernels.c); also built by `make`
# so it never rots. Run: make bench-kernels && $(BUILD)/bin/bench_kernels [-q] [-s small]
.PHONY: bench-kernels
bins: $(BUILD)/bin/bench_kernels
bench-kernels: $(BUILD)/bin/bench_kernels
$(BUILD)/bin/bench_kernels: $(BUILD)/obj/bench/bench_kernels.o $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $^ -lm -o $@

# tools/main_squish-convert.c etc. are three-line mains
$(BUILD)/obj/tools/main_%.o: tools/main_%.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(DEPS_CFLAGS) -c $< -o $@

# ----- run -----
# `make test`: install what is missing, then the normal build's tests, then the sanitizer
# build's tests (SQUISH_TEST_QUICK=1 there skips the full-text evaluations that the
# normal run already did).
test: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory check
	$(MAKE) --no-print-directory SAN=1 all
	SQUISH_TEST_QUICK=1 $(MAKE) --no-print-directory SAN=1 check

check: all
	@BUILD=$(BUILD) bash tests/run_tests.sh

demo: deps
	$(MAKE) --no-print-directory bins
	@BUILD=$(BUILD) MODEL="$(MODEL)" bash scripts/demo.sh

bench: deps
	$(MAKE) --no-print-directory bins
	@BUILD=$(BUILD) bash bench/run_bench.sh

install: bins
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BIN_PATHS) $(DESTDIR)$(PREFIX)/bin/

runtime-only:
	$(MAKE) -C runtime

# aarch64: cross-build the runtime and run the kernel tests (NEON vs reference) and a
# generation under qemu. Needs: apt-get install gcc-aarch64-linux-gnu qemu-user
# test_act8 runs three times: qemu's default CPU (dotprod: the sdot ACT8 kernels selected),
# SQUISH_NO_DOTPROD=1 (plain NEON selected) and a Cortex-A72 (no dotprod: plain NEON).
CROSS ?= aarch64-linux-gnu
cross-check:
	$(MAKE) -s -C runtime BUILD=$(CURDIR)/build-$(CROSS) CC=$(CROSS)-gcc CFLAGS="-O2" LDFLAGS="-static"
	$(CROSS)-gcc -std=c11 -O2 -static -fopenmp -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L tests/test_kernels.c \
		build-$(CROSS)/libsquish_rt.a -lm -o build-$(CROSS)/test_kernels 2>/dev/null
	qemu-$(firstword $(subst -, ,$(CROSS))) build-$(CROSS)/test_kernels
	$(CROSS)-gcc -std=c11 -O2 -static -fopenmp -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L tests/test_act8.c \
		build-$(CROSS)/libsquish_rt.a -lm -o build-$(CROSS)/test_act8 2>/dev/null
	qemu-$(firstword $(subst -, ,$(CROSS))) build-$(CROSS)/test_act8
	SQUISH_NO_DOTPROD=1 qemu-$(firstword $(subst -, ,$(CROSS))) build-$(CROSS)/test_act8
	qemu-$(firstword $(subst -, ,$(CROSS))) -cpu cortex-a72 build-$(CROSS)/test_act8

# ----- fuzz: libFuzzer harnesses of the readers (tests/fuzz/README.md), outside the default build:
#   make FUZZ=1 SAN=1 OPENMP=0 BUILD=build-fuzz fuzz && build-fuzz/fuzz/fuzz_gguf -max_total_time=60
FUZZ_READERS := sqz gguf safetensors llama2c tokbin spm hfjson kld
.PHONY: fuzz
fuzz: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_READERS))
$(BUILD)/fuzz/fuzz_%: tests/fuzz/libfuzzer_readers.c $(CORE_LIB) $(RT_LIB)
	@test "$(FUZZ)" = 1 || { echo "make fuzz needs FUZZ=1 (clang, libFuzzer)" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(DEPS_CFLAGS) -DFUZZ_$(shell echo $* | tr a-z A-Z) -fsanitize=fuzzer $< $(LIBS) -o $@

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
