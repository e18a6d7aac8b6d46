/* live-calls.c - what both live protocols share: the call registry (--max-calls, waking calls at
 * stop), a call's mp_live stream, partial and final latency, the calls log and the live metrics.
 *
 * Latency is measured against when the audio arrived: every write records (audio seconds so far,
 * arrival time) in a ring. A partial's latency is the age of the oldest audio it covers for the
 * first time (from the previous partial's committed point); a final's is the age of the audio at
 * its end, i.e. the end of the endpoint silence. Both include the right context and step waits the
 * design implies, not only compute. */
#include "server/live.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ARRIVALS 1024   /* writes remembered per call: 20 s of 20 ms frames */
#define LAT_SAMPLES 4096 /* latency samples kept for the quantiles */

typedef struct lat_ring {
    double v[LAT_SAMPLES];
    size_t n;           /* samples ever added */
    double sum;
} lat_ring;

/* One SSE subscriber of a call (by UUID): the events not sent yet. Owned by its HTTP response. */
typedef struct live_sub {
    struct live_sub *next;
    char uuid[64];
    char *q;                   /* pending bytes [pos, n) */
    size_t n, pos, cap;
    int ended;                 /* the call ended: finish once the queue is sent */
} live_sub;

#define SUB_QUEUE_MAX (256 << 10) /* bytes a slow dashboard may fall behind; older events are dropped */

struct live_calls {
    server *srv;
    live_opts opts;
    pthread_mutex_t lock;     /* protects everything below except the log */
    pthread_cond_t gone;      /* signalled when a call leaves */
    live_call *calls;
    int n_active;
    int stopping;              /* draining: new calls are refused, calls in progress go on */
    int closing;               /* calls in progress must end now (their final results first) */
    unsigned long long started, refused;
    lat_ring partial, final;
    live_sub *subs;            /* SSE subscribers */
    atomic_int n_subs;         /* their number, read without the lock to skip work when none listens */
    pthread_cond_t sub_cond;   /* signalled when an event is queued for some subscriber */
    pthread_mutex_t log_lock; /* protects log */
    FILE *log;
    int own_log;
};

struct live_call {
    live_calls *reg;
    live_call *next;
    const char *protocol;
    char uuid[64];
    int fd;
    mp_live *live;
    mp_lexicon *lex;
    int rate;
    uint64_t n_bytes;          /* audio bytes received */
    double t_last;             /* monotonic time of the last write or message */
    struct { double audio_s, t; } arr[ARRIVALS];
    size_t n_arr;
    double covered_s;          /* committed point of the last partial */
    int finished;
};

static void publish(live_call *c, const char *name, const char *json);

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double wall_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int live_calls_open(server *srv, const live_opts *o, live_calls **out, char *err, size_t n_err) {
    *out = NULL;
    live_calls *lc = calloc(1, sizeof *lc);
    if (!lc) {
        snprintf(err, n_err, "out of memory");
        return 0;
    }
    lc->srv = srv;
    lc->opts = *o;
    pthread_mutex_init(&lc->lock, NULL);
    pthread_cond_init(&lc->gone, NULL);
    pthread_cond_init(&lc->sub_cond, NULL);
    pthread_mutex_init(&lc->log_lock, NULL);
    lc->log = stdout;
    if (o->calls_log && strcmp(o->calls_log, "-") != 0) {
        lc->log = fopen(o->calls_log, "a");
        if (!lc->log) {
            snprintf(err, n_err, "--calls-log %s: %s", o->calls_log, strerror(errno));
            live_calls_free(lc);
            return 0;
        }
        lc->own_log = 1;
    }
    *out = lc;
    return 1;
}

void live_calls_drain(live_calls *lc) {
    if (!lc) return;
    pthread_mutex_lock(&lc->lock);
    lc->stopping = 1;
    pthread_mutex_unlock(&lc->lock);
}

/* Wait (lock held) until no call is left or the monotonic time `until`. */
static void wait_calls_gone(live_calls *lc, double until) {
    while (lc->n_active > 0 && mono_s() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&lc->gone, &lc->lock, &ts);
    }
}

