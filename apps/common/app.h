/* app.h - what the `modelpool` command and its HTTP server share (apps/common/): the status ->
 * exit code / HTTP status mapping, the default model, command-line scanning and subtitles.
 *
 * Dependencies run one way: apps/cli -> apps/server -> apps/common -> modelpool.h. Nothing here
 * knows about a particular command or about HTTP handling; only the public header is used. */
#ifndef MP_APP_H
#define MP_APP_H

#include "modelpool.h"

#include <jansson.h>
#include <stdio.h>

/* ---- status mapping (status.c) ------------------------------------------------------------------
 * The one place a status becomes a process exit code or an HTTP status (curl's exit codes are its
 * CURLcodes; ours are a fixed mapping so scripts can rely on them). Names: mp_status_name(). */
#define MP_APP_EXIT_USAGE 2 /* bad command line: not a library status */
int mp_app_exit_code(mp_status st);
unsigned mp_app_http_status(mp_status st);

/* "modelpool CMD: <text of st>: <mp_last_error()>" on stderr; returns mp_app_exit_code(st). */
int mp_app_report(const char *cmd, mp_status st);
/* The same for a model that did not load, plus, for a missing file, what a model directory holds. */
int mp_app_report_model(const char *cmd, mp_status st);
/* The "Exit status" paragraph of every --help, from the mapping above. */
void mp_app_print_exit_codes(FILE *f);

/* ---- models (model.c) ------------------------------------------------------------------------- */

/* The default model directory: MODELPOOL_MODEL if set, else the installed embedded model next to the
 * binary (PREFIX/share/modelpool/models/digits), else the source tree's (compiled in). */
const char *mp_app_default_model(void);

/* --model DIR (NULL: the default model) or, when arch is set, random weights of a named architecture
 * (fp32 only: int8 quantizes loaded weights). dtype is mp_model_config.dtype (--dtype). */
mp_status mp_app_load_model(const char *dir, const char *arch, mp_dtype dtype, mp_model **out);
/* Usage errors of those options (--model with --arch; --arch with int8): -1 when they make sense,
 * else the usage error printed and its exit code. */
int mp_app_check_model_args(const char *cmd, const char *dir, const char *arch, mp_dtype dtype);

/* --language LANG of any command (which vocabulary of a multilingual vocab.json, as
 * mp_model_config.language): removed from argv (argc = the new count, -1 after a usage error,
 * printed) before the command parses its options, then used by every mp_app_load_model(). */
int mp_app_take_language(int argc, char **argv);

/* ---- command lines (args.c) ---------------------------------------------------------------------
 * Every command scans its arguments the same way: "--opt value" and "--opt=value" alike, --help
 * and --version anywhere, "--" ends the options, and a usage error prints one line plus
 * "try 'modelpool CMD --help'". A command's loop:
 *
 *     mp_app_args a = mp_app_args_begin("info", argc, argv, usage_info);
 *     while (mp_app_args_next(&a)) {
 *         if (mp_app_opt_str(&a, "--model", &dir) || mp_app_opt_int(&a, "--port", 0, 65535, &port)) continue;
 *         mp_app_unknown(&a);
 *     }
 *     if (a.finished) return a.rc;
 *
 * Each mp_app_opt_* returns 1 when the current argument is that option (whether or not its value
 * was valid: a bad value prints the error and ends the scan with rc 2), 0 otherwise. */
typedef struct mp_app_args {
    const char *cmd;            /* "transcribe", named in messages */
    int argc;
    char **argv;
    void (*usage)(FILE *f);     /* prints the command's --help text */
    int i;                      /* index of the current argument */
    const char *arg;            /* the current argument */
    int positional_only;        /* after "--" */
    int finished;               /* stop: --help/--version answered (rc 0) or a usage error (rc 2) */
    int rc;
} mp_app_args;

mp_app_args mp_app_args_begin(const char *cmd, int argc, char **argv, void (*usage)(FILE *f));
/* Advance to the next argument; 0 at the end or once finished. */
int mp_app_args_next(mp_app_args *a);
/* The current argument is not an option ('-' alone is a file: standard input). */
int mp_app_positional(const mp_app_args *a);
int mp_app_flag(mp_app_args *a, const char *name);
int mp_app_opt_str(mp_app_args *a, const char *name, const char **out);
int mp_app_opt_long(mp_app_args *a, const char *name, long lo, long hi, long *out);
int mp_app_opt_int(mp_app_args *a, const char *name, int lo, int hi, int *out);
int mp_app_opt_double(mp_app_args *a, const char *name, double lo, double hi, double *out);
/* The current argument matched nothing: "unknown option", finished with rc 2. */
void mp_app_unknown(mp_app_args *a);
/* A usage error found outside the scan: the one line, the hint, returns MP_APP_EXIT_USAGE. cmd ""
 * is the top-level command. */
int mp_app_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --dtype fp32|int8 (model.c), the model option every command that loads a model takes; the help
 * line is MP_APP_DTYPE_HELP. Same contract as the other mp_app_opt_*. */
int mp_app_opt_dtype(mp_app_args *a, mp_dtype *out);
#define MP_APP_DTYPE_HELP "int8: quantized big matrix products (1/4 of the weight memory)"

/* Parse s as an integer / number in [lo, hi]; 0 when it is not one. */
int mp_app_parse_long(const char *s, long lo, long hi, long *out);
int mp_app_parse_double(const char *s, double lo, double hi, double *out);

/* ---- output (subtitles.c, words.c) -------------------------------------------------------------- */

/* The result's words as SubRip (vtt = 0) or WebVTT (vtt = 1) cues; malloc'ed, NULL when out of memory. */
char *mp_app_subtitles(const mp_result *res, int vtt);
/* The result's words as a JSON array of {word, start, end, confidence} (new reference). */
json_t *mp_app_words_json(const mp_result *res);

#endif
