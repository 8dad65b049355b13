/*
 * elementwise/regression.h -- closed forms of MSE, L1, Huber and smooth L1.
 *
 * With d = x - y and w the weight (1 without):
 *
 *   mse:        loss = w d^2,                          grad = s w 2d
 *   l1:         loss = w |d|,                          grad = s w sign(d)  (sign(0) = 0)
 *   huber:      loss = w (|d| < delta ? d^2/2 : delta (|d| - delta/2)),
 *               grad = s w clamp(d, -delta, delta)
 *   smooth_l1:  loss = |d| < beta ? d^2 / (2 beta) : |d| - beta/2,
 *               grad = s clamp(d / beta, -1, 1); beta = 0 is l1 (no weight, as in PyTorch)
 *
 * sign(d) is written d > 0 ? 1 : (d < 0 ? -1 : d * 0), so sign(0) = 0 as in
 * PyTorch and NaN stays NaN; clamp(d, -a, a) likewise keeps NaN. MEAN divides
 * by n without a weight; with one, mse and l1 divide by the sum of the
 * broadcast weight and huber by n, as PyTorch 2.13 does (the spec's `mean`).
 */
#ifndef FL_ELEMENTWISE_REGRESSION_H
#define FL_ELEMENTWISE_REGRESSION_H

#include "elementwise/elementwise.h"

FL_INLINE float fl_sign(float d)
{
    return d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : d * 0.0f);
}

FL_INLINE float fl_clamp_sym(float d, float a)
{
    return d > a ? a : (d < -a ? -a : d);
}

FL_INLINE void fl_mse_forms(const fl_mse_options *o, const int mode, float x, float y,
                            const float *aux, float w, float s, float *loss, float *grad)
{
    (void)mode;
    (void)o;
    (void)aux;
    const float d = x - y;
    *loss = d * d * w;
    const float g = d * w * s;
    *grad = g + g;   /* the factor 2 last: 2 d overflows for |d| > FLT_MAX / 2; doubling is exact */
}

FL_INLINE void fl_l1_forms(const fl_l1_options *o, const int mode, float x, float y,
                           const float *aux, float w, float s, float *loss, float *grad)
{
    (void)mode;
    (void)o;
    (void)aux;
    const float d = x - y;
    *loss = fabsf(d) * w;
    *grad = fl_sign(d) * w * s;
}

FL_INLINE void fl_huber_forms(const fl_huber_options *o, const int mode, float x, float y,
                              const float *aux, float w, float s, float *loss, float *grad)
{
    (void)mode;
    const float delta = o->delta, half_delta = 0.5f * o->delta;
    (void)aux;
    const float d = x - y;
    const float ad = fabsf(d);
    *loss = (ad < delta ? 0.5f * d * d : delta * (ad - half_delta)) * w;
    *grad = fl_clamp_sym(d, delta) * w * s;
}

/* beta = 0 is the L1 loss (mode 1), as in PyTorch. */
typedef struct {
    float beta, half_beta, inv_beta;
} fl_smooth_l1_k;

FL_INLINE fl_smooth_l1_k fl_smooth_l1_setup(const fl_smooth_l1_options *o, int *mode)
{
    fl_smooth_l1_k k;
    k.beta = o->beta;
    k.half_beta = 0.5f * o->beta;
    k.inv_beta = o->beta > 0.0f ? 1.0f / o->beta : 0.0f;
    *mode = o->beta == 0.0f;
    return k;
}

FL_INLINE void fl_smooth_l1_forms(const fl_smooth_l1_k *k, const int mode, float x, float y,
                                  const float *aux, float w, float s, float *loss, float *grad)
{
    (void)aux;
    (void)w;
    const float d = x - y;
    const float ad = fabsf(d);
    if (mode == 1) {
        *loss = ad;
        *grad = fl_sign(d) * s;
    } else {
        *loss = ad < k->beta ? 0.5f * d * d * k->inv_beta : ad - k->half_beta;
        *grad = fl_clamp_sym(d * k->inv_beta, 1.0f) * s;
    }
}

#endif /* FL_ELEMENTWISE_REGRESSION_H */
