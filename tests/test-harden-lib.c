/* test-harden-lib.c - the library's side of server hardening: decoded audio charged to a caller's
 * memory budget before it is allocated (mp_audio_config.reserve_fn), and requests cancelled at the
 * next chunk or while waiting for a worker (mp_request_config.cancel_fn). */
#include "modelpool.h"
#include "test.h"

#include <pthread.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

/* ---- memory budget ------------------------------------------------------------------------------ */

typedef struct budget {
    size_t limit, total, first, n_calls;
} budget;

static int take(size_t bytes, void *ud) {
    budget *b = ud;
    if (!b->n_calls++) b->first = bytes;
    if (b->total + bytes > b->limit) return 0;
    b->total += bytes;
    return 1;
}

/* A FLAC file of `seconds` of digital silence at 8 kHz: a few KB that decode to a lot of samples. */
static char *silent_flac(double seconds) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/mp-harden-%d.flac", (int)getpid());
    SF_INFO info = {.samplerate = 8000, .channels = 1, .format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    MP_ASSERT(f);
    short zero[8000] = {0};
    for (int i = 0; i < (int)seconds; i++) MP_ASSERT_EQ(sf_writef_short(f, zero, 8000), 8000);
    sf_close(f);
    return path;
}

static void budget_declared(void) {
    char *path = silent_flac(300);
    mp_audio_config cfg = mp_audio_default_config();
    budget b = {.limit = 1 << 20};
    cfg.reserve_fn = take;
    cfg.reserve_user_data = &b;
    mp_audio *a = NULL;
    /* 300 s at 16 kHz float = 19.2 MB, charged in one piece before any sample is decoded: refused */
    MP_ASSERT_STATUS(mp_audio_load_file(path, &cfg, &a), MP_ERR_NOMEM);
    MP_ASSERT(a == NULL);
    MP_ASSERT_EQ(b.n_calls, 1);
    MP_ASSERT(b.first >= (size_t)300 * 16000 * sizeof(float));
    MP_ASSERT(strstr(mp_last_error(), "memory budget"));
    /* with room for it: the same charge up front, and the buffer never goes beyond it */
    b = (budget){.limit = 64 << 20};
    MP_ASSERT_OK(mp_audio_load_file(path, &cfg, &a));
    size_t n = 0;
    mp_audio_samples(a, &n);
    MP_ASSERT_EQ(n, 300 * 16000);
    MP_ASSERT(b.first >= n * sizeof(float));
    MP_ASSERT(b.total <= n * sizeof(float) + 16);
    MP_ASSERT_EQ(mp_audio_reserved_bytes(a), b.total);
    mp_audio_free(a);
    /* a header declaring more than max_duration_s is refused before decoding, with or without a budget */
    cfg.max_duration_s = 60;
    b = (budget){.limit = 64 << 20};
    MP_ASSERT_STATUS(mp_audio_load_file(path, &cfg, &a), MP_ERR_AUDIO_FORMAT);
    MP_ASSERT(strstr(mp_last_error(), "header declares 300.0 s"));
    MP_ASSERT_EQ(b.n_calls, 0);
    cfg.reserve_fn = NULL;
    MP_ASSERT_STATUS(mp_audio_load_file(path, &cfg, &a), MP_ERR_AUDIO_FORMAT);
    unlink(path);
}

/* AMR-NB has no length in its header: the buffer is charged as it grows, at most 1.5x what it holds. */
static void budget_growing(void) {
    size_t n_frames = 3000; /* NO_DATA frames: one byte each, 20 ms of silence */
    unsigned char *amr = malloc(6 + n_frames);
    MP_ASSERT(amr);
    memcpy(amr, "#!AMR\n", 6);
    memset(amr + 6, 0x7C, n_frames); /* FT 15 (NO_DATA), Q = 1 */
    mp_audio_config cfg = mp_audio_default_config();
    budget b = {.limit = 64 << 20};
    cfg.reserve_fn = take;
    cfg.reserve_user_data = &b;
    mp_audio *a = NULL;
    MP_ASSERT_OK(mp_audio_load_memory(amr, 6 + n_frames, &cfg, &a));
    size_t n = 0;
    mp_audio_samples(a, &n);
    MP_ASSERT_EQ(n, n_frames * 320); /* 60 s at 16 kHz */
    MP_ASSERT(b.n_calls > 1);
    MP_ASSERT(b.total >= n * sizeof(float) && b.total <= n * sizeof(float) * 3 / 2);
    MP_ASSERT_EQ(mp_audio_reserved_bytes(a), b.total);
    mp_audio_free(a);
    /* refused part way: the load fails, nothing leaks (ASan), no charge beyond the limit */
    b = (budget){.limit = 1 << 20};
    MP_ASSERT_STATUS(mp_audio_load_memory(amr, 6 + n_frames, &cfg, &a), MP_ERR_NOMEM);
    MP_ASSERT(b.total <= b.limit);
    free(amr);
}

/* ---- cancellation ------------------------------------------------------------------------------- */

typedef struct canceller {
    atomic_int calls, after; /* cancel from the `after`-th call on */
} canceller;

