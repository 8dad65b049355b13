"""The embedding losses' fastloss.torch forms: functional forms with
torch.nn.functional's signatures, their ``fastloss::`` custom operators for
torch.compile, and the eager autograd Function. Their modules are in
fastloss/torch/__init__.py, the functions re-exported by functional.py.

These losses have several differentiable inputs, so they do not fit the
one-input route of _autograd.fused_loss and _ops._run: here one kernel call
returns the loss and every input's gradient; the eager
:class:`_EmbeddingLoss` saves the gradients and backward multiplies each by
the upstream gradient (per row for reduction='none'); the operators return
``(loss, grad_1, ..., grad_k)`` (the gradients empty (0,) tensors when
``need_grad`` is False) and their autograd formula does the same product.

The kernels run for float32 CPU tensors (strided, not subclasses), a target
that does not require grad, inputs of one shape, and options they cover;
everything else runs PyTorch's own function (its result or its error):
other dtypes and devices, broadcasting inputs, triplet_margin_loss's p other
than 1 and 2, a margin PyTorch refuses, torch.func transforms, forward-mode
AD. Double backward (``create_graph=True``) differentiates PyTorch's own
loss, recomputed from the inputs, as the other losses' eager routes do.
"""

import torch
import torch.nn.functional as _F
from torch import Tensor

from fastloss import _embedding as _np_embedding
from fastloss import _validate

from ._autograd import loss_tensor, numpy_view

__all__ = ["cosine_embedding_loss", "triplet_margin_loss"]

_REDUCTION_CODES = {"none": _validate.NONE, "mean": _validate.MEAN, "sum": _validate.SUM}


def _np(t):
    return numpy_view(t.contiguous())


def _tensors(value, grads, need_grad, like):
    """(loss, *grads) tensors from the NumPy kernel's result."""
    loss = loss_tensor(value)
    if need_grad:
        return (loss,) + tuple(torch.from_numpy(g) for g in grads)
    return (loss,) + tuple(like.new_empty((0,)) for _ in grads)


def _scaled(grad, go, eager=True):
    """A saved gradient times the upstream gradient (0-d, or per row for
    reduction='none': broadcast along the embedding axis). Eager: an upstream
    1 returns the gradient itself (traced code cannot test the value)."""
    if go.dim() == 0:
        return grad if eager and go.item() == 1.0 else grad * go
    return grad * go.unsqueeze(-1)


class _EmbeddingLoss(torch.autograd.Function):
    """Loss and every input's gradient from one kernel call (eager mode).
    ``run(need_grad)`` returns ``(loss tensor, grads tuple or None)``;
    ``torch_loss()`` is PyTorch's loss of the same inputs, differentiated
    for a double backward (create_graph=True)."""

    @staticmethod
    def forward(ctx, run, torch_loss, n_inputs, *inputs):
        need = any(ctx.needs_input_grad[3:3 + n_inputs])
        loss, grads = run(need)
        ctx.set_materialize_grads(False)
        ctx.n_inputs, ctx.torch_loss, ctx.inputs = n_inputs, torch_loss, inputs
        if need:
            ctx.save_for_backward(*grads)
        return loss

    @staticmethod
    def backward(ctx, go):
        grads = ctx.saved_tensors
        none = (None, None, None)
        if go is None or not grads:
            return none + (None,) * ctx.n_inputs
        needs = ctx.needs_input_grad[3:]
        if torch.is_grad_enabled():   # double backward: PyTorch's loss, from the inputs
            with torch.enable_grad():
                wrt = [t for t, need in zip(ctx.inputs, needs) if need]
                second = list(torch.autograd.grad(ctx.torch_loss(), wrt, go, create_graph=True))
            return none + tuple(second.pop(0) if need else None for need in needs)
        ctx.torch_loss = ctx.inputs = None
        return none + tuple(_scaled(g, go) if need else None for g, need in zip(grads, needs))


def _plain(t):
    return type(t) in (torch.Tensor, torch.nn.Parameter) and t.is_cpu and \
        t.layout is torch.strided


def _cpu(t):
    return isinstance(t, torch.Tensor) and t.is_cpu and t.layout is torch.strided


def _eager_ok():
    return torch.autograd.forward_ad._current_level < 0 and \
        not torch._C._are_functorch_transforms_active()


