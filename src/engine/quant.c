/*
 * quant.c - the int8 path (mp_model_config.dtype = MP_DTYPE_INT8): weights quantized once at
 * load, activations quantized per call, products through oneDNN: on AVX2, 1x1 convolutions over
 * weights reordered once into the kernel's layout; elsewhere (AVX-512) dnnl_gemm_u8s8s32 over
 * the plain weights.
 *
 * DESIGN
 *   What is quantized. The transformer's linears (q, k, v, out, both feed-forward layers), the
 *   feature projection, conv layers 1..N-1 of the feature extractor (conv_layer_quantized says
 *   why) and the positional conv (quantize_pos). Conv 0 (one input channel, K = 10: no GEMM
 *   worth it), every norm, softmax, the attention products and lm_head stay fp32.
 *
 *   Weights: symmetric, per output channel, 7 bits: q = round(w / s_n), s_n = max|w_n| / 63,
 *   q in [-63, 63]. Seven bits, not eight, because oneDNN's AVX2 and AVX-512 (non-VNNI) kernels
 *   multiply u8 x s8 pairs with vpmaddubsw, which adds two products into a saturating int16:
 *   255 * 127 * 2 = 64770 overflows, 255 * 63 * 2 = 32130 does not. With VNNI (vpdpbusd) there is
 *   no such limit; the same 7-bit weights are used everywhere so results do not depend on the
 *   CPU. (PyTorch's fbgemm reduces the activation range instead; same bound, other operand.)
 *   The fp32 originals are released once quantized (pages given back with madvise, pointers
 *   cleared), so the model holds one int8 copy: ~1/4 of the fp32 bytes.
 *
 *   Activations: asymmetric u8, quantized dynamically for each call, one scale per GEMM row: a
 *   frame for the linears, a frame's patch (kernel x c_in inputs) for the convs, whose patches
 *   overlap, so w2v2.c quantizes them into an explicit u8 im2col matrix (one scale per block of
 *   input rows instead doubled the int8 error: logit RMS 0.22 -> 0.45 on a test model). With
 *   x ~ s_a (q_a - z_a) and w ~ s_n q_w:
 *       y[m][n] = s_a[m] s_n (sum_k q_a q_w - z_a[m] wsum[n]) + b[n],   wsum[n] = sum_k q_w[n][k]
 *   The int32 product is written over the fp32 output and converted in place in the same pass
 *   as the bias and activation (this file is built with -fno-strict-aliasing).
 *
 *   Pre-packed weights. dnnl_gemm_u8s8s32 packs its whole B operand (the weight) again on every
 *   call, into buffers it allocates per call. A 1x1 convolution over T time steps is the same
 *   product (A [T][K] and C [T][N] are oneDNN's nwc layout as they stand), and its weights are
 *   reordered once at load into the layout its kernel reads; executing it allocates nothing (user
 *   scratchpad, none needed on AVX2). Same int32 results, so the same logits (tests/test-int8
 *   prepack_avx2); forced to AVX2 one 8 s clip of base took 0.94-0.95 of the CPU time
 *   (bench-clip --vs-int8-gemm 1). The convolution itself (which kernel, the row-count probe,
 *   the row tiles) is dnnl-conv.c, shared with prepack.c's fp32 path.
 *
 *   Threads: oneDNN (OpenMP) follows the pool's thread budget through mp__gemm_thread_sync().
 */
#include "kernels.h"
#include "dnnl-conv.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef MP_HAVE_ONEDNN
#  include <dnnl.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__) && \
    !defined(MP_NO_CLONES)
#  define MP_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#  define MP_KERNEL
#endif

enum { W_MAX = 63 }; /* 7-bit weights: see DESIGN */

/* ---- load time: weights -------------------------------------------------------------------------- */

static void qlinear_free(mp__qlinear *q) {
    free(q->w);
    free(q->wmd);
    free(q->scale);
    free(q->wsum);
    memset(q, 0, sizeof *q);
}

