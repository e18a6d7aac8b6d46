/* test-loader.c - mp_model_load on tiny HuggingFace directories the test writes itself (no
 * external files): field parsing, zero-copy fp32, fp16/bf16 conversion, conv reordering, the
 * positional conv's weight norm, tokenizer files, and a malformed-input corpus whose every case
 * must give a clear error naming the file and the tensor or field, never a crash. */
#include "internal.h"
#include "test.h"

#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fixture: an in-memory HF model, written on demand ------------------------------------------ */

#define MAX_T 128
#define H 8     /* hidden_size */
#define NH 2    /* heads */
#define NL 2    /* layers */
#define FF 12   /* intermediate_size */
#define PK 4    /* num_conv_pos_embeddings (even, as wav2vec2-base's 128) */
#define PG 2    /* num_conv_pos_embedding_groups */
#define CG (H / PG)
#define V 7     /* vocab_size */
static const int conv_dim[2] = {4, 6}, conv_kernel[2] = {3, 2}, conv_stride[2] = {2, 2};

typedef struct tensor {
    char name[160];
    int ndim;
    int64_t shape[3];
    size_t n;
    float *v;
    const char *dtype; /* NULL: the fixture's dtype */
} tensor;

typedef struct opts {
    int layer_norm;         /* feat_extract_norm "layer" (+ conv_bias, stable LN) instead of "group" */
    const char *pos_naming; /* "gv" (default), "param", "plain" */
    int hubert;
    int training_extras;    /* add masked_spec_embed + quantizer tensors (ignored by the loader) */
} opts;

typedef struct fixture {
    char dir[64];
    json_t *config;
    tensor t[MAX_T];
    int n_t;
    const char *dtype;      /* "F32", "F16", "BF16" */
    int misalign;           /* don't pad the header: data section not 4-byte aligned */
    void (*edit_header)(json_t *hdr);
    uint64_t n_params_used; /* sum of numel over tensors the loader must use */
} fixture;

static float gen(int k, size_t i) { return 0.5f * sinf(0.7f * (float)i + 1.1f * (float)k + 0.3f); }

static tensor *add_tensor(fixture *fx, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    MP_ASSERT(fx->n_t < MAX_T);
    tensor *t = &fx->t[fx->n_t];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = d2;
    t->n = 1;
    for (int i = 0; i < ndim; i++) t->n *= (size_t)t->shape[i];
    t->v = malloc((t->n ? t->n : 1) * sizeof *t->v);
    MP_ASSERT(t->v);
    for (size_t i = 0; i < t->n; i++) t->v[i] = gen(fx->n_t, i);
    fx->n_t++;
    return t;
}

static tensor *find_t(fixture *fx, const char *name) {
    for (int i = 0; i < fx->n_t; i++)
        if (!strcmp(fx->t[i].name, name)) return &fx->t[i];
    return NULL;
}

static void remove_t(fixture *fx, const char *name) {
    tensor *t = find_t(fx, name);
    MP_ASSERT(t);
    free(t->v);
    *t = fx->t[--fx->n_t];
}

