"""Plain float64 NumPy reference implementations of the fastloss losses.

These functions are the executable documentation of the maths that the C
kernels implement.  They favour clarity over speed: every input is converted
to float64 once, and every formula is written the way it appears in the
docstring.  The semantics follow ``torch.nn.functional`` (argument names,
defaults, ``ignore_index``, the denominator of ``'mean'``, label smoothing,
``pos_weight``, the weights of the regression losses;
``sigmoid_focal_loss`` follows ``torchvision.ops``), and the test-suite checks
them against PyTorch and against finite differences.

Each loss comes in two functions:

``<loss>(input, target, ..., reduction="mean")``
    The loss: a Python ``float`` for ``'mean'`` and ``'sum'``, a float64
    array of per-sample losses for ``'none'``.
``<loss>_grad(input, target, ..., reduction="mean", grad_output=1.0)``
    ``grad_output`` times the gradient of the loss with respect to
    ``input``: a float64 array of ``input``'s shape.  ``grad_output`` is a
    scalar for ``'mean'`` and ``'sum'``; for ``'none'`` it is an array of
    the per-sample-loss shape (a scalar is broadcast), so the result is the
    gradient of ``sum(grad_output * loss)``.

``sigmoid_focal_loss`` keeps torchvision's default ``reduction="none"``.
Options added after a function's first release (``weight`` of the
regression losses, ``z_loss``) are keyword-only.

Notes
-----
Everything is computed in float64 with NumPy's own ``exp``/``log``; the
reference is not meant to be fast, only unambiguous.  Non-finite inputs
propagate the way the formulas make them propagate (a NaN logit gives a NaN
loss and NaN gradients for its row), which is also what PyTorch does.
"""

import numpy as np

__all__ = [
    "cross_entropy",
    "cross_entropy_grad",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad",
    "mse_loss",
    "mse_loss_grad",
    "l1_loss",
    "l1_loss_grad",
    "huber_loss",
    "huber_loss_grad",
    "smooth_l1_loss",
    "smooth_l1_loss_grad",
]

REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def _check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {REDUCTIONS}, got {reduction!r}"
        )


def _real_float64(name, value):
    """``value`` as a float64 array; booleans, complex numbers, objects refused."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must hold real numbers, got dtype {array.dtype}"
        )
    return array.astype(np.float64)


def _same_shape(input, target):
    if input.shape != target.shape:
        raise ValueError(
            f"target shape {target.shape} does not match input shape "
            f"{input.shape}"
        )


def _reduce(loss, reduction, denominator):
    """Apply ``reduction`` to the per-sample ``loss``.

    ``'mean'`` divides the sum by ``denominator``; ``0 / 0`` gives NaN, as in
    PyTorch (an empty batch, or every row ignored).
    """
    if reduction == "none":
        return loss
    total = float(np.sum(loss))
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(total) / np.float64(denominator))


def _grad_scale(grad_output, reduction, per_sample_shape, denominator):
    """The factor multiplying each per-sample gradient.

    ``'none'``: ``grad_output`` broadcast to the per-sample shape;
    ``'sum'``: ``grad_output``; ``'mean'``: ``grad_output / denominator``.
    """
    g = _real_float64("grad_output", grad_output)
    if reduction == "none":
        try:
            return np.broadcast_to(g, per_sample_shape)
        except ValueError:
            raise ValueError(
                f"grad_output of shape {g.shape} does not broadcast to the "
                f"per-sample loss shape {per_sample_shape}"
            ) from None
    if g.ndim != 0:
        raise ValueError(
            f"grad_output must be a scalar for reduction={reduction!r}, got "
            f"shape {g.shape}"
        )
    if reduction == "sum":
        return g
    with np.errstate(invalid="ignore", divide="ignore"):
        return g / np.float64(denominator)


def _elementwise_inputs(input, target):
    """``input`` and ``target`` as float64 arrays of one shape."""
    x = _real_float64("input", input)
    y = _real_float64("target", target)
    _same_shape(x, y)
    return x, y


def _broadcast_weight(name, weight, shape):
    """``weight`` (or None) as a float64 array broadcast to ``shape``."""
    if weight is None:
        return None
    w = _real_float64(name, weight)
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {w.shape} does not broadcast to the input shape {shape}"
        ) from None


def _check_option(name, value, low, *, strict):
    """A finite real option ``> low`` (``strict``) or ``>= low``, as a float."""
    value = float(value)
    if not np.isfinite(value) or value < low or (strict and value == low):
        bound = f"> {low}" if strict else f">= {low}"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def _log1pexp_neg_abs(x):
    """``log(1 + exp(-|x|))``: ``exp`` of a non-positive number cannot overflow."""
    return np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))`` without overflow.

    With ``e = exp(-|x|)`` (never above 1): ``sigmoid(x) = 1 / (1 + e)`` for
    ``x >= 0`` and ``e / (1 + e)`` for ``x < 0``.
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ---------------------------------------------------------------------------
# Cross-entropy with class-index targets
# ---------------------------------------------------------------------------


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
    reduction : {'mean', 'sum', 'none'}, default 'mean'
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
    r"""``grad_output`` times the gradient of :func:`cross_entropy` w.r.t. ``input``.

    Parameters
    ----------
    input, target, weight, ignore_index, reduction, label_smoothing
        As in :func:`cross_entropy`.
    grad_output : float or array_like, default 1.0
        A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of
        shape (N,) (shape () unbatched), or a scalar that is broadcast.

    Returns
    -------
    ndarray
        float64, of ``input``'s shape.

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


