/* live.c - mp_live: a call transcribed while it is spoken. Partial results every step, final
 * results per utterance at endpoints, a worker leased per step.
 *
 * DESIGN
 *   Audio is resampled to the model rate (mp__resampler) and kept in a window `buf` of model-rate
 *   samples starting at global sample `buf_start`. Frame g (g >= 0) is the network's output for
 *   samples [g * stride, g * stride + rf): a window that starts at a multiple of the stride gives
 *   global frames directly, so any window's logits line up with an offline run's.
 *   Steps run at fixed stream positions, every `interval` samples (partial_interval_s aligned to
 *   the stride): step k runs the network over [ws, k * interval) with
 *   ws = committed * stride - left (clipped at 0), i.e. left context before the first frame not
 *   committed yet, the new audio, and whatever lies beyond. A frame is committed once `right`
 *   samples of audio follow its receptive field; frames after it are tentative: they serve only
 *   the endpoint test and are recomputed by the next step with more context. Fixed positions make
 *   the result independent of how the caller cuts the audio into pieces.
 *   Each step: acquire a lease (req.timeout_ms), mp__lease_forward, release; the decoding runs
 *   after the release, on the caller's thread. Cost per step is the window, about
 *   left + interval + right + rf, against `interval` of new audio (docs/LIVE.md). The left context
 *   is only run where it can sharpen speech: not while the utterance is silent, nor once the
 *   committed frames end in at least `left` of non-speech, nor once the utterance is unsure (a
 *   committed word below final_skip_confidence: its final pass will make the final anyway).
 *   (Skipping every other step while the stream is quiet was tried: 0.15x less network on the
 *   bench's calls, but partials 0.05 s later at p50 and p95, so steps stay on every grid point.)
 *   Endpoints: committed frames whose argmax is the blank or the word delimiter are non-speech;
 *   an utterance with speech ends at the frame where the non-speech run reaches
 *   endpoint_silence_s, or where it reaches max_utterance_s. (Frames without right context are
 *   not trusted for this: at a window's edge the model tends to emit blanks.)
 *   Leading silence: while an utterance has no speech, its committed frames are not fed to the
 *   decoder; the last `lead` of them are kept in a ring and fed when speech starts, so the decoder
 *   sees the blank frames before the first token (as an offline run does) but no long silence.
 *   The decoder's frame 0 is its utterance's first fed frame (`utt_start`); word times are shifted
 *   by it to stream time.
 *   Final pass: at the end of an utterance [utt_start, end), one more network run covers
 *   [utt_start * stride, end * stride + rf + right) and a fresh decoder decodes frames
 *   [utt_start, end) of it: the utterance then sees its whole context, as in an offline run,
 *   instead of short windows. Its left context is the lead (LEAD_S of non-speech before the
 *   first speech frame), its right context `right`, as the steps' (not the whole step: about
 *   0.3 + 0.25 s less per final with the defaults than from `left` before the lead to the step's
 *   end). The whole endpoint silence stays in view: it is what confirms the endpoint (dropping
 *   its second half let words lost to blanks in the windows through). Its normalization
 *   (do_normalize, and conv layer 0's GroupNorm, which spans the input's whole time axis) takes
 *   its statistics from the stream's audio so far, as an offline run takes them from its whole
 *   input, instead of from the pass's own audio: on a GSM-coded synthesized call a pass over an
 *   utterance alone heard TWO (confidence 0.53) where offline and the stream-normalized pass
 *   hear EIGHT; on the other recordings of bench/live-compute.sh nothing changed. (Without the
 *   feature cache the steps keep their window's own statistics.) The statistics are running
 *   sums, updated as audio comes. Skipped when the
 *   utterance ended at an endpoint and every word of its committed decoding has at least
 *   final_skip_confidence: the windows were sure, and the final pass only ever corrected
 *   utterances they were unsure of (docs/LIVE.md). The window keeps the current utterance's
 *   audio for it (max_utterance_s bounds that).
 *   Feature cache (cfg.feature_cache, default on): the conv feature encoder's output for a frame
 *   depends only on the frame's receptive field and the normalization statistics (wav2vec2's
 *   convs have no padding; the only non-local operations are do_normalize and, in group_norm
 *   extractors, conv layer 0's GroupNorm). So the steps normalize with the stream's statistics
 *   too (not their window's: on bench/live-compute.sh's sets the finals, the skipped passes and
 *   the word edits of the partials stayed the same within one), and the stream keeps the
 *   features [frames][hidden] of the frames a later step or final pass may read, all computed
 *   under one snapshot of the statistics: a step runs the conv stack over its new frames only
 *   and the transformer over its window (mp__forward_features / mp__forward_encoder, on one
 *   lease), a final pass only the transformer. When the stream's statistics drift from the
 *   snapshot (mp__input_stats_drift) by over CACHE_DRIFT at a step or FINAL_DRIFT at a final
 *   pass, the cache is dropped and the snapshot retaken: the early seconds of a call, whose
 *   statistics move fast, recompute often; later they settle. The cache is trimmed with the
 *   window (the same frames), so it is bounded as the window is (max_utterance_s).
 *   Memory: the window (the current utterance, or left + interval + right + rf when silent, plus
 *   one resampled slice), the features of its frames (hidden floats per 20 ms frame: 1 KiB for
 *   the embedded model, 3 KiB for base), the logits of one run, the lead ring, one decoder, and
 *   the finals not popped yet.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_SLICE 4096 /* input samples resampled per slice: steps run between slices */
