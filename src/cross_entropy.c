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

/* ---- Long rows (c > FL_SHORT_ROW_MAX): one row at a time, vectorised along it. */

FL_INLINE float ce_row_max(const float *x, int64_t c)
{
    float m = -INFINITY;
    FL_SIMD_MAX(m)
    for (int64_t j = 0; j < c; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* sum_j exp(x_j - m) over n <= FL_SUM_CHUNK elements, storing the terms in g
 * when has_store (g may equal x). With has_sd, also *sd += sum_j w_j (m - x_j)
 * (w_j = 1 when w is NULL): the label-smoothing term, shifted by the max so
 * that it is a sum of non-negative terms (no cancellation). */
FL_INLINE float ce_exp_chunk(const float *x, int64_t n, float m, float *g, const int has_store,
                             const int has_sd, const float *w, float *sd)
{
    float s = 0.0f, d_sum = 0.0f;
    FL_SIMD_SUM2(s, d_sum)
    for (int64_t j = 0; j < n; j++) {
        const float d = x[j] - m;
        const float e = fl_exp_nonpos(d);
        if (has_store)
            g[j] = e;
        s += e;
        if (has_sd)
            d_sum -= w ? w[j] * d : d;
    }
    if (has_sd)
        *sd += d_sum;
    return s;
}

/* sum_j exp(x_j - m) over a whole row or chunk of c elements, in float chunks
 * added in double; *sd as above when has_sd. */
FL_INLINE double ce_exp_sum(const float *x, int64_t c, float m, float *g, int has_sd,
                            const float *w, double *sd)
{
    double s = 0.0, d = 0.0;
    for (int64_t j = 0; j < c; j += FL_SUM_CHUNK) {
        const int64_t len = c - j < FL_SUM_CHUNK ? c - j : FL_SUM_CHUNK;
        const float *wj = w ? w + j : NULL;
        float dj = 0.0f;
        if (has_sd)
            s += g ? ce_exp_chunk(x + j, len, m, g + j, 1, 1, wj, &dj)
                   : ce_exp_chunk(x + j, len, m, NULL, 0, 1, wj, &dj);
        else
            s += g ? ce_exp_chunk(x + j, len, m, g + j, 1, 0, NULL, NULL)
                   : ce_exp_chunk(x + j, len, m, NULL, 0, 0, NULL, NULL);
        d += dj;
    }
    *sd = d;
    return s;
}

/* 1 when the first index of the row's maximum m is t (torch.argmax semantics
 * for rows without NaN). x must still hold the logits. */
FL_INLINE int ce_argmax_is(const float *x, int64_t t, float m)
{
    if (!(x[t] == m))
        return 0;
    for (int64_t j = 0; j < t; j++)
        if (x[j] == m)
            return 0;
    return 1;
}

/* What a row contributes, from its max m, logs = log sum_j exp(x_j - m),
 * sd = sum_j w_j (m - x_j) (label smoothing only), the target's logit and
 * weight, and its upstream gradient scale:
 *
 *   lse  = m + logs
 *   loss = (1-eps) w_t (lse - x_t) + eps (W logs + sd) / C + z lse^2
 *        = (1-eps) w_t nll + eps * (-sum_c w_c log p_c) / C + z lse^2,  W = sum_c w_c
 *   grad_j = scale [ p_j A - eps w_j / C ] - scale (1-eps) w_t [j == t],
 *   A = (1-eps) w_t + eps W / C + 2 z lse,  p_j = exp(x_j - m) / s
 *
 * so the gradient pass is g_j = e_j * k - b * w_j, then g_t -= bt.
 * PyTorch's label smoothing with class weights (the weights inside the sum
 * over classes) and PaLM's z-loss, in one pass. */
typedef struct {
    double loss;
    float lse, k, b, bt;
} ce_row_result;

FL_INLINE ce_row_result ce_finish(const fl_ce_ctx *p, float m, double s, double logs, double sd,
                                  float xt, float wt, float scale)
{
    ce_row_result r;
    const double eps = p->eps, z = p->z_loss, lse = (double)m + logs;
    const double c = (double)p->c, W = p->weight_sum;
    double loss = (1.0 - eps) * (double)wt * (((double)m - (double)xt) + logs);
    double a = (1.0 - eps) * (double)wt;
    if (eps != 0.0) {
        loss += eps * (W * logs + sd) / c;
        a += eps * W / c;
    }
    if (z != 0.0) {
        loss += z * lse * lse;
        a += 2.0 * z * lse;
    }
    r.loss = loss;
    r.lse = (float)lse;
    r.k = (float)((double)scale * a / s);
    r.b = (float)((double)scale * eps / c);
    r.bt = (float)((double)scale * (1.0 - eps) * (double)wt);
    return r;
}

/* g_j = e_j * k - b * w_j over c elements (g holds e_j). */
FL_INLINE void ce_scale_row(float *g, int64_t c, float k, float b, const float *w)
{
    if (b == 0.0f) {
        FL_SIMD
        for (int64_t j = 0; j < c; j++)
            g[j] *= k;
    } else if (w) {
        FL_SIMD
        for (int64_t j = 0; j < c; j++)
            g[j] = g[j] * k - b * w[j];
    } else {
        FL_SIMD
        for (int64_t j = 0; j < c; j++)
            g[j] = g[j] * k - b;
    }
}

/* Row i with a valid target t. g may be NULL (no gradient) or equal x. */
FL_INLINE double ce_long_row(const fl_ce_ctx *p, int64_t i, int64_t t, float scale, float *g)
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
FL_INLINE void ce_skip_row(const fl_ce_ctx *p, int64_t i)
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

/* ---- Columns: FL_TILE_ROWS samples at a time, vectorised across samples.
 *
 * Two layouts have each sample's classes a fixed stride apart rather than
 * contiguous: a tile of short rows (C <= FL_SHORT_ROW_MAX) transposed into a
 * stack buffer, and K-dimensional input (N, C, d1..dk), where the classes of
 * position p of sample n are x[n, :, p], D = d1*...*dk apart. ce_cols handles
 * both: column r's class j is x[j * ld + r], and every step runs down the
 * columns, one SIMD lane per sample: max, exp, sum, the smoothing sum, and a
 * vectorised log (fl_log_pos) instead of one libm call per sample. Sums are
 * kept in float over chunks of classes and added in double. */

#define FL_SHORT_ROW_MAX 16
#define FL_TILE_ROWS 64

/* Per-column results, as arrays so the plain case runs vectorised. */
typedef struct {
    float k[FL_TILE_ROWS], b[FL_TILE_ROWS], bt[FL_TILE_ROWS];   /* see ce_finish */
    int64_t t[FL_TILE_ROWS];        /* target of each column, -1 if ignored/invalid */
} ce_cols_out;

/* 1 when the first index of column r's maximum m is t. */
FL_INLINE int ce_col_argmax_is(const float *x, int64_t ld, int64_t r, int64_t t, float m)
{
    if (!(x[t * ld + r] == m))
        return 0;
    for (int64_t j = 0; j < t; j++)
        if (x[j * ld + r] == m)
            return 0;
    return 1;
}

/* Columns 0..rows-1 of x (stride ld between classes) are the samples
 * base..base+rows-1. Stores exp(x - m) into e (stride eld) when e != NULL
 * (e may equal x); fills out->res/t and the per-sample outputs; returns the
 * sum of the losses. */
FL_INLINE double ce_cols(const fl_ce_ctx *p, const float *x, int64_t ld, float *e, int64_t eld,
                         int64_t rows, int64_t base, const int64_t c, ce_cols_out *out,
                         int64_t *bad)
{
    enum { R = FL_TILE_ROWS };
    const float *w = p->weight;
    const int has_sd = p->eps != 0.0f;
    float m[R], lg[R], xt[R], sf[R], sdf[R], lse[R];
    double s[R], sd[R];

    FL_SIMD
    for (int64_t r = 0; r < rows; r++)
        m[r] = x[r];
    for (int64_t j = 1; j < c; j++) {
        FL_SIMD
        for (int64_t r = 0; r < rows; r++)
            m[r] = x[j * ld + r] > m[r] ? x[j * ld + r] : m[r];
    }
    /* Targets first: x_t and argmax are read before e may overwrite x. */
    for (int64_t r = 0; r < rows; r++) {
        const int64_t i = base + r, t = p->target[i];
        const int valid = t >= 0 && t < c && t != p->ignore_index;
        if (!valid && t != p->ignore_index && *bad < 0)
            *bad = i;
        out->t[r] = valid ? t : -1;
        xt[r] = valid ? x[t * ld + r] : 0.0f;
        if (p->correct_out)
            p->correct_out[i] = (int8_t)(valid && ce_col_argmax_is(x, ld, r, t, m[r]));
    }
    /* exp(x - m) and the sums: float lanes over chunks of FL_SUM_CHUNK classes,
     * added in double (short rows are one chunk). One loop per case (smoothing
     * sum / stores / forward only), so each vectorises. */
    FL_SIMD
    for (int64_t r = 0; r < rows; r++)
        s[r] = sd[r] = 0.0;
    for (int64_t j0 = 0; j0 < c; j0 += FL_SUM_CHUNK) {
        const int64_t j1 = c - j0 < FL_SUM_CHUNK ? c : j0 + FL_SUM_CHUNK;
        FL_SIMD
        for (int64_t r = 0; r < rows; r++)
            sf[r] = sdf[r] = 0.0f;
        for (int64_t j = j0; j < j1; j++) {
            const float wj = w ? w[j] : 1.0f;
            if (has_sd) {
                FL_SIMD
                for (int64_t r = 0; r < rows; r++) {
                    const float d = x[j * ld + r] - m[r];
                    const float ej = fl_exp_nonpos(d);
                    if (e)
                        e[j * eld + r] = ej;
                    sf[r] += ej;
                    sdf[r] -= wj * d;
                }
            } else if (e) {
                FL_SIMD
                for (int64_t r = 0; r < rows; r++) {
                    const float ej = fl_exp_nonpos(x[j * ld + r] - m[r]);
                    e[j * eld + r] = ej;
                    sf[r] += ej;
                }
            } else {
                FL_SIMD
                for (int64_t r = 0; r < rows; r++)
                    sf[r] += fl_exp_nonpos(x[j * ld + r] - m[r]);
            }
        }
        FL_SIMD
        for (int64_t r = 0; r < rows; r++) {
            s[r] += sf[r];
            sd[r] += sdf[r];
        }
    }
    FL_SIMD
    for (int64_t r = 0; r < rows; r++)
        lg[r] = fl_log_pos((float)s[r]);

    /* Per column: ce_finish, or its plain case (no weight, smoothing or
     * z-loss) as one vector loop: loss = m - x_t + log s, k = scale / s. */
    double loss[R];
    const int plain = !w && p->eps == 0.0f && p->z_loss == 0.0f;
    const float *gps = p->grad_per_sample ? p->grad_per_sample + base : NULL;
    if (plain) {
        FL_SIMD
        for (int64_t r = 0; r < rows; r++) {
            const int valid = out->t[r] >= 0;
            const float sc = gps ? p->scale * gps[r] : p->scale;
            loss[r] = valid ? ((double)m[r] - (double)xt[r]) + (double)lg[r] : 0.0;
            out->k[r] = valid ? (float)((double)sc / s[r]) : 0.0f;
            out->b[r] = 0.0f;
            out->bt[r] = valid ? sc : 0.0f;
            lse[r] = valid ? (float)((double)m[r] + (double)lg[r]) : NAN;
        }
    } else {
        for (int64_t r = 0; r < rows; r++) {
            const int64_t t = out->t[r];
            if (t < 0) {
                loss[r] = 0.0;
                out->k[r] = out->b[r] = out->bt[r] = 0.0f;
                lse[r] = NAN;
                continue;
            }
            const float sc = gps ? p->scale * gps[r] : p->scale;
            const ce_row_result res =
                ce_finish(p, m[r], s[r], (double)lg[r], sd[r], xt[r], w ? w[t] : 1.0f, sc);
            loss[r] = res.loss;
            out->k[r] = res.k;
            out->b[r] = res.b;
            out->bt[r] = res.bt;
            lse[r] = res.lse;
        }
    }
    double acc = 0.0;
    for (int64_t r = 0; r < rows; r++)
        acc += loss[r];
    if (p->loss_out) {
        float *lo = p->loss_out + base;
        FL_SIMD
        for (int64_t r = 0; r < rows; r++)
            lo[r] = (float)loss[r];
    }
    if (p->lse_out)
        memcpy(p->lse_out + base, lse, (size_t)rows * sizeof(float));
    if (p->correct_out)
        for (int64_t r = 0; r < rows; r++)
            if (loss[r] != loss[r])
                p->correct_out[base + r] = 0;
    return acc;
}

/* g[j * gld + r] = e * k_r - b_r w_j (0 for ignored columns), then g_t -= bt_r.
 * e is read from e[j * eld + r] (e may equal g). */
FL_INLINE void ce_cols_grad(const fl_ce_ctx *p, const float *e, int64_t eld, float *g,
                            int64_t gld, int64_t rows, int64_t c, const ce_cols_out *out)
{
    const float *w = p->weight;
    const float *k = out->k, *b = out->b;
    for (int64_t j = 0; j < c; j++) {
        const float wj = w ? w[j] : 1.0f;
        FL_SIMD
        for (int64_t r = 0; r < rows; r++)
            g[j * gld + r] = out->t[r] >= 0 ? e[j * eld + r] * k[r] - b[r] * wj : 0.0f;
    }
    for (int64_t r = 0; r < rows; r++)
        if (out->t[r] >= 0)
            g[out->t[r] * gld + r] -= out->bt[r];
}

/* Rows i0 .. i0+rows-1 (rows <= FL_TILE_ROWS) of c <= FL_SHORT_ROW_MAX
 * columns, transposed into T[j][r]. Called with a constant c (see
 * ce_short_rows), so the loops over j unroll into straight-line code. */
FL_INLINE double ce_short_tile(const fl_ce_ctx *p, int64_t i0, int64_t rows, int64_t *bad,
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
static double ce_short_rows(const fl_ce_ctx *p, int64_t r0, int64_t r1, int64_t *bad)
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

/* K-dimensional input: block b covers positions [q0, q1) of sample n, where
 * the block grid is (n, position block) with p->positions_per_block
 * positions per block. In place: no transposition of the input. */
double FL_FN(fl_ce_kdim_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t c = p->c, D = p->spatial, per = p->positions_per_block;
    const int64_t nb = (D + per - 1) / per;
    const int64_t n = block / nb, q0 = (block % nb) * per;
    const int64_t q1 = q0 + per < D ? q0 + per : D;
    const float *xs = p->x + n * c * D;
    float *gs = p->grad_out ? p->grad_out + n * c * D : NULL;
    ce_cols_out out;
    double acc = 0.0;
    for (int64_t q = q0; q < q1; q += FL_TILE_ROWS) {
        const int64_t rows = q1 - q < FL_TILE_ROWS ? q1 - q : FL_TILE_ROWS;
        acc += ce_cols(p, xs + q, D, gs ? gs + q : NULL, D, rows, n * D + q, c, &out, bad);
        if (gs)
            ce_cols_grad(p, gs + q, D, gs + q, D, rows, c, &out);
    }
    return p->want_sum ? acc : 0.0;
}

double FL_FN(fl_ce_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t c = p->c;
    const int64_t r0 = block * p->rows_per_block;
    const int64_t r1 = r0 + p->rows_per_block < p->n ? r0 + p->rows_per_block : p->n;
    double acc = 0.0;
    if (c >= 1 && c <= FL_SHORT_ROW_MAX) {
        acc = ce_short_rows(p, r0, r1, bad);
        return p->want_sum ? acc : 0.0;
    }
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

/* ---- Probability ("soft") targets y of the input's shape.
 * With y'_j = (1 - eps) y_j + eps / C (label smoothing) and W_j = w_j y'_j:
 *   loss = sum_j W_j (lse - x_j) + z lse^2 = sum_j W_j (m - x_j) + (sum_j W_j) log s + z lse^2
 *   grad_j = scale [ p_j (sum_c W_c + 2 z lse) - W_j ]
 * Pass 1: max. Pass 2: exp into g, s, A = sum W, B = sum W (m - x) (shifted
 * by the max: no cancellation). Pass 3: g = e k - scale W. One sample's
 * classes are ld apart (1 for rows, D for K-dimensional input). */
FL_INLINE double ce_soft_sample(const fl_ce_ctx *p, const float *x, const float *y, float *g,
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
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t c = p->c, D = p->spatial;
    int64_t n, q0, q1, per;
    (void)bad;
    if (D == 1) {
        per = p->rows_per_block;
        n = 0;
        q0 = block * per;
        q1 = q0 + per < p->n ? q0 + per : p->n;
    } else {
        per = p->positions_per_block;
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
        const double loss = ce_soft_sample(p, p->x + off, p->soft_target + off,
                                           p->grad_out ? p->grad_out + off : NULL, ld, sc,
                                           p->lse_out ? p->lse_out + i : NULL);
        if (p->loss_out)
            p->loss_out[i] = (float)loss;
        acc += loss;
    }
    return p->want_sum ? acc : 0.0;
}

/* ---- Split rows: the row's chunks are independent units.
 * Pass 1 (per unit): m_k = max of the chunk, s_k = sum exp(x - m_k) with the
 * terms stored in g, sd_k = sum w (m_k - x) when smoothing, and the first index
 * of m_k when counting correct predictions. Merge (serial, per row, in chunk
 * order): M = max_k m_k, S = sum_k s_k exp(m_k - M),
 * SD = sum_k sd_k + (M - m_k) W_k, then ce_finish as for a whole row, and the
 * chunk's factor k exp(m_k - M). Pass 2 (per unit): g = g * factor - b w,
 * g_t -= bt in the target's chunk. A chunk of only -inf is shifted by 0
 * instead of its max: its terms are exp(-inf) = 0, not NaN. */

double FL_FN(fl_ce_split_stats)(const void *vctx, int64_t u, int64_t *bad)
{
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t i = u / p->nchunks, j0 = (u % p->nchunks) * FL_SPLIT_CHUNK;
    const int64_t len = p->c - j0 < FL_SPLIT_CHUNK ? p->c - j0 : FL_SPLIT_CHUNK;
    const float *x = p->x + i * p->c + j0;
    float *g = p->grad_out ? p->grad_out + i * p->c + j0 : NULL;
    fl_ce_split *sp = p->split;
    (void)bad;
    sp->chunk_first[u] = -1;
    if (p->target[i] == p->ignore_index) {
        if (g)
            memset(g, 0, (size_t)len * sizeof(float));
        sp->chunk_max[u] = -INFINITY;
        sp->chunk_sum[u] = 0.0;
        sp->chunk_sd[u] = 0.0;
        return 0.0;
    }
    const float m = ce_row_max(x, len);
    if (p->correct_out)
        for (int64_t j = 0; j < len; j++)
            if (x[j] == m) {
                sp->chunk_first[u] = j0 + j;
                break;
            }
    double sd = 0.0;
    sp->chunk_sum[u] = ce_exp_sum(x, len, m == -INFINITY ? 0.0f : m, g, p->eps != 0.0f,
                                  p->weight ? p->weight + j0 : NULL, &sd);
    sp->chunk_max[u] = m;
    sp->chunk_sd[u] = sd;
    return 0.0;
}

double FL_FN(fl_ce_split_scale)(const void *vctx, int64_t u, int64_t *bad)
{
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t i = u / p->nchunks, j0 = (u % p->nchunks) * FL_SPLIT_CHUNK;
    const int64_t len = p->c - j0 < FL_SPLIT_CHUNK ? p->c - j0 : FL_SPLIT_CHUNK;
    const int64_t t = p->target[i];
    const fl_ce_split *sp = p->split;
    float *g = p->grad_out + i * p->c + j0;
    (void)bad;
    if (t == p->ignore_index)
        return 0.0;
    ce_scale_row(g, len, sp->chunk_factor[u], sp->row_b[i], p->weight ? p->weight + j0 : NULL);
    if (t >= j0 && t < j0 + len)
        g[t - j0] -= sp->row_bt[i];
    return 0.0;
}

#ifdef FL_BUILD_ENTRY
/* Merge row i's chunks (see above); returns its loss. */
static double ce_split_merge(const fl_ce_ctx *p, int64_t i, const double *chunk_w)
{
    fl_ce_split *sp = p->split;
    const int64_t nch = p->nchunks, t = p->target[i];
    const float *m = sp->chunk_max + i * nch;
    const double *s = sp->chunk_sum + i * nch, *sd = sp->chunk_sd + i * nch;
    float big = -INFINITY;
    for (int64_t k = 0; k < nch; k++)
        big = m[k] > big ? m[k] : big;
    double total_s = 0.0, total_sd = 0.0;
    for (int64_t k = 0; k < nch; k++) {
        const double shift = m[k] == -INFINITY ? 0.0 : (double)m[k];
        total_s += s[k] > 0.0 ? s[k] * exp(shift - (double)big) : s[k];
        if (p->eps != 0.0f)
            total_sd += sd[k] + ((double)big - shift) * chunk_w[k];
    }
    /* The chunk holding the row's max contributes exp(0) = 1, so a row with
     * a finite max has total_s >= 1. Anything else is a row holding NaN or
     * +inf (its chunk's sum is NaN) or only -inf (total_s = 0): the whole row
     * gets NaN (loss, lse and every gradient element), as on the other paths,
     * where the max shift makes every term NaN. */
    const int nonfinite = !(total_s >= 1.0);
    if (nonfinite)
        total_s = NAN;
    const float scale = p->grad_per_sample ? p->scale * p->grad_per_sample[i] : p->scale;
    const ce_row_result r = ce_finish(p, big, total_s, log(total_s), total_sd, sp->row_xt[i],
                                      p->weight ? p->weight[t] : 1.0f, scale);
    for (int64_t k = 0; k < nch; k++) {
        const double shift = m[k] == -INFINITY ? 0.0 : (double)m[k];
        sp->chunk_factor[i * nch + k] =
            nonfinite ? NAN
                      : s[k] > 0.0 ? (float)((double)r.k * exp(shift - (double)big)) : 0.0f;
    }
    sp->row_b[i] = r.b;
    sp->row_bt[i] = r.bt;
    if (p->lse_out)
        p->lse_out[i] = r.lse;
    if (p->correct_out) {
        int64_t first = -1;
        for (int64_t k = 0; k < nch && first < 0; k++)
            if (m[k] == big)
                first = sp->chunk_first[i * nch + k];
        p->correct_out[i] = (int8_t)(first == t && r.loss == r.loss);
    }
    return r.loss;
}

/* Long rows: validate targets and read x_t first (pass 1 may overwrite x when
 * g == x), run pass 1, merge per row, run pass 2. *total gets the loss sum. */
static int ce_split(fl_ce_ctx *ctx, const fl_kernel_table *kernels, int n_threads,
                    double *total, int64_t *bad_row)
{
    const int64_t n = ctx->n, c = ctx->c, nch = (c + FL_SPLIT_CHUNK - 1) / FL_SPLIT_CHUNK;
    const int64_t units = n * nch, nrows = n > 0 ? n : 1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = ctx->target[i];
        if (t != ctx->ignore_index && (t < 0 || t >= c)) {
            *bad_row = i;
            return FL_ERR_TARGET;
        }
    }
    fl_ce_split sp;
    sp.chunk_max = (float *)malloc((size_t)units * sizeof(float));
    sp.chunk_sum = (double *)malloc((size_t)units * sizeof(double));
    sp.chunk_sd = (double *)malloc((size_t)units * sizeof(double));
    sp.chunk_factor = (float *)malloc((size_t)units * sizeof(float));
    sp.chunk_first = (int64_t *)malloc((size_t)units * sizeof(int64_t));
    sp.row_xt = (float *)malloc((size_t)nrows * sizeof(float));
    sp.row_b = (float *)malloc((size_t)nrows * sizeof(float));
    sp.row_bt = (float *)malloc((size_t)nrows * sizeof(float));
    double *chunk_w = (double *)malloc((size_t)nch * sizeof(double));
    int status = (sp.chunk_max && sp.chunk_sum && sp.chunk_sd && sp.chunk_factor &&
                  sp.chunk_first && sp.row_xt && sp.row_b && sp.row_bt && chunk_w)
                     ? FL_OK : FL_ERR_NOMEM;
    if (status == FL_OK) {
        for (int64_t k = 0; k < nch; k++) {
            const int64_t j0 = k * FL_SPLIT_CHUNK;
            const int64_t len = c - j0 < FL_SPLIT_CHUNK ? c - j0 : FL_SPLIT_CHUNK;
            double w = 0.0;
            for (int64_t j = 0; j < len; j++)
                w += ctx->weight ? (double)ctx->weight[j0 + j] : 1.0;
            chunk_w[k] = w;
        }
        for (int64_t i = 0; i < n; i++) {
            const int64_t t = ctx->target[i];
            sp.row_xt[i] = t == ctx->ignore_index ? 0.0f : ctx->x[i * c + t];
        }
        ctx->nchunks = nch;
        ctx->split = &sp;
        double unused = 0.0;
        int64_t bad = -1;
        status = fl_run_blocks(kernels->ce_split_stats, ctx, units, n * c, n_threads,
                               &unused, &bad);
    }
    if (status == FL_OK) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            if (ctx->target[i] == ctx->ignore_index) {
                if (ctx->loss_out)
                    ctx->loss_out[i] = 0.0f;
                if (ctx->lse_out)
                    ctx->lse_out[i] = NAN;
                if (ctx->correct_out)
                    ctx->correct_out[i] = 0;
                continue;
            }
            const double l = ce_split_merge(ctx, i, chunk_w);
            if (ctx->loss_out)
                ctx->loss_out[i] = (float)l;
            sum += l;
        }
        *total = sum;
        if (ctx->grad_out) {
            double unused = 0.0;
            int64_t bad = -1;
            status = fl_run_blocks(kernels->ce_split_scale, ctx, units, n * c, n_threads,
                                   &unused, &bad);
        }
    }
    free(sp.chunk_max);
    free(sp.chunk_sum);
    free(sp.chunk_sd);
    free(sp.chunk_factor);
    free(sp.chunk_first);
    free(sp.row_xt);
    free(sp.row_b);
    free(sp.row_bt);
    free(chunk_w);
    ctx->split = NULL;
    return status;
}

int fl_cross_entropy_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t ignore_index, int reduction, float grad_scale,
                         const fl_ce_options *opts, const float *grad_per_sample,
                         float *loss_out, double *loss_reduced, float *grad_out,
                         int n_threads, int64_t *bad_row)
{
    return fl_cross_entropy_kdim_f32(x, target, n, c, 1, ignore_index, reduction, grad_scale,
                                     opts, grad_per_sample, loss_out, loss_reduced, grad_out,
                                     n_threads, bad_row);
}

