/* test-decode.c - CTC decoders on hand-made tokenizers and logits: greedy semantics, beam search
 * against exhaustive enumeration, lexicon, hotwords, ARPA LM, malformed files. No weights needed. */
#include "internal.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------------- */

/* A model with only a tokenizer and a stride of 320 samples at 16 kHz (20 ms frames). */
static mp_model *fake_model(const char *const *toks, int n) {
    mp_model *m = calloc(1, sizeof *m);
    MP_ASSERT(m);
    m->tokens = calloc((size_t)n, sizeof *m->tokens);
    MP_ASSERT(m->tokens);
    m->n_tokens = n;
    m->pad_id = m->word_delim_id = m->unk_id = m->bos_id = m->eos_id = -1;
    for (int i = 0; i < n; i++) {
        m->tokens[i] = strdup(toks[i]);
        MP_ASSERT(m->tokens[i]);
        if (!strcmp(toks[i], "<pad>")) m->pad_id = i;
        if (!strcmp(toks[i], "|")) m->word_delim_id = i;
        if (!strcmp(toks[i], "<unk>")) m->unk_id = i;
        if (!strcmp(toks[i], "<s>")) m->bos_id = i;
        if (!strcmp(toks[i], "</s>")) m->eos_id = i;
    }
    m->hp.n_conv = 2;
    m->hp.conv_kernel[0] = 10, m->hp.conv_stride[0] = 5;
    m->hp.conv_kernel[1] = 3, m->hp.conv_stride[1] = 64;
    m->hp.sample_rate = 16000;
    m->hp.vocab = n;
    return m;
}

static void free_model(mp_model *m) {
    mp_lexicon_free(m->lexicon);
    m->lexicon = NULL;
    mp_model_free(m);
}

/* base-960h's vocabulary */
static const char *const EN[] = {"<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D",
                                 "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"};
#define N_EN 32

static int tok_id(const mp_model *m, const char *t) {
    for (int i = 0; i < m->n_tokens; i++)
        if (!strcmp(m->tokens[i], t)) return i;
    MP_FAILF("no token %s", t);
}

/* Logits for a frame sequence given as space-separated tokens ("_" = <pad>): the named token gets
 * `hi`, the rest 0. Returns [T][V] (malloc) and *T. */
