/* bench-clip.c - time one clip through the wav2vec2 forward pass on one worker state: the
 * single-clip speed bar (8 s of wav2vec2-base on 1 thread <= 1.9 s; PyTorch 1.99 s).
 *
 *   bench-clip [--arch base|large|tiny|tiny-large | --model DIR] [--seconds 8] [--threads 1]
 *              [--repeat 5] [--seed 1] [--block N]
 *
 * Builds (or loads) the model, runs one warm-up forward, then `repeat` timed forwards of a fixed
 * synthetic clip, and prints median/min seconds, audio-seconds per second, scratch bytes and
 * GFLOP/s (matrix-product FLOPs counted from the shapes; elementwise work not counted). */
#include "internal.h"
#include "engine/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

/* CPU seconds of the whole process (all BLAS threads): on a shared, loaded machine this is what
 * the clip costs, while wall time also counts waiting for a core. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 2 * multiply-adds of every GEMM of one forward over n samples. */
static double forward_flops(const mp_model *m, size_t n) {
    const mp__hparams *hp = &m->hp;
    double fl = 0, t = (double)n;
    for (int l = 0; l < hp->n_conv; l++) {
        t = floor((t - hp->conv_kernel[l]) / hp->conv_stride[l]) + 1;
        fl += 2.0 * t * m->conv[l].c_out * m->conv[l].kernel * m->conv[l].c_in;
    }
    const double T = t, H = hp->hidden, I = hp->intermediate;
    fl += 2.0 * T * hp->conv_dim[hp->n_conv - 1] * H;                    /* feature projection */
    fl += 2.0 * T * H * (H / hp->pos_groups) * hp->pos_kernel;            /* positional conv */
    fl += hp->n_layers * (8.0 * T * H * H + 4.0 * T * T * H + 4.0 * T * H * I); /* q,k,v,o; attention; FFN */
    fl += 2.0 * T * H * hp->vocab;                                        /* lm_head */
    return fl;
}

static void usage(void) {
    fprintf(stderr, "usage: bench-clip [--arch base|large|tiny|tiny-large | --model DIR] [--seconds S] "
                    "[--threads N] [--repeat N] [--seed N] [--block N] [--vs-block N] [--gemm onednn|openblas|small]\n"
                    "           [--dtype fp32|int8] [--int8-conv MASK (bit l: conv layer l in int8)]\n"
                    "           [--vs-int8-gemm 1 (pre-packed weights vs plain: int8 dnnl_gemm_u8s8s32, fp32 BLAS; alternating)]\n");
}

