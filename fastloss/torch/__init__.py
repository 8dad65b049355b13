"""fastloss's fused loss kernels inside PyTorch: autograd, torch.compile, DDP.

The one-line change::

    from fastloss.torch import CrossEntropyLoss      # was: from torch.nn import ...
    import fastloss.torch.functional as F            # was: import torch.nn.functional as F

The loss modules subclass torch.nn's own (``fastloss.torch.CrossEntropyLoss``
is a ``torch.nn.CrossEntropyLoss``), with the same constructor arguments,
buffers (``weight``, ``pos_weight``), state_dict, ``.to()`` and repr; only
``forward`` differs: it calls :mod:`fastloss.torch.functional`, which runs
fastloss's fused kernel for float32 CPU tensors and PyTorch's own function
for everything else (see that module's notes for the exact rules).
``SigmoidFocalLoss`` (torchvision has only the function) is a
``torch.nn.Module`` with ``alpha``, ``gamma`` and ``reduction``. Eight
modules are written out below; every other elementwise loss that
fastloss._spec declares gets its module from its declaration (the end of
this file), as its functional form and custom operator are.

Every module takes one more keyword-only argument, ``overwrite_input=False``
(gradient over the input's memory; see fastloss.torch.functional).
:func:`empty_cache` releases the large gradient buffers kept for reuse.

Importing this module imports torch (``import fastloss`` alone never does)
and registers the ``fastloss::`` custom operators; from then on fastloss's
kernels run on ``torch.get_num_threads()`` threads unless
``fastloss.set_num_threads`` / ``fastloss.threads`` say otherwise.
Requires ``torch >= 2.4`` (``pip install "fastloss[torch]"``); tested with 2.13.
"""

try:
    import torch
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastloss.torch needs PyTorch: pip install \"fastloss[torch]\"") from exc

from torch import nn

from . import _kernels, functional
from ._autograd import empty_cache

_kernels.follow_torch_threads(torch.get_num_threads)

__all__ = ["CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss",
           "HuberLoss", "SmoothL1Loss", "SigmoidFocalLoss", "LinearCrossEntropyLoss", "functional",
           "empty_cache"]


