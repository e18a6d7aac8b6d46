/*
 * kernels.h - the engine's numeric kernels (kernels.c: elementwise work and GEMM dispatch;
 * quant.c: the int8 path). Shared by w2v2.c and quant.c only.
 *
 * Matrices are row-major with an explicit row stride (ld, in elements). Activation codes are
 * mp__act values; MP__ACT_NONE (< 0) means "no activation".
 */
#ifndef MP_KERNELS_H
#define MP_KERNELS_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define MP__ACT_NONE (-1)

/* y[r][c] = act(y[r][c] + b[c]) in one pass; b may be NULL (activation only). */
void mp__k_bias_act(float *y, size_t rows, int n, size_t ld, const float *b, int act);
/* y[r][c] = act(y[r][c] * sc[c] + sh[c]) (GroupNorm folded to a per-channel affine map). */
void mp__k_scale_shift_act(float *y, size_t rows, int n, size_t ld, const float *sc, const float *sh, int act);
/* out = act(LayerNorm(x) * w + b) over the n columns of each row (biased variance, as torch).
 * out may equal x. */
void mp__k_layer_norm(const float *x, size_t rows, int n, size_t ldx, const float *w, const float *b, float eps,
                      float *out, size_t ldo, int act);
/* x += y (same shape and stride), then, if w is not NULL, x = LayerNorm(x) * w + b: the
 * residual add and the post-LN of wav2vec2-base in one pass over x. */
void mp__k_add_layer_norm(float *x, const float *y, size_t rows, int n, size_t ld, const float *w, const float *b,
                          float eps);
/* Row-wise softmax in place over n columns, rows ld apart. */
void mp__k_softmax_rows(float *s, size_t rows, int n, size_t ld);
/* sum[c] += y[r][c], sq[c] += y[r][c]^2 over rows (double accumulators: GroupNorm statistics). */
void mp__k_col_stats(const float *y, size_t rows, int n, double *sum, double *sq);

/* C[M][N] = alpha A[M][K] B[N][K]^T + beta C (activations times a [out][in] weight). */
void mp__gemm_nt(size_t M, int N, int K, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                 float beta, float *C, size_t ldc);
/* C[M][N] = A[M][K] B[K][N] (attention's probabilities times values). */
void mp__gemm_nn(size_t M, int N, int K, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                 size_t ldc);

/* Which library runs the fp32 GEMMs: 1 = oneDNN (dnnl_sgemm, dispatches on cpuid and knows
 * recent CPUs), 0 = OpenBLAS. Process-wide; returns the backend now in force (0 when the
 * library was built without oneDNN). For benchmarks and tests. */
int mp__gemm_set_backend(int use_onednn);
int mp__gemm_backend(void);
/* The calling thread's oneDNN (OpenMP) thread count follows the process-wide BLAS setting;
 * mp__forward calls this first, since OpenMP's setting is per thread and callers are any thread. */
void mp__gemm_thread_sync(void);
int mp__have_onednn(void);

#endif /* MP_KERNELS_H */
