# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding over src/fastloss.h.

It only checks what the C relies on (dtype, contiguity, sizes, writeability),
releases the GIL, calls C, and turns a status code into an exception. The
Python layer (fastloss/_functional.py) validates user input and allocates outputs.
"""
from libc.stdint cimport INT64_MAX, int8_t, int64_t

cimport numpy as cnp

cnp.import_array()


cdef extern from "fastloss.h" nogil:
    enum:
        FL_OK
        FL_ERR_TARGET
        FL_ERR_NOMEM
        FL_ERR_ARG
    ctypedef struct fl_outputs:
        int reduction
        float grad_scale
        const float *grad_per_sample
        float *loss_out
        double *loss_reduced
        float *grad_out
    ctypedef struct fl_weight:
        const float *w
        int64_t period
    ctypedef struct fl_ce_options:
        const float *weight
        int64_t ignore_index
        float label_smoothing
        float z_loss
        float *lse_out
        int8_t *correct_out
    int fl_cross_entropy_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                             int64_t d, const fl_ce_options *opts, const fl_outputs *out,
                             int n_threads, int64_t *bad_row)
    int fl_cross_entropy_soft_f32(const float *x, const float *y, int64_t n, int64_t c,
                                  int64_t d, const fl_ce_options *opts, const fl_outputs *out,
                                  int n_threads)
    int fl_openmp_enabled()
    int fl_omp_max_threads()
    int fl_set_isa(const char *name)
    const char *fl_isa_name()
    int fl_isa_available(const char *name)
    void fl_math_eval_f32(int which, const float *inp, float *out, int64_t n)


cdef inline void *_ptr(object arr, int typenum, int64_t size, bint writeable, str name) except? NULL:
    """Data pointer of a C-contiguous array of the given type and size (NULL for None)."""
    if arr is None:
        return NULL
    if not isinstance(arr, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray")
    cdef cnp.ndarray a = <cnp.ndarray>arr
    if (cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or not cnp.PyArray_ISALIGNED(a)):
        raise TypeError(f"{name} must be a C-contiguous, aligned array of the kernel's dtype")
    if cnp.PyArray_SIZE(a) != size:
        raise ValueError(f"{name} has {cnp.PyArray_SIZE(a)} elements, expected {size}")
    if writeable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name} is read-only")
    return cnp.PyArray_DATA(a)


cdef inline void *_array(object arr, int typenum, int64_t size, bint writeable,
                         str name) except? NULL:
    """_ptr for an array that is never optional (the inputs): None is refused."""
    if arr is None:
        raise TypeError(f"{name} must be a numpy.ndarray, not None")
    return _ptr(arr, typenum, size, writeable, name)


class TargetError(ValueError):
    """A class target out of range; args: (flat index, value, classes, ignore_index).
    The Python layer re-raises it as a ValueError naming the index in the
    target's shape."""


cdef inline int _check_status(int status) except -1:
    if status == FL_ERR_NOMEM:
        raise MemoryError("fastloss: could not allocate per-block partial sums")
    if status != FL_OK:
        raise ValueError(f"fastloss: invalid arguments to the C kernel (status {status})")
    return 0


