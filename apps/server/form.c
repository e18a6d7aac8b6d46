/* form.c - the multipart/form-data upload of POST /v1/audio/transcriptions: the `file` part into a
 * growing buffer (charged to the in-flight memory budget by what it holds), the small text fields
 * into their fixed buffers, the body size limit (--max-body-mb, checked against Content-Length
 * before the body is read), and the form's structure: a part without a name, a second `file` part
 * or a body without its closing boundary is refused (400), never transcribed in part. */
#include "server/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int srv_reserve(server *srv, request *r, size_t bytes) {
    size_t now = atomic_fetch_add(&srv->inflight, bytes) + bytes;
    if (srv->inflight_budget && now > srv->inflight_budget) {
        atomic_fetch_sub(&srv->inflight, bytes);
        return 0;
    }
    r->reserved += bytes;
    return 1;
}

/* Small text fields arrive in pieces at offset `off`. One that does not fit is not truncated
 * (a cut word list would silently change the answer): the request is refused instead. */
static void append_field(request *r, const char *name, char *dst, size_t cap, const char *data, uint64_t off,
                         size_t size) {
    if (off + size > cap - 1) {
        r->too_long = name;
        return;
    }
    memcpy(dst + off, data, size);
    dst[off + size] = '\0';
}

/* The file part; past the budget or out of memory the rest is dropped and the request refused when
 * it completes. The buffer grows by an eighth: the budget is charged for what the buffer can hold,
 * so that must stay close to what the upload sent (doubling would charge up to twice that, and a
 * few slow uploads would hold the budget hostage). */
static void append_file(request *r, const char *data, size_t size) {
    if (r->too_large || r->over_budget || size == 0) return;
    if (r->n_body + size > r->cap_body) {
        size_t cap = r->cap_body + r->cap_body / 8;
        if (cap < 1 << 16) cap = 1 << 16;
        if (cap < r->n_body + size) cap = r->n_body + size;
        if (!srv_reserve(r->srv, r, cap - r->cap_body)) {
            r->over_budget = 1;
            return;
        }
        char *b = realloc(r->body, cap);
        if (!b) {
            r->too_large = 1;
            return;
        }
        r->body = b;
        r->cap_body = cap;
    }
    memcpy(r->body + r->n_body, data, size);
    r->n_body += size;
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                 const char *content_type, const char *transfer_encoding, const char *data,
                                 uint64_t off, size_t size) {
    (void)kind, (void)content_type, (void)transfer_encoding;
    request *r = cls;
    if (!key || !key[0]) {
        r->bad_form = "a multipart part has no name (Content-Disposition: form-data; name=\"...\")";
        return MHD_NO;
    }
    if (!strcmp(key, "file")) {
        /* each part starts at offset 0: a second `file` part would be glued to the first */
        if (off == 0 && r->file_next > 0) {
            r->bad_form = "duplicate 'file' part: send one file per request";
            return MHD_NO;
        }
        r->file_next = (size_t)off + size;
        if (!r->saw_file && filename) snprintf(r->filename, sizeof r->filename, "%s", filename);
        r->saw_file = 1;
        append_file(r, data, size);
    }
#define FIELD(f)                                                                                                \
    else if (!strcmp(key, #f)) append_field(r, #f, r->f, sizeof r->f, data, off, size)
    FIELD(response_format);
    FIELD(model);
    FIELD(beam);
    FIELD(hotwords);
    FIELD(words);
    FIELD(lexicon);
    FIELD(lm);
    FIELD(lm_alpha);
    FIELD(lm_beta);
    FIELD(channel);
    FIELD(raw_format);
    FIELD(raw_rate);
    FIELD(stream);
#undef FIELD
    /* other OpenAI fields (language, prompt, temperature, timestamp_granularities[]) are accepted and ignored */
    return MHD_YES;
}

int srv_form_begin(request *r, struct MHD_Connection *c) {
    r->pp = MHD_create_post_processor(c, 64 * 1024, post_iter, r);
    return r->pp != NULL;
}

void srv_form_feed(request *r, const char *data, size_t size) {
    /* The whole upload counts, not just the file part: a huge text field is refused too. */
    r->n_upload += size;
    if (r->n_upload > r->srv->max_body + 64 * 1024) r->too_large = 1; /* + room for the form's other fields */
    if (!r->too_large && !r->over_budget && !r->bad_form && MHD_post_process(r->pp, data, size) != MHD_YES &&
        !r->bad_form)
        r->bad_form = "malformed multipart/form-data body";
}

/* MHD's post processor knows whether the body ended with its closing boundary: a body cut short (a
 * dropped connection, a Content-Length shorter than the form) must not be transcribed in part. */
int srv_form_complete(request *r) {
    int complete = MHD_destroy_post_processor(r->pp) == MHD_YES;
    r->pp = NULL;
    if (!complete && !r->bad_form && !r->too_large && !r->over_budget)
        r->bad_form = "multipart body ends before its closing boundary (truncated upload)";
    return r->bad_form == NULL;
}

typedef struct length_check {
    int n, differ, bad;
    unsigned long long first;
} length_check;

static enum MHD_Result each_length(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    length_check *lc = cls;
    if (!key || strcasecmp(key, "Content-Length") != 0) return MHD_YES;
    char *end = NULL;
    errno = 0;
    unsigned long long v = value ? strtoull(value, &end, 10) : 0;
    if (!value || end == value || *end || errno || value[0] == '-') lc->bad = 1;
    if (lc->n++ == 0) lc->first = v;
    else if (v != lc->first) lc->differ = 1;
    return MHD_YES;
}

int srv_form_refuse_headers(server *srv, struct MHD_Connection *c, enum MHD_Result *ret) {
    length_check lc = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, each_length, &lc);
    if (lc.bad || lc.differ) {
        /* two lengths: which one a proxy in front used is anybody's guess (request smuggling) */
        *ret = srv_reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "bad_content_length",
                               lc.differ ? "conflicting Content-Length headers" : "malformed Content-Length");
        return 1;
    }
    if (lc.n && lc.first > srv->max_body + 64 * 1024) {
        char msg[128];
        snprintf(msg, sizeof msg, "Content-Length %llu is over the %zu MB limit", lc.first, srv->max_body >> 20);
        *ret = srv_reply_error(srv, c, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", msg);
        return 1;
    }
    if (lc.n && srv->inflight_budget && atomic_load(&srv->inflight) + lc.first > srv->inflight_budget) {
        *ret = srv_reply_busy(srv, c);
        return 1;
    }
    return 0;
}

void srv_form_release_body(request *r) {
    free(r->body);
    r->body = NULL;
    atomic_fetch_sub(&r->srv->inflight, r->cap_body);
    r->reserved -= r->cap_body;
    r->n_body = r->cap_body = 0;
}

void srv_form_end(request *r) {
    if (r->pp) MHD_destroy_post_processor(r->pp);
    r->pp = NULL;
    free(r->body);
    r->body = NULL;
}
