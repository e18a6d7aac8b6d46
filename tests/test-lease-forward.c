/* test-lease-forward.c - mp_lease_forward, the network alone on feature-extractor output (what the
 * Python binding's model(input_values) calls): the same logits as a whole request on the raw samples,
 * no second normalization, statistics, misuse. Random "tiny" model: no weight files. */
#include "modelpool.h"
#include "test.h"

#include <math.h>

#define N_IN 16000 /* 1 s at 16 kHz */

/* Deterministic noise plus a tone, amplitude ~0.05 (far from unit variance, so a second
 * normalization would show). */
static void make_input(float *x, size_t n) {
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = 0.03f * (float)((double)(s >> 8) / 16777216.0 - 0.5) + 0.04f * (float)sin(0.05 * (double)i);
    }
}

/* Wav2Vec2FeatureExtractor's do_normalize, in double. */
static void normalize(const float *x, float *y, size_t n) {
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    double mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) sq += (x[i] - mean) * (x[i] - mean);
    double inv = 1.0 / sqrt(sq / (double)n + 1e-7);
    for (size_t i = 0; i < n; i++) y[i] = (float)((x[i] - mean) * inv);
}

static double max_diff(const float *a, const float *b, size_t n, double *max_abs) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    if (max_abs) *max_abs = m;
    return d;
}

typedef struct fixture {
    mp_model *model;
    mp_pool *pool;
    mp_lease *lease;
} fixture;

static void setup(fixture *f) {
    MP_ASSERT_OK(mp_model_create_random("tiny", 7, &f->model));
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = 1;
    MP_ASSERT_OK(mp_pool_create(f->model, &cfg, &f->pool));
    MP_ASSERT_OK(mp_pool_acquire(f->pool, -1, &f->lease));
}

static void teardown(fixture *f) {
    if (f->lease) MP_ASSERT_OK(mp_lease_release(f->lease));
    mp_pool_free(f->pool);
    mp_model_free(f->model);
}

static void test_parity(void) {
    fixture f = {0};
    setup(&f);
    static float raw[N_IN], values[N_IN];
    make_input(raw, N_IN);
    normalize(raw, values, N_IN);

    mp_request_config req = mp_request_default_config();
    req.keep_logits = 1;
    req.chunk_length_s = 0; /* one piece, as the network alone runs */
    mp_result *whole = NULL, *net = NULL, *net_raw = NULL;
    MP_ASSERT_OK(mp_lease_transcribe(f.lease, raw, N_IN, 16000, &req, &whole));
    MP_ASSERT_OK(mp_lease_forward(f.lease, values, N_IN, &net));
    int tw, vw, tn, vn;
    const float *lw = mp_result_logits(whole, &tw, &vw), *ln = mp_result_logits(net, &tn, &vn);
    MP_ASSERT(lw && ln);
    MP_ASSERT_EQ(tn, tw);
    MP_ASSERT_EQ(vn, vw);
    MP_ASSERT_EQ(tn, 49); /* 1 s at stride 320 */
    double m, d = max_diff(ln, lw, (size_t)tn * (size_t)vn, &m);
    MP_ASSERT(d <= 1e-4 * (m > 1 ? m : 1));
    MP_ASSERT_STR_EQ(mp_result_text(net), "");
    MP_ASSERT_EQ(mp_result_n_words(net), 0);
    MP_ASSERT_NEAR(mp_result_duration_s(net), 1.0, 1e-9);

    /* the raw samples through the network alone are not normalized: other logits */
    MP_ASSERT_OK(mp_lease_forward(f.lease, raw, N_IN, &net_raw));
    const float *lr = mp_result_logits(net_raw, NULL, NULL);
    MP_ASSERT(max_diff(lr, lw, (size_t)tn * (size_t)vn, NULL) > 100 * d + 1e-3);

    mp_result_free(whole);
    mp_result_free(net);
    mp_result_free(net_raw);
    teardown(&f);
}

static void test_short_and_stats(void) {
    fixture f = {0};
    setup(&f);
    float x[100] = {0};
    mp_result *r = NULL;
    MP_ASSERT_OK(mp_lease_forward(f.lease, x, 100, &r)); /* below the receptive field: no frames */
    int t = -1, v = -1;
    MP_ASSERT(mp_result_logits(r, &t, &v) == NULL);
    MP_ASSERT_EQ(t, 0);
    mp_result_free(r);
    static float y[N_IN];
    make_input(y, N_IN);
    MP_ASSERT_OK(mp_lease_forward(f.lease, y, N_IN, &r));
    mp_result_free(r);
    MP_ASSERT_OK(mp_lease_release(f.lease));
    f.lease = NULL;
    mp_pool_stats st;
    MP_ASSERT_OK(mp_pool_get_stats(f.pool, &st));
    MP_ASSERT_NEAR(st.audio_seconds, (100.0 + N_IN) / 16000.0, 1e-9);
    MP_ASSERT_EQ(st.completed, 1);
    MP_ASSERT_EQ(st.failed, 0);
    teardown(&f);
}

static void test_misuse(void) {
    fixture f = {0};
    setup(&f);
    float x[4000] = {0};
    mp_result *r = (mp_result *)&f; /* must be reset to NULL on failure */
    MP_ASSERT_STATUS(mp_lease_forward(f.lease, NULL, 4000, &r), MP_ERR_INVALID_ARG);
    MP_ASSERT(r == NULL);
    MP_ASSERT_STATUS(mp_lease_forward(f.lease, x, 4000, NULL), MP_ERR_INVALID_ARG);
    mp_lease *stale = f.lease;
    MP_ASSERT_OK(mp_lease_release(f.lease));
    f.lease = NULL;
    r = (mp_result *)&f;
    MP_ASSERT_STATUS(mp_lease_forward(stale, x, 4000, &r), MP_ERR_MISUSE);
    MP_ASSERT(r == NULL);
    MP_ASSERT_STATUS(mp_lease_forward(NULL, x, 4000, &r), MP_ERR_MISUSE);
    mp_pool_stats st;
    MP_ASSERT_OK(mp_pool_get_stats(f.pool, &st));
    MP_ASSERT_EQ(st.failed, 1); /* the NULL input marked the lease failed */
    teardown(&f);
}

static const mp_test_case cases[] = {
    {"parity", test_parity},
    {"short_and_stats", test_short_and_stats},
    {"misuse", test_misuse},
};

MP_TEST_MAIN(cases)
