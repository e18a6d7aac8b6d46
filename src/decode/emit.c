/* emit.c - label runs -> text and words with Wav2Vec2CTCTokenizer semantics and word timings,
 * shared by the greedy decoder (run by run) and beam search (mp__emit_runs, once at the end).
 *
 * DESIGN
 *   HuggingFace's ASR pipeline decodes CTC with tokenizer.decode(ids, skip_special_tokens=False)
 *   (transformers pipelines/automatic_speech_recognition.py: `skip_special_tokens = self.type !=
 *   "ctc"`), and Wav2Vec2CTCTokenizer.convert_tokens_to_string does: group consecutive equal ids
 *   (itertools.groupby), drop the pad token (the CTC blank), replace the word delimiter by " ",
 *   join, strip(), lower() when do_lower_case. So repeats collapse before blanks go: "l <pad> l"
 *   is "ll"; "| <pad> |" gives two spaces inside the text; <s>, </s> and <unk> stay as their
 *   strings (they are not skipped on the CTC path). The caller has grouped the ids into runs.
 *   Word offsets follow _compute_offsets/_get_word_offsets: a character spans its run of frames
 *   [first, last + 1); a word starts at its first character's first frame and ends at its last
 *   character's end; seconds = frame * stride / sample_rate; confidence = the summed softmax
 *   probabilities of its characters' frames / their number of frames.
 *   The emitter keeps only the current word and the output (text + finished words), so memory
 *   follows the transcript length, not the frame count.
 *   Two additions, both off unless the request asks: pauses (pause_split_s) end a word as a
 *   delimiter would, when the gap between a character's run and the next character's exceeds the
 *   threshold (greedy: the blank run between them; beam search makes its own boundaries at
 *   pauses, as zero-length delimiters, and passes no threshold here); and with a word list,
 *   each word is walked through its trie so that words outside it (beam search's oov_score
 *   path) are marked oov.
 */
#include "emit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int buf_put(mp__buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static const char *tok_str(const mp__emitter *e, int id) {
    if (e->lower && e->lower[id]) return e->lower[id];
    const char *t = e->m->tokens ? e->m->tokens[id] : NULL;
    return t ? t : "";
}

static mp_status finish_word(mp__emitter *e) {
    if (!e->in_word) return MP_OK;
    e->in_word = 0;
    float conf = e->w_frames > 0 ? (float)(e->w_psum / (double)e->w_frames) : 0.0f;
    mp_status st = mp__result_add_word(e->words, e->word.p ? e->word.p : "", e->word.len,
                                       (double)e->w_start * e->sec_per_frame, (double)e->w_end * e->sec_per_frame,
                                       conf);
    if (st == MP_OK && e->lex)
        e->words->words[e->words->n_words - 1].oov = e->lex_node < 0 || !mp__lexicon_is_word(e->lex, e->lex_node);
    return st;
}

/* A word boundary: the current word ends; one space before the next character. */
static mp_status boundary(mp__emitter *e) {
    mp_status st = finish_word(e);
    if (st == MP_OK && e->text.len > 0) e->pending_spaces++;
    return st;
}

mp_status mp__emitter_run(mp__emitter *e, int id, int64_t start, int64_t end, double psum, int64_t n_frames) {
    if (id == e->m->pad_id) return MP_OK;
    if (id == e->m->word_delim_id) return boundary(e);
    if (e->in_word && e->pause_frames > 0 && start - e->w_end >= e->pause_frames) {
        mp_status st = boundary(e);
        if (st != MP_OK) return st;
    }
    const char *t = tok_str(e, id);
    size_t n = strlen(t);
    for (; e->text.len > 0 && e->pending_spaces > 0; e->pending_spaces--)
        if (buf_put(&e->text, " ", 1)) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    e->pending_spaces = 0;
    if (buf_put(&e->text, t, n)) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    if (!e->in_word) {
        e->in_word = 1;
        e->word.len = 0;
        e->w_start = start;
        e->w_psum = 0;
        e->w_frames = 0;
        e->lex_node = 0;
    }
    if (e->lex && e->lex_node >= 0) e->lex_node = mp__lexicon_child(e->lex, e->lex_node, id);
    if (buf_put(&e->word, t, n)) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    e->w_end = end;
    e->w_psum += psum;
    e->w_frames += n_frames;
    return MP_OK;
}

