/*
 * elementwise/binary.h -- closed forms of BCE with logits, the sigmoid focal loss,
 * the soft margin loss, BCE on probabilities, the hinge embedding loss, and the KL
 * divergence (a loss against probability targets, like BCE).
 *
 * With e = exp(-|x|) in (0, 1] and r = 1 / (1 + e) (the one division):
 *   sigmoid(x)  = x >= 0 ? r : e r,   sigmoid(-x) = x >= 0 ? e r : r
 *   softplus(-x) - max(-x, 0) = log1p(e)
 * exp only ever sees -|x| <= 0, so nothing overflows for any finite logit.
 * NaN in x or y gives NaN in loss and gradient. (Calling convention:
 * elementwise.h.)
 */
#ifndef FL_ELEMENTWISE_BINARY_H
#define FL_ELEMENTWISE_BINARY_H

#include <float.h>
#include <math.h>

#include "elementwise/elementwise.h"

/*
 * BCE with logits, p = pos_weight (aux; 1 without), l = 1 + (p - 1) y:
 *
 *   loss = w [ (x > 0 ? x (1 - y) : -x y p) + l log1p(exp(-|x|)) ]
 *   grad = s w [ (1 - y) - l sigmoid(-x) ]   (= sigmoid(x) - y for p = 1)
 *
 * This is PyTorch's (1 - y) x + l (log1p(exp(-|x|)) + max(-x, 0)) written so
 * that neither branch cancels: for x > 0, x - x y loses digits when y is near
 * 1 while x (1 - y) does not (1 - y is exact for y in [1/2, 1]); for x <= 0
 * the max term is 0. It also keeps x = +inf, y = 0 at +inf rather than
 * inf - inf. MEAN divides by n, weights or not, as in PyTorch.
 */
FL_INLINE void fl_bce_with_logits_forms(const fl_bce_with_logits_options *o, const int mode,
                                        float x, float y, const float *pos_weight, float w,
                                        float s, float *loss, float *grad)
{
    (void)o;
    (void)mode;
    const float e = fl_exp_nonpos(-fabsf(x));
    const float r = 1.0f / (1.0f + e);
    const float p = pos_weight ? *pos_weight : 1.0f;
    const float lw = pos_weight ? 1.0f + (p - 1.0f) * y : 1.0f;
    *loss = ((x > 0.0f ? x * (1.0f - y) : -x * y * p) + lw * fl_log1p_unit(e)) * w;
    const float g = pos_weight ? (1.0f - y) - lw * (x >= 0.0f ? e * r : r)
                               : (x >= 0.0f ? r : e * r) - y;
    *grad = g * w * s;
}

/*
 * Sigmoid focal loss (Lin et al. 2017, torchvision.ops.sigmoid_focal_loss):
 *
 *   p = sigmoid(x), ce = BCE-with-logits(x, y), q = 1 - p_t = p (1 - y) + (1 - p) y
 *   loss = a_t ce q^gamma,  a_t = alpha y + (1 - alpha)(1 - y)  (a_t = 1 when alpha < 0)
 *   grad = s a_t [ (p - y) q^gamma + gamma ce q^(gamma - 1) p (1 - p)(1 - 2y) ]
 *
 * p and 1 - p both come from e = exp(-|x|) without cancellation; q^gamma is
 * exp(gamma log q). q lies in [0, 1] for y in [0, 1]. A target outside
 * [0, 1] can make q negative; torchvision's formula then takes pow(q, gamma)
 * as torch.pow does: |q|^gamma times (-1)^gamma for an integral gamma, NaN
 * otherwise (q_sign). The focusing term of the gradient multiplies ce by
 * p (1 - p) first: at |x| near FLT_MAX, ce is huge while p (1 - p) is 0, and
 * their product is the term's true limit, 0. No weight; MEAN divides by n.
 */
typedef struct {
    float alpha, gamma;
    float q_sign;   /* pow(q, gamma) = q_sign |q|^gamma for q < 0 */
} fl_sigmoid_focal_k;

FL_INLINE fl_sigmoid_focal_k fl_sigmoid_focal_setup(const fl_sigmoid_focal_options *o, int *mode)
{
    fl_sigmoid_focal_k k;
    k.alpha = o->alpha;
    k.gamma = o->gamma;
    k.q_sign = o->gamma != floorf(o->gamma) ? NAN
               : fmodf(o->gamma, 2.0f) == 1.0f ? -1.0f : 1.0f;
    *mode = 0;
    return k;
}

