/* test-parity.c - the engine against torchaudio on random-weight models.
 *
 * Each fixture directory (tests/data/ref/<config>/, made by tools/make_reference.py) is a
 * HuggingFace model plus reference.json and torchaudio's logits for two fixed inputs. Per input:
 *   1. the greedy decoder on torchaudio's own logits gives the expected transcript (decoder alone);
 *   2. mp__forward on the float32 input gives logits with
 *      max|diff| <= 1e-3 * max(1, max|expected|) (the rule; loader + forward), and a
 *      10x stricter guard that catches small approximations the rule lets through;
 *   3. the greedy decoder on the engine's logits gives the expected transcript byte for byte;
 *   4. a second run of the first input on the same (grown) state is bit-identical (scratch reuse),
 *   5. and so is a run on a model loaded with use_mmap = 0 (private copy of the weights).
 * Case `transcribe` runs the whole request path (WAV file -> mp__transcribe) on every config.
 *
 * Usage: test-parity CASE          one committed config (ctest runs one case per config)
 *        test-parity --dir DIR...  fixture directories made elsewhere (scripts/parity-live.sh)
 */
#include "internal.h"
#include "test.h"
#include "npy.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks --------------------------------------------------------------------------------------- */

static char *join(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    MP_ASSERT(p);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

/* Greedy-decode T frames of logits [T][V], feeding `step` frames per call (0 = all at once).
 * Returns the text (malloc). */
static char *greedy(const mp_model *m, const float *logits, int T, int step) {
    mp_request_config req = mp_request_default_config();
    mp__decoder *d = NULL;
    MP_ASSERT_OK(mp__decoder_create(m, &req, &d));
    if (step <= 0) step = T;
    for (int f = 0; f < T; f += step) {
        int k = T - f < step ? T - f : step;
        MP_ASSERT_OK(mp__decoder_feed(d, logits + (size_t)f * (size_t)m->hp.vocab, k));
    }
    mp_result *r = mp__result_new();
    MP_ASSERT(r);
    MP_ASSERT_OK(mp__decoder_finish(d, r));
    mp__decoder_free(d);
    char *text = strdup(mp_result_text(r));
    MP_ASSERT(text);
    mp_result_free(r);
    return text;
}

/* max |a - b| over n values; NaN or Inf anywhere counts as infinite. */
static double max_abs_diff(const float *a, const float *b, size_t n, double *max_b) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!isfinite(d)) d = INFINITY;
        if (d > md) md = d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    if (max_b) *max_b = mb;
    return md;
}

