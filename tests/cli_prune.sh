#!/usr/bin/env bash
# cli_prune.sh - squish-prune from the command line (docs/pruning.md): every method and
# pattern on a tiny generated model with calibration from pseudo-text, sequential and not,
# joint 2:4 + 4-bit, structured shrinking (the config in the store changes), the JSON report,
# byte-identical stores at -t 1 and -t 2, export + evaluation of the results; sparse export
# (docs/sparse-format.md: sparse types in the file, same PPL and greedy tokens as --dense); stories260K
# end to end (calibrate 32 x 256 -> prune 50% -> export -> squish-eval --chunks 20) checking
# the published ordering SparseGPT, Wanda < magnitude (ANCHORS.md 2c) when ../shared is
# present; bad input: exit status 1, one line naming the problem, no output file.
source "$(dirname "$0")/lib_cli.sh"
PR=$(realpath "$BIN/squish-prune")
CAL="$BIN/squish-calibrate"
CONV="$BIN/squish-convert"
EVAL="$BIN/squish-eval"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

"$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null && "$CONV" import "$T/hf" -o "$T/tiny.h5" >/dev/null 2>&1 \
    || { fail make_tiny "tool_make_tiny / import failed"; finish; exit 1; }
words=(the cat sat on a mat and she was happy to see it in sun Tom ran home with his dog)
{ for i in $(seq 1 1500); do printf '%s ' "${words[$(( (i * 7 + i / 5) % ${#words[@]} ))]}"; done; echo; } > "$T/data.txt"
"$CAL" "$T/tiny.h5" --data "$T/data.txt" --samples 8 --seq-len 64 -o "$T/cal.h5" -q >/dev/null \
    || { fail calibrate "squish-calibrate failed"; finish; exit 1; }
C=(--calib "$T/cal.h5")

# ----- methods x patterns -----
expect_ok magnitude_50 "$PR" "$T/tiny.h5" -o "$T/mag.h5" --method magnitude --sparsity 0.5 -q
expect_ok magnitude_24 "$PR" "$T/tiny.h5" -o "$T/mag24.h5" --method magnitude --pattern 2:4 -q
expect_ok wanda_50 "$PR" "$T/tiny.h5" -o "$T/wanda.h5" --method wanda --sparsity 0.5 "${C[@]}" -q
expect_ok wanda_48_stored "$PR" "$T/tiny.h5" -o "$T/wanda48.h5" --method wanda --pattern 4:8 "${C[@]}" --no-sequential -q
expect_ok sparsegpt_60 "$PR" "$T/tiny.h5" -o "$T/sgpt.h5" --method sparsegpt --sparsity 0.6 "${C[@]}" -q
expect_ok sparsegpt_24_w4 "$PR" "$T/tiny.h5" -o "$T/sgpt24w4.h5" --method sparsegpt --pattern 2:4 --bits 4 --group 32 \
    "${C[@]}" -q
expect_ok sparsegpt_24_w4_all "$PR" "$T/tiny.h5" -o "$T/sgpt24w4all.h5" --method sparsegpt --pattern 2:4 --bits 4 \
    --group 32 --embed-bits 4 --head-bits 8 "${C[@]}" -q
expect_ok sparsegpt_ffn "$PR" "$T/tiny.h5" -o "$T/ffn.h5" --method sparsegpt --pattern ffn --sparsity 0.25 "${C[@]}" -q
expect_ok wanda_heads "$PR" "$T/tiny.h5" -o "$T/heads.h5" --method wanda --pattern heads --sparsity 0.5 "${C[@]}" -q
expect_ok multicall "$BIN/squish" prune "$T/tiny.h5" -o "$T/mc.h5" --method magnitude --sparsity 0.3 -q
if "$PR" --help | grep -q "examples:"; then pass help; else fail help "no examples in --help"; fi

