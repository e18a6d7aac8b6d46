/* pool.c - N workers sharing one read-only model, leased first come, first served, with timeouts,
 * backpressure, shutdown, stuck-lease detection and live statistics (the user's ModelPool, done
 * with one copy of the weights).
 *
 * Module: pool (this folder: model-dir.c, pool.c, transcribe.c, chunker.c, stream.c) is the top
 * of the library: model directories, the worker pool, requests and streams. It may call every
 * other module (core, engine, audio, decode); none of them calls it.
 *
 * DESIGN
 *
 * Workers. A worker is a slot: a private mp__state (scratch, never shared) and, only when
 * cfg.weight_copies is set, a private mp_model copy. Slots are created eagerly (cfg.preload) or
 * by the first caller granted that slot (the original design loads lazily). Loading runs outside
 * every lock: the granted caller owns the slot exclusively until it releases it. Free slots sit
 * on a stack, loaded ones on top, so a lazily loaded pool only loads as many workers as were
 * ever used at the same time, and a reused worker has warm caches.
 *
 * Queue. Each waiting caller puts a node on the pool's FIFO list; the node lives on the caller's
 * stack and carries its own condition variable. A released worker is handed directly to the
 * head node (slot marked busy, node->granted set) before the releaser unlocks, so a new arrival
 * can never overtake a waiter (no barging), and only the one waiter concerned is woken. A caller
 * that finds the queue empty and a worker free takes it at once. Since grants happen only at the
 * head, waiters are served strictly in arrival order: no starvation. queue_capacity bounds the
 * list: an arrival that finds it full gets MP_ERR_QUEUE_FULL immediately (backpressure). A
 * waiter whose deadline passes unlinks its own node (MP_ERR_TIMEOUT), unless it was granted in
 * the meantime, in which case the grant wins.
 *
 * Leases. A lease handle is not a pointer to memory: it encodes (pool id, slot, generation) in a
 * value above the user address space (>= 2^48), so it can never alias a real object and faults
 * if dereferenced. The pool id is looked up in a process-wide registry of live pools; the slot's
 * generation advances at every grant. Releasing a lease twice, a lease of a freed pool, or any
 * other value is therefore detected (MP_ERR_MISUSE) without ever touching freed memory, even
 * after the slot was granted to someone else. (Pool ids are 16 bits and wrap after 65535 pools;
 * generations are 39 bits per worker.) Release marks the slot `releasing` first, measures (and,
 * past cfg.max_scratch_bytes, rebuilds) the worker's scratch with no lock held, then frees it.
 *
 * Shutdown. mp_pool_shutdown() sets `shutting_down`: new acquires fail with MP_ERR_SHUTDOWN
 * (counted as rejected), every queued waiter is woken with MP_ERR_SHUTDOWN (also rejected),
 * leases in flight keep working and are released normally; the call then waits on `idle` until
 * no lease is outstanding. mp_pool_free() = shutdown(-1), stop the watchdog, unregister, free.
 *
 * Watchdog. A thread (mp-watchdog) wakes every stuck_lease_s / 4 (10 ms .. 1 s), counts leases
 * held longer than stuck_lease_s once each and logs them with MP_LOG_WARN (outside the lock).
 *
 * Threads. BLAS threads per worker = cfg.n_threads_per_worker or max(1, cores / n_workers).
 * OpenBLAS's thread count is process-wide, so the pool sets it at creation (the last pool created
 * wins); with n_workers >= cores it is 1, which rules out the 4 workers x 2 threads on 2 cores
 * oversubscription measured at 2.2 audio-s/s.
 *
 * Counting (all under pool->lock). Every acquire that ends is one of total_requests: it is
 * granted, rejected (queue full or shutdown) or timed out. A granted lease ends in completed or
 * failed when released (failed if mp__lease_mark_failed() was called or its request failed); a
 * grant whose lazy worker load fails counts as failed at once. Hence, once no lease is
 * outstanding: total_requests = completed + failed + rejected + timed_out.
 *
 * Locks and order. There are two, and they are never held together: a lookup takes reg_lock,
 * finds the pool, drops reg_lock, then takes pool->lock. That is safe because a pool is only freed
 * after every call on it returned (header contract). Should a path ever need both: reg_lock first.
 *   reg_lock    protects `registry` and `next_pool_id`.
 *   pool->lock  protects everything mutable in the pool: slots' busy/generation/timestamps and
 *               counters, the free stack, the wait queue, statistics, shutdown and watchdog flags.
 * No lock is held while a worker loads, runs inference, or calls the log callback.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- bounded-memory latency histogram ------------------------------------------------------------ */

/* Log-scale buckets from 1 us to 1000 s, 10 per decade (each bucket spans a factor of 10^0.1 =
 * 1.26, so a percentile read by interpolation is within ~13% of the truth). Bucket 0 holds
 * everything below 1 us, the last everything from 1000 s up. */
#define HIST_DECADES 9
#define HIST_PER_DECADE 10
#define HIST_MIN_S 1e-6
#define HIST_N (HIST_DECADES * HIST_PER_DECADE + 2)

typedef struct hist {
    uint64_t count[HIST_N];
    uint64_t n;
    double max;
} hist;

/* Lower edge of bucket i (i >= 1), seconds. */
static double hist_edge(int i) {
    return HIST_MIN_S * pow(10.0, (double)(i - 1) / HIST_PER_DECADE);
}

static void hist_add(hist *h, double s) {
    int i;
    if (!(s >= HIST_MIN_S)) {
        i = 0; /* also catches NaN */
    } else {
        i = 1 + (int)floor(log10(s / HIST_MIN_S) * HIST_PER_DECADE);
        if (i > HIST_N - 1) i = HIST_N - 1;
        if (i < 1) i = 1;
    }
    h->count[i]++;
    h->n++;
    if (s > h->max) h->max = s;
}

/* q-quantile (0..1): find the bucket holding rank q*n and interpolate geometrically inside it
 * (linearly in the underflow bucket [0, 1 us)); never above the largest value seen. */
