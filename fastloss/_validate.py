"""Argument checks: the one layer that validates what a user passes.

Everything a kernel relies on is established here (dtypes, shapes,
contiguity, alignment, option ranges, outputs that overlap nothing the
kernel reads), with an error that names the argument. The Cython binding
re-checks only what memory safety needs; the C checks only what only it can
see while computing (class targets out of range). The generated public API
(fastloss/_api.py) calls these, per the loss declarations in fastloss/_spec/.
"""

import math
import operator
import warnings

import numpy as np

F32 = np.dtype(np.float32)
I64 = np.dtype(np.int64)
INT64_MAX = np.iinfo(np.int64).max
_F32_MAX = float(np.finfo(np.float32).max)
_F32_TINY = float(np.finfo(np.float32).tiny)   # below it, rounding to float32 may reach 0
REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
NONE, MEAN, SUM = 0, 1, 2
# reduction='batchmean' of a loss that declares it (kl_div): SUM in C, then
# divided by the input's first dimension in fastloss/_run.py (never reaches C).
BATCHMEAN = 3


def flag(value, name):
    """`value` as a bool, or a TypeError naming `name` (an array of several
    values has no truth value)."""
    try:
        return bool(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} "
                        f"({exc})") from None


def _legacy_reduction(size_average, reduce):
    """PyTorch's mapping of the deprecated size_average/reduce arguments."""
    size_average = True if size_average is None else flag(size_average, "size_average")
    reduce = True if reduce is None else flag(reduce, "reduce")
    reduction = "mean" if (size_average and reduce) else ("sum" if reduce else "none")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
        "instead.",
        stacklevel=3,
    )
    return reduction


def reduction(value, size_average=None, reduce=None, batchmean=False):
    """(name, code) of the reduction, after the legacy arguments; `batchmean`:
    the loss also takes 'batchmean' (code BATCHMEAN)."""
    if size_average is not None or reduce is not None:
        value = _legacy_reduction(size_average, reduce)
    if batchmean and isinstance(value, str) and value == "batchmean":
        return value, BATCHMEAN
    try:
        return value, REDUCTIONS[value]
    except (KeyError, TypeError):
        names = "'none', 'mean', 'batchmean'" if batchmean else "'none', 'mean'"
        raise ValueError(
            f"reduction must be {names} or 'sum', got {value!r}"
        ) from None


def asarray(a, name):
    """np.asarray(a), or a TypeError naming `name` when NumPy cannot make an
    array of it (ragged lists, tensors that need grad, ...)."""
    if type(a) is np.ndarray:
        return a
    try:
        return np.asarray(a)
    except Exception as exc:
        raise TypeError(f"{name} must be an array of real numbers ({exc})") from None


def as_f32(a, name):
    """`a` as a C-contiguous float32 array: no copy when it already is one."""
    if type(a) is np.ndarray and a.dtype == F32 and a.flags.c_contiguous and a.flags.aligned:
        return a
    arr = asarray(a, name)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers (a float or integer dtype), "
                        f"got dtype {arr.dtype}")
    # C-contiguous and aligned (a misaligned view would reach the kernels as is)
    return np.require(arr, dtype=F32, requirements=("C", "A"))


def same_shape(x, y, x_name, y_name):
    if y.shape != x.shape:
        raise ValueError(f"{y_name} has shape {y.shape} but {x_name} has shape {x.shape}; "
                         "they must match (fastloss does not broadcast targets)")


def within(a, name, low, high):
    """Every element of the float32 array `a` in [low, high] (NaN passes: it
    gives NaN), or a ValueError naming `name` and the first element outside.
    Two read-only passes (min, max); the search for the element runs only
    on the error path."""
    if a.size == 0:
        return
    lo, hi = a.min(), a.max()   # NaN when any element is NaN: then look closer
    if lo >= low and hi <= high:
        return
    with np.errstate(invalid="ignore"):
        outside = np.flatnonzero((a < low) | (a > high))
    if outside.size == 0:   # only NaN, which passes
        return
    where = np.unravel_index(outside[0], a.shape)
    index = ", ".join(str(int(i)) for i in where)
    raise ValueError(f"{name} must lie in [{low:g}, {high:g}] (as PyTorch requires), "
                     f"got {name}[{index}] = {float(a[where])!r}")


