/*
 * dnnl-conv.c - out [M][n] = in [M][k] W^T as a oneDNN 1x1 convolution over M time steps, with
 * W reordered once into the layout oneDNN's JIT kernel reads (dnnl-conv.h).
 *
 * DESIGN
 *   Why a convolution. in [M][k] and out [M][n] are oneDNN's nwc layout as they stand, and a
 *   convolution's weights can be reordered once at load, where a GEMM (OpenBLAS's sgemm,
 *   dnnl_gemm_u8s8s32) packs its weight operand again on every call (and the int8 GEMM into
 *   buffers it allocates per call). Executing allocates nothing behind our back: the scratchpad
 *   is the caller's (user mode; none is needed on AVX2, 12 KB a call for brgconv_1x1 on AVX-512).
 *
 *   Which kernel. oneDNN 2.6's AVX2 1x1 kernels, jit_1x1:avx2 (fp32) and
 *   jit_uni_int8_1x1:avx2 (u8 x s8), and for fp32 also the AVX-512 brgconv_1x1:avx512_core. The
 *   weight layout is the one oneDNN picks for a full tile; it qualifies when that kernel takes it
 *   for 1..16 rows and a full tile, in every variant (fp32 also with a bias, with a sum post-op,
 *   and with a GELU post-op with and without a bias), for a team of one thread and for the team
 *   at load. For other row counts the layout is not always the kernel's: on AVX-512, brgconv's
 *   blocking changes with the row count and the team size, and with the layout fixed oneDNN falls
 *   back to its reference loop (on a Zen 4, base's 768 x 768 linear at 128, 192, 208, 256, 272,
 *   336, 384, 416 and 480 rows: 6-18 s a call instead of ~1 ms; an 8 s clip is 384 + 15 rows).
 *   So which multiples of 16 the layout serves is probed once per (shape, layout, team), and
 *   tiles use only those (Tiles). On AVX-512 the embedded model's 256-wide linears and base's
 *   conv taps (512 x 1024) do not qualify at all on the Xeons measured: those keep their GEMMs.
 *   int8 stays AVX2-only: VNNI's brgemm kernels change layout the same way, and AVX-512
 *   without VNNI (jit_int8_1x1:avx512_core) returned wrong int8 sums for tiles of 5 rows. The int8
 *   kernel was checked exact against dnnl_gemm_u8s8s32 for 1..128 rows on every shape of base
 *   and the embedded model (tests/test-int8 prepack_avx2 checks the logits bit for bit); the fp32
 *   ones against the plain path (tests/test-forward prepack_avx2, prepack_base, dconv_tiles).
 *
 *   Tiles. Rows go in tiles of TILE, then the largest multiple of 16 the layout serves (16
 *   always does), then one below 16, so the row counts oneDNN ever sees (and caches a primitive
 *   for: oneDNN's primitive cache, and this thread's slots below) are bounded per weight shape
 *   whatever the input lengths. fp32 tiles are 512 rows (w2v2.c's blocks are at most that), int8
 *   ones 128. The primitive is made for the calling thread's OpenMP team size (oneDNN fixes it at
 *   creation), so mp__gemm_fit_threads is set before; a team whose probe fails the base row
 *   counts runs the product on one thread, which the load checked.
 */
#include "dnnl-conv.h"

#include "kernels.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef MP_HAVE_ONEDNN
#  include <dnnl.h>
#  include <pthread.h>

/* What differs between the two products. */
typedef struct dtype_info {
    dnnl_data_type_t src, wei, dst;
    size_t src_size;   /* bytes per input element (outputs are 4: f32, s32) */
    size_t tile;       /* rows per call at most */
    int variants;      /* probed variants: 1 plain; 5 plain, bias, sum, bias + GELU, GELU */
    const char *impl;  /* the AVX2 kernel's implementation name */
    const char *impl512; /* the AVX-512 one where it qualifies too (DESIGN, Which kernel), or NULL */
    const char *name;  /* for the log */
} dtype_info;

