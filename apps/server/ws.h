/* ws.h - RFC 6455 framing over a blocking socket (ws.c), for apps/server/ only. */
#ifndef MP_SERVER_WS_H
#define MP_SERVER_WS_H

#include <stddef.h>
#include <stdint.h>

enum { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

typedef struct ws_conn {
    int fd;
    unsigned char *in;      /* received bytes not parsed yet */
    size_t n_in, cap_in;
    unsigned char *msg;     /* the message being reassembled (NUL-terminated when complete) */
    size_t n_msg, cap_msg;
    int msg_op;             /* opcode of the message in progress, -1 = none */
    size_t max_msg;
    double idle_s;          /* a read waiting this long returns -2; 0 = forever */
    int sent_close;
    int send_stuck; /* a send gave up: the peer takes nothing (ws_linger resets it at once) */
    int (*send_stop)(void *); /* once true (the server ends its calls), a send gives up after
                                 STOP_SEND_MS without progress instead of 10 s; may be NULL */
    void *send_stop_ctx;
} ws_conn;

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (24 base64 chars of 16 bytes); 0 if bad. */
int ws_accept_key(const char *key, char *out, size_t n_out);
/* extra: bytes MHD read past the handshake. 0 when out of memory. */
int ws_init(ws_conn *w, int fd, const char *extra, size_t n_extra, size_t max_msg, double idle_s);
void ws_free(ws_conn *w);
/* Next data message (pings answered, pongs skipped): 1 with *data valid until the next call; 0 when
 * the peer closed (close answered) or stop(ctx) became true; -1 after a protocol error (close sent);
 * -2 after idle_s without a byte. */
int ws_read(ws_conn *w, int *opcode, const unsigned char **data, size_t *len, int (*stop)(void *), void *ctx);
/* One unfragmented frame; 0 when the peer is gone. */
int ws_send(ws_conn *w, int opcode, const void *data, size_t n);
int ws_close(ws_conn *w, unsigned code, const char *reason);
/* After a close: stop sending and read (discarding) until the peer closes or max_s passed, so the
 * close frame is not lost to a reset from unread input. A peer that has not let our data through
 * by then is reset at the close (SO_LINGER 0): a FIN behind that data would never reach it. */
void ws_linger(ws_conn *w, double max_s);

#endif
