/*
 * modelpool.h - speech-to-text for many telephone lines on one machine.
 *
 * This header is the whole public contract of libmodelpool: if it is not here, it is not API.
 *
 * Model: one wav2vec2-CTC checkpoint in HuggingFace layout (config.json, preprocessor_config.json,
 * vocab.json, model.safetensors), loaded once, memory-mapped read-only and shared by every worker.
 * Pool: N workers, each owning only private scratch memory, handed out first come, first served.
 *
 * Usage (examples/transcribe.c is this, compiled):
 *
 *     mp_model *model = NULL;
 *     mp_pool *pool = NULL;
 *     mp_result *res = NULL;
 *     if (mp_model_load("models/digits", NULL, &model) != MP_OK) { puts(mp_last_error()); return 1; }
 *     if (mp_pool_create(model, NULL, &pool) != MP_OK) { ... }
 *     mp_status st = mp_pool_transcribe(pool, pcm, n_samples, 16000, NULL, &res);
 *     if (st == MP_OK) puts(mp_result_text(res));
 *     mp_result_free(res);
 *     mp_pool_free(pool);
 *     mp_model_free(model);
 *
 * Thread safety
 *   mp_model    Read-only once mp_model_load() returns; any number of pools and threads may use one
 *               model at the same time. Free it after every pool created from it.
 *   mp_lexicon, mp_lm
 *               Read-only once loaded; share them between requests and threads freely.
 *   mp_pool     Every mp_pool_* call is safe from any thread, except mp_pool_free(): call it once,
 *               after all other calls on the pool returned.
 *   mp_lease    One thread at a time (the thread that acquired it, or one it was handed to).
 *   mp_result, mp_audio, mp_stream, mp_live
 *               One thread at a time. Pass them between threads; don't share them.
 *   Callbacks   The log callback may run on any thread, with no library lock held.
 *
 * Errors: every fallible call returns an mp_status. The human-readable detail of the last failed
 * call made on the calling thread (naming the file, the tensor or the field) is mp_last_error().
 */
#ifndef MODELPOOL_H
#define MODELPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(MP_SHARED)
#  ifdef MP_BUILD
#    define MP_API __declspec(dllexport)
#  else
#    define MP_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define MP_API __attribute__((visibility("default")))
#else
#  define MP_API
#endif

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually linked. Thread-safe. */
MP_API const char *mp_version(void);

/* ------------------------------------------------------------------------------------------------
 * Status codes. Frozen: new codes are added at the end; none is ever renumbered or removed.
 */
typedef enum mp_status {
    MP_OK = 0,
    MP_ERR_INVALID_ARG = 1,  /* NULL handle, bad size, bad config value */
    MP_ERR_NOMEM = 2,        /* allocation failed, or a size limit would be exceeded */
    MP_ERR_IO = 3,           /* cannot open/read/mmap a file */
    MP_ERR_MODEL_FORMAT = 4, /* model directory is not what we expect (names the file and field) */
    MP_ERR_AUDIO_FORMAT = 5, /* audio cannot be decoded (names the file and reason) */
    MP_ERR_QUEUE_FULL = 6,   /* pool saturated; the caller may retry later (HTTP 503) */
    MP_ERR_TIMEOUT = 7,      /* no worker became free within the timeout */
    MP_ERR_CANCELLED = 8,
    MP_ERR_SHUTDOWN = 9,     /* the pool is shutting down and takes no new work */
    MP_ERR_MISUSE = 10,      /* e.g. a lease released twice, or released to another pool */
    MP_ERR_INTERNAL = 11,
    MP_ERR_DECODER_FORMAT = 12 /* lexicon, hotword or ARPA language model file is malformed */
} mp_status;

/* Static English text for a status; never NULL. Thread-safe. */
MP_API const char *mp_strerror(mp_status st);

/* The enum constant's name as static text ("MP_ERR_AUDIO_FORMAT"), for logs and machine-readable
 * error codes; "MP_ERR_UNKNOWN" for a value outside the enum; never NULL. Thread-safe. */
MP_API const char *mp_status_name(mp_status st);

/* Detail of the last failed call on the calling thread ("" if none). The string is thread-local
 * and valid until the next failing call on the same thread. Thread-safe. */
MP_API const char *mp_last_error(void);

/* ------------------------------------------------------------------------------------------------
 * Logging. The library never prints: it reports through this callback (default: none).
 */
typedef enum mp_log_level { MP_LOG_DEBUG = 0, MP_LOG_INFO = 1, MP_LOG_WARN = 2, MP_LOG_ERROR = 3 } mp_log_level;

