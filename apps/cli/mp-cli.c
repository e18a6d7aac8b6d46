/* mp-cli.c - the `modelpool` command: a thin client of modelpool.h.
 * Subcommands: transcribe, info, bench (cmd-bench.c), serve (server/mp-server.c). */
#include "common/cli.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: modelpool <command> [options]\n"
            "\n"
            "commands:\n"
            "  transcribe   transcribe audio files to text\n"
            "  info         describe a model\n"
            "  bench        measure pool throughput, latency and memory\n"
#ifdef MP_HAVE_SERVER
            "  serve        HTTP service (OpenAI-compatible /v1/audio/transcriptions, /metrics, /health)\n"
#endif
            "\n"
            "`modelpool <command> --help` describes each. Without --model the embedded model is used\n"
            "(%s; MODELPOOL_MODEL overrides).\n",
            mp_cli_default_model());
}

/* ---- info --------------------------------------------------------------------------------------- */

static void usage_info(FILE *f) {
    fprintf(f, "usage: modelpool info [--model DIR | --arch base|large|tiny] [--format text|json]\n"
               "Print the architecture, parameter count, weight bytes, vocabulary size, frame stride and\n"
               "on-disk dtype of a model.\n");
}

int mp_cli_info(int argc, char **argv) {
    const char *dir = NULL, *arch = NULL, *format = "text";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_info(stdout);
            return 0;
        } else if (!strcmp(a, "--model") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(a, "--arch") && i + 1 < argc) {
            arch = argv[++i];
        } else if (!strcmp(a, "--format") && i + 1 < argc) {
            format = argv[++i];
        } else {
            fprintf(stderr, "modelpool info: unknown or incomplete option '%s'\n", a);
            usage_info(stderr);
            return 2;
        }
    }
    if (strcmp(format, "text") && strcmp(format, "json")) {
        fprintf(stderr, "modelpool info: --format must be text or json\n");
        return 2;
    }
    mp_model *model = NULL;
    mp_status st = mp_cli_load_model(dir, arch, &model);
    if (st != MP_OK) {
        fprintf(stderr, "modelpool info: %s: %s\n", mp_strerror(st), mp_last_error());
        return mp_cli_status(st).exit_code;
    }
    mp_model_info mi;
    mp_model_get_info(model, &mi);
    if (!strcmp(format, "json")) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:b, "
                              "s:s, s:b, s:I, s:I}",
                              "architecture", mi.architecture, "path", mi.path, "dtype", mi.dtype,
                              "n_params", (json_int_t)mi.n_params, "weight_bytes", (json_int_t)mi.weight_bytes,
                              "weight_mb", (double)mi.weight_bytes / 1e6, "vocab_size", mi.vocab_size,
                              "hidden_size", mi.hidden_size, "n_layers", mi.n_layers, "n_heads", mi.n_heads,
                              "intermediate_size", mi.intermediate_size, "n_conv_layers", mi.n_conv_layers,
                              "frame_stride", mi.frame_stride, "receptive_field", mi.receptive_field,
                              "sample_rate", mi.sample_rate,
                              "frame_s", (double)mi.frame_stride / (mi.sample_rate ? mi.sample_rate : 16000),
                              "stable_layer_norm", mi.stable_layer_norm, "feat_extract_norm",
                              mi.group_norm ? "group" : "layer", "has_lexicon", mi.has_lexicon,
                              "scratch_bytes_8s", (json_int_t)mp_model_scratch_bytes(model, 8.0),
                              "scratch_bytes_20s", (json_int_t)mp_model_scratch_bytes(model, 20.0));
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        if (s) puts(s);
        free(s);
        json_decref(o);
    } else {
        printf("model:            %s\n", mi.path[0] ? mi.path : "(random weights)");
        printf("architecture:     %s\n", mi.architecture);
        printf("parameters:       %llu\n", (unsigned long long)mi.n_params);
        printf("weight bytes:     %llu (%.1f MB fp32, one shared copy)\n", (unsigned long long)mi.weight_bytes,
               (double)mi.weight_bytes / 1e6);
        printf("dtype on disk:    %s\n", mi.dtype);
        printf("vocabulary:       %d tokens\n", mi.vocab_size);
        printf("transformer:      %d layers, hidden %d, %d heads, ffn %d, %s layer norm\n", mi.n_layers,
               mi.hidden_size, mi.n_heads, mi.intermediate_size, mi.stable_layer_norm ? "stable (pre)" : "post");
        printf("feature encoder:  %d conv layers, %s norm\n", mi.n_conv_layers, mi.group_norm ? "group" : "layer");
        printf("frame stride:     %d samples (%.0f ms at %d Hz), receptive field %d samples\n", mi.frame_stride,
               1000.0 * mi.frame_stride / (mi.sample_rate ? mi.sample_rate : 16000), mi.sample_rate,
               mi.receptive_field);
        printf("scratch/worker:   %.1f MB for 8 s, %.1f MB for a 20 s chunk (the longest piece run at once)\n",
               (double)mp_model_scratch_bytes(model, 8.0) / 1e6, (double)mp_model_scratch_bytes(model, 20.0) / 1e6);
        printf("word list:        %s\n", mi.has_lexicon ? "yes (used by --beam)" : "no");
    }
    mp_model_free(model);
    return 0;
}