static int cancel_after(void *ud) {
    canceller *c = ud;
    return atomic_fetch_add(&c->calls, 1) + 1 >= atomic_load(&c->after);
}

static void workers_idle(mp_pool *pool) {
    mp_pool_stats s;
    MP_ASSERT_OK(mp_pool_get_stats(pool, &s));
    MP_ASSERT_EQ(s.busy_models, 0);
    MP_ASSERT_EQ(s.available_models, s.pool_size);
}

static void cancel_stream(void) {
    mp_model *m = NULL;
    mp_pool *pool = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 1, &m));
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = 1;
    MP_ASSERT_OK(mp_pool_create(m, &pc, &pool));
    size_t n = 16000 * 120; /* 2 minutes: 7 chunks of 20 s */
    float *pcm = calloc(n, sizeof *pcm);
    MP_ASSERT(pcm);
    canceller c = {.after = 5}; /* each chunk checks twice: before it runs and before it acquires */
    mp_request_config req = mp_request_default_config();
    req.cancel_fn = cancel_after;
    req.cancel_user_data = &c;
    mp_stream *s = NULL;
    MP_ASSERT_OK(mp_stream_create(pool, 16000, &req, &s));
    MP_ASSERT_STATUS(mp_stream_write(s, pcm, n), MP_ERR_CANCELLED);
    /* two chunks ran, the third was not started: far fewer than the 7 chunks of the input */
    MP_ASSERT(atomic_load(&c.calls) >= 3 && atomic_load(&c.calls) <= 6);
    mp_result *res = NULL;
    MP_ASSERT_STATUS(mp_stream_finish(s, &res), MP_ERR_CANCELLED); /* failed for good */
    mp_stream_free(s);
    workers_idle(pool);
    mp_pool_stats st;
    MP_ASSERT_OK(mp_pool_get_stats(pool, &st));
    MP_ASSERT_EQ(st.completed, 2);
    /* the whole-request path (mp_pool_transcribe, chunked inside one lease) stops too */
    atomic_store(&c.calls, 0);
    MP_ASSERT_STATUS(mp_pool_transcribe(pool, pcm, n, 16000, &req, &res), MP_ERR_CANCELLED);
    MP_ASSERT(res == NULL);
    workers_idle(pool);
    free(pcm);
    mp_pool_free(pool);
    mp_model_free(m);
}

typedef struct waiter_arg {
    mp_pool *pool;
    mp_request_config req;
    mp_status st;
    double waited_s;
} waiter_arg;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *wait_for_worker(void *p) {
    waiter_arg *w = p;
    float pcm[16000] = {0};
    mp_result *res = NULL;
    double t0 = now_s();
    w->st = mp_pool_transcribe(w->pool, pcm, 16000, 16000, &w->req, &res);
    w->waited_s = now_s() - t0;
    mp_result_free(res);
    return NULL;
}

static int flag_set(void *ud) { return atomic_load((atomic_int *)ud); }

/* A request waiting (with no timeout) behind a busy worker gives up within ~100 ms of cancellation,
 * and its place in the queue goes: the next waiter is served. */
static void cancel_waiting(void) {
    mp_model *m = NULL;
    mp_pool *pool = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 1, &m));
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = 1;
    MP_ASSERT_OK(mp_pool_create(m, &pc, &pool));
    mp_lease *held = NULL;
    MP_ASSERT_OK(mp_pool_acquire(pool, -1, &held));
    atomic_int gone = 0;
    waiter_arg w = {.pool = pool, .req = mp_request_default_config()};
    w.req.cancel_fn = flag_set;
    w.req.cancel_user_data = &gone;
    pthread_t t;
    MP_ASSERT_EQ(pthread_create(&t, NULL, wait_for_worker, &w), 0);
    usleep(300 * 1000);
    mp_pool_stats s;
    MP_ASSERT_OK(mp_pool_get_stats(pool, &s));
    MP_ASSERT_EQ(s.queue_depth, 1);
    double t0 = now_s();
    atomic_store(&gone, 1);
    pthread_join(t, NULL);
    MP_ASSERT_STATUS(w.st, MP_ERR_CANCELLED);
    MP_ASSERT(now_s() - t0 < 1.0);
    MP_ASSERT_OK(mp_pool_get_stats(pool, &s));
    MP_ASSERT_EQ(s.queue_depth, 0);
    MP_ASSERT_OK(mp_lease_release(held));
    /* not cancelled: a waiter is granted the worker when it is released */
    atomic_store(&gone, 0);
    MP_ASSERT_OK(mp_pool_acquire(pool, -1, &held));
    MP_ASSERT_EQ(pthread_create(&t, NULL, wait_for_worker, &w), 0);
    usleep(250 * 1000);
    MP_ASSERT_OK(mp_lease_release(held));
    pthread_join(t, NULL);
    MP_ASSERT_OK(w.st);
    workers_idle(pool);
    mp_pool_free(pool);
    mp_model_free(m);
}

static const mp_test_case cases[] = {
    {"budget_declared", budget_declared},
    {"budget_growing", budget_growing},
    {"cancel_stream", cancel_stream},
    {"cancel_waiting", cancel_waiting},
};
MP_TEST_MAIN(cases)