/* Called on whatever thread produced the message, with no library lock held. */
typedef void (*mp_log_fn)(mp_log_level level, const char *message, void *user_data);

/* Set (or with fn = NULL, clear) the process-wide log callback. Thread-safe. */
MP_API void mp_set_log_callback(mp_log_fn fn, void *user_data);

/* ------------------------------------------------------------------------------------------------
 * Model: immutable weights, feature-extractor settings and tokenizer.
 */
typedef struct mp_model mp_model;

/* Arithmetic of the big matrix products. */
typedef enum mp_dtype {
    MP_DTYPE_FP32 = 0,    /* everything in fp32 (default) */
    MP_DTYPE_INT8 = 1     /* transformer linears, feature projection and conv layers 1.. in int8
                             (weights quantized once at load, 7-bit per channel; activations per
                             call); about 1/4 of the weight memory. Needs oneDNN. */
} mp_dtype;

typedef struct mp_model_config {
    int use_mmap;         /* 1 (default): map the weight file (model.safetensors or
                             pytorch_model.bin) read-only and use fp32 tensors in place; 0: read a
                             private copy into memory */
    const char *language; /* a multilingual model's vocab.json holds one vocabulary per language
                             ({"en": {...}, "vi": {...}}): the one to use, e.g. "vi". NULL
                             (default): tokenizer_config.json's target_lang, else an error listing
                             the languages. Ignored (with a warning) for a single vocabulary.
                             Borrowed for the duration of mp_model_load(). */
    mp_dtype dtype;       /* MP_DTYPE_FP32 (default) or MP_DTYPE_INT8 */
} mp_model_config;

MP_API mp_model_config mp_model_default_config(void);

/* Load a HuggingFace wav2vec2-CTC directory (Wav2Vec2ForCTC, HubertForCTC) as downloaded: the
 * weights from model.safetensors, else its shards (model.safetensors.index.json), else
 * pytorch_model.bin (torch.save's ZIP or legacy format, read as data: nothing in it is executed),
 * else its shards (pytorch_model.bin.index.json). cfg may be NULL (defaults). On success *out owns the model (free with mp_model_free()); on failure *out = NULL
 * and mp_last_error() names the file and the tensor or field at fault. Thread-safe. */
MP_API mp_status mp_model_load(const char *dir, const mp_model_config *cfg, mp_model **out);

/* Build a model with random weights from a named architecture, without any files: "base"
 * (wav2vec2-base, 94.4 M parameters), "large" (wav2vec2-large-lv60), "tiny" and "tiny-large"
 * (small group-norm/post-LN and layer-norm/stable-LN models for tests).
 * Same seed, same weights. For benchmarks and tests. Thread-safe. */
MP_API mp_status mp_model_create_random(const char *arch, uint64_t seed, mp_model **out);

/* NULL is a no-op. Every pool, lexicon and lease using the model must be freed first. */
MP_API void mp_model_free(mp_model *model);

typedef struct mp_model_info {
    const char *architecture;  /* "Wav2Vec2ForCTC" or "HubertForCTC"; borrowed from the model */
    const char *dtype;         /* tensor dtype on disk: "F32", "F16", "BF16" or "mixed" */
    const char *path;          /* directory it was loaded from, "" for mp_model_create_random() */
    uint64_t n_params;
    uint64_t weight_bytes;     /* bytes of fp32 weights the engine reads (one copy, shared) */
    int vocab_size;
    int hidden_size, n_layers, n_heads, intermediate_size;
    int n_conv_layers;
    int frame_stride;          /* input samples per output frame (320 for wav2vec2-base) */
    int receptive_field;       /* input samples seen by one frame (400 for wav2vec2-base) */
    int sample_rate;           /* expected input rate, Hz (16000) */
    int stable_layer_norm;     /* config do_stable_layer_norm */
    int group_norm;            /* 1 for feat_extract_norm "group", 0 for "layer" */
    int has_lexicon;           /* the directory held a word list (lexicon.txt / words.txt) */
    const char *weights_format; /* the weight file read: "safetensors", "pytorch zip" or "pytorch
                                   legacy" (torch.save before 1.6), with ", N shards" when sharded;
                                   "random" for mp_model_create_random() */
    const char *language;      /* the vocabulary chosen from a per-language vocab.json, or "" */
} mp_model_info;

/* Fill *out; its strings are borrowed and valid while the model lives. Thread-safe. */
MP_API mp_status mp_model_get_info(const mp_model *model, mp_model_info *out);

