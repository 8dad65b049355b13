"""gaussian_nll_loss / GaussianNLLLoss against the float64 reference and
PyTorch: full x eps x reduction over every var shape PyTorch takes (input's,
input.shape[:-1], one dimension of size 1, a Python float), broadcast
targets, the clamp's gradient, NaN, fused == separate calls and thread
counts bitwise (both block layouts), bad inputs, non-contiguous and empty
inputs.

It is not in the registry-driven tests (fastloss/_pairwise.py says why:
three arrays, two gradients); this file covers what they would.
"""

import numpy as np
import pytest
from _support.registry import REDUCTIONS, assert_grad_close, assert_loss_close, assert_same

import fastloss
from fastloss import reference as ref

# (input, target, var) shapes; var None: a Python float
SHAPES = [
    ((9,), (9,), (9,)),
    ((64, 10), (64, 10), (64, 10)),
    ((64, 10), (64, 10), (64,)),
    ((64, 10), (10,), (64, 1)),
    ((4, 3, 6, 5), (4, 3, 6, 5), (4, 1, 6, 5)),
    ((4, 3, 5), (4, 3, 5), (1, 3, 5)),
    ((7,), (7,), ()),
    ((7,), (1,), (1,)),
    ((), (), ()),
    ((5, 6), (5, 6), None),
    ((3, 7000), (3, 7000), (3, 1)),       # columns longer than a block: column chunks
]
OPTIONS = [(False, 1e-6), (True, 1e-6), (False, 0.3), (True, 0.0)]


def _data(shapes, seed, low=0.05):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shapes[0]).astype(np.float32)
    t = rng.normal(size=shapes[1]).astype(np.float32)
    if shapes[2] is None:
        var = 0.8
    else:
        var = rng.uniform(low, 2.0, size=shapes[2]).astype(np.float32)
    return x, t, var


def _grad_output(reduction, shape, seed):
    if reduction != "none":
        return 0.37
    return np.random.default_rng(seed + 1).uniform(-2, 2, shape).astype(np.float32)


