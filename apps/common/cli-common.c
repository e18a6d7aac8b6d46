/* cli-common.c - what the modelpool command's subcommands share: the status table, the default
 * model, option parsing and model loading. */
#include "common/cli.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- shared helpers ----------------------------------------------------------------------------- */

mp_cli_status_info mp_cli_status(mp_status st) {
    /* exit codes: 0 ok, 1 generic, 2 usage (not a status), 3.. one per family of failure */
    switch (st) {
    case MP_OK: return (mp_cli_status_info){"MP_OK", 0, 200};
    case MP_ERR_INVALID_ARG: return (mp_cli_status_info){"MP_ERR_INVALID_ARG", 2, 400};
    case MP_ERR_NOMEM: return (mp_cli_status_info){"MP_ERR_NOMEM", 3, 500};
    case MP_ERR_IO: return (mp_cli_status_info){"MP_ERR_IO", 4, 400};
    case MP_ERR_MODEL_FORMAT: return (mp_cli_status_info){"MP_ERR_MODEL_FORMAT", 5, 500};
    case MP_ERR_AUDIO_FORMAT: return (mp_cli_status_info){"MP_ERR_AUDIO_FORMAT", 6, 415};
    case MP_ERR_QUEUE_FULL: return (mp_cli_status_info){"MP_ERR_QUEUE_FULL", 7, 503};
    case MP_ERR_TIMEOUT: return (mp_cli_status_info){"MP_ERR_TIMEOUT", 8, 504};
    case MP_ERR_CANCELLED: return (mp_cli_status_info){"MP_ERR_CANCELLED", 9, 499};
    case MP_ERR_SHUTDOWN: return (mp_cli_status_info){"MP_ERR_SHUTDOWN", 10, 503};
    case MP_ERR_MISUSE: return (mp_cli_status_info){"MP_ERR_MISUSE", 11, 500};
    case MP_ERR_INTERNAL: return (mp_cli_status_info){"MP_ERR_INTERNAL", 12, 500};
    case MP_ERR_DECODER_FORMAT: return (mp_cli_status_info){"MP_ERR_DECODER_FORMAT", 13, 400};
    }
    return (mp_cli_status_info){"MP_ERR_UNKNOWN", 1, 500};
}

/* An installed binary finds the embedded model relative to itself (MP_INSTALLED_MODEL_REL, e.g.
 * bin/../share/modelpool/models/digits), so the prefix can be moved; a build-tree binary has no model there
 * and falls back to the source tree's (MP_DEFAULT_MODEL_DIR). */
static char installed_model[PATH_MAX];

static void find_installed_model(void) {
#ifdef MP_INSTALLED_MODEL_REL
    char exe[PATH_MAX], dir[PATH_MAX + sizeof MP_INSTALLED_MODEL_REL + 1], cfg[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0'; /* the binary's folder */
    snprintf(dir, sizeof dir, "%s/%s", exe, MP_INSTALLED_MODEL_REL);
    if (!realpath(dir, installed_model)) installed_model[0] = '\0';
    snprintf(cfg, sizeof cfg, "%s/config.json", installed_model);
    if (access(cfg, R_OK) != 0) installed_model[0] = '\0';
#endif
}

const char *mp_cli_default_model(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const char *env = getenv("MODELPOOL_MODEL");
    if (env && *env) return env;
    pthread_once(&once, find_installed_model);
    if (installed_model[0]) return installed_model;
#ifdef MP_DEFAULT_MODEL_DIR
    return MP_DEFAULT_MODEL_DIR;
#else
    return "models/digits";
#endif
}

mp_status mp_cli_load_model(const char *dir, const char *arch, mp_model **out) {
    if (arch) return mp_model_create_random(arch, 1234, out);
    return mp_model_load(dir ? dir : mp_cli_default_model(), NULL, out);
}

int mp_cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "modelpool %s: %s: expected an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int mp_cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "modelpool %s: %s: expected a number in [%g, %g], got '%s'\n", cmd, opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}
