/* model.c - which model a command uses: --model DIR, --arch NAME (random weights), or the default. */
#include "common/app.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

const char *mp_app_default_model(void) {
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

static const char *app_language; /* --language, for every model the command loads (argv-owned) */

int mp_app_take_language(int argc, char **argv) {
    /* The shared option scanner matches "--language vi" and "--language=vi" alike; --help and
     * --version are left for the command, and nothing after "--" is an option. */
    mp_app_args a = mp_app_args_begin("", argc, argv, NULL);
    int k = 0;
    for (a.i = 0; a.i < argc; a.i++) {
        a.arg = argv[a.i];
        if (!a.positional_only && !strcmp(a.arg, "--")) a.positional_only = 1;
        if (mp_app_opt_str(&a, "--language", &app_language)) {
            if (a.finished) return -1;
            continue;
        }
        argv[k++] = argv[a.i];
    }
    return k;
}

int mp_app_opt_dtype(mp_app_args *a, mp_dtype *out) {
    const char *v = NULL;
    if (!mp_app_opt_str(a, "--dtype", &v)) return 0;
    if (!v) return 1; /* no value: already reported */
    if (!strcmp(v, "fp32")) {
        *out = MP_DTYPE_FP32;
    } else if (!strcmp(v, "int8")) {
        *out = MP_DTYPE_INT8;
    } else {
        mp_app_usage_error(a->cmd, "--dtype: expected fp32 or int8, got '%s'", v);
        a->finished = 1;
        a->rc = MP_APP_EXIT_USAGE;
    }
    return 1;
}

int mp_app_check_model_args(const char *cmd, const char *dir, const char *arch, mp_dtype dtype) {
    if (dir && arch) return mp_app_usage_error(cmd, "give --model or --arch, not both");
    if (arch && dtype != MP_DTYPE_FP32)
        return mp_app_usage_error(cmd, "--dtype int8 needs a model directory (--model DIR), not --arch");
    return -1;
}

mp_status mp_app_load_model(const char *dir, const char *arch, mp_dtype dtype, mp_model **out) {
    if (arch && dtype != MP_DTYPE_FP32) { /* mp_app_check_model_args said so already */
        *out = NULL;
        return MP_ERR_INVALID_ARG;
    }
    if (arch) return mp_model_create_random(arch, 1234, out);
    /* int8: oneDNN allocates its GEMM packing buffers (MBs) per call; glibc's adaptive mmap threshold
     * would soon serve them from per-thread arenas and keep them: 30 int8 workers of wav2vec2-base
     * peaked at 473 MB, with a fixed 64 KiB threshold (big blocks mapped and unmapped) at 338 MB, at
     * the same speed. Not for fp32: where oneDNN runs the fp32 GEMMs (OpenBLAS without kernels for
     * the CPU) the mapping churn halved the embedded model's throughput (88 vs 167 audio-s/s). */
    if (dtype == MP_DTYPE_INT8) mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mp_model_config cfg = mp_model_default_config();
    cfg.dtype = dtype;
    cfg.language = app_language;
    return mp_model_load(dir ? dir : mp_app_default_model(), &cfg, out);
}
