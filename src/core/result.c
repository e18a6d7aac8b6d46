/* result.c - mp_result: the transcript, its words with times, optionally the logits. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

mp_result *mp__result_new(void) {
    mp_result *r = calloc(1, sizeof *r);
    if (r && !(r->text = calloc(1, 1))) {
        free(r);
        r = NULL;
    }
    return r;
}

mp_status mp__result_set_text(mp_result *r, const char *text, size_t len) {
    char *t = malloc(len + 1);
    if (!t) return mp__fail(MP_ERR_NOMEM, "result text: out of memory");
    memcpy(t, text, len);
    t[len] = '\0';
    free(r->text);
    r->text = t;
    return MP_OK;
}

mp_status mp__result_add_word(mp_result *r, const char *w, size_t len, double start_s, double end_s,
                              float confidence) {
    if (r->n_words == r->cap_words) {
        size_t cap = r->cap_words ? r->cap_words * 2 : 16;
        mp_word *words = realloc(r->words, cap * sizeof *words);
        if (!words) return mp__fail(MP_ERR_NOMEM, "result words: out of memory");
        r->words = words;
        char **strs = realloc(r->word_strs, cap * sizeof *strs);
        if (!strs) return mp__fail(MP_ERR_NOMEM, "result words: out of memory");
        r->word_strs = strs;
        r->cap_words = cap;
    }
    char *s = malloc(len + 1);
    if (!s) return mp__fail(MP_ERR_NOMEM, "result words: out of memory");
    memcpy(s, w, len);
    s[len] = '\0';
    r->word_strs[r->n_words] = s;
    r->words[r->n_words] = (mp_word){.word = s, .start_s = start_s, .end_s = end_s, .confidence = confidence};
    r->n_words++;
    return MP_OK;
}

const char *mp_result_text(const mp_result *res) { return res && res->text ? res->text : ""; }

size_t mp_result_n_words(const mp_result *res) { return res ? res->n_words : 0; }

mp_status mp_result_word(const mp_result *res, size_t i, mp_word *out) {
    if (!res || !out || i >= res->n_words) return mp__fail(MP_ERR_INVALID_ARG, "mp_result_word: index %zu out of range", i);
    *out = res->words[i];
    return MP_OK;
}

double mp_result_duration_s(const mp_result *res) { return res ? res->duration_s : 0.0; }

const float *mp_result_logits(const mp_result *res, int *n_frames, int *n_vocab) {
    if (n_frames) *n_frames = res && res->logits ? res->n_frames : 0;
    if (n_vocab) *n_vocab = res && res->logits ? res->n_vocab : 0;
    return res ? res->logits : NULL;
}

void mp_result_free(mp_result *res) {
    if (!res) return;
    for (size_t i = 0; i < res->n_words; i++) free(res->word_strs[i]);
    free(res->word_strs);
    free(res->words);
    free(res->text);
    free(res->logits);
    free(res);
}
