/* test-pool.c - the pool: FIFO leases, exclusivity, timeouts, backpressure, shutdown races, misuse,
 * lazy loading, scoped leases, stuck-lease reports, statistics, and the original design's own test
 * (30 threads, pool of 4, one shared processor). All cases use the "tiny" random model. */
#include "internal.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static mp_model *tiny_model(void) {
    mp_model *m = NULL;
    mp_status st = mp_model_create_random("tiny", 7, &m);
    if (st != MP_OK) MP_SKIP("mp_model_create_random(tiny): %s (%s)", mp_strerror(st), mp_last_error());
    return m;
}

static mp_pool *make_pool(mp_model *m, int n_workers, int queue_capacity) {
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = n_workers;
    cfg.queue_capacity = queue_capacity;
    mp_pool *p = NULL;
    MP_ASSERT_OK(mp_pool_create(m, &cfg, &p));
    MP_ASSERT(p != NULL);
    return p;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static mp_pool_stats *stats_of(mp_pool *p) {
    static _Thread_local mp_pool_stats s; /* large (4 KiB); one per thread is plenty */
    MP_ASSERT_OK(mp_pool_get_stats(p, &s));
    return &s;
}

/* Wait (bounded) until the pool reports `depth` queued callers. */
static void wait_queue_depth(mp_pool *p, int depth) {
    for (int i = 0; i < 5000; i++) {
        if (stats_of(p)->queue_depth == depth) return;
        sleep_us(1000);
    }
    MP_FAILF("queue depth never reached %d (now %d)", depth, stats_of(p)->queue_depth);
}

static void assert_identity(mp_pool *p) {
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->busy_models, 0);
    MP_ASSERT_EQ(s->available_models, s->pool_size);
    MP_ASSERT_EQ(s->queue_depth, 0);
    MP_ASSERT_EQ(s->total_requests, s->completed + s->failed + s->rejected + s->timed_out);
    uint64_t per_worker = 0;
    for (int w = 0; w < s->pool_size; w++) per_worker += s->worker_requests[w];
    /* every granted lease was released on some worker (lazy-load failures aside: none here) */
    MP_ASSERT_EQ(per_worker, s->completed + s->failed);
}

/* ---- stress: 30 threads, random holds, mixed outcomes -------------------------------------------- */

enum { STRESS_THREADS = 30, STRESS_ROUNDS = 150, STRESS_WORKERS = 4 };

typedef struct stress_ctx {
    mp_pool *pool;
    atomic_int in_use[STRESS_WORKERS]; /* exclusivity: a worker is never leased twice at once */
    atomic_int holders;                /* concurrent leases; never above the pool size */
    atomic_ullong ok, failed, timeouts, full, other;
} stress_ctx;

typedef struct stress_arg {
    stress_ctx *ctx;
    unsigned seed;
} stress_arg;

