/* fuzz-form.c - libFuzzer target over the server's request-option handling (apps/server/options.c
 * and the request layer it shares with the CLI, apps/common/request.c):
 * a transcription's form fields (beam, hotwords, words, lexicon, lm, lm_alpha, lm_beta, channel,
 * raw_format, raw_rate) turned into an mp_request_config and mp_audio_config, then, when accepted,
 * one short transcription with them (the beam search with arbitrary hotwords and word lists). The
 * multipart parsing itself is libmicrohttpd's and needs a live connection: tests/fuzz-http.py
 * covers it over the network.
 * Input: records [field byte][length byte][bytes], each filling one field as the form code does
 * (a value longer than its buffer is refused, not cut). */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static server srv;
static float silence[8000]; /* 0.5 s at 16 kHz */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = 1;
    pc.n_threads_per_worker = 1;
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz-form-%d.arpa", (int)getpid());
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("\\data\\\nngram 1=4\n\n\\1-grams:\n-1.0 <s>\n-1.0 </s>\n-0.7 A\n-0.7 I\n\n\\end\\\n", f);
        fclose(f);
    }
    if (mp_model_create_random("tiny", 1, &srv.model) != MP_OK || mp_pool_create(srv.model, &pc, &srv.pool) != MP_OK ||
        mp_lm_load_arpa(path, &srv.lm) != MP_OK)
        abort();
    remove(path);
    srv.max_audio_s = 30;
    srv.timeout_ms = -1;
    srv.lm_alpha = 0.5f;
    srv.lm_beta = 1.0f;
    return 0;
}

static void set_field(request *r, unsigned id, const uint8_t *v, size_t n) {
    struct { char *dst; size_t cap; } f[] = {
        {r->beam, sizeof r->beam},         {r->hotwords, sizeof r->hotwords}, {r->words, sizeof r->words},
        {r->lexicon, sizeof r->lexicon},   {r->lm, sizeof r->lm},             {r->lm_alpha, sizeof r->lm_alpha},
        {r->lm_beta, sizeof r->lm_beta},   {r->channel, sizeof r->channel},   {r->raw_format, sizeof r->raw_format},
        {r->raw_rate, sizeof r->raw_rate}, {r->stream, sizeof r->stream},
    };
    id %= sizeof f / sizeof f[0];
    if (n + 1 > f[id].cap) return; /* too long: the server refuses the request before options.c */
    memcpy(f[id].dst, v, n);
    f[id].dst[n] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    request *r = calloc(1, sizeof *r);
    if (!r) return 0;
    r->srv = &srv;
    for (size_t i = 0; i + 2 <= size;) {
        unsigned id = data[i], n = data[i + 1];
        i += 2;
        if (n > size - i) n = (unsigned)(size - i);
        set_field(r, id, data + i, n);
        i += n;
    }
    mp_app_request rq;
    mp_app_error err;
    if (srv_request_options(&srv, r, &rq, &err)) {
        mp_request_config req = rq.req;
        if (req.beam_width > 64) req.beam_width = 64; /* keep one input fast; widths are checked above */
        mp_result *res = NULL;
        if (mp_pool_transcribe(srv.pool, silence, 8000, 16000, &req, &res) == MP_OK) (void)mp_result_text(res);
        mp_result_free(res);
    }
    mp_app_request_free(&rq);
    free(r);
    return 0;
}