cdef inline int64_t _size(object arr, str name) except -1:
    """The number of elements of an ndarray (the binding's inputs must be ones)."""
    if not isinstance(arr, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray")
    return cnp.PyArray_SIZE(<cnp.ndarray>arr)


cdef inline int _outputs(fl_outputs *out, int64_t samples, int64_t size, int reduction,
                         float grad_scale, grad_per_sample, loss_out, grad_out,
                         double *reduced) except -1:
    """Fill `out` for a call whose per-sample loss has `samples` elements and
    whose input (so gradient) has `size`."""
    if reduction < 0 or reduction > 2:
        raise ValueError(f"reduction code {reduction} is not 0, 1 or 2")
    if reduction != 0 and (loss_out is not None or grad_per_sample is not None):
        raise ValueError("per-sample loss_out and grad_per_sample need reduction 'none'")
    out.reduction = reduction
    out.grad_scale = grad_scale
    out.grad_per_sample = <const float *>_ptr(grad_per_sample, cnp.NPY_FLOAT32, samples, False,
                                              "grad_output")
    out.loss_out = <float *>_ptr(loss_out, cnp.NPY_FLOAT32, samples, True, "loss_out")
    out.loss_reduced = reduced if reduction != 0 else NULL
    out.grad_out = <float *>_ptr(grad_out, cnp.NPY_FLOAT32, size, True, "out")
    return 0


cdef inline int _check_sizes(int64_t n, int64_t c, int64_t d, int n_threads) except -1:
    if n < 0 or c < 0 or d < 0 or n_threads < 1:
        raise ValueError(f"sizes must be >= 0 and n_threads >= 1, got n={n}, c={c}, d={d}, "
                         f"n_threads={n_threads}")
    # n * d * c must not wrap around: a wrapped product would pass the arrays'
    # size checks with arrays far smaller than what the C then reads.
    if (d and n > INT64_MAX // d) or (c and n * d > INT64_MAX // c):
        raise ValueError(f"sizes n={n}, c={c}, d={d}: n * c * d does not fit in int64")
    return 0


def cross_entropy(x, target, int64_t n, int64_t c, int64_t d, int64_t ignore_index, weight,
                  float label_smoothing, float z_loss, lse_out, correct_out, int reduction,
                  float grad_scale, grad_per_sample, loss_out, grad_out, int n_threads):
    """x is (n, c, d) (d = 1 for plain (n, c)); per-sample arrays are (n, d).
    Returns the reduced loss (MEAN/SUM) or None; raises on an invalid target."""
    _check_sizes(n, c, d, n_threads)
    cdef int64_t samples = n * d
    cdef fl_ce_options opts
    opts.weight = <const float *>_ptr(weight, cnp.NPY_FLOAT32, c, False, "weight")
    opts.ignore_index = ignore_index
    opts.label_smoothing = label_smoothing
    opts.z_loss = z_loss
    opts.lse_out = <float *>_ptr(lse_out, cnp.NPY_FLOAT32, samples, True, "lse_out")
    opts.correct_out = <int8_t *>_ptr(correct_out, cnp.NPY_INT8, samples, True, "correct_out")
    cdef const float *px = <const float *>_array(x, cnp.NPY_FLOAT32, samples * c, False,
                                                 "input")
    cdef const int64_t *pt = <const int64_t *>_array(target, cnp.NPY_INT64, samples, False,
                                                     "target")
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, samples, samples * c, reduction, grad_scale, grad_per_sample, loss_out,
             grad_out, &reduced)
    cdef int64_t bad = -1
    cdef int status
    with nogil:
        status = fl_cross_entropy_f32(px, pt, n, c, d, &opts, &out, n_threads, &bad)
    if status == FL_ERR_TARGET:
        raise TargetError(int(bad), int(pt[bad]), int(c), int(ignore_index))
    _check_status(status)
    return reduced if reduction != 0 else None


def cross_entropy_soft(x, y, int64_t n, int64_t c, int64_t d, weight, float label_smoothing,
                       float z_loss, lse_out, int reduction, float grad_scale, grad_per_sample,
                       loss_out, grad_out, int n_threads):
    """Probability targets y of x's shape (n, c, d), c >= 1. Returns the reduced loss or None."""
    _check_sizes(n, c, d, n_threads)
    if c < 1:
        raise ValueError("probability targets need c >= 1")
    cdef int64_t samples = n * d
    cdef fl_ce_options opts
    opts.weight = <const float *>_ptr(weight, cnp.NPY_FLOAT32, c, False, "weight")
    opts.ignore_index = -100
    opts.label_smoothing = label_smoothing
    opts.z_loss = z_loss
    opts.lse_out = <float *>_ptr(lse_out, cnp.NPY_FLOAT32, samples, True, "lse_out")
    opts.correct_out = NULL
    cdef const float *px = <const float *>_array(x, cnp.NPY_FLOAT32, samples * c, False,
                                                 "input")
    cdef const float *py = <const float *>_array(y, cnp.NPY_FLOAT32, samples * c, False,
                                                 "target")
    cdef double reduced = 0.0
    cdef fl_outputs out
    _outputs(&out, samples, samples * c, reduction, grad_scale, grad_per_sample, loss_out,
             grad_out, &reduced)
    cdef int status
    with nogil:
        status = fl_cross_entropy_soft_f32(px, py, n, c, d, &opts, &out, n_threads)
    _check_status(status)
    return reduced if reduction != 0 else None


include "_binding.pxi"


def openmp_enabled():
    return bool(fl_openmp_enabled())


def omp_max_threads():
    return fl_omp_max_threads()


def set_isa(str name):
    cdef bytes b = name.encode()
    if fl_set_isa(b) != FL_OK:
        raise ValueError(f"instruction set {name!r} is not available on this machine/build")


def isa_name():
    return (<bytes>fl_isa_name()).decode()


def isa_available(str name):
    cdef bytes b = name.encode()
    return bool(fl_isa_available(b))


def _math_eval(int which, x):
    """Test hook: the dispatched path's inline exp (0), log1p (1) or log (2) on a float32 array."""
    import numpy as np
    a = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(a)
    cdef const float *pa = <const float *>_ptr(a, cnp.NPY_FLOAT32, a.size, False, "x")
    cdef float *po = <float *>_ptr(out, cnp.NPY_FLOAT32, a.size, True, "out")
    cdef int64_t n = a.size
    with nogil:
        fl_math_eval_f32(which, pa, po, n)
    return out


# ---------------------------------------------------------------------------
# The OpenMP runtime (for fastloss.show_config and the fork guard in _threads.py).

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fl_openmp_spec(void) { return _OPENMP; }
    /* omp_get_max_threads as this module's calls resolve it: the library that
       holds this address is the OpenMP runtime fastloss really uses. */
    static size_t fl_omp_symbol_address(void) { return (size_t)(void *)&omp_get_max_threads; }
    #else
    static int fl_openmp_spec(void) { return 0; }
    static size_t fl_omp_symbol_address(void) { return 0; }
    #endif
    """
    int fl_openmp_spec()
    size_t fl_omp_symbol_address()


def openmp_spec():
    """The _OPENMP macro the kernels were compiled with (yyyymm of the spec); 0 if serial."""
    return fl_openmp_spec()


def _omp_symbol_address():
    """Address of omp_get_max_threads as bound in this module (0 without OpenMP)."""
    return fl_omp_symbol_address()
