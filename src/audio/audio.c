/* audio.c - audio input: decode telephony files to mono float (libsndfile, opencore-amrnb) and
 * resample with libsoxr at librosa's default quality, whole or piece by piece.
 *
 * Module: audio (this folder) owns mp_audio, the readers and the resampler. It calls core only
 * (and libsndfile, opencore-amrnb, libsoxr); it knows nothing of models or decoding.
 *
 * DESIGN
 *   Bytes come from a "byte source": a file descriptor read with pread() (files, and standard input
 *   when it is a regular file) or a memory block (mp_audio_load_memory, and standard input when it
 *   is a pipe: read whole, capped). libsndfile reads the source through sf_open_virtual(), so one
 *   code path serves files, memory and stdin. The format is detected from the content only:
 *     1. cfg->raw_format set        -> headerless s16le / mu-law / A-law through libsndfile RAW
 *     2. "#!AMR\n"                  -> AMR-NB (RFC 4867 section 5 storage format), opencore-amrnb
 *     3. every 33-byte frame starts with 0xD? -> raw GSM 06.10 (.gsm), libsndfile RAW|GSM610 at 8 kHz
 *     4. anything libsndfile knows (WAV incl. GSM/ADPCM/G.711, FLAC, OGG, MP3, AIFF, AU, ...)
 *   A reader (mp__audio_reader) hands out mono float samples at the source rate in pieces; a
 *   resampler (mp__resampler) is a soxr stream. mp_audio_load_* chains both into one buffer;
 *   stream.c chains them into an mp_stream, so memory stays flat however long the input.
 *
 *   Bounds: no allocation is sized from a header. Buffers grow as samples are actually decoded and
 *   stop at cfg->max_duration_s; a declared length is charged to the caller's budget up front
 *   (cfg->reserve_fn) and one past max_duration_s is refused before decoding; the channel count
 *   is capped at MAX_CHANNELS; stdin read into memory is capped at STDIN_BYTES_PER_S *
 *   max_duration_s bytes.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opencore-amrnb/interf_dec.h>

#define MIN_RATE 1000         /* Hz; below this no speech survives, so the header is wrong */
#define MAX_RATE 384000       /* Hz; the highest rate real audio interfaces record at */
#define MAX_CHANNELS 256      /* libsndfile itself allows 1024; telephony has 1 or 2 */
#define READ_BLOCK 4096       /* frames per sf_readf_float call: 4096 x 256 ch x 4 B = 4 MiB max */
#define STDIN_BYTES_PER_S 192000.0 /* 48 kHz stereo 16-bit: cap for a piped stdin held in memory */
#define GSM_FRAME 33          /* bytes per GSM 06.10 frame, 160 samples at 8 kHz (20 ms) */
#define AMR_FRAME_SAMPLES 160 /* 20 ms at 8 kHz per AMR-NB frame (3GPP TS 26.071) */

/* ---- byte source ------------------------------------------------------------------------------- */

typedef struct byte_source {
    int fd;                    /* >= 0: read with pread at base + pos */
    int own_fd;
    off_t base;                /* offset of byte 0 in fd (stdin may have been partly consumed) */
    const unsigned char *mem;  /* else: memory block */
    unsigned char *owned_mem;  /* stdin pipe contents, freed with the reader */
    sf_count_t size, pos;
} byte_source;

