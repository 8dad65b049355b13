/*
 * regression.c -- MSE, L1, Huber and smooth L1, elementwise.
 *
 * Compiled once per instruction set (see fl_internal.h); the entry points
 * only in the baseline copy. Formulas: fastloss.h. With d = x - y:
 *   sign(d) is written d > 0 ? 1 : (d < 0 ? -1 : d * 0), so sign(0) = 0 as in
 *   PyTorch and NaN stays NaN; clamp(d, -a, a) likewise keeps NaN.
 */
#include "fl_internal.h"

FL_INLINE float fl_sign(float d)
{
    return d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : d * 0.0f);
}

FL_INLINE float fl_clamp_sym(float d, float a)
{
    return d > a ? a : (d < -a ? -a : d);
}

/* kind: FL_ELEM_MSE, _L1, _HUBER (param = delta), _SMOOTH_L1 (param = beta > 0). */
FL_INLINE float regression_chunk(const float *x, const float *y, int64_t n, float scale,
                                 const float *gps, float *loss_out, float *grad_out,
                                 const float *w, float param, const int kind,
                                 const int has_loss, const int has_sum, const int has_grad,
                                 const int has_gps, const int has_w)
{
    float acc = 0.0f;
    const float half_param = 0.5f * param, inv_param = 1.0f / param;
    FL_SIMD_SUM(acc)
    for (int64_t i = 0; i < n; i++) {
        const float d = x[i] - y[i];
        const float ad = fabsf(d);
        if (has_loss || has_sum) {
            float l;
            if (kind == FL_ELEM_MSE)
                l = d * d;
            else if (kind == FL_ELEM_L1)
                l = ad;
            else if (kind == FL_ELEM_HUBER)
                l = ad < param ? 0.5f * d * d : param * (ad - half_param);
            else
                l = ad < param ? 0.5f * d * d * inv_param : ad - half_param;
            if (has_w)
                l *= w[i];
            if (has_loss)
                loss_out[i] = l;
            acc += l;
        }
        if (has_grad) {
            float g;
            if (kind == FL_ELEM_MSE)
                g = d;   /* times 2 last: 2 d overflows for |d| > FLT_MAX / 2 */
            else if (kind == FL_ELEM_L1)
                g = fl_sign(d);
            else if (kind == FL_ELEM_HUBER)
                g = fl_clamp_sym(d, param);
            else
                g = fl_clamp_sym(d * inv_param, 1.0f);
            if (has_w)
                g *= w[i];
            g *= has_gps ? scale * gps[i] : scale;
            grad_out[i] = kind == FL_ELEM_MSE ? g + g : g;   /* exact: the same as (d + d) * ... */
        }
    }
    return acc;
}

#define FL_REGRESSION_CHUNK(name, kind)                                                   \
    FL_INLINE float name(const float *x, const float *y, int64_t n, float scale,          \
                         const float *gps, float *lo, float *go, const float *w,          \
                         const float *pw, float param, float unused, const int hl,        \
                         const int hs, const int hg, const int hgps, const int hw,        \
                         const int hpw)                                                   \
    {                                                                                     \
        (void)pw;                                                                         \
        (void)unused;                                                                     \
        (void)hpw;                                                                        \
        return regression_chunk(x, y, n, scale, gps, lo, go, w, param, kind, hl, hs, hg,  \
                                hgps, hw);                                                \
    }

FL_REGRESSION_CHUNK(mse_chunk, FL_ELEM_MSE)
FL_REGRESSION_CHUNK(l1_chunk, FL_ELEM_L1)
FL_REGRESSION_CHUNK(huber_chunk, FL_ELEM_HUBER)
FL_REGRESSION_CHUNK(smooth_l1_chunk, FL_ELEM_SMOOTH_L1)

FL_DEFINE_ELEM_BLOCK(FL_FN(fl_mse_block), mse_chunk, 0)
FL_DEFINE_ELEM_BLOCK(FL_FN(fl_l1_block), l1_chunk, 0)
FL_DEFINE_ELEM_BLOCK(FL_FN(fl_huber_block), huber_chunk, 0)
FL_DEFINE_ELEM_BLOCK(FL_FN(fl_smooth_l1_block), smooth_l1_chunk, 0)

#ifdef FL_BUILD_ENTRY
int fl_mse_f32(const float *x, const float *y, int64_t n, int reduction, float grad_scale,
               const fl_elem_options *opts, const float *grad_per_sample, float *loss_out,
               double *loss_reduced, float *grad_out, int n_threads)
{
    return fl_run_elementwise(FL_ELEM_MSE, x, y, n, reduction, grad_scale, opts, 1, 0.0f,
                              0.0f, grad_per_sample, loss_out, loss_reduced, grad_out,
                              n_threads);
}

int fl_l1_f32(const float *x, const float *y, int64_t n, int reduction, float grad_scale,
              const fl_elem_options *opts, const float *grad_per_sample, float *loss_out,
              double *loss_reduced, float *grad_out, int n_threads)
{
    return fl_run_elementwise(FL_ELEM_L1, x, y, n, reduction, grad_scale, opts, 1, 0.0f,
                              0.0f, grad_per_sample, loss_out, loss_reduced, grad_out,
                              n_threads);
}

int fl_huber_f32(const float *x, const float *y, int64_t n, int reduction, float grad_scale,
                 float delta, const fl_elem_options *opts, const float *grad_per_sample,
                 float *loss_out, double *loss_reduced, float *grad_out, int n_threads)
{
    if (!(delta > 0.0f) || delta == INFINITY)
        return FL_ERR_ARG;
    /* PyTorch 2.13's weighted Huber mean divides by n, not by the weights' sum. */
    return fl_run_elementwise(FL_ELEM_HUBER, x, y, n, reduction, grad_scale, opts, 0, delta,
                              0.0f, grad_per_sample, loss_out, loss_reduced, grad_out,
                              n_threads);
}

int fl_smooth_l1_f32(const float *x, const float *y, int64_t n, int reduction,
                     float grad_scale, float beta, const float *grad_per_sample,
                     float *loss_out, double *loss_reduced, float *grad_out, int n_threads)
{
    if (!(beta >= 0.0f) || beta == INFINITY)
        return FL_ERR_ARG;
    const int kind = beta == 0.0f ? FL_ELEM_L1 : FL_ELEM_SMOOTH_L1;
    return fl_run_elementwise(kind, x, y, n, reduction, grad_scale, NULL, 0, beta, 0.0f,
                              grad_per_sample, loss_out, loss_reduced, grad_out, n_threads);
}
#endif
