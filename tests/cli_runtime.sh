#!/usr/bin/env bash
# cli_runtime.sh - runtime/ builds on its own (make -C runtime) with only a C compiler and
# libm, without OpenMP too, and the squish-run it makes links no toolchain library and
# runs a model exactly as the full build's squish-run does.
source "$(dirname "$0")/lib_cli.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if make -s -C "$ROOT/runtime" BUILD="$T/rt" OPENMP=0 CFLAGS="-O1 -Werror" >"$T/build.log" 2>&1; then pass runtime_standalone_build
else fail runtime_standalone_build "$(tail -n 5 "$T/build.log")"; finish; exit 1; fi
if ldd "$T/rt/squish-run" | grep -qiE "hdf5|yaml|cjson|lapack|blas|gomp"; then
    fail runtime_no_deps "$(ldd "$T/rt/squish-run" | tr '\n' ' ')"
else pass runtime_no_deps; fi
"$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null && "$BIN/squish-convert" "$T/hf" -o "$T/m.sqz" >/dev/null 2>&1
a=$("$T/rt/squish-run" "$T/m.sqz" -p "abc" -n 12 --temp 0 -q --ids)
b=$("$BIN/squish-run" "$T/m.sqz" -p "abc" -n 12 --temp 0 -q --ids -t 1)
[ -n "$a" ] && [ "$a" = "$b" ] && pass runtime_same_tokens || fail runtime_same_tokens "'$a' vs '$b'"
finish