/* The fields every entry point fills; the rest are zero. */
static void ce_ctx_init(fl_ce_ctx *ctx, const float *x, int64_t n, int64_t c, double scale,
                        const fl_ce_options *opts, const float *grad_per_sample,
                        float *loss_out, int want_sum, float *grad_out)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->x = x;
    ctx->n = n;
    ctx->c = c;
    ctx->scale = (float)scale;
    ctx->grad_per_sample = grad_per_sample;
    ctx->loss_out = loss_out;
    ctx->grad_out = grad_out;
    ctx->want_sum = want_sum;
    ctx->weight_sum = (double)c;
    if (opts) {
        ctx->weight = opts->weight;
        ctx->eps = opts->label_smoothing;
        ctx->z_loss = opts->z_loss;
        ctx->lse_out = opts->lse_out;
        ctx->correct_out = opts->correct_out;
        if (opts->weight) {
            double w = 0.0;
            for (int64_t j = 0; j < c; j++)
                w += (double)opts->weight[j];
            ctx->weight_sum = w;
        }
    }
}

int fl_cross_entropy_soft_f32(const float *x, const float *y, int64_t n, int64_t c, int64_t d,
                              int reduction, float grad_scale, const fl_ce_options *opts,
                              const float *grad_per_sample, float *loss_out,
                              double *loss_reduced, float *grad_out, int n_threads)
{
    if (n < 0 || c < 1 || d < 0 || n_threads < 1 || reduction < FL_REDUCTION_NONE ||
        reduction > FL_REDUCTION_SUM || (n > 0 && d > 0 && (!x || !y)) ||
        (reduction != FL_REDUCTION_NONE && (loss_out || grad_per_sample)) ||
        (reduction == FL_REDUCTION_NONE && loss_reduced) || (opts && opts->correct_out))
        return FL_ERR_ARG;
    const int64_t samples = n * d;
    const double denom = reduction == FL_REDUCTION_MEAN ? (double)samples : 1.0;
    fl_ce_ctx ctx;
    ce_ctx_init(&ctx, x, n, c, (double)grad_scale / denom, opts, grad_per_sample, loss_out,
                loss_reduced != NULL, grad_out);
    ctx.soft_target = y;
    ctx.spatial = d;
    int64_t nblocks;
    if (d == 1) {
        ctx.rows_per_block = c < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / c : 1;
        nblocks = (n + ctx.rows_per_block - 1) / ctx.rows_per_block;
    } else {
        ctx.positions_per_block = FL_BLOCK_ELEMS / c > 1 ? FL_BLOCK_ELEMS / c : 1;
        nblocks = n * ((d + ctx.positions_per_block - 1) / ctx.positions_per_block);
    }
    double total = 0.0;
    int64_t bad = -1;
    const int status = fl_run_blocks(fl_kernels()->ce_soft_block, &ctx, nblocks, samples * c,
                                     n_threads, &total, &bad);
    if (status == FL_OK && loss_reduced)
        *loss_reduced = total / denom;
    return status;
}