# ---------------------------------------------------------------------------
# Binary cross-entropy with logits
# ---------------------------------------------------------------------------


def _prepare_bce(input, target, weight, pos_weight):
    x = _real_float64("input", input)
    y = _real_float64("target", target)
    _same_shape(x, y)
    w = None if weight is None else _real_float64("weight", weight)
    p = None if pos_weight is None else _real_float64("pos_weight", pos_weight)
    try:
        if w is not None:
            w = np.broadcast_to(w, x.shape)
        if p is not None:
            p = np.broadcast_to(p, x.shape)
    except ValueError:
        raise ValueError(
            f"weight and pos_weight must broadcast to the input shape {x.shape}"
        ) from None
    return x, y, w, p


def binary_cross_entropy_with_logits(
    input, target, weight=None, reduction="mean", pos_weight=None
):
    r"""Binary cross-entropy of logits ``x`` against targets ``y`` (float64).

    Parameters
    ----------
    input : array_like, any shape
        Logits ``x``.
    target : array_like, shape of ``input``
        Targets ``y``, usually in ``[0, 1]`` (soft targets allowed).
    weight : array_like, optional
        Element weights ``w``, broadcast to ``input``'s shape.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    pos_weight : array_like, optional
        Weight ``q`` of the positive term, broadcast to ``input``'s shape
        (usually shape (C,) for the last axis).

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64
        elementwise losses, of ``input``'s shape.

    Notes
    -----
    Without ``pos_weight``:

    .. math::

        \ell = \max(x, 0) - x y + \log(1 + e^{-|x|})

    which equals :math:`-y \log\sigma(x) - (1-y)\log(1-\sigma(x))` and never
    exponentiates a positive number.  With ``pos_weight`` (PyTorch's form):

    .. math::

        \ell = (1 - y)\,x + \bigl(1 + (q - 1) y\bigr)
               \bigl(\log(1 + e^{-|x|}) + \max(-x, 0)\bigr)

    where the last factor is ``softplus(-x) = -log sigmoid(x)``.  ``weight``
    multiplies ``ell`` elementwise.  ``'mean'`` divides the sum by the
    number of elements (not by the sum of the weights); an empty input gives
    NaN.
    """
    _check_reduction(reduction)
    x, y, w, q = _prepare_bce(input, target, weight, pos_weight)
    if q is None:
        loss = np.maximum(x, 0.0) - x * y + _log1pexp_neg_abs(x)
    else:
        softplus_neg_x = _log1pexp_neg_abs(x) + np.maximum(-x, 0.0)
        loss = (1.0 - y) * x + (1.0 + (q - 1.0) * y) * softplus_neg_x
    if w is not None:
        loss = w * loss
    return _reduce(loss, reduction, x.size)