FL_INLINE void fl_sigmoid_focal_forms(const fl_sigmoid_focal_k *k, const int mode, float x,
                                      float y, const float *aux, float w, float s, float *loss,
                                      float *grad)
{
    const float alpha = k->alpha, gamma = k->gamma, q_sign = k->q_sign;
    (void)mode;
    (void)aux;
    (void)w;
    const float e = fl_exp_nonpos(-fabsf(x));
    const float r = 1.0f / (1.0f + e);
    const float p = x >= 0.0f ? r : e * r;       /* sigmoid(x) */
    const float p1 = x >= 0.0f ? e * r : r;      /* 1 - sigmoid(x), no cancellation */
    const float ce = (x > 0.0f ? x * (1.0f - y) : -x * y) + fl_log1p_unit(e);
    const float q = p * (1.0f - y) + p1 * y;     /* 1 - p_t */
    const float aq = fabsf(q);
    const float lq = fl_log_pos(aq > FLT_MIN ? aq : FLT_MIN);
    const float sg = q < 0.0f ? q_sign : 1.0f;   /* pow(q, gamma - 1) has the opposite sign */
    const float qg = sg * fl_exp_any(gamma * lq);      /* q^gamma */
    const float at = alpha >= 0.0f ? alpha * y + (1.0f - alpha) * (1.0f - y) : 1.0f;
    *loss = at * ce * qg;
    const float qg1 = (q < 0.0f ? -sg : 1.0f) * fl_exp_any((gamma - 1.0f) * lq); /* q^(gamma-1) */
    const float g = at * ((p - y) * qg + gamma * (ce * (p * p1)) * qg1 * (1.0f - 2.0f * y));
    *grad = g * s;
}

/*
 * Soft margin loss (torch.nn.functional.soft_margin_loss), with z = -y x:
 *
 *   loss = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))
 *   grad = s (-y) sigmoid(z)
 *
 * PyTorch computes log(1 + exp(z)) as written, which is +inf once exp(z)
 * overflows (z > 88.7) and its gradient NaN (inf / inf) there; the log-space
 * form is finite and exact for every finite z (z itself overflows only when
 * |y x| > FLT_MAX, and then the true loss exceeds FLT_MAX too). The sigmoid
 * comes from e = exp(-|z|) and r = 1 / (1 + e) without cancellation, as in
 * BCE with logits. A zero gradient is +0 (the + 0.0f), so that a label of
 * -0 gives the bits of a label of 0. NaN in x or y gives NaN. No weight;
 * MEAN divides by n.
 */
FL_INLINE void fl_soft_margin_forms(const fl_soft_margin_options *o, const int mode, float x,
                                    float y, const float *aux, float w, float s, float *loss,
                                    float *grad)
{
    (void)o;
    (void)mode;
    (void)aux;
    (void)w;
    const float z = -y * x;
    const float e = fl_exp_nonpos(-fabsf(z));
    const float r = 1.0f / (1.0f + e);
    *loss = (z > 0.0f ? z : 0.0f) + fl_log1p_unit(e);
    *grad = -y * (z >= 0.0f ? r : e * r) * s + 0.0f;
}

/*
 * Binary cross-entropy on probabilities (torch.nn.functional.binary_cross_entropy),
 * x and y in [0, 1] (the Python layer checks both, as PyTorch does):
 *
 *   loss = w [ (y - 1) max(log(1 - x), -100) - y max(log(x), -100) ]
 *   grad = s w (x - y) / max(x (1 - x), 1e-12)
 *
 * exactly PyTorch 2.13's forms (aten/src/ATen/native/Loss.cpp: each log
 * clamped at -100, and a gradient that is not the derivative of the clamped
 * loss but (x - y) over the clamped variance). log(x) of a subnormal x is
 * log(2^24 x) - 24 ln 2 (fl_log_pos takes normal numbers); log(1 - x) is
 * log1p(-x) to float32 accuracy for small x: v = 1 - x is rounded, its error
 * c = (1 - v) - x is exact (Sterbenz), and log(1 - x) = log(v) + c / v. x = 0
 * or v = 0 (x = 1) select -100 directly. NaN in x or y gives NaN. MEAN
 * divides by n, weights or not, as in PyTorch.
 */
