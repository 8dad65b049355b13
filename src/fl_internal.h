/*
 * fl_internal.h -- shared by the fastloss C sources; not installed.
 *
 * Design note
 * -----------
 * Each loss family file (cross_entropy.c, bce.c, mse.c) holds two things:
 *
 *   1. its hot loops, written once in plain C with `#pragma omp simd`, as a
 *      "block kernel" that processes one fixed block of the problem and returns
 *      that block's partial loss sum in double. The build compiles each family
 *      file once per instruction set (baseline, avx2+fma, avx512), with that
 *      ISA's flags and -DFL_ISA=<name>; FL_FN(name) gives each copy its suffix.
 *   2. its public entry point (fl_<loss>_f32), compiled only in the baseline
 *      copy (FL_BUILD_ENTRY): it checks arguments, computes the mean's
 *      denominator, and hands the block kernel of the dispatched ISA to
 *      fl_run_blocks (runtime.c), which owns threading and the fixed-order
 *      combine.
 *
 * The math helpers below are branch-free (ternaries become blends) so that the
 * loops calling them vectorise; GCC needs -fno-trapping-math for that, which
 * changes no IEEE result. Never -ffast-math: it would break NaN/Inf handling.
 */
#ifndef FL_INTERNAL_H
#define FL_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#include "fastloss.h"

#if defined(_MSC_VER)
#define FL_RESTRICT __restrict
#define FL_INLINE static __forceinline
#else
#define FL_RESTRICT __restrict__
#define FL_INLINE static inline __attribute__((always_inline))
#endif

#if defined(_OPENMP) || defined(FL_OPENMP_SIMD)
#define FL_PRAGMA(x) _Pragma(#x)
#define FL_SIMD FL_PRAGMA(omp simd)
#define FL_SIMD_SUM(v) FL_PRAGMA(omp simd reduction(+:v))
#define FL_SIMD_MAX(v) FL_PRAGMA(omp simd reduction(max:v))
#define FL_SIMD_SUM2(a, b) FL_PRAGMA(omp simd reduction(+:a, b))
#define FL_SIMD_SUM3(a, b, c) FL_PRAGMA(omp simd reduction(+:a, b, c))
#else
#define FL_SIMD_SUM2(a, b)
#define FL_SIMD_SUM3(a, b, c)
#define FL_SIMD
#define FL_SIMD_SUM(v)
#define FL_SIMD_MAX(v)
#endif

#ifndef FL_ISA
#define FL_ISA baseline
#endif
#define FL_CAT_(a, b) a##_##b
#define FL_CAT(a, b) FL_CAT_(a, b)
/* FL_FN(fl_ce_block) -> fl_ce_block_avx2 in the avx2 copy, and so on. */
#define FL_FN(name) FL_CAT(name, FL_ISA)

/* Elements per block for the elementwise losses, and the target block size (in
 * elements) for the row-wise ones. 16384 floats = 64 KiB: large enough that the
 * per-block overhead vanishes, small enough that 2^24 elements give 1024 blocks
 * to balance over threads. Fixed: it must never depend on the thread count. */
#define FL_BLOCK_ELEMS ((int64_t)16384)

/* Below this many elements a call runs on the calling thread: waking the
 * OpenMP pool costs a few microseconds, more than the whole computation. */
#define FL_PARALLEL_MIN_ELEMS ((int64_t)32768)

/* ------------------------------------------------------------------------ */
/* Block kernels and their shared context.                                   */

/* A block kernel: process block `block` of the problem described by ctx,
 * return its partial loss sum (0 when no loss is wanted). A kernel that finds
 * an invalid target sets *bad to the smallest offending index in its block
 * (it starts at -1). */
typedef double (*fl_block_fn)(const void *ctx, int64_t block, int64_t *bad);

