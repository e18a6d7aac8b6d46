/* status.c - the one mapping from mp_status to a process exit code and to an HTTP status. */
#include "common/app.h"

#include <stdio.h>

/* Exit codes: 0 ok, 1 other failure, 2 usage (also MP_ERR_INVALID_ARG), 3.. one per status. A switch
 * with no default: -Wswitch names a status added to the library but not mapped here. */
int mp_app_exit_code(mp_status st) {
    switch (st) {
    case MP_OK: return 0;
    case MP_ERR_INVALID_ARG: return MP_APP_EXIT_USAGE;
    case MP_ERR_NOMEM: return 3;
    case MP_ERR_IO: return 4;
    case MP_ERR_MODEL_FORMAT: return 5;
    case MP_ERR_AUDIO_FORMAT: return 6;
    case MP_ERR_QUEUE_FULL: return 7;
    case MP_ERR_TIMEOUT: return 8;
    case MP_ERR_CANCELLED: return 9;
    case MP_ERR_SHUTDOWN: return 10;
    case MP_ERR_MISUSE: return 11;
    case MP_ERR_INTERNAL: return 12;
    case MP_ERR_DECODER_FORMAT: return 13;
    }
    return 1;
}

/* Caller mistakes are 4xx (an unreadable upload is 415), a busy or stopping pool 503, the rest 5xx. */
unsigned mp_app_http_status(mp_status st) {
    switch (st) {
    case MP_OK: return 200;
    case MP_ERR_INVALID_ARG: return 400;
    case MP_ERR_NOMEM: return 500;
    case MP_ERR_IO: return 400;
    case MP_ERR_MODEL_FORMAT: return 500;
    case MP_ERR_AUDIO_FORMAT: return 415;
    case MP_ERR_QUEUE_FULL: return 503;
    case MP_ERR_TIMEOUT: return 504;
    case MP_ERR_CANCELLED: return 499;
    case MP_ERR_SHUTDOWN: return 503;
    case MP_ERR_MISUSE: return 500;
    case MP_ERR_INTERNAL: return 500;
    case MP_ERR_DECODER_FORMAT: return 400;
    }
    return 500;
}

int mp_app_report(const char *cmd, mp_status st) {
    fprintf(stderr, "modelpool %s: %s: %s\n", cmd, mp_strerror(st), mp_last_error());
    return mp_app_exit_code(st);
}

int mp_app_report_model(const char *cmd, mp_status st) {
    int rc = mp_app_report(cmd, st);
    if (st == MP_ERR_IO)
        fprintf(stderr, "modelpool %s: a model directory holds config.json, vocab.json and model.safetensors "
                        "(HuggingFace wav2vec2 CTC layout; preprocessor_config.json and lexicon.txt optional)\n",
                cmd);
    return rc;
}

void mp_app_print_exit_codes(FILE *f) {
    fprintf(f, "\nExit status: 0 success, 1 other failure, %d usage error or invalid argument", MP_APP_EXIT_USAGE);
    int col = 80;
    for (int s = MP_ERR_NOMEM; s <= (int)MP_ERR_DECODER_FORMAT; s++) {
        char item[96];
        int n = snprintf(item, sizeof item, ", %d %s", mp_app_exit_code((mp_status)s), mp_strerror((mp_status)s));
        if (col + n > 100) {
            fputs(",\n ", f);
            col = 1;
            n = snprintf(item, sizeof item, " %d %s", mp_app_exit_code((mp_status)s), mp_strerror((mp_status)s));
        }
        fputs(item, f);
        col += n;
    }
    fputs(".\n", f);
}
