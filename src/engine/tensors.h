/*
 * tensors.h - the tensor table: what a weight-file reader hands the loader (engine-private).
 *
 * A reader (safetensors.c for model.safetensors; another format adds its own file and one open
 * function) parses its file and fills one table: for each tensor its name, dtype, shape and
 * little-endian bytes, validated to lie inside the file. It owns that storage (a read-only
 * mapping or a private copy) and the name strings until mp__tensors_free(). weights.c then claims
 * tensors by name and shape without knowing the format; an fp32 tensor whose bytes are 4-byte
 * aligned is used in place, so the model keeps the table open for its whole life.
 */
#ifndef MP_ENGINE_TENSORS_H
#define MP_ENGINE_TENSORS_H

#include "internal.h"

#define MP_TENSOR_MAX_DIMS 8

/* Element types a reader may produce; the loader converts all of them to fp32. */
typedef enum mp__dtype { MP_DT_F32 = 0, MP_DT_F16 = 1, MP_DT_BF16 = 2 } mp__dtype;
#define MP_DT_COUNT 3

const char *mp__dtype_name(mp__dtype dt); /* "F32", "F16", "BF16" */
size_t mp__dtype_size(mp__dtype dt);      /* bytes per element */

typedef struct mp__tensor {
    const char *name;                     /* owned by the table */
    mp__dtype dtype;
    int ndim;
    int64_t shape[MP_TENSOR_MAX_DIMS];
    size_t numel;
    const uint8_t *data;                  /* numel * mp__dtype_size(dtype) little-endian bytes */
    size_t nbytes;
    int used;                             /* claimed by the loader (weights.c) */
} mp__tensor;

typedef struct mp__tensors {
    char *path;                           /* the weight file, named in every error (owned) */
    mp__tensor *t;                        /* [n] */
    size_t n;
    const void *map;                      /* read-only mapping of the whole file, or NULL when it
                                             was read into memory (use_mmap = 0) */
    size_t map_size;
    /* The reader's storage and name strings, released by impl_free(impl). */
    void *impl;
    void (*impl_free)(void *impl);
} mp__tensors;

/* model.safetensors (safetensors.c): map it (use_mmap) or read it, and validate the whole header
 * before anything uses a tensor. Errors name the file and the tensor. */
mp_status mp__safetensors_open(const char *path, int use_mmap, mp__tensors **out);

/* An empty table for path (a reader's first step); NULL when out of memory. */
mp__tensors *mp__tensors_new(const char *path);
void mp__tensors_free(mp__tensors *ts); /* NULL is a no-op */
mp__tensor *mp__tensors_find(mp__tensors *ts, const char *name);

/* Convert any tensor to dst[numel] floats. */
void mp__tensor_to_f32(const mp__tensor *t, float *dst);
/* "[768,512,3]" into buf. */
void mp__shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

#endif /* MP_ENGINE_TENSORS_H */