typedef struct {
    const float *x;                 /* IN  (n, c) */
    const int64_t *target;          /* IN  (n,) class targets */
    const float *soft_target;       /* IN  the input's shape: probability targets */
    int64_t n, c, ignore_index, rows_per_block;
    float scale;                    /* upstream scalar, already divided for MEAN */
    const float *grad_per_sample;   /* IN  (n,) or NULL */
    float *loss_out;                /* OUT (n,) or NULL */
    float *grad_out;                /* OUT (n, c) or NULL, may equal x */
    int want_sum;                   /* return partial sums of the losses */
    const float *weight;            /* IN  (c,) class weights or NULL */
    double weight_sum;              /* sum of weight (c without weights) */
    float eps;                      /* label smoothing */
    float z_loss;                   /* coefficient of lse^2 */
    float *lse_out;                 /* OUT (n,) or NULL */
    int8_t *correct_out;            /* OUT (n,) or NULL */
    /* K-dimensional input: D positions per sample, blocks of positions. */
    int64_t spatial, positions_per_block;
    /* Split rows: unit u = (row u / nchunks, chunk u % nchunks). */
    int64_t nchunks;
    struct fl_ce_split *split;
} fl_ce_ctx;

/* Scratch of the split-row path (cross_entropy.c), per unit and per row. */
typedef struct fl_ce_split {
    float *chunk_max;               /* pass 1: max of each chunk */
    double *chunk_sum;              /* pass 1: sum of exp(x - shift) */
    double *chunk_sd;               /* pass 1: sum of w (shift - x), smoothing only */
    int64_t *chunk_first;           /* pass 1: first index of the chunk max, or -1 */
    float *chunk_factor;            /* merge: multiplier of each chunk's terms */
    float *row_xt, *row_b, *row_bt; /* per row: target logit, smoothing and target terms */
} fl_ce_split;

/* Long rows are cut into chunks of FL_SPLIT_CHUNK when there are too few rows
 * to keep every thread busy (n < FL_SPLIT_MAX_ROWS), or when a row is too big
 * for the L2 cache anyway (c >= FL_SPLIT_HUGE_C); the chunks' (max, sum) pairs
 * are merged per row in chunk order (see cross_entropy.c). The split costs a
 * second trip of the gradient through memory when rows would fit in L2
 * (measured: 512 x 32768 takes 18% longer split), hence the row limit.
 * The choice depends on the shape only, never on the thread count. */
#define FL_SPLIT_CHUNK ((int64_t)16384)
#define FL_SPLIT_MIN_C (2 * FL_SPLIT_CHUNK)
#define FL_SPLIT_MAX_ROWS ((int64_t)64)
#define FL_SPLIT_HUGE_C ((int64_t)262144)

/* A weight broadcast over the flattened input with period P: element i uses
 * w[i % P] (scalar: P = 1; per class along the last axis: P = its length;
 * full shape: P = n). For P <= FL_SUM_CHUNK, `tile` repeats w over
 * FL_SUM_CHUNK + P floats so any chunk reads it contiguously from
 * tile + (i % P); longer periods are read in place and chunks are cut at the
 * wrap. */
typedef struct {
    const float *w;                 /* IN  (period,) or NULL */
    int64_t period;
    const float *tile;              /* (FL_SUM_CHUNK + period,) or NULL */
} fl_periodic;

typedef struct {
    const float *x, *y;             /* IN  (n,) */
    int64_t n;
    float scale;
    const float *grad_per_sample;   /* IN  (n,) or NULL */
    float *loss_out;                /* OUT (n,) or NULL */
    float *grad_out;                /* OUT (n,) or NULL, may equal x */
    int want_sum;
    fl_periodic weight, pos_weight;
    float param0, param1;           /* delta / beta / (alpha, gamma) */
} fl_elem_ctx;

/* The elementwise losses, indexing fl_kernel_table.elem. */
enum {
    FL_ELEM_BCE = 0,
    FL_ELEM_FOCAL,
    FL_ELEM_MSE,
    FL_ELEM_L1,
    FL_ELEM_HUBER,
    FL_ELEM_SMOOTH_L1,
    FL_ELEM_COUNT
};

/* Test hooks: which inline function fl_math_eval applies. */
enum { FL_MATH_EXP_NONPOS = 0, FL_MATH_LOG1P_UNIT = 1, FL_MATH_LOG_POS = 2 };
typedef void (*fl_math_fn)(int which, const float *in, float *out, int64_t n);

/* The hot loops of one instruction set. */
typedef struct {
    const char *name;
    fl_block_fn ce_block;
    fl_block_fn ce_kdim_block;
    fl_block_fn ce_soft_block;
    fl_block_fn elem[FL_ELEM_COUNT];
    fl_block_fn ce_split_stats;
    fl_block_fn ce_split_scale;
    fl_math_fn math_eval;
} fl_kernel_table;

/* The table of the dispatched instruction set (runtime.c). */
const fl_kernel_table *fl_kernels(void);

