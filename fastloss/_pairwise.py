"""The pairwise family: losses of several float input arrays, each with a
gradient of its own (``margin_ranking_loss``, ``gaussian_nll_loss``).

Their functions and classes are written here by hand rather than generated
(fastloss/_api.py): the generated call protocol takes one input and one
target and returns one gradient, while these take three arrays, broadcast
them as PyTorch does and return a gradient per differentiable input. They
are not in fastloss/_spec's LOSSES (whose registry-driven tests assume that
protocol); their own tests are tests/values/test_<loss>.py and
tests/pytorch/test_torch_pairwise.py.

Gradient convention: ``loss_and_grad(*arrays)`` returns ``(loss, grads)``
with ``grads`` a tuple in argument order (``(grad_input1, grad_input2)``,
``(grad_input, grad_var)``), each of its array's shape; ``backward(*arrays,
grad_output=...)`` returns the same tuple without the loss. One fused
kernel call (src/pairwise/pairwise.c) computes the loss and every gradient;
a gradient of an array that was broadcast is summed over the broadcast axes
afterwards (in NumPy, in float64: deterministic, whatever the thread count).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core
from . import _validate as _v
from ._base import Reduced
from ._base import option as _option
from ._threads import get_num_threads

__all__ = ["margin_ranking_loss", "MarginRankingLoss", "gaussian_nll_loss", "GaussianNLLLoss"]

_F32 = NDArray[np.float32]


def _broadcast(arrays, names):
    """The common shape of `arrays` (float32), as NumPy broadcasts, or a
    ValueError naming them and their shapes."""
    try:
        return tuple(np.broadcast_shapes(*(a.shape for a in arrays)))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
        raise ValueError(f"shapes do not broadcast: {shapes}") from None


def _expand(a, shape):
    """`a` broadcast to `shape` as a C-contiguous float32 array (a copy only
    when it is broadcast)."""
    return a if a.shape == shape else np.ascontiguousarray(np.broadcast_to(a, shape))


def _sum_to(g, shape):
    """Gradient `g` of a broadcast array summed back to the array's `shape`
    (same number of dimensions), in float64, in NumPy's fixed order."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    total = g.sum(axis=axes, dtype=np.float64, keepdims=True)
    return total.reshape(shape).astype(np.float32)


def _outputs(shape, code, loss, grad, grad_output):
    """(loss_out, grad scale, per-sample grad_output) for a loss of `shape`."""
    loss_out = np.empty(shape, _v.F32) if (loss and code == _v.NONE) else None
    scale, per_sample = _v.grad_output(grad_output, code, shape) if grad else (1.0, None)
    return loss_out, scale, per_sample


def _result(reduced, loss_out, code, loss, grads):
    value = (reduced if code != _v.NONE else loss_out) if loss else None
    if grads is None:
        return value
    return (value, grads) if loss else grads


# ---------------------------------------------------------------------------
# margin_ranking_loss


def _grad_buffer(given, shape):
    """The kernel's output for a gradient of `shape`: the caller's buffer
    when it has that shape, else a new array (then summed into the buffer)."""
    return given if given is not None and given.shape == shape else np.empty(shape, _v.F32)


def _into(given, g):
    """Gradient `g` in the caller's buffer `given` (when there is one)."""
    if given is None or g is given:
        return g
    np.copyto(given, g)
    return given