/* Write the model's weights to out_dir/model.safetensors as dtype "f32" (NULL: the default),
 * "f16" or "bf16", every tensor of the weight file it was loaded from under its own name
 * (rounded to nearest even when narrowed), and copy the directory's config, tokenizer and word
 * list files next to it, so out_dir loads as the same model with the weights mapped in place.
 * out_dir is created if needed; files are written under temporary names and renamed. The model
 * must come from mp_model_load() (MP_ERR_INVALID_ARG for random models). Thread-safe. */
MP_API mp_status mp_model_save_safetensors(const mp_model *model, const char *out_dir, const char *dtype);

/* Bytes of private scratch one worker needs to run an input of `seconds` in one piece (what a
 * worker's state grows to; inputs longer than a request's chunk_length_s run chunk by chunk, so
 * the chunk length bounds it). 0 if the input is shorter than one frame. Thread-safe. */
MP_API size_t mp_model_scratch_bytes(const mp_model *model, double seconds);

/* Vocabulary token i (UTF-8, borrowed), or NULL when out of range. Thread-safe. */
MP_API const char *mp_model_token(const mp_model *model, int i);

/* ------------------------------------------------------------------------------------------------
 * Decoding resources: word lexicons and n-gram language models. Immutable once loaded.
 */
typedef struct mp_lexicon mp_lexicon;
typedef struct mp_lm mp_lm;

/* Load a word list (one word per line, UTF-8, '#' comments, optional second column ignored),
 * spelled in the model's vocabulary. A word with a character the vocabulary lacks is an
 * MP_ERR_DECODER_FORMAT error naming the line. The lexicon must not outlive the model. */
MP_API mp_status mp_lexicon_load(const mp_model *model, const char *path, mp_lexicon **out);
/* Same, from n words in memory (copied). */
MP_API mp_status mp_lexicon_from_words(const mp_model *model, const char *const *words, size_t n_words,
                                       mp_lexicon **out);
MP_API void mp_lexicon_free(mp_lexicon *lex);

/* Load a word-level ARPA n-gram model (orders 1..5). Words are matched after the same case
 * folding as the model's vocabulary (see docs). Malformed files give MP_ERR_DECODER_FORMAT with
 * the line number. */
MP_API mp_status mp_lm_load_arpa(const char *path, mp_lm **out);
MP_API int mp_lm_order(const mp_lm *lm);
MP_API void mp_lm_free(mp_lm *lm);

/* ------------------------------------------------------------------------------------------------
 * Per-request settings. One pool serves requests with different settings at the same time.
 */
typedef enum mp_decoder { MP_DECODER_GREEDY = 0, MP_DECODER_BEAM = 1 } mp_decoder;

typedef struct mp_hotword {
    const char *phrase; /* one or more words, spelled in the model's vocabulary */
    float boost;        /* added log-score per completed phrase (natural log units); e.g. 5 */
} mp_hotword;

typedef struct mp_request_config {
    mp_decoder decoder;          /* default MP_DECODER_GREEDY */
    int beam_width;              /* beam decoder width; default 16 */
    const mp_lexicon *lexicon;   /* restrict output to these words; NULL: the model's own word
                                    list when use_model_lexicon is set, else unrestricted */
    int use_model_lexicon;       /* default 1: beam search uses the model directory's word list */
    const mp_hotword *hotwords;  /* borrowed for the duration of the call */
    size_t n_hotwords;
    const mp_lm *lm;             /* NULL: no language model */
    float lm_alpha;              /* LM weight (pyctcdecode alpha), default 0.5 */
    float lm_beta;               /* word insertion bonus (pyctcdecode beta), default 1.0 */
    float lm_unk_score;          /* log10 score of a word absent from the LM, default -10 */
    int timeout_ms;              /* acquire timeout; -1 (default) = the pool's default */
    int keep_logits;             /* 1: keep the [frames x vocab] logits on the result */
    double chunk_length_s;       /* long-input chunk length; default 20 s; 0 = never chunk */
    double stride_length_s;      /* overlap per side; default chunk_length_s / 6 */
    /* Progress of a long input: called after each chunk with the seconds of audio transcribed so
     * far, on the thread running the request, with no library lock held. NULL (default): none. */
    void (*progress_fn)(double audio_done_s, void *user_data);
    void *progress_user_data;
    double pause_split_s;        /* a run of blank frames longer than this many seconds ends a word
                                    (greedy and beam); 0 (default) = off, so greedy output stays
                                    exactly HuggingFace's; e.g. 0.25 */
    float oov_score;             /* word-list beam search: natural-log score added once per word
                                    outside the list, which may then spell any letters (marked oov in
                                    the result); e.g. -8. 0 (default): only listed words */
    int use_model_defaults;      /* 1 (default): fields this request leaves unset take the values of
                                    the model directory's decoding.json (see below); 0: ignore it */
    unsigned explicit_fields;    /* MP_REQ_* bits: fields set on purpose although they hold the
                                    default value (e.g. an explicit greedy request); default 0 */
    /* Cancellation (e.g. the client hung up): polled before each chunk and about every 100 ms
     * while waiting for a worker, on the thread running the request, with no library lock held.
     * Nonzero stops the request: the call returns MP_ERR_CANCELLED, having given back its worker
     * (a stream fails for good). NULL (default): never cancelled. */
    int (*cancel_fn)(void *user_data);
    void *cancel_user_data;
} mp_request_config;

