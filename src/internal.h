/*
 * internal.h - what the library's modules share and nobody outside sees.
 *
 * Module map: one folder per module; calls go one way, left to right depends on nothing to its
 * right:   core  <-  engine  <-  decode  <-  pool          (audio: core <- audio <- pool)
 *   core/    error.c    status text, thread-local error detail, log callback
 *            clock.c    monotonic clock, online cores
 *            json.c     small JSON files, typed fields with errors naming file and key
 *            result.c   mp_result
 *            samples.c  a growable sample buffer (stream and live windows)
 *   engine/  model.c    the model's load order, info, ownership (engine/loader.h: the steps)
 *            config.c   config.json, preprocessor_config.json -> hyper-parameters
 *            tensors.c  the tensor table (engine/tensors.h): the seam between weight formats
 *            safetensors.c  model.safetensors -> tensor table (mmap, header validation)
 *            weights.c  tensor table -> layers (shapes, fp32 conversion, conv reorder, weight norm)
 *            tokenizer.c  vocab.json and special-token files -> vocabulary
 *            arch.c     named random architectures (mp_model_create_random)
 *            w2v2.c     the forward pass (mp__forward) and per-worker scratch (mp__state)
 *            kernels.c  elementwise kernels (runtime ISA dispatch) and the fp32 GEMM backend (engine/kernels.h)
 *            quant.c    the int8 path: weights quantized at load, int8 GEMMs (oneDNN)
 *   audio/   audio.c    decoding files (libsndfile, opencore-amrnb), resampling (soxr)
 *   decode/  dispatch.c request defaults, greedy or beam per request (mp__decoder_*)
 *            greedy.c   greedy CTC decoding
 *            beam.c     prefix beam search with lexicon, hotwords and LM
 *            emit.c     label runs -> text and words, shared by greedy and beam (decode/emit.h)
 *            lexicon.c  word lists and their token trie;  lm.c: ARPA n-gram model
 *   pool/    model-dir.c  mp_model_load / mp_model_free: engine network + decode word list
 *            pool.c     workers, FIFO leases, statistics
 *            transcribe.c  one request on one worker: resample, chunk, forward, decode
 *            chunker.c  the HuggingFace pipeline's chunking, shared by requests and streams
 *            stream.c   mp_stream / mp_pool_transcribe_file: chunk-at-a-time, a lease per chunk
 * Decode reads the engine's model (vocabulary, frame stride) but never calls into loading or the
 * forward pass; only pool/ joins modules (model-dir.c joins engine and decode).
 */
#ifndef MP_INTERNAL_H
#define MP_INTERNAL_H

#include "modelpool.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#  define MP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define MP_PRINTF(a, b)
#endif

/* ---- core/error.c ---------------------------------------------------------------------------- */

/* Record the thread-local detail for mp_last_error() and return st, so callers can write
 * `return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: shape ...", path, name);` */
mp_status mp__fail(mp_status st, const char *fmt, ...) MP_PRINTF(2, 3);
void mp__clear_error(void);
/* Send a message to the user's log callback, if any. Never prints. */
void mp__log(mp_log_level level, const char *fmt, ...) MP_PRINTF(2, 3);

/* ---- core/clock.c ---------------------------------------------------------------------------- */

double mp__now_s(void);        /* monotonic clock, seconds */
int mp__online_cores(void);

/* ---- core/samples.c ------------------------------------------------------------------------- */

/* Append x[0..n) to *buf (holding *n_buf of *cap floats; an empty buffer starts at first_cap and
 * doubles). MP_ERR_NOMEM names `who`; the buffer is unchanged then. */
mp_status mp__samples_append(float **buf, size_t *n_buf, size_t *cap, size_t first_cap, const float *x, size_t n,
                             const char *who);

/* ---- core/json.c: small JSON files and typed fields (errors name the file and the key) ------- */

struct json_t; /* jansson's json_t */