static void fixture_init(fixture *fx, const opts *o) {
    memset(fx, 0, sizeof *fx);
    strcpy(fx->dir, "/tmp/mp-loader-XXXXXX");
    MP_ASSERT(mkdtemp(fx->dir));
    fx->dtype = "F32";
    const char *p = o->hubert ? "hubert." : "wav2vec2.";
    char n[200];

    json_t *c = json_object();
    json_object_set_new(c, "architectures", json_pack("[s]", o->hubert ? "HubertForCTC" : "Wav2Vec2ForCTC"));
    json_object_set_new(c, "model_type", json_string(o->hubert ? "hubert" : "wav2vec2"));
    json_object_set_new(c, "conv_dim", json_pack("[i,i]", conv_dim[0], conv_dim[1]));
    json_object_set_new(c, "conv_kernel", json_pack("[i,i]", conv_kernel[0], conv_kernel[1]));
    json_object_set_new(c, "conv_stride", json_pack("[i,i]", conv_stride[0], conv_stride[1]));
    json_object_set_new(c, "conv_bias", json_boolean(o->layer_norm));
    json_object_set_new(c, "feat_extract_norm", json_string(o->layer_norm ? "layer" : "group"));
    json_object_set_new(c, "feat_extract_activation", json_string(o->layer_norm ? "relu" : "gelu"));
    json_object_set_new(c, "hidden_act", json_string(o->layer_norm ? "gelu_new" : "gelu"));
    json_object_set_new(c, "do_stable_layer_norm", json_boolean(o->layer_norm));
    json_object_set_new(c, "hidden_size", json_integer(H));
    json_object_set_new(c, "num_attention_heads", json_integer(NH));
    json_object_set_new(c, "num_hidden_layers", json_integer(NL));
    json_object_set_new(c, "intermediate_size", json_integer(FF));
    json_object_set_new(c, "layer_norm_eps", json_real(1e-5));
    json_object_set_new(c, "num_conv_pos_embeddings", json_integer(PK));
    json_object_set_new(c, "num_conv_pos_embedding_groups", json_integer(PG));
    json_object_set_new(c, "vocab_size", json_integer(V));
    json_object_set_new(c, "pad_token_id", json_integer(0));
    json_object_set_new(c, "use_weighted_layer_sum", json_false());
    json_object_set_new(c, "num_codevectors_per_group", json_integer(320)); /* quantizer: ignored */
    fx->config = c;

    for (int l = 0; l < 2; l++) {
        int cin = l ? conv_dim[l - 1] : 1;
        snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.conv.weight", p, l);
        add_tensor(fx, n, 3, conv_dim[l], cin, conv_kernel[l]);
        if (o->layer_norm) {
            snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.conv.bias", p, l);
            add_tensor(fx, n, 1, conv_dim[l], 0, 0);
        }
        if (l == 0 || o->layer_norm) {
            snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.layer_norm.weight", p, l);
            add_tensor(fx, n, 1, conv_dim[l], 0, 0);
            snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.layer_norm.bias", p, l);
            add_tensor(fx, n, 1, conv_dim[l], 0, 0);
        }
    }
    snprintf(n, sizeof n, "%sfeature_projection.layer_norm.weight", p), add_tensor(fx, n, 1, conv_dim[1], 0, 0);
    snprintf(n, sizeof n, "%sfeature_projection.layer_norm.bias", p), add_tensor(fx, n, 1, conv_dim[1], 0, 0);
    snprintf(n, sizeof n, "%sfeature_projection.projection.weight", p), add_tensor(fx, n, 2, H, conv_dim[1], 0);
    snprintf(n, sizeof n, "%sfeature_projection.projection.bias", p), add_tensor(fx, n, 1, H, 0, 0);

    const char *naming = o->pos_naming ? o->pos_naming : "gv";
    char gname[200], vname[200];
    snprintf(gname, sizeof gname, "%sencoder.pos_conv_embed.conv.%s", p,
             !strcmp(naming, "param") ? "parametrizations.weight.original0" : "weight_g");
    snprintf(vname, sizeof vname, "%sencoder.pos_conv_embed.conv.%s", p,
             !strcmp(naming, "param") ? "parametrizations.weight.original1" : "weight_v");
    tensor *g = add_tensor(fx, gname, 3, 1, 1, PK);
    tensor *v = add_tensor(fx, vname, 3, H, CG, PK);
    /* deterministic across namings: values depend on the role, not the tensor's index */
    for (size_t i = 0; i < g->n; i++) g->v[i] = 0.8f + 0.1f * (float)i;
    for (size_t i = 0; i < v->n; i++) v->v[i] = gen(1000, i);
    if (!strcmp(naming, "plain")) {
        /* store the already weight-normed weight under the plain name, computed here */
        snprintf(v->name, sizeof v->name, "%sencoder.pos_conv_embed.conv.weight", p);
        for (int k = 0; k < PK; k++) {
            double s = 0;
            for (int j = 0; j < H * CG; j++) s += (double)v->v[j * PK + k] * v->v[j * PK + k];
            for (int j = 0; j < H * CG; j++) v->v[j * PK + k] = (float)(v->v[j * PK + k] * g->v[k] / sqrt(s));
        }
        remove_t(fx, gname);
    }
    snprintf(n, sizeof n, "%sencoder.pos_conv_embed.conv.bias", p), add_tensor(fx, n, 1, H, 0, 0);
    snprintf(n, sizeof n, "%sencoder.layer_norm.weight", p), add_tensor(fx, n, 1, H, 0, 0);
    snprintf(n, sizeof n, "%sencoder.layer_norm.bias", p), add_tensor(fx, n, 1, H, 0, 0);
    static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int l = 0; l < NL; l++) {
        for (int j = 0; j < 4; j++) {
            snprintf(n, sizeof n, "%sencoder.layers.%d.attention.%s.weight", p, l, proj[j]);
            add_tensor(fx, n, 2, H, H, 0);
            snprintf(n, sizeof n, "%sencoder.layers.%d.attention.%s.bias", p, l, proj[j]);
            add_tensor(fx, n, 1, H, 0, 0);
        }
        snprintf(n, sizeof n, "%sencoder.layers.%d.layer_norm.weight", p, l), add_tensor(fx, n, 1, H, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.layer_norm.bias", p, l), add_tensor(fx, n, 1, H, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.feed_forward.intermediate_dense.weight", p, l),
            add_tensor(fx, n, 2, FF, H, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.feed_forward.intermediate_dense.bias", p, l),
            add_tensor(fx, n, 1, FF, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.feed_forward.output_dense.weight", p, l),
            add_tensor(fx, n, 2, H, FF, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.feed_forward.output_dense.bias", p, l);
        add_tensor(fx, n, 1, H, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.final_layer_norm.weight", p, l), add_tensor(fx, n, 1, H, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.final_layer_norm.bias", p, l), add_tensor(fx, n, 1, H, 0, 0);
    }
    add_tensor(fx, "lm_head.weight", 2, V, H, 0);
    add_tensor(fx, "lm_head.bias", 1, V, 0, 0);
    for (int i = 0; i < fx->n_t; i++) fx->n_params_used += fx->t[i].n;
    if (o->training_extras) {
        snprintf(n, sizeof n, "%smasked_spec_embed", p), add_tensor(fx, n, 1, H, 0, 0);
        add_tensor(fx, "quantizer.codevectors", 3, 1, 4, 2);
        add_tensor(fx, "project_q.weight", 2, 2, 2, 0);
    }
}

static void write_text(const fixture *fx, const char *file, const char *text) {
    char path[160];
    snprintf(path, sizeof path, "%s/%s", fx->dir, file);
    FILE *f = fopen(path, "wb");
    MP_ASSERT(f);
    fputs(text, f);
    fclose(f);
}

static void write_json(const fixture *fx, const char *file, json_t *j) {
    char path[160];
    snprintf(path, sizeof path, "%s/%s", fx->dir, file);
    MP_ASSERT(json_dump_file(j, path, JSON_INDENT(1)) == 0);
}

/* Round to nearest half (normal and subnormal; our values are far below the fp16 max). */
static uint16_t f2h(float f) {
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    float a = fabsf(f);
    if (a == 0) return sign;
    if (a >= 65520.f) return sign | 0x7c00;
    if (a < ldexpf(1, -14)) return (uint16_t)(sign | (uint16_t)lrintf(a / ldexpf(1, -24)));
    int e;
    float fr = frexpf(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
    int man = (int)lrintf((fr * 2 - 1) * 1024), E = e - 1 + 15;
    if (man == 1024) man = 0, E++;
    return (uint16_t)(sign | E << 10 | man);
}

static uint16_t f2bf(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    x += 0x7fff + ((x >> 16) & 1); /* round to nearest even */
    return (uint16_t)(x >> 16);
}

static const char *dtype_of(const fixture *fx, const tensor *t) { return t->dtype ? t->dtype : fx->dtype; }

static void write_safetensors(const fixture *fx) {
    json_t *hdr = json_object();
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int i = 0; i < fx->n_t; i++) {
        const tensor *t = &fx->t[i];
        size_t es = strcmp(dtype_of(fx, t), "F32") ? 2 : 4;
        json_t *sh = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(sh, json_integer(t->shape[d]));
        json_object_set_new(hdr, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtype_of(fx, t), "shape", sh, "data_offsets",
                                      (json_int_t)off, (json_int_t)(off + t->n * es)));
        off += t->n * es;
    }
    if (fx->edit_header) fx->edit_header(hdr);
    char *h = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    MP_ASSERT(h);
    size_t hl = strlen(h);
    /* Pad with spaces (as the safetensors writer does) so the data section is 8-byte aligned, or
     * deliberately to 8k+1 so that fp32 tensors are misaligned and must be copied. */
    size_t padded = fx->misalign ? ((hl + 7) / 8) * 8 + 1 : ((hl + 7) / 8) * 8;
    char path[160];
    snprintf(path, sizeof path, "%s/model.safetensors", fx->dir);
    FILE *f = fopen(path, "wb");
    MP_ASSERT(f);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(h, 1, hl, f);
    for (size_t i = hl; i < padded; i++) fputc(' ', f);
    free(h);
    for (int i = 0; i < fx->n_t; i++) {
        const tensor *t = &fx->t[i];
        const char *dt = dtype_of(fx, t);
        for (size_t j = 0; j < t->n; j++) {
            if (!strcmp(dt, "F32")) {
                fwrite(&t->v[j], 4, 1, f); /* little-endian host, as the loader */
            } else {
                uint16_t b = !strcmp(dt, "F16") ? f2h(t->v[j]) : f2bf(t->v[j]);
                uint8_t le[2] = {(uint8_t)b, (uint8_t)(b >> 8)};
                fwrite(le, 1, 2, f);
            }
        }
    }
    fclose(f);
}

static const char *const vocab_tokens[V] = {"<pad>", "<s>", "</s>", "<unk>", "|", "A", "B"};

static void fixture_write(fixture *fx) {
    write_json(fx, "config.json", fx->config);
    json_t *pre = json_pack("{s:b,s:i,s:i,s:f,s:b,s:s}", "do_normalize", 1, "sampling_rate", 16000, "feature_size", 1,
                            "padding_value", 0.0, "return_attention_mask", 0, "feature_extractor_type",
                            "Wav2Vec2FeatureExtractor");
    write_json(fx, "preprocessor_config.json", pre);
    json_decref(pre);
    json_t *voc = json_object();
    for (int i = 0; i < V; i++) json_object_set_new(voc, vocab_tokens[i], json_integer(i));
    write_json(fx, "vocab.json", voc);
    json_decref(voc);
    write_safetensors(fx);
}

static void fixture_free(fixture *fx) {
    for (int i = 0; i < fx->n_t; i++) free(fx->t[i].v);
    json_decref(fx->config);
    DIR *d = opendir(fx->dir);
    MP_ASSERT(d);
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", fx->dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    MP_ASSERT(rmdir(fx->dir) == 0);
}

static mp_model *load_ok(const fixture *fx, int use_mmap) {
    mp_model_config cfg = mp_model_default_config();
    cfg.use_mmap = use_mmap;
    mp_model *m = (mp_model *)0x1;
    MP_ASSERT_OK(mp_model_load(fx->dir, &cfg, &m));
    MP_ASSERT(m != NULL);
    return m;
}

/* Load must fail with st; the error must name `file` and `what` (tensor or field). */
static void load_fails(const fixture *fx, mp_status want, const char *file, const char *what) {
    mp_model *m = (mp_model *)0x1;
    mp_status st = mp_model_load(fx->dir, NULL, &m);
    MP_ASSERT_STATUS(st, want);
    MP_ASSERT(m == NULL);
    const char *e = mp_last_error();
    if (!strstr(e, file) || (what && !strstr(e, what)))
        MP_FAILF("error \"%s\" should name \"%s\" and \"%s\"", e, file, what ? what : "");
    if (!strstr(e, fx->dir)) MP_FAILF("error \"%s\" should give the directory %s", e, fx->dir);
}

/* ---- value checks -------------------------------------------------------------------------------- */

static int in_map(const mp_model *m, const void *p) {
    return m->map && (const char *)p >= (const char *)m->map && (const char *)p < (const char *)m->map + m->map_size;
}

/* Tolerance of a value stored in dtype dt. */
static double tol_for(const char *dt, double v) {
    if (!strcmp(dt, "F16")) return fabs(v) * ldexp(1, -11) + ldexp(1, -24);
    if (!strcmp(dt, "BF16")) return fabs(v) * ldexp(1, -8);
    return 0;
}

static void check_vec(fixture *fx, const float *got, const char *name) {
    tensor *t = find_t(fx, name);
    if (!t) MP_FAILF("fixture has no %s", name);
    MP_ASSERT(got != NULL);
    for (size_t i = 0; i < t->n; i++) MP_ASSERT_NEAR(got[i], t->v[i], tol_for(dtype_of(fx, t), t->v[i]));
}

/* Every tensor of the model against the fixture: plain ones element by element, conv weights
 * through the [c_out][k][c_in] reordering, the positional conv through its weight norm computed
 * here in double precision. */
static void check_all_values(fixture *fx, const mp_model *m, const char *p) {
    char n[200];
    for (int l = 0; l < 2; l++) {
        const mp__conv_layer *c = &m->conv[l];
        MP_ASSERT_EQ(c->c_in, l ? conv_dim[l - 1] : 1);
        MP_ASSERT_EQ(c->c_out, conv_dim[l]);
        MP_ASSERT_EQ(c->kernel, conv_kernel[l]);
        MP_ASSERT_EQ(c->stride, conv_stride[l]);
        snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.conv.weight", p, l);
        tensor *t = find_t(fx, n);
        for (int o = 0; o < c->c_out; o++)
            for (int i = 0; i < c->c_in; i++)
                for (int k = 0; k < c->kernel; k++) {
                    float want = t->v[(o * c->c_in + i) * c->kernel + k];
                    MP_ASSERT_NEAR(c->w[(o * c->kernel + k) * c->c_in + i], want, tol_for(dtype_of(fx, t), want));
                }
        if (m->hp.conv_bias) {
            snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.conv.bias", p, l), check_vec(fx, c->b, n);
        } else {
            MP_ASSERT(c->b == NULL);
        }
        if (l == 0 || !m->hp.group_norm) {
            snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.layer_norm.weight", p, l);
            check_vec(fx, c->norm_w, n);
            snprintf(n, sizeof n, "%sfeature_extractor.conv_layers.%d.layer_norm.bias", p, l);
            check_vec(fx, c->norm_b, n);
        } else {
            MP_ASSERT(c->norm_w == NULL && c->norm_b == NULL);
        }
    }
    snprintf(n, sizeof n, "%sfeature_projection.layer_norm.weight", p), check_vec(fx, m->fp_ln_w, n);
    snprintf(n, sizeof n, "%sfeature_projection.layer_norm.bias", p), check_vec(fx, m->fp_ln_b, n);
    snprintf(n, sizeof n, "%sfeature_projection.projection.weight", p), check_vec(fx, m->fp_w, n);
    snprintf(n, sizeof n, "%sfeature_projection.projection.bias", p), check_vec(fx, m->fp_b, n);
    snprintf(n, sizeof n, "%sencoder.pos_conv_embed.conv.bias", p), check_vec(fx, m->pos_b, n);
    snprintf(n, sizeof n, "%sencoder.layer_norm.weight", p), check_vec(fx, m->enc_ln_w, n);
    snprintf(n, sizeof n, "%sencoder.layer_norm.bias", p), check_vec(fx, m->enc_ln_b, n);
    for (int l = 0; l < NL; l++) {
        const mp__enc_layer *e = &m->layers[l];
        struct { const float *p; const char *s; } fields[] = {
            {e->q_w, "attention.q_proj.weight"}, {e->q_b, "attention.q_proj.bias"},
            {e->k_w, "attention.k_proj.weight"}, {e->k_b, "attention.k_proj.bias"},
            {e->v_w, "attention.v_proj.weight"}, {e->v_b, "attention.v_proj.bias"},
            {e->o_w, "attention.out_proj.weight"}, {e->o_b, "attention.out_proj.bias"},
            {e->ln1_w, "layer_norm.weight"}, {e->ln1_b, "layer_norm.bias"},
            {e->ff1_w, "feed_forward.intermediate_dense.weight"}, {e->ff1_b, "feed_forward.intermediate_dense.bias"},
            {e->ff2_w, "feed_forward.output_dense.weight"}, {e->ff2_b, "feed_forward.output_dense.bias"},
            {e->ln2_w, "final_layer_norm.weight"}, {e->ln2_b, "final_layer_norm.bias"},
        };
        for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++) {
            snprintf(n, sizeof n, "%sencoder.layers.%d.%s", p, l, fields[j].s);
            check_vec(fx, fields[j].p, n);
        }
    }
    check_vec(fx, m->lm_w, "lm_head.weight");
    check_vec(fx, m->lm_b, "lm_head.bias");

    /* pos conv: w[o][i][k] = g[k] v[o][i][k] / ||v[:,:,k]||, stored at [o][k][i] */
    snprintf(n, sizeof n, "%sencoder.pos_conv_embed.conv.weight", p);
    tensor *plain = find_t(fx, n);
    snprintf(n, sizeof n, "%sencoder.pos_conv_embed.conv.weight_g", p);
    tensor *g = find_t(fx, n);
    snprintf(n, sizeof n, "%sencoder.pos_conv_embed.conv.parametrizations.weight.original0", p);
    if (!g) g = find_t(fx, n);
    snprintf(n, sizeof n, "%sencoder.pos_conv_embed.conv.%s", p,
             g && strstr(g->name, "original0") ? "parametrizations.weight.original1" : "weight_v");
    tensor *v = plain ? plain : find_t(fx, n);
    MP_ASSERT(v && (plain || g));
    double tol = strcmp(fx->dtype, "F32") ? (strcmp(fx->dtype, "F16") ? 1e-2 : 2e-3) : 1e-6;
    for (int k = 0; k < PK; k++) {
        double s = 0;
        for (int j = 0; j < H * CG; j++) s += (double)v->v[j * PK + k] * v->v[j * PK + k];
        for (int o = 0; o < H; o++)
            for (int i = 0; i < CG; i++) {
                double want = plain ? v->v[(o * CG + i) * PK + k] : g->v[k] * v->v[(o * CG + i) * PK + k] / sqrt(s);
                MP_ASSERT_NEAR(m->pos_w[(o * PK + k) * CG + i], want, tol * (1 + fabs(want)));
            }
    }
}