int main(int argc, char **argv) {
    const char *arch = "base", *model_dir = NULL;
    double seconds = 8;
    int threads = 1, repeat = 5, block = 0, vs_block = 0;
    const char *gemm = NULL, *dtype = "fp32";
    int conv_mask = -1, vs_gemm = 0;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--repeat")) repeat = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--block")) block = atoi(v);
        else if (!strcmp(a, "--vs-block")) vs_block = atoi(v);
        else if (!strcmp(a, "--gemm")) gemm = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--int8-conv")) conv_mask = (int)strtol(v, NULL, 0);
        else if (!strcmp(a, "--vs-int8-gemm")) vs_gemm = atoi(v);
        else { usage(); return 2; }
    }
    if (seconds <= 0 || threads < 1 || repeat < 1) { usage(); return 2; }

    mp_model *m = NULL;
    double t0 = mp__now_s();
    /* int8 with a conv mask quantizes after an fp32 load, so that load keeps its plain weights
     * (a big model's would be packed in their place: prepack.c) */
    if (!strcmp(dtype, "int8")) mp__prepack_set_replace_above(SIZE_MAX);
    mp_status st = model_dir ? mp_model_load(model_dir, NULL, &m) : mp_model_create_random(arch, seed, &m);
    mp__prepack_set_replace_above(0);
    if (st != MP_OK) {
        fprintf(stderr, "bench-clip: %s: %s\n", mp_strerror(st), mp_last_error());
        return 1;
    }
    if (st == MP_OK && !strcmp(dtype, "int8")) st = mp__model_quantize(m, conv_mask);
    else if (st == MP_OK && strcmp(dtype, "fp32")) { usage(); return 2; }
    else if (st == MP_OK && !model_dir) st = mp__model_prepack(m); /* as mp_model_load does for fp32 */
    if (st != MP_OK) {
        fprintf(stderr, "bench-clip: %s: %s\n", mp_strerror(st), mp_last_error());
        return 1;
    }
    double t_load = mp__now_s() - t0;
    mp__blas_set_threads(threads);
    if (gemm && mp__gemm_backend_by_name(gemm) < 0) { usage(); return 2; }
    if (gemm) mp__gemm_set_backend(mp__gemm_backend_by_name(gemm));

    const int rate = m->hp.sample_rate;
    const size_t n = (size_t)(seconds * rate);
    const size_t T = mp__model_n_frames(m, n);
    float *pcm = malloc(n * sizeof *pcm);
    float *logits = malloc((T ? T : 1) * (size_t)m->hp.vocab * sizeof *logits);
    double *times = malloc((size_t)repeat * sizeof *times);
    double *cpu = malloc((size_t)repeat * sizeof *cpu);
    mp__state *state = NULL;
    if (!pcm || !logits || !times || !cpu || mp__state_create(m, &state) != MP_OK) {
        fprintf(stderr, "bench-clip: out of memory\n");
        return 1;
    }
    if (block) mp__state_set_conv_block(state, block);
    /* fixed synthetic clip: a chirp plus a little LCG noise */
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        double ti = (double)i / rate;
        pcm[i] = (float)(0.3 * sin(2 * M_PI * (200 + 300 * ti) * ti) + 0.01 * ((double)(s >> 8) / 16777216.0 - 0.5));
    }

    if (vs_gemm) { /* pre-packed weights vs plain ones (int8: dnnl_gemm_u8s8s32; fp32: the GEMM backend),
                    * alternating in one process */
        const int int8 = !strcmp(dtype, "int8");
        mp_model *m2 = NULL;
        mp__quant_set_prepack(0);
        mp__prepack_set_replace_above(SIZE_MAX); /* m2 keeps its plain weights */
        st = model_dir ? mp_model_load(model_dir, NULL, &m2) : mp_model_create_random(arch, seed, &m2);
        if (st == MP_OK && int8) st = mp__model_quantize(m2, conv_mask);
        if (st == MP_OK) mp__model_prepack_free(m2);
        mp__quant_set_prepack(1);
        mp__prepack_set_replace_above(0);
        mp__state *other = NULL;
        double *t2 = malloc((size_t)repeat * sizeof *t2);
        float *l2 = malloc((T ? T : 1) * (size_t)m->hp.vocab * sizeof *l2);
        if (st != MP_OK || !t2 || !l2 || mp__state_create(m2, &other) != MP_OK) return 1;
        st = mp__forward(m, state, pcm, n, logits);
        if (st == MP_OK) st = mp__forward(m2, other, pcm, n, l2);
        for (int r = 0; r < repeat && st == MP_OK; r++) { /* ABBA: which one runs first alternates */
            double c = cpu_s();
            if (r % 2 == 0) {
                st = mp__forward(m, state, pcm, n, logits);
                double c2 = cpu_s();
                if (st == MP_OK) st = mp__forward(m2, other, pcm, n, l2);
                cpu[r] = c2 - c, t2[r] = cpu_s() - c2;
            } else {
                st = mp__forward(m2, other, pcm, n, l2);
                double c2 = cpu_s();
                if (st == MP_OK) st = mp__forward(m, state, pcm, n, logits);
                t2[r] = c2 - c, cpu[r] = cpu_s() - c2;
            }
        }
        if (st != MP_OK) return 1;
        int same = !memcmp(logits, l2, T * (size_t)m->hp.vocab * sizeof *l2);
        qsort(cpu, (size_t)repeat, sizeof *cpu, cmp_double);
        qsort(t2, (size_t)repeat, sizeof *t2, cmp_double);
        double md = 0;
        for (size_t i = 0; i < T * (size_t)m->hp.vocab; i++)
            md = fabs(logits[i] - l2[i]) > md ? fabs(logits[i] - l2[i]) : md;
        printf("%s pre-packed (%s): %.4f CPU-s (median of %d); %s: %.4f CPU-s; ratio %.3f; logits %s (max diff %.2g)\n",
               dtype, int8 ? (m->quant->fp.wmd ? "yes" : "no") : (m->packed ? "yes" : "no"), cpu[repeat / 2], repeat,
               int8 ? "dnnl_gemm_u8s8s32" : "plain GEMM", t2[repeat / 2], cpu[repeat / 2] / t2[repeat / 2],
               same ? "identical" : "differ", md);
        mp__state_free(other), mp__state_free(state), free(t2), free(l2);
        free(pcm), free(logits), free(times), free(cpu);
        mp_model_free(m2), mp_model_free(m);
        return same || !int8 ? 0 : 1;
    }
    if (vs_block > 0) { /* the two conv block sizes alternating in one process: machine load hits both alike */
        mp__state *other = NULL;
        if (mp__state_create(m, &other) != MP_OK) return 1;
        mp__state_set_conv_block(other, vs_block);
        double *t2 = malloc((size_t)repeat * sizeof *t2);
        if (!t2) return 1;
        st = mp__forward(m, state, pcm, n, logits);
        if (st == MP_OK) st = mp__forward(m, other, pcm, n, logits);
        for (int r = 0; r < repeat && st == MP_OK; r++) {
            double c = cpu_s();
            st = mp__forward(m, state, pcm, n, logits);
            double c2 = cpu_s();
            if (st == MP_OK) st = mp__forward(m, other, pcm, n, logits);
            cpu[r] = c2 - c, t2[r] = cpu_s() - c2;
        }
        if (st != MP_OK) return 1;
        qsort(cpu, (size_t)repeat, sizeof *cpu, cmp_double);
        qsort(t2, (size_t)repeat, sizeof *t2, cmp_double);
        printf("block %s: %.4f CPU-s (median of %d); block %d: %.4f CPU-s; ratio %.3f\n",
               block ? "as given" : "auto", cpu[repeat / 2], repeat, vs_block, t2[repeat / 2],
               cpu[repeat / 2] / t2[repeat / 2]);
        mp__state_free(other), mp__state_free(state), free(t2);
        free(pcm), free(logits), free(times), free(cpu);
        mp_model_free(m);
        return 0;
    }
    st = mp__forward(m, state, pcm, n, logits); /* warm-up: grows the scratch, faults the weights in */
    for (int r = 0; r < repeat && st == MP_OK; r++) {
        double a = mp__now_s(), c = cpu_s();
        st = mp__forward(m, state, pcm, n, logits);
        times[r] = mp__now_s() - a;
        cpu[r] = cpu_s() - c;
    }
    if (st != MP_OK) {
        fprintf(stderr, "bench-clip: forward: %s: %s\n", mp_strerror(st), mp_last_error());
        return 1;
    }
    double chk = 0;
    for (size_t i = 0; i < T * (size_t)m->hp.vocab; i++) chk += fabs(logits[i]);
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    qsort(cpu, (size_t)repeat, sizeof *cpu, cmp_double);
    double med = repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
    double cmed = repeat % 2 ? cpu[repeat / 2] : 0.5 * (cpu[repeat / 2 - 1] + cpu[repeat / 2]);
    double load1 = -1;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load1) != 1) load1 = -1;
        fclose(lf);
    }
    double flops = forward_flops(m, n);
    printf("gemm        %s, %s\n", mp__gemm_backend_name(mp__gemm_backend()), dtype);
    printf("model       %s (%s), %.1f M params, %.1f MB weights, load %.2f s\n",
           model_dir ? model_dir : arch, m->arch, m->n_params / 1e6, m->weight_bytes / 1e6, t_load);
    printf("clip        %.2f s = %zu samples -> %zu frames; %d BLAS thread(s); %d runs after 1 warm-up\n",
           seconds, n, T, mp__blas_get_threads(), repeat);
    printf("median      %.3f s   (min %.3f s, max %.3f s) wall\n", med, times[0], times[repeat - 1]);
    printf("cpu         %.3f s   (min %.3f s) process CPU time per clip; load average %.2f\n", cmed, cpu[0],
           load1);
    printf("speed       %.2f audio-s per s (median), %.2f (best)\n", seconds / med, seconds / times[0]);
    printf("GFLOP/s     %.1f (median wall), %.1f (per CPU-second), %.1f GFLOP per clip\n", flops / med / 1e9,
           flops / cmed / 1e9, flops / 1e9);
    printf("scratch     %zu bytes (%.2f MB) per worker state\n", mp__state_bytes(state),
           mp__state_bytes(state) / 1e6);
    printf("checksum    %.6e (sum |logits|)\n", chk);
    mp__state_free(state);
    free(pcm), free(logits), free(times), free(cpu);
    mp_model_free(m);
    return 0;
}
