/* model.c - the immutable model: loading a HuggingFace wav2vec2-CTC directory, ownership, info. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* mp_model_load: TODO(loader) - being written (config.json, safetensors, tokenizer). */