/* ---- transcribe ----------------------------------------------------------------------------------- */

static void usage_transcribe(FILE *f) {
    fprintf(f,
            "usage: modelpool transcribe [options] FILE...   (FILE '-' reads standard input)\n"
            "\n"
            "  --model DIR            model directory (default: the embedded model)\n"
            "  --arch NAME            random-weight model instead (base|large|tiny; for testing)\n"
            "  --format text|json|srt|vtt   text: the transcript (several files: FILE<TAB>text);\n"
            "                         json: one object per file per line with words and times;\n"
            "                         srt, vtt: subtitle cues from the word times (one input file only)\n"
            "  --dump-logits F.npy    write float32 logits [frames, vocab] (one input file only)\n"
            "  --workers N            files transcribed at once (default: number of cores)\n"
            "  --dtype fp32|int8      int8: quantized big matrix products (1/4 of the weight memory)\n"
            "  --beam N               beam search of width N (default: greedy)\n"
            "  --lexicon FILE         restrict output to these words (beam search)\n"
            "  --no-lexicon           don't use the model's own word list with --beam\n"
            "  --hotword W[:BOOST]    favour a word or phrase (repeatable; boost default 5)\n"
            "  --lm FILE.arpa         word n-gram language model (beam search)\n"
            "  --lm-alpha A           LM weight (default 0.5)\n"
            "  --lm-beta B            word insertion bonus (default 1.0)\n"
            "  --raw-format s16le|mulaw|alaw   headerless input\n"
            "  --raw-rate HZ          its sample rate (default 8000)\n"
            "  --channel K            use channel K (0-based) instead of mixing to mono\n"
            "  --chunk-length S       seconds per chunk for long audio (default 20; 0 = never chunk)\n"
            "  --progress / --no-progress   progress bar on a terminal (default: when useful)\n");
}

typedef struct batch batch;

typedef struct job {
    const char *file;
    mp_status st;
    char err[1024];
    mp_result *res;
    int done;
    double done_s;      /* audio transcribed so far (progress callback); guarded by the batch lock */
    batch *b;
} job;

struct batch {
    mp_pool *pool;
    const mp_audio_config *acfg;
    const mp_request_config *req;
    job *jobs;
    int n_jobs;
    int next;           /* next job to start; guarded by lock */
    int n_done;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled when a job finishes */
};

/* Progress of one long file, on its worker thread: recorded for the bar the main thread draws. */
static void on_progress(double audio_done_s, void *user_data) {
    job *j = user_data;
    pthread_mutex_lock(&j->b->lock);
    j->done_s = audio_done_s;
    pthread_mutex_unlock(&j->b->lock);
}