static double hist_quantile(const hist *h, double q) {
    if (h->n == 0) return 0.0;
    double rank = q * (double)h->n;
    uint64_t cum = 0;
    for (int i = 0; i < HIST_N; i++) {
        if (h->count[i] == 0) continue;
        if ((double)(cum + h->count[i]) >= rank) {
            double frac = (rank - (double)cum) / (double)h->count[i];
            if (frac < 0) frac = 0;
            if (frac > 1) frac = 1;
            double v;
            if (i == 0) {
                v = frac * HIST_MIN_S;
            } else if (i == HIST_N - 1) {
                v = h->max;
            } else {
                double lo = hist_edge(i), hi = hist_edge(i + 1);
                v = lo * pow(hi / lo, frac);
            }
            return v < h->max ? v : h->max;
        }
        cum += h->count[i];
    }
    return h->max;
}

/* ---- fixed-bound wait buckets (mp_pool_stats.wait_le) ---------------------------------------------- */

static const double wait_bounds_s[MP_WAIT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};

double mp_pool_wait_bucket_s(int i) {
    return i >= 0 && i < MP_WAIT_BUCKETS ? wait_bounds_s[i] : INFINITY;
}

/* Index of the first bucket whose bound is >= s, MP_WAIT_BUCKETS past the last (and for NaN). */
static int wait_bucket(double s) {
    int i = 0;
    while (i < MP_WAIT_BUCKETS && !(s <= wait_bounds_s[i])) i++;
    return i;
}

/* ---- the pool ------------------------------------------------------------------------------------- */

/* One worker: private scratch (and optionally private weights), plus the lease now holding it. */
typedef struct slot {
    mp__state *state;        /* NULL until loaded; touched only by the lease holder (or creator) */
    mp_model *own_model;     /* weight_copies: this worker's private copy (worker 0 uses the pool's) */
    int loaded;              /* state (and copy) exist */
    int busy;                /* leased now */
    int releasing;           /* the holder is inside mp_lease_release() (the lease is no longer valid) */
    uint64_t gen;            /* advances at every grant; part of the lease handle */
    double t_grant;          /* mp__now_s() when granted */
    int failed;              /* request under the current lease failed */
    int stuck_counted;       /* current lease already counted as stuck */
    uint64_t requests;       /* leases released on this worker */
    double busy_s;           /* compute time on this worker, s */
    size_t scratch_bytes;    /* mp__state_bytes at last release (read without touching state) */
} slot;

/* A caller waiting for a worker; lives on that caller's stack while it is linked. */
typedef struct waiter {
    pthread_cond_t cond;
    struct waiter *next;
    double t0;               /* mp__now_s() when the acquire started */
    int granted;             /* index of the slot handed over (already granted to us), or -1 */
    mp_status status;        /* MP_ERR_SHUTDOWN when woken by shutdown */
} waiter;

struct mp_pool {
    uint32_t id;             /* registry key, part of every lease handle; never 0 */
    mp_model *model;         /* shared weights + the one processor (tokenizer, feature settings) */
    mp_pool_config cfg;      /* resolved: n_workers > 0, threads > 0 */
    int n_workers;
    int blas_threads;

    int n_sync;              /* how many of lock, idle, watchdog_cond are initialized (0..3) */
    pthread_mutex_t lock;    /* protects everything below (see DESIGN) */
    pthread_cond_t idle;     /* signalled when `outstanding` drops to 0 */
    slot *slots;             /* [n_workers] */
    int *free_stack;         /* [n_workers] indices of idle slots; loaded ones towards the top */
    int n_free;
    int n_loaded;
    int outstanding;         /* leases granted and not yet released (incl. ones still loading) */
    waiter *q_head, *q_tail;
    int q_len;
    int shutting_down;

    /* statistics */
    double t_created;
    uint64_t total_requests, completed, failed, rejected, timed_out, granted;
    double wait_sum, wait_max;
    hist wait_hist, service_hist;
    uint64_t wait_buckets[MP_WAIT_BUCKETS + 1]; /* granted waits per bucket (not cumulative), last = above 30 s */
    uint64_t stuck_leases;
    double audio_s, busy_s;

    /* watchdog */
    pthread_t watchdog;
    int watchdog_running;
    int watchdog_stop;
    pthread_cond_t watchdog_cond;
};

/* ---- registry of live pools and lease handles ------------------------------------------------------ */

#define REG_MAX 4096 /* live pools at once; more is refused with MP_ERR_NOMEM */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static mp_pool *registry[REG_MAX]; /* slot = id % REG_MAX */
static uint32_t next_pool_id = 1;

/* Handle layout (64-bit): bits 48..63 pool id, 9..47 generation (39 bits), 1..8 slot, bit 0 = 1.
 * User-space addresses are below 2^47 on every 64-bit Linux target, so a handle never equals a
 * real object's address. */
#define H_ID_SHIFT 48
#define H_GEN_SHIFT 9
#define H_GEN_MASK ((UINT64_C(1) << 39) - 1)
#define H_SLOT_SHIFT 1
#define H_SLOT_MASK UINT64_C(0xff)
#define POOL_MAX_WORKERS 256 /* fits the 8 slot bits and MP_STATS_MAX_WORKERS */

_Static_assert(sizeof(uintptr_t) >= 8, "lease handles need 64-bit pointers");
_Static_assert(POOL_MAX_WORKERS <= MP_STATS_MAX_WORKERS, "stats arrays too small");

static mp_lease *handle_make(const mp_pool *p, int w, uint64_t gen) {
    uint64_t v = ((uint64_t)(p->id & 0xffff) << H_ID_SHIFT) | ((gen & H_GEN_MASK) << H_GEN_SHIFT) |
                 ((uint64_t)w << H_SLOT_SHIFT) | 1u;
    return (mp_lease *)(uintptr_t)v;
}

