/*
 * embedding/embedding.c -- cosine_embedding_loss and triplet_margin_loss over
 * rows of embeddings (formulas in embedding/embedding.h). Compiled once per
 * instruction set: the block kernels are FL_FN-suffixed copies in the kernel
 * table (fl_dispatch.h); the entry points, built in the baseline copy only
 * (FL_BUILD_ENTRY), run the dispatched copy.
 *
 * Per row the kernel makes one pass over the row's d elements of each input
 * for the dot products / norms (double, in the vector lanes of this ISA's
 * copy under omp simd: a fixed order per build), computes the row's loss and a few
 * per-row coefficients in double, then, when gradients are wanted, one pass
 * writing every gradient row (each element a double combination of the
 * inputs, rounded once to float32). Blocks are fixed ranges of whole rows,
 * about FL_BLOCK_ELEMS elements of one input each (at least one row), so the
 * blocks depend on the shape alone; their partial loss sums are added in
 * block order by fl_run_blocks: bitwise the same for any thread count.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "embedding/embedding.h"
#include "fl_blocks.h"
#include "fl_dispatch.h"
#include "fl_simd.h"

/* clamp_min(v, 0) that keeps NaN (PyTorch's clamp propagates it) */
static inline double emb_relu(double v)
{
    return v > 0.0 ? v : (v == v ? 0.0 : v);
}

/* sign(v): 1 or -1 by v's sign bit (the infinities too), +0 for +0 and -0
 * (PyTorch's sign), v itself for NaN: the scalar ternary's bits. Built from
 * v's bits with integer adds, shifts and masks, not with a floating-point
 * compare: in the vectorised gradient pass GCC merged the ternary's zero and
 * NaN cases into one unordered-equal compare (vcmpeq_uspd, predicate 0x18),
 * which valgrind 3.19 evaluates as ordered-equal (predicates 0x08, 0x0c,
 * 0x18 and 0x1c all give a NaN the wrong answer there), so under valgrind
 * sign(NaN) came out 0 while native runs kept NaN. Which predicate a
 * ternary becomes is the compiler's choice; integer operations (GCC makes
 * the masks vpcmpgtq in the avx2 copy) are exact natively and under
 * valgrind. */
static inline double emb_sign(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    const uint64_t mag = b & UINT64_C(0x7fffffffffffffff);
    /* masks of all ones: `nonzero` when mag != 0 (bit 63 of mag + 2^63 - 1),
     * `is_nan` when mag is above infinity's bits (bit 63 of inf - mag, which
     * then wraps) */
    const uint64_t nonzero = (uint64_t)0 - ((mag + UINT64_C(0x7fffffffffffffff)) >> 63);
    const uint64_t is_nan = (uint64_t)0 - ((UINT64_C(0x7ff0000000000000) - mag) >> 63);
    const uint64_t one = (b & UINT64_C(0x8000000000000000)) | UINT64_C(0x3ff0000000000000);
    const uint64_t r = (one & nonzero & ~is_nan) | (b & is_nan);
    double s;
    memcpy(&s, &r, sizeof s);
    return s;
}

/* Rows per block: about FL_BLOCK_ELEMS elements, at least one row. */
#ifdef FL_BUILD_ENTRY
static int64_t emb_rows_per_block(int64_t d)
{
    return d > 0 && d < FL_BLOCK_ELEMS ? FL_BLOCK_ELEMS / d : (d == 0 ? FL_BLOCK_ELEMS : 1);
}
#endif /* FL_BUILD_ENTRY */

typedef struct {
    int64_t n, d, rows_per_block;
    double scale;                  /* grad_scale, / n for MEAN */
    const float *grad_per_sample;  /* (n,) or NULL */
    float *loss_out;               /* (n,) or NULL */
    float *grad_out[3];            /* (n, d) each, or NULL */
    int want_sum;
} emb_common;

#ifdef FL_BUILD_ENTRY
static void emb_common_init(emb_common *c, int64_t n, int64_t d, const fl_outputs *out)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->d = d;
    c->rows_per_block = emb_rows_per_block(d);
    c->scale = out->reduction == FL_REDUCTION_MEAN ? (double)out->grad_scale / (double)n
                                                   : (double)out->grad_scale;
    c->grad_per_sample = out->grad_per_sample;
    c->loss_out = out->loss_out;
    c->grad_out[0] = out->grad_out;
    c->want_sum = out->loss_reduced != NULL;
}
#endif /* FL_BUILD_ENTRY */

static inline double emb_row_scale(const emb_common *c, int64_t i)
{
    return c->grad_per_sample ? c->scale * (double)c->grad_per_sample[i] : c->scale;
}

/* ---------------------------------------------------------------- cosine */

typedef struct {
    emb_common c;
    const float *x1, *x2;
    const int8_t *target;
    double margin;
} cos_ctx;

