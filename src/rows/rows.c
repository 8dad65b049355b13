/*
 * rows/rows.c -- the row losses (rows/rows.h): multilabel soft margin and
 * multi-class margin, one loss value per row of (n, c).
 *
 * Design: one pass over each row computes the row's loss and writes its
 * gradient (x[j] is read before g[j] is written, and the target's x_t is
 * read first, so grad_out may be x). The row pass keeps its sums in 8 float
 * lanes, written as an 8-wide inner loop that GCC vectorises without
 * reassociating anything (each lane is its own sum), and flushes them into a
 * double every FL_SUM_CHUNK elements; the lanes are added in lane order. The
 * element forms are branch-free (ternaries), with fl_math.h's exp and log1p.
 *
 * Blocks are fixed ranges of whole rows (FL_BLOCK_ELEMS / c rows, at least
 * one), so small c and large n give few, large blocks rather than one per
 * row; fl_run_blocks adds the blocks' partial sums in block order, and the
 * result does not depend on the thread count.
 *
 * Compiled once per instruction set (setup.py's ISA_SOURCES): the block
 * kernels are FL_FN-suffixed copies in the kernel table (fl_dispatch.h), and
 * the entry points, built in the baseline copy only (FL_BUILD_ENTRY), run the
 * dispatched copy. On this Xeon, one thread, (4096, 1000) fused: multilabel
 * 15.5 ms with the baseline (SSE2) copy, 4.4 ms with avx2.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastloss.h"
#include "fl_blocks.h"
#include "fl_dispatch.h"
#include "fl_simd.h"
#include "fl_math.h"
#include "rows/rows.h"

#define ROWS_LANES 8

typedef struct {
    const float *x;
    const float *y;                /* multilabel: (n, c) targets */
    const int64_t *target;         /* multi-margin: (n,) class targets */
    const float *weight;
    int64_t period;
    int64_t n, c, rows_per_block;
    float margin;
    int p;
    float scale;                   /* grad_scale, / n for MEAN */
    const float *grad_per_sample;
    float *loss_out;
    float *grad_out;
    int want_sum;
} rows_ctx;

#ifdef FL_BUILD_ENTRY
static int64_t rows_per_block(int64_t c)
{
    return c > 0 && c < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / c : 1;
}
#endif /* FL_BUILD_ENTRY */

#ifdef FL_BUILD_ENTRY
static void rows_init(rows_ctx *ctx, const float *x, int64_t n, int64_t c, const fl_outputs *out)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->x = x;
    ctx->n = n;
    ctx->c = c;
    ctx->rows_per_block = rows_per_block(c);
    const double denom = out->reduction == FL_REDUCTION_MEAN ? (double)n : 1.0;
    ctx->scale = (float)((double)out->grad_scale / denom);
    ctx->grad_per_sample = out->grad_per_sample;
    ctx->loss_out = out->loss_out;
    ctx->grad_out = out->grad_out;
    ctx->want_sum = out->loss_reduced != NULL;
}
#endif /* FL_BUILD_ENTRY */

static double lanes_sum(const float *lane)
{
    double s = 0.0;
    for (int k = 0; k < ROWS_LANES; k++)
        s += (double)lane[k];
    return s;
}

/* ------------------------------------------------------------------------
 * Multilabel soft margin: per element, BCE with logits (elementwise/binary.h)
 * with e = exp(-|x|), r = 1 / (1 + e):
 *   l = (x > 0 ? x (1 - y) : -x y) + log1p(e),   dl/dx = sigmoid(x) - y
 */
FL_INLINE void mlsm_element(float x, float y, float w, float k, float *l, float *g)
{
    const float e = fl_exp_nonpos(-fabsf(x));
    const float r = 1.0f / (1.0f + e);
    *l = ((x > 0.0f ? x * (1.0f - y) : -x * y) + fl_log1p_unit(e)) * w;
    *g = ((x >= 0.0f ? r : e * r) - y) * w * k;
}

/* The row sum of w l over [0, c), writing g[j] = w (sigmoid - y) k when g is
 * set. `wr` NULL: no weight. want_g and weighted are constants after
 * inlining, so each combination gets its own loop. */
