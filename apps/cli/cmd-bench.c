/* cmd-bench.c - `modelpool bench`: the original design's experiment on this machine. R callers
 * (threads) each transcribe an S-second clip at once, for a list of pool sizes; one table row (or
 * JSON object) per pool size with wall time, throughput, waits, latencies and peak memory.
 *
 * Each configuration runs in its own child process (fork before any model is loaded, so the
 * parent stays small), so the peak RSS reported (the child's VmHWM) is that run's alone. */
#include "cli/cli.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_RUNS 32
#define BENCH_MAX_REQUESTS 10000

static void usage_bench(FILE *f) {
    fprintf(f,
            "usage: modelpool bench [options]\n"
            "Run R concurrent requests of S seconds of audio through pools of several sizes, each in a\n"
            "fresh process, and report wall time, audio-seconds per wall-second, waits, latencies and\n"
            "peak RSS.\n"
            "\n"
            "  --model DIR          model directory (default: the embedded model)\n"
            "  --arch NAME          random weights of a named architecture instead (base|large|tiny)\n"
            "  --requests R         concurrent callers, one request each (default 30)\n"
            "  --seconds S          clip length in seconds (default 8): a synthetic signal (noise + tones)\n"
            "  --audio FILE         use this file as the clip instead (its whole length)\n"
            "  --workers LIST       pool sizes, comma-separated; 'auto' = number of cores (default 1,2,4,auto)\n"
            "  --dtype fp32|int8    " MP_APP_DTYPE_HELP "\n"
            "  --copies             every worker gets its own copy of the weights (the original design's\n"
            "                       memory, for comparison)\n"
            "  --threads N          BLAS threads per worker (default: cores / workers, at least 1)\n"
            "  --format text|json   text table (default) or a JSON array, one object per pool size\n"
            "\n"
            "JSON fields: workers, copies (weight copies in memory), threads_per_worker, requests, seconds,\n"
            "wall_s, audio_s_per_wall_s, avg_wait_s, max_wait_s, latency_p50_s, latency_p95_s, peak_rss_mb,\n"
            "load_s, weight_mb, scratch_mb_per_worker, real_time_factor, errors, cpu_s, audio_s_per_cpu_s (audio\n"
            "seconds per CPU second: the engine's speed even when other programs share the cores).\n"
            "\n"
            "Examples:\n"
            "  modelpool bench --requests 8 --seconds 4 --workers 1,2,auto\n"
            "  modelpool bench --arch base --copies --format json\n");
    mp_app_print_exit_codes(f);
}

/* What a child reports back through its pipe. Plain data, no pointers. */
typedef struct bench_run {
    int ok;                     /* the run completed (errors may still be > 0) */
    char error[256];            /* why not, when !ok */
    int workers;                /* resolved pool size */
    int copies;                 /* weight copies in memory */
    int threads;                /* BLAS threads per worker */
    int requests;
    double seconds;             /* audio per request, s */
    double load_s;              /* model load + pool creation (workers preloaded), s */
    double wall_s;              /* first request submitted .. last one finished */
    double avg_wait_s, max_wait_s;
    double latency_p50_s, latency_p95_s;
    double peak_rss_mb;
    double weight_mb, scratch_mb_per_worker;
    double rtf;                 /* pool busy seconds / audio seconds */
    int errors;                 /* requests that failed */
    double cpu_s;               /* CPU time (user + system) of the run's process during the requests;
                                   on a shared machine, audio / cpu_s shows the engine's own speed */
} bench_run;

typedef struct bench_opts {
    const char *dir, *arch, *audio_path;
    int requests;
    double seconds;
    int copies;
    int threads;
    mp_dtype dtype;             /* --dtype */
    const float *clip;
    size_t clip_n;
    int clip_rate;
} bench_opts;

/* ---- one configuration (child process) ------------------------------------------------------------ */

typedef struct caller {
    mp_pool *pool;
    const bench_opts *o;
    pthread_barrier_t *start;
    double t_start, t_granted, t_end;
    mp_status st;
    char err[160];              /* mp_last_error() is per thread: keep the caller's */
} caller;

