/*
 * kernels.c - elementwise kernels of the forward pass and the fp32 GEMM dispatch.
 *
 * DESIGN
 *   Vectorization. Every loop here is branch-free per element so gcc -O3 vectorizes it. Two
 *   things make that hold on AVX2, not only on AVX-512:
 *   - this file is compiled with -fno-trapping-math (CMakeLists.txt): with the default
 *     -ftrapping-math gcc may not evaluate both arms of `x < 0 ? a : b` for floats (either
 *     could raise an FP exception the other would not), so without AVX-512's masked lanes it
 *     keeps a scalar loop with branches. We never read FP exception flags.
 *   - MP_KERNEL functions carry target_clones (AVX-512, AVX2+FMA, baseline) when the build does
 *     not already target AVX2 (-march=x86-64-v3 or native): one portable binary, chosen once
 *     per process through an ifunc. Sanitizer builds (MP_NO_CLONES) skip the clones.
 *   It is also compiled with -ffp-contract=fast: -std=c11 turns contraction off, which left every
 *   polynomial below as separate multiplies and adds even where the clone has FMA.
 *   One switch per call picks the activation, so each inner loop has a single body. Bias,
 *   activation, LayerNorm and the residual add are fused where they follow each other, so GEMM
 *   outputs are read and written once.
 *
 *   Two products are ours, not BLAS's, because their shapes are ones BLAS runs badly: conv layer 0
 *   (one input channel, 10 taps: a direct loop, mp__k_conv0) and the positional conv (16-48
 *   output channels per group over overlapping patch rows, which BLAS cannot read in place:
 *   outer-product register tiles, mp__k_gemm_bt). Both are written with gcc's vector extension
 *   (v8f), so each clone gets its own vector code.
 *
 *   Approximations (no libm call in a loop): exp after Cephes expf (relative error ~2e-7),
 *   erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7).
 *
 *   GEMM. fp32 products go to OpenBLAS, or to oneDNN's dnnl_sgemm where OpenBLAS has no AVX2
 *   kernels for an AVX2 CPU (choose_backend). oneDNN picks its kernel from cpuid at run time;
 *   Debian's OpenBLAS 0.3.21 does not know some recent Xeons and falls back to SSE3 "Prescott"
 *   kernels (31 GFLOP/s instead of 150 on the Xeon this was written on); on CPUs it knows the
 *   two are within a few percent (see BENCHMARKS.md). oneDNN threads through OpenMP, whose thread count is per calling thread:
 *   mp__gemm_thread_sync() copies the process-wide setting (mp__blas_set_threads) to the
 *   calling thread before a forward pass.
 */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#ifdef MP_HAVE_ONEDNN
#  include <dnnl.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__) && \
    !defined(MP_NO_CLONES)
#  define MP_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#  define MP_KERNEL
#endif

/* ---- scalar building blocks (inlined into every loop) ---------------------------------------- */

