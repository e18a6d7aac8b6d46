/* test-forward.c - the wav2vec2 forward pass (src/w2v2.c) and random architectures (src/model-arch.c)
 * against a slow, straightforward reference written here independently (double precision, plain
 * loops, libm activations, whole-tensor buffers: no streaming, no blocking, no BLAS). */
#include "internal.h"
#include "engine/dnnl-conv.h"
#include "engine/kernels.h"
#include "test.h"

#include <pthread.h>
#include <stdint.h>

/* ---- inputs ------------------------------------------------------------------------------------ */

/* A deterministic test signal: two tones plus LCG noise, not zero-mean, so do_normalize matters. */
static float *make_signal(size_t n, uint32_t seed) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    MP_ASSERT(x != NULL);
    uint32_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        double noise = ((double)(s >> 8) / 16777216.0 - 0.5) * 0.2;
        x[i] = (float)(0.3 * sin(0.031 * (double)i) + 0.2 * sin(0.0047 * (double)i * (1 + (double)i / 40000.0)) +
                       noise + 0.05);
    }
    return x;
}

/* ---- reference ----------------------------------------------------------------------------------- */

static double ref_act(double x, mp__act a) {
    switch (a) {
    case MP_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case MP_ACT_GELU_NEW: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case MP_ACT_RELU: return x > 0 ? x : 0;
    case MP_ACT_SWISH: return x / (1.0 + exp(-x));
    }
    return x;
}

/* LayerNorm of each row of x [rows][n] in place. */
static void ref_ln(double *x, size_t rows, size_t n, const float *w, const float *b, double eps) {
    for (size_t r = 0; r < rows; r++) {
        double *p = x + r * n, mean = 0, var = 0;
        for (size_t c = 0; c < n; c++) mean += p[c];
        mean /= (double)n;
        for (size_t c = 0; c < n; c++) var += (p[c] - mean) * (p[c] - mean);
        var /= (double)n;
        for (size_t c = 0; c < n; c++) p[c] = (p[c] - mean) / sqrt(var + eps) * w[c] + b[c];
    }
}

/* out [rows][n_out] = in [rows][n_in] W^T + b, W [n_out][n_in]. */
static double *ref_linear(const double *in, size_t rows, size_t n_in, const float *w, const float *b, size_t n_out) {
    double *out = malloc(rows * n_out * sizeof *out);
    MP_ASSERT(out != NULL);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < n_out; o++) {
            double acc = b ? b[o] : 0.0;
            for (size_t i = 0; i < n_in; i++) acc += in[r * n_in + i] * w[o * n_in + i];
            out[r * n_out + o] = acc;
        }
    return out;
}

/* The conv feature extractor: returns [*T][C_last], whole tensors layer by layer. */
static double *ref_conv_stack(const mp_model *m, const float *pcm, size_t n, size_t *T) {
    const mp__hparams *hp = &m->hp;
    size_t t_in = n, c_in = 1;
    double *in = malloc((n ? n : 1) * sizeof *in);
    MP_ASSERT(in != NULL);
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++) mean += pcm[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) var += (pcm[i] - mean) * (pcm[i] - mean);
    var /= (double)n;
    for (size_t i = 0; i < n; i++) in[i] = hp->do_normalize ? (pcm[i] - mean) / sqrt(var + 1e-7) : pcm[i];
    for (int l = 0; l < hp->n_conv; l++) {
        const mp__conv_layer *cl = &m->conv[l];
        size_t k = (size_t)cl->kernel, s = (size_t)cl->stride, C = (size_t)cl->c_out;
        MP_ASSERT(t_in >= k);
        size_t t_out = (t_in - k) / s + 1;
        double *out = malloc(t_out * C * sizeof *out);
        MP_ASSERT(out != NULL);
        for (size_t t = 0; t < t_out; t++)
            for (size_t c = 0; c < C; c++) {
                double acc = cl->b ? cl->b[c] : 0.0;
                for (size_t j = 0; j < k; j++)
                    for (size_t i = 0; i < c_in; i++) acc += cl->w[(c * k + j) * c_in + i] * in[(t * s + j) * c_in + i];
                out[t * C + c] = acc;
            }
        if (hp->group_norm && l == 0) {
            for (size_t c = 0; c < C; c++) { /* GroupNorm(C, C): per channel over time */
                double mu = 0, v = 0;
                for (size_t t = 0; t < t_out; t++) mu += out[t * C + c];
                mu /= (double)t_out;
                for (size_t t = 0; t < t_out; t++) v += (out[t * C + c] - mu) * (out[t * C + c] - mu);
                v /= (double)t_out;
                for (size_t t = 0; t < t_out; t++)
                    out[t * C + c] = (out[t * C + c] - mu) / sqrt(v + 1e-5) * cl->norm_w[c] + cl->norm_b[c];
            }
        } else if (!hp->group_norm) {
            ref_ln(out, t_out, C, cl->norm_w, cl->norm_b, 1e-5);
        }
        for (size_t i = 0; i < t_out * C; i++) out[i] = ref_act(out[i], hp->feat_act);
        free(in);
        in = out, t_in = t_out, c_in = C;
    }
    *T = t_in;
    return in;
}

