"""fastloss's kernels as PyTorch custom operators, the route torch.compile traces.

One operator per loss under the ``fastloss::`` namespace, each registered with
``torch.library.custom_op`` (CPU only), a fake (meta) implementation for
tracing (``register_fake``) and its autograd formula (``register_autograd``):

* ``fastloss::cross_entropy(Tensor input, Tensor target, Tensor? weight,
  int ignore_index, str reduction, float label_smoothing, bool need_grad)``
* ``fastloss::nll_loss(Tensor input, Tensor target, Tensor? weight,
  int ignore_index, str reduction, bool need_grad)``
* ``fastloss::binary_cross_entropy_with_logits(Tensor input, Tensor target,
  Tensor? weight, Tensor? pos_weight, str reduction, bool need_grad)``
* ``fastloss::mse_loss`` / ``fastloss::l1_loss(Tensor input, Tensor target,
  Tensor? weight, str reduction, bool need_grad)``
* ``fastloss::huber_loss(Tensor input, Tensor target, Tensor? weight,
  str reduction, float delta, bool need_grad)``
* ``fastloss::smooth_l1_loss(Tensor input, Tensor target, str reduction,
  float beta, bool need_grad)``
* ``fastloss::sigmoid_focal_loss(Tensor inputs, Tensor targets, float alpha,
  float gamma, str reduction, bool need_grad)``
* every other elementwise loss that fastloss._spec declares:
  ``fastloss::<func>(Tensor input, Tensor target, <its options in
  declaration order>, str reduction, bool need_grad)``, derived from the
  declaration (``SPEC_OPS``; the ones above are written out by hand)
* ``fastloss::linear_cross_entropy(Tensor input, Tensor linear_weight, Tensor target,
  Tensor? linear_bias, Tensor? weight, int ignore_index, str reduction,
  float label_smoothing, int chunk_size, bool need_grad)`` and its backward for
  reduction='none', ``fastloss::linear_cross_entropy_backward`` (see below)

Each returns ``(loss, grad)``: the loss (0-d for 'mean'/'sum', per-sample for
'none') and, from the same kernel call, d(loss)/d(input) (for 'none', of the
sum of the per-sample losses) as a new float32 contiguous tensor, or an empty
(0,) tensor when ``need_grad`` is False. Both are new tensors: a custom
operator's output may not alias its input, so there is no in-place variant
here (``overwrite_input`` has no effect under torch.compile).

The autograd formula saves only ``grad`` and multiplies it by the upstream
gradient (broadcast along the class axis for cross-entropy's per-sample
loss). ``grad`` is marked non-differentiable and ``set_materialize_grads(False)``
keeps autograd from zero-filling an input-sized upstream gradient for it on
every backward (262 ms at (2048, 32768) when prototyping). Double backward
through these operators is not supported (torch.compile does not support
double backward either); the eager route does it with PyTorch's loss.

Cost: the traced backward multiplies the saved gradient by the upstream
gradient even when that is 1, an extra pass over an input-sized tensor plus
its allocation (about 50 ms of ~150 ms for cross-entropy forward + backward at
(2048, 32000) on the development machine; the eager route skips it). Tried
and dropped: returning a token instead of the gradient and taking the
gradient back from a side table in a backward operator (its output then
aliases no input, so it could be the saved buffer itself). That breaks a
second backward through one compiled graph (two losses of one graph
backpropagated separately with retain_graph=True: AOTAutograd's single
backward function consumes every loss's gradient at the first call), and
handing the same buffer out twice is unsafe once a consumer writes into it
(``zero_grad`` on a ``.grad`` that AccumulateGrad stole).

Inputs are float32 CPU tensors; fastloss.torch.functional checks everything
else before it calls an operator, and falls back to PyTorch otherwise.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from fastloss import _spec

from . import _kernels, _linear_ce
from ._autograd import grad_buffer, loss_tensor, numpy_view

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "mse_loss",
           "l1_loss", "huber_loss", "smooth_l1_loss", "sigmoid_focal_loss", "linear_cross_entropy",
           "linear_cross_entropy_backward"]


def _arr(t):
    """A NumPy view of an optional tensor argument (C-contiguous first)."""
    return None if t is None else numpy_view(t.contiguous())


def _run(input, need_grad, kernel):
    """(loss, grad) tensors from `kernel(x_np, True or None)` on `input`."""
    x = input.contiguous()
    x_np = numpy_view(x)
    value, grad = kernel(x_np, grad_buffer(x_np.shape, x_np.size) if need_grad else None)
    return loss_tensor(value), torch.from_numpy(grad) if need_grad else x.new_empty((0,))


def _fake(input, need_grad, loss_shape):
    return input.new_empty(loss_shape), input.new_empty(input.shape if need_grad else (0,))


def _ce_per_sample_shape(input):
    return () if input.dim() == 1 else (input.shape[0], *input.shape[2:])


def _register_autograd(op, n_inputs, reduction_index, class_axis):
    """Backward of `op`: the saved gradient times the upstream gradient.
    `class_axis(input)`: the per-sample loss lacks the input's axis 1."""

    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        _, grad = output
        ctx.mark_non_differentiable(grad)
        ctx.save_for_backward(grad)
        ctx.broadcast = inputs[reduction_index] == "none" and class_axis(inputs[0])

    def backward(ctx, d_loss, d_grad):
        (grad,) = ctx.saved_tensors
        if grad.numel() == 0 and d_loss.numel() != 0:
            raise RuntimeError("fastloss: backward through an operator called with "
                               "need_grad=False")
        if ctx.broadcast:
            d_loss = d_loss.unsqueeze(1)
        return (grad * d_loss,) + (None,) * (n_inputs - 1)

    op.register_autograd(backward, setup_context=setup_context)