static int online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *caller_main(void *arg) {
    caller *c = arg;
    pthread_barrier_wait(c->start);
    c->t_start = now_s();
    /* acquire, run, release by hand (= mp_pool_transcribe) to see the wait apart from the work */
    mp_lease *lease = NULL;
    c->st = mp_pool_acquire(c->pool, -1, &lease);
    c->t_granted = now_s();
    if (c->st == MP_OK) {
        mp_result *res = NULL;
        c->st = mp_lease_transcribe(lease, c->o->clip, c->o->clip_n, c->o->clip_rate, NULL, &res);
        mp_result_free(res);
        mp_lease_release(lease);
    }
    c->t_end = now_s();
    if (c->st != MP_OK) snprintf(c->err, sizeof c->err, "%s", mp_last_error());
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile of sorted v[n], linear between order statistics (numpy's default). */
static double quantile(const double *v, int n, double q) {
    if (n <= 0) return 0;
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

/* This process's peak resident set: VmHWM from /proc, else ru_maxrss. MB = 2^20 bytes. */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
        fclose(f);
        if (kb >= 0) return kb / 1024.0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* Model and pool (workers preloaded), timed as load_s. 0 with r->error set on failure. */
static int open_pool(const bench_opts *o, int n_workers, bench_run *r, mp_model **model, mp_pool **pool) {
    double t0 = now_s();
    mp_status st = mp_app_load_model(o->dir, o->arch, o->dtype, model);
    if (st != MP_OK) {
        snprintf(r->error, sizeof r->error, "model: %s: %s", mp_strerror(st), mp_last_error());
        return 0;
    }
    mp_pool_config cfg = mp_pool_default_config();
    cfg.n_workers = n_workers;
    cfg.preload = 1; /* time the serving, not the loading (load_s reports that) */
    cfg.weight_copies = o->copies;
    cfg.n_threads_per_worker = o->threads;
    cfg.stuck_lease_s = 0; /* a slow machine is not a stuck lease */
    if ((st = mp_pool_create(*model, &cfg, pool)) != MP_OK) {
        snprintf(r->error, sizeof r->error, "pool: %s: %s", mp_strerror(st), mp_last_error());
        return 0;
    }
    r->load_s = now_s() - t0;
    return 1;
}

/* Start n callers parked at the barrier (count n + 1: the caller of this releases them). A thread
 * that cannot start leaves the others parked for ever: the child exits at once. */
static void start_callers(caller *calls, pthread_t *th, int n, mp_pool *pool, const bench_opts *o,
                          pthread_barrier_t *start) {
    for (int i = 0; i < n; i++) {
        calls[i] = (caller){.pool = pool, .o = o, .start = start, .st = MP_ERR_INTERNAL};
        /* 256 KiB stacks: 30..10000 callers must not reserve 8 MiB each */
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int rc = pthread_create(&th[i], &attr, caller_main, &calls[i]);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            fprintf(stderr, "modelpool bench: could only start %d of %d caller threads\n", i, n);
            _exit(3);
        }
    }
}

/* Join the callers; waits, latencies (lat[n] is scratch), wall and CPU time into r. */
static void collect(caller *calls, pthread_t *th, double *lat, int n, double t_begin, double cpu_begin,
                    bench_run *r) {
    double t_last = t_begin, wait_sum = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        caller *c = &calls[i];
        if (c->st != MP_OK) {
            if (!r->errors) snprintf(r->error, sizeof r->error, "request: %s: %s", mp_strerror(c->st), c->err);
            r->errors++;
        }
        double wait = c->t_granted - c->t_start;
        wait_sum += wait;
        if (wait > r->max_wait_s) r->max_wait_s = wait;
        lat[i] = c->t_end - c->t_start;
        if (c->t_end > t_last) t_last = c->t_end;
    }
    r->cpu_s = cpu_seconds() - cpu_begin;
    r->wall_s = t_last - t_begin;
    r->avg_wait_s = wait_sum / n;
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    r->latency_p50_s = quantile(lat, n, 0.50);
    r->latency_p95_s = quantile(lat, n, 0.95);
}

/* R callers at once, released together; 0 with r->error set when they cannot be made. */
static int run_callers(const bench_opts *o, mp_pool *pool, bench_run *r) {
    int n = o->requests, ok = 0;
    caller *calls = calloc((size_t)n, sizeof *calls);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    double *lat = calloc((size_t)n, sizeof *lat);
    pthread_barrier_t start;
    if (!calls || !th || !lat || pthread_barrier_init(&start, NULL, (unsigned)n + 1) != 0) {
        snprintf(r->error, sizeof r->error, "out of memory for %d callers", n);
    } else {
        start_callers(calls, th, n, pool, o, &start);
        double t_begin = now_s(), cpu_begin = cpu_seconds();
        pthread_barrier_wait(&start);
        collect(calls, th, lat, n, t_begin, cpu_begin, r);
        pthread_barrier_destroy(&start);
        ok = 1;
    }
    free(calls);
    free(th);
    free(lat);
    return ok;
}

/* What the pool says about itself, and the settings it resolved. */
static void pool_figures(const bench_opts *o, mp_pool *pool, bench_run *r) {
    mp_pool_stats *ps = calloc(1, sizeof *ps);
    if (ps && mp_pool_get_stats(pool, ps) == MP_OK) {
        r->workers = ps->pool_size;
        r->weight_mb = ps->weight_bytes / 1048576.0;
        r->scratch_mb_per_worker = ps->n_workers_loaded ? ps->scratch_bytes / 1048576.0 / ps->n_workers_loaded : 0;
        r->rtf = ps->real_time_factor;
    }
    free(ps);
    r->copies = o->copies ? r->workers : 1;
    /* the pool's rule (pool.c): cores / workers, at least 1, unless given */
    int cores = online_cores();
    r->threads = o->threads ? o->threads : (r->workers && cores / r->workers > 1 ? cores / r->workers : 1);
    r->peak_rss_mb = peak_rss_mb();
}

static void run_one(const bench_opts *o, int n_workers, bench_run *r) {
    memset(r, 0, sizeof *r);
    r->requests = o->requests;
    r->seconds = (double)o->clip_n / o->clip_rate;
    mp_model *model = NULL;
    mp_pool *pool = NULL;
    if (open_pool(o, n_workers, r, &model, &pool) && run_callers(o, pool, r)) {
        pool_figures(o, pool, r);
        r->ok = 1;
    }
    mp_pool_free(pool);
    mp_model_free(model);
}

/* ---- the parent: one child per configuration ------------------------------------------------------ */

/* Run one configuration in a child and read its bench_run back. The parent loads nothing, so the
 * child's VmHWM is the run's own peak. */
static void run_in_child(const bench_opts *o, int n_workers, bench_run *r) {
    memset(r, 0, sizeof *r);
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return;
    }
    if (pid == 0) {
        close(fd[0]);
        bench_run mine;
        run_one(o, n_workers, &mine);
        const char *p = (const char *)&mine;
        size_t left = sizeof mine;
        while (left > 0) {
            ssize_t k = write(fd[1], p, left);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) _exit(4);
            p += k;
            left -= (size_t)k;
        }
        close(fd[1]);
        _exit(0);
    }
    close(fd[1]);
    char *p = (char *)r;
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t k = read(fd[0], p + got, sizeof *r - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (got != sizeof *r) {
        memset(r, 0, sizeof *r);
        if (WIFSIGNALED(status))
            snprintf(r->error, sizeof r->error, "the run's process died of signal %d", WTERMSIG(status));
        else
            snprintf(r->error, sizeof r->error, "the run's process exited with %d", WEXITSTATUS(status));
    }
}