/* Model decoding defaults. A model directory may hold decoding.json (schema in docs/DECODING.md):
 * decoder, beam_width, use_word_list, pause_split_s, oov_score, lm (an ARPA file in the
 * directory), lm_alpha, lm_beta, lm_unk_score. With use_model_defaults set, each of these the
 * file names is applied to a request whose field still holds mp_request_default_config()'s value
 * (lexicon: NULL) and whose group bit below is clear; any other value the request sets wins. */
#define MP_REQ_DECODER (1u << 0)     /* decoder, beam_width */
#define MP_REQ_WORD_LIST (1u << 1)   /* use_model_lexicon (a non-NULL lexicon always wins) */
#define MP_REQ_PAUSE_SPLIT (1u << 2) /* pause_split_s */
#define MP_REQ_LM (1u << 3)          /* lm, lm_alpha, lm_beta, lm_unk_score */
#define MP_REQ_OOV (1u << 4)         /* oov_score */

MP_API mp_request_config mp_request_default_config(void);

/* ------------------------------------------------------------------------------------------------
 * Results.
 */
typedef struct mp_result mp_result;

typedef struct mp_word {
    const char *word;  /* UTF-8, borrowed from the result */
    double start_s;    /* seconds from the start of the input */
    double end_s;
    float confidence;  /* 0..1: mean per-frame probability of the word's tokens */
    int oov;           /* 1: a word outside the word list (request oov_score), spelled as heard */
} mp_word;

MP_API const char *mp_result_text(const mp_result *res); /* borrowed; "" for silence */
MP_API size_t mp_result_n_words(const mp_result *res);
/* Word i, its string borrowed from the result. MP_ERR_INVALID_ARG when i is out of range. */
MP_API mp_status mp_result_word(const mp_result *res, size_t i, mp_word *out);
MP_API double mp_result_duration_s(const mp_result *res); /* audio length, seconds */
/* Logits [n_frames x n_vocab], row-major, when the request set keep_logits; else NULL. */
MP_API const float *mp_result_logits(const mp_result *res, int *n_frames, int *n_vocab);
MP_API void mp_result_free(mp_result *res); /* NULL is a no-op */

/* ------------------------------------------------------------------------------------------------
 * Audio input: decode any supported file to 16 kHz mono float in [-1, 1].
 */
typedef enum mp_raw_format {
    MP_RAW_NONE = 0,   /* not raw: detect the container/codec from the content */
    MP_RAW_S16LE = 1,
    MP_RAW_MULAW = 2,
    MP_RAW_ALAW = 3
} mp_raw_format;

typedef struct mp_audio_config {
    mp_raw_format raw_format; /* headerless input when not MP_RAW_NONE */
    int raw_rate;             /* sample rate of headerless input, Hz (default 8000) */
    int raw_channels;         /* channels of headerless input (default 1) */
    int channel;              /* -1 (default): mix all channels (mean); k >= 0: keep channel k */
    int target_rate;          /* output rate, Hz (default 16000) */
    double max_duration_s;    /* refuse longer inputs (MP_ERR_AUDIO_FORMAT); default 4 h */
    const char *name;         /* what errors call memory input, e.g. an upload's file name; NULL
                                 (default): "<memory>". Not used by mp_audio_load_file. */
    /* Memory budget of mp_audio_load_*: called with the bytes about to be added before the
     * decoded-sample buffer is allocated or grown, on the calling thread. Return 1 to accept, 0
     * to refuse: the load then fails with MP_ERR_NOMEM. When the header declares the length (WAV,
     * FLAC, AIFF, raw...), that length at target_rate is charged at once, before anything is
     * decoded (a small file claiming 30 minutes of silence is charged 30 minutes of samples);
     * otherwise the buffer is charged as it grows (by at most half again what it holds). Either
     * way a declared length past max_duration_s is refused at once (MP_ERR_AUDIO_FORMAT). The
     * library never gives a charge back: the caller releases what it accepted once it frees the
     * audio or the load failed (mp_audio_reserved_bytes() is the result's total).
     * NULL (default): no budget. */
    int (*reserve_fn)(size_t bytes, void *user_data);
    void *reserve_user_data;
} mp_audio_config;