def binary_cross_entropy_with_logits_grad(
    input,
    target,
    weight=None,
    reduction="mean",
    pos_weight=None,
    grad_output=1.0,
):
    r"""``grad_output`` times the gradient of
    :func:`binary_cross_entropy_with_logits` w.r.t. ``input``.

    Parameters
    ----------
    input, target, weight, reduction, pos_weight
        As in :func:`binary_cross_entropy_with_logits`.
    grad_output : float or array_like, default 1.0
        A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of
        ``input``'s shape (or anything that broadcasts to it).

    Returns
    -------
    ndarray
        float64, of ``input``'s shape.

    Notes
    -----
    .. math::

        \frac{\partial \ell}{\partial x}
            = w \bigl( (1 + (q - 1) y)\,\sigma(x) - q y \bigr)

    which is :math:`w(\sigma(x) - y)` for ``q = 1`` (no ``pos_weight``).  It
    is multiplied by ``grad_output`` (elementwise for ``'none'``), and
    divided by the number of elements for ``'mean'``.
    """
    _check_reduction(reduction)
    x, y, w, q = _prepare_bce(input, target, weight, pos_weight)
    if q is None:
        local = _sigmoid(x) - y
    else:
        local = (1.0 + (q - 1.0) * y) * _sigmoid(x) - q * y
    if w is not None:
        local = w * local
    g = _grad_scale(grad_output, reduction, x.shape, x.size)
    return g * local


# ---------------------------------------------------------------------------
# Sigmoid focal loss
# ---------------------------------------------------------------------------


def _focal_parts(input, target, alpha, gamma):
    """``x, y``, ``p = sigmoid(x)``, ``1 - p``, the BCE ``ce``, ``q = 1 - p_t``
    and ``alpha_t``, all float64 arrays of the input's shape."""
    x, y = _elementwise_inputs(input, target)
    alpha = float(alpha)
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    gamma = _check_option("gamma", gamma, 0.0, strict=False)
    p = _sigmoid(x)
    one_minus_p = _sigmoid(-x)  # not 1 - p: that cancels for confident predictions
    ce = np.maximum(x, 0.0) - x * y + _log1pexp_neg_abs(x)
    q = p * (1.0 - y) + one_minus_p * y
    if alpha >= 0.0:
        alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y)
    else:
        alpha_t = np.ones_like(x)
    return x, y, p, one_minus_p, ce, q, alpha_t, gamma


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    r"""Sigmoid focal loss of logits ``x`` against targets ``y`` (float64).

    ``torchvision.ops.sigmoid_focal_loss`` (Lin et al., 2017, arXiv:1708.02002),
    argument names and defaults included: the default reduction is ``'none'``.

    Parameters
    ----------
    inputs : array_like, any shape
        Logits ``x``.
    targets : array_like, shape of ``inputs``
        Targets ``y``, usually 0 or 1 (soft targets follow the formula).
    alpha : float, default 0.25
        Weight of the positive class; a negative ``alpha`` turns the
        weighting off (``alpha_t = 1``), as in torchvision.
    gamma : float >= 0, default 2.0
        Focusing exponent; ``gamma = 0`` is BCE weighted by ``alpha_t``.
    reduction : {'none', 'mean', 'sum'}, default 'none'

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64
        elementwise losses, of ``inputs``' shape.

    Raises
    ------
    ValueError
        Shape mismatch, unknown reduction, non-finite ``alpha``, or ``gamma``
        negative or non-finite.

    Notes
    -----
    With :math:`p = \sigma(x)`, the BCE of :func:`binary_cross_entropy_with_logits`
    :math:`\mathrm{ce} = \max(x, 0) - x y + \log(1 + e^{-|x|})` and

    .. math::

        q = 1 - p_t = p (1 - y) + (1 - p)\, y, \qquad
        \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    the loss is

    .. math::

        \ell = \alpha_t\, \mathrm{ce}\, q^\gamma

    (:math:`\alpha_t = 1` when :math:`\alpha < 0`; :math:`q^0 = 1`).
    :math:`1 - p` is computed as :math:`\sigma(-x)`, not by subtraction.
    ``'mean'`` divides the sum by the number of elements (NaN for an empty
    input).
    """
    _check_reduction(reduction)
    x, _, _, _, ce, q, alpha_t, gamma = _focal_parts(inputs, targets, alpha, gamma)
    with np.errstate(invalid="ignore"):  # q < 0 (targets outside [0, 1]): NaN, as torch.pow
        qg = q**gamma
    return _reduce(alpha_t * ce * qg, reduction, x.size)