def _margin_ranking(input1, input2, target, margin, code, *, loss=True, grad=False,
                    grad_output=1.0, sum_grads=True, out=None):
    """The runner: margin already checked, `code` the reduction's.
    `sum_grads=False` (fastloss.torch, reduction='none') leaves the gradients
    of the broadcast shape; `out` the caller's (grad_input1, grad_input2)
    buffers (grad_input1 may be input1)."""
    names = ("input1", "input2", "target")
    x1, x2, y = (_v.as_f32(a, n) for a, n in zip((input1, input2, target), names))
    if not x1.ndim == x2.ndim == y.ndim:
        raise ValueError("input1, input2 and target must have the same number of dimensions "
                         f"(as PyTorch requires), got shapes input1 {x1.shape}, "
                         f"input2 {x2.shape}, target {y.shape}")
    shape = _broadcast((x1, x2, y), names)
    loss_out, scale, per_sample = _outputs(shape, code, loss, grad, grad_output)
    given = (None, None)
    if grad and out is not None:
        given = _v.out_buffers(out, [("input1", x1, True), ("input2", x2, False)],
                               list(zip(names, (x1, x2, y))))
    g1 = _grad_buffer(given[0], shape) if grad else None
    g2 = _grad_buffer(given[1], shape) if grad else None
    reduced = _core.margin_ranking_loss(
        _expand(x1, shape), _expand(x2, shape), _expand(y, shape), margin, g2, code, scale,
        per_sample, loss_out, g1, get_num_threads())
    grads = None
    if grad:
        grads = ((_into(given[0], _sum_to(g1, x1.shape)), _into(given[1], _sum_to(g2, x2.shape)))
                 if sum_grads else (g1, g2))
    return _result(reduced, loss_out, code, loss, grads)


def margin_ranking_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Any:
    r"""Margin ranking loss (``torch.nn.functional.margin_ranking_loss``).

    .. math::

        \ell_i = \max(0,\; -y_i (x_{1,i} - x_{2,i}) + \text{margin})

    over the three arrays broadcast to one shape (they must have the same
    number of dimensions, as PyTorch requires). ``'mean'`` divides by the
    number of elements of that shape (NaN when it is empty). The gradients
    are :math:`\mp y_i [z_i \ge 0]` for :math:`x_1` and :math:`x_2`
    (:math:`z_i` the term inside the max): like PyTorch, the gradient passes
    at the tie :math:`z_i = 0`; a NaN gives a NaN loss and a zero gradient.

    Parameters
    ----------
    input1, input2 : array_like
        The two scores; converted to C-contiguous float32 if they are not.
    target : array_like
        1 where input1 should rank higher, -1 where input2 should (any real
        values are computed as the formula says).
    margin : float, default 0
    size_average, reduce
        Deprecated (as in PyTorch); they override ``reduction`` when given.
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Returns
    -------
    float or ndarray
        A Python float for 'mean' and 'sum'; a float32 array of the broadcast
        shape for 'none'. ``MarginRankingLoss.loss_and_grad`` also returns
        ``(grad_input1, grad_input2)``.
    """
    _, code = _v.reduction(reduction, size_average, reduce)
    margin = _v.real_scalar(margin, "margin")
    return _margin_ranking(input1, input2, target, margin, code)


class MarginRankingLoss(Reduced):
    r"""Margin ranking loss (``torch.nn.MarginRankingLoss``).

    The loss object of :func:`fastloss.margin_ranking_loss` (see it for the
    formula and the denominator of 'mean'), with torch.nn's constructor.
    ``loss_and_grad(input1, input2, target)`` returns ``(loss, (grad_input1,
    grad_input2))`` from one kernel call; ``backward(input1, input2, target,
    grad_output=1.0)`` returns ``(grad_input1, grad_input2)``, each of its
    input's shape (summed over the axes it was broadcast along).
    """

    _options = ("margin",)
    _margin: float

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        self._set_reduction(reduction, size_average, reduce)
        self.margin = margin

    margin = _option("margin", lambda value: _v.real_scalar(value, "margin"))

    def forward(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike) -> Any:
        """The loss: a Python float for 'mean'/'sum', a float32 array for 'none'."""
        return _margin_ranking(input1, input2, target, self._margin, self._code)

    __call__ = forward

    def loss_and_grad(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike,
                      out: tuple | None = None) -> Any:
        """(loss, (grad_input1, grad_input2)) from one fused kernel call; ``out``:
        a tuple of two float32 buffers of the inputs' shapes (None in it:
        allocated; the first may be input1), returned as the gradients."""
        return _margin_ranking(input1, input2, target, self._margin, self._code, grad=True,
                               out=out)

    def backward(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike,
                 grad_output: ArrayLike = 1.0, out: tuple | None = None) -> tuple[_F32, _F32]:
        """(grad_input1, grad_input2) times grad_output, without the loss."""
        return _margin_ranking(input1, input2, target, self._margin, self._code, loss=False,
                               grad=True, grad_output=grad_output, out=out)


