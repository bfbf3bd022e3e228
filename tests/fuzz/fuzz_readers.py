#!/usr/bin/env python3
"""fuzz_readers.py - mutation fuzzer for every squish reader (tests/fuzz/README.md).

Builds small valid seed files with the tools of a build (tiny Hugging Face directories,
llama2.c checkpoints, .sqz, GGUF, HDF5 stores, calib.h5, saved base logits, recipes),
applies seeded mutations (bit flips, bytes set to 0x00/0xFF/0x7F/0x80, 16/32/64-bit fields
set to huge, negative or boundary values, truncation, removed/duplicated/inserted ranges, and
for text formats numbers replaced by extreme values; for HDF5 files also structural edits made
with the HDF5 API by h5mutate.c: attributes/datasets removed, retyped, reshaped), runs the reading tool on each mutant
with a timeout and flags:
  san      an AddressSanitizer / UBSan / LeakSanitizer report (san-hdf5: inside libhdf5)
  signal   death by a signal
  timeout  no exit within the time limit (a hang or a huge allocation)
  exit     an exit status other than 0 and 1
  accepted exit 0 on a corrupted file that must be refused (checksummed .sqz)
  message  a failure whose stderr is not one line naming the input file
  leftover an output (-o PATH or PATH.tmp.*) left behind after a failure
Every case is reproducible from (--seed, target, case number); flagged inputs are kept in
--keep DIR with the command and stderr. No paper or spec beyond the file formats
(docs/sqz-format.md, GGUF, safetensors, llama2.c) that the seeds come from.

  python3 tests/fuzz/fuzz_readers.py --build build-san --cases 200            # every target
  python3 tests/fuzz/fuzz_readers.py --build build-san --only gguf --cases 5000 --seed 7
"""
import argparse
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & M64, 31) * P1) & M64


def _merge(acc, v):
    return ((acc ^ _round(0, v)) * P1 + P4) & M64