/* Run every check on one fixture directory. Returns the worst max|diff| / max(1, max|logit|). */
static double check_dir(const char *dir) {
    char *ref_path = join(dir, "reference.json");
    json_error_t jerr;
    json_t *ref = json_load_file(ref_path, 0, &jerr);
    if (!ref) MP_FAILF("%s:%d: %s", ref_path, jerr.line, jerr.text);
    const char *cfg_name = json_string_value(json_object_get(ref, "config"));
    MP_ASSERT(cfg_name);
    json_t *inputs = json_object_get(ref, "inputs");
    MP_ASSERT(json_is_array(inputs) && json_array_size(inputs) > 0);

    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_load(dir, NULL, &m));
    mp__state *st = NULL;
    MP_ASSERT_OK(mp__state_create(m, &st));

    double worst = 0;
    float *first_logits = NULL;     /* engine logits of input 0, for the reuse check */
    npy first_in = {0};
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        json_t *in = json_array_get(inputs, i);
        const char *name = json_string_value(json_object_get(in, "name"));
        const char *want = json_string_value(json_object_get(in, "text"));
        MP_ASSERT(name && want);
        char *in_path = join(dir, json_string_value(json_object_get(in, "npy")));
        char *lg_path = join(dir, json_string_value(json_object_get(in, "logits")));
        npy x = npy_load(in_path);
        npy e = npy_load(lg_path);
        MP_ASSERT_EQ(x.ndim, 1);
        MP_ASSERT_EQ(e.ndim, 2);
        MP_ASSERT_EQ(x.n, json_integer_value(json_object_get(in, "n_samples")));
        const int T = (int)e.shape[0], V = (int)e.shape[1];

        /* 1. decoder alone, on torchaudio's logits */
        char *text_ref = greedy(m, e.data, T, 0);
        if (strcmp(text_ref, want) != 0)
            MP_FAILF("%s/%s: greedy decode of the EXPECTED logits differs (decoder bug):\n  got  \"%s\"\n  want \"%s\"",
                     cfg_name, name, text_ref, want);

        /* 2. loader + forward */
        MP_ASSERT_EQ(m->hp.vocab, V);
        MP_ASSERT_EQ(mp__model_n_frames(m, x.n), (size_t)T);
        float *got = malloc((size_t)T * (size_t)V * sizeof *got);
        MP_ASSERT(got);
        MP_ASSERT_OK(mp__forward(m, st, x.data, x.n, got));
        double max_e = 0;
        double md = max_abs_diff(got, e.data, (size_t)T * (size_t)V, &max_e);
        double tol = 1e-3 * (max_e > 1 ? max_e : 1);
        printf("parity %-10s %s frames %4d vocab %3d  max|diff| %.3g  max|logit| %.3g  tol %.3g  %s\n",
               cfg_name, name, T, V, md, max_e, tol, md <= tol ? "ok" : "FAIL");
        fflush(stdout);
        if (!(md <= tol)) {
            /* name the first bad frame and token, to help find the stage */
            for (size_t k = 0; k < (size_t)T * (size_t)V; k++) {
                if (!(fabs((double)got[k] - (double)e.data[k]) <= tol)) {
                    fprintf(stderr, "  first bad: frame %zu token %zu: got %.6g want %.6g\n", k / (size_t)V,
                            k % (size_t)V, got[k], e.data[k]);
                    break;
                }
            }
            MP_FAILF("%s/%s: max|diff| %g > tol %g", cfg_name, name, md, tol);
        }
        /* Stricter guard, 10x below the rule: the engine measures ~2e-6 relative, while
         * tanh-GELU in place of exact GELU moves these logits by at most 9e-4 relative, which
         * 1e-3 lets through (`tools/make_reference.py --verify tests/data/ref --mutations`). */
        if (!(md <= tol * 0.1))
            MP_FAILF("%s/%s: max|diff| %g is within the 1e-3 rule but above the 1e-4 guard (%g): an "
                     "approximation somewhere (GELU form, eps, normalization)?", cfg_name, name, md, tol * 0.1);
        double rel = md / (max_e > 1 ? max_e : 1);
        if (rel > worst) worst = rel;

        /* 3. transcript of the engine's logits, fed in odd-sized pieces */
        char *text = greedy(m, got, T, 7);
        if (strcmp(text, want) != 0)
            MP_FAILF("%s/%s: transcript differs:\n  got  \"%s\"\n  want \"%s\"", cfg_name, name, text, want);

        free(text);
        free(text_ref);
        free(e.data);
        free(in_path);
        free(lg_path);
        if (i == 0) {
            first_logits = got;
            first_in = x;
        } else {
            free(got);
            free(x.data);
        }
    }

    /* 4. the state has grown to the longest input; the first input again must be bit-identical */
    if (first_logits) {
        int T = (int)mp__model_n_frames(m, first_in.n), V = m->hp.vocab;
        float *again = malloc((size_t)T * (size_t)V * sizeof *again);
        MP_ASSERT(again);
        MP_ASSERT_OK(mp__forward(m, st, first_in.data, first_in.n, again));
        MP_ASSERT(memcmp(again, first_logits, (size_t)T * (size_t)V * sizeof *again) == 0);

        /* 5. a private copy of the weights (use_mmap = 0) computes exactly the same */
        mp_model_config mc = mp_model_default_config();
        mc.use_mmap = 0;
        mp_model *m2 = NULL;
        MP_ASSERT_OK(mp_model_load(dir, &mc, &m2));
        mp__state *st2 = NULL;
        MP_ASSERT_OK(mp__state_create(m2, &st2));
        memset(again, 0, (size_t)T * (size_t)V * sizeof *again);
        MP_ASSERT_OK(mp__forward(m2, st2, first_in.data, first_in.n, again));
        MP_ASSERT(memcmp(again, first_logits, (size_t)T * (size_t)V * sizeof *again) == 0);
        mp__state_free(st2);
        mp_model_free(m2);
        free(again);
        free(first_logits);
        free(first_in.data);
    }

    mp__state_free(st);
    mp_model_free(m);
    json_decref(ref);
    free(ref_path);
    return worst;
}

static void check_config(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/ref/%s", MP_TEST_DATA, name);
    check_dir(dir);
}