double FL_FN(fl_emb_cos_block)(const void *vctx, int64_t block, int64_t *bad)
{
    (void)bad;
    const cos_ctx *ctx = (const cos_ctx *)vctx;
    const int64_t d = ctx->c.d;
    const int64_t r0 = block * ctx->c.rows_per_block;
    const int64_t r1 = r0 + ctx->c.rows_per_block < ctx->c.n ? r0 + ctx->c.rows_per_block
                                                             : ctx->c.n;
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const float *a = ctx->x1 + i * d, *b = ctx->x2 + i * d;
        /* in double, in the vector lanes of this ISA's copy (a fixed order
         * per build: the same bits for any thread count) */
        double dot = 0.0, aa = 0.0, bb = 0.0;
        FL_SIMD_SUM3(dot, aa, bb)
        for (int64_t j = 0; j < d; j++) {
            const double u = (double)a[j], v = (double)b[j];
            dot += u * v;
            aa += u * u;
            bb += v * v;
        }
        const double m1 = aa + FL_COSINE_EMBEDDING_EPS;
        const double m2 = bb + FL_COSINE_EMBEDDING_EPS;
        const double den = sqrt(m1 * m2);
        const double cs = dot / den;
        const int y = ctx->target[i];
        double loss = 0.0, g = 0.0;
        if (y == 1) {
            loss = 1.0 - cs;
            g = -1.0;
        } else if (y == -1) {
            const double v = cs - ctx->margin;
            loss = emb_relu(v);
            g = v >= 0.0 ? 1.0 : 0.0;
        }
        if (ctx->c.loss_out)
            ctx->c.loss_out[i] = (float)loss;
        acc += loss;
        float *g1 = ctx->c.grad_out[0], *g2 = ctx->c.grad_out[1];
        if (g1) {
            const double gc = g * emb_row_scale(&ctx->c, i);
            const double k12 = gc / den, k1 = -gc * cs / m1, k2 = -gc * cs / m2;
            g1 += i * d;
            g2 += i * d;
            for (int64_t e = 0; e < d; e++) {
                const double u = (double)a[e], v = (double)b[e];
                g1[e] = (float)(k12 * v + k1 * u);
                g2[e] = (float)(k12 * u + k2 * v);
            }
        }
    }
    return ctx->c.want_sum ? acc : 0.0;
}

#ifdef FL_BUILD_ENTRY
int fl_cosine_embedding_loss_f32(const float *x1, const float *x2, const int8_t *target,
                                 int64_t n, int64_t d,
                                 const fl_cosine_embedding_options *opts,
                                 const fl_outputs *out, float *grad2_out, int n_threads)
{
    cos_ctx ctx;
    emb_common_init(&ctx.c, n, d, out);
    ctx.c.grad_out[1] = grad2_out;
    ctx.x1 = x1;
    ctx.x2 = x2;
    ctx.target = target;
    ctx.margin = (double)opts->margin;
    const int64_t nblocks = (n + ctx.c.rows_per_block - 1) / ctx.c.rows_per_block;
    return fl_run_reduced(fl_kernels()->emb_cos_block, &ctx, nblocks, n * d * 2, n_threads,
                          out->loss_reduced, out->reduction == FL_REDUCTION_MEAN,
                          (double)n, NULL);
}
#endif /* FL_BUILD_ENTRY */

/* --------------------------------------------------------------- triplet */

typedef struct {
    emb_common c;
    const float *a, *p, *n;
    double margin, eps;
    int norm, swap;
} tri_ctx;

/* dist(u, v) = ||u - v + eps||_norm over d elements, summed in double in the
 * vector lanes of this ISA's copy (a fixed order per build) */
static double tri_dist(const float *u, const float *v, int64_t d, double eps, int norm)
{
    double l = 0.0;
    if (norm == 2) {
        FL_SIMD_SUM(l)
        for (int64_t j = 0; j < d; j++) {
            const double t = ((double)u[j] - (double)v[j]) + eps;
            l += t * t;
        }
        return sqrt(l);
    }
    FL_SIMD_SUM(l)
    for (int64_t j = 0; j < d; j++)
        l += fabs(((double)u[j] - (double)v[j]) + eps);
    return l;
}

/* the gradient coefficient of one distance: g / dist (0 at dist 0) for the
 * 2-norm, g for the 1-norm (times sign(v) per element) */
static inline double tri_coef(double g, double dist, int norm)
{
    if (norm == 1)
        return g;
    return dist == 0.0 ? 0.0 : g / dist;
}

static inline double tri_dir(double v, int norm)
{
    return norm == 1 ? emb_sign(v) : v;
}

/* One row's three gradients from the row's coefficients (see the block
 * below). `norm` and `swap` are constants at every call site, so each of the
 * four specialisations is one vectorised loop (with them read at run time
 * the loop kept its branches and ran scalar). Each element is the scalar
 * loop's double expression, rounded once, so the same bits as that loop;
 * only a NaN's sign may differ where two NaNs meet in one add (which one an
 * add returns follows the compiler's operand order, in the scalar copies
 * too; NaNs match as NaN in the tests). */
