/* mp-server.c - `modelpool serve`: an HTTP front end over one pool (a thin client of modelpool.h).
 *
 * Endpoints
 *   POST /v1/audio/transcriptions   OpenAI-compatible: multipart/form-data with `file` (any audio format the
 *                                   library decodes), `model` (accepted, informational), `response_format`
 *                                   json|text|verbose_json|srt|vtt. Decoding extensions, all per request:
 *                                   `beam` (width; 0 = greedy), `hotwords` (comma-separated
 *                                   word[:boost]), `words` (a word list restricting the output, comma or
 *                                   whitespace separated), `lexicon` (model|none: the model's own word
 *                                   list with beam search), `lm` (on|off, when serve has --lm),
 *                                   `lm_alpha`, `lm_beta`. Any of them implies beam search (width 16).
 *                                   Audio extensions: `channel` (0-based; default: mix to mono, e.g.
 *                                   one side of a stereo call recording), `raw_format` s16le|mulaw|alaw
 *                                   with `raw_rate` (Hz, default 8000) for headerless uploads.
 *                                   `stream=true`: Server-Sent Events as OpenAI streams transcriptions
 *                                   (transcript.text.delta events while the audio runs chunk by chunk,
 *                                   then transcript.text.done with the whole text).
 *   GET  /v1/models                 the one model served (clients such as the OpenAI SDK list models).
 *   GET  /health                    200 {"status":"ok"} while serving, 503 while shutting down.
 *   GET  /metrics                   Prometheus text format: the pool statistics.
 *
 * Concurrency: libmicrohttpd runs a thread per connection; each request blocks only in the pool (which is
 * FIFO-fair, bounded by --queue, and gives up after --timeout-ms), never behind a global model lock. A full
 * queue answers 503 at once (backpressure), a wait past the timeout 504. Request bodies are bounded by
 * --max-body-mb (413 past it).
 */
#include "common/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

typedef struct server {
    mp_model *model;
    mp_pool *pool;
    const char *model_name;
    size_t max_body;
    double max_audio_s;
    int timeout_ms;
    /* Decoding defaults for every request (serve --beam/--lexicon/--lm...); shared read-only. */
    int beam;                  /* 0 = greedy */
    mp_lexicon *lexicon;       /* --lexicon, replaces the model's own word list */
    mp_lm *lm;                 /* --lm */
    float lm_alpha, lm_beta;
    /* Memory held by requests (upload buffers, decoded audio), bytes, against --max-inflight-mb:
     * a request that would pass the budget gets 503, so many large uploads at once cannot exhaust
     * the machine's memory. 0 = no budget. */
    size_t inflight_budget;
    atomic_size_t inflight;
    atomic_int shutting_down;
    atomic_int active;         /* transcription requests between arrival and completion */
    atomic_ullong http_2xx, http_4xx, http_5xx;
} server;

/* Per-connection request state (MHD's con_cls). */
typedef struct request {
    server *srv;
    size_t reserved;      /* bytes of srv->inflight this request holds; given back when it completes */
    size_t n_upload;      /* request body bytes received so far */
    int active;           /* counted in srv->active */
    int admitted;         /* arrived before a shutdown began: runs to its end */
    int over_budget;
    struct MHD_PostProcessor *pp;
    char *body;           /* the `file` part */
    size_t n_body, cap_body;
    int too_large;
    int saw_file;
    char response_format[32];
    char model[128];
    char beam[16];
    char hotwords[4096];
    char words[32768];
    char lexicon[16];
    char lm[8];
    char lm_alpha[32], lm_beta[32];
    char channel[16], raw_format[16], raw_rate[16];
    char stream[8];
    const char *too_long; /* name of a text field over its buffer: the request is refused (400) */
} request;

/* Take bytes from the server's in-flight memory budget for request r; 0 when that would pass it. */
static int reserve(server *srv, request *r, size_t bytes) {
    size_t now = atomic_fetch_add(&srv->inflight, bytes) + bytes;
    if (srv->inflight_budget && now > srv->inflight_budget) {
        atomic_fetch_sub(&srv->inflight, bytes);
        return 0;
    }
    r->reserved += bytes;
    return 1;
}

/* Small text fields arrive in pieces at offset `off`. One that does not fit is not truncated
 * (a cut word list would silently change the answer): the request is refused instead. */
