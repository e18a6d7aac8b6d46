/*
 * emit.h - the one "label runs -> text and words" emitter that both decoders use
 * (decode-private). Greedy feeds it run by run as frames arrive; beam search feeds it the
 * winning hypothesis's runs at the end (mp__emit_runs). Either way the output follows
 * Wav2Vec2CTCTokenizer's rules, so the two decoders can only differ in which labels they chose.
 */
#ifndef MP_DECODE_EMIT_H
#define MP_DECODE_EMIT_H

#include "internal.h"

/* A growable byte buffer, always NUL-terminated once non-empty. */
typedef struct mp__buf {
    char *p;
    size_t len, cap;
} mp__buf;

typedef struct mp__emitter {
    const mp_model *m;
    char **lower;          /* [n_tokens] lower-cased tokens when do_lower_case, else NULL */
    int owns_lower;        /* lower is this emitter's (a copy borrows its original's) */
    double sec_per_frame;  /* stride / sample_rate */
    mp__buf text;
    size_t pending_spaces; /* delimiters seen since the last character (strip() drops them at the ends) */
    int in_word;
    mp__buf word;
    int64_t w_start, w_end;
    double w_psum;
    int64_t w_frames;
    mp_result *words;      /* finished words (a private result used as a list) */
    int64_t pause_frames;  /* a gap of at least this many frames between two characters ends the
                              word (blank frames longer than pause_split_s); 0 = never */
    const mp_lexicon *lex; /* the word list decoding was restricted to, or NULL: words outside it
                              are marked oov */
    int lex_node;          /* the current word's node in lex's trie, -1 once it left the trie */
} mp__emitter;

/* Frames a blank run must reach to be "longer than pause_split_s" seconds (0 when off). */
int64_t mp__pause_frames(const mp_model *m, double pause_split_s);

/* lex may be NULL; pause_frames from mp__pause_frames(). */
mp_status mp__emitter_init(mp__emitter *e, const mp_model *m, const mp_lexicon *lex, int64_t pause_frames);
/* A run of token id covering frames [start, end) with n_frames frames emitting it (0 for a
 * zero-length delimiter the beam search inserts) and psum = the sum of their softmax
 * probabilities of id. */
mp_status mp__emitter_run(mp__emitter *e, int id, int64_t start, int64_t end, double psum, int64_t n_frames);
/* End of input: write the text and the words into res. */
mp_status mp__emitter_finish(mp__emitter *e, mp_result *res);
/* An independent copy of e (for a peek that must not disturb e). */
mp_status mp__emitter_copy(const mp__emitter *e, mp__emitter *c);
void mp__emitter_free(mp__emitter *e); /* frees what e owns, not e */

#endif /* MP_DECODE_EMIT_H */
