"""fastloss.torch's multilabel_soft_margin_loss and MultiLabelSoftMarginLoss
against PyTorch: forward and backward (upstream gradient other than 1), every
reduction and weight shape, the routes to PyTorch's own function, the custom
operator (opcheck) and torch.compile(fullgraph=True)."""

import numpy as np
import pytest
from _support.registry import REDUCTIONS, assert_grad_close, assert_loss_close

torch = pytest.importorskip("torch")

from _support.torch_util import assert_inductor_matches_eager, count_calls

import fastloss.torch as ft
import fastloss.torch.functional as FT
from fastloss.torch import _rows

F = torch.nn.functional


@pytest.fixture
def kernel_calls(monkeypatch):
    """How many calls reached fastloss's kernel."""
    return count_calls(monkeypatch, _rows, "_multilabel_kernel")


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 3.0 * torch.randn(shape, generator=g)
    y = (torch.rand(shape, generator=g) < 0.4).float()
    return x, y


def _weights(shape):
    g = torch.Generator().manual_seed(7)
    return [None, torch.rand(shape[-1], generator=g) + 0.2, torch.rand(shape, generator=g)]


def _run(fn, x, y, reduction, **kwargs):
    xt = x.clone().requires_grad_()
    loss = fn(xt, y, reduction=reduction, **kwargs)
    go = torch.full_like(loss, 0.37) if loss.dim() == 0 else \
        torch.linspace(-2.0, 2.0, loss.numel()).reshape(loss.shape)
    (loss * go).sum().backward()
    return loss.detach(), xt.grad


def _same_as_torch(ours, x, y, reduction, **kwargs):
    loss, grad = _run(ours, x, y, reduction, **kwargs)
    t_loss, t_grad = _run(F.multilabel_soft_margin_loss, x.double(), y.double(), reduction,
                          **{k: (v.double() if isinstance(v, torch.Tensor) else v)
                             for k, v in kwargs.items()})
    assert loss.dtype == torch.float32 and loss.shape == t_loss.shape
    assert_loss_close(loss.numpy(), t_loss.numpy())
    assert_grad_close(grad.numpy(), t_grad.numpy())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 1), (9, 7), (64, 10), (3, 1100), (13,)], ids=str)
def test_functional_matches_torch(shape, reduction, kernel_calls):
    x, y = _data(shape)
    for weight in _weights(shape):
        _same_as_torch(FT.multilabel_soft_margin_loss, x, y, reduction, weight=weight)
    assert len(kernel_calls) == 3


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_module_matches_torch(reduction, kernel_calls):
    x, y = _data((8, 5))
    w = torch.rand(5) + 0.5
    ours = ft.MultiLabelSoftMarginLoss(weight=w, reduction=reduction)
    theirs = torch.nn.MultiLabelSoftMarginLoss(weight=w.double(), reduction=reduction)
    assert isinstance(ours, torch.nn.MultiLabelSoftMarginLoss)
    assert torch.equal(ours.state_dict()["weight"], w)
    loss, grad = _run(lambda a, b, reduction: ours(a, b), x, y, reduction)
    t_loss, t_grad = _run(lambda a, b, reduction: theirs(a, b), x.double(), y.double(),
                          reduction)
    assert_loss_close(loss.numpy(), t_loss.numpy())
    assert_grad_close(grad.numpy(), t_grad.numpy())
    assert len(kernel_calls) == 1
    assert "overwrite_input=True" in repr(ft.MultiLabelSoftMarginLoss(overwrite_input=True))


@pytest.mark.filterwarnings("ignore:size_average and reduce args:UserWarning")
def test_legacy_arguments(kernel_calls):
    x, y = _data((4, 3))
    for size_average, reduce in [(False, None), (None, False)]:
        ours = FT.multilabel_soft_margin_loss(x, y, size_average=size_average, reduce=reduce)
        theirs = F.multilabel_soft_margin_loss(x, y, size_average=size_average, reduce=reduce)
        assert ours.shape == theirs.shape
        assert_loss_close(ours.numpy(), theirs.double().numpy())


def test_what_runs_pytorchs_function(kernel_calls):
    x, y = _data((4, 3))
    # float64, a target that requires grad (PyTorch differentiates it), a
    # target of another dtype or a broadcast one, a weight that requires grad
    # or grows the loss, a non-finite weight (the kernel refuses it)
    cases = [(x.double(), y.double(), {}), (x, y.clone().requires_grad_(), {}),
             (x, y.double(), {}), (x, y[0], {}),
             (x, y, {"weight": torch.ones(3, requires_grad=True)}),
             (x, y, {"weight": torch.ones(2, 4, 3)}),
             (x, y, {"weight": torch.tensor([1.0, float("inf"), 1.0])})]
    for a, b, kwargs in cases:
        ours = FT.multilabel_soft_margin_loss(a, b, reduction="none", **kwargs)
        theirs = F.multilabel_soft_margin_loss(a, b, reduction="none", **kwargs)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, equal_nan=True)
    assert len(kernel_calls) == 1   # the non-finite weight reached the kernel, which refused
    # 3-D input: reduced in the kernel, 'none' (per-row broadcast) by PyTorch in eager mode
    x3, y3 = _data((2, 3, 5))
    _same_as_torch(FT.multilabel_soft_margin_loss, x3, y3, "mean")
    _same_as_torch(FT.multilabel_soft_margin_loss, x3, y3, "none")
    assert len(kernel_calls) == 2


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("need_grad", [True, False])
def test_opcheck(reduction, need_grad):
    x, y = _data((5, 4))
    for w in (None, torch.rand(4)):
        args = (x.clone().requires_grad_(need_grad), y, w, reduction, need_grad)
        result = torch.library.opcheck(torch.ops.fastloss.multilabel_soft_margin_loss.default,
                                       args)
        assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_compiled_aot_eager(reduction, kernel_calls):
    x, y = _data((6, 5, 4))   # 3-D: the custom operator's per-row broadcast
    w = torch.rand(4) + 0.5

    def f(inp, tgt):
        return FT.multilabel_soft_margin_loss(inp, tgt, weight=w, reduction=reduction)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    loss, grad = _run(lambda a, b, reduction: compiled(a, b), x, y, reduction)
    t_loss, t_grad = _run(F.multilabel_soft_margin_loss, x.double(), y.double(), reduction,
                          weight=w.double())
    assert_loss_close(loss.numpy(), t_loss.numpy())
    assert_grad_close(grad.numpy(), t_grad.numpy())
    assert kernel_calls


def test_compiled_inductor(kernel_calls):
    x, y = _data((16, 9))
    assert_inductor_matches_eager(ft.MultiLabelSoftMarginLoss(reduction="none"),
                                  FT.multilabel_soft_margin_loss, x, y)
    assert kernel_calls
