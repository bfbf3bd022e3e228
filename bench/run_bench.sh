#!/usr/bin/env bash
# run_bench.sh - `make bench`: the speed table of squish-run and squish-eval.
#
# Models: stories260K (F32) and gutenberg-7m (F32, F16) from ../shared when present, and a
# random-weight model of TinyLlama-1.1B's shape (F16, F32, Q4G group 128, and Q4G with the ACT8
# flag: int8 activations, docs/quantization.md) that this script makes itself (speed does not depend on weight values). For each: decode tokens/s (squish-run, greedy,
# 128 new tokens), prompt tokens/s (squish-run, a 128-token prompt) and evaluation
# tokens/s (squish-eval, llama.cpp protocol), at 1 and 2 threads; the median of REPS runs.
# If LLAMA_CPP_DIR points at a llama.cpp build (build/bin/llama-bench), every model is also
# exported to GGUF with the same weights (squish-convert export m.sqz -o m.gguf) and
# llama-bench's pp128 and tg128 on it, at the same thread counts, go in the same table.
#
# Writes bench/out/results.md and bench/out/results.json, with the TinyLlama-shape decode ratios
# per thread count: q4g and q4g+ACT8 over f16 (issue 3's goal: at least 2.5x) and over llama.cpp's
# Q4_0 export of the same weights (goal: at least 1x). Variables: BUILD,
# SQUISH_SHARED, REPS (default 3), THREADS (default "1 2"), SKIP_TINYLLAMA=1, BENCH_OUT,
# ONLY (an extended regex: only the models whose name matches, e.g. ONLY='tinyllama.*(f16|q4g)').
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}/bin
SHARED=${SQUISH_SHARED:-../shared}
OUT=${BENCH_OUT:-bench/out}
REPS=${REPS:-3}
THREADS=${THREADS:-1 2}
mkdir -p "$OUT"

models=()   # "name|file|text|ctx"
if [ -f "$SHARED/models/stories260K/stories260K.bin" ]; then
    "$BIN/squish-convert" "$SHARED/models/stories260K/stories260K.bin" -o "$OUT/stories260K_f32.sqz" >/dev/null
    models+=("stories260K_f32|$OUT/stories260K_f32.sqz|$SHARED/data/tinystories/eval.txt|256")
fi
if [ -d "$SHARED/models/gutenberg-7m" ]; then
    "$BIN/squish-convert" "$SHARED/models/gutenberg-7m" -o "$OUT/gutenberg_f16.sqz" >/dev/null
    "$BIN/squish-convert" "$SHARED/models/gutenberg-7m" -o "$OUT/gutenberg_f32.sqz" --dtype f32 >/dev/null
    models+=("gutenberg_f16|$OUT/gutenberg_f16.sqz|$SHARED/data/gutenberg/eval.txt|256")
    models+=("gutenberg_f32|$OUT/gutenberg_f32.sqz|$SHARED/data/gutenberg/eval.txt|256")
fi
if [ "${SKIP_TINYLLAMA:-0}" != 1 ]; then
    for dt in f16 f32 q4g q4g_a8; do
        f="$OUT/tinyllama1.1b-random_$dt.sqz"
        if [ -n "${ONLY:-}" ] && ! [[ tinyllama1.1b-random_$dt =~ $ONLY ]]; then continue; fi
        a8=(); [ $dt = q4g_a8 ] && a8=(--act8)
        [ -f "$f" ] || "$BIN/make_bench_model" --shape tinyllama --dtype ${dt%_a8} "${a8[@]}" -o "$f"
        models+=("tinyllama1.1b-random_$dt|$f||512")
    done
fi

# a text for prompts and evaluation of the random model: any English will do
fallback_text="$OUT/bench_text.txt"
if [ ! -f "$fallback_text" ]; then
    if [ -f "$SHARED/data/tinystories/eval.txt" ]; then head -c 200000 "$SHARED/data/tinystories/eval.txt" > "$fallback_text"
    else for i in $(seq 1 4000); do echo "Once upon a time there was a little model that ran fast on a small board."; done > "$fallback_text"; fi
fi
head -c 600 "$fallback_text" > "$OUT/prompt.txt"   # about 128 tokens for Llama-style tokenizers

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
json_num() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2" 2>/dev/null \
             || sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" "$1" | head -n1; }

