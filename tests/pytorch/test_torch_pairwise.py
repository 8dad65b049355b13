"""fastloss.torch's pairwise losses (margin_ranking_loss, MarginRankingLoss):
PyTorch's results, forward and every gradient with an upstream gradient other
than 1, eager and under torch.compile(fullgraph=True), the custom operators
(opcheck), and the fallbacks to PyTorch's function."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _support.torch_util import skip_without_a_cxx_compiler

import fastloss
import fastloss.torch as ft
import fastloss.torch.functional as FT
from fastloss.torch import _pairwise

F = torch.nn.functional
REDUCTIONS = ("mean", "sum", "none")
RTOL, ATOL = 2e-5, 1e-6

MR_SHAPES = [((7,), (7,), (7,)), ((64, 10), (64, 10), (64, 10)), ((5, 1), (5, 4), (1, 4)),
             ((), (), ()), ((0, 3), (0, 3), (0, 3))]


def _mr_data(shapes, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(shapes[0], generator=g).requires_grad_(requires_grad)
    b = torch.randn(shapes[1], generator=g).requires_grad_(requires_grad)
    y = torch.where(torch.rand(shapes[2], generator=g) < 0.5, -1.0, 1.0)
    return a, b, y


def _upstream(loss, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(loss.shape, generator=g) * 2 - 0.5


def _close(got, want):
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)


def _check_against_torch(ours, theirs, inputs, args):
    """Forward and every gradient of `inputs` with an upstream gradient != 1."""
    loss = ours(*args)
    expected = theirs(*args)
    _close(loss, expected)
    go = _upstream(expected)
    got = torch.autograd.grad(loss, inputs, go, allow_unused=True)
    want = torch.autograd.grad(expected, inputs, go, allow_unused=True)
    for g, w in zip(got, want):
        _close(g, w)
    return loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.7])
@pytest.mark.parametrize("shapes", MR_SHAPES, ids=str)
def test_margin_ranking_functional_matches_torch(shapes, margin, reduction):
    a, b, y = _mr_data(shapes)

    def ours(a, b, y):
        return FT.margin_ranking_loss(a, b, y, margin=margin, reduction=reduction)

    def theirs(a, b, y):
        return F.margin_ranking_loss(a, b, y, margin=margin, reduction=reduction)

    loss = _check_against_torch(ours, theirs, (a, b), (a, b, y))
    assert loss.grad_fn is not None and "_MarginRankingFn" in type(loss.grad_fn).__name__


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_ranking_module_matches_torch_module(reduction):
    a, b, y = _mr_data(MR_SHAPES[1], 2)
    ours = ft.MarginRankingLoss(margin=0.3, reduction=reduction)
    theirs = torch.nn.MarginRankingLoss(margin=0.3, reduction=reduction)
    assert isinstance(ours, torch.nn.MarginRankingLoss)
    assert repr(ours) == repr(theirs)
    _check_against_torch(ours, theirs, (a, b), (a, b, y))


def test_margin_ranking_legacy_arguments():
    a, b, y = _mr_data(MR_SHAPES[1], 3)
    with pytest.warns(UserWarning, match="deprecated"):
        got = FT.margin_ranking_loss(a, b, y, size_average=False)
    _close(got, F.margin_ranking_loss(a, b, y, reduction="sum"))


@pytest.mark.parametrize("case", ["float64", "target_requires_grad", "ndim", "inf_margin"])
def test_margin_ranking_falls_back_to_torch(case):
    a, b, y = _mr_data(MR_SHAPES[1], 4)
    margin = 0.1
    if case == "float64":
        a, b, y = (t.detach().double().requires_grad_(t.requires_grad) for t in (a, b, y))
    elif case == "target_requires_grad":
        y = y.clone().requires_grad_()
    elif case == "ndim":
        with pytest.raises(RuntimeError, match="All input tensors should have same dimension"):
            FT.margin_ranking_loss(a, b[0], y)
        return
    else:
        margin = float("inf")
    loss = FT.margin_ranking_loss(a, b, y, margin=margin)
    assert "_MarginRankingFn" not in type(loss.grad_fn).__name__
    _close(loss, F.margin_ranking_loss(a, b, y, margin=margin))
    if case == "target_requires_grad":
        (gy,) = torch.autograd.grad(loss, (y,))
        assert gy.shape == y.shape


def test_margin_ranking_create_graph_matches_torch():
    a, b, y = _mr_data(MR_SHAPES[1], 5)
    go = torch.tensor(0.7, requires_grad=True)
    loss = FT.margin_ranking_loss(a, b, y, margin=0.2, reduction="sum")
    (g,) = torch.autograd.grad(loss, (a,), go, create_graph=True)
    want_loss = F.margin_ranking_loss(a, b, y, margin=0.2, reduction="sum")
    (want,) = torch.autograd.grad(want_loss, (a,), go, create_graph=True)
    _close(g, want)
    assert g.requires_grad and want.requires_grad   # through the upstream gradient
    (d_go,) = torch.autograd.grad(g.sum(), (go,))
    (want_d_go,) = torch.autograd.grad(want.sum(), (go,))
    _close(d_go, want_d_go)


def _compiled(fn, backend):
    if backend == "inductor":
        skip_without_a_cxx_compiler()
    torch._dynamo.reset()
    return torch.compile(fn, backend=backend, fullgraph=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_margin_ranking_under_torch_compile(backend, reduction):
    a, b, y = _mr_data(MR_SHAPES[2], 6)

    def fn(a, b, y):
        return FT.margin_ranking_loss(a, b, y, margin=0.25, reduction=reduction)

    compiled = _compiled(fn, backend)
    _check_against_torch(compiled, lambda *t: F.margin_ranking_loss(
        *t, margin=0.25, reduction=reduction), (a, b), (a, b, y))
    if backend == "aot_eager":   # the same kernel as eager: bitwise the same
        eager, got = fn(a, b, y), compiled(a, b, y)
        assert torch.equal(eager, got)
        go = _upstream(eager)
        for e, c in zip(torch.autograd.grad(eager, (a, b), go),
                        torch.autograd.grad(got, (a, b), go)):
            assert torch.equal(e, c)


def test_margin_ranking_compiled_graph_calls_the_operator():
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    a, b, y = _mr_data(MR_SHAPES[1], 7)
    torch._dynamo.reset()
    fn = torch.compile(lambda a, b, y: FT.margin_ranking_loss(a, b, y), backend=backend,
                       fullgraph=True)
    fn(a, b, y)
    assert any("margin_ranking_loss" in s and "fastloss" in s for s in seen), seen


@pytest.mark.parametrize("args", [
    lambda a, b, y: (a, b, y, 0.5, "mean", True),
    lambda a, b, y: (a, b, y, 0.0, "none", True),
    lambda a, b, y: (a, b, y, -0.5, "sum", False),
])
def test_margin_ranking_opcheck(args):
    a, b, y = _mr_data(((6, 1), (6, 5), (1, 5)), 8)
    call = args(a, b, y)
    if call[-1] is False:
        call = (a.detach(), b.detach()) + call[2:]
    op = torch.ops.fastloss.margin_ranking_loss.default
    result = torch.library.opcheck(op, call)
    assert all(v == "SUCCESS" for v in result.values()), result


def test_margin_ranking_operator_results():
    a, b, y = _mr_data(((6, 1), (6, 5), (1, 5)), 9)
    loss, g1, g2 = torch.ops.fastloss.margin_ranking_loss(a, b, y, 0.5, "sum", True)
    want1, want2 = fastloss.MarginRankingLoss(0.5, reduction="sum").backward(
        a.detach().numpy(), b.detach().numpy(), y.numpy())
    assert torch.equal(g1, torch.from_numpy(want1)) and torch.equal(g2, torch.from_numpy(want2))
    _, e1, e2 = _pairwise._mr_op(a, b, y, 0.5, "sum", False)
    assert e1.shape == e2.shape == (0,)
