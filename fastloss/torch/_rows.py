"""fastloss.torch's row losses: ``multilabel_soft_margin_loss`` and
``multi_margin_loss`` (functional forms), their ``fastloss::`` custom
operators for torch.compile, and the modules ``MultiLabelSoftMarginLoss``
and ``MultiMarginLoss`` subclassing torch.nn's.

The rules are those of fastloss/torch/functional.py's notes: the fused
kernel for float32 CPU tensors (half ones under CPU autocast) with a
target and weight that do not require grad and options the kernel covers;
PyTorch's own function for anything else, which then gives PyTorch's
result or error. Here that also covers: a multilabel target of another
shape or dtype than the input's (PyTorch broadcasts and promotes), a
weight that does not broadcast to the input (PyTorch may broadcast the
loss to it), a multilabel input of more than two dimensions with
reduction='none' in eager mode (the saved gradient's per-row broadcast
along the last axis goes through the custom operator's formula only), and
for multi_margin_loss a target that is not int64 (PyTorch raises), p not
1 or 2, and a 0-d input. The functional forms are re-exported by
fastloss/torch/functional.py and the modules by fastloss/torch/__init__.py.
"""

# typing.Tuple: torch.library's schema inference of torch >= 2.4 (as in _ops.py)
from typing import Optional, Tuple  # noqa: UP035

import torch
import torch.nn.functional as _F
from torch import Tensor, nn
from torch.nn import _reduction

import fastloss

from . import _autograd, _kernels
from ._autograd import numpy_view
from ._ops import _arr, _fake, _run

__all__ = ["multilabel_soft_margin_loss", "multi_margin_loss", "MultiLabelSoftMarginLoss",
           "MultiMarginLoss"]

_REDUCTIONS = ("none", "mean", "sum")
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_F32_MAX = 3.4028234663852886e38


# --------------------------------------------------------------------------
# The kernels (fastloss's loss objects; see fastloss/torch/_kernels.py).

def _multilabel_kernel(x, y, weight, reduction, grad=None):
    if weight is None:
        crit = _kernels._cached(("multilabel_soft_margin_loss", reduction), lambda: (
            fastloss.MultiLabelSoftMarginLoss(reduction=reduction)))
    else:
        crit = fastloss.MultiLabelSoftMarginLoss(weight=weight, reduction=reduction)
    return _kernels._call(crit, x, y, grad)


def _multi_margin_kernel(x, target, p, margin, weight, reduction, grad=None):
    if weight is None:
        crit = _kernels._cached(("multi_margin_loss", p, margin, reduction), lambda: (
            fastloss.MultiMarginLoss(p=p, margin=margin, reduction=reduction)))
    else:
        crit = fastloss.MultiMarginLoss(p=p, margin=margin, weight=weight, reduction=reduction)
    return _kernels._call(crit, x, target, grad)


# --------------------------------------------------------------------------
# What the kernels accept.

def _eager_ok():
    return torch.autograd.forward_ad._current_level < 0 and \
        not torch._C._are_functorch_transforms_active()


def _cpu(t, compiling):
    """A CPU strided tensor (eager: also plain, not a subclass)."""
    if not isinstance(t, torch.Tensor) or not t.is_cpu or t.layout is not torch.strided:
        return False
    return compiling or type(t) in _PLAIN_TYPES


def _f32(t):
    dtype = t.dtype
    if dtype is torch.float32:
        return t
    if dtype in (torch.float16, torch.bfloat16) and torch.is_autocast_enabled("cpu"):
        return t.float()
    return None


def _weight(w, shape, compiling):
    """(ok, float32 weight or None): a weight that does not require grad and
    broadcasts to `shape` without growing it."""
    if w is None:
        return True, None
    if not _cpu(w, compiling) or w.requires_grad:
        return False, None
    w32 = _f32(w)
    if w32 is None or w32.dim() > len(shape):
        return False, None
    tail = tuple(shape)[len(shape) - w32.dim():]
    return all(a == 1 or a == b for a, b in zip(w32.shape, tail)), w32


def _legacy(reduction, size_average, reduce):
    if size_average is not None or reduce is not None:
        return _reduction.legacy_get_string(size_average, reduce)
    return reduction


def _multilabel_args(input, target, weight, reduction, compiling):
    """(x, y, weight) for the kernel, or None (PyTorch's function then)."""
    if reduction not in _REDUCTIONS or not (_cpu(input, compiling) and _cpu(target, compiling)):
        return None
    if target.requires_grad or input.dim() == 0 or target.shape != input.shape:
        return None
    x = _f32(input)
    y = _f32(target)
    if x is None or y is None:
        return None
    ok, w = _weight(weight, x.shape, compiling)
    if not ok:   # (non-finite weights: the kernel refuses them at run time)
        return None
    return x, y, w


