/*
 * cross_entropy/ce.h -- what the cross-entropy strategies share.
 *
 * Design note. Softmax cross-entropy has one formula and several ways to
 * walk the data, each in its own file, compiled once per ISA:
 *
 *   rows.c    long rows (C > 16), one at a time, vectorised along the row:
 *             max; exp(x - m) into the gradient row (used as scratch) while
 *             summing; scale in place (the row is still in cache).
 *   tiles.c   short rows (C <= 16), FL_TILE_ROWS rows transposed into a
 *             stack tile and vectorised across rows (cols.h).
 *   kdim.c    K-dimensional input (N, C, d): the same column walk in place,
 *             across positions, without transposing the input (cols.h).
 *   soft.c    probability targets of the input's shape, rows or K-dim.
 *   split.c   few long rows (n < 64 with C >= 32768, or C >= 262144): the
 *             row's chunks are independent units, merged per row in order.
 *   entry.c   the entry points (baseline copy only): the mean's
 *             denominator, the strategy (from the shape only, never the
 *             thread count), the block grid.
 *
 * Every strategy's context starts with the same fl_ce_problem. Per row with
 * target t, max m, s = sum_j exp(x_j - m), see ce_finish for the loss and
 * the gradient coefficients. x_t is read before the gradient may overwrite
 * x (in-place gradient). The max ignores NaN (x > m is false for NaN), but a
 * NaN then reaches the exp as exp(NaN - m) = NaN and poisons s, the loss and
 * the whole gradient row. A row of all -inf gives m = -inf and x - m = NaN,
 * hence NaN, as in PyTorch.
 */
#ifndef FL_CE_H
#define FL_CE_H

#include <stdlib.h>

#include "fl_math.h"
#include "fl_dispatch.h"
#include "fl_vec.h"

/* The problem every strategy solves (its context's first member). */
typedef struct {
    const float *x;                 /* IN  (n, c[, d]) logits */
    const int64_t *target;          /* IN  (n[, d]) class targets (NULL for soft targets) */
    int64_t n, c, ignore_index;
    float scale;                    /* upstream scalar, already divided for MEAN */
    const float *grad_per_sample;   /* IN  per-sample, or NULL */
    float *loss_out;                /* OUT per-sample, or NULL */
    float *grad_out;                /* OUT like x, or NULL, may equal x */
    int want_sum;                   /* return partial sums of the losses */
    const float *weight;            /* IN  (c,) class weights or NULL */
    double weight_sum;              /* sum of weight (c without weights) */
    float eps;                      /* label smoothing */
    float z_loss;                   /* coefficient of lse^2 */
    float *lse_out;                 /* OUT per-sample, or NULL */
    int8_t *correct_out;            /* OUT per-sample, or NULL */
} fl_ce_problem;

/* rows.c, tiles.c: blocks of rows_per_block rows. scratch: NULL, or one row
 * of c floats per thread (thread k's at scratch + k * c) for streaming the
 * gradient (rows.c). */
typedef struct {
    fl_ce_problem p;
    int64_t rows_per_block;
    float *scratch;
} fl_ce_rows_ctx;

/* Long rows whose gradient is at least this big (the whole gradient, in
 * bytes) write it with streaming (non-temporal) stores: the exps go into a
 * per-thread scratch row that stays in cache, and the scaled gradient goes
 * to memory without the gradient's lines being read first (a store to a line
 * not in cache reads it; that was a third of the memory traffic). Smaller
 * gradients stay in cache for whatever reads them next. Speed only: the
 * values are the same bits either way. */
#define FL_STREAM_MIN_BYTES ((int64_t)32 << 20)

/* Such rows run in blocks of about this many elements (1 MiB of input), in
 * which each row's gradient is written while the next row's exps are
 * computed, and the row after that is prefetched (rows.c): the memory
 * traffic overlaps the arithmetic instead of following it. A block's first
 * row is read and its last row written without that overlap, hence blocks
 * of several rows; the grid depends on the shape only. */
#define FL_PIPE_BLOCK_ELEMS ((int64_t)1 << 18)

/* kdim.c: block b covers positions_per_block positions of one sample. */
typedef struct {
    fl_ce_problem p;
    int64_t spatial, positions_per_block;
} fl_ce_kdim_ctx;

