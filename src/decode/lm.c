/* lm.c - word-level ARPA n-gram language models (orders 1..5) for the beam search.
 *
 * DESIGN
 *   Storage follows KenLM's "probing" structure (kpu/kenlm lm/search_hashed.hh): words and
 *   n-grams are identified by 64-bit hashes only, kept in linear-probing tables sized 1.5x the
 *   counts in the \data\ header, so an entry is 16 bytes (key, log10 prob, log10 backoff) and a
 *   100 MB ARPA file (a few million n-grams) needs about 80 MB. Two different n-grams sharing a
 *   64-bit hash is possible in principle (about n^2 / 2^64), as in KenLM.
 *   Words are case-folded (mp__word_hash) so an upper-case vocabulary (base-960h) meets the usual
 *   lower-case LM; the first spelling of a word wins when two fold to the same.
 *   Scores follow KenLM's BaseScore: the longest matching n-gram's log10 probability plus the
 *   backoffs of the longer contexts that did not match. A word absent from the LM is <unk>
 *   (log10 -100 when the file has no <unk>, as KenLM substitutes) plus the caller's offset
 *   (pyctcdecode's unk_score_offset, default -10; kensho-technologies/pyctcdecode
 *   language_model.py, LanguageModel.score).
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LM_MAX_ORDER 5
#define LM_MISSING_UNK_LOG10 (-100.0f)

typedef struct ngram_entry {
    uint64_t key; /* 0 = empty */
    float prob;   /* log10 */
    float backoff;
} ngram_entry;

typedef struct ngram_table {
    ngram_entry *e;
    size_t cap, n;
} ngram_table;

struct mp_lm {
    int order;
    /* vocabulary: word hash -> id; unigram scores by id */
    uint64_t *vkeys;
    int32_t *vids;
    size_t vcap; /* power of two */
    int n_words;
    float *uprob, *ubackoff; /* [n_words] */
    int bos, eos, unk;
    ngram_table t[LM_MAX_ORDER + 1]; /* orders 2..order */
};

