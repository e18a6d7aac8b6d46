/* subtitles.c - a result's word times as SubRip (.srt) or WebVTT cues, for `transcribe --format srt|vtt`
 * and the server's response_format=srt|vtt (the formats OpenAI's transcription API offers).
 *
 * Cues are cut from the words so that each stays readable: a new cue starts after a pause of more
 * than CUE_GAP_S between two words, when a cue already holds CUE_MAX_WORDS words, or when the next
 * word would stretch it past CUE_MAX_S seconds. Times are the words' own (20 ms frame resolution).
 */
#include "common/app.h"

#include <stdio.h>
#include <stdlib.h>

#define CUE_GAP_S 1.0
#define CUE_MAX_WORDS 12
#define CUE_MAX_S 7.0

static void stamp(FILE *f, double s, int vtt) {
    if (s < 0) s = 0;
    long long ms = (long long)(s * 1000.0 + 0.5);
    fprintf(f, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, vtt ? '.' : ',',
            ms % 1000);
}

char *mp_app_subtitles(const mp_result *res, int vtt) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    if (vtt) fputs("WEBVTT\n\n", f);
    size_t n = mp_result_n_words(res), i = 0;
    int cue = 0;
    while (i < n) {
        mp_word first, w;
        if (mp_result_word(res, i, &first) != MP_OK) break;
        size_t j = i + 1;
        double end = first.end_s;
        for (; j < n && j - i < CUE_MAX_WORDS; j++) {
            if (mp_result_word(res, j, &w) != MP_OK || w.start_s - end > CUE_GAP_S ||
                w.end_s - first.start_s > CUE_MAX_S)
                break;
            end = w.end_s;
        }
        if (!vtt) fprintf(f, "%d\n", ++cue);
        stamp(f, first.start_s, vtt);
        fputs(" --> ", f);
        stamp(f, end, vtt);
        fputc('\n', f);
        for (size_t k = i; k < j; k++) {
            mp_result_word(res, k, &w);
            fprintf(f, k > i ? " %s" : "%s", w.word);
        }
        fputs("\n\n", f);
        i = j;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
