#!/usr/bin/env bash
# cli_recipe.sh - `squish recipe` end to end on a tiny generated model: run (manifest,
# artifacts, report), byte-identical artifacts at -t 1 and -t 2 in different directories and
# with a shared cache, rerun resumes (every step reused; at another -t only the decode
# timing), a run killed (SIGTERM mid-quantize, SIGINT mid-calibration) leaves nothing that
# looks complete and a rerun finishes it with the same bytes, cached steps keep their
# timing, prune then quantize stages in order with targets/ignore/overrides reaching the
# tools, every recipe in recipes/ validates, check passing and failing (exit 3, readable
# diff, JSON, JUnit XML, a baseline of another text), compare's table and plot on two
# recipes, a schema error from the command line, a missing tool named in the message.
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

# ... and with a shared cache given by absolute path (other command lines, same bytes)
"$SQ" recipe run "$T/gptq.yaml" -o "$T/r7" --cache "$T/shared-cache" -q >/dev/null 2>"$T/r7.err" || fail run_cache "$(tail -n 2 "$T/r7.err")"
cmp -s "$T/r1/model.sqz" "$T/r7/model.sqz" && cmp -s "$T/r1/model.h5" "$T/r7/model.h5" && ls "$T/shared-cache"/calib-*.h5 >/dev/null 2>&1 \
    && pass identical_shared_cache || fail identical_shared_cache "differs from the run with its own cache"

# ----- outputs.act_int8: model.sqz with int8 activations. Rerun in r7's directory: the stages are reused, the
# export, evaluation and decode of the f32-activation file are not
{ cat "$T/gptq.yaml"; echo "outputs: {act_int8: true}"; } > "$T/gptq_a8.yaml"
"$SQ" recipe run "$T/gptq_a8.yaml" -o "$T/r7" --cache "$T/shared-cache" >/dev/null 2>"$T/r8.err" || fail run_act8 "$(tail -n 2 "$T/r8.err")"
if cmp -s "$T/r1/model.h5" "$T/r7/model.h5" && "$CONV" info "$T/r7/model.sqz" --json 2>/dev/null | grep -q '"act8": true' \
    && ! "$CONV" info "$T/r1/model.sqz" --json 2>/dev/null | grep -q '"act8": true' \
    && grep -q 'squish-convert export .*--act-int8' "$T/r7/manifest.json" \
    && grep -qE '^  stage1-quantize +(cached|done earlier)' "$T/r8.err" && ! grep -qE '^  (export|eval-1|decode) +(cached|done earlier)' "$T/r8.err"
then pass recipe_act8_file; else fail recipe_act8_file "$(grep -E '^  ' "$T/r8.err" | head -n 12)"; fi
python3 - "$T/r1/eval.json" "$T/r7/eval.json" <<'PY' && pass recipe_act8_evaluated || fail recipe_act8_evaluated "the ACT8 file's evaluation is the f32 one"
import json, sys
a, b = (json.load(open(f))["texts"][0] for f in sys.argv[1:])
sys.exit(0 if a["ppl"] != b["ppl"] and abs(a["ppl"] / b["ppl"] - 1) < 0.02 and a["base_ppl"] == b["base_ppl"] else 1)
PY

# ----- resume: a finished run reruns nothing -----
before=$(sha256sum "$T/r1/model.sqz")
"$SQ" recipe run "$T/gptq.yaml" -o "$T/r1" -t 1 >/dev/null 2>"$T/r1b.err"
n_ran=$(grep -c ' \.\.\.$' "$T/r1b.err")
[ "$n_ran" = 0 ] && [ "$(sha256sum "$T/r1/model.sqz")" = "$before" ] && [ -s "$T/r1/manifest.json" ] && pass resume_finished \
    || fail resume_finished "$n_ran steps ran again: $(grep ' \.\.\.$' "$T/r1b.err" | head -n 3)"
# at another thread count the artifacts are the same bytes, so only the timing (decode) runs again
"$SQ" recipe run "$T/gptq.yaml" -o "$T/r1" -t 2 >/dev/null 2>"$T/r1c.err"
ran=$(grep ' \.\.\.$' "$T/r1c.err" | awk '{print $1}' | tr '\n' ' ')
[ "$ran" = "decode " ] && [ "$(sha256sum "$T/r1/model.sqz")" = "$before" ] && [ -s "$T/r1/manifest.json" ] \
    && pass resume_other_threads || fail resume_other_threads "ran again: '$ran'"

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
# the calibration came from the cache: its record still carries the time it took to compute
if command -v python3 >/dev/null; then
    python3 - "$T/r3/manifest.json" <<'PY' && pass cached_step_timed || fail cached_step_timed "no wall_s on the cached calibration"
import json, sys
s = {x["step"]: x for x in json.load(open(sys.argv[1]))["steps"]}
c = s["stage1-calibrate"]
sys.exit(0 if c["status"] == "cached" and c["wall_s"] > 0 and c["peak_rss_kib"] > 0 else 1)
PY
else skip cached_step_timed "python3 not installed"; fi