/* Same tensors bit for bit (two loads of one file). */
static void check_same(const mp_model *a, const mp_model *b) {
#define SAME(pa, pb, n) MP_ASSERT(memcmp((pa), (pb), (size_t)(n) * sizeof(float)) == 0)
    for (int l = 0; l < a->hp.n_conv; l++) {
        SAME(a->conv[l].w, b->conv[l].w, a->conv[l].c_out * a->conv[l].c_in * a->conv[l].kernel);
        if (a->conv[l].norm_w) SAME(a->conv[l].norm_w, b->conv[l].norm_w, a->conv[l].c_out);
    }
    SAME(a->pos_w, b->pos_w, H * CG * PK);
    SAME(a->fp_w, b->fp_w, H * conv_dim[1]);
    for (int l = 0; l < NL; l++) {
        SAME(a->layers[l].q_w, b->layers[l].q_w, H * H);
        SAME(a->layers[l].ff2_w, b->layers[l].ff2_w, H * FF);
        SAME(a->layers[l].ln2_b, b->layers[l].ln2_b, H);
    }
    SAME(a->lm_w, b->lm_w, V * H);
#undef SAME
}

/* ---- valid models ---------------------------------------------------------------------------------- */

/* Log capture: the loader reports through the callback only. */
static char log_seen[4096];
static void log_fn(mp_log_level level, const char *msg, void *user) {
    size_t n = strlen(log_seen);
    snprintf(log_seen + n, sizeof log_seen - n, "%d:%s\n", (int)level, msg);
}

