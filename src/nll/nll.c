/*
 * nll/nll.c -- negative log-likelihood over log-probabilities (compiled once).
 *
 * Per sample (i, p) with target t (x[i, :, p] its log-probabilities):
 *   loss = -w_t x[i, t, p]                     (0 when t == ignore_index)
 *   grad[i, j, p] = -w_t s  at j == t, 0 elsewhere
 * with s the upstream gradient (divided by the mean's denominator for MEAN).
 *
 * The kernel reads one element per sample and writes the whole gradient, so
 * it is bound by the gradient's store bandwidth. Each block therefore:
 *   1. reads its samples' x[i, t, p] (before anything is written: g may be x),
 *      accumulating the loss in double in sample order;
 *   2. writes its part of the gradient once: long rows (d == 1 and
 *      c * 4 bytes >= NLL_STREAM_ROW_BYTES in a gradient of at least
 *      FL_STREAM_MIN_BYTES) are streamed with SSE2 non-temporal stores, the
 *      target's value inserted into its 16-byte vector, so no line of g is
 *      read from memory (as rows.c does for cross-entropy); everything else
 *      is memset, then one store per sample.
 * The work is cut into blocks fixed by the shape (whole rows of about
 * FL_BLOCK_ELEMS elements, or, for K-dimensional rows longer than that,
 * chunks of positions of one row); the partial sums are added in block
 * order by fl_run_blocks, so results do not depend on the thread count.
 * Nothing here depends on the ISA: this file is compiled once.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastloss.h"
#include "fl_blocks.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#define NLL_STREAM 1
#else
#define NLL_STREAM 0
#endif

/* Streaming pays off only for a gradient that does not stay in cache: the
 * threshold of cross-entropy's long rows (FL_STREAM_MIN_BYTES in
 * cross_entropy/ce.h, 32 MiB). */
#define NLL_STREAM_MIN_BYTES ((int64_t)32 << 20)
/* and when the rows are long enough that a row's one target store is noise */
#define NLL_STREAM_ROW_BYTES ((int64_t)1024)

typedef struct {
    const float *x;              /* (n, c, d) */
    const int64_t *target;       /* (n, d) */
    const float *weight;         /* (c,) or NULL */
    int64_t n, c, d;
    int64_t ignore_index;
    float scale;                 /* grad_scale, / denominator for MEAN */
    const float *grad_per_sample;
    float *loss_out;
    float *grad_out;
    int want_sum;
    int stream;                  /* stream long rows (d == 1) */
    int64_t rows_per_block;      /* > 0: blocks of whole rows */
    int64_t positions_per_block; /* > 0: blocks of positions of one row */
} nll_ctx;

/* Samples [p0, p1) of row i: loss pass. Returns the partial sum; writes the
 * per-sample gradient values to gval (gval[k] for position p0 + k; the
 * target is stored in tpos[k], -1 for no gradient element). */
static double nll_samples(const nll_ctx *ctx, int64_t i, int64_t p0, int64_t p1, int64_t *bad)
{
    const int64_t c = ctx->c, d = ctx->d;
    const float *x = ctx->x + i * c * d;
    double acc = 0.0;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t s = i * d + p;
        const int64_t t = ctx->target[s];
        float loss = 0.0f;
        if (t != ctx->ignore_index) {
            if (t < 0 || t >= c) {
                if (*bad < 0 || s < *bad)
                    *bad = s;
            } else {
                const float w = ctx->weight ? ctx->weight[t] : 1.0f;
                loss = -(w * x[t * d + p]);
            }
        }
        if (ctx->loss_out)
            ctx->loss_out[s] = loss;
        acc += (double)loss;
    }
    return acc;
}

/* The gradient value of sample s with a valid target t. */
static inline float nll_grad_value(const nll_ctx *ctx, int64_t s, int64_t t)
{
    const float w = ctx->weight ? ctx->weight[t] : 1.0f;
    const float k = ctx->grad_per_sample ? ctx->scale * ctx->grad_per_sample[s] : ctx->scale;
    return -(w * k);
}

static inline int nll_valid(const nll_ctx *ctx, int64_t t)
{
    return t != ctx->ignore_index && t >= 0 && t < ctx->c;
}

#if NLL_STREAM
/* g[0..c) = 0 except g[t] = v (t < 0: none), with non-temporal stores from
 * the first 16-byte-aligned element on. */
static void nll_stream_row(float *g, int64_t c, int64_t t, float v)
{
    int64_t j = 0;
    const int64_t head = (int64_t)(((uintptr_t)0 - (uintptr_t)g) / sizeof(float)) % 4;
    for (; j < head && j < c; j++)
        g[j] = j == t ? v : 0.0f;
    const __m128 zero = _mm_setzero_ps();
    const int64_t tv = t >= j ? j + (t - j) / 4 * 4 : -1;   /* the target's vector */
    for (; j + 4 <= c; j += 4) {
        if (j == tv) {
            float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            lanes[t - j] = v;
            _mm_stream_ps(g + j, _mm_loadu_ps(lanes));
        } else {
            _mm_stream_ps(g + j, zero);
        }
    }
    for (; j < c; j++)
        g[j] = j == t ? v : 0.0f;
}
#endif

