/* http.c - the request handler libmicrohttpd calls on each connection's thread: per-connection
 * state, routing to the endpoints (404 for unknown paths, 405 with Allow for a wrong method, 401
 * without a key), the small GET endpoints (/health, /ready, /v1/models, /v1/stats, /metrics), and
 * the access log line written when a request completes. */
#include "server/internal.h"
#include "server/live.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

_Thread_local request *srv_cur_req;

double srv_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef enum endpoint {
    EP_NONE, EP_TRANSCRIBE, EP_HEALTH, EP_READY, EP_METRICS, EP_MODELS, EP_STATS, EP_STREAM, EP_CALL_EVENTS
} endpoint;

static endpoint route(const char *url) {
    static const struct { const char *path; endpoint ep; } table[] = {
        {"/v1/audio/transcriptions", EP_TRANSCRIBE}, {"/health", EP_HEALTH}, {"/ready", EP_READY},
        {"/metrics", EP_METRICS}, {"/v1/models", EP_MODELS}, {"/v1/stats", EP_STATS},
        {"/v1/stream", EP_STREAM}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(url, table[i].path)) return table[i].ep;
    if (!strncmp(url, "/v1/calls/", 10)) return EP_CALL_EVENTS; /* /v1/calls/{uuid}/events (live-sse.c) */
    return EP_NONE;
}

/* /health and /ready are for load balancers and orchestrators: always open; /metrics too unless
 * --metrics-auth. */
static int needs_key(const server *srv, endpoint ep) {
    return ep != EP_HEALTH && ep != EP_READY && (ep != EP_METRICS || srv->metrics_auth);
}

/* For the access log: no blanks or control bytes, so a line always has its 8 fields. */
static void copy_token(char *dst, size_t cap, const char *src) {
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = (unsigned char)src[i] <= ' ' || (unsigned char)src[i] >= 0x7f ? '?' : src[i];
    dst[i] = '\0';
}

/* First call for a request: its headers are in. Everything that can be refused without the body is
 * refused now, before MHD sends "100 Continue" or reads any of it. A transcription is counted from
 * here, upload included. A shutdown either sees this request (and waits for it) or the request sees
 * the shutdown (and gets 503): both sides write, then read the other's variable, with seq_cst
 * atomics. */
static enum MHD_Result request_begin(server *srv, struct MHD_Connection *c, const char *url, const char *method,
                                     void **con_cls) {
    request *r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->srv = srv;
    r->t0 = srv_now_s();
    copy_token(r->method, sizeof r->method, method);
    copy_token(r->path, sizeof r->path, url);
    *con_cls = r;
    srv_cur_req = r;
    srv_guard_in_request(srv, c, 1);
    endpoint ep = route(url);
    const char *allow = ep == EP_TRANSCRIBE ? "POST, OPTIONS" : "GET, HEAD, OPTIONS";
    if (ep == EP_NONE) return srv_reply_error(srv, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
    if (!strcmp(method, "OPTIONS")) return srv_reply_options(srv, c, allow);
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (ep == EP_TRANSCRIBE ? strcmp(method, "POST") != 0 : !is_get) return srv_reply_405(srv, c, allow);
    if (needs_key(srv, ep) && !srv_authorized(srv, c))
        return srv_reply_error(srv, c, MHD_HTTP_UNAUTHORIZED, "invalid_api_key",
                               "missing or wrong API key: send 'Authorization: Bearer KEY' with a key of the "
                               "server's --api-key-file");
    if (ep != EP_TRANSCRIBE) return MHD_YES;
    enum MHD_Result ret;
    if (srv_form_refuse_headers(srv, c, &ret)) return ret;
    srv_form_begin(r, c);
    atomic_fetch_add(&srv->active, 1);
    r->active = 1;
    r->admitted = !atomic_load(&srv->shutting_down);
    return MHD_YES;
}

/* Liveness: 200 while the process serves, draining or not (a load balancer that restarts what fails
 * /health must not kill a server finishing its requests). */
static enum MHD_Result health(server *srv, struct MHD_Connection *c) {
    int down = atomic_load(&srv->shutting_down);
    mp_pool_stats s;
    mp_pool_get_stats(srv->pool, &s);
    return srv_reply_json(srv, c, MHD_HTTP_OK,
                          json_pack("{s:s, s:i, s:i, s:i}", "status", down ? "draining" : "ok", "workers",
                                    s.pool_size, "busy", s.busy_models, "queue_depth", s.queue_depth));
}

/* Readiness: 503 (with Retry-After) while draining, while no worker is loaded, or while a request
 * would be refused anyway (queue full, memory budget spent); a load balancer sends work elsewhere. */
static enum MHD_Result ready(server *srv, struct MHD_Connection *c) {
    mp_pool_stats s;
    mp_pool_get_stats(srv->pool, &s);
    const char *why = NULL;
    if (atomic_load(&srv->shutting_down))
        why = "draining";
    else if (s.n_workers_loaded < 1)
        why = "no worker loaded";
    else if (srv->queue_capacity > 0 && s.queue_depth >= srv->queue_capacity)
        why = "queue full";
    else if (srv->inflight_budget && atomic_load(&srv->inflight) >= srv->inflight_budget)
        why = "memory budget spent";
    if (why)
        return srv_reply_json(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              json_pack("{s:s, s:s}", "status", "not_ready", "reason", why));
    return srv_reply_json(srv, c, MHD_HTTP_OK,
                          json_pack("{s:s, s:i, s:i, s:i}", "status", "ready", "workers", s.pool_size, "busy",
                                    s.busy_models, "queue_depth", s.queue_depth));
}

static enum MHD_Result metrics(server *srv, struct MHD_Connection *c) {
    char *m = srv_metrics_text(srv);
    if (!m) return srv_reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics", "statistics unavailable");
    return srv_reply(srv, c, MHD_HTTP_OK, "text/plain; version=0.0.4", m);
}

/* The one model served (clients such as the OpenAI SDK list models). */
static enum MHD_Result models(server *srv, struct MHD_Connection *c) {
    return srv_reply_json(srv, c, MHD_HTTP_OK,
                          json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id",
                                    srv->model_name, "object", "model", "created", 0, "owned_by", "modelpool"));
}

