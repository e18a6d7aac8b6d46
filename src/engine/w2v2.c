/*
 * w2v2.c - the wav2vec2 forward pass (HuggingFace Wav2Vec2ForCTC semantics: modeling_wav2vec2.py)
 * and the per-worker scratch it runs in.
 *
 * DESIGN
 *   Data layout. Activations are time-major row-major [T][C]; linear weights stay [out][in] and
 *   enter cblas_sgemm as B^T. Conv weights are [c_out][k][c_in], so the k input rows under one
 *   output frame (t*stride .. t*stride+k-1) are k*c_in consecutive floats: the im2col patch
 *   matrix of a conv layer is the input itself read with row stride stride*c_in. cblas rejects
 *   lda < K, so a kernel longer than its stride runs as ceil(k/stride) GEMMs over groups of at
 *   most `stride` kernel positions, accumulating (beta = 1): no patch copy at all.
 *
 *   Memory. Everything lives in one arena per state (mp__state), sized by the longest input seen
 *   and reused; nothing is allocated per op. The arena holds x [T][H] (the residual stream) and
 *   one region R that each phase reuses: conv buffers, then pos-conv buffers, then per layer
 *   attention (q, k, v [T][H] and a [rows][T] score block) and feed-forward row blocks.
 *   - The conv feature extractor streams: blocks of `conv_block` output frames, each computed
 *     from the input rows its receptive field needs (row-range arithmetic layer by layer), so its
 *     buffers do not depend on the input length. Layer 1 consumes layer 0 in sub-chunks of
 *     L1_CHUNK rows, because layer 0's output is the widest (T0 = 64 T rows of 512 channels).
 *     Layers alternate between two ping-pong buffers. Rows at block edges are computed twice
 *     (k > stride overlap): about 1% extra conv work.
 *   - GroupNorm on layer 0 needs per-channel statistics over the whole time axis. They follow
 *     from the mean and covariance of layer 0's k-sample input patches (conv0_prepare), so
 *     layer 0 runs once, as a direct product with the norm folded into its weights.
 *   - The feed-forward block runs in blocks of up to 512 rows x 768 intermediate columns (fp32),
 *     so the [T][I] intermediate never exists whole while an 8 s input reads each FFN weight
 *     once;
 *     attention writes each head's context over that head's query columns (no separate buffer).
 *   For base and 8 s (T = 399) the state is about 4.6 MB (bench-clip prints it); attention (q, k,
 *   v and a 256 KB score block) is the largest phase.
 *
 *   Speed. The FLOPs are in mp__gemm_nt/nn (kernels.c: oneDNN, or OpenBLAS). The elementwise
 *   work (GELU on ~40 M values for an 8 s clip, softmax exps, layer norms) is in kernels.c,
 *   vectorized for AVX-512 and AVX2 and fused so each GEMM output is read once.
 *
 *   int8 (m->quant, quant.c). The same plan plus one region for quantized activations (qa, with
 *   per-row scales qs and zero points qz), sized for the largest quantized operand: T x H for
 *   q/k/v/out, FFN row blocks, and the u8 im2col patches of the conv layers ([rows][kernel *
 *   c_in]) and of the positional conv (POS_ROWS x [K * H/G]): each output frame's patch gets its
 *   own scale, so overlapping patches are copied.
 *
 *   Determinism. Every blocking parameter derives from the input length and conv_block only,
 *   never from the arena capacity, so a state gives bit-identical results whatever ran before.
 */
#include "internal.h"
#include "kernels.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    CONV_BLOCK_DEFAULT = 32, /* final conv frames per streaming block, at least (make_plan) */
    CONV_BLOCK_MAX = 256,
    L1_CHUNK = 128,          /* conv layer-1 output rows per sub-chunk of layer 0 */
    POS_ROWS = 64,           /* pos-conv im2col rows per block (groups of a width BLAS must run; int8) */
    SCORE_FLOATS = 1 << 16,  /* attention score block limit (256 KB): query rows = this / T */
    FFN_ROWS_MIN = 64,
    FFN_ROWS_MAX = 512,      /* feed-forward row block */
    FFN_COLS = MP__FFN_COLS  /* fp32 feed-forward: intermediate columns per pass */
};

struct mp__state {
    mp__hparams hp;          /* of the model it was created for; forward checks the match */
    int conv_block;
    float *arena;
    size_t arena_floats;
    double *gn_m1, *gn_cov;  /* [k0], [k0][k0]: mean and covariance of conv layer 0's input patches */
    float *c0_wt, *c0_b;     /* [k0][C0], [C0]: conv layer 0 taps-major, GroupNorm folded in */
};

/* Bytes of the state's fixed side buffers (beside the arena), from the model's shape. */
static size_t side_bytes(const mp__hparams *hp) {
    const size_t k = (size_t)hp->conv_kernel[0], C = (size_t)hp->conv_dim[0];
    return k * (k + 1) * sizeof(double) + (k + 1) * C * sizeof(float);
}

/* ---- plan: every size and offset of one forward call, from the input length alone ---------- */

typedef struct plan {
    size_t T;                        /* output frames */
    size_t n_rows0;                  /* conv layer-0 output rows over the whole input */
    size_t blk_rows[MP_MAX_CONV];    /* output rows of each conv layer for one block, at most */
    size_t block;                    /* final frames per block */
    size_t p1;                       /* layer-1 rows per sub-chunk */
    size_t l0_cap;                   /* rows of the layer-0 buffer */
    size_t rq, rf;                   /* rows per attention score block, FFN block */
    size_t fc;                       /* FFN intermediate columns per pass (fp32; all of them in int8) */
    /* offsets (floats) into the arena */
    size_t x, ca, cb, c0;            /* conv: ping, pong, layer-0 buffer */
    size_t pp, pg, pw;               /* pos conv: output, group-major padded input, weight^T or patch */
    size_t q, k, v, a, s;            /* attention */
    size_t fa, fh, fo;               /* feed-forward */
    size_t qa, qs, qz;               /* int8: quantized activations (bytes), their scales, zero points */
    size_t total;
} plan;

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }
static size_t zmin(size_t a, size_t b) { return a < b ? a : b; }

/* Conv phase sizes for blocks of `block` final frames: p->block, blk_rows, p1, l0_cap, and the
 * ping/pong/layer-0 buffer floats; *qbytes and *qrows get its largest int8 im2col operand. */
