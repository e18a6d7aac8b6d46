/* defaults.c - a model's decoding defaults: decoding.json in the model directory (loaded with the
 * model by pool/model-dir.c) and their merge into a request (mp__request_resolve).
 *
 * decoding.json is one JSON object; every field is optional; keys starting with "_" are notes and
 * ignored; any other key is an error naming the file and the key, so a typo never passes
 * silently (the schema is documented in docs/DECODING.md):
 *   decoder        "greedy" | "beam"
 *   beam_width     1..4096
 *   use_word_list  true | false  (the directory's lexicon.txt / words.txt in beam search)
 *   pause_split_s  0..60 seconds (0 = off)
 *   oov_score      -1000..0 (natural log, per out-of-list word; 0 = off)
 *   lm             file name of an ARPA LM inside the model directory
 *   lm_alpha, lm_beta, lm_unk_score   numbers
 * A field is applied to a request that left it unset: still at mp_request_default_config()'s
 * value with its MP_REQ_* group bit clear (lexicon: NULL), and use_model_defaults set.
 */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    DD_DECODER = 1 << 0,
    DD_BEAM_WIDTH = 1 << 1,
    DD_WORD_LIST = 1 << 2,
    DD_PAUSE = 1 << 3,
    DD_OOV = 1 << 4,
    DD_ALPHA = 1 << 5,
    DD_BETA = 1 << 6,
    DD_UNK = 1 << 7
};

struct mp__decoding_defaults {
    unsigned set;        /* DD_* bits of the fields the file names */
    mp_decoder decoder;
    int beam_width;
    int use_word_list;
    double pause_split_s;
    float oov_score;
    mp_lm *lm;           /* owned; NULL when the file names none */
    float lm_alpha, lm_beta, lm_unk_score;
};

void mp__decoding_defaults_free(mp__decoding_defaults *d) {
    if (!d) return;
    mp_lm_free(d->lm);
    free(d);
}

/* Present and not null. */
static int has(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return v && !json_is_null(v);
}

static const char *const known_keys[] = {"decoder", "beam_width", "use_word_list", "pause_split_s", "oov_score",
                                         "lm", "lm_alpha", "lm_beta", "lm_unk_score"};

static mp_status check_keys(const char *f, const json_t *o) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        if (key[0] == '_') continue;
        size_t i = 0;
        while (i < sizeof known_keys / sizeof known_keys[0] && strcmp(key, known_keys[i])) i++;
        if (i == sizeof known_keys / sizeof known_keys[0])
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: %s: unknown field (known: decoder, beam_width, use_word_list, pause_split_s, "
                            "oov_score, lm, lm_alpha, lm_beta, lm_unk_score)",
                            f, key);
    }
    return MP_OK;
}

/* A number field in [lo, hi]; sets bit in d->set when present. */
static mp_status get_range(const char *f, const json_t *o, const char *key, double lo, double hi, unsigned bit,
                           mp__decoding_defaults *d, double *out) {
    if (!has(o, key)) return MP_OK;
    mp_status st = mp__json_real(f, o, key, 0, out);
    if (st != MP_OK) return st;
    if (!(*out >= lo && *out <= hi))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: value %g out of range [%g, %g]", f, key, *out, lo, hi);
    d->set |= bit;
    return MP_OK;
}

static mp_status parse_decoder(const char *f, const json_t *o, mp__decoding_defaults *d) {
    const char *s;
    mp_status st = mp__json_str(f, o, "decoder", NULL, &s);
    if (st != MP_OK) return st;
    if (s) {
        if (!strcmp(s, "greedy")) d->decoder = MP_DECODER_GREEDY;
        else if (!strcmp(s, "beam")) d->decoder = MP_DECODER_BEAM;
        else return mp__fail(MP_ERR_MODEL_FORMAT, "%s: decoder: \"%s\" is not \"greedy\" or \"beam\"", f, s);
        d->set |= DD_DECODER;
    }
    if (has(o, "beam_width")) {
        if ((st = mp__json_int(f, o, "beam_width", 16, 1, 4096, &d->beam_width)) != MP_OK) return st;
        d->set |= DD_BEAM_WIDTH;
    }
    if (has(o, "use_word_list")) {
        if ((st = mp__json_bool(f, o, "use_word_list", 1, &d->use_word_list)) != MP_OK) return st;
        d->set |= DD_WORD_LIST;
    }
    return MP_OK;
}

