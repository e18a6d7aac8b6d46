/* bench-live.c - CPU per audio second of live streams (mp_live) against offline transcription of
 * the same recordings, on one worker and one thread, in one process: the library-level half of
 * bench/live-calls.py (no sockets, no 30 threads), small enough for perf.
 *
 *   bench-live [--model DIR] [--rounds 3] [--piece 160] [--step S] [--left S] [--right S]
 *              [--endpoint S] [--final-pass 0|1] [--skip-conf C] [--cache 0|1] [--beam N (0 = greedy)]
 *              [--gemm openblas|onednn|small] [--live-only] [--verbose] WAV...
 *
 * Each round transcribes every recording offline (mp_pool_transcribe), then streams each through
 * mp_live in `piece`-sample writes at its own rate (160 = 20 ms at 8 kHz, as AudioSocket sends),
 * asking for the partial after every step (as the vosk endpoint does), and pops the finals. Rounds
 * alternate the two so machine load hits both alike; the best round of each is reported (process
 * CPU seconds: the calling thread, which decodes, and the worker, which runs the network). Prints
 * the ratio, the audio run through the network, steps, finals, endpoints the final pass dropped,
 * and the word edits between the live finals and the offline transcript. */
#include <modelpool.h>

#include "engine/kernels.h" /* --gemm: mp__gemm_set_backend */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FILES 64

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Word-level edit distance between two space-separated texts (at most 256 words each). */
static int word_edits(const char *a, const char *b) {
    static char wa[256][32], wb[256][32];
    static int d[257][257];
    int na = 0, nb = 0;
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", a);
    for (char *t = strtok(buf, " "); t && na < 256; t = strtok(NULL, " ")) snprintf(wa[na++], 32, "%s", t);
    snprintf(buf, sizeof buf, "%s", b);
    for (char *t = strtok(buf, " "); t && nb < 256; t = strtok(NULL, " ")) snprintf(wb[nb++], 32, "%s", t);
    for (int i = 0; i <= na; i++) d[i][0] = i;
    for (int j = 0; j <= nb; j++) d[0][j] = j;
    for (int i = 1; i <= na; i++)
        for (int j = 1; j <= nb; j++) {
            int s = d[i - 1][j - 1] + (strcmp(wa[i - 1], wb[j - 1]) != 0);
            int x = d[i - 1][j] + 1, y = d[i][j - 1] + 1;
            d[i][j] = s < x ? (s < y ? s : y) : (x < y ? x : y);
        }
    return d[na][nb];
}

typedef struct live_sum {
    double network_audio_s;
    double feature_audio_s; /* audio through the conv feature encoder (less with the cache) */
    unsigned long long cache_resets;
    unsigned long long steps, finals, dropped, skipped;
    int edits;
    int partial_edits; /* words between each utterance's last partial and its final */
    unsigned long long seen_skipped; /* --verbose: the stream's skipped passes so far */
} live_sum;

static int verbose; /* --verbose: each final's words and confidences, and where it came from */

static void append(char *dst, size_t cap, const char *t) {
    if (!*t) return;
    if (*dst) strncat(dst, " ", cap - strlen(dst) - 1);
    strncat(dst, t, cap - strlen(dst) - 1);
}

/* Pop the finals into text; the first is compared with the utterance's last partial. */
static mp_status pop_all(mp_live *s, char *text, size_t cap, char *partial, live_sum *sum) {
    for (;;) {
        mp_result *r = NULL;
        mp_status st = mp_live_pop_final(s, &r, NULL, NULL);
        if (st != MP_OK || !r) return st;
        append(text, cap, mp_result_text(r));
        if (verbose) {
            mp_live_stats ls;
            mp_live_get_stats(s, &ls);
            printf("  final (%s):", ls.final_passes_skipped > sum->seen_skipped ? "windows" : "pass");
            sum->seen_skipped = ls.final_passes_skipped;
            for (size_t i = 0; i < mp_result_n_words(r); i++) {
                mp_word w;
                if (mp_result_word(r, i, &w) == MP_OK) printf(" %s/%.2f", w.word, w.confidence);
            }
            printf("\n");
        }
        sum->partial_edits += word_edits(partial, mp_result_text(r));
        partial[0] = '\0';
        mp_result_free(r);
    }
}