void live_calls_stop(live_calls *lc, double wait_s) {
    if (!lc) return;
    pthread_mutex_lock(&lc->lock);
    lc->stopping = lc->closing = 1; /* every call sees it within one poll (200 ms) of its socket */
    double t0 = mono_s();
    wait_calls_gone(lc, t0 + wait_s / 2);
    /* calls still here may be stuck sending to a peer that does not read: their sockets go down */
    for (live_call *c = lc->calls; c; c = c->next)
        if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    wait_calls_gone(lc, t0 + wait_s);
    if (lc->n_active) fprintf(stderr, "modelpool serve: %d live call(s) did not end in time\n", lc->n_active);
    pthread_cond_broadcast(&lc->sub_cond); /* event streams see `closing` and end */
    pthread_mutex_unlock(&lc->lock);
}

void live_calls_free(live_calls *lc) {
    if (!lc) return;
    pthread_mutex_lock(&lc->lock);
    int left = lc->n_active || lc->subs;
    pthread_mutex_unlock(&lc->lock);
    if (left) return;
    if (lc->own_log) fclose(lc->log);
    else fflush(lc->log);
    pthread_mutex_destroy(&lc->log_lock);
    pthread_cond_destroy(&lc->sub_cond);
    pthread_cond_destroy(&lc->gone);
    pthread_mutex_destroy(&lc->lock);
    free(lc);
}

int live_calls_active(live_calls *lc) {
    pthread_mutex_lock(&lc->lock);
    int n = lc->n_active;
    pthread_mutex_unlock(&lc->lock);
    return n;
}

/* ---- latency ----------------------------------------------------------------------------------- */

static void lat_add(live_calls *lc, lat_ring *r, double v) {
    if (!(v >= 0)) v = 0;
    pthread_mutex_lock(&lc->lock);
    r->v[r->n % LAT_SAMPLES] = v;
    r->n++;
    r->sum += v;
    pthread_mutex_unlock(&lc->lock);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Quantiles over the kept samples; called with the lock held. */
static void lat_write(FILE *f, const char *name, const char *help, const lat_ring *r) {
    size_t n = r->n < LAT_SAMPLES ? r->n : LAT_SAMPLES;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return;
    memcpy(v, r->v, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_double);
    fprintf(f, "# HELP %s %s\n# TYPE %s summary\n", name, help, name);
    const double q[] = {0.5, 0.95, 0.99};
    for (int i = 0; i < 3; i++)
        fprintf(f, "%s{quantile=\"%g\"} %.6f\n", name, q[i], n ? v[(size_t)floor(q[i] * (double)(n - 1))] : 0.0);
    fprintf(f, "%s_sum %.6f\n%s_count %zu\n", name, r->sum, name, r->n);
    free(v);
}

void live_calls_metrics(live_calls *lc, FILE *f) {
    if (!lc) return;
    pthread_mutex_lock(&lc->lock);
    fprintf(f, "# HELP modelpool_live_calls_active Live calls in progress (WebSocket and AudioSocket).\n"
               "# TYPE modelpool_live_calls_active gauge\nmodelpool_live_calls_active %d\n",
            lc->n_active);
    fprintf(f, "# HELP modelpool_live_calls_max Limit on live calls (--max-calls).\n"
               "# TYPE modelpool_live_calls_max gauge\nmodelpool_live_calls_max %d\n",
            lc->opts.max_calls);
    fprintf(f, "# HELP modelpool_live_calls_total Live calls started.\n# TYPE modelpool_live_calls_total counter\n"
               "modelpool_live_calls_total %llu\n",
            lc->started);
    fprintf(f, "# HELP modelpool_live_calls_refused_total Live calls refused at --max-calls or while stopping.\n"
               "# TYPE modelpool_live_calls_refused_total counter\nmodelpool_live_calls_refused_total %llu\n",
            lc->refused);
    lat_write(f, "modelpool_live_partial_latency_seconds",
              "Age of the oldest audio a partial result covers for the first time.", &lc->partial);
    lat_write(f, "modelpool_live_final_latency_seconds", "Age of the audio at a final result's end (endpoint).",
              &lc->final);
    pthread_mutex_unlock(&lc->lock);
}

/* ---- calls ------------------------------------------------------------------------------------- */

live_call *live_call_begin(live_calls *lc, const char *protocol, int fd, char *err, size_t n_err) {
    live_call *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, n_err, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&lc->lock);
    if (lc->stopping || lc->n_active >= lc->opts.max_calls) {
        snprintf(err, n_err, lc->stopping ? "server is shutting down" : "too many live calls (--max-calls %d)",
                 lc->opts.max_calls);
        lc->refused++;
        pthread_mutex_unlock(&lc->lock);
        free(c);
        return NULL;
    }
    c->reg = lc;
    c->protocol = protocol;
    c->fd = fd;
    c->t_last = mono_s();
    snprintf(c->uuid, sizeof c->uuid, "-");
    c->next = lc->calls;
    lc->calls = c;
    lc->n_active++;
    lc->started++;
    pthread_mutex_unlock(&lc->lock);
    return c;
}

