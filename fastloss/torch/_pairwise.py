"""fastloss.torch's forms of the pairwise family (fastloss/_pairwise.py):
losses of several float inputs with a gradient each.

For each loss: the functional form with torch.nn.functional's signature
(re-exported by fastloss.torch.functional), the module subclassing
torch.nn's class (re-exported by fastloss.torch), a ``fastloss::`` custom
operator for torch.compile (``register_fake``, ``register_autograd``) and a
``torch.autograd.Function`` for eager calls. Both routes call the same
runner on the same arrays: one fused kernel call gives the loss and every
input's gradient, saved for backward.

* ``fastloss::margin_ranking_loss(Tensor input1, Tensor input2, Tensor
  target, float margin, str reduction, bool need_grad) -> (Tensor loss,
  Tensor grad_input1, Tensor grad_input2)``

The saved gradients are d(loss)/d(input) for a reduced loss (already summed
over broadcast axes), and for reduction='none' of the broadcast shape (the
upstream gradient multiplies them before they are summed to each input's
shape). With need_grad=False they are empty (0,) tensors.

PyTorch's own function runs instead for anything else: other dtypes or
devices, a target that requires grad (PyTorch differentiates it), arguments
fastloss refuses (different numbers of dimensions, shapes that do not
broadcast, a non-finite margin: PyTorch then gives its result or its
error), double backward, torch.func transforms and forward-mode AD.
"""

import torch
import torch.nn.functional as _F
from torch import Tensor, nn
from torch.nn import _reduction

from fastloss import _pairwise as _run
from fastloss import _validate as _v

from ._autograd import loss_tensor, numpy_view
from .functional import _eager_ok

__all__ = ["margin_ranking_loss", "MarginRankingLoss"]

_CODES = {"none": _v.NONE, "mean": _v.MEAN, "sum": _v.SUM}


def _plain_f32(*tensors):
    return all(type(t) in (torch.Tensor, nn.Parameter) and t.dtype is torch.float32
               and t.is_cpu and t.layout is torch.strided for t in tensors)


def _np(t):
    return numpy_view(t.contiguous())


def _empty(t):
    return t.new_empty((0,))


def _scale(g, d_loss, shape):
    """The saved gradient `g` times the upstream gradient, summed to `shape`."""
    if g is None:
        return None
    out = g * d_loss
    return out if out.shape == shape else out.sum_to_size(shape)


# --------------------------------------------------------------------------
# margin_ranking_loss


def _mr_compute(input1, input2, target, margin, reduction, need_grad):
    """(loss tensor, grad1, grad2) from one kernel call (grads empty without need_grad)."""
    code = _CODES[reduction]
    out = _run._margin_ranking(_np(input1), _np(input2), _np(target), margin, code,
                               grad=need_grad, sum_grads=code != _v.NONE)
    if not need_grad:
        return loss_tensor(out), _empty(input1), _empty(input1)
    value, (g1, g2) = out
    return loss_tensor(value), torch.from_numpy(g1), torch.from_numpy(g2)


