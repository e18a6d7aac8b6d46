/* serve.c - `modelpool serve`: an HTTP front end over one pool (a thin client of modelpool.h).
 *
 * Endpoints
 *   POST /v1/audio/transcriptions   OpenAI-compatible: multipart/form-data with `file` (any audio format the
 *                                   library decodes), `model` (accepted, informational), `response_format`
 *                                   json|text|verbose_json|srt|vtt. Decoding extensions, all per request:
 *                                   `beam` (width; 0 = greedy), `hotwords` (comma-separated
 *                                   word[:boost]), `words` (a word list restricting the output, comma or
 *                                   whitespace separated), `lexicon` (model|none: the model's own word
 *                                   list with beam search), `lm` (on|off, when serve has --lm),
 *                                   `lm_alpha`, `lm_beta`. Any of them implies beam search (width 16).
 *                                   Audio extensions: `channel` (0-based; default: mix to mono, e.g.
 *                                   one side of a stereo call recording), `raw_format` s16le|mulaw|alaw
 *                                   with `raw_rate` (Hz, default 8000) for headerless uploads.
 *                                   `stream=true`: Server-Sent Events as OpenAI streams transcriptions
 *                                   (transcript.text.delta events while the audio runs chunk by chunk,
 *                                   then transcript.text.done with the whole text).
 *   GET  /v1/models                 the one model served (clients such as the OpenAI SDK list models).
 *   GET  /v1/stats                  JSON: the original design's get_statistics() names (pool_size,
 *                                   total_requests, avg_wait_time, available_models, busy_models) and the
 *                                   rest of the pool snapshot, with the HTTP requests by status.
 *   GET  /health                    liveness: 200 {"status":"ok"|"draining"} while the process serves.
 *   GET  /ready                     readiness: 200 {"status":"ready"}, or 503 {"status":"not_ready","reason"}
 *                                   while draining, with no worker loaded, queue full or memory budget
 *                                   spent. Every 503 carries Retry-After.
 *   GET  /metrics                   Prometheus text format: the pool statistics, modelpool_http_requests_total.
 *
 * Hardening: every limit is an option. --header-timeout-s bounds the time to send the headers (guard.c),
 * --idle-timeout-s a silence while receiving, --max-conn-per-ip the connections of one address (off by
 * default: behind a load balancer every request comes from one address), --max-body-mb the body (checked
 * against Content-Length before "100 Continue"), --max-inflight-mb the memory of uploads and decoded audio
 * together (charged before it is allocated). A client that hangs up cancels its request at the next chunk.
 * --api-key-file, --cors-origin and --access-log are off by default.
 *
 * Concurrency: libmicrohttpd runs a thread per connection; each request blocks only in the pool (which is
 * FIFO-fair, bounded by --queue, and gives up after --timeout-ms), never behind a global model lock. A full
 * queue answers 503 at once (backpressure), a wait past the timeout 504. Request bodies are bounded by
 * --max-body-mb (413 past it). The files of apps/server/ are listed in internal.h.
 */
#include "server/server.h"
#include "server/internal.h"
#include "server/live.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------------------------------ */

typedef struct serve_opts {
    const char *dir, *arch, *host;
    mp_dtype dtype;            /* --dtype */
    int port, workers, queue, timeout_ms, max_body_mb, max_conn, max_inflight_mb, max_per_ip, metrics_auth;
    double max_audio_s, drain_s, header_timeout_s, idle_timeout_s, sse_keepalive_s;
    mp_app_request decoding; /* --beam, --lm-alpha, --lm-beta, read as the request fields are (numbers:
                                no memory held) */
    const char *lexicon_path, *lm_path, *key_path, *cors_origin, *access_log;
    live_cli live;             /* live calls: WebSocket, AudioSocket (live-serve.c) */
} serve_opts;