static float *frames_logits(const mp_model *m, const char *seq, float hi, int *T) {
    char *s = strdup(seq), *save = NULL;
    MP_ASSERT(s);
    int cap = 64, n = 0;
    float *L = calloc((size_t)cap * (size_t)m->n_tokens, sizeof *L);
    for (char *t = strtok_r(s, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (n == cap) {
            cap *= 2;
            L = realloc(L, (size_t)cap * (size_t)m->n_tokens * sizeof *L);
        }
        MP_ASSERT(L);
        memset(L + (size_t)n * (size_t)m->n_tokens, 0, (size_t)m->n_tokens * sizeof *L);
        int id = !strcmp(t, "_") ? m->pad_id : tok_id(m, t);
        L[(size_t)n * (size_t)m->n_tokens + (size_t)id] = hi;
        n++;
    }
    free(s);
    *T = n;
    return L;
}

static mp_result *decode(const mp_model *m, const mp_request_config *req, const float *L, int T) {
    mp__decoder *d = NULL;
    MP_ASSERT_OK(mp__decoder_create(m, req, &d));
    MP_ASSERT_OK(mp__decoder_feed(d, L, T));
    mp_result *r = mp__result_new();
    MP_ASSERT(r);
    MP_ASSERT_OK(mp__decoder_finish(d, r));
    mp__decoder_free(d);
    return r;
}

static mp_result *decode_seq(const mp_model *m, const mp_request_config *req, const char *seq) {
    int T;
    float *L = frames_logits(m, seq, 8.0f, &T);
    mp_result *r = decode(m, req, L, T);
    free(L);
    return r;
}

static void greedy_text_is(const mp_model *m, const char *seq, const char *want) {
    mp_result *r = decode_seq(m, NULL, seq);
    MP_ASSERT_STR_EQ(mp_result_text(r), want);
    mp_result_free(r);
}

/* ---- greedy ----------------------------------------------------------------------------------- */

static void greedy_semantics(void) {
    mp_model *m = fake_model(EN, N_EN);
    greedy_text_is(m, "", "");
    greedy_text_is(m, "_ _ _", "");
    greedy_text_is(m, "| | _ |", "");
    greedy_text_is(m, "H H E _ L L _ L O O", "HELLO");           /* repeats collapse; "L _ L" is "LL" */
    greedy_text_is(m, "L L L", "L");
    greedy_text_is(m, "A | | B", "A B");                         /* one run of delimiters: one space */
    greedy_text_is(m, "A | _ | B", "A  B");                      /* two runs: two spaces, as HF */
    greedy_text_is(m, "| _ A B | _ C _ | |", "AB C");            /* leading/trailing delimiters stripped */
    greedy_text_is(m, "<s> A <unk> </s>", "<s>A<unk></s>");      /* specials kept (skip_special_tokens=False) */
    free_model(m);
}

static void greedy_ties(void) {
    mp_model *m = fake_model(EN, N_EN);
    /* all-equal logits: torch.argmax picks index 0 (<pad>) */
    float L[2 * N_EN] = {0};
    mp_result *r = decode(m, NULL, L, 2);
    MP_ASSERT_STR_EQ(mp_result_text(r), "");
    mp_result_free(r);
    /* E (5) and T (6) tie: E */
    L[5] = L[6] = 3.0f;
    r = decode(m, NULL, L, 1);
    MP_ASSERT_STR_EQ(mp_result_text(r), "E");
    mp_result_free(r);
    free_model(m);
}

static void greedy_utf8(void) {
    static const char *const VI[] = {"<pad>", "<s>", "</s>", "<unk>", "|", "a", "ă", "â", "đ", "ộ", "ữ", "ế", "Ư"};
    mp_model *m = fake_model(VI, 13);
    greedy_text_is(m, "đ _ ộ ộ | ă _ ă â | ữ", "độ ăăâ ữ");
    mp_result *r = decode_seq(m, NULL, "đ _ ộ ộ | ă _ ă â | ữ");
    MP_ASSERT_EQ(mp_result_n_words(r), 3);
    mp_word w;
    MP_ASSERT_OK(mp_result_word(r, 1, &w));
    MP_ASSERT_STR_EQ(w.word, "ăăâ");
    mp_result_free(r);
    /* do_lower_case lowercases whole code points */
    m->do_lower_case = 1;
    greedy_text_is(m, "Ư a", "ưa");
    free_model(m);
}

static void greedy_lower(void) {
    mp_model *m = fake_model(EN, N_EN);
    m->do_lower_case = 1;
    greedy_text_is(m, "H E | Y O U", "he you");
    free_model(m);
}

static void greedy_timestamps(void) {
    mp_model *m = fake_model(EN, N_EN);
    MP_ASSERT_EQ(mp__model_stride(m), 320);
    /* frames:   0 1 2 3 4 5 6 7 8 9 10 11 */
    mp_result *r = decode_seq(m, NULL, "_ H H _ I | | _ Y O O _");
    MP_ASSERT_STR_EQ(mp_result_text(r), "HI YO");
    MP_ASSERT_EQ(mp_result_n_words(r), 2);
    mp_word w;
    MP_ASSERT_OK(mp_result_word(r, 0, &w));
    MP_ASSERT_STR_EQ(w.word, "HI");
    MP_ASSERT_NEAR(w.start_s, 1 * 0.02, 1e-9); /* H starts at frame 1 */
    MP_ASSERT_NEAR(w.end_s, 5 * 0.02, 1e-9);   /* I spans frame 4: ends at 5 */
    /* confidence: every chosen frame has logit 8 vs 31 zeros */
    double p = 1.0 / (1.0 + 31.0 * exp(-8.0));
    MP_ASSERT_NEAR(w.confidence, p, 1e-5);
    MP_ASSERT_OK(mp_result_word(r, 1, &w));
    MP_ASSERT_STR_EQ(w.word, "YO");
    MP_ASSERT_NEAR(w.start_s, 8 * 0.02, 1e-9);
    MP_ASSERT_NEAR(w.end_s, 11 * 0.02, 1e-9);
    MP_ASSERT_STATUS(mp_result_word(r, 2, &w), MP_ERR_INVALID_ARG);
    mp_result_free(r);

    /* confidence is the mean over the word's character frames (blanks inside excluded) */
    float L[3 * N_EN] = {0};
    int A = tok_id(m, "A");
    L[0 * N_EN + A] = 2.0f;          /* p_A = e^2 / (e^2 + 31) */
    L[1 * N_EN + m->pad_id] = 5.0f;
    L[2 * N_EN + A] = 4.0f;          /* p_A = e^4 / (e^4 + 31) */
    r = decode(m, NULL, L, 3);
    MP_ASSERT_STR_EQ(mp_result_text(r), "AA");
    MP_ASSERT_OK(mp_result_word(r, 0, &w));
    double want = 0.5 * (exp(2.0) / (exp(2.0) + 31) + exp(4.0) / (exp(4.0) + 31));
    MP_ASSERT_NEAR(w.confidence, want, 1e-5);
    MP_ASSERT_NEAR(w.end_s, 3 * 0.02, 1e-9);
    mp_result_free(r);
    free_model(m);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static float rndf(void) { return (float)(rnd() % 1000000) / 1000000.0f; }

/* Random logits biased towards blank and the delimiter, so words form. [T][V] */
static float *random_logits(int T, int V, int pad, int delim, float scale) {
    float *L = malloc((size_t)T * (size_t)V * sizeof *L);
    MP_ASSERT(L);
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) {
            float x = scale * rndf();
            if (v == pad) x += 0.3f * scale;
            if (v == delim) x += 0.1f * scale;
            L[(size_t)t * (size_t)V + (size_t)v] = x;
        }
    return L;
}

static void same_result(const mp_result *a, const mp_result *b) {
    MP_ASSERT_STR_EQ(mp_result_text(a), mp_result_text(b));
    MP_ASSERT_EQ(mp_result_n_words(a), mp_result_n_words(b));
    for (size_t i = 0; i < mp_result_n_words(a); i++) {
        mp_word x, y;
        MP_ASSERT_OK(mp_result_word(a, i, &x));
        MP_ASSERT_OK(mp_result_word(b, i, &y));
        MP_ASSERT_STR_EQ(x.word, y.word);
        MP_ASSERT_NEAR(x.start_s, y.start_s, 1e-9);
        MP_ASSERT_NEAR(x.end_s, y.end_s, 1e-9);
        MP_ASSERT_NEAR(x.confidence, y.confidence, 1e-5);
    }
}

static void greedy_incremental(void) {
    mp_model *m = fake_model(EN, 12);
    const int T = 600, V = 12;
    float *L = random_logits(T, V, m->pad_id, m->word_delim_id, 4.0f);
    mp_result *whole = decode(m, NULL, L, T);
    MP_ASSERT(mp_result_n_words(whole) > 10);
    for (int trial = 0; trial < 20; trial++) {
        mp__decoder *d = NULL;
        MP_ASSERT_OK(mp__decoder_create(m, NULL, &d));
        for (int t = 0; t < T;) {
            int n = (int)(rnd() % 40);
            if (n > T - t) n = T - t;
            MP_ASSERT_OK(mp__decoder_feed(d, L + (size_t)t * (size_t)V, n));
            t += n;
        }
        mp_result *r = mp__result_new();
        MP_ASSERT_OK(mp__decoder_finish(d, r));
        mp__decoder_free(d);
        same_result(whole, r);
        mp_result_free(r);
    }
    /* the joined words are the text with single spaces (no double delimiter runs here or not) */
    mp_result_free(whole);
    free(L);
    free_model(m);
}

static void request_defaults(void) {
    mp_request_config c = mp_request_default_config();
    MP_ASSERT_EQ(c.decoder, MP_DECODER_GREEDY);
    MP_ASSERT_EQ(c.beam_width, 16);
    MP_ASSERT_EQ(c.use_model_lexicon, 1);
    MP_ASSERT_NEAR(c.lm_alpha, 0.5, 1e-7);
    MP_ASSERT_NEAR(c.lm_beta, 1.0, 1e-7);
    MP_ASSERT_NEAR(c.lm_unk_score, -10.0, 1e-7);
    MP_ASSERT_EQ(c.timeout_ms, -1);
    MP_ASSERT_NEAR(c.chunk_length_s, 20.0, 1e-9);
    MP_ASSERT_NEAR(c.stride_length_s, 20.0 / 6.0, 1e-9);
    /* bad arguments */
    mp_model *m = fake_model(EN, N_EN);
    mp__decoder *d = (mp__decoder *)&c;
    c.decoder = (mp_decoder)7;
    MP_ASSERT_STATUS(mp__decoder_create(m, &c, &d), MP_ERR_INVALID_ARG);
    MP_ASSERT(d == NULL);
    MP_ASSERT_STATUS(mp__decoder_create(NULL, NULL, &d), MP_ERR_INVALID_ARG);
    free_model(m);
}

/* ---- beam search ------------------------------------------------------------------------------ */

static mp_request_config beam_req(int width) {
    mp_request_config c = mp_request_default_config();
    c.decoder = MP_DECODER_BEAM;
    c.beam_width = width;
    return c;
}

/* Exhaustive CTC: sum the probability of every alignment (V^T paths) per labeling; return the
 * best labeling's text (by the tokenizer's rules) and its ln probability. */
static double exhaustive_best(const mp_model *m, const float *L, int T, char *text, size_t cap) {
    const int V = m->n_tokens;
    double lp[8][8];
    for (int t = 0; t < T; t++) {
        double mx = L[t * V], z = 0;
        for (int v = 1; v < V; v++) mx = fmax(mx, L[t * V + v]);
        for (int v = 0; v < V; v++) z += exp(L[t * V + v] - mx);
        for (int v = 0; v < V; v++) lp[t][v] = L[t * V + v] - mx - log(z);
    }
    /* labelings as base-(V+1) numbers with their length; at most V^T of them */
    size_t n_paths = 1;
    for (int t = 0; t < T; t++) n_paths *= (size_t)V;
    uint64_t *lab = calloc(n_paths, sizeof *lab);
    double *prob = calloc(n_paths, sizeof *prob);
    size_t n_lab = 0;
    double total = 0;
    for (size_t path = 0; path < n_paths; path++) {
        size_t x = path;
        int prev = -1;
        uint64_t code = 0;
        double p = 0;
        for (int t = 0; t < T; t++) {
            int v = (int)(x % (size_t)V);
            x /= (size_t)V;
            p += lp[t][v];
            if (v != prev && v != m->pad_id) code = code * (uint64_t)(V + 1) + (uint64_t)(v + 1);
            prev = v;
        }
        total += exp(p);
        size_t i = 0;
        while (i < n_lab && lab[i] != code) i++;
        if (i == n_lab) lab[n_lab++] = code;
        prob[i] += exp(p);
    }
    MP_ASSERT_NEAR(total, 1.0, 1e-9);
    size_t best = 0;
    for (size_t i = 1; i < n_lab; i++)
        if (prob[i] > prob[best]) best = i;
    /* decode the labeling through the greedy decoder: one frame per label, blanks between */
    int labels[8], n = 0;
    for (uint64_t c = lab[best]; c; c /= (uint64_t)(V + 1)) labels[n++] = (int)(c % (uint64_t)(V + 1)) - 1;
    float *F = calloc((size_t)(2 * n + 1) * (size_t)V, sizeof *F);
    for (int i = 0; i < n; i++) {
        F[(size_t)(2 * i) * (size_t)V + (size_t)labels[n - 1 - i]] = 5;
        F[(size_t)(2 * i + 1) * (size_t)V + (size_t)m->pad_id] = 5;
    }
    mp_result *r = decode(m, NULL, F, 2 * n);
    snprintf(text, cap, "%s", mp_result_text(r));
    mp_result_free(r);
    double out = log(prob[best]);
    free(F);
    free(lab);
    free(prob);
    return out;
}

static void beam_exhaustive(void) {
    static const char *const V1[] = {"<pad>", "A", "B", "C"};
    static const char *const V2[] = {"<pad>", "|", "A", "B"};
    for (int vi = 0; vi < 2; vi++) {
        mp_model *m = fake_model(vi ? V2 : V1, 4);
        for (int trial = 0; trial < 40; trial++) {
            int T = 1 + trial % 6;
            float *L = random_logits(T, 4, m->pad_id, -1, 3.0f);
            char want[64];
            double lp = exhaustive_best(m, L, T, want, sizeof want);
            mp_request_config req = beam_req(2048); /* > every prefix of <= 6 labels over 3: exact */
            mp__decoder *d = NULL;
            MP_ASSERT_OK(mp__decoder_create(m, &req, &d));
            MP_ASSERT_OK(mp__decoder_feed(d, L, T));
            mp_result *r = mp__result_new();
            MP_ASSERT_OK(mp__decoder_finish(d, r));
            MP_ASSERT_STR_EQ(mp_result_text(r), want);
            MP_ASSERT_NEAR(mp__decoder_score(d), lp, 1e-6);
            mp__decoder_free(d);
            mp_result_free(r);
            free(L);
        }
        free_model(m);
    }
}

static void beam1_greedy(void) {
    mp_model *m = fake_model(EN, 12);
    const int T = 400, V = 12;
    float *L = random_logits(T, V, m->pad_id, m->word_delim_id, 4.0f);
    mp_result *g = decode(m, NULL, L, T);
    mp_request_config req = beam_req(1);
    mp_result *b = decode(m, &req, L, T);
    same_result(g, b);
    mp_result_free(b);
    mp_result_free(g);
    free(L);
    /* peaked frames: the best path dominates, so a real search (width 16) agrees with greedy,
     * word times included */
    L = random_logits(T, V, m->pad_id, m->word_delim_id, 30.0f);
    g = decode(m, NULL, L, T);
    req = beam_req(16);
    b = decode(m, &req, L, T);
    MP_ASSERT(mp_result_n_words(g) > 10);
    same_result(g, b);
    mp_result_free(b);
    mp_result_free(g);
    free(L);
    free_model(m);
}

/* "C A T" where the last letter is a close call between T (logit t_logit) and B (b_logit). */
static float *cat_cab(const mp_model *m, float t_logit, float b_logit, int *T) {
    float *L = frames_logits(m, "C C A _ T T", 8.0f, T);
    for (int t = 4; t < 6; t++) {
        L[t * m->n_tokens + tok_id(m, "T")] = t_logit;
        L[t * m->n_tokens + tok_id(m, "B")] = b_logit;
    }
    return L;
}

static void beam_lexicon(void) {
    mp_model *m = fake_model(EN, N_EN);
    int T;
    float *L = cat_cab(m, 8.0f, 1.0f, &T);
    mp_request_config req = beam_req(8);
    mp_result *r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT");
    mp_result_free(r);
    const char *words[] = {"cab", "dog"}; /* lower case: matched to the upper-case vocabulary */
    mp_lexicon *lex = NULL;
    MP_ASSERT_OK(mp_lexicon_from_words(m, words, 2, &lex));
    req.lexicon = lex;
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAB");
    MP_ASSERT_EQ(mp_result_n_words(r), 1);
    mp_word w;
    MP_ASSERT_OK(mp_result_word(r, 0, &w));
    MP_ASSERT_NEAR(w.start_s, 0.0, 1e-9);
    MP_ASSERT(w.confidence > 0.0f && w.confidence < 1.0f);
    mp_result_free(r);
    free(L);
    /* longer random input: every output word is in the lexicon */
    const char *w3[] = {"a", "at", "ta"};
    mp_lexicon *lex3 = NULL;
    MP_ASSERT_OK(mp_lexicon_from_words(m, w3, 3, &lex3));
    req.lexicon = lex3;
    L = random_logits(200, N_EN, m->pad_id, m->word_delim_id, 5.0f);
    r = decode(m, &req, L, 200);
    MP_ASSERT(mp_result_n_words(r) > 0);
    for (size_t i = 0; i < mp_result_n_words(r); i++) {
        MP_ASSERT_OK(mp_result_word(r, i, &w));
        MP_ASSERT(!strcmp(w.word, "A") || !strcmp(w.word, "AT") || !strcmp(w.word, "TA"));
    }
    mp_result_free(r);
    /* the model's own word list: used when use_model_lexicon, ignored otherwise */
    char dir[] = "/tmp/mp-decode-XXXXXX";
    MP_ASSERT(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/lexicon.txt", dir);
    FILE *f = fopen(path, "w");
    MP_ASSERT(f);
    fputs("# digits\nta 1\n\n  at\n", f);
    fclose(f);
    MP_ASSERT_OK(mp__lexicon_load_dir(m, dir, &m->lexicon));
    MP_ASSERT(m->lexicon);
    req.lexicon = NULL;
    mp_result *r2 = decode(m, &req, L, 200);
    for (size_t i = 0; i < mp_result_n_words(r2); i++) {
        MP_ASSERT_OK(mp_result_word(r2, i, &w));
        MP_ASSERT(!strcmp(w.word, "AT") || !strcmp(w.word, "TA"));
    }
    mp_result_free(r2);
    req.use_model_lexicon = 0;
    r2 = decode(m, &req, L, 200);
    int outside = 0;
    for (size_t i = 0; i < mp_result_n_words(r2); i++) {
        MP_ASSERT_OK(mp_result_word(r2, i, &w));
        outside += strcmp(w.word, "AT") && strcmp(w.word, "TA");
    }
    MP_ASSERT(outside > 0);
    mp_result_free(r2);
    unlink(path);
    /* no file: fine, no lexicon */
    mp_lexicon *none = lex;
    MP_ASSERT_OK(mp__lexicon_load_dir(m, dir, &none));
    MP_ASSERT(none == NULL);
    rmdir(dir);
    free(L);
    mp_lexicon_free(lex);
    mp_lexicon_free(lex3);
    free_model(m);
}

static void word_times_are(const mp_result *r, size_t i, const char *word, int first, int end) {
    mp_word w;
    MP_ASSERT_OK(mp_result_word(r, i, &w));
    MP_ASSERT_STR_EQ(w.word, word);
    MP_ASSERT_NEAR(w.start_s, first * 0.02, 1e-9);
    MP_ASSERT_NEAR(w.end_s, end * 0.02, 1e-9);
}

/* With a lexicon the delimiter is optional between words (models drop it: "NINEEIG"); CTC stays
 * exact: a word starting with the letter the previous one ends with still needs a blank between. */
static void beam_lexicon_no_delim(void) {
    mp_model *m = fake_model(EN, N_EN);
    const char *words[] = {"cat", "dog", "one", "eight"};
    mp_lexicon *lex = NULL;
    MP_ASSERT_OK(mp_lexicon_from_words(m, words, 4, &lex));
    mp_request_config req = beam_req(8);
    req.lexicon = lex;
    /* frames:                  0 1 2 3 4 5 6 7 */
    mp_result *r = decode_seq(m, &req, "_ C A T D O G _");
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT DOG");
    MP_ASSERT_EQ(mp_result_n_words(r), 2);
    word_times_are(r, 0, "CAT", 1, 4);
    word_times_are(r, 1, "DOG", 4, 7);
    mp_result_free(r);
    /* an explicit delimiter as before */
    r = decode_seq(m, &req, "_ C A T | D O G _");
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT DOG");
    MP_ASSERT_EQ(mp_result_n_words(r), 2);
    word_times_are(r, 0, "CAT", 1, 4);
    word_times_are(r, 1, "DOG", 5, 8);
    mp_result_free(r);
    /* both kinds of boundary in one transcript, and a word repeated back to back */
    r = decode_seq(m, &req, "C A T D O G | C A T _ C A T");
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT DOG CAT CAT");
    MP_ASSERT_EQ(mp_result_n_words(r), 4);
    word_times_are(r, 1, "DOG", 3, 6);
    word_times_are(r, 2, "CAT", 7, 10);
    word_times_are(r, 3, "CAT", 11, 14);
    mp_result_free(r);
    /* two delimiter runs with a blank between: one boundary, one space (greedy keeps HF's two) */
    r = decode_seq(m, &req, "_ O N E | _ | E I G H T _");
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE EIGHT");
    MP_ASSERT_EQ(mp_result_n_words(r), 2);
    word_times_are(r, 1, "EIGHT", 7, 12);
    mp_result_free(r);
    r = decode_seq(m, NULL, "_ O N E | _ | E I G H T _");
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE  EIGHT");
    mp_result_free(r);
    /* without a lexicon "|" is just a token: nothing is split */
    mp_request_config free_req = beam_req(8);
    free_req.use_model_lexicon = 0;
    r = decode_seq(m, &free_req, "_ C A T D O G _");
    MP_ASSERT_STR_EQ(mp_result_text(r), "CATDOG");
    mp_result_free(r);

    /* E then E: with a blank between, two words at no cost */
    mp__decoder *d = NULL;
    int T;
    float *L = frames_logits(m, "O N E _ E I G H T", 8.0f, &T);
    MP_ASSERT_OK(mp__decoder_create(m, &req, &d));
    MP_ASSERT_OK(mp__decoder_feed(d, L, T));
    r = mp__result_new();
    MP_ASSERT_OK(mp__decoder_finish(d, r));
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE EIGHT");
    MP_ASSERT_EQ(mp_result_n_words(r), 2);
    word_times_are(r, 0, "ONE", 0, 3);
    word_times_are(r, 1, "EIGHT", 4, 9);
    double with_blank = mp__decoder_score(d);
    mp_result_free(r);
    mp__decoder_free(d);
    free(L);
    /* without one the E run is a single E: the split needs a blank frame taken from the run (a
     * cost of about 8 nats, the blank's logit margin), never one E shared by both words */
    L = frames_logits(m, "O N E E E I G H T", 8.0f, &T);
    MP_ASSERT_OK(mp__decoder_create(m, &req, &d));
    MP_ASSERT_OK(mp__decoder_feed(d, L, T));
    r = mp__result_new();
    MP_ASSERT_OK(mp__decoder_finish(d, r));
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE EIGHT");
    MP_ASSERT_EQ(mp_result_n_words(r), 2);
    word_times_are(r, 1, "EIGHT", 4, 9);
    /* ONE's E is reported as [2, 4), not [2, 3): a prefix keeps the run of its best path (E
     * repeated at frame 3), while "ONE EIGHT" grows from its blank-ending paths (a known
     * approximation of the run bookkeeping, not specific to word boundaries) */
    mp_word w;
    MP_ASSERT_OK(mp_result_word(r, 0, &w));
    MP_ASSERT_STR_EQ(w.word, "ONE");
    MP_ASSERT_NEAR(w.start_s, 0.0, 1e-9);
    MP_ASSERT(w.end_s > 2 * 0.02 && w.end_s <= 4 * 0.02 + 1e-9);
    MP_ASSERT(mp__decoder_score(d) < with_blank - 7.0);
    mp_result_free(r);
    mp__decoder_free(d);
    /* ... and with no frame to spare for that blank there is no "ONE EIGHT" at all */
    free(L);
    L = frames_logits(m, "O N E E I G H T", 8.0f, &T);
    r = decode(m, &req, L, T);
    MP_ASSERT(strcmp(mp_result_text(r), "ONE EIGHT") != 0);
    mp_result_free(r);
    free(L);
    mp_lexicon_free(lex);
    free_model(m);
}

static void beam_hotwords(void) {
    mp_model *m = fake_model(EN, N_EN);
    int T;
    float *L = cat_cab(m, 3.0f, 2.5f, &T);
    mp_request_config req = beam_req(8);
    mp_result *r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT");
    mp_result_free(r);
    mp_hotword hw[2] = {{"dog", 5.0f}, {"cab", 3.0f}};
    req.hotwords = hw;
    req.n_hotwords = 1; /* "dog" alone: boosts nothing here, forbids nothing */
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT");
    mp_result_free(r);
    req.n_hotwords = 2;
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAB");
    mp_result_free(r);
    free(L);
    /* a two-word phrase flips the second word only in that context */
    L = frames_logits(m, "C A T | D D O _ G", 8.0f, &T);
    int O = tok_id(m, "O"), I = tok_id(m, "I");
    for (int t = 6; t < 7; t++) L[t * N_EN + O] = 3.0f, L[t * N_EN + I] = 2.5f;
    L[5 * N_EN + O] = 0; /* frame 5 is D */
    mp_hotword ph[1] = {{"cat dig", 3.0f}};
    req.hotwords = ph;
    req.n_hotwords = 1;
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT DIG");
    mp_result_free(r);
    mp_hotword ph2[1] = {{"bat dig", 3.0f}};
    req.hotwords = ph2;
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "CAT DOG");
    mp_result_free(r);
    /* errors */
    mp_hotword bad[1] = {{"c@t", 1.0f}};
    req.hotwords = bad;
    mp__decoder *d = NULL;
    MP_ASSERT_STATUS(mp__decoder_create(m, &req, &d), MP_ERR_DECODER_FORMAT);
    MP_ASSERT(strstr(mp_last_error(), "c@t"));
    free(L);
    free_model(m);
}

static char *write_tmp(const char *content) {
    static int k;
    char *path = malloc(64);
    snprintf(path, 64, "/tmp/mp-decode-%d-%d.txt", (int)getpid(), k++);
    FILE *f = fopen(path, "w");
    MP_ASSERT(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static const char *ARPA3 =
    "some header text\n"
    "\\data\\\n"
    "ngram 1=6\n"
    "ngram 2=4\n"
    "ngram 3=2\n"
    "\n"
    "\\1-grams:\n"
    "-1.0\t<unk>\t0\n"
    "-99\t<s>\t-0.5\n"
    "-1.2\t</s>\n"
    "-0.8\tcat\t-0.3\n"
    "-2.5\tcab\t-0.2\n"
    "-1.1\tThe\t-0.4\n"
    "\n"
    "\\2-grams:\n"
    "-0.4\t<s> the\t-0.1\n"
    "-0.3\tthe cat\t-0.25\n"
    "-0.2\tcat </s>\n"
    "-0.9\tthe cab\n"
    "\n"
    "\\3-grams:\n"
    "-0.05\t<s> the cat\n"
    "-0.7\tthe cat </s>\n"
    "\n"
    "\\end\\\n";

static void lm_scores(void) {
    char *path = write_tmp(ARPA3);
    mp_lm *lm = NULL;
    MP_ASSERT_OK(mp_lm_load_arpa(path, &lm));
    MP_ASSERT_EQ(mp_lm_order(lm), 3);
    int s = mp__lm_bos(lm), e = mp__lm_eos(lm);
    int the = mp__lm_word_id(lm, "THE", 3), cat = mp__lm_word_id(lm, "cat", 3), cab = mp__lm_word_id(lm, "Cab", 3);
    MP_ASSERT(s >= 0 && e >= 0 && the >= 0 && cat >= 0 && cab >= 0);
    MP_ASSERT_EQ(mp__lm_word_id(lm, "dog", 3), -1);
    int ctx[3];
    /* full trigram */
    ctx[0] = the, ctx[1] = s;
    MP_ASSERT_NEAR(mp__lm_score(lm, ctx, 2, cat, -10), -0.05, 1e-6);
    /* <s> the cab: no trigram -> bo(<s> the) + P(cab | the) */
    MP_ASSERT_NEAR(mp__lm_score(lm, ctx, 2, cab, -10), -0.1 + -0.9, 1e-6);
    /* cab | the cat: no trigram, no bigram "cat cab" -> bo(the cat) + bo(cat) + P(cab) */
    ctx[0] = cat, ctx[1] = the;
    MP_ASSERT_NEAR(mp__lm_score(lm, ctx, 2, cab, -10), -0.25 + -0.3 + -2.5, 1e-6);
    MP_ASSERT_NEAR(mp__lm_score(lm, ctx, 2, e, -10), -0.7, 1e-6);
    /* unknown word: <unk> + offset; context truncated to order - 1 */
    ctx[2] = s;
    MP_ASSERT_NEAR(mp__lm_score(lm, ctx, 3, -1, -10), -0.25 + -0.3 + -1.0 + -10, 1e-6);
    /* no context */
    MP_ASSERT_NEAR(mp__lm_score(lm, ctx, 0, cab, -10), -2.5, 1e-6);
    mp_lm_free(lm);
    unlink(path);
    free(path);
}

static void lm_flips(void) {
    mp_model *m = fake_model(EN, N_EN);
    char *path = write_tmp(ARPA3);
    mp_lm *lm = NULL;
    MP_ASSERT_OK(mp_lm_load_arpa(path, &lm));
    int T;
    /* "THE CAB" acoustically (B a little ahead of T) */
    float *L = frames_logits(m, "T H E | C A B B", 8.0f, &T);
    for (int t = 6; t < 8; t++) L[t * N_EN + tok_id(m, "T")] = 2.6f, L[t * N_EN + tok_id(m, "B")] = 3.0f;
    mp_request_config req = beam_req(16);
    mp_result *r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "THE CAB");
    mp_result_free(r);
    req.lm = lm;
    req.lm_alpha = 0.5f;
    req.lm_beta = 1.0f;
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "THE CAT"); /* the LM prefers "the cat" */
    mp_result_free(r);
    req.lm_alpha = 0.01f; /* a weak LM leaves the acoustics in charge */
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "THE CAB");
    mp_result_free(r);
    free(L);
    mp_lm_free(lm);
    unlink(path);
    free(path);
    free_model(m);
}

