/*
 * fastloss.h -- the public C API of fastloss.
 *
 * Fused loss + gradient kernels over float32 arrays. Every entry point has the
 * same shape:
 *
 *     status = fl_<loss>_f32(const inputs..., sizes (int64_t)..., scalar options...,
 *                            outputs (NULL = not wanted)..., n_threads, [error info]);
 *
 * One call computes whatever outputs are non-NULL, so "forward", "backward"
 * and "fused forward+backward" are the same kernel with different outputs:
 *
 *   loss_out      OUT  per-sample losses (reduction FL_REDUCTION_NONE only), or NULL.
 *   loss_reduced  OUT  the reduced loss in double (FL_REDUCTION_MEAN / _SUM), or NULL.
 *   grad_out      OUT  d(loss)/d(input) times the upstream gradient, or NULL. May be
 *                      the same pointer as `input` (in-place gradient); must not
 *                      overlap any other argument.
 *
 * Upstream gradient: a scalar `grad_scale` always, times an optional per-sample
 * array `grad_per_sample` (reduction NONE only; NULL means all ones). For MEAN the
 * kernel divides by the mean's denominator itself.
 *
 * Threading and determinism: the work is cut into fixed blocks whose size depends
 * only on the shape (never on the thread count). Each block accumulates its part
 * of the reduction in double, in index order; the blocks' partial sums are then
 * added serially in block order. Results are therefore bitwise identical for any
 * n_threads on a given dispatch path. Inputs too small to be worth a thread-pool
 * wake-up (see FL_PARALLEL_MIN_ELEMS) run on the calling thread with no OpenMP call.
 * The kernels never touch Python objects: call them without the GIL.
 *
 * All sizes and indices are int64_t: N*C may exceed 2^31.
 */
#ifndef FASTLOSS_H
#define FASTLOSS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reductions, with PyTorch's meaning. */
enum {
    FL_REDUCTION_NONE = 0,
    FL_REDUCTION_MEAN = 1,
    FL_REDUCTION_SUM = 2
};

/* Status codes. */
enum {
    FL_OK = 0,
    FL_ERR_TARGET = 1,   /* a class target outside [0, C) that is not ignore_index */
    FL_ERR_NOMEM = 2,    /* could not allocate the per-block partial sums */
    FL_ERR_ARG = 3       /* an invalid size, reduction or pointer combination */
};

/* Options of fl_cross_entropy_f32; a NULL pointer means all defaults (zeros). */
typedef struct {
    const float *weight;     /* IN  (c,) class weights w, or NULL (all 1) */
    float label_smoothing;   /* eps in [0, 1] */
    float z_loss;            /* coefficient z of lse^2 (PaLM's auxiliary loss) */
    float *lse_out;          /* OUT (n,) per-row log-sum-exp (NaN for ignored rows), or NULL */
    int8_t *correct_out;     /* OUT (n,) 1 where argmax == target (first max, as
                                torch.argmax; rows with NaN count 0), or NULL */
} fl_ce_options;

/*
 * Softmax cross-entropy over logits x (N, C), row-major, with class targets t (N,).
 *
 *   lse_i  = m_i + log(sum_j exp(x_ij - m_i)),  m_i = max_j x_ij   (log-sum-exp, max subtracted)
 *   loss_i = (1-eps) w_t (lse_i - x_{i,t}) + eps sum_c w_c (lse_i - x_ic) / C + z lse_i^2
 *            (0 for ignored rows; w = 1 without weights; PyTorch's label
 *            smoothing with weights inside the sum, and PaLM's z-loss)
 *   grad_ij = s_i * d loss_i / d x_ij                              (0 for ignored rows)
 *
 * where s_i = grad_scale * grad_per_sample[i] (or grad_scale), and for MEAN
 * s_i = grad_scale / D with D = sum of w_{t_i} over rows whose t_i != ignore_index
 * (their number without weights), as in PyTorch. MEAN over D = 0 is NaN.
 *
 * Per row: one pass finds the maximum, one pass computes exp(x - m) into the
 * gradient row (used as scratch) while summing in double, one pass scales it
 * in place (the row is in cache by then). Forward-only skips the stores.
 * NaN anywhere in a row makes its loss and gradient NaN.
 *
 *   x               IN   (n, c) float32
 *   target          IN   (n,) int64
 *   n, c                 sizes, n >= 0, c >= 0
 *   ignore_index         rows whose target equals it contribute nothing
 *   reduction            FL_REDUCTION_*
 *   grad_scale           upstream scalar gradient
 *   opts            IN   fl_ce_options, or NULL for the defaults
 *   grad_per_sample IN   (n,) float32 upstream gradient per row, or NULL (NONE only)
 *   loss_out        OUT  (n,) float32 per-row losses, or NULL (NONE only)
 *   loss_reduced    OUT  scalar double, or NULL (MEAN/SUM only)
 *   grad_out        OUT  (n, c) float32, or NULL; may equal x
 *   n_threads            >= 1
 *   bad_row         OUT  on FL_ERR_TARGET, the smallest row whose target is out of range
 *
 * Out-of-range targets are detected inside the main pass: the offending rows are
 * skipped (their gradient row zeroed) and FL_ERR_TARGET returned; other outputs
 * are then unspecified.
 */
