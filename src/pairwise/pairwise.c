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