# ----- Ctrl-C (SIGINT) during a calibration: nothing complete in the run or the cache -----
rm -f "$T/slowbin/squish-quantize"; ln -s "$(cd "$BIN" && pwd)/squish-quantize" "$T/slowbin/"
rm "$T/slowbin/squish-calibrate"
printf '#!/bin/sh\nexec sleep 60\n' > "$T/slowbin/squish-calibrate"; chmod +x "$T/slowbin/squish-calibrate"
SQUISH_BIN="$T/slowbin" "$SQ" recipe run "$T/gptq.yaml" -o "$T/r5" -t 1 >/dev/null 2>"$T/r5.err" &
pid=$!
for i in $(seq 1 200); do [ -e "$T/r5/logs/stage1-calibrate.log" ] && break; sleep 0.1; done
sleep 0.3
kill -INT $pid; wait $pid; rc=$?
calibs=$(ls "$T/r5/.cache" | grep -c '^calib-.*\.h5$')
[ $rc = 130 ] && [ "$calibs" = 0 ] && [ ! -e "$T/r5/manifest.json" ] && [ ! -e "$T/r5/stage1-quantize.h5" ] \
    && pass sigint_nothing_complete || fail sigint_nothing_complete "exit $rc, $calibs calib files: $(ls "$T/r5" "$T/r5/.cache")"
"$SQ" recipe run "$T/gptq.yaml" -o "$T/r5" -t 1 >/dev/null 2>"$T/r5b.err" || fail rerun_sigint "$(tail -n 2 "$T/r5b.err")"
grep -qE '^  convert +cached' "$T/r5b.err" && grep -qE '^  stage1-calibrate .* \.\.\.$' "$T/r5b.err" \
    && cmp -s "$T/r1/model.sqz" "$T/r5/model.sqz" && pass resume_after_sigint \
    || fail resume_after_sigint "$(head -n 6 "$T/r5b.err")"

# ----- stages in order: prune (FFN channels), then quantize with targets, ignore and overrides -----
cat > "$T/ps.yaml" <<'YAML'
version: 1
name: ps
model: hf
calibration: {data: data.txt, samples: 8, seq_len: 64, seed: 0}
stages:
  - prune: {method: magnitude, pattern: ffn, sparsity: 0.25}
  - quantize:
      method: gptq
      bits: 4
      group: 64
      targets: ['re:model\.layers\.\d+\.(self_attn|mlp)\.']
      ignore: [model.layers.1.self_attn.o_proj]
      overrides:
        - {match: 're:model\.layers\.1\.mlp\.down_proj$', bits: 8, group: row}
        - {match: model.layers.0.self_attn.q_proj, keep: true}
        - {match: model.layers.1.self_attn.k_proj, dtype: f16}
evaluation: {decode_tokens: 0}
YAML
if "$SQ" recipe run "$T/ps.yaml" -o "$T/r6" -t 1 -q >/dev/null 2>"$T/r6.err"; then pass run_two_stages; else fail run_two_stages "$(tail -n 3 "$T/r6.err")"; fi
if command -v python3 >/dev/null; then
    out=$(python3 - "$T/r6" <<'PY' 2>&1
import json, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
names = [x["step"] for x in m["steps"]]
assert names == ["convert", "stage1-prune", "stage2-calibrate", "stage2-quantize", "export"], names
cmd = {x["step"]: x["command"] for x in m["steps"]}
assert "squish-prune .cache/base-" in cmd["stage1-prune"] and "--pattern ffn" in cmd["stage1-prune"], cmd["stage1-prune"]
assert "squish-calibrate stage1-prune.h5 " in cmd["stage2-calibrate"], cmd["stage2-calibrate"]
assert "squish-quantize stage1-prune.h5 " in cmd["stage2-quantize"], cmd["stage2-quantize"]
plan = {e["name"].removesuffix(".weight"): e for e in json.load(open(d + "/stage2-quantize.json"))["plan"]}
dp = plan["model.layers.1.mlp.down_proj"]
assert dp["quantize"] and dp["bits"] == 8 and dp["group_size"] == 0 and dp["reason"].startswith("override"), dp
q0 = plan["model.layers.0.self_attn.q_proj"]
assert not q0["quantize"] and q0["reason"].startswith("override"), q0
k1 = plan["model.layers.1.self_attn.k_proj"]
assert not k1["quantize"] and k1["reason"].startswith("override"), k1
assert "--override model.layers.1.self_attn.k_proj=f16 " in cmd["stage2-quantize"], cmd["stage2-quantize"]
o1 = plan["model.layers.1.self_attn.o_proj"]
assert not o1["quantize"] and o1["reason"].startswith("ignored"), o1
g = plan["model.layers.0.mlp.gate_proj"]
assert g["quantize"] and g["bits"] == 4, g
assert "--group 64 " in cmd["stage2-quantize"], cmd["stage2-quantize"]
PY
    ) && pass stages_order_overrides || fail stages_order_overrides "$out"
else skip stages_order_overrides "python3 not installed"; fi

