"""The chunked linear cross-entropy with torch's GEMMs, and its eager autograd.

The loop is fastloss/_linear_ce.py's (see its notes), with torch's matmuls
(its BLAS and its intra-op threads) in place of NumPy's, and its plan
(:class:`fastloss._linear_ce.Plan`: validation, the global mean's
denominator, the chunk size, the cross-entropy kernel call on a chunk)
shared, on NumPy views of the tensors. Two things torch's matmuls allow that
NumPy's do not: the bias is added by the logits GEMM itself
(``torch.addmm(b, x, W.T, out=buf)``), and grad_weight is accumulated by a
beta=1 GEMM (``gW.addmm_(g.T, x)``) with no (V, H) scratch.

Gradients: for 'mean' and 'sum' the forward computes all three (d loss /
d input, weight, bias) and autograd keeps only them; backward returns them,
untouched when the upstream gradient is 1, else multiplied by it. For 'none'
the forward computes the losses only and backward runs the loop again with
the per-token upstream gradient (grad_weight is a sum over tokens, so it
cannot be rescaled per token afterwards): one more logits GEMM per chunk.
"""

import torch

from .. import _linear_ce
from .. import _validate as v
from ._autograd import numpy_view

__all__ = ["run", "LinearCrossEntropyFunction"]


#: The torch path's default logits chunk: half the NumPy path's. torch accumulates
#: grad_weight with a beta=1 GEMM (addmm_), so more, smaller chunks cost little,
#: where NumPy pays a (V, H) add per chunk. Measured on the 2-core Xeon, 2
#: threads, quiet, forward + backward against torch's reference path: 2048 x 512
#: x 32000 1.27x (262 rows) / 1.18x (131 rows); 4096 x 128 x 32000 2.36x / 2.31x;
#: peak extra RSS at 8192 x 256 x 32000: 92 MiB (32 MiB chunks) / 56 MiB
#: (16 MiB), torch's chunked path 79-87 MiB.
CHUNK_BYTES = 16 << 20


def run(x, W, b, t, w, ignore_index, reduction, label_smoothing, chunk_size, need_grad,
        grad_output=1.0):
    """(loss tensor or None, grad_input, grad_weight, grad_bias or None) for
    float32 CPU tensors x (N, H) or (H,), W (V, H), b (V,) or None, int64
    t, float32 w (V,) or None. Raises fastloss's ValueError/TypeError for
    arguments it refuses. `grad_output`: a float, or an (N,) float32 tensor
    for 'none' (then the loss is not computed)."""
    code = v.REDUCTIONS[reduction]
    x, W = x.contiguous(), W.contiguous()
    b = None if b is None else b.contiguous()
    go = grad_output if type(grad_output) is float else numpy_view(grad_output.contiguous())
    loss = type(grad_output) is float
    p = _linear_ce.Plan(numpy_view(x), numpy_view(W), numpy_view(t.contiguous()),
                        None if b is None else numpy_view(b),
                        None if w is None else numpy_view(w.contiguous()), ignore_index, code,
                        label_smoothing, chunk_size, loss, need_grad, go,
                        chunk_bytes=CHUNK_BYTES)
    n, h, c = p.n, p.h, p.c
    x2 = x.reshape(n, h)
    Wt = W.t()
    buf = torch.empty((p.rows, c), dtype=torch.float32)
    buf_np = numpy_view(buf)
    gx = gW = gb = None
    if need_grad:
        gx = torch.empty((n, h), dtype=torch.float32)
        gW = torch.zeros((c, h), dtype=torch.float32) if n == 0 else \
            torch.empty((c, h), dtype=torch.float32)
        gb = None if b is None else torch.zeros(c, dtype=torch.float32)
    total = 0.0
    for start in range(0, n, p.rows):
        stop = min(start + p.rows, n)
        xc, logits = x2[start:stop], buf[:stop - start]
        if b is None:                                               # 1. logits (+ bias)
            torch.mm(xc, Wt, out=logits)
        else:
            torch.addmm(b, xc, Wt, out=logits)
        reduced = p.chunk_loss_grad(buf_np[:stop - start], start, stop)   # 2. in place
        if reduced is not None:
            total += reduced
        if not need_grad:
            continue
        torch.mm(logits, W, out=gx[start:stop])                    # 3. gradients
        if start == 0:
            torch.mm(logits.t(), xc, out=gW)
        else:
            gW.addmm_(logits.t(), xc)
        if gb is not None:
            gb.add_(logits.sum(0))
    del buf, buf_np
    value = None
    if loss:
        value = p.loss(total)
        value = torch.scalar_tensor(value, dtype=torch.float32) if type(value) is float \
            else torch.from_numpy(value)
    if gx is not None and x.dim() == 1:
        gx = gx.reshape(h)
    return value, gx, gW, gb