/* One transformer layer on x [T][H] in place. */
static void ref_layer(const mp_model *m, const mp__enc_layer *L, double *x, size_t T) {
    const mp__hparams *hp = &m->hp;
    const size_t H = (size_t)hp->hidden, nh = (size_t)hp->n_heads, dh = H / nh, I = (size_t)hp->intermediate;
    double *in = malloc(T * H * sizeof *in);
    MP_ASSERT(in != NULL);
    memcpy(in, x, T * H * sizeof *in);
    if (hp->stable_ln) ref_ln(in, T, H, L->ln1_w, L->ln1_b, hp->ln_eps);
    double *q = ref_linear(in, T, H, L->q_w, L->q_b, H);
    double *k = ref_linear(in, T, H, L->k_w, L->k_b, H);
    double *v = ref_linear(in, T, H, L->v_w, L->v_b, H);
    double *ctx = calloc(T * H, sizeof *ctx), *w = malloc(T * sizeof *w);
    MP_ASSERT(ctx && w);
    for (size_t h = 0; h < nh; h++)
        for (size_t i = 0; i < T; i++) {
            double mx = -INFINITY, sum = 0;
            for (size_t j = 0; j < T; j++) {
                double d = 0;
                for (size_t e = 0; e < dh; e++) d += q[i * H + h * dh + e] / sqrt((double)dh) * k[j * H + h * dh + e];
                w[j] = d;
                if (d > mx) mx = d;
            }
            for (size_t j = 0; j < T; j++) sum += (w[j] = exp(w[j] - mx));
            for (size_t j = 0; j < T; j++)
                for (size_t e = 0; e < dh; e++) ctx[i * H + h * dh + e] += w[j] / sum * v[j * H + h * dh + e];
        }
    double *att = ref_linear(ctx, T, H, L->o_w, L->o_b, H);
    for (size_t i = 0; i < T * H; i++) x[i] += att[i];
    if (!hp->stable_ln) ref_ln(x, T, H, L->ln1_w, L->ln1_b, hp->ln_eps);
    memcpy(in, x, T * H * sizeof *in);
    if (hp->stable_ln) ref_ln(in, T, H, L->ln2_w, L->ln2_b, hp->ln_eps);
    double *mid = ref_linear(in, T, H, L->ff1_w, L->ff1_b, I);
    for (size_t i = 0; i < T * I; i++) mid[i] = ref_act(mid[i], hp->hidden_act);
    double *ff = ref_linear(mid, T, I, L->ff2_w, L->ff2_b, H);
    for (size_t i = 0; i < T * H; i++) x[i] += ff[i];
    if (!hp->stable_ln) ref_ln(x, T, H, L->ln2_w, L->ln2_b, hp->ln_eps);
    free(in), free(q), free(k), free(v), free(ctx), free(w), free(att), free(mid), free(ff);
}

/* Whole network: logits [*T][V] as double. */
static double *ref_forward(const mp_model *m, const float *pcm, size_t n, size_t *T_out) {
    const mp__hparams *hp = &m->hp;
    size_t T;
    double *feat = ref_conv_stack(m, pcm, n, &T);
    const size_t C = (size_t)hp->conv_dim[hp->n_conv - 1], H = (size_t)hp->hidden;
    if (m->fp_ln_w) ref_ln(feat, T, C, m->fp_ln_w, m->fp_ln_b, hp->ln_eps);
    double *x = ref_linear(feat, T, C, m->fp_w, m->fp_b, H);
    /* positional conv: groups G, kernel K, padding K/2, last frame dropped when K is even */
    const size_t G = (size_t)hp->pos_groups, Hg = H / G, K = (size_t)hp->pos_kernel;
    double *pos = malloc(T * H * sizeof *pos);
    MP_ASSERT(pos != NULL);
    for (size_t t = 0; t < T; t++)
        for (size_t g = 0; g < G; g++)
            for (size_t o = 0; o < Hg; o++) {
                double acc = m->pos_b[g * Hg + o];
                for (size_t kk = 0; kk < K; kk++) {
                    long src = (long)t + (long)kk - (long)(K / 2);
                    if (src < 0 || src >= (long)T) continue;
                    for (size_t i = 0; i < Hg; i++)
                        acc += m->pos_w[((g * Hg + o) * K + kk) * Hg + i] * x[(size_t)src * H + g * Hg + i];
                }
                pos[t * H + g * Hg + o] = ref_act(acc, hp->feat_act);
            }
    for (size_t i = 0; i < T * H; i++) x[i] += pos[i];
    if (!hp->stable_ln) ref_ln(x, T, H, m->enc_ln_w, m->enc_ln_b, hp->ln_eps);
    for (int l = 0; l < hp->n_layers; l++) ref_layer(m, &m->layers[l], x, T);
    if (hp->stable_ln) ref_ln(x, T, H, m->enc_ln_w, m->enc_ln_b, hp->ln_eps);
    double *logits = ref_linear(x, T, H, m->lm_w, m->lm_b, (size_t)hp->vocab);
    free(feat), free(x), free(pos);
    *T_out = T;
    return logits;
}

/* ---- helpers ------------------------------------------------------------------------------------- */

