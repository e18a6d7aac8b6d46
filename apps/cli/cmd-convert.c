/* cmd-convert.c - `modelpool convert DIR OUT [--dtype f32|f16|bf16]`: a model directory as
 * downloaded (pytorch_model.bin, shards, safetensors) rewritten as a model.safetensors directory,
 * which every later load maps in place. The result is loaded back and compared (parameter count
 * and vocabulary size) with the source before the command reports success. */
#include "cli/cli.h"

#include <string.h>

static void usage_convert(FILE *f) {
    fprintf(f, "usage: modelpool convert DIR OUT [--dtype f32|f16|bf16] [--language LANG]\n"
               "Load the model in DIR (model.safetensors, pytorch_model.bin, or their shards) and write OUT/\n"
               "with one model.safetensors (default f32) plus DIR's config, tokenizer and word-list files.\n"
               "\n"
               "Examples:\n"
               "  modelpool convert wav2vec2-base-vi wav2vec2-base-vi-st        pytorch_model.bin -> safetensors\n"
               "  modelpool convert DIR OUT --dtype f16                         half the file size\n");
    mp_app_print_exit_codes(f);
}

/* The loaded copy must be the same model as the source. */
static int same_model(const char *in, const mp_model *src, const char *out, const mp_model *dst) {
    mp_model_info a, b;
    mp_model_get_info(src, &a);
    mp_model_get_info(dst, &b);
    if (a.n_params != b.n_params || a.vocab_size != b.vocab_size) {
        fprintf(stderr, "modelpool convert: %s does not load as the same model (%llu vs %llu parameters)\n", out,
                (unsigned long long)b.n_params, (unsigned long long)a.n_params);
        return 0;
    }
    printf("%s (%s, %s) -> %s/model.safetensors (%s, %llu parameters)\n", in, a.weights_format, a.dtype, out,
           b.dtype, (unsigned long long)b.n_params);
    return 1;
}

int mp_cli_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *dtype = "f32";
    mp_app_args a = mp_app_args_begin("convert", argc, argv, usage_convert);
    while (mp_app_args_next(&a)) {
        if (mp_app_opt_str(&a, "--dtype", &dtype)) continue;
        if (mp_app_positional(&a) && !in) {
            in = a.arg;
            continue;
        }
        if (mp_app_positional(&a) && !out) {
            out = a.arg;
            continue;
        }
        mp_app_unknown(&a);
    }
    if (a.finished) return a.rc;
    if (!in || !out) return mp_app_usage_error("convert", "DIR and OUT are needed");
    if (strcmp(dtype, "f32") && strcmp(dtype, "f16") && strcmp(dtype, "bf16"))
        return mp_app_usage_error("convert", "--dtype: expected f32, f16 or bf16, got '%s'", dtype);
    mp_model *src = NULL, *dst = NULL;
    mp_status st = mp_app_load_model(in, NULL, MP_DTYPE_FP32, &src);
    if (st != MP_OK) return mp_app_report_model("convert", st);
    st = mp_model_save_safetensors(src, out, dtype);
    if (st == MP_OK) st = mp_app_load_model(out, NULL, MP_DTYPE_FP32, &dst);
    if (st != MP_OK) {
        int rc = mp_app_report("convert", st);
        mp_model_free(src);
        return rc;
    }
    int ok = same_model(in, src, out, dst);
    mp_model_free(dst);
    mp_model_free(src);
    return ok ? 0 : 1;
}
