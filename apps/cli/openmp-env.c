/* openmp-env.c - the `modelpool` command runs with OMP_WAIT_POLICY=PASSIVE unless the user chose
 * a wait policy.
 *
 * Why: oneDNN threads through libgomp, whose idle threads spin (busy-wait) after every parallel
 * region and at its barriers for up to GOMP_SPINCOUNT iterations (300000 by default: milliseconds)
 * before they sleep. On a machine whose cores are shared (several `modelpool serve` processes, other
 * jobs) a spinning thread burns a core another process needed, and a barrier waits for a thread that
 * is not running. The waste even depended on the clients' connections: libgomp spins only 100
 * iterations once its threads outnumber the CPUs, and a server answering one request per connection
 * (a fresh libmicrohttpd thread, so a fresh OpenMP team, each time) has few threads. Embedded model,
 * phone-gsm.wav, `serve --workers 1` (2 threads) with a training job on the same 2 cores: 267-789 ms
 * of CPU per request from 10 clients opening a connection per request, 88-105 ms over 10 kept-alive
 * connections, 58-85 ms in every pattern with PASSIVE (BENCHMARKS.md). A sleeping thread costs
 * microseconds to wake per region, nothing next to a forward pass.
 *
 * libgomp reads its environment once, in its constructor, before main runs (and a .preinit_array
 * setenv is undone when libc's own initializer resets environ), so the only way to change it from
 * inside is to set it and execute this program again, once: the variable being set stops a second
 * time. Not under valgrind (its tools would lose the process at the exec). Programs that embed
 * libmodelpool set OMP_WAIT_POLICY themselves (docs/THREADING.md). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mp_cli_openmp_passive(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return; /* the user's choice */
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) return; /* valgrind */
    /* The binary's own path, not /proc/self/exe: the process name (ps, top, journal) comes from the
     * file executed, and would read "exe" */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || (size_t)n >= sizeof exe - 1) return;
    exe[n] = '\0';
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    execv(exe, argv);
    unsetenv("OMP_WAIT_POLICY"); /* exec failed (binary replaced, no /proc): libgomp's default it is */
}