#define LEAD_S 0.3       /* blank frames fed before an utterance's first speech frame, s */
/* Feature cache: largest drift (mp__input_stats_drift: relative change of a conv-0 GroupNorm
 * channel's deviation or mean) of the stream's statistics from those the cached features were
 * computed with, at a step and at a final pass, before the cache is dropped and its features
 * computed again under the current statistics (DESIGN). Measured with bench/live-compute.sh
 * (every set, beam 16): finals equal offline up to 0.3 for both, 5 word edits on GSM speech at
 * 0.5; greedy finals of the bare GSM sample changed 3 words at 0.1 for the pass, none at 0.05. */
#define CACHE_DRIFT 0.3
#define FINAL_DRIFT 0.05

typedef struct final_node {
    mp_result *res;
    double start_s, end_s;
    struct final_node *next;
} final_node;

struct mp_live {
    mp_pool *pool;
    const mp_model *m;
    mp_request_config req;
    mp_live_config cfg;
    int in_rate, rate, stride, rf, vocab;
    double sec_per_frame;
    mp__resampler *rs;

    /* window of model-rate samples [buf_start, buf_start + n_buf) */
    float *buf;
    size_t n_buf, cap;
    uint64_t buf_start;
    uint64_t next_step;          /* model-rate sample position of the next step */
    size_t interval, left, right; /* samples */
    uint64_t endpoint_frames, max_utt_frames, lead_frames;

    float *logits;               /* one step's [frames][vocab] */
    size_t logits_cap;           /* floats */
    float *fp_logits;            /* the final pass's [frames][vocab] */
    size_t fp_cap;

    /* utterance state; frames are global indices */
    uint64_t committed;          /* frames before this are final (fed, held or dropped) */
    mp__decoder *dec;
    uint64_t utt_start;          /* the decoder's frame 0 */
    uint64_t utt_fed;            /* frames fed to the decoder */
    int utt_speech;              /* the utterance has a speech frame */
    int utt_unsure;              /* its final pass will run: steps skip the left context (DESIGN) */
    uint64_t sil_run;            /* trailing non-speech committed frames */
    float *lead;                 /* ring of the last lead_frames held blank frames [lead][vocab] */
    uint64_t n_lead;             /* held frames in the ring (<= lead_frames); the newest is committed-1 */

    mp__input_stats ss;          /* the stream's audio so far: normalization statistics (DESIGN) */
    uint64_t ss_sample, ss_row;  /* next global sample and conv-0 patch row to add to it */

    /* feature cache (cfg.feature_cache, DESIGN): the feature encoder's output [fc_n][hidden] for
     * global frames [fc_f0, fc_f0 + fc_n), every row computed under the statistics fcs */
    float *fc;
    size_t fc_cap;               /* frames */
    uint64_t fc_f0, fc_n;
    mp__input_stats fcs;
    int fcs_set;
    int hidden;

    final_node *head, *tail;
    unsigned char odd;           /* a byte left over from mp_live_write_s16le */
    int has_odd;
    float *s16buf;               /* conversion scratch */
    size_t s16cap;

    uint64_t n_in;               /* input-rate samples written */
    mp_live_stats stats;
    int finished;
    mp_status failed;            /* sticky */
};

mp_live_config mp_live_default_config(void) {
    return (mp_live_config){
        .partial_interval_s = 0.5,
        .left_context_s = 0.3,
        .right_context_s = 0.2,
        .endpoint_silence_s = 0.6,
        .max_utterance_s = 15.0,
        .final_pass = 1,
        .final_skip_confidence = 0.8,
        .feature_cache = 1,
    };
}

/* seconds -> samples at the model rate, rounded to a multiple of the frame stride */
static size_t align_s(double seconds, int rate, int stride) {
    double u = rint(seconds * (double)rate / (double)stride);
    return u > 0 ? (size_t)u * (size_t)stride : 0;
}

static mp_status check_config(const mp_live_config *c) {
    const double v[5] = {c->partial_interval_s, c->left_context_s, c->right_context_s, c->endpoint_silence_s,
                         c->max_utterance_s};
    for (int i = 0; i < 5; i++)
        if (!isfinite(v[i]) || v[i] < 0 || v[i] > 3600.0)
            return mp__fail(MP_ERR_INVALID_ARG, "live: configuration value %g out of range 0..3600 s", v[i]);
    if (c->partial_interval_s < 0.02)
        return mp__fail(MP_ERR_INVALID_ARG, "live: partial_interval_s %g below one frame (0.02 s)",
                        c->partial_interval_s);
    if (c->endpoint_silence_s < 0.02 || c->max_utterance_s < 0.1)
        return mp__fail(MP_ERR_INVALID_ARG, "live: endpoint_silence_s %g or max_utterance_s %g too short",
                        c->endpoint_silence_s, c->max_utterance_s);
    if (!(c->final_skip_confidence >= 0 && c->final_skip_confidence <= 1))
        return mp__fail(MP_ERR_INVALID_ARG, "live: final_skip_confidence %g outside 0..1", c->final_skip_confidence);
    if (c->feature_cache != 0 && c->feature_cache != 1)
        return mp__fail(MP_ERR_INVALID_ARG, "live: feature_cache %d is not 0 or 1", c->feature_cache);
    if (c->left_context_s + c->right_context_s + c->partial_interval_s > 120.0)
        return mp__fail(MP_ERR_INVALID_ARG, "live: window over 120 s");
    return MP_OK;
}

