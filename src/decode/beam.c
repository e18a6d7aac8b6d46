/* beam.c - CTC prefix beam search over log-softmax frames, with an optional word lexicon, hotwords
 * and an ARPA n-gram LM, behind the mp__decoder_* interface (dispatch.c). The winning hypothesis
 * becomes text and words through the same emitter as greedy decoding (emit.c).
 *
 * DESIGN
 *   Prefix beam search as in Hannun et al. 2014 ("First-Pass Large Vocabulary Continuous Speech
 *   Recognition using Bi-Directional Recurrent DNNs", algorithm 1): every hypothesis is a label
 *   prefix with two natural-log probabilities, pb (all its alignments so far end in blank) and pnb
 *   (they end in its last label). Per frame each prefix stays (blank, or a repeat of its last
 *   label) or grows by one label (after a blank when the label repeats the last one); the same
 *   prefix reached twice is merged with log-add-exp; the beam_width best by
 *       score = logaddexp(pb, pnb) + ext + bonus
 *   survive. ext holds the word-level terms of the prefix, fixed when a word completes (at a word
 *   delimiter, or at the end): alpha * ln P_LM(word | context) + beta (pyctcdecode's shallow
 *   fusion, kensho-technologies/pyctcdecode language_model.py: kenlm's log10 times
 *   1/log10(e)), and each hotword phrase's boost when its last word completes. bonus is the
 *   transient credit of a hotword prefix in progress (boost * matched tokens / phrase tokens),
 *   so a hotword survives pruning before it is complete. At the end alpha * ln P(</s> | context)
 *   is added.
 *   A lexicon restricts labels to paths through its token trie: a label must be a child of the
 *   current node; the delimiter (or the end) is only allowed where a word ends. The delimiter is
 *   optional between lexicon words, because the model sometimes drops it between two words
 *   ("NINEEIG" for "nine eight"): where a word ends, a label that starts a lexicon word may also
 *   begin the next word directly, scored exactly as the delimiter then that label would be (word
 *   completion, then the new word) but without the delimiter's CTC emission. Such a prefix is a
 *   different hypothesis from the one with an explicit delimiter (its label sequence lacks it) and
 *   from an in-word continuation with the same labels, so its key marks the boundary (WB_KEY);
 *   its label carries a flag from which the output gets a zero-length delimiter (one space). CTC
 *   is unchanged: the label still needs a blank before it when it repeats the previous one.
 *   Out-of-list words (oov_score < 0): a word whose letters leave the trie (a label with no child,
 *   or a delimiter where no word ends) goes on as an OOV word that takes any letters, and its
 *   hypothesis pays oov_score once, at that moment, so pruning already sees the penalty (as
 *   pyctcdecode's unk_score_offset on partial words). A listed word that fits therefore beats
 *   spelling it as heard unless the acoustics favour the other letters by more than the
 *   penalty. Which labels form OOV words follows from the labels, so keys need no mark.
 *   Pauses (pause_split_s > 0): a label that comes after more than pause_split_s of blank frames
 *   since the word's last label (on the hypothesis's best path) starts a new word, through the
 *   same no-delimiter boundary as above (now also without a lexicon); the in-word continuation is
 *   not offered then, unless the word cannot end there (a lexicon word incomplete, no OOV path).
 *   Prefixes are identified by a 64-bit hash of their label sequence. Labels live in a
 *   reference-counted chain of immutable nodes shared between hypotheses; a node stores its
 *   label's run of frames (first, end, frames, summed probability) from the best-scoring path
 *   through it, which gives word times and confidences like the greedy decoder's. Memory is
 *   O(beam_width * vocab) per frame plus the live chains (the transcript), whatever the length.
 *   Tokens with log-probability more than TOKEN_PRUNE below the frame's best are not tried, and
 *   hypotheses more than BEAM_PRUNE below the best are dropped (pyctcdecode prunes likewise with
 *   token_min_logp and beam_prune_logp).
 */
#include "emit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HW_MAX_WORDS 8        /* words per hotword phrase */
#define LM_CTX 4              /* LM context words kept (order 5) */
#define TOKEN_PRUNE (-10.0)   /* ln: tokens below e^-10 ~ 5e-5 of the frame's best are not tried */
#define BEAM_PRUNE (-20.0)    /* ln: hypotheses scoring below the best by more are dropped */
#define BEAM_WIDTH_MAX 4096
#define LN10 2.302585092994046
#define WB_KEY (-2)           /* key_step() marker of a word boundary without a delimiter */
#define LEX_NONE (-1)         /* hyp.lex: no word list */
#define LEX_OOV (-2)          /* hyp.lex: inside a word outside the list */