int fl_cross_entropy_kdim_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                              int64_t d, int64_t ignore_index, int reduction, float grad_scale,
                              const fl_ce_options *opts, const float *grad_per_sample,
                              float *loss_out, double *loss_reduced, float *grad_out,
                              int n_threads, int64_t *bad_row)
{
    if (n < 0 || c < 0 || d < 0 || n_threads < 1 || reduction < FL_REDUCTION_NONE ||
        reduction > FL_REDUCTION_SUM || (n > 0 && d > 0 && (!x || !target)) ||
        (reduction != FL_REDUCTION_NONE && (loss_out || grad_per_sample)) ||
        (reduction == FL_REDUCTION_NONE && loss_reduced))
        return FL_ERR_ARG;
    if (bad_row)
        *bad_row = -1;
    const float *weight = opts ? opts->weight : NULL;

    /* The mean's denominator: the target weights of the rows that are not
     * ignored (their count without weights). Out-of-range targets are skipped
     * here and reported by the main pass. */
    const int64_t samples = n * d;   /* one target per (sample, position) */
    double denom = 1.0;
    if (reduction == FL_REDUCTION_MEAN) {
        if (weight) {
            double valid = 0.0;
            for (int64_t i = 0; i < samples; i++) {
                const int64_t t = target[i];
                if (t != ignore_index && t >= 0 && t < c)
                    valid += (double)weight[t];
            }
            denom = valid;
        } else {
            int64_t valid = 0;
            for (int64_t i = 0; i < samples; i++)
                valid += target[i] != ignore_index;
            denom = (double)valid;   /* out-of-range targets fail the call anyway */
        }
    }

    fl_ce_ctx ctx;
    ce_ctx_init(&ctx, x, n, c, (double)grad_scale / denom, opts, grad_per_sample, loss_out,
                loss_reduced != NULL, grad_out);
    ctx.target = target;
    ctx.ignore_index = ignore_index;
    ctx.rows_per_block = c > 0 && c < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / c : 1;

    double total = 0.0;
    int64_t bad = -1;
    int status;
    if (d != 1) {
        /* positions per block: about FL_BLOCK_ELEMS elements, whole tiles
         * (d = 0, a zero-size spatial dimension: no block) */
        int64_t per = c > 0 ? FL_BLOCK_ELEMS / c : FL_BLOCK_ELEMS;
        per = per < FL_TILE_ROWS ? FL_TILE_ROWS : per - per % FL_TILE_ROWS;
        ctx.spatial = d;
        ctx.positions_per_block = per;
        const int64_t nblocks = c > 0 ? n * ((d + per - 1) / per) : 0;
        status = fl_run_blocks(fl_kernels()->ce_kdim_block, &ctx, nblocks, samples * c,
                               n_threads, &total, &bad);
        if (c == 0) {   /* no classes: every target is ignored or out of range */
            for (int64_t i = 0; i < samples; i++) {
                if (target[i] != ignore_index && bad < 0)
                    bad = i;
                if (loss_out)
                    loss_out[i] = 0.0f;
                if (ctx.lse_out)
                    ctx.lse_out[i] = NAN;
                if (ctx.correct_out)
                    ctx.correct_out[i] = 0;
            }
        }
    } else if (c >= FL_SPLIT_MIN_C && (n < FL_SPLIT_MAX_ROWS || c >= FL_SPLIT_HUGE_C)) {
        status = ce_split(&ctx, fl_kernels(), n_threads, &total, &bad);
    } else {
        const int64_t nblocks = (n + ctx.rows_per_block - 1) / ctx.rows_per_block;
        status = fl_run_blocks(fl_kernels()->ce_block, &ctx, nblocks, n * c, n_threads,
                               &total, &bad);
    }
    if (status != FL_OK && status != FL_ERR_TARGET)
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
