/* http.c - the request handler libmicrohttpd calls on each connection's thread: per-connection
 * state, routing to the endpoints, and the small GET endpoints (/health, /ready, /v1/models). */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

/* First call for a connection: its state. A transcription is counted from its first byte, upload
 * included. A shutdown either sees this request (and waits for it) or the request sees the
 * shutdown (and gets 503): both sides write, then read the other's variable, with seq_cst atomics. */
static request *request_new(server *srv, struct MHD_Connection *c, int is_transcription) {
    request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = srv;
    if (is_transcription) {
        srv_form_begin(r, c);
        atomic_fetch_add(&srv->active, 1);
        r->active = 1;
        r->admitted = !atomic_load(&srv->shutting_down);
    }
    return r;
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

static enum MHD_Result transcription(server *srv, struct MHD_Connection *c, request *r, int is_post) {
    if (!is_post) return srv_reply_error(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use POST");
    if (!r->pp)
        return srv_reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "bad_content_type",
                               "expected Content-Type multipart/form-data with a 'file' field");
    if (!r->admitted)
        return srv_reply_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "MP_ERR_SHUTDOWN", "server is shutting down");
    return srv_transcribe(srv, c, r);
}

enum MHD_Result srv_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    (void)version;
    server *srv = cls;
    int is_post = !strcmp(method, "POST");
    int is_transcribe = !strcmp(url, "/v1/audio/transcriptions");
    if (*con_cls == NULL) {
        *con_cls = request_new(srv, c, is_post && is_transcribe);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    request *r = *con_cls;
    if (*upload_data_size) {
        if (r->pp) srv_form_feed(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (is_transcribe) return transcription(srv, c, r, is_post);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return srv_reply_error(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use GET");
    if (!strcmp(url, "/health")) return health(srv, c);
    if (!strcmp(url, "/ready")) return ready(srv, c);
    if (!strcmp(url, "/metrics")) return metrics(srv, c);
    if (!strcmp(url, "/v1/models")) return models(srv, c);
    return srv_reply_error(srv, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

void srv_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c, (void)toe;
    server *srv = cls;
    request *r = *con_cls;
    if (!r) return;
    atomic_fetch_sub(&srv->inflight, r->reserved);
    if (r->active) atomic_fetch_sub(&srv->active, 1);
    srv_form_end(r);
    free(r);
    *con_cls = NULL;
}