@torch.library.custom_op("fastloss::margin_ranking_loss", mutates_args=(), device_types="cpu")
def _mr_op(input1: Tensor, input2: Tensor, target: Tensor, margin: float, reduction: str,
           need_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    return _mr_compute(input1, input2, target, margin, reduction, need_grad)


@_mr_op.register_fake
def _(input1, input2, target, margin, reduction, need_grad):
    shape = torch.broadcast_shapes(input1.shape, input2.shape, target.shape)
    loss = input1.new_empty(shape if reduction == "none" else ())
    if not need_grad:
        return loss, _empty(input1), _empty(input1)
    if reduction == "none":
        return loss, input1.new_empty(shape), input1.new_empty(shape)
    return loss, input1.new_empty(input1.shape), input1.new_empty(input2.shape)


def _mr_setup(ctx, inputs, output):
    ctx.set_materialize_grads(False)
    _, g1, g2 = output
    ctx.mark_non_differentiable(g1, g2)
    ctx.save_for_backward(g1, g2)
    ctx.shapes = (inputs[0].shape, inputs[1].shape)


def _mr_backward(ctx, d_loss, d_g1, d_g2):
    g1, g2 = ctx.saved_tensors
    if d_loss is None:
        return (None,) * 6
    if g1.numel() == 0 and d_loss.numel() != 0 and torch.Size(ctx.shapes[0]).numel() != 0:
        raise RuntimeError("fastloss: backward through an operator called with "
                           "need_grad=False")
    return (_scale(g1, d_loss, ctx.shapes[0]), _scale(g2, d_loss, ctx.shapes[1]),
            None, None, None, None)


_mr_op.register_autograd(_mr_backward, setup_context=_mr_setup)


class _MarginRankingFn(torch.autograd.Function):
    """The eager route: the kernel once in forward; backward scales its gradients."""

    @staticmethod
    def forward(ctx, input1, input2, target, margin, reduction):
        need = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        loss, g1, g2 = _mr_compute(input1, input2, target, margin, reduction, need)
        ctx.save_for_backward(g1, g2)
        ctx.shapes = (input1.shape, input2.shape)
        ctx.keep = (input1, input2, target, margin, reduction)
        return loss

    @staticmethod
    def backward(ctx, d_loss):
        g1, g2 = ctx.saved_tensors
        if torch.is_grad_enabled():   # double backward: PyTorch's loss, from the inputs
            input1, input2, target, margin, reduction = ctx.keep
            with torch.enable_grad():
                a = input1.detach().requires_grad_()
                b = input2.detach().requires_grad_()
                loss = _F.margin_ranking_loss(a, b, target, margin, reduction=reduction)
                ga, gb = torch.autograd.grad(loss, (a, b), d_loss, create_graph=True)
            return ga, gb, None, None, None
        ctx.keep = None
        return (_scale(g1, d_loss, ctx.shapes[0]) if ctx.needs_input_grad[0] else None,
                _scale(g2, d_loss, ctx.shapes[1]) if ctx.needs_input_grad[1] else None,
                None, None, None)


def _mr_ok(input1, input2, target, margin, reduction):
    """The checked margin when fastloss's kernel can take the call, else None."""
    if not (isinstance(input1, Tensor) and isinstance(input2, Tensor)
            and isinstance(target, Tensor) and _plain_f32(input1, input2, target)):
        return None
    if target.requires_grad or reduction not in _CODES:
        return None
    if not input1.dim() == input2.dim() == target.dim():
        return None
    try:
        torch.broadcast_shapes(input1.shape, input2.shape, target.shape)
        return _v.real_scalar(margin, "margin")
    except (ValueError, TypeError, RuntimeError):
        return None


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """``torch.nn.functional.margin_ranking_loss`` computed by fastloss's fused
    kernel for float32 CPU tensors (PyTorch's function otherwise: see the
    module notes). Gradients reach input1 and input2 (summed over the axes
    they were broadcast along); a target that requires grad runs PyTorch's
    function, which differentiates it."""
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    m = _mr_ok(input1, input2, target, margin, reduction)
    if m is None:
        return _F.margin_ranking_loss(input1, input2, target, margin, reduction=reduction)
    if torch.compiler.is_compiling():
        need = torch.is_grad_enabled() and (input1.requires_grad or input2.requires_grad)
        return _mr_op(input1, input2, target, m, reduction, need)[0]
    if not _eager_ok():
        return _F.margin_ranking_loss(input1, input2, target, margin, reduction=reduction)
    return _MarginRankingFn.apply(input1, input2, target, m, reduction)


class MarginRankingLoss(nn.MarginRankingLoss):
    """``torch.nn.MarginRankingLoss`` computed by fastloss's fused kernel;
    see :func:`fastloss.torch.functional.margin_ranking_loss`."""

    def forward(self, input1, input2, target):
        return margin_ranking_loss(input1, input2, target, margin=self.margin,
                                   reduction=self.reduction)


