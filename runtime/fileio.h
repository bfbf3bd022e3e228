/* fileio.h - the file plumbing shared by every reader and writer: read-only mmap with the
 * file size, and atomic replacement (write "<path>.tmp.<pid>", fsync, rename) so that an
 * interrupted write never leaves a file that looks complete. */
#ifndef SQ_FILEIO_H
#define SQ_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

typedef struct {
    const uint8_t *data; /* never NULL once mapped (an empty file maps to a static byte) */
    uint64_t size;
} sq_mapping;

/* Maps a whole file read-only. Errors name the path. */
sq_status sq_map_file(const char *path, sq_mapping *m);
void sq_unmap_file(sq_mapping *m); /* NULL-safe, idempotent */

/* Reads a whole file (or pipe) into a NUL-terminated malloc'ed buffer; max_bytes caps the
 * size. Errors name the path. */
sq_status sq_read_file(const char *path, size_t max_bytes, char **data, size_t *len);

/* An output file being written atomically. */
typedef struct {
    FILE *fp;
    char *tmp_path;   /* owned */
    char *final_path; /* owned */
} sq_atomic_file;

/* Opens "<path>.tmp.<pid>" for writing. */
sq_status sq_atomic_open(sq_atomic_file *f, const char *path);
/* Writes len bytes (errors name the final path). */
sq_status sq_atomic_write(sq_atomic_file *f, const void *data, size_t len);
/* Flushes, fsyncs, closes and renames over the final path. */
sq_status sq_atomic_commit(sq_atomic_file *f);
/* Closes and deletes the temp file (NULL-safe, safe after commit). */
void sq_atomic_abort(sq_atomic_file *f);
/* For writers that produce the temp file by other means (HDF5): the temp name for path,
 * malloc'ed, and the rename step (fsyncs the file first). */
char *sq_atomic_tmp_name(const char *path);
sq_status sq_atomic_rename(const char *tmp, const char *path);

#endif
