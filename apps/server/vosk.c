/* vosk.c - the vosk-server WebSocket protocol over an upgraded connection (GET /v1/stream on the
 * HTTP port, any path on --vosk-port).
 *
 * Protocol (as vosk-server's websocket/asr_server.py speaks it)
 *   text {"config": {"sample_rate": 8000, "words": true, "phrase_list": [...], "max_alternatives": 0}}
 *     sets up the recognizer; no reply. Only configs before the first audio take effect.
 *   binary: s16le mono PCM at sample_rate (default 8000). EVERY binary message gets exactly one text
 *     reply: {"partial": "..."} or, when an utterance ended, {"result": [{"conf","end","start","word"}],
 *     "text": "..."} ("result" only with words, the default; {"alternatives": [...]} with
 *     max_alternatives > 0). Two utterances ending within one message come back merged in one reply.
 *   text {"eof" : 1}: the final result, then the server closes. {"reset" : 1}: the final result and
 *     the stream goes on. Any other text message is answered with the current partial.
 *   Times are seconds from the start of the stream. phrase_list restricts the output to its words
 *   (beam search over them, listed words only, whatever the model's decoding.json says about
 *   out-of-list words; "[unk]" is accepted and ignored).
 * The session runs on the connection's MHD thread (thread-per-connection mode lets it block). */
#include "server/live.h"
#include "server/ws.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_MESSAGE (1 << 20)   /* bytes per WebSocket message: 32 s of 16 kHz audio */
#define MAX_PHRASE_WORDS 4096

typedef struct vosk_session {
    server *srv;
    live_call *call;
    ws_conn ws;
    int rate, words, max_alt;
    mp_lexicon *lex;     /* from phrase_list, handed to the call with the stream */
    char *partial;       /* the last partial reply: the partial only changes when a step ran */
} vosk_session;

static int stopping(void *ctx) { return live_call_stopping(((vosk_session *)ctx)->call); }

static int send_json(vosk_session *s, json_t *o) {
    char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!t) return 0;
    int ok = ws_send(&s->ws, WS_TEXT, t, strlen(t));
    free(t);
    return ok;
}

/* Words of one final into arr (vosk's keys), text appended to *text. */
static void add_final(json_t *arr, char **text, const mp_result *r) {
    for (size_t i = 0; i < mp_result_n_words(r); i++) {
        mp_word w;
        if (mp_result_word(r, i, &w) != MP_OK) break;
        json_array_append_new(arr, json_pack("{s:f, s:f, s:f, s:s}", "conf", (double)w.confidence, "end", w.end_s,
                                             "start", w.start_s, "word", w.word));
    }
    const char *t = mp_result_text(r);
    if (!*t) return;
    size_t a = *text ? strlen(*text) : 0, b = strlen(t);
    char *n = realloc(*text, a + b + 2);
    if (!n) return;
    if (a) n[a++] = ' ';
    memcpy(n + a, t, b + 1);
    *text = n;
}

/* The final(s) queued now as one reply (empty text when none). */
static int send_result(vosk_session *s) {
    free(s->partial); /* a new utterance starts with an empty partial */
    s->partial = NULL;
    json_t *arr = json_array();
    char *text = NULL;
    double conf = 0;
    size_t n_words = 0;
    double a, b;
    mp_result *r;
    while (live_call_has_stream(s->call) && (r = live_call_pop_final(s->call, &a, &b)) != NULL) {
        for (size_t i = 0; i < mp_result_n_words(r); i++) {
            mp_word w;
            if (mp_result_word(r, i, &w) == MP_OK) conf += w.confidence, n_words++;
        }
        add_final(arr, &text, r);
        mp_result_free(r);
    }
    json_t *o;
    const char *tx = text ? text : "";
    if (s->max_alt > 0) {
        json_t *alt = json_pack("{s:f, s:s}", "confidence", n_words ? conf / (double)n_words : 0.0, "text", tx);
        if (s->words) json_object_set(alt, "result", arr);
        o = json_pack("{s:[o]}", "alternatives", alt);
    } else if (s->words) {
        o = json_pack("{s:O, s:s}", "result", arr, "text", tx);
    } else {
        o = json_pack("{s:s}", "text", tx);
    }
    json_decref(arr);
    free(text);
    return send_json(s, o);
}

/* Between steps nothing new is committed, so the last partial is sent again without asking the
 * decoder (a beam search's best hypothesis is not free, and replies go out 50 times a second). */
