/* metrics.c - GET /metrics: the pool statistics and the server's own counters in Prometheus text
 * exposition format 0.0.4; GET /v1/stats: the same as JSON under the original design's names; and
 * the response counters every reply updates. */
#include "server/internal.h"
#include "server/live.h"

#include <stdio.h>
#include <stdlib.h>

const unsigned srv_http_codes[SRV_N_HTTP_CODES] = {200, 204, 400, 401, 404, 405, 408, 413, 415, 499, 500, 503, 504};

void srv_count_response(server *srv, unsigned status, uint64_t bytes) {
    if (status < 400)
        atomic_fetch_add(&srv->http_2xx, 1);
    else if (status < 500)
        atomic_fetch_add(&srv->http_4xx, 1);
    else
        atomic_fetch_add(&srv->http_5xx, 1);
    size_t i = 0;
    while (i < SRV_N_HTTP_CODES && srv_http_codes[i] != status) i++;
    atomic_fetch_add(&srv->http_by_code[i], 1);
    if (srv_cur_req) {
        srv_cur_req->status = status;
        srv_cur_req->bytes_out += bytes;
    }
}

static void metric_head(FILE *f, const char *name, const char *type, const char *help) {
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One-value gauges and counters. */
static void single_values(FILE *f, server *srv, const mp_pool_stats *s) {
    const struct { const char *name, *type, *help; double v; } one[] = {
        {"modelpool_pool_size", "gauge", "Workers in the pool.", s->pool_size},
        {"modelpool_workers_busy", "gauge", "Leased workers.", s->busy_models},
        {"modelpool_workers_available", "gauge", "Idle workers.", s->available_models},
        {"modelpool_queue_depth", "gauge", "Callers waiting for a worker.", s->queue_depth},
        {"modelpool_wait_seconds_max", "gauge", "Longest wait.", s->max_wait_time},
        {"modelpool_wait_seconds_avg", "gauge", "Mean wait.", s->avg_wait_time},
        {"modelpool_audio_seconds_total", "counter", "Audio transcribed.", s->audio_seconds},
        {"modelpool_busy_seconds_total", "counter", "Worker busy time.", s->busy_seconds},
        {"modelpool_real_time_factor", "gauge", "Busy seconds per audio second.", s->real_time_factor},
        {"modelpool_stuck_leases_total", "counter", "Leases held past the limit.", (double)s->stuck_leases},
        {"modelpool_wait_warning", "gauge", "Average wait above the warning threshold.", s->wait_warning},
        {"modelpool_weight_bytes", "gauge", "Shared weights.", (double)s->weight_bytes},
        {"modelpool_scratch_bytes", "gauge", "Workers' private scratch.", (double)s->scratch_bytes},
        {"modelpool_uptime_seconds", "gauge", "Pool uptime.", s->uptime_s},
        {"modelpool_inflight_bytes", "gauge", "Memory held by requests (uploads, decoded audio).",
         (double)atomic_load(&srv->inflight)},
        {"modelpool_http_requests_active", "gauge", "Transcription requests in progress (upload included).",
         (double)atomic_load(&srv->active)},
    };
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        metric_head(f, one[i].name, one[i].type, one[i].help);
        fprintf(f, "%s %.9g\n", one[i].name, one[i].v);
    }
}

/* Queue waits as a Prometheus histogram: unlike the summary's lifetime quantiles, its buckets can be
 * rated over a window (histogram_quantile over rate(..._bucket[5m]) in deploy/alerts.yml), and summed
 * over servers. */
