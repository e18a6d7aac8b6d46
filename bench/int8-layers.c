/*
 * int8-layers - which conv layers can run in int8: for each layer l alone (and all, and none, and
 * all with the positional conv),
 * RMS of the int8 logits against our fp32 and per-frame argmax agreement, over the committed
 * parity inputs, for the models given. Measurement for BENCHMARKS.md, not a test.
 *   int8-layers MODEL_DIR... [--wav FILE...]   inputs: tests/data/ref/inputs/in{0,1}.npy, plus 16 kHz WAVs
 */
#include "internal.h"
#include "engine/kernels.h"
#include "../tests/int8-support.h"

enum { MAX_IN = 256 };

int main(int argc, char **argv) {
    float *x[MAX_IN];
    size_t n[MAX_IN];
    int n_in = 0, n_dirs = argc - 1;
    for (int i = 0; i < 2; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/ref/inputs/in%d.npy", MP_TEST_DATA, i);
        x[n_in] = npy_load_1d(p, &n[n_in]);
        n_in++;
    }
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--wav")) continue;
        n_dirs = a - 1;
        for (int k = a + 1; k < argc && n_in < MAX_IN; k++) {
            mp_audio *au = NULL;
            MP_ASSERT_OK(mp_audio_load_file(argv[k], NULL, &au));
            MP_ASSERT(mp_audio_rate(au) == 16000);
            size_t len = 0;
            const float *pcm = mp_audio_samples(au, &len);
            x[n_in] = malloc(len * sizeof(float));
            MP_ASSERT(x[n_in]);
            memcpy(x[n_in], pcm, len * sizeof(float));
            n[n_in++] = len;
            mp_audio_free(au);
        }
        break;
    }
    for (int d = 1; d <= n_dirs; d++) {
        mp_model *m32 = load(argv[d], MP_DTYPE_FP32);
        float *ref[MAX_IN];
        size_t T[MAX_IN];
        for (int i = 0; i < n_in; i++) ref[i] = run(m32, x[i], n[i], &T[i]);
        const int nc = m32->hp.n_conv, V = m32->hp.vocab;
        printf("%s (%d conv layers, %d inputs)\n%-12s %10s %10s\n", argv[d], nc, n_in, "int8 convs", "rms", "agree");
        /* -5: all but the positional conv, -4: 3.. only, -3: 2.. only, -2: none, -1: all, else layer c
         * alone; none of the rows but -1 has the positional conv in int8 */
        for (int c = -5; c < nc; c++) {
            if (c == 0) continue;
            int mask = c == -5 ? -1 & ~MP__QUANT_POS : c == -4 ? -1 & ~6 & ~MP__QUANT_POS
                     : c == -3 ? -1 & ~2 & ~MP__QUANT_POS : c == -2 ? 0 : c == -1 ? -1 : 1 << c;
            mp__prepack_set_replace_above(SIZE_MAX); /* keep the plain weights to quantize (prepack.c) */
            mp_model *m = load(argv[d], MP_DTYPE_FP32);
            mp__prepack_set_replace_above(0);
            MP_ASSERT_OK(mp__model_quantize(m, mask));
            double e = 0;
            size_t same = 0, tot = 0;
            for (int i = 0; i < n_in; i++) {
                size_t t = 0;
                float *lg = run(m, x[i], n[i], &t);
                double r = rms(lg, ref[i], t * V);
                e += r * r * (double)t;
                same += agree(lg, ref[i], t, V), tot += t;
                free(lg);
            }
            char name[16];
            snprintf(name, sizeof name,
                     c == -5 ? "all but pos" : c == -4 ? "3.." : c == -3 ? "2.." : c == -2 ? "none" : c == -1 ? "all+pos" : "%d", c);
            printf("%-12s %10.4f %5zu/%zu = %.2f%%\n", name, sqrt(e / (double)tot), same, tot, 100.0 * same / tot);
            mp_model_free(m);
        }
        for (int i = 0; i < n_in; i++) free(ref[i]);
        mp_model_free(m32);
    }
    for (int i = 0; i < n_in; i++) free(x[i]);
    return 0;
}
