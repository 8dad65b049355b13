/*
 * bce.c -- binary cross-entropy with logits and the sigmoid focal loss, elementwise.
 *
 * Compiled once per instruction set (see fl_internal.h); the entry points
 * only in the baseline copy. Formulas and their derivation: fastloss.h.
 *
 * With e = exp(-|x|) in (0, 1] and r = 1 / (1 + e) (the one division):
 *   sigmoid(x)  = x >= 0 ? r : e r,   sigmoid(-x) = x >= 0 ? e r : r
 *   softplus(-x) - max(-x, 0) = log1p(e)
 * BCE: (x > 0 ? x (1 - y) : -x y p) + (1 + (p - 1) y) log1p(e), p = pos_weight.
 * Each branch is free of cancellation: for x > 0, x - x y loses digits when y
 * is near 1 while x (1 - y) does not (1 - y is exact for y in [1/2, 1]); for
 * x <= 0 the max term is 0. It also keeps x = +inf, y = 0 at +inf rather than
 * inf - inf. exp only ever sees -|x| <= 0, so nothing overflows. NaN in x or y
 * gives NaN in both.
 */
#include "fl_internal.h"

#include <float.h>
#include <stdlib.h>

FL_INLINE float bce_chunk(const float *x, const float *y, int64_t n, float scale,
                          const float *gps, float *loss_out, float *grad_out, const float *w,
                          const float *pw, float unused0, float unused1, const int has_loss,
                          const int has_sum, const int has_grad, const int has_gps,
                          const int has_w, const int has_pw)
{
    float acc = 0.0f;
    (void)unused0;
    (void)unused1;
    FL_SIMD_SUM(acc)
    for (int64_t i = 0; i < n; i++) {
        const float xi = x[i], yi = y[i];
        const float e = fl_exp_nonpos(-fabsf(xi));
        const float r = 1.0f / (1.0f + e);
        const float p = has_pw ? pw[i] : 1.0f;
        const float lw = has_pw ? 1.0f + (p - 1.0f) * yi : 1.0f;
        if (has_loss || has_sum) {
            float l = (xi > 0.0f ? xi * (1.0f - yi) : -xi * yi * p) + lw * fl_log1p_unit(e, r);
            if (has_w)
                l *= w[i];
            if (has_loss)
                loss_out[i] = l;
            acc += l;
        }
        if (has_grad) {
            float g;
            if (has_pw)
                g = (1.0f - yi) - lw * (xi >= 0.0f ? e * r : r);
            else
                g = (xi >= 0.0f ? r : e * r) - yi;
            if (has_w)
                g *= w[i];
            grad_out[i] = g * (has_gps ? scale * gps[i] : scale);
        }
    }
    return acc;
}

FL_DEFINE_ELEM_BLOCK(FL_FN(fl_bce_block), bce_chunk, 1)

/* Focal loss; param0 = alpha (< 0: no alpha weighting), param1 = gamma >= 0.
 * q = 1 - p_t = p (1 - y) + (1 - p) y lies in [0, 1] for y in [0, 1]. A
 * target outside [0, 1] can make q negative; torchvision's formula then
 * takes pow(q, gamma) as torch.pow does: |q|^gamma times (-1)^gamma for an
 * integral gamma, NaN otherwise (q_sign below). The focusing term of the
 * gradient multiplies ce by p (1 - p) first: at |x| near FLT_MAX, ce is huge
 * while p (1 - p) is 0, and their product is the term's true limit, 0. */
FL_INLINE float focal_chunk(const float *x, const float *y, int64_t n, float scale,
                            const float *gps, float *loss_out, float *grad_out,
                            const float *w, const float *pw, float alpha, float gamma,
                            const int has_loss, const int has_sum, const int has_grad,
                            const int has_gps, const int has_w, const int has_pw)
{
    float acc = 0.0f;
    (void)w;
    (void)pw;
    (void)has_w;
    (void)has_pw;
    /* pow(q, gamma) = q_sign |q|^gamma for q < 0; pow(q, gamma - 1) has the
     * opposite sign. */
    const float q_sign = gamma != floorf(gamma) ? NAN
                         : fmodf(gamma, 2.0f) == 1.0f ? -1.0f : 1.0f;
    FL_SIMD_SUM(acc)
    for (int64_t i = 0; i < n; i++) {
        const float xi = x[i], yi = y[i];
        const float e = fl_exp_nonpos(-fabsf(xi));
        const float r = 1.0f / (1.0f + e);
        const float p = xi >= 0.0f ? r : e * r;       /* sigmoid(x) */
        const float p1 = xi >= 0.0f ? e * r : r;      /* 1 - sigmoid(x), no cancellation */
        const float ce = (xi > 0.0f ? xi * (1.0f - yi) : -xi * yi) + fl_log1p_unit(e, r);
        const float q = p * (1.0f - yi) + p1 * yi;    /* 1 - p_t */
        const float aq = fabsf(q);
        const float lq = fl_log_pos(aq > FLT_MIN ? aq : FLT_MIN);
        const float sg = q < 0.0f ? q_sign : 1.0f;
        const float qg = sg * fl_exp_any(gamma * lq);      /* q^gamma */
        const float at = alpha >= 0.0f ? alpha * yi + (1.0f - alpha) * (1.0f - yi) : 1.0f;
        if (has_loss || has_sum) {
            const float l = at * ce * qg;
            if (has_loss)
                loss_out[i] = l;
            acc += l;
        }
        if (has_grad) {
            const float qg1 = (q < 0.0f ? -sg : 1.0f) *
                              fl_exp_any((gamma - 1.0f) * lq);   /* q^(gamma - 1) */
            const float g = at * ((p - yi) * qg +
                                  gamma * (ce * (p * p1)) * qg1 * (1.0f - 2.0f * yi));
            grad_out[i] = g * (has_gps ? scale * gps[i] : scale);
        }
    }
    return acc;
}

FL_DEFINE_ELEM_BLOCK(FL_FN(fl_focal_block), focal_chunk, 0)

#ifdef FL_BUILD_ENTRY
int fl_bce_logits_f32(const float *x, const float *y, int64_t n, int reduction,
                      float grad_scale, const fl_elem_options *opts,
                      const float *grad_per_sample, float *loss_out, double *loss_reduced,
                      float *grad_out, int n_threads)
{
    return fl_run_elementwise(FL_ELEM_BCE, x, y, n, reduction, grad_scale, opts, 0, 0.0f,
                              0.0f, grad_per_sample, loss_out, loss_reduced, grad_out,
                              n_threads);
}

int fl_sigmoid_focal_f32(const float *x, const float *y, int64_t n, int reduction,
                         float grad_scale, float alpha, float gamma,
                         const float *grad_per_sample, float *loss_out, double *loss_reduced,
                         float *grad_out, int n_threads)
{
    if (!(gamma >= 0.0f))
        return FL_ERR_ARG;
    return fl_run_elementwise(FL_ELEM_FOCAL, x, y, n, reduction, grad_scale, NULL, 0, alpha,
                              gamma, grad_per_sample, loss_out, loss_reduced, grad_out,
                              n_threads);
}
#endif
