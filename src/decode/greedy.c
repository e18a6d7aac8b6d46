/* greedy.c - greedy CTC decoding: per frame the argmax token (first maximal index on ties, as
 * torch.argmax), runs of equal tokens handed to the shared emitter (emit.c) as they end. Identical
 * to HuggingFace's pipeline output (argmax, then Wav2Vec2CTCTokenizer.decode) unless the request
 * splits words at pauses. Incremental: only the current run is kept besides the emitter's output. */
#include "emit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mp__greedy {
    mp__emitter out;
    int64_t frame;         /* frames consumed so far (global index of the next frame) */
    int run_id;            /* token of the current run of equal argmax ids; -1 before the first frame */
    int64_t run_start;
    double run_psum;       /* sum over the run's frames of softmax(chosen token) */
};

mp_status mp__greedy_create(const mp_model *m, const mp_request_config *req, mp__greedy **out) {
    *out = NULL;
    mp__greedy *g = calloc(1, sizeof *g);
    if (!g) return mp__fail(MP_ERR_NOMEM, "greedy decoder: out of memory");
    g->run_id = -1;
    mp_status st = mp__emitter_init(&g->out, m, NULL, mp__pause_frames(m, req->pause_split_s));
    if (st != MP_OK) {
        mp__greedy_free(g);
        return st;
    }
    *out = g;
    return MP_OK;
}

mp_status mp__greedy_feed(mp__greedy *g, const float *logits, int n_frames) {
    int V = g->out.m->n_tokens;
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
                mp_status st = mp__emitter_run(&g->out, g->run_id, g->run_start, g->frame, g->run_psum,
                                               g->frame - g->run_start);
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

/* End the current run (as if the input ended now) into out, then its text and words into res. */
static mp_status finish_into(const mp__greedy *g, mp__emitter *out, mp_result *res) {
    mp_status st = MP_OK;
    if (g->run_id >= 0)
        st = mp__emitter_run(out, g->run_id, g->run_start, g->frame, g->run_psum, g->frame - g->run_start);
    if (st == MP_OK) st = mp__emitter_finish(out, res);
    return st;
}

mp_status mp__greedy_finish(mp__greedy *g, mp_result *res) {
    mp_status st = finish_into(g, &g->out, res);
    g->run_id = -1;
    return st;
}

/* The same on a copy of the emitter, so g goes on decoding. Greedy output only ever grows at the
 * end, so the text is a prefix of the final one. */
mp_status mp__greedy_peek(const mp__greedy *g, mp_result *res) {
    mp__emitter c;
    mp_status st = mp__emitter_copy(&g->out, &c);
    if (st == MP_OK) st = finish_into(g, &c, res);
    mp__emitter_free(&c);
    return st;
}

void mp__greedy_free(mp__greedy *g) {
    if (!g) return;
    mp__emitter_free(&g->out);
    free(g);
}