static inline float f_from_bits(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* e^x after Cephes expf (S. L. Moshier, cephes/single/expf.c): x = n ln2 + r with |r| <= ln2/2,
 * e^r = 1 + r + r^2 P(r) (degree-5 P), times 2^n built in the exponent bits. Relative error
 * about 2e-7 over the clamped range [-87.3, 88.3] (x below gives ~1e-38 instead of 0, above
 * gives e^88.3; both are fine for softmax and the GELU/sigmoid forms below). Round-to-nearest of
 * x*log2(e) uses the 1.5*2^23 trick, which is exact without -ffast-math. */
static inline float exp_clamped(float x) { /* x already in [-87.3, 88.3] */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    return p * f_from_bits(((int32_t)n + 127) << 23);
}

static inline float exp_approx(float x) {
    x = x > -87.3f ? x : -87.3f; /* written as maxps/minps compute them, so they map to one each */
    x = x < 88.3f ? x : 88.3f;
    return exp_clamped(x);
}

/* e^x for x <= 0 (exp_approx without its upper clamp: the GELU below never needs it). */
static inline float exp_nonpos(float x) {
    x = x > -87.3f ? x : -87.3f;
    return exp_clamped(x);
}

/* GELU, erf form: x * Phi(x). erfc(z) for z = |x|/sqrt(2) >= 0 by Abramowitz & Stegun 7.1.26:
 * erfc(z) = t(a1 + t(a2 + t(a3 + t(a4 + t a5)))) e^{-z^2}, t = 1/(1 + p z), absolute error
 * <= 1.5e-7. With h = erfc(z)/2, Phi(x) = 1 - h for x >= 0 and h for x < 0 (no cancellation of
 * 1 + erf(x) for negative x), so x Phi(x) = max(x, 0) - |x| h in both cases: no select. The
 * halves and 1/sqrt(2) are folded into the constants (a_i / 2, p / sqrt(2), e^{-x^2/2}). */
static inline float gelu_erf(float x) {
    float ax = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.2316418883f * ax);
    float h = t * (0.127414796f + t * (-0.142248368f + t * (0.7107068705f + t * (-0.7265760135f + t * 0.5307027145f))));
    h *= exp_nonpos(-0.5f * x * x);
    return (x > 0 ? x : 0.0f) - ax * h;
}

/* gelu_new (tanh form): 0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3). Since
 * 1 + tanh(u) = 2 / (1 + e^{-2u}), this is x / (1 + e^{-2u}). */
static inline float gelu_tanh(float x) {
    float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return x / (1.0f + exp_approx(-2.0f * u));
}

static inline float swish(float x) { return x / (1.0f + exp_approx(-x)); }
static inline float relu(float x) { return x > 0 ? x : 0.0f; }

/* One row, y = act(y): a loop per activation so each is a single vectorized body. */
static inline void act_row(float *p, int n, int act) {
    switch (act) {
    case MP_ACT_GELU:
        for (int c = 0; c < n; c++) p[c] = gelu_erf(p[c]);
        break;
    case MP_ACT_GELU_NEW:
        for (int c = 0; c < n; c++) p[c] = gelu_tanh(p[c]);
        break;
    case MP_ACT_RELU:
        for (int c = 0; c < n; c++) p[c] = relu(p[c]);
        break;
    case MP_ACT_SWISH:
        for (int c = 0; c < n; c++) p[c] = swish(p[c]);
        break;
    default:
        break;
    }
}

/* Sum with 16 independent partial sums: without -ffast-math gcc keeps a scalar reduction in
 * order, but vectorizes these lane-wise accumulators. */
static inline float sum_f(const float *x, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    float s = 0;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

static inline float sum_sq_dev(const float *x, int n, float mean) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float d = x[i + j] - mean;
            acc[j] += d * d;
        }
    float s = 0;
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

static inline float max_f(const float *p, int n) {
    float acc[16];
    for (int j = 0; j < 16; j++) acc[j] = -INFINITY;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] = p[i + j] > acc[j] ? p[i + j] : acc[j];
    float mx = -INFINITY;
    for (; i < n; i++) mx = p[i] > mx ? p[i] : mx;
    for (int j = 0; j < 16; j++) mx = acc[j] > mx ? acc[j] : mx;
    return mx;
}

/* o = act((p - mean) * rstd * w + b) for one row: the LayerNorm epilogue. */
static inline void ln_row(const float *p, float *o, int n, const float *w, const float *b, float eps, int act) {
    float mean = sum_f(p, n) / (float)n;
    float var = sum_sq_dev(p, n, mean) / (float)n;
    float rstd = 1.0f / sqrtf(var + eps);
    for (int c = 0; c < n; c++) o[c] = (p[c] - mean) * rstd * w[c] + b[c];
    act_row(o, n, act);
}

/* ---- elementwise kernels ----------------------------------------------------------------------- */