def real_scalar(value, name, low=None, high=None):
    """A Python float, rounded to float32 (what the kernels see), finite and in
    [low, high], or a clear error naming `name`."""
    if type(value) is float or type(value) is int:   # fast path: a plain, ordinary number
        try:
            v = float(value)
        except OverflowError:   # a Python int beyond float64
            v = math.inf
        if ((v == 0.0 or _F32_TINY <= abs(v) <= _F32_MAX) and (low is None or v >= low)
                and (high is None or v <= high)):
            return v
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    given = value
    try:
        with np.errstate(over="ignore"):
            value = float(np.float32(value))   # the kernels compute in float32
    except OverflowError:   # a Python int beyond float64
        value = math.inf
    if not np.isfinite(value) or (low is not None and value < low) or (
            high is not None and value > high):
        bounds = f" in [{low}, {high}]" if high is not None else (
            f" >= {low}" if low is not None else "")
        shown = repr(given)
        shown = shown if len(shown) <= 40 else f"{shown[:20]}...({len(shown)} digits)"
        raise ValueError(f"{name} must be a number{bounds} that is finite in float32, "
                         f"got {shown}")
    return value


def positive_scalar(value, name):
    """real_scalar(value, name, 0), and not 0 in float32."""
    v = real_scalar(value, name, 0.0)
    if v == 0.0:
        raise ValueError(f"{name} must be positive (in float32), got {value}")
    return v


def int64_scalar(value, name):
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64, got {value}")
    return value


def check_disjoint(name, buf, others):
    """Refuse an output `buf` that may share memory with any array of
    `others`, (name, array or None) pairs: the kernel would read what it writes."""
    for other, a in others:
        if a is not None and np.may_share_memory(buf, a):
            raise ValueError(f"{name} must not overlap {other}")


def out_buffer(out, x, reads, name="out", input_name="input"):
    """Validate a caller's gradient buffer for input x (already float32
    C-contiguous). `reads` holds (name, array or None) for every other array
    the kernel reads: out must not share memory with any of them."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != F32:
        raise TypeError(f"{name} must have dtype float32, got {out.dtype}")
    if out.shape != x.shape:
        raise ValueError(f"{name} has shape {out.shape}, expected the {input_name}'s shape "
                         f"{x.shape}")
    if not out.flags.c_contiguous or not out.flags.aligned:
        raise ValueError(f"{name} must be C-contiguous and aligned")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if out is not x and np.may_share_memory(out, x):
        same = out.__array_interface__["data"][0] == x.__array_interface__["data"][0]
        if not same:
            raise ValueError(f"{name} overlaps {input_name} without being the same memory; "
                             f"pass {name}={input_name} for an in-place gradient, or a "
                             "separate array")
    check_disjoint(name, out, reads)
    return out


def out_buffers(out, grads, reads):
    """Validate ``out``, a caller's tuple of gradient buffers for a loss of
    several differentiable arrays: `grads` holds (name, array, in_place) per
    gradient, in order (``array`` None: that gradient does not exist, and its
    buffer must be None); `reads` holds (name, array) for every array the
    kernel reads. Each buffer has its array's shape and overlaps nothing the
    kernel reads or writes, except that a buffer may be its own array where
    ``in_place`` (the kernel reads each element before writing it). Returns
    the buffers as a tuple (None where not given)."""
    if not isinstance(out, (tuple, list)):
        raise TypeError(f"out must be a tuple of {len(grads)} arrays (one per gradient), "
                        f"got {type(out).__name__}")
    if len(out) != len(grads):
        raise ValueError(f"out must hold {len(grads)} arrays (one per gradient), got "
                         f"{len(out)}")
    checked = []
    for k, (buf, (name, x, in_place)) in enumerate(zip(out, grads)):
        label = f"out[{k}]"
        if buf is None:
            checked.append(None)
            continue
        if x is None:
            raise ValueError(f"{label} must be None: {name} has no gradient")
        others = [(n, a) for n, a in reads if not (in_place and a is x)]
        others += [(f"out[{j}]", b) for j, b in enumerate(checked) if b is not None]
        checked.append(out_buffer(buf, x, others, label, name))
    return tuple(checked)


def grad_output(value, code, shape):
    """(scalar scale, per-sample float32 array or None) for the kernel."""
    if type(value) is float:
        return value, None
    if type(value) is int:
        try:
            return float(value), None
        except OverflowError:
            raise ValueError("grad_output is an integer too large for a float") from None
    g = as_f32(value, "grad_output")
    if g.ndim == 0:
        return float(g), None
    if code != NONE:
        raise ValueError(f"grad_output must be a scalar for a reduced loss, got shape {g.shape}")
    if g.shape != shape:
        raise ValueError(f"grad_output has shape {g.shape}, expected the per-sample loss "
                         f"shape {shape}")
    return 1.0, g


def is_soft_target(target, input_shape):
    """True for a float target of the input's shape: probabilities."""
    dtype = getattr(target, "dtype", None)
    if dtype is None:
        target = asarray(target, "target")
        dtype = target.dtype
    return dtype.kind == "f" and np.shape(target) == tuple(input_shape)


