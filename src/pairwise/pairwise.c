/*
 * pairwise/pairwise.c -- losses of several float inputs, each with its own
 * gradient (margin ranking, Gaussian NLL). Compiled once, with the baseline
 * flags: the loops are short closed forms over contiguous arrays, which GCC
 * vectorises with SSE2 at -O3 where it can.
 *
 * Threads and determinism: each entry point cuts its problem into blocks whose
 * bounds depend on the shape only (FL_BLOCK_ELEMS elements, fl_blocks.h); a
 * block accumulates its loss in double in index order and returns it;
 * fl_run_blocks adds the blocks' partial sums serially in block order. A
 * gradient element is written by exactly one block, so results are bitwise
 * identical for any thread count.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fl_blocks.h"
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

static double mr_block(const void *vctx, int64_t block, int64_t *bad)
{
    (void)bad;
    const mr_ctx *ctx = (const mr_ctx *)vctx;
    const int64_t i0 = block * FL_BLOCK_ELEMS;
    const int64_t i1 = i0 + FL_BLOCK_ELEMS < ctx->n ? i0 + FL_BLOCK_ELEMS : ctx->n;
    const float margin = ctx->margin;
    double acc = 0.0;
    for (int64_t i = i0; i < i1; i++) {
        const float y = ctx->y[i];
        /* torch's order: (-y) * (x1 - x2) + margin */
        const float z = (-y) * (ctx->x1[i] - ctx->x2[i]) + margin;
        /* z < 0 ? 0 : z keeps a NaN z (fmaxf would drop it) */
        const float loss = z < 0.0f ? 0.0f : z;
        if (ctx->loss_out)
            ctx->loss_out[i] = loss;
        acc += (double)loss;
        if (ctx->grad1 || ctx->grad2) {
            const float s = ctx->grad_per_sample ? ctx->scale * ctx->grad_per_sample[i]
                                                 : ctx->scale;
            /* [z >= 0] as 1 or 0 multiplied in (not selected), so a NaN z or a
             * z below 0 gives torch's signed zeros: -y * s * 0 */
            const float m = z >= 0.0f ? 1.0f : 0.0f;
            const float g = y * s * m;
            if (ctx->grad1)
                ctx->grad1[i] = -g;
            if (ctx->grad2)
                ctx->grad2[i] = g;
        }
    }
    return ctx->want_sum ? acc : 0.0;
}

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
    double total = 0.0;
    int64_t bad = -1;
    const int status = fl_run_blocks(mr_block, &ctx, nblocks, n, n_threads, &total, &bad);
    if (status != FL_OK)
        return status;
    if (out->loss_reduced)
        *out->loss_reduced = out->reduction == FL_REDUCTION_MEAN ? total / (double)n : total;
    return FL_OK;
}

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

static double gnll_block(const void *vctx, int64_t block, int64_t *bad)
{
    (void)bad;
    const gnll_ctx *ctx = (const gnll_ctx *)vctx;
    double acc = 0.0;
    if (ctx->slabs_per_block > 0) {
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
    if (slab <= FL_BLOCK_ELEMS) {
        ctx.slabs_per_block = slab > 0 ? FL_BLOCK_ELEMS / slab : 1;
        nblocks = (ctx.a + ctx.slabs_per_block - 1) / ctx.slabs_per_block;
    } else {   /* b c > FL_BLOCK_ELEMS, so b, c > 0 */
        ctx.cols_per_block = FL_BLOCK_ELEMS / ctx.b > 1 ? FL_BLOCK_ELEMS / ctx.b : 1;
        nblocks = ctx.a * ((ctx.c + ctx.cols_per_block - 1) / ctx.cols_per_block);
    }
    double total = 0.0;
    int64_t bad = -1;
    const int status = fl_run_blocks(gnll_block, &ctx, nblocks, n, n_threads, &total, &bad);
    if (status != FL_OK)
        return status;
    if (out->loss_reduced)
        *out->loss_reduced = out->reduction == FL_REDUCTION_MEAN ? total / (double)n : total;
    return FL_OK;
}
