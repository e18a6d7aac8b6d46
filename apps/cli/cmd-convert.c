/* cmd-convert.c - `modelpool convert DIR OUT [--dtype f32|f16|bf16]`: a model directory as
 * downloaded (pytorch_model.bin, shards, safetensors) rewritten as a model.safetensors directory,
 * which every later load maps in place. The result is loaded back and compared tensor count and
 * parameter count with the source before the command reports success. */
#include "common/cli.h"

#include <stdio.h>
#include <string.h>

static void usage_convert(FILE *f) {
    fprintf(f, "usage: modelpool convert DIR OUT [--dtype f32|f16|bf16] [--language LANG]\n"
               "Load the model in DIR (model.safetensors, pytorch_model.bin, or their shards) and write OUT/\n"
               "with one model.safetensors (default f32) plus DIR's config, tokenizer and word-list files.\n"
               "\n"
               "Examples:\n"
               "  modelpool convert wav2vec2-base-vi wav2vec2-base-vi-st        pytorch_model.bin -> safetensors\n"
               "  modelpool convert DIR OUT --dtype f16                         half the file size\n");
}

int mp_cli_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *dtype = "f32";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_convert(stdout);
            return 0;
        } else if (!strcmp(a, "--dtype") && i + 1 < argc) {
            dtype = argv[++i];
        } else if (a[0] != '-' && !in) {
            in = a;
        } else if (a[0] != '-' && !out) {
            out = a;
        } else {
            fprintf(stderr, "modelpool convert: unknown or incomplete option '%s'\n", a);
            usage_convert(stderr);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "modelpool convert: DIR and OUT are needed\n");
        usage_convert(stderr);
        return 2;
    }
    if (strcmp(dtype, "f32") && strcmp(dtype, "f16") && strcmp(dtype, "bf16")) {
        fprintf(stderr, "modelpool convert: --dtype: expected f32, f16 or bf16, got '%s'\n", dtype);
        return 2;
    }
    mp_model *src = NULL, *dst = NULL;
    mp_status st = mp_cli_load_model(in, NULL, &src);
    if (st == MP_OK) st = mp_model_save_safetensors(src, out, dtype);
    if (st == MP_OK) st = mp_cli_load_model(out, NULL, &dst);
    if (st != MP_OK) {
        fprintf(stderr, "modelpool convert: %s: %s\n", mp_strerror(st), mp_last_error());
        mp_model_free(src);
        return mp_cli_status(st).exit_code;
    }
    mp_model_info a, b;
    mp_model_get_info(src, &a);
    mp_model_get_info(dst, &b);
    int ok = a.n_params == b.n_params && a.vocab_size == b.vocab_size;
    if (ok)
        printf("%s (%s, %s) -> %s/model.safetensors (%s, %llu parameters)\n", in, a.weights_format, a.dtype, out,
               b.dtype, (unsigned long long)b.n_params);
    else
        fprintf(stderr, "modelpool convert: %s does not load as the same model (%llu vs %llu parameters)\n", out,
                (unsigned long long)b.n_params, (unsigned long long)a.n_params);
    mp_model_free(dst);
    mp_model_free(src);
    return ok ? 0 : 1;
}
