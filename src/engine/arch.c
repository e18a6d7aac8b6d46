/* arch.c - named wav2vec2 architectures with random weights (mp_model_create_random), so
 * benchmarks and tests run without any model files. Same (arch, seed), same weights, bit for bit. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* facebook/wav2vec2-base-960h's vocabulary: <pad>=0 is the CTC blank, "|"=4 the word
 * delimiter. Every random architecture uses it so decoders can run on random models too. */
static const char *const VOCAB32[32] = {"<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I",
                                        "H",     "S",   "R",    "D",     "L", "U", "M", "W", "C", "F", "G",
                                        "Y",     "P",   "B",    "V",     "K", "'", "X", "J", "Q", "Z"};

/* splitmix64 (Steele, Lea, Flood 2014; the seeding generator of xoshiro): one 64-bit state,
 * every output a bijective mix of a Weyl sequence, so any seed (0 included) is fine. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) from the top 24 bits (exactly representable in a float). */
static float unif(uint64_t *s) {
    return (float)(splitmix64(s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

typedef struct builder {
    mp_model *m;
    uint64_t rng;
    uint64_t n_params;
    int failed;
} builder;

/* A tensor of n floats, each uniform in [center - scale, center + scale). PyTorch's default init
 * of Linear and Conv1d weights and biases (kaiming_uniform with a = sqrt(5)) is exactly
 * uniform(+-1/sqrt(fan_in)), so scale = 1/sqrt(fan_in) gives activations of realistic size. */
static const float *tensor(builder *b, size_t n, float center, float scale) {
    if (b->failed) return NULL;
    float *p = mp__model_alloc(b->m, n);
    if (!p) {
        b->failed = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) p[i] = center + scale * unif(&b->rng);
    b->n_params += n;
    return p;
}

static const float *lin(builder *b, size_t n, int fan_in) {
    return tensor(b, n, 0.0f, 1.0f / sqrtf((float)fan_in));
}

/* Norm affine parameters: weight ~1, bias ~0, with a little noise so a test notices a swapped
 * or skipped weight/bias. */
static const float *norm_w(builder *b, size_t n) { return tensor(b, n, 1.0f, 0.1f); }
static const float *norm_b(builder *b, size_t n) { return tensor(b, n, 0.0f, 0.1f); }

static void set_conv(mp__hparams *hp, int n, const int *dim, const int *kernel, const int *stride) {
    hp->n_conv = n;
    for (int i = 0; i < n; i++) {
        hp->conv_dim[i] = dim[i];
        hp->conv_kernel[i] = kernel[i];
        hp->conv_stride[i] = stride[i];
    }
}

/* Fill hp for a named architecture; 0 if the name is unknown. */
static int arch_hparams(const char *arch, mp__hparams *hp) {
    static const int d512[7] = {512, 512, 512, 512, 512, 512, 512};
    static const int k_base[7] = {10, 3, 3, 3, 3, 2, 2};
    static const int s_base[7] = {5, 2, 2, 2, 2, 2, 2};
    /* tiny: total stride 5*4*4*4 = 320 like base, with a kernel longer than its stride (8 > 4),
     * one shorter (3 < 4) and one equal (4), so every row-range case of the streaming conv runs. */
    static const int d_tiny[4] = {32, 24, 24, 16};
    static const int k_tiny[4] = {10, 8, 3, 4};
    static const int s_tiny[4] = {5, 4, 4, 4};

    memset(hp, 0, sizeof *hp);
    hp->feat_act = MP_ACT_GELU;
    hp->hidden_act = MP_ACT_GELU;
    hp->ln_eps = 1e-5f;
    hp->vocab = 32;
    hp->do_normalize = 1;
    hp->sample_rate = 16000;
    if (strcmp(arch, "base") == 0) {
        /* facebook/wav2vec2-base-960h config.json */
        set_conv(hp, 7, d512, k_base, s_base);
        hp->group_norm = 1;
        hp->hidden = 768, hp->n_heads = 12, hp->n_layers = 12, hp->intermediate = 3072;
        hp->pos_kernel = 128, hp->pos_groups = 16;
    } else if (strcmp(arch, "large") == 0) {
        /* facebook/wav2vec2-large-960h-lv60-self config.json */
        set_conv(hp, 7, d512, k_base, s_base);
        hp->conv_bias = 1;
        hp->group_norm = 0;
        hp->stable_ln = 1;
        hp->hidden = 1024, hp->n_heads = 16, hp->n_layers = 24, hp->intermediate = 4096;
        hp->pos_kernel = 128, hp->pos_groups = 16;
    } else if (strcmp(arch, "tiny") == 0) {
        /* base-like (group norm, post-LN), even pos kernel (drops the last frame) */
        set_conv(hp, 4, d_tiny, k_tiny, s_tiny);
        hp->group_norm = 1;
        hp->hidden = 32, hp->n_heads = 4, hp->n_layers = 2, hp->intermediate = 64;
        hp->pos_kernel = 16, hp->pos_groups = 4;
    } else if (strcmp(arch, "tiny-large") == 0) {
        /* large-like (layer-norm feature extractor, conv bias, stable LN), odd pos kernel */
        set_conv(hp, 4, d_tiny, k_tiny, s_tiny);
        hp->conv_bias = 1;
        hp->group_norm = 0;
        hp->stable_ln = 1;
        hp->hidden = 32, hp->n_heads = 4, hp->n_layers = 2, hp->intermediate = 64;
        hp->pos_kernel = 15, hp->pos_groups = 4;
    } else {
        return 0;
    }
    return 1;
}

static void build_weights(builder *b) {
    mp_model *m = b->m;
    const mp__hparams *hp = &m->hp;
    int c_in = 1;
    for (int i = 0; i < hp->n_conv; i++) {
        mp__conv_layer *cl = &m->conv[i];
        cl->c_in = c_in;
        cl->c_out = hp->conv_dim[i];
        cl->kernel = hp->conv_kernel[i];
        cl->stride = hp->conv_stride[i];
        int fan_in = c_in * cl->kernel;
        cl->w = lin(b, (size_t)cl->c_out * cl->kernel * c_in, fan_in); /* [c_out][kernel][c_in] */
        cl->b = hp->conv_bias ? lin(b, (size_t)cl->c_out, fan_in) : NULL;
        if (!hp->group_norm || i == 0) {
            cl->norm_w = norm_w(b, (size_t)cl->c_out);
            cl->norm_b = norm_b(b, (size_t)cl->c_out);
        }
        c_in = cl->c_out;
    }
    const int H = hp->hidden, I = hp->intermediate, C = c_in, K = hp->pos_kernel, Hg = H / hp->pos_groups;
    m->fp_ln_w = norm_w(b, (size_t)C);
    m->fp_ln_b = norm_b(b, (size_t)C);
    m->fp_w = lin(b, (size_t)H * C, C);
    m->fp_b = lin(b, (size_t)H, C);
    /* The checkpoint stores the pos conv as weight_g [1][1][K] + weight_v; the engine reads the
     * product, so weight_g only counts as parameters (it matches HF's parameter count). */
    m->pos_w = lin(b, (size_t)H * Hg * K, Hg * K); /* [G][Hg out][K][Hg in] */
    b->n_params += (uint64_t)K;
    m->pos_b = lin(b, (size_t)H, Hg * K);
    m->enc_ln_w = norm_w(b, (size_t)H);
    m->enc_ln_b = norm_b(b, (size_t)H);
    for (int l = 0; l < hp->n_layers && !b->failed; l++) {
        mp__enc_layer *L = &m->layers[l];
        L->q_w = lin(b, (size_t)H * H, H), L->q_b = lin(b, (size_t)H, H);
        L->k_w = lin(b, (size_t)H * H, H), L->k_b = lin(b, (size_t)H, H);
        L->v_w = lin(b, (size_t)H * H, H), L->v_b = lin(b, (size_t)H, H);
        L->o_w = lin(b, (size_t)H * H, H), L->o_b = lin(b, (size_t)H, H);
        L->ln1_w = norm_w(b, (size_t)H), L->ln1_b = norm_b(b, (size_t)H);
        L->ff1_w = lin(b, (size_t)I * H, H), L->ff1_b = lin(b, (size_t)I, H);
        L->ff2_w = lin(b, (size_t)H * I, I), L->ff2_b = lin(b, (size_t)H, I);
        L->ln2_w = norm_w(b, (size_t)H), L->ln2_b = norm_b(b, (size_t)H);
    }
    m->lm_w = lin(b, (size_t)hp->vocab * H, H);
    m->lm_b = lin(b, (size_t)hp->vocab, H);
}

mp_status mp_model_create_random(const char *arch, uint64_t seed, mp_model **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_model_create_random: out is NULL");
    *out = NULL;
    if (!arch) return mp__fail(MP_ERR_INVALID_ARG, "mp_model_create_random: arch is NULL");
    mp__hparams hp;
    if (!arch_hparams(arch, &hp))
        return mp__fail(MP_ERR_INVALID_ARG,
                        "mp_model_create_random: unknown architecture \"%s\" (base, large, tiny, tiny-large)",
                        arch);
    mp_model *m = calloc(1, sizeof *m);
    if (!m) return mp__fail(MP_ERR_NOMEM, "mp_model_create_random: out of memory");
    m->hp = hp;
    m->layers = calloc((size_t)hp.n_layers, sizeof *m->layers);
    m->path = malloc(1);
    m->tokens = calloc((size_t)hp.vocab, sizeof *m->tokens);
    int ok = m->layers && m->path && m->tokens;
    if (ok) {
        m->path[0] = '\0';
        m->n_tokens = hp.vocab;
        for (int i = 0; i < hp.vocab && ok; i++) {
            size_t len = strlen(VOCAB32[i]) + 1;
            m->tokens[i] = malloc(len);
            if (m->tokens[i]) memcpy(m->tokens[i], VOCAB32[i], len);
            else ok = 0;
        }
    }
    builder b = {.m = m, .rng = seed};
    if (ok) {
        build_weights(&b);
        ok = !b.failed;
    }
    if (!ok) {
        mp__model_destroy(m);
        return mp__fail(MP_ERR_NOMEM, "mp_model_create_random: out of memory building \"%s\"", arch);
    }
    m->pad_id = 0;
    m->word_delim_id = 4;
    m->unk_id = 3;
    m->bos_id = 1;
    m->eos_id = 2;
    m->do_lower_case = 0;
    m->n_params = b.n_params;
    /* Every weight the engine reads is one fp32 tensor; only weight_g is folded away. */
    m->weight_bytes = (b.n_params - (uint64_t)hp.pos_kernel) * sizeof(float);
    snprintf(m->arch, sizeof m->arch, "%s", "Wav2Vec2ForCTC");
    snprintf(m->dtype, sizeof m->dtype, "%s", "F32");
    snprintf(m->random_arch, sizeof m->random_arch, "%s", arch);
    m->random_seed = seed;
    *out = m;
    return MP_OK;
}