mp_status mp_live_create(mp_pool *pool, int sample_rate, const mp_request_config *req, const mp_live_config *cfg,
                         mp_live **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_create: out is NULL");
    *out = NULL;
    if (!pool) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_create: pool is NULL");
    mp_live_config c = cfg ? *cfg : mp_live_default_config();
    mp_status st = check_config(&c);
    if (st != MP_OK) return st;
    mp_live *s = calloc(1, sizeof *s);
    if (!s) return mp__fail(MP_ERR_NOMEM, "mp_live_create: out of memory");
    s->pool = pool;
    s->m = mp_pool_model(pool);
    s->req = req ? *req : mp_request_default_config();
    s->req.keep_logits = 0;     /* a live stream never keeps a whole call's logits */
    s->req.progress_fn = NULL;  /* steps are the progress */
    s->cfg = c;
    s->in_rate = sample_rate;
    s->rate = s->m->hp.sample_rate > 0 ? s->m->hp.sample_rate : 16000;
    s->stride = mp__model_stride(s->m);
    s->rf = mp__model_receptive_field(s->m);
    s->vocab = s->m->hp.vocab;
    s->sec_per_frame = (double)s->stride / (double)s->rate;
    s->interval = align_s(c.partial_interval_s, s->rate, s->stride);
    if (s->interval == 0) s->interval = (size_t)s->stride;
    s->left = align_s(c.left_context_s, s->rate, s->stride);
    s->right = align_s(c.right_context_s, s->rate, s->stride);
    s->endpoint_frames = (uint64_t)fmax(1.0, rint(c.endpoint_silence_s / s->sec_per_frame));
    s->max_utt_frames = (uint64_t)fmax(1.0, rint(c.max_utterance_s / s->sec_per_frame));
    s->lead_frames = (uint64_t)rint(LEAD_S / s->sec_per_frame);
    s->next_step = s->interval;
    s->lead = malloc((size_t)(s->lead_frames ? s->lead_frames : 1) * (size_t)s->vocab * sizeof *s->lead);
    size_t k0 = (size_t)s->m->conv[0].kernel;
    s->ss.p1 = calloc(k0, sizeof *s->ss.p1);
    s->ss.p2 = calloc(k0 * k0, sizeof *s->ss.p2);
    s->fcs.p1 = calloc(k0, sizeof *s->fcs.p1);
    s->fcs.p2 = calloc(k0 * k0, sizeof *s->fcs.p2);
    s->hidden = s->m->hp.hidden;
    if (!s->lead || !s->ss.p1 || !s->ss.p2 || !s->fcs.p1 || !s->fcs.p2) st = mp__fail(MP_ERR_NOMEM, "mp_live_create: out of memory");
    if (st == MP_OK) st = mp__resampler_create(sample_rate, s->rate, &s->rs);
    if (st == MP_OK) st = mp__decoder_create(s->m, &s->req, &s->dec);
    if (st != MP_OK) {
        mp_live_free(s);
        return st;
    }
    *out = s;
    return MP_OK;
}

void mp_live_free(mp_live *s) {
    if (!s) return;
    while (s->head) {
        final_node *n = s->head;
        s->head = n->next;
        mp_result_free(n->res);
        free(n);
    }
    mp__resampler_free(s->rs);
    mp__decoder_free(s->dec);
    free(s->buf);
    free(s->logits);
    free(s->fp_logits);
    free(s->lead);
    free(s->ss.p1);
    free(s->ss.p2);
    free(s->fcs.p1);
    free(s->fcs.p2);
    free(s->fc);
    free(s->s16buf);
    free(s);
}

/* ---- the sample window ------------------------------------------------------------------------- */

/* Add the audio up to sample `end` (a step's end: a position that does not depend on how the
 * audio was cut into pieces) to the stream's statistics: every sample, and every conv-0 patch
 * that lies wholly before it. Positions only grow. */
static void stats_advance(mp_live *s, uint64_t end) {
    if (end <= s->ss_sample) return;
    const uint64_t k = (uint64_t)s->m->conv[0].kernel, str = (uint64_t)s->m->conv[0].stride;
    mp__input_stats_add(s->m, &s->ss, s->buf + (size_t)(s->ss_sample - s->buf_start), (size_t)(end - s->ss_sample),
                        0);
    s->ss_sample = end;
    uint64_t rows = end >= k ? (end - k) / str + 1 : 0;
    if (rows > s->ss_row)
        mp__input_stats_add(s->m, &s->ss, s->buf + (size_t)(s->ss_row * str - s->buf_start), 0,
                            (size_t)(rows - s->ss_row));
    s->ss_row = rows > s->ss_row ? rows : s->ss_row;
}

static mp_status push(mp_live *s, const float *x, size_t n) {
    return mp__samples_append(&s->buf, &s->n_buf, &s->cap, 16384, x, n, "live");
}

/* The final pass's normalization: the stream's audio so far (NULL before a whole patch). */
static const mp__input_stats *stream_stats(const mp_live *s) { return s->ss.rows > 0 ? &s->ss : NULL; }

static uint64_t minus_left(const mp_live *s, uint64_t frame) {
    uint64_t c = frame * (uint64_t)s->stride;
    return c > s->left ? c - s->left : 0;
}

/* First sample the next step needs: left context before the first uncommitted frame. While the
 * utterance holds no speech, or its committed frames end in at least `left` of non-speech, the
 * window starts at that frame: left context only sharpens speech, and context that is all
 * non-speech adds little (the final pass gives the utterance its context again). That saves
 * left / (left + interval + right) of the compute during pauses. */
