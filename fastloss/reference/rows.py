r"""The row losses, one value per row of (N, C): :func:`multilabel_soft_margin_loss`
and its gradient."""

import numpy as np

from ._common import _check_reduction, _grad_scale, _real_float64, _reduce
from ._docs import gradient_of, loss_doc

__all__ = ["multilabel_soft_margin_loss", "multilabel_soft_margin_loss_grad"]

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