static void conv_phase(const mp__hparams *hp, size_t block, plan *p, size_t buf[3], size_t *qbytes,
                       size_t *qrows) {
    const size_t nc = (size_t)hp->n_conv;
    p->block = block;
    p->blk_rows[nc - 1] = block;
    for (size_t l = nc - 1; l >= 1; l--)
        p->blk_rows[l - 1] = (p->blk_rows[l] - 1) * (size_t)hp->conv_stride[l] + (size_t)hp->conv_kernel[l];
    size_t ca = 0, cb = 0;
    p->p1 = p->l0_cap = 0;
    if (nc == 1) {
        ca = p->blk_rows[0] * (size_t)hp->conv_dim[0];
    } else {
        for (size_t l = 1; l < nc; l++) {
            size_t f = p->blk_rows[l] * (size_t)hp->conv_dim[l];
            if (l % 2) ca = zmax(ca, f);
            else cb = zmax(cb, f);
        }
        p->p1 = zmin(L1_CHUNK, p->blk_rows[1]);
        p->l0_cap = (p->p1 - 1) * (size_t)hp->conv_stride[1] + (size_t)hp->conv_kernel[1];
    }
    buf[0] = up16(ca), buf[1] = up16(cb), buf[2] = up16(p->l0_cap * (size_t)hp->conv_dim[0]);
    *qbytes = 0, *qrows = block;
    for (size_t l = 1; l < nc; l++) { /* a conv layer's u8 im2col patches: [rows][k * c_in] */
        size_t nr = l == 1 ? p->p1 : p->blk_rows[l];
        *qbytes = zmax(*qbytes, nr * (size_t)hp->conv_kernel[l] * (size_t)hp->conv_dim[l - 1]);
        *qrows = zmax(*qrows, nr);
    }
}

/* conv_block <= 0: the largest block (CONV_BLOCK_DEFAULT doubled, up to CONV_BLOCK_MAX) whose
 * conv phase fits in the scratch the later phases need anyway, so bigger blocks cost no memory:
 * fewer, taller conv GEMMs (the last layers' ran 32 rows at a time) and less recomputation at
 * block edges. The embedded model takes 128 at 8-15 s; base stays at 32 up to ~12 s (64 at 15-20 s). */
static void make_plan(const mp__hparams *hp, size_t n, size_t T, int conv_block, int quant, plan *p) {
    memset(p, 0, sizeof *p);
    const size_t H = (size_t)hp->hidden, NI = (size_t)hp->intermediate, nc = (size_t)hp->n_conv;
    const size_t K = (size_t)hp->pos_kernel, Hg = H / (size_t)hp->pos_groups;
    p->T = T;
    p->n_rows0 = (n - (size_t)hp->conv_kernel[0]) / (size_t)hp->conv_stride[0] + 1;

    p->rq = T * T <= SCORE_FLOATS ? T : zmin(T, zmax(32, SCORE_FLOATS / T));
    if (quant) {
        /* int8 quantizes each intermediate row whole (one scale per row): row blocks sized to
         * the attention phase's scratch */
        size_t attn = up16(T * H) * (hp->stable_ln ? 4 : 3) + up16(p->rq * T);
        p->rf = zmin(T, zmin(FFN_ROWS_MAX, zmax(FFN_ROWS_MIN, attn / (2 * H + NI))));
        p->fc = NI;
    } else {
        /* fp32: up to FFN_ROWS_MAX rows by FFN_COLS intermediate columns at a time, so each
         * feed-forward weight (2 x 9.4 MB per layer for base) streams from memory once per input
         * up to 512 frames while the intermediate block stays small: 5-7% less CPU per 8 s clip
         * on AVX2 than 234-row blocks over all 3072 columns (which read the weights twice), with
         * no more scratch. (512 rows x 3072 columns gained more but cost 3.4 MB per worker.) */
        p->rf = zmin(T, FFN_ROWS_MAX);
        p->fc = zmin(NI, FFN_COLS);
    }

    p->x = 0;
    size_t r = up16(T * H), end = r;
    /* pos conv phase */
    p->pp = r, p->pg = p->pp + up16(T * H), p->pw = p->pg + up16((T + K) * Hg); /* one group at a time */
    end = zmax(end, p->pw + up16(zmax(Hg, (size_t)POS_ROWS) * K * Hg));
    /* attention phase */
    p->q = r, p->k = p->q + up16(T * H), p->v = p->k + up16(T * H);
    p->a = p->v + up16(T * H);
    p->s = p->a + (hp->stable_ln ? up16(T * H) : 0);
    end = zmax(end, p->s + up16(p->rq * T) + up16(p->rq));
    /* feed-forward phase */
    p->fa = r, p->fh = p->fa + up16(p->rf * H), p->fo = p->fh + up16(p->rf * p->fc);
    end = zmax(end, p->fo + up16(p->rf * H));
    /* conv phase: its block (see above), then its buffers */
    const size_t Cl = (size_t)hp->conv_dim[nc - 1];
    size_t bytes = zmax(T * zmax(H, Cl), p->rf * zmax(H, NI)), rows = zmax(T, p->rf), buf[3], qb, qr;
    if (conv_block > 0) {
        conv_phase(hp, zmin((size_t)conv_block, T), p, buf, &qb, &qr);
    } else {
        size_t blk = CONV_BLOCK_DEFAULT;
        while (blk < T && 2 * blk <= CONV_BLOCK_MAX) {
            conv_phase(hp, zmin(2 * blk, T), p, buf, &qb, &qr);
            if (r + buf[0] + buf[1] + buf[2] > end || (quant && (qb > bytes || qr > rows))) break;
            blk *= 2;
        }
        conv_phase(hp, zmin(blk, T), p, buf, &qb, &qr);
    }
    p->ca = r, p->cb = p->ca + buf[0], p->c0 = p->cb + buf[1];
    end = zmax(end, p->c0 + buf[2]);
    if (quant) {
        /* int8 (quant.c): beside every phase, the largest quantized operand of any product (the
         * positional conv's: POS_ROWS patches of K * Hg) */
        bytes = zmax(zmax(bytes, qb), (size_t)POS_ROWS * K * Hg), rows = zmax(zmax(rows, qr), (size_t)POS_ROWS);
        p->qa = end, p->qs = p->qa + up16(bytes / sizeof(float) + 1), p->qz = p->qs + up16(rows);
        end = p->qz + up16(rows);
    }
    p->total = end;
}

