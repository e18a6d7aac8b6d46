/* bench-decode.c - time of the CTC decoders on 8 s of synthetic logits (400 frames x 32 tokens,
 * base-960h's vocabulary): greedy, beam 1/8/16/32 with and without an n-gram LM, and beam 16 with a
 * word lexicon. The logits follow a random word sequence (2-3 frames per letter, blanks and
 * delimiters between) with noise on every token, so the search has real competitors.
 * Usage: bench-decode [--frames N] [--reps N] [--arpa FILE]   (default: a generated 3-gram LM) */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const EN[] = {"<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D",
                                 "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"};
enum { V = 32, N_WORDS = 2000 };

static uint64_t rs = 88172645463325252ULL;
static double urand(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}
static double grand(void) { return sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()); }

static double run(const mp_model *m, const mp_request_config *req, const float *L, int T, int reps, char *text,
                  size_t cap) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = mp__now_s();
        mp__decoder *d = NULL;
        mp_result *res = mp__result_new();
        if (mp__decoder_create(m, req, &d) != MP_OK || mp__decoder_feed(d, L, T) != MP_OK ||
            mp__decoder_finish(d, res) != MP_OK) {
            fprintf(stderr, "decode failed: %s\n", mp_last_error());
            exit(1);
        }
        double dt = mp__now_s() - t0;
        if (dt < best) best = dt;
        snprintf(text, cap, "%s", mp_result_text(res));
        mp__decoder_free(d);
        mp_result_free(res);
    }
    return best;
}

