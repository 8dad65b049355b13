# The row losses' bindings (src/rows/rows.h), included by _core.pyx: the
# checks the C relies on, the GIL released around the call, statuses turned
# into exceptions. The Python layer is fastloss/_run.py's runners.

cdef extern from "rows/rows.h" nogil:
    ctypedef struct fl_multilabel_soft_margin_options:
        const float *weight
        int64_t period
    int fl_multilabel_soft_margin_loss_f32(const float *x, const float *y, int64_t n,
                                           int64_t c,
                                           const fl_multilabel_soft_margin_options *opts,
                                           const fl_outputs *out, int n_threads)
    ctypedef struct fl_multi_margin_options:
        const float *weight
        float margin
        int p
    int fl_multi_margin_loss_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                                 const fl_multi_margin_options *opts, const fl_outputs *out,
                                 int n_threads, int64_t *bad_row)


def multilabel_soft_margin_loss(x, y, int64_t n, int64_t c, weight, int64_t period,
                                int reduction, float grad_scale, grad_per_sample, loss_out,
                                grad_out, int n_threads):
    """Scores x and targets y (n, c); weight (period,) with period a multiple
    of c, or None; per-sample arrays are (n,). Returns the reduced loss
    (MEAN/SUM) or None."""
    _check_sizes(n, c, 1, n_threads)
    cdef fl_multilabel_soft_margin_options opts
    if weight is not None and (period < 1 or (c and period % c)):
        raise ValueError(f"weight period {period} is not a positive multiple of c={c}")
    opts.weight = <const float *>_ptr(weight, cnp.NPY_FLOAT32, period, False, "weight")
    opts.period = period
    cdef const float *px = <const float *>_array(x, cnp.NPY_FLOAT32, n * c, False, "input")
    cdef const float *py = <const float *>_array(y, cnp.NPY_FLOAT32, n * c, False, "target")
    if opts.weight != NULL and n * c and (period > n * c or (n * c) % period):
        raise ValueError(f"weight period {period} does not divide n * c = {n * c}")
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, n, n * c, reduction, grad_scale, grad_per_sample, loss_out, grad_out,
             &reduced)
    cdef int status
    with nogil:
        status = fl_multilabel_soft_margin_loss_f32(px, py, n, c, &opts, &out, n_threads)
    _check_status(status)
    return reduced if reduction != 0 else None


def multi_margin_loss(x, target, int64_t n, int64_t c, int p, float margin, weight,
                      int reduction, float grad_scale, grad_per_sample, loss_out, grad_out,
                      int n_threads):
    """Scores x (n, c), class targets (n,) int64, p 1 or 2, weight (c,) or
    None. Returns the reduced loss (MEAN/SUM) or None; raises TargetError on
    a target outside [0, c)."""
    _check_sizes(n, c, 1, n_threads)
    if p != 1 and p != 2:
        raise ValueError(f"p must be 1 or 2, got {p}")
    cdef fl_multi_margin_options opts
    opts.weight = <const float *>_ptr(weight, cnp.NPY_FLOAT32, c, False, "weight")
    opts.margin = margin
    opts.p = p
    cdef const float *px = <const float *>_array(x, cnp.NPY_FLOAT32, n * c, False, "input")
    cdef const int64_t *pt = <const int64_t *>_array(target, cnp.NPY_INT64, n, False, "target")
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, n, n * c, reduction, grad_scale, grad_per_sample, loss_out, grad_out,
             &reduced)
    cdef int64_t bad = -1
    cdef int status
    with nogil:
        status = fl_multi_margin_loss_f32(px, pt, n, c, &opts, &out, n_threads, &bad)
    if status == FL_ERR_TARGET:
        raise TargetError(int(bad), int(pt[bad]), int(c), None)
    _check_status(status)
    return reduced if reduction != 0 else None
