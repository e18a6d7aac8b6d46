/*
 * model.c - the immutable model: loading the network and tokenizer of a HuggingFace wav2vec2-CTC
 * directory (the order of the steps, their shared state, the result), ownership, info.
 *
 * DESIGN
 *   mp__model_load_network() runs, in order: config.c (config.json, type-checked field by field,
 *   HuggingFace Wav2Vec2Config defaults for absent fields; preprocessor_config.json, optional),
 *   a weight-file reader into the tensor table (tensors.h; weight-files.c picks the file as
 *   from_pretrained does: safetensors.c for model.safetensors, torch-tensors.c for
 *   pytorch_model.bin, either sharded behind an index; every reader validates all of its file's
 *   structure before any tensor byte is touched), weights.c (tensors -> layers),
 *   then tokenizer.c (vocab.json required; special_tokens_map.json, tokenizer_config.json,
 *   added_tokens.json optional). The model directory's decoding resources (word list, decoding
 *   defaults) are the decode module's; pool/model-dir.c adds them on top (mp_model_load).
 *
 *   Storage: the weight file is mapped read-only (use_mmap=1) or read into one owned block
 *   (use_mmap=0), and stays with the model (m->weights). Every fp32 tensor whose address is
 *   4-byte aligned is used in place, so all workers of all pools read the one shared copy.
 *   fp16/bf16 (and misaligned fp32) tensors are converted once into owned blocks; conv weights
 *   are reordered for im2col and the positional conv gets its weight norm applied, also into
 *   owned blocks (see struct mp_model).
 *
 *   A mapped file must not be rewritten in place while the model lives (the kernel would deliver
 *   SIGBUS on a read past a truncation); tools that replace a model should write a new file and
 *   rename it over the old one, or load with use_mmap=0.
 *
 *   Every tensor in the file must be consumed, or be on the short list of training-only names;
 *   anything else is an error, so a checkpoint of another architecture never half-loads.
 *   Errors name the file and the field or tensor (mp__fail); nothing here prints or aborts.
 *
 * Module: engine (this folder: model.c, config.c, tensors.c, safetensors.c, weight-files.c,
 * torch-tensors.c over torch-ckpt.c / torch-zip.c / pickle.c, weights.c, tokenizer.c, convert.c
 * with st-write.c, arch.c, w2v2.c) owns struct mp_model and the forward pass. It calls core only.
 */
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void mp__model_destroy(mp_model *m) {
    if (!m) return;
    mp__model_quant_free(m); /* int8 weights, if any (quant.c) */
    mp__model_prepack_free(m); /* fp32 packed copies, if any (prepack.c) */
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    mp__tensors_free(m->weights); /* the mapping or copy of the weight file, after its last use */
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
    out->weights_format = m->weights && m->weights->format[0] ? m->weights->format : "random";
    out->language = m->language[0] ? m->language : "";
    return MP_OK;
}


/* ================================================================================================
 * Loading
 */

/* The weight files into L->ts (weight-files.c): model.safetensors, or its shards, or
 * pytorch_model.bin, or its shards, whichever comes first. */
static mp_status open_weights(mp__loader *L, int use_mmap) {
    return mp__weights_open(L->dir, use_mmap, &L->ts);
}

/* "F32", "F16", "BF16", or "mixed" when the claimed tensors had more than one dtype. */
static void set_dtype_name(mp__loader *L) {
    int n_dt = 0, last = MP_DT_F32;
    for (int d = 0; d < MP_DT_COUNT; d++)
        if (L->dtypes_used & (1u << d)) n_dt++, last = d;
    snprintf(L->m->dtype, sizeof L->m->dtype, "%s", n_dt > 1 ? "mixed" : mp__dtype_name((mp__dtype)last));
}

static mp_status load_steps(mp__loader *L, int use_mmap) {
    mp_status st;
    if ((st = mp__config_load(L)) != MP_OK) return st;
    if ((st = mp__preprocessor_load(L)) != MP_OK) return st;
    if ((st = open_weights(L, use_mmap)) != MP_OK) return st;
    /* The table owns the file's bytes, which fp32 tensors point into: the model keeps it. */
    L->m->weights = L->ts;
    L->m->map = L->ts->map;
    L->m->map_size = L->ts->map_size;
    if ((st = mp__weights_bind(L)) != MP_OK) return st;
    if ((st = mp__tokenizer_load(L)) != MP_OK) return st;
    set_dtype_name(L);
    return MP_OK;
}

mp_status mp__model_load_network(const char *dir, const mp_model_config *cfg, mp_model **out) {
    if (out) *out = NULL;
    if (!dir || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_model_load: NULL %s", dir ? "out" : "dir");
    mp_model_config def = mp_model_default_config();
    if (!cfg) cfg = &def;

    mp__loader L = {.dir = dir, .language = cfg->language};
    mp_status st = MP_OK;
    L.m = calloc(1, sizeof *L.m);
    L.config_path = mp__path_join(dir, "config.json");
    L.pre_path = mp__path_join(dir, "preprocessor_config.json");
    L.st_path = mp__path_join(dir, "model.safetensors");
    if (!L.m || !L.config_path || !L.pre_path || !L.st_path) {
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", dir);
    } else {
        L.m->pad_id = L.m->word_delim_id = L.m->unk_id = L.m->bos_id = L.m->eos_id = -1;
        L.m->path = strdup(dir);
        if (!L.m->path) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", dir);
        else st = load_steps(&L, cfg->use_mmap != 0);
    }
    if (st == MP_OK) st = mp__model_apply_dtype(L.m, cfg->dtype); /* int8: quant.c */
    if (st == MP_OK) {
        mp__log(MP_LOG_INFO, "%s: %s, %d layers, hidden %d, vocab %d, %llu parameters (%s), %s", dir, L.m->arch,
                L.m->hp.n_layers, L.m->hp.hidden, L.m->hp.vocab, (unsigned long long)L.m->n_params, L.m->dtype,
                L.m->map ? "memory-mapped" : "read into memory");
        *out = L.m;
    } else {
        mp__model_destroy(L.m);
    }
    free(L.config_path), free(L.pre_path), free(L.st_path);
    return st;
}
