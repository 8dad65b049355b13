"""fastloss.torch's nll_loss / NLLLoss beyond the registry's (N, C) shapes:
K-dimensional and unbatched input, uint8 targets, weights with ignore_index,
in eager mode and under torch.compile, and the targets PyTorch refuses."""

import numpy as np
import pytest
from _support.registry import REDUCTIONS, assert_grad_close, assert_loss_close

torch = pytest.importorskip("torch")

from _support.torch_util import kernel_calls  # a fixture

import fastloss.torch as ft
import fastloss.torch.functional as FT

RTOL = 2e-5


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).log_softmax(0 if len(shape) == 1 else 1)
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = torch.randint(0, c, tshape, generator=g)
    if t.dim():
        t.view(-1)[::5] = 1
    return x, t, torch.linspace(0.5, 2.0, c)


def _both(fn_ours, fn_theirs, x, reduction):
    results = []
    for fn in (fn_ours, fn_theirs):
        xt = x.clone().requires_grad_()
        loss = fn(xt)
        go = torch.full_like(loss, 0.37) if reduction != "none" else \
            torch.linspace(-1.0, 2.0, loss.numel()).reshape(loss.shape)
        loss.backward(go)
        results.append((loss.detach().numpy(), xt.grad.numpy()))
    (loss, grad), (t_loss, t_grad) = results
    assert loss.shape == t_loss.shape
    assert_loss_close(loss, t_loss, rtol=RTOL)
    assert_grad_close(grad, t_grad, rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6,), (3, 4, 5), (2, 5, 3, 4), (2, 3, 8000)],
                         ids=lambda s: "x".join(map(str, s)))
def test_kdim_and_unbatched_match_torch(shape, reduction, kernel_calls):
    x, t, w = _data(shape)
    opts = dict(weight=w, ignore_index=1, reduction=reduction)
    _both(lambda inp: FT.nll_loss(inp, t, **opts),
          lambda inp: torch.nn.functional.nll_loss(inp, t, **opts), x, reduction)
    _both(lambda inp: ft.NLLLoss(**opts)(inp, t),
          lambda inp: torch.nn.NLLLoss(**opts)(inp, t), x, reduction)
    assert len(kernel_calls) == 2


def test_uint8_target_runs_the_kernel(kernel_calls):
    x, t, _ = _data((7, 3))
    _both(lambda inp: FT.nll_loss(inp, t.to(torch.uint8)),
          lambda inp: torch.nn.functional.nll_loss(inp, t.to(torch.uint8)), x, "mean")
    assert len(kernel_calls) == 1


def test_int32_target_raises_torchs_error(kernel_calls):
    x, t, _ = _data((7, 3))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        FT.nll_loss(x, t.to(torch.int32))
    assert len(kernel_calls) == 0


def test_out_of_range_target_raises_torchs_error(kernel_calls):
    x, t, _ = _data((7, 3))
    t[2] = 3
    with pytest.raises(IndexError, match="out of bounds"):
        FT.nll_loss(x, t)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_kdim_under_torch_compile(reduction, kernel_calls):
    torch._dynamo.reset()
    x, t, w = _data((2, 5, 3, 4))

    def f(inp):
        return FT.nll_loss(inp, t, weight=w, ignore_index=1, reduction=reduction)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    _both(compiled, f, x, reduction)
    assert len(kernel_calls) == 2
