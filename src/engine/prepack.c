/*
 * prepack.c - fp32 linears through oneDNN 1x1 convolutions over weights reordered once at load.
 *
 * DESIGN
 *   Why. OpenBLAS packs the weight operand again on every call; for the embedded model's small
 *   shapes (T ~ 400 rows x 256..1024) that and its blocking cost more than the product should.
 *   A linear out [T][N] = in [T][K] W^T is a 1x1 convolution over T time steps (and so is a conv
 *   layer's product over its first `stride` taps, whose patch rows are dense: w2v2.c conv_gemm), whose input and
 *   output are oneDNN's nwc layout as they stand; its weights can be reordered once into the
 *   layout the JIT kernel reads. Forced to AVX2 on this project's Xeon, per shape (399 x 256..3072
 *   x 256..3072, alternating calls in one process, under load): 0.82-0.95 of OpenBLAS's time.
 *
 *   Where. oneDNN's fp32 1x1 kernels, AVX2 (jit_1x1:avx2) and AVX-512 (brgconv_1x1, which
 *   qualifies for wav2vec2-base's linears but not the embedded model's: dnnl-conv.c), only when
 *   one weight layout serves every row count (checked per shape at load; elsewhere the GEMM
 *   backend stays), never under TSan (which cannot see libgomp's synchronization; kernels.c
 *   avoids oneDNN there).
 *
 *   Memory. Small models (linears' fp32 bytes <= PACK_MAX_BYTES: the embedded model, ~13 MB)
 *   get the packed copies beside the plain weights, which stay (the int8 path, tests and
 *   benchmarks read them). Bigger ones (wav2vec2-base: ~340 MB of linears, where a second copy
 *   would break the memory budget) get theirs *instead*: each linear's plain pages are released
 *   (madvise, pointer cleared, as quant.c does for int8) once packed, so the model still holds one
 *   copy, and load-time RSS grows by one layer at most. Such a model can no longer be quantized
 *   (mp__model_quantize says so; load it with MP_DTYPE_INT8 instead). The conv layers' taps are
 *   always copies (the taps past `stride` read the plain weight; ~1% of base's bytes).
 *   Base's 8 s clip on one thread, quiet, against the GEMM path (OpenBLAS): 0.94 of its time forced
 *   to AVX2, 0.93 as-is on an AVX-512 Xeon (BENCHMARKS.md, Finding 6).
 *
 *   Calls. dnnl-conv.c, shared with quant.c: which kernel, the row-count probe, the row tiles.
 *   Bias: oneDNN's bias argument; accumulation (the feed-forward passes): a sum post-op.
 */
#include "kernels.h"
#include "dnnl-conv.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(MP_HAVE_ONEDNN) && !defined(__SANITIZE_THREAD__)
#  define MP_PREPACK 1
#endif

enum { PACK_MAX_BYTES = 64 << 20 };

/* Above this many bytes of linears the packed copies replace the plain weights (tests lower it). */
static _Atomic size_t g_replace_above = PACK_MAX_BYTES;
void mp__prepack_set_replace_above(size_t bytes) { atomic_store(&g_replace_above, bytes ? bytes : PACK_MAX_BYTES); }

#ifdef MP_PREPACK
/* P = the [n][k] sub-matrix of a row-major weight with row stride ld, reordered. 0 on failure. */
static int pack(mp__plinear *P, const float *w, int n, int k, size_t ld) {
    void *buf = NULL, *md = NULL;
    if (!mp__dconv_pack(MP__DCONV_F32, w, n, k, ld, &buf, &md)) return 0;
    P->w = buf, P->wmd = md, P->n = n, P->k = k;
    return 1;
}
#endif

/* File-backed (mmap) pages would be read again on access; anonymous ones would read as zeros,
 * which is why the pointer is cleared. */
void mp__release_pages(const void *p, size_t bytes) {
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, e = a + bytes;
    uintptr_t a1 = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1), e1 = e & ~((uintptr_t)pg - 1);
    if (e1 > a1) madvise((void *)a1, e1 - a1, MADV_DONTNEED);
}

void mp__release_weight(const float **pp, size_t n) {
    if (!*pp) return;
    mp__release_pages(*pp, n * sizeof(float));
    *pp = NULL;
}

void mp__p_linear(const mp__plinear *P, size_t M, const float *in, const float *b, int accumulate, int act,
                  float *out) {
#ifdef MP_PREPACK
    /* GELU (erf), the embedded model's and base's, as oneDNN's post-op (probed at pack time) */
    const int gelu = act == MP_ACT_GELU;
    mp__dconv_run(MP__DCONV_F32, P->w, P->wmd, P->n, P->k, M, in, b, accumulate, gelu, out, (size_t)P->n);
    if (act >= 0 && !gelu) mp__k_bias_act(out, M, P->n, (size_t)P->n, NULL, act);
#else
    (void)in, (void)b, (void)accumulate, (void)act;
    for (size_t r = 0; r < M; r++) memset(out + r * (size_t)P->n, 0, (size_t)P->n * sizeof *out);
#endif
}

static void plinear_free(mp__plinear *P) {
    free(P->w);
    free(P->wmd);
    memset(P, 0, sizeof *P);
}

