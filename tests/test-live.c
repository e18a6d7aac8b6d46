/* test-live.c - live streams (mp_live): piece-size independence, endpoints, partial growth,
 * finals against offline transcripts, decoding options, bounded memory, a lease per step, compute
 * per live audio-second. Unit cases use the "tiny" random model; model cases the embedded digits
 * model and samples/phone-gsm.wav. */
#include "internal.h"
#include "test.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------------------- */

typedef struct utt {
    char text[1024];
    double start_s, end_s;
    size_t n_words;
    double w_first_start, w_last_end;
    int words_ordered; /* word times ascending and inside the utterance span */
} utt;

typedef struct run_out {
    utt finals[64];
    int n_finals;
    char partials[256][512]; /* partial text after each step, in order */
    double partial_dur[256];
    int partial_final_before[256]; /* finals seen before this partial */
    int n_partials;
    mp_live_stats stats;
} run_out;

static void take_finals(mp_live *s, run_out *o) {
    for (;;) {
        mp_result *r = NULL;
        double a = -1, b = -1;
        MP_ASSERT_OK(mp_live_pop_final(s, &r, &a, &b));
        if (!r) return;
        MP_ASSERT(o->n_finals < 64);
        utt *u = &o->finals[o->n_finals++];
        snprintf(u->text, sizeof u->text, "%s", mp_result_text(r));
        u->start_s = a;
        u->end_s = b;
        u->n_words = mp_result_n_words(r);
        u->words_ordered = 1;
        double prev = a - 1e-9;
        for (size_t i = 0; i < u->n_words; i++) {
            mp_word w;
            MP_ASSERT_OK(mp_result_word(r, i, &w));
            if (i == 0) u->w_first_start = w.start_s;
            u->w_last_end = w.end_s;
            if (w.start_s < prev || w.end_s < w.start_s || w.start_s < a - 1e-6 || w.end_s > b + 1e-6)
                u->words_ordered = 0;
            prev = w.start_s;
        }
        mp_result_free(r);
    }
}

/* Write pcm in pieces of `piece` samples (0 = all at once), collecting partials and finals. */
static void run_live(mp_pool *pool, const float *pcm, size_t n, int rate, const mp_request_config *req,
                     const mp_live_config *cfg, size_t piece, run_out *o) {
    memset(o, 0, sizeof *o);
    mp_live *s = NULL;
    MP_ASSERT_OK(mp_live_create(pool, rate, req, cfg, &s));
    if (piece == 0) piece = n ? n : 1;
    for (size_t i = 0; i < n; i += piece) {
        size_t k = n - i < piece ? n - i : piece;
        int ev = -1;
        MP_ASSERT_OK(mp_live_write(s, pcm + i, k, &ev));
        MP_ASSERT(ev >= 0 && ev <= (MP_LIVE_STEP | MP_LIVE_FINAL));
        take_finals(s, o);
        if ((ev & MP_LIVE_STEP) && o->n_partials < 256) {
            mp_result *r = NULL;
            MP_ASSERT_OK(mp_live_partial(s, &r));
            snprintf(o->partials[o->n_partials], sizeof o->partials[0], "%s", mp_result_text(r));
            o->partial_dur[o->n_partials] = mp_result_duration_s(r);
            o->partial_final_before[o->n_partials] = o->n_finals;
            o->n_partials++;
            mp_result_free(r);
        }
    }
    MP_ASSERT_OK(mp_live_finish(s));
    take_finals(s, o);
    MP_ASSERT_OK(mp_live_get_stats(s, &o->stats));
    mp_live_free(s);
}

static void joined(const run_out *o, char *dst, size_t cap) {
    dst[0] = '\0';
    for (int i = 0; i < o->n_finals; i++) {
        if (!o->finals[i].text[0]) continue;
        if (dst[0]) strncat(dst, " ", cap - strlen(dst) - 1);
        strncat(dst, o->finals[i].text, cap - strlen(dst) - 1);
    }
}

/* Word-level edit distance (substitutions, insertions, deletions). */
static int word_distance(const char *a, const char *b) {
    char wa[128][32], wb[128][32];
    int na = 0, nb = 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", a);
    for (char *t = strtok(buf, " "); t && na < 128; t = strtok(NULL, " ")) snprintf(wa[na++], 32, "%s", t);
    snprintf(buf, sizeof buf, "%s", b);
    for (char *t = strtok(buf, " "); t && nb < 128; t = strtok(NULL, " ")) snprintf(wb[nb++], 32, "%s", t);
    static int d[129][129];
    for (int i = 0; i <= na; i++) d[i][0] = i;
    for (int j = 0; j <= nb; j++) d[0][j] = j;
    for (int i = 1; i <= na; i++)
        for (int j = 1; j <= nb; j++) {
            int sub = d[i - 1][j - 1] + (strcmp(wa[i - 1], wb[j - 1]) != 0);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[na][nb];
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static mp_pool *make_pool(mp_model *m, int n_workers) {
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = n_workers;
    pc.n_threads_per_worker = 1;
    mp_pool *p = NULL;
    MP_ASSERT_OK(mp_pool_create(m, &pc, &p));
    return p;
}

static mp_model *tiny_model(void) {
    mp_model *m = NULL;
    mp_status st = mp_model_create_random("tiny", 11, &m);
    if (st != MP_OK) MP_SKIP("mp_model_create_random(tiny): %s", mp_last_error());
    return m;
}

static mp_model *digits_model(void) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s/config.json", MP_DEFAULT_MODEL_DIR);
    if (access(cfg, R_OK) != 0) MP_SKIP("no embedded model at %s", MP_DEFAULT_MODEL_DIR);
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_load(MP_DEFAULT_MODEL_DIR, NULL, &m));
    return m;
}

