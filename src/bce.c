/*
 * bce.c -- binary cross-entropy with logits, elementwise.
 *
 * Compiled once per instruction set (see fl_internal.h); the entry point
 * fl_bce_logits_f32 only in the baseline copy.
 *
 * With e = exp(-|x|) in (0, 1]:
 *   loss    = (x > 0 ? x (1 - y) : -x y) + log1p(e)
 *   sigmoid = x >= 0 ? 1 / (1 + e) : e / (1 + e)
 *   grad    = scale * (sigmoid - y)
 * The loss is the usual max(x, 0) - x y + log1p(exp(-|x|)) with each branch
 * written so that nothing cancels: for x > 0, x - x y loses digits when y is
 * near 1 while x (1 - y) does not (1 - y is exact for y in [1/2, 1]); for
 * x <= 0 the max term is 0. It also keeps x = +inf, y = 0 at +inf rather than
 * inf - inf. exp only ever sees -|x| <= 0, so nothing overflows, and one exp
 * serves the loss and the gradient. NaN in x or y gives NaN in both.
 */
#include "fl_internal.h"

FL_INLINE float bce_chunk(const float *x, const float *y, int64_t n, float scale,
                          const float *gps, float *loss_out, float *grad_out,
                          const int has_loss, const int has_sum, const int has_grad,
                          const int has_gps)
{
    float acc = 0.0f;
    FL_SIMD_SUM(acc)
    for (int64_t i = 0; i < n; i++) {
        const float xi = x[i], yi = y[i];
        const float e = fl_exp_nonpos(-fabsf(xi));
        const float r = 1.0f / (1.0f + e);   /* the one division: log1p and sigmoid share it */
        if (has_loss || has_sum) {
            const float l = (xi > 0.0f ? xi * (1.0f - yi) : -xi * yi) + fl_log1p_unit(e, r);
            if (has_loss)
                loss_out[i] = l;
            acc += l;
        }
        if (has_grad) {
            const float sig = xi >= 0.0f ? r : e * r;
            grad_out[i] = (sig - yi) * (has_gps ? scale * gps[i] : scale);
        }
    }
    return acc;
}

FL_DEFINE_ELEM_BLOCK(FL_FN(fl_bce_block), bce_chunk)

#ifdef FL_BUILD_ENTRY
int fl_bce_logits_f32(const float *x, const float *y, int64_t n, int reduction,
                      float grad_scale, const float *grad_per_sample, float *loss_out,
                      double *loss_reduced, float *grad_out, int n_threads)
{
    return fl_run_elementwise(fl_kernels()->bce_block, x, y, n, reduction, grad_scale,
                              grad_per_sample, loss_out, loss_reduced, grad_out,
                              n_threads);
}
#endif