rows=()
for m in "${models[@]}"; do
    IFS='|' read -r name file text ctx <<< "$m"
    if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then continue; fi
    [ -n "$text" ] || text=$fallback_text
    for t in $THREADS; do
        dec=(); pp=(); ev=()
        for r in $(seq 1 "$REPS"); do
            "$BIN/squish-run" "$file" -f "$OUT/prompt.txt" -n 128 --temp 0 -t "$t" -q --ignore-eos --json "$OUT/run.json" >/dev/null
            dec+=("$(json_num "$OUT/run.json" generation_tokens_per_s)")
            pp+=("$(json_num "$OUT/run.json" prompt_tokens_per_s)")
            chunks=8; case $name in tinyllama*) chunks=2;; esac
            "$BIN/squish-eval" "$file" --text "$text" --ctx "$ctx" --chunks $chunks -t "$t" -q --json "$OUT/eval.json" >/dev/null
            ev+=("$(json_num "$OUT/eval.json" tokens_per_s)")
        done
        d=$(printf '%s\n' "${dec[@]}" | median); p=$(printf '%s\n' "${pp[@]}" | median); e=$(printf '%s\n' "${ev[@]}" | median)
        lpp=""; ltg=""
        if [ -n "${LLAMA_CPP_DIR:-}" ]; then
            gguf="${file%.sqz}.gguf"
            [ -f "$gguf" ] || "$BIN/squish-convert" export "$file" -o "$gguf" >/dev/null
            lb=$("$LLAMA_CPP_DIR/build/bin/llama-bench" -m "$gguf" -t "$t" -p 128 -n 128 -o csv 2>/dev/null || true)
            # llama-bench's CSV: columns found by name in the header (n_prompt, n_gen, avg_ts); newer
            # builds quote every field, so quotes go first (gsub on $0 re-splits the fields)
            lbcol() { # N_PROMPT N_GEN: avg_ts of that test
                echo "$lb" | awk -F, -v p="$1" -v g="$2" '{ gsub(/"/, "") }
                    NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
                    $c["n_prompt"] == p && $c["n_gen"] == g { print $c["avg_ts"]; exit }'
            }
            lpp=$(lbcol 128 0)
            ltg=$(lbcol 0 128)
        fi
        rows+=("$name|$t|$d|$p|$e|${ltg:-}|${lpp:-}")
        echo "$name  threads $t  decode $d tok/s  prompt $p tok/s  eval $e tok/s" >&2
    done
done

{
    kern=$(sed -n 's/.*"kernels": *"\([a-z0-9]*\)".*/\1/p' "$OUT/run.json" | head -n1)
    echo "# squish speed, $(date -u +%Y-%m-%d) ($(uname -m), $(nproc) cores, $kern kernels)"
    echo
    echo "Command: \`make bench\` (bench/run_bench.sh). Median of $REPS runs. decode = squish-run generating 128 tokens"
    echo "greedily after a ~128-token prompt; prompt = that prompt's processing speed; eval = squish-eval tokens run"
    echo "through the model per second (llama.cpp protocol). llama.cpp columns only when LLAMA_CPP_DIR is given (llama-bench"
    echo "pp128/tg128 on a GGUF export of the same weights, same threads)."
    echo
    echo "| model | threads | decode tok/s | prompt tok/s | eval tok/s | llama.cpp tg128 | llama.cpp pp128 |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for r in "${rows[@]}"; do IFS='|' read -r a b c d e f g <<< "$r"; echo "| $a | $b | $c | $d | $e | ${f:--} | ${g:--} |"; done
    # issue 3's speed goals: 4-bit decode >= 2.5x f16, and >= llama.cpp Q4_0 (its tg128 on the GGUF
    # export of the same weights, which is Q4_0)
    first=1
    for t in $THREADS; do
        f16=""; q4=""; q4a8=""; l4=""; l4a8=""
        for r in "${rows[@]}"; do
            IFS="|" read -r a b c _ _ f _ <<< "$r"
            [ "$b" = "$t" ] || continue
            case $a in
                tinyllama1.1b-random_f16) f16=$c ;;
                tinyllama1.1b-random_q4g) q4=$c; l4=$f ;;
                tinyllama1.1b-random_q4g_a8) q4a8=$c; l4a8=$f ;;
            esac
        done
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
        line=""
        [ -n "$f16" ] && [ -n "$q4" ] && line="q4g / f16 $(ratio "$q4" "$f16")x"
        [ -n "$f16" ] && [ -n "$q4a8" ] && line="${line:+$line, }q4g+ACT8 / f16 $(ratio "$q4a8" "$f16")x"
        [ -n "$q4" ] && [ -n "$l4" ] && line="${line:+$line, }q4g / llama.cpp Q4_0 $(ratio "$q4" "$l4")x"
        [ -n "$q4a8" ] && [ -n "$l4a8" ] && line="${line:+$line, }q4g+ACT8 / llama.cpp Q4_0 $(ratio "$q4a8" "$l4a8")x"
        if [ -n "$line" ]; then
            [ $first = 1 ] && echo && first=0
            echo "TinyLlama-shape decode at $t thread(s): $line"
        fi
    done
} > "$OUT/results.md"
{
    echo "["
    n=${#rows[@]}; i=0
    for r in "${rows[@]}"; do
        IFS='|' read -r a b c d e f g <<< "$r"; i=$((i+1))
        printf '  {"model": "%s", "threads": %s, "decode_tok_s": %s, "prompt_tok_s": %s, "eval_tok_s": %s, "llama_cpp_tg128": %s, "llama_cpp_pp128": %s}%s\n' \
            "$a" "$b" "$c" "$d" "$e" "${f:-null}" "${g:-null}" "$([ $i -lt $n ] && echo ,)"
    done
    echo "]"
} > "$OUT/results.json"
cat "$OUT/results.md"
