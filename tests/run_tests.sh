#!/usr/bin/env bash
# run_tests.sh - runs every test executable in $BUILD/tests and every tests/cli_*.sh
# script, then prints one "N passed, N failed" line (suites, not checks).
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
export SQUISH_BIN="$PWD/$BUILD/bin"
pass=0; fail=0; failed=()
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    start=$(date +%s)
    if out=$("$t" 2>&1); then
        pass=$((pass+1)); status=PASS
    else
        fail=$((fail+1)); failed+=("$name"); status=FAIL
    fi
    printf '%-28s %s (%ss)  %s\n' "$name" "$status" "$(( $(date +%s) - start ))" "$(echo "$out" | tail -n 1)"
    [ "$status" = FAIL ] && echo "$out" | grep -v '^ok ' | sed 's/^/    /'
done
for t in tests/cli_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    start=$(date +%s)
    if out=$(bash "$t" 2>&1); then
        pass=$((pass+1)); status=PASS
    else
        fail=$((fail+1)); failed+=("$name"); status=FAIL
    fi
    printf '%-28s %s (%ss)  %s\n' "$name" "$status" "$(( $(date +%s) - start ))" "$(echo "$out" | tail -n 1)"
    [ "$status" = FAIL ] && echo "$out" | sed 's/^/    /'
done
echo "$pass passed, $fail failed${failed:+ (${failed[*]})}"
[ "$fail" -eq 0 ]