def _multi_margin_args(input, target, p, margin, weight, reduction, compiling):
    """(x, target, p, margin, weight) for the kernel, or None."""
    if reduction not in _REDUCTIONS or not (_cpu(input, compiling) and _cpu(target, compiling)):
        return None
    if type(p) is not int or p not in (1, 2) or target.dtype is not torch.int64:
        return None
    if type(margin) is not float and type(margin) is not int:
        return None
    margin = float(margin)
    if not abs(margin) <= _F32_MAX:
        return None
    x = _f32(input)
    if x is None or x.dim() not in (1, 2) or x.shape[-1] == 0:
        return None
    if x.dim() == 2:
        if target.shape != (x.shape[0],):
            return None
    elif target.dim() > 1 or target.numel() != 1:
        return None
    if weight is not None:
        if not _cpu(weight, compiling) or weight.requires_grad or weight.shape != x.shape[-1:]:
            return None
        weight = _f32(weight)
        if weight is None:
            return None
    return x, target, p, margin, weight


# --------------------------------------------------------------------------
# Custom operators for torch.compile.

def _register_autograd(op, n_inputs, reduction_index):
    """Backward of `op`: the saved gradient times the upstream gradient, which
    for reduction='none' is per row and broadcast along the last (class)
    axis."""

    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        _, grad = output
        ctx.mark_non_differentiable(grad)
        ctx.save_for_backward(grad)
        ctx.broadcast = inputs[reduction_index] == "none" and inputs[0].dim() >= 1

    def backward(ctx, d_loss, d_grad):
        (grad,) = ctx.saved_tensors
        if grad.numel() == 0 and d_loss.numel() != 0:
            raise RuntimeError("fastloss: backward through an operator called with "
                               "need_grad=False")
        if ctx.broadcast and d_loss.dim() == grad.dim() - 1:
            d_loss = d_loss.unsqueeze(-1)
        return (grad * d_loss,) + (None,) * (n_inputs - 1)

    op.register_autograd(backward, setup_context=setup_context)


@torch.library.custom_op("fastloss::multilabel_soft_margin_loss", mutates_args=(),
                         device_types="cpu")
def multilabel_soft_margin_loss_op(input: Tensor, target: Tensor, weight: Optional[Tensor],
                                   reduction: str, need_grad: bool) -> Tuple[Tensor, Tensor]:  # noqa: UP006
    y, w = numpy_view(target.contiguous()), _arr(weight)
    return _run(input, need_grad, lambda x, g: _multilabel_kernel(x, y, w, reduction, g))


@multilabel_soft_margin_loss_op.register_fake
def _(input, target, weight, reduction, need_grad):
    return _fake(input, need_grad, tuple(input.shape[:-1]) if reduction == "none" else ())


_register_autograd(multilabel_soft_margin_loss_op, 5, 3)


@torch.library.custom_op("fastloss::multi_margin_loss", mutates_args=(), device_types="cpu")
def multi_margin_loss_op(input: Tensor, target: Tensor, p: int, margin: float,
                         weight: Optional[Tensor], reduction: str,
                         need_grad: bool) -> Tuple[Tensor, Tensor]:  # noqa: UP006
    t, w = numpy_view(target.contiguous()), _arr(weight)
    return _run(input, need_grad, lambda x, g: _multi_margin_kernel(
        x, t, p, margin, w, reduction, g))


@multi_margin_loss_op.register_fake
def _(input, target, p, margin, weight, reduction, need_grad):
    shape = tuple(target.shape) if input.dim() < 2 else (input.shape[0],)
    return _fake(input, need_grad, shape if reduction == "none" else ())


_register_autograd(multi_margin_loss_op, 7, 5)


# --------------------------------------------------------------------------
# Functional forms.

