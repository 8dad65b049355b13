r"""Regression losses of ``d = input - target``: mean squared error, L1,
Huber and smooth L1, with the elementwise ``weight`` of PyTorch 2.13 (smooth
L1 has none)."""

import numpy as np

from ._common import (
    _broadcast_weight,
    _check_option,
    _check_reduction,
    _elementwise_inputs,
    _grad_scale,
    _reduce,
)
from ._docs import gradient_of, loss_doc

__all__ = [
    "mse_loss",
    "mse_loss_grad",
    "l1_loss",
    "l1_loss_grad",
    "huber_loss",
    "huber_loss_grad",
    "smooth_l1_loss",
    "smooth_l1_loss_grad",
    "poisson_nll_loss",
    "poisson_nll_loss_grad",
]


def _regression_parts(input, target, weight=None):
    """``d = x - y`` and the weight broadcast to its shape (or None)."""
    x, y = _elementwise_inputs(input, target)
    return x - y, _broadcast_weight("weight", weight, x.shape)


def _weight_sum_or_size(d, w):
    """Denominator of a weighted mean: ``sum(w)``, or the element count."""
    return d.size if w is None else np.sum(w)


def _times_weight(values, w):
    return values if w is None else w * values


@loss_doc
def mse_loss(input, target, reduction="mean", *, weight=None):
    r"""Squared error between ``input`` and ``target`` (float64).

    Parameters
    ----------
    {{elementwise_input}}
    {{reduction}}
    {{regression_weight}}

    {{elementwise_returns}}

    Notes
    -----
    :math:`\ell = w (x - y)^2` elementwise (:math:`w = 1` without
    ``weight``).  ``'mean'`` divides the sum by the number of elements, or,
    with ``weight``, by :math:`\sum w` over the broadcast weight (PyTorch
    2.13's weighted mean).  An empty input gives NaN.
    """
    _check_reduction(reduction)
    d, w = _regression_parts(input, target, weight)
    return _reduce(_times_weight(d**2, w), reduction, _weight_sum_or_size(d, w))


@gradient_of(mse_loss)
def mse_loss_grad(input, target, reduction="mean", grad_output=1.0, *, weight=None):
    r"""
    Notes
    -----
    :math:`\partial \ell / \partial x = 2 w (x - y)`, multiplied by
    ``grad_output`` (elementwise for ``'none'``) and, for ``'mean'``,
    divided by the number of elements (by :math:`\sum w` with ``weight``).
    """
    _check_reduction(reduction)
    d, w = _regression_parts(input, target, weight)
    g = _grad_scale(grad_output, reduction, d.shape, _weight_sum_or_size(d, w))
    with np.errstate(invalid="ignore"):  # sum(w) = 0: inf * 0 = NaN, as in PyTorch
        return g * _times_weight(2.0 * d, w)


@loss_doc
def l1_loss(input, target, reduction="mean", *, weight=None):
    r"""Absolute error between ``input`` and ``target`` (float64).

    Parameters
    ----------
    {{elementwise_input}}
    {{reduction}}
    {{regression_weight}}

    {{elementwise_returns}}

    Notes
    -----
    :math:`\ell = w |x - y|` elementwise.  ``'mean'`` divides the sum by the
    number of elements, or, with ``weight``, by :math:`\sum w` over the
    broadcast weight (PyTorch 2.13).  An empty input gives NaN.
    """
    _check_reduction(reduction)
    d, w = _regression_parts(input, target, weight)
    return _reduce(_times_weight(np.abs(d), w), reduction, _weight_sum_or_size(d, w))


@gradient_of(l1_loss)
def l1_loss_grad(input, target, reduction="mean", grad_output=1.0, *, weight=None):
    r"""
    Notes
    -----
    :math:`\partial \ell / \partial x = w\, \mathrm{sign}(x - y)` with
    :math:`\mathrm{sign}(0) = 0` (PyTorch's subgradient at a tie), multiplied
    by ``grad_output`` and, for ``'mean'``, divided by the number of elements
    (by :math:`\sum w` with ``weight``).  A NaN difference gives a NaN
    gradient; PyTorch 2.13 gives 0 there (its ``sign(nan)`` is 0).
    """
    _check_reduction(reduction)
    d, w = _regression_parts(input, target, weight)
    g = _grad_scale(grad_output, reduction, d.shape, _weight_sum_or_size(d, w))
    with np.errstate(invalid="ignore"):  # sum(w) = 0: inf * 0 = NaN, as in PyTorch
        return g * _times_weight(np.sign(d), w)


@loss_doc
def huber_loss(input, target, reduction="mean", delta=1.0, *, weight=None):
    r"""Huber loss between ``input`` and ``target`` (float64).

    Parameters
    ----------
    {{elementwise_input}}
    {{reduction}}
    delta : float > 0, default 1.0
        Where the loss turns from quadratic to linear.
    {{regression_weight}}

    {{elementwise_returns}}

    Raises
    ------
    ValueError
        Also when ``delta`` is not a finite positive number.

    Notes
    -----
    With :math:`d = x - y`:

    .. math::

        \ell = w \begin{cases} d^2 / 2 & |d| < \delta \\
                               \delta\,(|d| - \delta / 2) & \text{otherwise}
                 \end{cases}

    ``'mean'`` divides the sum by the number of elements **with or without**
    ``weight`` -- unlike :func:`mse_loss` and :func:`l1_loss`, whose weighted
    mean divides by :math:`\sum w`.  That is PyTorch 2.13's
    ``F.huber_loss(..., weight=w)``, which takes ``(w * loss).mean()``.
    """
    _check_reduction(reduction)
    delta = _check_option("delta", delta, 0.0, strict=True)
    d, w = _regression_parts(input, target, weight)
    a = np.abs(d)
    loss = np.where(a < delta, 0.5 * d**2, delta * (a - 0.5 * delta))
    return _reduce(_times_weight(loss, w), reduction, d.size)


