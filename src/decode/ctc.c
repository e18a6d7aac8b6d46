/* ctc.c - greedy CTC decoding with Wav2Vec2CTCTokenizer semantics and word timings, the
 * mp__decoder_* front end (greedy here, beam search in beam.c) and per-request defaults.
 *
 * DESIGN
 *   HuggingFace's ASR pipeline decodes CTC with tokenizer.decode(ids, skip_special_tokens=False)
 *   (transformers pipelines/automatic_speech_recognition.py: `skip_special_tokens = self.type !=
 *   "ctc"`), and Wav2Vec2CTCTokenizer.convert_tokens_to_string does: group consecutive equal ids
 *   (itertools.groupby), drop the pad token (the CTC blank), replace the word delimiter by " ",
 *   join, strip(), lower() when do_lower_case. So repeats collapse before blanks go: "l <pad> l"
 *   is "ll"; "| <pad> |" gives two spaces inside the text; <s>, </s> and <unk> stay as their
 *   strings (they are not skipped on the CTC path).
 *   Word offsets follow _compute_offsets/_get_word_offsets: a character spans its run of frames
 *   [first, last + 1); a word starts at its first character's first frame and ends at its last
 *   character's end; seconds = frame * stride / sample_rate.
 *   The decoder is incremental: it keeps only the current run, the current word and the output
 *   (text + finished words), so memory follows the transcript length, not the frame count.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    };
}

/* A growable byte buffer (text and the current word). */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static int buf_put(buf *b, const char *s, size_t n) {
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

typedef struct greedy {
    const mp_model *m;
    char **lower;          /* [n_tokens] lower-cased tokens when do_lower_case, else NULL */
    double sec_per_frame;  /* stride / sample_rate */
    int64_t frame;         /* frames consumed so far (global index of the next frame) */
    /* the current run of equal argmax ids */
    int run_id;            /* -1 before the first frame */
    int64_t run_start;
    double run_psum;       /* sum over the run's frames of softmax(chosen token) */
    /* output */
    buf text;
    size_t pending_spaces; /* delimiters seen since the last character (strip() drops them at the ends) */
    int in_word;
    buf word;
    int64_t w_start, w_end;
    double w_psum;
    int64_t w_frames;
    mp_result *words;      /* finished words (a private result used as a list) */
} greedy;

struct mp__decoder {
    mp__beam *beam; /* beam search when non-NULL, else greedy */
    greedy g;
};

static const char *tok_str(const greedy *g, int id) {
    if (g->lower && g->lower[id]) return g->lower[id];
    const char *t = g->m->tokens ? g->m->tokens[id] : NULL;
    return t ? t : "";
}

static mp_status finish_word(greedy *g) {
    if (!g->in_word) return MP_OK;
    g->in_word = 0;
    float conf = g->w_frames > 0 ? (float)(g->w_psum / (double)g->w_frames) : 0.0f;
    return mp__result_add_word(g->words, g->word.p ? g->word.p : "", g->word.len,
                               (double)g->w_start * g->sec_per_frame, (double)g->w_end * g->sec_per_frame, conf);
}

/* A run of token `id` covering frames [start, end) ended: apply the tokenizer's rules. */
static mp_status emit_run(greedy *g, int id, int64_t start, int64_t end, double psum, int64_t n_frames) {
    if (id == g->m->pad_id) return MP_OK;
    if (id == g->m->word_delim_id) {
        mp_status st = finish_word(g);
        if (st != MP_OK) return st;
        if (g->text.len > 0) g->pending_spaces++;
        return MP_OK;
    }
    const char *t = tok_str(g, id);
    size_t n = strlen(t);
    for (; g->text.len > 0 && g->pending_spaces > 0; g->pending_spaces--)
        if (buf_put(&g->text, " ", 1)) return mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
    g->pending_spaces = 0;
    if (buf_put(&g->text, t, n)) return mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
    if (!g->in_word) {
        g->in_word = 1;
        g->word.len = 0;
        g->w_start = start;
        g->w_psum = 0;
        g->w_frames = 0;
    }
    if (buf_put(&g->word, t, n)) return mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
    g->w_end = end;
    g->w_psum += psum;
    g->w_frames += n_frames;
    return MP_OK;
}

static mp_status greedy_feed(greedy *g, const float *logits, int n_frames) {
    int V = g->m->n_tokens;
    for (int t = 0; t < n_frames; t++) {
        const float *row = logits + (size_t)t * (size_t)V;
        /* argmax, first maximal index on ties (torch.argmax) */
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        /* softmax probability of the chosen token: 1 / sum_v exp(l_v - l_best) */
        double z = 0;
        for (int v = 0; v < V; v++) z += exp((double)row[v] - (double)row[best]);
        double p = 1.0 / z;
        if (best != g->run_id) {
            if (g->run_id >= 0) {
                mp_status st = emit_run(g, g->run_id, g->run_start, g->frame, g->run_psum, g->frame - g->run_start);
                if (st != MP_OK) return st;
            }
            g->run_id = best;
            g->run_start = g->frame;
            g->run_psum = 0;
        }
        g->run_psum += p;
        g->frame++;
    }
    return MP_OK;
}

static mp_status greedy_finish(greedy *g, mp_result *res) {
    mp_status st = MP_OK;
    if (g->run_id >= 0) {
        st = emit_run(g, g->run_id, g->run_start, g->frame, g->run_psum, g->frame - g->run_start);
        g->run_id = -1;
    }
    if (st == MP_OK) st = finish_word(g);
    if (st != MP_OK) return st;
    st = mp__result_set_text(res, g->text.p ? g->text.p : "", g->text.len);
    for (size_t i = 0; st == MP_OK && i < g->words->n_words; i++) {
        const mp_word *w = &g->words->words[i];
        st = mp__result_add_word(res, w->word, strlen(w->word), w->start_s, w->end_s, w->confidence);
    }
    return st;
}

/* greedy_finish on a copy: the transcript so far, with the current run taken as ended now, while g
 * goes on decoding. Greedy output only ever grows at the end, so the text is a prefix of the
 * final one. */
static mp_status greedy_peek(const greedy *g, mp_result *res) {
    greedy c = *g; /* shares m and lower (read-only); owns copies of the buffers below */
    c.text = (buf){0};
    c.word = (buf){0};
    c.words = mp__result_new();
    mp_status st = c.words ? MP_OK : mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
    if (st == MP_OK && (buf_put(&c.text, g->text.p ? g->text.p : "", g->text.len) ||
                        buf_put(&c.word, g->word.p ? g->word.p : "", g->word.len)))
        st = mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
    for (size_t i = 0; st == MP_OK && i < g->words->n_words; i++) {
        const mp_word *w = &g->words->words[i];
        st = mp__result_add_word(c.words, w->word, strlen(w->word), w->start_s, w->end_s, w->confidence);
    }
    if (st == MP_OK) st = greedy_finish(&c, res);
    free(c.text.p);
    free(c.word.p);
    mp_result_free(c.words);
    return st;
}

static void greedy_free(greedy *g) {
    if (g->lower) {
        for (int i = 0; i < g->m->n_tokens; i++) free(g->lower[i]);
        free(g->lower);
    }
    free(g->text.p);
    free(g->word.p);
    mp_result_free(g->words);
}

static mp_status greedy_init(greedy *g, const mp_model *m) {
    memset(g, 0, sizeof *g);
    g->m = m;
    g->run_id = -1;
    int stride = mp__model_stride(m);
    int rate = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;
    g->sec_per_frame = (double)stride / (double)rate;
    g->words = mp__result_new();
    if (!g->words) return mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
    if (m->do_lower_case) {
        g->lower = calloc((size_t)m->n_tokens, sizeof *g->lower);
        if (!g->lower) return mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
        for (int i = 0; i < m->n_tokens; i++) {
            const char *t = m->tokens[i] ? m->tokens[i] : "";
            g->lower[i] = mp__utf8_lower(t, strlen(t));
            if (!g->lower[i]) return mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
        }
    }
    return MP_OK;
}

mp_status mp__ctc_emit_runs(const mp_model *m, const int *tok, const int64_t *start, const int64_t *end,
                            const double *psum, const int64_t *n_frames, size_t n, mp_result *res) {
    greedy g;
    mp_status st = greedy_init(&g, m);
    for (size_t i = 0; st == MP_OK && i < n; i++) {
        if (tok[i] < 0 || tok[i] >= m->n_tokens) st = mp__fail(MP_ERR_INTERNAL, "decoder: token %d out of range", tok[i]);
        else st = emit_run(&g, tok[i], start[i], end[i], psum[i], n_frames[i]);
    }
    if (st == MP_OK) st = greedy_finish(&g, res);
    greedy_free(&g);
    return st;
}

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
    if (!req) req = &def;
    if (req->decoder != MP_DECODER_GREEDY && req->decoder != MP_DECODER_BEAM)
        return mp__fail(MP_ERR_INVALID_ARG, "request: decoder: unknown value %d", (int)req->decoder);
    mp__decoder *d = calloc(1, sizeof *d);
    if (!d) return mp__fail(MP_ERR_NOMEM, "decoder: out of memory");
    mp_status st = greedy_init(&d->g, m);
    if (st == MP_OK && wants_beam(m, req)) st = mp__beam_create(m, req, &d->beam);
    if (st != MP_OK) {
        mp__decoder_free(d);
        return st;
    }
    *out = d;
    return MP_OK;
}

