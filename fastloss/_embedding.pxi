# The embedding losses' bindings (src/embedding/embedding.h), included by
# fastloss/_core.pyx: cosine_embedding_loss and triplet_margin_loss, whose
# several differentiable inputs each get a gradient (grad_out is the first
# input's; the others are extra outputs of the same shape).

cdef extern from "embedding/embedding.h" nogil:
    ctypedef struct fl_cosine_embedding_options:
        float margin
    int fl_cosine_embedding_loss_f32(const float *x1, const float *x2, const int8_t *target,
                                     int64_t n, int64_t d,
                                     const fl_cosine_embedding_options *opts,
                                     const fl_outputs *out, float *grad2_out, int n_threads)
    ctypedef struct fl_triplet_margin_options:
        float margin
        float eps
        int p
        int swap
    int fl_triplet_margin_loss_f32(const float *anchor, const float *positive,
                                   const float *negative, int64_t n, int64_t d,
                                   const fl_triplet_margin_options *opts,
                                   const fl_outputs *out, float *grad_positive_out,
                                   float *grad_negative_out, int n_threads)


cdef inline int _grads_together(grad_out, others) except -1:
    """The C writes every gradient or none: all buffers given, or none."""
    for g in others:
        if (g is None) != (grad_out is None):
            raise ValueError("the gradient buffers must all be given, or none")
    return 0


def cosine_embedding_loss(x1, x2, target, int64_t n, int64_t d, float margin, int reduction,
                          float grad_scale, grad_per_sample, loss_out, grad_out, grad2_out,
                          int n_threads):
    """Rows x1, x2 (n, d), int8 target codes (n,) (1, -1 or 0); per-sample
    arrays are (n,). Returns the reduced loss (MEAN/SUM) or None."""
    _check_sizes(n, d, 1, n_threads)
    _grads_together(grad_out, (grad2_out,))
    cdef fl_cosine_embedding_options opts
    opts.margin = margin
    cdef const float *p1 = <const float *>_array(x1, cnp.NPY_FLOAT32, n * d, False, "input1")
    cdef const float *p2 = <const float *>_array(x2, cnp.NPY_FLOAT32, n * d, False, "input2")
    cdef const int8_t *pt = <const int8_t *>_array(target, cnp.NPY_INT8, n, False, "target")
    cdef float *g2 = <float *>_ptr(grad2_out, cnp.NPY_FLOAT32, n * d, True, "out")
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, n, n * d, reduction, grad_scale, grad_per_sample, loss_out, grad_out,
             &reduced)
    cdef int status
    with nogil:
        status = fl_cosine_embedding_loss_f32(p1, p2, pt, n, d, &opts, &out, g2, n_threads)
    _check_status(status)
    return reduced if reduction != 0 else None


def triplet_margin_loss(anchor, positive, negative, int64_t n, int64_t d, float margin, int p,
                        float eps, bint swap, int reduction, float grad_scale, grad_per_sample,
                        loss_out, grad_out, grad_positive_out, grad_negative_out,
                        int n_threads):
    """Rows anchor, positive, negative (n, d), p = 1 or 2; per-sample arrays
    are (n,). Returns the reduced loss (MEAN/SUM) or None."""
    _check_sizes(n, d, 1, n_threads)
    _grads_together(grad_out, (grad_positive_out, grad_negative_out))
    if p != 1 and p != 2:
        raise ValueError(f"p must be 1 or 2 in the kernel, got {p}")
    cdef fl_triplet_margin_options opts
    opts.margin = margin
    opts.eps = eps
    opts.p = p
    opts.swap = swap
    cdef const float *pa = <const float *>_array(anchor, cnp.NPY_FLOAT32, n * d, False,
                                                 "anchor")
    cdef const float *pp = <const float *>_array(positive, cnp.NPY_FLOAT32, n * d, False,
                                                 "positive")
    cdef const float *pn = <const float *>_array(negative, cnp.NPY_FLOAT32, n * d, False,
                                                 "negative")
    cdef float *gp = <float *>_ptr(grad_positive_out, cnp.NPY_FLOAT32, n * d, True, "out")
    cdef float *gn = <float *>_ptr(grad_negative_out, cnp.NPY_FLOAT32, n * d, True, "out")
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, n, n * d, reduction, grad_scale, grad_per_sample, loss_out, grad_out,
             &reduced)
    cdef int status
    with nogil:
        status = fl_triplet_margin_loss_f32(pa, pp, pn, n, d, &opts, &out, gp, gn, n_threads)
    _check_status(status)
    return reduced if reduction != 0 else None