static uint64_t mix64(uint64_t x) {
    /* splitmix64 finalizer */
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* n-gram keys hash the word ids newest first, so a lookup can widen the context one word at a time */
static uint64_t key_step(uint64_t h, int id) { return mix64(h ^ ((uint64_t)(uint32_t)id * 0xD6E8FEB86659FD93ULL)); }
#define KEY_SEED 0x2545F4914F6CDD1DULL

static size_t slot(uint64_t h, size_t cap) { return (size_t)(((unsigned __int128)h * cap) >> 64); }

static ngram_entry *table_find(const ngram_table *t, uint64_t key) {
    if (!t->cap) return NULL;
    if (!key) key = 1;
    for (size_t i = slot(key, t->cap);; i = i + 1 == t->cap ? 0 : i + 1) {
        if (t->e[i].key == key) return &t->e[i];
        if (t->e[i].key == 0) return NULL;
    }
}

/* Insert; returns 1 if inserted, 0 if the key was already there (first one wins). */
static int table_put(ngram_table *t, uint64_t key, float prob, float backoff) {
    if (!key) key = 1;
    size_t i = slot(key, t->cap);
    while (t->e[i].key) {
        if (t->e[i].key == key) return 0;
        i = i + 1 == t->cap ? 0 : i + 1;
    }
    t->e[i] = (ngram_entry){key, prob, backoff};
    t->n++;
    return 1;
}

int mp__lm_word_id_hash(const mp_lm *lm, uint64_t h) {
    if (!h) h = 1;
    for (size_t i = mix64(h) & (lm->vcap - 1);; i = (i + 1) & (lm->vcap - 1)) {
        if (lm->vkeys[i] == h) return lm->vids[i];
        if (lm->vkeys[i] == 0) return -1;
    }
}

int mp__lm_word_id(const mp_lm *lm, const char *word, size_t len) {
    return mp__lm_word_id_hash(lm, mp__word_hash(MP_WORD_HASH_INIT, word, len));
}

int mp__lm_bos(const mp_lm *lm) { return lm->bos; }
int mp__lm_eos(const mp_lm *lm) { return lm->eos; }
int mp_lm_order(const mp_lm *lm) { return lm ? lm->order : 0; }

float mp__lm_score(const mp_lm *lm, const int *ctx, int n_ctx, int word, float unk_log10) {
    float offset = 0;
    if (word < 0 || word >= lm->n_words) {
        word = lm->unk;
        offset = unk_log10;
    }
    if (n_ctx > lm->order - 1) n_ctx = lm->order - 1;
    /* a context word outside the LM is <unk>, as in KenLM */
    int c[LM_MAX_ORDER];
    for (int j = 0; j < n_ctx; j++) c[j] = ctx[j] >= 0 && ctx[j] < lm->n_words ? ctx[j] : lm->unk;
    float p = lm->uprob[word];
    int matched = 1; /* length of the longest matching n-gram */
    uint64_t h = key_step(KEY_SEED, word);
    for (int j = 0; j < n_ctx; j++) {
        h = key_step(h, c[j]);
        const ngram_entry *e = table_find(&lm->t[j + 2], h);
        if (!e) break;
        p = e->prob;
        matched = j + 2;
    }
    /* backoff weights of the contexts longer than the match: lengths matched..n_ctx */
    uint64_t hc = KEY_SEED;
    for (int m = 1; m <= n_ctx; m++) {
        hc = key_step(hc, c[m - 1]);
        if (m < matched) continue;
        if (m == 1) p += lm->ubackoff[c[0]];
        else {
            const ngram_entry *e = table_find(&lm->t[m], hc);
            if (e) p += e->backoff;
        }
    }
    return p + offset;
}

void mp_lm_free(mp_lm *lm) {
    if (!lm) return;
    free(lm->vkeys);
    free(lm->vids);
    free(lm->uprob);
    free(lm->ubackoff);
    for (int n = 0; n <= LM_MAX_ORDER; n++) free(lm->t[n].e);
    free(lm);
}

/* ---- ARPA parsing ------------------------------------------------------------------------------ */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Split line into at most max whitespace-separated fields (in place). Returns the count, or max+1
 * when there are more. */
static int split(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p && is_ws(*p)) p++;
        if (!*p) return n;
        if (n == max) return max + 1;
        f[n++] = p;
        while (*p && !is_ws(*p)) p++;
        if (*p) *p++ = '\0';
    }
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (end == s || *end || isnan(v)) return -1;
    if (isinf(v)) v = v < 0 ? -99.0f : 99.0f; /* some tools write -inf for impossible events */
    *out = v;
    return 0;
}

static mp_status vocab_add(mp_lm *lm, const char *w, float prob, float backoff, int *dup) {
    uint64_t h = mp__word_hash(MP_WORD_HASH_INIT, w, strlen(w));
    if (!h) h = 1;
    size_t i = mix64(h) & (lm->vcap - 1);
    while (lm->vkeys[i]) {
        if (lm->vkeys[i] == h) {
            *dup = 1;
            return MP_OK;
        }
        i = (i + 1) & (lm->vcap - 1);
    }
    *dup = 0;
    lm->vkeys[i] = h;
    lm->vids[i] = lm->n_words;
    lm->uprob[lm->n_words] = prob;
    lm->ubackoff[lm->n_words] = backoff;
    lm->n_words++;
    return MP_OK;
}

