#!/usr/bin/env bash
# cli_quantize.sh - squish-quantize from the command line: RTN, GPTQ and AWQ (sequential and
# not) on a tiny generated model with calibration from pseudo-text, the plan (-v) and
# --json, byte-identical stores at -t 1 and -t 2, export to a runnable file and evaluation
# of it; stories260K end to end (calibrate 32 x 256 on TinyStories -> quantize rtn/gptq/awq
# 4-bit g64 -> export -> squish-eval --chunks 20) when ../shared is present; bad input:
# exit status 1, one line naming the problem, no output file.
source "$(dirname "$0")/lib_cli.sh"
QZ="$BIN/squish-quantize"
CAL="$BIN/squish-calibrate"
CONV="$BIN/squish-convert"
EVAL="$BIN/squish-eval"

"$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null && "$CONV" import "$T/hf" -o "$T/tiny.h5" >/dev/null 2>&1 \
    || { fail make_tiny "tool_make_tiny / import failed"; finish; exit 1; }
words=(the cat sat on a mat and she was happy to see it in sun Tom ran home with his dog)
{ for i in $(seq 1 1500); do printf '%s ' "${words[$(( (i * 7 + i / 5) % ${#words[@]} ))]}"; done; echo; } > "$T/data.txt"
"$CAL" "$T/tiny.h5" --data "$T/data.txt" --samples 8 --seq-len 64 -o "$T/cal.h5" -q >/dev/null \
    || { fail calibrate "squish-calibrate failed"; finish; exit 1; }

# ----- the three methods, both modes -----
expect_ok rtn "$QZ" "$T/tiny.h5" -o "$T/rtn.h5" --method rtn --bits 4 --group 64 -q
expect_ok gptq_sequential "$QZ" "$T/tiny.h5" -o "$T/gptq.h5" --method gptq --bits 4 --group 64 --calib "$T/cal.h5" -q
expect_ok gptq_stored "$QZ" "$T/tiny.h5" -o "$T/gptq-ns.h5" --method gptq --bits 3 --group 32 --asym \
    --calib "$T/cal.h5" --no-sequential --act-order -q
expect_ok gptq_6_5bit "$QZ" "$T/tiny.h5" -o "$T/gptq56.h5" --method gptq --bits 6 --group 32 --calib "$T/cal.h5" \
    --override 're:.*down_proj=bits:5,asym' -q
expect_ok awq_sequential "$QZ" "$T/tiny.h5" -o "$T/awq.h5" --method awq --bits 4 --group 64 --asym --calib "$T/cal.h5" -q
expect_ok awq_stored "$QZ" "$T/tiny.h5" -o "$T/awq-ns.h5" --method awq --bits 3 --group row --calib "$T/cal.h5" \
    --no-sequential --awq-duo -q
expect_ok multicall "$BIN/squish" quantize "$T/tiny.h5" -o "$T/mc.h5" --method rtn --bits 8 -q
if "$QZ" --help | grep -q "examples:"; then pass help; else fail help "no examples in --help"; fi

# the summary line, the per-layer progress lines, the plan and the JSON
out=$("$QZ" "$T/tiny.h5" -o "$T/s.h5" --method gptq --bits 4 --calib "$T/cal.h5" --json "$T/s.json" \
      --override 're:lm_head=bits:8' -v 2>"$T/s.err")
if printf '%s' "$out" | grep -qE "s.h5: gptq 4-bit g128 sym sequential, 15 of 16 matrices quantized; [0-9.]+ bits per weight"
then pass summary_line; else fail summary_line "got '$out'"; fi
n=$(grep -cE '^\[layer [12]/2\] (q|k|v|o|gate|up|down)_proj 4-bit (row|g128) sym gptq: loss [0-9.e+-]+ \(damp 0\.010\) [0-9.]+ s$' "$T/s.err")
[ "$n" = 14 ] && pass progress_lines || fail progress_lines "$n tensor lines, want 14: $(head -n 3 "$T/s.err")"
grep -qE '^\[layer 2/2\] block output error' "$T/s.err" && pass layer_lines || fail layer_lines "no layer summary"
grep -qE '^\[head\] lm_head 8-bit (row|g128) sym (rtn|gptq)' "$T/s.err" && pass head_line || fail head_line "no lm_head line"
grep -qE "^  lm_head.weight .* 8-bit (row|g128) sym +override 're:lm_head=bits:8'" "$T/s.err" && pass plan_override \
    || fail plan_override "$(grep lm_head "$T/s.err")"