static uint64_t window_start(const mp_live *s) {
    int speech_near = s->utt_speech && !s->utt_unsure && s->sil_run * (uint64_t)s->stride < s->left;
    return speech_near ? minus_left(s, s->committed) : s->committed * (uint64_t)s->stride;
}

/* First frame of the current utterance (what a final pass starts at): its decoder's frame 0
 * once it has speech; while silent, the oldest frame the lead ring may still hand over. */
static uint64_t utterance_start(const mp_live *s) {
    return s->utt_speech ? s->utt_start : s->committed - s->n_lead;
}

/* Drop samples no later step or final pass will read. */
static void trim(mp_live *s) {
    uint64_t keep = window_start(s);
    if (s->cfg.final_pass) {
        uint64_t u = utterance_start(s) * (uint64_t)s->stride;
        if (u < keep) keep = u;
    }
    uint64_t keep_f = keep / (uint64_t)s->stride; /* first frame a step or the final pass may read */
    if (s->fc_n && keep_f > s->fc_f0) {
        uint64_t d = keep_f - s->fc_f0 < s->fc_n ? keep_f - s->fc_f0 : s->fc_n;
        size_t h = (size_t)s->hidden;
        memmove(s->fc, s->fc + (size_t)d * h, (size_t)(s->fc_n - d) * h * sizeof *s->fc);
        s->fc_f0 += d;
        s->fc_n -= d;
    }
    uint64_t pending = s->ss_row * (uint64_t)s->m->conv[0].stride; /* patches not in the statistics yet */
    if (pending < keep) keep = pending;
    if (keep <= s->buf_start) return;
    size_t drop = (size_t)(keep - s->buf_start);
    if (drop > s->n_buf) drop = s->n_buf;
    memmove(s->buf, s->buf + drop, (s->n_buf - drop) * sizeof *s->buf);
    s->n_buf -= drop;
    s->buf_start += drop;
}

/* The start of a network run: *logits grown to frames x vocab, a worker leased for this run
 * alone (the wait counted in the stats); *t1 = when the lease came. */
static mp_status begin_run(mp_live *s, size_t frames, float **logits, size_t *cap, mp_lease **lease, double *t1) {
    size_t need = frames * (size_t)s->vocab;
    if (need > *cap) {
        float *l = realloc(*logits, need * sizeof *l);
        if (!l) return mp__fail(MP_ERR_NOMEM, "live: out of memory for %zu frames of logits", frames);
        *logits = l;
        *cap = need;
    }
    double t0 = mp__now_s();
    mp_status st = mp_pool_acquire(s->pool, s->req.timeout_ms, lease);
    *t1 = mp__now_s();
    s->stats.wait_s += *t1 - t0;
    return st;
}

/* Run the network over samples [ws, ws + n) of the window into *logits (grown as needed):
 * one lease for this run alone. */
static mp_status run_network(mp_live *s, uint64_t ws, size_t n, size_t frames, float **logits, size_t *cap,
                             const mp__input_stats *stats) {
    double t1 = 0;
    mp_lease *lease = NULL;
    mp_status st = begin_run(s, frames, logits, cap, &lease, &t1);
    if (st != MP_OK) return st;
    st = mp__lease_forward_stats(lease, s->buf + (size_t)(ws - s->buf_start), n, stats, *logits);
    if (st != MP_OK) mp__lease_mark_failed(lease);
    mp_lease_release(lease);
    s->stats.compute_s += mp__now_s() - t1;
    s->stats.computed_audio_s += (double)n / (double)s->rate;
    s->stats.feature_audio_s += (double)n / (double)s->rate;
    s->stats.steps++;
    return st;
}

/* ---- the feature cache (DESIGN) ------------------------------------------------------------- */

/* At a step (its statistics just advanced): keep the cache while the stream's statistics are
 * within CACHE_DRIFT of the cache's, else drop it and take the current statistics for it. */
static mp_status cache_check(mp_live *s, double tolerance) {
    const mp__input_stats *cur = stream_stats(s);
    if (!cur) return MP_OK; /* not one patch yet: nothing to compute either */
    if (s->fcs_set && mp__input_stats_drift(s->m, cur, &s->fcs) <= tolerance) return MP_OK;
    size_t k = (size_t)s->m->conv[0].kernel;
    double *p1 = s->fcs.p1, *p2 = s->fcs.p2;
    memcpy(p1, cur->p1, k * sizeof *p1);
    memcpy(p2, cur->p2, k * k * sizeof *p2);
    s->fcs = *cur;
    s->fcs.p1 = p1, s->fcs.p2 = p2;
    if (s->fcs_set && s->fc_n) s->stats.cache_resets++;
    s->fcs_set = 1;
    s->fc_n = 0;
    return MP_OK;
}

static mp_status cache_reserve(mp_live *s, uint64_t frames) {
    if (frames <= s->fc_cap) return MP_OK;
    size_t cap = s->fc_cap ? s->fc_cap : 64;
    while (cap < frames) cap *= 2;
    float *f = realloc(s->fc, cap * (size_t)s->hidden * sizeof *f);
    if (!f) return mp__fail(MP_ERR_NOMEM, "live: out of memory for %zu frames of features", cap);
    s->fc = f;
    s->fc_cap = cap;
    return MP_OK;
}

