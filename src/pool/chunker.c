/* chunker.c - the HuggingFace ASR pipeline's chunking of long inputs, shared by one-shot requests
 * (transcribe.c) and streams (stream.c): overlapping chunks, each run through a forward function,
 * the logits between its strides fed to one incremental decoder (decode/dispatch.c).
 *
 * DESIGN (transformers pipelines/automatic_speech_recognition.py, AutomaticSpeechRecognitionPipeline)
 *   preprocess(): stride_length_s defaults to chunk_length_s / 6 per side; with
 *     align_to = model.config.inputs_to_logits_ratio (320 for wav2vec2-base),
 *     chunk_len = int(round(chunk_length_s * sr / align_to) * align_to), strides likewise.
 *   chunk_iter(): step = chunk_len - stride_left - stride_right; for start in range(0, n, step):
 *     chunk = x[start:start+chunk_len]; left = 0 if start == 0 else stride_left;
 *     is_last = start + chunk_len >= n; right = 0 if is_last else stride_right;
 *     the chunk is used only if len(chunk) > left; stop after the last.
 *   Each chunk goes through the feature extractor on its own (do_normalize per chunk), which
 *   mp__forward does per call.
 *   rescale_stride(): token_n = round(len * ratio), ratio = 1 / inputs_to_logits_ratio;
 *     left_f = round(left / len * token_n), right_f likewise; postprocess() keeps logits
 *     [left_f, token_n - right_f) of each chunk (Python slicing clips at the real frame count),
 *     concatenates them and decodes once.
 *   Python's round() rounds halves to even: rint() under the default FE_TONEAREST mode does too.
 *   Because chunk starts and strides are multiples of the frame stride, the kept frames of
 *   consecutive chunks tile the global frame axis without gap or overlap (chunk k keeps global
 *   frames [k*step_f + left_f, ...)), so the decoder's frame counter stays the global frame index
 *   and word times stay right across chunks.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mp__chunker {
    const mp_model *m;
    mp_request_config req;
    size_t chunk_len, stride_left, stride_right; /* samples at the model rate */
    int stride;                                   /* samples per frame (inputs_to_logits_ratio) */
    int vocab;
    mp__decoder *dec;
    float *logits;                                /* scratch [frames][vocab] for one chunk */
    size_t logits_cap;                            /* floats */
    uint64_t frames_fed;                          /* global index of the next frame to decode */
    float *kept;                                  /* keep_logits: all kept frames [frames][vocab] */
    size_t kept_frames, kept_cap;                 /* frames */
};

/* int(round(seconds * sr / align) * align) with Python's half-to-even round. */
static size_t align_samples(double seconds, int sr, int align) {
    double units = rint(seconds * (double)sr / (double)align);
    if (!(units > 0)) return 0;
    return (size_t)units * (size_t)align;
}

/* Chunk length and strides from the request, in samples at the model rate (chunk_len = 0: no
 * chunking). */
static mp_status set_geometry(mp__chunker *c) {
    const mp_model *m = c->m;
    int sr = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;
    double chunk_s = c->req.chunk_length_s, stride_s = c->req.stride_length_s;
    if (!(chunk_s >= 0) || chunk_s > 3600.0 || !isfinite(stride_s) || stride_s > 3600.0)
        return mp__fail(MP_ERR_INVALID_ARG, "request: chunk_length_s %g / stride_length_s %g out of range", chunk_s,
                        stride_s);
    if (chunk_s == 0) return MP_OK;
    if (stride_s < 0) stride_s = chunk_s / 6.0; /* negative: the pipeline's default */
    c->chunk_len = align_samples(chunk_s, sr, c->stride);
    c->stride_left = c->stride_right = align_samples(stride_s, sr, c->stride);
    size_t rf = (size_t)mp__model_receptive_field(m);
    if (c->chunk_len <= c->stride_left + c->stride_right || c->chunk_len < rf)
        return mp__fail(MP_ERR_INVALID_ARG,
                        "request: chunk_length_s %g must exceed twice stride_length_s %g and the model's "
                        "receptive field (%zu samples)",
                        chunk_s, stride_s, rf);
    return MP_OK;
}

mp_status mp__chunker_create(const mp_model *m, const mp_request_config *req, mp__chunker **out) {
    *out = NULL;
    mp__chunker *c = calloc(1, sizeof *c);
    if (!c) return mp__fail(MP_ERR_NOMEM, "transcribe: out of memory");
    c->m = m;
    c->req = req ? *req : mp_request_default_config();
    c->stride = mp__model_stride(m);
    c->vocab = m->hp.vocab;
    mp_status st = set_geometry(c);
    if (st == MP_OK) st = mp__decoder_create(m, &c->req, &c->dec);
    if (st != MP_OK) {
        free(c);
        return st;
    }
    *out = c;
    return MP_OK;
}

void mp__chunker_geometry(const mp__chunker *c, size_t *chunk_len, size_t *stride_left, size_t *stride_right) {
    if (chunk_len) *chunk_len = c->chunk_len;
    if (stride_left) *stride_left = c->stride_left;
    if (stride_right) *stride_right = c->stride_right;
}