static mp_status alloc_counts(mp_lm *lm, const long *counts, const char *path, long lineno) {
    size_t n1 = (size_t)counts[1] + 1; /* + a possible substituted <unk> */
    size_t vcap = 16;
    while (vcap < n1 * 2) vcap *= 2;
    lm->vcap = vcap;
    lm->vkeys = calloc(vcap, sizeof *lm->vkeys);
    lm->vids = malloc(vcap * sizeof *lm->vids);
    lm->uprob = malloc(n1 * sizeof *lm->uprob);
    lm->ubackoff = malloc(n1 * sizeof *lm->ubackoff);
    if (!lm->vkeys || !lm->vids || !lm->uprob || !lm->ubackoff)
        return mp__fail(MP_ERR_NOMEM, "%s:%ld: out of memory for %ld unigrams", path, lineno, counts[1]);
    for (int n = 2; n <= lm->order; n++) {
        size_t cap = (size_t)counts[n] + (size_t)counts[n] / 2 + 1; /* load <= 2/3 */
        lm->t[n].e = calloc(cap, sizeof *lm->t[n].e);
        if (!lm->t[n].e) return mp__fail(MP_ERR_NOMEM, "%s:%ld: out of memory for %ld %d-grams", path, lineno, counts[n], n);
        lm->t[n].cap = cap;
    }
    return MP_OK;
}

/* The ARPA reader's state between lines. */
typedef struct arpa {
    mp_lm *lm;
    const char *path;
    long lineno;
    enum { PRE, DATA, GRAMS, END } state;
    long counts[LM_MAX_ORDER + 2];
    long seen;                        /* n-grams read in the current section */
    int cur;                          /* current section's order */
} arpa;

/* A section header: "\N-grams:" or "\end\" (the \data\ counts end at the first one). */
static mp_status arpa_header(arpa *a, const char *p) {
    mp_lm *lm = a->lm;
    if (a->state == GRAMS && a->seen != a->counts[a->cur])
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: the \\data\\ header announced %ld %d-grams, found %ld",
                        a->path, a->lineno, a->counts[a->cur], a->cur, a->seen);
    if (a->state == DATA) {
        if (lm->order == 0)
            return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: no \"ngram N=count\" line in \\data\\", a->path,
                            a->lineno);
        mp_status st = alloc_counts(lm, a->counts, a->path, a->lineno);
        if (st != MP_OK) return st;
    }
    if (!strcmp(p, "\\end\\")) {
        if (a->cur != lm->order)
            return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: \\end\\ before the %d-grams", a->path, a->lineno,
                            a->cur + 1);
        a->state = END;
        return MP_OK;
    }
    int n;
    char tail[16];
    if (sscanf(p, "\\%d-grams%15s", &n, tail) != 2 || strcmp(tail, ":") != 0 || n != a->cur + 1 || n > lm->order)
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: expected \"\\%d-grams:\", got \"%.40s\"", a->path,
                        a->lineno, a->cur + 1, p);
    a->cur = n;
    a->seen = 0;
    a->state = GRAMS;
    return MP_OK;
}

/* "ngram N=count" inside \data\. */
static mp_status arpa_count(arpa *a, const char *p) {
    int n;
    long c;
    char extra;
    if (sscanf(p, "ngram %d=%ld%c", &n, &c, &extra) != 2)
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: expected \"ngram N=count\", got \"%.40s\"", a->path,
                        a->lineno, p);
    if (n < 1 || n > LM_MAX_ORDER)
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: order %d not supported (1..%d)", a->path, a->lineno, n,
                        LM_MAX_ORDER);
    if (n != a->lm->order + 1 || c < 1 || c > 2000000000L)
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: bad n-gram count line \"%.40s\"", a->path, a->lineno, p);
    a->counts[n] = c;
    a->lm->order = n;
    return MP_OK;
}

/* An n-gram line of the current section: log10prob w1 .. wn [log10backoff]. line is the whole
 * line (for the message), p its text from the first field on. */