static void usage_serve(FILE *f) {
    fprintf(f, "usage: modelpool serve [options]\n"
               "  --model DIR          model directory (default: the embedded model)\n"
               "  --arch NAME          random-weight model instead (base|large|tiny; for testing)\n"
               "  --host ADDR          listen address (default 127.0.0.1)\n"
               "  --port N             TCP port (default 8080; 0 = any free port, printed on start)\n"
               "  --workers N          pool workers (default: number of cores)\n"
               "  --dtype fp32|int8    " MP_APP_DTYPE_HELP "\n"
               "  --queue N            waiting requests before 503 (default 64; 0 = unbounded)\n"
               "  --timeout-ms N       wait for a worker before 504 (default 30000)\n"
               "  --max-body-mb N      largest upload (default 100)\n"
               "  --max-audio-s S      longest audio accepted, seconds (default 1800)\n"
               "  --max-connections N  concurrent connections (default 256)\n"
               "  --max-conn-per-ip N  concurrent connections from one client address (default 0 = no cap:\n"
               "                       behind a load balancer every request comes from its one address)\n"
               "  --header-timeout-s S time a connection may take to send its request headers, however slowly\n"
               "                       the bytes come; also the idle time between kept-alive requests (default 10;\n"
               "                       1 s while connections sending headers hold over half the connections)\n"
               "  --idle-timeout-s S   close a connection silent this long while sending (default 30)\n"
               "  --sse-keepalive-s S  stream=true: a comment line after S seconds without output (default 10)\n"
               "  --api-key-file FILE  require 'Authorization: Bearer KEY', KEY one of FILE's lines ('#' comments);\n"
               "                       /health and /ready stay open; 401 otherwise\n"
               "  --metrics-auth       /metrics needs a key too (default: open)\n"
               "  --cors-origin ORIGIN let browser pages from ORIGIN call the API, e.g. https://app.example\n"
               "                       (default: none)\n"
               "  --access-log FILE|-  one line per request: time client method path status bytes audio_s latency_s\n"
               "  --max-inflight-mb N  memory all requests may hold at once (uploads, decoded audio);\n"
               "                       past it new requests get 503 (default 2048; 0 = no limit)\n"
               "  --drain-s S          on SIGINT/SIGTERM, wait up to S seconds for requests and live calls in\n"
               "                       progress (default 120); live calls still running then get their final result\n"
               "  --beam N             default decoding for requests: beam search of width N (default 0 = greedy)\n"
               "  --lexicon FILE       word list used with beam search instead of the model's own\n"
               "  --lm FILE.arpa       word n-gram language model for beam search (requests: lm=off)\n"
               "  --lm-alpha A         LM weight (default 0.5)\n"
               "  --lm-beta B          word insertion bonus (default 1.0)\n"
               "Endpoints: POST /v1/audio/transcriptions, GET /v1/models, /v1/stats, /metrics, /health (liveness: 200\n"
               "while the process serves), /ready (readiness: 503 while draining or when a request would be\n"
               "refused: queue full, memory budget spent). Every 503 carries Retry-After.\n"
               "Stops cleanly on SIGINT/SIGTERM: new requests get 503, requests in progress finish.\n"
               "\n"
               "Request fields beyond OpenAI's (the same values as transcribe's options):\n");
    mp_app_request_help(f, 0);
    fprintf(f, "\n"
               "Examples:\n"
               "  modelpool serve --port 8080 --workers 2 &\n"
               "  curl -F file=@samples/phone-gsm.wav -F beam=16 http://127.0.0.1:8080/v1/audio/transcriptions\n"
               "  modelpool serve --host :: --api-key-file keys.txt --access-log - --max-conn-per-ip 32\n");
    live_cli_usage(f);
    mp_app_print_exit_codes(f);
}