# --------------------------------------------------------------------------
# Cross-entropy.

@torch.library.custom_op("fastloss::cross_entropy", mutates_args=(), device_types="cpu")
def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: int,
                  reduction: str, label_smoothing: float,
                  need_grad: bool) -> Tuple[Tensor, Tensor]:
    t, w = numpy_view(target.contiguous()), _arr(weight)
    return _run(input, need_grad, lambda x, g: _kernels.cross_entropy(
        x, t, w, ignore_index, reduction, label_smoothing, g))


@cross_entropy.register_fake
def _(input, target, weight, ignore_index, reduction, label_smoothing, need_grad):
    return _fake(input, need_grad, _ce_per_sample_shape(input) if reduction == "none" else ())


_register_autograd(cross_entropy, 7, 4, lambda x: x.dim() >= 2)


# --------------------------------------------------------------------------
# Negative log-likelihood.

@torch.library.custom_op("fastloss::nll_loss", mutates_args=(), device_types="cpu")
def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: int,
             reduction: str, need_grad: bool) -> Tuple[Tensor, Tensor]:
    t, w = numpy_view(target.contiguous()), _arr(weight)
    return _run(input, need_grad, lambda x, g: _kernels.nll_loss(
        x, t, w, ignore_index, reduction, g))


@nll_loss.register_fake
def _(input, target, weight, ignore_index, reduction, need_grad):
    return _fake(input, need_grad, _ce_per_sample_shape(input) if reduction == "none" else ())


_register_autograd(nll_loss, 6, 4, lambda x: x.dim() >= 2)


# --------------------------------------------------------------------------
# Elementwise losses.

def _elementwise(name, input, target, reduction, need_grad, options):
    y = numpy_view(target.contiguous())
    return _run(input, need_grad,
                lambda x, g: _kernels.elementwise(name, x, y, reduction, options, g))


def _elementwise_fake(input, reduction, need_grad):
    return _fake(input, need_grad, input.shape if reduction == "none" else ())


def _no_class_axis(x):
    return False


@torch.library.custom_op("fastloss::binary_cross_entropy_with_logits", mutates_args=(),
                         device_types="cpu")
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Optional[Tensor],
                                     pos_weight: Optional[Tensor], reduction: str,
                                     need_grad: bool) -> Tuple[Tensor, Tensor]:
    options = {"weight": _arr(weight), "pos_weight": _arr(pos_weight)}
    return _elementwise("binary_cross_entropy_with_logits", input, target, reduction,
                        need_grad, options)


@binary_cross_entropy_with_logits.register_fake
def _(input, target, weight, pos_weight, reduction, need_grad):
    return _elementwise_fake(input, reduction, need_grad)


_register_autograd(binary_cross_entropy_with_logits, 6, 4, _no_class_axis)


@torch.library.custom_op("fastloss::mse_loss", mutates_args=(), device_types="cpu")
def mse_loss(input: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
             need_grad: bool) -> Tuple[Tensor, Tensor]:
    return _elementwise("mse_loss", input, target, reduction, need_grad,
                        {"weight": _arr(weight)})


@mse_loss.register_fake
def _(input, target, weight, reduction, need_grad):
    return _elementwise_fake(input, reduction, need_grad)


_register_autograd(mse_loss, 5, 3, _no_class_axis)