/* 8 floats as one vector (gcc vector extension: 256-bit on AVX2 and AVX-512 clones, two SSE
 * halves in the baseline one). Loaded through memcpy (any alignment), and never passed or
 * returned by value, whose ABI differs between the clones (-Wpsabi). */
typedef float v8f __attribute__((vector_size(32)));
#define LD8(v, p) memcpy(&(v), (p), sizeof(v8f))

MP_KERNEL void mp__k_bias_act(float *y, size_t rows, int n, size_t ld, const float *b, int act) {
    for (size_t r = 0; r < rows; r++) {
        float *p = y + r * ld;
        if (!b) {
            act_row(p, n, act);
            continue;
        }
        switch (act) { /* bias and activation in one pass */
        case MP_ACT_GELU:
            for (int c = 0; c < n; c++) p[c] = gelu_erf(p[c] + b[c]);
            break;
        case MP_ACT_GELU_NEW:
            for (int c = 0; c < n; c++) p[c] = gelu_tanh(p[c] + b[c]);
            break;
        case MP_ACT_RELU:
            for (int c = 0; c < n; c++) p[c] = relu(p[c] + b[c]);
            break;
        case MP_ACT_SWISH:
            for (int c = 0; c < n; c++) p[c] = swish(p[c] + b[c]);
            break;
        default:
            for (int c = 0; c < n; c++) p[c] += b[c];
            break;
        }
    }
}

MP_KERNEL void mp__k_layer_norm(const float *x, size_t rows, int n, size_t ldx, const float *w, const float *b,
                                float eps, float *out, size_t ldo, int act) {
    for (size_t r = 0; r < rows; r++) ln_row(x + r * ldx, out + r * ldo, n, w, b, eps, act);
}

MP_KERNEL void mp__k_add_layer_norm(float *x, const float *y, size_t rows, int n, size_t ld, const float *w,
                                    const float *b, float eps) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * ld;
        const float *q = y + r * ld;
        for (int c = 0; c < n; c++) p[c] += q[c];
        if (w) ln_row(p, p, n, w, b, eps, MP__ACT_NONE);
    }
}

MP_KERNEL void mp__k_softmax_rows(float *s, size_t rows, int n, size_t ld, float *inv) {
    for (size_t r = 0; r < rows; r++) {
        float *p = s + r * ld;
        float mx = max_f(p, n), acc[16] = {0}, sum = 0;
        int c = 0;
        for (; c + 16 <= n; c += 16) /* exponentials and their sum in one pass (16 lane sums) */
            for (int j = 0; j < 16; j++) {
                p[c + j] = exp_approx(p[c + j] - mx);
                acc[j] += p[c + j];
            }
        for (; c < n; c++) {
            p[c] = exp_approx(p[c] - mx);
            sum += p[c];
        }
        for (int j = 0; j < 16; j++) sum += acc[j];
        if (inv) {
            inv[r] = 1.0f / sum;
        } else {
            const float q = 1.0f / sum;
            for (c = 0; c < n; c++) p[c] *= q;
        }
    }
}

MP_KERNEL void mp__k_scale_rows(float *y, size_t rows, int n, size_t ld, const float *sc) {
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < n; c++) y[r * ld + c] *= sc[r];
}

MP_KERNEL void mp__k_conv0(const float *x, size_t rows, int stride, int k, float mean, float inv, const float *wt,
                           const float *b, int C, int act, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * (size_t)stride;
        float *o = out + r * (size_t)C;
        int c0 = 0;
        for (; c0 + 32 <= C; c0 += 32) {
            v8f a0, a1, a2, a3, w0, w1, w2, w3;
            LD8(a0, b + c0), LD8(a1, b + c0 + 8), LD8(a2, b + c0 + 16), LD8(a3, b + c0 + 24);
            for (int j = 0; j < k; j++) {
                const float pj = (xr[j] - mean) * inv, *w = wt + (size_t)j * C + c0;
                LD8(w0, w), LD8(w1, w + 8), LD8(w2, w + 16), LD8(w3, w + 24);
                a0 += pj * w0, a1 += pj * w1, a2 += pj * w2, a3 += pj * w3;
            }
            memcpy(o + c0, &a0, sizeof a0), memcpy(o + c0 + 8, &a1, sizeof a1);
            memcpy(o + c0 + 16, &a2, sizeof a2), memcpy(o + c0 + 24, &a3, sizeof a3);
        }
        for (int c = c0; c < C; c++) {
            float acc = b[c];
            for (int j = 0; j < k; j++) acc += (xr[j] - mean) * inv * wt[(size_t)j * C + c];
            o[c] = acc;
        }
        act_row(o, C, act);
    }
}