/* ---- state ------------------------------------------------------------------------------------ */

mp_status mp__state_create(const mp_model *m, mp__state **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp__state_create: out is NULL");
    *out = NULL;
    if (!m) return mp__fail(MP_ERR_INVALID_ARG, "mp__state_create: model is NULL");
    const mp__hparams *hp = &m->hp;
    if (hp->n_conv < 1 || hp->n_conv > MP_MAX_CONV || hp->hidden < 1 || hp->n_heads < 1 ||
        hp->hidden % hp->n_heads || hp->pos_groups < 1 || hp->hidden % hp->pos_groups || hp->pos_kernel < 1 ||
        hp->intermediate < 1 || hp->vocab < 1)
        return mp__fail(MP_ERR_INVALID_ARG, "mp__state_create: model hyper-parameters are inconsistent");
    for (int l = 0; l < hp->n_conv; l++)
        if (hp->conv_dim[l] < 1 || hp->conv_kernel[l] < 1 || hp->conv_stride[l] < 1)
            return mp__fail(MP_ERR_INVALID_ARG, "mp__state_create: conv layer %d has a zero size", l);
    mp__state *st = calloc(1, sizeof *st);
    if (!st) return mp__fail(MP_ERR_NOMEM, "mp__state_create: out of memory");
    st->hp = m->hp;
    st->conv_block = 0; /* chosen per input length (make_plan) */
    const size_t k0 = (size_t)m->hp.conv_kernel[0], c0 = (size_t)m->hp.conv_dim[0];
    st->gn_m1 = malloc(k0 * sizeof *st->gn_m1);
    st->gn_cov = malloc(k0 * k0 * sizeof *st->gn_cov);
    st->c0_wt = malloc(k0 * c0 * sizeof *st->c0_wt);
    st->c0_b = malloc(c0 * sizeof *st->c0_b);
    if (!st->gn_m1 || !st->gn_cov || !st->c0_wt || !st->c0_b) {
        mp__state_free(st);
        return mp__fail(MP_ERR_NOMEM, "mp__state_create: out of memory");
    }
    *out = st;
    return MP_OK;
}

void mp__state_free(mp__state *st) {
    if (!st) return;
    free(st->arena);
    free(st->gn_m1);
    free(st->gn_cov);
    free(st->c0_wt);
    free(st->c0_b);
    free(st);
}

size_t mp__state_bytes(const mp__state *st) {
    if (!st) return 0;
    return sizeof *st + st->arena_floats * sizeof(float) + side_bytes(&st->hp);
}

size_t mp_model_scratch_bytes(const mp_model *m, double seconds) {
    if (!m || !(seconds > 0)) return 0;
    size_t n = (size_t)(seconds * (m->hp.sample_rate > 0 ? m->hp.sample_rate : 16000));
    size_t T = mp__model_n_frames(m, n);
    if (T == 0) return 0;
    plan p;
    make_plan(&m->hp, n, T, 0, m->quant != NULL, &p);
    /* exactly what mp__state_bytes reports after a forward of this length on a fresh state */
    return sizeof(mp__state) + p.total * sizeof(float) + side_bytes(&m->hp);
}

void mp__state_set_conv_block(mp__state *st, int frames) {
    if (st) st->conv_block = frames > 0 ? frames : 0;
}

static mp_status state_reserve(mp__state *st, size_t floats) {
    if (floats <= st->arena_floats) return MP_OK;
    free(st->arena);
    st->arena = NULL;
    st->arena_floats = 0;
    if (floats > SIZE_MAX / sizeof(float) - 64) return mp__fail(MP_ERR_NOMEM, "mp__forward: input too long");
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    st->arena = aligned_alloc(64, bytes);
    if (!st->arena) return mp__fail(MP_ERR_NOMEM, "mp__forward: cannot allocate %zu bytes of scratch", bytes);
    st->arena_floats = floats;
    return MP_OK;
}

/* ---- the conv feature extractor ---------------------------------------------------------------- */

typedef struct fwd {
    const mp_model *m;
    mp__state *st;
    const plan *p;
    const float *pcm;
    float mean, inv;         /* do_normalize: x' = (x - mean) * inv */
    const mp__input_stats *stats; /* normalization statistics from a longer span, or NULL */
    float *arena;
    const mp__qmodel *q;     /* int8 weights, or NULL */
    mp__qscratch qs;         /* int8 activations (arena regions qa, qs, qz) */
} fwd;

/* Conv layer 0 output rows [a, b) into dst [b-a][C0], straight from the waveform (normalized on
 * the way): with GroupNorm finished (folded into c0_wt/c0_b by conv0_prepare, activation
 * applied), else bias added only (conv_post applies the LayerNorm and activation). */
static void conv0_rows(const fwd *f, size_t a, size_t b, float *dst) {
    const mp__conv_layer *cl = &f->m->conv[0];
    const int act = f->m->hp.group_norm ? (int)f->m->hp.feat_act : MP__ACT_NONE;
    mp__k_conv0(f->pcm + a * (size_t)cl->stride, b - a, cl->stride, cl->kernel, f->mean, f->inv, f->st->c0_wt,
                f->st->c0_b, cl->c_out, act, dst);
}

/* Norm and activation of conv layer l's rows (bias of layers >= 1 too). */
static void conv_post(const fwd *f, int l, float *y, size_t rows) {
    const mp__conv_layer *cl = &f->m->conv[l];
    const mp__hparams *hp = &f->m->hp;
    const int C = cl->c_out;
    const float *b = l > 0 ? cl->b : NULL; /* layer 0's bias is in already (conv0_rows) */
    if (hp->group_norm) {
        /* layer 0 is finished already: GroupNorm and activation in conv0_rows */
        if (l > 0) mp__k_bias_act(y, rows, C, (size_t)C, b, hp->feat_act);
    } else {
        if (b) mp__k_bias_act(y, rows, C, (size_t)C, b, MP__ACT_NONE);
        mp__k_layer_norm(y, rows, C, (size_t)C, cl->norm_w, cl->norm_b, 1e-5f, y, (size_t)C, hp->feat_act);
    }
}