int main(int argc, char **argv) {
    int T = 400, reps = 5;
    const char *arpa = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--arpa") && i + 1 < argc) arpa = argv[++i];
        else {
            fprintf(stderr, "usage: bench-decode [--frames N] [--reps N] [--arpa FILE]\n");
            return 2;
        }
    }
    mp_model *m = calloc(1, sizeof *m);
    m->tokens = calloc(V, sizeof *m->tokens);
    for (int i = 0; i < V; i++) m->tokens[i] = strdup(EN[i]);
    m->n_tokens = V;
    m->pad_id = 0, m->bos_id = 1, m->eos_id = 2, m->unk_id = 3, m->word_delim_id = 4;
    m->hp.n_conv = 1, m->hp.conv_kernel[0] = 400, m->hp.conv_stride[0] = 320, m->hp.sample_rate = 16000;

    /* a vocabulary of random 2-8 letter words */
    static char words[N_WORDS][12];
    const char *wp[N_WORDS];
    for (int w = 0; w < N_WORDS; w++) {
        int n = 2 + (int)(urand() * 7);
        for (int j = 0; j < n; j++) words[w][j] = (char)('a' + (int)(urand() * 26));
        words[w][n] = '\0';
        wp[w] = words[w];
    }
    mp_lexicon *lex = NULL;
    if (mp_lexicon_from_words(m, wp, N_WORDS, &lex) != MP_OK) {
        fprintf(stderr, "lexicon: %s\n", mp_last_error());
        return 1;
    }
    /* a 3-gram ARPA over those words unless one is given */
    char tmp[64] = "";
    if (!arpa) {
        snprintf(tmp, sizeof tmp, "/tmp/bench-decode-%d.arpa", (int)getpid());
        FILE *f = fopen(tmp, "w");
        int n2 = 40000, n3 = 40000;
        fprintf(f, "\\data\\\nngram 1=%d\nngram 2=%d\nngram 3=%d\n\n\\1-grams:\n", N_WORDS + 3, n2, n3);
        fprintf(f, "-1.5\t<unk>\t0\n-99\t<s>\t-0.3\n-1.2\t</s>\n");
        for (int w = 0; w < N_WORDS; w++) fprintf(f, "%.3f\t%s\t%.3f\n", -2 - 2 * urand(), words[w], -0.5 * urand());
        fprintf(f, "\n\\2-grams:\n");
        for (int i = 0; i < n2; i++)
            fprintf(f, "%.3f\t%s %s\t%.3f\n", -0.3 - 2 * urand(), words[(i * 7919) % N_WORDS],
                    words[(i / N_WORDS + i * 31) % N_WORDS], -0.5 * urand());
        fprintf(f, "\n\\3-grams:\n");
        for (int i = 0; i < n3; i++)
            fprintf(f, "%.3f\t%s %s %s\n", -0.2 - urand(), words[(i * 7919) % N_WORDS],
                    words[(i / N_WORDS + i * 31) % N_WORDS], words[(i * 13 + i / 97) % N_WORDS]);
        fprintf(f, "\n\\end\\\n");
        fclose(f);
        arpa = tmp;
    }
    double t0 = mp__now_s();
    mp_lm *lm = NULL;
    if (mp_lm_load_arpa(arpa, &lm) != MP_OK) {
        fprintf(stderr, "lm: %s\n", mp_last_error());
        return 1;
    }
    double t_lm = mp__now_s() - t0;
    if (tmp[0]) unlink(tmp);

    /* logits along a random word sequence */
    float *L = calloc((size_t)T * V, sizeof *L);
    int t = 0;
    while (t < T) {
        const char *w = words[(int)(urand() * N_WORDS)];
        for (const char *c = w; *c && t < T; c++) {
            int id = 0;
            for (int v = 5; v < V; v++)
                if (EN[v][0] == *c - 32) id = v;
            int n = 2 + (urand() < 0.5);
            for (int k = 0; k < n && t < T; k++, t++) L[(size_t)t * V + (size_t)id] = 6;
            if (t < T && urand() < 0.5) L[(size_t)t++ * V] = 6; /* blank */
        }
        for (int k = 0; k < 2 && t < T; k++, t++) L[(size_t)t * V + 4] = 6; /* delimiter */
    }
    for (size_t i = 0; i < (size_t)T * V; i++) L[i] += (float)(1.5 * grand());

    printf("bench-decode: %d frames (%.2f s of audio), vocabulary %d, lexicon %d words, LM order %d "
           "(loaded in %.1f ms), best of %d\n",
           T, T * 0.02, V, N_WORDS, mp_lm_order(lm), t_lm * 1e3, reps);
    struct {
        const char *name;
        int beam, use_lex, use_lm;
    } cfg[] = {{"greedy", 0, 0, 0},        {"beam 1", 1, 0, 0},       {"beam 8", 8, 0, 0},
               {"beam 16", 16, 0, 0},      {"beam 32", 32, 0, 0},     {"beam 8 + LM", 8, 0, 1},
               {"beam 16 + LM", 16, 0, 1}, {"beam 32 + LM", 32, 0, 1}, {"beam 16 + lexicon", 16, 1, 0},
               {"beam 16 + lexicon + LM", 16, 1, 1}};
    printf("%-24s %9s %12s %12s  %s\n", "decoder", "ms", "% of 0.15 s", "% of 1.5 s", "text (start)");
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        mp_request_config req = mp_request_default_config();
        req.decoder = cfg[i].beam ? MP_DECODER_BEAM : MP_DECODER_GREEDY;
        req.beam_width = cfg[i].beam ? cfg[i].beam : 1;
        req.lexicon = cfg[i].use_lex ? lex : NULL;
        req.lm = cfg[i].use_lm ? lm : NULL;
        char text[4096];
        double s = run(m, &req, L, T, reps, text, sizeof text);
        printf("%-24s %9.2f %11.1f%% %11.2f%%  %.40s\n", cfg[i].name, s * 1e3, 100 * s / 0.15, 100 * s / 1.5, text);
    }
    printf("(0.15 s / 1.5 s: the network time for 8 s on the embedded model / wav2vec2-base)\n");
    free(L);
    mp_lm_free(lm);
    mp_lexicon_free(lex);
    mp_model_free(m);
    return 0;
}
