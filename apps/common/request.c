/* request.c - the one request layer shared by `modelpool transcribe` and the server (see request.h):
 * each option's range, default, meaning and error message, written once. */
#include "common/request.h"

#include "common/app.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum opt_id { BEAM, HOTWORDS, WORDS, LEXICON, LM, LM_ALPHA, LM_BETA, CHANNEL, RAW_FORMAT, RAW_RATE } opt_id;

/* One option: how its value is read, and its help line. */
static const struct spec {
    opt_id id;
    const char *name;
    mp_app_option_kind kind;
    double lo, hi;          /* integers and numbers */
    const char *note;       /* after the range in messages */
    const char *metavar;
    const char *help;
    const char *file_metavar, *file_help; /* appended where files may be read (the CLI) */
} specs[] = {
    {BEAM, "beam", MP_APP_DECODING_OPTION, 0, MP_APP_BEAM_MAX, " (0 = greedy)", "N",
     "beam search of width N; 0 = greedy (default 0; 16 with words, lexicon, lm, hotwords)", NULL, NULL},
    {HOTWORDS, "hotwords", MP_APP_DECODING_OPTION, -100, 100, "", "W[:BOOST],...",
     "favour words or phrases (boost in [-100, 100], default 5; at most 64)", NULL, NULL},
    {WORDS, "words", MP_APP_DECODING_OPTION, 0, 0, "", "LIST",
     "restrict the output to these words (comma or space separated)", NULL, NULL},
    {LEXICON, "lexicon", MP_APP_DECODING_OPTION, 0, 0, "", "model|none",
     "word list for beam search: the model's own (default) or none", "|FILE", "; FILE: one word a line"},
    {LM, "lm", MP_APP_DECODING_OPTION, 0, 0, "", "on|off", "word n-gram LM for beam search (on: the one serve --lm loaded)",
     "|FILE", "; FILE.arpa"},
    {LM_ALPHA, "lm_alpha", MP_APP_DECODING_OPTION, -100, 100, "", "A", "LM weight (default 0.5)", NULL, NULL},
    {LM_BETA, "lm_beta", MP_APP_DECODING_OPTION, -100, 100, "", "B", "word insertion bonus (default 1.0)", NULL, NULL},
    {CHANNEL, "channel", MP_APP_AUDIO_OPTION, 0, 255, "", "K", "use channel K (0-based) instead of mixing to mono", NULL, NULL},
    {RAW_FORMAT, "raw_format", MP_APP_AUDIO_OPTION, 0, 0, "", "s16le|mulaw|alaw", "headerless input", NULL, NULL},
    {RAW_RATE, "raw_rate", MP_APP_AUDIO_OPTION, 1000, 384000, " (Hz)", "HZ",
     "its sample rate (default 8000; needs raw_format)", NULL, NULL},
};
#define N_SPECS (sizeof specs / sizeof specs[0])

const char *mp_app_request_option_name(size_t i) { return i < N_SPECS ? specs[i].name : NULL; }

static const struct spec *find(const char *name) {
    for (size_t i = 0; i < N_SPECS; i++)
        if (!strcmp(specs[i].name, name)) return &specs[i];
    return NULL;
}

int mp_app_request_is_option(const char *name) { return find(name) != NULL; }