static void bad_file(const char *content, int lexicon, const char *want_in_error) {
    char *path = write_tmp(content);
    mp_status st;
    if (lexicon) {
        mp_model *m = fake_model(EN, N_EN);
        mp_lexicon *lex = (mp_lexicon *)path;
        st = mp_lexicon_load(m, path, &lex);
        MP_ASSERT(lex == NULL);
        free_model(m);
    } else {
        mp_lm *lm = (mp_lm *)path;
        st = mp_lm_load_arpa(path, &lm);
        MP_ASSERT(lm == NULL);
    }
    MP_ASSERT_STATUS(st, MP_ERR_DECODER_FORMAT);
    if (!strstr(mp_last_error(), want_in_error)) MP_FAILF("error \"%s\" lacks \"%s\"", mp_last_error(), want_in_error);
    if (!strstr(mp_last_error(), path)) MP_FAILF("error \"%s\" lacks the path", mp_last_error());
    unlink(path);
    free(path);
}

static void malformed_files(void) {
    bad_file("just text\n", 0, "no \\data\\");
    bad_file("\\data\\\nngram 1=2\n\n\\1-grams:\n-1 a\n\\end\\\n", 0, ":6:");                 /* 1 of 2 */
    bad_file("\\data\\\nngram 1=1\n\n\\1-grams:\n-1 a\n-2 b\n\\end\\\n", 0, ":6:");            /* 2 of 1 */
    bad_file("\\data\\\nngram 1=1\n\n\\1-grams:\nx.5 a\n\\end\\\n", 0, ":5:");                 /* number */
    bad_file("\\data\\\nngram 1=1\nngram 2=1\n\\1-grams:\n-1 a\n\\2-grams:\n-1 a zz\n\\end\\\n", 0, ":7:");
    bad_file("\\data\\\nngram 6=1\n", 0, ":2:");                                              /* order */
    bad_file("\\data\\\nngram 1=1\n\n\\1-grams:\n-1 a\n", 0, ":5:");                           /* no \end\ */
    bad_file("\\data\\\nngram 1=1\n\n\\1-grams:\n-1 a b\n\\end\\\n", 0, ":5:");                /* fields */
    bad_file("\\data\\\nngram 1=1\n\n\\2-grams:\n", 0, ":4:");                                 /* section */
    bad_file("cat\ndog\nc@t\n", 1, ":3:");
    bad_file("cat\n\xff\xfe\n", 1, ":2:");
    bad_file("# only a comment\n", 1, "no words");
    /* a missing file is an I/O error */
    mp_lm *lm = NULL;
    MP_ASSERT_STATUS(mp_lm_load_arpa("/nonexistent/x.arpa", &lm), MP_ERR_IO);
}