/* out [n_out][c_out] = conv of `in` (rows from the first input row of output 0). Kernel
 * positions go in groups of at most `stride`, so each group's patch rows are a strided view
 * of `in` with lda = stride*c_in >= K (see DESIGN). */
static int conv_gemm(const mp__conv_layer *cl, const float *in, size_t n_out, float *out, const mp__plinear *P,
                     const float *b, int act) {
    const int ci = cl->c_in, k = cl->kernel, s = cl->stride;
    if (k <= s && P && P->w) { /* one group: bias b and activation act in the same call; returns 1 */
        mp__p_linear(P, n_out, in, b, 0, act, out);
        return 1;
    }
    for (int j = 0; j < k; j += s) {
        int g = k - j < s ? k - j : s;
        if (j == 0 && P && P->w) { /* the first `stride` taps: dense patch rows, packed weights */
            mp__p_linear(P, n_out, in, NULL, 0, MP__ACT_NONE, out);
            continue;
        }
        mp__gemm_nt(n_out, cl->c_out, g * ci, 1.0f, in + (size_t)j * ci, (size_t)s * ci, cl->w + (size_t)j * ci,
                (size_t)k * ci, j ? 1.0f : 0.0f, out, (size_t)cl->c_out);
    }
    return 0;
}

static float *conv_buf(const fwd *f, int l) {
    if (l == 0) return f->arena + (f->m->hp.n_conv == 1 ? f->p->ca : f->p->c0);
    return f->arena + (l % 2 ? f->p->ca : f->p->cb);
}

/* Output rows [a, b) of conv layer l, finished (norm + activation), in conv_buf(f, l). */
static float *conv_rows(const fwd *f, int l, size_t a, size_t b) {
    float *dst = conv_buf(f, l);
    int finished = 0; /* bias and activation applied already (fp32 packed one-group layers) */
    if (l == 0) {
        conv0_rows(f, a, b, dst);
    } else {
        const mp__conv_layer *cl = &f->m->conv[l];
        const size_t s = (size_t)cl->stride, k = (size_t)cl->kernel;
        const size_t chunk = l == 1 ? f->p->p1 : b - a;
        for (size_t c0 = a; c0 < b; c0 += chunk) {
            size_t c1 = zmin(b, c0 + chunk);
            const float *in = conv_rows(f, l - 1, c0 * s, (c1 - 1) * s + k);
            float *out = dst + (c0 - a) * (size_t)cl->c_out;
            if (f->q && f->q->conv[l].w) {
                /* int8: each output frame's patch (k input rows = k*c_in consecutive floats,
                 * rows s*c_in apart) quantized with its own scale into a u8 im2col matrix */
                mp__qscratch qs = f->qs;
                const int K = (int)k * cl->c_in;
                mp__q_rows(in, c1 - c0, K, s * (size_t)cl->c_in, 1, &qs);
                mp__q_matmul(&qs, c1 - c0, &f->q->conv[l], NULL, MP__ACT_NONE, out, (size_t)cl->c_out);
            } else {
                /* GroupNorm models: conv_post's work for layers >= 1 is bias + activation, which a
                 * one-group packed product does in the same call */
                const int gn = f->m->hp.group_norm;
                finished = conv_gemm(cl, in, c1 - c0, out, f->m->packed ? &f->m->packed->conv[l] : NULL,
                                     gn ? cl->b : NULL, gn ? (int)f->m->hp.feat_act : MP__ACT_NONE) && gn;
            }
        }
    }
    if (!finished) conv_post(f, l, dst, b - a);
    return dst;
}

/* Mean m1 [k] and covariance cov [k][k] (population, in double) of conv layer 0's input patches
 * (rows r*stride .. r*stride+k-1 of the normalized waveform, r < n_rows0). Centered in a second
 * pass, so the variance below does not cancel. */
static void patch_moments(const fwd *f, double *m1, double *cov) {
    const mp__conv_layer *cl = &f->m->conv[0];
    const size_t k = (size_t)cl->kernel, s = (size_t)cl->stride, N = f->p->n_rows0;
    double *m2 = cov;
    for (size_t i = 0; i < k; i++) m1[i] = 0;
    for (size_t i = 0; i < k * k; i++) m2[i] = 0;
    for (size_t r = 0; r < N; r++)
        for (size_t i = 0; i < k; i++) m1[i] += (double)((f->pcm[r * s + i] - f->mean) * f->inv);
    for (size_t i = 0; i < k; i++) m1[i] /= (double)N;
    for (size_t r = 0; r < N; r++) {
        const float *xr = f->pcm + r * s;
        for (size_t i = 0; i < k; i++) {
            const double di = (double)((xr[i] - f->mean) * f->inv) - m1[i];
            for (size_t j = i; j < k; j++) m2[i * k + j] += di * ((double)((xr[j] - f->mean) * f->inv) - m1[j]);
        }
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = i; j < k; j++) cov[j * k + i] = cov[i * k + j] = m2[i * k + j] / (double)N;
}

static void stats_moments(const fwd *f, const mp__input_stats *s, double *m1, double *cov);

/* Conv layer 0's taps-major weight and bias for mp__k_conv0. With GroupNorm(C0, C0), whose
 * statistics span the whole time axis: channel c is y_c = w_c . p + b_c over patches p, so its
 * mean is w_c . m1 + b_c and its variance w_c^T cov w_c (the patch moments: k(k+1)/2 sums per
 * patch instead of a first conv pass over all T0 x C0 outputs). The norm's affine map
 * y' = (y - mean) sc + beta, sc = gamma / sqrt(var + 1e-5), then folds into the weights:
 * wt[j][c] = sc w_c[j], b'_c = beta_c - sc (mean_c - b_c). */
