/*
 * bench-gemm - one-thread GEMM rates for the shapes of wav2vec2-base on an 8 s clip (399 frames):
 * OpenBLAS cblas_sgemm vs oneDNN dnnl_sgemm (fp32) vs dnnl_gemm_u8s8s32 (int8, 7-bit weights), and the
 * same products as oneDNN 1x1 convolutions over pre-reordered weights (fp32 and int8: prepack.c, quant.c).
 * All row-major C[M][N] = A[M][K] B[N][K]^T, as the engine calls them. Prints GFLOP/s (Gop/s).
 *   bench-gemm [--repeat N]
 * Environment knobs of the libraries decide the ISA: OPENBLAS_CORETYPE, ONEDNN_MAX_CPU_ISA.
 */
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double best_of(int repeat, void (*fn)(void *), void *ctx) {
    fn(ctx); /* warm-up: packing buffers, page faults */
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        double t0 = now_s();
        fn(ctx);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

typedef struct job {
    int M, N, K;
    float *a, *b, *c;
    uint8_t *qa;
    int8_t *qb;
    int32_t *qc;
} job;

static void run_openblas(void *p) {
    job *j = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->M, j->N, j->K, 1.0f, j->a, j->K, j->b, j->K, 0.0f, j->c,
                j->N);
}
static void run_dnnl_f32(void *p) {
    job *j = p;
    dnnl_sgemm('N', 'T', j->M, j->N, j->K, 1.0f, j->a, j->K, j->b, j->K, 0.0f, j->c, j->N);
}
static void run_dnnl_s8(void *p) {
    job *j = p;
    int32_t co = 0;
    dnnl_gemm_u8s8s32('N', 'T', 'F', j->M, j->N, j->K, 1.0f, j->qa, j->K, 0, j->qb, j->K, 0, 0.0f, j->qc, j->N, &co);
}

/* The same product as a 1x1 convolution over M steps (nwc in and out, weights reordered once into the
 * kernel's layout), as src/engine/prepack.c and quant.c run it on AVX2. */
typedef struct conv1x1 {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
} conv1x1;

static int conv_make(conv1x1 *c, job *j, int int8) {
    dnnl_memory_desc_t src, wplain, wany, dst;
    dnnl_dims_t ds = {1, j->K, j->M}, dw = {j->N, j->K, 1}, dd = {1, j->N, j->M}, one = {1}, zero = {0};
    dnnl_data_type_t ta = int8 ? dnnl_u8 : dnnl_f32, tw = int8 ? dnnl_s8 : dnnl_f32, tc = int8 ? dnnl_s32 : dnnl_f32;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd, rpd;
    dnnl_primitive_t reorder;
    dnnl_memory_t wp;
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) || dnnl_stream_create(&c->stream, c->eng, 0) ||
        dnnl_memory_desc_init_by_tag(&src, 3, ds, ta, dnnl_nwc) || dnnl_memory_desc_init_by_tag(&wplain, 3, dw, tw, dnnl_oiw) ||
        dnnl_memory_desc_init_by_tag(&wany, 3, dw, tw, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&dst, 3, dd, tc, dnnl_nwc) ||
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wany, NULL, &dst,
                                           one, zero, zero) ||
        dnnl_primitive_desc_create(&pd, &cd, NULL, c->eng, NULL) || dnnl_primitive_create(&c->prim, pd))
        return 0;
    const dnnl_memory_desc_t *wd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    void *a = int8 ? (void *)j->qa : (void *)j->a, *b = int8 ? (void *)j->qb : (void *)j->b;
    void *out = int8 ? (void *)j->qc : (void *)j->c;
    if (dnnl_memory_create(&c->src, &src, c->eng, a) || dnnl_memory_create(&c->dst, &dst, c->eng, out) ||
        dnnl_memory_create(&c->wei, wd, c->eng, DNNL_MEMORY_ALLOCATE) || dnnl_memory_create(&wp, &wplain, c->eng, b) ||
        dnnl_reorder_primitive_desc_create(&rpd, &wplain, c->eng, wd, c->eng, NULL) ||
        dnnl_primitive_create(&reorder, rpd))
        return 0;
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, wp}, {DNNL_ARG_TO, c->wei}};
    int ok = !dnnl_primitive_execute(reorder, c->stream, 2, ra) && !dnnl_stream_wait(c->stream);
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    fprintf(stderr, "  %d x %d x %d %s conv: %s\n", j->M, j->N, j->K, int8 ? "int8" : "fp32", impl);
    dnnl_primitive_destroy(reorder), dnnl_primitive_desc_destroy(rpd), dnnl_memory_destroy(wp);
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