/* Compare with tools/ref_decode.py, an independent brute-force implementation of the lexicon and
 * LM scoring, on tiny inputs where a 4096-wide beam keeps every prefix (exact). */
static const char *ARPA_REF =
    "\\data\\\nngram 1=7\nngram 2=5\nngram 3=2\n\n\\1-grams:\n"
    "-1.5\t<unk>\t0\n-99\t<s>\t-0.4\n-0.9\t</s>\n-0.7\ta\t-0.3\n-0.8\tb\t-0.2\n-1.3\tab\t-0.5\n-1.6\tba\t-0.1\n"
    "\n\\2-grams:\n-0.2\t<s> a\t-0.2\n-0.5\ta b\t-0.1\n-0.3\tb a\n-0.6\tab </s>\n-0.4\ta </s>\n"
    "\n\\3-grams:\n-0.1\t<s> a b\n-0.15\ta b a\n\n\\end\\\n";
static const char *ARPA_NOUNK =
    "\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-99\t<s>\t-0.3\n-0.6\t</s>\n-0.5\ta\t-0.7\n-0.9\tc\t-0.2\n"
    "\n\\2-grams:\n-0.1\t<s> c\n-0.2\tc a\n\n\\end\\\n";

static void ref_python(void) {
    if (access("/usr/bin/python3", X_OK) != 0) MP_SKIP("no /usr/bin/python3");
    char script[512];
    snprintf(script, sizeof script, "%s/tools/ref_decode.py", MP_SOURCE_DIR);
    if (access(script, R_OK) != 0) MP_SKIP("no %s", script);
    static const char *const VOC[] = {"<pad>", "|", "A", "B", "C"};
    mp_model *m = fake_model(VOC, 5);
    char *arpa1 = write_tmp(ARPA_REF), *arpa2 = write_tmp(ARPA_NOUNK);
    mp_lm *lm1 = NULL, *lm2 = NULL;
    MP_ASSERT_OK(mp_lm_load_arpa(arpa1, &lm1));
    MP_ASSERT_OK(mp_lm_load_arpa(arpa2, &lm2));
    const char *words[] = {"a", "ab", "ba", "c"};
    mp_lexicon *lex = NULL;
    MP_ASSERT_OK(mp_lexicon_from_words(m, words, 4, &lex));
    enum { N = 24, T = 5, V = 5 };
    float *L[N];
    mp_request_config req[N];
    char json_path[64];
    snprintf(json_path, sizeof json_path, "/tmp/mp-decode-%d.json", (int)getpid());
    FILE *f = fopen(json_path, "w");
    MP_ASSERT(f);
    fputs("[", f);
    for (int i = 0; i < N; i++) {
        L[i] = random_logits(T, V, 0, 1, 3.0f);
        req[i] = beam_req(4096);
        int kind = i % 4; /* 0: LM, 1: lexicon, 2: lexicon + LM, 3: LM without <unk>, other weights */
        req[i].lexicon = kind == 1 || kind == 2 ? lex : NULL;
        req[i].lm = kind == 1 ? NULL : kind == 3 ? lm2 : lm1;
        if (kind == 3) req[i].lm_alpha = 1.3f, req[i].lm_beta = -0.5f, req[i].lm_unk_score = -4.0f;
        fprintf(f, "%s{\"vocab\": [\"<pad>\", \"|\", \"A\", \"B\", \"C\"], \"pad\": 0, \"delim\": 1, \"logits\": [",
                i ? ",\n" : "");
        for (int t = 0; t < T; t++) {
            fputs(t ? ", [" : "[", f);
            for (int v = 0; v < V; v++) fprintf(f, "%s%.9g", v ? ", " : "", (double)L[i][t * V + v]);
            fputs("]", f);
        }
        fprintf(f, "], \"lexicon\": %s, \"arpa\": ", req[i].lexicon ? "[\"a\", \"ab\", \"ba\", \"c\"]" : "null");
        if (req[i].lm) fprintf(f, "\"%s\"", req[i].lm == lm1 ? arpa1 : arpa2);
        else fputs("null", f);
        fprintf(f, ", \"alpha\": %.9g, \"beta\": %.9g, \"unk\": %.9g}", (double)req[i].lm_alpha, (double)req[i].lm_beta,
                (double)req[i].lm_unk_score);
    }
    fputs("]\n", f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, json_path);
    FILE *p = popen(cmd, "r");
    MP_ASSERT(p);
    char line[256];
    int differ = 0;
    for (int i = 0; i < N; i++) {
        MP_ASSERT(fgets(line, sizeof line, p));
        char *tab = strchr(line, '\t');
        MP_ASSERT(tab);
        *tab = '\0';
        double ref = atof(tab + 1);
        mp__decoder *d = NULL;
        MP_ASSERT_OK(mp__decoder_create(m, &req[i], &d));
        MP_ASSERT_OK(mp__decoder_feed(d, L[i], T));
        mp_result *r = mp__result_new();
        MP_ASSERT_OK(mp__decoder_finish(d, r));
        /* the reference lists every text tying for the best score (" / "): splits of one labeling
         * into lexicon words without a delimiter score alike without an LM */
        int found = 0;
        for (char *alt = line, *sep; !found && alt; alt = sep ? sep + 3 : NULL) {
            if ((sep = strstr(alt, " / "))) *sep = '\0';
            found = !strcmp(mp_result_text(r), alt);
        }
        if (!found) MP_FAILF("case %d: beam \"%s\", reference \"%s\"", i, mp_result_text(r), line);
        MP_ASSERT_NEAR(mp__decoder_score(d), ref, 1e-4);
        /* the LM/lexicon changed the answer in some cases (else this test would prove little) */
        mp_result *g = decode(m, NULL, L[i], T);
        differ += strcmp(mp_result_text(g), mp_result_text(r)) != 0;
        mp_result_free(g);
        mp_result_free(r);
        mp__decoder_free(d);
        free(L[i]);
    }
    MP_ASSERT_EQ(pclose(p), 0);
    MP_ASSERT(differ > 0);
    unlink(json_path);
    unlink(arpa1);
    unlink(arpa2);
    free(arpa1);
    free(arpa2);
    mp_lm_free(lm1);
    mp_lm_free(lm2);
    mp_lexicon_free(lex);
    free_model(m);
}

