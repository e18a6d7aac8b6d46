/* options.c - a request's decoding and audio form fields (beam, hotwords, words, lexicon, lm,
 * lm_alpha, lm_beta; channel, raw_format, raw_rate) through the request layer shared with the CLI
 * (apps/common/request.h), over the server's defaults (serve --beam, --lexicon, --lm, ...). */
#include "server/internal.h"

#include <stddef.h>

/* Where each option's form field lands in the request (form.c fills them). */
static const struct { const char *name; size_t off; } fields[] = {
    {"beam", offsetof(request, beam)},         {"hotwords", offsetof(request, hotwords)},
    {"words", offsetof(request, words)},       {"lexicon", offsetof(request, lexicon)},
    {"lm", offsetof(request, lm)},             {"lm_alpha", offsetof(request, lm_alpha)},
    {"lm_beta", offsetof(request, lm_beta)},   {"channel", offsetof(request, channel)},
    {"raw_format", offsetof(request, raw_format)}, {"raw_rate", offsetof(request, raw_rate)},
};

mp_app_defaults srv_request_defaults(const server *srv) {
    mp_app_defaults d = mp_app_request_defaults();
    d.beam = srv->beam;
    d.lexicon = srv->lexicon;
    d.lm = srv->lm;
    d.lm_alpha = srv->lm_alpha;
    d.lm_beta = srv->lm_beta;
    d.allow_files = 0; /* a request never names a file on the server's disk */
    d.max_audio_s = srv->max_audio_s;
    d.timeout_ms = srv->timeout_ms;
    return d;
}

int srv_request_options(server *srv, request *r, mp_app_request *rq, mp_app_error *err) {
    mp_app_request_init(rq);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = (const char *)r + fields[i].off;
        if (v[0] && !mp_app_request_set(rq, fields[i].name, v, err)) return 0; /* an empty field = not given */
    }
    mp_app_defaults def = srv_request_defaults(srv);
    return mp_app_request_build(rq, mp_pool_model(srv->pool), &def, err);
}