/* Quantize w [n][k] (row stride k) into q. */
static mp_status qlinear_quant(mp__qlinear *q, const float *w, int n, int k) {
    q->n = n, q->k = k;
    q->w = aligned_alloc(64, ((size_t)n * k + 63) & ~(size_t)63);
    q->scale = malloc((size_t)n * sizeof *q->scale);
    q->wsum = malloc((size_t)n * sizeof *q->wsum);
    if (!q->w || !q->scale || !q->wsum) {
        qlinear_free(q);
        return mp__fail(MP_ERR_NOMEM, "int8: out of memory quantizing a %d x %d weight", n, k);
    }
    for (int r = 0; r < n; r++) {
        const float *row = w + (size_t)r * k;
        float amax = 0;
        for (int c = 0; c < k; c++) amax = fabsf(row[c]) > amax ? fabsf(row[c]) : amax;
        float s = amax > 0 ? amax / W_MAX : 1.0f;
        int8_t *o = q->w + (size_t)r * k;
        int32_t sum = 0;
        for (int c = 0; c < k; c++) {
            long v = lrintf(row[c] / s);
            v = v > W_MAX ? W_MAX : v < -W_MAX ? -W_MAX : v;
            o[c] = (int8_t)v;
            sum += (int32_t)v;
        }
        q->scale[r] = s;
        q->wsum[r] = sum;
    }
    return MP_OK;
}

/* qlinear_quant, then release w. */
static mp_status qlinear_make(mp__qlinear *q, const float **wp, int n, int k) {
    mp_status st = qlinear_quant(q, *wp, n, k);
    if (st == MP_OK) mp__release_weight(wp, (size_t)n * k);
    return st;
}

/* ---- the 1x1-convolution path: weights reordered once ------------------------------------------ */

static atomic_int g_prepack = 1;

void mp__quant_set_prepack(int on) { atomic_store(&g_prepack, on ? 1 : 0); }

/* Reorder q->w [n][k] into the layout of oneDNN's AVX2 int8 1x1 convolution, once, when that
 * layout serves every row count (dnnl-conv.c); otherwise q stays plain for dnnl_gemm_u8s8s32.
 * Why: that GEMM packs the whole weight again on every call into buffers it allocates per call
 * (2.4 MB for a feed-forward weight of base; with the CLI's 64 KiB mmap threshold ~11 000 page
 * faults per 8 s clip), while the 1x1 convolution reads the pre-packed copy and allocates
 * nothing. Failure here is not an error: q keeps the plain layout. */
static void qlinear_block(mp__qlinear *q) {
#ifdef MP_HAVE_ONEDNN
    void *w = NULL, *md = NULL;
    if (!atomic_load(&g_prepack) || !mp__dconv_pack(MP__DCONV_U8S8, q->w, q->n, q->k, (size_t)q->k, &w, &md))
        return;
    free(q->w);
    q->w = w;
    q->wmd = md;
#else
    (void)q;
#endif
}

/* Which conv layers run in int8: 1..n_conv-1. Tried one at a time with bench/int8-layers on the
 * embedded model (parity inputs + 21 synthesized digit clips, 3339 frames): argmax agreement
 * with fp32 99.91% with no conv in int8, 99.76..99.85% with any single layer, 99.82% with all;
 * logit RMS 0.018 -> 0.022. No layer stands out, and layers 1-2 hold 77% of the conv FLOPs of
 * base, so all are on. Layer 0 has K = kernel = 10 and stays fp32. */
static int conv_layer_quantized(const mp_model *m, int l) { return l >= 1 && l < m->hp.n_conv; }

/* The positional conv, one product per group: W_g [Hg out][K * Hg in] (pos_w's layout, see
 * weights.c) against patch rows of K * Hg inputs; then pos_w is released. Why in int8: it is the
 * largest fp32 product left (2 T H K Hg multiply-adds: 3.8 G for base and 8 s, as many as the
 * attention products; 4.8% of an int8 forward on a Zen 3 core), and with one scale per patch,
 * like conv layers 1..N, it measured as harmless as they are (bench/int8-layers, rows "all but
 * pos" and "all+pos"; BENCHMARKS.md finding 9). */