/* "1,2,4,auto" -> {1,2,4,0}; 0 = auto (the pool's own default: online cores). */
static int parse_workers(const char *s, int *out, int max) {
    int n = 0;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == max) return -1;
        if (len == 4 && !strncmp(p, "auto", 4)) {
            out[n++] = 0;
        } else {
            char buf[16];
            if (len == 0 || len >= sizeof buf) return -1;
            memcpy(buf, p, len);
            buf[len] = '\0';
            char *e = NULL;
            long v = strtol(buf, &e, 10);
            if (*e || v < 1 || v > 256) return -1;
            out[n++] = (int)v;
        }
        p += len;
        if (*p == ',') p++;
    }
    return n;
}

/* Synthetic telephone-ish clip at 16 kHz: low noise plus three amplitude-modulated tones. The
 * network's cost does not depend on the content; the signal only keeps it away from silence. */
static float *make_clip(double seconds, size_t *n_out) {
    size_t n = (size_t)(seconds * 16000 + 0.5);
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) return NULL;
    uint32_t s = 12345;
    const double f[3] = {300, 800, 1700};
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / 16000;
        s = s * 1664525u + 1013904223u; /* LCG (Numerical Recipes constants) */
        double v = 0.02 * ((double)(s >> 8) / 16777216.0 - 0.5);
        for (int k = 0; k < 3; k++) v += 0.1 * (0.5 + 0.5 * sin(2 * M_PI * (1.5 + k) * t)) * sin(2 * M_PI * f[k] * t);
        x[i] = (float)v;
    }
    *n_out = n;
    return x;
}