/* Returns -1 to go on, else the exit code (--help, --version, a usage error). */
static int parse_args(int argc, char **argv, serve_opts *o) {
    *o = (serve_opts){.host = "127.0.0.1", .port = 8080, .queue = 64, .timeout_ms = 30000, .max_body_mb = 100,
                      .max_conn = 256, .max_inflight_mb = 2048, .max_audio_s = 1800, .drain_s = 120,
                      .header_timeout_s = 10, .idle_timeout_s = 30, .sse_keepalive_s = 10, .live = live_cli_defaults()};
    mp_app_request_init(&o->decoding);
    mp_app_args a = mp_app_args_begin("serve", argc, argv, usage_serve);
    while (mp_app_args_next(&a)) {
        if (mp_app_opt_str(&a, "--model", &o->dir) || mp_app_opt_str(&a, "--arch", &o->arch) ||
            mp_app_opt_str(&a, "--host", &o->host) || mp_app_opt_int(&a, "--port", 0, 65535, &o->port) ||
            mp_app_opt_int(&a, "--workers", 0, MP_STATS_MAX_WORKERS, &o->workers) || mp_app_opt_dtype(&a, &o->dtype) ||
            mp_app_opt_int(&a, "--queue", 0, 1000000, &o->queue) ||
            mp_app_opt_int(&a, "--timeout-ms", -1, 86400000, &o->timeout_ms) ||
            mp_app_opt_int(&a, "--max-body-mb", 1, 4096, &o->max_body_mb) ||
            mp_app_opt_double(&a, "--max-audio-s", 1, 86400, &o->max_audio_s) ||
            mp_app_opt_int(&a, "--max-connections", 1, 10000, &o->max_conn) ||
            mp_app_opt_int(&a, "--max-inflight-mb", 0, 1 << 20, &o->max_inflight_mb) ||
            mp_app_opt_double(&a, "--drain-s", 0, 86400, &o->drain_s) ||
            mp_app_opt_str(&a, "--lexicon", &o->lexicon_path) || mp_app_opt_str(&a, "--lm", &o->lm_path) ||
            mp_app_opt_request_one(&a, "beam", &o->decoding) || mp_app_opt_request_one(&a, "lm_alpha", &o->decoding) ||
            mp_app_opt_request_one(&a, "lm_beta", &o->decoding) ||
            mp_app_opt_int(&a, "--max-conn-per-ip", 0, 10000, &o->max_per_ip) ||
            mp_app_opt_double(&a, "--header-timeout-s", 0.1, 3600, &o->header_timeout_s) ||
            mp_app_opt_double(&a, "--idle-timeout-s", 1, 86400, &o->idle_timeout_s) ||
            mp_app_opt_double(&a, "--sse-keepalive-s", 0.01, 3600, &o->sse_keepalive_s) ||
            mp_app_opt_str(&a, "--api-key-file", &o->key_path) ||
            mp_app_opt_str(&a, "--cors-origin", &o->cors_origin) || mp_app_opt_str(&a, "--access-log", &o->access_log) ||
            live_cli_opt(&a, &o->live))
            continue;
        if (mp_app_flag(&a, "--metrics-auth")) {
            o->metrics_auth = 1;
            continue;
        }
        mp_app_unknown(&a);
    }
    if (a.finished) return a.rc;
    return mp_app_check_model_args("serve", NULL, o->arch, o->dtype);
}

/* ---- stop signals ------------------------------------------------------------------------------- */

static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_signal, stop_count;

/* Async-signal-safe: note the signal and wake main through the pipe. */
static void on_stop_signal(int sig) {
    int saved = errno;
    stop_signal = sig;
    stop_count++;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(stop_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

/* SIGINT/SIGTERM run a handler that writes to a pipe main waits on. Blocking them and calling
 * sigwait() is not enough: threads started before main (OpenBLAS starts its thread pool when
 * the library loads) have them unblocked, and a signal arriving while main is not in sigwait()
 * (during the drain) would be delivered to such a thread with its default action: exit. */
static int catch_stop_signals(void) {
    if (pipe(stop_pipe) != 0) return 0;
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 1;
}

/* Wait up to ms for a stop signal; returns how many have arrived. The poll times out now and then
 * because sanitizers (TSan) run a signal handler only when the thread leaves a system call, and a
 * handler waiting for the call it should wake would never run. */
static int wait_stop(int ms) {
    struct pollfd pfd = {.fd = stop_pipe[0], .events = POLLIN};
    if (poll(&pfd, 1, ms) == 1) {
        unsigned char b[16];
        ssize_t r = read(stop_pipe[0], b, sizeof b);
        (void)r;
    }
    return stop_count;
}

/* ---- startup, drain, shutdown ------------------------------------------------------------------- */

/* --host: an IPv4 or IPv6 address, or a name (its first IPv4 address, else its first IPv6 one).
 * `shown` receives the address as it goes in a URL ("[::1]" for IPv6). */
static int resolve_host(const char *host, int port, struct sockaddr_storage *out, char *shown, size_t n_shown) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int e = getaddrinfo(host, NULL, &hints, &res);
    if (e != 0 || !res) {
        mp_app_usage_error("serve", "--host '%s': %s", host, e ? gai_strerror(e) : "no address");
        return 0;
    }
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    memset(out, 0, sizeof *out);
    memcpy(out, pick->ai_addr, pick->ai_addrlen);
    freeaddrinfo(res);
    char text[INET6_ADDRSTRLEN] = "?";
    if (out->ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
        a6->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text);
        snprintf(shown, n_shown, "[%s]", text);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)out;
        a4->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &a4->sin_addr, text, sizeof text);
        snprintf(shown, n_shown, "%s", text);
    }
    return 1;
}