static mp_status quantize_pos(mp_model *m, uint64_t *before, uint64_t *after) {
    mp__qmodel *qm = m->quant;
    const int G = m->hp.pos_groups, Hg = m->hp.hidden / G, KH = m->hp.pos_kernel * Hg;
    if (!(qm->pos = calloc((size_t)G, sizeof *qm->pos))) return mp__fail(MP_ERR_NOMEM, "int8: out of memory");
    for (int g = 0; g < G; g++) {
        mp_status st = qlinear_quant(&qm->pos[g], m->pos_w + (size_t)g * Hg * KH, Hg, KH);
        if (st != MP_OK) return st;
        qlinear_block(&qm->pos[g]);
    }
    mp__release_weight(&m->pos_w, (size_t)m->hp.hidden * KH);
    *before += (uint64_t)m->hp.hidden * KH * sizeof(float);
    *after += (uint64_t)m->hp.hidden * (KH + 2 * sizeof(float));
    return MP_OK;
}

void mp__model_quant_free(mp_model *m) {
    if (!m || !m->quant) return;
    mp__qmodel *qm = m->quant;
    qlinear_free(&qm->fp);
    for (int l = 0; l < MP_MAX_CONV; l++) qlinear_free(&qm->conv[l]);
    if (qm->pos)
        for (int g = 0; g < m->hp.pos_groups; g++) qlinear_free(&qm->pos[g]);
    free(qm->pos);
    if (qm->layers)
        for (int i = 0; i < m->hp.n_layers; i++) {
            mp__qlayer *L = &qm->layers[i];
            qlinear_free(&L->q), qlinear_free(&L->k), qlinear_free(&L->v);
            qlinear_free(&L->o), qlinear_free(&L->ff1), qlinear_free(&L->ff2);
        }
    free(qm->layers);
    free(qm);
    m->quant = NULL;
}

mp_status mp__model_quantize(mp_model *m, int conv_mask) {
    if (!m) return mp__fail(MP_ERR_INVALID_ARG, "int8: NULL model");
    if (m->quant) return MP_OK;
    if (m->packed && m->packed->replaced)
        return mp__fail(MP_ERR_INVALID_ARG, "int8: this model's fp32 linears were released when they were packed "
                                            "(prepack.c); load it with dtype int8 instead");
    mp__model_prepack_free(m); /* int8 replaces the fp32 products */
    if (!mp__have_onednn())
        return mp__fail(MP_ERR_INVALID_ARG, "int8: this library was built without oneDNN (libdnnl-dev)");
    mp__qmodel *qm = calloc(1, sizeof *qm);
    if (!qm) return mp__fail(MP_ERR_NOMEM, "int8: out of memory");
    qm->layers = calloc((size_t)m->hp.n_layers, sizeof *qm->layers);
    m->quant = qm;
    if (!qm->layers) {
        mp__model_quant_free(m);
        return mp__fail(MP_ERR_NOMEM, "int8: out of memory");
    }
    const int H = m->hp.hidden, NI = m->hp.intermediate, nc = m->hp.n_conv;
    uint64_t before = 0, after = 0; /* fp32 bytes replaced, int8 bytes made */
    mp_status st = MP_OK;
#define QL(dst, wfield, n, k)                                                                                        \
    do {                                                                                                             \
        if (st == MP_OK) st = qlinear_make(&(dst), &(wfield), (n), (k));                                             \
        if (st == MP_OK) qlinear_block(&(dst));                                                                      \
        before += (uint64_t)(n) * (k) * sizeof(float);                                                               \
        after += (uint64_t)(n) * ((k) + 2 * sizeof(float));                                                          \
    } while (0)
    for (int l = 0; l < nc; l++) {
        mp__conv_layer *cl = &m->conv[l];
        if (!conv_layer_quantized(m, l) || !(conv_mask & (1 << l))) continue;
        QL(qm->conv[l], cl->w, cl->c_out, cl->kernel * cl->c_in);
    }
    QL(qm->fp, m->fp_w, H, m->hp.conv_dim[nc - 1]);
    if (st == MP_OK && (conv_mask & MP__QUANT_POS)) st = quantize_pos(m, &before, &after);
    for (int i = 0; i < m->hp.n_layers; i++) {
        mp__enc_layer *L = &m->layers[i];
        mp__qlayer *Q = &qm->layers[i];
        QL(Q->q, L->q_w, H, H);
        QL(Q->k, L->k_w, H, H);
        QL(Q->v, L->v_w, H, H);
        QL(Q->o, L->o_w, H, H);
        QL(Q->ff1, L->ff1_w, NI, H);
        QL(Q->ff2, L->ff2_w, H, NI);
    }
#undef QL
    if (st != MP_OK) {
        mp__model_quant_free(m);
        return st;
    }
    m->weight_bytes = m->weight_bytes - before + after;
    mp__log(MP_LOG_DEBUG, "int8: products through %s", qm->fp.wmd ? "oneDNN 1x1 convolutions (weights pre-packed)"
                                                                   : "dnnl_gemm_u8s8s32");
    mp__log(MP_LOG_INFO, "int8: %.1f MB of fp32 weights quantized to %.1f MB; weights now %.1f MB", before / 1048576.0,
            after / 1048576.0, m->weight_bytes / 1048576.0);
    return MP_OK;
}

