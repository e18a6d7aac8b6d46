/* internal.h - what the server's files share (apps/server/ only; the CLI sees server.h).
 *
 * Files, by concern
 *   serve.c       `modelpool serve`: options, startup, stop signals, graceful drain
 *   http.c        the MHD request handler: per-connection state, routing, /health, /v1/models
 *   form.c        the multipart/form-data upload: the file part and the text fields, size limits
 *   options.c     a request's form fields -> mp_request_config / mp_audio_config
 *   transcribe.c  POST /v1/audio/transcriptions: checks, decoding the upload, running it
 *   sse.c         stream=true: the transcript as Server-Sent Events
 *   reply.c       responses: JSON, text, OpenAI-style errors, a result in each response_format
 *   metrics.c     GET /metrics (Prometheus text), GET /v1/stats (JSON), the response counters behind them
 *   auth.c        API keys (--api-key-file), CORS (--cors-origin)
 *   guard.c       connection limits: the total time to receive the headers (--header-timeout-s)
 * They may call apps/common/ and modelpool.h; never the CLI. */
#ifndef MP_SERVER_INTERNAL_H
#define MP_SERVER_INTERNAL_H

#include "common/app.h"
#include "common/request.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Statuses counted one by one in modelpool_http_requests_total{code=...} (metrics.c). 499 (as nginx
 * logs it) is a request cancelled because its client went away. */
#define SRV_N_HTTP_CODES 13
extern const unsigned srv_http_codes[SRV_N_HTTP_CODES];

typedef struct server {
    mp_model *model;
    mp_pool *pool;
    const char *model_name;
    size_t max_body;
    double max_audio_s;
    int timeout_ms;
    /* Decoding defaults for every request (serve --beam/--lexicon/--lm...); shared read-only. */
    int beam;                  /* 0 = greedy */
    mp_lexicon *lexicon;       /* --lexicon, replaces the model's own word list */
    mp_lm *lm;                 /* --lm */
    float lm_alpha, lm_beta;
    /* Memory held by requests (upload buffers, decoded audio), bytes, against --max-inflight-mb:
     * a request that would pass the budget gets 503, so many large uploads at once cannot exhaust
     * the machine's memory. 0 = no budget. */
    size_t inflight_budget;
    atomic_size_t inflight;
    atomic_int shutting_down;
    atomic_int active;         /* transcription requests between arrival and completion */
    atomic_ullong http_2xx, http_4xx, http_5xx;
    atomic_ullong http_by_code[SRV_N_HTTP_CODES + 1]; /* per srv_http_codes[]; the last: any other */
    int queue_capacity;        /* --queue: /ready answers 503 while that many requests wait */
    double header_timeout_s;   /* --header-timeout-s: total time to receive a request's headers */
    int max_connections;       /* --max-connections (guard.c sheds slow headers past half of it) */
    double sse_keepalive_s;    /* --sse-keepalive-s: an event stream's longest silence */
    /* --api-key-file: the keys, compared in constant time; none = no authentication */
    char **keys;
    size_t n_keys;
    int metrics_auth;          /* --metrics-auth: /metrics needs a key too */
    const char *cors_origin;   /* --cors-origin: the one browser origin allowed; NULL = none */
    FILE *access_log;          /* --access-log; NULL = none */
    pthread_mutex_t log_lock;
    /* connections still receiving their headers (guard.c) */
    pthread_mutex_t conn_lock;
    struct conn_track *conns;
    atomic_int stop_guard;
    struct live_calls *live;   /* live calls (live.h): WebSocket and AudioSocket; NULL when off */
} server;

/* Per-connection request state (MHD's con_cls). */
typedef struct request {
    server *srv;
    size_t reserved;      /* bytes of srv->inflight this request holds; given back when it completes */
    size_t n_upload;      /* request body bytes received so far */
    int active;           /* counted in srv->active */
    int admitted;         /* arrived before a shutdown began: runs to its end */
    int over_budget;
    struct MHD_PostProcessor *pp;
    char *body;           /* the `file` part */
    size_t n_body, cap_body;
    int too_large;
    int saw_file;
    char response_format[32];
    char model[128];
    char beam[16];
    char hotwords[4096];
    char words[32768];
    char lexicon[16];
    char lm[8];
    char lm_alpha[32], lm_beta[32];
    char channel[16], raw_format[16], raw_rate[16];
    char stream[8];
    const char *too_long; /* name of a text field over its buffer: the request is refused (400) */
    const char *bad_form; /* why the multipart body is malformed (400); NULL while it is fine */
    size_t file_next;     /* offset the next piece of the `file` part continues at */
    int budget_refused;   /* decoding was refused by the memory budget (503) */
    /* for the access log */
    double t0;            /* monotonic s, headers in */
    char method[16], path[128];
    unsigned status;      /* 0 until answered */
    uint64_t bytes_out;
    double audio_s;
    char filename[256];   /* the file part's name as the client sent it (errors name the upload) */
} request;

/* The request being served on this thread (MHD runs one thread per connection): replies note their
 * status and size there for the access log. */
extern _Thread_local request *srv_cur_req;
double srv_now_s(void); /* monotonic, seconds */

/* http.c: MHD's access handler and completion callback (cls is the server). */
enum MHD_Result srv_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void srv_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);

