/* lexicon.c - word lists as a trie over the model's token ids (the beam search's word constraint),
 * spelling words in the vocabulary's tokens, and UTF-8 case mapping.
 *
 * DESIGN
 *   A word is spelled by longest-match over the vocabulary's ordinary tokens (special tokens, the
 *   blank and the word delimiter excluded); most wav2vec2 vocabularies have one character per
 *   token, but multi-character tokens work too. Lexicon files are usually lower case while
 *   base-960h-style vocabularies are upper case, so a word is tried as written, then upper-cased,
 *   then lower-cased. The trie is a node array plus one open-addressing hash table from
 *   (node, token) to the child node: one probe per beam extension, whatever the vocabulary size.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* ---- UTF-8 ------------------------------------------------------------------------------------- */

/* Decode one code point at s (n bytes left). Returns its length, or 0 when malformed. */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    int len;
    uint32_t v;
    if (c < 0x80) { *cp = c; return 1; }
    else if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* reject overlong forms, surrogates and values past U+10FFFF */
    static const uint32_t min_v[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_v[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static int utf8_encode(uint32_t v, char *out) {
    if (v < 0x80) { out[0] = (char)v; return 1; }
    if (v < 0x800) { out[0] = (char)(0xC0 | (v >> 6)); out[1] = (char)(0x80 | (v & 0x3F)); return 2; }
    if (v < 0x10000) {
        out[0] = (char)(0xE0 | (v >> 12)); out[1] = (char)(0x80 | ((v >> 6) & 0x3F));
        out[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (v >> 18)); out[1] = (char)(0x80 | ((v >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((v >> 6) & 0x3F)); out[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

/* Case tables come from glibc's C.UTF-8 locale object (never the process locale, which the
 * library must not depend on); without it, ASCII only. */
static locale_t utf8_locale = (locale_t)0;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static void utf8_locale_init(void) { utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

static uint32_t case_map(uint32_t cp, int upper) {
    pthread_once(&utf8_once, utf8_locale_init);
    if (utf8_locale != (locale_t)0)
        return (uint32_t)(upper ? towupper_l((wint_t)cp, utf8_locale) : towlower_l((wint_t)cp, utf8_locale));
    if (cp < 0x80) return (uint32_t)(upper ? toupper((int)cp) : tolower((int)cp));
    return cp;
}

/* Case-map s; malformed bytes are copied unchanged. */
static char *utf8_case(const char *s, size_t len, int upper) {
    char *out = malloc(len * 2 + 1); /* a mapped code point needs at most 4 bytes vs >= 2 for non-ASCII */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (n == 0) { out[o++] = s[i++]; continue; }
        o += (size_t)utf8_encode(case_map(cp, upper), out + o);
        i += (size_t)n;
    }
    out[o] = '\0';
    return out;
}

char *mp__utf8_lower(const char *s, size_t len) { return utf8_case(s, len, 0); }

uint64_t mp__word_hash(uint64_t h, const char *s, size_t len) {
    char tmp[4];
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        int n = 1;
        if (c < 0x80) {
            tmp[0] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        } else {
            uint32_t cp;
            int cl = utf8_decode((const unsigned char *)s + i, len - i, &cp);
            if (cl == 0) tmp[0] = (char)c; /* malformed byte: hashed as is */
            else {
                n = utf8_encode(case_map(cp, 0), tmp);
                i += (size_t)cl - 1;
            }
        }
        for (int j = 0; j < n; j++) {
            h ^= (unsigned char)tmp[j];
            h *= 0x100000001b3ULL; /* FNV-1a 64 prime */
        }
        i++;
    }
    return h;
}

/* ---- spelling words in tokens ------------------------------------------------------------------- */

static int ordinary_token(const mp_model *m, int id) {
    return id != m->pad_id && id != m->word_delim_id && id != m->bos_id && id != m->eos_id && id != m->unk_id &&
           m->tokens[id] && m->tokens[id][0];
}

static int spell(const mp_model *m, const char *w, size_t len, int *ids, int max) {
    int n = 0;
    for (size_t i = 0; i < len;) {
        int best = -1;
        size_t best_len = 0;
        for (int id = 0; id < m->n_tokens; id++) {
            if (!ordinary_token(m, id)) continue;
            const char *t = m->tokens[id];
            if ((unsigned char)t[0] != (unsigned char)w[i]) continue;
            size_t tl = strlen(t);
            if (tl > best_len && tl <= len - i && memcmp(t, w + i, tl) == 0) {
                best = id;
                best_len = tl;
            }
        }
        if (best < 0 || n >= max) return -1;
        ids[n++] = best;
        i += best_len;
    }
    return n;
}

int mp__word_to_tokens(const mp_model *m, const char *word, size_t len, int *ids, int max) {
    if (len == 0) return -1;
    int n = spell(m, word, len, ids, max);
    if (n > 0) return n;
    for (int upper = 1; upper >= 0; upper--) {
        char *c = utf8_case(word, len, upper);
        if (!c) return -1;
        n = spell(m, c, strlen(c), ids, max);
        free(c);
        if (n > 0) return n;
    }
    return -1;
}

/* ---- the trie ------------------------------------------------------------------------------------ */

#define MAX_WORD_TOKENS 256

struct mp_lexicon {
    int n_tokens;       /* vocabulary size of the model it was built for */
    unsigned char *is_word; /* [n_nodes] */
    int n_nodes, cap_nodes;
    uint64_t *keys;     /* (node * n_tokens + token) + 1; 0 = empty slot */
    int32_t *vals;      /* child node */
    size_t cap;         /* power of two */
    size_t n_edges;
    size_t n_words;
};

static size_t edge_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

int mp__lexicon_child(const mp_lexicon *lex, int node, int token) {
    if (token < 0 || token >= lex->n_tokens || node < 0) return -1;
    uint64_t key = (uint64_t)node * (uint64_t)lex->n_tokens + (uint64_t)token + 1;
    for (size_t i = edge_hash(key) & (lex->cap - 1);; i = (i + 1) & (lex->cap - 1)) {
        if (lex->keys[i] == key) return lex->vals[i];
        if (lex->keys[i] == 0) return -1;
    }
}

int mp__lexicon_is_word(const mp_lexicon *lex, int node) {
    return node >= 0 && node < lex->n_nodes && lex->is_word[node];
}

static int grow_edges(mp_lexicon *lex) {
    size_t cap = lex->cap * 2;
    uint64_t *keys = calloc(cap, sizeof *keys);
    int32_t *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t j = 0; j < lex->cap; j++) {
        if (!lex->keys[j]) continue;
        size_t i = edge_hash(lex->keys[j]) & (cap - 1);
        while (keys[i]) i = (i + 1) & (cap - 1);
        keys[i] = lex->keys[j];
        vals[i] = lex->vals[j];
    }
    free(lex->keys);
    free(lex->vals);
    lex->keys = keys;
    lex->vals = vals;
    lex->cap = cap;
    return 0;
}

static int new_node(mp_lexicon *lex) {
    if (lex->n_nodes == lex->cap_nodes) {
        int cap = lex->cap_nodes ? lex->cap_nodes * 2 : 256;
        unsigned char *w = realloc(lex->is_word, (size_t)cap);
        if (!w) return -1;
        lex->is_word = w;
        lex->cap_nodes = cap;
    }
    lex->is_word[lex->n_nodes] = 0;
    return lex->n_nodes++;
}

static int insert(mp_lexicon *lex, const int *ids, int n) {
    int node = 0;
    for (int j = 0; j < n; j++) {
        int child = mp__lexicon_child(lex, node, ids[j]);
        if (child < 0) {
            if ((lex->n_edges + 1) * 2 > lex->cap && grow_edges(lex)) return -1; /* load <= 1/2 */
            child = new_node(lex);
            if (child < 0) return -1;
            uint64_t key = (uint64_t)node * (uint64_t)lex->n_tokens + (uint64_t)ids[j] + 1;
            size_t i = edge_hash(key) & (lex->cap - 1);
            while (lex->keys[i]) i = (i + 1) & (lex->cap - 1);
            lex->keys[i] = key;
            lex->vals[i] = child;
            lex->n_edges++;
        }
        node = child;
    }
    if (!lex->is_word[node]) lex->n_words++;
    lex->is_word[node] = 1;
    return 0;
}

static mp_lexicon *lex_new(const mp_model *m) {
    mp_lexicon *lex = calloc(1, sizeof *lex);
    if (!lex) return NULL;
    lex->n_tokens = m->n_tokens;
    lex->cap = 1024;
    lex->keys = calloc(lex->cap, sizeof *lex->keys);
    lex->vals = malloc(lex->cap * sizeof *lex->vals);
    if (!lex->keys || !lex->vals || new_node(lex) != 0) {
        mp_lexicon_free(lex);
        return NULL;
    }
    return lex;
}

void mp_lexicon_free(mp_lexicon *lex) {
    if (!lex) return;
    free(lex->is_word);
    free(lex->keys);
    free(lex->vals);
    free(lex);
}

static int model_ok(const mp_model *m) { return m && m->tokens && m->n_tokens > 0; }

/* Add one word; where names it in errors ("path:line" or "words[i]"). */
static mp_status add_word(mp_lexicon *lex, const mp_model *m, const char *w, size_t len, const char *where) {
    int ids[MAX_WORD_TOKENS];
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        int n = utf8_decode((const unsigned char *)w + i, len - i, &cp);
        if (n == 0) return mp__fail(MP_ERR_DECODER_FORMAT, "%s: invalid UTF-8", where);
        i += (size_t)n;
    }
    if (len > MAX_WORD_TOKENS * 4)
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s: word longer than %d characters", where, MAX_WORD_TOKENS);
    int n = mp__word_to_tokens(m, w, len, ids, MAX_WORD_TOKENS);
    if (n <= 0) {
        /* name the first character the vocabulary lacks */
        for (size_t i = 0; i < len;) {
            int cl = utf8_decode((const unsigned char *)w + i, len - i, &cp);
            if (mp__word_to_tokens(m, w + i, (size_t)cl, ids, 1) != 1)
                return mp__fail(MP_ERR_DECODER_FORMAT, "%s: word \"%.*s\": character \"%.*s\" is not in the vocabulary",
                                where, (int)len, w, cl, w + i);
            i += (size_t)cl;
        }
        return mp__fail(MP_ERR_DECODER_FORMAT, "%s: word \"%.*s\" cannot be spelled in the vocabulary", where,
                        (int)len, w);
    }
    if (insert(lex, ids, n)) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", where);
    return MP_OK;
}

mp_status mp_lexicon_from_words(const mp_model *model, const char *const *words, size_t n_words, mp_lexicon **out) {
    if (out) *out = NULL;
    if (!model_ok(model) || !out || (n_words > 0 && !words))
        return mp__fail(MP_ERR_INVALID_ARG, "mp_lexicon_from_words: NULL argument or model without vocabulary");
    mp_lexicon *lex = lex_new(model);
    if (!lex) return mp__fail(MP_ERR_NOMEM, "lexicon: out of memory");
    mp_status st = MP_OK;
    for (size_t i = 0; st == MP_OK && i < n_words; i++) {
        char where[48];
        snprintf(where, sizeof where, "words[%zu]", i);
        st = words[i] ? add_word(lex, model, words[i], strlen(words[i]), where)
                      : mp__fail(MP_ERR_INVALID_ARG, "%s: NULL", where);
    }
    if (st != MP_OK) {
        mp_lexicon_free(lex);
        return st;
    }
    *out = lex;
    return MP_OK;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

mp_status mp_lexicon_load(const mp_model *model, const char *path, mp_lexicon **out) {
    if (out) *out = NULL;
    if (!model_ok(model) || !path || !out)
        return mp__fail(MP_ERR_INVALID_ARG, "mp_lexicon_load: NULL argument or model without vocabulary");
    FILE *f = fopen(path, "rb");
    if (!f) return mp__fail(MP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mp_lexicon *lex = lex_new(model);
    if (!lex) {
        fclose(f);
        return mp__fail(MP_ERR_NOMEM, "lexicon: out of memory");
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    mp_status st = MP_OK;
    while (st == MP_OK && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)n != strlen(line)) {
            st = mp__fail(MP_ERR_DECODER_FORMAT, "%s:%ld: NUL byte in line", path, lineno);
            break;
        }
        size_t i = 0, len = (size_t)n;
        if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) i = 3; /* UTF-8 BOM */
        while (i < len && is_space(line[i])) i++;
        if (i == len || line[i] == '#') continue;
        size_t e = i;
        while (e < len && !is_space(line[e])) e++;
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        st = add_word(lex, model, line + i, e - i, where);
    }
    if (st == MP_OK && ferror(f)) st = mp__fail(MP_ERR_IO, "%s: read error", path);
    free(line);
    fclose(f);
    if (st == MP_OK && lex->n_words == 0) st = mp__fail(MP_ERR_DECODER_FORMAT, "%s: no words", path);
    if (st != MP_OK) {
        mp_lexicon_free(lex);
        return st;
    }
    *out = lex;
    return MP_OK;
}

mp_status mp__lexicon_load_dir(const mp_model *m, const char *dir, mp_lexicon **out) {
    *out = NULL;
    if (!m || !dir) return mp__fail(MP_ERR_INVALID_ARG, "lexicon: NULL argument");
    static const char *names[] = {"lexicon.txt", "words.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = mp__path_join(dir, names[i]);
        if (!path) return mp__fail(MP_ERR_NOMEM, "lexicon: out of memory");
        FILE *f = fopen(path, "rb");
        int found = f != NULL;
        mp_status st = MP_OK;
        if (found) {
            fclose(f);
            st = mp_lexicon_load(m, path, out);
        }
        free(path);
        if (found) return st;
    }
    return MP_OK;
}
