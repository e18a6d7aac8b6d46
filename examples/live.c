/* live.c - a call transcribed as it is spoken (mp_live): audio goes in 20 ms at a time, as a phone
 * line delivers it; the partial result is printed whenever a step changes it, and each utterance's
 * final result when the speaker pauses. Steps lease a pool worker only while they compute.
 * Usage: example-live MODEL_DIR FILE   (prints "partial: ..." and "final: START-END TEXT" lines) */
#include <modelpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print the finals waiting in the stream. */
static mp_status print_finals(mp_live *live) {
    for (;;) {
        mp_result *res = NULL;
        double start_s = 0, end_s = 0;
        mp_status st = mp_live_pop_final(live, &res, &start_s, &end_s);
        if (st != MP_OK || !res) return st;
        printf("final: %.2f-%.2f %s\n", start_s, end_s, mp_result_text(res));
        mp_result_free(res);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR AUDIO_FILE\n", argv[0]);
        return 2;
    }
    mp_model *model = NULL;
    mp_pool *pool = NULL;
    mp_audio *audio = NULL;
    mp_live *live = NULL;
    char shown[4096] = "";
    mp_status st = mp_model_load(argv[1], NULL, &model);
    if (st == MP_OK) st = mp_pool_create(model, NULL, &pool);
    if (st == MP_OK) st = mp_audio_load_file(argv[2], NULL, &audio); /* stands in for a live line */
    size_t n = 0;
    const float *pcm = audio ? mp_audio_samples(audio, &n) : NULL;
    int rate = audio ? mp_audio_rate(audio) : 0;
    size_t frame = (size_t)rate / 50; /* 20 ms */
    if (st == MP_OK) st = mp_live_create(pool, rate, NULL, NULL, &live); /* NULL: default request and steps */
    for (size_t pos = 0; st == MP_OK && pos < n; pos += frame) {
        int events = 0;
        st = mp_live_write(live, pcm + pos, n - pos < frame ? n - pos : frame, &events);
        if (st == MP_OK && (events & MP_LIVE_FINAL)) {
            st = print_finals(live);
            shown[0] = '\0'; /* the next utterance starts with an empty partial */
        }
        mp_result *part = NULL;
        if (st == MP_OK && (events & MP_LIVE_STEP)) st = mp_live_partial(live, &part);
        if (part && strcmp(mp_result_text(part), shown) != 0 && *mp_result_text(part)) {
            printf("partial: %s\n", mp_result_text(part));
            snprintf(shown, sizeof shown, "%s", mp_result_text(part));
        }
        mp_result_free(part);
    }
    if (st == MP_OK) st = mp_live_finish(live); /* the end of the call ends its last utterance */
    if (st == MP_OK) st = print_finals(live);
    if (st != MP_OK) fprintf(stderr, "error: %s: %s\n", mp_strerror(st), mp_last_error());
    mp_live_free(live);
    mp_audio_free(audio);
    mp_pool_free(pool);
    mp_model_free(model);
    return st == MP_OK ? 0 : 1;
}
