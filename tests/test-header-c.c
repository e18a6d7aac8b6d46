/* Compiles the public header alone as strict C11 and checks the frozen status codes. */
#include "modelpool.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    /* The enum is frozen: these numbers are part of the ABI. */
    if (MP_OK != 0 || MP_ERR_INVALID_ARG != 1 || MP_ERR_QUEUE_FULL != 6 || MP_ERR_INTERNAL != 11 ||
        MP_ERR_DECODER_FORMAT != 12) {
        fprintf(stderr, "status codes were renumbered\n");
        return 1;
    }
    for (int s = 0; s <= (int)MP_ERR_DECODER_FORMAT; s++) {
        const char *t = mp_strerror((mp_status)s);
        if (!t || !*t || strcmp(t, "unknown error") == 0) {
            fprintf(stderr, "status %d has no text\n", s);
            return 1;
        }
        const char *n = mp_status_name((mp_status)s);
        if (!n || strncmp(n, "MP_", 3) != 0 || strcmp(n, "MP_ERR_UNKNOWN") == 0) {
            fprintf(stderr, "status %d has no name\n", s);
            return 1;
        }
    }
    if (strcmp(mp_strerror((mp_status)999), "unknown error") != 0) return 1;
    if (strcmp(mp_status_name(MP_ERR_AUDIO_FORMAT), "MP_ERR_AUDIO_FORMAT") != 0 ||
        strcmp(mp_status_name((mp_status)999), "MP_ERR_UNKNOWN") != 0)
        return 1;
    printf("header ok, version %s\n", mp_version());
    return 0;
}
