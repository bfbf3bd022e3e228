/* fileio.c - read-only mmap of whole files and atomic (temp + fsync + rename) writes. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* An empty file maps to this (never NULL: readers compute data + size before checking it). */
static const uint8_t empty_file[1];

sq_status sq_map_file(const char *path, sq_mapping *m) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sq_errorf(SQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sq_errorf(SQ_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return sq_errorf(SQ_ERR_IO, "%s: is a directory, not a file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return sq_errorf(SQ_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
        m->data = p;
        m->size = (uint64_t)st.st_size;
    } else {
        m->data = empty_file;
    }
    close(fd);
    return SQ_OK;
}

void sq_unmap_file(sq_mapping *m) {
    if (!m || !m->data) return;
    if (m->data != empty_file) munmap((void *)m->data, (size_t)m->size);
    m->data = NULL;
    m->size = 0;
}

sq_status sq_read_file(const char *path, size_t max_bytes, char **data, size_t *len) {
    sq_status st = SQ_OK;
    char *buf = NULL;
    *data = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sq_errorf(SQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        st = sq_errorf(SQ_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = sq_errorf(SQ_ERR_IO, "%s: is a directory, not a file", path);
        goto fail;
    }
    /* regular files are read in one go; pipes and devices grow the buffer as they come */
    size_t cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 65536, n = 0;
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > (uint64_t)max_bytes) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: file is %lld bytes, more than the %zu allowed", path,
                       (long long)sb.st_size, max_bytes);
        goto fail;
    }
    for (;;) {
        char *nb = realloc(buf, cap);
        if (!nb) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory reading %zu bytes", path, cap);
            goto fail;
        }
        buf = nb;
        n += fread(buf + n, 1, cap - 1 - n, fp);
        if (ferror(fp)) {
            st = sq_errorf(SQ_ERR_IO, "%s: read error", path);
            goto fail;
        }
        if (n < cap - 1 || feof(fp)) break;
        if (n >= max_bytes) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: more than the %zu bytes allowed", path, max_bytes);
            goto fail;
        }
        cap *= 2;
    }
    buf[n] = '\0';
    *data = buf;
    buf = NULL;
    if (len) *len = n;
fail:
    free(buf);
    fclose(fp);
    return st;
}

char *sq_atomic_tmp_name(const char *path) {
    size_t n = strlen(path) + 32;
    char *t = malloc(n);
    if (t) snprintf(t, n, "%s.tmp.%ld", path, (long)getpid());
    return t;
}

sq_status sq_atomic_rename(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return sq_errorf(SQ_ERR_IO, "%s: cannot rename temp file into place: %s", path, strerror(e));
    }
    return SQ_OK;
}

sq_status sq_atomic_open(sq_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->tmp_path = sq_atomic_tmp_name(path);
    size_t n = strlen(path) + 1;
    f->final_path = malloc(n);
    if (!f->tmp_path || !f->final_path) {
        sq_atomic_abort(f);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory", path);
    }
    memcpy(f->final_path, path, n);
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        int e = errno;
        free(f->tmp_path);
        free(f->final_path);
        memset(f, 0, sizeof *f);
        return sq_errorf(SQ_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    return SQ_OK;
}

sq_status sq_atomic_write(sq_atomic_file *f, const void *data, size_t len) {
    if (len && fwrite(data, 1, len, f->fp) != len)
        return sq_errorf(SQ_ERR_IO, "%s: write failed: %s", f->final_path, strerror(errno));
    return SQ_OK;
}

sq_status sq_atomic_commit(sq_atomic_file *f) {
    sq_status st = SQ_OK;
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        st = sq_errorf(SQ_ERR_IO, "%s: cannot flush: %s", f->final_path, strerror(errno));
    if (fclose(f->fp) != 0 && st == SQ_OK)
        st = sq_errorf(SQ_ERR_IO, "%s: cannot close: %s", f->final_path, strerror(errno));
    f->fp = NULL;
    if (st == SQ_OK && rename(f->tmp_path, f->final_path) != 0)
        st = sq_errorf(SQ_ERR_IO, "%s: cannot rename temp file into place: %s", f->final_path, strerror(errno));
    if (st != SQ_OK) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->final_path);
    memset(f, 0, sizeof *f);
    return st;
}

void sq_atomic_abort(sq_atomic_file *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->final_path);
    memset(f, 0, sizeof *f);
}