static mp_status copy_words(const mp_result *from, mp_result *to) {
    mp_status st = MP_OK;
    for (size_t i = 0; st == MP_OK && i < from->n_words; i++) {
        const mp_word *w = &from->words[i];
        st = mp__result_add_word(to, w->word, strlen(w->word), w->start_s, w->end_s, w->confidence);
        if (st == MP_OK) to->words[to->n_words - 1].oov = w->oov;
    }
    return st;
}

mp_status mp__emitter_finish(mp__emitter *e, mp_result *res) {
    mp_status st = finish_word(e);
    if (st == MP_OK) st = mp__result_set_text(res, e->text.p ? e->text.p : "", e->text.len);
    if (st == MP_OK) st = copy_words(e->words, res);
    return st;
}

mp_status mp__emitter_copy(const mp__emitter *e, mp__emitter *c) {
    *c = *e; /* shares m and e's lower-case table (read-only, not freed by c); copies the rest */
    c->owns_lower = 0;
    c->text = (mp__buf){0};
    c->word = (mp__buf){0};
    c->words = mp__result_new();
    mp_status st = c->words ? MP_OK : mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    if (st == MP_OK && (buf_put(&c->text, e->text.p ? e->text.p : "", e->text.len) ||
                        buf_put(&c->word, e->word.p ? e->word.p : "", e->word.len)))
        st = mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    if (st == MP_OK) st = copy_words(e->words, c->words);
    return st;
}

int64_t mp__pause_frames(const mp_model *m, double pause_split_s) {
    if (!(pause_split_s > 0)) return 0;
    int rate = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;
    double spf = (double)mp__model_stride(m) / (double)rate;
    /* "longer than": the smallest n with n * spf > pause_split_s (1e-9 absorbs 0.25 / 0.02 rounding) */
    return (int64_t)floor(pause_split_s / spf + 1e-9) + 1;
}

mp_status mp__emitter_init(mp__emitter *e, const mp_model *m, const mp_lexicon *lex, int64_t pause_frames) {
    memset(e, 0, sizeof *e);
    e->m = m;
    e->lex = lex;
    e->pause_frames = pause_frames;
    int stride = mp__model_stride(m);
    int rate = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;
    e->sec_per_frame = (double)stride / (double)rate;
    e->words = mp__result_new();
    if (!e->words) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    if (!m->do_lower_case) return MP_OK;
    e->lower = calloc((size_t)m->n_tokens, sizeof *e->lower);
    if (!e->lower) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    e->owns_lower = 1;
    for (int i = 0; i < m->n_tokens; i++) {
        const char *t = m->tokens[i] ? m->tokens[i] : "";
        e->lower[i] = mp__utf8_lower(t, strlen(t));
        if (!e->lower[i]) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    }
    return MP_OK;
}

void mp__emitter_free(mp__emitter *e) {
    if (e->lower && e->owns_lower) {
        for (int i = 0; i < e->m->n_tokens; i++) free(e->lower[i]);
        free(e->lower);
    }
    free(e->text.p);
    free(e->word.p);
    mp_result_free(e->words);
    memset(e, 0, sizeof *e);
}

mp_status mp__emit_runs(const mp_model *m, const mp_lexicon *lex, int64_t pause_frames, const int *tok,
                        const int64_t *start, const int64_t *end, const double *psum, const int64_t *n_frames,
                        size_t n, mp_result *res) {
    mp__emitter e;
    mp_status st = mp__emitter_init(&e, m, lex, pause_frames);
    for (size_t i = 0; st == MP_OK && i < n; i++) {
        if (tok[i] < 0 || tok[i] >= m->n_tokens) st = mp__fail(MP_ERR_INTERNAL, "decoder: token %d out of range", tok[i]);
        else st = mp__emitter_run(&e, tok[i], start[i], end[i], psum[i], n_frames[i]);
    }
    if (st == MP_OK) st = mp__emitter_finish(&e, res);
    mp__emitter_free(&e);
    return st;
}
