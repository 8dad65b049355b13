"""The family runners: from validated arguments to one kernel call.

Every public loss (fastloss/_api.py, generated) goes through one of the
runners, :func:`elementwise`, :func:`cross_entropy` and :func:`nll_loss`, in
one of three modes: the loss only ("forward"), the gradient only ("backward", with an
upstream gradient) or both from one fused kernel call ("loss_and_grad").
A runner validates the arrays (fastloss/_validate.py), allocates the
outputs the caller did not pass, and calls the loss's binding in
fastloss/_core.pyx with the thread count.
"""

import math

import numpy as np

from . import _core
from . import _validate as v
from ._threads import get_num_threads

# The fast bindings ask for the thread count only for calls big enough to use it.
_core._set_thread_source(get_num_threads)


def call(kernel, x, loss, grad, grad_output, out, reads, code, per_sample_shape, *args):
    """Allocate outputs, call ``kernel(*args, reduction, grad_scale,
    grad_per_sample, loss_out, grad_out, n_threads)`` and shape the result.
    `reads`: (name, array or None) pairs that a caller's out must not overlap.
    BATCHMEAN runs as SUM, the loss and the gradient's scale divided by the
    input's first dimension (1 for a 0-d input; 0 gives NaN, as in PyTorch)."""
    batch = None
    if code == v.BATCHMEAN:
        code, batch = v.SUM, (x.shape[0] if x.ndim else 1)
    loss_out = np.empty(per_sample_shape, v.F32) if (loss and code == v.NONE) else None
    g = None
    scale, per_sample = 1.0, None
    if grad:
        scale, per_sample = v.grad_output(grad_output, code, per_sample_shape)
        if batch is not None:
            scale = scale / batch if batch else math.nan
        g = np.empty(x.shape, v.F32) if out is None else v.out_buffer(
            out, x, reads + (("grad_output", per_sample),))
    reduced = kernel(*args, code, scale, per_sample, loss_out, g, get_num_threads())
    if batch is not None and loss:
        reduced = reduced / batch if batch else math.nan
    value = (reduced if code != v.NONE else loss_out) if loss else None
    if loss and grad:
        return value, g
    return value if loss else g


def elementwise(kernel, names, input, target, code, scalars, weights, *, loss=True, grad=False,
                grad_output=1.0, out=None, ranges=()):
    """One elementwise loss. `names`: (input name, target name, weight names...);
    `scalars`: the validated scalar options, in the binding's order; `weights`:
    the WEIGHT options as given, in the order of their names; `ranges`: the
    spec's (array name, low, high) that input or target must lie in."""
    x_name, y_name = names[0], names[1]
    x = v.as_f32(input, x_name)
    y = v.as_f32(target, y_name)
    v.same_shape(x, y, x_name, y_name)
    for name, low, high in ranges:
        v.within(x if name == x_name else y, name, low, high)
    args = [x, y, *scalars]
    reads = [(y_name, y)]
    for name, weight in zip(names[2:], weights):
        w, period = v.periodic_weight(weight, x.shape, name)
        args += [w, period]
        reads.append((name, w))
    return call(kernel, x, loss, grad, grad_output, out, tuple(reads), code, x.shape, *args)


def _class_layout(x):
    """(n, c, d, per-sample shape) of class-score input x: (N, C), (C,) or
    (N, C, d1, ..., dk), d the product of the trailing dimensions."""
    if x.ndim == 2:
        return x.shape[0], x.shape[1], 1, (x.shape[0],)
    if x.ndim == 1:
        return 1, x.shape[0], 1, ()
    if x.ndim == 0:
        raise ValueError("input must have shape (N, C), (C,) or (N, C, d1, ..., dk), "
                         "got a scalar")
    n, c = x.shape[:2]
    return n, c, int(np.prod(x.shape[2:], dtype=np.int64)), (n,) + x.shape[2:]


def _target_error(exc, shape):
    """The ValueError for the binding's TargetError, naming the index in the
    target's shape and the value."""
    flat, value, classes, ignore = exc.args
    where = np.unravel_index(flat, shape) if len(shape) > 1 else (flat,) if shape else ()
    index = ", ".join(str(int(i)) for i in where)
    return ValueError(f"target[{index}] = {value} is out of range for {classes} classes "
                      f"(valid: 0 <= target < {classes}, or ignore_index={ignore})")


