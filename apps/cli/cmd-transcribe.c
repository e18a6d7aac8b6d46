/* cmd-transcribe.c - `modelpool transcribe`: audio files to text. The decoding and audio options are
 * the request layer's (apps/common/request.h), the same the server reads from its form fields. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage_transcribe(FILE *f) {
    fprintf(f, "usage: modelpool transcribe [options] FILE...   (FILE '-' reads standard input)\n"
               "\n"
               "  --model DIR                   model directory (default: the embedded model)\n"
               "  --arch NAME                   random-weight model instead (base|large|tiny; for testing)\n"
               "  --format text|json|srt|vtt    text: the transcript (several files: FILE<TAB>text);\n"
               "                                json: one object per file per line with words and times;\n"
               "                                srt, vtt: subtitle cues from the word times (one input file only)\n"
               "  --dump-logits F.npy           write float32 logits [frames, vocab] (one input file only)\n"
               "  --workers N                   files transcribed at once (default: number of cores)\n"
               "  --dtype fp32|int8             " MP_APP_DTYPE_HELP "\n"
               "  --chunk-length S              seconds per chunk for long audio (default 20; 0 = never chunk)\n"
               "  --progress, --no-progress     progress bar on a terminal (default: when useful)\n"
               "Decoding and audio (as the server's request fields; --opt=value works too):\n");
    mp_app_request_help(f, 1);
    fprintf(f, "  --hotword W[:BOOST]           one hotword (repeatable), as --hotwords\n"
               "  --no-lexicon                  as --lexicon none\n"
               "\n"
               "Examples:\n"
               "  modelpool transcribe samples/phone-gsm.wav\n"
               "  modelpool transcribe --beam 16 --format srt call.wav > call.srt\n");
    mp_app_print_exit_codes(f);
}

typedef struct transcribe_opts {
    const char *dir, *arch, *dump;
    int workers;
    mp_dtype dtype;
    double chunk;            /* -1: the library's default */
    mp_cli_output out;
    mp_app_request rq;
    const char **files;
    int n_files;
} transcribe_opts;

/* Usage errors the scan cannot see: format, file count. -1 when the options make sense. */
static int check_args(const transcribe_opts *o) {
    const char *fmt = o->out.format;
    if (strcmp(fmt, "text") && strcmp(fmt, "json") && strcmp(fmt, "srt") && strcmp(fmt, "vtt"))
        return mp_app_usage_error("transcribe", "--format: expected text, json, srt or vtt, got '%s'", fmt);
    if (o->n_files == 0) return mp_app_usage_error("transcribe", "no input files");
    int rc = mp_app_check_model_args("transcribe", NULL, o->arch, o->dtype);
    if (rc >= 0) return rc;
    if ((!strcmp(fmt, "srt") || !strcmp(fmt, "vtt")) && o->n_files != 1)
        return mp_app_usage_error("transcribe", "--format %s takes exactly one input file", fmt);
    if (o->dump && o->n_files != 1) return mp_app_usage_error("transcribe", "--dump-logits takes exactly one input file");
    return -1;
}

/* Returns -1 to go on, else the exit code. o->files and o->rq are freed by the caller either way. */
static int parse_args(int argc, char **argv, transcribe_opts *o) {
    *o = (transcribe_opts){.chunk = -1, .out = {.format = "text", .progress = -1}};
    mp_app_request_init(&o->rq);
    if (!(o->files = calloc((size_t)argc, sizeof *o->files))) return mp_app_exit_code(MP_ERR_NOMEM);
    mp_app_args a = mp_app_args_begin("transcribe", argc, argv, usage_transcribe);
    while (mp_app_args_next(&a)) {
        if (mp_app_positional(&a)) {
            o->files[o->n_files++] = a.arg;
        } else if (mp_app_opt_str(&a, "--model", &o->dir) || mp_app_opt_str(&a, "--arch", &o->arch) ||
                   mp_app_opt_str(&a, "--format", &o->out.format) || mp_app_opt_str(&a, "--dump-logits", &o->dump) ||
                   mp_app_opt_int(&a, "--workers", 0, 256, &o->workers) || mp_app_opt_dtype(&a, &o->dtype) ||
                   mp_app_opt_double(&a, "--chunk-length", 0, 3600, &o->chunk) || mp_app_opt_request(&a, &o->rq) ||
                   mp_app_opt_request_flag(&a, "--hotword", "hotwords", &o->rq)) {
        } else if (mp_app_flag(&a, "--no-lexicon")) {
            mp_app_error err;
            if (!mp_app_request_set(&o->rq, "lexicon", "none", &err)) return mp_app_report_option("transcribe", &err);
        } else if (mp_app_flag(&a, "--progress") || mp_app_flag(&a, "--no-progress")) {
            o->out.progress = a.arg[2] != 'n';
        } else {
            mp_app_unknown(&a);
        }
    }
    if (a.finished) return a.rc;
    o->out.n_files = o->n_files;
    o->out.dump = o->dump;
    return check_args(o);
}

/* Model, request, pool, then the files. Frees what it made (o->rq's lexicon and LM before the model). */
static int run(transcribe_opts *o) {
    mp_model *model = NULL;
    mp_pool *pool = NULL;
    mp_app_defaults def = mp_app_request_defaults();
    mp_app_error err;
    mp_status st;
    int rc;
    if ((st = mp_app_load_model(o->dir, o->arch, o->dtype, &model)) != MP_OK) {
        rc = mp_app_report_model("transcribe", st);
    } else if (!mp_app_request_build(&o->rq, model, &def, &err)) {
        rc = mp_app_report_option("transcribe", &err);
    } else {
        mp_request_config req = o->rq.req;
        req.keep_logits = o->dump != NULL;
        if (o->chunk >= 0) {
            req.chunk_length_s = o->chunk;
            req.stride_length_s = o->chunk / 6;
        }
        mp_pool_config pc = mp_pool_default_config();
        pc.n_workers = o->workers;
        int n_threads = o->workers ? o->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
        if ((st = mp_pool_create(model, &pc, &pool)) != MP_OK)
            rc = mp_app_report("transcribe", st);
        else
            rc = mp_cli_batch(pool, &o->rq.audio, &req, o->files, n_threads < 1 ? 1 : n_threads, &o->out);
    }
    mp_pool_free(pool);
    mp_app_request_free(&o->rq);
    mp_model_free(model);
    return rc;
}

int mp_cli_transcribe(int argc, char **argv) {
    transcribe_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc < 0) rc = run(&o);
    mp_app_request_free(&o.rq);
    free(o.files);
    return rc;
}