static void test_valid_f32(void) {
    fixture fx;
    fixture_init(&fx, &(opts){.training_extras = 1});
    fixture_write(&fx);
    log_seen[0] = '\0';
    mp_set_log_callback(log_fn, NULL);
    mp_model *m = load_ok(&fx, 1);
    mp_set_log_callback(NULL, NULL);
    /* training-only tensors are skipped with a DEBUG note each */
    MP_ASSERT(strstr(log_seen, "0:") && strstr(log_seen, "wav2vec2.masked_spec_embed"));
    MP_ASSERT(strstr(log_seen, "quantizer.codevectors") && strstr(log_seen, "project_q.weight"));
    mp_model_info info;
    MP_ASSERT_OK(mp_model_get_info(m, &info));
    MP_ASSERT_STR_EQ(info.architecture, "Wav2Vec2ForCTC");
    MP_ASSERT_STR_EQ(info.dtype, "F32");
    MP_ASSERT_STR_EQ(info.path, fx.dir);
    MP_ASSERT_EQ(info.vocab_size, V);
    MP_ASSERT_EQ(info.hidden_size, H);
    MP_ASSERT_EQ(info.n_layers, NL);
    MP_ASSERT_EQ(info.n_heads, NH);
    MP_ASSERT_EQ(info.intermediate_size, FF);
    MP_ASSERT_EQ(info.n_conv_layers, 2);
    MP_ASSERT_EQ(info.frame_stride, 4);
    MP_ASSERT_EQ(info.receptive_field, 5); /* (1-1)*2+2 = 2, then (2-1)*2+3 = 5 */
    MP_ASSERT_EQ(info.sample_rate, 16000);
    MP_ASSERT_EQ(info.stable_layer_norm, 0);
    MP_ASSERT_EQ(info.group_norm, 1);
    /* masked_spec_embed / quantizer / project_q are ignored, so not counted */
    MP_ASSERT_EQ(info.n_params, fx.n_params_used);
    /* fp32 bytes the engine reads: everything but weight_g (folded into the pos conv weight) */
    MP_ASSERT_EQ(info.weight_bytes, (fx.n_params_used - PK) * 4);
    MP_ASSERT_EQ(m->hp.conv_bias, 0);
    MP_ASSERT_EQ(m->hp.pos_kernel, PK);
    MP_ASSERT_EQ(m->hp.pos_groups, PG);
    MP_ASSERT_EQ(m->hp.feat_act, MP_ACT_GELU);
    MP_ASSERT_EQ(m->hp.hidden_act, MP_ACT_GELU);
    MP_ASSERT_NEAR(m->hp.ln_eps, 1e-5, 1e-12);
    MP_ASSERT_EQ(m->hp.do_normalize, 1);
    /* tokenizer defaults */
    MP_ASSERT_EQ(m->pad_id, 0);
    MP_ASSERT_EQ(m->bos_id, 1);
    MP_ASSERT_EQ(m->eos_id, 2);
    MP_ASSERT_EQ(m->unk_id, 3);
    MP_ASSERT_EQ(m->word_delim_id, 4);
    MP_ASSERT_EQ(m->do_lower_case, 0);
    for (int i = 0; i < V; i++) MP_ASSERT_STR_EQ(mp_model_token(m, i), vocab_tokens[i]);
    MP_ASSERT(mp_model_token(m, V) == NULL);
    MP_ASSERT(mp_model_token(m, -1) == NULL);
    /* zero copy: aligned fp32 linear weights point into the read-only mapping */
    MP_ASSERT(m->map != NULL);
    MP_ASSERT(in_map(m, m->layers[1].q_w));
    MP_ASSERT(in_map(m, m->lm_w));
    MP_ASSERT(!in_map(m, m->conv[1].w)); /* reordered copy */
    MP_ASSERT(!in_map(m, m->pos_w));     /* weight-normed copy */
    check_all_values(&fx, m, "wav2vec2.");
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_layer_norm_variant(void) {
    fixture fx;
    fixture_init(&fx, &(opts){.layer_norm = 1, .pos_naming = "param"});
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_EQ(m->hp.group_norm, 0);
    MP_ASSERT_EQ(m->hp.conv_bias, 1);
    MP_ASSERT_EQ(m->hp.stable_ln, 1);
    MP_ASSERT_EQ(m->hp.feat_act, MP_ACT_RELU);
    MP_ASSERT_EQ(m->hp.hidden_act, MP_ACT_GELU_NEW);
    check_all_values(&fx, m, "wav2vec2.");
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_no_mmap(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    mp_model *a = load_ok(&fx, 1), *b = load_ok(&fx, 0);
    MP_ASSERT(b->map == NULL);
    MP_ASSERT(a->layers[0].q_w != b->layers[0].q_w);
    check_same(a, b);
    check_all_values(&fx, b, "wav2vec2.");
    MP_ASSERT_EQ(a->n_params, b->n_params);
    MP_ASSERT_EQ(a->weight_bytes, b->weight_bytes);
    mp_model_free(a);
    mp_model_free(b);
    fixture_free(&fx);
}

static void test_misaligned_f32(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fx.misalign = 1;
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    /* data section starts at an odd offset: fp32 tensors are copied into aligned blocks */
    MP_ASSERT(!in_map(m, m->layers[1].q_w));
    MP_ASSERT(((uintptr_t)m->layers[1].q_w & 3) == 0);
    check_all_values(&fx, m, "wav2vec2.");
    mp_model_free(m);
    fixture_free(&fx);
}

static void dtype_case(const char *dt) {
    fixture fx;
    fixture_init(&fx, &(opts){.layer_norm = 1});
    fx.dtype = dt;
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_STR_EQ(m->dtype, dt);
    MP_ASSERT(!in_map(m, m->layers[0].q_w)); /* converted once at load */
    check_all_values(&fx, m, "wav2vec2.");
    mp_model_free(m);
    fixture_free(&fx);
}
static void test_f16(void) { dtype_case("F16"); }
static void test_bf16(void) { dtype_case("BF16"); }

static void test_mixed_dtype(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    find_t(&fx, "lm_head.weight")->dtype = "BF16";
    tensor *b = find_t(&fx, "lm_head.bias");
    b->dtype = "F16";
    /* exact fp16 decodes: 1, -2, max, smallest subnormal, a subnormal, +0, -0 */
    const float special[V] = {1.0f, -2.0f, 65504.0f, ldexpf(1, -24), ldexpf(1, -20), 0.0f, -0.0f};
    memcpy(b->v, special, sizeof special);
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_STR_EQ(m->dtype, "mixed");
    MP_ASSERT(in_map(m, m->layers[0].q_w));
    for (int i = 0; i < V; i++) MP_ASSERT(memcmp(&m->lm_b[i], &special[i], sizeof(float)) == 0);
    check_all_values(&fx, m, "wav2vec2.");
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_weight_norm_namings(void) {
    const char *names[3] = {"gv", "param", "plain"};
    fixture fx[3];
    mp_model *m[3];
    for (int i = 0; i < 3; i++) {
        fixture_init(&fx[i], &(opts){.pos_naming = names[i]});
        fixture_write(&fx[i]);
        m[i] = load_ok(&fx[i], 1);
        check_all_values(&fx[i], m[i], "wav2vec2.");
    }
    MP_ASSERT(memcmp(m[0]->pos_w, m[1]->pos_w, H * CG * PK * sizeof(float)) == 0);
    for (int j = 0; j < H * CG * PK; j++) MP_ASSERT_NEAR(m[2]->pos_w[j], m[0]->pos_w[j], 1e-6);
    MP_ASSERT_EQ(m[0]->n_params, m[1]->n_params);
    MP_ASSERT_EQ(m[2]->n_params, m[0]->n_params - PK); /* no weight_g */
    for (int i = 0; i < 3; i++) {
        mp_model_free(m[i]);
        fixture_free(&fx[i]);
    }
}

static void test_hubert(void) {
    fixture fx;
    fixture_init(&fx, &(opts){.hubert = 1, .training_extras = 1});
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_STR_EQ(m->arch, "HubertForCTC");
    check_all_values(&fx, m, "hubert.");
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_utf8_vocab(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    /* Vietnamese letters (2- and 3-byte UTF-8), a gap at id 5, special tokens renamed */
    static const char *const toks[V] = {"[PAD]", "ấ", "ư", "[UNK]", "|", NULL, "ễ"};
    json_t *voc = json_object();
    for (int i = 0; i < V; i++)
        if (toks[i]) json_object_set_new(voc, toks[i], json_integer(i));
    write_json(&fx, "vocab.json", voc);
    json_decref(voc);
    write_text(&fx, "tokenizer_config.json",
               "{\"do_lower_case\": true, \"word_delimiter_token\": \"|\", \"bos_token\": null,"
               " \"pad_token\": {\"content\": \"[PAD]\", \"lstrip\": false}, \"unk_token\": \"<unk>\"}");
    write_text(&fx, "special_tokens_map.json", "{\"unk_token\": \"[UNK]\", \"eos_token\": \"</s>\"}");
    write_text(&fx, "added_tokens.json", "{\"đ\": 5}");
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_STR_EQ(mp_model_token(m, 1), "\xe1\xba\xa5"); /* ấ U+1EA5 */
    MP_ASSERT_STR_EQ(mp_model_token(m, 2), "\xc6\xb0");     /* ư U+01B0 */
    MP_ASSERT_STR_EQ(mp_model_token(m, 5), "\xc4\x91");     /* đ U+0111 from added_tokens.json */
    MP_ASSERT_STR_EQ(mp_model_token(m, 6), "ễ");
    MP_ASSERT_EQ(m->pad_id, 0);
    MP_ASSERT_EQ(m->unk_id, 3); /* special_tokens_map.json wins over tokenizer_config.json */
    MP_ASSERT_EQ(m->word_delim_id, 4);
    MP_ASSERT_EQ(m->bos_id, -1);
    MP_ASSERT_EQ(m->eos_id, -1);
    MP_ASSERT_EQ(m->do_lower_case, 1);
    mp_model_free(m);

    /* without added_tokens.json the gap decodes to "" */
    char p[200];
    snprintf(p, sizeof p, "%s/added_tokens.json", fx.dir);
    unlink(p);
    m = load_ok(&fx, 1);
    MP_ASSERT_STR_EQ(mp_model_token(m, 5), "");
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_preprocessor(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    write_text(&fx, "preprocessor_config.json",
               "{\"do_normalize\": false, \"sampling_rate\": 8000.0, \"feature_size\": 1}");
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_EQ(m->hp.do_normalize, 0);
    MP_ASSERT_EQ(m->hp.sample_rate, 8000);
    mp_model_free(m);
    char p[200];
    snprintf(p, sizeof p, "%s/preprocessor_config.json", fx.dir);
    unlink(p);
    log_seen[0] = '\0';
    mp_set_log_callback(log_fn, NULL);
    m = load_ok(&fx, 1); /* absent: defaults, said at INFO */
    mp_set_log_callback(NULL, NULL);
    MP_ASSERT(strstr(log_seen, "1:") && strstr(log_seen, "preprocessor_config.json: not found"));
    MP_ASSERT_EQ(m->hp.do_normalize, 1);
    MP_ASSERT_EQ(m->hp.sample_rate, 16000);
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_config_defaults(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    /* absent fields take Wav2Vec2Config's defaults (the model's tensors match those) */
    static const char *const drop[] = {"feat_extract_norm", "feat_extract_activation", "hidden_act",
                                       "do_stable_layer_norm", "conv_bias", "layer_norm_eps", "pad_token_id",
                                       "model_type"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) json_object_del(fx.config, drop[i]);
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_EQ(m->hp.group_norm, 1);
    MP_ASSERT_EQ(m->hp.conv_bias, 0);
    MP_ASSERT_EQ(m->hp.stable_ln, 0);
    MP_ASSERT_EQ(m->hp.hidden_act, MP_ACT_GELU);
    MP_ASSERT_NEAR(m->hp.ln_eps, 1e-5, 1e-12);
    mp_model_free(m);
    /* a config without these dims would default to wav2vec2-base (768 hidden): shape errors */
    json_object_del(fx.config, "hidden_size");
    json_object_del(fx.config, "num_attention_heads");
    write_json(&fx, "config.json", fx.config);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "[768,6]");
    fixture_free(&fx);
}

/* lexicon.txt in the directory becomes the model's word list (lexicon.c parses it). */
static void test_lexicon_file(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT(m->lexicon == NULL);
    mp_model_free(m);
    write_text(&fx, "lexicon.txt", "AB\nBA\n");
    m = load_ok(&fx, 1);
    mp_model_info info;
    MP_ASSERT_OK(mp_model_get_info(m, &info));
    MP_ASSERT_EQ(info.has_lexicon, 1);
    mp_model_free(m);
    write_text(&fx, "lexicon.txt", "AB\nQX\n"); /* Q, X: not in the vocabulary */
    load_fails(&fx, MP_ERR_DECODER_FORMAT, "lexicon.txt", NULL);
    fixture_free(&fx);
}

static void test_invalid_args(void) {
    mp_model *m = (mp_model *)0x1;
    MP_ASSERT_STATUS(mp_model_load(NULL, NULL, &m), MP_ERR_INVALID_ARG);
    MP_ASSERT(m == NULL);
    MP_ASSERT_STATUS(mp_model_load("/nonexistent", NULL, NULL), MP_ERR_INVALID_ARG);
    MP_ASSERT_STATUS(mp_model_load("/nonexistent-mp-dir", NULL, &m), MP_ERR_IO);
    MP_ASSERT(strstr(mp_last_error(), "/nonexistent-mp-dir/config.json"));
    mp_model_free(NULL);
}

/* ---- malformed corpus ------------------------------------------------------------------------------- */

/* Rewrite model.safetensors after fixture_write with `len` bytes kept (truncate) */
static void truncate_st(fixture *fx, long len) {
    char p[200];
    snprintf(p, sizeof p, "%s/model.safetensors", fx->dir);
    MP_ASSERT(truncate(p, len) == 0);
}

static long st_header_len(fixture *fx) {
    char p[200];
    snprintf(p, sizeof p, "%s/model.safetensors", fx->dir);
    FILE *f = fopen(p, "rb");
    MP_ASSERT(f);
    uint8_t b[8];
    MP_ASSERT(fread(b, 1, 8, f) == 8);
    fclose(f);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    return (long)h;
}

static void test_bad_truncated(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    long hl = st_header_len(&fx);
    /* inside the data: the last tensors' offsets lie outside what is left */
    truncate_st(&fx, 8 + hl + 64);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "data_offsets");
    /* inside the header */
    truncate_st(&fx, 8 + hl / 2);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "header length");
    /* inside the length prefix */
    truncate_st(&fx, 5);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "truncated");
    truncate_st(&fx, 0);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "truncated");
    fixture_free(&fx);
}

static void test_bad_header_len(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    char p[200];
    snprintf(p, sizeof p, "%s/model.safetensors", fx.dir);
    FILE *f = fopen(p, "r+b");
    MP_ASSERT(f);
    const uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    fwrite(huge, 1, 8, f);
    fclose(f);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "header length");
    fixture_free(&fx);
}

