/* tokenizer.c - Wav2Vec2CTCTokenizer's files into the model's vocabulary: vocab.json (required,
 * token -> id), added_tokens.json and tokenizer_config.json's added_tokens_decoder (ids vocab.json
 * left empty), and the special tokens (pad = the CTC blank, word delimiter, unk, bos, eos) from
 * the tokenizer's defaults, then tokenizer_config.json, then special_tokens_map.json (the last
 * wins, as in transformers' from_pretrained). Part of engine; calls core. */
#include "loader.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Special-token strings, borrowed from the JSON files (alive until the load step ends). */
typedef struct specials {
    const char *pad, *delim, *unk, *bos, *eos;
} specials;

/* A special-token value: a string, an AddedToken object {"content": ...}, or null/absent. */
static mp_status get_token(const char *file, const json_t *o, const char *key, const char **out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return MP_OK;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected a token string or {\"content\": ...}", file, key);
    *out = json_string_value(v);
    return MP_OK;
}

static int token_id(const mp_model *m, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < m->n_tokens; i++)
        if (m->tokens[i] && !strcmp(m->tokens[i], s)) return i;
    return -1;
}

/* Put token s at id (which must be free or already hold s). */
static mp_status set_token(mp_model *m, const char *file, const char *s, json_int_t id) {
    if (id < 0 || id >= m->n_tokens)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: token \"%s\": id %lld outside the vocabulary [0, %d) of config.json "
                        "vocab_size",
                        file, s, (long long)id, m->n_tokens);
    if (m->tokens[id]) {
        if (!strcmp(m->tokens[id], s)) return MP_OK;
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: token \"%s\": id %lld already used by \"%s\"", file, s,
                        (long long)id, m->tokens[id]);
    }
    m->tokens[id] = strdup(s);
    if (!m->tokens[id]) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    return MP_OK;
}

/* Fill a token -> id JSON object into m->tokens. */
static mp_status add_token_map(mp_model *m, const char *file, const json_t *obj) {
    const char *tok;
    json_t *v;
    json_object_foreach((json_t *)obj, tok, v) {
        if (!json_is_integer(v))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: token \"%s\": id is a %s, expected an integer", file, tok,
                            mp__json_kind(v));
        mp_status st = set_token(m, file, tok, json_integer_value(v));
        if (st != MP_OK) return st;
    }
    return MP_OK;
}

/* tokenizer_config.json's added_tokens_decoder {"<id>": {"content": ...}}: fill ids that
 * vocab.json left empty (newer transformers list added tokens only here). */
static mp_status add_tokens_decoder(mp_model *m, const char *file, const json_t *tc) {
    const json_t *atd = json_object_get(tc, "added_tokens_decoder");
    if (!json_is_object(atd)) return MP_OK;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)atd, key, v) {
        const json_t *c = json_object_get(v, "content");
        char *end;
        long long id = strtoll(key, &end, 10);
        if (!json_is_string(c) || *end || end == key) continue; /* informational; vocab.json has what matters */
        if (id >= 0 && id < m->n_tokens && !m->tokens[id]) {
            mp_status st = set_token(m, file, json_string_value(c), id);
            if (st != MP_OK) return st;
        }
    }
    return MP_OK;
}

/* The special-token names a tokenizer file sets (each key optional). */
static mp_status get_specials(const char *file, const json_t *o, specials *sp) {
    mp_status st;
    if ((st = get_token(file, o, "pad_token", &sp->pad)) != MP_OK ||
        (st = get_token(file, o, "word_delimiter_token", &sp->delim)) != MP_OK ||
        (st = get_token(file, o, "unk_token", &sp->unk)) != MP_OK ||
        (st = get_token(file, o, "bos_token", &sp->bos)) != MP_OK ||
        (st = get_token(file, o, "eos_token", &sp->eos)) != MP_OK)
        return st;
    return MP_OK;
}

/* Special tokens to ids; ids no file named decode to nothing. */
static mp_status resolve_specials(mp__loader *L, const char *vocab_path, const specials *sp) {
    mp_model *m = L->m;
    m->pad_id = token_id(m, sp->pad);
    if (m->pad_id < 0) {
        if (L->cfg_pad_id < 0 || L->cfg_pad_id >= m->n_tokens)
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: pad token \"%s\" (the CTC blank) is not in the vocabulary, and %s pad_token_id %d "
                            "is outside it",
                            vocab_path, sp->pad, L->config_path, L->cfg_pad_id);
        m->pad_id = L->cfg_pad_id;
    }
    m->word_delim_id = token_id(m, sp->delim);
    m->unk_id = token_id(m, sp->unk);
    m->bos_id = token_id(m, sp->bos);
    m->eos_id = token_id(m, sp->eos);
    for (int i = 0; i < m->n_tokens; i++) {
        if (m->tokens[i]) continue;
        m->tokens[i] = strdup("");
        if (!m->tokens[i]) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", vocab_path);
    }
    return MP_OK;
}

/* The four files, in order; the JSON documents stay alive until the special tokens are resolved. */
static mp_status read_files(mp__loader *L, char *const path[4], json_t *doc[4]) {
    mp_model *m = L->m;
    enum { VOCAB, ADDED, CONFIG, SPECIAL };
    specials sp = {.pad = "<pad>", .delim = "|", .unk = "<unk>", .bos = "<s>", .eos = "</s>"};
    mp_status st;
    m->do_lower_case = 0;
    if ((st = mp__json_load(path[VOCAB], 0, &doc[VOCAB])) != MP_OK ||
        (st = add_token_map(m, path[VOCAB], doc[VOCAB])) != MP_OK ||
        (st = mp__json_load(path[ADDED], 1, &doc[ADDED])) != MP_OK ||
        (doc[ADDED] && (st = add_token_map(m, path[ADDED], doc[ADDED])) != MP_OK) ||
        (st = mp__json_load(path[CONFIG], 1, &doc[CONFIG])) != MP_OK)
        return st;
    const json_t *tc = doc[CONFIG];
    if (tc && ((st = get_specials(path[CONFIG], tc, &sp)) != MP_OK ||
               (st = mp__json_bool(path[CONFIG], tc, "do_lower_case", 0, &m->do_lower_case)) != MP_OK ||
               (st = add_tokens_decoder(m, path[CONFIG], tc)) != MP_OK))
        return st;
    if ((st = mp__json_load(path[SPECIAL], 1, &doc[SPECIAL])) != MP_OK) return st;
    if (doc[SPECIAL] && (st = get_specials(path[SPECIAL], doc[SPECIAL], &sp)) != MP_OK) return st;
    return resolve_specials(L, path[VOCAB], &sp);
}

mp_status mp__tokenizer_load(mp__loader *L) {
    static const char *const names[4] = {"vocab.json", "added_tokens.json", "tokenizer_config.json",
                                          "special_tokens_map.json"};
    mp_model *m = L->m;
    char *path[4];
    json_t *doc[4] = {NULL, NULL, NULL, NULL};
    mp_status st = MP_OK;
    for (int i = 0; i < 4; i++)
        if (!(path[i] = mp__path_join(L->dir, names[i]))) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", L->dir);
    if (st == MP_OK && !(m->tokens = calloc((size_t)m->hp.vocab, sizeof *m->tokens)))
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", path[0]);
    if (st == MP_OK) {
        m->n_tokens = m->hp.vocab;
        st = read_files(L, path, doc);
    }
    for (int i = 0; i < 4; i++) {
        json_decref(doc[i]);
        free(path[i]);
    }
    return st;
}