static unsigned next_rand(unsigned *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void *stress_thread(void *arg) {
    stress_arg *a = arg;
    stress_ctx *c = a->ctx;
    for (int r = 0; r < STRESS_ROUNDS; r++) {
        unsigned x = next_rand(&a->seed);
        int timeout = (x % 8 == 0) ? 1 : -1; /* some impatient callers time out */
        mp_lease *lease = NULL;
        mp_status st = mp_pool_acquire(c->pool, timeout, &lease);
        if (st == MP_ERR_TIMEOUT) { atomic_fetch_add(&c->timeouts, 1); continue; }
        if (st == MP_ERR_QUEUE_FULL) { atomic_fetch_add(&c->full, 1); sleep_us(200); continue; }
        if (st != MP_OK) { atomic_fetch_add(&c->other, 1); continue; }
        int w = mp_lease_worker(lease);
        MP_ASSERT(w >= 0 && w < STRESS_WORKERS);
        MP_ASSERT_EQ(atomic_exchange(&c->in_use[w], 1), 0);
        MP_ASSERT(atomic_fetch_add(&c->holders, 1) < STRESS_WORKERS);
        sleep_us((long)(next_rand(&a->seed) % 400));
        int fail = next_rand(&a->seed) % 10 == 0;
        if (fail) mp__lease_mark_failed(lease);
        atomic_fetch_sub(&c->holders, 1);
        MP_ASSERT_EQ(atomic_exchange(&c->in_use[w], 0), 1);
        MP_ASSERT_OK(mp_lease_release(lease));
        MP_ASSERT_STATUS(mp_lease_release(lease), MP_ERR_MISUSE); /* a second release changes nothing */
        atomic_fetch_add(fail ? &c->failed : &c->ok, 1);
    }
    return NULL;
}

static void test_stress(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, STRESS_WORKERS, 20); /* 30 callers, 4 workers, 20 queue places */
    stress_ctx c = {.pool = p};
    pthread_t th[STRESS_THREADS];
    stress_arg args[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++) {
        args[i] = (stress_arg){&c, 0x9e3779b9u * (unsigned)(i + 1)};
        MP_ASSERT_EQ(pthread_create(&th[i], NULL, stress_thread, &args[i]), 0);
    }
    for (int i = 0; i < STRESS_THREADS; i++) pthread_join(th[i], NULL);

    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(c.other, 0);
    MP_ASSERT_EQ(s->total_requests, (uint64_t)STRESS_THREADS * STRESS_ROUNDS);
    MP_ASSERT_EQ(s->completed, c.ok);
    MP_ASSERT_EQ(s->failed, c.failed);
    MP_ASSERT_EQ(s->timed_out, c.timeouts);
    MP_ASSERT_EQ(s->rejected, c.full);
    fprintf(stderr, "stress: %llu completed, %llu failed, %llu timed out, %llu queue full\n",
            (unsigned long long)c.ok, (unsigned long long)c.failed, (unsigned long long)c.timeouts,
            (unsigned long long)c.full);
    MP_ASSERT(c.ok > 0 && c.failed > 0);
    MP_ASSERT(s->max_wait_time > 0);
    MP_ASSERT(s->wait_p50 <= s->wait_p95 && s->wait_p95 <= s->wait_p99 && s->wait_p99 <= s->max_wait_time);
    MP_ASSERT(s->service_p50 > 0 && s->service_p50 <= s->service_p99);
    assert_identity(p);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- FIFO: grants follow arrival order, and nobody barges in ----------------------------------------- */

enum { FIFO_N = 12 };

typedef struct fifo_ctx {
    mp_pool *pool;
    pthread_mutex_t mu;
    int order[FIFO_N];
    int n;
} fifo_ctx;

typedef struct fifo_arg {
    fifo_ctx *ctx;
    int id;
} fifo_arg;

static void *fifo_thread(void *arg) {
    fifo_arg *a = arg;
    mp_lease *lease = NULL;
    MP_ASSERT_OK(mp_pool_acquire(a->ctx->pool, -1, &lease));
    pthread_mutex_lock(&a->ctx->mu);
    a->ctx->order[a->ctx->n++] = a->id;
    pthread_mutex_unlock(&a->ctx->mu);
    sleep_us(500);
    MP_ASSERT_OK(mp_lease_release(lease));
    return NULL;
}

static void test_fifo(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1, 0);
    fifo_ctx c = {.pool = p};
    pthread_mutex_init(&c.mu, NULL);
    mp_lease *held = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, 0, &held));
    pthread_t th[FIFO_N];
    fifo_arg args[FIFO_N];
    /* Start the waiters one at a time, each only once the previous is queued: known arrival order. */
    for (int i = 0; i < FIFO_N; i++) {
        args[i] = (fifo_arg){&c, i};
        MP_ASSERT_EQ(pthread_create(&th[i], NULL, fifo_thread, &args[i]), 0);
        wait_queue_depth(p, i + 1);
    }
    /* No barging: the released worker goes straight to the head waiter, so an arrival right after
     * the release finds no free worker. */
    MP_ASSERT_OK(mp_lease_release(held));
    mp_lease *barger = NULL;
    MP_ASSERT_STATUS(mp_pool_acquire(p, 0, &barger), MP_ERR_TIMEOUT);
    MP_ASSERT(barger == NULL);
    for (int i = 0; i < FIFO_N; i++) pthread_join(th[i], NULL);
    MP_ASSERT_EQ(c.n, FIFO_N);
    for (int i = 0; i < FIFO_N; i++) MP_ASSERT_EQ(c.order[i], i);
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->completed, FIFO_N + 1);
    MP_ASSERT_EQ(s->timed_out, 1);
    assert_identity(p);
    pthread_mutex_destroy(&c.mu);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- shutdown races: shut down while 30 threads acquire and release ------------------------------- */

typedef struct race_ctx {
    mp_pool *pool;
    atomic_ullong granted, shut, other;
} race_ctx;

