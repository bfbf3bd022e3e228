#!/usr/bin/env bash
# prune_table.sh - the pruning quality table of docs/pruning-results.md: for each model,
# squish-calibrate (128 windows x 256 tokens of the model's calib.txt, seed 0; the same
# calibration as bench/quant_table.sh) -> squish-prune (magnitude / Wanda / SparseGPT at 50%
# unstructured, 2:4, 4:8, structured 25% FFN; SparseGPT 2:4 + 4-bit g128 joint, also with the
# embedding and head quantized by --embed-bits/--head-bits) ->
# squish-convert export -> squish-eval --kld against the dense model (llama.cpp protocol,
# ctx 256, the model's eval.txt), printed as a Markdown table with the store and runnable
# file sizes (the runnable file is whatever `squish-convert export` makes of it: compact
# sparse types when the exporter has them), the runnable-file size relative to the dense
# model exported as f16, PPL, dPPL, mean KLD, same-top-1 and the pruning time.
#
#   bash bench/prune_table.sh [stories260K|gutenberg-7m|all]
#
# Variables: BUILD (build), SQUISH_SHARED (../shared), OUT (bench/out/prune), THREADS (2),
# CHUNKS (evaluate only the first N windows; default all), SAMPLES (128), FILTER (an extended
# regex: only the rows whose label matches, e.g. FILTER='4:8').
# N:M needs M to divide every pruned row: stories260K's down_proj rows have 172 weights, so
# its 4:8 rows keep down_proj dense (--ignore 're:.*down_proj', said in the label).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}/bin
SHARED=${SQUISH_SHARED:-../shared}
OUT=${OUT:-bench/out/prune}
THREADS=${THREADS:-2}
SAMPLES=${SAMPLES:-128}
WHICH=${1:-all}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} # the VM is shared: do not spin
mkdir -p "$OUT"
chunks=()
[ -n "${CHUNKS:-}" ] && chunks=(--chunks "$CHUNKS")

run() { # prints the command, runs it, keeps its output in $OUT/last.log
    echo "\$ $*" >> "$OUT/commands.log"
    "$@" > "$OUT/last.log" 2>&1
}

field() { grep -oE "$1 = [0-9.e+-]+" "$2" | head -n 1 | awk '{print $3}'; }
size() { stat -c %s "$1" 2>/dev/null || echo 0; }

