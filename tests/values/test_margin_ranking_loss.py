"""margin_ranking_loss / MarginRankingLoss against the float64 reference and
PyTorch: every margin x reduction, broadcasting, the tie's gradient, NaN,
fused == separate calls and thread counts bitwise, bad inputs,
non-contiguous and empty inputs.

It is not in the registry-driven tests (fastloss/_pairwise.py says why:
three arrays, two gradients); this file covers what they would.
"""

import numpy as np
import pytest
from _support.registry import REDUCTIONS, assert_grad_close, assert_loss_close, assert_same

import fastloss
from fastloss import reference as ref

MARGINS = [0.0, 0.5, -0.25, 2.0]
# (input1, input2, target) shapes: equal, broadcast along each axis, 0-d, large
SHAPES = [
    ((7,), (7,), (7,)),
    ((64, 10), (64, 10), (64, 10)),
    ((5, 1), (5, 4), (1, 4)),
    ((1, 6), (3, 6), (3, 1)),
    ((), (), ()),
    ((3, 1, 5), (3, 4, 5), (3, 4, 1)),
    ((70000,), (70000,), (70000,)),
]


def _data(shapes, seed):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=shapes[0]).astype(np.float32)
    x2 = rng.normal(size=shapes[1]).astype(np.float32)
    y = np.where(rng.random(shapes[2]) < 0.5, -1.0, 1.0).astype(np.float32)
    return x1, x2, y


def _grad_output(reduction, shape, seed):
    if reduction != "none":
        return 0.37
    return np.random.default_rng(seed + 1).uniform(-2, 2, shape).astype(np.float32)


def _full(shapes):
    return np.broadcast_shapes(*shapes)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_matches_the_reference(shapes, margin, reduction):
    x1, x2, y = _data(shapes, 1)
    go = _grad_output(reduction, _full(shapes), 2)
    m = fastloss.MarginRankingLoss(margin=margin, reduction=reduction)
    loss, (g1, g2) = m.loss_and_grad(x1, x2, y)
    assert_loss_close(loss, ref.margin_ranking_loss(x1, x2, y, margin, reduction))
    r1, r2 = ref.margin_ranking_loss_grad(x1, x2, y, margin, reduction)
    assert g1.dtype == g2.dtype == np.float32
    assert g1.shape == x1.shape and g2.shape == x2.shape
    assert_grad_close(g1, r1)
    assert_grad_close(g2, r2)
    b1, b2 = m.backward(x1, x2, y, grad_output=go)
    r1, r2 = ref.margin_ranking_loss_grad(x1, x2, y, margin, reduction, grad_output=go)
    assert_grad_close(b1, r1)
    assert_grad_close(b2, r2)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
@pytest.mark.parametrize("shapes", SHAPES[:6], ids=str)
def test_matches_torch(shapes, margin, reduction):
    torch = pytest.importorskip("torch")
    x1, x2, y = _data(shapes, 3)
    go = _grad_output(reduction, _full(shapes), 4)
    a = torch.tensor(x1, requires_grad=True)
    b = torch.tensor(x2, requires_grad=True)
    expected = torch.nn.functional.margin_ranking_loss(a, b, torch.tensor(y), margin=margin,
                                                       reduction=reduction)
    expected.backward(torch.as_tensor(go, dtype=torch.float32))
    loss = fastloss.margin_ranking_loss(x1, x2, y, margin, reduction=reduction)
    assert_loss_close(loss, expected.detach().numpy())
    g1, g2 = fastloss.MarginRankingLoss(margin, reduction=reduction).backward(
        x1, x2, y, grad_output=go)
    assert_grad_close(g1, a.grad.numpy())
    assert_grad_close(g2, b.grad.numpy())


def test_tie_and_nan_gradients_as_torch():
    torch = pytest.importorskip("torch")
    # z = -y (x1 - x2) + margin: 0 (tie), < 0, > 0, NaN input, NaN target
    x1 = np.array([1.0, 3.0, 1.0, np.nan, 1.0], np.float32)
    x2 = np.array([1.0, 1.0, 2.0, 0.0, 0.0], np.float32)
    y = np.array([1.0, 1.0, 1.0, 1.0, np.nan], np.float32)
    loss, (g1, g2) = fastloss.MarginRankingLoss(reduction="none").loss_and_grad(x1, x2, y)
    a = torch.tensor(x1, requires_grad=True)
    b = torch.tensor(x2, requires_grad=True)
    expected = torch.nn.functional.margin_ranking_loss(a, b, torch.tensor(y), reduction="none")
    expected.sum().backward()
    assert_same(loss, expected.detach().numpy())
    assert_same(g1, a.grad.numpy())
    assert_same(g2, b.grad.numpy())
    assert g1[0] == -1.0 and g2[0] == 1.0   # the gradient passes at the tie