/* samples/phone-gsm.wav at 8 kHz (its own rate), malloc'ed */
static float *load_sample(size_t *n) {
    mp_audio_config ac = mp_audio_default_config();
    ac.target_rate = 8000;
    mp_audio *a = NULL;
    MP_ASSERT_OK(mp_audio_load_file(MP_SOURCE_DIR "/samples/phone-gsm.wav", &ac, &a));
    const float *x = mp_audio_samples(a, n);
    float *c = malloc(*n * sizeof *c);
    MP_ASSERT(c);
    memcpy(c, x, *n * sizeof *c);
    mp_audio_free(a);
    return c;
}

/* Deterministic "speech-like" input for the random model: bursts of tones and noise with pauses. */
static float *synth(size_t n, int rate, unsigned seed) {
    float *x = malloc(n * sizeof *x);
    MP_ASSERT(x);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        double t = (double)i / rate;
        double burst = fmod(t, 1.7) < 1.1 ? 1.0 : 0.02;
        x[i] = (float)(burst * (0.3 * sin(2 * M_PI * (180 + 90 * sin(t * 3.1)) * t) +
                                0.05 * ((double)(seed >> 8) / (1 << 24) - 0.5)));
    }
    return x;
}

static void assert_same_run(const run_out *a, const run_out *b) {
    MP_ASSERT_EQ(a->n_finals, b->n_finals);
    for (int i = 0; i < a->n_finals; i++) {
        MP_ASSERT_STR_EQ(a->finals[i].text, b->finals[i].text);
        MP_ASSERT_NEAR(a->finals[i].start_s, b->finals[i].start_s, 1e-9);
        MP_ASSERT_NEAR(a->finals[i].end_s, b->finals[i].end_s, 1e-9);
        MP_ASSERT_EQ(a->finals[i].n_words, b->finals[i].n_words);
    }
    MP_ASSERT_EQ(a->stats.steps, b->stats.steps);
}

/* ---- unit: the tiny random model --------------------------------------------------------------- */

/* Any piece size gives the same finals, steps and partial sequence (steps run at fixed stream
 * positions; soxr's output does not depend on how its input is cut). */
static void test_pieces(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1);
    const int rate = 8000;
    size_t n = (size_t)(7.3 * rate);
    float *x = synth(n, rate, 5);
    mp_live_config lc = mp_live_default_config();
    lc.endpoint_silence_s = 0.3; /* random logits: make endpoints likely, so cuts are compared too */
    lc.max_utterance_s = 2.0;
    static run_out ref, o;
    run_live(p, x, n, rate, NULL, &lc, 160, &ref);
    MP_ASSERT(ref.stats.steps >= 14);
    MP_ASSERT(ref.n_finals >= 2);
    const size_t pieces[] = {1, 7, 320, 1601, 4096, 40000, 0};
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        run_live(p, x, n, rate, NULL, &lc, pieces[k], &o);
        assert_same_run(&ref, &o);
        /* partials: one per step when pieces are small; the same texts where both have them */
        if (pieces[k] && pieces[k] <= 320) {
            MP_ASSERT_EQ(o.n_partials, ref.n_partials);
            for (int i = 0; i < o.n_partials; i++) MP_ASSERT_STR_EQ(o.partials[i], ref.partials[i]);
        }
    }
    /* s16le bytes, cut at odd offsets, equal float writes of the same quantized samples */
    int16_t *q = malloc(n * sizeof *q);
    float *qf = malloc(n * sizeof *qf);
    MP_ASSERT(q && qf);
    for (size_t i = 0; i < n; i++) {
        long v = lrint(x[i] * 32767.0);
        q[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
        qf[i] = (float)q[i] / 32768.0f;
    }
    run_live(p, qf, n, rate, NULL, &lc, 333, &ref);
    mp_live *s = NULL;
    MP_ASSERT_OK(mp_live_create(p, rate, NULL, &lc, &s));
    unsigned char *bytes = malloc(2 * n);
    MP_ASSERT(bytes);
    for (size_t i = 0; i < n; i++) {
        bytes[2 * i] = (unsigned char)((uint16_t)q[i] & 0xff);
        bytes[2 * i + 1] = (unsigned char)((uint16_t)q[i] >> 8);
    }
    memset(&o, 0, sizeof o);
    for (size_t i = 0; i < 2 * n; i += 321) {
        size_t k = 2 * n - i < 321 ? 2 * n - i : 321;
        MP_ASSERT_OK(mp_live_write_s16le(s, bytes + i, k, NULL));
        take_finals(s, &o);
    }
    MP_ASSERT_OK(mp_live_finish(s));
    take_finals(s, &o);
    MP_ASSERT_OK(mp_live_get_stats(s, &o.stats));
    assert_same_run(&ref, &o);
    mp_live_free(s);
    free(bytes);
    free(q);
    free(qf);
    free(x);
    mp_pool_free(p);
    mp_model_free(m);
}

