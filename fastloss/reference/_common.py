"""Helpers shared by every family of references: argument conversion and
checks, the reductions, and the scaling of a gradient by ``grad_output``."""

import numpy as np

REDUCTIONS = ("none", "mean", "sum")


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