static void *race_thread(void *arg) {
    race_ctx *c = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed | 1u;
    for (;;) {
        mp_lease *lease = NULL;
        mp_status st = mp_pool_acquire(c->pool, -1, &lease);
        if (st == MP_ERR_SHUTDOWN) { atomic_fetch_add(&c->shut, 1); return NULL; }
        if (st != MP_OK) { atomic_fetch_add(&c->other, 1); return NULL; }
        atomic_fetch_add(&c->granted, 1);
        sleep_us((long)(next_rand(&seed) % 300));
        MP_ASSERT_OK(mp_lease_release(lease));
    }
}

static void test_shutdown_race(void) {
    mp_model *m = tiny_model();
    for (int iter = 0; iter < 8; iter++) {
        mp_pool *p = make_pool(m, 1 + iter % 4, 0);
        race_ctx c = {.pool = p};
        pthread_t th[30];
        for (int i = 0; i < 30; i++) MP_ASSERT_EQ(pthread_create(&th[i], NULL, race_thread, &c), 0);
        sleep_us(2000 + 3000 * iter);
        MP_ASSERT_OK(mp_pool_shutdown(p, -1));
        MP_ASSERT_EQ(stats_of(p)->busy_models, 0); /* returned only once every lease came back */
        MP_ASSERT_OK(mp_pool_shutdown(p, 0));     /* idempotent */
        for (int i = 0; i < 30; i++) pthread_join(th[i], NULL);
        MP_ASSERT_EQ(c.other, 0);
        MP_ASSERT_EQ(c.shut, 30); /* every thread ended with MP_ERR_SHUTDOWN, none hung */
        mp_pool_stats *s = stats_of(p);
        MP_ASSERT_EQ(s->completed, c.granted);
        MP_ASSERT_EQ(s->rejected, 30);
        assert_identity(p);
        mp_pool_free(p);
    }
    mp_model_free(m);
}

static void test_shutdown_wait(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 2, 0);
    mp_lease *a = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &a));
    double t0 = mp__now_s();
    MP_ASSERT_STATUS(mp_pool_shutdown(p, 50), MP_ERR_TIMEOUT); /* a lease is still out */
    MP_ASSERT(mp__now_s() - t0 >= 0.045);
    mp_lease *b = NULL;
    MP_ASSERT_STATUS(mp_pool_acquire(p, -1, &b), MP_ERR_SHUTDOWN); /* no new work */
    MP_ASSERT(b == NULL);
    MP_ASSERT(mp_lease_worker(a) >= 0); /* work in flight goes on */
    MP_ASSERT_OK(mp_lease_release(a));
    MP_ASSERT_OK(mp_pool_shutdown(p, -1));
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->rejected, 1);
    MP_ASSERT_EQ(s->completed, 1);
    assert_identity(p);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- timeouts and backpressure -------------------------------------------------------------------- */

static void test_timeout(void) {
    mp_model *m = tiny_model();
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = 1;
    cfg.default_timeout_ms = 30;
    mp_pool *p = NULL;
    MP_ASSERT_OK(mp_pool_create(m, &cfg, &p));
    mp_lease *a = NULL, *b = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, 0, &a));
    double t0 = mp__now_s();
    MP_ASSERT_STATUS(mp_pool_acquire(p, 80, &b), MP_ERR_TIMEOUT);
    double waited = mp__now_s() - t0;
    MP_ASSERT(waited >= 0.075 && waited < 2.0);
    MP_ASSERT(b == NULL);
    t0 = mp__now_s();
    MP_ASSERT_STATUS(mp_pool_acquire(p, -1, &b), MP_ERR_TIMEOUT); /* -1 = the pool's 30 ms */
    waited = mp__now_s() - t0;
    MP_ASSERT(waited >= 0.025 && waited < 2.0);
    MP_ASSERT_STATUS(mp_pool_acquire(p, 0, &b), MP_ERR_TIMEOUT);
    MP_ASSERT_EQ(stats_of(p)->queue_depth, 0); /* timed-out waiters left the queue */
    MP_ASSERT_OK(mp_lease_release(a));
    MP_ASSERT_OK(mp_pool_acquire(p, 0, &b)); /* and did not keep the worker */
    MP_ASSERT_OK(mp_lease_release(b));
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->timed_out, 3);
    MP_ASSERT_EQ(s->completed, 2);
    MP_ASSERT_EQ(s->total_requests, 5);
    assert_identity(p);
    mp_pool_free(p);
    mp_model_free(m);
}

typedef struct waiter_arg {
    mp_pool *pool;
    mp_status st;
} waiter_arg;

static void *acquire_release_thread(void *arg) {
    waiter_arg *a = arg;
    mp_lease *l = NULL;
    a->st = mp_pool_acquire(a->pool, 5000, &l);
    if (a->st == MP_OK) a->st = mp_lease_release(l);
    return NULL;
}

