"""The Python layer: validation, output allocation, documentation.

Every public loss goes through one of two runners, `_run_cross_entropy` and
`_run_elementwise`, in one of three modes: the loss only ("forward"), the
gradient only ("backward", with an upstream gradient) or both from one fused
kernel call ("loss_and_grad"). The kernels themselves are in src/.
"""

import math
import operator
import warnings

import numpy as np

from . import _core
from ._threads import get_num_threads

_F32 = np.dtype(np.float32)
_I64 = np.dtype(np.int64)
_INT64_MAX = np.iinfo(np.int64).max
_F32_MAX = float(np.finfo(np.float32).max)
_F32_TINY = float(np.finfo(np.float32).tiny)   # below it, rounding to float32 may reach 0
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
_NONE = 0


# --------------------------------------------------------------------------
# Argument handling shared by every loss.

def _legacy_reduction(size_average, reduce):
    """PyTorch's mapping of the deprecated size_average/reduce arguments."""
    size_average = True if size_average is None else _flag(size_average, "size_average")
    reduce = True if reduce is None else _flag(reduce, "reduce")
    reduction = "mean" if (size_average and reduce) else ("sum" if reduce else "none")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
        "instead.",
        stacklevel=3,
    )
    return reduction


def _reduction(reduction, size_average=None, reduce=None):
    """(name, code) of the reduction, after the legacy arguments."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    try:
        return reduction, _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(
            f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}"
        ) from None


def _flag(value, name):
    """`value` as a bool, or a TypeError naming `name` (an array of several
    values has no truth value)."""
    try:
        return bool(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} "
                        f"({exc})") from None


def _asarray(a, name):
    """np.asarray(a), or a TypeError naming `name` when NumPy cannot make an
    array of it (ragged lists, tensors that need grad, ...)."""
    if type(a) is np.ndarray:
        return a
    try:
        return np.asarray(a)
    except Exception as exc:
        raise TypeError(f"{name} must be an array of real numbers ({exc})") from None


def _as_f32(a, name):
    """`a` as a C-contiguous float32 array: no copy when it already is one."""
    if type(a) is np.ndarray and a.dtype == _F32 and a.flags.c_contiguous and a.flags.aligned:
        return a
    arr = _asarray(a, name)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers (a float or integer dtype), "
                        f"got dtype {arr.dtype}")
    # C-contiguous and aligned (a misaligned view would reach the kernels as is)
    return np.require(arr, dtype=_F32, requirements=("C", "A"))


def _check_out(out, x, reads):
    """Validate a caller's gradient buffer for input x (already float32
    C-contiguous). `reads` holds (name, array or None) for every other array
    the kernel reads: out must not share memory with any of them."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != _F32:
        raise TypeError(f"out must have dtype float32, got {out.dtype}")
    if out.shape != x.shape:
        raise ValueError(f"out has shape {out.shape}, expected the input's shape {x.shape}")
    if not out.flags.c_contiguous or not out.flags.aligned:
        raise ValueError("out must be C-contiguous and aligned")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if out is not x and np.may_share_memory(out, x):
        same = out.__array_interface__["data"][0] == x.__array_interface__["data"][0]
        if not same:
            raise ValueError("out overlaps input without being the same memory; pass "
                             "out=input for an in-place gradient, or a separate array")
    _check_disjoint("out", out, reads)
    return out


def _check_disjoint(name, buf, others):
    """Refuse an output `buf` that may share memory with any array of
    `others`, (name, array or None) pairs: the kernel would read what it writes."""
    for other, a in others:
        if a is not None and np.may_share_memory(buf, a):
            raise ValueError(f"{name} must not overlap {other}")


def _grad_output(grad_output, code, shape):
    """(scalar scale, per-sample float32 array or None) for the kernel."""
    if type(grad_output) is float:
        return grad_output, None
    if type(grad_output) is int:
        try:
            return float(grad_output), None
        except OverflowError:
            raise ValueError("grad_output is an integer too large for a float") from None
    g = _as_f32(grad_output, "grad_output")
    if g.ndim == 0:
        return float(g), None
    if code != _NONE:
        raise ValueError(f"grad_output must be a scalar for a reduced loss, got shape {g.shape}")
    if g.shape != shape:
        raise ValueError(f"grad_output has shape {g.shape}, expected the per-sample loss "
                         f"shape {shape}")
    return 1.0, g