void mp__model_prepack_free(mp_model *m) {
    if (!m || !m->packed) return;
    mp__pmodel *pm = m->packed;
    plinear_free(&pm->fp);
    for (int l = 0; l < MP_MAX_CONV; l++) plinear_free(&pm->conv[l]);
    if (pm->layers)
        for (int i = 0; i < m->hp.n_layers; i++) {
            mp__player *L = &pm->layers[i];
            plinear_free(&L->q), plinear_free(&L->k), plinear_free(&L->v), plinear_free(&L->o);
            for (int p = 0; p < pm->passes; p++) {
                if (L->ff1) plinear_free(&L->ff1[p]);
                if (L->ff2) plinear_free(&L->ff2[p]);
            }
            free(L->ff1), free(L->ff2);
        }
    free(pm->layers);
    free(pm);
    m->packed = NULL;
}

#ifdef MP_PREPACK
/* Release (mp__release_weight) the plain linears of layer i, whose packed copies exist. */
static void release_layer(mp_model *m, int i) {
    mp__enc_layer *E = &m->layers[i];
    const size_t H = (size_t)m->hp.hidden, NI = (size_t)m->hp.intermediate;
    mp__release_weight(&E->q_w, H * H), mp__release_weight(&E->k_w, H * H);
    mp__release_weight(&E->v_w, H * H), mp__release_weight(&E->o_w, H * H);
    mp__release_weight(&E->ff1_w, NI * H), mp__release_weight(&E->ff2_w, H * NI);
}

/* Layer i's linears packed into L; 0 on failure. */
static int pack_layer(const mp_model *m, const mp__pmodel *pm, int i, mp__player *L) {
    const mp__enc_layer *E = &m->layers[i];
    const size_t H = (size_t)m->hp.hidden, NI = (size_t)m->hp.intermediate;
    L->ff1 = calloc((size_t)pm->passes, sizeof *L->ff1);
    L->ff2 = calloc((size_t)pm->passes, sizeof *L->ff2);
    int ok = L->ff1 && L->ff2 && pack(&L->q, E->q_w, (int)H, (int)H, H) && pack(&L->k, E->k_w, (int)H, (int)H, H) &&
             pack(&L->v, E->v_w, (int)H, (int)H, H) && pack(&L->o, E->o_w, (int)H, (int)H, H);
    for (int p = 0; ok && p < pm->passes; p++) {
        const size_t c0 = (size_t)p * pm->fc, nc = NI - c0 < pm->fc ? NI - c0 : pm->fc;
        ok = pack(&L->ff1[p], E->ff1_w + c0 * H, (int)nc, (int)H, H) &&
             pack(&L->ff2[p], E->ff2_w + c0, (int)H, (int)nc, NI);
    }
    return ok;
}
#endif

mp_status mp__model_prepack(mp_model *m) {
#ifdef MP_PREPACK
    if (!m || m->packed || m->quant || !m->layers || !__builtin_cpu_supports("avx2")) return MP_OK;
    const size_t H = (size_t)m->hp.hidden, NI = (size_t)m->hp.intermediate, C = (size_t)m->hp.conv_dim[m->hp.n_conv - 1];
    const size_t lin = sizeof(float) * (H * C + (size_t)m->hp.n_layers * (4 * H * H + 2 * H * NI));
    size_t taps = 0;
    for (int l = 1; l < m->hp.n_conv; l++)
        taps += sizeof(float) * (size_t)m->conv[l].c_out * (size_t)m->conv[l].stride * (size_t)m->conv[l].c_in;
    const int replace = lin > atomic_load(&g_replace_above);
    if (!replace && lin + taps > PACK_MAX_BYTES) return MP_OK;
    mp__pmodel *pm = calloc(1, sizeof *pm);
    if (!pm) return MP_OK;
    m->packed = pm;
    pm->fc = NI < MP__FFN_COLS ? NI : MP__FFN_COLS;
    pm->passes = (int)((NI + pm->fc - 1) / pm->fc);
    pm->layers = calloc((size_t)m->hp.n_layers, sizeof *pm->layers);
    int ok = pm->layers && pack(&pm->fp, m->fp_w, (int)H, (int)C, C);
    for (int l = 1; ok && l < m->hp.n_conv; l++) { /* optional: a layer left unpacked runs its plain taps */
        const mp__conv_layer *cl = &m->conv[l];
        const size_t K = (size_t)cl->stride * (size_t)cl->c_in; /* w2v2.c conv_gemm's first group */
        if (cl->kernel >= cl->stride) pack(&pm->conv[l], cl->w, cl->c_out, (int)K, (size_t)cl->kernel * cl->c_in);
    }
    /* Layer 0 packs every shape (each probed in mp__dconv_pack) before anything is released, so
     * a CPU whose kernel does not fit leaves the model as it was; a failure after that (out of
     * memory) leaves it without those weights: an error. */
    for (int i = 0; ok && i < m->hp.n_layers; i++) {
        ok = pack_layer(m, pm, i, &pm->layers[i]);
        if (ok && replace) {
            if (i == 0) mp__release_weight(&m->fp_w, H * C);
            release_layer(m, i);
            pm->replaced = 1;
        }
    }
    if (!ok) {
        const int lost = pm->replaced;
        mp__model_prepack_free(m);
        return lost ? mp__fail(MP_ERR_NOMEM, "fp32: out of memory packing the linears (%.0f MB)", lin / 1048576.0)
                    : MP_OK;
    }
    if (replace)
        mp__log(MP_LOG_DEBUG, "fp32: linears packed for oneDNN's 1x1 convolution in place of the plain weights");
    else
        mp__log(MP_LOG_DEBUG, "fp32: linears pre-packed for oneDNN's 1x1 convolution (%.1f MB more)",
                (lin + taps) / 1048576.0);
#else
    (void)m;
#endif
    return MP_OK;
}
