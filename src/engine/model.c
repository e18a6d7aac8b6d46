/*
 * model.c - the immutable model: loading a HuggingFace wav2vec2-CTC directory, ownership, info.
 *
 * DESIGN
 *   mp_model_load() reads, in order: config.json (hyper-parameters, type-checked field by field,
 *   HuggingFace Wav2Vec2Config defaults for absent fields), preprocessor_config.json (optional),
 *   model.safetensors (header validated completely before any tensor byte is touched), then the
 *   tokenizer files (vocab.json required; special_tokens_map.json, tokenizer_config.json,
 *   added_tokens.json optional).
 *
 *   Storage: model.safetensors is mapped read-only (use_mmap=1) or read into one owned block
 *   (use_mmap=0). Every fp32 tensor whose address is 4-byte aligned is used in place, so all
 *   workers of all pools read the one shared copy. fp16/bf16 (and misaligned fp32) tensors are
 *   converted once into owned blocks; conv weights are reordered for im2col and the positional
 *   conv gets its weight norm applied, also into owned blocks (see struct mp_model).
 *
 *   A mapped file must not be rewritten in place while the model lives (the kernel would deliver
 *   SIGBUS on a read past a truncation); tools that replace a model should write a new file and
 *   rename it over the old one, or load with use_mmap=0.
 *
 *   Every tensor in the file must be consumed, or be on the short list of training-only names;
 *   anything else is an error, so a checkpoint of another architecture never half-loads.
 *   Errors name the file and the field or tensor (mp__fail); nothing here prints or aborts.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#  error "safetensors fp32 tensors are little-endian and used in place: big-endian hosts need a byte swap"
#endif

float *mp__model_alloc(mp_model *m, size_t n_floats) {
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **o = realloc(m->owned, cap * sizeof *o);
        if (!o) return NULL;
        m->owned = o;
        m->cap_owned = cap;
    }
    /* 64-byte alignment keeps GEMM panels on cache lines. */
    size_t bytes = (n_floats * sizeof(float) + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) return NULL;
    m->owned[m->n_owned++] = p;
    return p;
}

void mp_model_free(mp_model *m) {
    if (!m) return;
    mp__model_quant_free(m); /* int8 weights, if any (quant.c) */
    mp_lexicon_free(m->lexicon); /* the directory's word list (mp__model_load_lexicon) */
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->map) munmap(m->map, m->map_size);
    if (m->tokens) {
        for (int i = 0; i < m->n_tokens; i++) free(m->tokens[i]);
        free(m->tokens);
    }
    free(m->layers);
    free(m->path);
    free(m);
}

int mp__model_stride(const mp_model *m) {
    int s = 1;
    for (int i = 0; i < m->hp.n_conv; i++) s *= m->hp.conv_stride[i];
    return s;
}

int mp__model_receptive_field(const mp_model *m) {
    /* Walk back from one output frame: r_in = (r_out - 1) * stride + kernel. */
    int r = 1;
    for (int i = m->hp.n_conv - 1; i >= 0; i--) r = (r - 1) * m->hp.conv_stride[i] + m->hp.conv_kernel[i];
    return r;
}

size_t mp__model_n_frames(const mp_model *m, size_t n) {
    /* Conv1d without padding: out = floor((in - kernel) / stride) + 1, per layer. */
    for (int i = 0; i < m->hp.n_conv; i++) {
        size_t k = (size_t)m->hp.conv_kernel[i];
        if (n < k) return 0;
        n = (n - k) / (size_t)m->hp.conv_stride[i] + 1;
    }
    return n;
}

mp_model_config mp_model_default_config(void) {
    return (mp_model_config){.use_mmap = 1};
}

const char *mp_model_token(const mp_model *m, int i) {
    if (!m || i < 0 || i >= m->n_tokens) return NULL;
    return m->tokens[i];
}

mp_status mp_model_get_info(const mp_model *m, mp_model_info *out) {
    if (!m || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_model_get_info: NULL argument");
    memset(out, 0, sizeof *out);
    out->architecture = m->arch;
    out->dtype = m->dtype;
    out->path = m->path ? m->path : "";
    out->n_params = m->n_params;
    out->weight_bytes = m->weight_bytes;
    out->vocab_size = m->hp.vocab;
    out->hidden_size = m->hp.hidden;
    out->n_layers = m->hp.n_layers;
    out->n_heads = m->hp.n_heads;
    out->intermediate_size = m->hp.intermediate;
    out->n_conv_layers = m->hp.n_conv;
    out->frame_stride = mp__model_stride(m);
    out->receptive_field = mp__model_receptive_field(m);
    out->sample_rate = m->hp.sample_rate;
    out->stable_layer_norm = m->hp.stable_ln;
    out->group_norm = m->hp.group_norm;
    out->has_lexicon = m->lexicon != NULL;
    return MP_OK;
}

/* ================================================================================================
 * mp_model_load
 */

/* Limits: config/tokenizer JSON files are a few kB; the safetensors header of wav2vec2-large is
 * ~50 kB. These caps only bound what a hostile file can make us allocate. */
#define JSON_FILE_MAX ((size_t)64 << 20)
#define ST_HEADER_MAX ((uint64_t)100 << 20)
#define ST_MAX_DIMS 8
/* Any single hyper-parameter above this is not a speech model; it also keeps products of two
 * of them far from int overflow. */
#define DIM_MAX (1 << 20)

enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 };
static const char *const dt_names[] = {"F32", "F16", "BF16"};
static const size_t dt_size[] = {4, 2, 2};

