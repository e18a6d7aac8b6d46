/* The progress callback of mp_request_config: called once per chunk of a long input, with the
 * audio seconds done growing to the input's length, for whole buffers and for streams. */
#include "modelpool.h"
#include "test.h"

typedef struct calls {
    int n;
    double last;
    int monotonic;
} calls;

static void on_progress(double done_s, void *user) {
    calls *c = user;
    if (done_s < c->last) c->monotonic = 0;
    c->last = done_s;
    c->n++;
}

static float *noise(size_t n) {
    float *x = malloc(n * sizeof *x);
    MP_ASSERT(x);
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = ((float)(s >> 9) / (float)(1u << 23) - 0.5f) * 0.2f;
    }
    return x;
}

static void run(int use_stream) {
    mp_model *m = NULL;
    mp_pool *pool = NULL;
    mp_result *res = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 3, &m));
    MP_ASSERT_OK(mp_pool_create(m, NULL, &pool));
    const size_t n = 50 * 16000; /* 50 s in 10 s chunks: 7 chunks with 10/6 s strides */
    float *pcm = noise(n);
    calls c = {.monotonic = 1};
    mp_request_config req = mp_request_default_config();
    req.chunk_length_s = 10;
    req.stride_length_s = 10.0 / 6;
    req.progress_fn = on_progress;
    req.progress_user_data = &c;
    if (use_stream) {
        mp_stream *s = NULL;
        MP_ASSERT_OK(mp_stream_create(pool, 16000, &req, &s));
        for (size_t off = 0; off < n; off += 7777) MP_ASSERT_OK(mp_stream_write(s, pcm + off, n - off < 7777 ? n - off : 7777));
        MP_ASSERT_OK(mp_stream_finish(s, &res));
        mp_stream_free(s);
    } else {
        MP_ASSERT_OK(mp_pool_transcribe(pool, pcm, n, 16000, &req, &res));
    }
    MP_ASSERT(c.n >= 6);               /* one call per chunk */
    MP_ASSERT(c.monotonic);
    MP_ASSERT_NEAR(c.last, 50.0, 0.03); /* every frame decoded: within one 20 ms frame (+ edge) */
    free(pcm);
    mp_result_free(res);
    mp_pool_free(pool);
    mp_model_free(m);
}

static void test_buffer(void) { run(0); }
static void test_stream(void) { run(1); }

static const mp_test_case cases[] = {{"buffer", test_buffer}, {"stream", test_stream}};
MP_TEST_MAIN(cases)
