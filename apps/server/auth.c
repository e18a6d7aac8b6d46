/* auth.c - API keys and CORS. With --api-key-file every endpoint but /health and /ready (and
 * /metrics unless --metrics-auth) needs "Authorization: Bearer KEY", which is what the OpenAI SDKs
 * send for apiKey; keys are compared in constant time. --cors-origin names the one browser origin
 * whose pages may call the API: its requests get Access-Control-Allow-Origin, its preflights an
 * answer; other origins get no CORS header, so browsers keep their pages out. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Whether `got` is one of the keys. Every key is compared over its whole length, without stopping at
 * the first difference or the first match, so the time taken tells nothing about how much of a key
 * was right (only, at most, its length). */
static int key_ok(const server *srv, const char *got) {
    size_t ng = strlen(got);
    unsigned ok = 0;
    for (size_t k = 0; k < srv->n_keys; k++) {
        const char *want = srv->keys[k];
        size_t nw = strlen(want);
        volatile unsigned char diff = (unsigned char)(ng != nw);
        for (size_t i = 0; i < nw; i++) diff |= (unsigned char)(want[i] ^ (i < ng ? got[i] : 0));
        ok |= diff == 0;
    }
    return ok != 0;
}

int srv_authorized(const server *srv, struct MHD_Connection *c) {
    if (!srv->n_keys) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    while (*h == ' ') h++;
    return key_ok(srv, h);
}

const char *srv_allowed_origin(const server *srv, struct MHD_Connection *c) {
    if (!srv->cors_origin) return NULL;
    const char *o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    return o && !strcmp(o, srv->cors_origin) ? o : NULL;
}

/* OPTIONS: the methods in Allow; from the allowed origin, a CORS preflight answer too (the headers
 * the OpenAI SDKs send: Authorization, Content-Type). 204, no body. */
enum MHD_Result srv_reply_options(server *srv, struct MHD_Connection *c, const char *allow) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Allow", allow);
    if (srv_allowed_origin(srv, c)) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    srv_decorate(srv, c, resp, MHD_HTTP_NO_CONTENT);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    srv_count_response(srv, MHD_HTTP_NO_CONTENT, 0);
    return ret;
}

/* One key per line; blank lines and '#' comments skipped, surrounding blanks trimmed. A file with no
 * key is an error: it would lock every client out, or it is the wrong file. */
int srv_load_keys(server *srv, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "modelpool serve: --api-key-file %s: %s\n", path, strerror(errno));
        return 0;
    }
    char line[1024];
    int ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t') s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (!*s || *s == '#') continue;
        char **k = realloc(srv->keys, (srv->n_keys + 1) * sizeof *k);
        if (k) srv->keys = k;
        ok = k && (srv->keys[srv->n_keys] = strdup(s)) != NULL;
        if (ok) srv->n_keys++;
    }
    fclose(f);
    if (!ok) fprintf(stderr, "modelpool serve: --api-key-file %s: out of memory\n", path);
    if (ok && srv->n_keys == 0) {
        fprintf(stderr, "modelpool serve: --api-key-file %s: no key in the file\n", path);
        ok = 0;
    }
    return ok;
}

void srv_free_keys(server *srv) {
    for (size_t i = 0; i < srv->n_keys; i++) {
        volatile char *k = srv->keys[i]; /* wiped before the memory goes back to the allocator */
        while (*k) *k++ = 0;
        free(srv->keys[i]);
    }
    free(srv->keys);
    srv->keys = NULL;
    srv->n_keys = 0;
}