/* Bad configuration, NULL arguments and misuse are refused with a status, never a crash. */
static void test_misuse(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1);
    mp_live *s = (mp_live *)1;
    MP_ASSERT_STATUS(mp_live_create(NULL, 8000, NULL, NULL, &s), MP_ERR_INVALID_ARG);
    MP_ASSERT(s == NULL);
    MP_ASSERT_STATUS(mp_live_create(p, 8000, NULL, NULL, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_live_create(p, 10, NULL, NULL, &s), MP_ERR_INVALID_ARG);
    const double bad[] = {NAN, -1.0, INFINITY, 0.0};
    for (int field = 0; field < 5; field++)
        for (int k = 0; k < 4; k++) {
            mp_live_config c = mp_live_default_config();
            double *f[] = {&c.partial_interval_s, &c.left_context_s, &c.right_context_s, &c.endpoint_silence_s,
                           &c.max_utterance_s};
            *f[field] = bad[k];
            mp_status st = mp_live_create(p, 8000, NULL, &c, &s);
            int zero_ok = bad[k] == 0.0 && (field == 1 || field == 2); /* no context is allowed */
            if (zero_ok) {
                MP_ASSERT_OK(st);
                mp_live_free(s);
            } else {
                MP_ASSERT_STATUS(st, MP_ERR_INVALID_ARG);
            }
        }
    mp_request_config rq = mp_request_default_config();
    rq.decoder = (mp_decoder)7;
    MP_ASSERT_STATUS(mp_live_create(p, 8000, &rq, NULL, &s), MP_ERR_INVALID_ARG);

    MP_ASSERT_OK(mp_live_create(p, 8000, NULL, NULL, &s));
    float z[100] = {0};
    MP_ASSERT_STATUS(mp_live_write(s, NULL, 5, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_OK(mp_live_write(s, NULL, 0, NULL));
    MP_ASSERT_OK(mp_live_write(s, z, 100, NULL));
    mp_result *r = (mp_result *)1;
    MP_ASSERT_STATUS(mp_live_pop_final(s, NULL, NULL, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_OK(mp_live_pop_final(s, &r, NULL, NULL));
    MP_ASSERT(r == NULL);
    MP_ASSERT_OK(mp_live_partial(s, &r));
    MP_ASSERT_STR_EQ(mp_result_text(r), "");
    mp_result_free(r);
    MP_ASSERT_OK(mp_live_flush(s));
    MP_ASSERT_OK(mp_live_finish(s));
    MP_ASSERT_STATUS(mp_live_write(s, z, 100, NULL), MP_ERR_MISUSE);
    MP_ASSERT_STATUS(mp_live_finish(s), MP_ERR_MISUSE);
    MP_ASSERT_STATUS(mp_live_flush(s), MP_ERR_MISUSE);
    mp_live_stats st;
    MP_ASSERT_STATUS(mp_live_get_stats(NULL, &st), MP_ERR_INVALID_ARG);
    mp_live_free(s);
    mp_live_free(NULL);
    mp_pool_free(p);
    mp_model_free(m);
}

/* Memory stays bounded over a long call: the window holds at most the current utterance (cut at
 * max_utterance_s) plus the contexts; every step holds a worker only while it computes. */
static void test_bounded(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1);
    const int rate = 8000;
    mp_live_config lc = mp_live_default_config();
    lc.max_utterance_s = 3.0;
    mp_live *s = NULL;
    MP_ASSERT_OK(mp_live_create(p, rate, NULL, &lc, &s));
    size_t n = 2 * rate;
    float *x = synth(n, rate, 9);
    double max_buf = 0, max_cached = 0;
    int finals = 0;
    for (int sec = 0; sec < 120; sec += 2) {
        MP_ASSERT_OK(mp_live_write(s, x, n, NULL));
        mp_live_stats st;
        MP_ASSERT_OK(mp_live_get_stats(s, &st));
        if (st.buffered_s > max_buf) max_buf = st.buffered_s;
        if (st.cached_s > max_cached) max_cached = st.cached_s;
        /* between writes no worker is held: another caller gets one at once */
        mp_lease *l = NULL;
        MP_ASSERT_OK(mp_pool_acquire(p, 0, &l));
        MP_ASSERT_OK(mp_lease_release(l));
        for (mp_result *r = NULL; mp_live_pop_final(s, &r, NULL, NULL) == MP_OK && r; r = NULL) {
            finals++;
            mp_result_free(r);
        }
    }
    mp_live_stats st;
    MP_ASSERT_OK(mp_live_get_stats(s, &st));
    MP_ASSERT_NEAR(st.audio_s, 120.0, 1e-9);
    /* a 3 s utterance, its left context, and what arrives before the next step cuts it: steps run
     * between resampled slices of 4096 input samples, every 0.5 s */
    fprintf(stderr, "buffered at most %.2f s\n", max_buf);
    MP_ASSERT(max_buf <= lc.max_utterance_s + lc.left_context_s + 1.5);
    /* the feature cache holds frames of the same span at most (it is trimmed with the window) */
    fprintf(stderr, "features cached at most %.2f s\n", max_cached);
    MP_ASSERT(max_cached <= lc.max_utterance_s + lc.left_context_s + 1.5);
    MP_ASSERT(st.feature_audio_s < st.computed_audio_s); /* the cache is in use */
    MP_ASSERT(finals >= 120 / 4); /* every utterance is cut at 3 s at the latest */
    MP_ASSERT(st.steps >= 240);
    MP_ASSERT(st.committed_s > 119.0 - lc.right_context_s - 0.1);
    mp_live_free(s);
    free(x);
    mp_pool_free(p);
    mp_model_free(m);
}

/* 12 streams share one worker: all progress, each step holds the worker alone. */
typedef struct share_arg {
    mp_pool *pool;
    const float *x;
    size_t n;
    run_out *o;
} share_arg;

static void *share_thread(void *a) {
    share_arg *sa = a;
    run_live(sa->pool, sa->x, sa->n, 8000, NULL, NULL, 160, sa->o);
    return NULL;
}

static void test_shared_workers(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1);
    size_t n = 4 * 8000;
    float *x = synth(n, 8000, 3);
    static run_out ref, outs[12];
    run_live(p, x, n, 8000, NULL, NULL, 160, &ref);
    pthread_t t[12];
    share_arg args[12];
    for (int i = 0; i < 12; i++) {
        args[i] = (share_arg){.pool = p, .x = x, .n = n, .o = &outs[i]};
        MP_ASSERT_EQ(pthread_create(&t[i], NULL, share_thread, &args[i]), 0);
    }
    for (int i = 0; i < 12; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 12; i++) assert_same_run(&ref, &outs[i]);
    mp_pool_stats ps;
    MP_ASSERT_OK(mp_pool_get_stats(p, &ps));
    MP_ASSERT_EQ(ps.busy_models, 0);
    MP_ASSERT((int64_t)ps.completed >= 13 * (int64_t)ref.stats.steps);
    free(x);
    mp_pool_free(p);
    mp_model_free(m);
}

/* With contexts longer than the input, a flush runs one window over everything: the final equals
 * the offline transcript exactly (frame alignment, time shift and decoding line up). */
static void test_offline_identity(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1);
    size_t n = (size_t)(3.1 * 16000);
    float *x = synth(n, 16000, 21);
    mp_result *off = NULL;
    MP_ASSERT_OK(mp_pool_transcribe(p, x, n, 16000, NULL, &off));
    mp_live_config lc = mp_live_default_config();
    lc.left_context_s = lc.right_context_s = 10.0;
    lc.max_utterance_s = 60.0;
    static run_out o;
    run_live(p, x, n, 16000, NULL, &lc, 1000, &o);
    /* nothing is committed before the end: only the flush ran, then the final pass */
    MP_ASSERT(o.stats.steps <= 2);
    MP_ASSERT(mp_result_n_words(off) > 0); /* the random model does emit tokens for this input */
    {
        MP_ASSERT_EQ(o.n_finals, 1);
        MP_ASSERT_STR_EQ(o.finals[0].text, mp_result_text(off));
        MP_ASSERT_EQ(o.finals[0].n_words, mp_result_n_words(off));
        mp_word w;
        MP_ASSERT_OK(mp_result_word(off, 0, &w));
        MP_ASSERT_NEAR(o.finals[0].w_first_start, w.start_s, 1e-6);
    }
    mp_result_free(off);
    free(x);
    mp_pool_free(p);
    mp_model_free(m);
}

/* ---- model: the embedded digits model ----------------------------------------------------------- */

typedef struct digits_env {
    mp_model *m;
    mp_pool *p;
    float *x;
    size_t n; /* 8 kHz samples of phone-gsm.wav */
} digits_env;

static digits_env digits_open(void) {
    digits_env e;
    e.m = digits_model();
    e.p = make_pool(e.m, 1);
    e.x = load_sample(&e.n);
    return e;
}

static void digits_close(digits_env *e) {
    free(e->x);
    mp_pool_free(e->p);
    mp_model_free(e->m);
}

static mp_request_config beam16(void) {
    mp_request_config rq = mp_request_default_config();
    rq.decoder = MP_DECODER_BEAM;
    rq.beam_width = 16;
    return rq;
}

/* Tolerance: a final may differ from the offline transcript of the same audio by at most one word
 * per utterance. Why not zero: the final pass runs each utterance with left_context_s before it
 * and the audio up to the endpoint after it, while the offline run normalizes (do_normalize and
 * the conv GroupNorm) and attends over the whole input, so logits differ slightly and a
 * borderline frame can flip. On this sample they agree exactly today. */
static void check_against_offline(const digits_env *e, const float *x, size_t n, const mp_request_config *rq,
                                  int expect_finals, size_t piece) {
    mp_result *off = NULL;
    MP_ASSERT_OK(mp_pool_transcribe(e->p, x, n, 8000, rq, &off));
    static run_out o;
    run_live(e->p, x, n, 8000, rq, NULL, piece, &o);
    char live[4096];
    joined(&o, live, sizeof live);
    int d = word_distance(live, mp_result_text(off));
    fprintf(stderr, "offline: %s\nlive:    %s  (%d finals, %d word edits)\n", mp_result_text(off), live, o.n_finals, d);
    MP_ASSERT_EQ(o.n_finals, expect_finals);
    MP_ASSERT(d <= expect_finals);
    for (int i = 0; i < o.n_finals; i++) {
        MP_ASSERT(o.finals[i].words_ordered);
        MP_ASSERT(o.finals[i].end_s > o.finals[i].start_s);
        if (i) MP_ASSERT(o.finals[i].start_s >= o.finals[i - 1].end_s - 1e-9);
    }
    mp_result_free(off);
}

static void test_final_vs_offline(void) {
    digits_env e = digits_open();
    mp_request_config g = mp_request_default_config(), b = beam16();
    check_against_offline(&e, e.x, e.n, &g, 1, 1600); /* 0.2 s pieces, as vosk's test client sends */
    check_against_offline(&e, e.x, e.n, &b, 1, 1600);
    check_against_offline(&e, e.x, e.n, &b, 1, 160);
    /* the README's main job: beam 16 with the model's word list gives the reference text */
    static run_out o;
    run_live(e.p, e.x, e.n, 8000, &b, NULL, 320, &o);
    char live[4096];
    joined(&o, live, sizeof live);
    MP_ASSERT(word_distance(live, "FOUR ONE FIVE FIVE FIVE FIVE ZERO ONE NINE EIGHT") <= 1);
    digits_close(&e);
}

/* The sample, 1 s of line noise, the sample again: two utterances, two finals, times from the
 * start of the stream. */
static void test_two_utterances(void) {
    digits_env e = digits_open();
    size_t gap = 8000, n = 2 * e.n + gap;
    float *x = malloc(n * sizeof *x);
    MP_ASSERT(x);
    memcpy(x, e.x, e.n * sizeof *x);
    unsigned seed = 1;
    for (size_t i = 0; i < gap; i++) {
        seed = seed * 1103515245u + 12345u;
        x[e.n + i] = 0.0005f * ((float)(seed >> 8) / (float)(1 << 24) - 0.5f); /* about -75 dBFS */
    }
    memcpy(x + e.n + gap, e.x, e.n * sizeof *x);
    mp_request_config b = beam16();
    static run_out o;
    run_live(e.p, x, n, 8000, &b, NULL, 1600, &o);
    MP_ASSERT_EQ(o.n_finals, 2);
    double second_start = (double)(e.n + gap) / 8000.0;
    MP_ASSERT(o.finals[0].end_s <= second_start + 0.3);
    MP_ASSERT(o.finals[1].w_first_start >= second_start);
    MP_ASSERT(o.finals[1].w_last_end <= (double)n / 8000.0 + 1e-6);
    mp_result *off = NULL;
    MP_ASSERT_OK(mp_pool_transcribe(e.p, e.x, e.n, 8000, &b, &off));
    for (int i = 0; i < 2; i++) MP_ASSERT(word_distance(o.finals[i].text, mp_result_text(off)) <= 1);
    /* the second utterance's words are the first's shifted by the offset of the second copy */
    MP_ASSERT_NEAR(o.finals[1].w_first_start - o.finals[0].w_first_start, second_start, 0.1);
    mp_result_free(off);
    /* the same with the whole two-utterance call against its own offline transcript */
    check_against_offline(&e, x, n, &b, 2, 1600);
    free(x);
    digits_close(&e);
}

/* Greedy partials grow within an utterance: each is a prefix of the next (committed frames are
 * never decoded again) and of the utterance's committed decoding; they reset after a final. */
static void partial_growth(digits_env *e, int cache) {
    static run_out o;
    mp_live_config lc = mp_live_default_config();
    lc.final_pass = 0; /* finals are then the committed decoding the partials are prefixes of */
    /* explicitly greedy: a request that sets nothing gets the model's decoding.json (beam search,
     * whose best hypothesis may revise its last words as frames come: server.live_vosk) */
    mp_request_config g = mp_request_default_config();
    g.decoder = MP_DECODER_GREEDY;
    g.explicit_fields |= MP_REQ_DECODER;
    lc.feature_cache = cache;
    run_live(e->p, e->x, e->n, 8000, &g, &lc, 1600, &o);
    MP_ASSERT(o.n_partials >= 9);
    /* Windows normalized over themselves (no cache) keep the sample as one utterance; with the
     * stream's statistics (the cache) they see the speaker's 0.64 s pause in "415 | 555 0198" as
     * an endpoint (0.6 s): two finals, as the docs say (docs/LIVE.md); the final pass, on by
     * default, drops that endpoint (test final_vs_offline). */
    if (!cache) MP_ASSERT_EQ(o.n_finals, 1);
    else MP_ASSERT(o.n_finals >= 1 && o.n_finals <= 2);
    int distinct = 0;
    for (int i = 1; i < o.n_partials; i++) {
        if (o.partial_final_before[i] != o.partial_final_before[i - 1]) continue; /* a final in between */
        size_t l = strlen(o.partials[i - 1]);
        MP_ASSERT(strncmp(o.partials[i], o.partials[i - 1], l) == 0);
        MP_ASSERT(o.partial_dur[i] > o.partial_dur[i - 1]);
        distinct += strcmp(o.partials[i], o.partials[i - 1]) != 0;
    }
    MP_ASSERT(distinct >= 5);
    for (int i = 0; i < o.n_partials; i++) {
        int u = o.partial_final_before[i];
        if (u < o.n_finals) MP_ASSERT(strncmp(o.finals[u].text, o.partials[i], strlen(o.partials[i])) == 0);
    }
    /* the first word shows up in a partial within a second of being spoken (0.5 s steps, 0.2 s
     * right context): FOUR ends near 0.95 s in this sample */
    int first = -1;
    for (int i = 0; i < o.n_partials && first < 0; i++)
        if (strstr(o.partials[i], "OU")) first = i;
    MP_ASSERT(first >= 0);
    MP_ASSERT(o.partial_dur[first] <= 1.6);
}

static void test_partial_growth(void) {
    digits_env e = digits_open();
    partial_growth(&e, 0);
    partial_growth(&e, 1);
    digits_close(&e);
}

/* Decoding options apply to live streams: a word list restricts every final word. */
static void test_decoding_options(void) {
    digits_env e = digits_open();
    const char *words[] = {"one", "five", "nine"};
    mp_lexicon *lex = NULL;
    MP_ASSERT_OK(mp_lexicon_from_words(e.m, words, 3, &lex));
    mp_request_config rq = beam16();
    rq.lexicon = lex;
    rq.explicit_fields |= MP_REQ_OOV; /* oov_score 0: no out-of-list words, whatever decoding.json says */
    static run_out o;
    run_live(e.p, e.x, e.n, 8000, &rq, NULL, 1600, &o);
    MP_ASSERT(o.n_finals >= 1);
    size_t total = 0;
    for (int i = 0; i < o.n_finals; i++) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", o.finals[i].text);
        for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) {
            MP_ASSERT(!strcmp(t, "ONE") || !strcmp(t, "FIVE") || !strcmp(t, "NINE"));
            total++;
        }
    }
    MP_ASSERT(total >= 5);
    /* partials too */
    for (int i = 0; i < o.n_partials; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", o.partials[i]);
        for (char *t = strtok(buf, " "); t; t = strtok(NULL, " "))
            MP_ASSERT(!strcmp(t, "ONE") || !strcmp(t, "FIVE") || !strcmp(t, "NINE"));
    }
    mp_lexicon_free(lex);
    digits_close(&e);
}