int live_call_open_stream(live_call *c, int rate, const mp_request_config *req, mp_lexicon *lex, char *err,
                          size_t n_err) {
    mp_lexicon_free(c->lex);
    c->lex = lex;
    server *srv = c->reg->srv;
    /* No request of its own: the server's defaults through the shared request layer, exactly as an
     * upload with no decoding fields gets them (so decoding.json fills what serve's options leave). */
    mp_app_request rq;
    mp_app_request_init(&rq);
    if (!req) {
        mp_app_defaults def = srv_request_defaults(srv);
        mp_app_error e;
        if (!mp_app_request_build(&rq, mp_pool_model(srv->pool), &def, &e)) {
            snprintf(err, n_err, "%s: %s", e.option, e.message);
            mp_app_request_free(&rq);
            return 0;
        }
        req = &rq.req;
    }
    mp_status st = mp_live_create(srv->pool, rate, req, &c->reg->opts.live, &c->live);
    mp_app_request_free(&rq); /* owns nothing the stream keeps: no word list or LM of its own */
    if (st != MP_OK) {
        snprintf(err, n_err, "%s: %s", mp_strerror(st), mp_last_error());
        return 0;
    }
    c->rate = rate;
    return 1;
}

int live_call_has_stream(const live_call *c) { return c->live != NULL; }
int live_call_rate(const live_call *c) { return c->rate; }
const char *live_call_uuid(const live_call *c) { return c->uuid; }
double live_call_audio_s(const live_call *c) { return c->rate ? (double)c->n_bytes / 2.0 / c->rate : 0.0; }
int live_calls_max(const live_calls *lc) { return lc->opts.max_calls; }

void live_calls_count_refusal(live_calls *lc) {
    pthread_mutex_lock(&lc->lock);
    lc->refused++;
    pthread_mutex_unlock(&lc->lock);
}
double live_calls_idle_s(const live_calls *lc) { return lc->opts.idle_s; }

int live_call_stopping(const live_call *c) {
    pthread_mutex_lock(&c->reg->lock);
    int s = c->reg->closing;
    pthread_mutex_unlock(&c->reg->lock);
    return s;
}

void live_call_set_uuid(live_call *c, const char *uuid) { snprintf(c->uuid, sizeof c->uuid, "%s", uuid); }

mp_status live_call_write(live_call *c, const void *bytes, size_t n, int *events) {
    c->n_bytes += n;
    double now = mono_s();
    c->t_last = now;
    c->arr[c->n_arr % ARRIVALS].audio_s = live_call_audio_s(c);
    c->arr[c->n_arr % ARRIVALS].t = now;
    c->n_arr++;
    return mp_live_write_s16le(c->live, bytes, n, events);
}

/* When the audio at stream time p arrived (the first write that reached it). */
static double arrival(const live_call *c, double p) {
    size_t first = c->n_arr > ARRIVALS ? c->n_arr - ARRIVALS : 0;
    if (c->n_arr == 0) return mono_s();
    for (size_t i = first; i < c->n_arr; i++)
        if (c->arr[i % ARRIVALS].audio_s >= p - 1e-9) return c->arr[i % ARRIVALS].t;
    return c->arr[(c->n_arr - 1) % ARRIVALS].t;
}