static void test_queue_full(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1, 2);
    mp_lease *held = NULL, *x = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &held));
    pthread_t th[2];
    waiter_arg args[2] = {{p, MP_ERR_INTERNAL}, {p, MP_ERR_INTERNAL}};
    for (int i = 0; i < 2; i++) {
        MP_ASSERT_EQ(pthread_create(&th[i], NULL, acquire_release_thread, &args[i]), 0);
        wait_queue_depth(p, i + 1);
    }
    double t0 = mp__now_s();
    MP_ASSERT_STATUS(mp_pool_acquire(p, -1, &x), MP_ERR_QUEUE_FULL); /* at once, not after a wait */
    MP_ASSERT(mp__now_s() - t0 < 0.5);
    MP_ASSERT(x == NULL);
    MP_ASSERT_EQ(stats_of(p)->rejected, 1);
    MP_ASSERT_OK(mp_lease_release(held));
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        MP_ASSERT_OK(args[i].st);
    }
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->completed, 3);
    MP_ASSERT(s->max_wait_time > 0);
    assert_identity(p);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- misuse ---------------------------------------------------------------------------------------- */

static void test_misuse(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1, 0);
    mp_pool *q = make_pool(m, 1, 0);
    MP_ASSERT_STATUS(mp_lease_release(NULL), MP_ERR_MISUSE);

    mp_lease *a = NULL, *b = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &a));
    MP_ASSERT_OK(mp_lease_release(a));
    MP_ASSERT_STATUS(mp_lease_release(a), MP_ERR_MISUSE);
    /* The same worker is leased again; the old handle must not release the new holder's lease. */
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &b));
    MP_ASSERT_EQ(mp_lease_worker(b), 0);
    MP_ASSERT(a != b);
    MP_ASSERT_STATUS(mp_lease_release(a), MP_ERR_MISUSE);
    MP_ASSERT_EQ(mp_lease_worker(a), -1);
    MP_ASSERT(mp_lease_model(a) == NULL);
    MP_ASSERT_EQ(stats_of(p)->busy_models, 1);
    float logits[64];
    float pcm[400] = {0};
    MP_ASSERT_STATUS(mp__lease_forward(a, pcm, 400, logits), MP_ERR_MISUSE);
    mp_result *res = NULL;
    MP_ASSERT_STATUS(mp_lease_transcribe(a, pcm, 400, 16000, NULL, &res), MP_ERR_MISUSE);
    MP_ASSERT(res == NULL);
    MP_ASSERT_OK(mp_lease_release(b));

    /* A pointer that is no lease at all, and a lease of another pool that was freed since. */
    int not_a_lease = 0;
    MP_ASSERT_STATUS(mp_lease_release((mp_lease *)&not_a_lease), MP_ERR_MISUSE);
    MP_ASSERT_STATUS(mp_lease_release((mp_lease *)((char *)&not_a_lease + 1)), MP_ERR_MISUSE);
    mp_lease *from_q = NULL;
    MP_ASSERT_OK(mp_pool_acquire(q, -1, &from_q));
    MP_ASSERT_OK(mp_lease_release(from_q));
    mp_pool_free(q);
    MP_ASSERT_STATUS(mp_lease_release(from_q), MP_ERR_MISUSE);
    MP_ASSERT_EQ(mp_lease_worker(from_q), -1);

    /* NULL arguments and bad configs */
    mp_lease *l = NULL;
    MP_ASSERT_STATUS(mp_pool_acquire(NULL, -1, &l), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_pool_acquire(p, -1, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_pool_acquire(p, -7, &l), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_pool_with_lease(p, -1, NULL, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_pool_get_stats(p, NULL), MP_ERR_INVALID_ARG);
    mp_pool *bad = (mp_pool *)1;
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = -1;
    MP_ASSERT_STATUS(mp_pool_create(m, &cfg, &bad), MP_ERR_INVALID_ARG);
    MP_ASSERT(bad == NULL);
    cfg = mp_pool_default_config();
    cfg.queue_capacity = -3;
    MP_ASSERT_STATUS(mp_pool_create(m, &cfg, &bad), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_pool_create(NULL, NULL, &bad), MP_ERR_INVALID_ARG);
    mp_pool_free(NULL);

    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->completed, 2); /* the misuse changed no counter */
    assert_identity(p);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- lazy loading and the design's expectations ------------------------------------------------------- */

static void test_lazy(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 4, 0);
    MP_ASSERT_EQ(stats_of(p)->n_workers_loaded, 0);
    MP_ASSERT_EQ(stats_of(p)->scratch_bytes, 0);
    mp_lease *l[3] = {NULL, NULL, NULL};
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &l[0]));
    MP_ASSERT_EQ(stats_of(p)->n_workers_loaded, 1);
    MP_ASSERT_OK(mp_lease_release(l[0]));
    for (int i = 0; i < 5; i++) { /* sequential use keeps reusing the one loaded worker */
        MP_ASSERT_OK(mp_pool_acquire(p, -1, &l[0]));
        MP_ASSERT_EQ(mp_lease_worker(l[0]), 0);
        MP_ASSERT_OK(mp_lease_release(l[0]));
    }
    MP_ASSERT_EQ(stats_of(p)->n_workers_loaded, 1);
    for (int i = 0; i < 3; i++) MP_ASSERT_OK(mp_pool_acquire(p, -1, &l[i]));
    MP_ASSERT_EQ(stats_of(p)->n_workers_loaded, 3);
    MP_ASSERT_EQ(stats_of(p)->busy_models, 3);
    MP_ASSERT_EQ(stats_of(p)->available_models, 1);
    for (int i = 0; i < 3; i++) MP_ASSERT_OK(mp_lease_release(l[i]));
    MP_ASSERT(stats_of(p)->scratch_bytes > 0);
    assert_identity(p);
    mp_pool_free(p);

    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = 3;
    cfg.preload = 1;
    MP_ASSERT_OK(mp_pool_create(m, &cfg, &p));
    MP_ASSERT_EQ(stats_of(p)->n_workers_loaded, 3);
    mp_pool_free(p);
    mp_model_free(m);
}

