r"""Softmax cross-entropy with class-index targets: :func:`cross_entropy` and
:func:`cross_entropy_grad`."""

import numpy as np

from ._common import _check_reduction, _grad_scale, _real_float64, _reduce
from ._docs import gradient_of, loss_doc

__all__ = ["cross_entropy", "cross_entropy_grad"]


def _log_softmax(x):
    """Row-wise ``log_softmax`` of a 2-D array.

    ``log p_ic = z_ic - log(sum_k exp(z_ik))`` with ``z_ic = x_ic - max_k x_ik``:
    subtracting the row maximum makes every exponent ``<= 0`` so nothing
    overflows, and the largest term of the sum is exactly 1 so the logarithm
    never sees 0.  A row holding NaN (or ``+inf``, or only ``-inf``) gives NaN.
    """
    with np.errstate(invalid="ignore"):
        z = x - np.max(x, axis=1, keepdims=True)
        return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def _prepare_cross_entropy(input, target, weight, ignore_index, label_smoothing):
    """Validate the arguments and bring them to the batched (N, C) form.

    Returns ``x`` (N, C) float64, ``t`` (N,) int64, ``w`` (C,) float64,
    ``keep`` (N,) bool (rows whose target is not ``ignore_index``), and
    whether the input was unbatched.
    """
    x = _real_float64("input", input)
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(
            "target must hold integer class indices, got dtype "
            f"{t.dtype} (probability targets are not supported)"
        )
    unbatched = x.ndim == 1
    if unbatched:
        if t.ndim != 0:
            raise ValueError(
                "unbatched input of shape (C,) needs a 0-d target, got "
                f"target shape {t.shape}"
            )
        x = x[np.newaxis, :]
        t = t.reshape(1)
    elif x.ndim == 2:
        if t.shape != (x.shape[0],):
            raise ValueError(
                f"target shape {t.shape} does not match input shape "
                f"{x.shape}: expected ({x.shape[0]},)"
            )
    else:
        raise ValueError(
            f"input must have shape (N, C) or (C,), got shape {x.shape}"
        )
    n_classes = x.shape[1]
    if n_classes == 0:
        raise ValueError("input must have at least one class")
    t = t.astype(np.int64)

    if weight is None:
        w = np.ones(n_classes)
    else:
        w = _real_float64("weight", weight)
        if w.shape != (n_classes,):
            raise ValueError(
                f"weight must have shape ({n_classes},), got {w.shape}"
            )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"label_smoothing must be in [0, 1], got {label_smoothing!r}"
        )

    keep = t != ignore_index
    bad = np.flatnonzero(keep & ((t < 0) | (t >= n_classes)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"target[{i}] = {int(t[i])} is out of range for {n_classes} classes"
        )
    return x, t, w, keep, unbatched


def _logsumexp_rows(x):
    """Row-wise log-sum-exp with the maximum subtracted (float64)."""
    m = np.max(x, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        return (m + np.log(np.sum(np.exp(x - m), axis=1, keepdims=True)))[:, 0]


def _cross_entropy_parts(input, target, weight, ignore_index, label_smoothing, z_loss=0.0):
    """Per-row losses and the denominator of ``'mean'``."""
    x, t, w, keep, unbatched = _prepare_cross_entropy(
        input, target, weight, ignore_index, label_smoothing
    )
    n, n_classes = x.shape
    rows = np.arange(n)
    safe_t = np.where(keep, t, 0)  # any valid index; ignored rows are masked
    logp = _log_softmax(x)

    w_t = np.where(keep, w[safe_t], 0.0)
    # np.where rather than a product: an ignored row's -inf or NaN log-prob
    # must not leak into its (zero) loss.
    loss = np.where(keep, -w_t * logp[rows, safe_t], 0.0)
    if label_smoothing > 0.0:
        # Skipped when label_smoothing == 0 so that 0 * inf (a -inf logit)
        # does not turn a finite loss into NaN.
        with np.errstate(invalid="ignore"):
            smooth = np.where(keep, -np.sum(w * logp, axis=1) / n_classes, 0.0)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * smooth
    if z_loss > 0.0:
        # PaLM's auxiliary z-loss, z * lse^2 per kept row (not class-weighted).
        loss = loss + np.where(keep, z_loss * _logsumexp_rows(x) ** 2, 0.0)
    denominator = np.sum(w_t)
    return loss, denominator, unbatched


@loss_doc
def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
    *,
    z_loss=0.0,
):
    r"""Cross-entropy between logits and class-index targets (float64).

    Parameters
    ----------
    input : array_like, shape (N, C) or (C,)
        Unnormalised logits ``x``.  A 1-D input is one unbatched sample.
    target : array_like of int, shape (N,) or ()
        Class indices ``t_i`` in ``[0, C)``, or ``ignore_index``.
    weight : array_like, shape (C,), optional
        Per-class weights ``w_c``; all ones when omitted.
    ignore_index : int, default -100
        Rows whose target equals this value contribute neither loss nor
        gradient, and are left out of the ``'mean'`` denominator.
    {{reduction}}
    label_smoothing : float in [0, 1], default 0.0
        ``eps`` below.
    z_loss : float >= 0, keyword-only, default 0.0
        Adds ``z_loss * lse_i**2`` to each kept row (PaLM's z-loss), with
        ``lse_i = log sum_c exp(x_ic)``.

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64 per-sample
        losses, of shape (N,) (shape () for an unbatched input).

    Raises
    ------
    TypeError
        Non-real input, or non-integer target.
    ValueError
        Bad shapes, unknown reduction, or a target outside ``[0, C)`` that is
        not ``ignore_index``.

    Notes
    -----
    With ``log p_ic = x_ic - log sum_k exp(x_ik)`` (computed with the row
    maximum subtracted), the per-sample loss of a kept row is

    .. math::

        \ell_i = (1 - \varepsilon)\,\bigl(-w_{t_i} \log p_{i t_i}\bigr)
                 + \frac{\varepsilon}{C}\Bigl(-\sum_c w_c \log p_{ic}\Bigr)

    and 0 for an ignored row.  ``'sum'`` is :math:`\sum_i \ell_i`; ``'mean'``
    is :math:`\sum_i \ell_i / \sum_{i\,\mathrm{kept}} w_{t_i}` -- the weighted
    mean, whose denominator is the number of kept rows when ``weight`` is
    omitted.  The same denominator divides the smoothing term, as in
    PyTorch.  No kept rows: ``'mean'`` is ``0 / 0 = nan``, ``'sum'`` is 0.
    """
    _check_reduction(reduction)
    loss, denominator, unbatched = _cross_entropy_parts(
        input, target, weight, ignore_index, label_smoothing, z_loss
    )
    if reduction == "none" and unbatched:
        return loss.reshape(())
    return _reduce(loss, reduction, denominator)


@gradient_of(
    cross_entropy,
    grad_output="A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of\n"
    "shape (N,) (shape () unbatched), or a scalar that is broadcast.",
)
def cross_entropy_grad(
    input,
    target,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
    grad_output=1.0,
    *,
    z_loss=0.0,
):
    r"""
    Notes
    -----
    With ``p_i = softmax(x_i)``, ``e_t`` the one-hot vector of class ``t``
    and ``W = sum_c w_c``, a kept row has

    .. math::

        \frac{\partial \ell_i}{\partial x_i}
            = (1 - \varepsilon)\, w_{t_i} (p_i - e_{t_i})
              + \frac{\varepsilon}{C} (W p_i - w)
              + 2 z\, \mathrm{lse}_i\, p_i

    which is multiplied by ``g_i`` = ``grad_output[i]`` (``'none'``),
    ``grad_output`` (``'sum'``) or ``grad_output / sum_kept w_t``
    (``'mean'``).  Ignored rows get exactly zero.  When every row is
    ignored, ``'mean'`` has a NaN loss but a zero gradient: that is what
    PyTorch's autograd gives, since no row receives the infinite factor
    ``grad_output / 0``.  (PyTorch does let a NaN or inf *logit* in an
    ignored row leak into that row's gradient through the softmax backward;
    this reference, like the kernels, gives such a row zero.)
    """
    _check_reduction(reduction)
    x, t, w, keep, unbatched = _prepare_cross_entropy(
        input, target, weight, ignore_index, label_smoothing
    )
    n, n_classes = x.shape
    rows = np.arange(n)
    safe_t = np.where(keep, t, 0)
    w_t = np.where(keep, w[safe_t], 0.0)

    p = np.exp(_log_softmax(x))
    local = p.copy()
    local[rows, safe_t] -= 1.0
    local *= ((1.0 - label_smoothing) * w_t)[:, np.newaxis]
    if label_smoothing > 0.0:
        local += (label_smoothing / n_classes) * (np.sum(w) * p - w)
    if z_loss > 0.0:
        local += (2.0 * z_loss * _logsumexp_rows(x))[:, np.newaxis] * p

    if reduction == "none" and unbatched:
        g = _grad_scale(grad_output, reduction, (), None).reshape(1)
    else:
        g = _grad_scale(grad_output, reduction, (n,), np.sum(w_t))
    g = np.broadcast_to(g, (n,))[:, np.newaxis]
    with np.errstate(invalid="ignore"):
        grad = np.where(keep[:, np.newaxis], g * local, 0.0)
    return grad.reshape(np.shape(input))