static void print_table_header(void) {
    printf("%7s %6s %7s %8s %7s %8s %9s %8s %8s %8s %8s %8s %10s %8s\n", "workers", "copies", "threads", "requests",
           "seconds", "wall_s", "audio-s/s", "wait_avg", "wait_max", "lat_p50", "lat_p95", "rss_mb", "scratch_mb",
           "audio/cpu");
}

static void print_table_row(const bench_run *r, int spec) {
    if (!r->ok) {
        char w[16];
        if (spec) snprintf(w, sizeof w, "%d", spec);
        else snprintf(w, sizeof w, "auto");
        printf("%7s  error: %s\n", w, r->error);
        return;
    }
    printf("%7d %6d %7d %8d %7.1f %8.2f %9.2f %8.2f %8.2f %8.2f %8.2f %8.0f %10.1f %8.2f\n", r->workers, r->copies,
           r->threads, r->requests, r->seconds, r->wall_s, r->requests * r->seconds / r->wall_s, r->avg_wait_s,
           r->max_wait_s, r->latency_p50_s, r->latency_p95_s, r->peak_rss_mb, r->scratch_mb_per_worker,
           r->cpu_s > 0 ? r->requests * r->seconds / r->cpu_s : 0.0);
    if (r->errors) printf("        %d request(s) failed; first: %s\n", r->errors, r->error);
}

static json_t *run_json(const bench_run *r, int spec) {
    if (!r->ok) return json_pack("{s:i, s:s}", "workers", spec, "error", r->error);
    json_t *o = json_object();
    json_object_set_new(o, "workers", json_integer(r->workers));
    json_object_set_new(o, "workers_auto", json_boolean(spec == 0));
    json_object_set_new(o, "copies", json_integer(r->copies));
    json_object_set_new(o, "threads_per_worker", json_integer(r->threads));
    json_object_set_new(o, "requests", json_integer(r->requests));
    json_object_set_new(o, "seconds", json_real(r->seconds));
    json_object_set_new(o, "wall_s", json_real(r->wall_s));
    json_object_set_new(o, "audio_s_per_wall_s", json_real(r->requests * r->seconds / r->wall_s));
    json_object_set_new(o, "avg_wait_s", json_real(r->avg_wait_s));
    json_object_set_new(o, "max_wait_s", json_real(r->max_wait_s));
    json_object_set_new(o, "latency_p50_s", json_real(r->latency_p50_s));
    json_object_set_new(o, "latency_p95_s", json_real(r->latency_p95_s));
    json_object_set_new(o, "peak_rss_mb", json_real(r->peak_rss_mb));
    json_object_set_new(o, "load_s", json_real(r->load_s));
    json_object_set_new(o, "weight_mb", json_real(r->weight_mb));
    json_object_set_new(o, "scratch_mb_per_worker", json_real(r->scratch_mb_per_worker));
    json_object_set_new(o, "real_time_factor", json_real(r->rtf));
    json_object_set_new(o, "errors", json_integer(r->errors));
    json_object_set_new(o, "cpu_s", json_real(r->cpu_s));
    json_object_set_new(o, "audio_s_per_cpu_s", json_real(r->cpu_s > 0 ? r->requests * r->seconds / r->cpu_s : 0));
    return o;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, bench_opts *o, const char **format, int *specs, int *n_runs) {
    const char *workers_list = "1,2,4,auto";
    *o = (bench_opts){.requests = 30, .seconds = 8, .clip_rate = 16000};
    *format = "text";
    mp_app_args a = mp_app_args_begin("bench", argc, argv, usage_bench);
    while (mp_app_args_next(&a)) {
        if (mp_app_flag(&a, "--copies")) {
            o->copies = 1;
        } else if (!(mp_app_opt_str(&a, "--model", &o->dir) || mp_app_opt_str(&a, "--arch", &o->arch) ||
                     mp_app_opt_str(&a, "--audio", &o->audio_path) || mp_app_opt_str(&a, "--format", format) ||
                     mp_app_opt_str(&a, "--workers", &workers_list) || mp_app_opt_dtype(&a, &o->dtype) ||
                     mp_app_opt_int(&a, "--requests", 1, BENCH_MAX_REQUESTS, &o->requests) ||
                     mp_app_opt_int(&a, "--threads", 1, 256, &o->threads) ||
                     mp_app_opt_double(&a, "--seconds", 0.01, 3600, &o->seconds))) {
            mp_app_unknown(&a);
        }
    }
    if (a.finished) return a.rc;
    if (strcmp(*format, "text") && strcmp(*format, "json"))
        return mp_app_usage_error("bench", "--format: expected text or json, got '%s'", *format);
    int rc = mp_app_check_model_args("bench", o->dir, o->arch, o->dtype);
    if (rc >= 0) return rc;
    if ((*n_runs = parse_workers(workers_list, specs, BENCH_MAX_RUNS)) <= 0)
        return mp_app_usage_error("bench", "--workers: expected a list like 1,2,4,auto (1..256 each), got '%s'",
                                  workers_list);
    return -1;
}