FL_INLINE double mlsm_row(const float *x, const float *y, const float *wr, float *g,
                          int64_t c, float k, const int want_g, const int weighted)
{
    double acc = 0.0;
    int64_t j = 0;
    while (j < c) {
        const int64_t end = c - j > FL_SUM_CHUNK ? j + FL_SUM_CHUNK : c;
        float lane[ROWS_LANES] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (; j + ROWS_LANES <= end; j += ROWS_LANES) {
            for (int q = 0; q < ROWS_LANES; q++) {
                float l, gv;
                mlsm_element(x[j + q], y[j + q], weighted ? wr[j + q] : 1.0f, k, &l, &gv);
                lane[q] += l;
                if (want_g)
                    g[j + q] = gv;
            }
        }
        for (int q = 0; j < end; j++, q++) {
            float l, gv;
            mlsm_element(x[j], y[j], weighted ? wr[j] : 1.0f, k, &l, &gv);
            lane[q] += l;
            if (want_g)
                g[j] = gv;
        }
        acc += lanes_sum(lane);
    }
    return acc;
}

double FL_FN(fl_rows_mlsm_block)(const void *vctx, int64_t block, int64_t *bad)
{
    (void)bad;
    const rows_ctx *ctx = (const rows_ctx *)vctx;
    const int64_t c = ctx->c;
    const int64_t r0 = block * ctx->rows_per_block;
    const int64_t r1 = r0 + ctx->rows_per_block < ctx->n ? r0 + ctx->rows_per_block : ctx->n;
    const float inv_c = (float)(1.0 / (double)c);   /* inf for c == 0: an empty row */
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const float *x = ctx->x + i * c, *y = ctx->y + i * c;
        const float *wr = ctx->weight ? ctx->weight + (i * c) % ctx->period : NULL;
        const float s = ctx->grad_per_sample ? ctx->scale * ctx->grad_per_sample[i] : ctx->scale;
        const float k = s * inv_c;
        float *g = ctx->grad_out ? ctx->grad_out + i * c : NULL;
        double row;
        if (g)
            row = wr ? mlsm_row(x, y, wr, g, c, k, 1, 1) : mlsm_row(x, y, wr, g, c, k, 1, 0);
        else
            row = wr ? mlsm_row(x, y, wr, g, c, k, 0, 1) : mlsm_row(x, y, wr, g, c, k, 0, 0);
        const float loss = (float)(row / (double)c);   /* c == 0: 0 / 0 = NaN, as PyTorch */
        if (ctx->loss_out)
            ctx->loss_out[i] = loss;
        acc += (double)loss;
    }
    return ctx->want_sum ? acc : 0.0;
}

#ifdef FL_BUILD_ENTRY
int fl_multilabel_soft_margin_loss_f32(const float *x, const float *y, int64_t n, int64_t c,
                                       const fl_multilabel_soft_margin_options *opts,
                                       const fl_outputs *out, int n_threads)
{
    rows_ctx ctx;
    rows_init(&ctx, x, n, c, out);
    ctx.y = y;
    ctx.weight = opts->weight;
    ctx.period = opts->period;
    const int64_t nblocks = (n + ctx.rows_per_block - 1) / ctx.rows_per_block;
    return fl_run_reduced(fl_kernels()->rows_mlsm_block, &ctx, nblocks, n * c, n_threads,
                          out->loss_reduced, out->reduction == FL_REDUCTION_MEAN,
                          (double)n, NULL);
}
#endif /* FL_BUILD_ENTRY */

/* ------------------------------------------------------------------------
 * Multi-class margin: z = (margin - x_t) + x_j; a term counts when z > 0 or
 * z is NaN (so NaN propagates); h = z^p, dh/dz = p z^(p-1) (NaN for NaN z).
 */
FL_INLINE void mm_element(float thr, float xj, int p2, float *h, float *dh)
{
    const float z = thr + xj;
    const int on = z > 0.0f || z != z;
    *h = on ? (p2 ? z * z : z) : 0.0f;
    *dh = on ? (p2 ? 2.0f * z : (z == z ? 1.0f : z)) : 0.0f;   /* NaN z: NaN slope */
}

