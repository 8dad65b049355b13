/*
 * pairwise/pairwise.c -- losses of several float inputs, each with its own
 * gradient (margin ranking, Gaussian NLL). Compiled once per instruction set
 * (setup.py's ISA_SOURCES): the block kernels are FL_FN-suffixed copies in
 * the kernel table (fl_dispatch.h), and the entry points, built in the
 * baseline copy only (FL_BUILD_ENTRY), run the dispatched copy.
 *
 * Threads and determinism: each entry point cuts its problem into blocks whose
 * bounds depend on the shape only (FL_BLOCK_ELEMS elements, fl_blocks.h); a
 * block sums its loss in float vector lanes per FL_SUM_CHUNK elements (the
 * elementwise losses' scheme) or, for a Gaussian NLL variance broadcast over
 * a middle axis, per column in double, and returns the sum in double;
 * fl_run_blocks adds the blocks' partial sums serially in block order. A
 * gradient element is written by exactly one block, so results are bitwise
 * identical for any thread count.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fl_blocks.h"
#include "fl_dispatch.h"
#include "fl_math.h"
#include "fl_simd.h"
#include "pairwise.h"

/* ------------------------------------------------------------------------ */
/* margin_ranking_loss                                                       */

typedef struct {
    const float *x1, *x2, *y;
    int64_t n;
    float margin;
    float scale;                   /* grad_scale, / n for MEAN */
    const float *grad_per_sample;  /* (n,) or NULL */
    float *loss_out, *grad1, *grad2;
    int want_sum;
} mr_ctx;

/* The float sum of l[0..m), m <= FL_SUM_CHUNK, in vector lanes. One function
 * (never inlined) for every specialisation of the chunk loops below: the
 * compiler may vectorise or unroll each specialised loop differently, and
 * summing inside them would let that choice change the sum's rounding
 * between, say, a forward call and a fused one. */
static __attribute__((noinline)) float pw_sum(const float *l, int64_t m)
{
    float acc = 0.0f;
    FL_SIMD_SUM(acc)
    for (int64_t i = 0; i < m; i++)
        acc += l[i];
    return acc;
}

/* Elements [j, j + m) (m <= FL_SUM_CHUNK) with the outputs as flags that
 * every call site passes as constants, so each specialisation is one
 * vectorised loop; the losses go to the output or a chunk buffer, and
 * pw_sum returns their float sum (fl_blocks.h: FL_SUM_CHUNK). grad1 may be
 * x1: each element is read before it is written. */
FL_INLINE float mr_chunk(const mr_ctx *ctx, int64_t j, int64_t m, const int has_loss,
                         const int has_gps, const int has_g1, const int has_g2)
{
    const float *x1 = ctx->x1 + j, *x2 = ctx->x2 + j, *y = ctx->y + j;
    const float *gps = has_gps ? ctx->grad_per_sample + j : NULL;
    float buf[FL_SUM_CHUNK];
    float *lo = has_loss ? ctx->loss_out + j : buf;
    float *g1 = has_g1 ? ctx->grad1 + j : NULL, *g2 = has_g2 ? ctx->grad2 + j : NULL;
    const float margin = ctx->margin, scale = ctx->scale;
    FL_SIMD
    for (int64_t i = 0; i < m; i++) {
        const float yi = y[i];
        /* torch's order: (-y) * (x1 - x2) + margin */
        const float z = (-yi) * (x1[i] - x2[i]) + margin;
        /* z < 0 ? 0 : z keeps a NaN z (fmaxf would drop it) */
        lo[i] = z < 0.0f ? 0.0f : z;
        /* [z >= 0] as 1 or 0 multiplied in (not selected), so a NaN z or a
         * z below 0 gives torch's signed zeros: -y * s * 0 */
        const float s = has_gps ? scale * gps[i] : scale;
        const float g = yi * s * (z >= 0.0f ? 1.0f : 0.0f);
        if (has_g1)
            g1[i] = -g;
        if (has_g2)
            g2[i] = g;
    }
    return pw_sum(lo, m);
}

