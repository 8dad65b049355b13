"""multilabel_soft_margin_loss / MultiLabelSoftMarginLoss (the row family).

The registry-driven tests leave the row losses out (tests/_support/registry.py,
OWN_TESTS); this file checks the same properties for this loss: every
reduction x weight shape against the float64 reference and PyTorch (loss and
gradient, upstream gradient other than 1), the function, the class's forward,
loss_and_grad and backward against each other bitwise, 1 vs 2 threads
bitwise, bad arguments, non-contiguous, empty, 1-D and 3-D inputs, out= (and
out=input), the legacy size_average/reduce, huge scores and NaN.
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

SHAPES = [(1, 1), (7, 3), (9, 17), (64, 10), (5, 300), (2, 1100), (13,), (2, 3, 5)]
# several blocks of rows: small C with many rows, and long rows
BIG_SHAPES = [(9000, 7), (3, 70000), (1500, 33)]


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    y = (rng.random(shape) < 0.4).astype(np.float32)
    soft = rng.random(shape) < 0.2   # soft labels in [0, 1] too
    y[soft] = rng.random(int(soft.sum())).astype(np.float32)
    return x, y


def _weights(shape, seed=3):
    """name -> weight of each shape PyTorch takes: none, per class, full,
    per row (materialised), a scalar."""
    rng = np.random.default_rng(seed)
    c = shape[-1]
    out = {"none": None,
           "class": rng.uniform(0.2, 2.0, c).astype(np.float32),
           "full": rng.uniform(0.0, 2.0, shape).astype(np.float32),
           "scalar": np.float32(0.7)}
    if len(shape) >= 2:
        out["row"] = rng.uniform(0.2, 2.0, shape[:-1] + (1,)).astype(np.float32)
    return out


def _grad_output(reduction, shape, seed=5):
    if reduction != "none":
        return 0.37
    return np.random.default_rng(seed).uniform(-2, 2, shape[:-1]).astype(np.float32)


def _torch(x, y, reduction, grad_output, weight=None, **legacy):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = None if weight is None else torch.tensor(np.asarray(weight), dtype=torch.float64)
    loss = F.multilabel_soft_margin_loss(xt, torch.tensor(y, dtype=torch.float64), weight=wt,
                                         reduction=reduction, **legacy)
    (loss * torch.as_tensor(np.asarray(grad_output), dtype=torch.float64)).sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


def _check(x, y, reduction, weight=None):
    g = _grad_output(reduction, x.shape)
    loss = fastloss.multilabel_soft_margin_loss(x, y, weight=weight, reduction=reduction)
    crit = fastloss.MultiLabelSoftMarginLoss(weight=weight, reduction=reduction)
    fused_loss, fused_grad = crit.loss_and_grad(x, y)
    grad = crit.backward(x, y, grad_output=g)
    # fused == separate, bitwise
    assert_same(crit(x, y), loss)
    assert_same(fused_loss, loss)
    assert_same(crit.backward(x, y), fused_grad)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    assert_loss_close(loss, ref.multilabel_soft_margin_loss(x64, y64, weight, reduction))
    assert_grad_close(fused_grad, ref.multilabel_soft_margin_loss_grad(x64, y64, weight,
                                                                       reduction))
    assert_grad_close(grad, ref.multilabel_soft_margin_loss_grad(
        x64, y64, weight, reduction, grad_output=np.asarray(g, np.float64)))
    t_loss, t_grad = _torch(x, y, reduction, g, weight)
    assert_loss_close(loss, t_loss)
    assert_grad_close(grad, t_grad)
    if reduction == "none":
        assert loss.shape == x.shape[:-1] and loss.dtype == np.float32
    else:
        assert isinstance(loss, float)
    assert grad.shape == x.shape and grad.dtype == np.float32
    return loss, grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_against_reference_and_torch(shape, reduction):
    x, y = _data(shape)
    for weight in _weights(shape).values():
        _check(x, y, reduction, weight)


@pytest.fixture
def every_thread():
    """The adaptive rule off (a busy machine would send calls to one thread):
    the parallel run really runs on the threads it is given."""
    on = fastloss._core._thread_policy_enabled()
    fastloss.set_adaptive_threads(False)
    yield
    fastloss.set_adaptive_threads(on)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n_threads", [2])
@pytest.mark.parametrize("shape", BIG_SHAPES, ids=str)
def test_thread_counts_bitwise(shape, reduction, n_threads, every_thread):
    x, y = _data(shape, 11)
    w = _weights(shape)["class"]
    g = _grad_output(reduction, shape)

    def everything():
        crit = fastloss.MultiLabelSoftMarginLoss(weight=w, reduction=reduction)
        return (crit(x, y), *crit.loss_and_grad(x, y), crit.backward(x, y, grad_output=g))

    with fastloss.threads(1):
        serial = everything()
    with fastloss.threads(n_threads):
        parallel = everything()
    for a, b in zip(serial, parallel):
        assert_same(a, b)
    # the big shapes are right too, not only reproducible
    assert_loss_close(serial[0], ref.multilabel_soft_margin_loss(x, y, w, reduction))


@pytest.mark.filterwarnings("ignore:size_average and reduce args:UserWarning")
def test_legacy_size_average_and_reduce():
    x, y = _data((6, 4))
    for size_average, reduce in [(True, None), (False, None), (None, False), (True, False),
                                 (False, True)]:
        ours = fastloss.multilabel_soft_margin_loss(x, y, size_average=size_average,
                                                    reduce=reduce)
        crit = fastloss.MultiLabelSoftMarginLoss(size_average=size_average, reduce=reduce)
        theirs, _ = _torch(x, y, "mean", 1.0, size_average=size_average, reduce=reduce)
        assert_loss_close(ours, theirs)
        assert_same(crit(x, y), ours)


def test_non_contiguous_and_other_dtypes():
    x, y = _data((8, 12))
    expected = fastloss.MultiLabelSoftMarginLoss(reduction="none").loss_and_grad(
        x[:, ::2].copy(), y[:, ::2].copy())
    got = fastloss.MultiLabelSoftMarginLoss(reduction="none").loss_and_grad(x[:, ::2],
                                                                            y[:, ::2])
    for a, b in zip(got, expected):
        assert_same(a, b)
    xf, yf = np.asfortranarray(x), np.asfortranarray(y)
    assert_same(fastloss.multilabel_soft_margin_loss(xf, yf),
                fastloss.multilabel_soft_margin_loss(x, y))
    hard = np.round(y)
    loss64 = fastloss.multilabel_soft_margin_loss(x.astype(np.float64), hard.astype(np.int32))
    assert_same(loss64, fastloss.multilabel_soft_margin_loss(x, hard))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty(reduction):
    crit = fastloss.MultiLabelSoftMarginLoss(reduction=reduction)
    # no rows: 'mean' is NaN (0 / 0) as in PyTorch, 'sum' 0
    x = np.zeros((0, 4), np.float32)
    loss, grad = crit.loss_and_grad(x, x)
    t_loss, _ = _torch(x, x, reduction, _grad_output(reduction, x.shape))
    assert_loss_close(loss, t_loss)
    assert grad.shape == (0, 4)
    # no classes: each row's 0 / C is NaN, as in PyTorch
    x = np.zeros((3, 0), np.float32)
    loss, grad = crit.loss_and_grad(x, x)
    t_loss, _ = _torch(x, x, reduction, _grad_output(reduction, x.shape))
    assert_loss_close(loss, t_loss)
    assert np.isnan(loss).all() and grad.shape == (3, 0)


def test_out_and_in_place():
    x, y = _data((7, 9))
    assert_out_and_in_place(
        fastloss.MultiLabelSoftMarginLoss(weight=_weights((7, 9))["class"]), x, y)


def test_huge_scores_and_nan():
    big = np.float32(3.0e38)
    x = np.array([[big, -big, 0.0, 20.0], [-big, big, 1.0, -30.0]], np.float32)
    y = np.array([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.5, 1.0]], np.float32)
    loss, grad = fastloss.MultiLabelSoftMarginLoss(reduction="none").loss_and_grad(x, y)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    x64 = x.astype(np.float64)
    assert_loss_close(loss, ref.multilabel_soft_margin_loss(x64, y, reduction="none"))
    assert_grad_close(grad, ref.multilabel_soft_margin_loss_grad(x64, y, reduction="none"))
    # a row with NaN: NaN loss and NaN gradient for that element, as in PyTorch
    x[1, 2] = np.nan
    loss, grad = fastloss.MultiLabelSoftMarginLoss(reduction="none").loss_and_grad(x, y)
    assert np.isfinite(loss[0]) and np.isnan(loss[1])
    assert np.isnan(grad[1, 2]) and np.isfinite(np.delete(grad.ravel(), 6)).all()
    assert np.isnan(fastloss.multilabel_soft_margin_loss(x, y))


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((np.float32(1.0), np.float32(1.0)), {}, ValueError, "classes on its last axis"),
    ((np.zeros((3, 4)), np.zeros((3, 5))), {}, ValueError, "target"),
    ((np.zeros((3, 4)), np.zeros((4,))), {}, ValueError, "target"),
    ((np.zeros((3, 4)), np.zeros((3, 4))), {"weight": np.ones(3)}, ValueError, "weight"),
    ((np.zeros((3, 4)), np.zeros((3, 4))), {"weight": np.ones((2, 3, 4))}, ValueError,
     "weight"),
    ((np.zeros((3, 4)), np.zeros((3, 4))), {"weight": [1.0, np.nan, 1.0, 1.0]}, ValueError,
     "weight must be finite"),
    ((np.zeros((3, 4)), np.zeros((3, 4))), {"reduction": "avg"}, ValueError, "reduction"),
    ((np.array([["a"]]), np.zeros((1, 1))), {}, TypeError, "input"),
    ((np.zeros((1, 1)), np.array([[None]])), {}, TypeError, "target"),
])
def test_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastloss.multilabel_soft_margin_loss(*args, **kwargs)
    with pytest.raises(exc, match=match):
        fastloss.MultiLabelSoftMarginLoss(**kwargs).loss_and_grad(*args)


def test_out_buffer_errors():
    x, y = _data((3, 4))
    crit = fastloss.MultiLabelSoftMarginLoss()
    with pytest.raises(ValueError, match="out"):
        crit.loss_and_grad(x, y, out=np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="grad_output"):
        fastloss.MultiLabelSoftMarginLoss(reduction="none").backward(
            x, y, grad_output=np.ones(4, np.float32))
