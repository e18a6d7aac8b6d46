/* config.c - config.json and preprocessor_config.json into the model's hyper-parameters
 * (m->hp, m->arch), every field type-checked, with transformers' Wav2Vec2Config / HubertConfig
 * defaults for absent fields and an error naming the file and the field for anything we cannot
 * run. Part of engine; calls core (json.c, error.c). */
#include "loader.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* A list of ints in [lo, hi] with 1..MP_MAX_CONV entries; absent -> def (n_def entries). */
static mp_status get_int_list(const char *file, const json_t *o, const char *key, const int *def, int n_def,
                              int lo, int hi, int *out, int *n_out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        memcpy(out, def, (size_t)n_def * sizeof *out);
        *n_out = n_def;
        return MP_OK;
    }
    if (!json_is_array(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected a list of integers, got a %s", file, key,
                        mp__json_kind(v));
    size_t n = json_array_size(v);
    if (n < 1 || n > MP_MAX_CONV)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: %zu entries, expected 1 to %d", file, key, n, MP_MAX_CONV);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s[%zu]: expected an integer, got a %s", file, key, i,
                            mp__json_kind(e));
        long long x = json_integer_value(e);
        if (x < lo || x > hi)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s[%zu]: value %lld out of range [%d, %d]", file, key, i, x,
                            lo, hi);
        out[i] = (int)x;
    }
    *n_out = (int)n;
    return MP_OK;
}

/* HuggingFace ACT2FN names we run. "silu" is swish; "gelu_python" is the erf GELU and
 * "gelu_pytorch_tanh" the same tanh approximation as "gelu_new" (transformers activations.py). */
static mp_status get_act(const char *file, const json_t *o, const char *key, mp__act *out) {
    const char *s;
    mp_status st = mp__json_str(file, o, key, "gelu", &s);
    if (st != MP_OK) return st;
    if (!strcmp(s, "gelu") || !strcmp(s, "gelu_python")) *out = MP_ACT_GELU;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh")) *out = MP_ACT_GELU_NEW;
    else if (!strcmp(s, "relu")) *out = MP_ACT_RELU;
    else if (!strcmp(s, "swish") || !strcmp(s, "silu")) *out = MP_ACT_SWISH;
    else
        return mp__fail(MP_ERR_MODEL_FORMAT,
                        "%s: %s: unsupported activation \"%s\" (supported: gelu, gelu_new, relu, swish, silu)", file,
                        key, s);
    return MP_OK;
}

/* A field we cannot run when set: error naming it. */
static mp_status reject_true(const char *file, const json_t *o, const char *key, const char *why) {
    int b;
    mp_status st = mp__json_bool(file, o, key, 0, &b);
    if (st != MP_OK) return st;
    if (b) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: true is not supported (%s)", file, key, why);
    return MP_OK;
}

/* ---- config.json -------------------------------------------------------------------------------- */

/* Architecture: the first entry of "architectures" we know, cross-checked with model_type. */
static mp_status parse_arch(mp__loader *L, const json_t *c, int *hubert_out) {
    const char *f = L->config_path;
    mp_status st;
    const char *arch = NULL;
    const json_t *archs = json_object_get(c, "architectures");
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: architectures: expected a list of strings, got a %s", f,
                            mp__json_kind(archs));
        for (size_t i = 0; i < json_array_size(archs); i++) {
            const json_t *a = json_array_get(archs, i);
            if (!json_is_string(a))
                return mp__fail(MP_ERR_MODEL_FORMAT, "%s: architectures[%zu]: expected a string, got a %s", f, i,
                                mp__json_kind(a));
            const char *s = json_string_value(a);
            if (!strcmp(s, "Wav2Vec2ForCTC") || !strcmp(s, "HubertForCTC")) {
                arch = s;
                break;
            }
        }
        if (!arch && json_array_size(archs) > 0) { /* an empty list falls back to model_type */
            const json_t *a0 = json_array_get(archs, 0);
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: architectures: unsupported architecture \"%s\" (supported: Wav2Vec2ForCTC, "
                            "HubertForCTC)",
                            f, a0 ? json_string_value(a0) : "");
        }
    }
    const char *model_type;
    if ((st = mp__json_str(f, c, "model_type", NULL, &model_type)) != MP_OK) return st;
    if (!arch) {
        if (model_type && !strcmp(model_type, "hubert")) arch = "HubertForCTC";
        else if (!model_type || !strcmp(model_type, "wav2vec2")) arch = "Wav2Vec2ForCTC";
        else
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: model_type: unsupported model type \"%s\" (supported: wav2vec2, hubert)", f,
                            model_type);
    }
    int hubert = !strcmp(arch, "HubertForCTC");
    if (model_type && strcmp(model_type, hubert ? "hubert" : "wav2vec2") != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: model_type: \"%s\" does not match architecture %s", f, model_type,
                        arch);
    snprintf(L->m->arch, sizeof L->m->arch, "%s", arch);
    L->prefix = hubert ? "hubert." : "wav2vec2.";
    *hubert_out = hubert;
    return MP_OK;
}