/* The clip, made (or decoded) once, before any fork; children share it copy-on-write. Returns -1,
 * or the exit code when there is no model or no clip. */
static int prepare_clip(bench_opts *o, float **synthetic, mp_audio **audio) {
    if (!o->arch) {
        const char *dir = o->dir ? o->dir : mp_app_default_model();
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/config.json", dir);
        if (access(probe, R_OK) != 0) {
            fprintf(stderr, "modelpool bench: no model at %s%s; pass --model DIR or --arch base\n", dir,
                    o->dir ? "" : " (the embedded default)");
            return mp_app_exit_code(MP_ERR_IO);
        }
    }
    if (o->audio_path) {
        mp_status st = mp_audio_load_file(o->audio_path, NULL, audio);
        if (st != MP_OK) return mp_app_report("bench", st);
        o->clip = mp_audio_samples(*audio, &o->clip_n);
        o->clip_rate = mp_audio_rate(*audio);
    } else {
        if (!(*synthetic = make_clip(o->seconds, &o->clip_n))) {
            fprintf(stderr, "modelpool bench: out of memory for the clip\n");
            return mp_app_exit_code(MP_ERR_NOMEM);
        }
        o->clip = *synthetic;
    }
    return -1;
}

/* Every configuration in its own child; a table row or a JSON object each. Returns the exit code. */
static int run_all(const bench_opts *o, const int *specs, int n_runs, int json) {
    json_t *arr = json ? json_array() : NULL;
    int failures = 0;
    if (!json) {
        printf("modelpool bench: %d concurrent requests x %.1f s audio, model %s%s\n", o->requests,
               (double)o->clip_n / o->clip_rate, o->arch ? "random " : "",
               o->arch ? o->arch : (o->dir ? o->dir : mp_app_default_model()));
        print_table_header();
        fflush(stdout);
    }
    for (int i = 0; i < n_runs; i++) {
        bench_run r;
        run_in_child(o, specs[i], &r);
        if (!r.ok || r.errors) failures++;
        if (json) {
            json_array_append_new(arr, run_json(&r, specs[i]));
        } else {
            print_table_row(&r, specs[i]);
            fflush(stdout);
        }
    }
    if (json) {
        char *s = json_dumps(arr, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (s) puts(s);
        free(s);
        json_decref(arr);
    }
    return failures ? 1 : 0;
}

int mp_cli_bench(int argc, char **argv) {
    bench_opts o;
    const char *format;
    int specs[BENCH_MAX_RUNS], n_runs = 0;
    int rc = parse_args(argc, argv, &o, &format, specs, &n_runs);
    if (rc >= 0) return rc;
    float *synthetic = NULL;
    mp_audio *audio = NULL;
    rc = prepare_clip(&o, &synthetic, &audio);
    if (rc < 0) rc = run_all(&o, specs, n_runs, !strcmp(format, "json"));
    free(synthetic);
    mp_audio_free(audio);
    return rc;
}
