#!/usr/bin/env bash
# cli_convert.sh - squish-convert / squish-run / squish-eval from the command line:
# the import -> store -> export -> run -> eval path on a tiny generated checkpoint (and on
# stories260K when ../shared is present), determinism of the written files, and bad
# input: one-line errors naming the file, exit status 1 and no output file left behind.
source "$(dirname "$0")/lib_cli.sh"

# ----- tiny checkpoints made by the test tool (no ../shared needed) -----
"$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null && "$TOOLS/tool_make_tiny" llama2c "$T/l2c" >/dev/null \
    || { fail make_tiny "tool_make_tiny failed"; finish; exit 1; }

expect_ok import_hf "$BIN/squish-convert" import "$T/hf" -o "$T/hf.h5"
expect_ok export_hf "$BIN/squish-convert" export "$T/hf.h5" -o "$T/hf.sqz"
expect_ok import_export_l2c "$BIN/squish-convert" "$T/l2c/model.bin" -o "$T/l2c.sqz"
expect_ok info_sqz "$BIN/squish-convert" info "$T/hf.sqz"
expect_ok info_json "$BIN/squish-convert" info "$T/hf.h5" --json
expect_ok multicall "$BIN/squish" convert info "$T/hf.sqz"
expect_ok run_greedy "$BIN/squish-run" "$T/hf.sqz" -p "abc" -n 8 --temp 0 -q
expect_ok run_sampled "$BIN/squish-run" "$T/l2c.sqz" -n 8 --temp 0.9 --top-p 0.9 --seed 3 -q

# the same command gives byte-identical stores and runnable files (the command line is
# recorded as provenance, so both runs use the same relative names in different folders)
for d in d1 d2; do
    mkdir -p "$T/$d"
    (cd "$T/$d" && "$BIN/squish-convert" import ../hf -o m.h5 && "$BIN/squish-convert" export m.h5 -o m.sqz) >/dev/null 2>&1
done
if [ -s "$T/d1/m.h5" ] && cmp -s "$T/d1/m.h5" "$T/d2/m.h5"; then pass store_deterministic
else fail store_deterministic "two imports differ"; fi
if [ -s "$T/d1/m.sqz" ] && cmp -s "$T/d1/m.sqz" "$T/d2/m.sqz"; then pass sqz_deterministic
else fail sqz_deterministic "two exports differ"; fi

# sampling with a seed is reproducible; greedy output is the same at 1 and 2 threads
a=$("$BIN/squish-run" "$T/hf.sqz" -n 16 --temp 1 --seed 7 -q --ids)
b=$("$BIN/squish-run" "$T/hf.sqz" -n 16 --temp 1 --seed 7 -q --ids)
[ "$a" = "$b" ] && pass seed_reproducible || fail seed_reproducible "'$a' vs '$b'"
a=$("$BIN/squish-run" "$T/hf.sqz" -n 16 --temp 0 -q --ids -t 1)
b=$("$BIN/squish-run" "$T/hf.sqz" -n 16 --temp 0 -q --ids -t 2)
[ "$a" = "$b" ] && pass threads_identical || fail threads_identical "'$a' vs '$b'"

# a runnable file imports back: sqz -> store -> sqz runs the same tokens; sqz -> GGUF works
expect_ok sqz_to_store "$BIN/squish-convert" import "$T/hf.sqz" -o "$T/back.h5"
expect_ok store_to_sqz "$BIN/squish-convert" export "$T/back.h5" -o "$T/back.sqz"
expect_ok sqz_to_gguf "$BIN/squish-convert" export "$T/hf.sqz" -o "$T/back.gguf"
a=$("$BIN/squish-run" "$T/hf.sqz" -p "abc" -n 12 --temp 0 -q --ids -t 1)
b=$("$BIN/squish-run" "$T/back.sqz" -p "abc" -n 12 --temp 0 -q --ids -t 1)
[ -n "$a" ] && [ "$a" = "$b" ] && pass sqz_roundtrip_same_tokens || fail sqz_roundtrip_same_tokens "'$a' vs '$b'"

# h5ls shows the layout plainly
if command -v h5ls >/dev/null; then
    if h5ls -r "$T/hf.h5" | grep -q "/tensors/model.layers.0.self_attn.q_proj.weight"; then pass h5ls_layout
    else fail h5ls_layout "tensor not listed by h5ls -r"; fi
else skip h5ls_layout "h5ls not installed"; fi

# ----- bad input -----
expect_fail no_args "no input" "$BIN/squish-convert"
expect_fail bad_option "unknown option" "$BIN/squish-convert" import "$T/hf" -o "$T/x.h5" --frobnicate
expect_fail bad_dtype "dtype" "$BIN/squish-convert" import "$T/hf" -o "$T/x.h5" --dtype f8
expect_fail import_to_sqz "should end in .h5" "$BIN/squish-convert" import "$T/hf" -o "$T/x.sqz"
expect_fail missing_input "nope" "$BIN/squish-convert" import "$T/nope" -o "$T/x.h5"
no_file missing_input_no_output "$T/x.h5"
# a store without /tokenizer (a damaged one reads as such; found by tests/fuzz/fuzz_readers.py):
# the error names the store, not the output, and nothing is written
"$TOOLS/tool_make_tiny" store-notok "$T/notok" >/dev/null
expect_fail export_no_tokenizer "notok/model.h5: has no tokenizer" "$BIN/squish-convert" export "$T/notok/model.h5" -o "$T/x.sqz"
no_file export_no_tokenizer_no_output "$T/x.sqz"
expect_fail gguf_no_tokenizer "notok/model.h5: has no tokenizer" "$BIN/squish-convert" export "$T/notok/model.h5" -o "$T/x.gguf"
no_file gguf_no_tokenizer_no_output "$T/x.gguf"

