# The pairwise family's bindings (src/pairwise/pairwise.h): losses of several
# float inputs, each with a gradient of its own. Included by _core.pyx (it uses
# its helpers _array, _ptr, _outputs and _check_status). The Python layer
# (fastloss/_pairwise.py) broadcasts the inputs and allocates the outputs.

cdef extern from "pairwise/pairwise.h" nogil:
    ctypedef struct fl_margin_ranking_options:
        float margin
    int fl_margin_ranking_loss_f32(const float *x1, const float *x2, const float *y,
                                   int64_t n, const fl_margin_ranking_options *opts,
                                   const fl_outputs *out, float *grad2_out, int n_threads)
    ctypedef struct fl_gaussian_nll_options:
        int full
        float eps
    int fl_gaussian_nll_loss_f32(const float *x, const float *t, const float *var, int64_t a,
                                 int64_t b, int64_t c, int var_scalar,
                                 const fl_gaussian_nll_options *opts, const fl_outputs *out,
                                 float *grad_var_out, int n_threads)


def margin_ranking_loss(x1, x2, y, float margin, grad2_out, int reduction, float grad_scale,
                        grad_per_sample, loss_out, grad_out, int n_threads):
    """x1, x2, y: float32 arrays of one size n (already broadcast); grad_out is
    d loss / d x1 (may be x1), grad2_out d loss / d x2. Returns the reduced
    loss (MEAN/SUM) or None."""
    cdef int64_t n = _size(x1, "input1")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef const float *p1 = <const float *>_array(x1, cnp.NPY_FLOAT32, n, False, "input1")
    cdef const float *p2 = <const float *>_array(x2, cnp.NPY_FLOAT32, n, False, "input2")
    cdef const float *py = <const float *>_array(y, cnp.NPY_FLOAT32, n, False, "target")
    cdef float *g2 = <float *>_ptr(grad2_out, cnp.NPY_FLOAT32, n, True, "grad2_out")
    cdef fl_margin_ranking_options opts
    opts.margin = margin
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, n, n, reduction, grad_scale, grad_per_sample, loss_out, grad_out, &reduced)
    cdef int status
    with nogil:
        status = fl_margin_ranking_loss_f32(p1, p2, py, n, &opts, &out, g2, n_threads)
    _check_status(status)
    return reduced if reduction != 0 else None


def gaussian_nll_loss(x, t, var, int64_t a, int64_t b, int64_t c, bint var_scalar, bint full,
                      float eps, grad_var_out, int reduction, float grad_scale,
                      grad_per_sample, loss_out, grad_out, int n_threads):
    """x, t: float32 (a, b, c); var: float32 (a, c), or (1,) with var_scalar;
    grad_out d loss / d x (may be x), grad_var_out d loss / d var (a, c) or
    None (always None with var_scalar). Returns the reduced loss or None."""
    _check_sizes(a, b, c, n_threads)
    cdef int64_t n = a * b * c
    cdef const float *px = <const float *>_array(x, cnp.NPY_FLOAT32, n, False, "input")
    cdef const float *pt = <const float *>_array(t, cnp.NPY_FLOAT32, n, False, "target")
    cdef const float *pv = <const float *>_array(var, cnp.NPY_FLOAT32,
                                                 1 if var_scalar else a * c, False, "var")
    if var_scalar and grad_var_out is not None:
        raise ValueError("grad_var_out needs an array var")
    cdef float *gv = <float *>_ptr(grad_var_out, cnp.NPY_FLOAT32, a * c, True, "grad_var_out")
    cdef fl_gaussian_nll_options opts
    opts.full = full
    opts.eps = eps
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, n, n, reduction, grad_scale, grad_per_sample, loss_out, grad_out, &reduced)
    cdef int status
    with nogil:
        status = fl_gaussian_nll_loss_f32(px, pt, pv, a, b, c, var_scalar, &opts, &out, gv,
                                          n_threads)
    _check_status(status)
    return reduced if reduction != 0 else None