/* Features of frames [g0, g1) into dst, from the window's samples under the cache's statistics. */
static mp_status cache_compute(mp_live *s, mp_lease *lease, uint64_t g0, uint64_t g1, float *dst) {
    uint64_t a = g0 * (uint64_t)s->stride;
    size_t n = (size_t)(g1 - g0 - 1) * (size_t)s->stride + (size_t)s->rf;
    if (a < s->buf_start || a + n > s->buf_start + s->n_buf)
        return mp__fail(MP_ERR_INTERNAL, "live: features of frames %llu..%llu need audio not held",
                        (unsigned long long)g0, (unsigned long long)g1);
    s->stats.feature_audio_s += (double)n / (double)s->rate;
    return mp__lease_features(lease, s->buf + (size_t)(a - s->buf_start), n, &s->fcs, dst);
}

/* Make the cache hold frames [g0, g1), computing the ones it lacks (before or after it). */
static mp_status cache_cover(mp_live *s, mp_lease *lease, uint64_t g0, uint64_t g1) {
    const size_t h = (size_t)s->hidden;
    if (s->fc_n == 0 || g0 > s->fc_f0 + s->fc_n || g1 < s->fc_f0) s->fc_f0 = g0, s->fc_n = 0;
    mp_status st = MP_OK;
    if (g0 < s->fc_f0) {
        uint64_t k = s->fc_f0 - g0;
        st = cache_reserve(s, s->fc_n + k);
        if (st != MP_OK) return st;
        memmove(s->fc + (size_t)k * h, s->fc, (size_t)s->fc_n * h * sizeof *s->fc);
        s->fc_n += k;
        s->fc_f0 = g0;
        st = cache_compute(s, lease, g0, g0 + k, s->fc);
    }
    uint64_t end = s->fc_f0 + s->fc_n;
    if (st == MP_OK && g1 > end) {
        st = cache_reserve(s, s->fc_n + (g1 - end));
        if (st == MP_OK) st = cache_compute(s, lease, end, g1, s->fc + (size_t)s->fc_n * h);
        if (st == MP_OK) s->fc_n += g1 - end;
    }
    if (st != MP_OK) s->fc_n = 0;
    return st;
}

/* run_network with the feature cache: frames [f0, f0 + frames) of features (computed where the
 * cache lacks them), then the transformer over them; one lease for both. */
static mp_status run_cached(mp_live *s, uint64_t f0, size_t frames, float **logits, size_t *cap) {
    double t1 = 0;
    mp_lease *lease = NULL;
    mp_status st = begin_run(s, frames, logits, cap, &lease, &t1);
    if (st != MP_OK) return st;
    st = cache_cover(s, lease, f0, f0 + frames);
    if (st == MP_OK)
        st = mp__lease_encoder(lease, s->fc + (size_t)(f0 - s->fc_f0) * (size_t)s->hidden, frames, *logits);
    if (st != MP_OK) mp__lease_mark_failed(lease);
    mp_lease_release(lease);
    s->stats.compute_s += mp__now_s() - t1;
    s->stats.computed_audio_s += (double)frames * s->sec_per_frame;
    s->stats.steps++;
    return st;
}

/* The cache is in use for this run: asked for, and the stream has statistics to compute under. */
static int cached(const mp_live *s) { return s->cfg.feature_cache && s->fcs_set; }

/* ---- utterances -------------------------------------------------------------------------------- */

static int is_speech(const mp_live *s, const float *row) {
    int best = 0;
    for (int v = 1; v < s->vocab; v++)
        if (row[v] > row[best]) best = v;
    return best != s->m->pad_id && best != s->m->word_delim_id;
}

/* Shift a decoder result's word times by the utterance's start into *dst (a new result). */
static mp_status shifted(const mp_live *s, const mp_result *src, mp_result **dst) {
    *dst = NULL;
    mp_result *r = mp__result_new();
    if (!r) return mp__fail(MP_ERR_NOMEM, "live: out of memory for a result");
    double t0 = (double)s->utt_start * s->sec_per_frame;
    mp_status st = mp__result_set_text(r, src->text, strlen(src->text));
    for (size_t i = 0; st == MP_OK && i < src->n_words; i++) {
        const mp_word *w = &src->words[i];
        st = mp__result_add_word(r, w->word, strlen(w->word), w->start_s + t0, w->end_s + t0, w->confidence);
    }
    if (st != MP_OK) {
        mp_result_free(r);
        return st;
    }
    *dst = r;
    return MP_OK;
}

typedef enum cut_kind {
    CUT_ENDPOINT, /* silence seen in the steps' windows: the final pass must confirm it */
    CUT_FORCED    /* max_utterance_s or a flush */
} cut_kind;

/* The final pass over the current utterance, which ends at frame `end` (exclusive): one run over
 * [utt_start * stride, end * stride + rf + right) (no further than `total`, the current step's
 * end, so the result does not depend on piece sizes) and a fresh decoder over frames
 * [utt_start, end), into raw (times from utt_start). *trail receives the non-speech run this run
 * sees at the end of [utt_start, end). */