# ---------------------------------------------------------------------------
# gaussian_nll_loss


def _var_layout(x_shape, var):
    """(var as (a, c) float32, a, b, c) for an array var of one of PyTorch's
    shapes relative to input's `x_shape`: the same; ``x_shape[:-1]``; or the
    same number of dimensions, equal but for one dimension where var has 1.
    The input is then (a, b, c) with b that dimension (b = 1: no broadcast)."""
    shape = var.shape
    if shape != x_shape and len(x_shape) >= 1 and shape == x_shape[:-1]:
        shape = shape + (1,)
    if shape == x_shape:
        return var.reshape(-1), max(var.size, 0), 1, 1
    mismatched = [i for i, (n, m) in enumerate(zip(x_shape, shape)) if n != m]
    if len(shape) != len(x_shape) or len(mismatched) != 1 or shape[mismatched[0]] != 1:
        raise ValueError(f"var is of incorrect size: var has shape {var.shape} for input of "
                         f"shape {x_shape} (PyTorch takes input's shape, input.shape[:-1], "
                         "or input's shape with one dimension of size 1)")
    k = mismatched[0]
    a = int(np.prod(x_shape[:k], dtype=np.int64))
    c = int(np.prod(x_shape[k + 1:], dtype=np.int64))
    return var.reshape(-1), a, x_shape[k], c


def _gaussian_nll(input, target, var, full, eps, code, *, loss=True, grad=False,
                  grad_output=1.0, out=None):
    """The runner: full and eps already checked, `code` the reduction's; `out`
    the caller's (grad_input, grad_var) buffers (grad_input may be input;
    grad_var None for a float var)."""
    x = _v.as_f32(input, "input")
    t = _v.as_f32(target, "target")
    if t.shape != x.shape:
        try:
            t = np.ascontiguousarray(np.broadcast_to(t, x.shape))
        except ValueError:
            raise ValueError(f"target of shape {t.shape} does not broadcast to input's shape "
                             f"{x.shape} (fastloss's loss has input's shape)") from None
    # a Python number is PyTorch's float var (no gradient); NumPy scalars are arrays
    scalar = type(var) is float or type(var) is int
    if scalar:
        value = float(var)
        if value < 0:
            raise ValueError("var has negative entry/entries")
        v32 = np.array([value], _v.F32)
        a, b, c = x.size, 1, 1
    else:
        v = _v.as_f32(var, "var")
        if v.size and bool((v < 0).any()):
            raise ValueError("var has negative entry/entries")
        v32, a, b, c = _var_layout(x.shape, v)
    loss_out, scale, per_sample = _outputs(x.shape, code, loss, grad, grad_output)
    given = (None, None)
    if grad and out is not None:
        given = _v.out_buffers(out, [("input", x, True), ("var", None if scalar else v, False)],
                               [("input", x), ("target", t), ("var", v32)])
    gx = _grad_buffer(given[0], x.shape) if grad else None
    gv = None
    if grad and not scalar:
        gv = np.empty(a * c, _v.F32) if given[1] is None else given[1].reshape(-1)
    reduced = _core.gaussian_nll_loss(x, t, v32, a, b, c, scalar, full, eps, gv, code, scale,
                                      per_sample, loss_out, gx, get_num_threads())
    grads = None
    if grad:
        grads = (gx, None if scalar else (gv.reshape(v.shape) if given[1] is None
                                          else given[1]))
    return _result(reduced, loss_out, code, loss, grads)


def _gaussian_options(full, eps):
    return _v.flag(full, "full"), _v.real_scalar(eps, "eps", 0.0)