/* form.c: parse a multipart upload into r (0 when MHD cannot: not multipart/form-data); feed it the
 * body as it arrives; check it ended with its closing boundary (0 and r->bad_form set when not);
 * release what it holds. */
int srv_form_begin(request *r, struct MHD_Connection *c);
void srv_form_feed(request *r, const char *data, size_t size);
int srv_form_complete(request *r);
void srv_form_end(request *r);
/* Before any of the body is read (so before "100 Continue"): one well-formed Content-Length within
 * --max-body-mb and the memory budget. Returns 1 with the answer queued in *ret when refused. */
int srv_form_refuse_headers(server *srv, struct MHD_Connection *c, enum MHD_Result *ret);
/* Give back the upload buffer once decoded. */
void srv_form_release_body(request *r);
/* Take bytes from the server's in-flight memory budget for r; 0 when that would pass it. */
int srv_reserve(server *srv, request *r, size_t bytes);

/* options.c: the request's settings (rq->req, rq->audio): its option fields over the server's
 * defaults. 0 with err set when a field is refused. Free rq with mp_app_request_free either way. */
int srv_request_options(server *srv, request *r, mp_app_request *rq, mp_app_error *err);
/* What a request starts from: serve's --beam, --lexicon, --lm, --lm-alpha/beta, limits. */
mp_app_defaults srv_request_defaults(const server *srv);

/* transcribe.c: POST /v1/audio/transcriptions once the upload is complete. */
enum MHD_Result srv_transcribe(server *srv, struct MHD_Connection *c, request *r);
/* mp_request_config.cancel_fn (user_data: the MHD connection): the client is gone when its socket
 * reads as closed. */
int srv_client_gone(void *connection);

/* sse.c: answer with an event stream. Takes audio and lex (freed on every path). */
enum MHD_Result srv_reply_sse(server *srv, struct MHD_Connection *c, request *r, mp_audio *audio, mp_lexicon *lex,
                              const mp_request_config *req);

/* reply.c: queue a response; each counts in the metrics, and every 503 says when to come back
 * (Retry-After: RETRY_AFTER_S). body is malloc'ed and handed over; o is consumed. */
#define RETRY_AFTER_S "5"
enum MHD_Result srv_reply(server *srv, struct MHD_Connection *c, unsigned status, const char *type, char *body);
/* The same with one more header (name NULL: none). */
enum MHD_Result srv_reply_ex(server *srv, struct MHD_Connection *c, unsigned status, const char *type, char *body,
                             const char *name, const char *value);
enum MHD_Result srv_reply_json(server *srv, struct MHD_Connection *c, unsigned status, json_t *o);
/* OpenAI-style error object {"error": {"message", "type", "code"}}. */
enum MHD_Result srv_reply_error(server *srv, struct MHD_Connection *c, unsigned status, const char *code,
                                const char *message);
/* 405 with Allow (RFC 9110 section 15.5.6). */
enum MHD_Result srv_reply_405(server *srv, struct MHD_Connection *c, const char *allow);
/* What every response carries: Retry-After on 503, WWW-Authenticate on 401, CORS headers for the
 * allowed origin. Then counts it. Used by the replies here and by responses built elsewhere. */
void srv_decorate(server *srv, struct MHD_Connection *c, struct MHD_Response *resp, unsigned status);
/* A library failure: its HTTP status, mp_status_name() as the code, the library's message. */
enum MHD_Result srv_reply_status(server *srv, struct MHD_Connection *c, mp_status st);
/* 503 when a request would take the in-flight memory past --max-inflight-mb. */
enum MHD_Result srv_reply_busy(server *srv, struct MHD_Connection *c);
/* A transcript in response_format fmt (json, text, verbose_json, srt, vtt). */
enum MHD_Result srv_reply_result(server *srv, struct MHD_Connection *c, const mp_result *res, const char *fmt);

/* metrics.c: count a response by class and code (and note it on srv_cur_req for the access log);
 * the /metrics text (malloc'ed, NULL on failure); the /v1/stats object (NULL on failure). */
void srv_count_response(server *srv, unsigned status, uint64_t bytes);
char *srv_metrics_text(server *srv);
json_t *srv_stats_json(server *srv);

/* auth.c: whether the request carries one of the keys ("Authorization: Bearer KEY"; always when no
 * key is configured); the request's Origin when it is --cors-origin, else NULL; the answer to
 * OPTIONS (a CORS preflight from the allowed origin); --api-key-file's keys into srv (0 with a
 * message on stderr when the file cannot be read or holds none); wipe and free them. */
int srv_authorized(const server *srv, struct MHD_Connection *c);
const char *srv_allowed_origin(const server *srv, struct MHD_Connection *c);
enum MHD_Result srv_reply_options(server *srv, struct MHD_Connection *c, const char *allow);
int srv_load_keys(server *srv, const char *path);
void srv_free_keys(server *srv);

/* guard.c: MHD's connection notifications (cls is the server), a request's headers in or done
 * (the header clock stops, or starts again for the next request on a kept-alive connection), and
 * the thread that closes connections past --header-timeout-s. */
void srv_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
void srv_guard_in_request(server *srv, struct MHD_Connection *c, int in_request);
int srv_guard_start(server *srv, pthread_t *thread);
void srv_guard_stop(server *srv, pthread_t thread);

#endif
