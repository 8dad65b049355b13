# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding over src/fastloss.h.

It only checks what the C relies on (dtype, contiguity, sizes, writeability),
releases the GIL, calls C, and turns a status code into an exception. The
Python layer (fastloss/_validate.py, _run.py) validates user input and
allocates outputs. The elementwise bindings are generated (_binding.pxi).

The fast paths (``*_fast``) take the common case of a call, check it here
and reach C in a few hundred nanoseconds; for anything else they return
SLOW and the caller takes the general path.
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
    ctypedef struct fl_nll_options:
        const float *weight
        int64_t ignore_index
    int fl_nll_loss_f32(const float *x, const int64_t *target, int64_t n, int64_t c,
                        int64_t d, const fl_nll_options *opts, const fl_outputs *out,
                        int n_threads, int64_t *bad_row)
    int fl_openmp_enabled()
    int fl_omp_max_threads()
    void fl_set_adaptive_threads(int on)
    int fl_thread_policy_update(double now, double work, double wait)
    double fl_thread_policy_serial_until()
    int fl_thread_policy_enabled()
    int fl_set_isa(const char *name)
    const char *fl_isa_name()
    int fl_isa_available(const char *name)
    void fl_math_eval_f32(int which, const float *inp, float *out, int64_t n)


cdef inline void *_ptr(object arr, int typenum, int64_t size, bint writeable,
                       str name) except? NULL:
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


def nll_loss(x, target, int64_t n, int64_t c, int64_t d, int64_t ignore_index, weight,
             int reduction, float grad_scale, grad_per_sample, loss_out, grad_out,
             int n_threads):
    """Log-probabilities x (n, c, d) (d = 1 for plain (n, c)); per-sample arrays
    are (n, d). Returns the reduced loss (MEAN/SUM) or None; raises
    TargetError on an invalid target."""
    _check_sizes(n, c, d, n_threads)
    cdef int64_t samples = n * d
    cdef fl_nll_options opts
    opts.weight = <const float *>_ptr(weight, cnp.NPY_FLOAT32, c, False, "weight")
    opts.ignore_index = ignore_index
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
        status = fl_nll_loss_f32(px, pt, n, c, d, &opts, &out, n_threads, &bad)
    if status == FL_ERR_TARGET:
        raise TargetError(int(bad), int(pt[bad]), int(c), int(ignore_index))
    _check_status(status)
    return reduced if reduction != 0 else None


# ---------------------------------------------------------------------------
# Fast paths.
#
# A call of the common kind (plain C-contiguous, aligned float32 arrays of
# matching shapes, class targets in int64, no array options, a float upstream
# gradient, an output that is new, the input itself, or overlaps nothing) is
# checked here and handed to C. Anything else -- another dtype, layout or
# shape, an option the fast path does not take, an output that overlaps an
# input, or an error from C such as a class target out of range -- returns
# SLOW, and the caller runs the general path (fastloss/_run.py), which
# validates everything and raises the documented error. So a fast path accepts
# a strict subset of the valid calls, computes exactly what the general path
# computes (the same C entry point with the same arguments), and never raises.

SLOW = object()

# mode: what the call wants
cdef enum:
    _FORWARD = 0    # the loss
    _FUSED = 1      # (loss, grad)
    _BACKWARD = 2   # grad, times a scalar grad_output
    # Below this many elements the C runs on the calling thread whatever the
    # thread count (FL_PARALLEL_MIN_ELEMS), and holding the GIL costs less
    # than releasing it.
    _SERIAL_BELOW = 32768

cdef object _thread_source = None


def _set_thread_source(source):
    """The callable giving the thread count for large calls (fastloss._threads)."""
    global _thread_source
    _thread_source = source


cdef inline bint _plain_f32(object a):
    if type(a) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32 and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISALIGNED(arr))


cdef inline bint _disjoint(cnp.ndarray a, cnp.ndarray b):
    """The memory extents of two C-contiguous arrays do not meet."""
    cdef char *a0 = <char *>cnp.PyArray_DATA(a)
    cdef char *b0 = <char *>cnp.PyArray_DATA(b)
    return (a0 + cnp.PyArray_NBYTES(a) <= b0) or (b0 + cnp.PyArray_NBYTES(b) <= a0)


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd:
        return False
    cdef int k
    for k in range(nd):
        if cnp.PyArray_DIM(a, k) != cnp.PyArray_DIM(b, k):
            return False
    return True


cdef struct _fast_call:
    fl_outputs out
    double reduced
    int n_threads
    bint release_gil