FL_INLINE void fl_bce_forms(const fl_bce_options *o, const int mode, float x, float y,
                            const float *aux, float w, float s, float *loss, float *grad)
{
    (void)o;
    (void)mode;
    (void)aux;
    const int sub = x < FLT_MIN;
    const float lx = fl_log_pos(sub ? x * 16777216.0f : x) - (sub ? 16.63553233f : 0.0f);
    const float l0 = x == 0.0f ? -100.0f : (lx < -100.0f ? -100.0f : lx);
    const float v = 1.0f - x;
    const float c = (1.0f - v) - x;
    const float lv = fl_log_pos(v) + c / v;
    const float l1 = v == 0.0f ? -100.0f : (lv < -100.0f ? -100.0f : lv);
    *loss = ((y - 1.0f) * l1 - y * l0) * w;
    const float d = x * v;
    *grad = (x - y) / (d > 1e-12f ? d : 1e-12f) * w * s;
}

/*
 * Hinge embedding loss (torch.nn.functional.hinge_embedding_loss), z = margin - x:
 *
 *   loss = (y != 1 ? max(z, 0) : 0) + (y != -1 ? x : 0)
 *   grad = s [ (y != -1 ? 1 : 0) - (y != 1 and z >= 0 ? 1 : 0) ]
 *
 * PyTorch's form, which treats any label other than 1 and -1 as both: x for
 * y = 1, the hinge for y = -1. At the tie z = 0 the gradient is -1, as
 * PyTorch's clamp_min passes it. NaN in x or y gives NaN in the loss and the
 * gradient (the house rule; PyTorch's masks turn a NaN label into "both terms"
 * and drop a NaN input from the gradient). No weight; MEAN divides by n.
 */
FL_INLINE void fl_hinge_embedding_forms(const fl_hinge_embedding_options *o, const int mode,
                                        float x, float y, const float *aux, float w, float s,
                                        float *loss, float *grad)
{
    (void)mode;
    (void)aux;
    (void)w;
    const float z = o->margin - x;
    const float hinge = z > 0.0f ? z : (z != z ? z : 0.0f);
    const float l = (y != 1.0f ? hinge : 0.0f) + (y != -1.0f ? x : 0.0f);
    *loss = y == y ? l : y;
    const float g = (y != -1.0f ? 1.0f : 0.0f) - (y != 1.0f && z >= 0.0f ? 1.0f : 0.0f);
    *grad = (x == x && y == y ? g : x + y) * s;
}

/*
 * KL divergence (torch.nn.functional.kl_div), x the log-probabilities, t the target:
 *
 *   mode 0 (t probabilities):      loss = xlogy(t, t) - t x,   grad = -t s
 *   mode 1 (log_target, t = log q): loss = exp(t) (t - x),     grad = -exp(t) s
 *
 * as PyTorch 2.13 computes them: xlogy(t, t) is 0 at t = 0, so a target of
 * exactly 0 contributes 0 (but 0 x is NaN for x = -inf, and NaN stays NaN);
 * t < 0 gives NaN. log t of a subnormal t is log(2^24 t) - 24 ln 2. exp(t) is
 * one fl_exp_any, of t / 2 squared above 88 (finite up to float32's overflow).
 * A NaN input gives a NaN gradient (the house rule; PyTorch's -t ignores x).
 * No weight; MEAN divides by n, 'batchmean' (the Python layer) by N.
 */
typedef struct {
    char unused;
} fl_kl_div_k;

FL_INLINE fl_kl_div_k fl_kl_div_setup(const fl_kl_div_options *o, int *mode)
{
    fl_kl_div_k k;
    k.unused = 0;
    *mode = o->log_target ? 1 : 0;
    return k;
}

FL_INLINE void fl_kl_div_forms(const fl_kl_div_k *k, const int mode, float x, float y,
                               const float *aux, float w, float s, float *loss, float *grad)
{
    (void)k;
    (void)aux;
    (void)w;
    if (mode == 0) {
        const int sub = y < FLT_MIN;
        const float ly = fl_log_pos(sub ? y * 16777216.0f : y) - (sub ? 16.63553233f : 0.0f);
        const float xlogy = y > 0.0f ? y * ly : (y == 0.0f ? 0.0f : NAN + y);
        *loss = xlogy - y * x;
        *grad = (x == x ? -y : x) * s;
    } else {
        const int big = y > 88.0f;
        const float h = fl_exp_any(big ? 0.5f * y : y);
        const float e = big ? h * h : h;
        *loss = e * (y - x);
        *grad = (x == x ? -e : x) * s;
    }
}

#endif /* FL_ELEMENTWISE_BINARY_H */
