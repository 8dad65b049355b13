r"""Losses over pairs and triples of embedding rows: :func:`cosine_embedding_loss`
and :func:`triplet_margin_loss`, with their gradients.

These losses have several differentiable inputs: each ``<loss>_grad``
returns a tuple of float64 arrays, one per float input in argument order.
"""

import numpy as np

from ._common import _check_reduction, _grad_scale, _real_float64, _reduce

__all__ = ["cosine_embedding_loss", "cosine_embedding_loss_grad", "triplet_margin_loss",
           "triplet_margin_loss_grad"]

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


def _triplet_prepare(anchor, positive, negative, margin, p):
    a = _real_float64("anchor", anchor)
    pos = _real_float64("positive", positive)
    neg = _real_float64("negative", negative)
    for name, x in (("positive", pos), ("negative", neg)):
        if x.shape != a.shape:
            raise ValueError(f"{name} shape {x.shape} does not match anchor shape {a.shape}")
    if a.ndim == 0:
        raise ValueError("anchor, positive and negative must have at least one dimension")
    if not margin > 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p}")
    return a, pos, neg


def _difference(u, v, eps):
    return u - v + eps


def _distance(diff, p):
    return np.sqrt(np.sum(diff * diff, axis=-1)) if p == 2 else np.sum(np.abs(diff), axis=-1)


def _triplet_parts(a, pos, neg, margin, p, eps, swap):
    """The differences, distances, the negative distance's weights (wa, wp)
    and L = margin + d(a, p) - d_neg, per row."""
    dif = {k: _difference(u, v, eps) for k, (u, v) in
           {"ap": (a, pos), "an": (a, neg), "pn": (pos, neg)}.items()}
    dist = {k: _distance(x, p) for k, x in dif.items()}
    wa, wp = np.ones(a.shape[:-1]), np.zeros(a.shape[:-1])
    dneg = dist["an"]
    if swap:
        dan, dpn = dist["an"], dist["pn"]
        with np.errstate(invalid="ignore"):
            wa = np.where(dan < dpn, 1.0, np.where(dpn < dan, 0.0, 0.5))
            dneg = np.where(dan < dpn, dan, np.where(dpn < dan, dpn,
                                                     np.where(dan == dpn, dan, np.nan)))
        wp = 1.0 - wa
    return dif, dist, wa, wp, margin + dist["ap"] - dneg


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        reduction="mean"):
    """Triplet margin loss of rows, PyTorch's triplet_margin_loss (p = 1 or 2).

    Parameters
    ----------
    anchor, positive, negative : array_like, shape (..., D)
        The embeddings, all of one shape; one loss per row (the last axis).
    margin : float
        Greater than 0.
    p : {1, 2}
        The norm of the distance.
    eps : float
        Added to each difference, as torch.pairwise_distance does.
    swap : bool
        The negative distance is min(d(a, n), d(p, n)).
    reduction : {'mean', 'sum', 'none'}
        'mean' divides the sum by the number of rows (NaN for none).

    Returns
    -------
    float or numpy.ndarray
        A float for 'mean'/'sum', the float64 per-row losses for 'none'.

    Notes
    -----
    ``d(u, v) = ||u - v + eps||_p``; ``loss = max(margin + d(a, p) - d_neg, 0)``
    with ``d_neg = d(a, n)``, or ``min(d(a, n), d(p, n))`` for swap (NaN
    stays NaN).
    """
    _check_reduction(reduction)
    a, pos, neg = _triplet_prepare(anchor, positive, negative, margin, p)
    _, _, _, _, lv = _triplet_parts(a, pos, neg, margin, p, eps, swap)
    with np.errstate(invalid="ignore"):
        loss = np.where(lv > 0, lv, np.where(np.isnan(lv), lv, 0.0))
    return _reduce(loss, reduction, loss.size)


def triplet_margin_loss_grad(anchor, positive, negative, margin=1.0, p=2, eps=1e-6,
                             swap=False, reduction="mean", grad_output=1.0):
    """The gradients of triplet_margin_loss for the anchor, positive and negative.

    Parameters
    ----------
    anchor, positive, negative : array_like, shape (..., D)
        The embeddings, all of one shape.
    margin : float
        Greater than 0.
    p : {1, 2}
        The norm of the distance.
    eps : float
        Added to each difference.
    swap : bool
        Use the distance swap.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides the sum by the number of rows.
    grad_output : float or array_like
        The upstream gradient: a scalar for 'mean'/'sum', the per-row shape
        (or a scalar, broadcast) for 'none'.

    Returns
    -------
    tuple of numpy.ndarray
        ``(grad_anchor, grad_positive, grad_negative)``, float64, each of
        the inputs' shape.

    Notes
    -----
    With ``u(v) = v / ||v||_2`` (0 at v = 0, as PyTorch's norm backward) for
    p = 2 or ``sign(v)`` for p = 1 and ``g`` the upstream factor where
    ``L = margin + d(a, p) - d_neg >= 0`` (PyTorch's clamp passes the tie),
    0 elsewhere: ``grad_a = g (u_ap - wa u_an)``, ``grad_p = -g (u_ap + wp
    u_pn)``, ``grad_n = g (wa u_an + wp u_pn)``, where ``(wa, wp) = (1, 0)``
    without swap and, with swap, the side of the minimum (``(1/2, 1/2)`` at
    a tie: ``torch.minimum``'s backward splits it).
    """
    _check_reduction(reduction)
    a, pos, neg = _triplet_prepare(anchor, positive, negative, margin, p)
    dif, dist, wa, wp, lv = _triplet_parts(a, pos, neg, margin, p, eps, swap)
    with np.errstate(invalid="ignore"):
        gate = np.where(lv >= 0, 1.0, 0.0)
    g = gate * _grad_scale(grad_output, reduction, lv.shape, lv.size)

    def unit(k):
        if p == 1:
            return np.sign(dif[k])
        d = dist[k][..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d == 0, 0.0, dif[k] / np.where(d == 0, 1.0, d))

    g, wa, wp = (np.asarray(x)[..., None] for x in (g, wa, wp))
    u_ap, u_an = unit("ap"), unit("an")
    u_pn = unit("pn") if swap else np.zeros_like(u_ap)
    return (g * (u_ap - wa * u_an), -g * (u_ap + wp * u_pn), g * (wa * u_an + wp * u_pn))
