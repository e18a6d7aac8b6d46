/* cli.h - what the modelpool command's files share: subcommands and the status table. */
#ifndef MP_CLI_H
#define MP_CLI_H

#include "modelpool.h"

/* Subcommands; argv[0] is the subcommand name. Each returns the process exit code. */
int mp_cli_transcribe(int argc, char **argv);
int mp_cli_info(int argc, char **argv);
int mp_cli_bench(int argc, char **argv);
int mp_cli_serve(int argc, char **argv); /* server/mp-server.c, when built with MP_BUILD_SERVER */

/* The one table from mp_status to names, exit codes and HTTP statuses (curl's exit codes are its
 * CURLcodes; ours are a fixed mapping so scripts can rely on them). */
typedef struct mp_cli_status_info {
    const char *name;   /* "MP_ERR_AUDIO_FORMAT" */
    int exit_code;      /* process exit code when this error ends the command */
    int http_status;    /* HTTP response status for the server */
} mp_cli_status_info;

mp_cli_status_info mp_cli_status(mp_status st);

/* The default model directory (compiled in), overridable with MODELPOOL_MODEL. */
const char *mp_cli_default_model(void);

/* --model DIR (NULL: the default model) or, when arch is set, random weights of a named architecture. */
mp_status mp_cli_load_model(const char *dir, const char *arch, mp_model **out);
/* --dtype fp32|int8 (mp_model_config.dtype for mp_cli_load_model); on a bad value print and return 0. */
extern mp_dtype mp_cli_dtype;
int mp_cli_parse_dtype(const char *cmd, const char *s);

/* Parse option value s into [lo, hi]; on failure print "modelpool CMD: OPT: ..." and return 0. */
int mp_cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int mp_cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

/* The result's words as SubRip (vtt = 0) or WebVTT (vtt = 1) cues; malloc'ed, NULL when out of memory. */
char *mp_cli_subtitles(const mp_result *res, int vtt);

#endif
