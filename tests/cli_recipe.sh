#!/usr/bin/env bash
# cli_recipe.sh - `squish recipe` end to end on a tiny generated model: run (manifest,
# artifacts, report), byte-identical artifacts at -t 1 and -t 2 in different directories,
# rerun resumes (every step reused), a run killed mid-stage leaves nothing that looks
# complete and a rerun finishes it with the same bytes, check passing and failing (exit 3,
# readable diff, JSON, JUnit XML), compare's table and plot on two recipes, a schema error
# from the command line, a missing tool named in the message.
source "$(dirname "$0")/lib_cli.sh"
SQ="$BIN/squish"
CONV="$BIN/squish-convert"

"$TOOLS/tool_make_tiny" hf "$T/hf" >/dev/null || { fail make_tiny "tool_make_tiny failed"; finish; exit 1; }
words=(the cat sat on a mat and she was happy to see it in sun Tom ran home with his dog)
{ for i in $(seq 1 1500); do printf '%s ' "${words[$(( (i * 7 + i / 5) % ${#words[@]} ))]}"; done; echo; } > "$T/data.txt"

recipe() { # NAME STAGE-YAML
    cat > "$T/$1.yaml" <<YAML
version: 1
name: $1
model: hf
calibration: {data: data.txt, samples: 8, seq_len: 64, seed: 0}
stages:
$2
evaluation:
  texts: [{path: data.txt, ctx: 64, chunks: 4}]
  kld: on
  decode_tokens: 8
YAML
}
recipe gptq "  - quantize: {method: gptq, bits: 4, group: 64, ignore: ['re:model\\.layers\\.0\\.mlp\\.down_proj\$']}"
recipe rtn8 "  - quantize: {method: rtn, bits: 8, group: row}"

# ----- run, manifest, artifacts -----
if "$SQ" recipe run "$T/gptq.yaml" -o "$T/r1" -t 1 >"$T/r1.out" 2>"$T/r1.err"; then pass run; else fail run "$(tail -n 3 "$T/r1.err")"; fi
ok=1
for f in manifest.json model.h5 model.sqz eval.json report.md stage1-quantize.h5; do [ -s "$T/r1/$f" ] || { ok=0; fail "artifact_$f" "missing"; }; done
[ $ok = 1 ] && pass artifacts
m="$T/r1/manifest.json"
if grep -q '"resolved_recipe"' "$m" && grep -q '"peak_rss_kib"' "$m" && grep -q '"wall_s"' "$m" \
    && grep -q "\"sha256\":[[:space:]]*\"$(sha256sum "$T/r1/model.sqz" | cut -d' ' -f1)\"" "$m" \
    && grep -q "\"sha256\":[[:space:]]*\"$(sha256sum "$T/data.txt" | cut -d' ' -f1)\"" "$m"
then pass manifest; else fail manifest "$(head -c 400 "$m")"; fi
grep -q 'squish-quantize .*--method gptq --bits 4 --group 64 --sym' "$m" && pass manifest_commands \
    || fail manifest_commands "no replayable quantize command"
grep -qE '^\| data.txt \| llamacpp \| 64 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ \|' "$T/r1/report.md" && pass report \
    || fail report "$(head -n 12 "$T/r1/report.md")"
if command -v h5ls >/dev/null; then
    h5ls -r "$T/r1/model.h5" | grep -q "/quant/model.layers.1.mlp.down_proj.weight" \
        && ! h5ls -r "$T/r1/model.h5" | grep -q "/quant/model.layers.0.mlp.down_proj.weight" \
        && pass ignore_applied || fail ignore_applied "the ignore pattern did not reach squish-quantize"
else skip ignore_applied "h5ls not installed"; fi

# ----- determinism: -t 2 in another directory gives the same bytes -----
"$SQ" recipe run "$T/gptq.yaml" -o "$T/r2" -t 2 -q >/dev/null 2>"$T/r2.err" || fail run_t2 "$(tail -n 2 "$T/r2.err")"
for f in model.h5 model.sqz stage1-quantize.h5; do
    if [ -s "$T/r2/$f" ] && cmp -s "$T/r1/$f" "$T/r2/$f"; then pass "identical_t1_t2_$f"; else fail "identical_t1_t2_$f" "differs"; fi
done

# ----- resume: a finished run reruns nothing -----
before=$(sha256sum "$T/r1/model.sqz")
"$SQ" recipe run "$T/gptq.yaml" -o "$T/r1" -t 1 >/dev/null 2>"$T/r1b.err"
n_ran=$(grep -c ' \.\.\.$' "$T/r1b.err")
[ "$n_ran" = 0 ] && [ "$(sha256sum "$T/r1/model.sqz")" = "$before" ] && [ -s "$T/r1/manifest.json" ] && pass resume_finished \
    || fail resume_finished "$n_ran steps ran again: $(grep ' \.\.\.$' "$T/r1b.err" | head -n 3)"

