/* weights.c - the tensor table (tensors.h) into the model's layers: every tensor the
 * configuration needs is claimed by name with its exact shape (from config.json), converted to
 * fp32 when it is not already aligned fp32, and the conv weights reordered for im2col; the
 * positional conv gets its weight norm applied. Nothing here knows the file format.
 * Part of engine; calls core and tensors.c. */
#include "loader.h"
#include "kernels.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After a copy of t (reordered, converted) the model never reads t again: give its pages of the
 * file mapping back, or they stay resident (a clean file page counts in RSS as long as it is
 * mapped): 34 MB for base's conv and positional-conv weights, all of an fp16 file. Not for a
 * tensor outside the mapping (read into memory, or gathered from a strided view). */
static void drop_source(const mp__loader *L, const mp__tensor *t) {
    const uint8_t *map = L->ts->map;
    const size_t bytes = t->numel * mp__dtype_size(t->dtype);
    if (map && t->data >= map && t->data + bytes <= map + L->ts->map_size) mp__release_pages(t->data, bytes);
}

/* fp32 view of a tensor: in place when already aligned fp32 (zero copy) and in_place allows it,
 * else converted once into the model's memory (and the file pages given back). */
static mp_status tensor_f32(mp__loader *L, const mp__tensor *t, int in_place, const float **out) {
    if (in_place && t->dtype == MP_DT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = (const float *)(const void *)t->data;
        return MP_OK;
    }
    float *dst = mp__model_alloc(L->m, t->numel);
    if (!dst) return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", L->ts->path, t->name);
    mp__tensor_to_f32(t, dst);
    drop_source(L, t);
    *out = dst;
    return MP_OK;
}

/* Claim tensor `name` with exactly this shape: counts its parameters and dtype. */
static mp_status claim(mp__loader *L, const char *name, int ndim, const int64_t *shape, mp__tensor **out) {
    mp__tensor *t = mp__tensors_find(L->ts, name);
    char want[160];
    mp__shape_str(want, sizeof want, ndim, shape);
    if (!t) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: missing tensor %s (expected shape %s)", L->ts->path, name, want);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[160];
        mp__shape_str(got, sizeof got, t->ndim, t->shape);
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape %s, expected %s (from config.json)", L->ts->path,
                        name, got, want);
    }
    if (t->used) return mp__fail(MP_ERR_INTERNAL, "%s: tensor %s claimed twice", L->ts->path, name);
    t->used = 1;
    L->m->n_params += t->numel;
    L->dtypes_used |= 1u << t->dtype;
    *out = t;
    return MP_OK;
}

/* Claim a tensor used as stored (after fp32 conversion). shape: up to 2 dims, d1 < 0 = 1-D. */
static mp_status bind(mp__loader *L, const float **out, int64_t d0, int64_t d1, const char *fmt, ...) MP_PRINTF(5, 6);
static mp_status bind(mp__loader *L, const float **out, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[2] = {d0, d1};
    mp__tensor *t;
    mp_status st = claim(L, name, d1 < 0 ? 1 : 2, shape, &t);
    if (st != MP_OK) return st;
    /* A vector (bias, norm) is copied out of the mapping even when it could be used in place: read
     * in every forward, it would keep the file pages around it mapped (the kernel maps a fault's
     * neighbours, and with large page-cache folios up to megabytes of them), among them pages of
     * the weights quantized or packed at load and released (madvise): on Linux 6.18, 160 MB of
     * base's released fp32 weights were resident again in an int8 process, its peak RSS ~270
     * MB instead of ~150 at 2 workers, depending on what the page cache held. */
    if ((st = tensor_f32(L, t, d1 >= 0, out)) != MP_OK) return st;
    L->m->weight_bytes += t->numel * sizeof(float);
    return MP_OK;
}

/* Conv weight [c_out][c_in][k] (HF/PyTorch Conv1d) -> owned [c_out][k][c_in], so that for output
 * frame t the k input rows t*stride .. t*stride+k-1 of a time-major [T][c_in] activation are one
 * contiguous im2col row matching one weight row. */
static mp_status reorder_conv(mp__loader *L, const mp__tensor *t, int c_out, int c_in, int k, const float **out) {
    float *src = malloc(t->numel * sizeof *src);
    float *dst = mp__model_alloc(L->m, t->numel);
    if (src && dst) {
        mp__tensor_to_f32(t, src);
        for (int o = 0; o < c_out; o++)
            for (int i = 0; i < c_in; i++)
                for (int j = 0; j < k; j++)
                    dst[((size_t)o * k + j) * c_in + i] = src[((size_t)o * c_in + i) * k + j];
    }
    free(src);
    if (!src || !dst) return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", L->ts->path, t->name);
    drop_source(L, t);
    L->m->weight_bytes += t->numel * sizeof(float);
    *out = dst;
    return MP_OK;
}