/* soft.c: rows (spatial == 1, rows_per_block) or K-dim (positions_per_block). */
typedef struct {
    fl_ce_problem p;
    const float *soft_target;       /* IN  the input's shape */
    int64_t spatial, rows_per_block, positions_per_block;
} fl_ce_soft_ctx;

#define FL_SHORT_ROW_MAX 16
#define FL_TILE_ROWS 64

/* Long rows are cut into chunks of FL_SPLIT_CHUNK when there are too few rows
 * to keep every thread busy (n < FL_SPLIT_MAX_ROWS), or when a row is too big
 * for the L2 cache anyway (c >= FL_SPLIT_HUGE_C); the chunks' (max, sum) pairs
 * are merged per row in chunk order (split.c). The split costs a second trip
 * of the gradient through memory when rows would fit in L2 (measured: 512 x
 * 32768 takes 18% longer split), hence the row limit. */
#define FL_SPLIT_CHUNK ((int64_t)16384)
#define FL_SPLIT_MIN_C (2 * FL_SPLIT_CHUNK)
#define FL_SPLIT_MAX_ROWS ((int64_t)64)
#define FL_SPLIT_HUGE_C ((int64_t)262144)

/* split.c (baseline copy): the split-row strategy over a whole problem. */
int fl_ce_split_run(const fl_ce_problem *p, const fl_kernel_table *kernels, int n_threads,
                    double *total, int64_t *bad_row);

/* max_j x_j (NaN is never picked: x > m is false for it). With SIMD, four
 * running maxima: one would be a chain of dependent max instructions. */
