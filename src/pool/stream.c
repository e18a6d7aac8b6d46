/* stream.c - inputs of any length with bounded memory: mp_stream (push samples, chunk as the
 * HuggingFace ASR pipeline does, a pool lease per chunk) and mp_pool_transcribe_file (decode a
 * file piece by piece into a stream).
 *
 * DESIGN
 *   A stream resamples what is written to the model rate (a soxr stream, mp__resampler) and keeps
 *   a window `buf` of model-rate samples that starts at global sample `buf_start`. The pipeline's
 *   chunk at `start` is not the last one exactly when more than chunk_len samples exist from
 *   `start` on (chunk_iter: is_last = start + chunk_len >= n), so as soon as the window holds more
 *   than chunk_len samples, the chunk [buf_start, buf_start + chunk_len) runs with both strides
 *   and the window slides by step = chunk_len - 2 * stride. mp_stream_finish runs what is left as
 *   the last chunk. So the chunks, and the logits kept from them, are the ones mp__transcribe
 *   cuts from the whole input, and the window never exceeds chunk_len + one write slice.
 *   Each chunk acquires a lease (req.timeout_ms), runs mp__lease_forward, releases: a one-hour
 *   call never holds a worker between chunks. The decoder is incremental (mp__chunker).
 *   With chunk_length_s = 0 (no chunking) the window holds the whole input: memory then grows
 *   with the input, as the caller asked.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define WRITE_SLICE 32768 /* input samples resampled per step: bounds the window's growth */

struct mp_stream {
    mp_pool *pool;
    int timeout_ms;
    int (*cancel_fn)(void *);
    void *cancel_ud;
    int in_rate, model_rate;
    mp__resampler *rs;
    mp__chunker *ch;
    size_t chunk_len, stride_left, stride_right;
    float *buf;              /* model-rate samples [buf_start, buf_start + n_buf) */
    size_t n_buf, cap;
    size_t buf_start;
    uint64_t n_in;           /* samples written, at the input rate */
    int finished;
    mp_status failed;        /* sticky: a failed stream takes no more writes */
};

typedef struct lease_ctx {
    mp_pool *pool;
    int timeout_ms;
    int (*cancel_fn)(void *);
    void *cancel_ud;
} lease_ctx;

/* One chunk on a worker leased for this chunk alone. */
static mp_status lease_forward(void *ctx, const float *pcm, size_t n, float *logits) {
    lease_ctx *lc = ctx;
    mp_lease *lease = NULL;
    mp_status st = mp__pool_acquire_cancellable(lc->pool, lc->timeout_ms, lc->cancel_fn, lc->cancel_ud, &lease);
    if (st != MP_OK) return st;
    st = mp__lease_forward(lease, pcm, n, logits);
    if (st != MP_OK) mp__lease_mark_failed(lease);
    mp_lease_release(lease);
    return st;
}

mp_status mp_stream_create(mp_pool *pool, int sample_rate, const mp_request_config *req, mp_stream **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_stream_create: out is NULL");
    *out = NULL;
    if (!pool) return mp__fail(MP_ERR_INVALID_ARG, "mp_stream_create: pool is NULL");
    mp_request_config rq = req ? *req : mp_request_default_config();

    /* The model's rate, frame stride and vocabulary shape the chunker; no worker is needed yet. */
    const mp_model *m = mp_pool_model(pool);
    mp_status st;

    mp_stream *s = calloc(1, sizeof *s);
    if (!s) return mp__fail(MP_ERR_NOMEM, "mp_stream_create: out of memory");
    s->pool = pool;
    s->timeout_ms = rq.timeout_ms;
    s->cancel_fn = rq.cancel_fn;
    s->cancel_ud = rq.cancel_user_data;
    s->in_rate = sample_rate;
    s->model_rate = m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000;
    st = mp__resampler_create(sample_rate, s->model_rate, &s->rs);
    if (st == MP_OK) st = mp__chunker_create(m, &rq, &s->ch);
    if (st != MP_OK) {
        mp_stream_free(s);
        return st;
    }
    mp__chunker_geometry(s->ch, &s->chunk_len, &s->stride_left, &s->stride_right);
    *out = s;
    return MP_OK;
}

static mp_status push(mp_stream *s, const float *x, size_t n) {
    return mp__samples_append(&s->buf, &s->n_buf, &s->cap, 65536, x, n, "stream");
}