mp_status mp__model_apply_dtype(mp_model *m, int dtype) {
    switch (dtype) {
    case MP_DTYPE_FP32:
        return mp__model_prepack(m);
    case MP_DTYPE_INT8:
        return mp__model_quantize(m, -1);
    }
    return mp__fail(MP_ERR_INVALID_ARG, "mp_model_config.dtype: %d is neither MP_DTYPE_FP32 nor MP_DTYPE_INT8", dtype);
}

/* ---- run time: activations ----------------------------------------------------------------------- */

/* min and max of one row. GCC vector types (two 8-float accumulators per bound), because its
 * auto-vectorizer turned the plain 16-lane array version into permutes and stack spills (perf
 * annotate of mp__q_rows: 4% of an int8 base forward, most of it conv patches). The select
 * (mask & a) | (~mask & b) is exact, so the result equals the scalar loop's. */
typedef float q_v8f __attribute__((vector_size(32)));
typedef int32_t q_v8i __attribute__((vector_size(32)));

/* a macro, not a function: a vector-typed function outside the clones would change the ABI */
#define Q_SEL(m, a, b) ((q_v8f)(((m) & (q_v8i)(a)) | (~(m) & (q_v8i)(b))))

static inline void row_range(const float *p, int n, float *lo, float *hi) {
    q_v8f mn0 = {0}, mn1 = {0}, mx0 = {0}, mx1 = {0}; /* 0 is in the range: z_a exact */
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        q_v8f a, b;
        memcpy(&a, p + i, sizeof a), memcpy(&b, p + i + 8, sizeof b);
        mn0 = Q_SEL(a < mn0, a, mn0), mn1 = Q_SEL(b < mn1, b, mn1);
        mx0 = Q_SEL(a > mx0, a, mx0), mx1 = Q_SEL(b > mx1, b, mx1);
    }
    float x = 0, y = 0;
    for (; i < n; i++) x = p[i] < x ? p[i] : x, y = p[i] > y ? p[i] : y;
    for (int j = 0; j < 8; j++) {
        x = mn0[j] < x ? mn0[j] : x, x = mn1[j] < x ? mn1[j] : x;
        y = mx0[j] > y ? mx0[j] : y, y = mx1[j] > y ? mx1[j] : y;
    }
    *lo = x, *hi = y;
}

static inline void range_to_scale(float lo, float hi, float *scale, int32_t *zp) {
    float s = (hi - lo) / 255.0f;
    if (!(s > 0)) s = 1.0f; /* an all-zero row */
    float z = -lo / s;
    int32_t zi = (int32_t)(z + 0.5f);
    *scale = s;
    *zp = zi < 0 ? 0 : zi > 255 ? 255 : zi;
}

static inline void quant_row(const float *p, int n, float scale, int32_t zp, uint8_t *o) {
    const float inv = 1.0f / scale, z = (float)zp + 0.5f; /* + 0.5 then truncate: round half up */
    for (int c = 0; c < n; c++) {
        float v = p[c] * inv + z;
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        o[c] = (uint8_t)(int32_t)v;
    }
}

