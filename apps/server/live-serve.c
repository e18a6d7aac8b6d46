/* live-serve.c - `modelpool serve` options for live calls, and their listeners' start and stop:
 * the WebSocket endpoint on the HTTP port (always, GET /v1/stream), an extra port for vosk clients
 * that connect to ws://host:2700 with any path (--vosk-port), the AudioSocket listener. */
#include "server/live.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The second daemon and the AudioSocket listener, kept here (one server per process). */
static struct MHD_Daemon *vosk_daemon;
static audiosocket *as_listener;

live_cli live_cli_defaults(void) {
    return (live_cli){.vosk_port = -1,
                      .opts = {.max_calls = 64, .idle_s = 30.0, .calls_log = NULL, .live = mp_live_default_config()}};
}

int live_cli_opt(mp_app_args *a, live_cli *o) {
    mp_live_config *l = &o->opts.live;
    return mp_app_opt_int(a, "--vosk-port", 0, 65535, &o->vosk_port) ||
           mp_app_opt_str(a, "--audiosocket", &o->audiosocket) ||
           mp_app_opt_int(a, "--max-calls", 1, 100000, &o->opts.max_calls) ||
           mp_app_opt_str(a, "--calls-log", &o->opts.calls_log) ||
           mp_app_opt_double(a, "--call-idle-s", 0, 86400, &o->opts.idle_s) ||
           mp_app_opt_double(a, "--live-step-s", 0.02, 10, &l->partial_interval_s) ||
           mp_app_opt_double(a, "--live-left-s", 0, 30, &l->left_context_s) ||
           mp_app_opt_double(a, "--live-right-s", 0, 30, &l->right_context_s) ||
           mp_app_opt_double(a, "--endpoint-s", 0.02, 60, &l->endpoint_silence_s) ||
           mp_app_opt_double(a, "--max-utterance-s", 0.1, 600, &l->max_utterance_s) ||
           mp_app_opt_double(a, "--final-skip-conf", 0, 1, &l->final_skip_confidence);
}

void live_cli_usage(FILE *f) {
    fprintf(f, "Live calls (docs/LIVE.md):\n"
               "  --vosk-port N        also accept vosk-protocol WebSockets on port N, any path (vosk uses 2700);\n"
               "                       the HTTP port always takes them at GET /v1/stream\n"
               "  --audiosocket H:P    Asterisk AudioSocket listener (e.g. 127.0.0.1:9092)\n"
               "  --calls-log FILE     AudioSocket transcripts, one JSON line per utterance (default: stdout)\n"
               "  --max-calls N        concurrent live calls, both protocols (default 64); beyond: refused\n"
               "  --call-idle-s S      close a call silent on the wire this long (default 30; 0 = never)\n"
               "  --live-step-s S      new audio per partial result (default 0.5)\n"
               "  --live-left-s S      left context re-run each step (default 0.3)\n"
               "  --live-right-s S     right context before a frame is committed (default 0.2)\n"
               "  --endpoint-s S       silence that ends an utterance (default 0.6)\n"
               "  --max-utterance-s S  longest utterance before a cut (default 15)\n"
               "  --final-skip-conf C  no final pass for an utterance whose windowed words all have at least\n"
               "                       this confidence (default 0.8; 0 = always run it)\n");
}

static enum MHD_Result vosk_port_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                        const char *version, const char *upload_data, size_t *upload_data_size,
                                        void **con_cls) {
    (void)url, (void)version, (void)upload_data, (void)con_cls;
    server *srv = cls;
    if (*upload_data_size) return MHD_NO; /* a WebSocket handshake has no body */
    if (strcmp(method, "GET") != 0)
        return srv_reply_error(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use GET with Upgrade");
    if (!srv_authorized(srv, c)) /* --api-key-file: the same key as on the HTTP port */
        return srv_reply_error(srv, c, MHD_HTTP_UNAUTHORIZED, "invalid_api_key",
                               "missing or wrong API key: send 'Authorization: Bearer KEY'");
    return srv_vosk_upgrade(srv, c);
}

int live_serve_start(server *srv, const live_cli *o, const struct sockaddr_storage *http_addr, const char *shown,
                     char *err, size_t n_err) {
    mp_live *probe = NULL;
    mp_status st = mp_live_create(srv->pool, 8000, NULL, &o->opts.live, &probe); /* checks the settings */
    mp_live_free(probe);
    if (st != MP_OK) {
        snprintf(err, n_err, "live settings: %s", mp_last_error());
        return 0;
    }
    if (!live_calls_open(srv, &o->opts, &srv->live, err, n_err)) return 0;
    if (o->audiosocket) {
        if (!audiosocket_start(srv, o->audiosocket, &as_listener, err, n_err)) goto fail;
        fprintf(stderr, "modelpool serve: AudioSocket on %.*s:%d\n",
                (int)(strrchr(o->audiosocket, ':') - o->audiosocket), o->audiosocket, audiosocket_port(as_listener));
    }
    if (o->vosk_port >= 0) {
        /* the HTTP port's address, with the vosk port */
        struct sockaddr_storage addr = *http_addr;
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_UPGRADE |
                         MHD_USE_ERROR_LOG;
        if (addr.ss_family == AF_INET6) {
            ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)o->vosk_port);
            flags |= MHD_USE_IPv6;
        } else {
            ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)o->vosk_port);
        }
        vosk_daemon = MHD_start_daemon(flags,
                                       0, NULL, NULL, vosk_port_handle, srv, MHD_OPTION_SOCK_ADDR,
                                       (const struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
                                       (unsigned)o->opts.max_calls + 16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                       MHD_OPTION_END);
        if (!vosk_daemon) {
            snprintf(err, n_err, "--vosk-port %d: cannot listen: %s", o->vosk_port, strerror(errno));
            goto fail;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(vosk_daemon, MHD_DAEMON_INFO_BIND_PORT);
        fprintf(stderr, "modelpool serve: vosk WebSocket on ws://%s:%u\n", shown, info ? info->port : 0u);
    }
    return 1;
fail:
    audiosocket_stop(as_listener);
    as_listener = NULL;
    live_calls_free(srv->live);
    srv->live = NULL;
    return 0;
}

void live_serve_drain(server *srv) {
    audiosocket_stop(as_listener); /* Asterisk then gets a refused connection and can fail over */
    as_listener = NULL;
    live_calls_drain(srv->live);
}

int live_serve_active(server *srv) { return srv->live ? live_calls_active(srv->live) : 0; }

void live_serve_stop(server *srv, double wait_s) {
    audiosocket_stop(as_listener);
    as_listener = NULL;
    live_calls_stop(srv->live, wait_s);
}

void live_serve_free(server *srv) {
    if (vosk_daemon) MHD_stop_daemon(vosk_daemon);
    vosk_daemon = NULL;
    live_calls_free(srv->live);
    srv->live = NULL;
}
