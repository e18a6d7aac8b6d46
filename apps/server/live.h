/* live.h - live calls in the server (apps/server/ only): the vosk-protocol WebSocket endpoint
 * (ws.c framing, vosk.c protocol), the Asterisk AudioSocket listener (audiosocket.c) and what both
 * share (live-calls.c: the call registry and --max-calls, per-call latency, the calls log, metrics).
 *
 * Threads: every call runs on its own thread (an MHD connection thread for WebSockets, a thread
 * per accepted AudioSocket connection) and blocks only in its socket (with a timeout) and in the
 * pool (one lease per step). The registry's lock protects its call list, counters and latency
 * samples; the log has its own lock so a slow log file never blocks the registry. */
#ifndef MP_SERVER_LIVE_H
#define MP_SERVER_LIVE_H

#include "server/internal.h"

#include <stdio.h>
#include <sys/socket.h>

typedef struct live_calls live_calls;
typedef struct live_call live_call;

typedef struct live_opts {
    int max_calls;            /* concurrent live calls (both protocols); beyond: refused */
    double idle_s;            /* a call with no message for this long is closed */
    const char *calls_log;    /* AudioSocket finals, one JSON line each; NULL or "-" = stdout */
    mp_live_config live;      /* steps, contexts, endpoints */
} live_opts;

/* The registry (with srv's pool and decoding defaults). 0 with err set when the log cannot open. */
int live_calls_open(server *srv, const live_opts *o, live_calls **out, char *err, size_t n_err);
/* Drain: new calls are refused; calls in progress go on until they end. NULL is a no-op. */
void live_calls_drain(live_calls *lc);
/* Stop: new calls are refused; every call in progress is told to end (it sees it within 200 ms):
 * it finishes its stream, sends (vosk) or logs (AudioSocket) its last final results, closes and
 * leaves. Returns when none is left or after wait_s; halfway through, the sockets of calls still
 * there are shut down (a peer that stopped reading must not hold the stop). NULL is a no-op. */
void live_calls_stop(live_calls *lc, double wait_s);
/* Free, once nothing can reach the registry any more (the HTTP daemons stopped). A registry with
 * calls still inside is left allocated (they may still use it). NULL is a no-op. */
void live_calls_free(live_calls *lc);
/* Write the live metrics (calls active, partial and final latency) in Prometheus text. */
void live_calls_metrics(live_calls *lc, FILE *f);
/* Calls running now (for /health and refusal messages); the --max-calls limit; the idle timeout. */
int live_calls_active(live_calls *lc);
int live_calls_max(const live_calls *lc);
/* Count a call refused before it began (a WebSocket handshake answered 503). */
void live_calls_count_refusal(live_calls *lc);
double live_calls_idle_s(const live_calls *lc);

/* A call: registered (counted against --max-calls) until live_call_end(). NULL when the server is at
 * --max-calls or stopping (reason in err). fd is the call's socket, shut down to wake it at stop. */
live_call *live_call_begin(live_calls *lc, const char *protocol, int fd, char *err, size_t n_err);
/* Create the call's stream for audio at rate Hz; req NULL = the server's decoding defaults. The
 * lexicon (may be NULL) is owned by the call from here on. 0 with err set on failure. */
int live_call_open_stream(live_call *c, int rate, const mp_request_config *req, mp_lexicon *lex, char *err,
                          size_t n_err);
int live_call_has_stream(const live_call *c);
int live_call_rate(const live_call *c);
void live_call_set_uuid(live_call *c, const char *uuid);
/* s16le audio in; steps run as due. MP_LIVE_* bits in *events. */
mp_status live_call_write(live_call *c, const void *bytes, size_t n, int *events);
/* The current partial (new result; NULL on failure). Records the partial latency when a step ran. */
mp_result *live_call_partial(live_call *c, int step_ran);
/* Pop the finals one by one (NULL when none); records the final latency. */
mp_result *live_call_pop_final(live_call *c, double *start_s, double *end_s);
/* Flush (vosk reset) or finish (end of call). */
mp_status live_call_flush(live_call *c);
mp_status live_call_finish(live_call *c);
/* One JSON line for the calls log: {"uuid","start","end","text","words":[...]}. */
void live_call_log_final(live_call *c, const mp_result *res, double start_s, double end_s);
/* Note an event in the log (DTMF, errors from Asterisk). */
void live_call_log_event(live_call *c, const char *event, const char *value);
/* Seconds of call audio received so far. */
double live_call_audio_s(const live_call *c);
/* The server is stopping: the call must end now (after its final results). */
int live_call_stopping(const live_call *c);
const char *live_call_uuid(const live_call *c);
/* Finish the stream if needed (logging what remains when log_rest), unregister, free. */
void live_call_end(live_call *c, int log_rest);

/* live-calls.c: GET /v1/calls/{uuid}/events, Server-Sent Events of a running call with that UUID:
 * "partial" (text), "final" (as the calls log line), "dtmf"/"error" events, "end" when the call ends;
 * a comment line every second keeps proxies from closing it. 404 when no such call runs. */
enum MHD_Result srv_call_events(server *srv, struct MHD_Connection *c, const char *url);

/* ws.c / vosk.c: GET with Upgrade: websocket -> a vosk-protocol session on the upgraded socket.
 * Answers 400/426 for a bad handshake, 503 when at --max-calls. */
enum MHD_Result srv_vosk_upgrade(server *srv, struct MHD_Connection *c);

/* audiosocket.c: listen on "HOST:PORT"; one thread accepts, one thread per call. */
typedef struct audiosocket audiosocket;
int audiosocket_start(server *srv, const char *host_port, audiosocket **out, char *err, size_t n_err);
/* Stop accepting (calls in progress are ended by live_calls_close). NULL is a no-op. */
void audiosocket_stop(audiosocket *a);
int audiosocket_port(const audiosocket *a);

/* live-serve.c: the serve options of live calls, startup and stop. */
typedef struct live_cli {
    int vosk_port;             /* --vosk-port: a second HTTP port for WebSockets on any path; -1 = none */
    const char *audiosocket;   /* --audiosocket HOST:PORT, or NULL */
    live_opts opts;
} live_cli;

live_cli live_cli_defaults(void);
/* 1 when the current argument is one of the live options (see mp_app_opt_*). */
int live_cli_opt(mp_app_args *a, live_cli *o);
void live_cli_usage(FILE *f);
/* Open the registry (srv->live) and start the listeners asked for; print where they listen. 0 with err
 * set on failure (what was started is stopped). */
int live_serve_start(server *srv, const live_cli *o, const struct sockaddr_storage *http_addr, const char *shown,
                     char *err, size_t n_err);
/* At a stop signal: no new calls (the AudioSocket listener closes); calls in progress go on. */
void live_serve_drain(server *srv);
/* Live calls in progress (0 without live calls). */
int live_serve_active(server *srv);
/* No new calls; end the calls in progress, their final results sent or logged (bounded by wait_s). */
void live_serve_stop(server *srv, double wait_s);
/* After the HTTP daemon stopped: stop the vosk port and free the registry. */
void live_serve_free(server *srv);

#endif