/* Compute per live audio-second against offline transcription of the same audio (the sample
 * three times with pauses, 17 s). Timing is noisy on a shared machine, so the assertion is on the
 * audio actually run through the network (partial windows plus the final pass), which the
 * design fixes: (left + interval + right + rf) / interval for the steps, plus about one pass over
 * each utterance. The measured times are printed for docs/LIVE.md. */
static void test_compute(void) {
    digits_env e = digits_open();
    size_t gap = 12000, n = 3 * e.n + 2 * gap;
    float *x = calloc(n, sizeof *x);
    MP_ASSERT(x);
    for (int k = 0; k < 3; k++) memcpy(x + (size_t)k * (e.n + gap), e.x, e.n * sizeof *x);
    mp_request_config rq = mp_request_default_config();
    double t_off = 1e9, t_live = 1e9;
    static run_out o;
    char off_text[4096] = "";
    for (int round = 0; round < 2; round++) { /* alternate, keep the best of each */
        double t0 = now_s();
        mp_result *off = NULL;
        MP_ASSERT_OK(mp_pool_transcribe(e.p, x, n, 8000, &rq, &off));
        double t1 = now_s();
        snprintf(off_text, sizeof off_text, "%s", mp_result_text(off));
        mp_result_free(off);
        run_live(e.p, x, n, 8000, &rq, NULL, 1600, &o);
        if (t1 - t0 < t_off) t_off = t1 - t0;
        if (o.stats.compute_s < t_live) t_live = o.stats.compute_s;
    }
    double audio = (double)n / 8000.0, ratio_audio = o.stats.computed_audio_s / audio;
    fprintf(stderr,
            "audio %.2f s: offline %.4f s, live compute %.4f s (%.2fx offline, %llu steps, %.2f s of audio through "
            "the network = %.2fx the audio)\n",
            audio, t_off, t_live, t_live / t_off, (unsigned long long)o.stats.steps, o.stats.computed_audio_s,
            ratio_audio);
    for (int i = 0; i < o.n_finals; i++)
        fprintf(stderr, "  [%.2f-%.2f] %s\n", o.finals[i].start_s, o.finals[i].end_s, o.finals[i].text);
    /* one final per copy, or two: the speaker pauses 0.64 s between FIVE and FIVE ("415 | 555
     * 0198"), just over the 0.6 s endpoint, and steps without left context (unsure utterances)
     * may cut there (tests/test-examples.sh; the v1 weights never cut on this call, v3's cut the
     * third copy) */
    int per_copy[3] = {0, 0, 0};
    double period = (double)(e.n + gap) / 8000.0;
    for (int i = 0; i < o.n_finals; i++) {
        int k = (int)(o.finals[i].start_s / period);
        MP_ASSERT(k >= 0 && k < 3);
        per_copy[k]++;
    }
    for (int k = 0; k < 3; k++) MP_ASSERT(per_copy[k] >= 1 && per_copy[k] <= 2);
    /* GSM speech: every final pass runs, and the unsure utterances' steps skip the left context
     * (2.69x the audio before, about 2.3x now) while the finals stay the offline transcript,
     * within check_against_offline's tolerance of one word per utterance (a cut utterance's two
     * passes see less context than the offline run) */
    MP_ASSERT_EQ(o.stats.final_passes_skipped, 0);
    MP_ASSERT(ratio_audio < 2.45);
    char live[4096];
    joined(&o, live, sizeof live);
    int d = word_distance(live, off_text);
    fprintf(stderr, "offline: %s\nlive:    %s  (%d word edits)\n", off_text, live, d);
    MP_ASSERT(d <= 3);
    MP_ASSERT(o.stats.wait_s >= 0 && o.stats.compute_s > 0);
    free(x);
    digits_close(&e);
}