/* Run every chunk known not to be the last, sliding the window. */
static mp_status run_ready(mp_stream *s) {
    if (s->chunk_len == 0) return MP_OK;
    size_t step = s->chunk_len - s->stride_left - s->stride_right;
    lease_ctx lc = {.pool = s->pool, .timeout_ms = s->timeout_ms, .cancel_fn = s->cancel_fn, .cancel_ud = s->cancel_ud};
    while (s->n_buf > s->chunk_len) {
        mp_status st = mp__chunker_run(s->ch, lease_forward, &lc, s->buf, s->chunk_len, s->buf_start, 0);
        if (st != MP_OK) return st;
        memmove(s->buf, s->buf + step, (s->n_buf - step) * sizeof *s->buf);
        s->n_buf -= step;
        s->buf_start += step;
    }
    return MP_OK;
}

mp_status mp_stream_write(mp_stream *s, const float *pcm, size_t n_samples) {
    if (!s || (!pcm && n_samples)) return mp__fail(MP_ERR_INVALID_ARG, "mp_stream_write: NULL stream or samples");
    if (s->finished) return mp__fail(MP_ERR_MISUSE, "mp_stream_write: stream already finished");
    if (s->failed != MP_OK) return mp__fail(s->failed, "mp_stream_write: stream failed earlier");
    mp_status st = MP_OK;
    while (n_samples > 0 && st == MP_OK) {
        size_t k = n_samples < WRITE_SLICE ? n_samples : WRITE_SLICE;
        const float *o;
        size_t no;
        st = mp__resampler_process(s->rs, pcm, k, &o, &no);
        if (st == MP_OK) st = push(s, o, no);
        if (st == MP_OK) st = run_ready(s);
        pcm += k;
        n_samples -= k;
        s->n_in += k;
    }
    if (st != MP_OK) s->failed = st;
    return st;
}

mp_status mp_stream_finish(mp_stream *s, mp_result **out) {
    if (out) *out = NULL;
    if (!s || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_stream_finish: NULL argument");
    if (s->finished) return mp__fail(MP_ERR_MISUSE, "mp_stream_finish: called twice");
    if (s->failed != MP_OK) return mp__fail(s->failed, "mp_stream_finish: stream failed earlier");
    s->finished = 1;
    const float *o;
    size_t no;
    mp_status st = mp__resampler_flush(s->rs, &o, &no);
    if (st == MP_OK) st = push(s, o, no);
    if (st == MP_OK) st = run_ready(s);
    if (st == MP_OK && s->n_buf > 0) {
        lease_ctx lc = {.pool = s->pool, .timeout_ms = s->timeout_ms, .cancel_fn = s->cancel_fn, .cancel_ud = s->cancel_ud};
        st = mp__chunker_run(s->ch, lease_forward, &lc, s->buf, s->n_buf, s->buf_start, 1);
    }
    if (st == MP_OK) st = mp__chunker_finish(s->ch, (double)s->n_in / (double)s->in_rate, out);
    if (st != MP_OK) s->failed = st;
    return st;
}

mp_status mp_stream_partial(mp_stream *s, mp_result **out) {
    if (out) *out = NULL;
    if (!s || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_stream_partial: NULL argument");
    if (s->failed != MP_OK) return mp__fail(s->failed, "mp_stream_partial: stream failed earlier");
    return mp__chunker_peek(s->ch, out);
}

void mp_stream_free(mp_stream *s) {
    if (!s) return;
    mp__resampler_free(s->rs);
    mp__chunker_free(s->ch);
    free(s->buf);
    free(s);
}

mp_status mp_pool_transcribe_file(mp_pool *pool, const char *path, const mp_audio_config *audio_cfg,
                                  const mp_request_config *req, mp_result **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_transcribe_file: out is NULL");
    *out = NULL;
    if (!pool) return mp__fail(MP_ERR_INVALID_ARG, "mp_pool_transcribe_file: pool is NULL");
    mp__audio_reader *rd;
    mp_status st = mp__audio_reader_open_file(path, audio_cfg, &rd);
    if (st != MP_OK) return st;
    mp_stream *s = NULL;
    float *piece = malloc(WRITE_SLICE * sizeof *piece);
    if (!piece) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", mp__audio_reader_name(rd));
    /* The stream resamples from the file's rate straight to the model's (audio_cfg->target_rate
     * only applies to mp_audio_load_*). */
    if (st == MP_OK) st = mp_stream_create(pool, mp__audio_reader_rate(rd), req, &s);
    uint64_t total = 0;
    while (st == MP_OK) {
        size_t n;
        st = mp__audio_reader_read(rd, piece, WRITE_SLICE, &n);
        if (st != MP_OK || n == 0) break;
        total += n;
        st = mp_stream_write(s, piece, n);
    }
    if (st == MP_OK && total == 0) st = mp__fail(MP_ERR_AUDIO_FORMAT, "%s: no audio samples", mp__audio_reader_name(rd));
    if (st == MP_OK) st = mp_stream_finish(s, out);
    mp_stream_free(s);
    free(piece);
    mp__audio_reader_free(rd);
    return st;
}