static void conv0_prepare(const fwd *f) {
    const mp__conv_layer *cl = &f->m->conv[0];
    const size_t C = (size_t)cl->c_out, k = (size_t)cl->kernel;
    mp__state *st = f->st;
    if (f->m->hp.group_norm && f->stats) stats_moments(f, f->stats, st->gn_m1, st->gn_cov);
    else if (f->m->hp.group_norm) patch_moments(f, st->gn_m1, st->gn_cov);
    for (size_t c = 0; c < C; c++) {
        const float *w = cl->w + c * k; /* [c_out][kernel][1] */
        double sc = 1.0, b = cl->b ? (double)cl->b[c] : 0.0;
        if (f->m->hp.group_norm) {
            double mw = 0, var = 0;
            for (size_t i = 0; i < k; i++) {
                mw += (double)w[i] * st->gn_m1[i];
                double cw = 0;
                for (size_t j = 0; j < k; j++) cw += st->gn_cov[i * k + j] * (double)w[j];
                var += (double)w[i] * cw;
            }
            if (var < 0) var = 0;
            sc = (double)cl->norm_w[c] / sqrt(var + 1e-5);
            b = (double)cl->norm_b[c] - sc * mw; /* mean_c - b_c = w_c . m1 */
        }
        for (size_t j = 0; j < k; j++) st->c0_wt[j * C + c] = (float)(sc * (double)w[j]);
        st->c0_b[c] = (float)b;
    }
}

/* Rows of out start as the bias b [N] (or zero when b is NULL), for a product added with beta = 1:
 * BLAS then skips its own pass that clears C for beta = 0 (OpenBLAS: a memset of C), and no
 * bias pass over the product follows. */
static float bias_rows(float *out, size_t rows, int N, size_t ld, const float *b) {
    if (!b) return 0.0f;
    for (size_t r = 0; r < rows; r++) memcpy(out + r * ld, b, (size_t)N * sizeof *out);
    return 1.0f;
}

/* out = in W^T + b for all T rows; through P's packed copy of W when there is one. */
static void linear(size_t T, int N, int K, const float *in, const float *w, const float *b, float *out,
                   const mp__plinear *P) {
    if (P) {
        mp__p_linear(P, T, in, b, 0, MP__ACT_NONE, out);
        return;
    }
    float beta = bias_rows(out, T, N, (size_t)N, b);
    mp__gemm_nt(T, N, K, 1.0f, in, (size_t)K, w, (size_t)K, beta, out, (size_t)N);
}

/* Conv stack + feature projection: x [T][H]. */
static void feature_encoder(const fwd *f) {
    const mp_model *m = f->m;
    const int nc = m->hp.n_conv, H = m->hp.hidden, C = m->hp.conv_dim[nc - 1];
    float *x = f->arena + f->p->x;
    conv0_prepare(f);
    for (size_t f0 = 0; f0 < f->p->T; f0 += f->p->block) {
        size_t f1 = zmin(f->p->T, f0 + f->p->block);
        float *y = conv_rows(f, nc - 1, f0, f1);
        if (m->fp_ln_w) /* HuBERT's feat_proj_layer_norm = false has none */
            mp__k_layer_norm(y, f1 - f0, C, (size_t)C, m->fp_ln_w, m->fp_ln_b, m->hp.ln_eps, y, (size_t)C,
                             MP__ACT_NONE);
        if (f->q) {
            mp__qscratch qs = f->qs;
            mp__q_linear(y, f1 - f0, (size_t)C, &f->q->fp, m->fp_b, MP__ACT_NONE, x + f0 * H, (size_t)H, &qs);
        } else {
            linear(f1 - f0, H, C, y, m->fp_w, m->fp_b, x + f0 * H, m->packed ? &m->packed->fp : NULL);
        }
    }
}

/* ---- transformer --------------------------------------------------------------------------------- */

/* Group g of the positional conv in int8 (quant.c, quantize_pos): POS_ROWS patch rows at a time,
 * each quantized with its own scale straight from xg's overlapping rows (mp__q_rows reads them in
 * place, writing the u8 im2col rows), the product into tmp [rows][Hg], copied into the group's
 * columns of out (row stride H: the 1x1-convolution product wants a dense output). */
static void pos_group_int8(const fwd *f, const mp__qlinear *W, const float *xg, float *out, float *tmp) {
    const size_t T = f->p->T, H = (size_t)f->m->hp.hidden, Hg = (size_t)W->n;
    mp__qscratch qs = f->qs;
    for (size_t t0 = 0; t0 < T; t0 += POS_ROWS) {
        const size_t nr = zmin(POS_ROWS, T - t0);
        mp__q_rows(xg + t0 * Hg, nr, W->k, Hg, 1, &qs);
        mp__q_matmul(&qs, nr, W, NULL, MP__ACT_NONE, tmp, Hg);
        for (size_t r = 0; r < nr; r++) memcpy(out + (t0 + r) * H, tmp + r * Hg, Hg * sizeof *out);
    }
}

/* x += act(posconv(x)): grouped conv, kernel K, padding K/2, the last frame dropped when K is
 * even (so output t reads input t - K/2 .. t - K/2 + K - 1). Each group's input is copied once
 * into a zero-padded group-major [T+K][Hg] array, whose K consecutive rows are output t's patch
 * (K*Hg floats at row t): the patch matrix with overlapping rows (lda = Hg), which
 * mp__k_gemm_bt reads in place, against the group's weight transposed to [K*Hg][Hg]. BLAS would
 * need an im2col copy (K times the input: 157 MB per 8 s for base) and runs these narrow
 * products (N = Hg = 16 or 48) poorly (bench/bench-posconv). Hg not a multiple of 16: BLAS. */
static void pos_conv(const fwd *f) {
    const mp_model *m = f->m;
    const plan *p = f->p;
    const size_t T = p->T, H = (size_t)m->hp.hidden, G = (size_t)m->hp.pos_groups, Hg = H / G;
    const size_t K = (size_t)m->hp.pos_kernel, pad = K / 2, KH = K * Hg;
    float *x = f->arena + p->x, *out = f->arena + p->pp, *xg = f->arena + p->pg, *wt = f->arena + p->pw;
    for (size_t g = 0; g < G; g++) {
        /* xg row u holds time u - pad */
        memset(xg, 0, pad * Hg * sizeof *xg);
        for (size_t t = 0; t < T; t++) memcpy(xg + (t + pad) * Hg, x + t * H + g * Hg, Hg * sizeof *xg);
        memset(xg + (T + pad) * Hg, 0, (K - pad) * Hg * sizeof *xg);
        if (f->q && f->q->pos) {
            pos_group_int8(f, &f->q->pos[g], xg, out + g * Hg, wt);
            continue;
        }
        const float *w = m->pos_w + g * Hg * KH; /* [Hg out][K*Hg in] */
        if (Hg % 16 == 0) {
            mp__k_transpose(w, (int)Hg, (int)KH, wt);
            mp__k_gemm_bt(T, (int)Hg, (int)KH, xg, Hg, wt, out + g * Hg, H);
        } else {
            for (size_t t0 = 0; t0 < T; t0 += POS_ROWS) { /* im2col blocks of the patch matrix */
                size_t nr = zmin(POS_ROWS, T - t0);
                for (size_t r = 0; r < nr; r++) memcpy(wt + r * KH, xg + (t0 + r) * Hg, KH * sizeof *wt);
                mp__gemm_nt(nr, (int)Hg, (int)KH, 1.0f, wt, KH, w, KH, 0.0f, out + t0 * H + g * Hg, H);
            }
        }
    }
    /* HF applies feat_extract_activation here (torchaudio hard-codes GELU, the same for all
     * released configs). */
    mp__k_bias_act(out, T, (int)H, H, m->pos_b, m->hp.feat_act);
    /* x += posconv; base (post-LN) normalizes right after, in the same pass */
    mp__k_add_layer_norm(x, out, T, (int)H, H, m->hp.stable_ln ? NULL : m->enc_ln_w, m->enc_ln_b, m->hp.ln_eps);
}