static mp_status final_pass(mp_live *s, uint64_t end, uint64_t total, mp_result *raw, uint64_t *trail) {
    uint64_t ws = s->utt_start * (uint64_t)s->stride;
    uint64_t we = end * (uint64_t)s->stride + (uint64_t)s->rf + s->right;
    if (we > total) we = total;
    if (ws < s->buf_start) return mp__fail(MP_ERR_INTERNAL, "live: utterance audio already dropped");
    size_t n = (size_t)(we - ws);
    size_t frames = mp__model_n_frames(s->m, n);
    uint64_t f0 = ws / (uint64_t)s->stride;
    if (f0 + frames < end) return mp__fail(MP_ERR_INTERNAL, "live: final pass short of the utterance end");
    mp_status st = s->cfg.feature_cache ? cache_check(s, FINAL_DRIFT) : MP_OK;
    if (st == MP_OK)
        st = cached(s) ? run_cached(s, f0, frames, &s->fp_logits, &s->fp_cap)
                       : run_network(s, ws, n, frames, &s->fp_logits, &s->fp_cap, stream_stats(s));
    if (st != MP_OK) return st;
    const float *rows = s->fp_logits + (size_t)(s->utt_start - f0) * (size_t)s->vocab;
    uint64_t n_utt = end - s->utt_start;
    *trail = 0;
    while (*trail < n_utt && !is_speech(s, rows + (size_t)(n_utt - 1 - *trail) * (size_t)s->vocab)) (*trail)++;
    mp__decoder *d = NULL;
    st = mp__decoder_create(s->m, &s->req, &d);
    if (st == MP_OK) st = mp__decoder_feed(d, rows, (int)n_utt);
    if (st == MP_OK) st = mp__decoder_finish(d, raw);
    mp__decoder_free(d);
    return st;
}

/* The committed decoding is final enough: some words, each at least final_skip_confidence. */
static int confident(const mp_live *s, const mp_result *r) {
    if (!(s->cfg.final_skip_confidence > 0) || r->n_words == 0) return 0;
    for (size_t i = 0; i < r->n_words; i++)
        if (r->words[i].confidence < s->cfg.final_skip_confidence) return 0;
    return 1;
}

/* The final of the utterance ending at `end` into raw: the committed decoding, or the final
 * pass (with_pass set) when asked for and the committed decoding is not confident (DESIGN). */
static mp_status final_result(mp_live *s, uint64_t end, uint64_t total, cut_kind kind, mp_result **raw,
                              uint64_t *trail, int *with_pass) {
    *with_pass = 0;
    if (!s->cfg.final_pass || !s->utt_speech) return mp__decoder_finish(s->dec, *raw);
    if (kind == CUT_ENDPOINT && s->cfg.final_skip_confidence > 0) {
        mp_status st = mp__decoder_peek(s->dec, *raw); /* the search goes on if the pass drops the endpoint */
        if (st != MP_OK || confident(s, *raw)) {
            s->stats.final_passes_skipped += st == MP_OK;
            return st;
        }
        mp_result_free(*raw);
        *raw = mp__result_new();
        if (!*raw) return mp__fail(MP_ERR_NOMEM, "live: out of memory for a final result");
    }
    *with_pass = 1;
    return final_pass(s, end, total, *raw, trail);
}

/* End the current utterance at frame `end` (exclusive), with audio up to sample `total` as right
 * context: queue its final result and start the next utterance there. An endpoint that the final
 * pass, seeing the whole utterance, finds no silence at (fewer than half the endpoint frames) is
 * dropped and the utterance goes on: short windows sometimes lose a word to blanks. */
static mp_status end_utterance(mp_live *s, uint64_t end, uint64_t total, cut_kind kind) {
    mp_result *raw = mp__result_new();
    final_node *n = calloc(1, sizeof *n);
    mp_status st = raw && n ? MP_OK : mp__fail(MP_ERR_NOMEM, "live: out of memory for a final result");
    uint64_t trail = s->endpoint_frames;
    int with_pass = 0;
    if (st == MP_OK) st = final_result(s, end, total, kind, &raw, &trail, &with_pass);
    if (st == MP_OK && with_pass && kind == CUT_ENDPOINT && 2 * trail < s->endpoint_frames) {
        s->sil_run = 0; /* count the silence again from here */
        s->stats.endpoints_dropped++;
        mp_result_free(raw);
        free(n);
        return MP_OK;
    }
    if (st == MP_OK) st = shifted(s, raw, &n->res);
    mp_result_free(raw);
    if (st == MP_OK) {
        mp__decoder_free(s->dec);
        s->dec = NULL;
        st = mp__decoder_create(s->m, &s->req, &s->dec);
    }
    if (st != MP_OK) {
        if (n) mp_result_free(n->res);
        free(n);
        return st;
    }
    n->start_s = s->utt_speech ? (double)s->utt_start * s->sec_per_frame : (double)end * s->sec_per_frame;
    n->end_s = (double)end * s->sec_per_frame;
    n->res->duration_s = n->end_s - n->start_s;
    if (s->tail) s->tail->next = n;
    else s->head = n;
    s->tail = n;
    s->utt_start = s->utt_fed = 0;
    s->utt_speech = 0;
    s->utt_unsure = 0;
    s->sil_run = 0;
    s->n_lead = 0;
    s->stats.finals++;
    return MP_OK;
}

static mp_status feed(mp_live *s, const float *rows, uint64_t n) {
    if (n == 0) return MP_OK;
    mp_status st = mp__decoder_feed(s->dec, rows, (int)n);
    s->utt_fed += n;
    return st;
}