static const dtype_info g_types[] = {
    [MP__DCONV_F32] = {dnnl_f32, dnnl_f32, dnnl_f32, 4, 512, 5, "jit_1x1:avx2", "brgconv_1x1:avx512_core", "fp32"},
    [MP__DCONV_U8S8] = {dnnl_u8, dnnl_s8, dnnl_s32, 1, 128, 1, "jit_uni_int8_1x1:avx2", NULL, "int8"},
};

static dnnl_engine_t g_engine;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_cache_key; /* each thread's primitives (below), freed at the thread's exit */
static int g_cache_key_ok;
static void cache_free(void *p);
/* oneDNN's primitive cache holds 1024 primitives by default. Here one (weight shape, variant,
 * team size) takes up to 1 + 31 + 15 row counts (fp32 tiles), and the embedded model has ~16
 * (shape, variant) pairs: a server transcribing inputs of many lengths overflowed it and
 * generated JIT kernels again on every call (tests/test-server.sh interleave forced to AVX2: 109 s
 * and then > 180 s, against 11 s with room for all). Raised once to CACHE_MIN, never lowered;
 * ONEDNN_PRIMITIVE_CACHE_CAPACITY set higher, or 0 (off), by the user stays. */
enum { CACHE_MIN = 4096 };
static void engine_init(void) {
    int cap = 0;
    if (dnnl_get_primitive_cache_capacity(&cap) == dnnl_success && cap > 0 && cap < CACHE_MIN)
        dnnl_set_primitive_cache_capacity(CACHE_MIN);
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) g_engine = NULL;
    g_cache_key_ok = pthread_key_create(&g_cache_key, cache_free) == 0;
}
static dnnl_engine_t engine(void) {
    pthread_once(&g_once, engine_init);
    return g_engine;
}

/* Primitive descriptor of out [rows][n] = in [rows][k] W^T (+ bias) (+= with sum) (then GELU, erf
 * form, with gelu); wmd NULL: the layout the implementation prefers. NULL on failure. */
static dnnl_primitive_desc_t pd_make(const dtype_info *ti, size_t rows, int n, int k, const dnnl_memory_desc_t *wmd,
                                     int bias, int sum, int gelu) {
    dnnl_engine_t eng = engine();
    if (!eng) return NULL;
    dnnl_memory_desc_t src, wany, dst, bmd;
    dnnl_dims_t ds = {1, k, (dnnl_dim_t)rows}, dw = {n, k, 1}, dd = {1, n, (dnnl_dim_t)rows}, db = {n};
    dnnl_dims_t one = {1}, zero = {0};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_tag(&src, 3, ds, ti->src, dnnl_nwc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wany, 3, dw, ti->wei, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst, 3, dd, ti->dst, dnnl_nwc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&bmd, 1, db, dnnl_f32, dnnl_a) != dnnl_success ||
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src,
                                           wmd ? wmd : &wany, bias ? &bmd : NULL, &dst, one, zero,
                                           zero) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    int ok = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && (sum || gelu)) {
        ok = dnnl_post_ops_create(&po) == dnnl_success;
        if (ok && sum) ok = dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success;
        if (ok && gelu) ok = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0, 0) == dnnl_success;
        if (ok) ok = dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    }
    if (!ok || dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL) != dnnl_success) pd = NULL;
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

static int pd_is_jit(const dtype_info *ti, dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    return pd && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
           (!strcmp(impl, ti->impl) || (ti->impl512 && !strcmp(impl, ti->impl512)));
}

/* Does wmd get ti's kernel for `rows` rows in every variant, with the calling thread's team? */
static int rows_jit(const dtype_info *ti, int n, int k, const dnnl_memory_desc_t *wmd, size_t rows) {
    for (int v = 0; v < ti->variants; v++) {
        dnnl_primitive_desc_t pd = pd_make(ti, rows, n, k, wmd, v == 1 || v == 3, v == 2, v >= 3);
        const int ok = pd_is_jit(ti, pd);
        if (pd) dnnl_primitive_desc_destroy(pd);
        if (!ok) return 0;
    }
    return 1;
}