/* One entry of the safetensors header, validated: data/nbytes lie inside the file. */
typedef struct st_tensor {
    const char *name;                 /* borrowed from the header JSON */
    int dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const uint8_t *data;
    size_t nbytes;
    int used;
} st_tensor;

typedef struct loader {
    mp_model *m;
    const char *dir;
    char *config_path, *pre_path, *st_path;
    const char *prefix;               /* "wav2vec2." or "hubert." */
    json_t *header;                   /* safetensors header; owns the tensor names */
    st_tensor *t;
    size_t n_t;
    unsigned dtypes_used;             /* bit per DT_* among consumed tensors */
} loader;

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE: case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

/* Parse a JSON file whose top level must be an object. A missing optional file gives MP_OK with
 * *out = NULL; a missing required file is MP_ERR_IO. */
static mp_status load_json(const char *path, int optional, json_t **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && optional) return MP_OK;
        return mp__fail(MP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mp__fail(MP_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > JSON_FILE_MAX) {
        close(fd);
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: file too large (%lld bytes)", path, (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return mp__fail(MP_ERR_IO, "%s: short read", path);
    }
    json_error_t err;
    json_t *root = json_loadb(buf, n, 0, &err);
    free(buf);
    if (!root)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: invalid JSON at line %d column %d: %s", path, err.line,
                        err.column, err.text);
    if (!json_is_object(root)) {
        mp_status st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: top level is a JSON %s, expected an object", path,
                                json_kind(root));
        json_decref(root);
        return st;
    }
    *out = root;
    return MP_OK;
}

/* ---- typed config fields: absent or null -> default; wrong type or range -> error naming both ---- */

static mp_status get_int(const char *file, const json_t *o, const char *key, long long def, long long lo,
                         long long hi, int *out) {
    const json_t *v = json_object_get(o, key);
    long long x = def;
    if (v && !json_is_null(v)) {
        if (json_is_integer(v)) {
            x = json_integer_value(v);
        } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                   fabs(json_real_value(v)) < 9e15) {
            x = (long long)json_real_value(v); /* 16000.0 written by some exporters */
        } else {
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected an integer, got a %s", file, key, json_kind(v));
        }
    }
    if (x < lo || x > hi)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: value %lld out of range [%lld, %lld]", file, key, x, lo, hi);
    *out = (int)x;
    return MP_OK;
}

static mp_status get_bool(const char *file, const json_t *o, const char *key, int def, int *out) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return MP_OK;
    if (!json_is_boolean(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected true or false, got a %s", file, key, json_kind(v));
    *out = json_is_true(v);
    return MP_OK;
}

static mp_status get_str(const char *file, const json_t *o, const char *key, const char *def, const char **out) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return MP_OK;
    if (!json_is_string(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected a string, got a %s", file, key, json_kind(v));
    *out = json_string_value(v);
    return MP_OK;
}

static mp_status get_real(const char *file, const json_t *o, const char *key, double def, double *out) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return MP_OK;
    if (!json_is_number(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected a number, got a %s", file, key, json_kind(v));
    *out = json_number_value(v);
    return MP_OK;
}

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
                        json_kind(v));
    size_t n = json_array_size(v);
    if (n < 1 || n > MP_MAX_CONV)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: %zu entries, expected 1 to %d", file, key, n, MP_MAX_CONV);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s[%zu]: expected an integer, got a %s", file, key, i,
                            json_kind(e));
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
    mp_status st = get_str(file, o, key, "gelu", &s);
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
    mp_status st = get_bool(file, o, key, 0, &b);
    if (st != MP_OK) return st;
    if (b) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: true is not supported (%s)", file, key, why);
    return MP_OK;
}

/* ---- config.json -------------------------------------------------------------------------------- */

