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
 * when has_store (g may equal x). */
FL_INLINE float ce_exp_chunk(const float *x, int64_t n, float m, float *g, const int has_store)
{
    float s = 0.0f;
    FL_SIMD_SUM(s)
    for (int64_t j = 0; j < n; j++) {
        const float e = fl_exp_nonpos(x[j] - m);
        if (has_store)
            g[j] = e;
        s += e;
    }
    return s;
}

/* Returns the row's loss in double. g may be NULL (no gradient) or equal x. */
FL_INLINE double ce_long_row(const float *x, int64_t c, int64_t t, float scale, float *g)
{
    const float m = ce_row_max(x, c);
    const float xt = x[t];   /* before g overwrites it when g == x */
    double s = 0.0;
    for (int64_t j = 0; j < c; j += FL_SUM_CHUNK) {
        const int64_t len = c - j < FL_SUM_CHUNK ? c - j : FL_SUM_CHUNK;
        s += g ? ce_exp_chunk(x + j, len, m, g + j, 1) : ce_exp_chunk(x + j, len, m, NULL, 0);
    }
    if (g) {
        const float k = (float)((double)scale / s);
        FL_SIMD
        for (int64_t j = 0; j < c; j++)
            g[j] *= k;
        g[t] -= scale;
    }
    return ((double)m - (double)xt) + log(s);
}

/* ---- Short rows (c <= FL_SHORT_ROW_MAX): FL_TILE_ROWS rows at a time,
 * vectorised across rows. A row of 10 is too short for a vector loop along it
 * (prologue, epilogue and horizontal reductions would dominate), so the tile
 * is transposed into T[j][r] and every step runs down the rows, one SIMD lane
 * per row: max, exp, sum (in float: at most FL_SHORT_ROW_MAX terms in (0, 1]),
 * and a vectorised log (fl_log_pos) instead of one libm call per row. */

#define FL_SHORT_ROW_MAX 16
#define FL_TILE_ROWS 64

/* Rows i0 .. i0+rows-1 (rows <= FL_TILE_ROWS) of c = p->c columns; returns the
 * sum of their losses. Called with a constant c (see ce_short_rows), so the
 * loops over j unroll into straight-line code. */
FL_INLINE double ce_short_tile(const fl_ce_ctx *p, int64_t i0, int64_t rows, int64_t *bad,
                               const int64_t c)
{
    enum { R = FL_TILE_ROWS };
    const float *xs = p->x + i0 * c;
    float *gs = p->grad_out ? p->grad_out + i0 * c : NULL;
    float T[FL_SHORT_ROW_MAX * R];
    float m[R], s[R], lg[R], xt[R], k[R];
    int64_t tg[R];

    for (int64_t j = 0; j < c; j++) {
        FL_SIMD
        for (int64_t r = 0; r < rows; r++)
            T[j * R + r] = xs[r * c + j];
    }
    FL_SIMD
    for (int64_t r = 0; r < rows; r++) {
        m[r] = T[r];
        s[r] = 0.0f;
    }
    for (int64_t j = 1; j < c; j++) {
        FL_SIMD
        for (int64_t r = 0; r < rows; r++)
            m[r] = T[j * R + r] > m[r] ? T[j * R + r] : m[r];
    }
    for (int64_t j = 0; j < c; j++) {
        FL_SIMD
        for (int64_t r = 0; r < rows; r++) {
            const float e = fl_exp_nonpos(T[j * R + r] - m[r]);
            T[j * R + r] = e;
            s[r] += e;
        }
    }
    FL_SIMD
    for (int64_t r = 0; r < rows; r++)
        lg[r] = fl_log_pos(s[r]);

    /* Targets: x_t is read from the original row (T now holds exponentials);
     * invalid or ignored rows get t = -1 and contribute nothing. */
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = p->target[i0 + r];
        const int valid = t >= 0 && t < c && t != p->ignore_index;
        if (!valid && t != p->ignore_index && *bad < 0)
            *bad = i0 + r;
        tg[r] = valid ? t : -1;
        xt[r] = valid ? xs[r * c + t] : 0.0f;
        const float sc = p->grad_per_sample ? p->scale * p->grad_per_sample[i0 + r] : p->scale;
        k[r] = valid ? sc / s[r] : 0.0f;
    }

    double acc = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const double loss = tg[r] < 0 ? 0.0 : ((double)m[r] - (double)xt[r]) + (double)lg[r];
        if (p->loss_out)
            p->loss_out[i0 + r] = (float)loss;
        acc += loss;
    }
    if (gs) {
        for (int64_t r = 0; r < rows; r++) {
            float *g = gs + r * c;
            for (int64_t j = 0; j < c; j++)
                g[j] = T[j * R + r] * k[r];
            if (tg[r] >= 0)
                g[tg[r]] -= p->grad_per_sample ? p->scale * p->grad_per_sample[i0 + r] : p->scale;
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
        float *g = p->grad_out ? p->grad_out + i * c : NULL;
        const int ignored = (t == p->ignore_index);
        if (ignored || t < 0 || t >= c) {
            if (!ignored && *bad < 0)
                *bad = i;
            if (g)
                memset(g, 0, (size_t)c * sizeof(float));
            if (p->loss_out)
                p->loss_out[i] = 0.0f;
            continue;
        }
        const float scale = p->grad_per_sample ? p->scale * p->grad_per_sample[i] : p->scale;
        const double loss = ce_long_row(p->x + i * c, c, t, scale, g);
        if (p->loss_out)
            p->loss_out[i] = (float)loss;
        acc += loss;
    }
    return p->want_sum ? acc : 0.0;
}