static float *run(const mp_model *m, mp__state *st, const float *pcm, size_t n, size_t *T) {
    *T = mp__model_n_frames(m, n);
    float *lg = malloc((*T ? *T : 1) * (size_t)m->hp.vocab * sizeof *lg);
    MP_ASSERT(lg != NULL);
    MP_ASSERT_OK(mp__forward(m, st, pcm, n, lg));
    return lg;
}

static float *run_fresh(const mp_model *m, const float *pcm, size_t n, size_t *T) {
    mp__state *st = NULL;
    MP_ASSERT_OK(mp__state_create(m, &st));
    float *lg = run(m, st, pcm, n, T);
    mp__state_free(st);
    return lg;
}

static double max_abs_f(const float *a, size_t n) {
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fabs(a[i]) > mx ? fabs(a[i]) : mx;
    return mx;
}

/* max |a - b| relative to max(1, max |b|) */
static double rel_err(const float *a, const double *b, size_t n) {
    double mx = 1, d = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
    }
    return d / mx;
}

static double rel_err_f(const float *a, const float *b, size_t n) {
    double mx = 1, d = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
        if (fabs(a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    }
    return d / mx;
}

static void check_against_ref(const mp_model *m, size_t n, uint32_t seed) {
    float *pcm = make_signal(n, seed);
    size_t T, T_ref;
    float *lg = run_fresh(m, pcm, n, &T);
    double *ref = ref_forward(m, pcm, n, &T_ref);
    MP_ASSERT_EQ(T, T_ref);
    size_t nv = T * (size_t)m->hp.vocab;
    double e = rel_err(lg, ref, nv);
    if (!(e <= 1e-4)) MP_FAILF("n=%zu: engine vs reference: relative error %g > 1e-4", n, e);
    /* the logits must not be trivially equal (e.g. all zero): random weights give spread */
    MP_ASSERT(max_abs_f(lg, nv) > 1e-2);
    free(pcm), free(lg), free(ref);
}

/* ---- cases ----------------------------------------------------------------------------------------- */

static void test_frames(void) {
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 1, &m));
    MP_ASSERT_EQ(mp__model_stride(m), 320);
    const size_t rf = (size_t)mp__model_receptive_field(m);
    /* tiny: kernels 10,8,3,4 strides 5,4,4,4: r = ((4-1)*4 + 3 - 1)*4 + 8 - 1)*5 + 10 */
    MP_ASSERT_EQ(rf, 325);
    const size_t lens[] = {0, 1, rf - 1, rf, rf + 1, rf + 319, rf + 320, 16000, 16000 + 7, 3 * 16000 + 123};
    mp__state *st = NULL;
    MP_ASSERT_OK(mp__state_create(m, &st));
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        /* frames by the conv output-length formula, layer by layer */
        size_t t = n;
        for (int l = 0; l < m->hp.n_conv; l++)
            t = t < (size_t)m->hp.conv_kernel[l] ? 0 : (t - (size_t)m->hp.conv_kernel[l]) / (size_t)m->hp.conv_stride[l] + 1;
        MP_ASSERT_EQ(mp__model_n_frames(m, n), t);
        if (n >= rf) MP_ASSERT_EQ(t, (n - rf) / 320 + 1);
        else MP_ASSERT_EQ(t, 0);
        float *pcm = make_signal(n, 7);
        size_t nv = (t ? t : 1) * 32;
        float *lg = malloc(nv * sizeof *lg);
        for (size_t j = 0; j < nv; j++) lg[j] = 12345.0f;
        MP_ASSERT_OK(mp__forward(m, st, n ? pcm : NULL, n, lg));
        if (t == 0) {
            MP_ASSERT(lg[0] == 12345.0f); /* defined: nothing written */
        } else {
            for (size_t j = 0; j < nv; j++) MP_ASSERT(isfinite(lg[j]) && lg[j] != 12345.0f);
        }
        free(pcm), free(lg);
    }
    /* 0 frames also with a NULL logits pointer */
    float one = 0.1f;
    MP_ASSERT_OK(mp__forward(m, st, &one, 1, NULL));
    mp__state_free(st);
    mp_model_free(m);
}

static void test_ref_tiny(void) {
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 42, &m));
    check_against_ref(m, 16000, 1);          /* 1 s: 49 frames, 2 conv blocks */
    check_against_ref(m, 325, 2);            /* exactly one frame */
    check_against_ref(m, 5 * 16000 + 77, 3); /* 5 s, odd length */
    mp_model_free(m);
}

static void test_ref_tiny_large(void) {
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny-large", 43, &m));
    MP_ASSERT(m->hp.stable_ln && !m->hp.group_norm && m->hp.conv_bias && m->hp.pos_kernel % 2 == 1);
    check_against_ref(m, 16000, 4);
    check_against_ref(m, 2 * 16000 + 321, 5);
    mp_model_free(m);
}

/* > 512 frames: attention score blocks, several FFN row blocks and many conv blocks. */
static void test_ref_long(void) {
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 44, &m));
    check_against_ref(m, 12 * 16000, 6); /* 599 frames */
    mp_model_free(m);
}

