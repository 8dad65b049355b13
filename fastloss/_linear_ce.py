r"""Fused linear + cross-entropy (a language model's head and its loss) without
ever holding the (tokens x vocabulary) logits.

The loop, for the token chunks ``x[i:i+r]`` of ``r`` rows (``r`` below):

1. ``buf = x[i:i+r] @ W.T`` (one BLAS GEMM through ``np.matmul(..., out=buf)``
   into one logits buffer reused by every chunk), then ``buf += b``;
2. fastloss's fused cross-entropy kernel on ``buf``, in place: the chunk's
   loss, and its gradient written over its logits (``grad_out = buf``), scaled
   by ``grad_output / D`` for a mean;
3. ``grad_input[i:i+r] = buf @ W`` (for H > r computed as ``(W.T @ buf.T).T``
   into an (H, r) scratch and copied: see the loop for why),
   ``grad_weight += buf.T @ x[i:i+r]`` (one beta=1 GEMM of the BLAS NumPy
   bundles, fastloss/_blas.py; where that is not found, a GEMM into a (V, H)
   scratch, then an add: NumPy's matmul has no beta=1 form; the first chunk
   writes ``grad_weight`` directly; tried: blocks of 2 MiB of grad_weight's
   rows through an in-cache scratch, 2-3.5x slower with threaded OpenBLAS on
   the loaded 2-core machine) and ``grad_bias += buf.sum(0)``.

Means are global: the denominator ``D`` (the number of kept targets, or the
sum of their class weights, PyTorch's weighted mean) is computed from the
targets before the loop, as the cross-entropy kernel computes it
(``ce_mean_denominator`` in src/cross_entropy/entry.c), and each chunk runs the
kernel with 'sum' semantics and gradient scale ``grad_output / D``; the loss is
the chunks' double-precision sums divided by ``D``. Label smoothing and class
weights need nothing more: every term of PyTorch's smoothed, weighted loss is
divided by the same ``D``.

The chunk size (rows per chunk) by default keeps the logits buffer near
:data:`CHUNK_BYTES` (32 MiB: ``r = 32 MiB / (4 V)`` rows, 262 rows at
V = 32000, at least :data:`MIN_CHUNK_ROWS`, at most N): small enough that the
extra memory is a small fraction of the logits (1/32 at 8192 tokens and
V = 32000), large enough that each GEMM runs near the speed of one big GEMM
(its smallest dimension is ``r``, in the hundreds) and that the (V, H) add of
the grad_weight accumulation is a small share of the chunk's
``2 r V H``-flop GEMM. ``chunk_size=`` overrides it.

Threads and determinism: the cross-entropy kernel is bitwise identical for any
thread count (fastloss's rule); the chunk boundaries depend only on the shapes
and ``chunk_size``. The GEMMs are NumPy's BLAS (its own thread pool, e.g.
``OPENBLAS_NUM_THREADS`` or threadpoolctl): whether their results depend on the
BLAS thread count is up to that library.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _blas, _core
from . import _validate as v
from ._base import option
from ._threads import get_num_threads

__all__ = ["linear_cross_entropy", "LinearCrossEntropyLoss", "default_chunk_size",
           "mean_denominator", "Plan", "CHUNK_BYTES", "MIN_CHUNK_ROWS"]

CHUNK_BYTES = 32 << 20    # the logits buffer's target size
MIN_CHUNK_ROWS = 64       # below this a GEMM's short side starves BLAS


def default_chunk_size(n: int, vocab: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk for `n` tokens and a vocabulary of `vocab`: about
    `chunk_bytes` (:data:`CHUNK_BYTES`) of float32 logits, at least
    :data:`MIN_CHUNK_ROWS`, at most `n` (and at least 1)."""
    rows = max(MIN_CHUNK_ROWS, chunk_bytes // (4 * max(vocab, 1)))
    return max(1, min(n, rows))


def mean_denominator(t: np.ndarray, w: np.ndarray | None, ignore_index: int) -> float:
    """PyTorch's denominator of 'mean': the number of targets that are not
    `ignore_index`, or the sum of their class weights (in double, like the
    kernel's)."""
    kept = t != ignore_index
    if w is None:
        return float(np.count_nonzero(kept))
    return float(np.sum(w[t[kept]], dtype=np.float64))


class Plan:
    """One call's validated arrays and constants, shared by the NumPy loop
    here and the torch loop (fastloss/torch/_linear_ce.py).

    x (N, H), W (V, H), b (V,) or None, t (N,) int64, w (V,) or None: float32
    and int64 C-contiguous arrays (views of the caller's memory where they
    already were); rows: tokens per chunk; scale: the kernel's gradient scale
    (grad_output / D for 'mean'); per_sample: an (N,) upstream gradient or
    None; loss_out: the (N,) per-token losses of 'none' (None otherwise).
    """

    __slots__ = ("x", "W", "b", "t", "w", "unbatched", "n", "h", "c", "rows", "code",
                 "ignore_index", "label_smoothing", "scale", "per_sample", "loss_out",
                 "denominator", "grad", "n_threads", "z_loss")

    def __init__(self, input, linear_weight, target, linear_bias, weight, ignore_index, code,
                 label_smoothing, chunk_size, loss, grad, grad_output, z_loss=0.0,
                 chunk_bytes=CHUNK_BYTES):
        self.z_loss = z_loss
        x, W, b, t, w, unbatched = v.linear_ce_arrays(input, linear_weight, target,
                                                      linear_bias, weight, ignore_index)
        self.x, self.W, self.b, self.t, self.w, self.unbatched = x, W, b, t, w, unbatched
        n, h = x.shape
        self.n, self.h = n, h
        self.c = c = W.shape[0]
        self.rows = (default_chunk_size(n, c, chunk_bytes) if chunk_size is None
                     else min(max(n, 1), chunk_size))
        self.code, self.ignore_index, self.label_smoothing = code, ignore_index, label_smoothing
        self.grad = grad
        scale, per_sample = 1.0, None
        if grad:
            scale, per_sample = v.grad_output(grad_output, code, () if unbatched else (n,))
            if per_sample is not None:
                per_sample = per_sample.reshape(n)
        self.denominator = mean_denominator(t, w, ignore_index) if code == v.MEAN else 1.0
        if code == v.MEAN:
            with np.errstate(divide="ignore", invalid="ignore"):   # D = 0: inf or NaN, as PyTorch
                scale = float(np.float64(scale) / np.float64(self.denominator))
        self.scale, self.per_sample = scale, per_sample
        self.loss_out = np.empty(n, v.F32) if (loss and code == v.NONE) else None
        self.n_threads = get_num_threads()

    def chunk_loss_grad(self, logits, start, stop):
        """Step 2 on the chunk's logits (a float32 (stop - start, V) array):
        its 'sum' (or per-token losses into loss_out) and, when asked for,
        the gradient of the loss written over the logits."""
        return _core.cross_entropy(
            logits, self.t[start:stop], stop - start, self.c, 1, self.ignore_index, self.w,
            self.label_smoothing, self.z_loss, None, None, v.NONE if self.code == v.NONE else v.SUM,
            self.scale, None if self.per_sample is None else self.per_sample[start:stop],
            None if self.loss_out is None else self.loss_out[start:stop],
            logits if self.grad else None, self.n_threads)

    def loss(self, total):
        """The loss from the chunks' summed 'sum' values (ignored for 'none')."""
        if self.code == v.NONE:
            return self.loss_out.reshape(()) if self.unbatched else self.loss_out
        if self.code == v.MEAN:
            with np.errstate(divide="ignore", invalid="ignore"):
                return float(np.float64(total) / np.float64(self.denominator))
        return total


def _run(input, linear_weight, target, linear_bias, weight, ignore_index, code,
         label_smoothing, chunk_size, z_loss=0.0, *, loss=True, grad=False,
         grad_output=1.0):
    """The loss and/or (grad_input, grad_weight, grad_bias); arguments as
    given by the user, scalar options already validated."""
    p = Plan(input, linear_weight, target, linear_bias, weight, ignore_index, code,
             label_smoothing, chunk_size, loss, grad, grad_output, z_loss)
    x, W, b, n, h, c = p.x, p.W, p.b, p.n, p.h, p.c
    total = 0.0
    gx = gW = gb = scratch = None
    if grad:
        gx = np.empty((n, h), v.F32)
        gW = np.zeros((c, h), v.F32) if n == 0 else np.empty((c, h), v.F32)
        gb = np.zeros(c, v.F32) if b is not None else None
    buf = np.empty((p.rows, c), v.F32)
    gxT_flat = None
    WT = W.T
    for start in range(0, n, p.rows):
        stop = min(start + p.rows, n)
        xc, logits = x[start:stop], buf[:stop - start]
        np.matmul(xc, WT, out=logits)                              # 1. logits
        if b is not None:
            np.add(logits, b, out=logits)
        reduced = p.chunk_loss_grad(logits, start, stop)           # 2. loss, gradient in place
        if reduced is not None:
            total += reduced
        if not grad:
            continue
        # 3. gradients. grad_input = g @ W, a GEMM whose inner dimension is V.
        # Threaded OpenBLAS runs it 4-20x slower when the output has fewer
        # rows than columns (measured on the shared 2-core Xeon, 2 threads,
        # rows 262, V 32000: H 128 48 ms as g @ W vs 1140 ms as (W.T @ g.T).T;
        # H 512 1148 ms vs 225 ms; H 1024 1092 vs 279 ms; one thread: all
        # within 30%), so the output is laid out with the longer side first.
        r = stop - start
        if h > r:
            if gxT_flat is None:
                gxT_flat = np.empty(h * p.rows, v.F32)
            gxT = gxT_flat[:h * r].reshape(h, r)
            np.matmul(WT, logits.T, out=gxT)
            gx[start:stop] = gxT.T
        else:
            np.matmul(logits, W, out=gx[start:stop])
        # gW (+)= g.T @ x: one beta=1 GEMM, or matmul (and an add) without it
        if not _blas.sgemm_at_b(logits, xc, gW, 0.0 if start == 0 else 1.0):
            if start == 0:
                np.matmul(logits.T, xc, out=gW)
            else:
                if scratch is None:
                    scratch = np.empty((c, h), v.F32)
                np.matmul(logits.T, xc, out=scratch)
                np.add(gW, scratch, out=gW)
        if gb is not None:
            gb += logits.sum(axis=0)
    del buf, scratch, gxT_flat
    value = p.loss(total) if loss else None
    if not grad:
        return value
    grads = (gx.reshape(h) if p.unbatched else gx, gW, gb)
    return (value, *grads) if loss else grads


def _options(ignore_index, label_smoothing, chunk_size):
    ignore_index = -100 if ignore_index is None else v.int64_scalar(ignore_index, "ignore_index")
    label_smoothing = v.real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    return ignore_index, label_smoothing, v.chunk_size(chunk_size)


def linear_cross_entropy(
    input: ArrayLike,
    linear_weight: ArrayLike,
    target: ArrayLike,
    *,
    linear_bias: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    reduction: str = "mean",
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    chunk_size: int | None = None,
    z_loss: float = 0.0,
) -> Any:
    r"""Cross-entropy of a linear layer's output (``torch.nn.functional.linear_cross_entropy``),
    computed chunk by chunk without the (N, V) logits.

    .. math::

        z_i = W x_i + b, \qquad
        \ell_i = (1 - \varepsilon)\, w_{t_i} (\mathrm{lse}(z_i) - z_{i,t_i})
               + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse}(z_i) - z_{ic})

    (:func:`fastloss.cross_entropy` of the logits :math:`z`). Rows whose target
    is ``ignore_index`` contribute 0; ``'mean'`` is
    :math:`\sum_i \ell_i / \sum_{i\, kept} w_{t_i}` (the number of kept rows
    without weights; NaN when it is 0), over all N rows, not per chunk.

    Parameters
    ----------
    input : array_like, shape (N, H) or (H,)
        Hidden states. A C-contiguous float32 array is used as is; anything
        else is converted once.
    linear_weight : array_like, shape (V, H)
        The head's weight (``torch.nn.Linear(H, V).weight``).
    target : array_like of integers, shape (N,) (or () for (H,) input)
        Class indices in ``[0, V)``, or ``ignore_index``.
    linear_bias : array_like, shape (V,), keyword-only, optional
    weight : array_like, shape (V,), keyword-only, optional
        Finite class weights.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    ignore_index : int, default -100 (None means -100, as in PyTorch)
    label_smoothing : float in [0, 1], default 0.0
    chunk_size : int >= 1, keyword-only, optional
        Tokens per chunk; by default about 32 MiB of logits
        (:func:`fastloss._linear_ce.default_chunk_size`: ``32 MiB / (4 V)``
        rows, at least 64). Only memory and speed depend on it.
    z_loss : float >= 0, keyword-only, default 0.0
        Adds ``z_loss * lse(z_i)**2`` per kept token (PaLM's z-loss, as in
        :func:`fastloss.cross_entropy`; not in PyTorch), from the same pass.

    Returns
    -------
    float or ndarray
        A Python float for 'mean' and 'sum' (chunk sums accumulated in
        double); a float32 array of shape (N,) (``()`` unbatched) for 'none'.

    Raises
    ------
    ValueError
        Shapes that do not fit together, a target outside ``[0, V)`` that is
        not ``ignore_index`` (the message names the row), non-finite class
        weights, an unknown reduction, an option out of range.
    TypeError
        Non-numeric arrays, a target that is not integer.
    """
    _, code = v.reduction(reduction)
    ignore_index, label_smoothing, chunk_size = _options(ignore_index, label_smoothing,
                                                         chunk_size)
    return _run(input, linear_weight, target, linear_bias, weight, ignore_index, code,
                label_smoothing, chunk_size, v.real_scalar(z_loss, "z_loss", 0.0, None))


class LinearCrossEntropyLoss:
    r"""The loss object of :func:`fastloss.linear_cross_entropy` (see it for the
    formula and the denominator of 'mean').

    Unlike ``torch.nn.LinearCrossEntropyLoss`` it holds no linear layer: the
    head's weight and bias are arguments of each call, as in the function.

    Methods
    -------
    forward(input, linear_weight, target, linear_bias=None) (also the call)
        The loss.
    loss_and_grad(input, linear_weight, target, linear_bias=None)
        ``(loss, grad_input, grad_weight, grad_bias)`` from one chunked pass;
        ``grad_bias`` is None without a bias. For reduction='none' the
        gradients are those of the sum of the per-token losses.
    backward(input, linear_weight, target, linear_bias=None, grad_output=1.0)
        ``(grad_input, grad_weight, grad_bias)`` times ``grad_output`` (a
        scalar for 'mean'/'sum'; for 'none' a scalar or an (N,) array),
        without the loss.
    """

    def __init__(self, weight: ArrayLike | None = None, ignore_index: int | None = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0, *,
                 chunk_size: int | None = None, z_loss: float = 0.0) -> None:
        self.weight = weight
        self.z_loss = z_loss
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.chunk_size = chunk_size

    ignore_index = option(
        "ignore_index", lambda value: -100 if value is None else v.int64_scalar(value,
                                                                                "ignore_index"))
    label_smoothing = option(
        "label_smoothing", lambda value: v.real_scalar(value, "label_smoothing", 0.0, 1.0))
    chunk_size = option("chunk_size", v.chunk_size)
    z_loss = option("z_loss", lambda value: v.real_scalar(value, "z_loss", 0.0, None))

    @property
    def reduction(self) -> str:
        """'mean', 'sum' or 'none' (checked when set)."""
        return self._reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        self._reduction, self._code = v.reduction(value)

    def _call(self, input, linear_weight, target, linear_bias, **mode):
        return _run(input, linear_weight, target, linear_bias, self.weight, self._ignore_index,
                    self._code, self._label_smoothing, self._chunk_size, self._z_loss,
                    **mode)

    def forward(self, input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike,
                linear_bias: ArrayLike | None = None) -> Any:
        """The loss: a Python float for 'mean'/'sum', a float32 array for 'none'."""
        return self._call(input, linear_weight, target, linear_bias)

    __call__ = forward

    def loss_and_grad(self, input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike,
                      linear_bias: ArrayLike | None = None) -> Any:
        """(loss, grad_input, grad_weight, grad_bias or None)."""
        return self._call(input, linear_weight, target, linear_bias, grad=True)

    def backward(self, input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike,
                 linear_bias: ArrayLike | None = None, grad_output: ArrayLike = 1.0) -> Any:
        """(grad_input, grad_weight, grad_bias or None) times grad_output."""
        return self._call(input, linear_weight, target, linear_bias, loss=False, grad=True,
                          grad_output=grad_output)

    def __repr__(self) -> str:
        parts = [] if self.weight is None else [f"weight=<array {np.shape(self.weight)}>"]
        parts += [f"ignore_index={self.ignore_index}", f"reduction={self.reduction!r}"]
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        if self.chunk_size is not None:
            parts.append(f"chunk_size={self.chunk_size}")
        if self.z_loss:
            parts.append(f"z_loss={self.z_loss}")
        return f"LinearCrossEntropyLoss({', '.join(parts)})"

