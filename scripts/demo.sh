#!/usr/bin/env bash
# demo.sh - the main job (`make demo`): convert a model into a store, export a runnable
# file, evaluate it and generate a story; then, for the default model, run the recipe
# recipes/w4-gptq-g128.yaml end to end (calibrate, GPTQ 4-bit, export, evaluate against the
# unquantized model) and print its report. MODEL= picks another model (a Hugging Face
# directory or a llama2.c .bin); default: stories260K from ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}/bin
SHARED=${SQUISH_SHARED:-../shared}
MODEL=${MODEL:-}
OUT=${OUT:-demo-out}
RECIPE=

if [ -z "$MODEL" ]; then
    RECIPE=recipes/w4-gptq-g128.yaml
    MODEL="$SHARED/models/stories260K/stories260K.bin"
    TEXT="$SHARED/data/tinystories/eval.txt"
    CTX=256
    PROMPT="Once upon a time"
fi
if [ ! -e "$MODEL" ]; then
    cat >&2 <<MSG
squish demo: no model found at '$MODEL'.
Put the shared models beside this checkout (../shared/models/stories260K/stories260K.bin and tok512.bin),
or point at your own:  make demo MODEL=/path/to/hf-model-dir   (or a llama2.c .bin with its tokenizer.bin)
MSG
    exit 1
fi
TEXT=${TEXT:-}
CTX=${CTX:-512}
PROMPT=${PROMPT:-Once upon a time}
mkdir -p "$OUT"
name=$(basename "${MODEL%/}"); name=${name%.bin}

echo "== 1. import $MODEL into a model store"
"$BIN/squish-convert" import "$MODEL" -o "$OUT/$name.h5"
echo
echo "== 2. export the store to a runnable file"
"$BIN/squish-convert" export "$OUT/$name.h5" -o "$OUT/$name.sqz"
"$BIN/squish-convert" info "$OUT/$name.sqz" > "$OUT/$name.info.txt"
head -n 12 "$OUT/$name.info.txt"
echo
if [ -n "$TEXT" ] && [ -f "$TEXT" ]; then
    echo "== 3. evaluate (llama.cpp protocol, ctx $CTX) on $TEXT"
    "$BIN/squish-eval" "$OUT/$name.sqz" --text "$TEXT" --ctx "$CTX" --json "$OUT/$name.eval.json"
    echo "   (llama.cpp F32 reference on this model and text: PPL 4.8143 ± 0.0262, ../shared/docs/PEERS.md)"
    echo
fi
echo "== 4. generate (greedy)"
"$BIN/squish-run" "$OUT/$name.sqz" -p "$PROMPT" -n 200 --temp 0
echo
if [ -n "$RECIPE" ]; then
    echo "== 5. run the recipe $RECIPE (squish recipe run; docs/recipes.md)"
    SQUISH_SHARED="$SHARED" "$BIN/squish" recipe run "$RECIPE" -o "$OUT/w4-gptq-g128"
    echo
    echo "   recipe run in $OUT/w4-gptq-g128/ (manifest.json lists every command; rerunning reuses it)"
fi
echo "artifacts in $OUT/"