static double nll_block(const void *vctx, int64_t block, int64_t *bad)
{
    const nll_ctx *ctx = (const nll_ctx *)vctx;
    const int64_t c = ctx->c, d = ctx->d;
    double acc = 0.0;
    if (ctx->rows_per_block > 0) {
        const int64_t r0 = block * ctx->rows_per_block;
        const int64_t r1 = r0 + ctx->rows_per_block < ctx->n ? r0 + ctx->rows_per_block : ctx->n;
        for (int64_t i = r0; i < r1; i++)
            acc += nll_samples(ctx, i, 0, d, bad);
        float *g = ctx->grad_out;
        if (g) {
#if NLL_STREAM
            if (ctx->stream) {
                for (int64_t i = r0; i < r1; i++) {
                    const int64_t t = ctx->target[i];
                    const int ok = nll_valid(ctx, t);
                    nll_stream_row(g + i * c, c, ok ? t : -1, ok ? nll_grad_value(ctx, i, t) : 0.0f);
                }
                _mm_sfence();
                return ctx->want_sum ? acc : 0.0;
            }
#endif
            memset(g + r0 * c * d, 0, (size_t)((r1 - r0) * c * d) * sizeof(float));
            for (int64_t i = r0; i < r1; i++)
                for (int64_t p = 0; p < d; p++) {
                    const int64_t s = i * d + p, t = ctx->target[s];
                    if (nll_valid(ctx, t))
                        g[(i * c + t) * d + p] = nll_grad_value(ctx, s, t);
                }
        }
    } else {
        const int64_t per = ctx->positions_per_block;
        const int64_t chunks = (d + per - 1) / per;
        const int64_t i = block / chunks;
        const int64_t p0 = (block % chunks) * per;
        const int64_t p1 = p0 + per < d ? p0 + per : d;
        acc = nll_samples(ctx, i, p0, p1, bad);
        float *g = ctx->grad_out;
        if (g) {
            float *gi = g + i * c * d;
            for (int64_t j = 0; j < c; j++)
                memset(gi + j * d + p0, 0, (size_t)(p1 - p0) * sizeof(float));
            for (int64_t p = p0; p < p1; p++) {
                const int64_t s = i * d + p, t = ctx->target[s];
                if (nll_valid(ctx, t))
                    gi[t * d + p] = nll_grad_value(ctx, s, t);
            }
        }
    }
    return ctx->want_sum ? acc : 0.0;
}

/* The mean's denominator: the kept targets' weights (their count without
 * weights); out-of-range targets are skipped here and reported by the pass. */
static double nll_mean_denominator(const int64_t *target, int64_t samples, int64_t c,
                                   const fl_nll_options *opts)
{
    double valid = 0.0;
    for (int64_t i = 0; i < samples; i++) {
        const int64_t t = target[i];
        if (t != opts->ignore_index && t >= 0 && t < c)
            valid += opts->weight ? (double)opts->weight[t] : 1.0;
    }
    return valid;
}

int fl_nll_loss_f32(const float *x, const int64_t *target, int64_t n, int64_t c, int64_t d,
                    const fl_nll_options *opts, const fl_outputs *out, int n_threads,
                    int64_t *bad_row)
{
    if (bad_row)
        *bad_row = -1;
    const int64_t samples = n * d;
    const double denom = out->reduction == FL_REDUCTION_MEAN
                             ? nll_mean_denominator(target, samples, c, opts) : 1.0;
    nll_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.x = x;
    ctx.target = target;
    ctx.weight = opts->weight;
    ctx.n = n;
    ctx.c = c;
    ctx.d = d;
    ctx.ignore_index = opts->ignore_index;
    ctx.scale = (float)((double)out->grad_scale / denom);
    ctx.grad_per_sample = out->grad_per_sample;
    ctx.loss_out = out->loss_out;
    ctx.grad_out = out->grad_out;
    ctx.want_sum = out->loss_reduced != NULL;
    const int64_t row = c * d;   /* elements per row */
    int64_t nblocks;
    if (d == 1 || row <= FL_BLOCK_ELEMS) {
        ctx.rows_per_block = row > 0 && row < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / row : 1;
        nblocks = (n + ctx.rows_per_block - 1) / ctx.rows_per_block;
        ctx.stream = d == 1 && c * (int64_t)sizeof(float) >= NLL_STREAM_ROW_BYTES &&
                     n * c * (int64_t)sizeof(float) >= NLL_STREAM_MIN_BYTES;
    } else {   /* long K-dimensional rows: chunks of positions, c > 0 and d > 1 here */
        ctx.positions_per_block = FL_BLOCK_ELEMS / c > 1 ? FL_BLOCK_ELEMS / c : 1;
        nblocks = n * ((d + ctx.positions_per_block - 1) / ctx.positions_per_block);
    }
    /* the work is the gradient's size, or the samples alone without one */
    const int64_t work = out->grad_out ? n * row : samples;
    double total = 0.0;
    int64_t bad = -1;
    const int status = fl_run_blocks(nll_block, &ctx, nblocks, work, n_threads, &total, &bad);
    if (status != FL_OK)
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
