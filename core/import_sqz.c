/* import_sqz.c - a runnable file (.sqz, docs/sqz-format.md) back into a checkpoint, so
 * anything squish can run can also be stored, inspected or exported to GGUF
 * (`squish-convert export model.sqz -o model.gguf`). The file is fully validated by the
 * runtime's reader (checksum included); tensors are copied out of the mapping. Sparse
 * matrices (docs/sparse-format.md) come back dense in their value type, bit for bit;
 * a sparse row that is not in canonical form is refused. */
#include <stdlib.h>
#include <string.h>

#include "../runtime/sqz.h"
#include "checkpoint.h"
#include "checkpoint_internal.h"
#include "util.h"

sq_status sq_import_sqz(const char *path, sq_checkpoint *out) {
    memset(out, 0, sizeof *out);
    sq_sqz *f = NULL;
    sq_status st = sq_sqz_open(&f, path, true);
    if (st) return st;
    out->cfg = *sq_sqz_config(f);
    if ((st = sq_vocab_copy(&out->vocab, sq_sqz_vocab(f)))) goto fail;
    const char *fmt = sq_sqz_meta(f, "provenance.source_format");
    if (!(out->source_format = sq_strdup(fmt ? fmt : "squish-runnable"))) goto oom;
    for (int32_t i = 0; i < sq_sqz_n_tensors(f); i++) {
        const sq_tensor *src = sq_sqz_tensor(f, i);
        sq_tensor t = *src;
        if (sq_type_is_sparse(src->type)) {
            if ((st = sq_tensor_densify(src, &t))) {
                sq_error_prefix(path);
                goto fail;
            }
            if ((st = sq_checkpoint_add(out, &t))) {
                sq_tensor_release(&t);
                goto fail;
            }
            continue;
        }
        t.name = sq_strdup(src->name);
        t.data = sq_alloc_aligned(src->nbytes);
        t.owns_data = true;
        if (!t.name || !t.data) {
            free(t.name);
            free(t.data);
            goto oom;
        }
        memcpy(t.data, src->data, src->nbytes);
        if ((st = sq_checkpoint_add(out, &t))) {
            sq_tensor_release(&t);
            goto fail;
        }
    }
    if ((st = sq_checkpoint_add_source(out, path))) goto fail;
    sq_sqz_close(f);
    return sq_checkpoint_validate(out, path);
oom:
    st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
fail:
    sq_sqz_close(f);
    sq_checkpoint_free(out);
    return st;
}