def _run(kernel, x, loss, grad, grad_output, out, reads, code, per_sample_shape, *args):
    """Allocate outputs, call `kernel(..., n_threads)` and shape the result.
    `reads`: (name, array or None) pairs that a caller's out must not overlap."""
    loss_out = np.empty(per_sample_shape, _F32) if (loss and code == _NONE) else None
    g = None
    scale, per_sample = 1.0, None
    if grad:
        scale, per_sample = _grad_output(grad_output, code, per_sample_shape)
        g = np.empty(x.shape, _F32) if out is None else _check_out(
            out, x, reads + (("grad_output", per_sample),))
    reduced = kernel(*args, code, scale, per_sample, loss_out, g, get_num_threads())
    value = (reduced if code != _NONE else loss_out) if loss else None
    if loss and grad:
        return value, g
    return value if loss else g


# --------------------------------------------------------------------------
# Cross-entropy.

def _is_soft_target(target, input_shape):
    """True for a float target of the input's shape: probabilities."""
    dtype = getattr(target, "dtype", None)
    if dtype is None:
        target = _asarray(target, "target")
        dtype = target.dtype
    return dtype.kind == "f" and np.shape(target) == tuple(input_shape)


def _class_target(target, shape, input_shape):
    if (type(target) is np.ndarray and target.dtype == _I64 and target.shape == shape
            and target.flags.c_contiguous and target.flags.aligned):
        return target
    arr = _asarray(target, "target")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices (or, with the input's "
                        f"shape, float probabilities), got dtype {arr.dtype} and shape "
                        f"{arr.shape}")
    if arr.shape != shape:
        raise ValueError(f"target has shape {arr.shape}, expected {shape} for input of "
                         f"shape {input_shape}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > _INT64_MAX:
        i = int(np.argmax(arr > _INT64_MAX))
        raise ValueError(f"target[{i}] = {arr.flat[i]} is out of range")
    return np.require(arr, dtype=_I64, requirements=("C", "A"))


def _real_scalar(value, name, low=None, high=None):
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


def _positive_delta(delta):
    value = _real_scalar(delta, "delta", 0.0)
    if value == 0.0:
        raise ValueError(f"delta must be positive (in float32), got {delta}")
    return value


def _class_weight(weight, c):
    """Class weights as a float32 (C,) array of finite values, or None."""
    if weight is None:
        return None
    w = _as_f32(weight, "weight")
    if w.shape != (c,):
        raise ValueError(f"weight must have shape ({c},) (one weight per class), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weight must be finite (it holds NaN or inf)")
    return w


def _per_sample_buffer(buf, shape, name):
    """A caller's float32 output of the per-sample shape (lse_out)."""
    if buf is None:
        return None
    if not isinstance(buf, np.ndarray) or buf.dtype != _F32:
        raise TypeError(f"{name} must be a float32 numpy.ndarray")
    if buf.shape != shape:
        raise ValueError(f"{name} has shape {buf.shape}, expected {shape}")
    if not buf.flags.c_contiguous or not buf.flags.aligned or not buf.flags.writeable:
        raise ValueError(f"{name} must be C-contiguous, aligned and writeable")
    return buf


def _run_cross_entropy(input, target, weight, ignore_index, code, label_smoothing,
                       z_loss=0.0, *, loss=True, grad=False, grad_output=1.0, out=None,
                       lse_out=None, return_correct=False):
    if return_correct is not False:
        return_correct = _flag(return_correct, "return_correct")
    eps = _real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    z_loss = _real_scalar(z_loss, "z_loss", 0.0)
    try:
        ignore_index = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}") from None
    if not -_INT64_MAX - 1 <= ignore_index <= _INT64_MAX:
        raise ValueError(f"ignore_index must fit in int64, got {ignore_index}")
    x = _as_f32(input, "input")
    d = 1
    if x.ndim == 2:
        n, c = x.shape
        shape = (n,)
    elif x.ndim == 1:
        n, c = 1, x.shape[0]
        shape = ()
    elif x.ndim == 0:
        raise ValueError("input must have shape (N, C), (C,) or (N, C, d1, ..., dk), "
                         "got a scalar")
    else:
        n, c = x.shape[:2]
        shape = (n,) + x.shape[2:]
        d = int(np.prod(x.shape[2:], dtype=np.int64))
    w = _class_weight(weight, c)
    lse_out = _per_sample_buffer(lse_out, shape, "lse_out")
    soft = _is_soft_target(target, x.shape)
    if soft:
        if ignore_index != -100:
            raise ValueError("ignore_index is not supported for floating point target "
                             "(probabilities); leave it at -100")
        if return_correct:
            raise ValueError("return_correct needs class-index targets, not probabilities")
        if c == 0:
            raise ValueError("input must have at least one class")
        t = _as_f32(target, "target")
    else:
        t = _class_target(target, shape, x.shape)
    if lse_out is not None:
        _check_disjoint("lse_out", lse_out, (("input", x), ("target", t), ("weight", w),
                                            ("grad_output", grad_output)))
    reads = (("target", t), ("weight", w), ("lse_out", lse_out))
    if soft:
        return _run(_core.cross_entropy_soft, x, loss, grad, grad_output, out, reads, code,
                    shape, x, t, n, c, d, w, eps, z_loss, lse_out)
    correct = np.empty(shape, np.int8) if return_correct else None
    try:
        result = _run(_core.cross_entropy, x, loss, grad, grad_output, out, reads, code, shape,
                      x, t, n, c, d, ignore_index, w, eps, z_loss, lse_out, correct)
    except _core.TargetError as exc:
        flat, value, classes, ignore = exc.args
        where = np.unravel_index(flat, shape) if len(shape) > 1 else (flat,) if shape else ()
        index = ", ".join(str(int(i)) for i in where)
        raise ValueError(f"target[{index}] = {value} is out of range for {classes} classes "
                         f"(valid: 0 <= target < {classes}, or ignore_index={ignore})") from None
    if not return_correct:
        return result
    n_correct = int(np.count_nonzero(correct))
    return (*result, n_correct) if isinstance(result, tuple) else (result, n_correct)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0, *, z_loss=0.0,
                  lse_out=None, return_correct=False):
    r"""Softmax cross-entropy between logits and class indices (``torch.nn.functional.cross_entropy``).

    .. math::

        \mathrm{lse}_i = m_i + \log \sum_j e^{x_{ij} - m_i}, \quad m_i = \max_j x_{ij}

        \ell_i = (1 - \varepsilon)\, w_{t_i} (\mathrm{lse}_i - x_{i,t_i})
               + \frac{\varepsilon}{C} \sum_c w_c (\mathrm{lse}_i - x_{ic})
               + z\, \mathrm{lse}_i^2

    with :math:`w` the class weights (all 1 without ``weight``),
    :math:`\varepsilon` the label smoothing and :math:`z` the z-loss (PaLM). This
    is PyTorch's formula, weights inside the smoothing sum included. Rows whose
    target equals ``ignore_index`` contribute 0 and are left out of the mean's
    denominator: ``'mean'`` is :math:`\sum_i \ell_i / \sum_{i\, kept} w_{t_i}`
    (the number of kept rows without weights; NaN when it is 0).

    Parameters
    ----------
    input : array_like, shape (N, C), (C,) or (N, C, d1, ..., dk)
        Logits, the classes on axis 1 as in PyTorch (K-dimensional input, e.g.
        segmentation, is computed in place without transposing it). A
        C-contiguous float32 array is used as is; any other real dtype or
        memory layout is converted to one once (a copy).
    target : array_like
        Class indices of shape (N,), () or (N, d1, ..., dk) in ``[0, C)``, or
        ``ignore_index``, any integer dtype; or probabilities ("soft" targets):
        floats of the input's shape. With probabilities the per-sample loss is
        :math:`-\sum_c w_c y'_c \log p_c (+ z\, \mathrm{lse}^2)` with
        :math:`y' = (1 - \varepsilon) y + \varepsilon / C`, ``'mean'`` divides
        by the number of samples, and ``ignore_index`` must stay -100, as in
        PyTorch.
    weight : array_like, shape (C,), optional
        Finite class weights.
    size_average, reduce
        Deprecated (as in PyTorch); they override ``reduction`` when given.
    ignore_index : int, default -100
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    label_smoothing : float in [0, 1], default 0.0
    z_loss : float >= 0, keyword-only, default 0.0
        Adds ``z_loss * lse**2`` per kept row (not weighted), as in PaLM and
        Liger-Kernel; its gradient comes from the same pass.
    lse_out : float32 ndarray of shape (N,) (``()`` unbatched), keyword-only, optional
        Filled with each row's log-sum-exp (NaN for ignored rows), at no extra cost.
    return_correct : bool, keyword-only, default False
        Also return the number of rows whose ``argmax`` (first maximum, as
        ``torch.argmax``) equals the target, computed in the same pass; rows
        holding NaN never count.

    Returns
    -------
    float or ndarray
        A Python float for 'mean' and 'sum' (accumulated in double); a float32
        array of shape (N,) (or ``()`` for unbatched input) for 'none'. With
        ``return_correct``, a tuple ``(loss, num_correct)``.

    Raises
    ------
    ValueError
        Wrong shapes, an unknown reduction, or a target outside ``[0, C)`` that
        is not ``ignore_index`` (the message names the row and the value).
    TypeError
        Non-numeric input, or a target that is not integer.
    """
    _, code = _reduction(reduction, size_average, reduce)
    return _run_cross_entropy(input, target, weight, ignore_index, code, label_smoothing,
                              z_loss, lse_out=lse_out, return_correct=return_correct)