FL_INLINE void tri_grad_row(const float *a, const float *p, const float *q, float *ga,
                            float *gp, float *gn, int64_t d, double eps, double cap,
                            double can, double cpn, const int norm, const int swap)
{
    FL_SIMD
    for (int64_t e = 0; e < d; e++) {
        const double ua = (double)a[e], up = (double)p[e], un = (double)q[e];
        const double vap = tri_dir((ua - up) + eps, norm);
        const double van = tri_dir((ua - un) + eps, norm);
        if (swap) {
            const double vpn = tri_dir((up - un) + eps, norm);
            ga[e] = (float)(cap * vap - can * van);
            gp[e] = (float)(-(cap * vap) - cpn * vpn);
            gn[e] = (float)(can * van + cpn * vpn);
        } else {
            ga[e] = (float)(cap * vap - can * van);
            gp[e] = (float)(-(cap * vap));
            gn[e] = (float)(can * van);
        }
    }
}

double FL_FN(fl_emb_tri_block)(const void *vctx, int64_t block, int64_t *bad)
{
    (void)bad;
    const tri_ctx *ctx = (const tri_ctx *)vctx;
    const int64_t d = ctx->c.d;
    const int norm = ctx->norm;
    const double eps = ctx->eps;
    const int64_t r0 = block * ctx->c.rows_per_block;
    const int64_t r1 = r0 + ctx->c.rows_per_block < ctx->c.n ? r0 + ctx->c.rows_per_block
                                                             : ctx->c.n;
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const float *a = ctx->a + i * d, *p = ctx->p + i * d, *q = ctx->n + i * d;
        const double dap = tri_dist(a, p, d, eps, norm);
        const double dan = tri_dist(a, q, d, eps, norm);
        double dneg = dan, wa = 1.0, wp = 0.0;
        if (ctx->swap) {
            const double dpn = tri_dist(p, q, d, eps, norm);
            if (dan < dpn) {
                wa = 1.0, wp = 0.0;
            } else if (dpn < dan) {
                dneg = dpn, wa = 0.0, wp = 1.0;
            } else {   /* the tie, or a NaN: torch.minimum propagates NaN */
                dneg = dan == dpn ? dan : NAN;
                wa = 0.5, wp = 0.5;
            }
            if (ctx->c.grad_out[0])
                wp = tri_coef(wp, dpn, norm);
        }
        const double l = ctx->margin + dap - dneg;
        const double loss = emb_relu(l);
        if (ctx->c.loss_out)
            ctx->c.loss_out[i] = (float)loss;
        acc += loss;
        if (!ctx->c.grad_out[0])
            continue;
        const double g = l >= 0.0 ? emb_row_scale(&ctx->c, i) : 0.0;
        const double cap = tri_coef(g, dap, norm);
        const double can = tri_coef(g * wa, dan, norm);
        const double cpn = g * wp;   /* wp already divided by dist(p, n) for the 2-norm */
        float *ga = ctx->c.grad_out[0] + i * d, *gp = ctx->c.grad_out[1] + i * d;
        float *gn = ctx->c.grad_out[2] + i * d;
        if (norm == 2)
            ctx->swap ? tri_grad_row(a, p, q, ga, gp, gn, d, eps, cap, can, cpn, 2, 1)
                      : tri_grad_row(a, p, q, ga, gp, gn, d, eps, cap, can, cpn, 2, 0);
        else
            ctx->swap ? tri_grad_row(a, p, q, ga, gp, gn, d, eps, cap, can, cpn, 1, 1)
                      : tri_grad_row(a, p, q, ga, gp, gn, d, eps, cap, can, cpn, 1, 0);
    }
    return ctx->c.want_sum ? acc : 0.0;
}

#ifdef FL_BUILD_ENTRY
int fl_triplet_margin_loss_f32(const float *anchor, const float *positive,
                               const float *negative, int64_t n, int64_t d,
                               const fl_triplet_margin_options *opts, const fl_outputs *out,
                               float *grad_positive_out, float *grad_negative_out,
                               int n_threads)
{
    tri_ctx ctx;
    emb_common_init(&ctx.c, n, d, out);
    ctx.c.grad_out[1] = grad_positive_out;
    ctx.c.grad_out[2] = grad_negative_out;
    ctx.a = anchor;
    ctx.p = positive;
    ctx.n = negative;
    ctx.margin = (double)opts->margin;
    ctx.eps = (double)opts->eps;
    ctx.norm = opts->p == 1 ? 1 : 2;
    ctx.swap = opts->swap != 0;
    const int64_t nblocks = (n + ctx.c.rows_per_block - 1) / ctx.c.rows_per_block;
    return fl_run_reduced(fl_kernels()->emb_tri_block, &ctx, nblocks, n * d * 3, n_threads,
                          out->loss_reduced, out->reduction == FL_REDUCTION_MEAN,
                          (double)n, NULL);
}
#endif /* FL_BUILD_ENTRY */
