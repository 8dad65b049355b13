"""multi_margin_loss / MultiMarginLoss (the row family).

The registry-driven tests leave the row losses out (tests/_support/registry.py,
OWN_TESTS); this file checks the same properties for this loss: every
p x margin x weight x reduction against the float64 reference and PyTorch
(loss and gradient, upstream gradient other than 1), the function, the
class's forward, loss_and_grad and backward against each other bitwise, 1 vs
2 threads bitwise, ties (no gradient at z = 0), the weight outside the power,
bad arguments (targets out of range name the index and the value), 1-D and
0-d input, non-contiguous and empty input, out= (and out=input), the legacy
size_average/reduce, huge scores and NaN.
"""

import numpy as np
import pytest
from _support.registry import (
    REDUCTIONS,
    assert_grad_close,
    assert_loss_close,
    assert_out_and_in_place,
    assert_same,
)

import fastloss
from fastloss import reference as ref

torch = pytest.importorskip("torch")
F = torch.nn.functional

SHAPES = [(1, 1), (7, 3), (9, 17), (64, 10), (5, 300), (2, 1100), (6,)]
BIG_SHAPES = [(9000, 7), (3, 70000), (1500, 33)]
OPTIONS = [{}, {"p": 2}, {"margin": 0.25}, {"p": 2, "margin": 2.5}, {"margin": -0.5},
           {"margin": 0.0}]


def _data(shape, seed=0):
    """Scores on a grid of halves (so exact ties z = 0 occur often at the
    default margin 1) and class targets."""
    rng = np.random.default_rng(seed)
    x = (np.round(4.0 * rng.standard_normal(shape)) / 2.0).astype(np.float32)
    c = shape[-1]
    t = np.asarray(rng.integers(0, c, size=shape[:-1]), np.int64)
    return x, t


def _weight(c, seed=3):
    return np.random.default_rng(seed).uniform(0.2, 2.0, c).astype(np.float32)


def _grad_output(reduction, shape, seed=5):
    if reduction != "none":
        return 0.37
    return np.random.default_rng(seed).uniform(-2, 2, shape[:-1]).astype(np.float32)


def _torch(x, t, reduction, grad_output, weight=None, **options):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    loss = F.multi_margin_loss(xt, torch.as_tensor(np.asarray(t, np.int64)), weight=wt,
                               reduction=reduction, **options)
    (loss * torch.as_tensor(np.asarray(grad_output), dtype=torch.float64)).sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


def _check(x, t, reduction, weight=None, **options):
    g = _grad_output(reduction, x.shape)
    loss = fastloss.multi_margin_loss(x, t, weight=weight, reduction=reduction, **options)
    crit = fastloss.MultiMarginLoss(weight=weight, reduction=reduction, **options)
    fused_loss, fused_grad = crit.loss_and_grad(x, t)
    grad = crit.backward(x, t, grad_output=g)
    assert_same(crit(x, t), loss)
    assert_same(fused_loss, loss)
    assert_same(crit.backward(x, t), fused_grad)
    x64 = x.astype(np.float64)
    kw = dict(options, weight=weight, reduction=reduction)
    assert_loss_close(loss, ref.multi_margin_loss(x64, t, **kw))
    assert_grad_close(fused_grad, ref.multi_margin_loss_grad(x64, t, **kw))
    assert_grad_close(grad, ref.multi_margin_loss_grad(
        x64, t, grad_output=np.asarray(g, np.float64), **kw))
    t_loss, t_grad = _torch(x, t, reduction, g, weight, **options)
    assert_loss_close(loss, t_loss)
    assert_grad_close(grad, t_grad)
    if reduction == "none":
        assert loss.shape == np.shape(t) and loss.dtype == np.float32
    else:
        assert isinstance(loss, float)
    assert grad.shape == x.shape and grad.dtype == np.float32
    return loss, grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_against_reference_and_torch(shape, options, reduction):
    x, t = _data(shape)
    for weight in (None, _weight(shape[-1])):
        _check(x, t, reduction, weight, **options)


