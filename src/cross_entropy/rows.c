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
 *
 * Big gradients (FL_STREAM_MIN_BYTES, SIMD paths): step 2 writes the exps to
 * a per-thread scratch row instead, and step 4 reads it and writes g with
 * streaming stores: x is read once from memory and g written once, with no
 * read of g's lines. Without label smoothing the rows of a block are also
 * pipelined (FL_PIPE_BLOCK_ELEMS): step 4 of row i runs in pieces during
 * step 2 of row i + 1, from the other scratch row, while row i + 2 is
 * prefetched, so that reading and writing memory overlap the exps instead
 * of taking turns with them. AVX2, 1 thread, 2048 x 32768 on the Xeon:
 * 2.30x -> 1.86x the copy floor (the prefetch gives most of it).
 */
#include "cross_entropy/ce.h"

#ifdef _OPENMP
#include <omp.h>
#define FL_THREAD_NUM() omp_get_thread_num()
#else
#define FL_THREAD_NUM() 0
#endif

#if FL_VEC
/* Make g (exps in the scratch row e) the pending row: nothing is written
 * yet. The middle starts at g's first FL_VLEN-aligned element. */
FL_INLINE void ce_pending_start(ce_pending *pd, float *g, const float *e, int64_t c, float k,
                                float b, const float *w, int64_t t, float bt)
{
    int64_t head = (int64_t)(((uintptr_t)0 - (uintptr_t)g) / sizeof(float)) % FL_VLEN;
    head = head < c ? head : c;
    pd->g = g;
    pd->e = e;
    pd->w = w;
    pd->c = c;
    pd->t = t;
    pd->head = pd->next = head;
    pd->end = head + (c - head) / FL_VLEN * FL_VLEN;
    pd->k = k;
    pd->b = b;
    pd->bt = bt;
}

/* The gradient element j of the pending row, as ce_scale_row computes it. */
FL_INLINE float ce_pending_elem(const ce_pending *pd, int64_t j)
{
    const float ej = pd->e[j] * pd->k;
    return pd->b == 0.0f ? ej : ej - pd->b * (pd->w ? pd->w[j] : 1.0f);
}

/* Write the rest of the pending row, if any: the middle's remaining pieces
 * (streamed), the unaligned edges, then g_t -= bt from the scratch (no read
 * of g). The same operations as ce_scale_row, so the same bits. */
FL_INLINE void ce_pending_finish(ce_pending *pd)
{
    float *g = pd->g;
    if (!g)
        return;
    ce_pending_step(pd, pd->end - pd->next);
    for (int64_t j = 0; j < pd->head; j++)
        g[j] = ce_pending_elem(pd, j);
    for (int64_t j = pd->end; j < pd->c; j++)
        g[j] = ce_pending_elem(pd, j);
    g[pd->t] = ce_pending_elem(pd, pd->t) - pd->bt;
    pd->g = NULL;
}
#endif

/* Row i with a valid target t. g may be NULL (no gradient) or equal x;
 * scratch, when not NULL, a row of c floats for the exps (g is then
 * written with streaming stores). pd, when not NULL (SIMD paths, scratch,
 * no label smoothing): the row is pipelined with its neighbours. The
 * previous row's gradient, pending in pd, is written during this row's
 * exps, this row's is left pending, and pf (the next row, or NULL) is
 * prefetched meanwhile. */
FL_INLINE double ce_long_row(const fl_ce_problem *p, int64_t i, int64_t t, float scale, float *g,
                             float *scratch, ce_pending *pd, const float *pf)
{
    const int64_t c = p->c;
    const float *x = p->x + i * c;
    const float m = ce_row_max(x, c);
    const float xt = x[t];   /* before g overwrites it when g == x */
    const float wt = p->weight ? p->weight[t] : 1.0f;
    if (p->correct_out)
        p->correct_out[i] = (int8_t)ce_argmax_is(x, t, m);
    double sd = 0.0, s;
#if FL_VEC
    if (pd)
        s = ce_exp_sum_vec(x, c, m, scratch, 1, pd, pf);
    else
#endif
        s = ce_exp_sum(x, c, m, g && scratch ? scratch : g, p->eps != 0.0f, p->weight, &sd);
    const ce_row_result r = ce_finish(p, m, s, log(s), sd, xt, wt, scale);
#if FL_VEC
    if (g && scratch) {
        if (pd) {   /* write the previous row's rest; leave this one pending */
            ce_pending_finish(pd);
            ce_pending_start(pd, g, scratch, c, r.k, r.b, p->weight, t, r.bt);
        } else {    /* not pipelined: this row, whole */
            ce_pending row;
            ce_pending_start(&row, g, scratch, c, r.k, r.b, p->weight, t, r.bt);
            ce_pending_finish(&row);
        }
        g = NULL;
    }
#else
    (void)pd;
    (void)pf;
#endif
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
    /* two scratch rows per thread: the pending row's exps and this row's */
    float *scratch = FL_VEC && ctx->scratch ? ctx->scratch + FL_THREAD_NUM() * 2 * c : NULL;
    ce_pending pending = {0};   /* nothing pending: g NULL, an empty middle */
    ce_pending *pd = FL_VEC && scratch && p->eps == 0.0f ? &pending : NULL;
    int64_t valid = 0;
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
        acc += ce_long_row(p, i, t, scale, p->grad_out ? p->grad_out + i * c : NULL,
                           scratch ? scratch + (valid++ & 1) * c : NULL, pd,
                           pd && i + 1 < r1 ? p->x + (i + 1) * c : NULL);
    }
#if FL_VEC
    if (pd)
        ce_pending_finish(pd);
    if (scratch)
        fl_vstream_fence();
#endif
    return p->want_sum ? acc : 0.0;
}