static void wait_histogram(FILE *f, const mp_pool_stats *s) {
    metric_head(f, "modelpool_queue_wait_seconds", "histogram", "Time granted requests waited for a worker.");
    for (int i = 0; i < MP_WAIT_BUCKETS; i++)
        fprintf(f, "modelpool_queue_wait_seconds_bucket{le=\"%g\"} %llu\n", mp_pool_wait_bucket_s(i),
                (unsigned long long)s->wait_le[i]);
    fprintf(f, "modelpool_queue_wait_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)s->wait_count);
    fprintf(f, "modelpool_queue_wait_seconds_sum %.9g\nmodelpool_queue_wait_seconds_count %llu\n", s->wait_sum_s,
            (unsigned long long)s->wait_count);
}

/* Metrics with labels: outcomes, wait/service quantiles and histogram, per-worker counts, response classes. */
static void labelled_values(FILE *f, server *srv, const mp_pool_stats *s) {
    metric_head(f, "modelpool_requests_total", "counter", "Acquire calls by outcome.");
    const struct { const char *outcome; uint64_t n; } outcomes[] = {
        {"completed", s->completed}, {"failed", s->failed}, {"rejected", s->rejected}, {"timed_out", s->timed_out}};
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "modelpool_requests_total{outcome=\"%s\"} %llu\n", outcomes[i].outcome,
                (unsigned long long)outcomes[i].n);
    const struct { const char *name, *help; double q50, q95, q99; } sums[] = {
        {"modelpool_wait_seconds", "Time waiting for a worker.", s->wait_p50, s->wait_p95, s->wait_p99},
        {"modelpool_service_seconds", "Lease hold time.", s->service_p50, s->service_p95, s->service_p99}};
    for (size_t i = 0; i < 2; i++) {
        metric_head(f, sums[i].name, "summary", sums[i].help);
        fprintf(f, "%s{quantile=\"0.5\"} %.6f\n%s{quantile=\"0.95\"} %.6f\n%s{quantile=\"0.99\"} %.6f\n",
                sums[i].name, sums[i].q50, sums[i].name, sums[i].q95, sums[i].name, sums[i].q99);
    }
    wait_histogram(f, s);
    metric_head(f, "modelpool_worker_requests_total", "counter", "Requests per worker.");
    for (int w = 0; w < s->pool_size && w < MP_STATS_MAX_WORKERS; w++)
        fprintf(f, "modelpool_worker_requests_total{worker=\"%d\"} %llu\n", w,
                (unsigned long long)s->worker_requests[w]);
    metric_head(f, "modelpool_http_responses_total", "counter", "HTTP responses by class.");
    fprintf(f, "modelpool_http_responses_total{class=\"2xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_2xx));
    fprintf(f, "modelpool_http_responses_total{class=\"4xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_4xx));
    fprintf(f, "modelpool_http_responses_total{class=\"5xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_5xx));
    metric_head(f, "modelpool_http_requests_total", "counter",
                "HTTP requests by status (modelpool_requests_total counts pool leases: one per 20 s chunk).");
    for (size_t i = 0; i <= SRV_N_HTTP_CODES; i++) {
        unsigned long long n = atomic_load(&srv->http_by_code[i]);
        if (i < SRV_N_HTTP_CODES)
            fprintf(f, "modelpool_http_requests_total{code=\"%u\"} %llu\n", srv_http_codes[i], n);
        else
            fprintf(f, "modelpool_http_requests_total{code=\"other\"} %llu\n", n);
    }
}

/* Responses by status: {"200": n, ..., "other": n}. */
static json_t *codes_json(server *srv) {
    json_t *o = json_object();
    for (size_t i = 0; o && i <= SRV_N_HTTP_CODES; i++) {
        char k[16];
        snprintf(k, sizeof k, "%u", i < SRV_N_HTTP_CODES ? srv_http_codes[i] : 0u);
        json_object_set_new(o, i < SRV_N_HTTP_CODES ? k : "other",
                            json_integer((json_int_t)atomic_load(&srv->http_by_code[i])));
    }
    return o;
}

json_t *srv_stats_json(server *srv) {
    mp_pool_stats s;
    if (mp_pool_get_stats(srv->pool, &s) != MP_OK) return NULL;
    /* the original design's get_statistics() first, under its names */
    json_t *o = json_pack("{s:i, s:I, s:f, s:i, s:i}", "pool_size", s.pool_size, "total_requests",
                          (json_int_t)s.total_requests, "avg_wait_time", s.avg_wait_time, "available_models",
                          s.available_models, "busy_models", s.busy_models);
    json_t *more = json_pack(
        "{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:i, s:f, s:f, s:f, s:f, s:b, s:I, s:I,"
        " s:i, s:I, s:i, s:o}",
        "max_wait_time", s.max_wait_time, "wait_p50", s.wait_p50, "wait_p95", s.wait_p95, "wait_p99", s.wait_p99,
        "service_p50", s.service_p50, "service_p95", s.service_p95, "service_p99", s.service_p99, "queue_depth",
        s.queue_depth, "completed", (json_int_t)s.completed, "failed", (json_int_t)s.failed, "rejected",
        (json_int_t)s.rejected, "timed_out", (json_int_t)s.timed_out, "stuck_leases", (json_int_t)s.stuck_leases,
        "stuck_now", s.stuck_now, "audio_seconds", s.audio_seconds, "busy_seconds", s.busy_seconds,
        "real_time_factor", s.real_time_factor, "uptime_s", s.uptime_s, "wait_warning", s.wait_warning,
        "weight_bytes", (json_int_t)s.weight_bytes, "scratch_bytes", (json_int_t)s.scratch_bytes,
        "n_workers_loaded", s.n_workers_loaded, "inflight_bytes", (json_int_t)atomic_load(&srv->inflight),
        "requests_active", atomic_load(&srv->active), "http_requests", codes_json(srv));
    if (!o || !more) {
        json_decref(o);
        json_decref(more);
        return NULL;
    }
    json_object_update(o, more);
    json_decref(more);
    return o;
}

char *srv_metrics_text(server *srv) {
    mp_pool_stats s;
    if (mp_pool_get_stats(srv->pool, &s) != MP_OK) return NULL;
    /* open_memstream grows the buffer as needed: no fixed cap for many workers */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    single_values(f, srv, &s);
    labelled_values(f, srv, &s);
    live_calls_metrics(srv->live, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