MP_KERNEL void mp__q_rows(const float *x, size_t M, int K, size_t ldx, int per_row, mp__qscratch *s) {
    if (per_row) {
        for (size_t r = 0; r < M; r++) {
            float lo, hi;
            row_range(x + r * ldx, K, &lo, &hi);
            range_to_scale(lo, hi, &s->sa[r], &s->za[r]);
            quant_row(x + r * ldx, K, s->sa[r], s->za[r], s->a + r * (size_t)K);
        }
        return;
    }
    float lo = 0, hi = 0;
    for (size_t r = 0; r < M; r++) {
        float a, b;
        row_range(x + r * ldx, K, &a, &b);
        lo = a < lo ? a : lo, hi = b > hi ? b : hi;
    }
    range_to_scale(lo, hi, &s->sa[0], &s->za[0]);
    for (size_t r = 0; r < M; r++) quant_row(x + r * ldx, K, s->sa[0], s->za[0], s->a + r * (size_t)K);
}

/* C[M][N] (int32) = A[M][K] (u8) B[N][K]^T (s8) (+ C when accumulate). */
static void igemm_nt(size_t M, int N, int K, const uint8_t *A, size_t lda, const int8_t *B, size_t ldb,
                     int accumulate, int32_t *C, size_t ldc) {
#ifdef MP_HAVE_ONEDNN
    const int32_t co = 0;
    mp__gemm_fit_threads((double)M * N * K);
    dnnl_gemm_u8s8s32('N', 'T', 'F', (dnnl_dim_t)M, N, K, 1.0f, A, (dnnl_dim_t)lda, 0, B, (dnnl_dim_t)ldb, 0,
                      accumulate ? 1.0f : 0.0f, C, (dnnl_dim_t)ldc, &co);
#else
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)accumulate, (void)C, (void)ldc;
#endif
}

/* y[m][n] = act(s_a s_n (C - z_a wsum[n]) + b[n]) in place over C (int32 read, float written
 * at the same address). One scale/zero point for all rows unless per_row. The activation is a
 * second pass: applying it row by row while the row is in L1 measured no different (the GELU's
 * arithmetic, not the memory pass, is its cost). */
MP_KERNEL static void dequant(float *y, size_t M, int N, size_t ld, const mp__qscratch *s, int per_row,
                              const mp__qlinear *W, const float *b, int act) {
    const float *restrict ws = W->scale;
    const int32_t *restrict wz = W->wsum;
    for (size_t r = 0; r < M; r++) {
        const size_t i = per_row ? r : 0;
        const float sa = s->sa[i];
        const float za = (float)s->za[i];
        float *o = y + r * ld;
        const int32_t *ci = (const int32_t *)o; /* same address: element c is read, then written */
        if (b)
            for (int c = 0; c < N; c++) o[c] = sa * ws[c] * ((float)ci[c] - za * (float)wz[c]) + b[c];
        else
            for (int c = 0; c < N; c++) o[c] = sa * ws[c] * ((float)ci[c] - za * (float)wz[c]);
    }
    if (act >= 0) mp__k_bias_act(y, M, N, ld, NULL, act);
}

void mp__q_matmul(const mp__qscratch *s, size_t M, const mp__qlinear *W, const float *b, int act, float *out,
                  size_t ldo) {
#ifdef MP_HAVE_ONEDNN
    if (W->wmd) mp__dconv_run(MP__DCONV_U8S8, W->w, W->wmd, W->n, W->k, M, s->a, NULL, 0, 0, out, ldo);
    else
#endif
        igemm_nt(M, W->n, W->k, s->a, (size_t)W->k, W->w, (size_t)W->k, 0, (int32_t *)out, ldo);
    dequant(out, M, W->n, ldo, s, 1, W, b, act);
}

void mp__q_linear(const float *in, size_t M, size_t ldi, const mp__qlinear *W, const float *b, int act, float *out,
                  size_t ldo, mp__qscratch *s) {
    mp__q_rows(in, M, W->k, ldi, 1, s);
    mp__q_matmul(s, M, W, b, act, out, ldo);
}