cdef object _fast_begin(_fast_call *call, cnp.ndarray x, tuple others, int reduction,
                        object grad_out, int mode, object grad_output, int per_sample_nd):
    """Check the outputs of a fast call and fill `call`; returns (loss_out,
    grad) (either may be None) or SLOW. `others`: the arrays the kernel reads
    besides x; per_sample_nd: the 'none' loss has x's first that many dims."""
    cdef int64_t size = cnp.PyArray_SIZE(x)
    cdef cnp.ndarray g = None, lo = None, other
    cdef float scale = 1.0
    if reduction < 0 or reduction > 2 or size == 0:
        return SLOW
    if mode == _BACKWARD:
        if type(grad_output) is not float:
            return SLOW
        scale = <float>(<double>grad_output)
    if mode != _FORWARD:
        if grad_out is None:
            g = <cnp.ndarray>cnp.PyArray_EMPTY(
                cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), cnp.NPY_FLOAT32, 0)
        else:
            if not _plain_f32(grad_out):
                return SLOW
            g = <cnp.ndarray>grad_out
            if not _same_shape(g, x) or not cnp.PyArray_ISWRITEABLE(g):
                return SLOW
            if g is not x and not _disjoint(g, x):
                return SLOW
            for other in others:
                if not _disjoint(g, other):
                    return SLOW
    if reduction == 0 and mode != _BACKWARD:
        lo = <cnp.ndarray>cnp.PyArray_EMPTY(
            per_sample_nd, cnp.PyArray_DIMS(x), cnp.NPY_FLOAT32, 0)
    call.reduced = 0.0
    call.out.reduction = reduction
    call.out.grad_scale = scale
    call.out.grad_per_sample = NULL
    call.out.loss_out = <float *>cnp.PyArray_DATA(lo) if lo is not None else NULL
    call.out.loss_reduced = &call.reduced if reduction != 0 and mode != _BACKWARD else NULL
    call.out.grad_out = <float *>cnp.PyArray_DATA(g) if g is not None else NULL
    call.release_gil = size >= _SERIAL_BELOW
    call.n_threads = <int>_thread_source() if call.release_gil else 1
    return (lo, g)


cdef inline object _fast_end(int status, _fast_call *call, tuple bufs, int mode):
    if status != FL_OK:
        return SLOW
    value = bufs[0] if call.out.reduction == 0 else call.reduced
    if mode == _FORWARD:
        return value
    if mode == _FUSED:
        return (value, bufs[1])
    return bufs[1]


def cross_entropy_fast(x, target, int64_t ignore_index, float label_smoothing, float z_loss,
                       int reduction, grad_out, int mode, grad_output):
    """Cross-entropy on (N, C) float32 logits and (N,) int64 targets, no class
    weights, lse_out or correct count. Returns the result or SLOW."""
    if not _plain_f32(x) or cnp.PyArray_NDIM(<cnp.ndarray>x) != 2:
        return SLOW
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if type(target) is not cnp.ndarray:
        return SLOW
    cdef cnp.ndarray ta = <cnp.ndarray>target
    cdef int64_t n = cnp.PyArray_DIM(xa, 0), c = cnp.PyArray_DIM(xa, 1)
    if (cnp.PyArray_TYPE(ta) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(ta)
            or not cnp.PyArray_ISALIGNED(ta) or cnp.PyArray_NDIM(ta) != 1
            or cnp.PyArray_DIM(ta, 0) != n or c == 0):
        return SLOW
    cdef _fast_call call
    bufs = _fast_begin(&call, xa, (ta,), reduction, grad_out, mode, grad_output, 1)
    if bufs is SLOW:
        return SLOW
    cdef fl_ce_options opts
    opts.weight = NULL
    opts.ignore_index = ignore_index
    opts.label_smoothing = label_smoothing
    opts.z_loss = z_loss
    opts.lse_out = NULL
    opts.correct_out = NULL
    cdef const float *px = <const float *>cnp.PyArray_DATA(xa)
    cdef const int64_t *pt = <const int64_t *>cnp.PyArray_DATA(ta)
    cdef int64_t bad = -1
    cdef int status
    if call.release_gil:
        with nogil:
            status = fl_cross_entropy_f32(px, pt, n, c, 1, &opts, &call.out, call.n_threads,
                                          &bad)
    else:
        status = fl_cross_entropy_f32(px, pt, n, c, 1, &opts, &call.out, call.n_threads, &bad)
    return _fast_end(status, &call, bufs, mode)


cdef inline object _elementwise_fast_arrays(x, y):
    """(x, y) as ndarrays when both are plain float32 arrays of one shape, else SLOW."""
    if not _plain_f32(x) or not _plain_f32(y):
        return SLOW
    if not _same_shape(<cnp.ndarray>x, <cnp.ndarray>y):
        return SLOW
    return (x, y)


cdef bint _outside_f32(cnp.ndarray a, float low, float high):
    """Whether an element of the C-contiguous float32 array `a` lies outside
    [low, high] (NaN does not: it gives NaN). One read-only pass, branch-free
    so that it vectorises; the fast path of a loss with input ranges (the
    spec's `ranges`) returns SLOW then, and the general path raises the error
    that names the element."""
    cdef const float *p = <const float *>cnp.PyArray_DATA(a)
    cdef int64_t i, n = cnp.PyArray_SIZE(a)
    cdef bint outside = False
    if n < 65536:
        for i in range(n):
            outside |= (p[i] < low) | (p[i] > high)
        return outside
    with nogil:
        for i in range(n):
            outside |= (p[i] < low) | (p[i] > high)
    return outside


include "_binding.pxi"
include "_pairwise.pxi"
include "_rows.pxi"


def openmp_enabled():
    return bool(fl_openmp_enabled())


def omp_max_threads():
    return fl_omp_max_threads()


def set_adaptive_threads(bint on):
    """Turn the contention rule on or off (src/runtime.c); resets its state."""
    fl_set_adaptive_threads(on)


def _thread_policy_update(double now, double work, double wait):
    """Test hook: feed the contention rule one parallel call; True if it stalled."""
    return bool(fl_thread_policy_update(now, work, wait))


def _thread_policy_enabled():
    """Whether the contention rule is on."""
    return bool(fl_thread_policy_enabled())


def _thread_policy_serial_until():
    """Test hook: the omp_get_wtime() time until which calls run serially."""
    return fl_thread_policy_serial_until()


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


# The embedding losses (cosine_embedding_loss, triplet_margin_loss).
include "_embedding.pxi"