static mp_status parse_config(loader *L, const json_t *c) {
    mp__hparams *hp = &L->m->hp;
    const char *f = L->config_path;
    mp_status st;

    /* Architecture: the first entry of "architectures" we know, cross-checked with model_type. */
    const char *arch = NULL;
    const json_t *archs = json_object_get(c, "architectures");
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: architectures: expected a list of strings, got a %s", f,
                            json_kind(archs));
        for (size_t i = 0; i < json_array_size(archs); i++) {
            const json_t *a = json_array_get(archs, i);
            if (!json_is_string(a))
                return mp__fail(MP_ERR_MODEL_FORMAT, "%s: architectures[%zu]: expected a string, got a %s", f, i,
                                json_kind(a));
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
    if ((st = get_str(f, c, "model_type", NULL, &model_type)) != MP_OK) return st;
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

    /* Feature extractor. Defaults: transformers Wav2Vec2Config / HubertConfig (wav2vec2-base). */
    static const int def_dim[] = {512, 512, 512, 512, 512, 512, 512};
    static const int def_kernel[] = {10, 3, 3, 3, 3, 2, 2};
    static const int def_stride[] = {5, 2, 2, 2, 2, 2, 2};
    int n_dim, n_kernel, n_stride;
    if ((st = get_int_list(f, c, "conv_dim", def_dim, 7, 1, DIM_MAX, hp->conv_dim, &n_dim)) != MP_OK) return st;
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
    if ((st = get_bool(f, c, "conv_bias", 0, &hp->conv_bias)) != MP_OK) return st;
    const char *norm;
    if ((st = get_str(f, c, "feat_extract_norm", "group", &norm)) != MP_OK) return st;
    if (!strcmp(norm, "group")) hp->group_norm = 1;
    else if (!strcmp(norm, "layer")) hp->group_norm = 0;
    else
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: feat_extract_norm: unsupported value \"%s\" (group or layer)", f,
                        norm);
    if ((st = get_act(f, c, "feat_extract_activation", &hp->feat_act)) != MP_OK) return st;

    /* Transformer. */
    if ((st = get_int(f, c, "hidden_size", 768, 1, DIM_MAX, &hp->hidden)) != MP_OK) return st;
    if ((st = get_int(f, c, "num_attention_heads", 12, 1, DIM_MAX, &hp->n_heads)) != MP_OK) return st;
    if (hp->hidden % hp->n_heads != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: num_attention_heads: %d does not divide hidden_size %d", f,
                        hp->n_heads, hp->hidden);
    if ((st = get_int(f, c, "num_hidden_layers", 12, 0, 4096, &hp->n_layers)) != MP_OK) return st;
    if ((st = get_int(f, c, "intermediate_size", 3072, 1, DIM_MAX, &hp->intermediate)) != MP_OK) return st;
    if ((st = get_act(f, c, "hidden_act", &hp->hidden_act)) != MP_OK) return st;
    double eps;
    if ((st = get_real(f, c, "layer_norm_eps", 1e-5, &eps)) != MP_OK) return st;
    if (!(eps > 0 && eps < 1))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: layer_norm_eps: %g is not in (0, 1)", f, eps);
    hp->ln_eps = (float)eps;
    if ((st = get_bool(f, c, "do_stable_layer_norm", 0, &hp->stable_ln)) != MP_OK) return st;
    if ((st = get_int(f, c, "num_conv_pos_embeddings", 128, 1, 65536, &hp->pos_kernel)) != MP_OK) return st;
    if ((st = get_int(f, c, "num_conv_pos_embedding_groups", 16, 1, DIM_MAX, &hp->pos_groups)) != MP_OK) return st;
    if (hp->hidden % hp->pos_groups != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: num_conv_pos_embedding_groups: %d does not divide hidden_size %d",
                        f, hp->pos_groups, hp->hidden);
    if ((st = get_int(f, c, "vocab_size", 32, 1, DIM_MAX, &hp->vocab)) != MP_OK) return st;

    /* What we do not run. use_weighted_layer_sum (sequence classification) and the quantizer
     * fields (pre-training) don't affect Wav2Vec2ForCTC's output and are ignored. */
    if ((st = reject_true(f, c, "add_adapter", "adapter layers after the encoder")) != MP_OK) return st;
    const json_t *ad = json_object_get(c, "adapter_attn_dim");
    if (ad && !json_is_null(ad))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: adapter_attn_dim: attention adapters (MMS) are not supported", f);
    if (hubert) {
        int b;
        if ((st = get_bool(f, c, "feat_proj_layer_norm", 1, &b)) != MP_OK) return st;
        if (!b) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: feat_proj_layer_norm: false is not supported", f);
        if ((st = reject_true(f, c, "conv_pos_batch_norm", "batch-norm positional conv")) != MP_OK) return st;
    }
    return MP_OK;
}

/* ---- preprocessor_config.json ------------------------------------------------------------------- */

static mp_status parse_preprocessor(loader *L) {
    mp__hparams *hp = &L->m->hp;
    json_t *p;
    mp_status st = load_json(L->pre_path, 1, &p);
    if (st != MP_OK) return st;
    if (!p) {
        hp->do_normalize = 1;
        hp->sample_rate = 16000;
        mp__log(MP_LOG_INFO, "%s: not found; using do_normalize=true, sampling_rate=16000", L->pre_path);
        return MP_OK;
    }
    int fs = 1;
    if ((st = get_bool(L->pre_path, p, "do_normalize", 1, &hp->do_normalize)) != MP_OK ||
        (st = get_int(L->pre_path, p, "sampling_rate", 16000, 1000, 1000000, &hp->sample_rate)) != MP_OK ||
        (st = get_int(L->pre_path, p, "feature_size", 1, 0, DIM_MAX, &fs)) != MP_OK) {
        json_decref(p);
        return st;
    }
    json_decref(p);
    if (fs != 1)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: feature_size: %d, expected 1 (raw waveform input)", L->pre_path, fs);
    return MP_OK;
}