/* One recording through a live stream; its finals joined into text. */
static mp_status run_live(mp_pool *pool, const float *x, size_t n, int rate, const mp_request_config *req,
                          const mp_live_config *lc, size_t piece, char *text, size_t cap, live_sum *sum) {
    mp_live *s = NULL;
    char partial[4096] = "";
    sum->seen_skipped = 0;
    text[0] = '\0';
    mp_status st = mp_live_create(pool, rate, req, lc, &s);
    for (size_t i = 0; st == MP_OK && i < n; i += piece) {
        int ev = 0;
        st = mp_live_write(s, x + i, n - i < piece ? n - i : piece, &ev);
        if (st == MP_OK && (ev & MP_LIVE_STEP)) {
            mp_result *p = NULL;
            if (st == MP_OK && (ev & MP_LIVE_FINAL)) st = pop_all(s, text, cap, partial, sum);
            if (st == MP_OK) st = mp_live_partial(s, &p);
            if (st == MP_OK) snprintf(partial, sizeof partial, "%s", mp_result_text(p));
            mp_result_free(p);
        }
        if (st == MP_OK) st = pop_all(s, text, cap, partial, sum);
    }
    if (st == MP_OK) st = mp_live_finish(s);
    if (st == MP_OK) st = pop_all(s, text, cap, partial, sum);
    mp_live_stats ls;
    if (st == MP_OK && mp_live_get_stats(s, &ls) == MP_OK) {
        sum->network_audio_s += ls.computed_audio_s;
        sum->feature_audio_s += ls.feature_audio_s;
        sum->cache_resets += ls.cache_resets;
        sum->steps += ls.steps;
        sum->finals += ls.finals;
        sum->dropped += ls.endpoints_dropped;
        sum->skipped += ls.final_passes_skipped;
    }
    mp_live_free(s);
    return st;
}

static void usage(void) {
    fprintf(stderr, "usage: bench-live [--model DIR] [--rounds N] [--piece SAMPLES] [--step S] [--left S] [--right S]\n"
                    "                  [--endpoint S] [--final-pass 0|1] [--skip-conf C] [--cache 0|1] [--beam N]\n"
                    "                  [--gemm openblas|onednn|small] [--live-only] [--verbose]\n"
                    "                  WAV...\n");
}