mp_result *live_call_partial(live_call *c, int step_ran) {
    mp_result *r = NULL;
    if (mp_live_partial(c->live, &r) != MP_OK) return NULL;
    double covered = mp_result_duration_s(r);
    if (step_ran && covered > c->covered_s + 1e-9) {
        lat_add(c->reg, &c->reg->partial, mono_s() - arrival(c, c->covered_s));
        c->covered_s = covered;
        if (atomic_load(&c->reg->n_subs)) { /* a subscriber arriving just now sees the next one */
            json_t *o = json_pack("{s:s, s:s, s:f}", "uuid", c->uuid, "text", mp_result_text(r), "covered", covered);
            char *t = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
            json_decref(o);
            if (t) publish(c, "partial", t);
            free(t);
        }
    }
    return r;
}

mp_result *live_call_pop_final(live_call *c, double *start_s, double *end_s) {
    mp_result *r = NULL;
    if (mp_live_pop_final(c->live, &r, start_s, end_s) != MP_OK || !r) return NULL;
    lat_add(c->reg, &c->reg->final, mono_s() - arrival(c, *end_s));
    return r;
}

mp_status live_call_flush(live_call *c) { return mp_live_flush(c->live); }

mp_status live_call_finish(live_call *c) {
    c->finished = 1;
    return mp_live_finish(c->live);
}

/* Queue "event: NAME\ndata: JSON\n\n" for every subscriber of uuid (lock held). */
static void publish_locked(live_calls *lc, const char *uuid, const char *name, const char *json) {
    size_t len = strlen(name) + strlen(json) + 16;
    for (live_sub *b = lc->subs; b; b = b->next) {
        if (strcmp(b->uuid, uuid) != 0) continue;
        if (b->pos > 0) { /* compact what was sent */
            memmove(b->q, b->q + b->pos, b->n - b->pos);
            b->n -= b->pos;
            b->pos = 0;
        }
        if (b->n + len > SUB_QUEUE_MAX) continue; /* too far behind: this event is dropped */
        if (b->n + len > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->n + len) cap *= 2;
            char *q = realloc(b->q, cap);
            if (!q) continue;
            b->q = q;
            b->cap = cap;
        }
        b->n += (size_t)snprintf(b->q + b->n, b->cap - b->n, "event: %s\ndata: %s\n\n", name, json);
    }
    pthread_cond_broadcast(&lc->sub_cond);
}

static void publish(live_call *c, const char *name, const char *json) {
    live_calls *lc = c->reg;
    pthread_mutex_lock(&lc->lock);
    if (atomic_load(&lc->n_subs) && strcmp(c->uuid, "-") != 0) publish_locked(lc, c->uuid, name, json);
    pthread_mutex_unlock(&lc->lock);
}

static void log_line(live_call *c, const char *event, json_t *o) {
    live_calls *lc = c->reg;
    /* 15 significant digits: the Unix time to the millisecond, word times as short as they are */
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(o);
    if (!s) return;
    publish(c, event, s);
    pthread_mutex_lock(&lc->log_lock);
    fputs(s, lc->log);
    fputc('\n', lc->log);
    fflush(lc->log);
    pthread_mutex_unlock(&lc->log_lock);
    free(s);
}

void live_call_log_final(live_call *c, const mp_result *res, double start_s, double end_s) {
    json_t *words = json_array();
    for (size_t i = 0; i < mp_result_n_words(res); i++) {
        mp_word w;
        if (mp_result_word(res, i, &w) != MP_OK) break;
        json_array_append_new(words, json_pack("{s:s, s:f, s:f, s:f}", "word", w.word, "start", w.start_s, "end",
                                               w.end_s, "conf", (double)w.confidence));
    }
    log_line(c, "final", json_pack("{s:s, s:s, s:f, s:f, s:s, s:o, s:f}", "uuid", c->uuid, "protocol", c->protocol,
                               "start", start_s, "end", end_s, "text", mp_result_text(res), "words", words, "time",
                               wall_s()));
}

void live_call_log_event(live_call *c, const char *event, const char *value) {
    log_line(c, event, json_pack("{s:s, s:s, s:s, s:s, s:f, s:f}", "uuid", c->uuid, "protocol", c->protocol, "event",
                                 event, "value", value, "at", live_call_audio_s(c), "time", wall_s()));
}

