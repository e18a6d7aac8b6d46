/* samples.c - a growable float buffer that streams append audio to (stream.c's chunk window,
 * live.c's sample window). Capacity doubles, so appending n samples costs O(n) amortized. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

mp_status mp__samples_append(float **buf, size_t *n_buf, size_t *cap, size_t first_cap, const float *x, size_t n,
                             const char *who) {
    if (n == 0) return MP_OK;
    if (*n_buf + n > *cap) {
        size_t c = *cap ? *cap : first_cap;
        while (c < *n_buf + n) c *= 2;
        float *b = realloc(*buf, c * sizeof *b);
        if (!b) return mp__fail(MP_ERR_NOMEM, "%s: out of memory for %zu samples", who, c);
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *n_buf, x, n * sizeof *x);
    *n_buf += n;
    return MP_OK;
}
