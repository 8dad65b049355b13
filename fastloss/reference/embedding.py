r"""Losses over pairs and triples of embedding rows: :func:`cosine_embedding_loss`
and :func:`triplet_margin_loss`, with their gradients.

These losses have several differentiable inputs: each ``<loss>_grad``
returns a tuple of float64 arrays, one per float input in argument order.
"""

import numpy as np

from ._common import _check_reduction, _grad_scale, _real_float64, _reduce

__all__ = ["cosine_embedding_loss", "cosine_embedding_loss_grad"]

#: PyTorch's epsilon added to each squared norm in cosine_embedding_loss.
COSINE_EPS = 1e-12


def _cosine_prepare(input1, input2, target):
    x1 = _real_float64("input1", input1)
    x2 = _real_float64("input2", input2)
    if x1.shape != x2.shape:
        raise ValueError(f"input2 shape {x2.shape} does not match input1 shape {x1.shape}")
    if x1.ndim not in (1, 2):
        raise ValueError(f"input1 and input2 must have shape (N, D) or (D,), got {x1.shape}")
    t = np.asarray(target)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"target must hold real numbers, got dtype {t.dtype}")
    expected = x1.shape[:1] if x1.ndim == 2 else ()
    if t.shape != expected:
        raise ValueError(f"target shape {t.shape} does not match inputs of shape {x1.shape}")
    return x1, x2, t


def _cosine_parts(x1, x2):
    """cos per row, its denominator and the two eps-shifted squared norms."""
    m1 = np.sum(x1 * x1, axis=-1) + COSINE_EPS
    m2 = np.sum(x2 * x2, axis=-1) + COSINE_EPS
    den = np.sqrt(m1 * m2)
    return np.sum(x1 * x2, axis=-1) / den, den, m1, m2


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """Cosine embedding loss of pairs of rows, PyTorch's cosine_embedding_loss.

    Parameters
    ----------
    input1, input2 : array_like, shape (N, D) or (D,)
        The embeddings.
    target : array_like, shape (N,) or ()
        1 (similar) or -1 (dissimilar); rows with any other value contribute 0.
    margin : float
        Subtracted from cos for target -1.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides the sum by N (NaN for N = 0).

    Returns
    -------
    float or numpy.ndarray
        A float for 'mean'/'sum', the float64 per-row losses for 'none'.

    Notes
    -----
    ``cos = <x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` (PyTorch's
    epsilon on each squared norm); ``loss = 1 - cos`` for target 1,
    ``max(0, cos - margin)`` for target -1 (NaN stays NaN), 0 otherwise.
    """
    _check_reduction(reduction)
    x1, x2, t = _cosine_prepare(input1, input2, target)
    cos, _, _, _ = _cosine_parts(x1, x2)
    with np.errstate(invalid="ignore"):
        neg = np.where(cos - margin > 0, cos - margin, np.where(np.isnan(cos), cos, 0.0))
    loss = np.where(t == 1, 1.0 - cos, np.where(t == -1, neg, 0.0))
    return _reduce(loss, reduction, loss.size)


def cosine_embedding_loss_grad(input1, input2, target, margin=0.0, reduction="mean",
                               grad_output=1.0):
    """The gradients of cosine_embedding_loss with respect to input1 and input2.

    Parameters
    ----------
    input1, input2 : array_like, shape (N, D) or (D,)
        The embeddings.
    target : array_like, shape (N,) or ()
        1 (similar) or -1 (dissimilar); rows with any other value contribute 0.
    margin : float
        Subtracted from cos for target -1.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides the sum by N.
    grad_output : float or array_like
        The upstream gradient: a scalar for 'mean'/'sum', the per-row shape
        (or a scalar, broadcast) for 'none'.

    Returns
    -------
    tuple of numpy.ndarray
        ``(grad_input1, grad_input2)``, float64, each of its input's shape.

    Notes
    -----
    ``d cos / d x1 = x2 / den - cos x1 / (|x1|^2 + 1e-12)`` with ``den`` the
    denominator of cos (symmetrically for x2). The loss's derivative in cos is
    -1 for target 1, 1 for target -1 where ``cos - margin >= 0`` (PyTorch's
    clamp passes the tie), 0 elsewhere; it multiplies the row's derivative,
    so a NaN row gives NaN gradients whatever its target, as in PyTorch.
    """
    _check_reduction(reduction)
    x1, x2, t = _cosine_prepare(input1, input2, target)
    cos, den, m1, m2 = _cosine_parts(x1, x2)
    with np.errstate(invalid="ignore"):
        dcos = np.where(t == 1, -1.0, np.where((t == -1) & (cos - margin >= 0), 1.0, 0.0))
    g = dcos * _grad_scale(grad_output, reduction, cos.shape, cos.size)
    g, den, m1, m2, cos = (np.asarray(a)[..., None] for a in (g, den, m1, m2, cos))
    return (g * (x2 / den - cos * x1 / m1), g * (x1 / den - cos * x2 / m2))