FL_INLINE float ce_row_max(const float *x, int64_t c)
{
    float m = -INFINITY;
    int64_t j = 0;
#if FL_VEC
    fl_vf m0 = fl_vset1(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    for (; j + 4 * FL_VLEN <= c; j += 4 * FL_VLEN) {
        m0 = fl_vmax(fl_vload(x + j), m0);
        m1 = fl_vmax(fl_vload(x + j + FL_VLEN), m1);
        m2 = fl_vmax(fl_vload(x + j + 2 * FL_VLEN), m2);
        m3 = fl_vmax(fl_vload(x + j + 3 * FL_VLEN), m3);
    }
    for (; j + FL_VLEN <= c; j += FL_VLEN)
        m0 = fl_vmax(fl_vload(x + j), m0);
    m = fl_vhmax(fl_vmax(fl_vmax(m0, m1), fl_vmax(m2, m3)));
#endif
    FL_SIMD_MAX(m)
    for (int64_t i = j; i < c; i++)
        m = x[i] > m ? x[i] : m;
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

/* A gradient row whose exps are in e (a scratch row) and whose
 * coefficients are known, still to be written (rows.c): its aligned middle
 * [head, end) is streamed a piece at a time from `next` on, between the
 * pieces of the next row's exp pass, so that the stores drain while the exps
 * are computed. */
typedef struct {
    float *g;
    const float *e, *w;
    int64_t c, t, head, end, next;
    float k, b, bt;
} ce_pending;

#if FL_VEC
/* g_j = e_j k - b w_j (w_j = 1 without weights) for j in [j0, j1), whole
 * vectors, with streaming stores: g + j0 aligned to FL_VLEN floats. */
FL_INLINE void ce_stream_range(float *g, const float *e, int64_t j0, int64_t j1, float k, float b,
                               const float *w)
{
    const fl_vf vk = fl_vset1(k), vb = fl_vset1(b);
    int64_t j = j0;
    if (b == 0.0f) {
        for (; j + FL_VLEN <= j1; j += FL_VLEN)
            fl_vstream(g + j, fl_vmul(fl_vload(e + j), vk));
    } else if (w) {
        for (; j + FL_VLEN <= j1; j += FL_VLEN)
            fl_vstream(g + j, fl_vsub(fl_vmul(fl_vload(e + j), vk), fl_vmul(vb, fl_vload(w + j))));
    } else {
        for (; j + FL_VLEN <= j1; j += FL_VLEN)
            fl_vstream(g + j, fl_vsub(fl_vmul(fl_vload(e + j), vk), vb));
    }
}

/* Stream up to n more elements of the pending row (n a multiple of FL_VLEN). */
FL_INLINE void ce_pending_step(ce_pending *pd, int64_t n)
{
    const int64_t j1 = pd->end - pd->next < n ? pd->end : pd->next + n;
    ce_stream_range(pd->g, pd->e, pd->next, j1, pd->k, pd->b, pd->w);
    pd->next = j1;
}

/* The SIMD form of the common case (no smoothing term): two vectors per
 * step; the float lanes hold at most FL_SUM_CHUNK / (2 FL_VLEN) terms each
 * before they are added into double lanes, so the sum is at least as
 * accurate as the plain-C chunks'. When given, a piece of a pending
 * gradient row is streamed before each chunk (pd), and the row to be read
 * next is prefetched into L2 a line per step (pf; in one burst per chunk,
 * the prefetches queued behind each other and it gained half as much), so
 * that the memory traffic of the rows before and after overlaps this row's
 * exps (rows.c). Neither changes a value. */
FL_INLINE double ce_exp_sum_vec(const float *x, int64_t c, float m, float *g,
                                const int has_store, ce_pending *pd, const float *pf)
{
    const fl_vf vm = fl_vset1(m);
    fl_vd d0 = fl_vdzero(), d1 = fl_vdzero();
    int64_t j = 0;
    while (j + 2 * FL_VLEN <= c) {
        const int64_t end = c - j < FL_SUM_CHUNK ? c : j + FL_SUM_CHUNK;
        if (pd)
            ce_pending_step(pd, FL_SUM_CHUNK);
        fl_vf s0 = fl_vzero(), s1 = fl_vzero();
        for (; j + 2 * FL_VLEN <= end; j += 2 * FL_VLEN) {
            if (pf)   /* a 64-byte line per 16 floats, spread over the loop */
                for (int q = 0; q < 2 * FL_VLEN; q += 16)
                    _mm_prefetch((const char *)(pf + j + q), _MM_HINT_T1);
            const fl_vf e0 = fl_vexp_nonpos(fl_vsub(fl_vload(x + j), vm));
            const fl_vf e1 = fl_vexp_nonpos(fl_vsub(fl_vload(x + j + FL_VLEN), vm));
            if (has_store) {
                fl_vstore(g + j, e0);
                fl_vstore(g + j + FL_VLEN, e1);
            }
            s0 = fl_vadd(s0, e0);
            s1 = fl_vadd(s1, e1);
        }
        const fl_vf sf = fl_vadd(s0, s1);
        d0 = fl_vdadd(d0, fl_vd_lo(sf));
        d1 = fl_vdadd(d1, fl_vd_hi(sf));
    }
    float tail = 0.0f;
    for (; j < c; j++) {
        const float e = fl_exp_nonpos(x[j] - m);
        if (has_store)
            g[j] = e;
        tail += e;
    }
    return fl_vdhsum2(d0, d1) + (double)tail;
}
#endif

/* sum_j exp(x_j - m) over a whole row or chunk of c elements, in float chunks
 * added in double; *sd as above when has_sd. */
FL_INLINE double ce_exp_sum(const float *x, int64_t c, float m, float *g, int has_sd,
                            const float *w, double *sd)
{
    double s = 0.0, d = 0.0;
#if FL_VEC
    if (!has_sd) {
        *sd = 0.0;
        return g ? ce_exp_sum_vec(x, c, m, g, 1, NULL, NULL)
                 : ce_exp_sum_vec(x, c, m, NULL, 0, NULL, NULL);
    }
#endif
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

FL_INLINE ce_row_result ce_finish(const fl_ce_problem *p, float m, double s, double logs, double sd,
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
        int64_t j = 0;
#if FL_VEC
        const fl_vf vk = fl_vset1(k);
        for (; j + 4 * FL_VLEN <= c; j += 4 * FL_VLEN) {
            fl_vstore(g + j, fl_vmul(fl_vload(g + j), vk));
            fl_vstore(g + j + FL_VLEN, fl_vmul(fl_vload(g + j + FL_VLEN), vk));
            fl_vstore(g + j + 2 * FL_VLEN, fl_vmul(fl_vload(g + j + 2 * FL_VLEN), vk));
            fl_vstore(g + j + 3 * FL_VLEN, fl_vmul(fl_vload(g + j + 3 * FL_VLEN), vk));
        }
#endif
        FL_SIMD
        for (int64_t i = j; i < c; i++)
            g[i] *= k;
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

#endif /* FL_CE_H */
