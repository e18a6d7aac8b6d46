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
 *   Where. Only oneDNN's AVX2 fp32 1x1 kernel (jit_1x1:avx2; AVX-512 CPUs keep their current GEMM
 *   backend), only when one weight layout serves every row count (checked per shape at load),
 *   never under TSan (which cannot see libgomp's synchronization; kernels.c avoids oneDNN there).
 *
 *   Memory. The packed copies are made beside the plain weights, which stay (the int8 path, the
 *   converter and tests read them), so this is done only when the linears' fp32 bytes are at most
 *   PACK_MAX_BYTES: the embedded model (~13 MB) gets it, wav2vec2-base (~340 MB of linears, where
 *   a second copy would break the memory budget) does not. The copies are shared by all workers.
 *
 *   Calls. As in quant.c: the primitive is looked up per call in oneDNN's primitive cache (a few
 *   microseconds), for the calling thread's OpenMP team size, in row tiles of bounded sizes.
 *   Bias: oneDNN's bias argument; accumulation (the feed-forward passes): a sum post-op.
 */
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(MP_HAVE_ONEDNN) && !defined(__SANITIZE_THREAD__)
#  define MP_PREPACK 1
#  include <dnnl.h>
#  include <pthread.h>
#endif

enum { PACK_MAX_BYTES = 64 << 20 };

#ifdef MP_PREPACK
enum { TILE = 512 }; /* rows per call at most (w2v2.c's blocks are <= 512 rows anyway) */

static dnnl_engine_t g_engine;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void engine_init(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) g_engine = NULL;
}
static dnnl_engine_t engine(void) {
    pthread_once(&g_once, engine_init);
    return g_engine;
}

/* Primitive descriptor of out [rows][n] = in [rows][k] W^T (+ bias) (+= with sum); wmd NULL: the
 * layout the implementation prefers. NULL on failure. */
static dnnl_primitive_desc_t pd_make(size_t rows, int n, int k, const dnnl_memory_desc_t *wmd, int bias, int sum) {
    dnnl_engine_t eng = engine();
    if (!eng) return NULL;
    dnnl_memory_desc_t src, wany, dst, bmd;
    dnnl_dims_t ds = {1, k, (dnnl_dim_t)rows}, dw = {n, k, 1}, dd = {1, n, (dnnl_dim_t)rows}, db = {n};
    dnnl_dims_t one = {1}, zero = {0};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_tag(&src, 3, ds, dnnl_f32, dnnl_nwc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wany, 3, dw, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst, 3, dd, dnnl_f32, dnnl_nwc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&bmd, 1, db, dnnl_f32, dnnl_a) != dnnl_success ||
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src,
                                           wmd ? wmd : &wany, bias ? &bmd : NULL, &dst, one, zero,
                                           zero) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    int ok = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && sum)
        ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (!ok || dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL) != dnnl_success) pd = NULL;
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

static int pd_is_avx2_jit(dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    return dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
           !strcmp(impl, "jit_1x1:avx2");
}

/* The layout of a full tile, if tiles of 1, 7, 16, 100 and TILE rows, with and without bias and
 * sum, all take the AVX2 kernel in it. */
static int pick_layout(int n, int k, dnnl_memory_desc_t *wmd) {
    dnnl_primitive_desc_t full = pd_make(TILE, n, k, NULL, 0, 0);
    int ok = full && pd_is_avx2_jit(full);
    if (ok) *wmd = *dnnl_primitive_desc_query_md(full, dnnl_query_weights_md, 0);
    if (full) dnnl_primitive_desc_destroy(full);
    static const size_t probe[] = {1, 7, 16, 100, TILE};
    for (size_t i = 0; ok && i < sizeof probe / sizeof probe[0]; i++)
        for (int v = 0; ok && v < 3; v++) {
            dnnl_primitive_desc_t pd = pd_make(probe[i], n, k, wmd, v == 1, v == 2);
            ok = pd && pd_is_avx2_jit(pd);
            if (pd) dnnl_primitive_desc_destroy(pd);
        }
    return ok;
}

/* P = the [n][k] sub-matrix of a row-major weight with row stride ld, reordered. 0 on failure. */
static int pack(mp__plinear *P, const float *w, int n, int k, size_t ld) {
    dnnl_memory_desc_t plain, blocked;
    dnnl_dims_t dw = {n, k, 1}, strides = {(dnnl_dim_t)ld, 1, 1};
    if (!w || !pick_layout(n, k, &blocked) ||
        dnnl_memory_desc_init_by_strides(&plain, 3, dw, dnnl_f32, strides) != dnnl_success)
        return 0;
    size_t bytes = dnnl_memory_desc_get_size(&blocked);
    P->w = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    P->wmd = malloc(sizeof blocked);
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_stream_t stream = NULL;
    int ok = P->w && P->wmd && dnnl_memory_create(&from, &plain, engine(), (void *)w) == dnnl_success &&
             dnnl_memory_create(&to, &blocked, engine(), P->w) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &plain, engine(), &blocked, engine(), NULL) == dnnl_success &&
             dnnl_primitive_create(&reorder, rpd) == dnnl_success &&
             dnnl_stream_create(&stream, engine(), dnnl_stream_default_flags) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        ok = dnnl_primitive_execute(reorder, stream, 2, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success;
    }
    if (stream) dnnl_stream_destroy(stream);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    if (ok) memcpy(P->wmd, &blocked, sizeof blocked);
    P->n = n, P->k = k;
    return ok;
}