/* Keys and the access log: usage errors, before anything heavy is loaded. */
static int server_prepare(server *srv, const serve_opts *o) {
    const mp_app_request *dec = &o->decoding;
    mp_app_defaults def = mp_app_request_defaults();
    *srv = (server){.max_body = (size_t)o->max_body_mb << 20, .max_audio_s = o->max_audio_s,
                    .timeout_ms = o->timeout_ms, .inflight_budget = (size_t)o->max_inflight_mb << 20,
                    .beam = dec->beam >= 0 ? dec->beam : 0,
                    .lm_alpha = dec->has_lm_alpha ? dec->lm_alpha : def.lm_alpha,
                    .lm_beta = dec->has_lm_beta ? dec->lm_beta : def.lm_beta, .queue_capacity = o->queue,
                    .header_timeout_s = o->header_timeout_s, .max_connections = o->max_conn,
                    .sse_keepalive_s = o->sse_keepalive_s, .metrics_auth = o->metrics_auth,
                    .cors_origin = o->cors_origin};
    pthread_mutex_init(&srv->log_lock, NULL);
    pthread_mutex_init(&srv->conn_lock, NULL);
    if (o->metrics_auth && !o->key_path) {
        mp_app_usage_error("serve", "--metrics-auth needs --api-key-file");
        return 0;
    }
    if (o->key_path && !srv_load_keys(srv, o->key_path)) return 0;
    if (o->access_log) {
        srv->access_log = !strcmp(o->access_log, "-") ? stdout : fopen(o->access_log, "a");
        if (!srv->access_log) {
            fprintf(stderr, "modelpool serve: --access-log %s: %s\n", o->access_log, strerror(errno));
            return 0;
        }
    }
    return 1;
}

/* The model, the decoding resources and the pool. On failure what was made is freed by server_close. */
static mp_status server_open(server *srv, const serve_opts *o) {
    mp_status st = mp_app_load_model(o->dir, o->arch, o->dtype, &srv->model);
    if (st == MP_OK && o->lexicon_path) st = mp_lexicon_load(srv->model, o->lexicon_path, &srv->lexicon);
    if (st == MP_OK && o->lm_path) st = mp_lm_load_arpa(o->lm_path, &srv->lm);
    if (st != MP_OK) return st;
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = o->workers;
    pc.queue_capacity = o->queue;
    pc.preload = 1;
    if ((st = mp_pool_create(srv->model, &pc, &srv->pool)) != MP_OK) return st;
    const char *name = o->arch ? o->arch : (o->dir ? o->dir : mp_app_default_model());
    const char *slash = strrchr(name, '/');
    srv->model_name = slash && slash[1] ? slash + 1 : name;
    return MP_OK;
}

static void server_close(server *srv) {
    mp_pool_free(srv->pool);
    mp_lexicon_free(srv->lexicon);
    mp_lm_free(srv->lm);
    mp_model_free(srv->model);
    srv_free_keys(srv);
    if (srv->access_log && srv->access_log != stdout) fclose(srv->access_log);
    pthread_mutex_destroy(&srv->log_lock);
    pthread_mutex_destroy(&srv->conn_lock);
}

static struct MHD_Daemon *start_http(server *srv, const serve_opts *o, const struct sockaddr_storage *addr) {
    /* MHD_ALLOW_UPGRADE: GET /v1/stream becomes a WebSocket (live calls, vosk.c) */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_UPGRADE;
    if (addr->ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    return MHD_start_daemon(flags, 0, NULL, NULL, srv_handle, srv, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr,
                            MHD_OPTION_NOTIFY_COMPLETED, srv_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
                            srv_on_connection, srv, MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_conn,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->max_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->idle_timeout_s + 0.5), MHD_OPTION_END);
}

