#!/usr/bin/env bash
# sparse_bench.sh - decode speed of pruned models against dense (issue 5; docs/pruning-results.md).
#
# Random-weight models of TinyLlama-1.1B's shape made by make_bench_model (speed does not depend on the
# weight values, only on the shapes and the stored types): dense f16; 2:4 (stored s24_f16); 50% unstructured,
# exactly half of each row (stored smask_f16, the bitmask); structured 25% FFN (hidden_dim 5632 -> 4224,
# dense f16); dense q4g g128; 2:4 + 4-bit (q4g g128 with the pruned weights at the zero point: the format has
# no sparse quantized type, so it is stored exactly like q4g). The seven block linears are pruned, the
# embedding and head stay dense, as squish-prune does. For each: file size, decode tokens/s (squish-run,
# greedy, NTOK new tokens after a short prompt, --ignore-eos) and prompt tokens/s, the median of REPS runs
# after one warm-up run, and the speed relative to dense f16. Prints a Markdown table (also $OUT/sparse.md).
#
#   bash bench/sparse_bench.sh
#
# Variables: BUILD (build), OUT (bench/out/sparse), THREADS (1), REPS (3), NTOK (32), MODELS (labels to run,
# default "f16 s24 mask50 ffn25 q4g s24q4g"; also "s48" = 4:8, stored as the bitmask).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}/bin
OUT=${OUT:-bench/out/sparse}
THREADS=${THREADS:-1}
REPS=${REPS:-3}
NTOK=${NTOK:-32}
MODELS=${MODELS:-f16 s24 mask50 ffn25 q4g s24q4g}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} # the VM is shared: do not spin
mkdir -p "$OUT"
MK=$BIN/make_bench_model
[ -x "$MK" ] || { echo "sparse_bench.sh: $MK not found (make BUILD=${BUILD:-build} all)" >&2; exit 1; }

declare -A args desc
args[f16]="--dtype f16";                      desc[f16]="dense f16"
args[s24]="--dtype f16 --sparse 2:4";         desc[s24]="2:4 (s24_f16)"
args[s48]="--dtype f16 --sparse 4:8";         desc[s48]="4:8 (smask_f16)"
args[mask50]="--dtype f16 --sparse 0.5";      desc[mask50]="50% unstructured (smask_f16)"
args[ffn25]="--dtype f16 --ffn-prune 0.25";   desc[ffn25]="structured 25% FFN (f16, hidden 4224)"
args[q4g]="--dtype q4g --group 128";          desc[q4g]="dense q4g g128"
args[s24q4g]="--dtype q4g --group 128 --sparse 2:4"; desc[s24q4g]="2:4 + 4-bit (stored as q4g g128)"

PROMPT="Once upon a time there was a little girl who lived in a village near the forest. She liked to walk"
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
jnum() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -n 1; }

