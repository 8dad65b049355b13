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


# --------------------------------------------------------------------------
# gaussian_nll_loss

# (input, target, var) shapes; var None: a Python float
GN_SHAPES = [((6, 4), (6, 4), (6, 4)), ((6, 4), (4,), (6, 1)), ((6, 4), (6, 4), (6,)),
             ((2, 3, 5), (2, 3, 5), (2, 1, 5)), ((5,), (5,), ()), ((6, 4), (6, 4), None),
             ((0, 3), (0, 3), (0, 1))]


def _gn_data(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shapes[0], generator=g).requires_grad_()
    t = torch.randn(shapes[1], generator=g)
    if shapes[2] is None:
        return x, t, 0.6, (x,)
    v = torch.rand(shapes[2], generator=g).requires_grad_()   # some below eps=0.05
    return x, t, v, (x, v)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full,eps", [(False, 1e-6), (True, 0.05)])
@pytest.mark.parametrize("shapes", GN_SHAPES, ids=str)
def test_gaussian_nll_functional_matches_torch(shapes, full, eps, reduction):
    x, t, v, wrt = _gn_data(shapes)

    def ours(x, t, v):
        return FT.gaussian_nll_loss(x, t, v, full=full, eps=eps, reduction=reduction)

    def theirs(x, t, v):
        return F.gaussian_nll_loss(x, t, v, full=full, eps=eps, reduction=reduction)

    loss = _check_against_torch(ours, theirs, wrt, (x, t, v))
    assert "_GaussianNLLFn" in type(loss.grad_fn).__name__


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_nll_module_matches_torch_module(reduction):
    x, t, v, wrt = _gn_data(GN_SHAPES[1], 2)
    ours = ft.GaussianNLLLoss(full=True, eps=0.1, reduction=reduction)
    theirs = torch.nn.GaussianNLLLoss(full=True, eps=0.1, reduction=reduction)
    assert isinstance(ours, torch.nn.GaussianNLLLoss)
    assert repr(ours) == repr(theirs)
    _check_against_torch(ours, theirs, wrt, (x, t, v))


def test_gaussian_nll_only_var_requires_grad():
    x, t, v, _ = _gn_data(GN_SHAPES[1], 3)
    x = x.detach()
    (gv,) = torch.autograd.grad(FT.gaussian_nll_loss(x, t, v, reduction="sum"), (v,))
    (want,) = torch.autograd.grad(F.gaussian_nll_loss(x, t, v, reduction="sum"), (v,))
    _close(gv, want)


@pytest.mark.parametrize("case", ["float64", "target_requires_grad", "big_target", "int_var",
                                  "var_shape", "negative_var"])
def test_gaussian_nll_falls_back_to_torch_or_raises_its_error(case):
    x, t, v, _ = _gn_data(GN_SHAPES[0], 4)
    if case == "float64":
        x, t, v = x.detach().double().requires_grad_(), t.double(), v.detach().double()
    elif case == "target_requires_grad":
        t = t.clone().requires_grad_()
    elif case == "big_target":
        t = torch.randn(2, 6, 4)
    elif case == "int_var":
        v = 1   # PyTorch takes only a float (an int fails in its own check)
        with pytest.raises(TypeError):
            F.gaussian_nll_loss(x, t, v)
        with pytest.raises(TypeError):
            FT.gaussian_nll_loss(x, t, v)
        return
    elif case == "var_shape":
        with pytest.raises(ValueError, match="var is of incorrect size"):
            FT.gaussian_nll_loss(x, t, torch.ones(6, 2))
        return
    else:
        with pytest.raises(ValueError, match="var has negative entry/entries"):
            FT.gaussian_nll_loss(x, t, -torch.ones(6, 4))
        with pytest.raises(ValueError, match="var has negative entry/entries"):
            FT.gaussian_nll_loss(x, t, -1.0)
        return
    loss = FT.gaussian_nll_loss(x, t, v, reduction="none")
    assert "_GaussianNLLFn" not in type(loss.grad_fn).__name__
    _close(loss, F.gaussian_nll_loss(x, t, v, reduction="none"))


def test_gaussian_nll_create_graph_matches_torch():
    x, t, v, wrt = _gn_data(GN_SHAPES[1], 5)
    loss = FT.gaussian_nll_loss(x, t, v, reduction="sum")
    got = torch.autograd.grad(loss, wrt, create_graph=True)
    want = torch.autograd.grad(F.gaussian_nll_loss(x, t, v, reduction="sum"), wrt,
                               create_graph=True)
    for g, w in zip(got, want):
        _close(g, w)
    _close(torch.autograd.grad(got[0].sum(), (x,))[0],
           torch.autograd.grad(want[0].sum(), (x,))[0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("shapes", [GN_SHAPES[1], GN_SHAPES[5]], ids=str)
def test_gaussian_nll_under_torch_compile(shapes, backend, reduction):
    x, t, v, wrt = _gn_data(shapes, 6)

    def fn(x, t, v):
        return FT.gaussian_nll_loss(x, t, v, full=True, reduction=reduction)

    compiled = _compiled(fn, backend)
    _check_against_torch(compiled, lambda *a: F.gaussian_nll_loss(
        *a, full=True, reduction=reduction), wrt, (x, t, v))
    if backend == "aot_eager":   # the same kernel as eager: bitwise the same
        eager, got = fn(x, t, v), compiled(x, t, v)
        assert torch.equal(eager, got)
        go = _upstream(eager)
        for e, c in zip(torch.autograd.grad(eager, wrt, go), torch.autograd.grad(got, wrt, go)):
            assert torch.equal(e, c)


@pytest.mark.parametrize("args", [
    lambda x, t, v: (x, t, v, 0.0, False, 1e-6, "mean", True),
    lambda x, t, v: (x, t, v, 0.0, True, 0.1, "sum", True),
    lambda x, t, v: (x, t, v, 0.0, False, 1e-6, "none", True),
    lambda x, t, v: (x, t, None, 0.7, False, 1e-6, "sum", True),
    lambda x, t, v: (x, t, v, 0.0, False, 1e-6, "mean", False),
])
def test_gaussian_nll_opcheck(args):
    x, t, v, _ = _gn_data(GN_SHAPES[1], 7)
    call = args(x, t, v)
    if call[-1] is False:
        call = (x.detach(), t, v.detach()) + call[3:]
    op = torch.ops.fastloss.gaussian_nll_loss.default
    result = torch.library.opcheck(op, call)
    assert all(r == "SUCCESS" for r in result.values()), result


def test_gaussian_nll_backward_operator():
    x, t, v, _ = _gn_data(GN_SHAPES[1], 8)
    go = torch.rand(6, 4)
    gx, gv = torch.ops.fastloss.gaussian_nll_loss_backward(x, t, v, 0.0, False, 1e-6, "none", go)
    want = fastloss.GaussianNLLLoss(reduction="none").backward(
        x.detach().numpy(), t.numpy(), v.detach().numpy(), grad_output=go.numpy())
    assert torch.equal(gx, torch.from_numpy(want[0])) and torch.equal(gv, torch.from_numpy(want[1]))
    result = torch.library.opcheck(torch.ops.fastloss.gaussian_nll_loss_backward.default,
                                   (x.detach(), t, v.detach(), 0.0, False, 1e-6, "none", go))
    assert all(r == "SUCCESS" for r in result.values()), result