static void conv_free(conv1x1 *c) {
    dnnl_memory_destroy(c->src), dnnl_memory_destroy(c->wei), dnnl_memory_destroy(c->dst);
    dnnl_primitive_destroy(c->prim), dnnl_stream_destroy(c->stream), dnnl_engine_destroy(c->eng);
}

static void run_conv(void *p) {
    conv1x1 *c = p;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->wei}, {DNNL_ARG_DST, c->dst}};
    dnnl_primitive_execute(c->prim, c->stream, 3, args);
    dnnl_stream_wait(c->stream);
}

int main(int argc, char **argv) {
    int repeat = 10;
    if (argc == 3 && !strcmp(argv[1], "--repeat")) repeat = atoi(argv[2]);
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    static const int shapes[][3] = {{399, 2304, 768}, {399, 768, 768}, {399, 3072, 768}, {399, 768, 3072},
                                    {1599, 512, 1536}, {399, 512, 1024}, {399, 256, 256}, {399, 1024, 256},
                                    {399, 256, 1024}, {512, 256, 512}, {32, 32, 4}};
    printf("%-18s %10s %10s %12s %12s %12s\n", "M x N x K", "openblas", "dnnl_sgemm", "dnnl_u8s8s32", "conv1x1_f32",
           "conv1x1_s8");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        job j = {.M = shapes[s][0], .N = shapes[s][1], .K = shapes[s][2]};
        size_t na = (size_t)j.M * j.K, nb = (size_t)j.N * j.K, nc = (size_t)j.M * j.N;
        j.a = malloc(na * 4), j.b = malloc(nb * 4), j.c = malloc(nc * 4);
        j.qa = malloc(na), j.qb = malloc(nb), j.qc = malloc(nc * 4);
        if (!j.a || !j.b || !j.c || !j.qa || !j.qb || !j.qc) return 1;
        srand(1);
        for (size_t i = 0; i < na; i++) j.a[i] = (float)rand() / RAND_MAX - 0.5f, j.qa[i] = (uint8_t)(rand() & 255);
        for (size_t i = 0; i < nb; i++) j.b[i] = (float)rand() / RAND_MAX - 0.5f, j.qb[i] = (int8_t)(rand() % 127 - 63);
        double ops = 2.0 * j.M * j.N * j.K * 1e-9;
        double t1 = best_of(repeat, run_openblas, &j), t2 = best_of(repeat, run_dnnl_f32, &j),
               t3 = best_of(repeat, run_dnnl_s8, &j);
        conv1x1 cf, cq;
        double t4 = conv_make(&cf, &j, 0) ? best_of(repeat, run_conv, &cf) : 0;
        double t5 = conv_make(&cq, &j, 1) ? best_of(repeat, run_conv, &cq) : 0;
        conv_free(&cf), conv_free(&cq);
        char name[40];
        snprintf(name, sizeof name, "%d x %d x %d", j.M, j.N, j.K);
        printf("%-18s %10.1f %10.1f %12.1f %12.1f %12.1f\n", name, ops / t1, ops / t2, ops / t3, t4 > 0 ? ops / t4 : 0,
               t5 > 0 ? ops / t5 : 0);
        free(j.a), free(j.b), free(j.c), free(j.qa), free(j.qb), free(j.qc);
    }
    return 0;
}