static sf_count_t src_read_at(byte_source *s, sf_count_t pos, void *buf, sf_count_t n) {
    if (pos < 0 || pos >= s->size || n <= 0) return 0;
    if (n > s->size - pos) n = s->size - pos;
    if (s->mem) {
        memcpy(buf, s->mem + pos, (size_t)n);
        return n;
    }
    sf_count_t done = 0;
    while (done < n) {
        ssize_t r = pread(s->fd, (char *)buf + done, (size_t)(n - done), s->base + (off_t)(pos + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        done += r;
    }
    return done;
}

static sf_count_t vio_get_filelen(void *user) { return ((byte_source *)user)->size; }

static sf_count_t vio_seek(sf_count_t offset, int whence, void *user) {
    byte_source *s = user;
    sf_count_t p;
    switch (whence) {
    case SEEK_SET: p = offset; break;
    case SEEK_CUR: p = s->pos + offset; break;
    case SEEK_END: p = s->size + offset; break;
    default: return -1;
    }
    if (p < 0) return -1;
    s->pos = p;
    return p;
}

static sf_count_t vio_read(void *ptr, sf_count_t count, void *user) {
    byte_source *s = user;
    sf_count_t n = src_read_at(s, s->pos, ptr, count);
    s->pos += n;
    return n;
}

static sf_count_t vio_write(const void *ptr, sf_count_t count, void *user) {
    (void)ptr, (void)count, (void)user;
    return 0; /* read-only */
}

static sf_count_t vio_tell(void *user) { return ((byte_source *)user)->pos; }

/* ---- reader ------------------------------------------------------------------------------------- */

enum { KIND_SNDFILE = 0, KIND_AMR = 1 };

struct mp__audio_reader {
    byte_source src;
    SF_VIRTUAL_IO vio;
    char name[512];           /* file name for messages, "<memory>" or "<stdin>" */
    char source[160];         /* what was decoded, for mp_audio_source() */
    int kind;
    SNDFILE *sf;
    void *amr;                /* opencore decoder state */
    int rate, channels, pick; /* pick: -1 mean of channels, else this channel */
    float *frames;            /* interleaved scratch [READ_BLOCK][channels] */
    short amr_pcm[AMR_FRAME_SAMPLES];
    size_t amr_have, amr_used; /* decoded samples in amr_pcm, and how many were handed out */
    int amr_done;
    uint64_t n_out, n_max;    /* mono samples handed out, and the max_duration_s limit */
    double max_duration_s;
    uint64_t declared;        /* frames the header declares, 0 when unknown (AMR, streamed files) */
};

static mp_status check_config(const mp_audio_config *cfg, const char *name) {
    if (cfg->target_rate < MIN_RATE || cfg->target_rate > MAX_RATE)
        return mp__fail(MP_ERR_INVALID_ARG, "%s: target_rate %d Hz outside %d..%d", name, cfg->target_rate,
                        MIN_RATE, MAX_RATE);
    if (!(cfg->max_duration_s > 0) || cfg->max_duration_s > 1e7)
        return mp__fail(MP_ERR_INVALID_ARG, "%s: max_duration_s %g is not a positive duration", name,
                        cfg->max_duration_s);
    if (cfg->channel < -1 || cfg->channel >= MAX_CHANNELS)
        return mp__fail(MP_ERR_INVALID_ARG, "%s: channel %d (use -1 for the mean, or 0..%d)", name, cfg->channel,
                        MAX_CHANNELS - 1);
    if (cfg->raw_format != MP_RAW_NONE) {
        if (cfg->raw_format != MP_RAW_S16LE && cfg->raw_format != MP_RAW_MULAW && cfg->raw_format != MP_RAW_ALAW)
            return mp__fail(MP_ERR_INVALID_ARG, "%s: unknown raw_format %d", name, (int)cfg->raw_format);
        if (cfg->raw_rate < MIN_RATE || cfg->raw_rate > MAX_RATE)
            return mp__fail(MP_ERR_INVALID_ARG, "%s: raw_rate %d Hz outside %d..%d", name, cfg->raw_rate, MIN_RATE,
                            MAX_RATE);
        if (cfg->raw_channels < 1 || cfg->raw_channels > MAX_CHANNELS)
            return mp__fail(MP_ERR_INVALID_ARG, "%s: raw_channels %d outside 1..%d", name, cfg->raw_channels,
                            MAX_CHANNELS);
    }
    return MP_OK;
}

/* Raw GSM 06.10 has no header; each 33-byte frame starts with the 4-bit signature 0xD
 * (GSM 06.10 frame packing as used by libgsm / .gsm files). Check the first frames (up to 64):
 * random bytes pass one frame with probability 1/16, so a file with several frames is rarely
 * misread, and no other supported container starts with a 0xD? byte. */
static int looks_like_gsm(byte_source *s) {
    if (s->size < GSM_FRAME || s->size % GSM_FRAME != 0) return 0;
    sf_count_t n = s->size / GSM_FRAME;
    if (n > 64) n = 64;
    for (sf_count_t i = 0; i < n; i++) {
        unsigned char b;
        if (src_read_at(s, i * GSM_FRAME, &b, 1) != 1 || (b >> 4) != 0xD) return 0;
    }
    return 1;
}

static void describe_sndfile(mp__audio_reader *r, const SF_INFO *info) {
    SF_FORMAT_INFO major = {.format = info->format & SF_FORMAT_TYPEMASK};
    SF_FORMAT_INFO sub = {.format = info->format & SF_FORMAT_SUBMASK};
    const char *mname = sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0 && major.name ? major.name : "?";
    const char *sname = sf_command(NULL, SFC_GET_FORMAT_INFO, &sub, sizeof sub) == 0 && sub.name ? sub.name : "?";
    snprintf(r->source, sizeof r->source, "%s %s, %d Hz, %d ch", mname, sname, info->samplerate, info->channels);
}

static mp_status open_sndfile(mp__audio_reader *r, const mp_audio_config *cfg) {
    SF_INFO info;
    memset(&info, 0, sizeof info);
    const char *what = NULL;
    if (cfg->raw_format != MP_RAW_NONE) {
        int sub = cfg->raw_format == MP_RAW_S16LE ? (SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE)
                  : cfg->raw_format == MP_RAW_MULAW ? SF_FORMAT_ULAW : SF_FORMAT_ALAW;
        info.format = SF_FORMAT_RAW | sub;
        info.samplerate = cfg->raw_rate;
        info.channels = cfg->raw_channels;
        what = "raw";
    } else if (looks_like_gsm(&r->src)) {
        info.format = SF_FORMAT_RAW | SF_FORMAT_GSM610;
        info.samplerate = 8000; /* GSM 06.10 is defined at 8 kHz only */
        info.channels = 1;
        what = "GSM";
    }
    r->vio = (SF_VIRTUAL_IO){.get_filelen = vio_get_filelen, .seek = vio_seek, .read = vio_read,
                             .write = vio_write, .tell = vio_tell};
    r->src.pos = 0;
    r->sf = sf_open_virtual(&r->vio, SFM_READ, &info, &r->src);
    if (!r->sf) {
        if (what) return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: cannot open as %s audio: %s", r->name, what, sf_strerror(NULL));
        /* libsndfile's reason distinguishes "format not recognised" from a damaged header. */
        return mp__fail(MP_ERR_AUDIO_FORMAT,
                        "%s: unknown or damaged audio format (%s); supported: WAV, FLAC, OGG, MP3, AMR-NB, raw "
                        "GSM 06.10, or headerless audio with raw_format",
                        r->name, sf_strerror(NULL));
    }
    if (info.samplerate < MIN_RATE || info.samplerate > MAX_RATE)
        return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: sample rate %d Hz is not plausible (accepted %d..%d)", r->name,
                        info.samplerate, MIN_RATE, MAX_RATE);
    if (info.channels < 1 || info.channels > MAX_CHANNELS)
        return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: %d channels is not plausible (accepted 1..%d)", r->name,
                        info.channels, MAX_CHANNELS);
    r->rate = info.samplerate;
    r->channels = info.channels;
    r->kind = KIND_SNDFILE;
    /* libsndfile reports SF_COUNT_MAX (or 0) when the header does not say, e.g. FLAC with
     * total_samples = 0 or a WAV written to a pipe. */
    if (info.frames > 0 && info.frames < SF_COUNT_MAX) r->declared = (uint64_t)info.frames;
    describe_sndfile(r, &info);
    r->frames = malloc((size_t)READ_BLOCK * (size_t)r->channels * sizeof *r->frames);
    if (!r->frames) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", r->name);
    return MP_OK;
}