grep -qE "^  model.embed_tokens.weight .* f32 \(kept\) +not a target" "$T/s.err" && pass plan_kept \
    || fail plan_kept "$(grep embed "$T/s.err")"
if grep -q '"damp_used": 0.01' "$T/s.json" && grep -q '"grid": "signed-max"' "$T/s.json" && grep -q '"reason": "target '"'"'Linear'"'"'"' "$T/s.json" \
    && grep -q '"bits_per_weight"' "$T/s.json" && grep -q '"layers": \[' "$T/s.json"
then pass json; else fail json "$(head -c 600 "$T/s.json")"; fi
if command -v h5ls >/dev/null; then
    if h5ls -r "$T/s.h5" | grep -q "/quant/model.layers.1.mlp.down_proj.weight/codes" \
        && ! h5ls -r "$T/gptq.h5" | grep -q "/tensors/model.layers.0.self_attn.q_proj.weight"
    then pass h5ls_layout; else fail h5ls_layout "no /quant groups listed"; fi
else skip h5ls_layout "h5ls not installed"; fi

# byte-identical at -t 1 and -t 2 (the same command in two folders)
for d in a b; do mkdir -p "$T/$d"; done
for m in gptq awq; do
    (cd "$T/a" && "$QZ" ../tiny.h5 -o q.h5 --method $m --bits 3 --group 32 --calib ../cal.h5 -q -t 1 >/dev/null)
    (cd "$T/b" && "$QZ" ../tiny.h5 -o q.h5 --method $m --bits 3 --group 32 --calib ../cal.h5 -q -t 2 >/dev/null)
    if [ -s "$T/a/q.h5" ] && cmp -s "$T/a/q.h5" "$T/b/q.h5"; then pass "${m}_threads_identical"
    else fail "${m}_threads_identical" "-t 1 and -t 2 differ"; fi
done

# export to a runnable file and evaluate it
for f in rtn gptq awq gptq-ns gptq56; do
    if "$CONV" export "$T/$f.h5" -o "$T/$f.sqz" >/dev/null 2>"$T/e.err" \
        && "$EVAL" "$T/$f.sqz" --text "$T/data.txt" --ctx 64 --chunks 4 -q >"$T/e.out" 2>>"$T/e.err" \
        && grep -q "^ppl = " "$T/e.out"
    then pass "export_eval_$f"; else fail "export_eval_$f" "$(tail -n 2 "$T/e.err")"; fi
done
if "$CONV" info "$T/gptq.sqz" 2>/dev/null | grep -qE "model.layers.0.self_attn.q_proj.weight +q4g"; then
    pass export_types; else fail export_types "no q4g tensor in the runnable file"; fi
"$CONV" info "$T/gptq56.sqz" > "$T/i56.out" 2>&1
if grep -qE "model.layers.0.self_attn.q_proj.weight +q6g" "$T/i56.out" \
    && grep -qE "model.layers.0.mlp.down_proj.weight +q5g" "$T/i56.out"; then
    pass export_types_56; else fail export_types_56 "no q6g/q5g tensors in the runnable file"; fi

# the signed-max grid (negative scales): the store, the runnable file, the GGUF export (Q4_0/Q8_0
# blocks with negative d) and the ACT8 runnable file all evaluate; the first three to the same PPL
if "$QZ" "$T/tiny.h5" -o "$T/sm.h5" --method rtn --bits 4 --group 32 --grid signed-max --override 'lm_head=bits:8' \
        --json "$T/sm.json" -q >/dev/null 2>"$T/sm.err" && grep -q '"grid": "signed-max"' "$T/sm.json"; then
    pass grid_signed_max_json; else fail grid_signed_max_json "$(tail -n 1 "$T/sm.err")"; fi