int main(int argc, char **argv) {
    const char *model_dir = MP_DEFAULT_MODEL_DIR;
    int rounds = 3, beam = -1, live_only = 0;
    size_t piece = 160;
    mp_live_config lc = mp_live_default_config();
    const char *files[MAX_FILES];
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--live-only")) live_only = 1;
        else if (!strcmp(a, "--verbose")) verbose = 1;
        else if (a[0] == '-' && a[1] == '-' && !v) return usage(), 2;
        else if (!strcmp(a, "--model")) model_dir = v, i++;
        else if (!strcmp(a, "--rounds")) rounds = atoi(v), i++;
        else if (!strcmp(a, "--piece")) piece = (size_t)atol(v), i++;
        else if (!strcmp(a, "--step")) lc.partial_interval_s = atof(v), i++;
        else if (!strcmp(a, "--left")) lc.left_context_s = atof(v), i++;
        else if (!strcmp(a, "--right")) lc.right_context_s = atof(v), i++;
        else if (!strcmp(a, "--endpoint")) lc.endpoint_silence_s = atof(v), i++;
        else if (!strcmp(a, "--final-pass")) lc.final_pass = atoi(v), i++;
        else if (!strcmp(a, "--skip-conf")) lc.final_skip_confidence = atof(v), i++;
        else if (!strcmp(a, "--cache")) lc.feature_cache = atoi(v), i++;
        else if (!strcmp(a, "--beam")) beam = atoi(v), i++;
        else if (!strcmp(a, "--gemm") && mp__gemm_backend_by_name(v) >= 0) /* fp32 GEMM backend (kernels.c) */
            mp__gemm_set_backend(mp__gemm_backend_by_name(v)), i++;
        else if (a[0] == '-') return usage(), 2;
        else if (n_files < MAX_FILES) files[n_files++] = a;
    }
    if (!n_files || rounds < 1 || piece < 1) return usage(), 2;

    mp_model *m = NULL;
    mp_pool *pool = NULL;
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = 1;
    pc.n_threads_per_worker = 1;
    mp_status st = mp_model_load(model_dir, NULL, &m);
    if (st == MP_OK) st = mp_pool_create(m, &pc, &pool);
    mp_request_config req = mp_request_default_config(); /* + decoding.json: beam 16, word list */
    if (beam == 0) req.decoder = MP_DECODER_GREEDY, req.explicit_fields |= MP_REQ_DECODER;
    if (beam > 0) req.decoder = MP_DECODER_BEAM, req.beam_width = beam, req.explicit_fields |= MP_REQ_DECODER;
    mp_audio *aud[MAX_FILES] = {0};
    double audio_s = 0;
    mp_audio_config ac = mp_audio_default_config();
    ac.target_rate = 8000; /* telephone audio at its own rate, as a live line delivers it */
    for (int f = 0; st == MP_OK && f < n_files; f++) {
        st = mp_audio_load_file(files[f], &ac, &aud[f]);
        size_t n = 0;
        if (st == MP_OK) mp_audio_samples(aud[f], &n), audio_s += (double)n / 8000.0;
    }
    static char off_text[MAX_FILES][8192], live_text[8192];
    double best_off = 1e9, best_live = 1e9;
    live_sum sum = {0};
    for (int r = 0; st == MP_OK && r < rounds; r++) {
        double c0 = cpu_s();
        for (int f = 0; st == MP_OK && f < n_files && (!live_only || r == 0); f++) {
            size_t n;
            const float *x = mp_audio_samples(aud[f], &n);
            mp_result *res = NULL;
            st = mp_pool_transcribe(pool, x, n, 8000, &req, &res);
            if (st == MP_OK) snprintf(off_text[f], sizeof off_text[f], "%s", mp_result_text(res));
            mp_result_free(res);
        }
        double c1 = cpu_s();
        live_sum s = {0};
        for (int f = 0; st == MP_OK && f < n_files; f++) {
            size_t n;
            const float *x = mp_audio_samples(aud[f], &n);
            st = run_live(pool, x, n, 8000, &req, &lc, piece, live_text, sizeof live_text, &s);
            if (st == MP_OK) s.edits += word_edits(live_text, off_text[f]);
            if (st == MP_OK && r == 0 && strcmp(live_text, off_text[f]) != 0)
                printf("%s\n  offline: %s\n  live:    %s\n", files[f], off_text[f], live_text);
        }
        double c2 = cpu_s();
        if (c1 - c0 < best_off && (!live_only || r == 0)) best_off = c1 - c0;
        if (c2 - c1 < best_live) best_live = c2 - c1;
        sum = s;
    }
    if (st != MP_OK) {
        fprintf(stderr, "bench-live: %s: %s\n", mp_strerror(st), mp_last_error());
    } else {
        printf("audio %.1f s in %d recordings; live: step %.2f left %.2f right %.2f endpoint %.2f final_pass %d "
               "skip_conf %.2f feature_cache %d\n",
               audio_s, n_files, lc.partial_interval_s, lc.left_context_s, lc.right_context_s, lc.endpoint_silence_s,
               lc.final_pass, lc.final_skip_confidence, lc.feature_cache);
        printf("offline %.4f CPU-s per audio s, live %.4f (%.2fx); network audio %.2fx the audio (conv encoder "
               "%.2fx, %llu cache resets); %llu steps, "
               "%llu finals (%llu without a final pass), %llu endpoints dropped; %d word edits vs offline; %d between "
               "last partials and finals\n",
               best_off / audio_s, best_live / audio_s, best_live / best_off, sum.network_audio_s / audio_s,
               sum.feature_audio_s / audio_s, sum.cache_resets, sum.steps, sum.finals, sum.skipped, sum.dropped, sum.edits, sum.partial_edits);
    }
    for (int f = 0; f < n_files; f++) mp_audio_free(aud[f]);
    mp_pool_free(pool);
    mp_model_free(m);
    return st == MP_OK ? 0 : 1;
}