def cross_entropy(input, target, weight, ignore_index, code, label_smoothing, z_loss, *,
                  loss=True, grad=False, grad_output=1.0, out=None, lse_out=None,
                  return_correct=False):
    """Cross-entropy with class or probability targets; scalar options already
    validated (fastloss/_api.py)."""
    x = v.as_f32(input, "input")
    n, c, d, shape = _class_layout(x)
    w = v.class_weight(weight, c)
    lse_out = v.per_sample_buffer(lse_out, shape, "lse_out")
    soft = v.is_soft_target(target, x.shape)
    if soft:
        if ignore_index != -100:
            raise ValueError("ignore_index is not supported for floating point target "
                             "(probabilities); leave it at -100")
        if return_correct:
            raise ValueError("return_correct needs class-index targets, not probabilities")
        if c == 0:
            raise ValueError("input must have at least one class")
        t = v.as_f32(target, "target")
    else:
        t = v.class_target(target, shape, x.shape)
    if lse_out is not None:
        v.check_disjoint("lse_out", lse_out, (("input", x), ("target", t), ("weight", w),
                                              ("grad_output", grad_output)))
    reads = (("target", t), ("weight", w), ("lse_out", lse_out))
    if soft:
        return call(_core.cross_entropy_soft, x, loss, grad, grad_output, out, reads, code,
                    shape, x, t, n, c, d, w, label_smoothing, z_loss, lse_out)
    correct = np.empty(shape, np.int8) if return_correct else None
    try:
        result = call(_core.cross_entropy, x, loss, grad, grad_output, out, reads, code, shape,
                      x, t, n, c, d, ignore_index, w, label_smoothing, z_loss, lse_out, correct)
    except _core.TargetError as exc:
        raise _target_error(exc, shape) from None
    if not return_correct:
        return result
    n_correct = int(np.count_nonzero(correct))
    return (*result, n_correct) if isinstance(result, tuple) else (result, n_correct)


def nll_loss(input, target, weight, ignore_index, code, *, loss=True, grad=False,
             grad_output=1.0, out=None):
    """Negative log-likelihood of class targets given log-probabilities; scalar
    options already validated (fastloss/_api.py)."""
    x = v.as_f32(input, "input")
    n, c, d, shape = _class_layout(x)
    w = v.class_weight(weight, c)
    t = v.class_target(target, shape, x.shape, probabilities=False)
    reads = (("target", t), ("weight", w))
    try:
        return call(_core.nll_loss, x, loss, grad, grad_output, out, reads, code, shape,
                    x, t, n, c, d, ignore_index, w)
    except _core.TargetError as exc:
        raise _target_error(exc, shape) from None


def multilabel_soft_margin_loss(input, target, weight, code, *, loss=True, grad=False,
                                grad_output=1.0, out=None):
    """The multilabel soft margin loss over the rows of input (the classes on
    the last axis); the target has the input's shape."""
    x = v.as_f32(input, "input")
    if x.ndim == 0:
        raise ValueError("input must have the classes on its last axis, (N, C) or (C,); "
                         "got a scalar")
    y = v.as_f32(target, "target")
    v.same_shape(x, y, "input", "target")
    c = x.shape[-1]
    shape = x.shape[:-1]
    n = int(np.prod(shape, dtype=np.int64))
    w, period = v.periodic_weight(weight, x.shape, "weight")
    if w is not None and period % c:   # a scalar weight: one per class for the C
        w, period = np.full(c, w[0], v.F32), c
    reads = (("target", y), ("weight", w))
    return call(_core.multilabel_soft_margin_loss, x, loss, grad, grad_output, out, reads, code,
                shape, x, y, n, c, w, period)


def multi_margin_loss(input, target, p, margin, weight, code, *, loss=True, grad=False,
                      grad_output=1.0, out=None):
    """The multi-class margin loss of class targets; p and margin already
    checked as an int and a float (fastloss/_api.py)."""
    if p != 1 and p != 2:
        raise ValueError(f"p must be 1 or 2, got {p}")
    x = v.as_f32(input, "input")
    if x.ndim > 2:
        raise ValueError(f"input must have shape (N, C), (C,) or (), got shape {x.shape}")
    if x.ndim == 2:
        n, c = x.shape
        shape = (n,)
    else:   # one row: the per-sample shape is the target's, () or (1,)
        n, c = 1, (x.shape[0] if x.ndim else 1)
        shape = (1,) if np.shape(target) == (1,) else ()
    if c == 0:
        raise ValueError(f"input must have at least one class, got shape {x.shape}")
    t = v.class_target(target, shape, x.shape, probabilities=False)
    w = v.class_weight(weight, c)
    reads = (("target", t), ("weight", w))
    try:
        return call(_core.multi_margin_loss, x, loss, grad, grad_output, out, reads, code,
                    shape, x, t, n, c, p, margin, w)
    except _core.TargetError as exc:
        flat, value = exc.args[0], exc.args[1]
        index = f"[{flat}]" if shape else ""
        raise ValueError(f"target{index} = {value} is out of range for {c} classes "
                         f"(valid: 0 <= target < {c})") from None