# missing tokenizer
mkdir -p "$T/notok" && cp "$T/hf/config.json" "$T/hf/model.safetensors" "$T/notok/"
expect_fail missing_tokenizer "tokenizer" "$BIN/squish-convert" import "$T/notok" -o "$T/notok.h5"
no_file missing_tokenizer_no_output "$T/notok.h5"

# truncated safetensors header / offsets past the end
mkdir -p "$T/trunc" && cp "$T/hf/"* "$T/trunc/"
head -c 6 "$T/hf/model.safetensors" > "$T/trunc/model.safetensors"
expect_fail truncated_safetensors "model.safetensors" "$BIN/squish-convert" import "$T/trunc" -o "$T/trunc.h5"
no_file truncated_no_output "$T/trunc.h5"
sz=$(stat -c %s "$T/hf/model.safetensors")
head -c $((sz - 100)) "$T/hf/model.safetensors" > "$T/trunc/model.safetensors"
expect_fail safetensors_past_end "model.safetensors" "$BIN/squish-convert" import "$T/trunc" -o "$T/trunc.h5"

# unknown dtype in the header
mkdir -p "$T/dt" && cp "$T/hf/"* "$T/dt/"
python3 - "$T/hf/model.safetensors" "$T/dt/model.safetensors" <<'PY' 2>/dev/null || sed 's/"F32"/"Q9X"/' "$T/hf/model.safetensors" > "$T/dt/model.safetensors"
import sys, struct
d = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', d[:8])[0]
h = d[8:8+n].replace(b'"F32"', b'"Q9X"', 1)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(h)) + h + d[8+n:])
PY
expect_fail unknown_dtype "Q9X|dtype" "$BIN/squish-convert" import "$T/dt" -o "$T/dt.h5"

# config / shape mismatch
mkdir -p "$T/cfg" && cp "$T/hf/"* "$T/cfg/"
sed -i 's/"hidden_size": *[0-9]*/"hidden_size": 40/' "$T/cfg/config.json"
expect_fail shape_mismatch "shape|hidden" "$BIN/squish-convert" import "$T/cfg" -o "$T/cfg.h5"
no_file shape_mismatch_no_output "$T/cfg.h5"

# runnable file with a flipped byte / truncated / not a runnable file
cp "$T/hf.sqz" "$T/flip.sqz"
sz=$(stat -c %s "$T/flip.sqz")
printf '\x5a' | dd of="$T/flip.sqz" bs=1 seek=$((sz - 7)) conv=notrunc 2>/dev/null
expect_fail sqz_checksum "checksum mismatch" "$BIN/squish-run" "$T/flip.sqz" -n 4
expect_fail sqz_checksum_eval "checksum mismatch" "$BIN/squish-eval" "$T/flip.sqz" --text "$T/hf/config.json"
head -c $((sz / 2)) "$T/hf.sqz" > "$T/half.sqz"
expect_fail sqz_truncated "half.sqz" "$BIN/squish-run" "$T/half.sqz" -n 4
expect_fail sqz_not_sqz "bad magic" "$BIN/squish-run" "$T/hf/config.json" -n 4
expect_fail run_bad_temp "--temp" "$BIN/squish-run" "$T/hf.sqz" --temp abc
expect_fail eval_no_text "--text" "$BIN/squish-eval" "$T/hf.sqz"
expect_fail corrupt_h5 "bad.h5" bash -c "head -c 3000 '$T/hf.h5' > '$T/bad.h5'; '$BIN/squish-convert' export '$T/bad.h5' -o '$T/bad.sqz'"
no_file corrupt_h5_no_output "$T/bad.sqz"

# ----- the real model, when ../shared is here -----
S260="$SHARED/models/stories260K/stories260K.bin"
if [ -f "$S260" ]; then
    expect_ok stories_import "$BIN/squish-convert" import "$S260" -o "$T/s.h5"
    expect_ok stories_export "$BIN/squish-convert" export "$T/s.h5" -o "$T/s.sqz"
    ref=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['greedy_from_BOS_text'])" \
          "$SHARED/models/stories260K/REFERENCE_OUTPUTS.json" 2>/dev/null)
    out=$("$BIN/squish-run" "$T/s.sqz" -n 255 --temp 0 -q)
    if [ -n "$ref" ] && [ "$out" = "$ref" ]; then pass stories_greedy_cli
    elif [ -z "$ref" ]; then skip stories_greedy_cli "python3 not available to read the reference"
    else fail stories_greedy_cli "greedy text differs from REFERENCE_OUTPUTS.json"; fi
else
    skip stories "no $S260 (set SQUISH_SHARED)"
fi
finish