static mp_status keep(mp__chunker *c, const float *rows, size_t n_frames) {
    size_t v = (size_t)c->vocab;
    if (c->kept_frames + n_frames > c->kept_cap) {
        size_t cap = c->kept_cap ? c->kept_cap : 1024;
        while (cap < c->kept_frames + n_frames) cap *= 2;
        float *k = realloc(c->kept, cap * v * sizeof *k);
        if (!k) return mp__fail(MP_ERR_NOMEM, "transcribe: out of memory keeping %zu frames of logits", cap);
        c->kept = k;
        c->kept_cap = cap;
    }
    memcpy(c->kept + c->kept_frames * v, rows, n_frames * v * sizeof *rows);
    c->kept_frames += n_frames;
    return MP_OK;
}

mp_status mp__chunker_run(mp__chunker *c, mp__forward_fn fwd, void *ctx, const float *pcm, size_t n, size_t start,
                          int is_last) {
    size_t left = start == 0 ? 0 : c->stride_left;
    size_t right = is_last ? 0 : c->stride_right;
    if (n <= left) return MP_OK; /* chunk_iter: `if chunk.shape[0] > _stride_left` */
    size_t frames = mp__model_n_frames(c->m, n);
    if (frames == 0) return MP_OK; /* shorter than one receptive field: no frame to decode */
    size_t v = (size_t)c->vocab;
    if (frames * v > c->logits_cap) {
        float *l = realloc(c->logits, frames * v * sizeof *l);
        if (!l) return mp__fail(MP_ERR_NOMEM, "transcribe: out of memory for %zu frames of logits", frames);
        c->logits = l;
        c->logits_cap = frames * v;
    }
    if (c->req.cancel_fn && c->req.cancel_fn(c->req.cancel_user_data))
        return mp__fail(MP_ERR_CANCELLED, "transcribe: cancelled before the chunk at %.1f s",
                        (double)start / (c->m->hp.sample_rate > 0 ? c->m->hp.sample_rate : 16000));
    mp_status st = fwd(ctx, pcm, n, c->logits);
    if (st != MP_OK) return st;

    /* rescale_stride: strides from samples to frames, relative to token_n = round(n / stride). */
    double token_n = rint((double)n / (double)c->stride);
    size_t left_f = (size_t)rint((double)left / (double)n * token_n);
    size_t right_f = (size_t)rint((double)right / (double)n * token_n);
    size_t end_f = (size_t)token_n > right_f ? (size_t)token_n - right_f : 0;
    if (end_f > frames) end_f = frames; /* Python slicing clips at the real frame count */
    /* The kept frames must continue the global frame axis; with aligned strides they do. If a
     * rounding ever made them overlap, drop the frames already decoded instead of repeating them. */
    uint64_t first_global = start / (size_t)c->stride + left_f;
    if (first_global < c->frames_fed) left_f += (size_t)(c->frames_fed - first_global);
    if (left_f >= end_f) return MP_OK;
    size_t n_keep = end_f - left_f;
    const float *rows = c->logits + left_f * v;
    st = mp__decoder_feed(c->dec, rows, (int)n_keep);
    if (st != MP_OK) return st;
    c->frames_fed += n_keep;
    if (c->req.keep_logits && (st = keep(c, rows, n_keep)) != MP_OK) return st;
    if (c->req.progress_fn) {
        int rate = c->m->hp.sample_rate > 0 ? c->m->hp.sample_rate : 16000;
        c->req.progress_fn((double)c->frames_fed * (double)c->stride / rate, c->req.progress_user_data);
    }
    return MP_OK;
}

mp_status mp__chunker_finish(mp__chunker *c, double duration_s, mp_result **out) {
    *out = NULL;
    mp_result *res = mp__result_new();
    if (!res) return mp__fail(MP_ERR_NOMEM, "transcribe: out of memory for the result");
    mp_status st = mp__decoder_finish(c->dec, res);
    if (st != MP_OK) {
        mp_result_free(res);
        return st;
    }
    res->duration_s = duration_s;
    if (c->req.keep_logits) {
        /* Hand the kept logits to the result (shrunk to size; an empty input keeps none). */
        res->n_vocab = c->vocab;
        res->n_frames = (int)c->kept_frames;
        if (c->kept_frames) {
            float *k = realloc(c->kept, c->kept_frames * (size_t)c->vocab * sizeof *k);
            res->logits = k ? k : c->kept;
            c->kept = NULL;
            c->kept_cap = c->kept_frames = 0;
        }
    }
    *out = res;
    return MP_OK;
}

mp_status mp__chunker_peek(mp__chunker *c, mp_result **out) {
    *out = NULL;
    mp_result *res = mp__result_new();
    if (!res) return mp__fail(MP_ERR_NOMEM, "transcribe: out of memory for the result");
    mp_status st = mp__decoder_peek(c->dec, res);
    if (st != MP_OK) {
        mp_result_free(res);
        return st;
    }
    /* frames decoded so far x seconds per frame */
    int sr = c->m->hp.sample_rate > 0 ? c->m->hp.sample_rate : 16000;
    res->duration_s = (double)c->frames_fed * (double)c->stride / (double)sr;
    *out = res;
    return MP_OK;
}

void mp__chunker_free(mp__chunker *c) {
    if (!c) return;
    mp__decoder_free(c->dec);
    free(c->logits);
    free(c->kept);
    free(c);
}