def class_target(target, shape, input_shape, probabilities=True):
    """Class indices of `shape` as a C-contiguous int64 array (`probabilities`:
    the loss also takes float probability targets, and the error says so)."""
    if (type(target) is np.ndarray and target.dtype == I64 and target.shape == shape
            and target.flags.c_contiguous and target.flags.aligned):
        return target
    arr = asarray(target, "target")
    if arr.dtype.kind not in "iu":
        alt = " (or, with the input's shape, float probabilities)" if probabilities else ""
        raise TypeError(f"target must hold integer class indices{alt}, got dtype "
                        f"{arr.dtype} and shape {arr.shape}")
    if arr.shape != shape:
        raise ValueError(f"target has shape {arr.shape}, expected {shape} for input of "
                         f"shape {input_shape}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > INT64_MAX:
        i = int(np.argmax(arr > INT64_MAX))
        raise ValueError(f"target[{i}] = {arr.flat[i]} is out of range")
    return np.require(arr, dtype=I64, requirements=("C", "A"))


def class_weight(weight, c, name="weight"):
    """Class weights as a float32 (C,) array of finite values, or None."""
    if weight is None:
        return None
    w = as_f32(weight, name)
    if w.shape != (c,):
        raise ValueError(f"{name} must have shape ({c},) (one weight per class), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(f"{name} must be finite (it holds NaN or inf)")
    return w


def per_sample_buffer(buf, shape, name):
    """A caller's float32 output of the per-sample shape (lse_out)."""
    if buf is None:
        return None
    if not isinstance(buf, np.ndarray) or buf.dtype != F32:
        raise TypeError(f"{name} must be a float32 numpy.ndarray")
    if buf.shape != shape:
        raise ValueError(f"{name} has shape {buf.shape}, expected {shape}")
    if not buf.flags.c_contiguous or not buf.flags.aligned or not buf.flags.writeable:
        raise ValueError(f"{name} must be C-contiguous, aligned and writeable")
    return buf


def periodic_weight(weight, shape, name):
    """A weight broadcastable to `shape` as (float32 vector, period P): element
    i of the flattened input uses vector[i % P]. A weight that varies only
    along trailing axes (a scalar, per class along the last axis, full shape)
    is used in place; any other broadcast (e.g. (N, 1)) is materialised."""
    if weight is None:
        return None, 0
    w = as_f32(weight, name)
    try:
        if np.broadcast_shapes(w.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {w.shape} cannot be broadcast to the input's "
                         f"shape {tuple(shape)}") from None
    if not np.isfinite(w).all():
        raise ValueError(f"{name} must be finite (it holds NaN or inf)")
    size = int(np.prod(shape))
    if size == 0:
        return None, 0
    padded = (1,) * (len(shape) - w.ndim) + w.shape
    first = next((k for k, d in enumerate(padded) if d != 1), len(padded))
    if padded[first:] == tuple(shape[first:]):
        return w.reshape(-1), max(1, int(np.prod(shape[first:], dtype=np.int64)))
    return np.ascontiguousarray(np.broadcast_to(w, shape)).reshape(-1), size


def chunk_size(value):
    """Tokens per chunk of the linear cross-entropy: None (the default rule)
    or an integer >= 1."""
    if value is None:
        return None
    value = int64_scalar(value, "chunk_size")
    if value < 1:
        raise ValueError(f"chunk_size must be at least 1, got {value}")
    return value


def linear_ce_arrays(input, linear_weight, target, linear_bias, weight, ignore_index):
    """The arrays of a linear cross-entropy as the chunk loop needs them:
    (x (N, H), W (V, H), b (V,) or None, t (N,) int64, w (V,) or None,
    unbatched), float32 and int64 C-contiguous, every target in [0, V) or
    ignore_index."""
    x = as_f32(input, "input")
    if x.ndim not in (1, 2):
        raise ValueError(f"input must have shape (N, H) or (H,), got shape {x.shape}")
    unbatched = x.ndim == 1
    W = as_f32(linear_weight, "linear_weight")
    h = x.shape[-1]
    if W.ndim != 2 or W.shape[1] != h:
        raise ValueError(f"linear_weight must have shape (V, {h}) (V classes, the input's "
                         f"{h} features), got shape {W.shape}")
    c = W.shape[0]
    if c == 0:
        raise ValueError("linear_weight must have at least one row (class)")
    b = None
    if linear_bias is not None:
        b = as_f32(linear_bias, "linear_bias")
        if b.shape != (c,):
            raise ValueError(f"linear_bias must have shape ({c},) (one per row of "
                             f"linear_weight), got shape {b.shape}")
    if unbatched:
        x = x.reshape(1, h)
        t = class_target(target, (), (c,)).reshape(1)
    else:
        t = class_target(target, (x.shape[0],), (x.shape[0], c))
    w = class_weight(weight, c)
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        i = int(np.argmax(bad))
        where = "" if unbatched else f"[{i}]"
        raise ValueError(f"target{where} = {int(t[i])} is out of range for {c} classes "
                         f"(valid: 0 <= target < {c}, or ignore_index={ignore_index})")
    return x, W, b, t, w, unbatched