/* "lm": an ARPA file inside the model directory. */
static mp_status load_lm(const char *f, const char *dir, const json_t *o, mp__decoding_defaults *d) {
    const char *name;
    mp_status st = mp__json_str(f, o, "lm", NULL, &name);
    if (st != MP_OK || !name) return st;
    if (!name[0] || strchr(name, '/'))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: lm: \"%s\" is not a file name in the model directory", f, name);
    char *path = mp__path_join(dir, name);
    if (!path) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", f);
    st = mp_lm_load_arpa(path, &d->lm);
    if (st != MP_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", mp_last_error());
        st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: lm: %s", f, detail);
    }
    free(path);
    return st;
}

static mp_status parse(const char *f, const char *dir, const json_t *o, mp__decoding_defaults *d) {
    double x;
    mp_status st;
    if ((st = check_keys(f, o)) != MP_OK || (st = parse_decoder(f, o, d)) != MP_OK) return st;
    if ((st = get_range(f, o, "pause_split_s", 0, 60, DD_PAUSE, d, &d->pause_split_s)) != MP_OK) return st;
    if ((st = get_range(f, o, "oov_score", -1000, 0, DD_OOV, d, &x)) != MP_OK) return st;
    d->oov_score = (float)x;
    if ((st = get_range(f, o, "lm_alpha", -100, 100, DD_ALPHA, d, &x)) != MP_OK) return st;
    d->lm_alpha = (float)x;
    if ((st = get_range(f, o, "lm_beta", -100, 100, DD_BETA, d, &x)) != MP_OK) return st;
    d->lm_beta = (float)x;
    if ((st = get_range(f, o, "lm_unk_score", -1000, 0, DD_UNK, d, &x)) != MP_OK) return st;
    d->lm_unk_score = (float)x;
    return load_lm(f, dir, o, d);
}

mp_status mp__decoding_defaults_load(const char *dir, mp__decoding_defaults **out) {
    *out = NULL;
    char *path = mp__path_join(dir, "decoding.json");
    if (!path) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", dir);
    json_t *o = NULL;
    mp__decoding_defaults *d = NULL;
    mp_status st = mp__json_load(path, 1, &o);
    if (st == MP_OK && o && !(d = calloc(1, sizeof *d))) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    if (st == MP_OK && d) st = parse(path, dir, o, d);
    json_decref(o);
    free(path);
    if (st != MP_OK) {
        mp__decoding_defaults_free(d);
        return st;
    }
    *out = d;
    return MP_OK;
}

/* Field f of the request is unset: at its library default and its group not marked explicit. */
#define UNSET(group, f) (!(req->explicit_fields & (group)) && r.f == def.f)

mp_request_config mp__request_resolve(const mp_model *m, const mp_request_config *req) {
    mp_request_config r = *req;
    const mp__decoding_defaults *d = m->decoding;
    if (!d || !req->use_model_defaults) return r;
    const mp_request_config def = mp_request_default_config();
    if ((d->set & DD_DECODER) && UNSET(MP_REQ_DECODER, decoder)) r.decoder = d->decoder;
    if ((d->set & DD_BEAM_WIDTH) && UNSET(MP_REQ_DECODER, beam_width)) r.beam_width = d->beam_width;
    if ((d->set & DD_WORD_LIST) && !r.lexicon && UNSET(MP_REQ_WORD_LIST, use_model_lexicon))
        r.use_model_lexicon = d->use_word_list;
    if ((d->set & DD_PAUSE) && UNSET(MP_REQ_PAUSE_SPLIT, pause_split_s)) r.pause_split_s = d->pause_split_s;
    if ((d->set & DD_OOV) && UNSET(MP_REQ_OOV, oov_score)) r.oov_score = d->oov_score;
    if (d->lm && UNSET(MP_REQ_LM, lm)) r.lm = d->lm;
    if ((d->set & DD_ALPHA) && UNSET(MP_REQ_LM, lm_alpha)) r.lm_alpha = d->lm_alpha;
    if ((d->set & DD_BETA) && UNSET(MP_REQ_LM, lm_beta)) r.lm_beta = d->lm_beta;
    if ((d->set & DD_UNK) && UNSET(MP_REQ_LM, lm_unk_score)) r.lm_unk_score = d->lm_unk_score;
    return r;
}