/* Helpers of an MP_KERNEL clone must be inlined into it: an out-of-line copy is compiled for the
 * baseline target only, where the 256-bit vector code below runs ~30x slower (measured). */
#define MP_INLINE static inline __attribute__((always_inline))

/* C[6][16] (+)= A[6][K] Bt[K][16]: the classic outer-product register tile (12 accumulators, two
 * B vectors and one broadcast A value live: 15 of AVX2's 16 registers), rows of A lda apart. */
MP_INLINE void bc_tile_6x16(const float *a, size_t lda, const float *bt, size_t ldb, int K, float *c,
                                size_t ldc, int acc) {
    v8f s[6][2], b0, b1;
    if (acc)
        for (int i = 0; i < 6; i++) LD8(s[i][0], c + i * ldc), LD8(s[i][1], c + i * ldc + 8);
    else
        memset(s, 0, sizeof s);
    for (int k = 0; k < K; k++) {
        LD8(b0, bt + (size_t)k * ldb), LD8(b1, bt + (size_t)k * ldb + 8);
        for (int i = 0; i < 6; i++) {
            const float x = a[i * lda + k];
            s[i][0] += x * b0;
            s[i][1] += x * b1;
        }
    }
    for (int i = 0; i < 6; i++) memcpy(c + i * ldc, s[i], sizeof s[i]);
}

/* One row of the same (row tails). */
MP_INLINE void bc_tile_1x16(const float *a, const float *bt, size_t ldb, int K, float *c, int acc) {
    v8f s0, s1, b0, b1;
    if (acc) LD8(s0, c), LD8(s1, c + 8);
    else memset(&s0, 0, sizeof s0), memset(&s1, 0, sizeof s1);
    for (int k = 0; k < K; k++) {
        LD8(b0, bt + (size_t)k * ldb), LD8(b1, bt + (size_t)k * ldb + 8);
        s0 += a[k] * b0;
        s1 += a[k] * b1;
    }
    memcpy(c, &s0, sizeof s0), memcpy(c + 8, &s1, sizeof s1);
}

MP_KERNEL void mp__k_gemm_bt(size_t M, int N, int K, const float *A, size_t lda, const float *Bt, float *C,
                             size_t ldc) {
    /* K in slices of 256: a 16-column slice of Bt (16 KB) stays in L1 across all row tiles */
    enum { KC = 256 };
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC, acc = k0 > 0;
        for (int j = 0; j < N; j += 16) {
            const float *bt = Bt + (size_t)k0 * N + j;
            size_t i = 0;
            for (; i + 6 <= M; i += 6) bc_tile_6x16(A + i * lda + k0, lda, bt, (size_t)N, kc, C + i * ldc + j, ldc, acc);
            for (; i < M; i++) bc_tile_1x16(A + i * lda + k0, bt, (size_t)N, kc, C + i * ldc + j, acc);
        }
    }
}

MP_KERNEL void mp__k_transpose(const float *src, int rows, int cols, float *dst) {
    enum { B = 64 }; /* column blocks: a 64 x rows strip of dst (12 KB at 48 rows) stays in L1 */
    for (int c0 = 0; c0 < cols; c0 += B) {
        const int c1 = cols - c0 < B ? cols : c0 + B;
        for (int r = 0; r < rows; r++)
            for (int c = c0; c < c1; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
    }
}

MP_KERNEL void mp__k_col_stats(const float *y, size_t rows, int n, double *sum, double *sq) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = y + r * (size_t)n;
        for (int c = 0; c < n; c++) {
            double v = p[c];
            sum[c] += v;
            sq[c] += v * v;
        }
    }
}