mp_status mp__decoder_feed(mp__decoder *d, const float *logits, int n_frames) {
    if (!d || n_frames < 0 || (n_frames > 0 && !logits)) return mp__fail(MP_ERR_INVALID_ARG, "decoder feed: bad argument");
    if (d->beam) return mp__beam_feed(d->beam, logits, n_frames);
    return greedy_feed(&d->g, logits, n_frames);
}

mp_status mp__decoder_finish(mp__decoder *d, mp_result *res) {
    if (!d || !res) return mp__fail(MP_ERR_INVALID_ARG, "decoder finish: NULL argument");
    if (d->beam) return mp__beam_finish(d->beam, res);
    return greedy_finish(&d->g, res);
}

mp_status mp__decoder_peek(mp__decoder *d, mp_result *res) {
    if (!d || !res) return mp__fail(MP_ERR_INVALID_ARG, "decoder peek: NULL argument");
    /* mp__beam_finish only reads the beams (it records the winning score, which the real finish
     * recomputes), so the search goes on unchanged after a peek. */
    if (d->beam) return mp__beam_finish(d->beam, res);
    return greedy_peek(&d->g, res);
}

double mp__decoder_score(const mp__decoder *d) { return d && d->beam ? mp__beam_score(d->beam) : 0.0; }

void mp__decoder_free(mp__decoder *d) {
    if (!d) return;
    mp__beam_free(d->beam);
    greedy_free(&d->g);
    free(d);
}