static void test_ref_activations(void) {
    const mp__act acts[] = {MP_ACT_GELU_NEW, MP_ACT_RELU, MP_ACT_SWISH};
    for (int a = 0; a < 3; a++) {
        mp_model *m = NULL;
        MP_ASSERT_OK(mp_model_create_random(a == 1 ? "tiny-large" : "tiny", 50 + (uint64_t)a, &m));
        m->hp.hidden_act = acts[a];
        m->hp.feat_act = acts[(a + 1) % 3];
        m->hp.do_normalize = a != 2;
        m->hp.ln_eps = 1e-6f;
        if (a == 0) m->fp_ln_w = m->fp_ln_b = NULL; /* HuBERT without feat_proj_layer_norm */
        check_against_ref(m, 16000 + 999, 8);
        mp_model_free(m);
    }
}

/* Conv stacks of 1 and 2 layers (no ping-pong partner / no layer-1 sub-chunking): the tiny model
 * cut short, with a fresh feature projection sized for the new last conv layer. */
static void test_conv_depths(void) {
    for (int depth = 1; depth <= 2; depth++) {
        mp_model *m = NULL;
        MP_ASSERT_OK(mp_model_create_random("tiny", 60 + (uint64_t)depth, &m));
        m->hp.n_conv = depth;
        const size_t C = (size_t)m->hp.conv_dim[depth - 1], H = (size_t)m->hp.hidden;
        float *lnw = mp__model_alloc(m, C), *lnb = mp__model_alloc(m, C), *w = mp__model_alloc(m, H * C);
        MP_ASSERT(lnw && lnb && w);
        for (size_t i = 0; i < C; i++) lnw[i] = 1.0f + 0.01f * (float)i, lnb[i] = 0.02f * (float)(i % 3);
        for (size_t i = 0; i < H * C; i++) w[i] = 0.2f * sinf(0.7f * (float)i);
        m->fp_ln_w = lnw, m->fp_ln_b = lnb, m->fp_w = w;
        check_against_ref(m, depth == 1 ? 2000 : 6000, 20); /* 399 and 298 frames */
        mp_model_free(m);
    }
}

static void test_block_size(void) {
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 9, &m));
    const size_t n = 3 * 16000 + 5;
    float *pcm = make_signal(n, 10);
    size_t T;
    float *base = run_fresh(m, pcm, n, &T);
    const int blocks[] = {1, 2, 5, 17, 1000};
    for (int i = 0; i < 5; i++) {
        mp__state *st = NULL;
        MP_ASSERT_OK(mp__state_create(m, &st));
        mp__state_set_conv_block(st, blocks[i]);
        size_t T2;
        float *lg = run(m, st, pcm, n, &T2);
        MP_ASSERT_EQ(T2, T);
        double e = rel_err_f(lg, base, T * 32);
        if (!(e <= 1e-5)) MP_FAILF("conv block %d: relative difference %g", blocks[i], e);
        free(lg);
        mp__state_free(st);
    }
    free(base), free(pcm);
    mp_model_free(m);
}

static void test_state_reuse(void) {
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny-large", 11, &m));
    const size_t n_long = 6 * 16000, n_short = 16000 + 100;
    float *pl = make_signal(n_long, 12), *ps = make_signal(n_short, 13);
    size_t T_s, T_l, T_tmp;
    float *fresh = run_fresh(m, ps, n_short, &T_s);
    mp__state *st = NULL;
    MP_ASSERT_OK(mp__state_create(m, &st));
    float *lg_long = run(m, st, pl, n_long, &T_l);
    size_t bytes_long = mp__state_bytes(st);
    float *reused = run(m, st, ps, n_short, &T_tmp);
    MP_ASSERT_EQ(T_tmp, T_s);
    MP_ASSERT(memcmp(reused, fresh, T_s * 32 * sizeof(float)) == 0); /* bit-identical */
    MP_ASSERT_EQ(mp__state_bytes(st), bytes_long);                  /* no regrowth, no shrink */
    float *again = run(m, st, pl, n_long, &T_tmp);
    MP_ASSERT(memcmp(again, lg_long, T_l * 32 * sizeof(float)) == 0);
    free(pl), free(ps), free(fresh), free(lg_long), free(reused), free(again);
    mp__state_free(st);
    mp_model_free(m);
}

/* mp_model_scratch_bytes() predicts what a fresh state grows to, for both model styles. */
static void test_scratch_prediction(void) {
    const char *archs[] = {"tiny", "tiny-large"};
    for (int a = 0; a < 2; a++) {
        mp_model *m = NULL;
        MP_ASSERT_OK(mp_model_create_random(archs[a], 5, &m));
        const double secs[] = {0.5, 3.0, 8.0};
        for (int i = 0; i < 3; i++) {
            size_t n = (size_t)(secs[i] * 16000), T;
            float *pcm = make_signal(n, 3 + i);
            mp__state *st = NULL;
            MP_ASSERT_OK(mp__state_create(m, &st));
            float *lg = run(m, st, pcm, n, &T);
            MP_ASSERT_EQ(mp__state_bytes(st), mp_model_scratch_bytes(m, secs[i]));
            free(lg), free(pcm);
            mp__state_free(st);
        }
        MP_ASSERT_EQ(mp_model_scratch_bytes(m, 0.001), 0); /* shorter than one frame */
        MP_ASSERT(mp_model_scratch_bytes(m, 20.0) > mp_model_scratch_bytes(m, 8.0));
        mp_model_free(m);
    }
}