table_model() {
    local name=$1 model=$2 data=$3 topk=$4
    local dir="$OUT/$name" base
    mkdir -p "$dir"
    echo "## $name" >&2
    run "$BIN/squish-convert" import "$model" -o "$dir/base.h5" || { cat "$OUT/last.log" >&2; return 1; }
    run "$BIN/squish-convert" export "$dir/base.h5" -o "$dir/base.sqz" || return 1
    run "$BIN/squish-convert" export "$dir/base.h5" -o "$dir/base-f16.sqz" --dtype f16 || return 1
    local f16; f16=$(size "$dir/base-f16.sqz")
    if [ ! -s "$dir/calib.h5" ]; then
        run "$BIN/squish-calibrate" "$dir/base.h5" --data "$data/calib.txt" --samples "$SAMPLES" --seq-len 256 \
            --seed 0 -o "$dir/calib.h5" -q -t "$THREADS" || { cat "$OUT/last.log" >&2; return 1; }
    fi
    run "$BIN/squish-eval" "$dir/base.sqz" --text "$data/eval.txt" --ctx 256 "${chunks[@]}" --save-logits \
        "$dir/base.kld" --top-k "$topk" -q -t "$THREADS" || { cat "$OUT/last.log" >&2; return 1; }
    base=$(field ppl "$OUT/last.log")
    local bsz; bsz=$(size "$dir/base.sqz")
    echo "| $name | dense | $(size "$dir/base.h5") | $bsz | $(awk -v a="$bsz" -v b="$f16" 'BEGIN { printf "%.3f", a / b }') | $base | 0 | (base) | | |"
    local rows=()
    # label|method|extra prune args
    for m in magnitude wanda sparsegpt; do
        rows+=("$m 50%|$m|--sparsity 0.5")
        rows+=("$m 2:4|$m|--pattern 2:4")
        if [ "$name" = stories260K ]; then
            rows+=("$m 4:8 (down_proj dense)|$m|--pattern 4:8 --ignore re:.*down_proj")
        else
            rows+=("$m 4:8|$m|--pattern 4:8")
        fi
        rows+=("$m ffn 25%|$m|--pattern ffn --sparsity 0.25")
    done
    rows+=("sparsegpt 2:4 + 4-bit g128|sparsegpt|--pattern 2:4 --bits 4 --group 128")
    rows+=("sparsegpt 2:4 + 4-bit g128 asym|sparsegpt|--pattern 2:4 --bits 4 --group 128 --asym")
    # the whole model quantized, as docs/quantization-results.md's main rows: stories260K's tied
    # embedding at 8 bits; gutenberg-7m's embedding at the row's 4 bits and lm_head at 8
    if [ "$name" = stories260K ]; then
        rows+=("sparsegpt 2:4 + 4-bit g128, embedding 8-bit|sparsegpt|--pattern 2:4 --bits 4 --group 128 --embed-bits 8")
    else
        rows+=("sparsegpt 2:4 + 4-bit g128, embedding 4-bit, head 8-bit|sparsegpt|--pattern 2:4 --bits 4 --group 128 --embed-bits 4 --head-bits 8")
    fi
    for row in "${rows[@]}"; do
        IFS='|' read -r label method extra <<< "$row"
        if [ -n "${FILTER:-}" ] && ! [[ "$label" =~ $FILTER ]]; then continue; fi
        local tag=${label// /_}
        tag=${tag//[^A-Za-z0-9_+-]/}
        local calib=()
        [ "$method" != magnitude ] && calib=(--calib "$dir/calib.h5")
        local t0 t1
        t0=$(date +%s.%N)
        # shellcheck disable=SC2086
        if ! run "$BIN/squish-prune" "$dir/base.h5" -o "$dir/$tag.h5" --method "$method" $extra "${calib[@]}" \
            -t "$THREADS" --json "$dir/$tag.json" -q; then
            echo "| $name | $label | failed: $(tail -n 1 "$OUT/last.log") ||||||||"
            continue
        fi
        t1=$(date +%s.%N)
        local ps; ps=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        run "$BIN/squish-convert" export "$dir/$tag.h5" -o "$dir/$tag.sqz" || { echo "| $name | $label | export failed ||||||||"; continue; }
        local hsz ssz; hsz=$(size "$dir/$tag.h5"); ssz=$(size "$dir/$tag.sqz")
        run "$BIN/squish-eval" "$dir/$tag.sqz" --kld "$dir/base.kld" -q -t "$THREADS" \
            || { echo "| $name | $label | eval failed ||||||||"; continue; }
        local ppl kld top1
        ppl=$(field ppl "$OUT/last.log")
        kld=$(field kld "$OUT/last.log")
        top1=$(grep -oE 'same top-1 = [0-9.]+' "$OUT/last.log" | awk '{print $4}')
        local d; d=$(awk -v a="$ppl" -v b="$base" 'BEGIN { printf "%+.4f", a - b }')
        local rel; rel=$(awk -v a="$ssz" -v b="$f16" 'BEGIN { printf "%.3f", a / b }')
        echo "| $name | $label | $hsz | $ssz | $rel | $ppl | $d | $kld | $top1 % | $ps |"
        rm -f "$dir/$tag.sqz"
    done
}

echo "| model | setting | store bytes | runnable bytes | ÷ dense f16 runnable | PPL | ΔPPL | mean KLD | same top-1 | prune s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
: > "$OUT/commands.log"
if [ "$WHICH" = stories260K ] || [ "$WHICH" = all ]; then
    if [ -f "$SHARED/models/stories260K/stories260K.bin" ]; then
        table_model stories260K "$SHARED/models/stories260K/stories260K.bin" "$SHARED/data/tinystories" 0
    else echo "(no $SHARED/models/stories260K)" >&2; fi
fi
if [ "$WHICH" = gutenberg-7m ] || [ "$WHICH" = all ]; then
    if [ -d "$SHARED/models/gutenberg-7m" ]; then
        table_model gutenberg-7m "$SHARED/models/gutenberg-7m" "$SHARED/data/gutenberg" 256
    else echo "(no $SHARED/models/gutenberg-7m)" >&2; fi
fi