# summary line, progress lines, JSON
out=$("$PR" "$T/tiny.h5" -o "$T/s.h5" --method sparsegpt --pattern 2:4 "${C[@]}" --json "$T/s.json" 2>"$T/s.err")
if printf '%s' "$out" | grep -qE "s.h5: sparsegpt 2:4 sequential, 14 matrices pruned, 50.00% of their weights zero"
then pass summary_line; else fail summary_line "got '$out'"; fi
n=$(grep -cE '^\[layer [12]/2\] (q|k|v|o|gate|up|down)_proj: 50.00% zero \([0-9]+ of [0-9]+\), loss [0-9.e+-]+ \(damp 0\.010\)' "$T/s.err")
[ "$n" = 14 ] && pass progress_lines || fail progress_lines "$n tensor lines, want 14: $(head -n 3 "$T/s.err")"
grep -qE '^\[layer 2/2\] block output error' "$T/s.err" && pass layer_lines || fail layer_lines "no layer summary"
if grep -q '"n": 2, "m": 4, "sparsity": 0.5' "$T/s.json" && grep -q '"records": \[' "$T/s.json" \
    && grep -q '"layers": \[' "$T/s.json"
then pass json; else fail json "$(head -c 600 "$T/s.json")"; fi

# structured: the store's config and shapes change
if command -v h5dump >/dev/null; then
    if "$CONV" info "$T/ffn.h5" 2>/dev/null | grep -qE 'hidden_dim +72' \
        && "$CONV" info "$T/heads.h5" 2>/dev/null | grep -qE 'heads +2 \(kv 1,'
    then pass structured_config; else fail structured_config "$("$CONV" info "$T/ffn.h5" | head -n 12 | tr '\n' ' ')"; fi
else skip structured_config "hdf5-tools not installed"; fi

# byte-identical at -t 1 and -t 2
for d in a b; do mkdir -p "$T/$d"; done
for m in wanda sparsegpt; do
    (cd "$T/a" && "$PR" ../tiny.h5 -o p.h5 --method $m --sparsity 0.5 --calib ../cal.h5 -q -t 1 >/dev/null)
    (cd "$T/b" && "$PR" ../tiny.h5 -o p.h5 --method $m --sparsity 0.5 --calib ../cal.h5 -q -t 2 >/dev/null)
    if [ -s "$T/a/p.h5" ] && cmp -s "$T/a/p.h5" "$T/b/p.h5"; then pass "${m}_threads_identical"
    else fail "${m}_threads_identical" "-t 1 and -t 2 differ"; fi
done

# export and evaluate every kind of result
for m in mag sgpt24w4 sgpt24w4all ffn heads; do
    if "$CONV" export "$T/$m.h5" -o "$T/$m.sqz" >/dev/null 2>&1 \
        && "$EVAL" "$T/$m.sqz" --text "$T/data.txt" --ctx 64 -q >"$T/$m.eval" 2>&1 \
        && grep -qE 'ppl = [0-9.]+' "$T/$m.eval"
    then pass "export_eval_$m"; else fail "export_eval_$m" "$(tail -n 2 "$T/$m.eval" 2>/dev/null)"; fi
done
# --embed-bits / --head-bits: the embedding and the head quantized too, so the file is smaller
info=$("$CONV" info "$T/sgpt24w4all.sqz" 2>&1)
if printf '%s\n' "$info" | grep -qE '^model\.embed_tokens\.weight +q4g ' \
    && { ! printf '%s\n' "$info" | grep -q '^lm_head\.weight' || printf '%s\n' "$info" | grep -qE '^lm_head\.weight +q8g '; } \
    && [ "$(stat -c %s "$T/sgpt24w4all.sqz")" -lt "$(stat -c %s "$T/sgpt24w4.sqz")" ]
then pass embed_head_bits; else fail embed_head_bits "$(printf '%s\n' "$info" | grep -E 'embed|lm_head')"; fi