def test_mean_of_an_empty_input_is_nan():
    e = np.zeros((0, 3), np.float32)
    loss, (g1, g2) = fastloss.MarginRankingLoss().loss_and_grad(e, e, e)
    assert np.isnan(loss)
    assert g1.shape == g2.shape == (0, 3)
    assert fastloss.margin_ranking_loss(e, e, e, reduction="sum") == 0.0
    assert fastloss.margin_ranking_loss(e, e, e, reduction="none").shape == (0, 3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", [SHAPES[1], SHAPES[2], SHAPES[6]], ids=str)
def test_fused_equals_separate_calls_bitwise(shapes, reduction):
    x1, x2, y = _data(shapes, 5)
    m = fastloss.MarginRankingLoss(margin=0.3, reduction=reduction)
    loss, (g1, g2) = m.loss_and_grad(x1, x2, y)
    assert_same(loss, m(x1, x2, y))
    assert_same(loss, fastloss.margin_ranking_loss(x1, x2, y, 0.3, reduction=reduction))
    b1, b2 = m.backward(x1, x2, y)
    assert_same(g1, b1)
    assert_same(g2, b2)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(70000,), (300, 257), (3, 1, 40000)], ids=str)
def test_thread_counts_agree_bitwise(shape, reduction):
    x1, x2, y = _data((shape, shape, shape), 6)
    go = _grad_output(reduction, shape, 7)
    m = fastloss.MarginRankingLoss(margin=0.1, reduction=reduction)
    with fastloss.threads(1):
        one = m.loss_and_grad(x1, x2, y), m.backward(x1, x2, y, grad_output=go)
    with fastloss.threads(2):
        two = m.loss_and_grad(x1, x2, y), m.backward(x1, x2, y, grad_output=go)
    assert_same(one[0][0], two[0][0])
    for a, b in zip(one[0][1] + one[1], two[0][1] + two[1]):
        assert_same(a, b)


def test_non_contiguous_and_other_dtypes_give_the_contiguous_result():
    x1, x2, y = _data(((10, 64), (10, 64), (10, 64)), 8)
    m = fastloss.MarginRankingLoss(margin=0.2, reduction="none")
    got = m.loss_and_grad(x1.T, x2.T, y.T)
    want = m.loss_and_grad(*(np.ascontiguousarray(a.T) for a in (x1, x2, y)))
    assert_same(got[0], want[0])
    assert_same(got[1][0], want[1][0])
    assert_same(got[1][1], want[1][1])
    got64 = m(x1.T.astype(np.float64), x2.T, y.T.astype(np.int64))
    assert_same(got64, want[0])


def test_inputs_are_not_written():
    x1, x2, y = _data(SHAPES[1], 9)
    copies = [a.copy() for a in (x1, x2, y)]
    fastloss.MarginRankingLoss().loss_and_grad(x1, x2, y)
    for a, c in zip((x1, x2, y), copies):
        assert_same(a, c)


def test_legacy_size_average_and_reduce():
    x1, x2, y = _data(SHAPES[1], 10)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        got = fastloss.margin_ranking_loss(x1, x2, y, size_average=False)
    assert_same(got, fastloss.margin_ranking_loss(x1, x2, y, reduction="sum"))
    with pytest.warns(UserWarning, match="deprecated"):
        m = fastloss.MarginRankingLoss(reduce=False)
    assert m.reduction == "none"


def test_bad_inputs_raise_naming_the_argument():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="same number of dimensions"):
        fastloss.margin_ranking_loss(a, a[0], a)
    with pytest.raises(ValueError, match=r"do not broadcast: input1 \(3, 4\), input2 \(3, 5\)"):
        fastloss.margin_ranking_loss(a, np.ones((3, 5)), a)
    with pytest.raises(TypeError, match="input2 must hold real numbers"):
        fastloss.margin_ranking_loss(a, a.astype(complex), a)
    with pytest.raises(TypeError, match="target must hold real numbers"):
        fastloss.margin_ranking_loss(a, a, np.array([["x"] * 4] * 3))
    with pytest.raises(ValueError, match="margin must be a number"):
        fastloss.margin_ranking_loss(a, a, a, margin=float("inf"))
    with pytest.raises(TypeError, match="margin must be a real number"):
        fastloss.MarginRankingLoss(margin="1")
    with pytest.raises(ValueError, match="reduction must be"):
        fastloss.margin_ranking_loss(a, a, a, reduction="avg")
    m = fastloss.MarginRankingLoss(reduction="none")
    with pytest.raises(ValueError, match="grad_output has shape"):
        m.backward(a, a, a, grad_output=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="grad_output must be a scalar"):
        fastloss.MarginRankingLoss().backward(a, a, a, grad_output=np.ones((3, 4)))


def test_class_options_and_repr():
    m = fastloss.MarginRankingLoss(margin=0.5, reduction="sum")
    assert repr(m) == "MarginRankingLoss(margin=0.5, reduction='sum')"
    m.margin = 1
    assert m.margin == 1.0
    with pytest.raises(ValueError, match="reduction must be"):
        m.reduction = "batchmean"
