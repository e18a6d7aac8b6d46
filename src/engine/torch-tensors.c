/* torch-tensors.c - pytorch_model.bin into the tensor table (tensors.h), the second weight format.
 *
 * The file is mapped read-only (use_mmap) or read into one 64-byte aligned block, and parsed by
 * torch-ckpt.c, which checks every tensor against its storage and every storage against the file.
 * A contiguous tensor is then just a byte range of the file, so its table entry points there: an
 * fp32 tensor whose bytes are 4-byte aligned (all of them in a ZIP checkpoint, whose entries
 * torch pads to 64 bytes) is used in place by weights.c, exactly like a safetensors tensor, and
 * fp16/bf16 ones are converted once there. A non-contiguous view (a transposed or strided
 * tensor) is gathered here once into a row-major owned block of the same dtype. Tensors sharing
 * a storage need nothing special: storages are read-only.
 */
#include "tensors.h"
#include "torch-ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct pt_storage {
    mp__pt_file f;      /* owns the tensor names */
    void *map;
    size_t map_size;
    void *buf;          /* the file read into memory, or NULL */
    void **blocks;      /* gathered non-contiguous tensors */
    size_t n_blocks;
} pt_storage;

static void pt_storage_free(void *p) {
    pt_storage *s = p;
    if (!s) return;
    mp__pt_close(&s->f);
    if (s->map) munmap(s->map, s->map_size);
    free(s->buf);
    for (size_t i = 0; i < s->n_blocks; i++) free(s->blocks[i]);
    free(s->blocks);
    free(s);
}

/* Map or read the file; *fd stays open (the caller closes it) so the parser can pread headers. */
static mp_status map_file(const char *f, int use_mmap, pt_storage *s, const uint8_t **bytes, size_t *size, int *fdp) {
    int fd = *fdp = open(f, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mp__fail(MP_ERR_IO, "%s: cannot open: %s", f, strerror(errno));
    mp_status st = MP_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mp__fail(MP_ERR_IO, "%s: not a regular file", f);
    } else if ((*size = (size_t)sb.st_size) == 0) {
        st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: empty file", f);
    } else if (use_mmap) {
        void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) st = mp__fail(MP_ERR_IO, "%s: mmap failed: %s", f, strerror(errno));
        else s->map = p, s->map_size = *size, *bytes = p;
    } else {
        size_t cap = (*size + 63) & ~(size_t)63, got = 0;
        uint8_t *b = aligned_alloc(64, cap);
        if (!b) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory reading %zu bytes", f, *size);
        while (b && got < *size) {
            ssize_t r = pread(fd, b + got, *size - got, (off_t)got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        s->buf = b;
        *bytes = b;
        if (b && got != *size) st = mp__fail(MP_ERR_IO, "%s: short read (%zu of %zu bytes)", f, got, *size);
    }
    return st;
}

/* Gather a strided view into a new row-major block of the same element size. */
static mp_status gather(const char *f, pt_storage *s, const mp__pt_tensor *pt, const uint8_t **out) {
    size_t es = mp__pt_dtype_size(pt->dtype);
    void **bl = realloc(s->blocks, (s->n_blocks + 1) * sizeof *bl);
    if (!bl) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", f);
    s->blocks = bl;
    uint8_t *dst = malloc(pt->numel * es);
    if (!dst) return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", f, pt->name);
    s->blocks[s->n_blocks++] = dst;
    int64_t idx[MP__PT_MAX_DIMS] = {0};
    size_t off = 0; /* elements from pt->data; every reachable one was checked by torch-ckpt.c */
    for (size_t i = 0; i < pt->numel; i++) {
        memcpy(dst + i * es, pt->data + off * es, es);
        for (int d = pt->ndim - 1; d >= 0; d--) {
            if (++idx[d] < pt->shape[d]) {
                off += (size_t)pt->stride[d];
                break;
            }
            off -= (size_t)(pt->stride[d] * (pt->shape[d] - 1));
            idx[d] = 0;
        }
    }
    *out = dst;
    return MP_OK;
}

static mp_status fill(mp__tensors *ts, pt_storage *s) {
    const char *f = ts->path;
    ts->t = calloc(s->f.n + 1, sizeof *ts->t);
    if (!ts->t) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", f);
    for (size_t i = 0; i < s->f.n; i++) {
        const mp__pt_tensor *pt = &s->f.t[i];
        if (pt->dtype != MP__PT_F32 && pt->dtype != MP__PT_F16 && pt->dtype != MP__PT_BF16)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: unsupported dtype %s (supported: F32, F16, BF16)", f,
                            pt->name, mp__pt_dtype_name(pt->dtype));
        mp__tensor *t = &ts->t[ts->n];
        t->name = pt->name;
        t->dtype = (mp__dtype)pt->dtype; /* same numbering for the three float types */
        t->ndim = pt->ndim;
        memcpy(t->shape, pt->shape, sizeof t->shape);
        t->numel = pt->numel;
        t->nbytes = pt->numel * mp__pt_dtype_size(pt->dtype);
        t->data = pt->data;
        if (!pt->contiguous) {
            mp_status st = gather(f, s, pt, &t->data);
            if (st != MP_OK) return st;
            mp__log(MP_LOG_DEBUG, "%s: tensor %s is a strided view: gathered into a copy", f, pt->name);
        }
        ts->n++;
    }
    return MP_OK;
}

mp_status mp__torch_open(const char *path, int use_mmap, mp__tensors **out) {
    *out = NULL;
    mp__tensors *ts = mp__tensors_new(path);
    pt_storage *s = calloc(1, sizeof *s);
    if (!ts || !s) {
        free(s);
        mp__tensors_free(ts);
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    }
    ts->impl = s;
    ts->impl_free = pt_storage_free;
    const uint8_t *bytes = NULL;
    size_t size = 0;
    int fd = -1;
    mp_status st = map_file(path, use_mmap, s, &bytes, &size, &fd);
    if (st == MP_OK) st = mp__pt_open_fd(path, bytes, size, s->map ? fd : -1, &s->f);
    if (fd >= 0) close(fd);
    if (st == MP_OK) st = fill(ts, s);
    if (st != MP_OK) {
        mp__tensors_free(ts);
        return st;
    }
    ts->map = s->map;
    ts->map_size = s->map_size;
    snprintf(ts->format, sizeof ts->format, "pytorch %s", s->f.legacy ? "legacy" : "zip");
    mp__log(MP_LOG_DEBUG, "%s: %s checkpoint, %zu tensors, %d of %d storages 64-byte aligned", path,
            s->f.legacy ? "legacy (pre-1.6)" : "ZIP", ts->n, s->f.n_aligned64, s->f.n_storages);
    *out = ts;
    return MP_OK;
}