static int send_partial(vosk_session *s, int step_ran) {
    if (step_ran || !s->partial) {
        mp_result *r = live_call_has_stream(s->call) ? live_call_partial(s->call, step_ran) : NULL;
        json_t *o = json_pack("{s:s}", "partial", r ? mp_result_text(r) : "");
        mp_result_free(r);
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!t) return 0;
        free(s->partial);
        s->partial = t;
    }
    return ws_send(&s->ws, WS_TEXT, s->partial, strlen(s->partial));
}

/* {"config": {...}}: 0 with a close sent when a value is unusable. */
static int apply_config(vosk_session *s, json_t *cfg) {
    if (!json_is_object(cfg)) return ws_close(&s->ws, 1007, "config must be an object"), 0;
    if (live_call_has_stream(s->call)) return 1; /* as vosk: settings act when the recognizer is made */
    json_t *v;
    if ((v = json_object_get(cfg, "sample_rate"))) {
        double r = json_number_value(v);
        if (!json_is_number(v) || !(r >= 4000 && r <= 192000)) return ws_close(&s->ws, 1007, "sample_rate must be 4000..192000"), 0;
        s->rate = (int)(r + 0.5);
    }
    if ((v = json_object_get(cfg, "words"))) s->words = json_is_true(v) || (json_is_integer(v) && json_integer_value(v));
    if ((v = json_object_get(cfg, "max_alternatives"))) s->max_alt = json_is_integer(v) ? (int)json_integer_value(v) : 0;
    if ((v = json_object_get(cfg, "phrase_list"))) {
        if (!json_is_array(v)) return ws_close(&s->ws, 1007, "phrase_list must be an array of strings"), 0;
        const char *words[MAX_PHRASE_WORDS];
        char *copies = NULL;
        size_t n = 0, total = 0;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (json_is_string(json_array_get(v, i))) total += json_string_length(json_array_get(v, i)) + 1;
        copies = malloc(total + 1);
        if (!copies) return ws_close(&s->ws, 1011, "out of memory"), 0;
        char *p = copies;
        for (size_t i = 0; i < json_array_size(v); i++) {
            const char *ph = json_string_value(json_array_get(v, i));
            if (!ph) continue;
            strcpy(p, ph);
            for (char *t = strtok(p, " \t"); t && n < MAX_PHRASE_WORDS; t = strtok(NULL, " \t"))
                if (strcasecmp(t, "[unk]") != 0) words[n++] = t;
            p += strlen(ph) + 1;
        }
        mp_lexicon_free(s->lex);
        s->lex = NULL;
        mp_status st = n ? mp_lexicon_from_words(mp_pool_model(s->srv->pool), words, n, &s->lex) : MP_OK;
        free(copies);
        if (st != MP_OK) {
            char why[120];
            snprintf(why, sizeof why, "phrase_list: %s", mp_last_error());
            return ws_close(&s->ws, 1007, why), 0;
        }
    }
    return 1;
}

static int open_stream(vosk_session *s) {
    char err[256];
    mp_request_config req = mp_request_default_config(), *rq = NULL;
    if (s->lex) {
        req.timeout_ms = s->srv->timeout_ms;
        req.decoder = MP_DECODER_BEAM;
        req.beam_width = s->srv->beam > 0 ? s->srv->beam : 16;
        req.lexicon = s->lex;
        req.explicit_fields |= MP_REQ_OOV; /* oov_score 0: the phrase list is the whole vocabulary */
        rq = &req;
    }
    if (!live_call_open_stream(s->call, s->rate, rq, s->lex, err, sizeof err)) {
        s->lex = NULL; /* owned by the call now */
        ws_close(&s->ws, 1011, err);
        return 0;
    }
    s->lex = NULL;
    return 1;
}

/* One text message: 1 go on, 0 end the session. */
static int on_text(vosk_session *s, const char *t, size_t n) {
    json_error_t je;
    json_t *o = json_loadb(t, n, 0, &je);
    json_t *v;
    int ok = 1;
    if (o && (v = json_object_get(o, "config"))) {
        ok = apply_config(s, v);
    } else if (o && (v = json_object_get(o, "eof")) && json_is_true(v) + (json_integer_value(v) != 0)) {
        if (live_call_has_stream(s->call)) live_call_finish(s->call);
        send_result(s);
        ws_close(&s->ws, 1000, "eof");
        ok = 0;
    } else if (o && (v = json_object_get(o, "reset")) && json_is_true(v) + (json_integer_value(v) != 0)) {
        if (live_call_has_stream(s->call) && live_call_flush(s->call) != MP_OK) {
            ws_close(&s->ws, 1011, mp_last_error());
            ok = 0;
        } else {
            ok = send_result(s);
        }
    } else {
        ok = send_partial(s, 0);
    }
    json_decref(o);
    return ok;
}

