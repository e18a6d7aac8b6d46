/*
 * dnnl-conv.h - products out [M][n] = in [M][k] W^T as oneDNN 1x1 convolutions over a weight
 * reordered once into the layout of oneDNN's JIT kernel. The one implementation behind
 * prepack.c (fp32 linears) and quant.c (the int8 path on AVX2). Engine only.
 */
#ifndef MP_DNNL_CONV_H
#define MP_DNNL_CONV_H

#include <stddef.h>

typedef enum mp__dconv_type {
    MP__DCONV_F32,  /* f32 input, weight and output; optional f32 bias, accumulation, GELU */
    MP__DCONV_U8S8, /* u8 input, s8 weight, s32 output; no bias, no accumulation */
} mp__dconv_type;

/* Reorder w [n][k] (row stride ld elements) into the layout of oneDNN's 1x1 kernel, if one
 * layout gets that kernel for every row count this file runs (probed here, once per shape).
 * 1: *packed (aligned_alloc) and *md (malloc'ed oneDNN memory descriptor) are the caller's to
 * free. 0: not possible here (another CPU's kernel, out of memory); nothing allocated. */
int mp__dconv_pack(mp__dconv_type t, const void *w, int n, int k, size_t ld, void **packed, void **md);

/* out [M][n] (row stride ldo) = in [M][k] (row stride k) W^T (+ b[n], b may be NULL) (+= out with
 * accumulate), then with gelu (fp32 only) GELU (erf form) as oneDNN's eltwise post-op, applied
 * while the tile is in registers; W = (packed, md) from mp__dconv_pack. Rows go in tiles of bounded sizes (ldo != n:
 * one row at a time). On failure inside oneDNN (out of memory) the output is zero and an error
 * is logged. */
void mp__dconv_run(mp__dconv_type t, const void *packed, const void *md, int n, int k, size_t M, const void *in,
                   const float *b, int accumulate, int gelu, void *out, size_t ldo);

/* Tiles run so far (all threads) by a oneDNN kernel other than the one probed for their layout:
 * oneDNN's reference loop, thousands of times slower. 0 unless a probe missed a case (tests). */
size_t mp__dconv_slow_tiles(void);

#endif /* MP_DNNL_CONV_H */
