/*
 * fastloss.h -- the public C API of fastloss.
 *
 * Fused loss + gradient kernels over float32 arrays. Every entry point has the
 * same shape:
 *
 *     status = fl_<loss>_f32(const inputs..., sizes (int64_t)...,
 *                            const fl_<loss>_options *opts, const fl_outputs *out,
 *                            n_threads[, error info]);
 *
 * The options of a loss travel in its own typed struct (generated from the
 * loss's declaration in fastloss/_spec/ into generated/fl_losses.h, except
 * cross-entropy's fl_ce_options below); what to compute and where to put it
 * travels in fl_outputs, the same for every loss. One call computes whatever
 * outputs are non-NULL, so "forward", "backward" and "fused forward+backward"
 * are the same kernel with different outputs.
 *
 * Upstream gradient: a scalar `grad_scale` always, times an optional per-sample
 * array `grad_per_sample` (reduction NONE only; NULL means all ones). For MEAN the
 * kernel divides by the mean's denominator itself.
 *
 * Preconditions: sizes are >= 0, n_threads >= 1, every non-NULL pointer
 * holds the number of elements its comment states, aligned for its type,
 * options are in their documented ranges, and no output overlaps another
 * argument (but grad_out may equal the input). The Python layer
 * (fastloss/_validate.py) guarantees all of this; the C checks only what only
 * it can see while it computes: class targets out of range (FL_ERR_TARGET).
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
    FL_ERR_NOMEM = 2,    /* could not allocate per-block partial sums or scratch */
    FL_ERR_ARG = 3       /* fl_set_isa: an unknown or unsupported instruction set */
};

/* What to compute, and where: the same for every loss. */
typedef struct {
    int reduction;                  /* FL_REDUCTION_* */
    float grad_scale;               /* the upstream scalar gradient */
    const float *grad_per_sample;   /* IN  per-sample upstream gradient, or NULL (NONE only) */
    float *loss_out;                /* OUT per-sample losses, or NULL (NONE only) */
    double *loss_reduced;           /* OUT the reduced loss in double, or NULL (MEAN/SUM only) */
    float *grad_out;                /* OUT d(loss)/d(input) times the upstream gradient, or
                                       NULL; may be the input itself (in-place gradient) */
} fl_outputs;

/*
 * A weight broadcast over the flattened input with a period P: element i
 * uses w[i % P]. That covers a scalar (P = 1), a weight along the trailing
 * axes (P = their size, e.g. per class along the last axis) and a full-shape
 * weight (P = n); other broadcasts are materialised by the caller. w = NULL:
 * no weight.
 */
typedef struct {
    const float *w;     /* IN (period,) or NULL */
    int64_t period;     /* >= 1 when w is set */
} fl_weight;

/* Options of cross-entropy (zeros: the defaults). */
typedef struct {
    const float *weight;     /* IN  (c,) class weights w, or NULL (all 1) */
    int64_t ignore_index;    /* samples whose target equals it contribute nothing */
    float label_smoothing;   /* eps in [0, 1] */
    float z_loss;            /* coefficient z of lse^2 (PaLM's auxiliary loss), >= 0 */
    float *lse_out;          /* OUT per-sample log-sum-exp (NaN for ignored samples), or NULL */
    int8_t *correct_out;     /* OUT per-sample 1 where argmax == target (first max, as
                                torch.argmax; samples with NaN count 0), or NULL */
} fl_ce_options;

/*
 * Softmax cross-entropy over logits x (n, c, d), row-major, with class targets
 * t (n, d): d is the product of PyTorch's trailing dimensions d1..dk (d = 1
 * for plain (N, C) logits), and sample (i, p) has the classes x[i, :, p], d
 * apart.
 *
 *   lse  = m + log(sum_j exp(x_j - m)),  m = max_j x_j       (log-sum-exp, max subtracted)
 *   loss = (1-eps) w_t (lse - x_t) + eps sum_c w_c (lse - x_c) / C + z lse^2
 *          (0 for ignored samples; w = 1 without weights; PyTorch's label
 *          smoothing with weights inside the sum, and PaLM's z-loss)
 *   grad_j = s * d loss / d x_j                               (0 for ignored samples)
 *
 * where s = grad_scale * grad_per_sample[i] (or grad_scale), and for MEAN
 * s = grad_scale / D with D = sum of w_t over samples whose t != ignore_index
 * (their number without weights), as in PyTorch. MEAN over D = 0 is NaN, and
 * d == 0 (a zero-size trailing dimension) is an empty problem.
 *
 * Strategies (src/cross_entropy/, one file each, chosen from the shape only):
 * long rows one at a time (rows.c), short rows C <= 16 in transposed tiles
 * (tiles.c), K-dimensional input in place across positions (kdim.c), and
 * few long rows cut into chunks (split.c). NaN anywhere in a sample makes its
 * loss and gradient NaN; a sample of only -inf gives NaN, as in PyTorch.
 *
 *   x        IN   (n, c, d) float32
 *   target   IN   (n, d) int64
 *   opts     IN   fl_ce_options (lse_out and correct_out are (n, d))
 *   out      IN   fl_outputs: per-sample arrays are (n, d), grad_out (n, c, d)
 *   bad_row  OUT  on FL_ERR_TARGET, the smallest flat sample index whose
 *                 target is out of range
 *
 * Out-of-range targets are detected inside the main pass: the offending
 * samples are skipped (their gradient zeroed) and FL_ERR_TARGET returned;
 * other outputs are then unspecified.
 */
