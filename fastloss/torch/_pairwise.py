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
* ``fastloss::gaussian_nll_loss(Tensor input, Tensor target, Tensor? var,
  float var_value, bool full, float eps, str reduction, bool need_grad) ->
  (Tensor loss, Tensor grad_input, Tensor grad_var)`` (var None: the Python
  float var_value, which gets no gradient, as in PyTorch), and for
  reduction='none' its backward ``fastloss::gaussian_nll_loss_backward(...,
  Tensor grad_output) -> (Tensor grad_input, Tensor grad_var)``: var's
  gradient sums over the axes var is broadcast along, so the upstream
  gradient must be known first; the forward then computes no gradient.

The saved gradients are d(loss)/d(input) for a reduced loss (already summed
over broadcast axes), and for reduction='none' of the broadcast shape (the
upstream gradient multiplies them before they are summed to each input's
shape; gaussian_nll_loss calls its backward operator instead). With
need_grad=False they are empty (0,) tensors.

PyTorch's own function runs instead for anything else: other dtypes or
devices, a target that requires grad (PyTorch differentiates it), arguments
fastloss refuses (different numbers of dimensions, shapes that do not
broadcast, a non-finite margin: PyTorch then gives its result or its
error), double backward, torch.func transforms and forward-mode AD.
"""

from typing import Optional

import torch
import torch.nn.functional as _F
from torch import Tensor, nn
from torch.nn import _reduction

from fastloss import _pairwise as _run
from fastloss import _validate as _v

from ._autograd import loss_tensor, numpy_view
from .functional import _eager_ok

__all__ = ["margin_ranking_loss", "MarginRankingLoss", "gaussian_nll_loss", "GaussianNLLLoss"]

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
            with torch.enable_grad():   # from the inputs themselves: the graph reaches them
                wrt = tuple(t for t, need in zip((input1, input2), ctx.needs_input_grad)
                            if need)
                loss = _F.margin_ranking_loss(input1, input2, target, margin,
                                              reduction=reduction)
                grads = list(torch.autograd.grad(loss, wrt, d_loss, create_graph=True))
            return (grads.pop(0) if ctx.needs_input_grad[0] else None,
                    grads.pop(0) if ctx.needs_input_grad[1] else None, None, None, None)
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




# --------------------------------------------------------------------------
# gaussian_nll_loss


def _gn_var(var, var_value):
    return var_value if var is None else _np(var)


def _gn_compute(input, target, var, var_value, full, eps, reduction, need_grad):
    """(loss, grad_input, grad_var) from one kernel call; the gradients are
    empty without need_grad and for reduction='none' (see the module notes)."""
    code = _CODES[reduction]
    need_grad = need_grad and code != _v.NONE
    out = _run._gaussian_nll(_np(input), _np(target), _gn_var(var, var_value), full, eps, code,
                             grad=need_grad)
    if not need_grad:
        return loss_tensor(out), _empty(input), _empty(input)
    value, (gx, gv) = out
    return (loss_tensor(value), torch.from_numpy(gx),
            _empty(input) if gv is None else torch.from_numpy(gv))


def _gn_grads(input, target, var, var_value, full, eps, reduction, grad_output):
    """(grad_input, grad_var) for the upstream gradient, from one kernel call."""
    go = grad_output.detach()
    go = float(go) if go.dim() == 0 else _np(go.float())
    gx, gv = _run._gaussian_nll(_np(input), _np(target), _gn_var(var, var_value), full, eps,
                                _CODES[reduction], loss=False, grad=True, grad_output=go)
    return torch.from_numpy(gx), _empty(input) if gv is None else torch.from_numpy(gv)


@torch.library.custom_op("fastloss::gaussian_nll_loss", mutates_args=(), device_types="cpu")
def _gn_op(input: Tensor, target: Tensor, var: Optional[Tensor], var_value: float, full: bool,
           eps: float, reduction: str, need_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    return _gn_compute(input, target, var, var_value, full, eps, reduction, need_grad)


@_gn_op.register_fake
def _(input, target, var, var_value, full, eps, reduction, need_grad):
    loss = input.new_empty(input.shape if reduction == "none" else ())
    if not need_grad or reduction == "none":
        return loss, _empty(input), _empty(input)
    return (loss, input.new_empty(input.shape),
            _empty(input) if var is None else input.new_empty(var.shape))


@torch.library.custom_op("fastloss::gaussian_nll_loss_backward", mutates_args=(),
                         device_types="cpu")
def _gn_backward_op(input: Tensor, target: Tensor, var: Optional[Tensor], var_value: float,
                    full: bool, eps: float, reduction: str,
                    grad_output: Tensor) -> tuple[Tensor, Tensor]:
    return _gn_grads(input, target, var, var_value, full, eps, reduction, grad_output)


@_gn_backward_op.register_fake
def _(input, target, var, var_value, full, eps, reduction, grad_output):
    return input.new_empty(input.shape), (
        _empty(input) if var is None else input.new_empty(var.shape))


def _gn_setup(ctx, inputs, output):
    ctx.set_materialize_grads(False)
    _, gx, gv = output
    ctx.mark_non_differentiable(gx, gv)
    input, target, var, var_value, full, eps, reduction, _ = inputs
    ctx.none = reduction == "none"
    ctx.has_var = var is not None
    ctx.options = (var_value, full, eps, reduction)
    if ctx.none:
        ctx.save_for_backward(input, target, var)
    else:
        ctx.save_for_backward(gx, gv)


def _gn_backward(ctx, d_loss, d_gx, d_gv):
    if d_loss is None:
        return (None,) * 8
    if ctx.none:
        input, target, var = ctx.saved_tensors
        gx, gv = _gn_backward_op(input, target, var, *ctx.options, d_loss)
    else:
        gx, gv = ctx.saved_tensors
        if gx.numel() == 0 and d_loss.numel() != 0 and gv.numel() == 0:
            raise RuntimeError("fastloss: backward through an operator called with "
                               "need_grad=False")
        gx, gv = gx * d_loss, gv * d_loss
    return (gx, None, gv if ctx.has_var else None) + (None,) * 5


_gn_op.register_autograd(_gn_backward, setup_context=_gn_setup)


class _GaussianNLLFn(torch.autograd.Function):
    """The eager route: the kernel once in forward (for a reduced loss); for
    reduction='none' once in backward, with the upstream gradient."""

    @staticmethod
    def forward(ctx, input, target, var, var_value, full, eps, reduction):
        need = ctx.needs_input_grad[0] or ctx.needs_input_grad[2]
        loss, gx, gv = _gn_compute(input, target, var, var_value, full, eps, reduction, need)
        ctx.options = (var_value, full, eps, reduction)
        ctx.keep = (input, target, var)
        ctx.save_for_backward(gx, gv)
        return loss

    @staticmethod
    def backward(ctx, d_loss):
        input, target, var = ctx.keep
        var_value, full, eps, reduction = ctx.options
        if torch.is_grad_enabled():   # double backward: PyTorch's loss, from the inputs
            with torch.enable_grad():   # from the inputs themselves: the graph reaches them
                need_x, need_v = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
                wrt = tuple(t for t, need in ((input, need_x), (var, need_v)) if need)
                loss = _F.gaussian_nll_loss(input, target, var_value if var is None else var,
                                            full=full, eps=eps, reduction=reduction)
                grads = list(torch.autograd.grad(loss, wrt, d_loss, create_graph=True))
            return (grads.pop(0) if need_x else None, None,
                    grads.pop(0) if need_v else None, None, None, None, None)
        ctx.keep = None
        if reduction == "none":
            gx, gv = _gn_grads(input, target, var, var_value, full, eps, reduction, d_loss)
        else:
            gx, gv = ctx.saved_tensors
            gx, gv = gx * d_loss, gv * d_loss
        return (gx if ctx.needs_input_grad[0] else None, None,
                gv if ctx.needs_input_grad[2] else None, None, None, None, None)


def _var_shape_ok(x_shape, var_shape):
    """PyTorch's var shapes (fastloss._pairwise._var_layout's rule, on shapes
    alone so that torch.compile traces it)."""
    if var_shape != x_shape and x_shape and var_shape == x_shape[:-1]:
        var_shape = var_shape + (1,)
    if var_shape == x_shape:
        return True
    mismatched = [i for i, (n, m) in enumerate(zip(x_shape, var_shape)) if n != m]
    return len(var_shape) == len(x_shape) and len(mismatched) == 1 and \
        var_shape[mismatched[0]] == 1


def _gn_ok(input, target, var, full, eps, reduction):
    """(var tensor or None, var value, full, eps) when fastloss's kernel can
    take the call, else None."""
    if not (isinstance(input, Tensor) and isinstance(target, Tensor)
            and _plain_f32(input, target)) or target.requires_grad:
        return None
    if reduction not in _CODES:
        return None
    if isinstance(var, Tensor):
        if not _plain_f32(var):
            return None
        var_t, value = var, 0.0
    elif type(var) is float:
        var_t, value = None, var
    else:
        return None
    try:
        if torch.broadcast_shapes(input.shape, target.shape) != input.shape:
            return None
        if var_t is not None and not _var_shape_ok(tuple(input.shape), tuple(var_t.shape)):
            return None
        return var_t, value, _v.flag(full, "full"), _v.real_scalar(eps, "eps", 0.0)
    except (ValueError, TypeError, RuntimeError):
        return None


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """``torch.nn.functional.gaussian_nll_loss`` computed by fastloss's fused
    kernel for float32 CPU tensors (PyTorch's function otherwise: see the
    module notes). Gradients reach input and a var tensor (summed over the
    axes it is broadcast along); a float var gets none, as in PyTorch; a
    target that requires grad runs PyTorch's function, which differentiates it."""
    args = _gn_ok(input, target, var, full, eps, reduction)
    if args is None:
        return _F.gaussian_nll_loss(input, target, var, full=full, eps=eps, reduction=reduction)
    var_t, value, full_, eps_ = args
    if torch.compiler.is_compiling():
        need = torch.is_grad_enabled() and (
            input.requires_grad or (var_t is not None and var_t.requires_grad))
        return _gn_op(input, target, var_t, value, full_, eps_, reduction, need)[0]
    if not _eager_ok():
        return _F.gaussian_nll_loss(input, target, var, full=full, eps=eps, reduction=reduction)
    return _GaussianNLLFn.apply(input, target, var_t, value, full_, eps_, reduction)


class GaussianNLLLoss(nn.GaussianNLLLoss):
    """``torch.nn.GaussianNLLLoss`` computed by fastloss's fused kernel;
    see :func:`fastloss.torch.functional.gaussian_nll_loss`."""

    def forward(self, input, target, var):
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                 reduction=self.reduction)
