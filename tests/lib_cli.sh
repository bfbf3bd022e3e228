# lib_cli.sh - helpers for the tests/cli_*.sh scripts (sourced, not run).
# Each check prints "ok   name" or "FAIL name: why"; finish prints the summary and
# returns non-zero if anything failed.
set -u
BIN=${SQUISH_BIN:-build/bin}
TOOLS=${BIN%/bin}/tests
SHARED=${SQUISH_SHARED:-../shared}
T=$(mktemp -d "${TMPDIR:-/tmp}/squish-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
n_pass=0; n_fail=0; n_skip=0

pass() { echo "ok   $1"; n_pass=$((n_pass+1)); }
fail() { echo "FAIL $1: $2"; n_fail=$((n_fail+1)); }
skip() { echo "skip $1: $2"; n_skip=$((n_skip+1)); }

# expect_fail NAME PATTERN CMD...: CMD must exit 1, print one stderr line matching PATTERN
expect_fail() {
    local name=$1 pat=$2; shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 1 ]; then fail "$name" "exit $rc (want 1): $err"; return; fi
    if [ "$(printf '%s\n' "$err" | grep -c .)" -ne 1 ]; then fail "$name" "want one line, got: $err"; return; fi
    if ! printf '%s' "$err" | grep -qE -- "$pat"; then fail "$name" "message '$err' does not match '$pat'"; return; fi
    pass "$name"
}

# expect_ok NAME CMD...: CMD must exit 0
expect_ok() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "exit $?: $(printf '%s' "$out" | tail -n 3)"; fi
}

# no_file NAME PATH: nothing named PATH or PATH.tmp.* may exist
no_file() {
    if ls "$2" "$2".tmp.* >/dev/null 2>&1; then fail "$1" "left $(ls "$2"* | tr '\n' ' ')"; else pass "$1"; fi
}

# tiny_store_and_text: $T/tiny.h5 (tool_make_tiny's HF model, imported) and $T/data.txt (1,500
# words of a 21-word vocabulary); returns non-zero if the model could not be made
tiny_store_and_text() {
    "$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null && "$BIN/squish-convert" import "$T/hf" -o "$T/tiny.h5" >/dev/null 2>&1 \
        || return 1
    local words=(the cat sat on a mat and she was happy to see it in sun Tom ran home with his dog) i
    { for i in $(seq 1 1500); do printf '%s ' "${words[$(( (i * 7 + i / 5) % ${#words[@]} ))]}"; done; echo; } > "$T/data.txt"
}

finish() {
    echo "$n_pass passed, $n_fail failed, $n_skip skipped"
    [ "$n_fail" -eq 0 ]
}
