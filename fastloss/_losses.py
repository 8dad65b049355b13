"""Loss objects with torch.nn's class names and constructor arguments.

Each is callable (returns the loss, like ``forward``) and adds two methods
PyTorch gets from autograd:

* ``loss_and_grad(input, target, out=None) -> (loss, grad)``: one fused kernel
  call. ``grad`` is d(loss)/d(input); for reduction='none' it is the gradient of
  the sum of the per-sample losses.
* ``backward(input, target, grad_output=1.0, out=None) -> grad``: the gradient
  given the upstream gradient: a scalar for 'mean'/'sum', or an array of the
  per-sample loss's shape for 'none' ((N,) for cross-entropy, input's shape for
  the elementwise losses; a scalar is broadcast).

``out`` may be a preallocated C-contiguous float32 array of input's shape,
including ``input`` itself for an in-place gradient; it is returned.
"""

from ._functional import (
    _BCE,
    _FOCAL,
    _HUBER,
    _L1,
    _MSE,
    _SMOOTH_L1,
    _focal_params,
    _positive_delta,
    _real_scalar,
    _reduction,
    _run_cross_entropy,
    _run_elementwise,
)

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "SigmoidFocalLoss", "MSELoss", "L1Loss",
           "HuberLoss", "SmoothL1Loss"]


class _Loss:
    """Reduction handling and the call protocol shared by the loss classes."""

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self.reduction, self._code = _reduction(reduction, size_average, reduce)

    def _run(self, input, target, **mode):
        raise NotImplementedError

    def forward(self, input, target):
        """The loss: a Python float for 'mean'/'sum', a float32 array for 'none'."""
        return self._run(input, target)

    __call__ = forward

    def loss_and_grad(self, input, target, out=None):
        """(loss, d loss / d input) from one fused pass over the input."""
        return self._run(input, target, grad=True, out=out)

    def backward(self, input, target, grad_output=1.0, out=None):
        """d loss / d input times grad_output, without computing the loss."""
        return self._run(input, target, loss=False, grad=True, grad_output=grad_output,
                         out=out)

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy; see :func:`fastloss.cross_entropy`."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0, *, z_loss=0.0):
        super().__init__(size_average, reduce, reduction)
        self.weight = weight
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss

    def _run(self, input, target, **mode):
        return _run_cross_entropy(input, target, self.weight, self.ignore_index, self._code,
                                  self.label_smoothing, self.z_loss, **mode)

    def forward(self, input, target, *, lse_out=None, return_correct=False):
        """The loss; with ``return_correct``, ``(loss, num_correct)``. ``lse_out``
        receives each row's log-sum-exp (see :func:`fastloss.cross_entropy`)."""
        return self._run(input, target, lse_out=lse_out, return_correct=return_correct)

    __call__ = forward

    def loss_and_grad(self, input, target, out=None, *, lse_out=None, return_correct=False):
        """(loss, grad), or (loss, grad, num_correct) with ``return_correct``."""
        return self._run(input, target, grad=True, out=out, lse_out=lse_out,
                         return_correct=return_correct)

    def __repr__(self):
        return (f"CrossEntropyLoss(ignore_index={self.ignore_index}, "
                f"reduction={self.reduction!r})")


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits; see :func:`fastloss.binary_cross_entropy_with_logits`."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def _run(self, input, target, **mode):
        return _run_elementwise(_BCE, input, target, self._code, self.weight, self.pos_weight,
                                **mode)


class SigmoidFocalLoss(_Loss):
    """Sigmoid focal loss; see :func:`fastloss.sigmoid_focal_loss` (default reduction 'none')."""

    def __init__(self, alpha=0.25, gamma=2.0, reduction="none"):
        super().__init__(reduction=reduction)
        self.alpha, self.gamma = _focal_params(alpha, gamma)

    def _run(self, input, target, **mode):
        return _run_elementwise(_FOCAL, input, target, self._code, param0=self.alpha,
                                param1=self.gamma, **mode)


class MSELoss(_Loss):
    """Mean squared error; see :func:`fastloss.mse_loss`."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", weight=None):
        super().__init__(size_average, reduce, reduction)
        self.weight = weight

    def _run(self, input, target, **mode):
        return _run_elementwise(_MSE, input, target, self._code, self.weight, **mode)


class L1Loss(_Loss):
    """Mean absolute error; see :func:`fastloss.l1_loss`."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", weight=None):
        super().__init__(size_average, reduce, reduction)
        self.weight = weight

    def _run(self, input, target, **mode):
        return _run_elementwise(_L1, input, target, self._code, self.weight, **mode)


class HuberLoss(_Loss):
    """Huber loss; see :func:`fastloss.huber_loss`."""

    def __init__(self, reduction="mean", delta=1.0, weight=None):
        super().__init__(reduction=reduction)
        self.delta = _positive_delta(delta)
        self.weight = weight

    def _run(self, input, target, **mode):
        return _run_elementwise(_HUBER, input, target, self._code, self.weight,
                                param0=self.delta, **mode)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss; see :func:`fastloss.smooth_l1_loss`."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = _real_scalar(beta, "beta", 0.0)

    def _run(self, input, target, **mode):
        return _run_elementwise(_SMOOTH_L1, input, target, self._code, param0=self.beta,
                                **mode)