/*
 * Run fn over blocks 0..nblocks-1 and add their results in block order.
 * Parallel (static schedule over blocks) when n_threads > 1, nblocks > 1 and
 * work_elems >= FL_PARALLEL_MIN_ELEMS; otherwise serial on the calling thread.
 * The sum is the same bitwise either way. *bad receives the smallest index any
 * block reported, or -1. Returns FL_OK or FL_ERR_NOMEM.
 */
int fl_run_blocks(fl_block_fn fn, const void *ctx, int64_t nblocks, int64_t work_elems,
                  int n_threads, double *total, int64_t *bad);

/*
 * The entry point shared by the elementwise losses: checks the arguments,
 * derives the scale (grad_scale / D for MEAN, with D = n, or the sum of the
 * broadcast weight when weighted_mean), runs the dispatched block kernel of
 * loss `kind` over blocks of FL_BLOCK_ELEMS elements and reduces.
 */
int fl_run_elementwise(int kind, const float *x, const float *y, int64_t n, int reduction,
                       float grad_scale, const fl_elem_options *opts, int weighted_mean,
                       float param0, float param1, const float *grad_per_sample,
                       float *loss_out, double *loss_reduced, float *grad_out, int n_threads);

/* Sums are kept in float vector lanes for FL_SUM_CHUNK elements (at most
 * FL_SUM_CHUNK / 4 additions per lane, a relative error below 4e-6 in the
 * worst case and ~1e-7 typically), then added to a double. Per-element double
 * accumulation costs two conversions and two adds per vector in the hottest
 * loops; this costs one horizontal add per chunk. */
#define FL_SUM_CHUNK ((int64_t)256)

/* The weight pointer for elements [i, i + *m) of a periodic weight (NULL
 * when there is none), shortening *m so the chunk does not wrap. */
FL_INLINE const float *fl_periodic_at(const fl_periodic *pw, int64_t i, int64_t *m)
{
    if (!pw->w)
        return NULL;
    const int64_t off = i % pw->period;
    if (pw->tile)
        return pw->tile + off;
    if (off + *m > pw->period)
        *m = pw->period - off;
    return pw->w + off;
}

/*
 * Defines the block kernel `fname` of an elementwise loss from its chunk
 * function, which must have the signature
 *   float chunk(const float *x, const float *y, int64_t n, float scale,
 *               const float *grad_per_sample, float *loss_out, float *grad_out,
 *               const float *w, const float *pw, float param0, float param1,
 *               int has_loss, int has_sum, int has_grad, int has_gps, int has_w, int has_pw)
 * (returning the float sum of its n <= FL_SUM_CHUNK losses) and be FL_INLINE:
 * each call below passes constant flags, so the compiler emits one
 * specialised, vectorised loop per combination of outputs and weights
 * (has_pw only where allow_pw is 1). The block kernel adds the chunk sums in
 * double, in order.
 */
#define FL_ELEM_CALL_(chunk, hw, hp)                                                    \
    (!go ? (lo ? chunk(x, y, m, sc, NULL, lo, NULL, w, pw, a, b, 1, 0, 0, 0, hw, hp)    \
               : chunk(x, y, m, sc, NULL, NULL, NULL, w, pw, a, b, 0, 1, 0, 0, hw, hp)) \
     : gps ? chunk(x, y, m, sc, gps, NULL, go, w, pw, a, b, 0, 0, 1, 1, hw, hp)         \
     : lo  ? chunk(x, y, m, sc, NULL, lo, go, w, pw, a, b, 1, 0, 1, 0, hw, hp)          \
     : p->want_sum ? chunk(x, y, m, sc, NULL, NULL, go, w, pw, a, b, 0, 1, 1, 0, hw, hp) \
                   : chunk(x, y, m, sc, NULL, NULL, go, w, pw, a, b, 0, 0, 1, 0, hw, hp))

