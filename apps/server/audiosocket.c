/* audiosocket.c - the Asterisk AudioSocket listener (serve --audiosocket HOST:PORT).
 *
 * Asterisk's AudioSocket(uuid,host:port) connects over TCP and sends messages of 1 byte kind, 2
 * bytes big-endian payload length, payload:
 *   0x01 UUID (16 raw bytes, first)   0x10 audio, slin 8 kHz (s16le mono; usually 320 bytes = 20 ms)
 *   0x11..0x18 slin at 12, 16, 24, 32, 44.1, 48, 96, 192 kHz (newer Asterisk)
 *   0x03 DTMF (1 ASCII byte)   0x00 hangup   0xFF error (optional payload)
 * Transcripts go to the operator (the calls log, one JSON line per final utterance), never back
 * down the socket: the server sends Asterisk nothing but a hangup, when it refuses a call
 * (--max-calls or shutting down) or ends one at shutdown (after --drain-s; calls that hang up
 * within the drain are not cut). A malformed message (unknown kind, a UUID or DTMF of the wrong size, a
 * rate change within a call, a connection closed inside a message, or no message for the idle
 * timeout) ends that call only: what was transcribed is logged and the socket closed.
 * One thread accepts; each call runs on its own detached thread, registered in live-calls.c. */
#include "server/live.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { AS_HANGUP = 0x00, AS_UUID = 0x01, AS_DTMF = 0x03, AS_SLIN = 0x10, AS_SLIN_LAST = 0x18, AS_ERROR = 0xff };

struct audiosocket {
    server *srv;
    int fd, port;
    atomic_int stop;
    pthread_t thread;
};

/* Sample rate of an audio kind (Asterisk's slin, slin12 ... slin192). */
static int kind_rate(int kind) {
    static const int rates[] = {8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000};
    return kind >= AS_SLIN && kind <= AS_SLIN_LAST ? rates[kind - AS_SLIN] : 0;
}

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct as_call {
    server *srv;
    audiosocket *as;
    live_call *call;
    int fd;
    double idle_s;
    unsigned char buf[65536];
} as_call;

/* Read exactly n bytes. 1 ok; 0 the peer closed at a message boundary (boundary set, no byte read);
 * -1 closed inside a message, a socket error, a stop, or idle_s without a byte. */
static int read_exact(as_call *a, unsigned char *p, size_t n, int boundary) {
    size_t got = 0;
    double t0 = mono_s();
    while (got < n) {
        if (live_call_stopping(a->call)) return -1;
        struct pollfd pfd = {.fd = a->fd, .events = POLLIN};
        int r = poll(&pfd, 1, 200);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) {
            if (a->idle_s > 0 && mono_s() - t0 > a->idle_s) return -1;
            continue;
        }
        ssize_t k = recv(a->fd, p + got, n - got, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k == 0 && got == 0 && boundary) return 0;
        if (k <= 0) return -1;
        got += (size_t)k;
        t0 = mono_s();
    }
    return 1;
}

static void log_finals(as_call *a) {
    double s, e;
    mp_result *r;
    while ((r = live_call_pop_final(a->call, &s, &e)) != NULL) {
        live_call_log_final(a->call, r, s, e);
        mp_result_free(r);
    }
}

static void note(as_call *a, const char *what) {
    fprintf(stderr, "modelpool serve: audiosocket call %s: %s\n", live_call_uuid(a->call), what);
}

/* An audio message: open the stream on the first one; the rate may not change within a call. */
static int on_audio(as_call *a, int rate, size_t len) {
    char err[256];
    if (!live_call_has_stream(a->call) && !live_call_open_stream(a->call, rate, NULL, NULL, err, sizeof err)) {
        note(a, err);
        return 0;
    }
    if (rate != live_call_rate(a->call)) {
        snprintf(err, sizeof err, "audio at %d Hz within a call at %d Hz", rate, live_call_rate(a->call));
        note(a, err);
        return 0;
    }
    int ev = 0;
    mp_status st = live_call_write(a->call, a->buf, len, &ev);
    if (st != MP_OK) {
        snprintf(err, sizeof err, "%s: %s", mp_strerror(st), mp_last_error());
        note(a, err);
        return 0;
    }
    if (ev & MP_LIVE_STEP) mp_result_free(live_call_partial(a->call, 1)); /* latency metric, SSE feed */
    log_finals(a);
    return 1;
}

