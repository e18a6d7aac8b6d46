/* sse.c - stream=true: the transcript as OpenAI-style Server-Sent Events.
 *
 * The response body is produced by sse_read(), which MHD calls on the connection's thread: each call
 * feeds the next second of audio to the mp_stream (a chunk runs on a leased worker whenever one is
 * complete) and sends what the transcript gained since the last event as a transcript.text.delta.
 * Greedy transcripts only grow at the end, so the deltas add up to the final text. A beam search may
 * revise words it already reported: deltas stop at the first revision and the final
 * transcript.text.done event carries the whole text (which clients should use). */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sse {
    server *srv;
    mp_audio *audio;       /* the decoded upload */
    const float *pcm;
    size_t n, pos;         /* samples, and how many went into the stream */
    size_t slice;          /* samples per step: one second of input */
    mp_stream *stream;
    mp_lexicon *lex;       /* the request's own word list, referenced by the stream's decoder */
    char *sent;            /* text reported in deltas so far */
    size_t n_sent;
    int revised;           /* the transcript stopped being an extension of what was sent */
    char *out;             /* event bytes not yet handed to MHD */
    size_t n_out, out_pos;
    char *final_text;
    enum { SSE_FEED, SSE_FINISH, SSE_DONE_EVENT, SSE_END } state;
} sse;

static void sse_free(void *cls) {
    sse *e = cls;
    mp_stream_free(e->stream);
    mp_lexicon_free(e->lex);
    mp_audio_free(e->audio);
    free(e->sent);
    free(e->out);
    free(e->final_text);
    free(e);
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
        free(e->out);
        e->out = b;
        e->n_out = strlen(b);
        e->out_pos = 0;
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

/* Write the next k samples and report what the transcript gained. */
static mp_status sse_feed(sse *e, size_t k) {
    mp_result *res = NULL;
    mp_status st = mp_stream_write(e->stream, e->pcm + e->pos, k);
    e->pos += k;
    if (st == MP_OK) st = mp_stream_partial(e->stream, &res);
    if (st == MP_OK) sse_delta(e, mp_result_text(res));
    mp_result_free(res);
    e->state = e->pos == e->n ? SSE_FINISH : SSE_FEED;
    return st;
}

/* End of input: the final text, and a last delta if it still extends what was sent. */
static mp_status sse_finish(sse *e) {
    mp_result *res = NULL;
    mp_status st = mp_stream_finish(e->stream, &res);
    if (st == MP_OK && !(e->final_text = strdup(mp_result_text(res)))) st = MP_ERR_NOMEM;
    if (st == MP_OK) sse_delta(e, e->final_text);
    mp_result_free(res);
    e->state = SSE_DONE_EVENT;
    return st;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse *e = cls;
    while (e->out_pos == e->n_out) {
        mp_status st = MP_OK;
        switch (e->state) {
        case SSE_FEED: st = sse_feed(e, e->n - e->pos < e->slice ? e->n - e->pos : e->slice); break;
        case SSE_FINISH: st = sse_finish(e); break;
        case SSE_DONE_EVENT:
            sse_event(e, json_pack("{s:s, s:s}", "type", "transcript.text.done", "text", e->final_text));
            e->state = SSE_END;
            break;
        case SSE_END: return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (st != MP_OK) {
            /* the status line (200) is gone: the error travels as an event, as OpenAI's streams do */
            char msg[1200];
            snprintf(msg, sizeof msg, "%s: %s", mp_strerror(st), mp_last_error());
            sse_event(e, json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "code", mp_status_name(st),
                                   "message", msg));
            e->state = SSE_END;
        }
    }
    size_t k = e->n_out - e->out_pos < max ? e->n_out - e->out_pos : max;
    memcpy(buf, e->out + e->out_pos, k);
    e->out_pos += k;
    return (ssize_t)k;
}

/* The first chunk runs here (and a short input to its end), so a full queue or a timeout is still
 * an HTTP 503/504. */
enum MHD_Result srv_reply_sse(server *srv, struct MHD_Connection *c, mp_audio *audio, mp_lexicon *lex,
                              const mp_request_config *req) {
    sse *e = calloc(1, sizeof *e);
    if (!e) {
        mp_audio_free(audio);
        mp_lexicon_free(lex);
        return srv_reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "MP_ERR_NOMEM", "out of memory");
    }
    e->srv = srv;
    e->audio = audio;
    e->lex = lex;
    e->pcm = mp_audio_samples(audio, &e->n);
    int rate = mp_audio_rate(audio);
    e->slice = (size_t)rate; /* one second per step */
    size_t first = req->chunk_length_s > 0 ? (size_t)(req->chunk_length_s * rate) + 1 : e->n;
    if (first > e->n) first = e->n;
    mp_status st = mp_stream_create(srv->pool, rate, req, &e->stream);
    if (st == MP_OK && first == e->n) {
        st = mp_stream_write(e->stream, e->pcm, first);
        e->pos = first;
        if (st == MP_OK) st = sse_finish(e);
    } else if (st == MP_OK) {
        st = sse_feed(e, first);
    }
    if (st != MP_OK) {
        enum MHD_Result ret = srv_reply_status(srv, c, st);
        sse_free(e);
        return ret;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, e, sse_free);
    if (!resp) {
        sse_free(e);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    srv_count_response(srv, MHD_HTTP_OK);
    return ret;
}
