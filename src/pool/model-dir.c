/* model-dir.c - a model directory as the public API loads it: the network and tokenizer (engine)
 * plus the decoding resources found next to them (decode: lexicon.txt or words.txt, and
 * decoding.json with the model's decoding defaults and its LM). It sits in the top module because
 * it joins two modules that must not call each other. */
#include "internal.h"

mp_status mp_model_load(const char *dir, const mp_model_config *cfg, mp_model **out) {
    mp_status st = mp__model_load_network(dir, cfg, out);
    if (st != MP_OK) return st;
    /* lexicon.txt / words.txt spelled in this vocabulary (decode/lexicon.c); absent is fine. */
    st = mp__lexicon_load_dir(*out, dir, &(*out)->lexicon);
    /* decoding.json: defaults for requests that leave a field unset (decode/defaults.c). */
    if (st == MP_OK) st = mp__decoding_defaults_load(dir, &(*out)->decoding);
    if (st != MP_OK) {
        mp_model_free(*out);
        *out = NULL;
    }
    return st;
}

void mp_model_free(mp_model *m) {
    if (!m) return;
    mp_lexicon_free(m->lexicon);
    mp__decoding_defaults_free(m->decoding);
    mp__model_destroy(m);
}