static void encoder_layer(const fwd *f, const mp__enc_layer *L) {
    const mp_model *m = f->m;
    const plan *p = f->p;
    const size_t T = p->T, H = (size_t)m->hp.hidden, NI = (size_t)m->hp.intermediate;
    const int nh = m->hp.n_heads, dh = (int)H / nh;
    const float eps = m->hp.ln_eps;
    float *x = f->arena + p->x;
    float *q = f->arena + p->q, *k = f->arena + p->k, *v = f->arena + p->v, *s = f->arena + p->s;
    float *sinv = s + up16(p->rq * T); /* [rq] 1 / row sums of the score block */

    /* attention: q, k, v [T][H]; head h is columns h*dh .. h*dh+dh-1 */
    const float *in = x;
    if (m->hp.stable_ln) {
        float *a = f->arena + p->a;
        mp__k_layer_norm(x, T, (int)H, H, L->ln1_w, L->ln1_b, eps, a, H, MP__ACT_NONE);
        in = a;
    }
    const mp__qlayer *Q = f->q ? &f->q->layers[L - m->layers] : NULL;
    const mp__player *P = !Q && m->packed ? &m->packed->layers[L - m->layers] : NULL;
    mp__qscratch qs = f->qs;
    if (Q) { /* int8: the input quantized once for q, k and v */
        mp__q_rows(in, T, (int)H, H, 1, &qs);
        mp__q_matmul(&qs, T, &Q->q, L->q_b, MP__ACT_NONE, q, H);
        mp__q_matmul(&qs, T, &Q->k, L->k_b, MP__ACT_NONE, k, H);
        mp__q_matmul(&qs, T, &Q->v, L->v_b, MP__ACT_NONE, v, H);
    } else {
        linear(T, (int)H, (int)H, in, L->q_w, L->q_b, q, P ? &P->q : NULL);
        linear(T, (int)H, (int)H, in, L->k_w, L->k_b, k, P ? &P->k : NULL);
        linear(T, (int)H, (int)H, in, L->v_w, L->v_b, v, P ? &P->v : NULL);
    }
    const float scale = 1.0f / sqrtf((float)dh); /* HF scales q by head_dim^-0.5 */
    for (int h = 0; h < nh; h++) {
        const size_t c = (size_t)h * dh;
        for (size_t r0 = 0; r0 < T; r0 += p->rq) {
            size_t nr = zmin(p->rq, T - r0);
            /* s [nr][T] = scale * q_h[r0..] k_h^T */
            mp__gemm_nt(nr, (int)T, dh, scale, q + r0 * H + c, H, k + c, H, 0.0f, s, T);
            mp__k_softmax_rows(s, nr, (int)T, T, sinv);
            /* context rows go over the query rows just consumed: q_h[r0..] = softmax(s) v_h,
             * normalized after the product (dh columns per row instead of T) */
            mp__gemm_nn(nr, dh, (int)T, s, T, v + c, H, q + r0 * H + c, H);
            mp__k_scale_rows(q + r0 * H + c, nr, dh, H, sinv);
        }
    }
    /* k is free now: out_proj result */
    if (Q) mp__q_linear(q, T, H, &Q->o, L->o_b, MP__ACT_NONE, k, H, &qs);
    else linear(T, (int)H, (int)H, q, L->o_w, L->o_b, k, P ? &P->o : NULL);
    mp__k_add_layer_norm(x, k, T, (int)H, H, m->hp.stable_ln ? NULL : L->ln1_w, L->ln1_b, eps);

    /* feed-forward in row blocks: [rf][fc] intermediate at a time */
    float *fa = f->arena + p->fa, *fh = f->arena + p->fh, *fo = f->arena + p->fo;
    for (size_t r0 = 0; r0 < T; r0 += p->rf) {
        size_t nr = zmin(p->rf, T - r0);
        float *xr = x + r0 * H;
        const float *fin = xr;
        if (m->hp.stable_ln) {
            mp__k_layer_norm(xr, nr, (int)H, H, L->ln2_w, L->ln2_b, eps, fa, H, MP__ACT_NONE);
            fin = fa;
        }
        if (Q) {
            mp__q_linear(fin, nr, H, &Q->ff1, L->ff1_b, m->hp.hidden_act, fh, NI, &qs);
            mp__q_linear(fh, nr, NI, &Q->ff2, L->ff2_b, MP__ACT_NONE, fo, H, &qs);
        } else if (P) { /* the same passes through the packed slices (prepack.c) */
            for (int pi = 0; pi < m->packed->passes; pi++) {
                const size_t c0 = (size_t)pi * m->packed->fc;
                mp__p_linear(&P->ff1[pi], nr, fin, L->ff1_b + c0, 0, m->hp.hidden_act, fh);
                if (pi == 0 && !L->ff2_b) memset(fo, 0, nr * H * sizeof *fo);
                mp__p_linear(&P->ff2[pi], nr, fh, pi == 0 ? L->ff2_b : NULL, pi > 0 || !L->ff2_b, MP__ACT_NONE, fo);
            }
        } else {
            /* intermediate columns c0.. in passes: fo = b2 + sum over passes of
             * act(fin W1_c^T + b1_c) W2_c^T */
            const float beta = bias_rows(fo, nr, (int)H, H, L->ff2_b);
            for (size_t c0 = 0; c0 < NI; c0 += p->fc) {
                const size_t nc = zmin(p->fc, NI - c0);
                mp__gemm_nt(nr, (int)nc, (int)H, 1.0f, fin, H, L->ff1_w + c0 * H, H, 0.0f, fh, nc);
                mp__k_bias_act(fh, nr, (int)nc, nc, L->ff1_b + c0, m->hp.hidden_act);
                mp__gemm_nt(nr, (int)H, (int)nc, 1.0f, fh, nc, L->ff2_w + c0, NI, c0 ? 1.0f : beta, fo, H);
            }
        }
        mp__k_add_layer_norm(xr, fo, nr, (int)H, H, m->hp.stable_ln ? NULL : L->ln2_w, L->ln2_b, eps);
    }
}