if command -v h5dump >/dev/null; then
    # explicit, and the default (signed-max for every method); none on asymmetric tensors
    a=/quant/model.layers.0.self_attn.q_proj.weight/grid
    if h5dump -a $a "$T/sm.h5" 2>/dev/null | grep -q '"signed-max"' \
        && h5dump -a $a "$T/rtn.h5" 2>/dev/null | grep -q '"signed-max"' \
        && h5dump -a $a "$T/gptq.h5" 2>/dev/null | grep -q '"signed-max"' \
        && h5dump -a $a "$T/awq-ns.h5" 2>/dev/null | grep -q '"signed-max"' \
        && ! h5dump -a $a "$T/awq.h5" >/dev/null 2>&1
    then pass grid_attribute; else fail grid_attribute "grid attributes: $(h5dump -a $a "$T/rtn.h5" 2>&1 | tail -n 3)"; fi
else skip grid_attribute "h5dump not installed"; fi
ppls=()
for f in sm.h5 sm.sqz sm.gguf sm-a8.sqz; do
    case $f in
        sm.sqz | sm.gguf) "$CONV" export "$T/sm.h5" -o "$T/$f" >/dev/null 2>>"$T/sm.err" ;;
        sm-a8.sqz) "$CONV" export "$T/sm.h5" -o "$T/$f" --act-int8 >/dev/null 2>>"$T/sm.err" ;;
    esac
    ppls+=("$("$EVAL" "$T/$f" --text "$T/data.txt" --ctx 64 --chunks 4 -q 2>>"$T/sm.err" | sed -n 's/^ppl = \([0-9.]*\).*/\1/p')")
done
if [ -n "${ppls[0]}" ] && [ "${ppls[0]}" = "${ppls[1]}" ] && [ "${ppls[0]}" = "${ppls[2]}" ] && [ -n "${ppls[3]}" ] \
    && awk -v a="${ppls[3]}" -v b="${ppls[0]}" 'BEGIN { exit !(a > 0.95 * b && a < 1.05 * b) }'
then pass "grid_signed_max_store_sqz_gguf_act8 (ppl ${ppls[*]})"
else fail grid_signed_max_store_sqz_gguf_act8 "ppl '${ppls[*]}': $(tail -n 1 "$T/sm.err")"; fi
expect_fail bad_grid "--grid: unknown grid 'q4_0' \(gptq or signed-max\)" "$QZ" "$T/tiny.h5" -o "$T/x.h5" \
    --method rtn --bits 4 --grid q4_0

# ----- bad input: exit 1, one line, no output -----
"$CONV" import "$T/tiny.h5" -o "$T/other.h5" --dtype f16 >/dev/null 2>&1
sha_t=$(sha256sum "$T/tiny.h5" | cut -d' ' -f1); sha_o=$(sha256sum "$T/other.h5" | cut -d' ' -f1)
expect_fail calib_other_model "$sha_o.*$sha_t|$sha_t.*$sha_o" \
    "$QZ" "$T/other.h5" -o "$T/x.h5" --method gptq --bits 4 --calib "$T/cal.h5" -q
expect_fail group_48 "group size 48 is not possible" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 4 --group 48
expect_fail bits_7 "7-bit quantization is not supported" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 7
expect_fail target_nothing "--targets 're:model\\\\.layers\\\\.7' matches no tensor" \
    "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 4 --targets 're:model\.layers\.7' -q
expect_fail override_nothing "--override 'nope' matches no tensor" \
    "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 4 --override 'nope=bits:8' -q
expect_fail lazy_regex "lazy quantifiers" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 4 --ignore 're:.*?proj'
expect_fail noncapturing "\(\?\.\.\.\) groups" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 4 \
    --targets 're:(?:model)'
expect_fail bad_override "unknown item 'colour:red'" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 4 \
    --override 'lm_head=colour:red'