/* AMR-NB storage format (RFC 4867 section 5): "#!AMR\n", then frames of one table-of-contents byte
 * (F=0 | FT 4 bits | Q | 2 pad bits) and the speech bits of frame type FT, padded to whole bytes.
 * Payload bytes per FT, from the class bit counts in 3GPP TS 26.101 Table 1a (4.75 kbit/s = 95 bits
 * -> 12 bytes, ... 12.2 kbit/s = 244 bits -> 31 bytes; SID = 39 bits -> 5 bytes); FT 9..14 are
 * reserved for AMR (RFC 4867 section 5.3 note), FT 15 is NO_DATA with no payload. -1: reserved. */
static const int amr_payload_bytes[16] = {12, 13, 15, 17, 19, 20, 26, 31, 5, -1, -1, -1, -1, -1, -1, 0};

static mp_status open_amr(mp__audio_reader *r) {
    r->amr = Decoder_Interface_init();
    if (!r->amr) return mp__fail(MP_ERR_NOMEM, "%s: cannot create the AMR-NB decoder", r->name);
    r->kind = KIND_AMR;
    r->rate = 8000;
    r->channels = 1;
    r->src.pos = 6; /* after "#!AMR\n" */
    snprintf(r->source, sizeof r->source, "AMR-NB, 8000 Hz, 1 ch");
    return MP_OK;
}

/* Decode the next AMR frame into amr_pcm; sets amr_done at the end of the data. A final frame cut
 * short is dropped (as a truncated WAV loses its last partial frame). */
static mp_status amr_next_frame(mp__audio_reader *r) {
    unsigned char frame[32];
    if (vio_read(frame, 1, &r->src) != 1) {
        r->amr_done = 1;
        return MP_OK;
    }
    int ft = (frame[0] >> 3) & 0x0F;
    int n = amr_payload_bytes[ft];
    if (n < 0 || (frame[0] & 0x80))
        return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: corrupt AMR-NB frame at byte %lld (frame type %d)", r->name,
                        (long long)(r->src.pos - 1), ft);
    if (n > 0 && vio_read(frame + 1, n, &r->src) != n) {
        r->amr_done = 1;
        return MP_OK;
    }
    Decoder_Interface_Decode(r->amr, frame, r->amr_pcm, 0);
    r->amr_have = AMR_FRAME_SAMPLES;
    r->amr_used = 0;
    return MP_OK;
}