static void test_base_like(void) { check_config("base_like"); }
static void test_large_like(void) { check_config("large_like"); }
static void test_odd(void) { check_config("odd"); }
static void test_utf8(void) { check_config("utf8"); }
static void test_hubert(void) { check_config("hubert"); }
static void test_fp16(void) { check_config("fp16"); }
static void test_bf16(void) { check_config("bf16"); }

/* The committed WAV decodes (audio module) to exactly the float input torch saw: int16 / 32768. */
static void test_wav_input(void) {
    const char *names[] = {"in0", "in1"};
    for (int i = 0; i < 2; i++) {
        char wav[1024], np[1024];
        snprintf(wav, sizeof wav, "%s/ref/inputs/%s.wav", MP_TEST_DATA, names[i]);
        snprintf(np, sizeof np, "%s/ref/inputs/%s.npy", MP_TEST_DATA, names[i]);
        npy x = npy_load(np);
        mp_audio_config cfg = mp_audio_default_config();
        mp_audio *a = NULL;
        MP_ASSERT_OK(mp_audio_load_file(wav, &cfg, &a));
        size_t n = 0;
        const float *s = mp_audio_samples(a, &n);
        MP_ASSERT_EQ(mp_audio_rate(a), 16000);
        MP_ASSERT_EQ(n, x.n);
        double md = max_abs_diff(s, x.data, n, NULL);
        printf("parity wav %s: %zu samples, max|wav - npy| %.3g\n", names[i], n, md);
        MP_ASSERT(md == 0);
        mp_audio_free(a);
        free(x.data);
    }
}

/* End to end: the WAV file through the audio module and mp__transcribe (normalization, forward,
 * greedy decoding) gives the expected transcript for every config. */
static void test_transcribe(void) {
    static const char *const configs[] = {"base_like", "large_like", "odd", "utf8", "hubert", "fp16", "bf16"};
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/ref/%s", MP_TEST_DATA, configs[c]);
        char *ref_path = join(dir, "reference.json");
        json_error_t jerr;
        json_t *ref = json_load_file(ref_path, 0, &jerr);
        if (!ref) MP_FAILF("%s:%d: %s", ref_path, jerr.line, jerr.text);
        mp_model *m = NULL;
        MP_ASSERT_OK(mp_model_load(dir, NULL, &m));
        mp__state *st = NULL;
        MP_ASSERT_OK(mp__state_create(m, &st));
        json_t *inputs = json_object_get(ref, "inputs");
        for (size_t i = 0; i < json_array_size(inputs); i++) {
            json_t *in = json_array_get(inputs, i);
            char *wav = join(dir, json_string_value(json_object_get(in, "wav")));
            const char *want = json_string_value(json_object_get(in, "text"));
            MP_ASSERT(want);
            mp_audio_config acfg = mp_audio_default_config();
            mp_audio *a = NULL;
            MP_ASSERT_OK(mp_audio_load_file(wav, &acfg, &a));
            size_t n = 0;
            const float *pcm = mp_audio_samples(a, &n);
            mp_request_config req = mp_request_default_config();
            mp_result *r = NULL;
            MP_ASSERT_OK(mp__transcribe(m, st, pcm, n, mp_audio_rate(a), &req, &r));
            if (strcmp(mp_result_text(r), want) != 0)
                MP_FAILF("%s/%s: transcript differs:\n  got  \"%s\"\n  want \"%s\"", configs[c],
                         json_string_value(json_object_get(in, "name")), mp_result_text(r), want);
            MP_ASSERT_NEAR(mp_result_duration_s(r), (double)n / 16000.0, 1e-6);
            mp_result_free(r);
            mp_audio_free(a);
            free(wav);
        }
        mp__state_free(st);
        mp_model_free(m);
        json_decref(ref);
        free(ref_path);
    }
}

static const mp_test_case cases[] = {
    {"base_like", test_base_like}, {"large_like", test_large_like}, {"odd", test_odd},
    {"utf8", test_utf8},           {"hubert", test_hubert},         {"fp16", test_fp16},
    {"bf16", test_bf16},
    {"wav_input", test_wav_input}, {"transcribe", test_transcribe},
};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--dir") == 0) {
        if (argc < 3) {
            fprintf(stderr, "usage: %s --dir FIXTURE_DIR...\n", argv[0]);
            return 2;
        }
        for (int i = 2; i < argc; i++) {
            double w = check_dir(argv[i]);
            printf("parity %s: ok (worst max|diff| / max(1, max|logit|) = %.3g)\n", argv[i], w);
        }
        return 0;
    }
    return mp_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