/* Sums of h and dh over x[j0..j1), writing g[j] = dh k when want_g. */
FL_INLINE void mm_span(const float *x, float *g, int64_t j0, int64_t j1, float thr, float k,
                       const int p2, const int want_g, double *hsum, double *dsum)
{
    int64_t j = j0;
    while (j < j1) {
        const int64_t end = j1 - j > FL_SUM_CHUNK ? j + FL_SUM_CHUNK : j1;
        float lh[ROWS_LANES] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        float ld[ROWS_LANES] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (; j + ROWS_LANES <= end; j += ROWS_LANES) {
            for (int q = 0; q < ROWS_LANES; q++) {
                float h, dh;
                mm_element(thr, x[j + q], p2, &h, &dh);
                lh[q] += h;
                ld[q] += dh;
                if (want_g)
                    g[j + q] = dh * k;
            }
        }
        for (int q = 0; j < end; j++, q++) {
            float h, dh;
            mm_element(thr, x[j], p2, &h, &dh);
            lh[q] += h;
            ld[q] += dh;
            if (want_g)
                g[j] = dh * k;
        }
        *hsum += lanes_sum(lh);
        *dsum += lanes_sum(ld);
    }
}

FL_INLINE double mm_row(const float *x, float *g, int64_t c, int64_t t, float margin, float w,
                        float k, const int p2, const int want_g)
{
    const float xt = x[t];   /* read before g (which may be x) is written */
    const float thr = margin - xt;
    double hsum = 0.0, dsum = 0.0;
    mm_span(x, g, 0, t, thr, k, p2, want_g, &hsum, &dsum);
    mm_span(x, g, t + 1, c, thr, k, p2, want_g, &hsum, &dsum);
    if (want_g)
        g[t] = 0.0f - (float)dsum * k;   /* +0 when no term counts */
    return (double)w * hsum;
}

double FL_FN(fl_rows_mm_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const rows_ctx *ctx = (const rows_ctx *)vctx;
    const int64_t c = ctx->c;
    const int64_t r0 = block * ctx->rows_per_block;
    const int64_t r1 = r0 + ctx->rows_per_block < ctx->n ? r0 + ctx->rows_per_block : ctx->n;
    const int p2 = ctx->p == 2;
    const float inv_c = (float)(1.0 / (double)c);
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const int64_t t = ctx->target[i];
        float *g = ctx->grad_out ? ctx->grad_out + i * c : NULL;
        if (t < 0 || t >= c) {
            if (*bad < 0 || i < *bad)
                *bad = i;
            if (ctx->loss_out)
                ctx->loss_out[i] = 0.0f;
            if (g)
                memset(g, 0, (size_t)c * sizeof(float));
            continue;
        }
        const float w = ctx->weight ? ctx->weight[t] : 1.0f;
        const float s = ctx->grad_per_sample ? ctx->scale * ctx->grad_per_sample[i] : ctx->scale;
        const float k = w * s * inv_c;
        const float margin = ctx->margin;
        double row;
        if (g)
            row = p2 ? mm_row(ctx->x + i * c, g, c, t, margin, w, k, 1, 1)
                     : mm_row(ctx->x + i * c, g, c, t, margin, w, k, 0, 1);
        else
            row = p2 ? mm_row(ctx->x + i * c, g, c, t, margin, w, k, 1, 0)
                     : mm_row(ctx->x + i * c, g, c, t, margin, w, k, 0, 0);
        const float loss = (float)(row / (double)c);
        if (ctx->loss_out)
            ctx->loss_out[i] = loss;
        acc += (double)loss;
    }
    return ctx->want_sum ? acc : 0.0;
}

#ifdef FL_BUILD_ENTRY
int fl_multi_margin_loss_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                             const fl_multi_margin_options *opts, const fl_outputs *out,
                             int n_threads, int64_t *bad_row)
{
    if (bad_row)
        *bad_row = -1;
    rows_ctx ctx;
    rows_init(&ctx, x, n, c, out);
    ctx.target = target;
    ctx.weight = opts->weight;
    ctx.margin = opts->margin;
    ctx.p = opts->p;
    const int64_t nblocks = (n + ctx.rows_per_block - 1) / ctx.rows_per_block;
    int64_t bad = -1;
    const int status = fl_run_reduced(fl_kernels()->rows_mm_block, &ctx, nblocks, n * c,
                                      n_threads, out->loss_reduced,
                                      out->reduction == FL_REDUCTION_MEAN, (double)n, &bad);
    if (status != FL_OK)
        return status;
    if (bad >= 0) {
        if (bad_row)
            *bad_row = bad;
        return FL_ERR_TARGET;
    }
    return FL_OK;
}
#endif /* FL_BUILD_ENTRY */