/* One message; 1 go on, 0 the call ends. */
static int on_message(as_call *a) {
    unsigned char h[3];
    int r = read_exact(a, h, 3, 1);
    if (r == 0) return note(a, "closed without a hangup message"), 0;
    if (r < 0) return note(a, live_call_stopping(a->call) ? "server stopping" : "read failed or idle timeout"), 0;
    int kind = h[0];
    size_t len = (size_t)h[1] << 8 | h[2];
    if (len && read_exact(a, a->buf, len, 0) != 1) return note(a, "connection ended inside a message"), 0;
    char v[64];
    switch (kind) {
    case AS_HANGUP:
        return 0;
    case AS_UUID:
        if (len != 16) return note(a, "UUID message not 16 bytes"), 0;
        snprintf(v, sizeof v, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", a->buf[0],
                 a->buf[1], a->buf[2], a->buf[3], a->buf[4], a->buf[5], a->buf[6], a->buf[7], a->buf[8], a->buf[9],
                 a->buf[10], a->buf[11], a->buf[12], a->buf[13], a->buf[14], a->buf[15]);
        live_call_set_uuid(a->call, v);
        return 1;
    case AS_DTMF:
        if (len != 1 || a->buf[0] < 0x20 || a->buf[0] > 0x7e) return note(a, "DTMF message not one character"), 0;
        v[0] = (char)a->buf[0];
        v[1] = '\0';
        live_call_log_event(a->call, "dtmf", v);
        return 1;
    case AS_ERROR:
        /* Asterisk reports a problem on its side; the call may go on */
        snprintf(v, sizeof v, "%s", len ? "" : "(none)");
        for (size_t i = 0; i < len && i < 16; i++) snprintf(v + 2 * i, sizeof v - 2 * i, "%02x", a->buf[i]);
        live_call_log_event(a->call, "error", v);
        return 1;
    default:
        if (kind_rate(kind)) return on_audio(a, kind_rate(kind), len);
        snprintf(v, sizeof v, "unknown message kind 0x%02x", kind);
        return note(a, v), 0;
    }
}

static void *call_thread(void *arg) {
    as_call *a = arg;
    while (on_message(a)) {}
    int stopped = live_call_stopping(a->call);
    live_call_end(a->call, 1); /* the rest of the call, to the log */
    if (stopped) { /* the server ends the call: Asterisk hears a hangup, after the final results were logged */
        static const unsigned char hangup[3] = {AS_HANGUP, 0, 0};
        ssize_t w = send(a->fd, hangup, sizeof hangup, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    close(a->fd);
    free(a);
    return NULL;
}

/* A refused call hears a hangup, the one message besides audio the server may send. */
static void refuse(int fd, const char *why) {
    static const unsigned char hangup[3] = {AS_HANGUP, 0, 0};
    ssize_t w = send(fd, hangup, sizeof hangup, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    fprintf(stderr, "modelpool serve: audiosocket call refused: %s\n", why);
    close(fd);
}

static void start_call(audiosocket *as, int fd) {
    char err[160];
    as_call *a = malloc(sizeof *a);
    live_call *c = a ? live_call_begin(as->srv->live, "audiosocket", fd, err, sizeof err) : NULL;
    if (!a) snprintf(err, sizeof err, "out of memory");
    if (!c) {
        free(a);
        refuse(fd, err);
        return;
    }
    a->srv = as->srv;
    a->as = as;
    a->call = c;
    a->fd = fd;
    a->idle_s = live_calls_idle_s(as->srv->live);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, call_thread, a) != 0) {
        live_call_end(c, 0);
        free(a);
        refuse(fd, "cannot start a thread");
    }
    pthread_attr_destroy(&at);
}

static void *accept_thread(void *arg) {
    audiosocket *as = arg;
    while (!atomic_load(&as->stop)) {
        struct pollfd pfd = {.fd = as->fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0) continue;
        int fd = accept(as->fd, NULL, NULL);
        if (fd < 0) continue;
        start_call(as, fd);
    }
    return NULL;
}

int audiosocket_start(server *srv, const char *host_port, audiosocket **out, char *err, size_t n_err) {
    *out = NULL;
    char host[64];
    const char *colon = strrchr(host_port, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : -1;
    if (!colon || (size_t)(colon - host_port) >= sizeof host || port < 0 || port > 65535) {
        snprintf(err, n_err, "--audiosocket wants HOST:PORT (IPv4), got '%s'", host_port);
        return 0;
    }
    memcpy(host, host_port, (size_t)(colon - host_port));
    host[colon - host_port] = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, n_err, "--audiosocket: '%s' is not an IPv4 address", host);
        return 0;
    }
    audiosocket *as = calloc(1, sizeof *as);
    if (!as) return snprintf(err, n_err, "out of memory"), 0;
    as->srv = srv;
    as->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    socklen_t sl = sizeof sa;
    if (as->fd < 0 || setsockopt(as->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(as->fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(as->fd, 64) != 0 ||
        getsockname(as->fd, (struct sockaddr *)&sa, &sl) != 0) {
        snprintf(err, n_err, "--audiosocket %s: %s", host_port, strerror(errno));
        if (as->fd >= 0) close(as->fd);
        free(as);
        return 0;
    }
    as->port = ntohs(sa.sin_port);
    if (pthread_create(&as->thread, NULL, accept_thread, as) != 0) {
        snprintf(err, n_err, "--audiosocket: cannot start a thread");
        close(as->fd);
        free(as);
        return 0;
    }
    *out = as;
    return 1;
}

int audiosocket_port(const audiosocket *a) { return a->port; }

void audiosocket_stop(audiosocket *a) {
    if (!a) return;
    atomic_store(&a->stop, 1);
    pthread_join(a->thread, NULL);
    close(a->fd);
    free(a);
}
