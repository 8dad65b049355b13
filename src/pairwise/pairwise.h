/*
 * pairwise/pairwise.h -- losses of several float input arrays, each with a
 * gradient of its own (margin ranking, Gaussian NLL): their options structs
 * and entry points.
 *
 * They follow fastloss.h's conventions (fl_outputs: what to compute and
 * where; grad_out is the gradient of the FIRST differentiable input, the
 * other gradients have outputs of their own; per-block partial sums in
 * double, added in block order by fl_run_blocks, blocks fixed by the shape,
 * so results are bitwise identical for any n_threads). The Python layer
 * (fastloss/_pairwise.py) broadcasts and checks the arrays; the C sees
 * contiguous float32 arrays of the sizes stated here. No output may overlap
 * an input, except that grad_out may equal the first input.
 */
#ifndef FL_PAIRWISE_H
#define FL_PAIRWISE_H

#include <stdint.h>

#include "fastloss.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of margin_ranking_loss. */
typedef struct {
    float margin;
} fl_margin_ranking_options;

/*
 * Margin ranking loss over n elements (the inputs already broadcast to one
 * shape):
 *
 *   z    = -y (x1 - x2) + margin
 *   loss = max(z, 0)                 (NaN z gives NaN, as torch.clamp_min)
 *   d loss / d x1 = -y [z >= 0] s,   d loss / d x2 = y [z >= 0] s
 *
 * with s the upstream gradient (/ n for MEAN). The gradient passes at the tie
 * z == 0, as PyTorch's clamp_min backward does (its mask is z >= 0).
 *
 *   x1, x2, y   IN   (n,) float32
 *   opts        IN   the margin
 *   out         IN   fl_outputs; grad_out (n,) is d loss / d x1 (may be x1)
 *   grad2_out   OUT  (n,) d loss / d x2, or NULL
 */
int fl_margin_ranking_loss_f32(const float *x1, const float *x2, const float *y, int64_t n,
                               const fl_margin_ranking_options *opts, const fl_outputs *out,
                               float *grad2_out, int n_threads);

/* Options of gaussian_nll_loss. */
typedef struct {
    int full;     /* add 0.5 log(2 pi) to every element's loss */
    float eps;    /* var is clamped to >= eps (>= 0) */
} fl_gaussian_nll_options;

/*
 * Gaussian negative log-likelihood over input x and target t of shape
 * (a, b, c) (row-major, t already broadcast to it), with the variance var of
 * shape (a, 1, c) broadcast along the middle axis (b == 1: one variance per
 * element; PyTorch's other var shapes reach this form in the Python layer),
 * or one scalar var for every element (var_scalar != 0: var has 1 element):
 *
 *   v    = max(var, eps)                  (a NaN var stays NaN)
 *   loss = 0.5 (log v + (x - t)^2 / v)    [+ 0.5 log(2 pi) if full]
 *   d loss / d x   = (x - t) / v s
 *   d loss / d var = 0.5 (1 / v - ((x - t) / v)^2) s, summed over b
 *
 * with s the upstream gradient (/ (a b c) for MEAN). The clamp is not
 * differentiated (PyTorch clamps a copy under no_grad): the var gradient is
 * taken at v and passed to var even where var < eps. (x - t)^2 / v is
 * computed as (x - t) ((x - t) / v), which overflows only when the loss does.
 *
 * Blocks: with an array var, a block holds every b of the (a, c) it covers
 * (whole (b, c) slabs of several a when b c <= FL_BLOCK_ELEMS, else one a and
 * a chunk of c), so each var gradient is summed over b, in double, in b order,
 * by one block; the loss is summed in the block's order (c, then b within a
 * column chunk) and the blocks' sums in block order. The shape alone decides
 * the blocks: bitwise the same results for any n_threads, and for any choice
 * of outputs. (A var broadcast over one long slab, a == 1 and c == 1, is thus
 * one block: it runs on one thread.) With b == 1 (var of the input's shape)
 * or a scalar var, and eps >= FLT_MIN, every column is one element: the
 * blocks are FL_BLOCK_ELEMS elements, each summed as the elementwise losses
 * are (float vector lanes per FL_SUM_CHUNK elements, then double), one
 * vectorised loop per common output combination, log(v) from fl_math.h's
 * fl_log_pos (2 ulp; logf is a scalar call). With a scalar var
 * grad_var_out must be NULL.
 *
 *   x, t         IN   (a, b, c) float32
 *   var          IN   (a, c) float32, or (1,) with var_scalar
 *   opts         IN   full, eps
 *   out          IN   fl_outputs: per-sample arrays (a, b, c); grad_out
 *                     (a, b, c) d loss / d x (may be x)
 *   grad_var_out OUT  (a, c) d loss / d var, or NULL
 */
int fl_gaussian_nll_loss_f32(const float *x, const float *t, const float *var, int64_t a,
                             int64_t b, int64_t c, int var_scalar,
                             const fl_gaussian_nll_options *opts, const fl_outputs *out,
                             float *grad_var_out, int n_threads);

#ifdef __cplusplus
}
#endif

#endif /* FL_PAIRWISE_H */
