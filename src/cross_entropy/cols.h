/*
 * cross_entropy/cols.h -- FL_TILE_ROWS samples at a time, vectorised across samples.
 *
 * Two layouts have each sample's classes a fixed stride apart rather than
 * contiguous: a tile of short rows (C <= FL_SHORT_ROW_MAX) transposed into a
 * stack buffer (tiles.c), and K-dimensional input (N, C, d1..dk), where the
 * classes of position p of sample n are x[n, :, p], D = d1*...*dk apart
 * (kdim.c). ce_cols handles both: column r's class j is x[j * ld + r], and
 * every step runs down the columns, one SIMD lane per sample: max, exp, sum,
 * the smoothing sum, and a vectorised log (fl_log_pos) instead of one libm
 * call per sample. Sums are kept in float over chunks of classes and added
 * in double.
 */
#ifndef FL_CE_COLS_H
#define FL_CE_COLS_H

#include "cross_entropy/ce.h"

/* Per-column results, as arrays so the plain case runs vectorised. */
typedef struct {
    float k[FL_TILE_ROWS], b[FL_TILE_ROWS], bt[FL_TILE_ROWS];   /* see ce_finish */
    int64_t t[FL_TILE_ROWS];        /* target of each column, -1 if ignored/invalid */
    float xt[FL_TILE_ROWS];         /* the target's logit, 0 for t = -1 */
} ce_cols_out;

/* What a caller computed for columns 0..front-1 before ce_cols: the max m and
 * the float sum of exp(x - m) over all c classes (one chunk, j ascending,
 * from 0), exp(x - m) already stored in e. Only without label smoothing and
 * without correct_out (which needs the logits after the max). */
typedef struct {
    float m[FL_TILE_ROWS], s[FL_TILE_ROWS];
} ce_cols_front;

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
 * (e may equal x); fills out and the per-sample outputs; returns the sum of
 * the losses. The caller has already checked the targets of columns
 * 0..done-1 (out->t, out->xt, *bad as below; tiles.c does it 8 columns per
 * vector); ce_cols checks the rest. fr (may be NULL when front is 0) holds
 * the max and the sum of columns 0..front-1 (see ce_cols_front). */
FL_INLINE double ce_cols(const fl_ce_problem *p, const float *x, int64_t ld, float *e, int64_t eld,
                         int64_t rows, int64_t base, const int64_t c, ce_cols_out *out,
                         int64_t *bad, int64_t done, const ce_cols_front *fr, int64_t front)
{
    enum { R = FL_TILE_ROWS };
    const float *w = p->weight;
    const int has_sd = p->eps != 0.0f;
    float m[R], lg[R], sf[R], sdf[R], lse[R];
    const float *xt = out->xt;
    double s[R], sd[R];

    for (int64_t r = 0; r < front; r++)
        m[r] = fr->m[r];
    FL_SIMD
    for (int64_t r = front; r < rows; r++)
        m[r] = x[r];
    for (int64_t j = 1; j < c; j++) {
        FL_SIMD
        for (int64_t r = front; r < rows; r++)
            m[r] = x[j * ld + r] > m[r] ? x[j * ld + r] : m[r];
    }
    /* Targets first: x_t and argmax are read before e may overwrite x. */
    for (int64_t r = done; r < rows; r++) {
        const int64_t i = base + r, t = p->target[i];
        const int valid = t >= 0 && t < c && t != p->ignore_index;
        if (!valid && t != p->ignore_index && *bad < 0)
            *bad = i;
        out->t[r] = valid ? t : -1;
        out->xt[r] = valid ? x[t * ld + r] : 0.0f;
    }
    if (p->correct_out)
        for (int64_t r = 0; r < rows; r++)
            p->correct_out[base + r] =
                (int8_t)(out->t[r] >= 0 && ce_col_argmax_is(x, ld, r, out->t[r], m[r]));
    /* exp(x - m) and the sums: float lanes over chunks of FL_SUM_CHUNK classes,
     * added in double (short rows are one chunk). One loop per case (smoothing
     * sum / stores / forward only), so each vectorises. */
    FL_SIMD
    for (int64_t r = 0; r < rows; r++)
        s[r] = sd[r] = 0.0;
    for (int64_t r = 0; r < front; r++)
        s[r] = fr->s[r];        /* 0.0 + s in the loop below */
    for (int64_t j0 = 0; j0 < c; j0 += FL_SUM_CHUNK) {
        const int64_t j1 = c - j0 < FL_SUM_CHUNK ? c : j0 + FL_SUM_CHUNK;
        FL_SIMD
        for (int64_t r = front; r < rows; r++)
            sf[r] = sdf[r] = 0.0f;
        for (int64_t j = j0; j < j1; j++) {
            const float wj = w ? w[j] : 1.0f;
            if (has_sd) {
                FL_SIMD
                for (int64_t r = front; r < rows; r++) {
                    const float d = x[j * ld + r] - m[r];
                    const float ej = fl_exp_nonpos(d);
                    if (e)
                        e[j * eld + r] = ej;
                    sf[r] += ej;
                    sdf[r] -= wj * d;
                }
            } else if (e) {
                FL_SIMD
                for (int64_t r = front; r < rows; r++) {
                    const float ej = fl_exp_nonpos(x[j * ld + r] - m[r]);
                    e[j * eld + r] = ej;
                    sf[r] += ej;
                }
            } else {
                FL_SIMD
                for (int64_t r = front; r < rows; r++)
                    sf[r] += fl_exp_nonpos(x[j * ld + r] - m[r]);
            }
        }
        FL_SIMD
        for (int64_t r = front; r < rows; r++) {
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
    /* Four running sums, not one: a single chain of 64 dependent double
     * adds (4 cycles each) held up the tile (measured 7% of short-row CE).
     * The order is fixed by the column index, never by the thread count. */
    double a4[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t r4 = 0;
    for (; r4 + 4 <= rows; r4 += 4)
        for (int q = 0; q < 4; q++)
            a4[q] += loss[r4 + q];
    double acc = (a4[0] + a4[1]) + (a4[2] + a4[3]);
    for (; r4 < rows; r4++)
        acc += loss[r4];
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
FL_INLINE void ce_cols_grad(const fl_ce_problem *p, const float *e, int64_t eld, float *g,
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

#endif /* FL_CE_COLS_H */