/* ---- model.safetensors -------------------------------------------------------------------------- */

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Map (or read) the file and validate every header entry before anything uses it. */
static mp_status open_safetensors(loader *L, int use_mmap) {
    mp_model *m = L->m;
    const char *f = L->st_path;
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            char *bin = path_join(L->dir, "pytorch_model.bin");
            int has_bin = bin && access(bin, F_OK) == 0;
            free(bin);
            if (has_bin)
                return mp__fail(MP_ERR_IO,
                                "%s: not found (pytorch_model.bin is not supported: save the model with "
                                "safe_serialization=True)",
                                f);
        }
        return mp__fail(MP_ERR_IO, "%s: cannot open: %s", f, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mp__fail(MP_ERR_IO, "%s: not a regular file", f);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: truncated: %zu bytes, shorter than the 8-byte header length", f,
                        size);
    }
    const uint8_t *file;
    if (use_mmap) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return mp__fail(MP_ERR_IO, "%s: mmap failed: %s", f, strerror(e));
        }
        m->map = p;
        m->map_size = size;
        file = p;
    } else {
        uint8_t *buf = (uint8_t *)mp__model_alloc(m, (size + 3) / 4);
        if (!buf) {
            close(fd);
            return mp__fail(MP_ERR_NOMEM, "%s: out of memory reading %zu bytes", f, size);
        }
        size_t got = 0;
        while (got < size) {
            ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != size) {
            close(fd);
            return mp__fail(MP_ERR_IO, "%s: short read (%zu of %zu bytes)", f, got, size);
        }
        file = buf;
    }
    close(fd);

    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | file[i];
    if (hlen > size - 8)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header length %llu larger than the file (%zu bytes): truncated?", f,
                        (unsigned long long)hlen, size);
    if (hlen > ST_HEADER_MAX)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header length %llu exceeds the 100 MB limit", f,
                        (unsigned long long)hlen);
    json_error_t err;
    L->header = json_loadb((const char *)file + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!L->header)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header: invalid JSON at column %d: %s", f, err.column, err.text);
    if (!json_is_object(L->header))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: header: a JSON %s, expected an object", f, json_kind(L->header));
    const uint8_t *data = file + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;

    L->t = calloc(json_object_size(L->header) + 1, sizeof *L->t);
    if (!L->t) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", f);
    const char *name;
    json_t *v;
    json_object_foreach(L->header, name, v) {
        if (!strcmp(name, "__metadata__")) continue; /* free-form string map */
        st_tensor *t = &L->t[L->n_t];
        t->name = name;
        if (!json_is_object(v))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: header entry is a JSON %s, expected an object", f,
                            name, json_kind(v));
        const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
                     *off = json_object_get(v, "data_offsets");
        if (!json_is_string(dt))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: dtype missing or not a string", f, name);
        const char *d = json_string_value(dt);
        if (!strcmp(d, "F32")) t->dtype = DT_F32;
        else if (!strcmp(d, "F16")) t->dtype = DT_F16;
        else if (!strcmp(d, "BF16")) t->dtype = DT_BF16;
        else
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: unsupported dtype %s (supported: F32, F16, BF16)", f,
                            name, d);
        if (!json_is_array(sh))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape missing or not a list", f, name);
        if (json_array_size(sh) > ST_MAX_DIMS)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: %zu dimensions, at most %d supported", f, name,
                            json_array_size(sh), ST_MAX_DIMS);
        t->ndim = (int)json_array_size(sh);
        size_t numel = 1;
        int overflow = 0;
        for (int i = 0; i < t->ndim; i++) {
            const json_t *e = json_array_get(sh, (size_t)i);
            if (!json_is_integer(e) || json_integer_value(e) < 0)
                return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer", f, name,
                                i);
            t->shape[i] = json_integer_value(e);
            uint64_t dim = (uint64_t)t->shape[i];
            if (dim != 0 && numel > SIZE_MAX / dim) overflow = 1;
            else numel *= (size_t)dim;
        }
        if (overflow || numel > SIZE_MAX / dt_size[t->dtype]) {
            char s[160];
            shape_str(s, sizeof s, t->ndim, t->shape);
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape %s overflows", f, name, s);
        }
        if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) ||
            !json_is_integer(json_array_get(off, 1)))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: data_offsets missing or not [begin, end]", f, name);
        json_int_t b = json_integer_value(json_array_get(off, 0)), e = json_integer_value(json_array_get(off, 1));
        if (b < 0 || e < b || (uint64_t)e > data_size)
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: tensor %s: data_offsets [%lld, %lld] outside the data section (%zu bytes)", f, name,
                            (long long)b, (long long)e, data_size);
        t->numel = numel;
        t->nbytes = (size_t)(e - b);
        if (t->nbytes != numel * dt_size[t->dtype]) {
            char s[160];
            shape_str(s, sizeof s, t->ndim, t->shape);
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: %zu data bytes, but %s %s needs %zu", f, name,
                            t->nbytes, d, s, numel * dt_size[t->dtype]);
        }
        t->data = data + b;
        L->n_t++;
    }
    return MP_OK;
}

static st_tensor *find_tensor(loader *L, const char *name) {
    for (size_t i = 0; i < L->n_t; i++)
        if (!strcmp(L->t[i].name, name)) return &L->t[i];
    return NULL;
}

/* IEEE half -> float, including subnormals, infinities and NaN. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;
    } else {
        /* subnormal: man * 2^-24, exact in float */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Convert any tensor into dst[numel] floats (the bytes are little-endian). */
static void tensor_read(const st_tensor *t, float *dst) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case DT_F32:
        memcpy(dst, p, t->numel * sizeof(float));
        break;
    case DT_F16:
        for (size_t i = 0; i < t->numel; i++) dst[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case DT_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16; /* bf16 = top half of fp32 */
            memcpy(&dst[i], &bits, sizeof bits);
        }
        break;
    }
}

/* fp32 view of a tensor: in place when already aligned fp32 (zero copy), else converted once. */
static mp_status tensor_f32(loader *L, const st_tensor *t, const float **out) {
    if (t->dtype == DT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = (const float *)(const void *)t->data;
        return MP_OK;
    }
    float *dst = mp__model_alloc(L->m, t->numel);
    if (!dst) return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", L->st_path, t->name);
    tensor_read(t, dst);
    *out = dst;
    return MP_OK;
}

/* Claim tensor `name` with exactly this shape: counts its parameters and dtype. */
static mp_status claim(loader *L, const char *name, int ndim, const int64_t *shape, st_tensor **out) {
    st_tensor *t = find_tensor(L, name);
    char want[160];
    shape_str(want, sizeof want, ndim, shape);
    if (!t) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: missing tensor %s (expected shape %s)", L->st_path, name, want);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[160];
        shape_str(got, sizeof got, t->ndim, t->shape);
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape %s, expected %s (from config.json)", L->st_path,
                        name, got, want);
    }
    if (t->used) return mp__fail(MP_ERR_INTERNAL, "%s: tensor %s claimed twice", L->st_path, name);
    t->used = 1;
    L->m->n_params += t->numel;
    L->dtypes_used |= 1u << t->dtype;
    *out = t;
    return MP_OK;
}

