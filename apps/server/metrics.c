/* metrics.c - GET /metrics: the pool statistics and the server's own counters in Prometheus text
 * exposition format 0.0.4, and the response counters every reply updates. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>

void srv_count_response(server *srv, unsigned status) {
    if (status < 400)
        atomic_fetch_add(&srv->http_2xx, 1);
    else if (status < 500)
        atomic_fetch_add(&srv->http_4xx, 1);
    else
        atomic_fetch_add(&srv->http_5xx, 1);
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

/* Metrics with labels: outcomes, wait/service quantiles, per-worker counts, response classes. */
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
    metric_head(f, "modelpool_worker_requests_total", "counter", "Requests per worker.");
    for (int w = 0; w < s->pool_size && w < MP_STATS_MAX_WORKERS; w++)
        fprintf(f, "modelpool_worker_requests_total{worker=\"%d\"} %llu\n", w,
                (unsigned long long)s->worker_requests[w]);
    metric_head(f, "modelpool_http_responses_total", "counter", "HTTP responses by class.");
    fprintf(f, "modelpool_http_responses_total{class=\"2xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_2xx));
    fprintf(f, "modelpool_http_responses_total{class=\"4xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_4xx));
    fprintf(f, "modelpool_http_responses_total{class=\"5xx\"} %llu\n", (unsigned long long)atomic_load(&srv->http_5xx));
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
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
