/*
 * embedding/embedding.h -- losses over pairs and triples of embedding rows:
 * cosine_embedding_loss and triplet_margin_loss (src/embedding/embedding.c).
 *
 * Inputs are float32 (n, d), row-major: n rows (samples) of d elements; one
 * loss value per row. Each loss has several differentiable inputs: its
 * gradients are out->grad_out (d loss / d first input) and the extra OUT
 * arrays below, all (n, d), written together (all NULL, or none NULL). No
 * output may overlap an input (no in-place gradients here).
 *
 * Threads and determinism as everywhere in fastloss: the rows are cut into
 * fixed blocks of about FL_BLOCK_ELEMS elements (the shape alone decides);
 * per row, the dot products are accumulated in double in the vector lanes
 * of the dispatched ISA's copy (omp simd: a fixed order per build); the
 * rows' losses are added in double in row order within a block, and the
 * blocks' partial sums in block order by fl_run_blocks. Results are bitwise
 * the same for any n_threads.
 */
#ifndef FL_EMBEDDING_H
#define FL_EMBEDDING_H

#include <stdint.h>

#include "fastloss.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PyTorch's epsilon added to each squared norm of cosine_embedding_loss. */
#define FL_COSINE_EMBEDDING_EPS 1e-12

typedef struct {
    float margin;       /* any finite value (PyTorch documents [-1, 1]) */
} fl_cosine_embedding_options;

/*
 * Cosine embedding loss of rows x1[i], x2[i] with target codes y[i]:
 *
 *   cos  = <x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))   (PyTorch's eps)
 *   loss = 1 - cos                 for y =  1
 *          max(0, cos - margin)    for y = -1   (NaN stays NaN)
 *          0                       for y =  0   (any other PyTorch target value)
 *   d cos / d x1 = x2 / den - cos x1 / (|x1|^2 + 1e-12),  den = the sqrt above
 *   (and symmetrically for x2); the gradient of max(0, v) is 1 for v >= 0
 *   (PyTorch's clamp_min at the tie), 0 below.
 *
 * The sums (<x1, x2>, |x1|^2, |x2|^2) and the per-row coefficients are in
 * double, so nothing overflows for any finite float32 input; a zero row
 * gives cos = 0 (loss 1 for y = 1) and a finite gradient, as in PyTorch.
 * MEAN divides by n (NaN for n = 0).
 *
 *   x1, x2     IN   (n, d) float32
 *   target     IN   (n,) int8: 1, -1 or 0 (the Python layer maps PyTorch's
 *                   target: == 1, == -1, anything else)
 *   opts       IN   fl_cosine_embedding_options
 *   out        IN   fl_outputs: per-sample arrays (n,), grad_out d loss / d x1 (n, d)
 *   grad2_out  OUT  (n, d) d loss / d x2, or NULL (exactly when out->grad_out is)
 */
int fl_cosine_embedding_loss_f32(const float *x1, const float *x2, const int8_t *target,
                                 int64_t n, int64_t d,
                                 const fl_cosine_embedding_options *opts,
                                 const fl_outputs *out, float *grad2_out, int n_threads);

typedef struct {
    float margin;       /* > 0 (PyTorch's check) */
    float eps;          /* added to each difference (torch.pairwise_distance) */
    int p;              /* the norm: 1 or 2 */
    int swap;           /* 1: the negative distance is min(d(a, n), d(p, n)) */
} fl_triplet_margin_options;

/*
 * Triplet margin loss of anchor a[i], positive p[i], negative n[i]:
 *
 *   dist(u, v) = || u - v + eps ||_p               (p = 1 or 2; eps added to
 *                                                   each difference, as torch)
 *   dneg = dist(a, n), or with swap min(dist(a, n), dist(p, n))
 *   L    = margin + dist(a, p) - dneg;  loss = max(L, 0)   (NaN stays NaN)
 *
 * Gradients (g = s for L >= 0: PyTorch's clamp_min passes the tie; 0 below):
 * with u(v) = v / ||v||_2 (0 at v = 0, PyTorch's masked norm backward) for
 * p = 2 and sign(v) (sign(NaN) = NaN) for p = 1,
 *   grad_a = g (u_ap - wa u_an),  grad_p = -g (u_ap + wp u_pn),
 *   grad_n = g (wa u_an + wp u_pn),
 * where (wa, wp) = (1, 0) without swap; with swap (1, 0) when dist(a, n) <
 * dist(p, n), (0, 1) when greater, (1/2, 1/2) at the tie (torch.minimum's
 * backward splits it) or when either is NaN. Differences, sums and
 * coefficients are in double: no overflow for finite float32 inputs.
 * MEAN divides by n (NaN for n = 0).
 *
 *   anchor, positive, negative  IN   (n, d) float32
 *   opts       IN   fl_triplet_margin_options
 *   out        IN   fl_outputs: per-sample arrays (n,), grad_out d loss / d anchor
 *   grad_positive_out, grad_negative_out
 *              OUT  (n, d) each, or NULL (exactly when out->grad_out is)
 */
int fl_triplet_margin_loss_f32(const float *anchor, const float *positive,
                               const float *negative, int64_t n, int64_t d,
                               const fl_triplet_margin_options *opts, const fl_outputs *out,
                               float *grad_positive_out, float *grad_negative_out,
                               int n_threads);

#ifdef __cplusplus
}
#endif

#endif /* FL_EMBEDDING_H */