/* The row counts a layout serves (DESIGN, Tiles), per (type, shape, layout, team): `base` when
 * the full tile and 1..16 rows get the kernel (required), and bit j of `mult` when 16 (j + 2)
 * rows do. Probed once (~48 counts x 5 variants of primitive descriptors, a few ms), kept here:
 * a model has a few shapes and many weights of each (base: 3 shapes, 151 packed weights). */
typedef struct row_probe {
    mp__dconv_type t;
    int n, k, team, base;
    uint32_t mult;
    dnnl_memory_desc_t wmd;
} row_probe;

/* Entries [0, g_probes) are complete and never change, so every product reads them without a
 * lock (g_probes is published after its entry); the lock only orders writers. */
enum { PROBES = 64 };
static row_probe g_probe[PROBES];
static _Atomic int g_probes;
static pthread_mutex_t g_probe_lock = PTHREAD_MUTEX_INITIALIZER;

static const row_probe *probe_find(mp__dconv_type t, int n, int k, const dnnl_memory_desc_t *wmd, int team) {
    const int have = atomic_load_explicit(&g_probes, memory_order_acquire);
    for (int i = 0; i < have; i++) {
        const row_probe *p = &g_probe[i];
        if (p->t == t && p->n == n && p->k == k && p->team == team && dnnl_memory_desc_equal(&p->wmd, wmd)) return p;
    }
    return NULL;
}

static row_probe probe_rows(mp__dconv_type t, int n, int k, const dnnl_memory_desc_t *wmd, int team) {
    const row_probe *found = probe_find(t, n, k, wmd, team);
    if (found) return *found;
    /* unlocked: two threads may probe one key alike; only the first result is kept */
    const dtype_info *ti = &g_types[t];
    row_probe r = {.t = t, .n = n, .k = k, .team = team, .wmd = *wmd};
    r.base = rows_jit(ti, n, k, wmd, ti->tile);
    for (size_t rows = 1; r.base && rows <= 16; rows++) r.base = rows_jit(ti, n, k, wmd, rows);
    for (size_t j = 0; r.base && 16 * (j + 2) < ti->tile; j++)
        if (rows_jit(ti, n, k, wmd, 16 * (j + 2))) r.mult |= 1u << j;
    pthread_mutex_lock(&g_probe_lock);
    const int have = atomic_load_explicit(&g_probes, memory_order_relaxed);
    if (!probe_find(t, n, k, wmd, team) && have < PROBES) { /* full: probed again on every call, right but slow; 64 (type, shape, team) keys are far more than a process has (base: 3 shapes) */
        g_probe[have] = r;
        atomic_store_explicit(&g_probes, have + 1, memory_order_release);
    }
    pthread_mutex_unlock(&g_probe_lock);
    return r;
}

/* The layout oneDNN picks for a full tile, when it serves the base row counts for a team of one
 * thread (mp__dconv_run's fallback) and for this thread's team. 1 and *wmd when it does. */
static int pick_layout(mp__dconv_type t, int n, int k, dnnl_memory_desc_t *wmd) {
    const dtype_info *ti = &g_types[t];
    dnnl_primitive_desc_t full = pd_make(ti, ti->tile, n, k, NULL, 0, 0, 0);
    int ok = pd_is_jit(ti, full);
    if (ok) *wmd = *dnnl_primitive_desc_query_md(full, dnnl_query_weights_md, 0);
    if (full) dnnl_primitive_desc_destroy(full);
    const int team = omp_get_max_threads();
    ok = ok && probe_rows(t, n, k, wmd, team).base;
    if (ok && team > 1) {
        omp_set_num_threads(1);
        ok = probe_rows(t, n, k, wmd, 1).base;
        omp_set_num_threads(team);
    }
    return ok;
}