static mp_status arpa_ngram(arpa *a, char *p, const char *line) {
    mp_lm *lm = a->lm;
    const int cur = a->cur;
    char *fld[LM_MAX_ORDER + 3];
    int nf = split(p, fld, cur + 2);
    float prob, backoff = 0;
    if (nf < cur + 1 || nf > cur + 2 || (nf == cur + 2 && cur == lm->order))
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: expected a probability, %d word%s%s, got %d fields", a->path,
                        a->lineno, cur, cur > 1 ? "s" : "", cur < lm->order ? " and an optional backoff" : "", nf);
    if (parse_float(fld[0], &prob) || (nf == cur + 2 && parse_float(fld[cur + 1], &backoff)))
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: bad number in \"%.60s\"", a->path, a->lineno, line);
    if (++a->seen > a->counts[cur])
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: more %d-grams than the %ld announced", a->path, a->lineno, cur,
                        a->counts[cur]);
    if (cur == 1) {
        int dup;
        mp_status st = vocab_add(lm, fld[1], prob, backoff, &dup);
        if (!dup) {
            if (!strcmp(fld[1], "<s>")) lm->bos = lm->n_words - 1;
            else if (!strcmp(fld[1], "</s>")) lm->eos = lm->n_words - 1;
            else if (!strcmp(fld[1], "<unk>")) lm->unk = lm->n_words - 1;
        }
        return st;
    }
    uint64_t h = KEY_SEED;
    for (int j = cur; j >= 1; j--) {
        int id = mp__lm_word_id(lm, fld[j], strlen(fld[j]));
        if (id < 0)
            return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: word \"%.40s\" is not among the 1-grams", a->path,
                            a->lineno, fld[j]);
        h = key_step(h, id);
    }
    table_put(&lm->t[cur], h, prob, backoff);
    return MP_OK;
}

/* One line of len bytes (as getline returned it). */
static mp_status arpa_line(arpa *a, char *line, ssize_t len) {
    if ((size_t)len != strlen(line))
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: NUL byte in line", a->path, a->lineno);
    while (len > 0 && is_ws(line[len - 1])) line[--len] = '\0';
    char *p = line;
    while (*p && is_ws(*p)) p++;
    if (a->state == PRE) {
        if (!strcmp(p, "\\data\\")) a->state = DATA;
        return MP_OK; /* text before \data\ is a comment in ARPA */
    }
    if (!*p) return MP_OK;
    if (a->state == END) return mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: text after \\end\\", a->path, a->lineno);
    if (p[0] == '\\') return arpa_header(a, p);
    if (a->state == DATA) return arpa_count(a, p);
    return arpa_ngram(a, p, line);
}

/* Read every line of f into a->lm; then check that the file was complete. */
static mp_status arpa_read(arpa *a, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    mp_status st = MP_OK;
    while (st == MP_OK && (len = getline(&line, &cap, f)) >= 0) {
        a->lineno++;
        st = arpa_line(a, line, len);
    }
    free(line);
    if (st == MP_OK && ferror(f)) st = mp__fail(MP_ERR_IO, "%s: read error", a->path);
    if (st == MP_OK && a->state != END) {
        st = a->state == PRE ? mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: no \\data\\ section (not an ARPA file)",
                                        a->path, a->lineno)
                             : mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: file ends before \\end\\", a->path,
                                        a->lineno);
    }
    return st;
}

mp_status mp_lm_load_arpa(const char *path, mp_lm **out) {
    if (out) *out = NULL;
    if (!path || !out) return mp__fail(MP_ERR_INVALID_ARG, "mp_lm_load_arpa: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return mp__fail(MP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mp_lm *lm = calloc(1, sizeof *lm);
    mp_status st = lm ? MP_OK : mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    if (st == MP_OK) {
        lm->bos = lm->eos = lm->unk = -1;
        arpa a = {.lm = lm, .path = path, .state = PRE};
        st = arpa_read(&a, f);
    }
    fclose(f);
    if (st == MP_OK && lm->unk < 0) {
        int dup;
        vocab_add(lm, "<unk>", LM_MISSING_UNK_LOG10, 0, &dup);
        lm->unk = lm->n_words - 1;
    }
    if (st != MP_OK) {
        mp_lm_free(lm);
        return st;
    }
    *out = lm;
    return MP_OK;
}