/* ---- out-of-list words, pauses, decoding.json ------------------------------------------------- */

static int n_digit_words(const mp_result *r) {
    static const char *const digits[] = {"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE"};
    int n = 0;
    mp_word w;
    for (size_t i = 0; i < mp_result_n_words(r); i++) {
        MP_ASSERT_OK(mp_result_word(r, i, &w));
        for (size_t k = 0; k < sizeof digits / sizeof digits[0]; k++) n += !strcmp(w.word, digits[k]) && !w.oov;
    }
    return n;
}

static void word_is(const mp_result *r, size_t i, const char *word, int oov) {
    mp_word w;
    MP_ASSERT_OK(mp_result_word(r, i, &w));
    MP_ASSERT_STR_EQ(w.word, word);
    MP_ASSERT_EQ(w.oov, oov);
}

/* A word outside the list is spelled as heard and marked, never turned into a listed digit; a
 * listed word still wins where it fits the acoustics better than the penalty. */
static void beam_oov(void) {
    mp_model *m = fake_model(EN, N_EN);
    const char *words[] = {"zero", "one", "two", "three", "four", "five"};
    mp_lexicon *lex = NULL;
    MP_ASSERT_OK(mp_lexicon_from_words(m, words, 6, &lex));
    mp_request_config req = beam_req(16);
    req.lexicon = lex;
    req.oov_score = -5.0f;
    const char *said = "_ M Y _ | N U M B E R | _ I S | F O U R _ | O N E _ F I V E _";
    mp_result *r = decode_seq(m, &req, said);
    MP_ASSERT_STR_EQ(mp_result_text(r), "MY NUMBER IS FOUR ONE FIVE");
    MP_ASSERT_EQ(mp_result_n_words(r), 6);
    word_is(r, 0, "MY", 1);
    word_is(r, 1, "NUMBER", 1);
    word_is(r, 2, "IS", 1);
    word_is(r, 3, "FOUR", 0);
    word_is(r, 5, "FIVE", 0);
    MP_ASSERT_EQ(n_digit_words(r), 3);
    mp_result_free(r);
    /* an out-of-list word at the very end (no delimiter after it) */
    r = decode_seq(m, &req, "O N E | Y E S _");
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE YES");
    word_is(r, 1, "YES", 1);
    mp_result_free(r);
    /* a listed word whose last letter is weak: "O N" and an E at 2/15 of a frame's probability; the
     * E costs about 2 nats < 5, so ONE, not the out-of-list ON */
    int T;
    float *L = frames_logits(m, "O N _ | F O U R", 8.0f, &T);
    L[2 * N_EN + tok_id(m, "E")] = 6.0f;
    r = decode(m, &req, L, T);
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE FOUR");
    word_is(r, 0, "ONE", 0);
    word_is(r, 1, "FOUR", 0);
    mp_result_free(r);
    free(L);
    /* a penalty as large as the acoustics' preference makes the listed word win even for MY */
    req.oov_score = -1000.0f;
    r = decode_seq(m, &req, "_ M Y _ | F O U R");
    MP_ASSERT(mp_result_n_words(r) >= 1);
    for (size_t i = 0; i < mp_result_n_words(r); i++) {
        mp_word w;
        MP_ASSERT_OK(mp_result_word(r, i, &w));
        MP_ASSERT_EQ(w.oov, 0);
    }
    mp_result_free(r);
    /* off (0, the default): only listed words, none marked */
    req.oov_score = 0.0f;
    r = decode_seq(m, &req, said);
    for (size_t i = 0; i < mp_result_n_words(r); i++) {
        mp_word w;
        MP_ASSERT_OK(mp_result_word(r, i, &w));
        MP_ASSERT_EQ(w.oov, 0);
        MP_ASSERT(strcmp(w.word, "MY") && strcmp(w.word, "NUMBER") && strcmp(w.word, "IS"));
    }
    mp_result_free(r);
    /* greedy never marks words (and joins ONE FIVE: no delimiter between) */
    r = decode_seq(m, NULL, said);
    MP_ASSERT_STR_EQ(mp_result_text(r), "MY NUMBER IS FOUR ONEFIVE");
    word_is(r, 0, "MY", 0);
    mp_result_free(r);
    /* out of range */
    mp__decoder *d = NULL;
    req.oov_score = 1.0f;
    MP_ASSERT_STATUS(mp__decoder_create(m, &req, &d), MP_ERR_INVALID_ARG);
    mp_lexicon_free(lex);
    free_model(m);
}

