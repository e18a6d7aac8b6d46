/*
 * st-write.c - writing a model.safetensors file (for `modelpool convert`): an 8-byte header
 * length, the JSON header, then every tensor's bytes back to back, little-endian.
 *
 * The header is padded with spaces to a multiple of 8 bytes so the data section, and with it every
 * fp32 tensor (all sizes are multiples of 4 bytes), stays aligned for in-place use. The file is
 * written under a temporary name and renamed over the target only when complete, so a model
 * being served from a mapping of the old file is never truncated under it.
 */
#include "torch-ckpt.h"
#include "st-write.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* float -> IEEE half, round to nearest even; overflow to infinity, NaN kept quiet. */
static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000, mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (mag > 0x7f800000u ? 0x200 : 0));
    if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to infinity */
    if (mag < 0x38800000u) {                                   /* below 2^-14: subnormal or zero */
        if (mag < 0x33000000u) return (uint16_t)sign;          /* below 2^-25: rounds to zero */
        uint32_t e = mag >> 23, m = (mag & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                              /* 14 - (e - 127) + 13 - ... */
        uint32_t v = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (v & 1))) v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((mag - 0x38000000u) >> 13), rem = mag & 0x1fff; /* rebias 127 -> 15 */
    if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) v++;
    return (uint16_t)(sign | v);
}

/* float -> bfloat16 (the top half), round to nearest even; NaN kept quiet. */
static uint16_t float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static mp_status write_all(FILE *fp, const char *path, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, fp) != n) return mp__fail(MP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return MP_OK;
}

/* The JSON header; *out is malloc'ed and padded to a multiple of 8 bytes. */
static mp_status header(const char *path, int dtype, const mp__st_out *t, size_t n, char **out, size_t *len) {
    static const char *const names[] = {"F32", "F16", "BF16"};
    json_t *h = json_object();
    size_t es = dtype == MP__PT_F32 ? 4 : 2, off = 0;
    /* transformers refuses a safetensors file whose metadata lacks a framework "format". */
    int ok = h && json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt")) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; shape && d < t[i].ndim; d++) json_array_append_new(shape, json_integer(t[i].shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", names[dtype], "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + t[i].numel * es));
        ok = e && json_object_set_new(h, t[i].name, e) == 0;
        off += t[i].numel * es;
    }
    char *s = ok ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(h);
    if (!s) return mp__fail(MP_ERR_NOMEM, "%s: out of memory building the header", path);
    size_t k = strlen(s), padded = (k + 7) & ~(size_t)7;
    char *p = realloc(s, padded + 1);
    if (!p) {
        free(s);
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    }
    memset(p + k, ' ', padded - k);
    p[padded] = 0;
    *out = p;
    *len = padded;
    return MP_OK;
}

static mp_status write_tensors(FILE *fp, const char *path, int dtype, const mp__st_out *t, size_t n,
                               mp__st_read_fn read, void *ctx) {
    mp_status st = MP_OK;
    for (size_t i = 0; st == MP_OK && i < n; i++) {
        float *x = malloc((t[i].numel ? t[i].numel : 1) * sizeof *x);
        if (!x) return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", path, t[i].name);
        st = read(ctx, i, x);
        if (st == MP_OK && dtype != MP__PT_F32) {
            uint16_t *h = (uint16_t *)(void *)x; /* in place: element j's 2 bytes never pass element j */
            for (size_t j = 0; j < t[i].numel; j++) h[j] = dtype == MP__PT_F16 ? float_to_half(x[j]) : float_to_bf16(x[j]);
        }
        if (st == MP_OK) st = write_all(fp, path, x, t[i].numel * (dtype == MP__PT_F32 ? 4 : 2));
        free(x);
    }
    return st;
}

mp_status mp__st_write(const char *path, int dtype, const mp__st_out *t, size_t n, mp__st_read_fn read, void *ctx) {
    if (dtype != MP__PT_F32 && dtype != MP__PT_F16 && dtype != MP__PT_BF16)
        return mp__fail(MP_ERR_INVALID_ARG, "%s: output dtype must be F32, F16 or BF16", path);
    char *h = NULL;
    size_t hlen = 0;
    mp_status st = header(path, dtype, t, n, &h, &hlen);
    if (st != MP_OK) return st;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(h);
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, plen + 16, "%s.XXXXXX", path); /* unique per call: concurrent saves never share one */
    int fd = mkstemp(tmp);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !fp) close(fd), remove(tmp);
    if (!fp) {
        st = mp__fail(MP_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        st = write_all(fp, tmp, len8, 8);
        if (st == MP_OK) st = write_all(fp, tmp, h, hlen);
        if (st == MP_OK) st = write_tensors(fp, tmp, dtype, t, n, read, ctx);
        if (fclose(fp) != 0 && st == MP_OK) st = mp__fail(MP_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        if (st == MP_OK) chmod(tmp, 0644); /* mkstemp makes it 0600; a model file is for everyone to read */
        if (st == MP_OK && rename(tmp, path) != 0)
            st = mp__fail(MP_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        if (st != MP_OK) remove(tmp);
    }
    free(tmp);
    free(h);
    return st;
}
