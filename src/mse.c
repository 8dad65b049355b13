/*
 * mse.c -- mean squared error, elementwise.
 *
 * Compiled once per instruction set (see fl_internal.h); the entry point
 * fl_mse_f32 only in the baseline copy.
 *
 *   d = x - y,  loss = d^2,  grad = scale * 2 d
 * NaN in x or y gives NaN in both; inf - inf gives NaN as in PyTorch.
 */
#include "fl_internal.h"

FL_INLINE float mse_chunk(const float *x, const float *y, int64_t n, float scale,
                          const float *gps, float *loss_out, float *grad_out,
                          const int has_loss, const int has_sum, const int has_grad,
                          const int has_gps)
{
    float acc = 0.0f;
    FL_SIMD_SUM(acc)
    for (int64_t i = 0; i < n; i++) {
        const float d = x[i] - y[i];
        if (has_loss || has_sum) {
            const float l = d * d;
            if (has_loss)
                loss_out[i] = l;
            acc += l;
        }
        if (has_grad)
            grad_out[i] = (d + d) * (has_gps ? scale * gps[i] : scale);
    }
    return acc;
}

FL_DEFINE_ELEM_BLOCK(FL_FN(fl_mse_block), mse_chunk)

#ifdef FL_BUILD_ENTRY
int fl_mse_f32(const float *x, const float *y, int64_t n, int reduction,
               float grad_scale, const float *grad_per_sample, float *loss_out,
               double *loss_reduced, float *grad_out, int n_threads)
{
    return fl_run_elementwise(fl_kernels()->mse_block, x, y, n, reduction, grad_scale,
                              grad_per_sample, loss_out, loss_reduced, grad_out,
                              n_threads);
}
#endif
