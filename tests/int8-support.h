/* int8-support.h - what tests/test-int8.c and bench/int8-layers.c share to compare a model's int8
 * forward with its fp32 one: loading a model in a dtype (inputs: npy.h's npy_load_1d), one input's logits through a fresh state, and the two measures (per-frame
 * argmax agreement, RMS of the logits). Failures abort through test.h's asserts: for test and
 * measurement programs only. Include after internal.h. */
#ifndef MP_TEST_INT8_SUPPORT_H
#define MP_TEST_INT8_SUPPORT_H

#include "engine/kernels.h"
#include "test.h"
#include "npy.h"

static inline mp_model *load(const char *dir, mp_dtype dt) {
    mp_model_config cfg = mp_model_default_config();
    cfg.dtype = dt;
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_load(dir, &cfg, &m));
    return m;
}

/* logits [T][V] of one input through a fresh state (malloc'ed) */
static inline float *run(const mp_model *m, const float *x, size_t n, size_t *T) {
    mp__state *st = NULL;
    MP_ASSERT_OK(mp__state_create(m, &st));
    *T = mp__model_n_frames(m, n);
    float *lg = malloc(*T * (size_t)m->hp.vocab * sizeof *lg);
    MP_ASSERT(lg);
    MP_ASSERT_OK(mp__forward(m, st, x, n, lg));
    mp__state_free(st);
    return lg;
}

static inline int argmax(const float *p, int V) {
    int b = 0;
    for (int i = 1; i < V; i++)
        if (p[i] > p[b]) b = i;
    return b;
}

static inline size_t agree(const float *a, const float *b, size_t T, int V) {
    size_t k = 0;
    for (size_t t = 0; t < T; t++) k += argmax(a + t * V, V) == argmax(b + t * V, V);
    return k;
}

static inline double rms(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

#endif
