/* ws.c - RFC 6455 WebSocket framing on a blocking socket, for the vosk-protocol endpoint.
 *
 * Why our own framer: the endpoint shares the HTTP port (GET /v1/stream with Upgrade), so
 * libmicrohttpd owns the listening socket and hands over the upgraded connection
 * (MHD_create_response_for_upgrade). libwebsockets would need its own listener and event loop
 * and cannot take over a socket accepted by MHD; what remains after MHD's handshake is the frame
 * format (RFC 6455 section 5), which is small. The handshake's SHA-1 and base64 come from nettle.
 *
 * Bounds: one message at most max_msg bytes (1009 "message too big" past it), control frames at
 * most 125 bytes, client frames must be masked (1002 otherwise), reads wait in slices of 200 ms so
 * a stop or an idle timeout is seen; sends give up after 10 s without progress (1 s once the
 * server is ending its calls). */
#include "server/ws.h"

#include <errno.h>
#include <linux/sockios.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 section 1.3 */
#define SEND_TIMEOUT_MS 10000
/* Once the server ends its calls, a client that takes nothing for this long loses its last
 * messages: it must not hold the shutdown for 10 s per send (tests/test-live-server.py
 * drain_attack: a vosk client that never reads). */
#define STOP_SEND_MS 1000

int ws_accept_key(const char *key, char *out, size_t n_out) {
    if (!key || strlen(key) != 24 || n_out < BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1) return 0;
    struct base64_decode_ctx dc;
    uint8_t raw[24];
    size_t n_raw = sizeof raw;
    base64_decode_init(&dc);
    if (!base64_decode_update(&dc, &n_raw, raw, 24, key) || !base64_decode_final(&dc) || n_raw != 16) return 0;
    struct sha1_ctx h;
    uint8_t d[SHA1_DIGEST_SIZE];
    sha1_init(&h);
    sha1_update(&h, 24, (const uint8_t *)key);
    sha1_update(&h, strlen(WS_GUID), (const uint8_t *)WS_GUID);
    sha1_digest(&h, SHA1_DIGEST_SIZE, d);
    base64_encode_raw(out, SHA1_DIGEST_SIZE, d);
    out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
    return 1;
}

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int ws_init(ws_conn *w, int fd, const char *extra, size_t n_extra, size_t max_msg, double idle_s) {
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->max_msg = max_msg;
    w->idle_s = idle_s;
    w->cap_in = max_msg + 14 + 4096;
    w->in = malloc(w->cap_in);
    if (!w->in) return 0;
    if (n_extra > w->cap_in) n_extra = w->cap_in; /* a client cannot send more before the 101 */
    memcpy(w->in, extra, n_extra);
    w->n_in = n_extra;
    return 1;
}

void ws_free(ws_conn *w) {
    free(w->in);
    free(w->msg);
    w->in = w->msg = NULL;
}

/* Send n bytes, waiting in slices of 200 ms: up to SEND_TIMEOUT_MS without progress, or
 * STOP_SEND_MS once w->send_stop says the server is ending its calls. */
