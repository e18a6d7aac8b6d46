/* cli.h - what the `modelpool` command's files share (apps/cli/). Subcommands take argv[0] = their
 * name and return the process exit code; `serve` lives in apps/server (server.h).
 *
 *   mp-cli.c          main: the command list, --help, --version
 *   cmd-transcribe.c  transcribe: options (the request layer, apps/common/request.h), model, pool
 *   batch.c           transcribe: files over a pool, in input order, with a progress bar
 *   output.c          transcribe: one file's result as text, JSON, subtitles, .npy logits
 *   cmd-info.c        info         cmd-bench.c  bench         cmd-convert.c  convert
 *   openmp-env.c      main's first step: OMP_WAIT_POLICY=PASSIVE unless set (one re-exec)       */
#ifndef MP_CLI_H
#define MP_CLI_H

#include "common/app.h"
#include "common/request.h"

int mp_cli_transcribe(int argc, char **argv);
int mp_cli_info(int argc, char **argv);
int mp_cli_bench(int argc, char **argv);
int mp_cli_convert(int argc, char **argv);

/* Sets OMP_WAIT_POLICY=PASSIVE and executes the program again, unless the user set OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT (or valgrind runs it); returns only when it did not (openmp-env.c). */
void mp_cli_openmp_passive(char **argv);

/* How transcribe prints results. */
typedef struct mp_cli_output {
    const char *format; /* text | json | srt | vtt */
    const char *dump;   /* --dump-logits FILE.npy, or NULL */
    int progress;       /* -1: a bar on a terminal when useful; 0: never; 1: on a terminal */
    int n_files;        /* text with several files prints FILE<TAB>text */
} mp_cli_output;

/* batch.c: transcribe files over pool, n_threads at a time; each result is printed in input order
 * as soon as it and those before it are done. Returns the exit code (the first failure's). */
int mp_cli_batch(mp_pool *pool, const mp_audio_config *acfg, const mp_request_config *req, const char *const *files,
                 int n_threads, const mp_cli_output *out);

/* output.c: one file's outcome (res when st is MP_OK, else err: the library's detail). Returns 0
 * when something could not be printed or written. */
int mp_cli_print_result(const char *file, mp_status st, const char *err, const mp_result *res,
                        const mp_cli_output *out);

#endif
