/* form.c - the multipart/form-data upload of POST /v1/audio/transcriptions: the `file` part into a
 * growing buffer (charged to the in-flight memory budget), the small text fields into their fixed
 * buffers, and the body size limit (--max-body-mb). */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

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

/* The file part, doubling the buffer; past the budget or out of memory the rest is dropped and
 * the request refused when it completes. */
static void append_file(request *r, const char *data, size_t size) {
    if (r->too_large || r->over_budget || size == 0) return;
    if (r->n_body + size > r->cap_body) {
        size_t cap = r->cap_body ? r->cap_body : 1 << 16;
        while (cap < r->n_body + size) cap *= 2;
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
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    request *r = cls;
    if (!strcmp(key, "file")) {
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
    if (!r->too_large && !r->over_budget) MHD_post_process(r->pp, data, size);
}

void srv_form_end(request *r) {
    if (r->pp) MHD_destroy_post_processor(r->pp);
    r->pp = NULL;
    free(r->body);
    r->body = NULL;
}