enum { DESIGN_THREADS = 30, DESIGN_POOL = 4 };

typedef struct design_ctx {
    mp_pool *pool;
    pthread_mutex_t mu;
    pthread_barrier_t start; /* all 30 callers arrive at once, as in the original test */
    const mp_model *processors[DESIGN_THREADS];
    int workers[DESIGN_THREADS];
    int n;
} design_ctx;

static mp_status design_request(mp_lease *lease, void *user) {
    design_ctx *c = user;
    pthread_mutex_lock(&c->mu);
    c->processors[c->n] = mp_lease_model(lease);
    c->workers[c->n] = mp_lease_worker(lease);
    c->n++;
    pthread_mutex_unlock(&c->mu);
    sleep_us(20000); /* a 20 ms "request": 30 of them on 4 workers take ~8 rounds */
    return MP_OK;
}

static void *design_thread(void *arg) {
    design_ctx *c = arg;
    pthread_barrier_wait(&c->start);
    MP_ASSERT_OK(mp_pool_with_lease(c->pool, -1, design_request, c));
    return NULL;
}

/* The original test_model_manager.py "Test 3": 30 threads at once on a pool of 4; one processor,
 * 4 models, waits reported, load balanced over all workers. */
static void test_design(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, DESIGN_POOL, 0);
    design_ctx c = {.pool = p};
    pthread_mutex_init(&c.mu, NULL);
    pthread_barrier_init(&c.start, NULL, DESIGN_THREADS);
    pthread_t th[DESIGN_THREADS];
    double t0 = mp__now_s();
    for (int i = 0; i < DESIGN_THREADS; i++) MP_ASSERT_EQ(pthread_create(&th[i], NULL, design_thread, &c), 0);
    for (int i = 0; i < DESIGN_THREADS; i++) pthread_join(th[i], NULL);
    double wall = mp__now_s() - t0;
    MP_ASSERT_EQ(c.n, DESIGN_THREADS);
    int used[DESIGN_POOL] = {0};
    for (int i = 0; i < DESIGN_THREADS; i++) {
        MP_ASSERT(c.processors[i] == m); /* exactly one processor instance: the shared model */
        MP_ASSERT(c.workers[i] >= 0 && c.workers[i] < DESIGN_POOL);
        used[c.workers[i]]++;
    }
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->pool_size, DESIGN_POOL);
    MP_ASSERT_EQ(s->n_workers_loaded, DESIGN_POOL); /* exactly 4 workers */
    for (int w = 0; w < DESIGN_POOL; w++) {
        MP_ASSERT(used[w] > 0); /* load balancing: every worker served */
        MP_ASSERT_EQ(s->worker_requests[w], (uint64_t)used[w]);
    }
    MP_ASSERT_EQ(s->total_requests, DESIGN_THREADS);
    MP_ASSERT_EQ(s->completed, DESIGN_THREADS);
    MP_ASSERT(wall >= 0.02 * 7); /* 30 / 4 -> 8 rounds of 20 ms (7 is the floor with timing slack) */
    MP_ASSERT(s->avg_wait_time > 0.01 && s->max_wait_time >= s->avg_wait_time);
    MP_ASSERT(s->max_wait_time >= 0.02 * 5); /* the last in line waited several rounds */
    MP_ASSERT(s->service_p50 >= 0.015);
    MP_ASSERT_EQ(s->wait_warning, 0); /* average wait well below the 1 s advice */
    assert_identity(p);
    pthread_barrier_destroy(&c.start);
    pthread_mutex_destroy(&c.mu);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- wait histogram: exact cumulative buckets of the granted waits ----------------------------------- */