/* final_skip_confidence: an utterance ended at an endpoint keeps its committed decoding when every
 * word reaches the threshold (0.01: always here), and runs the final pass otherwise (0: never
 * skipped; the default 0.8 runs it on this GSM sample, whose windows are unsure: test
 * final_vs_offline). */
static void test_final_skip(void) {
    digits_env e = digits_open();
    size_t gap = 8000, n = 2 * e.n + gap;
    float *x = calloc(n, sizeof *x);
    MP_ASSERT(x);
    memcpy(x, e.x, e.n * sizeof *x);
    memcpy(x + e.n + gap, e.x, e.n * sizeof *x);
    mp_request_config b = beam16();
    mp_live_config always = mp_live_default_config(), eager = always, windows = always;
    always.final_skip_confidence = 0;
    eager.final_skip_confidence = 0.01;
    windows.final_pass = 0;
    /* the counts below are for windows normalized over themselves: with the cache the windows
     * split each copy at its 0.64 s pause (test partial_growth), checked after them */
    always.feature_cache = eager.feature_cache = windows.feature_cache = 0;
    static run_out a, k, w;
    run_live(e.p, x, n, 8000, &b, &always, 1600, &a);
    run_live(e.p, x, n, 8000, &b, &eager, 1600, &k);
    run_live(e.p, x, n, 8000, &b, &windows, 1600, &w);
    MP_ASSERT_EQ(a.n_finals, 2);
    MP_ASSERT_EQ(k.n_finals, 2);
    MP_ASSERT_EQ(a.stats.final_passes_skipped, 0);
    MP_ASSERT_EQ(k.stats.final_passes_skipped, 2); /* both end at an endpoint (the sample ends in silence) */
    for (int i = 0; i < 2; i++) MP_ASSERT_STR_EQ(k.finals[i].text, w.finals[i].text); /* the committed decoding */
    fprintf(stderr, "network audio: always %.2f s, eager %.2f s, windows %.2f s\n", a.stats.computed_audio_s,
            k.stats.computed_audio_s, w.stats.computed_audio_s);
    /* eager runs the windows alone, as final_pass 0 does; always adds two passes of about 4.9 s
     * (lead, utterance, endpoint, right context) but its steps skip the left context (the
     * utterances are unsure from their first speech frame): over 3 s less than eager's steps */
    MP_ASSERT_NEAR(k.stats.computed_audio_s, w.stats.computed_audio_s, 1e-9);
    MP_ASSERT(a.stats.computed_audio_s > k.stats.computed_audio_s + 4.0);
    MP_ASSERT(a.stats.computed_audio_s < k.stats.computed_audio_s + 2 * 4.9 - 3.0);
    /* with the cache: the skipped finals are still the committed decoding, every one skipped */
    eager.feature_cache = windows.feature_cache = 1;
    run_live(e.p, x, n, 8000, &b, &eager, 1600, &k);
    run_live(e.p, x, n, 8000, &b, &windows, 1600, &w);
    MP_ASSERT(k.n_finals >= 2);
    MP_ASSERT_EQ(k.n_finals, w.n_finals);
    MP_ASSERT_EQ(k.stats.final_passes_skipped, (uint64_t)k.n_finals);
    for (int i = 0; i < k.n_finals; i++) MP_ASSERT_STR_EQ(k.finals[i].text, w.finals[i].text);
    mp_live_config bad = mp_live_default_config();
    bad.final_skip_confidence = 1.5;
    mp_live *s = NULL;
    MP_ASSERT_EQ(mp_live_create(e.p, 8000, NULL, &bad, &s), MP_ERR_INVALID_ARG);
    MP_ASSERT(s == NULL);
    free(x);
    digits_close(&e);
}