static void *batch_worker(void *arg) {
    batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        int i = b->next < b->n_jobs ? b->next++ : -1;
        pthread_mutex_unlock(&b->lock);
        if (i < 0) break;
        job *j = &b->jobs[i];
        mp_request_config rq = *b->req;
        rq.progress_fn = on_progress;
        rq.progress_user_data = j;
        j->st = mp_pool_transcribe_file(b->pool, j->file, b->acfg, &rq, &j->res);
        if (j->st != MP_OK) snprintf(j->err, sizeof j->err, "%s", mp_last_error());
        pthread_mutex_lock(&b->lock);
        j->done = 1;
        b->n_done++;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
    }
    return NULL;
}

/* Write logits as a NumPy .npy v1.0 file: float32 little-endian, C order, shape (frames, vocab). */
static int write_npy(const char *path, const float *data, int rows, int cols) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "modelpool transcribe: %s: %s\n", path, strerror(errno));
        return 0;
    }
    char header[128];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows,
                     cols);
    /* magic(6) + version(2) + header_len(2) + header, padded with spaces to a multiple of 64, ending in \n */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned char le[2] = {(unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    fwrite(le, 1, 2, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t cnt = (size_t)rows * (size_t)cols;
    int ok = cnt == 0 || fwrite(data, sizeof(float), cnt, f) == cnt;
    ok = (fclose(f) == 0) && ok;
    if (!ok) fprintf(stderr, "modelpool transcribe: %s: write failed\n", path);
    return ok;
}

static void print_json(const job *j) {
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(j->file));
    if (j->st != MP_OK) {
        json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", mp_cli_status(j->st).name, "message",
                                                  j->err[0] ? j->err : mp_strerror(j->st)));
    } else {
        json_object_set_new(o, "text", json_string(mp_result_text(j->res)));
        json_object_set_new(o, "duration_s", json_real(mp_result_duration_s(j->res)));
        json_t *words = json_array();
        size_t nw = mp_result_n_words(j->res);
        for (size_t k = 0; k < nw; k++) {
            mp_word w;
            if (mp_result_word(j->res, k, &w) != MP_OK) break;
            json_array_append_new(words, json_pack("{s:s, s:f, s:f, s:f}", "word", w.word, "start", w.start_s,
                                                   "end", w.end_s, "confidence", (double)w.confidence));
        }
        json_object_set_new(o, "words", words);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (s) puts(s);
    free(s);
    json_decref(o);
}

/* One status line on the terminal: files done and audio seconds transcribed (long files advance
 * it chunk by chunk). */
static void progress(int done, int total, double audio_s) {
    const int width = 30;
    int filled = total ? done * width / total : width;
    fprintf(stderr, "\r\033[K[");
    for (int i = 0; i < width; i++) fputc(i < filled ? '=' : ' ', stderr);
    fprintf(stderr, "] %d/%d files, %.1f s of audio", done, total, audio_s);
    fflush(stderr);
}

/* Audio seconds done over all jobs; caller holds the batch lock. */
static double audio_done(const batch *b) {
    double s = 0;
    for (int i = 0; i < b->n_jobs; i++) s += b->jobs[i].done_s;
    return s;
}