static void *hist_waiter(void *arg) {
    mp_lease *lease = NULL;
    MP_ASSERT_OK(mp_pool_acquire(arg, -1, &lease));
    MP_ASSERT_OK(mp_lease_release(lease));
    return NULL;
}

static void test_wait_histogram(void) {
    MP_ASSERT(mp_pool_wait_bucket_s(0) == 0.001 && mp_pool_wait_bucket_s(MP_WAIT_BUCKETS - 1) == 30.0);
    MP_ASSERT(isinf(mp_pool_wait_bucket_s(MP_WAIT_BUCKETS)) && isinf(mp_pool_wait_bucket_s(-1)));
    for (int i = 1; i < MP_WAIT_BUCKETS; i++) MP_ASSERT(mp_pool_wait_bucket_s(i) > mp_pool_wait_bucket_s(i - 1));
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1, 0);
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->wait_count, 0);
    MP_ASSERT_EQ(s->wait_le[MP_WAIT_BUCKETS - 1], 0);
    /* one free grant (no wait), then one that waits while we hold the only worker for 40 ms */
    mp_lease *lease = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &lease));
    pthread_t th;
    MP_ASSERT_EQ(pthread_create(&th, NULL, hist_waiter, p), 0);
    wait_queue_depth(p, 1);
    sleep_us(40000);
    MP_ASSERT_OK(mp_lease_release(lease));
    pthread_join(th, NULL);
    s = stats_of(p);
    MP_ASSERT_EQ(s->wait_count, 2);
    MP_ASSERT(fabs(s->wait_sum_s - s->avg_wait_time * 2) < 1e-9);
    MP_ASSERT(s->max_wait_time >= 0.035);
    MP_ASSERT_EQ(s->wait_le[0], 1);                   /* the free grant: well under 1 ms */
    MP_ASSERT_EQ(s->wait_le[4], 1);                   /* 25 ms: the waiter waited longer */
    for (int i = 1; i < MP_WAIT_BUCKETS; i++) MP_ASSERT(s->wait_le[i] >= s->wait_le[i - 1]);
    for (int i = 0; i < MP_WAIT_BUCKETS; i++)        /* a bucket holds both exactly when it covers the longest */
        MP_ASSERT_EQ(s->wait_le[i], s->max_wait_time <= mp_pool_wait_bucket_s(i) ? 2u : 1u);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- scoped forms ------------------------------------------------------------------------------------ */

static mp_status scoped_ok(mp_lease *lease, void *user) {
    *(int *)user = mp_lease_worker(lease);
    return MP_OK;
}

static mp_status scoped_fail(mp_lease *lease, void *user) {
    (void)lease;
    (void)user;
    return MP_ERR_AUDIO_FORMAT;
}

static void test_scoped(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1, 0);
    int w = -1;
    MP_ASSERT_OK(mp_pool_with_lease(p, -1, scoped_ok, &w));
    MP_ASSERT_EQ(w, 0);
    MP_ASSERT_STATUS(mp_pool_with_lease(p, -1, scoped_fail, NULL), MP_ERR_AUDIO_FORMAT);
    MP_ASSERT_EQ(stats_of(p)->busy_models, 0);
    MP_ASSERT_EQ(stats_of(p)->failed, 1);
    {
        MP_SCOPED_LEASE(lease);
        MP_ASSERT_OK(mp_pool_acquire(p, -1, &lease));
        MP_ASSERT_EQ(stats_of(p)->busy_models, 1);
    } /* released here */
    MP_ASSERT_EQ(stats_of(p)->busy_models, 0);
    {
        MP_SCOPED_LEASE(lease);
        MP_ASSERT_OK(mp_pool_acquire(p, -1, &lease));
        MP_ASSERT_OK(mp_lease_release(lease)); /* released early: the cleanup's second release is harmless */
    }
    {
        MP_SCOPED_LEASE(lease); /* never acquired: nothing to release */
        (void)lease;
    }
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->completed, 3);
    MP_ASSERT_EQ(s->failed, 1);
    assert_identity(p);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- stuck leases --------------------------------------------------------------------------------------- */

