// gguf_diff.mjs: compare the tensors of two GGUF files by name: type, shape, and the stored bytes block by block;
// for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 also the largest difference of the dequantized values.
// Use: check that squish's quantized GGUF export writes the same blocks as llama.cpp's reference quantizer
// (`llama-quantize --pure IN.gguf OUT.gguf Q4_0`, see bench/llamacpp_npm.sh), or how far apart they are.
// Format: GGUF v2/v3 (ggml docs/gguf.md, ../shared/docs/FORMATS.md §6); block layouts of ggml-common.h
// (block_q4_0 = f16 d + 16 bytes of nibbles, block_q4_1 = f16 d, f16 m + nibbles, block_q5_0 = f16 d + u32 high
// bits + nibbles, block_q5_1 = f16 d, f16 m + u32 + nibbles, block_q8_0 = f16 d + 32 int8).
//
// usage: node bench/gguf_diff.mjs A.gguf B.gguf [--all]     (--all: one line per tensor, not only differing ones)
// exit status: 0 all tensors identical, 1 some differ or the tensor sets differ, 2 unreadable input.
import fs from "node:fs";

function fail(file, msg) {
    process.stderr.write(`gguf_diff: ${file}: ${msg}\n`);
    process.exit(2);
}

// ggml type id -> [name, elements per block, bytes per block]
const TYPES = new Map([
    [0, ["F32", 1, 4]], [1, ["F16", 1, 2]], [2, ["Q4_0", 32, 18]], [3, ["Q4_1", 32, 20]], [6, ["Q5_0", 32, 22]],
    [7, ["Q5_1", 32, 24]], [8, ["Q8_0", 32, 34]], [9, ["Q8_1", 32, 36]], [10, ["Q2_K", 256, 84]],
    [11, ["Q3_K", 256, 110]], [12, ["Q4_K", 256, 144]], [13, ["Q5_K", 256, 176]], [14, ["Q6_K", 256, 210]],
    [15, ["Q8_K", 256, 292]], [30, ["BF16", 1, 2]],
]);

function readGguf(file) {
    let buf;
    try {
        buf = fs.readFileSync(file);
    } catch (e) {
        fail(file, e.message);
    }
    let p = 0;
    const need = (n) => {
        if (n < 0 || p + n > buf.length) fail(file, `truncated at byte ${p} (needs ${n} more)`);
    };
    const u32 = () => { need(4); const v = buf.readUInt32LE(p); p += 4; return v; };
    const u64 = () => {
        need(8);
        const v = buf.readBigUInt64LE(p);
        p += 8;
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(file, `64-bit value ${v} too large at byte ${p - 8}`);
        return Number(v);
    };
    const str = () => {
        const n = u64();
        need(n);
        const s = buf.toString("utf8", p, p + n);
        p += n;
        return s;
    };
    const SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8};
    const skipValue = (t, depth) => {
        if (t === 8) { str(); return undefined; }
        if (t === 9) {
            if (depth > 4) fail(file, "arrays nested too deep");
            const et = u32(), n = u64();
            if (et in SIZES) { need(n * SIZES[et]); p += n * SIZES[et]; return undefined; }
            for (let i = 0; i < n; i++) skipValue(et, depth + 1);
            return undefined;
        }
        if (!(t in SIZES)) fail(file, `unknown metadata value type ${t} at byte ${p}`);
        need(SIZES[t]);
        const v = t === 4 ? buf.readUInt32LE(p) : undefined;
        p += SIZES[t];
        return v;
    };
    need(8);
    if (buf.toString("latin1", 0, 4) !== "GGUF") fail(file, "not a GGUF file (bad magic)");
    p = 4;
    const version = u32();
    if (version !== 2 && version !== 3) fail(file, `GGUF version ${version} not supported (2 and 3 are)`);
    const nTensors = u64(), nKv = u64();
    let alignment = 32;
    for (let i = 0; i < nKv; i++) {
        const key = str();
        const t = u32();
        const v = skipValue(t, 0);
        if (key === "general.alignment") {
            if (t !== 4 || !(v > 0) || (v & (v - 1)) !== 0) fail(file, "general.alignment is not a power-of-two u32");
            alignment = v;
        }
    }
    const tensors = new Map();
    for (let i = 0; i < nTensors; i++) {
        const name = str();
        const nd = u32();
        if (nd > 4) fail(file, `tensor '${name}': ${nd} dimensions`);
        const ne = [];
        for (let d = 0; d < nd; d++) ne.push(u64());
        const type = u32(), offset = u64();
        const ti = TYPES.get(type);
        if (!ti) fail(file, `tensor '${name}': ggml type ${type} not known to this script`);
        const n = ne.reduce((a, b) => a * b, 1);
        if (!Number.isSafeInteger(n) || n % ti[1] !== 0 || (ne.length > 0 && ne[0] % ti[1] !== 0))
            fail(file, `tensor '${name}': shape [${ne}] does not fit ${ti[0]} blocks of ${ti[1]}`);
        if (tensors.has(name)) fail(file, `tensor '${name}' appears twice`);
        tensors.set(name, {name, ne, type, tname: ti[0], blk: ti[1], bsz: ti[2], n, offset, bytes: (n / ti[1]) * ti[2]});
    }
    const dataStart = Math.ceil(p / alignment) * alignment;
    for (const t of tensors.values()) {
        const start = dataStart + t.offset;
        if (start + t.bytes > buf.length) fail(file, `tensor '${t.name}': data runs past the end of the file`);
        t.data = buf.subarray(start, start + t.bytes);
    }
    return tensors;
}