/* Claim a tensor used as stored (after fp32 conversion). shape: up to 2 dims, d1 < 0 = 1-D. */
static mp_status bind(loader *L, const float **out, int64_t d0, int64_t d1, const char *fmt, ...) MP_PRINTF(5, 6);
static mp_status bind(loader *L, const float **out, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[2] = {d0, d1};
    st_tensor *t;
    mp_status st = claim(L, name, d1 < 0 ? 1 : 2, shape, &t);
    if (st != MP_OK) return st;
    if ((st = tensor_f32(L, t, out)) != MP_OK) return st;
    L->m->weight_bytes += t->numel * sizeof(float);
    return MP_OK;
}

/* Conv weight [c_out][c_in][k] (HF/PyTorch Conv1d) -> owned [c_out][k][c_in], so that for output
 * frame t the k input rows t*stride .. t*stride+k-1 of a time-major [T][c_in] activation are one
 * contiguous im2col row matching one weight row. */
static mp_status reorder_conv(loader *L, const st_tensor *t, int c_out, int c_in, int k, const float **out) {
    float *src = malloc(t->numel * sizeof *src);
    float *dst = mp__model_alloc(L->m, t->numel);
    if (!src || !dst) {
        free(src);
        return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", L->st_path, t->name);
    }
    tensor_read(t, src);
    for (int o = 0; o < c_out; o++)
        for (int i = 0; i < c_in; i++)
            for (int j = 0; j < k; j++)
                dst[((size_t)o * k + j) * c_in + i] = src[((size_t)o * c_in + i) * k + j];
    free(src);
    L->m->weight_bytes += t->numel * sizeof(float);
    *out = dst;
    return MP_OK;
}

static mp_status load_feature_extractor(loader *L) {
    mp_model *m = L->m;
    mp__hparams *hp = &m->hp;
    const char *p = L->prefix;
    mp_status st;
    char name[256];
    for (int l = 0; l < hp->n_conv; l++) {
        mp__conv_layer *c = &m->conv[l];
        c->c_in = l ? hp->conv_dim[l - 1] : 1;
        c->c_out = hp->conv_dim[l];
        c->kernel = hp->conv_kernel[l];
        c->stride = hp->conv_stride[l];
        snprintf(name, sizeof name, "%sfeature_extractor.conv_layers.%d.conv.weight", p, l);
        int64_t shape[3] = {c->c_out, c->c_in, c->kernel};
        st_tensor *t;
        if ((st = claim(L, name, 3, shape, &t)) != MP_OK) return st;
        if ((st = reorder_conv(L, t, c->c_out, c->c_in, c->kernel, &c->w)) != MP_OK) return st;
        c->b = NULL;
        if (hp->conv_bias &&
            (st = bind(L, &c->b, c->c_out, -1, "%sfeature_extractor.conv_layers.%d.conv.bias", p, l)) != MP_OK)
            return st;
        c->norm_w = c->norm_b = NULL;
        if (l == 0 || !hp->group_norm) {
            if ((st = bind(L, &c->norm_w, c->c_out, -1, "%sfeature_extractor.conv_layers.%d.layer_norm.weight", p,
                           l)) != MP_OK ||
                (st = bind(L, &c->norm_b, c->c_out, -1, "%sfeature_extractor.conv_layers.%d.layer_norm.bias", p, l)) !=
                    MP_OK)
                return st;
        }
    }
    int c_last = hp->conv_dim[hp->n_conv - 1];
    if ((st = bind(L, &m->fp_ln_w, c_last, -1, "%sfeature_projection.layer_norm.weight", p)) != MP_OK ||
        (st = bind(L, &m->fp_ln_b, c_last, -1, "%sfeature_projection.layer_norm.bias", p)) != MP_OK ||
        (st = bind(L, &m->fp_w, hp->hidden, c_last, "%sfeature_projection.projection.weight", p)) != MP_OK ||
        (st = bind(L, &m->fp_b, hp->hidden, -1, "%sfeature_projection.projection.bias", p)) != MP_OK)
        return st;
    return MP_OK;
}

/* Positional conv: Conv1d(H, H, K, groups=G) under weight norm over dim 2. Accepts the three
 * namings PyTorch produces: weight_g/weight_v (torch.nn.utils.weight_norm), parametrizations.
 * weight.original0/original1 (torch.nn.utils.parametrizations.weight_norm), or a plain weight.
 * Result: w[o][k][i] = g[k] * v[o][i][k] / sqrt(sum_{o',i'} v[o'][i'][k]^2), stored as
 * [G][H/G out][K][H/G in] (= [H][K][H/G] since output channel o belongs to group o / (H/G)). */