int fl_cross_entropy_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t ignore_index, int reduction, float grad_scale,
                         const fl_ce_options *opts, const float *grad_per_sample,
                         float *loss_out, double *loss_reduced, float *grad_out,
                         int n_threads, int64_t *bad_row);

/*
 * The same over K-dimensional input x (n, c, d), row-major, where d is the
 * product of the trailing dimensions d1..dk (PyTorch's (N, C, d1, ..., dk)),
 * with targets (n, d): sample (i, p) has the classes x[i, :, p], d apart.
 * Computed in place, vectorised across positions, without transposing the
 * input; every per-sample array (targets, grad_per_sample, loss_out, lse_out,
 * correct_out) is (n, d) and bad_row is a flat index into it. d == 1 is
 * fl_cross_entropy_f32; d == 0 (a zero-size trailing dimension) is an empty
 * problem: MEAN gives NaN (0 / 0), SUM 0, as in PyTorch.
 */
int fl_cross_entropy_kdim_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                              int64_t d, int64_t ignore_index, int reduction, float grad_scale,
                              const fl_ce_options *opts, const float *grad_per_sample,
                              float *loss_out, double *loss_reduced, float *grad_out,
                              int n_threads, int64_t *bad_row);

/*
 * Options of the elementwise losses; a NULL pointer means all defaults.
 * A weight is broadcast over the flattened input with a period P: element i
 * uses w[i % P]. That covers a scalar (P = 1), a weight along the trailing
 * axes (P = their size, e.g. per class along the last axis) and a full-shape
 * weight (P = n); other broadcasts are materialised by the caller.
 */
typedef struct {
    const float *weight;        /* IN (weight_period,) or NULL */
    int64_t weight_period;
    const float *pos_weight;    /* IN (pos_weight_period,) or NULL (BCE only) */
    int64_t pos_weight_period;
} fl_elem_options;

/*
 * Binary cross-entropy with logits, elementwise over n elements (any shape, flattened).
 *
 *   loss_i = w_i [ (x_i > 0 ? x_i (1 - y_i) : -x_i y_i p_i) + l_i log1p(exp(-|x_i|)) ]
 *   l_i = 1 + (p_i - 1) y_i       (p = pos_weight, 1 without)
 *   grad_i = s_i w_i [ (1 - y_i) - l_i sigmoid(-x_i) ]   (= sigmoid(x_i) - y_i for p = 1)
 *
 * This is PyTorch's (1 - y) x + l (log1p(exp(-|x|)) + max(-x, 0)) written so
 * that neither branch cancels (x (1 - y) for x > 0, where 1 - y is exact for
 * y in [1/2, 1]; -x y p otherwise), and exp never sees a positive argument;
 * sigmoid(x) = 1/(1+e) for x >= 0 and e/(1+e) otherwise, with the same
 * e = exp(-|x|) and one division. MEAN divides by n (NaN for n == 0), weights
 * or not, as in PyTorch.
 *
 *   x, y            IN   (n,) float32 logits and targets
 *   opts            IN   weight (any period), pos_weight (period = last axis), or NULL
 *   grad_per_sample IN   (n,) float32 upstream gradient, or NULL (NONE only)
 *   loss_out        OUT  (n,) float32, or NULL;  loss_reduced OUT double, or NULL
 *   grad_out        OUT  (n,) float32, or NULL; may equal x
 */
int fl_bce_logits_f32(const float *x, const float *y, int64_t n, int reduction,
                      float grad_scale, const fl_elem_options *opts,
                      const float *grad_per_sample, float *loss_out, double *loss_reduced,
                      float *grad_out, int n_threads);

/*
 * Sigmoid focal loss (Lin et al. 2017, torchvision.ops.sigmoid_focal_loss):
 *
 *   p = sigmoid(x), ce = BCE-with-logits(x, y), q = 1 - p_t = p (1 - y) + (1 - p) y
 *   loss = a_t ce q^gamma,  a_t = alpha y + (1 - alpha)(1 - y)  (a_t = 1 when alpha < 0)
 *   grad = s a_t [ (p - y) q^gamma + gamma ce q^(gamma - 1) p (1 - p)(1 - 2y) ]
 *
 * p and 1 - p both come from e = exp(-|x|) without cancellation; q^gamma is
 * q*q for gamma = 2, q for 1, 1 for 0, and exp(gamma log q) otherwise.
 * MEAN divides by n. Arguments as for fl_bce_logits_f32 (opts ignored).
 */