@torch.library.custom_op("fastloss::l1_loss", mutates_args=(), device_types="cpu")
def l1_loss(input: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
            need_grad: bool) -> Tuple[Tensor, Tensor]:
    return _elementwise("l1_loss", input, target, reduction, need_grad,
                        {"weight": _arr(weight)})


@l1_loss.register_fake
def _(input, target, weight, reduction, need_grad):
    return _elementwise_fake(input, reduction, need_grad)


_register_autograd(l1_loss, 5, 3, _no_class_axis)


@torch.library.custom_op("fastloss::huber_loss", mutates_args=(), device_types="cpu")
def huber_loss(input: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
               delta: float, need_grad: bool) -> Tuple[Tensor, Tensor]:
    return _elementwise("huber_loss", input, target, reduction, need_grad,
                        {"weight": _arr(weight), "delta": delta})


@huber_loss.register_fake
def _(input, target, weight, reduction, delta, need_grad):
    return _elementwise_fake(input, reduction, need_grad)


_register_autograd(huber_loss, 6, 3, _no_class_axis)


@torch.library.custom_op("fastloss::smooth_l1_loss", mutates_args=(), device_types="cpu")
def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str, beta: float,
                   need_grad: bool) -> Tuple[Tensor, Tensor]:
    return _elementwise("smooth_l1_loss", input, target, reduction, need_grad, {"beta": beta})


@smooth_l1_loss.register_fake
def _(input, target, reduction, beta, need_grad):
    return _elementwise_fake(input, reduction, need_grad)


_register_autograd(smooth_l1_loss, 5, 2, _no_class_axis)


@torch.library.custom_op("fastloss::sigmoid_focal_loss", mutates_args=(), device_types="cpu")
def sigmoid_focal_loss(inputs: Tensor, targets: Tensor, alpha: float, gamma: float,
                       reduction: str, need_grad: bool) -> Tuple[Tensor, Tensor]:
    return _elementwise("sigmoid_focal_loss", inputs, targets, reduction, need_grad,
                        {"alpha": alpha, "gamma": gamma})


@sigmoid_focal_loss.register_fake
def _(inputs, targets, alpha, gamma, reduction, need_grad):
    return _elementwise_fake(inputs, reduction, need_grad)


_register_autograd(sigmoid_focal_loss, 6, 4, _no_class_axis)


# --------------------------------------------------------------------------
# Linear cross-entropy (fastloss/torch/_linear_ce.py).
#
# Returns (loss, grad_input, grad_weight, grad_bias): for 'mean' and 'sum',
# with need_grad, the three gradients of the loss from the chunked forward
# (an empty (0,) tensor for an absent bias or without need_grad); backward
# multiplies them by the upstream gradient. For 'none' the forward is called
# with need_grad=False and backward runs linear_cross_entropy_backward with
# the per-token upstream gradient. chunk_size 0: the default rule.

def _lce_empty(t):
    return t.new_empty((0,), dtype=torch.float32)


@torch.library.custom_op("fastloss::linear_cross_entropy", mutates_args=(), device_types="cpu")
def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor,
                         linear_bias: Optional[Tensor], weight: Optional[Tensor],
                         ignore_index: int, reduction: str, label_smoothing: float,
                         chunk_size: int, need_grad: bool
                         ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    value, gx, gW, gb = _linear_ce.run(input, linear_weight, linear_bias, target, weight,
                                       ignore_index, reduction, label_smoothing,
                                       chunk_size or None, need_grad)
    return (value, _lce_empty(input) if gx is None else gx,
            _lce_empty(input) if gW is None else gW, _lce_empty(input) if gb is None else gb)


def _lce_loss_shape(input, reduction):
    if reduction != "none" or input.dim() == 1:
        return ()
    return (input.shape[0],)


@linear_cross_entropy.register_fake
def _(input, linear_weight, target, linear_bias, weight, ignore_index, reduction,
      label_smoothing, chunk_size, need_grad):
    loss = input.new_empty(_lce_loss_shape(input, reduction))
    if not need_grad:
        return loss, _lce_empty(input), _lce_empty(input), _lce_empty(input)
    gb = _lce_empty(input) if linear_bias is None else linear_bias.new_empty(linear_bias.shape)
    return (loss, input.new_empty(input.shape), linear_weight.new_empty(linear_weight.shape),
            gb)


@torch.library.custom_op("fastloss::linear_cross_entropy_backward", mutates_args=(),
                         device_types="cpu")
