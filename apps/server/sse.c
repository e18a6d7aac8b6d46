/* sse.c - stream=true: the transcript as OpenAI-style Server-Sent Events.
 *
 * A producer thread per stream feeds the decoded upload to an mp_stream a second at a time (a chunk
 * runs on a leased worker whenever one is complete) and queues what the transcript gained since the
 * last event as a transcript.text.delta. Greedy transcripts only grow at the end, so the deltas add
 * up to the final text. A beam search may revise words it already reported: deltas stop at the
 * first revision and the final transcript.text.done event carries the whole text (which clients
 * should use).
 *
 * sse_read(), which MHD calls on the connection's thread, hands the queued bytes out; when nothing
 * came for --sse-keepalive-s (default 10 s) it sends a comment line instead, so proxies and clients
 * see a live connection while a chunk waits for a worker or silence gives no text. The stream is
 * cancelled (it stops before its next chunk and its worker goes back) when the client's socket
 * reads as closed, or when MHD frees the response (sse_free) after a failed write. */
#include "server/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sse {
    server *srv;
    struct MHD_Connection *c; /* alive until sse_free, which joins the producer first */
    request *r;            /* for the access log; touched only in sse_read (the connection's thread) */
    mp_audio *audio;       /* the decoded upload */
    const float *pcm;
    size_t n, pos;         /* samples, and how many went into the stream */
    size_t slice;          /* samples per step: one second of input */
    mp_stream *stream;
    mp_lexicon *lex;       /* the request's own word list, referenced by the stream's decoder */
    char *sent;            /* text reported in deltas so far */
    size_t n_sent;
    int revised;           /* the transcript stopped being an extension of what was sent */
    char *final_text;
    atomic_int cancel;     /* set by sse_free: the client is gone */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;  /* guards q, n_q, q_pos, done */
    pthread_cond_t more;
    char *q;               /* event bytes produced, not yet handed to MHD */
    size_t n_q, cap_q, q_pos;
    int done;              /* the producer queued its last event */
} sse;

/* The producer's cancel_fn: MHD freed the response, or the client's socket reads as closed (with no
 * event due, MHD itself would notice only at the next keep-alive). */
static int sse_cancelled(void *ud) {
    sse *e = ud;
    return atomic_load(&e->cancel) || srv_client_gone(e->c);
}

static void sse_free(void *cls) {
    sse *e = cls;
    atomic_store(&e->cancel, 1);
    if (e->started) pthread_join(e->thread, NULL); /* returns at the next chunk at the latest */
    mp_stream_free(e->stream);
    mp_lexicon_free(e->lex);
    mp_audio_free(e->audio);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->more);
    free(e->sent);
    free(e->q);
    free(e->final_text);
    free(e);
}

/* Queue bytes for the client (any thread). */
static void sse_push(sse *e, const char *b, size_t n) {
    pthread_mutex_lock(&e->lock);
    if (e->n_q + n > e->cap_q) {
        size_t cap = e->cap_q ? e->cap_q : 1024;
        while (cap < e->n_q + n) cap *= 2;
        char *q = realloc(e->q, cap);
        if (!q) {
            pthread_mutex_unlock(&e->lock);
            return;
        }
        e->q = q;
        e->cap_q = cap;
    }
    memcpy(e->q + e->n_q, b, n);
    e->n_q += n;
    pthread_cond_signal(&e->more);
    pthread_mutex_unlock(&e->lock);
}

/* Queue one event: "data: <json>\n\n". */
static void sse_event(sse *e, json_t *o) {
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!j) return;
    size_t need = strlen(j) + 9; /* "data: " + json + "\n\n" + NUL */
    char *b = malloc(need);
    if (b) {
        snprintf(b, need, "data: %s\n\n", j);
        sse_push(e, b, strlen(b));
        free(b);
    }
    free(j);
}

/* A delta for what `text` adds to what was sent, if it extends it. */
static void sse_delta(sse *e, const char *text) {
    size_t n = strlen(text);
    if (e->revised || n <= e->n_sent) return;
    if (strncmp(text, e->sent ? e->sent : "", e->n_sent) != 0) {
        e->revised = 1;
        return;
    }
    char *t = strdup(text);
    if (!t) return;
    sse_event(e, json_pack("{s:s, s:s}", "type", "transcript.text.delta", "delta", text + e->n_sent));
    free(e->sent);
    e->sent = t;
    e->n_sent = n;
}

static void sse_error_event(sse *e, mp_status st) {
    /* the status line (200) is gone: the error travels as an event, as OpenAI's streams do */
    char msg[1200];
    snprintf(msg, sizeof msg, "%s: %s", mp_strerror(st), mp_last_error());
    sse_event(e, json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "code", mp_status_name(st),
                           "message", msg));
}