/* Feature extractor. Defaults: transformers Wav2Vec2Config / HubertConfig (wav2vec2-base). */
static mp_status parse_feature_extractor(const char *f, const json_t *c, mp__hparams *hp) {
    mp_status st;
    static const int def_dim[] = {512, 512, 512, 512, 512, 512, 512};
    static const int def_kernel[] = {10, 3, 3, 3, 3, 2, 2};
    static const int def_stride[] = {5, 2, 2, 2, 2, 2, 2};
    int n_dim, n_kernel, n_stride;
    if ((st = get_int_list(f, c, "conv_dim", def_dim, 7, 1, MP_DIM_MAX, hp->conv_dim, &n_dim)) != MP_OK) return st;
    if ((st = get_int_list(f, c, "conv_kernel", def_kernel, 7, 1, 4096, hp->conv_kernel, &n_kernel)) != MP_OK)
        return st;
    if ((st = get_int_list(f, c, "conv_stride", def_stride, 7, 1, 4096, hp->conv_stride, &n_stride)) != MP_OK)
        return st;
    if (n_dim != n_kernel || n_dim != n_stride)
        return mp__fail(MP_ERR_MODEL_FORMAT,
                        "%s: conv_dim, conv_kernel, conv_stride: lengths %d, %d, %d differ", f, n_dim, n_kernel,
                        n_stride);
    hp->n_conv = n_dim;
    /* Keep frame stride and receptive field (computed in int elsewhere) far from overflow. */
    int64_t stride = 1, rf = 1;
    for (int i = hp->n_conv - 1; i >= 0; i--) rf = (rf - 1) * hp->conv_stride[i] + hp->conv_kernel[i];
    for (int i = 0; i < hp->n_conv; i++) {
        stride *= hp->conv_stride[i];
        if (stride > (1 << 20) || rf > (1 << 24))
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: conv_stride, conv_kernel: total stride or receptive field too large", f);
    }
    if ((st = mp__json_bool(f, c, "conv_bias", 0, &hp->conv_bias)) != MP_OK) return st;
    const char *norm;
    if ((st = mp__json_str(f, c, "feat_extract_norm", "group", &norm)) != MP_OK) return st;
    if (!strcmp(norm, "group")) hp->group_norm = 1;
    else if (!strcmp(norm, "layer")) hp->group_norm = 0;
    else
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: feat_extract_norm: unsupported value \"%s\" (group or layer)", f,
                        norm);
    if ((st = get_act(f, c, "feat_extract_activation", &hp->feat_act)) != MP_OK) return st;
    return MP_OK;
}