static int on_binary(vosk_session *s, const unsigned char *p, size_t n) {
    if (!live_call_has_stream(s->call) && !open_stream(s)) return 0;
    int ev = 0;
    mp_status st = live_call_write(s->call, p, n, &ev);
    if (st != MP_OK) {
        char why[120];
        snprintf(why, sizeof why, "%s: %s", mp_strerror(st), mp_last_error());
        ws_close(&s->ws, 1011, why);
        return 0;
    }
    return ev & MP_LIVE_FINAL ? send_result(s) : send_partial(s, ev & MP_LIVE_STEP);
}

static void run_session(vosk_session *s) {
    for (;;) {
        int op;
        const unsigned char *d;
        size_t n;
        int r = ws_read(&s->ws, &op, &d, &n, stopping, s);
        if (r == -2) ws_close(&s->ws, 1001, "idle timeout");
        if (r == 0 && !live_call_stopping(s->call) && !s->ws.sent_close) ws_close(&s->ws, 1000, "");
        if (r == 0 && live_call_stopping(s->call)) {
            /* server stopping: what was said so far, then a going-away close */
            if (live_call_has_stream(s->call)) live_call_finish(s->call);
            send_result(s);
            ws_close(&s->ws, 1001, "server shutting down");
        }
        if (r <= 0) return;
        if (!(op == WS_TEXT ? on_text(s, (const char *)d, n) : on_binary(s, d, n))) return;
    }
}

static void on_upgraded(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra, size_t n_extra,
                        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)c, (void)con_cls;
    server *srv = cls;
    vosk_session s = {.srv = srv, .rate = 8000, .words = 1};
    char err[160];
    if (ws_init(&s.ws, sock, extra, n_extra, MAX_MESSAGE, live_calls_idle_s(srv->live))) {
        s.call = live_call_begin(srv->live, "vosk", sock, err, sizeof err);
        s.ws.send_stop = s.call ? stopping : NULL;
        s.ws.send_stop_ctx = &s;
        if (!s.call) ws_close(&s.ws, 1013, err); /* "try again later": at --max-calls */
        else run_session(&s);
    }
    live_call_end(s.call, 0);
    s.ws.send_stop = NULL; /* the call is gone */
    mp_lexicon_free(s.lex);
    free(s.partial);
    ws_linger(&s.ws, 2.0);
    ws_free(&s.ws);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static int has_token(const char *v, const char *tok) {
    size_t n = strlen(tok);
    for (const char *p = v; p && *p; p++)
        if (strncasecmp(p, tok, n) == 0 && (p == v || p[-1] == ' ' || p[-1] == ',') &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return 1;
    return 0;
}

enum MHD_Result srv_vosk_upgrade(server *srv, struct MHD_Connection *c) {
    const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade");
    const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection");
    const char *ver = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    if (!srv->live)
        return srv_reply_error(srv, c, MHD_HTTP_NOT_FOUND, "not_found", "live calls are not enabled");
    if (!up || !has_token(up, "websocket") || !conn || !has_token(conn, "upgrade"))
        return srv_reply_error(srv, c, MHD_HTTP_UPGRADE_REQUIRED, "upgrade_required",
                               "this endpoint speaks the vosk protocol over a WebSocket (Upgrade: websocket)");
    if (!ver || strcmp(ver, "13") != 0)
        return srv_reply_error(srv, c, MHD_HTTP_UPGRADE_REQUIRED, "websocket_version", "Sec-WebSocket-Version must be 13");
    char accept[64];
    if (!ws_accept_key(key, accept, sizeof accept))
        return srv_reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "websocket_key", "bad or missing Sec-WebSocket-Key");
    if (live_calls_active(srv->live) >= live_calls_max(srv->live)) {
        char msg[96];
        snprintf(msg, sizeof msg, "too many live calls (--max-calls %d)", live_calls_max(srv->live));
        live_calls_count_refusal(srv->live);
        return srv_reply_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "too_many_calls", msg);
    }
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgraded, srv);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    srv_count_response(srv, MHD_HTTP_SWITCHING_PROTOCOLS, 0);
    return ret;
}
