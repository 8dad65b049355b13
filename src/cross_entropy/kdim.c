/*
 * cross_entropy/kdim.c -- K-dimensional input (N, C, d1..dk) in place:
 * FL_TILE_ROWS positions at a time, vectorised across positions (cols.h),
 * without transposing the input.
 */
#include "cross_entropy/cols.h"

/* Block b covers positions [q0, q1) of sample n, where the block grid is
 * (n, position block) with positions_per_block positions per block. */
double FL_FN(fl_ce_kdim_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_kdim_ctx *ctx = (const fl_ce_kdim_ctx *)vctx;
    const fl_ce_problem *p = &ctx->p;
    const int64_t c = p->c, D = ctx->spatial, per = ctx->positions_per_block;
    const int64_t nb = (D + per - 1) / per;
    const int64_t n = block / nb, q0 = (block % nb) * per;
    const int64_t q1 = q0 + per < D ? q0 + per : D;
    const float *xs = p->x + n * c * D;
    float *gs = p->grad_out ? p->grad_out + n * c * D : NULL;
    ce_cols_out out;
    double acc = 0.0;
    for (int64_t q = q0; q < q1; q += FL_TILE_ROWS) {
        const int64_t rows = q1 - q < FL_TILE_ROWS ? q1 - q : FL_TILE_ROWS;
        acc += ce_cols(p, xs + q, D, gs ? gs + q : NULL, D, rows, n * D + q, c, &out, bad, 0, NULL, 0);
        if (gs)
            ce_cols_grad(p, gs + q, D, gs + q, D, rows, c, &out);
    }
    return p->want_sum ? acc : 0.0;
}