# ----- sparse export (docs/sparse-format.md): compact in the file, run by the sparse kernels -----
# The 14 pruned block linears must be stored as s24 (2:4) or smask (unstructured) types, the file
# smaller than the --dense export of the same store; squish-eval must give the --dense file's PPL
# (same weights: the sparse kernels add only the kept products, so at most the summation order
# differs; relative difference <= 1e-5) and squish-run the same greedy tokens.
jnum() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -n 1; }
for spec in mag24:s24 mag:smask wanda:smask sgpt:smask; do
    f=${spec%%:*} want=${spec#*:}
    if ! "$CONV" export "$T/$f.h5" -o "$T/$f-sp.sqz" >/dev/null 2>&1 \
        || ! "$CONV" export "$T/$f.h5" -o "$T/$f-dn.sqz" --dense >/dev/null 2>&1; then
        fail "sparse_export_$f" "export failed"; continue
    fi
    nsp=$("$CONV" info "$T/$f-sp.sqz" | grep -cE "_proj\.weight +${want}_f(16|32) ")
    ndn=$("$CONV" info "$T/$f-dn.sqz" | grep -cE " (s24|s48|smask)_f(16|32) ")
    a=$(stat -c %s "$T/$f-sp.sqz"); b=$(stat -c %s "$T/$f-dn.sqz")
    if [ "$nsp" = 14 ] && [ "$ndn" = 0 ] && [ "$a" -lt "$b" ]; then pass "sparse_types_$f"
    else fail "sparse_types_$f" "$nsp ${want} matrices (want 14), $ndn sparse in --dense, $a vs $b bytes"; fi
    "$EVAL" "$T/$f-sp.sqz" --text "$T/data.txt" --ctx 64 -q --json "$T/$f-sp.json" >/dev/null 2>&1
    "$EVAL" "$T/$f-dn.sqz" --text "$T/data.txt" --ctx 64 -q --json "$T/$f-dn.json" >/dev/null 2>&1
    p1=$(jnum ppl "$T/$f-sp.json"); p2=$(jnum ppl "$T/$f-dn.json")
    if [ -n "$p1" ] && [ -n "$p2" ] && awk -v a="$p1" -v b="$p2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 1e-5 * b) }'
    then pass "sparse_ppl_equals_dense_$f"; else fail "sparse_ppl_equals_dense_$f" "ppl sparse ${p1:-?}, dense ${p2:-?}"; fi
    "$BIN/squish-run" "$T/$f-sp.sqz" -p "the cat sat" -n 12 --temp 0 -q --json "$T/$f-sp.run" >/dev/null 2>&1
    "$BIN/squish-run" "$T/$f-dn.sqz" -p "the cat sat" -n 12 --temp 0 -q --json "$T/$f-dn.run" >/dev/null 2>&1
    i1=$(grep -o '"ids": \[[0-9, ]*\]' "$T/$f-sp.run" 2>/dev/null); i2=$(grep -o '"ids": \[[0-9, ]*\]' "$T/$f-dn.run" 2>/dev/null)
    if [ -n "$i1" ] && [ "$i1" = "$i2" ]; then pass "sparse_run_equals_dense_$f"
    else fail "sparse_run_equals_dense_$f" "sparse '${i1:-none}' vs dense '${i2:-none}'"; fi
done

# ----- bad input -----
expect_fail bad_32 "--pattern 3:2: N must be smaller than M" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --pattern 3:2
expect_fail bad_04 "--pattern 0:4: N must be at least 1" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --pattern 0:4
expect_fail bad_nm_text "expected unstructured, ffn, heads or N:M" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude \
    --pattern 2-4
expect_fail bad_m_divides "not a multiple of M = 5" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --pattern 3:5
expect_fail sparsity_one "--sparsity 1: must be below 1" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --sparsity 1
expect_fail sparsity_negative "--sparsity -0.1: must be at least 0" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude \
    --sparsity -0.1
expect_fail no_sparsity "needs --sparsity" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude
expect_fail nm_sparsity "contradicts" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --pattern 2:4 --sparsity 0.3
expect_fail wanda_no_calib "--method wanda needs calibration statistics" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method wanda \
    --sparsity 0.5
expect_fail magnitude_calib "uses no calibration" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --sparsity 0.5 "${C[@]}"
expect_fail bits_wanda "apply to --method sparsegpt" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method wanda --sparsity 0.5 \
    "${C[@]}" --bits 4
expect_fail embed_bits_7 "--embed-bits" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --sparsity 0.5 --embed-bits 7
expect_fail bits_ffn "unstructured or N:M" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method sparsegpt --pattern ffn --sparsity 0.25 \
    "${C[@]}" --bits 4
expect_fail bad_method "unknown method 'obs'" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method obs --sparsity 0.5
expect_fail heads_none "removes none" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --pattern heads --sparsity 0.25
expect_fail ffn_ignored "must be targeted" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --pattern ffn \
    --sparsity 0.25 --ignore model.layers.0.mlp.down_proj
expect_fail prune_head "only the block linears" "$PR" "$T/tiny.h5" -o "$T/x.h5" --method magnitude --sparsity 0.5 \
    --targets lm_head
expect_fail not_h5 "should end in .h5" "$PR" "$T/tiny.h5" -o "$T/x.sqz" --method magnitude --sparsity 0.5
# calibration made on another model (the stories or a second tiny one)
"$TOOLS/tool_make_tiny" hf "$T/hf2" --seed 7 >/dev/null 2>&1 || "$TOOLS/tool_make_tiny" hf "$T/hf2" >/dev/null
"$CONV" import "$T/hf2" -o "$T/other.h5" >/dev/null 2>&1
cp "$T/mag.h5" "$T/other2.h5"
expect_fail calib_mismatch "calibration was made for the model with sha256" "$PR" "$T/other2.h5" -o "$T/x.h5" --method wanda \
    --sparsity 0.5 "${C[@]}"
expect_fail already_quantized "already q4g" "$PR" "$T/sgpt24w4.h5" -o "$T/x.h5" --method magnitude --sparsity 0.5
no_file no_output_left "$T/x.h5"

# ----- stories260K: the published ordering at 50% -----
STORIES="$SHARED/models/stories260K/stories260K.bin"
if [ "${SQUISH_TEST_QUICK:-0}" = 1 ]; then
    skip stories_ordering "SQUISH_TEST_QUICK=1"
elif [ -f "$STORIES" ] && [ -f "$SHARED/data/tinystories/calib.txt" ]; then
    D="$SHARED/data/tinystories"
    "$CONV" import "$STORIES" -o "$T/st.h5" >/dev/null 2>&1
    "$CAL" "$T/st.h5" --data "$D/calib.txt" --samples 32 --seq-len 256 -o "$T/stcal.h5" -q >/dev/null 2>&1
    declare -A ppl
    for m in magnitude wanda sparsegpt; do
        cal=(); [ $m != magnitude ] && cal=(--calib "$T/stcal.h5")
        "$PR" "$T/st.h5" -o "$T/st-$m.h5" --method $m --sparsity 0.5 "${cal[@]}" -q >/dev/null 2>&1 \
            && "$CONV" export "$T/st-$m.h5" -o "$T/st-$m.sqz" >/dev/null 2>&1 \
            && ppl[$m]=$("$EVAL" "$T/st-$m.sqz" --text "$D/eval.txt" --ctx 256 --chunks 20 -q 2>&1 \
                          | grep -oE 'ppl = [0-9.]+' | awk '{print $3}')
    done
    echo "  stories260K 50%, 20 chunks: magnitude ${ppl[magnitude]:-?} wanda ${ppl[wanda]:-?} sparsegpt ${ppl[sparsegpt]:-?}"
    if [ -n "${ppl[magnitude]:-}" ] && [ -n "${ppl[wanda]:-}" ] && [ -n "${ppl[sparsegpt]:-}" ] \
        && awk -v m="${ppl[magnitude]}" -v w="${ppl[wanda]}" -v s="${ppl[sparsegpt]}" 'BEGIN { exit !(w < m && s < m) }'
    then pass stories_ordering; else fail stories_ordering "magnitude ${ppl[magnitude]:-?} wanda ${ppl[wanda]:-?} sparsegpt ${ppl[sparsegpt]:-?}"; fi
else
    skip stories_ordering "../shared/models/stories260K not found"
fi
finish
