/* options.c - a request's decoding and audio form fields (beam, hotwords, words, lexicon, lm,
 * lm_alpha, lm_beta; channel, raw_format, raw_rate) over the server's defaults. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse "word[:boost],word[:boost]" in place into hot[]. Returns the count, or -1 with err set. */
static int parse_hotwords(char *s, mp_hotword *hot, size_t cap, char *err, size_t n_err) {
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        if (n == cap) {
            snprintf(err, n_err, "at most %zu hotwords", cap);
            return -1;
        }
        float boost = 5.0f;
        char *colon = strrchr(tok, ':');
        if (colon) {
            *colon = '\0';
            char *end = NULL;
            double b = strtod(colon + 1, &end);
            if (end == colon + 1 || *end || !(b >= -100 && b <= 100)) {
                snprintf(err, n_err, "hotword '%s': boost must be a number in -100..100", tok);
                return -1;
            }
            boost = (float)b;
        }
        hot[n++] = (mp_hotword){.phrase = tok, .boost = boost};
    }
    return (int)n;
}

static int parse_float_field(const char *name, const char *s, float *out, char *err, size_t n_err) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= -100 && v <= 100)) {
        snprintf(err, n_err, "%s must be a number in -100..100", name);
        return 0;
    }
    *out = (float)v;
    return 1;
}

/* The request's decoding settings: the server's defaults, then the request's own fields. hot and
 * words receive what req points to (they live in r); *lex_out owns a per-request word list.
 * Returns 0 with err set when a field is invalid. */
int srv_request_decoding(server *srv, request *r, mp_request_config *req, mp_hotword *hot, const char **words,
                         mp_lexicon **lex_out, char *err, size_t n_err) {
    *req = mp_request_default_config();
    req->timeout_ms = srv->timeout_ms;
    req->lexicon = srv->lexicon;
    req->lm = srv->lm;
    req->lm_alpha = srv->lm_alpha;
    req->lm_beta = srv->lm_beta;
    long beam = srv->beam;
    int want_beam = 0; /* set by any field that only acts in beam search */
    if (r->beam[0]) {
        char *end = NULL;
        beam = strtol(r->beam, &end, 10);
        if (!end || *end || beam < 0 || beam > 1024) {
            snprintf(err, n_err, "beam must be an integer in 0..1024 (0 = greedy)");
            return 0;
        }
    }
    if (r->hotwords[0]) {
        int n = parse_hotwords(r->hotwords, hot, MAX_HOTWORDS, err, n_err);
        if (n < 0) return 0;
        req->hotwords = hot;
        req->n_hotwords = (size_t)n;
        want_beam |= n > 0;
    }
    if (r->lexicon[0]) {
        if (strcmp(r->lexicon, "model") && strcmp(r->lexicon, "none")) {
            snprintf(err, n_err, "lexicon must be 'model' or 'none'");
            return 0;
        }
        req->use_model_lexicon = !strcmp(r->lexicon, "model");
        if (!req->use_model_lexicon) req->lexicon = NULL;
    }
    if (r->lm[0]) {
        if (strcmp(r->lm, "on") && strcmp(r->lm, "off")) {
            snprintf(err, n_err, "lm must be 'on' or 'off'");
            return 0;
        }
        if (!strcmp(r->lm, "on") && !srv->lm) {
            snprintf(err, n_err, "lm=on, but the server was started without --lm");
            return 0;
        }
        if (!strcmp(r->lm, "off")) req->lm = NULL;
        want_beam |= req->lm != NULL;
    }
    if (r->lm_alpha[0] && !parse_float_field("lm_alpha", r->lm_alpha, &req->lm_alpha, err, n_err)) return 0;
    if (r->lm_beta[0] && !parse_float_field("lm_beta", r->lm_beta, &req->lm_beta, err, n_err)) return 0;
    if (r->words[0]) {
        size_t n = 0;
        for (char *save = NULL, *tok = strtok_r(r->words, ", \t\r\n", &save); tok;
             tok = strtok_r(NULL, ", \t\r\n", &save)) {
            if (n == MAX_WORDS) {
                snprintf(err, n_err, "at most %d words", MAX_WORDS);
                return 0;
            }
            words[n++] = tok;
        }
        if (n) {
            mp_status st = mp_lexicon_from_words(mp_pool_model(srv->pool), words, n, lex_out);
            if (st != MP_OK) {
                snprintf(err, n_err, "words: %s", mp_last_error());
                return 0;
            }
            req->lexicon = *lex_out;
            want_beam = 1;
        }
    }
    if (!r->beam[0] && want_beam && !beam) beam = 16; /* these fields only act in beam search */
    if (beam > 0) {
        req->decoder = MP_DECODER_BEAM;
        req->beam_width = (int)beam;
    }
    return 1;
}

/* The request's audio settings (channel, headerless format). Returns 0 with err set when invalid. */
int srv_request_audio(server *srv, request *r, mp_audio_config *acfg, char *err, size_t n_err) {
    *acfg = mp_audio_default_config();
    acfg->max_duration_s = srv->max_audio_s; /* bounds the decoded samples a request may hold */
    char *end = NULL;
    if (r->channel[0]) {
        long k = strtol(r->channel, &end, 10);
        if (!end || *end || k < 0 || k > 255) {
            snprintf(err, n_err, "channel must be an integer in 0..255");
            return 0;
        }
        acfg->channel = (int)k;
    }
    if (r->raw_format[0]) {
        if (!strcmp(r->raw_format, "s16le"))
            acfg->raw_format = MP_RAW_S16LE;
        else if (!strcmp(r->raw_format, "mulaw") || !strcmp(r->raw_format, "ulaw"))
            acfg->raw_format = MP_RAW_MULAW;
        else if (!strcmp(r->raw_format, "alaw"))
            acfg->raw_format = MP_RAW_ALAW;
        else {
            snprintf(err, n_err, "raw_format must be s16le, mulaw or alaw");
            return 0;
        }
    }
    if (r->raw_rate[0]) {
        long hz = strtol(r->raw_rate, &end, 10);
        if (!end || *end || hz < 1000 || hz > 384000) {
            snprintf(err, n_err, "raw_rate must be an integer in 1000..384000 (Hz)");
            return 0;
        }
        if (!r->raw_format[0]) {
            snprintf(err, n_err, "raw_rate needs raw_format");
            return 0;
        }
        acfg->raw_rate = (int)hz;
    }
    return 1;
}