static enum MHD_Result stats(server *srv, struct MHD_Connection *c) {
    json_t *o = srv_stats_json(srv);
    if (!o) return srv_reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "stats", "statistics unavailable");
    return srv_reply_json(srv, c, MHD_HTTP_OK, o);
}

static enum MHD_Result transcription(server *srv, struct MHD_Connection *c, request *r) {
    if (!r->pp)
        return srv_reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "bad_content_type",
                               "expected Content-Type multipart/form-data with a 'file' field");
    srv_form_complete(r); /* sets r->bad_form for a truncated body: refused in srv_transcribe */
    if (!r->admitted)
        return srv_reply_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "MP_ERR_SHUTDOWN", "server is shutting down");
    return srv_transcribe(srv, c, r);
}

enum MHD_Result srv_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    (void)version, (void)method;
    server *srv = cls;
    if (*con_cls == NULL) return request_begin(srv, c, url, method, con_cls);
    request *r = *con_cls;
    srv_cur_req = r;
    if (*upload_data_size) {
        if (r->pp) srv_form_feed(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (route(url)) {
    case EP_TRANSCRIBE: return transcription(srv, c, r);
    case EP_HEALTH: return health(srv, c);
    case EP_READY: return ready(srv, c);
    case EP_METRICS: return metrics(srv, c);
    case EP_MODELS: return models(srv, c);
    case EP_STATS: return stats(srv, c);
    case EP_STREAM: return srv_vosk_upgrade(srv, c); /* live calls: vosk protocol (vosk.c) */
    case EP_CALL_EVENTS: return srv_call_events(srv, c, url);
    case EP_NONE: break;
    }
    return srv_reply_error(srv, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

/* --access-log: time client method path status bytes audio_seconds latency_seconds, one line per
 * request, written whole under a lock. A request that got no answer (its client went away) logs 499. */
static void access_log(server *srv, struct MHD_Connection *c, const request *r) {
    char client[NI_MAXHOST] = "-";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (getnameinfo(ci->client_addr, len, client, sizeof client, NULL, 0, NI_NUMERICHOST) != 0) strcpy(client, "-");
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&srv->log_lock);
    fprintf(srv->access_log, "%s.%03ldZ %s %s %s %u %llu %.3f %.3f\n", when, ts.tv_nsec / 1000000L, client,
            r->method[0] ? r->method : "-", r->path[0] ? r->path : "-", r->status ? r->status : 499u,
            (unsigned long long)r->bytes_out, r->audio_s, srv_now_s() - r->t0);
    fflush(srv->access_log);
    pthread_mutex_unlock(&srv->log_lock);
}

void srv_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)toe;
    server *srv = cls;
    request *r = *con_cls;
    if (!r) return;
    if (srv->access_log) access_log(srv, c, r);
    srv_guard_in_request(srv, c, 0); /* a kept-alive connection has --header-timeout-s for the next one */
    if (srv_cur_req == r) srv_cur_req = NULL;
    atomic_fetch_sub(&srv->inflight, r->reserved);
    if (r->active) atomic_fetch_sub(&srv->active, 1);
    srv_form_end(r);
    free(r);
    *con_cls = NULL;
}