# --------------------------------------------------------------------------
# Elementwise losses: BCE with logits, sigmoid focal loss, MSE, L1, Huber, smooth L1.

# Kinds of _core.elementwise, as in src/fl_internal.h.
_BCE, _FOCAL, _MSE, _L1, _HUBER, _SMOOTH_L1 = range(6)


def _periodic_weight(weight, shape, name):
    """A weight broadcastable to `shape` as (float32 vector, period P): element
    i of the flattened input uses vector[i % P]. A weight that varies only
    along trailing axes (a scalar, per class along the last axis, full shape)
    is used in place; any other broadcast (e.g. (N, 1)) is materialised."""
    if weight is None:
        return None, 0
    w = _as_f32(weight, name)
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


def _run_elementwise(kind, input, target, code, weight=None, pos_weight=None, param0=0.0,
                     param1=0.0, *, loss=True, grad=False, grad_output=1.0, out=None,
                     weight_names=("weight", "pos_weight"), arg_names=("input", "target")):
    x_name, y_name = arg_names
    x = _as_f32(input, x_name)
    y = _as_f32(target, y_name)
    if y.shape != x.shape:
        raise ValueError(f"{y_name} has shape {y.shape} but {x_name} has shape {x.shape}; "
                         "they must match (fastloss does not broadcast targets)")
    w, w_period = _periodic_weight(weight, x.shape, weight_names[0])
    pw, pw_period = _periodic_weight(pos_weight, x.shape, weight_names[1])
    reads = ((y_name, y), (weight_names[0], w), (weight_names[1], pw))
    return _run(_core.elementwise, x, loss, grad, grad_output, out, reads, code, x.shape,
                kind, x, y, x.size, w, w_period, pw, pw_period, param0, param1)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    r"""Binary cross-entropy on logits (``torch.nn.functional.binary_cross_entropy_with_logits``).

    .. math::

        \ell_i = w_i \bigl[ (1 - y_i) x_i + (1 + (p_i - 1) y_i)
                 \bigl(\log(1 + e^{-|x_i|}) + \max(-x_i, 0)\bigr) \bigr]

    with :math:`w` the ``weight`` and :math:`p` the ``pos_weight`` (1 when
    omitted), i.e. :math:`\max(x, 0) - x y + \log(1 + e^{-|x|})` without them;
    computed in log space so that nothing overflows for any finite logit.
    ``'mean'`` divides by the number of elements, weights or not (NaN for an
    empty input), as in PyTorch.

    Parameters
    ----------
    input : array_like, any shape
        Logits; converted to C-contiguous float32 if it is not already.
    target : array_like, same shape as input
        Targets, usually in [0, 1] (other values are computed as the formula says).
    weight : array_like, optional
        Finite weights broadcastable to the input's shape.
    size_average, reduce
        Deprecated (as in PyTorch); they override ``reduction`` when given.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    pos_weight : array_like, optional
        Finite weights of the positive term, broadcastable to the input's shape
        (usually one per class along the last axis).

    Returns
    -------
    float or ndarray
        A Python float for 'mean' and 'sum'; a float32 array of input's shape for 'none'.
    """
    _, code = _reduction(reduction, size_average, reduce)
    return _run_elementwise(_BCE, input, target, code, weight, pos_weight)