static mp_status reader_open(mp__audio_reader *r, const mp_audio_config *cfg) {
    if (r->src.size == 0) return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: empty file", r->name);
    r->pick = cfg->channel;
    r->max_duration_s = cfg->max_duration_s;
    unsigned char head[16] = {0};
    sf_count_t nh = src_read_at(&r->src, 0, head, sizeof head);
    mp_status st;
    if (cfg->raw_format == MP_RAW_NONE && nh >= 6 && memcmp(head, "#!AMR\n", 6) == 0)
        st = open_amr(r);
    else if (cfg->raw_format == MP_RAW_NONE && nh >= 9 && memcmp(head, "#!AMR-WB\n", 9) == 0)
        return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: AMR-WB is not supported (AMR-NB is)", r->name);
    else
        st = open_sndfile(r, cfg);
    if (st != MP_OK) return st;
    if (r->pick >= r->channels)
        return mp__fail(MP_ERR_INVALID_ARG, "%s: channel %d requested but the audio has %d channel(s)", r->name,
                        r->pick, r->channels);
    r->n_max = (uint64_t)(cfg->max_duration_s * r->rate);
    return MP_OK;
}

static mp__audio_reader *reader_new(const char *name) {
    mp__audio_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->src.fd = -1;
    snprintf(r->name, sizeof r->name, "%s", name);
    return r;
}

/* Read all of a pipe into memory, at most cap bytes (more is an error, not a silent cut). */
static mp_status slurp_fd(mp__audio_reader *r, int fd, size_t cap) {
    size_t n = 0, alloc = 0;
    unsigned char *buf = NULL;
    mp_status st = MP_OK;
    while (st == MP_OK) {
        if (n == alloc) {
            size_t na = alloc ? alloc * 2 : 1 << 16;
            if (na > cap) na = cap;
            unsigned char *nb = alloc >= cap ? NULL : realloc(buf, na);
            if (!nb) {
                st = alloc >= cap ? mp__fail(MP_ERR_AUDIO_FORMAT, "%s: input larger than %zu bytes (max_duration_s)",
                                             r->name, cap)
                                  : mp__fail(MP_ERR_NOMEM, "%s: out of memory reading input", r->name);
                break;
            }
            buf = nb;
            alloc = na;
        }
        ssize_t got = read(fd, buf + n, alloc - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) st = mp__fail(MP_ERR_IO, "%s: read error: %s", r->name, strerror(errno));
        if (got <= 0) break;
        n += (size_t)got;
    }
    if (st != MP_OK) {
        free(buf);
        return st;
    }
    r->src.owned_mem = buf;
    r->src.mem = buf ? buf : (const unsigned char *)"";
    r->src.size = (sf_count_t)n;
    return MP_OK;
}

/* The byte source of an open fd: a regular file read in place (from its current offset when it
 * is standard input), anything else (a pipe, a terminal) read into memory, bounded by cap. */
static mp_status attach_fd(mp__audio_reader *r, int fd, int is_stdin, const mp_audio_config *cfg) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return mp__fail(MP_ERR_IO, "%s: cannot stat: %s", r->name, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return mp__fail(MP_ERR_IO, "%s: is a directory, not an audio file", r->name);
    if (!S_ISREG(sb.st_mode)) {
        /* libsndfile needs to seek, so hold the bytes in memory, bounded. */
        double cap_d = cfg->max_duration_s * STDIN_BYTES_PER_S + 4096.0;
        size_t cap = cap_d > (double)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)cap_d;
        return slurp_fd(r, fd, cap);
    }
    off_t base = is_stdin ? lseek(fd, 0, SEEK_CUR) : 0;
    if (base < 0) base = 0;
    r->src.base = base;
    r->src.size = (sf_count_t)(sb.st_size > base ? sb.st_size - base : 0);
    /* A regular file that cannot be read (EACCES is caught by open; EISDIR above; this catches
     * e.g. EIO) fails here rather than as a confusing format error. */
    unsigned char probe;
    if (r->src.size > 0 && pread(fd, &probe, 1, base) != 1)
        return mp__fail(MP_ERR_IO, "%s: cannot read: %s", r->name, strerror(errno));
    return MP_OK;
}

mp_status mp__audio_reader_open_file(const char *path, const mp_audio_config *cfg, mp__audio_reader **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_audio_load_file: out is NULL");
    *out = NULL;
    if (!path) return mp__fail(MP_ERR_INVALID_ARG, "mp_audio_load_file: path is NULL");
    mp_audio_config def = mp_audio_default_config();
    if (!cfg) cfg = &def;
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    mp_status st = check_config(cfg, name);
    if (st != MP_OK) return st;
    mp__audio_reader *r = reader_new(name);
    if (!r) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", name);
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = mp__fail(MP_ERR_IO, "%s: cannot open: %s", name, strerror(errno));
    } else {
        r->src.own_fd = !is_stdin;
        r->src.fd = fd;
        st = attach_fd(r, fd, is_stdin, cfg);
    }
    if (st == MP_OK) st = reader_open(r, cfg);
    if (st != MP_OK) {
        mp__audio_reader_free(r);
        return st;
    }
    *out = r;
    return MP_OK;
}