/* ---- Split rows (c >= FL_SPLIT_MIN_C): the row's chunks are independent units.
 * Pass 1 (per unit): m_k = max of the chunk, s_k = sum exp(x - m_k), the terms
 * stored in g. Merge (serial, per row, chunk order): M = max_k m_k,
 * S = sum_k s_k exp(m_k - M), loss = M + log S - x_t, factor_k = scale exp(m_k - M) / S.
 * Pass 2 (per unit): g *= factor_k, then g_t -= scale in the target's chunk.
 * A chunk of only -inf has m_k = -inf: its terms are exp(-inf) = 0, not NaN. */

double FL_FN(fl_ce_split_stats)(const void *vctx, int64_t u, int64_t *bad)
{
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t i = u / p->nchunks, j0 = (u % p->nchunks) * FL_SPLIT_CHUNK;
    const int64_t len = p->c - j0 < FL_SPLIT_CHUNK ? p->c - j0 : FL_SPLIT_CHUNK;
    const float *x = p->x + i * p->c + j0;
    float *g = p->grad_out ? p->grad_out + i * p->c + j0 : NULL;
    (void)bad;
    if (p->target[i] == p->ignore_index) {
        if (g)
            memset(g, 0, (size_t)len * sizeof(float));
        p->chunk_max[u] = -INFINITY;
        p->chunk_sum[u] = 0.0;
        return 0.0;
    }
    const float m = ce_row_max(x, len);
    const float shift = m == -INFINITY ? 0.0f : m;
    double s = 0.0;
    for (int64_t j = 0; j < len; j += FL_SUM_CHUNK) {
        const int64_t k = len - j < FL_SUM_CHUNK ? len - j : FL_SUM_CHUNK;
        s += g ? ce_exp_chunk(x + j, k, shift, g + j, 1) : ce_exp_chunk(x + j, k, shift, NULL, 0);
    }
    p->chunk_max[u] = m;
    p->chunk_sum[u] = s;
    return 0.0;
}

double FL_FN(fl_ce_split_scale)(const void *vctx, int64_t u, int64_t *bad)
{
    const fl_ce_ctx *p = (const fl_ce_ctx *)vctx;
    const int64_t i = u / p->nchunks, j0 = (u % p->nchunks) * FL_SPLIT_CHUNK;
    const int64_t len = p->c - j0 < FL_SPLIT_CHUNK ? p->c - j0 : FL_SPLIT_CHUNK;
    const int64_t t = p->target[i];
    float *g = p->grad_out + i * p->c + j0;
    (void)bad;
    if (t == p->ignore_index)
        return 0.0;
    const float k = p->chunk_factor[u];
    FL_SIMD
    for (int64_t j = 0; j < len; j++)
        g[j] *= k;
    if (t >= j0 && t < j0 + len)
        g[t - j0] -= p->grad_per_sample ? p->scale * p->grad_per_sample[i] : p->scale;
    return 0.0;
}

#ifdef FL_BUILD_ENTRY
/* Long rows: validate targets and read x_t first (pass 1 may overwrite x when
 * g == x), run pass 1, merge per row, run pass 2. Returns the loss sum. */
