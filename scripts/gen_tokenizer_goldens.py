#!/usr/bin/python3
"""gen_tokenizer_goldens.py - writes tests/fixtures/spm_goldens.txt, the golden token ids
that tests/test_tokenizer.c compares squish's SentencePiece encoder against.

References:
  * gutenberg-7m tokenizer.model and the Llama-2 tokenizer.model: google/sentencepiece
    itself (Debian's python3-sentencepiece), encode without BOS, and its decode.
  * tests/fixtures/spm_nobf.model: a 300-piece BPE model trained here by sentencepiece on
    the first 200 KB of data/tinystories/calib.txt, with the options the shared models do
    not exercise: no byte fallback (unknown characters become <unk>), removal of extra
    whitespace, user-defined symbols "<tag>" and "ta". The model file is committed so
    that its test runs without the shared folder.
  * stories260K tok512.bin (llama2.c; no .model exists): an independent re-implementation
    of llama2.c run.c encode() below, quadratic and literal (code-point lookup, byte
    fallback id = byte + 3, then repeatedly merge the best-scoring adjacent pair, ties to
    the left, scores must beat -1e10). It is cross-checked here against sentencepiece on
    the Llama-2 tokenizer.bin, which was exported from the Llama-2 tokenizer.model.

The fixture is plain text so the C test needs no JSON parser:
  text NAME HEX             a case: the UTF-8 text as hex
  file NAME RELPATH NBYTES  a case: the first NBYTES of a file under the shared folder
  ids MODEL N ID...         expected ids (no BOS) for the case above
  dec MODEL HEX             expected decode(ids) (sentencepiece), as hex
Run from anywhere: /usr/bin/python3 scripts/gen_tokenizer_goldens.py [SHARED_DIR]
"""
import os
import struct
import sys

import sentencepiece as spm

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SQUISH_SHARED", os.path.join(ROOT, "..", "shared"))
OUT = os.path.join(ROOT, "tests", "fixtures", "spm_goldens.txt")
NOBF = os.path.join(ROOT, "tests", "fixtures", "spm_nobf")