static void append_field(request *r, const char *name, char *dst, size_t cap, const char *data, uint64_t off,
                         size_t size) {
    if (off + size > cap - 1) {
        r->too_long = name;
        return;
    }
    memcpy(dst + off, data, size);
    dst[off + size] = '\0';
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                 const char *content_type, const char *transfer_encoding, const char *data,
                                 uint64_t off, size_t size) {
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    request *r = cls;
    if (!strcmp(key, "file")) {
        r->saw_file = 1;
        if (r->too_large || r->over_budget || size == 0) return MHD_YES;
        if (r->n_body + size > r->cap_body) {
            size_t cap = r->cap_body ? r->cap_body : 1 << 16;
            while (cap < r->n_body + size) cap *= 2;
            if (!reserve(r->srv, r, cap - r->cap_body)) {
                r->over_budget = 1;
                return MHD_YES;
            }
            char *b = realloc(r->body, cap);
            if (!b) {
                r->too_large = 1;
                return MHD_YES;
            }
            r->body = b;
            r->cap_body = cap;
        }
        memcpy(r->body + r->n_body, data, size);
        r->n_body += size;
    }
#define FIELD(f)                                                                                                \
    else if (!strcmp(key, #f)) append_field(r, #f, r->f, sizeof r->f, data, off, size)
    FIELD(response_format);
    FIELD(model);
    FIELD(beam);
    FIELD(hotwords);
    FIELD(words);
    FIELD(lexicon);
    FIELD(lm);
    FIELD(lm_alpha);
    FIELD(lm_beta);
    FIELD(channel);
    FIELD(raw_format);
    FIELD(raw_rate);
    FIELD(stream);
#undef FIELD
    /* other OpenAI fields (language, prompt, temperature, timestamp_granularities[]) are accepted and ignored */
    return MHD_YES;
}

static enum MHD_Result reply(server *srv, struct MHD_Connection *c, unsigned status, const char *type, char *body) {
    /* body is malloc'ed and handed to MHD, which frees it */
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (status < 400)
        atomic_fetch_add(&srv->http_2xx, 1);
    else if (status < 500)
        atomic_fetch_add(&srv->http_4xx, 1);
    else
        atomic_fetch_add(&srv->http_5xx, 1);
    return ret;
}

static enum MHD_Result reply_json(server *srv, struct MHD_Connection *c, unsigned status, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!s) return MHD_NO;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return MHD_NO;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return reply(srv, c, status, "application/json", t);
}

/* OpenAI-style error object. */
static enum MHD_Result reply_error(server *srv, struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *message) {
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    return reply_json(srv, c, status,
                      json_pack("{s:{s:s, s:s, s:s}}", "error", "message", message, "type", type, "code", code));
}

/* A library failure as an OpenAI-style error: the status table's HTTP code, the library's message. */
static enum MHD_Result reply_status(server *srv, struct MHD_Connection *c, mp_status st) {
    char msg[1200];
    snprintf(msg, sizeof msg, "%s: %s", mp_strerror(st), mp_last_error());
    mp_cli_status_info si = mp_cli_status(st);
    return reply_error(srv, c, (unsigned)si.http_status, si.name, msg);
}

/* 503 when a request would take the in-flight memory past --max-inflight-mb. */
static enum MHD_Result reply_busy(server *srv, struct MHD_Connection *c) {
    char msg[160];
    snprintf(msg, sizeof msg, "server busy: requests in progress hold the %zu MB memory budget; retry later",
             srv->inflight_budget >> 20);
    return reply_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_busy", msg);
}

static void metric_head(FILE *f, const char *name, const char *type, const char *help) {
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The pool statistics in Prometheus text exposition format 0.0.4. */
static char *metrics_text(server *srv) {
    mp_pool_stats s;
    if (mp_pool_get_stats(srv->pool, &s) != MP_OK) return NULL;
    /* open_memstream grows the buffer as needed: no fixed cap for many workers */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    const struct { const char *name, *type, *help; double v; } one[] = {
        {"modelpool_pool_size", "gauge", "Workers in the pool.", s.pool_size},
        {"modelpool_workers_busy", "gauge", "Leased workers.", s.busy_models},
        {"modelpool_workers_available", "gauge", "Idle workers.", s.available_models},
        {"modelpool_queue_depth", "gauge", "Callers waiting for a worker.", s.queue_depth},
        {"modelpool_wait_seconds_max", "gauge", "Longest wait.", s.max_wait_time},
        {"modelpool_wait_seconds_avg", "gauge", "Mean wait.", s.avg_wait_time},
        {"modelpool_audio_seconds_total", "counter", "Audio transcribed.", s.audio_seconds},
        {"modelpool_busy_seconds_total", "counter", "Worker busy time.", s.busy_seconds},
        {"modelpool_real_time_factor", "gauge", "Busy seconds per audio second.", s.real_time_factor},
        {"modelpool_stuck_leases_total", "counter", "Leases held past the limit.", (double)s.stuck_leases},
        {"modelpool_wait_warning", "gauge", "Average wait above the warning threshold.", s.wait_warning},
        {"modelpool_weight_bytes", "gauge", "Shared weights.", (double)s.weight_bytes},
        {"modelpool_scratch_bytes", "gauge", "Workers' private scratch.", (double)s.scratch_bytes},
        {"modelpool_uptime_seconds", "gauge", "Pool uptime.", s.uptime_s},
        {"modelpool_inflight_bytes", "gauge", "Memory held by requests (uploads, decoded audio).",
         (double)atomic_load(&srv->inflight)},
        {"modelpool_http_requests_active", "gauge", "Transcription requests in progress (upload included).",
         (double)atomic_load(&srv->active)},
    };
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        metric_head(f, one[i].name, one[i].type, one[i].help);
        fprintf(f, "%s %.9g\n", one[i].name, one[i].v);
    }
    metric_head(f, "modelpool_requests_total", "counter", "Acquire calls by outcome.");
    const struct { const char *outcome; uint64_t n; } outcomes[] = {
        {"completed", s.completed}, {"failed", s.failed}, {"rejected", s.rejected}, {"timed_out", s.timed_out}};
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "modelpool_requests_total{outcome=\"%s\"} %llu\n", outcomes[i].outcome,
                (unsigned long long)outcomes[i].n);
    const struct { const char *name, *help; double q50, q95, q99; } sums[] = {
        {"modelpool_wait_seconds", "Time waiting for a worker.", s.wait_p50, s.wait_p95, s.wait_p99},
        {"modelpool_service_seconds", "Lease hold time.", s.service_p50, s.service_p95, s.service_p99}};
    for (size_t i = 0; i < 2; i++) {
        metric_head(f, sums[i].name, "summary", sums[i].help);
        fprintf(f, "%s{quantile=\"0.5\"} %.6f\n%s{quantile=\"0.95\"} %.6f\n%s{quantile=\"0.99\"} %.6f\n",
                sums[i].name, sums[i].q50, sums[i].name, sums[i].q95, sums[i].name, sums[i].q99);
    }
    metric_head(f, "modelpool_worker_requests_total", "counter", "Requests per worker.");
    for (int w = 0; w < s.pool_size && w < MP_STATS_MAX_WORKERS; w++)
        fprintf(f, "modelpool_worker_requests_total{worker=\"%d\"} %llu\n", w,
                (unsigned long long)s.worker_requests[w]);
    metric_head(f, "modelpool_http_responses_total", "counter", "HTTP responses by class.");
    fprintf(f, "modelpool_http_responses_total{class=\"2xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_2xx));
    fprintf(f, "modelpool_http_responses_total{class=\"4xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_4xx));
    fprintf(f, "modelpool_http_responses_total{class=\"5xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_5xx));
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

#define MAX_HOTWORDS 64
#define MAX_WORDS 8192

/* Parse "word[:boost],word[:boost]" in place into hot[]. Returns the count, or -1 with err set. */
static int parse_hotwords(char *s, mp_hotword *hot, size_t cap, char *err, size_t n_err) {
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        if (n == cap) {
            snprintf(err, n_err, "at most %zu hotwords", cap);
            return -1;
        }
        float boost = 5.0f;
        char *colon = strrchr(tok, ':');
        if (colon) {
            *colon = '\0';
            char *end = NULL;
            double b = strtod(colon + 1, &end);
            if (end == colon + 1 || *end || !(b >= -100 && b <= 100)) {
                snprintf(err, n_err, "hotword '%s': boost must be a number in -100..100", tok);
                return -1;
            }
            boost = (float)b;
        }
        hot[n++] = (mp_hotword){.phrase = tok, .boost = boost};
    }
    return (int)n;
}

static int parse_float_field(const char *name, const char *s, float *out, char *err, size_t n_err) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= -100 && v <= 100)) {
        snprintf(err, n_err, "%s must be a number in -100..100", name);
        return 0;
    }
    *out = (float)v;
    return 1;
}