/* "O N E", n blank frames, "F O U R" (20 ms frames). */
static mp_result *pause_case(const mp_model *m, const mp_request_config *req, int n_blank) {
    char seq[1024] = "O N E";
    MP_ASSERT(n_blank <= 400);
    for (int i = 0; i < n_blank; i++) strcat(seq, " _");
    strcat(seq, " F O U R");
    return decode_seq(m, req, seq);
}

static void pause_text_is(const mp_model *m, const mp_request_config *req, int n_blank, const char *want) {
    mp_result *r = pause_case(m, req, n_blank);
    MP_ASSERT_STR_EQ(mp_result_text(r), want);
    MP_ASSERT_EQ(mp_result_n_words(r), strchr(want, ' ') ? 2 : 1);
    if (strchr(want, ' ')) {
        word_times_are(r, 0, "ONE", 0, 3);
        word_times_are(r, 1, "FOUR", 3 + n_blank, 7 + n_blank);
    }
    mp_result_free(r);
}

/* Blank frames longer than pause_split_s end a word, greedy and beam; off, greedy is HF's. */
static void pause_split(void) {
    mp_model *m = fake_model(EN, N_EN);
    const char *words[] = {"one", "four"};
    mp_lexicon *lex = NULL;
    MP_ASSERT_OK(mp_lexicon_from_words(m, words, 2, &lex));
    mp_request_config greedy = mp_request_default_config(), beam = beam_req(8), beam_lex = beam_req(8);
    beam.use_model_lexicon = 0;
    beam_lex.lexicon = lex;
    MP_ASSERT_NEAR(greedy.pause_split_s, 0.0, 0);
    /* off: joined across any silence (HuggingFace's greedy output) */
    pause_text_is(m, &greedy, 13, "ONEFOUR");
    pause_text_is(m, &greedy, 200, "ONEFOUR");
    pause_text_is(m, &beam, 13, "ONEFOUR");
    greedy.pause_split_s = beam.pause_split_s = beam_lex.pause_split_s = 0.25;
    /* 12 blank frames are 0.24 s, not longer than 0.25 s; 13 are */
    pause_text_is(m, &greedy, 12, "ONEFOUR");
    pause_text_is(m, &greedy, 13, "ONE FOUR");
    pause_text_is(m, &greedy, 200, "ONE FOUR");
    pause_text_is(m, &beam, 12, "ONEFOUR");
    pause_text_is(m, &beam, 13, "ONE FOUR");
    pause_text_is(m, &beam_lex, 13, "ONE FOUR");
    /* a delimiter after the pause is one boundary, not two */
    mp_result *r = decode_seq(m, &greedy, "O N E _ _ _ _ _ _ _ _ _ _ _ _ _ _ | F O U R");
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE FOUR");
    mp_result_free(r);
    /* fed frame by frame, the same */
    int T;
    float *L = frames_logits(m, "O N E _ _ _ _ _ _ _ _ _ _ _ _ _ F O U R", 8.0f, &T);
    mp__decoder *d = NULL;
    MP_ASSERT_OK(mp__decoder_create(m, &greedy, &d));
    for (int t = 0; t < T; t++) MP_ASSERT_OK(mp__decoder_feed(d, L + (size_t)t * N_EN, 1));
    r = mp__result_new();
    MP_ASSERT_OK(mp__decoder_finish(d, r));
    MP_ASSERT_STR_EQ(mp_result_text(r), "ONE FOUR");
    mp_result_free(r);
    mp__decoder_free(d);
    free(L);
    greedy.pause_split_s = -1;
    MP_ASSERT_STATUS(mp__decoder_create(m, &greedy, &d), MP_ERR_INVALID_ARG);
    mp_lexicon_free(lex);
    free_model(m);
}