/* Serve until a stop signal, then drain: requests and live calls in progress run to their end (a
 * long upload needs a worker for each of its chunks, so the pool stays open meanwhile); new ones get
 * 503 (refused, for AudioSocket). After --drain-s or a second signal the live calls still running
 * are ended, each with its final result sent or logged. */
static void serve_until_stopped(server *srv, double drain_s) {
    while (wait_stop(200) == 0) {}
    fprintf(stderr, "modelpool serve: signal %d, finishing in-flight requests and live calls\n", (int)stop_signal);
    atomic_store(&srv->shutting_down, 1);
    live_serve_drain(srv);
    int again = 0;
    for (double waited = 0; (atomic_load(&srv->active) > 0 || live_serve_active(srv) > 0) && waited < drain_s && !again;
         waited += 0.05)
        again = wait_stop(50) > 1;
    if (live_serve_active(srv) > 0)
        fprintf(stderr, "modelpool serve: %d live call(s) still running%s; ending them with their final results\n",
                live_serve_active(srv), again ? " at a second signal" : " after --drain-s");
    live_serve_stop(srv, 10.0); /* a final pass per call, then the close */
    if (atomic_load(&srv->active) > 0)
        fprintf(stderr, "modelpool serve: %d request(s) still running%s; stopping them\n", atomic_load(&srv->active),
                again ? " at a second signal" : " after --drain-s");
    mp_pool_shutdown(srv->pool, -1); /* wakes waiters with 503, waits for leases */
}

int mp_server_main(int argc, char **argv) {
    serve_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    struct sockaddr_storage addr;
    char shown[INET6_ADDRSTRLEN + 2];
    if (!resolve_host(o.host, o.port, &addr, shown, sizeof shown)) return MP_APP_EXIT_USAGE;
    server srv;
    if (!server_prepare(&srv, &o)) {
        server_close(&srv);
        return MP_APP_EXIT_USAGE;
    }
    if (!catch_stop_signals()) {
        fprintf(stderr, "modelpool serve: pipe: %s\n", strerror(errno));
        server_close(&srv);
        return mp_app_exit_code(MP_ERR_IO);
    }
    mp_status st = server_open(&srv, &o);
    pthread_t guard;
    char err[256];
    /* Live calls before HTTP: connection threads read srv.live from the first request on. */
    if (st == MP_OK && !live_serve_start(&srv, &o.live, &addr, shown, err, sizeof err)) {
        fprintf(stderr, "modelpool serve: %s\n", err);
        server_close(&srv);
        return MP_APP_EXIT_USAGE;
    }
    struct MHD_Daemon *d = st == MP_OK ? start_http(&srv, &o, &addr) : NULL;
    if (st != MP_OK) {
        rc = mp_app_report("serve", st);
    } else if (!d) {
        fprintf(stderr, "modelpool serve: cannot listen on %s:%d: %s\n", shown, o.port, strerror(errno));
        rc = mp_app_exit_code(MP_ERR_IO);
        live_serve_stop(&srv, 0);
        live_serve_free(&srv);
    } else if (!srv_guard_start(&srv, &guard)) {
        fprintf(stderr, "modelpool serve: cannot start a thread\n");
        MHD_stop_daemon(d);
        live_serve_stop(&srv, 0);
        live_serve_free(&srv);
        rc = mp_app_exit_code(MP_ERR_INTERNAL);
    } else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        mp_pool_stats ps;
        mp_pool_get_stats(srv.pool, &ps);
        fprintf(stderr, "modelpool serve: listening on http://%s:%u (model %s, %d workers)\n", shown,
                info ? info->port : (unsigned)o.port, srv.model_name, ps.pool_size);
        fflush(stderr);
        serve_until_stopped(&srv, o.drain_s);
        MHD_stop_daemon(d);
        srv_guard_stop(&srv, guard);
        live_serve_free(&srv);
        rc = 0;
    }
    server_close(&srv);
    return rc;
}