@pytest.fixture
def every_thread():
    """The adaptive rule off (a busy machine would send calls to one thread):
    the parallel run really runs on the threads it is given."""
    on = fastloss._core._thread_policy_enabled()
    fastloss.set_adaptive_threads(False)
    yield
    fastloss.set_adaptive_threads(on)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("shape", BIG_SHAPES, ids=str)
def test_thread_counts_bitwise(shape, p, reduction, every_thread):
    x, t = _data(shape, 11)
    w = _weight(shape[-1])
    g = _grad_output(reduction, shape)

    def everything():
        crit = fastloss.MultiMarginLoss(p=p, margin=0.75, weight=w, reduction=reduction)
        return (crit(x, t), *crit.loss_and_grad(x, t), crit.backward(x, t, grad_output=g))

    with fastloss.threads(1):
        serial = everything()
    with fastloss.threads(2):
        parallel = everything()
    for a, b in zip(serial, parallel):
        assert_same(a, b)
    assert_loss_close(serial[0], ref.multi_margin_loss(x, t, p, 0.75, w, reduction))


def test_ties_have_no_gradient():
    # z = margin - x_t + x_j = 1 - 2 + 1 = 0 for j = 0: no loss, no gradient
    x = np.array([[1.0, 0.0, 2.0]], np.float32)
    loss, grad = fastloss.MultiMarginLoss(reduction="sum").loss_and_grad(x, np.array([2]))
    t_loss, t_grad = _torch(x, np.array([2]), "sum", 1.0)
    assert loss == 0.0 and t_loss == 0.0
    assert_same(grad, np.zeros_like(x))
    np.testing.assert_array_equal(t_grad, 0.0)


def test_weight_is_outside_the_power():
    # one active term z = 1.5, p = 2, w_t = 3: w z^2 / C = 3 * 2.25 / 2, not (w z)^2 / C
    x = np.array([[0.5, 0.0]], np.float32)
    w = np.array([1.0, 3.0], np.float32)
    loss = fastloss.multi_margin_loss(x, np.array([1]), p=2, margin=1.0, weight=w,
                                      reduction="sum")
    assert loss == pytest.approx(3.0 * 2.25 / 2)
    t_loss, _ = _torch(x, np.array([1]), "sum", 1.0, w, p=2, margin=1.0)
    assert float(t_loss) == pytest.approx(loss)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_one_row_and_scalar_input(reduction):
    x, _ = _data((6,))
    for t in (np.int64(4), np.array([4]), np.array(4, np.int32)):
        _check(x, t, reduction)
    # a 0-d input is one class: its only term is the target's, so the loss is 0
    loss, grad = fastloss.MultiMarginLoss(reduction=reduction).loss_and_grad(
        np.float32(2.0), np.int64(0))
    t_loss, _ = _torch(np.float32(2.0), np.int64(0), reduction, 1.0)
    assert_loss_close(loss, t_loss)
    assert grad.shape == () and grad == 0.0


@pytest.mark.filterwarnings("ignore:size_average and reduce args:UserWarning")
def test_legacy_size_average_and_reduce():
    x, t = _data((6, 4))
    for size_average, reduce in [(True, None), (False, None), (None, False), (True, False),
                                 (False, True)]:
        ours = fastloss.multi_margin_loss(x, t, size_average=size_average, reduce=reduce)
        crit = fastloss.MultiMarginLoss(size_average=size_average, reduce=reduce)
        theirs, _ = _torch(x, t, "mean", 1.0, size_average=size_average, reduce=reduce)
        assert_loss_close(ours, theirs)
        assert_same(crit(x, t), ours)


