/* guard.c - the total time a connection may take to send its request headers (--header-timeout-s).
 * MHD's own timeout (--idle-timeout-s) restarts at every byte, so a client sending one header byte a
 * second would hold a connection forever, and a few hundred such clients every connection
 * (slowloris). Each connection is tracked from MHD's "started" notification to its "closed" one; a
 * thread checks every 100 ms and shuts down the socket of any connection that spent longer than the
 * limit without completing its headers (also between requests on a kept-alive connection). The
 * connection's blocked read then returns and MHD closes it.
 *
 * Under pressure, when more than half of --max-connections are held by connections still sending
 * their headers, the limit drops to SHED_AFTER_S: a real client sends its headers in milliseconds,
 * so only the slow ones go, and a newcomer (queued in the listen backlog while the slots are full)
 * gets a slot within about a second, whatever address it comes from. */
#include "server/internal.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define SHED_AFTER_S 1.0 /* header time allowed while the header-phase connections hold half the slots */

typedef struct conn_track {
    struct conn_track *next, *prev;
    int fd;
    double t0;        /* connection accepted, or its previous request completed; monotonic s */
    int in_request;   /* headers complete: the request is being served */
    int shut;         /* shut down by the guard */
} conn_track;

void srv_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code) {
    server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = calloc(1, sizeof *t);
        if (!t) return; /* untracked: only MHD's idle timeout applies to it */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : -1;
        t->t0 = srv_now_s();
        pthread_mutex_lock(&srv->conn_lock);
        t->next = srv->conns;
        if (srv->conns) srv->conns->prev = t;
        srv->conns = t;
        pthread_mutex_unlock(&srv->conn_lock);
        *socket_context = t;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        /* MHD closes the socket after this returns: under the lock, the guard never shuts down a
         * descriptor that was closed and reused */
        conn_track *t = *socket_context;
        pthread_mutex_lock(&srv->conn_lock);
        if (t->prev) t->prev->next = t->next;
        else srv->conns = t->next;
        if (t->next) t->next->prev = t->prev;
        pthread_mutex_unlock(&srv->conn_lock);
        free(t);
        *socket_context = NULL;
    }
}

void srv_guard_in_request(server *srv, struct MHD_Connection *c, int in_request) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = ci ? ci->socket_context : NULL;
    if (!t) return;
    pthread_mutex_lock(&srv->conn_lock);
    t->in_request = in_request;
    t->t0 = srv_now_s();
    pthread_mutex_unlock(&srv->conn_lock);
}

static void *guard_main(void *arg) {
    server *srv = arg;
    while (!atomic_load(&srv->stop_guard)) {
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
        double now = srv_now_s();
        pthread_mutex_lock(&srv->conn_lock);
        int in_headers = 0;
        for (conn_track *t = srv->conns; t; t = t->next) in_headers += !t->in_request && !t->shut;
        double limit = srv->header_timeout_s;
        if (2 * in_headers > srv->max_connections && SHED_AFTER_S < limit) limit = SHED_AFTER_S;
        for (conn_track *t = srv->conns; t; t = t->next)
            if (!t->in_request && !t->shut && t->fd >= 0 && now - t->t0 > limit) {
                shutdown(t->fd, SHUT_RDWR);
                t->shut = 1;
            }
        pthread_mutex_unlock(&srv->conn_lock);
    }
    return NULL;
}

int srv_guard_start(server *srv, pthread_t *thread) {
    return pthread_create(thread, NULL, guard_main, srv) == 0;
}

void srv_guard_stop(server *srv, pthread_t thread) {
    atomic_store(&srv->stop_guard, 1);
    pthread_join(thread, NULL);
}
