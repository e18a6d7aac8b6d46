/* safetensors.c - model.safetensors into the tensor table (tensors.h).
 *
 * Format: an 8-byte little-endian header length, a JSON header mapping each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section that
 * follows the header) plus an optional free-form "__metadata__", then the data. The whole header
 * is validated (dtype known, shape product = bytes, offsets inside the data) before any tensor
 * byte is used. The file is mapped read-only (use_mmap) or read into one 64-byte aligned block;
 * either stays with the table, so fp32 tensors are used in place.
 */
#include "tensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#  error "safetensors fp32 tensors are little-endian and used in place: big-endian hosts need a byte swap"
#endif

/* The safetensors header of wav2vec2-large is ~50 kB; this only bounds a hostile file. */
#define ST_HEADER_MAX ((uint64_t)100 << 20)

/* What the table keeps alive: the header JSON (owns the names) and the file's bytes. */
typedef struct st_storage {
    json_t *header;
    void *map;      /* mmap of the file, or NULL */
    size_t map_size;
    void *buf;      /* the file read into memory, or NULL */
} st_storage;

static void st_storage_free(void *p) {
    st_storage *s = p;
    if (!s) return;
    json_decref(s->header);
    if (s->map) munmap(s->map, s->map_size);
    free(s->buf);
    free(s);
}

/* Read size bytes of fd into a 64-byte aligned block (fp32 tensors at aligned offsets stay usable
 * in place, as in a mapping). */
static mp_status read_whole(const char *f, int fd, size_t size, void **out) {
    size_t bytes = (size + 63) & ~(size_t)63;
    uint8_t *buf = aligned_alloc(64, bytes ? bytes : 64);
    if (!buf) return mp__fail(MP_ERR_NOMEM, "%s: out of memory reading %zu bytes", f, size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got != size) {
        free(buf);
        return mp__fail(MP_ERR_IO, "%s: short read (%zu of %zu bytes)", f, got, size);
    }
    *out = buf;
    return MP_OK;
}

/* Map or read the file into s; *file and *size describe its bytes. */
static mp_status load_file(const char *f, int use_mmap, st_storage *s, const uint8_t **file, size_t *size) {
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mp__fail(MP_ERR_IO, "%s: cannot open: %s", f, strerror(errno));
    mp_status st = MP_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mp__fail(MP_ERR_IO, "%s: not a regular file", f);
    } else if ((*size = (size_t)sb.st_size) < 8) {
        st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: truncated: %zu bytes, shorter than the 8-byte header length", f,
                      *size);
    } else if (use_mmap) {
        void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            st = mp__fail(MP_ERR_IO, "%s: mmap failed: %s", f, strerror(errno));
        } else {
            s->map = p;
            s->map_size = *size;
            *file = p;
        }
    } else if ((st = read_whole(f, fd, *size, &s->buf)) == MP_OK) {
        *file = s->buf;
    }
    close(fd);
    return st;
}

/* Validate header entry `name` -> v into t, against a data section of data_size bytes. */
static mp_status parse_entry(const char *f, const char *name, const json_t *v, const uint8_t *data,
                             size_t data_size, mp__tensor *t) {
    t->name = name;
    if (!json_is_object(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: header entry is a JSON %s, expected an object", f, name,
                        mp__json_kind(v));
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
                 *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: dtype missing or not a string", f, name);
    const char *d = json_string_value(dt);
    if (!strcmp(d, "F32")) t->dtype = MP_DT_F32;
    else if (!strcmp(d, "F16")) t->dtype = MP_DT_F16;
    else if (!strcmp(d, "BF16")) t->dtype = MP_DT_BF16;
    else
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: unsupported dtype %s (supported: F32, F16, BF16)", f,
                        name, d);
    if (!json_is_array(sh))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape missing or not a list", f, name);
    if (json_array_size(sh) > MP_TENSOR_MAX_DIMS)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: %zu dimensions, at most %d supported", f, name,
                        json_array_size(sh), MP_TENSOR_MAX_DIMS);
    t->ndim = (int)json_array_size(sh);
    size_t numel = 1, esize = mp__dtype_size(t->dtype);
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        const json_t *e = json_array_get(sh, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer", f, name, i);
        t->shape[i] = json_integer_value(e);
        uint64_t dim = (uint64_t)t->shape[i];
        if (dim != 0 && numel > SIZE_MAX / dim) overflow = 1;
        else numel *= (size_t)dim;
    }
    char s[160];
    mp__shape_str(s, sizeof s, t->ndim, t->shape);
    if (overflow || numel > SIZE_MAX / esize)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape %s overflows", f, name, s);
    if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) ||
        !json_is_integer(json_array_get(off, 1)))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: data_offsets missing or not [begin, end]", f, name);
    json_int_t b = json_integer_value(json_array_get(off, 0)), e = json_integer_value(json_array_get(off, 1));
    if (b < 0 || e < b || (uint64_t)e > data_size)
        return mp__fail(MP_ERR_MODEL_FORMAT,
                        "%s: tensor %s: data_offsets [%lld, %lld] outside the data section (%zu bytes)", f, name,
                        (long long)b, (long long)e, data_size);
    t->numel = numel;
    t->nbytes = (size_t)(e - b);
    if (t->nbytes != numel * esize)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: %zu data bytes, but %s %s needs %zu", f, name, t->nbytes,
                        d, s, numel * esize);
    t->data = data + b;
    return MP_OK;
}

/* Parse the header of the size-byte file into s->header and ts's entries. */
static mp_status parse_header(mp__tensors *ts, st_storage *s, const uint8_t *file, size_t size) {
    const char *f = ts->path;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | file[i];
    if (hlen > size - 8)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header length %llu larger than the file (%zu bytes): truncated?", f,
                        (unsigned long long)hlen, size);
    if (hlen > ST_HEADER_MAX)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header length %llu exceeds the 100 MB limit", f,
                        (unsigned long long)hlen);
    json_error_t err;
    s->header = json_loadb((const char *)file + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!s->header)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header: invalid JSON at column %d: %s", f, err.column, err.text);
    if (!json_is_object(s->header))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header: a JSON %s, expected an object", f,
                        mp__json_kind(s->header));
    const uint8_t *data = file + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    ts->t = calloc(json_object_size(s->header) + 1, sizeof *ts->t);
    if (!ts->t) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", f);
    const char *name;
    json_t *v;
    json_object_foreach(s->header, name, v) {
        if (!strcmp(name, "__metadata__")) continue; /* free-form string map */
        mp_status st = parse_entry(f, name, v, data, data_size, &ts->t[ts->n]);
        if (st != MP_OK) return st;
        ts->n++;
    }
    return MP_OK;
}

mp_status mp__safetensors_open(const char *path, int use_mmap, mp__tensors **out) {
    *out = NULL;
    mp__tensors *ts = mp__tensors_new(path);
    st_storage *s = ts ? calloc(1, sizeof *s) : NULL;
    mp_status st = s ? MP_OK : mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    if (s) {
        ts->impl = s;
        ts->impl_free = st_storage_free;
    }
    const uint8_t *file = NULL;
    size_t size = 0;
    if (st == MP_OK) st = load_file(path, use_mmap, s, &file, &size);
    if (st == MP_OK) st = parse_header(ts, s, file, size);
    if (st != MP_OK) {
        mp__tensors_free(ts);
        return st;
    }
    ts->map = s->map;
    ts->map_size = s->map_size;
    *out = ts;
    return MP_OK;
}
