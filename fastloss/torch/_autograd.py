"""The eager route: one torch.autograd.Function around a fused fastloss kernel.

Forward runs the kernel once, writing the gradient into a fresh float32
buffer (or over the input, see ``overwrite``), and saves only that buffer.
Backward returns it, scaled by the upstream gradient; when the upstream
gradient is a scalar (or a scalar expanded, as ``loss.sum().backward()``
gives for reduction='none') equal to 1, it returns the buffer untouched: no
pass over the memory at all. Because the buffer is a saved tensor
(``save_for_backward``), autograd releases it once backward has run, and
``AccumulateGrad`` can then take it as a leaf's ``.grad`` without a copy.

Double backward (``create_graph=True``): the first-order gradient is
recomputed with PyTorch's own loss from the input, so that its graph reaches
the input. That is why ``ctx.keep`` holds a reference to the input (it is
not a ``save_for_backward`` tensor: the first-order backward never reads it,
so an in-place change to the input after the forward does not make it fail);
the first-order backward drops the reference, so it never outlives the
backward pass.

torch.compile does not trace this Function: under ``torch.compiler.is_compiling()``
fastloss.torch.functional calls the ``fastloss::`` custom operators
(fastloss/torch/_ops.py) instead, which run the same kernels on the same
arrays and so give bitwise the same losses and gradients. (The custom-operator
dispatch costs hundreds of microseconds per eager call on torch 2.13, more
than PyTorch's whole cross-entropy at (64, 10); this Function costs tens.)
"""

import sys
import threading

import numpy as np
import torch

__all__ = ["Refused", "numpy_view", "loss_tensor", "scale_grad", "fused_loss", "grad_buffer",
           "empty_cache"]


class Refused(Exception):
    """The fastloss kernel refused the arguments (its ValueError/TypeError):
    the caller runs PyTorch's own function instead."""


def numpy_view(t):
    """A NumPy array sharing `t`'s memory (`t`: a CPU strided tensor of a
    real dtype, so ``force=True`` neither copies nor moves it; it only
    detaches, and is the cheapest way to do that)."""
    return t.numpy(force=True)


def loss_tensor(value):
    """fastloss's loss as a tensor: a float32 0-d tensor from the Python float
    of 'mean'/'sum' (rounded to float32, PyTorch's dtype), or the per-sample
    float32 array of 'none' without a copy."""
    if type(value) is float:
        return torch.scalar_tensor(value, dtype=torch.float32)
    return torch.from_numpy(value)


# --------------------------------------------------------------------------
# Gradient buffers.
#
# A large gradient buffer costs more to allocate than the kernel takes to fill
# it: malloc maps every large block afresh and the kernel then page-faults on
# each page (about 65 ms for 256 MiB, i.e. (2048, 32768) float32, on the
# development machine, where the fused kernel itself takes ~110 ms). PyTorch's
# own cross-entropy pays that three times (log-softmax output, the zero-filled
# NLL gradient, the input gradient). So buffers of at least _POOL_MIN_BYTES are
# kept after use, up to _POOL_SIZE of them, and handed out again once no
# tensor refers to them any more (their reference count says so): a training
# loop whose loss sees the same shape every step faults its gradient buffer in
# once. empty_cache() releases them. Smaller buffers are left to fastloss
# (out=None), which also skips the overlap checks a caller's out= costs.

_POOL_MIN_BYTES = 1 << 22   # 4 MiB: below this malloc reuses freed blocks anyway
_POOL_SIZE = 2              # e.g. two losses of one step, or a step and its last batch
_pool: list = []
_pool_lock = threading.Lock()


def grad_buffer(shape, numel):
    """A float32 C-contiguous ndarray of `shape` for a gradient (from the
    pool for large ones), or True for fastloss to allocate a small one."""
    if numel * 4 < _POOL_MIN_BYTES:
        return True
    with _pool_lock:
        for i in range(len(_pool)):
            # free: referenced only by the pool list and getrefcount's argument
            if _pool[i].size == numel and sys.getrefcount(_pool[i]) == 2:
                return _pool[i].reshape(shape)
        buf = np.empty(numel, np.float32)
        if len(_pool) >= _POOL_SIZE:
            del _pool[0]
        _pool.append(buf)
    return buf.reshape(shape)


def empty_cache():
    """Release the gradient buffers fastloss.torch keeps for reuse (see the
    notes above ``grad_buffer``); buffers still in use are freed when their
    tensors are."""
    with _pool_lock:
        _pool.clear()


def _scalar(go):
    """The one value of `go` when it is 0-d or a scalar expanded to a shape
    (every stride 0), as a 0-d tensor; else None."""
    if go.dim() == 0:
        return go
    if go.numel() and not any(go.stride()):
        return go[(0,) * go.dim()]
    return None


def scale_grad(grad, go, class_axis):
    """d(loss)/d(input) from the saved gradient and the upstream gradient `go`.

    `grad` is the gradient of the reduced loss, or for reduction='none' of the
    sum of the per-sample losses; `go` is 0-d for a reduced loss, per-sample
    for 'none'. `class_axis`: the per-sample loss lacks the input's axis 1
    (cross-entropy on (N, C, ...) input), so `go` is broadcast along it.
    A scalar 1 returns `grad` itself.
    """
    s = _scalar(go)
    if s is not None:
        if s.item() == 1.0:
            return grad
        return grad * s
    if class_axis:
        go = go.unsqueeze(1)
    return grad * go