def _focal_params(alpha, gamma):
    return _real_scalar(alpha, "alpha"), _real_scalar(gamma, "gamma", 0.0)


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    r"""Sigmoid focal loss (``torchvision.ops.sigmoid_focal_loss``; Lin et al., 2017).

    .. math::

        \ell_i = \alpha_t\, \mathrm{BCE}(x_i, y_i)\, (1 - p_t)^\gamma, \quad
        p_t = p y + (1 - p)(1 - y), \quad \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    with :math:`p = \sigmoid(x)`; :math:`\alpha_t = 1` when ``alpha < 0``.
    ``'mean'`` divides by the number of elements. Note torchvision's default
    reduction is ``'none'``. :math:`1 - p_t` is formed from
    :math:`\sigma(x)` and :math:`\sigma(-x)` separately, so confident
    predictions do not lose it to cancellation.

    Parameters
    ----------
    inputs : array_like, any shape
        Logits.
    targets : array_like, same shape
        Binary (or soft) targets. Targets outside [0, 1] follow the formula,
        as in torchvision: :math:`1 - p_t` may then be negative, and
        :math:`(1 - p_t)^\gamma` is ``torch.pow``'s (real for an integral
        ``gamma``, NaN otherwise).
    alpha : float, default 0.25
    gamma : float >= 0, default 2.0
    reduction : {'none', 'mean', 'sum'}, default 'none'
    """
    _, code = _reduction(reduction)
    a, g = _focal_params(alpha, gamma)
    return _run_elementwise(_FOCAL, inputs, targets, code, param0=a, param1=g,
                            arg_names=("inputs", "targets"))


