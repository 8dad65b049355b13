r"""Losses of several float inputs, each with a gradient of its own:
:func:`margin_ranking_loss`, :func:`gaussian_nll_loss` and their gradients
(``*_grad``).

The gradient functions return a tuple, one array per differentiable input in
argument order, each of its input's shape (a gradient of a broadcast input
is summed over the axes it was broadcast along, as autograd does).
"""

import numpy as np

from ._common import _check_reduction, _grad_scale, _real_float64, _reduce

__all__ = ["margin_ranking_loss", "margin_ranking_loss_grad", "gaussian_nll_loss",
           "gaussian_nll_loss_grad"]


def _sum_to(g, shape):
    """``g`` summed over the axes along which an array of ``shape`` was broadcast."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return np.sum(g, axis=axes, keepdims=True).reshape(shape) if axes else g


def _z(input1, input2, target, margin):
    x1 = _real_float64("input1", input1)
    x2 = _real_float64("input2", input2)
    y = _real_float64("target", target)
    if not x1.ndim == x2.ndim == y.ndim:
        raise ValueError("input1, input2 and target must have the same number of "
                         f"dimensions, got {x1.shape}, {x2.shape}, {y.shape}")
    x1b, x2b, yb = np.broadcast_arrays(x1, x2, y)
    return x1.shape, x2.shape, yb, -yb * (x1b - x2b) + np.float64(margin)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    r"""Margin ranking loss of two scores and a ranking target (float64).

    Parameters
    ----------
    input1, input2 : array_like
        The scores :math:`x_1`, :math:`x_2`.
    target : array_like
        :math:`y`, 1 where :math:`x_1` should rank higher, -1 where
        :math:`x_2` should; the three arrays have one number of dimensions
        and broadcast to one shape.
    margin : float, default 0.0
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64 losses of
        the broadcast shape.

    Notes
    -----
    :math:`\ell_i = \max(0, z_i)`, :math:`z_i = -y_i (x_{1,i} - x_{2,i}) +
    \text{margin}` (NaN stays NaN). ``'mean'`` divides by the number of
    elements of the broadcast shape.
    """
    _check_reduction(reduction)
    _, _, _, z = _z(input1, input2, target, margin)
    loss = np.where(z < 0, 0.0, z)
    return _reduce(loss, reduction, z.size)


def margin_ranking_loss_grad(input1, input2, target, margin=0.0, reduction="mean",
                             grad_output=1.0):
    r"""``grad_output`` times the gradients of :func:`margin_ranking_loss`.

    Parameters
    ----------
    input1, input2, target, margin, reduction
        As in :func:`margin_ranking_loss`.
    grad_output : float or array_like, default 1.0
        The upstream gradient: a scalar for ``'mean'``/``'sum'``, an array of
        the broadcast shape for ``'none'``.

    Returns
    -------
    tuple of ndarray
        ``(grad_input1, grad_input2)``, float64, of ``input1``'s and
        ``input2``'s shapes.

    Notes
    -----
    :math:`\partial \ell_i / \partial x_{1,i} = -y_i [z_i \ge 0]` and
    :math:`\partial \ell_i / \partial x_{2,i} = y_i [z_i \ge 0]`: the
    gradient passes at the tie :math:`z_i = 0` (PyTorch's ``clamp_min``), and
    is 0 where :math:`z_i` is NaN.
    """
    _check_reduction(reduction)
    shape1, shape2, y, z = _z(input1, input2, target, margin)
    s = _grad_scale(grad_output, reduction, z.shape, z.size)
    with np.errstate(invalid="ignore"):
        g = y * np.where(z >= 0, 1.0, 0.0) * s
    return _sum_to(-g, shape1), _sum_to(g, shape2)


def _gaussian(input, target, var, eps):
    """(x, broadcast target, v clamped and broadcast, var's shape or None for a
    Python-number var, var as given in float64)."""
    x = _real_float64("input", input)
    y = np.broadcast_to(_real_float64("target", target), x.shape)
    if type(var) is float or type(var) is int:
        if var < 0:
            raise ValueError("var has negative entry/entries")
        raw = np.full(x.shape, float(var))
        return x, y, np.maximum(raw, eps), None, raw
    var = _real_float64("var", var)
    if (var < 0).any():
        raise ValueError("var has negative entry/entries")
    shape = var.shape
    if shape != x.shape and x.ndim and shape == x.shape[:-1]:
        var = var[..., None]
    mismatched = [i for i, (n, m) in enumerate(zip(x.shape, var.shape)) if n != m]
    if var.ndim != x.ndim or len(mismatched) > 1 or any(var.shape[i] != 1 for i in mismatched):
        raise ValueError("var is of incorrect size")
    raw = np.broadcast_to(var, x.shape)
    # the clamp keeps NaN (np.maximum would too); eps only raises var
    v = np.where(raw < eps, eps, raw)
    return x, y, v, shape, raw


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    r"""Gaussian negative log-likelihood of samples given means and variances (float64).

    Parameters
    ----------
    input : array_like
        The means :math:`x`.
    target : array_like
        The samples :math:`y`, broadcast to input's shape.
    var : array_like or float
        The variances, of input's shape, ``input.shape[:-1]``, or input's
        shape with one dimension of size 1; or one Python number.
    full : bool, default False
        Add :math:`\tfrac12 \log 2\pi` to every element.
    eps : float, default 1e-6
        Lower clamp of var.
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Returns
    -------
    float or ndarray
        The mean or sum as a ``float``; for ``'none'`` the float64 losses of
        input's shape.

    Notes
    -----
    :math:`\ell_i = \tfrac12 (\log v_i + (x_i - y_i)^2 / v_i)`, :math:`v_i =
    \max(\text{var}_i, \varepsilon)`. ``'mean'`` divides by the number of
    elements of input.
    """
    _check_reduction(reduction)
    x, y, v, _, _ = _gaussian(input, target, var, eps)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        loss = 0.5 * (np.log(v) + (x - y) ** 2 / v)
    if full:
        loss = loss + 0.5 * np.log(2 * np.pi)
    return _reduce(loss, reduction, x.size)


def gaussian_nll_loss_grad(input, target, var, full=False, eps=1e-6, reduction="mean",
                           grad_output=1.0):
    r"""``grad_output`` times the gradients of :func:`gaussian_nll_loss`.

    Parameters
    ----------
    input, target, var, full, eps, reduction
        As in :func:`gaussian_nll_loss`.
    grad_output : float or array_like, default 1.0
        The upstream gradient: a scalar for ``'mean'``/``'sum'``, an array of
        input's shape for ``'none'``.

    Returns
    -------
    tuple
        ``(grad_input, grad_var)``, float64: grad_input of input's shape,
        grad_var of var's shape as given (summed over the axes var is
        broadcast along), or None for a Python-number var.

    Notes
    -----
    :math:`\partial \ell_i / \partial x_i = (x_i - y_i) / v_i` and
    :math:`\partial \ell_i / \partial \text{var}_i = \tfrac12 (1 / v_i -
    (x_i - y_i)^2 / v_i^2)`, taken at the clamped :math:`v_i` and passed to
    var even where var < eps (PyTorch clamps a copy under ``no_grad``).
    """
    _check_reduction(reduction)
    x, y, v, shape, _ = _gaussian(input, target, var, eps)
    s = _grad_scale(grad_output, reduction, x.shape, x.size)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gx = (x - y) / v * s
        gv = 0.5 * (1 / v - (x - y) ** 2 / v ** 2) * s
    if shape is None:
        return gx, None
    if x.ndim and shape == x.shape[:-1] and shape != x.shape:
        return gx, gv.sum(axis=-1)
    return gx, _sum_to(gv, shape)
