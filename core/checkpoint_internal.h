/* checkpoint_internal.h - helpers shared by core/checkpoint.c, the importers and the store
 * (not part of the public API). The tensor list a config implies is sq_config_tensors
 * (runtime/model.h).
 */
#ifndef SQ_CHECKPOINT_INTERNAL_H
#define SQ_CHECKPOINT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/model.h"
#include "checkpoint.h"

/* Tensors importers drop silently (e.g. "*.rotary_emb.inv_freq" buffers). */
bool sq_tensor_name_ignorable(const char *name);

/* A 64-byte-aligned buffer of at least nbytes (a non-NULL pointer even for 0), released
 * with free(); NULL on overflow or OOM. */
void *sq_alloc_aligned(size_t nbytes);

/* A key that appears twice in a JSON object or any object nested in it (cJSON keeps
 * duplicates), or NULL; *oom is set when the check could not run. (core/safetensors.c) */
struct cJSON;
const char *sq_json_duplicate_key(const struct cJSON *obj, bool *oom);

/* "[a, b]" into buf. */
const char *sq_shape_str(char *buf, size_t cap, int32_t n_dims, const int64_t *shape);

#endif