expect_fail gptq_no_calib "needs calibration statistics" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method gptq --bits 4
expect_fail rtn_act_order "apply to --method gptq" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method rtn --bits 4 --act-order
expect_fail no_method "add --method" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --bits 4
expect_fail not_h5 "should end in .h5" "$QZ" "$T/tiny.h5" -o "$T/x.sqz" --method rtn --bits 4
expect_fail missing_model "nope.h5" "$QZ" "$T/nope.h5" -o "$T/x.h5" --method rtn --bits 4
expect_fail missing_calib "nope-cal.h5" "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method awq --bits 4 --calib "$T/nope-cal.h5"
expect_fail out_dir_missing "does not exist" "$QZ" "$T/tiny.h5" -o "$T/no/such/x.h5" --method rtn --bits 4
expect_fail already_quantized "already q4g" "$QZ" "$T/rtn.h5" -o "$T/x.h5" --method rtn --bits 4 -q
mv "$T/data.txt" "$T/data-moved.txt"
expect_fail data_missing "--calib-data FILE, or use --no-sequential" \
    "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method gptq --bits 4 --calib "$T/cal.h5" -q
echo "other text" > "$T/data.txt"
expect_fail data_changed "data sha256 .*the file changed since calibration" \
    "$QZ" "$T/tiny.h5" -o "$T/x.h5" --method awq --bits 4 --calib "$T/cal.h5" -q
expect_ok calib_data_option "$QZ" "$T/tiny.h5" -o "$T/cd.h5" --method gptq --bits 4 --calib "$T/cal.h5" \
    --calib-data "$T/data-moved.txt" -q
no_file bad_input_no_output "$T/x.h5"

# ----- stories260K on TinyStories, when ../shared is here -----
S260="$SHARED/models/stories260K/stories260K.bin"
TS="$SHARED/data/tinystories/calib.txt"
TE="$SHARED/data/tinystories/eval.txt"
if [ -f "$S260" ] && [ -f "$TS" ] && [ -f "$TE" ]; then
    "$CONV" import "$S260" -o "$T/st.h5" >/dev/null 2>&1
    if "$CAL" "$T/st.h5" --data "$TS" --samples 32 --seq-len 256 -o "$T/st-cal.h5" -q >/dev/null; then
        pass stories_calibrate; else fail stories_calibrate "squish-calibrate failed"; fi
    "$EVAL" "$T/st.h5" --text "$TE" --ctx 256 --chunks 20 -q > "$T/base.out" 2>&1
    base=$(sed -n 's/^ppl = \([0-9.]*\).*/\1/p' "$T/base.out")
    for m in rtn gptq awq; do
        c=""; [ $m != rtn ] && c="--calib $T/st-cal.h5"
        # the sanitizer run (SQUISH_TEST_QUICK) searches AWQ's scales on 2 windows instead of 16
        [ $m = awq ] && [ -n "${SQUISH_TEST_QUICK:-}" ] && c="$c --awq-windows 2"
        if "$QZ" "$T/st.h5" -o "$T/st-$m.h5" --method $m --bits 4 --group 64 $c -q >/dev/null 2>"$T/q.err" \
            && "$CONV" export "$T/st-$m.h5" -o "$T/st-$m.sqz" >/dev/null 2>>"$T/q.err" \
            && "$EVAL" "$T/st-$m.sqz" --text "$TE" --ctx 256 --chunks 20 -q > "$T/q.out" 2>>"$T/q.err"; then
            ppl=$(sed -n 's/^ppl = \([0-9.]*\).*/\1/p' "$T/q.out")
            # 4-bit on a 260K-parameter model: within 20 % of the F32 perplexity
            if [ -n "$ppl" ] && [ -n "$base" ] && awk -v q="$ppl" -v b="$base" 'BEGIN { exit !(q > b && q < 1.2 * b) }'
            then pass "stories_$m (ppl $ppl, F32 $base)"; else fail "stories_$m" "ppl '$ppl' vs F32 '$base'"; fi
        else
            fail "stories_$m" "$(tail -n 2 "$T/q.err")"
        fi
    done
else
    skip stories260K "no $S260, $TS or $TE (set SQUISH_SHARED)"
fi
finish