def linear_cross_entropy_backward(input: Tensor, linear_weight: Tensor, target: Tensor,
                                  linear_bias: Optional[Tensor], weight: Optional[Tensor],
                                  grad_output: Tensor, ignore_index: int, reduction: str,
                                  label_smoothing: float, chunk_size: int
                                  ) -> Tuple[Tensor, Tensor, Tensor]:
    """The three gradients of reduction='none' for a per-token grad_output."""
    go = grad_output.reshape(-1).float() if grad_output.dim() else float(grad_output)
    _, gx, gW, gb = _linear_ce.run(input, linear_weight, linear_bias, target, weight,
                                   ignore_index, reduction, label_smoothing,
                                   chunk_size or None, True, go)
    return gx, gW, _lce_empty(input) if gb is None else gb


@linear_cross_entropy_backward.register_fake
def _(input, linear_weight, target, linear_bias, weight, grad_output, ignore_index,
      reduction, label_smoothing, chunk_size):
    gb = _lce_empty(input) if linear_bias is None else linear_bias.new_empty(linear_bias.shape)
    return input.new_empty(input.shape), linear_weight.new_empty(linear_weight.shape), gb


def _lce_setup_context(ctx, inputs, output):
    ctx.set_materialize_grads(False)
    input, linear_weight, target, linear_bias, weight, ignore_index, reduction, \
        label_smoothing, chunk_size, need_grad = inputs
    _, gx, gW, gb = output
    ctx.mark_non_differentiable(gx, gW, gb)
    ctx.reduced = reduction != "none"
    ctx.has_bias = linear_bias is not None
    ctx.options = (ignore_index, reduction, label_smoothing, chunk_size)
    if ctx.reduced:
        ctx.save_for_backward(gx, gW, gb)
    else:
        ctx.save_for_backward(input, linear_weight, target, linear_bias, weight)


def _lce_backward(ctx, d_loss, d_gx, d_gW, d_gb):
    if d_loss is None:
        return (None,) * 10
    if ctx.reduced:
        gx, gW, gb = ctx.saved_tensors
        if gx.numel() == 0 and d_loss.numel() != 0 and gW.numel() == 0:
            raise RuntimeError("fastloss: backward through an operator called with "
                               "need_grad=False")
        grads = (gx * d_loss, gW * d_loss, gb * d_loss if ctx.has_bias else None)
    else:
        input, linear_weight, target, linear_bias, weight = ctx.saved_tensors
        gx, gW, gb = linear_cross_entropy_backward(input, linear_weight, target, linear_bias,
                                                   weight, d_loss, *ctx.options)
        grads = (gx, gW, gb if ctx.has_bias else None)
    return (grads[0], grads[1], None, grads[2]) + (None,) * 6


linear_cross_entropy.register_autograd(_lce_backward, setup_context=_lce_setup_context)


# Every other elementwise loss of fastloss._spec: its operator is derived from
# its declaration, ``fastloss::<func>(Tensor input, Tensor target, <options>,
# str reduction, bool need_grad)``, the options in declaration order (a WEIGHT
# as ``Tensor?``, a FLOAT as ``float``, a BOOL as ``bool``).

_SCHEMA_TYPES = {_spec.WEIGHT: "Tensor?", _spec.FLOAT: "float", _spec.BOOL: "bool"}


def spec_options(loss):
    """The options of `loss` that its operator (and functional form) pass on."""
    return tuple(o for o in loss.options if o.kind in _SCHEMA_TYPES)


def _register_spec_op(loss):
    options = spec_options(loss)
    names = tuple(o.name for o in options)
    weights = frozenset(o.name for o in options if o.kind == _spec.WEIGHT)
    schema = "(Tensor input, Tensor target, {}str reduction, bool need_grad) -> " \
             "(Tensor, Tensor)".format(
                 "".join(f"{_SCHEMA_TYPES[o.kind]} {o.name}, " for o in options))

    def op(input, target, *args):
        values = dict(zip(names, args))
        for key in weights:
            values[key] = _arr(values[key])
        reduction, need_grad = args[-2], args[-1]
        return _elementwise(loss.func, input, target, reduction, need_grad, values)

    def fake(input, target, *args):
        return _elementwise_fake(input, args[-2], args[-1])

    custom = torch.library.custom_op(f"fastloss::{loss.func}", op, mutates_args=(),
                                     device_types="cpu", schema=schema)
    custom.register_fake(fake)
    _register_autograd(custom, len(names) + 4, len(names) + 2, _no_class_axis)
    return custom


#: func -> operator, for the elementwise losses derived from the spec
SPEC_OPS = {loss.func: _register_spec_op(loss) for loss in _spec.LOSSES
            if loss.family == _spec.ELEMENTWISE and loss.func not in __all__}
__all__ += list(SPEC_OPS)
globals().update(SPEC_OPS)