/* ---- label chains -------------------------------------------------------------------------------- */

typedef struct chain {
    struct chain *parent;   /* earlier labels, or NULL */
    int tok;
    int wb;                 /* tok starts a lexicon word right after another (no delimiter) */
    int refs;               /* hypotheses, cache slots and children holding it */
    int64_t start, end, n;  /* frames: run [start, end), n frames emitting tok */
    double psum;            /* sum of softmax(tok) over those frames */
} chain;

#define CHAIN_BLOCK 1024
typedef struct chain_block {
    struct chain_block *next;
    chain nodes[CHAIN_BLOCK];
} chain_block;

/* ---- hotwords ------------------------------------------------------------------------------------ */

typedef struct hw_phrase {
    int n_words;
    uint64_t words[HW_MAX_WORDS]; /* word hashes, last word first */
    float boost;
} hw_phrase;

typedef struct hw_node {
    int first_child, next_sibling, tok;
    float bonus;  /* partial credit at this node */
} hw_node;

/* ---- hypotheses ---------------------------------------------------------------------------------- */

typedef struct hyp {
    uint64_t key;       /* prefix hash */
    double pb, pnb;     /* ln P(prefix, ends in blank / in its last label) */
    double ext;         /* word-level terms (LM, completed hotwords) */
    double bonus;       /* hotword partial credit */
    double best;        /* candidates: largest single contribution this frame (picks the timing) */
    chain *frozen;      /* labels before the last (owned reference), with their runs */
    int last;           /* last label, -1 for the empty prefix */
    int64_t l_start, l_end, l_n;
    double l_psum;
    int l_wb;           /* the last label starts a word without a delimiter (chain.wb) */
    int lex;            /* lexicon node (0 = word start), LEX_NONE when unconstrained, LEX_OOV in
                           an out-of-list word */
    int wlen;           /* tokens in the current word */
    uint64_t wh;        /* hash of the current word */
    int ctx[LM_CTX];    /* LM context, newest first */
    int n_ctx;
    uint64_t hist[HW_MAX_WORDS]; /* completed word hashes, newest first */
    int n_hist;
    int hw;             /* hotword trie node, -1 when none */
    chain *cache;       /* beams: this frame's frozen node for extensions (owned reference) */
} hyp;

struct mp__beam {
    const mp_model *m;
    int W, V;
    const mp_lexicon *lex;
    const mp_lm *lm;
    double alpha, beta;
    float unk10;
    double oov;           /* ln score of entering an out-of-list word; 0 = no such words */
    int64_t pause_frames; /* blank frames that end a word (mp__pause_frames); 0 = off */
    size_t *tok_len;
    hw_phrase *phr;
    int n_phr;
    hw_node *hwn;
    int n_hwn;
    hyp *beams, *cand;
    int n_beams, n_cand;
    int *order;           /* candidate indices by score */
    double *score;        /* candidate scores */
    double *lp;           /* [V] log-softmax of the current frame */
    /* merge table: prefix key -> candidate index for the current frame */
    uint64_t *mkeys;
    int *midx;
    unsigned *mgen;
    size_t mcap;
    unsigned gen;
    int64_t frame;
    chain *free_nodes;
    chain_block *blocks;
    double final_score;
};

