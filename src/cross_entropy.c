/*
 * cross_entropy.c -- softmax cross-entropy with class targets.
 *
 * Compiled once per instruction set (see fl_internal.h); the entry point
 * fl_cross_entropy_f32 only in the baseline copy.
 *
 * Per row i with target t (x the row, g its gradient row):
 *   1. m = max_j x_j                       (read x)
 *   2. g_j = exp(x_j - m), s = sum_j g_j   (read x, write g; s in double)
 *   3. loss = m + log(s) - x_t             (log-sum-exp with the max subtracted)
 *   4. g_j *= scale / s; g_t -= scale      (g is still in cache)
 * x_t is read before step 2, so g may alias x (in-place gradient). Forward-only
 * calls run steps 1-3 without storing anything.
 * The max ignores NaN (x > m is false for NaN), but a NaN then reaches step 2
 * as exp(NaN - m) = NaN and poisons s, the loss and the whole gradient row.
 * A row of all -inf gives m = -inf and x - m = NaN, hence NaN, as in PyTorch.
 */
#include "fl_internal.h"

#include <stdlib.h>

FL_INLINE float ce_row_max(const float *x, int64_t c)
{
    float m = -INFINITY;
    FL_SIMD_MAX(m)
    for (int64_t j = 0; j < c; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* Returns the row's loss in double. g may be NULL (no gradient) or equal x. */
FL_INLINE double ce_row(const float *x, int64_t c, int64_t t, float scale, float *g)
{
    const float m = ce_row_max(x, c);
    const float xt = x[t];
    double s = 0.0;
    if (g) {
        FL_SIMD_SUM(s)
        for (int64_t j = 0; j < c; j++) {
            const float e = fl_exp_nonpos(x[j] - m);
            g[j] = e;
            s += e;
        }
        const float k = (float)((double)scale / s);
        FL_SIMD
        for (int64_t j = 0; j < c; j++)
            g[j] *= k;
        g[t] -= scale;
    } else {
        FL_SIMD_SUM(s)
        for (int64_t j = 0; j < c; j++)
            s += fl_exp_nonpos(x[j] - m);
    }
    return (double)m + log(s) - (double)xt;
}

double FL_FN(fl_ce_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t c = p->c;
    const int64_t r0 = block * p->rows_per_block;
    const int64_t r1 = r0 + p->rows_per_block < p->n ? r0 + p->rows_per_block : p->n;
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const int64_t t = p->target[i];
        float *g = p->grad_out ? p->grad_out + i * c : NULL;
        const int ignored = (t == p->ignore_index);
        if (ignored || t < 0 || t >= c) {
            if (!ignored && *bad < 0)
                *bad = i;
            if (g)
                memset(g, 0, (size_t)c * sizeof(float));
            if (p->loss_out)
                p->loss_out[i] = 0.0f;
            continue;
        }
        const float scale = p->grad_per_sample ? p->scale * p->grad_per_sample[i] : p->scale;
        const double loss = ce_row(p->x + i * c, c, t, scale, g);
        if (p->loss_out)
            p->loss_out[i] = (float)loss;
        acc += loss;
    }
    return p->want_sum ? acc : 0.0;
}

#ifdef FL_BUILD_ENTRY
int fl_cross_entropy_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t ignore_index, int reduction, float grad_scale,
                         const float *grad_per_sample, float *loss_out,
                         double *loss_reduced, float *grad_out, int n_threads,
                         int64_t *bad_row)
{
    if (n < 0 || c < 0 || n_threads < 1 || reduction < FL_REDUCTION_NONE ||
        reduction > FL_REDUCTION_SUM || (n > 0 && (!x || !target)) ||
        (reduction != FL_REDUCTION_NONE && (loss_out || grad_per_sample)) ||
        (reduction == FL_REDUCTION_NONE && loss_reduced))
        return FL_ERR_ARG;
    if (bad_row)
        *bad_row = -1;

    /* The mean's denominator: rows that are not ignored (out-of-range targets
     * are reported by the main pass). */
    double denom = 1.0;
    if (reduction == FL_REDUCTION_MEAN) {
        int64_t valid = 0;
        for (int64_t i = 0; i < n; i++)
            valid += (target[i] != ignore_index);
        denom = (double)valid;
    }

    fl_ce_ctx ctx;
    ctx.x = x;
    ctx.target = target;
    ctx.n = n;
    ctx.c = c;
    ctx.ignore_index = ignore_index;
    ctx.rows_per_block = c > 0 && c < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / c : 1;
    ctx.scale = (float)((double)grad_scale / denom);
    ctx.grad_per_sample = grad_per_sample;
    ctx.loss_out = loss_out;
    ctx.grad_out = grad_out;
    ctx.want_sum = loss_reduced != NULL;

    const int64_t nblocks = (n + ctx.rows_per_block - 1) / ctx.rows_per_block;
    double total = 0.0;
    int64_t bad = -1;
    const int status = fl_run_blocks(fl_kernels()->ce_block, &ctx, nblocks, n * c,
                                     n_threads, &total, &bad);
    if (status != FL_OK)
        return status;
    if (bad >= 0) {
        if (bad_row)
            *bad_row = bad;
        return FL_ERR_TARGET;
    }
    if (loss_reduced)
        *loss_reduced = total / denom;
    return FL_OK;
}
#endif