/* Write text to dir/decoding.json and load it. */
static mp_status load_defaults(const char *dir, const char *text, mp__decoding_defaults **out) {
    char path[256];
    snprintf(path, sizeof path, "%s/decoding.json", dir);
    FILE *f = fopen(path, "w");
    MP_ASSERT(f);
    fputs(text, f);
    fclose(f);
    return mp__decoding_defaults_load(dir, out);
}

static void defaults_malformed(const char *dir, const char *text, const char *field) {
    mp__decoding_defaults *d = (mp__decoding_defaults *)&d;
    MP_ASSERT_STATUS(load_defaults(dir, text, &d), MP_ERR_MODEL_FORMAT);
    MP_ASSERT(d == NULL);
    if (!strstr(mp_last_error(), "decoding.json") || !strstr(mp_last_error(), field))
        MP_FAILF("%s: error \"%s\" does not name decoding.json and %s", text, mp_last_error(), field);
}

/* decoding.json fills what a request leaves unset; explicit request fields win; bad files are
 * MP_ERR_MODEL_FORMAT naming the file and the field. */
static void decoding_defaults(void) {
    mp_model *m = fake_model(EN, N_EN);
    char dir[] = "/tmp/mp-defaults-XXXXXX";
    MP_ASSERT(mkdtemp(dir));
    mp__decoding_defaults *d = (mp__decoding_defaults *)&d;
    MP_ASSERT_OK(mp__decoding_defaults_load(dir, &d)); /* no file: no defaults */
    MP_ASSERT(d == NULL);
    MP_ASSERT_OK(load_defaults(dir, "{\"_note\": \"ignored\", \"decoder\": \"beam\", \"beam_width\": 4, "
                                    "\"use_word_list\": false, \"pause_split_s\": 0.25, \"oov_score\": -5}",
                               &m->decoding));
    MP_ASSERT(m->decoding);
    /* no request at all, or an untouched one: beam 4 (a score is recorded), words split at the pause */
    mp_request_config req = mp_request_default_config();
    mp_request_config r = mp__request_resolve(m, &req);
    MP_ASSERT_EQ(r.decoder, MP_DECODER_BEAM);
    MP_ASSERT_EQ(r.beam_width, 4);
    MP_ASSERT_EQ(r.use_model_lexicon, 0);
    MP_ASSERT_NEAR(r.oov_score, -5.0, 0);
    mp__decoder *dec = NULL;
    int T;
    float *L = frames_logits(m, "O N E", 8.0f, &T);
    MP_ASSERT_OK(mp__decoder_create(m, NULL, &dec));
    MP_ASSERT_OK(mp__decoder_feed(dec, L, T));
    free(L);
    mp_result *res = mp__result_new();
    MP_ASSERT_OK(mp__decoder_finish(dec, res));
    MP_ASSERT(mp__decoder_score(dec) < 0.0); /* beam search ran (greedy reports 0) */
    mp_result_free(res);
    mp__decoder_free(dec);
    pause_text_is(m, NULL, 13, "ONE FOUR");
    pause_text_is(m, &req, 13, "ONE FOUR");
    /* explicit overrides: a value other than the default, or a group bit for a default value */
    req.pause_split_s = 1.0;
    pause_text_is(m, &req, 13, "ONEFOUR");
    req = mp_request_default_config();
    req.explicit_fields = MP_REQ_DECODER | MP_REQ_PAUSE_SPLIT; /* explicit greedy, no pause split */
    r = mp__request_resolve(m, &req);
    MP_ASSERT_EQ(r.decoder, MP_DECODER_GREEDY);
    MP_ASSERT_EQ(r.beam_width, 16);
    MP_ASSERT_NEAR(r.pause_split_s, 0.0, 0);
    MP_ASSERT_NEAR(r.oov_score, -5.0, 0); /* not marked: still the model's */
    pause_text_is(m, &req, 13, "ONEFOUR");
    req.explicit_fields = 0;
    req.use_model_defaults = 0; /* the file ignored altogether */
    r = mp__request_resolve(m, &req);
    MP_ASSERT_EQ(r.decoder, MP_DECODER_GREEDY);
    MP_ASSERT_NEAR(r.pause_split_s, 0.0, 0);
    MP_ASSERT_NEAR(r.oov_score, 0.0, 0);
    mp__decoding_defaults_free(m->decoding);
    m->decoding = NULL;
    /* an LM named by the file is loaded from the model directory and used unless the request
     * names one or marks MP_REQ_LM */
    char arpa[256];
    snprintf(arpa, sizeof arpa, "%s/digits.arpa", dir);
    FILE *f = fopen(arpa, "w");
    MP_ASSERT(f);
    fputs("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0 <s>\n-1.0 </s>\n-0.5 one\n\n\\end\\\n", f);
    fclose(f);
    MP_ASSERT_OK(load_defaults(dir, "{\"lm\": \"digits.arpa\", \"lm_alpha\": 0.7}", &m->decoding));
    req = mp_request_default_config();
    r = mp__request_resolve(m, &req);
    MP_ASSERT(r.lm != NULL);
    MP_ASSERT_NEAR(r.lm_alpha, 0.7, 1e-6);
    MP_ASSERT_EQ(r.decoder, MP_DECODER_GREEDY); /* the file does not name one */
    req.explicit_fields = MP_REQ_LM;
    r = mp__request_resolve(m, &req);
    MP_ASSERT(r.lm == NULL);
    MP_ASSERT_NEAR(r.lm_alpha, 0.5, 1e-6);
    mp__decoding_defaults_free(m->decoding);
    m->decoding = NULL;
    /* malformed */
    defaults_malformed(dir, "{\"decoder\": \"beam\",", "invalid JSON");
    defaults_malformed(dir, "[1, 2]", "expected an object");
    defaults_malformed(dir, "{\"beam\": 16}", "beam: unknown field");
    defaults_malformed(dir, "{\"decoder\": \"fast\"}", "decoder");
    defaults_malformed(dir, "{\"beam_width\": \"16\"}", "beam_width: expected an integer");
    defaults_malformed(dir, "{\"beam_width\": 0}", "beam_width: value 0 out of range");
    defaults_malformed(dir, "{\"use_word_list\": 1}", "use_word_list: expected true or false");
    defaults_malformed(dir, "{\"pause_split_s\": -0.5}", "pause_split_s");
    defaults_malformed(dir, "{\"oov_score\": 3}", "oov_score");
    defaults_malformed(dir, "{\"lm\": \"../digits.arpa\"}", "lm");
    defaults_malformed(dir, "{\"lm\": \"missing.arpa\"}", "lm: ");
    char path[256];
    snprintf(path, sizeof path, "%s/decoding.json", dir);
    unlink(path);
    unlink(arpa);
    rmdir(dir);
    free_model(m);
}