def sigmoid_focal_loss_grad(
    inputs, targets, alpha=0.25, gamma=2.0, reduction="none", grad_output=1.0
):
    r"""``grad_output`` times the gradient of :func:`sigmoid_focal_loss`
    w.r.t. ``inputs``.

    Parameters
    ----------
    inputs, targets, alpha, gamma, reduction
        As in :func:`sigmoid_focal_loss`.
    grad_output : float or array_like, default 1.0
        A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of
        ``inputs``' shape (or anything that broadcasts to it).

    Returns
    -------
    ndarray
        float64, of ``inputs``' shape.

    Notes
    -----
    With :math:`\partial\,\mathrm{ce}/\partial x = p - y` and
    :math:`\partial q / \partial x = p (1 - p)(1 - 2 y)`:

    .. math::

        \frac{\partial \ell}{\partial x} = \alpha_t \bigl[ (p - y)\, q^\gamma
            + \gamma\, \mathrm{ce}\, q^{\gamma - 1}\, p (1 - p)(1 - 2 y) \bigr]

    The second term is 0 for :math:`\gamma = 0`, and where :math:`q = 0`
    (its limit there: :math:`q` vanishes only with :math:`p (1 - p)`).
    Targets outside [0, 1] can make :math:`q` negative; :math:`q^\gamma` is
    then NumPy's (and ``torch.pow``'s) power: real for an integral
    :math:`\gamma`, NaN otherwise. The result is multiplied by
    ``grad_output`` (elementwise for ``'none'``) and divided by the number of
    elements for ``'mean'``.
    """
    _check_reduction(reduction)
    x, y, p, one_minus_p, ce, q, alpha_t, gamma = _focal_parts(
        inputs, targets, alpha, gamma
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        focusing = np.where(
            q != 0.0,
            gamma * ce * q ** (gamma - 1.0) * p * one_minus_p * (1.0 - 2.0 * y),
            0.0,
        )
        local = alpha_t * ((p - y) * q**gamma + focusing)
    g = _grad_scale(grad_output, reduction, x.shape, x.size)
    return g * local


# ---------------------------------------------------------------------------
# Regression losses: mean squared error, L1, Huber, smooth L1
# ---------------------------------------------------------------------------


def _regression_parts(input, target, weight=None):
    """``d = x - y`` and the weight broadcast to its shape (or None)."""
    x, y = _elementwise_inputs(input, target)
    return x - y, _broadcast_weight("weight", weight, x.shape)


def _weight_sum_or_size(d, w):
    """Denominator of a weighted mean: ``sum(w)``, or the element count."""
    return d.size if w is None else np.sum(w)


def _times_weight(values, w):
    return values if w is None else w * values


def mse_loss(input, target, reduction="mean", *, weight=None):
    r"""Squared error between ``input`` and ``target`` (float64).

    Parameters
    ----------
    input : array_like, any shape
    target : array_like, shape of ``input``
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    weight : array_like, keyword-only, optional
        Element weights ``w``, broadcast to ``input``'s shape (PyTorch 2.13
        requires exactly ``input``'s shape; a broadcast weight means the
        same as its materialised copy).

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64
        elementwise losses, of ``input``'s shape.

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


def mse_loss_grad(input, target, reduction="mean", grad_output=1.0, *, weight=None):
    r"""``grad_output`` times the gradient of :func:`mse_loss` w.r.t. ``input``.

    Parameters
    ----------
    input, target, reduction, weight
        As in :func:`mse_loss`.
    grad_output : float or array_like, default 1.0
        A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of
        ``input``'s shape (or anything that broadcasts to it).

    Returns
    -------
    ndarray
        float64, of ``input``'s shape.

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


def l1_loss(input, target, reduction="mean", *, weight=None):
    r"""Absolute error between ``input`` and ``target`` (float64).

    Parameters
    ----------
    input : array_like, any shape
    target : array_like, shape of ``input``
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    weight : array_like, keyword-only, optional
        Element weights ``w``, broadcast to ``input``'s shape (see
        :func:`mse_loss`).

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64
        elementwise losses, of ``input``'s shape.

    Notes
    -----
    :math:`\ell = w |x - y|` elementwise.  ``'mean'`` divides the sum by the
    number of elements, or, with ``weight``, by :math:`\sum w` over the
    broadcast weight (PyTorch 2.13).  An empty input gives NaN.
    """
    _check_reduction(reduction)
    d, w = _regression_parts(input, target, weight)
    return _reduce(_times_weight(np.abs(d), w), reduction, _weight_sum_or_size(d, w))


def l1_loss_grad(input, target, reduction="mean", grad_output=1.0, *, weight=None):
    r"""``grad_output`` times the gradient of :func:`l1_loss` w.r.t. ``input``.

    Parameters
    ----------
    input, target, reduction, weight
        As in :func:`l1_loss`.
    grad_output : float or array_like, default 1.0
        A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of
        ``input``'s shape (or anything that broadcasts to it).

    Returns
    -------
    ndarray
        float64, of ``input``'s shape.

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


def huber_loss(input, target, reduction="mean", delta=1.0, *, weight=None):
    r"""Huber loss between ``input`` and ``target`` (float64).

    Parameters
    ----------
    input : array_like, any shape
    target : array_like, shape of ``input``
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    delta : float > 0, default 1.0
        Where the loss turns from quadratic to linear.
    weight : array_like, keyword-only, optional
        Element weights ``w``, broadcast to ``input``'s shape (see
        :func:`mse_loss`).

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64
        elementwise losses, of ``input``'s shape.

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


