/* output.c - `transcribe` output for one file: the transcript (text), an object per line (json),
 * subtitle cues (srt, vtt), and the logits as a NumPy file (--dump-logits). */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static void print_json(const char *file, mp_status st, const char *err, const mp_result *res) {
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(file));
    if (st != MP_OK) {
        json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", mp_status_name(st), "message",
                                                  err[0] ? err : mp_strerror(st)));
    } else {
        json_object_set_new(o, "text", json_string(mp_result_text(res)));
        json_object_set_new(o, "duration_s", json_real(mp_result_duration_s(res)));
        json_object_set_new(o, "words", mp_app_words_json(res));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (s) puts(s);
    free(s);
    json_decref(o);
}

/* A failed file, named once: the library's detail names it already, as a rule. */
static void print_failure(const char *file, mp_status st, const char *err) {
    const char *shown = !strcmp(file, "-") ? "<stdin>" : file;
    if (err[0] && strstr(err, shown))
        fprintf(stderr, "modelpool transcribe: %s: %s\n", mp_strerror(st), err);
    else
        fprintf(stderr, "modelpool transcribe: %s: %s%s%s\n", file, mp_strerror(st), err[0] ? ": " : "", err);
}

int mp_cli_print_result(const char *file, mp_status st, const char *err, const mp_result *res,
                        const mp_cli_output *out) {
    int ok = st == MP_OK;
    const char *fmt = out->format;
    if (!strcmp(fmt, "json")) {
        print_json(file, st, err, res);
    } else if (st != MP_OK) {
        print_failure(file, st, err);
    } else if (!strcmp(fmt, "srt") || !strcmp(fmt, "vtt")) {
        char *sub = mp_app_subtitles(res, fmt[0] == 'v');
        if (sub) fputs(sub, stdout);
        ok = sub != NULL;
        free(sub);
    } else if (out->n_files == 1) {
        puts(mp_result_text(res));
    } else {
        printf("%s\t%s\n", file, mp_result_text(res));
    }
    fflush(stdout);
    if (st == MP_OK && out->dump) {
        int nf = 0, nv = 0;
        const float *lg = mp_result_logits(res, &nf, &nv);
        if (!lg && nf == 0) nv = 0;
        ok = write_npy(out->dump, lg, nf, nv) && ok;
    }
    return ok;
}
