"""Helpers of the fastloss.torch tests (tests/pytorch/test_torch_*.py).

* :func:`run_ours` runs a registry loss through fastloss.torch.functional with
  autograd and returns NumPy results, like ``_support.registry.torch_loss_and_grad``
  does for PyTorch;
* the ``kernel_calls`` fixture counts the calls that reach fastloss's kernels
  (through fastloss/torch/_kernels.py, the seam to the NumPy layer), so a test
  can tell the fused route from a fallback to PyTorch, and checks that the
  kernels got views of the tensors' memory, not copies, where it should.
"""

import os

import numpy as np
import pytest
import torch

import fastloss.torch.functional as FT
from fastloss.torch import _kernels

WEIGHT_KEYS = ("weight", "pos_weight")

# tools/sanitize.sh runs the suite with AddressSanitizer preloaded. There a C++
# exception thrown inside libtorch (every error PyTorch raises from C++, e.g.
# "modified by an inplace operation") aborts the process: ASan's __cxa_throw
# interceptor finds no real __cxa_throw, libstdc++ being loaded after it. The
# tests that expect such an error skip themselves there (and only there).
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
torch_raises_in_cxx = pytest.mark.skipif(
    UNDER_ASAN, reason="PyTorch's C++ exceptions abort under the ASan preload")


def assert_inductor_matches_eager(module, eager, x, target):
    """``module(x, target)`` (a loss with reduction='none') compiled by
    torch.compile's inductor with fullgraph=True, summed and scaled, then
    backward: the same input gradient, bit for bit, as the eager function
    `eager` (skips where inductor has no C++ compiler)."""
    skip_without_a_cxx_compiler()
    compiled = torch.compile(lambda a, b: module(a, b).sum() * 0.5, fullgraph=True)
    xt = x.clone().requires_grad_()
    compiled(xt, target).backward()
    xe = x.clone().requires_grad_()
    (eager(xe, target, reduction="none").sum() * 0.5).backward()
    torch.testing.assert_close(xt.grad, xe.grad, rtol=0, atol=0)


def skip_without_a_cxx_compiler():
    """Skip the calling test when torch.compile's inductor backend has no C++
    compiler to generate code with. The installed-wheel run
    (tests/tools/test_wheel.py) has none by design (CC/CXX point nowhere)."""
    from torch._inductor.cpp_builder import get_cpp_compiler
    from torch._inductor.exc import InvalidCxxCompiler

    try:
        get_cpp_compiler()
    except InvalidCxxCompiler as exc:
        pytest.skip(f"torch.compile's inductor needs a C++ compiler: {exc}")


def functional(case):
    """fastloss.torch.functional's function for a registry case."""
    return getattr(FT, case.func_name)


def as_tensors(case, x, t, options, dtype=torch.float32):
    xt = torch.tensor(np.asarray(x), dtype=dtype, requires_grad=True)
    if not case.elementwise and np.asarray(t).dtype.kind in "iu":
        tt = torch.as_tensor(np.asarray(t, dtype=np.int64))
    else:
        tt = torch.as_tensor(np.asarray(t), dtype=dtype)
    kwargs = {k: torch.as_tensor(np.asarray(v), dtype=dtype)
              if k in WEIGHT_KEYS and v is not None else v for k, v in options.items()}
    return xt, tt, kwargs


def run_ours(case, x, t, reduction, grad_output=1.0, calls=None, **options):
    """(loss, d(sum(loss * grad_output))/d(input)) from fastloss.torch, as
    NumPy arrays (the loss 0-d when reduced). `calls`: a KernelCalls that
    watches the input tensor."""
    xt, tt, kwargs = as_tensors(case, x, t, options)
    if calls is not None:
        calls.watch(xt)
    loss = functional(case)(xt, tt, reduction=reduction, **kwargs)
    assert loss.dtype == torch.float32
    go = torch.as_tensor(np.asarray(grad_output), dtype=torch.float32)
    (grad,) = torch.autograd.grad((loss * go).sum(), xt)
    return loss.detach().numpy(), grad.numpy()


class KernelCalls:
    """What reached fastloss's kernels: one entry per call, with whether the
    input array the kernel got shares memory with a tensor registered by
    :meth:`watch`."""

    def __init__(self):
        self.calls = []
        self.watched = []

    def watch(self, *tensors):
        self.watched.extend(tensors)

    def record(self, x):
        views = [t.detach().numpy() for t in self.watched]
        # (an empty array shares memory with nothing: count it as a view)
        self.calls.append(x.size == 0 or any(np.shares_memory(x, v) for v in views))

    def __len__(self):
        return len(self.calls)


def count_calls(monkeypatch, owner, name):
    """Wrap ``owner.<name>`` (a kernel or binding) for the test: the returned
    list gets one entry per call that reached it."""
    calls = []
    real = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.fixture
def kernel_calls(monkeypatch):
    """Count the kernel calls of the test (see KernelCalls)."""
    calls = KernelCalls()
    ce, nll, elementwise = _kernels.cross_entropy, _kernels.nll_loss, _kernels.elementwise

    def counted_ce(x, *args, **kwargs):
        calls.record(x)
        return ce(x, *args, **kwargs)

    def counted_nll(x, *args, **kwargs):
        calls.record(x)
        return nll(x, *args, **kwargs)

    def counted_elementwise(name, x, *args, **kwargs):
        calls.record(x)
        return elementwise(name, x, *args, **kwargs)

    monkeypatch.setattr(_kernels, "cross_entropy", counted_ce)
    monkeypatch.setattr(_kernels, "nll_loss", counted_nll)
    monkeypatch.setattr(_kernels, "elementwise", counted_elementwise)
    return calls