/* One reorder of plain -> blocked, executed and waited for. 0 on failure. */
static int reorder(const dnnl_memory_desc_t *plain, const void *w, const dnnl_memory_desc_t *blocked, void *to_buf) {
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_stream_t stream = NULL;
    int ok = dnnl_memory_create(&from, plain, engine(), (void *)w) == dnnl_success &&
             dnnl_memory_create(&to, blocked, engine(), to_buf) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, plain, engine(), blocked, engine(), NULL) == dnnl_success &&
             dnnl_primitive_create(&prim, rpd) == dnnl_success &&
             dnnl_stream_create(&stream, engine(), dnnl_stream_default_flags) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        ok = dnnl_primitive_execute(prim, stream, 2, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success;
    }
    if (stream) dnnl_stream_destroy(stream);
    if (prim) dnnl_primitive_destroy(prim);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    return ok;
}

int mp__dconv_pack(mp__dconv_type t, const void *w, int n, int k, size_t ld, void **packed, void **md) {
    const dtype_info *ti = &g_types[t];
    dnnl_memory_desc_t plain, blocked;
    dnnl_dims_t dw = {n, k, 1}, strides = {(dnnl_dim_t)ld, 1, 1};
    *packed = NULL, *md = NULL;
    if (!w || !pick_layout(t, n, k, &blocked) ||
        dnnl_memory_desc_init_by_strides(&plain, 3, dw, ti->wei, strides) != dnnl_success)
        return 0;
    size_t bytes = dnnl_memory_desc_get_size(&blocked);
    void *buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    dnnl_memory_desc_t *d = malloc(sizeof *d);
    if (!buf || !d || !reorder(&plain, w, &blocked, buf)) {
        free(buf), free(d);
        return 0;
    }
    *d = blocked;
    *packed = buf, *md = d;
    return 1;
}

/* ---- the calling thread's primitives ------------------------------------------------------------- */

/* Why a cache of our own: oneDNN's primitive cache is looked up with a primitive descriptor, and
 * making one (pd_make: the convolution's desc, then oneDNN trying its implementation list) costs
 * ~10 microseconds on every call even when the primitive is then found cached: libdnnl's own code
 * outside its JIT kernels took 1.0% of an int8 forward of base on a Zen 3 core (0.55% with this
 * cache; perf), whose 399 frames take 4 int8 tiles per linear. A slot keeps the primitive and its memory objects;
 * a call only sets the buffers. Per thread: no lock, and the primitive's OpenMP team size is the
 * thread's. Bounded by SLOTS (the oldest is replaced; an input length seen once costs a few
 * slots), freed when the thread exits. A slot does not depend on any model: the weights are
 * passed per call, and a weight layout is compared with the slot's before it is used. */
typedef struct prim_slot {
    const dtype_info *ti;
    int n, k, bias, sum, gelu, team;
    int jit;                         /* the probed kernel (it always is, unless the probe missed a case) */
    size_t rows;
    size_t pad_bytes;                /* user scratchpad: none on AVX2 */
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst, bia; /* made without buffers; bia NULL without a bias */
} prim_slot;

enum { SLOTS = 256 };
typedef struct prim_cache {
    dnnl_stream_t stream;
    int used, next; /* slots made; the one to replace next once all are */
    prim_slot *slot[SLOTS];
} prim_cache;

static _Atomic size_t g_slow_tiles; /* tiles run by another kernel than the probed one */
size_t mp__dconv_slow_tiles(void) { return atomic_load(&g_slow_tiles); }

static _Thread_local prim_cache *tl_cache; /* this thread's, also held by g_cache_key (a root for LSan) */