mp_status mp__audio_reader_open_memory(const void *data, size_t n_bytes, const mp_audio_config *cfg,
                                       mp__audio_reader **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_audio_load_memory: out is NULL");
    *out = NULL;
    if (!data && n_bytes) return mp__fail(MP_ERR_INVALID_ARG, "mp_audio_load_memory: data is NULL");
    mp_audio_config def = mp_audio_default_config();
    if (!cfg) cfg = &def;
    const char *name = cfg->name && *cfg->name ? cfg->name : "<memory>";
    mp_status st = check_config(cfg, name);
    if (st != MP_OK) return st;
    if (n_bytes > (size_t)INT64_MAX) return mp__fail(MP_ERR_INVALID_ARG, "%s: size too large", name);
    mp__audio_reader *r = reader_new(name);
    if (!r) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", name);
    r->src.mem = data ? data : (const void *)"";
    r->src.size = (sf_count_t)n_bytes;
    st = reader_open(r, cfg);
    if (st != MP_OK) {
        mp__audio_reader_free(r);
        return st;
    }
    *out = r;
    return MP_OK;
}

int mp__audio_reader_rate(const mp__audio_reader *r) { return r->rate; }
const char *mp__audio_reader_name(const mp__audio_reader *r) { return r->name; }
const char *mp__audio_reader_source(const mp__audio_reader *r) { return r->source; }

/* Mix interleaved frames [n][ch] to mono: the mean of the channels (librosa.to_mono: np.mean over
 * the channel axis), or the one channel the caller picked. */
static void to_mono(const float *frames, size_t n, int ch, int pick, float *out) {
    if (pick >= 0) {
        for (size_t i = 0; i < n; i++) out[i] = frames[i * (size_t)ch + (size_t)pick];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int c = 0; c < ch; c++) s += frames[i * (size_t)ch + (size_t)c];
        out[i] = s / (float)ch;
    }
}

mp_status mp__audio_reader_read(mp__audio_reader *r, float *buf, size_t cap, size_t *n_read) {
    *n_read = 0;
    size_t n = 0;
    if (r->kind == KIND_AMR) {
        while (n < cap) {
            if (r->amr_used == r->amr_have) {
                if (r->amr_done) break;
                mp_status st = amr_next_frame(r);
                if (st != MP_OK) return st;
                if (r->amr_done) break;
            }
            while (n < cap && r->amr_used < r->amr_have) buf[n++] = (float)r->amr_pcm[r->amr_used++] / 32768.0f;
        }
    } else {
        while (n < cap) {
            size_t want = cap - n < READ_BLOCK ? cap - n : READ_BLOCK;
            sf_count_t got;
            if (r->channels == 1) {
                got = sf_readf_float(r->sf, buf + n, (sf_count_t)want);
            } else {
                got = sf_readf_float(r->sf, r->frames, (sf_count_t)want);
                if (got > 0) to_mono(r->frames, (size_t)got, r->channels, r->pick, buf + n);
            }
            if (got <= 0) {
                if (sf_error(r->sf) != SF_ERR_NO_ERROR)
                    return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: decode error after %llu samples: %s", r->name,
                                    (unsigned long long)r->n_out, sf_strerror(r->sf));
                break;
            }
            n += (size_t)got;
            if ((size_t)got < want) break; /* end of data */
        }
    }
    /* Non-finite samples (a float WAV with NaN/Inf) would poison the model's normalization. */
    for (size_t i = 0; i < n; i++)
        if (!isfinite(buf[i])) buf[i] = 0.0f;
    r->n_out += n;
    if (r->n_out > r->n_max)
        return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: longer than max_duration_s = %g s", r->name, r->max_duration_s);
    *n_read = n;
    return MP_OK;
}

void mp__audio_reader_free(mp__audio_reader *r) {
    if (!r) return;
    if (r->sf) sf_close(r->sf);
    if (r->amr) Decoder_Interface_exit(r->amr);
    if (r->src.own_fd && r->src.fd >= 0) close(r->src.fd);
    free(r->src.owned_mem);
    free(r->frames);
    free(r);
}

/* ---- resampler ---------------------------------------------------------------------------------- */

/* librosa.resample (res_type "soxr_hq", the default of librosa.load since 0.10) calls
 * soxr.resample(y, orig_sr, target_sr, quality="soxr_hq"), which runs libsoxr with
 * soxr_quality_spec(SOXR_HQ, 0) and float32 in and out (python-soxr, src/soxr_ext.cpp), then
 * fixes the length to ceil(n * target_sr / orig_sr) with util.fix_length (zero-pad or cut).
 * This stream does the same piece by piece: soxr's output does not depend on how the input is
 * split, and the final length is fixed at flush time. */