def _regression_doc(name, torch_name, formula, mean, extra=""):
    return rf"""{name} (``torch.nn.functional.{torch_name}``).

    .. math::

        {formula}

    with :math:`d_i = x_i - y_i`. {mean} Unlike PyTorch, a target of a
    different shape is an error, not a broadcast.{extra}

    Returns
    -------
    float or ndarray
        A Python float for 'mean' and 'sum'; a float32 array of input's shape for 'none'.
    """


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    _, code = _reduction(reduction, size_average, reduce)
    return _run_elementwise(_MSE, input, target, code, weight)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    _, code = _reduction(reduction, size_average, reduce)
    return _run_elementwise(_L1, input, target, code, weight)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    _, code = _reduction(reduction)
    delta = _positive_delta(delta)
    return _run_elementwise(_HUBER, input, target, code, weight, param0=delta)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    _, code = _reduction(reduction, size_average, reduce)
    beta = _real_scalar(beta, "beta", 0.0)
    return _run_elementwise(_SMOOTH_L1, input, target, code, param0=beta)


_WEIGHT_DOC = r"""

    ``weight`` (optional): finite elementwise weights, broadcastable to the
    input's shape (PyTorch 2.13 requires exactly the input's shape)."""

mse_loss.__doc__ = _regression_doc(
    "Mean squared error", "mse_loss", r"\ell_i = w_i d_i^2",
    "``'mean'`` divides by the number of elements, or by the sum of the "
    "(broadcast) weight when one is given, as PyTorch 2.13 does.", _WEIGHT_DOC)
l1_loss.__doc__ = _regression_doc(
    "Mean absolute error", "l1_loss", r"\ell_i = w_i |d_i|",
    "``'mean'`` divides by the number of elements, or by the sum of the "
    "(broadcast) weight when one is given. The gradient at d = 0 is 0 "
    "(sign(0) = 0), as in PyTorch.", _WEIGHT_DOC)
huber_loss.__doc__ = _regression_doc(
    "Huber loss", "huber_loss",
    r"\ell_i = w_i \begin{cases} d_i^2 / 2 & |d_i| < \delta \\ "
    r"\delta (|d_i| - \delta / 2) & \text{otherwise} \end{cases}",
    "``'mean'`` divides by the number of elements, with or without a weight "
    "(as PyTorch 2.13 does). ``delta`` must be positive and finite.", _WEIGHT_DOC)
smooth_l1_loss.__doc__ = _regression_doc(
    "Smooth L1 loss", "smooth_l1_loss",
    r"\ell_i = \begin{cases} d_i^2 / (2\beta) & |d_i| < \beta \\ "
    r"|d_i| - \beta / 2 & \text{otherwise} \end{cases}",
    "``'mean'`` divides by the number of elements. ``beta = 0`` is the L1 "
    "loss; ``beta`` must be finite and >= 0.")