static int tile(const mp__plinear *P, size_t rows, const float *in, const float *b, int sum, float *out,
                dnnl_stream_t stream) {
    dnnl_primitive_desc_t pd = pd_make(rows, P->n, P->k, P->wmd, b != NULL, sum);
    if (!pd) return 0;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ma = NULL, mw = NULL, mc = NULL, mb = NULL, ms = NULL;
    void *pad = NULL;
    const dnnl_memory_desc_t *sd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const size_t pad_bytes = sd ? dnnl_memory_desc_get_size(sd) : 0;
    int ok = dnnl_primitive_create(&prim, pd) == dnnl_success &&
             dnnl_memory_create(&ma, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), engine(), (void *)in) ==
                 dnnl_success &&
             dnnl_memory_create(&mw, P->wmd, engine(), P->w) == dnnl_success &&
             dnnl_memory_create(&mc, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), engine(), out) ==
                 dnnl_success;
    if (ok && b)
        ok = dnnl_memory_create(&mb, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), engine(),
                                (void *)b) == dnnl_success;
    if (ok && pad_bytes) ok = (pad = malloc(pad_bytes)) && dnnl_memory_create(&ms, sd, engine(), pad) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mc}};
        int na = 3;
        if (mb) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
        if (ms) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, ms};
        ok = dnnl_primitive_execute(prim, stream, na, args) == dnnl_success;
    }
    if (ms) dnnl_memory_destroy(ms);
    free(pad);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    if (mw) dnnl_memory_destroy(mw);
    if (ma) dnnl_memory_destroy(ma);
    if (prim) dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    return ok;
}
#endif /* MP_PREPACK */

void mp__p_linear(const mp__plinear *P, size_t M, const float *in, const float *b, int accumulate, float *out) {
#ifdef MP_PREPACK
    mp__gemm_fit_threads((double)M * P->n * P->k); /* before pd_make, which fixes the team size */
    dnnl_stream_t stream = NULL;
    int ok = dnnl_stream_create(&stream, engine(), dnnl_stream_default_flags) == dnnl_success;
    const size_t K = (size_t)P->k, N = (size_t)P->n;
    for (size_t r = 0; ok && r < M;) { /* tiles: TILE, one multiple of 16, one below 16 */
        size_t left = M - r, rows = left >= TILE ? TILE : left >= 16 ? left & ~(size_t)15 : left;
        ok = tile(P, rows, in + r * K, b, accumulate, out + r * N, stream);
        r += rows;
    }
    if (ok) ok = dnnl_stream_wait(stream) == dnnl_success;
    if (stream) dnnl_stream_destroy(stream);
    if (ok) return;
    mp__log(MP_LOG_ERROR, "fp32: a oneDNN convolution failed (%zu x %d x %d); its output is zero", M, P->n, P->k);
#endif
    (void)in, (void)b, (void)accumulate;
    for (size_t r = 0; r < M; r++) memset(out + r * (size_t)P->n, 0, (size_t)P->n * sizeof *out);
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

void mp__model_prepack(mp_model *m) {
#ifdef MP_PREPACK
    if (!m || m->packed || m->quant || !m->layers || !__builtin_cpu_supports("avx2")) return;
    const size_t H = (size_t)m->hp.hidden, NI = (size_t)m->hp.intermediate, C = (size_t)m->hp.conv_dim[m->hp.n_conv - 1];
    size_t bytes = sizeof(float) * (H * C + (size_t)m->hp.n_layers * (4 * H * H + 2 * H * NI));
    for (int l = 1; l < m->hp.n_conv; l++)
        bytes += sizeof(float) * (size_t)m->conv[l].c_out * (size_t)m->conv[l].stride * (size_t)m->conv[l].c_in;
    if (bytes > PACK_MAX_BYTES) return;
    mp__pmodel *pm = calloc(1, sizeof *pm);
    if (!pm) return;
    m->packed = pm;
    pm->fc = NI < MP__FFN_COLS ? NI : MP__FFN_COLS;
    pm->passes = (int)((NI + pm->fc - 1) / pm->fc);
    pm->layers = calloc((size_t)m->hp.n_layers, sizeof *pm->layers);
    int ok = pm->layers && pack(&pm->fp, m->fp_w, (int)H, (int)C, C);
    for (int l = 1; ok && l < m->hp.n_conv; l++) {
        const mp__conv_layer *cl = &m->conv[l];
        const size_t K = (size_t)cl->stride * (size_t)cl->c_in; /* w2v2.c conv_gemm's first group */
        if (cl->kernel >= cl->stride) ok = pack(&pm->conv[l], cl->w, cl->c_out, (int)K, (size_t)cl->kernel * cl->c_in);
    }
    for (int i = 0; ok && i < m->hp.n_layers; i++) {
        const mp__enc_layer *E = &m->layers[i];
        mp__player *L = &pm->layers[i];
        L->ff1 = calloc((size_t)pm->passes, sizeof *L->ff1);
        L->ff2 = calloc((size_t)pm->passes, sizeof *L->ff2);
        ok = L->ff1 && L->ff2 && pack(&L->q, E->q_w, (int)H, (int)H, H) && pack(&L->k, E->k_w, (int)H, (int)H, H) &&
             pack(&L->v, E->v_w, (int)H, (int)H, H) && pack(&L->o, E->o_w, (int)H, (int)H, H);
        for (int p = 0; ok && p < pm->passes; p++) {
            const size_t c0 = (size_t)p * pm->fc, nc = NI - c0 < pm->fc ? NI - c0 : pm->fc;
            ok = pack(&L->ff1[p], E->ff1_w + c0 * H, (int)nc, (int)H, H) &&
                 pack(&L->ff2[p], E->ff2_w + c0, (int)H, (int)nc, NI);
        }
    }
    if (!ok) {
        mp__model_prepack_free(m);
        return;
    }
    mp__log(MP_LOG_DEBUG, "fp32: linears pre-packed for oneDNN's AVX2 1x1 convolution (%.1f MB more)",
            bytes / 1048576.0);
#else
    (void)m;
#endif
}