void live_call_end(live_call *c, int log_rest) {
    if (!c) return;
    if (c->live && !c->finished && live_call_finish(c) == MP_OK && log_rest) {
        double a, b;
        mp_result *r;
        while ((r = live_call_pop_final(c, &a, &b)) != NULL) {
            live_call_log_final(c, r, a, b);
            mp_result_free(r);
        }
    }
    mp_live_free(c->live);
    mp_lexicon_free(c->lex);
    live_calls *lc = c->reg;
    pthread_mutex_lock(&lc->lock);
    if (strcmp(c->uuid, "-") != 0) {
        char j[128];
        snprintf(j, sizeof j, "{\"uuid\":\"%s\"}", c->uuid); /* UUIDs are hex and dashes */
        publish_locked(lc, c->uuid, "end", j);
        for (live_sub *b = lc->subs; b; b = b->next)
            if (!strcmp(b->uuid, c->uuid)) b->ended = 1;
    }
    for (live_call **p = &lc->calls; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    lc->n_active--;
    pthread_cond_broadcast(&lc->gone);
    pthread_mutex_unlock(&lc->lock);
    free(c);
}

/* ---- GET /v1/calls/{uuid}/events --------------------------------------------------------------- */

typedef struct sub_ctx {
    live_calls *lc;
    live_sub *sub;
} sub_ctx;

static ssize_t sub_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sub_ctx *x = cls;
    live_calls *lc = x->lc;
    live_sub *b = x->sub;
    pthread_mutex_lock(&lc->lock);
    if (b->pos == b->n && !b->ended && !lc->closing) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&lc->sub_cond, &lc->lock, &ts);
    }
    ssize_t n;
    if (b->pos < b->n) {
        n = (ssize_t)(b->n - b->pos < max ? b->n - b->pos : max);
        memcpy(buf, b->q + b->pos, (size_t)n);
        b->pos += (size_t)n;
    } else if (b->ended || lc->closing) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        static const char keep[] = ": keep-alive\n\n";
        n = (ssize_t)(sizeof keep - 1 < max ? sizeof keep - 1 : max);
        memcpy(buf, keep, (size_t)n);
    }
    pthread_mutex_unlock(&lc->lock);
    return n;
}

static void sub_free(void *cls) {
    sub_ctx *x = cls;
    live_calls *lc = x->lc;
    pthread_mutex_lock(&lc->lock);
    for (live_sub **p = &lc->subs; *p; p = &(*p)->next)
        if (*p == x->sub) {
            *p = x->sub->next;
            atomic_fetch_sub(&lc->n_subs, 1);
            break;
        }
    pthread_mutex_unlock(&lc->lock);
    free(x->sub->q);
    free(x->sub);
    free(x);
}

enum MHD_Result srv_call_events(server *srv, struct MHD_Connection *c, const char *url) {
    live_calls *lc = srv->live;
    const char *id = url + strlen("/v1/calls/"), *slash = strchr(id, '/');
    if (!lc || !slash || strcmp(slash, "/events") != 0 || slash == id || (size_t)(slash - id) >= 64)
        return srv_reply_error(srv, c, MHD_HTTP_NOT_FOUND, "not_found", "use GET /v1/calls/{uuid}/events");
    sub_ctx *x = calloc(1, sizeof *x);
    live_sub *b = calloc(1, sizeof *b);
    if (!x || !b) {
        free(x);
        free(b);
        return MHD_NO;
    }
    memcpy(b->uuid, id, (size_t)(slash - id));
    x->lc = lc;
    x->sub = b;
    pthread_mutex_lock(&lc->lock);
    int found = 0;
    for (live_call *k = lc->calls; k && !found; k = k->next) found = !strcmp(k->uuid, b->uuid);
    if (found && !lc->stopping) {
        b->next = lc->subs;
        lc->subs = b;
        atomic_fetch_add(&lc->n_subs, 1);
    }
    pthread_mutex_unlock(&lc->lock);
    if (!found || lc->stopping) {
        free(b);
        free(x);
        return srv_reply_error(srv, c, MHD_HTTP_NOT_FOUND, "no_such_call", "no live call with that UUID is running");
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sub_read, x, sub_free);
    if (!resp) {
        sub_free(x);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    srv_count_response(srv, MHD_HTTP_OK, 0);
    return ret;
}
