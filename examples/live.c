/* live.c - a call transcribed as it arrives: audio goes into an mp_stream one second at a time
 * (as a phone line would deliver it) and the running transcript is printed whenever it grows.
 * Each full chunk (20 s by default) runs on a pool worker leased for that chunk alone.
 * Usage: example-live MODEL_DIR FILE   (prints "partial: ..." lines, then "final: ...") */
#include <modelpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A copy of s that the caller frees (strdup is POSIX, not C11). */
static char *copy_text(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    return c ? memcpy(c, s, n) : NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR AUDIO_FILE\n", argv[0]);
        return 2;
    }
    mp_model *model = NULL;
    mp_pool *pool = NULL;
    mp_audio *audio = NULL;
    mp_stream *stream = NULL;
    mp_result *res = NULL;
    char *shown = NULL;
    mp_status st = mp_model_load(argv[1], NULL, &model);
    if (st == MP_OK) st = mp_pool_create(model, NULL, &pool);
    if (st == MP_OK) st = mp_audio_load_file(argv[2], NULL, &audio); /* stands in for a live line */
    size_t n = 0;
    const float *pcm = audio ? mp_audio_samples(audio, &n) : NULL;
    int rate = audio ? mp_audio_rate(audio) : 0;
    if (st == MP_OK) st = mp_stream_create(pool, rate, NULL, &stream);
    for (size_t pos = 0; st == MP_OK && pos < n; pos += (size_t)rate) {
        size_t k = n - pos < (size_t)rate ? n - pos : (size_t)rate;
        st = mp_stream_write(stream, pcm + pos, k); /* runs a chunk when one is complete */
        mp_result *part = NULL;
        if (st == MP_OK) st = mp_stream_partial(stream, &part);
        if (st == MP_OK && strcmp(mp_result_text(part), shown ? shown : "") != 0) {
            printf("partial: %s\n", mp_result_text(part));
            free(shown);
            shown = copy_text(mp_result_text(part));
        }
        mp_result_free(part);
    }
    if (st == MP_OK) st = mp_stream_finish(stream, &res);
    if (st == MP_OK)
        printf("final: %s\n", mp_result_text(res));
    else
        fprintf(stderr, "error: %s: %s\n", mp_strerror(st), mp_last_error());
    free(shown);
    mp_result_free(res);
    mp_stream_free(stream);
    mp_audio_free(audio);
    mp_pool_free(pool);
    mp_model_free(model);
    return st == MP_OK ? 0 : 1;
}
