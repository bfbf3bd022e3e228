#!/usr/bin/env bash
# llamacpp_npm.sh: check squish's GGUF files against a real llama.cpp that comes from the npm registry (the prebuilt
# CPU build inside @node-llama-cpp/linux-x64, driven through node-llama-cpp's bindings; nothing is downloaded at
# install or run time, and only the optional build-tools compiles anything). Perplexity follows llama-perplexity's protocol (../shared/docs/FORMATS.md §9.2),
# the same one `squish-eval --protocol llamacpp` implements, so the two PPLs of one GGUF must agree.
#
#   bash bench/llamacpp_npm.sh install                       # npm install into $LLAMACPP_NPM_DIR (outside the repo)
#   bash bench/llamacpp_npm.sh ppl MODEL.gguf --text FILE [--ctx 256] [--chunks K] [-t 1] [--json OUT] ...
#   bash bench/llamacpp_npm.sh compare MODEL.gguf [TEXT] [CTX] [CHUNKS]
#                                                            # squish-eval and llama.cpp on the same GGUF and text
#   bash bench/llamacpp_npm.sh stories [CHUNKS]              # stories260K -> GGUF (squish-convert), then compare
#   bash bench/llamacpp_npm.sh build-tools                   # llama-perplexity, -quantize, -bench, compiled from the
#                                                            # llama.cpp source node-llama-cpp ships (a git bundle),
#                                                            # linked to the prebuilt libraries (g++, ~30 s), in
#                                                            # $LLAMACPP_NPM_DIR/build/bin (= LLAMA_CPP_DIR layout)
#   bash bench/llamacpp_npm.sh llama-perplexity ARGS...      # run those tools (absolute paths for files)
#   bash bench/llamacpp_npm.sh llama-quantize ARGS...        # (and llama-bench)
#
# Environment: LLAMACPP_NPM_DIR (default /work/llamacpp-npm), SQUISH_BIN (default ./build/bin), SHARED (default
# ../shared), OUT (default bench/out/llamacpp-npm).
set -euo pipefail
export OMP_WAIT_POLICY=passive

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
NPM_DIR="${LLAMACPP_NPM_DIR:-/work/llamacpp-npm}"
BIN="${SQUISH_BIN:-$ROOT/build/bin}"
SHARED="${SHARED:-$ROOT/../shared}"
OUT="${OUT:-$ROOT/bench/out/llamacpp-npm}"
NLC_VERSION=3.22.1   # node-llama-cpp and its prebuilt @node-llama-cpp/linux-x64 must have the same version

die() { echo "llamacpp_npm.sh: $*" >&2; exit 1; }

cmd_install() {
    command -v npm >/dev/null || die "npm not found (Debian: apt-get install nodejs npm; node >= 20)"
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || printf '{ "name": "llamacpp-npm", "private": true }\n' > "$NPM_DIR/package.json"
    # --ignore-scripts: node-llama-cpp's postinstall would try to fetch or build llama.cpp; the prebuilt binary is
    # inside the @node-llama-cpp/linux-x64 tarball. --omit=optional skips the CUDA/Vulkan/ARM variants (~640 MB).
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --ignore-scripts --omit=optional \
        "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/linux-x64@$NLC_VERSION")
    ls "$NPM_DIR/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/"libllama*.so >/dev/null \
        || die "$NPM_DIR: no prebuilt libllama in @node-llama-cpp/linux-x64"
    echo "installed node-llama-cpp $NLC_VERSION with its prebuilt linux-x64 llama.cpp in $NPM_DIR"
}

libdir() { echo "$NPM_DIR/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"; }

