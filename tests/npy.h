/* npy.h - the one .npy reader of the tests (and bench/int8-layers.c, through int8-support.h):
 * float32, little-endian, C order, 1-D or 2-D, format 1.x or 2.x/3.x, as numpy and tools/ write
 * them. Failures abort through test.h's asserts: for test and measurement programs only.
 *
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * "\x93NUMPY", major, minor, header length (u16 for 1.x, u32 for 2.x/3.x, little-endian),
 * a Python dict literal, then the raw data. */
#ifndef MP_TEST_NPY_H
#define MP_TEST_NPY_H

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct npy {
    float *data;   /* malloc'ed */
    size_t n;      /* element count */
    long shape[2]; /* shape[1] = 1 for a 1-D array */
    int ndim;
} npy;

static inline char *npy_read_file(const char *path, size_t *n_out) {
    FILE *f = fopen(path, "rb");
    if (!f) MP_FAILF("%s: cannot open", path);
    MP_ASSERT(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    MP_ASSERT(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    MP_ASSERT(buf);
    MP_ASSERT(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = 0;
    *n_out = (size_t)n;
    return buf;
}

static inline npy npy_load(const char *path) {
    size_t n = 0;
    char *buf = npy_read_file(path, &n);
    npy a = {0};
    if (n < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) MP_FAILF("%s: not a .npy file", path);
    size_t hlen, off;
    if (buf[6] == 1) {
        hlen = (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
        off = 10;
    } else {
        MP_ASSERT(n >= 12);
        hlen = 0;
        for (int i = 0; i < 4; i++) hlen |= (size_t)(unsigned char)buf[8 + i] << (8 * i);
        off = 12;
    }
    if (off + hlen > n) MP_FAILF("%s: truncated header", path);
    char *hdr = strndup(buf + off, hlen);
    MP_ASSERT(hdr);
    if (!strstr(hdr, "'descr': '<f4'")) MP_FAILF("%s: want float32 little-endian: %s", path, hdr);
    if (!strstr(hdr, "'fortran_order': False")) MP_FAILF("%s: want C order: %s", path, hdr);
    char *sh = strstr(hdr, "'shape': (");
    MP_ASSERT(sh);
    sh += strlen("'shape': (");
    a.ndim = 0;
    a.shape[0] = a.shape[1] = 1;
    while (*sh && *sh != ')') {
        char *end = NULL;
        long v = strtol(sh, &end, 10);
        if (end == sh) break;
        MP_ASSERT(a.ndim < 2);
        a.shape[a.ndim++] = v;
        sh = end;
        while (*sh == ',' || *sh == ' ') sh++;
    }
    free(hdr);
    MP_ASSERT(a.ndim == 1 || a.ndim == 2);
    a.n = (size_t)a.shape[0] * (size_t)a.shape[1];
    if (off + hlen + a.n * 4 != n) MP_FAILF("%s: size %zu does not match the shape", path, n);
    a.data = malloc(a.n * sizeof(float) + 1);
    MP_ASSERT(a.data);
    memcpy(a.data, buf + off + hlen, a.n * sizeof(float)); /* x86/ARM hosts are little-endian */
    free(buf);
    return a;
}

/* A 1-D array: its data (malloc'ed), *n its length. */
static inline float *npy_load_1d(const char *path, size_t *n) {
    npy a = npy_load(path);
    if (a.ndim != 1) MP_FAILF("%s: want a 1-D array, got %d dimensions", path, a.ndim);
    *n = a.n;
    return a.data;
}

#endif