static void edit_offsets_far(json_t *hdr) {
    const json_int_t far = (json_int_t)1 << 40;
    json_object_set_new(json_object_get(hdr, "lm_head.weight"), "data_offsets", json_pack("[I,I]", far, far + V * H * 4));
}
static void edit_offsets_negative(json_t *hdr) {
    json_object_set_new(json_object_get(hdr, "lm_head.bias"), "data_offsets", json_pack("[i,i]", -4, 24));
}
static void edit_offsets_size(json_t *hdr) {
    json_t *o = json_object_get(json_object_get(hdr, "lm_head.bias"), "data_offsets");
    json_array_set_new(o, 1, json_integer(json_integer_value(json_array_get(o, 1)) - 4));
}
static void edit_shape_overflow(json_t *hdr) {
    json_object_set_new(json_object_get(hdr, "lm_head.bias"), "shape",
                        json_pack("[I,I,I]", (json_int_t)1 << 40, (json_int_t)1 << 40, (json_int_t)1 << 40));
}
static void edit_dtype(json_t *hdr) {
    json_object_set_new(json_object_get(hdr, "wav2vec2.encoder.layer_norm.bias"), "dtype", json_string("I64"));
}
static void edit_not_object(json_t *hdr) { json_object_set_new(hdr, "lm_head.bias", json_integer(3)); }

