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

/* fp32 feed-forward: intermediate columns per pass (w2v2.c's plan; prepack.c splits the weights so) */
#define MP__FFN_COLS 768

/* y[r][c] = act(y[r][c] + b[c]) in one pass; b may be NULL (activation only). */
void mp__k_bias_act(float *y, size_t rows, int n, size_t ld, const float *b, int act);
/* out = act(LayerNorm(x) * w + b) over the n columns of each row (biased variance, as torch).
 * out may equal x. */
void mp__k_layer_norm(const float *x, size_t rows, int n, size_t ldx, const float *w, const float *b, float eps,
                      float *out, size_t ldo, int act);
/* x += y (same shape and stride), then, if w is not NULL, x = LayerNorm(x) * w + b: the
 * residual add and the post-LN of wav2vec2-base in one pass over x. */
void mp__k_add_layer_norm(float *x, const float *y, size_t rows, int n, size_t ld, const float *w, const float *b,
                          float eps);
/* Row-wise softmax in place over n columns, rows ld apart. With inv not NULL the rows are left
 * unnormalized (e^(s - max)) and inv[r] gets 1 / their sum, for the caller to scale a narrower
 * product of them instead (attention: [rows][head_dim] rather than [rows][T]). */
void mp__k_softmax_rows(float *s, size_t rows, int n, size_t ld, float *inv);
/* y[r][c] *= sc[r]. */
void mp__k_scale_rows(float *y, size_t rows, int n, size_t ld, const float *sc);
/* Conv layer 0 over one channel: out[r][c] = act(b[c] + sum_j x'[r*stride + j] wt[j][c]),
 * x' = (x - mean) * inv, wt [k][C] (taps major), out [rows][C]. */
void mp__k_conv0(const float *x, size_t rows, int stride, int k, float mean, float inv, const float *wt,
                 const float *b, int C, int act, float *out);
/* C[M][N] = A[M][K] Bt[K][N] for N a multiple of 16, Bt dense (row stride N), any lda: unlike
 * BLAS, rows of A may overlap (lda < K), so a conv's patch matrix is read in place. Outer-product
 * register tiles; for a conv whose weight was transposed to taps-major first. */
void mp__k_gemm_bt(size_t M, int N, int K, const float *A, size_t lda, const float *Bt, float *C, size_t ldc);
/* dst [cols][rows] = src [rows][cols]^T. */
void mp__k_transpose(const float *src, int rows, int cols, float *dst);
/* sum[c] += y[r][c], sq[c] += y[r][c]^2 over rows (double accumulators: GroupNorm statistics). */
void mp__k_col_stats(const float *y, size_t rows, int n, double *sum, double *sq);

/* C[M][N] = alpha A[M][K] B[N][K]^T + beta C (activations times a [out][in] weight). */
void mp__gemm_nt(size_t M, int N, int K, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                 float beta, float *C, size_t ldc);
/* C[M][N] = A[M][K] B[K][N] (attention's probabilities times values). */
void mp__gemm_nn(size_t M, int N, int K, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                 size_t ldc);

/* Which library runs the fp32 GEMMs: 1 = oneDNN (dnnl_sgemm, dispatches on cpuid and knows
 * recent CPUs), 0 = OpenBLAS, 2 = OpenBLAS but oneDNN for products of fewer than 256 rows (live
 * streams' short windows; kernels.c says why it is not a default). Process-wide; returns the
 * backend now in force (0 when the library was built without oneDNN). For benchmarks and tests. */
int mp__gemm_set_backend(int which);
int mp__gemm_backend(void);
/* The backends by name, for the benches' --gemm: "openblas", "onednn", "small" -> 0, 1, 2 (-1
 * for any other name), and back (a description). */
int mp__gemm_backend_by_name(const char *name);
const char *mp__gemm_backend_name(int which);
/* The calling thread's oneDNN (OpenMP) thread count follows the process-wide BLAS setting;
 * mp__forward calls this first, since OpenMP's setting is per thread and callers are any thread. */
void mp__gemm_thread_sync(void);
/* Before a oneDNN product of `macs` multiply-adds: one thread for small ones, else the budget.
 * Returns the team size set (1 without oneDNN). */
int mp__gemm_fit_threads(double macs);
int mp__have_onednn(void);
#ifdef MP_HAVE_ONEDNN
/* libgomp, which Debian's libdnnl is built against (declared here so no omp.h is needed). */
extern void omp_set_num_threads(int n);
extern int omp_get_max_threads(void);
#endif

/* ---- prepack.c: fp32 linears through oneDNN 1x1 convolutions ------------------------------------ */