struct mp__resampler {
    soxr_t soxr;
    int in_rate, out_rate;
    uint64_t n_in, n_out;
    float *buf;
    size_t cap;
    int flushed;
};

mp_status mp__resampler_create(int in_rate, int out_rate, mp__resampler **out) {
    *out = NULL;
    if (in_rate < MIN_RATE || in_rate > MAX_RATE || out_rate < MIN_RATE || out_rate > MAX_RATE)
        return mp__fail(MP_ERR_INVALID_ARG, "resample: rates %d -> %d Hz outside %d..%d", in_rate, out_rate, MIN_RATE,
                        MAX_RATE);
    mp__resampler *r = calloc(1, sizeof *r);
    if (!r) return mp__fail(MP_ERR_NOMEM, "resample: out of memory");
    r->in_rate = in_rate;
    r->out_rate = out_rate;
    if (in_rate != out_rate) {
        soxr_error_t err = NULL;
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        soxr_runtime_spec_t rt = soxr_runtime_spec(1); /* one thread: workers own their cores */
        r->soxr = soxr_create(in_rate, out_rate, 1, &err, &io, &q, &rt);
        if (!r->soxr || err) {
            free(r);
            return mp__fail(MP_ERR_INTERNAL, "resample: soxr_create %d -> %d Hz: %s", in_rate, out_rate,
                            err ? err : "failed");
        }
    }
    *out = r;
    return MP_OK;
}

static mp_status rs_reserve(mp__resampler *r, size_t need) {
    if (need <= r->cap) return MP_OK;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < need) cap *= 2;
    float *b = realloc(r->buf, cap * sizeof *b);
    if (!b) return mp__fail(MP_ERR_NOMEM, "resample: out of memory");
    r->buf = b;
    r->cap = cap;
    return MP_OK;
}

/* Final length as librosa computes it: int(np.ceil(n * (target_sr / orig_sr))) in doubles. */
static uint64_t rs_final_length(const mp__resampler *r) {
    return (uint64_t)ceil((double)r->n_in * ((double)r->out_rate / (double)r->in_rate));
}

mp_status mp__resampler_process(mp__resampler *r, const float *in, size_t n_in, const float **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (r->flushed) return mp__fail(MP_ERR_MISUSE, "resample: input after flush");
    r->n_in += n_in;
    if (!r->soxr) {
        *out = in;
        *n_out = n_in;
        r->n_out += n_in;
        return MP_OK;
    }
    size_t n = 0;
    while (n_in > 0) {
        /* Room for this piece's share of output plus soxr's pending delay. */
        size_t want = (size_t)((double)n_in * r->out_rate / r->in_rate) + (size_t)soxr_delay(r->soxr) + 64;
        mp_status st = rs_reserve(r, n + want);
        if (st != MP_OK) return st;
        size_t idone = 0, odone = 0;
        soxr_error_t err = soxr_process(r->soxr, in, n_in, &idone, r->buf + n, r->cap - n, &odone);
        if (err) return mp__fail(MP_ERR_INTERNAL, "resample: %s", err);
        in += idone;
        n_in -= idone;
        n += odone;
        if (idone == 0 && odone == 0) return mp__fail(MP_ERR_INTERNAL, "resample: soxr made no progress");
    }
    r->n_out += n;
    *out = r->buf;
    *n_out = n;
    return MP_OK;
}

mp_status mp__resampler_drain(mp__resampler *r, const float **out, size_t *n_out) {
    mp_status st = mp__resampler_flush(r, out, n_out);
    if (st != MP_OK || !r->soxr) {
        r->flushed = st != MP_OK;
        if (st == MP_OK) r->n_in = r->n_out = 0;
        return st;
    }
    /* soxr_clear keeps the configuration for a fresh signal: the output just returned stays in
     * r->buf (soxr_clear does not touch it) until the next call */
    soxr_error_t err = soxr_clear(r->soxr);
    if (err) return mp__fail(MP_ERR_INTERNAL, "resample: soxr_clear: %s", err);
    r->n_in = r->n_out = 0;
    r->flushed = 0;
    return MP_OK;
}