static void header_case(void (*edit)(json_t *), const char *tname, const char *what) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fx.edit_header = edit;
    fixture_write(&fx);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", tname);
    if (what && !strstr(mp_last_error(), what)) MP_FAILF("\"%s\" should mention %s", mp_last_error(), what);
    fixture_free(&fx);
}

static void test_bad_offsets(void) {
    header_case(edit_offsets_far, "lm_head.weight", "data_offsets");
    header_case(edit_offsets_negative, "lm_head.bias", "data_offsets");
    header_case(edit_offsets_size, "lm_head.bias", "data bytes");
    header_case(edit_shape_overflow, "lm_head.bias", "overflow");
    header_case(edit_not_object, "lm_head.bias", "expected an object");
}

static void test_bad_dtype(void) { header_case(edit_dtype, "wav2vec2.encoder.layer_norm.bias", "I64"); }

static void test_bad_shape(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    const char *n = "wav2vec2.encoder.layers.1.attention.k_proj.weight";
    remove_t(&fx, n);
    add_tensor(&fx, n, 2, H, H / 2, 0);
    fixture_write(&fx);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", n);
    MP_ASSERT(strstr(mp_last_error(), "[8,4]") && strstr(mp_last_error(), "[8,8]"));
    fixture_free(&fx);

    fixture_init(&fx, &(opts){0});
    n = "wav2vec2.feature_extractor.conv_layers.1.conv.weight";
    remove_t(&fx, n);
    add_tensor(&fx, n, 3, conv_dim[1], conv_kernel[1], conv_dim[0]); /* [c_out][k][c_in]: wrong order */
    fixture_write(&fx);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", n);
    MP_ASSERT(strstr(mp_last_error(), "[6,2,4]") && strstr(mp_last_error(), "[6,4,2]"));
    fixture_free(&fx);
}

