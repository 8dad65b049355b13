r"""Losses against binary (or soft) targets: on logits binary cross-entropy
with logits, the sigmoid focal loss and the soft margin loss; on
probabilities binary cross-entropy; the hinge embedding loss; the KL
divergence."""

import numpy as np

from ._common import (
    _broadcast_weight,
    _check_option,
    _check_reduction,
    _elementwise_inputs,
    _grad_scale,
    _real_float64,
    _reduce,
    _same_shape,
)
from ._docs import gradient_of, loss_doc

__all__ = [
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad",
    "soft_margin_loss",
    "soft_margin_loss_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "hinge_embedding_loss",
    "hinge_embedding_loss_grad",
    "kl_div",
    "kl_div_grad",
]


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


@loss_doc
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
    {{reduction}}
    pos_weight : array_like, optional
        Weight ``q`` of the positive term, broadcast to ``input``'s shape
        (usually shape (C,) for the last axis).

    {{elementwise_returns}}

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


@gradient_of(binary_cross_entropy_with_logits)
def binary_cross_entropy_with_logits_grad(
    input,
    target,
    weight=None,
    reduction="mean",
    pos_weight=None,
    grad_output=1.0,
):
    r"""
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


@loss_doc
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

    {{elementwise_returns}}

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


@gradient_of(sigmoid_focal_loss)
def sigmoid_focal_loss_grad(
    inputs, targets, alpha=0.25, gamma=2.0, reduction="none", grad_output=1.0
):
    r"""
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


@loss_doc
def soft_margin_loss(input, target, reduction="mean"):
    r"""Soft margin loss of scores ``x`` against labels ``y`` (float64).

    ``torch.nn.functional.soft_margin_loss``.

    Parameters
    ----------
    {{elementwise_input}}
    {{reduction}}

    {{elementwise_returns}}

    Notes
    -----
    With :math:`z = -y x`:

    .. math::

        \ell = \log(1 + e^{z}) = \max(z, 0) + \log(1 + e^{-|z|})

    the right-hand side never exponentiates a positive number, so it is
    finite for every finite :math:`z` (PyTorch's left-hand side overflows to
    ``inf`` past :math:`z \approx 88.7` in float32, 709.8 in float64).
    ``'mean'`` divides the sum by the number of elements (NaN for an empty
    input).
    """
    _check_reduction(reduction)
    x, y = _elementwise_inputs(input, target)
    z = -y * x
    return _reduce(np.maximum(z, 0.0) + _log1pexp_neg_abs(z), reduction, x.size)


@gradient_of(soft_margin_loss)
def soft_margin_loss_grad(input, target, reduction="mean", grad_output=1.0):
    r"""
    Notes
    -----
    .. math::

        \frac{\partial \ell}{\partial x} = -y\, \sigma(-y x)

    with the overflow-free sigmoid; multiplied by ``grad_output``
    (elementwise for ``'none'``) and divided by the number of elements for
    ``'mean'``.
    """
    _check_reduction(reduction)
    x, y = _elementwise_inputs(input, target)
    g = _grad_scale(grad_output, reduction, x.shape, x.size)
    return g * (-y * _sigmoid(-y * x))


def _prepare_probabilities(input, target, weight):
    x, y = _elementwise_inputs(input, target)
    for name, a in (("input", x), ("target", y)):
        with np.errstate(invalid="ignore"):
            if np.any((a < 0.0) | (a > 1.0)):
                raise ValueError(f"{name} must lie in [0, 1]")
    return x, y, _broadcast_weight("weight", weight, x.shape)


@loss_doc
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    r"""Binary cross-entropy of probabilities ``x`` against targets ``y`` (float64).

    ``torch.nn.functional.binary_cross_entropy``, with its clamps.

    Parameters
    ----------
    input : array_like, any shape
        Probabilities ``x`` in [0, 1].
    target : array_like, shape of ``input``
        Targets ``y`` in [0, 1].
    weight : array_like, optional
        Element weights ``w``, broadcast to ``input``'s shape.
    {{reduction}}

    {{elementwise_returns}}

    Raises
    ------
    ValueError
        Shape mismatch, unknown reduction, input or target outside [0, 1]
        (NaN is let through and gives NaN).

    Notes
    -----
    .. math::

        \ell = -w \bigl[ y \max(\log x, -100) + (1 - y) \max(\log(1 - x), -100) \bigr]

    PyTorch's clamp of each log at -100 keeps the loss finite at ``x = 0``
    and ``x = 1``. ``'mean'`` divides the sum by the number of elements,
    weights or not (NaN for an empty input).
    """
    _check_reduction(reduction)
    x, y, w = _prepare_probabilities(input, target, weight)
    with np.errstate(divide="ignore"):
        log_x = np.maximum(np.log(x), -100.0)
        log_1mx = np.maximum(np.log1p(-x), -100.0)
    loss = -(y * log_x + (1.0 - y) * log_1mx)
    if w is not None:
        loss = w * loss
    return _reduce(loss, reduction, x.size)


@gradient_of(binary_cross_entropy)
def binary_cross_entropy_grad(input, target, weight=None, reduction="mean", grad_output=1.0):
    r"""
    Notes
    -----
    PyTorch's gradient, not the derivative of the clamped loss:

    .. math::

        \frac{\partial \ell}{\partial x} = w \frac{x - y}{\max(x (1 - x), 10^{-12})}

    multiplied by ``grad_output`` (elementwise for ``'none'``) and divided by
    the number of elements for ``'mean'``.
    """
    _check_reduction(reduction)
    x, y, w = _prepare_probabilities(input, target, weight)
    local = (x - y) / np.maximum(x * (1.0 - x), 1e-12)
    if w is not None:
        local = w * local
    return _grad_scale(grad_output, reduction, x.shape, x.size) * local