def huber_loss_grad(
    input, target, reduction="mean", delta=1.0, grad_output=1.0, *, weight=None
):
    r"""``grad_output`` times the gradient of :func:`huber_loss` w.r.t. ``input``.

    Parameters
    ----------
    input, target, reduction, delta, weight
        As in :func:`huber_loss`.
    grad_output : float or array_like, default 1.0
        A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of
        ``input``'s shape (or anything that broadcasts to it).

    Returns
    -------
    ndarray
        float64, of ``input``'s shape.

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


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    r"""Smooth L1 loss between ``input`` and ``target`` (float64).

    Parameters
    ----------
    input : array_like, any shape
    target : array_like, shape of ``input``
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    beta : float >= 0, default 1.0
        Where the loss turns from quadratic to linear; ``beta = 0`` is the
        L1 loss.

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64
        elementwise losses, of ``input``'s shape.

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


def smooth_l1_loss_grad(input, target, reduction="mean", beta=1.0, grad_output=1.0):
    r"""``grad_output`` times the gradient of :func:`smooth_l1_loss` w.r.t.
    ``input``.

    Parameters
    ----------
    input, target, reduction, beta
        As in :func:`smooth_l1_loss`.
    grad_output : float or array_like, default 1.0
        A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of
        ``input``'s shape (or anything that broadcasts to it).

    Returns
    -------
    ndarray
        float64, of ``input``'s shape.

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