static int send_all(ws_conn *w, const unsigned char *p, size_t n) {
    int waited_ms = 0;
    while (n > 0) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
        int r = poll(&pfd, 1, 200);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return 0;
        if (r == 0) {
            waited_ms += 200;
            int stopping = w->send_stop && w->send_stop(w->send_stop_ctx);
            if (waited_ms >= (stopping ? STOP_SEND_MS : SEND_TIMEOUT_MS)) return w->send_stuck = 1, 0;
            continue;
        }
        waited_ms = 0;
        ssize_t k = send(w->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

int ws_send(ws_conn *w, int opcode, const void *data, size_t n) {
    if (w->sent_close) return 0;
    unsigned char h[10];
    size_t nh = 2;
    h[0] = (unsigned char)(0x80 | (opcode & 0x0f)); /* FIN: never fragmented */
    if (n < 126) {
        h[1] = (unsigned char)n;
    } else if (n <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        nh = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        nh = 10;
    }
    if (opcode == WS_CLOSE) w->sent_close = 1;
    if (n <= 512) { /* replies are small: one segment on the wire */
        unsigned char b[522];
        memcpy(b, h, nh);
        if (n) memcpy(b + nh, data, n);
        return send_all(w, b, nh + n);
    }
    return send_all(w, h, nh) && send_all(w, data, n);
}

int ws_close(ws_conn *w, unsigned code, const char *reason) {
    unsigned char b[125];
    size_t n = reason ? strlen(reason) : 0;
    if (n > sizeof b - 2) n = sizeof b - 2;
    b[0] = (unsigned char)(code >> 8);
    b[1] = (unsigned char)code;
    if (n) memcpy(b + 2, reason, n);
    return ws_send(w, WS_CLOSE, b, n + 2);
}

void ws_linger(ws_conn *w, double max_s) {
    shutdown(w->fd, SHUT_WR);
    /* Abortive until the peer proves otherwise (below): the server may exit while this thread
     * lingers (the call has already left the count, so a drain need not wait for it), and the
     * descriptor closed by the exit then resets the connection instead of leaving the orphan
     * described below (drain_attack under load: the never-reading client learned 11 s after the
     * server had exited at 12.2 s, 3 of 18 runs with 3 busy loops beside it). */
    struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
    setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
    double until = mono_s() + (w->send_stuck ? 0 : max_s); /* no close handshake with a peer that takes nothing */
    unsigned char junk[4096];
    int peer_closed = 0;
    while (mono_s() < until) {
        int queued = 0;
        if (peer_closed) { /* wait for it to acknowledge what we sent, our FIN included */
            if (ioctl(w->fd, SIOCOUTQ, &queued) == 0 && queued == 0) break;
            poll(NULL, 0, 20);
            continue;
        }
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) continue;
        ssize_t k = recv(w->fd, junk, sizeof junk, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) peer_closed = 1;
    }
    /* Bytes the peer has not acknowledged after the linger sit behind a window it keeps shut (it
     * does not read): our FIN, queued after them, cannot reach it, and a close with an empty
     * receive queue (which this loop just drained) sends no reset either. The kernel then keeps an
     * orphan in FIN-WAIT-1, and the peer learns of the end only from its own persist-timer probes,
     * which back off to seconds apart (tests/test-live-server.py stuck_reader; drain_attack's
     * never-reading client hung 60 s in one run of ten). Counted are bytes not acknowledged, not
     * only those not yet sent: a segment sent into a shut window is as stuck, and so is the FIN.
     * A peer that sent nothing but never closed either is reset too: when the linger stopped
     * reading it, its own writes met our shut receive window, and with nothing left to receive
     * it would hear of the close only from its persist probes, seconds apart after backoff
     * (drain_attack: the client learned 7-11 s after the server had exited). A
     * reset keeps what the peer's kernel has already received readable. Such peers get a reset
     * at the close (SO_LINGER 0); one that closed and acknowledged everything within the linger,
     * which a well-behaved client does in milliseconds, gets the FIN (the abortive close set on entry
     * is cleared again). */
    int unacked = 0;
    if (peer_closed && ioctl(w->fd, SIOCOUTQ, &unacked) == 0 && unacked == 0) {
        struct linger graceful = {.l_onoff = 0, .l_linger = 0};
        setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &graceful, sizeof graceful);
    }
}