typedef struct job {
    const mp_model *m;
    const float *pcm;
    size_t n;
    float *out;
    size_t T;
} job;

static void *job_main(void *arg) {
    job *j = arg;
    mp__state *st = NULL;
    if (mp__state_create(j->m, &st) != MP_OK) return NULL;
    for (int rep = 0; rep < 3; rep++) { /* interleave with the other thread */
        free(j->out);
        j->out = run(j->m, st, j->pcm, j->n, &j->T);
    }
    mp__state_free(st);
    return NULL;
}

static void test_two_threads(void) {
    mp__blas_set_threads(1);
    MP_ASSERT_EQ(mp__blas_get_threads(), 1);
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 14, &m));
    const size_t n = 4 * 16000;
    float *pcm = make_signal(n, 15);
    size_t T;
    float *single = run_fresh(m, pcm, n, &T);
    job jobs[2] = {{.m = m, .pcm = pcm, .n = n}, {.m = m, .pcm = pcm, .n = n}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) MP_ASSERT_EQ(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) MP_ASSERT_EQ(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        MP_ASSERT(jobs[i].out != NULL);
        MP_ASSERT_EQ(jobs[i].T, T);
        MP_ASSERT(memcmp(jobs[i].out, single, T * 32 * sizeof(float)) == 0);
        free(jobs[i].out);
    }
    free(single), free(pcm);
    mp_model_free(m);
}

static void test_random_models(void) {
    mp_model *a = NULL, *b = NULL, *c = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 5, &a));
    MP_ASSERT_OK(mp_model_create_random("tiny", 5, &b));
    MP_ASSERT_OK(mp_model_create_random("tiny", 6, &c));
    MP_ASSERT(memcmp(a->layers[1].ff2_w, b->layers[1].ff2_w, 32 * 64 * sizeof(float)) == 0);
    MP_ASSERT(memcmp(a->layers[1].ff2_w, c->layers[1].ff2_w, 32 * 64 * sizeof(float)) != 0);
    MP_ASSERT_EQ(a->n_params, b->n_params);
    MP_ASSERT_EQ(a->weight_bytes, (a->n_params - 16) * 4);
    MP_ASSERT_STR_EQ(a->random_arch, "tiny");
    MP_ASSERT_EQ(a->random_seed, 5);
    MP_ASSERT_STR_EQ(a->arch, "Wav2Vec2ForCTC");
    MP_ASSERT_STR_EQ(a->dtype, "F32");
    MP_ASSERT_STR_EQ(a->path, "");
    MP_ASSERT_EQ(a->pad_id, 0);
    MP_ASSERT_EQ(a->word_delim_id, 4);
    MP_ASSERT_STR_EQ(mp_model_token(a, 4), "|");
    MP_ASSERT_STR_EQ(mp_model_token(a, 31), "Z");
    MP_ASSERT(mp_model_token(a, 32) == NULL);
    /* uniform(+-1/sqrt(fan_in)) weights: within the bound, and spread over it */
    const float bound = 1.0f / sqrtf(64.0f);
    double mx = max_abs_f(a->layers[1].ff2_w, 32 * 64);
    MP_ASSERT(mx <= bound && mx > 0.9 * bound);
    mp_model_free(a), mp_model_free(b), mp_model_free(c);

    mp_model *m = NULL;
    MP_ASSERT_STATUS(mp_model_create_random("huge", 1, &m), MP_ERR_INVALID_ARG);
    MP_ASSERT(m == NULL);
    MP_ASSERT_STATUS(mp_model_create_random(NULL, 1, &m), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_model_create_random("tiny", 1, NULL), MP_ERR_INVALID_ARG);
}

/* base: the real wav2vec2-base-960h shape (94,395,552 parameters, as transformers counts them). */
static void test_base_shape(void) {
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_create_random("base", 1, &m));
    mp_model_info info;
    MP_ASSERT_OK(mp_model_get_info(m, &info));
    MP_ASSERT_EQ(info.n_params, 94395552);
    MP_ASSERT_EQ(info.weight_bytes, (94395552 - 128) * 4);
    MP_ASSERT_EQ(info.frame_stride, 320);
    MP_ASSERT_EQ(info.receptive_field, 400);
    MP_ASSERT_EQ(mp__model_n_frames(m, 8 * 16000), 399);
    MP_ASSERT_EQ(mp__model_n_frames(m, 16000), 49);
    MP_ASSERT_EQ(info.hidden_size, 768);
    MP_ASSERT_EQ(info.n_layers, 12);
    MP_ASSERT_EQ(info.vocab_size, 32);
    MP_ASSERT(info.group_norm == 1 && info.stable_layer_norm == 0);
    MP_ASSERT(m->conv[1].c_in == 512 && m->conv[1].kernel == 3 && m->conv[1].b == NULL);
    MP_ASSERT(m->conv[0].norm_w != NULL && m->conv[1].norm_w == NULL);
    mp_model_free(m);
}