def _float_inputs(tensors, compiling):
    """The float inputs, if the kernels take them: float32 CPU tensors of one shape."""
    for t in tensors:
        if not (_cpu(t) if compiling else _plain(t)) or t.dtype is not torch.float32:
            return False
        if t.shape != tensors[0].shape:
            return False
    return True


def _real(v):
    """A plain finite number (finite in float32) as a float, else None."""
    if type(v) is not float and type(v) is not int:
        return None
    try:
        v = float(v)
    except OverflowError:
        return None
    return v if abs(v) <= 3.4028234663852886e38 else None


def _reduction_of(reduction, size_average, reduce):
    if size_average is not None or reduce is not None:
        from torch.nn import _reduction

        return _reduction.legacy_get_string(size_average, reduce)
    return reduction


# --------------------------------------------------------------------------
# Cosine embedding loss.

def _cosine_kernel(x1, x2, t, margin, reduction, need_grad):
    code = _REDUCTION_CODES[reduction]
    x1n, x2n, tn = _np(x1), _np(x2), _np(t)
    if need_grad:
        value, grads = _np_embedding._cosine(x1n, x2n, tn, margin, code, grad=True)
    else:
        value, grads = _np_embedding._cosine(x1n, x2n, tn, margin, code), (None, None)
    return value, grads


@torch.library.custom_op("fastloss::cosine_embedding_loss", mutates_args=(),
                         device_types="cpu")