static int registry_add(mp_pool *p) {
    pthread_mutex_lock(&reg_lock);
    /* ids are 16 bits in a handle and index the registry; skip ids whose entry is taken */
    for (int tries = 0; tries < REG_MAX; tries++) {
        uint32_t id = next_pool_id;
        next_pool_id = next_pool_id % 0xffff + 1; /* 1..65535 */
        if (!registry[id % REG_MAX]) {
            p->id = id;
            registry[id % REG_MAX] = p;
            pthread_mutex_unlock(&reg_lock);
            return 1;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

static void registry_remove(mp_pool *p) {
    pthread_mutex_lock(&reg_lock);
    if (registry[p->id % REG_MAX] == p) registry[p->id % REG_MAX] = NULL;
    pthread_mutex_unlock(&reg_lock);
}

/* Decode a handle to its live pool and slot. Returns NULL (nothing dereferenced) when the value
 * is not a handle of a live pool; the generation is checked by the caller under pool->lock. */
static mp_pool *handle_decode(const mp_lease *lease, int *w, uint64_t *gen) {
    uint64_t v = (uint64_t)(uintptr_t)lease;
    if (!(v & 1u)) return NULL;
    uint32_t id = (uint32_t)(v >> H_ID_SHIFT);
    if (id == 0) return NULL;
    pthread_mutex_lock(&reg_lock);
    mp_pool *p = registry[id % REG_MAX];
    if (p && p->id != id) p = NULL;
    pthread_mutex_unlock(&reg_lock);
    if (!p) return NULL;
    *w = (int)((v >> H_SLOT_SHIFT) & H_SLOT_MASK);
    *gen = (v >> H_GEN_SHIFT) & H_GEN_MASK;
    if (*w >= p->n_workers) return NULL;
    return p;
}

/* Lock the pool of a lease that must be held right now; NULL (unlocked) if it is not. */
static mp_pool *lease_lock(const mp_lease *lease, int *w) {
    uint64_t gen;
    mp_pool *p = handle_decode(lease, w, &gen);
    if (!p) return NULL;
    pthread_mutex_lock(&p->lock);
    slot *s = &p->slots[*w];
    if (!s->busy || s->releasing || (s->gen & H_GEN_MASK) != gen) {
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    return p;
}

/* ---- config ----------------------------------------------------------------------------------------- */

mp_pool_config mp_pool_default_config(void) {
    return (mp_pool_config){
        .n_workers = 0,
        .queue_capacity = 0,
        .default_timeout_ms = -1,
        .preload = 0,
        .n_threads_per_worker = 0,
        .stuck_lease_s = 60.0,
        .wait_warning_s = 1.0,
        .weight_copies = 0,
        .max_scratch_bytes = 0,
    };
}

/* ---- worker loading ------------------------------------------------------------------------------- */

/* The model a worker computes with: its own copy when weight_copies, else the shared one. */
static const mp_model *slot_model(const mp_pool *p, const slot *s) {
    return s->own_model ? s->own_model : p->model;
}

/* Create slot w's state (and weight copy). Called by the slot's exclusive owner, no lock held. */
/* A worker's own copy of a model loaded from files, with the same vocabulary choice. */
static mp_status load_copy(const mp_model *m, mp_model **out) {
    mp_model_config mc = mp_model_default_config();
    mc.language = m->language[0] ? m->language : NULL;
    return mp_model_load(m->path, &mc, out);
}

static mp_status slot_load(mp_pool *p, int w) {
    slot *s = &p->slots[w];
    mp_status st = MP_OK;
    if (p->cfg.weight_copies && w > 0 && !s->own_model) {
        /* Worker 0 uses the caller's model, every other worker its own copy: n_workers copies in
         * all, the memory the original design pays. */
        if (p->model->random_arch[0])
            st = mp_model_create_random(p->model->random_arch, p->model->random_seed, &s->own_model);
        else if (p->model->path && p->model->path[0])
            st = load_copy(p->model, &s->own_model);
        else
            st = mp__fail(MP_ERR_INVALID_ARG, "pool: weight_copies: the model has no directory to reload");
        if (st != MP_OK) return st;
    }
    if (!s->state) {
        st = mp__state_create(slot_model(p, s), &s->state);
        if (st != MP_OK) {
            mp_model_free(s->own_model);
            s->own_model = NULL;
            return st;
        }
    }
    return MP_OK;
}

static void slot_unload(slot *s) {
    mp__state_free(s->state);
    s->state = NULL;
    mp_model_free(s->own_model);
    s->own_model = NULL;
    s->loaded = 0;
}

/* ---- watchdog --------------------------------------------------------------------------------------- */

typedef struct stuck_note {
    int worker;
    double held_s;
} stuck_note;

/* Count leases newly held past stuck_lease_s (once each); note up to max of them for logging.
 * Returns the number noted. Caller holds p->lock. */
static int scan_stuck(mp_pool *p, double now, stuck_note *notes, int max) {
    int n = 0;
    if (!(p->cfg.stuck_lease_s > 0)) return 0;
    for (int w = 0; w < p->n_workers; w++) {
        slot *s = &p->slots[w];
        if (!s->busy || s->stuck_counted || now - s->t_grant <= p->cfg.stuck_lease_s) continue;
        s->stuck_counted = 1;
        p->stuck_leases++;
        if (n < max) notes[n++] = (stuck_note){w, now - s->t_grant};
    }
    return n;
}

static void log_stuck(const mp_pool *p, const stuck_note *notes, int n) {
    for (int i = 0; i < n; i++)
        mp__log(MP_LOG_WARN, "pool: worker %d lease held %.1f s (> stuck_lease_s %.1f s): stuck or leaked lease?",
                notes[i].worker, notes[i].held_s, p->cfg.stuck_lease_s);
}

static void abs_deadline(struct timespec *ts, double from_now_s) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = floor(from_now_s);
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((from_now_s - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *watchdog_main(void *arg) {
    mp_pool *p = arg;
    pthread_setname_np(pthread_self(), "mp-watchdog");
    double period = p->cfg.stuck_lease_s / 4;
    if (period < 0.01) period = 0.01;
    if (period > 1.0) period = 1.0;
    stuck_note notes[8];
    pthread_mutex_lock(&p->lock);
    while (!p->watchdog_stop) {
        struct timespec ts;
        abs_deadline(&ts, period);
        pthread_cond_timedwait(&p->watchdog_cond, &p->lock, &ts);
        if (p->watchdog_stop) break;
        int n = scan_stuck(p, mp__now_s(), notes, 8);
        if (n) {
            pthread_mutex_unlock(&p->lock);
            log_stuck(p, notes, n);
            pthread_mutex_lock(&p->lock);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- create / free ---------------------------------------------------------------------------------- */

static int init_monotonic_cond(pthread_cond_t *c) {
    pthread_condattr_t a;
    if (pthread_condattr_init(&a)) return 0;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc == 0;
}

static void pool_destroy(mp_pool *p) {
    for (int w = 0; p->slots && w < p->n_workers; w++) slot_unload(&p->slots[w]);
    free(p->slots);
    free(p->free_stack);
    if (p->n_sync > 2) pthread_cond_destroy(&p->watchdog_cond);
    if (p->n_sync > 1) pthread_cond_destroy(&p->idle);
    if (p->n_sync > 0) pthread_mutex_destroy(&p->lock);
    free(p);
}

static mp_status check_config(const mp_model *model, const mp_pool_config *cfg) {
    if (cfg->n_workers < 0 || cfg->n_workers > POOL_MAX_WORKERS)
        return mp__fail(MP_ERR_INVALID_ARG, "pool config: n_workers: %d not in 0..%d", cfg->n_workers,
                        POOL_MAX_WORKERS);
    if (cfg->queue_capacity < 0)
        return mp__fail(MP_ERR_INVALID_ARG, "pool config: queue_capacity: %d is negative", cfg->queue_capacity);
    if (cfg->default_timeout_ms < -1)
        return mp__fail(MP_ERR_INVALID_ARG, "pool config: default_timeout_ms: %d (use -1 for forever)",
                        cfg->default_timeout_ms);
    if (cfg->n_threads_per_worker < 0 || cfg->n_threads_per_worker > 1024)
        return mp__fail(MP_ERR_INVALID_ARG, "pool config: n_threads_per_worker: %d not in 0..1024",
                        cfg->n_threads_per_worker);
    if (!(cfg->stuck_lease_s >= 0) || !(cfg->wait_warning_s >= 0))
        return mp__fail(MP_ERR_INVALID_ARG, "pool config: stuck_lease_s and wait_warning_s must be >= 0");
    if (cfg->weight_copies && !model->random_arch[0] && !(model->path && model->path[0]))
        return mp__fail(MP_ERR_INVALID_ARG, "pool config: weight_copies: the model has no directory to reload");
    return MP_OK;
}

/* Resolve the worker and thread counts, create the locks and the (unloaded) slots. */
static mp_status pool_init(mp_pool *p, mp_model *model, mp_pool_config cfg) {
    int cores = mp__online_cores();
    int n = cfg.n_workers ? cfg.n_workers : cores;
    if (n > POOL_MAX_WORKERS) n = POOL_MAX_WORKERS;
    cfg.n_workers = n;
    p->model = model;
    p->n_workers = n;
    /* Workers x BLAS threads must not exceed the cores (4 x 2 on 2 cores collapsed to 2.2 audio-s/s). */
    p->blas_threads = cfg.n_threads_per_worker ? cfg.n_threads_per_worker : (cores / n > 1 ? cores / n : 1);
    cfg.n_threads_per_worker = p->blas_threads;
    p->cfg = cfg;
    p->t_created = mp__now_s();
    if (pthread_mutex_init(&p->lock, NULL))
        return mp__fail(MP_ERR_INTERNAL, "mp_pool_create: pthread_mutex_init failed");
    p->n_sync = 1;
    if (!init_monotonic_cond(&p->idle)) return mp__fail(MP_ERR_INTERNAL, "mp_pool_create: pthread_cond_init failed");
    p->n_sync = 2;
    if (!init_monotonic_cond(&p->watchdog_cond))
        return mp__fail(MP_ERR_INTERNAL, "mp_pool_create: pthread_cond_init failed");
    p->n_sync = 3;
    p->slots = calloc((size_t)n, sizeof *p->slots);
    p->free_stack = calloc((size_t)n, sizeof *p->free_stack);
    if (!p->slots || !p->free_stack)
        return mp__fail(MP_ERR_NOMEM, "mp_pool_create: out of memory for %d workers", n);
    /* Stack top = index n_free - 1: push n-1 .. 0 so worker 0 is handed out first. */
    for (int w = 0; w < n; w++) p->free_stack[w] = n - 1 - w;
    p->n_free = n;
    return MP_OK;
}

static mp_status preload_all(mp_pool *p) {
    for (int w = 0; w < p->n_workers; w++) {
        mp_status st = slot_load(p, w);
        if (st != MP_OK) return st;
        p->slots[w].loaded = 1;
        p->slots[w].scratch_bytes = mp__state_bytes(p->slots[w].state);
        p->n_loaded++;
    }
    return MP_OK;
}

/* Register the pool (lease handles name it) and start the watchdog. */
static mp_status pool_start(mp_pool *p) {
    if (!registry_add(p)) return mp__fail(MP_ERR_NOMEM, "mp_pool_create: too many live pools (%d)", REG_MAX);
    if (p->cfg.stuck_lease_s > 0) {
        if (pthread_create(&p->watchdog, NULL, watchdog_main, p) != 0) {
            registry_remove(p);
            return mp__fail(MP_ERR_INTERNAL, "mp_pool_create: cannot start the watchdog thread");
        }
        p->watchdog_running = 1;
    }
    return MP_OK;
}

mp_status mp_pool_create(mp_model *model, const mp_pool_config *cfg_in, mp_pool **out) {
    if (out) *out = NULL;
    if (!model || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_create: NULL %s", model ? "out" : "model");
    mp_pool_config cfg = cfg_in ? *cfg_in : mp_pool_default_config();
    mp_status st = check_config(model, &cfg);
    if (st != MP_OK) return st;
    mp_pool *p = calloc(1, sizeof *p);
    if (!p) return mp__fail(MP_ERR_NOMEM, "mp_pool_create: out of memory");
    st = pool_init(p, model, cfg);
    if (st == MP_OK && p->cfg.preload) st = preload_all(p);
    if (st == MP_OK) {
        mp__blas_set_threads(p->blas_threads);
        st = pool_start(p);
    }
    if (st != MP_OK) {
        pool_destroy(p);
        return st;
    }
    *out = p;
    return MP_OK;
}

mp_status mp_pool_shutdown(mp_pool *p, int wait_ms) {
    if (!p) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_shutdown: NULL pool");
    pthread_mutex_lock(&p->lock);
    if (!p->shutting_down) {
        p->shutting_down = 1;
        /* Wake every waiter; each counts as rejected (its acquire ended without a worker). */
        for (waiter *wt = p->q_head; wt; wt = wt->next) {
            wt->status = MP_ERR_SHUTDOWN;
            p->rejected++;
            p->total_requests++;
            pthread_cond_signal(&wt->cond);
        }
        p->q_head = p->q_tail = NULL;
        p->q_len = 0;
    }
    struct timespec ts;
    if (wait_ms >= 0) abs_deadline(&ts, wait_ms / 1000.0);
    while (p->outstanding > 0) {
        if (wait_ms < 0) {
            pthread_cond_wait(&p->idle, &p->lock);
        } else if (pthread_cond_timedwait(&p->idle, &p->lock, &ts) == ETIMEDOUT) {
            break;
        }
    }
    int left = p->outstanding;
    pthread_mutex_unlock(&p->lock);
    if (left > 0) return mp__fail(MP_ERR_TIMEOUT, "mp_pool_shutdown: %d lease(s) still held after %d ms", left, wait_ms);
    return MP_OK;
}

void mp_pool_free(mp_pool *p) {
    if (!p) return;
    mp_pool_shutdown(p, -1);
    /* Unregister first: from here on every old handle of this pool decodes to nothing. */
    registry_remove(p);
    if (p->watchdog_running) {
        pthread_mutex_lock(&p->lock);
        p->watchdog_stop = 1;
        pthread_cond_signal(&p->watchdog_cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->watchdog, NULL);
    }
    pool_destroy(p);
}

/* ---- acquire / release ------------------------------------------------------------------------------ */

/* Mark slot w granted to a caller that waited wait_s. Caller holds p->lock. */
static void grant(mp_pool *p, int w, double wait_s, double now) {
    slot *s = &p->slots[w];
    s->busy = 1;
    s->gen++;
    s->t_grant = now;
    s->failed = 0;
    s->stuck_counted = 0;
    p->outstanding++;
    p->granted++;
    p->total_requests++;
    p->wait_sum += wait_s;
    if (wait_s > p->wait_max) p->wait_max = wait_s;
    hist_add(&p->wait_hist, wait_s);
    p->wait_buckets[wait_bucket(wait_s)]++;
}

/* Pop a free slot; the stack keeps loaded slots above unloaded ones. Caller holds p->lock. */
static int pop_free(mp_pool *p) { return p->free_stack[--p->n_free]; }

/* Put slot w back: loaded slots on top, unloaded ones (a failed lazy load) at the bottom. */
static void push_free(mp_pool *p, int w) {
    if (p->slots[w].loaded) {
        p->free_stack[p->n_free++] = w;
    } else {
        memmove(p->free_stack + 1, p->free_stack, (size_t)p->n_free * sizeof *p->free_stack);
        p->free_stack[0] = w;
        p->n_free++;
    }
}

/* Slot w became free: grant it to the head waiter (FIFO, no barging) or put it back. The grant is
 * complete before the lock drops, so the slot is never seen neither free nor leased. Caller holds
 * p->lock. */
static void hand_over(mp_pool *p, int w, double now) {
    waiter *head = p->q_head;
    if (head && !p->shutting_down) {
        p->q_head = head->next;
        if (!p->q_head) p->q_tail = NULL;
        p->q_len--;
        grant(p, w, now - head->t0, now);
        head->granted = w;
        pthread_cond_signal(&head->cond);
    } else {
        push_free(p, w);
    }
}

const mp_model *mp_pool_model(const mp_pool *p) {
    return p ? p->model : NULL; /* immutable after mp_pool_create: no lock */
}

/* An acquire that ends without a worker (counter: rejected or timed_out). Caller holds p->lock. */
static void count_refusal(mp_pool *p, uint64_t *counter) {
    (*counter)++;
    p->total_requests++;
}

/* Take our node out of the queue (we timed out). Caller holds p->lock. */
static void unlink_waiter(mp_pool *p, waiter *me) {
    waiter **pp = &p->q_head;
    waiter *prev = NULL;
    while (*pp != me) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = me->next;
    if (p->q_tail == me) p->q_tail = prev;
    p->q_len--;
}

/* Wait on our queue node until granted, shut down, past the deadline or cancelled. With a cancel
 * callback the wait runs in CANCEL_POLL_S slices and the callback is called between them with the
 * pool lock released (our node stays queued meanwhile, so its place in line is kept; a grant made
 * while unlocked is seen on relocking). Returns 1 when timed out, 2 when cancelled, else 0. */
#define CANCEL_POLL_S 0.1
static int wait_turn(mp_pool *p, waiter *me, int timeout_ms, const struct timespec *deadline,
                     int (*cancel_fn)(void *), void *cancel_ud) {
    double end = timeout_ms > 0 ? mp__now_s() + timeout_ms / 1000.0 : 0;
    while (me->granted < 0 && me->status == MP_OK) {
        if (!cancel_fn) {
            if (timeout_ms < 0) pthread_cond_wait(&me->cond, &p->lock);
            else if (pthread_cond_timedwait(&me->cond, &p->lock, deadline) == ETIMEDOUT) return me->granted < 0;
            continue;
        }
        double left = timeout_ms > 0 ? end - mp__now_s() : CANCEL_POLL_S;
        if (timeout_ms > 0 && left <= 0) return 1;
        struct timespec ts;
        abs_deadline(&ts, left < CANCEL_POLL_S ? left : CANCEL_POLL_S);
        pthread_cond_timedwait(&me->cond, &p->lock, &ts);
        if (me->granted >= 0 || me->status != MP_OK) break;
        pthread_mutex_unlock(&p->lock);
        int cancel = cancel_fn(cancel_ud) != 0;
        pthread_mutex_lock(&p->lock);
        if (cancel && me->granted < 0 && me->status == MP_OK) return 2;
    }
    return 0;
}

/* Queue up and wait for hand_over() to grant us a slot, shutdown, or the deadline. Caller holds
 * p->lock (released while waiting). */
static mp_status wait_in_queue(mp_pool *p, int timeout_ms, double t0, int (*cancel_fn)(void *),
                               void *cancel_ud, int *w) {
    waiter me = {.next = NULL, .t0 = t0, .granted = -1, .status = MP_OK};
    if (!init_monotonic_cond(&me.cond)) return mp__fail(MP_ERR_INTERNAL, "mp_pool_acquire: pthread_cond_init failed");
    if (p->q_tail) p->q_tail->next = &me;
    else p->q_head = &me;
    p->q_tail = &me;
    p->q_len++;
    struct timespec ts;
    if (timeout_ms > 0) abs_deadline(&ts, timeout_ms / 1000.0);
    int gave_up = wait_turn(p, &me, timeout_ms, &ts, cancel_fn, cancel_ud);
    mp_status st = MP_OK;
    if (me.granted >= 0) {
        *w = me.granted; /* granted by hand_over(), possibly right at the deadline: the grant wins */
    } else if (me.status != MP_OK) {
        st = mp__fail(me.status, "mp_pool_acquire: the pool is shutting down"); /* shutdown counted us */
    } else {
        unlink_waiter(p, &me); /* timed out or cancelled: both count as timed_out (the caller gave up) */
        count_refusal(p, &p->timed_out);
        st = gave_up == 2 ? mp__fail(MP_ERR_CANCELLED, "mp_pool_acquire: cancelled while waiting")
                          : mp__fail(MP_ERR_TIMEOUT, "mp_pool_acquire: no worker free within %d ms", timeout_ms);
    }
    pthread_cond_destroy(&me.cond);
    return st;
}

/* A free worker at once (nobody queued before us), a refusal, or a place in the queue. Caller
 * holds p->lock. */
static mp_status take_slot(mp_pool *p, int timeout_ms, double t0, int (*cancel_fn)(void *), void *cancel_ud,
                           int *w) {
    if (p->shutting_down) {
        count_refusal(p, &p->rejected);
        return mp__fail(MP_ERR_SHUTDOWN, "mp_pool_acquire: the pool is shutting down");
    }
    if (!p->q_head && p->n_free > 0) {
        *w = pop_free(p);
        grant(p, *w, 0.0, t0);
        return MP_OK;
    }
    if (p->cfg.queue_capacity > 0 && p->q_len >= p->cfg.queue_capacity) {
        count_refusal(p, &p->rejected);
        return mp__fail(MP_ERR_QUEUE_FULL, "mp_pool_acquire: %d callers already waiting (queue_capacity)",
                        p->cfg.queue_capacity);
    }
    if (timeout_ms == 0) {
        count_refusal(p, &p->timed_out);
        return mp__fail(MP_ERR_TIMEOUT, "mp_pool_acquire: no worker free and timeout_ms is 0");
    }
    return wait_in_queue(p, timeout_ms, t0, cancel_fn, cancel_ud, w);
}

/* Build granted slot w's worker (lazy loading). We own the slot exclusively (busy), so it loads
 * with no lock held. On failure the grant ends as failed and the slot goes back. */
static mp_status load_granted(mp_pool *p, int w) {
    slot *s = &p->slots[w];
    mp_status st = slot_load(p, w);
    pthread_mutex_lock(&p->lock);
    if (st != MP_OK) {
        s->busy = 0;
        p->failed++;
        p->outstanding--;
        hand_over(p, w, mp__now_s());
        if (p->outstanding == 0) pthread_cond_broadcast(&p->idle);
    } else {
        s->loaded = 1;
        s->scratch_bytes = mp__state_bytes(s->state);
        p->n_loaded++;
    }
    pthread_mutex_unlock(&p->lock);
    return st;
}

mp_status mp_pool_acquire(mp_pool *p, int timeout_ms, mp_lease **out) {
    return mp__pool_acquire_cancellable(p, timeout_ms, NULL, NULL, out);
}

mp_status mp__pool_acquire_cancellable(mp_pool *p, int timeout_ms, int (*cancel_fn)(void *), void *cancel_ud,
                                       mp_lease **out) {
    if (out) *out = NULL;
    if (!p || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_acquire: NULL %s", p ? "out" : "pool");
    if (cancel_fn && cancel_fn(cancel_ud)) return mp__fail(MP_ERR_CANCELLED, "mp_pool_acquire: cancelled");
    if (timeout_ms < -1) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_acquire: timeout_ms %d < -1", timeout_ms);
    if (timeout_ms == -1) timeout_ms = p->cfg.default_timeout_ms;
    double t0 = mp__now_s();
    int w = -1;
    pthread_mutex_lock(&p->lock);
    mp_status st = take_slot(p, timeout_ms, t0, cancel_fn, cancel_ud, &w);
    uint64_t gen = st == MP_OK ? p->slots[w].gen : 0;
    int need_load = st == MP_OK && !p->slots[w].loaded;
    pthread_mutex_unlock(&p->lock);
    if (st == MP_OK && need_load) st = load_granted(p, w);
    if (st != MP_OK) return st;
    *out = handle_make(p, w, gen);
    return MP_OK;
}

mp_status mp_lease_release(mp_lease *lease) {
    if (!lease) return mp__fail(MP_ERR_MISUSE, "mp_lease_release: NULL lease");
    int w;
    uint64_t gen;
    mp_pool *p = handle_decode(lease, &w, &gen);
    if (!p) return mp__fail(MP_ERR_MISUSE, "mp_lease_release: not a lease of a live pool");
    /* Validate and mark `releasing` in one locked section, so two releases of one lease can never
     * both pass; the slot stays busy (nobody else touches it) while its scratch is measured. */
    pthread_mutex_lock(&p->lock);
    slot *s = &p->slots[w];
    if (!s->busy || s->releasing || (s->gen & H_GEN_MASK) != gen) {
        pthread_mutex_unlock(&p->lock);
        return mp__fail(MP_ERR_MISUSE, "mp_lease_release: lease of worker %d already released", w);
    }
    s->releasing = 1;
    pthread_mutex_unlock(&p->lock);

    /* Bounded scratch: a worker grown past max_scratch_bytes by a long input starts over small
     * (no lock held: the allocation may take a while). */
    size_t scratch = s->state ? mp__state_bytes(s->state) : 0;
    int unloaded = 0;
    if (p->cfg.max_scratch_bytes && scratch > p->cfg.max_scratch_bytes) {
        mp__state_free(s->state);
        s->state = NULL;
        if (mp__state_create(slot_model(p, s), &s->state) != MP_OK) {
            /* no memory now: the worker is reloaded lazily by its next lease */
            s->state = NULL;
            unloaded = 1;
        }
        scratch = s->state ? mp__state_bytes(s->state) : 0;
    }

    pthread_mutex_lock(&p->lock);
    s->releasing = 0;
    if (unloaded) {
        s->loaded = 0; /* a weight copy, if any, stays: slot_load() only rebuilds what is missing */
        p->n_loaded--;
    }
    double now = mp__now_s();
    double held = now - s->t_grant;
    hist_add(&p->service_hist, held);
    if (s->failed) p->failed++;
    else p->completed++;
    s->requests++;
    s->scratch_bytes = scratch;
    s->busy = 0;
    p->outstanding--;
    hand_over(p, w, now);
    if (p->outstanding == 0) pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->lock);
    return MP_OK;
}

void mp__lease_cleanup(mp_lease **lease) {
    if (lease && *lease) {
        mp_lease_release(*lease); /* MP_ERR_MISUSE if the scope already released it: harmless */
        *lease = NULL;
    }
}

const mp_model *mp_lease_model(const mp_lease *lease) {
    int w;
    mp_pool *p = lease_lock(lease, &w);
    if (!p) return NULL;
    const mp_model *m = p->model;
    pthread_mutex_unlock(&p->lock);
    return m;
}

int mp_lease_worker(const mp_lease *lease) {
    int w;
    mp_pool *p = lease_lock(lease, &w);
    if (!p) return -1;
    pthread_mutex_unlock(&p->lock);
    return w;
}

void mp__lease_mark_failed(mp_lease *lease) {
    int w;
    mp_pool *p = lease_lock(lease, &w);
    if (!p) return;
    p->slots[w].failed = 1;
    pthread_mutex_unlock(&p->lock);
}

/* Add one computation's time and audio to the worker and pool totals. */
static void account(mp_pool *p, int w, double busy_s, double audio_s, int failed) {
    pthread_mutex_lock(&p->lock);
    p->slots[w].busy_s += busy_s;
    p->busy_s += busy_s;
    p->audio_s += audio_s;
    if (failed) p->slots[w].failed = 1;
    pthread_mutex_unlock(&p->lock);
}

/* What lease_run runs: a forward pass over raw samples, or over feature-extractor output
 * (mp_lease_forward), or one of its halves (mp__forward_features, mp__forward_encoder). */
enum { RUN_FORWARD, RUN_VALUES, RUN_FEATURES, RUN_ENCODER };

/* One run on the leased worker, no lock held during inference. */
static mp_status lease_run(mp_lease *lease, const float *pcm, size_t n, int kind, const mp__input_stats *stats,
                           float *logits) {
    int w;
    mp_pool *p = lease_lock(lease, &w);
    if (!p) return mp__fail(MP_ERR_MISUSE, "lease forward: not a lease held now");
    slot *s = &p->slots[w];
    const mp_model *m = slot_model(p, s);
    mp__state *state = s->state;
    pthread_mutex_unlock(&p->lock);

    double t0 = mp__now_s();
    mp_status st;
    double audio = (double)n; /* samples */
    switch (kind) {
    case RUN_VALUES: st = mp__forward_values(m, state, pcm, n, logits); break;
    case RUN_FEATURES: st = mp__forward_features(m, state, pcm, n, stats, logits); break;
    case RUN_ENCODER: /* pcm: features, n: frames; counted as the audio the frames span */
        st = mp__forward_encoder(m, state, pcm, n, logits);
        audio = (double)n * (double)mp__model_stride(m);
        break;
    default: st = mp__forward_stats(m, state, pcm, n, stats, logits); break;
    }
    double rate = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;
    account(p, w, mp__now_s() - t0, audio / rate, st != MP_OK);
    return st;
}

mp_status mp__lease_forward(mp_lease *lease, const float *pcm, size_t n, float *logits) {
    return lease_run(lease, pcm, n, RUN_FORWARD, NULL, logits);
}

mp_status mp__lease_forward_stats(mp_lease *lease, const float *pcm, size_t n, const mp__input_stats *stats,
                                  float *logits) {
    return lease_run(lease, pcm, n, RUN_FORWARD, stats, logits);
}

mp_status mp__lease_features(mp_lease *lease, const float *pcm, size_t n, const mp__input_stats *stats, float *feat) {
    return lease_run(lease, pcm, n, RUN_FEATURES, stats, feat);
}

mp_status mp__lease_encoder(mp_lease *lease, const float *feat, size_t T, float *logits) {
    return lease_run(lease, feat, T, RUN_ENCODER, NULL, logits);
}

mp_status mp_lease_transcribe(mp_lease *lease, const float *pcm, size_t n_samples, int sample_rate,
                              const mp_request_config *req, mp_result **out) {
    if (out) *out = NULL;
    int w;
    mp_pool *p = lease_lock(lease, &w);
    if (!p) return mp__fail(MP_ERR_MISUSE, "mp_lease_transcribe: not a lease held now");
    slot *s = &p->slots[w];
    const mp_model *m = slot_model(p, s);
    mp__state *state = s->state;
    pthread_mutex_unlock(&p->lock);
    if ((!pcm && n_samples) || !out || sample_rate <= 0) {
        mp__lease_mark_failed(lease);
        return mp__fail(MP_ERR_INVALID_ARG, "mp_lease_transcribe: %s", !out ? "NULL out"
                                                                      : sample_rate <= 0 ? "sample_rate <= 0"
                                                                                         : "NULL pcm");
    }
    double t0 = mp__now_s();
    mp_status st = mp__transcribe(m, state, pcm, n_samples, sample_rate, req, out); /* unlocked */
    account(p, w, mp__now_s() - t0, (double)n_samples / sample_rate, st != MP_OK);
    return st;
}

mp_status mp_lease_forward(mp_lease *lease, const float *input_values, size_t n_samples, mp_result **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_lease_forward: out is NULL");
    *out = NULL;
    const mp_model *m = mp_lease_model(lease);
    if (!m) return mp__fail(MP_ERR_MISUSE, "mp_lease_forward: not a lease held now");
    if (!input_values && n_samples) {
        mp__lease_mark_failed(lease);
        return mp__fail(MP_ERR_INVALID_ARG, "mp_lease_forward: input_values is NULL");
    }
    /* The logits buffer is sized by the shared model: a weight copy has the same shape. */
    size_t frames = mp__model_n_frames(m, n_samples), vocab = (size_t)m->hp.vocab;
    if (frames > (size_t)INT_MAX / vocab) {
        mp__lease_mark_failed(lease);
        return mp__fail(MP_ERR_NOMEM, "mp_lease_forward: input too long (%zu frames)", frames);
    }
    mp_result *res = mp__result_new();
    float *logits = frames ? malloc(frames * vocab * sizeof *logits) : NULL;
    if (!res || (frames && !logits)) {
        mp_result_free(res);
        free(logits);
        mp__lease_mark_failed(lease);
        return mp__fail(MP_ERR_NOMEM, "mp_lease_forward: out of memory for %zu frames of logits", frames);
    }
    mp_status st = lease_run(lease, input_values, n_samples, RUN_VALUES, NULL, logits); /* 0 frames: accounted, no work */
    if (st != MP_OK) {
        mp_result_free(res);
        free(logits);
        return st;
    }
    res->logits = logits;
    res->n_frames = (int)frames;
    res->n_vocab = (int)vocab;
    res->duration_s = (double)n_samples / (m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000);
    *out = res;
    return MP_OK;
}

mp_status mp_pool_with_lease(mp_pool *p, int timeout_ms, mp_lease_fn fn, void *user_data) {
    if (!p || !fn) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_with_lease: NULL %s", p ? "fn" : "pool");
    mp_lease *lease = NULL;
    mp_status st = mp_pool_acquire(p, timeout_ms, &lease);
    if (st != MP_OK) return st;
    st = fn(lease, user_data);
    if (st != MP_OK) mp__lease_mark_failed(lease);
    mp_lease_release(lease);
    return st;
}

mp_status mp_pool_transcribe(mp_pool *p, const float *pcm, size_t n_samples, int sample_rate,
                             const mp_request_config *req, mp_result **out) {
    if (out) *out = NULL;
    if (!p || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_transcribe: NULL %s", p ? "out" : "pool");
    mp_lease *lease = NULL;
    mp_status st = mp__pool_acquire_cancellable(p, req ? req->timeout_ms : -1, req ? req->cancel_fn : NULL,
                                                req ? req->cancel_user_data : NULL, &lease);
    if (st != MP_OK) return st;
    st = mp_lease_transcribe(lease, pcm, n_samples, sample_rate, req, out);
    mp_lease_release(lease);
    return st;
}

/* ---- statistics ------------------------------------------------------------------------------------- */

mp_status mp_pool_get_stats(mp_pool *p, mp_pool_stats *out) {
    if (!p || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_get_stats: NULL %s", p ? "out" : "pool");
    memset(out, 0, sizeof *out);
    stuck_note notes[8];
    pthread_mutex_lock(&p->lock);
    double now = mp__now_s();
    int n_notes = scan_stuck(p, now, notes, 8);
    out->pool_size = p->n_workers;
    out->total_requests = p->total_requests;
    out->avg_wait_time = p->granted ? p->wait_sum / (double)p->granted : 0.0;
    out->available_models = p->n_workers - p->outstanding;
    out->busy_models = p->outstanding;
    out->max_wait_time = p->wait_max;
    out->wait_p50 = hist_quantile(&p->wait_hist, 0.50);
    out->wait_p95 = hist_quantile(&p->wait_hist, 0.95);
    out->wait_p99 = hist_quantile(&p->wait_hist, 0.99);
    out->service_p50 = hist_quantile(&p->service_hist, 0.50);
    out->service_p95 = hist_quantile(&p->service_hist, 0.95);
    out->service_p99 = hist_quantile(&p->service_hist, 0.99);
    out->queue_depth = p->q_len;
    out->completed = p->completed;
    out->failed = p->failed;
    out->rejected = p->rejected;
    out->timed_out = p->timed_out;
    out->stuck_leases = p->stuck_leases;
    for (int w = 0; w < p->n_workers; w++) {
        const slot *s = &p->slots[w];
        if (p->cfg.stuck_lease_s > 0 && s->busy && now - s->t_grant > p->cfg.stuck_lease_s) out->stuck_now++;
        out->scratch_bytes += s->scratch_bytes;
        /* own_model is written before `loaded` is set under the lock, and not changed after */
        if (s->loaded && s->own_model) out->weight_bytes += s->own_model->weight_bytes;
        if (w < MP_STATS_MAX_WORKERS) {
            out->worker_requests[w] = s->requests;
            out->worker_busy_s[w] = s->busy_s;
        }
    }
    out->weight_bytes += p->model->weight_bytes;
    out->audio_seconds = p->audio_s;
    out->busy_seconds = p->busy_s;
    out->real_time_factor = p->audio_s > 0 ? p->busy_s / p->audio_s : 0.0;
    out->uptime_s = now - p->t_created;
    out->wait_warning = out->avg_wait_time > p->cfg.wait_warning_s;
    out->n_workers_loaded = p->n_loaded;
    uint64_t cum = 0;
    for (int i = 0; i < MP_WAIT_BUCKETS; i++) out->wait_le[i] = cum += p->wait_buckets[i];
    out->wait_count = p->granted;
    out->wait_sum_s = p->wait_sum;
    pthread_mutex_unlock(&p->lock);
    log_stuck(p, notes, n_notes);
    return MP_OK;
}
