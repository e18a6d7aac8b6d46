/*
 * bench-gemm - one-thread GEMM rates for the shapes of wav2vec2-base on an 8 s clip (399 frames):
 * OpenBLAS cblas_sgemm vs oneDNN dnnl_sgemm (fp32) vs dnnl_gemm_u8s8s32 (int8, 7-bit weights).
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

int main(int argc, char **argv) {
    int repeat = 10;
    if (argc == 3 && !strcmp(argv[1], "--repeat")) repeat = atoi(argv[2]);
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    static const int shapes[][3] = {{399, 2304, 768}, {399, 768, 768}, {399, 3072, 768}, {399, 768, 3072},
                                    {1599, 512, 1536}, {399, 512, 1024}, {32, 32, 4}};
    printf("%-18s %10s %10s %12s\n", "M x N x K", "openblas", "dnnl_sgemm", "dnnl_u8s8s32");
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
        char name[40];
        snprintf(name, sizeof name, "%d x %d x %d", j.M, j.N, j.K);
        printf("%-18s %10.1f %10.1f %12.1f\n", name, ops / t1, ops / t2, ops / t3);
        free(j.a), free(j.b), free(j.c), free(j.qa), free(j.qb), free(j.qc);
    }
    return 0;
}