/* The request's decoding settings: the server's defaults, then the request's own fields. hot and
 * words receive what req points to (they live in r); *lex_out owns a per-request word list.
 * Returns 0 with err set when a field is invalid. */
static int request_decoding(server *srv, request *r, mp_request_config *req, mp_hotword *hot, const char **words,
                            mp_lexicon **lex_out, char *err, size_t n_err) {
    *req = mp_request_default_config();
    req->timeout_ms = srv->timeout_ms;
    req->lexicon = srv->lexicon;
    req->lm = srv->lm;
    req->lm_alpha = srv->lm_alpha;
    req->lm_beta = srv->lm_beta;
    long beam = srv->beam;
    int want_beam = 0; /* set by any field that only acts in beam search */
    if (r->beam[0]) {
        char *end = NULL;
        beam = strtol(r->beam, &end, 10);
        if (!end || *end || beam < 0 || beam > 1024) {
            snprintf(err, n_err, "beam must be an integer in 0..1024 (0 = greedy)");
            return 0;
        }
    }
    if (r->hotwords[0]) {
        int n = parse_hotwords(r->hotwords, hot, MAX_HOTWORDS, err, n_err);
        if (n < 0) return 0;
        req->hotwords = hot;
        req->n_hotwords = (size_t)n;
        want_beam |= n > 0;
    }
    if (r->lexicon[0]) {
        if (strcmp(r->lexicon, "model") && strcmp(r->lexicon, "none")) {
            snprintf(err, n_err, "lexicon must be 'model' or 'none'");
            return 0;
        }
        req->use_model_lexicon = !strcmp(r->lexicon, "model");
        if (!req->use_model_lexicon) req->lexicon = NULL;
    }
    if (r->lm[0]) {
        if (strcmp(r->lm, "on") && strcmp(r->lm, "off")) {
            snprintf(err, n_err, "lm must be 'on' or 'off'");
            return 0;
        }
        if (!strcmp(r->lm, "on") && !srv->lm) {
            snprintf(err, n_err, "lm=on, but the server was started without --lm");
            return 0;
        }
        if (!strcmp(r->lm, "off")) req->lm = NULL;
        want_beam |= req->lm != NULL;
    }
    if (r->lm_alpha[0] && !parse_float_field("lm_alpha", r->lm_alpha, &req->lm_alpha, err, n_err)) return 0;
    if (r->lm_beta[0] && !parse_float_field("lm_beta", r->lm_beta, &req->lm_beta, err, n_err)) return 0;
    if (r->words[0]) {
        size_t n = 0;
        for (char *save = NULL, *tok = strtok_r(r->words, ", \t\r\n", &save); tok;
             tok = strtok_r(NULL, ", \t\r\n", &save)) {
            if (n == MAX_WORDS) {
                snprintf(err, n_err, "at most %d words", MAX_WORDS);
                return 0;
            }
            words[n++] = tok;
        }
        if (n) {
            mp_status st = mp_lexicon_from_words(mp_pool_model(srv->pool), words, n, lex_out);
            if (st != MP_OK) {
                snprintf(err, n_err, "words: %s", mp_last_error());
                return 0;
            }
            req->lexicon = *lex_out;
            want_beam = 1;
        }
    }
    if (!r->beam[0] && want_beam && !beam) beam = 16; /* these fields only act in beam search */
    if (beam > 0) {
        req->decoder = MP_DECODER_BEAM;
        req->beam_width = (int)beam;
    }
    return 1;
}

