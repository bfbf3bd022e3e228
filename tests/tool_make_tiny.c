/* tool_make_tiny.c - writes a tiny random-weight checkpoint for the CLI tests:
 *   tool_make_tiny hf DIR        Hugging Face directory (safetensors F32, tokenizer.model)
 *   tool_make_tiny hf-bpe DIR    the same with a byte-level BPE tokenizer.json (and F16 weights)
 *   tool_make_tiny hf-sharded DIR  the hf checkpoint in 3 shards + model.safetensors.index.json
 *   tool_make_tiny llama2c DIR   llama2.c v0 DIR/model.bin + DIR/tokenizer.bin
 *   tool_make_tiny store-notok DIR   DIR/model.h5, a model store without a tokenizer (no
 *                                squish tool writes one; a damaged store can read as one)
 */
#include "tinymodel.h"

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "hf") && strcmp(argv[1], "hf-bpe") && strcmp(argv[1], "hf-sharded") &&
                      strcmp(argv[1], "llama2c") &&
                      strcmp(argv[1], "store-notok"))) {
        fprintf(stderr, "usage: tool_make_tiny hf|hf-bpe|hf-sharded|llama2c|store-notok DIR\n");
        return 1;
    }
    sq_tiny_spec s = sq_tiny_spec_default();
    if (!strcmp(argv[1], "hf-bpe")) {
        s.bpe = true;
        s.type = SQ_TYPE_F16;
    }
    sq_checkpoint c;
    sq_status st = sq_tiny_checkpoint(&s, &c);
    if (!st) st = sq_tiny_mkdir(argv[2]);
    if (!st) {
        if (!strcmp(argv[1], "store-notok")) {
            char *p = sq_path_join(argv[2], "model.h5");
            sq_vocab_free(&c.vocab);
            st = p ? sq_store_write(p, &c) : SQ_ERR_OOM;
            free(p);
        } else if (strcmp(argv[1], "llama2c")) {
            st = sq_tiny_write_hf(&c, argv[2], strcmp(argv[1], "hf-sharded") ? 0 : 3);
        } else {
            char *p = sq_path_join(argv[2], "model.bin");
            st = p ? sq_tiny_write_llama2c(&c, p, 0) : SQ_ERR_OOM;
            free(p);
        }
    }
    sq_checkpoint_free(&c);
    if (st) {
        fprintf(stderr, "tool_make_tiny: %s\n", sq_last_error());
        return 2;
    }
    printf("%s\n", argv[2]);
    return 0;
}
