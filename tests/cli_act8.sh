#!/usr/bin/env bash
# cli_act8.sh - `squish-convert export --act-int8` (the ACT8 flag, int8 activations for q8g/q4g;
# docs/quantization.md): the flag shows in `info`, squish-eval runs the flagged file with a
# perplexity close to the unflagged one, -t 1 and -t 2 print the same figures, and the option is
# refused where it cannot apply (a GGUF or model-store output, a model with no q8g/q4g matrix).
source "$(dirname "$0")/lib_cli.sh"
QZ="$BIN/squish-quantize"
CONV="$BIN/squish-convert"
EVAL="$BIN/squish-eval"

tiny_store_and_text || { fail make_tiny "tool_make_tiny / import failed"; finish; exit 1; }

for b in 4 8; do
    "$QZ" "$T/tiny.h5" -o "$T/q$b.h5" --method rtn --bits $b --group 32 -q >/dev/null 2>&1 \
        || { fail "quantize_$b" "squish-quantize failed"; continue; }
    expect_ok "export_$b" "$CONV" export "$T/q$b.h5" -o "$T/q$b.sqz"
    expect_ok "export_act8_$b" "$CONV" export "$T/q$b.h5" -o "$T/q$b-a8.sqz" --act-int8
    typ=$([ $b = 4 ] && echo q4g || echo q8g)
    if "$CONV" info "$T/q$b-a8.sqz" 2>/dev/null | grep -qE "model.layers.0.self_attn.q_proj.weight +$typ\+a8" \
        && "$CONV" info "$T/q$b-a8.sqz" --json 2>/dev/null | grep -q '"act8": true' \
        && ! "$CONV" info "$T/q$b.sqz" 2>/dev/null | grep -q "+a8"
    then pass "info_shows_act8_$b"; else fail "info_shows_act8_$b" "no $typ+a8 in info"; fi
    for f in q$b q$b-a8; do
        for t in 1 2; do
            "$EVAL" "$T/$f.sqz" --text "$T/data.txt" --ctx 64 --chunks 4 -q -t $t > "$T/$f-t$t.out" 2>"$T/e.err" \
                || fail "eval_${f}_t$t" "$(tail -n 2 "$T/e.err")"
        done
        # the figures (everything but tokens/s and the thread count) must be the same
        strip() { sed -e 's/tokens\/s=[0-9.]*//' -e 's/threads=[0-9]*//' "$1"; }
        if [ -s "$T/$f-t1.out" ] && [ "$(strip "$T/$f-t1.out")" = "$(strip "$T/$f-t2.out")" ]
        then pass "eval_${f}_threads_identical"
        else fail "eval_${f}_threads_identical" "$(head -n 2 "$T/$f-t1.out" "$T/$f-t2.out")"; fi
    done
    p=$(sed -n 's/^ppl = \([0-9.]*\).*/\1/p' "$T/q$b-t1.out")
    a=$(sed -n 's/^ppl = \([0-9.]*\).*/\1/p' "$T/q$b-a8-t1.out")
    # int8 activations per 32 columns: within 2 % of the f32-activation perplexity, and not identical
    if [ -n "$p" ] && [ -n "$a" ] && [ "$p" != "$a" ] \
        && awk -v a="$a" -v p="$p" 'BEGIN { exit !(a < 1.02 * p && a > p / 1.02) }'
    then pass "ppl_close_$b (act8 $a, f32 $p)"; else fail "ppl_close_$b" "act8 '$a' vs f32 '$p'"; fi
done

expect_fail act8_gguf "act-int8.*\.sqz" "$CONV" export "$T/q4.h5" -o "$T/x.gguf" --act-int8
expect_fail act8_store "\.sqz" "$CONV" export "$T/q4.h5" -o "$T/x.h5" --act-int8
no_file act8_store_no_output "$T/x.h5"
expect_fail act8_float_model "no q8g or q4g" "$CONV" export "$T/tiny.h5" -o "$T/f.sqz" --act-int8
no_file act8_float_no_output "$T/f.sqz"
if "$CONV" --help | grep -q -- "--act-int8"; then pass help; else fail help "no --act-int8 in --help"; fi
finish
