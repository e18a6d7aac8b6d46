/* dispatch.c - per-request decoding defaults (mp_request_default_config) and the mp__decoder_*
 * front end the chunker feeds: greedy (greedy.c) or beam search (beam.c), chosen per request.
 *
 * Module: decode (this folder: dispatch.c, greedy.c, beam.c, emit.c, lexicon.c, lm.c) turns
 * logits into text and words. It calls core and reads the engine's model (vocabulary, frame
 * stride); nothing in engine, audio or pool is called from here. Within the folder calls go one
 * way: dispatch -> greedy, beam -> emit; lexicon and lm are leaves.
 */
#include "internal.h"

#include <stdlib.h>

mp_request_config mp_request_default_config(void) {
    return (mp_request_config){
        .decoder = MP_DECODER_GREEDY,
        .beam_width = 16,
        .lexicon = NULL,
        .use_model_lexicon = 1,
        .hotwords = NULL,
        .n_hotwords = 0,
        .lm = NULL,
        .lm_alpha = 0.5f,
        .lm_beta = 1.0f,
        .lm_unk_score = -10.0f,
        .timeout_ms = -1,
        .keep_logits = 0,
        .chunk_length_s = 20.0,
        .stride_length_s = 20.0 / 6.0,
        .pause_split_s = 0.0,
        .oov_score = 0.0f,
        .use_model_defaults = 1,
        .explicit_fields = 0,
    };
}

struct mp__decoder {
    mp__beam *beam;     /* beam search, or NULL */
    mp__greedy *greedy; /* greedy decoding, or NULL: exactly one of the two is set */
};

/* Beam search is used when asked for, except at width 1 with no lexicon, LM or hotword: a 1-wide
 * prefix search ranks prefixes by their summed alignment probability and can differ from the
 * best path, while "no search" is expected to give exactly the greedy transcript. */
static int wants_beam(const mp_model *m, const mp_request_config *req) {
    if (req->decoder != MP_DECODER_BEAM) return 0;
    int constrained = req->lexicon || (req->use_model_lexicon && m->lexicon) || req->lm || req->n_hotwords > 0;
    return req->beam_width > 1 || constrained;
}

mp_status mp__decoder_create(const mp_model *m, const mp_request_config *req, mp__decoder **out) {
    if (out) *out = NULL;
    if (!m || !out) return mp__fail(MP_ERR_INVALID_ARG, "decoder: NULL argument");
    if (m->n_tokens <= 0 || !m->tokens) return mp__fail(MP_ERR_INVALID_ARG, "decoder: model has no vocabulary");
    if (m->pad_id < 0 || m->pad_id >= m->n_tokens)
        return mp__fail(MP_ERR_INVALID_ARG, "decoder: pad id %d outside the vocabulary", m->pad_id);
    mp_request_config def = mp_request_default_config();
    mp_request_config r = mp__request_resolve(m, req ? req : &def); /* + the model's decoding.json */
    req = &r;
    if (!(req->pause_split_s >= 0 && req->pause_split_s <= 3600))
        return mp__fail(MP_ERR_INVALID_ARG, "request: pause_split_s %g outside 0..3600", req->pause_split_s);
    if (!(req->oov_score <= 0 && req->oov_score >= -1000))
        return mp__fail(MP_ERR_INVALID_ARG, "request: oov_score %g outside -1000..0", (double)req->oov_score);
    if (req->decoder != MP_DECODER_GREEDY && req->decoder != MP_DECODER_BEAM)
        return mp__fail(MP_ERR_INVALID_ARG, "request: decoder: unknown value %d", (int)req->decoder);
    mp__decoder *d = calloc(1, sizeof *d);
    if (!d) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    mp_status st = wants_beam(m, req) ? mp__beam_create(m, req, &d->beam) : mp__greedy_create(m, req, &d->greedy);
    if (st != MP_OK) {
        mp__decoder_free(d);
        return st;
    }
    *out = d;
    return MP_OK;
}

mp_status mp__decoder_feed(mp__decoder *d, const float *logits, int n_frames) {
    if (!d || n_frames < 0 || (n_frames > 0 && !logits))
        return mp__fail(MP_ERR_INVALID_ARG, "decoder feed: bad argument");
    if (d->beam) return mp__beam_feed(d->beam, logits, n_frames);
    return mp__greedy_feed(d->greedy, logits, n_frames);
}

mp_status mp__decoder_finish(mp__decoder *d, mp_result *res) {
    if (!d || !res) return mp__fail(MP_ERR_INVALID_ARG, "decoder finish: NULL argument");
    if (d->beam) return mp__beam_finish(d->beam, res);
    return mp__greedy_finish(d->greedy, res);
}

mp_status mp__decoder_peek(mp__decoder *d, mp_result *res) {
    if (!d || !res) return mp__fail(MP_ERR_INVALID_ARG, "decoder peek: NULL argument");
    /* mp__beam_finish only reads the beams (it records the winning score, which the real finish
     * recomputes), so the search goes on unchanged after a peek. */
    if (d->beam) return mp__beam_finish(d->beam, res);
    return mp__greedy_peek(d->greedy, res);
}

double mp__decoder_score(const mp__decoder *d) { return d && d->beam ? mp__beam_score(d->beam) : 0.0; }

void mp__decoder_free(mp__decoder *d) {
    if (!d) return;
    mp__beam_free(d->beam);
    mp__greedy_free(d->greedy);
    free(d);
}