cmd_build_tools() {
    local lib src tools bundle
    lib="$(libdir)"; src="$NPM_DIR/llama.cpp-src"; tools="$NPM_DIR/build/bin"
    bundle="$NPM_DIR/node_modules/node-llama-cpp/llama/gitRelease.bundle"
    [ -f "$bundle" ] && [ -d "$lib" ] || die "$NPM_DIR: node-llama-cpp not installed (run: $0 install)"
    command -v g++ >/dev/null || die "g++ not found (apt-get install g++)"
    [ -d "$src/.git" ] || git -c advice.detachedHead=false clone -q "$bundle" "$src"
    mkdir -p "$tools"
    # the prebuilt ggml loads its CPU backend (the best libggml-cpu-*.so variant for this CPU) from the directory of
    # the executable: link them there.
    ln -sf "$lib"/libggml-cpu-*.so "$tools/"
    local t
    for t in perplexity quantize llama-bench; do
        local srcs=("$src/tools/$t/$t.cpp" "$src/tools/$t/main.cpp") exe="$tools/llama-$t"
        [ "$t" = llama-bench ] && exe="$tools/$t"
        [ -f "$src/tools/$t/main.cpp" ] || srcs=("$src/tools/$t/$t.cpp")
        g++ -std=c++17 -O2 -I"$src/include" -I"$src/ggml/include" -I"$src/common" -I"$src/vendor" \
            "${srcs[@]}" -o "$exe.tmp" \
            "$lib/libllama-common.so" "$lib"/libllama.v*.so "$lib"/libggml.v*.so "$lib/libggml-base.so" \
            -Wl,-rpath,"$lib" -lpthread
        mv "$exe.tmp" "$exe"
    done
    "$tools/llama-perplexity" --version 2>&1 | head -n 1
    echo "built llama-perplexity, llama-quantize and llama-bench in $tools (LLAMA_CPP_DIR=$NPM_DIR for run_bench.sh)"
}

cmd_tool() {
    local exe="$NPM_DIR/build/bin/$1"; shift
    [ -x "$exe" ] || die "$exe: not built (run: $0 build-tools)"
    "$exe" "$@"
}

cmd_ppl() {
    LLAMACPP_NPM_DIR="$NPM_DIR" node "$HERE/llamacpp_ppl.mjs" "$@"
}

cmd_compare() {
    local model="${1:?usage: compare MODEL.gguf [TEXT] [CTX] [CHUNKS]}"
    local text="${2:-$SHARED/data/tinystories/eval.txt}" ctx="${3:-256}" chunks="${4:-100}"
    [ -x "$BIN/squish-eval" ] || die "$BIN/squish-eval: not built (make bins, or set SQUISH_BIN)"
    mkdir -p "$OUT"
    local base; base="$OUT/$(basename "$model" .gguf)-c$ctx-n$chunks"
    echo "== squish-eval $model --text $text --ctx $ctx --chunks $chunks -t 1"
    "$BIN/squish-eval" "$model" --text "$text" --ctx "$ctx" --chunks "$chunks" -t 1 --json "$base-squish.json" \
        2>/dev/null | tail -n 1
    echo "== llama.cpp (npm) $model --text $text --ctx $ctx --chunks $chunks -t 1"
    cmd_ppl "$model" --text "$text" --ctx "$ctx" --chunks "$chunks" -t 1 --json "$base-llamacpp.json" 2>/dev/null
    node -e '
        const fs = require("fs");
        const s = JSON.parse(fs.readFileSync(process.argv[1])), l = JSON.parse(fs.readFileSync(process.argv[2]));
        if (s.text_tokens !== l.text_tokens || s.windows !== l.windows || s.scored_tokens !== l.scored)
            { console.log(`MISMATCH in tokenization: squish ${s.text_tokens} tokens/${s.windows} windows, llama.cpp ${l.text_tokens}/${l.windows}`); process.exit(1); }
        const d = l.mean_nll - s.mean_nll;
        console.log(`same tokens (${s.text_tokens}, ${s.windows} windows, ${s.scored_tokens} scored); ` +
            `PPL squish ${s.ppl.toFixed(4)} llama.cpp ${l.ppl.toFixed(4)}; mean NLL difference ${d.toExponential(2)} nats`);
    ' "$base-squish.json" "$base-llamacpp.json"
}

cmd_stories() {
    local chunks="${1:-100}"
    [ -x "$BIN/squish-convert" ] || die "$BIN/squish-convert: not built (make bins, or set SQUISH_BIN)"
    mkdir -p "$OUT"
    "$BIN/squish-convert" "$SHARED/models/stories260K/stories260K.bin" -o "$OUT/stories260K.gguf"
    cmd_compare "$OUT/stories260K.gguf" "$SHARED/data/tinystories/eval.txt" 256 "$chunks"
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    ppl) shift; cmd_ppl "$@" ;;
    compare) shift; cmd_compare "$@" ;;
    stories) shift; cmd_stories "$@" ;;
    build-tools) shift; cmd_build_tools "$@" ;;
    llama-perplexity|llama-quantize|llama-bench) cmd_tool "$@" ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