function f16(h) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e === 0) return s * m * 2 ** -24;
    if (e === 31) return m ? NaN : s * Infinity;
    return s * (1 + m / 1024) * 2 ** (e - 15);
}

// dequantize block b of tensor t into out[0..blk): returns false for types without a decoder here
function dequant(t, b, out) {
    const d = t.data, o = b * t.bsz;
    switch (t.tname) {
    case "F32": out[0] = d.readFloatLE(o); return true;
    case "F16": out[0] = f16(d.readUInt16LE(o)); return true;
    case "BF16": { const x = Buffer.alloc(4); x.writeUInt16LE(d.readUInt16LE(o), 2); out[0] = x.readFloatLE(0); return true; }
    case "Q8_0": { const s = f16(d.readUInt16LE(o)); for (let i = 0; i < 32; i++) out[i] = s * d.readInt8(o + 2 + i); return true; }
    case "Q4_0": case "Q4_1": case "Q5_0": case "Q5_1": {
        const hasMin = t.tname.endsWith("_1"), five = t.tname.startsWith("Q5");
        const s = f16(d.readUInt16LE(o)), mn = hasMin ? f16(d.readUInt16LE(o + 2)) : 0;
        let q = o + (hasMin ? 4 : 2);
        const qh = five ? d.readUInt32LE(q) : 0;
        if (five) q += 4;
        for (let j = 0; j < 16; j++) {
            let lo = d[q + j] & 0x0f, hi = d[q + j] >> 4;
            if (five) { lo |= ((qh >>> j) & 1) << 4; hi |= ((qh >>> (j + 16)) & 1) << 4; }
            const off = hasMin ? 0 : (five ? 16 : 8);
            out[j] = s * (lo - off) + mn;
            out[j + 16] = s * (hi - off) + mn;
        }
        return true;
    }
    default: return false;
    }
}

const argv = process.argv.slice(2);
const all = argv.includes("--all");
const files = argv.filter((a) => a !== "--all");
if (files.length !== 2) {
    process.stderr.write("usage: node bench/gguf_diff.mjs A.gguf B.gguf [--all]\n");
    process.exit(2);
}
const A = readGguf(files[0]), B = readGguf(files[1]);
let same = 0, differ = 0, missing = 0;
function decodeAll(t) {
    const out = new Float64Array(t.n), blk = new Float64Array(256);
    for (let k = 0; k < t.n / t.blk; k++) {
        if (!dequant(t, k, blk)) return null;
        out.set(blk.subarray(0, t.blk), k * t.blk);
    }
    return out;
}

// max |a − b|, RMS(a − b) / RMS(b) over the dequantized values of two tensors of one shape
function valueDiff(a, b) {
    const va = decodeAll(a), vb = decodeAll(b);
    if (!va || !vb) return "";
    let mx = 0, se = 0, sr = 0;
    for (let i = 0; i < va.length; i++) {
        const e = va[i] - vb[i];
        mx = Math.max(mx, Math.abs(e));
        se += e * e;
        sr += vb[i] * vb[i];
    }
    const rel = sr > 0 ? Math.sqrt(se / sr) : 0;
    return `; dequantized: max |A − B| ${mx.toExponential(3)}, RMS(A − B)/RMS(B) ${rel.toExponential(3)}`;
}

for (const [name, a] of A) {
    const b = B.get(name);
    if (!b) { console.log(`${name}: only in ${files[0]}`); missing++; continue; }
    if (a.ne.join() !== b.ne.join()) {
        console.log(`${name}: shape [${a.ne}] vs [${b.ne}]`);
        differ++;
        continue;
    }
    if (a.type !== b.type) {
        console.log(`${name}: ${a.tname} vs ${b.tname} [${a.ne}]${valueDiff(a, b)}`);
        differ++;
        continue;
    }
    const nb = a.n / a.blk;
    let blocks = 0, first = -1;
    for (let k = 0; k < nb; k++) {
        const o = k * a.bsz;
        if (a.data.compare(b.data, o, o + a.bsz, o, o + a.bsz) === 0) continue;
        blocks++;
        if (first < 0) first = k;
    }
    if (blocks === 0) {
        same++;
        if (all) console.log(`${name}: ${a.tname} [${a.ne}] identical`);
        continue;
    }
    differ++;
    console.log(`${name}: ${a.tname} [${a.ne}] ${blocks}/${nb} blocks differ (first: block ${first})${valueDiff(a, b)}`);
}
for (const name of B.keys()) if (!A.has(name)) { console.log(`${name}: only in ${files[1]}`); missing++; }
console.log(`${same} tensors identical, ${differ} differ, ${missing} in one file only`);
process.exit(differ || missing ? 1 : 0);
