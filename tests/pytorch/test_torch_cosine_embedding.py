"""fastloss.torch's cosine_embedding_loss / CosineEmbeddingLoss against
PyTorch: forward and both gradients with an upstream gradient other than 1,
every margin x reduction, 1-d inputs, the module, torch.compile
(fullgraph, aot_eager and inductor), the custom operator's opcheck, and the
arguments that run PyTorch's own function."""

import numpy as np
import pytest
from _support.registry import REDUCTIONS, assert_grad_close, assert_loss_close

torch = pytest.importorskip("torch")

from _support.torch_util import count_calls, skip_without_a_cxx_compiler

import fastloss
import fastloss.torch as ft
import fastloss.torch.functional as FT

RTOL = 2e-5
F = torch.nn.functional


@pytest.fixture
def kernel_calls(monkeypatch):
    """The fastloss kernel calls of the test (the binding, wrapped)."""
    return count_calls(monkeypatch, fastloss._core, "cosine_embedding_loss")


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(shape, generator=g)
    x2 = torch.randn(shape, generator=g)
    if len(shape) == 2:
        x2[::3] = x1[::3] + 0.1 * x2[::3]
        t = torch.tensor([1.0, -1.0])[torch.randint(0, 2, shape[:1], generator=g)]
    else:
        t = torch.tensor(-1.0)
    return x1, x2, t


def _both(ours, theirs, x1, x2, reduction):
    results = []
    for fn in (ours, theirs):
        a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
        loss = fn(a, b)
        go = torch.full_like(loss, 0.37) if reduction != "none" else \
            torch.linspace(-1.0, 2.0, loss.numel()).reshape(loss.shape)
        ga, gb = torch.autograd.grad(loss, (a, b), go)
        results.append((loss.detach().numpy(), ga.numpy(), gb.numpy()))
    (loss, ga, gb), (t_loss, t_ga, t_gb) = results
    assert loss.shape == t_loss.shape
    assert_loss_close(loss, t_loss, rtol=RTOL)
    assert_grad_close(ga, t_ga, rtol=RTOL)
    assert_grad_close(gb, t_gb, rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, -0.3, 0.4])
@pytest.mark.parametrize("shape", [(11, 7), (5,)], ids=str)
def test_functional_and_module_match_torch(shape, margin, reduction, kernel_calls):
    x1, x2, t = _data(shape)
    _both(lambda a, b: FT.cosine_embedding_loss(a, b, t, margin=margin, reduction=reduction),
          lambda a, b: F.cosine_embedding_loss(a, b, t, margin=margin, reduction=reduction),
          x1, x2, reduction)
    module = ft.CosineEmbeddingLoss(margin=margin, reduction=reduction)
    assert isinstance(module, torch.nn.CosineEmbeddingLoss)
    _both(lambda a, b: module(a, b, t),
          lambda a, b: torch.nn.CosineEmbeddingLoss(margin, reduction=reduction)(a, b, t),
          x1, x2, reduction)
    assert len(kernel_calls) == 2


def test_one_kernel_call_gives_both_gradients(kernel_calls):
    x1, x2, t = _data((6, 4))
    a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    loss = FT.cosine_embedding_loss(a, b, t)
    loss.backward()
    assert len(kernel_calls) == 1
    assert a.grad is not None and b.grad is not None
    # one input that needs no gradient
    loss = FT.cosine_embedding_loss(x1, b, t)
    loss.backward()
    assert len(kernel_calls) == 2


def test_non_contiguous_and_integer_targets(kernel_calls):
    x1, x2, t = _data((8, 6))
    wide = torch.zeros(8, 12)
    wide[:, ::2] = x1
    a, b = wide.clone().requires_grad_(), x2.t().contiguous().t().requires_grad_()
    loss = FT.cosine_embedding_loss(a[:, ::2], b, t.long(), reduction="sum")
    loss.backward()
    a2, b2 = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    want = F.cosine_embedding_loss(a2, b2, t, reduction="sum")
    want.backward()
    assert_loss_close(loss.item(), want.item(), rtol=RTOL)
    assert_grad_close(a.grad[:, ::2].numpy(), a2.grad.numpy(), rtol=RTOL)
    assert not a.grad[:, 1::2].any()
    assert_grad_close(b.grad.numpy(), b2.grad.numpy(), rtol=RTOL)
    assert len(kernel_calls) == 1


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_under_torch_compile_fullgraph(reduction, kernel_calls):
    x1, x2, t = _data((9, 5))

    def f(a, b):
        return FT.cosine_embedding_loss(a, b, t, margin=0.1, reduction=reduction)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    _both(compiled, lambda a, b: F.cosine_embedding_loss(a, b, t, margin=0.1,
                                                         reduction=reduction),
          x1, x2, reduction)
    assert kernel_calls


