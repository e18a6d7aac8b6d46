/* cli-common.c - what the modelpool command's subcommands share: the status table, the default
 * model, option parsing and model loading. */
#include "common/cli.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *mp_cli_default_model(void) {
    const char *env = getenv("MODELPOOL_MODEL");
    if (env && *env) return env;
#ifdef MP_DEFAULT_MODEL_DIR
    return MP_DEFAULT_MODEL_DIR;
#else
    return "models/digits";
#endif
}

mp_dtype mp_cli_dtype = MP_DTYPE_FP32;

int mp_cli_parse_dtype(const char *cmd, const char *s) {
    if (strcmp(s, "fp32") && strcmp(s, "int8")) {
        fprintf(stderr, "modelpool %s: --dtype: expected fp32 or int8, got '%s'\n", cmd, s);
        return 0;
    }
    mp_cli_dtype = strcmp(s, "int8") ? MP_DTYPE_FP32 : MP_DTYPE_INT8;
    return 1;
}

mp_status mp_cli_load_model(const char *dir, const char *arch, mp_model **out) {
    /* oneDNN allocates its GEMM packing buffers (MBs) per call; glibc's adaptive mmap threshold
     * would soon serve them from per-thread arenas and keep them: 30 int8 workers peaked at 473 MB,
     * with a fixed 64 KiB threshold (big blocks mapped and unmapped) at 338 MB, same speed. */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    if (arch && mp_cli_dtype != MP_DTYPE_FP32) {
        fprintf(stderr, "modelpool: --dtype int8 needs a model directory (--model DIR), not --arch\n");
        *out = NULL;
        return MP_ERR_INVALID_ARG;
    }
    if (arch) return mp_model_create_random(arch, 1234, out);
    mp_model_config cfg = mp_model_default_config();
    cfg.dtype = mp_cli_dtype;
    return mp_model_load(dir ? dir : mp_cli_default_model(), &cfg, out);
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