/* The embedded model's decoding.json: the README's transcribe and curl examples (no options) give
 * the sample's digits; an explicit greedy request without pause split is plain greedy. */
static void embedded_defaults(void) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s/decoding.json", MP_DEFAULT_MODEL_DIR);
    if (access(cfg, R_OK) != 0) MP_SKIP("no embedded model with decoding.json at %s", MP_DEFAULT_MODEL_DIR);
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_load(MP_DEFAULT_MODEL_DIR, NULL, &m));
    MP_ASSERT(m->decoding);
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = 1;
    mp_pool *pool = NULL;
    MP_ASSERT_OK(mp_pool_create(m, &pc, &pool));
    char wav[1024], txt[1024], want[256] = "";
    snprintf(wav, sizeof wav, "%s/samples/phone-gsm.wav", MP_SOURCE_DIR);
    snprintf(txt, sizeof txt, "%s/samples/phone-gsm.txt", MP_SOURCE_DIR);
    FILE *f = fopen(txt, "r");
    MP_ASSERT(f && fgets(want, sizeof want, f));
    fclose(f);
    want[strcspn(want, "\n")] = '\0';
    mp_result *r = NULL;
    MP_ASSERT_OK(mp_pool_transcribe_file(pool, wav, NULL, NULL, &r));
    MP_ASSERT_STR_EQ(mp_result_text(r), want);
    mp_result_free(r);
    mp_request_config req = mp_request_default_config();
    req.explicit_fields = MP_REQ_DECODER | MP_REQ_PAUSE_SPLIT;
    mp_request_config plain = mp_request_default_config();
    plain.use_model_defaults = 0;
    mp_result *g1 = NULL, *g2 = NULL;
    MP_ASSERT_OK(mp_pool_transcribe_file(pool, wav, NULL, &req, &g1));
    MP_ASSERT_OK(mp_pool_transcribe_file(pool, wav, NULL, &plain, &g2));
    MP_ASSERT_STR_EQ(mp_result_text(g1), mp_result_text(g2));
    mp_result_free(g1);
    mp_result_free(g2);
    mp_pool_free(pool);
    mp_model_free(m);
}

static const mp_test_case cases[] = {
    {"greedy_semantics", greedy_semantics},
    {"greedy_ties", greedy_ties},
    {"greedy_utf8", greedy_utf8},
    {"greedy_lower", greedy_lower},
    {"greedy_timestamps", greedy_timestamps},
    {"greedy_incremental", greedy_incremental},
    {"request_defaults", request_defaults},
    {"beam_exhaustive", beam_exhaustive},
    {"beam1_greedy", beam1_greedy},
    {"beam_lexicon", beam_lexicon},
    {"beam_lexicon_no_delim", beam_lexicon_no_delim},
    {"beam_hotwords", beam_hotwords},
    {"lm_scores", lm_scores},
    {"lm_flips", lm_flips},
    {"malformed_files", malformed_files},
    {"ref_python", ref_python},
    {"beam_oov", beam_oov},
    {"pause_split", pause_split},
    {"decoding_defaults", decoding_defaults},
    {"embedded_defaults", embedded_defaults},
};

MP_TEST_MAIN(cases)
