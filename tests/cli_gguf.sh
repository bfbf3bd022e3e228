#!/usr/bin/env bash
# cli_gguf.sh - GGUF from the command line (docs/gguf.md): squish-convert SRC -o m.gguf and
# export STORE -o m.gguf (--dtype), GGUF as a source for import, info, a runnable file,
# squish-run and squish-eval (same greedy ids and perplexity as the original checkpoint),
# quantized stores as Q4_0/Q4_1 GGUFs (the same perplexity as their .sqz), byte-identical repeated exports, and bad GGUF input: one-line errors naming the file,
# exit status 1 and no output left behind. stories260K and gutenberg-7m when ../shared is here.
source "$(dirname "$0")/lib_cli.sh"

"$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null || { fail make_tiny "tool_make_tiny failed"; finish; exit 1; }

expect_ok hf_to_gguf "$BIN/squish-convert" "$T/hf" -o "$T/m.gguf"
expect_ok import_store "$BIN/squish-convert" import "$T/hf" -o "$T/m.h5"
expect_ok store_to_gguf_f16 "$BIN/squish-convert" export "$T/m.h5" -o "$T/f16.gguf" --dtype f16
expect_ok gguf_info "$BIN/squish-convert" info "$T/m.gguf"
expect_ok gguf_to_store "$BIN/squish-convert" import "$T/m.gguf" -o "$T/g.h5"
expect_ok gguf_to_sqz "$BIN/squish-convert" "$T/m.gguf" -o "$T/g.sqz"
expect_ok hf_to_sqz "$BIN/squish-convert" "$T/hf" -o "$T/hf.sqz"
expect_ok multicall_gguf "$BIN/squish" convert "$T/m.h5" -o "$T/mc.gguf"

# what info reads back: llama's interleaved q/k layout; f16 matrices, f32 norms
info=$("$BIN/squish-convert" info "$T/f16.gguf" --json 2>&1)
if printf '%s' "$info" | grep -q '"rope_layout": "interleaved"' \
   && printf '%s' "$info" | grep -q '"name": "model.layers.0.self_attn.q_proj.weight", "type": "f16"' \
   && printf '%s' "$info" | grep -q '"name": "model.layers.0.input_layernorm.weight", "type": "f32"'; then
    pass info_f16_gguf
else fail info_f16_gguf "unexpected info: $(printf '%s' "$info" | head -c 400)"; fi

# the GGUF computes what the checkpoint computes
a=$("$BIN/squish-run" "$T/hf.sqz" -n 16 --temp 0 -q --ids)
b=$("$BIN/squish-run" "$T/g.sqz" -n 16 --temp 0 -q --ids)
[ -n "$a" ] && [ "$a" = "$b" ] && pass greedy_same_as_hf || fail greedy_same_as_hf "'$a' vs '$b'"
for i in $(seq 40); do echo "the cat sat on the mat and the dog ran to the park with a ball"; done > "$T/text.txt"
p1=$("$BIN/squish-eval" "$T/hf" --text "$T/text.txt" --ctx 64 -q 2>&1 | grep -o 'ppl = [0-9.]*')
p2=$("$BIN/squish-eval" "$T/m.gguf" --text "$T/text.txt" --ctx 64 -q 2>&1 | grep -o 'ppl = [0-9.]*')
[ -n "$p1" ] && [ "$p1" = "$p2" ] && pass eval_same_as_hf || fail eval_same_as_hf "'$p1' vs '$p2'"

# quantized stores: Q4_0 (exact) and Q4_1 (fp16 offsets) GGUFs compute what the .sqz computes
for a in sym asym; do
    flag=""; [ $a = asym ] && flag=--asym
    "$BIN/squish-quantize" "$T/m.h5" -o "$T/q$a.h5" --method rtn --bits 4 --group 64 $flag -q >/dev/null 2>&1 \
        || fail "quantize_$a" "squish-quantize failed"
    out=$("$BIN/squish-convert" export "$T/q$a.h5" -o "$T/q$a.gguf" 2>&1)
    want="Q4_0; [0-9]* were squish-quantized, every weight exact"
    [ $a = asym ] && want="Q4_1; [0-9]* were squish-quantized, largest weight change"
    printf '%s' "$out" | grep -q "matrices: .*$want" && pass "gguf_types_$a" || fail "gguf_types_$a" "$out"
    "$BIN/squish-convert" export "$T/q$a.h5" -o "$T/q$a.sqz" >/dev/null 2>&1
    p1=$("$BIN/squish-eval" "$T/q$a.sqz" --text "$T/text.txt" --ctx 64 -q 2>&1 | grep -o 'ppl = [0-9.]*')
    p2=$("$BIN/squish-eval" "$T/q$a.gguf" --text "$T/text.txt" --ctx 64 -q 2>&1 | grep -o 'ppl = [0-9.]*')
    # symmetric: the same weights, so the same PPL to every printed digit; asymmetric: to 3 digits
    if [ $a = sym ]; then [ -n "$p1" ] && [ "$p1" = "$p2" ]; else
        awk -v a="${p1#ppl = }" -v b="${p2#ppl = }" 'BEGIN { exit !(a > 0 && (a - b < 1e-3 * a) && (b - a < 1e-3 * a)) }'
    fi && pass "gguf_eval_same_$a" || fail "gguf_eval_same_$a" "'$p1' vs '$p2'"