/* Commit global frame g (its logits `row`): feed it, or hold it while the utterance is silent. */
static mp_status commit_frame(mp_live *s, uint64_t g, const float *row, int speech) {
    size_t v = (size_t)s->vocab;
    mp_status st = MP_OK;
    if (!s->utt_speech && !speech) {
        /* leading silence: keep the newest lead_frames in the ring, in frame order by index g */
        if (s->lead_frames) memcpy(s->lead + (size_t)(g % s->lead_frames) * v, row, v * sizeof *row);
        if (s->n_lead < s->lead_frames) s->n_lead++;
    } else {
        if (!s->utt_speech) {
            /* speech starts: the decoder's frame 0 is the oldest held blank frame */
            s->utt_speech = 1;
            s->utt_start = g - s->n_lead;
            for (uint64_t k = s->utt_start; k < g && st == MP_OK; k++)
                st = feed(s, s->lead + (size_t)(k % s->lead_frames) * v, 1);
            s->n_lead = 0;
        }
        if (st == MP_OK) st = feed(s, row, 1);
    }
    s->sil_run = speech ? 0 : s->sil_run + 1;
    s->committed = g + 1;
    return st;
}

/* ---- steps ------------------------------------------------------------------------------------- */

/* Mark the utterance unsure once its final pass is likely to run: always with
 * final_skip_confidence 0, else once a word of its committed decoding is below it. The windows'
 * decoding is then only the partial (the pass makes the final), so the steps skip the left
 * context: on GSM speech it did not make the partials better (17 against 19 word edits between
 * the last partials and the finals on phone-gsm and two arrangements of it, bench/live-compute.sh
 * --gsm) and cost 0.3 s of every 0.5 s step; finals are unchanged there and on the synthesized
 * calls. Once set it stays for the utterance; the gate at its end still decides alone (a beam may
 * revise a word upwards, and the last word may have been cut short). */
static mp_status update_unsure(mp_live *s) {
    if (!s->cfg.final_pass || !s->utt_speech || s->utt_unsure || s->left == 0) return MP_OK;
    if (!(s->cfg.final_skip_confidence > 0)) {
        s->utt_unsure = 1;
        return MP_OK;
    }
    mp_result *r = mp__result_new();
    if (!r) return mp__fail(MP_ERR_NOMEM, "live: out of memory for a result");
    mp_status st = mp__decoder_peek(s->dec, r);
    for (size_t i = 0; st == MP_OK && i < r->n_words; i++)
        if (r->words[i].confidence < s->cfg.final_skip_confidence) s->utt_unsure = 1;
    mp_result_free(r);
    return st;
}

/* One step over the window ending at model-rate sample `end`. all = 1 commits every frame (a
 * flush); else frames need `right` samples after their receptive field. */
static mp_status step(mp_live *s, uint64_t end, int all) {
    stats_advance(s, end);
    uint64_t ws = window_start(s);
    if (end <= ws) return MP_OK;
    size_t n = (size_t)(end - ws);
    size_t frames = mp__model_n_frames(s->m, n);
    uint64_t f0 = ws / (uint64_t)s->stride, ready = f0 + frames;
    if (!all) {
        uint64_t need = (uint64_t)s->rf + s->right;
        uint64_t r = end >= need ? (end - need) / (uint64_t)s->stride + 1 : 0;
        if (r < ready) ready = r;
    }
    if (ready <= s->committed) return MP_OK; /* no frame to commit yet */
    mp_status st = s->cfg.feature_cache ? cache_check(s, CACHE_DRIFT) : MP_OK;
    if (st == MP_OK)
        st = cached(s) ? run_cached(s, f0, frames, &s->logits, &s->logits_cap)
                       : run_network(s, ws, n, frames, &s->logits, &s->logits_cap, NULL);
    size_t v = (size_t)s->vocab;
    for (uint64_t g = s->committed; g < ready && st == MP_OK; g++) {
        const float *row = s->logits + (size_t)(g - f0) * v;
        st = commit_frame(s, g, row, is_speech(s, row));
        if (st == MP_OK && s->utt_speech && s->committed - s->utt_start >= s->max_utt_frames)
            st = end_utterance(s, s->committed, end, CUT_FORCED);
        else if (st == MP_OK && s->utt_speech && s->sil_run >= s->endpoint_frames)
            st = end_utterance(s, s->committed, end, CUT_ENDPOINT);
    }
    if (st == MP_OK) st = update_unsure(s);
    if (st == MP_OK) s->stats.committed_s = (double)s->committed * s->sec_per_frame;
    return st;
}

/* Run every step due, then drop samples no step needs. */
static mp_status run_due(mp_live *s, int *events) {
    uint64_t total = s->buf_start + s->n_buf;
    while (total >= s->next_step) {
        uint64_t n_final = s->stats.finals;
        mp_status st = step(s, s->next_step, 0);
        if (st != MP_OK) return st;
        s->next_step += s->interval;
        if (events) *events |= MP_LIVE_STEP | (s->stats.finals > n_final ? MP_LIVE_FINAL : 0);
    }
    trim(s);
    return MP_OK;
}

static mp_status check_writable(const mp_live *s, const char *fn) {
    if (s->finished) return mp__fail(MP_ERR_MISUSE, "%s: stream already finished", fn);
    if (s->failed != MP_OK) return mp__fail(s->failed, "%s: stream failed earlier", fn);
    return MP_OK;
}

