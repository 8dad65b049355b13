/*
 * cross_entropy/rows.c -- long rows (C > FL_SHORT_ROW_MAX), one at a time,
 * vectorised along the row.
 *
 * Per row i with target t (x the row, g its gradient row):
 *   1. m = max_j x_j                       (read x)
 *   2. g_j = exp(x_j - m), s = sum_j g_j   (read x, write g; s in double)
 *   3. loss = m + log(s) - x_t             (log-sum-exp with the max subtracted)
 *   4. g_j *= scale / s; g_t -= scale      (g is still in cache)
 * x_t is read before step 2, so g may alias x (in-place gradient). Forward-only
 * calls run steps 1-3 without storing anything. Options: ce_finish (ce.h).
 */
#include "cross_entropy/ce.h"

/* Row i with a valid target t. g may be NULL (no gradient) or equal x. */
FL_INLINE double ce_long_row(const fl_ce_problem *p, int64_t i, int64_t t, float scale, float *g)
{
    const int64_t c = p->c;
    const float *x = p->x + i * c;
    const float m = ce_row_max(x, c);
    const float xt = x[t];   /* before g overwrites it when g == x */
    const float wt = p->weight ? p->weight[t] : 1.0f;
    if (p->correct_out)
        p->correct_out[i] = (int8_t)ce_argmax_is(x, t, m);
    double sd = 0.0;
    const double s = ce_exp_sum(x, c, m, g, p->eps != 0.0f, p->weight, &sd);
    const ce_row_result r = ce_finish(p, m, s, log(s), sd, xt, wt, scale);
    if (g) {
        ce_scale_row(g, c, r.k, r.b, p->weight);
        g[t] -= r.bt;
    }
    if (p->loss_out)
        p->loss_out[i] = (float)r.loss;
    if (p->lse_out)
        p->lse_out[i] = r.lse;
    if (p->correct_out && r.loss != r.loss)
        p->correct_out[i] = 0;
    return r.loss;
}

/* An ignored (or invalid) row: no loss, zero gradient. */
FL_INLINE void ce_skip_row(const fl_ce_problem *p, int64_t i)
{
    if (p->grad_out)
        memset(p->grad_out + i * p->c, 0, (size_t)p->c * sizeof(float));
    if (p->loss_out)
        p->loss_out[i] = 0.0f;
    if (p->lse_out)
        p->lse_out[i] = NAN;
    if (p->correct_out)
        p->correct_out[i] = 0;
}

double FL_FN(fl_ce_rows_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_rows_ctx *ctx = (const fl_ce_rows_ctx *)vctx;
    const fl_ce_problem *p = &ctx->p;
    const int64_t c = p->c;
    const int64_t r0 = block * ctx->rows_per_block;
    const int64_t r1 = r0 + ctx->rows_per_block < p->n ? r0 + ctx->rows_per_block : p->n;
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const int64_t t = p->target[i];
        const int ignored = (t == p->ignore_index);
        if (ignored || t < 0 || t >= c) {
            if (!ignored && *bad < 0)
                *bad = i;
            ce_skip_row(p, i);
            continue;
        }
        const float scale = p->grad_per_sample ? p->scale * p->grad_per_sample[i] : p->scale;
        acc += ce_long_row(p, i, t, scale, p->grad_out ? p->grad_out + i * c : NULL);
    }
    return p->want_sum ? acc : 0.0;
}
