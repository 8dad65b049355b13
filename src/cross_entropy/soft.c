/*
 * cross_entropy/soft.c -- probability ("soft") targets y of the input's shape.
 *
 * With y'_j = (1 - eps) y_j + eps / C (label smoothing) and W_j = w_j y'_j:
 *   loss = sum_j W_j (lse - x_j) + z lse^2 = sum_j W_j (m - x_j) + (sum_j W_j) log s + z lse^2
 *   grad_j = scale [ p_j (sum_c W_c + 2 z lse) - W_j ]
 * Pass 1: max. Pass 2: exp into g, s, A = sum W, B = sum W (m - x) (shifted
 * by the max: no cancellation). Pass 3: g = e k - scale W. One sample's
 * classes are ld apart (1 for rows, D for K-dimensional input).
 */
#include "cross_entropy/ce.h"

FL_INLINE double ce_soft_sample(const fl_ce_problem *p, const float *x, const float *y, float *g,
                                int64_t ld, float scale, float *lse_out)
{
    const int64_t c = p->c;
    const float *w = p->weight;
    const float keep = 1.0f - p->eps, u = p->eps / (float)c;
    float m = -INFINITY;
    FL_SIMD_MAX(m)
    for (int64_t j = 0; j < c; j++)
        m = x[j * ld] > m ? x[j * ld] : m;
    double s = 0.0, A = 0.0, B = 0.0;
    for (int64_t j0 = 0; j0 < c; j0 += FL_SUM_CHUNK) {
        const int64_t j1 = c - j0 < FL_SUM_CHUNK ? c : j0 + FL_SUM_CHUNK;
        float sf = 0.0f, af = 0.0f, bf = 0.0f;
        FL_SIMD_SUM3(sf, af, bf)
        for (int64_t j = j0; j < j1; j++) {
            const float d = x[j * ld] - m;
            const float e = fl_exp_nonpos(d);
            if (g)
                g[j * ld] = e;
            const float yj = keep * y[j * ld] + u;
            const float wy = w ? w[j] * yj : yj;
            sf += e;
            af += wy;
            bf -= wy * d;
        }
        s += sf;
        A += af;
        B += bf;
    }
    const double logs = log(s), lse = (double)m + logs, z = p->z_loss;
    if (lse_out)
        *lse_out = (float)lse;
    if (g) {
        const float k = (float)((double)scale * (A + 2.0 * z * lse) / s);
        FL_SIMD
        for (int64_t j = 0; j < c; j++) {
            const float yj = keep * y[j * ld] + u;
            g[j * ld] = g[j * ld] * k - scale * (w ? w[j] * yj : yj);
        }
    }
    return B + A * logs + z * lse * lse;
}

/* Blocks as for class targets: rows (spatial == 1) or (sample, positions). */
double FL_FN(fl_ce_soft_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_soft_ctx *ctx = (const fl_ce_soft_ctx *)vctx;
    const fl_ce_problem *p = &ctx->p;
    const int64_t c = p->c, D = ctx->spatial;
    int64_t n, q0, q1, per;
    (void)bad;
    if (D == 1) {
        per = ctx->rows_per_block;
        n = 0;
        q0 = block * per;
        q1 = q0 + per < p->n ? q0 + per : p->n;
    } else {
        per = ctx->positions_per_block;
        const int64_t nb = (D + per - 1) / per;
        n = block / nb;
        q0 = (block % nb) * per;
        q1 = q0 + per < D ? q0 + per : D;
    }
    double acc = 0.0;
    for (int64_t q = q0; q < q1; q++) {
        /* sample index i; its first class at offset `off`, classes `ld` apart */
        const int64_t i = n * D + q, off = D == 1 ? q * c : n * c * D + q, ld = D == 1 ? 1 : D;
        const float sc = p->grad_per_sample ? p->scale * p->grad_per_sample[i] : p->scale;
        const double loss = ce_soft_sample(p, p->x + off, ctx->soft_target + off,
                                           p->grad_out ? p->grad_out + off : NULL, ld, sc,
                                           p->lse_out ? p->lse_out + i : NULL);
        if (p->loss_out)
            p->loss_out[i] = (float)loss;
        acc += loss;
    }
    return p->want_sum ? acc : 0.0;
}