int mp_cli_transcribe(int argc, char **argv) {
    const char *dir = NULL, *arch = NULL, *format = "text", *dump = NULL, *lexicon_path = NULL, *lm_path = NULL;
    long workers = 0, beam = 0;
    int no_lexicon = 0, want_progress = -1;
    double chunk = -1;
    mp_audio_config acfg = mp_audio_default_config();
    mp_request_config req = mp_request_default_config();
    mp_hotword hot[64];
    size_t n_hot = 0;
    char *hot_words[64];
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0;
    if (!files) return 3;

#define NEED_ARG()                                                                                \
    do {                                                                                          \
        if (i + 1 >= argc) {                                                                      \
            fprintf(stderr, "modelpool transcribe: %s needs a value\n", a);                       \
            goto usage_error;                                                                     \
        }                                                                                         \
    } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_transcribe(stdout);
            free(files);
            return 0;
        } else if (!strcmp(a, "--model")) {
            NEED_ARG();
            dir = argv[++i];
        } else if (!strcmp(a, "--arch")) {
            NEED_ARG();
            arch = argv[++i];
        } else if (!strcmp(a, "--format")) {
            NEED_ARG();
            format = argv[++i];
            if (strcmp(format, "text") && strcmp(format, "json") && strcmp(format, "srt") && strcmp(format, "vtt")) {
                fprintf(stderr, "modelpool transcribe: --format must be text, json, srt or vtt\n");
                goto usage_error;
            }
        } else if (!strcmp(a, "--dump-logits")) {
            NEED_ARG();
            dump = argv[++i];
        } else if (!strcmp(a, "--workers")) {
            NEED_ARG();
            if (!mp_cli_parse_long("transcribe", a, argv[++i], 0, 256, &workers)) goto usage_error;
        } else if (!strcmp(a, "--beam")) {
            NEED_ARG();
            if (!mp_cli_parse_long("transcribe", a, argv[++i], 1, 4096, &beam)) goto usage_error;
        } else if (!strcmp(a, "--dtype")) {
            NEED_ARG();
            if (!mp_cli_parse_dtype("transcribe", argv[++i])) goto usage_error;
        } else if (!strcmp(a, "--lexicon")) {
            NEED_ARG();
            lexicon_path = argv[++i];
        } else if (!strcmp(a, "--no-lexicon")) {
            no_lexicon = 1;
        } else if (!strcmp(a, "--hotword")) {
            NEED_ARG();
            if (n_hot >= sizeof hot / sizeof hot[0]) {
                fprintf(stderr, "modelpool transcribe: at most 64 --hotword\n");
                goto usage_error;
            }
            char *w = strdup(argv[++i]);
            if (!w) goto usage_error;
            double boost = 5.0;
            char *colon = strrchr(w, ':');
            if (colon) {
                *colon = '\0';
                if (!mp_cli_parse_double("transcribe", "--hotword boost", colon + 1, -100, 100, &boost)) {
                    free(w);
                    goto usage_error;
                }
            }
            hot_words[n_hot] = w;
            hot[n_hot++] = (mp_hotword){.phrase = w, .boost = (float)boost};
        } else if (!strcmp(a, "--lm")) {
            NEED_ARG();
            lm_path = argv[++i];
        } else if (!strcmp(a, "--lm-alpha") || !strcmp(a, "--lm-beta")) {
            NEED_ARG();
            double v;
            if (!mp_cli_parse_double("transcribe", a, argv[++i], -100, 100, &v)) goto usage_error;
            if (a[5] == 'a')
                req.lm_alpha = (float)v;
            else
                req.lm_beta = (float)v;
        } else if (!strcmp(a, "--raw-format")) {
            NEED_ARG();
            const char *v = argv[++i];
            if (!strcmp(v, "s16le"))
                acfg.raw_format = MP_RAW_S16LE;
            else if (!strcmp(v, "mulaw") || !strcmp(v, "ulaw"))
                acfg.raw_format = MP_RAW_MULAW;
            else if (!strcmp(v, "alaw"))
                acfg.raw_format = MP_RAW_ALAW;
            else {
                fprintf(stderr, "modelpool transcribe: --raw-format must be s16le, mulaw or alaw\n");
                goto usage_error;
            }
        } else if (!strcmp(a, "--raw-rate")) {
            NEED_ARG();
            long v;
            if (!mp_cli_parse_long("transcribe", a, argv[++i], 1000, 384000, &v)) goto usage_error;
            acfg.raw_rate = (int)v;
        } else if (!strcmp(a, "--channel")) {
            NEED_ARG();
            long v;
            if (!mp_cli_parse_long("transcribe", a, argv[++i], 0, 255, &v)) goto usage_error;
            acfg.channel = (int)v;
        } else if (!strcmp(a, "--chunk-length")) {
            NEED_ARG();
            if (!mp_cli_parse_double("transcribe", a, argv[++i], 0, 3600, &chunk)) goto usage_error;
        } else if (!strcmp(a, "--progress")) {
            want_progress = 1;
        } else if (!strcmp(a, "--no-progress")) {
            want_progress = 0;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "modelpool transcribe: unknown option '%s'\n", a);
            goto usage_error;
        } else {
            files[n_files++] = a;
        }
    }