/* One fp32 weight [n][k] (an [out][in] linear, or a slice of one) in the kernel's blocked layout. */
typedef struct mp__plinear {
    int n, k;
    float *w;  /* blocked copy (prepack.c: beside the plain weight, or in its place) */
    void *wmd; /* its oneDNN memory descriptor */
} mp__plinear;

typedef struct mp__player {
    mp__plinear q, k, v, o;
    mp__plinear *ff1, *ff2; /* [passes]: intermediate columns c0.. of mp__pmodel.fc each */
} mp__player;

typedef struct mp__pmodel {
    size_t fc;           /* feed-forward intermediate columns per pass (w2v2.c's fp32 plan) */
    int passes;
    mp__plinear conv[MP_MAX_CONV]; /* conv layer l's first `stride` taps ([c_out][stride * c_in], whose
                                      patch rows are dense), w NULL when not packed (layer 0, kernel <
                                      stride) */
    mp__plinear fp;      /* feature projection */
    mp__player *layers;  /* [n_layers] */
    int replaced;        /* the plain linears were released (prepack.c "Memory"): fp_w, q_w.. are NULL */
} mp__pmodel;

/* Models whose linears exceed `bytes` get packed weights in place of the plain ones (default and
 * 0: 64 MB). Process-wide, for tests. */
void mp__prepack_set_replace_above(size_t bytes);
/* Give back the pages strictly inside the weight [n] floats at *pp and clear the pointer (nothing
 * may read it afterwards: anonymous pages would read as zeros). */
void mp__release_weight(const float **pp, size_t n);
/* The same for any `bytes` at p (madvise MADV_DONTNEED of the pages strictly inside). */
void mp__release_pages(const void *p, size_t bytes);

/* out [M][P->n] (row stride P->n) = act(in [M][P->k] (row stride P->k) P^T + b) (b may be NULL,
 * act MP__ACT_NONE), or with accumulate, out += in P^T (b NULL, no act). */
void mp__p_linear(const mp__plinear *P, size_t M, const float *in, const float *b, int accumulate, int act,
                  float *out);

/* ---- quant.c: the int8 path ---------------------------------------------------------------------- */

/* One int8 weight [n][k]: 7-bit symmetric per output channel, w ~ scale[r] * w8[r][c]. */
typedef struct mp__qlinear {
    int n, k;
    int8_t *w;      /* [n][k], values in [-63, 63]; or, with wmd, the same values in that layout */
    void *wmd;      /* NULL, or the oneDNN memory descriptor of w's blocked layout (quant.c: the
                     * 1x1-convolution path; products then need ldo == n) */
    float *scale;   /* [n] */
    int32_t *wsum;  /* [n] sum over k of w[r][.] (zero-point correction) */
} mp__qlinear;

typedef struct mp__qlayer { mp__qlinear q, k, v, o, ff1, ff2; } mp__qlayer;

typedef struct mp__qmodel mp__qmodel;
struct mp__qmodel {
    mp__qlinear conv[MP_MAX_CONV]; /* w == NULL: that conv layer runs in fp32 */
    mp__qlinear fp;                /* feature projection */
    mp__qlinear *pos;              /* positional conv, [pos_groups] of [H/G out][K * H/G in]; NULL: fp32 */
    mp__qlayer *layers;            /* [n_layers] */
};

/* Quantized activations: a [rows][K] u8, per-row (or one shared) scale and zero point. */
typedef struct mp__qscratch {
    uint8_t *a;
    float *sa;
    int32_t *za;
} mp__qscratch;

/* Whether mp__model_quantize pre-packs weights for oneDNN's 1x1 convolution where it can (AVX2
 * CPUs; 1, the default) or keeps them plain for dnnl_gemm_u8s8s32 (0). Process-wide;
 * applies to models quantized afterwards. For benchmarks and tests (both give the same int32
 * products, so the same logits). */
void mp__quant_set_prepack(int on);

/* Quantize x [M][K] (row stride ldx) into s: one scale per row, or one for all rows. */
void mp__q_rows(const float *x, size_t M, int K, size_t ldx, int per_row, mp__qscratch *s);
/* out [M][W->n] = act(dequant(s->a W^T) + b), s quantized per row with K = W->k. With W->wmd,
 * ldo must be W->n (any other row stride is computed one row at a time). */
void mp__q_matmul(const mp__qscratch *s, size_t M, const mp__qlinear *W, const float *b, int act, float *out,
                  size_t ldo);
/* Quantize `in` per row, then mp__q_matmul. */
void mp__q_linear(const float *in, size_t M, size_t ldi, const mp__qlinear *W, const float *b, int act, float *out,
                  size_t ldo, mp__qscratch *s);
#endif /* MP_KERNELS_H */