static mp_status load_pos_conv(loader *L) {
    mp_model *m = L->m;
    const int H = m->hp.hidden, K = m->hp.pos_kernel, Cg = H / m->hp.pos_groups;
    const size_t n = (size_t)H * Cg * K;
    char base[200], gname[256], vname[256];
    snprintf(base, sizeof base, "%sencoder.pos_conv_embed.conv", L->prefix);
    int64_t gshape[3] = {1, 1, K}, vshape[3] = {H, Cg, K};
    st_tensor *g = NULL, *v = NULL;
    mp_status st;

    snprintf(gname, sizeof gname, "%s.parametrizations.weight.original0", base);
    snprintf(vname, sizeof vname, "%s.parametrizations.weight.original1", base);
    if (!find_tensor(L, gname) && !find_tensor(L, vname)) {
        snprintf(gname, sizeof gname, "%s.weight_g", base);
        snprintf(vname, sizeof vname, "%s.weight_v", base);
    }
    if (!find_tensor(L, gname) && !find_tensor(L, vname)) {
        snprintf(vname, sizeof vname, "%s.weight", base);
        if (!find_tensor(L, vname))
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: missing tensor %s.weight_g/.weight_v (or .parametrizations.weight.original0/1, or "
                            ".weight; expected shapes [1,1,%d] and [%d,%d,%d])",
                            L->st_path, base, K, H, Cg, K);
    } else if ((st = claim(L, gname, 3, gshape, &g)) != MP_OK) {
        return st;
    }
    if ((st = claim(L, vname, 3, vshape, &v)) != MP_OK) return st;

    float *w = malloc(n * sizeof *w);
    float *gv = malloc((size_t)K * sizeof *gv);
    double *norm = calloc((size_t)K, sizeof *norm);
    float *dst = mp__model_alloc(m, n);
    if (!w || !gv || !norm || !dst) {
        free(w), free(gv), free(norm);
        return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", L->st_path, vname);
    }
    tensor_read(v, w);
    if (g) {
        tensor_read(g, gv);
        for (size_t j = 0; j < (size_t)H * Cg; j++)
            for (int k = 0; k < K; k++) norm[k] += (double)w[j * K + k] * w[j * K + k];
        /* A zero column has no direction; PyTorch would produce NaN there, we keep zeros. */
        for (int k = 0; k < K; k++) norm[k] = norm[k] > 0 ? gv[k] / sqrt(norm[k]) : 0.0;
        for (size_t j = 0; j < (size_t)H * Cg; j++)
            for (int k = 0; k < K; k++) w[j * K + k] = (float)(w[j * K + k] * norm[k]);
    }
    for (int o = 0; o < H; o++)
        for (int i = 0; i < Cg; i++)
            for (int k = 0; k < K; k++) dst[((size_t)o * K + k) * Cg + i] = w[((size_t)o * Cg + i) * K + k];
    free(w), free(gv), free(norm);
    m->pos_w = dst;
    m->weight_bytes += n * sizeof(float);
    return bind(L, &m->pos_b, H, -1, "%s.bias", base);
}

static mp_status load_encoder(loader *L) {
    mp_model *m = L->m;
    const int H = m->hp.hidden, I = m->hp.intermediate, V = m->hp.vocab;
    const char *p = L->prefix;
    mp_status st;
    if ((st = load_pos_conv(L)) != MP_OK) return st;
    if ((st = bind(L, &m->enc_ln_w, H, -1, "%sencoder.layer_norm.weight", p)) != MP_OK ||
        (st = bind(L, &m->enc_ln_b, H, -1, "%sencoder.layer_norm.bias", p)) != MP_OK)
        return st;
    if (m->hp.n_layers > 0) {
        m->layers = calloc((size_t)m->hp.n_layers, sizeof *m->layers);
        if (!m->layers) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", L->st_path);
    }
    for (int l = 0; l < m->hp.n_layers; l++) {
        mp__enc_layer *e = &m->layers[l];
        char b[160];
        snprintf(b, sizeof b, "%sencoder.layers.%d.", p, l);
        if ((st = bind(L, &e->q_w, H, H, "%sattention.q_proj.weight", b)) != MP_OK ||
            (st = bind(L, &e->q_b, H, -1, "%sattention.q_proj.bias", b)) != MP_OK ||
            (st = bind(L, &e->k_w, H, H, "%sattention.k_proj.weight", b)) != MP_OK ||
            (st = bind(L, &e->k_b, H, -1, "%sattention.k_proj.bias", b)) != MP_OK ||
            (st = bind(L, &e->v_w, H, H, "%sattention.v_proj.weight", b)) != MP_OK ||
            (st = bind(L, &e->v_b, H, -1, "%sattention.v_proj.bias", b)) != MP_OK ||
            (st = bind(L, &e->o_w, H, H, "%sattention.out_proj.weight", b)) != MP_OK ||
            (st = bind(L, &e->o_b, H, -1, "%sattention.out_proj.bias", b)) != MP_OK ||
            (st = bind(L, &e->ln1_w, H, -1, "%slayer_norm.weight", b)) != MP_OK ||
            (st = bind(L, &e->ln1_b, H, -1, "%slayer_norm.bias", b)) != MP_OK ||
            (st = bind(L, &e->ff1_w, I, H, "%sfeed_forward.intermediate_dense.weight", b)) != MP_OK ||
            (st = bind(L, &e->ff1_b, I, -1, "%sfeed_forward.intermediate_dense.bias", b)) != MP_OK ||
            (st = bind(L, &e->ff2_w, H, I, "%sfeed_forward.output_dense.weight", b)) != MP_OK ||
            (st = bind(L, &e->ff2_b, H, -1, "%sfeed_forward.output_dense.bias", b)) != MP_OK ||
            (st = bind(L, &e->ln2_w, H, -1, "%sfinal_layer_norm.weight", b)) != MP_OK ||
            (st = bind(L, &e->ln2_b, H, -1, "%sfinal_layer_norm.bias", b)) != MP_OK)
            return st;
    }
    if ((st = bind(L, &m->lm_w, V, H, "lm_head.weight")) != MP_OK ||
        (st = bind(L, &m->lm_b, V, -1, "lm_head.bias")) != MP_OK)
        return st;
    return MP_OK;
}