static void test_missing_tensor(void) {
    static const char *const names[] = {"lm_head.bias", "wav2vec2.encoder.layers.1.final_layer_norm.weight",
                                        "wav2vec2.feature_extractor.conv_layers.0.layer_norm.bias",
                                        "wav2vec2.encoder.pos_conv_embed.conv.weight_g"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        fixture fx;
        fixture_init(&fx, &(opts){0});
        remove_t(&fx, names[i]);
        fixture_write(&fx);
        load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", names[i]);
        MP_ASSERT(strstr(mp_last_error(), "missing"));
        fixture_free(&fx);
    }
    /* no positional conv weight under any naming */
    fixture fx;
    fixture_init(&fx, &(opts){0});
    remove_t(&fx, "wav2vec2.encoder.pos_conv_embed.conv.weight_g");
    remove_t(&fx, "wav2vec2.encoder.pos_conv_embed.conv.weight_v");
    fixture_write(&fx);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "wav2vec2.encoder.pos_conv_embed.conv.weight_g");
    fixture_free(&fx);
}

static void test_extra_tensor(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    add_tensor(&fx, "wav2vec2.encoder.layers.0.attention.rel_attn_embed.weight", 2, 4, 2, 0);
    fixture_write(&fx);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors",
               "wav2vec2.encoder.layers.0.attention.rel_attn_embed.weight");
    fixture_free(&fx);
    /* a group-norm model carrying a norm on conv layer 1 is not what config.json describes */
    fixture_init(&fx, &(opts){0});
    add_tensor(&fx, "wav2vec2.feature_extractor.conv_layers.1.layer_norm.weight", 1, conv_dim[1], 0, 0);
    fixture_write(&fx);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "conv_layers.1.layer_norm.weight");
    fixture_free(&fx);
}

static void test_bad_json(void) {
    static const char *const files[] = {"config.json", "preprocessor_config.json", "vocab.json",
                                        "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"};
    static const char *const bodies[] = {"{\"hidden_size\": 8,", "[1, 2]", "{\"a\": 1} trailing", "\xff\xfe{}"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        for (size_t j = 0; j < sizeof bodies / sizeof bodies[0]; j++) {
            fixture fx;
            fixture_init(&fx, &(opts){0});
            fixture_write(&fx);
            write_text(&fx, files[i], bodies[j]);
            load_fails(&fx, MP_ERR_MODEL_FORMAT, files[i], NULL);
            fixture_free(&fx);
        }
    /* the safetensors header itself */
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    char p[200];
    snprintf(p, sizeof p, "%s/model.safetensors", fx.dir);
    FILE *f = fopen(p, "r+b");
    MP_ASSERT(f);
    fseek(f, 8, SEEK_SET);
    fputs("{\"x\":", f);
    fclose(f);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "model.safetensors", "header");
    fixture_free(&fx);
}

/* Set one config.json field (JSON text) and expect an error naming it and `what`. */
static void config_case(const char *field, const char *json_value, const char *what) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    json_error_t err;
    json_t *v = json_loads(json_value, JSON_DECODE_ANY, &err);
    MP_ASSERT(v);
    json_object_set_new(fx.config, field, v);
    fixture_write(&fx);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "config.json", field);
    if (what && !strstr(mp_last_error(), what)) MP_FAILF("\"%s\" should mention %s", mp_last_error(), what);
    fixture_free(&fx);
}

static void test_bad_arch(void) {
    config_case("architectures", "[\"Wav2Vec2ForPreTraining\"]", "Wav2Vec2ForPreTraining");
    config_case("architectures", "[\"Wav2Vec2ConformerForCTC\"]", "Wav2Vec2ConformerForCTC");
    config_case("architectures", "\"Wav2Vec2ForCTC\"", "list");
    config_case("model_type", "\"hubert\"", "Wav2Vec2ForCTC");
    config_case("model_type", "\"data2vec-audio\"", "data2vec-audio");
    /* no architectures: model_type decides */
    fixture fx;
    fixture_init(&fx, &(opts){0});
    json_object_set_new(fx.config, "architectures", json_array());
    fixture_write(&fx);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_STR_EQ(m->arch, "Wav2Vec2ForCTC");
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_bad_activation(void) {
    config_case("hidden_act", "\"mish\"", "mish");
    config_case("feat_extract_activation", "\"tanh\"", "tanh");
    config_case("hidden_act", "7", "string");
}

static void test_bad_heads(void) {
    config_case("num_attention_heads", "3", "does not divide hidden_size 8");
    config_case("num_conv_pos_embedding_groups", "3", "does not divide hidden_size 8");
    config_case("num_attention_heads", "0", "out of range");
}

static void test_bad_fields(void) {
    config_case("hidden_size", "\"8\"", "integer");
    config_case("hidden_size", "8.5", "integer");
    config_case("hidden_size", "-8", "out of range");
    config_case("conv_kernel", "[3]", "lengths");
    config_case("conv_kernel", "[3, \"2\"]", "integer");
    config_case("conv_stride", "[]", "entries");
    config_case("conv_bias", "1", "true or false");
    config_case("feat_extract_norm", "\"batch\"", "batch");
    config_case("layer_norm_eps", "0", "layer_norm_eps");
    config_case("add_adapter", "true", "not supported");
    config_case("adapter_attn_dim", "16", "not supported");
    config_case("vocab_size", "\"7\"", "integer");
}

static void test_bad_vocab(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    write_text(&fx, "vocab.json", "{\"<pad>\": 0, \"A\": 1, \"Z\": 99}");
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "vocab.json", "\"Z\"");
    write_text(&fx, "vocab.json", "{\"<pad>\": 0, \"A\": \"1\"}");
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "vocab.json", "\"A\"");
    write_text(&fx, "vocab.json", "{\"<pad>\": 0, \"A\": 1}");
    write_text(&fx, "added_tokens.json", "{\"B\": 1}");
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "added_tokens.json", "\"B\"");
    write_text(&fx, "added_tokens.json", "{}");
    write_text(&fx, "tokenizer_config.json", "{\"pad_token\": 5}");
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "tokenizer_config.json", "pad_token");
    /* no pad token and pad_token_id outside the vocabulary: no CTC blank */
    write_text(&fx, "tokenizer_config.json", "{}");
    write_text(&fx, "vocab.json", "{\"A\": 1}");
    json_object_set_new(fx.config, "pad_token_id", json_integer(V + 3));
    write_json(&fx, "config.json", fx.config);
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "vocab.json", "<pad>");
    /* ... but a valid pad_token_id is the fallback */
    json_object_set_new(fx.config, "pad_token_id", json_integer(2));
    write_json(&fx, "config.json", fx.config);
    mp_model *m = load_ok(&fx, 1);
    MP_ASSERT_EQ(m->pad_id, 2);
    mp_model_free(m);
    fixture_free(&fx);
}