def _overwrite_repr(module, base):
    if not module.overwrite_input:
        return base
    return f"{base}, overwrite_input=True" if base else "overwrite_input=True"


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss`` computed by fastloss's fused kernel;
    see :func:`fastloss.torch.functional.cross_entropy`."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0, *, overwrite_input=False):
        super().__init__(weight, size_average, ignore_index, reduce, reduction, label_smoothing)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return functional.cross_entropy(input, target, weight=self.weight,
                                        ignore_index=self.ignore_index,
                                        reduction=self.reduction,
                                        label_smoothing=self.label_smoothing,
                                        overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class NLLLoss(nn.NLLLoss):
    """``torch.nn.NLLLoss`` computed by fastloss's fused kernel;
    see :func:`fastloss.torch.functional.nll_loss`."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", *, overwrite_input=False):
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return functional.nll_loss(input, target, weight=self.weight,
                                   ignore_index=self.ignore_index, reduction=self.reduction,
                                   overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class BCEWithLogitsLoss(nn.BCEWithLogitsLoss):
    """``torch.nn.BCEWithLogitsLoss`` computed by fastloss's fused kernel;
    see :func:`fastloss.torch.functional.binary_cross_entropy_with_logits`."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None, *, overwrite_input=False):
        super().__init__(weight, size_average, reduce, reduction, pos_weight)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return functional.binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction,
            overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class MSELoss(nn.MSELoss):
    """``torch.nn.MSELoss`` computed by fastloss's fused kernel; see
    :func:`fastloss.torch.functional.mse_loss`."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", *,
                 overwrite_input=False):
        super().__init__(size_average, reduce, reduction)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return functional.mse_loss(input, target, reduction=self.reduction,
                                   overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class L1Loss(nn.L1Loss):
    """``torch.nn.L1Loss`` computed by fastloss's fused kernel; see
    :func:`fastloss.torch.functional.l1_loss`."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", *,
                 overwrite_input=False):
        super().__init__(size_average, reduce, reduction)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return functional.l1_loss(input, target, reduction=self.reduction,
                                  overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class HuberLoss(nn.HuberLoss):
    """``torch.nn.HuberLoss`` computed by fastloss's fused kernel; see
    :func:`fastloss.torch.functional.huber_loss`."""

    def __init__(self, reduction="mean", delta=1.0, *, overwrite_input=False):
        super().__init__(reduction, delta)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return functional.huber_loss(input, target, reduction=self.reduction, delta=self.delta,
                                     overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class SmoothL1Loss(nn.SmoothL1Loss):
    """``torch.nn.SmoothL1Loss`` computed by fastloss's fused kernel; see
    :func:`fastloss.torch.functional.smooth_l1_loss`."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0, *,
                 overwrite_input=False):
        super().__init__(size_average, reduce, reduction, beta)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return functional.smooth_l1_loss(input, target, reduction=self.reduction,
                                         beta=self.beta, overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(self, super().extra_repr())


class SigmoidFocalLoss(nn.Module):
    """The sigmoid focal loss as a module (torchvision has only
    ``torchvision.ops.sigmoid_focal_loss``); see
    :func:`fastloss.torch.functional.sigmoid_focal_loss`. The default
    reduction is 'none', as torchvision's."""

    def __init__(self, alpha=0.25, gamma=2.0, reduction="none", *, overwrite_input=False):
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.reduction = reduction
        self.overwrite_input = overwrite_input

    def forward(self, inputs, targets):
        return functional.sigmoid_focal_loss(inputs, targets, self.alpha, self.gamma,
                                             self.reduction,
                                             overwrite_input=self.overwrite_input)

    def extra_repr(self):
        return _overwrite_repr(
            self, f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}")


class LinearCrossEntropyLoss(nn.LinearCrossEntropyLoss):
    """``torch.nn.LinearCrossEntropyLoss`` (it owns the head: ``self.linear``)
    computed by fastloss's chunked loop; see
    :func:`fastloss.torch.functional.linear_cross_entropy`. One more
    keyword-only argument, ``chunk_size`` (tokens per chunk, default: the
    rule there)."""

    def __init__(self, in_features, num_classes, *, out_features=(), bias=False, device=None,
                 dtype=None, reduction="mean", weight=None, ignore_index=None,
                 label_smoothing=0.0, options=None, chunk_size=None):
        super().__init__(in_features, num_classes, out_features=out_features, bias=bias,
                         device=device, dtype=dtype, reduction=reduction, weight=weight,
                         ignore_index=ignore_index, label_smoothing=label_smoothing,
                         options=options)
        self.chunk_size = chunk_size

    def forward(self, input, target):
        if self.out_features:   # K-dimensional: PyTorch's own
            return super().forward(input, target)
        return functional.linear_cross_entropy(
            input, self.linear.weight, target, linear_bias=self.linear.bias,
            weight=self.weight, reduction=self.reduction, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, options=self.options,
            chunk_size=self.chunk_size)


# Every other elementwise loss of fastloss._spec: a subclass of torch.nn's
# class of the spec's `cls` (its constructor, buffers, state_dict and repr)
# whose forward calls the functional form derived from the same declaration,
# with the module's attributes of the spec's option names.

def _spec_module(func, base):
    fn = getattr(functional, func)
    names = tuple(o.name for o in functional._ops.spec_options(functional._SPEC_LOSSES[func]))

    def __init__(self, *args, overwrite_input=False, **kwargs):
        base.__init__(self, *args, **kwargs)
        self.overwrite_input = overwrite_input

    def forward(self, input, target):
        return fn(input, target, reduction=self.reduction,
                  overwrite_input=self.overwrite_input,
                  **{name: getattr(self, name) for name in names})

    def extra_repr(self):
        return _overwrite_repr(self, base.extra_repr(self))

    return type(base.__name__, (base,), {
        "__init__": __init__, "forward": forward, "extra_repr": extra_repr,
        "__module__": __name__, "__qualname__": base.__name__,
        "__doc__": f"``torch.nn.{base.__name__}`` computed by fastloss's fused kernel; "
                   f"see :func:`fastloss.torch.functional.{func}`.",
    })


_SPEC_MODULES = {functional._SPEC_LOSSES[func].cls:
                 _spec_module(func, getattr(nn, functional._SPEC_LOSSES[func].cls))
                 for func in functional._SPEC_FUNCTIONS}
__all__ += list(_SPEC_MODULES)
globals().update(_SPEC_MODULES)

# The row losses' modules (fastloss/torch/_rows.py).
from ._rows import MultiLabelSoftMarginLoss, MultiMarginLoss  # noqa: E402

__all__ += ["MultiLabelSoftMarginLoss", "MultiMarginLoss"]

# The pairwise family's modules (fastloss/torch/_pairwise.py).
from ._pairwise import GaussianNLLLoss, MarginRankingLoss  # noqa: E402

__all__ += ["MarginRankingLoss", "GaussianNLLLoss"]


class CosineEmbeddingLoss(nn.CosineEmbeddingLoss):
    """``torch.nn.CosineEmbeddingLoss`` computed by fastloss's fused kernel (the
    loss and both inputs' gradients from one call); see
    :func:`fastloss.torch.functional.cosine_embedding_loss`."""

    def forward(self, input1, input2, target):
        return functional.cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                                reduction=self.reduction)


class TripletMarginLoss(nn.TripletMarginLoss):
    """``torch.nn.TripletMarginLoss`` computed by fastloss's fused kernel (the
    loss and the three inputs' gradients from one call); see
    :func:`fastloss.torch.functional.triplet_margin_loss`."""

    def forward(self, anchor, positive, negative):
        return functional.triplet_margin_loss(anchor, positive, negative, margin=self.margin,
                                              p=self.p, eps=self.eps, swap=self.swap,
                                              reduction=self.reduction)


__all__ += ["CosineEmbeddingLoss", "TripletMarginLoss"]