CASES = [
    ("prompt", "Once upon a time"),
    ("hello", "Hello world"),
    ("empty", ""),
    ("single_char", "a"),
    ("one_space", " "),
    ("five_spaces", "     "),
    ("leading_space", " leading space"),
    ("two_leading", "  two leading spaces"),
    ("trailing_space", "trailing space "),
    ("inner_spaces", "multiple    spaces   inside"),
    ("newlines", "line one\nline two\n\nline four\n"),
    ("lone_newline", "\n"),
    ("crlf", "Mixed\r\nCRLF\r\nendings"),
    ("tabs", "tabs\tand\t\ttabs \t mixed"),
    ("digits", "digits 0123456789 and 3.14159, 1,000,000 in 2024"),
    ("punct", "Punctuation!?.,;:'\"()[]{}<>-_/\\|@#$%^&*~`"),
    ("contractions", "can't won't it's we're they've I'm you'll he'd"),
    ("latin", "Unicode Latin: caf\u00e9 na\u00efve fa\u00e7ade ma\u00f1ana \u00fcber stra\u00dfe \u00c6\u00d8\u00c5"),
    ("cyrillic", "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442: \u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!"),
    ("chinese", "\u4e2d\u6587\u6d4b\u8bd5\uff1a\u4f60\u597d\uff0c\u4e16\u754c\u3002"),
    ("japanese", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8"),
    ("korean", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8"),
    ("greek_hebrew_arabic", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629"),
    ("devanagari", "\u0939\u093f\u0928\u094d\u0926\u0940 \u092a\u093e\u0920"),
    ("emoji", "Emoji: \U0001F600\U0001F389\U0001F44D\U0001F3FD and \u2764\ufe0f!"),
    ("special_literals", "<s> literal </s> and <unk> and <0x41>"),
    ("spm_space_char", "\u2581already\u2581has\u2581spm\u2581spaces"),
    ("zero_width_nbsp", "zero\u200bwidth and nbsp\u00a0here"),
    ("pangram", "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!"),
    ("repeat", "ab" * 150),
    ("dialogue", "\"Where are you going?\" asked Tom.\n\"Home,\" said Lily. \"It's late.\""),
    ("nul_byte", "nul\x00byte"),
]

FILES = [
    ("gutenberg_eval_20k", "data/gutenberg/eval.txt", 20000, ["gutenberg", "llama2"]),
    ("tinystories_eval_3k", "data/tinystories/eval.txt", 3000, ["tok512"]),
]


# ----- llama2.c encode(), re-implemented literally (karpathy/llama2.c run.c) -----

def read_llama2c(path, n_tokens):
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<I", data, 0)
    off = 4
    vocab, scores = [], []
    for _ in range(n_tokens):
        score, ln = struct.unpack_from("<fi", data, off)
        off += 8
        vocab.append(data[off:off + ln])
        scores.append(score)
        off += ln
    lookup = {}
    for i, piece in enumerate(vocab):
        lookup.setdefault(piece, i)
    return vocab, scores, lookup


def llama2c_encode(tok, text):
    vocab, scores, lookup = tok
    b = text.encode("utf-8")
    tokens = []
    if b:
        tokens.append(lookup[b" "])  # the dummy prefix
    i = 0
    while i < len(b):
        j = i + 1  # a lead byte plus up to 3 continuation bytes, as run.c collects them
        while j < len(b) and (b[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        ch = b[i:j]
        if ch in lookup:
            tokens.append(lookup[ch])
        else:
            tokens.extend(x + 3 for x in ch)
        i = j
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for k in range(len(tokens) - 1):
            merged = vocab[tokens[k]] + vocab[tokens[k + 1]]
            mid = lookup.get(merged, -1)
            if mid != -1 and scores[mid] > best_score:
                best_score, best_id, best_idx = scores[mid], mid, k
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def main():
    sample = open(os.path.join(SHARED, "data/tinystories/calib.txt"), "rb").read()[:200000]
    train_txt = NOBF + ".train.txt"
    with open(train_txt, "wb") as f:
        f.write(sample)
    spm.SentencePieceTrainer.train(input=train_txt, model_prefix=NOBF, model_type="bpe", vocab_size=300,
                                   byte_fallback=False, remove_extra_whitespaces=True,
                                   normalization_rule_name="identity", user_defined_symbols=["<tag>", "ta"],
                                   num_threads=1, minloglevel=2)
    os.remove(train_txt)
    os.remove(NOBF + ".vocab")
    nobf = spm.SentencePieceProcessor(model_file=NOBF + ".model")
    gut = spm.SentencePieceProcessor(model_file=os.path.join(SHARED, "models/gutenberg-7m/tokenizer.model"))
    l2 = spm.SentencePieceProcessor(model_file=os.path.join(SHARED, "models/llama2-tokenizer/tokenizer.model"))
    l2c = read_llama2c(os.path.join(SHARED, "models/llama2-tokenizer/tokenizer.bin"), 32000)
    t512 = read_llama2c(os.path.join(SHARED, "models/stories260K/tok512.bin"), 512)

    lines = ["# GENERATED by scripts/gen_tokenizer_goldens.py; do not edit.",
             "# sentencepiece %s (gutenberg, llama2); tok512: Python re-implementation of llama2.c encode()"
             % spm.__version__]

    def ids_line(model, ids):
        return "ids %s %d %s" % (model, len(ids), " ".join(str(x) for x in ids))

    checked = 0
    for name, text in CASES:
        lines.append("text %s %s" % (name, text.encode("utf-8").hex()))
        for model, sp in (("gutenberg", gut), ("llama2", l2), ("nobf", nobf)):
            ids = sp.encode(text)
            lines.append(ids_line(model, ids))
            lines.append("dec %s %s" % (model, sp.decode(ids).encode("utf-8").hex()))
        if "\u2581" in text:
            # llama2.c keeps a literal U+2581 as an ordinary character (its vocabulary
            # stores spaces), while sentencepiece (and squish, which converts tokenizer.bin
            # to SentencePiece form) treats it as a space: no llama2.c golden here.
            continue
        # cross-check the llama2.c re-implementation against sentencepiece (Llama-2)
        ref = l2.encode(text)
        mine = llama2c_encode(l2c, text)
        if mine != ref:
            sys.exit("llama2.c re-implementation disagrees with sentencepiece on %r:\n%s\n%s" % (name, mine, ref))
        checked += 1
        lines.append(ids_line("tok512", llama2c_encode(t512, text)))

    for name, rel, nbytes, models in FILES:
        raw = open(os.path.join(SHARED, rel), "rb").read()[:nbytes]
        text = raw.decode("utf-8")  # both prefixes end on a character boundary (checked here)
        lines.append("file %s %s %d" % (name, rel, nbytes))
        for model in models:
            if model == "tok512":
                ids = llama2c_encode(t512, text)
            else:
                sp = gut if model == "gutenberg" else l2
                ids = sp.encode(text)
                lines.append(ids_line(model, ids))
                lines.append("dec %s %s" % (model, sp.decode(ids).encode("utf-8").hex()))
                if model == "llama2":
                    ids2 = llama2c_encode(l2c, text[:2000])
                    if ids2 != l2.encode(text[:2000]):
                        sys.exit("llama2.c re-implementation disagrees with sentencepiece on %s" % name)
                continue
            lines.append(ids_line(model, ids))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d cases; llama2.c re-implementation matched sentencepiece on all %d strings"
          % (OUT, len(CASES) + len(FILES), checked))


if __name__ == "__main__":
    main()