@gradient_of(huber_loss)
def huber_loss_grad(
    input, target, reduction="mean", delta=1.0, grad_output=1.0, *, weight=None
):
    r"""
    Notes
    -----
    :math:`\partial \ell / \partial x = w\, \mathrm{clip}(d, -\delta, \delta)`,
    multiplied by ``grad_output`` and divided by the number of elements for
    ``'mean'`` (weights or not).
    """
    _check_reduction(reduction)
    delta = _check_option("delta", delta, 0.0, strict=True)
    d, w = _regression_parts(input, target, weight)
    g = _grad_scale(grad_output, reduction, d.shape, d.size)
    return g * _times_weight(np.clip(d, -delta, delta), w)


@loss_doc
def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    r"""Smooth L1 loss between ``input`` and ``target`` (float64).

    Parameters
    ----------
    {{elementwise_input}}
    {{reduction}}
    beta : float >= 0, default 1.0
        Where the loss turns from quadratic to linear; ``beta = 0`` is the
        L1 loss.

    {{elementwise_returns}}

    Raises
    ------
    ValueError
        Also when ``beta`` is negative or not finite.

    Notes
    -----
    With :math:`d = x - y`:

    .. math::

        \ell = \begin{cases} d^2 / (2 \beta) & |d| < \beta \\
                             |d| - \beta / 2 & \text{otherwise}
               \end{cases}

    which is :math:`|d|` for :math:`\beta = 0` and the Huber loss divided by
    :math:`\beta` otherwise.  No weight (PyTorch has none either).
    ``'mean'`` divides the sum by the number of elements.
    """
    _check_reduction(reduction)
    beta = _check_option("beta", beta, 0.0, strict=False)
    d, _ = _regression_parts(input, target)
    a = np.abs(d)
    if beta == 0.0:
        loss = a
    else:
        loss = np.where(a < beta, 0.5 * d**2 / beta, a - 0.5 * beta)
    return _reduce(loss, reduction, d.size)


@gradient_of(smooth_l1_loss)
def smooth_l1_loss_grad(input, target, reduction="mean", beta=1.0, grad_output=1.0):
    r"""
    Notes
    -----
    :math:`\partial \ell / \partial x = \mathrm{clip}(d / \beta, -1, 1)`, and
    :math:`\mathrm{sign}(d)` (with :math:`\mathrm{sign}(0) = 0`) for
    :math:`\beta = 0`; multiplied by ``grad_output`` and divided by the number
    of elements for ``'mean'``.  A NaN difference gives NaN (PyTorch 2.13: 0
    for ``beta = 0``, see :func:`l1_loss_grad`).
    """
    _check_reduction(reduction)
    beta = _check_option("beta", beta, 0.0, strict=False)
    d, _ = _regression_parts(input, target)
    local = np.sign(d) if beta == 0.0 else np.clip(d / beta, -1.0, 1.0)
    g = _grad_scale(grad_output, reduction, d.shape, d.size)
    return g * local


def _poisson_legacy(reduction, size_average, reduce):
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


@loss_doc
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    r"""Poisson negative log-likelihood of rates against counts ``y`` (float64).

    ``torch.nn.functional.poisson_nll_loss``, argument order included.

    Parameters
    ----------
    {{elementwise_input}}
    log_input : bool, default True
        ``input`` is the log-rate ``x`` (else the rate).
    full : bool, default False
        Add Stirling's approximation of ``log(y!)`` where ``y > 1``.
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments; they override ``reduction``.
    eps : float, default 1e-8
        Added to the rate inside the log when ``log_input`` is False.
    {{reduction}}

    {{elementwise_returns}}

    Notes
    -----
    .. math::

        \ell = e^x - y x \quad\text{(log_input)}, \qquad
        \ell = x - y \log(x + \varepsilon) \quad\text{(otherwise)}

    plus, with ``full``, :math:`y \log y - y + \tfrac12 \log(2 \pi y)` where
    :math:`y > 1` (0 elsewhere; NaN stays NaN). ``'mean'`` divides the sum by
    the number of elements (NaN for an empty input).
    """
    reduction = _poisson_legacy(reduction, size_average, reduce)
    _check_reduction(reduction)
    x, y = _elementwise_inputs(input, target)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if log_input:
            loss = np.exp(x) - y * x
        else:
            loss = x - y * np.log(x + eps)
        if full:
            stirling = y * np.log(y) - y + 0.5 * np.log(2.0 * np.pi * y)
            loss = loss + np.where(y > 1.0, stirling, np.where(np.isnan(y), y, 0.0))
    return _reduce(loss, reduction, x.size)


@gradient_of(poisson_nll_loss)
def poisson_nll_loss_grad(input, target, log_input=True, full=False, size_average=None,
                          eps=1e-8, reduce=None, reduction="mean", grad_output=1.0):
    r"""
    Notes
    -----
    .. math::

        \frac{\partial \ell}{\partial x} = e^x - y \quad\text{(log_input)}, \qquad
        1 - \frac{y}{x + \varepsilon} \quad\text{(otherwise)}

    (the Stirling term does not depend on :math:`x`), multiplied by
    ``grad_output`` (elementwise for ``'none'``) and divided by the number of
    elements for ``'mean'``.
    """
    reduction = _poisson_legacy(reduction, size_average, reduce)
    _check_reduction(reduction)
    x, y = _elementwise_inputs(input, target)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        local = np.exp(x) - y if log_input else 1.0 - y / (x + eps)
    return _grad_scale(grad_output, reduction, x.shape, x.size) * local