/* dir + "/" + name, malloc'ed; NULL when out of memory. */
char *mp__path_join(const char *dir, const char *name);
/* Parse a file whose top level must be an object. Missing optional file: MP_OK, *out = NULL;
 * missing required file: MP_ERR_IO. Bad JSON or too large: MP_ERR_MODEL_FORMAT. */
mp_status mp__json_load(const char *path, int optional, struct json_t **out);
const char *mp__json_kind(const struct json_t *v); /* "object", "integer", ... */
/* Field `key` of object o: absent or null gives def; a wrong type or a value outside [lo, hi] is
 * MP_ERR_MODEL_FORMAT "file: key: ...". Integers also accept integral reals (16000.0). */
mp_status mp__json_int(const char *file, const struct json_t *o, const char *key, long long def, long long lo,
                       long long hi, int *out);
mp_status mp__json_bool(const char *file, const struct json_t *o, const char *key, int def, int *out);
mp_status mp__json_str(const char *file, const struct json_t *o, const char *key, const char *def,
                       const char **out);
mp_status mp__json_real(const char *file, const struct json_t *o, const char *key, double def, double *out);

/* ---- core/result.c --------------------------------------------------------------------------- */

struct mp_result {
    char *text;
    mp_word *words;
    char **word_strs;         /* owned copies behind words[i].word */
    size_t n_words, cap_words;
    double duration_s;
    float *logits;            /* [n_frames][n_vocab] when kept */
    int n_frames, n_vocab;
};

mp_result *mp__result_new(void);
/* Append a word (copied: len bytes of w). */
mp_status mp__result_add_word(mp_result *r, const char *w, size_t len, double start_s, double end_s,
                              float confidence);
/* Set the text (copied). */
mp_status mp__result_set_text(mp_result *r, const char *text, size_t len);

/* ---- engine/model.c: the model (loaded by engine/, read by every module) --------------------- */

#define MP_MAX_CONV 16

typedef enum mp__act { MP_ACT_GELU = 0, MP_ACT_GELU_NEW, MP_ACT_RELU, MP_ACT_SWISH } mp__act;

/* Hyper-parameters from config.json / preprocessor_config.json. */
typedef struct mp__hparams {
    int n_conv;
    int conv_dim[MP_MAX_CONV], conv_kernel[MP_MAX_CONV], conv_stride[MP_MAX_CONV];
    int conv_bias;           /* conv layers carry a bias */
    int group_norm;          /* feat_extract_norm "group": GroupNorm(C, C) on conv layer 0 only;
                                else "layer": LayerNorm over channels after every conv layer */
    mp__act feat_act;        /* feat_extract_activation */
    int hidden;              /* hidden_size H */
    int n_heads;
    int n_layers;
    int intermediate;        /* intermediate_size I */
    mp__act hidden_act;
    float ln_eps;            /* layer_norm_eps (transformer and feature projection) */
    int stable_ln;           /* do_stable_layer_norm */
    int pos_kernel;          /* num_conv_pos_embeddings */
    int pos_groups;          /* num_conv_pos_embedding_groups */
    int vocab;               /* vocab_size == lm_head rows */
    int do_normalize;        /* preprocessor do_normalize */
    int sample_rate;         /* preprocessor sampling_rate */
} mp__hparams;

/* One feature-extractor conv layer. Activations are time-major [T][C]. */
typedef struct mp__conv_layer {
    int c_in, c_out, kernel, stride;
    const float *w;          /* [c_out][kernel][c_in]: reordered at load from HF's [c_out][c_in][kernel]
                                so that `kernel` consecutive input rows form one GEMM row (im2col) */
    const float *b;          /* [c_out] or NULL */
    const float *norm_w;     /* [c_out] GroupNorm (layer 0, group mode) or LayerNorm affine, or NULL */
    const float *norm_b;
} mp__conv_layer;

