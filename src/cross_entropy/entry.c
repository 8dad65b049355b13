/*
 * cross_entropy/entry.c -- the cross-entropy entry points (compiled once).
 *
 * Each computes the mean's denominator, fills the problem every strategy
 * shares, picks the strategy from the shape alone (never the thread count,
 * so results do not depend on it) and runs its block kernels of the
 * dispatched ISA (see ce.h for the strategies).
 */
#include "cross_entropy/ce.h"

/* The fields every entry point fills. `opts` must not be NULL. */
static void ce_problem_init(fl_ce_problem *p, const float *x, int64_t n, int64_t c,
                            double scale, const fl_ce_options *opts, const fl_outputs *out)
{
    memset(p, 0, sizeof *p);
    p->x = x;
    p->n = n;
    p->c = c;
    p->scale = (float)scale;
    p->grad_per_sample = out->grad_per_sample;
    p->loss_out = out->loss_out;
    p->grad_out = out->grad_out;
    p->want_sum = out->loss_reduced != NULL;
    p->ignore_index = opts->ignore_index;
    p->weight = opts->weight;
    p->eps = opts->label_smoothing;
    p->z_loss = opts->z_loss;
    p->lse_out = opts->lse_out;
    p->correct_out = opts->correct_out;
    p->weight_sum = (double)c;
    if (opts->weight) {
        double w = 0.0;
        for (int64_t j = 0; j < c; j++)
            w += (double)opts->weight[j];
        p->weight_sum = w;
    }
}

int fl_cross_entropy_soft_f32(const float *x, const float *y, int64_t n, int64_t c, int64_t d,
                              const fl_ce_options *opts, const fl_outputs *out, int n_threads)
{
    const int64_t samples = n * d;
    const double denom = out->reduction == FL_REDUCTION_MEAN ? (double)samples : 1.0;
    fl_ce_soft_ctx ctx;
    ce_problem_init(&ctx.p, x, n, c, (double)out->grad_scale / denom, opts, out);
    ctx.p.correct_out = NULL;
    ctx.soft_target = y;
    ctx.spatial = d;
    ctx.rows_per_block = ctx.positions_per_block = 0;
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
    if (status == FL_OK && out->loss_reduced)
        *out->loss_reduced = total / denom;
    return status;
}

/* The mean's denominator: the target weights of the samples that are not
 * ignored (their count without weights). Out-of-range targets are skipped
 * here and reported by the main pass. */
static double ce_mean_denominator(const int64_t *target, int64_t samples, int64_t c,
                                  const fl_ce_options *opts)
{
    const int64_t ignore_index = opts->ignore_index;
    if (opts->weight) {
        double valid = 0.0;
        for (int64_t i = 0; i < samples; i++) {
            const int64_t t = target[i];
            if (t != ignore_index && t >= 0 && t < c)
                valid += (double)opts->weight[t];
        }
        return valid;
    }
    int64_t valid = 0;
    for (int64_t i = 0; i < samples; i++)
        valid += target[i] != ignore_index;
    return (double)valid;   /* out-of-range targets fail the call anyway */
}

/* K-dimensional input (d != 1): positions per block, about FL_BLOCK_ELEMS
 * elements in whole tiles (d = 0, a zero-size spatial dimension: no block). */
static int ce_run_kdim(const fl_ce_problem *p, int64_t d, const fl_kernel_table *kernels,
                       int n_threads, double *total, int64_t *bad)
{
    const int64_t c = p->c, samples = p->n * d;
    int64_t per = c > 0 ? FL_BLOCK_ELEMS / c : FL_BLOCK_ELEMS;
    per = per < FL_TILE_ROWS ? FL_TILE_ROWS : per - per % FL_TILE_ROWS;
    fl_ce_kdim_ctx ctx;
    ctx.p = *p;
    ctx.spatial = d;
    ctx.positions_per_block = per;
    const int64_t nblocks = c > 0 ? p->n * ((d + per - 1) / per) : 0;
    const int status = fl_run_blocks(kernels->ce_kdim_block, &ctx, nblocks, samples * c,
                                     n_threads, total, bad);
    if (c == 0) {   /* no classes: every target is ignored or out of range */
        for (int64_t i = 0; i < samples; i++) {
            if (p->target[i] != p->ignore_index && *bad < 0)
                *bad = i;
            if (p->loss_out)
                p->loss_out[i] = 0.0f;
            if (p->lse_out)
                p->lse_out[i] = NAN;
            if (p->correct_out)
                p->correct_out[i] = 0;
        }
    }
    return status;
}

int fl_cross_entropy_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t d, const fl_ce_options *opts, const fl_outputs *out,
                         int n_threads, int64_t *bad_row)
{
    if (bad_row)
        *bad_row = -1;
    const int64_t samples = n * d;   /* one target per (sample, position) */
    const double denom = out->reduction == FL_REDUCTION_MEAN
                             ? ce_mean_denominator(target, samples, c, opts) : 1.0;
    fl_ce_problem p;
    ce_problem_init(&p, x, n, c, (double)out->grad_scale / denom, opts, out);
    p.target = target;

    const fl_kernel_table *kernels = fl_kernels();
    double total = 0.0;
    int64_t bad = -1;
    int status;
    if (d != 1) {
        status = ce_run_kdim(&p, d, kernels, n_threads, &total, &bad);
    } else if (c >= FL_SPLIT_MIN_C && (n < FL_SPLIT_MAX_ROWS || c >= FL_SPLIT_HUGE_C)) {
        status = fl_ce_split_run(&p, kernels, n_threads, &total, &bad);
    } else {
        fl_ce_rows_ctx ctx;
        ctx.p = p;
        ctx.rows_per_block = c > 0 && c < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / c : 1;
        ctx.scratch = NULL;
        const int short_rows = c >= 1 && c <= FL_SHORT_ROW_MAX;
        const fl_block_fn fn = short_rows ? kernels->ce_tiles_block : kernels->ce_rows_block;
        /* big inputs: blocks of about FL_PIPE_BLOCK_ELEMS (with or
         * without a gradient, so that a forward call sums the rows as a
         * fused one does), and for the gradient streaming stores (rows.c;
         * ignored by the baseline path) from two scratch rows per thread */
        if (!short_rows && n * c * (int64_t)sizeof(float) >= FL_STREAM_MIN_BYTES) {
            ctx.rows_per_block = c < FL_PIPE_BLOCK_ELEMS ? FL_PIPE_BLOCK_ELEMS / c : 1;
            if (out->grad_out)
                ctx.scratch = (float *)malloc((size_t)n_threads * 2 * (size_t)c * sizeof(float));
        }
        const int64_t nblocks = (n + ctx.rows_per_block - 1) / ctx.rows_per_block;
        status = fl_run_blocks(fn, &ctx, nblocks, n * c, n_threads, &total, &bad);
        free(ctx.scratch);
    }
    if (status != FL_OK && status != FL_ERR_TARGET)
        return status;
    if (bad >= 0) {
        if (bad_row)
            *bad_row = bad;
        return FL_ERR_TARGET;
    }
    if (out->loss_reduced)
        *out->loss_reduced = total / denom;
    return FL_OK;
}
