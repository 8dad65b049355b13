/*
 * elementwise/driver.c -- the entry point shared by the elementwise losses.
 * Compiled once, with the baseline flags; the block kernels it runs are
 * the dispatched ISA's (generated/elementwise_kernels.c).
 */
#include <stdlib.h>
#include <string.h>

#include "elementwise/elementwise.h"

/* Prepare a periodic weight; *tile_mem receives the allocated tile (or NULL). */
static int fl_periodic_init(fl_periodic *pw, const fl_weight *weight, float **tile_mem)
{
    const float *w = weight ? weight->w : NULL;
    const int64_t period = weight ? weight->period : 0;
    pw->w = w;
    pw->period = period;
    pw->tile = NULL;
    *tile_mem = NULL;
    if (!w)
        return FL_OK;
    if (period <= FL_SUM_CHUNK) {
        const int64_t len = FL_SUM_CHUNK + period;
        float *tile = (float *)malloc((size_t)len * sizeof(float));
        if (!tile)
            return FL_ERR_NOMEM;
        for (int64_t k = 0; k < len; k++)
            tile[k] = w[k % period];
        pw->tile = tile;
        *tile_mem = tile;
    }
    return FL_OK;
}

/* The sum of a weight of period wp broadcast over n elements: whole periods
 * plus a remainder, in double. */
static double fl_broadcast_sum(const fl_weight *weight, int64_t n)
{
    const int64_t wp = weight->period;
    double whole = 0.0, part = 0.0;
    const int64_t rem = n % wp;
    for (int64_t k = 0; k < wp; k++) {
        whole += (double)weight->w[k];
        if (k < rem)
            part += (double)weight->w[k];
    }
    return whole * (double)(n / wp) + part;
}

int fl_run_elementwise(int kind, const float *x, const float *y, int64_t n,
                       const fl_weight *weight, const fl_weight *aux, int weighted_mean,
                       const void *opts, const fl_outputs *out, int n_threads)
{
    double denom = 1.0;
    if (out->reduction == FL_REDUCTION_MEAN) {
        denom = (double)n;
        if (weighted_mean && weight && weight->w)
            denom = fl_broadcast_sum(weight, n);
    }
    fl_elem_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.x = x;
    ctx.y = y;
    ctx.n = n;
    ctx.scale = (float)((double)out->grad_scale / denom);
    ctx.grad_per_sample = out->grad_per_sample;
    ctx.loss_out = out->loss_out;
    ctx.grad_out = out->grad_out;
    ctx.want_sum = out->loss_reduced != NULL;
    ctx.opts = opts;
    float *tile_w = NULL, *tile_a = NULL;
    int status = fl_periodic_init(&ctx.weight, weight, &tile_w);
    if (status == FL_OK)
        status = fl_periodic_init(&ctx.aux, aux, &tile_a);
    double total = 0.0;
    if (status == FL_OK) {
        int64_t bad = -1;
        status = fl_run_blocks(fl_kernels()->elem[kind], &ctx,
                               (n + FL_BLOCK_ELEMS - 1) / FL_BLOCK_ELEMS, n, n_threads, &total,
                               &bad);
    }
    free(tile_w);
    free(tile_a);
    if (status == FL_OK && out->loss_reduced)
        *out->loss_reduced = total / denom;
    return status;
}
