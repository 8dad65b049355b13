"""fastloss.torch's triplet_margin_loss / TripletMarginLoss against PyTorch:
forward and the three gradients with an upstream gradient other than 1,
every p x swap x reduction, 1-d and batched inputs, the module,
torch.compile (fullgraph, aot_eager and inductor), the custom operator's
opcheck, and the arguments that run PyTorch's own function (p other than
1 and 2, broadcasting, other dtypes)."""

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
    return count_calls(monkeypatch, fastloss._core, "triplet_margin_loss")


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    a, p, n = (torch.randn(shape, generator=g) for _ in range(3))
    if len(shape) == 2:
        p[::2] = a[::2] + 0.3 * p[::2]
        n[::4] = p[::4] + 0.1 * n[::4]
    return a, p, n


def _both(ours, theirs, inputs, reduction):
    results = []
    for fn in (ours, theirs):
        ts = [x.clone().requires_grad_() for x in inputs]
        loss = fn(*ts)
        go = torch.full_like(loss, 0.37) if reduction != "none" else \
            torch.linspace(-1.0, 2.0, loss.numel()).reshape(loss.shape)
        grads = torch.autograd.grad(loss, ts, go)
        results.append((loss.detach().numpy(), [g.numpy() for g in grads]))
    (loss, grads), (t_loss, t_grads) = results
    assert loss.shape == t_loss.shape
    assert_loss_close(loss, t_loss, rtol=RTOL)
    for g, t in zip(grads, t_grads):
        assert_grad_close(g, t, rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2.0])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("shape", [(11, 7), (5,), (2, 3, 4)], ids=str)
def test_functional_and_module_match_torch(shape, swap, p, reduction, kernel_calls):
    inputs = _data(shape)
    opts = dict(margin=0.7, p=p, eps=1e-6, swap=swap, reduction=reduction)
    _both(lambda a, b, c: FT.triplet_margin_loss(a, b, c, **opts),
          lambda a, b, c: F.triplet_margin_loss(a, b, c, **opts), inputs, reduction)
    module = ft.TripletMarginLoss(**opts)
    assert isinstance(module, torch.nn.TripletMarginLoss)
    _both(module, torch.nn.TripletMarginLoss(**opts), inputs, reduction)
    assert len(kernel_calls) == 2


def test_one_kernel_call_gives_every_gradient(kernel_calls):
    a, p, n = _data((6, 4))
    ts = [x.clone().requires_grad_() for x in (a, p, n)]
    FT.triplet_margin_loss(*ts).backward()
    assert len(kernel_calls) == 1
    assert all(t.grad is not None for t in ts)
    # only the anchor needs a gradient
    anchor = a.clone().requires_grad_()
    FT.triplet_margin_loss(anchor, p, n, reduction="sum").backward()
    want = a.clone().requires_grad_()
    F.triplet_margin_loss(want, p, n, reduction="sum").backward()
    assert_grad_close(anchor.grad.numpy(), want.grad.numpy(), rtol=RTOL)
    assert len(kernel_calls) == 2


def test_non_contiguous_inputs(kernel_calls):
    a, p, n = _data((8, 6))
    wide = torch.zeros(8, 12)
    wide[:, ::2] = a
    _both(lambda x, y, z: FT.triplet_margin_loss(x[:, ::2], y.t(), z, swap=True),
          lambda x, y, z: F.triplet_margin_loss(x[:, ::2], y.t(), z, swap=True),
          (wide, p.t().contiguous(), n), "mean")
    assert len(kernel_calls) == 1


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_under_torch_compile_fullgraph(reduction, kernel_calls):
    inputs = _data((9, 5))

    def f(a, b, c):
        return FT.triplet_margin_loss(a, b, c, margin=1.5, p=1, swap=True, reduction=reduction)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    _both(compiled, lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=1.5, p=1, swap=True,
                                                          reduction=reduction),
          inputs, reduction)
    assert kernel_calls


def test_under_torch_compile_inductor(kernel_calls):
    skip_without_a_cxx_compiler()
    torch._dynamo.reset()
    inputs = _data((9, 5), seed=2)
    compiled = torch.compile(ft.TripletMarginLoss(margin=2.0), fullgraph=True)
    _both(compiled, lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=2.0), inputs, "mean")
    assert kernel_calls


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("need_grad", [True, False])
def test_opcheck(reduction, need_grad):
    a, p, n = (x.requires_grad_(need_grad) for x in _data((6, 4)))
    args = (a, p, n, 1.0, 2, 1e-6, True, reduction, need_grad)
    op = torch.ops.fastloss.triplet_margin_loss.default
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result
    loss, *grads = op(*args)
    assert all(g.shape == (a.shape if need_grad else (0,)) for g in grads)


def test_other_arguments_run_torch(kernel_calls):
    a, p, n = _data((5, 3))
    # p outside {1, 2}, float64, broadcasting: PyTorch's function
    for args, kwargs in (((a, p, n), dict(p=3)), ((a, p, n), dict(p=0.5)),
                         ((a.double(), p.double(), n.double()), {}), ((a, p[:1], n), {})):
        got = FT.triplet_margin_loss(*args, **kwargs)
        want = F.triplet_margin_loss(*args, **kwargs)
        assert got.dtype == want.dtype
        assert torch.equal(got, want)
    assert not kernel_calls
    # PyTorch's own errors
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0.0"):
        FT.triplet_margin_loss(a, p, n, margin=0.0)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        FT.triplet_margin_loss(a[0], p, n)
    assert not kernel_calls


def test_legacy_arguments():
    a, p, n = _data((5, 3))
    with pytest.warns(UserWarning, match="deprecated"):
        got = FT.triplet_margin_loss(a, p, n, reduce=False)
    assert_loss_close(got.numpy(), F.triplet_margin_loss(a, p, n, reduction="none").numpy(),
                      rtol=RTOL)