def test_under_torch_compile_inductor(kernel_calls):
    skip_without_a_cxx_compiler()
    torch._dynamo.reset()
    x1, x2, t = _data((9, 5), seed=2)
    module = ft.CosineEmbeddingLoss(margin=-0.2)
    compiled = torch.compile(module, fullgraph=True)
    _both(lambda a, b: compiled(a, b, t), lambda a, b: F.cosine_embedding_loss(a, b, t, margin=-0.2), x1, x2, "mean")
    assert kernel_calls


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("need_grad", [True, False])
def test_opcheck(reduction, need_grad):
    x1, x2, t = _data((6, 4))
    args = (x1.requires_grad_(need_grad), x2.requires_grad_(need_grad), t, 0.2, reduction,
            need_grad)
    op = torch.ops.fastloss.cosine_embedding_loss.default
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result
    loss, g1, g2 = op(*args)
    assert g1.shape == (x1.shape if need_grad else (0,)) and g2.shape == g1.shape


def test_other_arguments_run_torch(kernel_calls):
    x1, x2, t = _data((5, 3))
    # float64, broadcast inputs, a target that requires grad: PyTorch's function
    for args in ((x1.double(), x2.double(), t), (x1, x2[:1], t),
                 (x1, x2, t.clone().requires_grad_())):
        got = FT.cosine_embedding_loss(*args)
        want = F.cosine_embedding_loss(*args)
        assert got.dtype == want.dtype
        assert torch.equal(got, want)
    assert not kernel_calls
    # PyTorch's own errors
    with pytest.raises(RuntimeError, match="1D target tensor expects 2D input tensors"):
        FT.cosine_embedding_loss(x1[0], x2[0], t[:1])
    with pytest.raises(RuntimeError, match="multi-target not supported"):
        FT.cosine_embedding_loss(x1, x2, t[None])
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        FT.cosine_embedding_loss(x1, x2, t, reduction="avg")
    assert not kernel_calls


def test_legacy_arguments():
    x1, x2, t = _data((5, 3))
    with pytest.warns(UserWarning, match="deprecated"):
        got = FT.cosine_embedding_loss(x1, x2, t, size_average=False)
    assert_loss_close(got.item(), F.cosine_embedding_loss(x1, x2, t, reduction="sum").item(),
                      rtol=RTOL)
    assert np.isfinite(got.item())


@pytest.mark.parametrize("which", ["cosine", "triplet"])
def test_double_backward_is_torchs(which):
    """create_graph=True differentiates PyTorch's loss of the same inputs: the
    second-order gradient is torch's (the embedding losses, both)."""
    g = torch.Generator().manual_seed(3)
    a, b, c = (torch.randn(5, 4, generator=g, dtype=torch.float32) for _ in range(3))
    t = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])

    def run(fn):
        x, y, z = (u.clone().requires_grad_() for u in (a, b, c))
        if which == "cosine":
            loss = fn.cosine_embedding_loss(x, y, t, margin=0.1)
            wrt = (x, y)
        else:
            loss = fn.triplet_margin_loss(x, y, z, margin=2.0)
            wrt = (x, y, z)
        first = torch.autograd.grad(loss, wrt, create_graph=True)
        sum(f.square().sum() for f in first).backward()
        return [f.detach() for f in first], [w.grad for w in wrt]

    ours_first, ours_second = run(FT)
    theirs_first, theirs_second = run(F)
    for o, e in zip(ours_first + ours_second, theirs_first + theirs_second, strict=True):
        torch.testing.assert_close(o, e, rtol=1e-5, atol=1e-6)
