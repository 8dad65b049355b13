r"""The row losses, one value per row of (N, C): :func:`multilabel_soft_margin_loss`,
:func:`multi_margin_loss` and their gradients."""

import numpy as np

from ._common import _check_reduction, _grad_scale, _real_float64, _reduce
from ._docs import gradient_of, loss_doc

__all__ = ["multilabel_soft_margin_loss", "multilabel_soft_margin_loss_grad",
           "multi_margin_loss", "multi_margin_loss_grad"]

_ROW_GRAD_OUTPUT = ("A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of\n"
                    "the per-row loss's shape, or a scalar that is broadcast.")


def _multilabel_args(input, target, weight):
    """x, y (rows, C) float64, w broadcast to them, the per-row shape."""
    x = _real_float64("input", input)
    y = _real_float64("target", target)
    if x.ndim == 0:
        raise ValueError("input must have the classes on its last axis, got a scalar")
    if y.shape != x.shape:
        raise ValueError(f"target shape {y.shape} does not match input shape {x.shape}")
    if weight is None:
        w = np.ones(x.shape)
    else:
        w = _real_float64("weight", weight)
        try:
            w = np.broadcast_to(w, x.shape)
        except ValueError:
            raise ValueError(f"weight of shape {w.shape} does not broadcast to the input's "
                             f"shape {x.shape}") from None
    c = x.shape[-1]
    rows = x.shape[:-1]
    return x.reshape(-1, c), y.reshape(-1, c), w.reshape(-1, c), rows


def _log_sigmoid(x):
    """log(1 / (1 + exp(-x))), without overflow for any x."""
    return -np.logaddexp(0.0, -x)


@loss_doc
def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    r"""Multilabel soft margin loss, averaged over each row's classes (float64).

    Parameters
    ----------
    input : array_like, shape (N, C), (C,) or (d1, ..., dk, C)
        Scores ``x``, the classes on the last axis.
    target : array_like, shape of ``input``
        Targets ``y``, usually 0 or 1.
    weight : array_like, optional
        Weights ``w`` broadcast to the input's shape (per class: (C,)).
    {{reduction}}

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64 per-row
        losses, of the input's shape without its last axis.

    Raises
    ------
    TypeError
        Non-real arrays.
    ValueError
        Bad shapes, or an unknown reduction.

    Notes
    -----
    :math:`\ell_n = -\frac{1}{C} \sum_c w_{n,c} [y \log\sigma(x) + (1 - y)
    \log\sigma(-x)]`, divided by C (not by the weights' sum); ``'mean'``
    divides the rows' sum by their number (NaN for no rows).
    """
    _check_reduction(reduction)
    x, y, w, rows = _multilabel_args(input, target, weight)
    c = x.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        per = -(y * _log_sigmoid(x) + (1.0 - y) * _log_sigmoid(-x)) * w
        loss = np.sum(per, axis=1) / np.float64(c)
    if reduction == "none":
        return loss.reshape(rows)
    return _reduce(loss, reduction, loss.size)


@gradient_of(multilabel_soft_margin_loss, grad_output=_ROW_GRAD_OUTPUT)
def multilabel_soft_margin_loss_grad(input, target, weight=None, reduction="mean",
                                     grad_output=1.0):
    r"""
    Notes
    -----
    :math:`\partial \ell_n / \partial x_{n,c} = w_{n,c} (\sigma(x_{n,c}) -
    y_{n,c}) / C`, times ``grad_output`` (``'sum'``), ``grad_output[n]``
    (``'none'``) or ``grad_output / N`` (``'mean'``).
    """
    _check_reduction(reduction)
    x, y, w, rows = _multilabel_args(input, target, weight)
    c = x.shape[1]
    n = x.shape[0]
    g = _grad_scale(grad_output, reduction, rows, n)
    g = np.broadcast_to(g, rows).reshape(-1, 1) if reduction == "none" else g
    with np.errstate(invalid="ignore", over="ignore"):
        sig = np.exp(_log_sigmoid(x))
        grad = w * (sig - y) / np.float64(max(c, 1)) * g
    return grad.reshape(np.shape(input))