double FL_FN(fl_pw_mr_block)(const void *vctx, int64_t block, int64_t *bad)
{
    (void)bad;
    const mr_ctx *ctx = (const mr_ctx *)vctx;
    const int64_t i0 = block * FL_BLOCK_ELEMS;
    const int64_t i1 = i0 + FL_BLOCK_ELEMS < ctx->n ? i0 + FL_BLOCK_ELEMS : ctx->n;
    const int lo = ctx->loss_out != NULL, gps = ctx->grad_per_sample != NULL;
    const int g1 = ctx->grad1 != NULL, g2 = ctx->grad2 != NULL;
    double acc = 0.0;
    for (int64_t j = i0; j < i1; j += FL_SUM_CHUNK) {
        const int64_t m = i1 - j < FL_SUM_CHUNK ? i1 - j : FL_SUM_CHUNK;
        float part;
        if (!g1 && !g2)   /* the loss alone */
            part = lo ? mr_chunk(ctx, j, m, 1, 0, 0, 0) : mr_chunk(ctx, j, m, 0, 0, 0, 0);
        else if (g1 && g2 && !lo)   /* fused or backward: both gradients */
            part = gps ? mr_chunk(ctx, j, m, 0, 1, 1, 1) : mr_chunk(ctx, j, m, 0, 0, 1, 1);
        else   /* the rarer combinations share one loop */
            part = mr_chunk(ctx, j, m, lo, gps, g1, g2);
        acc += (double)part;
    }
    return ctx->want_sum ? acc : 0.0;
}

#ifdef FL_BUILD_ENTRY
int fl_margin_ranking_loss_f32(const float *x1, const float *x2, const float *y, int64_t n,
                               const fl_margin_ranking_options *opts, const fl_outputs *out,
                               float *grad2_out, int n_threads)
{
    mr_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.x1 = x1;
    ctx.x2 = x2;
    ctx.y = y;
    ctx.n = n;
    ctx.margin = opts->margin;
    ctx.scale = out->reduction == FL_REDUCTION_MEAN
                    ? (float)((double)out->grad_scale / (double)n) : out->grad_scale;
    ctx.grad_per_sample = out->grad_per_sample;
    ctx.loss_out = out->loss_out;
    ctx.grad1 = out->grad_out;
    ctx.grad2 = grad2_out;
    ctx.want_sum = out->loss_reduced != NULL;
    const int64_t nblocks = (n + FL_BLOCK_ELEMS - 1) / FL_BLOCK_ELEMS;
    return fl_run_reduced(fl_kernels()->pw_mr_block, &ctx, nblocks, n, n_threads,
                          out->loss_reduced, out->reduction == FL_REDUCTION_MEAN,
                          (double)n, NULL);
}
#endif /* FL_BUILD_ENTRY */

/* ------------------------------------------------------------------------ */
/* gaussian_nll_loss                                                         */

/* 0.5 log(2 pi), rounded to float32 (PyTorch adds 0.5 * math.log(2 * math.pi)
 * to a float32 loss) */
#define GNLL_HALF_LOG_2PI 0.918938533204672742f

typedef struct {
    const float *x, *t, *var;
    int64_t a, b, c;
    int var_scalar;
    int full;
    float eps;
    float scale;                   /* grad_scale, / (a b c) for MEAN */
    const float *grad_per_sample;  /* (a, b, c) or NULL */
    float *loss_out, *grad_x, *grad_var;
    int want_sum;
    int64_t slabs_per_block;       /* > 0: blocks of whole (b, c) slabs */
    int64_t cols_per_block;        /* > 0: blocks of one a and a chunk of c */
} gnll_ctx;

/* Column (ia, ic) over b in [0, b): loss sum returned, var gradient (if
 * wanted) written from a double sum in b order. */
static double gnll_column(const gnll_ctx *ctx, int64_t ia, int64_t ic)
{
    const int64_t B = ctx->b, C = ctx->c;
    const float raw = ctx->var_scalar ? ctx->var[0] : ctx->var[ia * C + ic];
    const float v = raw < ctx->eps ? ctx->eps : raw;   /* NaN stays NaN */
    const float lv = logf(v);
    const float inv_v = 1.0f / v;
    double acc = 0.0, gacc = 0.0;
    for (int64_t ib = 0; ib < B; ib++) {
        const int64_t i = (ia * B + ib) * C + ic;
        const float d = ctx->x[i] - ctx->t[i];
        const float q = d / v;
        float loss = 0.5f * (lv + d * q);
        if (ctx->full)
            loss = loss + GNLL_HALF_LOG_2PI;
        if (ctx->loss_out)
            ctx->loss_out[i] = loss;
        acc += (double)loss;
        if (ctx->grad_x || ctx->grad_var) {
            const float s = ctx->grad_per_sample ? ctx->scale * ctx->grad_per_sample[i]
                                                 : ctx->scale;
            if (ctx->grad_x)
                ctx->grad_x[i] = q * s;
            gacc += (double)(0.5f * (inv_v - q * q) * s);
        }
    }
    if (ctx->grad_var)
        ctx->grad_var[ia * C + ic] = (float)gacc;
    return acc;
}