static void slot_clear(prim_slot *s) {
    if (s->bia) dnnl_memory_destroy(s->bia);
    if (s->dst) dnnl_memory_destroy(s->dst);
    if (s->wei) dnnl_memory_destroy(s->wei);
    if (s->src) dnnl_memory_destroy(s->src);
    if (s->prim) dnnl_primitive_destroy(s->prim);
    memset(s, 0, sizeof *s);
}

static void cache_free(void *p) {
    prim_cache *c = p;
    if (!c) return;
    for (int i = 0; i < c->used; i++) {
        slot_clear(c->slot[i]);
        free(c->slot[i]);
    }
    if (c->stream) dnnl_stream_destroy(c->stream);
    free(c);
    if (tl_cache == c) tl_cache = NULL;
}

/* This thread's cache, made on first use. NULL when out of memory. */
static prim_cache *cache(void) {
    if (tl_cache) return tl_cache;
    dnnl_engine_t eng = engine();
    prim_cache *c = eng && g_cache_key_ok ? calloc(1, sizeof *c) : NULL;
    if (!c) return NULL;
    if (dnnl_stream_create(&c->stream, eng, dnnl_stream_default_flags) != dnnl_success ||
        pthread_setspecific(g_cache_key, c) != 0) {
        if (c->stream) dnnl_stream_destroy(c->stream);
        free(c);
        return NULL;
    }
    return tl_cache = c;
}

/* Make s's primitive and memory objects. 0 on failure (s left cleared). */
static int slot_make(prim_slot *s, const dtype_info *ti, int n, int k, size_t rows, const dnnl_memory_desc_t *wmd,
                     int bias, int sum, int gelu, int team) {
    dnnl_primitive_desc_t pd = pd_make(ti, rows, n, k, wmd, bias, sum, gelu);
    if (!pd) return 0;
    const dnnl_memory_desc_t *sd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *s = (prim_slot){.ti = ti, .n = n, .k = k, .bias = bias, .sum = sum, .gelu = gelu, .team = team,
                     .jit = pd_is_jit(ti, pd), .rows = rows, .pad_bytes = sd ? dnnl_memory_desc_get_size(sd) : 0};
    dnnl_engine_t eng = engine();
    int ok = dnnl_primitive_create(&s->prim, pd) == dnnl_success &&
             dnnl_memory_create(&s->src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), eng,
                                DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&s->wei, wmd, eng, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&s->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), eng,
                                DNNL_MEMORY_NONE) == dnnl_success;
    if (ok && bias)
        ok = dnnl_memory_create(&s->bia, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), eng,
                                DNNL_MEMORY_NONE) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    if (!ok) slot_clear(s);
    return ok;
}

/* The slot for this call, found or made in c. NULL on failure. */
static prim_slot *slot_get(prim_cache *c, const dtype_info *ti, int n, int k, size_t rows,
                           const dnnl_memory_desc_t *wmd, int bias, int sum, int gelu, int team) {
    for (int i = 0; i < c->used; i++) {
        prim_slot *s = c->slot[i];
        const dnnl_memory_desc_t *have = NULL;
        if (s->ti == ti && s->n == n && s->k == k && s->rows == rows && s->bias == bias && s->sum == sum &&
            s->gelu == gelu && s->team == team && dnnl_memory_get_memory_desc(s->wei, &have) == dnnl_success &&
            dnnl_memory_desc_equal(have, wmd))
            return s;
    }
    prim_slot *s;
    if (c->used < SLOTS) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        c->slot[c->used++] = s;
    } else {
        s = c->slot[c->next];
        c->next = (c->next + 1) % SLOTS;
        slot_clear(s);
    }
    return slot_make(s, ti, n, k, rows, wmd, bias, sum, gelu, team) ? s : NULL; /* a cleared slot matches nothing */
}