mp_status mp_live_write(mp_live *s, const float *pcm, size_t n_samples, int *events) {
    if (events) *events = 0;
    if (!s || (!pcm && n_samples)) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_write: NULL stream or samples");
    mp_status st = check_writable(s, "mp_live_write");
    if (st != MP_OK) return st;
    while (n_samples > 0 && st == MP_OK) {
        size_t k = n_samples < WRITE_SLICE ? n_samples : WRITE_SLICE;
        const float *o;
        size_t no;
        st = mp__resampler_process(s->rs, pcm, k, &o, &no);
        if (st == MP_OK) st = push(s, o, no);
        if (st == MP_OK) st = run_due(s, events);
        pcm += k;
        n_samples -= k;
        s->n_in += k;
    }
    s->stats.audio_s = (double)s->n_in / (double)s->in_rate;
    if (s->head && events) *events |= MP_LIVE_FINAL;
    if (st != MP_OK) s->failed = st;
    return st;
}

mp_status mp_live_write_s16le(mp_live *s, const void *bytes, size_t n_bytes, int *events) {
    if (events) *events = 0;
    if (!s || (!bytes && n_bytes)) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_write_s16le: NULL stream or bytes");
    mp_status st = check_writable(s, "mp_live_write_s16le");
    if (st != MP_OK) return st;
    const unsigned char *b = bytes;
    size_t total = n_bytes + (size_t)s->has_odd, n = total / 2;
    if (n > s->s16cap) {
        float *f = realloc(s->s16buf, n * sizeof *f);
        if (!f) return mp__fail(MP_ERR_NOMEM, "mp_live_write_s16le: out of memory for %zu samples", n);
        s->s16buf = f;
        s->s16cap = n;
    }
    size_t i = 0, j = 0;
    if (s->has_odd && n > 0) {
        s->s16buf[j++] = (float)(int16_t)(uint16_t)(s->odd | (uint16_t)(b[0] << 8)) / 32768.0f;
        i = 1;
        s->has_odd = 0;
    }
    for (; j < n; j++, i += 2) s->s16buf[j] = (float)(int16_t)(uint16_t)(b[i] | (uint16_t)(b[i + 1] << 8)) / 32768.0f;
    if (i < n_bytes) {
        s->odd = b[i];
        s->has_odd = 1;
    }
    return mp_live_write(s, s->s16buf, n, events);
}

mp_status mp_live_pop_final(mp_live *s, mp_result **out, double *start_s, double *end_s) {
    if (out) *out = NULL;
    if (!s || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_pop_final: NULL argument");
    final_node *n = s->head;
    if (!n) return MP_OK;
    s->head = n->next;
    if (!s->head) s->tail = NULL;
    *out = n->res;
    if (start_s) *start_s = n->start_s;
    if (end_s) *end_s = n->end_s;
    free(n);
    return MP_OK;
}

mp_status mp_live_partial(mp_live *s, mp_result **out) {
    if (out) *out = NULL;
    if (!s || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_partial: NULL argument");
    if (s->failed != MP_OK) return mp__fail(s->failed, "mp_live_partial: stream failed earlier");
    mp_result *raw = mp__result_new();
    if (!raw) return mp__fail(MP_ERR_NOMEM, "live: out of memory for a result");
    mp_status st = mp__decoder_peek(s->dec, raw);
    if (st == MP_OK) st = shifted(s, raw, out);
    mp_result_free(raw);
    if (st == MP_OK) (*out)->duration_s = (double)s->committed * s->sec_per_frame;
    return st;
}

/* Commit every frame of the audio so far and end the utterance (queued when it has speech). */
static mp_status flush(mp_live *s) {
    uint64_t total = s->buf_start + s->n_buf;
    mp_status st = step(s, total, 1);
    if (st == MP_OK && s->utt_speech) st = end_utterance(s, s->committed, total, CUT_FORCED);
    if (st != MP_OK) return st;
    /* back on the step grid: the next step is the first grid point with new audio */
    while (s->next_step <= total) s->next_step += s->interval;
    trim(s);
    s->stats.committed_s = (double)s->committed * s->sec_per_frame;
    return MP_OK;
}

mp_status mp_live_flush(mp_live *s) {
    if (!s) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_flush: NULL stream");
    mp_status st = check_writable(s, "mp_live_flush");
    if (st != MP_OK) return st;
    /* the resampler's delay holds the last few ms written: they belong to this utterance (a
     * flush hands on everything written so far, as mp_live_finish does) */
    const float *o;
    size_t no;
    st = mp__resampler_drain(s->rs, &o, &no);
    if (st == MP_OK) st = push(s, o, no);
    if (st == MP_OK) st = run_due(s, NULL);
    if (st == MP_OK) st = flush(s);
    if (st != MP_OK) s->failed = st;
    return st;
}

mp_status mp_live_finish(mp_live *s) {
    if (!s) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_finish: NULL stream");
    mp_status st = check_writable(s, "mp_live_finish");
    if (st != MP_OK) return st;
    s->finished = 1;
    const float *o;
    size_t no;
    st = mp__resampler_flush(s->rs, &o, &no);
    if (st == MP_OK) st = push(s, o, no);
    /* steps due inside the tail run first, so a finish equals the same audio written and flushed */
    if (st == MP_OK) st = run_due(s, NULL);
    if (st == MP_OK) st = flush(s);
    if (st != MP_OK) s->failed = st;
    return st;
}

mp_status mp_live_get_stats(const mp_live *s, mp_live_stats *out) {
    if (!s || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_live_get_stats: NULL argument");
    *out = s->stats;
    out->buffered_s = (double)s->n_buf / (double)s->rate;
    out->cached_s = (double)s->fc_n * s->sec_per_frame;
    return MP_OK;
}