/* ---- entry points ------------------------------------------------------------------------------ */

/* normalize: apply do_normalize over these samples (raw input), or not (feature-extractor output);
 * stats: take do_normalize's and GroupNorm's statistics from there instead (or NULL). */
static mp_status forward(const mp_model *m, mp__state *st, const float *pcm, size_t n, int normalize,
                         const mp__input_stats *stats, float *logits);

mp_status mp__forward(const mp_model *m, mp__state *st, const float *pcm, size_t n, float *logits) {
    return forward(m, st, pcm, n, m && m->hp.do_normalize, NULL, logits);
}

mp_status mp__forward_values(const mp_model *m, mp__state *st, const float *values, size_t n, float *logits) {
    return forward(m, st, values, n, 0, NULL, logits);
}

mp_status mp__forward_stats(const mp_model *m, mp__state *st, const float *pcm, size_t n,
                            const mp__input_stats *stats, float *logits) {
    if (stats && (!(stats->n > 0) || !(stats->rows > 0) || !stats->p1 || !stats->p2))
        return mp__fail(MP_ERR_INVALID_ARG, "mp__forward_stats: empty statistics");
    return forward(m, st, pcm, n, m && m->hp.do_normalize, stats, logits);
}

void mp__input_stats_add(const mp_model *m, mp__input_stats *s, const float *pcm, size_t n, size_t n_rows) {
    const size_t k = (size_t)m->conv[0].kernel, str = (size_t)m->conv[0].stride;
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s1 += pcm[i], s2 += (double)pcm[i] * pcm[i];
    s->n += (double)n;
    s->s1 += s1;
    s->s2 += s2;
    for (size_t r = 0; r < n_rows; r++) {
        const float *x = pcm + r * str;
        for (size_t i = 0; i < k; i++) {
            s->p1[i] += x[i];
            for (size_t j = i; j < k; j++) s->p2[i * k + j] += (double)x[i] * x[j];
        }
    }
    s->rows += (double)n_rows;
}

/* The patch moments of conv0_prepare (normalized: x' = (x - mean) * inv) from raw sums. */
static void stats_moments(const fwd *f, const mp__input_stats *s, double *m1, double *cov) {
    const size_t k = (size_t)f->m->conv[0].kernel;
    const double mean = (double)f->mean, inv = (double)f->inv, R = s->rows;
    for (size_t i = 0; i < k; i++) m1[i] = s->p1[i] / R;
    for (size_t i = 0; i < k; i++)
        for (size_t j = i; j < k; j++)
            cov[j * k + i] = cov[i * k + j] = (s->p2[i * k + j] / R - m1[i] * m1[j]) * inv * inv;
    for (size_t i = 0; i < k; i++) m1[i] = (m1[i] - mean) * inv;
}

/* Checks, plan and scratch for a run over n samples giving T frames, and f's normalization
 * (normalize: do_normalize applies; stats: its statistics, else pcm's own). */
static mp_status setup(const mp_model *m, mp__state *st, const float *pcm, size_t n, size_t T, int normalize,
                       const mp__input_stats *stats, plan *p, fwd *f) {
    if (T > (size_t)INT_MAX / (size_t)(m->hp.hidden > m->hp.intermediate ? m->hp.hidden : m->hp.intermediate))
        return mp__fail(MP_ERR_NOMEM, "mp__forward: input too long (%zu frames)", T);
    make_plan(&m->hp, n, T, st->conv_block, m->quant != NULL, p);
    mp_status s = state_reserve(st, p->total);
    if (s != MP_OK) return s;

    mp__gemm_thread_sync();
    *f = (fwd){.m = m, .st = st, .p = p, .pcm = pcm, .mean = 0.0f, .inv = 1.0f, .arena = st->arena, .q = m->quant};
    if (f->q)
        f->qs = (mp__qscratch){.a = (uint8_t *)(st->arena + p->qa), .sa = st->arena + p->qs,
                               .za = (int32_t *)(st->arena + p->qz)};
    f->stats = stats;
    if (!pcm || !normalize) return MP_OK; /* encoder only, or feature-extractor output taken as it is */
    if (stats) {
        double mean = stats->s1 / stats->n, var = stats->s2 / stats->n - mean * mean;
        f->mean = (float)mean;
        f->inv = (float)(1.0 / sqrt((var > 0 ? var : 0) + 1e-7));
    } else {
        /* Wav2Vec2FeatureExtractor: (x - mean) / sqrt(var + 1e-7), population variance over
         * these samples; two passes in double. */
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++) sum += pcm[i];
        double mean = sum / (double)n;
        for (size_t i = 0; i < n; i++) sq += ((double)pcm[i] - mean) * ((double)pcm[i] - mean);
        f->mean = (float)mean;
        f->inv = (float)(1.0 / sqrt(sq / (double)n + 1e-7));
    }
    return MP_OK;
}

static mp_status check_call(const mp_model *m, const mp__state *st) {
    if (!m || !st) return mp__fail(MP_ERR_INVALID_ARG, "mp__forward: NULL model or state");
    if (memcmp(&st->hp, &m->hp, sizeof st->hp) != 0)
        return mp__fail(MP_ERR_MISUSE, "mp__forward: state was created for a model of another shape");
    if (m->conv[0].c_in != 1)
        return mp__fail(MP_ERR_INVALID_ARG, "mp__forward: conv layer 0 must read one channel (mono)");
    return MP_OK;
}