def _hinge_parts(input, target, margin):
    x, y = _elementwise_inputs(input, target)
    margin = float(margin)
    if not np.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin!r}")
    return x, y, margin - x


def _legacy(reduction, size_average, reduce):
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


@loss_doc
def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    r"""Hinge embedding loss of scores ``x`` against labels ``y`` (float64).

    ``torch.nn.functional.hinge_embedding_loss``, argument order included.

    Parameters
    ----------
    {{elementwise_input}}
    margin : float, default 1.0
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments; they override ``reduction``.
    {{reduction}}

    {{elementwise_returns}}

    Notes
    -----
    .. math::

        \ell = [y \ne 1] \max(\Delta - x, 0) + [y \ne -1]\, x

    (PyTorch's masks: any label other than 1 and -1 takes both terms; a NaN
    label gives NaN here). ``'mean'`` divides the sum by the number of
    elements.
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction(reduction)
    x, y, z = _hinge_parts(input, target, margin)
    with np.errstate(invalid="ignore"):
        hinge = np.where(np.isnan(z), z, np.maximum(z, 0.0))
        loss = np.where(y != 1.0, hinge, 0.0) + np.where(y != -1.0, x, 0.0)
        loss = np.where(np.isnan(y), y, loss)   # NaN in, NaN out (PyTorch: both terms)
    return _reduce(loss, reduction, x.size)


@gradient_of(hinge_embedding_loss)
def hinge_embedding_loss_grad(input, target, margin=1.0, size_average=None, reduce=None,
                              reduction="mean", grad_output=1.0):
    r"""
    Notes
    -----
    .. math::

        \frac{\partial \ell}{\partial x} = [y \ne -1] - [y \ne 1,\ \Delta - x \ge 0]

    (-1 at the tie :math:`x = \Delta`, as PyTorch's ``clamp_min`` passes it;
    NaN where ``x`` or ``y`` is NaN), multiplied by ``grad_output``
    (elementwise for ``'none'``) and divided by the number of elements for
    ``'mean'``.
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction(reduction)
    x, y, z = _hinge_parts(input, target, margin)
    with np.errstate(invalid="ignore"):
        local = (y != -1.0).astype(np.float64) - ((y != 1.0) & (z >= 0.0))
        local = np.where(np.isnan(x) | np.isnan(y), np.nan, local)
    return _grad_scale(grad_output, reduction, x.shape, x.size) * local


def _kl_reduce(loss, reduction, x):
    if reduction == "batchmean":
        total = float(np.sum(loss))
        n = x.shape[0] if x.ndim else 1
        return total / n if n else float("nan")
    _check_reduction(reduction)
    return _reduce(loss, reduction, x.size)


def _kl_scale(grad_output, reduction, x):
    if reduction == "batchmean":
        n = x.shape[0] if x.ndim else 1
        return _grad_scale(grad_output, "sum", x.shape, 1) / (n if n else np.nan)
    _check_reduction(reduction)
    return _grad_scale(grad_output, reduction, x.shape, x.size)


@loss_doc
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    r"""KL divergence of log-probabilities ``x`` from targets ``y`` (float64).

    ``torch.nn.functional.kl_div``, argument order included.

    Parameters
    ----------
    input : array_like, any shape
        Log-probabilities ``x``.
    target : array_like, shape of ``input``
        Probabilities ``y`` (log-probabilities with ``log_target``).
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments; they override ``reduction``.
    reduction : {'mean', 'batchmean', 'sum', 'none'}, default 'mean'
    log_target : bool, default False

    {{elementwise_returns}}

    Notes
    -----
    .. math::

        \ell = \mathrm{xlogy}(y, y) - y x, \qquad \ell = e^y (y - x) \ (\text{log_target})

    with :math:`\mathrm{xlogy}(0, 0) = 0`. ``'mean'`` divides the sum by the
    number of elements, ``'batchmean'`` by ``input.shape[0]`` (1 for a 0-d
    input).
    """
    reduction = _legacy(reduction, size_average, reduce)
    x, y = _elementwise_inputs(input, target)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if log_target:
            loss = np.exp(y) * (y - x)
        else:
            xlogy = np.where(y == 0.0, 0.0, y * np.log(np.where(y == 0.0, 1.0, y)))
            loss = xlogy - y * x
    return _kl_reduce(loss, reduction, x)


@gradient_of(kl_div)
def kl_div_grad(input, target, size_average=None, reduce=None, reduction="mean",
                log_target=False, grad_output=1.0):
    r"""
    Notes
    -----
    .. math::

        \frac{\partial \ell}{\partial x} = -y, \qquad -e^y \ (\text{log_target})

    multiplied by ``grad_output`` (elementwise for ``'none'``) and divided by
    the number of elements for ``'mean'``, by ``input.shape[0]`` for
    ``'batchmean'``.
    """
    reduction = _legacy(reduction, size_average, reduce)
    x, y = _elementwise_inputs(input, target)
    with np.errstate(over="ignore"):
        local = -np.exp(y) if log_target else -y
    local = np.where(np.isnan(x), x, local)   # NaN in, NaN out (PyTorch: -y whatever x)
    return _kl_scale(grad_output, reduction, x) * local