/* log(v) for v >= eps >= FLT_MIN (a positive normal float), +inf or NaN:
 * fl_log_pos, which vectorises (logf would be a scalar call per element). */
FL_INLINE float gnll_log(float v)
{
    return v == INFINITY ? v : fl_log_pos(v);
}

/* The elements [j, j + m) (m <= FL_SUM_CHUNK) of a problem where every
 * column is one element (b == 1: var of the input's shape, or a float), the
 * outputs and options as flags that the call sites pass as constants; each
 * specialisation is one vectorised loop; the losses go to the output or a
 * chunk buffer and pw_sum adds them. The same closed forms as gnll_column,
 * so the two paths differ only in the log (2 ulp) and in how the loss is
 * summed (float lanes per chunk, then double). grad_x may be x. */
FL_INLINE float gnll_chunk(const gnll_ctx *ctx, int64_t j, int64_t m, const int full,
                           const int var_scalar, const int has_loss, const int has_gps,
                           const int has_gx, const int has_gv)
{
    const float *x = ctx->x + j, *t = ctx->t + j, *var = var_scalar ? ctx->var : ctx->var + j;
    const float *gps = has_gps ? ctx->grad_per_sample + j : NULL;
    float buf[FL_SUM_CHUNK];
    float *lo = has_loss ? ctx->loss_out + j : buf;
    float *gx = has_gx ? ctx->grad_x + j : NULL, *gv = has_gv ? ctx->grad_var + j : NULL;
    const float eps = ctx->eps, scale = ctx->scale;
    FL_SIMD
    for (int64_t i = 0; i < m; i++) {
        const float raw = var_scalar ? var[0] : var[i];
        const float v = raw < eps ? eps : raw;   /* NaN stays NaN */
        const float d = x[i] - t[i];
        const float q = d / v;
        float loss = 0.5f * (gnll_log(v) + d * q);
        if (full)
            loss = loss + GNLL_HALF_LOG_2PI;
        lo[i] = loss;
        const float s = has_gps ? scale * gps[i] : scale;
        if (has_gx)
            gx[i] = q * s;
        if (has_gv)
            gv[i] = 0.5f * (1.0f / v - q * q) * s;
    }
    return pw_sum(lo, m);
}

/* The b == 1 problems, by chunks: the common output combinations get loops of
 * their own. */
static double gnll_elements(const gnll_ctx *ctx, int64_t i0, int64_t i1)
{
    const int full = ctx->full, vs = ctx->var_scalar;
    const int lo = ctx->loss_out != NULL, gps = ctx->grad_per_sample != NULL;
    const int gx = ctx->grad_x != NULL, gv = ctx->grad_var != NULL;
    double acc = 0.0;
    for (int64_t j = i0; j < i1; j += FL_SUM_CHUNK) {
        const int64_t m = i1 - j < FL_SUM_CHUNK ? i1 - j : FL_SUM_CHUNK;
        float part;
        if (!gx && !gv && !lo)   /* the reduced loss alone */
            part = full ? gnll_chunk(ctx, j, m, 1, vs, 0, 0, 0, 0)
                        : gnll_chunk(ctx, j, m, 0, vs, 0, 0, 0, 0);
        else if (gx && gv && !lo && !gps)   /* fused: both gradients */
            part = full ? (vs ? gnll_chunk(ctx, j, m, 1, 1, 0, 0, 1, 1)
                              : gnll_chunk(ctx, j, m, 1, 0, 0, 0, 1, 1))
                        : (vs ? gnll_chunk(ctx, j, m, 0, 1, 0, 0, 1, 1)
                              : gnll_chunk(ctx, j, m, 0, 0, 0, 0, 1, 1));
        else   /* the rarer combinations share one loop */
            part = gnll_chunk(ctx, j, m, full, vs, lo, gps, gx, gv);
        acc += (double)part;
    }
    return acc;
}