/* The request's audio settings (channel, headerless format). Returns 0 with err set when invalid. */
static int request_audio(server *srv, request *r, mp_audio_config *acfg, char *err, size_t n_err) {
    *acfg = mp_audio_default_config();
    acfg->max_duration_s = srv->max_audio_s; /* bounds the decoded samples a request may hold */
    char *end = NULL;
    if (r->channel[0]) {
        long k = strtol(r->channel, &end, 10);
        if (!end || *end || k < 0 || k > 255) {
            snprintf(err, n_err, "channel must be an integer in 0..255");
            return 0;
        }
        acfg->channel = (int)k;
    }
    if (r->raw_format[0]) {
        if (!strcmp(r->raw_format, "s16le"))
            acfg->raw_format = MP_RAW_S16LE;
        else if (!strcmp(r->raw_format, "mulaw") || !strcmp(r->raw_format, "ulaw"))
            acfg->raw_format = MP_RAW_MULAW;
        else if (!strcmp(r->raw_format, "alaw"))
            acfg->raw_format = MP_RAW_ALAW;
        else {
            snprintf(err, n_err, "raw_format must be s16le, mulaw or alaw");
            return 0;
        }
    }
    if (r->raw_rate[0]) {
        long hz = strtol(r->raw_rate, &end, 10);
        if (!end || *end || hz < 1000 || hz > 384000) {
            snprintf(err, n_err, "raw_rate must be an integer in 1000..384000 (Hz)");
            return 0;
        }
        if (!r->raw_format[0]) {
            snprintf(err, n_err, "raw_rate needs raw_format");
            return 0;
        }
        acfg->raw_rate = (int)hz;
    }
    return 1;
}

/* ---- stream=true: Server-Sent Events ------------------------------------------------------------
 * The response body is produced by sse_read(), which MHD calls on the connection's thread: each call
 * feeds the next second of audio to the mp_stream (a chunk runs on a leased worker whenever one is
 * complete) and sends what the transcript gained since the last event as a transcript.text.delta.
 * Greedy transcripts only grow at the end, so the deltas add up to the final text. A beam search may
 * revise words it already reported: deltas stop at the first revision and the final
 * transcript.text.done event carries the whole text (which clients should use). */
typedef struct sse {
    server *srv;
    mp_audio *audio;       /* the decoded upload */
    const float *pcm;
    size_t n, pos;         /* samples, and how many went into the stream */
    size_t slice;          /* samples per step: one second of input */
    mp_stream *stream;
    mp_lexicon *lex;       /* the request's own word list, referenced by the stream's decoder */
    char *sent;            /* text reported in deltas so far */
    size_t n_sent;
    int revised;           /* the transcript stopped being an extension of what was sent */
    char *out;             /* event bytes not yet handed to MHD */
    size_t n_out, out_pos;
    char *final_text;
    enum { SSE_FEED, SSE_FINISH, SSE_DONE_EVENT, SSE_END } state;
} sse;

static void sse_free(void *cls) {
    sse *e = cls;
    mp_stream_free(e->stream);
    mp_lexicon_free(e->lex);
    mp_audio_free(e->audio);
    free(e->sent);
    free(e->out);
    free(e->final_text);
    free(e);
}

/* Queue one event: "data: <json>\n\n". */
static void sse_event(sse *e, json_t *o) {
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!j) return;
    size_t need = strlen(j) + 9; /* "data: " + json + "\n\n" + NUL */
    char *b = malloc(need);
    if (b) {
        snprintf(b, need, "data: %s\n\n", j);
        free(e->out);
        e->out = b;
        e->n_out = strlen(b);
        e->out_pos = 0;
    }
    free(j);
}