done
# Q4_0 -> q4g (groups of 32) on import: a GGUF -> store -> GGUF round trip keeps the tensor types
info=$("$BIN/squish-convert" info "$T/qsym.gguf" --json 2>&1)
printf '%s' "$info" | grep -q '"name": "model.layers.0.self_attn.q_proj.weight", "type": "q4g"' \
    && pass gguf_q4_0_imports_as_q4g || fail gguf_q4_0_imports_as_q4g "$(printf '%s' "$info" | head -c 300)"

# the same command gives the same bytes
for d in d1 d2; do
    mkdir -p "$T/$d"
    (cd "$T/$d" && "$BIN/squish-convert" ../hf -o m.gguf) >/dev/null 2>&1
done
if [ -s "$T/d1/m.gguf" ] && cmp -s "$T/d1/m.gguf" "$T/d2/m.gguf"; then pass gguf_deterministic
else fail gguf_deterministic "two exports differ"; fi
sz=$(stat -c %s "$T/m.gguf")
[ $((sz % 32)) -eq 0 ] && [ "$(head -c 4 "$T/m.gguf")" = "GGUF" ] && pass gguf_magic_padding \
    || fail gguf_magic_padding "size $sz or magic"

# ----- bad input -----
head -c 1000 "$T/m.gguf" > "$T/trunc.gguf"
expect_fail truncated_gguf "trunc.gguf: .*(truncated|cannot fit|past the end)" "$BIN/squish-convert" "$T/trunc.gguf" -o "$T/x.sqz"
no_file truncated_gguf_no_output "$T/x.sqz"
head -c $((sz - 40)) "$T/m.gguf" > "$T/short.gguf"
expect_fail gguf_data_past_end "short.gguf: tensor 'output.weight'.*past the end" \
    "$BIN/squish-convert" import "$T/short.gguf" -o "$T/x.h5"
no_file gguf_data_past_end_no_output "$T/x.h5"
echo "not a model" > "$T/junk.gguf"
expect_fail not_gguf "junk.gguf: not a GGUF file" "$BIN/squish-convert" info "$T/junk.gguf"
expect_fail export_bad_ext "should end in .sqz or .gguf" "$BIN/squish-convert" export "$T/m.h5" -o "$T/x.bin"
# a quantized type squish does not import (the type field of blk.0.ffn_down.weight set to IQ4_NL) is refused by name
if command -v python3 >/dev/null; then
    python3 - "$T/m.gguf" "$T/q4.gguf" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
name = b"blk.0.ffn_down.weight"
at = d.index(name) + len(name)
nd = int.from_bytes(d[at:at + 4], 'little')
t = at + 4 + 8 * nd
d[t:t + 4] = (20).to_bytes(4, 'little')  # GGML_TYPE_IQ4_NL (not importable)
open(sys.argv[2], 'wb').write(d)
PY
    expect_fail quantized_refused "q4.gguf: tensor 'blk.0.ffn_down.weight' is IQ4_NL" \
        "$BIN/squish-convert" "$T/q4.gguf" -o "$T/q4.sqz"
    no_file quantized_no_output "$T/q4.sqz"
else skip quantized_refused "python3 not available"; fi

# ----- the real models, when ../shared is here -----
S260="$SHARED/models/stories260K/stories260K.bin"
if [ -f "$S260" ]; then
    expect_ok stories_gguf "$BIN/squish-convert" "$S260" -o "$T/s.gguf"
    expect_ok stories_gguf_sqz "$BIN/squish-convert" "$T/s.gguf" -o "$T/s.sqz"
    ref=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['greedy_from_BOS_text'])" \
          "$SHARED/models/stories260K/REFERENCE_OUTPUTS.json" 2>/dev/null)
    out=$("$BIN/squish-run" "$T/s.sqz" -n 255 --temp 0 -q)
    if [ -n "$ref" ] && [ "$out" = "$ref" ]; then pass stories_gguf_greedy
    elif [ -z "$ref" ]; then skip stories_gguf_greedy "python3 not available to read the reference"
    else fail stories_gguf_greedy "greedy text differs from REFERENCE_OUTPUTS.json"; fi
else
    skip stories "no $S260 (set SQUISH_SHARED)"
fi
G7="$SHARED/models/gutenberg-7m"
if [ -d "$G7" ]; then
    expect_ok gutenberg_gguf "$BIN/squish-convert" "$G7" -o "$T/g7.gguf"
    txt="$SHARED/data/gutenberg/eval.txt"
    p1=$("$BIN/squish-eval" "$G7" --text "$txt" --ctx 256 --chunks 8 -q 2>&1 | grep -o 'ppl = [0-9.]*')
    p2=$("$BIN/squish-eval" "$T/g7.gguf" --text "$txt" --ctx 256 --chunks 8 -q 2>&1 | grep -o 'ppl = [0-9.]*')
    [ -n "$p1" ] && [ "$p1" = "$p2" ] && pass gutenberg_gguf_ppl || fail gutenberg_gguf_ppl "'$p1' vs '$p2'"
else
    skip gutenberg "no $G7 (set SQUISH_SHARED)"
fi
finish
