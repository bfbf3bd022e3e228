// llamacpp_ppl.mjs: perplexity of a GGUF computed by llama.cpp itself (the prebuilt library shipped in the npm
// packages node-llama-cpp + @node-llama-cpp/linux-x64), in the llama-perplexity protocol that squish-eval's
// `--protocol llamacpp` also implements (../shared/docs/FORMATS.md §9.2, docs/eval.md):
//   tokenize the whole text once with llama.cpp's tokenizer, BOS first; n = min(⌊tokens/ctx⌋, --chunks) windows of
//   ctx tokens; per window: fresh KV cache, first token replaced by BOS, positions ctx/2 .. ctx-2 scored against the
//   next token; PPL = exp(Σ NLL / count) ± PPL·sqrt((E[nll²] − E[nll]²)/(count − 1)).
// The forward pass, the tokenizer and the logits are llama.cpp's; this file only runs the protocol: it asks for the
// full-vocabulary logits of every scored position and takes a max-subtracted log-softmax in double.
//
// usage: node bench/llamacpp_ppl.mjs MODEL.gguf --text FILE [--ctx 256] [--chunks K] [-t 1] [--json OUT]
//        [--kv f16|f32] [--fa auto|on|off]   (KV cache type, flash attention; default f16, off)
//        [--logits full|weight]   full (default): every scored position returns all n_vocab logits and the
//                                 log-softmax is taken here in double; weight: llama.cpp's binding returns only the
//                                 target's logit, the max logit and Σ exp(logit − max) (summed in float in the
//                                 binding), several times faster for large vocabularies
//        [--tokens-out FILE]   (write the evaluated token ids, one per line, for cross-checks)
// node-llama-cpp is imported from $LLAMACPP_NPM_DIR (default /work/llamacpp-npm), see bench/llamacpp_npm.sh.
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

function die(msg) {
    process.stderr.write(`llamacpp_ppl: ${msg}\n`);
    process.exit(1);
}

function parseArgs(argv) {
    const a = {model: null, text: null, ctx: 256, chunks: 0, threads: 1, json: null, tokensOut: null, kv: "F16", fa: "off", mode: "full"};
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) die(`${k} needs a value`);
            return argv[++i];
        };
        const int = (name) => {
            const s = val();
            if (!/^[0-9]+$/.test(s)) die(`${name}: not a non-negative integer: '${s}'`);
            return Number(s);
        };
        if (k === "--text") a.text = val();
        else if (k === "--ctx" || k === "-c") a.ctx = int("--ctx");
        else if (k === "--chunks") a.chunks = int("--chunks");
        else if (k === "-t" || k === "--threads") a.threads = int("-t");
        else if (k === "--json") a.json = val();
        else if (k === "--tokens-out") a.tokensOut = val();
        else if (k === "--kv") a.kv = val().toUpperCase();
        else if (k === "--fa") a.fa = val();
        else if (k === "--logits") a.mode = val();
        else if (k.startsWith("-")) die(`unknown option '${k}'`);
        else if (a.model === null) a.model = k;
        else die(`unexpected argument '${k}'`);
    }
    if (a.model === null || a.text === null) die("usage: llamacpp_ppl.mjs MODEL.gguf --text FILE [--ctx N] [--chunks K] [-t N] [--json OUT]");
    if (a.ctx < 4 || a.ctx % 2 !== 0) die(`--ctx must be an even number >= 4 (got ${a.ctx})`);
    if (a.threads < 1) die("-t must be >= 1");
    if (a.kv !== "F16" && a.kv !== "F32") die(`--kv must be f16 or f32 (got '${a.kv}')`);
    if (a.mode !== "full" && a.mode !== "weight") die(`--logits must be full or weight (got '${a.mode}')`);
    if (a.fa !== "auto" && a.fa !== "on" && a.fa !== "off") die(`--fa must be auto, on or off (got '${a.fa}')`);
    return a;
}

const args = parseArgs(process.argv.slice(2));
const npmDir = process.env.LLAMACPP_NPM_DIR || "/work/llamacpp-npm";
const entry = path.join(npmDir, "node_modules", "node-llama-cpp", "dist", "index.js");
if (!fs.existsSync(entry)) die(`${entry}: not found; run 'bash bench/llamacpp_npm.sh install' first`);
for (const f of [args.model, args.text])
    if (!fs.existsSync(f)) die(`${f}: no such file`);

const nlc = await import(pathToFileURL(entry).href);
const pkg = JSON.parse(fs.readFileSync(path.join(npmDir, "node_modules", "node-llama-cpp", "package.json"), "utf8"));
// build: "never" = use the prebuilt binary from the npm package, never compile or download anything.
const llama = await nlc.getLlama({gpu: false, build: "never", logLevel: nlc.LlamaLogLevel.error});

let model;
try {
    model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
} catch (e) {
    die(`${args.model}: llama.cpp could not load it: ${e.message}`);
}
const bos = model.tokens.bos;
if (bos == null) die(`${args.model}: the model has no BOS token; the llama.cpp protocol needs one`);