/* The producer: the rest of the audio, the final text, the done event. */
static void *sse_main(void *arg) {
    sse *e = arg;
    mp_status st = MP_OK;
    while (st == MP_OK && e->pos < e->n) {
        size_t k = e->n - e->pos < e->slice ? e->n - e->pos : e->slice;
        mp_result *res = NULL;
        st = mp_stream_write(e->stream, e->pcm + e->pos, k);
        e->pos += k;
        if (st == MP_OK) st = mp_stream_partial(e->stream, &res);
        if (st == MP_OK) sse_delta(e, mp_result_text(res));
        mp_result_free(res);
    }
    if (st == MP_OK && !e->final_text) {
        mp_result *res = NULL;
        st = mp_stream_finish(e->stream, &res);
        if (st == MP_OK && !(e->final_text = strdup(mp_result_text(res)))) st = MP_ERR_NOMEM;
        if (st == MP_OK) sse_delta(e, e->final_text);
        mp_result_free(res);
    }
    if (st == MP_OK)
        sse_event(e, json_pack("{s:s, s:s}", "type", "transcript.text.done", "text", e->final_text));
    else if (st != MP_ERR_CANCELLED)
        sse_error_event(e, st);
    pthread_mutex_lock(&e->lock);
    e->done = 1;
    pthread_cond_signal(&e->more);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse *e = cls;
    static const char keepalive[] = ": keep-alive\n\n";
    pthread_mutex_lock(&e->lock);
    if (e->q_pos == e->n_q && !e->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double w = e->srv->sse_keepalive_s;
        ts.tv_sec += (time_t)w;
        ts.tv_nsec += (long)((w - (double)(time_t)w) * 1e9);
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        while (e->q_pos == e->n_q && !e->done)
            if (pthread_cond_timedwait(&e->more, &e->lock, &ts) == ETIMEDOUT) break;
    }
    size_t k = 0;
    if (e->q_pos < e->n_q) {
        k = e->n_q - e->q_pos < max ? e->n_q - e->q_pos : max;
        memcpy(buf, e->q + e->q_pos, k);
        e->q_pos += k;
        if (e->q_pos == e->n_q) e->q_pos = e->n_q = 0;
    } else if (!e->done) {
        k = sizeof keepalive - 1 < max ? sizeof keepalive - 1 : max;
        memcpy(buf, keepalive, k);
    }
    int end = k == 0 && e->done;
    pthread_mutex_unlock(&e->lock);
    if (end) return MHD_CONTENT_READER_END_OF_STREAM;
    if (e->r) e->r->bytes_out += k;
    return (ssize_t)k;
}

/* Answer with an event stream. Takes audio and lex (freed on every path). The first chunk runs here
 * (and a short input to its end), so a full queue or a timeout is still an HTTP 503/504. */
enum MHD_Result srv_reply_sse(server *srv, struct MHD_Connection *c, request *r, mp_audio *audio, mp_lexicon *lex,
                              const mp_request_config *req_in) {
    sse *e = calloc(1, sizeof *e);
    if (!e) {
        mp_audio_free(audio);
        mp_lexicon_free(lex);
        return srv_reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "MP_ERR_NOMEM", "out of memory");
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->more, NULL);
    e->srv = srv;
    e->c = c;
    e->r = r;
    e->audio = audio;
    e->lex = lex;
    e->pcm = mp_audio_samples(audio, &e->n);
    int rate = mp_audio_rate(audio);
    e->slice = (size_t)rate; /* one second per step */
    mp_request_config req = *req_in;
    req.cancel_fn = sse_cancelled; /* from here on the client is gone when MHD frees the response */
    req.cancel_user_data = e;
    size_t first = req.chunk_length_s > 0 ? (size_t)(req.chunk_length_s * rate) + 1 : e->n;
    if (first > e->n) first = e->n;
    mp_result *res = NULL;
    mp_status st = mp_stream_create(srv->pool, rate, &req, &e->stream);
    if (st == MP_OK) st = mp_stream_write(e->stream, e->pcm, first);
    e->pos = first;
    if (st == MP_OK && first == e->n) {
        st = mp_stream_finish(e->stream, &res);
        if (st == MP_OK && !(e->final_text = strdup(mp_result_text(res)))) st = MP_ERR_NOMEM;
        if (st == MP_OK) sse_delta(e, e->final_text);
    } else if (st == MP_OK) {
        st = mp_stream_partial(e->stream, &res);
        if (st == MP_OK) sse_delta(e, mp_result_text(res));
    }
    mp_result_free(res);
    if (st != MP_OK) {
        sse_free(e);
        return srv_reply_status(srv, c, st);
    }
    if (pthread_create(&e->thread, NULL, sse_main, e) != 0) {
        sse_free(e);
        return srv_reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "MP_ERR_INTERNAL", "cannot start a thread");
    }
    e->started = 1;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, e, sse_free);
    if (!resp) {
        sse_free(e);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    srv_decorate(srv, c, resp, MHD_HTTP_OK);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    srv_count_response(srv, MHD_HTTP_OK, 0);
    return ret;
}
