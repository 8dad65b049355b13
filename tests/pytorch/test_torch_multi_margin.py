"""fastloss.torch's multi_margin_loss and MultiMarginLoss against PyTorch:
forward and backward (upstream gradient other than 1), every p, margin,
weight and reduction, one-row input, the routes to PyTorch's own function,
the custom operator (opcheck) and torch.compile(fullgraph=True)."""

import pytest
from _support.registry import REDUCTIONS, assert_grad_close, assert_loss_close

torch = pytest.importorskip("torch")

from _support.torch_util import (
    assert_inductor_matches_eager,
    count_calls,
    torch_raises_in_cxx,
)

import fastloss.torch as ft
import fastloss.torch.functional as FT
from fastloss.torch import _rows

F = torch.nn.functional


@pytest.fixture
def kernel_calls(monkeypatch):
    """How many calls reached fastloss's kernel."""
    return count_calls(monkeypatch, _rows, "_multi_margin_kernel")


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(4.0 * torch.randn(shape, generator=g)) / 2.0   # ties occur
    t = torch.randint(0, shape[-1], shape[:-1], generator=g)
    return x, t


def _run(fn, x, t, reduction, **kwargs):
    xt = x.clone().requires_grad_()
    loss = fn(xt, t, reduction=reduction, **kwargs)
    go = torch.full_like(loss, 0.37) if loss.dim() == 0 else \
        torch.linspace(-2.0, 2.0, loss.numel()).reshape(loss.shape)
    (loss * go).sum().backward()
    return loss.detach(), xt.grad


def _same_as_torch(ours, x, t, reduction, **kwargs):
    loss, grad = _run(ours, x, t, reduction, **kwargs)
    t_loss, t_grad = _run(F.multi_margin_loss, x.double(), t, reduction,
                          **{k: (v.double() if isinstance(v, torch.Tensor) else v)
                             for k, v in kwargs.items()})
    assert loss.dtype == torch.float32 and loss.shape == t_loss.shape
    assert_loss_close(loss.numpy(), t_loss.numpy())
    assert_grad_close(grad.numpy(), t_grad.numpy())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 1), (9, 7), (64, 10), (3, 1100)], ids=str)
def test_functional_matches_torch(shape, reduction, kernel_calls):
    x, t = _data(shape)
    w = torch.rand(shape[-1]) + 0.2
    for options in ({}, {"p": 2}, {"margin": 0.3, "weight": w}, {"p": 2, "margin": 2.0,
                                                                 "weight": w}):
        _same_as_torch(FT.multi_margin_loss, x, t, reduction, **options)
    assert len(kernel_calls) == 4


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_one_row(reduction, kernel_calls):
    x, _ = _data((5,))
    for t in (torch.tensor(3), torch.tensor([3])):
        _same_as_torch(FT.multi_margin_loss, x, t, reduction, p=2)
    assert len(kernel_calls) == 2


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_module_matches_torch(reduction, kernel_calls):
    x, t = _data((8, 5))
    w = torch.rand(5) + 0.5
    ours = ft.MultiMarginLoss(p=2, margin=0.5, weight=w, reduction=reduction)
    theirs = torch.nn.MultiMarginLoss(p=2, margin=0.5, weight=w.double(), reduction=reduction)
    assert isinstance(ours, torch.nn.MultiMarginLoss)
    assert torch.equal(ours.state_dict()["weight"], w)
    loss, grad = _run(lambda a, b, reduction: ours(a, b), x, t, reduction)
    t_loss, t_grad = _run(lambda a, b, reduction: theirs(a, b), x.double(), t, reduction)
    assert_loss_close(loss.numpy(), t_loss.numpy())
    assert_grad_close(grad.numpy(), t_grad.numpy())
    assert len(kernel_calls) == 1
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        ft.MultiMarginLoss(p=3)


def test_what_runs_pytorchs_function(kernel_calls):
    x, t = _data((4, 3))
    # float64, 0-d input; p = 3 and a 2-D weight (PyTorch raises)
    for a, b, kwargs in [(x.double(), t, {}), (x[0, 0], torch.tensor(0), {})]:
        ours = FT.multi_margin_loss(a, b, reduction="none", **kwargs)
        theirs = F.multi_margin_loss(a, b, reduction="none", **kwargs)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs)
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        FT.multi_margin_loss(x, t, p=3)
    with pytest.raises(ValueError, match="weight must be one-dimensional"):
        FT.multi_margin_loss(x, t, weight=torch.ones(1, 3))
    assert kernel_calls == []


@torch_raises_in_cxx
def test_torchs_errors(kernel_calls):
    x, t = _data((4, 3))
    with pytest.raises(RuntimeError, match="expected scalar type Long"):
        FT.multi_margin_loss(x, t.int())
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument"):
        FT.multi_margin_loss(x, t, weight=torch.ones(3, requires_grad=True))
    # out of range: the kernel refuses the target, PyTorch raises its error
    with pytest.raises(RuntimeError, match="target out of range"):
        FT.multi_margin_loss(x.requires_grad_(), torch.tensor([0, 1, 3, 2]))
    assert len(kernel_calls) == 1


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("need_grad", [True, False])
def test_opcheck(reduction, need_grad):
    x, t = _data((5, 4))
    for p, w in ((1, None), (2, torch.rand(4))):
        args = (x.clone().requires_grad_(need_grad), t, p, 0.75, w, reduction, need_grad)
        result = torch.library.opcheck(torch.ops.fastloss.multi_margin_loss.default, args)
        assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_compiled_aot_eager(reduction, kernel_calls):
    x, t = _data((6, 5))
    w = torch.rand(5) + 0.5

    def f(inp, tgt):
        return FT.multi_margin_loss(inp, tgt, p=2, margin=0.5, weight=w, reduction=reduction)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    loss, grad = _run(lambda a, b, reduction: compiled(a, b), x, t, reduction)
    t_loss, t_grad = _run(F.multi_margin_loss, x.double(), t, reduction, p=2, margin=0.5,
                          weight=w.double())
    assert_loss_close(loss.numpy(), t_loss.numpy())
    assert_grad_close(grad.numpy(), t_grad.numpy())
    assert kernel_calls


def test_compiled_inductor(kernel_calls):
    x, t = _data((16, 9))
    assert_inductor_matches_eager(ft.MultiMarginLoss(reduction="none"), FT.multi_margin_loss, x, t)
    assert kernel_calls
