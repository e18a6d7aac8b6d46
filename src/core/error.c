/* error.c - status text, the thread-local error detail behind mp_last_error(), and the log hook.
 *
 * Module: core (this folder: error.c, clock.c, json.c, result.c) is what every other module may
 * use: errors and logging, the clock, JSON fields, mp_result. It calls only libc, POSIX and
 * jansson, never another module. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>

const char *mp_version(void) {
#define MP_STR2(x) #x
#define MP_STR(x) MP_STR2(x)
    return MP_STR(MP_VERSION_MAJOR) "." MP_STR(MP_VERSION_MINOR) "." MP_STR(MP_VERSION_PATCH);
}

/* A switch with no default, so -Wswitch names any code added to the enum but not here. */
const char *mp_strerror(mp_status st) {
    switch (st) {
    case MP_OK: return "success";
    case MP_ERR_INVALID_ARG: return "invalid argument";
    case MP_ERR_NOMEM: return "out of memory";
    case MP_ERR_IO: return "input/output error";
    case MP_ERR_MODEL_FORMAT: return "bad model format";
    case MP_ERR_AUDIO_FORMAT: return "bad audio format";
    case MP_ERR_QUEUE_FULL: return "queue full";
    case MP_ERR_TIMEOUT: return "timed out";
    case MP_ERR_CANCELLED: return "cancelled";
    case MP_ERR_SHUTDOWN: return "pool is shutting down";
    case MP_ERR_MISUSE: return "library misuse";
    case MP_ERR_INTERNAL: return "internal error";
    case MP_ERR_DECODER_FORMAT: return "bad lexicon, hotword or language model";
    }
    return "unknown error";
}

/* Same shape as mp_strerror: -Wswitch names a code missing here. */
const char *mp_status_name(mp_status st) {
    switch (st) {
    case MP_OK: return "MP_OK";
    case MP_ERR_INVALID_ARG: return "MP_ERR_INVALID_ARG";
    case MP_ERR_NOMEM: return "MP_ERR_NOMEM";
    case MP_ERR_IO: return "MP_ERR_IO";
    case MP_ERR_MODEL_FORMAT: return "MP_ERR_MODEL_FORMAT";
    case MP_ERR_AUDIO_FORMAT: return "MP_ERR_AUDIO_FORMAT";
    case MP_ERR_QUEUE_FULL: return "MP_ERR_QUEUE_FULL";
    case MP_ERR_TIMEOUT: return "MP_ERR_TIMEOUT";
    case MP_ERR_CANCELLED: return "MP_ERR_CANCELLED";
    case MP_ERR_SHUTDOWN: return "MP_ERR_SHUTDOWN";
    case MP_ERR_MISUSE: return "MP_ERR_MISUSE";
    case MP_ERR_INTERNAL: return "MP_ERR_INTERNAL";
    case MP_ERR_DECODER_FORMAT: return "MP_ERR_DECODER_FORMAT";
    }
    return "MP_ERR_UNKNOWN";
}

/* Per-thread detail: a fixed buffer, so recording an error can never fail or allocate. */
static _Thread_local char last_error[1024];

const char *mp_last_error(void) { return last_error; }

void mp__clear_error(void) { last_error[0] = '\0'; }

mp_status mp__fail(mp_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

/* The callback and its user_data change together under this lock; the call itself runs unlocked. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static mp_log_fn log_fn;
static void *log_user;

void mp_set_log_callback(mp_log_fn fn, void *user_data) {
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user_data;
    pthread_mutex_unlock(&log_lock);
}

void mp__log(mp_log_level level, const char *fmt, ...) {
    pthread_mutex_lock(&log_lock);
    mp_log_fn fn = log_fn;
    void *user = log_user;
    pthread_mutex_unlock(&log_lock);
    if (!fn) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(level, msg, user);
}
