"""What every loss class shares: the call protocol, the reduction, option properties.

The classes themselves are generated (fastloss/_api.py) from the loss
declarations. Each is callable (returns the loss, like ``forward``) and adds
two methods PyTorch gets from autograd:

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

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _validate


def option(name: str, check: Callable[[Any], Any]) -> property:
    """A property that stores ``check(value)`` under ``_<name>``: a scalar
    option is validated (and rounded to what the kernels see) when it is set,
    at construction or later."""
    attr = "_" + name

    def get(self: Any) -> Any:
        return getattr(self, attr)

    def set_(self: Any, value: Any) -> None:
        setattr(self, attr, check(value))

    return property(get, set_, doc=f"The {name} option (checked when set).")


class Reduced:
    """What every loss class has: the reduction (checked when set) and a repr
    of its options. The losses of several arrays (fastloss/_pairwise.py,
    fastloss/_embedding.py) subclass it directly, with their own call
    methods; the others through :class:`Loss`."""

    _default_reduction = "mean"
    _options: tuple = ()        # constructor options, in order (for repr)
    _batchmean = False          # also takes reduction='batchmean' (kl_div)

    def _set_reduction(self, reduction: str, size_average: bool | None = None,
                       reduce: bool | None = None) -> None:
        self._reduction, self._code = _validate.reduction(reduction, size_average, reduce,
                                                          self._batchmean)

    @property
    def reduction(self) -> str:
        """'mean', 'sum' or 'none' (checked when set)."""
        return self._reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        self._set_reduction(value)

    def __repr__(self) -> str:
        parts = []
        for name in self._options:
            value = getattr(self, name)
            if value is None:
                continue
            shape = getattr(value, "shape", ())
            shown = f"<array {shape}>" if shape else repr(value)
            parts.append(f"{name}={shown}")
        parts.append(f"reduction={self.reduction!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class Loss(Reduced):
    """The call protocol shared by the loss classes of one input and one target."""

    _func = ""                  # the function of the same loss

    def _run(self, input: ArrayLike, target: ArrayLike, **mode: Any) -> Any:
        raise NotImplementedError

    def forward(self, input: ArrayLike, target: ArrayLike) -> Any:
        """The loss: a Python float for 'mean'/'sum', a float32 array for 'none'."""
        return self._run(input, target)

    def __call__(self, input: ArrayLike, target: ArrayLike) -> Any:
        return self.forward(input, target)

    def loss_and_grad(self, input: ArrayLike, target: ArrayLike,
                      out: NDArray[np.float32] | None = None) -> Any:
        """(loss, d loss / d input) from one fused pass over the input."""
        return self._run(input, target, grad=True, out=out)

    def backward(self, input: ArrayLike, target: ArrayLike, grad_output: ArrayLike = 1.0,
                 out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """d loss / d input times grad_output, without computing the loss."""
        return self._run(input, target, loss=False, grad=True, grad_output=grad_output,
                         out=out)
