#!/usr/bin/env bash
# cli_fuzz.sh - a short, deterministic run of the reader fuzzer (tests/fuzz/fuzz_readers.py,
# tests/fuzz/README.md): fixed seed, a few cases per target, every reader of the tools; any
# sanitizer report, signal, hang, non-one-line error or leftover output fails. The byte-level
# HDF5 targets are left out: their findings are inside libhdf5 (README, "Results").
source "$(dirname "$0")/lib_cli.sh"

if ! command -v python3 >/dev/null; then
    skip fuzz_smoke "python3 not available"
    finish
    exit
fi
out=$(python3 "$(dirname "$0")/fuzz/fuzz_readers.py" --build "${BIN%/bin}" --shared "$SHARED" --cases "${SQUISH_FUZZ_CASES:-6}" \
      --seed 1 --skip h5-store,h5-qstore,h5-calib 2>&1)
rc=$?
n=$(printf '%s\n' "$out" | grep -E '^[a-z0-9-]+ +[0-9]+ cases' | awk '{s += $2} END {print s + 0}')
if [ $rc -eq 0 ] && [ "$n" -gt 0 ]; then
    pass "fuzz_smoke ($n cases)"
else
    fail fuzz_smoke "$(printf '%s\n' "$out" | grep -E '^  |SEED|fuzz_readers' | head -5)"
fi
finish