MP_API mp_audio_config mp_audio_default_config(void);

typedef struct mp_audio mp_audio;

/* Decode a whole file ("-" = standard input) to mono float at cfg->target_rate, resampling with
 * soxr at librosa's default quality. Errors name the file and the reason. Thread-safe. */
MP_API mp_status mp_audio_load_file(const char *path, const mp_audio_config *cfg, mp_audio **out);
/* Same from memory (the bytes are not kept). */
MP_API mp_status mp_audio_load_memory(const void *data, size_t n_bytes, const mp_audio_config *cfg,
                                      mp_audio **out);
MP_API const float *mp_audio_samples(const mp_audio *a, size_t *n_samples);
MP_API int mp_audio_rate(const mp_audio *a);
/* Short description of what was decoded, e.g. "WAV GSM 6.10, 8000 Hz, 1 ch". Borrowed. */
MP_API const char *mp_audio_source(const mp_audio *a);
/* Bytes reserve_fn accepted for this audio in all (the declared length, or what its buffer grew
 * to, whichever is more). */
MP_API size_t mp_audio_reserved_bytes(const mp_audio *a);
MP_API void mp_audio_free(mp_audio *a);

/* Resample n_in mono samples from in_rate to out_rate with soxr HQ. *out is malloc'ed (free()). */
MP_API mp_status mp_resample(const float *in, size_t n_in, int in_rate, int out_rate, float **out,
                             size_t *n_out);

/* ------------------------------------------------------------------------------------------------
 * Pool: workers sharing one model, leased first come, first served.
 */
typedef struct mp_pool mp_pool;
typedef struct mp_lease mp_lease;

typedef struct mp_pool_config {
    int n_workers;              /* 0 (default) = number of online cores */
    int queue_capacity;         /* waiting callers allowed; 0 (default) = unbounded */
    int default_timeout_ms;     /* acquire timeout when a call passes -1; -1 (default) = forever */
    int preload;                /* 1: create every worker now; 0 (default): lazily on first use,
                                   as the original design does */
    int n_threads_per_worker;   /* BLAS threads per worker; 0 (default) = cores / workers, >= 1 */
    double stuck_lease_s;       /* a lease held longer is reported as stuck; default 60 s */
    double wait_warning_s;      /* statistics warn when avg wait exceeds this; default 1.0 s */
    int weight_copies;          /* 0 (default): all workers share the model's weights. 1: each
                                   worker loads its own copy from the model's directory, as the
                                   original design did (for comparison benchmarks only) */
    size_t max_scratch_bytes;   /* per-worker scratch limit; 0 (default) = derived from the
                                   longest chunk the engine accepts */
} mp_pool_config;

MP_API mp_pool_config mp_pool_default_config(void);

/* Create a pool over model (which must outlive the pool). cfg may be NULL. Thread-safe. */
MP_API mp_status mp_pool_create(mp_model *model, const mp_pool_config *cfg, mp_pool **out);

/* The model a pool serves (set at creation, never changes). Thread-safe. */
MP_API const mp_model *mp_pool_model(const mp_pool *pool);

/* Wait first come, first served for a free worker: the original get_model(). timeout_ms: -1 = the
 * pool's default, 0 = don't wait. Returns MP_ERR_TIMEOUT, MP_ERR_QUEUE_FULL (too many waiting) or
 * MP_ERR_SHUTDOWN. Release the lease with mp_lease_release(). Thread-safe. */
MP_API mp_status mp_pool_acquire(mp_pool *pool, int timeout_ms, mp_lease **out);

/* Return the worker: the original release_model(). Releasing twice, or NULL, returns
 * MP_ERR_MISUSE and changes nothing. Thread-safe. */
MP_API mp_status mp_lease_release(mp_lease *lease);

/* The shared model behind a lease (the original design's "processor"). */
MP_API const mp_model *mp_lease_model(const mp_lease *lease);
/* Index of the worker this lease holds, 0..n_workers-1. */
MP_API int mp_lease_worker(const mp_lease *lease);

/* Run one request on the leased worker. pcm: mono float samples at sample_rate (resampled to the
 * model's rate when different). Inputs longer than req->chunk_length_s run in overlapping chunks.
 * req may be NULL (defaults). On success *out owns a result. */
MP_API mp_status mp_lease_transcribe(mp_lease *lease, const float *pcm, size_t n_samples, int sample_rate,
                                     const mp_request_config *req, mp_result **out);

/* The scoped form that cannot leak (the design's context manager): acquire, call fn(lease,
 * user_data) on the calling thread, release, whatever fn returns. Returns the acquire error or
 * fn's status. */