/* ---- GEMM dispatch ------------------------------------------------------------------------------ */

static atomic_int g_backend = -1; /* -1: not chosen yet (choose_backend) */
static atomic_int g_threads = 0; /* 0: not set yet (OpenBLAS's own default stands) */

int mp__have_onednn(void) {
#ifdef MP_HAVE_ONEDNN
    return 1;
#else
    return 0;
#endif
}

/* OpenBLAS by default; oneDNN where OpenBLAS runs no AVX2 kernels on an AVX2 CPU (it does not know
 * the model and fell back to e.g. "Prescott": 31 GFLOP/s instead of 150 on the Xeon this was
 * measured on). Why not oneDNN everywhere: its sgemm allocates packing buffers per call, which
 * glibc keeps per thread, so 30 workers held ~960 MB against ~570 with OpenBLAS (BENCHMARKS.md);
 * on CPUs OpenBLAS knows the two run within a few percent. Never under TSan, which cannot see
 * libgomp's synchronization.
 * GEMM_SMALL (mp__gemm_set_backend(2), not a default): OpenBLAS, but oneDNN below SMALL_ROWS rows.
 * OpenBLAS packs the whole weight operand again on every call, which at a few dozen rows costs
 * about as much as the product. Live streams run the network over windows of ~36 frames
 * (docs/LIVE.md): OpenBLAS's packing (sgemm_incopy) was 19-21% of the CPU in `perf record` of
 * bench/live-compute.sh --gsm on this project's Xeon (SkylakeX kernels), and oneDNN below 256 rows
 * cut live CPU per audio second by ~20% with offline transcription unchanged (offline products of
 * clips over ~5 s have more rows). Where OpenBLAS runs AVX2 kernels (Haswell, Zen) the embedded
 * model's short products already go through weights packed at load (prepack.c). Not the default on
 * AVX-512 yet: made the default there, it broke test-parity's bit-identical repeat (the first input
 * run again after the state had grown to a longer one: large_like, utf8, hubert, bf16; cause not
 * found). Its other blocker, a slow server stop in drain_attack, was the server's (docs/LIVE.md). */
enum { GEMM_OPENBLAS = 0, GEMM_ONEDNN = 1, GEMM_SMALL = 2 };
#define SMALL_ROWS 256