static atomic_int stuck_logs;

static void count_log(mp_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == MP_LOG_WARN && strstr(msg, "stuck")) atomic_fetch_add(&stuck_logs, 1);
}

static void test_stuck(void) {
    mp_model *m = tiny_model();
    mp_set_log_callback(count_log, NULL);
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = 2;
    cfg.stuck_lease_s = 0.05;
    mp_pool *p = NULL;
    MP_ASSERT_OK(mp_pool_create(m, &cfg, &p));
    mp_lease *a = NULL, *b = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &a));
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &b));
    MP_ASSERT_OK(mp_lease_release(b)); /* short: never stuck */
    sleep_us(250000);                  /* the watchdog looks every 12.5 ms */
    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_EQ(s->stuck_leases, 1);
    MP_ASSERT_EQ(s->stuck_now, 1);
    MP_ASSERT_EQ(atomic_load(&stuck_logs), 1); /* reported once, not at every scan */
    MP_ASSERT_OK(mp_lease_release(a));
    s = stats_of(p);
    MP_ASSERT_EQ(s->stuck_now, 0);
    MP_ASSERT_EQ(s->stuck_leases, 1);
    mp_pool_free(p);
    mp_set_log_callback(NULL, NULL);
    mp_model_free(m);
}

/* ---- inference under leases, accounting, copies, BLAS threads ------------------------------------------ */

static void test_inference(void) {
    mp_model *m = tiny_model();
    mp_model_info info;
    MP_ASSERT_OK(mp_model_get_info(m, &info));
    /* one BLAS thread per worker whatever the machine: OpenBLAS's own threads are invisible to
     * TSan (false races) */
    mp_pool_config one = mp_pool_default_config();
    one.n_workers = 2;
    one.n_threads_per_worker = 1;
    mp_pool *p = NULL;
    MP_ASSERT_OK(mp_pool_create(m, &one, &p));
    size_t n = 16000;
    float *pcm = malloc(n * sizeof *pcm);
    MP_ASSERT(pcm != NULL);
    unsigned seed = 1;
    for (size_t i = 0; i < n; i++) pcm[i] = (float)((int)(next_rand(&seed) % 2001) - 1000) / 4000.0f;
    mp_result *res = NULL;
    MP_ASSERT_OK(mp_pool_transcribe(p, pcm, n, 16000, NULL, &res));
    MP_ASSERT(res != NULL && mp_result_text(res) != NULL);
    mp_result_free(res);

    mp_lease *l = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &l));
    MP_ASSERT(mp_lease_model(l) == m);
    size_t frames = mp__model_n_frames(m, n / 2);
    float *logits = malloc(frames * (size_t)info.vocab_size * sizeof *logits);
    MP_ASSERT(logits != NULL && frames > 0);
    MP_ASSERT_OK(mp__lease_forward(l, pcm, n / 2, logits));
    MP_ASSERT_OK(mp_lease_release(l));

    mp_pool_stats *s = stats_of(p);
    MP_ASSERT_NEAR(s->audio_seconds, 1.5, 1e-9); /* 1 s transcribed + 0.5 s forward */
    MP_ASSERT(s->busy_seconds > 0);
    MP_ASSERT_NEAR(s->real_time_factor, s->busy_seconds / 1.5, 1e-9);
    MP_ASSERT_EQ(s->weight_bytes, info.weight_bytes);
    MP_ASSERT(s->scratch_bytes > 0);
    MP_ASSERT_EQ(s->completed, 2);
    MP_ASSERT(s->worker_busy_s[0] > 0);
    assert_identity(p);
    mp_pool_free(p);

    /* weight_copies: every worker beyond the first loads its own copy (the original design) */
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = 2;
    cfg.preload = 1;
    cfg.weight_copies = 1;
    cfg.n_threads_per_worker = 1;
    MP_ASSERT_OK(mp_pool_create(m, &cfg, &p));
    MP_ASSERT_EQ(stats_of(p)->weight_bytes, 2 * info.weight_bytes);
    mp_lease *x = NULL, *y = NULL;
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &x));
    MP_ASSERT_OK(mp_pool_acquire(p, -1, &y));
    MP_ASSERT_OK(mp__lease_forward(y, pcm, n / 2, logits)); /* runs on the copy */
    MP_ASSERT(mp_lease_model(y) == m);                       /* still one processor */
    MP_ASSERT_OK(mp_lease_release(x));
    MP_ASSERT_OK(mp_lease_release(y));
    mp_pool_free(p);
    free(logits);
    free(pcm);
    mp_model_free(m);
}