int fl_sigmoid_focal_f32(const float *x, const float *y, int64_t n, int reduction,
                         float grad_scale, float alpha, float gamma,
                         const float *grad_per_sample, float *loss_out, double *loss_reduced,
                         float *grad_out, int n_threads);

/*
 * Regression losses, elementwise, with d = x - y and an optional weight w
 * (opts->weight; 1 without). MEAN divides by n without a weight; with one,
 * mse and l1 divide by the sum of the broadcast weight and huber by n, as
 * PyTorch 2.13 does.
 *
 *   mse:        loss = w d^2,                         grad = s w 2d
 *   l1:         loss = w |d|,                         grad = s w sign(d)  (sign(0) = 0)
 *   huber:      loss = w (|d| < delta ? d^2/2 : delta (|d| - delta/2)),
 *               grad = s w clamp(d, -delta, delta)
 *   smooth_l1:  loss = |d| < beta ? d^2 / (2 beta) : |d| - beta/2,
 *               grad = s clamp(d / beta, -1, 1); beta = 0 is l1 (no weight, as in PyTorch)
 *
 * NaN in x or y gives NaN in loss and gradient.
 */
int fl_mse_f32(const float *x, const float *y, int64_t n, int reduction, float grad_scale,
               const fl_elem_options *opts, const float *grad_per_sample, float *loss_out,
               double *loss_reduced, float *grad_out, int n_threads);
int fl_l1_f32(const float *x, const float *y, int64_t n, int reduction, float grad_scale,
              const fl_elem_options *opts, const float *grad_per_sample, float *loss_out,
              double *loss_reduced, float *grad_out, int n_threads);
int fl_huber_f32(const float *x, const float *y, int64_t n, int reduction, float grad_scale,
                 float delta, const fl_elem_options *opts, const float *grad_per_sample,
                 float *loss_out, double *loss_reduced, float *grad_out, int n_threads);
int fl_smooth_l1_f32(const float *x, const float *y, int64_t n, int reduction,
                     float grad_scale, float beta, const float *grad_per_sample,
                     float *loss_out, double *loss_reduced, float *grad_out, int n_threads);

/*
 * Cross-entropy with probability ("soft") targets y of the input's shape,
 * (n, c) or (n, c, d) as for fl_cross_entropy_kdim_f32 (d = 1 for rows):
 *
 *   y'_j = (1 - eps) y_j + eps / C                      (label smoothing)
 *   loss = -sum_j w_j y'_j log softmax(x)_j + z lse^2
 *   grad_j = s [ softmax(x)_j (sum_c w_c y'_c + 2 z lse) - w_j y'_j ]
 *
 * MEAN divides by n * d (PyTorch: the number of samples, weights or not).
 * No ignore_index; opts->correct_out must be NULL. Sums are shifted by the
 * row max, so no term cancels. Per-sample arrays are (n, d).
 */
int fl_cross_entropy_soft_f32(const float *x, const float *y, int64_t n, int64_t c, int64_t d,
                              int reduction, float grad_scale, const fl_ce_options *opts,
                              const float *grad_per_sample, float *loss_out,
                              double *loss_reduced, float *grad_out, int n_threads);

/* 1 when the library was compiled with OpenMP, 0 when it runs serially. */
int fl_openmp_enabled(void);

/* Threads the OpenMP runtime would use by default (1 without OpenMP). */
int fl_omp_max_threads(void);

/*
 * Runtime dispatch. The library carries one copy of the hot loops per
 * instruction set it was compiled for and picks the best one the CPU supports
 * on first use. fl_set_isa("baseline" | "avx2" | "avx512" | "auto") forces a
 * path: returns FL_OK, or FL_ERR_ARG when that path is unknown, not compiled
 * in, or not supported by this CPU. fl_isa_name() names the path in use.
 * fl_isa_available(name) says whether fl_set_isa(name) would succeed.
 */
int fl_set_isa(const char *name);
const char *fl_isa_name(void);
int fl_isa_available(const char *name);

/*
 * Test hook: out[i] = f(in[i]) for the dispatched path's inline math, with
 * which = 0: exp(x) for x <= 0; 1: log1p(u) for u in [0, 1]; 2: log(s), s > 0 normal.
 */
void fl_math_eval_f32(int which, const float *in, float *out, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* FASTLOSS_H */