/* The forward pass in two halves (mp__forward_features, mp__forward_encoder) gives the whole
 * forward's logits, and features of any frame range computed alone equal the same frames of a
 * run over the whole input (a frame depends on its receptive field and the statistics only):
 * what the live feature cache relies on. Tolerance: 1e-4 of the largest magnitude (the conv
 * blocking follows the input length, so sums may round differently). */
static void feature_split(const mp_model *m, const float *x, size_t n) {
    const size_t k0 = (size_t)m->conv[0].kernel, s0 = (size_t)m->conv[0].stride;
    const size_t H = (size_t)m->hp.hidden, V = (size_t)m->hp.vocab;
    const size_t stride = (size_t)mp__model_stride(m), rf = (size_t)mp__model_receptive_field(m);
    mp__input_stats st = {0}, half = {0};
    st.p1 = calloc(k0, sizeof(double)), st.p2 = calloc(k0 * k0, sizeof(double));
    half.p1 = calloc(k0, sizeof(double)), half.p2 = calloc(k0 * k0, sizeof(double));
    MP_ASSERT(st.p1 && st.p2 && half.p1 && half.p2);
    mp__input_stats_add(m, &st, x, n, (n - k0) / s0 + 1);
    mp__input_stats_add(m, &half, x, n / 4, (n / 4 - k0) / s0 + 1);
    const size_t T = mp__model_n_frames(m, n);
    float *feat = malloc(T * H * sizeof *feat), *part = malloc(T * H * sizeof *part);
    float *l1 = malloc(T * V * sizeof *l1), *l2 = malloc(T * V * sizeof *l2);
    MP_ASSERT(feat && part && l1 && l2);
    mp__state *state = NULL;
    MP_ASSERT_OK(mp__state_create(m, &state));
    MP_ASSERT_OK(mp__forward_stats(m, state, x, n, &st, l1));
    MP_ASSERT_OK(mp__forward_features(m, state, x, n, &st, feat));
    MP_ASSERT_OK(mp__forward_encoder(m, state, feat, T, l2));
    float lmax = 0, dl = 0, fmax_ = 0, df = 0;
    for (size_t i = 0; i < T * V; i++) lmax = fmaxf(lmax, fabsf(l1[i])), dl = fmaxf(dl, fabsf(l1[i] - l2[i]));
    for (size_t i = 0; i < T * H; i++) fmax_ = fmaxf(fmax_, fabsf(feat[i]));
    /* ranges as a live stream asks for them: odd lengths, starting anywhere */
    const size_t cuts[][2] = {{0, 7}, {7, 40}, {40, 41}, {41, 130}, {97, T}};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        size_t g0 = cuts[c][0], g1 = cuts[c][1] < T ? cuts[c][1] : T;
        if (g1 <= g0) continue;
        MP_ASSERT_OK(mp__forward_features(m, state, x + g0 * stride, (g1 - g0 - 1) * stride + rf, &st, part));
        for (size_t i = 0; i < (g1 - g0) * H; i++) df = fmaxf(df, fabsf(part[i] - feat[g0 * H + i]));
    }
    fprintf(stderr, "logits max %.3g, split differs by %.3g; features max %.3g, ranges differ by %.3g\n", lmax, dl,
            fmax_, df);
    MP_ASSERT(lmax > 0 && dl <= 1e-4f * lmax);
    MP_ASSERT(fmax_ > 0 && df <= 1e-4f * fmax_);
    /* the drift measure: 0 against itself, clearly more from a quarter of the input (group norm) */
    MP_ASSERT(mp__input_stats_drift(m, &st, &st) == 0.0);
    double d = mp__input_stats_drift(m, &st, &half);
    fprintf(stderr, "drift of the whole from its first quarter %.3f\n", d);
    MP_ASSERT(m->hp.group_norm ? d > 0.01 : d >= 0);
    mp__state_free(state);
    free(feat), free(part), free(l1), free(l2);
    free(st.p1), free(st.p2), free(half.p1), free(half.p2);
}