def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Any:
    r"""Gaussian negative log-likelihood (``torch.nn.functional.gaussian_nll_loss``).

    .. math::

        \ell_i = \tfrac12 \bigl(\log v_i + (x_i - y_i)^2 / v_i\bigr)
                 \;+\; [\text{full}]\, \tfrac12 \log 2\pi,
        \qquad v_i = \max(\text{var}_i, \varepsilon)

    with var broadcast to input's shape. As in PyTorch the clamp is not
    differentiated: the var gradient
    :math:`\tfrac12 (1 / v_i - (x_i - y_i)^2 / v_i^2)` is taken at the
    clamped value and passed to var even where var < eps, summed over the
    axes var is broadcast along. ``'mean'`` divides by the number of
    elements of the loss (input's shape; NaN when empty). A NaN var gives NaN.

    Parameters
    ----------
    input : array_like
        The Gaussian's mean; converted to C-contiguous float32 if it is not.
    target : array_like
        Samples; broadcast to input's shape. Unlike PyTorch, a target that
        would broadcast input to a larger shape is a ValueError.
    var : array_like or float
        Non-negative variances, of PyTorch's shapes: input's shape,
        ``input.shape[:-1]``, or input's shape with one dimension of size 1
        (e.g. (N, 1) or (4, 1, 32, 32)); or one Python float for every
        element.
    full : bool, default False
        Add the constant :math:`\tfrac12 \log 2\pi`.
    eps : float, default 1e-6
        Lower clamp of var (>= 0).
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Returns
    -------
    float or ndarray
        A Python float for 'mean' and 'sum'; a float32 array of input's shape
        for 'none'. ``GaussianNLLLoss.loss_and_grad`` also returns
        ``(grad_input, grad_var)``: grad_var has var's shape as passed, and is
        None for a Python-float var (PyTorch gives no gradient to a float).

    Raises
    ------
    ValueError
        A negative var ("var has negative entry/entries", as PyTorch), a var
        of another shape ("var is of incorrect size"), a target that does not
        broadcast to input, a negative or non-finite eps, an unknown reduction.
    """
    _, code = _v.reduction(reduction)
    full, eps = _gaussian_options(full, eps)
    return _gaussian_nll(input, target, var, full, eps, code)


class GaussianNLLLoss(Reduced):
    r"""Gaussian negative log-likelihood (``torch.nn.GaussianNLLLoss``).

    The loss object of :func:`fastloss.gaussian_nll_loss` (see it for the
    formula, the shapes of var and the denominator of 'mean'), with
    torch.nn's keyword-only constructor. ``loss_and_grad(input, target,
    var)`` returns ``(loss, (grad_input, grad_var))`` from one kernel call
    (grad_var of var's shape, None for a Python-float var); ``backward(input,
    target, var, grad_output=1.0)`` returns ``(grad_input, grad_var)``.
    """

    _options = ("full", "eps")
    _full: bool
    _eps: float

    def __init__(self, *, full: bool = False, eps: float = 1e-6,
                 reduction: str = "mean") -> None:
        self._set_reduction(reduction)
        self.full = full
        self.eps = eps

    full = _option("full", lambda value: _v.flag(value, "full"))
    eps = _option("eps", lambda value: _v.real_scalar(value, "eps", 0.0))

    def forward(self, input: ArrayLike, target: ArrayLike, var: ArrayLike | float) -> Any:
        """The loss: a Python float for 'mean'/'sum', a float32 array for 'none'."""
        return _gaussian_nll(input, target, var, self._full, self._eps, self._code)

    __call__ = forward

    def loss_and_grad(self, input: ArrayLike, target: ArrayLike, var: ArrayLike | float,
                      out: tuple | None = None) -> Any:
        """(loss, (grad_input, grad_var)) from one fused kernel call; ``out``: a
        tuple of float32 buffers of input's and var's shapes (None in it:
        allocated; the first may be input; the second None for a float var),
        returned as the gradients."""
        return _gaussian_nll(input, target, var, self._full, self._eps, self._code, grad=True,
                             out=out)

    def backward(self, input: ArrayLike, target: ArrayLike, var: ArrayLike | float,
                 grad_output: ArrayLike = 1.0,
                 out: tuple | None = None) -> tuple[_F32, _F32 | None]:
        """(grad_input, grad_var) times grad_output, without the loss."""
        return _gaussian_nll(input, target, var, self._full, self._eps, self._code,
                             loss=False, grad=True, grad_output=grad_output, out=out)