typedef mp_status (*mp_lease_fn)(mp_lease *lease, void *user_data);
MP_API mp_status mp_pool_with_lease(mp_pool *pool, int timeout_ms, mp_lease_fn fn, void *user_data);

#if defined(__GNUC__) || defined(__clang__)
/* Scope-bound lease for GCC/Clang: released when the variable goes out of scope.
 *     MP_SCOPED_LEASE(lease); if (mp_pool_acquire(pool, -1, &lease) == MP_OK) { ... }          */
MP_API void mp__lease_cleanup(mp_lease **lease);
#define MP_SCOPED_LEASE(name) mp_lease *name __attribute__((cleanup(mp__lease_cleanup))) = NULL
#endif

/* acquire + mp_lease_transcribe + release. req->timeout_ms governs the wait. Thread-safe. */
MP_API mp_status mp_pool_transcribe(mp_pool *pool, const float *pcm, size_t n_samples, int sample_rate,
                                    const mp_request_config *req, mp_result **out);

/* Refuse new work, let work in flight finish, wake every waiter with MP_ERR_SHUTDOWN. Returns
 * when no lease is outstanding or after wait_ms (-1 = forever); MP_ERR_TIMEOUT if leases remain.
 * Thread-safe; idempotent. */
MP_API mp_status mp_pool_shutdown(mp_pool *pool, int wait_ms);

/* Shut down (waiting for outstanding leases) and free. NULL is a no-op. */
MP_API void mp_pool_free(mp_pool *pool);

/* ------------------------------------------------------------------------------------------------
 * Streams: inputs of any length with bounded memory. Audio is pushed in pieces; each full chunk
 * (req->chunk_length_s with req->stride_length_s overlap, as the HuggingFace ASR pipeline cuts
 * them) runs on a worker acquired for that chunk alone, so a one-hour call never holds a worker
 * for an hour and short requests interleave with it. Decoding runs incrementally.
 */
typedef struct mp_stream mp_stream;

/* sample_rate: rate of the samples that will be written (resampled inside). Thread-safe. */
MP_API mp_status mp_stream_create(mp_pool *pool, int sample_rate, const mp_request_config *req,
                                  mp_stream **out);
/* Append n mono samples; may run chunks (blocking while waiting for a worker). */
MP_API mp_status mp_stream_write(mp_stream *s, const float *pcm, size_t n_samples);
/* The transcript so far, for live display: the chunks already run (audio written since the last
 * full chunk is not in it yet; with the default 20 s chunks that is up to ~17 s behind), with word
 * times; its duration is the seconds covered. The stream goes on unchanged. Greedy decoding: the
 * text is a prefix of the final transcript. Beam search: the current best, which later audio may
 * still revise. *out is a new result. */
MP_API mp_status mp_stream_partial(mp_stream *s, mp_result **out);
/* Run what is left and produce the result. The stream takes no more writes afterwards. */
MP_API mp_status mp_stream_finish(mp_stream *s, mp_result **out);
MP_API void mp_stream_free(mp_stream *s); /* NULL is a no-op */

/* Decode a file ("-" = standard input) piece by piece into a stream: memory stays flat however
 * long the input. audio_cfg and req may be NULL. Thread-safe. */
MP_API mp_status mp_pool_transcribe_file(mp_pool *pool, const char *path, const mp_audio_config *audio_cfg,
                                         const mp_request_config *req, mp_result **out);

/* ------------------------------------------------------------------------------------------------
 * Live streams: a call transcribed as it is spoken. Audio is written in pieces of any size; every
 * partial_interval_s of new audio a step runs the network once over a window (left context, the
 * new audio, right context) on a worker leased for that step alone, so many calls share a few
 * workers. A frame's logits are committed (decoded for the partial result) only once
 * right_context_s of audio after it exists: wav2vec2 attends both ways, so earlier frames would
 * see less context than an offline run. An utterance ends at an endpoint (endpoint_silence_s of
 * committed frames whose best token is the blank or the word delimiter, after some speech), when
 * it reaches max_utterance_s, or when the caller flushes. With final_pass (default) its final
 * result comes from one more network run over the whole utterance and its context, so finals
 * match an offline transcript of the same audio closely, unless the windows were sure of every
 * word (final_skip_confidence); without it the final is the partial's decoding. Word and
 * utterance times are seconds from the start of the stream. Decoding follows
 * the request (greedy or beam, word list, hotwords, LM). docs/LIVE.md gives the latency and
 * compute trade-off of these settings.
 */
typedef struct mp_live mp_live;

