/* tensors.c - the tensor table every weight-file reader fills (tensors.h): lookup, release, and
 * conversion of F16/BF16/F32 little-endian bytes to fp32. */
#include "tensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dt_names[MP_DT_COUNT] = {"F32", "F16", "BF16"};
static const size_t dt_size[MP_DT_COUNT] = {4, 2, 2};

const char *mp__dtype_name(mp__dtype dt) { return dt_names[dt]; }
size_t mp__dtype_size(mp__dtype dt) { return dt_size[dt]; }

mp__tensors *mp__tensors_new(const char *path) {
    mp__tensors *ts = calloc(1, sizeof *ts);
    if (!ts) return NULL;
    ts->path = strdup(path);
    if (!ts->path) {
        free(ts);
        return NULL;
    }
    return ts;
}

void mp__tensors_free(mp__tensors *ts) {
    if (!ts) return;
    if (ts->impl_free) ts->impl_free(ts->impl);
    free(ts->t);
    free(ts->path);
    free(ts);
}

mp__tensor *mp__tensors_find(mp__tensors *ts, const char *name) {
    for (size_t i = 0; i < ts->n; i++)
        if (!strcmp(ts->t[i].name, name)) return &ts->t[i];
    return NULL;
}

void mp__shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* IEEE half -> float, including subnormals, infinities and NaN. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;
    } else {
        /* subnormal: man * 2^-24, exact in float */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void mp__tensor_to_f32(const mp__tensor *t, float *dst) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case MP_DT_F32:
        memcpy(dst, p, t->numel * sizeof(float));
        break;
    case MP_DT_F16:
        for (size_t i = 0; i < t->numel; i++) dst[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case MP_DT_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16; /* bf16 = top half of fp32 */
            memcpy(&dst[i], &bits, sizeof bits);
        }
        break;
    }
}
