/* st-write.h - writing model.safetensors (st-write.c). Private to the engine. */
#ifndef MP_ST_WRITE_H
#define MP_ST_WRITE_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mp__st_out {
    const char *name;
    int ndim;
    int64_t shape[8];
    size_t numel;
} mp__st_out;

/* Fill dst[t[i].numel] with tensor i as fp32. */
typedef mp_status (*mp__st_read_fn)(void *ctx, size_t i, float *dst);

/* Write tensors t[0..n) in that order to `path` as dtype MP__PT_F32, _F16 or _BF16 (rounded to
 * nearest even), through a temporary file renamed over `path` when complete. */
mp_status mp__st_write(const char *path, int dtype, const mp__st_out *t, size_t n, mp__st_read_fn read, void *ctx);

#endif
