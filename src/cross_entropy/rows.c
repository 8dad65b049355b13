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
 * streaming stores (ce_scale_row_stream): x is read once from memory and g
 * written once, with no read of g's lines.
 */
#include "cross_entropy/ce.h"

#ifdef _OPENMP
#include <omp.h>
#define FL_THREAD_NUM() omp_get_thread_num()
#else
#define FL_THREAD_NUM() 0
#endif

#if FL_VEC
/* g_j = e_j k - b w_j (w_j = 1 without weights), then g_t -= bt, with
 * streaming stores from the first FL_VLEN-aligned element of g on; the same
 * operations as ce_scale_row, so the same bits. */
FL_INLINE void ce_scale_row_stream(float *g, const float *e, int64_t c, float k, float b,
                                   const float *w, int64_t t, float bt)
{
    int64_t j = 0;
    const int64_t head = (int64_t)(((uintptr_t)0 - (uintptr_t)g) / sizeof(float)) % FL_VLEN;
    for (; j < head && j < c; j++)
        g[j] = b == 0.0f ? e[j] * k : e[j] * k - b * (w ? w[j] : 1.0f);
    const fl_vf vk = fl_vset1(k), vb = fl_vset1(b);
    if (b == 0.0f) {
        for (; j + FL_VLEN <= c; j += FL_VLEN)
            fl_vstream(g + j, fl_vmul(fl_vload(e + j), vk));
    } else if (w) {
        for (; j + FL_VLEN <= c; j += FL_VLEN)
            fl_vstream(g + j, fl_vsub(fl_vmul(fl_vload(e + j), vk), fl_vmul(vb, fl_vload(w + j))));
    } else {
        for (; j + FL_VLEN <= c; j += FL_VLEN)
            fl_vstream(g + j, fl_vsub(fl_vmul(fl_vload(e + j), vk), vb));
    }
    for (; j < c; j++)
        g[j] = b == 0.0f ? e[j] * k : e[j] * k - b * (w ? w[j] : 1.0f);
    /* the target's element, from the scratch: no read of g */
    const float gt = b == 0.0f ? e[t] * k : e[t] * k - b * (w ? w[t] : 1.0f);
    g[t] = gt - bt;
}
#endif

/* Row i with a valid target t. g may be NULL (no gradient) or equal x;
 * scratch, when not NULL, a row of c floats for the exps (g is then
 * written with streaming stores). */
FL_INLINE double ce_long_row(const fl_ce_problem *p, int64_t i, int64_t t, float scale, float *g,
                             float *scratch)
{
    const int64_t c = p->c;
    const float *x = p->x + i * c;
    const float m = ce_row_max(x, c);
    const float xt = x[t];   /* before g overwrites it when g == x */
    const float wt = p->weight ? p->weight[t] : 1.0f;
    if (p->correct_out)
        p->correct_out[i] = (int8_t)ce_argmax_is(x, t, m);
    double sd = 0.0;
    const double s = ce_exp_sum(x, c, m, g && scratch ? scratch : g, p->eps != 0.0f, p->weight,
                                &sd);
    const ce_row_result r = ce_finish(p, m, s, log(s), sd, xt, wt, scale);
#if FL_VEC
    if (g && scratch) {
        ce_scale_row_stream(g, scratch, c, r.k, r.b, p->weight, t, r.bt);
        g = NULL;
    }
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
    float *scratch = FL_VEC && ctx->scratch ? ctx->scratch + FL_THREAD_NUM() * c : NULL;
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
        acc += ce_long_row(p, i, t, scale, p->grad_out ? p->grad_out + i * c : NULL, scratch);
    }
#if FL_VEC
    if (scratch)
        fl_vstream_fence();
#endif
    return p->want_sum ? acc : 0.0;
}