/* Make n bytes available in w->in, reading as needed. 1 ok, 0 closed or stopped, -2 idle. */
static int need(ws_conn *w, size_t n, int (*stop)(void *), void *ctx) {
    double t0 = mono_s();
    while (w->n_in < n) {
        if (stop && stop(ctx)) return 0;
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        int r = poll(&pfd, 1, 200);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return 0;
        if (r == 0) {
            if (w->idle_s > 0 && mono_s() - t0 > w->idle_s) return -2;
            continue;
        }
        ssize_t k = recv(w->fd, w->in + w->n_in, w->cap_in - w->n_in, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return 0;
        w->n_in += (size_t)k;
        t0 = mono_s();
    }
    return 1;
}

static void consume(ws_conn *w, size_t n) {
    memmove(w->in, w->in + n, w->n_in - n);
    w->n_in -= n;
}

static int fail(ws_conn *w, unsigned code, const char *why) {
    ws_close(w, code, why);
    return -1;
}

int ws_read(ws_conn *w, int *opcode, const unsigned char **data, size_t *len, int (*stop)(void *), void *ctx) {
    w->n_msg = 0;
    w->msg_op = -1;
    /* checked before every message, not only when waiting for bytes: a client whose messages
     * never stop coming would otherwise hold the call past the end of the drain */
    if (stop && stop(ctx)) return 0;
    for (;;) {
        int r = need(w, 2, stop, ctx);
        if (r <= 0) return r;
        int fin = w->in[0] & 0x80, rsv = w->in[0] & 0x70, op = w->in[0] & 0x0f;
        int masked = w->in[1] & 0x80;
        uint64_t plen = w->in[1] & 0x7f;
        size_t hl = 2;
        if (rsv) return fail(w, 1002, "reserved bits set (no extension was negotiated)");
        if (!masked) return fail(w, 1002, "client frames must be masked");
        if (plen == 126 || plen == 127) {
            size_t ext = plen == 126 ? 2 : 8;
            if ((r = need(w, 2 + ext, stop, ctx)) <= 0) return r;
            plen = 0;
            for (size_t i = 0; i < ext; i++) plen = plen << 8 | w->in[2 + i];
            if (ext == 8 && plen >> 63) return fail(w, 1002, "frame length with the top bit set");
            hl += ext;
        }
        int control = op >= 8;
        if (control && (!fin || plen > 125)) return fail(w, 1002, "bad control frame");
        if (!control && op != WS_CONT && op != WS_TEXT && op != WS_BINARY)
            return fail(w, 1002, "unknown opcode");
        if (!control && plen > w->max_msg - w->n_msg) return fail(w, 1009, "message too big");
        if ((r = need(w, hl + 4 + (size_t)plen, stop, ctx)) <= 0) return r;
        const unsigned char *mask = w->in + hl, *p = w->in + hl + 4;
        unsigned char ctl[125];
        unsigned char *dst;
        if (control) {
            dst = ctl;
        } else {
            if (op == WS_CONT && w->msg_op < 0) return fail(w, 1002, "continuation without a message");
            if (op != WS_CONT && w->msg_op >= 0) return fail(w, 1002, "new message inside a fragmented one");
            if (op != WS_CONT) w->msg_op = op;
            if (w->n_msg + plen + 1 > w->cap_msg) {
                size_t cap = w->n_msg + (size_t)plen + 1;
                unsigned char *m = realloc(w->msg, cap);
                if (!m) return fail(w, 1011, "out of memory");
                w->msg = m;
                w->cap_msg = cap;
            }
            dst = w->msg + w->n_msg;
        }
        for (uint64_t i = 0; i < plen; i++) dst[i] = p[i] ^ mask[i & 3];
        consume(w, hl + 4 + (size_t)plen);
        if (op == WS_PING) {
            if (!ws_send(w, WS_PONG, ctl, (size_t)plen)) return 0;
            continue;
        }
        if (op == WS_PONG) continue;
        if (op == WS_CLOSE) {
            unsigned code = plen >= 2 ? (unsigned)(ctl[0] << 8 | ctl[1]) : 1000;
            ws_close(w, code == 1005 || code == 1006 ? 1000 : code, "");
            return 0;
        }
        w->n_msg += (size_t)plen;
        if (!fin) continue;
        w->msg[w->n_msg] = '\0'; /* text messages can be handed to a JSON parser as is */
        *opcode = w->msg_op;
        *data = w->msg;
        *len = w->n_msg;
        return 1;
    }
}