/* One transformer layer; linear weights keep HF's [out][in] row-major layout (used as B^T). */
typedef struct mp__enc_layer {
    const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [H][H], [H] */
    const float *o_w, *o_b;                          /* [H][H], [H] */
    const float *ln1_w, *ln1_b;                      /* "layer_norm" [H] */
    const float *ff1_w, *ff1_b;                      /* intermediate_dense [I][H], [I] */
    const float *ff2_w, *ff2_b;                      /* output_dense [H][I], [H] */
    const float *ln2_w, *ln2_b;                      /* "final_layer_norm" [H] */
} mp__enc_layer;

typedef struct mp__decoding_defaults mp__decoding_defaults; /* decode/defaults.c */

struct mp_model {
    mp__hparams hp;
    mp__conv_layer conv[MP_MAX_CONV];
    const float *fp_ln_w, *fp_ln_b;   /* feature_projection.layer_norm [C_last] */
    const float *fp_w, *fp_b;         /* feature_projection.projection [H][C_last], [H] */
    const float *pos_w;               /* pos conv, weight norm applied at load, reordered to
                                         [groups][H/groups out][pos_kernel][H/groups in] */
    const float *pos_b;               /* [H] */
    const float *enc_ln_w, *enc_ln_b; /* encoder.layer_norm [H] */
    mp__enc_layer *layers;            /* [n_layers] */
    const float *lm_w, *lm_b;         /* lm_head [V][H], [V] */

    /* tokenizer (Wav2Vec2CTCTokenizer) */
    char **tokens;                    /* [vocab] UTF-8, owned; id -> string */
    int n_tokens;
    int pad_id;                       /* CTC blank */
    int word_delim_id;                /* "|" or -1 */
    int unk_id, bos_id, eos_id;       /* -1 when absent */
    int do_lower_case;                /* tokenizer_config do_lower_case: lowercase output text */

    /* storage: fp32 tensors either point into the weight file's bytes or into owned blocks */
    struct mp__tensors *weights;      /* the weight file's tensor table (engine/tensors.h), owning
                                         its mapping or copy; NULL for random models */
    const void *map;                  /* that file's read-only mapping, or NULL (read into memory) */
    size_t map_size;
    void **owned;                     /* blocks to free() at mp_model_free */
    size_t n_owned, cap_owned;

    char *path;                       /* model directory, "" when random */
    char arch[32];                    /* "Wav2Vec2ForCTC" / "HubertForCTC" */
    char dtype[8];                    /* "F32" / "F16" / "BF16" / "mixed" */
    uint64_t n_params;
    uint64_t weight_bytes;

    /* the directory's decoding resources: loaded and freed by pool/model-dir.c with decode's code */
    mp_lexicon *lexicon;              /* lexicon.txt / words.txt, or NULL; owned */
    mp__decoding_defaults *decoding;  /* decoding.json, or NULL; owned */

    char random_arch[16];             /* mp_model_create_random() arch, "" when loaded from files */
    uint64_t random_seed;             /* ... and its seed, so a pool can build identical copies */
    char language[32];                /* the vocabulary chosen from a per-language vocab.json, or "" */

    struct mp__qmodel *quant;         /* int8 weights (engine/quant.c), or NULL for fp32 */
    struct mp__pmodel *packed;        /* fp32 linears pre-packed for oneDNN (engine/prepack.c), or NULL */
};

/* The network and tokenizer of a HuggingFace directory (engine/model.c): mp_model_load() without
 * the directory's decoding resources, which pool/model-dir.c adds. */
mp_status mp__model_load_network(const char *dir, const mp_model_config *cfg, mp_model **out);
/* Free what the engine owns in m (weights, tokens, blocks); not the decoding resources. */
void mp__model_destroy(mp_model *m);

/* Allocate a block owned by the model (freed by mp_model_free); NULL on failure. */
float *mp__model_alloc(mp_model *m, size_t n_floats);

/* Number of output frames for n input samples (0 if too short for the receptive field). */
size_t mp__model_n_frames(const mp_model *m, size_t n_samples);
/* Samples per frame (product of strides) and receptive field in samples. */
int mp__model_stride(const mp_model *m);
int mp__model_receptive_field(const mp_model *m);

