/* libfuzzer_readers.c - libFuzzer harnesses for the pure-C readers (tests/fuzz/README.md).
 *
 * One source, one binary per reader, chosen at compile time with -DFUZZ_<NAME>:
 *   sqz (runnable file, checksum off, then the model built on it), gguf (import),
 *   safetensors (header and offsets), llama2c (.bin; its header and body checks come
 *   before the tokenizer, which is given as a missing file), tokbin (llama2.c
 *   tokenizer.bin, 512 tokens), spm (tokenizer.model), hfjson (tokenizer.json), kld
 *   (squish-eval base logits).
 * Every input is written to a private file and opened by path, as the tools do; a
 * reader must return a status (never crash, leak or read out of bounds) and, on failure,
 * leave a one-line message naming the file. Built by `make fuzz` (clang, libFuzzer +
 * ASan/UBSan); not part of the default build. libFuzzer: https://llvm.org/docs/LibFuzzer.html
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/checkpoint.h"
#include "../../core/gguf.h"
#include "../../core/safetensors.h"
#include "../../eval/eval.h"
#include "../../runtime/model.h"
#include "../../runtime/sqz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];

static void check_message(sq_status st) {
    if (st == SQ_OK) return;
    const char *msg = sq_last_error();
    const char *base = strrchr(path, '/') + 1;
    if (!strstr(msg, base) || strchr(msg, '\n')) {
        fprintf(stderr, "bad error message (status %d): '%s'\n", (int)st, msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(path, sizeof path, "%s/sqfuzz-%d.in", dir, (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    sq_status st;
    sq_checkpoint c; /* the importers fill c, the vocabulary readers v; both freed below */
    sq_vocab v;
    memset(&c, 0, sizeof c);
    memset(&v, 0, sizeof v);
#if defined(FUZZ_SQZ)
    sq_model *m = NULL;
    st = sq_model_open(&m, path, false);
    sq_model_free(m);
#elif defined(FUZZ_GGUF)
    st = sq_import_gguf(path, &c);
#elif defined(FUZZ_SAFETENSORS)
    sq_safetensors *s = NULL;
    st = sq_safetensors_open(&s, path);
    sq_safetensors_close(s);
#elif defined(FUZZ_LLAMA2C)
    st = sq_import_llama2c(path, "/nonexistent-tokenizer.bin", &c);
    if (st && strstr(sq_last_error(), "nonexistent-tokenizer")) st = SQ_OK; /* got as far as the tokenizer */
#elif defined(FUZZ_TOKBIN)
    st = sq_vocab_read_llama2c(path, 512, &v);
#elif defined(FUZZ_SPM)
    st = sq_vocab_read_spm(path, &v);
#elif defined(FUZZ_HFJSON)
    st = sq_vocab_read_hf_json(path, NULL, &v);
#elif defined(FUZZ_KLD)
    sq_kld_base *b = NULL;
    st = sq_kld_base_open(&b, path);
    sq_kld_base_close(b);
#else
#error "define one of FUZZ_SQZ FUZZ_GGUF FUZZ_SAFETENSORS FUZZ_LLAMA2C FUZZ_TOKBIN FUZZ_SPM FUZZ_HFJSON FUZZ_KLD"
#endif
    sq_checkpoint_free(&c);
    sq_vocab_free(&v);
    check_message(st);
    unlink(path);
    return 0;
}
