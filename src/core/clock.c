/* clock.c - the monotonic clock and the online core count, for the pool's timing, statistics and
 * default worker count. Part of core: calls only the C library and POSIX. */
#include "internal.h"

#include <time.h>
#include <unistd.h>

double mp__now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int mp__online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