/* engine/quant.c: quantize the model's big weights to int8 once (mp_model_config.dtype
 * MP_DTYPE_INT8), releasing their fp32 pages; conv_mask selects conv layers (bit l) and the
 * positional conv (MP__QUANT_POS); -1 = the default set. mp__model_quant_free is called by
 * mp__model_destroy. */
#define MP__QUANT_POS (1 << 30)
mp_status mp__model_quantize(mp_model *m, int conv_mask);
/* mp_model_config.dtype at load: checks the value, quantizes for MP_DTYPE_INT8. */
mp_status mp__model_apply_dtype(mp_model *m, int dtype);
void mp__model_quant_free(mp_model *m);
/* engine/prepack.c: the fp32 linear weights in oneDNN's 1x1-convolution layout (AVX2, AVX-512), made at
 * load: beside the plain weights for small models, in their place for big ones (see there). Not
 * an error when it cannot (no oneDNN, no AVX2): m->packed stays NULL and MP_OK. An error
 * (MP_ERR_NOMEM) only when memory ran out after plain weights were released: the model is then
 * unusable. Freed by mp__model_destroy and by mp__model_quantize. */
mp_status mp__model_prepack(mp_model *m);
void mp__model_prepack_free(mp_model *m);

/* ---- engine/w2v2.c: forward pass ------------------------------------------------------------- */

/* Per-worker scratch. Grown to the largest input seen; never shared. */
typedef struct mp__state mp__state;

mp_status mp__state_create(const mp_model *m, mp__state **out);
void mp__state_free(mp__state *st);
size_t mp__state_bytes(const mp__state *st);
/* Final conv frames per streaming block of the feature extractor (default 32; <= 0 restores it).
 * Results do not depend on it beyond float rounding; for tests and tuning. */
void mp__state_set_conv_block(mp__state *st, int frames);

/* Run the network on n mono samples at the model's rate (raw, un-normalized: do_normalize is
 * applied here over these samples, as Wav2Vec2FeatureExtractor does per call). Writes
 * logits [mp__model_n_frames(m, n)][vocab] to `logits` (caller-allocated). */
mp_status mp__forward(const mp_model *m, mp__state *st, const float *pcm, size_t n, float *logits);
/* Same over feature-extractor output (already normalized when do_normalize): not normalized again. */
mp_status mp__forward_values(const mp_model *m, mp__state *st, const float *values, size_t n, float *logits);

/* Input statistics a forward pass takes from a longer span of audio than its own input (a live
 * stream's audio so far, as an offline run normalizes over its whole input). Raw (un-normalized)
 * sums: samples for do_normalize's mean and variance, and conv layer 0's input patches (rows
 * r * stride .. r * stride + k0 - 1 of the span) for its GroupNorm's per-channel mean and
 * variance. */
typedef struct mp__input_stats {
    double n, s1, s2; /* samples, sum of x, sum of x^2 */
    double rows;      /* patches */
    double *p1, *p2;  /* [k0] sums of each tap, [k0][k0] sums of tap products (upper triangle) */
} mp__input_stats;
/* Add the samples [0, n) of pcm to *s, and its patches that start before n_rows_max rows
 * (patches need k0 samples: pass (n - k0) / stride + 1 for all that fit). */
void mp__input_stats_add(const mp_model *m, mp__input_stats *s, const float *pcm, size_t n, size_t n_rows);
/* mp__forward normalized with stats (do_normalize and GroupNorm) instead of pcm's own statistics;
 * NULL stats: mp__forward. */
mp_status mp__forward_stats(const mp_model *m, mp__state *st, const float *pcm, size_t n,
                            const mp__input_stats *stats, float *logits);
/* mp__forward_stats in two halves, for a caller that keeps features of audio it has seen (a live
 * stream): the feature encoder (conv stack and feature projection) into feat [T][hidden], frame
 * t a function of pcm[t * stride, t * stride + rf) and the normalization statistics alone; then
 * the rest (positional conv, transformer, CTC head) from any T consecutive frames of features
 * into logits [T][vocab]. Both halves of one input give mp__forward_stats's logits (up to float
 * rounding: the conv blocking follows the input length). */