static int ce_split(fl_ce_ctx *ctx, int n_threads, double *total, int64_t *bad_row)
{
    const int64_t n = ctx->n, c = ctx->c, nch = (c + FL_SPLIT_CHUNK - 1) / FL_SPLIT_CHUNK;
    const int64_t units = n * nch;
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = ctx->target[i];
        if (t != ctx->ignore_index && (t < 0 || t >= c)) {
            *bad_row = i;
            return FL_ERR_TARGET;
        }
    }
    float *xt = (float *)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    float *cmax = (float *)malloc((size_t)units * sizeof(float));
    double *csum = (double *)malloc((size_t)units * sizeof(double));
    float *cfac = (float *)malloc((size_t)units * sizeof(float));
    int status = (xt && cmax && csum && cfac) ? FL_OK : FL_ERR_NOMEM;
    if (status == FL_OK) {
        for (int64_t i = 0; i < n; i++) {
            const int64_t t = ctx->target[i];
            xt[i] = t == ctx->ignore_index ? 0.0f : ctx->x[i * c + t];
        }
        ctx->nchunks = nch;
        ctx->chunk_max = cmax;
        ctx->chunk_sum = csum;
        ctx->chunk_factor = cfac;
        double unused = 0.0;
        int64_t bad = -1;
        status = fl_run_blocks(fl_kernels()->ce_split_stats, ctx, units, n * c, n_threads,
                               &unused, &bad);
    }
    if (status == FL_OK) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float *m = cmax + i * nch;
            const double *s = csum + i * nch;
            float loss = 0.0f;
            if (ctx->target[i] != ctx->ignore_index) {
                float big = -INFINITY;
                for (int64_t k = 0; k < nch; k++)
                    big = m[k] > big ? m[k] : big;
                double total_s = 0.0;
                for (int64_t k = 0; k < nch; k++)
                    total_s += s[k] > 0.0 ? s[k] * exp((double)m[k] - (double)big) : s[k];
                const double l = ((double)big - (double)xt[i]) + log(total_s);
                const double scale = ctx->grad_per_sample
                                         ? (double)(ctx->scale * ctx->grad_per_sample[i])
                                         : (double)ctx->scale;
                for (int64_t k = 0; k < nch; k++)
                    cfac[i * nch + k] = s[k] > 0.0
                        ? (float)(scale * exp((double)m[k] - (double)big) / total_s)
                        : (float)(scale * s[k] / total_s);
                sum += l;
                loss = (float)l;
            }
            if (ctx->loss_out)
                ctx->loss_out[i] = loss;
        }
        *total = sum;
        if (ctx->grad_out) {
            double unused = 0.0;
            int64_t bad = -1;
            status = fl_run_blocks(fl_kernels()->ce_split_scale, ctx, units, n * c, n_threads,
                                   &unused, &bad);
        }
    }
    free(xt);
    free(cmax);
    free(csum);
    free(cfac);
    return status;
}

int fl_cross_entropy_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t ignore_index, int reduction, float grad_scale,
                         const float *grad_per_sample, float *loss_out,
                         double *loss_reduced, float *grad_out, int n_threads,
                         int64_t *bad_row)
{
    if (n < 0 || c < 0 || n_threads < 1 || reduction < FL_REDUCTION_NONE ||
        reduction > FL_REDUCTION_SUM || (n > 0 && (!x || !target)) ||
        (reduction != FL_REDUCTION_NONE && (loss_out || grad_per_sample)) ||
        (reduction == FL_REDUCTION_NONE && loss_reduced))
        return FL_ERR_ARG;
    if (bad_row)
        *bad_row = -1;

    /* The mean's denominator: rows that are not ignored (out-of-range targets
     * are reported by the main pass). */
    double denom = 1.0;
    if (reduction == FL_REDUCTION_MEAN) {
        int64_t valid = 0;
        for (int64_t i = 0; i < n; i++)
            valid += (target[i] != ignore_index);
        denom = (double)valid;
    }

    fl_ce_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.x = x;
    ctx.target = target;
    ctx.n = n;
    ctx.c = c;
    ctx.ignore_index = ignore_index;
    ctx.rows_per_block = c > 0 && c < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / c : 1;
    ctx.scale = (float)((double)grad_scale / denom);
    ctx.grad_per_sample = grad_per_sample;
    ctx.loss_out = loss_out;
    ctx.grad_out = grad_out;
    ctx.want_sum = loss_reduced != NULL;

    double total = 0.0;
    int64_t bad = -1;
    int status;
    if (c >= FL_SPLIT_MIN_C && (n < FL_SPLIT_MAX_ROWS || c >= FL_SPLIT_HUGE_C)) {
        status = ce_split(&ctx, n_threads, &total, &bad);
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