mp_status mp__resampler_flush(mp__resampler *r, const float **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (r->flushed) return MP_OK;
    r->flushed = 1;
    uint64_t final = rs_final_length(r);
    if (!r->soxr) return MP_OK;
    size_t n = 0;
    for (;;) {
        mp_status st = rs_reserve(r, n + 4096);
        if (st != MP_OK) return st;
        size_t odone = 0;
        soxr_error_t err = soxr_process(r->soxr, NULL, 0, NULL, r->buf + n, r->cap - n, &odone);
        if (err) return mp__fail(MP_ERR_INTERNAL, "resample: %s", err);
        if (odone == 0) break;
        n += odone;
    }
    /* Fix the total length to librosa's: drop extra samples or pad with zeros. Earlier pieces
     * were already handed out, so only the tail can change; soxr lags behind its input, so
     * before the flush it never produced more than the final length. */
    uint64_t total = r->n_out + n;
    if (total > final) {
        uint64_t drop = total - final;
        n = drop >= n ? 0 : n - (size_t)drop;
    } else if (total < final) {
        size_t pad = (size_t)(final - total);
        mp_status st = rs_reserve(r, n + pad);
        if (st != MP_OK) return st;
        memset(r->buf + n, 0, pad * sizeof *r->buf);
        n += pad;
    }
    r->n_out += n;
    *out = r->buf;
    *n_out = n;
    return MP_OK;
}

void mp__resampler_free(mp__resampler *r) {
    if (!r) return;
    if (r->soxr) soxr_delete(r->soxr);
    free(r->buf);
    free(r);
}

mp_status mp_resample(const float *in, size_t n_in, int in_rate, int out_rate, float **out, size_t *n_out) {
    if (!out || !n_out) return mp__fail(MP_ERR_INVALID_ARG, "mp_resample: out is NULL");
    *out = NULL;
    *n_out = 0;
    if (!in && n_in) return mp__fail(MP_ERR_INVALID_ARG, "mp_resample: in is NULL");
    mp__resampler *r;
    mp_status st = mp__resampler_create(in_rate, out_rate, &r);
    if (st != MP_OK) return st;
    size_t final = (size_t)ceil((double)n_in * ((double)out_rate / (double)in_rate));
    float *res = malloc((final ? final : 1) * sizeof *res);
    if (!res) st = mp__fail(MP_ERR_NOMEM, "mp_resample: out of memory for %zu samples", final);
    size_t n = 0;
    const float *piece;
    size_t np;
    if (st == MP_OK) st = mp__resampler_process(r, in, n_in, &piece, &np);
    if (st == MP_OK) {
        memcpy(res, piece, np * sizeof *res);
        n = np;
        st = mp__resampler_flush(r, &piece, &np);
        if (st == MP_OK) {
            memcpy(res + n, piece, np * sizeof *res);
            n += np;
        }
    }
    mp__resampler_free(r);
    if (st != MP_OK) {
        free(res);
        return st;
    }
    *out = res;
    *n_out = n;
    return MP_OK;
}

/* ---- mp_audio ----------------------------------------------------------------------------------- */

struct mp_audio {
    float *samples;
    size_t n, cap;            /* samples held, and allocated */
    size_t charged;           /* bytes charged to the caller's budget: >= cap * 4 */
    size_t hint;              /* samples the header declares at the output rate, 0 if unknown */
    int rate;
    char source[160];
};

mp_audio_config mp_audio_default_config(void) {
    return (mp_audio_config){
        .raw_format = MP_RAW_NONE,
        .raw_rate = 8000,
        .raw_channels = 1,
        .channel = -1,
        .target_rate = 16000,
        .max_duration_s = 4.0 * 3600.0,
        .reserve_fn = NULL,
        .reserve_user_data = NULL,
    };
}

/* Charge the caller's budget so that it covers `bytes` in all. */
static mp_status charge_to(mp_audio *a, size_t bytes, const mp_audio_config *cfg, const char *name) {
    if (bytes <= a->charged) return MP_OK;
    size_t more = bytes - a->charged;
    if (cfg->reserve_fn && !cfg->reserve_fn(more, cfg->reserve_user_data))
        return mp__fail(MP_ERR_NOMEM, "%s: decoding needs %zu more bytes than the memory budget allows", name,
                        more);
    a->charged = bytes;
    return MP_OK;
}

/* Grow the sample buffer to hold c samples, charged before it is allocated. */
static mp_status grow_to(mp_audio *a, size_t c, const mp_audio_config *cfg, const char *name) {
    if (c <= a->cap) return MP_OK;
    if (c > SIZE_MAX / sizeof *a->samples) return mp__fail(MP_ERR_NOMEM, "%s: %zu samples is too many", name, c);
    mp_status st = charge_to(a, c * sizeof *a->samples, cfg, name);
    if (st != MP_OK) return st;
    float *s = realloc(a->samples, c * sizeof *s);
    if (!s) return mp__fail(MP_ERR_NOMEM, "%s: out of memory for %zu samples", name, c);
    a->samples = s;
    a->cap = c;
    return MP_OK;
}

/* Append n samples to a growing buffer (by half again, so a budget is charged at most 1.5x what
 * the buffer holds; bounded because the reader stops at max_duration_s). */