static int choose_backend(void) {
#if defined(MP_HAVE_ONEDNN) && !defined(__SANITIZE_THREAD__) && defined(__x86_64__) && defined(__GNUC__)
    static const char *avx2_cores[] = {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"};
    const char *core = openblas_get_corename();
    if (!__builtin_cpu_supports("avx2") || !core) return GEMM_OPENBLAS;
    for (size_t i = 0; i < sizeof avx2_cores / sizeof avx2_cores[0]; i++)
        if (!strcasecmp(core, avx2_cores[i])) return GEMM_OPENBLAS;
    return GEMM_ONEDNN;
#else
    return GEMM_OPENBLAS;
#endif
}

static int backend(void) {
    int b = atomic_load_explicit(&g_backend, memory_order_relaxed);
    if (b < 0) {
        int want = choose_backend(), expected = -1;
        atomic_compare_exchange_strong(&g_backend, &expected, want);
        b = atomic_load(&g_backend);
    }
    return b;
}

#ifdef MP_HAVE_ONEDNN
/* This product goes to oneDNN: the backend, or a short product under GEMM_SMALL. */
static int use_onednn(size_t M) {
    int b = backend();
    return b == GEMM_ONEDNN || (b == GEMM_SMALL && M < SMALL_ROWS);
}
#endif

int mp__gemm_set_backend(int which) {
    if (!mp__have_onednn() || which < 0 || which > GEMM_SMALL) which = GEMM_OPENBLAS;
    atomic_store(&g_backend, which);
    return atomic_load(&g_backend);
}

int mp__gemm_backend(void) { return backend(); }

static const char *const g_backend_names[] = {[GEMM_OPENBLAS] = "openblas", [GEMM_ONEDNN] = "onednn",
                                              [GEMM_SMALL] = "small"};

int mp__gemm_backend_by_name(const char *name) {
    for (int i = 0; name && i <= GEMM_SMALL; i++)
        if (!strcmp(name, g_backend_names[i])) return i;
    return -1;
}

const char *mp__gemm_backend_name(int which) {
    return which == GEMM_SMALL ? "openblas, onednn below 256 rows" : which == GEMM_ONEDNN ? "onednn" : "openblas";
}

/* Under TSan OpenBLAS itself stays on one thread whatever the budget: its thread pool hands work
 * over through memory TSan does not see synchronized (uninstrumented code), so every threaded
 * product was reported as a race between its worker's stores and our next read of the output
 * (OpenBLAS SkylakeX kernels, pool of 1 worker x 2 threads). The budget is still recorded and
 * reported, so the thread-budget tests check the same decisions. */
void mp__blas_set_threads(int n) {
    n = n > 0 ? n : 1;
    atomic_store(&g_threads, n);
#ifdef __SANITIZE_THREAD__
    openblas_set_num_threads(1);
#else
    openblas_set_num_threads(n);
#endif
}

int mp__blas_get_threads(void) {
#ifdef __SANITIZE_THREAD__
    int n = atomic_load(&g_threads);
    return n > 0 ? n : 1;
#else
    return openblas_get_num_threads();
#endif
}

#ifdef MP_HAVE_ONEDNN
static _Thread_local int tl_threads = 0; /* this thread's budget, from mp__gemm_thread_sync */
#endif

void mp__gemm_thread_sync(void) {
#ifdef MP_HAVE_ONEDNN
    int n = atomic_load(&g_threads);
    if (n <= 0) n = openblas_get_num_threads();
    tl_threads = n > 0 ? n : 1;
    if (omp_get_max_threads() != tl_threads) omp_set_num_threads(tl_threads);
#endif
}

int mp__gemm_fit_threads(double macs) {
#ifdef MP_HAVE_ONEDNN
    /* Below ~4 M multiply-adds (a few hundred microseconds on one core) an OpenMP team costs more
     * than it saves: waking it, the barrier, and its spinning afterwards. A tiny model with one
     * worker x 2 threads took 4.8x the CPU of one thread (server.interleave test). */
    int want = tl_threads > 1 && macs < 4.0e6 ? 1 : (tl_threads > 0 ? tl_threads : 1);
    if (omp_get_max_threads() != want) omp_set_num_threads(want);
    return want;
#else
    (void)macs;
    return 1;
#endif
}

void mp__gemm_nt(size_t M, int N, int K, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                 float beta, float *C, size_t ldc) {
#ifdef MP_HAVE_ONEDNN
    if (use_onednn(M)) {
        mp__gemm_fit_threads((double)M * N * K);
        dnnl_sgemm('N', 'T', (dnnl_dim_t)M, N, K, alpha, A, (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, beta, C,
                   (dnnl_dim_t)ldc);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, N, K, alpha, A, (int)lda, B, (int)ldb, beta, C,
                (int)ldc);
}

void mp__gemm_nn(size_t M, int N, int K, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                 size_t ldc) {
#ifdef MP_HAVE_ONEDNN
    if (use_onednn(M)) {
        mp__gemm_fit_threads((double)M * N * K);
        dnnl_sgemm('N', 'N', (dnnl_dim_t)M, N, K, 1.0f, A, (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, 0.0f, C,
                   (dnnl_dim_t)ldc);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, N, K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, C,
                (int)ldc);
}