#define FL_DEFINE_ELEM_BLOCK(fname, chunk, allow_pw)                                  \
    double fname(const void *vctx, int64_t block, int64_t *bad)                       \
    {                                                                                 \
        const fl_elem_ctx *p = (const fl_elem_ctx *)vctx;                             \
        const int64_t i0 = block * FL_BLOCK_ELEMS;                                    \
        const int64_t i1 = p->n - i0 < FL_BLOCK_ELEMS ? p->n : i0 + FL_BLOCK_ELEMS;   \
        const float sc = p->scale, a = p->param0, b = p->param1;                      \
        double total = 0.0;                                                           \
        (void)bad;                                                                    \
        for (int64_t j = i0; j < i1;) {                                               \
            int64_t m = i1 - j < FL_SUM_CHUNK ? i1 - j : FL_SUM_CHUNK;                \
            const float *w = fl_periodic_at(&p->weight, j, &m);                       \
            const float *pw = (allow_pw) ? fl_periodic_at(&p->pos_weight, j, &m) : NULL; \
            const float *x = p->x + j, *y = p->y + j;                                 \
            const float *gps = p->grad_per_sample ? p->grad_per_sample + j : NULL;    \
            float *lo = p->loss_out ? p->loss_out + j : NULL;                         \
            float *go = p->grad_out ? p->grad_out + j : NULL;                         \
            float part;                                                               \
            if ((allow_pw) && pw)                                                     \
                part = w ? FL_ELEM_CALL_(chunk, 1, 1) : FL_ELEM_CALL_(chunk, 0, 1);   \
            else                                                                      \
                part = w ? FL_ELEM_CALL_(chunk, 1, 0) : FL_ELEM_CALL_(chunk, 0, 0);   \
            total += part;                                                            \
            j += m;                                                                   \
        }                                                                             \
        return total;                                                                 \
    }

/* Declarations of every compiled copy of the block kernels. */
#define FL_DECLARE_KERNELS(isa)                                               \
    double fl_ce_block_##isa(const void *ctx, int64_t block, int64_t *bad);  \
    double fl_ce_kdim_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_ce_soft_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_bce_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_focal_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_mse_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_l1_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_huber_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_smooth_l1_block_##isa(const void *ctx, int64_t block, int64_t *bad); \
    double fl_ce_split_stats_##isa(const void *ctx, int64_t unit, int64_t *bad); \
    double fl_ce_split_scale_##isa(const void *ctx, int64_t unit, int64_t *bad); \
    void fl_math_eval_##isa(int which, const float *in, float *out, int64_t n);
FL_DECLARE_KERNELS(baseline)
FL_DECLARE_KERNELS(avx2)
FL_DECLARE_KERNELS(avx512)

/* ------------------------------------------------------------------------ */
/* Inline math.                                                               */

/* The build uses -ffp-contract=off, so a * b + c is never fused behind our
 * back: the same expression gives the same bits in every specialised loop
 * (fused and separate calls agree bitwise). Where a fused multiply-add is
 * wanted -- in the polynomials below -- it is written out, and used only when
 * the instruction set has one (a libm fmaf call would be slow and scalar). */
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define FL_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define FL_FMA(a, b, c) ((a) * (b) + (c))
#endif

FL_INLINE float fl_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
FL_INLINE uint32_t fl_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/*
 * exp(x) for x <= 0, within 2 ulp of the exact result, branch-free.
 *
 * Range reduction x = n ln2 + r with n = round(x / ln2), |r| <= ln2/2; the
 * rounding uses the "magic bias" trick: adding 1.5*2^23 + 127 to x/ln2 leaves
 * n + 127 in the low mantissa bits, and shifting those bits left by 23 builds
 * 2^n directly (no float-to-int conversion, so no undefined behaviour for NaN).
 * ln2 is split in two (Cody-Waite) so r is exact to float precision.
 * exp(r) = 1 + r + r^2 P(r), with P the degree-5 minimax polynomial of the
 * Cephes library's expf (S. L. Moshier, "Methods and Programs for Mathematical
 * Functions", 1989).
 *
 * Underflow: x is first clamped to -88 (NaN passes a clamp written as a
 * comparison). There n = -127, so the exponent field n + 127 is 0 and 2^n
 * is built as +0: every x below about -87.34 (where exp would be subnormal),
 * -inf included, gives exactly 0. NaN propagates through r and p: NaN * 2^n
 * is NaN whatever the bits of 2^n are.
 */