static void test_feature_split(void) {
    digits_env e = digits_open();
    feature_split(e.m, e.x, e.n);
    digits_close(&e);
}

/* The same for a LayerNorm feature extractor with conv bias (tiny-large: per-frame norms, so only
 * do_normalize's statistics count), and the live cache in use on it. */
static void test_feature_split_layer(void) {
    mp_model *m = NULL;
    mp_status st = mp_model_create_random("tiny-large", 5, &m);
    if (st != MP_OK) MP_SKIP("mp_model_create_random(tiny-large): %s", mp_last_error());
    MP_ASSERT(!m->hp.group_norm);
    const int rate = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;
    size_t n = (size_t)rate * 3;
    float *x = synth(n, rate, 21);
    feature_split(m, x, n);
    mp_pool *p = make_pool(m, 1);
    static run_out o;
    run_live(p, x, n, rate, NULL, NULL, 800, &o);
    fprintf(stderr, "tiny-large live: conv encoder %.2f s, transformer %.2f s\n", o.stats.feature_audio_s,
            o.stats.computed_audio_s);
    MP_ASSERT(o.stats.steps > 0 && o.stats.feature_audio_s < o.stats.computed_audio_s);
    mp_pool_free(p);
    free(x);
    mp_model_free(m);
}

/* The feature cache against no cache on a call of three copies of the sample with 1.5 s pauses:
 * the same finals (each within one word of offline), far less audio through the conv encoder. */
