/*
 * cross_entropy/split.c -- few long rows (n < FL_SPLIT_MAX_ROWS with
 * C >= FL_SPLIT_MIN_C, or C >= FL_SPLIT_HUGE_C), cut into chunks of
 * FL_SPLIT_CHUNK classes so that every thread has work.
 *
 * The block kernels (per ISA) are the two passes below; the merge between
 * them and the driver are in the baseline copy only.
 */
#include "cross_entropy/ce.h"

/* Scratch of the split-row path, per unit (row, chunk) and per row. */
typedef struct {
    float *chunk_max;               /* pass 1: max of each chunk */
    double *chunk_sum;              /* pass 1: sum of exp(x - shift) */
    double *chunk_sd;               /* pass 1: sum of w (shift - x), smoothing only */
    int64_t *chunk_first;           /* pass 1: first index of the chunk max, or -1 */
    float *chunk_factor;            /* merge: multiplier of each chunk's terms */
    float *row_xt, *row_b, *row_bt; /* per row: target logit, smoothing and target terms */
} fl_ce_split;

/* Unit u = (row u / nchunks, chunk u % nchunks). */
typedef struct {
    fl_ce_problem p;
    int64_t nchunks;
    fl_ce_split *split;
} fl_ce_split_ctx;

/* Split rows: the row's chunks are independent units.
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
    const fl_ce_split_ctx *ctx = (const fl_ce_split_ctx *)vctx;
    const fl_ce_problem *p = &ctx->p;
    const int64_t i = u / ctx->nchunks, j0 = (u % ctx->nchunks) * FL_SPLIT_CHUNK;
    const int64_t len = p->c - j0 < FL_SPLIT_CHUNK ? p->c - j0 : FL_SPLIT_CHUNK;
    const float *x = p->x + i * p->c + j0;
    float *g = p->grad_out ? p->grad_out + i * p->c + j0 : NULL;
    fl_ce_split *sp = ctx->split;
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
    const fl_ce_split_ctx *ctx = (const fl_ce_split_ctx *)vctx;
    const fl_ce_problem *p = &ctx->p;
    const int64_t i = u / ctx->nchunks, j0 = (u % ctx->nchunks) * FL_SPLIT_CHUNK;
    const int64_t len = p->c - j0 < FL_SPLIT_CHUNK ? p->c - j0 : FL_SPLIT_CHUNK;
    const int64_t t = p->target[i];
    const fl_ce_split *sp = ctx->split;
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
static double ce_split_merge(const fl_ce_split_ctx *ctx, int64_t i, const double *chunk_w)
{
    const fl_ce_problem *p = &ctx->p;
    fl_ce_split *sp = ctx->split;
    const int64_t nch = ctx->nchunks, t = p->target[i];
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
int fl_ce_split_run(const fl_ce_problem *problem, const fl_kernel_table *kernels, int n_threads,
                    double *total, int64_t *bad_row)
{
    const fl_ce_problem *p = problem;
    const int64_t n = p->n, c = p->c, nch = (c + FL_SPLIT_CHUNK - 1) / FL_SPLIT_CHUNK;
    const int64_t units = n * nch, nrows = n > 0 ? n : 1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = p->target[i];
        if (t != p->ignore_index && (t < 0 || t >= c)) {
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
    fl_ce_split_ctx ctx;
    ctx.p = *problem;
    ctx.nchunks = nch;
    ctx.split = &sp;
    if (status == FL_OK) {
        for (int64_t k = 0; k < nch; k++) {
            const int64_t j0 = k * FL_SPLIT_CHUNK;
            const int64_t len = c - j0 < FL_SPLIT_CHUNK ? c - j0 : FL_SPLIT_CHUNK;
            double w = 0.0;
            for (int64_t j = 0; j < len; j++)
                w += p->weight ? (double)p->weight[j0 + j] : 1.0;
            chunk_w[k] = w;
        }
        for (int64_t i = 0; i < n; i++) {
            const int64_t t = p->target[i];
            sp.row_xt[i] = t == p->ignore_index ? 0.0f : p->x[i * c + t];
        }
        double unused = 0.0;
        int64_t bad = -1;
        status = fl_run_blocks(kernels->ce_split_stats, &ctx, units, n * c, n_threads,
                               &unused, &bad);
    }
    if (status == FL_OK) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            if (p->target[i] == p->ignore_index) {
                if (p->loss_out)
                    p->loss_out[i] = 0.0f;
                if (p->lse_out)
                    p->lse_out[i] = NAN;
                if (p->correct_out)
                    p->correct_out[i] = 0;
                continue;
            }
            const double l = ce_split_merge(&ctx, i, chunk_w);
            if (p->loss_out)
                p->loss_out[i] = (float)l;
            sum += l;
        }
        *total = sum;
        if (p->grad_out) {
            double unused = 0.0;
            int64_t bad = -1;
            status = fl_run_blocks(kernels->ce_split_scale, &ctx, units, n * c, n_threads,
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
    return status;
}
#endif