/* A delta for what `text` adds to what was sent, if it extends it. */
static void sse_delta(sse *e, const char *text) {
    size_t n = strlen(text);
    if (e->revised || n <= e->n_sent) return;
    if (strncmp(text, e->sent ? e->sent : "", e->n_sent) != 0) {
        e->revised = 1;
        return;
    }
    char *t = strdup(text);
    if (!t) return;
    sse_event(e, json_pack("{s:s, s:s}", "type", "transcript.text.delta", "delta", text + e->n_sent));
    free(e->sent);
    e->sent = t;
    e->n_sent = n;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse *e = cls;
    while (e->out_pos == e->n_out) {
        mp_status st = MP_OK;
        mp_result *res = NULL;
        switch (e->state) {
        case SSE_FEED: {
            size_t k = e->n - e->pos < e->slice ? e->n - e->pos : e->slice;
            st = mp_stream_write(e->stream, e->pcm + e->pos, k);
            e->pos += k;
            if (st == MP_OK) st = mp_stream_partial(e->stream, &res);
            if (st == MP_OK) sse_delta(e, mp_result_text(res));
            if (e->pos == e->n) e->state = SSE_FINISH;
            break;
        }
        case SSE_FINISH:
            st = mp_stream_finish(e->stream, &res);
            if (st == MP_OK && !(e->final_text = strdup(mp_result_text(res))))
                st = MP_ERR_NOMEM;
            if (st == MP_OK) sse_delta(e, e->final_text);
            e->state = SSE_DONE_EVENT;
            break;
        case SSE_DONE_EVENT:
            sse_event(e, json_pack("{s:s, s:s}", "type", "transcript.text.done", "text", e->final_text));
            e->state = SSE_END;
            break;
        case SSE_END:
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        mp_result_free(res);
        if (st != MP_OK) {
            /* the status line (200) is gone: the error travels as an event, as OpenAI's streams do */
            char msg[1200];
            snprintf(msg, sizeof msg, "%s: %s", mp_strerror(st), mp_last_error());
            sse_event(e, json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "code",
                                   mp_cli_status(st).name, "message", msg));
            e->state = SSE_END;
        }
    }
    size_t k = e->n_out - e->out_pos < max ? e->n_out - e->out_pos : max;
    memcpy(buf, e->out + e->out_pos, k);
    e->out_pos += k;
    return (ssize_t)k;
}

/* Answer with an event stream. Takes audio and lex (freed on every path). The first chunk runs here
 * (and a short input to its end), so a full queue or a timeout is still an HTTP 503/504. */
static enum MHD_Result reply_sse(server *srv, struct MHD_Connection *c, mp_audio *audio, mp_lexicon *lex,
                                 const mp_request_config *req) {
    sse *e = calloc(1, sizeof *e);
    if (!e) {
        mp_audio_free(audio);
        mp_lexicon_free(lex);
        return reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "MP_ERR_NOMEM", "out of memory");
    }
    e->srv = srv;
    e->audio = audio;
    e->lex = lex;
    e->pcm = mp_audio_samples(audio, &e->n);
    int rate = mp_audio_rate(audio);
    e->slice = (size_t)rate; /* one second per step */
    size_t first = req->chunk_length_s > 0 ? (size_t)(req->chunk_length_s * rate) + 1 : e->n;
    if (first > e->n) first = e->n;
    mp_result *res = NULL;
    mp_status st = mp_stream_create(srv->pool, rate, req, &e->stream);
    if (st == MP_OK) st = mp_stream_write(e->stream, e->pcm, first);
    e->pos = first;
    if (st == MP_OK && first == e->n) {
        st = mp_stream_finish(e->stream, &res);
        if (st == MP_OK && !(e->final_text = strdup(mp_result_text(res)))) st = MP_ERR_NOMEM;
        if (st == MP_OK) sse_delta(e, e->final_text);
        e->state = SSE_DONE_EVENT;
    } else if (st == MP_OK) {
        st = mp_stream_partial(e->stream, &res);
        if (st == MP_OK) sse_delta(e, mp_result_text(res));
        e->state = SSE_FEED;
    }
    mp_result_free(res);
    if (st != MP_OK) {
        sse_free(e);
        return reply_status(srv, c, st);
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, e, sse_free);
    if (!resp) {
        sse_free(e);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    atomic_fetch_add(&srv->http_2xx, 1);
    return ret;
}

