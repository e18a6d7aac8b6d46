/* bench-posconv.c - the positional conv's product both ways, alternating in one process (so machine
 * load hits both alike): im2col copy + BLAS GEMM (mp__gemm_nt, 64-row patch blocks, as before) against
 * mp__k_gemm_bt reading the overlapping patch rows in place (the weight transposed per group, then
 * outer-product register tiles), as pos_conv does. Shapes of an 8 s clip (T = 399):
 * base (16 groups of 48 channels, kernel 128) and the embedded model (16 x 16, kernel 64).
 *   bench-posconv [--rounds 5]      prints ms per positional conv (all groups), median of rounds */
#include "internal.h"
#include "engine/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int rounds = argc > 2 && !strcmp(argv[1], "--rounds") ? atoi(argv[2]) : 5;
    if (rounds < 1) rounds = 1;
    mp__blas_set_threads(1);
    const struct { const char *name; size_t Hg, K; } shapes[] = {{"base", 48, 128}, {"digits", 16, 64}};
    const size_t T = 399, G = 16, ROWS = 64;
    for (int s = 0; s < 2; s++) {
        const size_t Hg = shapes[s].Hg, K = shapes[s].K, KH = K * Hg, H = G * Hg;
        float *xg = malloc((T + K) * Hg * sizeof *xg), *w = malloc(G * Hg * KH * sizeof *w);
        float *col = malloc(ROWS * KH * sizeof *col), *o1 = malloc(T * H * sizeof *o1), *o2 = malloc(T * H * sizeof *o2);
        double *t1 = malloc((size_t)rounds * sizeof *t1), *t2 = malloc((size_t)rounds * sizeof *t2);
        double *t3 = malloc((size_t)rounds * sizeof *t3);
        float *wt = malloc(Hg * KH * sizeof *wt), *o3 = malloc(T * H * sizeof *o3);
        if (!xg || !w || !col || !o1 || !o2 || !t1 || !t2 || !t3 || !wt || !o3) return 1;
        for (size_t i = 0; i < (T + K) * Hg; i++) xg[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (size_t i = 0; i < G * Hg * KH; i++) w[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        for (int r = -1; r < rounds; r++) { /* r = -1: warm-up */
            double a = mp__now_s();
            for (size_t g = 0; g < G; g++) /* same input for every group: only the cost matters */
                for (size_t t0 = 0; t0 < T; t0 += ROWS) {
                    size_t nr = T - t0 < ROWS ? T - t0 : ROWS;
                    for (size_t i = 0; i < nr; i++) memcpy(col + i * KH, xg + (t0 + i) * Hg, KH * sizeof *col);
                    mp__gemm_nt(nr, (int)Hg, (int)KH, 1.0f, col, KH, w + g * Hg * KH, KH, 0.0f, o1 + t0 * H + g * Hg, H);
                }
            double c = mp__now_s(), b = c;
            for (size_t g = 0; g < G; g++) { /* transposed per group, as pos_conv does */
                const float *wg = w + g * Hg * KH;
                mp__k_transpose(wg, (int)Hg, (int)KH, wt);
                mp__k_gemm_bt(T, (int)Hg, (int)KH, xg, Hg, wt, o3 + g * Hg, H);
            }
            double d = mp__now_s();
            if (r >= 0) t1[r] = (b - a) * 1e3, t2[r] = (c - b) * 1e3, t3[r] = (d - c) * 1e3;
        }
        double err = 0, err3 = 0, ref = 0;
        for (size_t i = 0; i < T * H; i++) {
            err += (o1[i] - o2[i]) * (double)(o1[i] - o2[i]), ref += o1[i] * (double)o1[i];
            err3 += (o1[i] - o3[i]) * (double)(o1[i] - o3[i]);
        }
        qsort(t1, (size_t)rounds, sizeof *t1, cmp_d), qsort(t2, (size_t)rounds, sizeof *t2, cmp_d);
        qsort(t3, (size_t)rounds, sizeof *t3, cmp_d);
        const double m1 = t1[rounds / 2], m2 = t2[rounds / 2], m3 = t3[rounds / 2], fl = 2.0 * T * H * KH;
        (void)m2, (void)err;
        printf("%-7s T=%zu groups=%zu Hg=%zu K=%zu: im2col+GEMM %.2f ms (%.1f GFLOP/s); transpose + outer-product "
               "tiles %.2f ms (%.1f GFLOP/s): %.2fx; rel. difference %.1e\n",
               shapes[s].name, T, G, Hg, K, m1, fl / (m1 * 1e-3) / 1e9, m3, fl / (m3 * 1e-3) / 1e9, m1 / m3,
               ref > 0 ? sqrt(err3 / ref) : 0.0);
        free(xg), free(w), free(col), free(o1), free(o2), free(o3), free(wt), free(t1), free(t2), free(t3);
    }
    return 0;
}