mp_status mp__forward_features(const mp_model *m, mp__state *st, const float *pcm, size_t n,
                               const mp__input_stats *stats, float *feat);
mp_status mp__forward_encoder(const mp_model *m, mp__state *st, const float *feat, size_t T, float *logits);
/* How much features computed under statistics b would change under a (0: not at all; see w2v2.c:
 * the largest relative change of a conv-0 GroupNorm channel's mean or deviation). */
double mp__input_stats_drift(const mp_model *m, const mp__input_stats *a, const mp__input_stats *b);

/* Process-wide BLAS threads (OpenBLAS's setting is global). */
void mp__blas_set_threads(int n);
int mp__blas_get_threads(void);

/* ---- decode/: dispatch.c (mp__decoder_*), greedy.c, beam.c, emit.c, lexicon.c, lm.c ---------- */

/* Incremental decoder: logits are fed in frame order, any number of frames per call, so long
 * streams decode with bounded memory. Frame f spans [f, f+1) * stride / sample_rate seconds. */
typedef struct mp__decoder mp__decoder;

mp_status mp__decoder_create(const mp_model *m, const mp_request_config *req, mp__decoder **out);
mp_status mp__decoder_feed(mp__decoder *d, const float *logits, int n_frames);
/* Write text and words to res. */
mp_status mp__decoder_finish(mp__decoder *d, mp_result *res);
/* The best transcript of what was fed so far, into res; the decoder goes on (feed, finish) as if
 * not called. Greedy: a prefix of the final text. Beam: the current best, which may still change. */
mp_status mp__decoder_peek(mp__decoder *d, mp_result *res);
void mp__decoder_free(mp__decoder *d);

/* Greedy decoding and beam search behind mp__decoder_* (greedy.c, beam.c); same contract as the
 * mp__decoder_* calls. */
typedef struct mp__greedy mp__greedy;
mp_status mp__greedy_create(const mp_model *m, const mp_request_config *req, mp__greedy **out);
mp_status mp__greedy_feed(mp__greedy *g, const float *logits, int n_frames);
mp_status mp__greedy_finish(mp__greedy *g, mp_result *res);
mp_status mp__greedy_peek(const mp__greedy *g, mp_result *res);
void mp__greedy_free(mp__greedy *g);

typedef struct mp__beam mp__beam;
mp_status mp__beam_create(const mp_model *m, const mp_request_config *req, mp__beam **out);
mp_status mp__beam_feed(mp__beam *b, const float *logits, int n_frames);
mp_status mp__beam_finish(mp__beam *b, mp_result *res);
void mp__beam_free(mp__beam *b);

/* lexicon.c: word -> vocabulary token ids, matching the vocabulary's letter case (as-is, then
 * upper, then lower case). Writes at most max ids; returns the count, or -1 when a character has
 * no token (or the word is empty or longer than max). */
int mp__word_to_tokens(const mp_model *m, const char *word, size_t len, int *ids, int max);
/* Lower-case UTF-8 (whole code points; locale-independent C.UTF-8 rules). Returns a malloc'ed
 * NUL-terminated string, or NULL when out of memory. */
char *mp__utf8_lower(const char *s, size_t len);
/* Load lexicon.txt or words.txt from a model directory into *out (no such file: MP_OK, NULL). */
mp_status mp__lexicon_load_dir(const mp_model *m, const char *dir, mp_lexicon **out);
/* The lexicon's token trie: node 0 is the root (a word start). Child via token id, or -1. */
int mp__lexicon_child(const mp_lexicon *lex, int node, int token);
int mp__lexicon_is_word(const mp_lexicon *lex, int node);

/* defaults.c: decoding.json of a model directory (no file: MP_OK, *out = NULL; malformed:
 * MP_ERR_MODEL_FORMAT naming the file and the field). */