# ----- interrupted: kill mid-stage, nothing looks complete, rerun resumes -----
mkdir -p "$T/slowbin"
for t in "$BIN"/squish*; do ln -s "$(cd "$(dirname "$t")" && pwd)/$(basename "$t")" "$T/slowbin/"; done
rm "$T/slowbin/squish-quantize"
printf '#!/bin/sh\nexec sleep 60\n' > "$T/slowbin/squish-quantize"; chmod +x "$T/slowbin/squish-quantize"
SQUISH_BIN="$T/slowbin" "$SQ" recipe run "$T/gptq.yaml" -o "$T/r3" -t 1 >/dev/null 2>"$T/r3.err" &
pid=$!
for i in $(seq 1 200); do [ -e "$T/r3/logs/stage1-quantize.log" ] && break; sleep 0.1; done
sleep 0.3
kill -TERM $pid; wait $pid; rc=$?
[ $rc = 130 ] && pass killed_exit || fail killed_exit "exit $rc (want 130): $(tail -n 1 "$T/r3.err")"
ok=1
for f in manifest.json model.sqz model.h5 eval.json report.md stage1-quantize.h5; do [ -e "$T/r3/$f" ] && ok=0; done
[ $ok = 1 ] && pass killed_nothing_complete || fail killed_nothing_complete "$(ls "$T/r3")"
: > "$T/r3/stage1-quantize.h5.tmp.999999"   # what a killed tool leaves behind
"$SQ" recipe run "$T/gptq.yaml" -o "$T/r3" -t 1 >/dev/null 2>"$T/r3b.err" || fail rerun "$(tail -n 2 "$T/r3b.err")"
grep -qE '^  convert +cached' "$T/r3b.err" && grep -qE '^  stage1-calibrate +cached' "$T/r3b.err" \
    && grep -qE '^  stage1-quantize .* \.\.\.$' "$T/r3b.err" && pass resume_after_kill \
    || fail resume_after_kill "$(head -n 6 "$T/r3b.err")"
cmp -s "$T/r1/model.sqz" "$T/r3/model.sqz" && [ -s "$T/r3/manifest.json" ] && pass resumed_identical \
    || fail resumed_identical "model.sqz differs from an uninterrupted run"
no_file tmp_cleaned "$T/r3/stage1-quantize.h5"".tmp.999999"

# ----- a missing tool is named -----
cat > "$T/prune.yaml" <<YAML
version: 1
model: hf
stages:
  - prune: {method: magnitude, pattern: 2:4}
evaluation: {decode_tokens: 0}
YAML
rm -f "$T/slowbin/squish-prune"
err=$(SQUISH_BIN="$T/slowbin" "$SQ" recipe run "$T/prune.yaml" -o "$T/rp" -q 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && printf '%s' "$err" | grep -q "squish-prune is not installed beside squish" && pass missing_tool \
    || fail missing_tool "exit $rc: $err"

# ----- check: passing and failing gates -----
out=$("$SQ" recipe check "$T/gptq.yaml" --run "$T/r1" --baseline "$T/r1/eval.json" --max-ppl-increase 0% \
      --json "$T/c1.json" --junit "$T/c1.xml" 2>&1); rc=$?
[ $rc = 0 ] && printf '%s' "$out" | grep -q "result: pass (0 of 1 gates failed)" && grep -q '"pass":[[:space:]]*true' "$T/c1.json" \
    && grep -q 'failures="0"' "$T/c1.xml" && pass check_pass || fail check_pass "exit $rc: $out"
# a 4-bit model's KLD against its own unquantized model is > 0, so a zero limit must fail
out=$("$SQ" recipe check "$T/gptq.yaml" --run "$T/r1" --baseline "$T/r1/eval.json" --max-kld 0 \
      --json "$T/c2.json" --junit "$T/c2.xml" 2>&1); rc=$?
[ $rc = 3 ] && printf '%s' "$out" | grep -qE "data.txt +KLD .*\(limit 0.000000\)  FAIL" \
    && printf '%s' "$out" | grep -q "result: FAIL (1 of 1 gates failed)" && grep -q '"pass":[[:space:]]*false' "$T/c2.json" \
    && grep -q '<failure message=' "$T/c2.xml" && pass check_fail || fail check_fail "exit $rc: $out"
expect_fail check_no_baseline "expected RECIPE --baseline" "$SQ" recipe check "$T/gptq.yaml"

# ----- compare two recipes -----
"$SQ" recipe run "$T/rtn8.yaml" -o "$T/r4" -q >/dev/null 2>"$T/r4.err" || fail run_rtn8 "$(tail -n 2 "$T/r4.err")"
out=$("$SQ" recipe compare "$T/r1" "$T/r4" -o "$T/cmp" 2>/dev/null); rc=$?
if [ $rc = 0 ] && printf '%s\n' "$out" | grep -q '^| recipe | bpw | file bytes | PPL | ΔPPL | KLD | same top-1 | decode tok/s | compress s | Pareto |$' \
    && printf '%s\n' "$out" | grep -qE '^\| gptq \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| [-+][0-9.]+ % \| [0-9.]+ \|' \
    && printf '%s\n' "$out" | grep -qE '^\| rtn8 \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \|'
then pass compare_table; else fail compare_table "exit $rc: $out"; fi
[ "$(grep -c '<circle' "$T/cmp.svg" 2>/dev/null)" = 2 ] && grep -q '"runs"' "$T/cmp.json" && [ -s "$T/cmp.md" ] \
    && pass compare_outputs || fail compare_outputs "svg/json/md missing"
# the 8-bit file is larger than the 4-bit one (table bytes from the files themselves)
b1=$(stat -c %s "$T/r1/model.sqz"); b4=$(stat -c %s "$T/r4/model.sqz")
printf '%s\n' "$out" | grep -q "| gptq | [0-9.]* | $b1 |" && printf '%s\n' "$out" | grep -q "| rtn8 | [0-9.]* | $b4 |" \
    && [ "$b4" -gt "$b1" ] && pass compare_sizes || fail compare_sizes "$b1 $b4"

# ----- schema error from the command line -----
printf 'version: 1\nmodel: hf\nstages:\n  - quantize: {method: rtn, bits: 5}\n' > "$T/bad.yaml"
expect_fail schema_error "bad.yaml:4:35: stages\[0\].quantize.bits: expected one of 8, 4, 3, got 5" \
    "$SQ" recipe run "$T/bad.yaml" -o "$T/rb"
[ ! -e "$T/rb" ] && pass schema_error_no_dir || fail schema_error_no_dir "created $T/rb"

finish