static int fail(mp_app_error *err, const struct spec *s, mp_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(mp_app_error *err, const struct spec *s, mp_status st, const char *fmt, ...) {
    err->option = s->name;
    err->kind = s->kind;
    err->st = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return 0;
}

mp_app_defaults mp_app_request_defaults(void) {
    mp_request_config r = mp_request_default_config();
    return (mp_app_defaults){.lm_alpha = r.lm_alpha, .lm_beta = r.lm_beta, .allow_files = 1, .timeout_ms = -1};
}

void mp_app_request_init(mp_app_request *rq) {
    *rq = (mp_app_request){.beam = -1, .channel = -1};
}

void mp_app_request_free(mp_app_request *rq) {
    for (size_t i = 0; i < rq->n_hot; i++) free((char *)rq->hot[i].phrase);
    for (size_t i = 0; i < rq->n_words; i++) free(rq->words[i]);
    free(rq->words);
    free(rq->lexicon);
    free(rq->lm);
    mp_lexicon_free(rq->own_lexicon);
    mp_lm_free(rq->own_lm);
    mp_app_request_init(rq);
}

/* ---- reading values ------------------------------------------------------------------------------ */

/* One "phrase[:boost]" (leading spaces dropped; empty ones skipped). */
static int add_hotword(mp_app_request *rq, const struct spec *s, char *tok, mp_app_error *err) {
    while (*tok == ' ') tok++;
    if (!*tok) return 1;
    if (rq->n_hot == MP_APP_MAX_HOTWORDS) return fail(err, s, MP_ERR_INVALID_ARG, "at most %d hotwords", MP_APP_MAX_HOTWORDS);
    double boost = 5.0;
    char *colon = strrchr(tok, ':');
    if (colon) {
        *colon = '\0';
        if (!mp_app_parse_double(colon + 1, s->lo, s->hi, &boost))
            return fail(err, s, MP_ERR_INVALID_ARG, "'%s': boost must be a number in [%g, %g], got '%s'", tok, s->lo,
                        s->hi, colon + 1);
    }
    char *phrase = strdup(tok);
    if (!phrase) return fail(err, s, MP_ERR_NOMEM, "out of memory");
    rq->hot[rq->n_hot++] = (mp_hotword){.phrase = phrase, .boost = (float)boost};
    return 1;
}

static int add_word(mp_app_request *rq, const struct spec *s, const char *w, mp_app_error *err) {
    if (rq->n_words == MP_APP_MAX_WORDS) return fail(err, s, MP_ERR_INVALID_ARG, "at most %d words", MP_APP_MAX_WORDS);
    if (rq->n_words == rq->cap_words) {
        size_t cap = rq->cap_words ? 2 * rq->cap_words : 64;
        char **p = realloc(rq->words, cap * sizeof *p);
        if (!p) return fail(err, s, MP_ERR_NOMEM, "out of memory");
        rq->words = p;
        rq->cap_words = cap;
    }
    if (!(rq->words[rq->n_words] = strdup(w))) return fail(err, s, MP_ERR_NOMEM, "out of memory");
    rq->n_words++;
    return 1;
}

/* A comma-separated (hotwords) or comma/space-separated (words) list, appended to what is there. */
static int add_list(mp_app_request *rq, const struct spec *s, const char *value, mp_app_error *err) {
    char *copy = strdup(value);
    if (!copy) return fail(err, s, MP_ERR_NOMEM, "out of memory");
    const char *seps = s->id == WORDS ? ", \t\r\n" : ",";
    int ok = 1;
    for (char *save = NULL, *tok = strtok_r(copy, seps, &save); tok && ok; tok = strtok_r(NULL, seps, &save))
        ok = s->id == WORDS ? add_word(rq, s, tok, err) : add_hotword(rq, s, tok, err);
    free(copy);
    return ok;
}

static int set_raw_format(mp_app_request *rq, const struct spec *s, const char *v, mp_app_error *err) {
    if (!strcmp(v, "s16le"))
        rq->raw_format = MP_RAW_S16LE;
    else if (!strcmp(v, "mulaw") || !strcmp(v, "ulaw"))
        rq->raw_format = MP_RAW_MULAW;
    else if (!strcmp(v, "alaw"))
        rq->raw_format = MP_RAW_ALAW;
    else
        return fail(err, s, MP_ERR_INVALID_ARG, "expected s16le, mulaw (or ulaw) or alaw, got '%s'", v);
    return 1;
}

static int set_text(char **dst, const struct spec *s, const char *v, mp_app_error *err) {
    char *copy = strdup(v);
    if (!copy) return fail(err, s, MP_ERR_NOMEM, "out of memory");
    free(*dst);
    *dst = copy;
    return 1;
}

static int set_number(mp_app_request *rq, const struct spec *s, const char *v, mp_app_error *err) {
    double x;
    long n;
    int is_int = s->id == BEAM || s->id == CHANNEL || s->id == RAW_RATE;
    if (is_int && !mp_app_parse_long(v, (long)s->lo, (long)s->hi, &n))
        return fail(err, s, MP_ERR_INVALID_ARG, "expected an integer in [%g, %g]%s, got '%s'", s->lo, s->hi, s->note, v);
    if (!is_int && !mp_app_parse_double(v, s->lo, s->hi, &x))
        return fail(err, s, MP_ERR_INVALID_ARG, "expected a number in [%g, %g]%s, got '%s'", s->lo, s->hi, s->note, v);
    switch (s->id) {
    case BEAM: rq->beam = (int)n; break;
    case CHANNEL: rq->channel = (int)n; break;
    case RAW_RATE: rq->raw_rate = (int)n; break;
    case LM_ALPHA: rq->lm_alpha = (float)x, rq->has_lm_alpha = 1; break;
    default: rq->lm_beta = (float)x, rq->has_lm_beta = 1; break;
    }
    return 1;
}

int mp_app_request_set(mp_app_request *rq, const char *name, const char *value, mp_app_error *err) {
    const struct spec *s = find(name);
    if (!s) {
        static const struct spec unknown = {.name = "option"};
        return fail(err, &unknown, MP_ERR_INVALID_ARG, "'%s' is not a request option", name);
    }
    switch (s->id) {
    case HOTWORDS:
    case WORDS: return add_list(rq, s, value, err);
    case LEXICON: return set_text(&rq->lexicon, s, value, err);
    case LM: return set_text(&rq->lm, s, value, err);
    case RAW_FORMAT: return set_raw_format(rq, s, value, err);
    case BEAM:
    case LM_ALPHA:
    case LM_BETA:
    case CHANNEL:
    case RAW_RATE: return set_number(rq, s, value, err);
    }
    return 0;
}

/* ---- building the configs ------------------------------------------------------------------------ */

/* A library failure while loading what option s names: its status and mp_last_error(). */
static int load_failed(mp_app_error *err, opt_id id, mp_status st) {
    return fail(err, &specs[id], st, "%s", mp_last_error());
}

/* lexicon and words -> req.lexicon / use_model_lexicon. *implied: a list that only acts in beam search. */
static int build_lexicon(mp_app_request *rq, const mp_model *model, const mp_app_defaults *def, int *implied,
                         mp_app_error *err) {
    const char *v = rq->lexicon;
    int is_file = v && strcmp(v, "model") && strcmp(v, "none");
    if (is_file && !def->allow_files)
        return fail(err, &specs[LEXICON], MP_ERR_INVALID_ARG, "expected model or none, got '%s'", v);
    if (is_file && rq->n_words)
        return fail(err, &specs[WORDS], MP_ERR_INVALID_ARG, "give words or a lexicon file, not both");
    if (v && !strcmp(v, "none")) {
        rq->req.lexicon = NULL;
        rq->req.use_model_lexicon = 0;
    }
    mp_status st = MP_OK;
    if (is_file && (st = mp_lexicon_load(model, v, &rq->own_lexicon)) != MP_OK) return load_failed(err, LEXICON, st);
    if (rq->n_words &&
        (st = mp_lexicon_from_words(model, (const char *const *)rq->words, rq->n_words, &rq->own_lexicon)) != MP_OK)
        return load_failed(err, WORDS, MP_ERR_INVALID_ARG); /* a bad word is a bad value */
    if (rq->own_lexicon) {
        rq->req.lexicon = rq->own_lexicon;
        *implied = 1;
    }
    return 1;
}

/* lm -> req.lm. */
static int build_lm(mp_app_request *rq, const mp_app_defaults *def, int *implied, mp_app_error *err) {
    const char *v = rq->lm;
    if (!v) return 1;
    mp_status st;
    if (!strcmp(v, "off")) {
        rq->req.lm = NULL;
    } else if (!strcmp(v, "on")) {
        if (!def->lm)
            return fail(err, &specs[LM], MP_ERR_INVALID_ARG,
                        "'on' means the language model loaded at startup, and none was (serve --lm FILE)");
        rq->req.lm = def->lm;
    } else if (!def->allow_files) {
        return fail(err, &specs[LM], MP_ERR_INVALID_ARG, "expected on or off, got '%s'", v);
    } else if ((st = mp_lm_load_arpa(v, &rq->own_lm)) != MP_OK) {
        return load_failed(err, LM, st);
    } else {
        rq->req.lm = rq->own_lm;
    }
    *implied |= rq->req.lm != NULL;
    return 1;
}

static int build_audio(mp_app_request *rq, const mp_app_defaults *def, mp_app_error *err) {
    rq->audio = mp_audio_default_config();
    if (def->max_audio_s > 0) rq->audio.max_duration_s = def->max_audio_s; /* bounds the samples a request holds */
    if (rq->channel >= 0) rq->audio.channel = rq->channel;
    if (rq->raw_format != MP_RAW_NONE) rq->audio.raw_format = rq->raw_format;
    if (rq->raw_rate && rq->raw_format == MP_RAW_NONE)
        return fail(err, &specs[RAW_RATE], MP_ERR_INVALID_ARG, "is for headerless input: give raw_format too");
    if (rq->raw_rate) rq->audio.raw_rate = rq->raw_rate;
    return 1;
}

int mp_app_request_build(mp_app_request *rq, const mp_model *model, const mp_app_defaults *def, mp_app_error *err) {
    rq->req = mp_request_default_config();
    rq->req.timeout_ms = def->timeout_ms;
    rq->req.lexicon = def->lexicon;
    rq->req.lm = def->lm;
    rq->req.lm_alpha = rq->has_lm_alpha ? rq->lm_alpha : def->lm_alpha;
    rq->req.lm_beta = rq->has_lm_beta ? rq->lm_beta : def->lm_beta;
    rq->req.hotwords = rq->n_hot ? rq->hot : NULL;
    rq->req.n_hotwords = rq->n_hot;
    int implied = rq->n_hot > 0; /* hotwords, word lists and LMs only act in beam search */
    if (!build_lexicon(rq, model, def, &implied, err) || !build_lm(rq, def, &implied, err)) return 0;
    int beam = rq->beam >= 0 ? rq->beam : def->beam;
    if (rq->beam < 0 && beam == 0 && implied) beam = MP_APP_IMPLIED_BEAM;
    /* What a request names is explicit even at the library's defaults (beam 0 is greedy, lm off no
     * LM): the model's decoding.json only fills what is left out. */
    if (rq->beam >= 0 || def->beam > 0) rq->req.explicit_fields |= MP_REQ_DECODER;
    if (rq->lexicon) rq->req.explicit_fields |= MP_REQ_WORD_LIST;
    if (rq->lm || rq->has_lm_alpha || rq->has_lm_beta) rq->req.explicit_fields |= MP_REQ_LM;
    if (beam > 0) {
        rq->req.decoder = MP_DECODER_BEAM;
        rq->req.beam_width = beam;
    }
    return build_audio(rq, def, err);
}

/* ---- command lines ------------------------------------------------------------------------------- */

/* "lm_alpha" -> "--lm-alpha" */
static void flag_name(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "--%s", name);
    for (char *p = buf; *p; p++)
        if (*p == '_') *p = '-';
}