mp_status mp__decoding_defaults_load(const char *dir, mp__decoding_defaults **out);
void mp__decoding_defaults_free(mp__decoding_defaults *d);
/* req with every field it left unset taken from m's decoding.json (see MP_REQ_* in modelpool.h). */
mp_request_config mp__request_resolve(const mp_model *m, const mp_request_config *req);

/* Case-folded word hash: FNV-1a 64 over the lower-cased UTF-8 bytes, continuing from h (start
 * with MP_WORD_HASH_INIT), so a word's hash can grow token by token. Decoders and the LM
 * vocabulary identify words by it (as KenLM's probing vocabulary does with its 64-bit hashes). */
#define MP_WORD_HASH_INIT 0xcbf29ce484222325ULL
uint64_t mp__word_hash(uint64_t h, const char *s, size_t len);

/* emit.c: turn a label sequence with its frame runs into text and words exactly as the greedy
 * decoder does (tokenizer rules, timings, confidence = psum[i] summed / n_frames summed); words
 * outside lex (may be NULL) are marked oov; pause_frames: see emit.h. */
mp_status mp__emit_runs(const mp_model *m, const mp_lexicon *lex, int64_t pause_frames, const int *tok,
                        const int64_t *start, const int64_t *end, const double *psum, const int64_t *n_frames,
                        size_t n, mp_result *res);
/* Total log score (natural log: acoustic + LM + hotword terms) of the hypothesis the last
 * mp__decoder_finish() chose; 0 for the greedy decoder. For tests. */
double mp__decoder_score(const mp__decoder *d);
double mp__beam_score(const mp__beam *b);

/* lm.c: word ids and scores. Ids are >= 0; -1 means "not in the LM" (<unk>). */
int mp__lm_word_id(const mp_lm *lm, const char *word, size_t len);
int mp__lm_word_id_hash(const mp_lm *lm, uint64_t word_hash);
int mp__lm_bos(const mp_lm *lm); /* id of <s>, or -1 */
int mp__lm_eos(const mp_lm *lm); /* id of </s>, or -1 */
/* log10 P(word | ctx) with Katz backoff. ctx[0] is the most recent word; n_ctx <= order-1; word
 * -1 gives unk_log10 (the caller's unknown-word score). */
float mp__lm_score(const mp_lm *lm, const int *ctx, int n_ctx, int word, float unk_log10);

/* ---- audio/audio.c: piece-by-piece decoding and streaming resampling (used by stream.c) ------ */

/* A decoder that hands out mono float samples at the source rate, in pieces. */
typedef struct mp__audio_reader mp__audio_reader;
/* Open a file ("-" = standard input) or a memory block (borrowed: it must outlive the reader).
 * cfg may be NULL. Errors name the file and the reason, as mp_audio_load_file's do. */
mp_status mp__audio_reader_open_file(const char *path, const mp_audio_config *cfg, mp__audio_reader **out);
mp_status mp__audio_reader_open_memory(const void *data, size_t n_bytes, const mp_audio_config *cfg,
                                       mp__audio_reader **out);
int mp__audio_reader_rate(const mp__audio_reader *r);            /* Hz */
const char *mp__audio_reader_name(const mp__audio_reader *r);    /* file name, "<stdin>", "<memory>" */
const char *mp__audio_reader_source(const mp__audio_reader *r);  /* e.g. "WAV (Microsoft) GSM 6.10, ..." */
/* Read up to cap mono samples into buf; *n_read = 0 at the end. Fails past max_duration_s. */
mp_status mp__audio_reader_read(mp__audio_reader *r, float *buf, size_t cap, size_t *n_read);
void mp__audio_reader_free(mp__audio_reader *r);

/* A soxr HQ stream (librosa's default resampling), output length fixed as librosa does at flush. */
typedef struct mp__resampler mp__resampler;
mp_status mp__resampler_create(int in_rate, int out_rate, mp__resampler **out);
/* Push n_in samples; *out (borrowed, valid until the next call) receives *n_out samples. */
mp_status mp__resampler_process(mp__resampler *r, const float *in, size_t n_in, const float **out, size_t *n_out);
/* End of input: the remaining samples. */
mp_status mp__resampler_flush(mp__resampler *r, const float **out, size_t *n_out);
/* mp__resampler_flush, then ready for more input as a new signal (the output length counted
 * afresh from here): a live stream's flush, which must hand on everything written so far. */
