/* batch.c - `transcribe` over many files: a few threads take files in turn (one file at a time per
 * thread; a long file's chunks never hold a worker between chunks), and the main thread prints the
 * results in input order as soon as each prefix is complete, drawing a progress bar on a terminal. */
#include "cli/cli.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct batch batch;

typedef struct job {
    const char *file;
    mp_status st;
    char err[1024];
    mp_result *res;
    int done;
    double done_s;      /* audio transcribed so far (progress callback); guarded by the batch lock */
    batch *b;
} job;

struct batch {
    mp_pool *pool;
    const mp_audio_config *acfg;
    const mp_request_config *req;
    job *jobs;
    int n_jobs;
    int next;           /* next job to start; guarded by lock */
    int n_done;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled when a job finishes */
};

/* Progress of one long file, on its worker thread: recorded for the bar the main thread draws. */
static void on_progress(double audio_done_s, void *user_data) {
    job *j = user_data;
    pthread_mutex_lock(&j->b->lock);
    j->done_s = audio_done_s;
    pthread_mutex_unlock(&j->b->lock);
}

static void *batch_worker(void *arg) {
    batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        int i = b->next < b->n_jobs ? b->next++ : -1;
        pthread_mutex_unlock(&b->lock);
        if (i < 0) break;
        job *j = &b->jobs[i];
        mp_request_config rq = *b->req;
        rq.progress_fn = on_progress;
        rq.progress_user_data = j;
        j->st = mp_pool_transcribe_file(b->pool, j->file, b->acfg, &rq, &j->res);
        if (j->st != MP_OK) snprintf(j->err, sizeof j->err, "%s", mp_last_error());
        pthread_mutex_lock(&b->lock);
        j->done = 1;
        b->n_done++;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
    }
    return NULL;
}

/* One status line on the terminal: files done and audio seconds transcribed (long files advance
 * it chunk by chunk). */
static void progress(int done, int total, double audio_s) {
    const int width = 30;
    int filled = total ? done * width / total : width;
    fprintf(stderr, "\r\033[K[");
    for (int i = 0; i < width; i++) fputc(i < filled ? '=' : ' ', stderr);
    fprintf(stderr, "] %d/%d files, %.1f s of audio", done, total, audio_s);
    fflush(stderr);
}

/* Audio seconds done over all jobs; caller holds the batch lock. */
static double audio_done(const batch *b) {
    double s = 0;
    for (int i = 0; i < b->n_jobs; i++) s += b->jobs[i].done_s;
    return s;
}

/* Wait for job i with the lock held, redrawing the bar 4 times a second. The bar goes to a terminal
 * only, and only when useful: many files, or once some input has run past 30 s of audio. Returns
 * whether a bar is on the screen. */
static int wait_job(batch *b, int i, int progress_pref, int shown) {
    int tty = progress_pref != 0 && isatty(STDERR_FILENO);
    while (!b->jobs[i].done) {
        double done_s = audio_done(b);
        if (tty && (progress_pref > 0 || b->n_jobs > 3 || done_s >= 30)) {
            progress(b->n_done, b->n_jobs, done_s);
            shown = 1;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&b->cond, &b->lock, &until);
    }
    return shown;
}

/* Print every job in input order as it completes; returns the exit code. */
static int print_in_order(batch *b, const mp_cli_output *out) {
    int shown = 0, rc = 0;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < b->n_jobs; i++) {
        shown = wait_job(b, i, out->progress, shown);
        pthread_mutex_unlock(&b->lock);
        if (shown) fprintf(stderr, "\r\033[K"); /* clear the bar before output on the same terminal */
        job *j = &b->jobs[i];
        int ok = mp_cli_print_result(j->file, j->st, j->err, j->res, out);
        /* the first failure decides the exit code */
        if (!ok && rc == 0) rc = j->st != MP_OK ? mp_app_exit_code(j->st) : 1;
        pthread_mutex_lock(&b->lock);
        if (j->st == MP_OK) j->done_s = mp_result_duration_s(j->res);
    }
    if (shown) {
        progress(b->n_jobs, b->n_jobs, audio_done(b));
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

int mp_cli_batch(mp_pool *pool, const mp_audio_config *acfg, const mp_request_config *req, const char *const *files,
                 int n_threads, const mp_cli_output *out) {
    int n = out->n_files;
    if (n_threads > n) n_threads = n;
    job *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    batch b = {.pool = pool, .acfg = acfg, .req = req, .jobs = jobs, .n_jobs = n};
    int rc = mp_app_exit_code(MP_ERR_NOMEM);
    if (jobs && tids) {
        for (int i = 0; i < n; i++) jobs[i].file = files[i], jobs[i].b = &b;
        pthread_mutex_init(&b.lock, NULL);
        pthread_cond_init(&b.cond, NULL);
        int started = 0;
        for (; started < n_threads; started++)
            if (pthread_create(&tids[started], NULL, batch_worker, &b) != 0) break;
        if (started == 0) batch_worker(&b); /* no threads available: run inline */
        rc = print_in_order(&b, out);
        for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
        pthread_mutex_destroy(&b.lock);
        pthread_cond_destroy(&b.cond);
        for (int i = 0; i < n; i++) mp_result_free(jobs[i].res);
    }
    free(tids);
    free(jobs);
    return rc;
}
