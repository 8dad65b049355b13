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

#ifdef __cplusplus
}
#endif

#endif /* FL_PAIRWISE_H */