static mp_status append(mp_audio *a, const float *x, size_t n, const mp_audio_config *cfg, const char *name) {
    if (!n) return MP_OK;
    if (a->n + n > a->cap) {
        size_t c = a->cap + a->cap / 2;
        if (c < 65536) c = 65536;
        if (a->hint && a->n + n <= a->hint && c > a->hint) c = a->hint; /* the declared length fits exactly */
        if (c < a->n + n) c = a->n + n;
        mp_status st = grow_to(a, c, cfg, name);
        if (st != MP_OK) return st;
    }
    memcpy(a->samples + a->n, x, n * sizeof *x);
    a->n += n;
    return MP_OK;
}

/* A header that declares the length: refuse it at once when it is past max_duration_s (a small
 * file may claim hours of silence), else charge all of it before decoding. The buffer itself
 * still grows as samples arrive (a lying header costs budget, not memory). The 5 % and 1 s margins
 * spare formats whose length is an estimate (MP3); the reader enforces the exact limit. */
static mp_status reserve_declared(mp_audio *a, const mp__audio_reader *rd, const mp_audio_config *cfg) {
    if (!rd->declared) return MP_OK;
    double secs = (double)rd->declared / rd->rate;
    if (secs > cfg->max_duration_s * 1.05 + 1.0)
        return mp__fail(MP_ERR_AUDIO_FORMAT, "%s: header declares %.1f s, longer than max_duration_s = %g s",
                        rd->name, secs, cfg->max_duration_s);
    double n_out = ceil(secs * cfg->target_rate), n_max = ceil(cfg->max_duration_s * cfg->target_rate);
    a->hint = (size_t)(n_out < n_max ? n_out : n_max) + 1;
    return charge_to(a, a->hint * sizeof *a->samples, cfg, rd->name);
}

static mp_status load_all(mp__audio_reader *rd, const mp_audio_config *cfg, mp_audio **out) {
    mp_audio_config def = mp_audio_default_config();
    if (!cfg) cfg = &def;
    mp_audio *a = calloc(1, sizeof *a);
    float *piece = malloc(65536 * sizeof *piece);
    mp__resampler *rs = NULL;
    mp_status st = a && piece ? MP_OK : mp__fail(MP_ERR_NOMEM, "%s: out of memory", rd->name);
    if (st == MP_OK) st = reserve_declared(a, rd, cfg);
    if (st == MP_OK) st = mp__resampler_create(rd->rate, cfg->target_rate, &rs);
    while (st == MP_OK) {
        size_t n;
        st = mp__audio_reader_read(rd, piece, 65536, &n);
        if (st != MP_OK || n == 0) break;
        const float *o;
        size_t no;
        st = mp__resampler_process(rs, piece, n, &o, &no);
        if (st == MP_OK) st = append(a, o, no, cfg, rd->name);
    }
    if (st == MP_OK && rd->n_out == 0) st = mp__fail(MP_ERR_AUDIO_FORMAT, "%s: no audio samples", rd->name);
    if (st == MP_OK) {
        const float *o;
        size_t no;
        st = mp__resampler_flush(rs, &o, &no);
        if (st == MP_OK) st = append(a, o, no, cfg, rd->name);
    }
    mp__resampler_free(rs);
    free(piece);
    if (st != MP_OK) {
        mp_audio_free(a);
        return st;
    }
    a->rate = cfg->target_rate;
    snprintf(a->source, sizeof a->source, "%s", rd->source);
    *out = a;
    return MP_OK;
}

mp_status mp_audio_load_file(const char *path, const mp_audio_config *cfg, mp_audio **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_audio_load_file: out is NULL");
    *out = NULL;
    mp__audio_reader *rd;
    mp_status st = mp__audio_reader_open_file(path, cfg, &rd);
    if (st != MP_OK) return st;
    st = load_all(rd, cfg, out);
    mp__audio_reader_free(rd);
    return st;
}

mp_status mp_audio_load_memory(const void *data, size_t n_bytes, const mp_audio_config *cfg, mp_audio **out) {
    if (!out) return mp__fail(MP_ERR_INVALID_ARG, "mp_audio_load_memory: out is NULL");
    *out = NULL;
    mp__audio_reader *rd;
    mp_status st = mp__audio_reader_open_memory(data, n_bytes, cfg, &rd);
    if (st != MP_OK) return st;
    st = load_all(rd, cfg, out);
    mp__audio_reader_free(rd);
    return st;
}

const float *mp_audio_samples(const mp_audio *a, size_t *n_samples) {
    if (n_samples) *n_samples = a ? a->n : 0;
    return a ? a->samples : NULL;
}

int mp_audio_rate(const mp_audio *a) { return a ? a->rate : 0; }

const char *mp_audio_source(const mp_audio *a) { return a ? a->source : ""; }

size_t mp_audio_reserved_bytes(const mp_audio *a) { return a ? a->charged : 0; }

void mp_audio_free(mp_audio *a) {
    if (!a) return;
    free(a->samples);
    free(a);
}
