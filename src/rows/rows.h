/*
 * rows/rows.h -- the row losses: one loss value per row of an (n, c) input.
 *
 * Entry points of src/rows/rows.c, with the calling convention of
 * fastloss.h (fl_outputs, statuses, threads). The input is read as n rows
 * of c classes (the Python layer flattens PyTorch's leading axes into n);
 * per-sample arrays of fl_outputs are (n,), grad_out is (n, c) and may be
 * the input itself. MEAN divides by n, the number of rows, as PyTorch does
 * (MEAN over n = 0 is NaN).
 *
 * Threading and determinism: blocks of whole rows, about FL_BLOCK_ELEMS
 * elements each (at least one row), fixed by the shape; each row's sum is
 * accumulated in a fixed order (8 float lanes flushed into a double every
 * FL_SUM_CHUNK elements), the rows of a block are added in row order and the
 * blocks' partial sums in block order by fl_run_blocks, so results are
 * bitwise identical for any n_threads.
 */
#ifndef FL_ROWS_H
#define FL_ROWS_H

#include <stdint.h>

#include "fastloss.h"

/* Options of multilabel_soft_margin_loss. */
typedef struct {
    const float *weight;   /* IN  (period,) weight, or NULL (all 1): element (i, j) uses
                              weight[(i c + j) % period]; period is a multiple of c */
    int64_t period;
} fl_multilabel_soft_margin_options;

/*
 * Multilabel soft margin loss (torch.nn.functional.multilabel_soft_margin_loss):
 *
 *   loss_i = -(1/c) sum_j w_ij [ y log sigmoid(x) + (1 - y) log sigmoid(-x) ]
 *          =  (1/c) sum_j w_ij [ (x > 0 ? x (1 - y) : -x y) + log1p(exp(-|x|)) ]
 *   grad_ij = s_i w_ij (sigmoid(x) - y) / c
 *
 * the form of BCE with logits (elementwise/binary.h): exp only sees -|x|, so
 * nothing overflows for any finite x. Divided by c, not by the weights' sum.
 *
 *   x, y   IN  (n, c) float32
 *   opts   IN  fl_multilabel_soft_margin_options
 *   out    IN  fl_outputs ((n,) per-sample arrays)
 */
int fl_multilabel_soft_margin_loss_f32(const float *x, const float *y, int64_t n, int64_t c,
                                       const fl_multilabel_soft_margin_options *opts,
                                       const fl_outputs *out, int n_threads);

/* Options of multi_margin_loss. */
typedef struct {
    const float *weight;   /* IN  (c,) class weights, or NULL (all 1) */
    float margin;
    int p;                 /* 1 or 2 */
} fl_multi_margin_options;

/*
 * Multi-class margin loss (torch.nn.functional.multi_margin_loss), target t:
 *
 *   z_j     = margin - x_t + x_j
 *   loss_i  = w_t sum_{j != t, z_j > 0} z_j^p / c
 *   grad_ij = s_i w_t p z_j^(p-1) / c          (j != t, z_j > 0; 0 otherwise)
 *   grad_it = -sum_{j != t} grad_ij
 *
 * The weight stays outside the power, as in PyTorch's kernel. A tie (z = 0)
 * has no gradient. NaN in a row makes its loss NaN (PyTorch's z > 0 test
 * drops NaN terms; here a NaN z counts, so NaN in means NaN out).
 *
 *   x        IN   (n, c) float32, c >= 1
 *   target   IN   (n,) int64 in [0, c)
 *   opts     IN   fl_multi_margin_options
 *   out      IN   fl_outputs ((n,) per-sample arrays)
 *   bad_row  OUT  on FL_ERR_TARGET, the smallest row whose target is out of
 *                 range (the other outputs are then unspecified)
 */
int fl_multi_margin_loss_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                             const fl_multi_margin_options *opts, const fl_outputs *out,
                             int n_threads, int64_t *bad_row);

#endif /* FL_ROWS_H */