typedef struct mp_live_config {
    double partial_interval_s;  /* new audio between two steps (each step updates the partial);
                                   default 0.5 s */
    double left_context_s;      /* audio before the first uncommitted frame that each step runs
                                   again; default 0.3 s */
    double right_context_s;     /* audio a frame waits for before it is committed; default 0.2 s */
    double endpoint_silence_s;  /* non-speech frames that end an utterance; default 0.6 s */
    double max_utterance_s;     /* an utterance is cut when it gets this long; default 15 s */
    int final_pass;             /* 1 (default): finals from a run over the whole utterance;
                                   0: finals are the committed frames' decoding (cheaper) */
    double final_skip_confidence; /* with final_pass: an utterance ended at an endpoint whose
                                   committed decoding has every word at or above this confidence
                                   (mp_word.confidence) keeps it as its final, without the run;
                                   0 = always run; default 0.8 */
    int feature_cache;          /* 1 (default): the stream keeps the feature encoder's output for
                                   audio it has run, normalized with the stream's statistics
                                   (docs/LIVE.md), so a step runs the conv stack over new audio
                                   only; 0: every step runs the whole network over its window,
                                   normalized over the window */
} mp_live_config;

MP_API mp_live_config mp_live_default_config(void);

/* What mp_live_write() did, as bits of its OUT `events`. */
#define MP_LIVE_STEP 1  /* at least one step ran: the partial may have changed */
#define MP_LIVE_FINAL 2 /* at least one final result waits in mp_live_pop_final() */

/* Create a live stream over pool (which must outlive it). sample_rate: the rate of the samples
 * that will be written (resampled inside). req and cfg may be NULL (defaults); they are copied,
 * but objects they point to (lexicon, LM, hotword strings) are borrowed and must outlive the
 * stream. req->timeout_ms governs each step's wait for a worker. Thread-safe. */
MP_API mp_status mp_live_create(mp_pool *pool, int sample_rate, const mp_request_config *req,
                                const mp_live_config *cfg, mp_live **out);
/* Append n mono samples in [-1, 1] (any n, 0 included). Runs the steps that the new audio makes
 * due, blocking while it waits for a worker. *events (may be NULL) receives MP_LIVE_* bits. A
 * failed step makes the stream fail: later calls return the same status. The result does not
 * depend on how the audio is cut into pieces. Not thread-safe: one thread per stream at a time. */
MP_API mp_status mp_live_write(mp_live *s, const float *pcm, size_t n_samples, int *events);
/* Same for 16-bit signed little-endian samples (the wire format of telephony protocols), given as
 * bytes; an odd trailing byte is kept for the next call. */
MP_API mp_status mp_live_write_s16le(mp_live *s, const void *bytes, size_t n_bytes, int *events);
/* The oldest final result not popped yet, or *out = NULL when there is none. The result owns its
 * words (times from the stream start); *start_s and *end_s (either may be NULL) receive the
 * utterance's span in the stream. */
MP_API mp_status mp_live_pop_final(mp_live *s, mp_result **out, double *start_s, double *end_s);
/* The current utterance so far (committed frames only), for display: greedy decoding gives a
 * text that the final result extends; beam search gives the current best, which may change. Its
 * duration is the seconds of the stream committed so far. *out is a new result. */
MP_API mp_status mp_live_partial(mp_live *s, mp_result **out);
/* End the current utterance now (vosk's reset): every frame of the audio written so far is
 * committed and the utterance's final result is queued for mp_live_pop_final() (none when it
 * holds no speech). The stream goes on. */
MP_API mp_status mp_live_flush(mp_live *s);
/* End of the stream: the resampler's tail, then as mp_live_flush. No writes afterwards. */
MP_API mp_status mp_live_finish(mp_live *s);

typedef struct mp_live_stats {
    double audio_s;           /* audio written, s */
    double committed_s;       /* stream time up to which frames are final, s */
    double compute_s;         /* time spent in the network for this stream (lease held), s */
    double computed_audio_s;  /* audio run through the network, contexts counted each time, s */
    double wait_s;            /* time spent waiting for a worker, s */
    uint64_t steps;           /* network runs */
    uint64_t finals;          /* final results produced (endpoints, cuts, flushes) */
    double buffered_s;        /* audio held in memory now (the window, the current utterance), s */
    uint64_t endpoints_dropped; /* endpoints the final pass found no silence at (not cut there) */
    uint64_t final_passes_skipped; /* finals kept from the committed decoding (final_skip_confidence) */
    double feature_audio_s;   /* audio run through the feature encoder (conv stack); with the
                                 feature cache less than computed_audio_s, which then counts the
                                 transformer's windows, s */
    double cached_s;          /* frames of features the feature cache holds now, s */
    uint64_t cache_resets;    /* times the cache was dropped because the stream's statistics moved */
} mp_live_stats;