/* Positional conv, the transformer layers and the CTC head over x [T][H] in the arena. */
static void encoder(const fwd *f, float *logits) {
    const mp_model *m = f->m;
    const int H = m->hp.hidden;
    const size_t T = f->p->T;
    float *x = f->arena + f->p->x;
    pos_conv(f);
    for (int l = 0; l < m->hp.n_layers; l++) encoder_layer(f, &m->layers[l]);
    if (m->hp.stable_ln)
        mp__k_layer_norm(x, T, H, (size_t)H, m->enc_ln_w, m->enc_ln_b, m->hp.ln_eps, x, (size_t)H, MP__ACT_NONE);
    linear(T, m->hp.vocab, H, x, m->lm_w, m->lm_b, logits, NULL);
}

static mp_status forward(const mp_model *m, mp__state *st, const float *pcm, size_t n, int normalize,
                         const mp__input_stats *stats, float *logits) {
    mp_status s = check_call(m, st);
    if (s != MP_OK) return s;
    if (n && !pcm) return mp__fail(MP_ERR_INVALID_ARG, "mp__forward: pcm is NULL");
    const size_t T = mp__model_n_frames(m, n);
    if (T == 0) return MP_OK; /* shorter than the receptive field: no frames, nothing written */
    if (!logits) return mp__fail(MP_ERR_INVALID_ARG, "mp__forward: logits is NULL");
    plan p;
    fwd f;
    s = setup(m, st, pcm, n, T, normalize, stats, &p, &f);
    if (s != MP_OK) return s;
    feature_encoder(&f);
    encoder(&f, logits);
    return MP_OK;
}

mp_status mp__forward_features(const mp_model *m, mp__state *st, const float *pcm, size_t n,
                               const mp__input_stats *stats, float *feat) {
    mp_status s = check_call(m, st);
    if (s != MP_OK) return s;
    if (n && !pcm) return mp__fail(MP_ERR_INVALID_ARG, "mp__forward_features: pcm is NULL");
    if (stats && (!(stats->n > 0) || !(stats->rows > 0) || !stats->p1 || !stats->p2))
        return mp__fail(MP_ERR_INVALID_ARG, "mp__forward_features: empty statistics");
    const size_t T = mp__model_n_frames(m, n);
    if (T == 0) return MP_OK;
    if (!feat) return mp__fail(MP_ERR_INVALID_ARG, "mp__forward_features: feat is NULL");
    plan p;
    fwd f;
    s = setup(m, st, pcm, n, T, m->hp.do_normalize, stats, &p, &f);
    if (s != MP_OK) return s;
    feature_encoder(&f);
    memcpy(feat, st->arena + p.x, T * (size_t)m->hp.hidden * sizeof *feat);
    return MP_OK;
}

mp_status mp__forward_encoder(const mp_model *m, mp__state *st, const float *feat, size_t T, float *logits) {
    mp_status s = check_call(m, st);
    if (s != MP_OK) return s;
    if (T == 0) return MP_OK;
    if (!feat || !logits) return mp__fail(MP_ERR_INVALID_ARG, "mp__forward_encoder: NULL features or logits");
    /* the plan's conv sizes follow from the samples T frames need (unused here but sized alike) */
    size_t n = (T - 1) * (size_t)mp__model_stride(m) + (size_t)mp__model_receptive_field(m);
    plan p;
    fwd f;
    s = setup(m, st, NULL, n, T, 0, NULL, &p, &f);
    if (s != MP_OK) return s;
    memcpy(st->arena + p.x, feat, T * (size_t)m->hp.hidden * sizeof *feat);
    encoder(&f, logits);
    return MP_OK;
}

/* How far the normalization of statistics a is from b's, for features computed under b: 0 when
 * the feature encoder's output does not depend on them. GroupNorm on conv layer 0 (one group
 * per channel, over the time axis): channel c's output is gamma (y_c - mean_c) / sd_c + beta
 * with y_c = w_c . p over input patches p, so do_normalize's offset and any conv bias cancel and
 * its scale nearly does (against the norm's eps of 1e-5): what counts is each channel's mean and
 * standard deviation over the raw patches, w_c . m1 and sqrt(w_c^T cov w_c). The drift is the
 * largest over channels of |ln(sd_a / sd_b)| and |mean_a - mean_b| / sd_b. A per-frame
 * LayerNorm extractor depends only on do_normalize's mean and scale (the same measure over the
 * samples); without either, features are local and the drift is 0. */
double mp__input_stats_drift(const mp_model *m, const mp__input_stats *a, const mp__input_stats *b) {
    if (!a || !b || !(a->n > 0) || !(b->n > 0)) return INFINITY;
    if (m->hp.group_norm) {
        if (!(a->rows > 0) || !(b->rows > 0)) return INFINITY;
        const mp__conv_layer *cl = &m->conv[0];
        const size_t k = (size_t)cl->kernel;
        double worst = 0;
        for (int c = 0; c < cl->c_out; c++) {
            const float *w = cl->w + (size_t)c * k;
            double ms[2], vs[2];
            for (int t = 0; t < 2; t++) {
                const mp__input_stats *s = t ? b : a;
                double mw = 0, q = 0;
                for (size_t i = 0; i < k; i++) mw += (double)w[i] * s->p1[i] / s->rows;
                for (size_t i = 0; i < k; i++)
                    for (size_t j = i; j < k; j++) {
                        double cij = s->p2[i * k + j] / s->rows - (s->p1[i] / s->rows) * (s->p1[j] / s->rows);
                        q += (i == j ? 1.0 : 2.0) * (double)w[i] * (double)w[j] * cij;
                    }
                ms[t] = mw, vs[t] = q > 1e-30 ? q : 1e-30;
            }
            double d1 = fabs(0.5 * log(vs[0] / vs[1])), d2 = fabs(ms[0] - ms[1]) / sqrt(vs[1]);
            worst = fmax(worst, fmax(d1, d2));
        }
        return worst;
    }
    if (!m->hp.do_normalize) return 0.0;
    double ma = a->s1 / a->n, mb = b->s1 / b->n;
    double va = fmax(a->s2 / a->n - ma * ma, 0) + 1e-7, vb = fmax(b->s2 / b->n - mb * mb, 0) + 1e-7;
    return fmax(fabs(0.5 * log(va / vb)), fabs(ma - mb) / sqrt(vb));
}