static mp_status parse_transformer(const char *f, const json_t *c, mp__hparams *hp) {
    mp_status st;
    if ((st = mp__json_int(f, c, "hidden_size", 768, 1, MP_DIM_MAX, &hp->hidden)) != MP_OK) return st;
    if ((st = mp__json_int(f, c, "num_attention_heads", 12, 1, MP_DIM_MAX, &hp->n_heads)) != MP_OK) return st;
    if (hp->hidden % hp->n_heads != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: num_attention_heads: %d does not divide hidden_size %d", f,
                        hp->n_heads, hp->hidden);
    if ((st = mp__json_int(f, c, "num_hidden_layers", 12, 0, 4096, &hp->n_layers)) != MP_OK) return st;
    if ((st = mp__json_int(f, c, "intermediate_size", 3072, 1, MP_DIM_MAX, &hp->intermediate)) != MP_OK) return st;
    if ((st = get_act(f, c, "hidden_act", &hp->hidden_act)) != MP_OK) return st;
    double eps;
    if ((st = mp__json_real(f, c, "layer_norm_eps", 1e-5, &eps)) != MP_OK) return st;
    if (!(eps > 0 && eps < 1))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: layer_norm_eps: %g is not in (0, 1)", f, eps);
    hp->ln_eps = (float)eps;
    if ((st = mp__json_bool(f, c, "do_stable_layer_norm", 0, &hp->stable_ln)) != MP_OK) return st;
    if ((st = mp__json_int(f, c, "num_conv_pos_embeddings", 128, 1, 65536, &hp->pos_kernel)) != MP_OK) return st;
    if ((st = mp__json_int(f, c, "num_conv_pos_embedding_groups", 16, 1, MP_DIM_MAX, &hp->pos_groups)) != MP_OK)
        return st;
    if (hp->hidden % hp->pos_groups != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: num_conv_pos_embedding_groups: %d does not divide hidden_size %d",
                        f, hp->pos_groups, hp->hidden);
    if ((st = mp__json_int(f, c, "vocab_size", 32, 1, MP_DIM_MAX, &hp->vocab)) != MP_OK) return st;
    return MP_OK;
}

/* What we do not run. use_weighted_layer_sum (sequence classification) and the quantizer fields
 * (pre-training) don't affect Wav2Vec2ForCTC's output and are ignored. */
static mp_status reject_unsupported(const char *f, const json_t *c, int hubert) {
    mp_status st;
    if ((st = reject_true(f, c, "add_adapter", "adapter layers after the encoder")) != MP_OK) return st;
    const json_t *ad = json_object_get(c, "adapter_attn_dim");
    if (ad && !json_is_null(ad))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: adapter_attn_dim: attention adapters (MMS) are not supported", f);
    if (hubert) {
        int b;
        if ((st = mp__json_bool(f, c, "feat_proj_layer_norm", 1, &b)) != MP_OK) return st;
        if (!b) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: feat_proj_layer_norm: false is not supported", f);
        if ((st = reject_true(f, c, "conv_pos_batch_norm", "batch-norm positional conv")) != MP_OK) return st;
    }
    return MP_OK;
}

mp_status mp__config_load(mp__loader *L) {
    json_t *c;
    mp_status st = mp__json_load(L->config_path, 0, &c);
    if (st != MP_OK) return st;
    int hubert = 0;
    const char *f = L->config_path;
    if ((st = parse_arch(L, c, &hubert)) == MP_OK && (st = parse_feature_extractor(f, c, &L->m->hp)) == MP_OK &&
        (st = parse_transformer(f, c, &L->m->hp)) == MP_OK && (st = reject_unsupported(f, c, hubert)) == MP_OK)
        st = mp__json_int(f, c, "pad_token_id", 0, -1, MP_DIM_MAX, &L->cfg_pad_id);
    json_decref(c);
    return st;
}

/* ---- preprocessor_config.json ------------------------------------------------------------------- */

mp_status mp__preprocessor_load(mp__loader *L) {
    mp__hparams *hp = &L->m->hp;
    json_t *p;
    mp_status st = mp__json_load(L->pre_path, 1, &p);
    if (st != MP_OK) return st;
    if (!p) {
        hp->do_normalize = 1;
        hp->sample_rate = 16000;
        mp__log(MP_LOG_INFO, "%s: not found; using do_normalize=true, sampling_rate=16000", L->pre_path);
        return MP_OK;
    }
    int fs = 1;
    if ((st = mp__json_bool(L->pre_path, p, "do_normalize", 1, &hp->do_normalize)) == MP_OK &&
        (st = mp__json_int(L->pre_path, p, "sampling_rate", 16000, 1000, 1000000, &hp->sample_rate)) == MP_OK)
        st = mp__json_int(L->pre_path, p, "feature_size", 1, 0, MP_DIM_MAX, &fs);
    json_decref(p);
    if (st != MP_OK) return st;
    if (fs != 1)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: feature_size: %d, expected 1 (raw waveform input)", L->pre_path, fs);
    return MP_OK;
}