int fl_cross_entropy_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t d, const fl_ce_options *opts, const fl_outputs *out,
                         int n_threads, int64_t *bad_row);

/*
 * Cross-entropy with probability ("soft") targets y of the input's shape
 * (n, c, d), c >= 1:
 *
 *   y'_j = (1 - eps) y_j + eps / C                      (label smoothing)
 *   loss = -sum_j w_j y'_j log softmax(x)_j + z lse^2
 *   grad_j = s [ softmax(x)_j (sum_c w_c y'_c + 2 z lse) - w_j y'_j ]
 *
 * MEAN divides by n * d (PyTorch: the number of samples, weights or not).
 * opts->ignore_index and opts->correct_out are not used. Sums are shifted by
 * the row max, so no term cancels. Per-sample arrays are (n, d).
 */
int fl_cross_entropy_soft_f32(const float *x, const float *y, int64_t n, int64_t c, int64_t d,
                              const fl_ce_options *opts, const fl_outputs *out,
                              int n_threads);

/* Options of nll_loss (zeros: no weight, ignore_index 0). */
typedef struct {
    const float *weight;     /* IN  (c,) class weights w, or NULL (all 1) */
    int64_t ignore_index;    /* samples whose target equals it contribute nothing */
} fl_nll_options;

/*
 * Negative log-likelihood over log-probabilities x (n, c, d), row-major, with
 * class targets t (n, d), laid out as for fl_cross_entropy_f32:
 *
 *   loss = -w_t x[i, t, p]           (0 for ignored samples; w = 1 without weights)
 *   grad = -w_t s at [i, t, p], 0 elsewhere (the whole gradient is written)
 *
 * with s as for cross-entropy: grad_scale (times grad_per_sample[i, p] for
 * NONE), and for MEAN divided by D = sum of w_t over samples whose
 * t != ignore_index, as in PyTorch (MEAN over D = 0 is NaN). It reads one
 * element of x per sample; big gradients of long rows are written with
 * streaming stores (nll/nll.c). grad_out may equal x.
 *
 *   x        IN   (n, c, d) float32
 *   target   IN   (n, d) int64
 *   opts     IN   fl_nll_options
 *   out      IN   fl_outputs: per-sample arrays are (n, d), grad_out (n, c, d)
 *   bad_row  OUT  on FL_ERR_TARGET, the smallest flat sample index whose
 *                 target is out of range (other outputs are then unspecified)
 */
int fl_nll_loss_f32(const float *x, const int64_t *target, int64_t n, int64_t c, int64_t d,
                    const fl_nll_options *opts, const fl_outputs *out, int n_threads,
                    int64_t *bad_row);

/* The elementwise losses (BCE with logits, focal, MSE, L1, Huber, smooth
 * L1, ...): their options structs and entry points, one per loss,
 *
 *   int fl_<loss>_f32(const float *input, const float *target, int64_t n,
 *                     const fl_<loss>_options *opts, const fl_outputs *out,
 *                     int n_threads);
 *
 * over n elements of any shape, flattened. Their formulas: the closed forms
 * in src/elementwise/<family>.h. */
#include "generated/fl_losses.h"

/*
 * Threads under contention (runtime.c): a parallel call whose calling thread
 * waited at the end longer than half its own work (another thread of the team
 * started late) makes the next calls run on the calling thread for a while
 * (50 ms, doubling per further stall up to 2 s). fl_set_adaptive_threads(0)
 * turns this off (every call then uses the threads it is given) and forgets
 * the past stalls.
 * fl_thread_policy_update(now, work, wait) is the rule itself: it records one
 * parallel call that ended at `now` (omp_get_wtime seconds) after the calling
 * thread worked `work` seconds and then waited `wait`; returns 1 if it counted
 * as stalled. fl_thread_policy_serial_until() is the time until which calls
 * run serially. Results never depend on any of this.
 */
void fl_set_adaptive_threads(int on);
int fl_thread_policy_update(double now, double work, double wait);
double fl_thread_policy_serial_until(void);
int fl_thread_policy_enabled(void);

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