const text = fs.readFileSync(args.text, "utf8");
const t0 = process.hrtime.bigint();
// llama-perplexity tokenizes with add_special = true, i.e. BOS first, then the text (SentencePiece adds its
// dummy-prefix space itself); node-llama-cpp's tokenize() adds no BOS, so it is prepended here.
const body = model.tokenize(text, false);
const tokens = Int32Array.from([bos, ...body]);
const nTok = tokens.length;
const ctxLen = args.ctx;
let nWin = Math.floor(nTok / ctxLen);
if (nWin < 1) die(`${args.text}: ${nTok} tokens, fewer than one window of ${ctxLen}`);
if (args.chunks > 0 && args.chunks < nWin) nWin = args.chunks;
if (args.tokensOut) fs.writeFileSync(args.tokensOut, Array.from(tokens.subarray(0, nWin * ctxLen)).join("\n") + "\n");

// KV cache type and flash attention. Default: F16 cache, flash attention off, as llama-perplexity ran in the build
// that ../shared/docs/PEERS.md pins; newer llama.cpp defaults to flash attention "auto" (on for this CPU backend),
// which moves the mean NLL in the 5th digit here.
const context = await model.createContext({
    contextSize: ctxLen, batchSize: ctxLen, threads: args.threads, sequences: 1,
    experimentalKvCacheKeyType: args.kv, experimentalKvCacheValueType: args.kv,
    flashAttention: args.fa === "auto" ? "auto" : args.fa === "on",
});
const seq = context.getSequence();
const first = ctxLen / 2;

let sumNll = 0, sumNll2 = 0, count = 0, vocabSeen = 0;
for (let w = 0; w < nWin; w++) {
    await seq.clearHistory();
    const win = Array.from(tokens.subarray(w * ctxLen, (w + 1) * ctxLen));
    win[0] = bos;
    const want = (i) => args.mode === "full" ? {logits: true}
        : {logits: {filter: {tokens: [win[i + 1]], includeTop: 1}}, totalLogitWeight: true};
    const input = win.map((t, i) => (i >= first && i <= ctxLen - 2) ? [t, {generateNext: want(i)}] : t);
    const out = await seq.controlledEvaluate(input);
    for (let i = first; i <= ctxLen - 2; i++) {
        const next = out[i]?.next;
        const logits = next?.logits;
        if (!logits) die(`window ${w}: llama.cpp returned no logits for position ${i}`);
        const target = logits.get(win[i + 1]);
        if (target === undefined) die(`window ${w}: no logit for token ${win[i + 1]}`);
        let mx = -Infinity, s = 0;
        for (const v of logits.values()) if (v > mx) mx = v;
        if (args.mode === "full") {
            if (vocabSeen === 0) vocabSeen = logits.size;
            else if (logits.size !== vocabSeen) die(`window ${w}: logits for ${logits.size} tokens, expected ${vocabSeen}`);
            for (const v of logits.values()) s += Math.exp(v - mx);
        } else {
            // includeTop: 1 puts the maximum logit in the map (includeMax does not add it in 3.22.1); totalLogitWeight = Σ exp(logit − max) over the vocabulary
            s = next.totalLogitWeight;
            if (!(s >= 1)) die(`window ${w}: bad total logit weight ${s} at position ${i}`);
        }
        const nll = -(target - mx - Math.log(s));
        sumNll += nll;
        sumNll2 += nll * nll;
        count++;
    }
    if ((w + 1) % 100 === 0 || w + 1 === nWin)
        process.stderr.write(`[${w + 1}/${nWin}] ppl ${Math.exp(sumNll / count).toFixed(4)}\n`);
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const mean = sumNll / count;
const ppl = Math.exp(mean);
const variance = sumNll2 / count - mean * mean;
const err = count > 1 && variance > 0 ? ppl * Math.sqrt(variance / (count - 1)) : 0;
const res = {
    engine: `llama.cpp via node-llama-cpp ${pkg.version} (prebuilt, ${llama.buildType})`,
    model: args.model, text: args.text, protocol: "llamacpp", ctx: ctxLen, windows: nWin, scored: count,
    text_tokens: nTok, n_vocab: vocabSeen || null, logits_mode: args.mode, threads: args.threads, kv_cache: args.kv, flash_attention: args.fa, ppl, ppl_err: err, mean_nll: mean, seconds: secs,
    first_tokens: Array.from(tokens.subarray(0, 16)),
};
console.log(`ppl = ${ppl.toFixed(4)} ± ${err.toFixed(4)} mean_nll=${mean.toFixed(9)} (llama.cpp via node-llama-cpp ${pkg.version}, protocol=llamacpp, ` +
    `ctx=${ctxLen}, windows=${nWin}, scored=${count}, text_tokens=${nTok}, logits=${args.mode}, kv=${args.kv}, fa=${args.fa}, threads=${args.threads}, ` +
    `${secs.toFixed(1)} s)`);
if (args.json) {
    const tmp = `${args.json}.tmp${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(res, null, 2) + "\n");
    fs.renameSync(tmp, args.json);
}
await context.dispose();
await model.dispose();
await llama.dispose();