FL_INLINE float fl_exp_core(float x)
{
    const float magic = 12582912.0f + 127.0f;   /* 0x1.8p23 + exponent bias */
    const float t = FL_FMA(x, 1.44269504088896341f, magic);
    const float nf = t - magic;                 /* round(x / ln2), exact */
    float r = FL_FMA(nf, -0.693359375f, x);     /* ln2 high part: exact product */
    r = FL_FMA(nf, 2.12194440e-4f, r);          /* ln2 low part */
    const float scale = fl_f32_from_bits(fl_bits_from_f32(t) << 23);  /* 2^n, or +0 */
    float p = 1.9875691500e-4f;
    p = FL_FMA(p, r, 1.3981999507e-3f);
    p = FL_FMA(p, r, 8.3334519073e-3f);
    p = FL_FMA(p, r, 4.1665795894e-2f);
    p = FL_FMA(p, r, 1.6666665459e-1f);
    p = FL_FMA(p, r, 5.0000001201e-1f);
    p = FL_FMA(p, r * r, r) + 1.0f;
    return p * scale;
}

FL_INLINE float fl_exp_nonpos(float x)
{
    return fl_exp_core(x < -88.0f ? -88.0f : x);
}

/* exp(x) for any x: as fl_exp_nonpos below 0; above, within 2 ulp up to
 * x = 88.3, +inf from 88.4 on (2^128 is built as the bits of +inf; the exact
 * overflow threshold is 88.72). NaN passes through. */
FL_INLINE float fl_exp_any(float x)
{
    x = x > 89.0f ? 89.0f : x;
    return fl_exp_core(x < -88.0f ? -88.0f : x);
}

/*
 * log(1 + f) + k ln2 for f in [sqrt(1/2) - 1, sqrt(2) - 1] and k a small
 * integer (as float): log(1 + f) = f - f^2/2 + f^3 Q(f), with Q the degree-8
 * minimax polynomial of Cephes' logf (Moshier 1989); k ln2 is added in two
 * parts (Cody-Waite). The core of fl_log1p_unit and fl_log_pos.
 */
FL_INLINE float fl_log_reduced(float f, float k)
{
    const float z = f * f;
    float q = 7.0376836292e-2f;
    q = FL_FMA(q, f, -1.1514610310e-1f);
    q = FL_FMA(q, f, 1.1676998740e-1f);
    q = FL_FMA(q, f, -1.2420140846e-1f);
    q = FL_FMA(q, f, 1.4249322787e-1f);
    q = FL_FMA(q, f, -1.6668057665e-1f);
    q = FL_FMA(q, f, 2.0000714765e-1f);
    q = FL_FMA(q, f, -2.4999993993e-1f);
    q = FL_FMA(q, f, 3.3333331174e-1f);
    float y = q * f * z;
    y = FL_FMA(k, -2.12194440e-4f, y);
    y = FL_FMA(-0.5f, z, y);
    return FL_FMA(k, 0.693359375f, f + y);
}

/*
 * log1p(u) for u in [0, 1] (and NaN), within 2 ulp, branch-free; inv_w must
 * be 1 / (1 + u) (callers that also need it, like the sigmoid in BCE, compute
 * that division once).
 *
 * w = 1 + u is rounded; c = u - (w - 1) is that rounding error exactly, and
 * log1p(u) = log(w) + c / w to first order. log(w) for w in [1, 2]: w = 2^k m
 * with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact by Sterbenz).
 */
FL_INLINE float fl_log1p_unit(float u, float inv_w)
{
    const float w = 1.0f + u;
    const float c = u - (w - 1.0f);
    const int big = w > 1.41421356237f;
    const float m = big ? 0.5f * w : w;
    return fl_log_reduced(m - 1.0f, big ? 1.0f : 0.0f) + c * inv_w;
}

/*
 * log(s) for a positive normal float s (and NaN), within 2 ulp, branch-free.
 * The exponent and mantissa are taken from the bits: s = 2^e m, m in
 * [sqrt(1/2), sqrt(2)). Used for the log-sum-exp of short rows, where
 * 1 <= s <= C.
 */
FL_INLINE float fl_log_pos(float s)
{
    const uint32_t bits = fl_bits_from_f32(s);
    /* Subtracting the bits of sqrt(1/2) puts the mantissa in [sqrt(1/2), sqrt(2)). */
    const uint32_t shifted = bits - 0x3f3504f3u;
    const int32_t e = (int32_t)shifted >> 23;                     /* floor(log2(s / sqrt(1/2))) */
    const float m = fl_f32_from_bits(bits - ((uint32_t)e << 23)); /* s / 2^e */
    const float lg = fl_log_reduced(m - 1.0f, (float)e);
    return s != s ? s : lg;
}

#endif /* FL_INTERNAL_H */