static void test_bad_preprocessor(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    write_text(&fx, "preprocessor_config.json", "{\"feature_size\": 80}");
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "preprocessor_config.json", "feature_size");
    write_text(&fx, "preprocessor_config.json", "{\"do_normalize\": \"yes\"}");
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "preprocessor_config.json", "do_normalize");
    write_text(&fx, "preprocessor_config.json", "{\"sampling_rate\": 0}");
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "preprocessor_config.json", "sampling_rate");
    fixture_free(&fx);
}

static void test_missing_files(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    char p[200];
    snprintf(p, sizeof p, "%s/vocab.json", fx.dir);
    unlink(p);
    load_fails(&fx, MP_ERR_IO, "vocab.json", NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", fx.dir);
    unlink(p);
    write_text(&fx, "pytorch_model.bin", "x"); /* read when model.safetensors is absent */
    load_fails(&fx, MP_ERR_MODEL_FORMAT, "pytorch_model.bin", "not a PyTorch checkpoint");
    snprintf(p, sizeof p, "%s/pytorch_model.bin", fx.dir);
    unlink(p);
    load_fails(&fx, MP_ERR_IO, "model.safetensors", "pytorch_model.bin");
    snprintf(p, sizeof p, "%s/config.json", fx.dir);
    unlink(p);
    load_fails(&fx, MP_ERR_IO, "config.json", NULL);
    fixture_free(&fx);
}

/* ---- fuzz-ish: random damage to the header must give an error or a model, never a crash --------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void fuzz_file(fixture *fx, const char *file, size_t region, int iters) {
    char p[200];
    snprintf(p, sizeof p, "%s/%s", fx->dir, file);
    FILE *f = fopen(p, "rb");
    MP_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *orig = malloc((size_t)n), *buf = malloc((size_t)n);
    MP_ASSERT(orig && buf && fread(orig, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    if (region == 0 || region > (size_t)n) region = (size_t)n;
    int ok = 0, err = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(buf, orig, (size_t)n);
        size_t len = (size_t)n;
        int kind = (int)(rnd() % 4);
        if (kind == 0) {
            len = rnd() % (size_t)n; /* truncation */
        } else {
            int flips = 1 + (int)(rnd() % 4);
            for (int k = 0; k < flips; k++) {
                size_t at = rnd() % region;
                if (kind == 1) buf[at] ^= (uint8_t)(1u << (rnd() % 8));
                else if (kind == 2) buf[at] = (uint8_t)"0123456789[]{},:\"-e. "[rnd() % 21];
                else buf[at] = (uint8_t)rnd();
            }
        }
        f = fopen(p, "wb");
        MP_ASSERT(f);
        fwrite(buf, 1, len, f);
        fclose(f);
        mp_model *m = NULL;
        mp_status st = mp_model_load(fx->dir, (it & 1) ? NULL : &(mp_model_config){.use_mmap = 0}, &m);
        if (st == MP_OK) {
            MP_ASSERT(m != NULL);
            /* whatever loaded must be self-consistent enough to read every token */
            for (int i = 0; i < m->n_tokens; i++) MP_ASSERT(mp_model_token(m, i) != NULL);
            ok++;
        } else {
            MP_ASSERT(m == NULL);
            MP_ASSERT(mp_last_error()[0] != '\0');
            err++;
        }
        mp_model_free(m);
    }
    f = fopen(p, "wb");
    fwrite(orig, 1, (size_t)n, f);
    fclose(f);
    free(orig);
    free(buf);
    MP_ASSERT(err > 0); /* the damage was real */
    fprintf(stderr, "%s: %d loaded, %d rejected\n", file, ok, err);
}

static void test_fuzz_header(void) {
    fixture fx;
    fixture_init(&fx, &(opts){0});
    fixture_write(&fx);
    fuzz_file(&fx, "model.safetensors", 8 + (size_t)st_header_len(&fx), 1500);
    fuzz_file(&fx, "config.json", 0, 300);
    fuzz_file(&fx, "vocab.json", 0, 200);
    fixture_free(&fx);
}

/* ---- directories written by tools/make_reference.py (the parity engineer), when present ---------- */

static void test_ref_dirs(void) {
    char root[512];
    snprintf(root, sizeof root, "%s/ref", MP_TEST_DATA);
    DIR *d = opendir(root);
    if (!d) MP_SKIP("no %s", root);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char dir[1024], cfg[1100];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        if (access(cfg, F_OK) != 0) continue;
        mp_model *a = NULL, *b = NULL;
        MP_ASSERT_OK(mp_model_load(dir, NULL, &a));
        MP_ASSERT_OK(mp_model_load(dir, &(mp_model_config){.use_mmap = 0}, &b));
        MP_ASSERT_EQ(a->n_params, b->n_params);
        MP_ASSERT(a->n_params > 0 && a->weight_bytes > 0);
        MP_ASSERT(a->pad_id >= 0 && a->pad_id < a->n_tokens);
        const int Hd = a->hp.hidden;
        MP_ASSERT(memcmp(a->lm_w, b->lm_w, (size_t)a->hp.vocab * Hd * sizeof(float)) == 0);
        const size_t n_pos = (size_t)Hd * (Hd / a->hp.pos_groups) * a->hp.pos_kernel;
        MP_ASSERT(memcmp(a->pos_w, b->pos_w, n_pos * sizeof(float)) == 0);
        fprintf(stderr, "%s: %s %s, %llu params\n", e->d_name, a->arch, a->dtype, (unsigned long long)a->n_params);
        mp_model_free(a);
        mp_model_free(b);
        n++;
    }
    closedir(d);
    if (!n) MP_SKIP("no model directories under %s", root);
}

static const mp_test_case cases[] = {
    {"valid_f32", test_valid_f32},
    {"layer_norm_variant", test_layer_norm_variant},
    {"no_mmap", test_no_mmap},
    {"misaligned_f32", test_misaligned_f32},
    {"f16", test_f16},
    {"bf16", test_bf16},
    {"mixed_dtype", test_mixed_dtype},
    {"weight_norm_namings", test_weight_norm_namings},
    {"hubert", test_hubert},
    {"utf8_vocab", test_utf8_vocab},
    {"preprocessor", test_preprocessor},
    {"config_defaults", test_config_defaults},
    {"lexicon_file", test_lexicon_file},
    {"invalid_args", test_invalid_args},
    {"bad_truncated", test_bad_truncated},
    {"bad_header_len", test_bad_header_len},
    {"bad_offsets", test_bad_offsets},
    {"bad_dtype", test_bad_dtype},
    {"bad_shape", test_bad_shape},
    {"missing_tensor", test_missing_tensor},
    {"extra_tensor", test_extra_tensor},
    {"bad_json", test_bad_json},
    {"bad_arch", test_bad_arch},
    {"bad_activation", test_bad_activation},
    {"bad_heads", test_bad_heads},
    {"bad_fields", test_bad_fields},
    {"bad_vocab", test_bad_vocab},
    {"bad_preprocessor", test_bad_preprocessor},
    {"missing_files", test_missing_files},
    {"fuzz_header", test_fuzz_header},
    {"ref_dirs", test_ref_dirs},
};

MP_TEST_MAIN(cases)
