/* cmd-info.c - `modelpool info`: what a model is (architecture, size, vocabulary, frame stride,
 * scratch per worker), as text or JSON. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

static void usage_info(FILE *f) {
    fprintf(f, "usage: modelpool info [--model DIR | --arch base|large|tiny] [--format text|json] [--language LANG]\n"
               "Print the architecture, parameter count, weight bytes, vocabulary size, frame stride and\n"
               "on-disk dtype of a model, and which weight file format was read.\n"
               "\n"
               "Examples:\n"
               "  modelpool info                                  the embedded model\n"
               "  modelpool info --model DIR --format json        a HuggingFace wav2vec2 directory, as JSON\n");
    mp_app_print_exit_codes(f);
}

static void print_json(const mp_model *model, const mp_model_info *m) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:b, "
                          "s:s, s:b, s:I, s:I}",
                          "architecture", m->architecture, "path", m->path, "dtype", m->dtype, "n_params",
                          (json_int_t)m->n_params, "weight_bytes", (json_int_t)m->weight_bytes, "weight_mb",
                          (double)m->weight_bytes / 1e6, "vocab_size", m->vocab_size, "hidden_size", m->hidden_size,
                          "n_layers", m->n_layers, "n_heads", m->n_heads, "intermediate_size", m->intermediate_size,
                          "n_conv_layers", m->n_conv_layers, "frame_stride", m->frame_stride, "receptive_field",
                          m->receptive_field, "sample_rate", m->sample_rate, "frame_s",
                          (double)m->frame_stride / (m->sample_rate ? m->sample_rate : 16000), "stable_layer_norm",
                          m->stable_layer_norm, "feat_extract_norm", m->group_norm ? "group" : "layer", "has_lexicon",
                          m->has_lexicon, "scratch_bytes_8s", (json_int_t)mp_model_scratch_bytes(model, 8.0),
                          "scratch_bytes_20s", (json_int_t)mp_model_scratch_bytes(model, 20.0));
    if (o) json_object_set_new(o, "weights_format", json_string(m->weights_format));
    if (o) json_object_set_new(o, "language", json_string(m->language));
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (s) puts(s);
    free(s);
    json_decref(o);
}

static void print_text(const mp_model *model, const mp_model_info *m) {
    double rate = m->sample_rate ? m->sample_rate : 16000;
    printf("model:            %s\n", m->path[0] ? m->path : "(random weights)");
    printf("architecture:     %s\n", m->architecture);
    printf("parameters:       %llu\n", (unsigned long long)m->n_params);
    printf("weight bytes:     %llu (%.1f MB fp32, one shared copy)\n", (unsigned long long)m->weight_bytes,
           (double)m->weight_bytes / 1e6);
    printf("dtype on disk:    %s\n", m->dtype);
    printf("weights read:     %s%s%s\n", m->weights_format, m->language[0] ? ", language " : "", m->language);
    printf("vocabulary:       %d tokens\n", m->vocab_size);
    printf("transformer:      %d layers, hidden %d, %d heads, ffn %d, %s layer norm\n", m->n_layers, m->hidden_size,
           m->n_heads, m->intermediate_size, m->stable_layer_norm ? "stable (pre)" : "post");
    printf("feature encoder:  %d conv layers, %s norm\n", m->n_conv_layers, m->group_norm ? "group" : "layer");
    printf("frame stride:     %d samples (%.0f ms at %d Hz), receptive field %d samples\n", m->frame_stride,
           1000.0 * m->frame_stride / rate, m->sample_rate, m->receptive_field);
    printf("scratch/worker:   %.1f MB for 8 s, %.1f MB for a 20 s chunk (the longest piece run at once)\n",
           (double)mp_model_scratch_bytes(model, 8.0) / 1e6, (double)mp_model_scratch_bytes(model, 20.0) / 1e6);
    printf("word list:        %s\n", m->has_lexicon ? "yes (used by --beam)" : "no");
}

int mp_cli_info(int argc, char **argv) {
    const char *dir = NULL, *arch = NULL, *format = "text";
    mp_app_args a = mp_app_args_begin("info", argc, argv, usage_info);
    while (mp_app_args_next(&a)) {
        if (mp_app_opt_str(&a, "--model", &dir) || mp_app_opt_str(&a, "--arch", &arch) ||
            mp_app_opt_str(&a, "--format", &format))
            continue;
        mp_app_unknown(&a);
    }
    if (a.finished) return a.rc;
    if (strcmp(format, "text") && strcmp(format, "json"))
        return mp_app_usage_error("info", "--format: expected text or json, got '%s'", format);
    mp_model *model = NULL;
    mp_status st = mp_app_load_model(dir, arch, MP_DTYPE_FP32, &model);
    if (st != MP_OK) return mp_app_report_model("info", st);
    mp_model_info mi;
    mp_model_get_info(model, &mi);
    if (!strcmp(format, "json"))
        print_json(model, &mi);
    else
        print_text(model, &mi);
    mp_model_free(model);
    return 0;
}
