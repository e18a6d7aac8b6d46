/* transcribe.c - POST /v1/audio/transcriptions once the form is in: refuse what cannot run (413,
 * 503, 400), decode the upload with the request's settings (its samples charged to the memory
 * budget before they are allocated), run it (cancelled at the next chunk when the client goes
 * away), answer in response_format (or as an event stream). */
#include "server/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Why a form cannot run, as an HTTP error. */
typedef struct problem {
    unsigned status;
    const char *code;
    char message[160];
} problem;

static int refuse(problem *p, unsigned status, const char *code, const char *message) {
    p->status = status;
    p->code = code;
    snprintf(p->message, sizeof p->message, "%s", message);
    return 1;
}

static int is_response_format(const char *f) {
    return !strcmp(f, "json") || !strcmp(f, "text") || !strcmp(f, "verbose_json") || !strcmp(f, "srt") ||
           !strcmp(f, "vtt");
}

/* 1 with p set when the form's fields refuse it; *fmt is its response_format. */
static int form_problem(const request *r, const char **fmt, problem *p) {
    if (r->bad_form) return refuse(p, MHD_HTTP_BAD_REQUEST, "bad_multipart", r->bad_form);
    if (!r->saw_file || r->n_body == 0)
        return refuse(p, MHD_HTTP_BAD_REQUEST, "missing_file", "expected multipart/form-data with a non-empty 'file' field");
    *fmt = r->response_format[0] ? r->response_format : "json";
    if (!is_response_format(*fmt))
        return refuse(p, MHD_HTTP_BAD_REQUEST, "unsupported_response_format",
                      "response_format must be json, text, verbose_json, srt or vtt");
    if (r->too_long) {
        refuse(p, MHD_HTTP_BAD_REQUEST, "field_too_long", "");
        snprintf(p->message, sizeof p->message, "form field '%s' is too long", r->too_long);
        return 1;
    }
    if (r->stream[0] && strcmp(r->stream, "true") && strcmp(r->stream, "false"))
        return refuse(p, MHD_HTTP_BAD_REQUEST, "bad_stream", "stream must be true or false");
    if (!strcmp(r->stream, "true") && strcmp(*fmt, "json") && strcmp(*fmt, "text"))
        return refuse(p, MHD_HTTP_BAD_REQUEST, "unsupported_response_format",
                      "stream=true works with response_format json or text");
    return 0;
}

int srv_client_gone(void *connection) {
    /* EOF or an error on the socket; a pipelined next request reads as data, not EOF. Called on the
     * request's thread, or on a stream's producer while MHD still holds the connection. */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Through a stream rather than mp_pool_transcribe: each chunk (req.chunk_length_s) leases a worker
 * for that chunk alone, so a long upload does not hold a worker for its whole length and short
 * requests interleave with it. Same chunks, same transcript. A client that hangs up cancels the
 * stream before its next chunk. */
static mp_status run(server *srv, struct MHD_Connection *c, const mp_audio *audio, const mp_request_config *req_in,
                     mp_result **res) {
    size_t n = 0;
    const float *pcm = mp_audio_samples(audio, &n);
    mp_request_config req = *req_in;
    req.cancel_fn = srv_client_gone;
    req.cancel_user_data = c;
    mp_stream *stream = NULL;
    mp_status st = mp_stream_create(srv->pool, mp_audio_rate(audio), &req, &stream);
    if (st == MP_OK) st = mp_stream_write(stream, pcm, n);
    if (st == MP_OK) st = mp_stream_finish(stream, res);
    mp_stream_free(stream);
    return st;
}

/* A refused option: 400 bad_decoding_option / bad_audio_option naming the field. */
static enum MHD_Result reply_option_error(server *srv, struct MHD_Connection *c, const mp_app_error *err) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s: %s", err->option, err->message);
    if (err->st != MP_ERR_INVALID_ARG)
        return srv_reply_error(srv, c, mp_app_http_status(err->st), mp_status_name(err->st), msg);
    return srv_reply_error(srv, c, MHD_HTTP_BAD_REQUEST,
                           err->kind == MP_APP_AUDIO_OPTION ? "bad_audio_option" : "bad_decoding_option", msg);
}

/* mp_audio_config.reserve_fn: the decoder charges its sample buffer to the request before it
 * allocates it (a header's declared length at once). */
static int reserve_samples(size_t bytes, void *user_data) {
    request *r = user_data;
    if (srv_reserve(r->srv, r, bytes)) return 1;
    r->budget_refused = 1;
    return 0;
}

/* Decode the upload; then its buffer (and its share of the budget) goes. */
static mp_status decode(request *r, mp_audio_config *acfg, mp_audio **audio) {
    acfg->reserve_fn = reserve_samples;
    acfg->reserve_user_data = r;
    mp_status st = mp_audio_load_memory(r->body, r->n_body, acfg, audio);
    if (st != MP_OK) return st;
    size_t n = 0;
    mp_audio_samples(*audio, &n);
    r->audio_s = (double)n / mp_audio_rate(*audio);
    srv_form_release_body(r);
    return MP_OK;
}

/* A failed decode: 503 when the memory budget refused it, 413 when the audio is longer than
 * --max-audio-s (declared by its header or found while decoding; the library names max_duration_s),
 * else the library status (415 for a bad format). */
static enum MHD_Result decode_failed(server *srv, struct MHD_Connection *c, const request *r, mp_status st) {
    if (r->budget_refused) return srv_reply_busy(srv, c);
    if (st == MP_ERR_AUDIO_FORMAT && strstr(mp_last_error(), "max_duration_s"))
        return srv_reply_error(srv, c, MHD_HTTP_CONTENT_TOO_LARGE, "audio_too_long", mp_last_error());
    return srv_reply_status(srv, c, st);
}

enum MHD_Result srv_transcribe(server *srv, struct MHD_Connection *c, request *r) {
    if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body over the %zu MB limit", srv->max_body >> 20);
        return srv_reply_error(srv, c, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", msg);
    }
    if (r->over_budget) return srv_reply_busy(srv, c);
    const char *fmt = "json";
    problem p;
    if (form_problem(r, &fmt, &p)) return srv_reply_error(srv, c, p.status, p.code, p.message);

    enum MHD_Result ret;
    mp_app_request rq;
    mp_app_error err;
    mp_audio *audio = NULL;
    mp_result *res = NULL;
    mp_status st;
    int ok = srv_request_options(srv, r, &rq, &err);
    rq.audio.name = r->filename[0] ? r->filename : "upload"; /* errors name the upload, not "<memory>" */
    if (!ok)
        ret = reply_option_error(srv, c, &err);
    else if ((st = decode(r, &rq.audio, &audio)) != MP_OK)
        ret = decode_failed(srv, c, r, st);
    else if (!strcmp(r->stream, "true")) {
        mp_lexicon *lex = rq.own_lexicon; /* the stream's decoder refers to it: the event stream owns it */
        rq.own_lexicon = NULL;
        ret = srv_reply_sse(srv, c, r, audio, lex, &rq.req); /* takes audio and lex */
        audio = NULL;
    } else if ((st = run(srv, c, audio, &rq.req, &res)) == MP_ERR_CANCELLED) {
        srv_count_response(srv, 499, 0); /* nobody to answer: close the connection */
        ret = MHD_NO;
    } else if (st != MP_OK)
        ret = srv_reply_status(srv, c, st);
    else
        ret = srv_reply_result(srv, c, res, fmt);
    mp_result_free(res);
    mp_audio_free(audio);
    mp_app_request_free(&rq);
    return ret;
}