static void test_errors(void) {
    mp_model *m = NULL, *other = NULL;
    MP_ASSERT_OK(mp_model_create_random("tiny", 1, &m));
    MP_ASSERT_OK(mp_model_create_random("tiny-large", 1, &other));
    mp__state *st = NULL;
    MP_ASSERT_STATUS(mp__state_create(m, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp__state_create(NULL, &st), MP_ERR_INVALID_ARG);
    MP_ASSERT(st == NULL);
    MP_ASSERT_OK(mp__state_create(m, &st));
    float pcm[1000] = {0}, lg[32 * 4];
    MP_ASSERT_STATUS(mp__forward(m, st, NULL, 1000, lg), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp__forward(m, st, pcm, 1000, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp__forward(NULL, st, pcm, 1000, lg), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp__forward(m, NULL, pcm, 1000, lg), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp__forward(other, st, pcm, 1000, lg), MP_ERR_MISUSE);
    /* silence (all zero) stays finite: variance 0 plus 1e-7 */
    MP_ASSERT_OK(mp__forward(m, st, pcm, 1000, lg));
    for (size_t i = 0; i < mp__model_n_frames(m, 1000) * 32; i++) MP_ASSERT(isfinite(lg[i]));
    MP_ASSERT(mp__state_bytes(st) > 0);
    MP_ASSERT_EQ(mp__state_bytes(NULL), 0);
    mp__state_free(st);
    mp__state_free(NULL);
    mp_model_free(m), mp_model_free(other);
}

/* The prepack cases' precondition: oneDNN, an AVX2 + FMA CPU, no TSan (the library avoids oneDNN
 * there); then oneDNN is forced to AVX2 (before its first use in this process) and one BLAS thread. */
static void onednn_avx2_or_skip(void) {
    if (!mp__have_onednn()) MP_SKIP("built without oneDNN");
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) MP_SKIP("no AVX2 + FMA");
#ifdef __SANITIZE_THREAD__
    MP_SKIP("no oneDNN under TSan");
#endif
    setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
    mp__blas_set_threads(1);
}

/* fp32 linears through oneDNN's AVX2 1x1 convolutions over pre-packed weights (prepack.c), forced
 * to AVX2 (set before oneDNN's first use in this process): against the double-precision reference,
 * at lengths whose frame counts exercise every row tile (512, multiples of 16, below 16) and more
 * than one feed-forward row block. */
static void test_prepack_avx2(void) {
    onednn_avx2_or_skip();
    const char *archs[] = {"tiny", "tiny-large"};
    for (int a = 0; a < 2; a++) {
        mp_model *m = NULL;
        MP_ASSERT_OK(mp_model_create_random(archs[a], 50 + a, &m));
        mp__model_prepack(m);
        MP_ASSERT(m->packed != NULL);
        check_against_ref(m, 16000 + 4321, 6);     /* 63 frames */
        check_against_ref(m, 13 * 16000 + 99, 7);  /* 650 frames: a 512-row tile, 128, 10 */
        mp__model_prepack_free(m);
        MP_ASSERT(m->packed == NULL);
        mp_model_free(m);
    }
}

/* Big models' packed weights replace their plain ones (prepack.c "Memory"), forced here on tiny
 * models: the same kernels as packed-beside, so the same logits bit for bit, and those are checked
 * against the double-precision reference above; the plain linears are gone (the conv taps stay),
 * quantizing such a model is refused with a reason, and it still runs after the refusal. */
static void test_prepack_replace(void) {
    onednn_avx2_or_skip();
    const char *archs[] = {"tiny", "tiny-large"};
    for (int a = 0; a < 2; a++) {
        mp_model *beside = NULL, *in_place = NULL;
        MP_ASSERT_OK(mp_model_create_random(archs[a], 60 + a, &beside));
        MP_ASSERT_OK(mp_model_create_random(archs[a], 60 + a, &in_place));
        MP_ASSERT_OK(mp__model_prepack(beside));
        mp__prepack_set_replace_above(1);
        MP_ASSERT_OK(mp__model_prepack(in_place));
        mp__prepack_set_replace_above(0);
        MP_ASSERT(beside->packed && !beside->packed->replaced && beside->layers[0].q_w);
        MP_ASSERT(in_place->packed && in_place->packed->replaced);
        MP_ASSERT(in_place->fp_w == NULL && in_place->conv[1].w != NULL);
        for (int i = 0; i < in_place->hp.n_layers; i++) {
            const mp__enc_layer *E = &in_place->layers[i];
            MP_ASSERT(!E->q_w && !E->k_w && !E->v_w && !E->o_w && !E->ff1_w && !E->ff2_w);
        }
        const size_t n = 2 * 16000 + 777;
        float *pcm = make_signal(n, 61);
        size_t T1 = 0, T2 = 0, T3 = 0;
        float *l1 = run_fresh(beside, pcm, n, &T1), *l2 = run_fresh(in_place, pcm, n, &T2);
        MP_ASSERT_EQ(T1, T2);
        const size_t nv = T1 * (size_t)beside->hp.vocab;
        MP_ASSERT(max_abs_f(l1, nv) > 1e-2);
        MP_ASSERT(memcmp(l1, l2, nv * sizeof *l1) == 0);
        MP_ASSERT_EQ(mp__model_quantize(in_place, -1), MP_ERR_INVALID_ARG);
        MP_ASSERT(strstr(mp_last_error(), "released") != NULL);
        float *l3 = run_fresh(in_place, pcm, n, &T3);
        MP_ASSERT(T3 == T1 && memcmp(l1, l3, nv * sizeof *l1) == 0);
        free(pcm), free(l1), free(l2), free(l3);
        mp_model_free(beside), mp_model_free(in_place);
    }
}

/* wav2vec2-base's linears packed in place of its plain weights, on this CPU as it is (AVX2: the
 * same kernel as prepack_avx2; AVX-512: brgconv_1x1, which qualifies for base's shapes only):
 * logits against the plain GEMM path of an identical model within the 1e-4 guard, at lengths
 * of 65 frames (a 64-row tile + 1) and 514 (a 512-row tile + 2). */
static void test_prepack_base(void) {
    if (!mp__have_onednn()) MP_SKIP("built without oneDNN");
#ifdef __SANITIZE_THREAD__
    MP_SKIP("no oneDNN under TSan");
#endif
    mp__blas_set_threads(1);
    mp_model *plain = NULL, *packed = NULL;
    MP_ASSERT_OK(mp_model_create_random("base", 3, &plain));
    MP_ASSERT_OK(mp_model_create_random("base", 3, &packed));
    MP_ASSERT_OK(mp__model_prepack(packed));
    if (!packed->packed) {
        mp_model_free(plain), mp_model_free(packed);
        MP_SKIP("no oneDNN 1x1 kernel for base's shapes on this CPU");
    }
    MP_ASSERT(packed->packed->replaced && packed->layers[5].ff1_w == NULL);
    const size_t lens[] = {65 * 320 + 80, 514 * 320 + 80};
    for (int i = 0; i < 2; i++) {
        float *pcm = make_signal(lens[i], 80 + (uint32_t)i);
        size_t T1 = 0, T2 = 0;
        float *a = run_fresh(plain, pcm, lens[i], &T1), *b = run_fresh(packed, pcm, lens[i], &T2);
        MP_ASSERT_EQ(T1, T2);
        const size_t nv = T1 * (size_t)plain->hp.vocab;
        MP_ASSERT(max_abs_f(a, nv) > 1e-2);
        const double e = rel_err_f(b, a, nv);
        if (!(e <= 1e-4)) MP_FAILF("%zu frames: packed vs plain: relative error %g > 1e-4", T1, e);
        free(pcm), free(a), free(b);
    }
    mp_model_free(plain), mp_model_free(packed);
}

/* dnnl-conv.c's row tiles on this CPU as it is (on AVX-512, brgconv_1x1, whose blocking changes
 * with the row count and the team: DESIGN, Which kernel): base's shapes (its linears, 768 x 768
 * and 768 x 512, and a conv layer's first taps, 512 x 1024), packed with a team of two threads
 * and of one, run at every row count a tile can have and at lengths split into several tiles,
 * with teams of one and two: on sampled rows the product of a double-precision loop (+ bias,
 * within 1e-4 of the largest output), and no tile ever run by oneDNN's reference loop. */
static void dconv_check(const float *w, const float *bias, int n, int k, const float *in, size_t M, const float *out) {
    const size_t rows[] = {0, M / 2, M - 1};
    for (int i = 0; i < 3; i++) {
        const size_t r = rows[i];
        double e = 0, mx = 1;
        for (int j = 0; j < n; j++) {
            double acc = bias[j];
            for (int c = 0; c < k; c++) acc += (double)in[r * (size_t)k + (size_t)c] * w[(size_t)j * (size_t)k + (size_t)c];
            if (fabs(acc) > mx) mx = fabs(acc);
            if (fabs(acc - out[r * (size_t)n + (size_t)j]) > e) e = fabs(acc - out[r * (size_t)n + (size_t)j]);
        }
        if (!(e / mx <= 1e-4)) MP_FAILF("%d x %d, %zu rows: row %zu off by %g (relative)", n, k, M, r, e / mx);
    }
}

static void test_dconv_tiles(void) {
    if (!mp__have_onednn()) MP_SKIP("built without oneDNN");
#ifdef __SANITIZE_THREAD__
    MP_SKIP("no oneDNN under TSan");
#endif
    const int shapes[][2] = {{768, 768}, {768, 512}, {512, 1024}};
    enum { MMAX = 1100 };
    float *w = make_signal(768 * 1024, 5), *bias = make_signal(768, 6), *in = make_signal((size_t)MMAX * 1024, 7);
    float *out = malloc((size_t)MMAX * 768 * sizeof *out);
    MP_ASSERT(out != NULL);
    size_t lens[64], nl = 0;
    for (size_t r = 1; r <= 16; r++) lens[nl++] = r;
    for (size_t r = 32; r <= 512; r += 16) lens[nl++] = r;
    lens[nl++] = 399, lens[nl++] = 513, lens[nl++] = MMAX; /* an 8 s clip; 512 + 1; 2 x 512 + 76 */
    const size_t slow0 = mp__dconv_slow_tiles();
    int packed = 0;
    for (int pt = 2; pt >= 1; pt--)
        for (int s = 0; s < 3; s++) {
            const int n = shapes[s][0], k = shapes[s][1];
            void *P = NULL, *md = NULL;
            mp__blas_set_threads(pt);
            mp__gemm_thread_sync();
            if (!mp__dconv_pack(MP__DCONV_F32, w, n, k, (size_t)k, &P, &md)) continue;
            packed++;
            for (int rt = 1; rt <= 2; rt++) {
                mp__blas_set_threads(rt);
                mp__gemm_thread_sync();
                for (size_t i = 0; i < nl; i++) {
                    mp__dconv_run(MP__DCONV_F32, P, md, n, k, lens[i], in, bias, 0, 0, out, (size_t)n);
                    dconv_check(w, bias, n, k, in, lens[i], out);
                }
            }
            free(P), free(md);
        }
    mp__blas_set_threads(1);
    mp__gemm_thread_sync();
    free(w), free(bias), free(in), free(out);
    MP_ASSERT_EQ(mp__dconv_slow_tiles() - slow0, (size_t)0);
    if (!packed) MP_SKIP("no oneDNN 1x1 kernel for base's shapes on this CPU");
}

/* mp__forward_stats: with the statistics of its own input it is mp__forward (up to float
 * rounding: sums in one pass instead of two); with those of a longer span it normalizes with
 * them (GroupNorm models and LayerNorm ones, whose only global statistic is do_normalize's). */
static void test_input_stats(void) {
    const char *arch[] = {"tiny", "tiny-large"};
    for (int a = 0; a < 2; a++) {
        mp_model *m = NULL;
        MP_ASSERT_OK(mp_model_create_random(arch[a], 70 + (uint64_t)a, &m));
        mp__state *st = NULL;
        MP_ASSERT_OK(mp__state_create(m, &st));
        const size_t n = 3 * 16000, w0 = 16000, wn = 16000, k = (size_t)m->conv[0].kernel;
        const size_t str = (size_t)m->conv[0].stride;
        float *x = make_signal(n, 90 + (uint32_t)a);
        for (size_t i = 0; i < w0; i++) x[i] *= 0.1f; /* a quiet first second: its statistics differ */
        double p1[16] = {0}, p2[256] = {0};
        MP_ASSERT(k <= 16);
        size_t T = 0;
        float *ref = run(m, st, x + w0, wn, &T);
        float *lg = malloc(T * (size_t)m->hp.vocab * sizeof *lg);
        MP_ASSERT(lg);
        mp__input_stats own = {.p1 = p1, .p2 = p2};
        mp__input_stats_add(m, &own, x + w0, wn, (wn - k) / str + 1);
        MP_ASSERT_OK(mp__forward_stats(m, st, x + w0, wn, &own, lg));
        double d = 0, mx = max_abs_f(ref, T * (size_t)m->hp.vocab);
        for (size_t i = 0; i < T * (size_t)m->hp.vocab; i++) d = fmax(d, fabs(lg[i] - ref[i]));
        MP_ASSERT(d <= 1e-4 * fmax(1.0, mx));
        /* the whole signal's statistics, added in two pieces at a patch boundary */
        double q1[16] = {0}, q2[256] = {0};
        mp__input_stats all = {.p1 = q1, .p2 = q2};
        size_t cut = 1000 * str;
        mp__input_stats_add(m, &all, x, cut, cut / str);
        mp__input_stats_add(m, &all, x + cut, n - cut, (n - cut - k) / str + 1);
        MP_ASSERT_NEAR(all.rows, (double)((n - k) / str + 1), 0);
        MP_ASSERT_OK(mp__forward_stats(m, st, x + w0, wn, &all, lg));
        d = 0;
        for (size_t i = 0; i < T * (size_t)m->hp.vocab; i++) d = fmax(d, fabs(lg[i] - ref[i]));
        MP_ASSERT(d > 1e-3 * fmax(1.0, mx));
        mp__input_stats empty = {.p1 = q1, .p2 = q2};
        MP_ASSERT_STATUS(mp__forward_stats(m, st, x + w0, wn, &empty, lg), MP_ERR_INVALID_ARG);
        MP_ASSERT_OK(mp__forward_stats(m, st, x + w0, wn, NULL, lg)); /* NULL: mp__forward */
        for (size_t i = 0; i < T * (size_t)m->hp.vocab; i++) MP_ASSERT(lg[i] == ref[i]);
        free(lg);
        free(ref);
        free(x);
        mp__state_free(st);
        mp_model_free(m);
    }
}

static const mp_test_case cases[] = {
    {"input_stats", test_input_stats},
    {"frames", test_frames},
    {"ref_tiny", test_ref_tiny},
    {"ref_tiny_large", test_ref_tiny_large},
    {"ref_long", test_ref_long},
    {"ref_activations", test_ref_activations},
    {"conv_depths", test_conv_depths},
    {"block_size", test_block_size},
    {"state_reuse", test_state_reuse},
    {"two_threads", test_two_threads},
    {"random_models", test_random_models},
    {"base_shape", test_base_shape},
    {"prepack_avx2", test_prepack_avx2},
    {"prepack_replace", test_prepack_replace},
    {"prepack_base", test_prepack_base},
    {"dconv_tiles", test_dconv_tiles},
    {"errors", test_errors},
    {"scratch_prediction", test_scratch_prediction},
};

MP_TEST_MAIN(cases)