/* One call over `rows` rows. 0 on failure. */
static int tile(prim_cache *c, const dtype_info *ti, const void *w, const dnnl_memory_desc_t *wmd, int n, int k,
                size_t rows, const void *in, const float *b, int sum, int gelu, int team, void *out) {
    prim_slot *s = slot_get(c, ti, n, k, rows, wmd, b != NULL, sum, gelu, team);
    if (!s) return 0;
    if (!s->jit) atomic_fetch_add_explicit(&g_slow_tiles, 1, memory_order_relaxed);
    dnnl_memory_t ms = NULL;
    void *pad = NULL;
    int ok = dnnl_memory_set_data_handle_v2(s->src, (void *)in, c->stream) == dnnl_success &&
             dnnl_memory_set_data_handle_v2(s->wei, (void *)w, c->stream) == dnnl_success &&
             dnnl_memory_set_data_handle_v2(s->dst, out, c->stream) == dnnl_success &&
             (!b || dnnl_memory_set_data_handle_v2(s->bia, (void *)b, c->stream) == dnnl_success);
    if (ok && s->pad_bytes) { /* none on AVX2; a few KB where there is one */
        const_dnnl_primitive_desc_t pd = NULL;
        ok = dnnl_primitive_get_primitive_desc(s->prim, &pd) == dnnl_success && (pad = malloc(s->pad_bytes)) &&
             dnnl_memory_create(&ms, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0), engine(), pad) ==
                 dnnl_success;
    }
    if (ok) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_WEIGHTS, s->wei}, {DNNL_ARG_DST, s->dst}};
        int na = 3;
        if (b) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, s->bia};
        if (ms) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, ms};
        ok = dnnl_primitive_execute(s->prim, c->stream, na, args) == dnnl_success;
    }
    if (ms) {
        ok = dnnl_stream_wait(c->stream) == dnnl_success && ok; /* before pad is freed */
        dnnl_memory_destroy(ms);
    }
    free(pad);
    return ok;
}

/* Rows in the next tile of `left` (DESIGN, Tiles): the full tile, else the largest multiple of 16
 * the layout serves (16 always), else all. */
static size_t tile_rows(const row_probe *p, size_t T, size_t left) {
    if (left >= T) return T;
    if (left < 16) return left;
    for (size_t r = left & ~(size_t)15; r > 16; r -= 16)
        if (p->mult >> (r / 16 - 2) & 1) return r;
    return 16;
}

void mp__dconv_run(mp__dconv_type t, const void *packed, const void *md, int n, int k, size_t M, const void *in,
                   const float *b, int accumulate, int gelu, void *out, size_t ldo) {
    const dtype_info *ti = &g_types[t];
    const size_t K = (size_t)k, N = (size_t)n, T = ti->tile;
    const unsigned char *src = in;
    unsigned char *dst = out; /* 4-byte elements (f32, s32) */
    int team = mp__gemm_fit_threads((double)M * N * K); /* before pd_make, which fixes the team size */
    row_probe p = probe_rows(t, n, k, md, team);
    if (!p.base) { /* a team this layout was not picked for: the one thread mp__dconv_pack checked */
        omp_set_num_threads(team = 1);
        p = probe_rows(t, n, k, md, team);
    }
    prim_cache *c = cache();
    int ok = c != NULL && p.base;
    for (size_t r = 0; ok && r < M;) {
        const size_t rows = ldo != N ? 1 : tile_rows(&p, T, M - r);
        ok = tile(c, ti, packed, md, n, k, rows, src + r * K * ti->src_size, b, accumulate, gelu, team,
                  dst + r * ldo * 4);
        r += rows;
    }
    if (ok) ok = dnnl_stream_wait(c->stream) == dnnl_success;
    if (ok) return;
    /* out of memory inside oneDNN: zeros rather than garbage */
    mp__log(MP_LOG_ERROR, "%s: a oneDNN convolution failed (%zu x %d x %d); its output is zero", ti->name, M, n, k);
    for (size_t r = 0; r < M; r++) memset(dst + r * ldo * 4, 0, N * 4);
}
#else
size_t mp__dconv_slow_tiles(void) { return 0; }
#endif /* MP_HAVE_ONEDNN */