def _multi_margin_args(input, target, p, margin, weight):
    """x (rows, C) float64, t (rows,) int64, w (C,), the per-row shape."""
    if p != 1 and p != 2:
        raise ValueError(f"p must be 1 or 2, got {p}")
    x = _real_float64("input", input)
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}")
    if x.ndim > 2:
        raise ValueError(f"input must have shape (N, C), (C,) or (), got {x.shape}")
    rows = (x.shape[0],) if x.ndim == 2 else t.shape
    if t.shape != rows or (x.ndim < 2 and t.shape not in ((), (1,))):
        raise ValueError(f"target shape {t.shape} does not match input shape {x.shape}")
    x = x.reshape(-1, x.shape[-1] if x.ndim else 1)
    c = x.shape[1]
    if c == 0:
        raise ValueError("input must have at least one class")
    t = t.astype(np.int64).reshape(-1)
    bad = np.flatnonzero((t < 0) | (t >= c))
    if bad.size:
        raise ValueError(f"target[{int(bad[0])}] = {int(t[bad[0]])} is out of range for "
                         f"{c} classes")
    w = np.ones(c) if weight is None else _real_float64("weight", weight)
    if w.shape != (c,):
        raise ValueError(f"weight must have shape ({c},), got {w.shape}")
    return x, t, w, rows


def _margins(x, t, margin):
    """z (rows, C) = margin - x_t + x_j, and where a term counts: j != t and
    z > 0, or z NaN (NaN in a row gives a NaN loss)."""
    n, c = x.shape
    xt = x[np.arange(n), t][:, None]
    z = (float(margin) - xt) + x
    with np.errstate(invalid="ignore"):
        on = (z > 0) | np.isnan(z)
    on[np.arange(n), t] = False
    return z, on


@loss_doc
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    r"""Multi-class hinge (margin) loss of class indices (float64).

    Parameters
    ----------
    input : array_like, shape (N, C), (C,) or ()
        Scores ``x``, the classes on the last axis.
    target : array_like of int, shape (N,), () or (1,)
        Class indices ``t`` in ``[0, C)``.
    p : int, default 1
        1 or 2.
    margin : float, default 1.0
    weight : array_like, shape (C,), optional
        Class weights ``w``; row n takes that of its target.
    {{reduction}}

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64 per-row
        losses, of the target's shape.

    Raises
    ------
    TypeError
        Non-real input, or non-integer target.
    ValueError
        Bad shapes, p not 1 or 2, or a target outside ``[0, C)``.

    Notes
    -----
    :math:`\ell_n = \frac{w_t}{C} \sum_{j \ne t} \max(0, \mathrm{margin} - x_t
    + x_j)^p`, the weight outside the power as PyTorch computes it;
    ``'mean'`` divides the rows' sum by their number. NaN in a row gives NaN
    (fastloss's rule; PyTorch drops NaN terms).
    """
    _check_reduction(reduction)
    x, t, w, rows = _multi_margin_args(input, target, p, margin, weight)
    z, on = _margins(x, t, margin)
    h = np.where(on, z ** p, 0.0)
    loss = w[t] * np.sum(h, axis=1) / x.shape[1]
    if reduction == "none":
        return loss.reshape(rows)
    return _reduce(loss, reduction, loss.size)


@gradient_of(multi_margin_loss, grad_output=_ROW_GRAD_OUTPUT)
def multi_margin_loss_grad(input, target, p=1, margin=1.0, weight=None, reduction="mean",
                           grad_output=1.0):
    r"""
    Notes
    -----
    A counted term gives :math:`w_t p z^{p-1} / C` at its class and its
    negative at the target; a tie (z = 0) gives nothing. Times
    ``grad_output`` (``'sum'``), ``grad_output[n]`` (``'none'``) or
    ``grad_output / N`` (``'mean'``).
    """
    _check_reduction(reduction)
    x, t, w, rows = _multi_margin_args(input, target, p, margin, weight)
    n, c = x.shape
    g = _grad_scale(grad_output, reduction, rows, n)
    g = np.broadcast_to(g, rows).reshape(-1) if reduction == "none" else np.broadcast_to(g, (n,))
    z, on = _margins(x, t, margin)
    slope = np.where(np.isnan(z), np.nan, p * z ** (p - 1))   # nan ** 0 would be 1
    dh = np.where(on, slope, 0.0) * (w[t] / c * g)[:, None]
    dh[np.arange(n), t] = -np.sum(dh, axis=1)
    return dh.reshape(np.shape(input))
