/* words.c - a result's words as JSON, the one shape `transcribe --format json` and the server's
 * verbose_json share: [{"word", "start", "end", "confidence"[, "oov": true]}, ...], times in seconds. */
#include "common/app.h"

json_t *mp_app_words_json(const mp_result *res) {
    json_t *words = json_array();
    size_t n = mp_result_n_words(res);
    for (size_t k = 0; k < n; k++) {
        mp_word w;
        if (mp_result_word(res, k, &w) != MP_OK) break;
        json_t *jw = json_pack("{s:s, s:f, s:f, s:f}", "word", w.word, "start", w.start_s, "end", w.end_s,
                               "confidence", (double)w.confidence);
        if (w.oov) json_object_set_new(jw, "oov", json_true()); /* outside the word list */
        json_array_append_new(words, jw);
    }
    return words;
}