# ----- every recipe in recipes/ is valid and says when to use it -----
n=0
for y in "$(dirname "$0")"/../recipes/*.yaml; do
    if out=$("$SQ" recipe validate "$y" 2>&1) && grep -q '^# When to use:' "$y"; then n=$((n + 1))
    else fail "recipe_$(basename "$y")" "$out"; fi
done
[ $n -ge 8 ] && pass recipes_valid || fail recipes_valid "only $n valid recipes"

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
# a baseline measured on another text gates nothing, which is a failure, not a silent pass
printf '{"texts": [{"path": "other.txt", "text_sha256": "%064d", "ppl": 1.5}]}\n' 0 > "$T/other.json"
out=$("$SQ" recipe check "$T/gptq.yaml" --run "$T/r1" --baseline "$T/other.json" --max-ppl-increase 1% \
      --junit "$T/c3.xml" 2>&1); rc=$?
[ $rc = 3 ] && printf '%s' "$out" | grep -q "no baseline entry for this text" \
    && printf '%s' "$out" | grep -q "result: FAIL (no gate could be applied" && grep -q 'failures="1"' "$T/c3.xml" \
    && pass check_other_text || fail check_other_text "exit $rc: $out"

# ----- compare two recipes -----
"$SQ" recipe run "$T/rtn8.yaml" -o "$T/r4" -q >/dev/null 2>"$T/r4.err" || fail run_rtn8 "$(tail -n 2 "$T/r4.err")"
out=$("$SQ" recipe compare "$T/r1" "$T/r4" -o "$T/cmp" 2>/dev/null); rc=$?
if [ $rc = 0 ] && printf '%s\n' "$out" | grep -q '^| recipe | bpw | file bytes | PPL | ΔPPL | KLD | same top-1 | decode tok/s | compress s | Pareto |$' \
    && printf '%s\n' "$out" | grep -qE '^\| gptq \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| [-+][0-9.]+ % \| [0-9.]+ \|' \
    && printf '%s\n' "$out" | grep -qE '^\| rtn8 \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \|'
then pass compare_table; else fail compare_table "exit $rc: $out"; fi
[ "$(grep -c '<circle' "$T/cmp.svg" 2>/dev/null)" = 2 ] && grep -q '"runs"' "$T/cmp.json" && [ -s "$T/cmp.md" ] \
    && pass compare_outputs || fail compare_outputs "svg/json/md missing"
# a PNG when a converter works, and never a partial one
if [ -e "$T/cmp.png" ]; then
    [ "$(head -c 4 "$T/cmp.png" | tail -c 3)" = PNG ] && pass compare_png || fail compare_png "cmp.png is not a PNG"
else skip compare_png "no working SVG converter (rsvg-convert or ImageMagick)"; fi
ls "$T"/cmp.png.* >/dev/null 2>&1 && fail compare_png_tmp "$(ls "$T"/cmp.png.*)" || pass compare_png_tmp
# the 8-bit file is larger than the 4-bit one (table bytes from the files themselves)
b1=$(stat -c %s "$T/r1/model.sqz"); b4=$(stat -c %s "$T/r4/model.sqz")
printf '%s\n' "$out" | grep -q "| gptq | [0-9.]* | $b1 |" && printf '%s\n' "$out" | grep -q "| rtn8 | [0-9.]* | $b4 |" \
    && [ "$b4" -gt "$b1" ] && pass compare_sizes || fail compare_sizes "$b1 $b4"

# -o into directories that do not exist yet: made (runs are reused, so this is quick)
"$SQ" recipe compare "$T/r1" "$T/r4" -o "$T/new/sub/cmp" >/dev/null 2>&1 && [ -s "$T/new/sub/cmp.md" ] \
    && pass compare_makes_dir || fail compare_makes_dir "no $T/new/sub/cmp.md"
# and where one cannot be made, it fails before running anything, naming the directory
: > "$T/afile"
out=$("$SQ" recipe compare "$T/rtn8.yaml" -o "$T/afile/x/cmp" 2>&1); rc=$?
[ $rc != 0 ] && printf '%s' "$out" | grep -q "afile" && ! printf '%s' "$out" | grep -q "recipe run" \
    && pass compare_bad_dir || fail compare_bad_dir "exit $rc: $out"

# ----- schema error from the command line -----
printf 'version: 1\nmodel: hf\nstages:\n  - quantize: {method: rtn, bits: 7}\n' > "$T/bad.yaml"
expect_fail schema_error "bad.yaml:4:35: stages\[0\].quantize.bits: expected one of 8, 6, 5, 4, 3, got 7" \
    "$SQ" recipe run "$T/bad.yaml" -o "$T/rb"
[ ! -e "$T/rb" ] && pass schema_error_no_dir || fail schema_error_no_dir "created $T/rb"
# outputs.act_int8 with no runnable file to put it on is an error, not silently ignored
printf 'version: 1\nname: a8\nmodel: hf\nstages:\n  - quantize: {method: rtn, bits: 4}\nevaluation: {decode_tokens: 0}\noutputs: {runnable: false, act_int8: true}\n' > "$T/a8none.yaml"
expect_fail act8_without_runnable "a8none.yaml:7:.*outputs.act_int8: no runnable file is made" "$SQ" recipe validate "$T/a8none.yaml"

finish
