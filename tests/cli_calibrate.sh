#!/usr/bin/env bash
# cli_calibrate.sh - squish-calibrate from the command line: calibration of a tiny
# generated model from text and jsonl, byte-identical calib.h5 at -t 1 and -t 2 and across
# runs, info / imatrix subcommands, the multi-call binary, stories260K on TinyStories when
# ../shared is present, and bad input: exit status 1, one line naming the problem, no
# output file left behind.
source "$(dirname "$0")/lib_cli.sh"
CAL="$BIN/squish-calibrate"

"$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null && "$BIN/squish-convert" import "$T/hf" -o "$T/tiny.h5" >/dev/null 2>&1 \
    || { fail make_tiny "tool_make_tiny / import failed"; finish; exit 1; }

# calibration data: pseudo-text, and jsonl with two short documents among long ones
words=(the cat sat on a mat and she was happy to see it in sun Tom ran home with his dog)
{ for i in $(seq 1 600); do printf '%s ' "${words[$(( (i * 7 + i / 5) % ${#words[@]} ))]}"; done; echo; } > "$T/data.txt"
{ for d in 1 2 3 4; do
      printf '{"id": %d, "text": "' "$d"
      for i in $(seq 1 $((d * 60))); do printf '%s ' "${words[$(( (i * d + 3) % ${#words[@]} ))]}"; done
      printf '"}\n'
  done; printf '{"text": "short"}\n\n'; } > "$T/data.jsonl"

expect_ok calibrate_text "$CAL" "$T/tiny.h5" --data "$T/data.txt" --samples 6 --seq-len 32 --seed 1 -o "$T/c.h5" -q
expect_ok calibrate_jsonl "$CAL" "$T/tiny.h5" --data "$T/data.jsonl" --samples 4 --seq-len 32 -o "$T/j.h5" -q
expect_ok calibrate_hf_dir "$CAL" "$T/hf" --data "$T/data.txt" --samples 2 --seq-len 16 -o "$T/hfc.h5" -q
expect_ok info "$CAL" info "$T/c.h5"
expect_ok multicall "$BIN/squish" calibrate info "$T/j.h5"
if "$CAL" info "$T/j.h5" | grep -q "jsonl"; then pass info_jsonl; else fail info_jsonl "info does not say jsonl"; fi

# the summary line on stdout names the output, the windows and the model hash
out=$("$CAL" "$T/tiny.h5" --data "$T/data.txt" --samples 3 --seq-len 16 -o "$T/s.h5" --json "$T/s.json" 2>/dev/null)
sha=$(sha256sum "$T/tiny.h5" | cut -d' ' -f1)
if printf '%s' "$out" | grep -q "s.h5: 3 windows x 16 tokens = 48 tokens" && printf '%s' "$out" | grep -q "model_sha256=$sha"
then pass summary_line; else fail summary_line "got '$out'"; fi
if grep -q "\"model_sha256\": \"$sha\"" "$T/s.json" && grep -q '"calibration_tokens": 48' "$T/s.json"
then pass summary_json; else fail summary_json "$(cat "$T/s.json" 2>/dev/null)"; fi
# progress: one line per window on stderr when it is not a terminal
n=$("$CAL" "$T/tiny.h5" --data "$T/data.txt" --samples 5 --seq-len 16 -o "$T/p.h5" 2>&1 >/dev/null | grep -c '^\[[0-9]*/5\] window.*ETA')
[ "$n" = 5 ] && pass progress_lines || fail progress_lines "$n progress lines, want 5"

