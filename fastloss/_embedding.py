"""Losses over pairs and triples of embedding rows, with several differentiable
inputs: :func:`cosine_embedding_loss` / :class:`CosineEmbeddingLoss` and
:func:`triplet_margin_loss` / :class:`TripletMarginLoss`.

They keep ``torch.nn.functional``'s names, signatures, defaults and semantics
(see each docstring for what is not taken). Their kernels are
src/embedding/embedding.c (one row per sample, blocks of whole rows, bitwise
the same for any thread count).

Written by hand rather than generated from a declaration in fastloss/_spec/:
the generated API, its fast bindings and the registry-driven tests assume one
differentiable ``input`` and one ``target``; these take two or three float
inputs and return one gradient for each.

Gradients: ``loss_and_grad(*arrays)`` returns ``(loss, grads)`` and
``backward(*arrays, grad_output=1.0)`` returns ``grads``, a tuple in argument
order: ``(grad_input1, grad_input2)`` for CosineEmbeddingLoss,
``(grad_anchor, grad_positive, grad_negative)`` for TripletMarginLoss, each a
new float32 array of its input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from . import _validate as v
from ._base import Reduced, option
from ._threads import get_num_threads

__all__ = ["cosine_embedding_loss", "CosineEmbeddingLoss", "triplet_margin_loss",
           "TripletMarginLoss"]


def _run(kernel, arrays, names, per_sample_shape, code, scalars, loss, grad, grad_output,
         out=None):
    """Allocate outputs (or take the caller's ``out``, one buffer per float
    input), call ``kernel(*arrays, n, d, *scalars, reduction, grad_scale,
    grad_per_sample, loss_out, grad_out, *more_grads, n_threads)`` and shape
    the result: loss, grads (a tuple) or (loss, grads)."""
    x = arrays[0]
    d = x.shape[-1] if x.ndim else 1
    n = x.size // d if d else int(np.prod(x.shape[:-1], dtype=np.int64))
    loss_out = np.empty(per_sample_shape, v.F32) if (loss and code == v.NONE) else None
    scale, per_sample = 1.0, None
    floats = [(name, a) for name, a in zip(names, arrays) if a.dtype == v.F32]
    grads: tuple = (None,) * len(floats)   # one per float input
    if grad:
        scale, per_sample = v.grad_output(grad_output, code, per_sample_shape)
        # no in-place gradient: a row's gradients are written from both inputs
        given = (None,) * len(floats) if out is None else v.out_buffers(
            out, [(name, a, False) for name, a in floats], list(zip(names, arrays)))
        grads = tuple(np.empty(x.shape, v.F32) if g is None else g for g in given)
    reduced = kernel(*arrays, n, d, *scalars, code, scale, per_sample, loss_out, *grads,
                     get_num_threads())
    value = (reduced if code != v.NONE else loss_out) if loss else None
    if loss and grad:
        return value, grads
    return value if loss else grads


def _rows(arrays, names):
    """The float inputs as float32 C-contiguous arrays of one shape."""
    out = [v.as_f32(a, name) for a, name in zip(arrays, names)]
    for a, name in zip(out[1:], names[1:]):
        if a.shape != out[0].shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {names[0]}'s shape "
                             f"{out[0].shape}")
    return out


# ----------------------------------------------------------------- cosine

def _cosine_target(target, x_shape):
    """PyTorch's target as int8 codes: 1 where target == 1, -1 where
    target == -1, 0 elsewhere (those rows contribute 0, as in PyTorch)."""
    t = v.asarray(target, "target")
    if t.dtype.kind not in "biuf":
        raise TypeError(f"target must hold real numbers (1 or -1), got dtype {t.dtype}")
    if t.ndim > 1:
        raise ValueError(f"target must be 0-d or 1-d (multi-target not supported), got "
                         f"shape {t.shape}")
    expected = x_shape[:1] if len(x_shape) == 2 else ()
    if t.shape != expected:
        raise ValueError(f"target has shape {t.shape}, expected {expected} for inputs of "
                         f"shape {x_shape}")
    return np.ascontiguousarray((t == 1).astype(np.int8) - (t == -1).astype(np.int8))


def _cosine(input1, input2, target, margin, code, *, loss=True, grad=False, grad_output=1.0,
            out=None):
    x1, x2 = _rows((input1, input2), ("input1", "input2"))
    if x1.ndim not in (1, 2):
        raise ValueError(f"input1 and input2 must have shape (N, D) or (D,), got {x1.shape}")
    t = _cosine_target(target, x1.shape)
    shape = x1.shape[:1] if x1.ndim == 2 else ()
    return _run(_core.cosine_embedding_loss, (x1, x2, t), ("input1", "input2", "target"),
                shape, code, (margin,), loss, grad, grad_output, out)


def _margin_any(value):
    return v.real_scalar(value, "margin")


def cosine_embedding_loss(input1: ArrayLike, input2: ArrayLike, target: ArrayLike,
                          margin: float = 0.0, size_average: bool | None = None,
                          reduce: bool | None = None, reduction: str = "mean") -> Any:
    """Cosine embedding loss, ``torch.nn.functional.cosine_embedding_loss``.

    ``cos = <x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` per row
    (PyTorch's epsilon on each squared norm: a zero row gives cos = 0);
    the loss is ``1 - cos`` where ``target == 1``, ``max(0, cos - margin)``
    where ``target == -1`` and 0 for any other target value, as in PyTorch.

    Parameters
    ----------
    input1, input2 : array_like, shape (N, D) or (D,)
        The embeddings (converted to float32).
    target : array_like, shape (N,) or () for 1-d inputs
        1 (similar) or -1 (dissimilar); other values contribute 0.
    margin : float, default 0.0
        Finite; PyTorch documents [-1, 1] but takes any value.
    size_average, reduce : bool, optional
        PyTorch's legacy reduction arguments.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' divides by N (NaN for N = 0).

    Returns
    -------
    float or numpy.ndarray
        A Python float for 'mean'/'sum', float32 per-row losses for 'none'.
    """
    _, code = v.reduction(reduction, size_average, reduce)
    return _cosine(input1, input2, target, _margin_any(margin), code)


class CosineEmbeddingLoss(Reduced):
    """``torch.nn.CosineEmbeddingLoss`` (see :func:`cosine_embedding_loss`).

    ``loss_and_grad(input1, input2, target)`` returns
    ``(loss, (grad_input1, grad_input2))`` from one kernel call;
    ``backward(input1, input2, target, grad_output=1.0)`` returns
    ``(grad_input1, grad_input2)``.
    """

    _options = ("margin",)
    margin = option("margin", _margin_any)

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        self.margin = margin
        self._set_reduction(reduction, size_average, reduce)

    def forward(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike) -> Any:
        """The loss: a Python float for 'mean'/'sum', a float32 array for 'none'."""
        return _cosine(input1, input2, target, self.margin, self._code)

    def __call__(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike) -> Any:
        return self.forward(input1, input2, target)

    def loss_and_grad(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike,
                      out: tuple | None = None) -> Any:
        """(loss, (d loss / d input1, d loss / d input2)) from one fused kernel call;
        ``out``: a tuple of two float32 buffers of the inputs' shape (None in it:
        allocated), returned as the gradients."""
        return _cosine(input1, input2, target, self.margin, self._code, grad=True, out=out)

    def backward(self, input1: ArrayLike, input2: ArrayLike, target: ArrayLike,
                 grad_output: ArrayLike = 1.0, out: tuple | None = None) -> Any:
        """(grad_input1, grad_input2) times grad_output, without the loss."""
        return _cosine(input1, input2, target, self.margin, self._code, loss=False,
                       grad=True, grad_output=grad_output, out=out)



# ---------------------------------------------------------------- triplet

def _triplet(anchor, positive, negative, margin, p, eps, swap, code, *, loss=True,
             grad=False, grad_output=1.0, out=None):
    a, pos, neg = _rows((anchor, positive, negative), ("anchor", "positive", "negative"))
    if a.ndim == 0:
        raise ValueError("anchor, positive and negative must have at least one dimension "
                         "(the embedding), got scalars")
    return _run(_core.triplet_margin_loss, (a, pos, neg), ("anchor", "positive", "negative"),
                a.shape[:-1], code, (margin, p, eps, swap), loss, grad, grad_output, out)


def _margin_positive(value):
    m = v.real_scalar(value, "margin")
    if not m > 0:
        raise ValueError(f"margin must be greater than 0, got {value}")
    return m


def _norm(value):
    """p: 1 or 2 (the norms the kernel has)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"p must be a real number, got {type(value).__name__}")
    if value not in (1, 2):
        raise ValueError(f"p must be 1 or 2 (fastloss has the 1- and 2-norm; PyTorch's "
                         f"other p are not implemented), got {value}")
    return int(value)


def _eps(value):
    return v.real_scalar(value, "eps")


def _swap(value):
    return v.flag(value, "swap")


def triplet_margin_loss(anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average: bool | None = None,
                        reduce: bool | None = None, reduction: str = "mean") -> Any:
    """Triplet margin loss, ``torch.nn.functional.triplet_margin_loss``.

    ``dist(u, v) = ||u - v + eps||_p`` over the last axis (eps added to the
    difference, as ``torch.pairwise_distance``); the loss is
    ``max(margin + dist(a, p) - dist(a, n), 0)`` per row, with
    ``min(dist(a, n), dist(p, n))`` as the negative distance for ``swap``.

    Parameters
    ----------
    anchor, positive, negative : array_like, shape (..., D)
        The embeddings, all of one shape (converted to float32); (N, D) and
        (D,) as PyTorch, more leading axes as ``pairwise_distance``.
        PyTorch's broadcasting between them is not taken.
    margin : float, default 1.0
        Greater than 0 (PyTorch's check).
    p : {1, 2}, default 2
        The norm. PyTorch takes any p; fastloss has p = 1 and p = 2 and
        raises ValueError for others.
    eps : float, default 1e-6
        Added to each difference.
    swap : bool, default False
        Use the distance swap (Balntas et al. 2016).
    size_average, reduce : bool, optional
        PyTorch's legacy reduction arguments.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' divides by the number of rows (NaN for none).

    Returns
    -------
    float or numpy.ndarray
        A Python float for 'mean'/'sum', float32 per-row losses of shape
        ``anchor.shape[:-1]`` for 'none'.
    """
    _, code = v.reduction(reduction, size_average, reduce)
    return _triplet(anchor, positive, negative, _margin_positive(margin), _norm(p), _eps(eps),
                    _swap(swap), code)


class TripletMarginLoss(Reduced):
    """``torch.nn.TripletMarginLoss`` (see :func:`triplet_margin_loss`).

    ``loss_and_grad(anchor, positive, negative)`` returns
    ``(loss, (grad_anchor, grad_positive, grad_negative))`` from one kernel
    call; ``backward(anchor, positive, negative, grad_output=1.0)`` returns the
    three gradients.
    """

    _options = ("margin", "p", "eps", "swap")
    margin = option("margin", _margin_positive)
    p = option("p", _norm)
    eps = option("eps", _eps)
    swap = option("swap", _swap)

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap
        self._set_reduction(reduction, size_average, reduce)

    def _call(self, a: ArrayLike, p: ArrayLike, n: ArrayLike, **mode: Any) -> Any:
        return _triplet(a, p, n, self.margin, self.p, self.eps, self.swap, self._code, **mode)

    def forward(self, anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike) -> Any:
        """The loss: a Python float for 'mean'/'sum', a float32 array for 'none'."""
        return self._call(anchor, positive, negative)

    def __call__(self, anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike) -> Any:
        return self.forward(anchor, positive, negative)

    def loss_and_grad(self, anchor: ArrayLike, positive: ArrayLike,
                      negative: ArrayLike, out: tuple | None = None) -> Any:
        """(loss, (grad_anchor, grad_positive, grad_negative)) from one fused kernel
        call; ``out``: a tuple of three float32 buffers of the inputs' shape (None
        in it: allocated), returned as the gradients."""
        return self._call(anchor, positive, negative, grad=True, out=out)

    def backward(self, anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike,
                 grad_output: ArrayLike = 1.0, out: tuple | None = None) -> Any:
        """(grad_anchor, grad_positive, grad_negative) times grad_output, without the loss."""
        return self._call(anchor, positive, negative, loss=False, grad=True,
                          grad_output=grad_output, out=out)