def xxh64(data, seed=0):
    """XXH64 (the checksum of the .sqz header), to re-seal mutated runnable files."""
    n = len(data)
    i = 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        lanes = struct.unpack_from('<%dQ' % ((n // 32) * 4), data, 0)
        for k in range(0, len(lanes), 4):
            v[0] = _round(v[0], lanes[k])
            v[1] = _round(v[1], lanes[k + 1])
            v[2] = _round(v[2], lanes[k + 2])
            v[3] = _round(v[3], lanes[k + 3])
        i = (n // 32) * 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for x in v:
            h = _merge(h, x)
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= _round(0, struct.unpack_from('<Q', data, i)[0])
        h = (_rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from('<I', data, i)[0] * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return h


def sqz_fix(rnd, d, reseal):
    """Mostly sets the header's file size to the mutant's (so a truncated or grown file reaches the
    section checks) and, with reseal, recomputes the checksum so the structural checks are reached."""
    if len(d) >= 128 and rnd.random() < 0.8:
        struct.pack_into('<Q', d, 16, len(d))
    if reseal and len(d) >= 128:
        struct.pack_into('<Q', d, 120, xxh64(bytes(d[:120]) + bytes(d[128:])))
    return d


def kld_fix(rnd, d):
    """Re-seals a squish-eval base file: the XXH64 of everything before its 8-byte trailer."""
    if len(d) >= 16:
        struct.pack_into('<Q', d, len(d) - 8, xxh64(bytes(d[:-8])))
    return d


# ----- mutations -----

BOUNDARY = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, M64, M64 - 7, 1 << 40, 1 << 31]


def hot_offset(rnd, n, hot):
    """An offset, biased towards [0, hot) where the structure (headers, index) lives."""
    if n == 0:
        return 0
    if hot and rnd.random() < 0.8:
        return rnd.randrange(min(hot, n))
    return rnd.randrange(n)


def mutate_bytes(rnd, d, hot):
    n = len(d)
    op = rnd.randrange(10)
    if n == 0:
        return d + bytes([rnd.randrange(256)])
    at = hot_offset(rnd, n, hot)
    if op == 0:
        d[at] ^= 1 << rnd.randrange(8)
    elif op == 1:
        d[at] = rnd.choice([0x00, 0xFF, 0x7F, 0x80])
    elif op in (2, 3, 4):
        width = rnd.choice([2, 4, 8])
        if rnd.random() < 0.7:
            at -= at % width
        if at + width <= n:
            v = rnd.choice(BOUNDARY + [n, n + 1, n - at, rnd.getrandbits(width * 8)])
            if rnd.random() < 0.2:  # a small change of the existing value: +-1, doubled
                old = int.from_bytes(d[at:at + width], 'little')
                v = rnd.choice([old + 1, old - 1, old * 2, old + 64, old ^ (1 << rnd.randrange(width * 8))])
            d[at:at + width] = (v & ((1 << (width * 8)) - 1)).to_bytes(width, 'little')
    elif op == 5:
        del d[rnd.randrange(n):]
    elif op == 6:
        k = rnd.randrange(1, min(64, n - at) + 1)
        del d[at:at + k]
    elif op == 7:
        k = rnd.randrange(1, min(64, n - at) + 1)
        d[at:at] = d[at:at + k]
    elif op == 8:
        d[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9)))
    else:
        for _ in range(rnd.randrange(2, 6)):
            a = hot_offset(rnd, n, hot)
            d[a] = rnd.randrange(256)
    return d


NUMBERS = [b'0', b'-1', b'1', b'-2147483648', b'2147483647', b'2147483648', b'4294967296', b'1e308', b'-1e308',
           b'1e-320', b'99999999999999999999', b'0.5', b'NaN', b'nan', b'inf', b'-0', b'65536', b'3']
NUM_RE = re.compile(rb'-?\d+(\.\d+)?([eE][-+]?\d+)?')


def mutate_text(rnd, d, hot):
    """Number swaps, deleted/duplicated lines and structure characters, then byte mutations."""
    op = rnd.randrange(8)
    if op in (0, 1, 4, 5):
        nums = list(NUM_RE.finditer(d))
        if nums:
            m = rnd.choice(nums)
            d[m.start():m.end()] = rnd.choice(NUMBERS)
            return d
    if op == 2:
        lines = bytes(d).split(b'\n')
        i = rnd.randrange(len(lines))
        if rnd.random() < 0.5:
            del lines[i]
        else:
            lines.insert(i, lines[rnd.randrange(len(lines))])
        return bytearray(b'\n'.join(lines))
    if op == 3 and len(d):
        at = rnd.randrange(len(d))
        d[at:at] = rnd.choice([b'{', b'}', b'[', b']', b'"', b',', b':', b'\\', b'\\u', b'\xff', b'\x00', b'- ',
                               b'&a ', b'*a', b'!!binary ', b'null', b'\n  '])
        return d
    return mutate_bytes(rnd, d, hot)


def mutate_safetensors(rnd, data):
    """Mostly edits the JSON header as text (numbers in shapes and data_offsets, structure) and
    rewrites its length prefix to match, so the header parses and the offsets/shapes get checked."""
    n = struct.unpack_from('<Q', data)[0]
    if n > len(data) - 8 or rnd.random() < 0.25:
        return mutate(rnd, data, 8 + n, False, None)
    h = bytearray(data[8:8 + n])
    for _ in range(1 if rnd.random() < 0.6 else rnd.randrange(2, 4)):
        op = rnd.randrange(4)
        nums = list(NUM_RE.finditer(h))
        if op < 3 and nums:
            m = rnd.choice(nums)
            v = rnd.choice(NUMBERS + [b'%d' % (int(m.group()) + rnd.choice([-1, 1, 2, 64]))
                                      if m.group().lstrip(b'-').isdigit() else b'0'])
            h[m.start():m.end()] = v
        else:
            h = mutate_text(rnd, h, 0)
    return struct.pack('<Q', len(h)) + bytes(h) + data[8 + n:]


def mutate(rnd, data, hot, text, fix):
    if text == 'safetensors':
        return mutate_safetensors(rnd, data)
    d = bytearray(data)
    for _ in range(1 if rnd.random() < 0.6 else rnd.randrange(2, 5)):
        d = mutate_text(rnd, d, hot) if text else mutate_bytes(rnd, d, hot)
    if fix:
        d = fix(rnd, d)
    return bytes(d)


# ----- seeds -----

def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        sys.exit('fuzz_readers: seed command failed: %s\n%s' % (' '.join(cmd), r.stderr.decode(errors='replace')))
    return r


def make_seeds(bin_dir, tools_dir, S, shared):
    B = lambda t: os.path.join(bin_dir, t)
    run([os.path.join(tools_dir, 'tool_make_tiny'), 'hf', S + '/hf'])
    run([os.path.join(tools_dir, 'tool_make_tiny'), 'hf-bpe', S + '/bpe'])
    run([os.path.join(tools_dir, 'tool_make_tiny'), 'llama2c', S + '/l2c'])
    run([os.path.join(tools_dir, 'tool_make_tiny'), 'hf-sharded', S + '/shard'])
    with open(S + '/data.jsonl', 'w') as f:
        for k in range(3):
            f.write('{"id": %d, "text": "%s"}\n' % (k, ' '.join(['the cat sat on the mat'] * (4 + k))))
    with open(S + '/text.txt', 'w') as f:
        for _ in range(12):
            f.write('the cat sat on the mat and the dog ran to the park with a ball\n')
    run([B('squish-convert'), 'import', S + '/hf', '-o', S + '/m.h5'])
    run([B('squish-convert'), 'export', S + '/m.h5', '-o', S + '/m.sqz', '--dtype', 'f16'])
    run([B('squish-convert'), 'export', S + '/m.h5', '-o', S + '/m.gguf', '--dtype', 'f16'])
    run([B('squish-quantize'), S + '/m.h5', '-o', S + '/q.h5', '--method', 'rtn', '--bits', '4', '--group', '32',
         '--asym', '-q'])
    run([B('squish-convert'), 'export', S + '/q.h5', '-o', S + '/q.sqz'])
    run([B('squish-prune'), S + '/m.h5', '-o', S + '/p.h5', '--method', 'magnitude', '--pattern', '2:4', '-q'])
    run([B('squish-convert'), 'export', S + '/p.h5', '-o', S + '/p.sqz'])  # 2:4 sparse matrices
    run([B('squish-calibrate'), S + '/m.h5', '--data', S + '/text.txt', '--samples', '2', '--seq-len', '16',
         '-o', S + '/cal.h5', '-q'])
    run([B('squish-eval'), S + '/m.sqz', '--text', S + '/text.txt', '--ctx', '32', '--top-k', '4',
         '--save-logits', S + '/base.kld', '--json', S + '/eval.json', '-q'])
    with open(S + '/recipe.yaml', 'w') as f:
        f.write('version: 1\nname: fuzz\nmodel: %s/hf\nstages:\n  - prune:\n      method: magnitude\n'
                '      sparsity: 0.5\n      pattern: "2:4"\n  - quantize:\n      method: rtn\n      bits: 4\n'
                '      group: 32\n      symmetric: false\ncalibration:\n  data: %s/text.txt\n  samples: 2\n'
                '  seq_len: 16\nevaluation:\n  texts:\n    - {path: "%s/text.txt", protocol: llamacpp, ctx: 32,'
                ' chunks: 2}\n  kld: true\ngates:\n  max_ppl_increase: 5%%\n  max_kld: 0.5\noutputs:\n'
                '  runnable: true\n  store: true\n' % (S, S, S))
    stories = os.path.join(shared, 'models/stories260K')
    if os.path.isdir(stories):
        os.makedirs(S + '/s260', exist_ok=True)
        shutil.copy(stories + '/stories260K.bin', S + '/s260/model.bin')
        shutil.copy(stories + '/tok512.bin', S + '/s260/tokenizer.bin')


def build_h5mutate(top):
    """Compiles tests/fuzz/h5mutate.c (structural HDF5 mutations) into the work directory."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'h5mutate.c')
    exe = os.path.join(top, 'h5mutate')
    try:
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'hdf5'], stdout=subprocess.PIPE,
                               check=True).stdout.decode().split()
        subprocess.run(['cc', '-std=c11', '-O1', '-D_DEFAULT_SOURCE', src, '-o', exe] + flags + ['-lm'], check=True)
    except (OSError, subprocess.CalledProcessError):
        print('fuzz_readers: cannot build h5mutate; the h5s-* targets are skipped')
        return None
    return exe


def sqz_hot(path):
    d = open(path, 'rb').read(64)
    return struct.unpack_from('<Q', d, 56)[0]


def gguf_hot(path):
    # the tensor data starts after the last tensor-info entry: the seeds are small, so the
    # metadata lives in the first few kilobytes; aim there
    return 12000


SQZ_SIZE = lambda rnd, d: sqz_fix(rnd, d, False)
SQZ_RESEAL = lambda rnd, d: sqz_fix(rnd, d, True)

# A target: the file mutated (relative to the seed dir; a directory seed is copied whole),
# the command ({F} the mutant, {D} its directory copy, {O} an output path, {S} the seeds),
# whether any change must be refused, how to find the hot region, text or binary, and a fix-up
# applied after mutating (file size, checksums) so the checks behind those are reached.
TARGETS = {
    'sqz-info': dict(file='m.sqz', cmd=['squish-convert', 'info', '{F}'], strict=True),
    'sqz-run': dict(file='m.sqz', cmd=['squish-run', '{F}', '--no-verify', '-p', 'the cat', '-n', '4', '--temp', '0',
                                       '-q', '-t', '1'], hot=sqz_hot, fix=SQZ_SIZE),
    'sqz-eval': dict(file='m.sqz', cmd=['squish-eval', '{F}', '--no-verify', '--text', '{S}/text.txt', '--ctx', '16',
                                        '--chunks', '2', '-q', '-t', '1'], hot=sqz_hot, fix=SQZ_SIZE),
    'sqz-import': dict(file='m.sqz', cmd=['squish-convert', 'import', '{F}', '-o', '{O}.h5'], hot=sqz_hot,
                       fix=SQZ_RESEAL, out='{O}.h5'),
    'sqzq-run': dict(file='q.sqz', cmd=['squish-run', '{F}', '--no-verify', '-p', 'the cat', '-n', '4', '--temp', '0',
                                        '-q', '-t', '1'], hot=sqz_hot, fix=SQZ_SIZE),
    'sqzq-import': dict(file='q.sqz', cmd=['squish-convert', 'import', '{F}', '-o', '{O}.h5'], hot=sqz_hot,
                        fix=SQZ_RESEAL, out='{O}.h5'),
    'sqzp-run': dict(file='p.sqz', cmd=['squish-run', '{F}', '--no-verify', '-p', 'the cat', '-n', '4', '--temp', '0',
                                        '-q', '-t', '1'], hot=sqz_hot, fix=SQZ_SIZE),
    'sqzp-import': dict(file='p.sqz', cmd=['squish-convert', 'import', '{F}', '-o', '{O}.h5'], hot=sqz_hot,
                        fix=SQZ_RESEAL, out='{O}.h5'),
    'gguf-import': dict(file='m.gguf', cmd=['squish-convert', 'import', '{F}', '-o', '{O}.h5'], hot=gguf_hot,
                        out='{O}.h5'),
    'gguf-sqz': dict(file='m.gguf', cmd=['squish-convert', '{F}', '-o', '{O}.sqz'], hot=gguf_hot,
                     out='{O}.sqz'),
    'gguf-info': dict(file='m.gguf', cmd=['squish-convert', 'info', '{F}'], hot=gguf_hot),
    'safetensors': dict(dir='hf', file='model.safetensors', cmd=['squish-convert', '{D}', '-o', '{O}.sqz'],
                        text='safetensors', out='{O}.sqz'),
    'safetensors-bf16': dict(dir='bpe', file='model.safetensors', cmd=['squish-convert', 'import', '{D}', '-o',
                                                                       '{O}.h5'], text='safetensors', out='{O}.h5'),
    'hf-config': dict(dir='hf', file='config.json', cmd=['squish-convert', '{D}', '-o', '{O}.sqz'], text=True,
                      out='{O}.sqz'),
    'hf-tokcfg': dict(dir='bpe', file='tokenizer_config.json', cmd=['squish-convert', '{D}', '-o', '{O}.sqz'],
                      text=True, out='{O}.sqz'),
    'spm-model': dict(dir='hf', file='tokenizer.model', cmd=['squish-convert', '{D}', '-o', '{O}.sqz'],
                      out='{O}.sqz'),
    'tokenizer-json': dict(dir='bpe', file='tokenizer.json', cmd=['squish-convert', '{D}', '-o', '{O}.sqz'],
                           text=True, out='{O}.sqz'),
    'hf-shard-index': dict(dir='shard', file='model.safetensors.index.json', cmd=['squish-convert', '{D}', '-o',
                                                                              '{O}.sqz'], text=True, out='{O}.sqz'),
    'calib-jsonl': dict(file='data.jsonl', cmd=['squish-calibrate', '{S}/m.h5', '--data', '{F}', '--samples', '2',
                                                '--seq-len', '16', '-o', '{O}.h5', '-q', '-t', '1'], text=True,
                        out='{O}.h5'),
    'calib-text': dict(file='text.txt', cmd=['squish-calibrate', '{S}/m.h5', '--data', '{F}', '--samples', '2',
                                             '--seq-len', '16', '-o', '{O}.h5', '-q', '-t', '1'], out='{O}.h5'),
    'llama2c': dict(dir='l2c', file='model.bin', cmd=['squish-convert', '{F}', '-o', '{O}.sqz'], hot=lambda p: 64,
                    out='{O}.sqz'),
    'llama2c-tok': dict(dir='l2c', file='tokenizer.bin', cmd=['squish-convert', '{D}/model.bin', '-o', '{O}.sqz'],
                        out='{O}.sqz'),
    'stories-tok': dict(dir='s260', file='tokenizer.bin', cmd=['squish-convert', 'import', '{D}/model.bin', '-o',
                                                               '{O}.h5'], out='{O}.h5'),
    'h5-store': dict(file='m.h5', cmd=['squish-convert', 'export', '{F}', '-o', '{O}.sqz'], hot=lambda p: 8192,
                     out='{O}.sqz'),
    'h5-qstore': dict(file='q.h5', cmd=['squish-convert', 'export', '{F}', '-o', '{O}.sqz'], hot=lambda p: 8192,
                      out='{O}.sqz'),
    'h5-calib': dict(file='cal.h5', cmd=['squish-quantize', '{S}/m.h5', '--calib', '{F}', '-o', '{O}.h5', '--method',
                                         'gptq', '--bits', '4', '--group', '32', '-q', '-t', '1'], hot=lambda p: 8192,
                     out='{O}.h5'),
    # structural HDF5 mutations (tests/fuzz/h5mutate.c): the content libhdf5 reads but squish must check
    'h5s-store': dict(file='m.h5', cmd=['squish-convert', 'export', '{F}', '-o', '{O}.sqz'], h5=True, out='{O}.sqz'),
    'h5s-qstore': dict(file='q.h5', cmd=['squish-convert', 'export', '{F}', '-o', '{O}.sqz'], h5=True,
                       out='{O}.sqz'),
    'h5s-qstore-eval': dict(file='q.h5', cmd=['squish-eval', '{F}', '--text', '{S}/text.txt', '--ctx', '16',
                                              '--chunks', '2', '-q', '-t', '1'], h5=True),
    'h5s-pstore': dict(file='p.h5', cmd=['squish-convert', 'export', '{F}', '-o', '{O}.sqz'], h5=True,
                       out='{O}.sqz'),
    'h5s-quantize': dict(file='m.h5', cmd=['squish-quantize', '{F}', '-o', '{O}.h5', '--method', 'rtn', '--bits', '4',
                                           '--group', '32', '-q', '-t', '1'], h5=True, out='{O}.h5'),
    'h5s-calib': dict(file='cal.h5', cmd=['squish-quantize', '{S}/m.h5', '--calib', '{F}', '-o', '{O}.h5', '--method',
                                          'gptq', '--bits', '4', '--group', '32', '-q', '-t', '1'], h5=True,
                      out='{O}.h5'),
    'h5s-calib-prune': dict(file='cal.h5', cmd=['squish-prune', '{S}/m.h5', '--calib', '{F}', '-o', '{O}.h5',
                                                '--method', 'wanda', '--sparsity', '0.5', '--no-sequential', '-q',
                                                '-t', '1'], h5=True, out='{O}.h5'),
    'kld': dict(file='base.kld', cmd=['squish-eval', '{S}/m.sqz', '--kld', '{F}', '-q', '-t', '1'], hot=lambda p: 256,
                fix=kld_fix),
    'recipe': dict(file='recipe.yaml', cmd=['squish', 'recipe', 'validate', '{F}'], text=True),
    'eval-json': dict(file='eval.json', cmd=['squish', 'recipe', 'check', '{S}/recipe.yaml', '--baseline', '{F}',
                                             '--run', '{S}/run', '-q'], text=True, ok=(3,)),  # 3: a gate failed
}


SAN_RE = re.compile(rb'(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehavior)')


def classify(t, rc, err, mutant_name, dir_name, out_path, timed_out):
    flags = []
    if timed_out:
        return ['timeout']
    m = SAN_RE.search(err)
    if m:
        # a report whose top frames are inside libhdf5 is the library's (a corrupt file), not ours
        top = err[m.start():].split(b'\n    #4 ')[0]
        flags.append('san-hdf5' if b'libhdf5' in top else 'san')
    if rc < 0 or rc >= 128:
        flags.append('signal')
    elif rc not in (0, 1) + t.get('ok', ()) and not flags:
        flags.append('exit')
    if rc == 0 and t.get('strict'):
        flags.append('accepted')
    if rc not in (0,) + t.get('ok', ()) and not flags:
        # one error line naming the file; warnings may come before it
        lines = [l for l in err.decode(errors='replace').split('\n') if l.strip() and not l.startswith('warning: ')]
        names = [mutant_name] + ([dir_name] if dir_name else [])
        if len(lines) != 1 or not any(n in lines[0] for n in names):
            flags.append('message')
    if rc != 0 and out_path:
        d, b = os.path.split(out_path)
        if any(x == b or x.startswith(b + '.tmp') for x in os.listdir(d)):
            flags.append('leftover')
    return flags


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build-san', help='build directory (bin/ and tests/)')
    ap.add_argument('--shared', default=os.environ.get('SQUISH_SHARED', '../shared'))
    ap.add_argument('--cases', type=int, default=100, help='cases per target')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--timeout', type=float, default=20.0, help='seconds per case')
    ap.add_argument('--only', default='', help='comma-separated targets (default all): ' + ' '.join(TARGETS))
    ap.add_argument('--skip', default='', help='comma-separated targets to leave out')
    ap.add_argument('--keep', default='', help='directory for flagged inputs (default: not kept)')
    ap.add_argument('-v', '--verbose', action='store_true', help='print every case')
    ap.add_argument('--first', type=int, default=0, help='first case number (to replay one case: --first N --cases 1)')
    a = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(a.build, 'bin'))
    tools_dir = os.path.abspath(os.path.join(a.build, 'tests'))
    only = [x for x in a.only.split(',') if x] or list(TARGETS)
    skip = set(x for x in a.skip.split(',') if x)
    for x in only:
        if x not in TARGETS:
            sys.exit('fuzz_readers: unknown target %s' % x)
    env = dict(os.environ, OMP_NUM_THREADS='1', OMP_WAIT_POLICY='passive',
               ASAN_OPTIONS='detect_leaks=1:abort_on_error=0:allocator_may_return_null=1',
               UBSAN_OPTIONS='print_stacktrace=1')
    top = tempfile.mkdtemp(prefix='squish-fuzz-')
    total_flagged = 0
    try:
        S = top + '/seeds'
        os.makedirs(S)
        make_seeds(bin_dir, tools_dir, S, a.shared)
        h5mutate = build_h5mutate(top)
        W = top + '/work'
        for name in only:
            if name in skip:
                continue
            t = TARGETS[name]
            seed_dir = os.path.join(S, t['dir']) if 'dir' in t else None
            seed_file = os.path.join(seed_dir or S, t['file'])
            if not os.path.exists(seed_file):
                print('%-18s skipped (no seed: %s)' % (name, seed_file))
                continue
            data = open(seed_file, 'rb').read()
            hot = t['hot'](seed_file) if 'hot' in t else 0
            counts = {}
            t0 = time.time()
            for i in range(a.first - 1, a.first + a.cases):
                rnd = random.Random('%d:%s:%d' % (a.seed, name, i))
                # case first-1 runs the seed itself, which must pass (or the target tests nothing)
                m = data if i < a.first or t.get('h5') else mutate(rnd, data, hot, t.get('text', False),
                                                                      t.get('fix'))
                if m == data and i >= a.first and not t.get('h5'):
                    counts['same'] = counts.get('same', 0) + 1
                    continue
                shutil.rmtree(W, ignore_errors=True)
                os.makedirs(W)
                if seed_dir:
                    D = os.path.join(W, os.path.basename(seed_dir) + '-fz')
                    shutil.copytree(seed_dir, D)
                    F = os.path.join(D, t['file'])
                else:
                    D = W
                    F = os.path.join(W, 'fz-' + t['file'])
                if t.get('h5') and i >= a.first:
                    if not h5mutate:
                        break
                    r = subprocess.run([h5mutate, seed_file, F, str(a.seed * 1000003 + i)], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
                    what = r.stdout.decode(errors='replace').strip()
                    m = open(F, 'rb').read() if os.path.exists(F) else b''
                else:
                    what = ''
                    with open(F, 'wb') as f:
                        f.write(m)
                O = os.path.join(W, 'out')
                sub = lambda s: s.replace('{F}', F).replace('{D}', D).replace('{O}', O).replace('{S}', S)
                cmd = [os.path.join(bin_dir, t['cmd'][0])] + [sub(x) for x in t['cmd'][1:]]
                out_path = sub(t['out']) if 'out' in t else None
                timed_out = False
                try:
                    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=W,
                                       timeout=a.timeout)
                    rc, err = r.returncode, r.stderr
                except subprocess.TimeoutExpired as e:
                    rc, err, timed_out = -999, e.stderr or b'', True
                if i < a.first:
                    if rc not in (0,) + t.get('ok', ()):
                        print('%-18s SEED FAILS (exit %d): %s' % (name, rc, err.decode(errors='replace')[:300]))
                        total_flagged += 1
                        break
                    continue
                flags = classify(t, rc, err, os.path.basename(F), os.path.basename(D) if seed_dir else None, out_path,
                                 timed_out)
                counts['rc0' if rc == 0 else 'refused'] = counts.get('rc0' if rc == 0 else 'refused', 0) + 1
                for fl in flags:
                    counts[fl] = counts.get(fl, 0) + 1
                if a.verbose and not flags:
                    print('  %s case %d: %sexit %d: %s' % (name, i, what + ': ' if what else '', rc, err.decode(errors='replace').strip()[:200]))
                if flags:
                    total_flagged += 1
                    msg = err.decode(errors='replace').strip().split('\n')
                    print('  %s case %d: %s: %s%s' % (name, i, ','.join(flags), what + ': ' if what else '',
                                                        ' | '.join(msg[:3])[:300]), flush=True)
                    if a.keep:
                        kd = os.path.join(a.keep, '%s-%d' % (name, i))
                        os.makedirs(kd, exist_ok=True)
                        with open(os.path.join(kd, 'input-' + t['file']), 'wb') as f:
                            f.write(m)
                        with open(os.path.join(kd, 'report.txt'), 'wb') as f:
                            f.write(('flags: %s\nexit: %d\ncommand: %s\n\n' % (','.join(flags), rc, ' '.join(cmd)))
                                    .encode() + err)
            print('%-18s %4d cases %5.0fs  %s' % (name, a.cases, time.time() - t0,
                                                   ' '.join('%s=%d' % kv for kv in sorted(counts.items()))), flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print('flagged: %d' % total_flagged)
    return 1 if total_flagged else 0


if __name__ == '__main__':
    sys.exit(main())
