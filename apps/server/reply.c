/* reply.c - the server's responses: bodies handed to MHD, JSON, OpenAI-style error objects, and a
 * transcript rendered in each response_format. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_decorate(server *srv, struct MHD_Connection *c, struct MHD_Response *resp, unsigned status) {
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) MHD_add_response_header(resp, "Retry-After", RETRY_AFTER_S);
    if (status == MHD_HTTP_UNAUTHORIZED) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    const char *origin = srv_allowed_origin(srv, c);
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
}

enum MHD_Result srv_reply_ex(server *srv, struct MHD_Connection *c, unsigned status, const char *type, char *body,
                             const char *name, const char *value) {
    /* body is malloc'ed and handed to MHD, which frees it */
    size_t n = strlen(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    if (name) MHD_add_response_header(resp, name, value);
    srv_decorate(srv, c, resp, status);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    srv_count_response(srv, status, n);
    return ret;
}

enum MHD_Result srv_reply(server *srv, struct MHD_Connection *c, unsigned status, const char *type, char *body) {
    return srv_reply_ex(srv, c, status, type, body, NULL, NULL);
}

/* JSON text with a final newline, malloc'ed; consumes o. */
static char *json_text(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}

enum MHD_Result srv_reply_json(server *srv, struct MHD_Connection *c, unsigned status, json_t *o) {
    char *t = json_text(o);
    return t ? srv_reply(srv, c, status, "application/json", t) : MHD_NO;
}

static json_t *error_object(unsigned status, const char *code, const char *message) {
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    return json_pack("{s:{s:s, s:s, s:s}}", "error", "message", message, "type", type, "code", code);
}

enum MHD_Result srv_reply_error(server *srv, struct MHD_Connection *c, unsigned status, const char *code,
                                const char *message) {
    return srv_reply_json(srv, c, status, error_object(status, code, message));
}

enum MHD_Result srv_reply_405(server *srv, struct MHD_Connection *c, const char *allow) {
    char msg[96];
    snprintf(msg, sizeof msg, "method not allowed here; use %s", allow);
    char *t = json_text(error_object(MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg));
    return t ? srv_reply_ex(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json", t, "Allow", allow) : MHD_NO;
}

enum MHD_Result srv_reply_status(server *srv, struct MHD_Connection *c, mp_status st) {
    char msg[1200];
    snprintf(msg, sizeof msg, "%s: %s", mp_strerror(st), mp_last_error());
    return srv_reply_error(srv, c, mp_app_http_status(st), mp_status_name(st), msg);
}

enum MHD_Result srv_reply_busy(server *srv, struct MHD_Connection *c) {
    char msg[160];
    snprintf(msg, sizeof msg, "server busy: requests in progress hold the %zu MB memory budget; retry later",
             srv->inflight_budget >> 20);
    return srv_reply_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_busy", msg);
}

/* OpenAI's verbose_json: the text, its words with times, one segment for the whole input. */
static json_t *verbose_json(const mp_result *res) {
    json_t *words = mp_app_words_json(res);
    double d = mp_result_duration_s(res);
    json_t *seg = json_pack("[{s:i, s:f, s:f, s:s}]", "id", 0, "start", 0.0, "end", d, "text", mp_result_text(res));
    return json_pack("{s:s, s:s, s:f, s:s, s:o, s:o}", "task", "transcribe", "language", "en", "duration", d, "text",
                     mp_result_text(res), "words", words, "segments", seg);
}

enum MHD_Result srv_reply_result(server *srv, struct MHD_Connection *c, const mp_result *res, const char *fmt) {
    if (!strcmp(fmt, "text")) {
        const char *t = mp_result_text(res);
        char *body = malloc(strlen(t) + 2);
        if (body) sprintf(body, "%s\n", t);
        return body ? srv_reply(srv, c, MHD_HTTP_OK, "text/plain; charset=utf-8", body) : MHD_NO;
    }
    if (!strcmp(fmt, "srt") || !strcmp(fmt, "vtt")) {
        int vtt = fmt[0] == 'v';
        char *body = mp_app_subtitles(res, vtt);
        return body ? srv_reply(srv, c, MHD_HTTP_OK, vtt ? "text/vtt; charset=utf-8" : "text/plain; charset=utf-8",
                                body)
                    : MHD_NO;
    }
    if (!strcmp(fmt, "json")) return srv_reply_json(srv, c, MHD_HTTP_OK, json_pack("{s:s}", "text", mp_result_text(res)));
    return srv_reply_json(srv, c, MHD_HTTP_OK, verbose_json(res));
}
