/* bench-load.c - time mp_model_load() of one directory and the memory it leaves resident before
 * the first inference: `bench-load DIR` prints one JSON line
 *   {"dir": ..., "format": ..., "load_s": ..., "cpu_s": ..., "rss_mb": ..., "rss_delta_mb": ..., "hwm_mb": ...}
 * rss_mb is the process's resident set after the load (/proc/self/statm), rss_delta_mb the part
 * the load added, hwm_mb the peak (VmHWM). One load per process, so each run starts from the same
 * state; bench/load-formats.sh alternates formats over several processes. */
#include "modelpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* User + system CPU seconds of this process: unlike wall time, not inflated by a busy machine. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double rss_mb(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static double hwm_mb(void) {
    char line[256];
    double kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    fclose(f);
    return kb / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bench-load DIR\n");
        return 2;
    }
    mp_model *m = NULL;
    double r0 = rss_mb(), c0 = cpu_s(), t0 = now_s();
    mp_status st = mp_model_load(argv[1], NULL, &m);
    double t1 = now_s(), c1 = cpu_s(), r1 = rss_mb();
    if (st != MP_OK) {
        fprintf(stderr, "bench-load: %s: %s\n", mp_strerror(st), mp_last_error());
        return 1;
    }
    mp_model_info mi;
    mp_model_get_info(m, &mi);
    printf("{\"dir\": \"%s\", \"format\": \"%s\", \"dtype\": \"%s\", \"load_s\": %.4f, \"cpu_s\": %.4f, \"rss_mb\": %.1f, "
           "\"rss_delta_mb\": %.1f, \"hwm_mb\": %.1f}\n",
           argv[1], mi.weights_format, mi.dtype, t1 - t0, c1 - c0, r1, r1 - r0, hwm_mb());
    mp_model_free(m);
    return 0;
}
