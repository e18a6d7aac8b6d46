/* request.h - the one request layer: the decoding and audio options of a transcription, as the CLI's
 * flags (`transcribe --lm-alpha 1`, `--opt=value` alike) and the server's form fields (`lm_alpha=1`)
 * give them. Both go through mp_app_request_set() and mp_app_request_build(), so they accept
 * exactly the same values, with the same ranges, defaults, meaning and error messages.
 *
 * Options (name = form field; CLI flag = "--" + name with '-' for '_'):
 *   beam        integer [0, 1024]; 0 = greedy. Not given: the default (CLI greedy, serve --beam),
 *               except that words, a lexicon file, an LM or hotwords imply beam 16 (they only act
 *               in beam search).
 *   hotwords    "word[:boost],..." (boost in [-100, 100], default 5; at most 64). Repeatable.
 *   words       word list restricting the output, comma or whitespace separated (at most 8192).
 *   lexicon     model | none | FILE (FILE only where files may be read: the CLI).
 *   lm          on | off | FILE.arpa (FILE only in the CLI; "on" = the LM loaded at startup).
 *   lm_alpha    LM weight, number [-100, 100]; lm_beta: word insertion bonus, [-100, 100].
 *   channel     integer [0, 255]: keep that channel instead of mixing to mono.
 *   raw_format  s16le | mulaw (ulaw) | alaw: headerless input; raw_rate [1000, 384000] Hz needs it.
 * An option given is explicit (mp_request_config.explicit_fields), even at the library's default
 * value: the model directory's decoding.json fills only the decoding options a request leaves out.
 */
#ifndef MP_APP_REQUEST_H
#define MP_APP_REQUEST_H

#include "common/app.h"

#include <stdio.h>

#define MP_APP_BEAM_MAX 1024
#define MP_APP_IMPLIED_BEAM 16
#define MP_APP_MAX_HOTWORDS 64
#define MP_APP_MAX_WORDS 8192

typedef enum mp_app_option_kind { MP_APP_DECODING_OPTION, MP_APP_AUDIO_OPTION } mp_app_option_kind;

/* A refused option. */
typedef struct mp_app_error {
    const char *option;      /* its name ("lm_alpha"); callers spell it as their flag or field */
    mp_app_option_kind kind;
    mp_status st;            /* MP_ERR_INVALID_ARG for a value outside the option's set; the library's
                                status when a file the option names does not load */
    char message[512];       /* without the option's name: "expected a number in [-100, 100], got 'x'" */
} mp_app_error;

/* What a request asked for (unset: -1 / NULL / 0), then what mp_app_request_build made of it. */
typedef struct mp_app_request {
    int beam;                            /* -1: not given */
    mp_hotword hot[MP_APP_MAX_HOTWORDS]; /* phrases owned (malloc'ed) */
    size_t n_hot;
    char **words;                        /* owned; n_words of them */
    size_t n_words, cap_words;
    char *lexicon, *lm;                  /* owned copies of the values, NULL: not given */
    int has_lm_alpha, has_lm_beta;
    float lm_alpha, lm_beta;
    int channel;                         /* -1: not given */
    mp_raw_format raw_format;            /* MP_RAW_NONE: not given */
    int raw_rate;                        /* 0: not given */
    /* built */
    mp_request_config req;
    mp_audio_config audio;
    mp_lexicon *own_lexicon;             /* from words or a lexicon file; req.lexicon points to it */
    mp_lm *own_lm;                       /* from an lm file */
} mp_app_request;

/* What a request starts from: the CLI's (mp_app_request_defaults()) or serve's options. */
typedef struct mp_app_defaults {
    int beam;                    /* 0 = greedy */
    const mp_lexicon *lexicon;   /* serve --lexicon; NULL: the model's own list */
    const mp_lm *lm;             /* serve --lm; what lm=on means */
    float lm_alpha, lm_beta;
    int allow_files;             /* lexicon and lm may name files (CLI), or only model|none / on|off */
    double max_audio_s;          /* 0: the library's default */
    int timeout_ms;              /* -1: the pool's default */
} mp_app_defaults;

mp_app_defaults mp_app_request_defaults(void);

void mp_app_request_init(mp_app_request *rq);
/* Set option `name` from text. Returns 1, or 0 with err filled (also for a name that is not an
 * option: see mp_app_request_is_option). */
int mp_app_request_set(mp_app_request *rq, const char *name, const char *value, mp_app_error *err);
int mp_app_request_is_option(const char *name);
/* Option i's name, in the order of request.h; NULL past the last. */
const char *mp_app_request_option_name(size_t i);

/* Fill rq->req and rq->audio from what was set over def, loading files and word lists against
 * model. Returns 1, or 0 with err filled. Call once per mp_app_request. */
int mp_app_request_build(mp_app_request *rq, const mp_model *model, const mp_app_defaults *def, mp_app_error *err);
void mp_app_request_free(mp_app_request *rq);

/* ---- on a command line (apps/common/app.h's scanner) --------------------------------------------- */

/* When the current argument is option `name` as a flag (--lm-alpha), set it in rq: 1 (a bad value
 * prints the error and finishes the scan), else 0. mp_app_opt_request tries every option. */
int mp_app_opt_request_one(mp_app_args *a, const char *name, mp_app_request *rq);
/* The same under another flag (an alias: --hotword for hotwords). */
int mp_app_opt_request_flag(mp_app_args *a, const char *flag, const char *name, mp_app_request *rq);
int mp_app_opt_request(mp_app_args *a, mp_app_request *rq);
/* Print a refused option as cmd's error ("--beam: ...", a usage error for a bad value; the status's
 * text for a file that does not load); returns the exit code. */
int mp_app_report_option(const char *cmd, const mp_app_error *err);

/* The options' help lines, as CLI flags ("  --beam N ...", cli = 1) or form fields (cli = 0). */
void mp_app_request_help(FILE *f, int cli);

#endif
