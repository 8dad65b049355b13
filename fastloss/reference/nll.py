r"""Negative log-likelihood with class-index targets: :func:`nll_loss` and
:func:`nll_loss_grad`."""

import numpy as np

from ._common import _check_reduction, _grad_scale, _real_float64, _reduce
from ._docs import gradient_of, loss_doc

__all__ = ["nll_loss", "nll_loss_grad"]


def _prepare_nll(input, target, weight, ignore_index):
    """Validate the arguments and flatten them to samples.

    Returns ``x`` (S, C) float64 (one row per sample: the classes of input
    position ``(i, p)``), ``t`` (S,) int64, ``w`` (C,) float64, ``keep`` (S,)
    bool (samples whose target is not ``ignore_index``) and the per-sample
    shape (``()`` unbatched, ``(N,)``, or ``(N, d1, ..., dk)``).
    """
    x = _real_float64("input", input)
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}")
    if x.ndim == 0:
        raise ValueError("input must have shape (N, C), (C,) or (N, C, d1, ..., dk), "
                         "got a scalar")
    per_sample = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    if t.shape != per_sample:
        raise ValueError(f"target shape {t.shape} does not match input shape {x.shape}: "
                         f"expected {per_sample}")
    n_classes = x.shape[0] if x.ndim == 1 else x.shape[1]
    # classes last, then one row per sample
    rows = x.reshape(1, -1) if x.ndim == 1 else np.moveaxis(x, 1, -1).reshape(-1, n_classes)
    t = t.astype(np.int64).reshape(-1)
    if weight is None:
        w = np.ones(n_classes)
    else:
        w = _real_float64("weight", weight)
        if w.shape != (n_classes,):
            raise ValueError(f"weight must have shape ({n_classes},), got {w.shape}")
    keep = t != ignore_index
    bad = np.flatnonzero(keep & ((t < 0) | (t >= n_classes)))
    if bad.size:
        i = int(bad[0])
        where = np.unravel_index(i, per_sample) if per_sample else ()
        index = ", ".join(str(int(k)) for k in where)
        raise ValueError(f"target[{index}] = {int(t[i])} is out of range for {n_classes} "
                         "classes")
    return rows, t, w, keep, per_sample


@loss_doc
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    r"""Negative log-likelihood of class indices given log-probabilities (float64).

    Parameters
    ----------
    input : array_like, shape (N, C), (C,) or (N, C, d1, ..., dk)
        Log-probabilities ``x``, the classes on axis 1 (axis 0 unbatched).
    target : array_like of int, shape (N,), () or (N, d1, ..., dk)
        Class indices ``t`` in ``[0, C)``, or ``ignore_index``.
    weight : array_like, shape (C,), optional
        Per-class weights ``w_c``; all ones when omitted.
    ignore_index : int, default -100
        Samples whose target equals this value contribute neither loss nor
        gradient, and are left out of the ``'mean'`` denominator.
    {{reduction}}

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64 per-sample
        losses, of the target's shape.

    Raises
    ------
    TypeError
        Non-real input, or non-integer target.
    ValueError
        Bad shapes, unknown reduction, or a target outside ``[0, C)`` that is
        not ``ignore_index``.

    Notes
    -----
    A kept sample has :math:`\ell = -w_t\, x_t` (its log-probability of the
    target class, weighted), an ignored one 0. ``'sum'`` is
    :math:`\sum \ell`; ``'mean'`` is :math:`\sum \ell / \sum_{kept} w_t`, the
    weighted mean of PyTorch, whose denominator is the number of kept
    samples without ``weight``. No kept sample: ``'mean'`` is
    ``0 / 0 = nan``, ``'sum'`` is 0.
    """
    _check_reduction(reduction)
    x, t, w, keep, per_sample = _prepare_nll(input, target, weight, ignore_index)
    safe_t = np.where(keep, t, 0)
    w_t = np.where(keep, w[safe_t], 0.0) if len(w) else np.zeros(len(t))
    picked = x[np.arange(len(t)), safe_t] if x.shape[1] else np.zeros(len(t))
    with np.errstate(invalid="ignore"):
        loss = np.where(keep, -w_t * picked, 0.0)
    if reduction == "none":
        return loss.reshape(per_sample)
    return _reduce(loss, reduction, np.sum(w_t))


@gradient_of(
    nll_loss,
    grad_output="A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of\n"
    "the target's shape, or a scalar that is broadcast.",
)
def nll_loss_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                  grad_output=1.0):
    r"""
    Notes
    -----
    The gradient of a kept sample is :math:`-w_t` at its target class and 0
    elsewhere, multiplied by ``grad_output`` (``'sum'``), ``grad_output[i]``
    (``'none'``) or ``grad_output / sum_kept w_t`` (``'mean'``). Ignored
    samples get exactly zero; when every sample is ignored, ``'mean'`` has a
    NaN loss but a zero gradient, as PyTorch's autograd gives.
    """
    _check_reduction(reduction)
    x, t, w, keep, per_sample = _prepare_nll(input, target, weight, ignore_index)
    n = len(t)
    safe_t = np.where(keep, t, 0)
    w_t = np.where(keep, w[safe_t], 0.0) if len(w) else np.zeros(n)
    g = _grad_scale(grad_output, reduction, per_sample, np.sum(w_t))
    g = np.broadcast_to(g, per_sample).reshape(-1) if reduction == "none" else \
        np.broadcast_to(g, (n,))
    grad = np.zeros(x.shape)
    kept = np.flatnonzero(keep)
    with np.errstate(invalid="ignore"):
        grad[kept, safe_t[kept]] = -w_t[kept] * g[kept]
    x_in = np.asarray(input)
    if x_in.ndim <= 2:
        return grad.reshape(x_in.shape)
    # back from one row per sample to (N, C, d1, ..., dk)
    moved = (x_in.shape[0],) + x_in.shape[2:] + (x_in.shape[1],)
    return np.moveaxis(grad.reshape(moved), -1, 1)