/* Every tensor must be consumed or be a known training-only one. */
static mp_status check_leftovers(loader *L) {
    size_t np = strlen(L->prefix);
    for (size_t i = 0; i < L->n_t; i++) {
        const st_tensor *t = &L->t[i];
        if (t->used) continue;
        const char *s = t->name;
        const char *rest = strncmp(s, L->prefix, np) == 0 ? s + np : NULL;
        if ((rest && !strcmp(rest, "masked_spec_embed")) || !strncmp(s, "quantizer.", 10) ||
            !strncmp(s, "project_q.", 10) || !strncmp(s, "project_hid.", 12)) {
            mp__log(MP_LOG_DEBUG, "%s: ignoring training-only tensor %s", L->st_path, s);
            continue;
        }
        char sh[160];
        shape_str(sh, sizeof sh, t->ndim, t->shape);
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: unexpected tensor %s %s (not part of %s as configured in %s)",
                        L->st_path, s, sh, L->m->arch, L->config_path);
    }
    return MP_OK;
}

/* ---- tokenizer: vocab.json + special tokens ------------------------------------------------------ */

/* A special-token value: a string, an AddedToken object {"content": ...}, or null/absent. */
static mp_status get_token(const char *file, const json_t *o, const char *key, const char **out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return MP_OK;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected a token string or {\"content\": ...}", file, key);
    *out = json_string_value(v);
    return MP_OK;
}

static int token_id(const mp_model *m, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < m->n_tokens; i++)
        if (m->tokens[i] && !strcmp(m->tokens[i], s)) return i;
    return -1;
}

/* Put token s at id (which must be free or already hold s). */
static mp_status set_token(mp_model *m, const char *file, const char *s, json_int_t id) {
    if (id < 0 || id >= m->n_tokens)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: token \"%s\": id %lld outside the vocabulary [0, %d) of config.json "
                        "vocab_size",
                        file, s, (long long)id, m->n_tokens);
    if (m->tokens[id]) {
        if (!strcmp(m->tokens[id], s)) return MP_OK;
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: token \"%s\": id %lld already used by \"%s\"", file, s,
                        (long long)id, m->tokens[id]);
    }
    m->tokens[id] = strdup(s);
    if (!m->tokens[id]) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    return MP_OK;
}

/* Fill a token -> id JSON object into m->tokens. */
static mp_status add_token_map(mp_model *m, const char *file, const json_t *obj) {
    const char *tok;
    json_t *v;
    json_object_foreach((json_t *)obj, tok, v) {
        if (!json_is_integer(v))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: token \"%s\": id is a %s, expected an integer", file, tok,
                            json_kind(v));
        mp_status st = set_token(m, file, tok, json_integer_value(v));
        if (st != MP_OK) return st;
    }
    return MP_OK;
}

static mp_status load_tokenizer(loader *L, int cfg_pad_id) {
    mp_model *m = L->m;
    mp_status st = MP_OK;
    char *vocab_path = path_join(L->dir, "vocab.json"), *tc_path = path_join(L->dir, "tokenizer_config.json"),
         *sp_path = path_join(L->dir, "special_tokens_map.json"), *at_path = path_join(L->dir, "added_tokens.json");
    json_t *vocab = NULL, *tc = NULL, *sp = NULL, *at = NULL;
    if (!vocab_path || !tc_path || !sp_path || !at_path) {
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", L->dir);
        goto done;
    }
    m->tokens = calloc((size_t)m->hp.vocab, sizeof *m->tokens);
    if (!m->tokens) {
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", vocab_path);
        goto done;
    }
    m->n_tokens = m->hp.vocab;
    if ((st = load_json(vocab_path, 0, &vocab)) != MP_OK) goto done;
    if ((st = add_token_map(m, vocab_path, vocab)) != MP_OK) goto done;
    if ((st = load_json(at_path, 1, &at)) != MP_OK) goto done;
    if (at && (st = add_token_map(m, at_path, at)) != MP_OK) goto done;

    /* Special tokens: Wav2Vec2CTCTokenizer defaults, then tokenizer_config.json, then
     * special_tokens_map.json (the latter wins, as in transformers' from_pretrained). */
    const char *pad = "<pad>", *delim = "|", *unk = "<unk>", *bos = "<s>", *eos = "</s>";
    m->do_lower_case = 0;
    if ((st = load_json(tc_path, 1, &tc)) != MP_OK) goto done;
    if (tc) {
        if ((st = get_token(tc_path, tc, "pad_token", &pad)) != MP_OK ||
            (st = get_token(tc_path, tc, "word_delimiter_token", &delim)) != MP_OK ||
            (st = get_token(tc_path, tc, "unk_token", &unk)) != MP_OK ||
            (st = get_token(tc_path, tc, "bos_token", &bos)) != MP_OK ||
            (st = get_token(tc_path, tc, "eos_token", &eos)) != MP_OK ||
            (st = get_bool(tc_path, tc, "do_lower_case", 0, &m->do_lower_case)) != MP_OK)
            goto done;
        /* Newer transformers list added tokens by id here; fill ids vocab.json left empty. */
        const json_t *atd = json_object_get(tc, "added_tokens_decoder");
        if (json_is_object(atd)) {
            const char *key;
            json_t *v;
            json_object_foreach((json_t *)atd, key, v) {
                const json_t *c = json_object_get(v, "content");
                char *end;
                long long id = strtoll(key, &end, 10);
                if (!json_is_string(c) || *end || end == key)
                    continue; /* informational; tokens that matter are in vocab.json */
                if (id >= 0 && id < m->n_tokens && !m->tokens[id] &&
                    (st = set_token(m, tc_path, json_string_value(c), id)) != MP_OK)
                    goto done;
            }
        }
    }
    if ((st = load_json(sp_path, 1, &sp)) != MP_OK) goto done;
    if (sp) {
        if ((st = get_token(sp_path, sp, "pad_token", &pad)) != MP_OK ||
            (st = get_token(sp_path, sp, "word_delimiter_token", &delim)) != MP_OK ||
            (st = get_token(sp_path, sp, "unk_token", &unk)) != MP_OK ||
            (st = get_token(sp_path, sp, "bos_token", &bos)) != MP_OK ||
            (st = get_token(sp_path, sp, "eos_token", &eos)) != MP_OK)
            goto done;
    }
    m->pad_id = token_id(m, pad);
    if (m->pad_id < 0) {
        if (cfg_pad_id < 0 || cfg_pad_id >= m->n_tokens) {
            st = mp__fail(MP_ERR_MODEL_FORMAT,
                          "%s: pad token \"%s\" (the CTC blank) is not in the vocabulary, and %s pad_token_id %d is "
                          "outside it",
                          vocab_path, pad, L->config_path, cfg_pad_id);
            goto done;
        }
        m->pad_id = cfg_pad_id;
    }
    m->word_delim_id = token_id(m, delim);
    m->unk_id = token_id(m, unk);
    m->bos_id = token_id(m, bos);
    m->eos_id = token_id(m, eos);
    /* Ids no file named decode to nothing. */
    for (int i = 0; i < m->n_tokens; i++) {
        if (m->tokens[i]) continue;
        m->tokens[i] = strdup("");
        if (!m->tokens[i]) {
            st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", vocab_path);
            goto done;
        }
    }
done:
    json_decref(vocab), json_decref(tc), json_decref(sp), json_decref(at);
    free(vocab_path), free(tc_path), free(sp_path), free(at_path);
    return st;
}