def _uniform(go):
    """The one value of `go` (0-d, or a scalar expanded: every stride 0) as a
    Python float, or None."""
    if go.dim() == 0:
        return go.item()
    if go.numel() and not any(go.stride()):
        return go[(0,) * go.dim()].item()
    return None


class LinearCrossEntropyFunction(torch.autograd.Function):
    """Eager autograd around :func:`run` (under torch.compile the
    ``fastloss::linear_cross_entropy`` operator runs it instead).

    Double backward (``create_graph=True``) recomputes the first-order
    gradients with PyTorch's reference path (``torch_loss``), whose graph
    reaches the inputs."""

    @staticmethod
    def forward(ctx, x, W, b, spec):
        t, w, ignore_index, reduction, eps, chunk_size, torch_loss = spec
        need = ctx.needs_input_grad
        reduced = reduction != "none"
        value, gx, gW, gb = run(x, W, b, t, w, ignore_index, reduction, eps, chunk_size,
                                reduced and (need[0] or need[1] or need[2]))
        ctx.reduced = reduced
        ctx.spec = spec
        ctx.has_bias = b is not None
        # For double backward only (not saved tensors: the first-order
        # backward never reads them); released by the first-order backward.
        ctx.keep = (x, W, b, x._version, W._version, None if b is None else b._version)
        if reduced:
            ctx.save_for_backward(gx, gW, gb)
        else:
            ctx.save_for_backward(x, W, b)
        return value

    @staticmethod
    def backward(ctx, go):
        t, w, ignore_index, reduction, eps, chunk_size, torch_loss = ctx.spec
        if torch.is_grad_enabled():   # create_graph=True: PyTorch's graph
            return (*_recompute(ctx, go, torch_loss), None)
        ctx.keep = None
        if ctx.reduced:
            gx, gW, gb = ctx.saved_tensors
            s = go.item()
            if s != 1.0:
                gx, gW = gx * s, gW * s
                gb = None if gb is None else gb * s
        else:
            x, W, b = ctx.saved_tensors
            s = _uniform(go)
            go_arg = s if s is not None else go.reshape(-1).float()
            _, gx, gW, gb = run(x, W, b, t, w, ignore_index, reduction, eps, chunk_size, True,
                                go_arg)
        return gx, gW, gb if ctx.has_bias else None, None


def _recompute(ctx, go, torch_loss):
    """The three gradients with a graph (double backward), from PyTorch's loss."""
    if ctx.keep is None:
        raise RuntimeError(
            "fastloss.torch: double backward (create_graph=True) after a first-order "
            "backward of the same graph: the input references were released by it; use "
            "create_graph=True in the first backward")
    x, W, b, *versions = ctx.keep
    for tensor, version in zip((x, W, b), versions):
        if tensor is not None and tensor._version != version:
            raise RuntimeError(
                "fastloss.torch: one of the variables needed for gradient computation has "
                f"been modified by an inplace operation: it is at version {tensor._version}; "
                f"expected version {version} instead")
    wanted = [a for a, need in zip((x, W, b), ctx.needs_input_grad[:3]) if need]
    with torch.enable_grad():
        loss = torch_loss(x, W, b)
        grads = iter(torch.autograd.grad(loss, wanted, go, create_graph=True))
    return tuple(next(grads) if need else None for need in ctx.needs_input_grad[:3])