mp_status mp__resampler_drain(mp__resampler *r, const float **out, size_t *n_out);
void mp__resampler_free(mp__resampler *r);

/* ---- pool/transcribe.c, pool/chunker.c: one request on one worker ---------------------------- */

/* Resample to the model rate if needed, chunk if long, forward, decode into a new result. */
mp_status mp__transcribe(const mp_model *m, mp__state *st, const float *pcm, size_t n, int sample_rate,
                         const mp_request_config *req, mp_result **out);

/* The HuggingFace ASR pipeline's chunking, shared by mp__transcribe and mp_stream: each chunk runs
 * through `fwd`, its logits are trimmed by its strides and fed to one incremental decoder. */
typedef mp_status (*mp__forward_fn)(void *ctx, const float *pcm, size_t n, float *logits);
typedef struct mp__chunker mp__chunker;
/* req may be NULL (defaults); it is copied. */
mp_status mp__chunker_create(const mp_model *m, const mp_request_config *req, mp__chunker **out);
/* Chunk length and strides in samples at the model rate, multiples of the frame stride;
 * chunk_len = 0 when chunking is off (chunk_length_s = 0). */
void mp__chunker_geometry(const mp__chunker *c, size_t *chunk_len, size_t *stride_left, size_t *stride_right);
/* Run one chunk: n samples at the model rate starting at global sample `start`; is_last marks
 * the final chunk (no right stride). */
mp_status mp__chunker_run(mp__chunker *c, mp__forward_fn fwd, void *ctx, const float *pcm, size_t n, size_t start,
                          int is_last);
/* Decode what was fed into a new result with the given duration. */
mp_status mp__chunker_finish(mp__chunker *c, double duration_s, mp_result **out);
/* The transcript of the chunks run so far (mp__decoder_peek) into a new result; c goes on. */
mp_status mp__chunker_peek(mp__chunker *c, mp_result **out);
void mp__chunker_free(mp__chunker *c);
/* mp__transcribe with any forward function (tests drive the chunking with a synthetic one). */
mp_status mp__transcribe_fn(const mp_model *m, mp__forward_fn fwd, void *ctx, const float *pcm, size_t n,
                            int sample_rate, const mp_request_config *req, mp_result **out);

/* ---- pool/pool.c: what stream.c needs from a lease ------------------------------------------- */

/* Run the network on the leased worker: mp__forward on its private state, with the pool's
 * busy-time and audio-seconds accounting. n samples at the model's rate. */
mp_status mp__lease_forward(mp_lease *lease, const float *pcm, size_t n, float *logits);
/* mp__lease_forward with mp__forward_stats's statistics (NULL: its input's own). */
mp_status mp__lease_forward_stats(mp_lease *lease, const float *pcm, size_t n, const mp__input_stats *stats,
                                  float *logits);
/* mp__forward_features and mp__forward_encoder on the leased worker (no lock held while they run). */
mp_status mp__lease_features(mp_lease *lease, const float *pcm, size_t n, const mp__input_stats *stats, float *feat);
mp_status mp__lease_encoder(mp_lease *lease, const float *feat, size_t T, float *logits);
/* Record that the request served under this lease failed (counts in stats.failed on release). */
void mp__lease_mark_failed(mp_lease *lease);
/* mp_pool_acquire that also gives up (MP_ERR_CANCELLED, counted as timed_out) when cancel_fn
 * returns nonzero: checked first, then about every 100 ms of waiting, with no pool lock held. */
mp_status mp__pool_acquire_cancellable(mp_pool *pool, int timeout_ms, int (*cancel_fn)(void *), void *cancel_ud,
                                       mp_lease **out);

#endif /* MP_INTERNAL_H */