class _FusedLoss(torch.autograd.Function):
    """Loss and gradient from one kernel call; see the module notes."""

    @staticmethod
    def forward(ctx, x, spec):
        # x: the float32 C-contiguous tensor the kernel reads (the only tensor
        # argument: each tensor argument is an edge of the autograd graph,
        # which costs in backward). spec: (source, kernel, torch_loss,
        # class_axis, overwrite); source is the caller's input (x itself, or
        # what x was cast or copied from), overwrite: write the gradient over
        # x's memory.
        source, kernel, torch_loss, class_axis, overwrite = spec
        x_np = x.numpy(force=True)   # x is CPU float32: a view, never a copy
        try:
            value, grad_np = kernel(x_np, x_np if overwrite else
                                    grad_buffer(x_np.shape, x_np.size))
        except (ValueError, TypeError) as exc:
            if overwrite and x is source:
                raise   # the input may be partly overwritten: no fallback
            raise Refused(str(exc)) from exc
        if overwrite:
            grad = x
            # The input now holds the gradient: bump its version counter so
            # that any autograd node that saved it fails loudly in backward
            # instead of reading the gradient as if it were the input.
            torch.autograd.graph.increment_version(x)
        else:
            grad = torch.from_numpy(grad_np)
        ctx.save_for_backward(grad)
        ctx.class_axis = class_axis
        # For double backward only; released by the first-order backward.
        ctx.keep = (torch_loss, source, source._version, overwrite and x is source)
        return loss_tensor(value)

    @staticmethod
    def backward(ctx, go):
        if torch.is_grad_enabled():   # create_graph=True: PyTorch's graph
            return _recompute_grad(ctx, go), None
        (grad,) = ctx.saved_tensors
        ctx.keep = None
        if go.dim() == 0:   # a reduced loss: the common case, inline
            if go.item() == 1.0:
                return grad, None
            return grad * go, None
        return scale_grad(grad, go, ctx.class_axis), None


# torch.autograd.Function.apply in Python first binds default arguments and
# unwraps dead torch.func wrappers; neither applies here (fastloss.torch
# sends anything under a torch.func transform to PyTorch's own loss before it
# gets here), and skipping them saves about 7 us per call, half of apply's
# cost. This is the C method that Function.apply ends in.
_apply = torch._C._FunctionBase.__dict__["apply"].__get__(None, _FusedLoss)


def _recompute_grad(ctx, go):
    """The input gradient with a graph (double backward), from PyTorch's loss."""
    if ctx.keep is None:
        raise RuntimeError(
            "fastloss.torch: double backward (create_graph=True) after a first-order "
            "backward of the same graph: the input reference was released by it; use "
            "create_graph=True in the first backward")
    torch_loss, source, version, user_overwrote = ctx.keep
    if user_overwrote:
        raise RuntimeError(
            "fastloss.torch: double backward (create_graph=True) needs the input, which "
            "overwrite_input=True replaced with the gradient; call without overwrite_input")
    if source._version != version:
        raise RuntimeError(
            "fastloss.torch: one of the variables needed for gradient computation (the "
            f"loss's input) has been modified by an inplace operation: it is at version "
            f"{source._version}; expected version {version} instead")
    with torch.enable_grad():
        loss = torch_loss(source)
        (grad,) = torch.autograd.grad(loss, source, go, create_graph=True)
    return grad


def fused_loss(input, x, kernel, torch_loss, class_axis, overwrite):
    """The loss tensor of `kernel` on `x`, with autograd when it is needed.

    `input`: the caller's tensor; `x`: it as a float32 tensor (`input`
    itself, or a differentiable cast of it made by the caller). `kernel(x_np,
    grad)` returns fastloss's ``(loss, grad array)``, `grad` as in
    fastloss/torch/_kernels.py (None, True or an array); `torch_loss(t)` is
    PyTorch's loss of `t` (the fallback when the kernel refuses the
    arguments, and the double backward)
    """
    if not x.is_contiguous():
        x = x.contiguous()
    # A copy made here (a cast, or contiguous()) is ours: nothing else holds
    # it, and the nodes that made it do not save it, so the gradient may be
    # written over it, which saves allocating (and page-faulting) a buffer.
    own = x is not input
    if not (x.requires_grad and torch.is_grad_enabled()):
        try:
            return loss_tensor(kernel(x.numpy(force=True), None)[0])
        except (ValueError, TypeError):
            return torch_loss(input)
    if overwrite and x is input and input.is_leaf:
        raise RuntimeError("fastloss.torch: overwrite_input=True on a leaf tensor that "
                           "requires grad (it would overwrite it with its own gradient); "
                           "it is meant for logits computed by the model")
    try:
        return _apply(x, (input, kernel, torch_loss, class_axis, overwrite or own))
    except Refused:
        return torch_loss(input)