/* ---- the whole load ---------------------------------------------------------------------------- */

static mp_status load(loader *L, int use_mmap) {
    mp_model *m = L->m;
    mp_status st;
    json_t *cfg = NULL;
    if ((st = load_json(L->config_path, 0, &cfg)) != MP_OK) return st;
    int cfg_pad_id = 0;
    st = parse_config(L, cfg);
    if (st == MP_OK) st = get_int(L->config_path, cfg, "pad_token_id", 0, -1, DIM_MAX, &cfg_pad_id);
    json_decref(cfg);
    if (st != MP_OK) return st;
    if ((st = parse_preprocessor(L)) != MP_OK) return st;
    if ((st = open_safetensors(L, use_mmap)) != MP_OK) return st;
    if ((st = load_feature_extractor(L)) != MP_OK) return st;
    if ((st = load_encoder(L)) != MP_OK) return st;
    if ((st = check_leftovers(L)) != MP_OK) return st;
    if ((st = load_tokenizer(L, cfg_pad_id)) != MP_OK) return st;
    /* lexicon.txt / words.txt spelled in this vocabulary (lexicon.c); absent is fine. */
    if ((st = mp__model_load_lexicon(m, L->dir)) != MP_OK) return st;

    int n_dt = 0, last = DT_F32;
    for (int d = DT_F32; d <= DT_BF16; d++)
        if (L->dtypes_used & (1u << d)) n_dt++, last = d;
    snprintf(m->dtype, sizeof m->dtype, "%s", n_dt > 1 ? "mixed" : dt_names[last]);
    return MP_OK;
}

mp_status mp_model_load(const char *dir, const mp_model_config *cfg, mp_model **out) {
    if (out) *out = NULL;
    if (!dir || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_model_load: NULL %s", dir ? "out" : "dir");
    mp_model_config def = mp_model_default_config();
    if (!cfg) cfg = &def;

    loader L = {.dir = dir};
    mp_status st = MP_OK;
    L.m = calloc(1, sizeof *L.m);
    L.config_path = path_join(dir, "config.json");
    L.pre_path = path_join(dir, "preprocessor_config.json");
    L.st_path = path_join(dir, "model.safetensors");
    if (!L.m || !L.config_path || !L.pre_path || !L.st_path) {
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", dir);
    } else {
        L.m->pad_id = L.m->word_delim_id = L.m->unk_id = L.m->bos_id = L.m->eos_id = -1;
        L.m->path = strdup(dir);
        if (!L.m->path) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", dir);
        else st = load(&L, cfg->use_mmap != 0);
    }
    if (st == MP_OK) st = mp__model_apply_dtype(L.m, cfg->dtype); /* int8: quant.c */
    if (st == MP_OK) {
        mp__log(MP_LOG_INFO, "%s: %s, %d layers, hidden %d, vocab %d, %llu parameters (%s), %s", dir, L.m->arch,
                L.m->hp.n_layers, L.m->hp.hidden, L.m->hp.vocab, (unsigned long long)L.m->n_params, L.m->dtype,
                L.m->map ? "memory-mapped" : "read into memory");
        *out = L.m;
    } else {
        mp_model_free(L.m);
    }
    json_decref(L.header);
    free(L.t);
    free(L.config_path), free(L.pre_path), free(L.st_path);
    return st;
}