: > "$OUT/commands.log"
rows=()
base_dec=""; base_best=""; base_cpu=""; base_size=""; kern=""
for m in $MODELS; do
    [ -n "${args[$m]:-}" ] || { echo "sparse_bench.sh: unknown model label '$m'" >&2; exit 1; }
    f="$OUT/tinyllama-$m.sqz"
    echo "\$ $MK --shape tinyllama ${args[$m]} -o $f" >> "$OUT/commands.log"
    if [ ! -s "$f" ]; then
        echo "making $f" >&2
        # shellcheck disable=SC2086
        "$MK" --shape tinyllama ${args[$m]} -o "$f" || { echo "sparse_bench.sh: make_bench_model failed" >&2; exit 1; }
    fi
    types=$("$BIN/squish-convert" info "$f" | awk '/_proj\.weight/ {print $2}' | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
    size=$(stat -L -c %s "$f")
    cmd=("$BIN/squish-run" "$f" -p "$PROMPT" -n "$NTOK" --temp 0 --ignore-eos -t "$THREADS" -q --json "$OUT/run.json")
    { printf '$'; printf ' %q' "${cmd[@]}"; echo; } >> "$OUT/commands.log"
    "$BIN/squish-run" "$f" -p "$PROMPT" -n 4 --temp 0 -t "$THREADS" -q >/dev/null 2>&1 # warm-up: page cache
    dec=(); pp=(); cpu=()
    for r in $(seq 1 "$REPS"); do
        /usr/bin/time -f "%U %S" -o "$OUT/time.txt" "${cmd[@]}" >/dev/null 2>"$OUT/run.err" \
            || { echo "sparse_bench.sh: squish-run failed on $f: $(tail -n 1 "$OUT/run.err")" >&2; exit 1; }
        dec+=("$(jnum generation_tokens_per_s "$OUT/run.json")")
        pp+=("$(jnum prompt_tokens_per_s "$OUT/run.json")")
        kern=$(sed -n 's/.*"kernels": *"\([a-z0-9]*\)".*/\1/p' "$OUT/run.json" | head -n 1)
        cN=$(awk '{print $1 + $2}' "$OUT/time.txt")
        /usr/bin/time -f "%U %S" -o "$OUT/time.txt" "$BIN/squish-run" "$f" -p "$PROMPT" -n 1 --temp 0 -t "$THREADS" -q \
            >/dev/null 2>&1
        c1=$(awk '{print $1 + $2}' "$OUT/time.txt")
        cpu+=("$(awk -v a="$cN" -v b="$c1" -v n="$NTOK" 'BEGIN { d = (a - b) / (n - 1); printf "%.3f", (d > 0 ? 1 / d : 0) }')")
    done
    d=$(printf '%s\n' "${dec[@]}" | median); p=$(printf '%s\n' "${pp[@]}" | median)
    best=$(printf '%s\n' "${dec[@]}" | sort -g | tail -n 1)
    cm=$(printf '%s\n' "${cpu[@]}" | median)
    if [ "$m" = f16 ]; then base_dec=$d; base_best=$best; base_cpu=$cm; base_size=$size; fi
    rel_size=$([ -n "$base_size" ] && awk -v a="$size" -v b="$base_size" 'BEGIN { printf "%.3f", a / b }' || echo "-")
    speed=$([ -n "$base_dec" ] && awk -v a="$d" -v b="$base_dec" 'BEGIN { printf "%.2fx", a / b }' || echo "-")
    speedb=$([ -n "$base_best" ] && awk -v a="$best" -v b="$base_best" 'BEGIN { printf "%.2fx", a / b }' || echo "-")
    speedc=$([ -n "$base_cpu" ] && awk -v a="$cm" -v b="$base_cpu" 'BEGIN { printf "%.2fx", a / b }' || echo "-")
    echo "$m: ${desc[$m]}: $size bytes, decode $d tok/s (${dec[*]}), per CPU-s ${cpu[*]}, prompt $p tok/s" >&2
    rows+=("| ${desc[$m]} | \`${args[$m]}\` | $types | $size | $rel_size | $cm | $speedc | $d | $speed | $best | $speedb | $p |")
done

{
    echo "Decode speed of pruned TinyLlama-1.1B-shaped models (random weights), $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -m), $kern kernels, $THREADS thread(s);"
    echo "median and best of $REPS runs of $NTOK greedy tokens after a $(echo "$PROMPT" | wc -w)-word prompt (on a shared"
    echo "machine the best run is the least disturbed one; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)). \"Decode"
    echo "tok per CPU-s\" = (NTOK - 1) / (CPU time of the NTOK-token run - CPU time of a 1-token run), user + system from"
    echo "/usr/bin/time: the decode speed the process would have with a core to itself, which time-sharing with other jobs"
    echo "does not change (shared memory bandwidth and caches still do). Median of the runs. Command:"
    echo "\`THREADS=$THREADS REPS=$REPS NTOK=$NTOK BUILD=${BUILD:-build} bash bench/sparse_bench.sh\`"
    echo "(each run: \`squish-run MODEL -p PROMPT -n $NTOK --temp 0 --ignore-eos -t $THREADS --json ...\`; models:"
    echo "\`make_bench_model --shape tinyllama OPTIONS -o MODEL\`)."
    echo
    echo "| model | make_bench_model options | block linears stored as | file bytes | ÷ dense f16 | decode tok per CPU-s | vs dense f16 | decode tok/s (wall, median) | vs dense f16 | decode tok/s (wall, best) | vs dense f16 | prompt tok/s (wall, median) |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for r in "${rows[@]}"; do echo "$r"; done
} > "$OUT/sparse.md"
cat "$OUT/sparse.md"