def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean", *, overwrite_input=False):
    r"""Multilabel soft margin loss (``torch.nn.functional.multilabel_soft_margin_loss``).

    .. math::

        \ell_n = -\frac{1}{C} \sum_c w_{n,c} \left[ y \log \sigma(x)
                 + (1 - y) \log \sigma(-x) \right]

    over the last (class) axis; 'mean' divides by the number of rows. One
    kernel pass computes the loss and d(loss)/d(input).

    Parameters
    ----------
    input : Tensor, shape (N, C), (C,) or (d1, ..., dk, C)
        Scores; the fused kernel runs for float32 CPU tensors.
    target : Tensor of the input's shape
    weight : Tensor, optional
        Broadcast to the input's shape (per class: (C,)).
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    overwrite_input : bool, keyword-only, default False
        Write the gradient over the input's memory (see
        fastloss.torch.functional's notes).

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; the input's shape without its last axis
        for 'none'.
    """
    reduction = _legacy(reduction, size_average, reduce)

    def torch_loss(inp):
        return _F.multilabel_soft_margin_loss(inp, target, weight, reduction=reduction)

    if torch.compiler.is_compiling():
        args = _multilabel_args(input, target, weight, reduction, True)
        if args is None:
            return torch_loss(input)
        x, y, w = args
        need_grad = x.requires_grad and torch.is_grad_enabled()
        return multilabel_soft_margin_loss_op(x, y, w, reduction, need_grad)[0]
    args = _multilabel_args(input, target, weight, reduction, False) if _eager_ok() else None
    if args is None or (reduction == "none" and input.dim() > 2):
        return torch_loss(input)
    x, y, w = args
    y_np = y.contiguous().numpy()
    w_np = None if w is None else w.contiguous().numpy()

    def kernel(x_np, grad):
        return _multilabel_kernel(x_np, y_np, w_np, reduction, grad)

    return _autograd.fused_loss(input, x, kernel, torch_loss, x.dim() == 2,
                                bool(overwrite_input))


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean", *, overwrite_input=False):
    r"""Multi-class margin loss (``torch.nn.functional.multi_margin_loss``).

    .. math::

        \ell_n = \frac{w_{y_n}}{C} \sum_{i \ne y_n}
                 \max(0, \mathrm{margin} - x_{n,y_n} + x_{n,i})^p

    (p 1 or 2, the weight outside the power, as PyTorch computes it); 'mean'
    divides by the number of rows. One kernel pass computes the loss and
    d(loss)/d(input).

    Parameters
    ----------
    input : Tensor, shape (N, C) or (C,)
        Scores; the fused kernel runs for float32 CPU tensors.
    target : Tensor of int64, shape (N,), () or (1,)
    p : int, default 1
    margin : float, default 1.0
    weight : Tensor of shape (C,), optional
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    overwrite_input : bool, keyword-only, default False

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; the target's shape for 'none'.
    """
    reduction = _legacy(reduction, size_average, reduce)

    def torch_loss(inp):
        return _F.multi_margin_loss(inp, target, p, margin, weight, reduction=reduction)

    if torch.compiler.is_compiling():
        args = _multi_margin_args(input, target, p, margin, weight, reduction, True)
        if args is None:
            return torch_loss(input)
        x, t, p, margin, w = args
        need_grad = x.requires_grad and torch.is_grad_enabled()
        return multi_margin_loss_op(x, t, p, margin, w, reduction, need_grad)[0]
    args = _multi_margin_args(input, target, p, margin, weight, reduction, False) \
        if _eager_ok() else None
    if args is None:
        return torch_loss(input)
    x, t, p, margin, w = args
    t_np = t.contiguous().numpy()
    w_np = None if w is None else w.contiguous().numpy()

    def kernel(x_np, grad):
        return _multi_margin_kernel(x_np, t_np, p, margin, w_np, reduction, grad)

    return _autograd.fused_loss(input, x, kernel, torch_loss, x.dim() == 2,
                                bool(overwrite_input))


# --------------------------------------------------------------------------
# Modules.

def _overwrite_repr(module, base):
    if not module.overwrite_input:
        return base
    return f"{base}, overwrite_input=True" if base else "overwrite_input=True"


class MultiLabelSoftMarginLoss(nn.MultiLabelSoftMarginLoss):
    """``torch.nn.MultiLabelSoftMarginLoss`` computed by fastloss's fused kernel;
    see :func:`fastloss.torch.functional.multilabel_soft_margin_loss`."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", *,
                 overwrite_input=False):
        super().__init__(weight, size_average, reduce, reduction)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return multilabel_soft_margin_loss(input, target, weight=self.weight,
                                           reduction=self.reduction,
                                           overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class MultiMarginLoss(nn.MultiMarginLoss):
    """``torch.nn.MultiMarginLoss`` computed by fastloss's fused kernel;
    see :func:`fastloss.torch.functional.multi_margin_loss`."""

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean", *, overwrite_input=False):
        super().__init__(p, margin, weight, size_average, reduce, reduction)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return multi_margin_loss(input, target, p=self.p, margin=self.margin,
                                 weight=self.weight, reduction=self.reduction,
                                 overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())