static void test_feature_cache(void) {
    digits_env e = digits_open();
    size_t gap = 12000, n = 3 * e.n + 2 * gap;
    float *x = calloc(n, sizeof *x);
    MP_ASSERT(x);
    for (int i = 0; i < 3; i++) memcpy(x + (size_t)i * (e.n + gap), e.x, e.n * sizeof *x);
    mp_request_config b = beam16();
    mp_live_config on = mp_live_default_config(), off = on;
    off.feature_cache = 0;
    MP_ASSERT_EQ(on.feature_cache, 1);
    static run_out a, c;
    run_live(e.p, x, n, 8000, &b, &off, 1600, &a);
    run_live(e.p, x, n, 8000, &b, &on, 1600, &c);
    mp_result *ref = NULL;
    MP_ASSERT_OK(mp_pool_transcribe(e.p, e.x, e.n, 8000, &b, &ref));
    MP_ASSERT_EQ(c.n_finals, a.n_finals);
    /* A copy may come back as one final or two (cut at the speaker's 0.64 s pause, docs/LIVE.md), so
     * the finals are compared with offline as one text: the three copies' words within one word per
     * copy (the tolerance per utterance) of three offline transcripts. */
    char all[4096] = "", want[4096] = "";
    for (int i = 0; i < c.n_finals; i++) {
        MP_ASSERT_STR_EQ(c.finals[i].text, a.finals[i].text);
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? " " : "", c.finals[i].text);
    }
    for (int k = 0; k < 3; k++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", k ? " " : "", mp_result_text(ref));
    MP_ASSERT(c.n_finals >= 3 && c.n_finals <= 6);
    MP_ASSERT(word_distance(all, want) <= 3);
    fprintf(stderr, "conv encoder audio: %.2f s cached, %.2f s not (transformer %.2f s, %.2f s); %llu resets\n",
            c.stats.feature_audio_s, a.stats.feature_audio_s, c.stats.computed_audio_s, a.stats.computed_audio_s,
            (unsigned long long)c.stats.cache_resets);
    MP_ASSERT_NEAR(a.stats.feature_audio_s, a.stats.computed_audio_s, 1e-9); /* no cache: the whole network */
    MP_ASSERT(c.stats.feature_audio_s < 0.85 * a.stats.feature_audio_s);
    MP_ASSERT(c.stats.feature_audio_s >= (double)n / 8000.0 - 0.5); /* every frame at least once */
    MP_ASSERT_EQ(a.stats.cache_resets, 0);
    MP_ASSERT(c.stats.cached_s >= 0 && c.stats.cached_s <= c.stats.buffered_s + 0.1);
    mp_live_config bad = mp_live_default_config();
    bad.feature_cache = 2;
    mp_live *s = NULL;
    MP_ASSERT_EQ(mp_live_create(e.p, 8000, NULL, &bad, &s), MP_ERR_INVALID_ARG);
    mp_result_free(ref);
    free(x);
    digits_close(&e);
}

/* mp_live_flush hands on everything written so far, also at a rate other than the model's: the
 * resampler's delay (a few ms) used to stay behind, so the last frame of audio that ends exactly
 * on a frame boundary was not committed. Both streams commit every frame of their audio. */
static void test_flush_resampler(void) {
    mp_model *m = tiny_model();
    mp_pool *p = make_pool(m, 1);
    const int mr = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000, dbl = 2 * mr;
    const size_t stride = (size_t)mp__model_stride(m), rf = (size_t)mp__model_receptive_field(m);
    const size_t frames = 40, n_model = rf + (frames - 1) * stride; /* the last frame needs every sample */
    float *x = synth(n_model, mr, 3), *h = synth(2 * n_model, dbl, 3);
    double sec = (double)stride / (double)mr;
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: written at the model rate; pass 1: at twice it, through the resampler */
        mp_live *s = NULL;
        MP_ASSERT_OK(mp_live_create(p, pass ? dbl : mr, NULL, NULL, &s));
        MP_ASSERT_OK(mp_live_write(s, pass ? h : x, pass ? 2 * n_model : n_model, NULL));
        MP_ASSERT_OK(mp_live_flush(s));
        mp_live_stats st;
        MP_ASSERT_OK(mp_live_get_stats(s, &st));
        fprintf(stderr, "rate %d: committed %.3f s of %.3f s\n", pass ? dbl : mr, st.committed_s, st.audio_s);
        MP_ASSERT_NEAR(st.committed_s, (double)frames * sec, 1e-9);
        /* and the stream goes on after the flush, a second time the same */
        MP_ASSERT_OK(mp_live_write(s, pass ? h : x, pass ? 2 * n_model : n_model, NULL));
        MP_ASSERT_OK(mp_live_flush(s));
        MP_ASSERT_OK(mp_live_get_stats(s, &st));
        MP_ASSERT_NEAR(st.committed_s, (double)(2 * frames) * sec, pass ? sec + 1e-9 : 1e-9);
        MP_ASSERT_OK(mp_live_finish(s));
        mp_live_free(s);
    }
    free(x);
    free(h);
    mp_pool_free(p);
    mp_model_free(m);
}

static const mp_test_case cases[] = {
    {"pieces", test_pieces},
    {"misuse", test_misuse},
    {"bounded", test_bounded},
    {"shared_workers", test_shared_workers},
    {"offline_identity", test_offline_identity},
    {"final_vs_offline", test_final_vs_offline},
    {"two_utterances", test_two_utterances},
    {"partial_growth", test_partial_growth},
    {"decoding_options", test_decoding_options},
    {"compute", test_compute},
    {"final_skip", test_final_skip},
    {"feature_split", test_feature_split},
    {"feature_split_layer", test_feature_split_layer},
    {"feature_cache", test_feature_cache},
    {"flush_resampler", test_flush_resampler},
};

MP_TEST_MAIN(cases)