double FL_FN(fl_pw_gnll_block)(const void *vctx, int64_t block, int64_t *bad)
{
    (void)bad;
    const gnll_ctx *ctx = (const gnll_ctx *)vctx;
    double acc = 0.0;
    if (ctx->b == 1 && ctx->eps >= FLT_MIN) {   /* one element per column */
        const int64_t n = ctx->a * ctx->c;
        const int64_t i0 = block * FL_BLOCK_ELEMS;
        acc = gnll_elements(ctx, i0, i0 + FL_BLOCK_ELEMS < n ? i0 + FL_BLOCK_ELEMS : n);
    } else if (ctx->slabs_per_block > 0) {
        const int64_t a0 = block * ctx->slabs_per_block;
        const int64_t a1 = a0 + ctx->slabs_per_block < ctx->a ? a0 + ctx->slabs_per_block
                                                               : ctx->a;
        for (int64_t ia = a0; ia < a1; ia++)
            for (int64_t ic = 0; ic < ctx->c; ic++)
                acc += gnll_column(ctx, ia, ic);
    } else {
        const int64_t per = ctx->cols_per_block;
        const int64_t chunks = (ctx->c + per - 1) / per;
        const int64_t ia = block / chunks;
        const int64_t c0 = (block % chunks) * per;
        const int64_t c1 = c0 + per < ctx->c ? c0 + per : ctx->c;
        for (int64_t ic = c0; ic < c1; ic++)
            acc += gnll_column(ctx, ia, ic);
    }
    return ctx->want_sum ? acc : 0.0;
}

#ifdef FL_BUILD_ENTRY
int fl_gaussian_nll_loss_f32(const float *x, const float *t, const float *var, int64_t a,
                             int64_t b, int64_t c, int var_scalar,
                             const fl_gaussian_nll_options *opts, const fl_outputs *out,
                             float *grad_var_out, int n_threads)
{
    gnll_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    const int64_t n = a * b * c;
    ctx.x = x;
    ctx.t = t;
    ctx.var = var;
    ctx.var_scalar = var_scalar;
    if (var_scalar) {   /* every element its own column: blocks of FL_BLOCK_ELEMS elements */
        ctx.a = n;
        ctx.b = 1;
        ctx.c = 1;
        grad_var_out = NULL;
    } else {
        ctx.a = a;
        ctx.b = b;
        ctx.c = c;
    }
    ctx.full = opts->full;
    ctx.eps = opts->eps;
    ctx.scale = out->reduction == FL_REDUCTION_MEAN
                    ? (float)((double)out->grad_scale / (double)n) : out->grad_scale;
    ctx.grad_per_sample = out->grad_per_sample;
    ctx.loss_out = out->loss_out;
    ctx.grad_x = out->grad_out;
    ctx.grad_var = grad_var_out;
    ctx.want_sum = out->loss_reduced != NULL;
    const int64_t slab = ctx.b * ctx.c;
    int64_t nblocks;
    if (ctx.b == 1 && ctx.eps >= FLT_MIN) {   /* gnll_elements: blocks of elements */
        nblocks = (n + FL_BLOCK_ELEMS - 1) / FL_BLOCK_ELEMS;
    } else if (slab <= FL_BLOCK_ELEMS) {
        ctx.slabs_per_block = slab > 0 ? FL_BLOCK_ELEMS / slab : 1;
        nblocks = (ctx.a + ctx.slabs_per_block - 1) / ctx.slabs_per_block;
    } else {   /* b c > FL_BLOCK_ELEMS, so b, c > 0 */
        ctx.cols_per_block = FL_BLOCK_ELEMS / ctx.b > 1 ? FL_BLOCK_ELEMS / ctx.b : 1;
        nblocks = ctx.a * ((ctx.c + ctx.cols_per_block - 1) / ctx.cols_per_block);
    }
    return fl_run_reduced(fl_kernels()->pw_gnll_block, &ctx, nblocks, n, n_threads,
                          out->loss_reduced, out->reduction == FL_REDUCTION_MEAN,
                          (double)n, NULL);
}
#endif /* FL_BUILD_ENTRY */