def test_non_contiguous_and_other_dtypes():
    x, t = _data((8, 12))
    crit = fastloss.MultiMarginLoss(p=2, reduction="none")
    expected = crit.loss_and_grad(x[:, ::2].copy(), t // 2)
    for a, b in zip(crit.loss_and_grad(x[:, ::2], t // 2), expected):
        assert_same(a, b)
    assert_same(fastloss.multi_margin_loss(np.asfortranarray(x), t[::-1][::-1]),
                fastloss.multi_margin_loss(x, t))
    assert_same(fastloss.multi_margin_loss(x.astype(np.float64), t.astype(np.uint8)),
                fastloss.multi_margin_loss(x, t))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_batch(reduction):
    x = np.zeros((0, 4), np.float32)
    t = np.zeros(0, np.int64)
    loss, grad = fastloss.MultiMarginLoss(reduction=reduction).loss_and_grad(x, t)
    assert grad.shape == (0, 4)
    if reduction == "none":
        assert loss.shape == (0,)
    elif reduction == "sum":
        assert loss == 0.0
    else:   # 0 / 0, as torch.mean of nothing (PyTorch's multi_margin_loss says 0 here)
        assert np.isnan(loss)


def test_out_and_in_place():
    x, t = _data((7, 9))
    assert_out_and_in_place(fastloss.MultiMarginLoss(p=2, weight=_weight(9)), x, t)


def test_huge_scores_and_nan():
    big = np.float32(1.0e38)
    x = np.array([[big, -big, 0.0], [-big, big, 1.0]], np.float32)
    t = np.array([0, 0])
    loss, grad = fastloss.MultiMarginLoss(reduction="none").loss_and_grad(x, t)
    x64 = x.astype(np.float64)
    assert_loss_close(loss, ref.multi_margin_loss(x64, t, reduction="none"))
    assert_grad_close(grad, ref.multi_margin_loss_grad(x64, t, reduction="none"))
    assert loss[0] == 0.0 and np.isfinite(loss[1])
    # NaN in a row: NaN loss and gradient for that row (PyTorch drops the NaN term)
    x = np.array([[0.5, np.nan, 2.0], [0.5, 1.0, 2.0]], np.float32)
    loss, grad = fastloss.MultiMarginLoss(reduction="none").loss_and_grad(x, np.array([2, 2]))
    assert np.isnan(loss[0]) and np.isfinite(loss[1])
    assert np.isnan(grad[0, 1]) and np.isnan(grad[0, 2]) and np.isfinite(grad[1]).all()
    x[0, 1] = 1.0
    x[1, 2] = np.nan   # NaN at the target: every term of the row is NaN
    loss, grad = fastloss.MultiMarginLoss(reduction="none").loss_and_grad(x, np.array([2, 2]))
    assert np.isfinite(loss[0]) and np.isnan(loss[1]) and np.isnan(grad[1]).all()


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((np.zeros((3, 4)), np.array([0, 4, 1])), {}, ValueError,
     r"target\[1\] = 4 is out of range for 4 classes"),
    ((np.zeros((3, 4)), np.array([0, 1, -1])), {}, ValueError,
     r"target\[2\] = -1 is out of range"),
    ((np.zeros(4), np.int64(7)), {}, ValueError, r"target = 7 is out of range"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"p": 3}, ValueError, "p must be 1 or 2"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"p": 0}, ValueError, "p must be 1 or 2"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"p": 1.5}, TypeError, "p"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"margin": float("nan")}, ValueError, "margin"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"margin": "1"}, TypeError, "margin"),
    ((np.zeros((3, 4)), np.array([0, 1])), {}, ValueError, "target has shape"),
    ((np.zeros((3, 4)), np.array([[0], [1], [2]])), {}, ValueError, "target has shape"),
    ((np.zeros((3, 4)), np.array([0.0, 1.0, 2.0])), {}, TypeError, "integer class indices"),
    ((np.zeros((2, 3, 4)), np.zeros(2, np.int64)), {}, ValueError, r"\(N, C\), \(C,\) or \(\)"),
    ((np.zeros((3, 0)), np.zeros(3, np.int64)), {}, ValueError, "at least one class"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"weight": np.ones(3)}, ValueError,
     r"weight must have shape \(4,\)"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"weight": [1.0, np.inf, 1.0, 1.0]},
     ValueError, "weight must be finite"),
    ((np.zeros((3, 4)), np.array([0, 1, 2])), {"reduction": "avg"}, ValueError, "reduction"),
])
def test_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastloss.multi_margin_loss(*args, **kwargs)
    with pytest.raises(exc, match=match):
        fastloss.MultiMarginLoss(**kwargs).loss_and_grad(*args)
