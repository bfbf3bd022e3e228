/* safetensors.h - hostile-input-safe reader (and a small writer for tests and export) of
 * the safetensors format (huggingface/safetensors, FORMATS.md 1): 8-byte header length,
 * JSON header, data buffer. The reader mmaps the file, parses the header with cJSON,
 * rejects duplicate keys, unknown dtypes, overflowing or out-of-range offsets, sizes that
 * do not match the shape, and buffers that are not tiled exactly.
 */
#ifndef SQ_SAFETENSORS_H
#define SQ_SAFETENSORS_H

#include <stdint.h>

#include "../runtime/types.h"

typedef struct sq_safetensors sq_safetensors;

/* Dtypes squish reads as weights. Other valid safetensors dtypes are reported as
 * SQ_ERR_UNSUPPORTED with the tensor name. */
sq_status sq_safetensors_open(sq_safetensors **out, const char *path);
void sq_safetensors_close(sq_safetensors *f); /* NULL-safe */

int32_t sq_safetensors_count(const sq_safetensors *f);
/* Tensor i in file order: name, type, shape; data points into the mapping (possibly
 * unaligned: copy with memcpy), owns_data is false. */
const sq_tensor *sq_safetensors_get(const sq_safetensors *f, int32_t i);
const sq_tensor *sq_safetensors_find(const sq_safetensors *f, const char *name);
/* The value of a "__metadata__" key, or NULL. */
const char *sq_safetensors_meta(const sq_safetensors *f, const char *key);

/* Writes tensors (F32/F16/BF16) atomically in the given order with an 8-aligned header.
 * metadata may be NULL or {key, value, key, value, ..., NULL}. */
sq_status sq_safetensors_write(const char *path, const sq_tensor *tensors, int32_t n,
                               const char *const *metadata);

#endif