static double lse(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

static uint64_t key_step(uint64_t h, int tok) {
    uint64_t x = h ^ ((uint64_t)(uint32_t)(tok + 1) * 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static chain *chain_new(mp__beam *b) {
    if (!b->free_nodes) {
        chain_block *blk = malloc(sizeof *blk);
        if (!blk) return NULL;
        blk->next = b->blocks;
        b->blocks = blk;
        for (int i = 0; i < CHAIN_BLOCK; i++) {
            blk->nodes[i].parent = b->free_nodes;
            b->free_nodes = &blk->nodes[i];
        }
    }
    chain *c = b->free_nodes;
    b->free_nodes = c->parent;
    return c;
}

static void chain_ref(chain *c) {
    if (c) c->refs++;
}

static void chain_unref(mp__beam *b, chain *c) {
    while (c && --c->refs == 0) {
        chain *p = c->parent;
        c->parent = b->free_nodes;
        b->free_nodes = c;
        c = p;
    }
}

static double hyp_score(const hyp *h) { return lse(h->pb, h->pnb) + h->ext + h->bonus; }

/* ---- word-level transitions ------------------------------------------------------------------------ */

static int hw_child(const mp__beam *b, int node, int tok) {
    if (node < 0 || !b->hwn) return -1;
    for (int c = b->hwn[node].first_child; c >= 0; c = b->hwn[c].next_sibling)
        if (b->hwn[c].tok == tok) return c;
    return -1;
}

/* The current word of h completes: LM term, hotword completions; h moves to a word start. */
static void complete_word(const mp__beam *b, hyp *h) {
    if (b->lm) {
        int id = mp__lm_word_id_hash(b->lm, h->wh);
        float s10 = mp__lm_score(b->lm, h->ctx, h->n_ctx, id, b->unk10);
        h->ext += b->alpha * (double)s10 * LN10 + b->beta;
        memmove(h->ctx + 1, h->ctx, (LM_CTX - 1) * sizeof h->ctx[0]);
        h->ctx[0] = id;
        if (h->n_ctx < LM_CTX) h->n_ctx++;
    }
    if (b->n_phr) {
        memmove(h->hist + 1, h->hist, (HW_MAX_WORDS - 1) * sizeof h->hist[0]);
        h->hist[0] = h->wh;
        if (h->n_hist < HW_MAX_WORDS) h->n_hist++;
        for (int i = 0; i < b->n_phr; i++) {
            const hw_phrase *p = &b->phr[i];
            if (p->n_words > h->n_hist) continue;
            int j = 0;
            while (j < p->n_words && p->words[j] == h->hist[j]) j++;
            if (j == p->n_words) h->ext += p->boost;
        }
    }
    h->wlen = 0;
    h->wh = MP_WORD_HASH_INIT;
    if (h->lex != LEX_NONE) h->lex = 0;
}

/* The lexicon node after h's current word + tok (a delimiter: 0 when a word may end here), or
 * LEX_OOV when the word leaves the list and out-of-list words are allowed (*enter_oov set when
 * it leaves it just now), or -3 when forbidden. */
static int next_lex(const mp__beam *b, const hyp *h, int tok, int delim, int *enter_oov) {
    *enter_oov = 0;
    if (h->lex == LEX_NONE) return LEX_NONE;
    int ends_ok = h->wlen == 0 || (h->lex >= 0 && mp__lexicon_is_word(b->lex, h->lex));
    if (delim && ends_ok) return h->lex;
    if (h->lex == LEX_OOV) return LEX_OOV;
    int child = delim ? -1 : mp__lexicon_child(b->lex, h->lex, tok);
    if (child >= 0) return child;
    if (b->oov == 0) return -3;
    *enter_oov = 1;
    return LEX_OOV;
}

/* State of prefix h + tok (not the probabilities or timing). Returns 0 if the lexicon forbids it. */
static int extend_state(const mp__beam *b, const hyp *h, int tok, hyp *c) {
    int delim = tok == b->m->word_delim_id;
    int enter_oov;
    int lex = next_lex(b, h, tok, delim, &enter_oov);
    if (lex == -3) return 0;
    c->key = key_step(h->key, tok);
    c->ext = h->ext + (enter_oov ? b->oov : 0.0);
    c->lex = lex;
    c->wlen = h->wlen;
    c->wh = h->wh;
    memcpy(c->ctx, h->ctx, sizeof c->ctx);
    c->n_ctx = h->n_ctx;
    memcpy(c->hist, h->hist, sizeof c->hist);
    c->n_hist = h->n_hist;
    int hw;
    if (delim) {
        if (h->wlen > 0) complete_word(b, c);
        hw = hw_child(b, h->hw, tok);
    } else {
        c->wh = mp__word_hash(h->wh, b->m->tokens[tok] ? b->m->tokens[tok] : "", b->tok_len[tok]);
        c->wlen = h->wlen + 1;
        hw = hw_child(b, h->hw, tok);
        if (hw < 0 && h->wlen == 0) hw = hw_child(b, 0, tok);
    }
    c->hw = hw;
    c->bonus = hw >= 0 ? b->hwn[hw].bonus : 0.0;
    return 1;
}

/* State of prefix h + tok where tok starts a new word right after h's complete word, with no
 * delimiter between: the state of h + delimiter + tok, so the word completion (LM, hotwords) and
 * the hotword trie walk are exactly those of an explicit delimiter, under a key of its own.
 * Offered with a lexicon, and (forced, after a pause) without one. Returns 0 when there is no such
 * transition (no lexicon and not forced, no word to end, tok not a word start). */
static int extend_boundary(const mp__beam *b, const hyp *h, int tok, int forced, hyp *c) {
    int delim = b->m->word_delim_id;
    if ((h->lex == LEX_NONE && !forced) || delim < 0 || tok == delim || h->wlen == 0) return 0;
    hyp mid;
    if (!extend_state(b, h, delim, &mid) || !extend_state(b, &mid, tok, c)) return 0;
    c->key = key_step(key_step(h->key, WB_KEY), tok);
    return 1;
}

/* ---- search ---------------------------------------------------------------------------------------- */

/* Find the candidate for key, or append a fresh one (state to be filled by the caller). */
static hyp *cand_get(mp__beam *b, uint64_t key, int *fresh) {
    size_t i = (size_t)key & (b->mcap - 1);
    while (b->mgen[i] == b->gen) {
        if (b->mkeys[i] == key) {
            *fresh = 0;
            return &b->cand[b->midx[i]];
        }
        i = (i + 1) & (b->mcap - 1);
    }
    b->mgen[i] = b->gen;
    b->mkeys[i] = key;
    b->midx[i] = b->n_cand;
    hyp *c = &b->cand[b->n_cand++];
    c->pb = c->pnb = c->best = -INFINITY;
    c->frozen = NULL;
    c->cache = NULL;
    *fresh = 1;
    return c;
}

static void set_timing(mp__beam *b, hyp *c, chain *frozen, int last, int wb, int64_t s, int64_t e, int64_t n,
                       double psum) {
    chain_ref(frozen);
    chain_unref(b, c->frozen);
    c->frozen = frozen;
    c->last = last;
    c->l_wb = wb;
    c->l_start = s;
    c->l_end = e;
    c->l_n = n;
    c->l_psum = psum;
}

/* The chain node freezing h's last label, shared by all of h's extensions this frame. */
static chain *freeze(mp__beam *b, hyp *h) {
    if (h->last < 0) return NULL;
    if (h->cache) return h->cache;
    chain *c = chain_new(b);
    if (!c) return NULL;
    c->parent = h->frozen;
    chain_ref(h->frozen);
    c->tok = h->last;
    c->wb = h->l_wb;
    c->refs = 1; /* the cache's own reference */
    c->start = h->l_start;
    c->end = h->l_end;
    c->n = h->l_n;
    c->psum = h->l_psum;
    h->cache = c;
    return c;
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const double *s = ctx;
    double x = s[*(const int *)a], y = s[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : (*(const int *)a - *(const int *)b);
}

static int before(const double *s, int a, int b) { return s[a] > s[b] || (s[a] == s[b] && a < b); }

/* Reorder idx[0..n) so that its first k entries are the k best (quickselect, Hoare partition). */
static void select_top(int *idx, int n, int k, const double *s) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int pivot = idx[lo + (hi - lo) / 2], i = lo, j = hi;
        while (i <= j) {
            while (before(s, idx[i], pivot)) i++;
            while (before(s, pivot, idx[j])) j--;
            if (i <= j) {
                int x = idx[i];
                idx[i++] = idx[j];
                idx[j--] = x;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* b->lp = log-softmax of the frame; returns the token cutoff (TOKEN_PRUNE below the best
 * non-blank token). */
static double frame_log_softmax(mp__beam *b, const float *row) {
    const int V = b->V, blank = b->m->pad_id;
    double mx = row[0];
    for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    double z = 0;
    for (int v = 0; v < V; v++) z += exp((double)row[v] - mx);
    double lz = mx + log(z);
    double lmax = -INFINITY;
    for (int v = 0; v < V; v++) {
        b->lp[v] = (double)row[v] - lz;
        if (v != blank && b->lp[v] > lmax) lmax = b->lp[v];
    }
    return lmax + TOKEN_PRUNE;
}

/* h stays the same prefix at frame t: a blank, or a repeat of its last label. */
static void extend_stay(mp__beam *b, const hyp *h, int64_t t) {
    int fresh;
    hyp *c = cand_get(b, h->key, &fresh);
    if (fresh) {
        *c = *h;
        c->pb = c->pnb = c->best = -INFINITY;
        c->frozen = NULL;
        c->cache = NULL;
        set_timing(b, c, h->frozen, h->last, h->l_wb, h->l_start, h->l_end, h->l_n, h->l_psum);
    }
    double x = lse(h->pb, h->pnb) + b->lp[b->m->pad_id];
    c->pb = lse(c->pb, x);
    if (x > c->best) {
        c->best = x;
        set_timing(b, c, h->frozen, h->last, h->l_wb, h->l_start, h->l_end, h->l_n, h->l_psum);
    }
    if (h->last >= 0) {
        double p = (double)b->lp[h->last];
        x = h->pnb + p;
        c->pnb = lse(c->pnb, x);
        if (x > c->best) {
            c->best = x;
            set_timing(b, c, h->frozen, h->last, h->l_wb, h->l_start, t + 1, h->l_n + 1, h->l_psum + exp(p));
        }
    }
}

/* Candidate h + label k at frame t (state next, wb: starts a word without a delimiter), with
 * path score x. */
static mp_status add_label(mp__beam *b, hyp *h, const hyp *next, int k, int wb, double x, int64_t t) {
    int fresh;
    hyp *c = cand_get(b, next->key, &fresh);
    if (fresh) {
        *c = *next;
        c->pb = c->pnb = c->best = -INFINITY;
        c->frozen = NULL;
        c->cache = NULL;
        c->last = -1;
    }
    c->pnb = lse(c->pnb, x);
    if (x > c->best) {
        c->best = x;
        chain *fz = freeze(b, h);
        if (h->last >= 0 && !fz) return mp__fail(MP_ERR_NOMEM, "beam search: out of memory");
        set_timing(b, c, fz, k, wb, t, t + 1, 1, exp((double)b->lp[k]));
    }
    return MP_OK;
}

/* With a word list, a second delimiter run after blanks ("ONE | _ | EIGHT") ends no word: it is
 * the same prefix as the first run (path score x), so the text keeps one space between two words
 * and both alignments count for one hypothesis (pyctcdecode likewise joins its words with one
 * space). Without a word list the labels are HF's: two runs give two spaces, as greedy. */
static void delim_again(mp__beam *b, const hyp *h, double x, int64_t t) {
    int fresh;
    hyp *c = cand_get(b, h->key, &fresh); /* extend_stay made it this frame: never fresh */
    if (fresh) {
        *c = *h;
        c->pb = c->pnb = c->best = -INFINITY;
        c->frozen = NULL;
        c->cache = NULL;
        set_timing(b, c, h->frozen, h->last, h->l_wb, h->l_start, h->l_end, h->l_n, h->l_psum);
    }
    c->pnb = lse(c->pnb, x);
    if (x > c->best) {
        c->best = x;
        set_timing(b, c, h->frozen, h->last, h->l_wb, h->l_start, t + 1, h->l_n + 1,
                   h->l_psum + exp((double)b->lp[h->last]));
    }
}

/* h grows by one label at frame t: within the current word (or after a delimiter), and (wb = 1)
 * as the first label of a new word after a complete one with no delimiter between. */
static mp_status extend_grow(mp__beam *b, hyp *h, int64_t t, double cutoff) {
    const int V = b->V, blank = b->m->pad_id;
    double total = lse(h->pb, h->pnb);
    /* blank frames since the word's last label (on h's best path) longer than pause_split_s */
    int pause = b->pause_frames > 0 && h->wlen > 0 && h->last >= 0 && t - h->l_end >= b->pause_frames;
    for (int k = 0; k < V; k++) {
        if (k == blank || b->lp[k] < cutoff) continue;
        double x = (k == h->last ? h->pb : total) + (double)b->lp[k];
        if (x == -INFINITY) continue;
        if (k == h->last && k == b->m->word_delim_id && h->lex != LEX_NONE) {
            delim_again(b, h, x, t);
            continue;
        }
        hyp next[2];
        int ok[2];
        ok[1] = extend_boundary(b, h, k, pause, &next[1]);
        ok[0] = !(pause && ok[1]) && extend_state(b, h, k, &next[0]); /* a pause ends the word if it can */
        for (int wb = 0; wb < 2; wb++) {
            if (!ok[wb]) continue;
            mp_status st = add_label(b, h, &next[wb], k, wb, x, t);
            if (st != MP_OK) return st;
        }
    }
    return MP_OK;
}

/* Keep the best W candidates within BEAM_PRUNE of the best as the new beams: select the W largest
 * in linear expected time, then sort only those (a full sort of W * V candidates per frame would
 * dominate). */
static void prune(mp__beam *b) {
    double top = -INFINITY;
    for (int i = 0; i < b->n_cand; i++) {
        b->score[i] = hyp_score(&b->cand[i]);
        if (b->score[i] > top) top = b->score[i];
    }
    int n = 0;
    for (int i = 0; i < b->n_cand; i++)
        if (b->score[i] >= top + BEAM_PRUNE) b->order[n++] = i;
    for (int i = 0, j = n; i < b->n_cand; i++) /* the pruned ones after, to be released */
        if (b->score[i] < top + BEAM_PRUNE) b->order[j++] = i;
    int keep = n < b->W ? n : b->W;
    if (n > keep) select_top(b->order, n, keep, b->score);
    qsort_r(b->order, (size_t)keep, sizeof *b->order, cmp_desc, b->score);
    for (int i = 0; i < b->n_beams; i++) {
        chain_unref(b, b->beams[i].frozen);
        chain_unref(b, b->beams[i].cache);
    }
    for (int i = 0; i < keep; i++) {
        b->beams[i] = b->cand[b->order[i]];
        b->beams[i].cache = NULL;
    }
    for (int i = keep; i < b->n_cand; i++) chain_unref(b, b->cand[b->order[i]].frozen);
    b->n_beams = keep;
}

static mp_status step(mp__beam *b, const float *row) {
    double cutoff = frame_log_softmax(b, row);
    b->gen++;
    if (b->gen == 0) { /* wrapped: clear stamps once every 2^32 frames */
        memset(b->mgen, 0, b->mcap * sizeof *b->mgen);
        b->gen = 1;
    }
    b->n_cand = 0;
    for (int i = 0; i < b->n_beams; i++) {
        extend_stay(b, &b->beams[i], b->frame);
        mp_status st = extend_grow(b, &b->beams[i], b->frame, cutoff);
        if (st != MP_OK) return st;
    }
    prune(b);
    b->frame++;
    return MP_OK;
}

mp_status mp__beam_feed(mp__beam *b, const float *logits, int n_frames) {
    for (int t = 0; t < n_frames; t++) {
        mp_status st = step(b, logits + (size_t)t * (size_t)b->V);
        if (st != MP_OK) return st;
    }
    return MP_OK;
}

/* Final score of h (completing a pending word and adding </s>); -inf when the lexicon rejects it. */
static double final_score(const mp__beam *b, const hyp *h) {
    hyp c = *h;
    if (c.wlen > 0) {
        if (c.lex >= 0 && !mp__lexicon_is_word(b->lex, c.lex)) {
            if (b->oov == 0) return -INFINITY;
            c.ext += b->oov; /* the last word leaves the list at the end */
        }
        complete_word(b, &c);
    }
    double s = lse(c.pb, c.pnb) + c.ext;
    if (b->lm && mp__lm_eos(b->lm) >= 0)
        s += b->alpha * (double)mp__lm_score(b->lm, c.ctx, c.n_ctx, mp__lm_eos(b->lm), b->unk10) * LN10;
    return s;
}

mp_status mp__beam_finish(mp__beam *b, mp_result *res) {
    int best = -1, valid = 1;
    double bs = -INFINITY;
    for (int i = 0; i < b->n_beams; i++) {
        double s = final_score(b, &b->beams[i]);
        if (best < 0 || s > bs) {
            best = i;
            bs = s;
        }
    }
    if (best >= 0 && bs == -INFINITY) {
        /* every survivor ends inside a word the lexicon lacks: take the best and drop that word */
        valid = 0;
        best = 0;
        for (int i = 1; i < b->n_beams; i++)
            if (hyp_score(&b->beams[i]) > hyp_score(&b->beams[best])) best = i;
    }
    b->final_score = bs;
    /* the labels, with a zero-length delimiter run before each word that started without one, so
     * the text gets its single space and each word its own times */
    size_t n = 0;
    const hyp *h = best >= 0 ? &b->beams[best] : NULL;
    if (h && h->last >= 0) {
        n = 1 + (h->l_wb != 0);
        for (const chain *c = h->frozen; c; c = c->parent) n += 1 + (c->wb != 0);
    }
    int *tok = malloc((n + 1) * sizeof *tok);
    int64_t *s = malloc((n + 1) * sizeof *s), *e = malloc((n + 1) * sizeof *e), *nf = malloc((n + 1) * sizeof *nf);
    double *ps = malloc((n + 1) * sizeof *ps);
    mp_status st = MP_OK;
    if (!tok || !s || !e || !nf || !ps) st = mp__fail(MP_ERR_NOMEM, "beam search: out of memory");
    if (st == MP_OK && n > 0) {
        size_t i = n - 1;
        tok[i] = h->last, s[i] = h->l_start, e[i] = h->l_end, nf[i] = h->l_n, ps[i] = h->l_psum;
        int wb = h->l_wb;
        for (const chain *c = h->frozen;; c = c->parent) {
            if (wb) {
                i--;
                tok[i] = b->m->word_delim_id, s[i] = e[i] = s[i + 1], nf[i] = 0, ps[i] = 0;
            }
            if (!c) break;
            i--;
            tok[i] = c->tok, s[i] = c->start, e[i] = c->end, nf[i] = c->n, ps[i] = c->psum;
            wb = c->wb;
        }
        if (!valid) /* cut after the last delimiter */
            while (n > 0 && tok[n - 1] != b->m->word_delim_id) n--;
    }
    /* no pause splitting here: every word boundary the search made at a pause is in the labels
     * already (a zero-length delimiter), and where it kept a word whole across one (a lexicon
     * word not complete yet) the emitter must not split it ("O NE" for ONE) */
    if (st == MP_OK) st = mp__emit_runs(b->m, b->lex, 0, tok, s, e, ps, nf, n, res);
    free(tok);
    free(s);
    free(e);
    free(nf);
    free(ps);
    return st;
}

double mp__beam_score(const mp__beam *b) { return b ? b->final_score : 0.0; }

void mp__beam_free(mp__beam *b) {
    if (!b) return;
    while (b->blocks) {
        chain_block *nx = b->blocks->next;
        free(b->blocks);
        b->blocks = nx;
    }
    free(b->tok_len);
    free(b->phr);
    free(b->hwn);
    free(b->beams);
    free(b->cand);
    free(b->order);
    free(b->score);
    free(b->lp);
    free(b->mkeys);
    free(b->midx);
    free(b->mgen);
    free(b);
}

/* ---- setup ----------------------------------------------------------------------------------------- */

static int hw_add_node(mp__beam *b, int *cap, int parent, int tok) {
    if (b->n_hwn == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        hw_node *n = realloc(b->hwn, (size_t)nc * sizeof *n);
        if (!n) return -1;
        b->hwn = n;
        *cap = nc;
    }
    int id = b->n_hwn++;
    b->hwn[id] = (hw_node){.first_child = -1, .next_sibling = -1, .tok = tok, .bonus = 0};
    if (parent >= 0) {
        b->hwn[id].next_sibling = b->hwn[parent].first_child;
        b->hwn[parent].first_child = id;
    }
    return id;
}

static mp_status setup_hotwords(mp__beam *b, const mp_hotword *hws, size_t n) {
    const mp_model *m = b->m;
    b->phr = calloc(n, sizeof *b->phr);
    if (!b->phr) return mp__fail(MP_ERR_NOMEM, "hotwords: out of memory");
    int cap = 0;
    if (hw_add_node(b, &cap, -1, -1) != 0) return mp__fail(MP_ERR_NOMEM, "hotwords: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *p = hws[i].phrase;
        if (!p) return mp__fail(MP_ERR_INVALID_ARG, "hotword %zu: NULL phrase", i);
        if (!isfinite(hws[i].boost)) return mp__fail(MP_ERR_INVALID_ARG, "hotword %zu: boost is not finite", i);
        int path[1024], L = 0, nw = 0;
        uint64_t words[HW_MAX_WORDS];
        while (*p) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break;
            const char *e = p;
            while (*e && *e != ' ' && *e != '\t') e++;
            if (nw == HW_MAX_WORDS)
                return mp__fail(MP_ERR_DECODER_FORMAT, "hotword \"%s\": more than %d words", hws[i].phrase, HW_MAX_WORDS);
            if (nw > 0) {
                if (m->word_delim_id < 0)
                    return mp__fail(MP_ERR_DECODER_FORMAT, "hotword \"%s\": the vocabulary has no word delimiter",
                                    hws[i].phrase);
                path[L++] = m->word_delim_id;
            }
            int ids[256];
            int k = mp__word_to_tokens(m, p, (size_t)(e - p), ids, 256);
            if (k <= 0 || L + k > 1000)
                return mp__fail(MP_ERR_DECODER_FORMAT, "hotword \"%s\": \"%.*s\" cannot be spelled in the vocabulary",
                                hws[i].phrase, (int)(e - p), p);
            uint64_t h = MP_WORD_HASH_INIT;
            for (int j = 0; j < k; j++) {
                path[L++] = ids[j];
                h = mp__word_hash(h, m->tokens[ids[j]], b->tok_len[ids[j]]);
            }
            words[nw++] = h;
            p = e;
        }
        if (nw == 0) return mp__fail(MP_ERR_DECODER_FORMAT, "hotword %zu: empty phrase", i);
        hw_phrase *ph = &b->phr[b->n_phr++];
        ph->n_words = nw;
        ph->boost = hws[i].boost;
        for (int j = 0; j < nw; j++) ph->words[j] = words[nw - 1 - j];
        int node = 0;
        for (int j = 0; j < L; j++) {
            int c = hw_child(b, node, path[j]);
            if (c < 0 && (c = hw_add_node(b, &cap, node, path[j])) < 0)
                return mp__fail(MP_ERR_NOMEM, "hotwords: out of memory");
            float credit = hws[i].boost * (float)(j + 1) / (float)L;
            if (fabsf(credit) > fabsf(b->hwn[c].bonus)) b->hwn[c].bonus = credit;
            node = c;
        }
    }
    return MP_OK;
}

mp_status mp__beam_create(const mp_model *m, const mp_request_config *req, mp__beam **out) {
    *out = NULL;
    if (req->beam_width < 1 || req->beam_width > BEAM_WIDTH_MAX)
        return mp__fail(MP_ERR_INVALID_ARG, "request: beam_width %d outside 1..%d", req->beam_width, BEAM_WIDTH_MAX);
    if (!isfinite(req->lm_alpha) || !isfinite(req->lm_beta) || !isfinite(req->lm_unk_score))
        return mp__fail(MP_ERR_INVALID_ARG, "request: lm_alpha, lm_beta and lm_unk_score must be finite");
    if (req->n_hotwords > 0 && !req->hotwords)
        return mp__fail(MP_ERR_INVALID_ARG, "request: n_hotwords %zu with NULL hotwords", req->n_hotwords);
    mp__beam *b = calloc(1, sizeof *b);
    if (!b) return mp__fail(MP_ERR_NOMEM, "beam search: out of memory");
    b->m = m;
    b->W = req->beam_width;
    b->V = m->n_tokens;
    b->lex = req->lexicon ? req->lexicon : req->use_model_lexicon ? m->lexicon : NULL;
    b->lm = req->lm;
    b->alpha = req->lm_alpha;
    b->beta = req->lm_beta;
    b->unk10 = req->lm_unk_score;
    b->oov = b->lex ? (double)req->oov_score : 0.0;
    b->pause_frames = mp__pause_frames(m, req->pause_split_s);
    /* candidates per beam: the prefix itself, each label, and with a lexicon each label again as
     * the start of a word without a delimiter */
    size_t nc = (size_t)b->W * (size_t)(b->V + 1 + (b->lex ? b->V : 0));
    b->mcap = 16;
    while (b->mcap < nc * 2) b->mcap *= 2;
    b->tok_len = calloc((size_t)b->V, sizeof *b->tok_len);
    b->beams = calloc((size_t)b->W, sizeof *b->beams);
    b->cand = calloc(nc, sizeof *b->cand);
    b->order = calloc(nc, sizeof *b->order);
    b->score = calloc(nc, sizeof *b->score);
    b->lp = calloc((size_t)b->V, sizeof *b->lp);
    b->mkeys = calloc(b->mcap, sizeof *b->mkeys);
    b->midx = calloc(b->mcap, sizeof *b->midx);
    b->mgen = calloc(b->mcap, sizeof *b->mgen);
    mp_status st = MP_OK;
    if (!b->tok_len || !b->beams || !b->cand || !b->order || !b->score || !b->lp || !b->mkeys || !b->midx || !b->mgen)
        st = mp__fail(MP_ERR_NOMEM, "beam search: out of memory (beam %d, vocabulary %d)", b->W, b->V);
    for (int v = 0; st == MP_OK && v < b->V; v++) b->tok_len[v] = m->tokens[v] ? strlen(m->tokens[v]) : 0;
    if (st == MP_OK && req->n_hotwords > 0) st = setup_hotwords(b, req->hotwords, req->n_hotwords);
    if (st != MP_OK) {
        mp__beam_free(b);
        return st;
    }
    hyp *h = &b->beams[0];
    memset(h, 0, sizeof *h);
    h->key = 0x51ED270B27A5E5D7ULL;
    h->pb = 0;
    h->pnb = -INFINITY;
    h->last = -1;
    h->lex = b->lex ? 0 : LEX_NONE;
    h->wh = MP_WORD_HASH_INIT;
    h->hw = -1;
    if (b->lm && mp__lm_bos(b->lm) >= 0) {
        h->ctx[0] = mp__lm_bos(b->lm); /* KenLM BeginSentenceWrite: context <s> */
        h->n_ctx = 1;
    }
    b->n_beams = 1;
    *out = b;
    return MP_OK;
}