# byte-identical at -t 1 and -t 2 and across runs (the same command in two folders; -t is
# left out of the recorded command line)
for d in a b c; do mkdir -p "$T/$d"; done
(cd "$T/a" && "$CAL" ../tiny.h5 --data ../data.txt --samples 6 --seq-len 32 --seed 4 -o c.h5 -q -t 1 >/dev/null)
(cd "$T/b" && "$CAL" ../tiny.h5 --data ../data.txt --samples 6 --seq-len 32 --seed 4 -o c.h5 -q -t 2 >/dev/null)
(cd "$T/c" && "$CAL" ../tiny.h5 --data ../data.txt --samples 6 --seq-len 32 --seed 4 -o c.h5 -q -t 2 >/dev/null)
if [ -s "$T/a/c.h5" ] && cmp -s "$T/a/c.h5" "$T/b/c.h5"; then pass threads_identical
else fail threads_identical "-t 1 and -t 2 differ"; fi
if [ -s "$T/b/c.h5" ] && cmp -s "$T/b/c.h5" "$T/c/c.h5"; then pass runs_identical; else fail runs_identical "two runs differ"; fi
(cd "$T/c" && "$CAL" ../tiny.h5 --data ../data.txt --samples 6 --seq-len 32 --seed 5 -o c.h5 -q >/dev/null)
if cmp -s "$T/b/c.h5" "$T/c/c.h5"; then fail seed_changes "another seed gave the same file"; else pass seed_changes; fi

# imatrix: --imatrix-out and the subcommand write the same bytes
expect_ok imatrix_out "$CAL" "$T/tiny.h5" --data "$T/data.txt" --samples 6 --seq-len 32 --seed 1 -o "$T/c2.h5" \
    --imatrix-out "$T/i1.dat" -q
expect_ok imatrix_cmd "$CAL" imatrix "$T/c.h5" -o "$T/i2.dat"
if [ -s "$T/i1.dat" ] && cmp -s "$T/i1.dat" "$T/i2.dat"; then pass imatrix_same; else fail imatrix_same "differ"; fi
# 2 layers x 7 tensors; first entry blk.0.attn_q.weight
if [ "$(od -An -t d4 -N4 "$T/i2.dat" | tr -d ' ')" = 14 ] && [ "$(dd if="$T/i2.dat" bs=1 skip=8 count=19 2>/dev/null)" = \
     "blk.0.attn_q.weight" ]; then pass imatrix_header; else fail imatrix_header "unexpected bytes"; fi

if command -v h5ls >/dev/null; then
    if h5ls -r "$T/c.h5" | grep -q "/calib/model.layers.1.mlp.down_proj/xtx"; then pass h5ls_layout
    else fail h5ls_layout "xtx not listed by h5ls -r"; fi
else skip h5ls_layout "h5ls not installed"; fi

# ----- bad input: exit 1, one line, no output -----
expect_fail no_args "no model" "$CAL"
expect_fail no_data "--data" "$CAL" "$T/tiny.h5" -o "$T/x.h5"
expect_fail bad_option "unknown option" "$CAL" "$T/tiny.h5" --data "$T/data.txt" -o "$T/x.h5" --frobnicate
expect_fail samples_zero "--samples" "$CAL" "$T/tiny.h5" --data "$T/data.txt" --samples 0 -o "$T/x.h5"
expect_fail seq_len_zero "--seq-len" "$CAL" "$T/tiny.h5" --data "$T/data.txt" --seq-len 0 -o "$T/x.h5"
expect_fail seq_len_abc "--seq-len" "$CAL" "$T/tiny.h5" --data "$T/data.txt" --seq-len abc -o "$T/x.h5"
expect_fail seed_negative "--seed" "$CAL" "$T/tiny.h5" --data "$T/data.txt" --seed -1 -o "$T/x.h5"
expect_fail seq_len_too_long "context of 128 tokens \(use --seq-len 128" \
    "$CAL" "$T/tiny.h5" --data "$T/data.txt" --seq-len 129 -o "$T/x.h5" -q
expect_fail missing_data "nope.txt" "$CAL" "$T/tiny.h5" --data "$T/nope.txt" -o "$T/x.h5" -q
expect_fail missing_model "nope.h5" "$CAL" "$T/nope.h5" --data "$T/data.txt" -o "$T/x.h5" -q
expect_fail bad_format "--format" "$CAL" "$T/tiny.h5" --data "$T/data.txt" --format csv -o "$T/x.h5"
echo "just a few words" > "$T/short.txt"
expect_fail data_too_short "short.txt: the data has [0-9]+ tokens, fewer than one window of 64" \
    "$CAL" "$T/tiny.h5" --data "$T/short.txt" --seq-len 64 -o "$T/x.h5" -q