int mp_app_report_option(const char *cmd, const mp_app_error *err) {
    char flag[64];
    flag_name(err->option, flag, sizeof flag);
    if (err->st == MP_ERR_INVALID_ARG) return mp_app_usage_error(cmd, "%s: %s", flag, err->message);
    fprintf(stderr, "modelpool %s: %s: %s\n", cmd, mp_strerror(err->st), err->message);
    return mp_app_exit_code(err->st);
}

int mp_app_opt_request_flag(mp_app_args *a, const char *flag, const char *name, mp_app_request *rq) {
    const char *v = NULL;
    if (!mp_app_opt_str(a, flag, &v)) return 0;
    mp_app_error err;
    if (v && !mp_app_request_set(rq, name, v, &err)) {
        a->rc = mp_app_report_option(a->cmd, &err);
        a->finished = 1;
    }
    return 1;
}

int mp_app_opt_request_one(mp_app_args *a, const char *name, mp_app_request *rq) {
    char flag[64];
    flag_name(name, flag, sizeof flag);
    return mp_app_opt_request_flag(a, flag, name, rq);
}

int mp_app_opt_request(mp_app_args *a, mp_app_request *rq) {
    for (size_t i = 0; i < N_SPECS; i++)
        if (mp_app_opt_request_one(a, specs[i].name, rq)) return 1;
    return 0;
}

/* ---- help ---------------------------------------------------------------------------------------- */

void mp_app_request_help(FILE *f, int cli) {
    for (size_t i = 0; i < N_SPECS; i++) {
        const struct spec *s = &specs[i];
        int files = cli && s->file_metavar;
        char flag[64], name[128];
        flag_name(s->name, flag, sizeof flag);
        snprintf(name, sizeof name, "%s %s%s", cli ? flag : s->name, s->metavar, files ? s->file_metavar : "");
        fprintf(f, "  %-29s %s%s\n", name, s->help, files ? s->file_help : "");
    }
}
