/* transcribe.c - one request on one worker: resample to the model rate, cut long inputs into the
 * pipeline's overlapping chunks (chunker.c), run each through the forward pass, decode.
 */
#include "internal.h"

#include <stdlib.h>

typedef struct direct_ctx {
    const mp_model *m;
    mp__state *st;
} direct_ctx;

static mp_status direct_forward(void *ctx, const float *pcm, size_t n, float *logits) {
    direct_ctx *d = ctx;
    return mp__forward(d->m, d->st, pcm, n, logits);
}

/* The pipeline's chunks of x[0..nx) (the whole input when chunking is off or it fits one). */
static mp_status run_chunks(mp__chunker *c, mp__forward_fn fwd, void *ctx, const float *x, size_t nx) {
    size_t chunk_len, stride_left, stride_right;
    mp__chunker_geometry(c, &chunk_len, &stride_left, &stride_right);
    if (chunk_len == 0 || nx <= chunk_len) return mp__chunker_run(c, fwd, ctx, x, nx, 0, 1);
    size_t step = chunk_len - stride_left - stride_right;
    mp_status s = MP_OK;
    for (size_t start = 0; start < nx && s == MP_OK; start += step) {
        size_t len = nx - start < chunk_len ? nx - start : chunk_len;
        int is_last = start + chunk_len >= nx;
        s = mp__chunker_run(c, fwd, ctx, x + start, len, start, is_last);
        if (is_last) break;
    }
    return s;
}

mp_status mp__transcribe_fn(const mp_model *m, mp__forward_fn fwd, void *ctx, const float *pcm, size_t n,
                            int sample_rate, const mp_request_config *req, mp_result **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "transcribe: out is NULL");
    *out = NULL;
    if (!m || !fwd || (!pcm && n)) return mp__fail(MP_ERR_INVALID_ARG, "transcribe: NULL model, forward or samples");
    if (sample_rate <= 0) return mp__fail(MP_ERR_INVALID_ARG, "transcribe: sample rate %d Hz", sample_rate);
    int model_rate = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;

    float *resampled = NULL;
    const float *x = pcm;
    size_t nx = n;
    if (sample_rate != model_rate && n > 0) {
        mp_status rs = mp_resample(pcm, n, sample_rate, model_rate, &resampled, &nx);
        if (rs != MP_OK) return rs;
        x = resampled;
    }

    mp__chunker *c = NULL;
    mp_status s = mp__chunker_create(m, req, &c);
    if (s == MP_OK) s = run_chunks(c, fwd, ctx, x, nx);
    if (s == MP_OK) s = mp__chunker_finish(c, (double)n / (double)sample_rate, out);
    mp__chunker_free(c); /* NULL when creation failed */
    free(resampled);
    return s;
}

mp_status mp__transcribe(const mp_model *m, mp__state *st, const float *pcm, size_t n, int sample_rate,
                         const mp_request_config *req, mp_result **out) {
    if (out) *out = NULL;
    if (!st) return mp__fail(MP_ERR_INVALID_ARG, "transcribe: NULL state");
    direct_ctx ctx = {.m = m, .st = st};
    return mp__transcribe_fn(m, direct_forward, &ctx, pcm, n, sample_rate, req, out);
}