/* Fill *out. Not thread-safe (as mp_live_write). */
MP_API mp_status mp_live_get_stats(const mp_live *s, mp_live_stats *out);
MP_API void mp_live_free(mp_live *s); /* NULL is a no-op */

/* ------------------------------------------------------------------------------------------------
 * Statistics: a consistent snapshot. Times in seconds.
 */
#define MP_STATS_MAX_WORKERS 256

/* Buckets of the wait histogram in mp_pool_stats: 1 ms to 30 s in 1-2.5-5 steps, the range a
 * telephony caller goes from "instant" to "hung up". */
#define MP_WAIT_BUCKETS 14

/* Upper bound, seconds, of wait bucket i (0 <= i < MP_WAIT_BUCKETS); +INFINITY for any other i (the
 * bucket every wait falls in). Static data, thread-safe. */
MP_API double mp_pool_wait_bucket_s(int i);

typedef struct mp_pool_stats {
    /* the original design's names */
    int pool_size;              /* workers */
    uint64_t total_requests;    /* acquire calls that ended (granted, rejected or timed out) */
    double avg_wait_time;       /* mean wait of granted acquires, s */
    int available_models;       /* idle workers */
    int busy_models;            /* leased workers */
    /* more */
    double max_wait_time;
    double wait_p50, wait_p95, wait_p99;           /* s, from a bounded log-scale histogram */
    double service_p50, service_p95, service_p99;  /* lease hold time, s */
    int queue_depth;            /* callers waiting now */
    uint64_t completed;         /* leases released after a successful request */
    uint64_t failed;            /* leases released after a failed request */
    uint64_t rejected;          /* refused at once: queue full or shutting down */
    uint64_t timed_out;
    uint64_t stuck_leases;      /* leases seen held longer than stuck_lease_s (counted once each) */
    int stuck_now;              /* leases held longer than stuck_lease_s right now */
    double audio_seconds;       /* audio processed */
    double busy_seconds;        /* sum of worker busy time */
    double real_time_factor;    /* busy_seconds / audio_seconds (lower is faster) */
    double uptime_s;
    int wait_warning;           /* avg_wait_time > wait_warning_s: the pool may need more workers */
    uint64_t weight_bytes;      /* shared weights (times n_workers when weight_copies) */
    uint64_t scratch_bytes;     /* sum of the workers' private scratch */
    int n_workers_loaded;       /* workers created so far (lazy loading) */
    uint64_t worker_requests[MP_STATS_MAX_WORKERS];
    double worker_busy_s[MP_STATS_MAX_WORKERS];
    /* The waits of granted acquires as a cumulative histogram (Prometheus' buckets, exact counts, no
     * decay): wait_le[i] = waits <= mp_pool_wait_bucket_s(i); wait_count = all of them (the +Inf
     * bucket, the same as the granted acquires behind avg_wait_time), wait_sum_s = their sum, s. */
    uint64_t wait_le[MP_WAIT_BUCKETS];
    uint64_t wait_count;
    double wait_sum_s;
} mp_pool_stats;

/* Fill *out with a consistent snapshot. Thread-safe. Once no lease is outstanding,
 * total_requests = completed + failed + rejected + timed_out: a granted lease counts as completed
 * or failed when released, a grant whose lazily created worker fails to load counts as failed at
 * once, and waiters woken by mp_pool_shutdown() count as rejected. */
MP_API mp_status mp_pool_get_stats(mp_pool *pool, mp_pool_stats *out);

/* ------------------------------------------------------------------------------------------------
 * The network alone: HuggingFace's `model(input_values).logits`, for callers (the Python binding)
 * that keep the original Wav2Vec2Processor / Wav2Vec2ForCTC split.
 */

/* Run the network on the leased worker over n_samples feature-extractor output values at the
 * model's rate, taken as they are: the caller applied do_normalize (Wav2Vec2FeatureExtractor's
 * (x - mean) / sqrt(var + 1e-7)) and it is not applied again; no resampling, chunking or decoding,
 * one piece whatever the length. On success *out owns a result whose mp_result_logits() are
 * [n_frames x n_vocab] (n_frames 0 when the input is shorter than one receptive field), with text
 * "" and no words, and duration n_samples / rate; the work counts in the pool's statistics as
 * mp_lease_transcribe()'s does. MP_ERR_MISUSE when the lease is not held now. One thread per
 * lease at a time. */
MP_API mp_status mp_lease_forward(mp_lease *lease, const float *input_values, size_t n_samples, mp_result **out);

#ifdef __cplusplus
}
#endif
#endif /* MODELPOOL_H */