static enum MHD_Result transcribe(server *srv, struct MHD_Connection *c, request *r) {
    if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body over the %zu MB limit", srv->max_body >> 20);
        return reply_error(srv, c, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", msg);
    }
    if (r->over_budget) return reply_busy(srv, c);
    if (!r->saw_file || r->n_body == 0)
        return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "missing_file",
                           "expected multipart/form-data with a non-empty 'file' field");
    const char *fmt = r->response_format[0] ? r->response_format : "json";
    if (strcmp(fmt, "json") && strcmp(fmt, "text") && strcmp(fmt, "verbose_json") && strcmp(fmt, "srt") &&
        strcmp(fmt, "vtt"))
        return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "unsupported_response_format",
                           "response_format must be json, text, verbose_json, srt or vtt");
    if (r->too_long) {
        char msg[128];
        snprintf(msg, sizeof msg, "form field '%s' is too long", r->too_long);
        return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "field_too_long", msg);
    }
    if (r->stream[0] && strcmp(r->stream, "true") && strcmp(r->stream, "false"))
        return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "bad_stream", "stream must be true or false");
    int streaming = !strcmp(r->stream, "true");
    if (streaming && strcmp(fmt, "json") && strcmp(fmt, "text"))
        return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "unsupported_response_format",
                           "stream=true works with response_format json or text");
    mp_request_config req;
    mp_hotword hot[MAX_HOTWORDS];
    const char **word_list = malloc(MAX_WORDS * sizeof *word_list);
    mp_lexicon *req_lex = NULL;
    char err[512];
    if (!word_list) return reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "MP_ERR_NOMEM", "out of memory");
    if (!request_decoding(srv, r, &req, hot, word_list, &req_lex, err, sizeof err)) {
        free(word_list);
        return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "bad_decoding_option", err);
    }

    mp_audio *audio = NULL;
    mp_result *res = NULL;
    mp_audio_config acfg;
    if (!request_audio(srv, r, &acfg, err, sizeof err)) {
        mp_lexicon_free(req_lex);
        free(word_list);
        return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "bad_audio_option", err);
    }
    mp_status st = mp_audio_load_memory(r->body, r->n_body, &acfg, &audio);
    if (st == MP_OK) {
        size_t n = 0;
        const float *pcm = mp_audio_samples(audio, &n);
        if (!reserve(srv, r, n * sizeof(float))) {
            mp_audio_free(audio);
            mp_lexicon_free(req_lex);
            free(word_list);
            return reply_busy(srv, c);
        }
        if (streaming) {
            free(word_list);
            return reply_sse(srv, c, audio, req_lex, &req);
        }
        /* Through a stream rather than mp_pool_transcribe: each chunk (req.chunk_length_s) leases a
         * worker for that chunk alone, so a long upload does not hold a worker for its whole
         * length and short requests interleave with it. Same chunks, same transcript. */
        mp_stream *stream = NULL;
        st = mp_stream_create(srv->pool, mp_audio_rate(audio), &req, &stream);
        if (st == MP_OK) st = mp_stream_write(stream, pcm, n);
        if (st == MP_OK) st = mp_stream_finish(stream, &res);
        mp_stream_free(stream);
    }
    mp_lexicon_free(req_lex);
    free(word_list);
    if (st != MP_OK) {
        mp_audio_free(audio);
        return reply_status(srv, c, st);
    }
    mp_audio_free(audio);
    enum MHD_Result ret;
    if (!strcmp(fmt, "text")) {
        const char *t = mp_result_text(res);
        char *body = malloc(strlen(t) + 2);
        if (body) sprintf(body, "%s\n", t);
        ret = body ? reply(srv, c, MHD_HTTP_OK, "text/plain; charset=utf-8", body) : MHD_NO;
    } else if (!strcmp(fmt, "srt") || !strcmp(fmt, "vtt")) {
        char *body = mp_cli_subtitles(res, fmt[0] == 'v');
        ret = body ? reply(srv, c, MHD_HTTP_OK, fmt[0] == 'v' ? "text/vtt; charset=utf-8" : "text/plain; charset=utf-8",
                           body)
                   : MHD_NO;
    } else if (!strcmp(fmt, "json")) {
        ret = reply_json(srv, c, MHD_HTTP_OK, json_pack("{s:s}", "text", mp_result_text(res)));
    } else {
        json_t *words = json_array();
        for (size_t i = 0; i < mp_result_n_words(res); i++) {
            mp_word w;
            if (mp_result_word(res, i, &w) == MP_OK)
                json_array_append_new(words, json_pack("{s:s, s:f, s:f, s:f}", "word", w.word, "start", w.start_s,
                                                       "end", w.end_s, "confidence", (double)w.confidence));
        }
        double d = mp_result_duration_s(res);
        json_t *seg = json_pack("[{s:i, s:f, s:f, s:s}]", "id", 0, "start", 0.0, "end", d, "text",
                                mp_result_text(res));
        ret = reply_json(srv, c, MHD_HTTP_OK,
                         json_pack("{s:s, s:s, s:f, s:s, s:o, s:o}", "task", "transcribe", "language", "en",
                                   "duration", d, "text", mp_result_text(res), "words", words, "segments", seg));
    }
    mp_result_free(res);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls) {
    (void)version;
    server *srv = cls;
    int is_post = !strcmp(method, "POST");
    int is_transcribe = !strcmp(url, "/v1/audio/transcriptions");

    if (*con_cls == NULL) {
        request *r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->srv = srv;
        *con_cls = r;
        if (is_post && is_transcribe) {
            r->pp = MHD_create_post_processor(c, 64 * 1024, post_iter, r);
            /* Counted from its first byte, upload included. A shutdown either sees this request
             * (and waits for it) or the request sees the shutdown (and gets 503): both sides
             * write, then read the other's variable, with seq_cst atomics. */
            atomic_fetch_add(&srv->active, 1);
            r->active = 1;
            r->admitted = !atomic_load(&srv->shutting_down);
        }
        return MHD_YES;
    }
    request *r = *con_cls;
    if (*upload_data_size) {
        if (r->pp) {
            /* The whole upload counts, not just the file part: a huge text field is refused too. */
            r->n_upload += *upload_data_size;
            if (r->n_upload > srv->max_body + 64 * 1024) r->too_large = 1; /* + room for the form's other fields */
            if (!r->too_large && !r->over_budget) MHD_post_process(r->pp, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (is_transcribe) {
        if (!is_post) return reply_error(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use POST");
        if (!r->pp)
            return reply_error(srv, c, MHD_HTTP_BAD_REQUEST, "bad_content_type",
                               "expected Content-Type multipart/form-data with a 'file' field");
        if (!r->admitted)
            return reply_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "MP_ERR_SHUTDOWN", "server is shutting down");
        return transcribe(srv, c, r);
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply_error(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use GET");
    if (!strcmp(url, "/health")) {
        int down = atomic_load(&srv->shutting_down);
        mp_pool_stats s;
        mp_pool_get_stats(srv->pool, &s);
        return reply_json(srv, c, down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                          json_pack("{s:s, s:i, s:i, s:i}", "status", down ? "shutting_down" : "ok", "workers",
                                    s.pool_size, "busy", s.busy_models, "queue_depth", s.queue_depth));
    }
    if (!strcmp(url, "/metrics")) {
        char *m = metrics_text(srv);
        if (!m) return reply_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics", "statistics unavailable");
        return reply(srv, c, MHD_HTTP_OK, "text/plain; version=0.0.4", m);
    }
    if (!strcmp(url, "/v1/models")) {
        return reply_json(srv, c, MHD_HTTP_OK,
                          json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id",
                                    srv->model_name, "object", "model", "created", 0, "owned_by", "modelpool"));
    }
    return reply_error(srv, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c, (void)toe;
    server *srv = cls;
    request *r = *con_cls;
    if (!r) return;
    atomic_fetch_sub(&srv->inflight, r->reserved);
    if (r->active) atomic_fetch_sub(&srv->active, 1);
    if (r->pp) MHD_destroy_post_processor(r->pp);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_signal, stop_count;

/* Async-signal-safe: note the signal and wake main through the pipe. */
static void on_stop_signal(int sig) {
    int saved = errno;
    stop_signal = sig;
    stop_count++;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(stop_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

/* Wait up to ms for a stop signal; returns how many have arrived. The poll times out now and then
 * because sanitizers (TSan) run a signal handler only when the thread leaves a system call, and a
 * handler waiting for the call it should wake would never run. */
static int wait_stop(int ms) {
    struct pollfd pfd = {.fd = stop_pipe[0], .events = POLLIN};
    if (poll(&pfd, 1, ms) == 1) {
        unsigned char b[16];
        ssize_t r = read(stop_pipe[0], b, sizeof b);
        (void)r;
    }
    return stop_count;
}

static void usage_serve(FILE *f) {
    fprintf(f, "usage: modelpool serve [options]\n"
               "  --model DIR          model directory (default: the embedded model)\n"
               "  --arch NAME          random-weight model instead (base|large|tiny; for testing)\n"
               "  --host ADDR          listen address (default 127.0.0.1)\n"
               "  --port N             TCP port (default 8080; 0 = any free port, printed on start)\n"
               "  --workers N          pool workers (default: number of cores)\n"
               "  --dtype fp32|int8    int8: quantized big matrix products (1/4 of the weight memory)\n"
               "  --queue N            waiting requests before 503 (default 64; 0 = unbounded)\n"
               "  --timeout-ms N       wait for a worker before 504 (default 30000)\n"
               "  --max-body-mb N      largest upload (default 100)\n"
               "  --max-audio-s S      longest audio accepted, seconds (default 1800)\n"
               "  --max-connections N  concurrent connections (default 256)\n"
               "  --max-inflight-mb N  memory all requests may hold at once (uploads, decoded audio);\n"
               "                       past it new requests get 503 (default 2048; 0 = no limit)\n"
               "  --drain-s S          on SIGINT/SIGTERM, wait up to S seconds for requests in progress (default 120)\n"
               "  --beam N             default decoding for requests: beam search of width N (default 0 = greedy)\n"
               "  --lexicon FILE       word list used with beam search instead of the model's own\n"
               "  --lm FILE.arpa       word n-gram language model for beam search (requests: lm=off)\n"
               "  --lm-alpha A         LM weight (default 0.5)\n"
               "  --lm-beta B          word insertion bonus (default 1.0)\n"
               "Request fields beyond OpenAI's: beam, hotwords, words, lexicon (model|none), lm (on|off),\n"
               "lm_alpha, lm_beta; channel, raw_format (s16le|mulaw|alaw), raw_rate.\n"
               "Endpoints: POST /v1/audio/transcriptions, GET /v1/models, /health, /metrics.\n"
               "Stops cleanly on SIGINT/SIGTERM: new requests get 503, requests in progress finish.\n");
}

int mp_cli_serve(int argc, char **argv) {
    const char *dir = NULL, *arch = NULL, *host = "127.0.0.1";
    long port = 8080, workers = 0, queue = 64, timeout_ms = 30000, max_body_mb = 100, max_conn = 256;
    long max_inflight_mb = 2048;
    double max_audio_s = 1800, lm_alpha = -1e9, lm_beta = -1e9, drain_s = 120;
    long beam = 0;
    const char *lexicon_path = NULL, *lm_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_serve(stdout);
            return 0;
        } else if (!strcmp(a, "--model") && has) {
            dir = argv[++i];
        } else if (!strcmp(a, "--arch") && has) {
            arch = argv[++i];
        } else if (!strcmp(a, "--host") && has) {
            host = argv[++i];
        } else if (!strcmp(a, "--port") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], 0, 65535, &port)) return 2;
        } else if (!strcmp(a, "--dtype") && has) {
            if (!mp_cli_parse_dtype("serve", argv[++i])) return 2;
        } else if (!strcmp(a, "--workers") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], 0, MP_STATS_MAX_WORKERS, &workers)) return 2;
        } else if (!strcmp(a, "--queue") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], 0, 1000000, &queue)) return 2;
        } else if (!strcmp(a, "--timeout-ms") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], -1, 86400000, &timeout_ms)) return 2;
        } else if (!strcmp(a, "--max-body-mb") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], 1, 4096, &max_body_mb)) return 2;
        } else if (!strcmp(a, "--max-audio-s") && has) {
            if (!mp_cli_parse_double("serve", a, argv[++i], 1, 86400, &max_audio_s)) return 2;
        } else if (!strcmp(a, "--max-connections") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], 1, 10000, &max_conn)) return 2;
        } else if (!strcmp(a, "--max-inflight-mb") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], 0, 1L << 20, &max_inflight_mb)) return 2;
        } else if (!strcmp(a, "--drain-s") && has) {
            if (!mp_cli_parse_double("serve", a, argv[++i], 0, 86400, &drain_s)) return 2;
        } else if (!strcmp(a, "--beam") && has) {
            if (!mp_cli_parse_long("serve", a, argv[++i], 0, 1024, &beam)) return 2;
        } else if (!strcmp(a, "--lexicon") && has) {
            lexicon_path = argv[++i];
        } else if (!strcmp(a, "--lm") && has) {
            lm_path = argv[++i];
        } else if (!strcmp(a, "--lm-alpha") && has) {
            if (!mp_cli_parse_double("serve", a, argv[++i], -100, 100, &lm_alpha)) return 2;
        } else if (!strcmp(a, "--lm-beta") && has) {
            if (!mp_cli_parse_double("serve", a, argv[++i], -100, 100, &lm_beta)) return 2;
        } else {
            fprintf(stderr, "modelpool serve: unknown or incomplete option '%s'\n", a);
            usage_serve(stderr);
            return 2;
        }
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "modelpool serve: --host must be an IPv4 address, got '%s'\n", host);
        return 2;
    }

    /* SIGINT/SIGTERM run a handler that writes to a pipe main waits on. Blocking them and calling
     * sigwait() is not enough: threads started before main (OpenBLAS starts its thread pool when
     * the library loads) have them unblocked, and a signal arriving while main is not in sigwait()
     * (during the drain) would be delivered to such a thread with its default action: exit. */
    if (pipe(stop_pipe) != 0) {
        fprintf(stderr, "modelpool serve: pipe: %s\n", strerror(errno));
        return 4;
    }
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    server srv = {.max_body = (size_t)max_body_mb << 20, .max_audio_s = max_audio_s, .timeout_ms = (int)timeout_ms,
                  .inflight_budget = (size_t)max_inflight_mb << 20};
    mp_status st = mp_cli_load_model(dir, arch, &srv.model);
    if (st != MP_OK) {
        fprintf(stderr, "modelpool serve: %s: %s\n", mp_strerror(st), mp_last_error());
        return mp_cli_status(st).exit_code;
    }
    mp_request_config defaults = mp_request_default_config();
    srv.beam = (int)beam;
    srv.lm_alpha = lm_alpha > -1e8 ? (float)lm_alpha : defaults.lm_alpha;
    srv.lm_beta = lm_beta > -1e8 ? (float)lm_beta : defaults.lm_beta;
    if ((lexicon_path && (st = mp_lexicon_load(srv.model, lexicon_path, &srv.lexicon)) != MP_OK) ||
        (lm_path && (st = mp_lm_load_arpa(lm_path, &srv.lm)) != MP_OK)) {
        fprintf(stderr, "modelpool serve: %s: %s\n", mp_strerror(st), mp_last_error());
        mp_lexicon_free(srv.lexicon);
        mp_model_free(srv.model);
        return mp_cli_status(st).exit_code;
    }
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = (int)workers;
    pc.queue_capacity = (int)queue;
    pc.preload = 1;
    if ((st = mp_pool_create(srv.model, &pc, &srv.pool)) != MP_OK) {
        fprintf(stderr, "modelpool serve: %s: %s\n", mp_strerror(st), mp_last_error());
        mp_lexicon_free(srv.lexicon);
        mp_lm_free(srv.lm);
        mp_model_free(srv.model);
        return mp_cli_status(st).exit_code;
    }
    mp_model_info mi;
    mp_model_get_info(srv.model, &mi);
    const char *name = arch ? arch : (dir ? dir : mp_cli_default_model());
    const char *slash = strrchr(name, '/');
    srv.model_name = slash && slash[1] ? slash + 1 : name;

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
        &srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, &srv,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conn, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "modelpool serve: cannot listen on %s:%ld: %s\n", host, port, strerror(errno));
        mp_pool_free(srv.pool);
        mp_lexicon_free(srv.lexicon);
        mp_lm_free(srv.lm);
        mp_model_free(srv.model);
        return 4;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)port;
    mp_pool_stats ps;
    mp_pool_get_stats(srv.pool, &ps);
    fprintf(stderr, "modelpool serve: listening on http://%s:%u (model %s, %d workers)\n", host, bound,
            srv.model_name, ps.pool_size);
    fflush(stderr);

    while (wait_stop(200) == 0) {}
    fprintf(stderr, "modelpool serve: signal %d, finishing in-flight requests\n", (int)stop_signal);
    atomic_store(&srv.shutting_down, 1);
    /* Drain: requests in progress run to their end (a long upload needs a worker for each of its
     * chunks, so the pool stays open meanwhile); new ones get 503. A second signal stops waiting. */
    int again = 0;
    for (double waited = 0; atomic_load(&srv.active) > 0 && waited < drain_s && !again; waited += 0.05)
        again = wait_stop(50) > 1;
    if (atomic_load(&srv.active) > 0)
        fprintf(stderr, "modelpool serve: %d request(s) still running%s; stopping them\n", atomic_load(&srv.active),
                again ? " at a second signal" : " after --drain-s");
    mp_pool_shutdown(srv.pool, -1); /* wakes waiters with 503, waits for leases */
    MHD_stop_daemon(d);
    mp_pool_free(srv.pool);
    mp_lexicon_free(srv.lexicon);
    mp_lm_free(srv.lm);
    mp_model_free(srv.model);
    return 0;
}