def _check_grads(got, want):
    assert_grad_close(got[0], want[0])
    if want[1] is None:
        assert got[1] is None
    else:
        assert got[1].dtype == np.float32
        assert_grad_close(got[1], want[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full,eps", OPTIONS)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_matches_the_reference(shapes, full, eps, reduction):
    x, t, var = _data(shapes, 1)
    go = _grad_output(reduction, x.shape, 2)
    m = fastloss.GaussianNLLLoss(full=full, eps=eps, reduction=reduction)
    loss, grads = m.loss_and_grad(x, t, var)
    assert_loss_close(loss, ref.gaussian_nll_loss(x, t, var, full, eps, reduction))
    _check_grads(grads, ref.gaussian_nll_loss_grad(x, t, var, full, eps, reduction))
    if shapes[2] is not None:
        assert grads[1].shape == np.shape(var)
    _check_grads(m.backward(x, t, var, grad_output=go),
                 ref.gaussian_nll_loss_grad(x, t, var, full, eps, reduction, grad_output=go))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full,eps", [(False, 1e-6), (True, 0.3)])
@pytest.mark.parametrize("shapes", SHAPES[:10], ids=str)
def test_matches_torch(shapes, full, eps, reduction):
    torch = pytest.importorskip("torch")
    x, t, var = _data(shapes, 3, low=0.0)   # some var below eps: the clamp
    go = _grad_output(reduction, x.shape, 4)
    xt = torch.tensor(x, requires_grad=True)
    vt = var if shapes[2] is None else torch.tensor(var, requires_grad=True)
    expected = torch.nn.functional.gaussian_nll_loss(xt, torch.tensor(t), vt, full=full,
                                                     eps=eps, reduction=reduction)
    expected.backward(torch.as_tensor(go, dtype=torch.float32))
    loss = fastloss.gaussian_nll_loss(x, t, var, full, eps, reduction=reduction)
    assert_loss_close(loss, expected.detach().numpy(), rtol=2e-5)
    gx, gv = fastloss.GaussianNLLLoss(full=full, eps=eps, reduction=reduction).backward(
        x, t, var, grad_output=go)
    assert_grad_close(gx, xt.grad.numpy(), rtol=2e-5)
    if shapes[2] is None:
        assert gv is None
    else:
        assert_grad_close(gv, vt.grad.numpy(), rtol=2e-5)


def test_clamped_var_gets_the_gradient_at_eps_and_nan_stays_nan():
    torch = pytest.importorskip("torch")
    x = np.array([[0.5, 1.0], [2.0, -1.0], [0.0, 1.0]], np.float32)
    t = np.zeros((3, 2), np.float32)
    var = np.array([[0.0], [np.nan], [1.0]], np.float32)
    loss, (gx, gv) = fastloss.GaussianNLLLoss(eps=0.25, reduction="none").loss_and_grad(
        x, t, var)
    xt, vt = torch.tensor(x, requires_grad=True), torch.tensor(var, requires_grad=True)
    expected = torch.nn.functional.gaussian_nll_loss(xt, torch.tensor(t), vt, eps=0.25,
                                                     reduction="none")
    expected.sum().backward()
    assert_loss_close(loss, expected.detach().numpy())
    assert_grad_close(gx, xt.grad.numpy())
    assert_grad_close(gv, vt.grad.numpy())
    assert np.isnan(loss[1]).all() and np.isnan(gv[1, 0])
    # at var = 0 < eps: 0.5 (1 / eps - d^2 / eps^2) summed over the row
    assert gv[0, 0] == pytest.approx(0.5 * ((4 - 0.25 * 16) + (4 - 16)))


def test_huge_differences_do_not_overflow_early():
    # d^2 overflows float32, d^2 / v does not: computed as d (d / v)
    x = np.array([1e20], np.float32)
    loss = fastloss.gaussian_nll_loss(x, np.zeros(1, np.float32), np.array([1e30], np.float32),
                                      reduction="sum")
    assert np.isfinite(loss)
    assert loss == pytest.approx(ref.gaussian_nll_loss(x, np.zeros(1), np.array([1e30]),
                                                       reduction="sum"), rel=1e-5)


def test_mean_of_an_empty_input_is_nan():
    e = np.zeros((0, 3), np.float32)
    loss, (gx, gv) = fastloss.GaussianNLLLoss().loss_and_grad(e, e, np.ones((0, 1), np.float32))
    assert np.isnan(loss) and gx.shape == (0, 3) and gv.shape == (0, 1)
    loss, (gx, gv) = fastloss.GaussianNLLLoss(reduction="sum").loss_and_grad(
        e, e, np.ones((1, 3), np.float32))
    assert loss == 0.0 and gv.shape == (1, 3)
    assert_same(gv, np.zeros((1, 3), np.float32))
    assert fastloss.gaussian_nll_loss(e, e, 1.0, reduction="none").shape == (0, 3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", [SHAPES[1], SHAPES[3], SHAPES[4], SHAPES[9], SHAPES[10]],
                         ids=str)
def test_fused_equals_separate_calls_bitwise(shapes, reduction):
    x, t, var = _data(shapes, 5)
    m = fastloss.GaussianNLLLoss(full=True, reduction=reduction)
    loss, (gx, gv) = m.loss_and_grad(x, t, var)
    assert_same(loss, m(x, t, var))
    assert_same(loss, fastloss.gaussian_nll_loss(x, t, var, True, reduction=reduction))
    bx, bv = m.backward(x, t, var)
    assert_same(gx, bx)
    if gv is None:
        assert bv is None
    else:
        assert_same(gv, bv)


# both block layouts (whole slabs; one a and a chunk of columns), a float var
THREAD_SHAPES = [((300, 257), (300, 257), (300, 1)), ((70000,), (70000,), (70000,)),
                 ((2, 20000, 3), (2, 20000, 3), (2, 1, 3)),
                 ((4, 3, 64, 64), (4, 3, 64, 64), (4, 1, 64, 64)),
                 ((70000,), (70000,), None)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", THREAD_SHAPES, ids=str)
def test_thread_counts_agree_bitwise(shapes, reduction):
    x, t, var = _data(shapes, 6)
    go = _grad_output(reduction, x.shape, 7)
    m = fastloss.GaussianNLLLoss(reduction=reduction)
    results = []
    for n in (1, 2):
        with fastloss.threads(n):
            loss, grads = m.loss_and_grad(x, t, var)
            results.append((loss, *grads, *m.backward(x, t, var, grad_output=go)))
    for a, b in zip(*results):
        if a is None:
            assert b is None
        else:
            assert_same(a, b)


def test_non_contiguous_and_other_dtypes_give_the_contiguous_result():
    x, t, var = _data(((10, 64), (10, 64), (1, 64)), 8)
    m = fastloss.GaussianNLLLoss(reduction="none")
    got = m.loss_and_grad(x.T, t.T, var.T)
    want = m.loss_and_grad(np.ascontiguousarray(x.T), np.ascontiguousarray(t.T),
                           np.ascontiguousarray(var.T))
    assert_same(got[0], want[0])
    assert_same(got[1][0], want[1][0])
    assert_same(got[1][1], want[1][1])
    assert_same(m(x.T.astype(np.float64), t.T, var.T.astype(np.float64)), want[0])


def test_inputs_are_not_written():
    x, t, var = _data(SHAPES[3], 9)
    copies = [a.copy() for a in (x, t, var)]
    fastloss.GaussianNLLLoss().loss_and_grad(x, t, var)
    for a, c in zip((x, t, var), copies):
        assert_same(a, c)


def test_bad_inputs_raise_naming_the_argument():
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="var has negative entry/entries"):
        fastloss.gaussian_nll_loss(x, x, -1.0)
    with pytest.raises(ValueError, match="var has negative entry/entries"):
        fastloss.gaussian_nll_loss(x, x, np.array([[1.0], [-1.0], [1.0], [1.0]]))
    for bad in [(4, 2), (3,), (1, 1, 3), (2, 1)]:
        with pytest.raises(ValueError, match="var is of incorrect size"):
            fastloss.gaussian_nll_loss(x, x, np.ones(bad, np.float32))
    with pytest.raises(ValueError, match=r"target of shape \(2, 4, 3\) does not broadcast"):
        fastloss.gaussian_nll_loss(x, np.ones((2, 4, 3)), 1.0)
    with pytest.raises(TypeError, match="var must hold real numbers"):
        fastloss.gaussian_nll_loss(x, x, np.array(["a"] * 4))
    with pytest.raises(ValueError, match="eps must be a number >= 0.0"):
        fastloss.gaussian_nll_loss(x, x, 1.0, eps=-1e-3)
    with pytest.raises(TypeError, match="full must be True or False"):
        fastloss.GaussianNLLLoss(full=np.ones(2))
    with pytest.raises(ValueError, match="reduction must be"):
        fastloss.gaussian_nll_loss(x, x, 1.0, reduction="bad")
    with pytest.raises(ValueError, match="grad_output has shape"):
        fastloss.GaussianNLLLoss(reduction="none").backward(x, x, 1.0, grad_output=np.ones(4))


def test_class_options_and_repr():
    m = fastloss.GaussianNLLLoss(full=True, eps=0.5, reduction="sum")
    assert repr(m) == "GaussianNLLLoss(full=True, eps=0.5, reduction='sum')"
    with pytest.raises(TypeError):
        fastloss.GaussianNLLLoss(True)   # keyword-only, as torch.nn's
    m.eps = 1
    assert m.eps == 1.0