#undef NEED_ARG
    if (n_files == 0) {
        fprintf(stderr, "modelpool transcribe: no input files\n");
        goto usage_error;
    }
    if ((!strcmp(format, "srt") || !strcmp(format, "vtt")) && n_files != 1) {
        fprintf(stderr, "modelpool transcribe: --format %s takes exactly one input file\n", format);
        goto usage_error;
    }
    if (dump && n_files != 1) {
        fprintf(stderr, "modelpool transcribe: --dump-logits takes exactly one input file\n");
        goto usage_error;
    }
    if ((lexicon_path || lm_path || n_hot) && !beam) beam = 16; /* these only act in beam search */

    int rc = 0;
    mp_model *model = NULL;
    mp_pool *pool = NULL;
    mp_lexicon *lex = NULL;
    mp_lm *lm = NULL;
    job *jobs = NULL;
    mp_status st = mp_cli_load_model(dir, arch, &model);
    if (st != MP_OK) {
        fprintf(stderr, "modelpool transcribe: %s: %s\n", mp_strerror(st), mp_last_error());
        rc = mp_cli_status(st).exit_code;
        goto done;
    }
    if (lexicon_path && (st = mp_lexicon_load(model, lexicon_path, &lex)) != MP_OK) {
        fprintf(stderr, "modelpool transcribe: %s: %s\n", mp_strerror(st), mp_last_error());
        rc = mp_cli_status(st).exit_code;
        goto done;
    }
    if (lm_path && (st = mp_lm_load_arpa(lm_path, &lm)) != MP_OK) {
        fprintf(stderr, "modelpool transcribe: %s: %s\n", mp_strerror(st), mp_last_error());
        rc = mp_cli_status(st).exit_code;
        goto done;
    }
    if (beam) {
        req.decoder = MP_DECODER_BEAM;
        req.beam_width = (int)beam;
    }
    req.lexicon = lex;
    req.use_model_lexicon = !no_lexicon;
    req.hotwords = n_hot ? hot : NULL;
    req.n_hotwords = n_hot;
    req.lm = lm;
    req.keep_logits = dump != NULL;
    if (chunk >= 0) {
        req.chunk_length_s = chunk;
        req.stride_length_s = chunk / 6;
    }

    /* One file at a time per worker; a file's chunks never hold a worker between chunks. */
    int n_threads = workers ? (int)workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > n_files) n_threads = n_files;
    mp_pool_config pcfg = mp_pool_default_config();
    pcfg.n_workers = workers ? (int)workers : 0;
    if ((st = mp_pool_create(model, &pcfg, &pool)) != MP_OK) {
        fprintf(stderr, "modelpool transcribe: %s: %s\n", mp_strerror(st), mp_last_error());
        rc = mp_cli_status(st).exit_code;
        goto done;
    }
    jobs = calloc((size_t)n_files, sizeof *jobs);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    if (!jobs || !tids) {
        free(tids);
        rc = 3;
        goto done;
    }
    batch b = {.pool = pool, .acfg = &acfg, .req = &req, .jobs = jobs, .n_jobs = n_files};
    for (int i = 0; i < n_files; i++) jobs[i].file = files[i], jobs[i].b = &b;
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    int started = 0;
    for (; started < n_threads; started++)
        if (pthread_create(&tids[started], NULL, batch_worker, &b) != 0) break;
    if (started == 0) batch_worker(&b); /* no threads available: run inline */

    /* Print in input order as soon as each prefix is complete. The bar goes to a terminal only,
     * and only when useful: many files, or once some input has run past 30 s of audio. */
    int tty = want_progress != 0 && isatty(STDERR_FILENO);
    int shown = 0;
    int any_failed = 0;
    pthread_mutex_lock(&b.lock);
    for (int i = 0; i < n_files; i++) {
        while (!jobs[i].done) {
            double done_s = audio_done(&b);
            if (tty && (want_progress > 0 || n_files > 3 || done_s >= 30)) {
                progress(b.n_done, n_files, done_s);
                shown = 1;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 250 * 1000000L; /* redraw 4 times a second */
            if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&b.cond, &b.lock, &until);
        }
        pthread_mutex_unlock(&b.lock);
        if (shown) fprintf(stderr, "\r\033[K"); /* clear the bar before output on the same terminal */
        job *j = &jobs[i];
        if (j->st != MP_OK) any_failed = 1;
        if (!strcmp(format, "json")) {
            print_json(j);
        } else if (j->st != MP_OK) {
            fprintf(stderr, "modelpool transcribe: %s: %s: %s\n", j->file, mp_strerror(j->st), j->err);
        } else if (!strcmp(format, "srt") || !strcmp(format, "vtt")) {
            char *sub = mp_cli_subtitles(j->res, format[0] == 'v');
            if (sub) fputs(sub, stdout);
            else any_failed = 1;
            free(sub);
        } else if (n_files == 1) {
            puts(mp_result_text(j->res));
        } else {
            printf("%s\t%s\n", j->file, mp_result_text(j->res));
        }
        fflush(stdout);
        if (j->st == MP_OK && dump) {
            int nf = 0, nv = 0;
            const float *lg = mp_result_logits(j->res, &nf, &nv);
            if (!lg && nf == 0) nv = 0;
            if (!write_npy(dump, lg, nf, nv)) any_failed = 1;
        }
        pthread_mutex_lock(&b.lock);
        if (j->st == MP_OK) j->done_s = mp_result_duration_s(j->res);
    }
    pthread_mutex_unlock(&b.lock);
    if (shown) {
        progress(n_files, n_files, audio_done(&b));
        fputc('\n', stderr);
    }
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    free(tids);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
    if (any_failed) {
        /* the first failure's status decides the exit code */
        rc = 1;
        for (int i = 0; i < n_files; i++)
            if (jobs[i].st != MP_OK) {
                rc = mp_cli_status(jobs[i].st).exit_code;
                break;
            }
        if (rc == 0) rc = 1;
    }

done:
    if (jobs)
        for (int i = 0; i < n_files; i++) mp_result_free(jobs[i].res);
    free(jobs);
    mp_pool_free(pool);
    mp_lm_free(lm);
    mp_lexicon_free(lex);
    mp_model_free(model);
    for (size_t k = 0; k < n_hot; k++) free(hot_words[k]);
    free(files);
    return rc;

usage_error:
    for (size_t k = 0; k < n_hot; k++) free(hot_words[k]);
    free(files);
    usage_transcribe(stderr);
    return 2;
}

/* ---- main --------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("modelpool %s\n", mp_version());
        return 0;
    }
    if (!strcmp(cmd, "transcribe")) return mp_cli_transcribe(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return mp_cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return mp_cli_bench(argc - 1, argv + 1);
#ifdef MP_HAVE_SERVER
    if (!strcmp(cmd, "serve")) return mp_cli_serve(argc - 1, argv + 1);
#endif
    fprintf(stderr, "modelpool: unknown command '%s'\n\n", cmd);
    usage_main(stderr);
    return 2;
}