def cosine_embedding_loss_op(input1: Tensor, input2: Tensor, target: Tensor, margin: float,
                             reduction: str, need_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    value, grads = _cosine_kernel(input1, input2, target, margin, reduction, need_grad)
    return _tensors(value, grads, need_grad, input1)


@cosine_embedding_loss_op.register_fake
def _(input1, input2, target, margin, reduction, need_grad):
    shape = (input1.shape[:1] if input1.dim() == 2 else ()) if reduction == "none" else ()
    g = input1.shape if need_grad else (0,)
    return input1.new_empty(shape), input1.new_empty(g), input1.new_empty(g)


def _register_autograd(op, n_float, n_args):
    """Backward of `op`: each saved gradient times the upstream gradient; the
    float inputs come first among its n_args arguments."""

    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        grads = output[1:]
        ctx.mark_non_differentiable(*grads)
        ctx.save_for_backward(*grads)

    def backward(ctx, d_loss, *d_grads):
        grads = ctx.saved_tensors
        if d_loss is None:
            return (None,) * n_args
        if grads[0].numel() == 0 and d_loss.numel() != 0:
            raise RuntimeError("fastloss: backward through an operator called with "
                               "need_grad=False")
        return tuple(_scaled(g, d_loss, False) for g in grads) + (None,) * (n_args - n_float)

    op.register_autograd(backward, setup_context=setup_context)


_register_autograd(cosine_embedding_loss_op, 2, 6)


def _cosine_args_ok(input1, input2, target, margin, reduction, compiling):
    if reduction not in _REDUCTION_CODES or _real(margin) is None:
        return False
    if not _float_inputs((input1, input2), compiling) or input1.dim() not in (1, 2):
        return False
    if not (_cpu(target) if compiling else _plain(target)) or target.requires_grad:
        return False
    if target.dtype.is_complex:
        return False
    return tuple(target.shape) == (tuple(input1.shape[:1]) if input1.dim() == 2 else ())


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    r"""Cosine embedding loss (``torch.nn.functional.cosine_embedding_loss``).

    ``cos = <x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` per row;
    the loss is ``1 - cos`` where ``target == 1``, ``max(0, cos - margin)``
    where ``target == -1``, 0 for other target values, as in PyTorch. One
    kernel call gives the loss and both inputs' gradients.

    Parameters
    ----------
    input1, input2 : Tensor, shape (N, D) or (D,)
        The kernels run for float32 CPU tensors of one shape.
    target : Tensor, shape (N,) or ()
        1 or -1 (any real dtype); it must not require grad for the kernels.
    margin : float, default 0
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; (N,) (or 0-d for 1-d inputs) for 'none'.
    """
    reduction = _reduction_of(reduction, size_average, reduce)

    def torch_loss():
        return _F.cosine_embedding_loss(input1, input2, target, margin, reduction=reduction)

    compiling = torch.compiler.is_compiling()
    if not compiling and not _eager_ok():
        return torch_loss()
    if not _cosine_args_ok(input1, input2, target, margin, reduction, compiling):
        return torch_loss()
    m = float(margin)
    if compiling:
        need = (input1.requires_grad or input2.requires_grad) and torch.is_grad_enabled()
        return cosine_embedding_loss_op(input1, input2, target, m, reduction, need)[0]

    def run(need_grad):
        value, grads = _cosine_kernel(input1, input2, target, m, reduction, need_grad)
        return loss_tensor(value), tuple(torch.from_numpy(g) for g in grads) \
            if need_grad else None

    return _EmbeddingLoss.apply(run, torch_loss, 2, input1, input2)



# --------------------------------------------------------------------------
# Triplet margin loss.

def _triplet_kernel(a, p, n, margin, norm, eps, swap, reduction, need_grad):
    code = _REDUCTION_CODES[reduction]
    arrays = (_np(a), _np(p), _np(n))
    options = (margin, norm, eps, swap, code)
    if need_grad:
        return _np_embedding._triplet(*arrays, *options, grad=True)
    return _np_embedding._triplet(*arrays, *options), (None, None, None)


@torch.library.custom_op("fastloss::triplet_margin_loss", mutates_args=(), device_types="cpu")
def triplet_margin_loss_op(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float,
                           p: int, eps: float, swap: bool, reduction: str,
                           need_grad: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    value, grads = _triplet_kernel(anchor, positive, negative, margin, p, eps, swap, reduction,
                                   need_grad)
    return _tensors(value, grads, need_grad, anchor)


@triplet_margin_loss_op.register_fake
def _(anchor, positive, negative, margin, p, eps, swap, reduction, need_grad):
    shape = anchor.shape[:-1] if reduction == "none" else ()
    g = anchor.shape if need_grad else (0,)
    return (anchor.new_empty(shape), anchor.new_empty(g), anchor.new_empty(g),
            anchor.new_empty(g))


_register_autograd(triplet_margin_loss_op, 3, 9)


def _norm_of(p):
    """p as the kernels' 1 or 2, or None (PyTorch then computes)."""
    if (type(p) is int or type(p) is float) and p in (1, 2):
        return int(p)
    return None


def _triplet_args_ok(anchor, positive, negative, margin, p, eps, swap, reduction, compiling):
    m = _real(margin)
    if reduction not in _REDUCTION_CODES or m is None or not m > 0 or _real(eps) is None:
        return False
    if _norm_of(p) is None or type(swap) is not bool:
        return False
    return _float_inputs((anchor, positive, negative), compiling) and anchor.dim() >= 1


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    r"""Triplet margin loss (``torch.nn.functional.triplet_margin_loss``).

    ``d(u, v) = ||u - v + eps||_p`` over the last axis (as
    ``torch.pairwise_distance``); the loss is
    ``max(margin + d(a, p) - d(a, n), 0)`` per row, with
    ``min(d(a, n), d(p, n))`` as the negative distance for ``swap``. One
    kernel call gives the loss and the three inputs' gradients.

    Parameters
    ----------
    anchor, positive, negative : Tensor, shape (N, D), (D,) or (..., D)
        The kernels run for float32 CPU tensors of one shape (PyTorch
        broadcasts others).
    margin : float > 0, default 1.0
    p : float, default 2
        The kernels have p = 1 and p = 2; PyTorch computes any other p.
    eps : float, default 1e-6
    swap : bool, default False
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; ``anchor.shape[:-1]`` for 'none'.
    """
    reduction = _reduction_of(reduction, size_average, reduce)

    def torch_loss():
        return _F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=p, eps=eps,
                                      swap=swap, reduction=reduction)

    compiling = torch.compiler.is_compiling()
    if not compiling and not _eager_ok():
        return torch_loss()
    if not _triplet_args_ok(anchor, positive, negative, margin, p, eps, swap, reduction,
                            compiling):
        return torch_loss()
    m, norm, e = float(margin), _norm_of(p), float(eps)
    if compiling:
        need = (anchor.requires_grad or positive.requires_grad or negative.requires_grad) \
            and torch.is_grad_enabled()
        return triplet_margin_loss_op(anchor, positive, negative, m, norm, e, swap, reduction,
                                      need)[0]

    def run(need_grad):
        value, grads = _triplet_kernel(anchor, positive, negative, m, norm, e, swap, reduction,
                                       need_grad)
        return loss_tensor(value), tuple(torch.from_numpy(g) for g in grads) \
            if need_grad else None

    return _EmbeddingLoss.apply(run, torch_loss, 3, anchor, positive, negative)
