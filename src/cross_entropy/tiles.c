/*
 * cross_entropy/tiles.c -- short rows (C <= FL_SHORT_ROW_MAX): FL_TILE_ROWS
 * rows at a time, transposed into a stack tile and vectorised across rows
 * (cols.h); the gradient is transposed back, each row written once.
 */
#include "cross_entropy/cols.h"

/* Rows i0 .. i0+rows-1 (rows <= FL_TILE_ROWS) of c <= FL_SHORT_ROW_MAX
 * columns, transposed into T[j][r]. Called with a constant c (see
 * ce_short_rows), so the loops over j unroll into straight-line code. */
FL_INLINE double ce_short_tile(const fl_ce_problem *p, int64_t i0, int64_t rows, int64_t *bad,
                               const int64_t c)
{
    enum { R = FL_TILE_ROWS };
    const float *xs = p->x + i0 * c;
    float T[FL_SHORT_ROW_MAX * R];
    ce_cols_out out;
    for (int64_t j = 0; j < c; j++) {
        FL_SIMD
        for (int64_t r = 0; r < rows; r++)
            T[j * R + r] = xs[r * c + j];
    }
    const double acc = ce_cols(p, T, R, p->grad_out ? T : NULL, R, rows, i0, c, &out, bad);
    if (p->grad_out) {
        /* one pass writes each gradient row once: transposed back from T */
        float *gs = p->grad_out + i0 * c;
        const float *w = p->weight;
        for (int64_t r = 0; r < rows; r++) {
            float *g = gs + r * c;
            const float k = out.k[r], b = out.b[r];
            if (out.t[r] < 0) {
                for (int64_t j = 0; j < c; j++)
                    g[j] = 0.0f;
                continue;
            }
            for (int64_t j = 0; j < c; j++)
                g[j] = T[j * R + r] * k - b * (w ? w[j] : 1.0f);
            g[out.t[r]] -= out.bt[r];
        }
    }
    return acc;
}

/* Rows r0 .. r1-1 with c <= FL_SHORT_ROW_MAX, one specialisation per c. */
static double ce_short_rows(const fl_ce_problem *p, int64_t r0, int64_t r1, int64_t *bad)
{
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i += FL_TILE_ROWS) {
        const int64_t rows = r1 - i < FL_TILE_ROWS ? r1 - i : FL_TILE_ROWS;
        switch (p->c) {
#define FL_CASE(k) case k: acc += ce_short_tile(p, i, rows, bad, k); break;
        FL_CASE(1) FL_CASE(2) FL_CASE(3) FL_CASE(4) FL_CASE(5) FL_CASE(6) FL_CASE(7)
        FL_CASE(8) FL_CASE(9) FL_CASE(10) FL_CASE(11) FL_CASE(12) FL_CASE(13) FL_CASE(14)
        FL_CASE(15) FL_CASE(16)
#undef FL_CASE
        default: break;
        }
    }
    return acc;
}

double FL_FN(fl_ce_tiles_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_rows_ctx *ctx = (const fl_ce_rows_ctx *)vctx;
    const fl_ce_problem *p = &ctx->p;
    const int64_t r0 = block * ctx->rows_per_block;
    const int64_t r1 = r0 + ctx->rows_per_block < p->n ? r0 + ctx->rows_per_block : p->n;
    const double acc = ce_short_rows(p, r0, r1, bad);
    return p->want_sum ? acc : 0.0;
}