static mp_status load_feature_extractor(mp__loader *L) {
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
        mp__tensor *t;
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
/* Claim the positional conv's weight tensors under whichever naming the file uses: *g is NULL
 * for a plain weight. vname receives the direction tensor's name (for errors). */
static mp_status claim_pos_conv(mp__loader *L, const char *base, mp__tensor **g, mp__tensor **v, char *vname,
                                size_t vcap) {
    const int H = L->m->hp.hidden, K = L->m->hp.pos_kernel, Cg = H / L->m->hp.pos_groups;
    int64_t gshape[3] = {1, 1, K}, vshape[3] = {H, Cg, K};
    char gname[256];
    mp_status st;
    *g = *v = NULL;
    snprintf(gname, sizeof gname, "%s.parametrizations.weight.original0", base);
    snprintf(vname, vcap, "%s.parametrizations.weight.original1", base);
    if (!mp__tensors_find(L->ts, gname) && !mp__tensors_find(L->ts, vname)) {
        snprintf(gname, sizeof gname, "%s.weight_g", base);
        snprintf(vname, vcap, "%s.weight_v", base);
    }
    if (!mp__tensors_find(L->ts, gname) && !mp__tensors_find(L->ts, vname)) {
        snprintf(vname, vcap, "%s.weight", base);
        if (!mp__tensors_find(L->ts, vname))
            return mp__fail(MP_ERR_MODEL_FORMAT,
                            "%s: missing tensor %s.weight_g/.weight_v (or .parametrizations.weight.original0/1, or "
                            ".weight; expected shapes [1,1,%d] and [%d,%d,%d])",
                            L->ts->path, base, K, H, Cg, K);
    } else if ((st = claim(L, gname, 3, gshape, g)) != MP_OK) {
        return st;
    }
    return claim(L, vname, 3, vshape, v);
}

/* dst[o][k][i] = g[k] * v[o][i][k] / ||v[:, :, k]|| (g NULL: v as is), v of shape [H][Cg][K]. */
static int weight_norm_reorder(const mp__tensor *v, const mp__tensor *g, int H, int Cg, int K, float *dst) {
    const size_t n = (size_t)H * Cg * K;
    float *w = malloc(n * sizeof *w);
    float *gv = malloc((size_t)K * sizeof *gv);
    double *norm = calloc((size_t)K, sizeof *norm);
    int ok = w && gv && norm;
    if (ok) {
        mp__tensor_to_f32(v, w);
        if (g) {
            mp__tensor_to_f32(g, gv);
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
    }
    free(w), free(gv), free(norm);
    return ok;
}

static mp_status load_pos_conv(mp__loader *L) {
    mp_model *m = L->m;
    const int H = m->hp.hidden, K = m->hp.pos_kernel, Cg = H / m->hp.pos_groups;
    const size_t n = (size_t)H * Cg * K;
    char base[200], vname[256];
    snprintf(base, sizeof base, "%sencoder.pos_conv_embed.conv", L->prefix);
    mp__tensor *g, *v;
    mp_status st = claim_pos_conv(L, base, &g, &v, vname, sizeof vname);
    if (st != MP_OK) return st;
    float *dst = mp__model_alloc(m, n);
    if (!dst || !weight_norm_reorder(v, g, H, Cg, K, dst))
        return mp__fail(MP_ERR_NOMEM, "%s: tensor %s: out of memory", L->ts->path, vname);
    drop_source(L, v);
    m->pos_w = dst;
    m->weight_bytes += n * sizeof(float);
    return bind(L, &m->pos_b, H, -1, "%s.bias", base);
}

static mp_status load_encoder(mp__loader *L) {
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
        if (!m->layers) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", L->ts->path);
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
static mp_status check_leftovers(const mp__loader *L) {
    size_t np = strlen(L->prefix);
    for (size_t i = 0; i < L->ts->n; i++) {
        const mp__tensor *t = &L->ts->t[i];
        if (t->used) continue;
        const char *s = t->name;
        const char *rest = strncmp(s, L->prefix, np) == 0 ? s + np : NULL;
        if ((rest && !strcmp(rest, "masked_spec_embed")) || !strncmp(s, "quantizer.", 10) ||
            !strncmp(s, "project_q.", 10) || !strncmp(s, "project_hid.", 12)) {
            mp__log(MP_LOG_DEBUG, "%s: ignoring training-only tensor %s", L->ts->path, s);
            continue;
        }
        char sh[160];
        mp__shape_str(sh, sizeof sh, t->ndim, t->shape);
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: unexpected tensor %s %s (not part of %s as configured in %s)",
                        L->ts->path, s, sh, L->m->arch, L->config_path);
    }
    return MP_OK;
}

mp_status mp__weights_bind(mp__loader *L) {
    mp_status st = load_feature_extractor(L);
    if (st == MP_OK) st = load_encoder(L);
    if (st == MP_OK) st = check_leftovers(L);
    return st;
}