printf '{"text": "a b c"}\n{"text": "d e f"\n' > "$T/bad.jsonl"
expect_fail bad_jsonl_line "bad.jsonl:2: not valid JSON" "$CAL" "$T/tiny.h5" --data "$T/bad.jsonl" -o "$T/x.h5" -q
expect_fail missing_field "data.jsonl:1: no member \"body\"" \
    "$CAL" "$T/tiny.h5" --data "$T/data.jsonl" --field body -o "$T/x.h5" -q
printf '{"text": "the cat"}\n{"text": "sat on a mat"}\n' > "$T/short.jsonl"
expect_fail jsonl_too_short "short.jsonl: no document has more than 100 tokens" \
    "$CAL" "$T/tiny.h5" --data "$T/short.jsonl" --seq-len 100 -o "$T/x.h5" -q
expect_fail out_dir_missing "does not exist" "$CAL" "$T/tiny.h5" --data "$T/data.txt" -o "$T/no/such/x.h5" -q
no_file out_dir_missing_no_output "$T/no/such/x.h5"
expect_fail imatrix_dir_missing "does not exist" "$CAL" "$T/tiny.h5" --data "$T/data.txt" -o "$T/x.h5" \
    --imatrix-out "$T/no/i.dat" -q
no_file bad_input_no_output "$T/x.h5"
head -c 4000 "$T/c.h5" > "$T/trunc.h5"
expect_fail truncated_calib "trunc.h5" "$CAL" info "$T/trunc.h5"
expect_fail truncated_calib_imatrix "trunc.h5" "$CAL" imatrix "$T/trunc.h5" -o "$T/t.dat"
no_file truncated_no_imatrix "$T/t.dat"
expect_fail model_as_calib "not a squish calibration file" "$CAL" info "$T/tiny.h5"

# ----- stories260K on TinyStories, when ../shared is here -----
SH=$(cd "$SHARED" 2>/dev/null && pwd)  # absolute: the runs below change directory
S260="$SH/models/stories260K/stories260K.bin"
TS="$SH/data/tinystories/calib.txt"
if [ -f "$S260" ] && [ -f "$TS" ]; then
    mkdir -p "$T/s1" "$T/s2"
    out=$(cd "$T/s1" && "$CAL" "$S260" --data "$TS" --samples 16 --seq-len 256 --seed 0 -o st.h5 -q -t 1)
    rc=$?
    cp "$T/s1/st.h5" "$T/st.h5"
    sha=$(sha256sum "$S260" | cut -d' ' -f1)
    if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "16 windows x 256 tokens = 4096 tokens" \
        && printf '%s' "$out" | grep -q "20 inputs in 5 layers" && printf '%s' "$out" | grep -q "model_sha256=$sha"
    then pass stories260K; else fail stories260K "exit $rc: $out"; fi
    if "$CAL" info "$T/st.h5" | grep -q "model.layers.4.mlp.down_proj .* 172 .* 4096"; then pass stories_info
    else fail stories_info "$("$CAL" info "$T/st.h5" 2>&1 | tail -n 2)"; fi
    if [ -z "${SQUISH_TEST_QUICK:-}" ]; then
        (cd "$T/s2" && "$CAL" "$S260" --data "$TS" --samples 16 --seq-len 256 --seed 0 -o st.h5 -q -t 2 >/dev/null)
        if cmp -s "$T/s1/st.h5" "$T/s2/st.h5"; then pass stories_threads_identical
        else fail stories_threads_identical "-t 1 and -t 2 differ"; fi
    fi
    expect_fail stories_seq_len "context of 512 tokens" "$CAL" "$S260" --data "$TS" --seq-len 513 -o "$T/y.h5" -q
    no_file stories_seq_len_no_output "$T/y.h5"
else
    skip stories260K "no $S260 or $TS (set SQUISH_SHARED)"
fi
finish
