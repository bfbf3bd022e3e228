/* import.c - sq_import_any: decides what a model path is and hands it to the right
 * importer. A directory is a Hugging Face model; a *.safetensors file stands for the
 * Hugging Face directory it sits in; a file with the HDF5 signature is a squish model
 * store; GGUF and squish runnable files are recognised by their magic; anything else must
 * look like a llama2.c checkpoint (the v1/v2 magic, or a v0
 * header of plausible sizes), otherwise it is refused with a list of what is accepted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "util.h"

/* The file starts with the n bytes of magic. */
static bool has_magic(const char *path, const char *magic, size_t n) {
    char b[16];
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    size_t got = fread(b, 1, n, fp);
    fclose(fp);
    return got == n && memcmp(b, magic, n) == 0;
}

/* A llama2.c magic, or seven int32s that make a sane v0 header (vocab may be negative). */
static bool looks_like_llama2c(const char *path) {
    uint8_t b[28];
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    size_t n = fread(b, 1, sizeof b, fp);
    fclose(fp);
    if (n < 8) return false;
    int32_t v[7];
    memcpy(v, b, n < 28 ? 8 : 28); /* host is little-endian, as the format */
    if ((uint32_t)v[0] == 0x616b3432u) return true;
    if (n < 28) return false;
    const int32_t big = 1 << 24;
    for (int i = 0; i < 7; i++) {
        int32_t x = (i == 5 && v[i] < 0 && v[i] != INT32_MIN) ? -v[i] : v[i];
        if (x <= 0 || x > big) return false;
    }
    return v[0] % v[3] == 0 && v[3] % v[4] == 0;
}

sq_status sq_import_any(const char *src, const char *tokenizer_path, sq_checkpoint *out) {
    sq_status st;
    memset(out, 0, sizeof *out);
    if (sq_is_dir(src)) return sq_import_hf(src, out);
    if (!sq_file_exists(src)) return sq_errorf(SQ_ERR_IO, "%s: no such file or directory", src);
    if (sq_str_ends_with(src, ".safetensors")) {
        char *dir = sq_path_dirname(src);
        if (!dir) return sq_errorf(SQ_ERR_OOM, "%s: out of memory", src);
        st = sq_import_hf(dir, out);
        free(dir);
        return st;
    }
    if (sq_str_ends_with(src, ".gguf") || has_magic(src, "GGUF", 4)) return sq_import_gguf(src, out);
    if (has_magic(src, "SQUISHRF", 8)) return sq_import_sqz(src, out);
    if (sq_store_is_hdf5(src)) {
        if ((st = sq_store_read(src, out)) != SQ_OK) return st;
        if (!out->source_format && !(out->source_format = sq_strdup("squish-store"))) {
            sq_checkpoint_free(out);
            return sq_errorf(SQ_ERR_OOM, "%s: out of memory", src);
        }
        return SQ_OK;
    }
    if (looks_like_llama2c(src)) return sq_import_llama2c(src, tokenizer_path, out);
    return sq_errorf(SQ_ERR_FORMAT,
                     "%s: not a recognized model (expected a Hugging Face directory, a .safetensors file inside one, "
                     "a GGUF file, a squish .h5 store or .sqz runnable file, or a llama2.c .bin)",
                     src);
}