/* max_scratch_bytes: a worker grown past the limit by a long input starts over small at release. */
static void test_scratch_limit(void) {
    mp_model *m = tiny_model();
    mp_model_info info;
    MP_ASSERT_OK(mp_model_get_info(m, &info));
    size_t n = 32000;
    float *pcm = calloc(n, sizeof *pcm);
    float *logits = malloc(mp__model_n_frames(m, n) * (size_t)info.vocab_size * sizeof *logits);
    MP_ASSERT(pcm && logits);
    for (size_t i = 0; i < n; i++) pcm[i] = (float)(i % 50) / 100.0f - 0.25f;
    size_t fresh = 0, grown = 0;
    for (int limited = 0; limited < 2; limited++) {
        mp_pool_config cfg = mp_pool_default_config();
        cfg.n_workers = 1;
        cfg.max_scratch_bytes = limited ? 1 : 0;
        cfg.n_threads_per_worker = 1; /* OpenBLAS's own threads are invisible to TSan (false races) */
        mp_pool *p = NULL;
        MP_ASSERT_OK(mp_pool_create(m, &cfg, &p));
        mp_lease *l = NULL;
        MP_ASSERT_OK(mp_pool_acquire(p, -1, &l));
        size_t at_load = stats_of(p)->scratch_bytes; /* a fresh state, before any input */
        MP_ASSERT_OK(mp__lease_forward(l, pcm, n, logits));
        MP_ASSERT_OK(mp_lease_release(l));
        size_t after = stats_of(p)->scratch_bytes;
        if (!limited) {
            fresh = at_load;
            grown = after;
            MP_ASSERT(grown > fresh); /* 2 s of input grew the scratch */
        } else {
            MP_ASSERT_EQ(at_load, fresh);
            MP_ASSERT_EQ(after, fresh); /* over the limit: rebuilt fresh */
            MP_ASSERT_EQ(stats_of(p)->n_workers_loaded, 1);
            MP_ASSERT_OK(mp_pool_acquire(p, -1, &l)); /* and still works */
            MP_ASSERT_OK(mp__lease_forward(l, pcm, n, logits));
            MP_ASSERT_OK(mp_lease_release(l));
        }
        assert_identity(p);
        mp_pool_free(p);
    }
    free(pcm);
    free(logits);
    mp_model_free(m);
}

static void test_threads(void) {
    mp_model *m = tiny_model();
    int cores = mp__online_cores();
    mp_pool *p = make_pool(m, cores, 0);
    MP_ASSERT_EQ(mp__blas_get_threads(), 1); /* workers >= cores: one BLAS thread each */
    mp_pool_free(p);
    p = make_pool(m, 4 * cores > 256 ? 256 : 4 * cores, 0);
    MP_ASSERT_EQ(mp__blas_get_threads(), 1);
    mp_pool_free(p);
    p = make_pool(m, 1, 0);
    MP_ASSERT_EQ(mp__blas_get_threads(), cores); /* one worker may use every core */
    mp_pool_free(p);
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = 1;
    cfg.n_threads_per_worker = 1;
    MP_ASSERT_OK(mp_pool_create(m, &cfg, &p));
    MP_ASSERT_EQ(mp__blas_get_threads(), 1);
    MP_ASSERT_EQ(stats_of(p)->pool_size, 1);
    mp_pool_free(p);
    p = make_pool(m, 0, 0); /* 0 = online cores */
    MP_ASSERT_EQ(stats_of(p)->pool_size, cores);
    mp_pool_free(p);
    mp_model_free(m);
}

static const mp_test_case cases[] = {
    {"stress", test_stress},
    {"fifo", test_fifo},
    {"shutdown_race", test_shutdown_race},
    {"shutdown_wait", test_shutdown_wait},
    {"timeout", test_timeout},
    {"queue_full", test_queue_full},
    {"misuse", test_misuse},
    {"lazy", test_lazy},
    {"design", test_design},
    {"wait_histogram", test_wait_histogram},
    {"scoped", test_scoped},
    {"stuck", test_stuck},
    {"inference", test_inference},
    {"scratch_limit", test_scratch_limit},
    {"threads", test_threads},
};

MP_TEST_MAIN(cases)
