/*
 * elementwise/regression.h -- closed forms of MSE, L1, Huber, smooth L1 and Poisson NLL.
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

#include <float.h>
#include <math.h>

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

/*
 * Poisson negative log-likelihood (torch.nn.functional.poisson_nll_loss), x the
 * input, t the target (a count):
 *
 *   log_input:     loss = exp(x) - t x,                grad = s (exp(x) - t)
 *   not log_input: loss = x - t log(x + eps),          grad = s (1 - t / (x + eps))
 *   full:          loss += t log t - t + log(2 pi t) / 2 where t > 1 (Stirling;
 *                  no gradient: it does not depend on x)
 *
 * as PyTorch 2.13 computes them (its gradient of the second form is autograd's
 * 1 - t / (x + eps), finite even where x + eps < 0 makes the loss NaN). The
 * modes: 0 log_input, 1 log_input + full, 2 probability-scale input, 3 the
 * same + full. exp(x) is one fl_exp_any, of x / 2 squared above x = 88 so
 * that it stays finite up to float32's own overflow at 88.72 (fl_exp_any
 * alone is inf from 88.4). log(v) of a subnormal v is log(2^24 v) - 24 ln 2;
 * log(0) is -inf and the log of a negative number NaN, as in PyTorch. No
 * weight; MEAN divides by n.
 */
typedef struct {
    float eps;
} fl_poisson_nll_k;

FL_INLINE fl_poisson_nll_k fl_poisson_nll_setup(const fl_poisson_nll_options *o, int *mode)
{
    fl_poisson_nll_k k;
    k.eps = o->eps;
    *mode = (o->log_input ? 0 : 2) + (o->full ? 1 : 0);
    return k;
}

/* log(v) for any float v: -inf at 0, NaN below 0 (and for NaN), subnormals exact. */
FL_INLINE float fl_log_any(float v)
{
    const int sub = v < FLT_MIN;
    const float l = fl_log_pos(sub ? v * 16777216.0f : v) - (sub ? 16.63553233f : 0.0f);
    return v > 0.0f ? l : (v == 0.0f ? -INFINITY : NAN + v);
}

FL_INLINE void fl_poisson_nll_forms(const fl_poisson_nll_k *k, const int mode, float x, float y,
                                    const float *aux, float w, float s, float *loss, float *grad)
{
    (void)aux;
    (void)w;
    float l, g;
    if (mode < 2) {
        const int big = x > 88.0f;
        const float h = fl_exp_any(big ? 0.5f * x : x);
        const float e = big ? h * h : h;
        l = e - y * x;
        g = e - y;
    } else {
        const float v = x + k->eps;
        l = x - y * fl_log_any(v);
        g = 1.0f - y / v;
    }
    if (mode == 1 || mode == 3) {
        const float ly = fl_log_pos(y > 1.0f ? y : 2.0f);
        const float st = y * ly - y + 0.5f * (1.83787706641f + ly);   /* ln(2 pi) */
        l = l + (y > 1.0f ? st : (y != y ? y : 0.0f));
    }
    *loss = l;
    *grad = g * s;
}

#endif /* FL_ELEMENTWISE_REGRESSION_H */
